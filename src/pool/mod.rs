//! Pool (pool.md): jobs and leases, evaluation consensus, reputation, epochs.
//!
//! - [`rules`]: the decisions, as pure functions (consensus, reputation, payouts, Merkle).
//! - [`state`]: the stored state (sled trees `pool.*`) and the operations on it, one
//!   transaction each; [`audit`]: the invariants that relate its trees.
//! - [`api`]: the HTTP API on the pool listener.
//! - [`relay_link`]: seeding from the relay's SOTA and forwarding the pool's best.
//! - [`local_evaluators`]: the appliance's own evaluator identities and genesis work,
//!   so one machine completes the pool cycle.
//!
//! The jobs it hands out and their execution are [`crate::jobs`]; the miner's side of
//! pool mining is `miner::pool` (over HTTP only: the pool does not import it).

pub mod api;
pub mod audit;
pub mod local_evaluators;
pub mod relay_link;
pub mod rules;
pub mod state;

use crate::clock::now_f64;
use crate::context::{AppContext, Service};
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

/// Open the pool: its HTTP routes and its background work (epoch closing, seeding from
/// and forwarding to the relay, the local evaluators), which stops with `ctx.shutdown`.
pub fn start(ctx: &AppContext) -> Result<Service, PoolError> {
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
        &crate::jobs::empty_program_dsl(task_type),
        None,
        "empty",
        now_f64(),
    )?;
    let link = match ctx.relay_url_or_embedded(&cfg.relay_url) {
        Some(url) if cfg.forward_to_relay || cfg.seed_from_relay => {
            let kp = crate::keys::identity::load_or_create(&ctx.data_dir, "pool")?;
            Some(Arc::new(relay_link::RelayLink::new(&url, kp)))
        }
        _ => None,
    };
    let pool = Arc::new(api::Pool::new(state, ctx.config.validator.task_seed, ctx));
    let scraped = pool.clone();
    ctx.metrics.on_scrape(move |m| {
        if let Ok(miners) = scraped.state.leaderboard(usize::MAX) {
            m.pool_miners.set(miners.len() as i64);
            m.pool_reputation
                .set(miners.iter().map(|x| x.reputation).sum());
        }
    });
    let mut background = local_evaluators::start(ctx, pool.clone())?;
    background.spawn("pool ticks", ticks(ctx, pool.clone(), link));
    let days = ctx.config.store.pool_history_days;
    let pruned = pool.clone();
    background.periodic("pool pruning", ctx, move || {
        let cutoff = crate::retention::pool_history_cutoff(now_f64(), days);
        pruned.state.prune_history(cutoff)
    });
    Ok(Service {
        routes: api::route(pool, ctx.metrics_api()),
        background,
    })
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

/// Every [`TICK`]: a [`background_round`] off the async threads, until shutdown.
fn ticks(
    ctx: &AppContext,
    pool: Arc<api::Pool>,
    link: Option<Arc<relay_link::RelayLink>>,
) -> impl std::future::Future<Output = ()> {
    let token = ctx.shutdown.clone();
    async move {
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
    }
}
