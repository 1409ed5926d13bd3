use super::compile::{BinOp, Kernel, Mode, Reduce, UnOp};
use super::*;
use crate::engine::dsl::{parse_program, tests::arb_instruction};
use crate::engine::ops::Op;
use crate::engine::program::ProgramMeta;
use crate::engine::program::{Addr, Instruction, Program};
use crate::tasks::scalar_linear::{self, LinearSizes};
use crate::tasks::suite::median;
use crate::tasks::suite::SuiteSpec;
use crate::tasks::{Metric, Task};
use crate::tasks::{TaskSpec, TaskType};
use proptest::prelude::*;
use std::sync::Arc;

const META: &str = "# meta: scalar_count=4 vector_count=4 matrix_count=2 vector_dim=2\n";

/// Registers after running `setup` with dead-code elimination off (so every
/// instruction's effect is visible). Layout: s0..s3, v0..v3 (2 each), m0, m1 (4 each).
fn setup_regs(setup: &str) -> Vec<f32> {
    let p = parse_program(&format!("{META}# setup\n{setup}")).unwrap();
    run_setup(&p)
}

fn run_setup(p: &Program) -> Vec<f32> {
    let c = compile_keeping_dead(p, 2);
    // No examples: the run is `setup` alone, with evaluation seed 1.
    let task = scalar_linear::build(
        &TaskSpec::new(TaskType::ScalarLinear, 0, 2),
        LinearSizes { train: 1, val: 1 },
    );
    let spec = RunSpec {
        n_train: 0,
        n_val: 0,
        early_stop: None,
        record_train_errors: false,
        stop: None,
    };
    let mut ev = Evaluator::new();
    ev.run(&c, Lanes::single(&task), &[1], spec);
    ev.regs
}

fn s(r: &[f32], i: usize) -> f32 {
    r[i]
}
fn v(r: &[f32], i: usize) -> &[f32] {
    &r[4 + 2 * i..6 + 2 * i]
}
fn m(r: &[f32], i: usize) -> &[f32] {
    &r[12 + 4 * i..16 + 4 * i]
}

const INIT: &str = "s2 = 2\ns3 = -3\nv1[0] = 1\nv1[1] = 2\nv2[0] = 10\nv2[1] = 20\n";

fn with_init(body: &str) -> Vec<f32> {
    // m0 = outer(v1, v1) - v1 on every row = [[0, 0], [1, 2]].
    setup_regs(&format!(
        "{INIT}m1 = outer(v1, v1)\nm0 = m1 - v1\nm1 = 0\n{body}"
    ))
}

#[test]
fn init_fixture_is_what_the_tests_assume() {
    let r = setup_regs(INIT);
    assert_eq!((s(&r, 2), s(&r, 3)), (2.0, -3.0));
    assert_eq!(v(&r, 1), &[1.0, 2.0]);
    assert!(parse_program(&format!("{META}# setup\nm0[0] = 0\n")).is_err());
}

#[test]
fn broadcasting_and_result_typing() {
    let r = with_init("");
    assert_eq!(
        m(&r, 0),
        &[0.0, 0.0, 1.0, 2.0],
        "matrix - vector applies to every row"
    );
    let r = with_init("v3 = s2 * v1\ns0 = s2 + s3\nv0 = s2 - s3\nm1 = v2 + v1\n");
    assert_eq!(v(&r, 3), &[2.0, 4.0], "scalar * vector -> vector");
    assert_eq!(s(&r, 0), -1.0);
    assert_eq!(v(&r, 0), &[5.0, 5.0], "a scalar result fills a vector");
    assert_eq!(
        m(&r, 1),
        &[11.0, 22.0, 11.0, 22.0],
        "a vector result fills every row"
    );
    let r = with_init("m1 = v1 * m0\nv3 = v1 / s2\n");
    assert_eq!(m(&r, 1), &[0.0, 0.0, 1.0, 4.0], "vector * matrix, per row");
    assert_eq!(v(&r, 3), &[0.5, 1.0]);
    let r = with_init("m1 = s3 + m0\nm1 = maximum(m1, m0)\n");
    assert_eq!(m(&r, 1), &[0.0, 0.0, 1.0, 2.0]);
}

