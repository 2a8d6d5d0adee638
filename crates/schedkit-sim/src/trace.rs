//! The timeline of a run, as [`schedkit_trace`] events: written as Chrome's
//! trace-event JSON or Perfetto's protobuf trace (both open in ui.perfetto.dev),
//! with one track per CPU showing what each task and the user-space scheduler ran,
//! one track per task, wake-ups, dispatch decisions, and a counter of runnable
//! tasks waiting for a CPU.
//!
//! Records are kept compact while the simulation runs and turned into events only
//! when written, so tracing costs little when it is on and nothing when it is off.
//!
//! In the events, task `i` is pid `i + 1`, in the process (tgid) of its workload
//! group's first task; the user-space scheduler is the thread [`SCHEDULER_PID`],
//! named [`SCHEDULER_NAME`].

use std::io::{self, BufWriter, Write};

use schedkit_trace::json::JsonWriter;
use schedkit_trace::perfetto::PerfettoWriter;
use schedkit_trace::{Counter, Event, Pid, Sink, Target, TraceInfo, TraceSource};

/// Name of the user-space scheduler's thread (its stretches on the CPU tracks).
pub const SCHEDULER_NAME: &str = "schedkit scheduler";

/// Pid of the user-space scheduler's thread: 2^22, Linux's `PID_MAX_LIMIT`, which
/// no real thread has (and which fits Perfetto's 32-bit pids).
pub const SCHEDULER_PID: Pid = 1 << 22;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Record {
    /// Task `task` ran on `cpu` from `start_ns` to `end_ns`.
    Run {
        cpu: u32,
        task: usize,
        start_ns: u64,
        end_ns: u64,
    },
    /// The user-space scheduler ran on `cpu`.
    Sched {
        cpu: u32,
        start_ns: u64,
        end_ns: u64,
    },
    /// Task `task` woke up (woken by `waker`, or a timer); `cpu` is the CPU it last
    /// ran on.
    Wake {
        cpu: u32,
        task: usize,
        waker: Option<usize>,
        t_ns: u64,
    },
    /// A decision (or a kernel-side fast-path dispatch) put `task` in a queue:
    /// `cpu` is the CPU's local queue, or `None` for the shared queue.
    Dispatch {
        cpu: Option<u32>,
        task: usize,
        t_ns: u64,
        slice_ns: u64,
        vtime: u64,
        kernel: bool,
        preempt: bool,
    },
    /// Number of runnable tasks not on a CPU.
    Runnable { t_ns: u64, n: u64 },
}

/// A recorded timeline. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub(crate) records: Vec<Record>,
    pub(crate) task_names: Vec<String>,
    /// For each task, its workload group's first task.
    pub(crate) task_tgids: Vec<usize>,
    pub(crate) nr_cpus: u32,
    /// The scheduler that ran (a policy's name, or "eevdf").
    pub(crate) scheduler: String,
    /// When the run stopped (0 while it runs).
    pub(crate) end_ns: u64,
}

/// The pid of task `task` in the events.
fn pid_of(task: usize) -> Pid {
    Pid::try_from(task + 1).unwrap_or(Pid::MAX)
}

/// At one instant: events that are neither switch-outs nor switch-ins first (a
/// task finishing its burst still runs when it wakes its partner), then the CPUs
/// that go idle, then the switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Other,
    Out,
    In,
}

impl Trace {
    pub(crate) fn new(nr_cpus: u32) -> Trace {
        Trace {
            records: Vec::with_capacity(1 << 16),
            nr_cpus,
            ..Trace::default()
        }
    }

    /// Number of recorded events (before the metadata that names the tracks).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// When the recording stopped: the end of the run (or the ejection), and at
    /// least the last recorded time.
    pub fn end_ns(&self) -> u64 {
        let last = self
            .records
            .iter()
            .map(|r| match *r {
                Record::Run { end_ns, .. } | Record::Sched { end_ns, .. } => end_ns,
                Record::Wake { t_ns, .. }
                | Record::Dispatch { t_ns, .. }
                | Record::Runnable { t_ns, .. } => t_ns,
            })
            .max()
            .unwrap_or(0);
        self.end_ns.max(last)
    }

