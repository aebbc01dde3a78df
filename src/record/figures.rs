//! PNG figures of a run for people to look at: accuracy and occlusion-robustness curves, PCA
//! scatters of latents, and per-state loss curves.
//!
//! PAD equivalent: the reference draws its per-epoch losses with matplotlib (`save_fig_losses`).
//! Here every figure is a PNG drawn with `plotters` into an RGB buffer, encoded with `png`, and
//! written under a temporary name in the same directory, then renamed into place, like the image
//! grids.
//!
//! Conventions shared by all figures:
//! - white background, light grid, the ten colours of [`PALETTE`] in the same order everywhere
//!   (series `i` and class `i` get `PALETTE[i % 10]`; past ten series the marker shape changes);
//! - text is DejaVu Sans, embedded in the library (`assets/fonts/DejaVuSans.ttf`) and rendered by
//!   `ab_glyph`, so figures look the same on a machine without any system font;
//! - non-finite values (NaN, ±inf) are skipped: a line is broken where a value is missing, and a
//!   figure with nothing to draw still gets its axes, title and a "no data" note;
//! - lines and markers are clipped to the plotting area, so a fixed `y_range` hides what lies
//!   outside it instead of squashing it onto the border.

use super::error::{RecordError, Result};
use super::write_atomically;
use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::error::Error;
use std::path::Path;
use std::sync::OnceLock;

/// Size in pixels (width, height) of every single-panel figure.
pub const FIGURE_SIZE: (u32, u32) = (900, 600);
/// Size in pixels of one panel of [`loss_curves`]; the figure has at least three side by side.
pub const LOSS_PANEL_SIZE: (u32, u32) = (500, 450);
/// The colours of series and classes, in order: matplotlib's "tab10", ten mid-tone hues that
/// stay distinguishable on white and that readers of matplotlib figures already know.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],  // blue
    [255, 127, 14],  // orange
    [44, 160, 44],   // green
    [214, 39, 40],   // red
    [148, 103, 189], // purple
    [140, 86, 75],   // brown
    [227, 119, 194], // pink
    [127, 127, 127], // grey
    [188, 189, 34],  // olive
    [23, 190, 207],  // cyan
];

/// The brain states of [`loss_curves`], in panel order; other states follow in order of appearance.
const STATE_ORDER: [&str; 3] = ["wake", "nrem", "rem"];

/// The family name the embedded font is registered under (plotters' default family).
const FONT: &str = "sans-serif";
/// DejaVu Sans 2.37 (see `assets/fonts/LICENSE-DejaVu`).
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
const TEXT: RGBColor = RGBColor(34, 34, 34);
const AXIS: RGBColor = RGBColor(96, 96, 96);
const GRID_BOLD: RGBColor = RGBColor(222, 222, 222);
const GRID_LIGHT: RGBColor = RGBColor(240, 240, 240);
const REFERENCE: RGBColor = RGBColor(90, 90, 90);
const MUTED: RGBColor = RGBColor(150, 150, 150);

const TITLE_SIZE: f64 = 26.0;
const PANEL_TITLE_SIZE: f64 = 22.0;
const AXIS_LABEL_SIZE: f64 = 19.0;
const TICK_SIZE: f64 = 16.0;
const LEGEND_SIZE: f64 = 16.0;

/// Series up to this many points get markers; denser ones are drawn as lines only.
const MAX_MARKED_POINTS: usize = 120;

/// A named curve: `(x, y)` points drawn in the given order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// Line plot with markers, a legend (right of the plot), axis labels and a title. The y range
/// covers the data with a margin, or is `y_range = (low, high)` if given (points outside are
/// clipped away). The x range always covers the data.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
) -> Result<()> {
    let y_range = checked_range(path, y_range)?;
    let spec = LineFigure {
        title,
        x_label,
        y_label,
        lines: lines_from_series(series, 1.0),
        x_range: None,
        y_range,
        reference: None,
        y_limits: None,
    };
    render(path, FIGURE_SIZE, |root| draw_line_figure(root, &spec))
}

/// Accuracy against epoch: series values are fractions in [0, 1], drawn in percent, with a
/// dashed horizontal line at chance level (1/`classes`; none if `classes = 0`). The y range
/// covers the data and the chance line, within 0–100% (plus a small margin).
pub fn accuracy_plot(path: &Path, title: &str, series: &[Series], classes: usize) -> Result<()> {
    accuracy_figure(path, title, lines_from_series(series, 100.0), classes)
}

/// Occlusion robustness: accuracy (fractions, drawn in percent) against the occlusion
/// probability p in [0, 1], one curve per series (an epoch, a condition, ...), with the chance
/// line at 1/`classes` (none if `classes = 0`). The x axis always spans [0, 1]; the y range is
/// chosen as in [`accuracy_plot`].
pub fn occlusion_plot(path: &Path, title: &str, series: &[Series], classes: usize) -> Result<()> {
    occlusion_figure(path, title, lines_from_series(series, 100.0), classes)
}

/// PCA scatter of latents: `clean[i]` is a point of class `labels[i]`, coloured by class
/// (`PALETTE[class % 10]`) and drawn as a filled circle. `occluded`, if given, holds the same
/// images' latents under occlusion (same order and labels), drawn as hollow circles of the class
/// colour. The legend lists the classes present, named by `class_names[class]` ("class k" when
/// the list is too short), and which marker is clean and which occluded.
///
/// Fails (without writing) if `labels` or `occluded` do not have one entry per clean point.
pub fn pca_scatter(
    path: &Path,
    title: &str,
    clean: &[(f64, f64)],
    labels: &[u8],
    occluded: Option<&[(f64, f64)]>,
    class_names: &[String],
) -> Result<()> {
    let operation = "drawing PCA scatter";
    if labels.len() != clean.len() {
        return Err(RecordError::invalid(
            path,
            operation,
            format!("{} labels for {} points", labels.len(), clean.len()),
        ));
    }
    if let Some(occluded) = occluded {
        if occluded.len() != clean.len() {
            return Err(RecordError::invalid(
                path,
                operation,
                format!(
                    "{} occluded points for {} clean points",
                    occluded.len(),
                    clean.len()
                ),
            ));
        }
    }
    render(path, FIGURE_SIZE, |root| {
        draw_pca(root, title, clean, labels, occluded, class_names)
    })
}

