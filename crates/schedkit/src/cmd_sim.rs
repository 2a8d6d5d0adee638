//! `schedkit sim` and `schedkit compare`: parse options, build the simulation, print
//! and write what `schedkit-sim` computed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use schedkit_sim::{
    compare, plot, MachineProfile, SimConfig, SimError, SimOutput, Simulation, EEVDF_NAME,
};

use crate::cli::as_given;
use crate::registry::Registry;

type Owned = (String, Option<String>);
use schedkit_workload::Spec;

/// Machine and scheduler-cost options shared by `sim` and `compare`: a machine
/// profile, and options that override its values.
#[derive(clap::Args, Clone)]
pub struct MachineArgs {
    /// The simulated machine's costs and size, a profile TOML as `schedkit calibrate`
    /// writes it [default: the benchmark VM's, profiles/vm-tcg-2cpu.toml].
    #[arg(long, value_name = "FILE")]
    machine: Option<PathBuf>,
    /// Number of simulated CPUs [default: the profile's].
    #[arg(long)]
    cpus: Option<u32>,
    /// Seed for job sizes (default: the spec's).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated duration in seconds (default: the spec's).
    #[arg(long)]
    duration: Option<f64>,
    /// CPU time the user-space scheduler spends per scheduling step, microseconds
    /// [default: the profile's sched_wakeup_ns].
    #[arg(long)]
    step_cost_us: Option<f64>,
    /// CPU time the user-space scheduler spends per task handled, microseconds
    /// [default: the profile's per_task_ns].
    #[arg(long)]
    task_cost_us: Option<f64>,
    /// Scheduler tick frequency of the simulated kernel (slices end at a tick)
    /// [default: the profile's tick_hz].
    #[arg(long)]
    hz: Option<u32>,
    /// The sched_ext watchdog timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    watchdog_s: f64,
}

