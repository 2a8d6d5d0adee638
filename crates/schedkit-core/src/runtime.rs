//! The scheduling loop: drain queued tasks into the policy, take its decisions, send
//! them, report how many it holds. Allocation-free once warmed up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Backend, BackendError, Context, Counters, Decision, ExitInfo, Policy, TaskEvent};

/// Room reserved up front for task events drained in one step and for decisions the
/// backend could not take yet. Both grow if ever exceeded, but a machine would need
/// that many tasks becoming runnable between two steps.
const EVENT_CAPACITY: usize = 8192;

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
}

impl<P: Policy, B: Backend> Runtime<P, B> {
    pub fn new(policy: P, backend: B) -> Self {
        Runtime {
            policy,
            backend,
            events: Vec::with_capacity(EVENT_CAPACITY),
            pending: VecDeque::with_capacity(EVENT_CAPACITY),
        }
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
        c
    }

    /// One iteration of the loop.
    pub fn step(&mut self) -> Result<StepReport, BackendError> {
        self.events.clear();
        let drained = self.backend.drain(&mut self.events)?;
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
