//! The simulated machine: the [`Machine`] that runs a workload under a
//! [`SchedulerModel`], and the main loop that drives it from event to event.
//!
//! Time is a `u64` nanosecond clock that jumps from event to event. Events live in a
//! binary heap ordered by (time, sequence number), so two events at the same instant
//! are handled in the order they were created and a run is a pure function of the
//! spec, the configuration and the seed.
//!
//! The parts, one file each:
//! - [`engine`]: the clock, the event queue, the CPUs and the tasks, and the two
//!   primitives every scheduler uses, putting a task on a CPU and taking it off;
//! - [`workload`]: what the spec's tasks do (periodic frames, CPU hogs, jobs,
//!   ping-pong pairs) and the figures they collect;
//! - [`dispatcher`]: the sched_ext model ([`SchedExt`]): dispatch queues, the
//!   kernel-side fast path, the watchdog, and the user-space scheduler as a task
//!   costing CPU per decision, which a schedkit policy drives through the runtime;
//! - [`crate::eevdf`]: the model of the kernel's own scheduler ([`Eevdf`]);
//! - [`report`]: the report and the simulator's figures at the end of a run.
//!
//! Which scheduler runs is the machine's type parameter: everything that differs
//! between EEVDF and sched_ext is behind the [`SchedulerModel`] trait, called by the
//! engine and the workload at the points where a kernel calls into its scheduling
//! class.
//!
//! [`Eevdf`]: crate::eevdf::Eevdf

use schedkit_core::{Counters, ExitInfo};
use schedkit_workload::Spec;

use crate::{SimConfig, SimError};

pub(crate) mod dispatcher;
pub(crate) mod engine;
pub(crate) mod report;
pub(crate) mod workload;

pub use report::CpuTime;

pub(crate) use dispatcher::SchedExt;
pub(crate) use engine::{Engine, Ev, State, Tid};

use engine::Cur;

/// What schedules the simulated machine: the EEVDF model ([`crate::eevdf::Eevdf`]) or
/// the sched_ext model ([`SchedExt`]). The engine and the workload call it wherever
/// the two differ, at the points where a kernel calls into its scheduling class; it
/// keeps its own state, including its own per-task state (indexed by [`Tid`]).
pub(crate) trait SchedulerModel: Sized {
    /// The model for a machine built with `cfg` (already checked).
    fn new(cfg: &SimConfig) -> Self;

    /// The machine is built, at time 0, and no task exists yet.
    fn start(&mut self, e: &mut Engine);

    /// Task `tid` was just created (tasks are numbered from 0 in creation order).
    fn task_added(&mut self, tid: Tid);

    /// A task became runnable: it woke up (`ENQ_WAKEUP` in `flags`), was created
    /// (`flags` 0), or was preempted (`flags` 0).
    fn make_runnable(&mut self, e: &mut Engine, tid: Tid, flags: u64);

    /// `cpu` is free: give it what should run next.
    fn pick_next(&mut self, e: &mut Engine, cpu: u32);

    /// Takes the running task off `cpu` ([`Engine::stop_task`] plus the model's own
    /// accounting); the CPU is left idle and the task's state is for the caller to
    /// set.
    fn stop_task(&mut self, e: &mut Engine, cpu: u32) -> Tid;

    /// `tid`, just taken off `cpu`, goes to sleep, or exits if `exit`. Called before
    /// the task's new state is set.
    fn block(&mut self, e: &mut Engine, cpu: u32, tid: Tid, exit: bool);

    /// The scheduler tick. Returns how the run ends if the scheduler is ejected now
    /// (the sched_ext watchdog found a stalled task).
    fn tick(&mut self, e: &mut Engine) -> Option<ExitInfo>;

    /// A [`Ev::SchedDone`] event the model scheduled for itself came due.
    fn sched_done(&mut self, e: &mut Engine, epoch: u64);

