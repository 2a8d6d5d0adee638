//! A model of the kernel's default scheduler, EEVDF ("earliest eligible virtual
//! deadline first"), as the baseline every policy is compared with. It runs inside the
//! simulated kernel: no user-space scheduler, no decision cost. In the simulator it is
//! the `Eevdf` scheduler model (the `SchedulerModel` trait in `machine`), which keeps
//! the runqueues and each task's EEVDF state.
//!
//! What it models:
//!
//! - **Weighted virtual time.** A running task's vruntime grows by its run time scaled
//!   by `1024 / weight` (the kernel's nice-to-weight table), so heavier tasks age slower.
//! - **Eligibility by lag.** Each runqueue's average vruntime `V` is the weighted mean
//!   over its runnable tasks; a task is eligible when its vruntime is at most `V` (it
//!   is owed service, lag ≥ 0).
//! - **Earliest virtual deadline first.** Each task's deadline is its vruntime plus its
//!   slice in virtual time (`base_slice × 1024 / weight`); among eligible tasks the
//!   earliest deadline runs. The base slice is the kernel's 0.75 ms × (1 + ilog2(CPUs)),
//!   CPUs capped at 8. A new task starts at `V` with half a virtual slice.
//! - **Slice expiry at the tick** (HZ = 250): when the running task's vruntime passes
//!   its deadline it gets a new deadline and the CPU picks again. With
//!   `SimConfig::hrtick` (the kernel's HRTICK feature, the VM profile's choice) a
//!   timer ends the slice when the task has run one base slice since it was picked,
//!   as the VM's traces show (under EEVDF, runs of CPU hogs and of the game end 1.4 to
//!   1.6 ms after they start, at any phase of the 4 ms tick).
//! - **Run to parity** (on by default, as in the kernel): once picked, a task keeps its
//!   CPU until it uses its slice or stops being eligible.
//! - **Wake-up preemption**: a waking task preempts the running one when it would be
//!   picked now (run to parity permitting), and a wake-up finds a running task's
//!   exhausted slice at once rather than at the next tick. Under the lazy preemption
//!   model (`SimConfig::preempt_lazy`, the default of kernels built with
//!   CONFIG_PREEMPT_LAZY, such as the VM's) that preemption waits for the next tick,
//!   as it does for a task running in user space.
//! - **Lag across sleep and migration**: a task keeps its lag (clamped to the kernel's
//!   limit of max(2 slices, 1 tick) in virtual time) when it sleeps and when it moves to
//!   another CPU; on return it is placed at `V - lag`, scaled for the load it joins.
//!   Negative lag is forgiven at the rate `V` advances while the task sleeps, which is
//!   what the kernel's delayed dequeue achieves by keeping such a task queued (and
//!   unpicked) until it is eligible again. With `SimConfig::delay_dequeue` (the VM
//!   profile's choice) that is modelled as the kernel does it: the sleeping task
//!   stays in its queue and in `V`, is dequeued when it would be picked, and a task
//!   that wakes before then goes on with the vruntime it has (DELAY_ZERO: at `V` if
//!   it became eligible meanwhile).
//! - **Per-CPU runqueues with simple balancing**: a waking task goes to its previous
//!   CPU if idle, else any idle CPU it may use, else its previous CPU; a new task to an
//!   idle CPU or the least loaded one. A CPU that goes idle pulls the oldest waiting
//!   task from the busiest runqueue, and at each tick a runqueue with two more tasks
//!   than another gives one away.
//!
//! What it leaves out: scheduling domains, NUMA and cache topology (every CPU is as
//! close as every other); PELT load tracking and the load balancer's weighted
//! imbalance (balancing counts tasks, not load, so e.g. three equal hogs on two CPUs
//! share 50/50/100 rather than migrating towards 67/67/67); delayed dequeue itself
//! (approximated as above); `sched_yield`, custom slices
//! (`sched_attr.sched_runtime`), cgroups and bandwidth control, SCHED_IDLE and the
//! real-time classes; wake-affine placement near the waker.
//! Context switches, migrations and process creation cost what the machine's
//! profile says (`SimConfig::context_switch_ns` and the like), paid by the task
//! switched in, as under sched_ext.

use schedkit_core::{ExitInfo, ENQ_WAKEUP};

use crate::machine::{Engine, Ev, ModelStats, SchedulerModel, State, Tid};
use crate::weights::NICE_0_WEIGHT;
use crate::SimConfig;

