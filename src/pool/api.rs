//! The pool's HTTP API (pool.md §1–2): thin handlers that authenticate, parse, call
//! [`PoolState`] on a blocking thread and render JSON. Errors are `{"detail": …}`.

use super::jobs;
use super::rules;
use super::state::{
    Algorithm, AlgorithmStatus, EvaluationIn, EvolutionIn, Miner, OpError, PoolState, Refusal,
    TaskKind,
};
use crate::clock::now_f64;
use crate::keys::{
    AuthStyle, PublicKey, ReplayGuard, VerifiedSigner, HEADER_KEY, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{get, handler, post, Body, EndpointExt, Request, Response, Route};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest request body the pool reads (a lease submission carries many programs).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The pool service: state plus the listener's replay memory.
pub struct Pool {
    pub state: PoolState,
    guard: ReplayGuard,
    /// Seed of the evaluation suite (the validators' `task_seed`), advertised with
    /// evaluation work so every evaluator scores on the same tasks.
    eval_task_seed: u64,
}

impl Pool {
    pub fn new(state: PoolState, eval_task_seed: u64) -> Self {
        Pool {
            state,
            guard: ReplayGuard::new(300, ReplayGuard::DEFAULT_CAPACITY),
            eval_task_seed,
        }
    }

    /// The evaluation suite every evaluator must use.
    pub fn eval_suite(&self) -> jobs::SuiteRef {
        let cfg = self.state.config();
        jobs::SuiteRef {
            task_type: cfg.task_type.clone(),
            input_dim: cfg.input_dim,
            task_count: cfg.eval_task_count,
            task_seed: self.eval_task_seed,
        }
    }

    fn suite_json(&self) -> Value {
        serde_json::to_value(self.eval_suite()).unwrap_or(Value::Null)
    }
}

/// An HTTP error answer.
#[derive(Debug)]
struct ApiError {
    status: u16,
    detail: String,
}

impl ApiError {
    fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::new(r.status, r.detail)
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Refused(r) => r.into(),
            OpError::Store(e) => {
                tracing::error!(error = %e, "pool store failure");
                ApiError::new(500, "Internal pool error")
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        OpError::Store(e).into()
    }
}

type ApiResult = Result<Value, ApiError>;

fn respond(r: ApiResult) -> Response {
    let (status, body) = match r {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "detail": e.detail }),
        ),
    };
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// Run store work off the async threads (a sync-durability commit waits for the disk).
async fn blocking(f: impl FnOnce() -> ApiResult + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => respond(r),
        Err(e) => respond(Err(ApiError::new(500, format!("pool worker failed: {e}")))),
    }
}

