//! CPU lanes as an SVG picture: one horizontal lane per CPU, what ran on it drawn
//! as coloured rectangles along a time axis, with tooltips and a legend.
//!
//! Each lane is [`LANE_WIDTH`] pixel columns wide and drawn column by column: a
//! column takes the colour of the task that ran longest in it, with an opacity
//! that says how busy the CPU was during the column (in quarters, any activity
//! showing at least a quarter), and neighbouring columns of the same task and
//! opacity become one rectangle. A lane therefore has at most [`LANE_WIDTH`]
//! rectangles however long the trace: a minute of a busy 2-CPU machine (a million
//! slices) is a few hundred kilobytes. Slices wider than a column come out exact to
//! the pixel.
//!
//! Colours: a task's colour comes from a hash of its name's base (the name up to a
//! `/`, without trailing digits and separators, so `cc1` processes, `kworker/0:1`
//! and `kworker/u8:2` each share one colour); the scheduler's threads are black.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use crate::{CpuSlice, Pid};

/// Pixel columns of a lane: the finest time resolution of the picture, and the
/// most rectangles a lane can have.
pub const LANE_WIDTH: usize = 1200;
/// Lanes beyond this CPU count are not drawn (a corrupt CPU id must not make a
/// gigantic picture).
const MAX_LANES: u32 = 4096;
const LEFT: usize = 64;
const RIGHT: usize = 16;
const TOP: usize = 40;
const LANE_HEIGHT: usize = 16;
const LANE_GAP: usize = 4;
const AXIS_HEIGHT: usize = 32;
const LEGEND_ENTRIES: usize = 12;
const LEGEND_COLUMNS: usize = 3;
const LEGEND_ROW: usize = 16;
const SCHEDULER_COLOUR: &str = "#000000";

/// A thread as drawn: one per (pid, name, scheduler) in the window.
struct Task<'a> {
    pid: Pid,
    name: &'a str,
    scheduler: bool,
    group: usize,
}

/// Tasks sharing a colour: same base name (and scheduler flag).
struct Group<'a> {
    base: &'a str,
    first_name: &'a str,
    several_names: bool,
    tasks: u64,
    ns: u64,
    colour: String,
    scheduler: bool,
}

/// One task's time in one pixel column.
#[derive(Clone, Copy)]
struct Share {
    task: u32,
    ns: u64,
    /// When it first ran in the column.
    first: u64,
}

/// Consecutive columns drawn as one rectangle.
struct Run {
    c0: usize,
    c1: usize,
    task: u32,
    /// Busy quarters, 1..=4.
    level: u64,
    task_ns: u64,
    other_ns: u64,
    first: u64,
}

/// The part of a name tasks of one kind share: up to the first `/`, without
/// trailing digits and separators (`cc1` → `cc`, `kworker/0:1` → `kworker`,
/// `python3.12` → `python`). The whole name when that leaves nothing.
pub fn base_name(name: &str) -> &str {
    let head = name.split('/').next().unwrap_or(name);
    let base = head.trim_end_matches(|c: char| c.is_ascii_digit() || "-_:.#".contains(c));
    if !base.is_empty() {
        base
    } else if !head.is_empty() {
        head
    } else {
        name
    }
}

