//! The miner's only contact with the engine and the task suites: preparing the miner and
//! validator suites, running the search, scoring a candidate on the validator suite.
//! Keeping these three in one place keeps the supervisor independent of engine details.

use super::settings::MinerSettings;
use crate::tasks::scalar_linear::{self, LinearSizes};
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{Task, TaskType};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Built tasks with their evaluation seeds.
pub struct Suite {
    pub tasks: Vec<Arc<Task>>,
    pub seeds: Vec<u64>,
}

/// What the search reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchEvent {
    /// Every `checkpoint_generations` children of a worker.
    Progress {
        worker: usize,
        children: u64,
        children_per_sec: f64,
        best_fitness: Option<f64>,
    },
    /// A worker's best miner fitness improved.
    Improved {
        worker: usize,
        children: u64,
        fitness: f64,
        dsl: String,
    },
    /// A worker stopped.
    Finished { worker: usize, children: u64 },
}

fn build(spec: &SuiteSpec, sizes: LinearSizes, _data_dir: &Path) -> Result<Suite, String> {
    if spec.task_type != TaskType::ScalarLinear {
        return Err(format!(
            "task type {} needs the dataset module, which is not in this build yet",
            spec.task_type
        ));
    }
    let tasks = spec
        .tasks
        .iter()
        .map(|t| Arc::new(scalar_linear::build(t, sizes)))
        .collect();
    let seeds = (0..spec.tasks.len()).map(|i| spec.eval_seed(i)).collect();
    Ok(Suite { tasks, seeds })
}

/// The miner suite: `miner_task_count` tasks from `miner_task_seed`, with the problem
/// config's example counts when it sets them.
pub fn miner_suite(s: &MinerSettings, data_dir: &Path) -> Result<Suite, String> {
    let spec = SuiteSpec::new(
        s.task()?,
        s.input_dim,
        s.miner_task_count,
        s.miner_task_seed,
    );
    let d = LinearSizes::default();
    let sizes = LinearSizes {
        train: s.train_examples.unwrap_or(d.train),
        val: s.val_examples.unwrap_or(d.val),
    };
    build(&spec, sizes, data_dir)
}

/// The validator suite candidates are verified on (the validators' sizes and seed).
pub fn validator_suite(s: &MinerSettings, data_dir: &Path) -> Result<Suite, String> {
    let spec = SuiteSpec::new(
        s.task()?,
        s.input_dim,
        s.validator_task_count,
        s.validator_task_seed,
    );
    build(&spec, LinearSizes::default(), data_dir)
}

/// Run the evolutionary search until `stop` (or `max_generations`), reporting events on
/// the calling thread while the workers run on their own threads.
pub fn run(
    _s: &MinerSettings,
    _suite: &Suite,
    _stop: &AtomicBool,
    _on_event: impl FnMut(SearchEvent),
) -> Result<(), String> {
    Err("the evolution engine is not part of this build yet".into())
}

/// The validator-suite score of a program (median of per-task scores, as validators do).
pub fn verify(_dsl: &str, _suite: &Suite) -> Result<f64, String> {
    Err("the evaluation engine is not part of this build yet".into())
}
