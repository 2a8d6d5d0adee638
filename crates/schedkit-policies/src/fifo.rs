//! # FIFO: the smallest useful schedkit policy
//!
//! Tasks run in the order they became runnable, each for a fixed time slice, on an
//! idle CPU when one is free and otherwise on whichever CPU frees up first. That is
//! the whole policy, and this file is meant to be read as the tutorial for writing one.
//!
//! A policy implements [`Policy`]: the runtime hands it each task that became runnable
//! ([`Policy::enqueue`]), then asks it for decisions ([`Policy::dispatch`]) until it
//! returns `None`. It never talks to the kernel itself: everything it needs (the clock,
//! an idle CPU) comes through the [`Context`], which is why the same code runs on a
//! real kernel, in the simulator and in unit tests.
//!
//! Where it falls short: a CPU hog that is runnable all the time re-enters the queue
//! behind everyone else after each slice, so it is fair in turns but blind to latency;
//! an interactive task that wakes up waits for every task ahead of it.
//!
//! ```
//! use schedkit_core::{fake::FakeBackend, QueuedTask, Runtime};
//! use schedkit_policies::fifo::Fifo;
//!
//! let mut machine = FakeBackend::new(4);
//! machine.push_task(QueuedTask::new(1, 0));
//! machine.push_task(QueuedTask::new(2, 0));
//! let mut rt = Runtime::new(Fifo::new(5_000_000), machine);
//! rt.step().unwrap();
//! let order: Vec<_> = rt.backend().dispatched().iter().map(|d| d.pid).collect();
//! assert_eq!(order, [1, 2]);
//! ```

use std::collections::VecDeque;

use schedkit_core::{Context, Decision, Policy, PolicyStats, QueuedTask};

/// The FIFO policy. See the module documentation.
pub struct Fifo {
    /// Tasks waiting, oldest first. Capacity is reserved up front: the scheduling loop
    /// should not allocate.
    queue: VecDeque<QueuedTask>,
    slice_ns: u64,
    /// Arrival counter, sent as the decision's vtime: the kernel side keeps tasks from
    /// different batches in this order too.
    seq: u64,
}

impl Fifo {
    /// A FIFO giving every task `slice_ns` nanoseconds.
    pub fn new(slice_ns: u64) -> Self {
        Fifo {
            queue: VecDeque::with_capacity(4096),
            slice_ns,
            seq: 0,
        }
    }
}

impl Policy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
        self.queue.push_back(*task);
    }

    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
        let task = self.queue.pop_front()?;
        self.seq += 1;
        // An idle CPU (preferably the one the task last ran on, whose caches are warm)
        // if there is one; otherwise the first CPU to free up. The vtime keeps arrival
        // order on the kernel side too; no preemption margin: first come, first
        // served, a newcomer never displaces a running task.
        let idle = ctx.select_idle_cpu(&task);
        Some(
            Decision::new(&task, self.slice_ns)
                .on_cpu_or_any(idle)
                .vtime(self.seq),
        )
    }

    fn task_exit(&mut self, pid: schedkit_core::Pid) {
        // Normally the kernel reports an exit only for a task that is not queued; be
        // safe anyway and forget it.
        self.queue.retain(|t| t.pid != pid);
    }

    fn nr_held(&self) -> usize {
        self.queue.len()
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats::new(self.queue.len() as u64, self.slice_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schedkit_core::{fake::FakeBackend, Cpu, CpuTarget, Runtime};

    fn task(pid: i32, prev_cpu: u32) -> QueuedTask {
        QueuedTask {
            prev_cpu: Cpu(prev_cpu),
            ..QueuedTask::new(pid, 1)
        }
    }

    #[test]
    fn fifo_dispatches_in_arrival_order() {
        let mut fake = FakeBackend::new(2);
        for pid in [7, 3, 9, 1] {
            fake.push_task(task(pid, 0));
        }
        let mut rt = Runtime::new(Fifo::new(1000), fake);
        let report = rt.step().unwrap();
        assert_eq!(report.dispatched, 4);
        let d = rt.backend().dispatched();
        assert_eq!(d.iter().map(|d| d.pid).collect::<Vec<_>>(), [7, 3, 9, 1]);
        assert!(d.windows(2).all(|w| w[0].vtime < w[1].vtime));
        assert!(d.iter().all(|d| d.slice_ns == 1000));
    }

    #[test]
    fn fifo_uses_any_cpu_without_an_idle_cpu_and_the_idle_one_otherwise() {
        let mut fake = FakeBackend::new(4);
        fake.set_idle(Cpu(3));
        fake.push_task(task(1, 3));
        fake.push_task(task(2, 3));
        let mut rt = Runtime::new(Fifo::new(1000), fake);
        rt.step().unwrap();
        let d = rt.backend().dispatched();
        assert_eq!(d[0].target, CpuTarget::On(Cpu(3)));
        // CPU 3 was claimed by the first task: nothing idle is left.
        assert_eq!(d[1].target, CpuTarget::Any);
    }
}
