//! Property tests of the rustland policy driven through the real runtime loop and the
//! fake backend: whatever the stream of enqueues, exits and backend congestion, every
//! live task's latest enqueue is served exactly once and no state is left behind.

use std::collections::{HashMap, HashSet};

use proptest::collection::vec;
use proptest::prelude::*;
use schedkit_core::{fake::FakeBackend, Cpu, Policy, QueuedTask, Runtime, ENQ_WAKEUP};
use schedkit_policies::rustland::Rustland;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        pid: i32,
        weight: u32,
        d_nvcsw: u64,
        ran_ns: u64,
        wakeup: bool,
        dt_ns: u64,
    },
    Exit(i32),
    Idle(u32),
    /// One runtime step with at most this many decisions accepted.
    Step(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..=6i32, 1..=10_000u32, 0..3000u64, 0..30_000_000u64, any::<bool>(), 0..1_500_000_000u64)
            .prop_map(|(pid, weight, d_nvcsw, ran_ns, wakeup, dt_ns)| Op::Enqueue {
                pid, weight, d_nvcsw, ran_ns, wakeup, dt_ns,
            }),
        1 => (1..=6i32).prop_map(Op::Exit),
        1 => (0..2u32).prop_map(Op::Idle),
        3 => (0..4usize).prop_map(Op::Step),
    ]
}

proptest! {
    #[test]
    fn every_live_tasks_latest_enqueue_is_dispatched_exactly_once(
        ops in vec(op(), 1..300),
        percpu_local in any::<bool>(),
    ) {
        let policy = Rustland::default().with_percpu_local(percpu_local);
        let mut rt = Runtime::new(policy, FakeBackend::new(2));
        let mut generation = 0;
        let mut now = 0;
        // Per live pid: (sum_exec_runtime, nvcsw, latest generation).
        let mut live: HashMap<i32, (u64, u64, u64)> = HashMap::new();
        for op in ops {
            match op {
                Op::Enqueue { pid, weight, d_nvcsw, ran_ns, wakeup, dt_ns } => {
                    generation += 1;
                    now += dt_ns;
                    let t = live.entry(pid).or_insert((0, 0, 0));
                    t.0 += ran_ns;
                    t.1 += d_nvcsw;
                    t.2 = generation;
                    let task = QueuedTask {
                        prev_cpu: Cpu(pid as u32 % 2),
                        flags: if wakeup { ENQ_WAKEUP } else { 0 },
                        weight,
                        last_run_ns: ran_ns,
                        nvcsw: t.1,
                        sum_exec_runtime_ns: t.0,
                        ..QueuedTask::new(pid, generation)
                    };
                    rt.backend_mut().set_now(now);
                    rt.backend_mut().push_task(task);
                }
                Op::Exit(pid) => {
                    live.remove(&pid);
                    rt.backend_mut().push_exit(pid);
                }
                Op::Idle(cpu) => rt.backend_mut().set_idle(Cpu(cpu)),
                Op::Step(cap) => {
                    rt.backend_mut().set_capacity(cap);
                    rt.step().unwrap();
                    prop_assert!(rt.policy().nr_held() <= live.len());
                }
            }
        }

        rt.backend_mut().set_capacity(usize::MAX);
        for _ in 0..3 {
            rt.step().unwrap();
        }
        prop_assert_eq!(rt.policy().nr_held(), 0);
        prop_assert_eq!(rt.backend().last_held(), 0);

        let mut seen = HashSet::new();
        for d in rt.backend().dispatched() {
            prop_assert!(seen.insert((d.pid, d.generation)), "dispatched twice: {:?}", d);
            if percpu_local {
                prop_assert_eq!(d.target, schedkit_core::CpuTarget::On(Cpu(d.pid as u32 % 2)));
            }
        }
        for (pid, (_, _, generation)) in &live {
            prop_assert!(
                seen.contains(&(*pid, *generation)),
                "pid {} generation {} never dispatched", pid, generation
            );
        }
        prop_assert_eq!(rt.policy().stats().nr_tasks, live.len() as u64);
    }
}
