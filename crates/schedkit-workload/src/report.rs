//! The report that both the real executor and the simulator produce, so their figures
//! can be laid side by side, and the helpers that compute those figures the same way
//! in both ([`LatencyRecorder`], [`jain_index`], [`Report::new`]).
//!
//! ```
//! use schedkit_workload::report::{GroupReport, LatencyRecorder, Report};
//!
//! let mut lateness = LatencyRecorder::new();
//! for ns in [10_000, 20_000, 900_000] {
//!     lateness.record(ns);
//! }
//! let mut game = GroupReport::new("game", "periodic", 1, 0);
//! game.task_cpu_ns = vec![240_000_000];
//! game.periodic = Some(schedkit_workload::report::PeriodicStats::new(60, 2, lateness.summary()));
//! let report = Report::new("demo", "eevdf", 1_000_000_000, 2, vec![game]);
//! assert!((report.groups[0].cpu_share - 0.12).abs() < 1e-9);
//! assert!(report.render_table().contains("game"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Summary of a set of latencies (or other durations), in nanoseconds. All zeros when
/// nothing was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Exact mean.
    pub mean_ns: u64,
    /// Median (within 0.1%).
    pub p50_ns: u64,
    /// 90th percentile (within 0.1%).
    pub p90_ns: u64,
    /// 99th percentile (within 0.1%).
    pub p99_ns: u64,
    /// Exact maximum.
    pub max_ns: u64,
}

/// Records durations and summarises them as [`Percentiles`]. The executor and the
/// simulator both use it, so their percentiles are computed the same way (an HDR
/// histogram with 3 significant digits; mean and max are exact).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    sum: u128,
    max: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder. It grows as needed; reserve nothing per sample.
    pub fn new() -> LatencyRecorder {
        // 1 ns .. 1 hour to start with, auto-resizing beyond; 3 digits keeps it small.
        let mut hist = Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
            .expect("constant, valid histogram bounds");
        hist.auto(true);
        LatencyRecorder {
            hist,
            sum: 0,
            max: 0,
        }
    }

    /// Records one duration in nanoseconds.
    pub fn record(&mut self, ns: u64) {
        // The histogram's lowest value is 1: record 0 as 1 for the percentiles, while the
        // mean and max stay exact.
        let _ = self.hist.record(ns.max(1));
        self.sum += ns as u128;
        self.max = self.max.max(ns);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        let _ = self.hist.add(&other.hist);
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The summary of what was recorded.
    pub fn summary(&self) -> Percentiles {
        let count = self.hist.len();
        if count == 0 {
            return Percentiles::default();
        }
        let q = |p: f64| self.hist.value_at_quantile(p).min(self.max);
        Percentiles {
            count,
            mean_ns: (self.sum / count as u128) as u64,
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            max_ns: self.max,
        }
    }
}

/// Figures of a `periodic` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicStats {
    /// Frames whose work started before the end, over all tasks of the group. A task
    /// that falls behind starts its next frame at once: no frame is skipped.
    pub frames: u64,
    /// Frames whose work was not done by the next period start (counted only when that
    /// deadline falls within the run).
    pub deadline_misses: u64,
    /// `deadline_misses / frames` (0 when there were no frames).
    pub miss_ratio: f64,
    /// Start lateness: when the frame's work started minus its intended period start.
    pub start_lateness: Percentiles,
}

impl PeriodicStats {
    /// Figures from counts and the lateness summary; computes the miss ratio.
    pub fn new(frames: u64, deadline_misses: u64, start_lateness: Percentiles) -> Self {
        PeriodicStats {
            frames,
            deadline_misses,
            miss_ratio: ratio(deadline_misses, frames),
            start_lateness,
        }
    }
}

/// Figures of a `jobs` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    /// Jobs started.
    pub started: u64,
    /// Jobs finished before the end of the scenario.
    pub completed: u64,
    /// Completion time (start to exit) of the finished jobs.
    pub completion: Percentiles,
    /// Completed jobs per second of scenario.
    pub jobs_per_s: f64,
}

