//! `bench quality`'s curve as files: a CSV of its marks and an SVG drawing of it beside
//! it, with the hand-designed learners' levels on the validators' suite marked.

use crate::tasks::TaskType;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One mark of a run's curve.
pub struct Point {
    pub seconds: f64,
    pub children: u64,
    /// Children that got a full evaluation on the miner suite (the rest were scored by
    /// the exact-duplicate cache or the functional-equivalence cache).
    pub evaluations: u64,
    /// The best program's score on the validators' suite.
    pub score: Option<f64>,
    /// The best program's miner fitness.
    pub fitness: Option<f64>,
}

/// The levels a task's curve is drawn against: hand-designed learners scored by
/// `bitsota eval --tasks 128` on the validators' default suite (issue #24).
pub fn reference_lines(task: TaskType) -> &'static [(&'static str, f64)] {
    match task {
        TaskType::Cifar10Binary => &[("logistic regression", 0.716), ("16-unit MLP", 0.738)],
        TaskType::MnistBinary => &[("logistic regression", 0.986), ("16-unit MLP", 0.990)],
        TaskType::ScalarLinear => &[],
    }
}

/// The CSV text of a curve (empty cells where a mark has no best yet).
pub fn csv(points: &[Point]) -> String {
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let mut out =
        String::from("seconds,children,evaluations,best_suite_score,best_miner_fitness\n");
    for p in points {
        let _ = writeln!(
            out,
            "{:.1},{},{},{},{}",
            p.seconds,
            p.children,
            p.evaluations,
            cell(p.score),
            cell(p.fitness)
        );
    }
    out
}

/// The SVG file beside a curve's CSV.
pub fn svg_path(csv: &Path) -> PathBuf {
    csv.with_extension("svg")
}

/// The best program's DSL file beside a curve's CSV.
pub fn best_path(csv: &Path) -> PathBuf {
    csv.with_extension("best.dsl")
}

/// Draw the curve (suite score and miner fitness against minutes) with `lines` marked.
pub fn draw(
    path: &Path,
    title: &str,
    points: &[Point],
    lines: &[(&str, f64)],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let minutes = |p: &Point| p.seconds / 60.0;
    let x_max = points.iter().map(minutes).fold(1.0, f64::max);
    let values = points
        .iter()
        .flat_map(|p| [p.score, p.fitness])
        .flatten()
        .chain(lines.iter().map(|l| l.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(0.005);
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("score")
        .draw()
        .map_err(|e| err(&e))?;
    let series = |f: fn(&Point) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| f(p).map(|v| (minutes(p), v)))
            .collect()
    };
    let curves = [
        ("best program, validators' suite", series(|p| p.score), BLUE),
        (
            "best program, miner fitness",
            series(|p| p.fitness),
            RGBColor(150, 150, 150),
        ),
    ];
    for (label, data, color) in curves {
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    for (i, &(name, level)) in lines.iter().enumerate() {
        let color = [RED, GREEN][i % 2];
        chart
            .draw_series(LineSeries::new(
                [(0.0, level), (x_max, level)],
                color.stroke_width(1),
            ))
            .map_err(|e| err(&e))?
            .label(format!("{name} {level}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_written_as_csv_and_drawn_with_the_reference_lines() {
        let points = [
            Point {
                seconds: 30.0,
                children: 10,
                evaluations: 10,
                score: None,
                fitness: None,
            },
            Point {
                seconds: 60.0,
                children: 2500,
                evaluations: 900,
                score: Some(0.7165),
                fitness: Some(0.72691),
            },
        ];
        assert_eq!(
            csv(&points),
            "seconds,children,evaluations,best_suite_score,best_miner_fitness\n\
             30.0,10,10,,\n60.0,2500,900,0.716500,0.726910\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = svg_path(&dir.path().join("curve.csv"));
        assert_eq!(path.extension().unwrap(), "svg");
        assert_eq!(
            best_path(Path::new("runs/q.csv")),
            Path::new("runs/q.best.dsl")
        );
        draw(
            &path,
            "t",
            &points,
            reference_lines(TaskType::Cifar10Binary),
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("16-unit MLP 0.738"), "{svg}");
        assert!(svg.contains("logistic regression 0.716"));
        assert!(svg.contains("<polyline"), "the curves are drawn");
    }
}
