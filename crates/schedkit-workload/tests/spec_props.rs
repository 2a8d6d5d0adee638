//! Property tests of the spec parser: whatever the text, it returns a spec or one
//! error line naming the file, never panics; and every spec it accepts can run, with
//! its times in 1 ns ..= 24 h and its tasks within the limit.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use schedkit_workload::spec::{
    Kind, Parallel, Rng, Spec, WorkDist, MAX_PER_CPU, MAX_TASKS, MAX_TIME_NS,
};

const FILE: &str = "p.toml";

/// Parses `text` and checks what came out: an accepted spec is in range, a rejected
/// one has a one-line message that starts with the file name.
fn parse_and_check(text: &str) -> Result<Spec, String> {
    match Spec::from_str_named(text, FILE) {
        Ok(spec) => {
            check_accepted(&spec);
            Ok(spec)
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(FILE), "{msg}");
            assert!(!msg.contains('\n'), "{msg:?}");
            assert!(!e.message.is_empty());
            Err(msg)
        }
    }
}

fn time_in_range(what: &str, ns: u64) {
    assert!((1..=MAX_TIME_NS).contains(&ns), "{what} = {ns} ns");
}

/// What every accepted spec guarantees to the executor and the simulator.
fn check_accepted(spec: &Spec) {
    time_in_range("duration", spec.duration_ns);
    assert!(!spec.groups.is_empty());
    for (gi, g) in spec.groups.iter().enumerate() {
        assert!((1..=MAX_TASKS).contains(&g.count), "count {}", g.count);
        assert!((-20..=19).contains(&g.nice));
        match g.kind {
            Kind::Periodic { period_ns, work_ns } => {
                time_in_range("period", period_ns);
                time_in_range("work", work_ns);
                assert!(work_ns < period_ns, "work {work_ns} >= period {period_ns}");
            }
            Kind::Cpu => {}
            Kind::Jobs {
                parallel,
                work,
                total,
            } => {
                match parallel {
                    Parallel::Fixed(n) => assert!((1..=MAX_TASKS).contains(&n)),
                    Parallel::PerCpu(k) => assert!((1..=MAX_PER_CPU).contains(&k)),
                }
                match work {
                    WorkDist::Fixed { ns } => time_in_range("work", ns),
                    WorkDist::Uniform { min_ns, max_ns } => {
                        time_in_range("min", min_ns);
                        time_in_range("max", max_ns);
                        assert!(min_ns <= max_ns);
                    }
                    WorkDist::Exponential { mean_ns, max_ns } => {
                        time_in_range("mean", mean_ns);
                        if let Some(m) = max_ns {
                            time_in_range("max", m);
                        }
                    }
                }
                assert!(total.is_none_or(|t| t >= 1));
                // Drawing job sizes works whatever the parameters.
                let mut rng: Rng = spec.group_rng(gi);
                for _ in 0..8 {
                    let w = work.sample_work_ns(&mut rng);
                    assert!(w >= 1, "job of {w} ns");
                }
            }
            Kind::PingPong { rounds, work_ns } => {
                assert!(work_ns <= MAX_TIME_NS, "pingpong work {work_ns} ns");
                assert!(rounds.is_none_or(|r| r >= 1));
            }
        }
    }
    // Within the limit on one CPU, the fewest a runner can have; on more CPUs the
    // runner's check agrees with the count.
    assert!(spec.nr_tasks(1) <= u64::from(MAX_TASKS));
    assert_eq!(spec.check_nr_tasks(1).map(u64::from), Ok(spec.nr_tasks(1)));
    for nr_cpus in [2, 64, 1024, u32::MAX] {
        let n = spec.nr_tasks(nr_cpus);
        match spec.check_nr_tasks(nr_cpus) {
            Ok(m) => assert!(u64::from(m) == n && m <= MAX_TASKS),
            Err(e) => assert!(e.nr_tasks == n && n > u64::from(MAX_TASKS)),
        }
    }
}

// ---- Values as TOML text, mostly extreme ----

