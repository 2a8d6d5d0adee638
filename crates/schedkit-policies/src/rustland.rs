//! # Rustland: earliest deadline first from vruntime and sleep behaviour
//!
//! Every task has a virtual run time (vruntime) that grows with the CPU time it uses,
//! scaled by its weight; the waiting task with the earliest *deadline* runs next. The
//! deadline is the vruntime minus a latency credit earned by sleeping often: a task
//! that blocks voluntarily many times a second (a game's render loop, an audio thread,
//! an editor) gets in ahead of CPU hogs with the same vruntime, while hogs (a compiler
//! under `make -j`) share what is left fairly. Slices shrink as more tasks wait, so a
//! waking task never queues for long behind a full slice of every hog.
//!
//! On each enqueue of a task (all times in ns, saturating `u64` arithmetic):
//!
//! ```text
//! used      = clamp(sum_exec_runtime - sum_exec_runtime at the previous enqueue,
//!                   RUN_CHARGE_MIN_NS, slice_max)
//! vruntime  = max(vruntime, vtime_now - SLEEP_LAG_SLICES * slice_max) + used * 100 / weight
//! lat_w     = min(avg_nvcsw, 1000) * (2 if woken up else 1) + 1          (1 ..= 2001)
//! credit    = CREDIT_CAP_SLICES * slice_max * min(log2(lat_w), CREDIT_FULL_LOG2) / CREDIT_FULL_LOG2
//! deadline  = vruntime - credit
//! ```
//!
//! `avg_nvcsw` is a moving average of voluntary context switches per second, refreshed
//! when at least a second has passed since the task's previous sample:
//! `rate = min(d_nvcsw * 1e9 / d_t, 1000)`, `avg = avg - avg/4 + rate/4` (kept with four
//! fractional bits, so a task waking once a second still earns some credit). On dispatch,
//! `vtime_now = max(vtime_now, vruntime)` of the task sent (the clock only moves
//! forward), `slice = max(slice_max / (others_waiting + 1), slice_min)` (others: the
//! context's `nr_waiting()`, which counts the task being sent, less one), and the
//! decision's `vtime` is the deadline, so the kernel side keeps the same order across
//! batches. The CPU is an idle one if the machine has one (preferring the task's
//! previous CPU), otherwise the first to free up; or always the previous CPU with
//! `percpu_local`. A task that woke up may preempt: if no CPU is idle, the running
//! task with the latest deadline is switched out when that deadline is later than the
//! waking task's by more than `slice_min`.
//!
//! A woken task whose `avg_nvcsw` is at least [`STANDING_MIN_NVCSW`] also gets a
//! standing instruction ([`schedkit_core::Standing`]): its next wake-ups are placed by
//! the dispatcher with this decision's slice, preemption margin and deadline (advanced
//! by the CPU time it uses, as its vruntime would be), without a trip through user
//! space, until it has used `slice_min` of CPU time or `STANDING_TTL_SLICES ×
//! slice_max` have passed. The next trip charges everything it ran meanwhile. A task
//! that wakes a thousand times a second thus takes a trip every few dozen wake-ups,
//! and its place in the order moves only as far as its credit already allowed.
//! Off by default; `with_standing(true)` (`--standing`) turns it on. Measured in the
//! VM, medians of 3 rounds in one boot (README.md, "Standing instructions"): with
//! it, desktop-mix's ipc pairs made 2126 round trips/s against 718 (EEVDF 1341) and
//! the pingpong pairs 3797/s against 1191 (EEVDF 6213), but the 200 Hz audio task
//! missed 28% of its periods against 19% (EEVDF 43%), and the 30 fps video 90% of its
//! frames against 46% (EEVDF 25%).
//! With the credit full from 16/s (2026-11-28, two boots of interleaved rounds) the
//! trade is the same: ipc 1.54x and 1.38x EEVDF's round trips against 0.65x without,
//! but the video missed 48% and 95% of its frames against 11% and 20%
//! (`docs/traces.md`).
//!
//! Where this departs from the published scx_rustland, and why:
//! - The published credit is `slice_max * lat_w` taken off the vruntime floor: up to
//!   ~2000 slices, so a task that was asleep for a while can come back seconds of CPU
//!   time ahead of every hog. Here the floor is one slice below `vtime_now` and the
//!   credit is at most [`CREDIT_CAP_SLICES`] slices, on a log scale that is full from
//!   16 wake-ups/s (a 60 fps game and a 30 fps video get all of it, a task waking
//!   10 times a second 80%): a deadline is never more than
//!   `(SLEEP_LAG_SLICES + CREDIT_CAP_SLICES) * slice_max` below `vtime_now`, so a hog
//!   waits at most about that much virtual time per competing task.
//! - `vtime_now` follows the vruntime of dispatched tasks (as the kernel's scx_simple
//!   does) instead of adding every charge to a global counter, which grows N times
//!   faster than any task's vruntime with N tasks and turns the floor into the only
//!   thing that orders them.
//! - Run time is the delta of the cumulative `sum_exec_runtime`, not `last_run_ns`:
//!   the latter only covers the last run, and misses runs the kernel side made without
//!   asking user space (direct dispatch to an idle CPU, the shared queue under
//!   congestion). Each enqueue is charged at least [`RUN_CHARGE_MIN_NS`], so tasks that
//!   report no run time still move forward and cannot keep a hog waiting forever.
//!
//! Known weaknesses: the sleep credit rewards any task that blocks often, including
//! a hog that does tiny I/O in a loop; from 16 wake-ups/s on, every sleeper earns the
//! same credit ([`CREDIT_FULL_LOG2`]), so among them only vruntime and arrival order
//! count; a periodic task that falls behind sleeps less often and so loses credit,
//! which makes it fall further behind (desktop-mix's 30 fps video, when the credit
//! was full only from 128/s; at 4/s a 60 fps game under a build ties on credit with
//! the build's job slots, and when the machine is slow it falls far behind more
//! often); a
//! deadline is fixed at enqueue and does not age while the task waits, so the bound above is in virtual time, and many short-running sleepers
//! can still add up to many decisions ahead of a hog; fairness history beyond one
//! slice is forgotten across sleeps (by design), and `vtime_now` jumps by a large step
//! when a low-weight task runs alone; a brand-new task starts at `vtime_now` without
//! credit, so a freshly started interactive program needs about a second before its
//! rate is known; with HZ=250 the kernel only enforces slices at the next tick (4 ms),
//! so slices below that are rounded up in practice; and the policy knows nothing of
//! caches or topology beyond "prefer the previous CPU when it is idle".
//!
//! The worst of them, measured with the credit full from 128 wake-ups/s: a periodic
//! task that needs more than its fair share to keep up (`desktop-mix`'s 30 fps video,
//! 6 ms a frame) fell behind (67% of its frames late in the VM, EEVDF 19%). With the
//! credit full from 16/s, the default since 2026-11-27, it missed 14% (EEVDF 29%) in
//! 10 rounds in one boot (README.md, "The latency credit"). Once late it starts each frame at once and stops
//! sleeping, so its switch rate and its credit fall to nothing and it competes as a
//! hog for a fair share; the ping-pong tasks it competes with keep full credit, and
//! each of their trips through user space costs the machine CPU time nobody is
//! charged for. Tried: charging each task the scheduler's CPU time per trip (the video
//! still starved; hackbench and the game got worse, in the VM); in the simulator,
//! making the sleeper lag and the credit cap fixed times (5 and 10 ms) instead of
//! slices helps the video and the hogs but costs the audio task and the ping-pong
//! pairs; a credit cap of one slice instead of two fixed the video in the simulator
//! (9.7% late) but not in the VM (82% late, with the audio, the game and hackbench
//! worse too). The simulator does not model what a trip through user space costs,
//! and that is where the video's time goes: trace it in the VM before tuning again.
//!
//! ```
//! use schedkit_core::{fake::FakeBackend, Policy, QueuedTask, Runtime};
//! use schedkit_policies::rustland::Rustland;
//!
//! let mut machine = FakeBackend::new(2);
//! machine.push_task(QueuedTask::new(1, 0));
//! let mut rt = Runtime::new(Rustland::default(), machine);
//! rt.step().unwrap();
//! assert_eq!(rt.backend().dispatched()[0].pid, 1);
//! assert_eq!(rt.policy().stats().nr_tasks, 1);
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use schedkit_core::{Context, Cpu, CpuTarget, Decision, Pid, Policy, PolicyStats, QueuedTask};

