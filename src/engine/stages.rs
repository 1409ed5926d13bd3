//! Stage counters of one island, for `bitsota profile`: what a search did child by
//! child — children, mutations by kind, compilations, exact-cache and FEC lookups and
//! hits, evaluations, examples and instructions run — and, only while profiling, the
//! time each stage of a child took.
//!
//! Why counters beside a sampling profile: one generation of a hundred children lasts a
//! few milliseconds, a handful of samples at 1 kHz; the counters see every child, so
//! they are exact where the samples are only a hint, and they say *why* a stage is dear
//! (how many lookups hit, how many instructions an evaluation ran).
//!
//! Cost: an [`super::Evolver`] owns its [`Meter`] (no sharing, no atomics); counting is a
//! few integer additions per child, which costs tens of microseconds, and the clock is
//! read only when profiling is on — otherwise one predictable branch per stage.
//!
//! One process-wide hook exists, [`set_watch`], for islands the profiler cannot reach:
//! those the daemon's miner builds inside `run_islands`. An island reads it once when
//! it is built and calls it once per generation, never per child.

use super::interp::Compiled;
use super::mutate::Mutation;
use super::EvolutionConfig;
use crate::tasks::Task;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every mutation kind, in the order of [`Stages::mutations`].
pub const MUTATIONS: [Mutation; 7] = [
    Mutation::Insert,
    Mutation::Remove,
    Mutation::AlterInstruction,
    Mutation::AlterArg,
    Mutation::AlterParam,
    Mutation::RandomizeComponent,
    Mutation::RandomizeProgram,
];

/// The name a mutation has in configurations (`alter_param`, …).
pub fn mutation_name(m: Mutation) -> &'static str {
    match m {
        Mutation::Insert => "insert",
        Mutation::Remove => "remove",
        Mutation::AlterInstruction => "alter_instruction",
        Mutation::AlterArg => "alter_arg",
        Mutation::AlterParam => "alter_param",
        Mutation::RandomizeComponent => "randomize_component",
        Mutation::RandomizeProgram => "randomize_program",
    }
}

fn mutation_index(m: Mutation) -> usize {
    MUTATIONS.iter().position(|&k| k == m).unwrap_or(0)
}

/// The stages of one child, in the order it goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Tournament, copy of the parent, mutation (or a first-population program).
    Breed,
    /// Compilation with dead-code elimination.
    Compile,
    /// The exact-duplicate cache: code key and lookup.
    ExactCache,
    /// The FEC: probe evaluation and lookup.
    Fec,
    /// Scoring on the miner suite.
    Evaluate,
    /// Into the population, best-so-far bookkeeping.
    Insert,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Breed,
        Stage::Compile,
        Stage::ExactCache,
        Stage::Fec,
        Stage::Evaluate,
        Stage::Insert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Breed => "breed",
            Stage::Compile => "compile",
            Stage::ExactCache => "exact_cache",
            Stage::Fec => "fec",
            Stage::Evaluate => "evaluate",
            Stage::Insert => "insert",
        }
    }
}

/// What an island did since it was built or its counters were reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stages {
    pub children: u64,
    /// Mutations applied, by kind (see [`MUTATIONS`]); a child copied unmutated has none.
    pub mutations: [u64; MUTATIONS.len()],
    pub compiles: u64,
    pub exact_lookups: u64,
    pub exact_hits: u64,
    pub fec_lookups: u64,
    pub fec_hits: u64,
    /// Children scored on the miner suite (neither cache had them, the work bound let
    /// them through).
    pub evaluations: u64,
    /// Task scorings: `evaluations` × tasks.
    pub task_evaluations: u64,
    /// Training examples run, summed over tasks, FEC probes included.
    pub train_examples: u64,
    /// Live instructions run: setup once per task, predict and learn per training
    /// example run, predict per validation example (counted for every task, also one
    /// that early stopping ended: lockstep evaluation runs its lane along).
    pub instructions: u64,
    /// Time per stage (see [`Stage::ALL`]); zero unless profiling.
    pub time: [Duration; Stage::ALL.len()],
}

impl Stages {
    pub fn mutation_count(&self, m: Mutation) -> u64 {
        self.mutations[mutation_index(m)]
    }