/// A float as TOML writes it.
fn toml_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// A number of some time unit: ordinary, at the limits, or anything.
fn time_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0.001..100.0f64).prop_map(toml_float),
        2 => select(&[
            "0", "-0.0", "1", "-1", "1e-7", "1e-9", "1e-10", "5e-324", "86400", "86400.001",
            "86400000", "86400000000", "86400000001", "1e11", "1e20", "1e300", "nan", "inf",
            "-inf", "9223372036854775807", "18446744073709551615", "\"5\"", "true",
        ][..])
        .prop_map(String::from),
        2 => any::<f64>().prop_map(toml_float),
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// An integer field (count, nice, total, rounds, seed).
fn int_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-3..20i64).prop_map(|n| n.to_string()),
        2 => select(&[
            0, 1, 2048, 2049, 4095, 4096, 4097, 100_000, -20, 19, 20, 4_294_967_295,
            i64::MIN, i64::MAX,
        ][..])
        .prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => time_value(),
    ]
}

fn parallel_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => int_value(),
        1 => Just("\"cpus\"".to_string()),
        3 => prop_oneof![
            1..=80u64,
            select(&[0, 65, 100_000, 4_294_967_295, 4_294_967_296, u64::MAX][..]),
        ]
        .prop_map(|n| format!("\"{n}x-cpus\"")),
        1 => "[a-z0-9 -]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn work_ms_value() -> impl Strategy<Value = String> {
    let dist = select(&["fixed", "uniform", "exponential", "normal"][..]);
    let param = select(&["min", "max", "mean", "sd"][..]);
    prop_oneof![
        2 => time_value(),
        3 => (dist, vec((param, time_value()), 0..4)).prop_map(|(d, ps)| {
            let mut fields = vec![format!("dist = \"{d}\"")];
            let mut seen = Vec::new();
            for (p, v) in ps {
                if !seen.contains(&p) {
                    seen.push(p);
                    fields.push(format!("{p} = {v}"));
                }
            }
            format!("{{ {} }}", fields.join(", "))
        }),
    ]
}

fn affinity_value() -> impl Strategy<Value = String> {
    vec(prop_oneof![0..4i64, any::<i64>()], 0..4).prop_map(|cpus| {
        let cpus: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
        format!("[{}]", cpus.join(", "))
    })
}

/// A name: usually plain, sometimes empty, blank or with a line break.
fn name_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,8}",
        1 => select(&["", " ", "a\\nb", "tab\\there", "é"][..]).prop_map(String::from),
    ]
    .prop_map(|s| format!("\"{s}\""))
}

/// A plausible time in milliseconds.
fn ms() -> impl Strategy<Value = f64> {
    prop_oneof![0.001..1.0f64, 1.0..200.0f64]
}

/// A valid `work_ms` for a `jobs` group.
fn job_work() -> impl Strategy<Value = String> {
    prop_oneof![
        ms().prop_map(toml_float),
        ms().prop_map(|m| format!("{{ dist = \"fixed\", mean = {} }}", toml_float(m))),
        (ms(), ms()).prop_map(|(a, b)| format!(
            "{{ dist = \"uniform\", min = {}, max = {} }}",
            toml_float(a.min(b)),
            toml_float(a.max(b))
        )),
        (ms(), prop::option::of(ms())).prop_map(|(mean, max)| match max {
            Some(m) => format!(
                "{{ dist = \"exponential\", mean = {}, max = {} }}",
                toml_float(mean),
                toml_float(m)
            ),
            None => format!("{{ dist = \"exponential\", mean = {} }}", toml_float(mean)),
        }),
    ]
}

type Lines = Vec<(String, String)>;

