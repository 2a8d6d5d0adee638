//! The workload spec: a scenario written once in TOML, run for real by [`crate::exec`]
//! and modelled by the simulator.
//!
//! ```toml
//! name = "game while building"
//! duration_s = 10
//! seed = 42
//!
//! [[group]]
//! name = "game"
//! kind = "periodic"
//! period_ms = 16.667
//! work_ms = 4
//!
//! [[group]]
//! name = "build"
//! kind = "jobs"
//! parallel = "2x-cpus"
//! work_ms = { dist = "uniform", min = 5, max = 50 }
//! ```
//!
//! The file is read in two passes: serde turns the text into a loose, span-carrying
//! form (so an unknown field or kind points at its line), then [`Spec`] is built and
//! checked from it, so every validation error can also name a line. Inside, times are
//! nanoseconds (`u64`); the file uses the units people think in (ms, µs, s).
//!
//! # Limits
//!
//! A spec that parses can run: every time (`duration_s`, `period_ms`, `work_ms` and its
//! `min` / `max` / `mean`, `work_us`) is at least 1 ns once rounded to nanoseconds
//! (`work_us` may be 0) and at most [`MAX_TIME_NS`] (24 hours), so adding any two of
//! them, or one to a clock reading, cannot overflow a `u64`. A scenario runs at most
//! [`MAX_TASKS`] tasks at once, all groups together, and `parallel = "Nx-cpus"` takes
//! `N` up to [`MAX_PER_CPU`]. The parser counts a per-CPU group at one CPU; the
//! runners, which know their CPU count, check the total again with
//! [`Spec::check_nr_tasks`] before they start anything.
//!
//! ```
//! use schedkit_workload::spec::{Kind, Spec};
//! let spec = Spec::from_str_named(r#"
//!     name = "tiny"
//!     duration_s = 1
//!     [[group]]
//!     name = "hog"
//!     kind = "cpu"
//!     count = 2
//! "#, "tiny.toml").unwrap();
//! assert_eq!(spec.groups[0].count, 2);
//! assert!(matches!(spec.groups[0].kind, Kind::Cpu));
//! ```

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The most tasks a scenario may run at once, all groups together (see
/// [`Group::nr_tasks`]): threads of `periodic` and `cpu` groups, two threads per
/// `pingpong` pair, the processes of `jobs` groups (each also has a slot thread that
/// waits for it, so the executor's threads and processes stay under twice this).
///
/// A few thousand is far more than a scheduling scenario needs to show contention on
/// any machine, yet stays well inside default limits (`ulimit -u`, `pid_max`,
/// `threads-max` of a small VM) and keeps the simulator's per-event work bounded.
pub const MAX_TASKS: u32 = 4096;

/// The largest `N` of `parallel = "Nx-cpus"`. `make -j` is rarely run wider than 2 to
/// 4 jobs per CPU; 64 leaves room for heavy oversubscription while a typo like
/// `"100000x-cpus"` is caught in the file rather than when the runner counts tasks.
pub const MAX_PER_CPU: u32 = 64;

/// The longest time a spec may give, in nanoseconds: 24 hours, for the scenario's
/// `duration_s` and for any period or amount of work. Far beyond any useful scenario,
/// and small enough (under 2^47) that sums of times cannot overflow.
pub const MAX_TIME_NS: u64 = 86_400 * 1_000_000_000;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Scenario name, shown in reports.
    pub name: String,
    /// How long the scenario runs, in nanoseconds (`duration_s` in the file).
    pub duration_ns: u64,
    /// Seed for everything random (job sizes); the same seed gives the same sizes in
    /// the executor and in the simulator.
    pub seed: u64,
    /// The task groups, in file order.
    pub groups: Vec<Group>,
}

/// A group of identical tasks (`[[group]]` in the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Group name, unique within the scenario.
    pub name: String,
    /// Number of tasks: threads for `periodic` and `cpu`, pairs for `pingpong`. Always 1
    /// for `jobs` (a single stream whose width is [`Kind::Jobs::parallel`]).
    pub count: u32,
    /// Nice level of every task of the group, -20..=19.
    pub nice: i32,
    /// CPUs the group's tasks may run on (`affinity = [0]`); `None` means all.
    pub affinity: Option<Vec<u32>>,
    /// What the tasks do.
    pub kind: Kind,
}

/// What the tasks of a group do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Kind {
    /// Wakes at every period start and does `work_ns` of CPU work: a game frame, an
    /// audio buffer. Work not done by the next period start is a deadline miss.
    Periodic {
        /// Period (`period_ms`), 1 ns ..= [`MAX_TIME_NS`].
        period_ns: u64,
        /// CPU work per period (`work_ms`), >= 1 ns and < the period.
        work_ns: u64,
    },
    /// Always runnable: a CPU hog.
    Cpu,
    /// A `make -j`-like stream of short-lived processes, `parallel` at a time, each
    /// doing CPU work drawn from `work`. Job sizes are drawn in job start order from
    /// [`Spec::group_rng`] of the group's index: job *n* gets the *n*-th draw, in the
    /// executor and in the simulator alike.
    Jobs {
        /// How many jobs run at once (`parallel`).
        parallel: Parallel,
        /// CPU work per job (`work_ms`).
        work: WorkDist,
        /// Stop after this many jobs (`total`); `None`: keep starting jobs until the end.
        total: Option<u64>,
    },
    /// Pairs of tasks that wake each other in turn, like a client and a server.
    PingPong {
        /// Round trips per pair (`rounds`); `None`: until the scenario ends.
        rounds: Option<u64>,
        /// CPU work done for each message by its receiver (`work_us`, default 0), at
        /// most [`MAX_TIME_NS`].
        work_ns: u64,
    },
}

impl Kind {
    /// The kind's name as written in the file: `periodic`, `cpu`, `jobs`, `pingpong`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Periodic { .. } => "periodic",
            Kind::Cpu => "cpu",
            Kind::Jobs { .. } => "jobs",
            Kind::PingPong { .. } => "pingpong",
        }
    }
}

