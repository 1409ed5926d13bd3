//! The pool's HTTP API (pool.md §1–2): thin handlers that take a signed, typed request
//! ([`Signed`], [`SignedBody`]), call [`PoolState`] on a blocking thread and render
//! JSON. Errors are `{"detail": …}`; the route table builds the router and the document.

use super::rules;
use super::state::{
    Algorithm, AlgorithmStatus, EvaluationIn, EvolutionIn, Miner, OpError, PoolState, Refusal,
    RefusalKind, SubmitOutcome, TaskKind,
};
use crate::clock::now_f64;
use crate::http::{
    array, from_value, ok, path_int, path_param, query, query_int, Api, ApiError, Dialect, Json,
    Op, Params, Reply,
};
use crate::jobs;
use crate::keys::{
    AuthStyle, PublicKey, ReplayGuard, VerifiedSigner, HEADER_KEY, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, FromRequest, Request, RequestBody, Route};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The pool service: state plus the listener's replay memory.
pub struct Pool {
    pub state: PoolState,
    /// `/health`'s verdict and the daemon's metrics.
    pub health: Arc<crate::health::Monitor>,
    pub metrics: Arc<crate::metrics::Metrics>,
    guard: ReplayGuard,
    /// Seed of the evaluation suite (the validators' `task_seed`), advertised with
    /// evaluation work so every evaluator scores on the same tasks.
    eval_task_seed: u64,
}

impl Pool {
    fn count_evaluations(&self, out: &SubmitOutcome) {
        let c = &self.metrics.pool_evaluations;
        c.with_label_values(&["accepted"])
            .inc_by(out.accepted_evaluations as u64);
        c.with_label_values(&["rejected"])
            .inc_by(out.rejected_evaluations as u64);
    }

    pub fn new(state: PoolState, eval_task_seed: u64, ctx: &crate::context::AppContext) -> Self {
        Pool {
            state,
            health: ctx.health.clone(),
            metrics: ctx.metrics.clone(),
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

/// The pool answers malformed input with 400, as its clients expect.
pub struct PoolDialect;

impl Dialect for PoolDialect {
    const SHAPE: StatusCode = StatusCode::BAD_REQUEST;
    const NOT_JSON: &'static str = "Invalid JSON";
    const NOT_JSON_REASON: bool = true;
    const NOT_OBJECT: &'static str = "Request body must be a JSON object";
    const EMPTY_IS_OBJECT: bool = true;
}

type Shared<'a> = Data<&'a Arc<Pool>>;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r.kind {
            RefusalKind::Invalid => StatusCode::BAD_REQUEST,
            RefusalKind::NotFound => StatusCode::NOT_FOUND,
        };
        ApiError::new(status, r.detail)
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Refused(r) => r.into(),
            OpError::Store(e) => e.into(),
        }
    }
}

/// Run store work off the async threads (a sync-durability commit waits for the disk).
async fn blocking(f: impl FnOnce() -> Result<Value, ApiError> + Send + 'static) -> Reply {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => ok(&r?),
        Err(e) => Err(ApiError::internal(format!("pool worker failed: {e}"))),
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

fn pool_of(req: &Request) -> Result<&Arc<Pool>, ApiError> {
    req.data::<Arc<Pool>>()
        .ok_or_else(|| ApiError::internal("pool state is not attached"))
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
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

/// A signed request: the signer, checked before anything else is read.
struct Signed(VerifiedSigner);

impl<'a> FromRequest<'a> for Signed {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Signed(authenticate(pool_of(req)?, req)?))
    }
}

/// A signed request with a JSON body of type `T`: authenticated first, then the body's
/// optional envelope checked against the headers, then the body deserialised.
struct SignedBody<T>(VerifiedSigner, T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for SignedBody<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Signed(signer) = Signed::from_request(req, body).await?;
        let Json(v, _) = Json::<Value, PoolDialect>::from_request(req, body).await?;
        check_envelope(&v, &signer, req)?;
        Ok(SignedBody(signer, from_value::<T, PoolDialect>(v)?))
    }
}