/// ISO-8601 UTC with seconds.
pub fn iso(t: f64) -> String {
    let secs = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Check the signed headers (§1): signature, 300 s window, replay.
fn authenticate(pool: &Pool, req: &Request) -> Result<VerifiedSigner, ApiError> {
    pool.guard
        .verify(
            req.header(HEADER_KEY),
            req.header(HEADER_TIMESTAMP),
            req.header(HEADER_SIGNATURE),
            AuthStyle::Pool,
            now_f64() as u64,
        )
        .map_err(|e| ApiError::new(401, e.to_string()))
}

/// Read a JSON object body (empty = `{}`).
async fn read_json(body: Body) -> Result<Value, ApiError> {
    let bytes = body
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|e| ApiError::new(413, format!("Request body unreadable: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(400, format!("Invalid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::new(400, "Request body must be a JSON object"));
    }
    Ok(v)
}

/// The optional body envelope (`public_address`, `signature`, `message`) must repeat
/// the headers exactly when present.
fn check_envelope(body: &Value, signer: &VerifiedSigner, req: &Request) -> Result<(), ApiError> {
    let mismatch = |field: &str| {
        ApiError::new(
            401,
            format!("Body {field} does not match the signed request headers"),
        )
    };
    if let Some(v) = body.get("public_address").filter(|v| !v.is_null()) {
        let same = v
            .as_str()
            .and_then(|a| PublicKey::from_ss58(a).ok())
            .is_some_and(|k| k.0 == signer.public);
        if !same {
            return Err(mismatch("public_address"));
        }
    }
    if let Some(v) = body.get("signature").filter(|v| !v.is_null()) {
        let norm = |s: &str| s.trim().trim_start_matches("0x").to_ascii_lowercase();
        let header = req.header(HEADER_SIGNATURE).map(norm);
        if v.as_str().map(norm) != header {
            return Err(mismatch("signature"));
        }
    }
    if let Some(v) = body.get("message").filter(|v| !v.is_null()) {
        if v.as_str() != Some(signer.message.as_str()) {
            return Err(mismatch("message"));
        }
    }
    Ok(())
}

/// Authenticate, read the body, check the envelope, then deserialise it into `T`.
async fn signed_body<T: serde::de::DeserializeOwned>(
    pool: &Pool,
    req: &Request,
    body: Body,
) -> Result<(VerifiedSigner, T), ApiError> {
    let signer = authenticate(pool, req)?;
    let v = read_json(body).await?;
    check_envelope(&v, &signer, req)?;
    let t = serde_json::from_value(v)
        .map_err(|e| ApiError::new(400, format!("Invalid request body: {e}")))?;
    Ok((signer, t))
}

fn path_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(400, format!("Invalid {what} '{raw}': expected an integer")))
}

fn query_num<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, ApiError> {
    q.get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::new(400, format!("Invalid {key} '{v}'")))
        })
        .transpose()
}

/// The wire form of a score ([`crate::score_json`]): a number, or `null` — with
/// `"invalid": "non-finite"` when the score exists but is not finite (the store keeps
/// non-finite scores as `None`, so only that much is known).
fn put_score(v: &mut Value, s: Option<f64>, known: bool) {
    v["score"] = s.map_or(Value::Null, crate::score_json::value);
    if known && s.map_or(true, |x| !x.is_finite()) {
        v["invalid"] = json!("non-finite");
    }
}

fn algorithm_json(a: &Algorithm) -> Value {
    let mut v = json!({
        "id": a.id,
        "algorithm_dsl": a.dsl,
        "input_dim": a.input_dim,
        "task_type": a.task_type,
        "status": a.status.as_str(),
    });
    put_score(&mut v, a.score, a.status == AlgorithmStatus::Verified);
    v
}

fn result_json(a: &Algorithm) -> Value {
    let mut v = json!({
        "id": a.id,
        "algorithm_dsl": a.dsl,
        "input_dim": a.input_dim,
        "task_type": a.task_type,
        "miner_hotkey": a.author,
        "parent_ids": a.parent_ids,
        "evaluations": a.evaluations.iter().map(|e| {
            let mut v = json!({"hotkey": e.hotkey, "accurate": e.accurate});
            put_score(&mut v, e.score, true);
            v
        }).collect::<Vec<_>>(),
        "reward": a.reward,
        "created_at": iso(a.created_at),
        "verified_at": a.verified_at.map(iso),
    });
    put_score(&mut v, a.score, a.status == AlgorithmStatus::Verified);
    v
}

fn miner_json(m: &Miner) -> Value {
    json!({
        "hotkey": m.hotkey,
        "reputation": m.reputation,
        "registered_at": iso(m.registered_at),
        "last_seen": iso(m.last_seen),
    })
}

/// Canonical DSL or a 400 naming the line.
fn parse_dsl(text: &str, what: &str) -> Result<String, ApiError> {
    jobs::canonical_dsl(text).map_err(|e| ApiError::new(400, format!("Invalid {what}: {e}")))
}

// ---- handlers ----

#[handler]
fn health(pool: Data<&Arc<Pool>>) -> Response {
    let now = now_f64();
    let w = pool.state.config().window_s;
    respond(Ok(json!({
        "status": "healthy",
        "window_number": rules::window_number(now, w),
        "time_remaining_s": rules::window_remaining(now, w),
    })))
}

