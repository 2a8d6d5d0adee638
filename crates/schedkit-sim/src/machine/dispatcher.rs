//! The sched_ext model, [`SchedExt`]: the dispatcher's queues and fast path, the
//! user-space scheduler as a task costing CPU per decision, the watchdog, and the
//! [`schedkit_core::Backend`] through which a schedkit policy drives the machine.
//!
//! A task that becomes runnable goes, like on the real dispatcher, either straight to
//! a CPU (a waking task whose previous CPU is idle while nothing else waits: the
//! kernel-side fast path, counted as a kernel dispatch) or into the ring towards user
//! space. The user-space scheduler is a task of its own: when the ring has something it
//! needs a CPU, gets an idle one at once or else the next CPU that dispatches (ahead of
//! every queued task), and then spends `step_cost + per_task_cost × (tasks drained +
//! decisions sent)` on it. Its decisions go into the ring to the kernel when that time
//! is over, and reach the dispatch queues when a CPU next dispatches (`ops.dispatch`
//! drains that ring first): the scheduler's own CPU when it sleeps (nothing more in its
//! ring) or its 5 ms slice was found over at a tick, another CPU whose task blocks or
//! whose slice ends, an idle CPU kicked for a decision, or the dispatcher's timer.
//! A scheduler with more to do does not sleep, so its CPU does not dispatch. Dispatch
//! queues are a local one per CPU and one shared one, both ordered by the decision's
//! vtime.
//!
//! A running task is preempted only as on sched_ext: when its slice is found used up
//! at a scheduler tick (HZ = 250 by default), when its CPU is kicked with
//! `SCX_KICK_PREEMPT` (by a decision that may preempt, with a vtime earlier than the
//! running task's by more than its margin, that finds no idle CPU; one kick per run, as
//! the dispatcher's `running_vtime`), or when the tick finds the user-space scheduler
//! waiting for a CPU for [`SCHED_WAIT_NS`]. The CPU then dispatches; if it finds
//! something else to run, that runs and the task goes back to the policy, otherwise
//! the task keeps its CPU with a refilled slice (`SCX_SLICE_DFL`), as the kernel keeps
//! the last runnable task (the dispatcher does not set `SCX_OPS_ENQ_LAST`). The
//! watchdog ends the run when a runnable task has waited longer than the timeout.
//!
//! Simplifications, each a choice rather than an accident:
//! - The scheduler's step is not cut: when a tick finds its slice over, it gives up
//!   its CPU when the step ends. A kick is handled right after the CPU that sent it
//!   has taken its own pick; the CPU applying decisions is never kicked or seen as
//!   idle by them.
//! - The fast path only considers the waking task's previous CPU; there is no
//!   sync-wakeup or cache-domain placement.
//! - The dispatcher's timer is checked at ticks.
//! - Switching to the user-space scheduler costs a context switch
//!   ([`SimConfig::context_switch_ns`], plus [`SimConfig::mm_switch_ns`] as it is a
//!   process of its own) unless it takes its CPU again at once for
//!   another step; its steps then cost `step_cost_ns` plus `per_task_cost_ns` per
//!   task drained and per decision sent. Tasks pay their own switches (see
//!   `engine`).

use std::collections::{BTreeSet, VecDeque};

use schedkit_core::{
    BackendError, Counters, Cpu, CpuTarget, Decision, ExitInfo, Pid, QueuedTask, TaskEvent,
    ENQ_WAKEUP,
};

use super::engine::{tick_ns, Cur, Engine, Ev, Mm, State, Tid, PID_BASE};
use super::{Machine, ModelStats, SchedulerModel};
use crate::trace::Record;
use crate::SimConfig;

/// Room in the ring of decisions from user space to the kernel, per step: like the
/// real ring, it is finite, so a policy that keeps deciding is told `Full` (and the
/// runtime retries next step) instead of growing memory without bound.
const DISPATCH_RING_CAPACITY: usize = 4096;

/// The shortest slice the dispatcher gives (`SLICE_MIN_NS`): a preempted task with
/// less left goes back to the policy.
const SLICE_MIN_NS: u64 = 50_000;

/// The kernel's default slice for tasks the BPF side dispatches by itself.
const SCX_SLICE_DFL_NS: u64 = 20_000_000;

/// The dispatcher's `default_slice_ns`: the slice of tasks it dispatches by itself
/// (the idle fast path) and of the user-space scheduler.
const DEFAULT_SLICE_NS: u64 = 5_000_000;

/// The longest slice the dispatcher lets a decision give (`SLICE_MAX_NS`).
const SLICE_MAX_NS: u64 = 100_000_000;

/// How often the dispatcher's timer kicks the idle CPUs while tasks wait for user
/// space (`TIMER_BUSY_NS`), and when none does (`TIMER_IDLE_NS`).
const TIMER_BUSY_NS: u64 = 20_000_000;
const TIMER_IDLE_NS: u64 = 100_000_000;

/// A tick that finds the user-space scheduler waiting for a CPU this long ends one
/// running task's slice for it (`USERSCHED_WAIT_NS` in the dispatcher).
const SCHED_WAIT_NS: u64 = 1_000_000;

