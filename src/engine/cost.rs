//! The evaluation cost model and budget: one pure check that the relay (before storing a
//! submission), the validators and pool evaluators (before re-evaluating one) and
//! `bitsota eval` all apply, so that no program a stranger submits can hold their CPUs
//! for longer than a documented amount.
//!
//! **Cost.** The estimated cost of a program on one task is the work of its live
//! instructions (compiled at the task's vector size `D`, dead code removed) times the
//! examples each phase runs for: `setup + n_train·(predict + learn) + n_val·predict`.
//! An instruction's work, in *units* of one element-wise arithmetic operation on one
//! task, is the number of elements its kernel touches, weighted by kind: scalar ops 1,
//! vector ops `D`, matrix element-wise ops and matrix × vector `D²`, matrix × matrix
//! `D³`, transcendental functions and random draws several units per element, plus a
//! fixed dispatch cost (see [`Compiled::phase_work`]). The estimate is exact arithmetic
//! over the program's shape: it never runs the program.
//!
//! **Limits**, checked in this order, the first failure naming its limit:
//! 1. a declared `vector_dim` must equal the task's `input_dim` (a larger `D` only
//!    multiplies the work of the same program);
//! 2. each phase has at most the task type's profile maximum of instructions
//!    (`scalar_linear` 10/2/8, image tasks 7/11/23: what miners' searches produce),
//!    unless the configuration raises it (`[budget] setup_max_ops` …);
//! 3. the estimated cost per task is at most the task type's budget
//!    ([`default_budget`], `[budget] <task_type>` in the configuration).
//!
//! Budgets are per task, so a validator's CPU per submission is at most its suite's
//! task count times the budget (plus a wall-clock deadline, enforced separately by
//! [`super::interp::score_on_suite_within`]). The check runs outside the arithmetic:
//! a program within budget scores bit-identically with or without it.

use super::interp::{compile, Compiled};
use super::program::{Phase, Profile, Program};
use crate::tasks::TaskType;

/// The default budget of a task type, in cost units per task.
///
/// Chosen as at least twice the cost of the most expensive program the type's search
/// profile can produce at the default `input_dim` 16 and the default 1000 + 1000
/// examples (every phase at its maximum size, every instruction the profile's dearest
/// op: 3.1M units for `scalar_linear`, 102M for the image tasks), rounded up:
/// every program a miner's search finds fits with room to spare, and a hostile program
/// costs a validator at most about as much as the dearest honest one. The
/// figures are derived in this module's tests (`budgets_cover_the_search_profiles`).
pub fn default_budget(task_type: TaskType) -> u64 {
    match task_type {
        // Profile scalar_linear: CONST ADD SUB MUL DOT (ADD m,m→m the dearest), 10/2/8.
        TaskType::ScalarLinear => 8_000_000,
        // Profile cifar: MATMUL (m,m→m) in predict, OUTER in learn, 7/11/23 instructions.
        TaskType::MnistBinary | TaskType::Cifar10Binary => 250_000_000,
    }
}

/// What an evaluation of one task may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Cost units per task.
    pub budget: u64,
    /// Most instructions per phase (setup, predict, learn).
    pub max_ops: [usize; 3],
}

impl Limits {
    /// The defaults of `task_type`: its profile's phase maxima and [`default_budget`].
    pub fn for_task(task_type: TaskType) -> Limits {
        let profile =
            Profile::builtin(task_type.profile_name()).expect("task profiles are built in");
        Limits {
            budget: default_budget(task_type),
            max_ops: Phase::ALL.map(|p| profile.phase(p).max_ops),
        }
    }
}

/// The examples one task evaluation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Examples {
    pub train: usize,
    pub val: usize,
}

/// The estimated cost of one evaluation of `compiled` on a task with `examples`.
pub fn estimate(compiled: &Compiled, examples: Examples) -> u64 {
    let [setup, predict, learn] = compiled.phase_work();
    let per_train = predict.saturating_add(learn);
    setup
        .saturating_add(per_train.saturating_mul(examples.train as u64))
        .saturating_add(predict.saturating_mul(examples.val as u64))
}

