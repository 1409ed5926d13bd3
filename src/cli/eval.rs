//! `bitsota eval`: score a DSL program on the validator suite, exactly as a validator
//! would (median over tasks, non-finite scores included), after the same evaluation
//! budget check (`engine::cost`, default `[budget]`): a program validators would count
//! invalid is refused with the limit named, unless `--ignore-budget`.

use super::UsageError;
use crate::config::BudgetConfig;
use crate::engine::{cost, parse_program, score_on_suite, Examples};
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
    /// Evaluate even a program over the evaluation budget (validators would count it
    /// invalid without running it).
    #[arg(long)]
    pub ignore_budget: bool,
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
    let examples = tasks
        .first()
        .map_or(Examples { train: 0, val: 0 }, |t| Examples {
            train: t.train_len(),
            val: t.val_len(),
        });
    let limits = BudgetConfig::default().limits(task_type);
    let cost = match cost::check(&program, task_type, args.input_dim, examples, &limits) {
        Ok(cost) => Some(cost),
        Err(e) if args.ignore_budget => {
            eprintln!("warning: validators would count this program invalid: {e}");
            None
        }
        Err(e) => {
            return Err(UsageError(format!(
                "{}: validators would count this program invalid without running it: {e} \
                 (--ignore-budget evaluates it anyway)",
                args.dsl.display()
            ))
            .into())
        }
    };
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
            "cost_per_task": cost,
            "budget_per_task": limits.budget,
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
        if let Some(cost) = cost {
            println!(
                "cost {cost} units per task (budget {} for {task_type})",
                limits.budget
            );
        }
    }
    Ok(())
}