/// The user-space scheduler's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sched {
    /// Nothing to do.
    Idle,
    /// Has work and waits for a CPU.
    Needed,
    /// On this CPU until its `SchedDone` event.
    Running(u32),
}

/// What a CPU found to run when it dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Sched,
    Task(Tid),
}

/// A task's sched_ext state.
#[derive(Debug, Clone, Copy, Default)]
struct ScxTask {
    generation: u64,
    /// Slice of the latest dispatch, and how much of it was used.
    slice_ns: u64,
    slice_used_ns: u64,
    dsq_vtime: u64,
    /// When the task last became runnable (for the watchdog).
    runnable_since_ns: u64,
    /// The policy's standing instruction for its wake-ups, as the dispatcher keeps it.
    standing: Option<StandingOrder>,
    /// Whether its current place (vtime, slice) came from the policy.
    decided: bool,
}

/// A standing instruction being applied (see [`schedkit_core::Standing`]).
#[derive(Debug, Clone, Copy)]
struct StandingOrder {
    until_ns: u64,
    vtime: u64,
    used_ns: u64,
    budget_ns: u64,
    slice_ns: u64,
    margin_ns: Option<u64>,
}

/// A CPU's sched_ext state.
#[derive(Debug, Clone, Default)]
struct ScxCpu {
    /// Claimed by `select_idle_cpu` for a decision in flight.
    claimed: bool,
    /// The local dispatch queue: (vtime, arrival, task).
    local: BTreeSet<(u64, u64, Tid)>,
    /// The dispatcher's `running_vtime`: the vtime of the task that started running
    /// here, or 0 when nothing may be preempted here for a decision (nothing runs, the
    /// user-space scheduler runs, or the task was kicked once already: a task kept
    /// running after a kick is not started again, so it is not kicked again).
    running_vtime: u64,
    /// Kicked with `SCX_KICK_PREEMPT`, not handled yet; `Some(keep)`, see
    /// [`SchedExt::preempt_cpu`].
    kick: Option<bool>,
}

/// The sched_ext model. See the module documentation.
pub(crate) struct SchedExt {
    /// Per task, by [`Tid`].
    tasks: Vec<ScxTask>,
    /// Per CPU.
    cpus: Vec<ScxCpu>,
    /// Tasks that were ever alive and may still be (compacted by the watchdog).
    live: Vec<Tid>,
    next_watchdog_ns: u64,
    dsq_seq: u64,
    ring: VecDeque<(Tid, u64)>,
    exits: Vec<Pid>,
    shared: BTreeSet<(u64, u64, Tid)>,
    /// Decisions of the step in progress, sent when it ends.
    pending: Vec<Decision>,
    /// Decisions sent, in the ring to the kernel: applied when a CPU next dispatches.
    sent: Vec<Decision>,
    /// The CPU running `ops.dispatch`, while it applies decisions: neither idle nor a
    /// CPU to kick (it is choosing what runs next anyway).
    dispatching: Option<u32>,
    sched: Sched,
    sched_epoch: u64,
    /// The scheduler holds a CPU and a step is due.
    sched_ready: bool,
    sched_last_cpu: u32,
    sched_start_ns: u64,
    /// When the scheduler's current slice began, and whether a tick found it used up.
    sched_slice_start_ns: u64,
    sched_slice_over: bool,
    /// When the dispatcher's timer next kicks the idle CPUs.
    next_timer_ns: u64,
    /// Tasks that kept their CPU with a refilled slice when it found nothing else to
    /// run.
    kept_running: u64,
    /// When the scheduler last started waiting for a CPU.
    sched_needed_ns: u64,
    /// Where and when the scheduler's last step ended: taking that CPU again at that
    /// instant is no switch.
    sched_left: Option<(u32, u64)>,
    /// Slices ended for the scheduler by the tick.
    sched_preemptions: u64,
    sched_until_ns: u64,
    held: u64,
    work_this_step: u64,
    counters: Counters,
    steps: u64,
    /// Decisions received from the policy.
    decisions: u64,
}

/// How often the watchdog looks for stalled tasks.
fn watchdog_interval(cfg: &SimConfig) -> u64 {
    (cfg.watchdog_timeout_ns / 4).clamp(tick_ns(cfg), 1_000_000_000)
}

impl SchedulerModel for SchedExt {
    fn new(cfg: &SimConfig) -> SchedExt {
        SchedExt {
            tasks: Vec::with_capacity(1024),
            cpus: (0..cfg.nr_cpus).map(|_| ScxCpu::default()).collect(),
            live: Vec::new(),
            next_watchdog_ns: watchdog_interval(cfg),
            dsq_seq: 0,
            ring: VecDeque::with_capacity(1024),
            exits: Vec::with_capacity(64),
            shared: BTreeSet::new(),
            pending: Vec::with_capacity(1024),
            sent: Vec::with_capacity(1024),
            dispatching: None,
            sched: Sched::Idle,
            sched_epoch: 0,
            sched_ready: false,
            sched_last_cpu: 0,
            sched_start_ns: 0,
            sched_slice_start_ns: 0,
            sched_slice_over: false,
            next_timer_ns: TIMER_IDLE_NS,
            kept_running: 0,
            sched_needed_ns: 0,
            sched_left: None,
            sched_preemptions: 0,
            sched_until_ns: 0,
            held: 0,
            work_this_step: 0,
            counters: Counters::default(),
            steps: 0,
            decisions: 0,
        }
    }