#[test]
fn higher_rank_results_are_noops() {
    let r = with_init("s0 = 7\ns0 = s2 + v1\ns0 = m0 * s2\nv0 = 9\nv0 = m0 + v1\nv0 = abs(m0)\n");
    assert_eq!(s(&r, 0), 7.0);
    assert_eq!(v(&r, 0), &[9.0, 9.0]);
}

#[test]
fn invalid_operands_are_noops() {
    let r = with_init("s0 = 5\ns0 = dot(s2, s3)\ns0 = norm(s2)\nv0 = matmul(v1, m0)\nm1 = outer(v1, s2)\nv0 = outer(v1, v2)\n");
    assert_eq!(s(&r, 0), 5.0);
    assert_eq!(v(&r, 0), &[0.0, 0.0]);
    assert_eq!(m(&r, 1), &[0.0; 4]);
    // Registers past the configured counts (built in code; the parser refuses them).
    let mut p = Program::empty(ProgramMeta {
        scalar_count: 2,
        vector_count: 1,
        matrix_count: 0,
        vector_dim: Some(2),
        setup_max_ops: 5,
        predict_max_ops: 5,
        learn_max_ops: 5,
    });
    p.setup = vec![
        Instruction::constant(Op::Const, Addr::s(0), 3.0, 0.0),
        Instruction::binary(Op::Add, Addr::s(0), Addr::s(7), Addr::s(1)),
        Instruction::unary(Op::Copy, Addr::s(0), Addr::m(0)),
        Instruction::constant(Op::Gaussian, Addr::v(3), 0.0, 1.0),
        Instruction {
            dest: None,
            ..Instruction::constant(Op::Const, Addr::s(0), 1.0, 0.0)
        },
    ];
    let r = run_setup(&p);
    assert_eq!(r, vec![3.0, 0.0, 0.0, 0.0]);
}

#[test]
fn arithmetic_edge_cases() {
    let r = with_init("s0 = s2 / s1\ns1 = 100\ns1 = exp(s1)\nv0 = log(v0)\n");
    assert_eq!(s(&r, 0), 2.0 / 1e-8f32);
    assert_eq!(s(&r, 1), libm::expf(10.0));
    assert_eq!(v(&r, 0)[0], libm::logf(1e-8));
    let r = with_init("s0 = -100\ns0 = exp(s0)\ns1 = heaviside(s1)\nv0 = heaviside(m0)\nv3 = heaviside(v1, 1.0)\n");
    assert_eq!(s(&r, 0), libm::expf(-10.0));
    assert_eq!(s(&r, 1), 0.0, "heaviside(0) is 0 (strict)");
    assert_eq!(v(&r, 3), &[1.0, 1.0]);
    let r = with_init("s0 = sin(s2)\ns1 = cos(s2)\nv0 = tan(v1)\n");
    assert_eq!(s(&r, 0), libm::sinf(2.0));
    assert_eq!(s(&r, 1), libm::cosf(2.0));
    assert_eq!(v(&r, 0), &[libm::tanf(1.0), libm::tanf(2.0)]);
    // NaN propagates through MIN/MAX from either side; heaviside(NaN) = 0.
    let r = with_init("s0 = 3e38\ns0 = s0 * s2\ns0 = s0 - s0\ns1 = maximum(s2, s0)\ns3 = minimum(s0, s2)\ns2 = heaviside(s0)\n");
    assert!(s(&r, 0).is_nan());
    assert!(s(&r, 1).is_nan() && s(&r, 3).is_nan());
    assert_eq!(s(&r, 2), 0.0);
}