impl JobStats {
    /// Figures from counts; computes the rate over `duration_ns`.
    pub fn new(started: u64, completed: u64, completion: Percentiles, duration_ns: u64) -> Self {
        JobStats {
            started,
            completed,
            completion,
            jobs_per_s: per_second(completed, duration_ns),
        }
    }
}

/// Figures of a `pingpong` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingPongStats {
    /// Round trips completed, over all pairs.
    pub round_trips: u64,
    /// Round trips per second, over all pairs.
    pub round_trips_per_s: f64,
    /// Round-trip latency (send to reply received).
    pub latency: Percentiles,
}

impl PingPongStats {
    /// Figures from counts; computes the rate over `duration_ns`.
    pub fn new(round_trips: u64, latency: Percentiles, duration_ns: u64) -> Self {
        PingPongStats {
            round_trips,
            round_trips_per_s: per_second(round_trips, duration_ns),
            latency,
        }
    }
}

/// One group's figures. Producers fill the raw fields (`task_cpu_ns` and the
/// kind-specific stats); [`Report::new`] computes `cpu_ns` and `cpu_share`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Group name from the spec.
    pub name: String,
    /// Kind name: `periodic`, `cpu`, `jobs`, `pingpong`.
    pub kind: String,
    /// Tasks in the group (threads; jobs at once for `jobs`; two per pair for `pingpong`).
    pub tasks: u32,
    /// Nice level.
    pub nice: i32,
    /// CPU time of each task, nanoseconds (for `jobs`: of each job started, whether it
    /// finished or was killed at the end).
    pub task_cpu_ns: Vec<u64>,
    /// Total CPU time of the group, nanoseconds.
    pub cpu_ns: u64,
    /// Fraction of the machine's CPU time (duration × CPUs) the group used, 0..=1.
    pub cpu_share: f64,
    /// For `periodic` groups.
    pub periodic: Option<PeriodicStats>,
    /// For `jobs` groups.
    pub jobs: Option<JobStats>,
    /// For `pingpong` groups.
    pub pingpong: Option<PingPongStats>,
}

impl GroupReport {
    /// An empty group report; fill `task_cpu_ns` and the kind's stats.
    pub fn new(name: &str, kind: &str, tasks: u32, nice: i32) -> GroupReport {
        GroupReport {
            name: name.to_string(),
            kind: kind.to_string(),
            tasks,
            nice,
            task_cpu_ns: Vec::new(),
            cpu_ns: 0,
            cpu_share: 0.0,
            periodic: None,
            jobs: None,
            pingpong: None,
        }
    }
}

/// Fairness among equal tasks: Jain's index over the CPU time of the tasks of all
/// `cpu` groups that share one nice level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// The nice level.
    pub nice: i32,
    /// Number of tasks compared.
    pub tasks: u32,
    /// Jain's index, 1/n..=1; 1 is perfectly fair.
    pub jain: f64,
}

/// The whole report of one scenario run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Which scheduler ran it (`eevdf`, `rustland`, a `--label`).
    pub scheduler: String,
    /// Measured duration of the run, nanoseconds.
    pub duration_ns: u64,
    /// CPUs of the machine (real or simulated).
    pub nr_cpus: u32,
    /// Per-group figures, in spec order.
    pub groups: Vec<GroupReport>,
    /// Fairness per nice level among `cpu` tasks (levels with at least two tasks).
    pub fairness: Vec<Fairness>,
}

