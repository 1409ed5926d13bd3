//! The appliance: what makes the services one daemon rather than five programs. It owns
//! the mining [`Supervisor`] (the embedded miner, bridged to the sidecar store) and the
//! `/appliance/*` API ([`http`]) served on the sidecar listener.

pub mod http;
pub mod supervisor;

pub use supervisor::{MinerError, Supervisor};

use crate::context::{AppContext, Background};
use crate::sidecar::SidecarStore;
use crate::validator::state::ValidatorState;
use std::sync::Arc;

/// The started appliance: the supervisor (the sidecar reaches the miner through it), the
/// `/appliance/*` routes, and the work that stops mining at shutdown.
pub struct Started {
    pub supervisor: Arc<Supervisor>,
    pub api: crate::http::Api,
    pub background: Background,
}

/// Start the appliance over the sidecar's store: mining starts now when `[miner]
/// autostart` says so, and stops — its last events and `stopped` status written — when
/// the daemon shuts down, before the store is flushed.
pub fn start(
    ctx: &AppContext,
    sidecar: Arc<SidecarStore>,
    validators: Vec<Arc<ValidatorState>>,
) -> Result<Started, MinerError> {
    let supervisor = Supervisor::new(ctx.clone(), sidecar);
    if ctx.config.miner.autostart {
        supervisor.start(Default::default())?;
    }
    let sup = supervisor.clone();
    ctx.metrics.on_scrape(move |m| {
        let (rate, best) = sup.live_figures();
        m.miner_children_per_s.set(rate);
        m.miner_best_fitness.set(best.unwrap_or(0.0));
    });
    let mut background = Background::default();
    let (sup, token) = (supervisor.clone(), ctx.shutdown.clone());
    background.spawn("miner: stop at shutdown", async move {
        token.cancelled().await;
        let stopped = tokio::task::spawn_blocking(move || sup.stop()).await;
        if let Ok(Err(e)) = stopped {
            tracing::warn!(error = %e, "miner: stop at shutdown");
        }
    });
    let appliance = Arc::new(http::Appliance {
        ctx: ctx.clone(),
        supervisor: supervisor.clone(),
        validators,
    });
    Ok(Started {
        supervisor,
        api: http::table(appliance),
        background,
    })
}
