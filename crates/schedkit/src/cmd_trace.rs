//! `schedkit trace` (record the machine's scheduling to a timeline file and print a
//! summary), `schedkit run --trace` (the same while a policy runs) and
//! `schedkit timeline` (CPU lanes of a real or simulated trace as an SVG).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use schedkit_scx::trace::{ProgramsCpu, Recorder};
use schedkit_trace::summary::{Summary, SummaryBuilder};
use schedkit_trace::{Sink, Tee};

/// The longest wait between two drains of the rings. Each drain has a fixed cost
/// besides its records' (under rustland in the VM, about 0.7 ms of the recorder's CPU:
/// it wakes at real-time priority and looks at both rings). Measured in one boot, 4
/// traced runs of hackbench each: draining every 50 ms cost 1.7 to 2.8 us of CPU a
/// record, every 250 ms 1.2 to 1.8, every second 0.8 to 1.3.
const POLL_MAX: Duration = Duration::from_millis(250);
/// The shortest, for a load that fills a ring fast.
const POLL_MIN: Duration = Duration::from_millis(10);
/// The first.
const POLL_FIRST: Duration = Duration::from_millis(50);
/// How full a ring may get between two drains, at most, at the rate of the last wait:
/// an eighth, so that a load eight times busier loses nothing either.
const FILL_TARGET: f64 = 0.125;

/// The wait before the next drain, after a wait of `every` filled a ring to `fill` (0
/// to 1): such that the ring is filled to [`FILL_TARGET`] at the same rate, between
/// [`POLL_MIN`] and [`POLL_MAX`], and at most twice as long as the last.
fn next_poll(every: Duration, fill: f64) -> Duration {
    let aim = if fill > 0.0 {
        every.as_secs_f64() * FILL_TARGET / fill
    } else {
        f64::INFINITY
    };
    Duration::from_secs_f64(aim.min(2.0 * every.as_secs_f64())).clamp(POLL_MIN, POLL_MAX)
}

/// The longest recording: a day.
const MAX_DURATION_S: f64 = 86_400.0;

