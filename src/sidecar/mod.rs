//! Sidecar (sidecar-miner.md §1): run state, logs, candidates, the local job queue.

use crate::server::AppContext;
use poem::{get, handler, web::Json, Route};

/// Why the sidecar could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[handler]
fn health() -> Json<serde_json::Value> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    Json(serde_json::json!({ "status": "ok", "ts": ts }))
}

/// The sidecar's HTTP routes.
pub fn routes(_ctx: &AppContext) -> Result<Route, SidecarError> {
    Ok(Route::new().at("/health", get(health)))
}
