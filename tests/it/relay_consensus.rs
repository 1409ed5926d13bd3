//! SOTA consensus over HTTP: the vote-sequence vector and the window vectors of relay.md §4.

use crate::common;
use crate::relay_support;

use bitsota::keys::Keypair;
use common::{Daemon, Opts};
use relay_support::{Api, As};
use serde_json::json;

fn consensus_daemon(votes: &str, m: &str, t2: &str, sota: &str) -> (Daemon, Api) {
    let d = Daemon::start(
        Opts::default()
            .env("SOTA_CONSENSUS_VOTES", votes)
            .env("SOTA_ALIGNMENT_MOD", m)
            .env("SOTA_T2_BLOCKS", t2)
            .env("DEFAULT_SOTA_THRESHOLD", sota),
    );
    let api = Api::new(&d.relay);
    (d, api)
}

#[test]
fn the_vote_sequence_vector() {
    let (_d, api) = consensus_daemon("2", "100", "1000", "0.5");
    let (v1, v2, v3) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let (m1, m2) = (Keypair::generate().ss58(), Keypair::generate().ss58());

    let a = api.vote(&v1, &m1, 0.6, 150);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["status"], "vote_recorded");
    assert_eq!(
        (
            a.body["votes_for_candidate"].as_u64(),
            a.body["votes_needed"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(a.body["current_sota"], 0.5);
    assert_eq!(a.body["finalized_event"], serde_json::Value::Null);

    assert_eq!(api.vote(&v1, &m1, 0.6, 160).body["status"], "already_voted");
    let worse = api.vote(&v1, &m2, 0.55, 170);
    assert_eq!(worse.status, 400);
    assert_eq!(
        worse.detail(),
        "Validator has already voted this round (existing vote is better or equal)"
    );
    assert_eq!(api.vote(&v1, &m2, 0.7, 180).body["status"], "vote_updated");
    assert_eq!(
        api.vote(&v1, &m1, 0.55, 250).body["status"],
        "vote_recorded"
    );

    let fin = api.vote(&v2, &m1, 0.55, 260);
    assert_eq!(fin.status, 200);
    assert_eq!(fin.body["status"], "finalized");
    assert_eq!(fin.body["votes_for_candidate"], 2);
    assert_eq!(fin.body["current_sota"], 0.55);
    let ev = &fin.body["finalized_event"];
    assert_eq!(ev["miner_hotkey"], m1.as_str());
    assert_eq!(ev["score"], 0.55);
    // round_half_even(0.55 × 1e18) with the product in f64, as the reference computes it.
    assert_eq!(ev["score_int"], 550_000_000_000_000_064i64);
    assert_eq!(
        (
            ev["decision_block"].as_u64(),
            ev["start_block"].as_u64(),
            ev["end_block"].as_u64()
        ),
        (Some(260), Some(400), Some(1400))
    );
    assert_eq!(
        (ev["alignment_mod"].as_u64(), ev["t2_blocks"].as_u64()),
        (Some(100), Some(1000))
    );
    assert_eq!(ev["id"], 1);
    assert!(ev["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(api.sota(), 0.55);

    let late = api.vote(&v3, &m1, 0.55, 270);
    assert_eq!(late.status, 400);
    assert_eq!(late.detail(), "Score 0.55 is not above current SOTA 0.55");
    // No pending votes are left: V1's earlier vote for M2 at 0.7 was cleared, so V2
    // voting M2 0.7 now starts from one vote.
    let fresh = api.vote(&v2, &m2, 0.7, 300);
    assert_eq!(fresh.body["status"], "vote_recorded");
    assert_eq!(fresh.body["votes_for_candidate"], 1);

    // Input validation.
    assert_eq!(
        api.vote(&v3, &m1, 0.9, 0).detail(),
        "seen_block must be > 0"
    );
    assert_eq!(api.vote(&v3, "short", 0.9, 5).status, 400);
    let missing = api.post(
        "/sota/vote",
        As::Validator(&v3),
        &json!({"miner_hotkey": m1, "score": 0.9}),
    );
    assert_eq!(missing.status, 422);
    let wrong = api.post(
        "/sota/vote",
        As::Validator(&v3),
        &json!({"miner_hotkey": m1, "score": "high", "seen_block": 5}),
    );
    assert_eq!(wrong.status, 422);
    let neg = api.post(
        "/sota/vote",
        As::Validator(&v3),
        &json!({"miner_hotkey": m1, "score": 0.9, "seen_block": -4}),
    );
    assert_eq!(neg.status, 400);

    // Events: validator list and public pagination.
    let events = api.get("/sota/events", As::Validator(&v3));
    assert_eq!(events.body.as_array().unwrap().len(), 1);
    let public = api.get("/sota-events", As::Nobody);
    assert_eq!(public.body["total"], 1);
    assert_eq!(public.body["total_pages"], 1);
    assert_eq!(public.body["results"][0]["miner_hotkey"], m1.as_str());
    assert_eq!(public.body["results"][0]["score"], 0.55);
}

/// (decision, mod, t2_blocks) → (start, end, t2), finalizing with one vote at
/// `seen_block = decision`.
fn check_window(api: &Api, score: f64, decision: u64, expect: (u64, u64, u64)) {
    let v = Keypair::generate();
    let m = Keypair::generate().ss58();
    let r = api.vote(&v, &m, score, decision);
    assert_eq!(r.body["status"], "finalized", "{:?}", r.body);
    let ev = &r.body["finalized_event"];
    let got = (
        ev["start_block"].as_u64().unwrap(),
        ev["end_block"].as_u64().unwrap(),
        ev["t2_blocks"].as_u64().unwrap(),
    );
    assert_eq!(got, expect, "decision {decision}");
    assert_eq!(ev["decision_block"].as_u64(), Some(decision));
}

#[test]
fn the_window_vectors() {
    let (_d, api) = consensus_daemon("1", "100", "1000", "0");
    check_window(&api, 0.1, 12345, (12500, 13500, 1000));
    check_window(&api, 0.2, 12400, (12500, 13500, 1000));
    // Events sort by start_block descending, ties newest first; pagination by creation.
    let (_d2, api2) = consensus_daemon("1", "360", "1000", "0");
    check_window(&api2, 0.1, 5000, (5400, 6480, 1080));
    let (_d3, api3) = consensus_daemon("1", "100", "50", "0");
    check_window(&api3, 0.1, 5000, (5100, 5300, 200));
    let (_d4, api4) = consensus_daemon("1", "1", "1000", "0");
    check_window(&api4, 0.1, 1, (2, 1002, 1000));

    let v = Keypair::generate();
    let list = api.get("/sota/events?limit=1", As::Validator(&v));
    let rows = list.body.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["score"], 0.2);
    let page = api.get("/sota-events?page=2&page_size=1", As::Nobody);
    assert_eq!(page.body["total_pages"], 2);
    assert_eq!(page.body["results"][0]["score"], 0.1);
}

#[test]
fn reference_env_names_are_honoured() {
    let d = Daemon::start(
        Opts::default()
            .env("SOTA_CONSENSUS_VOTES", "1")
            .env("SOTA_ALIGNMENT_MOD", "10")
            .env("SOTA_T2_INTERVALS", "3")
            .env("SOTA_MIN_T2_INTERVALS", "1")
            .env("SOTA_ACTIVATION_DELAY_INTERVALS", "2")
            .env("ADMIN_DASHBOARD_USERNAME", "boss")
            .env("ADMIN_DASHBOARD_PASSWORD", "pw")
            .env("BITSOTA_TEST_INVITE_CODE", "MYCODE01"),
    );
    let api = Api::new(&d.relay);
    // decision 15 → ceil 20, + 2 intervals of 10 → start 40; 3 intervals → end 70.
    check_window(&api, 0.3, 15, (40, 70, 30));
    let status = api.send(
        api.client
            .get(api.url("/admin/status"))
            .basic_auth("boss", Some("pw")),
    );
    assert_eq!(status.status, 200);
    let m = Keypair::generate();
    let link = api.post(
        "/invitation_code/link",
        As::Miner(&m),
        &json!({"code": "MYCODE01"}),
    );
    assert_eq!(link.body["data"], 1);
}
