//! A model of the kernel's default scheduler, EEVDF ("earliest eligible virtual
//! deadline first"), as the baseline every policy is compared with. It runs inside the
//! simulated kernel: no user-space scheduler, no decision cost.
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
//!   its deadline it gets a new deadline and the CPU picks again.
//! - **Run to parity** (on by default, as in the kernel): once picked, a task keeps its
//!   CPU until it uses its slice or stops being eligible.
//! - **Wake-up preemption**: a waking task preempts the running one when it would be
//!   picked now (run to parity permitting), and a wake-up finds a running task's
//!   exhausted slice at once rather than at the next tick.
//! - **Lag across sleep and migration**: a task keeps its lag (clamped to the kernel's
//!   limit of max(2 slices, 1 tick) in virtual time) when it sleeps and when it moves to
//!   another CPU; on return it is placed at `V - lag`, scaled for the load it joins.
//!   Negative lag is forgiven at the rate `V` advances while the task sleeps, which is
//!   what the kernel's delayed dequeue achieves by keeping such a task queued (and
//!   unpicked) until it is eligible again.
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
//! real-time classes; the high-resolution tick; the cost of context switches and
//! migrations (both zero here, as the user-space scheduler's decisions are the only
//! modelled overhead); wake-affine placement near the waker.

use schedkit_core::ENQ_WAKEUP;

use crate::machine::{Machine, State, Tid};
use crate::weights::NICE_0_WEIGHT;

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
}

