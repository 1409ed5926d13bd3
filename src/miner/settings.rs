//! Mining settings: `appliance.toml` `[miner]`, overridden by a reference-format
//! `problem_config.json` (its `args` section, then its `mining` section), overridden by
//! the start request (CLI / dashboard / API).
//!
//! Every key of the reference example is either honoured or rejected with a message
//! naming it; unknown keys are errors. `null` means "no override", as in the reference.

use super::recipe::{recipe, NextStage, Search};
use crate::config::Config;
use crate::engine::{Mutation, Profile};
use crate::tasks::TaskType;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// What a mining run does.
#[derive(Clone, Debug, PartialEq)]
pub struct MinerSettings {
    /// `scalar_linear`, `mnist_binary`, `cifar10_binary`, `pool` or `pool_lease`.
    pub task_type: String,
    /// `baseline` or `archive`.
    pub engine: String,
    pub workers: usize,
    pub seed: u64,
    pub input_dim: usize,
    pub miner_task_count: usize,
    pub miner_task_seed: u64,
    /// Miner-suite example counts (`None` = the task type's [`Recipe`]).
    pub train_examples: Option<usize>,
    pub val_examples: Option<usize>,
    pub validator_task_count: usize,
    pub validator_task_seed: u64,
    /// The validators' `validator_hyperparams.json` (their task sizes and seed).
    pub validator_hyperparams: Option<PathBuf>,
    pub validate_every: u64,
    pub checkpoint_generations: u64,
    pub submission_cooldown_seconds: u64,
    pub sota_refresh_s: u64,
    /// Search settings the configuration left unset come from the task type's [`Recipe`]
    /// (see [`MinerSettings::search`]).
    pub pop_size: Option<usize>,
    pub tournament_size: Option<usize>,
    pub profile: Option<String>,
    pub mutations: Option<Vec<Mutation>>,
    pub restart_children: Option<u64>,
    pub stagnation_children: Option<u64>,
    pub stage_children: Option<u64>,
    pub max_example_work: Option<u64>,
    /// Start from the relay's current SOTA program instead of the recipe's first
    /// population (when the relay has one for this task type).
    pub start_from_sota: bool,
    pub mutation_prob: f64,
    /// Archive engine: archive capacity.
    pub archive_size: Option<usize>,
    pub migration_generations: u64,
    /// Functional-equivalence cache entries per worker (`None` = the recipe's).
    pub fec_cache_size: Option<usize>,
    pub fec_train_examples: Option<usize>,
    pub fec_valid_examples: Option<usize>,
    /// Stop each worker after this many children (`args.iterations`; none = until stopped).
    pub max_generations: Option<u64>,
    /// Log every improvement of a worker, not only verified candidates.
    pub verbose: bool,
}

/// Mining fields of a start request; `None` = keep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub task_type: Option<String>,
    pub engine: Option<String>,
    pub workers: Option<usize>,
    pub seed: Option<u64>,
    pub start_from_sota: Option<bool>,
}

pub const TASK_TYPES: [&str; 5] = [
    "scalar_linear",
    "mnist_binary",
    "cifar10_binary",
    "pool",
    "pool_lease",
];
pub const ENGINES: [&str; 2] = ["baseline", "archive"];

/// Check the configuration's miner search keys against the recipe they complete: the
/// part of the configuration that only the miner can judge. Called where a daemon or a
/// mining command starts, next to `Config::validate`.
pub fn check_config(config: &Config) -> Result<(), crate::config::ConfigError> {
    MinerSettings::from_config(config)
        .validate()
        .map_err(|e| crate::config::ConfigError(format!("config: miner: {e}")))
}

