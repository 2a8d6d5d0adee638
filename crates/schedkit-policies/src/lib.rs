//! The scheduling policies shipped with schedkit.
//!
//! - [`fifo`]: first in, first out; the minimal example and the tutorial.
//! - [`rustland`]: earliest deadline first from vruntime and voluntary context-switch
//!   rate; the one to run on a desktop under load.
//!
//! [`by_name`] builds one from its command-line name and the common options.

use schedkit_core::Policy;

pub mod fifo;
pub mod rustland;

/// Options every policy understands; `None` means the policy's own default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Maximum (or fixed) time slice, ns.
    pub slice_ns: Option<u64>,
    /// Minimum time slice, ns (policies with variable slices).
    pub slice_min_ns: Option<u64>,
    /// Keep every task on the CPU it ran on last.
    pub percpu_local: bool,
}

/// The policies that can be run: name and one line about each.
pub const POLICIES: &[(&str, &str)] = &[
    (
        "rustland",
        "earliest deadline first from vruntime and voluntary context-switch rate; keeps interactive tasks responsive under load (the default)",
    ),
    (
        "fifo",
        "first in, first out with a fixed slice; the minimal example policy",
    ),
];

/// Default slice of the FIFO policy: 5 ms, short enough that a waiting task is not
/// held long behind hogs on a small machine, long enough to keep switching cheap.
pub const FIFO_SLICE_NS: u64 = 5_000_000;

/// Builds the policy called `name`, or `None` if there is no such policy.
pub fn by_name(name: &str, opts: &PolicyOptions) -> Option<Box<dyn Policy>> {
    match name {
        "rustland" => Some(Box::new(
            rustland::Rustland::new(
                opts.slice_ns.unwrap_or(rustland::RUSTLAND_SLICE_NS),
                opts.slice_min_ns.unwrap_or(rustland::RUSTLAND_SLICE_MIN_NS),
            )
            .with_percpu_local(opts.percpu_local),
        )),
        "fifo" => Some(Box::new(fifo::Fifo::new(
            opts.slice_ns.unwrap_or(FIFO_SLICE_NS),
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_policy_can_be_built_and_unknown_ones_cannot() {
        for (name, _) in POLICIES {
            let p = by_name(name, &PolicyOptions::default()).expect(name);
            assert_eq!(p.name(), *name);
        }
        assert!(by_name("nope", &PolicyOptions::default()).is_none());
    }

    #[test]
    fn by_name_passes_the_common_options_to_rustland() {
        use schedkit_core::{fake::FakeBackend, Context, Cpu, CpuTarget, QueuedTask};
        let opts = PolicyOptions {
            slice_ns: Some(8_000_000),
            slice_min_ns: Some(2_000_000),
            percpu_local: true,
        };
        let mut p = by_name("rustland", &opts).unwrap();
        let mut fake = FakeBackend::new(2);
        fake.set_idle(Cpu(0));
        for pid in 1..=8 {
            let task = QueuedTask {
                prev_cpu: Cpu(1),
                ..QueuedTask::new(pid, 1)
            };
            let held = p.nr_held();
            p.enqueue(&task, &mut Context::new(&mut fake, held));
        }
        let mut slices = Vec::new();
        loop {
            let held = p.nr_held();
            let Some(d) = p.dispatch(&mut Context::new(&mut fake, held)) else {
                break;
            };
            assert_eq!(d.target, CpuTarget::On(Cpu(1)));
            slices.push(d.slice_ns);
        }
        assert_eq!(slices.first(), Some(&2_000_000));
        assert_eq!(slices.last(), Some(&8_000_000));
    }
}
