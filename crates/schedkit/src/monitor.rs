//! Live statistics: the `--stats` line, the Unix socket a running scheduler serves
//! them on, and `schedkit monitor`, which reads it.
//!
//! The protocol is as small as it gets: connect to the socket, read one JSON object
//! (the latest sample) terminated by a newline, and the server closes the connection.
//! The socket is created mode 0600 by root, so only root can read it.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use schedkit_core::{Counters, PolicyStats};
use serde::{Deserialize, Serialize};

/// Where a running scheduler serves its statistics (`SCHEDKIT_SOCKET` overrides).
pub fn socket_path() -> PathBuf {
    std::env::var_os("SCHEDKIT_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/schedkit.sock"))
}

/// One sample of a running scheduler's figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub policy: &'static str,
    pub uptime_s: f64,
    #[serde(flatten)]
    pub counters: Counters,
    #[serde(flatten)]
    pub policy_stats: PolicyStats,
    /// Page faults of the scheduler process since it attached; should stay 0.
    pub page_faults: u64,
}

/// A sample as `schedkit monitor` reads it back.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReadSample {
    pub policy: String,
    pub uptime_s: f64,
    #[serde(flatten)]
    pub counters: Counters,
    /// See [`PolicyStats::nr_tasks`].
    pub nr_tasks: u64,
    /// See [`PolicyStats::slice_ns`].
    pub slice_ns: u64,
    /// The policy's own named figures.
    #[serde(default)]
    pub policy_figures: Vec<ReadFigure>,
    pub page_faults: u64,
}

/// A policy's named figure, read back (see [`schedkit_core::Figure`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ReadFigure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The one-line form printed by `schedkit run --stats`.
pub fn stats_line(s: &Sample) -> String {
    let c = &s.counters;
    let p = &s.policy_stats;
    format!(
        "[{}] running {} queued {} held {} | dispatches user {} kernel {} standing {} | cancelled {} bounced {} congestion {} preempted {} kept {} handed back {} exits lost {} rescued {} | degraded {:.2} s | trip {:.1} us | page faults {} | tasks {} slice {:.2} ms{}",
        s.policy,
        c.nr_running,
        c.nr_queued,
        c.nr_held,
        c.user_dispatches,
        c.kernel_dispatches,
        c.standing_dispatches,
        c.cancelled,
        c.bounced,
        c.congestion,
        c.preemptions,
        c.preempted_kept,
        c.handed_back,
        c.exit_lost,
        c.rescued,
        c.degraded_ns as f64 / 1e9,
        c.trip_cost_ns as f64 / 1e3,
        s.page_faults,
        p.nr_tasks,
        ms(p.slice_ns),
        p.figures()
            .map(|f| figure_text(f.name, f.value, f.unit))
            .collect::<String>(),
    )
}

/// ` name 1.23 unit`, as the statistics line shows a policy's figure.
fn figure_text(name: &str, value: f64, unit: &str) -> String {
    if unit.is_empty() {
        format!(" {name} {value:.2}")
    } else {
        format!(" {name} {value:.2} {unit}")
    }
}

/// Holds the latest sample; a thread of its own prints it every `--stats` interval,
/// another serves it on the socket. The scheduling loop only copies a small struct
/// under a lock, never blocks on output.
pub struct StatsServer {
    latest: Arc<Mutex<Option<Sample>>>,
    path: Option<PathBuf>,
}

/// Stack of the statistics threads: they format one line at a time, and every byte of
/// their stacks is locked in memory while the scheduler runs.
const STATS_THREAD_STACK: usize = 128 << 10;

