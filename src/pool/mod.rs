//! Pool (pool.md): jobs and leases, evaluation consensus, reputation, epochs.
//!
//! - [`rules`]: the decisions, as pure functions (consensus, reputation, payouts, Merkle).
//! - [`state`]: the stored state (sled trees `pool.*`) and the operations on it.
//! - [`api`]: the HTTP API on the pool listener.
//! - [`jobs`]: sidecar job payloads/results and their execution with the engine.

pub mod api;
pub mod jobs;
pub mod rules;
pub mod state;

use crate::server::AppContext;
use poem::Route;
use state::{unix_now, PoolState};
use std::sync::Arc;
use std::time::Duration;

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How often the pool closes ended epochs.
const TICK: Duration = Duration::from_secs(1);

/// The pool's HTTP routes; also starts its background work (epoch closing, seeding,
/// forwarding), which stops with `ctx.shutdown`.
pub fn routes(ctx: &AppContext) -> Result<Route, PoolError> {
    let state = PoolState::open(ctx.store.clone(), ctx.config.pool.clone())?;
    state.add_seed(
        &jobs::empty_program_dsl(&ctx.config.pool.task_type),
        None,
        "empty",
        unix_now(),
    )?;
    let pool = Arc::new(api::Pool::new(state));
    spawn_background(ctx, pool.clone());
    Ok(api::route(pool))
}

fn spawn_background(ctx: &AppContext, pool: Arc<api::Pool>) {
    let token = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let p = pool.clone();
            let r = tokio::task::spawn_blocking(move || p.state.close_epochs(unix_now())).await;
            match r {
                Ok(Ok(closed)) => {
                    for e in closed {
                        tracing::info!(epoch = e, "[pool] epoch closed");
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "[pool] closing epochs failed"),
                Err(e) => tracing::warn!(error = %e, "[pool] epoch task failed"),
            }
        }
    });
}