/// Loss curves, one panel per brain state (wake, NREM, REM, then any other state in order of
/// appearance; a panel without terms says so), each with its terms against epoch. `losses` holds
/// `(state, term, value per epoch)`; value `i` is drawn at epoch `i + 1`. The figure is
/// [`LOSS_PANEL_SIZE`] per panel, side by side.
pub fn loss_curves(path: &Path, title: &str, losses: &[(String, String, Vec<f64>)]) -> Result<()> {
    let mut states: Vec<&str> = STATE_ORDER.to_vec();
    for (state, _, _) in losses {
        if !states.contains(&state.as_str()) {
            states.push(state);
        }
    }
    let (panel_width, height) = LOSS_PANEL_SIZE;
    let width = u32::try_from(states.len())
        .ok()
        .and_then(|panels| panels.checked_mul(panel_width))
        .ok_or_else(|| {
            RecordError::invalid(path, "drawing loss curves", "too many brain states")
        })?;
    render(path, (width, height), |root| {
        draw_loss_panels(root, title, &states, losses)
    })
}

/// A curve with an uncertainty: points `(x, y, error)`, drawn as a line through `y` in a shaded
/// band from `y − error` to `y + error` (no band where the error is not finite).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BandSeries {
    pub label: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// [`occlusion_plot`] with a band around each curve, e.g. mean ± SEM over seeds: accuracies and
/// errors are fractions, drawn in percent.
pub fn occlusion_band_plot(
    path: &Path,
    title: &str,
    series: &[BandSeries],
    classes: usize,
) -> Result<()> {
    occlusion_figure(path, title, lines_with_bands(series, 100.0), classes)
}

/// [`accuracy_plot`] with a band around each curve, e.g. mean ± SEM over seeds against epoch:
/// accuracies and errors are fractions, drawn in percent.
pub fn accuracy_band_plot(
    path: &Path,
    title: &str,
    series: &[BandSeries],
    classes: usize,
) -> Result<()> {
    accuracy_figure(path, title, lines_with_bands(series, 100.0), classes)
}

/// Accuracy in percent against epoch, with the chance line at 1/`classes`.
fn accuracy_figure(path: &Path, title: &str, lines: Vec<Line>, classes: usize) -> Result<()> {
    percent_figure(path, title, "epoch", None, lines, classes)
}

/// Accuracy in percent against the occlusion probability (axis spanning [0, 1]).
fn occlusion_figure(path: &Path, title: &str, lines: Vec<Line>, classes: usize) -> Result<()> {
    let x_range = Some((-0.03, 1.03));
    percent_figure(
        path,
        title,
        "occlusion probability p",
        x_range,
        lines,
        classes,
    )
}

fn percent_figure(
    path: &Path,
    title: &str,
    x_label: &str,
    x_range: Option<(f64, f64)>,
    lines: Vec<Line>,
    classes: usize,
) -> Result<()> {
    let spec = LineFigure {
        title,
        x_label,
        y_label: "accuracy (%)",
        lines,
        x_range,
        y_range: None,
        reference: chance_line(classes),
        y_limits: Some((0.0, 100.0)),
    };
    render(path, FIGURE_SIZE, |root| draw_line_figure(root, &spec))
}

/// Lines through the `y` of each series, with bands of ± error, all scaled by `scale`.
fn lines_with_bands(series: &[BandSeries], scale: f64) -> Vec<Line> {
    let centres: Vec<Series> = series
        .iter()
        .map(|s| {
            Series::new(
                s.label.clone(),
                s.points.iter().map(|&(x, y, _)| (x, y)).collect(),
            )
        })
        .collect();
    let mut lines = lines_from_series(&centres, scale);
    for (line, series) in lines.iter_mut().zip(series) {
        line.band = finite_band_runs(
            series
                .points
                .iter()
                .map(|&(x, y, error)| (x, scale * (y - error), scale * (y + error))),
        );
    }
    lines
}

/// One bar: its height, an error drawn as a whisker of ± `error` (none if not finite), and the
/// values it summarises, drawn as small circles over it (e.g. one per seed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bar {
    pub value: f64,
    pub error: f64,
    pub points: Vec<f64>,
}

/// Bars of one colour: one per category, in the panel's category order (a non-finite value
/// leaves its slot empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarSeries {
    pub label: String,
    pub bars: Vec<Bar>,
}

/// One panel of grouped bars: per category, one bar of each series side by side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarPanel {
    pub title: String,
    pub y_label: String,
    /// Category labels under the groups (wrapped onto up to three lines at spaces).
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// A dashed horizontal line `(y, legend label)`, e.g. chance level.
    pub reference: Option<(f64, String)>,
}

/// Grouped bar charts with error whiskers, panels side by side under one title, and one legend
/// (series labels of the first panel, then the first panel's reference line). The y axis starts
/// at zero (or below, for negative values) and covers bars, whiskers, points and reference.
///
/// Fails (without writing) if there is no panel or a series has not one bar per category.
pub fn bar_chart(path: &Path, title: &str, panels: &[BarPanel]) -> Result<()> {
    let operation = "drawing bar chart";
    if panels.is_empty() {
        return Err(RecordError::invalid(path, operation, "no panel to draw"));
    }
    for panel in panels {
        if let Some(series) = panel
            .series
            .iter()
            .find(|s| s.bars.len() != panel.categories.len())
        {
            return Err(RecordError::invalid(
                path,
                operation,
                format!(
                    "series {:?} of panel {:?} has {} bars for {} categories",
                    series.label,
                    panel.title,
                    series.bars.len(),
                    panel.categories.len()
                ),
            ));
        }
    }
    let panel_width = panels
        .iter()
        .map(|p| 140 + p.categories.len() * (44 + 20 * p.series.len().max(1)))
        .max()
        .unwrap_or(0)
        .clamp(420, 1400) as u32;
    let width = u32::try_from(panels.len())
        .ok()
        .and_then(|n| n.checked_mul(panel_width))
        .and_then(|w| w.checked_add(240))
        .ok_or_else(|| RecordError::invalid(path, operation, "too many panels"))?;
    render(path, (width, FIGURE_SIZE.1), |root| {
        draw_bar_figure(root, title, panels)
    })
}

// ---------------------------------------------------------------------------------------------
// Drawing.

type DrawResult<T = ()> = std::result::Result<T, Box<dyn Error>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// One curve ready to draw: colour, marker, label, and runs of finite points (a run ends where
/// a value is missing), in drawn units.
struct Line {
    label: String,
    color: RGBColor,
    marker: Marker,
    runs: Vec<Vec<(f64, f64)>>,
    /// Runs of `(x, low, high)`: a shaded band around the line (e.g. ± SEM); often empty.
    band: Vec<Vec<(f64, f64, f64)>>,
}