#[derive(clap::Args)]
pub struct TraceArgs {
    /// Where to write the timeline: FILE.pftrace (Perfetto; open it in
    /// ui.perfetto.dev) or FILE.json (Chrome trace-event JSON, the form of
    /// `sim --trace`).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: PathBuf,
    /// Stop after SECS seconds (default: when COMMAND exits, or at Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Rows of the summary's task and process tables.
    #[arg(long, value_name = "N", default_value_t = 15)]
    top: usize,
    /// Also say what the recording cost: the CPU time of its BPF programs (by the
    /// kernel's BPF statistics, on while recording, which cost a little themselves)
    /// and of draining them, as a share of the machine's.
    #[arg(long)]
    cost: bool,
    /// A command to run while recording; the recording ends when it exits.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// A recording's output, checked before anything is loaded: the format (from the
/// extension) and the file.
fn open_output(path: &Path) -> anyhow::Result<Box<dyn Sink + Send>> {
    schedkit_trace::Format::from_path(path)?;
    Ok(schedkit_trace::create_writer(path)?)
}

/// Where the records wait until the recording ends: the temporary directory (TMPDIR,
/// or /tmp), a RAM-backed one on most systems. Next to the trace, on a slow or shared
/// filesystem, writing them cost the load a few percent more (hackbench under TCG, 9p:
/// 1.085x against 1.02x on tmpfs).
fn spool_dir() -> PathBuf {
    std::env::temp_dir()
}

/// What a recording produced.
pub struct Recorded {
    pub summary: Summary,
    pub lost: u64,
    pub events: u64,
    /// Events that came after later ones were written (written at the time of the
    /// one before them, which shortens what they measure).
    pub late: u64,
}

/// Records until `done` says so or until `deadline`, draining the rings as often as
/// [`next_poll`] says.
fn record(
    rec: Recorder,
    file: Box<dyn Sink + Send>,
    deadline: Option<Instant>,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<Recorded> {
    let mut rec = rec;
    let realtime = schedkit_scx::trace::drain_at_realtime_priority();
    let mut tee = Tee(file, SummaryBuilder::new());
    tee.begin(rec.info()).context("cannot write the trace")?;
    let (began, cpu_before) = (Instant::now(), schedkit_scx::thread_cpu_ns());
    let mut every = POLL_FIRST;
    loop {
        let now = Instant::now();
        if done() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        let wait = deadline.map_or(every, |d| every.min(d - now));
        std::thread::sleep(wait);
        let fill = rec
            .poll()
            .context("cannot write the recording's spool file")?;
        if wait == every {
            every = next_poll(every, fill);
        }
    }
    let lost = rec.lost();
    if lost > 0 && !realtime {
        eprintln!("schedkit: the recorder could not run at real-time priority, which may be why events were lost");
    }
    let (elapsed, drain_ns) = (
        began.elapsed(),
        schedkit_scx::thread_cpu_ns().saturating_sub(cpu_before),
    );
    eprintln!(
        "schedkit: recorded {} records in {:.1} s, draining them took {:.0} ms of CPU; writing the trace",
        rec.spooled(),
        elapsed.as_secs_f64(),
        drain_ns as f64 / 1e6
    );
    if let Some(p) = rec.programs_cpu() {
        eprintln!(
            "{}",
            cost_line(
                p,
                drain_ns,
                elapsed,
                schedkit_core::topology::nr_online_cpus().into(),
            )
        );
    }
    let done = rec.finish(&mut tee).context("cannot write the trace")?;
    Ok(Recorded {
        summary: tee.1.summary(),
        lost,
        events: done.events,
        late: done.late,
    })
}

/// What a recording cost, for `--cost`: its programs' CPU time, the dispatcher's
/// records' (under a schedkit scheduler) and the drain's, as a share of what `cpus`
/// CPUs had in `elapsed`.
fn cost_line(p: ProgramsCpu, drain_ns: u64, elapsed: Duration, cpus: u64) -> String {
    let machine_ns = elapsed.as_nanos() as f64 * cpus as f64;
    let share = |ns: u64| {
        if machine_ns > 0.0 {
            100.0 * ns as f64 / machine_ns
        } else {
            0.0
        }
    };
    let each = |ns: u64, n: u64| {
        if n > 0 {
            ns as f64 / n as f64 / 1e3
        } else {
            0.0
        }
    };
    let dispatcher_ns = p.dispatcher.map_or(0, |d| d.ns);
    let dispatcher = match p.dispatcher {
        Some(d) => format!(
            ", the dispatcher's {} records {:.0} ms ({:.2}%, {:.2} us a record)",
            d.records,
            d.ns as f64 / 1e6,
            share(d.ns),
            each(d.ns, d.records)
        ),
        None => String::new(),
    };
    format!(
        "schedkit: recording cost {:.2}% of the machine's CPU time ({} CPUs, {:.1} s): \
         its BPF programs ran {} times for {:.0} ms ({:.2}%, {:.2} us a run){}, draining \
         took {:.0} ms ({:.2}%)",
        share(p.ns + dispatcher_ns + drain_ns),
        cpus,
        elapsed.as_secs_f64(),
        p.runs,
        p.ns as f64 / 1e6,
        share(p.ns),
        each(p.ns, p.runs),
        dispatcher,
        drain_ns as f64 / 1e6,
        share(drain_ns),
    )
}

fn report(r: &Recorded, output: &Path, json: Option<&Path>, top: usize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    r.summary.write_table(&mut out, top)?;
    writeln!(
        out,
        "schedkit: {} events written to {}{}",
        r.events,
        output.display(),
        if r.lost > 0 {
            format!(
                "; {} events LOST to a full buffer (marked on the timeline)",
                r.lost
            )
        } else {
            "; none lost".into()
        }
    )?;
    if r.late > 0 {
        writeln!(
            out,
            "schedkit: {} events came too late to be written in time order, and were written at the time of the event before them",
            r.late
        )?;
    }
    if let Some(path) = json {
        let f = File::create(path)
            .with_context(|| format!("cannot write the summary to {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(f), &r.summary)
            .with_context(|| format!("cannot write the summary to {}", path.display()))?;
    }
    Ok(())
}

/// `schedkit trace`.
pub fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let limit = match args.duration {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_DURATION_S => {
            Some(Duration::from_secs_f64(s))
        }
        Some(_) => anyhow::bail!("--duration takes more than 0 and at most 86400 seconds"),
    };
    anyhow::ensure!(
        args.json.as_deref() != Some(args.output.as_path()),
        "--json and -o name the same file: give the summary a file of its own"
    );
    schedkit_trace::Format::from_path(&args.output)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(schedkit_scx::trace::TraceError::NotRoot.into());
    }
    // The handler goes in before the tracer loads (seconds under emulation): a Ctrl-C
    // while it loads then ends the recording at once, with a valid file, instead of
    // killing the process or, where the shell started it with SIGINT ignored (a
    // script's background job), going unnoticed.
    let stop = crate::run::stop_flag()?;
    let file = open_output(&args.output)?;
    let mut rec = match Recorder::start(true, None, &spool_dir()).map_err(anyhow::Error::from) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&args.output);
            return Err(e);
        }
    };
    if args.cost {
        if let Err(e) = rec.measure_programs() {
            let _ = std::fs::remove_file(&args.output);
            anyhow::bail!("--cost: the kernel would not turn on its BPF statistics: {e}");
        }
    }
    let mut child: Option<Child> = match args.command.split_first() {
        None => None,
        Some((prog, rest)) => Some(
            Command::new(prog)
                .args(rest)
                .spawn()
                .with_context(|| format!("cannot run {}", prog.to_string_lossy()))?,
        ),
    };
    eprintln!(
        "schedkit: recording under {}{}{}",
        rec.info().scheduler,
        if rec.taps_dispatcher() {
            ", with the policy's decisions"
        } else {
            ""
        },
        match (limit, &child) {
            (Some(d), _) => format!(" for {:.1} s; Ctrl-C to stop sooner", d.as_secs_f64()),
            (None, Some(_)) => " until the command exits; Ctrl-C to stop sooner".into(),
            (None, None) => "; Ctrl-C to stop".into(),
        }
    );
    let started = Instant::now();
    let mut status = None;
    let recorded = record(rec, file, limit.map(|l| started + l), || {
        if let Some(c) = child.as_mut() {
            if let Ok(Some(s)) = c.try_wait() {
                status = Some(s);
                return true;
            }
        }
        stop.load(Ordering::Relaxed)
    })?;
    report(&recorded, &args.output, args.json.as_deref(), args.top)?;
    if let Some(s) = status {
        if !s.success() {
            eprintln!("schedkit: the command ended with {s}");
        }
    } else if let Some(mut c) = child {
        // Stopped first: the command keeps running, as under `perf record`.
        let _ = c.try_wait();
    }
    Ok(ExitCode::SUCCESS)
}

