//! The appliance API on the sidecar listener: `GET /appliance/status`,
//! `POST /appliance/mine/start`, `POST /appliance/mine/stop` and
//! `GET /appliance/validators` — what the dashboard and `bitsota mine` drive the daemon
//! with. Its route table is served beside the sidecar's, in one document.

use super::{MinerError, Supervisor};
use crate::context::AppContext;
use crate::http::{ok, Api, ApiError, Json, Op, Reply};
use crate::sidecar::api::{start_schema, Body, StartBody};
use crate::validator::state::ValidatorState;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, EndpointExt};
use serde_json::json;
use std::sync::Arc;

/// What the appliance's handlers share.
pub struct Appliance {
    pub ctx: AppContext,
    pub supervisor: Arc<Supervisor>,
    /// The embedded validators, as the dashboard sees them.
    pub validators: Vec<Arc<ValidatorState>>,
}

type Shared<'a> = Data<&'a Arc<Appliance>>;

impl From<MinerError> for ApiError {
    fn from(e: MinerError) -> ApiError {
        match e {
            MinerError::Sidecar(e) => e.into(),
            MinerError::AlreadyMining => ApiError::new(StatusCode::CONFLICT, "already mining"),
            MinerError::Settings(_) | MinerError::Pool(_) => ApiError::bad_request(e.to_string()),
            MinerError::Key(_) | MinerError::Thread(_) => ApiError::internal(e.to_string()),
        }
    }
}

#[handler]
fn status(Data(a): Shared<'_>) -> Reply {
    let cfg = &a.ctx.config;
    let e = &a.ctx.endpoints;
    let service = |enabled: bool, url: &Option<String>| json!({"enabled": enabled, "url": url});
    ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": a.ctx.started_at.elapsed().as_secs_f64(),
        "services": {
            "relay": service(cfg.relay.enabled, &e.relay),
            "sidecar": service(cfg.sidecar.enabled, &e.sidecar),
            "pool": service(cfg.pool.enabled, &e.pool),
        },
        "miner": a.supervisor.status(),
        "validators": a.supervisor.validator_identities(),
        "health": a.ctx.health.report(),
    }))
}

#[handler]
async fn mine_start(Data(a): Shared<'_>, Json(b, ..): Body<StartBody>) -> Reply {
    let run_id = a.supervisor.start(b.into())?;
    ok(&json!({ "run_id": run_id, "status": "running" }))
}

#[handler]
async fn mine_stop(Data(a): Shared<'_>) -> Reply {
    let sup = a.supervisor.clone();
    match tokio::task::spawn_blocking(move || sup.stop()).await {
        Ok(r) => {
            r?;
            ok(&json!({ "status": "stopped" }))
        }
        Err(e) => {
            tracing::error!(error = %e, "miner: stop failed");
            Err(ApiError::internal("the miner could not be stopped"))
        }
    }
}

#[handler]
fn validators(Data(a): Shared<'_>) -> Reply {
    let views: Vec<_> = a.validators.iter().map(|s| s.view()).collect();
    ok(&json!({ "validators": views }))
}

/// The appliance's route table, its state attached to each route.
pub fn table(appliance: Arc<Appliance>) -> Api {
    let object = || json!({"type": "object"});
    Api::new("", "")
        .get(
            "/appliance/status",
            Op::new("Services, miner and validators").ok(object()),
            status.data(appliance.clone()),
        )
        .post(
            "/appliance/mine/start",
            Op::new("Start the embedded miner")
                .body(start_schema())
                .ok(object())
                .errors(&[400, 409, 413]),
            mine_start.data(appliance.clone()),
        )
        .post(
            "/appliance/mine/stop",
            Op::new("Stop the embedded miner")
                .ok(object())
                .errors(&[500]),
            mine_stop.data(appliance.clone()),
        )
        .get(
            "/appliance/validators",
            Op::new("The embedded validators: identity, counters, last votes").ok(object()),
            validators.data(appliance),
        )
}
