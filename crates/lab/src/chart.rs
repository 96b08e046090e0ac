//! SVG charts for lab results (plotters, SVG backend only: no font files needed, the text is
//! SVG text). One shape serves every lab command: groups of bars, one group per label, one
//! bar per series, optionally in several panels side by side.

use plotters::prelude::*;
use std::path::Path;

/// One panel: a title, the group labels along x, and named series of values (one per label;
/// `None` leaves a gap).
pub struct Panel {
    /// The panel's title.
    pub title: String,
    /// The groups along x.
    pub labels: Vec<String>,
    /// Each series: its name and one value per label.
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0xd9, 0x53, 0x4f),
    RGBColor(0x42, 0x7f, 0xc2),
    RGBColor(0x5c, 0xb8, 0x5c),
    RGBColor(0xf0, 0xad, 0x4e),
];

/// Draw `panels` side by side with a common y-axis description into an SVG file.
pub fn bars(path: &Path, title: &str, y_desc: &str, panels: &[Panel]) -> Result<(), String> {
    let width = 520 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel, y_desc).map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    panel: &Panel,
    y_desc: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = panel
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let groups = panel.labels.len().max(1);
    // Headroom for the legend in the upper right: the bars stay below it, however tall the
    // tallest is. The plot area is about 290 px high here and each legend entry about 20 px.
    let legend = (panel.series.len() as f64 * 20.0 + 16.0) / 290.0;
    let headroom = 1.0 / (1.0 - legend - 0.05).max(0.3);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups as f64, 0f64..(top * headroom).max(1e-9))?;
    let labels = panel.labels.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&move |x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()?;
    let n = panel.series.len().max(1) as f64;
    let width = 0.8 / n;
    for (s, (name, values)) in panel.series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        chart
            .draw_series(values.iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let x0 = g as f64 + 0.1 + s as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.95, v)],
                    color.filled(),
                ))
            }))?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(x, y, width, height)` of every `<rect … fill="…" stroke=…>` whose attribute `key`
    /// has `value`.
    fn rects(svg: &str, key: &str, value: &str) -> Vec<(f64, f64, f64, f64)> {
        svg.lines()
            .filter(|l| l.starts_with("<rect") && l.contains(&format!("{key}=\"{value}\"")))
            .map(|l| {
                let attr = |name: &str| -> f64 {
                    let at = l.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    l[at..].split('"').next().unwrap().parse().unwrap()
                };
                (attr("x"), attr("y"), attr("width"), attr("height"))
            })
            .collect()
    }

    #[test]
    fn the_legend_never_covers_a_bar() {
        // The tallest bars in the last group, right under where the legend goes.
        let path = std::env::temp_dir().join(format!("bingfa-chart-{}.svg", std::process::id()));
        let panel = Panel {
            title: "t".into(),
            labels: ["a", "b", "c"].map(String::from).to_vec(),
            series: vec![
                ("one".into(), vec![Some(1.0), Some(2.0), Some(9.5)]),
                ("two".into(), vec![Some(1.5), None, Some(10.0)]),
            ],
        };
        bars(&path, "title", "y", &[panel]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let legend = rects(&svg, "stroke", "#000000");
        assert_eq!(legend.len(), 1, "{svg}");
        let (lx, ly, lw, lh) = legend[0];
        let bars: Vec<_> = rects(&svg, "fill", "#D9534F")
            .into_iter()
            .chain(rects(&svg, "fill", "#427FC2"))
            .filter(|r| r.2 > 10.0) // not the legend's colour swatches
            .collect();
        assert_eq!(bars.len(), 5, "{svg}");
        for (x, y, w, h) in bars {
            let apart = x + w <= lx || lx + lw <= x || y + h <= ly || ly + lh <= y;
            assert!(
                apart,
                "bar {:?} under the legend {:?}",
                (x, y, w, h),
                legend[0]
            );
        }
    }
}