impl Group {
    /// The tasks the group runs at once on a machine with `nr_cpus` CPUs: `count`
    /// threads (two per pair for `pingpong`), or `parallel` job processes. The reports
    /// show this number.
    ///
    /// ```
    /// use schedkit_workload::spec::Spec;
    /// let spec = Spec::from_str_named(r#"
    ///     name = "n"
    ///     duration_s = 1
    ///     [[group]]
    ///     name = "pp"
    ///     kind = "pingpong"
    ///     count = 3
    ///     [[group]]
    ///     name = "make"
    ///     kind = "jobs"
    ///     parallel = "2x-cpus"
    ///     work_ms = 5
    /// "#, "n.toml").unwrap();
    /// assert_eq!(spec.groups[0].nr_tasks(4), 6);
    /// assert_eq!(spec.groups[1].nr_tasks(4), 8);
    /// assert_eq!(spec.nr_tasks(4), 14);
    /// ```
    pub fn nr_tasks(&self, nr_cpus: u32) -> u32 {
        match &self.kind {
            Kind::Jobs { parallel, .. } => parallel.resolve(nr_cpus),
            Kind::PingPong { .. } => self.count.saturating_mul(2),
            Kind::Periodic { .. } | Kind::Cpu => self.count,
        }
    }
}

/// A scenario that would run more than [`MAX_TASKS`] tasks at once on the machine at
/// hand (a per-CPU `parallel` on a machine with many CPUs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scenario `{scenario}` would run {nr_tasks} tasks at once on {nr_cpus} CPUs, more than \
     the limit of {max}: lower a group's `count` or `parallel`",
    max = MAX_TASKS
)]
pub struct TooManyTasks {
    /// The scenario's name.
    pub scenario: String,
    /// The tasks it would run at once.
    pub nr_tasks: u64,
    /// The CPU count they were counted for.
    pub nr_cpus: u32,
}

/// How many jobs run at once: a number, or a multiple of the machine's CPU count
/// (`"2x-cpus"`) that each runner resolves with its own CPU count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parallel {
    /// Exactly this many, 1 ..= [`MAX_TASKS`].
    Fixed(u32),
    /// This many per CPU (`"2x-cpus"` is `PerCpu(2)`, `"cpus"` is `PerCpu(1)`),
    /// 1 ..= [`MAX_PER_CPU`].
    PerCpu(u32),
}

impl Parallel {
    /// The number of jobs at once on a machine with `nr_cpus` CPUs (at least 1).
    ///
    /// ```
    /// use schedkit_workload::spec::Parallel;
    /// assert_eq!(Parallel::PerCpu(2).resolve(4), 8);
    /// assert_eq!(Parallel::Fixed(3).resolve(4), 3);
    /// ```
    pub fn resolve(&self, nr_cpus: u32) -> u32 {
        match *self {
            Parallel::Fixed(n) => n.max(1),
            Parallel::PerCpu(k) => k.saturating_mul(nr_cpus).max(1),
        }
    }
}

/// A distribution of CPU work, sampled with a seeded [`Rng`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum WorkDist {
    /// Always the same amount (`work_ms = 20`).
    Fixed {
        /// The amount.
        ns: u64,
    },
    /// Uniform between `min` and `max` inclusive.
    Uniform {
        /// Lower bound.
        min_ns: u64,
        /// Upper bound, >= `min_ns`.
        max_ns: u64,
    },
    /// Exponential with the given mean, optionally cut at `max` (a sample above it is
    /// `max`). Never below 1 µs, so a job always does some work.
    Exponential {
        /// Mean.
        mean_ns: u64,
        /// Cap, if any.
        max_ns: Option<u64>,
    },
}

impl WorkDist {
    /// One sample, in nanoseconds. Deterministic for a given RNG state.
    ///
    /// ```
    /// use schedkit_workload::spec::{Rng, WorkDist};
    /// let d = WorkDist::Uniform { min_ns: 5_000_000, max_ns: 50_000_000 };
    /// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
    /// let x = d.sample_work_ns(&mut a);
    /// assert!((5_000_000..=50_000_000).contains(&x));
    /// assert_eq!(x, d.sample_work_ns(&mut b));
    /// ```
    pub fn sample_work_ns(&self, rng: &mut Rng) -> u64 {
        match *self {
            WorkDist::Fixed { ns } => ns,
            WorkDist::Uniform { min_ns, max_ns } => {
                let span = max_ns.saturating_sub(min_ns);
                if span == 0 {
                    min_ns
                } else if span == u64::MAX {
                    rng.next_u64()
                } else {
                    min_ns + rng.below(span + 1)
                }
            }
            WorkDist::Exponential { mean_ns, max_ns } => {
                // Inverse transform; 1 - u is in (0, 1], so ln never sees 0.
                let u = rng.next_f64();
                let x = -(mean_ns as f64) * (1.0 - u).ln();
                let x = x.max(1_000.0) as u64;
                match max_ns {
                    Some(m) => x.min(m),
                    None => x,
                }
            }
        }
    }

    /// The distribution's mean, in nanoseconds (before the cap of an exponential).
    pub fn mean_ns(&self) -> u64 {
        match *self {
            WorkDist::Fixed { ns } => ns,
            WorkDist::Uniform { min_ns, max_ns } => min_ns / 2 + max_ns / 2,
            WorkDist::Exponential { mean_ns, .. } => mean_ns,
        }
    }
}