#[test]
fn reductions_and_copies() {
    let r = with_init("s0 = v1\ns1 = m0\nv0 = m0\nm1 = v1\nv3 = s3\n");
    assert_eq!(
        s(&r, 0),
        libm::sqrtf(5.0),
        "vector -> scalar copy is the L2 norm"
    );
    assert_eq!(
        s(&r, 1),
        libm::sqrtf(5.0),
        "matrix -> scalar copy is Frobenius"
    );
    assert_eq!(v(&r, 0), &[0.0, 0.0], "matrix -> vector copy is a no-op");
    assert_eq!(m(&r, 1), &[1.0, 2.0, 1.0, 2.0]);
    assert_eq!(v(&r, 3), &[-3.0, -3.0]);
    let r = with_init("s0 = norm(v2)\ns1 = mean(m0)\ns2 = std(v1)\nv3 = mean(v2)\n");
    assert_eq!(s(&r, 0), libm::sqrtf(500.0));
    assert_eq!(s(&r, 1), 0.75);
    assert_eq!(s(&r, 2), 0.5);
    assert_eq!(v(&r, 3), &[15.0, 15.0]);
}

#[test]
fn linear_algebra() {
    // m0 = [[0,0],[1,2]], v1 = [1,2], v2 = [10,20].
    let r = with_init(
        "v3 = matmul(m0, v1)\nv1 = matmul(m0, v1)\ns0 = dot(v2, v3)\nm1 = matmul(m0, m0)\n",
    );
    assert_eq!(v(&r, 3), &[0.0, 5.0]);
    assert_eq!(
        v(&r, 1),
        &[0.0, 5.0],
        "in-place MATMUL reads the old vector"
    );
    assert_eq!(s(&r, 0), 100.0);
    assert_eq!(m(&r, 1), &[0.0, 0.0, 2.0, 4.0]);
    let r = with_init("m1 = outer(v1, v2)\nm0 = matmul(m0, m0)\nm1 = matmul(m0, v1)\n");
    assert_eq!(m(&r, 0), &[0.0, 0.0, 2.0, 4.0], "in-place matrix product");
    assert_eq!(
        m(&r, 1),
        &[0.0, 10.0, 0.0, 10.0],
        "vector result fills rows"
    );
    let r = with_init("m1 = outer(v1, v2)\n");
    assert_eq!(m(&r, 1), &[10.0, 20.0, 20.0, 40.0]);
}

#[test]
fn const_vec_and_random_ops() {
    let mut p = parse_program(&format!(
        "{META}# setup\nv0[1] = 4\nv0[2] = 9\nv3[-1] = 9\ns0 = uniform(1, 1)\n"
    ))
    .unwrap();
    p.setup
        .push(Instruction::constant(Op::ConstVec, Addr::v(1), -0.5, 6.0));
    p.setup.push(Instruction::constant(
        Op::ConstVec,
        Addr::v(2),
        f32::NAN,
        6.0,
    ));
    let r = run_setup(&p);
    assert_eq!(v(&r, 0), &[0.0, 4.0]);
    assert_eq!(v(&r, 3), &[0.0, 0.0]);
    assert_eq!(v(&r, 1), &[6.0, 0.0], "int(-0.5) = 0, like the reference");
    assert_eq!(v(&r, 2), &[0.0, 0.0]);
    assert_eq!(s(&r, 0), 1.0, "an empty uniform interval gives its low end");
    let r = setup_regs("m0 = gaussian(5, 0)\nv1 = uniform(-1, 1)\n");
    assert_eq!(m(&r, 0), &[5.0; 4]);
    assert!(v(&r, 1).iter().all(|x| (-1.0..1.0).contains(x)) && v(&r, 1)[0] != v(&r, 1)[1]);
}

fn tiny_task(dim: usize, id: u32) -> Task {
    scalar_linear::build(
        &TaskSpec::new(TaskType::ScalarLinear, id, dim),
        LinearSizes { train: 24, val: 12 },
    )
}

