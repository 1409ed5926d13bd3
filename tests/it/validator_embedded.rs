//! The daemon's embedded validators (threads of `bitsota serve`), their
//! `/appliance/validators` view, and agreement with a validator in another process.

use crate::common;
use crate::validator_support;

use bitsota::keys::Keypair;
use common::{poll_until, Daemon, Opts};
use serde_json::{json, Value};
use std::time::Duration;
use validator_support::*;

/// The `validator_score` of every `miner_result` in `lines`.
fn validator_scores(lines: &[Value]) -> Vec<f64> {
    of_event(lines, "miner_result")
        .iter()
        .map(|l| l["validator_score"].as_f64().unwrap())
        .collect()
}

/// A signed submission of the test program claiming `score`; the relay must accept it.
fn submit_linear(relay: &str, miner: &Keypair, score: f64) {
    let (status, body) = submit(relay, miner, algorithm(LINEAR), score);
    assert_eq!(status, 200, "{body}");
}

fn embedded(consensus: &str) -> Daemon {
    Daemon::start(
        Opts::default()
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_POLL_INTERVAL_S", "0.3")
            .env("BITSOTA_VALIDATOR_STATS_INTERVAL_S", "1")
            .env("VALIDATOR_TASK_COUNT", TASKS)
            .env("SOTA_CONSENSUS_VOTES", consensus),
    )
}

