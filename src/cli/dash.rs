//! `bitsota dash` (the dashboard attached to a running daemon) and `bitsota up` (daemon and
//! dashboard in one process; quitting the dashboard shuts the daemon down cleanly).

use super::serve::{ConfigArgs, ServeArgs};
use crate::config::Config;
use crate::context::Endpoints;
use crate::server::{Daemon, ENDPOINTS_FILE};

#[derive(clap::Args, Debug)]
pub struct DashArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Where the dashboard finds the daemon: the endpoints file a running daemon wrote (it has
/// the real ports even when the config says `:0`), else the configured listen addresses.
fn endpoints_for(config: &Config) -> Endpoints {
    let from_file = std::fs::read_to_string(config.data_dir.join(ENDPOINTS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Endpoints>(&t).ok());
    let configured = |enabled: bool, listen: &str| enabled.then(|| format!("http://{listen}"));
    let file = from_file.unwrap_or_default();
    Endpoints {
        relay: file
            .relay
            .or_else(|| configured(config.relay.enabled, &config.relay.listen)),
        sidecar: file
            .sidecar
            .or_else(|| configured(config.sidecar.enabled, &config.sidecar.listen)),
        pool: file
            .pool
            .or_else(|| configured(config.pool.enabled, &config.pool.listen)),
    }
}

fn tui_endpoints(config: &Config, e: Endpoints) -> bitsota_tui::Endpoints {
    bitsota_tui::Endpoints {
        relay: e.relay.unwrap_or_default(),
        sidecar: e.sidecar.unwrap_or_default(),
        pool: e.pool.unwrap_or_default(),
        admin_token: config.relay.effective_admin_token(),
    }
}

pub fn run_dash(args: DashArgs) -> anyhow::Result<()> {
    let config = args.config.load(Vec::new())?;
    let endpoints = endpoints_for(&config);
    bitsota_tui::run_dashboard(tui_endpoints(&config, endpoints))
}

pub fn run_up(args: UpArgs) -> anyhow::Result<()> {
    let mut config = args.serve.load_config()?;
    // The dashboard owns the terminal: logs go to the log file only.
    config.log.file = true;
    let _log_guard = super::init_logging(&config, false)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let daemon = runtime.block_on(Daemon::start(config.clone()))?;
    let endpoints = daemon.endpoints().clone();
    let result = bitsota_tui::run_dashboard(tui_endpoints(&config, endpoints));
    let stopped = runtime.block_on(daemon.shutdown());
    crate::server::stop_runtime(runtime);
    stopped?;
    result
}