    fn start(&mut self, e: &mut Engine) {
        // The scheduler starts on CPU 0 with every initial task in its ring.
        self.sched = Sched::Running(0);
        self.sched_ready = true;
        e.cpus[0].cur = Cur::Sched;
    }

    fn task_added(&mut self, tid: Tid) {
        debug_assert_eq!(tid, self.tasks.len());
        self.tasks.push(ScxTask::default());
        self.live.push(tid);
    }

    fn make_runnable(&mut self, e: &mut Engine, tid: Tid, flags: u64) {
        self.tasks[tid].runnable_since_ns = e.now;
        self.enqueue(e, tid, flags);
    }

    fn pick_next(&mut self, e: &mut Engine, cpu: u32) {
        self.pick(e, cpu);
    }

    fn stop_task(&mut self, e: &mut Engine, cpu: u32) -> Tid {
        let tid = e.stop_task(cpu);
        self.cpus[cpu as usize].running_vtime = 0;
        // The stretch that just ended counts against the slice, and against the
        // budget of a standing instruction.
        let ran = e.tasks[tid].last_run_ns;
        let t = &mut self.tasks[tid];
        t.slice_used_ns += ran;
        if let Some(o) = &mut t.standing {
            o.used_ns += ran;
        }
        tid
    }

    fn block(&mut self, _e: &mut Engine, _cpu: u32, tid: Tid, exit: bool) {
        if exit {
            self.exits.push(PID_BASE + tid as Pid);
        }
    }

    fn tick(&mut self, e: &mut Engine) -> Option<ExitInfo> {
        self.slice_tick(e);
        self.watchdog(e)
    }

    fn slice_end(&mut self, _e: &mut Engine, _cpu: u32) {
        // Never set: sched_ext slices end at the tick (or when the policy kicks).
    }

    fn sched_done(&mut self, e: &mut Engine, epoch: u64) {
        if epoch == self.sched_epoch {
            self.step_over(e);
        }
    }

    fn close_scheduler_run(&mut self, e: &mut Engine, cpu: u32) {
        self.trace_sched_run(e, cpu);
    }

    fn stats(&self) -> ModelStats {
        ModelStats {
            counters: self.counters,
            steps: self.steps,
            decisions: self.decisions,
            sched_preemptions: self.sched_preemptions,
            kept_running: self.kept_running,
        }
    }
}

impl SchedExt {
    fn cpu_is_idle(&self, e: &Engine, cpu: u32) -> bool {
        let c = &self.cpus[cpu as usize];
        e.cpus[cpu as usize].cur == Cur::Idle && !c.claimed && c.local.is_empty()
    }

    fn enqueue(&mut self, e: &mut Engine, tid: Tid, flags: u64) {
        let prev = e.tasks[tid].prev_cpu;
        let nothing_waits = self.ring.is_empty()
            && self.held == 0
            && self.pending.is_empty()
            && self.sent.is_empty()
            && self.shared.is_empty();
        if flags & ENQ_WAKEUP != 0
            && e.cfg.kernel_fast_path
            && nothing_waits
            && e.tasks[tid].may_run_on(prev)
            && self.cpu_is_idle(e, prev)
        {
            // The dispatcher's fast path: straight to the idle CPU it ran on.
            self.counters.kernel_dispatches += 1;
            let t = &mut self.tasks[tid];
            t.decided = false;
            t.slice_ns = DEFAULT_SLICE_NS;
            t.slice_used_ns = 0;
            self.insert_local(e, prev, tid, 0, true, false);
            self.pick(e, prev);
            return;
        }
        if flags & ENQ_WAKEUP != 0 && self.standing_dispatch(e, tid) {
            return;
        }
        self.tasks[tid].generation += 1;
        e.set_state(tid, State::Ring);
        self.ring.push_back((tid, flags));
        self.sched_wake(e);
    }

    /// A waking task with a live standing instruction is dispatched as the dispatcher
    /// does it: to its previous CPU or another one if idle, else to the shared queue
    /// by its vtime (advanced by the CPU time used since), preempting if allowed.
    fn standing_dispatch(&mut self, e: &mut Engine, tid: Tid) -> bool {
        let Some(o) = self.tasks[tid].standing else {
            return false;
        };
        if e.now >= o.until_ns || o.used_ns >= o.budget_ns {
            self.tasks[tid].standing = None;
            return false;
        }
        let weight = u64::from(e.tasks[tid].weight.max(1));
        let vtime = o.vtime.saturating_add(o.used_ns * 100 / weight);
        self.tasks[tid].generation += 1;
        self.counters.standing_dispatches += 1;
        let t = &mut self.tasks[tid];
        t.decided = true;
        t.slice_ns = o.slice_ns;
        t.slice_used_ns = 0;
        t.dsq_vtime = vtime;
        let prev = e.tasks[tid].prev_cpu;
        let n = e.cpus.len() as u32;
        let idle = std::iter::once(prev)
            .chain((0..n).filter(|&c| c != prev))
            .find(|&c| c < n && e.tasks[tid].may_run_on(c) && self.cpu_is_idle(e, c));
        if let Some(c) = idle {
            self.insert_local(e, c, tid, vtime, false, o.margin_ns.is_some());
            self.pick(e, c);
            return true;
        }
        self.insert_shared(e, tid, vtime);
        self.trace_dispatch(e, None, tid, vtime, false, o.margin_ns.is_some());
        if let Some(margin) = o.margin_ns {
            self.preempt_for(e, tid, vtime.saturating_add(margin), true);
            self.handle_kicks(e);
        }
        true
    }

