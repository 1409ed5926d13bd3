//! HTTP shell of the relay: the route table, the relay's [`Dialect`], the mapping of its
//! domain refusals to statuses, and the [`Middleware`] (request id, metrics).
//!
//! - [`state`]: the shared [`Relay`] state; [`roles`]: the authentication roles as
//!   extractors, checked before a handler reads its body;
//! - one module per resource, each with its handlers and its part of the route table:
//!   [`public`] (health, version, SOTA), [`submissions`] (miner and UID0 test
//!   submissions), [`results`], [`votes`] (SOTA votes, events, blacklist), [`invites`]
//!   (invitation codes, coldkeys), [`admin`]; [`doc`]: the document's shared schemas.
//!
//! The shared layer ([`crate::http`]) bounds bodies, catches panics and answers JSON
//! 404/405; handlers read bodies as the [`crate::protocol::wire`] structs through
//! [`crate::http::Json`].

mod admin;
mod doc;
mod invites;
mod public;
mod results;
mod roles;
mod state;
mod submissions;
mod votes;

pub use state::{iso, Relay};

use super::consensus::VoteReject;
use super::metrics::Category;
use super::submit::Refusal;
use super::RelayError;
use crate::context::{AppContext, Background, Service};
use crate::http::{Api, ApiError, Dialect, Reply};
use crate::metrics::Metrics;
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response, Route};
use std::sync::Arc;
use std::time::Instant;

/// The reference relay is a FastAPI app: well-formed input of the wrong shape is a 422.
pub struct RelayDialect;

impl Dialect for RelayDialect {
    const SHAPE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    const NOT_JSON: &'static str = "malformed JSON body";
    const NOT_JSON_REASON: bool = true;
    const NOT_OBJECT: &'static str = "request body must be a JSON object";
    const EMPTY_IS_OBJECT: bool = false;
}

/// A relay request body.
type Body<T> = crate::http::Json<T, RelayDialect>;

/// The state every handler reads.
type Shared<'a> = poem::web::Data<&'a Arc<Relay>>;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let status = match r {
            Refusal::NotInvited | Refusal::Blacklisted => StatusCode::FORBIDDEN,
            Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::ScoreRequired
            | Refusal::ScoreOutOfRange(_)
            | Refusal::Duplicate(_)
            | Refusal::BelowSota { .. }
            | Refusal::Content(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, r.to_string())
    }
}

/// Every refusal is a 400 (the reference's); a vote for a score the SOTA has already
/// reached came late (another validator's vote finalized it first), which `/metrics`
/// counts apart from invalid votes.
impl From<VoteReject> for ApiError {
    fn from(r: VoteReject) -> ApiError {
        let late = matches!(r, VoteReject::NotAboveSota { .. });
        let e = ApiError::bad_request(r.to_string());
        if late {
            e.with_class("late")
        } else {
            e
        }
    }
}

/// Hotkeys in paths and bodies: 48 alphanumerics, else 400 with `detail`.
fn check_hotkey(hotkey: &str, detail: &str) -> Result<(), ApiError> {
    if super::submit::valid_hotkey(hotkey) {
        Ok(())
    } else {
        Err(ApiError::bad_request(detail))
    }
}

/// The relay's route table: every resource's routes, and the document's schemas.
fn table() -> Api {
    let api = Api::new(
        "BitSota relay",
        "Miners submit, validators poll and vote, SOTA consensus, admin. Wire-compatible with the reference relay. Every error is {\"detail\": str}, a 422 FastAPI's {\"detail\": [{loc, msg, type}]}; every response carries X-Request-ID; bodies over max_body_bytes get 413.",
    )
    .components(doc::components());
    let api = public::routes(api);
    let api = submissions::routes(api);
    let api = results::routes(api);
    let api = votes::routes(api);
    let api = invites::routes(api);
    admin::routes(api)
}

