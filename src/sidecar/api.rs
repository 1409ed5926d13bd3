//! HTTP handlers of the sidecar (sidecar-miner.md §1.2) and the appliance API: thin
//! shells that parse input (every malformed input is a 400 with a reason, never a 500)
//! and call [`SidecarStore`] or the miner [`Supervisor`].

use super::rules::{self, Stream};
use super::store::{SidecarError, SidecarStore};
use crate::clock::now_f64;
use crate::miner::{MinerError, StartRequest, Supervisor};
use crate::server::AppContext;
use poem::http::StatusCode;
use poem::web::{Data, Json, Path, Query};
use poem::{get, handler, post, Body, EndpointExt, IntoResponse, Response, Route};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything the handlers share.
pub struct Sidecar {
    pub store: Arc<SidecarStore>,
    pub supervisor: Arc<Supervisor>,
    pub ctx: AppContext,
}

/// The listener's server drops its endpoint when it stops, and the daemon waits for that
/// before flushing the store: stopping mining here means the run's last events and its
/// `stopped` status are written before the daemon exits.
impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Err(e) = self.supervisor.stop() {
            tracing::warn!(error = %e, "miner: stop at shutdown");
        }
    }
}

type Shared<'a> = Data<&'a Arc<Sidecar>>;
type Params = Query<BTreeMap<String, String>>;

/// `{"detail": reason}` with `status`.
pub fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": detail.into() }))).into_response()
}

impl IntoResponse for SidecarError {
    fn into_response(self) -> Response {
        let status = match &self {
            SidecarError::Store(e) => {
                tracing::error!(error = %e, "sidecar store failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            SidecarError::BadInput(_) => StatusCode::BAD_REQUEST,
            SidecarError::NotFound(_) => StatusCode::NOT_FOUND,
            SidecarError::Conflict(_) => StatusCode::CONFLICT,
            SidecarError::Full(_) => StatusCode::TOO_MANY_REQUESTS,
            SidecarError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        error(status, self.to_string())
    }
}

impl IntoResponse for MinerError {
    fn into_response(self) -> Response {
        match self {
            MinerError::Sidecar(e) => e.into_response(),
            MinerError::AlreadyMining => error(StatusCode::CONFLICT, "already mining"),
            MinerError::Settings(_) | MinerError::Pool(_) => {
                error(StatusCode::BAD_REQUEST, self.to_string())
            }
            MinerError::Key(_) | MinerError::Thread(_) => {
                error(StatusCode::INTERNAL_SERVER_ERROR, self.to_string())
            }
        }
    }
}

fn reply(r: Result<Value, SidecarError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn bad(msg: impl Into<String>) -> SidecarError {
    SidecarError::BadInput(msg.into())
}

/// A JSON object body; an empty body is `{}`.
async fn object(body: Body) -> Result<Map<String, Value>, SidecarError> {
    let bytes = body
        .into_vec()
        .await
        .map_err(|e| bad(format!("cannot read body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("body must be a JSON object")),
        Err(_) => Err(bad("Invalid JSON")),
    }
}

/// An optional string field (`null` = absent).
fn opt_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, SidecarError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn req_f64(m: &Map<String, Value>, key: &str) -> Result<f64, SidecarError> {
    match m.get(key) {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| bad(format!("{key} must be a finite number"))),
        None | Some(Value::Null) => Err(bad(format!("{key} is required"))),
        Some(_) => Err(bad(format!("{key} must be a number"))),
    }
}

/// An optional unsigned integer field.
fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, SidecarError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a non-negative integer"))),
    }
}

/// An integer query parameter clamped into `min..=max`, as the reference does: clients
/// send what it accepts (`cursor=-5`, `limit=100000`). Only a non-integer is refused.
fn q_clamped(q: &Params, key: &str, default: u64, min: u64, max: u64) -> Result<u64, SidecarError> {
    match q.get(key) {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<i128>()
            .map(|v| v.clamp(min as i128, max as i128) as u64)
            .map_err(|_| bad(format!("{key} must be an integer"))),
    }
}

fn q_run(q: &Params) -> Option<&str> {
    q.get("run_id")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

#[handler]
fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "ts": now_f64() }))
}

