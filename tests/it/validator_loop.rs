//! Validators against the real daemon's relay, over HTTP: `bitsota validate` processes
//! (each its own key, store and metrics) judging signed miner submissions.

use crate::common;
use crate::validator_support;

use bitsota::keys::Keypair;
use common::{bin, repo_root, Daemon, Opts};
use serde_json::json;
use std::process::Command;
use validator_support::*;

#[test]
fn two_validator_processes_agree_and_finalize() {
    let d = Daemon::start(Opts::default().env("SOTA_CONSENSUS_VOTES", "2"));
    let score = local_score(LINEAR);
    assert!(score > 0.5, "the test program learns: {score}");
    let miner = Keypair::generate();
    let (status, body) = submit(&d.relay, &miner, algorithm(LINEAR), score);
    assert_eq!(status, 200, "{body}");

    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    let fixed = ["--seen-block-mode", "fixed", "--seen-block", "7"];
    let out1 = validate(
        &d.relay,
        &v1,
        10,
        &[&fixed[..], &["--stats-interval", "1"]].concat(),
    );
    let s1 = last_stats(&out1);
    assert_eq!(
        (s1["new"].as_str(), s1["passed"].as_str()),
        ("1", "1"),
        "{out1}"
    );
    assert_eq!(s1["votes"], "1/1");
    assert_eq!(s1["finalized"], "0");
    // Ten polls 0.2 s apart last over 1.8 s: at least one periodic line plus the last.
    assert!(out1.matches("polls=").count() >= 2, "{out1}");
    assert_eq!(sota(&d.relay), 0.0, "one vote of two does not finalize");

    let out2 = validate(&d.relay, &v2, 1, &fixed);
    let s2 = last_stats(&out2);
    assert_eq!(
        (s2["votes"].as_str(), s2["finalized"].as_str()),
        ("1/1", "1"),
        "{out2}"
    );
    // The relay finalizes only when both votes name the same (miner, score_int): the two
    // processes computed the same score, which is also ours.
    assert_eq!(sota(&d.relay), score);
    let ev = events(&d.relay);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["miner_hotkey"], miner.ss58());
    assert_eq!(
        ev[0]["score_int"].as_i64(),
        Some((score * 1e18).round_ties_even() as i64)
    );

    let (m1, m2) = (metrics(&v1), metrics(&v2));
    for m in [&m1, &m2] {
        for line in m.iter() {
            for field in ["timestamp", "session_id", "event"] {
                assert!(line.get(field).is_some(), "{field} missing: {line}");
            }
        }
        assert_eq!(of_event(m, "session_start").len(), 1);
        let r = of_event(m, "miner_result");
        assert_eq!(r.len(), 1, "{m:?}");
        assert_eq!(r[0]["validator_score"].as_f64(), Some(score));
        assert_eq!(r[0]["miner_score"].as_f64(), Some(score));
        assert_eq!(r[0]["result_status"], "passed");
        assert_eq!(r[0]["pushed_sota"], true);
        assert_eq!(r[0]["sota_threshold"].as_f64(), Some(0.0));
        assert_eq!(r[0]["delta_improvement"].as_f64(), Some(score));
        assert!(r[0]["miner_hotkey"].as_str().unwrap().ends_with("..."));
        let b = of_event(m, "evaluation_batch");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0]["num_evaluations"], 1);
        assert!(b[0]["total_evaluation_time_seconds"].as_f64().unwrap() >= 0.0);
        assert!(b[0]["avg_time_per_eval_seconds"].as_f64().is_some());
        assert_eq!(b[0]["sota_threshold"].as_f64(), Some(0.0));
    }
    assert!(of_event(&m1, "sota_update").is_empty());
    let u = of_event(&m2, "sota_update");
    assert_eq!(u.len(), 1);
    assert_eq!(u[0]["old_sota"].as_f64(), Some(0.0));
    assert_eq!(u[0]["new_sota"].as_f64(), Some(score));
    assert_eq!(u[0]["improvement"].as_f64(), Some(score));
    assert!(u[0]["triggering_miner"].as_str().unwrap().ends_with("..."));
}

