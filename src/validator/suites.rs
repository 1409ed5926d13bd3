//! Re-evaluation: strict parsing of a submitted `algorithm_result`, the validator suites
//! (prepared once per task type and input dimension, shared by every validator of the
//! process) and the deterministic score (engine.md §2, §4.1).

use crate::config::{BudgetConfig, ValidatorConfig};
use crate::engine::{cost, parse_program, score_on_suite, score_on_suite_within, Program};
use crate::engine::{Halted, OverBudget, Stop};
use crate::tasks::hyperparams::SuiteConfig;
use crate::tasks::suite::SuiteSpec;
use crate::tasks::MAX_INPUT_DIM;
use crate::tasks::{prepare_suite_until, DataConfig, Task, TaskType};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;

/// Prepared suites kept in memory (distinct task type / input dimension pairs).
const SUITES_KEPT: usize = 4;

/// A suite is identified by its task type and input dimension.
type SuiteKey = (TaskType, usize);

/// A submission's program and where it is to be scored.
#[derive(Clone, Debug)]
pub struct Algorithm {
    pub program: Program,
    pub task_type: TaskType,
    pub input_dim: usize,
}

/// The tasks of one validator suite and their evaluation seeds.
pub struct PreparedSuite {
    pub tasks: Vec<Arc<Task>>,
    pub seeds: Vec<u64>,
}

impl PreparedSuite {
    /// The validator score of `program`: median over the suite, non-finite task scores
    /// included; bit-identical on every machine (engine.md §2).
    pub fn score(&self, program: &Program) -> f64 {
        score_on_suite(program, &self.tasks, &self.seeds).score as f64
    }

    /// [`Self::score`] for a submission: gives up between examples once `stop` is due
    /// (the wall-clock deadline, or shutdown). A finished evaluation's score is the same.
    pub fn score_within(&self, program: &Program, stop: &Stop) -> Result<f64, Halted> {
        score_on_suite_within(program, &self.tasks, &self.seeds, stop).map(|s| s.score as f64)
    }
}

/// The validator suites of one process.
pub struct Suites {
    config: SuiteConfig,
    data: DataConfig,
    budget: BudgetConfig,
    /// Least recently used first.
    cache: Mutex<Vec<(SuiteKey, Arc<PreparedSuite>)>>,
}

impl Suites {
    /// Suites from `[validator]`: `task_count`/`task_seed`, or the reference
    /// `validator_hyperparams.json` named by `hyperparams_file` (which then also gives the
    /// default task type, input dimension and task sizes).
    pub fn from_config(cfg: &ValidatorConfig, data_dir: &Path) -> Result<Self, String> {
        let config = match &cfg.hyperparams_file {
            Some(path) => SuiteConfig::from_file(path).map_err(|e| e.to_string())?,
            None => SuiteConfig {
                task_count: cfg.task_count,
                task_seed: cfg.task_seed,
                ..SuiteConfig::default()
            },
        };
        let data = config.data_config(data_dir);
        Ok(Suites {
            config,
            data,
            budget: BudgetConfig::default(),
            cache: Mutex::new(Vec::new()),
        })
    }