/// The mining fields of `POST /runs/start` / `POST /appliance/mine/start`.
fn start_request(m: &Map<String, Value>) -> Result<StartRequest, SidecarError> {
    let workers = opt_u64(m, "workers")?;
    Ok(StartRequest {
        run_id: opt_str(m, "run_id")?.map(str::to_string),
        replace: match m.get("replace") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("replace must be a boolean")),
        },
        task_type: opt_str(m, "task_type")?.map(str::to_string),
        engine: opt_str(m, "engine")?.map(str::to_string),
        workers: workers.map(|w| w as usize),
        seed: opt_u64(m, "seed")?,
        start_from_sota: match m.get("start_from_sota") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("start_from_sota must be a boolean")),
        },
    })
}

const MINING_FIELDS: [&str; 5] = ["task_type", "engine", "workers", "seed", "start_from_sota"];

#[handler]
async fn runs_start(Data(s): Shared<'_>, body: Body) -> Response {
    let m = match object(body).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let req = match start_request(&m) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if MINING_FIELDS.iter().any(|k| m.contains_key(*k)) {
        return match s.supervisor.start(req) {
            Ok(run_id) => Json(json!({ "run_id": run_id })).into_response(),
            Err(e) => e.into_response(),
        };
    }
    reply(
        s.store
            .start_run(req.run_id.as_deref(), req.replace)
            .map(|r| json!({ "run_id": r.run_id })),
    )
}

#[handler]
async fn runs_stop(Data(s): Shared<'_>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        let stopped = s.store.stop_run(opt_str(&m, "run_id")?)?;
        if let Some(run_id) = stopped {
            let sup = s.supervisor.clone();
            let _ = tokio::task::spawn_blocking(move || sup.stop_run(&run_id)).await;
        }
        Ok(json!({ "status": "ok" }))
    };
    reply(r.await)
}

#[handler]
fn state(Data(s): Shared<'_>, q: Params) -> Response {
    reply(s.store.state(q_run(&q)))
}

#[handler]
async fn set_global_sota(Data(s): Shared<'_>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        s.store
            .set_global_sota(opt_str(&m, "run_id")?, req_f64(&m, "value")?)?;
        Ok(json!({ "status": "ok" }))
    };
    reply(r.await)
}

#[handler]
async fn submission_result(Data(s): Shared<'_>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        let status = opt_str(&m, "status")?.ok_or_else(|| bad("status is required"))?;
        s.store
            .submission_result(opt_str(&m, "run_id")?, req_f64(&m, "score")?, status)?;
        Ok(json!({ "status": "ok" }))
    };
    reply(r.await)
}

#[handler]
async fn ingest_batch(Data(s): Shared<'_>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        let (run_id, events) = rules::parse_ingest(&Value::Object(m)).map_err(bad)?;
        let n = s.store.ingest(&run_id, &events)?;
        Ok(json!({ "status": "ok", "received": n }))
    };
    reply(r.await)
}

fn stream_page(s: &Sidecar, q: &Params, stream: Stream) -> Result<Value, SidecarError> {
    let cursor = q_clamped(q, "cursor", 0, 0, u64::MAX)?;
    let limit = q_clamped(q, "limit", stream.default_limit(), 1, stream.max_limit())?;
    let (next, items) = s.store.page(q_run(q), stream, cursor, limit)?;
    Ok(json!({ "cursor": next, "items": items }))
}

#[handler]
fn logs(Data(s): Shared<'_>, q: Params) -> Response {
    reply(stream_page(s, &q, Stream::Logs))
}

#[handler]
fn candidates(Data(s): Shared<'_>, q: Params) -> Response {
    reply(stream_page(s, &q, Stream::Candidates))
}

#[handler]
fn populations(Data(s): Shared<'_>, q: Params) -> Response {
    reply(stream_page(s, &q, Stream::Populations))
}

#[handler]
fn job_results(Data(s): Shared<'_>, q: Params) -> Response {
    reply(stream_page(s, &q, Stream::JobResults))
}

#[handler]
async fn jobs_enqueue(Data(s): Shared<'_>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        let kind = opt_str(&m, "kind")?
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| bad("kind is required"))?;
        let payload = match m.get("payload") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(bad("payload must be an object")),
        };
        s.store.enqueue(
            opt_str(&m, "run_id")?,
            opt_str(&m, "job_id")?,
            kind,
            &payload,
        )
    };
    reply(r.await)
}