impl StatsServer {
    /// Starts the printer (if `print_every` is given) and the socket server. A socket
    /// that cannot be served is reported once and otherwise ignored: statistics are not
    /// worth refusing to schedule for.
    pub fn start(print_every: Option<Duration>) -> Self {
        let latest: Arc<Mutex<Option<Sample>>> = Arc::new(Mutex::new(None));
        if let Some(every) = print_every {
            let shared = Arc::clone(&latest);
            let spawned = std::thread::Builder::new()
                .name("schedkit-print".into())
                .stack_size(STATS_THREAD_STACK)
                .spawn(move || loop {
                    // First use of stderr and of the formatter, before memory is locked.
                    let _ = std::hint::black_box(std::io::stderr().lock());
                    std::thread::sleep(every);
                    let sample = *shared.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(s) = sample {
                        eprintln!("{}", stats_line(&s));
                    }
                });
            if let Err(e) = spawned {
                eprintln!("schedkit: cannot start the statistics printer: {e}");
            }
        }
        let path = match Self::serve(Arc::clone(&latest)) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("schedkit: {e:#}; schedkit monitor will not see this scheduler");
                None
            }
        };
        StatsServer { latest, path }
    }

    fn serve(latest: Arc<Mutex<Option<Sample>>>) -> anyhow::Result<PathBuf> {
        let path = socket_path();
        remove_stale_socket(&path)?;
        // Created with mode 0600 from the start: no window in which another user could
        // connect, and no chmod afterwards that would follow a symlink put in its place.
        // SAFETY: umask has no preconditions; it is set back at once. Other threads of
        // this process create no files meanwhile (the scheduler is not attached yet).
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener =
            bound.with_context(|| format!("cannot serve statistics on {}", path.display()))?;
        std::thread::Builder::new()
            .name("schedkit-stats".into())
            .stack_size(STATS_THREAD_STACK)
            .spawn(move || {
                for mut conn in listener.incoming().flatten() {
                    let sample = *latest.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(s) = sample {
                        if let Ok(mut line) = serde_json::to_string(&s) {
                            line.push('\n');
                            let _ = conn.write_all(line.as_bytes());
                        }
                    }
                }
            })?;
        Ok(path)
    }

    /// The path it serves on, if it could.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Hands over the latest sample. Never waits: if the printer or the socket thread
    /// holds the lock (and was preempted holding it), this sample is skipped and the
    /// next one, a quarter of a second later, goes instead.
    pub fn publish(&self, s: &Sample) {
        match self.latest.try_lock() {
            Ok(mut latest) => *latest = Some(*s),
            Err(std::sync::TryLockError::Poisoned(e)) => *e.into_inner() = Some(*s),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes what is at `path` only if it is a socket nobody answers on (left by a
/// scheduler that was killed); anything else there is kept, and refused.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(()); // nothing there
    };
    anyhow::ensure!(
        meta.file_type().is_socket(),
        "{} exists and is not a socket: remove it, or set SCHEDKIT_SOCKET to another path",
        path.display()
    );
    anyhow::ensure!(
        UnixStream::connect(path).is_err(),
        "another schedkit scheduler answers on {}",
        path.display()
    );
    std::fs::remove_file(path)
        .with_context(|| format!("cannot remove the stale socket {}", path.display()))
}

/// The longest answer `schedkit monitor` reads: a sample is well under 4 KiB.
const MAX_SAMPLE_BYTES: u64 = 64 * 1024;

fn read_sample() -> anyhow::Result<ReadSample> {
    read_sample_from(&socket_path())
}

/// The latest sample of the scheduler serving statistics on `path`.
pub fn read_sample_from(path: &Path) -> anyhow::Result<ReadSample> {
    let conn = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "permission denied on {}: the statistics are for root, run schedkit monitor with sudo",
            path.display()
        ),
        _ => anyhow::anyhow!(
            "no schedkit scheduler is running (nothing answers on {}): start one with schedkit run",
            path.display()
        ),
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(conn.take(MAX_SAMPLE_BYTES)).read_line(&mut line)?;
    anyhow::ensure!(
        !line.is_empty(),
        "the scheduler has no statistics yet: try again in a second"
    );
    serde_json::from_str(&line).context("the scheduler answered with malformed statistics")
}

