//! `schedkit sim` and `schedkit compare` (the simulator issue fills these in).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Workload spec (TOML).
    spec: std::path::PathBuf,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Workload spec (TOML).
    spec: std::path::PathBuf,
}

pub fn sim(_args: SimArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the simulator is not built yet")
}

pub fn compare(_args: CompareArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the simulator is not built yet")
}
