//! The interpreter on random and adversarial programs: every op with every operand and
//! destination kind (the kind mismatches the parser lets through become no-ops), random
//! programs and register files up to the DSL's maximum sizes, vector sizes that take
//! every kernel specialisation, one lane and lockstep batches. Built with
//! `--features checked` (as CI runs it), every register access of the kernel is
//! bounds-checked, so any out-of-range access fails a test instead of going unnoticed;
//! without it, the same properties still run.
//!
//! Properties: compilation and evaluation never panic; a lockstep batch scores each task
//! bit-identically to scoring it alone; an evaluation under a far deadline scores
//! exactly as one without, and a cancelled one ends without a score.

use bitsota::engine::dsl::{MAX_MATRICES, MAX_SCALARS, MAX_VECTORS};
use bitsota::engine::{
    compile, parse_program, print_program, score_on_suite, score_on_suite_within, Addr,
    EvalOptions, Evaluator, Instruction, Kind, Op, Program, ProgramMeta, Stop, TaskBatch,
};
use bitsota::tasks::scalar_linear::{self, LinearSizes};
use bitsota::tasks::{Metric, Task, TaskSpec, TaskType};
use proptest::prelude::*;
use std::sync::Arc;

/// Vector sizes: 4, 8, 16 and 32 have compiled-in kernels; the others run the generic one.
const DIMS: [usize; 7] = [1, 3, 4, 8, 16, 32, 33];

/// Small tasks (a few examples: the checked debug build is slow) of `dim` features; every
/// other one is a binary-classification task, so both metrics run.
fn tasks(dim: usize, count: usize) -> Vec<Arc<Task>> {
    (0..count)
        .map(|i| {
            let spec = TaskSpec::new(TaskType::ScalarLinear, i as u32, dim);
            let mut t = scalar_linear::build(&spec, LinearSizes { train: 4, val: 3 });
            if i % 2 == 1 {
                t.metric = Metric::Accuracy;
                for y in t.train_y.iter_mut().chain(&mut t.val_y) {
                    *y = if *y > 0.0 { 1.0 } else { 0.0 };
                }
            }
            Arc::new(t)
        })
        .collect()
}

fn meta(counts: [usize; 3], vector_dim: Option<usize>) -> ProgramMeta {
    ProgramMeta {
        scalar_count: counts[0],
        vector_count: counts[1],
        matrix_count: counts[2],
        vector_dim,
        setup_max_ops: 64,
        predict_max_ops: 64,
        learn_max_ops: 64,
    }
}

/// Score `p` on `count` tasks of `dim` features every way the interpreter can: alone,
/// in one lockstep batch, through the suite function with and without a [`Stop`].
/// Panics (a failed test) on any inconsistency.
fn run_every_way(p: &Program, dim: usize, count: usize) {
    let tasks = tasks(dim, count);
    let seeds: Vec<u64> = (0..count as u64).map(|i| 7 + i).collect();
    let c = compile(p, dim);
    let mut ev = Evaluator::new();
    let opts = EvalOptions::default();
    let alone: Vec<u32> = tasks
        .iter()
        .zip(&seeds)
        .map(|(t, &s)| ev.score(&c, t, s, &opts).to_bits())
        .collect();
    let batch = TaskBatch::new(&tasks).expect("equal shapes");
    let mut together = vec![0.0; count];
    ev.score_batch(&c, &batch, &seeds, &opts, &mut together);
    let together: Vec<u32> = together.iter().map(|s| s.to_bits()).collect();
    assert_eq!(together, alone, "lockstep vs alone\n{}", print_program(p));
    let plain = score_on_suite(p, &tasks, &seeds);
    let never = || false;
    let far = Stop {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(3600)),
        cancelled: &never,
    };
    let within = score_on_suite_within(p, &tasks, &seeds, &far).expect("far deadline");
    assert_eq!(plain.score.to_bits(), within.score.to_bits());
    assert_eq!(
        plain
            .per_task
            .iter()
            .map(|s| s.to_bits())
            .collect::<Vec<_>>(),
        alone
    );
    // A cancelled evaluation ends without a score.
    let now = || true;
    let cancelled = Stop {
        deadline: None,
        cancelled: &now,
    };
    assert!(score_on_suite_within(p, &tasks, &seeds, &cancelled).is_err());
}

