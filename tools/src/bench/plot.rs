//! The SVG plot of a [`Report`]. The first panel is the goal at a glance: pktmap POPULATE ÷ its
//! best peer by mapping size, one line per backing, against the 1.05× aim and the 1.2× goal.
//! Then ns per 4 KiB page by mapping size, one panel per backing, one line per mode, with the
//! middle half of the rounds (quartiles, cut at half and twice the median; min–max is in the
//! JSON and the Markdown) as a vertical bar at each point, each mode's bars offset sideways so they do not overlap. A min–max bar
//! ran off every panel at the small sizes, where one preempted round costs many times the
//! median. pktmap's POPULATE is the thick line marked ★; one legend above the panels names
//! every mode; lower is better.

use super::{size_name, Mode, Report};
use plotters::prelude::*;
use std::io;

const COLORS: [RGBColor; 8] = [
    RGBColor(0xd6, 0x27, 0x28), // pktmap POPULATE
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// The line width of a mode: pktmap's POPULATE stands out.
fn width(mode: Mode) -> u32 {
    if mode == Mode::Pktmap {
        4
    } else {
        2
    }
}

fn color(mode: Mode) -> RGBColor {
    let i = Mode::ALL.iter().position(|&m| m == mode).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

fn plot_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// 1-2-5 steps from 1 ns to 1 s that fall inside `lo..hi`.
fn y_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut decade = 1.0;
    while decade < 1e9 {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                v.push(t);
            }
        }
        decade *= 10.0;
    }
    v
}

