//! `schedkit workload ...` (the workload issue fills this in).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum WorkloadCommand {
    /// Run a scenario on this machine, under whatever scheduler is attached.
    Run {
        /// Workload spec (TOML).
        spec: std::path::PathBuf,
    },
}

pub fn main(_cmd: WorkloadCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the workload executor is not built yet")
}