impl Default for Rq {
    fn default() -> Self {
        Rq {
            queued: Vec::with_capacity(64),
            curr: None,
            zero_v: V_BASE,
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

impl Machine {
    /// The base slice: 0.75 ms (configurable) × (1 + ilog2(CPUs, at most 8)).
    pub(crate) fn base_slice_ns(&self) -> u64 {
        let n = (self.cpus.len() as u32).clamp(1, 8);
        self.cfg.eevdf_base_slice_ns * (1 + n.ilog2() as u64)
    }

    fn vslice(&self, tid: Tid) -> u64 {
        vdelta(self.base_slice_ns(), self.tasks[tid].kweight)
    }

    fn lag_limit(&self, tid: Tid) -> i64 {
        let tick = 1_000_000_000 / self.cfg.hz as u64;
        vdelta(
            (2 * self.base_slice_ns()).max(tick),
            self.tasks[tid].kweight,
        ) as i64
    }

    /// Brings the running task's vruntime up to now.
    pub(crate) fn eevdf_update_curr(&mut self, cpu: u32) {
        if let Some(tid) = self.rqs[cpu as usize].curr {
            let now = self.now;
            let t = &mut self.tasks[tid];
            let d = now - t.eevdf.vupdate_ns;
            t.eevdf.v += vdelta(d, t.kweight);
            t.eevdf.vupdate_ns = now;
        }
    }

    fn avg(&self, cpu: u32) -> Option<Avg> {
        let rq = &self.rqs[cpu as usize];
        let all = rq.curr.iter().chain(rq.queued.iter());
        let vmin = all.clone().map(|&t| self.tasks[t].eevdf.v).min()?;
        let (mut num, mut den) = (0u128, 0u128);
        for &t in all {
            let w = self.tasks[t].kweight as u128;
            num += w * (self.tasks[t].eevdf.v - vmin) as u128;
            den += w;
        }
        Some(Avg { vmin, num, den })
    }

    fn avg_v(&self, cpu: u32) -> u64 {
        self.avg(cpu)
            .map_or(self.rqs[cpu as usize].zero_v, |a| a.value())
    }

    /// The task EEVDF would run now on `cpu` (the running one included).
    fn eevdf_pick(&self, cpu: u32) -> Option<Tid> {
        let rq = &self.rqs[cpu as usize];
        let avg = self.avg(cpu)?;
        if let Some(c) = rq.curr {
            let e = &self.tasks[c].eevdf;
            if self.cfg.run_to_parity && e.protect && avg.eligible(e.v) {
                return Some(c);
            }
        }
        let key = |t: Tid| (self.tasks[t].eevdf.deadline, self.tasks[t].eevdf.v, t);
        let all = rq.curr.iter().chain(rq.queued.iter()).copied();
        all.clone()
            .filter(|&t| avg.eligible(self.tasks[t].eevdf.v))
            .min_by_key(|&t| key(t))
            .or_else(|| all.min_by_key(|&t| (self.tasks[t].eevdf.v, t)))
    }

    fn rq_idle(&self, cpu: u32) -> bool {
        self.rqs[cpu as usize].nr() == 0
    }

    /// Where a waking (or new) task goes.
    fn eevdf_select_cpu(&self, tid: Tid, wakeup: bool) -> u32 {
        let n = self.cpus.len() as u32;
        let t = &self.tasks[tid];
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
    fn eevdf_place(&mut self, cpu: u32, tid: Tid) {
        self.eevdf_update_curr(cpu);
        let vslice = self.vslice(tid);
        let v_avg = self.avg_v(cpu);
        let load: u128 = {
            let rq = &self.rqs[cpu as usize];
            rq.curr
                .iter()
                .chain(rq.queued.iter())
                .map(|&t| self.tasks[t].kweight as u128)
                .sum()
        };
        let w = self.tasks[tid].kweight as u128;
        let e = &mut self.tasks[tid].eevdf;
        if !e.placed {
            e.placed = true;
            e.v = v_avg;
            e.deadline = e.v + vslice / 2;
        } else {
            let mut lag = e.vlag as i128;
            if lag < 0 {
                // Delayed dequeue: a task that slept owing service stayed queued until V
                // caught up with it. Forgive what V would have advanced meanwhile, with
                // the load the queue has now.
                let slept = (self.now - e.slept_ns) as u128 * NICE_0_WEIGHT as u128;
                let forgiven = slept.checked_div(load).map_or(i128::MAX / 4, |f| f as i128);
                lag = (lag + forgiven).min(0);
            }
            if load > 0 {
                // The task's arrival moves V; scale so it ends up with the lag it left with.
                lag = lag * (load + w) as i128 / load as i128;
            }
            e.v = (v_avg as i128 - lag).max(0) as u64;
            e.deadline = e.v + vslice;
        }
        e.protect = false;
        self.rqs[cpu as usize].queued.push(tid);
        self.set_state(tid, State::Rq(cpu));
    }

    pub(crate) fn eevdf_wakeup(&mut self, tid: Tid, flags: u64) {
        let cpu = self.eevdf_select_cpu(tid, flags & ENQ_WAKEUP != 0);
        self.eevdf_place(cpu, tid);
        match self.rqs[cpu as usize].curr {
            None => self.eevdf_pick_next(cpu),
            Some(curr) => {
                // Wake-up preemption.
                self.eevdf_update_curr(cpu);
                let vslice = self.vslice(curr);
                let e = &mut self.tasks[curr].eevdf;
                if e.v >= e.deadline {
                    e.deadline = e.v + vslice;
                    e.protect = false;
                    self.eevdf_resched(cpu);
                } else if self.eevdf_pick(cpu) == Some(tid) {
                    self.eevdf_resched(cpu);
                }
            }
        }
    }

    /// Runs whatever EEVDF picks on `cpu` if it is not the running task.
    fn eevdf_resched(&mut self, cpu: u32) {
        let Some(curr) = self.rqs[cpu as usize].curr else {
            return;
        };
        let Some(best) = self.eevdf_pick(cpu) else {
            return;
        };
        if best == curr {
            return;
        }
        self.stop_task(cpu);
        let rq = &mut self.rqs[cpu as usize];
        rq.curr = None;
        rq.queued.push(curr);
        self.tasks[curr].eevdf.protect = false;
        self.set_state(curr, State::Rq(cpu));
        self.eevdf_run(cpu, best);
    }

    /// Takes `tid` off `cpu`'s queue and runs it.
    fn eevdf_run(&mut self, cpu: u32, tid: Tid) {
        let rq = &mut self.rqs[cpu as usize];
        if let Some(i) = rq.queued.iter().position(|&t| t == tid) {
            rq.queued.remove(i);
        }
        rq.curr = Some(tid);
        self.tasks[tid].eevdf.protect = true;
        self.run_task(cpu, tid);
    }

    /// The running task of `cpu`, just stopped, sleeps or exits.
    pub(crate) fn eevdf_block(&mut self, cpu: u32, tid: Tid) {
        let v_avg = self.avg_v(cpu);
        let limit = self.lag_limit(tid);
        let e = &mut self.tasks[tid].eevdf;
        e.vlag = (v_avg as i128 - e.v as i128).clamp(-limit as i128, limit as i128) as i64;
        e.protect = false;
        e.slept_ns = self.now;
        let rq = &mut self.rqs[cpu as usize];
        rq.curr = None;
        if rq.queued.is_empty() {
            rq.zero_v = v_avg;
        }
    }

    /// `cpu` has nothing running: pick from its queue, or pull work from another.
    pub(crate) fn eevdf_pick_next(&mut self, cpu: u32) {
        if self.rqs[cpu as usize].curr.is_some() {
            return;
        }
        if let Some(t) = self.eevdf_pick(cpu) {
            self.eevdf_run(cpu, t);
            return;
        }
        if let Some(t) = self.eevdf_pull(cpu) {
            self.eevdf_run(cpu, t);
        }
    }

    /// Moves the oldest waiting task that may run on `dst` from the busiest other
    /// runqueue to `dst`, keeping its lag. Returns it.
    fn eevdf_pull(&mut self, dst: u32) -> Option<Tid> {
        let n = self.cpus.len() as u32;
        let mut best: Option<(usize, u32, Tid)> = None;
        for src in 0..n {
            if src == dst {
                continue;
            }
            let rq = &self.rqs[src as usize];
            let Some(&t) = rq.queued.iter().find(|&&t| self.tasks[t].may_run_on(dst)) else {
                continue;
            };
            if best.is_none_or(|(nr, _, _)| rq.nr() > nr) {
                best = Some((rq.nr(), src, t));
            }
        }
        let (_, src, tid) = best?;
        self.eevdf_migrate(src, dst, tid);
        Some(tid)
    }

    fn eevdf_migrate(&mut self, src: u32, dst: u32, tid: Tid) {
        self.eevdf_update_curr(src);
        self.eevdf_update_curr(dst);
        let v_src = self.avg_v(src);
        let rq = &mut self.rqs[src as usize];
        if let Some(i) = rq.queued.iter().position(|&t| t == tid) {
            rq.queued.remove(i);
        }
        if rq.nr() == 0 {
            rq.zero_v = v_src;
        }
        let v_dst = self.avg_v(dst);
        let e = &mut self.tasks[tid].eevdf;
        let lag = v_src as i128 - e.v as i128;
        let dl = e.deadline.saturating_sub(e.v);
        e.v = (v_dst as i128 - lag).max(0) as u64;
        e.deadline = e.v + dl;
        e.protect = false;
        self.rqs[dst as usize].queued.push(tid);
        self.set_state(tid, State::Rq(dst));
    }

    pub(crate) fn eevdf_tick(&mut self) {
        let n = self.cpus.len() as u32;
        for cpu in 0..n {
            let Some(curr) = self.rqs[cpu as usize].curr else {
                continue;
            };
            self.eevdf_update_curr(cpu);
            let vslice = self.vslice(curr);
            let e = &mut self.tasks[curr].eevdf;
            if e.v >= e.deadline {
                e.deadline = e.v + vslice;
                e.protect = false;
                self.eevdf_resched(cpu);
            }
        }
        // Balancing: idle CPUs pull; a runqueue two tasks longer than another gives one.
        for cpu in 0..n {
            if self.rq_idle(cpu) {
                self.eevdf_pick_next(cpu);
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
                    .find(|&t| self.tasks[t].may_run_on(dst));
                if let Some(t) = movable {
                    self.eevdf_migrate(src, dst, t);
                    if self.rqs[dst as usize].curr.is_none() {
                        self.eevdf_pick_next(dst);
                    }
                }
            }
        }
    }
}