/// `schedkit monitor`: prints samples until Ctrl-C, or `count` of them.
pub fn watch(interval: Duration, json: bool, count: Option<u64>) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal() && !json;
    let mut prev: Option<ReadSample> = None;
    let mut n = 0u64;
    loop {
        let s = read_sample()?;
        if json {
            println!("{}", serde_json::to_string(&s)?);
        } else {
            if tty {
                print!("\x1b[H\x1b[2J");
            }
            print!("{}", table(&s, prev.as_ref(), interval));
        }
        std::io::stdout().flush()?;
        prev = Some(s);
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn table(s: &ReadSample, prev: Option<&ReadSample>, interval: Duration) -> String {
    let c = &s.counters;
    let rate = |now: u64, f: fn(&Counters) -> u64| -> String {
        match prev {
            Some(p) => format!(
                "{:.0}/s",
                now.saturating_sub(f(&p.counters)) as f64 / interval.as_secs_f64()
            ),
            None => "-".into(),
        }
    };
    format!(
        "schedkit {} up {:.0} s\n\
         {:<22}{:>12}{:>14}\n\
         {:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12}\n\
         {:<22}{:>12}{:>14}\n{:<22}{:>12}{:>14}\n{:<22}{:>12}{:>14}\n\
         {:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12}\n\
         {:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12}\n{:<22}{:>12.2} ms\n{:<22}{:>12}\n\
         {:<22}{:>12.1} us\n{}",
        s.policy,
        s.uptime_s,
        "",
        "now/total",
        "rate",
        "tasks running",
        c.nr_running,
        "tasks queued",
        c.nr_queued,
        "tasks held by policy",
        c.nr_held,
        "user dispatches",
        c.user_dispatches,
        rate(c.user_dispatches, |c| c.user_dispatches),
        "standing dispatches",
        c.standing_dispatches,
        rate(c.standing_dispatches, |c| c.standing_dispatches),
        "kernel dispatches",
        c.kernel_dispatches,
        rate(c.kernel_dispatches, |c| c.kernel_dispatches),
        "cancelled",
        c.cancelled,
        "bounced",
        c.bounced,
        "congestion",
        c.congestion,
        "preempted",
        c.preemptions,
        "preempted, kept place",
        c.preempted_kept,
        "handed back",
        c.handed_back,
        "exit events lost",
        c.exit_lost,
        "policy tasks",
        s.nr_tasks,
        "slice",
        ms(s.slice_ns),
        "page faults",
        s.page_faults,
        "trip cost",
        c.trip_cost_ns as f64 / 1e3,
        s.policy_figures
            .iter()
            .map(|f| format!("{:<22}{:>12.2} {}\n", f.name, f.value, f.unit))
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        Sample {
            policy: "fifo",
            uptime_s: 3.0,
            counters: Counters {
                nr_running: 2,
                user_dispatches: 100,
                trip_cost_ns: 12_300,
                ..Default::default()
            },
            policy_stats: PolicyStats::new(4, 5_000_000).with_figure("spread", 1.5, "ms"),
            page_faults: 0,
        }
    }

    #[test]
    fn stats_line_names_every_counter() {
        let line = stats_line(&sample());
        for word in [
            "running 2",
            "user 100",
            "kernel 0",
            "cancelled",
            "bounced",
            "congestion",
            "preempted 0",
            "kept 0",
            "standing 0",
            "page faults 0",
            "slice 5.00 ms",
            "tasks 4",
            "spread 1.50 ms",
            "exits lost 0",
            "degraded 0.00 s",
            "trip 12.3 us",
        ] {
            assert!(line.contains(word), "{word} missing in {line}");
        }
    }

    #[test]
    fn the_socket_serves_the_latest_sample_as_json_and_monitor_reads_it() {
        let dir = std::env::temp_dir().join(format!("schedkit-mon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        std::env::set_var("SCHEDKIT_SOCKET", &sock);
        let server = StatsServer::start(None);
        assert!(server.path.is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        server.publish(&sample());
        let read = read_sample().unwrap();
        assert_eq!(read.policy, "fifo");
        assert_eq!(read.counters.user_dispatches, 100);
        assert_eq!(read.slice_ns, 5_000_000);
        assert_eq!(
            read.policy_figures,
            [ReadFigure {
                name: "spread".into(),
                value: 1.5,
                unit: "ms".into()
            }]
        );
        assert!(table(&read, None, Duration::from_secs(1)).contains("spread"));
        drop(server);
        let err = read_sample().unwrap_err().to_string();
        assert!(err.contains("no schedkit scheduler is running"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_stale_socket_is_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("schedkit-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A plain file is kept, and refused.
        let file = dir.join("plain");
        std::fs::write(&file, "keep").unwrap();
        let e = remove_stale_socket(&file).unwrap_err().to_string();
        assert!(e.contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        // A symlink (even to a socket) is not followed nor removed; its target keeps
        // its mode.
        let target = dir.join("target");
        std::fs::write(&target, "").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(remove_stale_socket(&link).is_err());
        assert!(std::fs::symlink_metadata(&link).is_ok());
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // A socket nobody answers on goes; one that answers stays.
        let sock = dir.join("s.sock");
        let live = UnixListener::bind(&sock).unwrap();
        assert!(remove_stale_socket(&sock).is_err());
        drop(live);
        remove_stale_socket(&sock).unwrap();
        assert!(std::fs::symlink_metadata(&sock).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
