//! Validators (validator.md): clients of a relay that re-evaluate every submission on a
//! deterministic suite, blacklist miners whose claims are off, and vote for the best
//! result above the SOTA.
//!
//! - [`rules`]: the decisions, as pure functions (vote selection, blacklist, backoff,
//!   seen-block, weights, stats line);
//! - [`run::ValidatorLoop`]: one identity polling one relay — the daemon runs
//!   `[validator] count` of them ([`start`]), `bitsota validate` runs one;
//! - [`suites`]: strict parsing and the shared, prepared validator suites;
//! - [`seen`], [`metrics`], [`state`]: the persisted seen-set, the JSONL metrics, and
//!   what `GET /appliance/validators` shows.

pub mod client;
pub mod metrics;
pub mod rules;
pub mod seen;
pub mod state;

use poem::web::{Data, Json};
use poem::{get, handler, EndpointExt, Route};
use state::ValidatorState;
use std::sync::Arc;

/// Why a validator could not start or poll.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error("validator: {0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Relay(#[from] client::RelayError),
}

/// The validators of this process, as the dashboard sees them.
type Registry = Arc<Vec<Arc<ValidatorState>>>;

#[handler]
fn list_validators(Data(registry): Data<&Registry>) -> Json<serde_json::Value> {
    let views: Vec<_> = registry.iter().map(|s| s.view()).collect();
    Json(serde_json::json!({ "validators": views }))
}

/// `GET /appliance/validators` over `states`.
pub fn route(states: Vec<Arc<ValidatorState>>) -> Route {
    let registry: Registry = Arc::new(states);
    Route::new().at("/appliance/validators", get(list_validators).data(registry))
}
