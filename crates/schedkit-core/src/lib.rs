//! The heart of schedkit: what a scheduling policy sees, what it decides, and the loop
//! that connects it to a machine.
//!
//! A [`Policy`] is plain safe Rust with no I/O: it is told about tasks that became
//! runnable ([`QueuedTask`]), and asked, one at a time, which task runs next, where and
//! for how long ([`Decision`]). A [`Backend`] is the machine: the real kernel through
//! sched_ext (`schedkit-scx`), a simulated one (`schedkit-sim`), or an in-memory fake
//! in tests ([`fake::FakeBackend`]). The [`Runtime`] drives one against the other.
//!
//! ```
//! use schedkit_core::{fake::FakeBackend, Context, Decision, Policy, QueuedTask, Runtime};
//! use std::collections::VecDeque;
//!
//! /// Runs every task on any CPU, in arrival order, for 5 ms.
//! #[derive(Default)]
//! struct Simplest(VecDeque<QueuedTask>);
//!
//! impl Policy for Simplest {
//!     fn name(&self) -> &'static str { "simplest" }
//!     fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) { self.0.push_back(*task) }
//!     fn dispatch(&mut self, _ctx: &mut Context<'_>) -> Option<Decision> {
//!         self.0.pop_front().map(|t| Decision::any_cpu(&t, 5_000_000))
//!     }
//!     fn nr_held(&self) -> usize { self.0.len() }
//! }
//!
//! let mut backend = FakeBackend::new(2);
//! backend.push_task(QueuedTask::new(42, 0));
//! let mut rt = Runtime::new(Simplest::default(), backend);
//! rt.step().unwrap();
//! assert_eq!(rt.backend().dispatched()[0].pid, 42);
//! ```

mod runtime;
mod types;

pub mod fake;
pub mod registry;
pub mod topology;

pub use runtime::{Runtime, StepReport};
pub use types::*;

/// Everything a policy may ask of the machine while it decides. The backend behind it
/// is private: a policy cannot send decisions or touch the kernel by itself.
pub struct Context<'a> {
    backend: &'a mut dyn Backend,
    nr_held: usize,
}

impl<'a> Context<'a> {
    /// A context over `backend`; the runtime builds one per call.
    pub fn new(backend: &'a mut dyn Backend, nr_held: usize) -> Self {
        Context { backend, nr_held }
    }

    /// The machine's monotonic clock, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.backend.now_ns()
    }

    /// CPUs a decision may name: every online CPU is below this number. On the kernel
    /// it is one more than the highest CPU online at attach (a CPU going on- or
    /// offline restarts the scheduler); an offline CPU below it can still be named,
    /// and the dispatcher then sends the task to any CPU instead (a bounce).
    pub fn nr_cpus(&self) -> u32 {
        self.backend.nr_cpus()
    }

    /// Tasks waiting for a CPU: those still on their way from the kernel plus those the
    /// policy holds. The usual input for slices that shrink under load.
    pub fn nr_waiting(&self) -> u64 {
        self.backend.nr_queued() + self.nr_held as u64
    }

    /// An idle CPU the task may run on, preferring its previous one, claimed for it
    /// (so two decisions do not pick the same CPU); `None` when every allowed CPU is busy.
    pub fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        self.backend.select_idle_cpu(task)
    }
}

/// A scheduling policy: the only piece a schedkit user writes.
///
/// The runtime calls [`Policy::enqueue`] for each task that became runnable, then
/// [`Policy::dispatch`] until it returns `None` (or the backend cannot take more),
/// and [`Policy::task_exit`] when a task is gone for good.
///
/// Policies run inside the scheduler's hot loop: they must not block, and should not
/// allocate per task once warmed up (reserve capacity up front).
pub trait Policy {
    /// Short name, shown in statistics and in `/sys/kernel/sched_ext/root/ops`.
    fn name(&self) -> &'static str;

    /// A task became runnable (woke up, was preempted, or changed CPU affinity).
    fn enqueue(&mut self, task: &QueuedTask, ctx: &mut Context<'_>);

    /// The next decision to send, or `None` when the policy wants to hold the rest.
    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision>;

    /// A task exited: drop whatever the policy keeps about it.
    fn task_exit(&mut self, _pid: Pid) {}

    /// How many tasks the policy holds, queued and not yet dispatched.
    fn nr_held(&self) -> usize;

    /// The policy's own figures for live statistics.
    fn stats(&self) -> PolicyStats {
        PolicyStats::default()
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn enqueue(&mut self, task: &QueuedTask, ctx: &mut Context<'_>) {
        (**self).enqueue(task, ctx)
    }
    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
        (**self).dispatch(ctx)
    }
    fn task_exit(&mut self, pid: Pid) {
        (**self).task_exit(pid)
    }
    fn nr_held(&self) -> usize {
        (**self).nr_held()
    }
    fn stats(&self) -> PolicyStats {
        (**self).stats()
    }
}

/// A machine the runtime can schedule: queued tasks in, decisions out.
pub trait Backend {
    /// Monotonic clock, nanoseconds.
    fn now_ns(&self) -> u64;

    /// Number of possible CPUs.
    fn nr_cpus(&self) -> u32;

    /// Moves every pending task event into `out` (which the caller has cleared and
    /// which has spare capacity), returning how many were added. Never blocks.
    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError>;

    /// Tasks waiting on the backend's side: not yet drained into the policy, or
    /// dispatched and not yet running.
    fn nr_queued(&self) -> u64;

    /// An idle CPU for `task`, claimed for it; `None` if none is idle.
    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu>;

    /// Sends one decision. [`BackendError::Full`] means "try again next step".
    fn dispatch(&mut self, decision: &Decision) -> Result<(), BackendError>;

    /// Called at the end of every step with the number of tasks the policy still holds,
    /// so the backend knows whether the scheduler needs to run again soon.
    fn step_done(&mut self, nr_held: u64);

    /// Waits until there is something to do (or a short timeout passes), or returns at
    /// once if the backend is finished. The only place the loop may sleep.
    fn wait(&mut self) -> Result<(), BackendError>;

    /// `Some` once the backend has stopped (ejected by the kernel, end of simulation).
    fn exit_info(&mut self) -> Option<ExitInfo>;

    /// The backend's live counters.
    fn counters(&self) -> Counters;

    /// CPU time the scheduler (the thread running the loop) has used so far, ns; 0 if
    /// the backend cannot tell.
    fn scheduler_cpu_ns(&self) -> u64 {
        0
    }
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
    fn nr_cpus(&self) -> u32 {
        (**self).nr_cpus()
    }
    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError> {
        (**self).drain(out)
    }
    fn nr_queued(&self) -> u64 {
        (**self).nr_queued()
    }
    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        (**self).select_idle_cpu(task)
    }
    fn dispatch(&mut self, decision: &Decision) -> Result<(), BackendError> {
        (**self).dispatch(decision)
    }
    fn step_done(&mut self, nr_held: u64) {
        (**self).step_done(nr_held)
    }
    fn wait(&mut self) -> Result<(), BackendError> {
        (**self).wait()
    }
    fn exit_info(&mut self) -> Option<ExitInfo> {
        (**self).exit_info()
    }
    fn counters(&self) -> Counters {
        (**self).counters()
    }
    fn scheduler_cpu_ns(&self) -> u64 {
        (**self).scheduler_cpu_ns()
    }
}
