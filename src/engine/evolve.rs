//! Evolution engines (engine.md §5): regularized (aging) evolution ("baseline") and the
//! reference's archive engine, with FEC, early stopping, and islands of worker threads.
//!
//! One [`Evolver`] is one island: its own population and RNG stream (`seed + worker`);
//! [`Evolver::step`] produces, evaluates and inserts exactly one child, so a run is
//! reproducible from its seed and measured in children, never wall-clock time.
//! [`run_islands`] runs `workers` islands on threads and reports [`EvolutionEvent`]s.
//!
//! # Fidelity to AutoML-Zero's search loop
//!
//! `EvolutionConfig::automl_zero_demo` is AutoML-Zero's `run_demo.sh` search; its
//! mutations are faithful draw for draw in distribution (see [`super::mutate`]). The
//! loop itself, compared with `regularized_evolution.cc`, `evaluator.cc`,
//! `executor.h` and `run_search_experiment.cc`:
//!
//! | what | AutoML-Zero | here before | now |
//! |---|---|---|---|
//! | tournament | `tournament_size` draws with replacement, first drawn wins ties | distinct members | with replacement |
//! | removal | the slot of the oldest member is overwritten (a sweep over the array) | oldest leaves the queue | unchanged (the same order) |
//! | early stopping | training *and* validation: a NaN or an error above `max_abs_error` gives the task fitness 0 | training only (a non-finite validation prediction gave −inf, which sinks a mean) | training and validation |
//! | experiment length (`bench discover`) | 2e8 training steps, checked after each sweep of `pop_size` children; every example run counts, up to and including an early-stopped one | checked every 100 children | checked every `pop_size` children |
//! | candidate (`bench discover`) | the best of the final population, tested on fresh tasks | the first program reaching search fitness 0.9999 | that one too, plus every new best ≥ 0.99 at once (same test) |
//! | tasks | `y = w·x`, x, w ~ N(0, 1), fresh seeds per experiment | the same distribution | unchanged (the validator's `scalar_linear` generator) |
//!
//! Compared again step by step (second round) and found the same: initial programs
//! (10/2/8 instructions, each op uniform over the 6, registers drawn per op); input
//! registers drawn over all registers and outputs over all but the label and `v0`
//! (AutoML-Zero's `kFirstOut*` addresses); the mutation drawn uniformly, then the phase
//! uniformly (every action applies to every phase of the fixed-size demo, so none
//! turns into an identity); alter_param's choice among the parameters (CONST: output or
//! data; binary ops: either input or the output); a non-mutated copy (p = 0.1) is
//! evaluated like any child; the slot overwritten is the oldest and takes part in the
//! tournament that replaces it, as in the sweep of `regularized_evolution.cc`; the
//! label zeroed before every predict; early stopping checked on each prediction
//! before `learn` runs; task features and weights N(0, 1); fitness
//! `1 − (2/π)·atan(RMSE)`.
//!
//! One difference remains, in how the experiment is measured rather than in what it
//! searches: AutoML-Zero's demo turns its FEC on. Its FEC probes each *task* (10
//! training and 10 validation examples, the errors hashed bit for bit, so only
//! functionally equal programs collide), and its training-step count includes every
//! probe plus the full run of a miss only. Here `bench discover` runs without FEC; the
//! exact-duplicate cache reuses a score without changing it and counts a hit as the
//! full evaluation it replaces, so one experiment is AutoML-Zero's 2e8 steps without
//! FEC (about 210k children, the length measured for AutoML-Zero's own runs too).
//! Measured: 45–55 % of the demo's children are exact duplicates of a program already
//! scored (the 10 % unmutated copies plus mutations of dead code), all of them FEC hits
//! in AutoML-Zero; counted its way (a hit costs its 100 probe steps) an experiment
//! here lasts 300–420k children, not 210k. AutoML-Zero's measured 212k children per
//! experiment would need a hit rate near 16 %, which its own mutation mix does not
//! give here; so either those reference runs were not the stock `run_demo.sh` (a fork
//! with 5 vector registers is also in use) or they counted differently. Counting the
//! FEC way did not lower the children needed (seeds 0–5: 2.74, 3.75, 0.59, 0.74,
//! 0.43, 2.40 M against 1.88, 2.44, 0.98, 0.45, 0.29, 1.53 M), so the count stays.
//!
//! Beyond AutoML-Zero, `bench discover` ends an experiment early once its best
//! fitness has not risen by at least 0.002 for 25k children (`--stagnation`,
//! `--min-gain`, checked at the end of a population sweep; `--stagnation 0` is
//! AutoML-Zero's experiment). A first version (40k children, any rise) took seeds 0–9
//! from 14.3 M children in all (median 1.28 M) to 10.6 M (median 0.92 M). Replaying
//! 1,000 recorded experiments (seeds 0–29, every new best logged) under other rules
//! showed why it was not better: small rises are constant tuning on a plateau and kept
//! dead experiments alive. Counting only rises of 0.001–0.005 and shortening the window
//! to 15k–25k children gave a flat optimum of 0.94–1.05 M expected children per
//! solution, against 1.60 M for the first version; 25k/0.002 was then the better of the
//! two finalists on held-out seeds 10–39 (24.5 M children against 31.5 M at 20k).
//! The solution test is unchanged by any of it.
//!
//! With all of this the same, the chance that one experiment finds the learner is
//! 10 in 72 for seeds 0–9 (median 1.28 M children), against 5 in 25 for the five
//! AutoML-Zero runs measured on this machine; Fisher's exact test gives p = 0.52, so
//! the two do not differ measurably. At 14 % per experiment the median of 10 seeds is
//! at most 0.9 M children only about 4 times in 10 (simulated), so that figure alone
//! cannot tell a faithful search from an unfaithful one.
//!
//! Kept different: values are `f32` (AutoML-Zero computes in `f64`; the validator's
//! evaluation is `f32` and must not change); the label is `s1` and the prediction `s0`
//! (AutoML-Zero swaps them — random code writes neither the label nor, here, `v0`, so
//! the search is the same); `v0` is not reloaded before `learn` (only a write to `v0`,
//! which random code never makes, could tell).

