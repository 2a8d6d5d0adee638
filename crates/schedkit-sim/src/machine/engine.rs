//! The engine every scheduler model shares: the clock, the event queue, the CPUs
//! with their time accounting, the tasks, and the two primitives a scheduler uses,
//! [`Engine::run_task`] and [`Engine::stop_task`]. It knows nothing of how the next
//! task is chosen; see [`super::SchedulerModel`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use schedkit_core::{ExitInfo, Pid};
use schedkit_workload::Spec;

use super::workload::{GroupState, Role};
use crate::trace::{Record, Trace};
use crate::SimConfig;

/// Index of a task in [`Engine::tasks`].
pub(crate) type Tid = usize;

/// The pid of task number 0; pids are `PID_BASE + tid`.
pub(crate) const PID_BASE: Pid = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Sleeping,
    Running(u32),
    /// sched_ext: queued in the ring towards user space, not drained yet.
    Ring,
    /// sched_ext: drained by the policy; no decision applied yet.
    Held,
    /// sched_ext: in a dispatch queue, waiting for a CPU.
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

/// A task as every scheduler model sees it; each model keeps its own per-task state
/// beside it.
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
    pub(crate) nvcsw: u64,
    pub(crate) sum_exec_ns: u64,
    pub(crate) last_run_ns: u64,
    pub(crate) run_since_sleep_ns: u64,
    /// When the current stretch on a CPU began.
    pub(crate) run_start_ns: u64,
    /// CPU time the current stretch spends on the machine's costs (the switch, a
    /// migration, creating the process) before the task's own work, ns.
    pub(crate) overhead_ns: u64,
    /// Cost still owed for creating the task's process, paid on its first run, ns.
    pub(crate) spawn_cost_ns: u64,
    /// The part of `overhead_ns` that is the process's creation.
    pub(crate) overhead_spawn_ns: u64,
    /// Has run at least once (so `prev_cpu` is where its caches are).
    pub(crate) has_run: bool,
    /// The process it belongs to.
    pub(crate) mm: Mm,
}

impl Task {
    pub(crate) fn may_run_on(&self, cpu: u32) -> bool {
        match &self.allowed {
            None => true,
            Some(mask) => mask.get(cpu as usize).copied().unwrap_or(false),
        }
    }
}

/// What a CPU is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cur {
    Idle,
    Task(Tid),
    /// The user-space scheduler (sched_ext only).
    Sched,
}

#[derive(Debug, Clone)]
pub(crate) struct CpuState {
    pub(crate) cur: Cur,
    /// Start of the current stretch for the accounting below.
    since_ns: u64,
    /// Bumped whenever what runs changes, so stale completion events are ignored.
    pub(crate) epoch: u64,
    pub(crate) idle_ns: u64,
    pub(crate) task_ns: u64,
    pub(crate) sched_ns: u64,
    /// The address space the CPU last ran in (the idle task borrows the previous one,
    /// as the kernel's lazy TLB does), see [`Mm`].
    pub(crate) mm: Mm,
}

/// An address space: switching between two costs [`SimConfig::mm_switch_ns`] more
/// than switching between threads of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mm {
    /// None yet (the CPU has run nothing).
    None,
    /// The workload executor's process: its periodic, CPU and ping-pong threads.
    Executor,
    /// A job's own process.
    Job(Tid),
    /// The user-space scheduler's process.
    Scheduler,
}

impl CpuState {
    /// Accounts the current stretch up to `now` to what runs.
    pub(crate) fn account(&mut self, now: u64) {
        let d = now - self.since_ns;
        match self.cur {
            Cur::Idle => self.idle_ns += d,
            Cur::Task(_) => self.task_ns += d,
            Cur::Sched => self.sched_ns += d,
        }
        self.since_ns = now;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
    End,
    Tick,
    Wake(Tid),
    BurstEnd {
        cpu: u32,
        epoch: u64,
    },
    /// The user-space scheduler's step is over (sched_ext only).
    SchedDone {
        epoch: u64,
    },
    /// The slice of the task on `cpu` since `epoch` is used up (EEVDF's HRTICK).
    SliceEnd {
        cpu: u32,
        epoch: u64,
    },
}

/// The machine's shared state. See the module documentation.
pub(crate) struct Engine {
    pub(crate) cfg: SimConfig,
    pub(crate) now: u64,
    pub(crate) end: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    pub(crate) tasks: Vec<Task>,
    pub(crate) cpus: Vec<CpuState>,
    /// The workload's groups, with the figures they collect.
    pub(crate) groups: Vec<GroupState>,
    pub(crate) scenario: String,
    /// Runnable tasks not on a CPU.
    nr_waiting: u64,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) trace: Option<Trace>,
    /// Times a task was put on a CPU.
    pub(crate) context_switches: u64,
}