/// Default maximum slice: 20 ms, as the later published versions use. A waking
/// interactive task does not wait for a hog's slice to end (it preempts, see
/// [`Decision::preempt_margin_ns`]), so the slice only sets how often CPU-bound tasks
/// take turns; longer turns mean fewer round trips through the scheduler. It also
/// scales the sleeper lag and the credit cap.
///
/// Measured in the VM (2 vCPUs, HZ=250, 10 s runs, one boot; README's benchmark), the
/// first defaults of 5 ms / 0.5 ms took `hackbench` to 1.9x EEVDF's time: with 160
/// tasks waiting every slice was the minimum, so nearly every run ended at the next
/// tick and went back through user space. With 20 ms / 5 ms (and the preemption
/// margin): 0.94x EEVDF's time, and 6.3% of game frames late against EEVDF's 76%
/// (5 runs each, docs/bench/peers-2026-11-26/report.md); on 2026-11-28, with the
/// credit full from 16/s, 0.80x and 2.3% against 52.3%
/// (docs/bench/peers-2026-11-28/report.md; 1.14x and 5.0% against 63.7% in another
/// boot, docs/bench/rounds-2026-11-28/report.md); with the idle-query shortcut too,
/// 1.23x and 9.0% against 75.5% (docs/bench/peers-spin-2026-11-28/report.md). All of
/// these ran with a spinning thread in the workload runner; without it (2026-11-29),
/// 0.99x and 2.0% against 32.7% (docs/bench/report.md).
pub const RUSTLAND_SLICE_NS: u64 = 20_000_000;

/// Default minimum slice: 5 ms, a little over one tick at HZ=250 (the kernel checks
/// slices at the tick, so anything shorter ends at the next tick anyway). It is also
/// the wake-up preemption margin. See [`RUSTLAND_SLICE_NS`] for the measurements.
pub const RUSTLAND_SLICE_MIN_NS: u64 = 5_000_000;

/// How far (in maximum slices) below `vtime_now` a task's vruntime may lag: a task
/// that slept gets back in at most this far ahead of the current virtual clock.
pub const SLEEP_LAG_SLICES: u64 = 1;

/// The largest latency credit, in maximum slices.
pub const CREDIT_CAP_SLICES: u64 = 2;

/// Least run time charged per enqueue, ns: a run always costs something (the switches
/// in and out, the round trip through user space), and a task charged zero would never
/// move forward in virtual time.
pub const RUN_CHARGE_MIN_NS: u64 = 20_000;

/// Switch rate (voluntary context switches per second, moving average) from which a
/// waking task's decision also stands for its next wake-ups (see
/// [`schedkit_core::Standing`]): such a task wakes every few milliseconds or more
/// often, and the round trip through the scheduler would otherwise be most of its
/// wait. Its credit is then at least 80% of the cap.
pub const STANDING_MIN_NVCSW: u64 = 100;

/// A standing instruction lapses once the task has used this much CPU time (one
/// minimum slice by default: the kernel side's vtime for it then runs at most that far
/// ahead of what the policy would have given), or after [`STANDING_TTL_SLICES`]
/// maximum slices, so a deadline taken against an old virtual clock does not last.
pub const STANDING_TTL_SLICES: u64 = 2;

/// `log2(lat_w)` from which the latency credit is full: a task waking 16 times a
/// second or more gets the whole cap. Above that rate, more switches buy no earlier
/// place: waking tasks that sleep often all sit one credit below the virtual clock,
/// and are served in arrival order among themselves. With the cap at `log2 = 10` (1000
/// switches/s, as published), desktop-mix's ping-pong threads (about 1000/s) always
/// came 8 ms ahead of its 200 Hz audio task (80% of the cap): whenever two of them
/// were runnable they held both CPUs, and the audio waited.
/// Until 2026-11-27 it was 8 (128 wake-ups/s): 30 fps video then got 5/8 of the
/// cap and fell behind the ping-pong and audio tasks (README.md, "The latency
/// credit").
pub const CREDIT_FULL_LOG2: u32 = 5;

