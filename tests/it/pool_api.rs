//! The pool API over HTTP against the real daemon: every endpoint, authentication
//! failures, the documented 400/404 answers, consensus and reputation, leases and
//! windows, epochs with verifiable Merkle proofs, and persistence across a restart.

use crate::common;
use crate::pool_support;

use bitsota::keys::{pool_headers, Keypair};
use common::ledger::check_ledger;
use common::{http, poll_until, Daemon, Opts};
use pool_support::{now, send, Miner};
use serde_json::{json, Value};
use std::time::Duration;

/// A program the strict parser accepts: `s0 = dot(v0, v1)` with `v1` learned.
const GOOD_DSL: &str = "# setup\nv1 = gaussian(0.0, 0.1)\n# predict\ns0 = dot(v0, v1)\n# learn\n";

fn public_get(base: &str, path: &str) -> (u16, Value) {
    send(http().get(format!("{base}{path}")))
}

fn detail(v: &Value) -> &str {
    v["detail"].as_str().unwrap_or("")
}

fn pool_daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut o = Opts::default()
        .env("BITSOTA_POOL_SEED_FROM_RELAY", "false")
        .env("BITSOTA_POOL_FORWARD_TO_RELAY", "false")
        .env("BITSOTA_POOL_EVAL_TASK_COUNT", "4");
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Daemon::start(o)
}

/// Evolve once as `m` from the first offered parent; returns the new algorithm id.
fn evolve(m: &Miner) -> u64 {
    let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200, "{t}");
    let parent = t["algorithms"][0]["id"].as_u64().unwrap();
    let (s, r) = m.post(
        &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
        json!({"evolved_function": GOOD_DSL, "parent_functions": [{"id": parent}]}),
    );
    assert_eq!(s, 200, "{r}");
    r["algorithm_id"].as_u64().unwrap()
}

