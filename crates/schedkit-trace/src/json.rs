//! Chrome's trace-event JSON, which ui.perfetto.dev (and chrome://tracing) open.
//!
//! The file is one object, `{"displayTimeUnit":"ns","metadata":{...},
//! "traceEvents":[...]}`, written as the events come. Timestamps are microseconds
//! written with exactly three decimals, so every nanosecond survives.
//!
//! Layout:
//! - process 0, named after the machine ("simulated machine", or "kernel
//!   (SCHEDULER)" for a real run), has one thread track per CPU (tid = CPU number,
//!   named "CPU n", sorted by CPU) with a complete event (`"X"`) per stretch a
//!   thread ran: named after the thread, category `run`, or `scheduler` for the
//!   user-space scheduler's threads, with the thread's `pid` and `tgid` in its args.
//!   Idle time is not drawn. Wake-ups (`wake COMM`) and migrations are instant
//!   events on CPU tracks, counters are counter events (`"C"`) of process 0, and
//!   lost events a global instant.
//! - a track named "schedkit decisions" in process 0 (tid [`DECISIONS_TID`]) has
//!   the policy's and the dispatcher's decisions and the tasks handed to the policy,
//!   as instant events.
//! - every thread also has a track of its own, in a process whose pid is the
//!   thread's tgid (tid = the thread's pid), with one `"X"` event named `running`
//!   per stretch, so one thread's runs are easy to find.
//! - a wake-up starts a flow (`"s"`) at the wake-up instant, which ends (`"f"`,
//!   bound to the enclosing slice) at the woken thread's next stretch on its own
//!   track: the arrow spans the wake-up latency.
//!
//! A wake-up instant is drawn on the CPU where the waker runs when the trace says
//! so, otherwise on the CPU the woken thread was sent to. It is followed at once by
//! its flow's start on the same track, which so binds to the instant itself.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::event::{CpuSlice, Event, Pid, Target, TraceInfo, TraceSource};
use crate::tracker::{cpus_named, Run, Tracker};
use crate::Sink;

/// The tid of the "schedkit decisions" track in process 0 (no CPU has this number).
pub const DECISIONS_TID: u32 = u32::MAX;

/// The pid of the process holding the CPU tracks.
pub const MACHINE_PID: u32 = 0;

