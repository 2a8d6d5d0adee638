//! An SVG picture of a comparison: for the scenario's latency-sensitive group (the
//! first `periodic` group, else the first `pingpong` group), p50, p99 and max of its
//! lateness per scheduler, and its deadline-miss ratio per scheduler.
//!
//! Drawn with plotters' SVG backend only (no fonts or bitmaps needed), so it builds
//! anywhere.

use plotters::prelude::*;

use crate::SimOutput;

/// What could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

/// The latency figures plotted for one run: (p50, p99, max) in ms and the miss ratio.
fn figures(run: &SimOutput) -> Option<(String, [f64; 3], Option<f64>)> {
    let ms = |ns: u64| ns as f64 / 1e6;
    if let Some(g) = run.report.groups.iter().find(|g| g.periodic.is_some()) {
        let p = g.periodic.as_ref()?;
        let l = &p.start_lateness;
        return Some((
            format!("{}: frame start lateness", g.name),
            [ms(l.p50_ns), ms(l.p99_ns), ms(l.max_ns)],
            Some(p.miss_ratio),
        ));
    }
    let g = run.report.groups.iter().find(|g| g.pingpong.is_some())?;
    let l = &g.pingpong.as_ref()?.latency;
    Some((
        format!("{}: round-trip latency", g.name),
        [ms(l.p50_ns), ms(l.p99_ns), ms(l.max_ns)],
        None,
    ))
}

/// The SVG text of the comparison of `runs` (all of one scenario).
pub fn comparison_svg(runs: &[SimOutput]) -> Result<String, PlotError> {
    let data: Vec<_> = runs
        .iter()
        .map(|r| figures(r).map(|f| (r.report.scheduler.clone(), f)))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            PlotError("the scenario has no periodic or pingpong group to plot".into())
        })?;
    let Some((_, (title, _, _))) = data.first() else {
        return Err(PlotError("nothing to plot".into()));
    };
    let title = title.clone();
    let has_misses = data.iter().all(|(_, (_, _, m))| m.is_some());
    let scenario = runs
        .first()
        .map(|r| r.report.scenario.clone())
        .unwrap_or_default();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root
            .titled(&format!("{scenario}: simulated"), ("sans-serif", 22))
            .map_err(err)?;
        let (top, bottom) = if has_misses {
            root.split_vertically(400)
        } else {
            (root.clone(), root.clone())
        };

        let n = data.len();
        let ymax = data
            .iter()
            .map(|(_, (_, v, _))| v[2])
            .fold(0.0f64, f64::max)
            .max(0.001)
            * 1.25;
        let mut chart = ChartBuilder::on(&top)
            .caption(format!("{title} (ms)"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
            .map_err(err)?;
        let names: Vec<String> = data.iter().map(|(s, _)| s.clone()).collect();
        let label_names = names.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1) * 2 + 1)
            .x_label_formatter(&move |x| {
                let i = (x - 0.5).round();
                if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < label_names.len() {
                    label_names[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()
            .map_err(err)?;
        let colors = [
            RGBColor(90, 160, 220),
            RGBColor(240, 160, 60),
            RGBColor(200, 60, 60),
        ];
        let labels = ["p50", "p99", "max"];
        for (k, (&color, label)) in colors.iter().zip(labels).enumerate() {
            let bars = data.iter().enumerate().map(move |(i, (_, (_, v, _)))| {
                let x0 = i as f64 + 0.15 + k as f64 * 0.23;
                Rectangle::new([(x0, 0.0), (x0 + 0.21, v[k])], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;

        if has_misses {
            let mmax = data
                .iter()
                .filter_map(|(_, (_, _, m))| *m)
                .fold(0.0f64, f64::max)
                .max(0.001)
                * 100.0
                * 1.35;
            let mut chart = ChartBuilder::on(&bottom)
                .caption("deadline-miss ratio (%)", ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..n as f64, 0.0..mmax)
                .map_err(err)?;
            let label_names = names.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n.max(1) * 2 + 1)
                .x_label_formatter(&move |x| {
                    let i = (x - 0.5).round();
                    if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < label_names.len() {
                        label_names[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc("%")
                .draw()
                .map_err(err)?;
            let color = RGBColor(120, 120, 200);
            chart
                .draw_series(data.iter().enumerate().map(|(i, (_, (_, _, m)))| {
                    let v = m.unwrap_or(0.0) * 100.0;
                    Rectangle::new([(i as f64 + 0.3, 0.0), (i as f64 + 0.7, v)], color.filled())
                }))
                .map_err(err)?;
            chart
                .draw_series(data.iter().enumerate().map(|(i, (_, (_, _, m)))| {
                    let v = m.unwrap_or(0.0) * 100.0;
                    Text::new(
                        format!("{v:.1}%"),
                        (i as f64 + 0.42, v + mmax * 0.16),
                        ("sans-serif", 13),
                    )
                }))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