/// The lines of a valid group of some kind, after its name.
fn valid_group() -> impl Strategy<Value = Lines> {
    let line = |k: &str, v: String| (k.to_string(), v);
    let count = prop::option::of(1..=8u32);
    let nice = prop::option::of(-20..=19i32);
    prop_oneof![
        (ms(), 0.01..0.99f64, count.clone(), nice.clone()).prop_map(move |(p, f, c, n)| {
            let mut l = vec![
                line("kind", "\"periodic\"".into()),
                line("period_ms", toml_float(p)),
                line("work_ms", toml_float(p * f)),
            ];
            l.extend(c.map(|c| line("count", c.to_string())));
            l.extend(n.map(|n| line("nice", n.to_string())));
            l
        }),
        (count.clone(), nice, prop::option::of(vec(0..4u32, 1..3))).prop_map(move |(c, n, a)| {
            let mut l = vec![line("kind", "\"cpu\"".into())];
            l.extend(c.map(|c| line("count", c.to_string())));
            l.extend(n.map(|n| line("nice", n.to_string())));
            l.extend(a.map(|a| line("affinity", format!("{a:?}"))));
            l
        }),
        (
            prop_oneof![
                (1..=8u32).prop_map(|n| n.to_string()),
                (1..=4u32).prop_map(|k| format!("\"{k}x-cpus\"")),
                Just("\"cpus\"".to_string()),
            ],
            job_work(),
            prop::option::of(1..1000u64),
        )
            .prop_map(move |(p, w, t)| {
                let mut l = vec![
                    line("kind", "\"jobs\"".into()),
                    line("parallel", p),
                    line("work_ms", w),
                ];
                l.extend(t.map(|t| line("total", t.to_string())));
                l
            }),
        (
            count,
            prop::option::of(1..1000u64),
            prop::option::of(0.0..100.0f64)
        )
            .prop_map(move |(c, r, w)| {
                let mut l = vec![line("kind", "\"pingpong\"".into())];
                l.extend(c.map(|c| line("count", c.to_string())));
                l.extend(r.map(|r| line("rounds", r.to_string())));
                l.extend(w.map(|w| line("work_us", toml_float(w))));
                l
            }),
    ]
}

