//! `spread`: a deliberately careless policy, for the hardening tests. Each decision
//! names the next CPU in turn among every CPU the machine could ever have (the
//! possible ones, not only the online ones [`Context::nr_cpus`] covers), whatever the
//! task's affinity and whether that CPU is online. The dispatcher must bounce what it
//! cannot honour (offline, not allowed) to the shared queue, so nothing stalls.
//!
//! Built with `cargo build --release -p schedkit --example spread`; it is a complete
//! schedkit command line (`spread run spread`, `spread sim ...`), like a crate made by
//! `schedkit new`.

use std::collections::VecDeque;

use schedkit::{OptionValues, PolicyEntry};
use schedkit_core::{topology, Context, Cpu, Decision, Pid, Policy, PolicyStats, QueuedTask};

/// Slice of every decision: short, so that targets change often.
const SLICE_NS: u64 = 2_000_000;

struct Spread {
    queue: VecDeque<QueuedTask>,
    /// CPUs the decisions cycle through: every possible CPU, and every CPU below
    /// [`Context::nr_cpus`] if that is more.
    nr_targets: u32,
    next: u32,
    seq: u64,
}

impl Policy for Spread {
    fn name(&self) -> &'static str {
        "spread"
    }

    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.queue.push_back(*task);
    }

    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
        let task = self.queue.pop_front()?;
        let nr = self.nr_targets.max(ctx.nr_cpus()).max(1);
        let cpu = self.next % nr;
        self.next = self.next.wrapping_add(1);
        self.seq += 1;
        Some(
            Decision::new(&task, SLICE_NS)
                .on_cpu(Cpu(cpu))
                .vtime(self.seq),
        )
    }

    fn task_exit(&mut self, pid: Pid) {
        self.queue.retain(|t| t.pid != pid);
    }

    fn nr_held(&self) -> usize {
        self.queue.len()
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats::new(self.queue.len() as u64, SLICE_NS)
    }
}

fn build(_: &OptionValues) -> Result<Box<dyn Policy>, String> {
    Ok(Box::new(Spread {
        queue: VecDeque::with_capacity(16384),
        nr_targets: topology::nr_possible_cpus(),
        next: 0,
        seq: 0,
    }))
}

const SPREAD: PolicyEntry = PolicyEntry {
    name: "spread",
    about: "names every possible CPU in turn, online or not, allowed or not (a test of the dispatcher's bounces)",
    options: &[],
    build,
};

fn main() -> std::process::ExitCode {
    schedkit::cli::main(&[SPREAD])
}
