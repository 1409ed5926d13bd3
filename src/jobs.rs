//! Pool jobs (pool.md §4, sidecar-miner.md §3): the JSON a coordinator enqueues into a
//! sidecar (`POST /jobs/enqueue {"run_id","job_id","kind","payload"}`) and the result a
//! worker posts back (`POST /jobs/{id}/result {"status":"ok","result":…}`), and
//! [`Jobs::execute`], which both the in-process worker threads and `bitsota worker` run.
//!
//! Kinds and shapes (all scores are numbers, or `null` when non-finite). The payloads are
//! the reference driver's (`algorithms`, `evaluate_algorithms`, `seed_algorithms`,
//! `input_dim`, string ids) plus optional fields of ours; what the reference leaves out
//! falls back to the shipped defaults, so a reference driver's jobs run here and ours run
//! on the reference worker.
//! - `evaluate`: payload [`EvaluatePayload`] `{suite?, algorithms:[{id, algorithm_dsl}]}`
//!   → [`EvaluateResult`] `{evaluations:[{algorithm_id, score}]}`; each program is scored
//!   with the validator rule (median of per-task scores) on the suite. Programs are
//!   strangers' code: one over the evaluation budget (`engine::cost`, the daemon's
//!   `[budget]`) or past the deadline is invalid and scores `null`, like one that
//!   diverges, without being run (budget) or run to the end (deadline).
//! - `evolve`: payload [`EvolvePayload`] `{suite?, algorithms:[{id, algorithm_dsl}],
//!   budget?, seed?, pop_size?}` → [`EvolveResult`] `{evolved_function, parent_ids,
//!   fitness, children}`: regularized evolution seeded with the parents for `budget`
//!   children on the (miner) suite; the result is the fittest child that differs from
//!   every parent.
//! - `lease`: payload [`LeasePayload`] `{lease_id, eval_suite?, evolve_suite?,
//!   evaluate_algorithms, seed_algorithms, evolve_budget, seed?, pop_size?}` →
//!   [`LeaseResult`] `{evaluations, evolutions:[{parent_algorithm_ids, algorithm_dsl}],
//!   iterations}`: both of the above.

use crate::config::BudgetConfig;
use crate::engine::{self, cost, EvolutionConfig, Evolver, Examples, Member, Program, Stop};
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{prepare_suite, DataConfig, Task, TaskType};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Why a job could not run (posted back as the job's `error`).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown job kind '{0}' (known: evolve, evaluate, lease)")]
    UnknownKind(String),
    #[error("invalid {kind} payload: {reason}")]
    Payload { kind: String, reason: String },
    #[error("{0}")]
    Task(String),
    #[error("algorithm {id}: {reason}")]
    Program { id: u64, reason: String },
    #[error("evolution: {0}")]
    Evolve(#[from] engine::EvolveError),
    #[error("cancelled: the worker is stopping")]
    Cancelled,
}

/// A deterministic suite: `task_count` tasks of `task_type` drawn from `task_seed`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SuiteRef {
    pub task_type: String,
    pub input_dim: usize,
    pub task_count: usize,
    pub task_seed: u64,
}

impl SuiteRef {
    /// The suite a payload names, else the shipped default for `algorithms`' task type
    /// and input dimension (the reference driver names no suite).
    fn or_default(
        given: &Option<SuiteRef>,
        algorithms: &[AlgorithmRef],
        input_dim: Option<usize>,
        (task_count, task_seed): (usize, u64),
    ) -> SuiteRef {
        given.clone().unwrap_or_else(|| {
            let first = algorithms.first();
            SuiteRef {
                task_type: first
                    .and_then(|a| a.task_type.clone())
                    .unwrap_or_else(|| crate::config::PoolConfig::default().task_type),
                input_dim: first
                    .and_then(|a| a.input_dim)
                    .or(input_dim)
                    .unwrap_or(crate::config::PoolConfig::default().input_dim),
                task_count,
                task_seed,
            }
        })
    }
}

/// The default evaluation suite: the pool's suite with the validators' seed.
fn default_eval_suite() -> (usize, u64) {
    let c = crate::config::Config::default();
    (c.pool.eval_task_count, c.validator.task_seed)
}

/// The default evolution suite: the miner's fitness suite.
fn default_evolve_suite() -> (usize, u64) {
    let c = crate::config::MinerConfig::default();
    (c.miner_task_count, c.miner_task_seed)
}