    /// What the trace's writers are told first.
    pub fn info(&self) -> TraceInfo {
        TraceInfo {
            source: TraceSource::Simulated,
            nr_cpus: self.nr_cpus,
            scheduler: if self.scheduler.is_empty() {
                "unknown".to_string()
            } else {
                self.scheduler.clone()
            },
            start_ns: 0,
        }
    }

    /// The timeline as events, in time order (see [`Trace::write_to`]).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.records.len() * 2 + self.task_names.len());
        // Collecting cannot fail.
        let _ = self.for_each_event(|e| {
            out.push(e);
            Ok(())
        });
        out
    }

    /// Sends the timeline to `sink`: [`Sink::begin`], the events in time order (the
    /// tasks' and the scheduler's names first, then the switches each run record
    /// stands for, wake-ups, dispatch decisions and the waiting-tasks counter), and
    /// [`Sink::finish`] at [`Trace::end_ns`].
    pub fn write_to(&self, sink: &mut dyn Sink) -> io::Result<()> {
        sink.begin(&self.info())?;
        self.for_each_event(|e| sink.event(&e))?;
        sink.finish(self.end_ns())
    }

    /// Writes the timeline as Chrome trace-event JSON (see
    /// [`schedkit_trace::json`]).
    pub fn write_json<W: Write>(&self, out: W) -> io::Result<()> {
        self.write_to(&mut JsonWriter::new(BufWriter::new(out)))
    }

    /// Writes the timeline as a Perfetto protobuf trace (see
    /// [`schedkit_trace::perfetto`]).
    pub fn write_perfetto<W: Write>(&self, out: W) -> io::Result<()> {
        self.write_to(&mut PerfettoWriter::new(BufWriter::new(out)))
    }

    /// The trace as a JSON string.
    pub fn to_json_string(&self) -> String {
        let mut buf = Vec::new();
        // Writing to memory cannot fail; the text is valid UTF-8 by construction.
        let _ = self.write_json(&mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    fn for_each_event(&self, mut f: impl FnMut(Event) -> io::Result<()>) -> io::Result<()> {
        for (i, name) in self.task_names.iter().enumerate() {
            f(Event::Thread {
                ts_ns: 0,
                pid: pid_of(i),
                tgid: pid_of(self.task_tgids.get(i).copied().unwrap_or(i)),
                comm: name.clone(),
                scheduler: false,
            })?;
        }
        if self
            .records
            .iter()
            .any(|r| matches!(r, Record::Sched { .. }))
        {
            f(Event::Thread {
                ts_ns: 0,
                pid: SCHEDULER_PID,
                tgid: SCHEDULER_PID,
                comm: SCHEDULER_NAME.to_string(),
                scheduler: true,
            })?;
        }

        // Run records are intervals, recorded when they end: turn each into a
        // switch-in and (unless it lasts to the end, where `finish` closes it) a
        // switch-out, and sort everything by time.
        let end_ns = self.end_ns();
        let mut points: Vec<(u64, Kind, usize)> = Vec::with_capacity(self.records.len() * 2);
        for (i, r) in self.records.iter().enumerate() {
            match *r {
                Record::Run {
                    start_ns,
                    end_ns: e,
                    ..
                }
                | Record::Sched {
                    start_ns,
                    end_ns: e,
                    ..
                } => {
                    points.push((start_ns, Kind::In, i));
                    if e < end_ns {
                        points.push((e, Kind::Out, i));
                    }
                }
                Record::Wake { t_ns, .. }
                | Record::Dispatch { t_ns, .. }
                | Record::Runnable { t_ns, .. } => points.push((t_ns, Kind::Other, i)),
            }
        }
        points.sort_unstable();
        let runnable_after = self.runnable_after(&points);

        let mut start = 0;
        while start < points.len() {
            let ts = points[start].0;
            let end = start + points[start..].partition_point(|p| p.0 == ts);
            let group = &points[start..end];
            start = end;
            let mut outs: Vec<(u32, Pid, bool)> = Vec::new();
            let mut ins: Vec<(u32, Pid)> = Vec::new();
            for &(_, kind, i) in group {
                let (cpu, pid) = match self.records[i] {
                    Record::Run { cpu, task, .. } => (cpu, pid_of(task)),
                    Record::Sched { cpu, .. } => (cpu, SCHEDULER_PID),
                    other => {
                        f(self.event_of(ts, other))?;
                        continue;
                    }
                };
                match kind {
                    Kind::Out => outs.push((cpu, pid, runnable_after[i])),
                    _ => ins.push((cpu, pid)),
                }
            }
            // CPUs going idle, then the switches (a task leaving one CPU for another
            // at this instant leaves first).
            for &(cpu, prev, prev_runnable) in &outs {
                if !ins.iter().any(|&(c, _)| c == cpu) {
                    f(Event::Switch {
                        ts_ns: ts,
                        cpu,
                        prev,
                        prev_runnable,
                        next: 0,
                    })?;
                }
            }
            for &(cpu, next) in &ins {
                let (prev, prev_runnable) = outs
                    .iter()
                    .find(|&&(c, ..)| c == cpu)
                    .map_or((0, false), |&(_, p, r)| (p, r));
                f(Event::Switch {
                    ts_ns: ts,
                    cpu,
                    prev,
                    prev_runnable,
                    next,
                })?;
            }
        }
        Ok(())
    }

    /// For each run record, whether its task was still runnable when the run
    /// ended (preempted) rather than asleep (its next record is a wake-up) or done.
    fn runnable_after(&self, points: &[(u64, Kind, usize)]) -> Vec<bool> {
        let mut after = vec![false; self.records.len()];
        // Per task, walking back in time: whether the next thing that happens to
        // it is a wake-up (`Some(true)`), something else (`Some(false)`), or nothing.
        let mut next_is_wake: Vec<Option<bool>> = vec![None; self.task_names.len()];
        fn set(next_is_wake: &mut [Option<bool>], task: usize, v: bool) {
            if let Some(s) = next_is_wake.get_mut(task) {
                *s = Some(v);
            }
        }
        // Instants from the last; within one, the switch-outs last, so that they
        // see what happens to their task at that same instant (a preempted task is
        // dispatched again, or runs elsewhere, at once).
        let mut end = points.len();
        while end > 0 {
            let ts = points[end - 1].0;
            let start = points[..end].partition_point(|p| p.0 < ts);
            let group = &points[start..end];
            end = start;
            for &(_, kind, i) in group.iter().rev().filter(|p| p.1 != Kind::Out) {
                match (self.records[i], kind) {
                    (Record::Run { task, .. }, _) | (Record::Dispatch { task, .. }, _) => {
                        set(&mut next_is_wake, task, false)
                    }
                    (Record::Wake { task, .. }, _) => set(&mut next_is_wake, task, true),
                    _ => {}
                }
            }
            for &(_, _, i) in group.iter().filter(|p| p.1 == Kind::Out) {
                if let Record::Run { task, .. } = self.records[i] {
                    after[i] = next_is_wake.get(task).copied().flatten() == Some(false);
                }
            }
        }
        after
    }

    /// The event of a record that is not a run.
    fn event_of(&self, ts_ns: u64, r: Record) -> Event {
        match r {
            Record::Wake {
                cpu, task, waker, ..
            } => Event::Wakeup {
                ts_ns,
                pid: pid_of(task),
                cpu,
                waker: waker.map(pid_of),
                new_task: false,
            },
            Record::Dispatch {
                cpu,
                task,
                slice_ns,
                vtime,
                kernel,
                preempt,
                ..
            } => Event::Decision {
                ts_ns,
                pid: pid_of(task),
                target: cpu.map_or(Target::Any, Target::Cpu),
                slice_ns,
                vtime,
                preempt,
                kernel,
            },
            Record::Runnable { n, .. } => Event::Counter {
                ts_ns,
                counter: Counter::Waiting,
                value: n,
            },
            Record::Run { .. } | Record::Sched { .. } => {
                unreachable!("runs are switches, handled by the caller")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(records: Vec<Record>, end_ns: u64) -> Trace {
        Trace {
            records,
            task_names: vec!["a".into(), "b".into()],
            task_tgids: vec![0, 0],
            nr_cpus: 2,
            scheduler: "fifo".into(),
            end_ns,
        }
    }

    fn switches(t: &Trace) -> Vec<(u64, u32, Pid, bool, Pid)> {
        t.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Switch {
                    ts_ns,
                    cpu,
                    prev,
                    prev_runnable,
                    next,
                } => Some((ts_ns, cpu, prev, prev_runnable, next)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn runs_become_switches_in_time_order() {
        let t = trace(
            vec![
                // Recorded when they end, out of order.
                Record::Run {
                    cpu: 0,
                    task: 0,
                    start_ns: 10,
                    end_ns: 20,
                },
                Record::Wake {
                    cpu: 0,
                    task: 0,
                    waker: Some(1),
                    t_ns: 25,
                },
                Record::Sched {
                    cpu: 1,
                    start_ns: 5,
                    end_ns: 20,
                },
                // a moves to CPU 1 as the scheduler leaves it; b preempted at 40.
                Record::Run {
                    cpu: 0,
                    task: 1,
                    start_ns: 20,
                    end_ns: 40,
                },
                Record::Run {
                    cpu: 1,
                    task: 0,
                    start_ns: 30,
                    end_ns: 100,
                },
                Record::Dispatch {
                    cpu: None,
                    task: 1,
                    t_ns: 40,
                    slice_ns: 5,
                    vtime: 3,
                    kernel: false,
                    preempt: true,
                },
            ],
            100,
        );
        let s = SCHEDULER_PID;
        assert_eq!(
            switches(&t),
            [
                (5, 1, 0, false, s),
                (10, 0, 0, false, 1),
                // a blocked (it is woken at 25), b comes in.
                (20, 1, s, false, 0),
                (20, 0, 1, false, 2),
                (30, 1, 0, false, 1),
                // b was preempted: it is dispatched again.
                (40, 0, 2, true, 0),
                // a still runs at the end: finish() closes it.
            ]
        );
        let ev = t.events();
        assert!(ev.windows(2).all(|w| w[0].ts_ns() <= w[1].ts_ns()));
        assert!(ev.contains(&Event::Wakeup {
            ts_ns: 25,
            pid: 1,
            cpu: 0,
            waker: Some(2),
            new_task: false
        }));
        assert!(ev.contains(&Event::Decision {
            ts_ns: 40,
            pid: 2,
            target: Target::Any,
            slice_ns: 5,
            vtime: 3,
            preempt: true,
            kernel: false
        }));
        let names: Vec<(Pid, Pid, String, bool)> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Thread {
                    pid,
                    tgid,
                    comm,
                    scheduler,
                    ..
                } => Some((*pid, *tgid, comm.clone(), *scheduler)),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                (1, 1, "a".into(), false),
                (2, 1, "b".into(), false),
                (s, s, SCHEDULER_NAME.into(), true)
            ]
        );
    }

    #[test]
    fn a_switch_out_and_in_at_one_instant_is_one_switch() {
        let t = trace(
            vec![
                Record::Run {
                    cpu: 0,
                    task: 0,
                    start_ns: 0,
                    end_ns: 10,
                },
                Record::Run {
                    cpu: 0,
                    task: 1,
                    start_ns: 10,
                    end_ns: 20,
                },
            ],
            30,
        );
        assert_eq!(
            switches(&t),
            [
                (0, 0, 0, false, 1),
                (10, 0, 1, false, 2),
                (20, 0, 2, false, 0)
            ]
        );
    }
}
