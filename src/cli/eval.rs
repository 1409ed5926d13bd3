//! `bitsota eval`: score a DSL program on the validator suite, exactly as a validator
//! would (median over tasks, non-finite scores included).

use super::UsageError;
use crate::engine::{parse_program, score_on_suite};
use crate::tasks::scalar_linear::{self, LinearSizes};
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{Task, TaskType};
use anyhow::Context;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Program text file (either DSL dialect).
    #[arg(long)]
    pub dsl: PathBuf,
    /// Task type: scalar_linear, mnist_binary or cifar10_binary.
    #[arg(long, default_value = "cifar10_binary")]
    pub task: String,
    /// Number of suite tasks.
    #[arg(long, default_value_t = 128)]
    pub tasks: usize,
    /// Suite task seed (`task_seed`).
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Features per example.
    #[arg(long, default_value_t = 16)]
    pub input_dim: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The tasks of a validator suite, built (synthetic) or prepared (image datasets).
pub(crate) fn suite_tasks(suite: &SuiteSpec) -> anyhow::Result<Vec<Arc<Task>>> {
    match suite.task_type {
        TaskType::ScalarLinear => Ok(suite
            .tasks
            .par_iter()
            .map(|t| Arc::new(scalar_linear::build(t, LinearSizes::default())))
            .collect()),
        other => Err(UsageError(format!(
            "{other} tasks need the image datasets, which this build cannot prepare yet; use --task scalar_linear"
        ))
        .into()),
    }
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let task_type: TaskType = args.task.parse().map_err(|e| UsageError(format!("{e}")))?;
    if args.tasks == 0 || args.input_dim == 0 {
        return Err(UsageError("--tasks and --input-dim must be positive".into()).into());
    }
    let text = std::fs::read_to_string(&args.dsl)
        .with_context(|| format!("reading {}", args.dsl.display()))?;
    let program =
        parse_program(&text).map_err(|e| UsageError(format!("{}: {e}", args.dsl.display())))?;
    let suite = SuiteSpec::new(task_type, args.input_dim, args.tasks, args.seed);
    let tasks = suite_tasks(&suite)?;
    let seeds: Vec<u64> = (0..tasks.len()).map(|i| suite.eval_seed(i)).collect();
    let started = Instant::now();
    let scored = score_on_suite(&program, &tasks, &seeds);
    let seconds = started.elapsed().as_secs_f64();
    // JSON has no infinities: non-finite task scores are written as null.
    let finite = |v: f32| v.is_finite().then_some(v);
    if args.json {
        let out = serde_json::json!({
            "score": finite(scored.score),
            "per_task": scored.per_task.iter().map(|&v| finite(v)).collect::<Vec<_>>(),
            "task_ids": suite.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
            "task_type": task_type.as_str(),
            "tasks": tasks.len(),
            "task_seed": args.seed,
            "input_dim": args.input_dim,
            "rng_version": crate::rng::RNG_VERSION,
            "seconds": seconds,
        });
        println!("{out}");
    } else {
        for (spec, score) in suite.tasks.iter().zip(&scored.per_task) {
            println!("task {:>5}: {score}", spec.task_id);
        }
        println!(
            "score {} (median of {} {} tasks, task_seed {}, {:.3} s)",
            scored.score,
            tasks.len(),
            task_type,
            args.seed,
            seconds
        );
    }
    Ok(())
}
