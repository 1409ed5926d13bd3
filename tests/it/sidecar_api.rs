//! The sidecar over HTTP against the real daemon: every endpoint, cursor and lease edge,
//! malformed input, and persistence across a restart.

use crate::common;

use common::{http, Daemon, Opts};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::time::Duration;

fn get(c: &Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().expect("GET");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(c: &Client, url: &str, body: &Value) -> (u16, Value) {
    post_raw(c, url, body.to_string())
}

fn post_raw(c: &Client, url: &str, body: String) -> (u16, Value) {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn start_run(c: &Client, d: &Daemon, run_id: &str) {
    let (s, v) = post(
        c,
        &format!("{}/runs/start", d.sidecar),
        &json!({"run_id": run_id}),
    );
    assert_eq!((s, v["run_id"].as_str()), (200, Some(run_id)));
}

#[test]
fn run_state_sota_and_submissions() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let (s, v) = get(&c, &format!("{}/health", d.sidecar));
    assert_eq!(s, 200);
    assert_eq!(v["status"], "ok");
    assert!(v["ts"].as_f64().unwrap() > 1.0e9);

    // No run yet: the idle shape.
    let (s, v) = get(&c, &format!("{}/state?run_id=nope", d.sidecar));
    assert_eq!(s, 200);
    assert_eq!(v["status"], "idle");
    assert_eq!(v["successful_submissions"], 0);
    assert_eq!(v["queued_jobs"], 0);
    assert!(v["local_sota"].is_null() && v["global_sota"].is_null());
    // The reference answers a number here, never null.
    assert!(v["updated_at_s"].as_f64().unwrap() > 1.0e9, "{v}");
    // A submission result for a run that does not exist is refused (the reference's 400).
    let (s, v) = post(
        &c,
        &format!("{}/submission_result", d.sidecar),
        &json!({"run_id": "nope", "score": 0.5, "status": "accepted"}),
    );
    assert_eq!((s, v["detail"].as_str()), (400, Some("unknown run nope")));
    let (s, _) = post(
        &c,
        &format!("{}/submission_result", d.sidecar),
        &json!({"score": 0.5, "status": "accepted"}),
    );
    assert_eq!(s, 400, "no run at all yet");

    // A run without an id gets one and becomes current.
    let (s, v) = post_raw(&c, &format!("{}/runs/start", d.sidecar), String::new());
    assert_eq!(s, 200);
    let generated = v["run_id"].as_str().unwrap().to_string();
    assert!(generated.starts_with("run-"));
    start_run(&c, &d, "r1");
    let (_, v) = get(&c, &format!("{}/state", d.sidecar));
    assert_eq!(
        (v["run_id"].as_str(), v["status"].as_str()),
        (Some("r1"), Some("running"))
    );

    let (s, _) = post(
        &c,
        &format!("{}/set_global_sota", d.sidecar),
        &json!({"value": 0.42}),
    );
    assert_eq!(s, 200);
    for (score, status) in [
        (0.5, "accepted"),
        (0.7, "rejected"),
        (0.6, "success"),
        (0.55, "submitted"),
    ] {
        let (s, v) = post(
            &c,
            &format!("{}/submission_result", d.sidecar),
            &json!({"run_id": "r1", "score": score, "status": status}),
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    }
    let (_, v) = get(&c, &format!("{}/state?run_id=r1", d.sidecar));
    assert_eq!(v["global_sota"], 0.42);
    assert_eq!(v["successful_submissions"], 3);
    assert_eq!(v["local_sota"], 0.6);

    // Bad input: reasons, never 500.
    let (s, v) = post(
        &c,
        &format!("{}/set_global_sota", d.sidecar),
        &json!({"value": "x"}),
    );
    assert_eq!(
        (s, v["detail"][0]["msg"].as_str()),
        (422, Some("value must be a number"))
    );
    let (s, v) = post(
        &c,
        &format!("{}/submission_result", d.sidecar),
        &json!({"score": 1.0}),
    );
    assert_eq!(
        (s, v["detail"][0]["msg"].as_str()),
        (422, Some("status is required"))
    );
    let (s, _) = post(
        &c,
        &format!("{}/runs/start", d.sidecar),
        &json!({"replace": "yes"}),
    );
    assert_eq!(s, 422);
    let (s, v) = get(&c, &format!("{}/nope", d.sidecar));
    assert_eq!((s, v["detail"].as_str()), (404, Some("Not Found")));
    let (s, v) = get(&c, &format!("{}/runs/start", d.sidecar));
    assert_eq!((s, v["detail"].as_str()), (405, Some("Method Not Allowed")));

    // Stop: the named run stops; an unknown one is 404.
    let (s, v) = post(
        &c,
        &format!("{}/runs/stop", d.sidecar),
        &json!({"run_id": "r1"}),
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (_, v) = get(&c, &format!("{}/state?run_id=r1", d.sidecar));
    assert_eq!(v["status"], "stopped");
    let (s, _) = post(
        &c,
        &format!("{}/runs/stop", d.sidecar),
        &json!({"run_id": "ghost"}),
    );
    assert_eq!(s, 404);
    // Resume keeps the data; replace wipes it.
    post(
        &c,
        &format!("{}/runs/start", d.sidecar),
        &json!({"run_id": "r1", "replace": false}),
    );
    let (_, v) = get(&c, &format!("{}/state?run_id=r1", d.sidecar));
    assert_eq!(
        (v["status"].as_str(), v["successful_submissions"].as_u64()),
        (Some("running"), Some(3))
    );
    start_run(&c, &d, "r1");
    let (_, v) = get(&c, &format!("{}/state?run_id=r1", d.sidecar));
    assert_eq!(v["successful_submissions"], 0);
}

#[test]
fn ingest_events_logs_and_candidates() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let url = format!("{}/ingest_batch", d.sidecar);
    let events = json!({"run_id": "m", "events": [
        {"type": "progress", "worker_id": 0, "iteration": 42, "rate": 1500.25, "engine_best": 0.5},
        {"type": "progress", "worker_id": 1, "iteration": 8},
        {"type": "candidate", "worker_id": 0, "iteration": 42, "eval_score": 0.6,
         "validator_score": 0.55, "input_dim": 16, "algorithm_dsl": "# predict\n", "task_type": "scalar_linear"},
        {"type": "population", "worker_id": 0, "members": [1, 2]},
        {"type": "error", "message": "boom"},
        {"message": "plain"},
        {"type": "custom", "x": 1},
        {"type": "done", "worker_id": 1}
    ]});
    let (s, v) = post(&c, &url, &events);
    assert_eq!((s, v["received"].as_u64()), (200, Some(8)));
    let (_, v) = get(&c, &format!("{}/logs?run_id=m", d.sidecar));
    let lines: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            "[w0] Iter 0042: engine_best=0.500000 pop_best=n/a rate=1500.25",
            "[w1] Iter 0008: engine_best=n/a pop_best=n/a rate=n/a",
            "[candidate] w0 iter 42: verified_score=0.550000",
            "[population] w0 pop_size=n/a",
            "[error] boom",
            "plain",
            r#"{"type":"custom","x":1}"#,
            "[w1] done",
        ]
    );
    assert_eq!(v["cursor"], 8);
    let (_, v) = get(&c, &format!("{}/candidates?run_id=m", d.sidecar));
    let cand = &v["items"][0];
    assert_eq!(
        (cand["seq"].as_u64(), cand["validator_score"].as_f64()),
        (Some(0), Some(0.55))
    );
    assert_eq!(cand["algorithm_dsl"], "# predict\n");
    let (_, v) = get(&c, &format!("{}/populations?run_id=m&limit=50", d.sidecar));
    assert_eq!(v["items"][0]["members"], json!([1, 2]));
    let (_, v) = get(&c, &format!("{}/state?run_id=m", d.sidecar));
    assert_eq!(v["tasks_completed"], 50);
    assert_eq!(v["best_candidate_score"], 0.55);
    assert_eq!(v["status"], "running");
    // `done` without a worker stops the run.
    post(
        &c,
        &url,
        &json!({"run_id": "m", "events": [{"type": "done"}]}),
    );
    let (_, v) = get(&c, &format!("{}/state?run_id=m", d.sidecar));
    assert_eq!(v["status"], "stopped");

    // Malformed bodies: 400 with a reason, and nothing of a bad batch lands.
    for (body, reason) in [
        ("{not json".to_string(), "Invalid JSON"),
        (json!([1]).to_string(), "body must be a JSON object"),
        (json!({"run_id": "m", "events": {}}).to_string(), "events must be a list"),
        (json!({"events": []}).to_string(), "run_id is required"),
        (json!({"run_id": " ", "events": []}).to_string(), "run_id must be 1 to 128 printable characters, not all blank"),
        (
            json!({"run_id": "m", "events": [{"type": "progress", "worker_id": 0, "iteration": "x"}]}).to_string(),
            "events[0].iteration must be a non-negative integer",
        ),
        (
            json!({"run_id": "m", "events": [{"type": "candidate", "worker_id": 0, "iteration": 1, "validator_score": "hi"}]}).to_string(),
            "events[0].validator_score must be a number or null",
        ),
    ] {
        let (s, v) = post_raw(&c, &url, body.clone());
        assert_eq!((s, v["detail"].as_str()), (400, Some(reason)), "{body}");
    }
    let (_, v) = get(&c, &format!("{}/logs?run_id=m&cursor=9", d.sidecar));
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "{v}");
    // Events that are not objects are skipped, as the reference does; the rest land.
    let (s, v) = post(
        &c,
        &url,
        &json!({"run_id": "m", "events": [5, {"message": "kept"}, "x", null, [1]]}),
    );
    assert_eq!((s, v["received"].as_u64()), (200, Some(1)), "{v}");
    let (_, v) = get(&c, &format!("{}/logs?run_id=m&cursor=9", d.sidecar));
    assert_eq!(v["items"][0]["message"], "kept", "{v}");
}

