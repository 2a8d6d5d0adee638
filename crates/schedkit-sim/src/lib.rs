//! A deterministic simulator of a machine running a workload spec, under any schedkit
//! [`Policy`] or under a model of the kernel's own scheduler (EEVDF), producing the
//! same [`Report`] as the real executor so simulated and real runs can be laid side
//! by side.
//!
//! The simulated machine is a [`schedkit_core::Backend`]: a policy runs unchanged
//! through [`schedkit_core::Runtime`], exactly as on the kernel. Time is simulated
//! (nanoseconds in a `u64`, jumping from event to event), so a minute of machine time
//! takes a fraction of a second, needs no root and no sched_ext kernel, and the same
//! spec, seed and policy always give the same result, to the byte.
//!
//! What is modelled (see `machine`, its `dispatcher`, and [`eevdf`] for the
//! details): N CPUs, task states (running; runnable in the ring towards user space,
//! held by the policy, or in a dispatch queue; sleeping), wake-ups, the scheduler tick
//! and slice expiry, the dispatcher's idle-CPU fast path, the user-space scheduler as
//! a task that needs CPU time for every step and every task it handles, and the
//! sched_ext watchdog.
//!
//! ```
//! use schedkit_core::{Context, Decision, Policy, QueuedTask};
//! use schedkit_sim::{SimConfig, Simulation};
//! use schedkit_workload::Spec;
//! use std::collections::VecDeque;
//!
//! /// Every task, in arrival order, on any CPU, for 5 ms.
//! #[derive(Default)]
//! struct Simplest(VecDeque<QueuedTask>);
//! impl Policy for Simplest {
//!     fn name(&self) -> &'static str { "simplest" }
//!     fn enqueue(&mut self, t: &QueuedTask, _: &mut Context<'_>) { self.0.push_back(*t) }
//!     fn dispatch(&mut self, _: &mut Context<'_>) -> Option<Decision> {
//!         self.0.pop_front().map(|t| Decision::any_cpu(&t, 5_000_000))
//!     }
//!     fn nr_held(&self) -> usize { self.0.len() }
//! }
//!
//! let spec = Spec::from_str_named(r#"
//!     name = "two hogs"
//!     duration_s = 0.5
//!     [[group]]
//!     name = "hog"
//!     kind = "cpu"
//!     count = 2
//! "#, "hogs.toml").unwrap();
//! let sim = Simulation::new(spec, SimConfig { nr_cpus: 1, ..SimConfig::default() });
//! let out = sim.run(Simplest::default()).unwrap();
//! let hogs = out.report.group("hog").unwrap();
//! // Two hogs on one CPU, minus what the user-space scheduler itself used.
//! assert!(hogs.cpu_share > 0.99 && hogs.cpu_share < 1.0);
//! let eevdf = sim.run_eevdf().unwrap();
//! assert_eq!(eevdf.report.group("hog").unwrap().cpu_ns, 500_000_000);
//! ```

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use schedkit_core::{BackendError, ExitInfo, Policy, Runtime};
use schedkit_workload::{Report, Spec};

pub mod compare;
pub mod eevdf;
mod machine;
pub mod plot;
pub mod profile;
pub mod trace;
pub mod weights;

pub use machine::CpuTime;
pub use profile::{MachineProfile, ProfileError};
pub use trace::Trace;

use eevdf::Eevdf;
use machine::{Machine, SchedExt, SchedulerModel};