/// Vruntimes start here, so that placing a task before `V` never underflows.
const V_BASE: u64 = 1 << 40;

/// A task's EEVDF state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EevdfTask {
    pub(crate) v: u64,
    pub(crate) deadline: u64,
    /// Lag kept while the task sleeps (`V - v` when it left), virtual ns.
    pub(crate) vlag: i64,
    /// When `v` was last brought up to date.
    pub(crate) vupdate_ns: u64,
    /// Placed at least once (a new task gets half a slice).
    pub(crate) placed: bool,
    /// Picked and still within the slice it was picked with (run to parity).
    pub(crate) protect: bool,
    /// When it last went to sleep.
    pub(crate) slept_ns: u64,
    /// Asleep but still on this CPU's runqueue (delayed dequeue).
    pub(crate) delayed: Option<u32>,
}

/// One CPU's runqueue.
#[derive(Debug, Clone)]
pub(crate) struct Rq {
    /// Runnable tasks waiting, oldest first.
    pub(crate) queued: Vec<Tid>,
    /// The task on the CPU.
    pub(crate) curr: Option<Tid>,
    /// `V` when the queue last emptied: where the next task is placed.
    pub(crate) zero_v: u64,
    /// Sleeping tasks kept on the queue until they are eligible (delayed dequeue):
    /// they count in `V` but are never run.
    pub(crate) delayed: Vec<Tid>,
}

impl Default for Rq {
    fn default() -> Self {
        Rq {
            queued: Vec::with_capacity(64),
            curr: None,
            zero_v: V_BASE,
            delayed: Vec::new(),
        }
    }
}

impl Rq {
    pub(crate) fn nr(&self) -> usize {
        self.queued.len() + usize::from(self.curr.is_some())
    }
}

/// `ns` of run time in virtual time for a task of weight `kw`.
fn vdelta(ns: u64, kw: u64) -> u64 {
    ((ns as u128 * NICE_0_WEIGHT as u128) / kw.max(1) as u128) as u64
}

/// The weighted average of a runqueue's vruntimes, kept as `vmin + num / den` so that
/// eligibility can be tested exactly.
#[derive(Debug, Clone, Copy)]
struct Avg {
    vmin: u64,
    num: u128,
    den: u128,
}

impl Avg {
    fn value(&self) -> u64 {
        self.vmin + (self.num / self.den) as u64
    }
    fn eligible(&self, v: u64) -> bool {
        (v - self.vmin) as u128 * self.den <= self.num
    }
}

/// The EEVDF model: a [`SchedulerModel`] with a runqueue per CPU. See the module
/// documentation.
pub(crate) struct Eevdf {
    /// Per CPU.
    rqs: Vec<Rq>,
    /// Per task, by [`Tid`].
    tasks: Vec<EevdfTask>,
    /// [`SimConfig::eevdf_base_slice_ns`].
    base_slice_cfg_ns: u64,
    /// [`SimConfig::hz`].
    hz: u32,
    /// [`SimConfig::run_to_parity`].
    run_to_parity: bool,
    /// [`SimConfig::preempt_lazy`].
    lazy: bool,
    /// [`SimConfig::hrtick`].
    hrtick: bool,
    /// Per CPU: a wake-up asked for a lazy reschedule, done at the next tick.
    resched_at_tick: Vec<bool>,
    /// [`SimConfig::delay_dequeue`].
    delay_dequeue: bool,
}

impl SchedulerModel for Eevdf {
    fn new(cfg: &SimConfig) -> Eevdf {
        Eevdf {
            rqs: (0..cfg.nr_cpus).map(|_| Rq::default()).collect(),
            tasks: Vec::with_capacity(1024),
            base_slice_cfg_ns: cfg.eevdf_base_slice_ns,
            hz: cfg.hz,
            run_to_parity: cfg.run_to_parity,
            lazy: cfg.preempt_lazy,
            hrtick: cfg.hrtick,
            resched_at_tick: vec![false; cfg.nr_cpus as usize],
            delay_dequeue: cfg.delay_dequeue,
        }
    }

    fn start(&mut self, _e: &mut Engine) {}

    fn task_added(&mut self, tid: Tid) {
        debug_assert_eq!(tid, self.tasks.len());
        self.tasks.push(EevdfTask::default());
    }