    fn insert_local(
        &mut self,
        e: &mut Engine,
        cpu: u32,
        tid: Tid,
        vtime: u64,
        kernel: bool,
        preempt: bool,
    ) {
        self.dsq_seq += 1;
        self.cpus[cpu as usize]
            .local
            .insert((vtime, self.dsq_seq, tid));
        e.set_state(tid, State::Dsq);
        self.trace_dispatch(e, Some(cpu), tid, vtime, kernel, preempt);
    }

    /// Puts `tid` in the shared queue by `vtime` (after the tasks with the same vtime).
    fn insert_shared(&mut self, e: &mut Engine, tid: Tid, vtime: u64) {
        self.dsq_seq += 1;
        self.shared.insert((vtime, self.dsq_seq, tid));
        e.set_state(tid, State::Dsq);
    }

    fn trace_dispatch(
        &self,
        e: &mut Engine,
        cpu: Option<u32>,
        tid: Tid,
        vtime: u64,
        kernel: bool,
        preempt: bool,
    ) {
        if let Some(tr) = &mut e.trace {
            tr.records.push(Record::Dispatch {
                cpu,
                task: tid,
                t_ns: e.now,
                slice_ns: self.tasks[tid].slice_ns,
                vtime,
                kernel,
                preempt,
            });
        }
    }

    /// The scheduler has work: it wants a CPU, an idle one if there is one.
    fn sched_wake(&mut self, e: &mut Engine) {
        if self.sched != Sched::Idle {
            return;
        }
        self.sched = Sched::Needed;
        self.sched_needed_ns = e.now;
        if let Some(c) = self
            .cpus_from_sched_last(e)
            .find(|&c| self.cpu_is_idle(e, c))
        {
            self.pick(e, c);
        }
    }

    /// Every CPU, starting from the one the scheduler ran on last.
    fn cpus_from_sched_last(&self, e: &Engine) -> impl Iterator<Item = u32> {
        let n = e.cpus.len() as u32;
        let first = self.sched_last_cpu;
        (0..n).map(move |i| (first + i) % n)
    }

    /// `cpu` is kicked to preempt (`SCX_KICK_PREEMPT`): the slice of the task running
    /// there ends at once and the CPU dispatches. If it finds something else to run,
    /// that runs and the task goes back to the policy, as at slice expiry; if not, the
    /// task keeps its CPU with a refilled slice, as the kernel keeps the last runnable
    /// task (see [`SchedExt::slice_over`]).
    ///
    /// With `keep` (a preemption for a wake-up placed by a standing instruction), a
    /// task the policy placed with slice left goes back to the shared queue by its
    /// vtime (advanced by the run it just had) with the rest of its slice, without a
    /// trip, as on the dispatcher.
    fn preempt_cpu(&mut self, e: &mut Engine, cpu: u32, keep: bool) {
        let drained = self.drain_decisions(e, cpu);
        let Some(next) = self.dispatch_next(e, cpu) else {
            self.keep_running(e, cpu);
            self.after_dispatch(e, cpu, drained);
            return;
        };
        let tid = self.stop_task(e, cpu);
        // The kernel runs what the CPU found first, then enqueues the task it took off.
        self.run_next(e, cpu, next);
        let t = &mut self.tasks[tid];
        let left = t.slice_ns.saturating_sub(t.slice_used_ns);
        if keep && t.decided && left >= SLICE_MIN_NS {
            self.counters.preempted_kept += 1;
            t.slice_ns = left;
            t.slice_used_ns = 0;
            t.runnable_since_ns = e.now;
            // Its vtime moves on by the run it just had, as a vruntime.
            let weight = u64::from(e.tasks[tid].weight.max(1));
            t.dsq_vtime += e.tasks[tid].last_run_ns * 100 / weight;
            let vtime = t.dsq_vtime;
            self.insert_shared(e, tid, vtime);
        } else {
            self.make_runnable(e, tid, 0);
        }
        self.after_dispatch(e, cpu, drained);
    }

    /// The slice of the task running on `cpu` was found used up at a tick: the CPU
    /// dispatches, and the task goes back to the policy only if the CPU found
    /// something else to run. Otherwise it keeps running with a refilled slice
    /// (`SCX_SLICE_DFL`), without a trip: the kernel keeps running the last runnable
    /// task unless the scheduler sets `SCX_OPS_ENQ_LAST`, which the dispatcher does
    /// not (tasks waiting for the policy are parked where no CPU looks).
    fn slice_over(&mut self, e: &mut Engine, cpu: u32, tid: Tid) {
        let drained = self.drain_decisions(e, cpu);
        match self.dispatch_next(e, cpu) {
            None => self.keep_running(e, cpu),
            Some(next) => {
                self.stop_task(e, cpu);
                self.run_next(e, cpu, next);
                self.make_runnable(e, tid, 0);
            }
        }
        self.after_dispatch(e, cpu, drained);
    }

