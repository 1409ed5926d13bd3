//! The reference's own clients against the appliance, unchanged (issue 14): the
//! reference pool driver's flow end to end against `bitsota worker`, the pool's answer to
//! a driver that lost its task, `BITSOTA_TEST_MODE=1`, pool mode completing a cycle on
//! one appliance, and the status and keys of every endpoint a reference client calls.

use crate::common;
use crate::relay_support;

use bitsota::keys::{pool_headers, Keypair};
use common::ledger::check_ledger;
use common::{http, poll_until, Daemon, Opts};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn send(rb: RequestBuilder) -> (u16, Value) {
    let r = rb.send().expect("request");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A pool client signing as the reference's `PoolApiClient` does: fresh headers on every
/// request, and on submissions the same three values repeated in the body.
struct PoolClient {
    base: String,
    kp: Keypair,
    c: Client,
}

impl PoolClient {
    fn new(base: &str) -> Self {
        PoolClient {
            base: base.to_string(),
            kp: Keypair::generate(),
            c: http(),
        }
    }

    fn headers(&self, rb: RequestBuilder) -> (RequestBuilder, Value) {
        let h = pool_headers(&self.kp, relay_support::now());
        let envelope = json!({
            "public_address": h.key,
            "signature": h.signature,
            "message": format!("auth:{}", h.timestamp),
        });
        let rb = h.pairs().iter().fold(rb, |rb, (k, v)| rb.header(*k, *v));
        (rb, envelope)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (rb, _) = self.headers(self.c.post(format!("{}{path}", self.base)));
        send(rb.json(&body))
    }

    /// A submission: headers plus the envelope in the body.
    fn submit(&self, path: &str, mut body: Value) -> (u16, Value) {
        let (rb, envelope) = self.headers(self.c.post(format!("{}{path}", self.base)));
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), envelope) {
            b.extend(e);
        }
        send(rb.json(&body))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (rb, _) = self.headers(self.c.get(format!("{}{path}", self.base)));
        send(rb)
    }
}

/// A headless driver speaking exactly the requests of the reference's
/// `pool_sidecar_driver` (its `PoolTaskCoordinator.tick`): register, poll the sidecar's
/// job results, submit a completed job's result to the pool, otherwise request a task
/// (evaluate after three evolves, the other kind as fallback) and enqueue it.
struct Driver {
    pool: PoolClient,
    sidecar: String,
    run_id: String,
    c: Client,
    registered: bool,
    /// `(job_id, batch_id, kind)` of the job in flight.
    active: Option<(String, String, String)>,
    last_request: Option<Instant>,
    evolve_streak: u32,
    cursor: u64,
    started: Instant,
    /// `(seconds since start, line)`, as the reference prints them.
    log: Vec<(f64, String)>,
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

impl Driver {
    fn new(pool: &str, sidecar: &str, run_id: &str) -> Self {
        let c = http();
        // `_start_run`: a fresh run the worker pulls from.
        let (s, v) = send(
            c.post(format!("{sidecar}/runs/start"))
                .json(&json!({"run_id": run_id, "replace": true})),
        );
        assert_eq!((s, v["run_id"].as_str()), (200, Some(run_id)));
        Driver {
            pool: PoolClient::new(pool),
            sidecar: sidecar.to_string(),
            run_id: run_id.to_string(),
            c,
            registered: false,
            active: None,
            last_request: None,
            evolve_streak: 0,
            cursor: 0,
            started: Instant::now(),
            log: Vec::new(),
        }
    }

    fn say(&mut self, line: String) {
        self.log.push((self.started.elapsed().as_secs_f64(), line));
    }

    fn request_task(&mut self, kind: &str) -> Option<(String, String, Vec<Value>)> {
        let (s, v) = self
            .pool
            .post("/api/v1/tasks/request", json!({"task_type": kind}));
        match s {
            200 => {
                let algos = v["algorithms"].as_array().cloned().unwrap_or_default();
                let batch = match &v["batch_id"] {
                    Value::String(b) => b.clone(),
                    other => other.to_string(),
                };
                let k = v["task_type"].as_str().unwrap_or_default().to_string();
                (!algos.is_empty() && !k.is_empty()).then_some((batch, k, algos))
            }
            404 => None,
            _ => {
                self.say(format!(
                    "[pool] request_task failed task_type={kind}: HTTP {s} ({})",
                    v["detail"]
                ));
                None
            }
        }
    }

