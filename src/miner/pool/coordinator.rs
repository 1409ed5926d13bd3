//! The pool coordinator (pool.md §4): the miner's side of pool mining. It registers
//! with the pool, asks for work (tasks or leases), enqueues each piece as a sidecar job,
//! waits for a worker to post the job's result, and submits that result to the pool —
//! retrying transient failures every 2 s and dropping permanent ones with a log line.
//! Log lines follow the reference (`[pool] Registered with pool`, `[pool] Enqueued job
//! kind=…`, `[pool] submit_evolution ok=…`, …) and also go to the run's sidecar log.

use super::worker::{pause, read_json, run_worker, ClientError, SidecarClient, RETRY};
use super::PoolMiningError;
use crate::jobs::{AlgorithmRef, EvaluatePayload, EvolvePayload, Jobs, LeasePayload, SuiteRef};
use crate::keys::{pool_headers, Keypair};
use crate::protocol::pool::{ACTIVE_TASK, LEASE_ALREADY_ISSUED};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Back-off after `Miner already has active task`.
const ACTIVE_TASK_BACKOFF: Duration = Duration::from_secs(5);
/// Evolves in a row before the coordinator asks to evaluate.
const EVOLVES_BEFORE_EVALUATE: u32 = 3;
/// How often the coordinator looks for its job's result.
const RESULT_POLL: Duration = Duration::from_millis(200);

/// Which pool protocol to speak: miner task type `pool` or `pool_lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// `POST /tasks/request` evolve/evaluate batches.
    Tasks,
    /// `POST /tasks/lease` once per window.
    Lease,
}

impl PoolMode {
    /// `pool` → Tasks, `pool_lease` → Lease.
    pub fn from_task_type(t: &str) -> Option<Self> {
        match t {
            "pool" => Some(PoolMode::Tasks),
            "pool_lease" => Some(PoolMode::Lease),
            _ => None,
        }
    }
}

/// Everything a coordinator needs; [`spawn_coordinator`] fills it from the appliance.
#[derive(Clone)]
pub struct CoordinatorSettings {
    pub pool_url: String,
    pub sidecar_url: String,
    pub keypair: Keypair,
    pub run_id: String,
    pub mode: PoolMode,
    /// Children per evolve job (lease jobs use the lease's `evolve_budget`).
    pub evolve_budget: u64,
    /// The suite evolution fitness is measured on (the miner suite).
    pub evolve_task_count: usize,
    pub evolve_task_seed: u64,
    /// The evaluation suite when the pool does not name one.
    pub eval_task_count: usize,
    pub eval_task_seed: u64,
    pub pop_size: usize,
    /// Base of the per-job evolution seeds.
    pub seed: u64,
}

/// Counters a caller (dashboard, tests) can read while the coordinator runs.
#[derive(Debug, Default)]
pub struct CoordinatorStats {
    pub jobs_enqueued: AtomicU64,
    pub submissions_ok: AtomicU64,
    pub submissions_dropped: AtomicU64,
    /// Accepted submissions by kind.
    pub evolutions_submitted: AtomicU64,
    pub evaluations_submitted: AtomicU64,
    pub leases_submitted: AtomicU64,
    /// The work in hand (`evolve batch 3`, `lease 7`), none between pieces.
    pub current: parking_lot::Mutex<Option<String>>,
    /// This miner's reputation at the pool, read after each accepted submission.
    pub reputation: parking_lot::Mutex<Option<f64>>,
}

impl CoordinatorStats {
    /// Pool-mode progress as `mine status` and the dashboard show it.
    pub fn progress(&self) -> Value {
        json!({
            "evolutions_submitted": self.evolutions_submitted.load(Ordering::Relaxed),
            "evaluations_submitted": self.evaluations_submitted.load(Ordering::Relaxed),
            "leases_submitted": self.leases_submitted.load(Ordering::Relaxed),
            "current": *self.current.lock(),
            "reputation": *self.reputation.lock(),
        })
    }
}

/// A running coordinator and its worker threads.
pub struct CoordinatorHandle {
    pub stats: Arc<CoordinatorStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CoordinatorHandle {
    /// Set the stop flag and wait for every thread (each stops within one step).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.join();
    }

