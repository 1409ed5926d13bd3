//! The interpreter: a program is compiled once per vector size into a flat, pre-resolved
//! form (register offsets, operand broadcasting modes, one kernel per instruction, dead
//! code removed), then evaluated on tasks exactly as engine.md §2 prescribes.
//!
//! Determinism: every reduction runs sequentially in index order in `f32`, transcendental
//! functions come from `libm`, and each task is evaluated on one thread — so a score is
//! bit-identical whatever the machine or thread count.

use super::cache::KeyHasher;
use super::ops::{Kind, Op};
use super::program::{Addr, Instruction, Phase, Program};
use crate::rng::Rng;
use crate::tasks::suite::median;
use crate::tasks::{Metric, Task};
use rayon::prelude::*;
use std::hash::{Hash, Hasher};
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

/// A pre-resolved kernel. Offsets live in [`CInstr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Scalar ∘ scalar into a scalar: the most common instruction, kept branch-free.
    BinS(BinOp),
    Bin(BinOp, Mode, Mode),
    Un(UnOp, Mode),
    /// Every destination element = c1.
    Fill,
    /// A normal draw per destination element.
    Gaussian,
    /// A uniform draw per destination element.
    Uniform,
    /// A dead random op: advance the RNG by `n` 64-bit draws, write nothing.
    Skip,
    /// Inner product of two vectors, filled into the destination.
    Dot,
    /// Reduction of `b` elements starting at `a`, filled into the destination.
    Reduce(Reduce),
    /// Matrix × vector into a vector, or every row of a matrix destination.
    MatVec,
    MatMat,
    Outer,
}

impl Kernel {
    /// A distinct small number per kernel (variant in the high byte, its fields below),
    /// so that [`Compiled::code_key`] hashes one word instead of a tree of enums.
    fn code(self) -> u64 {
        let (variant, fields) = match self {
            Kernel::BinS(op) => (0, op as u64),
            Kernel::Bin(op, ma, mb) => (1, op as u64 | (ma as u64) << 3 | (mb as u64) << 5),
            Kernel::Un(op, m) => (2, op as u64 | (m as u64) << 3),
            Kernel::Fill => (3, 0),
            Kernel::Gaussian => (4, 0),
            Kernel::Uniform => (5, 0),
            Kernel::Skip => (6, 0),
            Kernel::Dot => (7, 0),
            Kernel::Reduce(r) => (8, r as u64),
            Kernel::MatVec => (9, 0),
            Kernel::MatMat => (10, 0),
            Kernel::Outer => (11, 0),
        };
        variant << 8 | fields
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CInstr {
    k: Kernel,
    /// Destination kind: the number of elements written (1, D or D²).
    dk: Kind,
    a: u32,
    b: u32,
    d: u32,
    /// Skip: number of 64-bit draws to discard.
    n: u32,
    c1: f32,
    c2: f32,
}

/// A program compiled for one vector size.
#[derive(Clone, Debug, Default)]
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
    /// A dense register number for liveness sets.
    fn id(&self, a: Addr) -> usize {
        let before = match a.kind {
            Kind::Scalar => 0,
            Kind::Vector => self.counts[0],
            Kind::Matrix => self.counts[0] + self.counts[1],
        };
        before + a.index as usize
    }
    fn n_ids(&self) -> usize {
        self.counts.iter().sum()
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
    /// Register ids (see [`Layout::id`]) read and written.
    reads: [Option<usize>; 2],
    write: usize,
    /// Whether every element of the destination is written (all but CONST_VEC).
    full: bool,
}

fn resolve(i: &Instruction, lay: &Layout) -> Option<Resolved> {
    let d = lay.offset(i.dest)?;
    let kd = i.dest?.kind;
    let mut ins = CInstr {
        k: Kernel::Fill,
        dk: kd,
        a: 0,
        b: 0,
        d: d as u32,
        n: 0,
        c1: i.const1,
        c2: i.const2,
    };
    let operand = |a: Option<Addr>| Some((lay.offset(a)?, a?.kind));
    let id = |a: Option<Addr>| a.map(|a| lay.id(a));
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
        ins.k = if (ka, kb, kd) == (Kind::Scalar, Kind::Scalar, Kind::Scalar) {
            Kernel::BinS(op)
        } else {
            Kernel::Bin(op, mode(ka), mode(kb))
        };
        (ins.a, ins.b) = (a as u32, b as u32);
        reads = [id(i.arg1), id(i.arg2)];
    } else if let Some(op) = un {
        let (a, ka) = operand(i.arg1)?;
        if ka > kd {
            return None;
        }
        ins.k = Kernel::Un(op, mode(ka));
        ins.a = a as u32;
        reads[0] = id(i.arg1);
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
                ins.dk = Kind::Scalar;
                ins.c1 = i.const2;
            }
            Op::Gaussian => ins.k = Kernel::Gaussian,
            Op::Uniform => ins.k = Kernel::Uniform,
            Op::Copy => {
                let (a, ka) = operand(i.arg1)?;
                ins.a = a as u32;
                reads[0] = id(i.arg1);
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
                reads[0] = id(i.arg1);
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
                reads = [id(i.arg1), id(i.arg2)];
            }
            _ => unreachable!("every op is handled above"),
        }
    }
    Some(Resolved {
        ins,
        reads,
        write: lay.id(i.dest?),
        full: i.op != Op::ConstVec,
    })
}

