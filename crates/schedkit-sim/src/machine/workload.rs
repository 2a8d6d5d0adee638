//! The workload's behaviour: the tasks a spec's groups make (periodic frames, CPU
//! hogs, a stream of jobs, ping-pong pairs), what each does when its burst of work
//! ends or it wakes up, and the figures each group collects (frame lateness and
//! misses, job completion times, round trips) for the report.

use schedkit_core::ENQ_WAKEUP;
use schedkit_workload::report::LatencyRecorder;
use schedkit_workload::{Kind, Rng, Spec, WorkDist};

use super::engine::{Cur, Engine, Ev, Mm, State, Task, Tid};
use super::{Machine, SchedulerModel};
use crate::trace::Record;
use crate::weights::{kernel_weight, scx_weight};
use crate::SimError;

/// What a task does, by the kind of its group.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Periodic {
        period_ns: u64,
        work_ns: u64,
        /// Intended start of the current (or, while sleeping, the next) frame.
        release_ns: u64,
        /// Whether the current frame's work has started.
        started: bool,
    },
    Hog,
    Job {
        spawned_ns: u64,
        /// The slot thread that forked it and waits for it, if forks are modelled.
        slot: Option<Tid>,
    },
    /// A job slot's thread in the executor, when forking costs the parent CPU
    /// ([`crate::SimConfig::fork_ns`]): woken by its job's exit, it forks the next.
    Slot,
    Ping {
        partner: Tid,
        initiator: bool,
        work_ns: u64,
        /// When the initiator sent the message it now waits a reply for.
        sent_ns: Option<u64>,
    },
}

/// A workload group: its tasks and the figures they collect.
#[derive(Debug)]
pub(crate) struct GroupState {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) nice: i32,
    pub(crate) tasks: Vec<Tid>,
    pub(crate) nr_tasks: u32,
    pub(crate) lateness: LatencyRecorder,
    pub(crate) frames: u64,
    pub(crate) misses: u64,
    // Jobs.
    work: Option<WorkDist>,
    rng: Rng,
    total: Option<u64>,
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) completion: LatencyRecorder,
    pub(crate) job_cpu_ns: Vec<u64>,
    // Ping-pong.
    rounds: Option<u64>,
    pub(crate) round_trips: u64,
    pub(crate) rtt: LatencyRecorder,
    allowed: Option<Box<[bool]>>,
}

fn comm_of(name: &str) -> [u8; 16] {
    let mut comm = [0u8; 16];
    for (d, s) in comm.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    comm
}

impl Engine {
    /// `tid` was just put on a CPU: the work of a frame starts (late, maybe), or the
    /// reply a ping-pong initiator waited for arrives.
    pub(super) fn workload_on_cpu(&mut self, tid: Tid) {
        // The task's own code runs once the switch is paid for.
        let now = self.now + self.tasks[tid].overhead_ns;
        let t = &mut self.tasks[tid];
        let g = t.group;
        match &mut t.role {
            Role::Periodic {
                release_ns,
                started,
                ..
            } if !*started => {
                *started = true;
                let late = now.saturating_sub(*release_ns);
                self.groups[g].frames += 1;
                self.groups[g].lateness.record(late);
            }
            Role::Ping {
                initiator: true,
                sent_ns,
                ..
            } => {
                if let Some(s) = sent_ns.take() {
                    self.groups[g].round_trips += 1;
                    self.groups[g].rtt.record(now - s);
                }
            }
            _ => {}
        }
    }

    /// At the end of the run: a frame started but still unfinished although its
    /// deadline passed is missed.
    pub(super) fn count_unfinished_frames(&mut self) {
        let duration = self.now;
        for t in &self.tasks {
            if let Role::Periodic {
                period_ns,
                release_ns,
                started: true,
                ..
            } = t.role
            {
                // `started` is cleared when a frame finishes: this one did not.
                if release_ns + period_ns <= duration {
                    self.groups[t.group].misses += 1;
                }
            }
        }
    }
}

