//! The search a task type runs when `[miner]` leaves its search keys unset: profile,
//! first population, mutations, selection, fitness and the miner suite's example counts.
//! These are tuned defaults, not templates: every run starts from empty or random
//! programs (or, on request, the relay's SOTA), never from a known learner.
//!
//! Why each value is what it is, per task type, is written beside it; the figures
//! behind them are in README.md ("Mining defaults").

use crate::engine::{Combine, InitialPopulation, Mutation};
use crate::tasks::{Metric, TaskType};

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
    /// How the miner suite scores a task's predictions (`None` = as the validators do).
    /// Search fitness only: candidates are still verified, and submitted, by the
    /// validators' own score.
    pub metric: Option<Metric>,
    /// Stop training a task once a prediction is this far off (it then scores the
    /// minimum): cheap rejection of diverging programs.
    pub early_stop_abs_error: Option<f32>,
    /// Miner-suite example counts (`None` = the validator suite's sizes).
    pub train_examples: Option<usize>,
    pub val_examples: Option<usize>,
    /// Children per worker after which the search starts over with a fresh population
    /// and a new seed (0 = never).
    pub restart_children: u64,
    /// A worker also starts over once its best has not improved for this many children
    /// (0 = never; `EvolutionConfig::stagnation_children`).
    pub stagnation_children: u64,
    /// The most arithmetic per training example a child may cost
    /// (`Compiled::example_work`); costlier children are not evaluated (0 = no bound).
    pub max_example_work: u64,
    /// Functional-equivalence cache entries per worker (0 = off): a child whose errors
    /// on a short probe match a program scored before takes that score unevaluated
    /// (`engine::fec`). It changes the search, never a validator's score.
    pub fec_cache_size: usize,
    /// A larger space the search moves on to (`None` = none); see [`NextStage`].
    pub then: Option<NextStage>,
}

/// A search's second stage: after `after_children` children per worker in the first
/// profile, the run goes on in `profile`, its first population copies of the first
/// stage's best program adopted into the larger space (`Profile::adopt`). A run that
/// starts from a given program (the relay's SOTA) starts in this stage.
#[derive(Clone, Debug, PartialEq)]
pub struct NextStage {
    pub profile: String,
    pub after_children: u64,
}

impl Search {
    /// The profile a run that starts from a given program searches.
    pub fn last_profile(&self) -> &str {
        self.then.as_ref().map_or(&self.profile, |t| &t.profile)
    }
}

