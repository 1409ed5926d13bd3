//! `bitsota bench`: engine throughput on the configurations of engine.md §6, which
//! mirror published AutoML-Zero settings so the same work can be run side by side with
//! that C++ code. Progress goes to stderr; the last stdout line is JSON with `--json`.

use super::UsageError;
use crate::engine::mutate::random_program;
use crate::engine::{
    compile, run_islands, score_on_suite, CacheStats, Combine, EvalOptions, Evaluator,
    EvolutionConfig, EvolutionEvent, Evolver, InitialPopulation, Mutation, Profile, ProfileChoice,
    Program,
};
use crate::rng::Rng;
use crate::tasks::image::ImageSizes;
use crate::tasks::prepare::{prepare_suite, DataConfig};
use crate::tasks::scalar_linear::{build, LinearSizes};
use crate::tasks::suite::{median, SuiteSpec};
use crate::tasks::{Metric, Task, TaskSpec, TaskType};
use anyhow::Context;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchKind {
    /// AutoML-Zero's demo search (az_demo, 10 linear tasks, 4 features).
    Demo,
    /// AutoML-Zero's baseline search on CIFAR-shaped tasks (az_baseline, 16 features).
    Cifar,
    /// Time until the demo search finds a learner scoring > 0.9999 on 100 new tasks.
    Discover,
    /// Re-evaluate one full-size cifar-profile program on the 128-task suite.
    Validator,
    /// Mine a task from the default start; score the best program on the validators'
    /// suite every 30 s, then hand-written learners (see `bench_quality`).
    Quality,
    /// The daemon's miner against the bare engine on the same settings and seed
    /// (see `bench_miner`).
    Miner,
    /// Elements per second of each instruction kernel per size, lockstep and
    /// single-task, beside this machine's FMA ceiling (see `bench_kernels`).
    Kernels,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum)]
    pub bench: BenchKind,
    /// Measurement window (discover: the cap per seed). Defaults: demo 10, cifar 180,
    /// validator 10, discover 300, kernels 40 (the whole run).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Worker threads (islands for searches, rayon threads for validator).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Functional equivalence cache on (10/10 probe examples for demo/discover).
    #[arg(long)]
    pub fec: bool,
    /// Evaluate every child, even one whose compiled code was scored before (the
    /// exact-duplicate cache never changes a result; this measures raw evaluation).
    #[arg(long)]
    pub no_exact_cache: bool,
    /// Synthetic binary tasks of the same shape instead of projected CIFAR-10.
    #[arg(long)]
    pub synthetic: bool,
    /// Data directory (datasets in `<DIR>/datasets/`).
    #[arg(long, env = "BITSOTA_DATA_DIR", default_value = "bitsota-data")]
    pub data_dir: std::path::PathBuf,
    /// Search seed (discover: the first of `--seeds` consecutive seeds).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Discover: how many seeds to run (the median is over them).
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// Discover: end an experiment once its best fitness has not risen by at least
    /// `--min-gain` for this many children (checked at the end of each population
    /// sweep); 0 runs every experiment its full 2e8 training steps, as AutoML-Zero does.
    #[arg(long, default_value_t = DEFAULT_STAGNATION)]
    pub stagnation: u64,
    /// Discover: the least rise of the best fitness that counts as improving for
    /// `--stagnation` (smaller rises are constant tuning on a plateau).
    #[arg(long, default_value_t = DEFAULT_MIN_GAIN)]
    pub min_gain: f32,
    /// Demo/discover: population size (AutoML-Zero's demo: 1000).
    #[arg(long, default_value_t = 1000)]
    pub pop_size: usize,
    /// Demo/discover: tournament size (AutoML-Zero's demo: 10).
    #[arg(long, default_value_t = 10)]
    pub tournament_size: usize,
    /// Print a JSON summary as the last stdout line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub quality: super::bench_quality::QualityArgs,
    #[command(flatten)]
    pub miner: super::bench_miner::MinerBenchArgs,
}

/// CPU time of this process so far (user + system): a steadier denominator than wall
/// time when other work shares the cores. Read from `/proc/self/stat` (fields 14 and 15,
/// in the kernel's fixed user-visible clock of 100 ticks per second), so this needs no
/// `unsafe` call; NaN where there is no procfs.
fn cpu_seconds() -> f64 {
    /// `USER_HZ`: the unit of `/proc` CPU times on every Linux architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // The command name (field 2) is parenthesised and may hold spaces: count after it.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3, so fields 14 and 15 are at 11 and 12.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / TICKS_PER_SECOND,
        _ => f64::NAN,
    }
}

