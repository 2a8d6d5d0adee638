//! The recorder behind `schedkit trace` and `schedkit run --trace`: BPF programs on the
//! scheduler tracepoints (`bpf/trace.bpf.c`) and, when a schedkit scheduler is
//! attached, the dispatcher's own records (its `sk_trace_ctl` switch and `sk_trace_rb`
//! ring, found by name), turned into [`schedkit_trace::Event`]s in time order.
//!
//! Nothing wakes the recorder per record: the programs submit without a wake-up and
//! [`Recorder::poll`] drains the rings on the caller's timer. While recording, the
//! records are only copied to a spool file, as they come, a whole ring's worth in one
//! `write(2)` ([`spool`]): turning them into events
//! (names, the reorder window, the writers' encoding, the summary) costs several
//! microseconds per event, which a busy machine (a hundred thousand switches a second)
//! would pay while it is measured. [`Recorder::finish`] reads the spool back and sends
//! the events to the sink. Records from different CPUs and rings come out of order (a
//! drain copies one ring, then the other, each up to its newest record), so each
//! drain leaves a mark in the spool with the time it began; events wait until the
//! mark of the drain after the next one, by which time every record that began
//! before it has been copied, before they go to the sink in time order. Records lost
//! to a full ring are counted by the programs and reported as [`Event::Lost`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType, OpenObject};
use schedkit_trace::{Counter, Event, Pid, Sink, Target, TraceInfo, TraceSource};

use crate::sysfs::{enable_seq, sched_ext_state, SchedExtState};

mod spool;
use spool::SpoolRing;

mod tskel {
    #![allow(clippy::all, non_camel_case_types, non_snake_case, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace.skel.rs"));
}
use tskel::{TraceSkel, TraceSkelBuilder};

/// How often the waiting-tasks counter may change on the timeline, at most, ns.
const WAITING_SAMPLE_NS: u64 = 1_000_000;

/// Names of the dispatcher's maps (kernel map names keep 15 characters).
const CTL_MAP: &str = "sk_trace_ctl";
const RB_MAP: &str = "sk_trace_rb";

/// The record both rings carry (`struct sk_trace_rec` in `bpf/trace_intf.h`).
#[derive(Debug, Clone, Copy)]
struct Raw {
    ts: u64,
    kind: u32,
    cpu: u32,
    pid: i32,
    tgid: i32,
    pid2: i32,
    tgid2: i32,
    arg: i32,
    flags: u32,
    a: u64,
    b: u64,
    c: u64,
    comm: [u8; 16],
    comm2: [u8; 16],
}

const RAW_SIZE: usize = 8 + 4 * 8 + 8 * 3 + 32;

const K_SWITCH: u32 = 0;
const K_WAKEUP: u32 = 1;
const K_WAKEUP_NEW: u32 = 2;
const K_MIGRATE: u32 = 3;
const K_FORK: u32 = 4;
const K_EXIT: u32 = 5;
const K_ENQUEUED: u32 = 16;
const K_DECISION: u32 = 17;
const K_COUNTERS: u32 = 18;
/// Spool-only records: events lost (a = how many), the scheduler's thread (pid), and
/// a drain's mark (ts = when it began).
const K_LOST: u32 = 250;
const K_SCHEDULER: u32 = 251;
const K_DRAIN: u32 = 252;
const F_PREEMPT: u32 = 1;
const F_KERNEL: u32 = 2;

fn parse_raw(d: &[u8]) -> Option<Raw> {
    if d.len() < RAW_SIZE {
        return None;
    }
    let u64_at = |o: usize| u64::from_ne_bytes(d[o..o + 8].try_into().unwrap_or_default());
    let u32_at = |o: usize| u32::from_ne_bytes(d[o..o + 4].try_into().unwrap_or_default());
    let i32_at = |o: usize| u32_at(o) as i32;
    let mut comm = [0u8; 16];
    let mut comm2 = [0u8; 16];
    comm.copy_from_slice(&d[64..80]);
    comm2.copy_from_slice(&d[80..96]);
    Some(Raw {
        ts: u64_at(0),
        kind: u32_at(8),
        cpu: u32_at(12),
        pid: i32_at(16),
        tgid: i32_at(20),
        pid2: i32_at(24),
        tgid2: i32_at(28),
        arg: i32_at(32),
        flags: u32_at(36),
        a: u64_at(40),
        b: u64_at(48),
        c: u64_at(56),
        comm,
        comm2,
    })
}

/// What can go wrong starting a recording. Each message is one sentence.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("schedkit trace needs root to load its BPF programs: run it with sudo")]
    NotRoot,
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux), which tracing needs: boot a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    NoBtf,
    #[error(
        "this kernel lacks the scheduler tracepoint {0}: tracing needs sched_switch, sched_wakeup, sched_wakeup_new, sched_migrate_task, sched_process_fork and sched_process_exit"
    )]
    NoTracepoint(String),
    #[error("loading the tracer's BPF programs failed: {0}")]
    Load(String),
    #[error("cannot create the recording's spool file in {} (set TMPDIR to another directory): {reason}", .dir.display())]
    Spool { dir: PathBuf, reason: String },
}