/// Every op, with every operand and destination kind (or none), as the only instruction
/// of each phase: the kind mismatches the parser accepts, and the absent operands only
/// code can build.
#[test]
fn every_op_with_every_operand_kind() {
    let kinds = [
        None,
        Some(Kind::Scalar),
        Some(Kind::Vector),
        Some(Kind::Matrix),
    ];
    let reg = |k: Option<Kind>, i: u16| k.map(|k| Addr::new(k, i));
    // 10 tasks at D = 4 and 16 take the kernels specialised for the miner's lockstep
    // batch (and, alone, for one lane; the suite's batches of 8 at D = 16 too).
    for (dim, count) in [(1, 3), (3, 3), (4, 10), (16, 10)] {
        for op in Op::ALL {
            for a in kinds {
                for b in kinds {
                    for d in kinds {
                        // Index 1 throughout (s1 is the label); index 0 for the
                        // destination too, so s0/v0 are overwritten.
                        let i = Instruction {
                            op,
                            arg1: reg(a, 1),
                            arg2: reg(b, 0),
                            dest: reg(d, 0),
                            const1: 1.7,
                            const2: -0.3,
                        };
                        let p = Program {
                            meta: meta([2, 2, 2], None),
                            setup: vec![i],
                            predict: vec![
                                i,
                                Instruction {
                                    dest: reg(d, 1),
                                    ..i
                                },
                            ],
                            learn: vec![i],
                        };
                        run_every_way(&p, dim, count);
                    }
                }
            }
        }
    }
}

/// A register of any kind, its index up to two past `counts` (out of range: a no-op).
fn arb_addr(counts: [usize; 3]) -> impl Strategy<Value = Option<Addr>> {
    proptest::option::weighted(
        0.95,
        (0usize..3).prop_flat_map(move |k| {
            let kind = Kind::ALL[k];
            (0..counts[k] as u16 + 2).prop_map(move |i| Addr::new(kind, i))
        }),
    )
}

fn arb_const() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -4.0f32..4.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(-1e30f32),
        1 => (0u32..64).prop_map(|i| i as f32),
        1 => any::<f32>(),
    ]
}

fn arb_instruction(counts: [usize; 3]) -> impl Strategy<Value = Instruction> {
    (
        0u8..25,
        arb_addr(counts),
        arb_addr(counts),
        arb_addr(counts),
        arb_const(),
        arb_const(),
    )
        .prop_map(|(code, arg1, arg2, dest, const1, const2)| Instruction {
            op: Op::from_code(code).expect("25 opcodes"),
            arg1,
            arg2,
            dest,
            const1,
            const2,
        })
}

/// Well-typed instructions of the matrix learners' ops — products, outer, dot, norm
/// and element-wise ops with every broadcast (scalar with anything, a vector on every
/// row of a matrix) — over `[4, 3, 2]` registers.
fn arb_matrix_instruction() -> impl Strategy<Value = Instruction> {
    use Kind::{Matrix as M, Scalar as S, Vector as V};
    let typed = [
        (Op::Matmul, M, Some(V), V),
        (Op::Matmul, M, Some(V), M),
        (Op::Matmul, M, Some(M), M),
        (Op::Outer, V, Some(V), M),
        (Op::Dot, V, Some(V), S),
        (Op::Dot, V, Some(V), V),
        (Op::Norm, M, None, S),
        (Op::Heaviside, M, None, M),
        (Op::Add, M, Some(M), M),
        (Op::Sub, M, Some(V), M),
        (Op::Mul, V, Some(M), M),
        (Op::Mul, S, Some(M), M),
        (Op::Div, M, Some(S), M),
        (Op::Mul, S, Some(V), V),
        (Op::Max, V, Some(V), V),
        (Op::Add, S, Some(S), S),
        (Op::Gaussian, M, None, M),
    ];
    let index = |k: Kind| 0..[4u16, 3, 2][k as usize];
    proptest::sample::select(typed.to_vec()).prop_flat_map(move |(op, ka, kb, kd)| {
        let b = kb.map_or(Just(None).boxed(), |kb| {
            index(kb).prop_map(move |i| Some(Addr::new(kb, i))).boxed()
        });
        (index(ka), b, index(kd), -1.0f32..1.0).prop_map(move |(a, b, d, c)| Instruction {
            op,
            arg1: Some(Addr::new(ka, a)),
            arg2: b,
            dest: Some(Addr::new(kd, d)),
            const1: c * 0.1,
            const2: c.abs() * 0.3,
        })
    })
}

