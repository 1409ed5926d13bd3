//! Relay (relay.md): submissions, validator polling and votes, SOTA consensus, admin.

use crate::server::AppContext;
use poem::{get, handler, web::Json, Route};

/// Why the relay could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[handler]
fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "healthy",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

/// The relay's HTTP routes.
pub fn routes(_ctx: &AppContext) -> Result<Route, RelayError> {
    Ok(Route::new().at("/health", get(health)))
}