    fn make_runnable(&mut self, e: &mut Engine, tid: Tid, flags: u64) {
        let cpu = match self.tasks[tid].delayed {
            // Still on its queue: it goes on where it is, with the vruntime it has.
            Some(cpu) => {
                self.requeue_delayed(e, cpu, tid);
                cpu
            }
            None => {
                let cpu = self.select_cpu(e, tid, flags & ENQ_WAKEUP != 0);
                self.place(e, cpu, tid);
                cpu
            }
        };
        match self.rqs[cpu as usize].curr {
            None => self.pick_next(e, cpu),
            Some(curr) => {
                // Wake-up preemption.
                self.update_curr(e, cpu);
                let vslice = self.vslice(e, curr);
                let et = &mut self.tasks[curr];
                let preempt = if et.v >= et.deadline {
                    et.deadline = et.v + vslice;
                    et.protect = false;
                    true
                } else {
                    self.pick(e, cpu) == Some(tid)
                };
                if preempt && self.lazy {
                    // PREEMPT_LAZY: the fair class only asks for a lazy reschedule,
                    // which a task running in user space honours at the next tick.
                    self.resched_at_tick[cpu as usize] = true;
                } else if preempt {
                    self.resched(e, cpu);
                }
            }
        }
    }

    /// `cpu` has nothing running: pick from its queue, or pull work from another.
    fn pick_next(&mut self, e: &mut Engine, cpu: u32) {
        if self.rqs[cpu as usize].curr.is_some() {
            return;
        }
        if let Some(t) = self.pick_runnable(e, cpu) {
            self.run(e, cpu, t);
            return;
        }
        self.flush_delayed(e, cpu);
        if let Some(t) = self.pull(e, cpu) {
            self.run(e, cpu, t);
        }
    }

    fn stop_task(&mut self, e: &mut Engine, cpu: u32) -> Tid {
        self.update_curr(e, cpu);
        e.stop_task(cpu)
    }

    /// The running task of `cpu`, just stopped, sleeps or exits.
    fn block(&mut self, e: &mut Engine, cpu: u32, tid: Tid, exit: bool) {
        if self.delay_dequeue && !exit {
            let eligible = self
                .avg(e, cpu)
                .is_none_or(|a| a.eligible(self.tasks[tid].v));
            if !eligible {
                // Owing service: it stays queued, unpicked, until it is eligible.
                let et = &mut self.tasks[tid];
                et.protect = false;
                et.slept_ns = e.now;
                et.delayed = Some(cpu);
                let rq = &mut self.rqs[cpu as usize];
                rq.curr = None;
                rq.delayed.push(tid);
                return;
            }
        }
        let v_avg = self.avg_v(e, cpu);
        let limit = self.lag_limit(e, tid);
        let et = &mut self.tasks[tid];
        et.vlag = (v_avg as i128 - et.v as i128).clamp(-limit as i128, limit as i128) as i64;
        et.protect = false;
        et.slept_ns = e.now;
        let rq = &mut self.rqs[cpu as usize];
        rq.curr = None;
        if rq.queued.is_empty() {
            rq.zero_v = v_avg;
        }
    }

    fn tick(&mut self, e: &mut Engine) -> Option<ExitInfo> {
        let n = e.cpus.len() as u32;
        for cpu in 0..n {
            if std::mem::take(&mut self.resched_at_tick[cpu as usize]) {
                self.update_curr(e, cpu);
                self.resched(e, cpu);
            }
        }
        for cpu in 0..n {
            if let Some((_, true)) = self.renew_used_slice(e, cpu) {
                self.resched(e, cpu);
            }
        }
        // Balancing: idle CPUs pull; a runqueue two tasks longer than another gives one.
        for cpu in 0..n {
            if self.rq_idle(cpu) {
                self.pick_next(e, cpu);
            }
        }
        let busiest = (0..n).max_by_key(|&c| (self.rqs[c as usize].nr(), std::cmp::Reverse(c)));
        let idlest = (0..n).min_by_key(|&c| (self.rqs[c as usize].nr(), c));
        if let (Some(src), Some(dst)) = (busiest, idlest) {
            if self.rqs[src as usize].nr() >= self.rqs[dst as usize].nr() + 2 {
                let movable = self.rqs[src as usize]
                    .queued
                    .iter()
                    .copied()
                    .find(|&t| e.tasks[t].may_run_on(dst));
                if let Some(t) = movable {
                    self.migrate(e, src, dst, t);
                    if self.rqs[dst as usize].curr.is_none() {
                        self.pick_next(e, dst);
                    }
                }
            }
        }
        None
    }

