//! `bitsota validate`: one validator against any relay — the same loop the daemon's
//! embedded validators run.
//!
//! Settings come from the `[validator]` section of the configuration (file, environment),
//! overridden by the flags below. The seen-set lives in the store of `--data-dir`
//! (default: the configuration's `data_dir`), so a restart does not re-vote; use a data
//! directory no daemon holds open (sled allows one process per store). Without
//! `--keyfile` the identity `<data_dir>/keys/validator` is used (created on first run).

use super::serve::ConfigArgs;
use crate::config::Override;
use crate::validator::{metrics, run::ValidatorLoop, suites::Suites};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Relay to poll, e.g. http://127.0.0.1:8002.
    #[arg(long)]
    pub relay_url: String,
    /// btcli keyfile of the validator hotkey (default: the identity `validator` in the
    /// data directory).
    #[arg(long)]
    pub keyfile: Option<PathBuf>,
    /// Password of an encrypted ($NACL) keyfile.
    #[arg(long, env = "BITSOTA_WALLET_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Seconds between polls.
    #[arg(long)]
    pub poll_interval: Option<f64>,
    /// Results fetched per poll.
    #[arg(long)]
    pub limit: Option<u32>,
    /// |validator score − claimed score| above this blacklists the miner.
    #[arg(long)]
    pub blacklist_cutoff: Option<f64>,
    /// `time` (unix seconds) or `fixed` (`--seen-block`).
    #[arg(long)]
    pub seen_block_mode: Option<String>,
    #[arg(long)]
    pub seen_block: Option<u64>,
    /// Seconds between stats lines (0 = off).
    #[arg(long)]
    pub stats_interval: Option<u64>,
    /// Metrics: `auto` (<data_dir>/metrics), empty = off, or a directory.
    #[arg(long)]
    pub metrics_log: Option<String>,
    /// Stop after this many polls (0 = run until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    pub max_polls: u64,
}

impl ValidateArgs {
    fn overrides(&self) -> Vec<Override> {
        let flag = |key: &str, flag: &str, value: Option<String>| {
            value.map(|value| Override {
                key: format!("validator.{key}"),
                value,
                source: format!("--{flag}"),
            })
        };
        [
            flag(
                "poll_interval_s",
                "poll-interval",
                self.poll_interval.map(|v| v.to_string()),
            ),
            flag("limit", "limit", self.limit.map(|v| v.to_string())),
            flag(
                "blacklist_cutoff",
                "blacklist-cutoff",
                self.blacklist_cutoff.map(|v| v.to_string()),
            ),
            flag(
                "seen_block_mode",
                "seen-block-mode",
                self.seen_block_mode.clone(),
            ),
            flag(
                "seen_block",
                "seen-block",
                self.seen_block.map(|v| v.to_string()),
            ),
            flag(
                "stats_interval_s",
                "stats-interval",
                self.stats_interval.map(|v| v.to_string()),
            ),
            flag("metrics_log", "metrics-log", self.metrics_log.clone()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    if !(args.relay_url.starts_with("http://") || args.relay_url.starts_with("https://")) {
        return Err(super::UsageError(format!(
            "--relay-url {:?}: expected an http:// or https:// URL",
            args.relay_url
        ))
        .into());
    }
    let config = args.config.load(args.overrides())?;
    let _log_guard = super::init_logging(&config, true)?;
    let data_dir = config.data_dir.clone();
    crate::context::prepare_data_dir(&data_dir)?;
    let keypair = match &args.keyfile {
        Some(path) => crate::keys::keyfile::read_keypair(path, args.password.as_deref())?,
        None => crate::keys::identity::load_or_create(&data_dir, "validator")?,
    };
    let store = crate::store::Store::open(&data_dir.join("store"), config.relay.durability)?;
    let cfg = config.validator.clone();
    let suites = Suites::from_config(&cfg, &data_dir).map_err(super::UsageError)?;
    let suites = Arc::new(suites.with_budget(config.budget.clone()));
    let hotkey = keypair.ss58();
    let name = format!("validator-{}", &hotkey[..8.min(hotkey.len())]);
    let metrics = metrics::metrics_path(&cfg.metrics_log, &data_dir, &name);
    let lp = ValidatorLoop::new(name, keypair, &args.relay_url, cfg, &store, suites, metrics)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let max_polls = args.max_polls;
    let result = runtime.block_on(async {
        let signals = super::serve::ShutdownSignals::install()?;
        let worker = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || lp.run(&stop, max_polls))
        };
        tokio::pin!(worker);
        tokio::select! {
            r = &mut worker => r.context("validator loop")?,
            () = signals.wait() => {
                tracing::info!("stopping");
                stop.cancel();
                // As in the daemon: a loop in the middle of an evaluation is abandoned.
                if let Ok(r) = tokio::time::timeout(crate::server::STOP_BUDGET, &mut worker).await {
                    r.context("validator loop")?;
                }
            }
        }
        anyhow::Ok(())
    });
    crate::server::stop_runtime(runtime);
    result?;
    store.flush()?;
    Ok(())
}