/// Why a program may not be evaluated on a task.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error("vector_dim={declared} differs from the task's input_dim={input_dim}: a declared vector_dim must equal input_dim")]
    VectorDim { declared: usize, input_dim: usize },
    #[error("{phase} has {len} instructions, over the {task_type} limit of {max} (configuration key budget.{phase}_max_ops)")]
    PhaseSize {
        phase: &'static str,
        len: usize,
        max: usize,
        task_type: TaskType,
    },
    #[error("estimated cost {cost} units per task is over the {task_type} budget of {budget} units (configuration key budget.{task_type})")]
    Cost {
        cost: u64,
        budget: u64,
        task_type: TaskType,
    },
}

/// Check `program` against `limits` for a task of `task_type` with `input_dim` features
/// and `examples`; `Ok` carries the estimated cost per task.
pub fn check(
    program: &Program,
    task_type: TaskType,
    input_dim: usize,
    examples: Examples,
    limits: &Limits,
) -> Result<u64, OverBudget> {
    if let Some(declared) = program.meta.vector_dim {
        if declared != input_dim {
            return Err(OverBudget::VectorDim {
                declared,
                input_dim,
            });
        }
    }
    for (phase, max) in Phase::ALL.into_iter().zip(limits.max_ops) {
        let len = program.phase(phase).len();
        if len > max {
            return Err(OverBudget::PhaseSize {
                phase: phase.name(),
                len,
                max,
                task_type,
            });
        }
    }
    let cost = estimate(&compile(program, input_dim), examples);
    if cost > limits.budget {
        return Err(OverBudget::Cost {
            cost,
            budget: limits.budget,
            task_type,
        });
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dsl::parse_program;
    use crate::engine::interp::compile_keeping_dead;
    use crate::engine::program::{Addr, Instruction};
    use crate::engine::Op;

    const DEFAULT: Examples = Examples {
        train: 1000,
        val: 1000,
    };

    /// The spec's linear-regression learner (online SGD).
    const LEARNER: &str =
        "# setup\ns2 = 0.01\nv1 = gaussian(0.0, 0.1)\n# predict\ns0 = dot(v0, v1)\n\
        # learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";

    fn cost_of(text: &str, dim: usize) -> u64 {
        estimate(&compile(&parse_program(text).unwrap(), dim), DEFAULT)
    }

    #[test]
    fn cost_counts_live_work_times_examples() {
        // Per example, D = 16: predict dot 2+16+1, learn 3 + 3 + (2+16) + (2+16).
        let (setup, predict, learn) = (3 + (2 + 16 * 8), 19, 3 + 3 + 18 + 18);
        assert_eq!(
            cost_of(LEARNER, 16),
            setup + 1000 * (predict + learn) + 1000 * predict
        );
        // Dead code costs nothing; an empty program only its nothing.
        assert_eq!(cost_of("# predict\ns5 = s3 + s4\n", 16), 0);
        // Matrix products grow with D² and D³.
        let matvec = cost_of("# predict\nv1 = matmul(m0, v0)\ns0 = dot(v1, v1)\n", 16);
        let matmat = cost_of("# predict\nm1 = matmul(m0, m0)\ns0 = norm(m1)\n", 16);
        assert_eq!(matvec, 2000 * ((2 + 256 + 16) + (2 + 16 + 1)));
        assert_eq!(matmat, 2000 * ((2 + 4096 + 256) + (2 + 256 + 1)));
    }

    #[test]
    fn limits_are_checked_in_order_and_name_themselves() {
        let limits = Limits::for_task(TaskType::ScalarLinear);
        let learner = parse_program(LEARNER).unwrap();
        let ok = check(&learner, TaskType::ScalarLinear, 16, DEFAULT, &limits).unwrap();
        assert_eq!(ok, cost_of(LEARNER, 16));

        let declared = parse_program(&format!("# meta: vector_dim=1024\n{LEARNER}")).unwrap();
        let e = check(&declared, TaskType::ScalarLinear, 16, DEFAULT, &limits).unwrap_err();
        assert!(matches!(
            e,
            OverBudget::VectorDim {
                declared: 1024,
                input_dim: 16
            }
        ));
        assert!(e.to_string().contains("must equal input_dim"), "{e}");
        // Declaring the task's own size is fine.
        let same = parse_program(&format!("# meta: vector_dim=16\n{LEARNER}")).unwrap();
        assert!(check(&same, TaskType::ScalarLinear, 16, DEFAULT, &limits).is_ok());

        let mut long = learner.clone();
        long.predict = vec![Instruction::binary(Op::Add, Addr::s(2), Addr::s(2), Addr::s(0)); 3];
        let e = check(&long, TaskType::ScalarLinear, 16, DEFAULT, &limits).unwrap_err();
        assert_eq!(e.to_string(), "predict has 3 instructions, over the scalar_linear limit of 2 (configuration key budget.predict_max_ops)");
        let raised = Limits {
            max_ops: [10, 3, 8],
            ..limits
        };
        assert!(check(&long, TaskType::ScalarLinear, 16, DEFAULT, &raised).is_ok());

        let tight = Limits {
            budget: ok - 1,
            ..limits
        };
        let e = check(&learner, TaskType::ScalarLinear, 16, DEFAULT, &tight).unwrap_err();
        assert!(matches!(e, OverBudget::Cost { cost, .. } if cost == ok));
        assert!(e.to_string().contains("budget.scalar_linear"), "{e}");
    }

    /// The dearest program a profile's search can produce: every phase at its maximum
    /// size, each instruction the allowed op and signature with the most work, all live.
    fn dearest(profile: &Profile, dim: usize) -> u64 {
        let mut program = Program::empty(profile.meta());
        for phase in Phase::ALL {
            let spec = profile.phase(phase);
            let best = spec
                .ops
                .iter()
                .flat_map(|e| e.allowed().iter().map(move |s| (e.op, *s)))
                .map(|(op, sig)| {
                    // The last register of each kind (s0, s1 and v0 are special).
                    let last = |k| (profile.meta().count(k) - 1) as u16;
                    let reg = |k: Option<crate::engine::Kind>| k.map(|k| Addr::new(k, last(k)));
                    let i = Instruction {
                        op,
                        arg1: reg(sig.a),
                        arg2: reg(sig.b),
                        dest: Some(Addr::new(sig.out, last(sig.out))),
                        const1: 0.5,
                        const2: 1.0,
                    };
                    let mut one = Program::empty(profile.meta());
                    one.predict = vec![i];
                    (compile_keeping_dead(&one, dim).phase_work()[1], i)
                })
                .max_by_key(|(w, _)| *w)
                .expect("every phase allows an op");
            *program.phase_mut(phase) = vec![best.1; spec.max_ops];
        }
        estimate(&compile_keeping_dead(&program, dim), DEFAULT)
    }

    #[test]
    fn budgets_cover_the_search_profiles() {
        for t in TaskType::ALL {
            let profile = Profile::builtin(t.profile_name()).unwrap();
            let worst = dearest(&profile, 16);
            let budget = default_budget(t);
            assert!(worst <= budget / 2, "{t}: dearest {worst}, budget {budget}");
            assert!(
                worst > budget / 10,
                "{t}: budget {budget} far above the dearest {worst}"
            );
        }
    }

    #[test]
    fn the_hostile_example_is_refused_cheaply() {
        // The program: 10,000 predict instructions of outer/matmul/norm at
        // vector_dim 1024, submitted for 16 features.
        let mut text = String::from("# meta: vector_dim=1024 matrix_count=4\n# predict\n");
        for _ in 0..3333 {
            text.push_str("m1 = outer(v0, v0)\nm2 = matmul(m1, m1)\ns0 = norm(m2)\n");
        }
        let p = parse_program(&text).unwrap();
        let limits = Limits::for_task(TaskType::ScalarLinear);
        let started = std::time::Instant::now();
        assert!(check(&p, TaskType::ScalarLinear, 16, DEFAULT, &limits).is_err());
        // Without vector_dim, the phase size is next; with a raised size, the cost.
        let mut at16 = p.clone();
        at16.meta.vector_dim = None;
        assert!(matches!(
            check(&at16, TaskType::ScalarLinear, 16, DEFAULT, &limits),
            Err(OverBudget::PhaseSize { .. })
        ));
        let raised = Limits {
            max_ops: [10_000; 3],
            ..limits
        };
        assert!(matches!(
            check(&at16, TaskType::ScalarLinear, 16, DEFAULT, &raised),
            Err(OverBudget::Cost { .. })
        ));
        assert!(started.elapsed().as_secs_f64() < 5.0);
    }
}
