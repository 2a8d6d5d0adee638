//! `schedkit calibrate`: measures what scheduling costs on this machine and writes it
//! as a machine profile ([`schedkit_sim::MachineProfile`]) for `schedkit sim
//! --machine`.
//!
//! What it measures, and how:
//! - **a context switch**: two threads pinned to one CPU pass a byte back and forth
//!   through two pipes under the current scheduler (as `perf bench sched pipe`
//!   does); one message is a write, a wake-up, a switch and a read, which is what the
//!   simulator charges per switch. Runs unprivileged.
//! - **a switch between processes**: the same between a forked child and a thread;
//!   what it takes beyond a thread switch is `mm_switch_ns`. Runs unprivileged.
//! - **a process's creation**: fork, `_exit` and `waitpid` in a loop, as the workload
//!   executor's jobs do: the parent's CPU time per process is `fork_ns`, the
//!   children's (`RUSAGE_CHILDREN`) is `process_spawn_ns`. Runs unprivileged.
//! - **the tick** (`CONFIG_HZ`) from the kernel's configuration, when it can be read.
//! - **the trip through a schedkit scheduler**, as root on a sched_ext kernel only: it
//!   starts `schedkit run POLICY` as a child, repeats the ping-pong under it, and
//!   reads the scheduler's CPU time (`/proc/PID/task/*/schedstat`) and the tasks it
//!   handled (its statistics socket) over the same window. The CPU time per task
//!   handled is `per_task_ns`; what each message took beyond the context switch
//!   measured before, less a switch to the scheduler's process and back and its
//!   per-task time, is `sched_wakeup_ns`. The scheduler's CPU time includes its own
//!   switches, which the simulator charges apart: the trip comes out a little dear.
//!
//! Whatever it cannot measure it keeps from the shipped VM profile, and says which and
//! why in one sentence on stderr.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use schedkit_sim::profile::VM_PROFILE_NAME;
use schedkit_sim::MachineProfile;

use crate::registry::Registry;

/// The shortest and longest `--duration`, seconds per measurement.
pub const DURATION_S: std::ops::RangeInclusive<f64> = 0.1..=600.0;

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Write the profile to FILE (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The schedkit policy whose trip is measured (root on a sched_ext kernel only).
    #[arg(long, value_name = "NAME", default_value = "fifo")]
    policy: String,
    /// Seconds each measurement lasts (0.1 to 600).
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    duration: f64,
    /// The profile's name [default: calibrated-HOSTNAME].
    #[arg(long)]
    name: Option<String>,
}

/// Context switches measured by [`switch_cost`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwitchCost {
    /// Messages passed (each a wake-up and a switch).
    pub messages: u64,
    /// Wall time they took, ns.
    pub elapsed_ns: u64,
    /// The CPU both threads were pinned to, if pinning worked.
    pub cpu: Option<usize>,
}

impl SwitchCost {
    /// Time per message, that is per switch with its wake-up, ns.
    pub fn per_switch_ns(&self) -> u64 {
        self.elapsed_ns / self.messages.max(1)
    }
}

