//! The relay's shared state and its authentication roles (relay.md §1): who may call
//! what is decided here, before any handler reads its input.

use super::super::consensus::Params;
use super::super::metrics::Metrics;
use super::super::store::{GroupCommit, RelayStore, SotaRec};
use super::super::submit::Tracker;
use super::super::RelayError;
use crate::config::RelayConfig;
use crate::context::AppContext;
use crate::http::{token_eq, ApiError};
use crate::keys::{AuthStyle, PublicKey, ReplayGuard, VerifiedSigner};
use parking_lot::{Mutex, RwLock};
use poem::http::header;
use poem::Request;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// Signatures remembered by the replay guard (about 10 minutes at 300 signed requests/s;
/// beyond that the oldest are forgotten first).
const REPLAY_CAPACITY: usize = 200_000;

/// What a browser shows when it asks for the dashboard login.
const BASIC_CHALLENGE: &str = "Basic realm=\"bitsota relay\"";

/// The relay's shared state.
pub struct Relay {
    pub cfg: RelayConfig,
    /// The evaluation budget submissions must fit (step 7).
    pub(super) budget: crate::config::BudgetConfig,
    pub params: Params,
    pub db: RelayStore,
    pub(super) commits: GroupCommit,
    guard: ReplayGuard,
    validators: HashSet<String>,
    uid0: Option<String>,
    pub metrics: Metrics,
    started: Instant,
    /// Serialises votes (relay.md §4: "under one lock").
    pub(super) vote_lock: Mutex<()>,
    /// Serialises the stateful submission checks with the write they allow.
    pub(super) submissions: Mutex<Tracker>,
    pub(super) invite_lock: Mutex<()>,
    pub(super) test_lock: Mutex<()>,
    /// The SOTA, mirrored from the store for the hot `GET /sota_threshold`.
    pub(super) sota: RwLock<SotaRec>,
    /// `/health`'s verdict and the daemon's metrics.
    pub health: Arc<crate::health::Monitor>,
    pub prom: Arc<crate::metrics::Metrics>,
}

pub(super) use crate::clock::{now_s, now_us};

/// ISO-8601 UTC with microseconds, as the reference's datetimes.
pub fn iso(us: i64) -> String {
    crate::clock::iso(us, crate::clock::SecondsFormat::Micros)
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
            health: ctx.health.clone(),
            prom: ctx.metrics.clone(),
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

    pub(super) fn started_at_us(&self) -> i64 {
        now_us() - (self.uptime_s() * 1e6) as i64
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

    /// One pruning pass (`[store] max_relay_results`), serialised with submissions.
    pub fn prune(&self, max_results: usize) -> Result<usize, crate::store::StoreError> {
        let _tracker = self.submissions.lock();
        self.db.prune_results(max_results)
    }

    pub(super) async fn commit(&self) -> Result<(), ApiError> {
        Ok(self.commits.commit().await?)
    }

    /// The invitation coldkey of `miner`, if it linked one.
    pub(super) fn coldkey_of(&self, miner: &str) -> Result<Option<String>, ApiError> {
        Ok(match self.db.linked_code(miner)? {
            Some(code) => self.db.invite(&code)?.and_then(|i| i.coldkey_address),
            None => None,
        })
    }

    // ----- roles (relay.md §1) -----

    /// Miner: any valid, fresh, unreplayed signature.
    pub(super) fn signer(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
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

    pub(super) fn validator(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
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

    pub(super) fn uid0_signer(&self, req: &Request) -> Result<VerifiedSigner, ApiError> {
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
    pub(super) fn admin(&self, req: &Request) -> Result<(), ApiError> {
        let challenge =
            |detail: &str| ApiError::unauthorized(detail).with_challenge(BASIC_CHALLENGE);
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
