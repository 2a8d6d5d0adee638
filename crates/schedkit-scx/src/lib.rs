//! The sched_ext backend of schedkit: loads the BPF dispatcher (`bpf/schedkit.bpf.c`),
//! attaches it as the machine's scheduler and implements [`Backend`] over its ring
//! buffers, so that any [`schedkit_core::Policy`] schedules every task of the machine.
//!
//! ```no_run
//! use schedkit_core::Runtime;
//! use schedkit_policies::fifo::Fifo;
//! use schedkit_scx::{ScxBackend, ScxOptions};
//! use std::sync::atomic::AtomicBool;
//!
//! let backend = ScxBackend::attach(&ScxOptions::default())?;
//! let mut rt = Runtime::new(Fifo::new(5_000_000), backend);
//! let exit = rt.run(&AtomicBool::new(false))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The ring buffer from the kernel is consumed into a buffer reserved up front, the
//! decisions are written straight into the user ring buffer, and the process locks its
//! memory ([`lock_memory`]): the scheduling loop takes no page fault once started,
//! which matters because a fault it waited on could need the very CPU it schedules.

use std::cell::RefCell;
use std::mem::{size_of, MaybeUninit};
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, OpenObject, RingBuffer, RingBufferBuilder, UserRingBuffer};
use schedkit_core::{
    Backend, BackendError, Counters, Cpu, CpuTarget, Decision, ExitInfo, QueuedTask, TaskEvent,
};

mod skel {
    #![allow(clippy::all, non_camel_case_types, non_snake_case, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/schedkit.skel.rs"));
}
mod sysfs;
pub mod trace;

use skel::{SchedkitSkel, SchedkitSkelBuilder};
pub use sysfs::{check_can_attach, nr_cpus_online, page_faults, sched_ext_state, SchedExtState};

/// Tasks events taken from the kernel in one step at most; the rest wait in the ring
/// for the next step, so the buffer never grows.
const EVENTS_PER_STEP: usize = 8192;

/// `SCX_OPS_SWITCH_PARTIAL`: only tasks that ask for SCHED_EXT are scheduled.
const SCX_OPS_SWITCH_PARTIAL: u64 = 8;

/// The ops flag that makes every insert into a CPU's local queue "immediate": the
/// kernel hands the task back through `ops.enqueue` when that CPU cannot run it at
/// once, or when a higher class (real-time, deadline) takes the CPU from it. From
/// kernel 7.1; its value is read from the running kernel's BTF, and an older kernel,
/// which would refuse an unknown flag, gets none.
const ALWAYS_ENQ_IMMED: &str = "SCX_OPS_ALWAYS_ENQ_IMMED";

/// The value of `name` in the running kernel's `enum scx_ops_flags`, if it has one.
fn kernel_ops_flag(name: &str) -> Option<u64> {
    use libbpf_rs::btf::types::{Enum, Enum64};
    use libbpf_rs::btf::Btf;

    let btf = Btf::from_vmlinux().ok()?;
    let want = Some(std::ffi::OsStr::new(name));
    // 64-bit in the kernels that have sched_ext; a 32-bit enum is read alike.
    let value = match btf.type_by_name::<Enum64>("scx_ops_flags") {
        Some(e) => e.iter().find(|m| m.name == want)?.value,
        None => {
            let e = btf.type_by_name::<Enum>("scx_ops_flags")?;
            let value = e.iter().find(|m| m.name == want)?.value;
            value.into()
        }
    };
    u64::try_from(value).ok()
}

/// How the dispatcher is loaded.
#[derive(Debug, Clone)]
pub struct ScxOptions {
    /// Schedule only tasks that opt in with `SCHED_EXT` (policy 7).
    pub partial: bool,
    /// Slice of tasks the dispatcher schedules by itself, ns.
    pub default_slice_ns: u64,
    /// Name shown in `/sys/kernel/sched_ext/root/ops` after `schedkit_`.
    pub policy_name: String,
    /// Watchdog timeout, ms: a task runnable for longer without running ejects us.
    pub timeout_ms: u32,
    /// Print libbpf's messages (verifier output on failure).
    pub verbose: bool,
    /// Ignore the terminal's stop signals (see [`ignore_stop_signals`]) on attach.
    pub ignore_stop_signals: bool,
}

