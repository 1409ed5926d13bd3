//! What every service is built from: the configuration, the store, the data directory,
//! the listeners' real URLs and the daemon's shutdown signal.
//!
//! This is a leaf on purpose: `server` assembles services from an [`AppContext`], and the
//! services only ever see this module, never `server` itself, so the dependency arrows
//! point one way (cli → server → services → context and the libraries).

use crate::config::Config;
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Base URLs of the listeners that are enabled (the real bound addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    pub relay: Option<String>,
    pub sidecar: Option<String>,
    pub pool: Option<String>,
}

/// What every service gets to build itself.
#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub data_dir: PathBuf,
    pub endpoints: Endpoints,
    pub started_at: Instant,
    /// Cancelled when the daemon shuts down; background workers watch it.
    pub shutdown: CancellationToken,
    /// What `/health` is computed from.
    pub health: Arc<crate::health::Monitor>,
    /// The registry `/metrics` serves; services update their own metrics in it.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppContext {
    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }
    pub fn datasets_dir(&self) -> PathBuf {
        self.data_dir.join("datasets")
    }
    pub fn metrics_dir(&self) -> PathBuf {
        self.data_dir.join("metrics")
    }
    /// `GET /metrics`, for each listener's route table.
    pub fn metrics_api(&self) -> crate::http::Api {
        crate::metrics::api(
            self.metrics.clone(),
            self.health.clone(),
            crate::metrics::Access::from_config(&self.config),
        )
    }

    /// The relay other components should talk to: `configured`, or the embedded one.
    pub fn relay_url_or_embedded(&self, configured: &str) -> Option<String> {
        if configured.is_empty() {
            self.endpoints.relay.clone()
        } else {
            Some(configured.trim_end_matches('/').to_string())
        }
    }
}

/// The subdirectories of the data directory.
pub const DATA_SUBDIRS: &[&str] = &["store", "keys", "datasets", "metrics", "logs"];

/// A data directory that cannot be laid out.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {path}: {reason}")]
pub struct DataDirError {
    pub path: String,
    pub reason: String,
}

/// Create the data directory layout (appliance.md §3).
pub fn prepare_data_dir(dir: &Path) -> Result<(), DataDirError> {
    for sub in DATA_SUBDIRS {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(|e| DataDirError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// The background work a service started — tasks on the runtime and blocking work on
/// its pool — handed back to the daemon instead of left detached, so that shutdown can
/// cancel it (`AppContext::shutdown`) and wait for every piece before the store is
/// flushed. Work added here must end soon after the shutdown token is cancelled.
#[derive(Default)]
pub struct Background {
    handles: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Background {
    /// A task on the runtime.
    pub fn spawn<F>(&mut self, name: &'static str, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handles.push((name, tokio::spawn(work)));
    }

    /// Blocking work (an OS thread of the runtime's blocking pool).
    pub fn spawn_blocking<F>(&mut self, name: &'static str, work: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.handles.push((name, tokio::task::spawn_blocking(work)));
    }

    /// Periodic store work (the pruners, the usage report): `work` every `[store]
    /// prune_interval_s` on a blocking thread until shutdown, logging the records it
    /// removed. A refused write (low space, failed store) just waits for the next pass.
    pub fn periodic<F>(&mut self, name: &'static str, ctx: &AppContext, prune: F)
    where
        F: Fn() -> Result<usize, StoreError> + Send + Sync + 'static,
    {
        let interval = std::time::Duration::from_secs(ctx.config.store.prune_interval_s);
        let shutdown = ctx.shutdown.clone();
        let prune = Arc::new(prune);
        self.spawn(name, async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
                let prune = prune.clone();
                match tokio::task::spawn_blocking(move || prune()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(work = name, records = n, "pruned"),
                    Ok(Err(e)) => tracing::debug!(work = name, error = %e, "pruning skipped"),
                    Err(e) => {
                        tracing::error!(work = name, error = %e, "pruning failed");
                        break;
                    }
                }
            }
        });
    }

    /// The names of the pieces that have already ended (while the daemon runs, each is
    /// a service that stopped working: `/health` says so).
    pub fn finished(&self) -> Vec<&'static str> {
        self.handles
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(name, _)| *name)
            .collect()
    }

    pub fn extend(&mut self, other: Background) {
        self.handles.extend(other.handles);
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Wait for every piece until `deadline`; returns the names of those that had not
    /// ended by then (a bug in the work's shutdown handling: it is logged, and the
    /// daemon's exit ends it).
    pub async fn join(self, deadline: tokio::time::Instant) -> Vec<&'static str> {
        let mut late = Vec::new();
        for (name, handle) in self.handles {
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(work = name, error = %e, "background work failed"),
                Err(_) => late.push(name),
            }
        }
        late
    }
}

/// A started service: its routes (for its listener) and its background work.
pub struct Service {
    pub routes: poem::Route,
    pub background: Background,
}
