//! `bitsota worker`: usage errors, and jobs enqueued on a daemon's sidecar completed by a
//! separate worker process (`pool_api.rs` also runs one for a lease coordinator).

use crate::common;

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .arg("worker")
        .args(args)
        .output()
        .expect("run bitsota worker")
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = worker(&["--sidecar-url", "localhost:8123", "--run-id", "r"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sidecar-url"), "{err}");
    let out = worker(&["--sidecar-url", "http://127.0.0.1:9", "--run-id", " "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--run-id"));
    // --run-id is required.
    assert_eq!(
        worker(&["--sidecar-url", "http://127.0.0.1:9"])
            .status
            .code(),
        Some(2)
    );
}

/// `bitsota worker`, a separate process, completes jobs enqueued through `/jobs/enqueue`
/// on a daemon's sidecar, and posts results that are right.
#[test]
fn worker_completes_jobs_enqueued_on_a_daemon() {
    use serde_json::{json, Value};
    let d = common::Daemon::start(common::Opts::default());
    let c = common::http();
    let run = "external-run";
    let started = c
        .post(format!("{}/runs/start", d.sidecar))
        .json(&json!({ "run_id": run }))
        .send()
        .unwrap();
    assert!(started.status().is_success());
    let learner =
        std::fs::read_to_string(common::repo_root().join("fixtures/programs/linear_sgd.dsl"))
            .unwrap();
    let empty =
        std::fs::read_to_string(common::repo_root().join("fixtures/programs/empty.dsl")).unwrap();
    let suite =
        json!({"task_type": "scalar_linear", "input_dim": 16, "task_count": 8, "task_seed": 1337});
    let jobs = [
        (
            "eval-1",
            "evaluate",
            json!({"suite": suite, "algorithms": [
            {"id": 1, "algorithm_dsl": learner}, {"id": 2, "algorithm_dsl": empty}]}),
        ),
        (
            "evolve-1",
            "evolve",
            json!({"suite": suite, "parents": [{"id": 2, "algorithm_dsl": empty}],
            "budget": 50, "seed": 3, "pop_size": 8}),
        ),
    ];
    for (id, kind, payload) in &jobs {
        let r = c
            .post(format!("{}/jobs/enqueue", d.sidecar))
            .json(&json!({"run_id": run, "job_id": id, "kind": kind, "payload": payload}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }
    let mut child = common::spawn_worker(&d.sidecar, run, 2);
    let results = common::poll_until(240, std::time::Duration::from_millis(250), || {
        let page: Value = c
            .get(format!("{}/jobs/results?run_id={run}&cursor=0", d.sidecar))
            .send()
            .ok()?
            .json()
            .ok()?;
        let items = page["items"].as_array()?.clone();
        (items.len() >= 2).then_some(items)
    })
    .expect("the worker posts both results");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = common::wait_bounded(&mut child, std::time::Duration::from_secs(30));
    assert!(status.success(), "worker exit: {status}");

    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r.to_string().contains(id))
            .unwrap_or_else(|| panic!("no result for {id}: {results:?}"))
            .clone()
    };
    let eval = by_id("eval-1").to_string();
    let eval: Value = serde_json::from_str(&eval).unwrap();
    let evaluations = eval["result"]["evaluations"]
        .as_array()
        .expect("evaluations");
    let score = |id: u64| {
        evaluations
            .iter()
            .find(|e| e["algorithm_id"] == id)
            .and_then(|e| e["score"].as_f64())
            .unwrap_or(f64::NAN)
    };
    assert!(score(1) >= 0.99, "learner scored {}", score(1));
    assert!(score(2) < 0.5, "empty program scored {}", score(2));
    let evolved = by_id("evolve-1");
    let dsl = evolved["result"]["evolved_function"]
        .as_str()
        .expect("evolved_function");
    bitsota::engine::parse_program(dsl).expect("the evolved program parses");
}
