//! Pool (pool.md): jobs and leases, evaluation consensus, reputation, epochs.
//!
//! - [`rules`]: the decisions, as pure functions (consensus, reputation, payouts, Merkle).
//! - [`state`]: the stored state (sled trees `pool.*`) and the operations on it.
//! - [`api`]: the HTTP API on the pool listener.
//! - [`jobs`]: sidecar job payloads/results and [`jobs::execute_job`] (engine work).
//! - [`worker`]: the sidecar job-queue client and the worker loop (`bitsota worker`).
//! - [`coordinator`]: pool mining — [`spawn_coordinator`]`(ctx, PoolMode::Tasks |
//!   PoolMode::Lease, run_id, workers, stop) -> CoordinatorHandle` registers the miner
//!   hotkey, requests tasks or leases from `miner.pool_endpoint` (or the embedded pool),
//!   enqueues `evolve`/`evaluate`/`lease` jobs into the embedded sidecar under `run_id`,
//!   runs `workers` worker threads on that queue and submits the results.

pub mod api;
pub mod coordinator;
pub mod jobs;
pub mod rules;
pub mod state;
pub mod worker;

pub use coordinator::{spawn_coordinator, CoordinatorHandle, PoolMode};

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
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("{0}")]
    Config(String),
}

/// How often the pool closes ended epochs.
const TICK: Duration = Duration::from_secs(1);

/// The pool's HTTP routes; also starts its background work (epoch closing, seeding,
/// forwarding), which stops with `ctx.shutdown`.
pub fn routes(ctx: &AppContext) -> Result<Route, PoolError> {
    let state = PoolState::open(ctx.store.clone(), ctx.config.pool.clone())?;
    // `Config::validate` has checked the name.
    let task_type = ctx
        .config
        .pool
        .task_type
        .parse()
        .unwrap_or(crate::tasks::TaskType::ScalarLinear);
    state.add_seed(
        &jobs::empty_program_dsl(task_type),
        None,
        "empty",
        unix_now(),
    )?;
    let pool = Arc::new(api::Pool::new(state, ctx.config.validator.task_seed));
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
