//! The state both writers keep to turn the event stream into slices: who runs on
//! each CPU and since when, the threads' names, and the wake-ups waiting for the
//! woken thread's next run (the flows).

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Event, Pid, Target};

/// The CPUs an event names: each gets a track (beyond `0..nr_cpus`) in both
/// formats, so that they agree on the number of CPUs.
pub(crate) fn cpus_named(ev: &Event) -> [Option<u32>; 2] {
    match *ev {
        Event::Switch { cpu, .. } | Event::Wakeup { cpu, .. } | Event::Enqueued { cpu, .. } => {
            [Some(cpu), None]
        }
        Event::Migrate { from, to, .. } => [Some(from), Some(to)],
        Event::Decision {
            target: Target::Cpu(c),
            ..
        } => [Some(c), None],
        _ => [None, None],
    }
}

/// What is known of a thread.
#[derive(Debug, Clone)]
pub(crate) struct Thread {
    pub tgid: Pid,
    pub comm: Arc<str>,
    pub scheduler: bool,
    /// Named by a `Thread` event (otherwise `comm` is "pid N").
    pub known: bool,
    /// Unique among every thread the tracker ever held: a pid reused after an exit
    /// gets a new one (and so a new track).
    pub serial: u64,
    /// The name the writer last gave the thread's track, if it made one.
    pub announced: Option<Arc<str>>,
    /// Exited while still on a CPU: forgotten once it leaves it.
    exited: bool,
}

/// A stretch a thread is running (or ran) on a CPU.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub pid: Pid,
    pub since_ns: u64,
    pub tgid: Pid,
    pub comm: Arc<str>,
    pub scheduler: bool,
    pub serial: u64,
    /// The wake-up flow that ends at this stretch.
    pub flow_in: Option<u64>,
}

/// What a switch changed.
#[derive(Debug, Default)]
pub(crate) struct Switched {
    /// Stretches that ended: the one on the switching CPU, and possibly one of the
    /// incoming thread on another CPU (its switch-out was lost), as `(cpu, run)`.
    pub stopped: Vec<(u32, Run)>,
    /// The stretch that began on the switching CPU.
    pub started: Option<Run>,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    threads: HashMap<Pid, Thread>,
    cpus: HashMap<u32, Run>,
    running_on: HashMap<Pid, u32>,
    pending_flows: HashMap<Pid, u64>,
    next_flow: u64,
    next_serial: u64,
}

impl Tracker {
    /// The thread `pid`, made up ("pid N") if no `Thread` event named it.
    pub fn thread(&mut self, pid: Pid) -> &mut Thread {
        let serial = &mut self.next_serial;
        self.threads.entry(pid).or_insert_with(|| {
            *serial += 1;
            Thread {
                tgid: pid,
                comm: format!("pid {pid}").into(),
                scheduler: false,
                known: false,
                serial: *serial,
                announced: None,
                exited: false,
            }
        })
    }

    /// The thread `pid`, if known or seen.
    pub fn get(&self, pid: Pid) -> Option<&Thread> {
        self.threads.get(&pid)
    }

    /// A `Thread` event. Returns the thread. A tgid of 0 (the idle task's, whose
    /// process is the machine's in the JSON layout) is taken as the pid itself.
    pub fn set_thread(&mut self, pid: Pid, tgid: Pid, comm: &str, scheduler: bool) -> &mut Thread {
        let t = self.thread(pid);
        if &*t.comm != comm {
            t.comm = comm.into();
        }
        t.tgid = if tgid == 0 { pid } else { tgid };
        t.scheduler = scheduler;
        t.known = true;
        t
    }

    /// The CPU `pid` runs on.
    pub fn running_on(&self, pid: Pid) -> Option<u32> {
        self.running_on.get(&pid).copied()
    }