#[handler]
async fn register(req: &Request, body: Body, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let (signer, _): (_, Value) = match signed_body(&pool, req, body).await {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || Ok(miner_json(&pool.state.register(&signer.hotkey, now_f64())?))).await
}

#[handler]
async fn stats(req: &Request, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let signer = match authenticate(&pool, req) {
        Ok(s) => s,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let now = now_f64();
        let m = pool.state.register(&signer.hotkey, now)?;
        let summary = pool.state.summary(now)?;
        let cfg = pool.state.config();
        let epoch = rules::epoch_number(now, cfg.epoch_s);
        let earned = pool
            .state
            .epoch_earnings(epoch)?
            .into_iter()
            .find(|(h, _)| *h == m.hotkey)
            .map_or(0.0, |(_, e)| e);
        let mut v = miner_json(&m);
        let extra = json!({
            "evaluations": m.evaluations,
            "evolutions": m.evolutions,
            "accurate_evaluations": m.accurate_evaluations,
            "inaccurate_evaluations": m.inaccurate_evaluations,
            "leases": m.leases,
            "active_task": m.active_task,
            "epoch_reputation": earned,
            "pool": {
                "miners": summary.miners,
                "algorithms": summary.algorithms,
                "verified": summary.verified,
                "pending_evaluations": summary.pending_evaluations,
                "best_score": summary.best_score,
                "task_type": cfg.task_type,
                "input_dim": cfg.input_dim,
                "window_number": rules::window_number(now, cfg.window_s),
                "epoch": epoch,
            },
        });
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        Ok(v)
    })
    .await
}

#[handler]
async fn leaderboard(q: Query<HashMap<String, String>>, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let limit = match query_num::<usize>(&q, "limit") {
        Ok(l) => l.unwrap_or(50).clamp(1, 1000),
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let rows = pool.state.leaderboard(limit)?;
        Ok(Value::Array(
            rows.iter()
                .enumerate()
                .map(|(i, m)| {
                    json!({
                        "rank": i + 1,
                        "hotkey": m.hotkey,
                        "reputation": m.reputation,
                        "evaluations": m.evaluations,
                        "evolutions": m.evolutions,
                    })
                })
                .collect(),
        ))
    })
    .await
}

#[derive(Deserialize)]
struct TaskRequest {
    task_type: String,
}

#[handler]
async fn request_task(req: &Request, body: Body, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let (signer, r): (_, TaskRequest) = match signed_body(&pool, req, body).await {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    let kind = match r.task_type.as_str() {
        "evolve" => TaskKind::Evolve,
        "evaluate" => TaskKind::Evaluate,
        other => {
            return respond(Err(ApiError::new(
                400,
                format!("Invalid task_type '{other}': expected 'evolve' or 'evaluate'"),
            )))
        }
    };
    blocking(move || {
        let (batch, algs) = pool.state.request_task(&signer.hotkey, kind, now_f64())?;
        Ok(json!({
            "batch_id": batch.batch_id,
            "task_type": batch.kind.as_str(),
            "expires_at": iso(batch.expires_at),
            "suite": pool.suite_json(),
            "algorithms": algs.iter().map(algorithm_json).collect::<Vec<_>>(),
        }))
    })
    .await
}

#[derive(Deserialize)]
struct ParentRef {
    id: u64,
}

#[derive(Deserialize)]
struct EvolutionBody {
    evolved_function: String,
    #[serde(default)]
    parent_functions: Vec<ParentRef>,
}

#[handler]
async fn submit_evolution(
    req: &Request,
    Path(batch): Path<String>,
    body: Body,
    pool: Data<&Arc<Pool>>,
) -> Response {
    let pool = pool.0.clone();
    let parsed = async {
        let batch_id = path_id(&batch, "batch_id")?;
        let (signer, b): (_, EvolutionBody) = signed_body(&pool, req, body).await?;
        let dsl = parse_dsl(&b.evolved_function, "evolved_function")?;
        let evo = EvolutionIn {
            parent_ids: b.parent_functions.iter().map(|p| p.id).collect(),
            dsl,
        };
        Ok::<_, ApiError>((batch_id, signer, evo))
    }
    .await;
    let (batch_id, signer, evo) = match parsed {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let out = pool
            .state
            .submit_evolution(&signer.hotkey, batch_id, evo, now_f64())?;
        Ok(json!({
            "status": "accepted",
            "batch_id": batch_id,
            "algorithm_id": out.algorithm_ids.first(),
        }))
    })
    .await
}

