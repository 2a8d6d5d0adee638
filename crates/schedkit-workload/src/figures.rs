//! The figures of a [`Report`], named once: what `schedkit compare` shows for simulated
//! runs and what `schedkit bench-report` shows for real runs in the VM come from
//! [`Report::figures`], so the two line up row for row (same names, same order, same
//! units), and every value is written by [`Unit::format`], so they read the same too.
//!
//! A figure's name is `subject: measure` (`game: deadline misses`, `build: jobs`,
//! `cpu tasks at nice 0: fairness (Jain)`); the measures are the constants of
//! [`measure`]. Durations are nanoseconds, like everywhere inside schedkit; ratios
//! (miss ratio, CPU share) are fractions and shown as percentages.
//!
//! ```
//! use schedkit_workload::figures::{measure, Unit};
//! use schedkit_workload::report::{GroupReport, LatencyRecorder, PeriodicStats, Report};
//!
//! let mut lateness = LatencyRecorder::new();
//! lateness.record(3_840_000);
//! let mut game = GroupReport::new("game", "periodic", 1, 0);
//! game.task_cpu_ns = vec![120_000_000];
//! game.periodic = Some(PeriodicStats::new(60, 3, lateness.summary()));
//! let report = Report::new("demo", "eevdf", 1_000_000_000, 1, vec![game]);
//!
//! let figures = report.figures();
//! assert_eq!(figures[0].name, format!("game: {}", measure::DEADLINE_MISSES));
//! assert_eq!(figures[0].formatted(), "5.00%");
//! assert_eq!(figures[1].name, "game: lateness p50");
//! assert_eq!(figures[1].formatted(), "3.84 ms");
//! assert_eq!(Unit::PerSecond.format(61.57), "61.6/s");
//! ```

use serde::{Deserialize, Serialize};

use crate::report::{GroupReport, Percentiles, Report};

/// What a figure's value is, and so how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A duration in nanoseconds, written in the unit that suits it (`850 ns`,
    /// `12.3 us`, `4.56 ms`, `1.20 s`).
    #[serde(rename = "ns")]
    Nanos,
    /// A fraction (0..=1, a miss ratio or a share), written as a percentage.
    Percent,
    /// A rate, written with `/s`.
    PerSecond,
    /// A dimensionless index such as Jain's (0..=1), written with three decimals.
    Index,
    /// A count, written as a whole number.
    Count,
}

impl Unit {
    /// `value` written for people: three significant digits (whole numbers from 100
    /// on), the unit attached; `-` for a value that is not a number.
    ///
    /// ```
    /// use schedkit_workload::figures::Unit;
    /// assert_eq!(Unit::Nanos.format(61_700_000.0), "61.7 ms");
    /// assert_eq!(Unit::Percent.format(0.0633), "6.33%");
    /// assert_eq!(Unit::Index.format(0.97297), "0.973");
    /// assert_eq!(Unit::Count.format(3262.0), "3262");
    /// ```
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return "-".to_string();
        }
        match self {
            Unit::Nanos => format_duration_ns(value),
            Unit::Percent => format!("{}%", three_digits(value * 100.0)),
            Unit::PerSecond => format!("{}/s", three_digits(value)),
            Unit::Index => format!("{value:.3}"),
            Unit::Count => format!("{value:.0}"),
        }
    }
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Lower is better: latencies, misses, completion times, overhead.
    Lower,
    /// Higher is better: throughput, fairness.
    Higher,
    /// Neither way is better in itself (a group's CPU share, event counts).
    Neither,
}

/// One named figure and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable name, `subject: measure` for the figures of a [`Report`].
    pub name: String,
    /// What the value is.
    pub unit: Unit,
    /// Which way is better.
    pub better: Better,
    /// The value, in the unit's base (nanoseconds, a fraction, per second, ...).
    pub value: f64,
}

impl Figure {
    /// A figure from its parts.
    pub fn new(name: impl Into<String>, unit: Unit, better: Better, value: f64) -> Figure {
        Figure {
            name: name.into(),
            unit,
            better,
            value,
        }
    }

    /// The value written by its unit.
    pub fn formatted(&self) -> String {
        self.unit.format(self.value)
    }

    /// The measure part of the name: what follows the last `": "` (the whole name
    /// when there is none).
    pub fn measure(&self) -> &str {
        measure_of(&self.name)
    }
}

