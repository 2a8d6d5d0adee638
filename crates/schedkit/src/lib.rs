//! schedkit as a library: run a scheduling policy on the kernel, the registry of
//! policies the tools know, and the whole `schedkit` command line as a function for a
//! binary of your own.
//!
//! A policy is plain Rust against [`schedkit_core`] (see its [`Policy`] trait). To get
//! every tool for it, give its [`PolicyEntry`] to [`cli::main`]: that is all the
//! `main.rs` of a crate made by `schedkit new` does, and the `schedkit` binary is
//! `cli::main(&[])`.
//!
//! ```no_run
//! use schedkit_core::registry::{OptionKind, OptionValues, PolicyEntry, PolicyOption};
//! use schedkit_core::Policy;
//! use schedkit_policies::fifo::Fifo;
//!
//! fn build(o: &OptionValues) -> Result<Box<dyn Policy>, String> {
//!     Ok(Box::new(Fifo::new(o.u64("slice-us")? * 1000)))
//! }
//!
//! const MY_FIFO: PolicyEntry = PolicyEntry {
//!     name: "myfifo",
//!     about: "fifo under another name",
//!     options: &[PolicyOption {
//!         name: "slice-us",
//!         help: "time slice, microseconds",
//!         kind: OptionKind::U64 { default: 5000, min: 50, max: 1_000_000, unit: "us" },
//!     }],
//!     build,
//! };
//!
//! fn main() -> std::process::ExitCode {
//!     schedkit::cli::main(&[MY_FIFO])
//! }
//! ```
//!
//! Or, without the command line, [`run`] attaches a policy with everything
//! `schedkit run` does (checks, memory locking, restart on hotplug, signals, live
//! statistics and the monitor socket).
//!
//! [`Policy`]: schedkit_core::Policy
//! [`PolicyEntry`]: schedkit_core::registry::PolicyEntry

pub mod calibrate;
pub mod cli;
mod cmd_bench;
mod cmd_sim;
mod cmd_trace;
mod cmd_workload;
pub mod monitor;
mod new;
pub mod registry;
mod run;

pub use run::{run, RunOptions, RunOutcome, STATS_INTERVAL_S};
pub use schedkit_core::registry::{OptionKind, OptionValues, PolicyEntry, PolicyOption};