#[derive(Deserialize)]
struct EvaluationItem {
    algorithm_id: u64,
    score: Option<f64>,
}

impl From<&EvaluationItem> for EvaluationIn {
    fn from(e: &EvaluationItem) -> Self {
        EvaluationIn {
            algorithm_id: e.algorithm_id,
            score: e.score,
        }
    }
}

#[derive(Deserialize)]
struct EvaluationBody {
    evaluations: Vec<EvaluationItem>,
}

fn outcome_json(o: &super::state::SubmitOutcome) -> Value {
    json!({
        "status": "accepted",
        "accepted_evaluations": o.accepted_evaluations,
        "rejected_evaluations": o.rejected_evaluations,
        "algorithm_ids": o.algorithm_ids,
        "consensus_reached": o.consensus_reached,
    })
}

#[handler]
async fn submit_evaluation(
    req: &Request,
    Path(batch): Path<String>,
    body: Body,
    pool: Data<&Arc<Pool>>,
) -> Response {
    let pool = pool.0.clone();
    let parsed = async {
        let batch_id = path_id(&batch, "batch_id")?;
        let (signer, b): (_, EvaluationBody) = signed_body(&pool, req, body).await?;
        Ok::<_, ApiError>((batch_id, signer, b))
    }
    .await;
    let (batch_id, signer, b) = match parsed {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let evals: Vec<EvaluationIn> = b.evaluations.iter().map(Into::into).collect();
        let out = pool
            .state
            .submit_evaluation(&signer.hotkey, batch_id, &evals, now_f64())?;
        Ok(outcome_json(&out))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeaseBody {
    eval_batch_size: Option<usize>,
    seed_batch_size: Option<usize>,
}

#[handler]
async fn issue_lease(req: &Request, body: Body, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let (signer, b): (_, LeaseBody) = match signed_body(&pool, req, body).await {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let cfg = pool.state.config();
        let evals = b
            .eval_batch_size
            .unwrap_or(cfg.eval_batch_size)
            .clamp(0, 256);
        let seeds = b
            .seed_batch_size
            .unwrap_or(cfg.seed_batch_size)
            .clamp(1, 256);
        let l = pool
            .state
            .issue_lease(&signer.hotkey, evals, seeds, now_f64())?;
        Ok(json!({
            "lease_id": l.lease.lease_id,
            "window_number": l.lease.window_number,
            "timeout_at": iso(l.lease.timeout_at),
            "evolve_budget": l.lease.evolve_budget,
            "suite": pool.suite_json(),
            "evaluate_algorithms": l.evaluate.iter().map(algorithm_json).collect::<Vec<_>>(),
            "seed_algorithms": l.seeds.iter().map(algorithm_json).collect::<Vec<_>>(),
        }))
    })
    .await
}

#[derive(Deserialize)]
struct LeaseEvolution {
    #[serde(default)]
    parent_algorithm_ids: Vec<u64>,
    algorithm_dsl: String,
}

#[derive(Deserialize)]
struct SubmitLeaseBody {
    #[serde(default)]
    evaluations: Vec<EvaluationItem>,
    #[serde(default)]
    evolutions: Vec<LeaseEvolution>,
    #[serde(default)]
    iterations: u64,
}

#[handler]
async fn submit_lease(
    req: &Request,
    Path(lease): Path<String>,
    body: Body,
    pool: Data<&Arc<Pool>>,
) -> Response {
    let pool = pool.0.clone();
    let parsed = async {
        let lease_id = path_id(&lease, "lease_id")?;
        let (signer, b): (_, SubmitLeaseBody) = signed_body(&pool, req, body).await?;
        let evolutions = b
            .evolutions
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(EvolutionIn {
                    parent_ids: e.parent_algorithm_ids.clone(),
                    dsl: parse_dsl(&e.algorithm_dsl, &format!("evolutions[{i}].algorithm_dsl"))?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok::<_, ApiError>((lease_id, signer, b, evolutions))
    }
    .await;
    let (lease_id, signer, b, evolutions) = match parsed {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let evals: Vec<EvaluationIn> = b.evaluations.iter().map(Into::into).collect();
        let out = pool.state.submit_lease(
            &signer.hotkey,
            lease_id,
            &evals,
            evolutions,
            b.iterations,
            now_f64(),
        )?;
        let mut v = outcome_json(&out);
        v["lease_id"] = json!(lease_id);
        Ok(v)
    })
    .await
}

#[handler]
async fn sota(q: Query<HashMap<String, String>>, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let task_type = q.get("task_type").cloned();
    blocking(move || {
        let best = pool.state.verified(task_type.as_deref(), None, 1)?;
        let a = best
            .first()
            .ok_or_else(|| ApiError::new(404, "No consensus-verified algorithm yet"))?;
        Ok(result_json(a))
    })
    .await
}

#[handler]
async fn results(
    req: &Request,
    q: Query<HashMap<String, String>>,
    pool: Data<&Arc<Pool>>,
) -> Response {
    let pool = pool.0.clone();
    let parsed = (|| {
        authenticate(&pool, req)?;
        let limit = query_num::<usize>(&q, "limit")?
            .unwrap_or(100)
            .clamp(1, 1000);
        let min_score = query_num::<f64>(&q, "min_score")?;
        Ok::<_, ApiError>((limit, min_score, q.get("task_type").cloned()))
    })();
    let (limit, min_score, task_type) = match parsed {
        Ok(x) => x,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let rows = pool
            .state
            .verified(task_type.as_deref(), min_score, limit)?;
        Ok(Value::Array(rows.iter().map(result_json).collect()))
    })
    .await
}

#[handler]
async fn monitor(req: &Request, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    // Header forms only: a token in the query string ends up in access logs and
    // browser history.
    if let Some(token) = &pool.state.config().monitor_token {
        let given = req.header("X-Auth-Token").or_else(|| {
            req.header("Authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
        });
        if !given.is_some_and(|g| crate::http::token_eq(g, token)) {
            return respond(Err(ApiError::new(401, "Invalid or missing monitor token")));
        }
    }
    blocking(move || {
        let now = now_f64();
        let s = pool.state.summary(now)?;
        let mut alerts = Vec::new();
        if s.leases_issued_15m > 0 && s.leases_completed_15m == 0 {
            alerts.push("leases issued in the last 15 min but none completed".to_string());
        }
        let cfg = pool.state.config();
        if s.backlog > 4 * cfg.eval_batch_size.max(1) {
            alerts.push(format!(
                "evaluation backlog of {} algorithms (more evaluators needed)",
                s.backlog
            ));
        }
        Ok(json!({
            "leases_issued_15m": s.leases_issued_15m,
            "leases_completed_15m": s.leases_completed_15m,
            "pending_evaluations": s.pending_evaluations,
            "backlog": s.backlog,
            "active_tasks": s.active_tasks,
            "miners": s.miners,
            "algorithms": s.algorithms,
            "verified": s.verified,
            "best_score": s.best_score,
            "window_number": rules::window_number(now, cfg.window_s),
            "epoch": rules::epoch_number(now, cfg.epoch_s),
            "epoch_remaining_s": rules::window_remaining(now, cfg.epoch_s),
            "local_evaluators": cfg.local_evaluators,
            "alerts": alerts,
        }))
    })
    .await
}

fn ledger_json(l: &super::state::EpochLedger, with_proofs: bool) -> Value {
    let leaves: Vec<[u8; 32]> = l
        .payouts
        .iter()
        .map(|p| rules::merkle_leaf(&p.hotkey, p.amount_rao))
        .collect();
    let payouts: Vec<Value> = l
        .payouts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = json!({
                "hotkey": p.hotkey,
                "reputation": p.reputation,
                "amount_rao": p.amount_rao,
            });
            if with_proofs {
                v["leaf"] = json!(hex::encode(leaves[i]));
                v["proof"] = json!(rules::merkle_proof(&leaves, i));
            }
            v
        })
        .collect();
    json!({
        "epoch": l.number,
        "status": "closed",
        "start": iso(l.start_s as f64),
        "end": iso(l.end_s as f64),
        "closed_at": iso(l.closed_at),
        "budget_rao": l.budget_rao,
        "payout_cap": l.payout_cap,
        "total_paid_rao": l.payouts.iter().map(|p| p.amount_rao).sum::<u64>(),
        "undistributed_rao": l.undistributed_rao,
        "carried": l.carried.iter().map(|(h, a)| json!({"hotkey": h, "amount_rao": a})).collect::<Vec<_>>(),
        "merkle_root": l.merkle_root,
        "payouts": payouts,
    })
}