/// How the simulated machine is built and how its scheduler behaves.
///
/// The default is an idealised machine (switches and process creation are free, the
/// user-space scheduler cheap), which isolates the policies' own decisions; a
/// [`MachineProfile`] ([`SimConfig::from_profile`]) gives a real machine's costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Number of CPUs.
    pub nr_cpus: u32,
    /// Replaces the spec's seed (job sizes), if set.
    pub seed: Option<u64>,
    /// Replaces the spec's duration, if set, ns.
    pub duration_ns: Option<u64>,
    /// CPU time the user-space scheduler spends per step (one drain-and-dispatch
    /// round), ns.
    pub step_cost_ns: u64,
    /// CPU time the user-space scheduler spends per task drained and per decision
    /// sent, ns.
    pub per_task_cost_ns: u64,
    /// The sched_ext watchdog: a runnable task not run for this long ends the run
    /// with a stall error, ns.
    pub watchdog_timeout_ns: u64,
    /// Scheduler tick frequency: slices are checked at the tick.
    pub hz: u32,
    /// CPU time of a context switch, charged to whatever is switched in (a task or the
    /// user-space scheduler), under EEVDF and sched_ext alike, ns.
    pub context_switch_ns: u64,
    /// Extra CPU time when a task is switched in on another CPU than it last ran on, ns.
    pub migration_ns: u64,
    /// Extra CPU time when a switch changes address space (the CPU last ran another
    /// process: a job, the executor, the user-space scheduler), ns.
    pub mm_switch_ns: u64,
    /// CPU time to create and reap a job's process, charged to the job, ns.
    pub process_spawn_ns: u64,
    /// CPU time the parent spends forking each job, ns: when not 0, each job slot is
    /// a thread of the executor that wakes when its job exits and runs this long
    /// before the next job starts, as the real executor's slot threads do.
    pub fork_ns: u64,
    /// The dispatcher's fast path: a waking task whose previous CPU is idle while
    /// nothing else waits runs there without asking user space.
    pub kernel_fast_path: bool,
    /// EEVDF's base slice before scaling by the CPU count, ns (the kernel's 0.75 ms;
    /// 0.7 ms in recent kernels).
    pub eevdf_base_slice_ns: u64,
    /// EEVDF's HRTICK feature: a high-resolution timer ends each slice when it is
    /// used up, instead of the next tick noticing it.
    pub hrtick: bool,
    /// EEVDF's RUN_TO_PARITY feature (on in the kernel).
    pub run_to_parity: bool,
    /// EEVDF's DELAY_DEQUEUE feature (on in kernels since 6.12): a task that sleeps
    /// while owing service stays on its runqueue, unpicked, until it is eligible, so a
    /// short sleep does not clear its debt.
    pub delay_dequeue: bool,
    /// The kernel's lazy preemption model (CONFIG_PREEMPT_LAZY): EEVDF's wake-up
    /// preemption takes effect at the next tick. sched_ext kicks CPUs at once either way.
    pub preempt_lazy: bool,
    /// Record a timeline (see [`Trace`]).
    pub trace: bool,
    /// Show a progress bar on stderr for runs longer than a second, if it is a
    /// terminal.
    pub progress: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nr_cpus: 2,
            seed: None,
            duration_ns: None,
            step_cost_ns: 5_000,
            per_task_cost_ns: 1_000,
            watchdog_timeout_ns: 30_000_000_000,
            hz: 250,
            context_switch_ns: 0,
            migration_ns: 0,
            mm_switch_ns: 0,
            process_spawn_ns: 0,
            fork_ns: 0,
            kernel_fast_path: true,
            eevdf_base_slice_ns: 750_000,
            hrtick: false,
            run_to_parity: true,
            preempt_lazy: false,
            delay_dequeue: false,
            trace: false,
            progress: false,
        }
    }
}

/// Why a simulation could not give a report.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot be simulated.
    #[error("{0}")]
    Config(String),
    /// The scheduler was ejected, as sched_ext would have done (e.g. the watchdog
    /// found a stalled task). The timeline up to that point is kept, if recorded.
    #[error("the scheduler was ejected after {:.3}s of simulated time: {}: {}", *.at_ns as f64 / 1e9, .exit.kind_name(), .exit.message)]
    Ejected {
        exit: ExitInfo,
        at_ns: u64,
        trace: Option<Box<Trace>>,
    },
    /// The backend failed.
    #[error("simulated backend: {0}")]
    Backend(#[from] BackendError),
}

/// Figures about the simulated scheduler itself, beside the workload's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// The seed job sizes were drawn from.
    pub seed: u64,
    /// Decisions the policy sent (0 for EEVDF, which needs none from user space).
    pub decisions: u64,
    /// Scheduling steps of the user-space scheduler.
    pub steps: u64,
    /// Times a task was put on a CPU.
    pub context_switches: u64,
    /// Dispatches by decisions of the policy.
    pub user_dispatches: u64,
    /// Dispatches by the kernel-side fast path.
    pub kernel_dispatches: u64,
    /// Wake-ups dispatched from the policy's standing instructions, without a trip.
    #[serde(default)]
    pub standing_dispatches: u64,
    /// Decisions dropped as stale.
    pub cancelled: u64,
    /// Decisions for a CPU the task may not use, sent to the shared queue instead.
    pub bounced: u64,
    /// Running tasks switched out for a decision with an earlier vtime.
    pub preemptions: u64,
    /// Running tasks whose slice the tick ended for the waiting user-space scheduler.
    pub scheduler_preemptions: u64,
    /// Running tasks that kept their CPU with a refilled slice when their slice ended
    /// (or their CPU was kicked) and the CPU found nothing else to run.
    #[serde(default)]
    pub kept_running: u64,
    /// CPU time every workload task used (finished or not), summed from the tasks'
    /// side, ns.
    pub task_cpu_ns: u64,
    /// CPU time the user-space scheduler used, ns.
    pub scheduler_cpu_ns: u64,
    /// That time as a fraction of the machine's CPU time, 0..=1.
    pub scheduler_share: f64,
    /// Per-CPU accounting: task, scheduler and idle time add up to the duration.
    pub cpus: Vec<CpuTime>,
    /// Why the run ended.
    pub exit: ExitInfo,
}