/// Request id, metrics and request log, around the shared [`crate::http::harden`] guard
/// (so the counters see its 404/405/413/500 answers too).
pub struct Middleware<E> {
    inner: E,
    relay: Arc<Relay>,
}

fn request_id(req: &Request) -> HeaderValue {
    req.header("X-Request-ID")
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .and_then(|v| HeaderValue::from_str(v).ok())
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

impl<E: Endpoint> Endpoint for Middleware<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let rid = request_id(&req);
        let category = Category::of_path(req.uri().path());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        // `inner` is hardened: it answers every error itself.
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        resp.headers_mut().insert("X-Request-ID", rid);
        let status = resp.status().as_u16();
        self.relay
            .metrics
            .record(category, status, state::now_us() as f64 / 1e6);
        if method == poem::http::Method::POST {
            match path.as_str() {
                "/submit_solution" => Metrics::outcome(&self.relay.prom.submissions, &resp),
                "/sota/vote" => Metrics::outcome(&self.relay.prom.votes, &resp),
                _ => {}
            }
        }
        if status >= 500 {
            tracing::warn!(%method, %path, status, "relay: server error");
        }
        tracing::debug!(%method, %path, status, ms = start.elapsed().as_secs_f64() * 1e3, "relay request");
        Ok(resp)
    }
}

/// Build the relay: state, routes, middleware, and its one piece of background work —
/// the group-commit thread, which ends when the routes are dropped at shutdown.
pub fn start(ctx: &AppContext) -> Result<Service, RelayError> {
    let relay = Arc::new(Relay::new(ctx)?);
    relay
        .prom
        .sota
        .with_label_values(&["global"])
        .set(relay.sota().value);
    let mut background = Background::default();
    if let Some(thread) = relay.commits.take_thread() {
        background.spawn_blocking("relay commit thread", move || {
            let _ = thread.join();
        });
    }
    let max_results = ctx.config.store.max_relay_results;
    let pruned = relay.clone();
    background.periodic("relay pruning", ctx, move || pruned.prune(max_results));
    tracing::info!(
        test_mode = relay.cfg.test_mode,
        validators = relay.validator_count(),
        consensus_votes = relay.params.consensus_votes,
        sota = relay.sota().value,
        "relay ready"
    );
    Ok(Service {
        routes: with_middleware(table().merge(ctx.metrics_api()), relay),
        background,
    })
}

