//! Re-evaluation cost of one submission on the validator suite (engine.md §6 `validator`):
//! a measurement, not a timed assertion. Needs the real datasets for CIFAR-10
//! (`../shared/datasets`, or BITSOTA_TEST_DATASETS). Run in release:
//! `CARGO_TARGET_DIR=/work/target cargo test --release --test validator_bench -- --ignored --nocapture`

mod common;
mod validator_support;

use bitsota::config::ValidatorConfig;
use bitsota::tasks::TaskType;
use bitsota::validator::suites::Suites;
use std::path::PathBuf;
use std::time::Instant;
use validator_support::LINEAR;

/// A full-size `cifar`-profile program (7 setup / 11 predict / 23 learn instructions):
/// a one-hidden-layer network trained by error-scaled outer-product updates.
const CIFAR_FULL: &str = "\
# meta: scalar_count=5 vector_count=9 matrix_count=2 setup_max_ops=7 predict_max_ops=11 learn_max_ops=23
# setup
s2 = 0.01
s3 = 0.5
s4 = 1.0
m0 = gaussian(0.0, 0.1)
m1 = uniform(-0.05, 0.05)
v1 = gaussian(0.0, 0.1)
v2 = uniform(-0.1, 0.1)
# predict
v3 = matmul(m0, v0)
v4 = heaviside(v3)
v5 = v4 * v3
v6 = abs(v0)
v7 = maximum(v5, v2)
v8 = v7 - v2
s3 = mean(v6)
s4 = std(v8)
s0 = dot(v5, v1)
s0 = s0 + s3
s4 = norm(v7)
# learn
s3 = s1 - s0
s3 = s3 * s2
v6 = v5 * s3
v1 = v1 + v6
v8 = v1 * s3
v7 = v4 * v8
m1 = outer(v7, v0)
m0 = m0 + m1
v2 = v2 + v6
s4 = s4 * s2
v8 = v2 * s4
v1 = v1 - v8
v6 = heaviside(v1)
v7 = v6 * v8
v2 = v2 - v7
s3 = s3 * s3
v8 = v3 * s3
m1 = outer(v8, v4)
m0 = m0 - m1
s4 = s0 - s1
s4 = s4 * s2
v6 = v0 * s4
v2 = v2 + v6
";

fn datasets() -> Option<PathBuf> {
    let dir = std::env::var_os("BITSOTA_TEST_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    dir.join("cifar10").is_dir().then_some(dir)
}

/// Prepare the 128-task suite once, then time `reps` re-evaluations.
fn measure(label: &str, suites: &Suites, dsl: &str, task_type: TaskType, reps: u32) {
    let alg = suites
        .parse(&serde_json::json!({"algorithm_dsl": dsl, "task_type": task_type.as_str(), "input_dim": 16}).to_string())
        .expect("benchmark program parses");
    let t = Instant::now();
    let suite = suites.prepared(task_type, 16).expect("suite prepares");
    let prepare = t.elapsed().as_secs_f64();
    let mut score = 0.0;
    let t = Instant::now();
    for _ in 0..reps {
        score = suite.score(&alg.program);
    }
    let per = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{label}: {} tasks, prepare {prepare:.2} s, re-evaluation {per:.4} s/submission (score {score:.6}, {} threads)",
        suite.tasks.len(),
        rayon::current_num_threads()
    );
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn reevaluation_cost() {
    let data_dir = tempfile::tempdir().unwrap();
    let suites = Suites::from_config(&ValidatorConfig::default(), data_dir.path()).unwrap();
    measure("scalar_linear", &suites, LINEAR, TaskType::ScalarLinear, 20);
    match datasets() {
        Some(dir) => {
            // Link the dataset folders only: the prepared-task cache stays in the temp dir.
            let local = data_dir.path().join("datasets");
            std::fs::create_dir_all(&local).unwrap();
            for kind in ["cifar10", "mnist"] {
                std::os::unix::fs::symlink(dir.join(kind), local.join(kind)).unwrap();
            }
            let suites = Suites::from_config(&ValidatorConfig::default(), data_dir.path()).unwrap();
            measure(
                "cifar10_binary",
                &suites,
                CIFAR_FULL,
                TaskType::Cifar10Binary,
                10,
            );
        }
        None => println!("cifar10_binary: SKIPPED (no datasets)"),
    }
}
