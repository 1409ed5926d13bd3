//! Mining: the run, its settings and numbers, children/s over time, the log tail.

use super::{block, duration, kv, no_data, num, placeholder, score, DASH};
use crate::app::{start_label, App, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

pub(super) fn render(app: &App, f: &mut Frame, area: Rect) {
    let miner = app.appliance.as_ref().map(|a| &a.miner);
    let running = app.mining();
    let ceiling = miner.and_then(|m| m.ceiling.as_ref()).filter(|_| running);
    let [top, note, logs] = Layout::vertical([
        Constraint::Length(13),
        Constraint::Length(u16::from(ceiling.is_some())),
        Constraint::Min(3),
    ])
    .areas(area);
    let [info, spark] =
        Layout::horizontal([Constraint::Length(45), Constraint::Min(10)]).areas(top);
    if let Some(c) = ceiling {
        let next = c.next_task.as_deref().map_or_else(String::new, |t| {
            format!(" Next task: press t for {t}, then s twice.")
        });
        let text = format!(
            " SOTA {} is at the task's ceiling: no candidate can beat it. Mining goes on until you stop it (s).{next}",
            c.sota.map_or_else(|| DASH.into(), |s| s.to_string())
        );
        f.render_widget(
            Paragraph::new(text).style(Style::default().fg(Color::Yellow)),
            note,
        );
    }
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
    let (task, engine, workers, start) = match miner.filter(|_| running) {
        Some(m) => (
            m.task_type.clone().unwrap_or_else(|| DASH.into()),
            m.engine.clone().unwrap_or_else(|| DASH.into()),
            num(m.workers),
            m.start_from_sota
                .map_or_else(|| DASH.into(), |b| start_label(b).to_owned()),
        ),
        None => (
            format!("{} (on start)", app.settings.task_type()),
            app.settings.engine().to_owned(),
            app.settings.workers.to_string(),
            app.settings.start().to_owned(),
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
        kv("Workers", format!("{workers}, start {start}")),
    ];
    // Pool mining has no generations: the pool's progress takes their three lines.
    let progress = match miner.and_then(|m| m.pool.as_ref()).filter(|_| running) {
        Some(p) => vec![
            kv(
                "Submitted",
                format!(
                    "{} evol., {} eval., {} leases",
                    p.evolutions_submitted, p.evaluations_submitted, p.leases_submitted
                ),
            ),
            kv(
                "Working on",
                p.current.clone().unwrap_or_else(|| DASH.into()),
            ),
            kv("Reputation", score(p.reputation)),
        ],
        None => vec![
            kv("Generation", num(miner.and_then(|m| m.generation))),
            kv(
                "Children/s",
                miner
                    .and_then(|m| m.children_per_sec)
                    .filter(|_| running)
                    // `+ 0.0`: a negative zero prints as 0.
                    .map_or_else(|| DASH.into(), |r| format!("{:.0}", r + 0.0)),
            ),
            kv("Best fitness", score(miner.and_then(|m| m.best_fitness))),
        ],
    };
    let lines = [
        lines,
        progress,
        vec![
            kv("Local SOTA", score(state.and_then(|s| s.local_sota))),
            kv("Global SOTA", score(global)),
            kv(
                "Submissions",
                num(state.and_then(|s| s.successful_submissions)),
            ),
        ],
    ]
    .concat();
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