/// The name of the machine's process: "simulated machine", or "kernel (SCHEDULER)".
pub(crate) fn machine_name(info: &TraceInfo) -> String {
    match info.source {
        TraceSource::Simulated => "simulated machine".to_string(),
        TraceSource::Kernel => format!("kernel ({})", info.scheduler),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Writing,
    Finished,
}

/// Writes a trace as Chrome trace-event JSON, streaming. See the module
/// documentation for the layout.
///
/// Output goes straight to `W`: give it a buffered writer
/// ([`crate::create_writer`] does).
pub struct JsonWriter<W: Write> {
    out: W,
    phase: Phase,
    first: bool,
    tracker: Tracker,
    cpus: HashSet<u32>,
    /// Processes given a name, and the name (`None`: their main thread is unknown).
    procs: HashMap<Pid, Option<Arc<str>>>,
    decisions: bool,
}

impl<W: Write> JsonWriter<W> {
    /// A writer to `out`; nothing is written before [`Sink::begin`].
    pub fn new(out: W) -> JsonWriter<W> {
        JsonWriter {
            out,
            phase: Phase::New,
            first: true,
            tracker: Tracker::default(),
            cpus: HashSet::new(),
            procs: HashMap::new(),
            decisions: false,
        }
    }

    /// The writer's output (flushed by [`Sink::finish`]).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes one element of `traceEvents`.
    fn emit(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out.write_fmt(args)
    }

    fn cpu_track(&mut self, cpu: u32) -> io::Result<()> {
        if !self.cpus.insert(cpu) {
            return Ok(());
        }
        self.emit(format_args!(
            r#"{{"name":"thread_name","ph":"M","ts":0,"pid":0,"tid":{cpu},"args":{{"name":"CPU {cpu}"}}}}"#
        ))?;
        self.emit(format_args!(
            r#"{{"name":"thread_sort_index","ph":"M","ts":0,"pid":0,"tid":{cpu},"args":{{"sort_index":{}}}}}"#,
            cpu.min(i32::MAX as u32 - 1)
        ))
    }

    fn decisions_track(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.decisions, true) {
            return Ok(());
        }
        self.emit(format_args!(
            r#"{{"name":"thread_name","ph":"M","ts":0,"pid":0,"tid":{DECISIONS_TID},"args":{{"name":"schedkit decisions"}}}}"#
        ))?;
        self.emit(format_args!(
            r#"{{"name":"thread_sort_index","ph":"M","ts":0,"pid":0,"tid":{DECISIONS_TID},"args":{{"sort_index":{}}}}}"#,
            i32::MAX
        ))
    }

    /// Names `tgid`'s process after its main thread, once that is known.
    fn process(&mut self, tgid: Pid) -> io::Result<()> {
        let name = self
            .tracker
            .get(tgid)
            .filter(|t| t.known)
            .map(|t| t.comm.clone());
        if self.procs.get(&tgid) == Some(&name) {
            return Ok(());
        }
        if let Some(n) = &name {
            self.emit(format_args!(
                r#"{{"name":"process_name","ph":"M","ts":0,"pid":{tgid},"tid":{tgid},"args":{{"name":{}}}}}"#,
                Esc("", n)
            ))?;
        }
        self.procs.insert(tgid, name);
        Ok(())
    }

    /// Names `pid`'s own track (again, if its name changed).
    fn thread_track(&mut self, pid: Pid) -> io::Result<()> {
        let t = self.tracker.thread(pid);
        if t.announced.as_ref() == Some(&t.comm) {
            return Ok(());
        }
        t.announced = Some(t.comm.clone());
        let (tgid, comm) = (t.tgid, t.comm.clone());
        self.process(tgid)?;
        self.emit(format_args!(
            r#"{{"name":"thread_name","ph":"M","ts":0,"pid":{tgid},"tid":{pid},"args":{{"name":{}}}}}"#,
            Esc("", &comm)
        ))
    }

    /// Draws a finished stretch on its CPU's track and its thread's.
    fn close(&mut self, cpu: u32, run: Run, end_ns: u64) -> io::Result<()> {
        if end_ns <= run.since_ns {
            // Nothing to draw; the wake-up flow goes on to the next stretch.
            if let Some(f) = run.flow_in {
                self.tracker.requeue_flow(run.pid, f);
            }
            return Ok(());
        }
        let cat = if run.scheduler { "scheduler" } else { "run" };
        let (ts, dur) = (Us(run.since_ns), Us(end_ns - run.since_ns));
        let (pid, tgid) = (run.pid, run.tgid);
        self.emit(format_args!(
            r#"{{"name":{},"cat":"{cat}","ph":"X","ts":{ts},"dur":{dur},"pid":0,"tid":{cpu},"args":{{"pid":{pid},"tgid":{tgid}}}}}"#,
            Esc("", &run.comm)
        ))?;
        self.emit(format_args!(
            r#"{{"name":"running","cat":"{cat}","ph":"X","ts":{ts},"dur":{dur},"pid":{tgid},"tid":{pid},"args":{{"cpu":{cpu}}}}}"#
        ))?;
        if let Some(f) = run.flow_in {
            self.emit(format_args!(
                r#"{{"name":"wakeup","cat":"wakeup","ph":"f","bp":"e","id":{f},"ts":{ts},"pid":{tgid},"tid":{pid}}}"#
            ))?;
        }
        Ok(())
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

impl<W: Write> Sink for JsonWriter<W> {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        if self.phase != Phase::New {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the trace began twice",
            ));
        }
        self.phase = Phase::Writing;
        let source = match info.source {
            TraceSource::Kernel => "kernel",
            TraceSource::Simulated => "simulated",
        };
        write!(
            self.out,
            r#"{{"displayTimeUnit":"ns","metadata":{{"schedkit-source":"{source}","schedkit-scheduler":{},"schedkit-nr-cpus":{},"schedkit-start-ns":{}}},"traceEvents":["#,
            Esc("", &info.scheduler),
            info.nr_cpus,
            info.start_ns
        )?;
        self.out.write_all(b"\n")?;
        let machine = machine_name(info);
        self.emit(format_args!(
            r#"{{"name":"process_name","ph":"M","ts":0,"pid":0,"tid":0,"args":{{"name":{}}}}}"#,
            Esc("", &machine)
        ))?;
        for cpu in 0..info.nr_cpus {
            self.cpu_track(cpu)?;
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event) -> io::Result<()> {
        if self.phase != Phase::Writing {
            return Err(self.not_writing());
        }
        for cpu in cpus_named(ev).into_iter().flatten() {
            self.cpu_track(cpu)?;
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
                    self.thread_track(pid)?;
                }
                if pid == tgid && self.procs.contains_key(&tgid) {
                    self.process(tgid)?;
                }
            }
            Event::Switch {
                ts_ns, cpu, next, ..
            } => {
                let s = self.tracker.switch(ts_ns, cpu, next);
                if let Some(run) = &s.started {
                    self.thread_track(run.pid)?;
                }
                let pids: Vec<Pid> = s.stopped.iter().map(|(_, r)| r.pid).collect();
                for (c, run) in s.stopped {
                    self.close(c, run, ts_ns)?;
                }
                self.tracker.sweep(&pids);
            }
            Event::Wakeup {
                ts_ns,
                pid,
                cpu,
                waker,
                new_task,
            } => {
                let track = waker
                    .and_then(|w| self.tracker.running_on(w))
                    .unwrap_or(cpu);
                self.cpu_track(track)?;
                let comm = self.comm(pid);
                let waker = OrNull(waker);
                self.emit(format_args!(
                    r#"{{"name":{},"cat":"wakeup","ph":"i","s":"t","ts":{},"pid":0,"tid":{track},"args":{{"pid":{pid},"cpu":{cpu},"waker":{waker},"new_task":{new_task}}}}}"#,
                    Esc("wake ", &comm),
                    Us(ts_ns)
                ))?;
                if let Some(f) = self.tracker.wakeup(pid) {
                    self.emit(format_args!(
                        r#"{{"name":"wakeup","cat":"wakeup","ph":"s","id":{f},"ts":{},"pid":0,"tid":{track}}}"#,
                        Us(ts_ns)
                    ))?;
                }
            }
            Event::Migrate {
                ts_ns,
                pid,
                from,
                to,
            } => {
                let comm = self.comm(pid);
                self.emit(format_args!(
                    r#"{{"name":{},"cat":"migrate","ph":"i","s":"t","ts":{},"pid":0,"tid":{to},"args":{{"pid":{pid},"from":{from},"to":{to}}}}}"#,
                    Esc("migrate ", &comm),
                    Us(ts_ns)
                ))?;
            }
            Event::Exit { pid, .. } => {
                if self.tracker.get(pid).is_some_and(|t| t.tgid == pid) {
                    self.procs.remove(&pid);
                }
                self.tracker.exit(pid);
            }
            Event::Enqueued { ts_ns, pid, cpu } => {
                self.decisions_track()?;
                let comm = self.comm(pid);
                self.emit(format_args!(
                    r#"{{"name":{},"cat":"enqueue","ph":"i","s":"t","ts":{},"pid":0,"tid":{DECISIONS_TID},"args":{{"pid":{pid},"cpu":{cpu}}}}}"#,
                    Esc("enqueue ", &comm),
                    Us(ts_ns)
                ))?;
            }
            Event::Decision {
                ts_ns,
                pid,
                target,
                slice_ns,
                vtime,
                preempt,
                kernel,
            } => {
                self.decisions_track()?;
                let comm = self.comm(pid);
                let target = match target {
                    Target::Cpu(c) => TargetJson(Some(c)),
                    Target::Any => TargetJson(None),
                };
                let by = if kernel { "kernel" } else { "policy" };
                self.emit(format_args!(
                    r#"{{"name":{},"cat":"decision","ph":"i","s":"t","ts":{},"pid":0,"tid":{DECISIONS_TID},"args":{{"pid":{pid},"target":{target},"slice_us":{},"vtime":{vtime},"preempt":{preempt},"by":"{by}"}}}}"#,
                    Esc("dispatch ", &comm),
                    Us(ts_ns),
                    Us(slice_ns)
                ))?;
            }
            Event::Counter {
                ts_ns,
                counter,
                value,
            } => {
                self.emit(format_args!(
                    r#"{{"name":"{}","ph":"C","ts":{},"pid":0,"tid":0,"args":{{"value":{value}}}}}"#,
                    counter.name(),
                    Us(ts_ns)
                ))?;
            }
            Event::Lost { ts_ns, count } => {
                self.emit(format_args!(
                    r#"{{"name":"lost {count} events","cat":"lost","ph":"i","s":"g","ts":{},"pid":0,"tid":0,"args":{{"count":{count}}}}}"#,
                    Us(ts_ns)
                ))?;
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
            let end = end_ns.max(run.since_ns);
            self.close(cpu, run, end)?;
        }
        self.out.write_all(b"\n]}\n")?;
        self.phase = Phase::Finished;
        self.out.flush()
    }
}