    fn tick(&mut self) {
        if !self.registered {
            self.registered = self.pool.post("/api/v1/miners/register", json!({})).0 == 200;
            if self.registered {
                self.say("[pool] Registered with pool".into());
            }
        }
        let (_, page) = send(
            self.c
                .get(format!("{}/jobs/results", self.sidecar))
                .query(&[
                    ("run_id", self.run_id.as_str()),
                    ("cursor", &self.cursor.to_string()),
                    ("limit", "50"),
                ]),
        );
        if let Some(c) = page["cursor"].as_u64() {
            self.cursor = c;
        }
        for ev in page["items"].as_array().cloned().unwrap_or_default() {
            let payload = &ev["payload"];
            if !payload.is_object() {
                continue;
            }
            let Some((job_id, batch_id, kind)) = self.active.clone() else {
                continue;
            };
            if ev["job_id"].as_str() != Some(job_id.as_str()) {
                continue;
            }
            if ev["status"] != "completed" {
                self.say(format!(
                    "[pool] Job failed kind={} status={}",
                    ev["kind"].as_str().unwrap_or(""),
                    ev["status"].as_str().unwrap_or("None")
                ));
                self.active = None;
                self.last_request = None;
                continue;
            }
            let result = &ev["result"];
            let ok = if kind == "evolve" {
                let parents: Vec<Value> = payload["algorithms"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| !p["id"].is_null())
                    .map(|p| json!({"id": p["id"]}))
                    .collect();
                let ok = match result["evolved_function"].as_str() {
                    Some(evolved) if !evolved.is_empty() => {
                        self.pool
                            .submit(
                                &format!("/api/v1/tasks/{batch_id}/submit_evolution"),
                                json!({"evolved_function": evolved, "parent_functions": parents}),
                            )
                            .0
                            == 200
                    }
                    _ => false,
                };
                self.say(format!(
                    "[pool] submit_evolution ok={} batch_id={batch_id}",
                    py_bool(ok)
                ));
                ok
            } else {
                let evaluations = result["evaluations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ok = self
                    .pool
                    .submit(
                        &format!("/api/v1/tasks/{batch_id}/submit_evaluation"),
                        json!({ "evaluations": evaluations }),
                    )
                    .0
                    == 200;
                self.say(format!(
                    "[pool] submit_evaluation ok={} batch_id={batch_id} n={}",
                    py_bool(ok),
                    evaluations.len()
                ));
                ok
            };
            // `note_submission`.
            let status = if ok { "submitted" } else { "failed" };
            let (s, _) = send(
                self.c
                    .post(format!("{}/submission_result", self.sidecar))
                    .json(&json!({"run_id": self.run_id, "score": 0.0, "status": status})),
            );
            assert_eq!(s, 200);
            self.active = None;
            self.last_request = None;
        }
        if self.active.is_some() || !self.registered {
            return;
        }
        if self
            .last_request
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_request = Some(Instant::now());
        let preferred = if self.evolve_streak >= 3 {
            "evaluate"
        } else {
            "evolve"
        };
        let fallback = if preferred == "evolve" {
            "evaluate"
        } else {
            "evolve"
        };
        let Some((batch_id, kind, algorithms)) = self
            .request_task(preferred)
            .or_else(|| self.request_task(fallback))
        else {
            return;
        };
        let mut payload = json!({"batch_id": batch_id, "algorithms": algorithms});
        if !algorithms[0]["input_dim"].is_null() {
            payload["input_dim"] = algorithms[0]["input_dim"].clone();
        }
        let (s, v) = send(
            self.c
                .post(format!("{}/jobs/enqueue", self.sidecar))
                .json(&json!({"run_id": self.run_id, "kind": kind, "payload": payload})),
        );
        let Some(job_id) = v["job_id"].as_str().filter(|_| s == 200) else {
            self.say(format!(
                "[pool] Failed to enqueue sidecar job for kind={kind}"
            ));
            return;
        };
        self.say(format!(
            "[pool] Enqueued job kind={kind} batch_id={batch_id} job_id={job_id}"
        ));
        self.active = Some((job_id.to_string(), batch_id, kind.clone()));
        if kind == "evolve" {
            self.evolve_streak += 1;
        } else {
            self.evolve_streak = 0;
        }
    }

    /// Seconds until the first line containing `text`.
    fn first(&self, text: &str) -> Option<f64> {
        self.log
            .iter()
            .find(|(_, l)| l.contains(text))
            .map(|(t, _)| *t)
    }

    fn dump(&self) -> String {
        self.log
            .iter()
            .map(|(t, l)| format!("{t:7.2} {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[test]
fn reference_driver_flow_against_bitsota_worker() {
    // The shipped configuration, from an empty data directory.
    let d = Daemon::start(Opts::default().shipped_pool());
    let mut driver = Driver::new(&d.pool, &d.sidecar, "pool_smoke");
    let _worker = common::Reaped(common::spawn_worker(&d.sidecar, "pool_smoke", 1));
    let until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < until {
        driver.tick();
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = driver.dump();
    let evolved = driver.first("[pool] submit_evolution ok=True");
    let evaluated = driver.first("[pool] submit_evaluation ok=True");
    assert!(evolved.is_some_and(|t| t < 20.0), "{log}");
    assert!(evaluated.is_some_and(|t| t < 20.0), "{log}");
    assert!(driver.first("ok=False").is_none(), "{log}");
    assert!(driver.first("request_task failed").is_none(), "{log}");
    // No stranded task: whatever the pool holds for this miner is the job in flight.
    let (s, stats) = driver.pool.get("/api/v1/miners/stats");
    assert_eq!(s, 200, "{stats}");
    let held = stats["active_task"].as_u64().map(|b| b.to_string());
    let in_flight = driver.active.as_ref().map(|(_, b, _)| b.clone());
    assert_eq!(held, in_flight, "{log}\n{stats}");
    assert!(stats["evolutions"].as_u64().unwrap() >= 2, "{stats}");
}

#[test]
fn a_driver_that_lost_its_task_gets_it_back() {
    let d = Daemon::start(Opts::default());
    let m = PoolClient::new(&d.pool);
    let (s, task) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200, "{task}");
    // The driver's job failed and it forgot the task; it asks again, for either kind.
    for kind in ["evolve", "evaluate"] {
        let (s, again) = m.post("/api/v1/tasks/request", json!({ "task_type": kind }));
        assert_eq!(s, 200, "{again}");
        assert_eq!(again["batch_id"], task["batch_id"]);
        assert_eq!(again["task_type"], "evolve");
        assert_eq!(again["algorithms"], task["algorithms"]);
    }
    let (s, r) = m.submit(
        &format!("/api/v1/tasks/{}/submit_evolution", task["batch_id"]),
        json!({"evolved_function": "# predict\ns0 = dot(v0, v1)\n",
               "parent_functions": [{"id": task["algorithms"][0]["id"]}]}),
    );
    assert_eq!(s, 200, "{r}");
    // Done: the next request is a new task.
    let (s, next) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200);
    assert_ne!(next["batch_id"], task["batch_id"]);
}

/// Whether a daemon started with `BITSOTA_TEST_MODE=value` (and a file that says
/// otherwise) runs its relay in test mode: a miner without an invitation may submit.
fn relay_test_mode(value: &str) -> bool {
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_RELAY_TEST_MODE", "false")
            .env("BITSOTA_TEST_MODE", value),
    );
    let api = relay_support::Api::new(&d.relay);
    let a = api.submit(&Keypair::generate(), "t", 0.5, 1);
    match a.status {
        200 => true,
        403 => false,
        other => panic!("BITSOTA_TEST_MODE={value}: {other} {}", a.body),
    }
}

#[test]
fn bitsota_test_mode_takes_the_reference_spellings() {
    // The reference's own `relay --test` sets it to 1.
    assert!(relay_test_mode("1"));
    assert!(relay_test_mode("Yes"));
    assert!(!relay_test_mode("0"));
    assert!(!relay_test_mode("OFF"));
}

#[test]
fn pool_mining_on_one_appliance_completes_a_cycle() {
    // Shipped configuration (local evaluators and genesis on), a short epoch.
    let d = Daemon::start(
        Opts::default()
            .shipped_pool()
            .env("BITSOTA_POOL_EPOCH_S", "20"),
    );
    let out = std::process::Command::new(common::bin())
        .args(["mine", "start", "--task", "pool", "--workers", "1"])
        .arg("--config")
        .arg(common::repo_root().join("appliance.toml"))
        .arg("--data-dir")
        .arg(&d.data_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    common::assert_success(&out);
    let pool = PoolClient::new(&d.pool);
    // Within two minutes: verified algorithms with consensus scores.
    let verified = poll_until(240, Duration::from_millis(500), || {
        let (_, v) = pool.get("/api/v1/results/?limit=1000");
        let list = v.as_array().cloned().unwrap_or_default();
        let mined = list.iter().any(|a| !a["miner_hotkey"].is_null());
        (mined && list.iter().any(|a| a["score"].is_f64())).then_some(list)
    })
    .unwrap_or_else(|| panic!("no verified evolution in 2 minutes; {}", d.stderr()));
    for a in &verified {
        let evals = a["evaluations"].as_array().unwrap();
        assert_eq!(evals.len(), 3, "{a}");
        assert!(evals.iter().all(|e| e["accurate"] == true), "{a}");
    }
    // A closed epoch pays out with provable leaves.
    let ledger = poll_until(120, Duration::from_millis(500), || {
        let (_, e) = pool.get("/api/v1/epochs");
        let n = e["epochs"].as_array()?.first()?["epoch"].as_u64()?;
        let (_, ledger) = pool.get(&format!("/api/v1/epochs/{n}"));
        (!ledger["payouts"].as_array()?.is_empty()).then_some(ledger)
    })
    .expect("an epoch with payouts closes");
    check_ledger(&ledger);
    // The dashboard's Pool tab reads the monitor summary: the cycle is there.
    let (_, m) = pool.get("/api/v1/monitor/summary");
    assert!(m["verified"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["local_evaluators"], 3, "{m}");
    let (_, board) = pool.get("/api/v1/miners/leaderboard");
    assert!(board.as_array().unwrap().len() >= 4, "{board}");
    // `mine status` shows the pool's progress, not generations (nor a `-0` rate).
    let out = std::process::Command::new(common::bin())
        .args(["mine", "status", "--sidecar-url", &d.sidecar])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in ["evolutions:", "evaluations:", "working on:", "reputation:"] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("generation") && !text.contains("-0.0"),
        "{text}"
    );
    let evolutions = text
        .lines()
        .find_map(|l| l.strip_prefix("evolutions:"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(evolutions >= Some(1), "{text}");
}

// ---- conformance: status and keys of every endpoint a reference client calls ----

fn has_keys(what: &str, v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_some(), "{what}: no key {k:?} in {v}");
    }
}

#[test]
fn sidecar_endpoints_answer_the_reference_shapes() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let url = |p: &str| format!("{}{p}", d.sidecar);
    let (s, v) = send(c.get(url("/health")));
    assert_eq!(s, 200);
    has_keys("/health", &v, &["status", "ts"]);
    let (s, v) = send(
        c.post(url("/runs/start"))
            .json(&json!({"run_id": "k", "replace": true})),
    );
    assert_eq!((s, &v["run_id"]), (200, &json!("k")));
    let state_keys = [
        "run_id",
        "status",
        "global_sota",
        "local_sota",
        "successful_submissions",
        "tasks_completed",
        "best_candidate_score",
        "queued_jobs",
        "leased_jobs",
        "completed_jobs",
        "updated_at_s",
    ];
    for q in ["?run_id=k", "?run_id=unknown", ""] {
        let (s, v) = send(c.get(url(&format!("/state{q}"))));
        assert_eq!(s, 200);
        has_keys("/state", &v, &state_keys);
        assert!(v["updated_at_s"].is_number(), "{v}");
    }
    for (path, body) in [
        ("/set_global_sota", json!({"run_id": "k", "value": 0.5})),
        (
            "/submission_result",
            json!({"run_id": "k", "score": 0.6, "status": "submitted"}),
        ),
        ("/runs/stop", json!({"run_id": "k"})),
    ] {
        let (s, v) = send(c.post(url(path)).json(&body));
        assert_eq!((s, &v["status"]), (200, &json!("ok")), "{path}");
    }
    let (s, v) = send(c.post(url("/ingest_batch")).json(&json!({"run_id": "k", "events": [
        {"type": "progress", "worker_id": 0, "iteration": 1},
        {"type": "candidate", "worker_id": 0, "iteration": 1, "eval_score": 0.1,
         "validator_score": 0.1, "input_dim": 16, "algorithm_dsl": "", "task_type": "scalar_linear"},
        {"type": "population", "worker_id": 0, "population": []},
        {"type": "error", "worker_id": 0, "message": "boom",
         "traceback": "Traceback (most recent call last):\nValueError: boom"}]})));
    assert_eq!(
        (s, &v["status"], &v["received"]),
        (200, &json!("ok"), &json!(4))
    );
    for path in ["/logs", "/candidates", "/populations", "/jobs/results"] {
        let (s, v) = send(c.get(url(&format!("{path}?run_id=k&cursor=0&limit=10"))));
        assert_eq!(s, 200, "{path}");
        has_keys(path, &v, &["cursor", "items"]);
    }
    let (s, v) = send(c.post(url("/jobs/enqueue")).json(
        &json!({"run_id": "k", "kind": "evolve", "payload": {"batch_id": "1", "algorithms": []}}),
    ));
    assert_eq!(s, 200);
    has_keys("/jobs/enqueue", &v, &["run_id", "job_id", "status"]);
    let job_id = v["job_id"].as_str().unwrap().to_string();
    let (s, v) = send(c.get(url("/jobs/next?run_id=k")));
    assert_eq!(s, 200);
    has_keys("/jobs/next", &v, &["run_id", "job"]);
    has_keys(
        "/jobs/next job",
        &v["job"],
        &[
            "job_id",
            "kind",
            "payload",
            "status",
            "attempt",
            "worker_id",
        ],
    );
    assert_eq!(v["job"]["worker_id"], "worker");
    assert_eq!(send(c.get(url("/jobs/next?run_id=k"))).0, 204);
    let (s, v) = send(
        c.post(url(&format!("/jobs/{job_id}/result")))
            .json(&json!({"run_id": "k", "status": "ok", "result": {"evolved_function": "x"}})),
    );
    assert_eq!((s, &v["status"]), (200, &json!("ok")));
    let (_, v) = send(c.get(url("/jobs/results?run_id=k")));
    let item = &v["items"][0];
    has_keys(
        "/jobs/results item",
        item,
        &[
            "job_id",
            "run_id",
            "kind",
            "status",
            "attempt",
            "worker_id",
            "payload",
            "result",
            "error",
            "ts",
        ],
    );
    assert_eq!(item["status"], "completed");
    assert_eq!(item["payload"], json!({"batch_id": "1", "algorithms": []}));

    // Log items: the reference's `{"type": "log", "ts", "message"}`, with its lines for
    // population events, errors (the traceback) and job results.
    let (s, v) = send(
        c.post(url("/jobs/enqueue"))
            .json(&json!({"run_id": "k", "job_id": "j-bad", "kind": "evaluate", "payload": {}})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(send(c.get(url("/jobs/next?run_id=k"))).0, 200);
    let (s, _) = send(
        c.post(url("/jobs/j-bad/result"))
            .json(&json!({"run_id": "k", "status": "error", "result": {}, "error": "x"})),
    );
    assert_eq!(s, 200);
    let (_, v) = send(c.get(url("/logs?run_id=k&cursor=0&limit=500")));
    let items = v["items"].as_array().unwrap();
    for item in items {
        has_keys("/logs item", item, &["type", "ts", "message"]);
        assert_eq!(item["type"], "log", "{item}");
    }
    let messages: Vec<&str> = items.iter().filter_map(|i| i["message"].as_str()).collect();
    for line in [
        "[population] w0 pop_size=0".to_string(),
        "[error] Traceback (most recent call last):\nValueError: boom".to_string(),
        format!("[job] {job_id} -> completed"),
        "[job] j-bad -> failed".to_string(),
    ] {
        assert!(
            messages.contains(&line.as_str()),
            "no {line:?} in {messages:?}"
        );
    }
}

/// FastAPI's validation answer: 422 and `{"detail": [{"loc", "msg", "type"}]}` with the
/// failing field at the end of `loc`.
fn assert_fastapi_422(what: &str, (status, body): (u16, Value), loc: Value) {
    assert_eq!(status, 422, "{what}: {body}");
    let items = body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert_eq!(items.len(), 1, "{what}: {body}");
    has_keys(what, &items[0], &["loc", "msg", "type"]);
    assert_eq!(items[0]["loc"], loc, "{what}: {body}");
    assert!(
        items[0]["msg"].is_string() && items[0]["type"].is_string(),
        "{what}: {body}"
    );
}

#[test]
fn validation_errors_answer_fastapis_422_on_both_listeners() {
    use relay_support::{Api, As};
    let d = Daemon::start(Opts::default());
    let c = http();
    let url = |p: &str| format!("{}{p}", d.sidecar);
    // The sidecar: a required field missing, or of the wrong type.
    let post = |path: &str, body: Value| send(c.post(url(path)).json(&body));
    assert_fastapi_422(
        "set_global_sota without value",
        post("/set_global_sota", json!({"run_id": "k"})),
        json!(["body", "value"]),
    );
    assert_fastapi_422(
        "enqueue without kind",
        post("/jobs/enqueue", json!({"run_id": "k", "payload": {}})),
        json!(["body", "kind"]),
    );
    assert_fastapi_422(
        "submission_result with a text score",
        post("/submission_result", json!({"score": "x", "status": "ok"})),
        json!(["body", "score"]),
    );
    assert_fastapi_422(
        "logs?limit=x",
        send(c.get(url("/logs?limit=x"))),
        json!(["query", "limit"]),
    );
    // The sidecar's own checks stay 400s with a string.
    let (s, v) = post("/jobs/enqueue", json!({"kind": " ", "payload": {}}));
    assert_eq!((s, v["detail"].as_str()), (400, Some("kind is required")));
    // The relay.
    let api = Api::new(&d.relay);
    let (m, v) = (Keypair::generate(), Keypair::generate());
    let a = api.post(
        "/submit_solution",
        As::Miner(&m),
        &json!({"algorithm_result": {}, "score": 0.9}),
    );
    assert_fastapi_422(
        "submit without task_id",
        (a.status, a.body),
        json!(["body", "task_id"]),
    );
    let a = api.post(
        "/sota/vote",
        As::Validator(&v),
        &json!({"miner_hotkey": m.ss58(), "score": "high", "seen_block": 5}),
    );
    assert_fastapi_422(
        "vote with a text score",
        (a.status, a.body),
        json!(["body", "score"]),
    );
    let a = api.get("/results?limit=abc", As::Validator(&v));
    assert_fastapi_422(
        "results?limit=abc",
        (a.status, a.body),
        json!(["query", "limit"]),
    );
    // Deliberate differences (ARCHITECTURE.md): a missing signature header is a 401.
    let a = api.post(
        "/submit_solution",
        As::Nobody,
        &json!({"task_id": "t", "algorithm_result": {}, "score": 0.9}),
    );
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.body["detail"].is_string(), "{}", a.body);
}

#[test]
fn relay_endpoints_answer_the_reference_shapes() {
    use relay_support::{Api, As};
    let d = Daemon::start(Opts::default());
    let api = Api::new(&d.relay);
    let (miner, validator) = (Keypair::generate(), Keypair::generate());
    let a = api.get("/health", As::Nobody);
    assert_eq!(a.status, 200);
    has_keys("/health", &a.body, &["status", "timestamp"]);
    // The seed's GUI config points update_manifest_url here: served without configuration.
    let a = api.get("/version.json", As::Nobody);
    assert_eq!(a.status, 200, "{}", a.body);
    has_keys(
        "/version.json",
        &a.body,
        &["version", "versionCode", "desc", "mac", "linux", "windows"],
    );
    let a = api.get("/sota_threshold", As::Nobody);
    assert_eq!(a.status, 200);
    has_keys(
        "/sota_threshold",
        &a.body,
        &["task_type", "sota_threshold", "updated_at", "cached"],
    );
    let a = api.submit(&miner, "task", 0.5, 7);
    assert_eq!(a.status, 200, "{}", a.body);
    has_keys("/submit_solution", &a.body, &["result_id", "status"]);
    let result_keys = [
        "id",
        "miner_hotkey",
        "task_id",
        "algorithm_result",
        "score",
        "timestamp",
        "validator_verified",
        "signature",
        "timestamp_message",
        "coldkey_address",
    ];
    let a = api.get("/results", As::Validator(&validator));
    assert_eq!(a.status, 200);
    has_keys("/results", &a.body[0], &result_keys);
    assert!(a.body[0]["algorithm_result"].is_string());
    let a = api.get(
        &format!("/results/{}", miner.ss58()),
        As::Validator(&validator),
    );
    assert_eq!(a.status, 200);
    has_keys("/results/{hotkey}", &a.body[0], &result_keys);
    let a = api.vote(&validator, &miner.ss58(), 0.5, 100);
    assert_eq!(a.status, 200, "{}", a.body);
    has_keys(
        "/sota/vote",
        &a.body,
        &[
            "status",
            "votes_for_candidate",
            "votes_needed",
            "current_sota",
            "finalized_event",
        ],
    );
    let event_keys = [
        "id",
        "miner_hotkey",
        "score",
        "score_int",
        "result_id",
        "decision_block",
        "start_block",
        "end_block",
        "alignment_mod",
        "t2_blocks",
        "created_at",
    ];
    has_keys("finalized_event", &a.body["finalized_event"], &event_keys);
    let a = api.get("/sota/events", As::Validator(&validator));
    assert_eq!(a.status, 200);
    has_keys("/sota/events", &a.body[0], &event_keys);
    let a = api.get("/sota-events", As::Nobody);
    assert_eq!(a.status, 200);
    has_keys(
        "/sota-events",
        &a.body,
        &["results", "total", "page", "page_size", "total_pages"],
    );
    has_keys(
        "/sota-events row",
        &a.body["results"][0],
        &["miner_hotkey", "score", "created_at"],
    );
    let a = api.post(
        &format!("/blacklist/{}", Keypair::generate().ss58()),
        As::Validator(&validator),
        &json!({}),
    );
    assert_eq!(
        (a.status, &a.body["status"]),
        (200, &json!("blacklist vote recorded"))
    );
    let a = api.get("/invitation_code/linked", As::Miner(&miner));
    assert_eq!(a.status, 200);
    has_keys("/invitation_code/linked", &a.body, &["data"]);
    let a = api.post(
        "/invitation_code/link",
        As::Miner(&miner),
        &json!({"code": "TESTTEST1"}),
    );
    assert_eq!((a.status, &a.body["data"]), (200, &json!(1)));
    let a = api.post(
        "/coldkey_address/update",
        As::Miner(&miner),
        &json!({"coldkey_address": Keypair::generate().ss58()}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    has_keys(
        "/coldkey_address/update",
        &a.body,
        &["status", "coldkey_address", "invite_code"],
    );
    let a = api.post(
        "/test/submit_solution",
        As::Validator(&validator),
        &json!({"task_id": "t", "algorithm_result": {"x": 1}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    has_keys(
        "/test/submit_solution",
        &a.body,
        &["test_submission_id", "status"],
    );
    let a = api.get("/test/submissions", As::Validator(&validator));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.is_array(), "{}", a.body);
}

#[test]
fn pool_endpoints_answer_the_reference_shapes() {
    // Genesis work on (as shipped), local evaluators off, so the test's miner gets it.
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_POOL_GENESIS_ALGORITHMS", "4")
            .env("BITSOTA_POOL_SEED_FROM_RELAY", "false"),
    );
    let m = PoolClient::new(&d.pool);
    let (s, v) = send(http().get(format!("{}/health", d.pool)));
    assert_eq!(s, 200);
    has_keys(
        "/health",
        &v,
        &["status", "window_number", "time_remaining_s"],
    );
    let (s, v) = m.post("/api/v1/miners/register", json!({}));
    assert_eq!(s, 200);
    has_keys(
        "register",
        &v,
        &["hotkey", "reputation", "registered_at", "last_seen"],
    );
    let algorithm_keys = ["id", "algorithm_dsl", "input_dim", "task_type"];
    // Genesis work is there to evaluate from the start.
    let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evaluate"}));
    assert_eq!(s, 200, "{t}");
    has_keys(
        "tasks/request",
        &t,
        &["batch_id", "task_type", "algorithms"],
    );
    has_keys("task algorithm", &t["algorithms"][0], &algorithm_keys);
    let evals: Vec<Value> = t["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!({"algorithm_id": a["id"], "score": 0.25}))
        .collect();
    let (s, r) = m.submit(
        &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
        json!({ "evaluations": evals }),
    );
    assert_eq!(s, 200, "{r}");
    let (s, t) = m.post("/api/v1/tasks/request", json!({"task_type": "evolve"}));
    assert_eq!(s, 200, "{t}");
    let (s, r) = m.submit(
        &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
        json!({"evolved_function": "# predict\ns0 = dot(v0, v1)\n",
               "parent_functions": [{"id": t["algorithms"][0]["id"]}]}),
    );
    assert_eq!(s, 200, "{r}");
    let (s, l) = m.post(
        "/api/v1/tasks/lease",
        json!({"eval_batch_size": 8, "seed_batch_size": 8}),
    );
    assert_eq!(s, 200, "{l}");
    has_keys(
        "tasks/lease",
        &l,
        &[
            "lease_id",
            "window_number",
            "timeout_at",
            "evolve_budget",
            "evaluate_algorithms",
            "seed_algorithms",
        ],
    );
    has_keys("lease seed", &l["seed_algorithms"][0], &algorithm_keys);
    let (s, again) = m.post("/api/v1/tasks/lease", json!({}));
    assert_eq!(
        (s, again["detail"].as_str()),
        (
            400,
            Some("Lease already issued for this window. Wait for next window.")
        )
    );
    let (s, r) = m.submit(
        &format!("/api/v1/tasks/{}/submit_lease", l["lease_id"]),
        json!({"evaluations": [], "evolutions": [], "iterations": 0}),
    );
    assert_eq!(s, 200, "{r}");
    let (s, r) = m.submit(
        &format!("/api/v1/tasks/{}/submit_lease", l["lease_id"]),
        json!({"evaluations": [], "evolutions": [], "iterations": 0}),
    );
    assert_eq!(
        (s, r["detail"].as_str()),
        (404, Some("Active lease assignment not found"))
    );
    let (s, v) = m.get("/api/v1/miners/stats");
    assert_eq!(s, 200);
    has_keys(
        "stats",
        &v,
        &["hotkey", "reputation", "evaluations", "evolutions"],
    );
    let (s, v) = send(http().get(format!("{}/api/v1/miners/leaderboard", d.pool)));
    assert_eq!(s, 200);
    has_keys(
        "leaderboard row",
        &v[0],
        &["rank", "hotkey", "reputation", "evaluations", "evolutions"],
    );
    let (s, _) = m.get("/api/v1/results/?limit=10");
    assert_eq!(s, 200);
    let (s, v) = send(http().get(format!("{}/api/v1/monitor/summary", d.pool)));
    assert_eq!(s, 200);
    has_keys(
        "monitor",
        &v,
        &[
            "leases_issued_15m",
            "leases_completed_15m",
            "pending_evaluations",
            "backlog",
            "alerts",
        ],
    );
    let (s, v) = send(http().get(format!("{}/api/v1/epochs", d.pool)));
    assert_eq!(s, 200);
    has_keys("epochs", &v, &["current_epoch", "epochs"]);
    let (s, v) = send(http().get(format!("{}/api/v1/epochs/{}", d.pool, v["current_epoch"])));
    assert_eq!(s, 200);
    has_keys("open epoch", &v, &["epoch", "status", "start", "end"]);
    // Nothing has three evaluations yet: no consensus-verified best.
    let (s, v) = send(http().get(format!(
        "{}/api/v1/results/sota?task_type=scalar_linear",
        d.pool
    )));
    assert_eq!(
        (s, v["detail"].as_str()),
        (404, Some("No consensus-verified algorithm yet"))
    );
}

#[test]
fn eval_json_writes_a_non_finite_score_in_the_documented_form() {
    let dir = tempfile::tempdir().unwrap();
    // Predictions overflow to infinity on every task: the score is -inf.
    let dsl = dir.path().join("blowup.dsl");
    std::fs::write(
        &dsl,
        "# setup\ns2 = 1e30\n# predict\ns0 = s2 * s2\n# learn\n",
    )
    .unwrap();
    let run = |json: bool| {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(["eval", "--task", "scalar_linear", "--tasks", "2", "--dsl"])
            .arg(&dsl)
            .arg("--data-dir")
            .arg(dir.path());
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        common::assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run(false).contains("score -inf"), "{}", run(false));
    let v: Value = serde_json::from_str(run(true).trim()).unwrap();
    assert_eq!(v["score"], Value::Null, "{v}");
    assert_eq!(v["invalid"], "-inf", "{v}");
}
