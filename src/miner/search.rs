//! The miner's only contact with the engine and the task suites: preparing the miner and
//! validator suites, running the search, scoring a candidate on the validator suite.
//! Keeping these three in one place keeps the supervisor independent of engine details.

use super::settings::MinerSettings;
use crate::engine::{
    parse_program, print_program, run_islands, score_on_suite, CacheStats, EngineKind,
    EvolutionConfig, EvolutionEvent, Profile, ProfileChoice, Program,
};
use crate::tasks::hyperparams::SuiteConfig;
use crate::tasks::scalar_linear::LinearSizes;
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{prepare_suite, DataConfig, Task, TaskType};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
        /// Children that got a full evaluation on the miner suite (neither cache knew
        /// their score).
        evaluations: u64,
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

/// The miner suite: `miner_task_count` tasks from `miner_task_seed`, with the search's
/// example counts (the recipe's or `train_examples`/`val_examples`), else the
/// validators' (for image tasks they become `n_samples = train + val`,
/// `train_split = train / n`).
pub fn miner_suite(s: &MinerSettings, data_dir: &Path) -> Result<Suite, String> {
    let task = s.task()?;
    let search = s.search()?;
    let spec = SuiteSpec::new(task, s.input_dim, s.miner_task_count, s.miner_task_seed);
    let mut data = validator_config(s)?.data_config(data_dir);
    let (train, val) = (search.train_examples, search.val_examples);
    if train.is_some() || val.is_some() {
        match task {
            TaskType::ScalarLinear => {
                data.scalar_linear = LinearSizes {
                    train: train.unwrap_or(data.scalar_linear.train),
                    val: val.unwrap_or(data.scalar_linear.val),
                }
            }
            TaskType::MnistBinary | TaskType::Cifar10Binary => {
                let sizes = if task == TaskType::MnistBinary {
                    &mut data.mnist_binary
                } else {
                    &mut data.cifar10_binary
                };
                let train_now = (sizes.n_samples as f64 * sizes.train_split).round() as usize;
                let train = train.unwrap_or(train_now);
                let val = val.unwrap_or(sizes.n_samples - train_now);
                sizes.n_samples = train + val;
                sizes.train_split = train as f64 / (train + val) as f64;
            }
        }
    }
    let mut suite = build(&spec, &data)?;
    if let Some(metric) = search.metric {
        for task in &mut suite.tasks {
            Arc::make_mut(task).metric = metric;
        }
    }
    Ok(suite)
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

/// The engine configuration of a run (its first round). A run given a program to start
/// from (the relay's SOTA) searches the recipe's last space, with that program adopted
/// into it when it fits (`Profile::adopt`), as it is otherwise.
pub fn evolution_config(
    s: &MinerSettings,
    start: Option<Program>,
) -> Result<EvolutionConfig, String> {
    let defaults = EvolutionConfig::default();
    let search = s.search()?;
    let (profile, start) = match start {
        None => (search.profile.clone(), None),
        Some(p) => {
            let name = search.last_profile().to_string();
            let adopted = Profile::builtin(&name).and_then(|space| space.adopt(&p));
            (name, Some(adopted.unwrap_or(p)))
        }
    };
    Ok(EvolutionConfig {
        engine: if s.engine == "archive" {
            EngineKind::Archive
        } else {
            EngineKind::Baseline
        },
        profile: ProfileChoice::Named(profile),
        pop_size: search.pop_size,
        tournament_size: search.tournament_size,
        mutation_prob: s.mutation_prob as f32,
        mutations: search.mutations,
        initial_population: search.initial_population,
        fitness: search.fitness,
        early_stop_abs_error: search.early_stop_abs_error,
        fec_cache_size: search.fec_cache_size,
        fec_train_examples: s.fec_train_examples.unwrap_or(defaults.fec_train_examples),
        fec_val_examples: s.fec_valid_examples.unwrap_or(defaults.fec_val_examples),
        seed: s.seed,
        workers: s.workers,
        migration_generations: s.migration_generations,
        checkpoint_generations: s.checkpoint_generations,
        archive_size: s.archive_size.unwrap_or(defaults.archive_size),
        max_children: s.max_generations,
        stagnation_children: (search.stagnation_children > 0).then_some(search.stagnation_children),
        max_example_work: (search.max_example_work > 0).then_some(search.max_example_work),
        start_program: start,
        ..defaults
    })
}

/// The child budget per worker of round `round` (from 0) and its seed, or `None` when
/// the run's `max_generations` is used up. Rounds last `restart_children` children
/// (0 = one round for the whole run); round `r` of a run seeded `seed` searches with
/// `seed + r·workers`, so no two rounds' workers share an RNG stream.
pub fn round_plan(
    restart_children: u64,
    max_children: Option<u64>,
    workers: usize,
    seed: u64,
    round: u64,
) -> Option<(Option<u64>, u64)> {
    let done = match restart_children {
        0 if round > 0 => return None,
        0 => 0,
        r => round.saturating_mul(r),
    };
    let left = max_children.map(|m| m.saturating_sub(done));
    if left == Some(0) {
        return None;
    }
    let budget = match (restart_children, left) {
        (0, left) => left,
        (r, None) => Some(r),
        (r, Some(l)) => Some(r.min(l)),
    };
    Some((
        budget,
        seed.wrapping_add(round.wrapping_mul(workers as u64)),
    ))
}

fn finite(f: f32) -> Option<f64> {
    f.is_finite().then_some(f as f64)
}

/// Seed offset of a run's second stage, so its workers draw streams no round of the
/// first stage drew.
const SECOND_STAGE_SEED: u64 = 1 << 32;

/// Run the evolutionary search until `stop` (or `max_generations`), in rounds of
/// `restart_children` children per worker, reporting events (children counted over the
/// whole run) on the calling thread while the workers run on their own threads. A
/// staged recipe (`Search::then`) runs its first space for `after_children` children
/// per worker, then its second from the best program found so far.
pub fn run(
    s: &MinerSettings,
    suite: &Suite,
    start: Option<Program>,
    stop: &AtomicBool,
    mut on_event: impl FnMut(SearchEvent),
) -> Result<(), String> {
    let search = s.search()?;
    let next = search.then.clone().filter(|_| start.is_none());
    let first = evolution_config(s, start)?;
    let mut before = vec![Counts::default(); first.workers.max(1)];
    match next {
        None => rounds(
            &first,
            search.restart_children,
            s.max_generations,
            suite,
            stop,
            &mut before,
            &mut on_event,
        )?,
        Some(next) => {
            let budget = s
                .max_generations
                .map_or(next.after_children, |m| m.min(next.after_children));
            let mut best: Option<(f64, String)> = None;
            rounds(
                &first,
                search.restart_children,
                Some(budget),
                suite,
                stop,
                &mut before,
                &mut |e| {
                    if let SearchEvent::Improved { fitness, dsl, .. } = &e {
                        if best.as_ref().map_or(true, |(f, _)| fitness > f) {
                            best = Some((*fitness, dsl.clone()));
                        }
                    }
                    on_event(e)
                },
            )?;
            let left = s.max_generations.map(|m| m - budget);
            if !stop.load(Ordering::Relaxed) && left != Some(0) {
                let space = Profile::builtin(&next.profile)
                    .ok_or_else(|| format!("unknown profile '{}'", next.profile))?;
                let start = best
                    .and_then(|(_, dsl)| parse_program(&dsl).ok())
                    .and_then(|p| space.adopt(&p));
                let second = EvolutionConfig {
                    profile: ProfileChoice::Named(next.profile),
                    start_program: start,
                    seed: s.seed.wrapping_add(SECOND_STAGE_SEED),
                    ..first
                };
                rounds(
                    &second,
                    search.restart_children,
                    left,
                    suite,
                    stop,
                    &mut before,
                    &mut on_event,
                )?;
            }
        }
    }
    for (worker, counts) in before.iter().enumerate() {
        on_event(SearchEvent::Finished {
            worker,
            children: counts.children,
        });
    }
    Ok(())
}

/// A worker's children and full evaluations so far, over every round and stage.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    children: u64,
    evaluations: u64,
}

