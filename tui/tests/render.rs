//! Each tab rendered from recorded daemon responses, at 80×24 and 200×60.

mod common;

use bitsota_tui::app::{update, App, Event, Feed, FetchError, Get, Tab};
use common::*;
use crossterm::event::KeyCode;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

fn on_tab(tab: Tab, token: bool) -> App {
    let mut app = loaded_app(token);
    app.tab = tab;
    app
}

#[test]
fn header_and_tab_bar() {
    let app = loaded_app(true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        let first = s.lines().next().unwrap();
        for svc in ["relay ● up", "sidecar ● up", "pool ● up"] {
            assert!(first.contains(svc), "{svc} missing from header {first:?}");
        }
        assert_shows(
            &s,
            &[
                "1 Mining",
                "2 Candidates",
                "3 Validators",
                "4 SOTA",
                "5 Pool",
                "6 Relay",
            ],
        );
    }
}

#[test]
fn mining_tab() {
    let app = on_tab(Tab::Mining, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "Miner",
                "running",
                "run-7f3a9c",
                "scalar_linear",
                "baseline",
                "1234",
                "5321",
                "0.930000",
                "children/s",
                // the newest log line is in the tail
                "[pool] submit_lease ok=true",
            ],
        );
        let sub = s.lines().find(|l| l.contains("Submissions")).unwrap();
        assert!(sub.contains('3'), "{sub}");
        let local = s.lines().find(|l| l.contains("Local SOTA")).unwrap();
        assert!(local.contains("0.915000"), "{local}");
        // Global SOTA is the relay's threshold.
        let global = s.lines().find(|l| l.contains("Global SOTA")).unwrap();
        assert!(global.contains("0.915000"), "{global}");
    }
    // The tall screen shows the whole log, oldest line included.
    assert_shows(&render(&app, 200, 60), &["Iter 0100: engine_best=0.812345"]);
}

/// When the task's SOTA is at its ceiling the tab says so and names the next task.
#[test]
fn mining_tab_says_when_the_task_is_solved() {
    let mut app = on_tab(Tab::Mining, true);
    let miner = &mut app.appliance.as_mut().unwrap().miner;
    miner.ceiling = Some(bitsota_tui::api::Ceiling {
        sota: Some(0.9999997),
        next_task: Some("mnist_binary".into()),
    });
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(&s, &["SOTA 0.9999997 is at the task's ceiling"]);
    }
    assert_shows(
        &render(&app, 200, 60),
        &["Mining goes on until you stop it (s). Next task: press t for mnist_binary"],
    );
    // Not at the ceiling: no note.
    let plain = render(&on_tab(Tab::Mining, true), 200, 60);
    assert!(!plain.contains("ceiling"), "{plain}");
}

/// Pool mode shows the pool's progress instead of generations, and never `-0`.
#[test]
fn mining_tab_in_pool_mode_shows_pool_progress() {
    let mut app = on_tab(Tab::Mining, true);
    let miner = &mut app.appliance.as_mut().unwrap().miner;
    miner.task_type = Some("pool".into());
    miner.generation = None;
    miner.children_per_sec = Some(-0.0);
    miner.pool = Some(bitsota_tui::api::PoolProgress {
        evolutions_submitted: 4,
        evaluations_submitted: 2,
        leases_submitted: 0,
        current: Some("evaluate batch 9".into()),
        reputation: Some(1.25),
    });
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "4 evol., 2 eval., 0 leases",
                "evaluate batch 9",
                "Reputation",
                "1.250000",
            ],
        );
        assert!(!s.contains("Generation") && !s.contains("-0"), "{s}");
    }
    // A local run's rate of -0.0 (an empty sum) prints as 0.
    let mut app = on_tab(Tab::Mining, true);
    app.appliance.as_mut().unwrap().miner.children_per_sec = Some(-0.0);
    let s = render(&app, 80, 24);
    let line = s.lines().find(|l| l.contains("Children/s")).unwrap();
    assert!(line.contains(" 0 ") && !line.contains("-0"), "{line}");
}

#[test]
fn mining_tab_idle_shows_next_start_settings() {
    let mut app = App::new(false);
    let idle = bitsota_tui::app::Payload::decode(
        Feed::ApplianceStatus,
        &fixture("appliance_status_idle.json"),
    );
    update(&mut app, Event::Polled(get(Feed::ApplianceStatus), idle));
    key(&mut app, KeyCode::Char('t'));
    let s = render(&app, 80, 24);
    assert_shows(&s, &["mnist_binary (on start)", "pool – disabled"]);
}

