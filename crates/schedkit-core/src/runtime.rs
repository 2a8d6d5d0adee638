//! The scheduling loop: drain queued tasks into the policy, take its decisions, send
//! them, report how many it holds. Allocation-free once warmed up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Backend, BackendError, Context, Counters, Decision, ExitInfo, Policy, TaskEvent};

/// Room reserved up front for task events drained in one step and for decisions the
/// backend could not take yet. Both grow if ever exceeded, but a machine would need
/// that many tasks becoming runnable between two steps.
const EVENT_CAPACITY: usize = 8192;

/// The scheduler's CPU time per task event is sampled once this many events have been
/// handled since the last sample: often enough to follow the load, rarely enough that
/// reading the clock costs nothing.
const TRIP_COST_SAMPLE_EVENTS: u64 = 256;

/// What one [`Runtime::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepReport {
    /// Task events taken from the backend.
    pub drained: usize,
    /// Decisions the backend accepted.
    pub dispatched: usize,
    /// Tasks still held: by the policy, or as decisions waiting for room.
    pub held: usize,
}

/// Drives a [`Policy`] against a [`Backend`].
pub struct Runtime<P, B> {
    policy: P,
    backend: B,
    events: Vec<TaskEvent>,
    /// Decisions the backend refused as full, sent first next step, in order.
    pending: VecDeque<Decision>,
    /// Moving average of the scheduler's CPU time per task event, ns.
    trip_cost_ns: u64,
    /// Task events handled, and the scheduler's CPU time, at the last sample (none
    /// before the first step: what the process spent before, loading the BPF program
    /// say, is not a trip's cost).
    events_seen: u64,
    sample: Option<(u64, u64)>,
    /// Decisions the backend refused as full (see `Counters::failed`).
    refused: u64,
}

impl<P: Policy, B: Backend> Runtime<P, B> {
    pub fn new(policy: P, backend: B) -> Self {
        Runtime {
            policy,
            backend,
            events: Vec::with_capacity(EVENT_CAPACITY),
            pending: VecDeque::with_capacity(EVENT_CAPACITY),
            trip_cost_ns: 0,
            events_seen: 0,
            sample: None,
            refused: 0,
        }
    }

    /// CPU time the scheduler spends on one task's trip through it (reading it,
    /// deciding, sending the decision), ns: a moving average of its own CPU time per
    /// task event, 0 until measured or when the backend cannot tell. Machine time a
    /// task costs on top of its own run each time it goes through user space.
    pub fn trip_cost_ns(&self) -> u64 {
        self.trip_cost_ns
    }

