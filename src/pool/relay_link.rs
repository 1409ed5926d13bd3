//! The pool's link to the relay (pool.md §3): seeding from the relay's current SOTA
//! algorithm, and forwarding the pool's best consensus-verified algorithm, signed with
//! the pool's own hotkey, when it beats the relay's SOTA. Blocking; run off the async
//! threads.

use super::state::PoolState;
use crate::jobs::canonical_dsl;
use crate::keys::{relay_miner_headers, relay_validator_headers, Keypair};
use crate::miner::pool::worker::{read_response, ClientError};
use serde_json::{json, Value};
use std::time::Duration;

/// Meta key: id of the last algorithm offered to the relay (accepted or refused).
const FORWARDED_ID: &str = "relay_forwarded_id";
/// Meta key: id of the last relay SOTA event the pool seeded from.
const SEEDED_EVENT: &str = "relay_seeded_event";

fn now_s() -> u64 {
    super::state::unix_now() as u64
}

/// A failed relay exchange.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A relay client signing as the pool.
pub struct RelayLink {
    base: String,
    kp: Keypair,
    /// Built on first use: a blocking client must not be created (or dropped) on an
    /// async thread, and the link is built while the daemon's runtime starts.
    http: std::sync::OnceLock<reqwest::blocking::Client>,
}

/// What forwarding did.
#[derive(Debug, PartialEq)]
pub enum Forwarded {
    /// Nothing new to offer, or it does not beat the relay.
    Nothing,
    /// The relay took it.
    Accepted { algorithm_id: u64, score: f64 },
    /// The relay refused it (permanent; not offered again).
    Refused { algorithm_id: u64, reason: String },
}

impl RelayLink {
    pub fn new(base: &str, kp: Keypair) -> Self {
        RelayLink {
            base: base.trim_end_matches('/').to_string(),
            kp,
            http: std::sync::OnceLock::new(),
        }
    }

    fn http(&self) -> &reqwest::blocking::Client {
        self.http.get_or_init(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default()
        })
    }

    fn get(&self, path: &str, signed: bool) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut rb = self.http().get(&url);
        if signed {
            let h = relay_validator_headers(&self.kp, now_s());
            rb = h.pairs().iter().fold(rb, |rb, (k, v)| rb.header(*k, *v));
        }
        read_response(&url, rb.send()).map(|(_, v)| v)
    }

    /// Offer the pool's best verified algorithm when it is new and beats the relay.
    pub fn forward_best(&self, state: &PoolState) -> Result<Forwarded, ClientError> {
        let cfg = state.config();
        let Some(best) = state
            .verified(Some(&cfg.task_type), None, 1)
            .ok()
            .and_then(|v| v.into_iter().next())
        else {
            return Ok(Forwarded::Nothing);
        };
        let Some(score) = best.score else {
            return Ok(Forwarded::Nothing);
        };
        let last = state
            .meta_get(FORWARDED_ID)
            .ok()
            .flatten()
            .map(|v| v as u64);
        if last == Some(best.id) {
            return Ok(Forwarded::Nothing);
        }
        let sota = self.get("/sota_threshold", false)?["sota_threshold"]
            .as_f64()
            .unwrap_or(0.0);
        if score <= sota {
            return Ok(Forwarded::Nothing);
        }
        let body = json!({
            "task_id": format!("pool-{}-{}", best.id, &uuid::Uuid::new_v4().simple().to_string()[..8]),
            "score": score,
            "algorithm_result": {
                "task_type": best.task_type,
                "algorithm_dsl": best.dsl,
                "input_dim": best.input_dim,
                "metadata": {
                    "source": "pool",
                    "pool_algorithm_id": best.id,
                    "author": best.author,
                    "evaluations": best.evaluations.len(),
                },
            },
        });
        let url = format!("{}/submit_solution", self.base);
        let h = relay_miner_headers(&self.kp, now_s());
        let rb = h
            .pairs()
            .iter()
            .fold(self.http().post(&url), |rb, (k, v)| rb.header(*k, *v));
        let outcome = match read_response(&url, rb.json(&body).send()) {
            Ok(_) => Forwarded::Accepted {
                algorithm_id: best.id,
                score,
            },
            Err(e) if !e.is_transient() => Forwarded::Refused {
                algorithm_id: best.id,
                reason: e.to_string(),
            },
            Err(e) => return Err(e),
        };
        let _ = state.meta_set(FORWARDED_ID, best.id as f64);
        Ok(outcome)
    }

    /// Add the relay's current SOTA algorithm as a seed (once per SOTA event). Returns
    /// the seed's id when one was added.
    pub fn seed_from_relay(&self, state: &PoolState) -> Result<Option<u64>, LinkError> {
        let events = self.get("/sota-events?page=1&page_size=1", false)?;
        let Some(event) = events["results"].as_array().and_then(|r| r.first()) else {
            return Ok(None);
        };
        let Some(miner) = event["miner_hotkey"].as_str() else {
            return Ok(None);
        };
        // Events carry no id on this public list: key the marker on (miner, score).
        let marker = event["score"].as_f64().unwrap_or(0.0);
        let seen = state.meta_get(SEEDED_EVENT).ok().flatten();
        if seen == Some(marker) {
            return Ok(None);
        }
        let results = self.get(&format!("/results/{miner}"), true)?;
        let Some(result) = results.as_array().and_then(|r| r.first()) else {
            return Ok(None);
        };
        let algorithm: Value = match &result["algorithm_result"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.clone(),
        };
        let cfg = state.config();
        let fits = algorithm["task_type"].as_str() == Some(cfg.task_type.as_str())
            && algorithm["input_dim"]
                .as_u64()
                .map_or(true, |d| d as usize == cfg.input_dim);
        let dsl = algorithm["algorithm_dsl"]
            .as_str()
            .and_then(|d| canonical_dsl(d).ok());
        let _ = state.meta_set(SEEDED_EVENT, marker);
        match (fits, dsl) {
            (true, Some(dsl)) => {
                let score = result["score"].as_f64().or(event["score"].as_f64());
                Ok(state.add_seed(&dsl, score, "relay", super::state::unix_now())?)
            }
            _ => Ok(None),
        }
    }
}
