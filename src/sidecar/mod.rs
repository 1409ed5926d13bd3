//! Sidecar (sidecar-miner.md §1): run state, logs, candidates, the local job queue — and
//! the appliance API (`/appliance/*`) that starts and stops the embedded miner.
//!
//! [`rules`] holds the pure rules (cursors, caps, events, leases), [`store`] persists runs
//! in sled, [`api`] is the HTTP shell. The in-process miner writes to the same
//! [`SidecarStore`] directly, so its events follow exactly the rules HTTP clients get.

pub mod api;
pub mod rules;
pub mod store;

pub use store::{SidecarError, SidecarStore};

use crate::appliance::Supervisor;
use crate::context::AppContext;
use poem::Route;
use std::sync::Arc;

/// Build the sidecar's routes, the miner supervisor, and start mining when
/// `[miner] autostart` says so.
pub fn routes(ctx: &AppContext) -> Result<Route, SidecarError> {
    let store = Arc::new(SidecarStore::open(ctx.store.clone())?);
    let supervisor = Supervisor::new(ctx.clone(), store.clone());
    supervisor.stop_on_shutdown();
    if ctx.config.miner.autostart {
        supervisor
            .start(Default::default())
            .map_err(|e| SidecarError::Unavailable(format!("miner autostart: {e}")))?;
    }
    Ok(api::routes(Arc::new(api::Sidecar {
        store,
        supervisor,
        ctx: ctx.clone(),
    })))
}