impl Report {
    /// Builds the report and computes the derived figures (group CPU time and share,
    /// fairness), so the executor and the simulator derive them the same way.
    pub fn new(
        scenario: &str,
        scheduler: &str,
        duration_ns: u64,
        nr_cpus: u32,
        mut groups: Vec<GroupReport>,
    ) -> Report {
        let capacity = duration_ns as f64 * nr_cpus.max(1) as f64;
        let mut by_nice: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
        for g in &mut groups {
            g.cpu_ns = g.task_cpu_ns.iter().sum();
            g.cpu_share = if capacity > 0.0 {
                g.cpu_ns as f64 / capacity
            } else {
                0.0
            };
            if g.kind == "cpu" {
                by_nice.entry(g.nice).or_default().extend(&g.task_cpu_ns);
            }
        }
        let fairness = by_nice
            .into_iter()
            .filter(|(_, v)| v.len() >= 2)
            .map(|(nice, v)| Fairness {
                nice,
                tasks: v.len() as u32,
                jain: jain_index(&v),
            })
            .collect();
        Report {
            scenario: scenario.to_string(),
            scheduler: scheduler.to_string(),
            duration_ns,
            nr_cpus,
            groups,
            fairness,
        }
    }

    /// The group named `name`, if any.
    pub fn group(&self, name: &str) -> Option<&GroupReport> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers and finite floats: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A report read back from [`Report::to_json`]'s output.
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A human-readable table: one line per group, then the kind-specific figures.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario: {}   scheduler: {}   duration: {:.2} s   CPUs: {}",
            self.scenario,
            self.scheduler,
            self.duration_ns as f64 / 1e9,
            self.nr_cpus
        );
        let name_w = self
            .groups
            .iter()
            .map(|g| g.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<8}  {:>5}  {:>4}  {:>9}  {:>6}  figures",
            "group", "kind", "tasks", "nice", "CPU (s)", "share"
        );
        for g in &self.groups {
            let figures = if let Some(p) = &g.periodic {
                format!(
                    "frames {}  missed {} ({:.1}%)  lateness p50 {}  p99 {}  max {}",
                    p.frames,
                    p.deadline_misses,
                    p.miss_ratio * 100.0,
                    fmt_ns(p.start_lateness.p50_ns),
                    fmt_ns(p.start_lateness.p99_ns),
                    fmt_ns(p.start_lateness.max_ns)
                )
            } else if let Some(j) = &g.jobs {
                format!(
                    "jobs {}/{}  {:.1}/s  completion mean {}  p99 {}",
                    j.completed,
                    j.started,
                    j.jobs_per_s,
                    fmt_ns(j.completion.mean_ns),
                    fmt_ns(j.completion.p99_ns)
                )
            } else if let Some(p) = &g.pingpong {
                format!(
                    "round trips {}  {:.0}/s  latency p50 {}  p99 {}  max {}",
                    p.round_trips,
                    p.round_trips_per_s,
                    fmt_ns(p.latency.p50_ns),
                    fmt_ns(p.latency.p99_ns),
                    fmt_ns(p.latency.max_ns)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<name_w$}  {:<8}  {:>5}  {:>4}  {:>9.3}  {:>5.1}%  {}",
                g.name,
                g.kind,
                g.tasks,
                g.nice,
                g.cpu_ns as f64 / 1e9,
                g.cpu_share * 100.0,
                figures
            );
        }
        for f in &self.fairness {
            let _ = writeln!(
                out,
                "fairness (cpu tasks at nice {}, {} tasks): Jain's index {:.3}",
                f.nice, f.tasks, f.jain
            );
        }
        out
    }
}

/// Jain's fairness index of `xs`: (Σx)² / (n·Σx²), 1 when all are equal, 1/n when one
/// takes everything. 1 for an empty or all-zero slice (nothing was unfair).
///
/// ```
/// use schedkit_workload::report::jain_index;
/// assert_eq!(jain_index(&[5, 5, 5]), 1.0);
/// assert!((jain_index(&[1, 0]) - 0.5).abs() < 1e-12);
/// ```
pub fn jain_index(xs: &[u64]) -> f64 {
    let sum: f64 = xs.iter().map(|&x| x as f64).sum();
    let sq: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
    if xs.is_empty() || sq == 0.0 {
        return 1.0;
    }
    (sum * sum) / (xs.len() as f64 * sq)
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn per_second(n: u64, duration_ns: u64) -> f64 {
    if duration_ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / duration_ns as f64
    }
}

