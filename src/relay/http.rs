//! HTTP shell of the relay: authentication roles, handlers, middleware.
//!
//! Handlers read the body themselves and parse JSON with our own messages, so no
//! framework rejection can leak a non-JSON or 5xx answer; the shared guard
//! ([`crate::http::harden`]) bounds bodies and catches panics, and the [`Middleware`]
//! adds the request id and metrics.

use super::consensus::{self, Params, Vote};
use super::metrics::{Category, Metrics};
use super::store::{
    EventRec, GroupCommit, InviteRec, LinkOutcome, RelayStore, ResultRec, SotaRec, TestSubRec,
};
use super::submit::{self, Facts, Tracker};
use super::{admin, openapi, ApiError, RelayError};
use crate::clock::{self, now_s, now_us};
use crate::config::RelayConfig;
use crate::http::token_eq;
use crate::keys::{AuthStyle, PublicKey, ReplayGuard, VerifiedSigner};
use crate::server::AppContext;
use parking_lot::{Mutex, RwLock};
use poem::http::{header, HeaderValue, StatusCode};
use poem::web::{Data, Path};
use poem::{
    get, handler, post, Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Signatures remembered by the replay guard (about 10 minutes at 300 signed requests/s;
/// beyond that the oldest are forgotten first).
const REPLAY_CAPACITY: usize = 200_000;

/// The relay's shared state.
pub struct Relay {
    pub cfg: RelayConfig,
    /// The evaluation budget submissions must fit (step 7).
    budget: crate::config::BudgetConfig,
    pub params: Params,
    pub db: RelayStore,
    commits: GroupCommit,
    guard: ReplayGuard,
    validators: HashSet<String>,
    uid0: Option<String>,
    pub metrics: Metrics,
    started: Instant,
    /// Serialises votes (relay.md §4: "under one lock").
    vote_lock: Mutex<()>,
    /// Serialises the stateful submission checks with the write they allow.
    submissions: Mutex<Tracker>,
    invite_lock: Mutex<()>,
    test_lock: Mutex<()>,
    /// The SOTA, mirrored from the store for the hot `GET /sota_threshold`.
    sota: RwLock<SotaRec>,
}

/// ISO-8601 UTC with microseconds, as the reference's datetimes.
fn iso(us: i64) -> String {
    clock::iso(us, clock::SecondsFormat::Micros)
}

fn normalise_hotkey(key: &str, what: &str) -> Result<String, RelayError> {
    PublicKey::from_ss58(key)
        .map(|p| p.to_ss58())
        .map_err(|e| RelayError::Config(format!("{what} '{key}': {e}")))
}

impl Relay {
    pub fn new(ctx: &AppContext) -> Result<Relay, RelayError> {
        let cfg = ctx.config.relay.clone();
        let mut validators = HashSet::new();
        for v in &cfg.validators {
            validators.insert(normalise_hotkey(v, "relay.validators entry")?);
        }
        if ctx.config.validator.enabled {
            for i in 1..=ctx.config.validator.count {
                let kp = crate::keys::identity::load_or_create(
                    &ctx.data_dir,
                    &format!("validator-{i}"),
                )?;
                validators.insert(kp.ss58());
            }
        }
        let uid0 = cfg
            .uid0_hotkey
            .as_deref()
            .map(|k| normalise_hotkey(k, "relay.uid0_hotkey"))
            .transpose()?;
        let db = RelayStore::open(&ctx.store)?;
        let sota = db.sota(cfg.default_sota_threshold)?;
        Ok(Relay {
            params: Params::from_config(&cfg),
            guard: ReplayGuard::new(cfg.auth_max_skew_s, REPLAY_CAPACITY),
            commits: GroupCommit::start(ctx.store.clone()),
            db,
            validators,
            uid0,
            metrics: Metrics::default(),
            started: ctx.started_at,
            vote_lock: Mutex::new(()),
            submissions: Mutex::new(Tracker::default()),
            invite_lock: Mutex::new(()),
            test_lock: Mutex::new(()),
            sota: RwLock::new(sota),
            budget: ctx.config.budget.clone(),
            cfg,
        })
    }

    pub fn sota(&self) -> SotaRec {
        *self.sota.read()
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn validator_count(&self) -> usize {
        self.validators.len()
    }

    pub fn uid0(&self) -> Option<&str> {
        self.uid0.as_deref()
    }

    pub fn replay_cache_len(&self) -> usize {
        self.guard.len()
    }

    async fn commit(&self) -> Result<(), ApiError> {
        Ok(self.commits.commit().await?)
    }

    // ----- roles (relay.md §1) -----

    /// Miner: any valid, fresh, unreplayed signature.
    fn signer(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
        self.guard
            .verify(
                req.header(crate::keys::HEADER_KEY),
                req.header(crate::keys::HEADER_TIMESTAMP),
                req.header(crate::keys::HEADER_SIGNATURE),
                AuthStyle::Relay,
                now_s(),
            )
            .map_err(|e| ApiError::unauthorized(e.to_string()))
    }

    fn validator(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
        let s = self.signer(req)?;
        if self.cfg.test_mode || self.validators.contains(&s.hotkey) {
            Ok(s)
        } else {
            Err(ApiError::forbidden(format!(
                "hotkey {} is not an allowed validator",
                s.hotkey
            )))
        }
    }

    fn uid0_signer(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
        match &self.uid0 {
            Some(uid0) => {
                let s = self.signer(req)?;
                if &s.hotkey == uid0 {
                    Ok(s)
                } else {
                    Err(ApiError::forbidden(
                        "Only UID0 validator may access this endpoint",
                    ))
                }
            }
            None if self.cfg.test_mode => self.validator(req),
            None => {
                self.signer(req)?;
                Err(ApiError::forbidden("UID0 validator not configured"))
            }
        }
    }

    /// Admin: `X-Auth-Token`, or HTTP Basic with the dashboard login.
    fn admin(&self, req: &Request) -> Result<(), ApiError> {
        let challenge = |detail: &str| ApiError {
            basic_challenge: true,
            ..ApiError::unauthorized(detail)
        };
        if let Some(token) = req.header("X-Auth-Token") {
            return match self.cfg.effective_admin_token() {
                Some(t) if token_eq(token, &t) => Ok(()),
                Some(_) => Err(challenge("Invalid admin token")),
                None => Err(challenge("Admin access is not configured")),
            };
        }
        let Some(auth) = req.header(header::AUTHORIZATION) else {
            return Err(challenge("Authentication required"));
        };
        let Some(b64) = auth.strip_prefix("Basic ") else {
            return Err(challenge("Authentication required"));
        };
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| challenge("Invalid authorization header"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| challenge("Invalid authorization header"))?;
        match self.cfg.effective_dashboard_password() {
            Some(p) if token_eq(user, &self.cfg.dashboard_username) & token_eq(pass, &p) => Ok(()),
            Some(_) => Err(challenge("Invalid credentials")),
            None => Err(challenge("Admin access is not configured")),
        }
    }
}

// ----- responses -----

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(bytes)
}

fn ok<T: Serialize>(body: &T) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, body))
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut resp = json_response(self.status, &json!({ "detail": self.detail }));
        if self.basic_challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"bitsota relay\""),
            );
        }
        resp
    }
}

