//! Validators: each embedded validator's counters and weights, and the votes it sent
//! with the relay's answers.

use super::{block, header_row, no_data, placeholder, score, short_key, time_as, DASH};
use crate::api::{RecentVote, ValidatorInfo};
use crate::app::{App, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

/// A counters column: its header and its cell for one validator.
type Column = (&'static str, fn(&ValidatorInfo) -> String);

/// The counters table's columns, in display order.
const COLUMNS: [Column; 17] = [
    ("Validator", |v| v.name.clone()),
    ("Polls", |v| v.counters.polls.to_string()),
    ("New", |v| v.counters.new.to_string()),
    ("Passed", |v| v.counters.passed.to_string()),
    ("Fail SOTA", |v| v.counters.failed_sota.to_string()),
    ("Blackl.", |v| v.counters.blacklisted.to_string()),
    ("Votes", |v| {
        format!("{}/{}", v.counters.votes_ok, v.counters.votes_tried)
    }),
    ("Late", |v| v.counters.votes_late.to_string()),
    ("Final.", |v| v.counters.finalized.to_string()),
    ("SOTA", |v| score(v.sota)),
    ("Fetched", |v| v.counters.fetched.to_string()),
    ("Dupe", |v| v.counters.dupe.to_string()),
    ("Invalid", |v| v.counters.invalid.to_string()),
    ("Sig fail", |v| v.counters.sig_fail.to_string()),
    ("Parse fail", |v| v.counters.parse_fail.to_string()),
    ("Eval err", |v| v.counters.eval_err.to_string()),
    ("Seen", |v| v.counters.unique_seen.to_string()),
];

/// Indices into [`COLUMNS`], most useful first: what a narrow terminal keeps.
const KEEP: [usize; 17] = [0, 6, 8, 9, 7, 3, 4, 2, 5, 1, 15, 12, 13, 14, 10, 11, 16];

/// The columns (indices, in display order) that fit in `room` cells: taken in `keep`
/// order while they fit, one cell of spacing between two; the first is always taken.
fn fit_columns(widths: &[u16], keep: &[usize], room: u16) -> Vec<usize> {
    let mut used = 0u16;
    let mut taken: Vec<usize> = Vec::new();
    for &c in keep {
        let need = widths[c] + u16::from(!taken.is_empty());
        if taken.is_empty() || used + need <= room {
            used += need;
            taken.push(c);
        }
    }
    taken.sort_unstable();
    taken
}

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

    // Every column is as wide as its widest cell; when they do not all fit, the least
    // useful go first (`KEEP` order), and the name column always stays, whole.
    let columns: Vec<(&str, Vec<String>)> = COLUMNS
        .iter()
        .map(|&(head, cell)| (head, app.validators.iter().map(cell).collect()))
        .collect();
    let widths: Vec<u16> = columns
        .iter()
        .map(|(head, cells)| {
            cells
                .iter()
                .map(|c| c.chars().count())
                .chain([head.chars().count()])
                .max()
                .unwrap_or(0) as u16
        })
        .collect();
    let shown = fit_columns(&widths, &KEEP, area.width.saturating_sub(2));
    let rows =
        (0..app.validators.len()).map(|r| Row::new(shown.iter().map(|&c| columns[c].1[r].clone())));
    f.render_widget(
        Table::new(rows, shown.iter().map(|&c| Constraint::Length(widths[c])))
            .header(header_row(shown.iter().map(|&c| columns[c].0)))
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
    let name_width = all
        .iter()
        .map(|(name, _)| name.chars().count())
        .chain(["Validator".len()])
        .max()
        .unwrap_or(0) as u16;
    let rows = all.iter().map(|(name, r)| {
        let kind = r.kind.clone().unwrap_or_else(|| DASH.into());
        let answer = match (&r.status, &r.detail) {
            // Refused only because another validator's vote finalized this score first.
            (Some(s), Some(d)) if s == "late" => format!("late, already finalized: {d}"),
            (Some(s), Some(d)) if !d.is_empty() => format!("{s}: {d}"),
            (Some(s), _) => s.clone(),
            (None, d) => d.clone().unwrap_or_else(|| DASH.into()),
        };
        let color = match r.status.as_deref() {
            Some("finalized") => Color::Green,
            Some("rejected") => Color::Red,
            Some("late") => Color::DarkGray,
            // The relay could not take it (507 while its disk is low, 5xx, no answer):
            // the validator sends it again later.
            Some("retrying") => Color::Yellow,
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
                Constraint::Length(name_width),
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