    /// Wait for every thread to end (after someone sets the stop flag). A supervisor
    /// that tracks one `JoinHandle` per run can run this on its own thread.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Start pool mining for the appliance: the coordinator uses the miner hotkey
/// (`<data_dir>/keys/miner`), `miner.pool_endpoint` or the embedded pool, and the
/// embedded sidecar's job queue under `run_id`; `workers` in-process worker threads
/// execute the jobs (external `bitsota worker`s may pull from the same run). Setting
/// `stop` ends every thread; [`CoordinatorHandle::stop`] also joins them.
pub fn spawn_coordinator(
    ctx: &crate::context::AppContext,
    mode: PoolMode,
    run_id: &str,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Result<CoordinatorHandle, PoolMiningError> {
    let cfg = &ctx.config;
    let pool_url = if cfg.miner.pool_endpoint.is_empty() {
        ctx.endpoints.pool.clone()
    } else {
        Some(cfg.miner.pool_endpoint.clone())
    }
    .ok_or_else(|| {
        PoolMiningError::Config("pool mining needs miner.pool_endpoint or the embedded pool".into())
    })?;
    let sidecar_url = ctx.endpoints.sidecar.clone().ok_or_else(|| {
        PoolMiningError::Config("pool mining needs the sidecar (sidecar.enabled)".into())
    })?;
    let keypair = crate::keys::identity::load_or_create(&ctx.data_dir, "miner")?;
    let settings = CoordinatorSettings {
        pool_url: pool_url.trim_end_matches('/').to_string(),
        sidecar_url,
        keypair,
        run_id: run_id.to_string(),
        mode,
        evolve_budget: cfg.pool.evolve_budget as u64,
        evolve_task_count: cfg.miner.miner_task_count,
        evolve_task_seed: cfg.miner.miner_task_seed,
        eval_task_count: cfg.pool.eval_task_count,
        eval_task_seed: cfg.validator.task_seed,
        pop_size: 16,
        seed: cfg
            .miner
            .seed
            .unwrap_or_else(|| rand::random::<u32>() as u64),
    };
    let jobs = Jobs::new(Some(&ctx.data_dir), ctx.config.budget.clone());
    Ok(spawn(settings, Arc::new(jobs), workers, stop))
}

/// Start a coordinator with explicit settings (several may run in one process, each
/// with its own key and run).
pub fn spawn(
    settings: CoordinatorSettings,
    jobs: Arc<Jobs>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> CoordinatorHandle {
    let stats = Arc::new(CoordinatorStats::default());
    let mut threads = Vec::new();
    // Blocking HTTP clients are built inside the threads: the caller may be on an async
    // runtime thread, where building or dropping one is not allowed.
    for w in 0..workers {
        let (url, run_id, stop, jobs) = (
            settings.sidecar_url.clone(),
            settings.run_id.clone(),
            stop.clone(),
            jobs.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let client = SidecarClient::new(&url);
            run_worker(&client, &jobs, &run_id, &format!("w{w}"), &stop)
        }));
    }
    let (st, stop2) = (stats.clone(), stop.clone());
    threads.push(std::thread::spawn(move || {
        let sidecar = SidecarClient::new(&settings.sidecar_url);
        Coordinator::new(settings, sidecar, st, stop2).run()
    }));
    CoordinatorHandle {
        stats,
        stop,
        threads,
    }
}

/// A signed client of the pool API.
struct PoolClient {
    base: String,
    kp: Keypair,
    http: reqwest::blocking::Client,
}

impl PoolClient {
    fn signed(&self, rb: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        let h = pool_headers(&self.kp, crate::clock::now_s());
        h.pairs().iter().fold(rb, |rb, (k, v)| rb.header(*k, *v))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let rb = self.signed(self.http.post(&url)).json(body);
        read_json(&url, rb.send()).map(|(_, v)| v)
    }

    fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        read_json(&url, self.signed(self.http.get(&url)).send()).map(|(_, v)| v)
    }

    fn health(&self) -> Result<Value, ClientError> {
        let url = format!("{}/health", self.base);
        read_json(&url, self.http.get(&url).send()).map(|(_, v)| v)
    }
}

fn detail_is(e: &ClientError, text: &str) -> bool {
    matches!(e, ClientError::Status { detail, .. } if detail == text)
}

