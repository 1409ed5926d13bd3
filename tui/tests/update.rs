//! The update function without a terminal: keys → state → requests, poll scheduling,
//! cursor handling and reachability.

mod common;

use std::time::{Duration, Instant};

use bitsota_tui::app::{
    update, Action, App, Event, Feed, FetchError, Get, Payload, Reach, Request, Service,
    StartMining, Tab, TASK_TYPES,
};
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn gets(reqs: &[Request]) -> Vec<Get> {
    reqs.iter()
        .filter_map(|r| match r {
            Request::Get(g) => Some(g.clone()),
            _ => None,
        })
        .collect()
}

fn feeds(reqs: &[Request]) -> Vec<Feed> {
    gets(reqs).into_iter().map(|g| g.feed).collect()
}

fn answer(app: &mut App, reqs: Vec<Request>, f: impl Fn(&Get) -> Result<Payload, FetchError>) {
    for g in gets(&reqs) {
        let r = f(&g);
        update(app, Event::Polled(g, r));
    }
}

fn running_app() -> App {
    let mut app = App::new(false);
    let t0 = Instant::now();
    poll_round(&mut app, t0, recorded);
    app
}

#[test]
fn first_tick_polls_every_feed_that_needs_no_run_or_token() {
    let mut app = App::new(false);
    let f = feeds(&update(&mut app, Event::Tick(Instant::now())));
    for must in [
        Feed::ApplianceStatus,
        Feed::SidecarState,
        Feed::Validators,
        Feed::SotaThreshold,
        Feed::SotaEvents,
        Feed::PoolHealth,
        Feed::Leaderboard,
        Feed::PoolMonitor,
        Feed::Epochs,
    ] {
        assert!(f.contains(&must), "{must:?} not polled: {f:?}");
    }
    // No run known yet, no admin token: those feeds wait.
    for never in [Feed::Logs, Feed::Candidates, Feed::AdminStatus] {
        assert!(!f.contains(&never), "{never:?} polled too early");
    }
    let mut with_token = App::new(true);
    let f = feeds(&update(&mut with_token, Event::Tick(Instant::now())));
    assert!(f.contains(&Feed::AdminStatus));
}

#[test]
fn each_feed_at_most_once_per_second_and_never_twice_in_flight() {
    let mut app = App::new(true);
    let t0 = Instant::now();
    let first = update(&mut app, Event::Tick(t0));
    assert!(!first.is_empty());
    // Unanswered: nothing is re-sent, however much time passes.
    assert!(update(&mut app, Event::Tick(t0 + Duration::from_millis(500))).is_empty());
    assert!(update(&mut app, Event::Tick(t0 + Duration::from_secs(5))).is_empty());
    answer(&mut app, first, recorded);
    // Answered at once, but the second is not over: still nothing.
    let t1 = t0 + Duration::from_millis(900);
    let early = update(&mut app, Event::Tick(t1));
    assert!(
        !feeds(&early).contains(&Feed::SotaThreshold),
        "re-polled within a second: {early:?}"
    );
    let again = update(&mut app, Event::Tick(t0 + Duration::from_secs(1)));
    assert!(feeds(&again).contains(&Feed::SotaThreshold));
    let n = feeds(&again)
        .iter()
        .filter(|f| **f == Feed::SotaThreshold)
        .count();
    assert_eq!(n, 1);
}

#[test]
fn cursor_feeds_follow_the_run_and_advance_with_the_returned_cursor() {
    let mut app = App::new(false);
    let t0 = Instant::now();
    poll_round(&mut app, t0, recorded);
    assert_eq!(app.run_id.as_deref(), Some("run-7f3a9c"));

    let reqs = update(&mut app, Event::Tick(t0 + Duration::from_secs(1)));
    let logs = gets(&reqs)
        .into_iter()
        .find(|g| g.feed == Feed::Logs)
        .expect("logs polled");
    assert_eq!(logs.cursor, Some(0));
    assert_eq!(logs.run_id.as_deref(), Some("run-7f3a9c"));
    assert!(logs.query().contains(&("cursor", "0".to_string())));
    assert!(logs.query().contains(&("run_id", "run-7f3a9c".to_string())));
    answer(&mut app, reqs, recorded);
    assert_eq!(app.cursors(), (3, 3));
    assert_eq!(app.logs.len(), 3);
    assert_eq!(app.candidates.len(), 3);

    let reqs = update(&mut app, Event::Tick(t0 + Duration::from_secs(2)));
    let logs = gets(&reqs)
        .into_iter()
        .find(|g| g.feed == Feed::Logs)
        .unwrap();
    assert_eq!(
        logs.cursor,
        Some(3),
        "the next page starts at the returned cursor"
    );
    answer(&mut app, reqs, recorded);
    assert_eq!(app.cursors(), (5, 3));
    assert_eq!(app.logs.len(), 5);
    assert!(app
        .logs
        .back()
        .unwrap()
        .text
        .starts_with("[pool] submit_lease"));
}

