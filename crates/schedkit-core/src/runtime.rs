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
                Err(BackendError::Full) => break,
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
        loop {
            if let Some(exit) = self.backend.exit_info() {
                return Ok(Some(exit));
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            self.step()?;
            self.backend.wait()?;
        }
    }
}