fn result_json(r: &ResultRec, coldkey: Option<String>) -> Value {
    json!({
        "id": r.id,
        "miner_hotkey": r.miner_hotkey,
        "task_id": r.task_id,
        "algorithm_result": r.algorithm_result,
        "score": r.score,
        "timestamp": iso(r.timestamp_us),
        "validator_verified": null,
        "signature": r.signature,
        "timestamp_message": r.timestamp_message,
        "coldkey_address": coldkey,
    })
}

pub fn event_json(e: &EventRec) -> Value {
    json!({
        "id": e.id,
        "miner_hotkey": e.miner_hotkey,
        "score": e.score,
        "score_int": e.score_int,
        "result_id": e.result_id,
        "decision_block": e.decision_block,
        "start_block": e.start_block,
        "end_block": e.end_block,
        "alignment_mod": e.alignment_mod,
        "t2_blocks": e.t2_blocks,
        "created_at": iso(e.created_us),
    })
}

fn invite_json(i: &InviteRec) -> Value {
    json!({
        "id": i.code,
        "miner_hotkey": i.miner_hotkey,
        "coldkey_address": i.coldkey_address,
        "timestamp": iso(i.created_us),
    })
}

fn test_json(t: &TestSubRec) -> Value {
    json!({
        "id": t.id,
        "submitter_hotkey": t.submitter_hotkey,
        "task_id": t.task_id,
        "algorithm_result": t.algorithm_result,
        "score": t.score,
        "created_at": iso(t.created_us),
        "claimed_at": t.claimed_us.map(iso),
        "claimed_by": t.claimed_by,
        "signature": t.signature,
        "timestamp_message": t.timestamp_message,
    })
}

