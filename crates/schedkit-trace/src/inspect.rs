//! What a written trace holds, read back with this crate's own types: the CPUs that
//! ran something, the threads named, and how many runs, wake-ups, decisions and
//! lost events it records. `schedkit trace-check` prints it as JSON; the VM tests
//! use it to check real traces of both formats.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::json::{DECISIONS_TID, MACHINE_PID};
use crate::perfetto::{self, proto::track_event, DECISIONS_UUID};
use crate::{Format, TraceError};

/// A trace's contents, counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// "json" or "pftrace".
    pub format: String,
    /// CPUs with at least one run on their track.
    pub cpus: BTreeSet<u32>,
    /// Every thread name on a thread track.
    pub threads: BTreeSet<String>,
    /// Threads whose runs are marked as the user-space scheduler's.
    pub scheduler_threads: usize,
    /// Runs on the CPU tracks.
    pub slices: u64,
    /// Wake-ups.
    pub wakeups: u64,
    /// Decisions of the policy (not those the dispatcher took alone).
    pub decisions: u64,
    /// ... of which named a CPU (for rustland: the idle query found one).
    #[serde(default)]
    pub decisions_on_cpu: u64,
    /// Decisions the dispatcher took alone.
    pub kernel_decisions: u64,
    /// Events the recording lost, as the trace says.
    pub lost: u64,
}

/// Reads the trace at `path` (format by extension) and counts what it holds.
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, TraceError> {
    let path = path.as_ref();
    let format = Format::from_path(path)?;
    let read_err = |reason: io::Error| TraceError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(read_err)?;
    match format {
        Format::Json => inspect_json(BufReader::new(file)),
        Format::Perfetto => inspect_perfetto(BufReader::new(file)),
    }
    .map_err(read_err)
}

#[derive(Deserialize)]
struct JsonTrace {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<JsonEvent>,
}

#[derive(Deserialize)]
struct JsonEvent {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cat: Option<String>,
    #[serde(default)]
    ph: Option<String>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    tid: Option<u32>,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

fn inspect_json(r: impl io::Read) -> io::Result<Inspection> {
    let t: JsonTrace =
        serde_json::from_reader(r).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut out = Inspection {
        format: "json".into(),
        ..Default::default()
    };
    let mut sched = BTreeSet::new();
    for e in &t.trace_events {
        let (ph, cat) = (e.ph.as_deref(), e.cat.as_deref());
        let machine = e.pid == Some(MACHINE_PID);
        match ph {
            Some("M") if !machine && e.name.as_deref() == Some("thread_name") => {
                if let Some(n) = e
                    .args
                    .as_ref()
                    .and_then(|a| a.get("name"))
                    .and_then(|n| n.as_str())
                {
                    out.threads.insert(n.to_string());
                }
            }
            Some("X") if machine && e.tid.is_some_and(|t| t != DECISIONS_TID) => {
                out.slices += 1;
                out.cpus.insert(e.tid.unwrap_or(0));
                if cat == Some("scheduler") {
                    let pid = e.args.as_ref().and_then(|a| a.get("pid")).cloned();
                    sched.insert(pid.map(|p| p.to_string()).unwrap_or_default());
                }
            }
            Some("i") => match cat {
                Some("wakeup") => out.wakeups += 1,
                Some("decision") => {
                    let by = e
                        .args
                        .as_ref()
                        .and_then(|a| a.get("by"))
                        .and_then(|b| b.as_str());
                    if by == Some("kernel") {
                        out.kernel_decisions += 1;
                    } else {
                        out.decisions += 1;
                        let target = e.args.as_ref().and_then(|a| a.get("target"));
                        if target.is_some_and(|t| t.is_u64()) {
                            out.decisions_on_cpu += 1;
                        }
                    }
                }
                Some("lost") => {
                    out.lost += e
                        .args
                        .as_ref()
                        .and_then(|a| a.get("count"))
                        .and_then(|c| c.as_u64())
                        .unwrap_or(0);
                }
                _ => {}
            },
            _ => {}
        }
    }
    out.scheduler_threads = sched.len();
    Ok(out)
}

fn inspect_perfetto(r: impl io::Read) -> io::Result<Inspection> {
    let mut out = Inspection {
        format: "pftrace".into(),
        ..Default::default()
    };
    let mut cpu_of: HashMap<u64, u32> = HashMap::new();
    let mut sched = BTreeSet::new();
    perfetto::for_each_packet(r, |p| {
        if let Some(d) = &p.track_descriptor {
            if let Some(t) = &d.thread {
                if let Some(n) = &t.thread_name {
                    out.threads.insert(n.clone());
                }
            } else if d.process.is_none() {
                let cpu = d
                    .name
                    .as_deref()
                    .and_then(|n| n.strip_prefix("CPU "))
                    .and_then(|n| n.parse::<u32>().ok());
                if let (Some(uuid), Some(cpu)) = (d.uuid, cpu) {
                    cpu_of.insert(uuid, cpu);
                }
            }
        }
        let Some(e) = &p.track_event else {
            return Ok(());
        };
        let uuid = e.track_uuid.unwrap_or(0);
        let has_cat = |c: &str| e.categories.iter().any(|x| x == c);
        match e.r#type() {
            track_event::Type::SliceBegin => {
                if let Some(&cpu) = cpu_of.get(&uuid) {
                    out.slices += 1;
                    out.cpus.insert(cpu);
                    if has_cat("scheduler") {
                        sched.insert(e.name.clone().unwrap_or_default());
                    }
                }
            }
            track_event::Type::Instant => {
                if has_cat("wakeup") {
                    out.wakeups += 1;
                } else if has_cat("decision") && uuid == DECISIONS_UUID {
                    let by_kernel = e.debug_annotations.iter().any(|a| {
                        a.name.as_deref() == Some("by")
                            && a.string_value.as_deref() == Some("kernel")
                    });
                    if by_kernel {
                        out.kernel_decisions += 1;
                    } else {
                        out.decisions += 1;
                        let on_cpu = e
                            .debug_annotations
                            .iter()
                            .any(|a| a.name.as_deref() == Some("target") && a.uint_value.is_some());
                        if on_cpu {
                            out.decisions_on_cpu += 1;
                        }
                    }
                } else if has_cat("lost") {
                    out.lost += e
                        .debug_annotations
                        .iter()
                        .find(|a| a.name.as_deref() == Some("count"))
                        .and_then(|a| a.uint_value)
                        .unwrap_or(0);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    out.scheduler_threads = sched.len();
    Ok(out)
}