#[test]
fn candidates_tab_newest_first_and_dsl_popup() {
    let mut app = on_tab(Tab::Candidates, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "Candidates (3 verified)",
                "Score",
                "Worker",
                "Step",
                "Submitted",
                "0.930000",
                "0.908700",
                "yes",
                "no",
            ],
        );
        assert!(line_of(&s, "0.930000") < line_of(&s, "0.908700"));
        assert!(line_of(&s, "0.908700") < line_of(&s, "0.915000"));
        // The newest row is selected.
        assert!(s
            .lines()
            .nth(line_of(&s, "0.930000"))
            .unwrap()
            .contains('▶'));
    }
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(&s, &["Candidate #1", "0.908700", "s1 = x[1] + x[2]"]);
        if w > 100 {
            assert_shows(&s, &["scalar_linear, input_dim 16 — Esc closes"]);
        }
    }
    key(&mut app, KeyCode::Esc);
    let s = render(&app, 80, 24);
    assert!(!s.contains("s1 = x[1] + x[2]"), "DSL still open:\n{s}");
}

#[test]
fn validators_tab() {
    let app = on_tab(Tab::Validators, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "validator-1",
                "validator-2",
                "412",
                "4/5",
                "3/5",
                "1 blacklist votes",
                "finalized",
                "blacklist vote recorded",
                "rejected",
                "burn 90%",
                "winner 10%",
            ],
        );
        // Newest vote first: the 05:22:10 rejection above the 05:19:58 recording.
        assert!(line_of(&s, "05:22:10") < line_of(&s, "05:19:58"));
    }
    // Wide screens show every counter.
    assert_shows(&render(&app, 200, 60), &["Sig fail", "Parse fail", "Dupe"]);
}

/// Names are never cut (at 150 columns every counter fitted only by shrinking the name
/// column to `validator-`); narrower terminals drop the least useful columns instead.
#[test]
fn validators_tab_keeps_names_whole_at_any_width() {
    let app = on_tab(Tab::Validators, true);
    for (w, h) in [(80, 24), (150, 45), (200, 60)] {
        let s = render(&app, w, h);
        for name in ["validator-1", "validator-2"] {
            let rows = s.lines().filter(|l| l.contains(name)).count();
            // The counters row, the weights line and its votes.
            assert!(rows >= 3, "{w}x{h}: {name} whole on {rows} lines:\n{s}");
        }
        // The votes, what became of them, and the SOTA are kept at every width.
        let head = s.lines().find(|l| l.contains("Validator ")).unwrap();
        for col in ["Votes", "Late", "Final.", "SOTA"] {
            assert!(head.contains(col), "{w}x{h}: no {col} in {head:?}");
        }
    }
    assert_shows(&render(&app, 150, 45), &["Sig fail", "Parse fail", "Seen"]);
    assert!(!render(&app, 80, 24).contains("Seen"));
}

/// The second validator's vote after consensus 1 finalized is labelled late, not as a
/// failure; other refusals still read "rejected".
#[test]
fn a_late_vote_is_labelled_for_what_it_is() {
    let app = on_tab(Tab::Validators, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        let late = s.lines().find(|l| l.contains("05:20:02")).unwrap();
        assert!(late.contains("late, already finalized"), "{late}");
        assert!(!late.contains("rejected"), "{late}");
    }
    assert_shows(
        &render(&app, 200, 60),
        &["late, already finalized: Score 0.915 is not above current SOTA 0.915"],
    );
}

#[test]
fn sota_tab() {
    let app = on_tab(Tab::Sota, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "Threshold 0.915000",
                "3 events",
                "SOTA threshold over time",
                "Miner",
                "Decision",
                "0.871000",
                "0.812500",
                "2026-11-29 05:12:44",
                "5GrwvaEF…",
            ],
        );
        assert!(
            line_of(&s, "05:20:01") < line_of(&s, "05:03:09"),
            "newest first"
        );
    }
}

#[test]
fn pool_tab() {
    let app = on_tab(Tab::Pool, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "window 2991548",
                "5m 03s",
                "pending_evaluations: 5",
                "7 verified, best 0.930000",
                "Leaderboard · 3 local evaluators",
                "epoch 412 closes in 1m 15s",
                "alerts: evaluation backlog",
                "Leaderboard",
                "42.50",
                "Last epochs",
                "412",
                "750000000",
                "[pool] submit_lease ok=true",
            ],
        );
        assert!(
            line_of(&s, "750000000") < line_of(&s, "1000000000"),
            "newest epoch first"
        );
    }
}