fn os_err(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe2"));
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// The first CPU this thread may run on.
fn first_allowed_cpu() -> Option<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: as above; pid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within its bounds.
    (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is valid, CPU_SET stays within it, and pid 0 is this
    // thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The measuring side of a ping-pong: sends a byte on `tx` and waits for it on `rx`
/// until `duration` has passed. Returns the round trips and the nanoseconds they took.
fn ping(rx: &mut File, tx: &mut File, duration: Duration) -> std::io::Result<(u64, u64)> {
    let mut byte = [0u8; 1];
    let mut round_trips = 0u64;
    let t0 = Instant::now();
    let end = t0 + duration;
    loop {
        tx.write_all(&byte)?;
        rx.read_exact(&mut byte)?;
        round_trips += 1;
        if round_trips & 63 == 0 && Instant::now() >= end {
            break;
        }
    }
    Ok((round_trips, t0.elapsed().as_nanos() as u64))
}

/// Two threads pinned to one CPU ping-pong a byte through two pipes for `duration`:
/// every message is a write, a wake-up, a context switch and a read. The caller's
/// own thread and its affinity are left alone.
pub fn switch_cost(duration: Duration) -> std::io::Result<SwitchCost> {
    let (mut a_rx, mut b_tx) = pipe()?;
    let (mut b_rx, mut a_tx) = pipe()?;
    let cpu = first_allowed_cpu();
    let pinned = std::thread::scope(|s| {
        let pong = s.spawn(move || {
            let pinned = cpu.is_some_and(pin_to);
            let mut byte = [0u8; 1];
            // Ends when the other side closes its end (EOF or error).
            while matches!(b_rx.read(&mut byte), Ok(1)) {
                if b_tx.write_all(&byte).is_err() {
                    break;
                }
            }
            pinned
        });
        let ping = s.spawn(move || -> std::io::Result<(bool, u64, u64)> {
            let pinned = cpu.is_some_and(pin_to);
            let (round_trips, elapsed) = ping(&mut a_rx, &mut a_tx, duration)?;
            drop(a_tx); // the pong thread sees EOF and ends
            Ok((pinned, round_trips, elapsed))
        });
        let r = ping
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the ping-pong thread panicked")));
        let pong_pinned = pong.join().unwrap_or(false);
        r.map(|(p, n, t)| (p && pong_pinned, n, t))
    })?;
    let (pinned, round_trips, elapsed_ns) = pinned;
    Ok(SwitchCost {
        messages: 2 * round_trips,
        elapsed_ns,
        cpu: if pinned { cpu } else { None },
    })
}

/// [`switch_cost`] between two processes instead of two threads: a forked child
/// pinned to the same CPU answers each byte. The difference with [`switch_cost`] is
/// what changing address space adds to a switch.
pub fn process_switch_cost(duration: Duration) -> std::io::Result<SwitchCost> {
    use std::os::fd::AsRawFd;
    let (a_rx, b_tx) = pipe()?;
    let (b_rx, a_tx) = pipe()?;
    let cpu = first_allowed_cpu();
    // SAFETY: the child calls only sched_setaffinity, read, write and _exit, all
    // async-signal-safe, so forking a multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        // SAFETY: see above; the descriptors are open in the child.
        unsafe {
            if let Some(c) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(c, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            libc::close(a_tx.as_raw_fd());
            let mut byte = 0u8;
            let p = &mut byte as *mut u8 as *mut libc::c_void;
            while libc::read(b_rx.as_raw_fd(), p, 1) == 1 {
                if libc::write(b_tx.as_raw_fd(), p, 1) != 1 {
                    break;
                }
            }
            libc::_exit(0);
        }
    }
    drop((b_rx, b_tx));
    let r = std::thread::scope(|s| {
        s.spawn(move || -> std::io::Result<(bool, u64, u64)> {
            let (mut rx, mut tx) = (a_rx, a_tx);
            let pinned = cpu.is_some_and(pin_to);
            let (round_trips, elapsed) = ping(&mut rx, &mut tx, duration)?;
            Ok((pinned, round_trips, elapsed))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the ping-pong thread panicked")))
    });
    // The child sees EOF once the thread's end of the pipe is closed (it was moved
    // into the thread and dropped there), and exits.
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let (pinned, round_trips, elapsed_ns) = r?;
    Ok(SwitchCost {
        messages: 2 * round_trips,
        elapsed_ns,
        cpu: if pinned { cpu } else { None },
    })
}

/// What creating a process costs, measured by [`spawn_cost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnCost {
    /// Processes created.
    pub count: u64,
    /// The parent's CPU time per process (fork and reap), ns.
    pub parent_ns: u64,
    /// The child's CPU time per process (starting and exiting), ns.
    pub child_ns: u64,
}

/// CPU time of every reaped child of this process, ns.
fn children_cpu_ns() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes into a valid rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: initialised by the successful call.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Forks a child that exits at once and reaps it, in a loop for `duration`, and
/// splits what that costs between the parent and the child.
pub fn spawn_cost(duration: Duration) -> std::io::Result<SpawnCost> {
    let t0 = Instant::now();
    let (cpu0, children0) = (schedkit_scx::thread_cpu_ns(), children_cpu_ns());
    let mut n = 0u64;
    while n == 0 || t0.elapsed() < duration {
        // SAFETY: the child calls only `_exit`, which is async-signal-safe, so forking
        // a multi-threaded process is sound.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_err("fork"));
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(os_err("waitpid"));
        }
        n += 1;
    }
    Ok(SpawnCost {
        count: n,
        parent_ns: schedkit_scx::thread_cpu_ns().saturating_sub(cpu0) / n,
        child_ns: children_cpu_ns().saturating_sub(children0) / n,
    })
}

/// `CONFIG_HZ` of a kernel configuration's text.
fn hz_of_config(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

/// The running kernel's `CONFIG_HZ`, from its configuration file, if readable.
pub fn kernel_hz() -> Option<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    for path in [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
    ] {
        if let Some(hz) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| hz_of_config(&t))
        {
            return Some(hz);
        }
    }
    let out = Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    hz_of_config(&String::from_utf8_lossy(&out.stdout))
}

/// EEVDF's features and base slice, as the kernel's scheduler debug files give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EevdfTunables {
    hrtick: bool,
    delay_dequeue: bool,
    /// Before the kernel's scaling by the CPU count.
    base_slice_ns: u64,
}

