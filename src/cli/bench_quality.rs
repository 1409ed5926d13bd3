//! `bitsota bench quality`: what the miner's default search achieves on a task, as the
//! validators would score it. It mines from the default start (the task type's recipe,
//! `miner::recipe`, with any `BITSOTA_MINER_*` override from the environment), and at
//! fixed marks scores the best program so far on the embedded validators' own suite
//! (`[validator] task_count` tasks from `task_seed`, their sizes), so each figure is
//! what a validator would see. At the end it scores hand-written learners on the same
//! suite for scale.

use super::bench::BenchArgs;
use super::quality_curve::{self as curve, Point};
use super::UsageError;
use crate::engine::parse_program;
use crate::miner::search::{self, SearchEvent, Verifier};
use crate::miner::settings::{MinerSettings, Overrides};
use crate::tasks::TaskType;
use anyhow::Context;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Options of `bench quality`.
#[derive(clap::Args, Debug)]
pub struct QualityArgs {
    /// quality: the task type to mine (scalar_linear, mnist_binary, cifar10_binary).
    #[arg(long, default_value = "cifar10_binary")]
    pub task: String,
    /// quality: how long to mine.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// quality: seconds between score marks.
    #[arg(long, default_value_t = 30.0)]
    pub mark_seconds: f64,
    /// quality: start from this program (a DSL file, e.g. a `best_program` an earlier
    /// run wrote out) as a miner with `start_from_sota` starts from the relay's SOTA.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// quality: where to write the curve's CSV (its SVG drawing goes beside it; default
    /// `quality-<task>-seed<seed>.csv` in the working directory).
    #[arg(long)]
    pub curve: Option<PathBuf>,
}

/// Hand-written learners every run is compared with.
const REFERENCES: [(&str, &str); 2] = [
    (
        "linear_sgd",
        include_str!("../../fixtures/programs/linear_sgd.dsl"),
    ),
    (
        "logistic_sgd",
        include_str!("../../fixtures/programs/logistic_sgd.dsl"),
    ),
];

/// The best program so far (by miner fitness, over all workers).
struct Best {
    fitness: f64,
    dsl: String,
}

/// One mark of the curve.
struct Mark {
    seconds: f64,
    children: u64,
    /// Full evaluations (children neither cache knew), as of the workers' last report.
    evaluations: u64,
    /// Children per second since the previous mark.
    rate: f64,
    fitness: Option<f64>,
    score: Option<f64>,
}

fn points(marks: &[Mark]) -> Vec<Point> {
    marks
        .iter()
        .map(|m| Point {
            seconds: m.seconds,
            children: m.children,
            evaluations: m.evaluations,
            score: m.score,
            fitness: m.fitness,
        })
        .collect()
}