#[test]
fn dead_code_is_removed_but_draws_are_kept() {
    let text = format!("{META}# setup\nv1 = gaussian(0, 1)\ns3 = 4\ns0 = uniform(0, 1)\n# predict\ns2 = s0 * s0\n# learn\nv3 = v0 + v1\n");
    let p = parse_program(&text).unwrap();
    let c = compile(&p, 2);
    assert_eq!(c.live_sizes(), [2, 0, 0]);
    assert_eq!(c.phases[0][0].k, Kernel::Skip);
    assert_eq!(c.phases[0][0].n, 4, "two normals = four 64-bit draws");
    let full = compile_keeping_dead(&p, 2);
    let task = tiny_task(2, 3);
    let mut a = Evaluator::new();
    let mut b = Evaluator::new();
    let opts = EvalOptions::default();
    assert_eq!(
        a.score(&c, &task, 9, &opts).to_bits(),
        b.score(&full, &task, 9, &opts).to_bits()
    );
    assert_eq!(a.predictions(), b.predictions());
    assert!(a.predictions()[0] > 0.0);
}

#[test]
fn code_keys_follow_the_live_code() {
    let key = |body: &str| compile(&parse_program(&format!("{META}{body}")).unwrap(), 2).code_key();
    let learner = "# setup\ns2 = 0.5\n# predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";
    let same = key(learner);
    // Dead code (s3 = 7 is never read; m1 never reaches s0) does not change the key...
    let padded = learner.replace("# predict", "s3 = 7\nm1 = m0 + m0\n# predict");
    assert_eq!(key(&padded), same);
    // ...but a live register, constant bit or the vector size does.
    assert_ne!(key(&learner.replace("v1 = v1 + v2", "v1 = v1 - v2")), same);
    assert_ne!(key(&learner.replace("s2 = 0.5", "s2 = 0.50000006")), same);
    assert_ne!(
        key(&learner.replace("s0 = dot(v0, v1)", "s0 = dot(v0, v2)")),
        same
    );
    // Without a fixed vector_dim, D follows the task.
    let p = parse_program(learner).unwrap();
    assert_ne!(compile(&p, 2).code_key(), compile(&p, 3).code_key());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn dead_code_elimination_never_changes_predictions(
        setup in proptest::collection::vec(arb_instruction(), 0..8),
        predict in proptest::collection::vec(arb_instruction(), 0..8),
        learn in proptest::collection::vec(arb_instruction(), 0..8),
        dim in prop_oneof![1usize..4, Just(4usize), Just(8usize)],
    ) {
        let p = Program {
            meta: ProgramMeta { scalar_count: 6, vector_count: 4, matrix_count: 2, vector_dim: None,
                setup_max_ops: 8, predict_max_ops: 8, learn_max_ops: 8 },
            setup, predict, learn,
        };
        let task = tiny_task(dim, 1);
        let mut a = Evaluator::new();
        let mut b = Evaluator::new();
        let opts = EvalOptions::default();
        let sa = a.score(&compile(&p, dim), &task, 5, &opts);
        let sb = b.score(&compile_keeping_dead(&p, dim), &task, 5, &opts);
        prop_assert_eq!(sa.to_bits(), sb.to_bits());
        let bits = |e: &Evaluator| e.predictions().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&a), bits(&b));
        // The evaluator's one-pass scoring equals the metric's plain definition.
        let plain = score_predictions(task.metric, a.predictions(), &task.val_y);
        prop_assert_eq!(sa.to_bits(), plain.to_bits());
        // The D-specialised kernels agree bit for bit with the generic ones.
        let c = compile(&p, dim);
        let mut g = Evaluator::new();
        let spec = RunSpec { n_train: task.train_len(), n_val: task.val_len(), early_stop: None, record_train_errors: false, stop: None };
        g.run(&c, Lanes::single(&task), &[5], spec);
        g.regs.fill(0.0);
        g.rngs = vec![crate::rng::Rng::new(5)];
        g.run_lanes::<0, 0>(&c, Lanes::single(&task), spec);
        prop_assert_eq!(bits(&g), bits(&a));
        // Lockstep over several tasks equals scoring each alone, early stop included
        // (validation's too): at a generic lane count and at the 8 and 10 lanes whose
        // error pass runs with the lane count as a constant.
        for lanes in [3u32, 8, 10] {
            let tasks: Vec<Arc<Task>> = (0..lanes).map(|id| Arc::new(tiny_task(dim, id))).collect();
            let batch = TaskBatch::new(&tasks).unwrap();
            let opts = EvalOptions { early_stop_abs_error: Some(3.0) };
            let seeds: Vec<u64> = (0..u64::from(lanes)).map(|t| 7 + t).collect();
            let mut together = vec![0.0f32; tasks.len()];
            Evaluator::new().score_batch(&c, &batch, &seeds, &opts, &mut together);
            for (t, task) in tasks.iter().enumerate() {
                let alone = Evaluator::new().score(&c, task, seeds[t], &opts);
                prop_assert_eq!(alone.to_bits(), together[t].to_bits());
            }
        }
    }
}