    pub fn time(&self, s: Stage) -> Duration {
        self.time[s as usize]
    }

    /// How many times a stage ran.
    pub fn calls(&self, s: Stage) -> u64 {
        match s {
            Stage::Breed | Stage::Insert => self.children,
            Stage::Compile => self.compiles,
            Stage::ExactCache => self.exact_lookups,
            Stage::Fec => self.fec_lookups,
            Stage::Evaluate => self.evaluations,
        }
    }

    /// Field by field: `f(self, other)` on every counter and time.
    fn zip(
        &self,
        other: &Stages,
        f: impl Fn(u64, u64) -> u64,
        g: impl Fn(Duration, Duration) -> Duration,
    ) -> Stages {
        Stages {
            children: f(self.children, other.children),
            mutations: std::array::from_fn(|i| f(self.mutations[i], other.mutations[i])),
            compiles: f(self.compiles, other.compiles),
            exact_lookups: f(self.exact_lookups, other.exact_lookups),
            exact_hits: f(self.exact_hits, other.exact_hits),
            fec_lookups: f(self.fec_lookups, other.fec_lookups),
            fec_hits: f(self.fec_hits, other.fec_hits),
            evaluations: f(self.evaluations, other.evaluations),
            task_evaluations: f(self.task_evaluations, other.task_evaluations),
            train_examples: f(self.train_examples, other.train_examples),
            instructions: f(self.instructions, other.instructions),
            time: std::array::from_fn(|i| g(self.time[i], other.time[i])),
        }
    }

    /// The sum of two islands' counters.
    pub fn plus(&self, other: &Stages) -> Stages {
        self.zip(other, u64::saturating_add, Duration::saturating_add)
    }

    /// What happened since `earlier`, a snapshot of the same island.
    pub fn since(&self, earlier: &Stages) -> Stages {
        self.zip(earlier, u64::saturating_sub, Duration::saturating_sub)
    }
}

/// Sees an island's counters once per generation (every `pop_size` children). It may
/// block: `bitsota profile dashboard` holds the islands of the daemon's miner at the
/// end of their warm-up until it has started sampling.
pub trait Watch: Send + Sync {
    fn generation(&self, worker: usize, children: u64, stages: &Stages);
}

static WATCH: Mutex<Option<Arc<dyn Watch>>> = Mutex::new(None);

/// Watch every island built from now on (`None`: stop watching new ones); islands
/// watched also time their stages. For the profiler of a whole daemon only.
pub fn set_watch(watch: Option<Arc<dyn Watch>>) {
    *WATCH.lock().unwrap_or_else(|e| e.into_inner()) = watch;
}