    /// Samples the scheduler's CPU time once enough events have gone through: the
    /// average over those events, folded into a moving average (weight 1/4).
    fn sample_trip_cost(&mut self) {
        let Some((events0, cpu0)) = self.sample else {
            self.sample = Some((self.events_seen, self.backend.scheduler_cpu_ns()));
            return;
        };
        let events = self.events_seen - events0;
        if events < TRIP_COST_SAMPLE_EVENTS {
            return;
        }
        let cpu = self.backend.scheduler_cpu_ns();
        let per_event = cpu.saturating_sub(cpu0) / events;
        self.trip_cost_ns = if self.trip_cost_ns == 0 {
            per_event
        } else {
            self.trip_cost_ns - self.trip_cost_ns / 4 + per_event / 4
        };
        self.sample = Some((self.events_seen, cpu));
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives back the policy and the backend.
    pub fn into_parts(self) -> (P, B) {
        (self.policy, self.backend)
    }

    /// Counters of the backend, with the number of held tasks filled in.
    pub fn counters(&self) -> Counters {
        let mut c = self.backend.counters();
        c.nr_held = (self.policy.nr_held() + self.pending.len()) as u64;
        c.trip_cost_ns = self.trip_cost_ns;
        c.failed = self.refused;
        c
    }

    /// One iteration of the loop.
    pub fn step(&mut self) -> Result<StepReport, BackendError> {
        self.events.clear();
        let drained = self.backend.drain(&mut self.events)?;
        self.events_seen += drained as u64;
        self.sample_trip_cost();
        for ev in &self.events {
            match ev {
                TaskEvent::Queued(task) => {
                    let held = self.policy.nr_held();
                    let mut ctx = Context::new(&mut self.backend, held);
                    self.policy.enqueue(task, &mut ctx);
                }
                TaskEvent::Exited(pid) => {
                    self.pending.retain(|d| d.pid != *pid);
                    self.policy.task_exit(*pid);
                }
            }
        }

        let mut dispatched = 0;
        while let Some(d) = self.pending.front() {
            match self.backend.dispatch(d) {
                Ok(()) => {
                    self.pending.pop_front();
                    dispatched += 1;
                }
                Err(BackendError::Full) => {
                    self.refused += 1;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if self.pending.is_empty() {
            loop {
                let held = self.policy.nr_held();
                let mut ctx = Context::new(&mut self.backend, held);
                let Some(d) = self.policy.dispatch(&mut ctx) else {
                    break;
                };
                match self.backend.dispatch(&d) {
                    Ok(()) => dispatched += 1,
                    Err(BackendError::Full) => {
                        self.refused += 1;
                        self.pending.push_back(d);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }

        let held = self.policy.nr_held() + self.pending.len();
        self.backend.step_done(held as u64);
        Ok(StepReport {
            drained,
            dispatched,
            held,
        })
    }

    /// Steps until the backend stops (returns why) or `stop` is set (returns `None`).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Option<ExitInfo>, BackendError> {
        self.run_with(stop, |_| {})
    }

    /// The scheduling loop, the one every runner uses (the real kernel, the
    /// simulator, tests): until the backend stops (returns why) or `stop` is set
    /// (returns `None`), step, call `after_step` (statistics, a progress bar: it must
    /// not block), and wait for more work.
    pub fn run_with<F>(
        &mut self,
        stop: &AtomicBool,
        mut after_step: F,
    ) -> Result<Option<ExitInfo>, BackendError>
    where
        F: FnMut(&Self),
    {
        loop {
            if let Some(exit) = self.backend.exit_info() {
                return Ok(Some(exit));
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            self.step()?;
            after_step(self);
            self.backend.wait()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeBackend;
    use crate::{Cpu, Pid, QueuedTask};

    /// The smallest policy: arrival order, any CPU, 1 us slices.
    #[derive(Default)]
    struct Queue(VecDeque<QueuedTask>);

    impl Policy for Queue {
        fn name(&self) -> &'static str {
            "queue"
        }
        fn enqueue(&mut self, task: &QueuedTask, _ctx: &mut Context<'_>) {
            self.0.push_back(*task);
        }
        fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
            let t = self.0.pop_front()?;
            Some(Decision::new(&t, 1000).on_cpu_or_any(ctx.select_idle_cpu(&t)))
        }
        fn task_exit(&mut self, pid: Pid) {
            self.0.retain(|t| t.pid != pid);
        }
        fn nr_held(&self) -> usize {
            self.0.len()
        }
    }

    fn runtime(fake: FakeBackend) -> Runtime<Queue, FakeBackend> {
        Runtime::new(Queue::default(), fake)
    }

    #[test]
    fn a_stale_generation_is_cancelled_by_the_backend() {
        let mut fake = FakeBackend::new(1);
        fake.push_task(QueuedTask::new(5, 1));
        // Re-queued before the first decision went out: generation 2 is current.
        fake.push_task(QueuedTask::new(5, 2));
        let mut rt = runtime(fake);
        rt.step().unwrap();
        let d = rt.backend().dispatched();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].generation, 2);
        assert_eq!(rt.counters().cancelled, 1);
    }

    #[test]
    fn exits_drop_held_tasks_and_pending_decisions() {
        let mut fake = FakeBackend::new(1);
        fake.set_capacity(0);
        fake.push_task(QueuedTask::new(1, 1));
        fake.push_task(QueuedTask::new(2, 1));
        let mut rt = runtime(fake);
        rt.step().unwrap();
        // Nothing could be sent: one decision waits in the runtime, one task in the policy.
        assert_eq!(rt.backend().last_held(), 2);
        assert_eq!(rt.counters().nr_held, 2);
        rt.backend_mut().push_exit(1);
        rt.backend_mut().push_exit(2);
        rt.step().unwrap();
        assert_eq!(rt.policy().nr_held(), 0);
        assert_eq!(rt.backend().last_held(), 0);
    }

    #[test]
    fn a_full_backend_keeps_decisions_and_sends_them_later_in_order() {
        let mut fake = FakeBackend::new(1);
        fake.set_capacity(2);
        for pid in 1..=5 {
            fake.push_task(QueuedTask::new(pid, 1));
        }
        let mut rt = runtime(fake);
        assert_eq!(rt.step().unwrap().dispatched, 2);
        assert_eq!(rt.counters().failed, 1);
        assert_eq!(rt.step().unwrap().dispatched, 2);
        assert_eq!(rt.step().unwrap().dispatched, 1);
        let pids: Vec<_> = rt.backend().dispatched().iter().map(|d| d.pid).collect();
        assert_eq!(pids, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn idle_cpus_are_claimed_once() {
        let mut fake = FakeBackend::new(4);
        fake.set_idle(Cpu(3));
        fake.push_task(QueuedTask::new(1, 1));
        fake.push_task(QueuedTask::new(2, 1));
        let mut rt = runtime(fake);
        rt.step().unwrap();
        let d = rt.backend().dispatched();
        assert_eq!(d[0].target, crate::CpuTarget::On(Cpu(3)));
        assert_eq!(d[1].target, crate::CpuTarget::Any);
    }

    #[test]
    fn run_with_calls_back_after_every_step_and_stops_when_asked() {
        let mut fake = FakeBackend::new(1);
        fake.push_task(QueuedTask::new(1, 1));
        let mut rt = runtime(fake);
        let mut seen = Vec::new();
        // The fake machine stops once it has no more events: one step here.
        let end = rt
            .run_with(&AtomicBool::new(false), |rt| {
                seen.push(rt.backend().dispatched().len())
            })
            .unwrap();
        assert_eq!(end.map(|e| e.kind), Some(ExitInfo::KIND_DONE));
        assert_eq!(seen, [1]);

        let mut rt = runtime(FakeBackend::new(1));
        rt.backend_mut().push_task(QueuedTask::new(2, 1));
        let stop = AtomicBool::new(true);
        assert_eq!(rt.run_with(&stop, |_| panic!("no step")).unwrap(), None);
        assert!(rt.backend().dispatched().is_empty());
    }

    #[test]
    fn run_returns_the_backends_exit() {
        let mut fake = FakeBackend::new(1);
        let exit = ExitInfo {
            kind: ExitInfo::KIND_ERROR_STALL,
            ..ExitInfo::default()
        };
        fake.set_exit(exit.clone());
        let mut rt = runtime(fake);
        assert_eq!(rt.run(&AtomicBool::new(false)).unwrap(), Some(exit));
    }

    #[test]
    fn the_runtime_measures_the_schedulers_cpu_time_per_task() {
        const SEC: u64 = 1_000_000_000;
        let mut fake = FakeBackend::new(1);
        // Spent before the loop started (loading, say): not a trip's cost.
        fake.set_scheduler_cpu_ns(5 * SEC);
        let mut rt = runtime(fake);
        let push = |rt: &mut Runtime<Queue, FakeBackend>, generation| {
            for pid in 1..=256 {
                rt.backend_mut().push_task(QueuedTask::new(pid, generation));
            }
        };
        // The first step only takes the reference sample.
        push(&mut rt, 1);
        rt.step().unwrap();
        assert_eq!(rt.trip_cost_ns(), 0);
        // 100 us of the scheduler's CPU time per task over the next 256 tasks.
        rt.backend_mut()
            .set_scheduler_cpu_ns(5 * SEC + 256 * 100_000);
        push(&mut rt, 2);
        rt.step().unwrap();
        assert_eq!(rt.trip_cost_ns(), 100_000);
        assert_eq!(rt.counters().trip_cost_ns, 100_000);
        // Then a moving average: 300 us per task moves it a quarter of the way.
        rt.backend_mut()
            .set_scheduler_cpu_ns(5 * SEC + 256 * 100_000 + 256 * 300_000);
        push(&mut rt, 3);
        rt.step().unwrap();
        assert_eq!(rt.trip_cost_ns(), 150_000);
    }
}