/// A duration in the most readable unit: `850 ns`, `12.3 us`, `4.56 ms`, `1.20 s`
/// (the same as [`crate::figures::Unit::Nanos`] writes it).
pub fn fmt_ns(ns: u64) -> String {
    crate::figures::format_duration_ns(ns as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let mut lat = LatencyRecorder::new();
        for i in 1..=1000u64 {
            lat.record(i * 1_000);
        }
        let mut game = GroupReport::new("game", "periodic", 1, -5);
        game.task_cpu_ns = vec![400_000_000];
        game.periodic = Some(PeriodicStats::new(100, 3, lat.summary()));
        let mut hogs = GroupReport::new("hogs", "cpu", 2, 0);
        hogs.task_cpu_ns = vec![700_000_000, 500_000_000];
        let mut build = GroupReport::new("build", "jobs", 4, 10);
        build.task_cpu_ns = vec![10_000_000; 30];
        build.jobs = Some(JobStats::new(32, 30, lat.summary(), 1_000_000_000));
        let mut pp = GroupReport::new("pp", "pingpong", 2, 0);
        pp.task_cpu_ns = vec![1_000_000, 1_100_000];
        pp.pingpong = Some(PingPongStats::new(12_345, lat.summary(), 1_000_000_000));
        Report::new(
            "sample",
            "eevdf",
            1_000_000_000,
            2,
            vec![game, hogs, build, pp],
        )
    }

    #[test]
    fn recorder_percentiles_are_within_a_tenth_of_a_percent() {
        let mut r = LatencyRecorder::new();
        for i in 1..=10_000u64 {
            r.record(i * 1_000);
        }
        let s = r.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max_ns, 10_000_000);
        assert_eq!(s.mean_ns, 5_000_500);
        assert!((s.p50_ns as f64 - 5e6).abs() / 5e6 < 0.001, "{s:?}");
        assert!((s.p99_ns as f64 - 9.9e6).abs() / 9.9e6 < 0.001, "{s:?}");
    }

    #[test]
    fn empty_recorder_summarises_to_zeros() {
        assert_eq!(LatencyRecorder::new().summary(), Percentiles::default());
    }

    #[test]
    fn merged_recorders_count_every_sample() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record(10);
        b.record(0);
        b.record(5_000_000_000_000); // beyond the initial bound: auto-resizes
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 3);
        assert_eq!(s.max_ns, 5_000_000_000_000);
    }

    #[test]
    fn report_computes_shares_and_fairness() {
        let r = sample_report();
        let hogs = r.group("hogs").unwrap();
        assert_eq!(hogs.cpu_ns, 1_200_000_000);
        assert!((hogs.cpu_share - 0.6).abs() < 1e-12);
        assert_eq!(r.fairness.len(), 1);
        assert_eq!(r.fairness[0].nice, 0);
        assert_eq!(r.fairness[0].tasks, 2);
        // (1.2)^2 / (2 * (0.49 + 0.25)) = 1.44 / 1.48
        assert!((r.fairness[0].jain - 1.44 / 1.48).abs() < 1e-12);
        let p = r.group("game").unwrap().periodic.as_ref().unwrap();
        assert!((p.miss_ratio - 0.03).abs() < 1e-12);
    }

    #[test]
    fn json_round_trips_to_an_equal_report() {
        let r = sample_report();
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn table_shows_every_group_and_figure() {
        let t = sample_report().render_table();
        for needle in [
            "scenario: sample",
            "game",
            "hogs",
            "build",
            "pp",
            "frames 100",
            "missed 3 (3.0%)",
            "jobs 30/32",
            "round trips 12345",
            "Jain's index 0.973",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
    }

    #[test]
    fn jain_index_of_one_hog_is_one_over_n() {
        assert!((jain_index(&[10, 0, 0, 0]) - 0.25).abs() < 1e-12);
        assert_eq!(jain_index(&[]), 1.0);
    }
}
