//! The real executor: runs a [`Spec`] as real threads and processes on the running
//! kernel, under whatever scheduler is attached, and measures it into a [`Report`].
//!
//! - `periodic`: a thread per task sleeps until each period start (absolute
//!   `clock_nanosleep`, so lateness never accumulates), then burns `work` of its *own*
//!   CPU time (`CLOCK_THREAD_CPUTIME_ID`: a scheduler that keeps it off the CPU cannot
//!   shrink the work, only delay it). Start lateness is the time a frame's work starts
//!   minus its period start; a frame not done by the next period start is a deadline
//!   miss. A task that falls behind starts its next frame at once, so lateness grows
//!   for as long as the scheduler keeps it behind (the simulator counts the same way:
//!   frames started before the end; misses whose deadline falls within the run).
//! - `cpu`: a thread per task spins until the end.
//! - `jobs`: `parallel` slot threads, each forking one short-lived child process at a
//!   time. The child burns its CPU time and `_exit`s; it calls nothing but
//!   `clock_gettime` and `_exit`, both async-signal-safe, so forking a multi-threaded
//!   process is sound here. Jobs draw their sizes in start order from the group's
//!   seeded stream, so job *n* has the same size in every run and in the simulator.
//!   Jobs still running at the end are killed and not counted as completed.
//! - `pingpong`: a pair of threads per task that pass one byte back and forth through
//!   two pipes; the first thread times each round trip.
//!
//! Nice levels and affinity are set by each thread on itself (and inherited by the
//! job processes from their slot thread). Every thread sets itself up, then waits at a
//! gate, so all start together at one instant and a setup error (say, a negative nice
//! without the right) aborts the run before it starts.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::report::{GroupReport, JobStats, LatencyRecorder, PeriodicStats, PingPongStats, Report};
use crate::spec::{Group, Kind, Rng, Spec, TooManyTasks, WorkDist};

/// How the executor runs a spec.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Run this long instead of the spec's `duration_s`.
    pub duration_ns: Option<u64>,
    /// The scheduler name written into the report (`eevdf`, `rustland`, ...).
    pub scheduler_label: String,
    /// Print a progress line on stderr while running.
    pub progress: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            duration_ns: None,
            scheduler_label: "host".to_string(),
            progress: false,
        }
    }
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// setpriority failed.
    #[error("cannot set nice {nice} for group `{group}`: {cause} (a negative nice needs root or CAP_SYS_NICE)")]
    Nice {
        /// Group name.
        group: String,
        /// The nice level asked for.
        nice: i32,
        /// The system's error (part of the message, not a separate cause).
        cause: io::Error,
    },
    /// sched_setaffinity failed.
    #[error("cannot pin group `{group}` to CPUs {cpus:?}: {cause} (are those CPUs online and allowed to this process?)")]
    Affinity {
        /// Group name.
        group: String,
        /// The CPUs asked for.
        cpus: Vec<u32>,
        /// The system's error (part of the message, not a separate cause).
        cause: io::Error,
    },
    /// The scenario would run more tasks at once than [`crate::spec::MAX_TASKS`] on
    /// this machine's CPUs (checked before anything starts).
    #[error(transparent)]
    TooManyTasks(#[from] TooManyTasks),
    /// A thread, pipe or process could not be created.
    #[error(
        "cannot create {what}: {cause} (too many processes or open files? check ulimit -u / -n)"
    )]
    Resource {
        /// What could not be created.
        what: &'static str,
        /// The system's error (part of the message, not a separate cause).
        cause: io::Error,
    },
}