impl Default for ScxOptions {
    fn default() -> Self {
        ScxOptions {
            partial: false,
            default_slice_ns: 5_000_000,
            policy_name: String::new(),
            // Emulated machines are slow; a real stall shows within this anyway.
            timeout_ms: 10_000,
            verbose: false,
            ignore_stop_signals: true,
        }
    }
}

/// What can go wrong loading and attaching. Each message is one sentence that says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScxError {
    #[error("schedkit run needs root to load a BPF scheduler: run it with sudo")]
    NotRoot,
    #[error(
        "this kernel ({0}) has no sched_ext (CONFIG_SCHED_CLASS_EXT): run schedkit in a VM with scripts/vm.sh, or boot a kernel >= 6.12 built with it"
    )]
    NoSchedExt(String),
    #[error(
        "this kernel ({kernel}) lacks {what}, which schedkit needs: use a kernel >= 6.19 (the VM of scripts/vm.sh has one)"
    )]
    MissingFeature { kernel: String, what: String },
    #[error("another sched_ext scheduler ({0}) is already attached: stop it first")]
    AlreadyAttached(String),
    #[error(
        "loading the BPF dispatcher failed ({0}); run with --verbose to see the verifier's log"
    )]
    Load(String),
    #[error("attaching the scheduler failed: {0}")]
    Attach(String),
    #[error("cannot lock the scheduler's memory (it must not page-fault while it schedules): {0}")]
    LockMemory(String),
}

/// The kernel-to-user record, as laid out in `bpf/intf.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawQueuedTask {
    kind: u32,
    pid: i32,
    prev_cpu: i32,
    nr_cpus_allowed: u32,
    flags: u64,
    weight: u64,
    vtime: u64,
    last_run_ns: u64,
    run_since_sleep_ns: u64,
    nvcsw: u64,
    sum_exec_runtime: u64,
    generation: u64,
    comm: [u8; 16],
}

/// The user-to-kernel record, as laid out in `bpf/intf.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawDecision {
    pid: i32,
    cpu: i32,
    slice_ns: u64,
    vtime: u64,
    generation: u64,
    flags: u64,
    preempt_margin_ns: u64,
    standing_budget_ns: u64,
    standing_ttl_ns: u64,
}

/// `SCHEDKIT_DEC_PREEMPT` in `bpf/intf.h`.
const DEC_PREEMPT: u64 = 1;

/// The idle-CPU query argument, as laid out in `bpf/intf.h`.
#[repr(C)]
struct RawIdleQuery {
    pid: i32,
    prev_cpu: i32,
}

/// `SCHEDKIT_EV_*` of `bpf/intf.h`.
const EV_QUEUED: u32 = 0;
const EV_EXITED: u32 = 1;

/// Decodes one record of the kernel-to-user ring. Whatever the bytes, it returns a
/// well-formed event or `None` (too short, unknown kind): the values a policy may
/// divide by or index with are brought into their documented ranges.
fn parse_event(data: &[u8]) -> Option<TaskEvent> {
    if data.len() < size_of::<RawQueuedTask>() {
        return None;
    }
    // SAFETY: the length is checked, the type is plain old data, the read is unaligned.
    let raw: RawQueuedTask = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    Some(match raw.kind {
        EV_EXITED => TaskEvent::Exited(raw.pid),
        EV_QUEUED => TaskEvent::Queued(QueuedTask {
            pid: raw.pid,
            comm: raw.comm,
            prev_cpu: Cpu(raw.prev_cpu.max(0) as u32),
            nr_cpus_allowed: raw.nr_cpus_allowed,
            flags: raw.flags,
            // The kernel's sched_ext weights are 1..=10000; a 0 would divide by zero.
            weight: raw.weight.clamp(1, 10_000) as u32,
            vtime: raw.vtime,
            last_run_ns: raw.last_run_ns,
            run_since_sleep_ns: raw.run_since_sleep_ns,
            nvcsw: raw.nvcsw,
            sum_exec_runtime_ns: raw.sum_exec_runtime,
            generation: raw.generation,
        }),
        _ => return None,
    })
}