/// Compile `program` for tasks with `input_dim` features (`D` = the program's
/// `vector_dim`, or `input_dim`).
///
/// Invalid instructions vanish; so does every instruction whose result no live
/// instruction of any phase reads and that does not write `s0` — except random ops,
/// which become a bare advance of the RNG so later draws are unchanged.
pub fn compile(program: &Program, input_dim: usize) -> Compiled {
    let mut out = Compiled::default();
    Compiler::default().compile_into(program, input_dim, &mut out);
    out
}

/// The buffers [`compile`] works in, kept between calls so that a search compiling
/// one child after another allocates nothing.
#[derive(Default)]
pub struct Compiler {
    resolved: [Vec<Resolved>; 3],
    live: [Vec<bool>; 3],
    /// Keep dead instructions (tests compare scores with and without elimination).
    keep_dead: bool,
}

impl Compiler {
    /// [`compile`] into `out`, reusing its buffers and this compiler's.
    pub fn compile_into(&mut self, program: &Program, input_dim: usize, out: &mut Compiled) {
        let meta = &program.meta;
        let dim = meta.dim_for(input_dim);
        let counts = [meta.scalar_count, meta.vector_count, meta.matrix_count];
        let bases = [0, counts[0], counts[0] + counts[1] * dim];
        let lay = Layout { counts, bases, dim };
        for (resolved, &p) in self.resolved.iter_mut().zip(&Phase::ALL) {
            resolved.clear();
            resolved.extend(program.phase(p).iter().filter_map(|i| resolve(i, &lay)));
        }
        if self.keep_dead || !liveness(&self.resolved, &lay, &mut self.live) {
            for (live, resolved) in self.live.iter_mut().zip(&self.resolved) {
                live.clear();
                live.resize(resolved.len(), true);
            }
        }
        for ((code, resolved), live) in out.phases.iter_mut().zip(&self.resolved).zip(&self.live) {
            code.clear();
            code.extend(resolved.iter().zip(live).filter_map(|(r, &is_live)| {
                if is_live {
                    Some(r.ins)
                } else if matches!(r.ins.k, Kernel::Gaussian | Kernel::Uniform) {
                    // Box–Muller consumes two 64-bit draws per normal, uniform one.
                    let per = if r.ins.k == Kernel::Gaussian { 2 } else { 1 };
                    Some(CInstr {
                        k: Kernel::Skip,
                        n: (lay.len(r.ins.dk) * per) as u32,
                        ..r.ins
                    })
                } else {
                    None
                }
            }));
        }
        out.dim = dim;
        out.n_regs = bases[2] + counts[2] * dim * dim;
        out.v0 = lay.offset(Some(Addr::INPUT));
        out.s0 = lay.offset(Some(Addr::PREDICTION));
        out.s1 = lay.offset(Some(Addr::LABEL));
    }
}

/// A set of register ids (see [`Layout::id`]): a fixed bit array, so the liveness
/// fixed point below runs without allocating. Large enough for the DSL's register
/// limits; a program past it (only possible when built in code) is compiled without
/// dead-code elimination.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RegSet([u64; 6]);

impl RegSet {
    const CAPACITY: usize = 6 * 64;
    const EMPTY: RegSet = RegSet([0; 6]);

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union(mut self, other: RegSet) -> RegSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }
}

/// Backward pass over one phase: the registers live at the phase's start, given those
/// live at its end (strong liveness: a dead instruction's reads do not count). With
/// `flags`, also which instructions write a register that is read later.
fn backward(code: &[Resolved], mut live: RegSet, mut flags: Option<&mut Vec<bool>>) -> RegSet {
    if let Some(f) = flags.as_deref_mut() {
        f.clear();
        f.resize(code.len(), false);
    }
    for (j, r) in code.iter().enumerate().rev() {
        if live.contains(r.write) {
            if let Some(f) = flags.as_deref_mut() {
                f[j] = true;
            }
            if r.full {
                live.remove(r.write);
            }
            for x in r.reads.iter().flatten() {
                live.insert(*x);
            }
        }
    }
    live
}

