//! Running a policy as the machine's scheduler: what `schedkit run` does, as a call.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use schedkit_core::{ExitInfo, Policy, Runtime};
use schedkit_scx::{ScxBackend, ScxOptions};

use crate::monitor::{Sample, StatsServer};

/// The shortest and longest `--stats` interval: more often than ten times a second
/// the printer competes with the tasks it reports on; an hour is plenty.
pub const STATS_INTERVAL_S: std::ops::RangeInclusive<f64> = 0.1..=3600.0;

/// How [`run`] attaches and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// Schedule only tasks that opt in with `SCHED_EXT`, not the whole machine.
    pub partial: bool,
    /// Print a statistics line on stderr this often (see [`STATS_INTERVAL_S`]).
    pub stats_interval: Option<Duration>,
    /// Print libbpf's messages, the verifier's log and every restart.
    pub verbose: bool,
    /// Record the machine's scheduling, with the policy's decisions, to this file
    /// (.pftrace or .json) until the scheduler detaches; then print a summary.
    pub trace: Option<PathBuf>,
}

impl RunOptions {
    /// Refuses what cannot work, in one sentence.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(d) = self.stats_interval {
            anyhow::ensure!(
                STATS_INTERVAL_S.contains(&d.as_secs_f64()),
                "--stats takes {} to {} seconds",
                STATS_INTERVAL_S.start(),
                STATS_INTERVAL_S.end()
            );
        }
        if let Some(path) = &self.trace {
            schedkit_trace::Format::from_path(path)?;
        }
        Ok(())
    }
}

/// How a [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Detached on request (Ctrl-C, SIGTERM).
    Detached,
    /// The kernel ended it (see [`ExitInfo`]; an error kind means it was ejected).
    Exited(ExitInfo),
}

impl RunOutcome {
    /// The process exit code `schedkit run` uses: 0 for a detach or a clean exit, 2
    /// for an ejection.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunOutcome::Detached => ExitCode::SUCCESS,
            RunOutcome::Exited(e) if e.is_clean() => ExitCode::SUCCESS,
            RunOutcome::Exited(_) => ExitCode::from(2),
        }
    }
}

/// Set by SIGINT (Ctrl-C), SIGTERM and SIGHUP.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // An atomic store is all a signal handler may safely do here.
    STOP.store(true, Ordering::Relaxed);
}

/// The flag SIGINT, SIGTERM and SIGHUP set, cleared for a new [`run`]. The handlers
/// are plain signal handlers, not a thread waiting for signals: every thread of the
/// scheduler has its stack locked in memory, and a stop needs none.
pub(crate) fn stop_flag() -> anyhow::Result<&'static AtomicBool> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    STOP.store(false, Ordering::Relaxed);
    if INSTALLED.get().is_none() {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic,
            // which is async-signal-safe; SA_RESTART keeps other blocking calls going.
            let rc = unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("cannot install the handler for Ctrl-C and SIGTERM");
            }
        }
        let _ = INSTALLED.set(());
    }
    Ok(&STOP)
}

/// Runs a policy as the machine's scheduler until Ctrl-C or SIGTERM (then detaches
/// and returns [`RunOutcome::Detached`]) or until the kernel ends it. This is all of
/// `schedkit run`: it checks for root, sched_ext and another scheduler before
/// anything else, locks the process's memory, attaches, runs the runtime's loop,
/// serves live statistics (printed every [`RunOptions::stats_interval`], and on the
/// socket `schedkit monitor` reads), and re-attaches with a fresh policy from `make`
/// when the kernel asks for it (after CPU hotplug). Whatever happens to the process,
/// the kernel gives every task back to its default scheduler.
///
/// ```no_run
/// use schedkit::{run, RunOptions};
/// use schedkit_policies::fifo::Fifo;
///
/// let outcome = run(|| Ok(Fifo::new(5_000_000)), &RunOptions::default())?;
/// std::process::exit(if outcome == schedkit::RunOutcome::Detached { 0 } else { 2 });
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn run<P, F>(mut make: F, opts: &RunOptions) -> anyhow::Result<RunOutcome>
where
    P: Policy,
    F: FnMut() -> anyhow::Result<P>,
{
    opts.validate()?;
    // Fail on a bad policy or option before touching the kernel.
    let policy = Some(make()?);
    let stop = stop_flag()?;

    // Not root, no sched_ext, another scheduler: say so before anything else. The
    // backend locks and pre-faults memory before attaching: faulting in megabytes once
    // attached would keep the scheduler from scheduling for as long as that takes
    // (seconds under emulation), and the watchdog would eject it.
    schedkit_scx::check_can_attach()?;
    // Recording starts before attaching (loading the tracer takes a while, and the
    // scheduler must not wait for it) and finds the dispatcher once it is attached.
    let trace = match &opts.trace {
        Some(path) => {
            let name = policy.as_ref().map(|p| p.name().to_string());
            Some(crate::cmd_trace::Background::start(
                path,
                name.as_deref().unwrap_or("schedkit"),
            )?)
        }
        None => None,
    };
    let outcome = attach_and_run(&mut make, policy, stop, opts);
    if let Some(trace) = trace {
        trace.finish()?;
    }
    outcome
}

