//! Relay: request counts by category per window, 5xx errors, uptime (admin status).

use super::{block, duration, header_row, no_data, num, placeholder, time_as, DASH};
use crate::api::CategoryCounts;
use crate::app::{App, Feed, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;
use serde_json::Value;

/// Reads one category's count out of a window.
type Pick = fn(&CategoryCounts) -> u64;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let title = "Relay requests by category";
    let Some(a) = &app.admin else {
        let why = if !app.has_admin_token {
            "relay metrics need the admin token (X-Auth-Token); none is configured".into()
        } else if let Some(e) = app.feed_error(Feed::AdminStatus) {
            format!("/admin/status: {e}")
        } else {
            no_data(app, Service::Relay, DASH)
        };
        placeholder(f, area, title, why);
        return;
    };
    let [summary, table] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(4)]).areas(area);
    let m = &a.metrics;
    let db = match (a.db_ok, &a.db_error) {
        (Some(true), _) => "ok".to_owned(),
        (_, Some(e)) => format!("error: {e}"),
        (Some(false), None) => "error".into(),
        (None, None) => DASH.into(),
    };
    let last = match &m.last_request_ts {
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
            .map_or_else(|| n.to_string(), |d| d.format("%H:%M:%S").to_string()),
        Some(Value::String(s)) => time_as(Some(s), "%H:%M:%S"),
        _ => DASH.into(),
    };
    let lines = vec![
        Line::from(format!(
            " status {} · db {} · uptime {} · validators {}",
            a.status.as_deref().unwrap_or(DASH),
            db,
            m.uptime_seconds.map_or_else(|| DASH.into(), duration),
            num(a.auth.validator_count),
        )),
        Line::from(format!(
            " 5xx errors total {} · last request {}",
            num(m.errors_5xx_total),
            last
        )),
    ];
    f.render_widget(Paragraph::new(lines).block(block("Relay")), summary);

    let windows: [&CategoryCounts; 4] = [&m.last_1m, &m.last_1h, &m.last_24h, &m.totals];
    let cat: [(&str, Pick); 6] = [
        ("miner", |c| c.miner),
        ("validator", |c| c.validator),
        ("admin", |c| c.admin),
        ("public", |c| c.public),
        ("other", |c| c.other),
        ("5xx errors", |c| c.errors_5xx),
    ];
    let rows = cat.iter().map(|(name, get)| {
        let mut cells = vec![name.to_string()];
        cells.extend(windows.iter().map(|w| get(w).to_string()));
        let row = Row::new(cells);
        if *name == "5xx errors" && get(&m.last_1h) > 0 {
            row.style(Style::default().fg(Color::Red))
        } else {
            row
        }
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(10),
            ],
        )
        .header(header_row(["Category", "1 min", "1 h", "24 h", "total"]))
        .block(block(title)),
        table,
    );
}