/// The run-time-dispatched kernels (AVX2 where the CPU has it) give the same bits as the
/// baseline build, for the lane counts and vector sizes the searches specialise.
#[test]
fn wide_kernels_match_the_baseline_bit_for_bit() {
    let profile = crate::engine::Profile::builtin("full").unwrap();
    let mut rng = crate::rng::Rng::new(11);
    for dim in [4, 16] {
        let tasks: Vec<Arc<Task>> = (0..10).map(|id| Arc::new(tiny_task(dim, id))).collect();
        let batch = TaskBatch::new(&tasks).unwrap();
        let seeds: Vec<u64> = (0..10).collect();
        let spec = RunSpec {
            n_train: 24,
            n_val: 12,
            early_stop: Some(50.0),
            record_train_errors: false,
            stop: None,
        };
        for _ in 0..60 {
            let mut p = crate::engine::mutate::random_program(&profile, dim, &mut rng);
            p.meta.vector_dim = None;
            let c = compile(&p, dim);
            let mut wide = Evaluator::new();
            wide.run(&c, Lanes::of(&batch), &seeds, spec);
            let mut base = Evaluator::new();
            base.run(&c, Lanes::of(&batch), &seeds, spec);
            base.regs.fill(0.0);
            base.rngs = seeds.iter().map(|&s| crate::rng::Rng::new(s)).collect();
            base.stopped.fill(false);
            base.run_lanes::<0, 0>(&c, Lanes::of(&batch), spec);
            let bits = |e: &Evaluator| e.preds.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&wide),
                bits(&base),
                "dim {dim}:\n{}",
                crate::engine::print_program(&p)
            );
            assert_eq!(wide.stopped, base.stopped);
        }
    }
}

/// The §1.3 example learner without its `vector_dim`, so D follows the task.
pub(crate) const LINEAR_LEARNER: &str = "\
# setup
s2 = 0.01
v1 = gaussian(0.0, 0.1)
# predict
s0 = dot(v0, v1)
# learn
s3 = s1 - s0
s3 = s3 * s2
v2 = v0 * s3
v1 = v1 + v2
";

fn validator_suite(count: usize) -> (Vec<Arc<Task>>, Vec<u64>) {
    let suite = SuiteSpec::new(TaskType::ScalarLinear, 16, count, 1337);
    let tasks = suite
        .tasks
        .iter()
        .map(|t| Arc::new(scalar_linear::build(t, LinearSizes::default())))
        .collect();
    let seeds = (0..count).map(|i| suite.eval_seed(i)).collect();
    (tasks, seeds)
}

#[test]
fn linear_learner_solves_the_validator_suite_and_empty_does_not() {
    let (tasks, seeds) = validator_suite(16);
    let learner = parse_program(LINEAR_LEARNER).unwrap();
    let scored = score_on_suite(&learner, &tasks, &seeds);
    assert!(scored.score >= 0.99, "{scored:?}");
    assert_eq!(scored.per_task.len(), 16);
    let empty = parse_program("# setup\n").unwrap();
    let scored = score_on_suite(&empty, &tasks, &seeds);
    assert!(scored.score < 0.5, "{scored:?}");
    // Breaking the learning rule must hurt: a test that can fail.
    let broken = parse_program(&LINEAR_LEARNER.replace("s3 = s1 - s0", "s3 = s0 - s1")).unwrap();
    assert!(score_on_suite(&broken, &tasks, &seeds).score < 0.5);
}

