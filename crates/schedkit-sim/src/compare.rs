//! Several schedulers on one scenario: runs them side by side (one thread each, same
//! seed) and lays their figures out as one table, with each figure's ratio to the
//! first scheduler's.
//!
//! ```
//! use schedkit_sim::{compare, Scheduler, SimConfig, Simulation};
//! use schedkit_workload::Spec;
//! let spec = Spec::from_str_named(r#"
//!     name = "hogs"
//!     duration_s = 0.2
//!     [[group]]
//!     name = "hog"
//!     kind = "cpu"
//!     count = 3
//! "#, "hogs.toml").unwrap();
//! let sim = Simulation::new(spec, SimConfig::default());
//! let runs = compare::run_all(&sim, &["eevdf", "eevdf"], |_| Ok(Scheduler::Eevdf));
//! let table = compare::render_table(&runs.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>());
//! assert!(table.contains("hog"));
//! ```

use std::fmt::Write as _;

use schedkit_workload::report::fmt_ns;

use crate::{Scheduler, SimError, SimOutput, Simulation};

/// Runs `sim` under every scheduler of `names`, each in its own thread, each built by
/// `make` (an `Err` is the sentence to report for that name). Results come back in
/// the order of `names`.
pub fn run_all<F>(sim: &Simulation, names: &[&str], make: F) -> Vec<Result<SimOutput, SimError>>
where
    F: Fn(&str) -> Result<Scheduler, String> + Sync,
{
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|&name| {
                let make = &make;
                s.spawn(move || sim.run_scheduler(make(name).map_err(SimError::Config)?))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(SimError::Config("a simulation thread panicked".into()))
                })
            })
            .collect()
    })
}

/// How a figure is shown.
#[derive(Clone, Copy)]
enum Unit {
    Ns,
    Percent,
    Rate,
    Ratio,
    Count,
}

/// One row of the comparison: a label and one value per run.
struct Row {
    label: String,
    unit: Unit,
    values: Vec<f64>,
}

fn rows(runs: &[SimOutput]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut add = |label: String, unit: Unit, f: &dyn Fn(&SimOutput) -> Option<f64>| {
        let values: Vec<Option<f64>> = runs.iter().map(f).collect();
        if values.iter().all(Option::is_some) {
            rows.push(Row {
                label,
                unit,
                values: values.into_iter().flatten().collect(),
            });
        }
    };
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    for (gi, g) in first.report.groups.iter().enumerate() {
        let n = &g.name;
        let grp = move |r: &SimOutput| r.report.groups.get(gi).cloned();
        if g.periodic.is_some() {
            add(format!("{n}: deadline misses"), Unit::Percent, &|r| {
                grp(r)?.periodic.map(|p| p.miss_ratio)
            });
            add(format!("{n}: lateness p50"), Unit::Ns, &|r| {
                grp(r)?.periodic.map(|p| p.start_lateness.p50_ns as f64)
            });
            add(format!("{n}: lateness p99"), Unit::Ns, &|r| {
                grp(r)?.periodic.map(|p| p.start_lateness.p99_ns as f64)
            });
            add(format!("{n}: lateness max"), Unit::Ns, &|r| {
                grp(r)?.periodic.map(|p| p.start_lateness.max_ns as f64)
            });
        }
        if g.jobs.is_some() {
            add(format!("{n}: jobs/s"), Unit::Rate, &|r| {
                grp(r)?.jobs.map(|j| j.jobs_per_s)
            });
            add(format!("{n}: completion mean"), Unit::Ns, &|r| {
                grp(r)?.jobs.map(|j| j.completion.mean_ns as f64)
            });
            add(format!("{n}: completion p99"), Unit::Ns, &|r| {
                grp(r)?.jobs.map(|j| j.completion.p99_ns as f64)
            });
        }
        if g.pingpong.is_some() {
            add(format!("{n}: round trips/s"), Unit::Rate, &|r| {
                grp(r)?.pingpong.map(|p| p.round_trips_per_s)
            });
            add(format!("{n}: round trip p50"), Unit::Ns, &|r| {
                grp(r)?.pingpong.map(|p| p.latency.p50_ns as f64)
            });
            add(format!("{n}: round trip p99"), Unit::Ns, &|r| {
                grp(r)?.pingpong.map(|p| p.latency.p99_ns as f64)
            });
        }
        add(format!("{n}: CPU share"), Unit::Percent, &|r| {
            grp(r).map(|g| g.cpu_share)
        });
    }
    for (fi, f) in first.report.fairness.iter().enumerate() {
        add(
            format!("fairness, cpu tasks at nice {} (Jain)", f.nice),
            Unit::Ratio,
            &|r| r.report.fairness.get(fi).map(|f| f.jain),
        );
    }
    add("scheduler CPU share".into(), Unit::Percent, &|r| {
        Some(r.sim.scheduler_share)
    });
    add("policy decisions".into(), Unit::Count, &|r| {
        Some(r.sim.decisions as f64)
    });
    add("kernel fast-path dispatches".into(), Unit::Count, &|r| {
        Some(r.sim.kernel_dispatches as f64)
    });
    add("context switches".into(), Unit::Count, &|r| {
        Some(r.sim.context_switches as f64)
    });
    rows
}

fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Ns => fmt_ns(v.max(0.0) as u64),
        Unit::Percent => format!("{:.2}%", v * 100.0),
        Unit::Rate => format!("{v:.1}"),
        Unit::Ratio => format!("{v:.3}"),
        Unit::Count => format!("{v:.0}"),
    }
}

/// The side-by-side table: one column per run, each figure followed by its ratio to
/// the first run's (`x1.50`; `-` where the first is zero).
pub fn render_table(runs: &[SimOutput]) -> String {
    let mut out = String::new();
    let Some(first) = runs.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "scenario: {}   CPUs: {}   simulated: {:.2} s   seed: {}",
        first.report.scenario,
        first.report.nr_cpus,
        first.report.duration_ns as f64 / 1e9,
        first.sim.seed
    );
    let rows = rows(runs);
    let label_w = rows.iter().map(|r| r.label.len()).max().unwrap_or(6).max(6);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let mut s = fmt_value(row.unit, v);
                    if i > 0 {
                        let base = row.values[0];
                        if base != 0.0 {
                            let _ = write!(s, " (x{:.2})", v / base);
                        } else {
                            s.push_str(" (-)");
                        }
                    }
                    s
                })
                .collect()
        })
        .collect();
    let col_w: Vec<usize> = (0..runs.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain(std::iter::once(runs[i].report.scheduler.len()))
                .max()
                .unwrap_or(8)
        })
        .collect();
    let _ = write!(out, "{:<label_w$}", "figure");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(out, "  {:>w$}", r.report.scheduler, w = col_w[i]);
    }
    out.push('\n');
    for (row, cells) in rows.iter().zip(&cells) {
        let _ = write!(out, "{:<label_w$}", row.label);
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", c, w = col_w[i]);
        }
        out.push('\n');
    }
    out
}

/// The runs as one JSON array of reports (each with its `"simulation"` figures).
pub fn to_json(runs: &[SimOutput]) -> String {
    let items: Vec<String> = runs.iter().map(|r| r.to_json()).collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}
