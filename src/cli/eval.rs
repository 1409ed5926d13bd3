//! `bitsota eval`: score a DSL program on the validator suite, exactly as a validator
//! would (median over tasks, non-finite scores included).

use super::UsageError;
use crate::engine::{parse_program, score_on_suite};
use crate::score_json;
use crate::tasks::prepare::{prepare_suite, DataConfig};
use crate::tasks::suite::SuiteSpec;
use crate::tasks::TaskType;
use anyhow::Context;
use std::path::PathBuf;
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
    /// Data directory (datasets in `<DIR>/datasets/`, prepared tasks cached there).
    #[arg(long, env = "BITSOTA_DATA_DIR", default_value = "bitsota-data")]
    pub data_dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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
    let tasks = prepare_suite(&suite, &DataConfig::for_data_dir(&args.data_dir))
        .with_context(|| format!("preparing the {task_type} suite"))?;
    let seeds: Vec<u64> = (0..tasks.len()).map(|i| suite.eval_seed(i)).collect();
    let started = Instant::now();
    let scored = score_on_suite(&program, &tasks, &seeds);
    let seconds = started.elapsed().as_secs_f64();
    // JSON has no infinities: non-finite scores take the one form of `score_json`.
    if args.json {
        let mut out = serde_json::json!({
            "per_task": scored.per_task.iter().map(|&v| score_json::value(v)).collect::<Vec<_>>(),
            "task_ids": suite.tasks.iter().map(|t| t.task_id).collect::<Vec<_>>(),
            "task_type": task_type.as_str(),
            "tasks": tasks.len(),
            "task_seed": args.seed,
            "input_dim": args.input_dim,
            "rng_version": crate::rng::RNG_VERSION,
            "seconds": seconds,
        });
        score_json::put_in(&mut out, "score", scored.score);
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
