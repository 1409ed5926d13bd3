//! Pool: window and monitor summary, leaderboard, closed epochs, this miner's lease lines.

use super::{block, duration, header_row, no_data, num, placeholder, short_key, time_as, DASH};
use crate::app::{App, Feed, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use serde_json::Value;

/// Flattens the monitor summary (its shape is the pool's to decide) into `key: value`
/// lines, nested keys dotted, so any field the pool reports is visible.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a.iter().map(scalar).collect();
            out.push((
                prefix.into(),
                if items.is_empty() {
                    "none".into()
                } else {
                    items.join(", ")
                },
            ));
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.into(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => DASH.into(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.4}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Monitor fields the cycle lines already show (left out of the flattened list).
const CYCLE_KEYS: [&str; 7] = [
    "algorithms",
    "backlog",
    "verified",
    "best_score",
    "local_evaluators",
    "epoch",
    "epoch_remaining_s",
];

/// The pool cycle at a glance, from the monitor summary: evolutions waiting for
/// evaluation, verified ones, and when the epoch (and its payouts) closes. Fields the
/// pool does not report are left out.
pub(crate) fn cycle_lines(m: &Value) -> Vec<String> {
    let n = |k: &str| m.get(k).and_then(Value::as_u64);
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (n("algorithms"), n("backlog")) {
        out.push(format!("▶ {a} algorithms, {b} awaiting eval"));
    }
    if let Some(v) = n("verified") {
        let best = super::score(m.get("best_score").and_then(Value::as_f64));
        out.push(format!("▶ {v} verified, best {best}"));
    }
    if let (Some(e), Some(r)) = (
        n("epoch"),
        m.get("epoch_remaining_s").and_then(Value::as_f64),
    ) {
        out.push(format!("▶ epoch {e} closes in {}", duration(r)));
    }
    out
}

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let [status, board] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    let [epochs, coord] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);

    if app.pool_health.is_none() && app.pool_monitor.is_none() {
        placeholder(f, status, "Pool", no_data(app, Service::Pool, DASH));
    } else {
        let mut lines = Vec::new();
        if let Some(h) = &app.pool_health {
            lines.push(Line::from(format!(
                " window {} · ends in {} · {}",
                num(h.window_number),
                h.time_remaining_s.map_or_else(|| DASH.into(), duration),
                h.status.as_deref().unwrap_or(DASH),
            )));
        }
        let mut kvs = Vec::new();
        if let Some(m) = &app.pool_monitor {
            for l in cycle_lines(m) {
                lines.push(Line::styled(
                    format!(" {l}"),
                    Style::default().fg(Color::Green),
                ));
            }
            flatten("", m, &mut kvs);
            kvs.retain(|(k, _)| !CYCLE_KEYS.contains(&k.as_str()));
        }
        for (k, v) in kvs {
            let style = if k.contains("alert") {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            lines.push(Line::styled(format!(" {k}: {v}"), style));
        }
        if let Some(e) = app.feed_error(Feed::PoolMonitor) {
            lines.push(Line::styled(
                format!(" monitor: {e}"),
                Style::default().fg(Color::Red),
            ));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block("Pool status")),
            status,
        );
    }

    // The appliance's own evaluators are miners on the leaderboard; the title says how
    // many of them there are.
    let local = app
        .pool_monitor
        .as_ref()
        .and_then(|m| m.get("local_evaluators"))
        .and_then(Value::as_u64)
        .filter(|&l| l > 0);
    let board_title = local.map_or_else(
        || "Leaderboard".to_string(),
        |l| format!("Leaderboard · {l} local evaluators"),
    );
    if app.leaderboard.is_empty() {
        placeholder(
            f,
            board,
            &board_title,
            no_data(app, Service::Pool, "no pool miners yet"),
        );
    } else {
        let rows = app.leaderboard.iter().map(|r| {
            Row::new(vec![
                num(r.rank),
                short_key(r.hotkey.as_deref()),
                r.reputation
                    .map_or_else(|| DASH.into(), |x| format!("{x:.2}")),
                num(r.evaluations),
                num(r.evolutions),
            ])
        });
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(4),
                    Constraint::Length(10),
                    Constraint::Length(10),
                    Constraint::Length(6),
                    Constraint::Length(6),
                ],
            )
            .header(header_row(["#", "Miner", "Reputation", "Evals", "Evols"]))
            .block(block(&board_title)),
            board,
        );
    }

    if app.epochs.is_empty() {
        placeholder(
            f,
            epochs,
            "Epochs",
            no_data(app, Service::Pool, "no closed epochs yet"),
        );
    } else {
        let mut list: Vec<_> = app.epochs.iter().collect();
        list.sort_by_key(|e| std::cmp::Reverse(e.number));
        let rows = list.into_iter().map(|e| {
            Row::new(vec![
                num(e.number),
                time_as(e.closed_at.as_deref(), "%m-%d %H:%M"),
                num(e.total_rao),
                num(e.payouts),
                short_key(e.merkle_root.as_deref()),
            ])
        });
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(5),
                    Constraint::Length(11),
                    Constraint::Length(10),
                    Constraint::Length(7),
                    Constraint::Min(9),
                ],
            )
            .header(header_row([
                "Epoch",
                "Closed",
                "Paid rao",
                "Payouts",
                "Merkle root",
            ]))
            .block(block("Last epochs")),
            epochs,
        );
    }

    // The appliance's own coordinator reports its current lease/task in `[pool]` log lines.
    let h = coord.height.saturating_sub(2) as usize;
    let pool_lines: Vec<&str> = app
        .logs
        .iter()
        .filter(|l| l.text.starts_with("[pool]"))
        .map(|l| l.text.as_str())
        .collect();
    let title = "This miner's lease / tasks";
    if pool_lines.is_empty() {
        placeholder(
            f,
            coord,
            title,
            "not mining in pool mode (t selects pool, pool_lease)".into(),
        );
    } else {
        let tail: Vec<Line> = pool_lines[pool_lines.len().saturating_sub(h)..]
            .iter()
            .map(|s| Line::raw(s.to_string()))
            .collect();
        f.render_widget(Paragraph::new(tail).block(block(title)), coord);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_reads_from_the_monitor_summary() {
        let m = serde_json::json!({"algorithms": 40, "backlog": 3, "verified": 7,
            "best_score": 0.93, "local_evaluators": 3, "epoch": 412, "epoch_remaining_s": 75.5});
        assert_eq!(
            cycle_lines(&m),
            [
                "▶ 40 algorithms, 3 awaiting eval",
                "▶ 7 verified, best 0.930000",
                "▶ epoch 412 closes in 1m 15s"
            ]
        );
        let none = serde_json::json!({"verified": 0, "local_evaluators": 0});
        assert_eq!(cycle_lines(&none), ["▶ 0 verified, best –"]);
    }

    #[test]
    fn monitor_summary_flattens_every_field() {
        let v: Value = serde_json::json!({
            "pending_evaluations": 5,
            "leases": {"issued_15m": 12, "ratio": 0.75},
            "alerts": [],
            "lease": [{"id": 41}]
        });
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        let got: Vec<String> = out.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        assert_eq!(
            got,
            [
                "alerts: none",
                "lease[0].id: 41",
                "leases.issued_15m: 12",
                "leases.ratio: 0.7500",
                "pending_evaluations: 5"
            ]
        );
    }
}