#[test]
fn relay_tab_with_and_without_token() {
    let app = on_tab(Tab::Relay, true);
    for (w, h) in SIZES {
        let s = render(&app, w, h);
        assert_shows(
            &s,
            &[
                "uptime 1h 02m 03s",
                "validators 2",
                "1 min",
                "24 h",
                "3587",
                "8840",
            ],
        );
        let row = s.lines().find(|l| l.contains("validator ")).unwrap();
        assert!(row.contains("60") && row.contains("3587"), "{row}");
    }
    let app = on_tab(Tab::Relay, false);
    assert_shows(&render(&app, 80, 24), &["need the admin token"]);
}

#[test]
fn relay_tab_shows_rejected_token() {
    let mut app = App::new(true);
    app.tab = Tab::Relay;
    let err = FetchError::Http {
        status: 401,
        detail: "Invalid admin token".into(),
    };
    update(&mut app, Event::Polled(get(Feed::AdminStatus), Err(err)));
    assert_shows(
        &render(&app, 80, 24),
        &["HTTP 401: Invalid admin token", "relay ● up"],
    );
}

#[test]
fn help_overlay() {
    let mut app = loaded_app(true);
    key(&mut app, KeyCode::Char('?'));
    for (w, h) in SIZES {
        assert_shows(
            &render(&app, w, h),
            &["Help", "start / stop mining", "cycle task type"],
        );
    }
    key(&mut app, KeyCode::Char('x'));
    assert!(!render(&app, 80, 24).contains("start / stop mining"));
}

#[test]
fn unreachable_sidecar_is_shown_not_fatal() {
    let mut app = App::new(false);
    let down = FetchError::Unreachable("Connection refused".into());
    update(
        &mut app,
        Event::Polled(get(Feed::ApplianceStatus), Err(down)),
    );
    for tab in Tab::ALL {
        app.tab = tab;
        for (w, h) in SIZES {
            let s = render(&app, w, h);
            assert_shows(
                &s,
                &["sidecar ✗ unreachable (retrying)", "relay … connecting"],
            );
        }
    }
    app.tab = Tab::Mining;
    assert_shows(&render(&app, 80, 24), &["sidecar unreachable — retrying"]);
}

#[test]
fn tiny_terminal_does_not_panic() {
    let mut app = loaded_app(true);
    key(&mut app, KeyCode::Char('?'));
    for tab in Tab::ALL {
        app.tab = tab;
        for (w, h) in [(1, 1), (10, 5), (20, 8)] {
            render(&app, w, h);
        }
    }
}

fn get(feed: Feed) -> Get {
    Get {
        feed,
        run_id: None,
        cursor: None,
    }
}

#[test]
fn sota_chart_extends_to_a_newer_threshold() {
    let mut app = on_tab(Tab::Sota, true);
    let before = render(&app, 120, 40);
    assert_shows(&before, &["0.9253"]); // top of the axis: last event 0.915 plus padding
    let newer = r#"{"sota_threshold":0.95,"updated_at":"2026-11-29T05:30:00Z"}"#;
    let p = bitsota_tui::app::Payload::decode(Feed::SotaThreshold, newer);
    update(&mut app, Event::Polled(get(Feed::SotaThreshold), p));
    let after = render(&app, 120, 40);
    assert_shows(&after, &["Threshold 0.950000", "0.9637", "11-29 05:30"]);
}

#[test]
fn a_degraded_daemon_is_named_in_red_in_the_header() {
    let mut status: serde_json::Value =
        serde_json::from_str(&fixture("appliance_status_idle.json")).unwrap();
    status["health"] = serde_json::json!({
        "status": "degraded",
        "reasons": ["low disk: the data directory /d has 0.5 MB free"],
    });
    let mut app = App::new(false);
    let payload = bitsota_tui::app::Payload::decode(Feed::ApplianceStatus, &status.to_string());
    update(&mut app, Event::Polled(get(Feed::ApplianceStatus), payload));
    let backend = ratatui::backend::TestBackend::new(200, 10);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal.draw(|f| bitsota_tui::view::view(&app, f)).unwrap();
    let buf = terminal.backend().buffer();
    let first: String = (0..200).map(|x| buf[(x, 0)].symbol().to_string()).collect();
    let at = first.find("⚠ degraded: low disk").expect(&first);
    let x = first[..at].chars().count() as u16;
    assert_eq!(buf[(x, 0)].fg, ratatui::style::Color::Red);
    // Healthy: nothing is said.
    status["health"] = serde_json::json!({"status": "healthy", "reasons": []});
    let payload = bitsota_tui::app::Payload::decode(Feed::ApplianceStatus, &status.to_string());
    update(&mut app, Event::Polled(get(Feed::ApplianceStatus), payload));
    assert!(!render(&app, 200, 10).contains("degraded"));
}