/// [`run`] from the memory locking on.
fn attach_and_run<P, F>(
    make: &mut F,
    mut policy: Option<P>,
    stop: &AtomicBool,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome>
where
    P: Policy,
    F: FnMut() -> anyhow::Result<P>,
{
    let mut stats: Option<StatsServer> = None;
    let mut restarts = 0u32;
    loop {
        let policy = match policy.take() {
            Some(p) => p,
            None => make()?,
        };
        let scx = ScxOptions {
            partial: opts.partial,
            policy_name: policy.name().to_string(),
            verbose: opts.verbose,
            ..Default::default()
        };
        let backend = ScxBackend::attach(&scx)?;
        if restarts == 0 {
            eprintln!(
                "schedkit: {} attached{}; Ctrl-C to detach",
                policy.name(),
                if opts.partial {
                    " (SCHED_EXT tasks only)"
                } else {
                    ""
                }
            );
        }
        let stats = stats.get_or_insert_with(|| StatsServer::start(opts.stats_interval));
        let mut rt = Runtime::new(policy, backend);
        let end = run_loop(&mut rt, stop, stats)?;
        let (_, mut backend) = rt.into_parts();
        backend.detach();
        match end {
            None => {
                eprintln!("schedkit: detached");
                return Ok(RunOutcome::Detached);
            }
            Some(exit) if exit.should_restart() => {
                restarts += 1;
                if opts.verbose {
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
                eprintln!("schedkit: {}", exit.describe());
                return Ok(RunOutcome::Exited(exit));
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

/// The runtime's loop, publishing a sample of its figures to the stats thread four
/// times a second; the thread prints and serves them: the loop itself never writes to
/// a terminal or a pipe, whose reader may be a task waiting for this very loop to
/// schedule it.
fn run_loop<P: Policy>(
    rt: &mut Runtime<P, ScxBackend>,
    stop: &AtomicBool,
    stats: &StatsServer,
) -> anyhow::Result<Option<ExitInfo>> {
    let publish_every = Duration::from_millis(250);
    let started = Instant::now();
    let mut next_publish = started;
    // Start-up ends with the first pass of the loop (first ring buffer reads, first
    // decisions); from then on the scheduler should not fault at all.
    let mut faults_at_start = None;
    let end = rt.run_with(stop, |rt| {
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
    })?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_intervals_outside_bounds_are_refused() {
        for s in [0.0, 0.05, 3601.0] {
            let o = RunOptions {
                stats_interval: Some(Duration::from_secs_f64(s)),
                ..Default::default()
            };
            assert!(o.validate().is_err(), "{s}");
        }
        let o = RunOptions {
            stats_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(o.validate().is_ok());
    }

    #[test]
    fn ejections_exit_2_and_detaches_0() {
        assert_eq!(RunOutcome::Detached.exit_code(), ExitCode::SUCCESS);
        let stall = ExitInfo {
            kind: ExitInfo::KIND_ERROR_STALL,
            ..Default::default()
        };
        assert_eq!(RunOutcome::Exited(stall).exit_code(), ExitCode::from(2));
        let unreg = ExitInfo {
            kind: ExitInfo::KIND_UNREG,
            ..Default::default()
        };
        assert_eq!(RunOutcome::Exited(unreg).exit_code(), ExitCode::SUCCESS);
    }
}