impl<S: SchedulerModel> Machine<S> {
    /// Makes the spec's groups and their first tasks.
    pub(super) fn add_workload(&mut self, spec: &Spec) -> Result<(), SimError> {
        let n = self.engine.cpus.len() as u32;
        for (gi, g) in spec.groups.iter().enumerate() {
            let allowed = match &g.affinity {
                None => None,
                Some(list) => {
                    let mut mask = vec![false; n as usize].into_boxed_slice();
                    for &c in list {
                        if (c as usize) < mask.len() {
                            mask[c as usize] = true;
                        }
                    }
                    if !mask.iter().any(|&b| b) {
                        return Err(SimError::Config(format!(
                            "group `{}` may only run on CPUs {:?}, none of which exists on a simulated machine with {n} CPUs",
                            g.name, list
                        )));
                    }
                    Some(mask)
                }
            };
            let mut gs = GroupState {
                name: g.name.clone(),
                kind: g.kind.name(),
                nice: g.nice,
                tasks: Vec::new(),
                nr_tasks: g.nr_tasks(n),
                lateness: LatencyRecorder::new(),
                frames: 0,
                misses: 0,
                work: None,
                rng: spec.group_rng(gi),
                total: None,
                started: 0,
                completed: 0,
                completion: LatencyRecorder::new(),
                job_cpu_ns: Vec::new(),
                rounds: None,
                round_trips: 0,
                rtt: LatencyRecorder::new(),
                allowed,
            };
            match &g.kind {
                Kind::Jobs { work, total, .. } => {
                    gs.work = Some(*work);
                    gs.total = *total;
                }
                Kind::PingPong { rounds, .. } => gs.rounds = *rounds,
                Kind::Periodic { .. } | Kind::Cpu => {}
            }
            self.engine.groups.push(gs);
            match g.kind {
                Kind::Periodic { period_ns, work_ns } => {
                    for i in 0..g.count {
                        let role = Role::Periodic {
                            period_ns,
                            work_ns,
                            release_ns: 0,
                            started: false,
                        };
                        let t = self.new_task(gi, format!("{}-{i}", g.name), g.nice, role, 0);
                        self.engine.push(0, Ev::Wake(t));
                    }
                }
                Kind::Cpu => {
                    for i in 0..g.count {
                        let t = self.new_task(
                            gi,
                            format!("{}-{i}", g.name),
                            g.nice,
                            Role::Hog,
                            u64::MAX,
                        );
                        self.model.make_runnable(&mut self.engine, t, 0);
                    }
                }
                Kind::Jobs { .. } => {
                    let nr = self.engine.groups[gi].nr_tasks;
                    let fork_ns = self.engine.cfg.fork_ns;
                    for i in 0..nr {
                        if fork_ns == 0 {
                            self.spawn_job(gi, None);
                        } else {
                            // The slot thread forks the first job once it has run.
                            let name = format!("{}-slot{i}", g.name);
                            let t = self.new_task(gi, name, g.nice, Role::Slot, fork_ns);
                            self.model.make_runnable(&mut self.engine, t, 0);
                        }
                    }
                }
                Kind::PingPong { work_ns, .. } => {
                    for i in 0..g.count {
                        let a = self.engine.tasks.len();
                        let b = a + 1;
                        let ra = Role::Ping {
                            partner: b,
                            initiator: true,
                            work_ns,
                            sent_ns: None,
                        };
                        let rb = Role::Ping {
                            partner: a,
                            initiator: false,
                            work_ns,
                            sent_ns: None,
                        };
                        self.new_task(gi, format!("{}-{i}a", g.name), g.nice, ra, work_ns);
                        self.new_task(gi, format!("{}-{i}b", g.name), g.nice, rb, work_ns);
                        self.model.make_runnable(&mut self.engine, a, 0);
                    }
                }
            }
        }
        Ok(())
    }

    fn new_task(&mut self, group: usize, name: String, nice: i32, role: Role, work: u64) -> Tid {
        let e = &mut self.engine;
        let tid = e.tasks.len();
        let n = e.cpus.len() as u32;
        let allowed = e.groups[group].allowed.clone();
        let nr_allowed = allowed
            .as_ref()
            .map_or(n, |m| m.iter().filter(|&&b| b).count() as u32);
        let first_allowed = allowed
            .as_ref()
            .and_then(|m| m.iter().position(|&b| b))
            .unwrap_or(0) as u32;
        let prev_cpu = if allowed.is_none() {
            tid as u32 % n
        } else {
            first_allowed
        };
        let tid = e.add_task(Task {
            comm: comm_of(&name),
            name,
            group,
            weight: scx_weight(nice),
            kweight: kernel_weight(nice),
            allowed,
            nr_allowed,
            state: State::Sleeping,
            remaining_ns: work,
            role,
            prev_cpu,
            nvcsw: 0,
            sum_exec_ns: 0,
            last_run_ns: 0,
            run_since_sleep_ns: 0,
            run_start_ns: 0,
            overhead_ns: 0,
            spawn_cost_ns: 0,
            overhead_spawn_ns: 0,
            has_run: false,
            mm: if matches!(role, Role::Job { .. }) {
                Mm::Job(tid)
            } else {
                Mm::Executor
            },
        });
        self.model.task_added(tid);
        tid
    }

    fn spawn_job(&mut self, g: usize, slot: Option<Tid>) {
        let gs = &mut self.engine.groups[g];
        if gs.total.is_some_and(|t| gs.started >= t) {
            return;
        }
        let Some(work) = gs.work else { return };
        let w = work.sample_work_ns(&mut gs.rng).max(1);
        gs.started += 1;
        let name = format!("{}#{}", gs.name, gs.started);
        let nice = gs.nice;
        let now = self.engine.now;
        let role = Role::Job {
            spawned_ns: now,
            slot,
        };
        let t = self.new_task(g, name, nice, role, w);
        self.engine.tasks[t].spawn_cost_ns = self.engine.cfg.process_spawn_ns;
        self.model.make_runnable(&mut self.engine, t, 0);
    }

