//! Pool mining, the miner's side (pool.md §4): [`spawn_coordinator`]`(ctx,
//! PoolMode::Tasks | PoolMode::Lease, run_id, workers, stop) -> CoordinatorHandle`
//! registers the miner hotkey, requests tasks or leases from `miner.pool_endpoint` (or
//! the embedded pool), enqueues `evolve`/`evaluate`/`lease` jobs into the sidecar under
//! `run_id`, runs `workers` worker threads on that queue and submits the results.
//!
//! - [`coordinator`]: the pool protocol and the job hand-off;
//! - [`worker`]: the sidecar job-queue client and the worker loop (also `bitsota worker`).
//!
//! The jobs themselves (payloads, results, engine work) are [`crate::jobs`], shared with
//! the pool's own evaluators.

pub mod coordinator;
pub mod worker;

pub use coordinator::{spawn_coordinator, CoordinatorHandle, CoordinatorStats, PoolMode};

/// Why pool mining cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PoolMiningError {
    /// No pool or no sidecar: the configuration's to fix.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}