/// The wake-up rate (per second) from which the latency credit is full by default:
/// `lat_w = 2 * rate + 1` on a wake-up, whose `log2` is [`CREDIT_FULL_LOG2`].
/// `with_credit_full_rate` (`--credit-full-rate`) moves it.
pub const CREDIT_FULL_RATE: u64 = 16;

/// How often a task's voluntary context-switch rate is sampled.
const NVCSW_PERIOD_NS: u64 = 1_000_000_000;

/// The rate (switches per second) at which the moving average saturates.
const NVCSW_RATE_MAX: u64 = 1000;

/// Fractional bits of the switch-rate moving average.
const AVG_FRAC_BITS: u32 = 4;

/// Weight of a nice-0 task.
const WEIGHT_NICE0: u64 = 100;

/// Tasks for which room is reserved up front (per-task state and the deadline queue).
const TASK_CAPACITY: usize = 8192;

/// What the policy knows about one task, from its first enqueue to its exit.
#[derive(Debug, Clone, Copy)]
struct TaskState {
    vruntime: u64,
    /// `sum_exec_runtime` at the previous enqueue.
    sum_exec_ns: u64,
    /// `nvcsw` and the time at the last rate sample.
    nvcsw: u64,
    nvcsw_ts: u64,
    /// Moving average of voluntary context switches per second, in fixed point with
    /// [`AVG_FRAC_BITS`] fractional bits: in whole numbers, `rate / 4` would be 0 for
    /// a task waking 1 to 3 times a second, and such a task would never earn credit.
    avg_nvcsw_fp: u64,
    /// The task as last enqueued, while the policy holds it.
    held: Option<Held>,
}

impl TaskState {
    /// The switch-rate moving average, switches per second (whole).
    fn avg_nvcsw(&self) -> u64 {
        self.avg_nvcsw_fp >> AVG_FRAC_BITS
    }
}

/// What a decision needs of a held task, and the sequence number of its queue entry.
/// Not the whole [`QueuedTask`]: that would make each entry of the task table 160
/// bytes instead of 96, and the table (room for 8192 tasks, 16384 entries, locked in
/// memory) 2.6 MiB instead of 1.5.
#[derive(Debug, Clone, Copy)]
struct Held {
    seq: u64,
    generation: u64,
    flags: u64,
    prev_cpu: Cpu,
    nr_cpus_allowed: u32,
    weight: u32,
}

impl Held {
    fn new(seq: u64, task: &QueuedTask) -> Self {
        Held {
            seq,
            generation: task.generation,
            flags: task.flags,
            prev_cpu: task.prev_cpu,
            nr_cpus_allowed: task.nr_cpus_allowed,
            weight: task.weight,
        }
    }

    /// The task as enqueued, with what the policy did not keep left at zero.
    fn task(&self, pid: Pid) -> QueuedTask {
        QueuedTask {
            prev_cpu: self.prev_cpu,
            nr_cpus_allowed: self.nr_cpus_allowed,
            flags: self.flags,
            weight: self.weight,
            ..QueuedTask::new(pid, self.generation)
        }
    }
}

/// The rustland policy. See the module documentation.
pub struct Rustland {
    tasks: HashMap<Pid, TaskState>,
    /// Deadline queue: (deadline, enqueue sequence, pid), earliest first; ties go to
    /// the earlier enqueue. Entries of tasks re-queued or gone since are skipped when
    /// they come out (lazy deletion: no search, no allocation).
    queue: BinaryHeap<Reverse<(u64, u64, Pid)>>,
    nr_held: usize,
    seq: u64,
    vtime_now: u64,
    slice_max_ns: u64,
    slice_min_ns: u64,
    percpu_local: bool,
    standing: bool,
    credit_full_log2: u32,
    last_slice_ns: u64,
    nr_standing: u64,
}

impl Default for Rustland {
    fn default() -> Self {
        Rustland::new(RUSTLAND_SLICE_NS, RUSTLAND_SLICE_MIN_NS)
    }
}

impl Rustland {
    /// Slices between `slice_min_ns` and `slice_max_ns` (a minimum above the maximum is
    /// lowered to it; a zero maximum is raised to 1 ns).
    pub fn new(slice_max_ns: u64, slice_min_ns: u64) -> Self {
        let slice_max_ns = slice_max_ns.max(1);
        Rustland {
            tasks: HashMap::with_capacity(TASK_CAPACITY),
            queue: BinaryHeap::with_capacity(TASK_CAPACITY),
            nr_held: 0,
            seq: 0,
            vtime_now: 0,
            slice_max_ns,
            slice_min_ns: slice_min_ns.min(slice_max_ns),
            percpu_local: false,
            standing: false,
            credit_full_log2: CREDIT_FULL_LOG2,
            last_slice_ns: 0,
            nr_standing: 0,
        }
    }

    /// Keep every task on the CPU it ran on last.
    pub fn with_percpu_local(mut self, percpu_local: bool) -> Self {
        self.percpu_local = percpu_local;
        self
    }

    /// Whether waking tasks that switch at least [`STANDING_MIN_NVCSW`] times a
    /// second get standing instructions, or every enqueue comes to the policy (the
    /// default: in the VM, standing instructions doubled desktop-mix's ping-pong
    /// round trips but made its audio task miss more periods; see README.md).
    pub fn with_standing(mut self, standing: bool) -> Self {
        self.standing = standing;
        self
    }

    /// The wake-up rate (per second, 1 to 1000) from which a waking task gets the whole
    /// latency credit ([`CREDIT_FULL_RATE`] by default); below it the credit falls on
    /// a log scale. Lower, more tasks share the full credit and vruntime orders them.
    /// Measured in the VM (README.md, "The latency credit"): at 128/s desktop-mix's
    /// 30 fps video falls behind (several times EEVDF's frames missed); at 4/s
    /// game-while-building's game falls far behind more often when the machine is
    /// slow; 16/s did as well as either on the game and close to 4/s on the video.
    pub fn with_credit_full_rate(mut self, rate: u64) -> Self {
        self.credit_full_log2 = (rate.clamp(1, NVCSW_RATE_MAX) * 2 + 1).ilog2();
        self
    }