/// Request an evaluate task and score every algorithm in it with `score`.
fn evaluate(m: &Miner, score: f64) -> Vec<u64> {
    let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
    assert_eq!(s, 200, "{t}");
    let ids: Vec<u64> = t["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    let evals: Vec<Value> = ids
        .iter()
        .map(|id| json!({"algorithm_id": id, "score": score}))
        .collect();
    let (s, r) = m.post(
        &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
        json!({ "evaluations": evals }),
    );
    assert_eq!(s, 200, "{r}");
    ids
}

#[test]
fn authentication_failures_are_401() {
    let d = pool_daemon(&[]);
    let m = Miner::new(&d.pool);
    let url = format!("{}/api/v1/miners/register", d.pool);
    let c = http();
    // No headers.
    let (s, v) = send(c.post(&url).json(&json!({})));
    assert_eq!(s, 401, "{v}");
    assert!(detail(&v).contains("X-Key"), "{v}");
    // Signature by another key.
    let other = Keypair::generate();
    let mut h = pool_headers(&other, now());
    h.key = m.hotkey();
    let rb = h
        .pairs()
        .iter()
        .fold(c.post(&url), |rb, (k, v)| rb.header(*k, *v));
    let (s, v) = send(rb.json(&json!({})));
    assert_eq!((s, detail(&v)), (401, "invalid signature"));
    // Stale timestamp.
    let h = pool_headers(&m.kp, now() - 1000);
    let rb = h
        .pairs()
        .iter()
        .fold(c.post(&url), |rb, (k, v)| rb.header(*k, *v));
    let (s, v) = send(rb.json(&json!({})));
    assert_eq!(s, 401);
    assert!(detail(&v).contains("stale"), "{v}");
    // Replay: the same headers twice.
    let h = pool_headers(&m.kp, now());
    let once = |c: &reqwest::blocking::Client| {
        let rb = h
            .pairs()
            .iter()
            .fold(c.post(&url), |rb, (k, v)| rb.header(*k, *v));
        send(rb.json(&json!({})))
    };
    assert_eq!(once(&c).0, 200);
    let (s, v) = once(&c);
    assert_eq!(s, 401);
    assert!(detail(&v).contains("replay"), "{v}");
    // Body envelope: matching is fine, any mismatch is refused.
    let h = pool_headers(&m.kp, now());
    let envelope = json!({
        "public_address": h.key, "signature": h.signature, "message": format!("auth:{}", h.timestamp)
    });
    let rb = h
        .pairs()
        .iter()
        .fold(c.post(&url), |rb, (k, v)| rb.header(*k, *v));
    assert_eq!(send(rb.json(&envelope)).0, 200);
    for (field, bad) in [
        ("public_address", json!(other.ss58())),
        ("signature", json!("00".repeat(64))),
        ("message", json!("auth:1")),
    ] {
        let h = pool_headers(&m.kp, now());
        let mut body = json!({
            "public_address": h.key, "signature": h.signature, "message": format!("auth:{}", h.timestamp)
        });
        body[field] = bad;
        let rb = h
            .pairs()
            .iter()
            .fold(c.post(&url), |rb, (k, v)| rb.header(*k, *v));
        let (s, v) = send(rb.json(&body));
        assert_eq!(s, 401, "{field}: {v}");
        assert!(detail(&v).contains(field), "{v}");
    }
    // Signed GETs need auth too.
    assert_eq!(public_get(&d.pool, "/api/v1/miners/stats").0, 401);
    assert_eq!(public_get(&d.pool, "/api/v1/results/").0, 401);
}

#[test]
fn endpoints_consensus_reputation_epochs_and_restart() {
    let mut d = pool_daemon(&[
        ("BITSOTA_POOL_EPOCH_S", "3"),
        ("BITSOTA_POOL_PAYOUT_CAP", "0.5"),
        ("BITSOTA_POOL_MIN_EVOLUTION_SCORE", "0.5"),
    ]);
    let (s, h) = public_get(&d.pool, "/health");
    assert_eq!(s, 200);
    assert_eq!(h["status"], "healthy");
    let w = h["window_number"].as_u64().unwrap();
    assert_eq!(w, now() / 600);
    assert!(h["time_remaining_s"].as_f64().unwrap() <= 600.0);

    let miners: Vec<Miner> = (0..4).map(|_| Miner::new(&d.pool)).collect();
    for m in &miners {
        let (s, r) = m.post("/api/v1/miners/register", json!({}));
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["hotkey"], m.hotkey());
        assert_eq!(r["reputation"], 0.0);
        assert!(r["registered_at"].as_str().unwrap().ends_with('Z'));
    }
    let (s, again) = miners[0].post("/api/v1/miners/register", json!({}));
    assert_eq!(s, 200);
    assert_eq!(again["hotkey"], miners[0].hotkey());

    // Bad requests.
    let (s, v) = miners[0].post("/api/v1/tasks/request", json!({"task_type": "dance"}));
    assert_eq!(s, 400, "{v}");
    let (s, v) = miners[0].post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
    assert_eq!(s, 404, "nothing to evaluate yet: {v}");
    let (s, _) = miners[0].post("/api/v1/tasks/abc/submit_evolution", json!({}));
    assert_eq!(s, 400);
    let (s, v) = miners[0].post(
        "/api/v1/tasks/999/submit_evolution",
        json!({"evolved_function": GOOD_DSL, "parent_functions": []}),
    );
    assert_eq!(s, 404, "{v}");

    // Evolve: a second request while the task is open answers that same task again (a
    // client that lost it is not stranded); bad DSL names the line.
    let (s, t) = miners[0].post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["task_type"], "evolve");
    let parent = &t["algorithms"][0];
    assert_eq!(parent["task_type"], "scalar_linear");
    assert_eq!(parent["input_dim"], 16);
    assert!(parent["algorithm_dsl"].is_string());
    let (s, v) = miners[0].post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!((s, &v["batch_id"]), (200, &t["batch_id"]), "{v}");
    let submit = format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]);
    let (s, v) = miners[0].post(
        &submit,
        json!({"evolved_function": "# predict\ns0 = bogus(v0)\n", "parent_functions": []}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(detail(&v).contains("line 2"), "{v}");
    let (s, v) = miners[0].post(
        &submit,
        json!({"evolved_function": GOOD_DSL, "parent_functions": [{"id": 12345}]}),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = miners[1].post(
        &submit,
        json!({"evolved_function": GOOD_DSL, "parent_functions": []}),
    );
    assert_eq!(s, 404, "another miner's task: {v}");
    let (s, r) = miners[0].post(
        &submit,
        json!({"evolved_function": GOOD_DSL, "parent_functions": [{"id": parent["id"]}]}),
    );
    assert_eq!(s, 200, "{r}");
    let evolved = r["algorithm_id"].as_u64().unwrap();
    let (s, _) = miners[0].post(
        &submit,
        json!({"evolved_function": GOOD_DSL, "parent_functions": []}),
    );
    assert_eq!(s, 404, "a completed task takes no second submission");

    // The author is not offered its own evolution; three others evaluate it.
    let (s, _) = miners[0].post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
    assert_eq!(s, 404);
    assert_eq!(evaluate(&miners[1], 0.80), vec![evolved]);
    // Evaluating an id the task did not hand out is refused.
    let (s, t) = miners[2].post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
    assert_eq!(s, 200);
    let (s, v) = miners[2].post(
        &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
        json!({"evaluations": [{"algorithm_id": 4242, "score": 0.5}]}),
    );
    assert_eq!(s, 400, "{v}");
    let (s, r) = miners[2].post(
        &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
        json!({"evaluations": [{"algorithm_id": evolved, "score": 0.84}]}),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(evaluate(&miners[3], 0.10), vec![evolved]);

    // Consensus = median 0.80 (0.84 is within 10 %); the 0.10 evaluator was inaccurate.
    let (s, sota) = public_get(&d.pool, "/api/v1/results/sota?task_type=scalar_linear");
    assert_eq!(s, 200, "{sota}");
    assert_eq!(sota["id"].as_u64(), Some(evolved));
    assert!((sota["score"].as_f64().unwrap() - 0.80).abs() < 1e-9);
    assert_eq!(sota["miner_hotkey"], miners[0].hotkey());
    let (s, _) = public_get(&d.pool, "/api/v1/results/sota?task_type=mnist_binary");
    assert_eq!(s, 404);
    let (s, list) = miners[1].get("/api/v1/results/?limit=5&task_type=scalar_linear&min_score=0.5");
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, none) = miners[1].get("/api/v1/results/?min_score=0.9");
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (s, _) = miners[1].get("/api/v1/results/?limit=x");
    assert_eq!(s, 400);

    let (s, board) = public_get(&d.pool, "/api/v1/miners/leaderboard?limit=10");
    assert_eq!(s, 200);
    let rep = |hk: &str| {
        board
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["hotkey"] == hk)
            .map(|r| r["reputation"].as_f64().unwrap())
            .unwrap()
    };
    assert!((rep(&miners[0].hotkey()) - 1.6).abs() < 1e-9, "{board}");
    assert_eq!(rep(&miners[1].hotkey()), 1.0);
    assert_eq!(rep(&miners[2].hotkey()), 1.0);
    assert_eq!(rep(&miners[3].hotkey()), 0.0);
    assert_eq!(board[0]["rank"], 1);
    assert_eq!(board[0]["hotkey"], miners[0].hotkey());

    let (s, st) = miners[3].get("/api/v1/miners/stats");
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["evaluations"], 1);
    assert_eq!(st["inaccurate_evaluations"], 1);
    assert_eq!(st["pool"]["verified"], 1);

    let (s, mon) = public_get(&d.pool, "/api/v1/monitor/summary");
    assert_eq!(s, 200, "{mon}");
    assert_eq!(mon["backlog"], 0);
    assert!(mon["alerts"].is_array());

    // The epoch holding this work closes; payouts sum to the budget under the cap and
    // each is provable from the root.
    let closed = poll_until(40, Duration::from_millis(250), || {
        let (_, e) = public_get(&d.pool, "/api/v1/epochs");
        e["epochs"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .expect("an epoch closes");
    let n = closed.last().unwrap()["epoch"].as_u64().unwrap();
    let (s, ledger) = public_get(&d.pool, &format!("/api/v1/epochs/{n}"));
    assert_eq!(s, 200, "{ledger}");
    check_ledger(&ledger);
    let (s, _) = public_get(&d.pool, "/api/v1/epochs/3");
    assert_eq!(s, 404);
    let (s, open) = public_get(&d.pool, &format!("/api/v1/epochs/{}", now() / 3 + 5));
    assert_eq!((s, open["status"].as_str()), (200, Some("open")));
    let (s, _) = public_get(&d.pool, "/api/v1/epochs/x");
    assert_eq!(s, 400);

    // A restart keeps miners, algorithms, evaluations and epochs.
    d.restart();
    let (_, board2) = public_get(&d.pool, "/api/v1/miners/leaderboard");
    assert_eq!(board2, board);
    let (_, sota2) = public_get(&d.pool, "/api/v1/results/sota");
    assert_eq!(sota2, sota);
    let (_, ledger2) = public_get(&d.pool, &format!("/api/v1/epochs/{n}"));
    assert_eq!(ledger2, ledger);
}

/// Payouts sum to the budget (within rounding) when enough miners earned to absorb it
/// under the cap, every payout is under the cap, and every proof verifies.
#[test]
fn leases_once_per_window_expiry_and_reassignment() {
    let d = pool_daemon(&[
        ("BITSOTA_POOL_WINDOW_S", "3"),
        ("BITSOTA_POOL_EVALS_REQUIRED", "1"),
    ]);
    let author = Miner::new(&d.pool);
    let a = Miner::new(&d.pool);
    let b = Miner::new(&d.pool);
    let evolved = evolve(&author);

    // Wait for the start of a window so both leases below fall in it.
    poll_until(100, Duration::from_millis(50), || {
        let (_, h) = public_get(&d.pool, "/health");
        (h["time_remaining_s"].as_f64().unwrap() > 2.0).then_some(())
    })
    .unwrap();
    let (s, l) = a.post(
        "/api/v1/tasks/lease",
        json!({"eval_batch_size": 4, "seed_batch_size": 2}),
    );
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["evaluate_algorithms"][0]["id"].as_u64(), Some(evolved));
    assert!(!l["seed_algorithms"].as_array().unwrap().is_empty());
    assert!(l["evolve_budget"].as_u64().unwrap() > 0);
    assert!(l["timeout_at"].as_str().unwrap().ends_with('Z'));
    let (s, v) = a.post("/api/v1/tasks/lease", json!({}));
    assert_eq!(
        (s, detail(&v)),
        (
            400,
            "Lease already issued for this window. Wait for next window."
        )
    );
    // B's lease in the same window has nothing to evaluate: A holds it.
    let (s, lb) = b.post("/api/v1/tasks/lease", json!({}));
    assert_eq!(s, 200, "{lb}");
    assert!(lb["evaluate_algorithms"].as_array().unwrap().is_empty());
    let (s, v) = b.post("/api/v1/tasks/999/submit_lease", json!({}));
    assert_eq!((s, detail(&v)), (404, "Active lease assignment not found"));
    let (s, v) = b.post(
        &format!("/api/v1/tasks/{}/submit_lease", l["lease_id"]),
        json!({}),
    );
    assert_eq!(s, 404, "another miner's lease: {v}");
    let (s, v) = b.post(
        &format!("/api/v1/tasks/{}/submit_lease", lb["lease_id"]),
        json!({"evolutions": [{"parent_algorithm_ids": [evolved], "algorithm_dsl": "s0 = = 1"}]}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(detail(&v).contains("line 1"), "{v}");

    // A lets its lease lapse (window length); B's next lease carries the work.
    std::thread::sleep(Duration::from_millis(3300));
    let lb2 = poll_until(100, Duration::from_millis(100), || {
        let (s, l) = b.post("/api/v1/tasks/lease", json!({}));
        (s == 200).then_some(l)
    })
    .unwrap();
    assert_eq!(
        lb2["evaluate_algorithms"][0]["id"].as_u64(),
        Some(evolved),
        "{lb2}"
    );
    let (s, v) = a.post(
        &format!("/api/v1/tasks/{}/submit_lease", l["lease_id"]),
        json!({"evaluations": [{"algorithm_id": evolved, "score": 0.5}], "iterations": 1}),
    );
    assert_eq!((s, detail(&v)), (404, "Active lease assignment not found"));
    let (s, r) = b.post(
        &format!("/api/v1/tasks/{}/submit_lease", lb2["lease_id"]),
        json!({
            "evaluations": [{"algorithm_id": evolved, "score": 0.5}],
            "evolutions": [{"parent_algorithm_ids": [evolved], "algorithm_dsl": GOOD_DSL}],
            "iterations": 7
        }),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["accepted_evaluations"], 1);
    assert_eq!(r["consensus_reached"][0].as_u64(), Some(evolved));
    assert_eq!(r["algorithm_ids"].as_array().unwrap().len(), 1);
    let (_, mon) = public_get(&d.pool, "/api/v1/monitor/summary");
    assert!(mon["leases_issued_15m"].as_u64().unwrap() >= 3, "{mon}");
    assert_eq!(mon["leases_completed_15m"], 1);
}

#[test]
fn monitor_token_and_expired_tasks() {
    let d = pool_daemon(&[
        ("BITSOTA_POOL_MONITOR_TOKEN", "sesame"),
        ("BITSOTA_POOL_TASK_TIMEOUT_S", "1"),
    ]);
    let (s, _) = public_get(&d.pool, "/api/v1/monitor/summary");
    assert_eq!(s, 401);
    let (s, _) = send(
        http()
            .get(format!("{}/api/v1/monitor/summary", d.pool))
            .header("X-Auth-Token", "sesame"),
    );
    assert_eq!(s, 200);
    let (s, _) = send(
        http()
            .get(format!("{}/api/v1/monitor/summary", d.pool))
            .header("Authorization", "Bearer sesame"),
    );
    assert_eq!(s, 200);
    // Wrong tokens, and the token in the query string (it would end up in access logs),
    // are refused.
    for (header, value) in [("X-Auth-Token", "sesamE"), ("X-Auth-Token", "sesame2")] {
        let (s, _) = send(
            http()
                .get(format!("{}/api/v1/monitor/summary", d.pool))
                .header(header, value),
        );
        assert_eq!(s, 401, "{value}");
    }
    let (s, _) = public_get(&d.pool, "/api/v1/monitor/summary?token=sesame");
    assert_eq!(s, 401);

    // A task past its timeout is gone: a late submission is 404, and a new one is issued.
    let m = Miner::new(&d.pool);
    let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_millis(1200));
    let (s, _) = m.post(
        &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
        json!({"evolved_function": GOOD_DSL, "parent_functions": []}),
    );
    assert_eq!(s, 404);
    let (s, _) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200);
}

/// What an in-process coordinator's workers run jobs with.
fn jobs() -> std::sync::Arc<bitsota::jobs::Jobs> {
    std::sync::Arc::new(bitsota::jobs::Jobs::default())
}

/// Settings of an in-test coordinator with its own fresh hotkey.
fn coordinator_settings(
    d: &Daemon,
    run_id: &str,
    mode: bitsota::miner::pool::PoolMode,
    seed: u64,
) -> bitsota::miner::pool::coordinator::CoordinatorSettings {
    bitsota::miner::pool::coordinator::CoordinatorSettings {
        pool_url: d.pool.clone(),
        sidecar_url: d.sidecar.clone(),
        keypair: Keypair::generate(),
        run_id: run_id.to_string(),
        mode,
        evolve_budget: 12,
        evolve_task_count: 2,
        evolve_task_seed: 0,
        eval_task_count: 4,
        eval_task_seed: 1337,
        pop_size: 8,
        seed,
    }
}

fn leaderboard_map(base: &str) -> std::collections::HashMap<String, Value> {
    let (_, board) = public_get(base, "/api/v1/miners/leaderboard?limit=1000");
    board
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["hotkey"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[test]
fn four_coordinators_reach_consensus_and_an_epoch_pays_out() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let d = pool_daemon(&[
        ("BITSOTA_POOL_EPOCH_S", "6"),
        ("BITSOTA_POOL_PAYOUT_CAP", "0.5"),
        ("BITSOTA_POOL_MIN_EVOLUTION_SCORE", "0.0"),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let settings: Vec<_> = (0..4)
        .map(|i| {
            coordinator_settings(
                &d,
                &format!("pool-run-{i}"),
                bitsota::miner::pool::PoolMode::Tasks,
                i,
            )
        })
        .collect();
    let hotkeys: Vec<String> = settings.iter().map(|s| s.keypair.ss58()).collect();
    let handles: Vec<_> = settings
        .into_iter()
        .map(|s| bitsota::miner::pool::coordinator::spawn(s, jobs(), 1, stop.clone()))
        .collect();

    // A fifth miner evaluates by hand: honestly once, then dishonestly.
    let liar = Miner::new(&d.pool);
    let mut liar_rounds = Vec::new();
    poll_until(600, Duration::from_millis(200), || {
        if liar_rounds.len() < 2 {
            let (s, t) = liar.post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
            if s == 200 {
                let payload = json!({"suite": t["suite"], "algorithms": t["algorithms"]});
                let honest = bitsota::jobs::Jobs::default()
                    .execute(
                        "evaluate",
                        &payload,
                        &std::sync::atomic::AtomicBool::new(false),
                    )
                    .unwrap();
                let mut evals = honest["evaluations"].clone();
                if liar_rounds.len() == 1 {
                    for e in evals.as_array_mut().unwrap() {
                        e["score"] = json!(e["score"].as_f64().unwrap_or(0.0) - 3.0);
                    }
                }
                let (s, r) = liar.post(
                    &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
                    json!({ "evaluations": evals }),
                );
                assert_eq!(s, 200, "{r}");
                liar_rounds.push(t["algorithms"].as_array().unwrap().len());
            }
        }
        let (_, list) = liar.get("/api/v1/results/?limit=1000");
        let list = list.as_array().cloned().unwrap_or_default();
        let liar_judged = |accurate: bool| {
            list.iter().any(|a| {
                a["evaluations"].as_array().unwrap().iter().any(|e| {
                    e["hotkey"] == liar.hotkey() && e["accurate"].as_bool() == Some(accurate)
                })
            })
        };
        (list.len() >= 4 && liar_judged(true) && liar_judged(false)).then_some(())
    })
    .expect("verified evolutions from four coordinators and the hand evaluator");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        assert!(
            h.stats
                .jobs_enqueued
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        );
        h.stop();
    }
    let (_, verified) = liar.get("/api/v1/results/?limit=1000");
    let verified = verified.as_array().cloned().unwrap();

    // Each verified evolution has three evaluations by distinct miners other than its
    // author, and its score is their median.
    let mut accurate: std::collections::HashMap<String, (u32, u32)> = Default::default();
    let mut rewards: std::collections::HashMap<String, f64> = Default::default();
    for a in &verified {
        let author = a["miner_hotkey"].as_str().unwrap();
        assert!(hotkeys.iter().any(|h| h == author), "{a}");
        let evals = a["evaluations"].as_array().unwrap();
        assert_eq!(evals.len(), 3, "{a}");
        let mut who: Vec<&str> = evals
            .iter()
            .map(|e| e["hotkey"].as_str().unwrap())
            .collect();
        assert!(!who.contains(&author));
        who.sort();
        who.dedup();
        assert_eq!(who.len(), 3);
        // null = a non-finite score (-inf).
        let score = |v: &Value| v.as_f64().unwrap_or(f64::NEG_INFINITY);
        let mut scores: Vec<f64> = evals.iter().map(|e| score(&e["score"])).collect();
        scores.sort_by(f64::total_cmp);
        assert_eq!(score(&a["score"]), scores[1]);
        for e in evals {
            let entry = accurate
                .entry(e["hotkey"].as_str().unwrap().to_string())
                .or_default();
            if e["accurate"].as_bool().unwrap() {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        *rewards.entry(author.to_string()).or_default() += a["reward"].as_f64().unwrap();
    }
    // Honest coordinators are always accurate; their reputation is exactly what they
    // earned by the rules. The liar gained one point per honest evaluation, then lost
    // (floored at 0) for the dishonest ones.
    let board = leaderboard_map(&d.pool);
    for h in &hotkeys {
        let (ok, bad) = accurate.get(h).copied().unwrap_or_default();
        assert_eq!(bad, 0, "an honest coordinator was judged inaccurate");
        let rep = board[h]["reputation"].as_f64().unwrap();
        let expect = ok as f64 + rewards.get(h).copied().unwrap_or(0.0);
        assert!((rep - expect).abs() < 1e-9, "{h}: {rep} vs {expect}");
    }
    let (ok, bad) = accurate[&liar.hotkey()];
    assert!(ok >= 1 && bad >= 1, "liar: {ok} accurate, {bad} inaccurate");
    let (_, st) = liar.get("/api/v1/miners/stats");
    assert_eq!(st["inaccurate_evaluations"].as_u64(), Some(bad as u64));
    assert!(st["reputation"].as_f64().unwrap() < ok as f64, "{st}");

    // Epochs close with capped payouts that sum to the budget and provable leaves.
    let ledgers = poll_until(60, Duration::from_millis(250), || {
        let (_, e) = public_get(&d.pool, "/api/v1/epochs");
        let list = e["epochs"].as_array().cloned().unwrap_or_default();
        (!list.is_empty()).then_some(list)
    })
    .expect("an epoch closes");
    let mut full = 0;
    for l in ledgers {
        let (_, ledger) = public_get(&d.pool, &format!("/api/v1/epochs/{}", l["epoch"]));
        check_ledger(&ledger);
        if ledger["payouts"].as_array().unwrap().len() >= 2 {
            let paid = ledger["total_paid_rao"].as_u64().unwrap();
            assert!(
                ledger["budget_rao"].as_u64().unwrap() - paid <= 2,
                "{ledger}"
            );
            full += 1;
        }
    }
    assert!(full >= 1, "an epoch with several earners");
}

#[test]
fn lease_coordinator_drops_a_late_submission_and_recovers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let d = pool_daemon(&[("BITSOTA_POOL_WINDOW_S", "3")]);
    let stop = Arc::new(AtomicBool::new(false));
    let run = "lease-run";
    // No in-process workers: the lease job waits in the queue past the lease's timeout.
    let h = bitsota::miner::pool::coordinator::spawn(
        coordinator_settings(&d, run, bitsota::miner::pool::PoolMode::Lease, 1),
        jobs(),
        0,
        stop.clone(),
    );
    poll_until(100, Duration::from_millis(100), || {
        (h.stats.jobs_enqueued.load(Ordering::Relaxed) >= 1).then_some(())
    })
    .expect("a lease job is enqueued");
    std::thread::sleep(Duration::from_millis(3300));
    // An external worker process now runs the (late) job and the next ones.
    let mut worker = common::spawn_worker(&d.sidecar, run, 1);
    let recovered = poll_until(300, Duration::from_millis(100), || {
        (h.stats.submissions_dropped.load(Ordering::Relaxed) >= 1
            && h.stats.submissions_ok.load(Ordering::Relaxed) >= 1)
            .then_some(())
    });
    unsafe {
        libc::kill(worker.id() as i32, libc::SIGTERM);
    }
    let status = common::wait_bounded(&mut worker, Duration::from_secs(30));
    h.stop();
    assert!(
        recovered.is_some(),
        "late lease dropped, then a fresh lease submitted"
    );
    assert!(
        status.success(),
        "worker exits cleanly on SIGTERM: {status}"
    );
    let (_, logs) = public_get(&d.sidecar, &format!("/logs?run_id={run}&limit=500"));
    let lines: Vec<&str> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["message"].as_str())
        .collect();
    for want in [
        "[pool] Registered with pool",
        "[pool] Enqueued job kind=lease",
        "[pool] submit_lease ok=false",
        "Active lease assignment not found",
        "[pool] submit_lease ok=true",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "{want} missing in {lines:?}"
        );
    }
}

#[test]
fn the_pool_forwards_its_best_to_the_relay_with_its_own_hotkey() {
    let d = pool_daemon(&[("BITSOTA_POOL_FORWARD_TO_RELAY", "true")]);
    let miners: Vec<Miner> = (0..4).map(|_| Miner::new(&d.pool)).collect();
    let evolved = evolve(&miners[0]);
    for m in &miners[1..] {
        assert_eq!(evaluate(m, 0.5), vec![evolved]);
    }
    let pool_key = bitsota::keys::identity::load_or_create(&d.data_dir, "pool").unwrap();
    let validator = Keypair::generate();
    let found = poll_until(100, Duration::from_millis(200), || {
        let h = bitsota::keys::relay_validator_headers(&validator, now());
        let rb = h
            .pairs()
            .iter()
            .fold(http().get(format!("{}/results", d.relay)), |rb, (k, v)| {
                rb.header(*k, *v)
            });
        let (_, list) = send(rb);
        list.as_array()?
            .iter()
            .find(|r| r["miner_hotkey"] == pool_key.ss58())
            .cloned()
    })
    .expect("the relay has a submission from the pool hotkey");
    assert_eq!(found["score"].as_f64(), Some(0.5));
    let algorithm: Value =
        serde_json::from_str(found["algorithm_result"].as_str().unwrap()).unwrap();
    assert_eq!(algorithm["task_type"], "scalar_linear");
    assert_eq!(
        algorithm["metadata"]["pool_algorithm_id"].as_u64(),
        Some(evolved)
    );
    let mut d = d;
    let status = d.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "clean shutdown: {}", d.stderr());
}

#[test]
fn the_pool_seeds_from_the_relay_sota() {
    let d = pool_daemon(&[("BITSOTA_POOL_SEED_FROM_RELAY", "true")]);
    let learner = "# setup\ns2 = 0.01\n# predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";
    let miner = Keypair::generate();
    let h = bitsota::keys::relay_miner_headers(&miner, now());
    let rb = h.pairs().iter().fold(
        http().post(format!("{}/submit_solution", d.relay)),
        |rb, (k, v)| rb.header(*k, *v),
    );
    let body = json!({"task_id": "t-1", "score": 0.3, "algorithm_result": {
        "task_type": "scalar_linear", "input_dim": 16, "algorithm_dsl": learner}});
    let (s, r) = send(rb.json(&body));
    assert_eq!(s, 200, "{r}");
    // The shipped test config finalizes on one vote.
    let validator = Keypair::generate();
    let h = bitsota::keys::relay_validator_headers(&validator, now());
    let rb = h.pairs().iter().fold(
        http().post(format!("{}/sota/vote", d.relay)),
        |rb, (k, v)| rb.header(*k, *v),
    );
    let (s, v) =
        send(rb.json(&json!({"miner_hotkey": miner.ss58(), "score": 0.3, "seen_block": 5})));
    assert_eq!((s, v["status"].as_str()), (200, Some("finalized")), "{v}");
    let canonical = bitsota::jobs::canonical_dsl(learner).unwrap();
    let m = Miner::new(&d.pool);
    let parents = poll_until(60, Duration::from_millis(500), || {
        let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
        assert_eq!(s, 200, "{t}");
        // Hand the task back so the next request is allowed.
        let (s, r) = m.post(
            &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
            json!({"evolved_function": GOOD_DSL, "parent_functions": []}),
        );
        assert_eq!(s, 200, "{r}");
        let algs = t["algorithms"].as_array().cloned().unwrap_or_default();
        algs.iter()
            .any(|a| a["algorithm_dsl"] == canonical.as_str())
            .then_some(algs)
    })
    .expect("the relay SOTA becomes a pool seed");
    let seed = parents
        .iter()
        .find(|a| a["algorithm_dsl"] == canonical.as_str())
        .unwrap();
    assert_eq!(seed["status"], "seed");
    assert_eq!(seed["score"].as_f64(), Some(0.3));
}
