//! The timeline of a run in Chrome's trace-event JSON, which ui.perfetto.dev and
//! chrome://tracing open: one track per CPU (process 0, thread = CPU number) with a
//! complete event (`"X"`) per stretch a task or the user-space scheduler ran,
//! wake-ups and dispatch decisions as instant events (`"i"`), and a counter (`"C"`)
//! of runnable tasks waiting for a CPU.
//!
//! Records are kept compact while the simulation runs and turned into JSON only when
//! written, so tracing costs little when it is on and nothing when it is off.

use std::io::{self, Write};

use serde::Serialize;

/// Name of the user-space scheduler's stretches on the CPU tracks.
pub const SCHEDULER_NAME: &str = "schedkit scheduler";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Record {
    /// Task `task` ran on `cpu` from `start_ns` to `end_ns`.
    Run {
        cpu: u32,
        task: usize,
        start_ns: u64,
        end_ns: u64,
    },
    /// The user-space scheduler ran on `cpu`.
    Sched {
        cpu: u32,
        start_ns: u64,
        end_ns: u64,
    },
    /// Task `task` woke up; `cpu` is the CPU it last ran on.
    Wake { cpu: u32, task: usize, t_ns: u64 },
    /// A decision (or a kernel-side fast-path dispatch) put `task` in a queue:
    /// `cpu` is the CPU's local queue, or `None` for the shared queue.
    Dispatch {
        cpu: Option<u32>,
        task: usize,
        t_ns: u64,
        slice_ns: u64,
        kernel: bool,
    },
    /// Number of runnable tasks not on a CPU.
    Runnable { t_ns: u64, n: u64 },
}

/// A recorded timeline. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub(crate) records: Vec<Record>,
    pub(crate) task_names: Vec<String>,
    pub(crate) nr_cpus: u32,
}

#[derive(Serialize)]
struct Event<'a> {
    name: &'a str,
    ph: &'static str,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    args: serde_json::Value,
}

/// Trace timestamps are microseconds; nanoseconds survive as the fraction (exactly,
/// since an f64 holds every integer below 2^53 and the division is correctly rounded).
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Trace {
    pub(crate) fn new(nr_cpus: u32) -> Trace {
        Trace {
            records: Vec::with_capacity(1 << 16),
            task_names: Vec::new(),
            nr_cpus,
        }
    }

    /// Number of recorded events (before the metadata that names the tracks).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes the trace as one JSON object `{"traceEvents": [...]}`.
    pub fn write_json<W: Write>(&self, out: W) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        let queues_tid = self.nr_cpus;
        let mut first = true;
        let mut emit = |out: &mut io::BufWriter<W>, ev: &Event<'_>| -> io::Result<()> {
            if !first {
                out.write_all(b",\n")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, ev).map_err(io::Error::other)
        };
        let meta = |name: &'static str, tid: u32, label: String| Event {
            name,
            ph: "M",
            ts: 0.0,
            dur: None,
            pid: 0,
            tid,
            s: None,
            cat: None,
            args: serde_json::json!({ "name": label }),
        };
        emit(
            &mut out,
            &meta("process_name", 0, "simulated machine".into()),
        )?;
        for cpu in 0..self.nr_cpus {
            emit(&mut out, &meta("thread_name", cpu, format!("CPU {cpu}")))?;
            emit(
                &mut out,
                &Event {
                    args: serde_json::json!({ "sort_index": cpu }),
                    ..meta("thread_sort_index", cpu, String::new())
                },
            )?;
        }
        emit(
            &mut out,
            &meta("thread_name", queues_tid, "shared queue and kernel".into()),
        )?;
        let mut name_buf = String::new();
        for r in &self.records {
            let ev = match *r {
                Record::Run {
                    cpu,
                    task,
                    start_ns,
                    end_ns,
                } => Event {
                    name: &self.task_names[task],
                    ph: "X",
                    ts: us(start_ns),
                    dur: Some(us(end_ns - start_ns)),
                    pid: 0,
                    tid: cpu,
                    s: None,
                    cat: Some("run"),
                    args: serde_json::Value::Null,
                },
                Record::Sched {
                    cpu,
                    start_ns,
                    end_ns,
                } => Event {
                    name: SCHEDULER_NAME,
                    ph: "X",
                    ts: us(start_ns),
                    dur: Some(us(end_ns - start_ns)),
                    pid: 0,
                    tid: cpu,
                    s: None,
                    cat: Some("scheduler"),
                    args: serde_json::Value::Null,
                },
                Record::Wake { cpu, task, t_ns } => {
                    name_buf.clear();
                    name_buf.push_str("wake ");
                    name_buf.push_str(&self.task_names[task]);
                    Event {
                        name: &name_buf,
                        ph: "i",
                        ts: us(t_ns),
                        dur: None,
                        pid: 0,
                        tid: cpu,
                        s: Some("t"),
                        cat: Some("wakeup"),
                        args: serde_json::Value::Null,
                    }
                }
                Record::Dispatch {
                    cpu,
                    task,
                    t_ns,
                    slice_ns,
                    kernel,
                } => {
                    name_buf.clear();
                    name_buf.push_str("dispatch ");
                    name_buf.push_str(&self.task_names[task]);
                    Event {
                        name: &name_buf,
                        ph: "i",
                        ts: us(t_ns),
                        dur: None,
                        pid: 0,
                        tid: cpu.unwrap_or(queues_tid),
                        s: Some("t"),
                        cat: Some("dispatch"),
                        args: serde_json::json!({
                            "slice_us": us(slice_ns),
                            "queue": if cpu.is_some() { "local" } else { "shared" },
                            "by": if kernel { "kernel fast path" } else { "policy" },
                        }),
                    }
                }
                Record::Runnable { t_ns, n } => Event {
                    name: "runnable",
                    ph: "C",
                    ts: us(t_ns),
                    dur: None,
                    pid: 0,
                    tid: 0,
                    s: None,
                    cat: None,
                    args: serde_json::json!({ "waiting": n }),
                },
            };
            emit(&mut out, &ev)?;
        }
        out.write_all(b"\n]}\n")?;
        out.flush()
    }

    /// The trace as a JSON string.
    pub fn to_json_string(&self) -> String {
        let mut buf = Vec::new();
        // Writing to memory cannot fail; the text is valid UTF-8 by construction.
        let _ = self.write_json(&mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