// ----- request helpers -----

/// Read the body. Its size is bounded by the listener's guard ([`crate::http::harden`]
/// with `[relay] max_body_bytes`), which turns a read past the limit into the 413.
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    body.into_vec()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))
}

fn query(req: &Request) -> Result<HashMap<String, String>, ApiError> {
    req.params::<HashMap<String, String>>()
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

/// An integer query parameter (`default` when absent), clamped to `lo..=hi`.
fn int_param(
    q: &HashMap<String, String>,
    name: &str,
    default: i64,
    lo: i64,
    hi: i64,
) -> Result<i64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(|n| n.clamp(lo, hi))
            .map_err(|_| ApiError::unprocessable(format!("{name} must be an integer, got '{v}'"))),
    }
}

fn path_int(v: &str, name: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .map_err(|_| ApiError::unprocessable(format!("{name} must be an integer, got '{v}'")))
}

fn hotkey_param(hk: &str) -> Result<(), ApiError> {
    if submit::valid_hotkey(hk) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Invalid hotkey format"))
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::unprocessable(format!("{name} must be a string"))),
        None => Err(ApiError::unprocessable(format!("{name} is required"))),
    }
}

fn opt_str_field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::unprocessable(format!(
            "{name} must be a string or null"
        ))),
    }
}

fn coldkey_of(relay: &Relay, miner: &str) -> Result<Option<String>, ApiError> {
    Ok(match relay.db.linked_code(miner)? {
        Some(code) => relay.db.invite(&code)?.and_then(|i| i.coldkey_address),
        None => None,
    })
}

// ----- handlers -----

type R = Result<Response, ApiError>;

#[handler]
fn health() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "healthy", "timestamp": iso(now_us())}),
    )
}

#[handler]
fn version_json(relay: Data<&Arc<Relay>>) -> R {
    match &relay.cfg.version_manifest {
        Some(m) => ok(m),
        None => Err(ApiError::not_found("Version info not found")),
    }
}

#[handler]
fn sota_threshold(relay: Data<&Arc<Relay>>) -> Response {
    let s = relay.sota();
    let updated = if s.updated_us == 0 {
        relay.started_at_us()
    } else {
        s.updated_us
    };
    json_response(
        StatusCode::OK,
        &json!({
            "task_type": "global",
            "sota_threshold": s.value,
            "updated_at": iso(updated),
            "cached": true,
        }),
    )
}

#[handler]
fn sota_events_public(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    let q = query(req)?;
    let page = int_param(&q, "page", 1, 1, i64::MAX)? as usize;
    let size = int_param(&q, "page_size", 50, 1, 100)? as usize;
    let (events, total) = relay.db.events_page(page, size)?;
    let rows: Vec<Value> = events
        .iter()
        .map(|e| json!({"miner_hotkey": e.miner_hotkey, "score": e.score, "created_at": iso(e.created_us)}))
        .collect();
    ok(&json!({
        "results": rows,
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": total.div_ceil(size),
    }))
}