    /// These suites with the evaluation budget `budget` instead of the default.
    pub fn with_budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = budget;
        self
    }

    /// Whether `alg` fits the evaluation budget of its task type on these suites' task
    /// sizes (`engine::cost`); checked before any evaluation, in milliseconds. `Ok`
    /// carries the estimated cost per task.
    pub fn check_budget(&self, alg: &Algorithm) -> Result<u64, OverBudget> {
        cost::check(
            &alg.program,
            alg.task_type,
            alg.input_dim,
            self.config.tasks.examples(alg.task_type),
            &self.budget.limits(alg.task_type),
        )
    }

    /// The wall-clock limit of one evaluation.
    pub fn deadline(&self) -> std::time::Duration {
        self.budget.deadline()
    }

    /// Parse `algorithm_result` (JSON text of an object) strictly: `algorithm_dsl` must
    /// parse, `task_type` (default from the suite config) must be known and `input_dim`
    /// (default likewise) an integer in `1..=MAX_INPUT_DIM`.
    pub fn parse(&self, algorithm_result: &str) -> Result<Algorithm, String> {
        let value: serde_json::Value = serde_json::from_str(algorithm_result)
            .map_err(|e| format!("algorithm_result is not JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or("algorithm_result is not a JSON object")?;
        let dsl = match obj.get("algorithm_dsl") {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return Err("algorithm_dsl is not a string".into()),
            None => return Err("missing algorithm_dsl".into()),
        };
        let program = parse_program(dsl).map_err(|e| format!("algorithm_dsl: {e}"))?;
        let task_type = match obj.get("task_type") {
            None | Some(serde_json::Value::Null) => self.config.default_task_type,
            Some(serde_json::Value::String(s)) => s.parse().map_err(|e| format!("{e}"))?,
            Some(_) => return Err("task_type is not a string".into()),
        };
        let input_dim = match obj.get("input_dim") {
            None | Some(serde_json::Value::Null) => self.config.default_input_dim,
            Some(v) => v
                .as_u64()
                .filter(|d| (1..=MAX_INPUT_DIM as u64).contains(d))
                .ok_or_else(|| format!("input_dim must be an integer in 1..={MAX_INPUT_DIM}"))?
                as usize,
        };
        Ok(Algorithm {
            program,
            task_type,
            input_dim,
        })
    }

    /// The prepared suite for `(task_type, input_dim)`, built on first use. Call it from a
    /// plain thread, never from inside a rayon task: preparation runs on rayon and holds
    /// the cache lock, so that two validators never prepare the same suite twice. Gives up
    /// between tasks once `cancelled` says so (shutdown); a suite left half-prepared is
    /// not kept.
    pub fn prepared(
        &self,
        task_type: TaskType,
        input_dim: usize,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Arc<PreparedSuite>, String> {
        let key = (task_type, input_dim);
        let mut cache = self.cache.lock();
        if let Some(pos) = cache.iter().position(|(k, _)| *k == key) {
            let entry = cache.remove(pos);
            let suite = entry.1.clone();
            cache.push(entry);
            return Ok(suite);
        }
        let spec = SuiteSpec::new(
            task_type,
            input_dim,
            self.config.task_count,
            self.config.task_seed,
        );
        let tasks = prepare_suite_until(&spec, &self.data, cancelled).map_err(|e| e.to_string())?;
        let seeds = (0..spec.tasks.len()).map(|i| spec.eval_seed(i)).collect();
        let suite = Arc::new(PreparedSuite { tasks, seeds });
        if cache.len() >= SUITES_KEPT {
            cache.remove(0);
        }
        cache.push((key, suite.clone()));
        Ok(suite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's dialect-A example: online linear regression by gradient steps.
    const LINEAR: &str = "# setup\ns2 = 0.009999999776482582\nv1 = gaussian(0.0, 0.10000000149011612)\n\
        # predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";

    fn suites(dir: &Path, task_count: usize) -> Suites {
        let cfg = ValidatorConfig {
            task_count,
            ..ValidatorConfig::default()
        };
        Suites::from_config(&cfg, dir).unwrap()
    }

    fn result(dsl: &str, extra: serde_json::Value) -> String {
        let mut obj = serde_json::json!({ "algorithm_dsl": dsl });
        obj.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        obj.to_string()
    }

    #[test]
    fn parsing_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let s = suites(dir.path(), 2);
        let ok = s
            .parse(&result(
                LINEAR,
                serde_json::json!({"task_type": "scalar_linear", "input_dim": 4}),
            ))
            .unwrap();
        assert_eq!((ok.task_type, ok.input_dim), (TaskType::ScalarLinear, 4));
        // Defaults: the reference's cifar10_binary, 16 features.
        let d = s.parse(&result(LINEAR, serde_json::json!({}))).unwrap();
        assert_eq!((d.task_type, d.input_dim), (TaskType::Cifar10Binary, 16));
        for bad in [
            result("s0 = frobnicate(v0)", serde_json::json!({})),
            result(LINEAR, serde_json::json!({"task_type": "imagenet"})),
            result(LINEAR, serde_json::json!({"input_dim": 0})),
            result(LINEAR, serde_json::json!({"input_dim": 1000})),
            result(LINEAR, serde_json::json!({"input_dim": 4.5})),
            "{\"algorithm_dsl\": 3}".into(),
            "{}".into(),
            "[1]".into(),
            "not json".into(),
        ] {
            assert!(s.parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scores_are_deterministic_and_meaningful() {
        let dir = tempfile::tempdir().unwrap();
        let a = suites(dir.path(), 3);
        let b = suites(dir.path(), 3);
        let alg = a
            .parse(&result(
                LINEAR,
                serde_json::json!({"task_type": "scalar_linear", "input_dim": 4}),
            ))
            .unwrap();
        let sa = a.prepared(TaskType::ScalarLinear, 4, &|| false).unwrap();
        let sb = b.prepared(TaskType::ScalarLinear, 4, &|| false).unwrap();
        assert_eq!(sa.tasks.len(), 3);
        let (x, y) = (sa.score(&alg.program), sb.score(&alg.program));
        assert_eq!(
            x.to_bits(),
            y.to_bits(),
            "same program, same suite, same bits"
        );
        // Learning the linear map scores far above an empty predictor.
        let empty = a
            .parse(&result("# predict\ns0 = s0 + s0\n", serde_json::json!({})))
            .unwrap();
        assert!(x > sa.score(&empty.program) + 0.1, "{x}");
        // The second lookup is the cached suite.
        assert!(Arc::ptr_eq(
            &sa,
            &a.prepared(TaskType::ScalarLinear, 4, &|| false).unwrap()
        ));
    }

    #[test]
    fn missing_dataset_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let err = suites(dir.path(), 2)
            .prepared(TaskType::Cifar10Binary, 16, &|| false)
            .err()
            .expect("no CIFAR-10 files in an empty data directory");
        assert!(err.to_lowercase().contains("cifar"), "{err}");
    }

    #[test]
    fn hyperparams_file_sets_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator_hyperparams.json");
        std::fs::write(
            &path,
            r#"{"task_count": 3, "task_seed": 7, "default_task_type": "scalar_linear",
                "default_input_dim": 4, "tasks": {"scalar_linear": {"train_samples": 50, "val_samples": 40}}}"#,
        )
        .unwrap();
        let cfg = ValidatorConfig {
            hyperparams_file: Some(path.clone()),
            ..ValidatorConfig::default()
        };
        let s = Suites::from_config(&cfg, dir.path()).unwrap();
        let alg = s.parse(&result(LINEAR, serde_json::json!({}))).unwrap();
        assert_eq!((alg.task_type, alg.input_dim), (TaskType::ScalarLinear, 4));
        let suite = s.prepared(TaskType::ScalarLinear, 4, &|| false).unwrap();
        assert_eq!(suite.tasks.len(), 3);
        assert_eq!(
            (suite.tasks[0].train_len(), suite.tasks[0].val_len()),
            (50, 40)
        );
        std::fs::write(&path, r#"{"task_count": 3, "tasks": {"imagenet": {}}}"#).unwrap();
        let err = Suites::from_config(&cfg, dir.path()).err().unwrap();
        assert!(err.contains("imagenet"), "{err}");
    }
}
