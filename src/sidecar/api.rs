//! HTTP handlers of the sidecar (sidecar-miner.md §1.2): thin shells that take typed
//! input (malformed input is a 400 or FastAPI's 422 with a reason, never a 500) and call
//! [`SidecarStore`] or the daemon's [`EmbeddedMiner`]. The route table builds the router
//! and the `/openapi.json` document.

use super::rules::Stream;
use super::store::{SidecarError, SidecarStore};
use super::{EmbeddedMiner, StartRequest};
use crate::clock::now_f64;
use crate::http::{
    array, from_value, ok, query, query_int, Api, ApiError, Dialect, Json, Op, Params, Reply,
};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Route};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Everything the handlers share.
pub struct Sidecar {
    pub store: Arc<SidecarStore>,
    /// The daemon's miner (the appliance's supervisor).
    pub miner: Arc<dyn EmbeddedMiner>,
    /// `/health`'s verdict.
    pub health: Arc<crate::health::Monitor>,
}

/// The reference sidecar is a FastAPI app: a body of the wrong shape (a required field
/// missing, a field of the wrong type) is FastAPI's 422; a body that is not JSON, and its
/// own checks (a blank `kind` or `run_id`, bad ingest events), are 400s. An empty body is
/// `{}` (its Python clients post none to `/runs/start`).
pub struct SidecarDialect;

impl Dialect for SidecarDialect {
    const SHAPE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    const NOT_JSON: &'static str = "Invalid JSON";
    const NOT_JSON_REASON: bool = false;
    const NOT_OBJECT: &'static str = "body must be a JSON object";
    const EMPTY_IS_OBJECT: bool = true;
}

/// `/ingest_batch`, which the reference reads by hand rather than through a model: every
/// refusal of its body is a 400 with a reason.
struct IngestDialect;

impl Dialect for IngestDialect {
    const SHAPE: StatusCode = StatusCode::BAD_REQUEST;
    const NOT_JSON: &'static str = SidecarDialect::NOT_JSON;
    const NOT_JSON_REASON: bool = SidecarDialect::NOT_JSON_REASON;
    const NOT_OBJECT: &'static str = SidecarDialect::NOT_OBJECT;
    const EMPTY_IS_OBJECT: bool = SidecarDialect::EMPTY_IS_OBJECT;
}

type Shared<'a> = Data<&'a Arc<Sidecar>>;
pub type Body<T> = Json<T, SidecarDialect>;