impl MinerSettings {
    /// `[miner]` of the appliance configuration (a missing seed comes from the clock).
    pub fn from_config(config: &Config) -> Self {
        let m = &config.miner;
        let workers = if m.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            m.workers
        };
        MinerSettings {
            task_type: m.task_type.clone(),
            engine: m.engine.clone(),
            workers,
            seed: m.seed.unwrap_or_else(clock_seed),
            input_dim: m.input_dim,
            miner_task_count: m.miner_task_count,
            miner_task_seed: m.miner_task_seed,
            train_examples: m.train_examples,
            val_examples: m.val_examples,
            validator_task_count: m.validator_task_count,
            validator_task_seed: config.validator.task_seed,
            validator_hyperparams: config.validator.hyperparams_file.clone(),
            validate_every: m.validate_every.max(1),
            checkpoint_generations: m.checkpoint_generations.max(1),
            submission_cooldown_seconds: m.submission_cooldown_seconds,
            sota_refresh_s: m.sota_refresh_s.max(1),
            pop_size: m.pop_size,
            tournament_size: m.tournament_size,
            profile: m.profile.clone(),
            mutations: m.mutations.clone(),
            restart_children: m.restart_children,
            stagnation_children: m.stagnation_children,
            stage_children: m.stage_children,
            max_example_work: m.max_example_work,
            start_from_sota: m.start_from_sota,
            mutation_prob: m.mutation_prob,
            archive_size: None,
            migration_generations: m.migration_generations,
            fec_cache_size: m.fec_cache_size,
            fec_train_examples: None,
            fec_valid_examples: None,
            max_generations: None,
            verbose: false,
        }
    }

    /// The full resolution: config, then the problem config file (if any), then the
    /// request's overrides; then validated.
    pub fn resolve(
        config: &Config,
        problem_config: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Self, String> {
        let mut s = Self::from_config(config);
        if let Some(path) = problem_config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("problem_config {}: {e}", path.display()))?;
            s.apply_problem_config(&text)
                .map_err(|e| format!("problem_config {}: {e}", path.display()))?;
        }
        if let Some(t) = &overrides.task_type {
            s.task_type = t.clone();
        }
        if let Some(e) = &overrides.engine {
            s.engine = e.clone();
        }
        if let Some(w) = overrides.workers {
            s.workers = w;
        }
        if let Some(seed) = overrides.seed {
            s.seed = seed;
        }
        if let Some(b) = overrides.start_from_sota {
            s.start_from_sota = b;
        }
        s.validate()?;
        Ok(s)
    }

    /// The run's search: the task type's [`Recipe`](super::recipe) with every key the
    /// configuration set explicitly in its place. (Pool mining: the recipe of
    /// `scalar_linear`, which the pool's own evolutions do not use.)
    pub fn search(&self) -> Result<Search, String> {
        let task = if self.is_pool() {
            TaskType::ScalarLinear
        } else {
            self.task()?
        };
        let r = recipe(task);
        Ok(Search {
            profile: self.profile.clone().unwrap_or(r.profile),
            pop_size: self.pop_size.unwrap_or(r.pop_size),
            tournament_size: self.tournament_size.unwrap_or(r.tournament_size),
            mutations: self.mutations.clone().unwrap_or(r.mutations),
            train_examples: self.train_examples.or(r.train_examples),
            val_examples: self.val_examples.or(r.val_examples),
            restart_children: self.restart_children.unwrap_or(r.restart_children),
            stagnation_children: self.stagnation_children.unwrap_or(r.stagnation_children),
            max_example_work: self.max_example_work.unwrap_or(r.max_example_work),
            fec_cache_size: self.fec_cache_size.unwrap_or(r.fec_cache_size),
            // A profile set explicitly is searched alone.
            then: match (&self.profile, self.stage_children) {
                (Some(_), _) | (None, Some(0)) => None,
                (None, Some(n)) => r.then.map(|t| NextStage {
                    after_children: n,
                    ..t
                }),
                (None, None) => r.then,
            },
            ..r
        })
    }

    /// Is this pool mining (driven by the pool coordinator, not the local engine)?
    pub fn is_pool(&self) -> bool {
        matches!(self.task_type.as_str(), "pool" | "pool_lease")
    }

    /// The task type of local mining.
    pub fn task(&self) -> Result<TaskType, String> {
        self.task_type
            .parse::<TaskType>()
            .map_err(|e| e.to_string())
    }

    /// Ranges and names.
    pub fn validate(&self) -> Result<(), String> {
        if !TASK_TYPES.contains(&self.task_type.as_str()) {
            return Err(format!(
                "unknown task type {:?} (known: {})",
                self.task_type,
                TASK_TYPES.join(", ")
            ));
        }
        if !ENGINES.contains(&self.engine.as_str()) {
            return Err(format!(
                "unknown engine {:?} (known: {})",
                self.engine,
                ENGINES.join(", ")
            ));
        }
        let search = self.search()?;
        let positive = [
            ("workers", self.workers),
            ("input_dim", self.input_dim),
            ("miner_task_count", self.miner_task_count),
            ("validator_task_count", self.validator_task_count),
            ("pop_size", search.pop_size),
            ("tournament_size", search.tournament_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.workers > 256 {
            return Err("workers must be at most 256".into());
        }
        if search.tournament_size > search.pop_size {
            return Err(format!(
                "tournament_size ({}) must not exceed pop_size ({})",
                search.tournament_size, search.pop_size
            ));
        }
        if Profile::builtin(&search.profile).is_none() {
            return Err(format!(
                "unknown profile {:?} (known: {})",
                search.profile,
                Profile::NAMES.join(", ")
            ));
        }
        if search.mutations.is_empty() {
            return Err("mutations must not be empty".into());
        }
        if !(0.0..=1.0).contains(&self.mutation_prob) {
            return Err("mutation_prob must be within 0..=1".into());
        }
        Ok(())
    }

    /// Apply a reference `problem_config.json`: `args` first, then `mining` (the GUI's
    /// section, which the daemon replaces), then `env`. Keys starting with `_` are notes.
    pub fn apply_problem_config(&mut self, text: &str) -> Result<(), String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let root = root.as_object().ok_or("the top level must be an object")?;
        for key in root.keys() {
            if !key.starts_with('_') && !["mining", "args", "env"].contains(&key.as_str()) {
                return Err(format!("{key}: unknown section (known: mining, args, env)"));
            }
        }
        if let Some(args) = section(root, "args")? {
            for (k, v) in args {
                self.apply_key("args", k, v)?;
            }
        }
        if let Some(mining) = section(root, "mining")? {
            for (k, v) in mining {
                if v.is_null() && (k == "engine_params" || k == "env") {
                    continue;
                }
                if k == "engine_params" {
                    let params = v
                        .as_object()
                        .ok_or("mining.engine_params: must be an object")?;
                    for (pk, pv) in params {
                        self.apply_key("mining.engine_params", pk, pv)?;
                    }
                } else if k == "env" {
                    self.apply_env("mining.env", v)?;
                } else {
                    self.apply_key("mining", k, v)?;
                }
            }
        }
        if let Some(env) = root.get("env") {
            self.apply_env("env", env)?;
        }
        Ok(())
    }

    fn apply_key(&mut self, at: &str, key: &str, v: &Value) -> Result<(), String> {
        let name = format!("{at}.{key}");
        if key.starts_with('_') || v.is_null() {
            return known_key(&name, key);
        }
        match key {
            "engine" | "engine_type" => self.engine = string(&name, v)?,
            "task_type" => self.task_type = string(&name, v)?,
            "workers" => self.workers = uint(&name, v)? as usize,
            "seed" => self.seed = uint(&name, v)?,
            "iterations" => self.max_generations = Some(uint(&name, v)?),
            "checkpoint_generations" | "log_every" => {
                self.checkpoint_generations = uint(&name, v)?.max(1)
            }
            "miner_task_count" => self.miner_task_count = uint(&name, v)? as usize,
            "validator_task_count" => self.validator_task_count = uint(&name, v)? as usize,
            "validate_every"
            | "validate_every_n_generations"
            | "miner_validate_every_n_generations" => self.validate_every = uint(&name, v)?.max(1),
            "train_examples" => self.train_examples = Some(positive(&name, v)?),
            "val_examples" => self.val_examples = Some(positive(&name, v)?),
            "feature_dim" => self.input_dim = positive(&name, v)?,
            "fec_cache_size" => self.fec_cache_size = Some(uint(&name, v)? as usize),
            "fec_train_examples" => self.fec_train_examples = Some(positive(&name, v)?),
            "fec_valid_examples" => self.fec_valid_examples = Some(positive(&name, v)?),
            "pop_size" => self.pop_size = Some(positive(&name, v)?),
            "tournament_size" => self.tournament_size = Some(positive(&name, v)?),
            "archive_size" => self.archive_size = Some(positive(&name, v)?),
            "mutation_prob" => {
                self.mutation_prob = v
                    .as_f64()
                    .ok_or_else(|| format!("{name}: must be a number"))?
            }
            "verbose" => {
                self.verbose = v
                    .as_bool()
                    .ok_or_else(|| format!("{name}: must be true or false"))?
            }
            "fec_forget_every" if v.as_u64() == Some(0) => {}
            "fec_forget_every" => {
                return Err(format!(
                    "{name}: not supported (the FEC is an LRU; only 0 or null is accepted)"
                ))
            }
            _ if UNSUPPORTED_SHAPE.contains(&key) => {
                return Err(format!(
                    "{name}: not supported: program shapes come from the engine's profile \
                     for the task type (use null)"
                ))
            }
            "cifar_seed" => {
                return Err(format!(
                    "{name}: not supported: CIFAR tasks derive from the suite seeds (use null)"
                ))
            }
            _ => return Err(format!("{name}: unknown key")),
        }
        Ok(())
    }

    /// The reference miner's environment variables that steer mining.
    fn apply_env(&mut self, at: &str, env: &Value) -> Result<(), String> {
        let env = env
            .as_object()
            .ok_or_else(|| format!("{at}: must be an object"))?;
        for (k, v) in env {
            let name = format!("{at}.{k}");
            let n = match v {
                Value::Number(_) => uint(&name, v)?,
                Value::String(s) => s
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name}: must be a non-negative integer"))?,
                _ => return Err(format!("{name}: must be a non-negative integer")),
            };
            match k.as_str() {
                "MINER_SUBMISSION_COOLDOWN_SECONDS" => self.submission_cooldown_seconds = n,
                "MINER_SOTA_CACHE_SECONDS" => self.sota_refresh_s = n.max(1),
                "MINER_VALIDATE_EVERY_N_GENERATIONS" => self.validate_every = n.max(1),
                "MINER_TASK_COUNT" => self.miner_task_count = n as usize,
                "MINER_TASK_SEED" => self.miner_task_seed = n,
                "MINER_FEC_CACHE_SIZE" => self.fec_cache_size = Some(n as usize),
                "MINER_FEC_TRAIN_EXAMPLES" => self.fec_train_examples = Some(n as usize),
                "MINER_FEC_VALID_EXAMPLES" => self.fec_valid_examples = Some(n as usize),
                "VALIDATOR_TASK_SEED" => self.validator_task_seed = n,
                _ => return Err(format!("{name}: unknown or unsupported variable")),
            }
        }
        Ok(())
    }
}