/// A stable colour (`#rrggbb`) for a base name: FNV-1a hash to hue, saturation and
/// lightness, never dark enough to be taken for the scheduler's black.
fn colour(base: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in base.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let hue = (hash % 360) as f64;
    let saturation = 0.45 + ((hash >> 16) % 35) as f64 / 100.0;
    let lightness = 0.45 + ((hash >> 32) % 25) as f64 / 100.0;
    let (r, g, b) = hsl_to_rgb(hue, saturation, lightness);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn hsl_to_rgb(hue: f64, saturation: f64, lightness: f64) -> (u8, u8, u8) {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue / 60.0;
    let x = chroma * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = lightness - chroma / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (byte(r), byte(g), byte(b))
}

/// `text` made safe for XML text and attribute values (control characters, which
/// XML forbids, become `?`).
fn escape(text: &str) -> Cow<'_, str> {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'') || is_forbidden(c);
    if !text.contains(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_forbidden(c) => out.push('?'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\t' | '\r')
}

/// A coordinate: an integer when it is one, else two decimals.
fn coord(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

/// A duration for a tooltip or the legend.
fn human_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.3} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.3} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// The step between ticks: 1, 2 or 5 × 10ⁿ ns, about ten ticks over `span`.
fn tick_step(span: u64) -> u64 {
    let raw = (span / 10).max(1);
    let mut magnitude = 1u64;
    while magnitude <= raw / 10 {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10 * magnitude)
}

/// A tick's label: `value` ns in the unit that suits `step`, with as many decimals
/// as the step needs (`0.5 s`, `20 ms`, `150 µs`).
fn tick_label(value: u64, step: u64) -> String {
    let (unit, name, unit_exp) = if step >= 100_000_000 {
        (1e9, "s", 9usize)
    } else if step >= 100_000 {
        (1e6, "ms", 6)
    } else if step >= 100 {
        (1e3, "µs", 3)
    } else {
        (1.0, "ns", 0)
    };
    let step_exp = step.max(1).ilog10() as usize;
    let decimals = unit_exp.saturating_sub(step_exp);
    format!("{:.*} {}", decimals, value as f64 / unit, name)
}

/// The columns of a window: `ncols` columns over `[from, to)`.
struct Columns {
    from: u64,
    span: u64,
    ncols: usize,
}

impl Columns {
    /// Start of column `c` (`c == ncols` gives the window's end).
    fn bound(&self, c: usize) -> u64 {
        self.from + (u128::from(self.span) * c as u128 / self.ncols as u128) as u64
    }

    /// The column holding time `t` (in the window), give or take one.
    fn of(&self, t: u64) -> usize {
        let c = u128::from(t - self.from) * self.ncols as u128 / u128::from(self.span);
        (c as usize).min(self.ncols - 1)
    }
}

/// Draws `slices` as CPU lanes into an SVG document written to `out`.
///
/// The lanes are CPUs `0..nr_cpus` (more if a slice names a higher CPU). The window
/// is `[from_ns, to_ns]`, each end defaulting to the slices' extent; slices are
/// clipped to it and slices of pid 0 (idle) are ignored. Axis labels are times
/// since the earliest slice (or `from_ns`, if earlier). When nothing ran in the
/// window the picture has empty lanes saying "no activity". `title` heads the
/// picture.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] when both ends are given and `from_ns >= to_ns`;
/// otherwise the errors of writing to `out`.
pub fn write_svg<W: Write>(
    out: W,
    nr_cpus: u32,
    slices: &[CpuSlice],
    from_ns: Option<u64>,
    to_ns: Option<u64>,
    title: &str,
) -> io::Result<()> {
    if let (Some(from), Some(to)) = (from_ns, to_ns) {
        if from >= to {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the timeline's window must start before it ends (from {from} ns, to {to} ns)"
                ),
            ));
        }
    }
    let highest = slices
        .iter()
        .filter(|s| s.cpu < MAX_LANES)
        .map(|s| s.cpu + 1)
        .max()
        .unwrap_or(0);
    let lanes = nr_cpus.min(MAX_LANES).max(highest).max(1) as usize;
    let drawable = |s: &&CpuSlice| s.pid != 0 && s.end_ns > s.start_ns && (s.cpu as usize) < lanes;

    let first = slices.iter().filter(drawable).map(|s| s.start_ns).min();
    let last = slices.iter().filter(drawable).map(|s| s.end_ns).max();
    let from = from_ns.or(first);
    let to = to_ns.or(last);
    let origin = match (first, from) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0),
    };
    let window = match (from, to) {
        (Some(from), Some(to)) if from < to => Some(Columns {
            from,
            span: to - from,
            ncols: (to - from).min(LANE_WIDTH as u64) as usize,
        }),
        _ => None,
    };

    let (tasks, groups, runs) = match &window {
        Some(cols) => layout(cols, lanes, slices.iter().filter(drawable)),
        None => (
            Vec::new(),
            Vec::new(),
            (0..lanes).map(|_| Vec::new()).collect(),
        ),
    };

    let mut out = BufWriter::new(out);
    let plot_width = LANE_WIDTH;
    let width = LEFT + plot_width + RIGHT;
    let lanes_height = lanes * (LANE_HEIGHT + LANE_GAP);
    let mut legend: Vec<&Group> = groups.iter().filter(|g| g.ns > 0).collect();
    legend.sort_by(|a, b| b.ns.cmp(&a.ns).then(a.base.cmp(b.base)));
    legend.truncate(LEGEND_ENTRIES);
    let legend_rows = legend.len().div_ceil(LEGEND_COLUMNS);
    let legend_top = TOP + lanes_height + AXIS_HEIGHT;
    let height = legend_top
        + if legend.is_empty() {
            0
        } else {
            24 + legend_rows * LEGEND_ROW
        }
        + 8;

    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    )?;
    let title = escape(title);
    writeln!(out, "<title>{title}</title>")?;
    writeln!(
        out,
        r##"<rect class="background" width="{width}" height="{height}" fill="#ffffff"/>"##
    )?;
    writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{title}</text>"#
    )?;

    // Lane backgrounds and labels.
    writeln!(out, r#"<g class="lane-backgrounds">"#)?;
    for lane in 0..lanes {
        let y = TOP + lane * (LANE_HEIGHT + LANE_GAP);
        writeln!(
            out,
            r##"<rect x="{LEFT}" y="{y}" width="{plot_width}" height="{LANE_HEIGHT}" fill="#f0f0f0"/><text x="{}" y="{}" text-anchor="end">cpu {lane}</text>"##,
            LEFT - 6,
            y + LANE_HEIGHT - 4
        )?;
    }
    writeln!(out, "</g>")?;

    // Ticks: grid lines behind the lanes, labels below.
    let axis_y = TOP + lanes_height;
    let mut ticks = Vec::new();
    if let Some(cols) = &window {
        let step = tick_step(cols.span);
        let mut t = origin + (cols.from - origin).div_ceil(step) * step;
        while t <= cols.from + cols.span {
            let x = LEFT as f64 + (t - cols.from) as f64 / cols.span as f64 * plot_width as f64;
            ticks.push((coord(x), tick_label(t - origin, step)));
            t += step;
        }
    }
    writeln!(
        out,
        r##"<g class="grid" stroke="#d8d8d8" stroke-width="1">"##
    )?;
    for (x, _) in &ticks {
        writeln!(out, r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{axis_y}"/>"#)?;
    }
    writeln!(out, "</g>")?;

    // The lanes: only the slices' rectangles in each group.
    let mut tip = String::new();
    for (lane, lane_runs) in runs.iter().enumerate() {
        let y = TOP + lane * (LANE_HEIGHT + LANE_GAP);
        writeln!(
            out,
            r#"<g class="lane" id="cpu{lane}" transform="translate({LEFT},{y})">"#
        )?;
        let Some(cols) = &window else {
            writeln!(out, "</g>")?;
            continue;
        };
        let px = plot_width as f64 / cols.ncols as f64;
        for run in lane_runs {
            let task = &tasks[run.task as usize];
            let group = &groups[task.group];
            tip.clear();
            tip.push_str(task.name);
            tip.push_str(&format!(" (pid {})", task.pid));
            if task.scheduler {
                tip.push_str(" [scheduler]");
            }
            tip.push_str(&format!(
                "\nstart {:.6} s, ran {}",
                (run.first - origin) as f64 / 1e9,
                human_ns(run.task_ns)
            ));
            if run.other_ns > 0 {
                tip.push_str(&format!(
                    "\nother tasks ran {} in this stretch",
                    human_ns(run.other_ns)
                ));
            }
            let opacity = if run.level < 4 {
                format!(r#" fill-opacity="{}""#, run.level as f64 / 4.0)
            } else {
                String::new()
            };
            writeln!(
                out,
                r#"<rect x="{}" y="0" width="{}" height="{LANE_HEIGHT}" fill="{}"{opacity}><title>{}</title></rect>"#,
                coord(run.c0 as f64 * px),
                coord((run.c1 - run.c0) as f64 * px),
                group.colour,
                escape(&tip)
            )?;
        }
        writeln!(out, "</g>")?;
    }
    if window.is_none() || runs.iter().all(Vec::is_empty) {
        writeln!(
            out,
            r##"<text class="no-activity" x="{}" y="{}" text-anchor="middle" font-size="14" fill="#555555">no activity</text>"##,
            LEFT + plot_width / 2,
            TOP + lanes_height / 2 + 5
        )?;
    }

    // The axis.
    writeln!(out, r##"<g class="axis" stroke="#000000">"##)?;
    writeln!(
        out,
        r#"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}"/>"#,
        LEFT + plot_width
    )?;
    for (x, label) in &ticks {
        writeln!(
            out,
            r#"<line x1="{x}" y1="{axis_y}" x2="{x}" y2="{}"/><text x="{x}" y="{}" text-anchor="middle" stroke="none">{label}</text>"#,
            axis_y + 4,
            axis_y + 16
        )?;
    }
    writeln!(out, "</g>")?;

    // The legend: the groups that ran longest in the window.
    if !legend.is_empty() {
        let cpu_time = window.as_ref().map_or(0, |c| c.span) as f64 * lanes as f64;
        writeln!(out, r#"<g class="legend">"#)?;
        writeln!(
            out,
            r#"<text x="{LEFT}" y="{}">tasks that ran longest in the window (share of all CPUs' time)</text>"#,
            legend_top + 10
        )?;
        let column_width = (plot_width + LEFT) / LEGEND_COLUMNS;
        for (n, group) in legend.iter().enumerate() {
            let x = LEFT + (n % LEGEND_COLUMNS) * column_width;
            let y = legend_top + 20 + (n / LEGEND_COLUMNS) * LEGEND_ROW;
            let mut label = if group.several_names {
                format!("{}*", group.base)
            } else {
                group.first_name.to_string()
            };
            if label.chars().count() > 24 {
                label = label.chars().take(23).chain(['…']).collect();
            }
            if group.tasks > 1 {
                label.push_str(&format!(" ({} threads)", group.tasks));
            }
            if group.scheduler {
                label.push_str(" [scheduler]");
            }
            writeln!(
                out,
                r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{} {} ({:.1}%)</text>"#,
                group.colour,
                x + 14,
                y + 9,
                escape(&label),
                human_ns(group.ns),
                group.ns as f64 / cpu_time * 100.0
            )?;
        }
        writeln!(out, "</g>")?;
    }
    writeln!(out, "</svg>")?;
    out.flush()
}

/// Puts the slices into the window's pixel columns and merges the columns into
/// runs, lane by lane.
fn layout<'a>(
    cols: &Columns,
    lanes: usize,
    slices: impl Iterator<Item = &'a CpuSlice>,
) -> (Vec<Task<'a>>, Vec<Group<'a>>, Vec<Vec<Run>>) {
    let mut tasks: Vec<Task> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut task_of: HashMap<(Pid, &str, bool), u32> = HashMap::new();
    let mut group_of: HashMap<(&str, bool), usize> = HashMap::new();
    let mut cells: Vec<Vec<Share>> = vec![Vec::new(); lanes * cols.ncols];
    let end = cols.from + cols.span;
    // The last slice's task, per lane: consecutive slices of one thread are common.
    let mut last: Vec<Option<(Pid, &str, bool, u32)>> = vec![None; lanes];

    for s in slices {
        let start = s.start_ns.max(cols.from);
        let stop = s.end_ns.min(end);
        if stop <= start {
            continue;
        }
        let lane = s.cpu as usize;
        let task = match last[lane] {
            Some((pid, name, scheduler, task))
                if pid == s.pid && scheduler == s.scheduler && name == s.name =>
            {
                task
            }
            _ => {
                let key = (s.pid, s.name.as_str(), s.scheduler);
                let task = *task_of.entry(key).or_insert_with(|| {
                    let base = base_name(&s.name);
                    let group = *group_of.entry((base, s.scheduler)).or_insert_with(|| {
                        groups.push(Group {
                            base,
                            first_name: &s.name,
                            several_names: false,
                            tasks: 0,
                            ns: 0,
                            colour: if s.scheduler {
                                SCHEDULER_COLOUR.to_string()
                            } else {
                                colour(base)
                            },
                            scheduler: s.scheduler,
                        });
                        groups.len() - 1
                    });
                    let g = &mut groups[group];
                    g.tasks += 1;
                    g.several_names |= g.first_name != s.name;
                    tasks.push(Task {
                        pid: s.pid,
                        name: &s.name,
                        scheduler: s.scheduler,
                        group,
                    });
                    (tasks.len() - 1) as u32
                });
                last[lane] = Some((s.pid, &s.name, s.scheduler, task));
                task
            }
        };
        groups[tasks[task as usize].group].ns += stop - start;

        let first_col = cols.of(start);
        let last_col = (cols.of(stop - 1) + 1).min(cols.ncols - 1);
        for c in first_col..=last_col {
            let (lo, hi) = (cols.bound(c), cols.bound(c + 1));
            let (a, b) = (start.max(lo), stop.min(hi));
            if b <= a {
                continue;
            }
            let cell = &mut cells[lane * cols.ncols + c];
            match cell.iter_mut().find(|share| share.task == task) {
                Some(share) => {
                    share.ns += b - a;
                    share.first = share.first.min(a);
                }
                None => cell.push(Share {
                    task,
                    ns: b - a,
                    first: a,
                }),
            }
        }
    }

    let mut runs: Vec<Vec<Run>> = (0..lanes).map(|_| Vec::new()).collect();
    for (lane, lane_runs) in runs.iter_mut().enumerate() {
        let mut current: Option<Run> = None;
        for c in 0..cols.ncols {
            let cell = &cells[lane * cols.ncols + c];
            let Some(top) = cell
                .iter()
                .copied()
                .reduce(|best, s| if s.ns > best.ns { s } else { best })
            else {
                lane_runs.extend(current.take());
                continue;
            };
            let busy: u64 = cell.iter().map(|s| s.ns).sum();
            let width = (cols.bound(c + 1) - cols.bound(c)).max(1);
            let level = busy.saturating_mul(4).div_ceil(width).clamp(1, 4);
            match &mut current {
                Some(run) if run.task == top.task && run.level == level && run.c1 == c => {
                    run.c1 = c + 1;
                    run.task_ns += top.ns;
                    run.other_ns += busy - top.ns;
                }
                _ => {
                    lane_runs.extend(current.take());
                    current = Some(Run {
                        c0: c,
                        c1: c + 1,
                        task: top.task,
                        level,
                        task_ns: top.ns,
                        other_ns: busy - top.ns,
                        first: top.first,
                    });
                }
            }
        }
        lane_runs.extend(current);
    }
    (tasks, groups, runs)
}
