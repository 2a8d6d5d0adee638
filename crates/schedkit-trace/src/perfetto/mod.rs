//! Perfetto's protobuf trace (`.pftrace`), which ui.perfetto.dev opens.
//!
//! The file is a `Trace` message written one `TracePacket` at a time (each one is
//! the trace's field 1, length-delimited), so nothing is held in memory. All
//! packets are on one sequence ([`SEQUENCE_ID`]); the first one clears the
//! sequence's incremental state (none is used: names are not interned) and holds a
//! clock snapshot.
//!
//! Times are on `CLOCK_MONOTONIC` (Perfetto's built-in clock 3): a real trace's
//! come from the kernel's `bpf_ktime_get_ns()` and tracepoints, which read that
//! clock, so labelling them BOOTTIME (Perfetto's default) would be wrong by the
//! time the machine spent suspended, and would misplace them against a trace
//! recorded at the same time by Perfetto itself (which relates the two clocks
//! through its own snapshots). The first packet's snapshot makes MONOTONIC the
//! trace's primary clock, so a file opened alone needs no conversion at all. A
//! simulation's times count from 0 on the same (simulated) clock.
//!
//! Tracks (declared by a `TrackDescriptor` the first time they are used, again
//! when a thread's name changes):
//! - a root track named after the machine ("simulated machine", "kernel
//!   (SCHEDULER)") whose children are, in this order: one counter track per
//!   [`Counter`], one track per CPU ("CPU n") with a slice per stretch a thread ran
//!   (named after the thread; category `run`, or `scheduler` for the user-space
//!   scheduler's threads; annotations `pid`, `tgid`), "schedkit decisions" (instant
//!   events: `enqueue COMM` and `dispatch COMM`, with annotations `pid`, `target`
//!   (a CPU or "any"), `slice_us`, `vtime`, `preempt`, `by` ("policy" or
//!   "kernel")), and "lost events";
//! - a track per thread (a `ThreadDescriptor`; Perfetto groups the threads of a
//!   process, which also gets a `ProcessDescriptor` track named after its main
//!   thread) with a `running` slice per stretch (annotation `cpu`).
//!
//! A wake-up is an instant `wake COMM` on the waker's CPU track when the trace says
//! which thread woke it and that thread is on a CPU, otherwise on the woken
//! thread's own track. It starts a flow (`flow_ids`) that the woken thread's next
//! `running` slice ends (`terminating_flow_ids`): the arrow spans the wake-up
//! latency. Migrations are instants on the thread's track.

pub mod proto;

pub use proto::*;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::sync::Arc;

use prost::Message;

use crate::event::{Counter, CpuSlice, Event, Pid, Target, TraceInfo};
use crate::json::machine_name;
use crate::tracker::{cpus_named, Run, Tracker};
use crate::Sink;

/// The `trusted_packet_sequence_id` of every packet written (any nonzero number
/// would do; 1 is avoided, Perfetto's service uses it for its own packets).
pub const SEQUENCE_ID: u32 = 0x5ced;

/// The clock of every timestamp written: `CLOCK_MONOTONIC` (see the module
/// documentation).
pub const CLOCK_ID: u32 = BuiltinClock::Monotonic as u32;

/// uuid of the root track (the machine).
pub const ROOT_UUID: u64 = 1;
/// uuid of the "schedkit decisions" track.
pub const DECISIONS_UUID: u64 = 2;
/// uuid of the "lost events" track.
pub const LOST_UUID: u64 = 3;
const COUNTER_UUID_BASE: u64 = 8;
const CPU_UUID_BASE: u64 = 1 << 20;
const PROCESS_UUID_BASE: u64 = 1 << 40;
const THREAD_UUID_BASE: u64 = 1 << 48;

/// The uuid of CPU `cpu`'s track.
pub fn cpu_track_uuid(cpu: u32) -> u64 {
    CPU_UUID_BASE + u64::from(cpu)
}

/// The uuid of a counter's track.
pub fn counter_track_uuid(c: Counter) -> u64 {
    COUNTER_UUID_BASE + counter_index(c) as u64
}

