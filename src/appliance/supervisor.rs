//! The miner supervisor: starts, stops and reports the daemon's one mining run, local
//! (the engine, [`crate::miner::run`]) or pool mining ([`crate::miner::pool`]).
//! It owns the bridge from the miner's [`RunSink`] to the sidecar store.

use crate::context::AppContext;
use crate::miner::pool::CoordinatorStats;
use crate::miner::settings::{MinerSettings, Overrides};
use crate::miner::{run, Live, RunSink, SinkError};
use crate::protocol::run_events::Event;
use crate::sidecar::{EmbeddedMiner, SidecarError, SidecarStore, StartRequest};
use crate::tasks::TaskType;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Why mining could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    #[error("already mining")]
    AlreadyMining,
    #[error("{0}")]
    Settings(String),
    /// Pool mining cannot start (no pool, no sidecar): the configuration's to fix.
    #[error("pool mining: {0}")]
    Pool(String),
    #[error("miner key: {0}")]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("cannot start the mining thread: {0}")]
    Thread(String),
}

struct Active {
    run_id: String,
    settings: MinerSettings,
    hotkey: String,
    started_at: String,
    stop: Arc<AtomicBool>,
    live: Arc<Live>,
    /// Pool mining's progress (none for local mining).
    pool: Option<Arc<CoordinatorStats>>,
    thread: Option<JoinHandle<()>>,
}

impl Active {
    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// Starts, stops and reports mining.
pub struct Supervisor {
    ctx: AppContext,
    sidecar: Arc<SidecarStore>,
    active: Mutex<Option<Active>>,
}

/// Pool mining (`pool` / `pool_lease`) is driven by the pool coordinator (pool.md §4), not
/// the local engine; one thread waits for the coordinator's threads so that the run is
/// tracked, reported and stopped like a local one.
fn start_pool_mining(
    ctx: &AppContext,
    settings: &MinerSettings,
    run_id: &str,
    stop: Arc<AtomicBool>,
) -> Result<(JoinHandle<()>, Arc<CoordinatorStats>), MinerError> {
    use crate::miner::pool::{spawn_coordinator, PoolMode};
    let mode = PoolMode::from_task_type(&settings.task_type).ok_or_else(|| {
        MinerError::Settings(format!("{} is not a pool task", settings.task_type))
    })?;
    let handle = spawn_coordinator(ctx, mode, run_id, settings.workers, stop)
        .map_err(|e| MinerError::Pool(e.to_string()))?;
    let stats = handle.stats.clone();
    let thread = std::thread::Builder::new()
        .name(format!("pool-{run_id}"))
        .spawn(move || handle.join())
        .map_err(|e| MinerError::Thread(e.to_string()))?;
    Ok((thread, stats))
}

impl Supervisor {
    pub fn new(ctx: AppContext, sidecar: Arc<SidecarStore>) -> Arc<Self> {
        Arc::new(Supervisor {
            ctx,
            sidecar,
            active: Mutex::new(None),
        })
    }

    /// Start a run; `AlreadyMining` while one is running.
    pub fn start(&self, req: StartRequest) -> Result<String, MinerError> {
        let mut active = self.active.lock();
        if active.as_ref().is_some_and(Active::running) {
            return Err(MinerError::AlreadyMining);
        }
        let config = &self.ctx.config;
        let overrides = Overrides {
            task_type: req.task_type,
            engine: req.engine,
            workers: req.workers,
            seed: req.seed,
            start_from_sota: req.start_from_sota,
        };
        let settings =
            MinerSettings::resolve(config, config.miner.problem_config.as_deref(), &overrides)
                .map_err(MinerError::Settings)?;
        let keypair = crate::keys::identity::load_or_create(&self.ctx.data_dir, "miner")?;
        let hotkey = keypair.ss58();
        let relay_url = self.ctx.relay_url_or_embedded(&config.miner.relay_endpoint);
        let embedded = config.miner.relay_endpoint.is_empty();
        let run = self.sidecar.start_run(req.run_id.as_deref(), req.replace)?;
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Live::default());
        let (thread, pool) = if settings.is_pool() {
            let (thread, stats) =
                start_pool_mining(&self.ctx, &settings, &run.run_id, stop.clone())?;
            (thread, Some(stats))
        } else {
            let job = run::RunJob {
                run_id: run.run_id.clone(),
                settings: settings.clone(),
                sink: self.sidecar.clone(),
                stop: stop.clone(),
                live: live.clone(),
                relay_url,
                keypair,
                needs_invitation: !(embedded && config.relay.test_mode),
                invite_code: config.miner.invite_code.clone(),
                data_dir: self.ctx.data_dir.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("miner-{}", run.run_id))
                .spawn(move || run::mine(job))
                .map_err(|e| MinerError::Thread(e.to_string()))?;
            (thread, None)
        };
        tracing::info!(run = %run.run_id, task = %settings.task_type, engine = %settings.engine,
            workers = settings.workers, "mining started");
        *active = Some(Active {
            run_id: run.run_id.clone(),
            settings,
            hotkey,
            started_at: crate::clock::now_iso(crate::clock::SecondsFormat::Secs),
            stop,
            live,
            pool,
            thread: Some(thread),
        });
        Ok(run.run_id)
    }