/// An event waiting in the reorder window: by time, then arrival.
struct Pending {
    ts: u64,
    seq: u64,
    ev: Event,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

/// The dispatcher of an attached schedkit scheduler, while we record from it: its
/// switch, its ring (drained with the tracer's), what it had lost before, and, once
/// its records are timed (`--cost`), its count of timed records and their time then.
struct Tap {
    ctl: MapHandle,
    ctl_id: u32,
    ring: SpoolRing,
    lost_base: u64,
    lost_seen: u64,
    timed_base: Option<Timed>,
}

/// Bits of `sk_trace_ctl.on` (bpf/trace_intf.h).
const CTL_ON: u32 = 1;
const CTL_TIMED: u32 = 2;

/// Records a dispatcher wrote while they were timed, and their CPU time, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timed {
    pub records: u64,
    pub ns: u64,
}

impl Timed {
    fn since(self, base: Timed) -> Timed {
        Timed {
            records: self.records.saturating_sub(base.records),
            ns: self.ns.saturating_sub(base.ns),
        }
    }

    fn plus(self, o: Timed) -> Timed {
        Timed {
            records: self.records + o.records,
            ns: self.ns + o.ns,
        }
    }
}

/// A dispatcher's trace switch (`struct sk_trace_ctl`) as read from its map: the
/// value's bytes, as long as that dispatcher's build made them (fields are only added
/// at the end, so an older one has fewer, and gets back the ones it has).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ctl(Vec<u8>);

impl Ctl {
    fn from_bytes(v: Vec<u8>) -> Option<Ctl> {
        (v.len() >= 16).then_some(Ctl(v))
    }

    fn read(map: &MapHandle) -> Option<Ctl> {
        Ctl::from_bytes(map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??)
    }

    fn u64_at(&self, at: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(self.0.get(at..at + 8)?.try_into().ok()?))
    }

    #[cfg(test)]
    fn on(&self) -> u32 {
        u32::from_ne_bytes(self.0[0..4].try_into().unwrap())
    }

    /// The scheduler's loop thread.
    fn pid(&self) -> i32 {
        i32::from_ne_bytes(self.0[4..8].try_into().unwrap())
    }

    fn lost(&self) -> u64 {
        self.u64_at(8).unwrap_or(0)
    }

    /// None from a dispatcher built before records could be timed.
    fn timed(&self) -> Option<Timed> {
        Some(Timed {
            records: self.u64_at(16)?,
            ns: self.u64_at(24)?,
        })
    }

    fn with_on(mut self, on: u32) -> Ctl {
        self.0[0..4].copy_from_slice(&on.to_ne_bytes());
        self
    }

    /// Writes it back with `on` (the rest as read: the dispatcher's counters may lose
    /// what they gained in between, a few records at most).
    fn write_on(self, map: &MapHandle, on: u32) {
        let v = self.with_on(on);
        let _ = map.update(&0u32.to_ne_bytes(), &v.0, MapFlags::ANY);
    }
}

impl Tap {
    fn lost(&self) -> u64 {
        Ctl::read(&self.ctl).map_or(self.lost_seen, |c| c.lost())
    }

    /// What it wrote while timed (None if it is not, or cannot be).
    fn timed(&self) -> Option<Timed> {
        let base = self.timed_base?;
        Some(Ctl::read(&self.ctl)?.timed()?.since(base))
    }

    /// Turns its records on, timed or not; starts counting from now when timed.
    fn switch_on(&mut self, timed: bool) {
        let Some(c) = Ctl::read(&self.ctl) else {
            return;
        };
        let counted = c.timed();
        c.write_on(&self.ctl, if timed { CTL_ON | CTL_TIMED } else { CTL_ON });
        if timed && self.timed_base.is_none() {
            self.timed_base = counted;
        }
    }
}

/// Writes the loader's part of the dispatcher's trace switch: who the scheduler is.
pub(crate) fn init_ctl(map: &dyn MapCore, usersched_pid: i32) -> libbpf_rs::Result<()> {
    let mut v = vec![0u8; map.value_size() as usize];
    v[4..8].copy_from_slice(&usersched_pid.to_ne_bytes());
    map.update(&0u32.to_ne_bytes(), &v, MapFlags::ANY)
}

/// The newest switch and ring of a schedkit dispatcher, by id (the maps of a
/// scheduler that has gone are freed; an attached one's are the newest).
fn find_dispatcher_maps() -> Option<(u32, u32)> {
    let (mut ctl, mut rb) = (None::<u32>, None::<u32>);
    for info in libbpf_rs::query::MapInfoIter::default() {
        let name = info.name.to_string_lossy();
        if name == CTL_MAP && info.ty == MapType::Array {
            ctl = ctl.max(Some(info.id));
        } else if name == RB_MAP && info.ty == MapType::RingBuf {
            rb = rb.max(Some(info.id));
        }
    }
    Some((ctl?, rb?))
}

/// What the recorder knows of a thread.
struct Known {
    tgid: Pid,
    comm: [u8; 16],
    exited: bool,
}

fn comm_str(c: &[u8; 16]) -> String {
    let end = c.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&c[..end]).into_owned()
}

/// Turns records into events in time order: names threads, counts waiting tasks,
/// holds events until the drains' marks say that no earlier one can still come.
/// Pure, so it is tested without a kernel.
pub(crate) struct Converter {
    heap: BinaryHeap<Reverse<Pending>>,
    /// When the last drain read so far began.
    last_drain: Option<u64>,
    /// The most events that waited at once (two drains' worth, at most).
    most_waiting: usize,
    seq: u64,
    newest_ts: u64,
    last_out_ts: u64,
    known: HashMap<Pid, Known>,
    waiting: HashSet<Pid>,
    waiting_sent: Option<(u64, usize)>,
    scheduler_pid: Option<Pid>,
    /// Events that came after a later one was sent (sent with the time of the last
    /// event sent, so the sink still sees time go forward): records that took longer
    /// than two drains to commit, which should not happen.
    late: u64,
    sent: u64,
}

