//! Pure rendering: `view(&App, &mut Frame)` draws the header, the tab bar, the active
//! tab, the footer and any overlay from the state alone — which is what lets tests render
//! into ratatui's `TestBackend` and read the screen.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Sparkline, Table,
    TableState, Tabs, Wrap,
};
use ratatui::Frame;
use serde_json::Value;

use crate::api::{CategoryCounts, RecentVote};
use crate::app::{App, Feed, Reach, Service, Tab};

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
        Tab::Mining => mining(app, f, body),
        Tab::Candidates => candidates(app, f, body),
        Tab::Validators => validators(app, f, body),
        Tab::Sota => sota(app, f, body),
        Tab::Pool => pool(app, f, body),
        Tab::Relay => relay(app, f, body),
    }
    f.render_widget(footer_line(app), footer);
    if app.dsl_open.is_some() {
        dsl_popup(app, f);
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
            " s start/stop  t task  e engine  +/- workers  1-6/Tab tabs  ? help  q quit",
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

fn mining(app: &App, f: &mut Frame, area: Rect) {
    let [top, logs] = Layout::vertical([Constraint::Length(13), Constraint::Min(3)]).areas(area);
    let [info, spark] =
        Layout::horizontal([Constraint::Length(45), Constraint::Min(10)]).areas(top);

    let miner = app.appliance.as_ref().map(|a| &a.miner);
    let running = app.mining();
    let state = app.state.as_ref();
    let status = match (miner, state.and_then(|s| s.status.as_deref())) {
        (None, _) => no_data(app, Service::Sidecar, DASH),
        (Some(m), _) if m.running => "running".into(),
        (Some(_), Some(s)) => s.to_owned(),
        (Some(_), None) => "stopped".into(),
    };
    let run_id = miner
        .and_then(|m| m.run_id.clone())
        .or_else(|| app.run_id.clone())
        .unwrap_or_else(|| DASH.into());
    // While a run is going its own settings are the truth; otherwise the next start's.
    let (task, engine, workers) = match miner.filter(|_| running) {
        Some(m) => (
            m.task_type.clone().unwrap_or_else(|| DASH.into()),
            m.engine.clone().unwrap_or_else(|| DASH.into()),
            num(m.workers),
        ),
        None => (
            format!("{} (on start)", app.settings.task_type()),
            app.settings.engine().to_owned(),
            app.settings.workers.to_string(),
        ),
    };
    let global = app
        .threshold
        .as_ref()
        .and_then(|t| t.sota_threshold)
        .or_else(|| state.and_then(|s| s.global_sota));
    let lines = vec![
        kv("Status", status),
        kv("Run", run_id),
        kv("Task", task),
        kv("Engine", engine),
        kv("Workers", workers),
        kv("Generation", num(miner.and_then(|m| m.generation))),
        kv(
            "Children/s",
            miner
                .and_then(|m| m.children_per_sec)
                .filter(|_| running)
                .map_or_else(|| DASH.into(), |r| format!("{r:.0}")),
        ),
        kv("Best fitness", score(miner.and_then(|m| m.best_fitness))),
        kv("Local SOTA", score(state.and_then(|s| s.local_sota))),
        kv("Global SOTA", score(global)),
        kv(
            "Submissions",
            num(state.and_then(|s| s.successful_submissions)),
        ),
    ];
    f.render_widget(Paragraph::new(lines).block(block("Miner")), info);

    let width = spark.width.saturating_sub(2) as usize;
    let samples: Vec<u64> = app.rate_history.iter().copied().collect();
    let shown = &samples[samples.len().saturating_sub(width)..];
    let peak = shown.iter().copied().max().unwrap_or(0);
    let title = format!(
        "children/s now {}, max {peak} ({})",
        shown.last().copied().unwrap_or(0),
        duration(shown.len() as f64)
    );
    f.render_widget(
        Sparkline::default()
            .data(shown)
            .style(Style::default().fg(Color::Green))
            .block(block(&title)),
        spark,
    );

    let title = format!("Log {}", app.run_id.as_deref().unwrap_or(""));
    if app.logs.is_empty() {
        placeholder(
            f,
            logs,
            &title,
            no_data(app, Service::Sidecar, "no log lines yet"),
        );
        return;
    }
    let h = logs.height.saturating_sub(2) as usize;
    let tail: Vec<Line> = app
        .logs
        .iter()
        .skip(app.logs.len().saturating_sub(h))
        .map(|l| Line::raw(l.text.clone()))
        .collect();
    f.render_widget(Paragraph::new(tail).block(block(&title)), logs);
}

fn candidates(app: &App, f: &mut Frame, area: Rect) {
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
    let header = Row::new(["#", "Score", "Worker", "Step", "Task", "Submitted"])
        .style(Style::default().add_modifier(Modifier::BOLD));
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

fn dsl_popup(app: &App, f: &mut Frame) {
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

fn help_popup(f: &mut Frame) {
    let area = centered(f.area(), 70, 80);
    let keys = [
        ("1-6, Tab", "switch tab (Shift-Tab back)"),
        ("s", "start / stop mining"),
        ("t", "cycle task type for the next start"),
        ("e", "cycle engine for the next start"),
        ("+ / -", "more / fewer workers for the next start"),
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

fn validators(app: &App, f: &mut Frame, area: Rect) {
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
            .header(Row::new(head).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(block("Validators")),
        counters,
    );

    let wl: Vec<Line> = app
        .validators
        .iter()
        .map(|v| match &v.weights {
            Some(w) => Line::from(format!(
                " weights {}: burn {} → {}, winner {} → {}",
                v.name,
                w.burn
                    .map_or_else(|| DASH.into(), |x| format!("{:.0}%", x * 100.0)),
                short_key(w.burn_hotkey.as_deref()),
                w.winner_weight
                    .map_or_else(|| DASH.into(), |x| format!("{:.0}%", x * 100.0)),
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
        .header(
            Row::new([
                "When",
                "Validator",
                "Kind",
                "Miner",
                "Score",
                "Relay answer",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block(&title)),
        votes,
    );
}

fn sota(app: &App, f: &mut Frame, area: Rect) {
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
        .header(
            Row::new(["Miner", "Score", "Decision", "Start", "End", "When (UTC)"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block("SOTA events (newest first)")),
        table,
    );
}

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

fn pool(app: &App, f: &mut Frame, area: Rect) {
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
            flatten("", m, &mut kvs);
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

    if app.leaderboard.is_empty() {
        placeholder(
            f,
            board,
            "Leaderboard",
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
            .header(
                Row::new(["#", "Miner", "Reputation", "Evals", "Evols"])
                    .style(Style::default().add_modifier(Modifier::BOLD)),
            )
            .block(block("Leaderboard")),
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
            .header(
                Row::new(["Epoch", "Closed", "Paid rao", "Payouts", "Merkle root"])
                    .style(Style::default().add_modifier(Modifier::BOLD)),
            )
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

/// Reads one category's count out of a window.
type Pick = fn(&CategoryCounts) -> u64;

fn relay(app: &App, f: &mut Frame, area: Rect) {
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
        .header(
            Row::new(["Category", "1 min", "1 h", "24 h", "total"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block(title)),
        table,
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