/// The measure part of a figure name: what follows the last `": "`.
pub fn measure_of(name: &str) -> &str {
    name.rsplit_once(": ").map_or(name, |(_, m)| m)
}

/// A figure's name from its subject (a group, say) and measure: `game: deadline misses`.
pub fn figure_name(subject: &str, measure: &str) -> String {
    format!("{subject}: {measure}")
}

/// The measures of a [`Report`]'s figures, in the order [`Report::figures`] lists them
/// within a group.
pub mod measure {
    /// `periodic`: fraction of frames that missed their deadline.
    pub const DEADLINE_MISSES: &str = "deadline misses";
    /// `periodic`: median start lateness.
    pub const LATENESS_P50: &str = "lateness p50";
    /// `periodic`: 99th percentile of start lateness.
    pub const LATENESS_P99: &str = "lateness p99";
    /// `periodic`: worst start lateness.
    pub const LATENESS_MAX: &str = "lateness max";
    /// `jobs`: completed jobs per second.
    pub const JOBS: &str = "jobs";
    /// `jobs`: mean completion time.
    pub const COMPLETION_MEAN: &str = "completion mean";
    /// `jobs`: 99th percentile of completion time.
    pub const COMPLETION_P99: &str = "completion p99";
    /// `pingpong`: round trips per second.
    pub const ROUND_TRIPS: &str = "round trips";
    /// `pingpong`: median round-trip latency.
    pub const ROUND_TRIP_P50: &str = "round trip p50";
    /// `pingpong`: 99th percentile of round-trip latency.
    pub const ROUND_TRIP_P99: &str = "round trip p99";
    /// Every group: its fraction of the machine's CPU time.
    pub const CPU_SHARE: &str = "CPU share";
    /// `cpu` tasks of one nice level: Jain's index over their CPU times.
    pub const FAIRNESS: &str = "fairness (Jain)";
}

impl Report {
    /// The report's figures, in a fixed order: per group in spec order, its kind's
    /// figures then its CPU share; then fairness per nice level. The same report shape
    /// (which the simulator and the real executor both produce for one spec) always
    /// gives the same names in the same order.
    pub fn figures(&self) -> Vec<Figure> {
        let mut out = Vec::new();
        for g in &self.groups {
            group_figures(g, &mut out);
        }
        for f in &self.fairness {
            out.push(Figure::new(
                figure_name(&format!("cpu tasks at nice {}", f.nice), measure::FAIRNESS),
                Unit::Index,
                Better::Higher,
                f.jain,
            ));
        }
        out
    }
}

/// Which value of a [`Percentiles`] a duration figure shows.
type Pick = fn(&Percentiles) -> u64;

/// A figure of a group before it is named: (measure, unit, better, value).
type Measured<'a> = (&'a str, Unit, Better, f64);

/// Durations (lower is better) picked from one summary.
fn durations<'a>(summary: &Percentiles, picks: &[(&'a str, Pick)]) -> Vec<Measured<'a>> {
    picks
        .iter()
        .map(|&(measure, pick)| (measure, Unit::Nanos, Better::Lower, pick(summary) as f64))
        .collect()
}

fn group_figures(g: &GroupReport, out: &mut Vec<Figure>) {
    use measure::*;
    let mut figs: Vec<Measured> = Vec::new();
    if let Some(p) = &g.periodic {
        figs.push((DEADLINE_MISSES, Unit::Percent, Better::Lower, p.miss_ratio));
        figs.extend(durations(
            &p.start_lateness,
            &[
                (LATENESS_P50, |l| l.p50_ns),
                (LATENESS_P99, |l| l.p99_ns),
                (LATENESS_MAX, |l| l.max_ns),
            ],
        ));
    }
    if let Some(j) = &g.jobs {
        figs.push((JOBS, Unit::PerSecond, Better::Higher, j.jobs_per_s));
        figs.extend(durations(
            &j.completion,
            &[
                (COMPLETION_MEAN, |c| c.mean_ns),
                (COMPLETION_P99, |c| c.p99_ns),
            ],
        ));
    }
    if let Some(p) = &g.pingpong {
        let rate = p.round_trips_per_s;
        figs.push((ROUND_TRIPS, Unit::PerSecond, Better::Higher, rate));
        figs.extend(durations(
            &p.latency,
            &[
                (ROUND_TRIP_P50, |l| l.p50_ns),
                (ROUND_TRIP_P99, |l| l.p99_ns),
            ],
        ));
    }
    figs.push((CPU_SHARE, Unit::Percent, Better::Neither, g.cpu_share));
    out.extend(figs.into_iter().map(|(measure, unit, better, value)| {
        Figure::new(figure_name(&g.name, measure), unit, better, value)
    }));
}