/// Renders the report as an SVG document (log–log axes: bytes mapped, ns per 4 KiB page).
///
/// # Errors
/// A drawing error from plotters (as `io::ErrorKind::Other`).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_tools::bench::{plot, run, Backing, Schedule};
/// let plan = Schedule { groups: vec![(Backing::Existing, 4096), (Backing::Existing, 65536)],
///                   ..Schedule::quick() };
/// let svg = plot::svg(&run(&plan, &mut |_| {})?)?;
/// assert!(svg.starts_with("<svg") && svg.contains("MAP_POPULATE"));
/// # Ok(()) }
/// ```
pub fn svg(report: &Report) -> io::Result<String> {
    let mut out = String::new();
    {
        let backings: Vec<_> = super::Backing::ALL
            .into_iter()
            .filter(|&b| report.cells.iter().any(|c| c.backing == b))
            .collect();
        let cols = 2u32;
        // The ratio panel, then one per backing.
        let rows = (backings.len() as u32 + 1).div_ceil(cols).max(1);
        let modes = report.modes();
        let legend_rows = (modes.len() as u32).div_ceil(4).max(1);
        let legend_h = 12 + 22 * legend_rows;
        let root = SVGBackend::with_string(&mut out, (1100, 40 + legend_h + 380 * rows))
            .into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let title = format!(
            "pktmap bench: ns per 4 KiB page (map + touch), median and quartiles; lower is better — {}",
            report.machine.date
        );
        let root = root.titled(&title, ("sans-serif", 18)).map_err(plot_err)?;
        let (legend, root) = root.split_vertically(legend_h);
        for (i, &mode) in modes.iter().enumerate() {
            let (x, y) = (20 + 265 * (i as i32 % 4), 12 + 22 * (i as i32 / 4));
            let col = color(mode);
            legend
                .draw(&PathElement::new(
                    vec![(x, y), (x + 24, y)],
                    col.stroke_width(width(mode)),
                ))
                .map_err(plot_err)?;
            legend
                .draw(&Text::new(
                    mode.label(" "),
                    (x + 30, y - 7),
                    ("sans-serif", 13).into_font(),
                ))
                .map_err(plot_err)?;
        }
        let panels = root.split_evenly((rows as usize, cols as usize));
        let Some((ratio_panel, panels)) = panels.split_first() else {
            return Err(io::Error::other("no panel to draw on"));
        };
        ratio_chart(report, ratio_panel, &backings)?;
        for (panel, &backing) in panels.iter().zip(&backings) {
            let cells: Vec<_> = report
                .cells
                .iter()
                .filter(|c| c.backing == backing)
                .collect();
            let xmin = cells.iter().map(|c| c.len).min().unwrap_or(4096) as f64;
            let xmax = cells.iter().map(|c| c.len).max().unwrap_or(4096) as f64;
            // Bars are cut at half and twice the median (a quick run's 3 rounds make quartiles
            // of its extremes), so every bar stays inside the panel.
            let bar = |c: &super::Cell| {
                let m = c.ns_per_page.median;
                (c.ns_per_page.q1.max(m / 2.0), c.ns_per_page.q3.min(m * 2.0))
            };
            let ymin = cells
                .iter()
                .map(|c| bar(c).0)
                .fold(f64::INFINITY, f64::min)
                .max(1.0);
            let ymax = cells.iter().map(|c| bar(c).1).fold(1.0, f64::max) * 1.3;
            let mut sizes: Vec<f64> = cells.iter().map(|c| c.len as f64).collect();
            sizes.sort_by(f64::total_cmp);
            sizes.dedup();
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{} ({})", backing.name(), backing.describe()),
                    ("sans-serif", 14),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(80)
                .build_cartesian_2d(
                    ((xmin / 1.5)..(xmax * 1.5))
                        .log_scale()
                        .with_key_points(sizes),
                    ((ymin / 1.5)..ymax)
                        .log_scale()
                        .with_key_points(y_ticks(ymin / 1.5, ymax)),
                )
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("bytes mapped")
                .y_desc("ns per 4 KiB page")
                .x_label_formatter(&|x| size_name(*x as usize))
                .y_label_formatter(&|y| {
                    if *y >= 1000.0 {
                        format!("{} µs", (y / 100.0).round() / 10.0)
                    } else {
                        format!("{y:.0} ns")
                    }
                })
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(plot_err)?;
            let ylo = ymin / 1.5;
            for (k, &mode) in modes.iter().enumerate() {
                // Each mode's spread bars sit a little to the side of the size they measure
                // (a few percent on the log axis), so the modes' bars do not overlap.
                let shift = 1.035f64.powf(k as f64 - (modes.len() as f64 - 1.0) / 2.0);
                let mut pts: Vec<_> = cells.iter().filter(|c| c.mode == mode).collect();
                pts.sort_by_key(|c| c.len);
                if pts.is_empty() {
                    continue;
                }
                let col = color(mode);
                chart
                    .draw_series(LineSeries::new(
                        pts.iter()
                            .map(|c| (c.len as f64, c.ns_per_page.median.clamp(ylo, ymax))),
                        col.stroke_width(width(mode)),
                    ))
                    .map_err(plot_err)?;
                chart
                    .draw_series(pts.iter().map(|c| {
                        let y = c.ns_per_page.median.clamp(ylo, ymax);
                        Circle::new((c.len as f64, y), 3, col.filled())
                    }))
                    .map_err(plot_err)?;
                chart
                    .draw_series(pts.iter().map(|c| {
                        PathElement::new(
                            vec![
                                (c.len as f64 * shift, bar(c).0.clamp(ylo, ymax)),
                                (c.len as f64 * shift, bar(c).1.clamp(ylo, ymax)),
                            ],
                            col.mix(0.6).stroke_width(1),
                        )
                    }))
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(out)
}

/// The first panel: pktmap POPULATE ÷ its best peer ([`Report::vs_best_peer`]) by mapping size,
/// one line per backing, with the 1.05× aim and the 1.2× goal drawn across; below 1, pktmap is
/// the fastest way to a populated mapping.
fn ratio_chart<DB: DrawingBackend>(
    report: &Report,
    panel: &DrawingArea<DB, plotters::coord::Shift>,
    backings: &[super::Backing],
) -> io::Result<()>
where
    DB::ErrorType: 'static,
{
    let lines: Vec<(super::Backing, Vec<(f64, f64)>)> = backings
        .iter()
        .map(|&b| {
            let pts = report
                .groups()
                .into_iter()
                .filter(|(gb, _)| *gb == b)
                .filter_map(|(_, len)| report.vs_best_peer(b, len).map(|(r, _)| (len as f64, r)))
                .collect();
            (b, pts)
        })
        .collect();
    let all = || lines.iter().flat_map(|(_, p)| p.iter());
    let xmin = all().map(|p| p.0).fold(f64::INFINITY, f64::min).min(4096.0);
    let xmax = all().map(|p| p.0).fold(4096.0, f64::max);
    let ymin = all().map(|p| p.1).fold(0.8, f64::min) * 0.95;
    // Headroom above the lines for the legend.
    let ymax = all().map(|p| p.1).fold(1.25, f64::max) * 1.3;
    let mut sizes: Vec<f64> = all().map(|p| p.0).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut chart = ChartBuilder::on(panel)
        .caption(
            "pktmap POPULATE ÷ best peer (goal ≤ 1.2× from 2 MiB, aim 1.05×)",
            ("sans-serif", 14),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            ((xmin / 1.5)..(xmax * 1.5))
                .log_scale()
                .with_key_points(sizes),
            ymin..ymax,
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("bytes mapped")
        .y_desc("ratio ÷ best peer")
        .x_label_formatter(&|x| size_name(*x as usize))
        .y_label_formatter(&|y| format!("{y:.2}×"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    let (x0, x1) = (xmin / 1.5, xmax * 1.5);
    for (level, col, label) in [
        (1.0, BLACK.mix(0.5), "1× the best peer"),
        (1.05, RGBColor(0x2c, 0xa0, 0x2c).mix(0.8), "aim 1.05×"),
        (1.2, RGBColor(0xd6, 0x27, 0x28).mix(0.8), "goal 1.2×"),
    ] {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x0, level), (x1, level)],
                col.stroke_width(1),
            )))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(1)));
    }
    for (i, (backing, pts)) in lines.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let col = BACKING_COLORS[i % BACKING_COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(3)))
            .map_err(plot_err)?
            .label(backing.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// One colour per backing in the ratio panel.
const BACKING_COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0xe3, 0x77, 0xc2),
];