impl Counts {
    /// `self` plus a round's `children`, of which the caches scored `fec` and `exact`.
    fn plus(self, children: u64, fec: Option<CacheStats>, exact: Option<CacheStats>) -> Counts {
        let hits = fec.map_or(0, |s| s.hits) + exact.map_or(0, |s| s.hits);
        Counts {
            children: self.children + children,
            evaluations: self.evaluations + children.saturating_sub(hits),
        }
    }
}

/// One stage of [`run`]: rounds of `first` until `stop` or `max_children` per worker,
/// counted on from `before` (updated to where each worker ended).
#[allow(clippy::too_many_arguments)]
fn rounds(
    first: &EvolutionConfig,
    restart: u64,
    max_children: Option<u64>,
    suite: &Suite,
    stop: &AtomicBool,
    before: &mut Vec<Counts>,
    on_event: &mut impl FnMut(SearchEvent),
) -> Result<(), String> {
    let workers = before.len();
    for round in 0.. {
        let Some((budget, seed)) = round_plan(restart, max_children, workers, first.seed, round)
        else {
            break;
        };
        let cfg = EvolutionConfig {
            max_children: budget,
            seed,
            ..first.clone()
        };
        let mut ended = before.clone();
        run_islands(&cfg, &suite.tasks, &suite.seeds, stop, |e| {
            let at = |worker: usize, c: u64| before[worker].children + c;
            on_event(match e {
                EvolutionEvent::Progress {
                    worker,
                    children,
                    children_per_sec,
                    best_fitness,
                    fec,
                    exact,
                } => {
                    let counts = before[worker].plus(children, fec, exact);
                    SearchEvent::Progress {
                        worker,
                        children: counts.children,
                        evaluations: counts.evaluations,
                        children_per_sec,
                        best_fitness: finite(best_fitness),
                    }
                }
                EvolutionEvent::Candidate {
                    worker,
                    children,
                    member,
                } => match finite(member.fitness) {
                    Some(fitness) => SearchEvent::Improved {
                        worker,
                        children: at(worker, children),
                        fitness,
                        dsl: print_program(&member.program),
                    },
                    // A non-finite "best" (all programs failing so far) is no candidate.
                    None => return,
                },
                EvolutionEvent::Finished {
                    worker,
                    children,
                    fec,
                    exact,
                    ..
                } => {
                    ended[worker] = before[worker].plus(children, fec, exact);
                    // A round's end is not the run's: only the last round reports it.
                    return;
                }
            })
        })
        .map_err(|e| e.to_string())?;
        *before = ended;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::tasks::Metric;

    #[test]
    fn rounds_split_the_budget_and_take_fresh_seeds() {
        // No restarts: one round with the whole budget.
        assert_eq!(round_plan(0, None, 2, 7, 0), Some((None, 7)));
        assert_eq!(round_plan(0, Some(50), 2, 7, 0), Some((Some(50), 7)));
        assert_eq!(round_plan(0, None, 2, 7, 1), None);
        // Restarts: rounds of 100 with seeds 7, 9, 11 for two workers; the last round
        // gets what is left of max_generations.
        assert_eq!(round_plan(100, None, 2, 7, 0), Some((Some(100), 7)));
        assert_eq!(round_plan(100, None, 2, 7, 2), Some((Some(100), 11)));
        assert_eq!(round_plan(100, Some(250), 2, 7, 2), Some((Some(50), 11)));
        assert_eq!(round_plan(100, Some(250), 2, 7, 3), None);
        assert_eq!(round_plan(100, Some(200), 1, 7, 2), None);
    }

    /// The image recipe's search ranks programs by squared error on the 0/1 labels,
    /// while candidates are verified by the validators' accuracy. A program predicting
    /// 100 for every example shows both: accuracy ≈ 0.5 (every example called class 1),
    /// `1 − (2/π)·atan(RMSE)` ≈ 0.006. Needs the real CIFAR-10 files (`../shared/datasets`
    /// or `BITSOTA_TEST_DATASETS`); skipped without them, except under `CI=true`.
    #[test]
    fn image_tasks_search_by_squared_error_and_verify_by_accuracy() {
        let Some(dir) = cifar_data_dir() else { return };
        let mut s = MinerSettings::from_config(&Config::default());
        s.task_type = "cifar10_binary".into();
        s.miner_task_count = 2;
        s.validator_task_count = 2;
        let suite = miner_suite(&s, dir.path()).unwrap();
        assert!(suite
            .tasks
            .iter()
            .all(|t| t.metric == Metric::InverseAtanRmse));
        let constant = "# predict\ns0 = 100.0\n";
        let searched = score_on_suite(
            &parse_program(constant).unwrap(),
            &suite.tasks,
            &suite.seeds,
        );
        assert!(searched.score < 0.01, "search fitness {}", searched.score);
        let verified = Verifier::new(&s, dir.path())
            .unwrap()
            .verify(constant)
            .unwrap()
            .unwrap();
        assert!((0.4..0.6).contains(&verified), "validator score {verified}");
    }

    /// The real CIFAR-10 files in a data directory, or `None` (test skipped) without
    /// them (`../shared/datasets` or `BITSOTA_TEST_DATASETS`; required under `CI=true`).
    fn cifar_data_dir() -> Option<tempfile::TempDir> {
        let datasets = std::env::var_os("BITSOTA_TEST_DATASETS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
        if !datasets.join("cifar10").is_dir() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "no CIFAR-10 files at {datasets:?}"
            );
            eprintln!("SKIPPED: no CIFAR-10 files at {}", datasets.display());
            return None;
        }
        // Link the dataset folder, not its parent: the prepared-task cache then lands in
        // the temporary `datasets/prepared`, never in the (read-only) shared folder.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("datasets")).unwrap();
        std::os::unix::fs::symlink(
            datasets.join("cifar10").canonicalize().unwrap(),
            dir.path().join("datasets/cifar10"),
        )
        .unwrap();
        Some(dir)
    }

    /// A staged run searches its first space for `stage_children` children, then the
    /// second from the best program so far: the second stage's first candidate is that
    /// program adopted (two matrices, NOOP-padded phases) with the same fitness, and no
    /// candidate of the first stage has matrices to spare.
    #[test]
    fn a_staged_run_moves_on_from_its_best_program() {
        let Some(dir) = cifar_data_dir() else { return };
        let mut s = MinerSettings::from_config(&Config::default());
        s.task_type = "cifar10_binary".into();
        (s.miner_task_count, s.workers, s.seed) = (1, 1, 3);
        s.train_examples = Some(40);
        s.val_examples = Some(40);
        s.stage_children = Some(1500);
        // Without FEC, so a fitness is the program's own, not a probe-twin's.
        s.fec_cache_size = Some(0);
        s.max_generations = Some(1600);
        let suite = miner_suite(&s, dir.path()).unwrap();
        let mut improved = Vec::new();
        let mut finished = 0;
        run(&s, &suite, None, &AtomicBool::new(false), |e| match e {
            SearchEvent::Improved {
                children,
                fitness,
                dsl,
                ..
            } => improved.push((children, fitness, parse_program(&dsl).unwrap())),
            SearchEvent::Finished { children, .. } => finished = children,
            _ => {}
        })
        .unwrap();
        assert_eq!(finished, 1600, "children count on across stages");
        let (first, second): (Vec<_>, Vec<_>) =
            improved.into_iter().partition(|(c, _, _)| *c <= 1500);
        let best = first.last().expect("the first stage found candidates");
        assert!(first.iter().all(|(_, _, p)| p.meta.matrix_count == 1));
        let (_, fitness, start) = second.first().expect("the second stage reports its start");
        assert_eq!(*fitness, best.1, "the adopted best scores the same");
        assert_eq!(start.meta.matrix_count, 2);
        assert_eq!(&start.predict[..best.2.predict.len()], &best.2.predict[..]);
    }

    /// The shipped `scalar_linear` search — the recipe, nothing overridden — discovers
    /// a learner from random programs that the validators score ≥ 0.99 on their own
    /// 128-task, 16-feature suite. One worker, so the run is the same every time; seed 5
    /// finds it in its first round at 129,521 children (seeds 5, 10 and 11 of 0–20 do so
    /// within one round; 5 is the first), and the child budget, not wall time, bounds
    /// the test. A change to how the search draws its random numbers needs a new seed
    /// (seed 12 served until the search's draws were made AutoML-Zero's).
    ///
    /// 130k children of 16-feature tasks take 3 s in a release build but about 10
    /// minutes unoptimised, so debug builds skip it and CI runs it in its own release
    /// step: `cargo test --release --lib discovers`.
    #[test]
    #[cfg_attr(
        debug_assertions,
        ignore = "minutes unoptimised: run with cargo test --release --lib discovers"
    )]
    fn the_default_scalar_linear_search_discovers_a_learner() {
        const SEED: u64 = 5;
        const BUDGET: u64 = 200_000;
        let dir = tempfile::tempdir().unwrap();
        let mut s = MinerSettings::from_config(&Config::default());
        assert_eq!(s.task_type, "scalar_linear");
        s.workers = 1;
        s.seed = SEED;
        s.max_generations = Some(BUDGET);
        s.validator_task_count = 128;
        let suite = miner_suite(&s, dir.path()).unwrap();
        let verifier = Verifier::new(&s, dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        let mut found = None;
        let mut children = 0;
        run(&s, &suite, None, &stop, |e| match e {
            SearchEvent::Improved {
                fitness,
                dsl,
                children: c,
                ..
            } if fitness > 0.9 => {
                let score = verifier.verify(&dsl).unwrap().unwrap_or(f64::NAN);
                if score >= 0.99 {
                    found = Some((score, dsl, c));
                    stop.store(true, Ordering::Relaxed);
                }
            }
            SearchEvent::Finished { children: c, .. } => children = c,
            _ => {}
        })
        .unwrap();
        let (score, dsl, at) =
            found.unwrap_or_else(|| panic!("no learner scoring ≥ 0.99 within {children} children"));
        assert!(score >= 0.99 && at <= BUDGET, "{score} at {at}:\n{dsl}");
        eprintln!("found at {at} children, validator score {score}:\n{dsl}");
    }
}