    /// Wakes `tid`; `waker` is the task that woke it, if one did (not a timer).
    pub(super) fn wake(&mut self, tid: Tid, waker: Option<Tid>) {
        let e = &mut self.engine;
        if e.tasks[tid].state != State::Sleeping {
            return;
        }
        let now = e.now;
        let fork_ns = e.cfg.fork_ns;
        let t = &mut e.tasks[tid];
        match &mut t.role {
            Role::Periodic {
                work_ns, started, ..
            } => {
                *started = false;
                t.remaining_ns = *work_ns;
            }
            Role::Ping { work_ns, .. } => t.remaining_ns = *work_ns,
            Role::Slot => t.remaining_ns = fork_ns,
            Role::Hog | Role::Job { .. } => {}
        }
        if let Some(tr) = &mut e.trace {
            tr.records.push(Record::Wake {
                cpu: t.prev_cpu,
                task: tid,
                waker,
                t_ns: now,
            });
        }
        self.model.make_runnable(e, tid, ENQ_WAKEUP);
    }

    /// The running task on `cpu` finished its burst of work.
    pub(super) fn burst_end(&mut self, cpu: u32) {
        let now = self.engine.now;
        let tid = self.model.stop_task(&mut self.engine, cpu);
        let g = self.engine.tasks[tid].group;
        match self.engine.tasks[tid].role {
            Role::Periodic {
                period_ns,
                work_ns,
                release_ns,
                ..
            } => {
                if now > release_ns + period_ns {
                    self.engine.groups[g].misses += 1;
                }
                let next = release_ns + period_ns;
                if next <= now {
                    // Already late for the next frame: start it at once, on this CPU.
                    self.engine.tasks[tid].role = Role::Periodic {
                        period_ns,
                        work_ns,
                        release_ns: next,
                        started: false,
                    };
                    self.engine.tasks[tid].remaining_ns = work_ns;
                    self.continue_running(cpu, tid);
                    return;
                }
                self.engine.tasks[tid].role = Role::Periodic {
                    period_ns,
                    work_ns,
                    release_ns: next,
                    started: false,
                };
                self.block(cpu, tid, false);
                if next < self.engine.end {
                    self.engine.push(next, Ev::Wake(tid));
                }
            }
            Role::Hog => {
                // A hog's work never ends; nothing to do (not reached).
                self.continue_running(cpu, tid);
                return;
            }
            Role::Job { spawned_ns, slot } => {
                self.block(cpu, tid, true);
                let gs = &mut self.engine.groups[g];
                gs.completed += 1;
                gs.completion.record(now - spawned_ns);
                gs.job_cpu_ns.push(self.engine.tasks[tid].sum_exec_ns);
                match slot {
                    // Its slot thread wakes from waitpid and forks the next.
                    Some(s) => self.wake(s, Some(tid)),
                    None => self.spawn_job(g, None),
                }
            }
            Role::Slot => {
                // The fork is done: the child starts, the slot thread waits for it.
                self.block(cpu, tid, false);
                self.spawn_job(g, Some(tid));
            }
            Role::Ping {
                partner,
                initiator,
                work_ns,
                ..
            } => {
                let gs = &self.engine.groups[g];
                let done = initiator && gs.rounds.is_some_and(|r| gs.round_trips >= r);
                self.block(cpu, tid, false);
                if !done {
                    if initiator {
                        self.engine.tasks[tid].role = Role::Ping {
                            partner,
                            initiator,
                            work_ns,
                            sent_ns: Some(now),
                        };
                    }
                    self.wake(partner, Some(tid));
                }
            }
        }
        if self.engine.cpus[cpu as usize].cur == Cur::Idle {
            self.model.pick_next(&mut self.engine, cpu);
        }
    }

    /// The task goes on running on `cpu` with new work and without a scheduling
    /// decision (it never blocked).
    fn continue_running(&mut self, cpu: u32, tid: Tid) {
        // The models' per-task state (the slice used so far, the EEVDF runqueue and
        // vruntime) stays as it is: it is still the same dispatch, the same running
        // task.
        self.engine.run_task_with(cpu, tid, false);
    }

    /// `tid`, just taken off `cpu`, goes to sleep (or exits).
    fn block(&mut self, cpu: u32, tid: Tid, exit: bool) {
        let t = &mut self.engine.tasks[tid];
        t.nvcsw += 1;
        t.run_since_sleep_ns = 0;
        self.model.block(&mut self.engine, cpu, tid, exit);
        let state = if exit { State::Exited } else { State::Sleeping };
        self.engine.set_state(tid, state);
    }
}
