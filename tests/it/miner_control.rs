//! Mining control against the real daemon: `bitsota mine start|stop|status`, the
//! appliance API, stopping within a step, and reference-format `problem_config.json`.

use crate::common;

use common::{http, poll_until, Daemon, Opts};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// `bitsota mine <args>` against the daemon, found through its data directory.
fn mine(d: &Daemon, args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("mine")
        .args(args)
        .arg("--config")
        .arg(common::repo_root().join("appliance.toml"))
        .arg("--data-dir")
        .arg(&d.data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bitsota mine")
}

fn get(url: &str) -> Value {
    http().get(url).send().unwrap().json().unwrap()
}

fn logs(d: &Daemon) -> Vec<String> {
    let v = get(&format!("{}/logs?limit=500", d.sidecar));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message"].as_str().unwrap().to_string())
        .collect()
}

/// A small, fast configuration for debug builds, as a reference problem config.
fn write_problem_config(dir: &Path, extra_args: Value) -> String {
    let mut args = json!({"workers": 1, "seed": 7});
    args.as_object_mut()
        .unwrap()
        .extend(extra_args.as_object().unwrap().clone());
    let cfg = json!({
        "_notes": {"why": "small suites so debug builds run quickly"},
        "mining": {
            "engine": "baseline", "checkpoint_generations": 50, "miner_task_count": 3,
            "validator_task_count": 4, "validate_every": 50, "train_examples": 40,
            "val_examples": 40, "feature_dim": null, "fec_cache_size": 0,
            "engine_params": {"pop_size": 20, "tournament_size": 4, "mutation_prob": 0.9}
        },
        "args": args,
        "env": {"MINER_SUBMISSION_COOLDOWN_SECONDS": 1}
    });
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("problem_config.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn cli_start_status_stop_keeps_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = write_problem_config(tmp.path(), json!({}));
    let d = Daemon::start(Opts::default().env("BITSOTA_MINER_PROBLEM_CONFIG", &pc));

    let out = mine(
        &d,
        &[
            "start",
            "--task",
            "scalar_linear",
            "--workers",
            "1",
            "--seed",
            "3",
        ],
    );
    common::assert_success(&out);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("mining started: run run-"), "{line}");

    // A second start while mining: 409.
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.json::<Value>().unwrap()["detail"], "already mining");
    let out = mine(&d, &["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already mining"));

    // Progress and a verified candidate show up.
    let found = poll_until(300, Duration::from_millis(100), || {
        let l = logs(&d);
        (l.iter().any(|m| m.starts_with("[w0] Iter 0050:"))
            && l.iter().any(|m| m.starts_with("[candidate] w0 iter ")))
        .then_some(())
    });
    assert!(found.is_some(), "logs: {:?}", logs(&d));
    let status = get(&format!("{}/appliance/status", d.sidecar));
    let miner = &status["miner"];
    assert_eq!(miner["running"], true);
    assert_eq!(
        (miner["task_type"].as_str(), miner["engine"].as_str()),
        (Some("scalar_linear"), Some("baseline"))
    );
    assert_eq!(miner["workers"], 1);
    assert_eq!(miner["hotkey"].as_str().unwrap().len(), 48);
    assert!(miner["generation"].as_u64().unwrap() >= 50);
    assert!(miner["children_per_sec"].as_f64().unwrap() > 0.0);
    let out = mine(&d, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mining:       running"), "{text}");
    assert!(text.contains("task:         scalar_linear"), "{text}");

    // Stop: workers stop within a step, the response comes after they did.
    let out = mine(&d, &["stop"]);
    common::assert_success(&out);
    let before = get(&format!("{}/state", d.sidecar));
    assert_eq!(before["status"], "stopped");
    std::thread::sleep(Duration::from_millis(500));
    let after = get(&format!("{}/state", d.sidecar));
    assert_eq!(
        before["tasks_completed"], after["tasks_completed"],
        "no step after stop"
    );
    let cands = get(&format!("{}/candidates", d.sidecar));
    let first = &cands["items"][0];
    assert!(first["validator_score"].as_f64().is_some());
    assert!(first["algorithm_dsl"]
        .as_str()
        .unwrap()
        .contains("# predict"));
    assert_eq!(
        get(&format!("{}/appliance/status", d.sidecar))["miner"]["running"],
        false
    );
    // Idempotent.
    assert!(mine(&d, &["stop"]).status.success());
    let out = mine(&d, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["miner"]["running"], false);
}

#[test]
fn problem_config_drives_a_run_to_its_iteration_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = write_problem_config(tmp.path(), json!({"iterations": 150, "log_every": 50}));
    let d = Daemon::start(Opts::default().env("BITSOTA_MINER_PROBLEM_CONFIG", &pc));
    let r = http()
        .post(format!("{}/runs/start", d.sidecar))
        .json(&json!({"run_id": "pc", "task_type": "scalar_linear"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().unwrap()["run_id"], "pc");
    // The run ends on its own after `args.iterations` children.
    let state = poll_until(300, Duration::from_millis(100), || {
        let s = get(&format!("{}/state?run_id=pc", d.sidecar));
        (s["status"] == "stopped").then_some(s)
    })
    .expect("run finished");
    assert_eq!(state["tasks_completed"], 150);
    let l = logs(&d);
    let progress: Vec<&String> = l.iter().filter(|m| m.contains(" Iter ")).collect();
    // Progress lines are time-based (at most one a second per worker) and the last
    // one, at the run's end, always comes: a 150-child run logs its first checkpoint
    // and its final count.
    assert!(
        (2..=4).contains(&progress.len()),
        "first checkpoint and final count: {progress:?}"
    );
    assert!(progress[0].contains("Iter 0050"), "{progress:?}");
    assert!(
        progress.last().unwrap().contains("Iter 0150"),
        "{progress:?}"
    );
    assert!(
        l.iter().any(|m| m.contains("seed=7")),
        "args.seed honoured: {l:?}"
    );
    assert!(l.iter().any(|m| m == "[miner] stopped after 150 children"));
}

#[test]
fn unknown_problem_config_keys_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("problem_config.json");
    std::fs::write(
        &path,
        r#"{"mining": {"engine": "baseline", "pop_sise": 10}}"#,
    )
    .unwrap();
    let pc = path.display().to_string();
    let d = Daemon::start(Opts::default().env("BITSOTA_MINER_PROBLEM_CONFIG", &pc));
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let detail = r.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("mining.pop_sise: unknown key"), "{detail}");
    let out = mine(&d, &["start"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a config problem is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("mining.pop_sise: unknown key"));

    // With autostart the daemon refuses to start, naming the key.
    let out = Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(common::repo_root().join("appliance.toml"))
        .env("BITSOTA_DATA_DIR", tmp.path().join("data2"))
        .env("BITSOTA_RELAY_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_SIDECAR_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_POOL_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_VALIDATOR_ENABLED", "false")
        .env("BITSOTA_LOG_FILE", "false")
        .env("BITSOTA_MINER_AUTOSTART", "true")
        .env("BITSOTA_MINER_PROBLEM_CONFIG", &pc)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mining.pop_sise: unknown key"), "{err}");
}

#[test]
fn daemon_shutdown_stops_mining_and_keeps_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = write_problem_config(tmp.path(), json!({}));
    let mut d = Daemon::start(
        Opts::default()
            .env("BITSOTA_MINER_PROBLEM_CONFIG", &pc)
            .env("BITSOTA_MINER_AUTOSTART", "true"),
    );
    let candidate = poll_until(300, Duration::from_millis(100), || {
        let v = get(&format!("{}/candidates", d.sidecar));
        v["items"].as_array()?.first().cloned()
    })
    .expect("autostart mines and verifies a candidate");
    let run_id = get(&format!("{}/state", d.sidecar))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // SIGTERM: exits 0 (the harness checks) with the workers stopped and the run kept.
    d.restart();
    let state = get(&format!("{}/state?run_id={run_id}", d.sidecar));
    assert_eq!(state["status"], "stopped");
    let v = get(&format!("{}/candidates?run_id={run_id}", d.sidecar));
    assert_eq!(v["items"][0]["algorithm_dsl"], candidate["algorithm_dsl"]);
    // Autostart began a fresh run on the restarted daemon.
    let now = get(&format!("{}/appliance/status", d.sidecar));
    assert_eq!(now["miner"]["running"], true);
    assert_ne!(now["miner"]["run_id"].as_str(), Some(run_id.as_str()));
}