    /// The task running on `cpu` goes on with a new default slice from now.
    fn keep_running(&mut self, e: &Engine, cpu: u32) {
        let Cur::Task(tid) = e.cpus[cpu as usize].cur else {
            return;
        };
        let t = &mut self.tasks[tid];
        t.slice_ns = t.slice_used_ns + (e.now - e.tasks[tid].run_start_ns) + SCX_SLICE_DFL_NS;
        self.kept_running += 1;
    }

    /// `cpu`, if idle, dispatches: it drains the decisions the scheduler has sent and
    /// runs what it finds (see [`SchedExt::dispatch_next`]).
    fn pick(&mut self, e: &mut Engine, cpu: u32) {
        if e.cpus[cpu as usize].cur != Cur::Idle {
            return;
        }
        let drained = self.drain_decisions(e, cpu);
        if let Some(next) = self.dispatch_next(e, cpu) {
            self.run_next(e, cpu, next);
        }
        self.after_dispatch(e, cpu, drained);
    }

    /// Applies the decisions the scheduler has sent (its ring to the kernel), as
    /// `ops.dispatch` does first on whichever CPU runs it. Returns whether there were
    /// any.
    fn drain_decisions(&mut self, e: &mut Engine, cpu: u32) -> bool {
        if self.sent.is_empty() {
            if self.pending.is_empty() {
                // No decision is in flight: every claim is over.
                for c in &mut self.cpus {
                    c.claimed = false;
                }
            }
            return false;
        }
        self.dispatching = Some(cpu);
        let mut sent = std::mem::take(&mut self.sent);
        for d in sent.drain(..) {
            self.apply(e, &d);
        }
        self.sent = sent;
        self.dispatching = None;
        if self.pending.is_empty() {
            for c in &mut self.cpus {
                c.claimed = false;
            }
        }
        true
    }

    /// What `cpu` runs next, as `ops.dispatch` finds it, taken off its queue: the
    /// waiting user-space scheduler, else the first task of the CPU's local queue,
    /// else the first task of the shared queue that may run there.
    fn dispatch_next(&mut self, e: &Engine, cpu: u32) -> Option<Next> {
        if self.sched == Sched::Needed {
            return Some(Next::Sched);
        }
        let c = &mut self.cpus[cpu as usize];
        if let Some(&first) = c.local.first() {
            c.local.remove(&first);
            return Some(Next::Task(first.2));
        }
        let found = self
            .shared
            .iter()
            .find(|&&(_, _, t)| e.tasks[t].may_run_on(cpu))
            .copied()?;
        self.shared.remove(&found);
        Some(Next::Task(found.2))
    }

    /// Puts what [`SchedExt::dispatch_next`] found on `cpu`, which must be idle.
    fn run_next(&mut self, e: &mut Engine, cpu: u32, next: Next) {
        let Next::Task(tid) = next else {
            self.cpus[cpu as usize].running_vtime = 0;
            self.run_sched(e, cpu);
            return;
        };
        self.cpus[cpu as usize].running_vtime = self.tasks[tid].dsq_vtime;
        e.run_task(cpu, tid);
    }

    /// The waiting user-space scheduler gets `cpu`, which must be idle.
    fn run_sched(&mut self, e: &mut Engine, cpu: u32) {
        let now = e.now;
        let c = &mut e.cpus[cpu as usize];
        c.account(now);
        c.cur = Cur::Sched;
        self.sched = Sched::Running(cpu);
        self.sched_ready = true;
        self.sched_last_cpu = cpu;
        self.sched_start_ns = now;
        self.sched_slice_start_ns = now;
        self.sched_slice_over = false;
        let switch = if self.sched_left == Some((cpu, now)) {
            0
        } else if c.mm != Mm::Scheduler {
            e.cfg.context_switch_ns + e.cfg.mm_switch_ns
        } else {
            e.cfg.context_switch_ns
        };
        c.mm = Mm::Scheduler;
        self.sched_until_ns = now + switch;
    }

    /// After `cpu` dispatched: decisions it applied kicked the idle CPUs (which
    /// dispatch in turn), and those that may preempt and found no idle CPU kick one.
    fn after_dispatch(&mut self, e: &mut Engine, cpu: u32, drained: bool) {
        if drained {
            let n = e.cpus.len() as u32;
            for i in 1..n {
                let c = (cpu + i) % n;
                if e.cpus[c as usize].cur == Cur::Idle {
                    self.pick(e, c);
                }
            }
        }
        self.handle_kicks(e);
    }

    /// Records on the timeline the scheduler's run on `cpu`, from its start to now.
    fn trace_sched_run(&self, e: &mut Engine, cpu: u32) {
        let now = e.now;
        if let Some(tr) = &mut e.trace {
            if now > self.sched_start_ns {
                tr.records.push(Record::Sched {
                    cpu,
                    start_ns: self.sched_start_ns,
                    end_ns: now,
                });
            }
        }
    }