/// A recording on a thread of its own, for `schedkit run --trace`.
pub struct Background {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<Recorded>>,
    output: PathBuf,
}

impl Background {
    /// Checks the output file and starts recording the kernel's events, and the
    /// decisions of whichever schedkit scheduler is attached, now or later (it is
    /// found within half a second of attaching). `scheduler` names it in the trace.
    pub fn start(output: &Path, scheduler: &str) -> anyhow::Result<Background> {
        let file = open_output(output)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let scheduler = scheduler.to_string();
        let spool = spool_dir();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("schedkit-trace".into())
            .spawn(move || {
                // The recorder holds the rings' callbacks, which stay on this thread.
                let rec = match Recorder::start(true, Some(&scheduler), &spool)
                    .map_err(anyhow::Error::from)
                {
                    Ok(r) => {
                        let _ = ready_tx.send(Ok(()));
                        r
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                record(rec, file, None, || flag.load(Ordering::Relaxed))
            })
            .context("cannot start the recording thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Background {
                stop,
                handle,
                output: output.to_path_buf(),
            }),
            Ok(Err(e)) => {
                let _ = std::fs::remove_file(output);
                anyhow::bail!("{e}")
            }
            Err(_) => anyhow::bail!("the recording thread ended before it started"),
        }
    }

    /// Ends the recording, writes the file and prints the summary.
    pub fn finish(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let recorded = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the recording thread failed"))??;
        report(&recorded, &self.output, None, 15)
    }
}