/// The table's router with the relay's state, inside the shared guard and [`Middleware`].
fn with_middleware(api: Api, relay: Arc<Relay>) -> Route {
    let inner = api.into_endpoint(relay.clone(), relay.cfg.max_body_bytes);
    Route::new().nest("/", Middleware { inner, relay })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RefusalClass;
    use crate::protocol::wire::SubmitSolution;
    use poem::{handler, Request};
    use serde_json::Value;

    fn context(dir: &std::path::Path) -> AppContext {
        let mut config = crate::config::Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        config.validator.enabled = false;
        config.relay.max_body_bytes = 100;
        let store =
            crate::store::Store::open(&dir.join("store"), crate::store::Durability::Sync).unwrap();
        AppContext {
            store: store.clone(),
            config: Arc::new(config),
            data_dir: dir.to_path_buf(),
            endpoints: Default::default(),
            started_at: Instant::now(),
            shutdown: Default::default(),
            health: Arc::new(crate::health::Monitor::new(store.clone())),
            metrics: Default::default(),
        }
    }

    #[handler]
    fn boom() -> &'static str {
        panic!("boom")
    }

    async fn call(ep: &Route, req: Request) -> (u16, Value, bool) {
        let resp = ep.call(req).await.unwrap();
        let status = resp.status().as_u16();
        let has_id = resp.headers().contains_key("X-Request-ID");
        let body = resp.into_body().into_vec().await.unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            has_id,
        )
    }

    #[tokio::test]
    async fn panics_and_framework_errors_become_json_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Arc::new(Relay::new(&context(dir.path())).unwrap());
        let api = table().get("/boom", crate::http::Op::new("panics"), boom);
        let ep = with_middleware(api, relay.clone());
        let get_req = |p: &str| Request::builder().uri_str(p).finish();

        let (status, body, id) = call(&ep, get_req("/boom")).await;
        assert_eq!((status, id), (500, true));
        assert!(body["detail"].as_str().unwrap().contains("panicked"));
        let (status, body, _) = call(&ep, get_req("/missing")).await;
        assert_eq!((status, body["detail"].as_str()), (404, Some("Not Found")));
        let (status, _, _) = call(&ep, get_req("/submit_solution")).await;
        assert_eq!(status, 405);
        let big = Request::builder()
            .method(poem::http::Method::POST)
            .uri_str("/submit_solution")
            .header("Content-Length", "101")
            .body(vec![b' '; 101]);
        let (status, body, _) = call(&ep, big).await;
        assert_eq!(status, 413);
        assert!(body["detail"].as_str().unwrap().contains("100 bytes"));
        let snap = relay.metrics.snapshot(state::now_us() as f64 / 1e6, 0.0);
        assert_eq!(snap.errors_5xx_total, 1);
        assert_eq!(snap.last_1m.total, 4);
    }

    /// The submission body's shape errors (step 1) and score rule (step 2), with the
    /// statuses the reference's clients see.
    #[test]
    fn submission_bodies_and_their_statuses() {
        let status = |b: &str, required: bool| -> u16 {
            match crate::http::parse::<SubmitSolution, RelayDialect>(b.as_bytes()) {
                Err(e) => e.status.as_u16(),
                Ok(sub) => match super::super::submit::score(&sub, required) {
                    Err(r) => ApiError::from(r).status.as_u16(),
                    Ok(_) => 200,
                },
            }
        };
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":{},"score":0.7}"#, true),
            200
        );
        assert_eq!(status("{", true), 400);
        assert_eq!(status("[1]", true), 422);
        assert_eq!(
            status(r#"{"task_id":1,"algorithm_result":{},"score":1}"#, true),
            422
        );
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":"x","score":1}"#, true),
            422
        );
        assert_eq!(status(r#"{"task_id":"t","score":1}"#, true), 422);
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":{}}"#, true),
            400
        );
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":{}}"#, false),
            200
        );
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":{},"score":"1"}"#, true),
            422
        );
        assert_eq!(
            status(r#"{"task_id":"t","algorithm_result":{},"score":9.0}"#, true),
            400
        );
        assert_eq!(
            status(
                r#"{"task_id":"t","algorithm_result":{},"score":1e400}"#,
                true
            ),
            400
        );
    }

    #[test]
    fn refusals_map_to_the_documented_statuses() {
        let status = |r: Refusal| ApiError::from(r).status.as_u16();
        assert_eq!(status(Refusal::NotInvited), 403);
        assert_eq!(status(Refusal::Blacklisted), 403);
        assert_eq!(status(Refusal::RateLimited(3)), 429);
        assert_eq!(status(Refusal::Duplicate(300)), 400);
        assert_eq!(
            status(Refusal::BelowSota {
                score: 0.1,
                sota: 0.2
            }),
            400
        );
        assert_eq!(ApiError::from(VoteReject::SeenBlock).status.as_u16(), 400);
        // Only a vote the SOTA already reached is counted late.
        let late = ApiError::from(VoteReject::NotAboveSota {
            score: 0.5,
            current: 0.5,
        });
        assert_eq!(
            (late.status.as_u16(), late.class),
            (400, Some(RefusalClass("late")))
        );
        assert_eq!(ApiError::from(VoteReject::SeenBlock).class, None);
    }

    #[test]
    fn document_schemas_resolve() {
        let doc = table().document();
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(doc["components"]["schemas"][&name].is_object(), "{name}");
        }
        // 19 resource routes, `/openapi.json`, `/docs` and its two assets.
        assert_eq!(crate::http::documented(&doc).len(), 23);
    }
}