impl Line {
    /// Whether points get markers: not for dense series, where they would merge into a band.
    fn marked(&self) -> bool {
        self.runs.iter().map(Vec::len).sum::<usize>() <= MAX_MARKED_POINTS
    }
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
    HollowCircle,
    None,
}

/// A dashed horizontal line, e.g. chance level, with its legend label.
struct Reference {
    y: f64,
    label: String,
}

struct LineFigure<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    lines: Vec<Line>,
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
    reference: Option<Reference>,
    /// Bounds the automatic y range does not extend past by more than 3% of their span (0–100
    /// on percent axes); data beyond them is clipped.
    y_limits: Option<(f64, f64)>,
}

/// What the legend shows for one entry.
struct LegendEntry {
    label: String,
    color: RGBColor,
    line: LegendLine,
    marker: Marker,
}

#[derive(Clone, Copy, PartialEq)]
enum LegendLine {
    Solid,
    Dashed,
    None,
}

fn palette(index: usize) -> RGBColor {
    let [r, g, b] = PALETTE[index % PALETTE.len()];
    RGBColor(r, g, b)
}

fn series_marker(index: usize) -> Marker {
    match (index / PALETTE.len()) % 4 {
        0 => Marker::Circle,
        1 => Marker::Triangle,
        2 => Marker::Square,
        _ => Marker::Cross,
    }
}

fn lines_from_series(series: &[Series], scale: f64) -> Vec<Line> {
    series
        .iter()
        .enumerate()
        .map(|(index, series)| Line {
            label: series.label.clone(),
            color: palette(index),
            marker: series_marker(index),
            runs: finite_runs(series.points.iter().map(|&(x, y)| (x, y * scale))),
            band: Vec::new(),
        })
        .collect()
}

