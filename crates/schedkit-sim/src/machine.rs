//! The simulated machine: CPUs, tasks and what they do, the event queue, and the two
//! ways it can be scheduled (a schedkit policy through the sched_ext model, or the
//! EEVDF model in [`crate::eevdf`]).
//!
//! Time is a `u64` nanosecond clock that jumps from event to event. Events live in a
//! binary heap ordered by (time, sequence number), so two events at the same instant
//! are handled in the order they were created and a run is a pure function of the
//! spec, the configuration and the seed.
//!
//! # The sched_ext model
//!
//! A task that becomes runnable goes, like on the real dispatcher, either straight to
//! a CPU (a waking task whose previous CPU is idle while nothing else waits: the
//! kernel-side fast path, counted as a kernel dispatch) or into the ring towards user
//! space. The user-space scheduler is a task of its own: when the ring has something it
//! needs a CPU, gets an idle one at once or else the next CPU that frees up (ahead of
//! every queued task), and then spends `step_cost + per_task_cost × (tasks drained +
//! decisions sent)` on it. Its decisions reach the dispatch queues when that time is
//! over. Dispatch queues are a local one per CPU and one shared one, both ordered by
//! the decision's vtime. A running task keeps its CPU until it blocks or its slice is
//! found used up at a scheduler tick (HZ = 250 by default, as sched_ext checks slices
//! at the tick); then it goes back to the policy. The watchdog ends the run when a
//! runnable task has waited longer than the timeout.
//!
//! Simplifications, each a choice rather than an accident:
//! - A running task keeps its CPU until its slice is over unless a decision that may
//!   preempt (with a vtime earlier than the running task's by more than its margin)
//!   finds no idle CPU, or the user-space scheduler has waited for a CPU for
//!   [`SCHED_WAIT_NS`] at a tick, as on the dispatcher.
//! - A task whose slice ends always goes back to the policy, even when nothing else
//!   waits (the kernel may instead refill the slice of the last runnable task).
//! - The fast path only considers the waking task's previous CPU; there is no
//!   sync-wakeup or cache-domain placement.
//! - Decisions reach the queues when the scheduler's step ends, all at once.
//! - Context switches and migrations cost nothing; the user-space scheduler's steps
//!   are the only overhead modelled.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use schedkit_core::{
    BackendError, Counters, Cpu, CpuTarget, Decision, ExitInfo, Pid, QueuedTask, TaskEvent,
    ENQ_WAKEUP,
};
use schedkit_workload::report::{
    GroupReport, JobStats, LatencyRecorder, PeriodicStats, PingPongStats,
};
use schedkit_workload::{Kind, Report, Rng, Spec, WorkDist};

use crate::eevdf::{EevdfTask, Rq};
use crate::trace::{Record, Trace};
use crate::weights::{kernel_weight, scx_weight};
use crate::{SimConfig, SimError};

/// Index of a task in [`Machine::tasks`].
pub(crate) type Tid = usize;

/// The pid of task number 0; pids are `PID_BASE + tid`.
pub(crate) const PID_BASE: Pid = 1000;

/// Room in the ring of decisions from user space to the kernel, per step: like the
/// real ring, it is finite, so a policy that keeps deciding is told `Full` (and the
/// runtime retries next step) instead of growing memory without bound.
pub(crate) const DISPATCH_RING_CAPACITY: usize = 4096;

/// The kernel's default slice for tasks the BPF side dispatches by itself.
pub(crate) const SCX_SLICE_DFL_NS: u64 = 20_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Sleeping,
    Running(u32),
    /// Queued in the ring towards user space, not drained yet.
    Ring,
    /// Drained by the policy; no decision applied yet.
    Held,
    /// In a dispatch queue, waiting for a CPU.
    Dsq,
    /// EEVDF: on this CPU's runqueue, waiting.
    Rq(u32),
    Exited,
}

impl State {
    fn is_waiting(self) -> bool {
        matches!(self, State::Ring | State::Held | State::Dsq | State::Rq(_))
    }
}

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
    },
    Ping {
        partner: Tid,
        initiator: bool,
        work_ns: u64,
        /// When the initiator sent the message it now waits a reply for.
        sent_ns: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) name: String,
    pub(crate) comm: [u8; 16],
    pub(crate) group: usize,
    /// Weight as sched_ext shows it (nice 0 = 100).
    pub(crate) weight: u32,
    /// The kernel's weight (nice 0 = 1024), used by the EEVDF model.
    pub(crate) kweight: u64,
    /// CPUs the task may use; `None` is all of them.
    pub(crate) allowed: Option<Box<[bool]>>,
    pub(crate) nr_allowed: u32,
    pub(crate) state: State,
    /// CPU work left before the task's next voluntary action (sleep, send, exit).
    pub(crate) remaining_ns: u64,
    pub(crate) role: Role,
    pub(crate) prev_cpu: u32,
    pub(crate) generation: u64,
    pub(crate) nvcsw: u64,
    pub(crate) sum_exec_ns: u64,
    pub(crate) last_run_ns: u64,
    pub(crate) run_since_sleep_ns: u64,
    /// When the current stretch on a CPU began.
    pub(crate) run_start_ns: u64,
    /// Slice of the latest dispatch, and how much of it was used.
    pub(crate) slice_ns: u64,
    pub(crate) slice_used_ns: u64,
    pub(crate) dsq_vtime: u64,
    /// When the task last became runnable (for the watchdog).
    pub(crate) runnable_since_ns: u64,
    pub(crate) eevdf: EevdfTask,
}

