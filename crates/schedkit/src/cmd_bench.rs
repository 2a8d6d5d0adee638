//! `schedkit bench-report RAW.json --out DIR` (hidden): turns the runs that
//! scripts/bench-guest.sh collected in the VM into `report.md` (medians per scheduler
//! and figure, with each figure's ratio to the kernel's default scheduler),
//! `medians.json` (the same figures for scripts) and `chart.svg` (frame deadline-miss
//! ratio and lateness p99 of the game-while-building periodic group).
//!
//! A workload run's figures are its report's own ([`Report::figures`]), named and
//! written as `schedkit compare` names and writes a simulated run's, so the two tables
//! line up row for row; the other benchmarks' figures use the same units and writing.
//! In `medians.json` each row holds its benchmark, its figure's name, its unit (`ns`
//! for every duration, `percent` for a fraction, ...) and which way is better; the
//! medians are in the unit's base (nanoseconds, fractions).
//!
//! Only runs whose scheduler was still attached afterwards count: a run during which
//! the scheduler was ejected measured the default scheduler, so it is shown as
//! "ejected" and never enters a median.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use plotters::prelude::*;
use schedkit_workload::figures::{
    figure_name, measure, measure_of, median, ratio, with_ratio, Better, Figure, Unit,
};
use schedkit_workload::Report;
use serde::{Deserialize, Serialize};

/// The label of the kernel's default scheduler: the reference of every ratio.
const BASELINE: &str = "eevdf";
/// The scenario and the kind of group the chart shows.
const CHART_SCENARIO: &str = "game-while-building";

#[derive(clap::Args)]
pub struct BenchReportArgs {
    /// The raw runs (raw.json, written by scripts/bench-guest.sh).
    raw: PathBuf,
    /// Directory for report.md, medians.json and chart.svg.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// raw.json as the guest script writes it.
#[derive(Debug, Deserialize)]
pub struct Raw {
    pub meta: Meta,
    pub schedulers: Vec<SchedulerEntry>,
    pub runs: Vec<RunEntry>,
}

#[derive(Debug, Deserialize)]
pub struct Meta {
    pub kernel: String,
    pub hz: Option<u64>,
    pub cpus: u32,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub options: serde_json::Value,
}

/// One scheduler of the benchmark and how attaching and detaching it went.
#[derive(Debug, Deserialize)]
pub struct SchedulerEntry {
    pub label: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub ops: String,
    pub attached: bool,
    /// Seconds from start to attached (the verifier is slow under TCG); the slowest of
    /// the rounds.
    #[serde(default)]
    pub attach_s: Option<f64>,
    #[serde(default)]
    pub error: String,
    pub detach_rc: Option<i64>,
    /// The scheduler process's peak resident memory (VmHWM) when it was stopped, KiB;
    /// the highest of the rounds.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
}

/// One run of one benchmark under one scheduler.
#[derive(Debug, Deserialize)]
pub struct RunEntry {
    pub scheduler: String,
    pub benchmark: String,
    pub kind: String,
    /// "ok", "ejected" (the scheduler was not attached after the run) or "failed" (the
    /// benchmark itself failed).
    pub status: String,
    pub figures: Option<serde_json::Value>,
    pub sched_cpu_s: Option<f64>,
    pub sched_faults: Option<i64>,
    pub wall_s: Option<f64>,
    /// A run recorded by `schedkit trace --cost` (`--trace`): the recording's share of
    /// the machine's CPU time (its BPF programs and its draining), 0 to 1.
    #[serde(default)]
    pub trace_cost: Option<f64>,
}

/// The figures one run yields: a workload's report figures, or the figures of
/// hackbench (wall time), `perf bench sched pipe` (time per operation) and cyclictest
/// (latency), durations in nanoseconds.
fn run_figures(run: &RunEntry) -> Vec<Figure> {
    let Some(fig) = &run.figures else {
        return Vec::new();
    };
    let number = |key: &str| fig.get(key).and_then(|v| v.as_f64());
    let duration = |name: &str, ns: f64| Figure::new(name, Unit::Nanos, Better::Lower, ns);
    let mut figures: Vec<Figure> = match run.kind.as_str() {
        "workload" => serde_json::from_value::<Report>(fig.clone())
            .map(|report| report.figures())
            .unwrap_or_default(),
        "hackbench" => number("wall_s")
            .map(|s| duration("wall time", s * 1e9))
            .into_iter()
            .collect(),
        "pipe" => number("usecs_per_op")
            .map(|us| duration("time per op", us * 1e3))
            .into_iter()
            .collect(),
        "cyclictest" => [("avg_us", "avg"), ("p99_us", "p99"), ("max_us", "max")]
            .into_iter()
            .filter_map(|(key, what)| {
                number(key).map(|us| duration(&format!("latency {what}"), us * 1e3))
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some(cost) = run.trace_cost {
        figures.push(Figure::new(
            "recording cost",
            Unit::Percent,
            Better::Lower,
            cost,
        ));
    }
    figures
}

/// One cell of the table: a scheduler's runs of one figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Median over the runs that stayed attached.
    pub median: Option<f64>,
    /// Runs that count.
    pub ok_runs: usize,
    /// Runs of this figure's benchmark during which the scheduler was ejected.
    pub ejected_runs: usize,
    /// Ratio of the median to the baseline's median.
    pub ratio: Option<f64>,
}

/// One row of the table: a figure of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct FigureRow {
    /// The benchmark (a scenario's name, `hackbench`, `pipe`, `cyclictest`).
    pub benchmark: String,
    /// The figure's name, as `schedkit compare` names it for a scenario.
    pub figure: String,
    pub unit: Unit,
    pub better: Better,
    /// Per scheduler, in the order of `Summary::schedulers`.
    pub cells: Vec<Cell>,
}

/// Per scheduler: whether it attached, what happened to its runs, what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerSummary {
    pub label: String,
    pub command: String,
    pub ops: String,
    pub attached: bool,
    pub attach_s: Option<f64>,
    pub error: String,
    pub detach_rc: Option<i64>,
    pub ok_runs: usize,
    pub ejected_runs: usize,
    pub failed_runs: usize,
    /// Scheduler process CPU time over the runs' wall time (None for the kernel's own).
    pub cpu_share: Option<f64>,
    /// Page faults of the scheduler process during the runs.
    pub faults: Option<i64>,
    /// Peak resident memory of the scheduler process, KiB.
    pub peak_rss_kib: Option<u64>,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub schedulers: Vec<SchedulerSummary>,
    pub rows: Vec<FigureRow>,
}

impl Summary {
    /// True when a scheduler failed to attach or was ejected.
    pub fn has_failures(&self) -> bool {
        self.schedulers
            .iter()
            .any(|s| !s.attached || s.ejected_runs > 0)
    }