#[test]
fn embedded_validators_reach_consensus_and_agree_with_another_process() {
    let d = embedded("2");
    let score = local_score(LINEAR);
    let miner = Keypair::generate();
    submit_linear(&d.relay, &miner, score);

    let sota = poll_until(200, Duration::from_millis(100), || {
        let s = get(&format!("{}/sota_threshold", d.relay))["sota_threshold"].as_f64()?;
        (s > 0.0).then_some(s)
    });
    assert_eq!(
        sota,
        Some(score),
        "two threads voted the same score_int; stderr: {}",
        d.stderr()
    );

    // The dashboard view: both validators, their counters, the relay's answers, weights.
    let view = poll_until(100, Duration::from_millis(100), || {
        let v = get(&format!("{}/appliance/validators", d.sidecar));
        let all_weighted = v["validators"]
            .as_array()?
            .iter()
            .all(|x| x["weights"]["winner"] == miner.ss58());
        all_weighted.then_some(v)
    })
    .expect("weights follow the finalized event");
    let list = view["validators"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let mut statuses = Vec::new();
    for (i, v) in list.iter().enumerate() {
        assert_eq!(v["name"], format!("validator-{}", i + 1));
        assert_eq!(v["hotkey"].as_str().unwrap().len(), 48);
        assert_eq!(v["relay_url"], d.relay.as_str());
        let c = &v["counters"];
        assert_eq!(
            (c["new"].as_u64(), c["passed"].as_u64()),
            (Some(1), Some(1)),
            "{v}"
        );
        assert_eq!(
            (c["votes_ok"].as_u64(), c["votes_tried"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(c["unique_seen"].as_u64(), Some(1));
        assert!(c["polls"].as_u64().unwrap() >= 1);
        let votes = v["recent_votes"].as_array().unwrap();
        assert_eq!(votes.len(), 1);
        assert_eq!(votes[0]["kind"], "sota");
        assert_eq!(votes[0]["miner_hotkey"], miner.ss58());
        assert_eq!(votes[0]["score"].as_f64(), Some(score));
        statuses.push(votes[0]["status"].as_str().unwrap().to_string());
        assert_eq!(v["weights"]["burn"].as_f64(), Some(0.9));
        assert_eq!(v["weights"]["winner_weight"].as_f64(), Some(0.1));
    }
    statuses.sort();
    assert_eq!(statuses, ["finalized", "vote_recorded"]);
    let finalized: u64 = list
        .iter()
        .map(|v| v["counters"]["finalized"].as_u64().unwrap())
        .sum();
    assert_eq!(finalized, 1);

    // A validator in another process computes the same score for the same submission.
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("v");
    validate(&d.relay, &other, 1, &[]);
    let theirs = validator_scores(&metrics(&other));
    assert_eq!(theirs, [score]);
    for name in ["validator-1", "validator-2"] {
        let ours = validator_scores(&metrics_file(
            &d.data_dir.join("metrics").join(format!("{name}.jsonl")),
        ));
        assert_eq!(ours, [score], "{name}");
    }

    // The stats line, every second.
    let stats = poll_until(50, Duration::from_millis(100), || {
        let n = d.stderr().matches("polls=").count();
        (n >= 4).then_some(n)
    });
    assert!(stats.is_some(), "stats lines: {}", d.stderr());
}

/// The shipped loop (two validators, consensus 1): the second validator's vote arrives
/// after the first finalized the same score. The relay refuses it with the reference's own
/// words; the validator labels it `late`, not `rejected`, and counts it as such.
#[test]
fn the_vote_after_consensus_is_late_not_rejected() {
    let d = embedded("1");
    let score = local_score(LINEAR);
    let miner = Keypair::generate();
    submit_linear(&d.relay, &miner, score);
    let votes = poll_until(200, Duration::from_millis(100), || {
        let v = get(&format!("{}/appliance/validators", d.sidecar));
        let all = v["validators"].as_array()?.clone();
        all.iter()
            .all(|x| x["recent_votes"].as_array().is_some_and(|r| !r.is_empty()))
            .then_some(all)
    })
    .unwrap_or_else(|| panic!("both validators never voted: {}", d.stderr()));
    let mut statuses: Vec<String> = votes
        .iter()
        .flat_map(|v| v["recent_votes"].as_array().unwrap().clone())
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["finalized", "late"], "{votes:?}");
    let late = votes
        .iter()
        .flat_map(|v| v["recent_votes"].as_array().unwrap().clone())
        .find(|r| r["status"] == "late")
        .unwrap();
    assert_eq!(
        late["detail"],
        format!("Score {score} is not above current SOTA {score}")
    );
    let count = |key: &str| -> u64 {
        votes
            .iter()
            .map(|v| v["counters"][key].as_u64().unwrap())
            .sum()
    };
    assert_eq!((count("votes_late"), count("votes_ok")), (1, 1));
}

#[test]
fn validators_disabled_serve_an_empty_list() {
    let d = Daemon::start(Opts::default());
    let v = get(&format!("{}/appliance/validators", d.sidecar));
    assert_eq!(v, json!({"validators": []}));
    // The sidecar's own routes still answer next to it.
    assert_eq!(get(&format!("{}/health", d.sidecar))["status"], "ok");
}

#[test]
fn a_daemon_restart_does_not_vote_again() {
    // One embedded validator of two needed votes: its vote stays pending at the relay.
    let mut d = Daemon::start(
        Opts::default()
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_COUNT", "1")
            .env("BITSOTA_VALIDATOR_POLL_INTERVAL_S", "0.2")
            .env("VALIDATOR_TASK_COUNT", TASKS)
            .env("SOTA_CONSENSUS_VOTES", "2"),
    );
    submit_linear(&d.relay, &Keypair::generate(), local_score(LINEAR));
    let counters = |d: &Daemon| {
        get(&format!("{}/appliance/validators", d.sidecar))["validators"][0]["counters"].clone()
    };
    let before = poll_until(200, Duration::from_millis(100), || {
        let c = counters(&d);
        (c["votes_tried"] == 1).then_some(c)
    })
    .expect("the validator votes once");
    assert_eq!(before["votes_ok"], 1);
    d.restart();
    let after = poll_until(200, Duration::from_millis(100), || {
        let c = counters(&d);
        (c["polls"].as_u64()? >= 3).then_some(c)
    })
    .expect("the restarted validator polls");
    assert_eq!(
        (after["new"].as_u64(), after["votes_tried"].as_u64()),
        (Some(0), Some(0)),
        "{after}"
    );
    assert!(after["dupe"].as_u64().unwrap() >= 3);
    assert_eq!(after["unique_seen"], 1);
}
