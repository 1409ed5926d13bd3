//! Relay (relay.md): submissions, validator polling and votes, SOTA consensus, admin.
//!
//! - [`consensus`]: score_int, rounds, windows and the vote state machine (pure);
//! - [`submit`]: the ordered submission checks, duplicate/hourly tracker (pure);
//! - [`metrics`]: request counters by category over sliding windows (pure);
//! - [`store`]: the `relay.*` trees, multi-tree updates as sled transactions;
//! - [`http`]: the HTTP shell — state, authentication roles, handlers by resource, the
//!   route table (router and `/openapi.json` from one list), middleware (request id,
//!   metrics); [`admin`]: the status document and dashboard page.

pub mod admin;
pub mod consensus;
pub mod http;
pub mod metrics;
pub mod store;
pub mod submit;

use crate::context::{AppContext, Service};

/// Why the relay could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("relay: {0}")]
    Config(String),
}

/// Start the relay: its routes and background work.
pub fn start(ctx: &AppContext) -> Result<Service, RelayError> {
    http::start(ctx)
}