fn current_watch() -> Option<Arc<dyn Watch>> {
    WATCH.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

struct Watched {
    watch: Arc<dyn Watch>,
    worker: usize,
    every: u64,
}

/// An island's counters and the little it needs to fill them in.
pub(crate) struct Meter {
    pub(crate) counts: Stages,
    timing: bool,
    /// Tasks of a full evaluation and their validation examples, summed.
    tasks: u64,
    val_examples: u64,
    /// Validation examples of an FEC probe.
    probe_val: u64,
    watch: Option<Watched>,
}

impl Meter {
    /// The meter of island `worker`, watched (and timing) when a [`Watch`] is set.
    pub(crate) fn new(tasks: &[Arc<Task>], config: &EvolutionConfig, worker: usize) -> Self {
        let watch = current_watch().map(|watch| Watched {
            watch,
            worker,
            every: config.pop_size.max(1) as u64,
        });
        let probe_val = tasks
            .first()
            .map_or(0, |t| t.val_len().min(config.fec_val_examples));
        Meter {
            counts: Stages::default(),
            timing: watch.is_some(),
            tasks: tasks.len() as u64,
            val_examples: tasks.iter().map(|t| t.val_len() as u64).sum(),
            probe_val: probe_val as u64,
            watch,
        }
    }

    pub(crate) fn set_timing(&mut self, on: bool) {
        self.timing = on;
    }

    pub(crate) fn reset(&mut self) {
        self.counts = Stages::default();
    }

    /// The start of a stage, when timing.
    #[inline]
    pub(crate) fn clock(&self) -> Option<Instant> {
        if self.timing {
            Some(Instant::now())
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn lap(&mut self, stage: Stage, started: Option<Instant>) {
        if let Some(t) = started {
            self.counts.time[stage as usize] += t.elapsed();
        }
    }

    pub(crate) fn mutated(&mut self, m: Mutation) {
        self.counts.mutations[mutation_index(m)] += 1;
    }

    pub(crate) fn compiled(&mut self, started: Option<Instant>) {
        self.counts.compiles += 1;
        self.lap(Stage::Compile, started);
    }

    pub(crate) fn exact_lookup(&mut self, started: Option<Instant>, hit: bool) {
        self.counts.exact_lookups += 1;
        self.counts.exact_hits += hit as u64;
        self.lap(Stage::ExactCache, started);
    }

    /// An FEC probe of `train_steps` training examples on one task, then its lookup.
    pub(crate) fn fec_probe(
        &mut self,
        started: Option<Instant>,
        c: &Compiled,
        train_steps: u64,
        hit: bool,
    ) {
        self.counts.fec_lookups += 1;
        self.counts.fec_hits += hit as u64;
        self.ran(c, 1, train_steps, self.probe_val);
        self.lap(Stage::Fec, started);
    }

    /// A full evaluation on the miner suite that ran `train_steps` training examples.
    pub(crate) fn evaluated(&mut self, started: Option<Instant>, c: &Compiled, train_steps: u64) {
        self.counts.evaluations += 1;
        self.counts.task_evaluations += self.tasks;
        self.ran(c, self.tasks, train_steps, self.val_examples);
        self.lap(Stage::Evaluate, started);
    }

    fn ran(&mut self, c: &Compiled, tasks: u64, train: u64, val: u64) {
        let [setup, predict, learn] = c.live_sizes().map(|n| n as u64);
        self.counts.train_examples += train;
        self.counts.instructions += setup * tasks + (predict + learn) * train + predict * val;
    }

    /// A child is in the population: the island has made `children` in all.
    pub(crate) fn child(&mut self, started: Option<Instant>, children: u64) {
        self.counts.children += 1;
        self.lap(Stage::Insert, started);
        if let Some(w) = &self.watch {
            if children % w.every == 0 {
                w.watch.generation(w.worker, children, &self.counts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EvolutionConfig, Evolver, ProfileChoice};
    use crate::tasks::scalar_linear::{build, LinearSizes};
    use crate::tasks::suite::SuiteSpec;
    use crate::tasks::TaskType;

    fn suite(count: usize) -> (Vec<Arc<Task>>, Vec<u64>) {
        let spec = SuiteSpec::new(TaskType::ScalarLinear, 4, count, 0);
        let sizes = LinearSizes { train: 30, val: 20 };
        let tasks = spec
            .tasks
            .iter()
            .map(|t| Arc::new(build(t, sizes)))
            .collect();
        (tasks, (0..count).map(|i| spec.eval_seed(i)).collect())
    }

    fn config() -> EvolutionConfig {
        EvolutionConfig {
            profile: ProfileChoice::Named("az_demo".into()),
            initial_population: crate::engine::InitialPopulation::Random,
            mutations: vec![
                Mutation::AlterParam,
                Mutation::AlterInstruction,
                Mutation::RandomizeComponent,
            ],
            pop_size: 20,
            tournament_size: 5,
            seed: 3,
            ..Default::default()
        }
    }

    #[test]
    fn counters_add_up_to_the_children_made() {
        let (tasks, seeds) = suite(3);
        let mut e = Evolver::new(config(), tasks, seeds).unwrap();
        for _ in 0..300 {
            e.step();
        }
        let s = *e.stages();
        let exact = e.exact_cache_stats().unwrap();
        assert_eq!(s.children, 300);
        assert_eq!(s.compiles, 300);
        assert_eq!((s.exact_lookups, s.exact_hits), (exact.lookups, exact.hits));
        assert_eq!((s.fec_lookups, s.fec_hits), (0, 0));
        assert_eq!(s.evaluations, 300 - exact.hits);
        assert_eq!(s.task_evaluations, 3 * s.evaluations);
        // The first 20 are the random first population; of the rest about 90 % mutate,
        // with the three configured kinds only.
        let mutated: u64 = s.mutations.iter().sum();
        assert!((200..=280).contains(&mutated), "{s:?}");
        for m in [Mutation::Insert, Mutation::Remove, Mutation::AlterArg] {
            assert_eq!(s.mutation_count(m), 0);
        }
        assert!(s.instructions > s.train_examples, "{s:?}");
        assert_eq!(s.time, [Duration::ZERO; 6], "no clock without profiling");
        e.reset_stages();
        e.set_profiling(true);
        e.step();
        let s = *e.stages();
        assert_eq!(s.children, 1);
        assert!(s.time(Stage::Breed) > Duration::ZERO, "{s:?}");
        assert!(s.time(Stage::Compile) > Duration::ZERO, "{s:?}");
    }

    /// Setup once per task, predict and learn per training example, predict per
    /// validation example: the linear learner (live sizes known) on three tasks.
    #[test]
    fn instructions_are_live_code_times_examples() {
        let (tasks, seeds) = suite(3);
        let text = include_str!("../../fixtures/programs/linear_sgd.dsl");
        let program = crate::engine::parse_program(text).unwrap();
        let [setup, predict, learn] = crate::engine::compile(&program, 4)
            .live_sizes()
            .map(|n| n as u64);
        let cfg = EvolutionConfig {
            exact_cache_size: 0,
            ..config()
        };
        let mut e = Evolver::new(cfg, tasks, seeds).unwrap();
        e.evaluate(&program);
        let s = *e.stages();
        assert_eq!(s.train_examples, 3 * 30, "the learner never stops early");
        assert_eq!(
            s.instructions,
            3 * setup + 3 * 30 * (predict + learn) + 3 * 20 * predict
        );
    }

    #[test]
    fn fec_probes_are_counted_with_their_hits() {
        let (tasks, seeds) = suite(2);
        let cfg = EvolutionConfig {
            fec_cache_size: 1000,
            fec_train_examples: 10,
            fec_val_examples: 10,
            exact_cache_size: 0,
            ..config()
        };
        let mut e = Evolver::new(cfg, tasks, seeds).unwrap();
        for _ in 0..200 {
            e.step();
        }
        let s = *e.stages();
        let fec = e.fec_stats().unwrap();
        assert_eq!((s.fec_lookups, s.fec_hits), (fec.lookups, fec.hits));
        assert_eq!(s.evaluations, 200 - fec.hits);
    }

    #[test]
    fn differences_and_sums_are_field_by_field() {
        let mut a = Stages {
            children: 5,
            instructions: 100,
            ..Default::default()
        };
        a.mutations[2] = 3;
        a.time[0] = Duration::from_millis(4);
        let mut b = a;
        b.children = 12;
        b.mutations[2] = 7;
        b.time[0] = Duration::from_millis(10);
        let d = b.since(&a);
        assert_eq!((d.children, d.mutations[2], d.instructions), (7, 4, 0));
        assert_eq!(d.time[0], Duration::from_millis(6));
        assert_eq!(a.plus(&d), b);
    }

    /// A watched meter reports every `pop_size` children, with its counters then.
    #[test]
    fn a_watch_sees_each_generation() {
        #[derive(Default)]
        struct Seen(Mutex<Vec<(usize, u64, u64)>>);
        impl Watch for Seen {
            fn generation(&self, worker: usize, children: u64, stages: &Stages) {
                self.0
                    .lock()
                    .unwrap()
                    .push((worker, children, stages.children));
            }
        }
        let seen = Arc::new(Seen::default());
        let mut meter = Meter {
            counts: Stages::default(),
            timing: true,
            tasks: 1,
            val_examples: 1,
            probe_val: 1,
            watch: Some(Watched {
                watch: seen.clone(),
                worker: 2,
                every: 4,
            }),
        };
        for children in 1..=9 {
            meter.child(meter.clock(), children);
        }
        assert_eq!(*seen.0.lock().unwrap(), vec![(2, 4, 4), (2, 8, 8)]);
    }
}
