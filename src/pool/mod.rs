//! Pool (pool.md): jobs and leases, evaluation consensus, reputation, epochs.

use crate::server::AppContext;
use poem::{get, handler, web::Json, Route};

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[handler]
fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "healthy" }))
}

/// The pool's HTTP routes.
pub fn routes(_ctx: &AppContext) -> Result<Route, PoolError> {
    Ok(Route::new().at("/health", get(health)))
}