#[test]
fn an_inflated_claim_is_blacklisted_and_the_miner_refused() {
    let d = Daemon::start(Opts::default());
    let score = local_score(LINEAR);
    let cheater = Keypair::generate();
    let (status, body) = submit(&d.relay, &cheater, algorithm(LINEAR), score + 0.3);
    assert_eq!(status, 200, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    // The second validator signs with a keyfile of its own.
    let key = bitsota::keys::identity::load_or_create(tmp.path(), "bl-key").unwrap();
    let keyfile = tmp.path().join("keys").join("bl-key");
    for (name, args) in [
        ("v1", vec![]),
        ("v2", vec!["--keyfile", keyfile.to_str().unwrap()]),
    ] {
        let out = validate(&d.relay, &tmp.path().join(name), 1, &args);
        let s = last_stats(&out);
        assert_eq!(
            (s["blacklisted"].as_str(), s["votes"].as_str()),
            ("1", "0/0"),
            "{out}"
        );
        let r = metrics(&tmp.path().join(name));
        let r = of_event(&r, "miner_result");
        assert_eq!(r[0]["result_status"], "blacklisted");
        assert_eq!(r[0]["pushed_sota"], false);
    }
    let hk8: String = key.ss58().chars().take(8).collect();
    assert!(tmp
        .path()
        .join(format!("v2/metrics/validator-{hk8}.jsonl"))
        .is_file());
    assert_eq!(sota(&d.relay), 0.0, "a cheater gets no SOTA vote");
    // Two distinct validators voted: the relay now refuses the miner.
    let other = LINEAR.replace("0.009999999776482582", "0.02");
    let (status, body) = submit(&d.relay, &cheater, algorithm(&other), score);
    assert_eq!(status, 403, "{body}");
}

#[test]
fn unparsable_or_unevaluable_programs_are_counted_and_never_voted() {
    let d = Daemon::start(Opts::default());
    // No `algorithm_dsl`: the relay stores it, validators must refuse to score it.
    let (status, body) = submit(
        &d.relay,
        &Keypair::generate(),
        json!({"task_type": "scalar_linear", "input_dim": 16, "program": "s0 = 1"}),
        0.9,
    );
    assert_eq!(status, 200, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    let out = validate(&d.relay, &tmp.path().join("v"), 1, &[]);
    let s = last_stats(&out);
    assert_eq!(
        (s["parse_fail"].as_str(), s["new"].as_str()),
        ("1", "1"),
        "{out}"
    );
    assert_eq!(
        (s["votes"].as_str(), s["blacklisted"].as_str()),
        ("0/0", "0")
    );
    assert!(of_event(&metrics(&tmp.path().join("v")), "miner_result").is_empty());
}

#[test]
fn a_restart_does_not_vote_again() {
    let d = Daemon::start(Opts::default().env("SOTA_CONSENSUS_VOTES", "2"));
    let score = local_score(LINEAR);
    let (status, body) = submit(&d.relay, &Keypair::generate(), algorithm(LINEAR), score);
    assert_eq!(status, 200, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let first = last_stats(&validate(&d.relay, &dir, 1, &[]));
    assert_eq!(
        (first["new"].as_str(), first["votes"].as_str()),
        ("1", "1/1")
    );
    let again = validate(&d.relay, &dir, 2, &[]);
    let second = last_stats(&again);
    assert_eq!(
        (
            second["new"].as_str(),
            second["dupe"].as_str(),
            second["votes"].as_str()
        ),
        ("0", "2", "0/0"),
        "{again}"
    );
    assert_eq!(second["unique_seen"], "1");
}

#[test]
fn relay_errors_back_off_exponentially() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: every poll fails.
    let out = validate("http://127.0.0.1:9", &tmp.path().join("v"), 3, &[]);
    let retries: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("poll failed"))
        .filter_map(|l| l.split("retry_in_s=").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    // Polls are 0.2 s apart; after n failures the wait is 0.2·2^n.
    assert_eq!(retries, ["0.4", "0.8", "1.6"], "{out}");
    assert_eq!(last_stats(&out)["polls"], "3");
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["--relay-url", "localhost:8002"],
        vec![
            "--relay-url",
            "http://127.0.0.1:9",
            "--seen-block-mode",
            "sometimes",
        ],
        vec!["--relay-url", "http://127.0.0.1:9", "--poll-interval", "0"],
    ] {
        let out = Command::new(bin())
            .args(["validate", "--config"])
            .arg(repo_root().join("appliance.toml"))
            .arg("--data-dir")
            .arg(tmp.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    }
}