    fn sched_done(&mut self, _e: &mut Engine, _epoch: u64) {
        // Never scheduled: EEVDF has no user-space scheduler.
    }

    /// HRTICK: the running task has used its slice. As in the kernel, the timer's tick
    /// always asks for a new pick (the task may win it again, and then gets a new
    /// timer); a task whose vruntime passed its deadline gets a new one first.
    fn slice_end(&mut self, e: &mut Engine, cpu: u32) {
        let Some((curr, _)) = self.renew_used_slice(e, cpu) else {
            return;
        };
        self.tasks[curr].protect = false;
        self.resched(e, cpu);
        if self.rqs[cpu as usize].curr == Some(curr) {
            self.arm_slice_end(e, cpu);
        }
    }

    fn close_scheduler_run(&mut self, _e: &mut Engine, _cpu: u32) {
        // Never called: EEVDF has no user-space scheduler.
    }

    fn stats(&self) -> ModelStats {
        ModelStats::default()
    }
}

impl Eevdf {
    /// Brings the running task of `cpu` up to now and, if its vruntime has passed its
    /// deadline (its slice is used up), gives it the next deadline and ends its
    /// protection. Returns the task and whether its slice was used up.
    fn renew_used_slice(&mut self, e: &Engine, cpu: u32) -> Option<(Tid, bool)> {
        let curr = self.rqs[cpu as usize].curr?;
        self.update_curr(e, cpu);
        let vslice = self.vslice(e, curr);
        let et = &mut self.tasks[curr];
        let used = et.v >= et.deadline;
        if used {
            et.deadline = et.v + vslice;
            et.protect = false;
        }
        Some((curr, used))
    }

    /// The base slice: 0.75 ms (configurable) × (1 + ilog2(CPUs, at most 8)).
    fn base_slice_ns(&self) -> u64 {
        let n = (self.rqs.len() as u32).clamp(1, 8);
        self.base_slice_cfg_ns * (1 + n.ilog2() as u64)
    }

    fn vslice(&self, e: &Engine, tid: Tid) -> u64 {
        vdelta(self.base_slice_ns(), e.tasks[tid].kweight)
    }

    fn lag_limit(&self, e: &Engine, tid: Tid) -> i64 {
        let tick = 1_000_000_000 / self.hz as u64;
        vdelta((2 * self.base_slice_ns()).max(tick), e.tasks[tid].kweight) as i64
    }

    /// Brings the running task's vruntime up to now.
    fn update_curr(&mut self, e: &Engine, cpu: u32) {
        if let Some(tid) = self.rqs[cpu as usize].curr {
            let now = e.now;
            let et = &mut self.tasks[tid];
            let d = now - et.vupdate_ns;
            et.v += vdelta(d, e.tasks[tid].kweight);
            et.vupdate_ns = now;
        }
    }

    fn avg(&self, e: &Engine, cpu: u32) -> Option<Avg> {
        let rq = &self.rqs[cpu as usize];
        let all = rq
            .curr
            .iter()
            .chain(rq.queued.iter())
            .chain(rq.delayed.iter());
        let vmin = all.clone().map(|&t| self.tasks[t].v).min()?;
        let (mut num, mut den) = (0u128, 0u128);
        for &t in all {
            let w = e.tasks[t].kweight as u128;
            num += w * (self.tasks[t].v - vmin) as u128;
            den += w;
        }
        Some(Avg { vmin, num, den })
    }

    fn avg_v(&self, e: &Engine, cpu: u32) -> u64 {
        self.avg(e, cpu)
            .map_or(self.rqs[cpu as usize].zero_v, |a| a.value())
    }

    /// The task EEVDF would run now on `cpu` (the running one included).
    fn pick(&self, e: &Engine, cpu: u32) -> Option<Tid> {
        let rq = &self.rqs[cpu as usize];
        let avg = self.avg(e, cpu)?;
        if let Some(c) = rq.curr {
            let et = &self.tasks[c];
            if self.run_to_parity && et.protect && avg.eligible(et.v) {
                return Some(c);
            }
        }
        let key = |t: Tid| (self.tasks[t].deadline, self.tasks[t].v, t);
        let all = rq
            .curr
            .iter()
            .chain(rq.queued.iter())
            .chain(rq.delayed.iter())
            .copied();
        all.clone()
            .filter(|&t| avg.eligible(self.tasks[t].v))
            .min_by_key(|&t| key(t))
            .or_else(|| all.min_by_key(|&t| (self.tasks[t].v, t)))
    }