fn cache_json(stats: Option<CacheStats>) -> serde_json::Value {
    match stats {
        Some(s) => json!({"lookups": s.lookups, "hits": s.hits, "hit_rate": s.hit_rate()}),
        None => serde_json::Value::Null,
    }
}

/// A binary task shaped like a projected CIFAR task: Gaussian features, label 1 when a
/// random hyperplane puts the example on its positive side.
fn synthetic_binary_task(id: u32, dim: usize, train: usize, val: usize) -> Task {
    let mut rng = Rng::new(0x5EED_0000 + id as u64);
    let w: Vec<f32> = (0..dim).map(|_| rng.normal_f32(0.0, 1.0)).collect();
    let mut rows = |n: usize| {
        let x: Vec<f32> = (0..n * dim).map(|_| rng.normal_f32(0.0, 1.0)).collect();
        let y = x
            .chunks_exact(dim)
            .map(|r| {
                let s: f32 = r.iter().zip(&w).map(|(a, b)| a * b).sum();
                (s > 0.0) as u8 as f32
            })
            .collect();
        (x, y)
    };
    let (train_x, train_y) = rows(train);
    let (val_x, val_y) = rows(val);
    Task {
        spec: TaskSpec::new(TaskType::Cifar10Binary, id, dim),
        metric: Metric::Accuracy,
        input_dim: dim,
        train_x,
        train_y,
        val_x,
        val_y,
    }
}

/// Projected CIFAR-10 tasks from the data directory, or synthetic ones of that shape.
fn cifar_tasks(
    count: usize,
    train: usize,
    val: usize,
    args: &BenchArgs,
) -> anyhow::Result<(Vec<Arc<Task>>, Vec<u64>)> {
    let suite = SuiteSpec::new(TaskType::Cifar10Binary, 16, count, 1337);
    let tasks = if args.synthetic {
        suite
            .tasks
            .iter()
            .map(|t| Arc::new(synthetic_binary_task(t.task_id, 16, train, val)))
            .collect()
    } else {
        let mut cfg = DataConfig::for_data_dir(&args.data_dir);
        cfg.cifar10_binary = ImageSizes {
            n_samples: train + val,
            train_split: train as f64 / (train + val) as f64,
        };
        eprintln!("[bench] preparing {count} cifar10_binary tasks ({train}/{val})");
        prepare_suite(&suite, &cfg).context("preparing CIFAR-10 tasks (or pass --synthetic)")?
    };
    Ok((tasks, (0..count).map(|i| suite.eval_seed(i)).collect()))
}

fn linear_tasks(count: usize, task_seed: u64, sizes: LinearSizes) -> (Vec<Arc<Task>>, Vec<u64>) {
    let suite = SuiteSpec::new(TaskType::ScalarLinear, 4, count, task_seed);
    let tasks = suite
        .tasks
        .iter()
        .map(|t| Arc::new(build(t, sizes)))
        .collect();
    (tasks, (0..count).map(|i| suite.eval_seed(i)).collect())
}

/// AutoML-Zero's demo search, reporting progress every 20,000 children.
fn demo_config(args: &BenchArgs, seed: u64) -> EvolutionConfig {
    EvolutionConfig {
        checkpoint_generations: 20_000,
        pop_size: args.pop_size,
        tournament_size: args.tournament_size,
        exact_cache_size: exact_cache_size(args),
        ..EvolutionConfig::automl_zero_demo(args.fec, seed, args.workers)
    }
}

/// The exact-duplicate cache's capacity: the engine's default, or 0 (off) under
/// `--no-exact-cache`.
fn exact_cache_size(args: &BenchArgs) -> usize {
    if args.no_exact_cache {
        0
    } else {
        EvolutionConfig::default().exact_cache_size
    }
}

