//! `bitsota serve`: the daemon.

use crate::config::{Config, Override};
use crate::server::Daemon;
use std::path::PathBuf;

/// Flags shared by every command that reads the appliance configuration.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Configuration file (default: ./appliance.toml when it exists, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config and BITSOTA_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// Load the configuration with these flags as the top layer plus `extra` flags.
    pub fn load(&self, mut extra: Vec<Override>) -> Result<Config, crate::config::ConfigError> {
        if let Some(dir) = &self.data_dir {
            extra.push(Override {
                key: "data_dir".into(),
                value: dir.display().to_string(),
                source: "--data-dir".into(),
            });
        }
        let (file, required) = match &self.config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from("appliance.toml"), false),
        };
        let config = crate::config::load_from_env(&file, required, &extra)?;
        crate::miner::settings::check_config(&config)?;
        Ok(config)
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Relay test mode (every signer is a validator, no invitation needed).
    #[arg(long)]
    pub test: bool,
}

impl ServeArgs {
    pub fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        let mut flags = Vec::new();
        if self.test {
            flags.push(Override {
                key: "relay.test_mode".into(),
                value: "true".into(),
                source: "--test".into(),
            });
        }
        self.config.load(flags)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.load_config()?;
    let _log_guard = super::init_logging(&config, true)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async move {
        // Handlers first: whoever reads the printed URLs may signal at once.
        let signals = ShutdownSignals::install()?;
        let daemon = Daemon::start(config).await?;
        print_endpoints(&daemon);
        let store_failed = daemon.context.store.failed_signal();
        tokio::select! {
            _ = signals.wait() => tracing::info!("shutting down"),
            _ = store_failed.cancelled() => {}
        }
        // A failed store ends the daemon: answering 500s forever helps nobody, and a
        // restart recovers the store from its log with every acknowledged write.
        let failed = daemon.context.store.guard_state().failed;
        let stopped = daemon.shutdown().await;
        if let Some(reason) = failed {
            anyhow::bail!(
                "the store failed ({reason}); exiting for a restart (acknowledged writes are on disk)"
            );
        }
        stopped?;
        Ok(())
    });
    crate::server::stop_runtime(runtime);
    result
}

/// One line per listener on stdout, so users (and tests) learn the bound ports. Write
/// errors are ignored (`println!` would panic on a closed pipe).
pub fn print_endpoints(daemon: &Daemon) {
    use std::io::Write;
    let e = daemon.endpoints();
    let mut text = String::new();
    for (name, url) in [
        ("relay", &e.relay),
        ("sidecar", &e.sidecar),
        ("pool", &e.pool),
    ] {
        if let Some(url) = url {
            text.push_str(&format!("{name} listening on {url}\n"));
        }
    }
    text.push_str(&format!(
        "data directory: {}\n",
        daemon.context.data_dir.display()
    ));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// SIGINT and SIGTERM handlers, installed before the daemon announces itself.
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolve on the first SIGINT or SIGTERM.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