/// Longest lease a worker may take (a day): bounds a typo'd `lease_seconds`.
const MAX_LEASE_S: f64 = 86_400.0;

#[handler]
fn jobs_next(Data(s): Shared<'_>, q: Params) -> Response {
    let r = (|| {
        // The reference's default when a worker does not name itself.
        let worker = q
            .get("worker_id")
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("worker");
        let lease = match q.get("lease_seconds") {
            None => 60.0,
            Some(t) => match t.trim().parse::<f64>() {
                Ok(v) if v > 0.0 && v <= MAX_LEASE_S => v,
                _ => {
                    return Err(bad(format!(
                        "lease_seconds must be a number in (0, {MAX_LEASE_S}]"
                    )))
                }
            },
        };
        let Some(run_id) = s.store.resolve(q_run(&q))? else {
            return Ok(None);
        };
        s.store.next_job(&run_id, worker, lease, now_f64())
    })();
    match r {
        Ok(Some(job)) => {
            let run_id = job["run_id"].clone();
            Json(json!({ "run_id": run_id, "job": job })).into_response()
        }
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[handler]
async fn jobs_result(Data(s): Shared<'_>, Path(job_id): Path<String>, body: Body) -> Response {
    let r = async {
        let m = object(body).await?;
        let ok = match opt_str(&m, "status")? {
            Some("ok") => true,
            Some("error") => false,
            Some(other) => {
                return Err(bad(format!(
                    "status must be \"ok\" or \"error\", not {other:?}"
                )))
            }
            None => return Err(bad("status is required")),
        };
        let result = m.get("result").cloned().unwrap_or(json!({}));
        s.store.job_result(
            opt_str(&m, "run_id")?,
            &job_id,
            ok,
            &result,
            opt_str(&m, "error")?,
        )?;
        Ok(json!({ "status": "ok" }))
    };
    reply(r.await)
}

#[handler]
fn appliance_status(Data(s): Shared<'_>) -> Response {
    let cfg = &s.ctx.config;
    let e = &s.ctx.endpoints;
    let service = |enabled: bool, url: &Option<String>| json!({"enabled": enabled, "url": url});
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.ctx.started_at.elapsed().as_secs_f64(),
        "services": {
            "relay": service(cfg.relay.enabled, &e.relay),
            "sidecar": service(cfg.sidecar.enabled, &e.sidecar),
            "pool": service(cfg.pool.enabled, &e.pool),
        },
        "miner": s.supervisor.status(),
        "validators": s.supervisor.validator_identities(),
    }))
    .into_response()
}

#[handler]
async fn appliance_mine_start(Data(s): Shared<'_>, body: Body) -> Response {
    let req = match object(body).await.and_then(|m| start_request(&m)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match s.supervisor.start(req) {
        Ok(run_id) => Json(json!({ "run_id": run_id, "status": "running" })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[handler]
async fn appliance_mine_stop(Data(s): Shared<'_>) -> Response {
    let sup = s.supervisor.clone();
    match tokio::task::spawn_blocking(move || sup.stop()).await {
        Ok(Ok(_)) => Json(json!({ "status": "stopped" })).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The routes of the sidecar listener.
pub fn routes(sidecar: Arc<Sidecar>) -> Route {
    let api = Route::new()
        .at("/health", get(health))
        .at("/runs/start", post(runs_start))
        .at("/runs/stop", post(runs_stop))
        .at("/state", get(state))
        .at("/set_global_sota", post(set_global_sota))
        .at("/submission_result", post(submission_result))
        .at("/ingest_batch", post(ingest_batch))
        .at("/logs", get(logs))
        .at("/candidates", get(candidates))
        .at("/populations", get(populations))
        .at("/jobs/enqueue", post(jobs_enqueue))
        .at("/jobs/next", get(jobs_next))
        .at("/jobs/results", get(job_results))
        .at("/jobs/:job_id/result", post(jobs_result))
        .at("/appliance/status", get(appliance_status))
        .at("/appliance/mine/start", post(appliance_mine_start))
        .at("/appliance/mine/stop", post(appliance_mine_stop));
    let hardened = crate::http::harden(api.data(sidecar), crate::http::DEFAULT_MAX_BODY_BYTES);
    Route::new().nest("/", hardened)
}