#[test]
fn a_run_that_cannot_prepare_its_tasks_reports_why() {
    let d = Daemon::start(Opts::default());
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({"task_type": "mnist_binary", "run_id": "no-data"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let err = poll_until(300, Duration::from_millis(100), || {
        let m = &get(&format!("{}/appliance/status", d.sidecar))["miner"];
        (m["running"] == false).then(|| m["last_error"].as_str().map(str::to_string))?
    })
    .expect("the run ends with an error");
    assert!(err.contains("mnist"), "{err}");
    let state = get(&format!("{}/state?run_id=no-data", d.sidecar));
    assert_eq!(state["status"], "stopped");
    assert!(logs(&d)
        .iter()
        .any(|m| m.contains("[error] [miner]") && m.contains("mnist")));
    // Not mining any more: a new start is accepted.
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({"task_type": "scalar_linear"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn pool_mining_runs_the_pool_coordinator() {
    let d = Daemon::start(Opts::default());
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({"task_type": "pool", "run_id": "pooled", "workers": 1}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let miner = &get(&format!("{}/appliance/status", d.sidecar))["miner"];
    assert_eq!(
        (miner["running"].as_bool(), miner["task_type"].as_str()),
        (Some(true), Some("pool"))
    );
    // The coordinator registers with the embedded pool and logs into the run.
    let registered = poll_until(300, Duration::from_millis(100), || {
        logs(&d)
            .iter()
            .any(|m| m.starts_with("[pool] Registered with pool"))
            .then_some(())
    });
    assert!(registered.is_some(), "{:?}", logs(&d));
    let out = mine(&d, &["stop"]);
    assert!(out.status.success());
    assert_eq!(
        get(&format!("{}/appliance/status", d.sidecar))["miner"]["running"],
        false
    );
    assert_eq!(
        get(&format!("{}/state?run_id=pooled", d.sidecar))["status"],
        "stopped"
    );
}