#[test]
fn replayed_items_are_not_duplicated() {
    let mut app = App::new(false);
    app.tab = Tab::Candidates;
    let t0 = Instant::now();
    poll_round(&mut app, t0, recorded);
    // A daemon that ignores the cursor answers page 1 every time.
    let asked = std::cell::Cell::new(0);
    for s in 1..4 {
        poll_round(&mut app, t0 + Duration::from_secs(s), |g| match g.feed {
            Feed::Candidates => {
                asked.set(asked.get() + 1);
                Payload::decode(g.feed, &fixture("candidates.json"))
            }
            _ => recorded(g),
        });
    }
    assert_eq!(
        asked.get(),
        3,
        "the visible Candidates tab polls every second"
    );
    assert_eq!(app.candidates.len(), 3);
}

#[test]
fn a_new_run_restarts_logs_and_drops_late_pages_of_the_old_one() {
    let mut app = App::new(false);
    let t0 = Instant::now();
    for s in 0..2 {
        poll_round(&mut app, t0 + Duration::from_secs(s), recorded);
    }
    assert_eq!(app.cursors(), (3, 3));
    let old_logs = Get {
        feed: Feed::Logs,
        run_id: app.run_id.clone(),
        cursor: Some(3),
    };

    let mut state: serde_json::Value = serde_json::from_str(&fixture("state.json")).unwrap();
    state["run_id"] = "run-new".into();
    let payload = Payload::decode(Feed::SidecarState, &state.to_string());
    update(
        &mut app,
        Event::Polled(
            Get {
                feed: Feed::SidecarState,
                run_id: None,
                cursor: None,
            },
            payload,
        ),
    );
    assert_eq!(app.run_id.as_deref(), Some("run-new"));
    assert_eq!(app.cursors(), (0, 0));
    assert!(app.logs.is_empty() && app.candidates.is_empty());

    // A page requested for the old run arrives late: ignored.
    let late = Payload::decode(Feed::Logs, &fixture("logs_page2.json"));
    update(&mut app, Event::Polled(old_logs, late));
    assert!(app.logs.is_empty());
    assert_eq!(app.cursors(), (0, 0));
}

#[test]
fn unreachable_then_recovery() {
    let mut app = App::new(false);
    let t0 = Instant::now();
    poll_round(&mut app, t0, |g| match g.feed.service() {
        Service::Sidecar => Err(FetchError::Unreachable("Connection refused".into())),
        _ => recorded(g),
    });
    assert!(matches!(app.reach(Service::Sidecar), Reach::Down(_)));
    assert_eq!(app.reach(Service::Relay), &Reach::Up);
    assert!(render(&app, 80, 24).contains("sidecar ✗ unreachable (retrying)"));

    // Still retried a second later, and the daemon is back.
    let reqs = update(&mut app, Event::Tick(t0 + Duration::from_secs(1)));
    assert!(feeds(&reqs).contains(&Feed::ApplianceStatus));
    answer(&mut app, reqs, recorded);
    assert_eq!(app.reach(Service::Sidecar), &Reach::Up);
    let s = render(&app, 80, 24);
    assert!(
        s.contains("sidecar ● up") && s.contains("run-7f3a9c"),
        "{s}"
    );
}

#[test]
fn http_errors_keep_the_service_up_and_report_the_detail() {
    let mut app = App::new(true);
    let err = FetchError::Http {
        status: 401,
        detail: "Invalid admin token".into(),
    };
    update(
        &mut app,
        Event::Polled(
            Get {
                feed: Feed::AdminStatus,
                run_id: None,
                cursor: None,
            },
            Err(err),
        ),
    );
    assert_eq!(app.reach(Service::Relay), &Reach::Up);
    assert_eq!(
        app.feed_error(Feed::AdminStatus),
        Some("HTTP 401: Invalid admin token")
    );
}

