//! The miner's only contact with the engine and the task suites: preparing the miner and
//! validator suites, running the search, scoring a candidate on the validator suite.
//! Keeping these three in one place keeps the supervisor independent of engine details.

use super::settings::MinerSettings;
use crate::engine::{
    parse_program, print_program, run_islands, score_on_suite, EngineKind, EvolutionConfig,
    EvolutionEvent, ProfileChoice,
};
use crate::tasks::hyperparams::SuiteConfig;
use crate::tasks::scalar_linear::LinearSizes;
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{prepare_suite, DataConfig, Task, TaskType};
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

/// The validators' suite settings (their hyperparameters file, else the defaults).
fn validator_config(s: &MinerSettings) -> Result<SuiteConfig, String> {
    match &s.validator_hyperparams {
        Some(path) => SuiteConfig::from_file(path).map_err(|e| e.to_string()),
        None => Ok(SuiteConfig {
            task_seed: s.validator_task_seed,
            ..SuiteConfig::default()
        }),
    }
}

fn build(spec: &SuiteSpec, data: &DataConfig) -> Result<Suite, String> {
    data.validate().map_err(|e| e.to_string())?;
    let tasks = prepare_suite(spec, data).map_err(|e| e.to_string())?;
    let seeds = (0..spec.tasks.len()).map(|i| spec.eval_seed(i)).collect();
    Ok(Suite { tasks, seeds })
}

/// The miner suite: `miner_task_count` tasks from `miner_task_seed`, with the validators'
/// example counts unless the problem config sets `train_examples`/`val_examples` (for
/// image tasks they become `n_samples = train + val`, `train_split = train / n`).
pub fn miner_suite(s: &MinerSettings, data_dir: &Path) -> Result<Suite, String> {
    let task = s.task()?;
    let spec = SuiteSpec::new(task, s.input_dim, s.miner_task_count, s.miner_task_seed);
    let mut data = validator_config(s)?.data_config(data_dir);
    if s.train_examples.is_some() || s.val_examples.is_some() {
        match task {
            TaskType::ScalarLinear => {
                data.scalar_linear = LinearSizes {
                    train: s.train_examples.unwrap_or(data.scalar_linear.train),
                    val: s.val_examples.unwrap_or(data.scalar_linear.val),
                }
            }
            TaskType::MnistBinary | TaskType::Cifar10Binary => {
                let sizes = if task == TaskType::MnistBinary {
                    &mut data.mnist_binary
                } else {
                    &mut data.cifar10_binary
                };
                let train_now = (sizes.n_samples as f64 * sizes.train_split).round() as usize;
                let train = s.train_examples.unwrap_or(train_now);
                let val = s.val_examples.unwrap_or(sizes.n_samples - train_now);
                sizes.n_samples = train + val;
                sizes.train_split = train as f64 / (train + val) as f64;
            }
        }
    }
    build(&spec, &data)
}

/// The validator suite candidates are verified on — `validator_task_count` tasks with the
/// validators' seed and sizes — and the single thread verification may use: it runs
/// beside the search workers and must not take their cores (suite scoring is parallel
/// by default; its result does not depend on the thread count).
pub struct Verifier {
    suite: Suite,
    pool: rayon::ThreadPool,
}

impl Verifier {
    pub fn new(s: &MinerSettings, data_dir: &Path) -> Result<Self, String> {
        let vc = validator_config(s)?;
        let spec = SuiteSpec::new(s.task()?, s.input_dim, s.validator_task_count, vc.task_seed);
        let suite = build(&spec, &vc.data_config(data_dir))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "miner-verify".into())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Verifier { suite, pool })
    }

    /// The validator-suite score of a program (median of per-task scores, as validators
    /// do); `None` when it is not finite (the program diverges on the validators' tasks).
    pub fn verify(&self, dsl: &str) -> Result<Option<f64>, String> {
        let program =
            parse_program(dsl).map_err(|e| format!("the candidate does not parse: {e}"))?;
        let score = self
            .pool
            .install(|| score_on_suite(&program, &self.suite.tasks, &self.suite.seeds).score);
        Ok(finite(score))
    }
}

/// The engine configuration of a run.
pub fn evolution_config(s: &MinerSettings) -> Result<EvolutionConfig, String> {
    let defaults = EvolutionConfig::default();
    let profile = s.task()?.profile_name();
    Ok(EvolutionConfig {
        engine: if s.engine == "archive" {
            EngineKind::Archive
        } else {
            EngineKind::Baseline
        },
        profile: ProfileChoice::Named(profile.into()),
        pop_size: s.pop_size,
        tournament_size: s.tournament_size,
        mutation_prob: s.mutation_prob as f32,
        fec_cache_size: s.fec_cache_size,
        fec_train_examples: s.fec_train_examples.unwrap_or(defaults.fec_train_examples),
        fec_val_examples: s.fec_valid_examples.unwrap_or(defaults.fec_val_examples),
        seed: s.seed,
        workers: s.workers,
        migration_generations: s.migration_generations,
        checkpoint_generations: s.checkpoint_generations,
        archive_size: s.archive_size.unwrap_or(defaults.archive_size),
        max_children: s.max_generations,
        ..defaults
    })
}

fn finite(f: f32) -> Option<f64> {
    f.is_finite().then_some(f as f64)
}

/// Run the evolutionary search until `stop` (or `max_generations`), reporting events on
/// the calling thread while the workers run on their own threads.
pub fn run(
    s: &MinerSettings,
    suite: &Suite,
    stop: &AtomicBool,
    mut on_event: impl FnMut(SearchEvent),
) -> Result<(), String> {
    let cfg = evolution_config(s)?;
    run_islands(&cfg, &suite.tasks, &suite.seeds, stop, |e| {
        on_event(match e {
            EvolutionEvent::Progress {
                worker,
                children,
                children_per_sec,
                best_fitness,
                ..
            } => SearchEvent::Progress {
                worker,
                children,
                children_per_sec,
                best_fitness: finite(best_fitness),
            },
            EvolutionEvent::Candidate {
                worker,
                children,
                member,
            } => match finite(member.fitness) {
                Some(fitness) => SearchEvent::Improved {
                    worker,
                    children,
                    fitness,
                    dsl: print_program(&member.program),
                },
                // A non-finite "best" (all programs failing so far) is no candidate.
                None => return,
            },
            EvolutionEvent::Finished {
                worker, children, ..
            } => SearchEvent::Finished { worker, children },
        })
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}