/// Three significant digits, or a whole number from 100 on: `1.23`, `12.3`, `123`,
/// `1234`.
fn three_digits(x: f64) -> String {
    // Decide on the rounded value, so 99.96 becomes `100`, not `100.0`.
    if (x * 10.0).round().abs() >= 1000.0 {
        format!("{x:.0}")
    } else if (x * 100.0).round().abs() >= 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A duration in nanoseconds, in the unit that keeps it under a thousand (seconds at
/// most), to three significant digits: `850 ns`, `12.3 us`, `4.56 ms`, `1.20 s`,
/// `125 s`.
///
/// ```
/// use schedkit_workload::figures::format_duration_ns;
/// assert_eq!(format_duration_ns(850.0), "850 ns");
/// assert_eq!(format_duration_ns(999_999.0), "1.00 ms");
/// assert_eq!(format_duration_ns(10_200_000_000.0), "10.2 s");
/// ```
pub fn format_duration_ns(ns: f64) -> String {
    if ns == 0.0 {
        return "0 ns".to_string();
    }
    const SCALES: [(f64, &str); 3] = [(1.0, "ns"), (1e3, "us"), (1e6, "ms")];
    for (scale, unit) in SCALES {
        // Below 999.5 of this unit it does not round up to 1000.
        if ns.abs() < 999.5 * scale {
            return format!("{} {unit}", three_digits(ns / scale));
        }
    }
    format!("{} s", three_digits(ns / 1e9))
}

/// The median of `values` (the mean of the middle two for an even count); `None` when
/// empty.
///
/// ```
/// use schedkit_workload::figures::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
/// assert_eq!(median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `value / baseline`, when the baseline is a usable divisor (finite, not zero).
///
/// ```
/// use schedkit_workload::figures::ratio;
/// assert_eq!(ratio(3.0, 2.0), Some(1.5));
/// assert_eq!(ratio(3.0, 0.0), None);
/// ```
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline.abs() > f64::EPSILON && baseline.is_finite()).then(|| value / baseline)
}

