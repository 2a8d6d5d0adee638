//! Several schedulers on one scenario: runs them side by side (one thread each, same
//! seed) and lays their figures out as one table, with each figure's ratio to the
//! first scheduler's. The figures are the report's own ([`schedkit_workload::figures`]),
//! named and written as `schedkit bench-report` names and writes a real run's.
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

use schedkit_workload::figures::{ratio, with_ratio, Better, Figure, Unit};

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

/// The figures of one simulated run: its report's ([`Report::figures`], the same
/// names and units as a real run's), then the simulator's own about the scheduler.
///
/// [`Report::figures`]: schedkit_workload::Report::figures
pub fn figures(run: &SimOutput) -> Vec<Figure> {
    let mut out = run.report.figures();
    let s = &run.sim;
    out.extend([
        Figure::new(
            "scheduler CPU share",
            Unit::Percent,
            Better::Lower,
            s.scheduler_share,
        ),
        Figure::new(
            "policy decisions",
            Unit::Count,
            Better::Neither,
            s.decisions as f64,
        ),
        Figure::new(
            "kernel fast-path dispatches",
            Unit::Count,
            Better::Neither,
            s.kernel_dispatches as f64,
        ),
        Figure::new(
            "context switches",
            Unit::Count,
            Better::Neither,
            s.context_switches as f64,
        ),
    ]);
    out
}

/// The side-by-side table: one row per figure of the first run, one column per run,
/// each value followed by its ratio to the first run's (`(1.50x)`; none where the
/// first is zero, `-` where a run lacks the figure).
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
    let per_run: Vec<Vec<Figure>> = runs.iter().map(figures).collect();
    let rows = &per_run[0];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            per_run
                .iter()
                .enumerate()
                .map(|(i, figs)| match figs.iter().find(|f| f.name == row.name) {
                    Some(f) => {
                        let r = (i > 0).then(|| ratio(f.value, row.value)).flatten();
                        with_ratio(f.unit, f.value, r)
                    }
                    None => "-".to_string(),
                })
                .collect()
        })
        .collect();
    let label_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
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
        let _ = write!(out, "{:<label_w$}", row.name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use schedkit_workload::exec::{self, ExecOptions};
    use schedkit_workload::Spec;

    /// Every kind of group, two equal hogs for a fairness figure; short enough to run
    /// for real in a test.
    const MIX: &str = r#"
        name = "mix"
        duration_s = 0.3
        seed = 3
        [[group]]
        name = "game"
        kind = "periodic"
        period_ms = 10
        work_ms = 1
        [[group]]
        name = "build"
        kind = "jobs"
        parallel = 1
        work_ms = 2
        [[group]]
        name = "ipc"
        kind = "pingpong"
        work_us = 20
        [[group]]
        name = "hogs"
        kind = "cpu"
        count = 2
        nice = 5
    "#;

    fn names(figures: &[Figure]) -> Vec<(&str, Unit, Better)> {
        figures
            .iter()
            .map(|f| (f.name.as_str(), f.unit, f.better))
            .collect()
    }

    #[test]
    fn simulated_and_real_runs_of_one_spec_give_the_same_figures_in_order() {
        let spec = Spec::from_str_named(MIX, "mix.toml").unwrap();
        let simulated = Simulation::new(spec.clone(), SimConfig::default())
            .run_eevdf()
            .unwrap();
        let real = exec::run(&spec, &ExecOptions::default()).unwrap();
        let sim_figures = simulated.report.figures();
        let real_figures = real.figures();
        assert_eq!(names(&sim_figures), names(&real_figures));
        // Every kind of group is there, and the fairness of the equal hogs.
        let all = names(&real_figures);
        for name in [
            "game: lateness p99",
            "build: jobs",
            "ipc: round trip p99",
            "hogs: CPU share",
            "cpu tasks at nice 5: fairness (Jain)",
        ] {
            assert!(all.iter().any(|(n, _, _)| *n == name), "{name} in {all:?}");
        }
    }

    #[test]
    fn table_rows_are_the_run_figures_in_order_written_by_unit() {
        let spec = Spec::from_str_named(MIX, "mix.toml").unwrap();
        let sim = Simulation::new(spec, SimConfig::default());
        let runs: Vec<SimOutput> = run_all(&sim, &["eevdf", "eevdf"], |_| Ok(Scheduler::Eevdf))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let table = render_table(&runs);
        let figs = figures(&runs[0]);
        let lines: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(lines.len(), figs.len(), "{table}");
        for (line, f) in lines.iter().zip(&figs) {
            assert!(line.starts_with(&f.name), "{line:?} is not {}", f.name);
            // The same run twice: each value, then a ratio of 1 where it is defined.
            let value = f.formatted();
            assert!(
                line.contains(&format!(" {value} ")),
                "{line:?} lacks {value}"
            );
            if f.value != 0.0 {
                assert!(line.ends_with(&format!("{value} (1.00x)")), "{line:?}");
            } else {
                assert!(line.ends_with(&format!(" {value}")), "{line:?}");
            }
        }
        assert_eq!(figs.last().unwrap().name, "context switches");
    }
}
