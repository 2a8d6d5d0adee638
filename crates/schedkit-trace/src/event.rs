//! The event model. Times are nanoseconds from an arbitrary origin (the kernel's
//! monotonic clock for real runs, the start of the simulation for simulated ones).

use serde::{Deserialize, Serialize};

/// A thread: the kernel's tid in a real run, the task's index + 1 in a simulated
/// one. 0 is the idle task (nothing runs).
pub type Pid = u32;

/// Where the trace comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceSource {
    /// Recorded on a live kernel.
    Kernel,
    /// Produced by the simulator.
    Simulated,
}

/// What is known when the recording starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceInfo {
    pub source: TraceSource,
    /// Number of CPUs (possible CPUs on a real machine); CPU tracks are 0..nr_cpus.
    pub nr_cpus: u32,
    /// The scheduler attached when the recording started: "eevdf" (the kernel's
    /// default), a schedkit policy's name, or another sched_ext scheduler's name.
    pub scheduler: String,
    /// Time of the first event.
    pub start_ns: u64,
}

/// Where a decision sends a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The local queue of this CPU.
    Cpu(u32),
    /// The shared queue: the first CPU that is free.
    Any,
}

/// A counter track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Counter {
    /// Runnable tasks not on a CPU.
    Waiting,
    /// Tasks handed to user space and not yet decided (sched_ext) .
    Queued,
    /// Tasks the policy holds (received, no decision sent yet).
    Held,
    /// Decisions the dispatcher could not take because its queue was full, cumulative.
    Congested,
}

impl Counter {
    /// The track's name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Waiting => "runnable tasks waiting",
            Counter::Queued => "tasks waiting for the policy",
            Counter::Held => "tasks held by the policy",
            Counter::Congested => "decisions refused (queue full)",
        }
    }
}

/// One thing that happened. Every variant carries its time, `ts_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Names a thread: sent before (or with) its first appearance, and again when
    /// its name changes (exec). `tgid` is its process (equal to `pid` for a
    /// process's main thread; in a simulation, the workload group's first task).
    /// `scheduler` marks the threads of the user-space scheduler itself.
    Thread {
        ts_ns: u64,
        pid: Pid,
        tgid: Pid,
        comm: String,
        scheduler: bool,
    },
    /// `cpu` switched from `prev` to `next` (either may be 0, idle).
    /// `prev_runnable` says `prev` was preempted (still runnable) rather than
    /// blocked or exiting.
    Switch {
        ts_ns: u64,
        cpu: u32,
        prev: Pid,
        prev_runnable: bool,
        next: Pid,
    },
    /// `pid` became runnable (sched_wakeup, or sched_wakeup_new when `new_task`),
    /// to run on `cpu`; `waker` is the thread that woke it, when known (the thread
    /// running on the waking CPU).
    Wakeup {
        ts_ns: u64,
        pid: Pid,
        cpu: u32,
        waker: Option<Pid>,
        new_task: bool,
    },
    /// `pid` moved from CPU `from` to CPU `to`.
    Migrate {
        ts_ns: u64,
        pid: Pid,
        from: u32,
        to: u32,
    },
    /// `pid` exited.
    Exit { ts_ns: u64, pid: Pid },
    /// schedkit: the dispatcher handed `pid` (runnable on `cpu`) to the user-space
    /// policy. The start of the task's trip through user space.
    Enqueued { ts_ns: u64, pid: Pid, cpu: u32 },
    /// schedkit: a decision for `pid` reached the dispatcher and was taken.
    /// `kernel` is set when the dispatcher decided alone (a fast path, the
    /// degraded mode while the scheduler did not run, a rescue).
    Decision {
        ts_ns: u64,
        pid: Pid,
        target: Target,
        slice_ns: u64,
        vtime: u64,
        preempt: bool,
        kernel: bool,
    },
    /// A counter track's new value.
    Counter {
        ts_ns: u64,
        counter: Counter,
        value: u64,
    },
    /// `count` events were lost (a full buffer) just before `ts_ns`.
    Lost { ts_ns: u64, count: u64 },
}

impl Event {
    /// The event's time.
    pub fn ts_ns(&self) -> u64 {
        match *self {
            Event::Thread { ts_ns, .. }
            | Event::Switch { ts_ns, .. }
            | Event::Wakeup { ts_ns, .. }
            | Event::Migrate { ts_ns, .. }
            | Event::Exit { ts_ns, .. }
            | Event::Enqueued { ts_ns, .. }
            | Event::Decision { ts_ns, .. }
            | Event::Counter { ts_ns, .. }
            | Event::Lost { ts_ns, .. } => ts_ns,
        }
    }

    /// Moves the event to time `t` (a late event sent with the time of the one before).
    pub fn set_ts_ns(&mut self, t: u64) {
        match self {
            Event::Thread { ts_ns, .. }
            | Event::Switch { ts_ns, .. }
            | Event::Wakeup { ts_ns, .. }
            | Event::Migrate { ts_ns, .. }
            | Event::Exit { ts_ns, .. }
            | Event::Enqueued { ts_ns, .. }
            | Event::Decision { ts_ns, .. }
            | Event::Counter { ts_ns, .. }
            | Event::Lost { ts_ns, .. } => *ts_ns = t,
        }
    }
}

/// A stretch of time one thread ran on one CPU: what a timeline draws, read back
/// from a written trace of either format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSlice {
    pub cpu: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub pid: Pid,
    /// The thread's name (comm).
    pub name: String,
    /// The stretch belongs to the user-space scheduler.
    pub scheduler: bool,
}