/// A value written by its unit, followed by its ratio to a baseline when there is one:
/// `2.00 ms (0.33x)`.
///
/// ```
/// use schedkit_workload::figures::{with_ratio, Unit};
/// assert_eq!(with_ratio(Unit::Nanos, 2e6, Some(1.0 / 3.0)), "2.00 ms (0.33x)");
/// assert_eq!(with_ratio(Unit::Percent, 0.5, None), "50.0%");
/// ```
pub fn with_ratio(unit: Unit, value: f64, ratio: Option<f64>) -> String {
    let mut s = unit.format(value);
    if let Some(r) = ratio {
        s.push_str(&format!(" ({r:.2}x)"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        Fairness, GroupReport, JobStats, LatencyRecorder, PeriodicStats, PingPongStats,
    };

    fn report() -> Report {
        let mut lat = LatencyRecorder::new();
        for ns in [1_000_000, 2_000_000, 9_000_000] {
            lat.record(ns);
        }
        let s = lat.summary();
        let mut game = GroupReport::new("game", "periodic", 1, 0);
        game.task_cpu_ns = vec![100_000_000];
        game.periodic = Some(PeriodicStats::new(100, 5, s));
        let mut hogs = GroupReport::new("hogs", "cpu", 2, 0);
        hogs.task_cpu_ns = vec![300_000_000, 100_000_000];
        let mut build = GroupReport::new("build", "jobs", 2, 0);
        build.task_cpu_ns = vec![1_000_000; 4];
        build.jobs = Some(JobStats::new(5, 4, s, 1_000_000_000));
        let mut ipc = GroupReport::new("ipc", "pingpong", 2, 0);
        ipc.pingpong = Some(PingPongStats::new(500, s, 1_000_000_000));
        Report::new("t", "eevdf", 1_000_000_000, 2, vec![game, hogs, build, ipc])
    }

    #[test]
    fn figures_are_named_per_group_in_spec_order_then_fairness() {
        let names: Vec<String> = report().figures().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "game: deadline misses",
                "game: lateness p50",
                "game: lateness p99",
                "game: lateness max",
                "game: CPU share",
                "hogs: CPU share",
                "build: jobs",
                "build: completion mean",
                "build: completion p99",
                "build: CPU share",
                "ipc: round trips",
                "ipc: round trip p50",
                "ipc: round trip p99",
                "ipc: CPU share",
                "cpu tasks at nice 0: fairness (Jain)",
            ]
        );
    }

    #[test]
    fn figures_carry_values_units_and_direction() {
        let r = report();
        let figs = r.figures();
        let get = |name: &str| figs.iter().find(|f| f.name == name).unwrap().clone();
        let miss = get("game: deadline misses");
        assert_eq!((miss.unit, miss.better), (Unit::Percent, Better::Lower));
        assert!((miss.value - 0.05).abs() < 1e-12);
        let p99 = get("game: lateness p99");
        assert_eq!(p99.unit, Unit::Nanos);
        assert_eq!(
            p99.value,
            r.groups[0].periodic.as_ref().unwrap().start_lateness.p99_ns as f64
        );
        let jobs = get("build: jobs");
        assert_eq!(
            (jobs.unit, jobs.better, jobs.value),
            (Unit::PerSecond, Better::Higher, 4.0)
        );
        assert_eq!(get("ipc: round trips").value, 500.0);
        let share = get("hogs: CPU share");
        assert_eq!(
            (share.better, share.formatted()),
            (Better::Neither, "20.0%".to_string())
        );
        let fair = get("cpu tasks at nice 0: fairness (Jain)");
        assert_eq!((fair.unit, fair.better), (Unit::Index, Better::Higher));
        assert_eq!(fair.formatted(), "0.800");
        assert_eq!(fair.measure(), measure::FAIRNESS);
    }

    #[test]
    fn fairness_of_each_nice_level_is_a_figure() {
        let mut r = report();
        r.fairness.push(Fairness {
            nice: 10,
            tasks: 2,
            jain: 1.0,
        });
        let figs = r.figures();
        assert_eq!(
            figs.last().unwrap().name,
            "cpu tasks at nice 10: fairness (Jain)"
        );
    }

    #[test]
    fn durations_take_the_unit_that_keeps_three_digits() {
        assert_eq!(Unit::Nanos.format(0.0), "0 ns");
        assert_eq!(Unit::Nanos.format(0.4), "0.40 ns");
        assert_eq!(Unit::Nanos.format(999.0), "999 ns");
        assert_eq!(Unit::Nanos.format(999.6), "1.00 us");
        assert_eq!(Unit::Nanos.format(12_345.0), "12.3 us");
        assert_eq!(Unit::Nanos.format(8_650_000.0), "8.65 ms");
        assert_eq!(Unit::Nanos.format(10_149_000.0), "10.1 ms");
        assert_eq!(Unit::Nanos.format(123_700_000.0), "124 ms");
        assert_eq!(Unit::Nanos.format(999_700_000.0), "1.00 s");
        assert_eq!(Unit::Nanos.format(1_041_000_000_000.0), "1041 s");
    }

    #[test]
    fn other_units_are_written_with_their_sign() {
        assert_eq!(Unit::Percent.format(0.761), "76.1%");
        assert_eq!(Unit::Percent.format(0.0), "0.00%");
        assert_eq!(Unit::Percent.format(0.99996), "100%");
        assert_eq!(Unit::PerSecond.format(4355.2), "4355/s");
        assert_eq!(Unit::PerSecond.format(6.5), "6.50/s");
        assert_eq!(Unit::Index.format(1.0), "1.000");
        assert_eq!(Unit::Count.format(5533.4), "5533");
        assert_eq!(Unit::Nanos.format(f64::NAN), "-");
    }

    #[test]
    fn units_and_directions_serialise_as_short_words() {
        let f = Figure::new("x: y", Unit::Nanos, Better::Lower, 1.0);
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""unit":"ns""#), "{json}");
        assert!(json.contains(r#""better":"lower""#), "{json}");
        assert_eq!(serde_json::from_str::<Figure>(&json).unwrap(), f);
    }

    #[test]
    fn ratio_is_written_after_the_value() {
        assert_eq!(
            with_ratio(Unit::PerSecond, 32.8, ratio(32.8, 1283.0)),
            "32.8/s (0.03x)"
        );
        assert_eq!(with_ratio(Unit::Count, 0.0, ratio(0.0, 0.0)), "0");
        assert_eq!(measure_of("a: b: c"), "c");
        assert_eq!(measure_of("context switches"), "context switches");
    }
}