/// What [`Recorder::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// When the recording ended (every task still on a CPU ran until then).
    pub end_ns: u64,
    /// Events sent to the sink.
    pub events: u64,
    /// ... of which came after a later one was sent (sent with the time of the event
    /// before them).
    pub late: u64,
}

/// What the recording's BPF side ran since [`Recorder::measure_programs`]: its own
/// programs (the tracepoint handlers), by the kernel's BPF statistics, and the records
/// a schedkit dispatcher wrote for it, timed by the dispatcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramsCpu {
    /// Times the recording's programs ran.
    pub runs: u64,
    /// CPU time they took, ns.
    pub ns: u64,
    /// The dispatcher's records, when a schedkit scheduler was recorded and its build
    /// times them.
    pub dispatcher: Option<Timed>,
}

impl ProgramsCpu {
    fn since(self, base: ProgramsCpu) -> ProgramsCpu {
        ProgramsCpu {
            runs: self.runs.saturating_sub(base.runs),
            ns: self.ns.saturating_sub(base.ns),
            dispatcher: None,
        }
    }
}

/// The kernel's BPF run-time statistics, on for as long as this lives (the kernel
/// counts the holders, and turns them off when the last one goes, killed or not).
struct BpfStats {
    _on: std::os::fd::OwnedFd,
    base: ProgramsCpu,
}

/// A recording in progress. See the module documentation.
pub struct Recorder {
    skel: TraceSkel<'static>,
    ring: SpoolRing,
    /// The recorder's own records, framed, waiting for the next drain.
    inbox: Vec<u8>,
    spool: File,
    spooled: u64,
    scheduler_pid: Option<Pid>,
    want_tap: bool,
    tap: Option<Tap>,
    next_tap_check: u64,
    /// The kernel's count of attaches when the last look for a dispatcher settled:
    /// while it stays the same, no scheduler came since, and the maps (a dozen
    /// system calls each) are not listed again.
    tap_seq: Option<u64>,
    info: TraceInfo,
    conv: Converter,
    lost_seen: u64,
    /// Records lost by dispatchers we stopped tapping (re-attached since).
    tap_lost_before: u64,
    /// What dispatchers we stopped tapping wrote while timed.
    tap_timed_before: Timed,
    stats: Option<BpfStats>,
}

/// How often the recorder looks for a (new) schedkit dispatcher to tap, ns.
const TAP_CHECK_NS: u64 = 500_000_000;

/// Makes the calling thread a real-time one (SCHED_FIFO, the lowest priority; its
/// children go back to the normal class). The thread that drains the rings must not
/// wait behind the load it records, whatever scheduler is attached: sched_ext and
/// EEVDF both run below the real-time class. It sleeps between drains, so it takes
/// little from the others. False if the kernel refused (no CAP_SYS_NICE, no
/// real-time budget in this cgroup): the recording goes on in the normal class.
pub fn drain_at_realtime_priority() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: a valid sched_param; pid 0 is the calling thread.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) == 0
    }
}

/// The kernel's CLOCK_MONOTONIC, which bpf_ktime_get_ns reads.
pub fn monotonic_ns() -> u64 {
    crate::now_ns()
}

/// A record of the spool's own: `kind` at `ts` with `pid` and `a`.
fn meta_record(kind: u32, ts: u64, pid: i32, a: u64) -> [u8; RAW_SIZE] {
    let mut d = [0u8; RAW_SIZE];
    d[0..8].copy_from_slice(&ts.to_ne_bytes());
    d[8..12].copy_from_slice(&kind.to_ne_bytes());
    d[16..20].copy_from_slice(&pid.to_ne_bytes());
    d[40..48].copy_from_slice(&a.to_ne_bytes());
    d
}