/// Program-shape keys of the reference; accepted only as `null`.
const UNSUPPORTED_SHAPE: [&str; 11] = [
    "vector_dim",
    "setup_max_ops",
    "predict_max_ops",
    "learn_max_ops",
    "scalar_regs",
    "vector_regs",
    "matrix_regs",
    "scalar_count",
    "vector_count",
    "matrix_count",
    "phase_max_sizes",
];

/// `null` is accepted for every key this module knows.
fn known_key(name: &str, key: &str) -> Result<(), String> {
    const KNOWN: [&str; 26] = [
        "engine",
        "engine_type",
        "task_type",
        "workers",
        "seed",
        "iterations",
        "checkpoint_generations",
        "log_every",
        "miner_task_count",
        "validator_task_count",
        "validate_every",
        "validate_every_n_generations",
        "miner_validate_every_n_generations",
        "train_examples",
        "val_examples",
        "feature_dim",
        "fec_cache_size",
        "fec_train_examples",
        "fec_valid_examples",
        "fec_forget_every",
        "pop_size",
        "tournament_size",
        "archive_size",
        "mutation_prob",
        "verbose",
        "cifar_seed",
    ];
    if key.starts_with('_') || KNOWN.contains(&key) || UNSUPPORTED_SHAPE.contains(&key) {
        Ok(())
    } else {
        Err(format!("{name}: unknown key"))
    }
}