fn counter_index(c: Counter) -> usize {
    match c {
        Counter::Waiting => 0,
        Counter::Queued => 1,
        Counter::Held => 2,
        Counter::Congested => 3,
    }
}

fn process_uuid(tgid: Pid) -> u64 {
    PROCESS_UUID_BASE + u64::from(tgid)
}

fn thread_uuid(serial: u64) -> u64 {
    THREAD_UUID_BASE + serial
}

/// Linux pids fit an i32 (at most 2^22); anything larger is clamped.
fn pid_i32(pid: Pid) -> i32 {
    i32::try_from(pid).unwrap_or(i32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Writing,
    Finished,
}

/// Writes a trace in Perfetto's protobuf format, streaming. See the module
/// documentation for the layout.
///
/// Output goes straight to `W`: give it a buffered writer
/// ([`crate::create_writer`] does).
pub struct PerfettoWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    phase: Phase,
    tracker: Tracker,
    cpus: HashSet<u32>,
    /// Processes declared, and the name given (`None`: main thread unknown).
    procs: HashMap<Pid, Option<Arc<str>>>,
    counters: [bool; 4],
    decisions: bool,
    lost: bool,
}

impl<W: Write> PerfettoWriter<W> {
    /// A writer to `out`; nothing is written before [`Sink::begin`].
    pub fn new(out: W) -> PerfettoWriter<W> {
        PerfettoWriter {
            out,
            buf: Vec::with_capacity(256),
            phase: Phase::New,
            tracker: Tracker::default(),
            cpus: HashSet::new(),
            procs: HashMap::new(),
            counters: [false; 4],
            decisions: false,
            lost: false,
        }
    }

    /// The writer's output (flushed by [`Sink::finish`]).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes one packet as field 1 of the `Trace` message.
    fn packet(&mut self, mut p: TracePacket) -> io::Result<()> {
        p.trusted_packet_sequence_id = Some(SEQUENCE_ID);
        if p.timestamp.is_some() {
            p.timestamp_clock_id = Some(CLOCK_ID);
        }
        self.buf.clear();
        // Field 1, wire type 2 (length-delimited).
        self.buf.push(0x0a);
        p.encode_length_delimited(&mut self.buf)
            .map_err(io::Error::other)?;
        self.out.write_all(&self.buf)
    }

    fn descriptor(&mut self, ts_ns: u64, d: TrackDescriptor) -> io::Result<()> {
        self.packet(TracePacket {
            timestamp: Some(ts_ns),
            track_descriptor: Some(d),
            ..Default::default()
        })
    }

    fn track_event(&mut self, ts_ns: u64, e: TrackEvent) -> io::Result<()> {
        self.packet(TracePacket {
            timestamp: Some(ts_ns),
            track_event: Some(e),
            ..Default::default()
        })
    }

    fn cpu_track(&mut self, ts_ns: u64, cpu: u32) -> io::Result<u64> {
        let uuid = cpu_track_uuid(cpu);
        if self.cpus.insert(cpu) {
            self.descriptor(
                ts_ns,
                TrackDescriptor {
                    uuid: Some(uuid),
                    parent_uuid: Some(ROOT_UUID),
                    name: Some(format!("CPU {cpu}")),
                    sibling_order_rank: Some(i32::try_from(cpu).unwrap_or(i32::MAX - 2)),
                    ..Default::default()
                },
            )?;
        }
        Ok(uuid)
    }

    fn named_track(&mut self, ts_ns: u64, uuid: u64, name: &str, rank: i32) -> io::Result<()> {
        self.descriptor(
            ts_ns,
            TrackDescriptor {
                uuid: Some(uuid),
                parent_uuid: Some(ROOT_UUID),
                name: Some(name.to_string()),
                sibling_order_rank: Some(rank),
                ..Default::default()
            },
        )
    }

