//! The interpreter: a program is compiled once per vector size into a flat, pre-resolved
//! form (register offsets, operand broadcasting modes, one kernel per instruction, dead
//! code removed), then evaluated on tasks exactly as engine.md §2 prescribes.
//!
//! Determinism: every reduction runs sequentially in index order in `f32`, transcendental
//! functions come from `libm`, and each task is evaluated on one thread — so a score is
//! bit-identical whatever the machine or thread count.

use super::ops::{Kind, Op};
use super::program::{Addr, Instruction, Phase, Program};
use crate::rng::Rng;
use crate::tasks::suite::median;
use crate::tasks::{Metric, Task};
use rayon::prelude::*;
use std::sync::Arc;

/// How an operand maps onto the destination's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One value for every element.
    Scalar,
    /// Element-for-element (same kind as the destination).
    Same,
    /// A vector applied to every row of a matrix destination.
    Row,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UnOp {
    Abs,
    Exp,
    Log,
    Sin,
    Cos,
    Tan,
    Heaviside,
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reduce {
    Norm,
    Mean,
    Std,
}

/// A pre-resolved kernel. Offsets live in [`CInstr`]; `n` is the destination length.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    Bin(BinOp, Mode, Mode),
    Un(UnOp, Mode),
    /// `d[..n] = c1`.
    Fill,
    /// `n` normal draws into `d`.
    Gaussian,
    /// `n` uniform draws into `d`.
    Uniform,
    /// A dead random op: advance the RNG by `n` 64-bit draws, write nothing.
    Skip,
    /// Inner product of two vectors, filled into `n` elements.
    Dot,
    /// Reduction of `b` elements starting at `a`, filled into `n` elements.
    Reduce(Reduce),
    /// Matrix × vector; `n` = D (vector dest) or D² (every row of a matrix dest).
    MatVec,
    MatMat,
    Outer,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CInstr {
    k: Kernel,
    a: u32,
    b: u32,
    d: u32,
    n: u32,
    c1: f32,
    c2: f32,
}

/// A program compiled for one vector size.
#[derive(Clone, Debug)]
pub struct Compiled {
    dim: usize,
    n_regs: usize,
    v0: Option<usize>,
    s0: Option<usize>,
    s1: Option<usize>,
    phases: [Vec<CInstr>; 3],
}

struct Layout {
    counts: [usize; 3],
    bases: [usize; 3],
    dim: usize,
}

impl Layout {
    fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Scalar => 1,
            Kind::Vector => self.dim,
            Kind::Matrix => self.dim * self.dim,
        }
    }
    fn offset(&self, a: Option<Addr>) -> Option<usize> {
        let a = a?;
        let k = a.kind as usize;
        let i = a.index as usize;
        (i < self.counts[k]).then(|| self.bases[k] + i * self.len(a.kind))
    }
}

/// One instruction resolved: its kernel, the registers it reads and the one it writes.
struct Resolved {
    ins: CInstr,
    reads: [Option<usize>; 2],
    write: usize,
}