/// The attached dispatcher. Dropping it detaches the scheduler; the kernel then gives
/// every task back to its default scheduler.
pub struct ScxBackend {
    // Fields drop in order: detach first, then the ring buffers, then the object.
    link: Option<Link>,
    queued: RingBuffer<'static>,
    user_ring: UserRingBuffer,
    skel: SchedkitSkel<'static>,
    /// Filled by the ring buffer callback, moved out in `drain`; capacity reserved.
    inbox: Rc<RefCell<Vec<TaskEvent>>>,
    consumed: u64,
    nr_cpus: u32,
    /// CPUs online at attach (a change restarts the scheduler).
    nr_online: u64,
    idle_query_fails: u64,
}

/// `SCHEDKIT_RING_KIB`, for tests only: the size of the ring that carries tasks to
/// user space, in KiB (a power of two, 4 to 4096; the default is 512). A tiny ring
/// fills under load, which is how the tests reach the dispatcher's congestion path.
fn ring_bytes_for_tests() -> Option<u32> {
    let kib: u32 = std::env::var("SCHEDKIT_RING_KIB").ok()?.parse().ok()?;
    (kib.is_power_of_two() && (4..=4096).contains(&kib)).then_some(kib * 1024)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer; the clocks used here always exist.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The CPU time the calling thread has used, ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

impl ScxBackend {
    /// Checks the machine, loads the dispatcher and attaches it.
    ///
    /// The calling thread becomes "the scheduler": the dispatcher runs it before any
    /// other task, so the scheduling loop must run on this same thread.
    pub fn attach(opts: &ScxOptions) -> Result<Self, ScxError> {
        check_can_attach()?;
        if opts.ignore_stop_signals {
            ignore_stop_signals().map_err(|e| ScxError::Attach(e.to_string()))?;
        }
        libbpf_rs::set_print(if opts.verbose {
            Some((libbpf_rs::PrintLevel::Debug, libbpf_print))
        } else {
            Some((libbpf_rs::PrintLevel::Warn, libbpf_print_quiet))
        });

        // The open object lives as long as the skeleton, which owns and closes it; only
        // its small slot is leaked, once per attach.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = SchedkitSkelBuilder::default()
            .open(storage)
            .map_err(|e| ScxError::Load(e.to_string()))?;
        if let Some(bytes) = ring_bytes_for_tests() {
            open.maps
                .queued
                .set_max_entries(bytes)
                .map_err(|e| ScxError::Load(e.to_string()))?;
        }

        let ops = open.struct_ops.schedkit_ops_mut();
        ops.hotplug_seq = sysfs::hotplug_seq();
        ops.timeout_ms = opts.timeout_ms;
        if opts.partial {
            ops.flags |= SCX_OPS_SWITCH_PARTIAL;
        }
        // Without it, a busy real-time task holds the task it preempted in its CPU's
        // local queue until the kernel's reserve for lower classes comes round, most
        // of a second (docs/traces.md, 2026-11-28).
        if let Some(flag) = kernel_ops_flag(ALWAYS_ENQ_IMMED) {
            ops.flags |= flag;
        }
        let name = format!("schedkit_{}", opts.policy_name);
        for (dst, src) in ops.name.iter_mut().zip(name.bytes().take(127)) {
            *dst = src as i8;
        }
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| ScxError::Load("the object has no .rodata".into()))?;
        // The thread attaching is the one that runs the loop (see `Runtime::run`).
        // SAFETY: gettid has no preconditions.
        let rodata_pid = unsafe { libc::gettid() };
        rodata.usersched_pid = rodata_pid;
        rodata.default_slice_ns = opts.default_slice_ns;

        let mut skel = open.load().map_err(|e| ScxError::Load(e.to_string()))?;
        // Loading parsed the kernel's BTF (several MiB, freed since): give that back
        // before locking, so that it is neither locked nor counted twice with the
        // pre-faulted heap. The ring buffers are mapped after locking, so populated.
        trim_heap();
        lock_memory().map_err(|e| ScxError::LockMemory(e.to_string()))?;
        // A tracer finds the switch by name and needs to know the scheduler's thread.
        trace::init_ctl(&skel.maps.sk_trace_ctl, rodata_pid)
            .map_err(|e| ScxError::Load(e.to_string()))?;

        let inbox = Rc::new(RefCell::new(Vec::with_capacity(EVENTS_PER_STEP)));
        let sink = Rc::clone(&inbox);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skel.maps.queued, move |data: &[u8]| {
                if let Some(ev) = parse_event(data) {
                    sink.borrow_mut().push(ev);
                }
                0
            })
            .map_err(|e| ScxError::Load(e.to_string()))?;
        let queued = builder.build().map_err(|e| ScxError::Load(e.to_string()))?;
        let user_ring = UserRingBuffer::new(&skel.maps.dispatched)
            .map_err(|e| ScxError::Load(e.to_string()))?;

        // Someone may have attached between the check and now.
        if let SchedExtState::Attached(other) = sched_ext_state() {
            return Err(ScxError::AlreadyAttached(other));
        }
        let link =
            skel.maps
                .schedkit_ops
                .attach_struct_ops()
                .map_err(|e| match sched_ext_state() {
                    SchedExtState::Attached(other) if !other.starts_with("schedkit") => {
                        ScxError::AlreadyAttached(other)
                    }
                    _ => ScxError::Attach(e.to_string()),
                })?;
        let _ = skel.attach(); // the syscall program has nothing to attach
        Ok(ScxBackend {
            link: Some(link),
            queued,
            user_ring,
            skel,
            inbox,
            consumed: 0,
            nr_cpus: sysfs::nr_cpus_online(),
            nr_online: schedkit_core::topology::nr_online_cpus() as u64,
            idle_query_fails: 0,
        })
    }

    fn bss(&self) -> &skel::types::bss {
        self.skel
            .maps
            .bss_data
            .as_deref()
            .expect("the skeleton always maps .bss")
    }

    /// Detaches the scheduler now (also done on drop).
    pub fn detach(&mut self) {
        self.link.take();
    }

    /// Exit events the kernel side could not report because the ring was full.
    pub fn exit_events_lost(&self) -> u64 {
        read(&self.bss().nr_exit_lost)
    }
}