#[handler]
async fn list_epochs(q: Query<HashMap<String, String>>, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let limit = match query_num::<usize>(&q, "limit") {
        Ok(l) => l.unwrap_or(50).clamp(1, 1000),
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        let now = now_f64();
        let cfg = pool.state.config();
        let rows = pool.state.epochs(limit)?;
        Ok(json!({
            "current_epoch": rules::epoch_number(now, cfg.epoch_s),
            "epoch_s": cfg.epoch_s,
            "epochs": rows.iter().map(|l| ledger_json(l, false)).collect::<Vec<_>>(),
        }))
    })
    .await
}

#[handler]
async fn get_epoch(Path(n): Path<String>, pool: Data<&Arc<Pool>>) -> Response {
    let pool = pool.0.clone();
    let n = match path_id(&n, "epoch") {
        Ok(n) => n,
        Err(e) => return respond(Err(e)),
    };
    blocking(move || {
        if let Some(l) = pool.state.epoch(n)? {
            return Ok(ledger_json(&l, true));
        }
        let now = now_f64();
        let cfg = pool.state.config();
        if n >= rules::epoch_number(now, cfg.epoch_s) {
            let earned = pool.state.epoch_earnings(n)?;
            return Ok(json!({
                "epoch": n,
                "status": "open",
                "start": iso((n * cfg.epoch_s) as f64),
                "end": iso(((n + 1) * cfg.epoch_s) as f64),
                "reputation": earned.iter().map(|(h, r)| json!({"hotkey": h, "reputation": r})).collect::<Vec<_>>(),
            }));
        }
        Err(ApiError::new(404, format!("Epoch {n} not found")))
    })
    .await
}

/// The route table (shared [`Pool`] attached as data).
pub fn route(pool: Arc<Pool>) -> Route {
    let api = Route::new()
        .at("/health", get(health))
        .at("/api/v1/miners/register", post(register))
        .at("/api/v1/miners/stats", get(stats))
        .at("/api/v1/miners/leaderboard", get(leaderboard))
        .at("/api/v1/tasks/request", post(request_task))
        .at("/api/v1/tasks/lease", post(issue_lease))
        .at("/api/v1/tasks/:id/submit_evolution", post(submit_evolution))
        .at(
            "/api/v1/tasks/:id/submit_evaluation",
            post(submit_evaluation),
        )
        .at("/api/v1/tasks/:id/submit_lease", post(submit_lease))
        .at("/api/v1/results/sota", get(sota))
        .at("/api/v1/results", get(results))
        .at("/api/v1/results/", get(results))
        .at("/api/v1/monitor/summary", get(monitor))
        .at("/api/v1/epochs", get(list_epochs))
        .at("/api/v1/epochs/:n", get(get_epoch));
    Route::new().nest("/", crate::http::harden(api.data(pool), MAX_BODY_BYTES))
}
