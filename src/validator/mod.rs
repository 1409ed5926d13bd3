//! Validators (validator.md): clients of a relay that re-evaluate every submission on a
//! deterministic suite, blacklist miners whose claims are off, and vote for the best
//! result above the SOTA.
//!
//! - [`rules`]: the decisions, as pure functions (vote selection, blacklist, backoff,
//!   which failed votes are sent again, seen-block, weights, stats line);
//! - [`run::ValidatorLoop`]: one identity polling one relay — the daemon runs
//!   `[validator] count` of them ([`start`]), `bitsota validate` runs one;
//! - [`suites`]: strict parsing and the shared, prepared validator suites;
//! - [`seen`], [`metrics`], [`state`]: the persisted seen-set, the JSONL metrics, and
//!   what `GET /appliance/validators` shows.

pub mod metrics;
pub mod rules;
pub mod run;
pub mod seen;
pub mod state;
pub mod suites;

use crate::context::{AppContext, Background};
use state::ValidatorState;
use std::sync::Arc;

/// Why a validator could not start or poll.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error("validator: {0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Relay(#[from] crate::protocol::client::ClientError),
}

/// Start the daemon's embedded validators: identities `validator-1..=count` in the data
/// directory, each polling `[validator] relay_url` (default the embedded relay) on its
/// own blocking thread until `ctx.shutdown`. Returns what each shows the dashboard
/// (`/appliance/validators`) and the loops; none when disabled.
pub fn start(ctx: &AppContext) -> Result<(Vec<Arc<ValidatorState>>, Background), ValidatorError> {
    let cfg = &ctx.config.validator;
    let mut background = Background::default();
    if !cfg.enabled || cfg.count == 0 {
        return Ok((Vec::new(), background));
    }
    let relay_url = ctx.relay_url_or_embedded(&cfg.relay_url).ok_or_else(|| {
        ValidatorError::Config(
            "validator.relay_url is empty and the embedded relay is disabled".into(),
        )
    })?;
    let suites = suites::Suites::from_config(cfg, &ctx.data_dir).map_err(ValidatorError::Config)?;
    let suites = Arc::new(suites.with_budget(ctx.config.budget.clone()));
    let mut states = Vec::new();
    for i in 1..=cfg.count {
        let name = format!("validator-{i}");
        let keypair = crate::keys::identity::load_or_create(&ctx.data_dir, &name)?;
        let metrics = metrics::metrics_path(&cfg.metrics_log, &ctx.data_dir, &name);
        let lp = run::ValidatorLoop::new(
            name,
            keypair,
            &relay_url,
            cfg.clone(),
            &ctx.store,
            suites.clone(),
            metrics,
        )?
        .with_metrics(
            ctx.metrics.clone(),
            ctx.config.store.metrics_log_max_mb << 20,
        );
        states.push(lp.state());
        let stop = ctx.shutdown.clone();
        background.spawn_blocking("validator", move || lp.run(&stop, 0));
    }
    Ok((states, background))
}
