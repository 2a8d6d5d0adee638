//! A `perf sched latency`-style summary of a trace, built while the events stream
//! past ([`SummaryBuilder`] is a [`Sink`]) and read as a [`Summary`]: per task, per
//! process and per CPU figures, the user-space scheduler's own CPU share and, for
//! schedkit runs, the tasks' trips through the policy.
//!
//! # Definitions
//!
//! * **Run time** of a thread: the time between a [`Event::Switch`] that makes it
//!   `next` on a CPU and the following switch on that CPU (or the end of the trace).
//!   Before the first switch seen on a CPU its occupant is unknown: that stretch
//!   counts for nobody, and the CPU is not busy during it (see
//!   [`CpuSummary::observed_ns`]).
//! * **Wake-up latency**: from a [`Event::Wakeup`] to the switch where the thread
//!   becomes `next`. A wake-up of a thread that is running or already waiting (woken
//!   or preempted, and not yet run since) does not restart the clock: the first one
//!   counts. A thread seen switching out drops a pending wake-up (it was running).
//! * **Run delay**: from the switch where a thread is preempted (switched out with
//!   `prev_runnable`) to the switch where it runs again. Kept apart from the wake-up
//!   latency; [`TaskSummary::delay`] is the two together, the "delay" `perf sched
//!   latency` prints (it counts both).
//! * **Shares**: `cpu_share` is of one CPU over the trace (`run / duration`, like
//!   `top`'s %CPU: a process may exceed 1); `machine_share` is of all CPUs
//!   (`run / (duration × nr_cpus)`).
//! * **Voluntary** switches: switched out while not runnable (blocked, exiting);
//!   **involuntary**: switched out while runnable (preempted).
//! * **Trips** (schedkit runs, from [`Event::Enqueued`] and [`Event::Decision`]):
//!   enqueued → decision for decisions that followed an `Enqueued` of the task, and
//!   decision → running for every decision (the policy's and the kernel's) followed
//!   by the task's switch-in. A second `Enqueued` (or decision) before the next
//!   step keeps the first time.
//!
//! Pid 0 (idle) is never a task. An [`Event::Exit`] drops the thread's pending
//! clocks. A [`Event::Thread`] (or a `new_task` wake-up) for a pid that exited
//! starts a new task: the old one stays in the summary under the same pid.
//! Negative intervals (events out of order) count as 0.
//!
//! Latencies are recorded in nanoseconds in HDR histograms (3 significant figures,
//! resized as needed) and reported in microseconds; means and maxima are exact.
//! Memory is bounded by the number of threads and CPUs: a thread that exited keeps
//! its histograms compressed.

use std::collections::HashMap;
use std::io::{self, Write};

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::{Event, Pid, Sink, Target, TraceInfo, TraceSource};

/// Significant figures of the latency histograms.
const SIGFIG: u8 = 3;
/// CPU ids from this on are ignored (a corrupt event must not allocate gigabytes).
const MAX_CPUS: u32 = 1 << 16;
/// Width of the comm column in the table.
const COMM_WIDTH: usize = 16;

/// Summary statistics of a set of latencies, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples; when 0, every other field is 0.
    pub count: u64,
    /// Median (HDR histogram, 3 significant figures).
    pub p50_us: f64,
    /// 99th percentile (HDR histogram, 3 significant figures).
    pub p99_us: f64,
    /// Largest sample (exact).
    pub max_us: f64,
    /// Mean (exact).
    pub mean_us: f64,
}

/// One thread (one incarnation of a pid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Thread id.
    pub pid: Pid,
    /// Process id (`pid` itself when no [`Event::Thread`] named the thread).
    pub tgid: Pid,
    /// The thread's last name (empty when never named).
    pub comm: String,
    /// One of the user-space scheduler's threads.
    pub scheduler: bool,
    /// The thread exited during the trace.
    pub exited: bool,
    /// Time on a CPU, ns.
    pub run_ns: u64,
    /// `run_ns / duration`: share of one CPU (may exceed 1 for a process).
    pub cpu_share: f64,
    /// `run_ns / (duration × nr_cpus)`: share of the whole machine.
    pub machine_share: f64,
    /// Switch-ins.
    pub runs: u64,
    /// Switched out while not runnable (blocked or exiting).
    pub voluntary: u64,
    /// Switched out while runnable (preempted).
    pub involuntary: u64,
    /// [`Event::Migrate`] events.
    pub migrations: u64,
    /// Wake-ups that started the latency clock (not counting those of a thread
    /// already running or waiting).
    pub wakeups: u64,
    /// Wake-up → running.
    pub wakeup: LatencyStats,
    /// Preempted → running again.
    pub run_delay: LatencyStats,
    /// Both of the above together (what `perf sched latency` calls the delay).
    pub delay: LatencyStats,
}