#[test]
fn cursors_over_rolling_stores() {
    // The reference's cap of a run's logs (the shipped one is smaller).
    let d = Daemon::start(Opts::default().env("BITSOTA_STORE_MAX_RUN_LOGS", "5000"));
    let c = http();
    let events: Vec<Value> = (0..5005)
        .map(|i| json!({"message": format!("m{i}")}))
        .collect();
    let (s, _) = post(
        &c,
        &format!("{}/ingest_batch", d.sidecar),
        &json!({"run_id": "c", "events": events}),
    );
    assert_eq!(s, 200);
    let logs = |q: &str| get(&c, &format!("{}/logs?run_id=c&{q}", d.sidecar));
    // Below base: the 5 rolled-out items are skipped silently.
    let (_, v) = logs("cursor=0&limit=3");
    assert_eq!(v["items"][0]["seq"], 5);
    assert_eq!(v["items"][0]["message"], "m5");
    assert_eq!(v["cursor"], 8);
    // Default limit 200.
    let (_, v) = logs("cursor=100");
    assert_eq!(v["items"].as_array().unwrap().len(), 200);
    assert_eq!(v["cursor"], 300);
    // The tail, then beyond the end: nothing, cursor at the end.
    let (_, v) = logs("cursor=5000&limit=500");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    assert_eq!(v["cursor"], 5005);
    let (_, v) = logs("cursor=99999");
    assert_eq!(
        (v["items"].as_array().unwrap().len(), v["cursor"].as_u64()),
        (0, Some(5005))
    );
    // Limits and cursors out of range are clamped, as the reference does.
    for (q, count, cursor) in [
        ("cursor=5000&limit=0", 1, 5001),
        ("cursor=0&limit=501", 500, 505),
        ("cursor=0&limit=-7", 1, 6),
        ("cursor=-1&limit=2", 2, 7),
        (
            "cursor=-99999999999999999999999&limit=99999999999999999999999",
            500,
            505,
        ),
    ] {
        let (s, v) = logs(q);
        assert_eq!(s, 200, "{q}");
        assert_eq!(
            (v["items"].as_array().unwrap().len(), v["cursor"].as_u64()),
            (count, Some(cursor)),
            "{q}"
        );
    }
    // Only a cursor that is not an integer is refused.
    let (s, v) = logs("cursor=x");
    assert_eq!(
        (s, v["detail"][0]["msg"].as_str()),
        (422, Some("cursor must be an integer"))
    );
    let (s, v) = get(&c, &format!("{}/populations?run_id=c&limit=51", d.sidecar));
    assert_eq!((s, v["items"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, _) = get(
        &c,
        &format!("{}/jobs/results?run_id=c&limit=0&cursor=-3", d.sidecar),
    );
    assert_eq!(s, 200);
    // An unknown run: empty page, and the cursor it was sent comes back.
    let (s, v) = get(&c, &format!("{}/candidates?run_id=zzz&cursor=4", d.sidecar));
    assert_eq!(
        (
            s,
            v["items"].as_array().unwrap().len(),
            v["cursor"].as_u64()
        ),
        (200, 0, Some(4))
    );
}

#[test]
fn job_queue_leases_and_results() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let enqueue = |body: Value| post(&c, &format!("{}/jobs/enqueue", d.sidecar), &body);
    let next = |q: &str| {
        let r = c
            .get(format!("{}/jobs/next?{q}", d.sidecar))
            .send()
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().unwrap_or(Value::Null))
    };
    start_run(&c, &d, "j");
    // Empty queue: 204.
    assert_eq!(next("run_id=j&worker_id=w1").0, 204);
    for id in ["a", "b", "c"] {
        let (s, v) =
            enqueue(json!({"run_id": "j", "job_id": id, "kind": "evolve", "payload": {"n": id}}));
        assert_eq!(
            (s, v["status"].as_str(), v["job_id"].as_str()),
            (200, Some("queued"), Some(id))
        );
    }
    let (s, v) = enqueue(json!({"run_id": "j", "job_id": "a", "kind": "evolve"}));
    assert_eq!(
        (s, v["detail"].as_str()),
        (409, Some("job a already exists"))
    );
    let (s, v) = enqueue(json!({"run_id": "j", "kind": "evaluate"}));
    assert_eq!(s, 200);
    let generated = v["job_id"].as_str().unwrap().to_string();
    assert_eq!(enqueue(json!({"run_id": "j", "payload": {}})).0, 422);
    // A blank kind or run id is refused, as the reference does.
    assert_eq!(enqueue(json!({"run_id": "j", "kind": "  "})).0, 400);
    assert_eq!(enqueue(json!({"run_id": " ", "kind": "evolve"})).0, 400);
    assert_eq!(
        enqueue(json!({"run_id": "j", "kind": "x", "payload": [1]})).0,
        422
    );

    // Lease a (short) and b (long); a expires and returns to the FRONT, before c.
    let (s, v) = next("run_id=j&worker_id=w1&lease_seconds=0.3");
    assert_eq!(
        (s, v["job"]["job_id"].as_str(), v["run_id"].as_str()),
        (200, Some("a"), Some("j"))
    );
    assert_eq!(v["job"]["payload"]["n"], "a");
    assert_eq!(v["job"]["status"], "leased");
    let (_, v) = next("run_id=j&worker_id=w2&lease_seconds=600");
    assert_eq!(v["job"]["job_id"], "b");
    let (_, v) = get(&c, &format!("{}/state?run_id=j", d.sidecar));
    assert_eq!(
        (v["queued_jobs"].as_u64(), v["leased_jobs"].as_u64()),
        (Some(2), Some(2))
    );
    std::thread::sleep(Duration::from_millis(400));
    let (_, v) = next("run_id=j&worker_id=w3");
    assert_eq!(v["job"]["job_id"], "a");
    assert_eq!(v["job"]["attempt"], 2);
    assert_eq!(v["job"]["worker_id"], "w3");
    let (_, v) = next("run_id=j&worker_id=w3");
    assert_eq!(v["job"]["job_id"], "c");
    let (_, v) = next("run_id=j&worker_id=w3");
    assert_eq!(v["job"]["job_id"], generated.as_str());
    assert_eq!(next("run_id=j&worker_id=w3").0, 204);
    // No worker_id: the reference's default name; the queue is empty, so 204.
    assert_eq!(next("run_id=j").0, 204);
    assert_eq!(next("run_id=j&worker_id=w&lease_seconds=0").0, 400);

    // Results.
    let result =
        |job: &str, body: Value| post(&c, &format!("{}/jobs/{job}/result", d.sidecar), &body);
    let (s, v) = result(
        "a",
        json!({"run_id": "j", "status": "ok", "result": {"evolved_function": "x"}}),
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, _) = result(
        "b",
        json!({"run_id": "j", "status": "error", "error": "bad"}),
    );
    assert_eq!(s, 200);
    let (s, v) = result("nope", json!({"run_id": "j", "status": "ok"}));
    assert_eq!((s, v["detail"].as_str()), (404, Some("unknown job nope")));
    let (s, _) = result("a", json!({"run_id": "ghost", "status": "ok"}));
    assert_eq!(s, 404);
    let (s, _) = result("c", json!({"run_id": "j", "status": "done"}));
    assert_eq!(s, 400);
    let (_, v) = get(&c, &format!("{}/jobs/results?run_id=j", d.sidecar));
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // The reference driver's view: `completed`/`failed`, the payload as enqueued, the
    // attempt counter.
    assert_eq!(
        (items[0]["job_id"].as_str(), items[0]["status"].as_str()),
        (Some("a"), Some("completed"))
    );
    assert_eq!(items[0]["result"]["evolved_function"], "x");
    assert_eq!(items[0]["payload"], json!({"n": "a"}));
    assert_eq!(
        (items[0]["attempt"].as_u64(), items[0]["kind"].as_str()),
        (Some(2), Some("evolve"))
    );
    assert_eq!(items[0]["worker_id"], "w3");
    assert_eq!(
        (items[1]["status"].as_str(), items[1]["error"].as_str()),
        (Some("failed"), Some("bad"))
    );
    assert_eq!(items[1]["payload"], json!({"n": "b"}));
    assert_eq!(v["cursor"], 2);
    let (_, v) = get(&c, &format!("{}/state?run_id=j", d.sidecar));
    assert_eq!(
        (
            v["queued_jobs"].as_u64(),
            v["leased_jobs"].as_u64(),
            v["completed_jobs"].as_u64()
        ),
        (Some(0), Some(2), Some(2)),
        "completed_jobs counts failed jobs too"
    );
}