/// The packet report as an SVG bar chart: one bar per cell, its median delivered frames per
/// second, grouped by path, size and wait (hand-written SVG: bars and labels only).
///
/// # Examples
/// ```
/// use pktmap_tools::bench::packets::PacketReport;
/// let r = PacketReport {
///     machine: Default::default(),
///     source: "pktgen".into(),
///     frames: 0,
///     cells: vec![],
///     skipped: vec![],
///     elapsed: Default::default(),
///     lone: vec![],
/// };
/// assert!(pktmap_tools::bench::plot::packets_svg(&r).starts_with("<svg"));
/// ```
pub fn packets_svg(report: &super::packets::PacketReport) -> String {
    use std::fmt::Write as _;
    let mut cells: Vec<_> = report.cells.iter().collect();
    cells.sort_by_key(|c| (c.kind.path, c.size, c.wait, c.kind.mechanism));
    let max = cells
        .iter()
        .filter_map(|c| c.pps().map(|s| s.median))
        .fold(1.0f64, f64::max);
    let (row, left, width) = (22usize, 260usize, 520.0f64);
    let height = 40 + row * cells.len();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"8\" y=\"20\">delivered \
         frames per second (median), {}</text>\n",
        left + width as usize + 120,
        report.machine.summary().replace('&', "and")
    );
    for (i, c) in cells.iter().enumerate() {
        let pps = c.pps().map_or(0.0, |s| s.median);
        let y = 32 + i * row;
        let w = pps / max * width;
        let _ = writeln!(
            svg,
            "<text x=\"8\" y=\"{}\">{} {} {} {}</text><rect x=\"{left}\" y=\"{y}\" \
             width=\"{w:.1}\" height=\"{}\" fill=\"#4878a8\"/><text x=\"{:.1}\" y=\"{}\">{pps:.0}</text>",
            y + 14,
            c.kind.path.name(),
            c.size.label(),
            c.wait.name(),
            c.kind.mechanism.name(),
            row - 6,
            left as f64 + w + 6.0,
            y + 14
        );
    }
    svg += "</svg>\n";
    svg
}