#[handler]
async fn submit_solution(req: &Request, body: Body, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.signer(req)?;
    let bytes = read_body(body).await?;
    let sub = submit::parse_submission(&bytes, true)?;
    let score = sub
        .score
        .ok_or_else(|| ApiError::bad_request("score is required"))?;
    let content = submit::check_algorithm(&sub.algorithm_result, &relay.budget);
    let hash = sub.result_hash();
    let hotkey = signer.hotkey;
    let invited = relay.cfg.test_mode || relay.db.linked_code(&hotkey)?.is_some();
    let blacklist_votes = relay.db.blacklist_votes(&hotkey)?;
    let now_s = now_s();
    let record = ResultRec {
        id: submit::result_id(&hotkey, &sub.task_id, now_s),
        miner_hotkey: hotkey.clone(),
        task_id: sub.task_id.clone(),
        algorithm_result: sub.algorithm_result_text(),
        score,
        timestamp_us: 0,
        signature: req
            .header(crate::keys::HEADER_SIGNATURE)
            .unwrap_or_default()
            .trim()
            .to_string(),
        timestamp_message: signer.message,
        seq: 0,
    };
    let stored = {
        let mut tracker = relay.submissions.lock();
        let facts = Facts {
            test_mode: relay.cfg.test_mode,
            invited,
            blacklist_votes,
            blacklist_threshold: relay.cfg.blacklist_votes,
            duplicate: tracker.is_duplicate(&hash, now_s, relay.cfg.duplicate_window_s),
            submissions_last_hour: tracker.last_hour(&hotkey, now_s),
            max_per_hour: relay.cfg.max_submissions_per_hour,
            duplicate_window_s: relay.cfg.duplicate_window_s,
            sota: relay.sota().value,
            content,
        };
        submit::check(score, &facts)?;
        // Stamped under the lock, so that newest-first order and timestamps agree.
        let stored = relay.db.put_result(ResultRec {
            timestamp_us: now_us(),
            ..record
        })?;
        tracker.record(&hotkey, hash, now_s, relay.cfg.max_submissions_per_hour > 0);
        stored
    };
    relay.commit().await?;
    tracing::info!(miner = %hotkey, result_id = %stored.id, score, task_id = %stored.task_id, "relay: submission accepted");
    ok(&json!({"result_id": stored.id, "status": "accepted"}))
}

#[handler]
fn results(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    relay.validator(req)?;
    let q = query(req)?;
    let limit = int_param(&q, "limit", 256, 1, 1000)? as usize;
    let task_id = q
        .get("task_id")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let rows = relay.db.results_newest(limit, task_id)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|r| Ok(result_json(r, coldkey_of(&relay, &r.miner_hotkey)?)))
        .collect::<Result<_, ApiError>>()?;
    ok(&out)
}

#[handler]
fn results_of(req: &Request, Path(miner): Path<String>, relay: Data<&Arc<Relay>>) -> R {
    relay.validator(req)?;
    hotkey_param(&miner)?;
    let out: Vec<Value> = match relay.db.result_of(&miner)? {
        Some(r) => vec![result_json(&r, coldkey_of(&relay, &miner)?)],
        None => vec![],
    };
    ok(&out)
}

#[handler]
async fn sota_vote(req: &Request, body: Body, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.validator(req)?;
    let m = submit::parse_json_object(&read_body(body).await?)?;
    let miner = str_field(&m, "miner_hotkey")?;
    if !submit::valid_hotkey(miner) {
        return Err(ApiError::bad_request("Invalid miner hotkey format"));
    }
    let score = m
        .get("score")
        .ok_or_else(|| ApiError::unprocessable("score is required"))?
        .as_f64()
        .ok_or_else(|| ApiError::unprocessable("score must be a number"))?;
    let seen = m
        .get("seen_block")
        .ok_or_else(|| ApiError::unprocessable("seen_block is required"))?;
    let seen_block = match (seen.as_u64(), seen.as_i64()) {
        (Some(n), _) => n,
        (None, Some(_)) => 0, // negative: refused by the rules below
        _ => return Err(ApiError::unprocessable("seen_block must be an integer")),
    };
    let vote = Vote {
        validator_hotkey: signer.hotkey.clone(),
        miner_hotkey: miner.to_string(),
        score,
        score_int: 0,
        result_id: opt_str_field(&m, "result_id")?.map(str::to_string),
        seen_block,
        timestamp_us: now_us(),
    };
    let (decision, event, current) = {
        let _serial = relay.vote_lock.lock();
        let sota = relay.sota();
        let pending = relay.db.pending_votes()?;
        let d = consensus::decide_vote(&relay.params, sota.value, &pending, &vote)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if let Some(old) = &d.expired {
            tracing::info!(validator = %old.validator_hotkey, miner = %old.miner_hotkey,
                seen_block = old.seen_block, "relay: vote from an earlier round expired");
        }
        match (&d.write, d.finalize) {
            (Some(w), Some(decision_block)) => {
                let window = consensus::window(&relay.params, decision_block);
                let (event, new_sota) = relay.db.finalize(
                    w,
                    decision_block,
                    window,
                    &relay.params,
                    vote.timestamp_us,
                )?;
                *relay.sota.write() = new_sota;
                (d, Some(event), new_sota.value)
            }
            (Some(w), None) => {
                relay.db.put_vote(w)?;
                (d, None, sota.value)
            }
            (None, _) => (d, None, sota.value),
        }
    };
    relay.commit().await?;
    tracing::info!(validator = %vote.validator_hotkey, miner = %vote.miner_hotkey, score, seen_block,
        status = decision.status.as_str(), votes = decision.votes_for_candidate, "relay: vote");
    if let Some(e) = &event {
        tracing::info!(event_id = e.id, miner = %e.miner_hotkey, score = e.score, start_block = e.start_block,
            end_block = e.end_block, "relay: SOTA event finalized");
    }
    ok(&json!({
        "status": decision.status.as_str(),
        "votes_for_candidate": decision.votes_for_candidate,
        "votes_needed": relay.params.consensus_votes,
        "current_sota": current,
        "finalized_event": event.as_ref().map(event_json),
    }))
}