use super::cache::{CacheStats, Lru};
use super::fec::Fec;
use super::interp::{Combine, Compiled, Compiler, EvalOptions, Evaluator, Resolution, TaskBatch};
use super::mutate::{mutate, random_program, Mutation};
use super::program::{Changed, Phase, Profile, Program};
use super::stages::{Meter, Stage, Stages};
use crate::rng::Rng;
use crate::tasks::Task;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Which search algorithm an island runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    #[default]
    Baseline,
    Archive,
}

/// How the first population is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialPopulation {
    #[default]
    Empty,
    Random,
}

/// A built-in profile by name, or a profile defined inline in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileChoice {
    Named(String),
    Inline(Box<Profile>),
}

impl ProfileChoice {
    pub fn resolve(&self) -> Result<Profile, EvolveError> {
        match self {
            ProfileChoice::Named(n) => {
                Profile::builtin(n).ok_or_else(|| EvolveError::UnknownProfile(n.clone()))
            }
            ProfileChoice::Inline(p) => Ok((**p).clone()),
        }
    }
}

/// Everything that steers a search; serde, with the spec's defaults for missing fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvolutionConfig {
    pub engine: EngineKind,
    pub profile: ProfileChoice,
    pub pop_size: usize,
    pub tournament_size: usize,
    pub mutation_prob: f32,
    pub mutations: Vec<Mutation>,
    pub initial_population: InitialPopulation,
    /// How task scores combine into the miner's fitness.
    pub fitness: Combine,
    pub early_stop_abs_error: Option<f32>,
    /// FEC capacity (0 = off) and probe sizes.
    pub fec_cache_size: usize,
    pub fec_train_examples: usize,
    pub fec_val_examples: usize,
    /// Exact-duplicate cache capacity (0 = off): a child whose compiled live code was
    /// scored before reuses that score. Unlike FEC this never changes a result — the
    /// search makes the same children with the same fitness and counts the same
    /// training steps, it just skips evaluations it already did.
    pub exact_cache_size: usize,
    pub seed: u64,
    pub workers: usize,
    /// Children per worker between migrations (0 = never).
    pub migration_generations: u64,
    /// Children per worker between progress events.
    pub checkpoint_generations: u64,
    /// Archive engine: archive capacity (its population is `pop_size`, default 8 there).
    pub archive_size: usize,
    /// Stop a worker after this many children (None = until stopped).
    pub max_children: Option<u64>,
    /// Stop a worker once its best fitness reaches this.
    pub target_fitness: Option<f32>,
    /// Start a worker over (a fresh first population; the same tasks, seed stream and
    /// caches) once its best fitness has not improved for this many children (None =
    /// never): a search settled in its basin rarely leaves it, and a fresh one may
    /// find a better basin, while a search still improving keeps its progress.
    pub stagnation_children: Option<u64>,
    /// Children whose live code costs more than this per training example
    /// ([`Compiled::example_work`]) are not evaluated: they get the lowest fitness, so
    /// programs cannot grow into ever slower evaluations (None = no bound).
    pub max_example_work: Option<u64>,
    /// When set, the first population is copies of this program instead of
    /// `initial_population` (a miner building on the network's best).
    pub start_program: Option<Program>,
}

impl Default for EvolutionConfig {
    fn default() -> Self {
        EvolutionConfig {
            engine: EngineKind::Baseline,
            profile: ProfileChoice::Named("cifar".into()),
            pop_size: 100,
            tournament_size: 10,
            mutation_prob: 0.9,
            mutations: Mutation::DEFAULTS.to_vec(),
            initial_population: InitialPopulation::Empty,
            fitness: Combine::Median,
            early_stop_abs_error: None,
            fec_cache_size: 0,
            fec_train_examples: 32,
            fec_val_examples: 32,
            exact_cache_size: 10_000,
            seed: 0,
            workers: 1,
            migration_generations: 0,
            checkpoint_generations: 1000,
            archive_size: 1000,
            max_children: None,
            target_fitness: None,
            stagnation_children: None,
            max_example_work: None,
            start_program: None,
        }
    }
}

impl EvolutionConfig {
    /// AutoML-Zero's published demo search (engine.md §6 `demo`): the `az_demo` space,
    /// population 1000, tournament 10, mutation 0.9 with alter_param, alter_instruction and
    /// randomize_component, random initial programs, mean fitness, early stop at 100; with
    /// `fec`, the functional-equivalence cache on a 10/10-example probe.
    pub fn automl_zero_demo(fec: bool, seed: u64, workers: usize) -> Self {
        EvolutionConfig {
            profile: ProfileChoice::Named("az_demo".into()),
            pop_size: 1000,
            tournament_size: 10,
            mutation_prob: 0.9,
            mutations: Mutation::AUTOML_ZERO_DEMO.to_vec(),
            initial_population: InitialPopulation::Random,
            fitness: Combine::Mean,
            early_stop_abs_error: Some(100.0),
            fec_cache_size: if fec { 100_000 } else { 0 },
            fec_train_examples: 10,
            fec_val_examples: 10,
            seed,
            workers,
            ..Default::default()
        }
    }
}

/// A configuration or input the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvolveError {
    #[error("unknown profile '{0}' (built in: cifar, scalar_linear, full, az_demo, az_classify, az_bilinear, az_baseline)")]
    UnknownProfile(String),
    #[error("no tasks to evolve on")]
    NoTasks,
    #[error("{tasks} tasks but {seeds} evaluation seeds")]
    SeedCount { tasks: usize, seeds: usize },
    #[error("the miner tasks have different input dimensions")]
    MixedInputDims,
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A program with its miner fitness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub program: Program,
    pub fitness: f32,
}

