//! Score pins: the exact score bits of the fixtures, of a matrix learner and of random
//! programs of every built-in profile, recorded once (`pins.txt`) so that any change of
//! the interpreter that moves one bit of one score fails here. The file keeps, per
//! program, a fingerprint of its score bits, and the profiles as they were when
//! recorded, so later edits of the built-in profiles leave the pins valid.
//!
//! Record anew (only when a score change is intended, which is a format change for
//! validators): `BITSOTA_RECORD_PINS=1 cargo test --lib engine::interp::pins`.

use super::{compile, score_on_suite, EvalOptions, Evaluator, TaskBatch};
use crate::engine::cache::KeyHasher;
use crate::engine::dsl::{parse_program, print_program};
use crate::engine::mutate::random_program;
use crate::engine::program::{Profile, Program};
use crate::rng::Rng;
use crate::tasks::scalar_linear::{self, LinearSizes};
use crate::tasks::{Metric, Task, TaskSpec, TaskType};
use std::fmt::Write;
use std::hash::Hasher;
use std::sync::Arc;

const PINS: &str = include_str!("pins.txt");
const PINS_PATH: &str = "src/engine/interp/pins.txt";
/// Random programs recorded per built-in profile.
const PER_PROFILE: usize = 200;
/// Lanes of the lockstep batch: the miner suite's 10 (the `D`=16, `T`=10 kernels).
const LANES: usize = 10;
/// Vector sizes the programs run at, in turn: every compiled-in size and a generic one.
const DIMS: [usize; 5] = [4, 8, 16, 32, 5];

/// `LANES` small tasks of `dim` features; odd ones are binary-classification tasks, so
/// both metrics run.
fn tasks(dim: usize) -> Vec<Arc<Task>> {
    (0..LANES)
        .map(|i| {
            let spec = TaskSpec::new(TaskType::ScalarLinear, 100 + i as u32, dim);
            let mut t = scalar_linear::build(&spec, LinearSizes { train: 8, val: 4 });
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

/// Every score a program gets: each task in one lockstep batch, the first alone, and
/// the suite median (validator path, lanes of 8), as hexadecimal bits.
fn scores(p: &Program, dim: usize, tasks: &[Arc<Task>]) -> String {
    let seeds: Vec<u64> = (0..LANES as u64).map(|i| 31 + 7 * i).collect();
    let c = compile(p, dim);
    let mut ev = Evaluator::new();
    let opts = EvalOptions::default();
    let mut out = vec![0.0; LANES];
    let batch = TaskBatch::new(tasks).expect("equal shapes");
    ev.score_batch(&c, &batch, &seeds, &opts, &mut out);
    out.push(ev.score(&c, &tasks[0], seeds[0], &opts));
    out.push(score_on_suite(p, tasks, &seeds).score);
    let hex: Vec<String> = out.iter().map(|s| format!("{:08x}", s.to_bits())).collect();
    hex.join(" ")
}

/// The hand-written programs: the fixtures and a matrix learner like those the
/// discovery search runs (matmul, outer, matrix add, scalar × matrix, dot).
fn written() -> Vec<(String, Program)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/programs");
    let mut out: Vec<(String, Program)> = ["linear_sgd", "logistic_sgd", "cifar_baseline_b"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(format!("{dir}/{name}.dsl")).unwrap();
            (name.to_string(), parse_program(&text).unwrap())
        })
        .collect();
    let matrix = "# meta: scalar_count=5 vector_count=6 matrix_count=3\n# setup\n\
        m0 = uniform(-0.1, 0.1)\nm1 = gaussian(0.0, 0.05)\ns2 = 0.01\n\
        # predict\nv1 = matmul(m0, v0)\nv2 = heaviside(v1)\nv3 = matmul(m1, v2)\n\
        s0 = dot(v3, v2)\nm2 = matmul(m1, m0)\ns3 = norm(m2)\ns0 = s0 + s3\n\
        # learn\ns4 = s1 - s0\ns4 = s4 * s2\nv4 = v2 * s4\nm2 = outer(v4, v2)\n\
        m1 = m1 + m2\nm2 = s4 * m0\nm2 = m2 - v0\nm0 = m0 + m2\nv5 = v0 * s4\nv1 = v1 + v5\n";
    out.push(("matrix_learner".into(), parse_program(matrix).unwrap()));
    out
}

/// `PER_PROFILE` random programs of `profile`, named after it, each with its vector size.
fn random_programs(profile: &Profile) -> Vec<(String, usize, Program)> {
    let mut rng = Rng::new(0x5eed);
    (0..PER_PROFILE)
        .map(|i| {
            let dim = DIMS[i % DIMS.len()];
            let p = random_program(profile, dim, &mut rng);
            (format!("{}.{i}", profile.name), dim, p)
        })
        .collect()
}

/// A 128-bit fingerprint of some text, in hexadecimal.
fn fingerprint(text: &str) -> String {
    let mut h = KeyHasher::default();
    h.write(text.as_bytes());
    format!("{:032x}", h.finish128())
}

/// Each program's record, `@ name dim fingerprint-of-its-scores`.
fn records(programs: &[(String, usize, Program)], out: &mut String) {
    let by_dim: Vec<_> = DIMS.iter().map(|&d| (d, tasks(d))).collect();
    for (name, dim, p) in programs {
        let (_, tasks) = by_dim.iter().find(|(d, _)| d == dim).unwrap();
        let bits = fingerprint(&scores(p, *dim, tasks));
        writeln!(out, "@ {name} {dim} {bits}").unwrap();
    }
}

/// The pin file: the written programs' records, then per built-in profile its JSON
/// (frozen here, so later edits of the built-in profiles do not change the programs),
/// a fingerprint of its random programs' text (a change of the generator shows as
/// such) and their records.
fn pin_file(profiles: &[Profile]) -> String {
    let mut out = String::from("# Score pins (see pins.rs). Do not edit by hand.\n");
    // The written programs at every size.
    let written: Vec<_> = written()
        .into_iter()
        .flat_map(|(name, p)| DIMS.map(|d| (name.clone(), d, p.clone())))
        .collect();
    records(&written, &mut out);
    for profile in profiles {
        let programs = random_programs(profile);
        let text: String = programs.iter().map(|(_, _, p)| print_program(p)).collect();
        let json = serde_json::to_string(profile).unwrap();
        writeln!(out, "profile {json}\nprograms {}", fingerprint(&text)).unwrap();
        records(&programs, &mut out);
    }
    out
}

#[test]
fn scores_are_pinned_bit_for_bit() {
    if std::env::var_os("BITSOTA_RECORD_PINS").is_some() {
        let profiles = Profile::NAMES.map(|n| Profile::builtin(n).unwrap());
        let path = format!("{}/{PINS_PATH}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, pin_file(&profiles)).unwrap();
        return;
    }
    let profiles: Vec<Profile> = PINS
        .lines()
        .filter_map(|l| l.strip_prefix("profile "))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    assert!(!profiles.is_empty());
    let now = pin_file(&profiles);
    // Line by line, so that a failure names the program (and the generator's line
    // says when the programs themselves changed rather than their scores).
    for (want, got) in PINS.lines().zip(now.lines()) {
        assert_eq!(got, want, "a pinned score moved");
    }
    assert_eq!(now.lines().count(), PINS.lines().count());
}