/// CPUs this process may use: what `parallel = "2x-cpus"` is resolved against and the
/// CPU count written into the report.
pub fn nr_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Runs `spec` on this machine and measures it. Blocks for the scenario's duration.
pub fn run(spec: &Spec, opts: &ExecOptions) -> Result<Report, ExecError> {
    let duration_ns = opts.duration_ns.unwrap_or(spec.duration_ns).max(1);
    let nr_cpus = nr_cpus();
    spec.check_nr_tasks(nr_cpus)?;
    let shared = Arc::new(Shared::new(spec.groups.len()));
    let (setup_tx, setup_rx) = mpsc::channel::<Result<(), ExecError>>();

    let mut handles: Vec<(usize, JoinHandle<TaskResult>)> = Vec::new();
    let mut registries: Vec<Arc<JobRegistry>> = Vec::new();
    let mut spawn_error = None;
    'spawn: for (gi, group) in spec.groups.iter().enumerate() {
        let tasks = match make_tasks(spec, gi, group, nr_cpus, &mut registries) {
            Ok(t) => t,
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        };
        for (ti, task) in tasks.into_iter().enumerate() {
            let ctx = ThreadCtx {
                group: group.clone(),
                gi,
                shared: shared.clone(),
                setup: setup_tx.clone(),
            };
            let name = thread_name(&group.name, ti);
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || thread_main(ctx, task))
            {
                Ok(h) => handles.push((gi, h)),
                Err(cause) => {
                    spawn_error = Some(ExecError::Resource {
                        what: "a thread",
                        cause,
                    });
                    break 'spawn;
                }
            }
        }
    }
    drop(setup_tx);

    // Every thread reports its setup before anything starts.
    let mut setup_error = spawn_error;
    for _ in 0..handles.len() {
        match setup_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                setup_error.get_or_insert(e);
            }
            Err(_) => break,
        }
    }
    if let Some(e) = setup_error {
        shared.open_gate(false, 0, 0);
        for (_, h) in handles {
            let _ = h.join();
        }
        return Err(e);
    }

    let t0 = mono_ns() + 5_000_000;
    let end = t0 + duration_ns;
    shared.open_gate(true, t0, end);
    watch_progress(spec, &shared, t0, end, opts.progress);
    // Stop job streams: no new forks, in-flight jobs killed.
    for r in &registries {
        r.stop();
    }
    let elapsed_ns = mono_ns().saturating_sub(t0).min(duration_ns).max(1);

    let mut results: Vec<Vec<TaskResult>> = spec.groups.iter().map(|_| Vec::new()).collect();
    for (gi, h) in handles {
        // A panicking worker is a bug in this module; report it as an empty result
        // rather than taking the whole run down.
        if let Ok(r) = h.join() {
            results[gi].push(r);
        }
    }
    if let Some(err) = registries.iter().find_map(|r| r.take_error()) {
        return Err(err);
    }

    let groups = spec
        .groups
        .iter()
        .zip(results)
        .map(|(g, rs)| group_report(g, rs, nr_cpus, duration_ns))
        .collect();
    Ok(Report::new(
        &spec.name,
        &opts.scheduler_label,
        elapsed_ns,
        nr_cpus,
        groups,
    ))
}

/// The scheduler the kernel runs now: the sched_ext scheduler's name when one is
/// attached (`/sys/kernel/sched_ext/state` is `enabled`), else `eevdf` (the default
/// fair scheduler since Linux 6.6; `cfs` on older kernels is reported as such).
pub fn attached_scheduler() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/sys/kernel/sched_ext/state").as_deref() == Some("enabled") {
        if let Some(ops) = read("/sys/kernel/sched_ext/root/ops").filter(|s| !s.is_empty()) {
            return ops;
        }
        return "sched_ext".to_string();
    }
    match kernel_version() {
        Some((major, minor)) if (major, minor) < (6, 6) => "cfs".to_string(),
        _ => "eevdf".to_string(),
    }
}

fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Burns `ns` of the calling thread's CPU time (not wall time: time spent waiting for
/// a CPU does not count). Used by the executor and by the hidden `__burn` command.
pub fn burn_thread_cpu_ns(ns: u64) {
    let start = thread_cpu_ns();
    while thread_cpu_ns().saturating_sub(start) < ns {
        spin(200);
    }
}