/// A program handed out by the pool (the reference sends its id as a number or a
/// string, with `task_type` and `input_dim`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmRef {
    #[serde(deserialize_with = "id_number_or_text")]
    pub id: u64,
    pub algorithm_dsl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dim: Option<usize>,
}

fn id_number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("id must be a non-negative integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("id {s:?} is not an integer"))),
        _ => Err(serde::de::Error::custom("id must be an integer")),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluatePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<SuiteRef>,
    pub algorithms: Vec<AlgorithmRef>,
}

/// One program's score; a non-finite score is `null` with `invalid` saying why (the
/// form of [`crate::score_json`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub algorithm_id: u64,
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluateResult {
    pub evaluations: Vec<Evaluation>,
}

fn default_pop_size() -> usize {
    16
}

fn default_budget() -> u64 {
    crate::config::PoolConfig::default().evolve_budget as u64
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvolvePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<SuiteRef>,
    /// The parents (the reference driver names them from this field).
    #[serde(alias = "parents")]
    pub algorithms: Vec<AlgorithmRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dim: Option<usize>,
    /// Children to produce.
    #[serde(default = "default_budget")]
    pub budget: u64,
    /// Evolution seed; none = a fresh random one per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default = "default_pop_size")]
    pub pop_size: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvolveResult {
    pub evolved_function: String,
    pub parent_ids: Vec<u64>,
    pub fitness: Option<f64>,
    pub children: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeasePayload {
    /// Carried for the coordinator's log; the work does not depend on it (the reference
    /// driver sends it as a string).
    #[serde(default)]
    pub lease_id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_suite: Option<SuiteRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evolve_suite: Option<SuiteRef>,
    #[serde(default, alias = "evaluate")]
    pub evaluate_algorithms: Vec<AlgorithmRef>,
    #[serde(default, alias = "seeds")]
    pub seed_algorithms: Vec<AlgorithmRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dim: Option<usize>,
    #[serde(default)]
    pub evolve_budget: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default = "default_pop_size")]
    pub pop_size: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseEvolution {
    pub parent_algorithm_ids: Vec<u64>,
    pub algorithm_dsl: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseResult {
    pub evaluations: Vec<Evaluation>,
    pub evolutions: Vec<LeaseEvolution>,
    pub iterations: u64,
}

/// Parse program text strictly and return its canonical text, or the parse error
/// (naming the line and column).
pub fn canonical_dsl(text: &str) -> Result<String, String> {
    engine::parse_program(text)
        .map(|p| engine::print_program(&p))
        .map_err(|e| e.to_string())
}

/// The empty program of `task_type`'s profile (the pool's first seed).
pub fn empty_program_dsl(task_type: TaskType) -> String {
    let profile =
        engine::Profile::builtin(task_type.profile_name()).expect("the task profiles are built in");
    engine::print_program(&Program::empty(profile.meta()))
}

/// `count` genesis programs of `task_type`'s profile: random programs drawn from seeds
/// `0..count`, so every appliance starts from the same ones.
pub fn genesis_dsl(task_type: TaskType, input_dim: usize, count: usize) -> Vec<String> {
    let profile =
        engine::Profile::builtin(task_type.profile_name()).expect("the task profiles are built in");
    (0..count as u64)
        .map(|seed| {
            let mut rng = crate::rng::Rng::new(seed);
            engine::print_program(&engine::mutate::random_program(
                &profile, input_dim, &mut rng,
            ))
        })
        .collect()
}

/// A suite's tasks and their evaluation seeds.
struct BuiltSuite {
    tasks: Vec<Arc<Task>>,
    seeds: Vec<u64>,
}

/// How many children per budgeted child an evolve job may make while most are copies
/// of a parent.
const DUPLICATE_ALLOWANCE: u64 = 20;

/// Suites kept in memory per [`Jobs`].
const SUITE_CACHE_ENTRIES: usize = 8;

/// Runs jobs: the evaluation budget, where image datasets are, and the suites built so
/// far (a worker scores many jobs on the same few suites). One per daemon or `bitsota
/// worker`, shared by its worker threads.
pub struct Jobs {
    budget: BudgetConfig,
    data: DataConfig,
    suites: Mutex<HashMap<SuiteRef, Arc<BuiltSuite>>>,
}

impl Default for Jobs {
    /// The default budget, no data directory: synthetic tasks work, image tasks need
    /// their datasets, and nothing is cached on disk.
    fn default() -> Self {
        Jobs::new(None, BudgetConfig::default())
    }
}

fn task_type(s: &SuiteRef) -> Result<TaskType, JobError> {
    s.task_type
        .parse()
        .map_err(|e: crate::tasks::UnknownTaskType| JobError::Task(e.to_string()))
}

impl Jobs {
    /// `data_dir`: whose `datasets/` and prepared-task cache image-task jobs use.
    pub fn new(data_dir: Option<&std::path::Path>, budget: BudgetConfig) -> Jobs {
        let data = match data_dir {
            Some(d) => DataConfig::for_data_dir(d),
            None => DataConfig {
                cache_dir: None,
                ..DataConfig::default()
            },
        };
        Jobs {
            budget,
            data,
            suites: Mutex::default(),
        }
    }

    /// The tasks and evaluation seeds of a suite.
    fn suite_tasks(&self, s: &SuiteRef) -> Result<Arc<BuiltSuite>, JobError> {
        let cache = &self.suites;
        if let Some(hit) = cache.lock().get(s) {
            return Ok(hit.clone());
        }
        let task_type = task_type(s)?;
        if s.task_count == 0 || s.input_dim == 0 {
            return Err(JobError::Task(
                "a suite needs at least one task and input_dim ≥ 1".into(),
            ));
        }
        let spec = SuiteSpec::new(task_type, s.input_dim, s.task_count, s.task_seed);
        let tasks = prepare_suite(&spec, &self.data).map_err(|e| JobError::Task(e.to_string()))?;
        let seeds = (0..spec.tasks.len()).map(|i| spec.eval_seed(i)).collect();
        let built = Arc::new(BuiltSuite { tasks, seeds });
        let mut c = cache.lock();
        if c.len() >= SUITE_CACHE_ENTRIES {
            c.clear();
        }
        c.insert(s.clone(), built.clone());
        Ok(built)
    }

    /// Score each algorithm on the suite (validator rule). A program over the budget, or
    /// whose evaluation passes the deadline, scores `null`; `cancel` stops the job between
    /// examples.
    pub fn evaluate(
        &self,
        suite: &SuiteRef,
        algorithms: &[AlgorithmRef],
        cancel: &AtomicBool,
    ) -> Result<Vec<Evaluation>, JobError> {
        let task_type = task_type(suite)?;
        let built = self.suite_tasks(suite)?;
        let (tasks, seeds) = (&built.tasks, &built.seeds);
        let examples = tasks
            .first()
            .map_or(Examples { train: 0, val: 0 }, |t| Examples {
                train: t.train_len(),
                val: t.val_len(),
            });
        let budget = &self.budget;
        let limits = budget.limits(task_type);
        let cancelled = || cancel.load(Ordering::Relaxed);
        algorithms
        .iter()
        .map(|a| {
            let program = parse(a)?;
            let invalid = |reason: &dyn std::fmt::Display| {
                tracing::info!(algorithm = a.id, %reason, "[worker] invalid algorithm; scored null");
                Ok(Evaluation {
                    algorithm_id: a.id,
                    score: None,
                    invalid: Some(reason.to_string()),
                })
            };
            if let Err(e) = cost::check(&program, task_type, suite.input_dim, examples, &limits) {
                return invalid(&e);
            }
            let stop = Stop {
                deadline: Some(Instant::now() + budget.deadline()),
                cancelled: &cancelled,
            };
            match engine::score_on_suite_within(&program, tasks, seeds, &stop) {
                Ok(s) => Ok(Evaluation {
                    algorithm_id: a.id,
                    score: finite(s.score),
                    invalid: crate::score_json::non_finite_reason(s.score).map(str::to_string),
                }),
                Err(_) if cancelled() => Err(JobError::Cancelled),
                Err(e) => invalid(&format!("{e} (deadline {} s)", budget.deadline_s)),
            }
        })
        .collect()
    }

    /// Evolve from `parents` for `budget` children unlike every parent; the fittest of them.
    pub fn evolve(
        &self,
        suite: &SuiteRef,
        parents: &[AlgorithmRef],
        budget: u64,
        seed: u64,
        pop_size: usize,
    ) -> Result<Option<EvolveResult>, JobError> {
        let task_type = task_type(suite)?;
        let built = self.suite_tasks(suite)?;
        // Start from the parents at once: a population no larger than they fill.
        let pop_size = parents.len().clamp(2, pop_size.max(2));
        let config = EvolutionConfig {
            profile: engine::ProfileChoice::Named(task_type.profile_name().into()),
            pop_size,
            tournament_size: pop_size.min(4),
            seed,
            ..EvolutionConfig::default()
        };
        let mut evolver = Evolver::new(config, built.tasks.clone(), built.seeds.clone())?;
        let parent_programs: Vec<Program> = parents.iter().map(parse).collect::<Result<_, _>>()?;
        let members: Vec<Member> = parent_programs
            .iter()
            .map(|p| Member {
                fitness: evolver.evaluate(p),
                program: p.clone(),
            })
            .collect();
        evolver.receive(members);
        // A child identical to a parent is not new work and does not count against the
        // budget: from an empty seed most mutations are no-ops, and a short budget would
        // otherwise end with nothing to report. The allowance bounds the job all the same.
        let max_children = budget.saturating_mul(DUPLICATE_ALLOWANCE);
        let (mut fresh, mut children) = (0u64, 0u64);
        let mut best: Option<Member> = None;
        while fresh < budget && children < max_children {
            children += 1;
            evolver.step();
            let Some(child) = evolver.population().last() else {
                continue;
            };
            if parent_programs.contains(&child.program) {
                continue;
            }
            fresh += 1;
            let better = best
                .as_ref()
                .map_or(true, |b| child.fitness > b.fitness || b.fitness.is_nan());
            if better {
                best = Some(child.clone());
            }
        }
        Ok(best.map(|m| EvolveResult {
            evolved_function: engine::print_program(&m.program),
            parent_ids: parents.iter().map(|p| p.id).collect(),
            fitness: finite(m.fitness),
            children: budget,
        }))
    }
}

fn payload<T: serde::de::DeserializeOwned>(kind: &str, v: &Value) -> Result<T, JobError> {
    serde_json::from_value(v.clone()).map_err(|e| JobError::Payload {
        kind: kind.to_string(),
        reason: e.to_string(),
    })
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl Jobs {
    /// Run one sidecar job; the `Ok` value is the job's `result` object. `cancel` (the
    /// worker's stop flag) ends an evaluation between examples.
    pub fn execute(
        &self,
        kind: &str,
        payload_json: &Value,
        cancel: &AtomicBool,
    ) -> Result<Value, JobError> {
        match kind {
            "evaluate" => {
                let p: EvaluatePayload = payload(kind, payload_json)?;
                let suite =
                    SuiteRef::or_default(&p.suite, &p.algorithms, None, default_eval_suite());
                let evaluations = self.evaluate(&suite, &p.algorithms, cancel)?;
                Ok(to_value(&EvaluateResult { evaluations }))
            }
            "evolve" => {
                let p: EvolvePayload = payload(kind, payload_json)?;
                let suite = SuiteRef::or_default(
                    &p.suite,
                    &p.algorithms,
                    p.input_dim,
                    default_evolve_suite(),
                );
                let seed = p.seed.unwrap_or_else(rand::random);
                match self.evolve(&suite, &p.algorithms, p.budget, seed, p.pop_size)? {
                    Some(r) => Ok(to_value(&r)),
                    None => Err(JobError::Task(
                        "evolution produced no child different from its parents".into(),
                    )),
                }
            }
            "lease" => {
                let p: LeasePayload = payload(kind, payload_json)?;
                let eval_suite = SuiteRef::or_default(
                    &p.eval_suite,
                    &p.evaluate_algorithms,
                    p.input_dim,
                    default_eval_suite(),
                );
                let evaluations = self.evaluate(&eval_suite, &p.evaluate_algorithms, cancel)?;
                let evolved = if p.seed_algorithms.is_empty() || p.evolve_budget == 0 {
                    None
                } else {
                    let suite = SuiteRef::or_default(
                        &p.evolve_suite,
                        &p.seed_algorithms,
                        p.input_dim,
                        default_evolve_suite(),
                    );
                    let seed = p.seed.unwrap_or_else(rand::random);
                    self.evolve(
                        &suite,
                        &p.seed_algorithms,
                        p.evolve_budget,
                        seed,
                        p.pop_size,
                    )?
                };
                let evolutions = evolved
                    .into_iter()
                    .map(|r| LeaseEvolution {
                        parent_algorithm_ids: r.parent_ids,
                        algorithm_dsl: r.evolved_function,
                    })
                    .collect();
                Ok(to_value(&LeaseResult {
                    evaluations,
                    evolutions,
                    iterations: p.evolve_budget,
                }))
            }
            other => Err(JobError::UnknownKind(other.to_string())),
        }
    }
}

fn parse(a: &AlgorithmRef) -> Result<Program, JobError> {
    engine::parse_program(&a.algorithm_dsl).map_err(|e| JobError::Program {
        id: a.id,
        reason: e.to_string(),
    })
}

fn finite(x: f32) -> Option<f64> {
    x.is_finite().then_some(x as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jobs() -> Jobs {
        Jobs::default()
    }

    fn suite(count: usize) -> Value {
        json!({"task_type": "scalar_linear", "input_dim": 4, "task_count": count, "task_seed": 7})
    }

    const LEARNER: &str = "# setup\ns2 = 0.01\n# predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";

    #[test]
    fn evaluate_is_deterministic_and_matches_the_engine() {
        let empty = empty_program_dsl(TaskType::ScalarLinear);
        let payload = json!({"suite": suite(3), "algorithms": [
            {"id": 1, "algorithm_dsl": empty}, {"id": 2, "algorithm_dsl": LEARNER}]});
        let a = jobs()
            .execute("evaluate", &payload, &AtomicBool::new(false))
            .unwrap();
        assert_eq!(
            a,
            jobs()
                .execute("evaluate", &payload, &AtomicBool::new(false))
                .unwrap()
        );
        let r: EvaluateResult = serde_json::from_value(a).unwrap();
        let (s_empty, s_learner) = (
            r.evaluations[0].score.unwrap(),
            r.evaluations[1].score.unwrap(),
        );
        assert!(s_learner > s_empty, "{s_learner} vs {s_empty}");
        // The same number the engine gives on the same suite.
        let spec = SuiteSpec::new(TaskType::ScalarLinear, 4, 3, 7);
        let tasks = prepare_suite(&spec, &jobs().data).unwrap();
        let seeds: Vec<u64> = (0..3).map(|i| spec.eval_seed(i)).collect();
        let p = engine::parse_program(LEARNER).unwrap();
        assert_eq!(
            engine::score_on_suite(&p, &tasks, &seeds).score as f64,
            s_learner
        );
    }

    #[test]
    fn evolve_and_lease_produce_new_valid_programs() {
        let empty = empty_program_dsl(TaskType::ScalarLinear);
        let payload = json!({"suite": suite(2), "parents": [{"id": 5, "algorithm_dsl": empty}],
            "budget": 20, "seed": 3});
        let r: EvolveResult = serde_json::from_value(
            jobs()
                .execute("evolve", &payload, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.parent_ids, vec![5]);
        assert_ne!(canonical_dsl(&r.evolved_function).unwrap(), empty);
        assert_eq!(
            jobs()
                .execute("evolve", &payload, &AtomicBool::new(false))
                .unwrap(),
            serde_json::to_value(&r).unwrap(),
            "same seed, same child"
        );
        let lease = json!({"lease_id": 1, "eval_suite": suite(2), "evolve_suite": suite(2),
            "evaluate": [{"id": 9, "algorithm_dsl": LEARNER}],
            "seeds": [{"id": 5, "algorithm_dsl": empty}], "evolve_budget": 10, "seed": 1});
        let l: LeaseResult = serde_json::from_value(
            jobs()
                .execute("lease", &lease, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(l.evaluations.len(), 1);
        assert_eq!(l.evolutions.len(), 1);
        assert_eq!(l.evolutions[0].parent_algorithm_ids, vec![5]);
        assert_eq!(l.iterations, 10);
    }

    #[test]
    fn over_budget_and_cancelled_evaluations() {
        // A declared vector_dim unlike the suite's input_dim is invalid; the learner and
        // two small matrix products in the same job are scored as usual.
        let heavy = "# meta: vector_dim=4\n# predict\ns0 = norm(m1)\n\
            # learn\nm1 = matmul(m1, m0)\nm1 = matmul(m1, m0)\n";
        let wide = "# meta: vector_dim=64\n# predict\ns0 = dot(v0, v0)\n";
        let payload = json!({"suite": suite(2), "algorithms": [
            {"id": 1, "algorithm_dsl": wide}, {"id": 2, "algorithm_dsl": LEARNER},
            {"id": 3, "algorithm_dsl": heavy}]});
        let r: EvaluateResult = serde_json::from_value(
            jobs()
                .execute("evaluate", &payload, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        let scores: Vec<Option<f64>> = r.evaluations.iter().map(|e| e.score).collect();
        assert_eq!(scores[0], None, "vector_dim 64 on 4 features is invalid");
        assert!(scores[1].is_some());
        assert!(scores[2].is_some(), "two 4×4 products fit the budget");
        // A stopping worker abandons the job.
        assert!(matches!(
            jobs().execute("evaluate", &payload, &AtomicBool::new(true)),
            Err(JobError::Cancelled)
        ));
    }

    #[test]
    fn the_reference_drivers_payloads_run() {
        // What `PoolTaskCoordinator` enqueues: string batch ids, the task's algorithms
        // with their `task_type` and `input_dim`, no suite, budget or seed.
        let empty = empty_program_dsl(TaskType::ScalarLinear);
        let algo = json!({"id": "5", "algorithm_dsl": empty, "task_type": "scalar_linear",
            "input_dim": 4, "status": "seed", "score": null});
        let evolve = json!({"batch_id": "3", "algorithms": [algo], "input_dim": 4});
        let r: EvolveResult = serde_json::from_value(
            jobs()
                .execute("evolve", &evolve, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.parent_ids, vec![5]);
        assert_eq!(r.children, default_budget());
        let learner = json!({"id": 9, "algorithm_dsl": LEARNER, "task_type": "scalar_linear",
            "input_dim": 4});
        let evaluate = json!({"batch_id": "4", "algorithms": [learner], "input_dim": 4});
        let e: EvaluateResult = serde_json::from_value(
            jobs()
                .execute("evaluate", &evaluate, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        // Scored on the default pool suite, as an evaluator naming that suite would.
        let (count, seed) = default_eval_suite();
        let named = json!({"suite": {"task_type": "scalar_linear", "input_dim": 4,
            "task_count": count, "task_seed": seed}, "algorithms": [learner]});
        assert_eq!(
            jobs()
                .execute("evaluate", &named, &AtomicBool::new(false))
                .unwrap(),
            serde_json::to_value(&e).unwrap()
        );
        // PoolLeaseCoordinator's lease job.
        let lease = json!({"lease_id": "7", "window_number": 1, "evaluate_algorithms": [learner],
            "seed_algorithms": [algo], "evolve_budget": 10, "lease_timeout_at_s": 1e10,
            "input_dim": 4});
        let l: LeaseResult = serde_json::from_value(
            jobs()
                .execute("lease", &lease, &AtomicBool::new(false))
                .unwrap(),
        )
        .unwrap();
        assert_eq!((l.evaluations.len(), l.evolutions.len()), (1, 1));
        assert_eq!(l.evolutions[0].parent_algorithm_ids, vec![5]);
    }

    #[test]
    fn bad_jobs_are_errors() {
        assert!(matches!(
            jobs().execute("dance", &json!({}), &AtomicBool::new(false)),
            Err(JobError::UnknownKind(_))
        ));
        assert!(matches!(
            jobs().execute("evaluate", &json!({"suite": 1}), &AtomicBool::new(false)),
            Err(JobError::Payload { .. })
        ));
        let bad =
            json!({"suite": suite(1), "algorithms": [{"id": 3, "algorithm_dsl": "s0 = nope(v0)"}]});
        let e = jobs()
            .execute("evaluate", &bad, &AtomicBool::new(false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("algorithm 3") && e.contains("line 1"), "{e}");
        let unknown = json!({"suite": {"task_type": "chess", "input_dim": 4, "task_count": 1, "task_seed": 0},
            "algorithms": []});
        assert!(matches!(
            jobs().execute("evaluate", &unknown, &AtomicBool::new(false)),
            Err(JobError::Task(_))
        ));
        assert!(canonical_dsl("s0 = = 1").unwrap_err().contains("line 1"));
    }
}