    /// `cpu` switched to `next` (0: idle) at `ts_ns`.
    pub fn switch(&mut self, ts_ns: u64, cpu: u32, next: Pid) -> Switched {
        let mut out = Switched::default();
        if next != 0 && self.cpus.get(&cpu).is_some_and(|r| r.pid == next) {
            // Already there (a lost switch-out and switch-in): nothing changes.
            return out;
        }
        if let Some(run) = self.cpus.remove(&cpu) {
            self.running_on.remove(&run.pid);
            out.stopped.push((cpu, run));
        }
        if next == 0 {
            return out;
        }
        // A thread runs on one CPU at a time: if the trace still has it on another
        // one, its switch-out there was lost.
        if let Some(other) = self.running_on.remove(&next) {
            if let Some(run) = self.cpus.remove(&other) {
                out.stopped.push((other, run));
            }
        }
        let flow_in = self.pending_flows.remove(&next);
        let t = self.thread(next);
        let run = Run {
            pid: next,
            since_ns: ts_ns,
            tgid: t.tgid,
            comm: t.comm.clone(),
            scheduler: t.scheduler,
            serial: t.serial,
            flow_in,
        };
        self.running_on.insert(next, cpu);
        self.cpus.insert(cpu, run.clone());
        out.started = Some(run);
        out
    }

    /// Ends every stretch (at the end of the trace), sorted by CPU.
    pub fn stop_all(&mut self) -> Vec<(u32, Run)> {
        let mut runs: Vec<(u32, Run)> = self.cpus.drain().collect();
        runs.sort_by_key(|&(cpu, _)| cpu);
        self.running_on.clear();
        runs
    }

    /// `pid` woke up: a new flow to its next stretch on a CPU, unless it is already
    /// running (its next stretch would not be the one this wake-up started).
    pub fn wakeup(&mut self, pid: Pid) -> Option<u64> {
        if pid == 0 || self.running_on.contains_key(&pid) {
            return None;
        }
        self.next_flow += 1;
        self.pending_flows.insert(pid, self.next_flow);
        Some(self.next_flow)
    }

    /// Gives a flow back to `pid`'s next stretch (the one it ended at was too short
    /// to be drawn), unless a later wake-up started another.
    pub fn requeue_flow(&mut self, pid: Pid, flow: u64) {
        self.pending_flows.entry(pid).or_insert(flow);
    }

    /// `pid` exited: forgotten now, or when it leaves its CPU.
    pub fn exit(&mut self, pid: Pid) {
        self.pending_flows.remove(&pid);
        if self.running_on.contains_key(&pid) {
            if let Some(t) = self.threads.get_mut(&pid) {
                t.exited = true;
            }
        } else {
            self.threads.remove(&pid);
        }
    }

    /// Forgets the exited threads among `pids` that are no longer on a CPU.
    pub fn sweep<'a>(&mut self, pids: impl IntoIterator<Item = &'a Pid>) {
        for pid in pids {
            if self.threads.get(pid).is_some_and(|t| t.exited) && !self.running_on.contains_key(pid)
            {
                self.threads.remove(pid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_on_one_cpu_at_a_time() {
        let mut t = Tracker::default();
        assert!(t.switch(10, 0, 5).stopped.is_empty());
        // CPU 0's switch-out of 5 was lost: 5 shows up on CPU 1.
        let s = t.switch(20, 1, 5);
        assert_eq!(s.stopped.len(), 1);
        assert_eq!((s.stopped[0].0, s.stopped[0].1.since_ns), (0, 10));
        assert_eq!(t.running_on(5), Some(1));
        // CPU 0 going idle stops nothing now.
        assert!(t.switch(30, 0, 0).stopped.is_empty());
        assert!(t.switch(30, 1, 5).started.is_none(), "already running");
    }

    #[test]
    fn flows_wait_for_the_next_run_and_exits_forget() {
        let mut t = Tracker::default();
        let f = t.wakeup(3).unwrap();
        assert_eq!(t.switch(5, 0, 3).started.unwrap().flow_in, Some(f));
        assert_eq!(t.wakeup(3), None, "running");
        t.exit(3);
        assert!(t.get(3).is_some(), "still on its CPU");
        let s = t.switch(6, 0, 0);
        t.sweep(s.stopped.iter().map(|(_, r)| &r.pid));
        assert!(t.get(3).is_none());
        assert_eq!(t.thread(3).comm.as_ref(), "pid 3");
    }
}