/// Flow-sensitive liveness over the evaluation loop (engine.md §2): setup → predict,
/// predict → (s1 := label) learn, predict → predict (validation), learn → (s1 := 0)
/// predict; `s0` is read after every predict. The `v0` load is a partial write, so it
/// kills nothing. Fills, per phase, which instructions are live; false (and nothing
/// filled) when the register file is too large to analyse.
fn liveness(resolved: &[Vec<Resolved>; 3], lay: &Layout, flags: &mut [Vec<bool>; 3]) -> bool {
    if lay.n_ids() > RegSet::CAPACITY {
        return false;
    }
    let s0 = (lay.counts[0] > 0).then_some(0);
    let s1 = (lay.counts[0] > 1).then_some(1);
    // Live at the end of learn and of predict, given what is live at predict's start.
    let out_learn = |in_p: RegSet| {
        let mut out = in_p;
        if let Some(s1) = s1 {
            out.remove(s1);
        }
        out
    };
    let out_predict = |in_p: RegSet, in_l: RegSet| {
        let mut out = in_p.union(in_l);
        if let Some(s1) = s1 {
            out.remove(s1);
            if in_p.contains(s1) {
                out.insert(s1);
            }
        }
        if let Some(s0) = s0 {
            out.insert(s0);
        }
        out
    };
    let (mut in_p, mut in_l) = (RegSet::EMPTY, RegSet::EMPTY);
    loop {
        let new_in_l = backward(&resolved[2], out_learn(in_p), None);
        let new_in_p = backward(&resolved[1], out_predict(in_p, new_in_l), None);
        let merged = new_in_p.union(in_p);
        if merged == in_p && new_in_l == in_l {
            break;
        }
        in_p = merged;
        in_l = new_in_l;
    }
    backward(&resolved[2], out_learn(in_p), Some(&mut flags[2]));
    backward(&resolved[1], out_predict(in_p, in_l), Some(&mut flags[1]));
    backward(&resolved[0], in_p, Some(&mut flags[0]));
    true
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

    /// The arithmetic one training example costs: the element operations of the live
    /// `predict` and `learn` code (an element written counts one, a matrix product `D`
    /// per element, an inner product or reduction its inputs). Evaluation time is
    /// nearly proportional to it, so a search can bound its cost per child with it.
    pub fn example_work(&self) -> u64 {
        let d = self.dim as u64;
        self.phases[1..]
            .iter()
            .flatten()
            .map(|i| {
                let written = match i.dk {
                    Kind::Scalar => 1,
                    Kind::Vector => d,
                    Kind::Matrix => d * d,
                };
                match i.k {
                    Kernel::MatVec | Kernel::MatMat => written * d,
                    Kernel::Dot => written + d,
                    Kernel::Reduce(_) => written + u64::from(i.b),
                    _ => written,
                }
            })
            .sum()
    }

    /// A 128-bit fingerprint of everything an evaluation depends on besides the tasks
    /// and seeds: the vector size, the register file and the live code with its
    /// constants' exact bits. Two programs with the same key score bit-identically, so
    /// a search can reuse the score (the exact-duplicate cache in [`super::evolve`]).
    /// (Numbering registers canonically, so that renamed copies share a key, found no
    /// more duplicates in the demo search: they are nearly all exact copies.)
    pub fn code_key(&self) -> u128 {
        let mut h = KeyHasher::default();
        (self.dim, self.n_regs, self.v0, self.s0, self.s1).hash(&mut h);
        for phase in &self.phases {
            phase.len().hash(&mut h);
            // Four words per instruction; every field keeps all its bits.
            for i in phase {
                h.write_u64(i.k.code() << 8 | i.dk as u64);
                h.write_u64(u64::from(i.a) << 32 | u64::from(i.b));
                h.write_u64(u64::from(i.d) << 32 | u64::from(i.n));
                h.write_u64(u64::from(i.c1.to_bits()) << 32 | u64::from(i.c2.to_bits()));
            }
        }
        h.finish128()
    }
}

/// Unchecked register access for the hot loop. Registers are laid out task-major:
/// element `e` of task `t` lives at `e·T + t`, so one instruction runs for all `T`
/// tasks in a row and the per-task arithmetic vectorises.
///
/// Safety: [`compile`] only emits offsets whose whole operand and destination ranges lie
/// inside the register file (`n_regs` elements), [`Evaluator::run`] sizes the file to
/// `n_regs·T` and dispatches `D` equal to the compiled `dim`.
#[derive(Clone, Copy)]
struct Regs {
    p: *mut f32,
    t: usize,
}

impl Regs {
    #[inline(always)]
    fn get(self, e: usize, t: usize) -> f32 {
        unsafe { *self.p.add(e * self.t + t) }
    }
    #[inline(always)]
    fn set(self, e: usize, t: usize, v: f32) {
        unsafe { *self.p.add(e * self.t + t) = v }
    }
    /// Eight consecutive values from flat index `j` (= e·T + t).
    #[inline(always)]
    fn load8(self, j: usize) -> [f32; 8] {
        unsafe { (self.p.add(j) as *const [f32; 8]).read_unaligned() }
    }
    #[inline(always)]
    fn store8(self, j: usize, v: [f32; 8]) {
        unsafe { (self.p.add(j) as *mut [f32; 8]).write_unaligned(v) }
    }
}