fn section<'a>(
    root: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match root.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(format!("{name}: must be an object")),
    }
}

fn string(name: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(|s| s.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("{name}: must be a string"))
}

fn uint(name: &str, v: &Value) -> Result<u64, String> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("{name}: must be a non-negative integer"))
}

fn positive(name: &str, v: &Value) -> Result<usize, String> {
    match uint(name, v)? {
        0 => Err(format!("{name}: must be at least 1")),
        n => Ok(n as usize),
    }
}

/// A run seed from the clock, for runs that did not ask for one.
fn clock_seed() -> u64 {
    crate::clock::now_us() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's `problem_config.json.example`, verbatim in shape.
    const REFERENCE_EXAMPLE: &str = r#"{
      "_notes": {"gui": "uses the mining section"},
      "mining": {
        "engine": "baseline", "checkpoint_generations": 10,
        "miner_task_count": 10, "validator_task_count": 100, "validate_every": 1000,
        "train_examples": null, "val_examples": null, "feature_dim": null,
        "fec_cache_size": 0,
        "engine_params": {"pop_size": 100, "tournament_size": 10, "mutation_prob": 0.9}
      },
      "args": {
        "workers": 1, "iterations": 1000, "validate_every": 1000, "pop_size": 100,
        "tournament_size": 10, "mutation_prob": 0.9, "engine": "archive",
        "task_type": "cifar10_binary", "seed": null, "miner_task_count": 3,
        "validator_task_count": null, "fec_cache_size": 0, "train_examples": null,
        "val_examples": null, "feature_dim": null, "vector_dim": null,
        "setup_max_ops": null, "predict_max_ops": null, "learn_max_ops": null,
        "scalar_regs": null, "vector_regs": null, "matrix_regs": null,
        "log_every": 10, "verbose": false
      },
      "env": {"MINER_SUBMISSION_COOLDOWN_SECONDS": 60}
    }"#;

    fn base() -> MinerSettings {
        MinerSettings::from_config(&Config::default())
    }

    #[test]
    fn reference_example_applies_mining_over_args() {
        let mut s = base();
        s.apply_problem_config(REFERENCE_EXAMPLE).unwrap();
        assert_eq!(s.engine, "baseline"); // mining wins over args
        assert_eq!(s.task_type, "cifar10_binary"); // only args names it
        assert_eq!(s.miner_task_count, 10);
        assert_eq!(s.checkpoint_generations, 10);
        assert_eq!(s.validate_every, 1000);
        assert_eq!(s.max_generations, Some(1000));
        assert_eq!(s.submission_cooldown_seconds, 60);
        s.validate().unwrap();
    }

    #[test]
    fn unknown_and_unsupported_keys_are_named() {
        let mut s = base();
        let e = s
            .apply_problem_config(r#"{"mining": {"pop_sise": 3}}"#)
            .unwrap_err();
        assert_eq!(e, "mining.pop_sise: unknown key");
        let e = s
            .apply_problem_config(r#"{"args": {"vector_dim": 8}}"#)
            .unwrap_err();
        assert!(e.starts_with("args.vector_dim: not supported"), "{e}");
        let e = s
            .apply_problem_config(r#"{"env": {"MINER_GENE_DUMP_EVERY": 5}}"#)
            .unwrap_err();
        assert!(e.starts_with("env.MINER_GENE_DUMP_EVERY"), "{e}");
        assert!(s.apply_problem_config(r#"{"minning": {}}"#).is_err());
        assert!(s.apply_problem_config("not json").is_err());
    }

    #[test]
    fn unset_search_keys_come_from_the_task_types_recipe() {
        let mut cfg = Config::default();
        let s = MinerSettings::from_config(&cfg);
        assert_eq!(
            s.search().unwrap(),
            recipe(TaskType::ScalarLinear),
            "nothing set: the recipe"
        );
        cfg.miner.task_type = "cifar10_binary".into();
        cfg.miner.tournament_size = Some(3);
        cfg.miner.mutations = Some(vec![Mutation::Insert]);
        let search = MinerSettings::from_config(&cfg).search().unwrap();
        assert_eq!(
            (search.profile.as_str(), search.pop_size),
            ("az_classify", 1000)
        );
        assert_eq!(search.tournament_size, 3);
        assert_eq!(search.mutations, vec![Mutation::Insert]);
        assert_eq!(search.stagnation_children, 300_000, "the image recipe's");
        // Image miners score on the validators' example counts: a smaller validation
        // set gets overfitted by the search.
        assert_eq!((search.train_examples, search.val_examples), (None, None));
        // Set, it wins; 0 turns the start-over off in the engine's terms.
        for (set, engine) in [(5, Some(5)), (0, None)] {
            cfg.miner.stagnation_children = Some(set);
            let s = MinerSettings::from_config(&cfg);
            assert_eq!(s.search().unwrap().stagnation_children, set);
            let run = crate::miner::search::evolution_config(&s, None).unwrap();
            assert_eq!(run.stagnation_children, engine);
        }
        cfg.miner.stagnation_children = None;
        // The image recipe is staged; stage_children moves the switch (0 = first space
        // only), and a profile set explicitly is searched alone.
        let then = |cfg: &Config| MinerSettings::from_config(cfg).search().unwrap().then;
        assert_eq!(then(&cfg), recipe(TaskType::Cifar10Binary).then);
        cfg.miner.stage_children = Some(7);
        assert_eq!(
            then(&cfg).map(|t| (t.profile, t.after_children)),
            Some(("az_bilinear".into(), 7))
        );
        cfg.miner.stage_children = Some(0);
        assert_eq!(then(&cfg), None);
        cfg.miner.stage_children = None;
        cfg.miner.profile = Some("az_classify".into());
        assert_eq!(then(&cfg), None);
        cfg.miner.profile = None;
        // A run given a program to start from searches the last space, the program
        // adopted into it.
        let start = crate::engine::parse_program("# predict\ns0 = s2 + s3\n").unwrap();
        let run =
            crate::miner::search::evolution_config(&MinerSettings::from_config(&cfg), Some(start))
                .unwrap();
        assert_eq!(
            run.profile,
            crate::engine::ProfileChoice::Named("az_bilinear".into())
        );
        let adopted = run.start_program.unwrap();
        assert_eq!((adopted.predict.len(), adopted.meta.matrix_count), (6, 2));
        // The image recipe's FEC is on; an explicit 0 (the reference example's value)
        // turns it off.
        let fec = |s: &MinerSettings| {
            crate::miner::search::evolution_config(s, None)
                .unwrap()
                .fec_cache_size
        };
        assert_eq!(fec(&MinerSettings::from_config(&cfg)), 100_000);
        let mut s = MinerSettings::from_config(&cfg);
        s.apply_problem_config(REFERENCE_EXAMPLE).unwrap();
        assert_eq!(fec(&s), 0, "set to 0 by the problem config");
        // A problem config's engine_params count as set, too.
        let mut s = MinerSettings::from_config(&cfg);
        s.apply_problem_config(r#"{"mining": {"engine_params": {"pop_size": 7}}}"#)
            .unwrap();
        assert_eq!(s.search().unwrap().pop_size, 7);
        // Checked together: a tournament larger than the recipe's population is refused.
        cfg.miner.tournament_size = Some(1500);
        let e = MinerSettings::from_config(&cfg).validate().unwrap_err();
        assert!(e.contains("must not exceed pop_size (1000)"), "{e}");
        cfg.miner.tournament_size = None;
        cfg.miner.profile = Some("tiny".into());
        let e = MinerSettings::from_config(&cfg).validate().unwrap_err();
        assert!(e.starts_with("unknown profile"), "{e}");
    }

    #[test]
    fn request_overrides_win_and_are_validated() {
        let cfg = Config::default();
        let o = Overrides {
            task_type: Some("scalar_linear".into()),
            workers: Some(3),
            seed: Some(9),
            ..Default::default()
        };
        let s = MinerSettings::resolve(&cfg, None, &o).unwrap();
        assert_eq!((s.workers, s.seed), (3, 9));
        let bad = Overrides {
            engine: Some("turbo".into()),
            ..Default::default()
        };
        assert!(MinerSettings::resolve(&cfg, None, &bad)
            .unwrap_err()
            .contains("unknown engine"));
    }
}