fn read(v: &u64) -> u64 {
    // SAFETY: a valid reference; the value is written concurrently by BPF programs.
    unsafe { std::ptr::read_volatile(v) }
}

fn c_str(bytes: &[i8]) -> String {
    let b: Vec<u8> = bytes
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

impl Backend for ScxBackend {
    fn now_ns(&self) -> u64 {
        now_ns()
    }

    fn nr_cpus(&self) -> u32 {
        self.nr_cpus
    }

    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError> {
        let room = EVENTS_PER_STEP.saturating_sub(self.inbox.borrow().len());
        let n = self.queued.consume_raw_n(room);
        if n < 0 {
            return Err(BackendError::Fatal(format!(
                "reading the ring buffer failed: {}",
                std::io::Error::from_raw_os_error(-n)
            )));
        }
        let mut inbox = self.inbox.borrow_mut();
        let taken = inbox.len();
        self.consumed += taken as u64;
        out.extend(inbox.drain(..));
        drop(inbox);
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            // SAFETY: a valid reference; only user space writes this field.
            unsafe { std::ptr::write_volatile(&mut bss.nr_consumed, self.consumed) };
        }
        Ok(taken)
    }

    fn nr_queued(&self) -> u64 {
        // Tasks on their way to the policy, plus those dispatched to a queue and not
        // yet running: both wait for a CPU.
        read(&self.bss().nr_enqueued).saturating_sub(self.consumed)
            + read(&self.bss().nr_dsq_waiting)
    }

    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        if every_cpu_busy(read(&self.bss().nr_running), self.nr_online) {
            return None;
        }
        let mut q = RawIdleQuery {
            pid: task.pid,
            prev_cpu: task.prev_cpu.0 as i32,
        };
        // SAFETY: RawIdleQuery is plain old data; the slice covers exactly it.
        let ctx = unsafe {
            std::slice::from_raw_parts_mut((&mut q as *mut RawIdleQuery).cast::<u8>(), 8)
        };
        let input = libbpf_rs::ProgramInput {
            context_in: Some(ctx),
            ..Default::default()
        };
        match self.skel.progs.pick_idle_cpu.test_run(input) {
            Ok(out) if (out.return_value as i32) >= 0 => Some(Cpu(out.return_value)),
            Ok(_) => None,
            Err(_) => {
                self.idle_query_fails += 1;
                None
            }
        }
    }

    fn dispatch(&mut self, d: &Decision) -> Result<(), BackendError> {
        let raw = RawDecision {
            pid: d.pid,
            cpu: match d.target {
                CpuTarget::Any => -1,
                CpuTarget::On(c) => c.0 as i32,
            },
            slice_ns: d.slice_ns,
            vtime: d.vtime,
            generation: d.generation,
            flags: if d.preempt_margin_ns.is_some() {
                DEC_PREEMPT
            } else {
                0
            },
            preempt_margin_ns: d.preempt_margin_ns.unwrap_or(0),
            standing_budget_ns: d.standing.map_or(0, |s| s.cpu_budget_ns),
            standing_ttl_ns: d.standing.map_or(0, |s| s.ttl_ns),
        };
        let mut sample = self
            .user_ring
            .reserve(size_of::<RawDecision>())
            .map_err(|_| BackendError::Full)?;
        // SAFETY: RawDecision is plain old data of exactly the reserved size.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const RawDecision).cast::<u8>(),
                size_of::<RawDecision>(),
            )
        };
        sample.copy_from_slice(bytes);
        self.user_ring
            .submit(sample)
            .map_err(|e| BackendError::Fatal(format!("sending a decision failed: {e}")))
    }

    fn step_done(&mut self, nr_held: u64) {
        if let Some(bss) = self.skel.maps.bss_data.as_deref_mut() {
            // SAFETY: a valid reference; only user space writes this field.
            unsafe { std::ptr::write_volatile(&mut bss.nr_scheduled, nr_held) };
        }
    }

    fn wait(&mut self) -> Result<(), BackendError> {
        // Short when decisions wait for room in the ring, otherwise long enough to be
        // cheap and short enough to notice an ejection or Ctrl-C promptly.
        let held = read(&self.bss().nr_scheduled);
        let timeout = if held > 0 {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(100)
        };
        // Wait for the ring to become readable without consuming it: drain takes the
        // events, at most a buffer's worth at a time. EINTR is a signal (Ctrl-C).
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: a valid epoll fd owned by the ring buffer and room for one event.
        let n = unsafe {
            libc::epoll_wait(
                self.queued.epoll_fd(),
                &mut ev,
                1,
                timeout.as_millis() as i32,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(BackendError::Fatal(format!(
                    "waiting on the ring buffer failed: {err}"
                )));
            }
        }
        Ok(())
    }

    fn exit_info(&mut self) -> Option<ExitInfo> {
        let uei = &self.bss().uei;
        // SAFETY: a valid reference; `kind` is written last by the BPF side.
        let kind = unsafe { std::ptr::read_volatile(&uei.kind) };
        if kind == 0 {
            return None;
        }
        Some(ExitInfo {
            kind: kind as u32,
            exit_code: uei.exit_code,
            reason: c_str(&uei.reason),
            message: c_str(&uei.msg),
        })
    }

    fn scheduler_cpu_ns(&self) -> u64 {
        // The loop runs on this thread.
        thread_cpu_ns()
    }

    fn counters(&self) -> Counters {
        let b = self.bss();
        Counters {
            nr_running: read(&b.nr_running),
            nr_queued: self.nr_queued(),
            nr_held: read(&b.nr_scheduled),
            user_dispatches: read(&b.nr_user_dispatches),
            kernel_dispatches: read(&b.nr_kernel_dispatches),
            cancelled: read(&b.nr_cancel_dispatches),
            bounced: read(&b.nr_bounce_dispatches),
            congestion: read(&b.nr_sched_congested),
            // The runtime counts refused decisions.
            failed: 0,
            exit_lost: self.exit_events_lost(),
            exit_pid_reused: read(&b.nr_exit_pid_reused),
            rescued: read(&b.nr_rescued),
            idle_query_errors: self.idle_query_fails,
            preemptions: read(&b.nr_preemptions),
            standing_dispatches: read(&b.nr_standing_dispatches),
            preempted_kept: read(&b.nr_preempted_kept),
            handed_back: read(&b.nr_handed_back),
            // The runtime measures it.
            trip_cost_ns: 0,
            degraded_ns: degraded_ns(read(&b.degraded_ns), read(&b.degraded_since), now_ns()),
        }
    }
}