/// `d[j] = f(a[j], b[j])` for `len` values from flat indices `d`, `a`, `b`, eight at a
/// time so that the compiler emits vector instructions. Reading a chunk of each
/// operand before writing it is the element-wise result because the ranges passed
/// here never partly overlap: they are whole registers (or rows) of one kind, which
/// either coincide or are disjoint.
#[inline(always)]
fn zip_map<F: Fn(f32, f32) -> f32>(r: Regs, d: usize, a: usize, b: usize, len: usize, f: &F) {
    let mut j = 0;
    while j + 8 <= len {
        let (x, y) = (r.load8(a + j), r.load8(b + j));
        r.store8(d + j, std::array::from_fn(|k| f(x[k], y[k])));
        j += 8;
    }
    for j in j..len {
        // Element 0 of "task" j is flat index j.
        r.set(0, d + j, f(r.get(0, a + j), r.get(0, b + j)));
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bin<F: Fn(f32, f32) -> f32>(
    r: Regs,
    i: &CInstr,
    ma: Mode,
    mb: Mode,
    n: usize,
    dim: usize,
    tasks: usize,
    f: F,
) {
    let (a, b, d) = (i.a as usize, i.b as usize, i.d as usize);
    match (ma, mb) {
        (Mode::Scalar, Mode::Scalar) => {
            for t in 0..tasks {
                let v = f(r.get(a, t), r.get(b, t));
                for k in 0..n {
                    r.set(d + k, t, v);
                }
            }
        }
        // Task-major layout: same-kind operands are one contiguous run of n·T values.
        (Mode::Same, Mode::Same) => zip_map(r, d * tasks, a * tasks, b * tasks, n * tasks, &f),
        // Row k of the destination pairs row k of one operand with the scalar's row.
        (Mode::Scalar, Mode::Same) => {
            for k in 0..n {
                zip_map(r, (d + k) * tasks, a * tasks, (b + k) * tasks, tasks, &f);
            }
        }
        (Mode::Same, Mode::Scalar) => {
            for k in 0..n {
                zip_map(r, (d + k) * tasks, (a + k) * tasks, b * tasks, tasks, &f);
            }
        }
        _ => {
            let at = |base: usize, m: Mode, k: usize| match m {
                Mode::Scalar => base,
                Mode::Same => base + k,
                Mode::Row => base + k % dim,
            };
            for k in 0..n {
                let (ea, eb) = (at(a, ma, k), at(b, mb, k));
                for t in 0..tasks {
                    r.set(d + k, t, f(r.get(ea, t), r.get(eb, t)));
                }
            }
        }
    }
}

#[inline(always)]
fn un<F: Fn(f32) -> f32>(r: Regs, i: &CInstr, m: Mode, n: usize, dim: usize, tasks: usize, f: F) {
    let (a, d) = (i.a as usize, i.d as usize);
    if m == Mode::Same {
        // The operand passed twice: one contiguous run of n·T values.
        zip_map(r, d * tasks, a * tasks, a * tasks, n * tasks, &|x, _| f(x));
        return;
    }
    for k in 0..n {
        let ea = match m {
            Mode::Scalar => a,
            Mode::Same => a + k,
            Mode::Row => a + k % dim,
        };
        for t in 0..tasks {
            r.set(d + k, t, f(r.get(ea, t)));
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

#[inline(always)]
fn bin_op(op: BinOp, x: f32, y: f32) -> f32 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / (y + 1e-8),
        BinOp::Min => min_nan(x, y),
        BinOp::Max => max_nan(x, y),
    }
}

/// Reduction of `len` elements from `a` for task `t`, summed in index order.
fn reduce(r: Regs, a: usize, len: usize, t: usize, op: Reduce) -> f32 {
    let sum = |f: &dyn Fn(f32) -> f32| (0..len).fold(0.0f32, |s, k| s + f(r.get(a + k, t)));
    match op {
        Reduce::Norm => libm::sqrtf(sum(&|x| x * x)),
        Reduce::Mean => sum(&|x| x) / len as f32,
        Reduce::Std => {
            let mean = sum(&|x| x) / len as f32;
            libm::sqrtf(sum(&|x| (x - mean) * (x - mean)) / len as f32)
        }
    }
}

/// Scratch for matrix products and per-task accumulators (`D²·T` + `T`).
struct Scratch<'a> {
    mat: &'a mut [f32],
    acc: &'a mut [f32],
}

/// Run one phase for all tasks. `D` > 0 is the compile-time vector size (4, 8, 16,
/// 32: loops unroll); `D` = 0 uses the run-time `dim_rt`. Per task, every operation
/// happens in the same order as for a lone task, so results are bit-identical.
#[inline(always)]
fn exec<const D: usize, const T: usize>(
    code: &[CInstr],
    regs: &mut [f32],
    s: &mut Scratch,
    rngs: &mut [Rng],
    dim_rt: usize,
) {
    let dim = if D == 0 { dim_rt } else { D };
    // `T` > 0: the lane count is a compile-time constant, so per-lane loops unroll and
    // product accumulators stay in registers.
    debug_assert!(T == 0 || T == rngs.len());
    let tasks = if T == 0 { rngs.len() } else { T };
    let len = |k: Kind| match k {
        Kind::Scalar => 1,
        Kind::Vector => dim,
        Kind::Matrix => dim * dim,
    };
    debug_assert!(s.acc.len() >= tasks && s.mat.len() >= dim * dim * tasks);
    let r = Regs {
        p: regs.as_mut_ptr(),
        t: tasks,
    };
    for i in code {
        let (a, b, d) = (i.a as usize, i.b as usize, i.d as usize);
        let n = len(i.dk);
        debug_assert!((d + n) * tasks <= regs.len());
        match i.k {
            Kernel::BinS(op) => {
                for t in 0..tasks {
                    r.set(d, t, bin_op(op, r.get(a, t), r.get(b, t)));
                }
            }
            Kernel::Bin(op, ma, mb) => match op {
                BinOp::Add => bin(r, i, ma, mb, n, dim, tasks, |x, y| x + y),
                BinOp::Sub => bin(r, i, ma, mb, n, dim, tasks, |x, y| x - y),
                BinOp::Mul => bin(r, i, ma, mb, n, dim, tasks, |x, y| x * y),
                BinOp::Div => bin(r, i, ma, mb, n, dim, tasks, |x, y| x / (y + 1e-8)),
                BinOp::Min => bin(r, i, ma, mb, n, dim, tasks, min_nan),
                BinOp::Max => bin(r, i, ma, mb, n, dim, tasks, max_nan),
            },
            Kernel::Un(op, m) => match op {
                UnOp::Abs => un(r, i, m, n, dim, tasks, f32::abs),
                UnOp::Exp => un(r, i, m, n, dim, tasks, |x| libm::expf(x.clamp(-10.0, 10.0))),
                UnOp::Log => un(r, i, m, n, dim, tasks, |x| libm::logf(x.abs() + 1e-8)),
                UnOp::Sin => un(r, i, m, n, dim, tasks, libm::sinf),
                UnOp::Cos => un(r, i, m, n, dim, tasks, libm::cosf),
                UnOp::Tan => un(r, i, m, n, dim, tasks, libm::tanf),
                UnOp::Heaviside => un(r, i, m, n, dim, tasks, |x| if x > 0.0 { 1.0 } else { 0.0 }),
                UnOp::Identity => un(r, i, m, n, dim, tasks, |x| x),
            },
            Kernel::Fill => regs[d * tasks..(d + n) * tasks].fill(i.c1),
            // Each task draws from its own RNG, element by element, as it would alone.
            Kernel::Gaussian => {
                for k in 0..n {
                    for (t, rng) in rngs.iter_mut().enumerate() {
                        r.set(d + k, t, rng.normal_f32(i.c1, i.c2));
                    }
                }
            }
            Kernel::Uniform => {
                for k in 0..n {
                    for (t, rng) in rngs.iter_mut().enumerate() {
                        r.set(d + k, t, rng.uniform_f32(i.c1, i.c2));
                    }
                }
            }
            Kernel::Skip => {
                for rng in rngs.iter_mut() {
                    for _ in 0..i.n {
                        rng.next_u64();
                    }
                }
            }
            Kernel::Dot if T > 0 => {
                let mut acc = [0.0f32; T];
                for k in 0..dim {
                    for (t, x) in acc.iter_mut().enumerate() {
                        *x += r.get(a + k, t) * r.get(b + k, t);
                    }
                }
                for k in 0..n {
                    for (t, x) in acc.iter().enumerate() {
                        r.set(d + k, t, *x);
                    }
                }
            }
            Kernel::Dot => {
                let acc = &mut s.acc[..tasks];
                acc.fill(0.0);
                for k in 0..dim {
                    for (t, x) in acc.iter_mut().enumerate() {
                        *x += r.get(a + k, t) * r.get(b + k, t);
                    }
                }
                for k in 0..n {
                    for (t, x) in acc.iter().enumerate() {
                        r.set(d + k, t, *x);
                    }
                }
            }
            Kernel::Reduce(op) => {
                for t in 0..tasks {
                    s.acc[t] = reduce(r, a, b, t, op);
                }
                for k in 0..n {
                    for t in 0..tasks {
                        r.set(d + k, t, s.acc[t]);
                    }
                }
            }
            Kernel::MatVec if T > 0 => {
                // As below, with each row's sums held in registers.
                for row in 0..dim {
                    let mut acc = [0.0f32; T];
                    for c in 0..dim {
                        for (t, x) in acc.iter_mut().enumerate() {
                            *x += r.get(a + row * dim + c, t) * r.get(b + c, t);
                        }
                    }
                    s.mat[row * T..(row + 1) * T].copy_from_slice(&acc);
                }
                for k in 0..n {
                    let src = &s.mat[(k % dim) * T..(k % dim + 1) * T];
                    for (t, x) in src.iter().enumerate() {
                        r.set(d + k, t, *x);
                    }
                }
            }
            Kernel::MatVec => {
                // mat[row·T + t] = Σ_c m[row][c]·v[c], summed in c order.
                for row in 0..dim {
                    let acc = &mut s.mat[row * tasks..(row + 1) * tasks];
                    acc.fill(0.0);
                    for c in 0..dim {
                        for (t, x) in acc.iter_mut().enumerate() {
                            *x += r.get(a + row * dim + c, t) * r.get(b + c, t);
                        }
                    }
                }
                for k in 0..n {
                    for t in 0..tasks {
                        r.set(d + k, t, s.mat[(k % dim) * tasks + t]);
                    }
                }
            }
            Kernel::MatMat if T > 0 => {
                for row in 0..dim {
                    for c in 0..dim {
                        let mut acc = [0.0f32; T];
                        for k in 0..dim {
                            for (t, x) in acc.iter_mut().enumerate() {
                                *x += r.get(a + row * dim + k, t) * r.get(b + k * dim + c, t);
                            }
                        }
                        let e = row * dim + c;
                        s.mat[e * T..(e + 1) * T].copy_from_slice(&acc);
                    }
                }
                for k in 0..n {
                    for t in 0..T {
                        r.set(d + k, t, s.mat[k * T + t]);
                    }
                }
            }
            Kernel::MatMat => {
                for row in 0..dim {
                    for c in 0..dim {
                        let e = row * dim + c;
                        let acc = &mut s.mat[e * tasks..(e + 1) * tasks];
                        acc.fill(0.0);
                        for k in 0..dim {
                            for (t, x) in acc.iter_mut().enumerate() {
                                *x += r.get(a + row * dim + k, t) * r.get(b + k * dim + c, t);
                            }
                        }
                    }
                }
                for k in 0..n {
                    for t in 0..tasks {
                        r.set(d + k, t, s.mat[k * tasks + t]);
                    }
                }
            }
            Kernel::Outer => {
                for row in 0..dim {
                    for c in 0..dim {
                        for t in 0..tasks {
                            r.set(d + row * dim + c, t, r.get(a + row, t) * r.get(b + c, t));
                        }
                    }
                }
            }
        }
    }
}

/// Early stopping for one training example: marks each running lane whose prediction
/// is NaN or further than `limit` from its label, and returns how many it marked.
#[inline(always)]
fn stop_astray(
    preds: impl Iterator<Item = f32> + Clone,
    ys: &[f32],
    stopped: &mut [bool],
    limit: f32,
) -> usize {
    // A NaN prediction makes a NaN error.
    let astray = |p: f32, y: f32| {
        let err = (p - y).abs();
        (err > limit) | err.is_nan()
    };
    // A branch-free scan first: a running lane going astray is rare, most examples
    // need no more.
    let mut any = false;
    for ((p, &y), &s) in preds.clone().zip(ys).zip(stopped.iter()) {
        any |= astray(p, y) & !s;
    }
    if !any {
        return 0;
    }
    let mut marked = 0;
    for ((p, &y), s) in preds.zip(ys).zip(stopped.iter_mut()) {
        if !*s && astray(p, y) {
            *s = true;
            marked += 1;
        }
    }
    marked
}

/// Copy a few dozen floats without a `memcpy` call (whose overhead dominates at this
/// size in the per-example loop).
#[inline(always)]
fn copy_small(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(4);
    let mut s = src.chunks_exact(4);
    for (a, b) in (&mut d).zip(&mut s) {
        let v: [f32; 4] = [b[0], b[1], b[2], b[3]];
        a.copy_from_slice(&v);
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = *b;
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

/// Reusable evaluation buffers (registers, scratch, predictions, RNGs), so the
/// evolution hot loop does not allocate per child.
#[derive(Default)]
pub struct Evaluator {
    regs: Vec<f32>,
    mat: Vec<f32>,
    acc: Vec<f32>,
    rngs: Vec<Rng>,
    /// Validation predictions, example-major: lane `t` of example `e` at `e·lanes + t`.
    preds: Vec<f32>,
    /// Per-lane sums of squared errors (scoring buffer).
    lane_sums: Vec<f64>,
    n_val: usize,
    stopped: Vec<bool>,
    train_steps: u64,
    /// Training-phase prediction errors of the last single-task run, when requested.
    pub(crate) train_errors: Vec<f32>,
}

/// Tasks of one shape (input size, example counts) with their examples interleaved
/// lane-major — feature `k` of example `e` of task `t` at `(e·input_dim + k)·T + t` —
/// so lockstep evaluation loads an example for all tasks with one contiguous copy.
/// Build it once per task set (a miner's suite), not per evaluation.
pub struct TaskBatch {
    tasks: Vec<Arc<Task>>,
    input_dim: usize,
    n_train: usize,
    n_val: usize,
    train_x: Vec<f32>,
    train_y: Vec<f32>,
    val_x: Vec<f32>,
    val_y: Vec<f32>,
}

impl TaskBatch {
    /// `None` when `tasks` is empty or their shapes differ.
    pub fn new(tasks: &[Arc<Task>]) -> Option<TaskBatch> {
        let first = tasks.first()?;
        let shape = |t: &Task| (t.input_dim, t.train_len(), t.val_len());
        if tasks.iter().any(|t| shape(t) != shape(first)) {
            return None;
        }
        let nt = tasks.len();
        let interleave = |rows: &dyn Fn(&Task) -> &[f32], n: usize, width: usize| {
            let mut out = vec![0.0f32; n * width * nt];
            for (t, task) in tasks.iter().enumerate() {
                for (i, x) in rows(task)[..n * width].iter().enumerate() {
                    out[i * nt + t] = *x;
                }
            }
            out
        };
        let dim = first.input_dim;
        Some(TaskBatch {
            input_dim: dim,
            n_train: first.train_len(),
            n_val: first.val_len(),
            train_x: interleave(&|t| &t.train_x, first.train_len(), dim),
            train_y: interleave(&|t| &t.train_y, first.train_len(), 1),
            val_x: interleave(&|t| &t.val_x, first.val_len(), dim),
            val_y: interleave(&|t| &t.val_y, first.val_len(), 1),
            tasks: tasks.to_vec(),
        })
    }

    pub fn tasks(&self) -> &[Arc<Task>] {
        &self.tasks
    }
}

/// Example data as the interpreter reads it (lane-major; one lane is plain row-major).
#[derive(Clone, Copy)]
pub(crate) struct Lanes<'a> {
    lanes: usize,
    input_dim: usize,
    n_train: usize,
    n_val: usize,
    train_x: &'a [f32],
    train_y: &'a [f32],
    val_x: &'a [f32],
    val_y: &'a [f32],
}

impl<'a> Lanes<'a> {
    pub(crate) fn single(task: &'a Task) -> Self {
        Lanes {
            lanes: 1,
            input_dim: task.input_dim,
            n_train: task.train_len(),
            n_val: task.val_len(),
            train_x: &task.train_x,
            train_y: &task.train_y,
            val_x: &task.val_x,
            val_y: &task.val_y,
        }
    }
    fn of(batch: &'a TaskBatch) -> Self {
        Lanes {
            lanes: batch.tasks.len(),
            input_dim: batch.input_dim,
            n_train: batch.n_train,
            n_val: batch.n_val,
            train_x: &batch.train_x,
            train_y: &batch.train_y,
            val_x: &batch.val_x,
            val_y: &batch.val_y,
        }
    }
}

/// What one lockstep run covers.
#[derive(Clone, Copy)]
pub(crate) struct RunSpec {
    pub n_train: usize,
    pub n_val: usize,
    pub early_stop: Option<f32>,
    pub record_train_errors: bool,
}

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Score `compiled` on `task` with evaluation seed `seed` (engine.md §2).
    pub fn score(&mut self, c: &Compiled, task: &Task, seed: u64, opts: &EvalOptions) -> f32 {
        let mut out = [0.0];
        self.score_lanes(c, Lanes::single(task), &[task], &[seed], opts, &mut out);
        out[0]
    }

    /// Score `compiled` on every task of a batch in lockstep (task `i` with seed
    /// `seeds[i]`); bit-identical to scoring each task alone.
    pub fn score_batch(
        &mut self,
        c: &Compiled,
        batch: &TaskBatch,
        seeds: &[u64],
        opts: &EvalOptions,
        out: &mut [f32],
    ) {
        self.score_lanes(c, Lanes::of(batch), &batch.tasks, seeds, opts, out);
    }

    fn score_lanes<B: std::borrow::Borrow<Task>>(
        &mut self,
        c: &Compiled,
        data: Lanes,
        tasks: &[B],
        seeds: &[u64],
        opts: &EvalOptions,
        out: &mut [f32],
    ) {
        let spec = RunSpec {
            n_train: data.n_train,
            n_val: data.n_val,
            early_stop: opts.early_stop_abs_error,
            record_train_errors: false,
        };
        self.run(c, data, seeds, spec);
        let (nt, n_val) = (tasks.len(), self.n_val);
        let lane = |t: usize| self.preds.iter().skip(t).step_by(nt).copied();
        if tasks
            .iter()
            .all(|t| t.borrow().metric == Metric::InverseAtanRmse)
        {
            // Every lane's squared errors summed example by example in one pass: each
            // sum keeps its own index order (bit-identical to scoring the lane alone),
            // and the lanes' additions overlap instead of waiting on each other.
            let sums = &mut self.lane_sums;
            sums.clear();
            sums.resize(nt, 0.0);
            let finite = squared_errors(&self.preds, data.val_y, sums);
            for (t, o) in out.iter_mut().enumerate() {
                *o = if self.stopped[t] {
                    MIN_FITNESS
                } else if !finite && lane(t).any(|p| !p.is_finite()) {
                    f32::NEG_INFINITY
                } else {
                    inverse_atan_rmse(sums[t], n_val)
                };
            }
            return;
        }
        for (t, (task, o)) in tasks.iter().zip(out.iter_mut()).enumerate() {
            let task = task.borrow();
            *o = if self.stopped[t] {
                MIN_FITNESS
            } else {
                score_lane(task.metric, lane(t), &task.val_y[..n_val])
            };
        }
    }

    /// Run setup, `n_train` training and `n_val` validation examples on every lane in
    /// lockstep (one lane per task; `seeds` has one seed per lane).
    pub(crate) fn run(&mut self, c: &Compiled, data: Lanes, seeds: &[u64], spec: RunSpec) {
        let dim = c.dim;
        let nt = data.lanes;
        let spec = RunSpec {
            n_train: spec.n_train.min(data.n_train),
            n_val: spec.n_val.min(data.n_val),
            ..spec
        };
        self.regs.clear();
        self.regs.resize(c.n_regs * nt, 0.0);
        self.mat.resize(self.mat.len().max(dim * dim * nt), 0.0);
        self.acc.resize(self.acc.len().max(nt), 0.0);
        self.rngs.clear();
        self.rngs
            .extend(seeds.iter().take(nt).map(|&s| Rng::new(s)));
        self.preds.clear();
        self.preds.resize(spec.n_val * nt, 0.0);
        self.n_val = spec.n_val;
        self.stopped.clear();
        self.stopped.resize(nt, false);
        self.train_errors.clear();
        match (dim, nt) {
            (16, 10) => self.run_dim::<16, 10>(c, data, spec),
            (16, 8) => self.run_dim::<16, 8>(c, data, spec),
            (4, 10) => self.run_dim::<4, 10>(c, data, spec),
            (4, _) => self.run_dim::<4, 0>(c, data, spec),
            (8, _) => self.run_dim::<8, 0>(c, data, spec),
            (16, _) => self.run_dim::<16, 0>(c, data, spec),
            (32, _) => self.run_dim::<32, 0>(c, data, spec),
            _ => self.run_dim::<0, 0>(c, data, spec),
        }
    }

    /// [`Self::run_lanes`] compiled twice: for the baseline x86-64 (SSE2, 4 floats per
    /// instruction) and, picked at run time, for AVX2 (8). Only the width of the
    /// per-lane loops changes — no fused multiply-add, no reassociation — so every
    /// result is bit-identical on either path.
    fn run_dim<const D: usize, const T: usize>(
        &mut self,
        c: &Compiled,
        data: Lanes,
        spec: RunSpec,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.run_lanes_avx2::<D, T>(c, data, spec) };
        }
        self.run_lanes::<D, T>(c, data, spec)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_lanes_avx2<const D: usize, const T: usize>(
        &mut self,
        c: &Compiled,
        data: Lanes,
        spec: RunSpec,
    ) {
        self.run_lanes::<D, T>(c, data, spec)
    }

    #[inline(always)]
    fn run_lanes<const D: usize, const T: usize>(
        &mut self,
        c: &Compiled,
        data: Lanes,
        spec: RunSpec,
    ) {
        let dim = c.dim;
        // A compile-time lane count lets the per-lane loops below unroll.
        let nt = if T > 0 { T } else { data.lanes };
        debug_assert_eq!(nt, data.lanes);
        let regs = &mut self.regs[..];
        let mut scratch = Scratch {
            mat: &mut self.mat[..],
            acc: &mut self.acc[..],
        };
        let rngs = &mut self.rngs[..];
        let load = dim.min(data.input_dim);
        let block = data.input_dim * nt;
        let [setup, predict, learn] = &c.phases;
        // One contiguous copy loads example `e` into v0 for every lane.
        let load_example = |regs: &mut [f32], xs: &[f32], e: usize| {
            if let Some(v0) = c.v0 {
                copy_small(
                    &mut regs[v0 * nt..(v0 + load) * nt],
                    &xs[e * block..e * block + load * nt],
                );
            }
        };
        exec::<D, T>(setup, regs, &mut scratch, rngs, dim);
        let mut running = nt;
        for e in 0..spec.n_train {
            self.train_steps += running as u64;
            load_example(regs, data.train_x, e);
            exec::<D, T>(predict, regs, &mut scratch, rngs, dim);
            let ys = &data.train_y[e * nt..(e + 1) * nt];
            let preds = c.s0.map(|s0| &regs[s0 * nt..(s0 + 1) * nt]);
            if let Some(limit) = spec.early_stop {
                let stopped = &mut self.stopped[..nt];
                running -= match preds {
                    Some(p) => stop_astray(p.iter().copied(), ys, stopped, limit),
                    None => stop_astray(std::iter::repeat(0.0), ys, stopped, limit),
                };
            }
            if spec.record_train_errors {
                for (t, &y) in ys.iter().enumerate() {
                    self.train_errors.push(preds.map_or(0.0, |p| p[t]) - y);
                }
            }
            if running == 0 {
                return;
            }
            if let Some(s1) = c.s1 {
                regs[s1 * nt..(s1 + 1) * nt].copy_from_slice(ys);
            }
            exec::<D, T>(learn, regs, &mut scratch, rngs, dim);
            if let Some(s1) = c.s1 {
                regs[s1 * nt..(s1 + 1) * nt].fill(0.0);
            }
        }
        for e in 0..spec.n_val {
            load_example(regs, data.val_x, e);
            exec::<D, T>(predict, regs, &mut scratch, rngs, dim);
            if let Some(s0) = c.s0 {
                copy_small(
                    &mut self.preds[e * nt..(e + 1) * nt],
                    &regs[s0 * nt..(s0 + 1) * nt],
                );
            }
        }
    }

    /// Training examples run by this evaluator so far (summed over tasks still running).
    pub fn train_steps(&self) -> u64 {
        self.train_steps
    }

    /// Count training examples an evaluation would have run (a cached score's).
    pub(crate) fn add_train_steps(&mut self, steps: u64) {
        self.train_steps += steps;
    }

    /// Validation predictions of the last single-task run. (A lockstep run keeps them
    /// example-major: example `e` of lane `t` at `e·lanes + t`.)
    pub fn predictions(&self) -> &[f32] {
        &self.preds[..self.n_val]
    }
}

/// Score validation predictions (engine.md §2 step 4).
pub fn score_predictions(metric: Metric, preds: &[f32], labels: &[f32]) -> f32 {
    score_lane(metric, preds.iter().copied(), labels)
}

fn score_lane(metric: Metric, preds: impl Iterator<Item = f32> + Clone, labels: &[f32]) -> f32 {
    match metric {
        Metric::Accuracy => {
            let n = labels.len();
            let correct = preds
                .zip(labels)
                .filter(|(p, y)| (*p > 0.5) == (**y > 0.5))
                .count();
            (correct as f64 / n as f64) as f32
        }
        Metric::InverseAtanRmse => {
            if preds.clone().any(|p| !p.is_finite()) {
                return f32::NEG_INFINITY;
            }
            let sum = preds.zip(labels).fold(0.0f64, |s, (p, y)| {
                let e = (p - *y) as f64;
                s + e * e
            });
            inverse_atan_rmse(sum, labels.len())
        }
    }
}

/// Add each lane's squared errors to `sums` (predictions and labels example-major,
/// `sums.len()` lanes), in example order per lane; false if a prediction is not finite.
/// Dispatched like [`Evaluator::run_lanes`]: AVX2 when the CPU has it, same bits.
fn squared_errors(preds: &[f32], labels: &[f32], sums: &mut [f64]) -> bool {
    #[inline(always)]
    fn body(preds: &[f32], labels: &[f32], sums: &mut [f64]) -> bool {
        let nt = sums.len();
        let mut finite = true;
        for (row, ys) in preds.chunks_exact(nt).zip(labels.chunks_exact(nt)) {
            for ((sum, &p), &y) in sums.iter_mut().zip(row).zip(ys) {
                let err = (p - y) as f64;
                *sum += err * err;
                finite &= p.is_finite();
            }
        }
        finite
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(preds: &[f32], labels: &[f32], sums: &mut [f64]) -> bool {
            body(preds, labels, sums)
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { wide(preds, labels, sums) };
    }
    body(preds, labels, sums)
}

/// `1 − (2/π)·atan(RMSE)` from the sum of squared errors of `n` predictions.
fn inverse_atan_rmse(sum_sq: f64, n: usize) -> f32 {
    let rmse = libm::sqrt(sum_sq / n as f64);
    (1.0 - 2.0 / std::f64::consts::PI * libm::atan(rmse)) as f32
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
/// entries of the longer slice are ignored). Batches of tasks run in parallel, each in
/// lockstep with every task's arithmetic in its own fixed order, so the result is
/// bit-identical for any thread count and equal to scoring each task alone.
pub fn score_on_suite(program: &Program, tasks: &[Arc<Task>], seeds: &[u64]) -> SuiteScore {
    /// Tasks per lockstep batch: enough lanes to vectorise, enough batches to share
    /// across threads.
    const LANES: usize = 8;
    let n = tasks.len().min(seeds.len());
    let opts = EvalOptions::default();
    let chunks: Vec<Vec<f32>> = tasks[..n]
        .par_chunks(LANES)
        .zip(seeds[..n].par_chunks(LANES))
        .map_init(
            || (Evaluator::new(), None::<(usize, Compiled)>),
            |(ev, cache), (chunk, chunk_seeds)| {
                let dim = chunk[0].input_dim;
                if !matches!(cache, Some((d, _)) if *d == dim) {
                    *cache = Some((dim, compile(program, dim)));
                }
                let (_, c) = cache.as_ref().expect("compiled just above");
                let mut out = vec![0.0; chunk.len()];
                match TaskBatch::new(chunk) {
                    Some(batch) => ev.score_batch(c, &batch, chunk_seeds, &opts, &mut out),
                    None => {
                        for ((task, &seed), o) in chunk.iter().zip(chunk_seeds).zip(&mut out) {
                            *o = if task.input_dim == dim {
                                ev.score(c, task, seed, &opts)
                            } else {
                                ev.score(&compile(program, task.input_dim), task, seed, &opts)
                            };
                        }
                    }
                }
                out
            },
        )
        .collect();
    let per_task: Vec<f32> = chunks.into_iter().flatten().collect();
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
