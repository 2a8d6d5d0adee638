//! `schedkit run`, `schedkit policies`, `schedkit monitor`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use schedkit_core::{Backend, Policy, Runtime};
use schedkit_policies::{PolicyOptions, POLICIES};
use schedkit_scx::{ScxBackend, ScxOptions};

use crate::monitor::{self, Sample, StatsServer};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The policy to run (see `schedkit policies`).
    #[arg(default_value = "rustland")]
    policy: String,
    /// Print statistics every SECS seconds.
    #[arg(long, value_name = "SECS")]
    stats: Option<f64>,
    /// Schedule only tasks that opt in with SCHED_EXT, not the whole machine.
    #[arg(long)]
    partial: bool,
    /// Time slice in microseconds (the maximum slice, for policies that vary it)
    /// [default: fifo 5000, rustland 20000].
    #[arg(long, value_name = "MICROSECONDS")]
    slice_us: Option<u64>,
    /// Minimum time slice in microseconds (policies with variable slices); rustland
    /// also lets a waking task preempt only a task at least this far behind it
    /// [default: rustland 5000].
    #[arg(long, value_name = "MICROSECONDS")]
    slice_us_min: Option<u64>,
    /// Keep every task on the CPU it ran on last.
    #[arg(long)]
    percpu_local: bool,
    /// Print libbpf's messages, the verifier's log and every restart.
    #[arg(long)]
    verbose: bool,
}

#[derive(clap::Args)]
pub struct MonitorArgs {
    /// Refresh every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Stop after N samples (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub fn policies() -> anyhow::Result<ExitCode> {
    let width = POLICIES.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, about) in POLICIES {
        println!("{name:width$}  {about}");
    }
    Ok(ExitCode::SUCCESS)
}

fn policy_options(args: &RunArgs) -> anyhow::Result<PolicyOptions> {
    let us = |v: Option<u64>, what: &str| -> anyhow::Result<Option<u64>> {
        match v {
            Some(0) => anyhow::bail!("{what} must be at least 1 microsecond"),
            Some(v) if v > 10_000_000 => anyhow::bail!("{what} must be at most 10 s"),
            v => Ok(v.map(|v| v * 1000)),
        }
    };
    let opts = PolicyOptions {
        slice_ns: us(args.slice_us, "--slice-us")?,
        slice_min_ns: us(args.slice_us_min, "--slice-us-min")?,
        percpu_local: args.percpu_local,
    };
    if let (Some(max), Some(min)) = (opts.slice_ns, opts.slice_min_ns) {
        anyhow::ensure!(min <= max, "--slice-us-min must not exceed --slice-us");
    }
    Ok(opts)
}

fn build_policy(args: &RunArgs) -> anyhow::Result<Box<dyn Policy>> {
    let opts = policy_options(args)?;
    schedkit_policies::by_name(&args.policy, &opts).with_context(|| {
        let names: Vec<_> = POLICIES.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown policy '{}': choose one of {} (see schedkit policies)",
            args.policy,
            names.join(", ")
        )
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = args.stats {
        anyhow::ensure!(
            s.is_finite() && s > 0.0,
            "--stats takes a positive number of seconds"
        );
    }
    // Fail on a bad policy or option before touching the kernel.
    build_policy(&args)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }

    let mut stats: Option<StatsServer> = None;
    // Lock and pre-fault memory before attaching: faulting in megabytes once attached
    // would keep the scheduler from scheduling for as long as that takes (seconds
    // under emulation), and the watchdog would eject it.
    // Not root, no sched_ext, another scheduler: say so before anything else.
    schedkit_scx::check_can_attach()?;
    schedkit_scx::lock_memory().context("cannot lock the scheduler's memory")?;
    let mut restarts = 0u32;
    loop {
        let policy = build_policy(&args)?;
        let opts = ScxOptions {
            partial: args.partial,
            policy_name: policy.name().to_string(),
            verbose: args.verbose,
            ..Default::default()
        };
        let backend = ScxBackend::attach(&opts)?;
        if restarts == 0 {
            eprintln!(
                "schedkit: {} attached{}; Ctrl-C to detach",
                policy.name(),
                if args.partial {
                    " (SCHED_EXT tasks only)"
                } else {
                    ""
                }
            );
        }
        let stats = stats
            .get_or_insert_with(|| StatsServer::start(args.stats.map(Duration::from_secs_f64)));
        let mut rt = Runtime::new(policy, backend);
        let end = run_loop(&mut rt, &stop, stats)?;
        let (_, mut backend) = rt.into_parts();
        backend.detach();
        match end {
            None => {
                eprintln!("schedkit: detached");
                return Ok(ExitCode::SUCCESS);
            }
            Some(exit) if exit.should_restart() => {
                restarts += 1;
                if args.verbose {
                    eprintln!(
                        "schedkit: the kernel asked for a restart ({}: {}); re-attaching",
                        exit.kind_name(),
                        exit.reason
                    );
                } else {
                    eprintln!("schedkit: re-attaching after CPU hotplug");
                }
                // Give the kernel a moment to finish disabling before attaching again.
                wait_disabled(Duration::from_secs(5));
            }
            Some(exit) => {
                eprintln!(
                    "schedkit: the kernel ejected the scheduler: {} ({}), exit code {}{}{}",
                    exit.kind_name(),
                    exit.reason,
                    exit.exit_code,
                    if exit.message.is_empty() { "" } else { ": " },
                    exit.message
                );
                return Ok(if exit.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                });
            }
        }
    }
}

fn wait_disabled(limit: Duration) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if schedkit_scx::sched_ext_state() == schedkit_scx::SchedExtState::Disabled {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The scheduling loop. Twice a second it hands a sample of its figures to the stats
/// thread, which prints and serves them: the loop itself never writes to a terminal or
/// a pipe, whose reader may be a task waiting for this very loop to schedule it.
fn run_loop(
    rt: &mut Runtime<Box<dyn Policy>, ScxBackend>,
    stop: &AtomicBool,
    stats: &StatsServer,
) -> anyhow::Result<Option<schedkit_core::ExitInfo>> {
    let publish_every = Duration::from_millis(250);
    let started = Instant::now();
    let mut next_publish = started;
    // Start-up ends with the first pass of the loop (first ring buffer reads, first
    // decisions); from then on the scheduler should not fault at all.
    let mut faults_at_start = None;
    loop {
        if let Some(exit) = rt.backend_mut().exit_info() {
            return Ok(Some(exit));
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        rt.step()?;
        rt.backend_mut().wait()?;
        let faults_at_start = *faults_at_start.get_or_insert_with(schedkit_scx::page_faults);

        let now = Instant::now();
        if now >= next_publish {
            stats.publish(&Sample {
                policy: rt.policy().name(),
                uptime_s: started.elapsed().as_secs_f64(),
                counters: rt.counters(),
                policy_stats: rt.policy().stats(),
                page_faults: schedkit_scx::page_faults().saturating_sub(faults_at_start),
            });
            next_publish = now + publish_every;
        }
    }
}

pub fn monitor(args: MonitorArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.interval.is_finite() && args.interval > 0.0,
        "--interval takes a positive number of seconds"
    );
    monitor::watch(
        Duration::from_secs_f64(args.interval),
        args.json,
        args.count,
    )?;
    Ok(ExitCode::SUCCESS)
}