/// Splits a polyline into runs of points with finite coordinates.
fn finite_runs(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            run.push((x, y));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Splits a band into runs of points with finite coordinates and bounds.
fn finite_band_runs(
    points: impl IntoIterator<Item = (f64, f64, f64)>,
) -> Vec<Vec<(f64, f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (x, low, high) in points {
        if x.is_finite() && low.is_finite() && high.is_finite() {
            run.push((x, low, high));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

fn chance_line(classes: usize) -> Option<Reference> {
    (classes > 0).then(|| {
        let y = 100.0 / classes as f64;
        Reference {
            y,
            label: format!("chance ({})", format_percent(y)),
        }
    })
}

fn format_percent(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

/// Validates a caller-given range.
fn checked_range(path: &Path, range: Option<(f64, f64)>) -> Result<Option<(f64, f64)>> {
    match range {
        Some((low, high)) if !(low < high && (high - low).is_finite()) => {
            Err(RecordError::invalid(
                path,
                "drawing line plot",
                format!("y range ({low}, {high}) must be finite with low < high"),
            ))
        }
        other => Ok(other),
    }
}

/// Largest magnitude an automatic axis range reaches. Axis spans must stay finite (plotters
/// loops forever choosing ticks for an infinite span), so larger values are clipped away.
const AXIS_LIMIT: f64 = 1e300;

/// The range of `values` with a margin of `pad` times its span on both sides; (0, 1) when
/// there are no values, and a margin of a tenth of the value (at least 0.5) around a single one.
fn padded_range(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.into_iter().filter(|v| v.is_finite()) {
        let value = value.clamp(-AXIS_LIMIT, AXIS_LIMIT);
        low = low.min(value);
        high = high.max(value);
    }
    if low > high {
        return (0.0, 1.0);
    }
    let span = high - low;
    let margin = if span > 0.0 {
        span * pad
    } else {
        (low.abs() * 0.1).max(0.5)
    };
    // Finite: |low|, |high| <= 1e300 and the margin is at most a tenth of their span or value.
    (low - margin, high + margin)
}

/// Tick labels for an axis over `low..high` with at most `ticks` labels: with as many decimals
/// as the ticks plotters will place need (0.5, 1.0, 1.5 but 10, 20, 30), scientific for extreme
/// magnitudes.
fn tick_formatter(low: f64, high: f64, ticks: usize) -> impl Fn(&f64) -> String {
    let span = (high - low).abs();
    let magnitude = low.abs().max(high.abs());
    let scientific = magnitude >= 1e6 || (span > 0.0 && span < 1e-4) || !span.is_finite();
    // The same key points the mesh computes for its labels.
    let values = RangedCoordf64::from(low..high).key_points(ticks);
    let step = match values.as_slice() {
        [first, second, ..] => (second - first).abs(),
        _ => span.max(f64::MIN_POSITIVE),
    };
    let decimals = (0..=8)
        .find(|&decimals| {
            values.iter().all(|&value| {
                let shown: f64 = format!("{value:.decimals$}").parse().unwrap_or(f64::NAN);
                (shown - value).abs() <= step * 1e-3
            })
        })
        .unwrap_or(8);
    move |value: &f64| {
        let text = if scientific && *value == 0.0 {
            "0".to_string()
        } else if scientific {
            // "1.50e12" -> "1.5e12", "1.00e12" -> "1e12".
            let text = format!("{value:.2e}");
            match text.split_once('e') {
                Some((mantissa, exponent)) if mantissa.contains('.') => {
                    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                    format!("{mantissa}e{exponent}")
                }
                _ => text,
            }
        } else {
            format!("{value:.decimals$}")
        };
        // No "-0" or "-0.00".
        match text.strip_prefix('-') {
            Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
            _ => text,
        }
    }
}

/// True if every x is a whole number (epochs): ticks then fall on whole numbers only.
fn integer_x(lines: &[Line]) -> bool {
    let mut points = lines
        .iter()
        .flat_map(|line| line.runs.iter().flatten())
        .peekable();
    points.peek().is_some() && points.all(|&(x, _)| x == x.round() && x.abs() < 1e9)
}

fn text_style(size: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color)
}

/// The house look of a chart's mesh: tick labels of `tick_size`, axis titles in `desc_style`,
/// the axis and one light grid line between bold ones.
fn house_mesh<'m, 'a, 'b, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB>,
    tick_size: f64,
    desc_style: TextStyle<'b>,
) -> &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
    mesh.label_style(text_style(tick_size, TEXT))
        .axis_desc_style(desc_style)
        .axis_style(AXIS.stroke_width(1))
        .bold_line_style(GRID_BOLD.stroke_width(1))
        .light_line_style(GRID_LIGHT.stroke_width(1))
        .max_light_lines(1)
}

/// `text` shortened with an ellipsis until it fits `max_width` pixels.
fn fit_text(area: &Area, text: &str, style: &TextStyle, max_width: u32) -> DrawResult<String> {
    if area.estimate_text_size(text, style)?.0 <= max_width {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let shortened = |kept: usize| chars[..kept].iter().collect::<String>() + "…";
    // Binary search for the longest prefix that fits with the ellipsis (0 chars may not fit).
    let (mut fits, mut too_long) = (0, chars.len());
    while too_long - fits > 1 {
        let middle = (fits + too_long) / 2;
        if area.estimate_text_size(&shortened(middle), style)?.0 <= max_width {
            fits = middle;
        } else {
            too_long = middle;
        }
    }
    if fits == 0 && area.estimate_text_size("…", style)?.0 > max_width {
        return Ok(String::new());
    }
    Ok(shortened(fits))
}

/// Draws `title` centred at the top of `area` (shrunk, then shortened, to fit its width) and
/// returns the area below it.
fn draw_title<'a>(area: &Area<'a>, title: &str, size: f64) -> DrawResult<Area<'a>> {
    let (width, _) = area.dim_in_pixel();
    let max_width = width.saturating_sub(24);
    let mut size = size;
    let mut style = text_style(size, TEXT);
    while size > 14.0 && area.estimate_text_size(title, &style)?.0 > max_width {
        size -= 1.0;
        style = text_style(size, TEXT);
    }
    let text = fit_text(area, title, &style, max_width)?;
    let height = (size * 1.9).round() as u32;
    let (top, rest) = area.split_vertically(height);
    if !text.is_empty() {
        let centre = (width as i32 / 2, height as i32 / 2);
        top.draw(&Text::new(
            text,
            centre,
            style.pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    Ok(rest)
}

fn draw_marker(
    area: &Area,
    marker: Marker,
    at: (i32, i32),
    radius: i32,
    color: RGBColor,
) -> DrawResult {
    match marker {
        Marker::Circle => area.draw(&Circle::new(at, radius, color.filled()))?,
        Marker::HollowCircle => area.draw(&Circle::new(at, radius, color.stroke_width(2)))?,
        Marker::Triangle => area.draw(&TriangleMarker::new(at, radius + 1, color.filled()))?,
        Marker::Square => area.draw(&Rectangle::new(
            [
                (at.0 - radius, at.1 - radius),
                (at.0 + radius, at.1 + radius),
            ],
            color.filled(),
        ))?,
        Marker::Cross => area.draw(&Cross::new(at, radius, color.stroke_width(2)))?,
        Marker::None => {}
    }
    Ok(())
}

/// The swatch of an entry: a short line and/or a marker, 36 pixels wide, centred at `centre`.
fn draw_swatch(area: &Area, entry: &LegendEntry, centre: (i32, i32)) -> DrawResult {
    let (x, y) = centre;
    match entry.line {
        LegendLine::Solid => {
            area.draw(&PathElement::new(
                vec![(x - 17, y), (x + 17, y)],
                entry.color.stroke_width(2),
            ))?;
        }
        LegendLine::Dashed => {
            for start in [x - 17, x - 4, x + 9] {
                area.draw(&PathElement::new(
                    vec![(start, y), (start + 8, y)],
                    entry.color.stroke_width(2),
                ))?;
            }
        }
        LegendLine::None => {}
    }
    draw_marker(area, entry.marker, centre, 5, entry.color)
}

const SWATCH_WIDTH: i32 = 36;
const LEGEND_ROW: i32 = 26;

/// Width a legend column needs for `entries`, at most `max_width`.
fn legend_column_width(area: &Area, entries: &[LegendEntry], max_width: u32) -> DrawResult<u32> {
    let style = text_style(LEGEND_SIZE, TEXT);
    let mut widest = 0;
    for entry in entries {
        widest = widest.max(area.estimate_text_size(&entry.label, &style)?.0);
    }
    Ok((widest + SWATCH_WIDTH as u32 + 36).min(max_width))
}

/// `body` cut into the plot and, when there are legend entries, a legend column on the right
/// as wide as its longest label needs, at most the fraction `numerator / denominator` of the
/// width.
fn split_off_legend<'a>(
    body: &Area<'a>,
    entries: &[LegendEntry],
    (numerator, denominator): (u32, u32),
) -> DrawResult<(Area<'a>, Option<Area<'a>>)> {
    if entries.is_empty() {
        return Ok((body.clone(), None));
    }
    let (width, _) = body.dim_in_pixel();
    let legend_width = legend_column_width(body, entries, width * numerator / denominator)?;
    let (plot, legend) = body.split_horizontally(width - legend_width - 12);
    Ok((plot, Some(legend)))
}

/// A legend as one column at the top of `area`, framed.
fn draw_legend_column(area: &Area, entries: &[LegendEntry], top: i32) -> DrawResult {
    if entries.is_empty() {
        return Ok(());
    }
    let (width, height) = area.dim_in_pixel();
    let style = text_style(LEGEND_SIZE, TEXT);
    let label_left = 10 + SWATCH_WIDTH + 8;
    let max_label = (width as i32 - label_left - 8).max(0) as u32;
    let rows = entries
        .len()
        .min(((height as i32 - top - 12) / LEGEND_ROW).max(1) as usize);
    let frame_bottom = top + 6 + rows as i32 * LEGEND_ROW + 4;
    area.draw(&Rectangle::new(
        [(0, top), (width as i32 - 2, frame_bottom)],
        GRID_BOLD.stroke_width(1),
    ))?;
    for (row, entry) in entries.iter().take(rows).enumerate() {
        let y = top + 6 + row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        let label = if row + 1 == rows && rows < entries.len() {
            format!("… {} more", entries.len() - row)
        } else {
            fit_text(area, &entry.label, &style, max_label)?
        };
        if !(row + 1 == rows && rows < entries.len()) {
            draw_swatch(area, entry, (10 + SWATCH_WIDTH / 2, y))?;
        }
        area.draw(&Text::new(
            label,
            (label_left, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Lays `entries` out in rows across `width` pixels: the x offset of each entry and its row.
fn legend_row_layout(
    area: &Area,
    entries: &[LegendEntry],
    width: u32,
) -> DrawResult<Vec<(i32, usize)>> {
    let style = text_style(LEGEND_SIZE, TEXT);
    let mut placed = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (0i32, 0usize);
    for entry in entries {
        let label_width = area.estimate_text_size(&entry.label, &style)?.0 as i32;
        let entry_width = SWATCH_WIDTH + 6 + label_width.min(width as i32 - SWATCH_WIDTH - 6);
        if x > 0 && x + entry_width > width as i32 {
            x = 0;
            row += 1;
        }
        placed.push((x, row));
        x += entry_width + 18;
    }
    Ok(placed)
}

/// A legend as centred rows (wrapping) in `area`, laid out by [`legend_row_layout`].
fn draw_legend_rows(area: &Area, entries: &[LegendEntry], layout: &[(i32, usize)]) -> DrawResult {
    let (width, _) = area.dim_in_pixel();
    let style = text_style(LEGEND_SIZE, TEXT);
    let rows = layout.iter().map(|&(_, row)| row + 1).max().unwrap_or(0);
    for row in 0..rows {
        let in_row: Vec<usize> = (0..entries.len()).filter(|&i| layout[i].1 == row).collect();
        let last = *in_row.last().unwrap_or(&0);
        let label_width = area.estimate_text_size(&entries[last].label, &style)?.0 as i32;
        let row_width = layout[last].0 + SWATCH_WIDTH + 6 + label_width;
        let offset = ((width as i32 - row_width) / 2).max(0);
        for &i in &in_row {
            let x = offset + layout[i].0;
            let y = row as i32 * LEGEND_ROW + LEGEND_ROW / 2;
            draw_swatch(area, &entries[i], (x + SWATCH_WIDTH / 2, y))?;
            let max_label = (width as i32 - x - SWATCH_WIDTH - 6).max(0) as u32;
            area.draw(&Text::new(
                fit_text(area, &entries[i].label, &style, max_label)?,
                (x + SWATCH_WIDTH + 6, y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}

/// Axes of a chart: ranges, labels, and whether x ticks must be whole numbers.
struct Axes<'a> {
    x: (f64, f64),
    y: (f64, f64),
    x_label: &'a str,
    y_label: &'a str,
    integer_x: bool,
    /// Smaller fonts, margins and fewer ticks, for the panels of a multi-panel figure.
    compact: bool,
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the mesh, ticks and axis labels of a chart filling `area`, and returns it for series.
fn build_chart<'a, 'b>(area: &'a Area<'b>, axes: &Axes) -> DrawResult<Chart<'a, 'b>> {
    let (tick, label) = if axes.compact {
        (TICK_SIZE - 1.0, AXIS_LABEL_SIZE - 2.0)
    } else {
        (TICK_SIZE, AXIS_LABEL_SIZE)
    };
    let (left, x_area, y_area) = if axes.compact {
        (4, 46, 70)
    } else {
        (12, 54, 84)
    };
    let (width, height) = area.dim_in_pixel();
    let desc_style = text_style(label, TEXT);
    let x_desc = fit_text(
        area,
        axes.x_label,
        &desc_style,
        width.saturating_sub(left + y_area + 24),
    )?;
    let y_desc = fit_text(
        area,
        axes.y_label,
        &desc_style,
        height.saturating_sub(x_area + 16),
    )?;
    let mut chart = ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(16)
        .margin_left(left)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(axes.x.0..axes.x.1, axes.y.0..axes.y.1)?;
    let x_ticks = if axes.integer_x {
        // Whole-number ticks: never more ticks than whole numbers in the range.
        let whole_numbers = (axes.x.1.floor() - axes.x.0.ceil()).max(0.0) as usize + 1;
        whole_numbers.clamp(1, 10)
    } else if axes.compact {
        6
    } else {
        10
    };
    let y_ticks = if axes.compact { 7 } else { 10 };
    let x_format = tick_formatter(axes.x.0, axes.x.1, x_ticks);
    let y_format = tick_formatter(axes.y.0, axes.y.1, y_ticks);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x_ticks)
        .y_labels(y_ticks)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .x_desc(x_desc)
        .y_desc(y_desc);
    house_mesh(&mut mesh, tick, desc_style).draw()?;
    Ok(chart)
}

/// Clips the segment a-b to the box; `None` if it lies outside (Liang–Barsky).
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    if !(dx.is_finite() && dy.is_finite()) {
        // Only between values near f64's limits, far outside any axis range.
        return None;
    }
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return None;
            }
        }
    }
    Some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

/// The parts of a polyline inside the box, as polylines.
fn clip_polyline(run: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for pair in run.windows(2) {
        match clip_segment(pair[0], pair[1], x, y) {
            Some((start, end)) => {
                if current.last() != Some(&start) {
                    if current.len() > 1 {
                        pieces.push(std::mem::take(&mut current));
                    }
                    current.clear();
                    current.push(start);
                }
                current.push(end);
            }
            None => {
                if current.len() > 1 {
                    pieces.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if current.len() > 1 {
        pieces.push(current);
    }
    pieces
}

/// Pixel position of a data point inside the chart's plotting area, for drawing markers there
/// in pixels (so their size does not depend on the axis ranges). Only for points `inside` the
/// axes: plotters' mapping overflows for values far outside them.
fn plot_coord(chart: &Chart, point: &(f64, f64)) -> (i32, i32) {
    let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
    let (x, y) = chart.backend_coord(point);
    (x - x_pixels.start, y - y_pixels.start)
}

fn inside(&(px, py): &(f64, f64), x: (f64, f64), y: (f64, f64)) -> bool {
    px >= x.0 && px <= x.1 && py >= y.0 && py <= y.1
}

/// Draws `lines` (and the reference line) into a chart built on `area`.
fn draw_lines(
    area: &Area,
    axes: &Axes,
    lines: &[Line],
    reference: Option<&Reference>,
) -> DrawResult {
    let mut chart = build_chart(area, axes)?;
    if let Some(reference) = reference {
        if reference.y >= axes.y.0 && reference.y <= axes.y.1 {
            chart.draw_series(DashedLineSeries::new(
                vec![(axes.x.0, reference.y), (axes.x.1, reference.y)],
                9,
                6,
                REFERENCE.stroke_width(2),
            ))?;
        }
    }
    for line in lines {
        draw_band(&mut chart, axes, line)?;
    }
    let plot = chart.plotting_area().strip_coord_spec();
    for line in lines {
        let total: usize = line.runs.iter().map(Vec::len).sum();
        for run in &line.runs {
            for piece in clip_polyline(run, axes.x, axes.y) {
                chart.draw_series(LineSeries::new(piece, line.color.stroke_width(2)))?;
            }
        }
        if line.marked() {
            let radius = if total <= 40 { 4 } else { 3 };
            for point in line
                .runs
                .iter()
                .flatten()
                .filter(|p| inside(p, axes.x, axes.y))
            {
                let at = plot_coord(&chart, point);
                draw_marker(&plot, line.marker, at, radius, line.color)?;
            }
        }
    }
    Ok(())
}

/// Draws a "no data" note in the middle of `area`.
fn draw_no_data(area: &Area) -> DrawResult {
    let (width, height) = area.dim_in_pixel();
    area.draw(&Text::new(
        "no data",
        (width as i32 / 2, height as i32 / 2),
        text_style(AXIS_LABEL_SIZE, MUTED).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

fn legend_entries(lines: &[Line], reference: Option<&Reference>) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = lines
        .iter()
        .map(|line| LegendEntry {
            label: line.label.clone(),
            color: line.color,
            line: LegendLine::Solid,
            marker: if line.marked() {
                line.marker
            } else {
                Marker::None
            },
        })
        .collect();
    if let Some(reference) = reference {
        entries.push(LegendEntry {
            label: reference.label.clone(),
            color: REFERENCE,
            line: LegendLine::Dashed,
            marker: Marker::None,
        });
    }
    entries
}

fn draw_line_figure(root: &Area, figure: &LineFigure) -> DrawResult {
    let body = draw_title(root, figure.title, TITLE_SIZE)?;
    let points = || {
        figure
            .lines
            .iter()
            .flat_map(|line| line.runs.iter().flatten())
    };
    let x = figure
        .x_range
        .unwrap_or_else(|| padded_range(points().map(|p| p.0), 0.04));
    let band = figure
        .lines
        .iter()
        .flat_map(|line| line.band.iter().flatten())
        .flat_map(|&(_, low, high)| [low, high]);
    let y = figure.y_range.unwrap_or_else(|| {
        let reference = figure.reference.as_ref().map(|r| r.y);
        let (low, high) = padded_range(points().map(|p| p.1).chain(reference).chain(band), 0.08);
        match figure.y_limits {
            Some((min, max)) => {
                let margin = 0.03 * (max - min);
                let (low, high) = (low.max(min - margin), high.min(max + margin));
                if low < high {
                    (low, high)
                } else {
                    (min - margin, max + margin)
                }
            }
            None => (low, high),
        }
    });
    let entries = legend_entries(&figure.lines, figure.reference.as_ref());
    let (plot_area, legend_area) = split_off_legend(&body, &entries, (2, 5))?;
    let axes = Axes {
        x,
        y,
        x_label: figure.x_label,
        y_label: figure.y_label,
        integer_x: figure.x_range.is_none() && integer_x(&figure.lines),
        compact: false,
    };
    draw_lines(&plot_area, &axes, &figure.lines, figure.reference.as_ref())?;
    if points().next().is_none() {
        draw_no_data(&plot_area.margin(8, 54, 84, 16))?;
    }
    if let Some(legend) = legend_area {
        draw_legend_column(&legend.margin(0, 0, 0, 12), &entries, 8)?;
    }
    Ok(())
}

fn draw_pca(
    root: &Area,
    title: &str,
    clean: &[(f64, f64)],
    labels: &[u8],
    occluded: Option<&[(f64, f64)]>,
    class_names: &[String],
) -> DrawResult {
    let body = draw_title(root, title, TITLE_SIZE)?;
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all = || clean.iter().chain(occluded.unwrap_or(&[])).filter(finite);
    let x = padded_range(all().map(|p| p.0), 0.05);
    let y = padded_range(all().map(|p| p.1), 0.05);

    let mut classes: Vec<u8> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut entries: Vec<LegendEntry> = classes
        .iter()
        .map(|&class| LegendEntry {
            label: class_names
                .get(class as usize)
                .cloned()
                .unwrap_or_else(|| format!("class {class}")),
            color: palette(class as usize),
            line: LegendLine::None,
            marker: Marker::Circle,
        })
        .collect();
    if occluded.is_some() && !clean.is_empty() {
        // After an empty row, in the text colour: which marker is which, for every class.
        for (label, marker) in [
            ("", Marker::None),
            ("clean", Marker::Circle),
            ("occluded", Marker::HollowCircle),
        ] {
            entries.push(LegendEntry {
                label: label.into(),
                color: TEXT,
                line: LegendLine::None,
                marker,
            });
        }
    }
    let (plot_area, legend_area) = split_off_legend(&body, &entries, (2, 5))?;
    let axes = Axes {
        x,
        y,
        x_label: "PC 1",
        y_label: "PC 2",
        integer_x: false,
        compact: false,
    };
    let chart = build_chart(&plot_area, &axes)?;
    let plot = chart.plotting_area().strip_coord_spec();
    let to_plot = |point: &(f64, f64)| plot_coord(&chart, point);
    let radius = if clean.len() > 3000 { 2 } else { 3 };
    for (point, &label) in clean.iter().zip(labels) {
        if inside(point, x, y) {
            draw_marker(
                &plot,
                Marker::Circle,
                to_plot(point),
                radius,
                palette(label as usize),
            )?;
        }
    }
    if let Some(occluded) = occluded {
        for (point, &label) in occluded.iter().zip(labels) {
            if inside(point, x, y) {
                draw_marker(
                    &plot,
                    Marker::HollowCircle,
                    to_plot(point),
                    radius + 1,
                    palette(label as usize),
                )?;
            }
        }
    }
    if all().next().is_none() {
        draw_no_data(&plot_area.margin(8, 54, 84, 16))?;
    }
    if let Some(legend) = legend_area {
        draw_legend_column(&legend.margin(0, 0, 0, 12), &entries, 8)?;
    }
    Ok(())
}

fn state_title(state: &str) -> String {
    match state {
        "wake" => "Wake".into(),
        "nrem" => "NREM".into(),
        "rem" => "REM".into(),
        other => other.into(),
    }
}

fn draw_loss_panels(
    root: &Area,
    title: &str,
    states: &[&str],
    losses: &[(String, String, Vec<f64>)],
) -> DrawResult {
    let body = draw_title(root, title, TITLE_SIZE)?;
    let panels = body.split_evenly((1, states.len()));
    for (panel, state) in panels.iter().zip(states) {
        let terms: Vec<&(String, String, Vec<f64>)> =
            losses.iter().filter(|(s, _, _)| s == state).collect();
        let lines: Vec<Line> = terms
            .iter()
            .enumerate()
            .map(|(index, (_, term, values))| Line {
                label: term.clone(),
                color: palette(index),
                marker: series_marker(index),
                runs: finite_runs(
                    values
                        .iter()
                        .enumerate()
                        .map(|(epoch, &value)| ((epoch + 1) as f64, value)),
                ),
                band: Vec::new(),
            })
            .collect();
        let inner = panel.margin(0, 0, 6, 10);
        let inner = draw_title(&inner, &state_title(state), PANEL_TITLE_SIZE)?;
        let entries = legend_entries(&lines, None);
        let (width, _) = inner.dim_in_pixel();
        let layout = legend_row_layout(&inner, &entries, width.saturating_sub(20))?;
        let rows = layout.iter().map(|&(_, row)| row + 1).max().unwrap_or(0) as u32;
        let (legend, plot_area) = inner.split_vertically(rows * LEGEND_ROW as u32 + 4);
        draw_legend_rows(&legend.margin(0, 0, 10, 10), &entries, &layout)?;
        let points = || lines.iter().flat_map(|line| line.runs.iter().flatten());
        let axes = Axes {
            x: padded_range(points().map(|p| p.0), 0.04),
            y: padded_range(points().map(|p| p.1), 0.08),
            x_label: "epoch",
            y_label: "loss",
            integer_x: integer_x(&lines),
            compact: true,
        };
        draw_lines(&plot_area, &axes, &lines, None)?;
        if points().next().is_none() {
            draw_no_data(&plot_area.margin(8, 46, 70, 16))?;
        }
    }
    Ok(())
}

/// Draws a line's band: a translucent polygon per run (clamped to the y axis; the x axis always
/// covers the data), or a whisker for a run of one point.
fn draw_band(chart: &mut Chart, axes: &Axes, line: &Line) -> DrawResult {
    let clamp = |y: f64| y.clamp(axes.y.0, axes.y.1);
    for run in &line.band {
        if let [(x, low, high)] = run.as_slice() {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*x, clamp(*low)), (*x, clamp(*high))],
                line.color.stroke_width(2),
            )))?;
            continue;
        }
        let outline: Vec<(f64, f64)> = run
            .iter()
            .map(|&(x, _, high)| (x, clamp(high)))
            .chain(run.iter().rev().map(|&(x, low, _)| (x, clamp(low))))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            line.color.mix(0.18).filled(),
        )))?;
    }
    Ok(())
}

fn draw_bar_figure(root: &Area, title: &str, panels: &[BarPanel]) -> DrawResult {
    let body = draw_title(root, title, TITLE_SIZE)?;
    let first = &panels[0];
    let mut entries: Vec<LegendEntry> = first
        .series
        .iter()
        .enumerate()
        .map(|(index, series)| LegendEntry {
            label: series.label.clone(),
            color: palette(index),
            line: LegendLine::None,
            marker: Marker::Square,
        })
        .collect();
    if let Some((_, label)) = &first.reference {
        entries.push(LegendEntry {
            label: label.clone(),
            color: REFERENCE,
            line: LegendLine::Dashed,
            marker: Marker::None,
        });
    }
    if panels.iter().any(|p| {
        p.series
            .iter()
            .any(|s| s.bars.iter().any(|b| b.points.len() > 1))
    }) {
        entries.push(LegendEntry {
            label: "single runs".into(),
            color: TEXT,
            line: LegendLine::None,
            marker: Marker::HollowCircle,
        });
    }
    let (plots, legend) = split_off_legend(&body, &entries, (1, 4))?;
    for (area, panel) in plots.split_evenly((1, panels.len())).iter().zip(panels) {
        draw_bar_panel(area, panel, panels.len() > 1)?;
    }
    if let Some(legend) = legend {
        draw_legend_column(&legend.margin(0, 0, 0, 12), &entries, 8)?;
    }
    Ok(())
}

/// Height in pixels of one line of category labels under a bar chart.
const CATEGORY_LINE: i32 = 19;

fn draw_bar_panel(area: &Area, panel: &BarPanel, titled: bool) -> DrawResult {
    let area = if titled {
        draw_title(&area.margin(0, 0, 6, 10), &panel.title, PANEL_TITLE_SIZE)?
    } else {
        area.clone()
    };
    let categories = panel.categories.len().max(1);
    let values = panel
        .series
        .iter()
        .flat_map(|s| s.bars.iter())
        .flat_map(|bar| {
            let whisker = if bar.error.is_finite() {
                vec![bar.value - bar.error, bar.value + bar.error]
            } else {
                Vec::new()
            };
            std::iter::once(bar.value)
                .chain(whisker)
                .chain(bar.points.iter().copied())
        });
    let finite: Vec<f64> = values
        .chain(panel.reference.as_ref().map(|r| r.0))
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(-AXIS_LIMIT, AXIS_LIMIT))
        .collect();
    let has_bars = panel
        .series
        .iter()
        .any(|s| s.bars.iter().any(|b| b.value.is_finite()));
    let y = if finite.is_empty() {
        (0.0, 1.0)
    } else {
        let low = finite.iter().copied().fold(0.0, f64::min);
        let high = finite.iter().copied().fold(0.0, f64::max);
        let span = if high > low { high - low } else { 1.0 };
        (
            if low < 0.0 { low - 0.08 * span } else { 0.0 },
            high + 0.08 * span,
        )
    };
    let x = (-0.5, categories as f64 - 0.5);
    let (width, height) = area.dim_in_pixel();
    let desc_style = text_style(AXIS_LABEL_SIZE, TEXT);
    let y_desc = fit_text(
        &area,
        &panel.y_label,
        &desc_style,
        height.saturating_sub(90),
    )?;
    let label_area = 3 * CATEGORY_LINE as u32 + 16;
    let mut chart = ChartBuilder::on(&area)
        .margin_top(8)
        .margin_right(16)
        .margin_left(12)
        .x_label_area_size(label_area)
        .y_label_area_size(84)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let y_format = tick_formatter(y.0, y.1, 10);
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_labels(categories)
        .x_label_formatter(&|_| String::new())
        .y_labels(10)
        .y_label_formatter(&y_format)
        .y_desc(y_desc);
    house_mesh(&mut mesh, TICK_SIZE, desc_style).draw()?;

    let series_count = panel.series.len().max(1);
    let bar_width = 0.8 / series_count as f64;
    let plot = chart.plotting_area().strip_coord_spec();
    let base = 0.0f64.clamp(y.0, y.1);
    for (index, series) in panel.series.iter().enumerate() {
        let color = palette(index);
        for (category, bar) in series.bars.iter().enumerate() {
            if !bar.value.is_finite() {
                continue;
            }
            let left = category as f64 - 0.4 + index as f64 * bar_width;
            let (left, right) = (left + 0.05 * bar_width, left + 0.95 * bar_width);
            let centre = (left + right) / 2.0;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(left, base), (right, bar.value.clamp(y.0, y.1))],
                color.filled(),
            )))?;
            if bar.error.is_finite() && bar.error > 0.0 {
                let (low, high) = (
                    (bar.value - bar.error).clamp(y.0, y.1),
                    (bar.value + bar.error).clamp(y.0, y.1),
                );
                let cap = 0.1 * (right - left);
                for segment in [
                    vec![(centre, low), (centre, high)],
                    vec![(centre - cap, low), (centre + cap, low)],
                    vec![(centre - cap, high), (centre + cap, high)],
                ] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        segment,
                        TEXT.stroke_width(2),
                    )))?;
                }
            }
            let finite_points: Vec<f64> = bar
                .points
                .iter()
                .copied()
                .filter(|p| p.is_finite())
                .collect();
            let spread = 0.4 * (right - left);
            for (k, &value) in finite_points.iter().enumerate() {
                let offset = if finite_points.len() > 1 {
                    spread * (k as f64 / (finite_points.len() - 1) as f64 - 0.5)
                } else {
                    0.0
                };
                let point = (centre + offset, value.clamp(y.0, y.1));
                draw_marker(
                    &plot,
                    Marker::HollowCircle,
                    plot_coord(&chart, &point),
                    3,
                    TEXT,
                )?;
            }
        }
    }
    if let Some((value, _)) = &panel.reference {
        if *value >= y.0 && *value <= y.1 {
            chart.draw_series(DashedLineSeries::new(
                vec![(x.0, *value), (x.1, *value)],
                9,
                6,
                REFERENCE.stroke_width(2),
            ))?;
        }
    }

    // Category labels, wrapped at spaces, centred under their groups.
    let style = text_style(TICK_SIZE, TEXT);
    let (base_x, base_y) = area.get_base_pixel();
    let slot = ((width as i32 - 112) / categories as i32 - 6).max(8) as u32;
    for (category, label) in panel.categories.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(category as f64, y.0));
        let lines = wrap_label(&area, label, &style, slot, 3)?;
        for (row, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (px - base_x, py - base_y + 8 + row as i32 * CATEGORY_LINE),
                style.pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
    }
    if !has_bars {
        draw_no_data(&area.margin(8, label_area as i32, 84, 16))?;
    }
    Ok(())
}