/// Whether the idle query can be skipped: the dispatcher counts the tasks on a CPU
/// (from `running` to `stopping`), and when there are as many as CPUs online, none is
/// idle, so asking the kernel (a `bpf()` call, the dearest part of a decision when the
/// machine is busy) would only say so. A CPU that is switching tasks, or runs a task of
/// another class, counts as free here, so the query is made then: the shortcut never
/// hides a CPU that is idle for longer than the count takes to catch up, and a decision
/// for any CPU wakes an idle one anyway.
fn every_cpu_busy(nr_running: u64, nr_online: u64) -> bool {
    nr_running >= nr_online
}

/// Time spent in degraded mode: the periods that ended, plus the current one if any
/// (`since` is 0 outside degraded mode; both clocks are CLOCK_MONOTONIC).
fn degraded_ns(ended_ns: u64, since: u64, now: u64) -> u64 {
    if since == 0 {
        ended_ns
    } else {
        ended_ns + now.saturating_sub(since)
    }
}

fn libbpf_print(_level: libbpf_rs::PrintLevel, msg: String) {
    eprint!("libbpf: {msg}");
}

fn libbpf_print_quiet(level: libbpf_rs::PrintLevel, msg: String) {
    // Warnings about missing optional features are noise for users; errors are not.
    if level == libbpf_rs::PrintLevel::Warn && msg.contains("libbpf: Error") {
        eprint!("{msg}");
    }
}