fn status_is(e: &ClientError, code: u16) -> bool {
    matches!(e, ClientError::Status { status, .. } if *status == code)
}

struct Coordinator {
    s: CoordinatorSettings,
    pool: PoolClient,
    sidecar: SidecarClient,
    stats: Arc<CoordinatorStats>,
    stop: Arc<AtomicBool>,
    cursor: u64,
    jobs: u64,
}

impl Coordinator {
    fn new(
        s: CoordinatorSettings,
        sidecar: SidecarClient,
        stats: Arc<CoordinatorStats>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let pool = PoolClient {
            base: s.pool_url.clone(),
            kp: s.keypair.clone(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        };
        Coordinator {
            s,
            pool,
            sidecar,
            stats,
            stop,
            cursor: 0,
            jobs: 0,
        }
    }

    fn live(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// A log line to tracing and (best effort) to the run's sidecar log.
    fn log(&self, message: String) {
        tracing::info!("{message}");
        if let Err(e) = self.sidecar.log(&self.s.run_id, &message) {
            tracing::debug!(error = %e, "[pool] sidecar log failed");
        }
    }

    fn run(mut self) {
        if !self.register() {
            return;
        }
        match self.s.mode {
            PoolMode::Tasks => self.run_tasks(),
            PoolMode::Lease => self.run_leases(),
        }
    }

    fn register(&self) -> bool {
        while self.live() {
            match self.pool.post("/api/v1/miners/register", &json!({})) {
                Ok(_) => {
                    self.log(format!(
                        "[pool] Registered with pool {} as {}",
                        self.s.pool_url,
                        self.s.keypair.ss58()
                    ));
                    return true;
                }
                Err(e) => {
                    self.log(format!("[pool] Registration failed: {e}; retrying"));
                    pause(RETRY, &self.stop);
                }
            }
        }
        false
    }

    fn eval_suite(&self, advertised: &Value, task_type: &str, input_dim: usize) -> SuiteRef {
        SuiteRef {
            task_type: task_type.to_string(),
            input_dim,
            task_count: advertised["task_count"]
                .as_u64()
                .map_or(self.s.eval_task_count, |n| n as usize),
            task_seed: advertised["task_seed"]
                .as_u64()
                .unwrap_or(self.s.eval_task_seed),
        }
    }

    fn evolve_suite(&self, task_type: &str, input_dim: usize) -> SuiteRef {
        SuiteRef {
            task_type: task_type.to_string(),
            input_dim,
            task_count: self.s.evolve_task_count,
            task_seed: self.s.evolve_task_seed,
        }
    }

    fn next_seed(&mut self) -> u64 {
        self.jobs += 1;
        self.s.seed.wrapping_mul(1_000_003).wrapping_add(self.jobs)
    }

    fn run_tasks(&mut self) {
        let mut evolves = 0u32;
        while self.live() {
            let kind = if evolves >= EVOLVES_BEFORE_EVALUATE {
                "evaluate"
            } else {
                "evolve"
            };
            let task = match self
                .pool
                .post("/api/v1/tasks/request", &json!({ "task_type": kind }))
            {
                Ok(t) => t,
                Err(e) if status_is(&e, 404) => {
                    if kind == "evaluate" {
                        evolves = 0;
                    } else {
                        pause(RETRY, &self.stop);
                    }
                    continue;
                }
                Err(e) if detail_is(&e, ACTIVE_TASK) => {
                    self.log("[pool] Miner already has active task; backing off 5s".into());
                    pause(ACTIVE_TASK_BACKOFF, &self.stop);
                    continue;
                }
                Err(e) => {
                    self.log(format!("[pool] Task request failed: {e}"));
                    pause(RETRY, &self.stop);
                    continue;
                }
            };
            // The pool answers a miner's still-active task whatever kind was asked for.
            let kind = match task["task_type"].as_str() {
                Some("evaluate") => "evaluate",
                Some("evolve") => "evolve",
                _ => kind,
            };
            if kind == "evolve" {
                evolves += 1;
            } else {
                evolves = 0;
            }
            self.do_task(kind, &task);
        }
    }

    fn do_task(&mut self, kind: &str, task: &Value) {
        let batch_id = task["batch_id"].as_u64().unwrap_or(0);
        *self.stats.current.lock() = Some(format!("{kind} batch {batch_id}"));
        self.do_task_inner(kind, task, batch_id);
        *self.stats.current.lock() = None;
    }

    fn do_task_inner(&mut self, kind: &str, task: &Value, batch_id: u64) {
        let algorithms = algorithm_refs(&task["algorithms"]);
        let (task_type, input_dim) = first_task_of(&task["algorithms"]);
        let payload = if kind == "evolve" {
            let seed = self.next_seed();
            serde_json::to_value(EvolvePayload {
                suite: Some(self.evolve_suite(&task_type, input_dim)),
                algorithms,
                input_dim: Some(input_dim),
                budget: self.s.evolve_budget,
                seed: Some(seed),
                pop_size: self.s.pop_size,
            })
        } else {
            serde_json::to_value(EvaluatePayload {
                suite: Some(self.eval_suite(&task["suite"], &task_type, input_dim)),
                algorithms,
            })
        }
        .unwrap_or(Value::Null);
        let Some(outcome) = self.run_job(kind, &format!("batch_id={batch_id}"), payload) else {
            return;
        };
        let path_kind = if kind == "evolve" {
            "submit_evolution"
        } else {
            "submit_evaluation"
        };
        let body = match (kind, outcome) {
            ("evolve", Ok(r)) => json!({
                "evolved_function": r["evolved_function"],
                "parent_functions": r["parent_ids"].as_array().cloned().unwrap_or_default()
                    .into_iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            }),
            ("evolve", Err(e)) => {
                self.log(format!(
                    "[pool] {path_kind} ok=false batch_id={batch_id} reason=job failed: {e}"
                ));
                return;
            }
            (_, Ok(r)) => json!({ "evaluations": r["evaluations"] }),
            // Hand the batch back so the pool can reassign it.
            (_, Err(_)) => json!({ "evaluations": [] }),
        };
        self.submit(
            path_kind,
            &format!("/api/v1/tasks/{batch_id}/{path_kind}"),
            &body,
            &format!("batch_id={batch_id}"),
        );
    }

    fn run_leases(&mut self) {
        while self.live() {
            let lease = match self.pool.post("/api/v1/tasks/lease", &json!({})) {
                Ok(l) => l,
                Err(e) if detail_is(&e, LEASE_ALREADY_ISSUED) => {
                    let wait = self
                        .pool
                        .health()
                        .ok()
                        .and_then(|h| h["time_remaining_s"].as_f64())
                        .unwrap_or(RETRY.as_secs_f64());
                    self.log(format!(
                        "[pool] Lease already issued for this window; waiting {wait:.1}s for the next"
                    ));
                    pause(Duration::from_secs_f64(wait.max(0.0) + 0.2), &self.stop);
                    continue;
                }
                Err(e) => {
                    self.log(format!("[pool] Lease request failed: {e}"));
                    pause(RETRY, &self.stop);
                    continue;
                }
            };
            self.do_lease(&lease);
        }
    }

    fn do_lease(&mut self, lease: &Value) {
        let lease_id = lease["lease_id"].as_u64().unwrap_or(0);
        *self.stats.current.lock() = Some(format!("lease {lease_id}"));
        self.do_lease_inner(lease, lease_id);
        *self.stats.current.lock() = None;
    }

    fn do_lease_inner(&mut self, lease: &Value, lease_id: u64) {
        let evaluate = algorithm_refs(&lease["evaluate_algorithms"]);
        let seeds = algorithm_refs(&lease["seed_algorithms"]);
        let (task_type, input_dim) = first_task_of(&lease["seed_algorithms"]);
        let seed = self.next_seed();
        let payload = LeasePayload {
            lease_id: json!(lease_id),
            eval_suite: Some(self.eval_suite(&lease["suite"], &task_type, input_dim)),
            evolve_suite: Some(self.evolve_suite(&task_type, input_dim)),
            evaluate_algorithms: evaluate,
            seed_algorithms: seeds,
            input_dim: Some(input_dim),
            evolve_budget: lease["evolve_budget"]
                .as_u64()
                .unwrap_or(self.s.evolve_budget),
            seed: Some(seed),
            pop_size: self.s.pop_size,
        };
        let payload = serde_json::to_value(payload).unwrap_or(Value::Null);
        let what = format!("lease_id={lease_id}");
        let Some(outcome) = self.run_job("lease", &what, payload) else {
            return;
        };
        let body = match outcome {
            Ok(r) => r,
            Err(e) => {
                self.log(format!(
                    "[pool] submit_lease ok=false {what} reason=job failed: {e}"
                ));
                return;
            }
        };
        self.submit(
            "submit_lease",
            &format!("/api/v1/tasks/{lease_id}/submit_lease"),
            &body,
            &what,
        );
    }

    /// Enqueue a job and wait for its result (`None` when stopping or enqueue failed).
    fn run_job(&mut self, kind: &str, what: &str, payload: Value) -> Option<Result<Value, String>> {
        let tail = uuid::Uuid::new_v4().simple().to_string();
        let job_id = format!("pool-{kind}-{}", &tail[..12]);
        loop {
            match self
                .sidecar
                .enqueue(&self.s.run_id, &job_id, kind, &payload)
            {
                Ok(_) => break,
                Err(e) if e.is_transient() && pause(RETRY, &self.stop) => {
                    self.log(format!("[pool] Enqueue failed: {e}; retrying"))
                }
                Err(e) => {
                    self.log(format!("[pool] Enqueue of kind={kind} {what} failed: {e}"));
                    return None;
                }
            }
        }
        self.stats.jobs_enqueued.fetch_add(1, Ordering::Relaxed);
        self.log(format!(
            "[pool] Enqueued job kind={kind} job_id={job_id} {what}"
        ));
        while self.live() {
            match self.sidecar.results(&self.s.run_id, self.cursor) {
                Ok((next, items)) => {
                    self.cursor = next;
                    if let Some(item) = items.iter().find(|i| i["job_id"] == job_id.as_str()) {
                        return Some(if item["status"] == "completed" {
                            Ok(item["result"].clone())
                        } else {
                            Err(item["error"].as_str().unwrap_or("job failed").to_string())
                        });
                    }
                    pause(RESULT_POLL, &self.stop);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "[pool] reading job results failed");
                    pause(RETRY, &self.stop);
                }
            }
        }
        None
    }

    /// Submit with the reference's rules: transient failures retried every 2 s,
    /// permanent ones (4xx, e.g. `Active lease assignment not found`) dropped.
    fn submit(&self, name: &str, path: &str, body: &Value, what: &str) {
        loop {
            match self.pool.post(path, body) {
                Ok(r) => {
                    self.stats.submissions_ok.fetch_add(1, Ordering::Relaxed);
                    let by_kind = match name {
                        "submit_evolution" => &self.stats.evolutions_submitted,
                        "submit_evaluation" => &self.stats.evaluations_submitted,
                        _ => &self.stats.leases_submitted,
                    };
                    by_kind.fetch_add(1, Ordering::Relaxed);
                    if let Ok(me) = self.pool.get("/api/v1/miners/stats") {
                        *self.stats.reputation.lock() = me["reputation"].as_f64();
                    }
                    let ids = &r["algorithm_ids"];
                    let ids = if ids.is_null() {
                        &r["algorithm_id"]
                    } else {
                        ids
                    };
                    self.log(format!("[pool] {name} ok=true {what} algorithm_ids={ids}"));
                    return;
                }
                Err(e) if e.is_transient() && self.live() => {
                    self.log(format!(
                        "[pool] {name} ok=false {what} error={e}; retrying in 2s"
                    ));
                    pause(RETRY, &self.stop);
                }
                Err(e) => {
                    self.stats
                        .submissions_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    self.log(format!("[pool] {name} ok=false {what} dropped: {e}"));
                    return;
                }
            }
        }
    }
}

fn algorithm_refs(v: &Value) -> Vec<AlgorithmRef> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| serde_json::from_value(x.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Task type and input dimension of the first algorithm (the pool's are uniform).
fn first_task_of(v: &Value) -> (String, usize) {
    let first = &v[0];
    (
        first["task_type"]
            .as_str()
            .unwrap_or("scalar_linear")
            .to_string(),
        first["input_dim"].as_u64().unwrap_or(16) as usize,
    )
}