#[test]
fn runs_candidates_and_jobs_survive_restart() {
    let mut d = Daemon::start(Opts::default());
    let c = http();
    start_run(&c, &d, "keep");
    post(
        &c,
        &format!("{}/ingest_batch", d.sidecar),
        &json!({"run_id": "keep", "events": [
            {"type": "candidate", "worker_id": 0, "iteration": 5, "validator_score": 0.9, "algorithm_dsl": "p"},
            {"type": "progress", "worker_id": 0, "iteration": 5}
        ]}),
    );
    post(
        &c,
        &format!("{}/submission_result", d.sidecar),
        &json!({"score": 0.9, "status": "accepted"}),
    );
    for id in ["x", "y"] {
        post(
            &c,
            &format!("{}/jobs/enqueue", d.sidecar),
            &json!({"job_id": id, "kind": "evolve"}),
        );
    }
    let (s, _) = get(
        &c,
        &format!(
            "{}/jobs/next?run_id=keep&worker_id=w&lease_seconds=600",
            d.sidecar
        ),
    );
    assert_eq!(s, 200);

    d.restart();
    let (_, v) = get(&c, &format!("{}/state", d.sidecar));
    assert_eq!(v["run_id"], "keep", "the current run survives");
    assert_eq!(
        (
            v["local_sota"].as_f64(),
            v["successful_submissions"].as_u64()
        ),
        (Some(0.9), Some(1))
    );
    assert_eq!(
        (v["queued_jobs"].as_u64(), v["leased_jobs"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["tasks_completed"], 5);
    let (_, v) = get(&c, &format!("{}/candidates?run_id=keep", d.sidecar));
    assert_eq!(v["items"][0]["algorithm_dsl"], "p");
    let (_, v) = get(
        &c,
        &format!("{}/jobs/next?run_id=keep&worker_id=w2", d.sidecar),
    );
    assert_eq!(v["job"]["job_id"], "y");
    // Seqs continue where they were.
    post(
        &c,
        &format!("{}/ingest_batch", d.sidecar),
        &json!({"run_id": "keep", "events": [{"message": "after"}]}),
    );
    let (_, v) = get(&c, &format!("{}/logs?run_id=keep&cursor=3", d.sidecar));
    assert_eq!(v["items"][0]["message"], "after");
    assert_eq!(v["items"][0]["seq"], 3);

    // kill -9 after sled's background flush (durability "async"): still there.
    std::thread::sleep(Duration::from_millis(1500));
    d.crash_and_restart();
    let (_, v) = get(&c, &format!("{}/logs?run_id=keep&cursor=3", d.sidecar));
    assert_eq!(v["items"][0]["message"], "after");
    let (_, v) = get(&c, &format!("{}/state?run_id=keep", d.sidecar));
    assert_eq!(v["leased_jobs"], 2);
}

#[test]
fn appliance_api_when_not_mining() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let (s, v) = get(&c, &format!("{}/appliance/status", d.sidecar));
    assert_eq!(s, 200);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        v["services"]["sidecar"]["url"].as_str(),
        Some(d.sidecar.as_str())
    );
    assert_eq!(
        v["services"]["relay"]["url"].as_str(),
        Some(d.relay.as_str())
    );
    assert_eq!(v["miner"]["running"], false);
    assert!(v["miner"]["run_id"].is_null() && v["miner"]["generation"].is_null());
    assert_eq!(
        v["validators"],
        json!([]),
        "validators are disabled in tests"
    );
    // Idempotent stop.
    for _ in 0..2 {
        let (s, v) = post_raw(
            &c,
            &format!("{}/appliance/mine/stop", d.sidecar),
            String::new(),
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("stopped")));
    }
    let (s, v) = post(
        &c,
        &format!("{}/appliance/mine/start", d.sidecar),
        &json!({"engine": "turbo"}),
    );
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("unknown engine"));
    let (s, _) = post(
        &c,
        &format!("{}/appliance/mine/start", d.sidecar),
        &json!({"workers": -1}),
    );
    assert_eq!(s, 422);
}
