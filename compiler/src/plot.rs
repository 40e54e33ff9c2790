//! PNG charts of the numbers people compare (accuracy against the DReLU budget), drawn with
//! plotters. Text needs a TrueType font: DejaVu Sans from the system (Debian's
//! `fonts-dejavu-core`), or the file named by `KSNN_FONT`.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use thiserror::Error;

/// Why a chart could not be drawn.
#[derive(Debug, Error)]
pub enum PlotError {
    #[error(
        "no font for the plot's text: install fonts-dejavu-core or set KSNN_FONT to a .ttf file"
    )]
    /// Neither `KSNN_FONT` nor a system DejaVu Sans could be loaded.
    NoFont,
    /// Plotters failed to lay out or write the chart.
    #[error("drawing {path}: {reason}")]
    Draw {
        /// The PNG being drawn.
        path: String,
        /// What plotters reported.
        reason: String,
    },
}

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn font() -> Result<(), PlotError> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let ok = *LOADED.get_or_init(|| {
        let candidates = std::env::var("KSNN_FONT")
            .ok()
            .into_iter()
            .chain(FONTS.iter().map(|s| s.to_string()));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    });
    if ok { Ok(()) } else { Err(PlotError::NoFont) }
}

/// One labelled series of `(x, y)` points.
pub struct Series<'a> {
    /// The legend entry.
    pub label: &'a str,
    /// The points, joined in this order; x must be positive (the x axis is logarithmic).
    pub points: Vec<(f64, f64)>,
}

/// A line chart with a logarithmic x axis (DReLU budgets span orders of magnitude).
pub fn log_x_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), PlotError> {
    font()?;
    let err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let (xmin, xmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &(x, _)| (a.min(x), b.max(x)));
    let (ymin, ymax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &(_, y)| (a.min(y), b.max(y)));
    let (xmin, xmax) = (xmin.max(1e-9) / 1.5, xmax.max(1e-9) * 1.5);
    let pad = ((ymax - ymin) * 0.1).max(0.5);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin - pad)..(ymax + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A bar chart of named values (e.g. bytes per layer).
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
) -> Result<(), PlotError> {
    font()?;
    let err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let n = bars.len().max(1);
    let root = BitMapBackend::new(path, ((60 * n as u32).max(600), 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
        .map_err(|e| err(&e))?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_label)
        .x_labels(n)
        .x_label_style(("sans-serif", 11))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(Palette99::pick(4).mix(0.8).filled())
                .margin(3)
                .data(bars.iter().enumerate().map(|(i, b)| (i, b.1))),
        )
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
