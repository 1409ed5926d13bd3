//! Validators: each embedded validator's counters and weights, and the votes it sent
//! with the relay's answers.

use super::{block, header_row, no_data, placeholder, score, short_key, time_as, DASH};
use crate::api::RecentVote;
use crate::app::{App, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    if app.validators.is_empty() {
        placeholder(
            f,
            area,
            "Validators",
            no_data(
                app,
                Service::Sidecar,
                "no embedded validators in this appliance",
            ),
        );
        return;
    }
    let n = app.validators.len() as u16;
    let [counters, weights, votes] = Layout::vertical([
        Constraint::Length((n + 3).min(8)),
        Constraint::Length(n.min(3)),
        Constraint::Min(3),
    ])
    .areas(area);

    let wide = area.width >= 140;
    let mut head = vec![
        "Validator",
        "Polls",
        "New",
        "Passed",
        "Fail SOTA",
        "Blackl.",
        "Votes",
        "Final.",
        "SOTA",
    ];
    if wide {
        head.extend([
            "Fetched",
            "Dupe",
            "Invalid",
            "Sig fail",
            "Parse fail",
            "Eval err",
            "Seen",
        ]);
    }
    let rows = app.validators.iter().map(|v| {
        let c = &v.counters;
        let mut cells = vec![
            v.name.clone(),
            c.polls.to_string(),
            c.new.to_string(),
            c.passed.to_string(),
            c.failed_sota.to_string(),
            c.blacklisted.to_string(),
            format!("{}/{}", c.votes_ok, c.votes_tried),
            c.finalized.to_string(),
            score(v.sota),
        ];
        if wide {
            cells.extend(
                [
                    c.fetched,
                    c.dupe,
                    c.invalid,
                    c.sig_fail,
                    c.parse_fail,
                    c.eval_err,
                    c.unique_seen,
                ]
                .map(|x| x.to_string()),
            );
        }
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(9),
    ];
    if wide {
        widths.extend([Constraint::Length(10); 7]);
    }
    f.render_widget(
        Table::new(rows, widths)
            .header(header_row(head))
            .block(block("Validators")),
        counters,
    );

    let pct = |w: Option<f64>| w.map_or_else(|| DASH.into(), |x| format!("{:.0}%", x * 100.0));
    let wl: Vec<Line> = app
        .validators
        .iter()
        .map(|v| match &v.weights {
            Some(w) => Line::from(format!(
                " weights {}: burn {} → {}, winner {} → {}",
                v.name,
                pct(w.burn),
                short_key(w.burn_hotkey.as_deref()),
                pct(w.winner_weight),
                short_key(w.winner.as_deref()),
            )),
            None => Line::from(format!(" weights {}: none yet", v.name)),
        })
        .collect();
    f.render_widget(Paragraph::new(wl), weights);

    let mut all: Vec<(&str, &RecentVote)> = app
        .validators
        .iter()
        .flat_map(|v| v.recent_votes.iter().map(move |r| (v.name.as_str(), r)))
        .collect();
    // ISO-8601 UTC strings sort chronologically; newest first.
    all.sort_by(|a, b| b.1.ts.cmp(&a.1.ts));
    let blacklist = all
        .iter()
        .filter(|(_, r)| r.kind.as_deref() == Some("blacklist"))
        .count();
    let title = format!(
        "Recent votes and the relay's answers ({} blacklist votes)",
        blacklist
    );
    if all.is_empty() {
        placeholder(f, votes, &title, "no votes yet".into());
        return;
    }
    let rows = all.iter().map(|(name, r)| {
        let kind = r.kind.clone().unwrap_or_else(|| DASH.into());
        let answer = match (&r.status, &r.detail) {
            (Some(s), Some(d)) if !d.is_empty() => format!("{s}: {d}"),
            (Some(s), _) => s.clone(),
            (None, d) => d.clone().unwrap_or_else(|| DASH.into()),
        };
        let color = match r.status.as_deref() {
            Some("finalized") => Color::Green,
            Some("rejected") => Color::Red,
            _ if kind == "blacklist" => Color::Magenta,
            _ => Color::Reset,
        };
        Row::new(vec![
            time_as(r.ts.as_deref(), "%H:%M:%S"),
            name.to_string(),
            kind,
            short_key(r.miner_hotkey.as_deref()),
            r.score.map_or_else(|| DASH.into(), |s| format!("{s:.4}")),
            answer,
        ])
        .style(Style::default().fg(color))
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Min(10),
            ],
        )
        .header(header_row([
            "When",
            "Validator",
            "Kind",
            "Miner",
            "Score",
            "Relay answer",
        ]))
        .block(block(&title)),
        votes,
    );
}