/// Makes the process ignore SIGTSTP, SIGTTIN and SIGTTOU. A scheduler stopped by its
/// terminal (Ctrl-Z, or reading from the terminal in the background) leaves every task
/// it holds waiting until the dispatcher takes over; nothing is gained by letting a
/// terminal stop it. SIGSTOP cannot be ignored: the dispatcher copes with that one.
pub fn ignore_stop_signals() -> std::io::Result<()> {
    for sig in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
        // SAFETY: installing SIG_IGN for a valid signal number has no preconditions.
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Locks all present and future memory of the process, and pre-faults heap and stack,
/// so the scheduling loop does not page-fault. [`ScxBackend::attach`] calls it once
/// the dispatcher is loaded, before the ring buffers are mapped (memory mapped later
/// is populated when it is mapped) and before the dispatcher takes over.
pub fn lock_memory() -> std::io::Result<()> {
    // One heap arena, never trimmed, grown in large steps, and every allocation below
    // the largest mmap threshold glibc accepts (32 MiB on 64 bits; mallopt refuses
    // more, and says so only by its return value) served from it: memory freed in the
    // loop is reused, never returned and faulted in again.
    let settings = [
        (libc::M_ARENA_MAX, 1, "M_ARENA_MAX"),
        (libc::M_TRIM_THRESHOLD, i32::MAX, "M_TRIM_THRESHOLD"),
        (
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD as i32,
            "M_MMAP_THRESHOLD",
        ),
        (libc::M_TOP_PAD, 1 << 20, "M_TOP_PAD"),
    ];
    for (param, value, name) in settings {
        // SAFETY: mallopt takes any parameter and value, and returns 0 if it refuses.
        if unsafe { libc::mallopt(param, value) } == 0 {
            return Err(std::io::Error::other(format!(
                "malloc refused {name} = {value}"
            )));
        }
    }
    // SAFETY: plain libc calls with constant arguments.
    unsafe {
        // khugepaged collapsing our pages into a huge page later costs a fault then.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        if libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // Pre-fault: grow the heap once (it stays, since trimming is off) and touch the
    // stack. Below the mmap threshold, so it comes from the heap and not from a
    // mapping that free() would give back.
    let heap: Vec<u8> = vec![1; PREFAULT_HEAP];
    std::hint::black_box(&heap);
    drop(heap);
    touch_stack();
    // The vDSO's data pages are mapped on first use and not populated by mlockall.
    std::hint::black_box(now_ns());
    std::hint::black_box(std::time::Instant::now());
    std::hint::black_box(std::time::SystemTime::now());
    Ok(())
}

/// Gives the heap's free memory back to the system (glibc's `malloc_trim`), whatever
/// the trim threshold that [`lock_memory`] set.
fn trim_heap() {
    // SAFETY: malloc_trim takes any padding and only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

/// glibc's largest mmap threshold on 64 bits: allocations below it come from the heap.
const MMAP_THRESHOLD: usize = 32 << 20;
/// Heap faulted in and locked before attach, beyond what is in use: room for the
/// runtime's buffers and for a policy's tables to grow in the loop without a fault.
/// Tables reserved before attach (rustland's, for 8192 tasks) are already in use.
/// Loading the dispatcher happens before locking, and the several MiB libbpf takes to
/// parse the kernel's BTF are given back first ([`trim_heap`]).
///
/// Measured in the VM with rustland (peak resident set, `VmHWM`): 24.9 MiB when the
/// heap was locked before loading (12 MiB of heap, most of it the BTF parse's
/// leftovers) and a 4 MiB pre-fault; 15.5 MiB with this order, 2 MiB, and rustland's
/// smaller task table, with no page fault in the loop while 9,000 tasks were alive
/// (`test_more_than_8192_tasks`) or under the stress mix.
const PREFAULT_HEAP: usize = 2 << 20;

#[inline(never)]
fn touch_stack() {
    let buf = [1u8; 512 << 10];
    std::hint::black_box(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefaulted_heap_is_below_the_mmap_threshold() {
        const { assert!(PREFAULT_HEAP < MMAP_THRESHOLD) };
        // SAFETY: mallopt takes any parameter and value; 0 means refused. This is
        // the value lock_memory sets, which glibc must accept.
        assert_eq!(
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32) },
            1
        );
    }

    #[test]
    fn the_idle_query_is_skipped_only_when_every_online_cpu_runs_a_task() {
        assert!(every_cpu_busy(2, 2));
        assert!(!every_cpu_busy(1, 2));
        assert!(!every_cpu_busy(0, 1));
        // A count that overshoots for a moment (a CPU between two tasks) still skips.
        assert!(every_cpu_busy(3, 2));
    }

    #[test]
    fn degraded_time_counts_the_current_period_until_it_ends() {
        assert_eq!(degraded_ns(7, 0, 1_000), 7);
        assert_eq!(degraded_ns(7, 400, 1_000), 607);
        // A start stamped after the reading (another CPU, racing) counts as nothing yet.
        assert_eq!(degraded_ns(7, 2_000, 1_000), 7);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_to_a_well_formed_event_or_none(
            kind in 0u32..3,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..200)
        ) {
            // Known kinds most of the time, so that the fields are decoded too.
            let mut data = kind.to_ne_bytes().to_vec();
            data.extend(rest);
            match parse_event(&data) {
                None => proptest::prop_assert!(
                    kind == 2 || data.len() < size_of::<RawQueuedTask>()
                ),
                Some(TaskEvent::Exited(_)) => {}
                Some(TaskEvent::Queued(t)) => {
                    proptest::prop_assert!((1..=10_000).contains(&t.weight));
                    proptest::prop_assert!(t.prev_cpu.0 <= i32::MAX as u32);
                }
            }
            if data.len() < size_of::<RawQueuedTask>() {
                proptest::prop_assert!(parse_event(&data).is_none());
            }
        }
    }

    #[test]
    fn records_match_the_c_layout() {
        // struct schedkit_queued_task: 4 x 4 bytes, 8 x 8 bytes, 16 bytes of comm.
        assert_eq!(size_of::<RawQueuedTask>(), 16 + 64 + 16);
        // struct schedkit_decision: 2 x 4 bytes, 7 x 8 bytes.
        assert_eq!(size_of::<RawDecision>(), 8 + 56);
        assert_eq!(size_of::<RawIdleQuery>(), 8);
    }

    #[test]
    fn a_queued_record_becomes_a_task_and_an_exit_record_an_exit() {
        let raw = RawQueuedTask {
            kind: 0,
            pid: 42,
            prev_cpu: 1,
            nr_cpus_allowed: 2,
            flags: 1,
            weight: 100,
            vtime: 7,
            last_run_ns: 8,
            run_since_sleep_ns: 9,
            nvcsw: 10,
            sum_exec_runtime: 11,
            generation: 12,
            comm: *b"stress-ng\0\0\0\0\0\0\0",
        };
        // SAFETY: plain old data viewed as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const RawQueuedTask).cast::<u8>(),
                size_of::<RawQueuedTask>(),
            )
        };
        let TaskEvent::Queued(t) = parse_event(bytes).unwrap() else {
            panic!("not a queued task")
        };
        assert_eq!((t.pid, t.prev_cpu, t.generation), (42, Cpu(1), 12));
        assert_eq!(t.comm_str(), "stress-ng");
        assert!(t.is_wakeup());
        let exit = RawQueuedTask { kind: 1, ..raw };
        // SAFETY: as above.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&exit as *const RawQueuedTask).cast::<u8>(),
                size_of::<RawQueuedTask>(),
            )
        };
        assert_eq!(parse_event(bytes), Some(TaskEvent::Exited(42)));
        assert_eq!(parse_event(&bytes[..10]), None);
    }
}