/// Run a search for `seconds`, printing progress to stderr; returns the summary.
fn timed_search(
    name: &str,
    cfg: &EvolutionConfig,
    tasks: &[Arc<Task>],
    seeds: &[u64],
    seconds: f64,
) -> anyhow::Result<serde_json::Value> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let mut children = vec![0u64; cfg.workers.max(1)];
    let mut fec: Vec<Option<CacheStats>> = vec![None; cfg.workers.max(1)];
    let mut exact: Vec<Option<CacheStats>> = vec![None; cfg.workers.max(1)];
    let mut best = f32::NEG_INFINITY;
    let deadline = Duration::from_secs_f64(seconds);
    std::thread::scope(|scope| {
        let stop = &stop;
        scope.spawn(move || {
            while started.elapsed() < deadline && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, Ordering::Relaxed);
        });
        let result = run_islands(cfg, tasks, seeds, stop, |event| {
            match event {
            EvolutionEvent::Progress {
                worker,
                children: c,
                children_per_sec,
                best_fitness,
                ..
            } => eprintln!(
                "[bench {name}] worker {worker}: {c} children, {children_per_sec:.0}/s, best {best_fitness}"
            ),
            EvolutionEvent::Finished {
                worker,
                children: c,
                best_fitness,
                fec: f,
                exact: x,
            } => {
                children[worker] = c;
                fec[worker] = f;
                exact[worker] = x;
                if best_fitness > best {
                    best = best_fitness;
                }
            }
            EvolutionEvent::Candidate { .. } => {}
        }
        });
        stop.store(true, Ordering::Relaxed);
        result
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let total: u64 = children.iter().sum();
    let merged = |v: &[Option<CacheStats>]| v.iter().flatten().copied().reduce(CacheStats::merged);
    let exact_total = merged(&exact);
    // Children scored by a full evaluation (or an FEC probe), not the duplicate cache.
    let evaluated = total - exact_total.map_or(0, |s| s.hits);
    let mut summary = json!({
        "bench": name,
        "workers": cfg.workers,
        "seconds": elapsed,
        "children": total,
        "children_per_sec": total as f64 / elapsed,
        "task_evals_per_sec": (evaluated * tasks.len() as u64) as f64 / elapsed,
        "cpu_seconds": cpu,
        "children_per_cpu_sec": total as f64 / cpu,
        "evaluations_per_sec": evaluated as f64 / elapsed,
        "fec": cache_json(merged(&fec)),
        "exact_cache": cache_json(exact_total),
    });
    crate::score_json::put_in(&mut summary, "best_fitness", best);
    Ok(summary)
}

/// AutoML-Zero's experiment length in the demo: 2e8 training steps (examples run,
/// summed over tasks), counted the way its evaluator counts them.
const EXPERIMENT_TRAIN_STEPS: u64 = 200_000_000;

/// A program counts as a solution when its mean fitness on 100 new tasks (1000 train /
/// 100 validation) exceeds this, as in AutoML-Zero's demo.
const SOLVED: f32 = 0.9999;

/// `bench discover`'s default stagnation window and least gain (see [`ExperimentEnd`]).
const DEFAULT_STAGNATION: u64 = 25_000;
const DEFAULT_MIN_GAIN: f32 = 0.002;

/// When a `bench discover` experiment ends, restarting with a fresh population and
/// fresh tasks. AutoML-Zero's rule is the first: 2e8 training steps. The second is
/// ours: an experiment whose best has not gained at least `min_gain` for `window`
/// children rarely finds the learner afterwards (the successful ones find it within
/// 5k–300k children and climb in steps on the way), so its remaining children are
/// better spent on a fresh start. Neither rule changes what counts as a solution.
///
/// The defaults come from 1,000 recorded experiments (seeds 0–29, each run to its
/// solution, its 2e8 steps or 300k children, every new best logged) replayed under
/// each rule: expected children to a solution, total children over solutions, were
/// 1.60 M for the old rule (40k window, any gain), 1.19 M with a 20k window, and a
/// flat optimum of 0.94–1.05 M for windows of 15k–25k children and least gains of
/// 0.001–0.005. Tiny gains are constant tuning on a plateau: counting them kept dead
/// experiments alive.
#[derive(Clone, Copy, Debug)]
struct ExperimentEnd {
    train_steps: u64,
    /// `None`: no early end (the faithful experiment).
    stagnation: Option<Stagnation>,
}

#[derive(Clone, Copy, Debug)]
struct Stagnation {
    window: u64,
    min_gain: f32,
}

/// An experiment's progress as [`ExperimentEnd`] sees it: the child of its last gain
/// and the best fitness then.
#[derive(Clone, Copy, Debug)]
struct Progress {
    last_gain: u64,
    gain_fitness: f32,
}