    fn cell(&self, benchmark: &str, figure: &str, scheduler: &str) -> Option<&Cell> {
        let i = self.schedulers.iter().position(|s| s.label == scheduler)?;
        self.rows
            .iter()
            .find(|r| r.benchmark == benchmark && r.figure == figure)
            .and_then(|r| r.cells.get(i))
    }
}

/// Medians, ratios and per-scheduler status from the raw runs.
pub fn summarize(raw: &Raw) -> Summary {
    // Scheduler order: as benchmarked, then any that only appear in runs.
    let mut labels: Vec<String> = raw.schedulers.iter().map(|s| s.label.clone()).collect();
    for r in &raw.runs {
        if !labels.contains(&r.scheduler) {
            labels.push(r.scheduler.clone());
        }
    }
    // Figure order: as first seen. Values of runs that count, per (row, scheduler).
    let mut figures: Vec<(String, Figure)> = Vec::new();
    let mut values: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    fn row_of(figures: &mut Vec<(String, Figure)>, benchmark: &str, figure: Figure) -> usize {
        let found = figures
            .iter()
            .position(|(b, f)| b == benchmark && f.name == figure.name);
        found.unwrap_or_else(|| {
            figures.push((benchmark.to_string(), figure));
            figures.len() - 1
        })
    }
    for r in &raw.runs {
        for f in run_figures(r) {
            let v = f.value;
            let row = row_of(&mut figures, &r.benchmark, f);
            if r.status == "ok" && v.is_finite() {
                values
                    .entry((row, r.scheduler.clone()))
                    .or_default()
                    .push(v);
            }
        }
    }
    // Benchmarks an ejected run belongs to: their figures may have no values at all.
    for r in raw.runs.iter().filter(|r| r.status == "ejected") {
        let placeholder = Figure::new(
            "(ejected before any figure)",
            Unit::Count,
            Better::Neither,
            f64::NAN,
        );
        if !figures.iter().any(|(b, _)| *b == r.benchmark) {
            row_of(&mut figures, &r.benchmark, placeholder);
        }
    }
    let count = |sched: &str, bench: &str, status: &str| {
        raw.runs
            .iter()
            .filter(|r| r.scheduler == sched && r.benchmark == bench && r.status == status)
            .count()
    };
    let rows = figures
        .into_iter()
        .enumerate()
        .map(|(row, (bench, figure))| {
            let samples = |s: &str| values.get(&(row, s.to_string()));
            let base = samples(BASELINE).and_then(|v| median(v));
            let cells = labels
                .iter()
                .map(|s| {
                    let m = samples(s).and_then(|v| median(v));
                    Cell {
                        median: m,
                        ok_runs: samples(s).map_or(0, Vec::len),
                        ejected_runs: count(s, &bench, "ejected"),
                        ratio: match (m, base) {
                            (Some(m), Some(b)) if s != BASELINE => ratio(m, b),
                            _ => None,
                        },
                    }
                })
                .collect();
            FigureRow {
                figure: figure.name,
                unit: figure.unit,
                better: figure.better,
                benchmark: bench,
                cells,
            }
        })
        .collect();
    let schedulers = labels
        .iter()
        .map(|label| {
            let entry = raw.schedulers.iter().find(|s| s.label == *label);
            let runs: Vec<&RunEntry> = raw.runs.iter().filter(|r| r.scheduler == *label).collect();
            let of = |status: &str| runs.iter().filter(|r| r.status == status).count();
            let counted: Vec<&&RunEntry> = runs.iter().filter(|r| r.status != "ejected").collect();
            let cpu: Option<f64> = counted.iter().map(|r| r.sched_cpu_s).sum();
            let wall: f64 = counted.iter().filter_map(|r| r.wall_s).sum();
            let faults: Option<i64> = counted.iter().map(|r| r.sched_faults).sum();
            SchedulerSummary {
                label: label.clone(),
                command: entry.map(|e| e.command.clone()).unwrap_or_default(),
                ops: entry.map(|e| e.ops.clone()).unwrap_or_default(),
                attached: !matches!(entry, Some(e) if !e.attached),
                attach_s: entry.and_then(|e| e.attach_s),
                error: entry.map(|e| e.error.clone()).unwrap_or_default(),
                detach_rc: entry.and_then(|e| e.detach_rc),
                ok_runs: of("ok"),
                ejected_runs: of("ejected"),
                failed_runs: of("failed"),
                cpu_share: cpu.and_then(|c| (wall > 0.0 && !counted.is_empty()).then(|| c / wall)),
                faults: faults.filter(|_| !counted.is_empty()),
                peak_rss_kib: entry.and_then(|e| e.peak_rss_kib),
            }
        })
        .collect();
    Summary { schedulers, rows }
}

fn cell_text(cell: &Cell, unit: Unit, sched: &SchedulerSummary) -> String {
    if !sched.attached {
        return "not attached".into();
    }
    let mut s = match cell.median {
        // A ratio exists only beside a median.
        Some(m) => with_ratio(unit, m, cell.ratio),
        None if cell.ejected_runs > 0 => "ejected".into(),
        // The benchmark stops a scheduler's runs at its first ejection.
        None if sched.ejected_runs > 0 => "not run (ejected before)".into(),
        None => "-".into(),
    };
    if cell.median.is_some() && cell.ejected_runs > 0 {
        let _ = write!(s, " [{} run(s) ejected]", cell.ejected_runs);
    }
    s
}

/// Which way the figures are better, from their own direction: "Lower is better
/// except for jobs and round trips (higher is better) and CPU share (neither way)."
/// Only rows with a measured value count.
fn direction_note(rows: &[FigureRow]) -> String {
    let measures = |better: Better| {
        let mut out: Vec<&str> = Vec::new();
        let measured = |r: &&FigureRow| r.cells.iter().any(|c| c.median.is_some());
        for r in rows.iter().filter(measured).filter(|r| r.better == better) {
            let m = measure_of(&r.figure);
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    };
    let list = |items: &[&str]| match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let higher = measures(Better::Higher);
    let neither = measures(Better::Neither);
    let mut exceptions = Vec::new();
    if !higher.is_empty() {
        exceptions.push(format!("{} (higher is better)", list(&higher)));
    }
    if !neither.is_empty() {
        exceptions.push(format!("{} (neither way)", list(&neither)));
    }
    if exceptions.is_empty() {
        "Lower is better.".to_string()
    } else {
        format!("Lower is better except for {}.", exceptions.join(" and "))
    }
}

/// The benchmark's options as a Markdown list.
fn options_text(options: &serde_json::Value) -> String {
    let Some(map) = options.as_object() else {
        return format!("- {options}\n");
    };
    let mut out = String::new();
    for (key, value) in map {
        let text = match value {
            serde_json::Value::String(s) => format!("`{s}`"),
            other => other.to_string(),
        };
        let _ = writeln!(out, "- {key}: {text}");
    }
    out
}

/// The Markdown report.
pub fn render_markdown(raw: &Raw, summary: &Summary, chart: Option<&str>) -> String {
    let mut md = String::new();
    let m = &raw.meta;
    let _ = writeln!(md, "# schedkit benchmark\n");
    let _ = writeln!(
        md,
        "Kernel {} (HZ={}), {} CPUs, {}. Options:\n\n{}",
        m.kernel,
        m.hz.map_or("?".into(), |h| h.to_string()),
        m.cpus,
        if m.date.is_empty() {
            "date unknown"
        } else {
            &m.date
        },
        options_text(&m.options)
    );
    let _ = writeln!(
        md,
        "Medians over the runs during which the scheduler stayed attached; in brackets, \
         the ratio to {BASELINE} (the kernel's default). {}\n",
        direction_note(&summary.rows)
    );
    let mut header = String::from("| figure |");
    let mut rule = String::from("|---|");
    for s in &summary.schedulers {
        let _ = write!(header, " {} |", s.label);
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for row in &summary.rows {
        let _ = write!(md, "| {} / {} |", row.benchmark, row.figure);
        for (cell, s) in row.cells.iter().zip(&summary.schedulers) {
            let _ = write!(md, " {} |", cell_text(cell, row.unit, s));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "\n## The schedulers\n");
    if m.options.get("rounds").and_then(serde_json::Value::as_bool) == Some(true) {
        let rotated = m
            .options
            .get("rotated")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        let _ = writeln!(
            md,
            "Each round attached every scheduler in turn for one run of each benchmark{}. \
             Of the rounds, the slowest attach, the highest peak RSS and a failed detach \
             are shown.\n",
            if rotated {
                ", starting with the next scheduler each round"
            } else {
                ", in the same order every round"
            }
        );
    }
    let _ = writeln!(
        md,
        "| scheduler | command | root/ops | attached in | runs ok | runs unattached | runs failed | CPU time / wall time | page faults during runs | peak RSS | detach exit |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &summary.schedulers {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.label,
            if s.command.is_empty() {
                "(the kernel's default)".to_string()
            } else {
                format!("`{}`", s.command.rsplit('/').next().unwrap_or(&s.command))
            },
            if s.ops.is_empty() { "-" } else { &s.ops },
            s.attach_s
                .map_or("-".into(), |a| Unit::Nanos.format(a * 1e9)),
            s.ok_runs,
            s.ejected_runs,
            s.failed_runs,
            s.cpu_share.map_or("-".into(), |c| Unit::Percent.format(c)),
            s.faults.map_or("-".into(), |f| f.to_string()),
            s.peak_rss_kib
                .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            s.detach_rc.map_or("-".into(), |r| r.to_string()),
        );
    }
    for s in summary.schedulers.iter().filter(|s| !s.attached) {
        let _ = writeln!(md, "\n**{} failed to attach**: {}", s.label, s.error.trim());
    }
    for s in summary.schedulers.iter().filter(|s| s.ejected_runs > 0) {
        let _ = writeln!(
            md,
            "\n**{} was ejected** in {} run(s); those runs are left out of the medians.",
            s.label, s.ejected_runs
        );
    }
    if let Some(chart) = chart {
        let _ = writeln!(
            md,
            "\n## {CHART_SCENARIO}: the frame loop\n\n![deadline misses and lateness p99]({chart})"
        );
    }
    md
}

/// The chart's figures of one scheduler: (label, miss ratio, lateness p99 ms), None
/// where it has no measured median.
type ChartBar = (String, Option<f64>, Option<f64>);

/// The periodic group the chart shows, and its figures per scheduler.
fn chart_data(summary: &Summary) -> Option<(String, Vec<ChartBar>)> {
    let suffix = format!(": {}", measure::DEADLINE_MISSES);
    let miss = summary.rows.iter().find(|r| {
        r.benchmark == CHART_SCENARIO && r.figure.ends_with(&suffix) && r.unit == Unit::Percent
    })?;
    let group = miss.figure.strip_suffix(&suffix)?.to_string();
    let p99_name = figure_name(&group, measure::LATENESS_P99);
    let median = |figure: &str, label: &str| {
        summary
            .cell(CHART_SCENARIO, figure, label)
            .and_then(|c| c.median)
    };
    let data = summary
        .schedulers
        .iter()
        .map(|s| {
            (
                s.label.clone(),
                median(&miss.figure, &s.label),
                median(&p99_name, &s.label).map(|ns| ns / 1e6),
            )
        })
        .collect();
    Some((group, data))
}

fn bar_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    caption: &str,
    bars: &[(String, Option<f64>)],
    unit: &str,
) -> anyhow::Result<()> {
    let plot_err = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw the chart: {e}");
    let n = bars.len().max(1);
    let top = bars
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.3;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(14)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)
        .map_err(|e| plot_err(&e))?;
    let names: Vec<String> = bars.iter().map(|(s, _)| s.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * n + 1)
        .x_label_formatter(&|x: &f64| {
            // Labels sit at the bar centres, i + 0.5.
            let i = x - 0.5;
            if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
                names.get(i.round() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(unit)
        .draw()
        .map_err(|e| plot_err(&e))?;
    let palette = [
        RGBColor(110, 110, 110),
        RGBColor(70, 130, 200),
        RGBColor(220, 120, 40),
        RGBColor(60, 160, 90),
        RGBColor(160, 80, 170),
    ];
    for (i, (_, v)) in bars.iter().enumerate() {
        let x = i as f64;
        let color = palette[i % palette.len()];
        let text = match v {
            Some(v) => {
                chart
                    .draw_series([Rectangle::new(
                        [(x + 0.25, 0.0), (x + 0.75, *v)],
                        color.filled(),
                    )])
                    .map_err(|e| plot_err(&e))?;
                if unit == "%" {
                    format!("{v:.1}")
                } else {
                    format!("{v:.2}")
                }
            }
            None => "no data".to_string(),
        };
        let y = v.unwrap_or(0.0) + top * 0.04;
        chart
            .draw_series([Text::new(text, (x + 0.3, y), ("sans-serif", 13))])
            .map_err(|e| plot_err(&e))?;
    }
    Ok(())
}

/// The SVG chart, or None when the runs hold no game-while-building periodic group.
pub fn render_chart(summary: &Summary, title: &str) -> anyhow::Result<Option<String>> {
    let Some((group, data)) = chart_data(summary) else {
        return Ok(None);
    };
    let plot_err = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw the chart: {e}");
    let misses: Vec<(String, Option<f64>)> = data
        .iter()
        .map(|(s, m, _)| (s.clone(), m.map(|m| m * 100.0)))
        .collect();
    let p99: Vec<(String, Option<f64>)> = data.iter().map(|(s, _, p)| (s.clone(), *p)).collect();
    let width = 260 + 180 * data.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&e))?;
        let root = root
            .titled(
                &format!("{CHART_SCENARIO}, {group}: {title}"),
                ("sans-serif", 18),
            )
            .map_err(|e| plot_err(&e))?;
        let (left, right) = root.split_horizontally(width / 2);
        bar_panel(&left, "frame deadline-miss ratio (%)", &misses, "%")?;
        bar_panel(&right, "frame start lateness p99 (ms)", &p99, "ms")?;
        root.present().map_err(|e| plot_err(&e))?;
    }
    Ok(Some(svg))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn bench_report(args: BenchReportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.raw)
        .with_context(|| format!("cannot read {}", args.raw.display()))?;
    let raw: Raw = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a benchmark's raw.json (as scripts/bench-guest.sh writes it)",
            args.raw.display()
        )
    })?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let summary = summarize(&raw);
    let title = format!(
        "medians, {} CPUs, kernel {}",
        raw.meta.cpus, raw.meta.kernel
    );
    let chart = match render_chart(&summary, &title)? {
        Some(svg) => {
            write(&args.out.join("chart.svg"), &svg)?;
            Some("chart.svg")
        }
        None => None,
    };
    write(
        &args.out.join("report.md"),
        &render_markdown(&raw, &summary, chart),
    )?;
    let json = serde_json::to_string_pretty(&summary).context("cannot encode the summary")?;
    write(&args.out.join("medians.json"), &json)?;
    if summary.has_failures() {
        eprintln!(
            "schedkit bench-report: a scheduler failed to attach or was ejected: see {}",
            args.out.join("report.md").display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload_report(scheduler: &str, miss: f64, p99_ms: f64) -> serde_json::Value {
        serde_json::json!({
            "scenario": "game while building", "scheduler": scheduler,
            "duration_ns": 2_000_000_000u64, "nr_cpus": 2, "fairness": [],
            "groups": [{
                "name": "game", "kind": "periodic", "tasks": 1, "nice": 0,
                "task_cpu_ns": [1], "cpu_ns": 1, "cpu_share": 0.1,
                "periodic": {
                    "frames": 100, "deadline_misses": (miss * 100.0) as u64, "miss_ratio": miss,
                    "start_lateness": {"count": 100, "mean_ns": 1, "p50_ns": 1_000_000,
                        "p90_ns": 2_000_000, "p99_ns": (p99_ms * 1e6) as u64, "max_ns": 9_000_000}
                },
                "jobs": null, "pingpong": null
            }]
        })
    }

    fn run(sched: &str, _run: u32, status: &str, miss: f64, p99_ms: f64) -> RunEntry {
        RunEntry {
            scheduler: sched.into(),
            benchmark: CHART_SCENARIO.into(),
            kind: "workload".into(),
            status: status.into(),
            figures: Some(workload_report(sched, miss, p99_ms)),
            sched_cpu_s: (sched != BASELINE).then_some(0.5),
            sched_faults: (sched != BASELINE).then_some(0),
            wall_s: Some(2.0),
            trace_cost: None,
        }
    }

    /// A run of a benchmark other than a scenario, with its figures.
    fn of_kind(sched: &str, kind: &str, benchmark: &str, figures: serde_json::Value) -> RunEntry {
        RunEntry {
            kind: kind.into(),
            benchmark: benchmark.into(),
            figures: Some(figures),
            ..run(sched, 1, "ok", 0.0, 0.0)
        }
    }

    fn sched(label: &str, attached: bool) -> SchedulerEntry {
        SchedulerEntry {
            label: label.into(),
            command: String::new(),
            ops: String::new(),
            attached,
            attach_s: None,
            error: if attached { "" } else { "did not attach" }.into(),
            detach_rc: None,
            peak_rss_kib: attached.then_some(16 * 1024),
        }
    }

    fn raw(schedulers: Vec<SchedulerEntry>, runs: Vec<RunEntry>) -> Raw {
        Raw {
            meta: Meta {
                kernel: "7.2".into(),
                hz: Some(250),
                cpus: 2,
                date: String::new(),
                options: serde_json::json!({"runs": 3}),
            },
            schedulers,
            runs,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts_and_of_nothing() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratio_to_a_zero_baseline_is_undefined() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
    }

    #[test]
    fn medians_and_ratios_are_per_scheduler_over_its_runs() {
        let r = raw(
            vec![sched("eevdf", true), sched("fifo", true)],
            vec![
                run("eevdf", 1, "ok", 0.10, 4.0),
                run("eevdf", 2, "ok", 0.30, 8.0),
                run("eevdf", 3, "ok", 0.20, 6.0),
                run("fifo", 1, "ok", 0.05, 3.0),
                run("fifo", 2, "ok", 0.01, 1.0),
                run("fifo", 3, "ok", 0.02, 2.0),
            ],
        );
        let s = summarize(&r);
        let p99 = s
            .cell(CHART_SCENARIO, "game: lateness p99", "fifo")
            .unwrap();
        assert_eq!(p99.median, Some(2e6));
        assert_eq!(p99.ratio, Some(2.0 / 6.0));
        let base = s
            .cell(CHART_SCENARIO, "game: lateness p99", "eevdf")
            .unwrap();
        assert_eq!((base.median, base.ratio), (Some(6e6), None));
        let md = render_markdown(&r, &s, Some("chart.svg"));
        assert!(md.contains("| 2.00 ms (0.33x) |"), "{md}");
        assert!(md.contains("2.00% (0.10x)"), "{md}");
        assert!(!md.contains("ejected") && !s.has_failures());
        assert!(md.contains("![deadline misses and lateness p99](chart.svg)"));
        // A benchmark from before the rounds says nothing of them.
        assert!(!md.contains("Each round"), "{md}");
        let mut rounds = r;
        rounds.meta.options["rounds"] = serde_json::Value::Bool(true);
        let md = render_markdown(&rounds, &s, None);
        assert!(
            md.contains("Each round attached every scheduler in turn"),
            "{md}"
        );
        assert!(md.contains("in the same order every round"), "{md}");
        rounds.meta.options["rotated"] = serde_json::Value::Bool(true);
        let md = render_markdown(&rounds, &s, None);
        assert!(
            md.contains("starting with the next scheduler each round"),
            "{md}"
        );
        let fifo = &s.schedulers[1];
        assert_eq!(fifo.cpu_share, Some(0.25));
        assert_eq!(fifo.faults, Some(0));
    }

    #[test]
    fn ejected_runs_never_enter_a_median_and_are_reported() {
        let r = raw(
            vec![
                sched("eevdf", true),
                sched("fifo", true),
                sched("rustland", true),
            ],
            vec![
                run("eevdf", 1, "ok", 0.2, 6.0),
                // fifo: one good run, one measured after it was ejected (EEVDF's figures).
                run("fifo", 1, "ok", 0.01, 1.0),
                run("fifo", 2, "ejected", 0.2, 7.0),
                // rustland: ejected in its only run.
                run("rustland", 1, "ejected", 0.2, 7.0),
            ],
        );
        let s = summarize(&r);
        let name = "game: lateness p99";
        let fifo = s.cell(CHART_SCENARIO, name, "fifo").unwrap();
        assert_eq!((fifo.median, fifo.ejected_runs), (Some(1e6), 1));
        let rl = s.cell(CHART_SCENARIO, name, "rustland").unwrap();
        assert_eq!((rl.median, rl.ratio), (None, None));
        assert!(s.has_failures());
        let md = render_markdown(&r, &s, None);
        assert!(md.contains("1.00 ms (0.17x) [1 run(s) ejected]"), "{md}");
        assert!(md.contains("| ejected |"), "{md}");
        assert!(
            !md.contains("7.00 ms"),
            "an ejected run's figure was shown: {md}"
        );
        assert!(md.contains("**rustland was ejected** in 1 run(s)"), "{md}");
        // The chart shows no bar for a scheduler without a measured median.
        let (_, data) = chart_data(&s).unwrap();
        assert_eq!(data[2], ("rustland".to_string(), None, None));
        assert!(render_chart(&s, "test")
            .unwrap()
            .unwrap()
            .contains("no data"));
    }

    #[test]
    fn a_scheduler_that_did_not_attach_is_a_failure() {
        let r = raw(
            vec![sched("eevdf", true), sched("scx_x", false)],
            vec![run("eevdf", 1, "ok", 0.2, 6.0)],
        );
        let s = summarize(&r);
        assert!(s.has_failures());
        let md = render_markdown(&r, &s, None);
        assert!(md.contains("| not attached |"), "{md}");
        assert!(md.contains("**scx_x failed to attach**: did not attach"));
    }

    #[test]
    fn hackbench_and_cyclictest_figures_are_read() {
        let h = of_kind(
            "eevdf",
            "hackbench",
            "hackbench",
            serde_json::json!({"wall_s": 4.5}),
        );
        let c = of_kind(
            "eevdf",
            "cyclictest",
            "cyclictest",
            serde_json::json!({"avg_us": 650, "p99_us": 3000, "max_us": 6400}),
        );
        let figs: Vec<_> = run_figures(&h).into_iter().chain(run_figures(&c)).collect();
        assert_eq!(
            figs[0],
            Figure::new("wall time", Unit::Nanos, Better::Lower, 4.5e9)
        );
        assert_eq!(figs[2].name, "latency p99");
        assert_eq!(figs[2].value, 3e6);
        assert_eq!(figs[0].formatted(), "4.50 s");
        assert_eq!(figs[1].formatted(), "650 us");
        let p = of_kind(
            "eevdf",
            "pipe",
            "pipe",
            serde_json::json!({"usecs_per_op": 12.5}),
        );
        assert_eq!(
            run_figures(&p),
            vec![Figure::new(
                "time per op",
                Unit::Nanos,
                Better::Lower,
                12_500.0
            )]
        );
    }

    #[test]
    fn a_traced_run_adds_what_recording_cost() {
        let mut h = RunEntry {
            trace_cost: Some(0.0281),
            ..of_kind(
                "rustland",
                "hackbench",
                "hackbench+trace",
                serde_json::json!({"wall_s": 9.5}),
            )
        };
        let figs = run_figures(&h);
        assert_eq!(figs.len(), 2);
        assert_eq!(figs[0].name, "wall time");
        assert_eq!(
            figs[1],
            Figure::new("recording cost", Unit::Percent, Better::Lower, 0.0281)
        );
        assert_eq!(figs[1].formatted(), "2.81%");
        // A failed run has no figures, and no cost either.
        h.figures = None;
        assert!(run_figures(&h).is_empty());
        // Read from raw.json, where only traced runs have it.
        let r: RunEntry = serde_json::from_str(
            r#"{"scheduler":"eevdf","benchmark":"hackbench","kind":"hackbench","status":"ok",
                "figures":{"wall_s":4.0},"sched_cpu_s":null,"sched_faults":null,"wall_s":4.1}"#,
        )
        .unwrap();
        assert_eq!(r.trace_cost, None);
    }

    #[test]
    fn the_schedulers_table_shows_peak_rss() {
        let r = raw(
            vec![sched("eevdf", true)],
            vec![run("eevdf", 1, "ok", 0.5, 10.0)],
        );
        let md = render_markdown(&r, &summarize(&r), None);
        assert!(md.contains("| peak RSS |"), "{md}");
        assert!(md.contains("| 16.0 MiB |"), "{md}");
    }

    #[test]
    fn workload_rows_are_the_report_figures_in_order_and_read_like_compare() {
        let r = raw(
            vec![sched("eevdf", true), sched("fifo", true)],
            vec![
                run("eevdf", 1, "ok", 0.761, 61.7),
                run("fifo", 1, "ok", 0.0633, 15.2),
            ],
        );
        let report: Report = serde_json::from_value(workload_report("eevdf", 0.761, 61.7)).unwrap();
        let s = summarize(&r);
        let rows: Vec<(&str, Unit)> = s.rows.iter().map(|r| (r.figure.as_str(), r.unit)).collect();
        let figures = report.figures();
        let expected: Vec<(&str, Unit)> =
            figures.iter().map(|f| (f.name.as_str(), f.unit)).collect();
        assert_eq!(rows, expected);
        assert!(s.rows.iter().all(|r| r.benchmark == CHART_SCENARIO));
        let md = render_markdown(&r, &s, None);
        assert!(
            md.contains("| game-while-building / game: deadline misses | 76.1% | 6.33% (0.08x) |"),
            "{md}"
        );
        assert!(
            md.contains("| game-while-building / game: lateness p99 | 61.7 ms | 15.2 ms (0.25x) |"),
            "{md}"
        );
        assert!(
            md.contains("Lower is better except for CPU share (neither way)."),
            "{md}"
        );
    }

    #[test]
    fn direction_note_lists_the_measures_where_lower_is_not_better() {
        let row = |figure: &str, better: Better, measured: bool| FigureRow {
            benchmark: "b".into(),
            figure: figure.into(),
            unit: Unit::Count,
            better,
            cells: vec![Cell {
                median: measured.then_some(1.0),
                ok_runs: 1,
                ejected_runs: 0,
                ratio: None,
            }],
        };
        let rows = [
            row("game: lateness p99", Better::Lower, true),
            row("build: jobs", Better::Higher, true),
            row("ipc: round trips", Better::Higher, true),
            row("indexer: jobs", Better::Higher, true),
            row("cpu tasks at nice 0: fairness (Jain)", Better::Higher, true),
            row("game: CPU share", Better::Neither, true),
            row("(ejected before any figure)", Better::Neither, false),
        ];
        assert_eq!(
            direction_note(&rows),
            "Lower is better except for jobs, round trips and fairness (Jain) \
             (higher is better) and CPU share (neither way)."
        );
        assert_eq!(direction_note(&rows[..1]), "Lower is better.");
    }
}