    /// [`Eevdf::pick`], dequeuing for good the delayed tasks it finds first (they have
    /// become eligible: the kernel dequeues them when it picks them).
    fn pick_runnable(&mut self, e: &mut Engine, cpu: u32) -> Option<Tid> {
        loop {
            let t = self.pick(e, cpu)?;
            if self.tasks[t].delayed.is_none() {
                return Some(t);
            }
            self.dequeue_delayed(e, cpu, t);
        }
    }

    /// Takes a delayed task off `cpu`'s queue; it leaves with no lag owed to it
    /// (DELAY_ZERO) and no more than the kernel's limit owed by it.
    fn dequeue_delayed(&mut self, e: &mut Engine, cpu: u32, tid: Tid) {
        let v_avg = self.avg_v(e, cpu);
        let limit = self.lag_limit(e, tid);
        let rq = &mut self.rqs[cpu as usize];
        if let Some(i) = rq.delayed.iter().position(|&t| t == tid) {
            rq.delayed.swap_remove(i);
        }
        let et = &mut self.tasks[tid];
        et.delayed = None;
        et.vlag = (v_avg as i128 - et.v as i128).clamp(-limit as i128, 0) as i64;
        // It waited on the queue until now: that was its sleep as far as lag goes.
        et.slept_ns = e.now;
        let rq = &mut self.rqs[cpu as usize];
        if rq.nr() == 0 && rq.delayed.is_empty() {
            rq.zero_v = v_avg;
        }
    }

    /// `cpu` has nothing to run: its delayed tasks are picked, and so dequeued, in turn.
    fn flush_delayed(&mut self, e: &mut Engine, cpu: u32) {
        while let Some(&t) = self.rqs[cpu as usize].delayed.first() {
            self.dequeue_delayed(e, cpu, t);
        }
    }

    /// A delayed task wakes up: back among the runnable ones of its queue with the
    /// vruntime it has, or at `V` if it has become eligible meanwhile (DELAY_ZERO).
    fn requeue_delayed(&mut self, e: &mut Engine, cpu: u32, tid: Tid) {
        self.update_curr(e, cpu);
        let v_avg = self.avg_v(e, cpu);
        let vslice = self.vslice(e, tid);
        let rq = &mut self.rqs[cpu as usize];
        if let Some(i) = rq.delayed.iter().position(|&t| t == tid) {
            rq.delayed.swap_remove(i);
        }
        rq.queued.push(tid);
        let et = &mut self.tasks[tid];
        et.delayed = None;
        if et.v < v_avg {
            et.v = v_avg;
            et.deadline = et.v + vslice;
        }
        et.protect = false;
        e.set_state(tid, State::Rq(cpu));
    }

    fn rq_idle(&self, cpu: u32) -> bool {
        self.rqs[cpu as usize].nr() == 0
    }

    /// Where a waking (or new) task goes.
    fn select_cpu(&self, e: &Engine, tid: Tid, wakeup: bool) -> u32 {
        let n = e.cpus.len() as u32;
        let t = &e.tasks[tid];
        let prev = t.prev_cpu;
        if wakeup && t.may_run_on(prev) && self.rq_idle(prev) {
            return prev;
        }
        let start = if wakeup { prev } else { tid as u32 % n };
        if let Some(c) = (0..n)
            .map(|i| (start + i) % n)
            .find(|&c| t.may_run_on(c) && self.rq_idle(c))
        {
            return c;
        }
        if wakeup && t.may_run_on(prev) {
            return prev;
        }
        (0..n)
            .map(|i| (start + i) % n)
            .filter(|&c| t.may_run_on(c))
            .min_by_key(|&c| self.rqs[c as usize].nr())
            .unwrap_or(prev)
    }