impl Progress {
    const START: Progress = Progress {
        last_gain: 0,
        gain_fitness: f32::NEG_INFINITY,
    };
}

impl ExperimentEnd {
    /// Note a new best `fitness` at child `children`: a gain when it beats the last
    /// gain's fitness by at least the least gain (any first best is one).
    fn observe(&self, progress: &mut Progress, children: u64, fitness: f32) {
        // From the start's −∞ any fitness is a gain.
        let min_gain = self.stagnation.map_or(0.0, |s| s.min_gain);
        if fitness >= progress.gain_fitness + min_gain {
            *progress = Progress {
                last_gain: children,
                gain_fitness: fitness,
            };
        }
    }

    /// Whether an experiment that has made `children` (the first population included)
    /// with `progress`, and run `train_steps`, is over.
    fn reached(&self, children: u64, progress: &Progress, train_steps: u64) -> bool {
        train_steps >= self.train_steps
            || self
                .stagnation
                .is_some_and(|s| children - progress.last_gain >= s.window)
    }
}

/// One seed of `bench discover`.
struct DiscoverRun {
    seed: u64,
    /// Wall time to a solution; `None` when the cap ran out first.
    seconds: Option<f64>,
    /// CPU time of the seed's search (steadier than wall time on a shared machine).
    cpu_seconds: f64,
    children: u64,
    experiments: u64,
}

/// A new best with at least this search fitness is tested on the fresh tasks at once
/// (about a millisecond per test; a few tests per experiment).
const CANDIDATE: f32 = 0.99;

/// Mean fitness on the fresh tasks (no early stopping): the test that decides whether
/// a program is a solution.
fn fresh_fitness(program: &Program, tasks: &[Arc<Task>], seeds: &[u64]) -> f32 {
    let c = compile(program, 4);
    let mut ev = Evaluator::new();
    let scores: Vec<f32> = tasks
        .iter()
        .zip(seeds)
        .map(|(t, &s)| ev.score(&c, t, s, &EvalOptions::default()))
        .collect();
    Combine::Mean.apply(&scores)
}

/// One discover run: the demo search, restarted with a fresh population and fresh
/// tasks every 2e8 training steps (checked once per population's worth of children, as
/// AutoML-Zero does), until a program scores > 0.9999 (mean) on 100 new 1000/100
/// tasks. AutoML-Zero tests one candidate per experiment, the best of its final
/// population; we test that one too, and also every new best of the experiment whose
/// search fitness reaches [`CANDIDATE`] as soon as it appears, so a learner found
/// early ends its experiment early. Both are the same test.
fn discover_once(args: &BenchArgs, seed: u64, cap: f64) -> DiscoverRun {
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let end = ExperimentEnd {
        train_steps: EXPERIMENT_TRAIN_STEPS,
        stagnation: (args.stagnation > 0).then_some(Stagnation {
            window: args.stagnation,
            min_gain: args.min_gain,
        }),
    };
    let (final_tasks, final_seeds) = linear_tasks(
        100,
        1_000_000 + seed,
        LinearSizes {
            train: 1000,
            val: 100,
        },
    );
    let solved = |p: &Program, label: &str, experiment: u64| {
        let fitness = fresh_fitness(p, &final_tasks, &final_seeds);
        eprintln!("[bench discover] seed {seed} experiment {experiment}: {label} scores {fitness} on 100 new tasks");
        fitness > SOLVED
    };
    let mut run = DiscoverRun {
        seed,
        seconds: None,
        cpu_seconds: 0.0,
        children: 0,
        experiments: 0,
    };
    for restart in 0u64.. {
        let cfg = EvolutionConfig {
            workers: 1,
            ..demo_config(args, seed * 1000 + restart)
        };
        let sweep = cfg.pop_size as u64;
        let (tasks, seeds) = linear_tasks(
            10,
            seed * 1000 + restart,
            LinearSizes {
                train: 100,
                val: 100,
            },
        );
        let mut evolver = Evolver::new(cfg, tasks, seeds).expect("valid demo config");
        run.experiments += 1;
        let mut progress = Progress::START;
        let found = loop {
            // The clock once per 256 children: reading it every child cost 1.5 %.
            if evolver.children() % 256 == 0 && started.elapsed().as_secs_f64() > cap {
                run.children += evolver.children();
                run.cpu_seconds = cpu_seconds() - cpu_start;
                return run;
            }
            let outcome = evolver.step();
            if outcome.improved {
                end.observe(&mut progress, evolver.children(), outcome.fitness);
                if outcome.fitness >= CANDIDATE {
                    let best = &evolver.best().expect("just improved").program;
                    if solved(best, "new best", restart) {
                        break true;
                    }
                }
            }
            if evolver.children() % sweep == 0
                && end.reached(evolver.children(), &progress, evolver.train_steps())
            {
                let last = evolver
                    .population()
                    .reduce(|b, m| if m.fitness > b.fitness { m } else { b })
                    .expect("a full population");
                break solved(&last.program, "final population's best", restart);
            }
        };
        run.children += evolver.children();
        if found {
            run.seconds = Some(started.elapsed().as_secs_f64());
            run.cpu_seconds = cpu_seconds() - cpu_start;
            return run;
        }
    }
    unreachable!("the restart loop only ends by returning")
}