/// A program of [`arb_matrix_instruction`]s whose matrices and vectors all reach the
/// prediction (`s0` sums the norms of `m0`, `m1`, `v1`, `v2`), so that dead-code
/// elimination leaves most instructions running.
fn arb_matrix_program(max_ops: usize) -> impl Strategy<Value = Program> {
    let phase = || proptest::collection::vec(arb_matrix_instruction(), 1..max_ops);
    (phase(), phase(), phase()).prop_map(|(setup, mut predict, learn)| {
        let norms = "s2 = norm(m0)\ns3 = norm(m1)\ns0 = s2 + s3\ns2 = norm(v1)\n\
                     s0 = s0 + s2\ns2 = norm(v2)\ns0 = s0 + s2\n";
        let tail = parse_program(&format!(
            "# meta: scalar_count=4 vector_count=3 matrix_count=2\n# predict\n{norms}"
        ))
        .unwrap();
        predict.extend(tail.predict);
        Program {
            meta: meta([4, 3, 2], None),
            setup,
            predict,
            learn,
        }
    })
}

/// A program over random register counts (from none up to the DSL maxima).
fn arb_program(max_ops: usize) -> impl Strategy<Value = Program> {
    (
        prop_oneof![0usize..6, Just(MAX_SCALARS)],
        prop_oneof![0usize..5, Just(MAX_VECTORS)],
        prop_oneof![0usize..3, Just(MAX_MATRICES)],
    )
        .prop_flat_map(move |(s, v, m)| {
            let counts = [s, v, m];
            let phase = move || proptest::collection::vec(arb_instruction(counts), 0..max_ops);
            (phase(), phase(), phase()).prop_map(move |(setup, predict, learn)| Program {
                meta: meta(counts, None),
                setup,
                predict,
                learn,
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Matrix programs at the sizes and lane counts with specialised kernels (products
    /// four sums at a time, tiled scalar operands, whole-row broadcasting) and at sizes
    /// without them.
    #[test]
    fn matrix_programs_in_every_specialisation(
        p in arb_matrix_program(8),
        dim in proptest::sample::select(vec![3usize, 4, 8, 16]),
        lanes in proptest::sample::select(vec![1usize, 8, 10]),
    ) {
        run_every_way(&p, dim, lanes);
    }

    #[test]
    fn random_programs_at_every_vector_size(
        p in arb_program(12),
        dim in proptest::sample::select(DIMS.to_vec()),
        lanes in proptest::sample::select(vec![1usize, 3, 8, 10]),
    ) {
        run_every_way(&p, dim, lanes);
    }

    /// A declared `vector_dim` unlike the task's `input_dim`: larger (`v0` keeps
    /// entries past the input) and smaller (the input is cut).
    #[test]
    fn declared_vector_dims(
        p in arb_program(8),
        dim in proptest::sample::select(DIMS.to_vec()),
        declared in prop_oneof![1usize..40, Just(64usize)],
    ) {
        let p = Program { meta: ProgramMeta { vector_dim: Some(declared), ..p.meta }, ..p };
        run_every_way(&p, dim, 3);
    }
}

/// The largest register file the DSL allows at its largest vector size, with
/// element-wise, reduction and random ops on every kind (matrix products at this size
/// are left to the budget: a few would take minutes in a debug build).
#[test]
fn maximum_register_file_at_maximum_vector_size() {
    let text = format!(
        "# meta: scalar_count={MAX_SCALARS} vector_count={MAX_VECTORS} matrix_count={MAX_MATRICES} vector_dim=1024\n\
         # setup\nm15 = gaussian(0.0, 1.0)\nv63 = uniform(-1.0, 1.0)\ns255 = 0.5\nv63[1023] = 2.0\n\
         # predict\nv62 = v0 * s255\nm14 = m15 + v62\nm13 = m14 * s255\ns0 = norm(m13)\ns254 = mean(v63)\n\
         s253 = std(m15)\ns0 = s0 + s254\nv61 = exp(v62)\ns0 = s0 + s253\n\
         # learn\nv63 = v63 - v0\nm15 = m15 * s1\ns252 = dot(v63, v0)\n"
    );
    // Four input features: the rest of v0's 1024 entries keep their values.
    run_every_way(&parse_program(&text).unwrap(), 4, 2);
}