fn resolve(i: &Instruction, lay: &Layout) -> Option<Resolved> {
    let d = lay.offset(i.dest)?;
    let kd = i.dest?.kind;
    let n = lay.len(kd);
    let mut ins = CInstr {
        k: Kernel::Fill,
        a: 0,
        b: 0,
        d: d as u32,
        n: n as u32,
        c1: i.const1,
        c2: i.const2,
    };
    let operand = |a: Option<Addr>| Some((lay.offset(a)?, a?.kind));
    let mode = |k: Kind| match (k, kd) {
        (Kind::Scalar, _) => Mode::Scalar,
        (Kind::Vector, Kind::Matrix) => Mode::Row,
        _ => Mode::Same,
    };
    let mut reads = [None, None];
    let bin = match i.op {
        Op::Add => Some(BinOp::Add),
        Op::Sub => Some(BinOp::Sub),
        Op::Mul => Some(BinOp::Mul),
        Op::Div => Some(BinOp::Div),
        Op::Min => Some(BinOp::Min),
        Op::Max => Some(BinOp::Max),
        _ => None,
    };
    let un = match i.op {
        Op::Abs => Some(UnOp::Abs),
        Op::Exp => Some(UnOp::Exp),
        Op::Log => Some(UnOp::Log),
        Op::Sin => Some(UnOp::Sin),
        Op::Cos => Some(UnOp::Cos),
        Op::Tan => Some(UnOp::Tan),
        Op::Heaviside => Some(UnOp::Heaviside),
        _ => None,
    };
    if let Some(op) = bin {
        let (a, ka) = operand(i.arg1)?;
        let (b, kb) = operand(i.arg2)?;
        if ka.max(kb) > kd {
            return None;
        }
        ins.k = Kernel::Bin(op, mode(ka), mode(kb));
        (ins.a, ins.b) = (a as u32, b as u32);
        reads = [Some(a), Some(b)];
    } else if let Some(op) = un {
        let (a, ka) = operand(i.arg1)?;
        if ka > kd {
            return None;
        }
        ins.k = Kernel::Un(op, mode(ka));
        ins.a = a as u32;
        reads[0] = Some(a);
    } else {
        match i.op {
            Op::Noop => return None,
            Op::Const => ins.k = Kernel::Fill,
            Op::ConstVec => {
                let t = i.const1.trunc();
                if kd != Kind::Vector || !(t >= 0.0 && t < lay.dim as f32) {
                    return None;
                }
                ins.d = (d + t as usize) as u32;
                ins.n = 1;
                ins.c1 = i.const2;
            }
            Op::Gaussian => ins.k = Kernel::Gaussian,
            Op::Uniform => ins.k = Kernel::Uniform,
            Op::Copy => {
                let (a, ka) = operand(i.arg1)?;
                ins.a = a as u32;
                reads[0] = Some(a);
                if ka <= kd {
                    ins.k = Kernel::Un(UnOp::Identity, mode(ka));
                } else if kd == Kind::Scalar {
                    ins.k = Kernel::Reduce(Reduce::Norm);
                    ins.b = lay.len(ka) as u32;
                } else {
                    return None;
                }
            }
            Op::Norm | Op::Mean | Op::Std => {
                let (a, ka) = operand(i.arg1)?;
                if ka == Kind::Scalar {
                    return None;
                }
                ins.k = Kernel::Reduce(match i.op {
                    Op::Norm => Reduce::Norm,
                    Op::Mean => Reduce::Mean,
                    _ => Reduce::Std,
                });
                ins.a = a as u32;
                ins.b = lay.len(ka) as u32;
                reads[0] = Some(a);
            }
            Op::Dot | Op::Matmul | Op::Outer => {
                let (a, ka) = operand(i.arg1)?;
                let (b, kb) = operand(i.arg2)?;
                ins.k = match (i.op, ka, kb, kd) {
                    (Op::Dot, Kind::Vector, Kind::Vector, _) => Kernel::Dot,
                    (Op::Matmul, Kind::Matrix, Kind::Vector, Kind::Vector | Kind::Matrix) => {
                        Kernel::MatVec
                    }
                    (Op::Matmul, Kind::Matrix, Kind::Matrix, Kind::Matrix) => Kernel::MatMat,
                    (Op::Outer, Kind::Vector, Kind::Vector, Kind::Matrix) => Kernel::Outer,
                    _ => return None,
                };
                (ins.a, ins.b) = (a as u32, b as u32);
                reads = [Some(a), Some(b)];
            }
            _ => unreachable!("every op is handled above"),
        }
    }
    Some(Resolved {
        ins,
        reads,
        write: d,
    })
}