/// Nanoseconds shown as microseconds with three decimals (exact).
struct Us(u64);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A JSON string: the concatenation of a prefix and a string, quoted and escaped.
struct Esc<'a>(&'a str, &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for part in [self.0, self.1] {
            let mut rest = part;
            while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
                f.write_str(&rest[..i])?;
                let c = rest[i..].chars().next().unwrap_or(' ');
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    c => write!(f, "\\u{:04x}", c as u32)?,
                }
                rest = &rest[i + c.len_utf8()..];
            }
            f.write_str(rest)?;
        }
        f.write_str("\"")
    }
}

/// A pid, or `null`.
struct OrNull(Option<Pid>);

impl fmt::Display for OrNull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{p}"),
            None => f.write_str("null"),
        }
    }
}

/// A decision's target: the CPU number, or `"any"`.
struct TargetJson(Option<u32>);

impl fmt::Display for TargetJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{c}"),
            None => f.write_str("\"any\""),
        }
    }
}

// ---- reading back ----

/// Reads back the CPU tracks of a trace written by [`JsonWriter`]: the number of
/// CPUs (CPU tracks are named "CPU n" in process 0) and every stretch a thread ran,
/// sorted by CPU then start time.
///
/// The file is read as a stream: only the slices are kept in memory. Times are
/// rounded to the nanosecond (exact below about 25 days of uptime, within 1 ns
/// beyond, where an f64 of microseconds runs out of digits).
pub fn read_cpu_slices<R: Read>(r: R) -> io::Result<(u32, Vec<CpuSlice>)> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let mut acc = Collected::default();
    (&mut acc)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if !acc.saw_events {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Chrome JSON trace: it has no traceEvents",
        ));
    }
    let mut slices = acc.slices;
    slices.sort_by_key(|s| (s.cpu, s.start_ns, s.end_ns));
    let nr_cpus = slices
        .iter()
        .map(|s| s.cpu.saturating_add(1))
        .max()
        .unwrap_or(0)
        .max(acc.nr_cpus);
    Ok((nr_cpus, slices))
}

