//! The search a task type runs when `[miner]` leaves its search keys unset: profile,
//! first population, mutations, selection, fitness and the miner suite's example counts.
//! These are tuned defaults, not templates: every run starts from empty or random
//! programs (or, on request, the relay's SOTA), never from a known learner.
//!
//! Why each value is what it is, per task type, is written beside it; the figures
//! behind them are in README.md ("Mining defaults").

use crate::engine::{Combine, InitialPopulation, Mutation};
use crate::tasks::TaskType;

/// A run's resolved search settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// Built-in engine profile (search space).
    pub profile: String,
    pub pop_size: usize,
    pub tournament_size: usize,
    pub mutations: Vec<Mutation>,
    pub initial_population: InitialPopulation,
    /// How the miner suite's task scores combine into fitness.
    pub fitness: Combine,
    /// Stop training a task once a prediction is this far off (it then scores the
    /// minimum): cheap rejection of diverging programs.
    pub early_stop_abs_error: Option<f32>,
    /// Miner-suite example counts (`None` = the validator suite's sizes).
    pub train_examples: Option<usize>,
    pub val_examples: Option<usize>,
    /// Children per worker after which the search starts over with a fresh population
    /// and a new seed (0 = never).
    pub restart_children: u64,
    /// The most arithmetic per training example a child may cost
    /// (`Compiled::example_work`); costlier children are not evaluated (0 = no bound).
    pub max_example_work: u64,
}

/// The default search for `task`.
pub fn recipe(task: TaskType) -> Search {
    match task {
        // Linear regression from scratch is AutoML-Zero's demo problem, and its demo
        // search is what finds the SGD learner routinely: AutoML-Zero's linear-regression
        // space (`az_demo`: the six op signatures an SGD learner and its near misses are
        // made of, fixed phase sizes 10/2/8), random first programs, population 1000
        // with tournament 10, mutations that re-draw parameters, instructions and whole
        // phases, mean fitness with early stopping. One such search finds a learner only
        // now and then, so it starts over after a budget of children, as AutoML-Zero's
        // experiments do (it restarts every 2·10⁸ training steps, about 2·10⁵ children).
        // The miner suite is cheaper than the validators' (200 training / 100 validation
        // examples instead of 1000 / 1000): enough steps for a 16-feature SGD learner to
        // converge, so fitness ranks learners as the validators' suite does, at a fifth
        // of the cost per child.
        TaskType::ScalarLinear => Search {
            profile: "az_demo".into(),
            pop_size: 1000,
            tournament_size: 10,
            mutations: vec![
                Mutation::AlterParam,
                Mutation::AlterInstruction,
                Mutation::RandomizeComponent,
            ],
            initial_population: InitialPopulation::Random,
            fitness: Combine::Mean,
            early_stop_abs_error: Some(100.0),
            train_examples: Some(200),
            val_examples: Some(100),
            restart_children: 200_000,
            // az_demo's fixed phase sizes already bound the cost.
            max_example_work: 0,
        },
        // Image tasks improve over long horizons (bigger programs keep finding a little
        // more), so the search never restarts. The reference miner's settings: the
        // `cifar` profile, empty first programs, population 100, tournament 10, the
        // reference's mutation list, median fitness (the validators' rule) on the
        // validators' task sizes. Unbounded, programs grow into matrix-heavy code that
        // is mostly neutral and cut children/s twentyfold within a minute; a bound of
        // 1024 element operations per example (a 16-unit hidden layer's forward and
        // update, or 64 vector operations) keeps room for real learners and stops the
        // slide.
        TaskType::MnistBinary | TaskType::Cifar10Binary => Search {
            profile: "cifar".into(),
            pop_size: 100,
            tournament_size: 10,
            mutations: Mutation::DEFAULTS.to_vec(),
            initial_population: InitialPopulation::Empty,
            fitness: Combine::Median,
            early_stop_abs_error: None,
            train_examples: None,
            val_examples: None,
            restart_children: 0,
            max_example_work: 1024,
        },
    }
}
