//! An in-memory backend for unit tests of policies and of the runtime: tasks are pushed
//! in by the test, decisions are recorded, idle CPUs and the clock are set by hand.

use std::collections::{HashMap, VecDeque};

use crate::{Backend, BackendError, Counters, Cpu, Decision, ExitInfo, Pid, QueuedTask, TaskEvent};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FakeBackend {
    nr_cpus: u32,
    now_ns: u64,
    events: VecDeque<TaskEvent>,
    idle: Vec<Cpu>,
    dispatched: Vec<Decision>,
    latest_generation: HashMap<Pid, u64>,
    capacity: Option<usize>,
    sent_this_step: usize,
    counters: Counters,
    exit: Option<ExitInfo>,
    last_held: u64,
    scheduler_cpu_ns: u64,
}

impl FakeBackend {
    pub fn new(nr_cpus: u32) -> Self {
        FakeBackend {
            nr_cpus,
            ..Default::default()
        }
    }

    /// Queues `task` for the next drain; its generation becomes the only valid one.
    pub fn push_task(&mut self, task: QueuedTask) {
        self.latest_generation.insert(task.pid, task.generation);
        self.events.push_back(TaskEvent::Queued(task));
    }

    /// Reports that `pid` exited.
    pub fn push_exit(&mut self, pid: Pid) {
        self.latest_generation.remove(&pid);
        self.events.push_back(TaskEvent::Exited(pid));
    }

    /// Marks `cpu` idle: the next [`Backend::select_idle_cpu`] may return it.
    pub fn set_idle(&mut self, cpu: Cpu) {
        if !self.idle.contains(&cpu) {
            self.idle.push(cpu);
        }
    }

    pub fn set_now(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    /// Sets what [`Backend::scheduler_cpu_ns`] reports.
    pub fn set_scheduler_cpu_ns(&mut self, ns: u64) {
        self.scheduler_cpu_ns = ns;
    }

    /// At most `n` decisions accepted per step; more get [`BackendError::Full`].
    pub fn set_capacity(&mut self, n: usize) {
        self.capacity = Some(n);
    }

    /// Makes the backend stop with `exit`.
    pub fn set_exit(&mut self, exit: ExitInfo) {
        self.exit = Some(exit);
    }

    /// Accepted, non-stale decisions, in the order they were sent.
    pub fn dispatched(&self) -> &[Decision] {
        &self.dispatched
    }

    /// Forgets the recorded decisions.
    pub fn take_dispatched(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.dispatched)
    }

    /// The held count reported at the end of the last step.
    pub fn last_held(&self) -> u64 {
        self.last_held
    }
}

impl Backend for FakeBackend {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn nr_cpus(&self) -> u32 {
        self.nr_cpus
    }

    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError> {
        let n = self.events.len();
        out.extend(self.events.drain(..));
        Ok(n)
    }

    fn nr_queued(&self) -> u64 {
        self.events.len() as u64
    }

    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        let i = self
            .idle
            .iter()
            .position(|&c| c == task.prev_cpu)
            .or(if self.idle.is_empty() { None } else { Some(0) })?;
        Some(self.idle.remove(i))
    }

    fn dispatch(&mut self, d: &Decision) -> Result<(), BackendError> {
        if self.capacity.is_some_and(|c| self.sent_this_step >= c) {
            return Err(BackendError::Full);
        }
        self.sent_this_step += 1;
        if self.latest_generation.get(&d.pid) != Some(&d.generation) {
            self.counters.cancelled += 1;
            return Ok(());
        }
        self.counters.user_dispatches += 1;
        self.dispatched.push(*d);
        Ok(())
    }

    fn step_done(&mut self, nr_held: u64) {
        self.sent_this_step = 0;
        self.last_held = nr_held;
    }

    fn wait(&mut self) -> Result<(), BackendError> {
        if self.events.is_empty() && self.exit.is_none() {
            self.exit = Some(ExitInfo {
                kind: ExitInfo::KIND_DONE,
                reason: "no more events".into(),
                ..Default::default()
            });
        }
        Ok(())
    }

    fn exit_info(&mut self) -> Option<ExitInfo> {
        self.exit.clone()
    }

    fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.nr_queued = self.events.len() as u64;
        c.nr_held = self.last_held;
        c
    }

    fn scheduler_cpu_ns(&self) -> u64 {
        self.scheduler_cpu_ns
    }
}
