//! The `schedkit` command: parses options and wires the crates together. No policy or
//! BPF logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_bench;
mod cmd_run;
mod cmd_sim;
mod cmd_workload;
mod monitor;

#[derive(Parser)]
#[command(
    name = "schedkit",
    version,
    about = "Write CPU scheduling policies in safe Rust and run them host-wide through sched_ext",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach a policy as the machine's scheduler (needs root and a sched_ext kernel).
    Run(cmd_run::RunArgs),
    /// List the policies that can be run, with one line each.
    Policies,
    /// Live statistics of the running schedkit scheduler.
    Monitor(cmd_run::MonitorArgs),
    /// Run workload scenarios for real on this machine.
    #[command(subcommand)]
    Workload(cmd_workload::WorkloadCommand),
    /// Simulate a scenario under one policy, without root or a sched_ext kernel.
    Sim(cmd_sim::SimArgs),
    /// Simulate a scenario under several policies and compare them side by side.
    Compare(cmd_sim::CompareArgs),
    /// Medians, ratios and a chart from scripts/bench-vm.sh's raw runs.
    #[command(hide = true)]
    BenchReport(cmd_bench::BenchReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cmd_run::run(args),
        Command::Policies => cmd_run::policies(),
        Command::Monitor(args) => cmd_run::monitor(args),
        Command::Workload(cmd) => cmd_workload::main(cmd),
        Command::Sim(args) => cmd_sim::sim(args),
        Command::Compare(args) => cmd_sim::compare(args),
        Command::BenchReport(args) => cmd_bench::bench_report(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One sentence (with its causes), no backtrace.
            eprintln!("schedkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