    fn decisions_track(&mut self, ts_ns: u64) -> io::Result<u64> {
        if !std::mem::replace(&mut self.decisions, true) {
            self.named_track(ts_ns, DECISIONS_UUID, "schedkit decisions", i32::MAX - 1)?;
        }
        Ok(DECISIONS_UUID)
    }

    fn lost_track(&mut self, ts_ns: u64) -> io::Result<u64> {
        if !std::mem::replace(&mut self.lost, true) {
            self.named_track(ts_ns, LOST_UUID, "lost events", i32::MAX)?;
        }
        Ok(LOST_UUID)
    }

    fn counter_track(&mut self, ts_ns: u64, c: Counter) -> io::Result<u64> {
        let uuid = counter_track_uuid(c);
        let i = counter_index(c);
        if !std::mem::replace(&mut self.counters[i], true) {
            self.descriptor(
                ts_ns,
                TrackDescriptor {
                    uuid: Some(uuid),
                    parent_uuid: Some(ROOT_UUID),
                    name: Some(c.name().to_string()),
                    // Above the CPUs.
                    sibling_order_rank: Some(-10 + i as i32),
                    counter: Some(CounterDescriptor {
                        unit: Some(counter_descriptor::Unit::Count as i32),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )?;
        }
        Ok(uuid)
    }

    /// Declares `tgid`'s process, named after its main thread once that is known.
    fn process(&mut self, ts_ns: u64, tgid: Pid) -> io::Result<()> {
        let name = self
            .tracker
            .get(tgid)
            .filter(|t| t.known)
            .map(|t| t.comm.clone());
        if self.procs.get(&tgid) == Some(&name) {
            return Ok(());
        }
        self.descriptor(
            ts_ns,
            TrackDescriptor {
                uuid: Some(process_uuid(tgid)),
                process: Some(ProcessDescriptor {
                    pid: Some(pid_i32(tgid)),
                    process_name: name.as_deref().map(str::to_string),
                }),
                ..Default::default()
            },
        )?;
        self.procs.insert(tgid, name);
        Ok(())
    }

    /// Declares `pid`'s own track (again, if its name changed); returns its uuid.
    fn thread_track(&mut self, ts_ns: u64, pid: Pid) -> io::Result<u64> {
        let t = self.tracker.thread(pid);
        let uuid = thread_uuid(t.serial);
        if t.announced.as_ref() == Some(&t.comm) {
            return Ok(uuid);
        }
        t.announced = Some(t.comm.clone());
        let (tgid, comm) = (t.tgid, t.comm.clone());
        self.process(ts_ns, tgid)?;
        self.descriptor(
            ts_ns,
            TrackDescriptor {
                uuid: Some(uuid),
                thread: Some(ThreadDescriptor {
                    pid: Some(pid_i32(tgid)),
                    tid: Some(i64::from(pid)),
                    thread_name: Some(comm.to_string()),
                }),
                ..Default::default()
            },
        )?;
        Ok(uuid)
    }

    fn begin_slices(&mut self, ts_ns: u64, cpu: u32, run: &Run) -> io::Result<()> {
        let cat = if run.scheduler { "scheduler" } else { "run" };
        let thread = self.thread_track(ts_ns, run.pid)?;
        self.track_event(
            ts_ns,
            TrackEvent {
                r#type: Some(track_event::Type::SliceBegin as i32),
                track_uuid: Some(cpu_track_uuid(cpu)),
                name: Some(run.comm.to_string()),
                categories: vec![cat.to_string()],
                debug_annotations: vec![
                    DebugAnnotation::uint("pid", run.pid.into()),
                    DebugAnnotation::uint("tgid", run.tgid.into()),
                ],
                ..Default::default()
            },
        )?;
        self.track_event(
            ts_ns,
            TrackEvent {
                r#type: Some(track_event::Type::SliceBegin as i32),
                track_uuid: Some(thread),
                name: Some("running".to_string()),
                categories: vec![cat.to_string()],
                debug_annotations: vec![DebugAnnotation::uint("cpu", cpu.into())],
                terminating_flow_ids: run.flow_in.into_iter().collect(),
                ..Default::default()
            },
        )
    }

    fn end_slices(&mut self, ts_ns: u64, cpu: u32, run: &Run) -> io::Result<()> {
        for track in [cpu_track_uuid(cpu), thread_uuid(run.serial)] {
            self.track_event(
                ts_ns,
                TrackEvent {
                    r#type: Some(track_event::Type::SliceEnd as i32),
                    track_uuid: Some(track),
                    ..Default::default()
                },
            )?;
        }
        Ok(())
    }

    fn instant(
        &mut self,
        ts_ns: u64,
        track: u64,
        name: String,
        cat: &str,
        debug_annotations: Vec<DebugAnnotation>,
        flow_ids: Vec<u64>,
    ) -> io::Result<()> {
        self.track_event(
            ts_ns,
            TrackEvent {
                r#type: Some(track_event::Type::Instant as i32),
                track_uuid: Some(track),
                name: Some(name),
                categories: vec![cat.to_string()],
                debug_annotations,
                flow_ids,
                ..Default::default()
            },
        )
    }

    fn comm(&mut self, pid: Pid) -> Arc<str> {
        self.tracker.thread(pid).comm.clone()
    }

    fn not_writing(&self) -> io::Error {
        let what = match self.phase {
            Phase::New => "before the trace began",
            _ => "after the trace finished",
        };
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a trace event came {what}"),
        )
    }
}

impl<W: Write> Sink for PerfettoWriter<W> {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        if self.phase != Phase::New {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the trace began twice",
            ));
        }
        self.phase = Phase::Writing;
        let ts = info.start_ns;
        self.packet(TracePacket {
            sequence_flags: Some(sequence_flags::SEQ_INCREMENTAL_STATE_CLEARED),
            first_packet_on_sequence: Some(true),
            clock_snapshot: Some(ClockSnapshot {
                clocks: vec![clock_snapshot::Clock {
                    clock_id: Some(CLOCK_ID),
                    timestamp: Some(ts),
                }],
                primary_trace_clock: Some(BuiltinClock::Monotonic as i32),
            }),
            ..Default::default()
        })?;
        self.descriptor(
            ts,
            TrackDescriptor {
                uuid: Some(ROOT_UUID),
                name: Some(machine_name(info)),
                child_ordering: Some(track_descriptor::ChildTracksOrdering::Explicit as i32),
                ..Default::default()
            },
        )?;
        for cpu in 0..info.nr_cpus {
            self.cpu_track(ts, cpu)?;
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event) -> io::Result<()> {
        if self.phase != Phase::Writing {
            return Err(self.not_writing());
        }
        let ts = ev.ts_ns();
        for cpu in cpus_named(ev).into_iter().flatten() {
            self.cpu_track(ts, cpu)?;
        }
        match *ev {
            Event::Thread {
                pid,
                tgid,
                ref comm,
                scheduler,
                ..
            } => {
                let t = self.tracker.set_thread(pid, tgid, comm, scheduler);
                if t.announced.is_some() {
                    self.thread_track(ts, pid)?;
                }
                if pid == tgid && self.procs.contains_key(&tgid) {
                    self.process(ts, tgid)?;
                }
            }
            Event::Switch { cpu, next, .. } => {
                let s = self.tracker.switch(ts, cpu, next);
                for (c, run) in &s.stopped {
                    self.end_slices(ts, *c, run)?;
                }
                if let Some(run) = &s.started {
                    self.begin_slices(ts, cpu, run)?;
                }
                let pids: Vec<Pid> = s.stopped.iter().map(|(_, r)| r.pid).collect();
                self.tracker.sweep(&pids);
            }
            Event::Wakeup {
                pid,
                cpu,
                waker,
                new_task,
                ..
            } => {
                let track = match waker.and_then(|w| self.tracker.running_on(w)) {
                    Some(c) => self.cpu_track(ts, c)?,
                    None => self.thread_track(ts, pid)?,
                };
                let comm = self.comm(pid);
                let mut ann = vec![
                    DebugAnnotation::uint("pid", pid.into()),
                    DebugAnnotation::uint("cpu", cpu.into()),
                ];
                if let Some(w) = waker {
                    ann.push(DebugAnnotation::uint("waker", w.into()));
                }
                ann.push(DebugAnnotation::bool("new_task", new_task));
                let flows = self.tracker.wakeup(pid).into_iter().collect();
                self.instant(ts, track, format!("wake {comm}"), "wakeup", ann, flows)?;
            }
            Event::Migrate { pid, from, to, .. } => {
                let track = self.thread_track(ts, pid)?;
                let ann = vec![
                    DebugAnnotation::uint("pid", pid.into()),
                    DebugAnnotation::uint("from", from.into()),
                    DebugAnnotation::uint("to", to.into()),
                ];
                self.instant(
                    ts,
                    track,
                    format!("migrate to CPU {to}"),
                    "migrate",
                    ann,
                    vec![],
                )?;
            }
            Event::Exit { pid, .. } => {
                if self.tracker.get(pid).is_some_and(|t| t.tgid == pid) {
                    self.procs.remove(&pid);
                }
                self.tracker.exit(pid);
            }
            Event::Enqueued { pid, cpu, .. } => {
                let track = self.decisions_track(ts)?;
                let comm = self.comm(pid);
                let ann = vec![
                    DebugAnnotation::uint("pid", pid.into()),
                    DebugAnnotation::uint("cpu", cpu.into()),
                ];
                self.instant(ts, track, format!("enqueue {comm}"), "enqueue", ann, vec![])?;
            }
            Event::Decision {
                pid,
                target,
                slice_ns,
                vtime,
                preempt,
                kernel,
                ..
            } => {
                let track = self.decisions_track(ts)?;
                let comm = self.comm(pid);
                let ann = vec![
                    DebugAnnotation::uint("pid", pid.into()),
                    match target {
                        Target::Cpu(c) => DebugAnnotation::uint("target", c.into()),
                        Target::Any => DebugAnnotation::string("target", "any"),
                    },
                    DebugAnnotation::double("slice_us", slice_ns as f64 / 1000.0),
                    DebugAnnotation::uint("vtime", vtime),
                    DebugAnnotation::bool("preempt", preempt),
                    DebugAnnotation::string("by", if kernel { "kernel" } else { "policy" }),
                ];
                self.instant(
                    ts,
                    track,
                    format!("dispatch {comm}"),
                    "decision",
                    ann,
                    vec![],
                )?;
            }
            Event::Counter { counter, value, .. } => {
                let track = self.counter_track(ts, counter)?;
                self.track_event(
                    ts,
                    TrackEvent {
                        r#type: Some(track_event::Type::Counter as i32),
                        track_uuid: Some(track),
                        counter_value: Some(i64::try_from(value).unwrap_or(i64::MAX)),
                        ..Default::default()
                    },
                )?;
            }
            Event::Lost { count, .. } => {
                let track = self.lost_track(ts)?;
                let ann = vec![DebugAnnotation::uint("count", count)];
                self.instant(
                    ts,
                    track,
                    format!("{count} events lost"),
                    "lost",
                    ann,
                    vec![],
                )?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        match self.phase {
            Phase::New => return Err(self.not_writing()),
            Phase::Finished => return Ok(()),
            Phase::Writing => {}
        }
        for (cpu, run) in self.tracker.stop_all() {
            self.end_slices(end_ns.max(run.since_ns), cpu, &run)?;
        }
        self.phase = Phase::Finished;
        self.out.flush()
    }
}

// ---- reading back ----

/// Decodes a whole trace held in memory.
pub fn decode(bytes: &[u8]) -> Result<Trace, prost::DecodeError> {
    Trace::decode(bytes)
}

/// Packets longer than this are taken for a corrupt file rather than allocated.
const MAX_PACKET: u64 = 256 << 20;

/// Calls `f` with each packet of a trace, read as a stream.
pub fn for_each_packet<R: Read>(
    r: R,
    mut f: impl FnMut(TracePacket) -> io::Result<()>,
) -> io::Result<()> {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    while let Some(key) = read_varint(&mut r, true)? {
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                read_varint(&mut r, false)?;
            }
            1 => skip(&mut r, 8)?,
            5 => skip(&mut r, 4)?,
            2 => {
                let len = read_varint(&mut r, false)?.unwrap_or(0);
                if len > MAX_PACKET {
                    return Err(invalid(format!(
                        "not a Perfetto trace: a {len}-byte packet"
                    )));
                }
                if field != 1 {
                    skip(&mut r, len)?;
                    continue;
                }
                buf.resize(len as usize, 0);
                r.read_exact(&mut buf)?;
                let p = TracePacket::decode(&buf[..])
                    .map_err(|e| invalid(format!("not a Perfetto trace: {e}")))?;
                f(p)?;
            }
            _ => {
                return Err(invalid(format!(
                    "not a Perfetto trace: field {field} has wire type {wire_type}"
                )))
            }
        }
    }
    Ok(())
}

fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink())?;
    if got < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Reads a varint; `None` at a clean end of input when `eof_ok`.
fn read_varint(r: &mut impl Read, eof_ok: bool) -> io::Result<Option<u64>> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8];
        if r.read(&mut b)? == 0 {
            if i == 0 && eof_ok {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "not a Perfetto trace: a varint longer than 10 bytes",
    ))
}

/// Reads back the CPU tracks of a trace written by [`PerfettoWriter`]: the number
/// of CPUs (tracks named "CPU n") and every stretch a thread ran on one (the
/// slices on those tracks, by their begin and end; empty ones are skipped), sorted
/// by CPU then start time. The file is read as a stream.
pub fn read_cpu_slices<R: Read>(r: R) -> io::Result<(u32, Vec<CpuSlice>)> {
    struct Open {
        start_ns: u64,
        pid: Pid,
        name: String,
        scheduler: bool,
    }
    let mut cpu_of: HashMap<u64, u32> = HashMap::new();
    let mut open: HashMap<u64, Vec<Open>> = HashMap::new();
    let mut slices = Vec::new();
    let mut nr_cpus = 0u32;
    let mut packets = 0u64;
    for_each_packet(r, |p| {
        packets += 1;
        if let Some(d) = &p.track_descriptor {
            let cpu = d
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix("CPU "))
                .and_then(|n| n.parse::<u32>().ok());
            if let (Some(uuid), Some(cpu), None, None) = (d.uuid, cpu, &d.thread, &d.process) {
                cpu_of.insert(uuid, cpu);
                nr_cpus = nr_cpus.max(cpu.saturating_add(1));
            }
        }
        let Some(e) = &p.track_event else {
            return Ok(());
        };
        let uuid = e.track_uuid.unwrap_or(0);
        let Some(&cpu) = cpu_of.get(&uuid) else {
            return Ok(());
        };
        let ts = p.timestamp.unwrap_or(0);
        match e.r#type() {
            track_event::Type::SliceBegin => {
                let pid = e
                    .annotation("pid")
                    .and_then(|a| {
                        a.uint_value
                            .or(a.int_value.and_then(|v| u64::try_from(v).ok()))
                    })
                    .and_then(|v| Pid::try_from(v).ok())
                    .unwrap_or(0);
                open.entry(uuid).or_default().push(Open {
                    start_ns: ts,
                    pid,
                    name: e.name.clone().unwrap_or_default(),
                    scheduler: e.categories.iter().any(|c| c == "scheduler"),
                });
            }
            track_event::Type::SliceEnd => {
                if let Some(o) = open.get_mut(&uuid).and_then(Vec::pop) {
                    if ts > o.start_ns {
                        slices.push(CpuSlice {
                            cpu,
                            start_ns: o.start_ns,
                            end_ns: ts,
                            pid: o.pid,
                            name: o.name,
                            scheduler: o.scheduler,
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    if packets == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Perfetto trace: it has no packets",
        ));
    }
    slices.sort_by_key(|s| (s.cpu, s.start_ns, s.end_ns));
    Ok((nr_cpus, slices))
}