#[derive(Default)]
struct Collected {
    saw_events: bool,
    nr_cpus: u32,
    slices: Vec<CpuSlice>,
}

/// One element of `traceEvents`, leniently: anything but the fields used here is
/// skipped, and numbers may come in any JSON form.
#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    ph: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cat: Option<String>,
    #[serde(default)]
    pid: Option<serde_json::Value>,
    #[serde(default)]
    tid: Option<serde_json::Value>,
    #[serde(default)]
    ts: Option<serde_json::Value>,
    #[serde(default)]
    dur: Option<serde_json::Value>,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

fn as_u32(v: &Option<serde_json::Value>) -> Option<u32> {
    v.as_ref()?.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// Microseconds to nanoseconds.
fn ns(v: &Option<serde_json::Value>) -> Option<u64> {
    let us = v.as_ref()?.as_f64()?;
    (us.is_finite() && us >= 0.0).then(|| (us * 1000.0).round() as u64)
}

impl Collected {
    fn take(&mut self, e: RawEvent) {
        if as_u32(&e.pid) != Some(MACHINE_PID) {
            return;
        }
        let Some(tid) = as_u32(&e.tid).filter(|&t| t != DECISIONS_TID) else {
            return;
        };
        match e.ph.as_deref() {
            Some("M") if e.name.as_deref() == Some("thread_name") => {
                let label = e.args.as_ref().and_then(|a| a["name"].as_str());
                if label.and_then(|l| l.strip_prefix("CPU ")) == Some(&tid.to_string()) {
                    self.nr_cpus = self.nr_cpus.max(tid.saturating_add(1));
                }
            }
            Some("X") => {
                let (Some(start_ns), Some(dur)) = (ns(&e.ts), ns(&e.dur)) else {
                    return;
                };
                if dur == 0 {
                    return;
                }
                let pid = e
                    .args
                    .as_ref()
                    .and_then(|a| a["pid"].as_u64())
                    .and_then(|p| Pid::try_from(p).ok())
                    .unwrap_or(0);
                self.slices.push(CpuSlice {
                    cpu: tid,
                    start_ns,
                    end_ns: start_ns + dur,
                    pid,
                    name: e.name.unwrap_or_default(),
                    scheduler: e.cat.as_deref() == Some("scheduler"),
                });
            }
            _ => {}
        }
    }
}

impl<'de> DeserializeSeed<'de> for &mut Collected {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(FileVisitor(self))
    }
}

/// The whole file: an object with `traceEvents`, or (Chrome's other form) the
/// array of events itself.
struct FileVisitor<'a>(&'a mut Collected);

impl<'de> Visitor<'de> for FileVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Chrome trace-event JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "traceEvents" {
                map.next_value_seed(EventsSeed(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        EventsVisitor(self.0).visit_seq(seq)
    }
}

struct EventsSeed<'a>(&'a mut Collected);

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(EventsVisitor(self.0))
    }
}

struct EventsVisitor<'a>(&'a mut Collected);

impl<'de> Visitor<'de> for EventsVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of trace events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.saw_events = true;
        while let Some(e) = seq.next_element::<RawEvent>()? {
            self.0.take(e);
        }
        Ok(())
    }
}