/// `label` broken at spaces into at most `max_lines` lines of at most `max_width` pixels (the
/// last line, and any single word too long, shortened with an ellipsis).
fn wrap_label(
    area: &Area,
    label: &str,
    style: &TextStyle,
    max_width: u32,
    max_lines: usize,
) -> DrawResult<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for word in label.split_whitespace() {
        match lines.last_mut() {
            Some(line)
                if area.estimate_text_size(&format!("{line} {word}"), style)?.0 <= max_width =>
            {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.len() > max_lines {
        let rest = lines.split_off(max_lines - 1).join(" ");
        lines.push(rest);
    }
    lines
        .iter()
        .map(|line| fit_text(area, line, style, max_width))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rendering and writing.

/// Registers the embedded font with plotters, once per process.
fn register_embedded_font(path: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if registered {
        Ok(())
    } else {
        Err(RecordError::invalid(
            path,
            "loading the embedded font",
            "DejaVu Sans could not be parsed",
        ))
    }
}

/// Draws a figure of `size` pixels with `draw` and writes it to `path` as PNG, atomically.
fn render(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> Result<()> {
    register_embedded_font(path)?;
    let (width, height) = size;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&BACKGROUND)
            .map_err(|e| Box::new(e) as Box<dyn Error>)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| Box::new(e) as Box<dyn Error>))
            .map_err(|error| RecordError::invalid(path, "drawing figure", error))?;
    }

    let mut encoded = Vec::new();
    let png_error = |source| RecordError::Png {
        path: path.to_path_buf(),
        operation: "encoding PNG".into(),
        source,
    };
    let mut encoder = png::Encoder::new(&mut encoded, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;

    write_atomically(path, &encoded, "figure")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_at_non_finite_values() {
        let nan = f64::NAN;
        let runs = finite_runs([
            (0.0, 1.0),
            (1.0, nan),
            (2.0, 2.0),
            (3.0, 3.0),
            (f64::INFINITY, 0.0),
        ]);
        assert_eq!(runs, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
        assert!(finite_runs([(nan, nan)]).is_empty());
    }

    #[test]
    fn segments_are_clipped_to_the_box() {
        let unit = (0.0, 1.0);
        assert_eq!(
            clip_segment((-1.0, 0.5), (2.0, 0.5), unit, unit),
            Some(((0.0, 0.5), (1.0, 0.5)))
        );
        assert_eq!(clip_segment((0.0, 2.0), (1.0, 3.0), unit, unit), None);
        assert_eq!(
            clip_segment((0.0, f64::MAX), (1.0, f64::MIN), unit, unit),
            None
        );
        // A polyline leaving and re-entering the box becomes two pieces.
        let pieces = clip_polyline(&[(0.0, 0.5), (0.5, 2.0), (1.0, 0.5)], unit, unit);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
    }

    #[test]
    fn ranges_are_finite_and_non_empty() {
        assert_eq!(padded_range([], 0.1), (0.0, 1.0));
        assert_eq!(padded_range([f64::NAN], 0.1), (0.0, 1.0));
        assert_eq!(padded_range([2.0, 2.0], 0.1), (1.5, 2.5));
        assert_eq!(padded_range([0.0, 10.0], 0.1), (-1.0, 11.0));
        for values in [[f64::MAX, f64::MIN], [1e300, -1e300], [5e-324, 0.0]] {
            let (low, high) = padded_range(values, 0.1);
            assert!(
                low < high && (high - low).is_finite(),
                "{values:?}: {low} {high}"
            );
        }
    }

    #[test]
    fn tick_labels_have_the_decimals_the_ticks_need() {
        let format = tick_formatter(0.0, 1.0, 10);
        assert_eq!([format(&0.5), format(&1.0)], ["0.5", "1.0"]);
        let format = tick_formatter(6.0, 58.0, 10);
        assert_eq!([format(&10.0), format(&-0.0)], ["10", "0"]);
        let format = tick_formatter(-1e12, 1e12, 10);
        assert_eq!(
            [format(&5e11), format(&-1e12), format(&0.0)],
            ["5e11", "-1e12", "0"]
        );
    }

    #[test]
    fn the_embedded_font_parses() {
        register_embedded_font(Path::new("unused.png")).unwrap();
    }
}