#[handler]
fn sota_events_validator(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    relay.validator(req)?;
    let q = query(req)?;
    let limit = int_param(&q, "limit", 20, 1, 200)? as usize;
    let events: Vec<Value> = relay
        .db
        .events_by_start(limit)?
        .iter()
        .map(event_json)
        .collect();
    ok(&events)
}

#[handler]
async fn blacklist(req: &Request, Path(miner): Path<String>, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.validator(req)?;
    if !submit::valid_hotkey(&miner) {
        return Err(ApiError::bad_request("Invalid miner hotkey format"));
    }
    if !relay.db.blacklist_vote(&miner, &signer.hotkey, now_us())? {
        return Err(ApiError::bad_request(
            "Validator has already voted to blacklist this miner",
        ));
    }
    relay.commit().await?;
    tracing::info!(validator = %signer.hotkey, miner = %miner, "relay: blacklist vote");
    ok(&json!({"status": "blacklist vote recorded"}))
}

/// An 8-character invitation code, A–Z and 0–9.
fn new_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[handler]
async fn invite_generate(req: &Request, Path(count): Path<String>, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    relay.admin(req)?;
    let count = path_int(&count, "count")?;
    if !(1..=1000).contains(&count) {
        return Err(ApiError::bad_request("count must be between 1 and 1000"));
    }
    let mut codes = Vec::with_capacity(count as usize);
    {
        let _serial = relay.invite_lock.lock();
        // Collisions among 36^8 codes are rare; retry the few that hit an existing code.
        for _ in 0..10 {
            let want = count as usize - codes.len();
            if want == 0 {
                break;
            }
            let batch: Vec<String> = (0..want).map(|_| new_code()).collect();
            codes.extend(relay.db.add_invites(&batch, now_us())?);
        }
    }
    relay.commit().await?;
    tracing::info!(count = codes.len(), "relay: invitation codes generated");
    ok(&json!({"data": codes}))
}

#[handler]
fn invite_list(
    req: &Request,
    Path((page, size)): Path<(String, String)>,
    relay: Data<&Arc<Relay>>,
) -> R {
    relay.admin(req)?;
    let page = path_int(&page, "page")?;
    let size = path_int(&size, "size")?;
    if page < 1 || !(1..=1000).contains(&size) {
        return Err(ApiError::bad_request(
            "page must be >= 1 and size between 1 and 1000",
        ));
    }
    let (items, count) = relay.db.invites_page(page as usize, size as usize)?;
    let data: Vec<Value> = items.iter().map(invite_json).collect();
    ok(&json!({"data": data, "count": count}))
}

#[handler]
fn invite_linked(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    let signer = relay.signer(req)?;
    ok(&json!({"data": relay.db.linked_code(&signer.hotkey)?}))
}