// ---- Shared state and the start gate ----

struct Shared {
    /// (opened, go) plus the start and end instants, set when the gate opens.
    gate: Mutex<Option<bool>>,
    gate_cv: Condvar,
    t0: AtomicU64,
    end: AtomicU64,
    live: Vec<Live>,
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
struct Live {
    frames: AtomicU64,
    misses: AtomicU64,
    jobs: AtomicU64,
    round_trips: AtomicU64,
}

impl Shared {
    fn new(nr_groups: usize) -> Shared {
        Shared {
            gate: Mutex::new(None),
            gate_cv: Condvar::new(),
            t0: AtomicU64::new(0),
            end: AtomicU64::new(0),
            live: (0..nr_groups).map(|_| Live::default()).collect(),
        }
    }

    fn open_gate(&self, go: bool, t0: u64, end: u64) {
        self.t0.store(t0, Ordering::SeqCst);
        self.end.store(end, Ordering::SeqCst);
        let mut g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        *g = Some(go);
        self.gate_cv.notify_all();
    }

    /// Waits for the gate; `Some((t0, end))` to run, `None` to give up.
    fn wait_gate(&self) -> Option<(u64, u64)> {
        let mut g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        while g.is_none() {
            g = self.gate_cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        if *g == Some(true) {
            Some((
                self.t0.load(Ordering::SeqCst),
                self.end.load(Ordering::SeqCst),
            ))
        } else {
            None
        }
    }
}

struct ThreadCtx {
    group: Group,
    gi: usize,
    shared: Arc<Shared>,
    setup: mpsc::Sender<Result<(), ExecError>>,
}

enum Task {
    Periodic {
        period_ns: u64,
        work_ns: u64,
    },
    Cpu,
    JobSlot(Arc<JobRegistry>),
    Ping {
        tx: File,
        rx: File,
        rounds: Option<u64>,
        work_ns: u64,
    },
    Pong {
        tx: File,
        rx: File,
        work_ns: u64,
    },
}

enum TaskResult {
    Periodic {
        cpu_ns: u64,
        frames: u64,
        misses: u64,
        lateness: LatencyRecorder,
    },
    Cpu {
        cpu_ns: u64,
    },
    Jobs {
        job_cpu_ns: Vec<u64>,
        completion: LatencyRecorder,
    },
    Ping {
        cpu_ns: u64,
        latency: LatencyRecorder,
    },
    Pong {
        cpu_ns: u64,
    },
    NotRun,
}

fn make_tasks(
    spec: &Spec,
    gi: usize,
    group: &Group,
    nr_cpus: u32,
    registries: &mut Vec<Arc<JobRegistry>>,
) -> Result<Vec<Task>, ExecError> {
    let n = group.count as usize;
    Ok(match &group.kind {
        Kind::Periodic { period_ns, work_ns } => (0..n)
            .map(|_| Task::Periodic {
                period_ns: *period_ns,
                work_ns: *work_ns,
            })
            .collect(),
        Kind::Cpu => (0..n).map(|_| Task::Cpu).collect(),
        Kind::Jobs {
            parallel,
            work,
            total,
        } => {
            let reg = Arc::new(JobRegistry::new(spec.group_rng(gi), *work, *total));
            registries.push(reg.clone());
            (0..parallel.resolve(nr_cpus))
                .map(|_| Task::JobSlot(reg.clone()))
                .collect()
        }
        Kind::PingPong { rounds, work_ns } => {
            let mut tasks = Vec::with_capacity(2 * n);
            for _ in 0..n {
                let (a_rx, b_tx) = pipe()?;
                let (b_rx, a_tx) = pipe()?;
                tasks.push(Task::Ping {
                    tx: a_tx,
                    rx: a_rx,
                    rounds: *rounds,
                    work_ns: *work_ns,
                });
                tasks.push(Task::Pong {
                    tx: b_tx,
                    rx: b_rx,
                    work_ns: *work_ns,
                });
            }
            tasks
        }
    })
}

/// Thread names show in `top -H`; the kernel keeps 15 bytes.
fn thread_name(group: &str, i: usize) -> String {
    let suffix = format!("/{i}");
    let mut base: String = group.chars().filter(|c| c.is_ascii_graphic()).collect();
    base.truncate(15usize.saturating_sub(suffix.len()));
    base + &suffix
}

fn thread_main(ctx: ThreadCtx, task: Task) -> TaskResult {
    let setup = set_up_thread(&ctx.group);
    let ok = setup.is_ok();
    let _ = ctx.setup.send(setup);
    drop(ctx.setup);
    let Some((t0, end)) = ctx.shared.wait_gate() else {
        return TaskResult::NotRun;
    };
    if !ok {
        return TaskResult::NotRun;
    }
    let live = &ctx.shared.live[ctx.gi];
    match task {
        Task::Periodic { period_ns, work_ns } => run_periodic(t0, end, period_ns, work_ns, live),
        Task::Cpu => run_cpu(end),
        Task::JobSlot(reg) => run_job_slot(end, &reg, live),
        Task::Ping {
            tx,
            rx,
            rounds,
            work_ns,
        } => run_ping(end, tx, rx, rounds, work_ns, live),
        Task::Pong { tx, rx, work_ns } => run_pong(tx, rx, work_ns),
    }
}

fn set_up_thread(group: &Group) -> Result<(), ExecError> {
    if let Some(cpus) = &group.affinity {
        set_affinity(cpus).map_err(|cause| ExecError::Affinity {
            group: group.name.clone(),
            cpus: cpus.clone(),
            cause,
        })?;
    }
    if group.nice != 0 {
        set_nice(group.nice).map_err(|cause| ExecError::Nice {
            group: group.name.clone(),
            nice: group.nice,
            cause,
        })?;
    }
    Ok(())
}

// ---- The task bodies ----

fn run_periodic(t0: u64, end: u64, period_ns: u64, work_ns: u64, live: &Live) -> TaskResult {
    let cpu0 = thread_cpu_ns();
    let mut lateness = LatencyRecorder::new();
    let (mut frames, mut misses) = (0u64, 0u64);
    let mut start = t0;
    while start < end {
        sleep_until(start);
        let woke = mono_ns();
        if woke >= end {
            break;
        }
        lateness.record(woke - start.min(woke));
        frames += 1;
        burn_thread_cpu_ns(work_ns);
        let deadline = start + period_ns;
        if mono_ns() > deadline && deadline <= end {
            misses += 1;
        }
        start = deadline;
        live.frames.store(frames, Ordering::Relaxed);
        live.misses.store(misses, Ordering::Relaxed);
    }
    TaskResult::Periodic {
        cpu_ns: thread_cpu_ns() - cpu0,
        frames,
        misses,
        lateness,
    }
}

fn run_cpu(end: u64) -> TaskResult {
    let cpu0 = thread_cpu_ns();
    while mono_ns() < end {
        spin(2_000);
    }
    TaskResult::Cpu {
        cpu_ns: thread_cpu_ns() - cpu0,
    }
}

fn run_ping(
    end: u64,
    mut tx: File,
    mut rx: File,
    rounds: Option<u64>,
    work_ns: u64,
    live: &Live,
) -> TaskResult {
    let cpu0 = thread_cpu_ns();
    let mut latency = LatencyRecorder::new();
    let mut byte = [0u8; 1];
    let mut done = 0u64;
    while mono_ns() < end && !matches!(rounds, Some(r) if done >= r) {
        let sent = mono_ns();
        if tx.write_all(&byte).is_err() || rx.read_exact(&mut byte).is_err() {
            break;
        }
        latency.record(mono_ns() - sent);
        burn_thread_cpu_ns(work_ns);
        done += 1;
        live.round_trips.fetch_add(1, Ordering::Relaxed);
    }
    // Closing our sending end tells the partner to stop; drain until it has, so it
    // never writes into a closed pipe.
    drop(tx);
    while rx.read(&mut byte).is_ok_and(|n| n > 0) {}
    TaskResult::Ping {
        cpu_ns: thread_cpu_ns() - cpu0,
        latency,
    }
}

fn run_pong(mut tx: File, mut rx: File, work_ns: u64) -> TaskResult {
    let cpu0 = thread_cpu_ns();
    let mut byte = [0u8; 1];
    while rx.read_exact(&mut byte).is_ok() {
        burn_thread_cpu_ns(work_ns);
        if tx.write_all(&byte).is_err() {
            break;
        }
    }
    TaskResult::Pong {
        cpu_ns: thread_cpu_ns() - cpu0,
    }
}

// ---- Jobs ----

/// The state a `jobs` group's slot threads share: the size stream, the job count, and
/// the children in flight (so the end of the run can kill them).
struct JobRegistry {
    inner: Mutex<JobState>,
}

struct JobState {
    rng: Rng,
    work: WorkDist,
    total: Option<u64>,
    started: u64,
    stopped: bool,
    running: Vec<libc::pid_t>,
    error: Option<ExecError>,
}

impl JobRegistry {
    fn new(rng: Rng, work: WorkDist, total: Option<u64>) -> JobRegistry {
        JobRegistry {
            inner: Mutex::new(JobState {
                rng,
                work,
                total,
                started: 0,
                stopped: false,
                running: Vec::new(),
                error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The size of the next job, or `None` when no more jobs may start.
    fn next_job(&self) -> Option<u64> {
        let mut s = self.lock();
        if s.stopped || s.total.is_some_and(|t| s.started >= t) {
            return None;
        }
        s.started += 1;
        let work = s.work;
        Some(work.sample_work_ns(&mut s.rng))
    }

    /// Records a forked child; kills it at once if the run has already stopped.
    fn register(&self, pid: libc::pid_t) {
        let mut s = self.lock();
        if s.stopped {
            // SAFETY: pid is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        } else {
            s.running.push(pid);
        }
    }

    fn unregister(&self, pid: libc::pid_t) {
        self.lock().running.retain(|&p| p != pid);
    }

    /// No new jobs; kill the ones in flight (their slots reap them).
    fn stop(&self) {
        let mut s = self.lock();
        s.stopped = true;
        for &pid in &s.running {
            // SAFETY: a registered pid is our child and not yet reaped (a slot
            // unregisters it, under this lock, before reaping it), so it cannot have
            // been recycled for another process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    fn fail(&self, e: ExecError) {
        let mut s = self.lock();
        s.stopped = true;
        s.error.get_or_insert(e);
    }

    fn take_error(&self) -> Option<ExecError> {
        self.lock().error.take()
    }
}

fn run_job_slot(end: u64, reg: &JobRegistry, live: &Live) -> TaskResult {
    let mut job_cpu_ns = Vec::new();
    let mut completion = LatencyRecorder::new();
    while mono_ns() < end {
        let Some(work_ns) = reg.next_job() else { break };
        let started = mono_ns();
        // SAFETY: the child runs only `child_burn`, which calls async-signal-safe
        // functions (clock_gettime, _exit) and touches no lock or allocator state
        // inherited from the other threads.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_burn(work_ns);
        }
        if pid < 0 {
            reg.fail(ExecError::Resource {
                what: "a job process",
                cause: io::Error::last_os_error(),
            });
            break;
        }
        reg.register(pid);
        // Wait for the exit without reaping (WNOWAIT): while the child is a zombie its
        // pid stays ours, so a kill() from `stop` cannot hit another process.
        let waited = loop {
            // SAFETY: info is a valid out-pointer; pid is our child.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break r;
            }
        };
        let finished = mono_ns();
        reg.unregister(pid);
        let mut status = 0;
        // SAFETY: plain struct of integers, filled by wait4.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = loop {
            // SAFETY: pid is our child; status and usage are valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break r;
            }
        };
        if waited != 0 || r < 0 {
            reg.fail(ExecError::Resource {
                what: "a job process (waiting for it failed)",
                cause: io::Error::last_os_error(),
            });
            break;
        }
        job_cpu_ns.push(timeval_ns(usage.ru_utime) + timeval_ns(usage.ru_stime));
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            completion.record(finished - started);
            live.jobs.fetch_add(1, Ordering::Relaxed);
        }
    }
    TaskResult::Jobs {
        job_cpu_ns,
        completion,
    }
}

/// The body of a job process. Async-signal-safe only: see `run_job_slot`.
fn child_burn(work_ns: u64) -> ! {
    let start = thread_cpu_ns();
    while thread_cpu_ns().saturating_sub(start) < work_ns {
        spin(200);
    }
    // SAFETY: _exit ends the child without running the parent's atexit handlers or
    // flushing its stdio buffers (which belong to the parent).
    unsafe { libc::_exit(0) }
}

// ---- The report ----

fn group_report(
    g: &Group,
    results: Vec<TaskResult>,
    nr_cpus: u32,
    duration_ns: u64,
) -> GroupReport {
    let mut r = GroupReport::new(&g.name, g.kind.name(), g.nr_tasks(nr_cpus), g.nice);
    let mut lat = LatencyRecorder::new();
    let (mut frames, mut misses) = (0, 0);
    let mut started_jobs = 0;
    for res in results {
        match res {
            TaskResult::Periodic {
                cpu_ns,
                frames: f,
                misses: m,
                lateness,
            } => {
                r.task_cpu_ns.push(cpu_ns);
                frames += f;
                misses += m;
                lat.merge(&lateness);
            }
            TaskResult::Cpu { cpu_ns } | TaskResult::Pong { cpu_ns } => r.task_cpu_ns.push(cpu_ns),
            TaskResult::Ping { cpu_ns, latency } => {
                r.task_cpu_ns.push(cpu_ns);
                lat.merge(&latency);
            }
            TaskResult::Jobs {
                job_cpu_ns,
                completion,
            } => {
                started_jobs += job_cpu_ns.len() as u64;
                r.task_cpu_ns.extend(job_cpu_ns);
                lat.merge(&completion);
            }
            TaskResult::NotRun => {}
        }
    }
    match &g.kind {
        Kind::Periodic { .. } => {
            r.periodic = Some(PeriodicStats::new(frames, misses, lat.summary()))
        }
        Kind::Jobs { .. } => {
            r.jobs = Some(JobStats::new(
                started_jobs,
                lat.count(),
                lat.summary(),
                duration_ns,
            ))
        }
        Kind::PingPong { .. } => {
            r.pingpong = Some(PingPongStats::new(lat.count(), lat.summary(), duration_ns))
        }
        Kind::Cpu => {}
    }
    r
}

// ---- Progress ----

fn watch_progress(spec: &Spec, shared: &Shared, t0: u64, end: u64, enabled: bool) {
    let tty = enabled && io::stderr().is_terminal();
    // On a terminal, a line rewritten in place; elsewhere (a log), a line every 5 s.
    let every_ns: u64 = if tty { 500_000_000 } else { 5_000_000_000 };
    wait_reporting(t0, end, every_ns, enabled, || {
        let line = progress_line(spec, shared, mono_ns() - t0, end - t0);
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    });
    if tty {
        eprint!("\r\x1b[K");
    }
}

/// Sleeps until `end`; with `enabled`, wakes every `every_ns` from `t0` to `report`.
/// Returns how many times it woke. Without `enabled` it sleeps once: this thread shares
/// the CPUs with the load it measures, so it must not wake more than it reports (it
/// once spun from the first missed report to the end of every `--quiet` run, a CPU hog
/// in every benchmark).
fn wait_reporting(
    t0: u64,
    end: u64,
    every_ns: u64,
    enabled: bool,
    mut report: impl FnMut(),
) -> u64 {
    let mut wakeups = 0;
    if !enabled {
        sleep_until(end);
        return 1;
    }
    let mut next = t0 + every_ns.max(1);
    while mono_ns() < end {
        sleep_until(next.min(end));
        wakeups += 1;
        if mono_ns() >= end {
            break;
        }
        report();
        next += every_ns.max(1);
    }
    wakeups
}

fn progress_line(spec: &Spec, shared: &Shared, elapsed: u64, total: u64) -> String {
    let mut parts = vec![format!(
        "[{:5.1}/{:.1} s]",
        elapsed as f64 / 1e9,
        total as f64 / 1e9
    )];
    for (g, live) in spec.groups.iter().zip(&shared.live) {
        match g.kind {
            Kind::Periodic { .. } => parts.push(format!(
                "{}: {} frames, {} missed",
                g.name,
                live.frames.load(Ordering::Relaxed),
                live.misses.load(Ordering::Relaxed)
            )),
            Kind::Jobs { .. } => parts.push(format!(
                "{}: {} jobs",
                g.name,
                live.jobs.load(Ordering::Relaxed)
            )),
            Kind::PingPong { .. } => parts.push(format!(
                "{}: {} round trips",
                g.name,
                live.round_trips.load(Ordering::Relaxed)
            )),
            Kind::Cpu => {}
        }
    }
    parts.join("  ")
}

// ---- Small wrappers over the system ----

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; the clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn sleep_until(t_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (t_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (t_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: ts is valid; no remaining-time pointer is needed for absolute sleeps.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            break;
        }
    }
}

/// Some arithmetic the optimiser cannot remove: the "work" of a burning task.
#[inline(never)]
fn spin(iters: u32) {
    let mut x = std::hint::black_box(0x1234_5678_u64);
    for _ in 0..iters {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    std::hint::black_box(x);
}

fn timeval_ns(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000
}

fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice alone.
    // SAFETY: plain syscall on our own thread.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_affinity(cpus: &[u32]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; CPU_ZERO/CPU_SET write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &c in cpus {
        if c as usize >= max {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: c is within the set's size (checked above).
        unsafe { libc::CPU_SET(c as usize, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; set is valid for its size.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pipe as (read end, write end).
fn pipe() -> Result<(File, File), ExecError> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid two-element array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r != 0 {
        return Err(ExecError::Resource {
            what: "a pipe",
            cause: io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 just returned these two fresh descriptors, owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_run_sleeps_through_without_waking() {
        let t0 = mono_ns();
        let end = t0 + 200_000_000;
        let cpu0 = thread_cpu_ns();
        let mut reports = 0;
        let wakeups = wait_reporting(t0, end, 10_000_000, false, || reports += 1);
        assert!(mono_ns() >= end, "returned before the end");
        assert_eq!((wakeups, reports), (1, 0));
        let cpu = thread_cpu_ns() - cpu0;
        assert!(cpu < 50_000_000, "used {cpu} ns of CPU to sleep 200 ms");
    }

    #[test]
    fn progress_reports_once_per_interval_until_the_end() {
        let t0 = mono_ns();
        let end = t0 + 200_000_000;
        let mut reports = 0;
        let wakeups = wait_reporting(t0, end, 20_000_000, true, || reports += 1);
        assert!(mono_ns() >= end, "returned before the end");
        // Ten intervals: nine reports and a last wake-up at the end (a late wake-up on
        // a loaded machine can only merge intervals, never add any).
        assert!((1..=9).contains(&reports), "{reports} reports");
        assert!(wakeups <= 10, "{wakeups} wake-ups");
    }
}