impl Recorder {
    /// Checks the machine, loads and attaches the tracer. With `tap_dispatcher`, the
    /// decisions of a schedkit scheduler are recorded too, whenever one is attached
    /// (now, later, or again after a re-attach). `scheduler` names the scheduler in
    /// the trace; by default, the one attached now ("eevdf" if none). The records wait
    /// until [`Recorder::finish`] in an unnamed file in the directory `spool_dir`,
    /// which nothing else sees and which goes when the recorder does, even killed.
    pub fn start(
        tap_dispatcher: bool,
        scheduler: Option<&str>,
        spool_dir: &Path,
    ) -> Result<Recorder, TraceError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(TraceError::NotRoot);
        }
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(TraceError::NoBtf);
        }
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let open = TraceSkelBuilder::default()
            .open(storage)
            .map_err(|e| TraceError::Load(e.to_string()))?;
        let mut skel = open.load().map_err(|e| {
            let msg = e.to_string();
            for tp in [
                "sched_switch",
                "sched_wakeup_new",
                "sched_wakeup",
                "sched_migrate_task",
                "sched_process_fork",
                "sched_process_exit",
            ] {
                if msg.contains(tp) {
                    return TraceError::NoTracepoint(tp.into());
                }
            }
            TraceError::Load(msg)
        })?;
        skel.attach().map_err(|e| TraceError::Load(e.to_string()))?;

        let scheduler = scheduler
            .map(str::to_string)
            .unwrap_or_else(|| match sched_ext_state() {
                SchedExtState::Attached(name) => name
                    .strip_prefix("schedkit_")
                    .map(str::to_string)
                    .unwrap_or(name),
                _ => "eevdf".to_string(),
            });
        let ring =
            SpoolRing::new(&skel.maps.events).map_err(|e| TraceError::Load(e.to_string()))?;
        let spool_file = tempfile::tempfile_in(spool_dir).map_err(|e| TraceError::Spool {
            dir: spool_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let start_ns = monotonic_ns();
        let mut rec = Recorder {
            skel,
            ring,
            inbox: Vec::new(),
            spool: spool_file,
            spooled: 0,
            scheduler_pid: None,
            want_tap: tap_dispatcher,
            tap: None,
            next_tap_check: 0,
            tap_seq: None,
            info: TraceInfo {
                source: TraceSource::Kernel,
                nr_cpus: schedkit_core::topology::nr_possible_cpus(),
                scheduler,
                start_ns,
            },
            conv: Converter::new(start_ns, None),
            lost_seen: 0,
            tap_lost_before: 0,
            tap_timed_before: Timed::default(),
            stats: None,
        };
        rec.check_tap(start_ns);
        Ok(rec)
    }

    /// Taps the attached schedkit dispatcher, if there is one we do not tap yet.
    fn check_tap(&mut self, now: u64) {
        if !self.want_tap || now < self.next_tap_check {
            return;
        }
        self.next_tap_check = now + TAP_CHECK_NS;
        let seq = enable_seq();
        if seq.is_some() && seq == self.tap_seq {
            return;
        }
        if self.try_tap(now) {
            self.tap_seq = seq;
        }
    }

    /// Looks for the attached schedkit dispatcher and taps it if it is new. False if
    /// one is attached but could not be tapped yet (looked for again next time).
    fn try_tap(&mut self, now: u64) -> bool {
        match sched_ext_state() {
            SchedExtState::Attached(n) if n.starts_with("schedkit_") => {}
            // Still attaching, its name not shown yet.
            SchedExtState::Attached(n) if n.starts_with("unnamed") => return false,
            _ => return true,
        }
        let Some((ctl_id, rb_id)) = find_dispatcher_maps() else {
            return false;
        };
        if self.tap.as_ref().is_some_and(|t| t.ctl_id == ctl_id) {
            return true;
        }
        let (Ok(ctl), Ok(rb)) = (
            MapHandle::from_map_id(ctl_id),
            MapHandle::from_map_id(rb_id),
        ) else {
            return false;
        };
        let Some(c) = Ctl::read(&ctl) else {
            return false;
        };
        let (pid, lost) = (c.pid(), c.lost());
        // The ring keeps the map alive; the handle may go.
        let Ok(ring) = SpoolRing::new(&rb) else {
            return false;
        };
        if let Some(mut old) = self.tap.take() {
            // Its records are not lost if the spool can take them; if it cannot, the
            // next drain says so.
            if let Ok((records, _)) = old.ring.drain_into(&mut self.spool) {
                self.spooled += records;
            }
            self.tap_lost_before += old.lost().saturating_sub(old.lost_base);
            if let Some(t) = old.timed() {
                self.tap_timed_before = self.tap_timed_before.plus(t);
            }
        }
        let mut tap = Tap {
            ctl,
            ctl_id,
            ring,
            lost_base: lost,
            lost_seen: lost,
            timed_base: None,
        };
        tap.switch_on(self.stats.is_some());
        self.tap = Some(tap);
        if pid > 0 {
            self.scheduler_pid = Some(pid as Pid);
            let rec = meta_record(K_SCHEDULER, now, pid, 0);
            let _ = spool::write_record(&mut self.inbox, &rec);
        }
        true
    }

    /// What is known at the start, for [`Sink::begin`].
    pub fn info(&self) -> &TraceInfo {
        &self.info
    }

    /// Whether the policy's decisions are recorded (a schedkit dispatcher is tapped).
    pub fn taps_dispatcher(&self) -> bool {
        self.tap.is_some()
    }

    /// The scheduler's loop thread, when a schedkit scheduler is tapped.
    pub fn scheduler_pid(&self) -> Option<Pid> {
        self.scheduler_pid
    }

    /// Drains the rings into the spool. Returns the largest share of a ring that the
    /// records drained took (0 to 1), by which the caller may time the next drain.
    pub fn poll(&mut self) -> io::Result<f64> {
        let fill = self.drain()?;
        self.check_tap(monotonic_ns());
        Ok(fill)
    }

    /// Stops the dispatcher's records, drains the rings, then reads the spool back and
    /// sends its events to the sink, in time order, and finishes it.
    pub fn finish(mut self, sink: &mut dyn Sink) -> io::Result<Finished> {
        if let Some(t) = &self.tap {
            if let Some(c) = Ctl::read(&t.ctl) {
                c.write_on(&t.ctl, 0);
            }
        }
        let end = monotonic_ns();
        self.drain()?;
        self.spool.seek(SeekFrom::Start(0))?;
        replay(
            &mut self.conv,
            BufReader::with_capacity(1 << 20, &self.spool),
            sink,
        )?;
        let end = end.max(self.conv.last_out_ts);
        sink.finish(end)?;
        Ok(Finished {
            end_ns: end,
            events: self.conv.sent,
            late: self.conv.late,
        })
    }

    /// Starts measuring the CPU time of the recording's own BPF programs, by turning
    /// on the kernel's run-time statistics of BPF programs (every program's, while
    /// the recorder lives: two clock reads a run, a cost of their own). Read it with
    /// [`Recorder::programs_cpu`].
    pub fn measure_programs(&mut self) -> io::Result<()> {
        // SAFETY: no pointers; the kernel returns a new file descriptor or -1.
        let fd = unsafe {
            libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a file descriptor the kernel just gave us, owned by nothing else.
        let on = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let base = self.programs_total()?;
        self.stats = Some(BpfStats { _on: on, base });
        if let Some(t) = self.tap.as_mut() {
            t.switch_on(true);
        }
        Ok(())
    }

    /// What the recording's BPF side ran since [`Recorder::measure_programs`] (`None`
    /// if it was not called or the kernel does not say).
    pub fn programs_cpu(&self) -> Option<ProgramsCpu> {
        let base = self.stats.as_ref()?.base;
        let mut cpu = self.programs_total().ok()?.since(base);
        let now = self.tap.as_ref().and_then(Tap::timed);
        let before = self.tap_timed_before;
        cpu.dispatcher = match now {
            Some(t) => Some(t.plus(before)),
            None if before != Timed::default() => Some(before),
            None => None,
        };
        Some(cpu)
    }

    fn programs_total(&self) -> io::Result<ProgramsCpu> {
        use std::os::fd::{AsFd, AsRawFd};
        let mut total = ProgramsCpu::default();
        for prog in self.skel.object().progs() {
            let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
            let mut len = size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
            // SAFETY: `info` is a bpf_prog_info of `len` bytes, which the kernel fills.
            let rc = unsafe {
                libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
                    prog.as_fd().as_raw_fd(),
                    &mut info,
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(-rc));
            }
            total.runs += info.run_cnt;
            total.ns += info.run_time_ns;
        }
        Ok(total)
    }

    /// Records spooled so far.
    pub fn spooled(&self) -> u64 {
        self.spooled
    }

    /// Records lost to full rings so far, both rings.
    pub fn lost(&self) -> u64 {
        self.tracer_lost() + self.tap_lost_before + self.tap_lost_now()
    }

    fn tap_lost_now(&self) -> u64 {
        self.tap
            .as_ref()
            .map_or(0, |t| t.lost().saturating_sub(t.lost_base))
    }

    fn tracer_lost(&self) -> u64 {
        self.skel.maps.bss_data.as_deref().map_or(0, |b| b.nr_lost)
    }

    fn drain(&mut self) -> io::Result<f64> {
        // Every record that began before now is copied by the end of the next drain
        // (a BPF program commits within microseconds; drains are milliseconds apart).
        let mark = meta_record(K_DRAIN, monotonic_ns(), 0, 0);
        let (records, mut fill) = self.ring.drain_into(&mut self.spool)?;
        self.spooled += records;
        if let Some(t) = self.tap.as_mut() {
            let (records, tap_fill) = t.ring.drain_into(&mut self.spool)?;
            self.spooled += records;
            fill = fill.max(tap_fill);
        }
        if !self.inbox.is_empty() {
            self.spool.write_all(&self.inbox)?;
            self.inbox.clear();
        }
        let tracer = self.tracer_lost();
        let mut lost = tracer.saturating_sub(self.lost_seen);
        self.lost_seen = tracer;
        if let Some(t) = self.tap.as_mut() {
            let now = t.lost();
            lost += now.saturating_sub(t.lost_seen);
            t.lost_seen = now;
        }
        if lost > 0 {
            let rec = meta_record(K_LOST, monotonic_ns(), 0, lost);
            spool::write_record(&mut self.spool, &rec)?;
        }
        spool::write_record(&mut self.spool, &mark)?;
        Ok(fill)
    }
}

