//! Assembles the daemon: data directory, store, listeners, services, shutdown.
//!
//! Start-up order matters: every listener is bound first (so `127.0.0.1:0` resolves to a
//! real port and a port in use fails before anything runs), then the services are built
//! with the real URLs (the embedded validators and miner talk to the embedded relay over
//! HTTP, exactly as remote ones would), then the HTTP servers and background workers are
//! spawned. Shutdown reverses it: stop accepting, finish in-flight requests, stop
//! workers, flush the store — each step bounded, so that a signal ends the process within
//! [`SHUTDOWN_LIMIT`] whatever the daemon was doing (a validator in the middle of a long
//! evaluation is abandoned, not awaited; it committed the submission to its seen-set
//! before starting, so it has nothing half-written).

use crate::config::{parse_listen, Config, ConfigError};
use crate::context::{prepare_data_dir, AppContext, Background, DataDirError, Endpoints, Service};
use crate::sidecar::SidecarStore;
use crate::store::{Store, StoreError};
use crate::validator::state::ValidatorState;
use poem::listener::TcpAcceptor;
use poem::EndpointExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The promise to operators: a SIGINT/SIGTERM ends the process within this time.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);
/// How long in-flight requests may take to finish at shutdown.
const REQUEST_GRACE: Duration = Duration::from_secs(2);
/// How long listeners and workers together may take to stop before the store is flushed
/// regardless (the rest of [`SHUTDOWN_LIMIT`] is for the flush and the exit).
pub const STOP_BUDGET: Duration = Duration::from_secs(3);
/// How long the runtime may wait for its tasks once the store is flushed.
const RUNTIME_GRACE: Duration = Duration::from_millis(300);
/// Left for the store flush and the log drain at exit (`cli::log`, 500 ms).
const EXIT_RESERVE: Duration = Duration::from_millis(1500);
const _: () = assert!(
    STOP_BUDGET.as_millis() + RUNTIME_GRACE.as_millis() + EXIT_RESERVE.as_millis()
        <= SHUTDOWN_LIMIT.as_millis()
);

/// Everything that can stop the daemon from starting or stopping cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: cannot listen on {addr}: {reason}")]
    Bind {
        key: &'static str,
        addr: String,
        reason: String,
    },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("{service}: {reason}")]
    Service {
        service: &'static str,
        reason: String,
    },
}

/// A running daemon.
pub struct Daemon {
    pub context: AppContext,
    servers: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    /// Every service's background work, joined at shutdown before the store is flushed
    /// (shared with the watch that reports pieces that stopped early to `/health`).
    background: Arc<parking_lot::Mutex<Background>>,
}

/// Leave the store's usage in the data directory every pruning interval, for `bitsota
/// data status` (skipped while writes are refused).
fn report_usage(ctx: &AppContext, background: &mut Background) {
    let store = ctx.store.clone();
    let path = ctx.data_dir.join(crate::store::USAGE_FILE);
    background.periodic("store usage report", ctx, move || {
        store.check_write()?;
        let usage = store.usage(crate::clock::now_f64());
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&usage).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::debug!(error = %e, "store usage report not written");
        }
        Ok(0)
    });
}

/// Every second, tell the health monitor which background work has ended although the
/// daemon is running (a crashed validator loop, a pruner that gave up), and probe the
/// store: a fault met on a path that does not report it (a read, sled's own flusher)
/// still stops the daemon within a second instead of leaving it answering 503s.
fn watch_background(ctx: &AppContext, background: Arc<parking_lot::Mutex<Background>>) {
    let (health, shutdown) = (ctx.health.clone(), ctx.shutdown.clone());
    let store = ctx.store.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            health.set_stopped(background.lock().finished());
            let store = store.clone();
            // The result is the guard's business: a fault marks the store failed.
            let _ = tokio::task::spawn_blocking(move || store.probe()).await;
        }
    });
}

struct Bound {
    key: &'static str,
    name: &'static str,
    listener: tokio::net::TcpListener,
}

async fn bind(key: &'static str, name: &'static str, addr: &str) -> Result<Bound, ServerError> {
    let sock = parse_listen(key, addr)?;
    let listener = tokio::net::TcpListener::bind(sock)
        .await
        .map_err(|e| ServerError::Bind {
            key,
            addr: addr.to_string(),
            reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                "address already in use".to_string()
            } else {
                e.to_string()
            },
        })?;
    Ok(Bound {
        key,
        name,
        listener,
    })
}

