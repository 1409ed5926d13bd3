//! `bitsota bench kernels`: the interpreter's instruction kernels, one op at a time,
//! against this machine's own ceiling measured in the same run.
//!
//! Each op runs as a program of [`REPS`] copies of one instruction in `predict`
//! (compiled keeping dead code, so every copy runs), on `lanes` synthetic tasks of `D`
//! features: lockstep (10 lanes, the miner suite's batch) and single-task (1 lane).
//! The figure is elements per second: the op's element operations (a multiply-add of a
//! product counts one, so `matmul` m·v is `D²` per lane and m·m `D³`; an element-wise op
//! counts the elements it writes) over the time the copies add to an evaluation: the
//! same program with an empty `predict` (its setup, the example loop, the scoring) is
//! timed alongside and subtracted. (Until 2026-12-07 the setup drew five thousand
//! Gaussians and nothing was subtracted, so a cheap op's figure mostly measured them.)
//! The ceiling is a straight loop of fused multiply-adds computing m·v on the same
//! task-major layout (`engine::interp::fma_matvec`), in multiply-adds per second. Each
//! window times the ceiling, the op and the empty program back to back, and the
//! reported ratio is the median of the windows' ratios: that is what holds on a shared,
//! drifting machine.

use super::bench::BenchArgs;
use crate::engine::interp::{fma_matvec, Compiler};
use crate::engine::{parse_program, Compiled, EvalOptions, Evaluator, TaskBatch};
use crate::tasks::scalar_linear::{build, LinearSizes};
use crate::tasks::suite::median;
use crate::tasks::{TaskSpec, TaskType};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// Copies of the instruction per `predict`: enough that the example loop around them
/// costs little.
const REPS: usize = 16;
/// Training examples per evaluation.
const EXAMPLES: usize = 32;
/// Timed windows per figure (the median is reported).
const WINDOWS: usize = 5;
const DIMS: [usize; 4] = [4, 8, 16, 32];
const LANES: [usize; 2] = [10, 1];

/// An op: its name, the instruction (registers filled by [`SETUP`]) and its element
/// operations per lane at vector size `D`.
struct OpCase {
    name: &'static str,
    instr: &'static str,
    elements: fn(usize) -> usize,
}

const OPS: [OpCase; 9] = [
    OpCase {
        name: "scalar add",
        instr: "s3 = s2 + s4",
        elements: |_| 1,
    },
    OpCase {
        name: "vector add",
        instr: "v3 = v1 + v2",
        elements: |d| d,
    },
    OpCase {
        name: "scalar*vector",
        instr: "v3 = s2 * v1",
        elements: |d| d,
    },
    OpCase {
        name: "dot",
        instr: "s3 = dot(v1, v2)",
        elements: |d| d,
    },
    OpCase {
        name: "matrix add",
        instr: "m2 = m0 + m1",
        elements: |d| d * d,
    },
    OpCase {
        name: "scalar*matrix",
        instr: "m2 = s2 * m0",
        elements: |d| d * d,
    },
    OpCase {
        name: "matmul m.v",
        instr: "v3 = matmul(m0, v1)",
        elements: |d| d * d,
    },
    OpCase {
        name: "matmul m.m",
        instr: "m2 = matmul(m0, m1)",
        elements: |d| d * d * d,
    },
    OpCase {
        name: "outer",
        instr: "m2 = outer(v1, v2)",
        elements: |d| d * d,
    },
];

/// Operands of moderate size, so that no value overflows or turns subnormal; filled
/// with constants, so that the setup costs little beside the timed copies (Gaussian
/// draws made it most of a cheap op's evaluation).
const SETUP: &str = "s2 = 0.5\ns4 = 0.25\nv1 = 0.5\nv2 = -0.25\nm0 = 0.25\nm1 = -0.125\n";

/// Seconds per evaluation of `c` on `batch`, over one window of about `window` seconds.
fn seconds_per_eval(ev: &mut Evaluator, c: &Compiled, batch: &TaskBatch, window: f64) -> f64 {
    let lanes = batch.tasks().len();
    let seeds: Vec<u64> = (0..lanes as u64).collect();
    let mut out = vec![0.0; lanes];
    let opts = EvalOptions::default();
    let (started, mut runs) = (Instant::now(), 0u32);
    while runs == 0 || started.elapsed().as_secs_f64() < window {
        ev.score_batch(c, batch, &seeds, &opts, &mut out);
        runs += 1;
    }
    started.elapsed().as_secs_f64() / f64::from(runs)
}