/// The optional body envelope (`public_address`, `signature`, `message`) must repeat
/// the headers exactly when present.
fn check_envelope(body: &Value, signer: &VerifiedSigner, req: &Request) -> Result<(), ApiError> {
    let mismatch = |field: &str| {
        ApiError::unauthorized(format!(
            "Body {field} does not match the signed request headers"
        ))
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

/// An integer path parameter.
fn path_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    path_int::<u64, PoolDialect>(raw, what)
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
    jobs::canonical_dsl(text).map_err(|e| ApiError::bad_request(format!("Invalid {what}: {e}")))
}

// ---- handlers ----

#[handler]
fn health(pool: Shared<'_>) -> Reply {
    let now = now_f64();
    let w = pool.state.config().window_s;
    let report = pool.health.report();
    Ok(crate::health::response(
        &report,
        json!({
            "status": report.status,
            "reasons": report.reasons,
            "window_number": rules::window_number(now, w),
            "time_remaining_s": rules::window_remaining(now, w),
        }),
    ))
}

#[handler]
async fn register(SignedBody(signer, _): SignedBody<Value>, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    blocking(move || Ok(miner_json(&pool.state.register(&signer.hotkey, now_f64())?))).await
}

#[handler]
async fn stats(Signed(signer): Signed, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
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
async fn leaderboard(q: Params, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let limit = q
        .parse::<usize, PoolDialect>("limit")?
        .unwrap_or(50)
        .clamp(1, 1000);
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
async fn request_task(SignedBody(signer, r): SignedBody<TaskRequest>, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let kind = match r.task_type.as_str() {
        "evolve" => TaskKind::Evolve,
        "evaluate" => TaskKind::Evaluate,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid task_type '{other}': expected 'evolve' or 'evaluate'"
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
    Path(batch): Path<String>,
    SignedBody(signer, b): SignedBody<EvolutionBody>,
    pool: Shared<'_>,
) -> Reply {
    let pool = pool.0.clone();
    let batch_id = path_id(&batch, "batch_id")?;
    let evo = EvolutionIn {
        parent_ids: b.parent_functions.iter().map(|p| p.id).collect(),
        dsl: parse_dsl(&b.evolved_function, "evolved_function")?,
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
    Path(batch): Path<String>,
    SignedBody(signer, b): SignedBody<EvaluationBody>,
    pool: Shared<'_>,
) -> Reply {
    let pool = pool.0.clone();
    let batch_id = path_id(&batch, "batch_id")?;
    blocking(move || {
        let evals: Vec<EvaluationIn> = b.evaluations.iter().map(Into::into).collect();
        let out = pool
            .state
            .submit_evaluation(&signer.hotkey, batch_id, &evals, now_f64())?;
        pool.count_evaluations(&out);
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
async fn issue_lease(SignedBody(signer, b): SignedBody<LeaseBody>, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
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
        pool.metrics.pool_leases.inc();
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
    Path(lease): Path<String>,
    SignedBody(signer, b): SignedBody<SubmitLeaseBody>,
    pool: Shared<'_>,
) -> Reply {
    let pool = pool.0.clone();
    let lease_id = path_id(&lease, "lease_id")?;
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
        pool.count_evaluations(&out);
        let mut v = outcome_json(&out);
        v["lease_id"] = json!(lease_id);
        Ok(v)
    })
    .await
}

#[handler]
async fn sota(q: Params, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let task_type = q.get("task_type").map(str::to_string);
    blocking(move || {
        let best = pool.state.verified(task_type.as_deref(), None, 1)?;
        let a = best
            .first()
            .ok_or_else(|| ApiError::not_found("No consensus-verified algorithm yet"))?;
        Ok(result_json(a))
    })
    .await
}

#[handler]
async fn results(_: Signed, q: Params, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let limit = q
        .parse::<usize, PoolDialect>("limit")?
        .unwrap_or(100)
        .clamp(1, 1000);
    let min_score = q.parse::<f64, PoolDialect>("min_score")?;
    let task_type = q.get("task_type").map(str::to_string);
    blocking(move || {
        let rows = pool
            .state
            .verified(task_type.as_deref(), min_score, limit)?;
        Ok(Value::Array(rows.iter().map(result_json).collect()))
    })
    .await
}

#[handler]
async fn monitor(req: &Request, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    // Header forms only: a token in the query string ends up in access logs and
    // browser history.
    if let Some(token) = &pool.state.config().monitor_token {
        let given = req.header("X-Auth-Token").or_else(|| {
            req.header("Authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
        });
        if !given.is_some_and(|g| crate::http::token_eq(g, token)) {
            return Err(ApiError::unauthorized("Invalid or missing monitor token"));
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
async fn list_epochs(q: Params, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let limit = q
        .parse::<usize, PoolDialect>("limit")?
        .unwrap_or(50)
        .clamp(1, 1000);
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
async fn get_epoch(Path(n): Path<String>, pool: Shared<'_>) -> Reply {
    let pool = pool.0.clone();
    let n = path_id(&n, "epoch")?;
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
        Err(ApiError::not_found(format!("Epoch {n} not found")))
    })
    .await
}

fn signed() -> Value {
    json!([{"Key": [], "Timestamp": [], "Signature": []}])
}

fn object() -> Value {
    json!({"type": "object"})
}

fn id_param(name: &str) -> Value {
    path_param(name, json!({"type": "integer", "minimum": 0}))
}

/// The pool's route table: its router and its `/openapi.json` (shared [`Pool`]
/// attached as data).
fn table() -> Api {
    let signed_op = |summary: &str| Op::new(summary).security("signed", signed());
    let limit = |default| query_int("limit", default, 1, 1000);
    let text = |name: &str| query(name, json!({"type": "string"}));
    let results_op = signed_op("Consensus-verified results")
        .params(vec![
            limit(100),
            text("task_type"),
            query("min_score", json!({"type": "number"})),
        ])
        .ok(array(object()))
        .errors(&[400, 401]);
    Api::new(
        "BitSota pool",
        "Jobs and leases, evaluation consensus, reputation, epochs. Every error is {\"detail\": str}; signed requests carry X-Key, X-Timestamp (unix s) and X-Signature over auth:<X-Timestamp>, which submit bodies may repeat as public_address, message and signature.",
    )
    .components(json!({"securitySchemes": {
        "Key": {"type": "apiKey", "in": "header", "name": "X-Key"},
        "Timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp"},
        "Signature": {"type": "apiKey", "in": "header", "name": "X-Signature"},
        "MonitorToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
    }, "schemas": {}}))
    .get("/health", Op::new("Liveness and the current window").ok(object()), health)
    .post(
        "/api/v1/miners/register",
        signed_op("Register the signer (idempotent)").body(object()).ok(object()).errors(&[400, 401, 413]),
        register,
    )
    .get(
        "/api/v1/miners/stats",
        signed_op("The signer's counters and the pool summary").ok(object()).errors(&[401]),
        stats,
    )
    .get(
        "/api/v1/miners/leaderboard",
        Op::new("Miners by reputation").params(vec![limit(50)]).ok(array(object())).errors(&[400]),
        leaderboard,
    )
    .post(
        "/api/v1/tasks/request",
        signed_op("Take an evolve or evaluate task")
            .body(json!({"type": "object", "required": ["task_type"], "properties": {"task_type": {"type": "string", "enum": ["evolve", "evaluate"]}}}))
            .ok(object())
            .errors(&[400, 401, 404, 413]),
        request_task,
    )
    .post(
        "/api/v1/tasks/lease",
        signed_op("Take this window's lease")
            .body(json!({"type": "object", "properties": {"eval_batch_size": {"type": "integer"}, "seed_batch_size": {"type": "integer"}}}))
            .ok(object())
            .errors(&[400, 401, 404, 413]),
        issue_lease,
    )
    .post(
        "/api/v1/tasks/{batch_id}/submit_evolution",
        signed_op("Submit an evolved program for a task")
            .params(vec![id_param("batch_id")])
            .body(json!({"type": "object", "required": ["evolved_function"], "properties": {"evolved_function": {"type": "string"}, "parent_functions": array(json!({"type": "object", "properties": {"id": {"type": "integer"}}}))}}))
            .ok(object())
            .errors(&[400, 401, 404, 413]),
        submit_evolution,
    )
    .post(
        "/api/v1/tasks/{batch_id}/submit_evaluation",
        signed_op("Submit a task's evaluations")
            .params(vec![id_param("batch_id")])
            .body(json!({"type": "object", "required": ["evaluations"], "properties": {"evaluations": array(json!({"type": "object", "properties": {"algorithm_id": {"type": "integer"}, "score": {"type": "number", "nullable": true}}}))}}))
            .ok(object())
            .errors(&[400, 401, 404, 413]),
        submit_evaluation,
    )
    .post(
        "/api/v1/tasks/{lease_id}/submit_lease",
        signed_op("Submit a lease's evaluations and evolutions")
            .params(vec![id_param("lease_id")])
            .body(json!({"type": "object", "properties": {"evaluations": array(object()), "evolutions": array(json!({"type": "object", "properties": {"parent_algorithm_ids": array(json!({"type": "integer"})), "algorithm_dsl": {"type": "string"}}})), "iterations": {"type": "integer"}}}))
            .ok(object())
            .errors(&[400, 401, 404, 413]),
        submit_lease,
    )
    .get(
        "/api/v1/results/sota",
        Op::new("The best consensus-verified algorithm").params(vec![text("task_type")]).ok(object()).errors(&[404]),
        sota,
    )
    // The reference clients spell it with and without the trailing slash.
    .get("/api/v1/results", results_op.clone(), results)
    .get("/api/v1/results/", results_op, results)
    .get(
        "/api/v1/monitor/summary",
        Op::new("Leases, backlog and alerts (monitor token when configured)")
            .security("monitor", json!([{}, {"MonitorToken": []}]))
            .ok(object())
            .errors(&[401]),
        monitor,
    )
    .get(
        "/api/v1/epochs",
        Op::new("Closed epoch ledgers, newest first").params(vec![limit(50)]).ok(object()).errors(&[400]),
        list_epochs,
    )
    .get(
        "/api/v1/epochs/{n}",
        Op::new("One epoch: its ledger with Merkle proofs, or the open epoch's reputation")
            .params(vec![id_param("n")])
            .ok(object())
            .errors(&[400, 404]),
        get_epoch,
    )
}

/// The pool listener's routes.
pub fn route(pool: Arc<Pool>, extra: Api) -> Route {
    Route::new().nest(
        "/",
        table()
            .merge(extra)
            .into_endpoint(pool, crate::http::DEFAULT_MAX_BODY_BYTES),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_every_route_once() {
        let listed = crate::http::documented(&super::table().document());
        // 15 resource routes, `/openapi.json`, `/docs` and its two assets.
        assert_eq!(listed.len(), 19, "{listed:?}");
    }
}
