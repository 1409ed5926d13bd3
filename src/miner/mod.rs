//! Mining runs (sidecar-miner.md §2): a run is one OS thread that drives the engine's
//! worker threads (never the tokio runtime), writes its events through a [`RunSink`] in
//! batches, verifies candidates and submits them to the relay with the miner's signed
//! headers. Who starts and stops runs (the daemon's `appliance::Supervisor`) and where
//! the events go (the sidecar store) are not the miner's business.
//!
//! [`settings`] resolves what a run does (with [`recipe`], each task type's default
//! search), [`run`] is the run loop and its rules (it reaches the relay through
//! [`crate::protocol::relay_client`]), [`search`] the one adapter to the engine and task
//! suites, [`pool`] pool mining.

pub mod pool;
pub mod recipe;
pub mod run;
pub mod search;
pub mod settings;

use crate::protocol::run_events::Event;
use parking_lot::Mutex;

/// Why a sink could not take what a run wrote; the run logs it and goes on.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where a run's events and figures go. In the daemon this is the run's sidecar store,
/// so a local run's events follow exactly the rules remote miners' events do.
pub trait RunSink: Send + Sync {
    /// Append a batch of events to the run.
    fn ingest(&self, run_id: &str, events: &[Event]) -> Result<(), SinkError>;
    /// Record the relay's SOTA as the run last read it.
    fn set_global_sota(&self, run_id: &str, sota: f64) -> Result<(), SinkError>;
    /// Record a submission's outcome (`accepted`, `rejected`, `error`).
    fn submission_result(&self, run_id: &str, score: f64, status: &str) -> Result<(), SinkError>;
    /// The best score the relay accepted from this run before (a resumed run).
    fn local_sota(&self, run_id: &str) -> Option<f64>;
}

/// Live figures of the current run, shared with its thread.
#[derive(Default)]
pub struct Live {
    inner: Mutex<LiveState>,
}

/// A copy of the live figures.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    /// Per worker: children and children/s at its last report.
    pub workers: Vec<(u64, f64)>,
    pub best_fitness: Option<f64>,
    pub error: Option<String>,
}

impl Live {
    pub(crate) fn progress(&self, worker: usize, children: u64, rate: f64, best: Option<f64>) {
        let mut s = self.inner.lock();
        if s.workers.len() <= worker {
            s.workers.resize(worker + 1, (0, 0.0));
        }
        s.workers[worker] = (children, rate);
        if let Some(b) = best {
            s.best_fitness = Some(s.best_fitness.map_or(b, |x| x.max(b)));
        }
    }
    pub(crate) fn improved(&self, fitness: f64) {
        let mut s = self.inner.lock();
        s.best_fitness = Some(s.best_fitness.map_or(fitness, |x| x.max(fitness)));
    }
    pub(crate) fn failed(&self, error: String) {
        self.inner.lock().error = Some(error);
    }

    /// The figures as they are now.
    pub fn snapshot(&self) -> LiveState {
        self.inner.lock().clone()
    }
}