impl Task {
    pub(crate) fn may_run_on(&self, cpu: u32) -> bool {
        match &self.allowed {
            None => true,
            Some(mask) => mask.get(cpu as usize).copied().unwrap_or(false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cur {
    Idle,
    Task(Tid),
    Sched,
}

#[derive(Debug, Clone)]
pub(crate) struct CpuState {
    pub(crate) cur: Cur,
    /// Start of the current stretch for the accounting below.
    since_ns: u64,
    /// Bumped whenever what runs changes, so stale completion events are ignored.
    epoch: u64,
    pub(crate) idle_ns: u64,
    pub(crate) task_ns: u64,
    pub(crate) sched_ns: u64,
    /// Claimed by `select_idle_cpu` for a decision in flight.
    claimed: bool,
    /// The local dispatch queue: (vtime, arrival, task).
    local: BTreeSet<(u64, u64, Tid)>,
}

impl CpuState {
    fn account(&mut self, now: u64) {
        let d = now - self.since_ns;
        match self.cur {
            Cur::Idle => self.idle_ns += d,
            Cur::Task(_) => self.task_ns += d,
            Cur::Sched => self.sched_ns += d,
        }
        self.since_ns = now;
    }
}

/// Per-CPU time accounting of a run: every nanosecond of every CPU is exactly one of
/// these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CpuTime {
    /// Running workload tasks.
    pub task_ns: u64,
    /// Running the user-space scheduler.
    pub scheduler_ns: u64,
    /// Idle.
    pub idle_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    End,
    Tick,
    Wake(Tid),
    BurstEnd { cpu: u32, epoch: u64 },
    SchedDone { epoch: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sched {
    /// Nothing to do.
    Idle,
    /// Has work and waits for a CPU.
    Needed,
    /// On this CPU until its `SchedDone` event.
    Running(u32),
}

#[derive(Debug)]
struct GroupState {
    name: String,
    kind: &'static str,
    nice: i32,
    tasks: Vec<Tid>,
    nr_tasks: u32,
    lateness: LatencyRecorder,
    frames: u64,
    misses: u64,
    // Jobs.
    work: Option<WorkDist>,
    rng: Rng,
    total: Option<u64>,
    started: u64,
    completed: u64,
    completion: LatencyRecorder,
    job_cpu_ns: Vec<u64>,
    // Ping-pong.
    rounds: Option<u64>,
    round_trips: u64,
    rtt: LatencyRecorder,
    allowed: Option<Box<[bool]>>,
}

/// Which scheduler drives the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Scx,
    Eevdf,
}

/// A tick that finds the user-space scheduler waiting for a CPU this long ends one
/// running task's slice for it (`USERSCHED_WAIT_NS` in the dispatcher).
const SCHED_WAIT_NS: u64 = 1_000_000;

/// The simulated machine. In [`Mode::Scx`] it is a [`schedkit_core::Backend`].
pub(crate) struct Machine {
    pub(crate) cfg: SimConfig,
    pub(crate) mode: Mode,
    pub(crate) now: u64,
    pub(crate) end: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    pub(crate) tasks: Vec<Task>,
    pub(crate) cpus: Vec<CpuState>,
    groups: Vec<GroupState>,
    scenario: String,
    /// Runnable tasks not on a CPU.
    nr_waiting: u64,
    /// Tasks that were ever alive and may still be (compacted by the watchdog).
    live: Vec<Tid>,
    next_watchdog_ns: u64,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) trace: Option<Trace>,
    dsq_seq: u64,

    // --- sched_ext model ---
    ring: VecDeque<(Tid, u64)>,
    exits: Vec<Pid>,
    shared: BTreeSet<(u64, u64, Tid)>,
    pending: Vec<Decision>,
    /// Decisions for any CPU that may preempt, checked once idle CPUs took their pick.
    preempt_waiting: Vec<(Tid, u64)>,
    sched: Sched,
    sched_epoch: u64,
    /// The scheduler holds a CPU and a step is due.
    sched_ready: bool,
    sched_last_cpu: u32,
    sched_start_ns: u64,
    /// When the scheduler last started waiting for a CPU.
    sched_needed_ns: u64,
    /// Slices ended for the scheduler by the tick.
    pub(crate) sched_preemptions: u64,
    sched_until_ns: u64,
    held: u64,
    work_this_step: u64,
    pub(crate) counters: Counters,
    pub(crate) steps: u64,
    /// Decisions received from the policy.
    pub(crate) decisions: u64,
    /// Times a task was put on a CPU.
    pub(crate) context_switches: u64,

    // --- EEVDF model ---
    pub(crate) rqs: Vec<Rq>,
}

fn comm_of(name: &str) -> [u8; 16] {
    let mut comm = [0u8; 16];
    for (d, s) in comm.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    comm
}

impl Machine {
    pub(crate) fn new(spec: &Spec, cfg: &SimConfig, mode: Mode) -> Result<Machine, SimError> {
        let n = cfg.nr_cpus;
        if n == 0 || n > 1024 {
            return Err(SimError::Config(format!(
                "the number of CPUs must be between 1 and 1024, got {n}"
            )));
        }
        if cfg.hz == 0 || cfg.hz > 10_000 {
            return Err(SimError::Config(format!(
                "HZ must be between 1 and 10000, got {}",
                cfg.hz
            )));
        }
        let end = cfg.duration_ns.unwrap_or(spec.duration_ns);
        if end == 0 {
            return Err(SimError::Config("the duration must be positive".into()));
        }
        // Like the executor: a per-CPU `parallel` can pass the limit on many CPUs.
        spec.check_nr_tasks(n)
            .map_err(|e| SimError::Config(e.to_string()))?;
        let mut m = Machine {
            cfg: cfg.clone(),
            mode,
            now: 0,
            end,
            events: BinaryHeap::with_capacity(1024),
            seq: 0,
            tasks: Vec::with_capacity(1024),
            cpus: (0..n)
                .map(|_| CpuState {
                    cur: Cur::Idle,
                    since_ns: 0,
                    epoch: 0,
                    idle_ns: 0,
                    task_ns: 0,
                    sched_ns: 0,
                    claimed: false,
                    local: BTreeSet::new(),
                })
                .collect(),
            groups: Vec::new(),
            scenario: spec.name.clone(),
            nr_waiting: 0,
            live: Vec::new(),
            next_watchdog_ns: 0,
            exit: None,
            trace: cfg.trace.then(|| Trace::new(n)),
            dsq_seq: 0,
            ring: VecDeque::with_capacity(1024),
            exits: Vec::with_capacity(64),
            shared: BTreeSet::new(),
            pending: Vec::with_capacity(1024),
            preempt_waiting: Vec::with_capacity(1024),
            sched: Sched::Idle,
            sched_epoch: 0,
            sched_ready: false,
            sched_last_cpu: 0,
            sched_start_ns: 0,
            sched_needed_ns: 0,
            sched_preemptions: 0,
            sched_until_ns: 0,
            held: 0,
            work_this_step: 0,
            counters: Counters::default(),
            steps: 0,
            decisions: 0,
            context_switches: 0,
            rqs: (0..n).map(|_| Rq::default()).collect(),
        };
        m.next_watchdog_ns = m.watchdog_interval();
        m.push(end, Ev::End);
        m.push(m.tick_ns(), Ev::Tick);
        if mode == Mode::Scx {
            // The scheduler starts on CPU 0 with every initial task in its ring.
            m.sched = Sched::Running(0);
            m.sched_ready = true;
            m.cpus[0].cur = Cur::Sched;
        }
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
            m.groups.push(gs);
            match g.kind {
                Kind::Periodic { period_ns, work_ns } => {
                    for i in 0..g.count {
                        let role = Role::Periodic {
                            period_ns,
                            work_ns,
                            release_ns: 0,
                            started: false,
                        };
                        let t = m.new_task(gi, format!("{}-{i}", g.name), g.nice, role, 0);
                        m.push(0, Ev::Wake(t));
                    }
                }
                Kind::Cpu => {
                    for i in 0..g.count {
                        let t =
                            m.new_task(gi, format!("{}-{i}", g.name), g.nice, Role::Hog, u64::MAX);
                        m.make_runnable(t, 0);
                    }
                }
                Kind::Jobs { .. } => {
                    let nr = m.groups[gi].nr_tasks;
                    for _ in 0..nr {
                        m.spawn_job(gi);
                    }
                }
                Kind::PingPong { work_ns, .. } => {
                    for i in 0..g.count {
                        let a = m.tasks.len();
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
                        m.new_task(gi, format!("{}-{i}a", g.name), g.nice, ra, work_ns);
                        m.new_task(gi, format!("{}-{i}b", g.name), g.nice, rb, work_ns);
                        m.make_runnable(a, 0);
                    }
                }
            }
        }
        Ok(m)
    }

    fn tick_ns(&self) -> u64 {
        1_000_000_000 / self.cfg.hz as u64
    }

    fn watchdog_interval(&self) -> u64 {
        (self.cfg.watchdog_timeout_ns / 4).clamp(self.tick_ns(), 1_000_000_000)
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, ev)));
    }

    fn new_task(&mut self, group: usize, name: String, nice: i32, role: Role, work: u64) -> Tid {
        let tid = self.tasks.len();
        let n = self.cpus.len() as u32;
        let allowed = self.groups[group].allowed.clone();
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
        self.tasks.push(Task {
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
            generation: 0,
            nvcsw: 0,
            sum_exec_ns: 0,
            last_run_ns: 0,
            run_since_sleep_ns: 0,
            run_start_ns: 0,
            slice_ns: 0,
            slice_used_ns: 0,
            dsq_vtime: 0,
            runnable_since_ns: 0,
            eevdf: EevdfTask::default(),
        });
        self.groups[group].tasks.push(tid);
        self.live.push(tid);
        if let Some(tr) = &mut self.trace {
            tr.task_names.push(self.tasks[tid].name.clone());
            // The workload group's first task stands for its process.
            tr.task_tgids.push(self.groups[group].tasks[0]);
        }
        tid
    }

    fn spawn_job(&mut self, g: usize) {
        let gs = &mut self.groups[g];
        if gs.total.is_some_and(|t| gs.started >= t) {
            return;
        }
        let Some(work) = gs.work else { return };
        let w = work.sample_work_ns(&mut gs.rng).max(1);
        gs.started += 1;
        let name = format!("{}#{}", gs.name, gs.started);
        let nice = gs.nice;
        let now = self.now;
        let t = self.new_task(g, name, nice, Role::Job { spawned_ns: now }, w);
        self.make_runnable(t, 0);
    }

    pub(crate) fn set_state(&mut self, tid: Tid, s: State) {
        let was = self.tasks[tid].state.is_waiting();
        let is = s.is_waiting();
        if was && !is {
            self.nr_waiting -= 1;
        } else if is && !was {
            self.nr_waiting += 1;
        }
        self.tasks[tid].state = s;
    }

    // ------------------------------------------------------------------ running

    /// Puts `tid` on `cpu`, which must be idle.
    pub(crate) fn run_task(&mut self, cpu: u32, tid: Tid) {
        let now = self.now;
        let c = &mut self.cpus[cpu as usize];
        debug_assert_eq!(c.cur, Cur::Idle);
        c.account(now);
        c.cur = Cur::Task(tid);
        c.epoch += 1;
        let epoch = c.epoch;
        self.context_switches += 1;
        self.set_state(tid, State::Running(cpu));
        let t = &mut self.tasks[tid];
        t.run_start_ns = now;
        t.prev_cpu = cpu;
        t.eevdf.vupdate_ns = now;
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
        let rem = self.tasks[tid].remaining_ns;
        if rem <= self.end - now {
            self.push(now + rem, Ev::BurstEnd { cpu, epoch });
        }
    }

    /// Takes the running task off `cpu`, accounting its run; the CPU is left idle and
    /// the task's state is for the caller to set.
    pub(crate) fn stop_task(&mut self, cpu: u32) -> Tid {
        let now = self.now;
        let c = &mut self.cpus[cpu as usize];
        let Cur::Task(tid) = c.cur else {
            unreachable!("stop_task on a CPU that runs no task")
        };
        c.account(now);
        c.cur = Cur::Idle;
        c.epoch += 1;
        if self.mode == Mode::Eevdf {
            self.eevdf_update_curr(cpu);
        }
        let t = &mut self.tasks[tid];
        let ran = now - t.run_start_ns;
        t.sum_exec_ns += ran;
        t.last_run_ns = ran;
        t.run_since_sleep_ns += ran;
        t.slice_used_ns += ran;
        if t.remaining_ns != u64::MAX {
            t.remaining_ns -= ran;
        }
        if let Some(tr) = &mut self.trace {
            if ran > 0 {
                tr.records.push(Record::Run {
                    cpu,
                    task: tid,
                    start_ns: t.run_start_ns,
                    end_ns: now,
                });
            }
        }
        tid
    }

    /// A task became runnable: it woke up (`ENQ_WAKEUP` in `flags`), was created
    /// (`flags` 0), or was preempted (`flags` 0, from the tick).
    fn make_runnable(&mut self, tid: Tid, flags: u64) {
        self.tasks[tid].runnable_since_ns = self.now;
        match self.mode {
            Mode::Scx => self.scx_enqueue(tid, flags),
            Mode::Eevdf => self.eevdf_wakeup(tid, flags),
        }
    }

    /// Wakes `tid`; `waker` is the task that woke it, if one did (not a timer).
    fn wake(&mut self, tid: Tid, waker: Option<Tid>) {
        if self.tasks[tid].state != State::Sleeping {
            return;
        }
        let now = self.now;
        let t = &mut self.tasks[tid];
        match &mut t.role {
            Role::Periodic {
                work_ns, started, ..
            } => {
                *started = false;
                t.remaining_ns = *work_ns;
            }
            Role::Ping { work_ns, .. } => t.remaining_ns = *work_ns,
            Role::Hog | Role::Job { .. } => {}
        }
        if let Some(tr) = &mut self.trace {
            tr.records.push(Record::Wake {
                cpu: t.prev_cpu,
                task: tid,
                waker,
                t_ns: now,
            });
        }
        self.make_runnable(tid, ENQ_WAKEUP);
    }

    /// The running task on `cpu` finished its burst of work.
    fn burst_end(&mut self, cpu: u32) {
        let now = self.now;
        let tid = self.stop_task(cpu);
        let g = self.tasks[tid].group;
        match self.tasks[tid].role {
            Role::Periodic {
                period_ns,
                work_ns,
                release_ns,
                ..
            } => {
                if now > release_ns + period_ns {
                    self.groups[g].misses += 1;
                }
                let next = release_ns + period_ns;
                if next <= now {
                    // Already late for the next frame: start it at once, on this CPU.
                    self.tasks[tid].role = Role::Periodic {
                        period_ns,
                        work_ns,
                        release_ns: next,
                        started: false,
                    };
                    self.tasks[tid].remaining_ns = work_ns;
                    self.continue_running(cpu, tid);
                    return;
                }
                self.tasks[tid].role = Role::Periodic {
                    period_ns,
                    work_ns,
                    release_ns: next,
                    started: false,
                };
                self.block(cpu, tid, false);
                if next < self.end {
                    self.push(next, Ev::Wake(tid));
                }
            }
            Role::Hog => {
                // A hog's work never ends; nothing to do (not reached).
                self.continue_running(cpu, tid);
                return;
            }
            Role::Job { spawned_ns } => {
                self.block(cpu, tid, true);
                let gs = &mut self.groups[g];
                gs.completed += 1;
                gs.completion.record(now - spawned_ns);
                gs.job_cpu_ns.push(self.tasks[tid].sum_exec_ns);
                self.spawn_job(g);
            }
            Role::Ping {
                partner,
                initiator,
                work_ns,
                ..
            } => {
                let done = initiator
                    && self.groups[g]
                        .rounds
                        .is_some_and(|r| self.groups[g].round_trips >= r);
                self.block(cpu, tid, false);
                if !done {
                    if initiator {
                        self.tasks[tid].role = Role::Ping {
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
        if self.cpus[cpu as usize].cur == Cur::Idle {
            self.pick_next(cpu);
        }
    }

    /// The task goes on running on `cpu` with new work and without a scheduling
    /// decision (it never blocked).
    fn continue_running(&mut self, cpu: u32, tid: Tid) {
        // The slice accounting and the EEVDF runqueue stay as they are: it is still
        // the same dispatch, the same running task.
        self.run_task(cpu, tid);
    }

    /// `tid`, just taken off `cpu`, goes to sleep (or exits).
    fn block(&mut self, cpu: u32, tid: Tid, exit: bool) {
        let t = &mut self.tasks[tid];
        t.nvcsw += 1;
        t.run_since_sleep_ns = 0;
        if self.mode == Mode::Eevdf {
            self.eevdf_block(cpu, tid);
        }
        if exit {
            self.set_state(tid, State::Exited);
            if self.mode == Mode::Scx {
                self.exits.push(PID_BASE + tid as Pid);
            }
        } else {
            self.set_state(tid, State::Sleeping);
        }
    }

    /// `cpu` is free: give it what should run next.
    fn pick_next(&mut self, cpu: u32) {
        match self.mode {
            Mode::Scx => self.scx_pick(cpu),
            Mode::Eevdf => self.eevdf_pick_next(cpu),
        }
    }

    // ------------------------------------------------------------------ sched_ext

    fn cpu_is_idle(&self, cpu: u32) -> bool {
        let c = &self.cpus[cpu as usize];
        c.cur == Cur::Idle && !c.claimed && c.local.is_empty()
    }

    fn scx_enqueue(&mut self, tid: Tid, flags: u64) {
        let prev = self.tasks[tid].prev_cpu;
        let nothing_waits = self.ring.is_empty()
            && self.held == 0
            && self.pending.is_empty()
            && self.shared.is_empty();
        if flags & ENQ_WAKEUP != 0
            && self.cfg.kernel_fast_path
            && nothing_waits
            && self.tasks[tid].may_run_on(prev)
            && self.cpu_is_idle(prev)
        {
            // The dispatcher's fast path: straight to the idle CPU it ran on.
            self.counters.kernel_dispatches += 1;
            let t = &mut self.tasks[tid];
            t.slice_ns = SCX_SLICE_DFL_NS;
            t.slice_used_ns = 0;
            self.insert_local(prev, tid, 0, true, false);
            self.pick_next(prev);
            return;
        }
        self.tasks[tid].generation += 1;
        self.set_state(tid, State::Ring);
        self.ring.push_back((tid, flags));
        self.sched_wake();
    }

    fn insert_local(&mut self, cpu: u32, tid: Tid, vtime: u64, kernel: bool, preempt: bool) {
        self.dsq_seq += 1;
        self.cpus[cpu as usize]
            .local
            .insert((vtime, self.dsq_seq, tid));
        self.set_state(tid, State::Dsq);
        self.trace_dispatch(Some(cpu), tid, vtime, kernel, preempt);
    }

    fn trace_dispatch(
        &mut self,
        cpu: Option<u32>,
        tid: Tid,
        vtime: u64,
        kernel: bool,
        preempt: bool,
    ) {
        if let Some(tr) = &mut self.trace {
            tr.records.push(Record::Dispatch {
                cpu,
                task: tid,
                t_ns: self.now,
                slice_ns: self.tasks[tid].slice_ns,
                vtime,
                kernel,
                preempt,
            });
        }
    }

    /// The scheduler has work: it wants a CPU, an idle one if there is one.
    fn sched_wake(&mut self) {
        if self.sched != Sched::Idle {
            return;
        }
        self.sched = Sched::Needed;
        self.sched_needed_ns = self.now;
        if let Some(c) = self.cpus_from_sched_last().find(|&c| self.cpu_is_idle(c)) {
            self.scx_pick(c);
        }
    }

    /// Every CPU, starting from the one the scheduler ran on last.
    fn cpus_from_sched_last(&self) -> impl Iterator<Item = u32> {
        let n = self.cpus.len() as u32;
        let first = self.sched_last_cpu;
        (0..n).map(move |i| (first + i) % n)
    }

    /// Ends the slice of the task running on `cpu` at once: it goes back to the policy,
    /// as at slice expiry, and the CPU picks again.
    fn preempt_cpu(&mut self, cpu: u32) {
        let t = self.stop_task(cpu);
        self.make_runnable(t, 0);
        self.scx_pick(cpu);
    }

    fn scx_pick(&mut self, cpu: u32) {
        if self.cpus[cpu as usize].cur != Cur::Idle {
            return;
        }
        if self.sched == Sched::Needed {
            let now = self.now;
            let c = &mut self.cpus[cpu as usize];
            c.account(now);
            c.cur = Cur::Sched;
            self.sched = Sched::Running(cpu);
            self.sched_ready = true;
            self.sched_last_cpu = cpu;
            self.sched_start_ns = now;
            self.sched_until_ns = now;
            return;
        }
        let c = &mut self.cpus[cpu as usize];
        if let Some(&first) = c.local.first() {
            c.local.remove(&first);
            self.run_task(cpu, first.2);
            return;
        }
        let found = self
            .shared
            .iter()
            .find(|&&(_, _, t)| self.tasks[t].may_run_on(cpu))
            .copied();
        if let Some(e) = found {
            self.shared.remove(&e);
            self.run_task(cpu, e.2);
        }
    }

    /// Records on the timeline the scheduler's run on `cpu`, from its start to now.
    fn trace_sched_run(&mut self, cpu: u32) {
        let now = self.now;
        if let Some(tr) = &mut self.trace {
            if now > self.sched_start_ns {
                tr.records.push(Record::Sched {
                    cpu,
                    start_ns: self.sched_start_ns,
                    end_ns: now,
                });
            }
        }
    }

    fn sched_done(&mut self) {
        let Sched::Running(cpu) = self.sched else {
            return;
        };
        let now = self.now;
        let c = &mut self.cpus[cpu as usize];
        c.account(now);
        c.cur = Cur::Idle;
        self.trace_sched_run(cpu);
        let mut pending = std::mem::take(&mut self.pending);
        for d in pending.drain(..) {
            self.apply(&d);
        }
        self.pending = pending;
        for c in &mut self.cpus {
            c.claimed = false;
        }
        self.sched = if self.ring.is_empty() {
            Sched::Idle
        } else {
            Sched::Needed
        };
        // The scheduler's CPU first, then every other idle one.
        let n = self.cpus.len() as u32;
        for i in 0..n {
            let c = (cpu + i) % n;
            if self.cpus[c as usize].cur == Cur::Idle {
                self.scx_pick(c);
            }
        }
        self.preempt_for_waiting();
    }

    /// Decisions that may preempt and found no idle CPU: as the dispatcher does, kick
    /// the allowed CPU whose running task has the largest vtime, if larger than the
    /// decision's plus its margin.
    fn preempt_for_waiting(&mut self) {
        let mut waiting = std::mem::take(&mut self.preempt_waiting);
        for (tid, vtime) in waiting.drain(..) {
            if self.tasks[tid].state != State::Dsq {
                continue; // already running
            }
            let victim = (0..self.cpus.len() as u32)
                .filter_map(|c| match self.cpus[c as usize].cur {
                    Cur::Task(t) if self.tasks[tid].may_run_on(c) => {
                        Some((self.tasks[t].dsq_vtime, c))
                    }
                    _ => None,
                })
                .filter(|&(v, _)| v > vtime)
                .max();
            if let Some((_, cpu)) = victim {
                self.counters.preemptions += 1;
                self.preempt_cpu(cpu);
            }
        }
        self.preempt_waiting = waiting;
    }

    fn apply(&mut self, d: &Decision) {
        let tid = (d.pid - PID_BASE) as usize;
        let ok = d.pid >= PID_BASE
            && tid < self.tasks.len()
            && self.tasks[tid].state == State::Held
            && self.tasks[tid].generation == d.generation;
        if !ok {
            self.counters.cancelled += 1;
            return;
        }
        self.counters.user_dispatches += 1;
        let t = &mut self.tasks[tid];
        t.slice_ns = if d.slice_ns == 0 {
            SCX_SLICE_DFL_NS
        } else {
            d.slice_ns
        };
        t.slice_used_ns = 0;
        t.dsq_vtime = d.vtime;
        match d.target {
            CpuTarget::On(Cpu(c)) if (c as usize) < self.cpus.len() && t.may_run_on(c) => {
                self.insert_local(c, tid, d.vtime, false, d.preempt_margin_ns.is_some());
            }
            target => {
                if matches!(target, CpuTarget::On(_)) {
                    self.counters.bounced += 1;
                }
                self.dsq_seq += 1;
                self.shared.insert((d.vtime, self.dsq_seq, tid));
                self.set_state(tid, State::Dsq);
                self.trace_dispatch(None, tid, d.vtime, false, d.preempt_margin_ns.is_some());
                if let Some(margin) = d.preempt_margin_ns {
                    self.preempt_waiting
                        .push((tid, d.vtime.saturating_add(margin)));
                }
            }
        }
    }

    fn scx_tick(&mut self) {
        for cpu in 0..self.cpus.len() as u32 {
            let Cur::Task(tid) = self.cpus[cpu as usize].cur else {
                continue;
            };
            let t = &self.tasks[tid];
            let used = t.slice_used_ns + (self.now - t.run_start_ns);
            if used >= t.slice_ns {
                self.stop_task(cpu);
                self.make_runnable(tid, 0);
                if self.cpus[cpu as usize].cur == Cur::Idle {
                    self.scx_pick(cpu);
                }
            }
        }
        if self.held > 0 {
            // The scheduler holds tasks: its periodic wake-up lets it try again.
            self.sched_wake();
        }
        if self.sched == Sched::Needed && self.now - self.sched_needed_ns >= SCHED_WAIT_NS {
            // It has waited too long for a CPU: the first CPU found running a task
            // (from the one it ran on last) ends that task's slice for it.
            if let Some(cpu) = self
                .cpus_from_sched_last()
                .find(|&c| matches!(self.cpus[c as usize].cur, Cur::Task(_)))
            {
                self.sched_preemptions += 1;
                self.preempt_cpu(cpu);
            }
        }
    }

    fn watchdog(&mut self) {
        if self.now < self.next_watchdog_ns {
            return;
        }
        self.next_watchdog_ns = self.now + self.watchdog_interval();
        let timeout = self.cfg.watchdog_timeout_ns;
        let mut worst: Option<(u64, Tid)> = None;
        let tasks = &self.tasks;
        self.live.retain(|&t| tasks[t].state != State::Exited);
        for &tid in &self.live {
            let t = &self.tasks[tid];
            if matches!(t.state, State::Ring | State::Held | State::Dsq) {
                let waited = self.now - t.runnable_since_ns;
                if waited >= timeout && worst.is_none_or(|(w, _)| waited > w) {
                    worst = Some((waited, tid));
                }
            }
        }
        if let Some((waited, tid)) = worst {
            let t = &self.tasks[tid];
            self.exit = Some(ExitInfo {
                kind: ExitInfo::KIND_ERROR_STALL,
                exit_code: 0,
                reason: "runnable task stall".into(),
                message: format!(
                    "{}[{}] failed to run for {:.3}s (watchdog timeout {:.3}s)",
                    t.name,
                    PID_BASE + tid as Pid,
                    waited as f64 / 1e9,
                    timeout as f64 / 1e9
                ),
            });
            self.finish();
        }
    }

    // ------------------------------------------------------------------ events

    /// Handles the next event. Returns `false` once the run is over.
    pub(crate) fn process_next(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        let Some(Reverse((t, _, ev))) = self.events.pop() else {
            self.finish();
            return false;
        };
        self.now = t;
        match ev {
            Ev::End => {
                self.finish();
                return false;
            }
            Ev::Tick => {
                if let Some(tr) = &mut self.trace {
                    tr.records.push(Record::Runnable {
                        t_ns: t,
                        n: self.nr_waiting,
                    });
                }
                match self.mode {
                    Mode::Scx => {
                        self.scx_tick();
                        self.watchdog();
                    }
                    Mode::Eevdf => self.eevdf_tick(),
                }
                let next = t + self.tick_ns();
                if next < self.end {
                    self.push(next, Ev::Tick);
                }
            }
            Ev::Wake(tid) => self.wake(tid, None),
            Ev::BurstEnd { cpu, epoch } => {
                if self.cpus[cpu as usize].epoch == epoch {
                    self.burst_end(cpu);
                }
            }
            Ev::SchedDone { epoch } => {
                if epoch == self.sched_epoch {
                    self.sched_done();
                }
            }
        }
        self.exit.is_none()
    }

    /// Ends the run at the current time: everything running is accounted up to now.
    fn finish(&mut self) {
        for cpu in 0..self.cpus.len() as u32 {
            match self.cpus[cpu as usize].cur {
                Cur::Task(tid) => {
                    self.stop_task(cpu);
                    // Still running at the end: mark it so, without another decision.
                    self.tasks[tid].state = State::Running(cpu);
                }
                Cur::Sched => {
                    let now = self.now;
                    self.cpus[cpu as usize].account(now);
                    self.trace_sched_run(cpu);
                }
                Cur::Idle => {
                    let now = self.now;
                    self.cpus[cpu as usize].account(now);
                }
            }
        }
        if self.exit.is_none() {
            self.exit = Some(ExitInfo {
                kind: ExitInfo::KIND_DONE,
                exit_code: 0,
                reason: "simulation finished".into(),
                message: String::new(),
            });
        }
    }

    /// Runs an in-kernel scheduler (no user space) to the end.
    pub(crate) fn run_to_end(&mut self, mut progress: impl FnMut(u64, u64)) {
        let mut n = 0u32;
        while self.process_next() {
            n = n.wrapping_add(1);
            if n & 4095 == 0 {
                progress(self.now, self.end);
            }
        }
    }

    // ------------------------------------------------------------------ results

    pub(crate) fn cpu_times(&self) -> Vec<CpuTime> {
        self.cpus
            .iter()
            .map(|c| CpuTime {
                task_ns: c.task_ns,
                scheduler_ns: c.sched_ns,
                idle_ns: c.idle_ns,
            })
            .collect()
    }

    /// The shared report of this run, for scheduler `name`.
    pub(crate) fn report(&mut self, name: &str) -> Report {
        let duration = self.now;
        // A frame started but still unfinished although its deadline passed is missed.
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
        let mut groups = Vec::with_capacity(self.groups.len());
        for gs in &self.groups {
            let mut gr = GroupReport::new(&gs.name, gs.kind, gs.nr_tasks, gs.nice);
            match gs.kind {
                "jobs" => {
                    gr.task_cpu_ns = gs.job_cpu_ns.clone();
                    gr.jobs = Some(JobStats::new(
                        gs.started,
                        gs.completed,
                        gs.completion.summary(),
                        duration,
                    ));
                }
                kind => {
                    gr.task_cpu_ns = gs
                        .tasks
                        .iter()
                        .map(|&t| self.tasks[t].sum_exec_ns)
                        .collect();
                    if kind == "periodic" {
                        gr.periodic = Some(PeriodicStats::new(
                            gs.frames,
                            gs.misses,
                            gs.lateness.summary(),
                        ));
                    } else if kind == "pingpong" {
                        gr.pingpong = Some(PingPongStats::new(
                            gs.round_trips,
                            gs.rtt.summary(),
                            duration,
                        ));
                    }
                }
            }
            groups.push(gr);
        }
        Report::new(
            &self.scenario,
            name,
            duration,
            self.cpus.len() as u32,
            groups,
        )
    }

    fn queued_task(&self, tid: Tid, flags: u64) -> QueuedTask {
        let t = &self.tasks[tid];
        QueuedTask {
            pid: PID_BASE + tid as Pid,
            comm: t.comm,
            prev_cpu: Cpu(t.prev_cpu),
            nr_cpus_allowed: t.nr_allowed,
            flags,
            weight: t.weight,
            vtime: t.dsq_vtime,
            last_run_ns: t.last_run_ns,
            run_since_sleep_ns: t.run_since_sleep_ns,
            nvcsw: t.nvcsw,
            sum_exec_runtime_ns: t.sum_exec_ns,
            generation: t.generation,
        }
    }
}

impl schedkit_core::Backend for Machine {
    fn now_ns(&self) -> u64 {
        self.now
    }

    fn nr_cpus(&self) -> u32 {
        self.cpus.len() as u32
    }

    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError> {
        let mut n = 0;
        for pid in self.exits.drain(..) {
            out.push(TaskEvent::Exited(pid));
            n += 1;
        }
        while let Some((tid, flags)) = self.ring.pop_front() {
            self.set_state(tid, State::Held);
            out.push(TaskEvent::Queued(self.queued_task(tid, flags)));
            n += 1;
        }
        self.work_this_step += n as u64;
        Ok(n)
    }

    fn nr_queued(&self) -> u64 {
        // As on the kernel: on their way to the policy, or dispatched and not running.
        let in_dsqs: usize =
            self.shared.len() + self.cpus.iter().map(|c| c.local.len()).sum::<usize>();
        (self.ring.len() + in_dsqs) as u64
    }

    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        let tid = usize::try_from(task.pid - PID_BASE).ok()?;
        let t = self.tasks.get(tid)?;
        let prev = t.prev_cpu;
        let n = self.cpus.len() as u32;
        let cpu = (0..n)
            .map(|i| (prev + i) % n)
            .find(|&c| t.may_run_on(c) && self.cpu_is_idle(c))?;
        self.cpus[cpu as usize].claimed = true;
        Some(Cpu(cpu))
    }

    fn dispatch(&mut self, decision: &Decision) -> Result<(), BackendError> {
        if self.pending.len() >= DISPATCH_RING_CAPACITY {
            return Err(BackendError::Full);
        }
        self.pending.push(*decision);
        self.work_this_step += 1;
        self.decisions += 1;
        Ok(())
    }

    fn step_done(&mut self, nr_held: u64) {
        self.held = nr_held;
        self.steps += 1;
        self.sched_ready = false;
        let cost = self.cfg.step_cost_ns + self.cfg.per_task_cost_ns * self.work_this_step;
        self.work_this_step = 0;
        if let Sched::Running(_) = self.sched {
            self.sched_until_ns = self.sched_until_ns.max(self.now) + cost;
            self.sched_epoch += 1;
            let (t, e) = (self.sched_until_ns, self.sched_epoch);
            self.push(t, Ev::SchedDone { epoch: e });
        }
    }

    fn wait(&mut self) -> Result<(), BackendError> {
        while self.exit.is_none() && !self.sched_ready {
            self.process_next();
        }
        Ok(())
    }

    fn exit_info(&mut self) -> Option<ExitInfo> {
        self.exit.clone()
    }

    fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.nr_queued = self.ring.len() as u64;
        c.nr_held = self.held;
        c.nr_running = self
            .cpus
            .iter()
            .filter(|c| matches!(c.cur, Cur::Task(_)))
            .count() as u64;
        c
    }

    fn scheduler_cpu_ns(&self) -> u64 {
        // Accounted up to the scheduler's last switch; its step in progress, if any,
        // counts when it ends.
        self.cpus.iter().map(|c| c.sched_ns).sum()
    }
}