/// Write the curve so far and the best program (a file `--from` reads).
fn save(csv: &Path, marks: &[Mark], best: &Option<Best>) -> anyhow::Result<()> {
    std::fs::write(csv, curve::csv(&points(marks)))
        .with_context(|| format!("writing {}", csv.display()))?;
    if let Some(b) = best {
        let path = curve::best_path(csv);
        std::fs::write(&path, &b.dsl).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A miner-suite example count for the header (`None` = the validators' count).
fn examples(count: Option<usize>) -> String {
    count.map_or("as the validators'".into(), |n| n.to_string())
}

fn settings(task: &str, args: &BenchArgs) -> anyhow::Result<MinerSettings> {
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let config = crate::config::load(None, false, &vars, &[])?;
    let overrides = Overrides {
        task_type: Some(task.to_string()),
        workers: Some(args.workers),
        seed: Some(args.seed),
        start_from_sota: Some(false),
        ..Default::default()
    };
    let mut s = MinerSettings::resolve(&config, None, &overrides).map_err(UsageError)?;
    // Verify on the validators' suite itself, not the miner's smaller copy of it.
    s.validator_task_count = config.validator.task_count;
    Ok(s)
}

pub fn run(args: &BenchArgs, q: &QualityArgs) -> anyhow::Result<()> {
    q.task
        .parse::<TaskType>()
        .map_err(|e| UsageError(format!("--task: {e}")))?;
    if !(q.minutes.is_finite() && q.minutes > 0.0) {
        return Err(UsageError("--minutes must be positive".into()).into());
    }
    if !(q.mark_seconds.is_finite() && q.mark_seconds > 0.0) {
        return Err(UsageError("--mark-seconds must be positive".into()).into());
    }
    let s = settings(&q.task, args)?;
    let search = s.search().map_err(UsageError)?;
    let start = match &q.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --from {}", path.display()))?;
            let program = parse_program(&text)
                .map_err(|e| UsageError(format!("--from {}: {e}", path.display())))?;
            Some(program)
        }
        None => None,
    };
    let curve_csv = q
        .curve
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("quality-{}-seed{}.csv", s.task_type, s.seed)));
    eprintln!(
        "[quality] {}: profile {}, population {} / tournament {}, mutations {:?}, \
         {:?} first programs, miner suite {} tasks (training examples {}, validation examples {}, scored by {}), \
         restart every {} children (0 = never), start over after {} children without a gain \
         (0 = never), work bound {}, FEC {} entries (0 = off), then {}, start {}",
        s.task_type,
        search.profile,
        search.pop_size,
        search.tournament_size,
        search.mutations,
        search.initial_population,
        s.miner_task_count,
        examples(search.train_examples),
        examples(search.val_examples),
        search
            .metric
            .map_or("the validators' metric".into(), |m| format!("{m:?}")),
        search.restart_children,
        search.stagnation_children,
        search.max_example_work,
        search.fec_cache_size,
        search.then.as_ref().map_or("no second stage".into(), |t| format!(
            "{} after {} children per worker",
            t.profile, t.after_children
        )),
        q.from
            .as_ref()
            .map_or("from the recipe's first population".into(), |p| format!(
                "from {} (searching {})",
                p.display(),
                search.last_profile()
            )),
    );
    let miner = search::miner_suite(&s, &args.data_dir)
        .map_err(anyhow::Error::msg)
        .context("preparing the miner suite (image tasks need `bitsota data fetch`)")?;
    let verifier = Verifier::new(&s, &args.data_dir).map_err(anyhow::Error::msg)?;
    let score = |dsl: &str| verifier.verify(dsl).map_err(anyhow::Error::msg);

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(q.minutes * 60.0);
    let every = Duration::from_secs_f64(q.mark_seconds);
    let mut children = vec![0u64; s.workers];
    let mut evaluations = vec![0u64; s.workers];
    let mut best: Option<Best> = None;
    let mut marks: Vec<Mark> = Vec::new();
    let mut error = None;
    let mut mark = |best: &Option<Best>, children: u64, evaluations: u64, marks: &mut Vec<Mark>| {
        let seconds = started.elapsed().as_secs_f64();
        let (t0, c0, e0) = marks
            .last()
            .map_or((0.0, 0, 0), |m| (m.seconds, m.children, m.evaluations));
        let score = match best.as_ref().map(|b| score(&b.dsl)).transpose() {
            Ok(s) => s.flatten(),
            Err(e) => {
                error = Some(e);
                None
            }
        };
        let m = Mark {
            seconds,
            children,
            evaluations,
            rate: (children - c0) as f64 / (seconds - t0).max(1e-9),
            fitness: best.as_ref().map(|b| b.fitness),
            score,
        };
        eprintln!(
            "[quality] {:>5.0} s  {:>11} children  {:>8.0}/s  {:>7.0} full evaluations/s  best miner fitness {}  validator score {}",
            m.seconds,
            m.children,
            m.rate,
            (evaluations - e0) as f64 / (seconds - t0).max(1e-9),
            m.fitness.map_or("-".into(), |f| format!("{f:.6}")),
            m.score.map_or("-".into(), |f| format!("{f:.6}")),
        );
        marks.push(m);
        // Kept current, so a run that is stopped early still leaves its curve and best.
        if let Err(e) = save(&curve_csv, marks, best) {
            error = Some(e);
        }
    };
    std::thread::scope(|scope| {
        let stop = &stop;
        scope.spawn(move || {
            while started.elapsed() < deadline && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, Ordering::Relaxed);
        });
        let result = search::run(&s, &miner, start, stop, |e| {
            match e {
                SearchEvent::Progress {
                    worker,
                    children: c,
                    evaluations: e,
                    ..
                } => {
                    children[worker] = c;
                    evaluations[worker] = e;
                }
                SearchEvent::Finished {
                    worker,
                    children: c,
                    ..
                } => children[worker] = c,
                SearchEvent::Improved {
                    worker,
                    children: c,
                    fitness,
                    dsl,
                } => {
                    children[worker] = c;
                    if best.as_ref().map_or(true, |b| fitness > b.fitness) {
                        best = Some(Best { fitness, dsl });
                    }
                }
            }
            let due = every.mul_f64((marks.len() + 1) as f64);
            if started.elapsed() >= due && started.elapsed() < deadline {
                mark(
                    &best,
                    children.iter().sum(),
                    evaluations.iter().sum(),
                    &mut marks,
                );
            }
        });
        stop.store(true, Ordering::Relaxed);
        result
    })
    .map_err(anyhow::Error::msg)?;
    mark(
        &best,
        children.iter().sum(),
        evaluations.iter().sum(),
        &mut marks,
    );
    if let Some(e) = error {
        return Err(e);
    }
    save(&curve_csv, &marks, &best)?;
    let task: TaskType = s.task_type.parse().map_err(anyhow::Error::msg)?;
    let title = format!(
        "bench quality: {} seed {}, {} worker{}{}",
        s.task_type,
        s.seed,
        s.workers,
        if s.workers == 1 { "" } else { "s" },
        q.from
            .as_ref()
            .map_or(String::new(), |_| ", from a program".into())
    );
    let svg = curve::svg_path(&curve_csv);
    curve::draw(&svg, &title, &points(&marks), curve::reference_lines(task))
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "[quality] curve: {} and {}; best program: {}",
        curve_csv.display(),
        svg.display(),
        curve::best_path(&curve_csv).display()
    );
    let mut references = serde_json::Map::new();
    for (name, dsl) in REFERENCES {
        let sc = score(dsl)?;
        eprintln!(
            "[quality] {name}: validator score {}",
            sc.map_or("-".into(), |f| format!("{f:.6}"))
        );
        references.insert(name.into(), json!(sc));
    }
    let summary = json!({
        "bench": "quality",
        "task": s.task_type,
        "workers": s.workers,
        "seed": s.seed,
        "validator_tasks": s.validator_task_count,
        "marks": marks.iter().map(|m| json!({
            "seconds": m.seconds, "children": m.children, "children_per_sec": m.rate,
            "miner_fitness": m.fitness, "validator_score": m.score,
        })).collect::<Vec<_>>(),
        "best_program": best.map(|b| b.dsl),
        "curve": curve_csv,
        "references": references,
    });
    if args.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}
