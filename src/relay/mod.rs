//! Relay (relay.md): submissions, validator polling and votes, SOTA consensus, admin.
//!
//! - [`consensus`]: score_int, rounds, windows and the vote state machine (pure);
//! - [`submit`]: the ordered submission checks, duplicate/hourly tracker (pure);
//! - [`metrics`]: request counters by category over sliding windows (pure);
//! - [`store`]: the `relay.*` trees, multi-tree updates as sled transactions;
//! - [`http`]: handlers, authentication roles, middleware (request id, body limit,
//!   metrics, JSON errors, panic guard); [`admin`]: status and dashboard;
//!   [`openapi`]: the `/openapi.json` document.

pub mod admin;
pub mod consensus;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod store;
pub mod submit;

use crate::context::AppContext;
use poem::http::StatusCode;
use poem::Route;

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

/// An HTTP error answer: status and `{"detail": …}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Ask for HTTP Basic credentials (`WWW-Authenticate: Basic`).
    pub basic_challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            basic_challenge: false,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        tracing::error!(error = %e, "relay store error");
        ApiError::internal(format!("store error: {e}"))
    }
}

/// The relay's HTTP routes.
pub fn routes(ctx: &AppContext) -> Result<Route, RelayError> {
    http::routes(ctx)
}