fn url_of(b: &Bound) -> Result<String, ServerError> {
    let addr = b.listener.local_addr().map_err(|e| ServerError::Bind {
        key: b.key,
        addr: String::new(),
        reason: e.to_string(),
    })?;
    Ok(format!("http://{addr}"))
}

impl Daemon {
    /// Prepare the data directory, open the store, bind the listeners and start every
    /// enabled service.
    pub async fn start(config: Config) -> Result<Daemon, ServerError> {
        crate::miner::settings::check_config(&config)?;
        let data_dir = config.data_dir.clone();
        prepare_data_dir(&data_dir)?;
        let store = Store::open_watched(
            &data_dir.join("store"),
            config.relay.durability,
            &data_dir,
            config.store.min_free_bytes(),
        )?;

        let mut bound = Vec::new();
        if config.relay.enabled {
            bound.push(bind("relay.listen", "relay", &config.relay.listen).await?);
        }
        if config.sidecar.enabled {
            bound.push(bind("sidecar.listen", "sidecar", &config.sidecar.listen).await?);
        }
        if config.pool.enabled {
            bound.push(bind("pool.listen", "pool", &config.pool.listen).await?);
        }
        let mut endpoints = Endpoints::default();
        for b in &bound {
            let url = Some(url_of(b)?);
            match b.name {
                "relay" => endpoints.relay = url,
                "sidecar" => endpoints.sidecar = url,
                _ => endpoints.pool = url,
            }
        }

        let context = AppContext {
            config: Arc::new(config),
            health: Arc::new(crate::health::Monitor::new(store.clone())),
            metrics: Default::default(),
            store,
            data_dir,
            endpoints,
            started_at: Instant::now(),
            shutdown: CancellationToken::new(),
        };
        write_endpoints_file(&context)?;

        let (validators, mut background) =
            crate::validator::start(&context).map_err(|e| ServerError::Service {
                service: "validator",
                reason: e.to_string(),
            })?;
        // The appliance (miner, `/appliance/*`) lives on the sidecar listener.
        let mut validators = Some(validators);
        let mut servers = Vec::new();
        for b in bound {
            let service = build_service(b.name, &context, &mut validators)?;
            background.extend(service.background);
            let endpoint = crate::metrics::Track {
                inner: service.routes,
                listener: b.name,
                metrics: context.metrics.clone(),
            }
            .boxed();
            let token = context.shutdown.clone();
            let acceptor = TcpAcceptor::from_tokio(b.listener).map_err(|e| ServerError::Bind {
                key: b.key,
                addr: String::new(),
                reason: e.to_string(),
            })?;
            let handle = tokio::spawn(async move {
                poem::Server::new_with_acceptor(acceptor)
                    .run_with_graceful_shutdown(
                        endpoint,
                        async move { token.cancelled().await },
                        Some(REQUEST_GRACE),
                    )
                    .await
            });
            servers.push((b.name, handle));
        }
        report_usage(&context, &mut background);
        let background = Arc::new(parking_lot::Mutex::new(background));
        watch_background(&context, background.clone());
        Ok(Daemon {
            context,
            servers,
            background,
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.context.endpoints
    }

    /// Stop accepting, finish in-flight requests, join every service's background work,
    /// then flush the store. Listeners and background work share one [`STOP_BUDGET`]:
    /// all of it watches the shutdown token (evaluations stop between examples), so it
    /// ends well inside; a piece that does not is named in the log, and the store is
    /// flushed regardless so that the exit stays bounded. Follow with [`stop_runtime`].
    pub async fn shutdown(self) -> Result<Stopped, ServerError> {
        self.context.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + STOP_BUDGET;
        for (name, handle) in self.servers {
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(service = name, error = %e, "listener ended with an error")
                }
                Ok(Err(e)) => tracing::warn!(service = name, error = %e, "listener task failed"),
                Err(_) => tracing::warn!(service = name, "listener did not stop in time"),
            }
        }
        let background = std::mem::take(&mut *self.background.lock());
        let joined = background.len();
        let late = background.join(deadline).await;
        if !late.is_empty() {
            tracing::error!(
                ?late,
                "background work did not stop in time; flushing anyway"
            );
        }
        self.context.store.flush()?;
        tracing::info!(background = joined, "store flushed; bye");
        Ok(Stopped { joined, late })
    }
}