    /// The scheduler's step is over: its decisions are in its ring to the kernel.
    /// With more to do (its ring from the kernel is not empty), it does not sleep (its
    /// wait returns at once): it keeps its CPU and starts another step, and its
    /// decisions wait there until a CPU dispatches; unless its own slice was found
    /// used up at a tick, and then its CPU dispatches, and gives the scheduler's place
    /// to what it found, if anything. With nothing to do it sleeps, and its CPU
    /// dispatches.
    fn step_over(&mut self, e: &mut Engine) {
        let Sched::Running(cpu) = self.sched else {
            return;
        };
        let now = e.now;
        self.sent.append(&mut self.pending);
        if !self.ring.is_empty() {
            if !std::mem::take(&mut self.sched_slice_over) {
                self.sched_ready = true;
                return;
            }
            let drained = self.drain_decisions(e, cpu);
            let Some(next) = self.dispatch_next(e, cpu) else {
                // Nothing else to run here: it keeps its CPU with a new slice.
                self.sched_slice_start_ns = now;
                self.sched_ready = true;
                self.after_dispatch(e, cpu, drained);
                return;
            };
            self.leave_cpu(e, cpu);
            self.sched = Sched::Needed;
            self.sched_needed_ns = now;
            self.run_next(e, cpu, next);
            self.after_dispatch(e, cpu, drained);
            return;
        }
        self.sched_slice_over = false;
        self.leave_cpu(e, cpu);
        self.sched = Sched::Idle;
        self.pick(e, cpu);
    }

    /// The scheduler leaves `cpu`, which is left idle.
    fn leave_cpu(&mut self, e: &mut Engine, cpu: u32) {
        let now = e.now;
        let c = &mut e.cpus[cpu as usize];
        c.account(now);
        c.cur = Cur::Idle;
        self.sched_left = Some((cpu, now));
        self.trace_sched_run(e, cpu);
    }

    /// A decision for `tid` that may preempt found no idle CPU: as the dispatcher's
    /// `preempt_for`, kick (`SCX_KICK_PREEMPT`) the allowed CPU whose running task has
    /// the largest vtime, if larger than `vtime` (the decision's plus its margin). The
    /// kick is chosen now, when the decision is applied, and handled once the CPU
    /// applying it has taken its own pick: the kicked CPU keeps its task if it then
    /// finds nothing else to run (see [`SchedExt::preempt_cpu`]).
    fn preempt_for(&mut self, e: &Engine, tid: Tid, vtime: u64, keep: bool) {
        let victim = (0..e.cpus.len() as u32)
            .filter(|&c| self.dispatching != Some(c) && e.tasks[tid].may_run_on(c))
            .map(|c| (self.cpus[c as usize].running_vtime, c))
            .filter(|&(v, _)| v > vtime)
            .max();
        if let Some((_, cpu)) = victim {
            self.kick_preempt(cpu, keep);
        }
    }

    /// Kicks `cpu` to preempt the task running there (one kick per running task).
    fn kick_preempt(&mut self, cpu: u32, keep: bool) {
        let c = &mut self.cpus[cpu as usize];
        c.running_vtime = 0;
        c.kick = Some(keep);
        self.counters.preemptions += 1;
    }

    /// The CPU a preempting decision for `tid` takes, if it is the task's previous
    /// one: not the CPU applying the decision, allowed, and running a task later than
    /// `vtime` (the decision's plus its margin), as the dispatcher's
    /// `prev_cpu_to_preempt`.
    fn prev_cpu_to_preempt(&self, e: &Engine, tid: Tid, vtime: u64) -> Option<u32> {
        let prev = e.tasks[tid].prev_cpu;
        (self.dispatching != Some(prev)
            && (prev as usize) < e.cpus.len()
            && e.tasks[tid].may_run_on(prev)
            && self.cpus[prev as usize].running_vtime > vtime)
            .then_some(prev)
    }

    /// Handles the kicks not handled yet: each kicked CPU still running a task
    /// dispatches (see [`SchedExt::preempt_cpu`]).
    fn handle_kicks(&mut self, e: &mut Engine) {
        while let Some(cpu) = self.cpus.iter().position(|c| c.kick.is_some()) {
            let keep = self.cpus[cpu].kick.take().unwrap_or(false);
            if let Cur::Task(_) = e.cpus[cpu].cur {
                self.preempt_cpu(e, cpu as u32, keep);
            }
        }
    }

