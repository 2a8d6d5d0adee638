//! Scheduling timelines: what ran where, who woke whom, and what a schedkit policy
//! decided, in one event model shared by real runs (`schedkit trace`, recorded from
//! the kernel's tracepoints and the dispatcher) and simulated ones (`schedkit sim
//! --trace`).
//!
//! A producer sends [`Event`]s in time order to a [`Sink`]: a file writer
//! ([`json::JsonWriter`], [`perfetto::PerfettoWriter`], chosen by
//! [`Format::from_path`]), the [`summary::SummaryBuilder`], or several at once
//! ([`Tee`]). Writers stream: memory stays bounded by the number of CPUs and
//! threads, not by the length of the trace.
//!
//! ```
//! use schedkit_trace::{Event, Sink, TraceInfo, TraceSource};
//!
//! let mut out = Vec::new();
//! let mut w = schedkit_trace::json::JsonWriter::new(&mut out);
//! w.begin(&TraceInfo {
//!     source: TraceSource::Simulated,
//!     nr_cpus: 1,
//!     scheduler: "fifo".into(),
//!     start_ns: 0,
//! })?;
//! w.event(&Event::Switch { ts_ns: 10, cpu: 0, prev: 0, prev_runnable: false, next: 7 })?;
//! w.finish(1_000)?;
//! drop(w);
//! let (nr_cpus, slices) = schedkit_trace::json::read_cpu_slices(&out[..])?;
//! assert_eq!((nr_cpus, slices.len(), slices[0].pid), (1, 1, 7));
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod event;
pub mod json;
pub mod perfetto;
mod tracker;

pub use event::{Counter, CpuSlice, Event, Pid, Target, TraceInfo, TraceSource};

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// Something that takes a trace's events in time order.
pub trait Sink {
    /// Called once, before any event.
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()>;
    /// One event; `ts_ns` never goes backwards between calls.
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    /// Called once at the end; `end_ns` is the time the recording stopped (every
    /// task still on a CPU ran until then). Flushes the output.
    fn finish(&mut self, end_ns: u64) -> io::Result<()>;
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        (**self).begin(info)
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        (**self).event(ev)
    }
    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        (**self).finish(end_ns)
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        (**self).begin(info)
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        (**self).event(ev)
    }
    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        (**self).finish(end_ns)
    }
}

/// Every sink of the list gets every call, in order. See [`Tee`] for the error
/// behaviour.
impl<S: Sink> Sink for Vec<S> {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        all(self.iter_mut().map(|s| s.begin(info)))
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        all(self.iter_mut().map(|s| s.event(ev)))
    }
    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        all(self.iter_mut().map(|s| s.finish(end_ns)))
    }
}

/// Calls every sink (the iterator is consumed whole) and returns the first error.
fn all(results: impl Iterator<Item = io::Result<()>>) -> io::Result<()> {
    let mut first = Ok(());
    for r in results {
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// One stream of events feeding two sinks: a file writer and a summary, say.
///
/// Both sinks get every call even when the first one fails (a full disk does not
/// stop the summary); the first error is returned.
#[derive(Debug, Default)]
pub struct Tee<A, B>(pub A, pub B);

impl<A: Sink, B: Sink> Sink for Tee<A, B> {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        let a = self.0.begin(info);
        let b = self.1.begin(info);
        a.and(b)
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        let a = self.0.event(ev);
        let b = self.1.event(ev);
        a.and(b)
    }
    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        let a = self.0.finish(end_ns);
        let b = self.1.finish(end_ns);
        a.and(b)
    }
}

/// What went wrong choosing, writing or reading a trace file. Each message is one
/// sentence naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file name does not say which format to use.
    #[error(
        "cannot tell the trace format of {}: the file name must end in .json (Chrome JSON) or in .pftrace, .perfetto-trace or .pb (Perfetto)",
        .path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// The file could not be created.
    #[error("cannot write the trace to {}: {reason}", .path.display())]
    Create { path: PathBuf, reason: io::Error },
    /// The file could not be opened or is not a trace of its format.
    #[error("cannot read the trace {}: {reason}", .path.display())]
    Read { path: PathBuf, reason: io::Error },
}

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Chrome's trace-event JSON ([`json`]).
    Json,
    /// Perfetto's protobuf trace ([`perfetto`]).
    Perfetto,
}

impl Format {
    /// The format a file name asks for: `.json` is [`Format::Json`]; `.pftrace`,
    /// `.perfetto-trace` and `.pb` are [`Format::Perfetto`] (case does not matter).
    pub fn from_path(path: &Path) -> Result<Format, TraceError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => Ok(Format::Json),
            Some("pftrace" | "perfetto-trace" | "pb") => Ok(Format::Perfetto),
            _ => Err(TraceError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Perfetto => "pftrace",
        }
    }
}

/// Creates `path` and returns a writer of the format its name asks for (see
/// [`Format::from_path`]), buffered. The format is checked before the file is
/// created, so a bad name leaves nothing behind.
pub fn create_writer(path: impl AsRef<Path>) -> Result<Box<dyn Sink + Send>, TraceError> {
    let path = path.as_ref();
    let format = Format::from_path(path)?;
    let file = File::create(path).map_err(|reason| TraceError::Create {
        path: path.to_path_buf(),
        reason,
    })?;
    let out = BufWriter::with_capacity(1 << 16, file);
    Ok(match format {
        Format::Json => Box::new(json::JsonWriter::new(out)),
        Format::Perfetto => Box::new(perfetto::PerfettoWriter::new(out)),
    })
}

/// Reads back what a timeline draws from a trace written by this crate, in either
/// format (chosen by the file name): the number of CPUs and every stretch a thread
/// ran on one, sorted by CPU then start time.
pub fn read_cpu_slices(path: impl AsRef<Path>) -> Result<(u32, Vec<CpuSlice>), TraceError> {
    let path = path.as_ref();
    let format = Format::from_path(path)?;
    let read_err = |reason| TraceError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(read_err)?);
    match format {
        Format::Json => json::read_cpu_slices(file),
        Format::Perfetto => perfetto::read_cpu_slices(file),
    }
    .map_err(read_err)
}