/// A small deterministic random number generator (xoshiro256**, seeded through
/// SplitMix64). Written out here rather than taken from a crate so that the executor
/// and the simulator draw the very same job sizes from a seed, whatever crate versions
/// the workspace resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The generator for group number `index` of a scenario seeded with `seed`: each
    /// group has its own stream, so adding a group does not change another's draws.
    pub fn for_group(seed: u64, index: usize) -> Rng {
        Rng::new(
            seed ^ (index as u64)
                .wrapping_add(1)
                .wrapping_mul(0xD1B5_4A32_D192_ED03),
        )
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in [0, n), n > 0 (Lemire's multiply-and-reject, unbiased).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

/// A spec that could not be read or is invalid. Displays as `FILE:LINE:COL: what is
/// wrong with which field` (or `FILE: ...` when there is no position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file name (or the name given to [`Spec::from_str_named`]).
    pub file: String,
    /// 1-based line and column of the offending value, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{}:{}: {}", self.file, line, col, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

impl Spec {
    /// Reads and checks the spec in `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: name.clone(),
            position: None,
            message: format!("cannot read the workload spec: {e}"),
        })?;
        Spec::from_str_named(&text, &name)
    }

    /// Parses and checks `text`; `name` is the file name used in error messages.
    pub fn from_str_named(text: &str, name: &str) -> Result<Spec, SpecError> {
        let err = |span: Option<Range<usize>>, message: String| SpecError {
            file: name.to_string(),
            position: span.map(|s| line_col(text, s.start)),
            message,
        };
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim_end().replace('\n', "; ");
            // The toml crate leaves some syntax errors (`key =` and no value) unexplained.
            let msg = if msg.is_empty() {
                "this is not valid TOML (a missing value?)".to_string()
            } else {
                msg
            };
            err(e.span(), msg)
        })?;
        raw.build().map_err(|(span, msg)| err(span, msg))
    }

    /// The tasks the scenario runs at once on a machine with `nr_cpus` CPUs, all
    /// groups together (see [`Group::nr_tasks`]).
    pub fn nr_tasks(&self, nr_cpus: u32) -> u64 {
        self.groups
            .iter()
            .map(|g| u64::from(g.nr_tasks(nr_cpus)))
            .sum()
    }

    /// [`Spec::nr_tasks`] if it is within [`MAX_TASKS`], for a runner to call before it
    /// starts anything: a spec that parsed is within the limit on one CPU, but a
    /// per-CPU `parallel` grows with the machine.
    ///
    /// ```
    /// use schedkit_workload::spec::Spec;
    /// let spec = Spec::from_str_named(r#"
    ///     name = "wide"
    ///     duration_s = 1
    ///     [[group]]
    ///     name = "make"
    ///     kind = "jobs"
    ///     parallel = "64x-cpus"
    ///     work_ms = 5
    /// "#, "wide.toml").unwrap();
    /// assert_eq!(spec.check_nr_tasks(8), Ok(512));
    /// assert!(spec.check_nr_tasks(128).is_err());
    /// ```
    pub fn check_nr_tasks(&self, nr_cpus: u32) -> Result<u32, TooManyTasks> {
        let nr_tasks = self.nr_tasks(nr_cpus);
        match u32::try_from(nr_tasks) {
            Ok(n) if n <= MAX_TASKS => Ok(n),
            _ => Err(TooManyTasks {
                scenario: self.name.clone(),
                nr_tasks,
                nr_cpus,
            }),
        }
    }

    /// The group named `name`, if any.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The random stream of group number `index` (see [`Rng::for_group`]).
    pub fn group_rng(&self, index: usize) -> Rng {
        Rng::for_group(self.seed, index)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

// ---- The loose form serde reads, with spans for error messages. ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Spanned<String>,
    duration_s: Spanned<f64>,
    #[serde(default)]
    seed: u64,
    #[serde(rename = "group", default)]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    kind: Spanned<KindName>,
    count: Option<Spanned<i64>>,
    nice: Option<Spanned<i64>>,
    affinity: Option<Spanned<Vec<i64>>>,
    period_ms: Option<Spanned<f64>>,
    work_ms: Option<Spanned<RawWork>>,
    parallel: Option<Spanned<RawParallel>>,
    total: Option<Spanned<i64>>,
    rounds: Option<Spanned<i64>>,
    work_us: Option<Spanned<f64>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KindName {
    Periodic,
    Cpu,
    Jobs,
    Pingpong,
}

/// `work_ms`: a number, or a table `{ dist = "...", ... }`.
enum RawWork {
    Number(f64),
    Dist(RawDist),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDist {
    dist: DistName,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DistName {
    Fixed,
    Uniform,
    Exponential,
}

impl<'de> Deserialize<'de> for RawWork {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawWork;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of milliseconds or a table like { dist = \"uniform\", min = 5, max = 50 }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawWork, E> {
                Ok(RawWork::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawWork, E> {
                Ok(RawWork::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawWork, E> {
                Ok(RawWork::Number(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawWork, A::Error> {
                RawDist::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawWork::Dist)
            }
        }
        d.deserialize_any(V)
    }
}

/// `parallel`: a number, or `"cpus"` / `"Nx-cpus"`.
enum RawParallel {
    Number(i64),
    PerCpu(u32),
}

impl<'de> Deserialize<'de> for RawParallel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawParallel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of jobs or a string like \"2x-cpus\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawParallel, E> {
                Ok(RawParallel::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawParallel, E> {
                Ok(RawParallel::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawParallel, E> {
                let factor = if v == "cpus" {
                    Some(1)
                } else {
                    v.strip_suffix("x-cpus").and_then(|k| k.parse::<u32>().ok())
                };
                match factor {
                    Some(k) if k >= 1 => Ok(RawParallel::PerCpu(k)),
                    _ => Err(E::custom(format!(
                        "`parallel` must be a number or \"cpus\" / \"Nx-cpus\" (like \"2x-cpus\"), not \"{v}\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

type BuildError = (Option<Range<usize>>, String);

/// A unit of the file's time fields.
#[derive(Clone, Copy)]
struct Unit {
    ns: f64,
    name: &'static str,
}

const SECONDS: Unit = Unit {
    ns: 1e9,
    name: "seconds",
};
const MILLISECONDS: Unit = Unit {
    ns: 1e6,
    name: "milliseconds",
};
const MICROSECONDS: Unit = Unit {
    ns: 1e3,
    name: "microseconds",
};

/// A number as a message shows it: plainly, but in scientific notation when it is
/// very large or very small (Rust writes `1e300` with all its 301 digits).
fn show(x: f64) -> String {
    let a = x.abs();
    if a.is_finite() && (a >= 1e15 || (a != 0.0 && a < 1e-4)) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A time field of the file, `value` in `unit`s, as whole nanoseconds: finite, at
/// most [`MAX_TIME_NS`], and at least 1 ns once rounded (or exactly 0 when `zero_ok`).
/// The error names `field` and says what it must be.
fn time_ns(field: &str, value: f64, unit: Unit, zero_ok: bool) -> Result<u64, String> {
    let Unit { ns: per_unit, name } = unit;
    if zero_ok && value == 0.0 {
        return Ok(0);
    }
    if !(value.is_finite() && value > 0.0) {
        let what = if zero_ok {
            "zero or a positive"
        } else {
            "a positive"
        };
        return Err(format!(
            "`{field}` must be {what} number of {name}, got {}",
            show(value)
        ));
    }
    let ns = (value * per_unit).round();
    if ns > MAX_TIME_NS as f64 {
        let max = show(MAX_TIME_NS as f64 / per_unit);
        return Err(format!(
            "`{field}` must be at most {max} {name} (24 hours), got {}",
            show(value)
        ));
    }
    if ns < 1.0 {
        let min = show(1.0 / per_unit);
        return Err(format!(
            "`{field}` must be at least {min} {name} (1 ns), got {}",
            show(value)
        ));
    }
    Ok(ns as u64)
}

/// A scenario or group name: shown in reports and error messages, so it must show
/// something and stay on one line.
fn check_name(field: &str, name: &Spanned<String>) -> Result<(), BuildError> {
    let text = name.get_ref();
    let what = if text.trim().is_empty() {
        "must not be empty"
    } else if text.chars().any(char::is_control) {
        "must not contain control characters (like a line break)"
    } else {
        return Ok(());
    };
    Err((Some(name.span()), format!("{field} {what}")))
}

impl RawSpec {
    fn build(self) -> Result<Spec, BuildError> {
        let duration_ns = time_ns("duration_s", *self.duration_s.get_ref(), SECONDS, false)
            .map_err(|m| (Some(self.duration_s.span()), m))?;
        check_name("`name`", &self.name)?;
        if self.groups.is_empty() {
            return Err((
                None,
                "the scenario has no `[[group]]`: add at least one task group".into(),
            ));
        }
        let mut groups: Vec<Group> = Vec::with_capacity(self.groups.len());
        // Tasks at once on one CPU, the fewest a runner can start: past the limit here,
        // the spec cannot run anywhere. Runners check again with their CPU count.
        let mut nr_tasks = 0u64;
        for raw in self.groups {
            let raw = raw.into_inner();
            let size_span = raw
                .count
                .as_ref()
                .map(|c| c.span())
                .or_else(|| raw.parallel.as_ref().map(|p| p.span()))
                .unwrap_or_else(|| raw.kind.span());
            let group = raw.build()?;
            nr_tasks += u64::from(group.nr_tasks(1));
            if nr_tasks > u64::from(MAX_TASKS) {
                return Err((
                    Some(size_span),
                    format!(
                        "group `{}`: with this group the scenario runs at least {nr_tasks} tasks at once (threads, two per pingpong pair, and job processes), more than the limit of {MAX_TASKS}",
                        group.name
                    ),
                ));
            }
            groups.push(group);
        }
        // Duplicate names would make reports ambiguous.
        for (i, g) in groups.iter().enumerate() {
            if groups[..i].iter().any(|o| o.name == g.name) {
                return Err((
                    None,
                    format!(
                        "two groups are named `{}`: group names must be unique",
                        g.name
                    ),
                ));
            }
        }
        Ok(Spec {
            name: self.name.into_inner(),
            duration_ns,
            seed: self.seed,
            groups,
        })
    }
}

impl RawGroup {
    fn build(self) -> Result<Group, BuildError> {
        let name = self.name.get_ref().clone();
        let kind = *self.kind.get_ref();
        let kind_str = match kind {
            KindName::Periodic => "periodic",
            KindName::Cpu => "cpu",
            KindName::Jobs => "jobs",
            KindName::Pingpong => "pingpong",
        };
        let e = |span: Range<usize>, what: String| -> BuildError {
            (Some(span), format!("group `{name}`: {what}"))
        };
        check_name("group `name`", &self.name)?;

        // Fields that belong to other kinds are mistakes, not silently ignored.
        let allowed: &[&str] = match kind {
            KindName::Periodic => &["period_ms", "work_ms"],
            KindName::Cpu => &[],
            KindName::Jobs => &["parallel", "work_ms", "total"],
            KindName::Pingpong => &["rounds", "work_us"],
        };
        let present: [(&str, Option<Range<usize>>); 6] = [
            ("period_ms", self.period_ms.as_ref().map(|s| s.span())),
            ("work_ms", self.work_ms.as_ref().map(|s| s.span())),
            ("parallel", self.parallel.as_ref().map(|s| s.span())),
            ("total", self.total.as_ref().map(|s| s.span())),
            ("rounds", self.rounds.as_ref().map(|s| s.span())),
            ("work_us", self.work_us.as_ref().map(|s| s.span())),
        ];
        for (field, span) in present {
            if let Some(span) = span {
                if !allowed.contains(&field) {
                    return Err(e(
                        span,
                        format!("field `{field}` does not apply to kind `{kind_str}`"),
                    ));
                }
            }
        }

        let count = match &self.count {
            None => 1,
            Some(c) => {
                let v = *c.get_ref();
                if !(1..=i64::from(MAX_TASKS)).contains(&v) {
                    return Err(e(
                        c.span(),
                        format!("`count` must be between 1 and {MAX_TASKS}, got {v}"),
                    ));
                }
                if kind == KindName::Jobs && v != 1 {
                    return Err(e(
                        c.span(),
                        "`count` does not apply to kind `jobs`: use `parallel` for the number of jobs at once".into(),
                    ));
                }
                v as u32
            }
        };
        let nice = match &self.nice {
            None => 0,
            Some(n) => {
                let v = *n.get_ref();
                if !(-20..=19).contains(&v) {
                    return Err(e(n.span(), format!("`nice` must be in -20..=19, got {v}")));
                }
                v as i32
            }
        };
        let affinity = match &self.affinity {
            None => None,
            Some(a) => {
                let cpus = a.get_ref();
                if cpus.is_empty() {
                    return Err(e(a.span(), "`affinity` must list at least one CPU".into()));
                }
                let mut out = Vec::with_capacity(cpus.len());
                for &c in cpus {
                    if !(0..=4095).contains(&c) {
                        return Err(e(
                            a.span(),
                            format!("`affinity` has an invalid CPU number {c}"),
                        ));
                    }
                    out.push(c as u32);
                }
                Some(out)
            }
        };

        let kind_span = self.kind.span();
        let missing = |field: &str| -> BuildError {
            e(
                kind_span.clone(),
                format!("kind `{kind_str}` needs the field `{field}`"),
            )
        };

        let kind = match kind {
            KindName::Cpu => Kind::Cpu,
            KindName::Periodic => {
                let period = self
                    .period_ms
                    .as_ref()
                    .ok_or_else(|| missing("period_ms"))?;
                let p = *period.get_ref();
                let period_ns = time_ns("period_ms", p, MILLISECONDS, false)
                    .map_err(|m| e(period.span(), m))?;
                let work = self.work_ms.as_ref().ok_or_else(|| missing("work_ms"))?;
                let w = match work.get_ref() {
                    RawWork::Number(w) => *w,
                    RawWork::Dist(_) => {
                        return Err(e(
                            work.span(),
                            "`work_ms` of a periodic group must be a number of milliseconds".into(),
                        ))
                    }
                };
                let work_ns =
                    time_ns("work_ms", w, MILLISECONDS, false).map_err(|m| e(work.span(), m))?;
                // Compared in whole nanoseconds too: that is what runs.
                if w >= p || work_ns >= period_ns {
                    return Err(e(
                        work.span(),
                        format!(
                            "`work_ms` ({}) must be less than `period_ms` ({})",
                            show(w),
                            show(p)
                        ),
                    ));
                }
                Kind::Periodic { period_ns, work_ns }
            }
            KindName::Jobs => {
                let par = self.parallel.as_ref().ok_or_else(|| missing("parallel"))?;
                let parallel = match par.get_ref() {
                    RawParallel::Number(n) => {
                        if !(1..=i64::from(MAX_TASKS)).contains(n) {
                            return Err(e(
                                par.span(),
                                format!("`parallel` must be between 1 and {MAX_TASKS}, got {n}"),
                            ));
                        }
                        Parallel::Fixed(*n as u32)
                    }
                    RawParallel::PerCpu(k) => {
                        if *k > MAX_PER_CPU {
                            return Err(e(
                                par.span(),
                                format!("`parallel` must be at most \"{MAX_PER_CPU}x-cpus\", got \"{k}x-cpus\""),
                            ));
                        }
                        Parallel::PerCpu(*k)
                    }
                };
                let work = self.work_ms.as_ref().ok_or_else(|| missing("work_ms"))?;
                let work_dist = build_dist(work.get_ref()).map_err(|m| e(work.span(), m))?;
                let total = match &self.total {
                    None => None,
                    Some(t) => {
                        let v = *t.get_ref();
                        if v < 1 {
                            return Err(e(
                                t.span(),
                                format!("`total` must be at least 1, got {v}"),
                            ));
                        }
                        Some(v as u64)
                    }
                };
                Kind::Jobs {
                    parallel,
                    work: work_dist,
                    total,
                }
            }
            KindName::Pingpong => {
                let rounds = match &self.rounds {
                    None => None,
                    Some(r) => {
                        let v = *r.get_ref();
                        if v < 1 {
                            return Err(e(
                                r.span(),
                                format!("`rounds` must be at least 1, got {v}"),
                            ));
                        }
                        Some(v as u64)
                    }
                };
                let work_ns = match &self.work_us {
                    None => 0,
                    Some(w) => time_ns("work_us", *w.get_ref(), MICROSECONDS, true)
                        .map_err(|m| e(w.span(), m))?,
                };
                Kind::PingPong { rounds, work_ns }
            }
        };
        Ok(Group {
            name,
            count,
            nice,
            affinity,
            kind,
        })
    }
}

fn build_dist(w: &RawWork) -> Result<WorkDist, String> {
    /// A parameter of the distribution, in nanoseconds.
    fn param(field: &str, v: Option<f64>) -> Result<u64, String> {
        let x = v.ok_or_else(|| format!("`work_ms` needs `{field}` for this distribution"))?;
        time_ns(&format!("work_ms.{field}"), x, MILLISECONDS, false)
    }
    match w {
        RawWork::Number(x) => Ok(WorkDist::Fixed {
            ns: time_ns("work_ms", *x, MILLISECONDS, false)?,
        }),
        RawWork::Dist(d) => {
            let only = |allowed: &[&str]| -> Result<(), String> {
                for (f, v) in [("min", d.min), ("max", d.max), ("mean", d.mean)] {
                    if v.is_some() && !allowed.contains(&f) {
                        return Err(format!("`work_ms.{f}` does not apply to this distribution"));
                    }
                }
                Ok(())
            };
            match d.dist {
                DistName::Fixed => {
                    only(&["mean"])?;
                    Ok(WorkDist::Fixed {
                        ns: param("mean", d.mean)?,
                    })
                }
                DistName::Uniform => {
                    only(&["min", "max"])?;
                    let (min_ns, max_ns) = (param("min", d.min)?, param("max", d.max)?);
                    match (d.min, d.max) {
                        (Some(min), Some(max)) if min > max => {
                            return Err(format!(
                                "`work_ms.min` ({}) must not exceed `work_ms.max` ({})",
                                show(min),
                                show(max)
                            ))
                        }
                        _ => {}
                    }
                    Ok(WorkDist::Uniform { min_ns, max_ns })
                }
                DistName::Exponential => {
                    only(&["mean", "max"])?;
                    Ok(WorkDist::Exponential {
                        mean_ns: param("mean", d.mean)?,
                        max_ns: d.max.map(|m| param("max", Some(m))).transpose()?,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::from_str_named(text, "t.toml")
    }

    const GOOD: &str = r#"
name = "good"
duration_s = 2.5
seed = 9

[[group]]
name = "game"
kind = "periodic"
period_ms = 16
work_ms = 4

[[group]]
name = "make"
kind = "jobs"
parallel = "2x-cpus"
work_ms = { dist = "uniform", min = 5, max = 50 }
total = 100

[[group]]
name = "pp"
kind = "pingpong"
count = 2
work_us = 10

[[group]]
name = "hog"
kind = "cpu"
count = 3
nice = 5
affinity = [0]
"#;

    #[test]
    fn parses_every_kind_into_nanoseconds() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.duration_ns, 2_500_000_000);
        assert_eq!(s.seed, 9);
        assert_eq!(
            s.groups[0].kind,
            Kind::Periodic {
                period_ns: 16_000_000,
                work_ns: 4_000_000
            }
        );
        assert_eq!(
            s.groups[1].kind,
            Kind::Jobs {
                parallel: Parallel::PerCpu(2),
                work: WorkDist::Uniform {
                    min_ns: 5_000_000,
                    max_ns: 50_000_000
                },
                total: Some(100)
            }
        );
        assert_eq!(
            s.groups[2].kind,
            Kind::PingPong {
                rounds: None,
                work_ns: 10_000
            }
        );
        assert_eq!(s.groups[2].count, 2);
        assert_eq!(s.groups[3].nice, 5);
        assert_eq!(s.groups[3].affinity, Some(vec![0]));
        assert_eq!(s.groups[0].nice, 0);
        assert_eq!(s.groups[0].count, 1);
    }

    #[test]
    fn unknown_kind_names_file_line_and_field() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"a\"\nkind = \"bogus\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:5:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("periodic"), "{err}");
    }

    #[test]
    fn negative_period_is_rejected_with_its_line() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"periodic\"\nperiod_ms = -16\nwork_ms = 4\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml:6:13: group `g`: `period_ms` must be a positive number of milliseconds, got -16"
        );
    }

    #[test]
    fn missing_kind_field_is_named() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"periodic\"\nwork_ms = 4\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml:5:8: group `g`: kind `periodic` needs the field `period_ms`"
        );
    }

    #[test]
    fn toml_error_without_a_message_still_says_something() {
        let err = parse("0=").unwrap_err().to_string();
        assert_eq!(err, "t.toml:1:3: this is not valid TOML (a missing value?)");
    }

    #[test]
    fn missing_top_level_field_is_named() {
        let text = "name = \"x\"\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:1:1: "), "{err}");
        assert!(err.contains("missing field `duration_s`"), "{err}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let text =
            "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\nperiod = 3\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:6:1: "), "{err}");
        assert!(err.contains("unknown field `period`"), "{err}");
    }

    #[test]
    fn field_of_another_kind_is_rejected() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\nperiod_ms = 3\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml:6:13: group `g`: field `period_ms` does not apply to kind `cpu`"
        );
    }

    #[test]
    fn work_must_fit_in_period() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"periodic\"\nperiod_ms = 10\nwork_ms = 10\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("t.toml:7:11: group `g`: `work_ms` (10) must be less than"),
            "{err}"
        );
    }

    #[test]
    fn nice_and_count_are_range_checked() {
        let base = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n";
        let err = parse(&format!("{base}nice = 20\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nice` must be in -20..=19, got 20"), "{err}");
        let err = parse(&format!("{base}count = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:6:9: "), "{err}");
        assert!(err.contains("`count`"), "{err}");
    }

    #[test]
    fn bad_parallel_string_is_rejected() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"jobs\"\nparallel = \"lots\"\nwork_ms = 3\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:6:"), "{err}");
        assert!(err.contains("`parallel`"), "{err}");
    }

    #[test]
    fn unknown_distribution_is_rejected() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"jobs\"\nparallel = 2\nwork_ms = { dist = \"normal\", mean = 3 }\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:7:"), "{err}");
        assert!(err.contains("normal"), "{err}");
    }

    #[test]
    fn duplicate_group_names_are_rejected() {
        let text = "name = \"x\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n";
        assert!(parse(text)
            .unwrap_err()
            .to_string()
            .contains("two groups are named `g`"));
    }

    /// A one-group spec: `group` holds the group's lines after `name = "g"`.
    fn one_group(duration_s: &str, group: &str) -> Result<Spec, SpecError> {
        parse(&format!(
            "name = \"x\"\nduration_s = {duration_s}\n[[group]]\nname = \"g\"\n{group}\n"
        ))
    }

    fn one_group_err(duration_s: &str, group: &str) -> String {
        one_group(duration_s, group).unwrap_err().to_string()
    }

    #[test]
    fn per_cpu_parallel_is_capped() {
        let jobs = |p: &str| format!("kind = \"jobs\"\nparallel = \"{p}\"\nwork_ms = 3");
        for p in ["4294967295x-cpus", "100000x-cpus", "65x-cpus"] {
            let err = one_group_err("1", &jobs(p));
            assert_eq!(
                err,
                format!(
                    "t.toml:6:12: group `g`: `parallel` must be at most \"64x-cpus\", got \"{p}\""
                ),
            );
        }
        let s = one_group("1", &jobs("64x-cpus")).unwrap();
        assert!(matches!(
            s.groups[0].kind,
            Kind::Jobs {
                parallel: Parallel::PerCpu(64),
                ..
            }
        ));
    }

    #[test]
    fn fixed_parallel_and_count_are_capped_at_the_task_limit() {
        let err = one_group_err("1", "kind = \"jobs\"\nparallel = 4097\nwork_ms = 3");
        assert!(
            err.ends_with("`parallel` must be between 1 and 4096, got 4097"),
            "{err}"
        );
        let err = one_group_err("1", "kind = \"cpu\"\ncount = 4097");
        assert!(
            err.ends_with("`count` must be between 1 and 4096, got 4097"),
            "{err}"
        );
        assert!(one_group("1", "kind = \"jobs\"\nparallel = 4096\nwork_ms = 3").is_ok());
        assert!(one_group("1", "kind = \"cpu\"\ncount = 4096").is_ok());
    }

    #[test]
    fn total_tasks_of_all_groups_are_capped() {
        let text = "name = \"x\"\nduration_s = 1\n\
            [[group]]\nname = \"a\"\nkind = \"cpu\"\ncount = 3000\n\
            [[group]]\nname = \"b\"\nkind = \"periodic\"\ncount = 1097\nperiod_ms = 2\nwork_ms = 1\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml:10:9: group `b`: with this group the scenario runs at least 4097 tasks at \
             once (threads, two per pingpong pair, and job processes), more than the limit of 4096"
        );
        let ok = text.replace("count = 1097", "count = 1096");
        assert_eq!(parse(&ok).unwrap().nr_tasks(1), 4096);
    }

    #[test]
    fn pingpong_pairs_count_two_tasks_toward_the_cap() {
        let err = one_group_err("1", "kind = \"pingpong\"\ncount = 2049");
        assert!(err.starts_with("t.toml:6:9: group `g`: "), "{err}");
        assert!(err.contains("at least 4098 tasks"), "{err}");
        assert_eq!(
            one_group("1", "kind = \"pingpong\"\ncount = 2048")
                .unwrap()
                .nr_tasks(1),
            4096
        );
    }

    #[test]
    fn per_cpu_jobs_count_one_cpu_toward_the_cap_at_parse_time() {
        // 4095 hogs and "cpus" jobs: 4096 on one CPU, accepted; a runner with more
        // CPUs refuses it.
        let text = "name = \"x\"\nduration_s = 1\n\
            [[group]]\nname = \"hogs\"\nkind = \"cpu\"\ncount = 4095\n\
            [[group]]\nname = \"make\"\nkind = \"jobs\"\nparallel = \"cpus\"\nwork_ms = 1\n";
        let spec = parse(text).unwrap();
        assert_eq!(spec.check_nr_tasks(1), Ok(4096));
        assert_eq!(
            spec.check_nr_tasks(2).unwrap_err().to_string(),
            "scenario `x` would run 4097 tasks at once on 2 CPUs, more than the limit of 4096: \
             lower a group's `count` or `parallel`"
        );
        let err = parse(&text.replace("4095", "4096"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:10:12: group `make`: "), "{err}");
    }

    #[test]
    fn check_nr_tasks_counts_per_cpu_groups_with_the_callers_cpu_count() {
        let s = one_group("1", "kind = \"jobs\"\nparallel = \"64x-cpus\"\nwork_ms = 3").unwrap();
        assert_eq!(s.check_nr_tasks(64), Ok(4096));
        let err = s.check_nr_tasks(65).unwrap_err();
        assert_eq!(err.nr_tasks, 4160);
        // Far past u32 on absurd CPU counts: an error, not a wrapped count.
        assert!(s.check_nr_tasks(u32::MAX).is_err());
    }

    #[test]
    fn duration_beyond_24_hours_is_rejected() {
        let cpu = "kind = \"cpu\"";
        assert_eq!(
            one_group_err("1e11", cpu),
            "t.toml:2:14: `duration_s` must be at most 86400 seconds (24 hours), got 100000000000"
        );
        assert!(one_group_err("86400.001", cpu).contains("at most 86400 seconds"));
        assert_eq!(one_group("86400", cpu).unwrap().duration_ns, MAX_TIME_NS);
    }

    #[test]
    fn duration_that_rounds_to_zero_nanoseconds_is_rejected() {
        let cpu = "kind = \"cpu\"";
        assert_eq!(
            one_group_err("1e-10", cpu),
            "t.toml:2:14: `duration_s` must be at least 1e-9 seconds (1 ns), got 1e-10"
        );
        assert_eq!(one_group("1e-9", cpu).unwrap().duration_ns, 1);
        assert!(one_group_err("inf", cpu).contains("a positive number of seconds, got inf"));
        assert!(one_group_err("nan", cpu).contains("a positive number of seconds, got NaN"));
    }

    #[test]
    fn period_below_a_nanosecond_or_beyond_24_hours_is_rejected() {
        let periodic =
            |p: &str, w: &str| format!("kind = \"periodic\"\nperiod_ms = {p}\nwork_ms = {w}");
        assert_eq!(
            one_group_err("1", &periodic("1e-7", "1e-8")),
            "t.toml:6:13: group `g`: `period_ms` must be at least 1e-6 milliseconds (1 ns), got 1e-7"
        );
        assert_eq!(
            one_group_err("1", &periodic("1e300", "4")),
            "t.toml:6:13: group `g`: `period_ms` must be at most 86400000 milliseconds (24 hours), got 1e300"
        );
        let s = one_group("1", &periodic("86400000", "86399999.999999")).unwrap();
        assert_eq!(
            s.groups[0].kind,
            Kind::Periodic {
                period_ns: MAX_TIME_NS,
                work_ns: MAX_TIME_NS - 1
            }
        );
    }

    #[test]
    fn periodic_work_must_be_a_nanosecond_and_fit_the_period_in_nanoseconds() {
        let periodic =
            |p: &str, w: &str| format!("kind = \"periodic\"\nperiod_ms = {p}\nwork_ms = {w}");
        // Used to become 1 ns of work in a 1 ns period.
        let err = one_group_err("1", &periodic("0.000001", "0.0000001"));
        assert!(
            err.contains("`work_ms` must be at least 1e-6 milliseconds (1 ns)"),
            "{err}"
        );
        // Less in the file, equal once rounded to whole nanoseconds.
        let err = one_group_err("1", &periodic("0.0000024", "0.0000016"));
        assert!(err.contains("must be less than `period_ms`"), "{err}");
        let s = one_group("1", &periodic("0.000002", "0.000001")).unwrap();
        assert_eq!(
            s.groups[0].kind,
            Kind::Periodic {
                period_ns: 2,
                work_ns: 1
            }
        );
    }

    #[test]
    fn job_work_fields_are_range_checked_in_nanoseconds() {
        let jobs = |w: &str| format!("kind = \"jobs\"\nparallel = 2\nwork_ms = {w}");
        for (work, msg) in [
            (
                "1e20",
                "`work_ms` must be at most 86400000 milliseconds (24 hours)",
            ),
            (
                "1e-9",
                "`work_ms` must be at least 1e-6 milliseconds (1 ns)",
            ),
            (
                "{ dist = \"fixed\", mean = 1e10 }",
                "`work_ms.mean` must be at most",
            ),
            (
                "{ dist = \"uniform\", min = 1, max = 1e10 }",
                "`work_ms.max` must be at most",
            ),
            (
                "{ dist = \"uniform\", min = 1e-7, max = 1 }",
                "`work_ms.min` must be at least",
            ),
            (
                "{ dist = \"exponential\", mean = 1e-12 }",
                "`work_ms.mean` must be at least",
            ),
            (
                "{ dist = \"exponential\", mean = 5, max = inf }",
                "`work_ms.max` must be a positive number of milliseconds, got inf",
            ),
            (
                "{ dist = \"uniform\", min = 6, max = 5 }",
                "`work_ms.min` (6) must not exceed `work_ms.max` (5)",
            ),
        ] {
            let err = one_group_err("1", &jobs(work));
            assert!(err.starts_with("t.toml:7:11: group `g`: "), "{work}: {err}");
            assert!(err.contains(msg), "{work}: {err}");
        }
        let s = one_group(
            "1",
            &jobs("{ dist = \"uniform\", min = 0.000001, max = 86400000 }"),
        )
        .unwrap();
        assert!(matches!(
            s.groups[0].kind,
            Kind::Jobs {
                work: WorkDist::Uniform {
                    min_ns: 1,
                    max_ns: MAX_TIME_NS
                },
                ..
            }
        ));
    }

    #[test]
    fn pingpong_work_may_be_zero_but_not_beyond_24_hours() {
        let pp = |w: &str| format!("kind = \"pingpong\"\nwork_us = {w}");
        assert_eq!(
            one_group_err("1", &pp("1e20")),
            "t.toml:6:11: group `g`: `work_us` must be at most 86400000000 microseconds (24 hours), got 1e20"
        );
        assert!(one_group_err("1", &pp("-1"))
            .contains("`work_us` must be zero or a positive number of microseconds, got -1"));
        assert!(matches!(
            one_group("1", &pp("0")).unwrap().groups[0].kind,
            Kind::PingPong { work_ns: 0, .. }
        ));
    }

    #[test]
    fn names_with_line_breaks_are_rejected() {
        let err =
            parse("name = \"x\\ny\"\nduration_s = 1\n[[group]]\nname = \"g\"\nkind = \"cpu\"\n")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "t.toml:1:8: `name` must not contain control characters (like a line break)"
        );
        let err =
            parse("name = \"x\"\nduration_s = 1\n[[group]]\nname = \"a\\rb\"\nkind = \"cpu\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("t.toml:4:8: group `name` must not contain control"),
            "{err}"
        );
    }

    #[test]
    fn parallel_resolves_against_the_callers_cpu_count() {
        assert_eq!(Parallel::PerCpu(2).resolve(2), 4);
        assert_eq!(Parallel::PerCpu(2).resolve(16), 32);
        assert_eq!(Parallel::Fixed(5).resolve(16), 5);
    }

    #[test]
    fn rng_is_deterministic_and_streams_differ_per_group() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::for_group(1, 0).next_u64(),
            Rng::for_group(1, 1).next_u64()
        );
        // Pinned values: a change here changes every seeded scenario's job sizes.
        assert_eq!(Rng::new(0).next_u64(), 0x99EC_5F36_CB75_F2B4);
    }

    #[test]
    fn uniform_samples_stay_in_range_with_the_right_mean() {
        let d = WorkDist::Uniform {
            min_ns: 5_000_000,
            max_ns: 50_000_000,
        };
        let mut r = Rng::new(3);
        let n = 20_000;
        let mut sum = 0u64;
        for _ in 0..n {
            let x = d.sample_work_ns(&mut r);
            assert!((5_000_000..=50_000_000).contains(&x));
            sum += x;
        }
        let mean = sum as f64 / n as f64;
        assert!((mean - 27.5e6).abs() < 0.5e6, "mean {mean}");
    }

    #[test]
    fn exponential_samples_have_the_right_mean_and_cap() {
        let d = WorkDist::Exponential {
            mean_ns: 10_000_000,
            max_ns: None,
        };
        let mut r = Rng::new(4);
        let n = 20_000;
        let sum: u64 = (0..n).map(|_| d.sample_work_ns(&mut r)).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 10e6).abs() < 0.4e6, "mean {mean}");
        let capped = WorkDist::Exponential {
            mean_ns: 10_000_000,
            max_ns: Some(12_000_000),
        };
        assert!((0..1000).all(|_| capped.sample_work_ns(&mut r) <= 12_000_000));
    }
}