/// The result of one simulated run.
#[derive(Debug, Clone)]
pub struct SimOutput {
    /// The workload's figures, as the real executor reports them.
    pub report: Report,
    /// The simulated scheduler's own figures.
    pub sim: SimStats,
    /// The timeline, if [`SimConfig::trace`] was set.
    pub trace: Option<Trace>,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    #[serde(flatten)]
    report: &'a Report,
    simulation: &'a SimStats,
}

impl SimOutput {
    /// The report as JSON, with the simulator's figures under `"simulation"`; it reads
    /// back as a [`Report`] (`Report::from_json`) like the real executor's.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&JsonOut {
            report: &self.report,
            simulation: &self.sim,
        })
        .unwrap_or_default()
    }
}

/// What schedules a simulated run: a schedkit policy through the runtime loop, or the
/// model of the kernel's own scheduler.
pub enum Scheduler {
    /// The model of EEVDF (see [`eevdf`]), the kernel's default scheduler.
    Eevdf,
    /// A schedkit policy.
    Policy(Box<dyn Policy>),
}

/// The name under which the tools know the EEVDF model.
pub const EEVDF_NAME: &str = "eevdf";

/// A workload spec and a machine configuration, ready to be run under any policy.
#[derive(Debug, Clone)]
pub struct Simulation {
    spec: Spec,
    cfg: SimConfig,
}

impl Simulation {
    pub fn new(mut spec: Spec, cfg: SimConfig) -> Simulation {
        if let Some(seed) = cfg.seed {
            spec.seed = seed;
        }
        Simulation { spec, cfg }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Runs the workload with `policy` deciding, through the same runtime loop as on
    /// the kernel, until the spec's duration is over or the scheduler is ejected.
    pub fn run<P: Policy>(&self, policy: P) -> Result<SimOutput, SimError> {
        let mut m = Machine::<SchedExt>::new(&self.spec, &self.cfg)?;
        let name = policy.name();
        let mut progress = Progress::new(self.cfg.progress, name);
        {
            // The runtime's loop, with a progress bar; the machine stops it at the end
            // of the spec's duration.
            let mut rt = Runtime::new(policy, &mut m);
            rt.run_with(&AtomicBool::new(false), |rt| {
                let b = rt.backend();
                progress.update(b.engine.now, b.engine.end);
            })?;
        }
        progress.finish();
        self.finish(m, name)
    }

    /// Runs the workload under `scheduler`.
    pub fn run_scheduler(&self, scheduler: Scheduler) -> Result<SimOutput, SimError> {
        match scheduler {
            Scheduler::Eevdf => self.run_eevdf(),
            Scheduler::Policy(p) => self.run(p),
        }
    }

    /// Runs the workload under the EEVDF model (see [`eevdf`]).
    pub fn run_eevdf(&self) -> Result<SimOutput, SimError> {
        let mut m = Machine::<Eevdf>::new(&self.spec, &self.cfg)?;
        let mut progress = Progress::new(self.cfg.progress, EEVDF_NAME);
        m.run_to_end(|now, end| progress.update(now, end));
        progress.finish();
        self.finish(m, EEVDF_NAME)
    }

    fn finish<S: SchedulerModel>(
        &self,
        mut m: Machine<S>,
        name: &str,
    ) -> Result<SimOutput, SimError> {
        let e = &mut m.engine;
        if let Some(tr) = &mut e.trace {
            tr.scheduler = name.to_string();
            tr.end_ns = e.now;
        }
        let exit = e.exit.clone().unwrap_or_default();
        if exit.is_error() {
            return Err(SimError::Ejected {
                exit,
                at_ns: e.now,
                trace: e.trace.take().map(Box::new),
            });
        }
        let report = e.report(name);
        let sim = m.sim_stats(self.spec.seed, exit);
        Ok(SimOutput {
            report,
            sim,
            trace: m.engine.trace.take(),
        })
    }
}

/// A progress bar on stderr, shown only once a run has taken a second of wall time,
/// and only on a terminal.
struct Progress {
    enabled: bool,
    label: &'static str,
    start: Instant,
    bar: Option<indicatif::ProgressBar>,
    calls: u32,
}

impl Progress {
    fn new(enabled: bool, label: &'static str) -> Progress {
        Progress {
            enabled,
            label,
            start: Instant::now(),
            bar: None,
            calls: 0,
        }
    }

    fn update(&mut self, now_ns: u64, end_ns: u64) {
        if !self.enabled {
            return;
        }
        self.calls = self.calls.wrapping_add(1);
        if self.calls & 255 != 0 {
            return;
        }
        if self.bar.is_none() {
            if self.start.elapsed() < Duration::from_secs(1) {
                return;
            }
            if !std::io::stderr().is_terminal() {
                self.enabled = false;
                return;
            }
            let bar = indicatif::ProgressBar::new(end_ns / 1_000_000);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {bar:40} {pos}/{len} simulated ms ({eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(self.label);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(now_ns / 1_000_000);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