    /// Stop the current run (if any) and wait for its threads: workers notice within one
    /// step. The run's data stays. Returns the stopped run's id.
    pub fn stop(&self) -> Result<Option<String>, MinerError> {
        let mut active = self.active.lock();
        let Some(a) = active.as_mut() else {
            return Ok(None);
        };
        a.stop.store(true, Ordering::Relaxed);
        if let Some(t) = a.thread.take() {
            let _ = t.join();
            self.sidecar.stop_run(Some(&a.run_id))?;
            tracing::info!(run = %a.run_id, "mining stopped");
        }
        Ok(Some(a.run_id.clone()))
    }

    /// Stop mining if it is running `run_id` (`POST /runs/stop`).
    pub fn stop_run(&self, run_id: &str) -> Result<(), MinerError> {
        let mine = self
            .active
            .lock()
            .as_ref()
            .is_some_and(|a| a.run_id == run_id);
        if mine {
            self.stop()?;
        }
        Ok(())
    }

    /// Children per second (all workers) and the best fitness of the running run (0 and
    /// `None` when idle), for `/metrics`.
    pub fn live_figures(&self) -> (f64, Option<f64>) {
        let active = self.active.lock();
        match active.as_ref().filter(|a| a.running()) {
            Some(a) => {
                let live = a.live.snapshot();
                (live.workers.iter().map(|w| w.1).sum(), live.best_fitness)
            }
            None => (0.0, None),
        }
    }

    /// The `miner` object of `/appliance/status`.
    pub fn status(&self) -> Value {
        let active = self.active.lock();
        let Some(a) = active.as_ref().filter(|a| a.running()) else {
            let last_error = active.as_ref().and_then(|a| a.live.snapshot().error);
            return json!({
                "running": false, "run_id": null, "task_type": null, "engine": null,
                "workers": null, "hotkey": null, "generation": null,
                // What the next start does unless it asks otherwise.
                "start_from_sota": self.ctx.config.miner.start_from_sota,
                "children_per_sec": null, "best_fitness": null, "started_at": null,
                "last_error": last_error, "pool": null, "ceiling": null,
            });
        };
        let live = a.live.snapshot();
        // Pool mining has no generations of its own: its progress is the pool's.
        let (generation, rate) = match &a.pool {
            Some(_) => (None, None),
            None => (
                Some(live.workers.iter().map(|w| w.0).sum::<u64>()),
                // Folded from +0.0: an empty f64 sum is -0.0.
                Some(live.workers.iter().fold(0.0, |r, w| r + w.1)),
            ),
        };
        json!({
            "running": true,
            "run_id": a.run_id,
            "task_type": a.settings.task_type,
            "engine": a.settings.engine,
            "workers": a.settings.workers,
            "start_from_sota": a.settings.start_from_sota,
            "hotkey": a.hotkey,
            "generation": generation,
            "children_per_sec": rate,
            "best_fitness": live.best_fitness,
            "started_at": a.started_at,
            "last_error": live.error,
            "pool": a.pool.as_ref().map(|p| p.progress()),
            "ceiling": self.ceiling(a),
        })
    }

    /// `{sota, next_task}` when the run's task has its SOTA at the ceiling
    /// ([`TaskType::sota_at_ceiling`]): nothing it mines can be accepted any more. Mining
    /// goes on until the user stops it (a relay's SOTA can be reset, and the run's
    /// candidates stay useful); the dashboard and `mine status` say so.
    fn ceiling(&self, a: &Active) -> Option<Value> {
        let task: TaskType = a.settings.task_type.parse().ok()?;
        let run = self.sidecar.run(&a.run_id).ok().flatten()?;
        let sota = run.global_sota.filter(|s| task.sota_at_ceiling(*s))?;
        Some(json!({"sota": sota, "next_task": task.next_task().map(TaskType::as_str)}))
    }

    /// The embedded validators' identities (`/appliance/status`).
    pub fn validator_identities(&self) -> Value {
        let v = &self.ctx.config.validator;
        if !v.enabled {
            return json!([]);
        }
        let list: Vec<Value> = (1..=v.count)
            .filter_map(|i| {
                let name = format!("validator-{i}");
                crate::keys::identity::load_or_create(&self.ctx.data_dir, &name)
                    .ok()
                    .map(|kp| json!({ "name": name, "hotkey": kp.ss58() }))
            })
            .collect();
        Value::Array(list)
    }
}

/// The sidecar store is where the daemon's runs write.
impl RunSink for SidecarStore {
    fn ingest(&self, run_id: &str, events: &[Event]) -> Result<(), SinkError> {
        SidecarStore::ingest(self, run_id, events)?;
        Ok(())
    }
    fn set_global_sota(&self, run_id: &str, sota: f64) -> Result<(), SinkError> {
        SidecarStore::set_global_sota(self, Some(run_id), sota)?;
        Ok(())
    }
    fn submission_result(&self, run_id: &str, score: f64, status: &str) -> Result<(), SinkError> {
        SidecarStore::submission_result(self, Some(run_id), score, status)?;
        Ok(())
    }
    fn local_sota(&self, run_id: &str) -> Option<f64> {
        self.run(run_id).ok().flatten().and_then(|r| r.local_sota)
    }
}

/// The sidecar's `/runs/start` (with mining fields) and `/runs/stop` reach the miner here.
impl EmbeddedMiner for Supervisor {
    fn start(&self, request: StartRequest) -> Result<String, crate::http::ApiError> {
        Ok(Supervisor::start(self, request)?)
    }
    fn stop_run(&self, run_id: &str) {
        if let Err(e) = Supervisor::stop_run(self, run_id) {
            tracing::warn!(run = run_id, error = %e, "miner: stop");
        }
    }
}