/// What [`run_islands`] reports.
#[derive(Clone, Debug, PartialEq)]
pub enum EvolutionEvent {
    /// Every `checkpoint_generations` children of a worker.
    Progress {
        worker: usize,
        children: u64,
        children_per_sec: f64,
        best_fitness: f32,
        fec: Option<CacheStats>,
        exact: Option<CacheStats>,
    },
    /// A worker's best fitness improved.
    Candidate {
        worker: usize,
        children: u64,
        member: Member,
    },
    /// A worker stopped.
    Finished {
        worker: usize,
        children: u64,
        best_fitness: f32,
        fec: Option<CacheStats>,
        exact: Option<CacheStats>,
    },
}

/// Outcome of one [`Evolver::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    pub fitness: f32,
    /// The child is the island's new best.
    pub improved: bool,
}

fn better(a: f32, b: f32) -> bool {
    // NaN never wins; otherwise plain comparison.
    a > b || (b.is_nan() && !a.is_nan())
}

/// The sorted opcodes of a program: programs with the same multiset of ops count as
/// one "op signature" for the archive's diversity bonus.
fn op_signature(p: &Program) -> Vec<u8> {
    let mut ops: Vec<u8> = Phase::ALL
        .iter()
        .flat_map(|&ph| p.phase(ph).iter().map(|i| i.op.code()))
        .collect();
    ops.sort_unstable();
    ops
}

/// One island.
pub struct Evolver {
    cfg: EvolutionConfig,
    profile: Profile,
    tasks: Vec<Arc<Task>>,
    /// The tasks interleaved for lockstep evaluation (when their shapes agree).
    batch: Option<TaskBatch>,
    seeds: Vec<u64>,
    dim: usize,
    rng: Rng,
    evaluator: Evaluator,
    fec: Option<Fec>,
    /// Compiled-code key → (fitness, training steps its evaluation ran).
    exact: Option<Lru<u128, (f32, u64)>>,
    /// Baseline: the aging queue (oldest first). Archive: the current population.
    population: VecDeque<Member>,
    /// Baseline: each member's resolved code, in the population's order, so a child
    /// compiles only what its mutation changed (`Compiler::compile_child`). Unused by
    /// the archive engine.
    resolutions: VecDeque<Resolution>,
    archive: Vec<Member>,
    /// Op signature of each archive member (same order), for the diversity bonus.
    archive_sigs: Vec<Vec<u8>>,
    next_generation: Vec<Member>,
    children: u64,
    /// The child count at the last new best (for `stagnation_children`).
    last_gain: u64,
    best: Option<Member>,
    opts: EvalOptions,
    /// Per-task scores buffer, reused across children.
    scores: Vec<f32>,
    /// Compilation buffers, reused across children.
    compiler: Compiler,
    compiled: Compiled,
    /// What the island did, stage by stage (`bitsota profile`; see [`super::stages`]).
    stages: Meter,
}

impl Evolver {
    /// An island for worker 0.
    pub fn new(
        config: EvolutionConfig,
        tasks: Vec<Arc<Task>>,
        seeds: Vec<u64>,
    ) -> Result<Self, EvolveError> {
        Self::for_worker(config, tasks, seeds, 0)
    }

    /// An island with RNG stream `seed + worker`.
    pub fn for_worker(
        config: EvolutionConfig,
        tasks: Vec<Arc<Task>>,
        seeds: Vec<u64>,
        worker: usize,
    ) -> Result<Self, EvolveError> {
        let profile = config.profile.resolve()?;
        let first = tasks.first().ok_or(EvolveError::NoTasks)?;
        if seeds.len() != tasks.len() {
            return Err(EvolveError::SeedCount {
                tasks: tasks.len(),
                seeds: seeds.len(),
            });
        }
        if tasks.iter().any(|t| t.input_dim != first.input_dim) {
            return Err(EvolveError::MixedInputDims);
        }
        if config.pop_size == 0 || config.tournament_size == 0 {
            return Err(EvolveError::Config(
                "pop_size and tournament_size must be positive".into(),
            ));
        }
        if config.mutations.is_empty() {
            return Err(EvolveError::Config("the mutation list is empty".into()));
        }
        let dim = profile.meta().dim_for(first.input_dim);
        let fec = (config.fec_cache_size > 0).then(|| {
            Fec::new(
                config.fec_cache_size,
                config.fec_train_examples,
                config.fec_val_examples,
            )
        });
        let exact = (config.exact_cache_size > 0).then(|| Lru::new(config.exact_cache_size));
        let stages = Meter::new(&tasks, &config, worker);
        Ok(Evolver {
            rng: Rng::new(config.seed.wrapping_add(worker as u64)),
            opts: EvalOptions {
                early_stop_abs_error: config.early_stop_abs_error,
            },
            cfg: config,
            profile,
            batch: TaskBatch::new(&tasks),
            tasks,
            seeds,
            dim,
            evaluator: Evaluator::new(),
            fec,
            exact,
            population: VecDeque::new(),
            resolutions: VecDeque::new(),
            archive: Vec::new(),
            archive_sigs: Vec::new(),
            next_generation: Vec::new(),
            children: 0,
            last_gain: 0,
            best: None,
            scores: Vec::new(),
            compiler: Compiler::default(),
            compiled: Compiled::default(),
            stages,
        })
    }

    /// Miner fitness of a program on the island's tasks (FEC and early stop applied).
    pub fn evaluate(&mut self, program: &Program) -> f32 {
        let mut c = std::mem::take(&mut self.compiled);
        let t = self.stages.clock();
        self.compiler
            .compile_into(program, self.tasks[0].input_dim, &mut c);
        self.stages.compiled(t);
        let fitness = self.evaluate_code(&c);
        self.compiled = c;
        fitness
    }

