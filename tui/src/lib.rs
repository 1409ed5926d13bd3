//! `bitsota-tui`: the terminal dashboard of the bitsota appliance.
//!
//! A pure HTTP client of the daemon (relay, sidecar, pool, appliance API), so it works on a
//! daemon anywhere and never reaches into its memory. Structured as state / update / view:
//! [`app::App`] holds the state, [`app::update`] turns events (keys, poll results, ticks)
//! into state changes and HTTP requests, [`view::view`] renders the state, and
//! [`poller::Poller`] does the HTTP on background threads.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod poller;
mod terminal;
pub mod view;

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use crossterm::event::{self as ct, Event as CtEvent};

use crate::app::{update, App, Event};
use crate::poller::Poller;

/// Base URLs of the daemon's listeners (like `http://127.0.0.1:8002`) and the relay's
/// admin token, which unlocks the Relay tab's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub relay: String,
    pub sidecar: String,
    pub pool: String,
    pub admin_token: Option<String>,
}

/// Polls are scheduled on ticks; a quarter second keeps each feed close to its 1 s period.
const TICK: Duration = Duration::from_millis(250);
/// At most ~10 redraws per second.
const FRAME: Duration = Duration::from_millis(100);

/// Runs the dashboard until the user quits; restores the terminal on quit, error and panic.
pub fn run_dashboard(endpoints: Endpoints) -> anyhow::Result<()> {
    let (tx, rx) = channel();
    let poller = Poller::spawn(&endpoints, tx)?;
    let mut app = App::new(endpoints.admin_token.is_some());
    let mut term = terminal::Guard::enter()?;
    run_loop(&mut term, &mut app, &poller, &rx)
    // `term` drops here, restoring the terminal whatever `run_loop` returned.
}

fn run_loop(
    term: &mut terminal::Guard,
    app: &mut App,
    poller: &Poller,
    rx: &Receiver<Event>,
) -> anyhow::Result<()> {
    let dispatch = |app: &mut App, ev: Event| {
        for req in update(app, ev) {
            poller.send(req);
        }
    };
    let mut next_tick = Instant::now();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    while !app.quit {
        let now = Instant::now();
        if now >= next_tick {
            dispatch(app, Event::Tick(now));
            next_tick = now + TICK;
        }
        while let Ok(ev) = rx.try_recv() {
            dispatch(app, ev);
            dirty = true;
        }
        if dirty && last_draw.map_or(true, |t| now.duration_since(t) >= FRAME) {
            term.terminal.draw(|f| view::view(app, f))?;
            last_draw = Some(now);
            dirty = false;
        }
        // Wait for input, but wake up for the next tick or a pending redraw.
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(FRAME);
        if ct::poll(wait)? {
            match ct::read()? {
                CtEvent::Key(k) => {
                    dispatch(app, Event::Key(k));
                    dirty = true;
                }
                CtEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(())
}