#[derive(clap::Args)]
pub struct TimelineArgs {
    /// A trace written by `schedkit trace` or `schedkit sim --trace` (.pftrace or .json).
    trace: PathBuf,
    /// Start of the window, seconds from the trace's first event.
    #[arg(long, value_name = "S")]
    from: Option<f64>,
    /// End of the window, seconds from the trace's first event.
    #[arg(long, value_name = "S")]
    to: Option<f64>,
    /// The SVG to write.
    #[arg(short = 'o', long, value_name = "FILE.svg")]
    output: PathBuf,
}

/// `schedkit timeline`.
pub fn timeline(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    for (name, v) in [("--from", args.from), ("--to", args.to)] {
        if let Some(v) = v {
            anyhow::ensure!(
                (0.0..=MAX_DURATION_S).contains(&v),
                "{name} takes 0 to 86400 seconds"
            );
        }
    }
    if let (Some(f), Some(t)) = (args.from, args.to) {
        anyhow::ensure!(f < t, "--from must come before --to");
    }
    let (nr_cpus, slices) = schedkit_trace::read_cpu_slices(&args.trace)?;
    anyhow::ensure!(
        !slices.is_empty(),
        "{} has no CPU activity to draw: is it a trace from `schedkit trace` or `schedkit sim --trace`?",
        args.trace.display()
    );
    let origin = slices.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let at = |s: f64| origin + (s * 1e9) as u64;
    let title = args
        .trace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let f = File::create(&args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    schedkit_trace::timeline::write_svg(
        BufWriter::new(f),
        nr_cpus,
        &slices,
        args.from.map(at),
        args.to.map(at),
        &title,
    )
    .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("schedkit: wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schedkit_scx::trace::Timed;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_idle_machine_is_drained_less_often_but_no_more_than_twice_as_long_each_time() {
        assert_eq!(next_poll(ms(50), 0.0), ms(100));
        assert_eq!(next_poll(ms(100), 0.0), ms(200));
        assert_eq!(next_poll(ms(200), 0.0), POLL_MAX);
        assert_eq!(next_poll(POLL_MAX, 0.001), POLL_MAX);
    }

    #[test]
    fn a_ring_filling_fast_is_drained_as_often_as_keeps_it_an_eighth_full() {
        // A quarter of a ring in 100 ms: an eighth takes 50 ms.
        assert_eq!(next_poll(ms(100), 0.25), ms(50));
        // An eighth in 80 ms: as it is.
        assert_eq!(next_poll(ms(80), 0.125), ms(80));
        // A full ring: as often as may be.
        assert_eq!(next_poll(ms(50), 1.0), POLL_MIN);
    }

    #[test]
    fn the_cost_is_the_programs_and_the_drain_over_every_cpus_time() {
        // 2 CPUs for 10 s: 20 s of CPU time; 300 ms of programs and 100 ms of drain.
        let mut p = ProgramsCpu {
            runs: 100_000,
            ns: 300_000_000,
            dispatcher: None,
        };
        let line = cost_line(p, 100_000_000, Duration::from_secs(10), 2);
        assert_eq!(
            line,
            "schedkit: recording cost 2.00% of the machine's CPU time (2 CPUs, 10.0 s): its \
             BPF programs ran 100000 times for 300 ms (1.50%, 3.00 us a run), draining took \
             100 ms (0.50%)"
        );
        // Under a schedkit scheduler, its dispatcher's records count too.
        p.dispatcher = Some(Timed {
            records: 50_000,
            ns: 200_000_000,
        });
        let line = cost_line(p, 100_000_000, Duration::from_secs(10), 2);
        assert_eq!(
            line,
            "schedkit: recording cost 3.00% of the machine's CPU time (2 CPUs, 10.0 s): its \
             BPF programs ran 100000 times for 300 ms (1.50%, 3.00 us a run), the \
             dispatcher's 50000 records 200 ms (1.00%, 4.00 us a record), draining took \
             100 ms (0.50%)"
        );
        // Nothing ran, no time passed: no division by zero.
        let idle = cost_line(ProgramsCpu::default(), 0, Duration::ZERO, 1);
        assert!(
            idle.contains("cost 0.00%") && idle.contains("0.00 us a run"),
            "{idle}"
        );
    }
}