#[test]
fn undecodable_body_is_an_error_not_a_panic() {
    assert!(matches!(
        Payload::decode(Feed::SidecarState, "<html>oops</html>"),
        Err(FetchError::Decode(_))
    ));
    // Nulls and missing fields are tolerated.
    let p = Payload::decode(Feed::ApplianceStatus, r#"{"miner":null,"services":null}"#).unwrap();
    assert!(matches!(p, Payload::ApplianceStatus(s) if !s.miner.running));
}

#[test]
fn pool_disabled_in_the_appliance_is_not_polled() {
    let mut app = App::new(false);
    let idle = Payload::decode(
        Feed::ApplianceStatus,
        &fixture("appliance_status_idle.json"),
    );
    update(
        &mut app,
        Event::Polled(
            Get {
                feed: Feed::ApplianceStatus,
                run_id: None,
                cursor: None,
            },
            idle,
        ),
    );
    assert_eq!(app.reach(Service::Pool), &Reach::Disabled);
    let reqs = update(&mut app, Event::Tick(Instant::now()));
    assert!(
        feeds(&reqs).iter().all(|f| f.service() != Service::Pool),
        "{reqs:?}"
    );
}

#[test]
fn s_starts_with_the_chosen_settings_then_stops() {
    let mut app = App::new(false);
    let idle = Payload::decode(
        Feed::ApplianceStatus,
        &fixture("appliance_status_idle.json"),
    );
    update(
        &mut app,
        Event::Polled(
            Get {
                feed: Feed::ApplianceStatus,
                run_id: None,
                cursor: None,
            },
            idle,
        ),
    );
    key(&mut app, KeyCode::Char('t'));
    key(&mut app, KeyCode::Char('t'));
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Char('+'));
    key(&mut app, KeyCode::Char('f'));
    let reqs = key(&mut app, KeyCode::Char('s'));
    assert_eq!(
        reqs,
        vec![Request::StartMining(StartMining {
            task_type: "cifar10_binary".into(),
            engine: "archive".into(),
            workers: 3,
            start_from_sota: true,
        })]
    );
    // A second press before the answer sends nothing.
    assert!(key(&mut app, KeyCode::Char('s')).is_empty());
    update(
        &mut app,
        Event::Acted(
            Action::Start,
            Err(FetchError::Http {
                status: 409,
                detail: "already mining".into(),
            }),
        ),
    );
    assert_eq!(
        app.message.as_deref(),
        Some("start failed: HTTP 409: already mining")
    );
    assert!(render(&app, 80, 24).contains("start failed: HTTP 409: already mining"));

    let mut app = running_app();
    assert!(app.mining());
    assert_eq!(key(&mut app, KeyCode::Char('s')), vec![Request::StopMining]);
    update(&mut app, Event::Acted(Action::Stop, Ok("stopped".into())));
    assert_eq!(app.message.as_deref(), Some("mining stopped"));
}

#[test]
fn t_e_and_workers_cycle_and_clamp() {
    let mut app = App::new(false);
    let mut seen = vec![app.settings.task_type()];
    for _ in 0..TASK_TYPES.len() {
        key(&mut app, KeyCode::Char('t'));
        seen.push(app.settings.task_type());
    }
    assert_eq!(
        seen,
        [
            "scalar_linear",
            "mnist_binary",
            "cifar10_binary",
            "pool",
            "pool_lease",
            "scalar_linear"
        ]
    );
    key(&mut app, KeyCode::Char('e'));
    assert_eq!(app.settings.engine(), "archive");
    key(&mut app, KeyCode::Char('e'));
    assert_eq!(app.settings.engine(), "baseline");
    let w = app.settings.workers;
    key(&mut app, KeyCode::Char('+'));
    assert_eq!(app.settings.workers, w + 1);
    for _ in 0..10 {
        key(&mut app, KeyCode::Char('-'));
    }
    assert_eq!(app.settings.workers, 1, "never below one worker");
}

