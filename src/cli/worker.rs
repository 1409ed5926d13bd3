//! `bitsota worker`: a compute-only worker for a (possibly remote) sidecar's job queue
//! (sidecar-miner.md §3). It pulls `evolve`/`evaluate`/`lease` jobs of one run and posts
//! their results, so many machines can compute for one pool coordinator.

use super::UsageError;
use crate::miner::pool::worker::{run_worker, SidecarClient};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Base URL of the sidecar whose job queue to work on.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    pub sidecar_url: String,
    /// The run whose jobs to take.
    #[arg(long)]
    pub run_id: String,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Data directory with `datasets/` for image-task jobs.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Prefix of the worker ids reported to the sidecar (default: the host name + pid).
    #[arg(long)]
    pub worker_prefix: Option<String>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if !args.sidecar_url.starts_with("http://") && !args.sidecar_url.starts_with("https://") {
        return Err(UsageError(format!(
            "--sidecar-url {:?}: expected an http:// or https:// URL",
            args.sidecar_url
        ))
        .into());
    }
    if args.run_id.trim().is_empty() {
        return Err(UsageError("--run-id must not be empty".into()).into());
    }
    let mut config = crate::config::Config::default();
    config.log.level = args.log_level.clone();
    config.log.file = false;
    let _guard = super::init_logging(&config, true)?;
    // The default evaluation budget: a stand-alone worker has no `[budget]` of its own.
    let jobs = Arc::new(crate::jobs::Jobs::new(
        args.data_dir.as_deref(),
        crate::config::BudgetConfig::default(),
    ));
    let workers = if args.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.workers
    };
    let prefix = args
        .worker_prefix
        .clone()
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = SidecarClient::new(&args.sidecar_url);
    tracing::info!(
        sidecar = %client.base(),
        run_id = %args.run_id,
        workers,
        "[worker] pulling jobs"
    );
    let threads: Vec<_> = (0..workers)
        .map(|i| {
            let (client, run_id, stop) = (client.clone(), args.run_id.clone(), stop.clone());
            let (jobs, id) = (jobs.clone(), format!("{prefix}-{i}"));
            std::thread::spawn(move || run_worker(&client, &jobs, &run_id, &id, &stop))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signals = runtime.block_on(async { super::serve::ShutdownSignals::install() })?;
    runtime.block_on(signals.wait());
    tracing::info!("[worker] stopping after the current jobs");
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