/// Validator scores pinned bit for bit: search changes (mutation, selection, early
/// stopping, the discover benchmark) must never move them. The values are what
/// `bitsota eval --task scalar_linear --tasks 16` printed for the fixtures before the
/// AutoML-Zero fidelity changes; a change here is a format change.
#[test]
fn validator_scores_of_the_fixtures_are_pinned() {
    let (tasks, seeds) = validator_suite(16);
    for (text, bits) in [
        (
            include_str!("../../../fixtures/programs/linear_sgd.dsl"),
            0x3f7f_f338,
        ),
        (
            include_str!("../../../fixtures/programs/cifar_baseline_b.dsl"),
            0x3f7f_fffb,
        ),
    ] {
        let program = parse_program(text).unwrap();
        let scored = score_on_suite(&program, &tasks, &seeds);
        assert_eq!(scored.score.to_bits(), bits, "{scored:?}");
    }
}

#[test]
fn suite_scores_are_bit_identical_across_runs_and_thread_counts() {
    let (tasks, seeds) = validator_suite(11);
    let learner = parse_program(LINEAR_LEARNER).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| score_on_suite(&learner, &tasks, &seeds))
    };
    let one = run(1);
    let two = run(2);
    let again = run(2);
    let bits = |s: &SuiteScore| s.per_task.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&one), bits(&two));
    assert_eq!(bits(&two), bits(&again));
    assert_eq!(one.score.to_bits(), two.score.to_bits());
    // Lockstep batches inside the suite give exactly the lone-task scores.
    for (i, task) in tasks.iter().enumerate() {
        let alone = evaluate_task(&compile(&learner, 16), task, seeds[i]);
        assert_eq!(alone.to_bits(), one.per_task[i].to_bits());
    }
}

#[test]
fn metrics_and_combining() {
    let acc = score_predictions(
        Metric::Accuracy,
        &[0.9, f32::NAN, 0.2, 0.6],
        &[1.0, 0.0, 1.0, 0.0],
    );
    assert_eq!(acc, 0.5);
    assert_eq!(
        score_predictions(Metric::InverseAtanRmse, &[1.0, f32::INFINITY], &[1.0, 1.0]),
        f32::NEG_INFINITY
    );
    assert_eq!(
        score_predictions(Metric::InverseAtanRmse, &[1.0, 2.0], &[1.0, 2.0]),
        1.0
    );
    let s = score_predictions(Metric::InverseAtanRmse, &[0.0], &[1.0]);
    assert!((s - 0.5).abs() < 1e-6);
    assert_eq!(Combine::Median.apply(&[f32::NEG_INFINITY, 0.2, 0.4]), 0.3);
    assert_eq!(Combine::Median.apply(&[f32::NAN]), f32::NEG_INFINITY);
    assert_eq!(Combine::Mean.apply(&[0.2, 0.4]), 0.3);
    // Validators keep non-finite scores in the median.
    assert_eq!(
        median(&[f32::NEG_INFINITY, f32::NEG_INFINITY, 0.5]),
        f32::NEG_INFINITY
    );
}

#[test]
fn early_stop_gives_min_fitness() {
    let task = tiny_task(2, 4);
    let p = parse_program("# setup\ns0 = 1000\n").unwrap();
    let c = compile(&p, 2);
    let mut e = Evaluator::new();
    let stopped = e.score(
        &c,
        &task,
        1,
        &EvalOptions {
            early_stop_abs_error: Some(100.0),
        },
    );
    assert_eq!(stopped, MIN_FITNESS);
    let full = e.score(&c, &task, 1, &EvalOptions::default());
    assert!(full > 0.0 && full < 0.01);
}