/// Sends the events of a spool, read from `r`, to `sink` in time order: at each
/// drain's mark, those that began before the drain before it.
fn replay(conv: &mut Converter, mut r: impl Read, sink: &mut dyn Sink) -> io::Result<()> {
    let mut buf = Vec::with_capacity(RAW_SIZE);
    while let Some(kept) = spool::read_record(&mut r, &mut buf)? {
        match parse_raw(&buf).filter(|_| kept) {
            Some(raw) if raw.kind == K_DRAIN => conv.drained(raw.ts, sink)?,
            Some(raw) => conv.convert(&raw),
            None => {}
        }
    }
    conv.flush_until(u64::MAX, sink)
}

impl Converter {
    pub(crate) fn new(start_ns: u64, scheduler_pid: Option<Pid>) -> Converter {
        Converter {
            heap: BinaryHeap::new(),
            last_drain: None,
            most_waiting: 0,
            seq: 0,
            newest_ts: start_ns,
            last_out_ts: 0,
            known: HashMap::new(),
            waiting: HashSet::new(),
            waiting_sent: None,
            scheduler_pid,
            late: 0,
            sent: 0,
        }
    }

    /// Marks `pid` as the scheduler's thread from now on (named again if known).
    fn set_scheduler(&mut self, ts: u64, pid: Pid) {
        self.scheduler_pid = Some(pid);
        if let Some(k) = self.known.remove(&pid) {
            self.name(ts, pid as i32, k.tgid as i32, &k.comm);
        }
    }

    fn lost(&mut self, count: u64) {
        if count > 0 {
            let ts = self.newest_ts;
            self.push(ts, Event::Lost { ts_ns: ts, count });
        }
    }