#[derive(clap::Args)]
pub struct SimArgs {
    /// Workload spec (TOML).
    spec: PathBuf,
    /// Scheduler: a policy (`policies` lists them), or `eevdf`, the model of the
    /// kernel's default scheduler [default: the first policy listed].
    #[arg(long)]
    policy: Option<String>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Also write the report (with the simulator's figures) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a timeline, in the format its name asks for: Chrome trace-event JSON
    /// (FILE.json) or Perfetto's protobuf trace (FILE.pftrace); ui.perfetto.dev opens
    /// both.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Workload spec (TOML).
    spec: PathBuf,
    /// Schedulers to compare, comma-separated; ratios are to the first [default:
    /// eevdf and every policy listed]. Policy options apply to each policy that has them.
    #[arg(long, value_delimiter = ',')]
    policies: Vec<String>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Draw lateness percentiles and deadline-miss ratios per scheduler as SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Also write every report as a JSON array to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Seconds from the command line as ns: positive, and at most a spec's longest time
/// (24 hours), so that nothing downstream can overflow.
pub(crate) fn secs_to_ns(what: &str, s: f64) -> anyhow::Result<u64> {
    let max_s = schedkit_workload::spec::MAX_TIME_NS as f64 / 1e9;
    if !(s.is_finite() && s > 0.0 && s <= max_s) {
        bail!("{what} must be a positive number of seconds up to {max_s} (24 hours), got {s}");
    }
    Ok(((s * 1e9).round() as u64).max(1))
}

fn us_to_ns(what: &str, us: f64) -> anyhow::Result<u64> {
    if !(us.is_finite() && (0.0..1e9).contains(&us)) {
        bail!("{what} must be zero or a positive number of microseconds, got {us}");
    }
    Ok((us * 1e3).round() as u64)
}

impl MachineArgs {
    /// The profile given with `--machine`, or the shipped VM's.
    fn profile(&self) -> anyhow::Result<MachineProfile> {
        match &self.machine {
            Some(path) => Ok(MachineProfile::from_path(path)?),
            None => Ok(MachineProfile::vm_default()),
        }
    }

    fn config(&self, trace: bool) -> anyhow::Result<SimConfig> {
        let mut cfg = SimConfig::from_profile(&self.profile()?);
        if let Some(cpus) = self.cpus {
            if cpus == 0 || cpus > 1024 {
                bail!("--cpus must be between 1 and 1024, got {cpus}");
            }
            cfg.nr_cpus = cpus;
        }
        if let Some(hz) = self.hz {
            if hz == 0 || hz > 10_000 {
                bail!("--hz must be between 1 and 10000, got {hz}");
            }
            cfg.hz = hz;
        }
        if let Some(us) = self.step_cost_us {
            cfg.step_cost_ns = us_to_ns("--step-cost-us", us)?;
        }
        if let Some(us) = self.task_cost_us {
            // Charged half when a task is drained, half when its decision is sent.
            cfg.per_task_cost_ns = us_to_ns("--task-cost-us", us)? / 2;
        }
        cfg.seed = self.seed;
        cfg.duration_ns = self
            .duration
            .map(|d| secs_to_ns("--duration", d))
            .transpose()?;
        cfg.watchdog_timeout_ns = secs_to_ns("--watchdog-s", self.watchdog_s)?;
        cfg.trace = trace;
        cfg.progress = true;
        Ok(cfg)
    }
}

fn load_spec(path: &Path) -> anyhow::Result<Spec> {
    // The spec error already names the file, line and field.
    Spec::from_path(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn write_file(path: &Path, what: &str, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the {what} to {}", path.display()))
}

fn print_sim_figures(out: &SimOutput) {
    let s = &out.sim;
    println!(
        "simulation: seed {}  context switches {}  policy decisions {}  kernel fast-path dispatches {}  cancelled {}  user-space scheduler {:.3} s of CPU ({:.2}%)",
        s.seed,
        s.context_switches,
        s.decisions,
        s.kernel_dispatches,
        s.cancelled,
        s.scheduler_cpu_ns as f64 / 1e9,
        s.scheduler_share * 100.0
    );
}

pub fn sim(reg: &Registry, args: SimArgs, given: &[Owned]) -> anyhow::Result<ExitCode> {
    let name = args
        .policy
        .clone()
        .unwrap_or_else(|| reg.default_policy().to_string());
    // A bad name or option fails before the spec is even read.
    let scheduler = reg
        .scheduler(&name, &as_given(given))
        .map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.trace {
        schedkit_trace::Format::from_path(path)?;
    }
    let spec = load_spec(&args.spec)?;
    let cfg = args.machine.config(args.trace.is_some())?;
    let sim = Simulation::new(spec, cfg);
    let result = sim.run_scheduler(scheduler);
    match result {
        Ok(out) => {
            print!("{}", out.report.render_table());
            print_sim_figures(&out);
            if let Some(path) = &args.json {
                write_file(path, "JSON report", &out.to_json())?;
            }
            if let (Some(path), Some(trace)) = (&args.trace, &out.trace) {
                write_trace(path, trace)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(SimError::Ejected { exit, at_ns, trace }) => {
            if let (Some(path), Some(trace)) = (&args.trace, &trace) {
                write_trace(path, trace)?;
                eprintln!(
                    "schedkit: the timeline up to the stall is in {}",
                    path.display()
                );
            }
            bail!(
                "the policy `{}` was ejected after {:.3} s of simulated time ({}): {}; a real sched_ext kernel would have done the same, so fix the policy before running it",
                name,
                at_ns as f64 / 1e9,
                exit.kind_name(),
                exit.message
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes the timeline in the format `path`'s extension asks for.
fn write_trace(path: &Path, trace: &schedkit_sim::Trace) -> anyhow::Result<()> {
    let mut sink = schedkit_trace::create_writer(path)?;
    trace
        .write_to(&mut *sink)
        .with_context(|| format!("cannot write the trace to {}", path.display()))
}

pub fn compare(reg: &Registry, args: CompareArgs, given: &[Owned]) -> anyhow::Result<ExitCode> {
    let mut names: Vec<String> = args
        .policies
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if args.policies.is_empty() {
        names.push(EEVDF_NAME.to_string());
        names.extend(reg.entries().iter().map(|e| e.name.to_string()));
    }
    if names.is_empty() {
        bail!("--policies needs at least one scheduler, e.g. --policies eevdf,rustland");
    }
    let given = as_given(given);
    // Each option applies to the compared policies that have it; one that none has
    // is a mistake.
    for (opt, _) in &given {
        if !names
            .iter()
            .any(|n| reg.get(n).is_some_and(|e| e.option(opt).is_some()))
        {
            bail!(
                "none of the compared schedulers ({}) takes --{opt}",
                names.join(", ")
            );
        }
    }
    // Bad names and values fail before any simulation starts.
    for n in &names {
        reg.scheduler(n, &reg.options_for(n, &given))
            .map_err(anyhow::Error::msg)?;
    }
    let spec = load_spec(&args.spec)?;
    let cfg = args.machine.config(false)?;
    let sim = Simulation::new(spec, cfg);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = compare::run_all(&sim, &refs, |n| {
        reg.scheduler(n, &reg.options_for(n, &given))
    });
    let mut runs = Vec::with_capacity(results.len());
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(out) => runs.push(out),
            Err(e) => bail!("`{name}` failed: {e}"),
        }
    }
    print!("{}", compare::render_table(&runs));
    if let Some(path) = &args.json {
        write_file(path, "JSON reports", &compare::to_json(&runs))?;
    }
    if let Some(path) = &args.plot {
        let svg = plot::comparison_svg(&runs)?;
        write_file(path, "plot", &svg)?;
    }
    Ok(ExitCode::SUCCESS)
}
