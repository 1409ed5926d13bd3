//! SOTA: the threshold over time and the finalized events.

use super::{block, header_row, no_data, num, parse_time, placeholder, score, short_key, time_as};
use crate::app::{App, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let [summary, chart, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(50),
        Constraint::Min(4),
    ])
    .areas(area);
    let th = app.threshold.as_ref();
    let events = app
        .sota_events
        .as_ref()
        .map(|e| e.results.as_slice())
        .unwrap_or(&[]);
    f.render_widget(
        Paragraph::new(format!(
            " Threshold {} (updated {}) · {} events",
            score(th.and_then(|t| t.sota_threshold)),
            time_as(
                th.and_then(|t| t.updated_at.as_deref()),
                "%Y-%m-%d %H:%M:%S"
            ),
            num(app
                .sota_events
                .as_ref()
                .and_then(|e| e.total)
                .or(Some(events.len() as u64))),
        )),
        summary,
    );

    // The threshold is a step function of the finalized events (newest first on the wire).
    let mut pts: Vec<(f64, f64)> = events
        .iter()
        .rev()
        .filter_map(|e| {
            let t = parse_time(e.created_at.as_deref()?)?;
            Some((t.timestamp() as f64, e.score?))
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Carry the line to the relay's current threshold when it changed after the last event
    // (a configured default, or an event beyond the first page).
    if let (Some(last), Some(t)) = (pts.last().copied(), th) {
        let upd = t.updated_at.as_deref().and_then(parse_time);
        if let (Some(cur), Some(upd)) = (t.sota_threshold, upd) {
            let at = upd.timestamp() as f64;
            if at > last.0 && cur != last.1 {
                pts.push((at, cur));
            }
        }
    }
    if pts.is_empty() {
        placeholder(
            f,
            chart,
            "SOTA threshold over time",
            no_data(app, Service::Relay, "no SOTA events yet"),
        );
    } else {
        let mut steps = Vec::with_capacity(pts.len() * 2);
        for (i, p) in pts.iter().enumerate() {
            if i > 0 {
                steps.push((p.0, pts[i - 1].1));
            }
            steps.push(*p);
        }
        let (t0, t1) = (pts[0].0, pts[pts.len() - 1].0.max(pts[0].0 + 1.0));
        let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let label = |t: f64| {
            chrono::DateTime::from_timestamp(t as i64, 0)
                .map_or_else(String::new, |d| d.format("%m-%d %H:%M").to_string())
        };
        let ds = Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Cyan))
            .data(&steps);
        f.render_widget(
            Chart::new(vec![ds])
                .block(block("SOTA threshold over time"))
                .x_axis(
                    Axis::default()
                        .bounds([t0, t1])
                        .labels([label(t0), label(t1)]),
                )
                .y_axis(
                    Axis::default()
                        .bounds([lo - pad, hi + pad])
                        .labels([format!("{:.4}", lo - pad), format!("{:.4}", hi + pad)]),
                ),
            chart,
        );
    }

    if events.is_empty() {
        placeholder(
            f,
            table,
            "SOTA events",
            no_data(app, Service::Relay, "no SOTA events yet"),
        );
        return;
    }
    let rows = events.iter().map(|e| {
        Row::new(vec![
            short_key(e.miner_hotkey.as_deref()),
            score(e.score),
            num(e.decision_block),
            num(e.start_block),
            num(e.end_block),
            time_as(e.created_at.as_deref(), "%Y-%m-%d %H:%M:%S"),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Min(19),
            ],
        )
        .header(header_row([
            "Miner",
            "Score",
            "Decision",
            "Start",
            "End",
            "When (UTC)",
        ]))
        .block(block("SOTA events (newest first)")),
        table,
    );
}