/// Children per worker the image recipe spends in `az_classify` before it moves on to
/// `az_bilinear` (see the recipe). 3M is the switch of the one staged run measured end
/// to end (README "Discovery II"); az_bilinear holds az_classify's ops, so a learner not
/// yet found by then is still findable after it.
const IMAGE_FIRST_STAGE_CHILDREN: u64 = 3_000_000;

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
            mutations: Mutation::AUTOML_ZERO_DEMO.to_vec(),
            initial_population: InitialPopulation::Random,
            fitness: Combine::Mean,
            metric: None,
            early_stop_abs_error: Some(100.0),
            train_examples: Some(200),
            val_examples: Some(100),
            restart_children: 200_000,
            stagnation_children: 0,
            // az_demo's fixed phase sizes already bound the cost.
            max_example_work: 0,
            fec_cache_size: 0,
            then: None,
        },
        // Image tasks (16-feature projections, 0/1 labels): the same kind of search in a
        // classifier's space (`az_classify`: az_demo's ops plus a scalar ADD for a bias,
        // fixed phases 7/3/8), where a delta rule with a bias, logistic regression's
        // level (0.718 on the validators' suite), can be written. Five choices get the
        // search there (README "Mining defaults" has the runs):
        // - Fitness is squared error on the 0/1 labels (1 − (2/π)·atan(RMSE)), not
        //   accuracy. Under accuracy every partial delta rule scores at chance and the
        //   search settles on a Hebbian learner (0.684); under squared error the
        //   constant predictor 0.5 is where searches wait, and the delta rule is the
        //   next step up from it. Candidates are still verified by the validators' score.
        // - az_classify draws new constants log-uniformly: the delta rule only beats the
        //   constant predictor with a learning rate near 0.003, which U(−1, 1) draws one
        //   time in 300.
        // - A worker starts over after 300k children without a new best instead of on a
        //   fixed budget, so a search that found the learner keeps refining it.
        // - AutoML-Zero's functional-equivalence cache (FEC) is on: a 32/32-example
        //   probe costs a few percent of a full evaluation here (10 tasks of 2000
        //   examples), and most children that reach it behave like a program scored
        //   before. Runs mined 3–5× as many children per second (110–275k/s against
        //   24–58k/s) and found their first learner at 2.5–5 minutes, against 7.5–9.
        // - The miner suite's tasks have the validators' example counts (1000 training,
        //   1000 validation by default): the learning rates that win are small and need
        //   the training examples to converge, and the search overfits a small
        //   validation set. With 200 validation examples, millions of children were
        //   ranked on the same 2000 predictions, and the learners that won scored
        //   0.679–0.715 on the validators' suite at miner fitness 0.722–0.731; with 1000,
        //   three runs' winners scored 0.716–0.7165 (logistic regression's level) at
        //   0.7267–0.7269. Under FEC the larger set costs little: few children reach a
        //   full evaluation.
        // Fixed phase sizes keep the rate steady for the whole run (the reference's
        // growing `cifar` programs slowed it twentyfold within minutes).
        // The 16-unit MLP's level (0.738) needs more than a linear learner, which
        // az_classify cannot write, so after IMAGE_FIRST_STAGE_CHILDREN the search goes
        // on in az_bilinear from its best program. On a loaded 2-core machine that stage
        // found and refined a linear learner (0.718 from 25 minutes of a 45-minute run) but assembled no
        // bilinear term; see README ("Discovery II").
        TaskType::MnistBinary | TaskType::Cifar10Binary => Search {
            profile: "az_classify".into(),
            pop_size: 1000,
            tournament_size: 10,
            mutations: Mutation::AUTOML_ZERO_DEMO.to_vec(),
            initial_population: InitialPopulation::Random,
            fitness: Combine::Mean,
            metric: Some(Metric::InverseAtanRmse),
            early_stop_abs_error: Some(100.0),
            train_examples: None,
            val_examples: None,
            restart_children: 0,
            stagnation_children: 300_000,
            // az_classify's fixed phase sizes already bound the cost.
            max_example_work: 0,
            fec_cache_size: 100_000,
            then: Some(NextStage {
                profile: "az_bilinear".into(),
                after_children: IMAGE_FIRST_STAGE_CHILDREN,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cost::{check, Examples, Limits};
    use crate::engine::mutate::random_program;
    use crate::engine::{Profile, Program};
    use crate::rng::Rng;

    /// The spaces a recipe searches: its first and, when staged, its second.
    fn spaces(search: &Search) -> Vec<Profile> {
        std::iter::once(search.profile.as_str())
            .chain(search.then.as_ref().map(|t| t.profile.as_str()))
            .map(|name| Profile::builtin(name).expect("recipes name built-in profiles"))
            .collect()
    }

    /// Whatever a recipe's search produces must be a valid submission for its task type:
    /// within the validators' phase sizes and cost budget, at the default 16 features and
    /// 1000 + 1000 examples, in every space the recipe searches. A recipe whose programs
    /// the relay refused would mine for nothing.
    #[test]
    fn every_recipe_searches_programs_the_validators_accept() {
        let examples = Examples {
            train: 1000,
            val: 1000,
        };
        let mut rng = Rng::new(5);
        for task in TaskType::ALL {
            let limits = Limits::for_task(task);
            for profile in spaces(&recipe(task)) {
                for _ in 0..200 {
                    let program = random_program(&profile, 16, &mut rng);
                    if let Err(e) = check(&program, task, 16, examples, &limits) {
                        panic!("{task}: a random {} program is refused: {e}", profile.name);
                    }
                }
            }
        }
    }

    /// The image recipe moves on to a space that holds every program of its first, so
    /// the second stage starts where the first ended: each first-space program, adopted,
    /// is a program of the second space, every phase at its fixed size, and it scores
    /// the same bits (the NOOPs it gains do nothing). Mutating it stays in the space.
    #[test]
    fn the_image_recipe_adopts_its_first_spaces_programs_unchanged() {
        use crate::engine::mutate::mutate;
        use crate::engine::{score_on_suite, Mutation, Phase};
        use crate::tasks::scalar_linear::{build, LinearSizes};
        use crate::tasks::suite::SuiteSpec;
        use std::sync::Arc;

        let search = recipe(TaskType::Cifar10Binary);
        assert!(search.then.is_some(), "the image recipe is staged");
        let [first, second] = &spaces(&search)[..] else {
            panic!("two spaces")
        };
        let spec = SuiteSpec::new(TaskType::ScalarLinear, 16, 3, 9);
        let sizes = LinearSizes { train: 50, val: 20 };
        let tasks: Vec<_> = spec
            .tasks
            .iter()
            .map(|t| Arc::new(build(t, sizes)))
            .collect();
        let seeds: Vec<u64> = (0..tasks.len()).map(|i| spec.eval_seed(i)).collect();
        let mut rng = Rng::new(11);
        for _ in 0..50 {
            let program = random_program(first, 16, &mut rng);
            let mut adopted = second.adopt(&program).expect("a first-space program fits");
            assert_eq!(adopted.meta, second.meta());
            for phase in Phase::ALL {
                let (code, spec) = (adopted.phase(phase), second.phase(phase));
                assert_eq!(code.len(), spec.max_ops, "{phase:?} at its fixed size");
                assert_eq!(
                    &code[..program.phase(phase).len()],
                    &program.phase(phase)[..]
                );
                assert!(code.iter().all(|i| second.allows(phase, i)));
            }
            let bits = |p: &Program| -> Vec<u32> {
                score_on_suite(p, &tasks, &seeds)
                    .per_task
                    .iter()
                    .map(|f| f.to_bits())
                    .collect()
            };
            assert_eq!(bits(&adopted), bits(&program));
            for m in Mutation::AUTOML_ZERO_DEMO {
                mutate(&mut adopted, second, 16, m, &mut rng);
            }
            let limits = Limits::for_task(TaskType::Cifar10Binary);
            let examples = Examples {
                train: 1000,
                val: 1000,
            };
            check(&adopted, TaskType::Cifar10Binary, 16, examples, &limits)
                .expect("a mutated adopted program is a valid submission");
        }
        // The other way does not fit: a second-space program has ops the first lacks.
        let wide = (0..50)
            .map(|_| random_program(second, 16, &mut rng))
            .filter(|p| first.adopt(p).is_none())
            .count();
        assert!(
            wide > 40,
            "{wide} of 50 random second-space programs refused"
        );
    }
}
