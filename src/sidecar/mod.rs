//! Sidecar (sidecar-miner.md §1): run state, logs, candidates and the local job queue.
//!
//! [`rules`] holds the pure rules (cursors, caps, leases), [`store`] persists runs in
//! sled, [`api`] is the HTTP shell. The in-process miner writes to the same
//! [`SidecarStore`] (through `miner::RunSink`), so its events follow exactly the rules
//! HTTP clients get. Mining itself is not the sidecar's: `/runs/start` with mining fields
//! and `/runs/stop` reach the daemon's miner through [`EmbeddedMiner`], which the
//! appliance provides.

pub mod api;
pub mod rules;
pub mod store;

pub use store::{SidecarError, SidecarStore};

/// A start request from the CLI, the dashboard or the API; `None` = configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct StartRequest {
    pub run_id: Option<String>,
    /// Start the run afresh (`true`) or resume its stored state.
    pub replace: bool,
    pub task_type: Option<String>,
    pub engine: Option<String>,
    pub workers: Option<usize>,
    pub seed: Option<u64>,
    /// Start from the relay's SOTA program (`true`) or afresh (`false`).
    pub start_from_sota: Option<bool>,
}

impl Default for StartRequest {
    fn default() -> Self {
        StartRequest {
            run_id: None,
            replace: true,
            task_type: None,
            engine: None,
            workers: None,
            seed: None,
            start_from_sota: None,
        }
    }
}

/// The miner embedded in the same daemon, as the sidecar's run endpoints reach it.
pub trait EmbeddedMiner: Send + Sync {
    /// Start mining (on `request.run_id`, or a new run); returns the run's id.
    fn start(&self, request: StartRequest) -> Result<String, crate::http::ApiError>;
    /// Stop mining if it runs `run_id`, and wait for its threads.
    fn stop_run(&self, run_id: &str);
}