/// One process: its threads' figures added up (latency histograms merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// Process id.
    pub tgid: Pid,
    /// The main thread's name, or the first seen thread's when the main thread
    /// never appeared.
    pub comm: String,
    /// Number of threads (incarnations) seen.
    pub threads: u64,
    /// Some thread is the user-space scheduler's.
    pub scheduler: bool,
    /// Sum of the threads' run time, ns.
    pub run_ns: u64,
    /// `run_ns / duration`: share of one CPU (may exceed 1).
    pub cpu_share: f64,
    /// `run_ns / (duration × nr_cpus)`: share of the whole machine.
    pub machine_share: f64,
    /// Switch-ins.
    pub runs: u64,
    /// Voluntary switches.
    pub voluntary: u64,
    /// Involuntary switches.
    pub involuntary: u64,
    /// Migrations.
    pub migrations: u64,
    /// Wake-ups that started the latency clock.
    pub wakeups: u64,
    /// Wake-up → running, all threads.
    pub wakeup: LatencyStats,
    /// Preempted → running again, all threads.
    pub run_delay: LatencyStats,
    /// Both together.
    pub delay: LatencyStats,
}

/// One CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSummary {
    /// CPU id.
    pub cpu: u32,
    /// Time a thread other than idle ran on it, ns.
    pub busy_ns: u64,
    /// `busy_ns / duration`.
    pub busy_share: f64,
    /// Time from the first switch seen on this CPU to the end of the trace: the
    /// part of the trace where its occupant is known (0 when it never switched).
    pub observed_ns: u64,
    /// Context switches seen.
    pub switches: u64,
}

/// The trips of tasks through a schedkit policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripSummary {
    /// [`Event::Enqueued`] events: tasks handed to the policy.
    pub enqueued: u64,
    /// Decisions taken by the policy (`kernel: false`).
    pub policy_decisions: u64,
    /// Decisions the dispatcher took alone (`kernel: true`).
    pub kernel_decisions: u64,
    /// Decisions sending the task to the shared queue ([`Target::Any`]).
    pub to_any_cpu: u64,
    /// Decisions asking for a preemption.
    pub preempting: u64,
    /// Enqueued → decision.
    pub to_decision: LatencyStats,
    /// Decision → running.
    pub to_running: LatencyStats,
}

/// What [`SummaryBuilder`] makes of a trace. Serializable (JSON via `serde_json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Where the trace comes from.
    pub source: TraceSource,
    /// The scheduler attached when the recording started.
    pub scheduler: String,
    /// CPUs: the trace's `nr_cpus`, or more if events named higher CPU ids.
    pub nr_cpus: u32,
    /// Start of the trace (the trace's `start_ns`), ns.
    pub start_ns: u64,
    /// End of the trace (`finish`'s `end_ns`, or the last event's time before
    /// `finish`), ns.
    pub end_ns: u64,
    /// `end_ns - start_ns`.
    pub duration_ns: u64,
    /// Events lost (sum of [`Event::Lost`] counts).
    pub lost_events: u64,
    /// Run time of the threads marked `scheduler` in [`Event::Thread`], ns.
    pub scheduler_run_ns: u64,
    /// `scheduler_run_ns / (duration × nr_cpus)`: the scheduler's share of the machine.
    pub scheduler_machine_share: f64,
    /// `scheduler_run_ns / duration`: the scheduler's share of one CPU.
    pub scheduler_cpu_share: f64,
    /// Per CPU, by id.
    pub cpus: Vec<CpuSummary>,
    /// Per process, by decreasing run time.
    pub processes: Vec<ProcessSummary>,
    /// Per thread, by decreasing run time.
    pub tasks: Vec<TaskSummary>,
    /// Present when the trace has [`Event::Enqueued`] or [`Event::Decision`] events.
    pub trips: Option<TripSummary>,
}