    /// The vruntime of `pid`, if the policy has state for it.
    pub fn vruntime(&self, pid: Pid) -> Option<u64> {
        self.tasks.get(&pid).map(|t| t.vruntime)
    }

    /// The virtual clock: the largest vruntime dispatched so far.
    pub fn vtime_now(&self) -> u64 {
        self.vtime_now
    }

    /// The largest latency credit, ns.
    pub fn credit_cap_ns(&self) -> u64 {
        self.slice_max_ns.saturating_mul(CREDIT_CAP_SLICES)
    }

    /// How far below the virtual clock a vruntime may lag, ns.
    pub fn sleep_lag_ns(&self) -> u64 {
        self.slice_max_ns.saturating_mul(SLEEP_LAG_SLICES)
    }

    /// Credit for a task with switch-rate average `avg_nvcsw_fp` (fixed point, see
    /// [`AVG_FRAC_BITS`]): log scale, from 0 (never sleeps) to the cap (by default from
    /// 32 switches/s, or 16/s on a wake-up; see [`CREDIT_FULL_LOG2`] and
    /// [`Rustland::with_credit_full_rate`]). `log2(lat_w)` is taken on the fixed-point
    /// value, so a task averaging under one switch a second still earns a step.
    fn credit_ns(&self, avg_nvcsw_fp: u64, wakeup: bool) -> u64 {
        let one = 1 << AVG_FRAC_BITS;
        let lat_w_fp = avg_nvcsw_fp.min(NVCSW_RATE_MAX * one) * if wakeup { 2 } else { 1 } + one;
        let full = self.credit_full_log2.max(1);
        let steps = u128::from((lat_w_fp.ilog2() - AVG_FRAC_BITS).min(full));
        (u128::from(self.credit_cap_ns()) * steps / u128::from(full)) as u64
    }
}