impl From<SidecarError> for ApiError {
    fn from(e: SidecarError) -> ApiError {
        let status = match &e {
            // Storage answers its own status (507, or a 5xx without internal text).
            SidecarError::Store(_) => None,
            SidecarError::BadInput(_) => Some(StatusCode::BAD_REQUEST),
            SidecarError::NotFound(_) => Some(StatusCode::NOT_FOUND),
            SidecarError::Conflict(_) => Some(StatusCode::CONFLICT),
            SidecarError::Full(_) => Some(StatusCode::TOO_MANY_REQUESTS),
            SidecarError::Unavailable(_) => Some(StatusCode::SERVICE_UNAVAILABLE),
        };
        match (e, status) {
            (SidecarError::Store(e), _) => e.into(),
            (e, status) => ApiError::new(
                status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.to_string(),
            ),
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn status_ok() -> Reply {
    ok(&json!({ "status": "ok" }))
}

/// The `run_id` query parameter, if not empty.
fn q_run(q: &Params) -> Option<&str> {
    q.text("run_id")
}

/// `ok` (the reference's word) while healthy, else `degraded` with the reasons and 503.
#[handler]
fn health(sidecar: Shared<'_>) -> Reply {
    let report = sidecar.health.report();
    let status = if report.healthy() {
        "ok"
    } else {
        report.status
    };
    Ok(crate::health::response(
        &report,
        json!({ "status": status, "reasons": report.reasons, "ts": now_f64() }),
    ))
}

/// `POST /runs/start` and `POST /appliance/mine/start`: the run and, for mining, its
/// settings (absent = the configuration's).
#[derive(Deserialize)]
pub struct StartBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    replace: Option<bool>,
    #[serde(default)]
    task_type: Option<String>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    workers: Option<u64>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    start_from_sota: Option<bool>,
}

impl From<StartBody> for StartRequest {
    fn from(b: StartBody) -> StartRequest {
        StartRequest {
            run_id: b.run_id,
            replace: b.replace.unwrap_or(true),
            task_type: b.task_type,
            engine: b.engine,
            workers: b.workers.map(|w| w as usize),
            seed: b.seed,
            start_from_sota: b.start_from_sota,
        }
    }
}

/// A body that names any of these starts mining, not only a run.
const MINING_FIELDS: [&str; 5] = ["task_type", "engine", "workers", "seed", "start_from_sota"];

#[handler]
async fn runs_start(Data(s): Shared<'_>, Json(m, ..): Body<Map<String, Value>>) -> Reply {
    let mining = MINING_FIELDS.iter().any(|k| m.contains_key(*k));
    let req: StartRequest = from_value::<StartBody, SidecarDialect>(Value::Object(m))?.into();
    if mining {
        return ok(&json!({ "run_id": s.miner.start(req)? }));
    }
    let run = s.store.start_run(req.run_id.as_deref(), req.replace)?;
    ok(&json!({ "run_id": run.run_id }))
}

/// A body that may name its run.
#[derive(Deserialize)]
struct RunRef {
    #[serde(default)]
    run_id: Option<String>,
}

#[handler]
async fn runs_stop(Data(s): Shared<'_>, Json(b, ..): Body<RunRef>) -> Reply {
    if let Some(run_id) = s.store.stop_run(b.run_id.as_deref())? {
        let miner = s.miner.clone();
        let _ = tokio::task::spawn_blocking(move || miner.stop_run(&run_id)).await;
    }
    status_ok()
}

#[handler]
fn state(Data(s): Shared<'_>, q: Params) -> Reply {
    ok(&s.store.state(q_run(&q))?)
}

#[derive(Deserialize)]
struct GlobalSota {
    #[serde(default)]
    run_id: Option<String>,
    value: f64,
}

#[handler]
async fn set_global_sota(Data(s): Shared<'_>, Json(b, ..): Body<GlobalSota>) -> Reply {
    s.store.set_global_sota(b.run_id.as_deref(), b.value)?;
    status_ok()
}

/// What became of a submission; `status` first, so that a body without it is refused
/// for that before its score.
#[derive(Deserialize)]
struct SubmissionResult {
    status: String,
    score: f64,
    #[serde(default)]
    run_id: Option<String>,
}

#[handler]
async fn submission_result(Data(s): Shared<'_>, Json(b, ..): Body<SubmissionResult>) -> Reply {
    s.store
        .submission_result(b.run_id.as_deref(), b.score, &b.status)?;
    status_ok()
}

/// The events keep their own parser ([`crate::protocol::run_events::parse_ingest`]):
/// events that are not objects are skipped, not refused, as the reference does.
#[handler]
async fn ingest_batch(Data(s): Shared<'_>, Json(body, ..): Json<Value, IngestDialect>) -> Reply {
    let (run_id, events) = crate::protocol::run_events::parse_ingest(&body).map_err(bad)?;
    let n = s.store.ingest(&run_id, &events)?;
    ok(&json!({ "status": "ok", "received": n }))
}

fn stream_page(s: &Sidecar, q: &Params, stream: Stream) -> Reply {
    let cursor = q.int::<SidecarDialect>("cursor", 0, 0, u64::MAX as i128)? as u64;
    let limit = q.int::<SidecarDialect>(
        "limit",
        stream.default_limit() as i128,
        1,
        stream.max_limit() as i128,
    )? as u64;
    let (next, items) = s.store.page(q_run(q), stream, cursor, limit)?;
    ok(&json!({ "cursor": next, "items": items }))
}

#[handler]
fn logs(Data(s): Shared<'_>, q: Params) -> Reply {
    stream_page(s, &q, Stream::Logs)
}

#[handler]
fn candidates(Data(s): Shared<'_>, q: Params) -> Reply {
    stream_page(s, &q, Stream::Candidates)
}

#[handler]
fn populations(Data(s): Shared<'_>, q: Params) -> Reply {
    stream_page(s, &q, Stream::Populations)
}

#[handler]
fn job_results(Data(s): Shared<'_>, q: Params) -> Reply {
    stream_page(s, &q, Stream::JobResults)
}

#[derive(Deserialize)]
struct Enqueue {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    job_id: Option<String>,
    kind: String,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
}

#[handler]
async fn jobs_enqueue(Data(s): Shared<'_>, Json(b, ..): Body<Enqueue>) -> Reply {
    let kind = Some(b.kind.as_str())
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| bad("kind is required"))?;
    let payload = Value::Object(b.payload.unwrap_or_default());
    ok(&s
        .store
        .enqueue(b.run_id.as_deref(), b.job_id.as_deref(), kind, &payload)?)
}

/// Longest lease a worker may take (a day): bounds a typo'd `lease_seconds`.
const MAX_LEASE_S: f64 = 86_400.0;

#[handler]
fn jobs_next(Data(s): Shared<'_>, q: Params) -> Reply {
    // The reference's default when a worker does not name itself.
    let worker = q.text("worker_id").unwrap_or("worker");
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
    let job = match s.store.resolve(q_run(&q))? {
        Some(run_id) => s.store.next_job(&run_id, worker, lease, now_f64())?,
        None => None,
    };
    match job {
        Some(job) => ok(&json!({ "run_id": job["run_id"].clone(), "job": job })),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A worker's word on a job.
#[derive(Deserialize)]
struct JobResult {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// Absent = `{}`.
    #[serde(default = "empty_object")]
    result: Value,
    #[serde(default)]
    error: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

#[handler]
async fn jobs_result(
    Data(s): Shared<'_>,
    Path(job_id): Path<String>,
    Json(b, ..): Body<JobResult>,
) -> Reply {
    let done = match b.status.as_deref() {
        Some("ok") => true,
        Some("error") => false,
        Some(other) => {
            return Err(bad(format!(
                "status must be \"ok\" or \"error\", not {other:?}"
            )))
        }
        None => return Err(bad("status is required")),
    };
    s.store.job_result(
        b.run_id.as_deref(),
        &job_id,
        done,
        &b.result,
        b.error.as_deref(),
    )?;
    status_ok()
}

fn object() -> Value {
    json!({"type": "object"})
}

fn body(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// The body of `POST /runs/start` in the document.
pub fn start_schema() -> Value {
    let string = json!({"type": "string"});
    body(
        &[],
        json!({"run_id": string, "replace": {"type": "boolean", "default": true},
            "task_type": string, "engine": string, "workers": {"type": "integer", "minimum": 0},
            "seed": {"type": "integer", "minimum": 0}, "start_from_sota": {"type": "boolean"}}),
    )
}

/// The sidecar's route table: its router and its `/openapi.json`. The listener serves
/// the appliance's table beside it (see `appliance`).
pub fn table() -> Api {
    let run_q = || query("run_id", json!({"type": "string"}));
    let page_q = |max: i64| {
        vec![
            run_q(),
            query_int("cursor", 0, 0, i64::MAX),
            query_int("limit", 200.min(max), 1, max),
        ]
    };
    let string = json!({"type": "string"});
    let start = start_schema();
    Api::new(
        "BitSota sidecar",
        "Run state, logs, candidates and the local job queue (wire-compatible with the reference sidecar), and the appliance API that starts and stops the embedded miner. Every error is {\"detail\": str}, a 422 FastAPI's {\"detail\": [{loc, msg, type}]}; no authentication (loopback).",
    )
    .get("/health", Op::new("Liveness").ok(object()), health)
    .post(
        "/runs/start",
        Op::new("Start or resume a run; mining fields start the embedded miner on it")
            .body(start.clone())
            .ok(body(&["run_id"], json!({"run_id": string})))
            .errors(&[400, 422, 409, 413]),
        runs_start,
    )
    .post(
        "/runs/stop",
        Op::new("Stop a run (and its miner)")
            .body(body(&[], json!({"run_id": string})))
            .ok(object())
            .errors(&[400, 422, 404, 413]),
        runs_stop,
    )
    .get(
        "/state",
        Op::new("A run's state (idle shape for an unknown run)").params(vec![run_q()]).ok(object()),
        state,
    )
    .post(
        "/set_global_sota",
        Op::new("Set the run's global SOTA")
            .body(body(&["value"], json!({"run_id": string, "value": {"type": "number"}})))
            .ok(object())
            .errors(&[400, 422, 413]),
        set_global_sota,
    )
    .post(
        "/submission_result",
        Op::new("Record what became of a submission")
            .body(body(&["score", "status"], json!({"run_id": string, "score": {"type": "number"}, "status": string})))
            .ok(object())
            .errors(&[400, 422, 413]),
        submission_result,
    )
    .post(
        "/ingest_batch",
        Op::new("Ingest a batch of run events")
            .body(body(&["run_id", "events"], json!({"run_id": string, "events": array(object())})))
            .ok(object())
            .errors(&[400, 422, 413]),
        ingest_batch,
    )
    .get("/logs", Op::new("Log lines after a cursor").params(page_q(500)).ok(object()).errors(&[400, 422]), logs)
    .get(
        "/candidates",
        Op::new("Candidates after a cursor").params(page_q(500)).ok(object()).errors(&[400, 422]),
        candidates,
    )
    .get(
        "/populations",
        Op::new("Population snapshots after a cursor").params(page_q(50)).ok(object()).errors(&[400, 422]),
        populations,
    )
    .post(
        "/jobs/enqueue",
        Op::new("Queue a job")
            .body(body(&["kind"], json!({"run_id": string, "job_id": string, "kind": string, "payload": object()})))
            .ok(object())
            .errors(&[400, 422, 409, 413, 429]),
        jobs_enqueue,
    )
    .get(
        "/jobs/next",
        Op::new("Lease the next job (204 when none)")
            .params(vec![run_q(), query("worker_id", string.clone()), query("lease_seconds", json!({"type": "number", "default": 60}))])
            .ok(object())
            .response(204, json!({"description": "no job"}))
            .errors(&[400, 422]),
        jobs_next,
    )
    .get(
        "/jobs/results",
        Op::new("Job results after a cursor").params(page_q(500)).ok(object()).errors(&[400, 422]),
        job_results,
    )
    .post(
        "/jobs/{job_id}/result",
        Op::new("A worker's result for a job")
            .params(vec![crate::http::path_param("job_id", string.clone())])
            .body(body(&["status"], json!({"run_id": string, "status": {"type": "string", "enum": ["ok", "error"]}, "result": object(), "error": string})))
            .ok(object())
            .errors(&[400, 422, 404, 413]),
        jobs_result,
    )
}

/// The sidecar listener's routes: the sidecar's table and `extra` (the appliance's).
pub fn routes(sidecar: Arc<Sidecar>, extra: Api) -> Route {
    Route::new().nest(
        "/",
        table()
            .merge(extra)
            .into_endpoint(sidecar, crate::http::DEFAULT_MAX_BODY_BYTES),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_every_route_once() {
        let listed = crate::http::documented(&super::table().document());
        // 14 resource routes, `/openapi.json`, `/docs` and its two assets.
        assert_eq!(listed.len(), 18, "{listed:?}");
    }
}