/// Latency samples: an HDR histogram of nanoseconds, plus exact count, sum and max.
#[derive(Debug, Clone, Default)]
struct Latency {
    /// Created with the first sample.
    hist: Option<Histogram<u64>>,
    /// The histogram, V2-serialized, while its thread is gone.
    packed: Option<Vec<u8>>,
    count: u64,
    sum_ns: u128,
    max_ns: u64,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("3 significant figures are supported")
}

fn unpack(bytes: &[u8]) -> Histogram<u64> {
    let mut hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .expect("a histogram serialized by this module reads back");
    hist.auto(true);
    hist
}

impl Latency {
    fn hist_mut(&mut self) -> &mut Histogram<u64> {
        if let Some(bytes) = self.packed.take() {
            self.hist = Some(unpack(&bytes));
        }
        self.hist.get_or_insert_with(new_histogram)
    }

    fn record(&mut self, ns: u64) {
        // `record` resizes the histogram; `saturating_record` would clamp to its
        // current range. Only a value beyond any range can fail: clamp that one.
        let hist = self.hist_mut();
        if hist.record(ns).is_err() {
            hist.saturating_record(ns);
        }
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Compresses the histogram (the thread is gone: few or no more samples).
    fn pack(&mut self) {
        if let Some(hist) = self.hist.take() {
            let mut bytes = Vec::new();
            V2Serializer::new()
                .serialize(&hist, &mut bytes)
                .expect("serializing into memory does not fail");
            self.packed = Some(bytes);
        }
    }

    /// Adds `other`'s samples to this one's.
    fn merge(&mut self, other: &Latency) {
        if other.count == 0 {
            return;
        }
        let unpacked;
        let source = match (&other.hist, &other.packed) {
            (Some(hist), _) => hist,
            (None, Some(bytes)) => {
                unpacked = unpack(bytes);
                &unpacked
            }
            (None, None) => return,
        };
        self.hist_mut()
            .add(source)
            .expect("auto-resizing histograms take any value");
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    fn stats(&self) -> LatencyStats {
        if self.count == 0 {
            return LatencyStats::default();
        }
        let unpacked;
        let hist = match (&self.hist, &self.packed) {
            (Some(hist), _) => hist,
            (None, Some(bytes)) => {
                unpacked = unpack(bytes);
                &unpacked
            }
            (None, None) => return LatencyStats::default(),
        };
        // The lowest value equivalent to the quantile's bucket: exact for values
        // the histogram holds exactly, and never above the true quantile.
        let quantile = |q: f64| us(hist.lowest_equivalent(hist.value_at_quantile(q)));
        LatencyStats {
            count: self.count,
            p50_us: quantile(0.50),
            p99_us: quantile(0.99),
            max_us: us(self.max_ns),
            mean_us: self.sum_ns as f64 / self.count as f64 / 1000.0,
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// `num / den`, 0 when `den` is 0.
fn ratio(num: u64, den: u128) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// A thread's running totals and pending clocks.
#[derive(Debug, Clone)]
struct ThreadState {
    pid: Pid,
    tgid: Pid,
    comm: String,
    scheduler: bool,
    exited: bool,
    /// The CPU it was last switched in on, until it switches out.
    running_on: Option<u32>,
    woken_at: Option<u64>,
    preempted_at: Option<u64>,
    enqueued_at: Option<u64>,
    decided_at: Option<u64>,
    run_ns: u64,
    runs: u64,
    voluntary: u64,
    involuntary: u64,
    migrations: u64,
    wakeups: u64,
    wakeup: Latency,
    run_delay: Latency,
}

impl ThreadState {
    fn new(pid: Pid) -> Self {
        ThreadState {
            pid,
            tgid: pid,
            comm: String::new(),
            scheduler: false,
            exited: false,
            running_on: None,
            woken_at: None,
            preempted_at: None,
            enqueued_at: None,
            decided_at: None,
            run_ns: 0,
            runs: 0,
            voluntary: 0,
            involuntary: 0,
            migrations: 0,
            wakeups: 0,
            wakeup: Latency::default(),
            run_delay: Latency::default(),
        }
    }
}

/// Who is on a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occupant {
    /// No switch seen yet.
    Unknown,
    Idle,
    /// Index into [`SummaryBuilder::threads`].
    Thread(usize),
}

#[derive(Debug, Clone)]
struct CpuState {
    occupant: Occupant,
    since: u64,
    first_switch: Option<u64>,
    busy_ns: u64,
    switches: u64,
}

impl CpuState {
    fn new() -> Self {
        CpuState {
            occupant: Occupant::Unknown,
            since: 0,
            first_switch: None,
            busy_ns: 0,
            switches: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Trips {
    seen: bool,
    enqueued: u64,
    policy_decisions: u64,
    kernel_decisions: u64,
    to_any_cpu: u64,
    preempting: u64,
    to_decision: Latency,
    to_running: Latency,
}

/// Builds a [`Summary`] from a stream of events: a [`Sink`].
///
/// ```
/// use schedkit_trace::summary::SummaryBuilder;
/// use schedkit_trace::{Event, Sink, TraceInfo, TraceSource};
///
/// let mut b = SummaryBuilder::new();
/// b.begin(&TraceInfo { source: TraceSource::Simulated, nr_cpus: 1,
///                      scheduler: "fifo".into(), start_ns: 0 }).unwrap();
/// b.event(&Event::Wakeup { ts_ns: 1_000, pid: 7, cpu: 0, waker: None, new_task: false }).unwrap();
/// b.event(&Event::Switch { ts_ns: 4_000, cpu: 0, prev: 0, prev_runnable: false, next: 7 }).unwrap();
/// b.finish(10_000).unwrap();
/// let s = b.summary();
/// assert_eq!(s.tasks[0].wakeup.max_us, 3.0);
/// assert_eq!(s.tasks[0].run_ns, 6_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SummaryBuilder {
    info: Option<TraceInfo>,
    first_ts: Option<u64>,
    last_ts: u64,
    end_ns: Option<u64>,
    lost: u64,
    threads: Vec<ThreadState>,
    /// The current incarnation of each pid.
    by_pid: HashMap<Pid, usize>,
    cpus: Vec<CpuState>,
    trips: Trips,
}

impl SummaryBuilder {
    /// An empty builder; [`Sink::begin`] gives it the trace's description.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current incarnation of `pid`, created (unnamed) if unknown.
    fn thread(&mut self, pid: Pid) -> usize {
        if let Some(&i) = self.by_pid.get(&pid) {
            return i;
        }
        self.new_incarnation(pid)
    }

    fn new_incarnation(&mut self, pid: Pid) -> usize {
        let i = self.threads.len();
        self.threads.push(ThreadState::new(pid));
        self.by_pid.insert(pid, i);
        i
    }

    /// The current incarnation of `pid`, or a new one if that one exited.
    fn reborn(&mut self, pid: Pid) -> usize {
        match self.by_pid.get(&pid) {
            Some(&i) if !self.threads[i].exited => i,
            _ => self.new_incarnation(pid),
        }
    }

    fn cpu(&mut self, cpu: u32) -> Option<&mut CpuState> {
        if cpu >= MAX_CPUS {
            return None;
        }
        let cpu = cpu as usize;
        if self.cpus.len() <= cpu {
            self.cpus.resize_with(cpu + 1, CpuState::new);
        }
        Some(&mut self.cpus[cpu])
    }

    fn switch(&mut self, ts: u64, cpu: u32, prev: Pid, prev_runnable: bool, next: Pid) {
        let Some(state) = self.cpu(cpu) else { return };
        let (occupant, since) = (state.occupant, state.since);
        let run = ts.saturating_sub(since);
        state.switches += 1;
        state.first_switch.get_or_insert(ts);
        state.since = ts;
        state.occupant = Occupant::Idle;
        if let Occupant::Thread(i) = occupant {
            // The occupant we saw switching in ran until now, whatever `prev` says
            // (they differ only when events were lost).
            state.busy_ns += run;
            let t = &mut self.threads[i];
            t.run_ns += run;
            if t.running_on == Some(cpu) {
                t.running_on = None;
            }
        }

        if prev != 0 {
            let i = self.thread(prev);
            let t = &mut self.threads[i];
            t.running_on = None;
            // It was running: a pending wake-up (of a thread already on a CPU
            // before we saw it switch in) or trip step is stale.
            t.woken_at = None;
            t.enqueued_at = None;
            t.decided_at = None;
            if prev_runnable {
                t.involuntary += 1;
                t.preempted_at = Some(ts);
            } else {
                t.voluntary += 1;
                t.preempted_at = None;
            }
        }

        if next != 0 {
            let i = self.thread(next);
            let t = &mut self.threads[i];
            t.runs += 1;
            t.running_on = Some(cpu);
            if let Some(woken) = t.woken_at.take() {
                t.wakeup.record(ts.saturating_sub(woken));
            }
            if let Some(preempted) = t.preempted_at.take() {
                t.run_delay.record(ts.saturating_sub(preempted));
            }
            t.enqueued_at = None;
            if let Some(decided) = t.decided_at.take() {
                self.trips.to_running.record(ts.saturating_sub(decided));
            }
            if let Some(state) = self.cpu(cpu) {
                state.occupant = Occupant::Thread(i);
            }
        }
    }

    /// The summary of the events so far. After [`Sink::finish`], the trace ends at
    /// its `end_ns`; before, at the last event (threads on a CPU run until then).
    pub fn summary(&self) -> Summary {
        let (source, scheduler, info_cpus, start_ns) = match &self.info {
            Some(info) => (
                info.source,
                info.scheduler.clone(),
                info.nr_cpus,
                info.start_ns,
            ),
            None => (
                TraceSource::Kernel,
                String::new(),
                0,
                self.first_ts.unwrap_or(0),
            ),
        };
        let end_ns = self.end_ns.unwrap_or(self.last_ts).max(start_ns);
        let duration = end_ns - start_ns;
        let nr_cpus = info_cpus.max(self.cpus.len() as u32);
        let one_cpu = u128::from(duration);
        let machine = one_cpu * u128::from(nr_cpus);

        // Threads still on a CPU ran until the end.
        let mut running: HashMap<usize, u64> = HashMap::new();
        let mut cpus: Vec<CpuSummary> = (0..nr_cpus)
            .map(|cpu| CpuSummary {
                cpu,
                busy_ns: 0,
                busy_share: 0.0,
                observed_ns: 0,
                switches: 0,
            })
            .collect();
        for (c, state) in self.cpus.iter().enumerate() {
            let mut busy = state.busy_ns;
            if let Occupant::Thread(i) = state.occupant {
                let run = end_ns.saturating_sub(state.since);
                busy += run;
                *running.entry(i).or_default() += run;
            }
            let out = &mut cpus[c];
            out.busy_ns = busy;
            out.busy_share = ratio(busy, one_cpu);
            out.observed_ns = state
                .first_switch
                .map_or(0, |first| end_ns.saturating_sub(first.max(start_ns)));
            out.switches = state.switches;
        }

        let run_ns = |i: usize| self.threads[i].run_ns + running.get(&i).copied().unwrap_or(0);

        let mut tasks = Vec::with_capacity(self.threads.len());
        let mut scheduler_run_ns = 0;
        for (i, t) in self.threads.iter().enumerate() {
            let run = run_ns(i);
            if t.scheduler {
                scheduler_run_ns += run;
            }
            let mut delay = Latency::default();
            delay.merge(&t.wakeup);
            delay.merge(&t.run_delay);
            tasks.push(TaskSummary {
                pid: t.pid,
                tgid: t.tgid,
                comm: t.comm.clone(),
                scheduler: t.scheduler,
                exited: t.exited,
                run_ns: run,
                cpu_share: ratio(run, one_cpu),
                machine_share: ratio(run, machine),
                runs: t.runs,
                voluntary: t.voluntary,
                involuntary: t.involuntary,
                migrations: t.migrations,
                wakeups: t.wakeups,
                wakeup: t.wakeup.stats(),
                run_delay: t.run_delay.stats(),
                delay: delay.stats(),
            });
        }

        // Processes, in the order their first thread appeared.
        let mut groups: Vec<(Pid, Vec<usize>)> = Vec::new();
        let mut group_of: HashMap<Pid, usize> = HashMap::new();
        for (i, t) in self.threads.iter().enumerate() {
            let g = *group_of.entry(t.tgid).or_insert_with(|| {
                groups.push((t.tgid, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        let mut processes = Vec::with_capacity(groups.len());
        for (tgid, members) in groups {
            let comm = members
                .iter()
                .rev()
                .map(|&i| &self.threads[i])
                .find(|t| t.pid == tgid)
                .unwrap_or(&self.threads[members[0]])
                .comm
                .clone();
            let mut p = ProcessSummary {
                tgid,
                comm,
                threads: members.len() as u64,
                scheduler: false,
                run_ns: 0,
                cpu_share: 0.0,
                machine_share: 0.0,
                runs: 0,
                voluntary: 0,
                involuntary: 0,
                migrations: 0,
                wakeups: 0,
                wakeup: LatencyStats::default(),
                run_delay: LatencyStats::default(),
                delay: LatencyStats::default(),
            };
            let (mut wakeup, mut run_delay) = (Latency::default(), Latency::default());
            for &i in &members {
                let t = &self.threads[i];
                p.scheduler |= t.scheduler;
                p.run_ns += run_ns(i);
                p.runs += t.runs;
                p.voluntary += t.voluntary;
                p.involuntary += t.involuntary;
                p.migrations += t.migrations;
                p.wakeups += t.wakeups;
                wakeup.merge(&t.wakeup);
                run_delay.merge(&t.run_delay);
            }
            p.cpu_share = ratio(p.run_ns, one_cpu);
            p.machine_share = ratio(p.run_ns, machine);
            p.wakeup = wakeup.stats();
            p.run_delay = run_delay.stats();
            wakeup.merge(&run_delay);
            p.delay = wakeup.stats();
            processes.push(p);
        }

        tasks.sort_by(|a, b| b.run_ns.cmp(&a.run_ns).then(a.pid.cmp(&b.pid)));
        processes.sort_by(|a, b| b.run_ns.cmp(&a.run_ns).then(a.tgid.cmp(&b.tgid)));

        let trips = self.trips.seen.then(|| TripSummary {
            enqueued: self.trips.enqueued,
            policy_decisions: self.trips.policy_decisions,
            kernel_decisions: self.trips.kernel_decisions,
            to_any_cpu: self.trips.to_any_cpu,
            preempting: self.trips.preempting,
            to_decision: self.trips.to_decision.stats(),
            to_running: self.trips.to_running.stats(),
        });

        Summary {
            source,
            scheduler,
            nr_cpus,
            start_ns,
            end_ns,
            duration_ns: duration,
            lost_events: self.lost,
            scheduler_run_ns,
            scheduler_machine_share: ratio(scheduler_run_ns, machine),
            scheduler_cpu_share: ratio(scheduler_run_ns, one_cpu),
            cpus,
            processes,
            tasks,
            trips,
        }
    }

    /// The summary of the whole trace (same as [`SummaryBuilder::summary`]).
    pub fn into_summary(self) -> Summary {
        self.summary()
    }
}

impl Sink for SummaryBuilder {
    fn begin(&mut self, info: &TraceInfo) -> io::Result<()> {
        if info.nr_cpus > 0 {
            self.cpu(info.nr_cpus.min(MAX_CPUS) - 1);
        }
        self.info = Some(info.clone());
        Ok(())
    }

    fn event(&mut self, ev: &Event) -> io::Result<()> {
        let ts = ev.ts_ns();
        self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
        match *ev {
            Event::Thread {
                pid,
                tgid,
                ref comm,
                scheduler,
                ..
            } => {
                if pid != 0 {
                    let i = self.reborn(pid);
                    let t = &mut self.threads[i];
                    t.tgid = tgid;
                    t.comm.clone_from(comm);
                    t.scheduler = scheduler;
                }
            }
            Event::Switch {
                cpu,
                prev,
                prev_runnable,
                next,
                ..
            } => self.switch(ts, cpu, prev, prev_runnable, next),
            Event::Wakeup { pid, new_task, .. } => {
                if pid != 0 {
                    let i = if new_task {
                        self.reborn(pid)
                    } else {
                        self.thread(pid)
                    };
                    let t = &mut self.threads[i];
                    let waiting = t.woken_at.is_some() || t.preempted_at.is_some();
                    if t.running_on.is_none() && !waiting {
                        t.woken_at = Some(ts);
                        t.wakeups += 1;
                    }
                }
            }
            Event::Migrate { pid, .. } => {
                if pid != 0 {
                    let i = self.thread(pid);
                    self.threads[i].migrations += 1;
                }
            }
            Event::Exit { pid, .. } => {
                if let Some(&i) = self.by_pid.get(&pid) {
                    let t = &mut self.threads[i];
                    t.exited = true;
                    t.woken_at = None;
                    t.preempted_at = None;
                    t.enqueued_at = None;
                    t.decided_at = None;
                    t.wakeup.pack();
                    t.run_delay.pack();
                }
            }
            Event::Enqueued { pid, .. } => {
                self.trips.seen = true;
                self.trips.enqueued += 1;
                if pid != 0 {
                    let i = self.thread(pid);
                    let t = &mut self.threads[i];
                    t.enqueued_at.get_or_insert(ts);
                    // A decision not followed by a run was undone (the task came back).
                    t.decided_at = None;
                }
            }
            Event::Decision {
                pid,
                target,
                preempt,
                kernel,
                ..
            } => {
                self.trips.seen = true;
                if kernel {
                    self.trips.kernel_decisions += 1;
                } else {
                    self.trips.policy_decisions += 1;
                }
                if target == Target::Any {
                    self.trips.to_any_cpu += 1;
                }
                if preempt {
                    self.trips.preempting += 1;
                }
                if pid != 0 {
                    let i = self.thread(pid);
                    let t = &mut self.threads[i];
                    if let Some(enqueued) = t.enqueued_at.take() {
                        self.trips.to_decision.record(ts.saturating_sub(enqueued));
                    }
                    t.decided_at.get_or_insert(ts);
                }
            }
            Event::Counter { .. } => {}
            Event::Lost { count, .. } => self.lost += count,
        }
        Ok(())
    }

    fn finish(&mut self, end_ns: u64) -> io::Result<()> {
        self.end_ns = Some(end_ns);
        Ok(())
    }
}

/// `comm` cut to [`COMM_WIDTH`] characters; `?` when empty.
fn short_comm(comm: &str) -> String {
    if comm.is_empty() {
        "?".to_string()
    } else {
        comm.chars().take(COMM_WIDTH).collect()
    }
}

/// A duration for people: `12.345 s`, `3.210 ms`, `4.5 µs`, `800 ns`.
fn human_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.3} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// A latency column: `-` without samples.
fn lat(value: f64, stats: &LatencyStats) -> String {
    if stats.count == 0 {
        "-".to_string()
    } else {
        format!("{value:.1}")
    }
}

/// One row's worth of the figures shared by tasks and processes.
struct Row<'a> {
    comm: &'a str,
    scheduler: bool,
    id: Pid,
    threads: Option<u64>,
    runs: u64,
    run_ns: u64,
    cpu_share: f64,
    wakeup: &'a LatencyStats,
    voluntary: u64,
    involuntary: u64,
    migrations: u64,
}

fn write_header(out: &mut impl Write, id: &str, threads: bool) -> io::Result<()> {
    write!(out, "{:<w$}  {:>7}", "comm", id, w = COMM_WIDTH + 1)?;
    if threads {
        write!(out, " {:>5}", "thr")?;
    }
    writeln!(
        out,
        " {:>8} {:>10} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "runs", "run ms", "%cpu", "wake p50", "wake p99", "wake max", "vol", "invol", "migr"
    )
}

fn write_row(out: &mut impl Write, row: &Row) -> io::Result<()> {
    let flag = if row.scheduler { '*' } else { ' ' };
    write!(
        out,
        "{:<w$}{}  {:>7}",
        short_comm(row.comm),
        flag,
        row.id,
        w = COMM_WIDTH
    )?;
    if let Some(threads) = row.threads {
        write!(out, " {threads:>5}")?;
    }
    let w = row.wakeup;
    writeln!(
        out,
        " {:>8} {:>10.1} {:>6.1}% {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        row.runs,
        row.run_ns as f64 / 1e6,
        row.cpu_share * 100.0,
        lat(w.p50_us, w),
        lat(w.p99_us, w),
        lat(w.max_us, w),
        row.voluntary,
        row.involuntary,
        row.migrations
    )
}

impl Summary {
    /// Writes the summary as a fixed-width text table: a header (source, scheduler,
    /// duration, CPUs, lost events, the scheduler's CPU share), each CPU's busy
    /// share, the `top` processes and the `top` threads by run time, and the trips
    /// through the policy when the trace has them. Latencies are in µs; `%cpu` is
    /// the share of one CPU over the trace; `*` marks the scheduler's threads.
    pub fn write_table(&self, out: &mut impl Write, top: usize) -> io::Result<()> {
        let source = match self.source {
            TraceSource::Kernel => "kernel",
            TraceSource::Simulated => "simulated",
        };
        let scheduler = if self.scheduler.is_empty() {
            "?"
        } else {
            &self.scheduler
        };
        writeln!(
            out,
            "source {source}, scheduler {scheduler}, duration {}, {} cpus, {} events lost",
            human_ns(self.duration_ns),
            self.nr_cpus,
            self.lost_events
        )?;
        writeln!(
            out,
            "scheduler threads: {} on cpu, {:.2}% of the machine ({:.2}% of one cpu)",
            human_ns(self.scheduler_run_ns),
            self.scheduler_machine_share * 100.0,
            self.scheduler_cpu_share * 100.0
        )?;
        for (n, chunk) in self.cpus.chunks(8).enumerate() {
            write!(out, "{}", if n == 0 { "cpu busy:" } else { "         " })?;
            for c in chunk {
                write!(out, "  cpu{:<3} {:>5.1}%", c.cpu, c.busy_share * 100.0)?;
            }
            writeln!(out)?;
        }

        writeln!(out)?;
        writeln!(
            out,
            "top {} of {} processes by run time (latencies in µs, %cpu of one cpu, * scheduler)",
            top.min(self.processes.len()),
            self.processes.len()
        )?;
        write_header(out, "tgid", true)?;
        for p in self.processes.iter().take(top) {
            write_row(
                out,
                &Row {
                    comm: &p.comm,
                    scheduler: p.scheduler,
                    id: p.tgid,
                    threads: Some(p.threads),
                    runs: p.runs,
                    run_ns: p.run_ns,
                    cpu_share: p.cpu_share,
                    wakeup: &p.wakeup,
                    voluntary: p.voluntary,
                    involuntary: p.involuntary,
                    migrations: p.migrations,
                },
            )?;
        }

        writeln!(out)?;
        writeln!(
            out,
            "top {} of {} threads by run time",
            top.min(self.tasks.len()),
            self.tasks.len()
        )?;
        write_header(out, "pid", false)?;
        for t in self.tasks.iter().take(top) {
            write_row(
                out,
                &Row {
                    comm: &t.comm,
                    scheduler: t.scheduler,
                    id: t.pid,
                    threads: None,
                    runs: t.runs,
                    run_ns: t.run_ns,
                    cpu_share: t.cpu_share,
                    wakeup: &t.wakeup,
                    voluntary: t.voluntary,
                    involuntary: t.involuntary,
                    migrations: t.migrations,
                },
            )?;
        }

        if let Some(trips) = &self.trips {
            writeln!(out)?;
            writeln!(
                out,
                "trips through the policy: {} enqueued, {} decisions by the policy, {} by the kernel \
                 ({} to any cpu, {} preempting)",
                trips.enqueued,
                trips.policy_decisions,
                trips.kernel_decisions,
                trips.to_any_cpu,
                trips.preempting
            )?;
            for (name, stats) in [
                ("enqueued -> decision", &trips.to_decision),
                ("decision -> running", &trips.to_running),
            ] {
                writeln!(
                    out,
                    "  {name:<22} p50 {:>9} µs  p99 {:>9} µs  max {:>9} µs  ({} trips)",
                    lat(stats.p50_us, stats),
                    lat(stats.p99_us, stats),
                    lat(stats.max_us, stats),
                    stats.count
                )?;
            }
        }
        Ok(())
    }
}
