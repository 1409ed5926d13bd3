//! Shared test helpers: recorded daemon responses (tests/fixtures) fed through the real
//! decode → update path, and rendering into ratatui's TestBackend.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use bitsota_tui::app::{update, App, Event, Feed, FetchError, Get, Payload, Request};
use bitsota_tui::view::view;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The recorded answer of a GET, as the daemon of the spec gives it.
pub fn recorded(get: &Get) -> Result<Payload, FetchError> {
    let name = match (get.feed, get.cursor) {
        (Feed::ApplianceStatus, _) => "appliance_status_running.json",
        (Feed::SidecarState, _) => "state.json",
        (Feed::Logs, Some(0)) => "logs_page1.json",
        (Feed::Logs, Some(3)) => "logs_page2.json",
        (Feed::Logs, _) => "logs_caught_up.json",
        (Feed::Candidates, Some(0)) => "candidates.json",
        (Feed::Candidates, _) => "candidates_caught_up.json",
        (Feed::Validators, _) => "validators.json",
        (Feed::SotaThreshold, _) => "sota_threshold.json",
        (Feed::SotaEvents, _) => "sota_events.json",
        (Feed::AdminStatus, _) => "admin_status.json",
        (Feed::PoolHealth, _) => "pool_health.json",
        (Feed::Leaderboard, _) => "leaderboard.json",
        (Feed::PoolMonitor, _) => "monitor_summary.json",
        (Feed::Epochs, _) => "epochs.json",
    };
    Payload::decode(get.feed, &fixture(name))
}

/// One poll round: a tick at `now`, every GET answered by `answer`; other requests returned.
pub fn poll_round(
    app: &mut App,
    now: Instant,
    answer: impl Fn(&Get) -> Result<Payload, FetchError>,
) -> Vec<Request> {
    let mut other = Vec::new();
    for req in update(app, Event::Tick(now)) {
        match req {
            Request::Get(g) => {
                let res = answer(&g);
                update(app, Event::Polled(g, res));
            }
            r => other.push(r),
        }
    }
    other
}

/// An app that has polled every recorded response: three rounds, so the cursor feeds
/// (which need the run id from the first round) have both their pages.
pub fn loaded_app(admin_token: bool) -> App {
    let mut app = App::new(admin_token);
    let t0 = Instant::now();
    for s in 0..3 {
        poll_round(&mut app, t0 + Duration::from_secs(s), recorded);
    }
    app
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Request> {
    update(app, Event::Key(KeyEvent::from(code)))
}

/// Renders the app into a `w`×`h` test terminal and returns the screen as text lines.
pub fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| view(app, f)).expect("draw");
    let buf = term.backend().buffer();
    buf.content
        .chunks(w as usize)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts every needle is on the screen, printing the screen when one is not.
pub fn assert_shows(screen: &str, needles: &[&str]) {
    for n in needles {
        assert!(screen.contains(n), "expected {n:?} on screen:\n{screen}");
    }
}

/// The row (line index) on which `needle` first appears.
pub fn line_of(screen: &str, needle: &str) -> usize {
    screen
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
}