/// The FMA ceiling at `D`, `T` over one window: multiply-adds per second of
/// [`fma_matvec`].
fn ceiling<const D: usize, const T: usize>(window: f64) -> f64 {
    let m: Vec<f32> = (0..D * D * T).map(|i| (i % 7) as f32 * 0.01).collect();
    let v: Vec<f32> = (0..D * T).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut out = vec![0.0; D * T];
    let (started, mut runs) = (Instant::now(), 0u64);
    let mut sink = 0.0;
    while runs == 0 || started.elapsed().as_secs_f64() < window {
        for _ in 0..64 {
            sink += std::hint::black_box(fma_matvec::<D, T>(&m, &v, &mut out));
        }
        runs += 64;
    }
    std::hint::black_box(sink);
    runs as f64 * (D * D * T) as f64 / started.elapsed().as_secs_f64()
}

fn ceiling_at(dim: usize, lanes: usize, window: f64) -> f64 {
    match (dim, lanes) {
        (4, 10) => ceiling::<4, 10>(window),
        (8, 10) => ceiling::<8, 10>(window),
        (16, 10) => ceiling::<16, 10>(window),
        (32, 10) => ceiling::<32, 10>(window),
        (4, 1) => ceiling::<4, 1>(window),
        (8, 1) => ceiling::<8, 1>(window),
        (16, 1) => ceiling::<16, 1>(window),
        (32, 1) => ceiling::<32, 1>(window),
        _ => unreachable!("the sizes and lane counts of DIMS and LANES"),
    }
}

/// Every op at every size and lane count; returns the summary (rows of
/// op, `D`, lanes, elements/s, ratio to the ceiling).
pub fn run(args: &BenchArgs) -> anyhow::Result<Value> {
    // `--seconds` (default 40) is spread over every window of the run.
    let windows = LANES.len() * DIMS.len() * 3 * OPS.len() * WINDOWS;
    let window = args.seconds.unwrap_or(40.0) / windows as f64;
    let mut rows = Vec::new();
    let mut ceilings = Vec::new();
    for lanes in LANES {
        for dim in DIMS {
            let tasks: Vec<_> = (0..lanes as u32)
                .map(|i| {
                    let spec = TaskSpec::new(TaskType::ScalarLinear, i, dim);
                    Arc::new(build(
                        &spec,
                        LinearSizes {
                            train: EXAMPLES,
                            val: 1,
                        },
                    ))
                })
                .collect();
            let batch = TaskBatch::new(&tasks).expect("equal shapes");
            let compile = |body: &str| -> anyhow::Result<Compiled> {
                let text = format!(
                    "# meta: scalar_count=5 vector_count=4 matrix_count=3 predict_max_ops={REPS}\n\
                     # setup\n{SETUP}# predict\n{body}\n"
                );
                let mut c = Compiled::default();
                Compiler::keeping_dead().compile_into(&parse_program(&text)?, dim, &mut c);
                Ok(c)
            };
            let empty = compile("")?;
            let mut ev = Evaluator::new();
            let mut tops = Vec::new();
            for op in &OPS {
                let c = compile(&vec![op.instr; REPS].join("\n"))?;
                // Predict runs for every training example and the one validation example.
                let elements = (op.elements)(dim) * REPS * lanes * (EXAMPLES + 1);
                // Each window times the ceiling, the op and the empty program back to
                // back, so that a ratio compares figures of the same moment of a
                // drifting machine; the medians over the windows are reported.
                let (mut rates, mut ratios) = (Vec::new(), Vec::new());
                for _ in 0..WINDOWS {
                    let top = ceiling_at(dim, lanes, window);
                    let seconds = seconds_per_eval(&mut ev, &c, &batch, window);
                    let overhead = seconds_per_eval(&mut ev, &empty, &batch, window);
                    // A difference lost in the noise counts as the whole evaluation's.
                    let spent = if seconds > overhead {
                        seconds - overhead
                    } else {
                        seconds
                    };
                    let rate = elements as f64 / spent;
                    tops.push(top as f32);
                    rates.push(rate as f32);
                    ratios.push((rate / top) as f32);
                }
                let (rate, ratio) = (f64::from(median(&rates)), f64::from(median(&ratios)));
                eprintln!(
                    "[bench kernels] D = {dim:>2}, {lanes:>2} lanes  {:<14} {:>8.3} G elements/s  {:>5.1} % of the ceiling",
                    op.name,
                    rate / 1e9,
                    100.0 * ratio
                );
                rows.push(json!({
                    "op": op.name, "dim": dim, "lanes": lanes,
                    "elements_per_sec": rate, "of_ceiling": ratio,
                }));
            }
            let top = f64::from(median(&tops));
            eprintln!(
                "[bench kernels] D = {dim:>2}, {lanes:>2} lanes  FMA ceiling {:.2} G multiply-adds/s",
                top / 1e9
            );
            ceilings.push(json!({"dim": dim, "lanes": lanes, "fma_per_sec": top}));
        }
    }
    Ok(json!({"bench": "kernels", "ops": rows, "ceilings": ceilings}))
}