/// What [`Daemon::shutdown`] waited for.
#[derive(Debug)]
pub struct Stopped {
    /// Pieces of background work the services handed over.
    pub joined: usize,
    /// Those that had not ended within [`STOP_BUDGET`] (a shutdown bug; empty).
    pub late: Vec<&'static str>,
}

/// Drop the runtime without waiting for blocking work that ignores shutdown (a validator
/// mid-evaluation): the store is already flushed, and the process exit ends those
/// threads. A plain drop would wait for them, for minutes.
pub fn stop_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(RUNTIME_GRACE);
}

/// Where `bitsota dash` finds a daemon whose ports were chosen at start-up.
pub const ENDPOINTS_FILE: &str = "endpoints.json";

fn write_endpoints_file(ctx: &AppContext) -> Result<(), ServerError> {
    let path = ctx.data_dir.join(ENDPOINTS_FILE);
    let text = serde_json::to_string_pretty(&ctx.endpoints).unwrap_or_default();
    std::fs::write(&path, text).map_err(|e| {
        ServerError::DataDir(DataDirError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    })
}

/// Start one listener's service; the sidecar's comes with the appliance, which takes the
/// validators' states for `/appliance/validators`.
fn build_service(
    name: &'static str,
    ctx: &AppContext,
    validators: &mut Option<Vec<Arc<ValidatorState>>>,
) -> Result<Service, ServerError> {
    let service_err = |reason: String| ServerError::Service {
        service: name,
        reason,
    };
    // Each service commits with its own durability setting over the one database.
    let durability = match name {
        "relay" => ctx.config.relay.durability,
        "sidecar" => ctx.config.sidecar.durability,
        _ => ctx.config.pool.durability,
    };
    let ctx = &AppContext {
        store: ctx.store.with_durability(durability),
        ..ctx.clone()
    };
    Ok(match name {
        "relay" => crate::relay::start(ctx).map_err(|e| service_err(e.to_string()))?,
        "sidecar" => {
            let caps = crate::sidecar::rules::Caps::from_config(&ctx.config.store);
            let store = SidecarStore::open(ctx.store.clone(), caps)
                .map_err(|e| service_err(e.to_string()))?;
            let store = Arc::new(store);
            let validators = validators.take().unwrap_or_default();
            let appliance =
                crate::appliance::start(ctx, store.clone(), validators).map_err(|e| {
                    ServerError::Service {
                        service: "appliance",
                        reason: format!("miner autostart: {e}"),
                    }
                })?;
            let mut background = appliance.background;
            let keep = ctx.config.store.keep_runs;
            let pruned = store.clone();
            background.periodic("sidecar pruning", ctx, move || {
                pruned.prune_runs(keep).map_err(|e| match e {
                    crate::sidecar::SidecarError::Store(e) => e,
                    other => crate::store::StoreError::Aborted(other.to_string()),
                })
            });
            let sidecar = Arc::new(crate::sidecar::api::Sidecar {
                store,
                miner: appliance.supervisor,
                health: ctx.health.clone(),
            });
            Service {
                routes: crate::sidecar::api::routes(
                    sidecar,
                    appliance.api.merge(ctx.metrics_api()),
                ),
                background,
            }
        }
        _ => crate::pool::start(ctx).map_err(|e| service_err(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every service on, validators and pool evaluators busy: shutdown joins all the
    /// background work they handed over, none late, and flushes.
    #[test]
    fn shutdown_joins_every_service_s_background_work() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.relay.listen = "127.0.0.1:0".into();
        config.sidecar.listen = "127.0.0.1:0".into();
        config.pool.listen = "127.0.0.1:0".into();
        config.relay.test_mode = true;
        config.validator.enabled = true;
        config.validator.count = 2;
        config.validator.task_count = 2;
        config.pool.local_evaluators = 2;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let stopped = runtime.block_on(async move {
            let daemon = Daemon::start(config).await.unwrap();
            // Let the loops get going (a validator poll, a pool tick, a local round).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            daemon.shutdown().await.unwrap()
        });
        stop_runtime(runtime);
        // 2 validators, pool ticks, the local evaluators (loop, stop flag), the miner stop,
        // the relay commit thread, the relay's, sidecar's and pool's pruners, and the usage
        // report.
        assert_eq!(stopped.joined, 11, "{stopped:?}");
        assert!(stopped.late.is_empty(), "{stopped:?}");
    }
}