/// The median of `values`, `None` when it is not finite (unsolved seeds count as +∞).
fn finite_median(values: &[f32]) -> Option<f32> {
    Some(median(values)).filter(|m| m.is_finite())
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.workers == 0 {
        return Err(UsageError("--workers must be at least 1".into()).into());
    }
    if args.bench == BenchKind::Quality {
        return super::bench_quality::run(&args, &args.quality);
    }
    if args.bench == BenchKind::Miner {
        return print_summary(&args, &super::bench_miner::run(&args, &args.miner)?);
    }
    if args.bench == BenchKind::Kernels {
        return print_summary(&args, &super::bench_kernels::run(&args)?);
    }
    if args.seeds == 0 {
        return Err(UsageError("--seeds must be at least 1".into()).into());
    }
    if args.pop_size < 2 || args.tournament_size == 0 {
        return Err(UsageError(
            "--pop-size must be at least 2 and --tournament-size at least 1".into(),
        )
        .into());
    }
    let seconds = args.seconds.unwrap_or(match args.bench {
        BenchKind::Demo | BenchKind::Validator => 10.0,
        BenchKind::Cifar => 180.0,
        BenchKind::Discover => 300.0,
        BenchKind::Quality | BenchKind::Miner | BenchKind::Kernels => unreachable!("handled above"),
    });
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(UsageError("--seconds must be positive".into()).into());
    }
    let summary = match args.bench {
        BenchKind::Demo => {
            let (tasks, seeds) = linear_tasks(
                10,
                0,
                LinearSizes {
                    train: 100,
                    val: 100,
                },
            );
            let cfg = demo_config(&args, args.seed);
            timed_search("demo", &cfg, &tasks, &seeds, seconds)?
        }
        BenchKind::Cifar => {
            let (tasks, seeds) = cifar_tasks(10, 8000, 1000, &args)?;
            let cfg = EvolutionConfig {
                profile: ProfileChoice::Named("az_baseline".into()),
                pop_size: 100,
                tournament_size: 10,
                mutations: vec![
                    Mutation::Insert,
                    Mutation::Remove,
                    Mutation::AlterParam,
                    Mutation::RandomizeComponent,
                ],
                initial_population: InitialPopulation::Empty,
                fec_cache_size: if args.fec { 100_000 } else { 0 },
                seed: args.seed,
                workers: args.workers,
                checkpoint_generations: 200,
                exact_cache_size: exact_cache_size(&args),
                ..Default::default()
            };
            timed_search("cifar", &cfg, &tasks, &seeds, seconds)?
        }
        BenchKind::Discover => {
            let runs: Vec<DiscoverRun> = (0..args.seeds)
                .map(|s| {
                    let run = discover_once(&args, args.seed + s, seconds);
                    eprintln!(
                        "[bench discover] seed {}: {:?} s ({:.2} CPU s), {} children, {} experiments",
                        run.seed, run.seconds, run.cpu_seconds, run.children, run.experiments
                    );
                    run
                })
                .collect();
            let solved = |r: &DiscoverRun, v: f32| {
                if r.seconds.is_some() {
                    v
                } else {
                    f32::INFINITY
                }
            };
            let times: Vec<f32> = runs
                .iter()
                .map(|r| solved(r, r.seconds.unwrap_or(0.0) as f32))
                .collect();
            let children: Vec<f32> = runs.iter().map(|r| solved(r, r.children as f32)).collect();
            json!({
                "bench": "discover",
                "seeds": runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
                "time_to_solution_s": finite_median(&times),
                "max_time_s": runs.iter().all(|r| r.seconds.is_some()).then(|| times.iter().copied().fold(0.0, f32::max)),
                "per_seed_s": runs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
                "per_seed_cpu_s": runs.iter().map(|r| r.cpu_seconds).collect::<Vec<_>>(),
                "median_children": finite_median(&children),
                "per_seed_children": runs.iter().map(|r| r.children).collect::<Vec<_>>(),
                "per_seed_experiments": runs.iter().map(|r| r.experiments).collect::<Vec<_>>(),
                "children": runs.iter().map(|r| r.children).sum::<u64>(),
                "cap_s": seconds,
                "stagnation": args.stagnation,
                "min_gain": args.min_gain,
                "fec": args.fec,
                "exact_cache": !args.no_exact_cache,
            })
        }
        BenchKind::Quality | BenchKind::Miner | BenchKind::Kernels => unreachable!("handled above"),
        BenchKind::Validator => {
            let (tasks, seeds) = cifar_tasks(128, 1000, 1000, &args)?;
            let profile = Profile::builtin("cifar").expect("built in");
            // A full-size program (7/11/23) whose instructions mostly survive dead-code
            // elimination: the most live of 200 seeded random programs.
            let mut rng = Rng::new(args.seed);
            let program = (0..200)
                .map(|_| random_program(&profile, 16, &mut rng))
                .max_by_key(|p| compile(p, 16).live_sizes().iter().sum::<usize>())
                .expect("200 candidates");
            let live = compile(&program, 16).live_sizes();
            eprintln!(
                "[bench validator] program: {} instructions, {live:?} live",
                program.len()
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(args.workers)
                .build()?;
            let mut runs = Vec::new();
            let started = Instant::now();
            while runs.is_empty() || started.elapsed().as_secs_f64() < seconds {
                let t = Instant::now();
                let scored = pool.install(|| score_on_suite(&program, &tasks, &seeds));
                runs.push(t.elapsed().as_secs_f32());
                eprintln!(
                    "[bench validator] suite in {:.3} s (score {})",
                    runs.last().unwrap(),
                    scored.score
                );
            }
            let per_suite = median(&runs);
            json!({
                "bench": "validator",
                "workers": args.workers,
                "suites": runs.len(),
                "live_instructions": live,
                "seconds_per_suite": per_suite,
                "children_per_sec": 1.0 / per_suite,
                "task_evals_per_sec": 128.0 / per_suite,
                "fec": null,
            })
        }
    };
    print_summary(&args, &summary)
}