#[handler]
async fn invite_link(req: &Request, body: Body, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.signer(req)?;
    let m = submit::parse_json_object(&read_body(body).await?)?;
    let code = str_field(&m, "code")?;
    let coldkey = opt_str_field(&m, "coldkey_address")?;
    let outcome = {
        let _serial = relay.invite_lock.lock();
        if relay.cfg.test_mode
            && code == relay.cfg.test_invite_code
            && relay.db.invite(code)?.is_none()
        {
            relay
                .db
                .put_invite(&relay.db.new_invite(code, None, now_us()))?;
        }
        relay.db.link(code, &signer.hotkey, coldkey)?
    };
    relay.commit().await?;
    tracing::info!(miner = %signer.hotkey, linked = (outcome == LinkOutcome::Linked), "relay: invitation link");
    ok(&json!({"data": i32::from(outcome == LinkOutcome::Linked)}))
}

#[handler]
async fn coldkey_update(req: &Request, body: Body, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.signer(req)?;
    let m = submit::parse_json_object(&read_body(body).await?)?;
    let coldkey = str_field(&m, "coldkey_address")?.to_string();
    let code = {
        let _serial = relay.invite_lock.lock();
        let mut rec = match relay.db.linked_code(&signer.hotkey)? {
            Some(code) => relay
                .db
                .invite(&code)?
                .ok_or_else(|| ApiError::internal("invitation index points nowhere"))?,
            None if relay.cfg.test_mode => {
                // Test mode: give the miner the test code, or a fresh one if it is taken.
                let mut code = relay.cfg.test_invite_code.clone();
                while relay.db.invite(&code)?.is_some() {
                    code = new_code();
                }
                relay.db.new_invite(&code, Some(&signer.hotkey), now_us())
            }
            None => {
                return Err(ApiError::not_found(
                    "No invitation code linked to this miner",
                ))
            }
        };
        rec.coldkey_address = Some(coldkey.clone());
        relay.db.put_invite(&rec)?;
        rec.code
    };
    relay.commit().await?;
    ok(&json!({"status": "success", "coldkey_address": coldkey, "invite_code": code}))
}

#[handler]
async fn test_submit(req: &Request, body: Body, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.uid0_signer(req)?;
    let sub = submit::parse_submission(&read_body(body).await?, false)?;
    let now = now_us();
    let id = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(
            format!("test:{}:{}:{}", signer.hotkey, sub.task_id, now / 1000).as_bytes(),
        );
        hex::encode(d)[..16].to_string()
    };
    let rec = relay.db.add_test(TestSubRec {
        id,
        submitter_hotkey: signer.hotkey.clone(),
        task_id: sub.task_id.clone(),
        algorithm_result: sub.algorithm_result_text(),
        score: sub.score,
        created_us: now,
        claimed_us: None,
        claimed_by: None,
        signature: req
            .header(crate::keys::HEADER_SIGNATURE)
            .unwrap_or_default()
            .trim()
            .to_string(),
        timestamp_message: signer.message,
    })?;
    relay.commit().await?;
    tracing::info!(uid0 = %signer.hotkey, id = %rec.id, "relay: test submission stored");
    ok(&json!({"test_submission_id": rec.id, "status": "accepted"}))
}

#[handler]
async fn test_submissions(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    let relay = *relay;
    let signer = relay.uid0_signer(req)?;
    let q = query(req)?;
    let limit = int_param(&q, "limit", 50, 1, 200)? as usize;
    let claimed = {
        let _serial = relay.test_lock.lock();
        relay.db.claim_tests(limit, &signer.hotkey, now_us())?
    };
    relay.commit().await?;
    let out: Vec<Value> = claimed.iter().map(test_json).collect();
    ok(&out)
}

#[handler]
fn admin_status(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    relay.admin(req)?;
    ok(&admin::status(&relay, now_us() as f64 / 1e6))
}