    /// Applies one of the policy's decisions, when a CPU dispatches after the step
    /// that sent it.
    fn apply(&mut self, e: &mut Engine, d: &Decision) {
        let tid = (d.pid - PID_BASE) as usize;
        let ok = d.pid >= PID_BASE
            && tid < e.tasks.len()
            && e.tasks[tid].state == State::Held
            && self.tasks[tid].generation == d.generation;
        if let CpuTarget::On(Cpu(c)) = d.target {
            // The claim ends with the decision that named the CPU.
            if let Some(x) = self.cpus.get_mut(c as usize) {
                x.claimed = false;
            }
        }
        if !ok {
            self.counters.cancelled += 1;
            return;
        }
        self.counters.user_dispatches += 1;
        let t = &mut self.tasks[tid];
        t.slice_ns = d.slice_ns.clamp(SLICE_MIN_NS, SLICE_MAX_NS);
        t.slice_used_ns = 0;
        t.dsq_vtime = d.vtime;
        t.decided = true;
        t.standing = d.standing.map(|st| StandingOrder {
            until_ns: e.now.saturating_add(st.ttl_ns),
            vtime: d.vtime,
            used_ns: 0,
            budget_ns: st.cpu_budget_ns,
            slice_ns: t.slice_ns,
            margin_ns: d.preempt_margin_ns,
        });
        match d.target {
            CpuTarget::On(Cpu(c)) if (c as usize) < e.cpus.len() && e.tasks[tid].may_run_on(c) => {
                self.insert_local(e, c, tid, d.vtime, false, d.preempt_margin_ns.is_some());
            }
            target => {
                if matches!(target, CpuTarget::On(_)) {
                    self.counters.bounced += 1;
                }
                // An idle CPU is kicked to take it (and dispatches after this one).
                // Otherwise a decision that may preempt goes to its previous CPU's own
                // queue and preempts there, if that CPU runs a later task (as the
                // dispatcher's `prev_cpu_to_preempt`); failing that, it waits in the
                // shared queue and one CPU running a later task is kicked to preempt.
                let limit = d.preempt_margin_ns.map(|m| d.vtime.saturating_add(m));
                let limit = limit.filter(|_| {
                    !(0..e.cpus.len() as u32).any(|c| {
                        self.dispatching != Some(c)
                            && e.tasks[tid].may_run_on(c)
                            && self.cpu_is_idle(e, c)
                    })
                });
                match limit.map(|l| (l, self.prev_cpu_to_preempt(e, tid, l))) {
                    Some((_, Some(cpu))) => {
                        self.insert_local(e, cpu, tid, d.vtime, false, true);
                        self.kick_preempt(cpu, false);
                    }
                    no_victim => {
                        let preempt = d.preempt_margin_ns.is_some();
                        self.insert_shared(e, tid, d.vtime);
                        self.trace_dispatch(e, None, tid, d.vtime, false, preempt);
                        if let Some((limit, None)) = no_victim {
                            self.preempt_for(e, tid, limit, false);
                        }
                    }
                }
            }
        }
    }

    /// At the tick: running tasks whose slice is used up go back to the policy, and
    /// the user-space scheduler gets its periodic wake-up and, if it has waited too
    /// long for a CPU, one.
    fn slice_tick(&mut self, e: &mut Engine) {
        for cpu in 0..e.cpus.len() as u32 {
            let Cur::Task(tid) = e.cpus[cpu as usize].cur else {
                continue;
            };
            let t = &self.tasks[tid];
            let used = t.slice_used_ns + (e.now - e.tasks[tid].run_start_ns);
            if used >= t.slice_ns {
                self.slice_over(e, cpu, tid);
            }
        }
        if let Sched::Running(_) = self.sched {
            // The scheduler's own slice: it gives up its CPU when its step ends.
            if e.now - self.sched_slice_start_ns >= DEFAULT_SLICE_NS {
                self.sched_slice_over = true;
            }
        }
        if e.now >= self.next_timer_ns {
            // The dispatcher's timer: idle CPUs look at the queues (and drain the
            // decisions sent), often while tasks wait for user space.
            let waiting = !self.ring.is_empty()
                || self.held > 0
                || !self.sent.is_empty()
                || !self.pending.is_empty();
            if waiting || self.sched == Sched::Needed || !self.shared.is_empty() {
                for cpu in 0..e.cpus.len() as u32 {
                    self.pick(e, cpu);
                }
            }
            self.next_timer_ns = e.now
                + if waiting {
                    TIMER_BUSY_NS
                } else {
                    TIMER_IDLE_NS
                };
        }
        if self.held > 0 {
            // The scheduler holds tasks: its periodic wake-up lets it try again.
            self.sched_wake(e);
        }
        if self.sched == Sched::Needed && e.now - self.sched_needed_ns >= SCHED_WAIT_NS {
            // It has waited too long for a CPU: the first CPU found running a task
            // (from the one it ran on last) ends that task's slice for it.
            if let Some(cpu) = self
                .cpus_from_sched_last(e)
                .find(|&c| matches!(e.cpus[c as usize].cur, Cur::Task(_)))
            {
                self.sched_preemptions += 1;
                self.preempt_cpu(e, cpu, false);
            }
        }
    }