/// The summary on stdout: one JSON line with `--json`, else pretty-printed.
fn print_summary(args: &BenchArgs, summary: &serde_json::Value) -> anyhow::Result<()> {
    if args.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(summary)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ExperimentEnd, Progress, Stagnation};

    #[test]
    fn an_experiment_ends_at_its_training_steps_or_after_a_stagnant_window() {
        let faithful = ExperimentEnd {
            train_steps: 1000,
            stagnation: None,
        };
        let at = |last_gain| Progress {
            last_gain,
            gain_fitness: 0.5,
        };
        assert!(!faithful.reached(90_000, &at(0), 999));
        assert!(faithful.reached(2_000, &at(1_999), 1000));
        let restarting = ExperimentEnd {
            stagnation: Some(Stagnation {
                window: 40_000,
                min_gain: 0.0,
            }),
            ..faithful
        };
        assert!(!restarting.reached(50_000, &at(10_001), 10));
        assert!(restarting.reached(50_000, &at(10_000), 10));
        assert!(restarting.reached(50_000, &at(49_999), 1000));
    }

    #[test]
    fn only_gains_of_at_least_the_least_gain_restart_the_window() {
        let end = ExperimentEnd {
            train_steps: u64::MAX,
            stagnation: Some(Stagnation {
                window: 100,
                min_gain: 0.01,
            }),
        };
        let mut progress = Progress::START;
        end.observe(&mut progress, 5, 0.30);
        assert_eq!(progress.last_gain, 5, "a first best is a gain");
        end.observe(&mut progress, 50, 0.305);
        assert_eq!(progress.last_gain, 5, "a rise below the least gain is not");
        assert!(end.reached(105, &progress, 0));
        end.observe(&mut progress, 60, 0.32);
        assert_eq!((progress.last_gain, progress.gain_fitness), (60, 0.32));
        assert!(!end.reached(105, &progress, 0));
    }
}
