//! The `schedkit` command line as a function: [`main`] gives any binary every
//! subcommand (`run`, `policies`, `monitor`, `workload`, `sim`, `compare`, `new`,
//! `calibrate`, ...) for
//! its own policies plus the shipped ones. The `schedkit` binary is `main(&[])`; a
//! crate made by `schedkit new` calls it with its own policy's entry:
//!
//! ```no_run
//! # use schedkit_core::registry::PolicyEntry;
//! # const MY_POLICY: PolicyEntry = schedkit_policies::FIFO;
//! fn main() -> std::process::ExitCode {
//!     schedkit::cli::main(&[MY_POLICY])
//! }
//! ```
//!
//! Each policy's options (see [`PolicyEntry::options`]) become `--NAME` options of
//! `run`, `sim` and `compare`; a value out of bounds, or an option the chosen policy
//! does not take, ends with one sentence and exit code 1.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use schedkit_core::registry::PolicyEntry;

use crate::registry::Registry;
use crate::{calibrate, cmd_bench, cmd_sim, cmd_trace, cmd_workload, monitor, new, RunOptions};

#[derive(Parser)]
#[command(
    name = "schedkit",
    version,
    about = "Write CPU scheduling policies in safe Rust and run them host-wide through sched_ext",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach a policy as the machine's scheduler (needs root and a sched_ext kernel).
    /// The policy's own options (see `policies`) go after its name.
    Run(RunArgs),
    /// List the policies that can be run, with one line each and their options.
    Policies,
    /// Live statistics of the running schedkit scheduler.
    Monitor(MonitorArgs),
    /// Run workload scenarios for real on this machine.
    #[command(subcommand)]
    Workload(cmd_workload::WorkloadCommand),
    /// Simulate a scenario under one policy, without root or a sched_ext kernel.
    Sim(cmd_sim::SimArgs),
    /// Simulate a scenario under several policies and compare them side by side.
    Compare(cmd_sim::CompareArgs),
    /// Create a crate with a policy of your own, ready to test, simulate and run.
    New(new::NewArgs),
    /// Record the machine's scheduling (under any scheduler) to a Perfetto or JSON
    /// timeline, with a schedkit policy's decisions, and print a summary (needs root).
    Trace(cmd_trace::TraceArgs),
    /// Measure what a context switch, a fork and a trip through a schedkit scheduler
    /// cost on this machine, and write them as a machine profile for `sim --machine`
    /// (the trip needs root and a sched_ext kernel).
    Calibrate(calibrate::CalibrateArgs),
    /// Draw a trace's CPU lanes (from `trace` or `sim --trace`) as an SVG.
    Timeline(cmd_trace::TimelineArgs),
    /// What a trace file holds, read back with schedkit's own decoder, as JSON.
    #[command(hide = true)]
    TraceCheck { trace: std::path::PathBuf },
    /// Medians, ratios and a chart from scripts/bench-vm.sh's raw runs.
    #[command(hide = true)]
    BenchReport(cmd_bench::BenchReportArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The policy to run (see `policies`) [default: the first one listed].
    policy: Option<String>,
    /// Print statistics every SECS seconds (0.1 to 3600).
    #[arg(long, value_name = "SECS")]
    stats: Option<f64>,
    /// Schedule only tasks that opt in with SCHED_EXT, not the whole machine.
    #[arg(long)]
    partial: bool,
    /// Print libbpf's messages, the verifier's log and every restart.
    #[arg(long)]
    verbose: bool,
    /// Record the machine's scheduling and the policy's decisions to FILE (.pftrace or
    /// .json) until the scheduler detaches, then print a summary.
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct MonitorArgs {
    /// Refresh every SECS seconds (0.1 to 3600).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Stop after N samples (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// The subcommands that take policy options.
const WITH_POLICY_OPTIONS: [&str; 3] = ["run", "sim", "compare"];

/// Runs the command line with `entries` (a binary's own policies) registered before
/// the shipped ones, and returns the process's exit code: 0 on success, 1 for an
/// error the user can fix (printed as one sentence), 2 when the kernel ejected the
/// scheduler.
pub fn main(entries: &[PolicyEntry]) -> ExitCode {
    main_from(entries, std::env::args_os())
}

/// [`main`] with the arguments given (the first is the program's name).
pub fn main_from<I>(entries: &[PolicyEntry], args: I) -> ExitCode
where
    I: IntoIterator<Item = OsString>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    let bin = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "schedkit".into());
    let result = Registry::new(entries).and_then(|reg| {
        let cmd = command(&reg, &bin)?;
        Ok((reg, cmd))
    });
    let (reg, cmd) = match result {
        Ok(v) => v,
        Err(e) => {
            // A mistake in the binary's own policy entries, not the user's input.
            eprintln!("{bin}: {e}");
            return ExitCode::from(2);
        }
    };
    let matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match dispatch(&reg, &matches) {
        Ok(code) => code,
        Err(e) => {
            // One sentence (with its causes), no backtrace.
            eprintln!("{bin}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The clap command, with every policy option added to `run`, `sim` and `compare`.
fn command(reg: &Registry, bin: &str) -> Result<clap::Command, String> {
    let mut cmd = Cli::command()
        .name(bin.to_string())
        .bin_name(bin.to_string());
    for sub in WITH_POLICY_OPTIONS {
        let mut clash = None;
        cmd = cmd.mut_subcommand(sub, |mut c| {
            for (opt, _) in reg.all_options() {
                let taken = ["help", "version"].contains(&opt.name)
                    || c.get_arguments()
                        .any(|a| a.get_long() == Some(opt.name) || a.get_id() == opt.name);
                if taken {
                    clash = Some(opt.name);
                    continue;
                }
                let arg = clap::Arg::new(opt.name)
                    .long(opt.name)
                    .help(reg.option_help(opt.name))
                    .help_heading("Policy options");
                c = c.arg(if opt.is_flag() {
                    arg.action(clap::ArgAction::SetTrue)
                } else {
                    arg.value_name("N").allow_hyphen_values(true)
                });
            }
            c
        });
        if let Some(name) = clash {
            return Err(format!(
                "a policy option --{name} clashes with an option of `{sub}`: rename it in the policy's entry"
            ));
        }
    }
    Ok(cmd)
}

/// The policy options given on the command line, as (name, value) pairs.
fn given_options(reg: &Registry, m: &ArgMatches) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (opt, _) in reg.all_options() {
        if opt.is_flag() {
            if m.get_flag(opt.name) {
                out.push((opt.name.to_string(), None));
            }
        } else if let Some(v) = m.get_one::<String>(opt.name) {
            out.push((opt.name.to_string(), Some(v.clone())));
        }
    }
    out
}

/// Borrowed pairs, as the registry takes them.
pub(crate) fn as_given(owned: &[(String, Option<String>)]) -> Vec<(&str, Option<&str>)> {
    owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref()))
        .collect()
}

fn dispatch(reg: &Registry, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let cli = Cli::from_arg_matches(matches).map_err(|e| anyhow::anyhow!("{e}"))?;
    let given = match matches.subcommand() {
        Some((name, m)) if WITH_POLICY_OPTIONS.contains(&name) => given_options(reg, m),
        _ => Vec::new(),
    };
    match cli.command {
        Command::Run(args) => run(reg, args, &given),
        Command::Policies => {
            print!("{}", reg.render_list());
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor(args) => {
            anyhow::ensure!(
                crate::run::STATS_INTERVAL_S.contains(&args.interval),
                "--interval takes 0.1 to 3600 seconds"
            );
            monitor::watch(
                Duration::from_secs_f64(args.interval),
                args.json,
                args.count,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Workload(cmd) => cmd_workload::main(cmd),
        Command::Sim(args) => cmd_sim::sim(reg, args, &given),
        Command::Compare(args) => cmd_sim::compare(reg, args, &given),
        Command::New(args) => new::new(args),
        Command::Trace(args) => cmd_trace::trace(args),
        Command::Calibrate(args) => calibrate::main(reg, args),
        Command::Timeline(args) => cmd_trace::timeline(args),
        Command::TraceCheck { trace } => {
            let found = schedkit_trace::inspect::inspect(&trace)?;
            println!("{}", serde_json::to_string(&found)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchReport(args) => cmd_bench::bench_report(args),
    }
}

fn run(
    reg: &Registry,
    args: RunArgs,
    given: &[(String, Option<String>)],
) -> anyhow::Result<ExitCode> {
    let name = args
        .policy
        .unwrap_or_else(|| reg.default_policy().to_string());
    let stats_interval = match args.stats {
        None => None,
        Some(s) if s.is_finite() && crate::run::STATS_INTERVAL_S.contains(&s) => {
            Some(Duration::from_secs_f64(s))
        }
        Some(_) => anyhow::bail!("--stats takes 0.1 to 3600 seconds"),
    };
    let opts = RunOptions {
        partial: args.partial,
        stats_interval,
        verbose: args.verbose,
        trace: args.trace,
    };
    let given = as_given(given);
    let entry = reg.entry(&name).map_err(anyhow::Error::msg)?;
    let outcome = crate::run(
        || entry.build_with(&given).map_err(anyhow::Error::msg),
        &opts,
    )?;
    Ok(outcome.exit_code())
}
