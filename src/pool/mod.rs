//! Pool (pool.md): jobs and leases, evaluation consensus, reputation, epochs.
//!
//! - [`rules`]: the decisions, as pure functions (consensus, reputation, payouts, Merkle).
//! - [`state`]: the stored state (sled trees `pool.*`) and the operations on it, one
//!   transaction each; [`audit`]: the invariants that relate its trees.
//! - [`api`]: the HTTP API on the pool listener.
//! - [`jobs`]: sidecar job payloads/results and [`jobs::execute_job`] (engine work).
//! - [`relay_link`]: seeding from the relay's SOTA and forwarding the pool's best.
//! - [`local_evaluators`]: the appliance's own evaluator identities and genesis work,
//!   so one machine completes the pool cycle.
//! - [`worker`]: the sidecar job-queue client and the worker loop (`bitsota worker`).
//! - [`coordinator`]: pool mining — [`spawn_coordinator`]`(ctx, PoolMode::Tasks |
//!   PoolMode::Lease, run_id, workers, stop) -> CoordinatorHandle` registers the miner
//!   hotkey, requests tasks or leases from `miner.pool_endpoint` (or the embedded pool),
//!   enqueues `evolve`/`evaluate`/`lease` jobs into the embedded sidecar under `run_id`,
//!   runs `workers` worker threads on that queue and submits the results.

pub mod api;
pub mod audit;
pub mod coordinator;
pub mod jobs;
pub mod local_evaluators;
pub mod relay_link;
pub mod rules;
pub mod state;
pub mod worker;

pub use coordinator::{spawn_coordinator, CoordinatorHandle, PoolMode};

use crate::clock::now_f64;
use crate::server::AppContext;
use poem::Route;
use state::PoolState;
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

/// How often the pool closes ended epochs and checks whether to forward its best.
const TICK: Duration = Duration::from_secs(1);
/// How often the pool looks for a new relay SOTA to seed from.
const SEED_EVERY: Duration = Duration::from_secs(10);

/// The pool's HTTP routes; also starts its background work (epoch closing, seeding
/// from and forwarding to the relay), which stops with `ctx.shutdown`.
pub fn routes(ctx: &AppContext) -> Result<Route, PoolError> {
    let cfg = &ctx.config.pool;
    let state = PoolState::open(ctx.store.clone(), cfg.clone())?;
    for problem in audit::audit(&state.snapshot()?) {
        tracing::warn!(%problem, "[pool] stored state is inconsistent");
    }
    // `Config::validate` has checked the name.
    let task_type = cfg
        .task_type
        .parse()
        .unwrap_or(crate::tasks::TaskType::ScalarLinear);
    state.add_seed(
        &jobs::empty_program_dsl(task_type),
        None,
        "empty",
        now_f64(),
    )?;
    jobs::set_data_dir(ctx.data_dir.clone());
    jobs::set_budget(ctx.config.budget.clone());
    let link = match ctx.relay_url_or_embedded(&cfg.relay_url) {
        Some(url) if cfg.forward_to_relay || cfg.seed_from_relay => {
            let kp = crate::keys::identity::load_or_create(&ctx.data_dir, "pool")?;
            Some(Arc::new(relay_link::RelayLink::new(&url, kp)))
        }
        _ => None,
    };
    let pool = Arc::new(api::Pool::new(state, ctx.config.validator.task_seed));
    local_evaluators::start(ctx, pool.clone())?;
    spawn_background(ctx, pool.clone(), link);
    Ok(api::route(pool))
}

/// One round of background work (blocking).
fn background_round(pool: &api::Pool, link: Option<&relay_link::RelayLink>, seed: bool) {
    let cfg = pool.state.config();
    match pool.state.close_epochs(now_f64()) {
        Ok(closed) => {
            for e in closed {
                tracing::info!("[pool] Epoch {e} closed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "[pool] closing epochs failed"),
    }
    let Some(link) = link else { return };
    if seed && cfg.seed_from_relay {
        match link.seed_from_relay(&pool.state) {
            Ok(Some(id)) => tracing::info!("[pool] Seeded algorithm {id} from the relay SOTA"),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "[pool] seeding from the relay failed"),
        }
    }
    if cfg.forward_to_relay {
        match link.forward_best(&pool.state) {
            Ok(relay_link::Forwarded::Nothing) => {}
            Ok(relay_link::Forwarded::Accepted {
                algorithm_id,
                score,
            }) => tracing::info!(
                "[pool] Forwarded algorithm {algorithm_id} (score {score:.6}) to the relay"
            ),
            Ok(relay_link::Forwarded::Refused {
                algorithm_id,
                reason,
            }) => tracing::info!("[pool] Relay refused algorithm {algorithm_id}: {reason}"),
            Err(e) => tracing::debug!(error = %e, "[pool] forwarding failed; will retry"),
        }
    }
}

fn spawn_background(
    ctx: &AppContext,
    pool: Arc<api::Pool>,
    link: Option<Arc<relay_link::RelayLink>>,
) {
    let token = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut last_seed: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let seed = last_seed.map_or(true, |t| t.elapsed() >= SEED_EVERY);
            if seed {
                last_seed = Some(std::time::Instant::now());
            }
            let (p, l) = (pool.clone(), link.clone());
            if let Err(e) =
                tokio::task::spawn_blocking(move || background_round(&p, l.as_deref(), seed)).await
            {
                tracing::warn!(error = %e, "[pool] background task failed");
            }
        }
        // The link's blocking HTTP client must not be dropped on an async thread.
        let _ = tokio::task::spawn_blocking(move || drop(link)).await;
    });
}