    /// A [`Ev::SliceEnd`] timer the model set for the task on `cpu` came due, and that
    /// task has run there since, without a switch.
    fn slice_end(&mut self, e: &mut Engine, cpu: u32);

    /// The run ends while the model's user-space scheduler is on `cpu` (whose time is
    /// already accounted): record that stretch.
    fn close_scheduler_run(&mut self, e: &mut Engine, cpu: u32);

    /// The model's own figures, for [`crate::SimStats`].
    fn stats(&self) -> ModelStats;
}

/// The figures of a scheduler model beside the workload's (zero for EEVDF, which has
/// no user-space scheduler).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ModelStats {
    pub(crate) counters: Counters,
    /// Scheduling steps of the user-space scheduler.
    pub(crate) steps: u64,
    /// Decisions received from the policy.
    pub(crate) decisions: u64,
    /// Slices ended for the user-space scheduler by the tick.
    pub(crate) sched_preemptions: u64,
    /// Tasks that kept their CPU with a refilled slice (kicked, or out of slice, while
    /// nothing else was there to run).
    pub(crate) kept_running: u64,
}

/// The simulated machine: the shared engine and the scheduler model that drives it.
/// With [`SchedExt`] it is a [`schedkit_core::Backend`].
pub(crate) struct Machine<S> {
    pub(crate) engine: Engine,
    pub(crate) model: S,
}

impl<S: SchedulerModel> Machine<S> {
    pub(crate) fn new(spec: &Spec, cfg: &SimConfig) -> Result<Machine<S>, SimError> {
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
            engine: Engine::new(spec, cfg, end),
            model: S::new(cfg),
        };
        let e = &mut m.engine;
        e.push(end, Ev::End);
        e.push(e.tick_ns(), Ev::Tick);
        m.model.start(&mut m.engine);
        m.add_workload(spec)?;
        Ok(m)
    }

    /// Handles the next event. Returns `false` once the run is over.
    pub(crate) fn process_next(&mut self) -> bool {
        if self.engine.exit.is_some() {
            return false;
        }
        let Some((t, ev)) = self.engine.pop() else {
            self.finish();
            return false;
        };
        self.engine.now = t;
        match ev {
            Ev::End => {
                self.finish();
                return false;
            }
            Ev::Tick => {
                self.engine.trace_runnable();
                if let Some(exit) = self.model.tick(&mut self.engine) {
                    self.engine.exit = Some(exit);
                    self.finish();
                }
                let next = t + self.engine.tick_ns();
                if next < self.engine.end {
                    self.engine.push(next, Ev::Tick);
                }
            }
            Ev::Wake(tid) => self.wake(tid, None),
            Ev::BurstEnd { cpu, epoch } => {
                if self.engine.cpus[cpu as usize].epoch == epoch {
                    self.burst_end(cpu);
                }
            }
            Ev::SchedDone { epoch } => self.model.sched_done(&mut self.engine, epoch),
            Ev::SliceEnd { cpu, epoch } => {
                if self.engine.cpus[cpu as usize].epoch == epoch {
                    self.model.slice_end(&mut self.engine, cpu);
                }
            }
        }
        self.engine.exit.is_none()
    }

    /// Ends the run at the current time: everything running is accounted up to now.
    fn finish(&mut self) {
        let e = &mut self.engine;
        for cpu in 0..e.cpus.len() as u32 {
            match e.cpus[cpu as usize].cur {
                Cur::Task(tid) => {
                    self.model.stop_task(e, cpu);
                    // Still running at the end: mark it so, without another decision.
                    e.tasks[tid].state = State::Running(cpu);
                }
                Cur::Sched => {
                    let now = e.now;
                    e.cpus[cpu as usize].account(now);
                    self.model.close_scheduler_run(e, cpu);
                }
                Cur::Idle => {
                    let now = e.now;
                    e.cpus[cpu as usize].account(now);
                }
            }
        }
        if e.exit.is_none() {
            e.exit = Some(ExitInfo {
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
                progress(self.engine.now, self.engine.end);
            }
        }
    }
}