    /// [`Self::evaluate`] after compilation: the exact-duplicate cache, then the rest.
    fn evaluate_code(&mut self, c: &Compiled) -> f32 {
        if self
            .cfg
            .max_example_work
            .is_some_and(|max| c.example_work() > max)
        {
            return f32::NEG_INFINITY;
        }
        let t = self.stages.clock();
        let Some(key) = self.exact.is_some().then(|| c.code_key()) else {
            return self.evaluate_compiled(c);
        };
        if let Some((fitness, steps)) = self.exact.as_mut().and_then(|e| e.lookup(key)) {
            self.stages.exact_lookup(t, true);
            // Count the steps the evaluation would have run, so budgets in training
            // steps (the discover benchmark's restarts) see the same search.
            self.evaluator.add_train_steps(steps);
            return fitness;
        }
        self.stages.exact_lookup(t, false);
        let steps_before = self.evaluator.train_steps();
        let fitness = self.evaluate_compiled(c);
        let steps = self.evaluator.train_steps() - steps_before;
        if let Some(exact) = &mut self.exact {
            exact.insert(key, (fitness, steps));
        }
        fitness
    }

    fn evaluate_compiled(&mut self, c: &Compiled) -> f32 {
        let key = match &mut self.fec {
            Some(fec) => {
                let (t, before) = (self.stages.clock(), self.evaluator.train_steps());
                let key = fec.fingerprint(&mut self.evaluator, c, &self.tasks[0], self.seeds[0]);
                let probe = self.evaluator.train_steps() - before;
                if let Some(f) = fec.lookup(key) {
                    self.stages.fec_probe(t, c, probe, true);
                    return f;
                }
                self.stages.fec_probe(t, c, probe, false);
                Some(key)
            }
            None => None,
        };
        let (t, before) = (self.stages.clock(), self.evaluator.train_steps());
        let mut scores = std::mem::take(&mut self.scores);
        scores.resize(self.tasks.len(), 0.0);
        match &self.batch {
            Some(batch) => {
                self.evaluator
                    .score_batch(c, batch, &self.seeds, &self.opts, &mut scores)
            }
            None => {
                for ((task, &seed), s) in self.tasks.iter().zip(&self.seeds).zip(scores.iter_mut())
                {
                    *s = self.evaluator.score(c, task, seed, &self.opts);
                }
            }
        }
        self.stages
            .evaluated(t, c, self.evaluator.train_steps() - before);
        let fitness = self.cfg.fitness.apply(&scores);
        self.scores = scores;
        if let (Some(fec), Some(key)) = (&mut self.fec, key) {
            fec.insert(key, fitness);
        }
        fitness
    }

    fn initial_program(&mut self) -> Program {
        if let Some(p) = &self.cfg.start_program {
            return p.clone();
        }
        match self.cfg.initial_population {
            InitialPopulation::Empty => Program::empty(self.profile.meta()),
            InitialPopulation::Random => random_program(&self.profile, self.dim, &mut self.rng),
        }
    }

    /// A parent's copy, mutated with probability `mutation_prob`.
    fn offspring(&mut self, mut child: Program) -> Program {
        self.maybe_mutate(&mut child);
        child
    }

    /// Mutate a parent's copy with probability `mutation_prob`; what changed.
    fn maybe_mutate(&mut self, child: &mut Program) -> Changed {
        if self.rng.next_f32() >= self.cfg.mutation_prob {
            return Changed::Nothing;
        }
        let m = self.cfg.mutations[self.rng.index(self.cfg.mutations.len())];
        self.stages.mutated(m);
        mutate(child, &self.profile, self.dim, m, &mut self.rng)
    }

    /// [`Self::evaluate`] for a baseline child, compiling only what `changed` (see
    /// [`Self::resolutions`]): `parent` indexes the parent's resolution, `None` when
    /// `res` already holds it. `res` becomes the child's.
    fn evaluate_child(
        &mut self,
        program: &Program,
        parent: Option<usize>,
        changed: Changed,
        res: &mut Resolution,
    ) -> f32 {
        let mut c = std::mem::take(&mut self.compiled);
        let t = self.stages.clock();
        let from = parent.map(|i| &self.resolutions[i]);
        let input_dim = self.tasks[0].input_dim;
        self.compiler
            .compile_child(program, input_dim, from, changed, res, &mut c);
        self.stages.compiled(t);
        // Unit tests check every child against a full compilation.
        #[cfg(test)]
        {
            let fresh = super::interp::compile(program, input_dim);
            assert_eq!(c.code_key(), fresh.code_key(), "{changed:?}");
        }
        let fitness = self.evaluate_code(&c);
        self.compiled = c;
        fitness
    }

    /// Forget the population and the best: the next children refill a first
    /// population, and the first of them is a new best (see `stagnation_children`).
    fn start_over(&mut self) {
        self.population.clear();
        self.resolutions.clear();
        self.archive.clear();
        self.archive_sigs.clear();
        self.next_generation.clear();
        self.best = None;
        self.last_gain = self.children;
    }

    /// The population index of the fittest of `tournament_size` members drawn
    /// uniformly with replacement — AutoML-Zero's tournament; a tie goes to the member
    /// drawn first.
    fn tournament(&mut self) -> usize {
        let n = self.population.len();
        let mut best = self.rng.index(n);
        for _ in 1..self.cfg.tournament_size {
            let i = self.rng.index(n);
            if better(self.population[i].fitness, self.population[best].fitness) {
                best = i;
            }
        }
        best
    }

