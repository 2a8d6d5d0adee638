//! `schedkit run`, `schedkit policies`, `schedkit monitor`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    policy: Option<String>,
}

#[derive(clap::Args)]
pub struct MonitorArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}

pub fn policies() -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}

pub fn monitor(_args: MonitorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
