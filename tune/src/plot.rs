//! The `--plot` SVG: throughput (top panel) and hit ratio (bottom) against the shard count on
//! a log2 axis, one series per pending-callback cap, with the recommendation's thresholds drawn
//! and the recommended counts circled.

use crate::cli::{Args, Workload};
use crate::measure::Row;
use crate::recommend::{MAX_HIT_RATIO_LOSS, THROUGHPUT_TOLERANCE};
use crate::report::grouped;
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

/// Creates the file the plot goes to (empty, with its folder), so that a path that cannot be
/// written is refused before the measurements rather than after them.
pub fn create(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
    .and_then(|()| std::fs::File::create(path).map(drop))
}

/// Colours of the plotted series, one per cap.
const SERIES_COLORS: [(u8, u8, u8); 4] =
    [(31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189)];

/// A plotted line: its name, colour and points.
type Series = (String, RGBColor, Vec<(f64, f64)>);

/// One panel of the plot: a y axis, the series to draw on it (name, colour, points), a
/// threshold line, and the recommended points to circle.
struct Panel {
    y_desc: &'static str,
    y_range: std::ops::Range<f64>,
    series: Vec<Series>,
    threshold: (String, f64),
    recommended: Vec<(f64, f64)>,
    legend: SeriesLabelPosition,
}

/// Draws throughput (top) and hit ratio (bottom) against the shard count, on a log2 axis.
pub fn plot(
    path: &Path,
    args: &Args,
    busy: bool,
    groups: &[Vec<&Row>],
    recommended: &[Option<usize>],
) -> Result<(), Box<dyn Error>> {
    let x = |row: &Row| f64::from(row.config.shards.trailing_zeros());
    // Only sweeps of shard counts are drawn, each with its recommendation.
    let (groups, recommended): (Vec<&Vec<&Row>>, Vec<Option<usize>>) =
        groups.iter().zip(recommended).filter(|(g, _)| g.len() > 1).unzip();
    let rows = || groups.iter().flat_map(|g| g.iter());
    let throughput = |r: &Row| r.rated_throughput(busy) / 1e6;
    let best = rows().map(|r| throughput(r)).fold(0.0, f64::max);
    let hit_ratios = || rows().map(|r| r.hit_ratio() * 100.0);
    let (hr_min, hr_max) = (hit_ratios().fold(100.0, f64::min), hit_ratios().fold(0.0, f64::max));
    let hr_pad = (hr_max - hr_min).max(MAX_HIT_RATIO_LOSS) * 0.5 + MAX_HIT_RATIO_LOSS;
    let baseline =
        |g: &[&Row]| g.iter().min_by_key(|r| r.config.shards).map_or(0.0, |r| r.hit_ratio());
    let series_name = |g: &[&Row]| match g[0].config.max_pending {
        None => "measured".to_owned(),
        Some(cap) => format!("max_pending_callbacks({cap})"),
    };
    let color = |i: usize| {
        let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
        RGBColor(r, g, b)
    };
    let chosen: Vec<&Row> = groups
        .iter()
        .zip(&recommended)
        .filter_map(|(g, shards)| g.iter().find(|r| Some(r.config.shards) == *shards).copied())
        .collect();
    let first_baseline = groups.first().map_or(0.0, |g| baseline(g)) * 100.0;
    let baseline_shards = rows().map(|r| r.config.shards).min().unwrap_or(1);

    let throughput = Panel {
        y_desc: if busy { "estimated throughput, M ops/s" } else { "throughput, M ops/s" },
        y_range: 0.0..best * 1.15,
        series: groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (series_name(g), color(i), g.iter().map(|r| (x(r), throughput(r))).collect())
            })
            .collect(),
        threshold: (
            format!("{:.0} % below the best", THROUGHPUT_TOLERANCE * 100.0),
            best * (1.0 - THROUGHPUT_TOLERANCE),
        ),
        recommended: chosen.iter().map(|r| (x(r), throughput(r))).collect(),
        legend: SeriesLabelPosition::LowerRight,
    };
    let hit_ratio = Panel {
        y_desc: "hit ratio, %",
        y_range: (hr_min - hr_pad)..(hr_max + hr_pad),
        series: groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    series_name(g),
                    color(i),
                    g.iter().map(|r| (x(r), r.hit_ratio() * 100.0)).collect(),
                )
            })
            .collect(),
        threshold: (
            format!("{MAX_HIT_RATIO_LOSS} points below {baseline_shards} shard(s)"),
            first_baseline - MAX_HIT_RATIO_LOSS,
        ),
        recommended: chosen.iter().map(|r| (x(r), r.hit_ratio() * 100.0)).collect(),
        legend: SeriesLabelPosition::LowerLeft,
    };

    let title = match &args.workload {
        Workload::Synthetic { keys, zipf, read_ratio, .. } => format!(
            "{} threads, capacity {}, Zipf {zipf} over {} keys, {:.0} % gets, callback {} µs",
            args.threads,
            grouped(args.capacity as u64, ','),
            grouped(*keys, ','),
            read_ratio * 100.0,
            args.callback_us,
        ),
        Workload::Trace(path) => format!(
            "{} threads, capacity {}, trace {}",
            args.threads,
            grouped(args.capacity as u64, ','),
            path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
    };
    let x_max = rows().map(|r| x(r)).fold(0.0, f64::max);
    let root = SVGBackend::new(path, (800, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&title, ("sans-serif", 16))?;
    let busiest = rows().filter_map(|r| r.cpu_wait()).fold(0.0, f64::max);
    let root = if busy {
        let warning = format!(
            "busy machine: the workers waited for a core up to {:.0} % of the time; \
             contention is understated; throughput estimated from time on a core",
            busiest * 100.0
        );
        root.titled(&warning, ("sans-serif", 13).into_font().color(&RED))?
    } else {
        root
    };
    let (top, bottom) = root.split_vertically(300);
    for (area, panel) in [(&top, throughput), (&bottom, hit_ratio)] {
        draw_panel(area, panel, x_max)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: Panel,
    x_max: f64,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let x_range = -0.3..x_max + 0.3;
    let gray = RGBColor(110, 110, 110);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), panel.y_range)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| {
            let whole = (x - x.round()).abs() < 1e-6 && *x >= 0.0;
            if whole { (1u64 << x.round() as u32).to_string() } else { String::new() }
        })
        .x_desc("shards (log scale)")
        .y_desc(panel.y_desc)
        .draw()?;
    let (label, y) = panel.threshold;
    chart
        .draw_series(LineSeries::new([(x_range.start, y), (x_range.end, y)], gray.stroke_width(1)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], gray));
    for (name, color, points) in panel.series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    if !panel.recommended.is_empty() {
        chart
            .draw_series(panel.recommended.iter().map(|&p| Circle::new(p, 9, RED.stroke_width(2))))?
            .label("recommended")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(panel.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