    /// Produce, evaluate and insert one child (initial members count as children).
    pub fn step(&mut self) -> StepOutcome {
        if self
            .cfg
            .stagnation_children
            .is_some_and(|w| self.children - self.last_gain >= w)
        {
            self.start_over();
        }
        let t = self.stages.clock();
        let fitness;
        let child = match self.cfg.engine {
            EngineKind::Baseline => {
                debug_assert_eq!(self.resolutions.len(), self.population.len());
                let (child, parent, changed, mut res) = if self.population.len() < self.cfg.pop_size
                {
                    let first = self.initial_program();
                    (first, None, Changed::All, Resolution::default())
                } else {
                    let parent = self.tournament();
                    // The oldest member leaves; its program's buffers take the copy,
                    // its resolution's the child's.
                    let oldest = self.population.pop_front().expect("the population is full");
                    let res = self.resolutions.pop_front().unwrap_or_default();
                    let mut child = oldest.program;
                    // Parent 0 was the oldest: `res` already holds its resolution.
                    let parent = parent.checked_sub(1);
                    if let Some(p) = parent {
                        child.clone_from(&self.population[p].program);
                    }
                    let changed = self.maybe_mutate(&mut child);
                    (child, parent, changed, res)
                };
                self.stages.lap(Stage::Breed, t);
                fitness = self.evaluate_child(&child, parent, changed, &mut res);
                self.resolutions.push_back(res);
                child
            }
            EngineKind::Archive => {
                let child = self.archive_child();
                self.stages.lap(Stage::Breed, t);
                fitness = self.evaluate(&child);
                child
            }
        };
        let t = self.stages.clock();
        self.children += 1;
        let member = Member {
            program: child,
            fitness,
        };
        let improved = self
            .best
            .as_ref()
            .map_or(true, |b| better(fitness, b.fitness));
        if improved {
            // Into the old best's buffers: a new best allocates nothing either.
            match &mut self.best {
                Some(best) => {
                    best.program.clone_from(&member.program);
                    best.fitness = member.fitness;
                }
                None => self.best = Some(member.clone()),
            }
            self.last_gain = self.children;
        }
        match self.cfg.engine {
            EngineKind::Baseline => self.population.push_back(member),
            EngineKind::Archive => self.archive_insert(member),
        }
        self.stages.child(t, self.children);
        StepOutcome { fitness, improved }
    }

    /// Archive engine: one child from archive (0.4), current population (0.3) or a
    /// crossover of two current members (0.3).
    fn archive_child(&mut self) -> Program {
        if self.population.len() < self.cfg.pop_size {
            return self.initial_program();
        }
        let r = self.rng.next_f32();
        if r < 0.4 && !self.archive.is_empty() {
            let i = self.archive_pick();
            self.offspring(self.archive[i].program.clone())
        } else if r < 0.7 {
            let i = self.rng.index(self.population.len());
            self.offspring(self.population[i].program.clone())
        } else {
            let a = self.rng.index(self.population.len());
            let b = self.rng.index(self.population.len());
            let mut child = self.population[a].program.clone();
            for phase in Phase::ALL {
                if self.rng.index(2) == 1 {
                    *child.phase_mut(phase) = self.population[b].program.phase(phase).clone();
                }
            }
            child
        }
    }