impl Policy for Rustland {
    fn name(&self) -> &'static str {
        "rustland"
    }

    fn enqueue(&mut self, task: &QueuedTask, ctx: &mut Context<'_>) {
        let now = ctx.now_ns();
        let vtime_now = self.vtime_now;
        let floor = vtime_now.saturating_sub(self.sleep_lag_ns());
        // A new task starts at the virtual clock, without the sleeper lag or any
        // credit: forking cannot buy a head start. Its first charge is its last run.
        let st = self.tasks.entry(task.pid).or_insert_with(|| TaskState {
            vruntime: vtime_now,
            sum_exec_ns: task.sum_exec_runtime_ns.saturating_sub(task.last_run_ns),
            nvcsw: task.nvcsw,
            nvcsw_ts: now,
            avg_nvcsw_fp: 0,
            held: None,
        });

        // A counter that went backwards means a reused pid whose exit we missed: fall
        // back to the last run.
        let ran_ns = task
            .sum_exec_runtime_ns
            .checked_sub(st.sum_exec_ns)
            .unwrap_or(task.last_run_ns);
        st.sum_exec_ns = task.sum_exec_runtime_ns;
        let used_ns = ran_ns.max(RUN_CHARGE_MIN_NS).min(self.slice_max_ns);

        let dt = now.saturating_sub(st.nvcsw_ts);
        if dt >= NVCSW_PERIOD_NS {
            let d_nvcsw = task.nvcsw.saturating_sub(st.nvcsw);
            let rate = (u128::from(d_nvcsw) * 1_000_000_000 / u128::from(dt))
                .min(u128::from(NVCSW_RATE_MAX)) as u64;
            st.avg_nvcsw_fp = st.avg_nvcsw_fp - st.avg_nvcsw_fp / 4 + (rate << AVG_FRAC_BITS) / 4;
            st.nvcsw = task.nvcsw;
            st.nvcsw_ts = now;
        }

        let weight = u64::from(task.weight.max(1));
        let charge = used_ns.saturating_mul(WEIGHT_NICE0) / weight;
        st.vruntime = st.vruntime.max(floor).saturating_add(charge);
        let avg_nvcsw_fp = st.avg_nvcsw_fp;
        let vruntime = st.vruntime;
        let newly_held = st.held.is_none();
        self.seq += 1;
        st.held = Some(Held::new(self.seq, task));
        if newly_held {
            self.nr_held += 1;
        }

        let deadline = vruntime.saturating_sub(self.credit_ns(avg_nvcsw_fp, task.is_wakeup()));
        self.queue.push(Reverse((deadline, self.seq, task.pid)));
    }

    fn dispatch(&mut self, ctx: &mut Context<'_>) -> Option<Decision> {
        let (deadline, task, vruntime, avg_nvcsw) = loop {
            let Reverse((deadline, seq, pid)) = self.queue.pop()?;
            let Some(st) = self.tasks.get_mut(&pid) else {
                continue; // exited while held
            };
            match st.held {
                Some(held) if held.seq == seq => {
                    st.held = None;
                    break (deadline, held.task(pid), st.vruntime, st.avg_nvcsw());
                }
                _ => continue, // re-queued since: a later entry stands for it
            }
        };
        self.nr_held -= 1;
        self.vtime_now = self.vtime_now.max(vruntime);

        // The context counts the task being dispatched among the waiting ones.
        let others = ctx.nr_waiting().saturating_sub(1);
        let slice_ns = (self.slice_max_ns / others.saturating_add(1)).max(self.slice_min_ns);
        self.last_slice_ns = slice_ns;

        let target = if self.percpu_local {
            CpuTarget::On(task.prev_cpu)
        } else {
            ctx.select_idle_cpu(&task)
                .map_or(CpuTarget::Any, CpuTarget::On)
        };
        // A task that just woke up with a deadline earlier than a running task's by
        // more than a minimum slice takes its CPU rather than waiting up to a slice
        // (plus a tick) for it. The margin keeps tasks of the same kind (all of
        // hackbench's, with the same credit) from preempting one another over small
        // differences in vruntime: each preemption is two switches and one more round
        // trip through the scheduler.
        let d = Decision::new(&task, slice_ns)
            .target(target)
            .vtime(deadline)
            .preempt_margin(task.is_wakeup().then_some(self.slice_min_ns));
        // A task that wakes this often keeps this place for its next wake-ups (they
        // skip the trip) until it has used a minimum slice of CPU time: the kernel
        // side advances its vtime by what it uses, as `enqueue` would, and the next
        // trip charges it all. Only on a wake-up: a task whose slice ran out is not
        // behaving as a sleeper right now.
        if self.standing && task.is_wakeup() && avg_nvcsw >= STANDING_MIN_NVCSW {
            self.nr_standing += 1;
            let ttl = self.slice_max_ns.saturating_mul(STANDING_TTL_SLICES);
            return Some(d.standing(self.slice_min_ns, ttl));
        }
        Some(d)
    }

    fn task_exit(&mut self, pid: Pid) {
        if let Some(st) = self.tasks.remove(&pid) {
            if st.held.is_some() {
                self.nr_held -= 1;
            }
        }
    }

    fn nr_held(&self) -> usize {
        self.nr_held
    }

    fn stats(&self) -> PolicyStats {
        let (lo, hi) = self
            .tasks
            .values()
            .filter(|t| t.held.is_some())
            .fold((u64::MAX, 0), |(lo, hi), t| {
                (lo.min(t.vruntime), hi.max(t.vruntime))
            });
        PolicyStats::new(self.tasks.len() as u64, self.last_slice_ns)
            .with_figure("vruntime spread", hi.saturating_sub(lo) as f64 / 1e6, "ms")
            .with_figure("standing instructions", self.nr_standing as f64, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schedkit_core::{fake::FakeBackend, Backend, Cpu, Runtime, ENQ_WAKEUP};

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    /// A task as the kernel would report it over successive enqueues.
    struct Sim {
        pid: Pid,
        weight: u32,
        generation: u64,
        sum_exec_ns: u64,
        nvcsw: u64,
        prev_cpu: u32,
    }

    impl Sim {
        fn new(pid: Pid) -> Self {
            Sim {
                pid,
                weight: 100,
                generation: 0,
                sum_exec_ns: 0,
                nvcsw: 0,
                prev_cpu: 0,
            }
        }

        /// The next enqueue after running `ran_ns` and sleeping voluntarily `d_nvcsw` times.
        fn next(&mut self, ran_ns: u64, d_nvcsw: u64, wakeup: bool) -> QueuedTask {
            self.generation += 1;
            self.sum_exec_ns += ran_ns;
            self.nvcsw += d_nvcsw;
            QueuedTask {
                prev_cpu: Cpu(self.prev_cpu),
                flags: if wakeup { ENQ_WAKEUP } else { 0 },
                weight: self.weight,
                last_run_ns: ran_ns,
                nvcsw: self.nvcsw,
                sum_exec_runtime_ns: self.sum_exec_ns,
                ..QueuedTask::new(self.pid, self.generation)
            }
        }
    }

    fn enqueue(p: &mut Rustland, fake: &mut FakeBackend, task: QueuedTask) {
        let held = p.nr_held();
        p.enqueue(&task, &mut Context::new(fake, held));
    }

    fn dispatch(p: &mut Rustland, fake: &mut FakeBackend) -> Option<Decision> {
        let held = p.nr_held();
        p.dispatch(&mut Context::new(fake, held))
    }

    fn dispatch_all(p: &mut Rustland, fake: &mut FakeBackend) -> Vec<Decision> {
        std::iter::from_fn(|| dispatch(p, fake)).collect()
    }

    /// Rounds of one second in which `hog` and `sleeper` both run 1 ms; the sleeper
    /// also blocks 1000 times. Returns the dispatch order of each round.
    fn rounds_hog_and_sleeper(
        p: &mut Rustland,
        fake: &mut FakeBackend,
        hog: &mut Sim,
        sleeper: &mut Sim,
        secs: std::ops::Range<u64>,
    ) -> Vec<Vec<Pid>> {
        secs.map(|s| {
            fake.set_now(s * SEC);
            enqueue(p, fake, hog.next(MS, 0, true));
            enqueue(p, fake, sleeper.next(MS, 1000, true));
            dispatch_all(p, fake).iter().map(|d| d.pid).collect()
        })
        .collect()
    }

    #[test]
    fn only_a_wakeup_may_preempt_and_only_by_more_than_the_minimum_slice() {
        let mut fake = FakeBackend::new(1);
        let mut p = Rustland::new(20 * MS, 5 * MS);
        let mut t = Sim::new(1);
        enqueue(&mut p, &mut fake, t.next(MS, 1, true));
        let d = dispatch(&mut p, &mut fake).unwrap();
        assert_eq!(d.preempt_margin_ns, Some(5 * MS));
        // Back after its slice ended: it waits for a CPU like everyone else.
        enqueue(&mut p, &mut fake, t.next(20 * MS, 0, false));
        let d = dispatch(&mut p, &mut fake).unwrap();
        assert_eq!(d.preempt_margin_ns, None);
    }

    #[test]
    fn only_a_frequent_waker_on_a_wakeup_gets_a_standing_instruction() {
        let mut fake = FakeBackend::new(2);
        let mut p = Rustland::new(20 * MS, 5 * MS).with_standing(true);
        let (mut hog, mut sleeper) = (Sim::new(1), Sim::new(2));
        // No rate known yet: nobody gets one.
        enqueue(&mut p, &mut fake, hog.next(MS, 0, true));
        enqueue(&mut p, &mut fake, sleeper.next(MS, 1000, true));
        let first = dispatch_all(&mut p, &mut fake);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|d| d.standing.is_none()), "{first:?}");
        // Once the sleeper's rate (1000/s) is known, its wake-ups carry one: one
        // minimum slice of CPU time, for two maximum slices at most.
        fake.set_now(5 * SEC);
        let mut issued = 0;
        for _ in 0..5 {
            enqueue(&mut p, &mut fake, sleeper.next(MS, 1000, true));
            issued += u64::from(dispatch(&mut p, &mut fake).unwrap().standing.is_some());
            fake.set_now(fake.now_ns() + SEC);
        }
        // The first sample puts its average at 250/s, over the threshold.
        assert_eq!(issued, 4);
        enqueue(&mut p, &mut fake, sleeper.next(MS, 1000, true));
        let d = dispatch(&mut p, &mut fake).unwrap();
        assert_eq!(
            d.standing,
            Some(schedkit_core::Standing {
                cpu_budget_ns: 5 * MS,
                ttl_ns: 40 * MS
            })
        );
        // The hog (no voluntary switches) never does, and neither does the sleeper
        // when its slice ran out (not a wake-up).
        enqueue(&mut p, &mut fake, hog.next(MS, 0, true));
        assert_eq!(dispatch(&mut p, &mut fake).unwrap().standing, None);
        enqueue(&mut p, &mut fake, sleeper.next(20 * MS, 0, false));
        assert_eq!(dispatch(&mut p, &mut fake).unwrap().standing, None);
        assert!(p
            .stats()
            .figures()
            .any(|f| f.name == "standing instructions" && f.value == 5.0));

        // Off (the default), the same wake-up carries none.
        let mut off = Rustland::new(20 * MS, 5 * MS);
        let mut s2 = Sim::new(3);
        for i in 0..7 {
            fake.set_now(10 * SEC + i * SEC);
            enqueue(&mut off, &mut fake, s2.next(MS, 1000, true));
            assert_eq!(dispatch(&mut off, &mut fake).unwrap().standing, None);
        }
    }

    #[test]
    fn high_switch_rate_task_is_dispatched_before_a_hog_with_the_same_vruntime() {
        let mut fake = FakeBackend::new(2);
        let mut p = Rustland::default();
        let (mut hog, mut sleeper) = (Sim::new(1), Sim::new(2));
        let order = rounds_hog_and_sleeper(&mut p, &mut fake, &mut hog, &mut sleeper, 0..6);
        // Before any rate is known, the tie goes to the earlier enqueue: the hog.
        assert_eq!(order[0], [1, 2]);
        assert_eq!(order[5], [2, 1]);

        fake.set_now(6 * SEC);
        enqueue(&mut p, &mut fake, hog.next(MS, 0, true));
        enqueue(&mut p, &mut fake, sleeper.next(MS, 1000, true));
        assert_eq!(p.vruntime(1), p.vruntime(2));
        let d = dispatch_all(&mut p, &mut fake);
        assert_eq!(d[0].pid, 2);
        assert!(d[0].vtime < d[1].vtime, "{d:?}");
    }

    #[test]
    fn a_task_table_entry_stays_small() {
        // The table is locked in memory with room for TASK_CAPACITY tasks up front.
        assert!(std::mem::size_of::<(Pid, TaskState)>() <= 96);
    }

    /// Tasks 1, 2, 3 blocking at `rates` (per second) for eight seconds, each running a
    /// maximum slice a second, then woken together in `wake_order` (indices) with the
    /// same vruntime (one sleeper lag below the clock): that vruntime, and the
    /// decisions in dispatch order.
    fn sleepers_woken_together(
        p: &mut Rustland,
        rates: [u64; 3],
        wake_order: [usize; 3],
    ) -> (u64, Vec<Decision>) {
        let mut fake = FakeBackend::new(2);
        let mut tasks: Vec<Sim> = (1..=3).map(Sim::new).collect();
        for s in 0..8 {
            fake.set_now(s * SEC);
            for (t, rate) in tasks.iter_mut().zip(rates) {
                enqueue(p, &mut fake, t.next(RUSTLAND_SLICE_NS, rate, true));
            }
            dispatch_all(p, &mut fake);
        }
        fake.set_now(9 * SEC);
        for i in wake_order {
            enqueue(p, &mut fake, tasks[i].next(MS, rates[i], true));
        }
        let v = p.vruntime(1).unwrap();
        assert!(p.vruntime(2) == Some(v) && p.vruntime(3) == Some(v));
        (v, dispatch_all(p, &mut fake))
    }

    #[test]
    fn above_the_full_rate_more_switches_buy_no_earlier_place() {
        let mut p = Rustland::default().with_credit_full_rate(128);
        // A ping-pong thread, an audio callback, a 30 fps video; the audio wakes first.
        let (v, d) = sleepers_woken_together(&mut p, [1000, 200, 30], [1, 0, 2]);
        let order: Vec<Pid> = d.iter().map(|d| d.pid).collect();
        // Full credit for both frequent sleepers: arrival order between them.
        assert_eq!(order, [2, 1, 3], "{d:?}");
        assert_eq!(d[0].vtime, d[1].vtime);
        assert_eq!(v - d[0].vtime, p.credit_cap_ns(), "{d:?} {v:?}");
        // The video, at 30/s (an average still rising towards it), gets less.
        assert!(d[2].vtime > d[0].vtime && d[2].vtime < v, "{d:?}");
    }

    #[test]
    fn a_task_waking_once_or_twice_a_second_earns_some_credit() {
        let mut p = Rustland::default();
        // Twice a second, once a second, never: woken together, in reverse order.
        let (v, mut d) = sleepers_woken_together(&mut p, [2, 1, 0], [2, 1, 0]);
        let order: Vec<Pid> = d.iter().map(|d| d.pid).collect();
        assert_eq!(order, [1, 2, 3], "{d:?}");
        d.sort_by_key(|d| d.pid);
        let credit: Vec<u64> = d.iter().map(|d| v - d.vtime).collect();
        // After seven samples the averages are about 1.7/s and 0.87/s: `lat_w` on a
        // wake-up is about 4.5 and 2.7, two steps of eight and one. In whole numbers
        // both averages stayed at 0 (`rate / 4`), and so did their credit.
        let step = p.credit_cap_ns() / u64::from(CREDIT_FULL_LOG2);
        assert_eq!(credit, [2 * step, step, 0], "{d:?}");
    }

    #[test]
    fn a_lower_full_credit_rate_gives_a_30_fps_task_the_whole_credit() {
        // Deadlines by pid, of tasks at 200, 30 and 6 wake-ups a second.
        let deadlines = |mut p: Rustland| {
            let (v, mut d) = sleepers_woken_together(&mut p, [200, 30, 6], [0, 1, 2]);
            d.sort_by_key(|d| d.pid);
            (
                v,
                p.credit_cap_ns(),
                d.iter().map(|d| d.vtime).collect::<Vec<_>>(),
            )
        };
        // Full from 128 wake-ups a second: the 30/s task gets less than the 200/s one.
        let (v, cap, d) = deadlines(Rustland::default().with_credit_full_rate(128));
        assert_eq!(v - d[0], cap);
        assert!(d[1] > d[0], "{d:?}");
        // By default (16/s): the same deadline; 6/s still gets less.
        let (v, cap, d) = deadlines(Rustland::default());
        assert_eq!((v - d[0], v - d[1]), (cap, cap), "{d:?}");
        assert!(d[2] > d[1] && d[2] < v, "{d:?}");
        // The default rate is the default cap.
        let p = Rustland::default().with_credit_full_rate(CREDIT_FULL_RATE);
        assert_eq!(p.credit_full_log2, CREDIT_FULL_LOG2);
    }

    #[test]
    fn sleeper_credit_after_a_long_sleep_is_capped() {
        let mut fake = FakeBackend::new(2);
        let mut p = Rustland::default();
        let (mut hog, mut sleeper) = (Sim::new(1), Sim::new(2));
        rounds_hog_and_sleeper(&mut p, &mut fake, &mut hog, &mut sleeper, 0..6);

        // The sleeper sleeps 10 s while the hog runs full slices.
        let mut now = 6 * SEC;
        for _ in 0..2000 {
            now += RUSTLAND_SLICE_NS;
            fake.set_now(now);
            enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
            assert_eq!(dispatch(&mut p, &mut fake).map(|d| d.pid), Some(1));
        }
        let vtime_now = p.vtime_now();
        assert!(
            vtime_now > 9 * SEC,
            "the hog's vruntime moved on: {vtime_now}"
        );

        enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
        enqueue(&mut p, &mut fake, sleeper.next(10_000, 10_000, true));
        let d = dispatch_all(&mut p, &mut fake);
        assert_eq!(d[0].pid, 2, "the sleeper still gets in first");
        let lead = vtime_now - d[0].vtime;
        assert!(
            lead <= p.sleep_lag_ns() + p.credit_cap_ns(),
            "sleeper {lead} ns ahead of the clock"
        );
        assert!(
            lead >= p.credit_cap_ns(),
            "the full credit was given: {lead}"
        );
        assert!(
            d[1].vtime - d[0].vtime <= p.sleep_lag_ns() + p.credit_cap_ns() + RUSTLAND_SLICE_NS
        );
    }

    #[test]
    fn hog_is_dispatched_within_bounded_decisions_while_sleepers_keep_arriving() {
        let mut fake = FakeBackend::new(2);
        let mut p = Rustland::default();
        let mut hog = Sim::new(1);
        let mut sleepers: Vec<Sim> = (2..=5).map(Sim::new).collect();
        // Six seconds in which the sleepers reach the highest switch rate.
        for s in 0..6 {
            fake.set_now(s * SEC);
            enqueue(&mut p, &mut fake, hog.next(MS, 0, false));
            for sl in &mut sleepers {
                enqueue(&mut p, &mut fake, sl.next(MS, 1000, true));
            }
            dispatch_all(&mut p, &mut fake);
        }
        // Then ten seconds of the hog alone.
        let mut now = 6 * SEC;
        for _ in 0..2000 {
            now += RUSTLAND_SLICE_NS;
            fake.set_now(now);
            enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
            dispatch_all(&mut p, &mut fake);
        }

        // The hog waits; the sleepers wake, run 100 us each and come back, forever.
        enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
        for sl in &mut sleepers {
            enqueue(&mut p, &mut fake, sl.next(100_000, 1, true));
        }
        let run_ns = 100_000;
        let per_sleeper = (p.sleep_lag_ns() + p.credit_cap_ns() + RUSTLAND_SLICE_NS) / run_ns + 2;
        let bound = per_sleeper * sleepers.len() as u64;
        let mut before_hog = 0;
        loop {
            let d = dispatch(&mut p, &mut fake).expect("someone is always waiting");
            if d.pid == 1 {
                break;
            }
            before_hog += 1;
            assert!(before_hog <= bound, "hog starved past {bound} decisions");
            now += run_ns;
            fake.set_now(now);
            let sl = sleepers.iter_mut().find(|s| s.pid == d.pid).unwrap();
            enqueue(&mut p, &mut fake, sl.next(run_ns, 1, true));
        }
        assert!(before_hog > 0, "the sleepers' credit let them go first");
    }

    #[test]
    fn tasks_reporting_no_run_time_cannot_starve_a_hog() {
        let mut fake = FakeBackend::new(1);
        let mut p = Rustland::default();
        let mut hog = Sim::new(1);
        enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
        assert_eq!(dispatch(&mut p, &mut fake).map(|d| d.pid), Some(1));
        enqueue(&mut p, &mut fake, hog.next(RUSTLAND_SLICE_NS, 0, false));
        let mut other = Sim::new(2);
        enqueue(&mut p, &mut fake, other.next(0, 0, true));
        let bound = 2 * RUSTLAND_SLICE_NS / RUN_CHARGE_MIN_NS + 2;
        let n = (0..bound)
            .take_while(|_| {
                let d = dispatch(&mut p, &mut fake).unwrap();
                enqueue(&mut p, &mut fake, other.next(0, 0, true));
                d.pid != 1
            })
            .count() as u64;
        assert!(n > 0 && n < bound, "hog ran after {n} decisions");
    }

    #[test]
    fn slice_shrinks_with_waiting_tasks_but_never_below_the_minimum() {
        let mut fake = FakeBackend::new(2);
        let mut p = Rustland::new(8 * MS, MS);
        for pid in 1..=16 {
            enqueue(&mut p, &mut fake, Sim::new(pid).next(0, 0, true));
        }
        let slices: Vec<u64> = dispatch_all(&mut p, &mut fake)
            .iter()
            .map(|d| d.slice_ns)
            .collect();
        let expected: Vec<u64> = (1..=16u64).rev().map(|k| (8 * MS / k).max(MS)).collect();
        assert_eq!(slices, expected);
        assert_eq!(slices[0], MS);
        assert_eq!(slices[15], 8 * MS);
        assert_eq!(p.stats().slice_ns, 8 * MS);

        // Tasks still on their way from the kernel count as waiting too.
        for pid in 20..23 {
            fake.push_task(QueuedTask::new(pid, 1));
        }
        enqueue(&mut p, &mut fake, Sim::new(30).next(0, 0, true));
        assert_eq!(dispatch(&mut p, &mut fake).unwrap().slice_ns, 2 * MS);
    }

    #[test]
    fn weight_200_accrues_vruntime_at_half_the_rate_of_weight_100() {
        let vruntime_after = |weight: u32| {
            let mut fake = FakeBackend::new(1);
            let mut p = Rustland::default();
            let mut t = Sim {
                weight,
                ..Sim::new(1)
            };
            for _ in 0..10 {
                enqueue(&mut p, &mut fake, t.next(4 * MS, 0, false));
                dispatch(&mut p, &mut fake).unwrap();
            }
            p.vruntime(1).unwrap()
        };
        let (v100, v200) = (vruntime_after(100), vruntime_after(200));
        assert!(v100 >= 36 * MS, "{v100}");
        assert_eq!(v100, 2 * v200);
    }

    #[test]
    fn exited_task_state_is_dropped() {
        let mut fake = FakeBackend::new(2);
        for pid in 1..=3 {
            fake.push_task(QueuedTask::new(pid, 1));
        }
        let mut rt = Runtime::new(Rustland::default(), fake);
        rt.step().unwrap();
        assert_eq!(rt.policy().stats().nr_tasks, 3);
        rt.backend_mut().push_exit(2);
        rt.step().unwrap();
        assert_eq!(rt.policy().stats().nr_tasks, 2);
        assert_eq!(rt.policy().vruntime(2), None);

        // An exit while held: nothing is left to dispatch.
        let mut p = Rustland::default();
        let mut fake = FakeBackend::new(1);
        enqueue(&mut p, &mut fake, QueuedTask::new(7, 1));
        p.task_exit(7);
        assert_eq!(p.nr_held(), 0);
        assert_eq!(dispatch(&mut p, &mut fake), None);

        // Many short-lived processes: no state stays behind, the map does not grow.
        let capacity = p.tasks.capacity();
        for pid in 100..100_000 {
            enqueue(&mut p, &mut fake, QueuedTask::new(pid, 1));
            dispatch(&mut p, &mut fake).unwrap();
            p.task_exit(pid);
        }
        assert_eq!(p.stats().nr_tasks, 0);
        assert_eq!(p.tasks.capacity(), capacity);
    }

    #[test]
    fn requeued_held_task_is_dispatched_once_with_its_latest_generation_and_deadline() {
        let mut fake = FakeBackend::new(1);
        let mut p = Rustland::default();
        let (mut a, mut b) = (Sim::new(4), Sim::new(5));
        enqueue(&mut p, &mut fake, a.next(0, 0, false));
        enqueue(&mut p, &mut fake, b.next(2 * MS, 0, false));
        // Re-queued while held, after running 4 ms more: now behind b.
        enqueue(&mut p, &mut fake, a.next(4 * MS, 0, false));
        assert_eq!(p.nr_held(), 2);
        let d = dispatch_all(&mut p, &mut fake);
        let got: Vec<_> = d.iter().map(|d| (d.pid, d.generation)).collect();
        assert_eq!(got, [(5, 1), (4, 2)]);
        assert_eq!(d[1].vtime, p.vruntime(4).unwrap());
    }

    #[test]
    fn percpu_local_targets_the_previous_cpu_and_leaves_idle_cpus_alone() {
        let mut fake = FakeBackend::new(4);
        fake.set_idle(Cpu(3));
        let mut p = Rustland::default().with_percpu_local(true);
        let mut t = Sim {
            prev_cpu: 1,
            ..Sim::new(1)
        };
        enqueue(&mut p, &mut fake, t.next(0, 0, true));
        assert_eq!(
            dispatch(&mut p, &mut fake).unwrap().target,
            CpuTarget::On(Cpu(1))
        );
        assert_eq!(fake.select_idle_cpu(&t.next(0, 0, true)), Some(Cpu(3)));
    }

    #[test]
    fn idle_cpu_is_used_when_available_and_any_cpu_otherwise() {
        let mut fake = FakeBackend::new(4);
        fake.set_idle(Cpu(3));
        let mut p = Rustland::default();
        let (mut a, mut b) = (
            Sim {
                prev_cpu: 1,
                ..Sim::new(1)
            },
            Sim::new(2),
        );
        enqueue(&mut p, &mut fake, a.next(0, 0, true));
        enqueue(&mut p, &mut fake, b.next(0, 0, true));
        let d = dispatch_all(&mut p, &mut fake);
        assert_eq!(d[0].target, CpuTarget::On(Cpu(3)));
        assert_eq!(d[1].target, CpuTarget::Any);
    }

    fn vruntime_spread_ms(p: &Rustland) -> f64 {
        let stats = p.stats();
        let f = stats.figures().find(|f| f.name == "vruntime spread");
        f.expect("rustland reports its vruntime spread").value
    }

    #[test]
    fn stats_report_the_vruntime_spread_of_held_tasks() {
        let mut fake = FakeBackend::new(1);
        let mut p = Rustland::default();
        let (mut a, mut b) = (Sim::new(1), Sim::new(2));
        enqueue(&mut p, &mut fake, a.next(4 * MS, 0, false));
        enqueue(&mut p, &mut fake, b.next(MS, 0, false));
        assert_eq!(vruntime_spread_ms(&p), 3.0);
        dispatch(&mut p, &mut fake).unwrap();
        assert_eq!(vruntime_spread_ms(&p), 0.0);
        assert_eq!(p.stats().nr_tasks, 2);
    }

    #[test]
    fn huge_weights_times_and_counters_do_not_overflow() {
        let mut fake = FakeBackend::new(1);
        fake.set_now(u64::MAX);
        let mut p = Rustland::new(u64::MAX, u64::MAX);
        let task = QueuedTask {
            weight: 1,
            flags: ENQ_WAKEUP,
            nvcsw: u64::MAX,
            sum_exec_runtime_ns: u64::MAX,
            last_run_ns: u64::MAX,
            ..QueuedTask::new(1, 1)
        };
        for _ in 0..3 {
            enqueue(&mut p, &mut fake, task);
            let d = dispatch(&mut p, &mut fake).unwrap();
            assert_eq!(d.slice_ns, u64::MAX);
        }
        assert_eq!(p.vruntime(1), Some(u64::MAX));
    }
}