    /// Puts a waking or new task on a runqueue, placed by its lag.
    fn place(&mut self, e: &mut Engine, cpu: u32, tid: Tid) {
        self.update_curr(e, cpu);
        let vslice = self.vslice(e, tid);
        let v_avg = self.avg_v(e, cpu);
        let load: u128 = {
            let rq = &self.rqs[cpu as usize];
            rq.curr
                .iter()
                .chain(rq.queued.iter())
                .chain(rq.delayed.iter())
                .map(|&t| e.tasks[t].kweight as u128)
                .sum()
        };
        let w = e.tasks[tid].kweight as u128;
        let et = &mut self.tasks[tid];
        if !et.placed {
            et.placed = true;
            et.v = v_avg;
            et.deadline = et.v + vslice / 2;
        } else {
            let mut lag = et.vlag as i128;
            if lag < 0 {
                // Delayed dequeue: a task that slept owing service stayed queued until V
                // caught up with it. Forgive what V would have advanced meanwhile, with
                // the load the queue has now.
                let slept = (e.now - et.slept_ns) as u128 * NICE_0_WEIGHT as u128;
                let forgiven = slept.checked_div(load).map_or(i128::MAX / 4, |f| f as i128);
                lag = (lag + forgiven).min(0);
            }
            if load > 0 {
                // The task's arrival moves V; scale so it ends up with the lag it left with.
                lag = lag * (load + w) as i128 / load as i128;
            }
            et.v = (v_avg as i128 - lag).max(0) as u64;
            et.deadline = et.v + vslice;
        }
        et.protect = false;
        self.rqs[cpu as usize].queued.push(tid);
        e.set_state(tid, State::Rq(cpu));
    }

    /// Runs whatever EEVDF picks on `cpu` if it is not the running task.
    fn resched(&mut self, e: &mut Engine, cpu: u32) {
        let Some(curr) = self.rqs[cpu as usize].curr else {
            return;
        };
        let Some(best) = self.pick_runnable(e, cpu) else {
            return;
        };
        if best == curr {
            return;
        }
        self.stop_task(e, cpu);
        let rq = &mut self.rqs[cpu as usize];
        rq.curr = None;
        rq.queued.push(curr);
        self.tasks[curr].protect = false;
        e.set_state(curr, State::Rq(cpu));
        self.run(e, cpu, best);
    }

    /// Takes `tid` off `cpu`'s queue and runs it.
    fn run(&mut self, e: &mut Engine, cpu: u32, tid: Tid) {
        let rq = &mut self.rqs[cpu as usize];
        if let Some(i) = rq.queued.iter().position(|&t| t == tid) {
            rq.queued.remove(i);
        }
        rq.curr = Some(tid);
        let et = &mut self.tasks[tid];
        et.protect = true;
        et.vupdate_ns = e.now;
        e.run_task(cpu, tid);
        self.arm_slice_end(e, cpu);
    }

    /// With HRTICK, a timer for the end of the slice of the task that runs on `cpu`
    /// now: one base slice of its own CPU time from now (the kernel's `se->slice`,
    /// whatever its weight), cancelled by the next switch there.
    fn arm_slice_end(&mut self, e: &mut Engine, cpu: u32) {
        if !self.hrtick {
            return;
        }
        let at = e.now + self.base_slice_ns();
        if at < e.end {
            let epoch = e.cpus[cpu as usize].epoch;
            e.push(at, Ev::SliceEnd { cpu, epoch });
        }
    }

    /// Moves the oldest waiting task that may run on `dst` from the busiest other
    /// runqueue to `dst`, keeping its lag. Returns it.
    fn pull(&mut self, e: &mut Engine, dst: u32) -> Option<Tid> {
        let n = e.cpus.len() as u32;
        let mut best: Option<(usize, u32, Tid)> = None;
        for src in 0..n {
            if src == dst {
                continue;
            }
            let rq = &self.rqs[src as usize];
            let Some(&t) = rq.queued.iter().find(|&&t| e.tasks[t].may_run_on(dst)) else {
                continue;
            };
            if best.is_none_or(|(nr, _, _)| rq.nr() > nr) {
                best = Some((rq.nr(), src, t));
            }
        }
        let (_, src, tid) = best?;
        self.migrate(e, src, dst, tid);
        Some(tid)
    }

    fn migrate(&mut self, e: &mut Engine, src: u32, dst: u32, tid: Tid) {
        self.update_curr(e, src);
        self.update_curr(e, dst);
        let v_src = self.avg_v(e, src);
        let rq = &mut self.rqs[src as usize];
        if let Some(i) = rq.queued.iter().position(|&t| t == tid) {
            rq.queued.remove(i);
        }
        if rq.nr() == 0 {
            rq.zero_v = v_src;
        }
        let v_dst = self.avg_v(e, dst);
        let et = &mut self.tasks[tid];
        let lag = v_src as i128 - et.v as i128;
        let dl = et.deadline.saturating_sub(et.v);
        et.v = (v_dst as i128 - lag).max(0) as u64;
        et.deadline = et.v + dl;
        et.protect = false;
        self.rqs[dst as usize].queued.push(tid);
        e.set_state(tid, State::Rq(dst));
    }
}