#[test]
fn settings_follow_the_running_miner_until_edited() {
    let mut app = App::new(false);
    let mut st: serde_json::Value =
        serde_json::from_str(&fixture("appliance_status_running.json")).unwrap();
    st["miner"]["task_type"] = "mnist_binary".into();
    st["miner"]["engine"] = "archive".into();
    st["miner"]["workers"] = 6.into();
    let get = Get {
        feed: Feed::ApplianceStatus,
        run_id: None,
        cursor: None,
    };
    update(
        &mut app,
        Event::Polled(get.clone(), Payload::decode(get.feed, &st.to_string())),
    );
    assert_eq!(
        (
            app.settings.task_type(),
            app.settings.engine(),
            app.settings.workers
        ),
        ("mnist_binary", "archive", 6)
    );
    key(&mut app, KeyCode::Char('-'));
    st["miner"]["workers"] = 9.into();
    update(
        &mut app,
        Event::Polled(get.clone(), Payload::decode(get.feed, &st.to_string())),
    );
    assert_eq!(
        app.settings.workers, 5,
        "the user's edit wins over later polls"
    );
}

#[test]
fn children_per_second_history_records_each_poll() {
    let mut app = running_app();
    assert_eq!(
        app.rate_history.iter().copied().collect::<Vec<_>>(),
        vec![5321]
    );
    let idle = Payload::decode(
        Feed::ApplianceStatus,
        &fixture("appliance_status_idle.json"),
    );
    update(
        &mut app,
        Event::Polled(
            Get {
                feed: Feed::ApplianceStatus,
                run_id: None,
                cursor: None,
            },
            idle,
        ),
    );
    assert_eq!(
        app.rate_history.iter().copied().collect::<Vec<_>>(),
        vec![5321, 0]
    );
}

#[test]
fn tabs_help_and_quit_keys() {
    let mut app = App::new(false);
    for (c, tab) in ('1'..='6').zip(Tab::ALL) {
        key(&mut app, KeyCode::Char(c));
        assert_eq!(app.tab, tab);
    }
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Mining, "Tab wraps around");
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.tab, Tab::Relay);
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    key(&mut app, KeyCode::Char('3'));
    assert!(!app.help, "any key closes help");
    assert_eq!(app.tab, Tab::Relay, "the closing key does nothing else");
    assert!(!app.quit);
    update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
    let mut app = App::new(false);
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn candidate_selection_and_dsl() {
    let mut app = loaded_app(false);
    app.tab = Tab::Candidates;
    assert_eq!(app.selected_candidate(), Some(2), "newest selected");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected_candidate(), Some(0), "stops at the oldest");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected_candidate(), Some(1));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.dsl_open, Some(1));
    // While the DSL is open, keys scroll it instead of switching tabs or starting mining.
    assert!(key(&mut app, KeyCode::Char('s')).is_empty());
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.tab, Tab::Candidates);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.dsl_open, None);
    // Enter elsewhere does not open anything.
    app.tab = Tab::Mining;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.dsl_open, None);
}

#[test]
fn hidden_tabs_poll_slowly_and_the_visible_one_every_second() {
    let mut app = App::new(true);
    let t0 = Instant::now();
    poll_round(&mut app, t0, recorded);
    let at = |s: u64| t0 + Duration::from_secs(s);
    let polled = |app: &mut App, t: Instant| {
        let reqs = update(app, Event::Tick(t));
        let f = feeds(&reqs);
        answer(app, reqs, recorded);
        f
    };
    // Mining tab: the header/Mining feeds every second, the others not within 5 s.
    let f = polled(&mut app, at(1));
    assert!(
        f.contains(&Feed::ApplianceStatus)
            && f.contains(&Feed::SotaThreshold)
            && f.contains(&Feed::PoolHealth)
    );
    assert!(
        !f.contains(&Feed::Validators)
            && !f.contains(&Feed::AdminStatus)
            && !f.contains(&Feed::Epochs)
    );
    // Switching to the Validators tab makes its feed due at the next tick.
    key(&mut app, KeyCode::Char('3'));
    let f = polled(&mut app, at(2));
    assert!(f.contains(&Feed::Validators), "{f:?}");
    assert!(!f.contains(&Feed::AdminStatus));
    let f = polled(&mut app, at(3));
    assert!(f.contains(&Feed::Validators), "visible: every second");
    // Hidden feeds are still refreshed, every 5 s.
    let f = polled(&mut app, at(5));
    assert!(
        f.contains(&Feed::AdminStatus) && f.contains(&Feed::Epochs),
        "{f:?}"
    );
}
