//! Scheduling timelines: what ran where, who woke whom, and what a schedkit policy
//! decided, in one event model shared by real runs (`schedkit trace`, recorded from
//! the kernel's tracepoints and the dispatcher) and simulated ones (`schedkit sim
//! --trace`).
//!
//! A producer sends [`Event`]s in time order to a [`Sink`]: a file writer
//! ([`json::JsonWriter`], [`perfetto::PerfettoWriter`], chosen by
//! [`Format::from_path`]), the [`summary::SummaryBuilder`], or several at once.
//! Writers stream: memory stays bounded by the number of CPUs and threads, not by
//! the length of the trace.

pub mod event;
pub mod summary;
pub mod timeline;

pub use event::{Counter, CpuSlice, Event, Pid, Target, TraceInfo, TraceSource};

use std::io;

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