/// A compiler reused from one program to the next (as a search reuses it) compiles
/// each exactly as a fresh one does, whatever the previous program left in its buffers.
#[test]
fn a_reused_compiler_matches_a_fresh_compile() {
    let mut rng = crate::rng::Rng::new(5);
    let mut compiler = Compiler::default();
    let mut reused = Compiled::default();
    for name in ["full", "cifar", "scalar_linear", "full"] {
        let profile = crate::engine::Profile::builtin(name).unwrap();
        for _ in 0..40 {
            let p = crate::engine::mutate::random_program(&profile, 4, &mut rng);
            compiler.compile_into(&p, 4, &mut reused);
            let fresh = compile(&p, 4);
            assert_eq!(reused.code_key(), fresh.code_key(), "{name}");
            assert_eq!(reused.live_sizes(), fresh.live_sizes(), "{name}");
        }
    }
}

/// A child compiled from its parent's resolution (only the mutated phase resolved
/// again, liveness only where it can change) is exactly the child compiled afresh:
/// along chains of random mutations of every kind, in every space a recipe searches,
/// with the parent's resolution passed in or already in place, and across a change of
/// vector size (which must not reuse anything).
#[test]
fn a_child_compiled_from_its_parent_matches_a_fresh_compile() {
    use crate::engine::mutate::{mutate, random_program};
    use crate::engine::stages::MUTATIONS;
    use crate::engine::{Changed, Phase};
    let mut rng = crate::rng::Rng::new(8);
    let mut compiler = Compiler::default();
    let mut out = Compiled::default();
    let mut checked = [0usize; 3];
    for name in ["az_demo", "az_classify", "az_bilinear", "cifar", "full"] {
        let profile = crate::engine::Profile::builtin(name).unwrap();
        for chain in 0..6 {
            let dim = [4, 16][chain % 2];
            let mut parent = random_program(&profile, dim, &mut rng);
            let mut parent_res = Resolution::default();
            compiler.compile_child(&parent, dim, None, Changed::All, &mut parent_res, &mut out);
            for step in 0..150 {
                let mut child = parent.clone();
                let m = MUTATIONS[rng.index(MUTATIONS.len())];
                let changed = mutate(&mut child, &profile, dim, m, &mut rng);
                // Half the time the child's buffers already hold the parent's.
                let mut res = if step % 2 == 0 {
                    parent_res.clone()
                } else {
                    Resolution::default()
                };
                let from = (step % 2 == 1).then_some(&parent_res);
                // Now and then the parent was made at another vector size.
                let at = if step % 37 == 5 { 20 - dim } else { dim };
                compiler.compile_child(&child, at, from, changed, &mut res, &mut out);
                let fresh = compile(&child, at);
                assert_eq!(out.code_key(), fresh.code_key(), "{name} {m:?} {changed:?}");
                assert_eq!(out.phases, fresh.phases, "{name} {m:?} {changed:?}");
                match changed {
                    Changed::Phase(Phase::Setup) => checked[0] += 1,
                    Changed::Phase(_) => checked[1] += 1,
                    _ => checked[2] += 1,
                }
                if at == dim {
                    (parent, parent_res) = (child, res);
                }
            }
        }
    }
    assert!(
        checked.iter().all(|&n| n > 100),
        "every kind of change seen: {checked:?}"
    );
}

/// Every kernel has its own code, so code keys tell all kernels apart.
#[test]
fn kernel_codes_are_distinct() {
    use BinOp::*;
    use Mode::*;
    use UnOp::*;
    let modes = [Scalar, Same, Row];
    let mut all = vec![
        Kernel::Fill,
        Kernel::Gaussian,
        Kernel::Uniform,
        Kernel::Skip,
        Kernel::Dot,
        Kernel::MatVec,
        Kernel::MatMat,
        Kernel::Outer,
    ];
    all.extend([Reduce::Norm, Reduce::Mean, Reduce::Std].map(Kernel::Reduce));
    for op in [Add, Sub, Mul, Div, Min, Max] {
        all.push(Kernel::BinS(op));
        for ma in modes {
            for mb in modes {
                all.push(Kernel::Bin(op, ma, mb));
            }
        }
    }
    for op in [Abs, Exp, Log, Sin, Cos, Tan, Heaviside, Identity] {
        for m in modes {
            all.push(Kernel::Un(op, m));
        }
    }
    let codes: std::collections::HashSet<u64> = all.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), all.len());
}