impl Engine {
    /// An engine with `cfg.nr_cpus` idle CPUs (checked by the caller), no task and no
    /// event, for a run ending at `end`.
    pub(crate) fn new(spec: &Spec, cfg: &SimConfig, end: u64) -> Engine {
        let n = cfg.nr_cpus;
        Engine {
            cfg: cfg.clone(),
            now: 0,
            end,
            events: BinaryHeap::with_capacity(1024),
            seq: 0,
            tasks: Vec::with_capacity(1024),
            cpus: (0..n)
                .map(|_| CpuState {
                    cur: Cur::Idle,
                    since_ns: 0,
                    mm: Mm::None,
                    epoch: 0,
                    idle_ns: 0,
                    task_ns: 0,
                    sched_ns: 0,
                })
                .collect(),
            groups: Vec::new(),
            scenario: spec.name.clone(),
            nr_waiting: 0,
            exit: None,
            trace: cfg.trace.then(|| Trace::new(n)),
            context_switches: 0,
        }
    }

    pub(crate) fn tick_ns(&self) -> u64 {
        tick_ns(&self.cfg)
    }

    pub(crate) fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, ev)));
    }

    /// The next event and its time, if any.
    pub(crate) fn pop(&mut self) -> Option<(u64, Ev)> {
        self.events.pop().map(|Reverse((t, _, ev))| (t, ev))
    }

    /// Adds `task` (a new task, sleeping) and returns its number.
    pub(crate) fn add_task(&mut self, task: Task) -> Tid {
        let tid = self.tasks.len();
        let group = task.group;
        self.tasks.push(task);
        self.groups[group].tasks.push(tid);
        if let Some(tr) = &mut self.trace {
            tr.task_names.push(self.tasks[tid].name.clone());
            // The workload group's first task stands for its process.
            tr.task_tgids.push(self.groups[group].tasks[0]);
        }
        tid
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

    /// Records on the timeline how many runnable tasks wait for a CPU.
    pub(crate) fn trace_runnable(&mut self) {
        if let Some(tr) = &mut self.trace {
            tr.records.push(Record::Runnable {
                t_ns: self.now,
                n: self.nr_waiting,
            });
        }
    }

    /// Puts `tid` on `cpu`, which must be idle, paying the machine's context switch
    /// (and migration, and process creation) cost before its work goes on.
    pub(crate) fn run_task(&mut self, cpu: u32, tid: Tid) {
        self.run_task_with(cpu, tid, true);
    }

    /// [`Engine::run_task`]; `switched` is false when the task just goes on running
    /// where it was (no switch happened, so none is paid).
    pub(crate) fn run_task_with(&mut self, cpu: u32, tid: Tid, switched: bool) {
        let now = self.now;
        let c = &mut self.cpus[cpu as usize];
        debug_assert_eq!(c.cur, Cur::Idle);
        c.account(now);
        c.cur = Cur::Task(tid);
        c.epoch += 1;
        let epoch = c.epoch;
        self.context_switches += 1;
        self.set_state(tid, State::Running(cpu));
        let (cs, mig) = (self.cfg.context_switch_ns, self.cfg.migration_ns);
        let t = &mut self.tasks[tid];
        let c = &mut self.cpus[cpu as usize];
        t.overhead_ns = std::mem::take(&mut t.spawn_cost_ns);
        t.overhead_spawn_ns = t.overhead_ns;
        if switched {
            t.overhead_ns += cs;
            if t.has_run && t.prev_cpu != cpu {
                t.overhead_ns += mig;
            }
            if c.mm != t.mm {
                t.overhead_ns += self.cfg.mm_switch_ns;
            }
        }
        c.mm = t.mm;
        t.has_run = true;
        t.run_start_ns = now;
        t.prev_cpu = cpu;
        let overhead = t.overhead_ns;
        self.workload_on_cpu(tid);
        let rem = self.tasks[tid].remaining_ns.saturating_add(overhead);
        if rem <= self.end - now {
            self.push(now + rem, Ev::BurstEnd { cpu, epoch });
        }
    }

    /// Takes the running task off `cpu`, accounting its run; the CPU is left idle and
    /// the task's state is for the caller to set. Scheduler models call this from
    /// their own [`super::SchedulerModel::stop_task`], which everything else calls.
    pub(crate) fn stop_task(&mut self, cpu: u32) -> Tid {
        let now = self.now;
        let c = &mut self.cpus[cpu as usize];
        let Cur::Task(tid) = c.cur else {
            unreachable!("stop_task on a CPU that runs no task")
        };
        c.account(now);
        c.cur = Cur::Idle;
        c.epoch += 1;
        let t = &mut self.tasks[tid];
        let ran = now - t.run_start_ns;
        t.sum_exec_ns += ran;
        t.last_run_ns = ran;
        t.run_since_sleep_ns += ran;
        // The stretch's overhead came first; a task taken off before it was paid
        // pays it again next time (the switch happens again).
        let worked = ran.saturating_sub(t.overhead_ns);
        // The switch is paid first; the part of the process's creation not paid yet
        // is still owed.
        let unpaid = t.overhead_ns.saturating_sub(ran);
        t.spawn_cost_ns = unpaid.min(t.overhead_spawn_ns);
        t.overhead_ns = 0;
        t.overhead_spawn_ns = 0;
        if t.remaining_ns != u64::MAX {
            t.remaining_ns -= worked;
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
}

/// The scheduler tick's period under `cfg`, ns.
pub(crate) fn tick_ns(cfg: &SimConfig) -> u64 {
    1_000_000_000 / cfg.hz as u64
}
