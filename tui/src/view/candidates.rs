//! Candidates: the verified programs of the run, newest first; Enter shows the DSL.

use super::{block, centered, header_row, no_data, num, placeholder, score, DASH};
use crate::app::{App, Reach, Service};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let title = format!(
        "Candidates ({} verified) — ↑/↓ select, Enter shows the DSL",
        app.candidates.len()
    );
    if app.candidates.is_empty() {
        let why = if app.run_id.is_none() && app.reach(Service::Sidecar) == &Reach::Up {
            "no run yet — press s to start mining".into()
        } else {
            no_data(app, Service::Sidecar, "no verified candidates yet")
        };
        placeholder(f, area, &title, why);
        return;
    }
    let header = header_row(["#", "Score", "Worker", "Step", "Task", "Submitted"]);
    let rows = app.candidate_order().map(|i| {
        let c = &app.candidates[i];
        let submitted = match c.submitted {
            Some(true) => Cell::from("yes").green(),
            Some(false) => Cell::from("no"),
            None => Cell::from(DASH),
        };
        Row::new(vec![
            Cell::from(num(c.seq)),
            Cell::from(score(c.score())),
            Cell::from(c.worker()),
            Cell::from(num(c.iteration)),
            Cell::from(c.task_type.clone().unwrap_or_else(|| DASH.into())),
            submitted,
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(16),
            Constraint::Length(9),
        ],
    )
    .header(header)
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ")
    .block(block(&title));
    let pos = app
        .selected_candidate()
        .and_then(|sel| app.candidate_order().position(|i| i == sel));
    let mut st = TableState::default().with_selected(pos);
    f.render_stateful_widget(table, area, &mut st);
}

pub(super) fn dsl_popup(app: &App, f: &mut Frame) {
    let Some(c) = app.dsl_open.and_then(|i| app.candidates.get(i)) else {
        return;
    };
    let area = centered(f.area(), 90, 80);
    let title = format!(
        "Candidate #{} — score {} — {}, input_dim {} — Esc closes",
        num(c.seq),
        score(c.score()),
        c.task_type.as_deref().unwrap_or(DASH),
        num(c.input_dim),
    );
    let text = if c.algorithm_dsl.is_empty() {
        "(no DSL recorded)".to_owned()
    } else {
        c.algorithm_dsl.clone()
    };
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text)
            .scroll((app.dsl_scroll, 0))
            .block(block(&title)),
        area,
    );
}