#[handler]
fn admin_dashboard(req: &Request, relay: Data<&Arc<Relay>>) -> R {
    relay.admin(req)?;
    let html = admin::dashboard_html(&admin::status(&relay, now_us() as f64 / 1e6));
    Ok(Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[handler]
fn openapi_json() -> Response {
    json_response(StatusCode::OK, openapi::document())
}

impl Relay {
    fn started_at_us(&self) -> i64 {
        now_us() - (self.uptime_s() * 1e6) as i64
    }
}

/// The relay's routes (without middleware).
fn endpoints() -> Route {
    Route::new()
        .at("/health", get(health))
        .at("/version.json", get(version_json))
        .at("/openapi.json", get(openapi_json))
        .at("/sota_threshold", get(sota_threshold))
        .at("/sota-events", get(sota_events_public))
        .at("/submit_solution", post(submit_solution))
        .at("/results", get(results))
        .at("/results/:miner_hotkey", get(results_of))
        .at("/sota/vote", post(sota_vote))
        .at("/sota/events", get(sota_events_validator))
        .at("/blacklist/:miner_hotkey", post(blacklist))
        .at("/invitation_code/generate/:count", post(invite_generate))
        .at("/invitation_code/list/:page/:size", get(invite_list))
        .at("/invitation_code/linked", get(invite_linked))
        .at("/invitation_code/link", post(invite_link))
        .at("/coldkey_address/update", post(coldkey_update))
        .at("/test/submit_solution", post(test_submit))
        .at("/test/submissions", get(test_submissions))
        .at("/admin/status", get(admin_status))
        .at("/admin/dashboard", get(admin_dashboard))
}

/// Route patterns and methods served, for the OpenAPI consistency test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/version.json"),
    ("get", "/openapi.json"),
    ("get", "/sota_threshold"),
    ("get", "/sota-events"),
    ("post", "/submit_solution"),
    ("get", "/results"),
    ("get", "/results/{miner_hotkey}"),
    ("post", "/sota/vote"),
    ("get", "/sota/events"),
    ("post", "/blacklist/{miner_hotkey}"),
    ("post", "/invitation_code/generate/{count}"),
    ("get", "/invitation_code/list/{page}/{size}"),
    ("get", "/invitation_code/linked"),
    ("post", "/invitation_code/link"),
    ("post", "/coldkey_address/update"),
    ("post", "/test/submit_solution"),
    ("get", "/test/submissions"),
    ("get", "/admin/status"),
    ("get", "/admin/dashboard"),
];

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
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
            .record(category, status, now_us() as f64 / 1e6);
        if status >= 500 {
            tracing::warn!(%method, %path, status, "relay: server error");
        }
        tracing::debug!(%method, %path, status, ms = start.elapsed().as_secs_f64() * 1e3, "relay request");
        Ok(resp)
    }
}

/// Build the relay: state, routes, middleware.
pub fn routes(ctx: &AppContext) -> Result<Route, RelayError> {
    let relay = Arc::new(Relay::new(ctx)?);
    tracing::info!(
        test_mode = relay.cfg.test_mode,
        validators = relay.validator_count(),
        consensus_votes = relay.params.consensus_votes,
        sota = relay.sota().value,
        "relay ready"
    );
    Ok(with_middleware(endpoints(), relay))
}

/// Wrap `routes` with the relay's state, the shared guard and [`Middleware`].
fn with_middleware(routes: Route, relay: Arc<Relay>) -> Route {
    let limit = relay.cfg.max_body_bytes;
    let inner = crate::http::harden(routes.data(relay.clone()), limit);
    Route::new().nest("/", Middleware { inner, relay })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(dir: &std::path::Path) -> AppContext {
        let mut config = crate::config::Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        config.validator.enabled = false;
        config.relay.max_body_bytes = 100;
        AppContext {
            store: crate::store::Store::open(&dir.join("store"), crate::store::Durability::Sync)
                .unwrap(),
            config: Arc::new(config),
            data_dir: dir.to_path_buf(),
            endpoints: Default::default(),
            started_at: Instant::now(),
            shutdown: Default::default(),
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
        let ep = with_middleware(endpoints().at("/boom", get(boom)), relay.clone());
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
        let snap = relay.metrics.snapshot(now_us() as f64 / 1e6, 0.0);
        assert_eq!(snap.errors_5xx_total, 1);
        assert_eq!(snap.last_1m.total, 4);
    }
}
