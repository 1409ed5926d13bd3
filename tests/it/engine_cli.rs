//! `bitsota eval` and `bitsota bench` end to end, and the DSL fixtures' round trip.

use crate::common;

use bitsota::engine::{parse_program, print_program};
use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/programs/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn eval(args: &[&str]) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(common::bin())
        .arg("eval")
        .args(args)
        .env("BITSOTA_DATA_DIR", data.path())
        .output()
        .unwrap()
}

#[test]
fn eval_scores_the_linear_learner_and_the_empty_program() {
    let score = |file: &str| {
        let out = eval(&[
            "--dsl",
            &fixture(file),
            "--task",
            "scalar_linear",
            "--tasks",
            "8",
            "--json",
        ]);
        common::assert_success(&out);
        let last = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
        assert_eq!(v["per_task"].as_array().unwrap().len(), 8);
        v["score"].as_f64().unwrap()
    };
    assert!(score("linear_sgd.dsl") >= 0.99);
    assert!(score("empty.dsl") < 0.5);
}

#[test]
fn eval_reports_bad_programs_and_missing_data_clearly() {
    let out = eval(&[
        "--dsl",
        &fixture("bad_register.dsl"),
        "--task",
        "scalar_linear",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3, column 14: register v3 out of range"),
        "{err}"
    );
    let out = eval(&[
        "--dsl",
        &fixture("linear_sgd.dsl"),
        "--task",
        "cifar10_binary",
        "--tasks",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bitsota data fetch cifar10"));
    let out = eval(&["--dsl", &fixture("linear_sgd.dsl"), "--task", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn fixtures_parse_and_print_canonically() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/programs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        match parse_program(&text) {
            Ok(p) => {
                let printed = print_program(&p);
                assert_eq!(parse_program(&printed).unwrap(), p, "{}", path.display());
            }
            Err(e) => assert!(
                path.ends_with("bad_register.dsl"),
                "{}: {e}",
                path.display()
            ),
        }
    }
}

/// The last stdout line of `bitsota bench demo --seconds 1 --json <extra>`.
fn bench_demo(extra: &[&str]) -> serde_json::Value {
    let out = Command::new(common::bin())
        .args(["bench", "demo", "--seconds", "1", "--json"])
        .args(extra)
        .output()
        .unwrap();
    common::assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn bench_reports_children_evaluations_and_the_duplicate_cache() {
    let cached = bench_demo(&[]);
    let children = cached["children"].as_u64().unwrap();
    assert!(children > 0 && cached["children_per_sec"].as_f64().unwrap() > 0.0);
    let exact = &cached["exact_cache"];
    assert_eq!(exact["lookups"].as_u64(), Some(children));
    let hits = exact["hits"].as_u64().unwrap();
    assert!(hits > 0, "{cached}");
    // Evaluations exclude cache hits; task evaluations count only real ones.
    let secs = cached["seconds"].as_f64().unwrap();
    let evals = cached["evaluations_per_sec"].as_f64().unwrap() * secs;
    assert_eq!(evals.round() as u64, children - hits);
    let task_evals = cached["task_evals_per_sec"].as_f64().unwrap() * secs;
    assert_eq!(task_evals.round() as u64, 10 * (children - hits));

    let plain = bench_demo(&["--no-exact-cache"]);
    assert!(plain["exact_cache"].is_null());
    assert_eq!(plain["evaluations_per_sec"], plain["children_per_sec"]);

    let bad = Command::new(common::bin())
        .args(["bench", "demo", "--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--workers"));
}