const SCHED_DEBUG_DIR: &str = "/sys/kernel/debug/sched";

/// Reads [`EevdfTunables`] from debugfs (root, debugfs mounted), or says why not.
fn read_eevdf_tunables(cpus: u32) -> Result<EevdfTunables, String> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("{SCHED_DEBUG_DIR}/{f}"))
            .map_err(|e| format!("{SCHED_DEBUG_DIR}/{f} is unreadable: {e}"))
    };
    let features = read("features")?;
    let scaled = read("base_slice_ns")?;
    eevdf_tunables(&features, &scaled, cpus)
}

/// [`EevdfTunables`] from the text of `features` and `base_slice_ns`, on `cpus` CPUs.
/// The kernel scales the base slice by 1 + log2 of the CPUs (at most 8), its default
/// `tunable_scaling`.
fn eevdf_tunables(features: &str, base_slice: &str, cpus: u32) -> Result<EevdfTunables, String> {
    let on = |name: &str| {
        let mut words = features.split_whitespace();
        if words.clone().any(|w| w == name) {
            Ok(true)
        } else if words.any(|w| w.strip_prefix("NO_") == Some(name)) {
            Ok(false)
        } else {
            Err(format!("the scheduler's features do not name {name}"))
        }
    };
    let scaled: u64 = base_slice
        .trim()
        .parse()
        .map_err(|_| format!("base_slice_ns is not a number: {:?}", base_slice.trim()))?;
    let (hrtick, delay_dequeue) = (on("HRTICK")?, on("DELAY_DEQUEUE")?);
    let factor = 1 + u64::from(cpus.clamp(1, 8).ilog2());
    let base_slice_ns = scaled / factor;
    let range = schedkit_sim::profile::BASE_SLICE_RANGE_NS;
    if !range.contains(&base_slice_ns) {
        return Err(format!(
            "the base slice, {base_slice_ns} ns unscaled, is outside what the simulator takes ({} to {} ns)",
            range.start(),
            range.end()
        ));
    }
    Ok(EevdfTunables {
        hrtick,
        delay_dequeue,
        base_slice_ns,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this-machine".into())
}

/// What a trip through the user-space scheduler costs, measured under it.
struct Trip {
    switch: SwitchCost,
    per_task_ns: u64,
    sched_wakeup_ns: u64,
    tasks: u64,
}

/// CPU time of every thread of `pid`, ns (`/proc/PID/task/*/schedstat`).
fn process_cpu_ns(pid: u32) -> std::io::Result<u64> {
    let mut sum = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = t?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            sum += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(sum)
}

/// A child `schedkit run`, stopped (SIGINT, then SIGKILL) when dropped.
struct Scheduler {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: signals our own child, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Scheduler {
    fn last_log_line(&self) -> String {
        std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Attaches `policy` in a child `schedkit run`, repeats the ping-pong under it and
/// derives the trip's costs. `Err` is the reason, as a clause for the sentence.
fn measure_trip(
    policy: &str,
    duration: Duration,
    base: &SwitchCost,
    mm_switch_ns: u64,
) -> Result<Trip, String> {
    schedkit_scx::check_can_attach()
        .map_err(|e| e.to_string().trim_end_matches('.').to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary ({e})"))?;
    let dir = std::env::temp_dir();
    let me = std::process::id();
    let socket = dir.join(format!("schedkit-calibrate-{me}.sock"));
    let log = dir.join(format!("schedkit-calibrate-{me}.log"));
    let log_file =
        File::create(&log).map_err(|e| format!("cannot create {} ({e})", log.display()))?;
    let child = Command::new(&exe)
        .args(["run", policy])
        .env("SCHEDKIT_SOCKET", &socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start `{} run {policy}` ({e})", exe.display()))?;
    let mut sched = Scheduler { child, socket, log };
    // Attached once the statistics socket answers (loading takes seconds in a VM).
    let t = Instant::now();
    let mut last = loop {
        if let Ok(Some(status)) = sched.child.try_wait() {
            return Err(format!(
                "`schedkit run {policy}` ended ({status}): {}",
                sched.last_log_line()
            ));
        }
        if let Ok(s) = crate::monitor::read_sample_from(&sched.socket) {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "`schedkit run {policy}` did not attach within 60 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = sched.child.id();
    // The scheduler publishes a sample four times a second: take the scheduler's CPU
    // time the moment a new one appears, so that both cover the same window.
    let mut fresh = |what: &str| -> Result<(crate::monitor::ReadSample, u64), String> {
        let t = Instant::now();
        loop {
            let s = crate::monitor::read_sample_from(&sched.socket).map_err(|e| e.to_string())?;
            if s.uptime_s != last.uptime_s {
                let cpu = process_cpu_ns(pid)
                    .map_err(|e| format!("cannot read the scheduler's CPU time ({e})"))?;
                last = s.clone();
                return Ok((s, cpu));
            }
            if t.elapsed() > Duration::from_secs(2) {
                return Err(format!("the scheduler published no statistics {what}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let handled =
        |s: &crate::monitor::ReadSample| s.counters.user_dispatches + s.counters.cancelled;
    let (s0, cpu0) = fresh("before the measurement")?;
    let switch = switch_cost(duration).map_err(|e| format!("the ping-pong failed ({e})"))?;
    let (s1, cpu1) = fresh("after the measurement")?;
    if let Ok(Some(status)) = sched.child.try_wait() {
        return Err(format!(
            "`schedkit run {policy}` ended during the measurement ({status}): {}",
            sched.last_log_line()
        ));
    }
    drop(sched);
    let tasks = handled(&s1).saturating_sub(handled(&s0));
    if tasks == 0 {
        return Err(format!(
            "`schedkit run {policy}` handled no task while measured"
        ));
    }
    let per_task_ns = cpu1.saturating_sub(cpu0) / tasks;
    // Each message now also waited for the scheduler: a switch to its process and
    // back, its step and its work on the task (as the simulator charges them).
    let extra = switch.per_switch_ns().saturating_sub(base.per_switch_ns());
    let sched_wakeup_ns = extra
        .saturating_sub(base.per_switch_ns())
        .saturating_sub(2 * mm_switch_ns)
        .saturating_sub(per_task_ns);
    Ok(Trip {
        switch,
        per_task_ns,
        sched_wakeup_ns,
        tasks,
    })
}

/// What `calibrate` found: the profile, the notes for its header, and the sentence
/// about what was kept from the default profile, if anything was.
pub struct Calibration {
    pub profile: MachineProfile,
    pub notes: Vec<String>,
    pub kept: Option<String>,
}

/// Measures this machine (see the module documentation). The trip is measured only
/// if `policy` is given (and then only as root on a sched_ext kernel).
pub fn calibrate(
    name: &str,
    policy: Option<&str>,
    duration: Duration,
) -> anyhow::Result<Calibration> {
    let mut p = MachineProfile::vm_default();
    p.name = name.to_string();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 {
        p.cpus = (online as u32).min(1024);
    }
    let base = switch_cost(duration).context("cannot measure a context switch")?;
    p.context_switch_ns = base
        .per_switch_ns()
        .clamp(1, schedkit_sim::profile::MAX_COST_NS);
    let spawn =
        spawn_cost(duration.min(Duration::from_secs(2))).context("cannot measure a fork")?;
    p.fork_ns = spawn.parent_ns.min(schedkit_sim::profile::MAX_COST_NS);
    p.process_spawn_ns = spawn.child_ns.min(schedkit_sim::profile::MAX_COST_NS);
    let procs = process_switch_cost(duration).context("cannot measure a process switch")?;
    p.mm_switch_ns = procs
        .per_switch_ns()
        .saturating_sub(base.per_switch_ns())
        .min(schedkit_sim::profile::MAX_COST_NS);
    let mut kept = vec!["migration_ns and preempt_lazy (not measured)".to_string()];
    match read_eevdf_tunables(p.cpus) {
        Ok(t) => {
            p.hrtick = t.hrtick;
            p.delay_dequeue = t.delay_dequeue;
            p.base_slice_ns = t.base_slice_ns;
        }
        Err(why) => kept.push(format!("hrtick, delay_dequeue and base_slice_ns ({why})")),
    }
    let hz = kernel_hz();
    match hz {
        Some(hz) if (1..=10_000).contains(&hz) => p.tick_hz = hz,
        _ => kept.push("tick_hz (the kernel's configuration is unreadable)".into()),
    }
    let mut notes = vec![
        format!("Measured by `schedkit calibrate` on {} (kernel {release}).", hostname()),
        format!(
            "context switch: {} messages in {:.3} s between two threads {}, under the scheduler that was attached.",
            base.messages,
            base.elapsed_ns as f64 / 1e9,
            match base.cpu {
                Some(c) => format!("pinned to CPU {c}"),
                None => "(pinning failed)".into(),
            }
        ),
        format!(
            "processes: {} forked and reaped, {} us of the parent's CPU and {} us of the child's each.",
            spawn.count,
            spawn.parent_ns / 1000,
            spawn.child_ns / 1000
        ),
        format!(
            "process switch: {} us per message between two processes, against {} us between threads.",
            procs.per_switch_ns() / 1000,
            base.per_switch_ns() / 1000
        ),
    ];
    let trip = match policy {
        None => Err("no policy was given".to_string()),
        Some(policy) => measure_trip(policy, duration, &base, p.mm_switch_ns),
    };
    match trip {
        Ok(t) => {
            p.per_task_ns = t.per_task_ns.min(schedkit_sim::profile::MAX_COST_NS);
            p.sched_wakeup_ns = t.sched_wakeup_ns.min(schedkit_sim::profile::MAX_COST_NS);
            notes.push(format!(
                "trip: {} us per message under {} ({} tasks handled, {} messages) against {} us without it.",
                t.switch.per_switch_ns() / 1000,
                policy.unwrap_or_default(),
                t.tasks,
                t.switch.messages,
                base.per_switch_ns() / 1000
            ));
        }
        Err(why) => kept.push(format!("sched_wakeup_ns and per_task_ns ({why})")),
    }
    p.description = Some(format!(
        "{} CPUs, HZ={}{}, calibrated",
        p.cpus,
        p.tick_hz,
        if hz.is_none() { " (assumed)" } else { "" }
    ));
    let kept = (!kept.is_empty()).then(|| {
        format!(
            "kept from the default profile ({VM_PROFILE_NAME}): {}",
            kept.join(", ")
        )
    });
    if let Some(k) = &kept {
        notes.push(format!("{k}."));
    }
    p.validate().map_err(anyhow::Error::msg)?;
    Ok(Calibration {
        profile: p,
        notes,
        kept,
    })
}

/// `schedkit calibrate`.
pub fn main(reg: &Registry, args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    if !(args.duration.is_finite() && DURATION_S.contains(&args.duration)) {
        bail!(
            "--duration takes {} to {} seconds, got {}",
            DURATION_S.start(),
            DURATION_S.end(),
            args.duration
        );
    }
    reg.entry(&args.policy).map_err(anyhow::Error::msg)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("calibrated-{}", hostname()));
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let c = calibrate(
        &name,
        Some(&args.policy),
        Duration::from_secs_f64(args.duration),
    )?;
    let text = c.profile.to_toml(&c.notes);
    match &args.output {
        Some(path) => write_profile(path, &text)?,
        None => print!("{text}"),
    }
    if let Some(k) = &c.kept {
        eprintln!("schedkit calibrate: {k}.");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_profile(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the profile to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_switch_costs_a_positive_time_on_one_cpu() {
        let c = switch_cost(Duration::from_millis(200)).unwrap();
        assert!(c.messages >= 128, "{c:?}");
        assert!(c.per_switch_ns() > 0, "{c:?}");
        // Far less than a tick on any machine that can run the tests.
        assert!(c.per_switch_ns() < 4_000_000, "{c:?}");
    }

    #[test]
    fn a_switch_between_processes_is_measured_on_one_cpu() {
        let c = process_switch_cost(Duration::from_millis(200)).unwrap();
        assert!(c.messages >= 128, "{c:?}");
        assert!(
            c.per_switch_ns() > 0 && c.per_switch_ns() < 4_000_000,
            "{c:?}"
        );
    }

    #[test]
    fn a_fork_costs_the_parent_a_positive_time() {
        let c = spawn_cost(Duration::from_millis(100)).unwrap();
        assert!(c.count > 0, "{c:?}");
        assert!(c.parent_ns > 0 && c.parent_ns < 1_000_000_000, "{c:?}");
        assert!(c.child_ns < 1_000_000_000, "{c:?}");
    }

    #[test]
    fn eevdf_features_and_the_unscaled_slice_come_from_debugfs_text() {
        let f = "PLACE_LAG NO_HRTICK HRTICK_DL DELAY_DEQUEUE RUN_TO_PARITY\n";
        assert_eq!(
            eevdf_tunables(f, "1400000\n", 2),
            Ok(EevdfTunables {
                hrtick: false,
                delay_dequeue: true,
                base_slice_ns: 700_000
            })
        );
        let f = "HRTICK NO_DELAY_DEQUEUE";
        let t = eevdf_tunables(f, "3000000", 64).unwrap();
        assert!(t.hrtick && !t.delay_dequeue);
        assert_eq!(t.base_slice_ns, 750_000);
        assert!(eevdf_tunables("PLACE_LAG", "1", 2)
            .unwrap_err()
            .contains("HRTICK"));
        assert!(eevdf_tunables(f, "x", 2)
            .unwrap_err()
            .contains("not a number"));
        assert!(eevdf_tunables(f, "20", 2).unwrap_err().contains("outside"));
    }

    #[test]
    fn hz_comes_from_the_config_line() {
        assert_eq!(
            hz_of_config("# x\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n"),
            Some(250)
        );
        assert_eq!(hz_of_config("CONFIG_HZ_1000=y\n"), None);
    }

    #[test]
    fn without_a_policy_the_trip_is_kept_and_said_so() {
        let c = calibrate("t", None, Duration::from_millis(100)).unwrap();
        let kept = c.kept.unwrap();
        assert!(
            kept.contains("sched_wakeup_ns and per_task_ns (no policy was given)"),
            "{kept}"
        );
        let vm = MachineProfile::vm_default();
        assert_eq!(c.profile.per_task_ns, vm.per_task_ns);
        assert_ne!(c.profile.context_switch_ns, 0);
        let text = c.profile.to_toml(&c.notes);
        assert_eq!(
            MachineProfile::from_str_named(&text, "out.toml").unwrap(),
            c.profile
        );
    }
}