/// Compile `program` for tasks with `input_dim` features (`D` = the program's
/// `vector_dim`, or `input_dim`).
///
/// Invalid instructions vanish; so does every instruction whose result no live
/// instruction of any phase reads and that does not write `s0` — except random ops,
/// which become a bare advance of the RNG so later draws are unchanged.
pub fn compile(program: &Program, input_dim: usize) -> Compiled {
    compile_with(program, input_dim, true)
}

fn compile_with(program: &Program, input_dim: usize, eliminate_dead: bool) -> Compiled {
    let meta = &program.meta;
    let dim = meta.dim_for(input_dim);
    let counts = [meta.scalar_count, meta.vector_count, meta.matrix_count];
    let bases = [0, counts[0], counts[0] + counts[1] * dim];
    let n_regs = bases[2] + counts[2] * dim * dim;
    let lay = Layout { counts, bases, dim };
    let resolved: Vec<Vec<Resolved>> = Phase::ALL
        .iter()
        .map(|&p| {
            program
                .phase(p)
                .iter()
                .filter_map(|i| resolve(i, &lay))
                .collect()
        })
        .collect();
    // Flow-insensitive liveness to a fixed point: registers read by live instructions.
    let s0 = lay.offset(Some(Addr::s(0)));
    let mut live_reg = vec![false; n_regs];
    if let Some(s0) = s0 {
        live_reg[s0] = true;
    }
    let mut live: Vec<Vec<bool>> = resolved.iter().map(|p| vec![false; p.len()]).collect();
    loop {
        let mut changed = false;
        for (phase, flags) in resolved.iter().zip(live.iter_mut()) {
            for (r, flag) in phase.iter().zip(flags.iter_mut()) {
                if !*flag && (live_reg[r.write] || !eliminate_dead) {
                    *flag = true;
                    changed = true;
                    for x in r.reads.iter().flatten() {
                        live_reg[*x] = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let phases = [0, 1, 2].map(|p| {
        resolved[p]
            .iter()
            .zip(&live[p])
            .filter_map(|(r, &is_live)| {
                if is_live {
                    Some(r.ins)
                } else if matches!(r.ins.k, Kernel::Gaussian | Kernel::Uniform) {
                    // Box–Muller consumes two 64-bit draws per normal, uniform one.
                    let per = if r.ins.k == Kernel::Gaussian { 2 } else { 1 };
                    Some(CInstr {
                        k: Kernel::Skip,
                        n: r.ins.n * per,
                        ..r.ins
                    })
                } else {
                    None
                }
            })
            .collect()
    });
    Compiled {
        dim,
        n_regs,
        v0: lay.offset(Some(Addr::v(0))),
        s0,
        s1: lay.offset(Some(Addr::s(1))),
        phases,
    }
}

impl Compiled {
    /// `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Instructions left after compilation, per phase (setup, predict, learn).
    pub fn live_sizes(&self) -> [usize; 3] {
        [0, 1, 2].map(|p| self.phases[p].len())
    }
}

#[inline(always)]
fn bin<F: Fn(f32, f32) -> f32>(r: &mut [f32], i: &CInstr, ma: Mode, mb: Mode, dim: usize, f: F) {
    let (a, b, d, n) = (i.a as usize, i.b as usize, i.d as usize, i.n as usize);
    match (ma, mb) {
        (Mode::Scalar, Mode::Scalar) => {
            let v = f(r[a], r[b]);
            r[d..d + n].fill(v);
        }
        (Mode::Same, Mode::Same) => {
            for k in 0..n {
                r[d + k] = f(r[a + k], r[b + k]);
            }
        }
        (Mode::Scalar, Mode::Same) => {
            let x = r[a];
            for k in 0..n {
                r[d + k] = f(x, r[b + k]);
            }
        }
        (Mode::Same, Mode::Scalar) => {
            let y = r[b];
            for k in 0..n {
                r[d + k] = f(r[a + k], y);
            }
        }
        _ => {
            let at = |base: usize, m: Mode, k: usize| match m {
                Mode::Scalar => base,
                Mode::Same => base + k,
                Mode::Row => base + k % dim,
            };
            for k in 0..n {
                r[d + k] = f(r[at(a, ma, k)], r[at(b, mb, k)]);
            }
        }
    }
}

#[inline(always)]
fn un<F: Fn(f32) -> f32>(r: &mut [f32], i: &CInstr, m: Mode, dim: usize, f: F) {
    let (a, d, n) = (i.a as usize, i.d as usize, i.n as usize);
    match m {
        Mode::Scalar => {
            let v = f(r[a]);
            r[d..d + n].fill(v);
        }
        Mode::Same => {
            for k in 0..n {
                r[d + k] = f(r[a + k]);
            }
        }
        Mode::Row => {
            for k in 0..n {
                r[d + k] = f(r[a + k % dim]);
            }
        }
    }
}

/// `max`/`min` that propagate NaN from either side (like numpy's `maximum`).
#[inline(always)]
fn max_nan(x: f32, y: f32) -> f32 {
    if x > y || x.is_nan() {
        x
    } else {
        y
    }
}
#[inline(always)]
fn min_nan(x: f32, y: f32) -> f32 {
    if x < y || x.is_nan() {
        x
    } else {
        y
    }
}

fn reduce(r: &[f32], op: Reduce) -> f32 {
    match op {
        Reduce::Norm => libm::sqrtf(r.iter().fold(0.0f32, |s, x| s + x * x)),
        Reduce::Mean => r.iter().fold(0.0f32, |s, x| s + x) / r.len() as f32,
        Reduce::Std => {
            let mean = r.iter().fold(0.0f32, |s, x| s + x) / r.len() as f32;
            let var = r.iter().fold(0.0f32, |s, x| s + (x - mean) * (x - mean)) / r.len() as f32;
            libm::sqrtf(var)
        }
    }
}

fn exec(code: &[CInstr], r: &mut [f32], tmp: &mut [f32], rng: &mut Rng, dim: usize) {
    for i in code {
        let (a, b, d, n) = (i.a as usize, i.b as usize, i.d as usize, i.n as usize);
        match i.k {
            Kernel::Bin(op, ma, mb) => match op {
                BinOp::Add => bin(r, i, ma, mb, dim, |x, y| x + y),
                BinOp::Sub => bin(r, i, ma, mb, dim, |x, y| x - y),
                BinOp::Mul => bin(r, i, ma, mb, dim, |x, y| x * y),
                BinOp::Div => bin(r, i, ma, mb, dim, |x, y| x / (y + 1e-8)),
                BinOp::Min => bin(r, i, ma, mb, dim, min_nan),
                BinOp::Max => bin(r, i, ma, mb, dim, max_nan),
            },
            Kernel::Un(op, m) => match op {
                UnOp::Abs => un(r, i, m, dim, f32::abs),
                UnOp::Exp => un(r, i, m, dim, |x| libm::expf(x.clamp(-10.0, 10.0))),
                UnOp::Log => un(r, i, m, dim, |x| libm::logf(x.abs() + 1e-8)),
                UnOp::Sin => un(r, i, m, dim, libm::sinf),
                UnOp::Cos => un(r, i, m, dim, libm::cosf),
                UnOp::Tan => un(r, i, m, dim, libm::tanf),
                UnOp::Heaviside => un(r, i, m, dim, |x| if x > 0.0 { 1.0 } else { 0.0 }),
                UnOp::Identity => un(r, i, m, dim, |x| x),
            },
            Kernel::Fill => r[d..d + n].fill(i.c1),
            Kernel::Gaussian => {
                for x in &mut r[d..d + n] {
                    *x = rng.normal_f32(i.c1, i.c2);
                }
            }
            Kernel::Uniform => {
                for x in &mut r[d..d + n] {
                    *x = rng.uniform_f32(i.c1, i.c2);
                }
            }
            Kernel::Skip => {
                for _ in 0..n {
                    rng.next_u64();
                }
            }
            Kernel::Dot => {
                let mut s = 0.0f32;
                for k in 0..dim {
                    s += r[a + k] * r[b + k];
                }
                r[d..d + n].fill(s);
            }
            Kernel::Reduce(op) => {
                let v = reduce(&r[a..a + b], op);
                r[d..d + n].fill(v);
            }
            Kernel::MatVec => {
                for row in 0..dim {
                    let mut s = 0.0f32;
                    for c in 0..dim {
                        s += r[a + row * dim + c] * r[b + c];
                    }
                    tmp[row] = s;
                }
                for chunk in r[d..d + n].chunks_exact_mut(dim) {
                    chunk.copy_from_slice(&tmp[..dim]);
                }
            }
            Kernel::MatMat => {
                for row in 0..dim {
                    for c in 0..dim {
                        let mut s = 0.0f32;
                        for k in 0..dim {
                            s += r[a + row * dim + k] * r[b + k * dim + c];
                        }
                        tmp[row * dim + c] = s;
                    }
                }
                r[d..d + n].copy_from_slice(&tmp[..n]);
            }
            Kernel::Outer => {
                for row in 0..dim {
                    for c in 0..dim {
                        r[d + row * dim + c] = r[a + row] * r[b + c];
                    }
                }
            }
        }
    }
}

/// Search-only evaluation options (they never apply to a validator's score).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EvalOptions {
    /// Stop training once a prediction is NaN or further than this from the label; the
    /// task then scores [`MIN_FITNESS`].
    pub early_stop_abs_error: Option<f32>,
}

/// The score of an early-stopped task (AutoML-Zero's minimum fitness).
pub const MIN_FITNESS: f32 = 0.0;

/// Reusable evaluation buffers (registers, scratch, predictions), so the evolution hot
/// loop does not allocate per task.
#[derive(Default)]
pub struct Evaluator {
    regs: Vec<f32>,
    tmp: Vec<f32>,
    preds: Vec<f32>,
    /// Training-phase prediction errors of the last run, when requested.
    pub(crate) train_errors: Vec<f32>,
}

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Score `compiled` on `task` with evaluation seed `seed` (engine.md §2).
    pub fn score(&mut self, c: &Compiled, task: &Task, seed: u64, opts: &EvalOptions) -> f32 {
        let (nt, nv) = (task.train_len(), task.val_len());
        if self.run(c, task, seed, nt, nv, opts.early_stop_abs_error, false) {
            score_predictions(task.metric, &self.preds, &task.val_y[..nv])
        } else {
            MIN_FITNESS
        }
    }

    /// Run setup, `n_train` training and `n_val` validation examples; predictions land
    /// in `self.preds`. Returns false when stopped early.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &mut self,
        c: &Compiled,
        task: &Task,
        seed: u64,
        n_train: usize,
        n_val: usize,
        early_stop: Option<f32>,
        record_train_errors: bool,
    ) -> bool {
        let dim = c.dim;
        self.regs.clear();
        self.regs.resize(c.n_regs, 0.0);
        if self.tmp.len() < dim * dim {
            self.tmp.resize(dim * dim, 0.0);
        }
        self.preds.clear();
        self.train_errors.clear();
        let r = &mut self.regs[..];
        let tmp = &mut self.tmp[..];
        let mut rng = Rng::new(seed);
        let load = dim.min(task.input_dim);
        let [setup, predict, learn] = &c.phases;
        exec(setup, r, tmp, &mut rng, dim);
        for e in 0..n_train.min(task.train_len()) {
            if let Some(v0) = c.v0 {
                r[v0..v0 + load].copy_from_slice(&task.train_row(e)[..load]);
            }
            exec(predict, r, tmp, &mut rng, dim);
            let y = task.train_y[e];
            let pred = c.s0.map_or(0.0, |s0| r[s0]);
            if let Some(limit) = early_stop {
                if pred.is_nan() || (pred - y).abs() > limit {
                    return false;
                }
            }
            if record_train_errors {
                self.train_errors.push(pred - y);
            }
            if let Some(s1) = c.s1 {
                r[s1] = y;
            }
            exec(learn, r, tmp, &mut rng, dim);
            if let Some(s1) = c.s1 {
                r[s1] = 0.0;
            }
        }
        for e in 0..n_val.min(task.val_len()) {
            if let Some(v0) = c.v0 {
                r[v0..v0 + load].copy_from_slice(&task.val_row(e)[..load]);
            }
            exec(predict, r, tmp, &mut rng, dim);
            self.preds.push(c.s0.map_or(0.0, |s0| r[s0]));
        }
        true
    }

    /// Validation predictions of the last run.
    pub fn predictions(&self) -> &[f32] {
        &self.preds
    }
}

/// Score validation predictions (engine.md §2 step 4).
pub fn score_predictions(metric: Metric, preds: &[f32], labels: &[f32]) -> f32 {
    match metric {
        Metric::Accuracy => {
            let correct = preds
                .iter()
                .zip(labels)
                .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
                .count();
            (correct as f64 / preds.len() as f64) as f32
        }
        Metric::InverseAtanRmse => {
            if preds.iter().any(|p| !p.is_finite()) {
                return f32::NEG_INFINITY;
            }
            let sum = preds.iter().zip(labels).fold(0.0f64, |s, (p, y)| {
                let e = (*p - *y) as f64;
                s + e * e
            });
            let rmse = libm::sqrt(sum / preds.len() as f64);
            (1.0 - 2.0 / std::f64::consts::PI * libm::atan(rmse)) as f32
        }
    }
}

/// Score a compiled program on one task (validator semantics: no early stopping).
pub fn evaluate_task(compiled: &Compiled, task: &Task, seed: u64) -> f32 {
    Evaluator::new().score(compiled, task, seed, &EvalOptions::default())
}

/// Per-task scores and their median (non-finite scores included: validator rule).
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteScore {
    pub score: f32,
    pub per_task: Vec<f32>,
}

/// Score `program` on every task (task `i` with evaluation seed `seeds[i]`; extra
/// entries of the longer slice are ignored). Tasks run in parallel, each sequentially,
/// so the result is bit-identical for any thread count.
pub fn score_on_suite(program: &Program, tasks: &[Arc<Task>], seeds: &[u64]) -> SuiteScore {
    let per_task: Vec<f32> = tasks
        .par_iter()
        .zip(seeds.par_iter())
        .map_init(
            || (Evaluator::new(), None::<(usize, Compiled)>),
            |(ev, cache), (task, &seed)| {
                if !matches!(cache, Some((dim, _)) if *dim == task.input_dim) {
                    *cache = Some((task.input_dim, compile(program, task.input_dim)));
                }
                let (_, c) = cache.as_ref().expect("compiled just above");
                ev.score(c, task, seed, &EvalOptions::default())
            },
        )
        .collect();
    SuiteScore {
        score: median(&per_task),
        per_task,
    }
}

/// How a miner combines task scores into one fitness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Median of the finite scores (−inf when none is finite).
    #[default]
    Median,
    /// Mean of all scores.
    Mean,
}

impl Combine {
    pub fn apply(self, scores: &[f32]) -> f32 {
        match self {
            Combine::Median => {
                let finite: Vec<f32> = scores.iter().copied().filter(|s| s.is_finite()).collect();
                if finite.is_empty() {
                    f32::NEG_INFINITY
                } else {
                    median(&finite)
                }
            }
            Combine::Mean => {
                (scores.iter().map(|&s| s as f64).sum::<f64>() / scores.len() as f64) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests;