    fn push(&mut self, ts: u64, ev: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            ts,
            seq: self.seq,
            ev,
        }));
        self.most_waiting = self.most_waiting.max(self.heap.len());
    }

    /// Names `pid` before its first event, and again when its name changed.
    fn name(&mut self, ts: u64, pid: i32, tgid: i32, comm: &[u8; 16]) {
        if pid <= 0 {
            return;
        }
        let pid = pid as Pid;
        let fresh = match self.known.get(&pid) {
            Some(k) => k.comm != *comm,
            None => true,
        };
        if fresh {
            let tgid = if tgid > 0 { tgid as Pid } else { pid };
            self.known.insert(
                pid,
                Known {
                    tgid,
                    comm: *comm,
                    exited: false,
                },
            );
            let scheduler = self.scheduler_pid == Some(pid);
            self.push(
                ts,
                Event::Thread {
                    ts_ns: ts,
                    pid,
                    tgid,
                    comm: comm_str(comm),
                    scheduler,
                },
            );
        }
    }

    fn convert(&mut self, r: &Raw) {
        let ts = r.ts;
        if ts > self.newest_ts {
            self.newest_ts = ts;
        }
        let pid = r.pid.max(0) as Pid;
        match r.kind {
            K_SWITCH => {
                self.name(ts, r.pid, r.tgid, &r.comm);
                self.name(ts, r.pid2, r.tgid2, &r.comm2);
                let next = r.pid2.max(0) as Pid;
                self.push(
                    ts,
                    Event::Switch {
                        ts_ns: ts,
                        cpu: r.cpu,
                        prev: pid,
                        prev_runnable: r.arg != 0,
                        next,
                    },
                );
                if pid != 0 {
                    if r.arg != 0 {
                        self.waiting.insert(pid);
                    } else {
                        self.waiting.remove(&pid);
                    }
                    if self.known.get(&pid).is_some_and(|k| k.exited) {
                        self.known.remove(&pid);
                        self.waiting.remove(&pid);
                    }
                }
                self.waiting.remove(&next);
                self.sample_waiting(ts);
            }
            K_WAKEUP | K_WAKEUP_NEW => {
                self.name(ts, r.pid, r.tgid, &r.comm);
                let waker = (r.pid2 > 0).then_some(r.pid2 as Pid);
                if let Some(w) = waker {
                    self.name(ts, r.pid2, r.tgid2, &r.comm2);
                    let _ = w;
                }
                self.push(
                    ts,
                    Event::Wakeup {
                        ts_ns: ts,
                        pid,
                        cpu: r.cpu,
                        waker,
                        new_task: r.kind == K_WAKEUP_NEW,
                    },
                );
                if pid != 0 {
                    self.waiting.insert(pid);
                    self.sample_waiting(ts);
                }
            }
            K_MIGRATE => self.push(
                ts,
                Event::Migrate {
                    ts_ns: ts,
                    pid,
                    from: r.arg.max(0) as u32,
                    to: r.cpu,
                },
            ),
            K_FORK => {
                self.name(ts, r.pid2, r.tgid2, &r.comm2);
                self.name(ts, r.pid, r.tgid, &r.comm);
            }
            K_LOST => self.lost(r.a),
            K_SCHEDULER => self.set_scheduler(ts, pid),
            K_EXIT => {
                self.push(ts, Event::Exit { ts_ns: ts, pid });
                if let Some(k) = self.known.get_mut(&pid) {
                    k.exited = true;
                }
                self.waiting.remove(&pid);
            }
            K_ENQUEUED => {
                self.name(ts, r.pid, r.tgid, &r.comm);
                self.push(
                    ts,
                    Event::Enqueued {
                        ts_ns: ts,
                        pid,
                        cpu: r.arg.max(0) as u32,
                    },
                );
            }
            K_DECISION => {
                self.name(ts, r.pid, r.tgid, &r.comm);
                self.push(
                    ts,
                    Event::Decision {
                        ts_ns: ts,
                        pid,
                        target: if r.arg < 0 {
                            Target::Any
                        } else {
                            Target::Cpu(r.arg as u32)
                        },
                        slice_ns: r.a,
                        vtime: r.b,
                        preempt: r.flags & F_PREEMPT != 0,
                        kernel: r.flags & F_KERNEL != 0,
                    },
                );
            }
            K_COUNTERS => {
                for (counter, value) in [
                    (Counter::Queued, r.a),
                    (Counter::Held, r.b),
                    (Counter::Congested, r.c),
                ] {
                    self.push(
                        ts,
                        Event::Counter {
                            ts_ns: ts,
                            counter,
                            value,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// The number of runnable tasks not on a CPU, at most once a millisecond.
    fn sample_waiting(&mut self, ts: u64) {
        let n = self.waiting.len();
        match self.waiting_sent {
            Some((_, last)) if last == n => return,
            Some((at, _)) if ts < at + WAITING_SAMPLE_NS => return,
            _ => {}
        }
        self.waiting_sent = Some((ts, n));
        self.push(
            ts,
            Event::Counter {
                ts_ns: ts,
                counter: Counter::Waiting,
                value: n as u64,
            },
        );
    }

    /// A drain that began at `ts` ended: every record that began before the drain
    /// before it has been read, so the events up to then go to the sink.
    fn drained(&mut self, ts: u64, sink: &mut dyn Sink) -> io::Result<()> {
        match self.last_drain.replace(ts) {
            Some(before) => self.flush_until(before, sink),
            None => Ok(()),
        }
    }

    fn flush_until(&mut self, horizon: u64, sink: &mut dyn Sink) -> io::Result<()> {
        while let Some(Reverse(p)) = self.heap.peek() {
            if p.ts > horizon {
                break;
            }
            let Some(Reverse(mut p)) = self.heap.pop() else {
                break;
            };
            if p.ts < self.last_out_ts {
                self.late += 1;
                p.ev.set_ts_ns(self.last_out_ts);
            } else {
                self.last_out_ts = p.ts;
            }
            self.sent += 1;
            sink.event(&p.ev)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl_bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn the_switch_is_read_and_written_at_the_length_the_dispatcher_made_it() {
        // on = 1 and the scheduler's pid 4242 share the first word.
        let first = 1u64 | (4242u64 << 32);
        // A dispatcher built before records were timed: 16 bytes.
        let old = Ctl::from_bytes(ctl_bytes(&[first, 7])).unwrap();
        assert_eq!((old.on(), old.pid(), old.lost()), (1, 4242, 7));
        assert_eq!(old.timed(), None);
        let off = old.with_on(0);
        assert_eq!(off.0, ctl_bytes(&[4242u64 << 32, 7]));
        // Today's: 32 bytes, with the timed records and their time.
        let new = Ctl::from_bytes(ctl_bytes(&[first, 7, 1000, 3_000_000])).unwrap();
        assert_eq!(
            new.timed(),
            Some(Timed {
                records: 1000,
                ns: 3_000_000
            })
        );
        let timed = new.clone().with_on(CTL_ON | CTL_TIMED);
        assert_eq!(timed.on(), 3);
        assert_eq!(timed.0[4..], ctl_bytes(&[first, 7, 1000, 3_000_000])[4..]);
        // Too short to be a switch at all.
        assert_eq!(Ctl::from_bytes(vec![0; 8]), None);
        let t = Timed {
            records: 1500,
            ns: 5_000_000,
        };
        assert_eq!(
            t.since(new.timed().unwrap()).plus(t),
            Timed {
                records: 2000,
                ns: 7_000_000
            }
        );
    }

    fn raw_bytes(kind: u32, ts: u64, pid: i32, pid2: i32, arg: i32) -> Vec<u8> {
        let mut d = vec![0u8; RAW_SIZE];
        d[0..8].copy_from_slice(&ts.to_ne_bytes());
        d[8..12].copy_from_slice(&kind.to_ne_bytes());
        d[12..16].copy_from_slice(&1u32.to_ne_bytes());
        d[16..20].copy_from_slice(&pid.to_ne_bytes());
        d[20..24].copy_from_slice(&pid.to_ne_bytes());
        d[24..28].copy_from_slice(&pid2.to_ne_bytes());
        d[28..32].copy_from_slice(&pid2.to_ne_bytes());
        d[32..36].copy_from_slice(&arg.to_ne_bytes());
        d[64..68].copy_from_slice(b"game");
        d[80..84].copy_from_slice(b"make");
        d
    }

    #[test]
    fn records_decode_field_by_field() {
        let r = parse_raw(&raw_bytes(K_SWITCH, 42, 7, 9, 1)).expect("a whole record");
        assert_eq!(
            (r.ts, r.kind, r.cpu, r.pid, r.pid2, r.arg),
            (42, K_SWITCH, 1, 7, 9, 1)
        );
        assert_eq!(comm_str(&r.comm), "game");
        assert_eq!(comm_str(&r.comm2), "make");
        assert!(parse_raw(&raw_bytes(K_SWITCH, 1, 1, 1, 1)[..RAW_SIZE - 1]).is_none());
    }
}

#[cfg(test)]
mod converter_tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<Event>);

    impl Sink for Collect {
        fn begin(&mut self, _: &TraceInfo) -> io::Result<()> {
            Ok(())
        }
        fn event(&mut self, ev: &Event) -> io::Result<()> {
            self.0.push(ev.clone());
            Ok(())
        }
        fn finish(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
    }

    fn raw(kind: u32, ts: u64, cpu: u32, pid: i32, pid2: i32, arg: i32) -> Raw {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"task");
        Raw {
            ts,
            kind,
            cpu,
            pid,
            tgid: pid,
            pid2,
            tgid2: pid2,
            arg,
            flags: 0,
            a: 0,
            b: 0,
            c: 0,
            comm,
            comm2: comm,
        }
    }

    #[test]
    fn events_leave_in_time_order_and_threads_are_named_first() {
        let mut c = Converter::new(0, Some(9));
        let mut out = Collect::default();
        // Read out of order, as two rings or two CPUs deliver them.
        c.convert(&raw(K_SWITCH, 3_000, 0, 5, 9, 0));
        c.convert(&raw(K_WAKEUP, 1_000, 0, 9, 5, 0));
        c.convert(&raw(K_SWITCH, 2_000, 1, 0, 7, 0));
        c.flush_until(u64::MAX, &mut out).unwrap();
        let ts: Vec<u64> = out.0.iter().map(Event::ts_ns).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        let first_switch = out
            .0
            .iter()
            .position(|e| matches!(e, Event::Switch { .. }))
            .unwrap();
        let named: Vec<Pid> = out.0[..first_switch]
            .iter()
            .filter_map(|e| match e {
                Event::Thread { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        assert!(
            named.contains(&7),
            "pid 7 is named before it runs: {named:?}"
        );
        let sched = out.0.iter().any(|e| {
            matches!(
                e,
                Event::Thread {
                    pid: 9,
                    scheduler: true,
                    ..
                }
            )
        });
        assert!(sched, "the scheduler's thread is marked");
        // Named once each, though seen several times.
        let nines = out
            .0
            .iter()
            .filter(|e| matches!(e, Event::Thread { pid: 9, .. }))
            .count();
        assert_eq!(nines, 1);
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn events_wait_for_the_mark_of_the_drain_after_the_next() {
        let mut c = Converter::new(0, None);
        let mut out = Collect::default();
        c.convert(&raw(K_WAKEUP, 5 * MS, 0, 5, 0, 0));
        c.drained(10 * MS, &mut out).unwrap();
        assert!(out.0.is_empty(), "an earlier record may still be in a ring");
        c.convert(&raw(K_WAKEUP, 15 * MS, 0, 6, 0, 0));
        c.convert(&raw(K_WAKEUP, 8 * MS, 0, 7, 0, 0)); // began before the first drain
        c.drained(20 * MS, &mut out).unwrap();
        let woken: Vec<Pid> = out
            .0
            .iter()
            .filter_map(|e| match e {
                Event::Wakeup { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        assert_eq!(woken, vec![5, 7], "up to the first drain, in time order");
        c.convert(&raw(K_WAKEUP, 3 * MS, 0, 8, 0, 0)); // should not happen
        c.flush_until(u64::MAX, &mut out).unwrap();
        assert_eq!(c.late, 2, "its Thread and Wakeup were late");
        let ts: Vec<u64> = out.0.iter().map(Event::ts_ns).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    }

    /// Drains as the recorder makes them: one ring up to its newest record, then the
    /// other, whose records go back to the drain before, then the mark.
    #[test]
    fn a_spool_of_busy_drains_replays_in_time_order_with_none_late() {
        let mut spool = Vec::new();
        let mut put = |kind: u32, ts: u64, pid: i32| {
            spool::write_record(&mut spool, &meta_record(kind, ts, pid, 0)).unwrap()
        };
        let mut n = 0;
        for drain in 1..=4u64 {
            let (from, to) = ((drain - 1) * 250 * MS, drain * 250 * MS);
            // 5,000 records each ring, more than any fixed count between flushes; the
            // second ring's go back to the drain before too.
            for (first_pid, skew) in [(100, 0), (200, 1)] {
                for i in 0..5_000 {
                    put(
                        K_WAKEUP,
                        from + (to - from) * i / 5_000 + skew,
                        first_pid + (i % 50) as i32,
                    );
                    n += 1;
                }
            }
            put(K_DRAIN, to, 0);
        }
        let mut c = Converter::new(0, None);
        let mut out = Collect::default();
        replay(&mut c, &spool[..], &mut out).unwrap();
        let wakeups = out
            .0
            .iter()
            .filter(|e| matches!(e, Event::Wakeup { .. }))
            .count();
        assert_eq!(wakeups, n, "every record, and no mark, is an event");
        assert_eq!(c.late, 0);
        // Streamed: no more than two drains' worth (with the threads' names and the
        // waiting counter) waited, where the end of the spool is four.
        assert!(c.most_waiting < 21_000, "{}", c.most_waiting);
        let ts: Vec<u64> = out.0.iter().map(Event::ts_ns).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn waiting_counts_runnable_tasks_off_cpu() {
        let mut c = Converter::new(0, None);
        let mut out = Collect::default();
        c.convert(&raw(K_WAKEUP, 1_000_000, 0, 5, 0, 0)); // 5 waits
        c.convert(&raw(K_WAKEUP, 3_000_000, 0, 6, 0, 0)); // 5, 6 wait
        c.convert(&raw(K_SWITCH, 5_000_000, 0, 0, 5, 0)); // 6 waits
        c.convert(&raw(K_SWITCH, 7_000_000, 0, 5, 6, 1)); // 5 preempted: 5 waits
        c.convert(&raw(K_SWITCH, 9_000_000, 0, 6, 0, 0)); // 6 blocks: 5 waits
        c.flush_until(u64::MAX, &mut out).unwrap();
        let waiting: Vec<u64> = out
            .0
            .iter()
            .filter_map(|e| match e {
                Event::Counter {
                    counter: Counter::Waiting,
                    value,
                    ..
                } => Some(*value),
                _ => None,
            })
            .collect();
        assert_eq!(waiting, vec![1, 2, 1]);
    }

    #[test]
    fn decisions_and_counters_come_through() {
        let mut c = Converter::new(0, Some(9));
        let mut out = Collect::default();
        let mut d = raw(K_DECISION, 10, 0, 5, 0, -1);
        d.a = 5_000_000;
        d.b = 77;
        d.flags = F_PREEMPT;
        c.convert(&d);
        let mut k = raw(K_DECISION, 11, 0, 6, 0, 1);
        k.flags = F_KERNEL;
        c.convert(&k);
        let mut n = raw(K_COUNTERS, 12, 0, 0, 0, 3);
        n.a = 4;
        n.b = 2;
        n.c = 1;
        c.convert(&n);
        c.flush_until(u64::MAX, &mut out).unwrap();
        assert!(out.0.contains(&Event::Decision {
            ts_ns: 10,
            pid: 5,
            target: Target::Any,
            slice_ns: 5_000_000,
            vtime: 77,
            preempt: true,
            kernel: false
        }));
        assert!(out.0.iter().any(|e| matches!(
            e,
            Event::Decision {
                pid: 6,
                target: Target::Cpu(1),
                kernel: true,
                ..
            }
        )));
        assert!(out.0.contains(&Event::Counter {
            ts_ns: 12,
            counter: Counter::Held,
            value: 2
        }));
    }
}