    /// Archive sampling weight: `exp(normalised fitness / 2) · (1 + 0.3/(1 + n))` where
    /// `n` counts archive members with the same op signature.
    fn archive_pick(&mut self) -> usize {
        let finite: Vec<f32> = self
            .archive
            .iter()
            .map(|m| m.fitness)
            .filter(|f| f.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        for sig in &self.archive_sigs {
            *counts.entry(sig).or_default() += 1;
        }
        let weights: Vec<f64> = self
            .archive
            .iter()
            .zip(&self.archive_sigs)
            .map(|(m, sig)| {
                let norm = if m.fitness.is_finite() && hi > lo {
                    ((m.fitness - lo) / (hi - lo)) as f64
                } else if m.fitness.is_finite() {
                    1.0
                } else {
                    0.0
                };
                let same = counts[sig.as_slice()] - 1;
                libm::exp(norm / 2.0) * (1.0 + 0.3 / (1.0 + same as f64))
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut x = self.rng.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn archive_insert(&mut self, member: Member) {
        if self.population.len() < self.cfg.pop_size {
            self.population.push_back(member.clone());
        } else {
            self.next_generation.push(member.clone());
            if self.next_generation.len() + 1 >= self.cfg.pop_size {
                // Elitism: the best of the old population survives.
                let elite = self
                    .population
                    .iter()
                    .chain(&self.next_generation)
                    .fold(None::<&Member>, |b, m| match b {
                        Some(b) if !better(m.fitness, b.fitness) => Some(b),
                        _ => Some(m),
                    })
                    .cloned()
                    .expect("population is not empty");
                self.population = std::iter::once(elite)
                    .chain(self.next_generation.drain(..))
                    .collect();
            }
        }
        let sig = op_signature(&member.program);
        if self.archive.len() < self.cfg.archive_size {
            self.archive.push(member);
            self.archive_sigs.push(sig);
        } else if let Some((worst, _)) = self
            .archive
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.fitness.total_cmp(&b.1.fitness))
        {
            if better(member.fitness, self.archive[worst].fitness) {
                self.archive[worst] = member;
                self.archive_sigs[worst] = sig;
            }
        }
    }

    pub fn children(&self) -> u64 {
        self.children
    }
    /// Training examples run so far, summed over tasks (AutoML-Zero's "training steps";
    /// early-stopped tasks count only the examples they ran, FEC hits only the probe).
    pub fn train_steps(&self) -> u64 {
        self.evaluator.train_steps()
    }
    pub fn best(&self) -> Option<&Member> {
        self.best.as_ref()
    }
    pub fn fec_stats(&self) -> Option<CacheStats> {
        self.fec.as_ref().map(Fec::stats)
    }
    pub fn exact_cache_stats(&self) -> Option<CacheStats> {
        self.exact.as_ref().map(|c| c.stats)
    }
    /// Stage counters since the island was built or [`Self::reset_stages`].
    pub fn stages(&self) -> &Stages {
        &self.stages.counts
    }
    pub fn reset_stages(&mut self) {
        self.stages.reset();
    }
    /// Time each stage too (a few clock reads per child; off unless profiling).
    pub fn set_profiling(&mut self, on: bool) {
        self.stages.set_timing(on);
    }
    pub fn population(&self) -> impl Iterator<Item = &Member> {
        self.population.iter()
    }

    /// The better half of the population, best first (what an island sends out).
    pub fn emigrants(&self) -> Vec<Member> {
        let mut all: Vec<Member> = self.population.iter().cloned().collect();
        all.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
        all.truncate(all.len() / 2);
        all
    }

    /// Immigrants replace the oldest members.
    pub fn receive(&mut self, immigrants: Vec<Member>) {
        for m in immigrants {
            if self.population.len() >= self.cfg.pop_size {
                self.population.pop_front();
                self.resolutions.pop_front();
            }
            if self
                .best
                .as_ref()
                .map_or(true, |b| better(m.fitness, b.fitness))
            {
                self.best = Some(m.clone());
                self.last_gain = self.children;
            }
            if self.cfg.engine == EngineKind::Baseline {
                // Not resolved yet: a child of it compiles in full.
                self.resolutions.push_back(Resolution::default());
            }
            self.population.push_back(m);
        }
    }

    fn done(&self) -> bool {
        self.cfg.max_children.is_some_and(|m| self.children >= m)
            || self
                .cfg
                .target_fitness
                .is_some_and(|t| self.best.as_ref().is_some_and(|b| b.fitness >= t))
    }

    /// Step until `stop` is set (or `max_children` / `target_fitness` is reached),
    /// reporting events. Single island; see [`run_islands`] for several.
    pub fn run(
        &mut self,
        worker: usize,
        stop: &AtomicBool,
        mut on_event: impl FnMut(EvolutionEvent),
    ) {
        self.run_with_migration(worker, stop, &mut on_event, &mut |_, _| None);
    }

    fn run_with_migration(
        &mut self,
        worker: usize,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(EvolutionEvent),
        migrate: &mut dyn FnMut(u64, Vec<Member>) -> Option<Vec<Member>>,
    ) {
        let started = Instant::now();
        let checkpoint = self.cfg.checkpoint_generations.max(1);
        while !stop.load(Ordering::Relaxed) && !self.done() {
            let outcome = self.step();
            if outcome.improved {
                if let Some(best) = &self.best {
                    on_event(EvolutionEvent::Candidate {
                        worker,
                        children: self.children,
                        member: best.clone(),
                    });
                }
            }
            if self.children % checkpoint == 0 {
                on_event(EvolutionEvent::Progress {
                    worker,
                    children: self.children,
                    children_per_sec: self.children as f64
                        / started.elapsed().as_secs_f64().max(1e-9),
                    best_fitness: self.best.as_ref().map_or(f32::NEG_INFINITY, |b| b.fitness),
                    fec: self.fec_stats(),
                    exact: self.exact_cache_stats(),
                });
            }
            let every = self.cfg.migration_generations;
            if every > 0 && self.children % every == 0 {
                if let Some(immigrants) = migrate(self.children / every, self.emigrants()) {
                    self.receive(immigrants);
                }
            }
        }
        on_event(EvolutionEvent::Finished {
            worker,
            children: self.children,
            best_fitness: self.best.as_ref().map_or(f32::NEG_INFINITY, |b| b.fitness),
            fec: self.fec_stats(),
            exact: self.exact_cache_stats(),
        });
    }
}

/// Mailboxes of the migration ring: worker `w` sends to `(w + 1) % n`. Each message is
/// tagged with its migration round so exchanges are deterministic.
type Mailbox = VecDeque<(u64, Vec<Member>)>;

struct Ring {
    boxes: Mutex<Vec<Mailbox>>,
    ready: Condvar,
}

impl Ring {
    fn exchange(
        &self,
        worker: usize,
        round: u64,
        out: Vec<Member>,
        stop: &AtomicBool,
    ) -> Option<Vec<Member>> {
        let mut boxes = self.boxes.lock().expect("ring lock");
        let n = boxes.len();
        boxes[(worker + 1) % n].push_back((round, out));
        self.ready.notify_all();
        loop {
            if let Some(pos) = boxes[worker].iter().position(|(r, _)| *r == round) {
                return boxes[worker].remove(pos).map(|(_, m)| m);
            }
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            boxes = self
                .ready
                .wait_timeout(boxes, Duration::from_millis(50))
                .expect("ring lock")
                .0;
        }
    }
}

/// Run `config.workers` islands on threads until `stop` is set or every worker reached
/// its `max_children` / `target_fitness`. Events arrive on the calling thread.
/// Returns each worker's best member.
pub fn run_islands(
    config: &EvolutionConfig,
    tasks: &[Arc<Task>],
    seeds: &[u64],
    stop: &AtomicBool,
    mut on_event: impl FnMut(EvolutionEvent),
) -> Result<Vec<Option<Member>>, EvolveError> {
    let workers = config.workers.max(1);
    let islands: Vec<Evolver> = (0..workers)
        .map(|w| Evolver::for_worker(config.clone(), tasks.to_vec(), seeds.to_vec(), w))
        .collect::<Result<_, _>>()?;
    let ring = Ring {
        boxes: Mutex::new(vec![VecDeque::new(); workers]),
        ready: Condvar::new(),
    };
    let (tx, rx) = mpsc::channel();
    let bests = std::thread::scope(|scope| {
        let handles: Vec<_> = islands
            .into_iter()
            .enumerate()
            .map(|(w, mut island)| {
                let tx = tx.clone();
                let ring = &ring;
                scope.spawn(move || {
                    let mut send = |e| {
                        let _ = tx.send(e);
                    };
                    let mut migrate = |round, out| {
                        (workers > 1)
                            .then(|| ring.exchange(w, round, out, stop))
                            .flatten()
                    };
                    island.run_with_migration(w, stop, &mut send, &mut migrate);
                    island.best
                })
            })
            .collect();
        drop(tx);
        for event in rx {
            on_event(event);
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("an evolution worker panicked"))
            .collect()
    });
    Ok(bests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::scalar_linear::{build, LinearSizes};
    use crate::tasks::suite::SuiteSpec;
    use crate::tasks::TaskType;

    fn miner_tasks(count: usize, dim: usize, sizes: LinearSizes) -> (Vec<Arc<Task>>, Vec<u64>) {
        let suite = SuiteSpec::new(TaskType::ScalarLinear, dim, count, 0);
        let tasks = suite
            .tasks
            .iter()
            .map(|t| Arc::new(build(t, sizes)))
            .collect();
        (tasks, (0..count).map(|i| suite.eval_seed(i)).collect())
    }

    fn small_config() -> EvolutionConfig {
        EvolutionConfig {
            profile: ProfileChoice::Named("scalar_linear".into()),
            pop_size: 20,
            tournament_size: 5,
            seed: 3,
            ..Default::default()
        }
    }

    /// A search whose best has not improved for `stagnation_children` children starts
    /// over: its population refills from first programs. Here nothing can improve
    /// (empty programs, a mutation that does nothing to them), so with a window of 30 it
    /// starts over at children 31, 62 and 93 (the first child after each is a new
    /// best); without the setting it never does.
    #[test]
    fn a_stagnant_search_starts_over() {
        let (tasks, seeds) = miner_tasks(2, 4, LinearSizes { train: 5, val: 5 });
        let evolver = |stagnation_children| {
            let cfg = EvolutionConfig {
                pop_size: 10,
                initial_population: InitialPopulation::Empty,
                mutations: vec![Mutation::AlterParam],
                stagnation_children,
                ..small_config()
            };
            Evolver::new(cfg, tasks.clone(), seeds.clone()).unwrap()
        };
        let starts_over = |stagnation_children| {
            let mut e = evolver(stagnation_children);
            let sizes: Vec<usize> = (0..100)
                .map(|_| {
                    e.step();
                    e.population().count()
                })
                .collect();
            sizes.windows(2).filter(|w| w[1] < w[0]).count()
        };
        assert_eq!(starts_over(None), 0);
        assert_eq!(starts_over(Some(30)), 3);
        // An immigrant that beats the best is a gain too: after one at child 25 the
        // window runs from there, so the start-over comes at child 55, not 31.
        let mut e = evolver(Some(30));
        for _ in 0..25 {
            e.step();
        }
        let mut immigrant = e.best().unwrap().clone();
        immigrant.fitness += 1.0;
        e.receive(vec![immigrant]);
        for _ in 0..30 {
            e.step();
            assert_eq!(e.population().count(), 10);
        }
        e.step();
        assert_eq!(e.population().count(), 1);
    }

    #[test]
    fn runs_are_reproducible_under_a_seed() {
        let (tasks, seeds) = miner_tasks(3, 4, LinearSizes { train: 30, val: 30 });
        let run = |cfg: EvolutionConfig| {
            let mut e = Evolver::new(cfg, tasks.clone(), seeds.clone()).unwrap();
            (0..300)
                .map(|_| e.step().fitness.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(small_config()), run(small_config()));
        assert_ne!(
            run(small_config()),
            run(EvolutionConfig {
                seed: 4,
                ..small_config()
            })
        );
        let archive = EvolutionConfig {
            engine: EngineKind::Archive,
            pop_size: 8,
            ..small_config()
        };
        assert_eq!(run(archive.clone()), run(archive));
    }

    #[test]
    fn the_exact_cache_skips_evaluations_without_changing_the_search() {
        let (tasks, seeds) = miner_tasks(3, 4, LinearSizes { train: 30, val: 30 });
        let run = |exact_cache_size| {
            let cfg = EvolutionConfig {
                exact_cache_size,
                ..small_config()
            };
            let mut e = Evolver::new(cfg, tasks.clone(), seeds.clone()).unwrap();
            let fitness: Vec<u32> = (0..600).map(|_| e.step().fitness.to_bits()).collect();
            (fitness, e.train_steps(), e.exact_cache_stats())
        };
        let (plain, plain_steps, none) = run(0);
        let (cached, cached_steps, stats) = run(1000);
        assert_eq!(none, None);
        assert_eq!(plain, cached, "same children, same fitness bits");
        assert_eq!(
            plain_steps, cached_steps,
            "hits count the steps they stand for"
        );
        let stats = stats.unwrap();
        assert_eq!(stats.lookups, 600);
        assert!(stats.hits > 50, "{stats:?}");
    }

    #[test]
    fn fec_hits_do_not_change_the_search_much_and_are_counted() {
        let (tasks, seeds) = miner_tasks(3, 4, LinearSizes { train: 30, val: 30 });
        let cfg = EvolutionConfig {
            fec_cache_size: 1000,
            fec_train_examples: 10,
            fec_val_examples: 10,
            exact_cache_size: 0,
            ..small_config()
        };
        let mut e = Evolver::new(cfg, tasks, seeds).unwrap();
        for _ in 0..300 {
            e.step();
        }
        let stats = e.fec_stats().unwrap();
        assert_eq!(stats.lookups, 300);
        assert!(stats.hits > 0 && stats.hits < 300, "{stats:?}");
    }

    /// The linear SGD learner costs 17 per example in `predict` (a 16-wide inner
    /// product into a scalar) and 34 in `learn` (two scalar ops, two 16-wide vector
    /// ops): 51. A bound below that refuses it without evaluating; at 51 it is scored.
    #[test]
    fn children_over_the_work_bound_are_not_evaluated() {
        let (tasks, seeds) = miner_tasks(2, 16, LinearSizes { train: 20, val: 20 });
        let text = include_str!("../../fixtures/programs/linear_sgd.dsl");
        let program = crate::engine::parse_program(text).unwrap();
        assert_eq!(crate::engine::compile(&program, 16).example_work(), 51);
        let fitness = |max| {
            let cfg = EvolutionConfig {
                max_example_work: max,
                ..small_config()
            };
            Evolver::new(cfg, tasks.clone(), seeds.clone())
                .unwrap()
                .evaluate(&program)
        };
        assert_eq!(fitness(Some(50)), f32::NEG_INFINITY);
        assert!(fitness(Some(51)).is_finite());
        assert_eq!(
            fitness(Some(51)),
            fitness(None),
            "the bound never changes a score"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (tasks, seeds) = miner_tasks(2, 4, LinearSizes { train: 5, val: 5 });
        let e = |cfg, t: Vec<Arc<Task>>, s: Vec<u64>| Evolver::new(cfg, t, s).err();
        assert_eq!(
            e(small_config(), vec![], vec![]),
            Some(EvolveError::NoTasks)
        );
        assert!(matches!(
            e(small_config(), tasks.clone(), vec![1]),
            Some(EvolveError::SeedCount { .. })
        ));
        let cfg = EvolutionConfig {
            profile: ProfileChoice::Named("nope".into()),
            ..small_config()
        };
        assert!(matches!(
            e(cfg, tasks.clone(), seeds.clone()),
            Some(EvolveError::UnknownProfile(_))
        ));
        let json = r#"{"profile": "az_demo", "pop_size": 7, "mutations": ["alter_param"]}"#;
        let cfg: EvolutionConfig = serde_json::from_str(json).unwrap();
        assert_eq!((cfg.pop_size, cfg.tournament_size), (7, 10));
        assert!(serde_json::from_str::<EvolutionConfig>(r#"{"pop_sise": 7}"#).is_err());
    }

    #[test]
    fn islands_migrate_deterministically_and_report() {
        let (tasks, seeds) = miner_tasks(2, 4, LinearSizes { train: 20, val: 20 });
        let cfg = EvolutionConfig {
            workers: 2,
            migration_generations: 50,
            checkpoint_generations: 100,
            max_children: Some(200),
            ..small_config()
        };
        let run = || {
            let mut progress = 0;
            let mut finished = 0;
            let bests = run_islands(&cfg, &tasks, &seeds, &AtomicBool::new(false), |e| match e {
                EvolutionEvent::Progress { .. } => progress += 1,
                EvolutionEvent::Finished { children, .. } => {
                    assert_eq!(children, 200);
                    finished += 1
                }
                EvolutionEvent::Candidate { .. } => {}
            })
            .unwrap();
            assert_eq!((progress, finished), (4, 2));
            bests
                .into_iter()
                .map(|b| b.unwrap().fitness.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    /// The baseline search discovers linear regression by SGD (AutoML-Zero's demo
    /// search: az_demo space, random initial programs, mean fitness, early stopping).
    /// Like AutoML-Zero's, one run of this size finds it about one time in ten (which is
    /// why `bench discover` restarts); the seed is fixed to one that does, at about 118k
    /// children (seeds 0–10 do not within the budget; re-picked after the AutoML-Zero
    /// fidelity changes). A change to how the search draws its random numbers needs a
    /// new seed.
    #[test]
    fn baseline_discovers_linear_regression() {
        let cfg = EvolutionConfig {
            max_children: Some(BUDGET),
            target_fitness: Some(0.99),
            ..EvolutionConfig::automl_zero_demo(true, 11, 1)
        };
        assert_discovers_linear_regression(cfg);
    }

    const BUDGET: u64 = 400_000;

    /// From empty programs in the `scalar_linear` profile — every signature of CONST,
    /// ADD, SUB, MUL and DOT in every phase, so far more ways to go wrong than az_demo —
    /// the baseline search assembles an SGD learner one instruction at a time. What
    /// makes that possible is weak selection (tournament 3 of 300): the pieces are
    /// neutral alone, and a population that keeps drifting finds them together
    /// (tournament 10 almost never gets there). Seeds 0–10 were tried after the
    /// AutoML-Zero fidelity changes; seed 7 succeeds at 261k children, the others not
    /// within the budget. A change to how the search draws numbers needs a new seed.
    #[test]
    fn baseline_discovers_linear_regression_from_empty_programs() {
        use Mutation::*;
        let cfg = EvolutionConfig {
            profile: ProfileChoice::Named("scalar_linear".into()),
            initial_population: InitialPopulation::Empty,
            pop_size: 300,
            tournament_size: 3,
            mutations: vec![Insert, Remove, AlterInstruction, AlterParam, AlterArg],
            fitness: Combine::Mean,
            seed: EMPTY_START_SEED,
            max_children: Some(EMPTY_START_BUDGET),
            target_fitness: Some(0.99),
            ..EvolutionConfig::default()
        };
        assert_discovers_linear_regression(cfg);
    }

    const EMPTY_START_SEED: u64 = 7;
    const EMPTY_START_BUDGET: u64 = 600_000;

    /// The search reaches fitness 0.99 on 10 linear tasks (4 features, 100 train / 100
    /// validation) within the config's child budget, and the learner it found also
    /// scores ≥ 0.99 as a validator would score it: on fresh 4-feature tasks of the
    /// default size (1000 / 1000).
    fn assert_discovers_linear_regression(cfg: EvolutionConfig) {
        let sizes = LinearSizes {
            train: 100,
            val: 100,
        };
        let (tasks, seeds) = miner_tasks(10, 4, sizes);
        let mut e = Evolver::new(cfg, tasks, seeds).unwrap();
        e.run(0, &AtomicBool::new(false), |_| {});
        let best = e.best().unwrap();
        assert!(
            best.fitness >= 0.99,
            "best {} after {} children:\n{}",
            best.fitness,
            e.children(),
            crate::engine::print_program(&best.program)
        );
        let suite = SuiteSpec::new(TaskType::ScalarLinear, 4, 8, 1337);
        let fresh: Vec<Arc<Task>> = suite
            .tasks
            .iter()
            .map(|t| Arc::new(build(t, LinearSizes::default())))
            .collect();
        let fresh_seeds: Vec<u64> = (0..8).map(|i| suite.eval_seed(i)).collect();
        let scored = crate::engine::score_on_suite(&best.program, &fresh, &fresh_seeds);
        assert!(scored.score >= 0.99, "{scored:?}");
    }
}
