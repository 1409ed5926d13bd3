//! Pure rendering: `view(&App, &mut Frame)` draws the header, the tab bar, the active
//! tab, the footer and any overlay from the state alone — which is what lets tests render
//! into ratatui's `TestBackend` and read the screen.

mod candidates;
mod mining;
mod pool;
mod relay;
mod sota;
mod validators;

use crate::app::{App, Reach, Service, Tab};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Tabs, Wrap};
use ratatui::Frame;

/// Draws the whole dashboard.
pub fn view(app: &App, f: &mut Frame) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(header_line(app), header);
    f.render_widget(tab_bar(app), tabs);
    match app.tab {
        Tab::Mining => mining::render(app, f, body),
        Tab::Candidates => candidates::render(app, f, body),
        Tab::Validators => validators::render(app, f, body),
        Tab::Sota => sota::render(app, f, body),
        Tab::Pool => pool::render(app, f, body),
        Tab::Relay => relay::render(app, f, body),
    }
    f.render_widget(footer_line(app), footer);
    if app.dsl_open.is_some() {
        candidates::dsl_popup(app, f);
    }
    if app.help {
        help_popup(f);
    }
}

const DASH: &str = "–";

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| DASH.into(), |x| format!("{x:.6}"))
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| DASH.into(), |x| x.to_string())
}

/// Hotkeys are 48 characters; eight identify one on screen.
fn short_key(k: Option<&str>) -> String {
    match k {
        Some(k) if k.chars().count() > 10 => format!("{}…", k.chars().take(8).collect::<String>()),
        Some(k) => k.to_owned(),
        None => DASH.into(),
    }
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn parse_time(iso: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(iso, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .ok()
}

/// An ISO time as `fmt` (UTC), or the raw text when it is not ISO-8601.
fn time_as(iso: Option<&str>, fmt: &str) -> String {
    match iso {
        Some(s) => parse_time(s).map_or_else(|| s.to_owned(), |t| t.format(fmt).to_string()),
        None => DASH.into(),
    }
}

/// A bold table header.
fn header_row<'a, T: Into<Cell<'a>>>(cells: impl IntoIterator<Item = T>) -> Row<'a> {
    Row::new(cells).style(Style::default().add_modifier(Modifier::BOLD))
}

fn block(title: &str) -> Block<'_> {
    Block::default().borders(Borders::ALL).title(Span::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// What to show where a service's data is missing: why it is missing.
fn no_data(app: &App, svc: Service, empty: &str) -> String {
    match app.reach(svc) {
        Reach::Unknown => format!("waiting for the {}…", svc.name()),
        Reach::Down(_) => format!("{} unreachable — retrying every second", svc.name()),
        Reach::Disabled => format!("the {} is disabled in this appliance", svc.name()),
        Reach::Up => empty.into(),
    }
}

fn placeholder(f: &mut Frame, area: Rect, title: &str, text: String) {
    f.render_widget(
        Paragraph::new(text)
            .style(Style::default().fg(Color::DarkGray))
            .wrap(Wrap { trim: true })
            .block(block(title)),
        area,
    );
}

fn header_line(app: &App) -> Paragraph<'static> {
    let mut spans = vec![Span::styled(
        " bitsota ",
        Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
    )];
    if let Some(v) = app.appliance.as_ref().and_then(|a| a.version.as_deref()) {
        spans.push(Span::raw(format!(" v{v}")));
    }
    // First, so that a narrow terminal still shows it.
    if let Some(h) = app
        .appliance
        .as_ref()
        .map(|a| &a.health)
        .filter(|h| h.status.as_deref() == Some("degraded"))
    {
        spans.push(Span::styled(
            format!(" ⚠ degraded: {} ", h.reasons.join("; ")),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    for svc in Service::ALL {
        spans.push(Span::raw("  "));
        let (text, color) = match app.reach(svc) {
            Reach::Up => (format!("{} ● up", svc.name()), Color::Green),
            Reach::Down(_) => (
                format!("{} ✗ unreachable (retrying)", svc.name()),
                Color::Red,
            ),
            Reach::Unknown => (format!("{} … connecting", svc.name()), Color::Yellow),
            Reach::Disabled => (format!("{} – disabled", svc.name()), Color::DarkGray),
        };
        spans.push(Span::styled(text, Style::default().fg(color)));
    }
    Paragraph::new(Line::from(spans))
}

fn tab_bar(app: &App) -> Tabs<'static> {
    Tabs::new(
        Tab::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{} {}", i + 1, t.title())),
    )
    .select(app.tab.index())
    .highlight_style(
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    )
}

fn footer_line(app: &App) -> Paragraph<'static> {
    match &app.message {
        Some(m) => Paragraph::new(Span::styled(
            format!(" {m}"),
            Style::default().fg(Color::Yellow),
        )),
        None => Paragraph::new(Span::styled(
            " s start/stop  t task  e engine  +/- workers  f from SOTA  1-6/Tab tabs  ? help  q quit",
            Style::default().fg(Color::DarkGray),
        )),
    }
}

fn kv(key: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<13}"), Style::default().fg(Color::DarkGray)),
        Span::raw(value),
    ])
}

/// A rectangle of `pct`% of `area`, centred.
fn centered(area: Rect, pct_x: u16, pct_y: u16) -> Rect {
    let w = area.width * pct_x / 100;
    let h = area.height * pct_y / 100;
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn help_popup(f: &mut Frame) {
    let area = centered(f.area(), 70, 80);
    let keys = [
        ("1-6, Tab", "switch tab (Shift-Tab back)"),
        ("s", "start / stop mining"),
        ("t", "cycle task type for the next start"),
        ("e", "cycle engine for the next start"),
        ("+ / -", "more / fewer workers for the next start"),
        ("f", "next start: from the relay's SOTA program, or fresh"),
        ("↑/↓ Enter", "Candidates: select, show the DSL"),
        ("Esc", "close a popup or message"),
        ("?", "this help (any key closes it)"),
        ("q", "quit"),
    ];
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!(" {k:<11}"), Style::default().fg(Color::Cyan)),
                Span::raw(*v),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block("Help")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(65.0), "1m 05s");
        assert_eq!(duration(3723.9), "1h 02m 03s");
        assert_eq!(duration(-5.0), "0s");
    }

    #[test]
    fn hotkeys_are_shortened() {
        let k = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
        assert_eq!(short_key(Some(k)), "5GrwvaEF…");
        assert_eq!(short_key(Some("validator")), "validator");
        assert_eq!(short_key(None), DASH);
    }

    #[test]
    fn times_parse_with_or_without_zone() {
        assert_eq!(
            time_as(Some("2026-11-29T05:20:01Z"), "%H:%M:%S"),
            "05:20:01"
        );
        assert_eq!(
            time_as(Some("2026-11-29T07:20:01+02:00"), "%H:%M:%S"),
            "05:20:01"
        );
        assert_eq!(
            time_as(Some("2026-11-29T05:20:01.250"), "%H:%M:%S"),
            "05:20:01"
        );
        assert_eq!(time_as(Some("yesterday"), "%H:%M:%S"), "yesterday");
    }
}
