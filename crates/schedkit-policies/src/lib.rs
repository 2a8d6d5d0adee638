//! The scheduling policies shipped with schedkit.
//!
//! - [`fifo`]: first in, first out; the minimal example and the tutorial.
//! - [`rustland`]: earliest deadline first from vruntime and voluntary context-switch
//!   rate; the one to run on a desktop under load.
//!
//! Each has a registry entry ([`ENTRIES`]): its name, its options and how to build it,
//! which is all `schedkit run`, `sim` and `compare` need to know about it.

use schedkit_core::registry::{OptionKind, OptionValues, PolicyEntry, PolicyOption, MAX_SLICE_US};
use schedkit_core::Policy;

pub mod fifo;
pub mod rustland;

/// The shipped policies, the default one first.
pub const ENTRIES: &[PolicyEntry] = &[RUSTLAND, FIFO];

/// Default slice of the FIFO policy: 5 ms, short enough that a waiting task is not
/// held long behind hogs on a small machine, long enough to keep switching cheap.
pub const FIFO_SLICE_NS: u64 = 5_000_000;

/// A slice option in microseconds, from 50 us (shorter ones cost more in switches
/// than they give) to [`MAX_SLICE_US`].
const fn slice_option(name: &'static str, help: &'static str, default_ns: u64) -> PolicyOption {
    PolicyOption {
        name,
        help,
        kind: OptionKind::U64 {
            default: default_ns / 1000,
            min: 50,
            max: MAX_SLICE_US,
            unit: "us",
        },
    }
}

/// `fifo`: see [`fifo`].
pub const FIFO: PolicyEntry = PolicyEntry {
    name: "fifo",
    about: "first in, first out with a fixed slice; the minimal example policy",
    options: &[slice_option(
        "slice-us",
        "time slice, microseconds",
        FIFO_SLICE_NS,
    )],
    build: build_fifo,
};

fn build_fifo(o: &OptionValues) -> Result<Box<dyn Policy>, String> {
    Ok(Box::new(fifo::Fifo::new(o.u64("slice-us")? * 1000)))
}

/// `rustland`: see [`rustland`].
pub const RUSTLAND: PolicyEntry = PolicyEntry {
    name: "rustland",
    about: "earliest deadline first from vruntime and voluntary context-switch rate; keeps interactive tasks responsive under load (the default)",
    options: &[
        slice_option(
            "slice-us",
            "maximum time slice (with few tasks waiting), microseconds",
            rustland::RUSTLAND_SLICE_NS,
        ),
        slice_option(
            "slice-us-min",
            "minimum time slice (under load), microseconds; also how far behind a running task must be for a waking one to preempt it",
            rustland::RUSTLAND_SLICE_MIN_NS,
        ),
        PolicyOption {
            name: "percpu-local",
            help: "keep every task on the CPU it ran on last",
            kind: OptionKind::Flag,
        },
        PolicyOption {
            name: "credit-full-rate",
            help: "wake-ups a second from which a task gets the whole latency credit (fewer: less, on a log scale); at 128 a 30 fps video falls behind, at 4 a game under a build more often does",
            kind: OptionKind::U64 {
                default: rustland::CREDIT_FULL_RATE,
                min: 1,
                max: 1000,
                unit: "wake-ups/s",
            },
        },
        PolicyOption {
            name: "standing",
            help: "let tasks that wake 100 times a second or more skip the trip through the policy for one minimum slice of CPU time (more ping-pong round trips, more audio periods missed)",
            kind: OptionKind::Flag,
        },
    ],
    build: build_rustland,
};

fn build_rustland(o: &OptionValues) -> Result<Box<dyn Policy>, String> {
    let (max, min) = (o.u64("slice-us")?, o.u64("slice-us-min")?);
    if min > max {
        // The other one at its default is the usual cause: say which was given.
        return Err(format!(
            "--slice-us-min ({min} us) must not exceed --slice-us ({max} us)"
        ));
    }
    Ok(Box::new(
        rustland::Rustland::new(max * 1000, min * 1000)
            .with_percpu_local(o.flag("percpu-local")?)
            .with_credit_full_rate(o.u64("credit-full-rate")?)
            .with_standing(o.flag("standing")?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_valid_and_builds_a_policy_of_its_name_with_its_defaults() {
        for e in ENTRIES {
            e.validate().unwrap();
            let p = e.build_default().expect(e.name);
            assert_eq!(p.name(), e.name);
        }
    }

    #[test]
    fn rustland_refuses_a_minimum_slice_above_the_maximum() {
        let e = RUSTLAND
            .build_with(&[("slice-us", Some("1000")), ("slice-us-min", Some("2000"))])
            .err()
            .unwrap();
        assert!(e.contains("--slice-us-min (2000 us)"), "{e}");
        assert!(FIFO.build_with(&[("percpu-local", None)]).is_err());
    }

    #[test]
    fn the_rustland_entry_passes_its_options_to_the_policy() {
        use schedkit_core::{fake::FakeBackend, Context, Cpu, CpuTarget, QueuedTask};
        let mut p = RUSTLAND
            .build_with(&[
                ("slice-us", Some("8000")),
                ("slice-us-min", Some("2000")),
                ("percpu-local", None),
            ])
            .unwrap();
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