    /// The sched_ext watchdog: how the run ends if a runnable task has waited longer
    /// than the timeout.
    fn watchdog(&mut self, e: &Engine) -> Option<ExitInfo> {
        if e.now < self.next_watchdog_ns {
            return None;
        }
        self.next_watchdog_ns = e.now + watchdog_interval(&e.cfg);
        let timeout = e.cfg.watchdog_timeout_ns;
        let mut worst: Option<(u64, Tid)> = None;
        let tasks = &e.tasks;
        self.live.retain(|&t| tasks[t].state != State::Exited);
        for &tid in &self.live {
            let t = &e.tasks[tid];
            if matches!(t.state, State::Ring | State::Held | State::Dsq) {
                let waited = e.now - self.tasks[tid].runnable_since_ns;
                if waited >= timeout && worst.is_none_or(|(w, _)| waited > w) {
                    worst = Some((waited, tid));
                }
            }
        }
        let (waited, tid) = worst?;
        let t = &e.tasks[tid];
        Some(ExitInfo {
            kind: ExitInfo::KIND_ERROR_STALL,
            exit_code: 0,
            reason: "runnable task stall".into(),
            message: format!(
                "{}[{}] failed to run for {:.3}s (watchdog timeout {:.3}s)",
                t.name,
                PID_BASE + tid as Pid,
                waited as f64 / 1e9,
                timeout as f64 / 1e9
            ),
        })
    }

    fn queued_task(&self, e: &Engine, tid: Tid, flags: u64) -> QueuedTask {
        let t = &e.tasks[tid];
        let x = &self.tasks[tid];
        QueuedTask {
            pid: PID_BASE + tid as Pid,
            comm: t.comm,
            prev_cpu: Cpu(t.prev_cpu),
            nr_cpus_allowed: t.nr_allowed,
            flags,
            weight: t.weight,
            vtime: x.dsq_vtime,
            last_run_ns: t.last_run_ns,
            run_since_sleep_ns: t.run_since_sleep_ns,
            nvcsw: t.nvcsw,
            sum_exec_runtime_ns: t.sum_exec_ns,
            generation: x.generation,
        }
    }
}

impl schedkit_core::Backend for Machine<SchedExt> {
    fn now_ns(&self) -> u64 {
        self.engine.now
    }

    fn nr_cpus(&self) -> u32 {
        self.engine.cpus.len() as u32
    }

    fn drain(&mut self, out: &mut Vec<TaskEvent>) -> Result<usize, BackendError> {
        let (e, s) = (&mut self.engine, &mut self.model);
        let mut n = 0;
        for pid in s.exits.drain(..) {
            out.push(TaskEvent::Exited(pid));
            n += 1;
        }
        while let Some((tid, flags)) = s.ring.pop_front() {
            e.set_state(tid, State::Held);
            out.push(TaskEvent::Queued(s.queued_task(e, tid, flags)));
            n += 1;
        }
        s.work_this_step += n as u64;
        Ok(n)
    }

    fn nr_queued(&self) -> u64 {
        // As on the kernel: on their way to the policy, or dispatched and not running.
        let s = &self.model;
        let in_dsqs: usize = s.shared.len() + s.cpus.iter().map(|c| c.local.len()).sum::<usize>();
        (s.ring.len() + in_dsqs) as u64
    }

    fn select_idle_cpu(&mut self, task: &QueuedTask) -> Option<Cpu> {
        let tid = usize::try_from(task.pid - PID_BASE).ok()?;
        let t = self.engine.tasks.get(tid)?;
        let prev = t.prev_cpu;
        let n = self.engine.cpus.len() as u32;
        let cpu = (0..n)
            .map(|i| (prev + i) % n)
            .find(|&c| t.may_run_on(c) && self.model.cpu_is_idle(&self.engine, c))?;
        self.model.cpus[cpu as usize].claimed = true;
        Some(Cpu(cpu))
    }

    fn dispatch(&mut self, decision: &Decision) -> Result<(), BackendError> {
        let s = &mut self.model;
        if s.pending.len() >= DISPATCH_RING_CAPACITY {
            return Err(BackendError::Full);
        }
        s.pending.push(*decision);
        s.work_this_step += 1;
        s.decisions += 1;
        Ok(())
    }

    fn step_done(&mut self, nr_held: u64) {
        let (e, s) = (&mut self.engine, &mut self.model);
        s.held = nr_held;
        s.steps += 1;
        s.sched_ready = false;
        let cost = e.cfg.step_cost_ns + e.cfg.per_task_cost_ns * s.work_this_step;
        s.work_this_step = 0;
        if let Sched::Running(_) = s.sched {
            s.sched_until_ns = s.sched_until_ns.max(e.now) + cost;
            s.sched_epoch += 1;
            let (t, epoch) = (s.sched_until_ns, s.sched_epoch);
            e.push(t, Ev::SchedDone { epoch });
        }
    }

    fn wait(&mut self) -> Result<(), BackendError> {
        while self.engine.exit.is_none() && !self.model.sched_ready {
            self.process_next();
        }
        Ok(())
    }

    fn exit_info(&mut self) -> Option<ExitInfo> {
        self.engine.exit.clone()
    }

    fn counters(&self) -> Counters {
        let s = &self.model;
        let mut c = s.counters;
        c.nr_queued = s.ring.len() as u64;
        c.nr_held = s.held;
        c.nr_running = self
            .engine
            .cpus
            .iter()
            .filter(|c| matches!(c.cur, Cur::Task(_)))
            .count() as u64;
        c
    }

    fn scheduler_cpu_ns(&self) -> u64 {
        // Accounted up to the scheduler's last switch; its step in progress, if any,
        // counts when it ends.
        self.engine.cpus.iter().map(|c| c.sched_ns).sum()
    }
}
