//! The pool's link to the relay (pool.md §3): seeding from the relay's current SOTA
//! algorithm, and forwarding the pool's best consensus-verified algorithm, signed with
//! the pool's own hotkey, when it beats the relay's SOTA. Blocking; run off the async
//! threads.

use super::state::PoolState;
use crate::jobs::canonical_dsl;
use crate::keys::Keypair;
use crate::protocol::client::ClientError;
use crate::protocol::relay_client::{RelayClient, SotaProgram};
use crate::protocol::wire::SubmitSolution;
use serde_json::{json, Map};
use std::time::Duration;

/// Meta key: id of the last algorithm offered to the relay (accepted or refused).
const FORWARDED_ID: &str = "relay_forwarded_id";
/// Meta key: id of the last relay SOTA event the pool seeded from.
const SEEDED_EVENT: &str = "relay_seeded_event";
/// Per-request timeout: shorter than the default, so a hung relay does not hold the
/// pool's background round long.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A failed relay exchange.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Relay(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The relay, as the pool's own hotkey sees it.
pub struct RelayLink {
    client: RelayClient,
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
            client: RelayClient::new(base, kp).with_timeout(TIMEOUT),
        }
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
        if score <= self.client.sota_threshold()? {
            return Ok(Forwarded::Nothing);
        }
        let mut algorithm_result = Map::new();
        algorithm_result.insert("task_type".into(), json!(best.task_type));
        algorithm_result.insert("algorithm_dsl".into(), json!(best.dsl));
        algorithm_result.insert("input_dim".into(), json!(best.input_dim));
        algorithm_result.insert(
            "metadata".into(),
            json!({
                "source": "pool",
                "pool_algorithm_id": best.id,
                "author": best.author,
                "evaluations": best.evaluations.len(),
            }),
        );
        let body = SubmitSolution {
            task_id: format!(
                "pool-{}-{}",
                best.id,
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            score: Some(score),
            algorithm_result,
        };
        let outcome = match self.client.submit(&body) {
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
        let Some(event) = self.client.latest_sota_event()? else {
            return Ok(None);
        };
        // Events carry no id on this public list: key the marker on the score.
        let marker = event.score;
        let seen = state.meta_get(SEEDED_EVENT).ok().flatten();
        if seen == Some(marker) {
            return Ok(None);
        }
        // No result yet: try again next round.
        let Some(result) = self.client.result_of(&event.miner_hotkey)? else {
            return Ok(None);
        };
        let _ = state.meta_set(SEEDED_EVENT, marker);
        let cfg = state.config();
        let program = SotaProgram::of(&result, &cfg.task_type, cfg.input_dim);
        match program.and_then(|p| Some((canonical_dsl(&p.dsl).ok()?, p.score))) {
            Some((dsl, score)) => {
                Ok(state.add_seed(&dsl, Some(score), "relay", crate::clock::now_f64())?)
            }
            None => Ok(None),
        }
    }
}