/// A change to a valid document: a line's value replaced by one drawn to break a
/// limit (of the kind its key takes), or a line added.
#[derive(Debug, Clone)]
struct Mutation {
    section: prop::sample::Index,
    line: prop::sample::Index,
    time: String,
    int: String,
    parallel: String,
    work: String,
    name: String,
    extra: (String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let extra_key = select(
        &[
            "count",
            "nice",
            "period_ms",
            "work_ms",
            "parallel",
            "total",
            "rounds",
            "work_us",
            "affinity",
            "seed",
            "bogus",
        ][..],
    );
    (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        time_value(),
        int_value(),
        parallel_value(),
        work_ms_value(),
        name_value(),
        (
            extra_key,
            prop_oneof![time_value(), int_value(), affinity_value()],
        ),
    )
        .prop_map(
            |(section, line, time, int, parallel, work, name, (k, v))| Mutation {
                section,
                line,
                time,
                int,
                parallel,
                work,
                name,
                extra: (k.to_string(), v),
            },
        )
}

impl Mutation {
    fn apply(&self, sections: &mut [Lines]) {
        let lines = &mut sections[self.section.index(sections.len())];
        let at = self.line.index(lines.len() + 1);
        let Some((key, value)) = lines.get_mut(at) else {
            // One past the end: add a line, unless the key is already there.
            if !lines.iter().any(|(k, _)| *k == self.extra.0) {
                lines.push(self.extra.clone());
            }
            return;
        };
        *value = match key.as_str() {
            "duration_s" | "period_ms" | "work_us" => self.time.clone(),
            "work_ms" => self.work.clone(),
            "parallel" => self.parallel.clone(),
            "name" => self.name.clone(),
            "kind" => "\"bogus\"".to_string(),
            _ => self.int.clone(),
        };
    }
}

/// A document that looks like a spec: a valid one with a few values replaced by
/// extreme ones, so that each limit is met alone as well as together.
fn tomlish() -> impl Strategy<Value = String> {
    (
        (1e-6..=100.0f64, any::<u64>()),
        vec(valid_group(), 1..4),
        vec(mutation(), 0..3),
    )
        .prop_map(|((duration, seed), groups, mutations)| {
            let mut sections: Vec<Lines> = vec![vec![
                ("name".into(), "\"spec\"".into()),
                ("duration_s".into(), toml_float(duration)),
                ("seed".into(), (seed >> 1).to_string()),
            ]];
            for (i, g) in groups.into_iter().enumerate() {
                let mut lines = vec![("name".to_string(), format!("\"g{i}\""))];
                lines.extend(g);
                sections.push(lines);
            }
            for m in &mutations {
                m.apply(&mut sections);
            }
            let mut out = String::new();
            for (i, lines) in sections.iter().enumerate() {
                if i > 0 {
                    out += "[[group]]\n";
                }
                for (k, v) in lines {
                    out += &format!("{k} = {v}\n");
                }
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_is_parsed_or_rejected_without_panicking(text in any::<String>()) {
        let _ = parse_and_check(&text);
    }

    #[test]
    fn spec_like_text_is_accepted_in_range_or_rejected_with_one_line(text in tomlish()) {
        let _ = parse_and_check(&text);
    }

    #[test]
    fn spec_like_text_cut_anywhere_is_parsed_or_rejected(text in tomlish(), cut in any::<prop::sample::Index>()) {
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let _ = parse_and_check(&text[..at]);
    }
}

// ---- Values within the limits are accepted, and converted exactly ----

/// A spec of one group of each kind, every value inside the documented limits.
#[derive(Debug, Clone)]
struct InRange {
    duration_s: f64,
    period_ms: f64,
    work_frac: f64,
    count: u32,
    pairs: u32,
    per_cpu: u32,
    job_ms: (f64, f64),
    work_us: f64,
}

fn in_range() -> impl Strategy<Value = InRange> {
    (
        prop_oneof![1e-9..1.0f64, 1.0..=86_400.0f64],
        prop_oneof![1e-3..1.0f64, 1.0..=86_400_000.0f64],
        0.01..0.99f64,
        1..=1000u32,
        1..=1000u32,
        1..=MAX_PER_CPU,
        (1e-6..=86_400_000.0f64, 1e-6..=86_400_000.0f64),
        prop_oneof![Just(0.0), 0.0..=86_400_000_000.0f64],
    )
        .prop_map(
            |(duration_s, period_ms, work_frac, count, pairs, per_cpu, job_ms, work_us)| InRange {
                duration_s,
                period_ms,
                work_frac,
                count,
                pairs,
                per_cpu,
                job_ms,
                work_us,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn values_within_the_limits_are_accepted_and_converted(v in in_range()) {
        let work_ms = v.period_ms * v.work_frac;
        let (min, max) = (v.job_ms.0.min(v.job_ms.1), v.job_ms.0.max(v.job_ms.1));
        // The tasks on one CPU may pass the limit: then the error must say so.
        let text = format!(
            "name = \"in range\"\nduration_s = {}\n\
             [[group]]\nname = \"frames\"\nkind = \"periodic\"\ncount = {}\nperiod_ms = {}\nwork_ms = {}\n\
             [[group]]\nname = \"make\"\nkind = \"jobs\"\nparallel = \"{}x-cpus\"\nwork_ms = {{ dist = \"uniform\", min = {}, max = {} }}\n\
             [[group]]\nname = \"pp\"\nkind = \"pingpong\"\ncount = {}\nwork_us = {}\n",
            toml_float(v.duration_s), v.count, toml_float(v.period_ms), toml_float(work_ms),
            v.per_cpu, toml_float(min), toml_float(max), v.pairs, toml_float(v.work_us),
        );
        let spec = parse_and_check(&text).map_err(TestCaseError::fail)?;
        let ns = |x: f64, unit: f64| (x * unit).round() as u64;
        prop_assert_eq!(spec.duration_ns, ns(v.duration_s, 1e9));
        prop_assert_eq!(
            &spec.groups[0].kind,
            &Kind::Periodic { period_ns: ns(v.period_ms, 1e6), work_ns: ns(work_ms, 1e6) }
        );
        prop_assert_eq!(spec.nr_tasks(1), u64::from(v.count + v.per_cpu + 2 * v.pairs));
        prop_assert_eq!(
            &spec.groups[2].kind,
            &Kind::PingPong { rounds: None, work_ns: ns(v.work_us, 1e3) }
        );
    }
}
