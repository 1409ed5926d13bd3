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
use std::time::Instant;

// The one module of the crate allowed `unsafe` code (see its docs for the proof).
#[allow(unsafe_code)]
mod kernel;
use kernel::squared_errors;

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

/// Per-lane work of one instruction in cost units (see [`CInstr::work`]): a transcendental
/// function (libm `exp`/`log`/`sin`/`cos`/`tan`) per element.
const TRANSCENDENTAL_UNITS: u64 = 8;
/// A normal draw (Box–Muller: two 64-bit draws, a log, a square root and a cosine).
const GAUSSIAN_UNITS: u64 = 8;
/// A uniform draw.
const UNIFORM_UNITS: u64 = 2;
/// Fixed cost of dispatching one instruction, whatever its size.
const DISPATCH_UNITS: u64 = 2;

impl CInstr {
    /// Elements of the destination: 1, D or D².
    fn dest_len(&self, dim: usize) -> usize {
        kind_len(self.dk, dim)
    }

    /// The register ranges (start, length) this instruction reads, at vector size `dim`.
    fn reads(&self, dim: usize) -> [(usize, usize); 2] {
        let (a, b) = (self.a as usize, self.b as usize);
        let n = self.dest_len(dim);
        let operand = |m: Mode| match m {
            Mode::Scalar => 1,
            Mode::Same => n,
            Mode::Row => dim,
        };
        let none = (0, 0);
        match self.k {
            Kernel::BinS(_) => [(a, 1), (b, 1)],
            Kernel::Bin(_, ma, mb) => [(a, operand(ma)), (b, operand(mb))],
            Kernel::Un(_, m) => [(a, operand(m)), none],
            Kernel::Fill | Kernel::Gaussian | Kernel::Uniform | Kernel::Skip => [none, none],
            Kernel::Dot | Kernel::Outer => [(a, dim), (b, dim)],
            Kernel::Reduce(_) => [(a, b), none],
            Kernel::MatVec => [(a, dim * dim), (b, dim)],
            Kernel::MatMat => [(a, dim * dim), (b, dim * dim)],
        }
    }

    /// Work per lane in cost units, where one unit is one element-wise arithmetic
    /// operation (an add, a multiply-add of a product): the elements the kernel touches,
    /// weighted by what each costs — matrix products `D²` (matrix × vector) and `D³`
    /// (matrix × matrix), an outer product `D²`, transcendental functions and random
    /// draws more per element — plus a fixed dispatch cost.
    fn work(&self, dim: usize) -> u64 {
        let (d, n) = (dim as u64, self.dest_len(dim) as u64);
        let body = match self.k {
            Kernel::BinS(_) => 1,
            Kernel::Bin(..) | Kernel::Fill => n,
            Kernel::Un(UnOp::Exp | UnOp::Log | UnOp::Sin | UnOp::Cos | UnOp::Tan, _) => {
                n * TRANSCENDENTAL_UNITS
            }
            Kernel::Un(..) => n,
            Kernel::Gaussian => n * GAUSSIAN_UNITS,
            Kernel::Uniform => n * UNIFORM_UNITS,
            Kernel::Skip => u64::from(self.n),
            Kernel::Dot => d + n,
            // Std reads its operand twice.
            Kernel::Reduce(Reduce::Std) => 2 * u64::from(self.b) + n,
            Kernel::Reduce(_) => u64::from(self.b) + n,
            Kernel::MatVec => d * d + n,
            Kernel::MatMat => d * d * d + n,
            Kernel::Outer => d * d,
        };
        DISPATCH_UNITS + body
    }
}

fn kind_len(kind: Kind, dim: usize) -> usize {
    match kind {
        Kind::Scalar => 1,
        Kind::Vector => dim,
        Kind::Matrix => dim * dim,
    }
}

/// A program compiled for one vector size. Only [`Compiler::compile_into`] builds one,
/// and it verifies [`Compiled::in_bounds`] before handing it out: the kernel's unchecked
/// register access depends on that.
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
        kind_len(kind, self.dim)
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

/// `compile` without dead-code elimination (tests compare against it).
#[cfg(test)]
pub(crate) fn compile_keeping_dead(p: &Program, input_dim: usize) -> Compiled {
    let mut out = Compiled::default();
    let mut compiler = Compiler {
        keep_dead: true,
        ..Compiler::default()
    };
    compiler.compile_into(p, input_dim, &mut out);
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
        // The kernel's unchecked register access relies on this (see `kernel`): a hard
        // check, once per compilation, never skipped in release builds.
        assert!(
            out.in_bounds(),
            "the compiler emitted a register range outside the register file"
        );
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

    /// Work of one run of each phase (setup, predict, learn), per task, in the cost
    /// units of [`super::cost`]: the sum of every live instruction's weighted size.
    pub fn phase_work(&self) -> [u64; 3] {
        self.phases.each_ref().map(|code| {
            code.iter()
                .fold(0u64, |sum, i| sum.saturating_add(i.work(self.dim)))
        })
    }

    /// Whether every instruction reads and writes only registers inside the file of
    /// `n_regs` values (per lane), and the special registers exist in it.
    fn in_bounds(&self) -> bool {
        let inside = |(start, len): (usize, usize)| {
            start.checked_add(len).is_some_and(|end| end <= self.n_regs)
        };
        let special = [self.s0, self.s1]
            .into_iter()
            .flatten()
            .all(|r| r < self.n_regs)
            && self.v0.map_or(true, |v0| inside((v0, self.dim)));
        special
            && self.phases.iter().flatten().all(|i| {
                inside((i.d as usize, i.dest_len(self.dim)))
                    && i.reads(self.dim).into_iter().all(inside)
            })
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
    /// Stop training once a prediction is NaN or further than this from the label, and
    /// treat such a validation prediction the same way; the task then scores
    /// [`MIN_FITNESS`] (AutoML-Zero's `max_abs_error`).
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
    /// The last run gave up because its [`RunSpec::stop`] was due.
    halted: bool,
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
pub(crate) struct RunSpec<'a> {
    pub n_train: usize,
    pub n_val: usize,
    pub early_stop: Option<f32>,
    pub record_train_errors: bool,
    /// Give up between examples when this says so (validators, pool evaluators).
    pub stop: Option<&'a Stop<'a>>,
}

/// Examples between two looks at a [`Stop`]: a look costs a clock read, and even an
/// at-budget program runs this many examples in milliseconds.
const STOP_CHECK_EVERY: usize = 16;

/// When an evaluation of untrusted code gives up: a wall-clock deadline and a
/// cancellation flag (the daemon's shutdown), looked at between examples — never inside
/// the arithmetic, so an evaluation that finishes scores exactly as without it.
#[derive(Clone, Copy)]
pub struct Stop<'a> {
    pub deadline: Option<Instant>,
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Stop<'_> {
    /// Whether the evaluation must end now.
    pub fn due(&self) -> bool {
        (self.cancelled)() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Why an evaluation under a [`Stop`] ended without a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("evaluation stopped: its deadline passed or it was cancelled")]
pub struct Halted;

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Score `compiled` on `task` with evaluation seed `seed` (engine.md §2).
    pub fn score(&mut self, c: &Compiled, task: &Task, seed: u64, opts: &EvalOptions) -> f32 {
        let mut out = [0.0];
        let finished = self.score_lanes(
            c,
            Lanes::single(task),
            &[task],
            &[seed],
            opts,
            None,
            &mut out,
        );
        debug_assert!(finished.is_ok(), "nothing stops a run without a Stop");
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
        let finished = self.score_lanes(c, Lanes::of(batch), &batch.tasks, seeds, opts, None, out);
        debug_assert!(finished.is_ok(), "nothing stops a run without a Stop");
    }

    /// [`Self::score_batch`] (validator options) that gives up between examples once
    /// `stop` is due; then `out` is meaningless.
    fn score_batch_within(
        &mut self,
        c: &Compiled,
        batch: &TaskBatch,
        seeds: &[u64],
        stop: Option<&Stop>,
        out: &mut [f32],
    ) -> Result<(), Halted> {
        let opts = EvalOptions::default();
        self.score_lanes(c, Lanes::of(batch), &batch.tasks, seeds, &opts, stop, out)
    }

    /// [`Self::score`] (validator options) under `stop`, like [`Self::score_batch_within`].
    fn score_within(
        &mut self,
        c: &Compiled,
        task: &Task,
        seed: u64,
        stop: Option<&Stop>,
    ) -> Result<f32, Halted> {
        let mut out = [0.0];
        let opts = EvalOptions::default();
        self.score_lanes(
            c,
            Lanes::single(task),
            &[task],
            &[seed],
            &opts,
            stop,
            &mut out,
        )?;
        Ok(out[0])
    }

    #[allow(clippy::too_many_arguments)]
    fn score_lanes<B: std::borrow::Borrow<Task>>(
        &mut self,
        c: &Compiled,
        data: Lanes,
        tasks: &[B],
        seeds: &[u64],
        opts: &EvalOptions,
        stop: Option<&Stop>,
        out: &mut [f32],
    ) -> Result<(), Halted> {
        let spec = RunSpec {
            n_train: data.n_train,
            n_val: data.n_val,
            early_stop: opts.early_stop_abs_error,
            record_train_errors: false,
            stop,
        };
        self.run(c, data, seeds, spec);
        if self.halted {
            return Err(Halted);
        }
        let (nt, n_val) = (tasks.len(), self.n_val);
        if let Some(limit) = spec.early_stop {
            // AutoML-Zero's early stopping covers validation too: a prediction that is
            // NaN or further than the limit from its label gives the task the minimum
            // fitness (rather than −inf or a tiny score).
            let preds = self.preds.chunks_exact(nt);
            for (p, ys) in preds.zip(data.val_y.chunks_exact(nt)).take(n_val) {
                stop_astray(p.iter().copied(), ys, &mut self.stopped[..nt], limit);
            }
        }
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
            return Ok(());
        }
        for (t, (task, o)) in tasks.iter().zip(out.iter_mut()).enumerate() {
            let task = task.borrow();
            *o = if self.stopped[t] {
                MIN_FITNESS
            } else {
                score_lane(task.metric, lane(t), &task.val_y[..n_val])
            };
        }
        Ok(())
    }

    /// Run setup, `n_train` training and `n_val` validation examples on every lane in
    /// lockstep (one lane per task; `seeds` has one seed per lane).
    pub(crate) fn run(&mut self, c: &Compiled, data: Lanes, seeds: &[u64], spec: RunSpec) {
        let dim = c.dim;
        let nt = data.lanes;
        assert!(seeds.len() >= nt, "one evaluation seed per lane");
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
        self.halted = false;
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
    suite_scores(program, tasks, seeds, None).expect("nothing stops a run without a Stop")
}

/// [`score_on_suite`] for untrusted programs (validators, pool evaluators): gives up
/// between examples once `stop` is due. A finished evaluation scores exactly as
/// [`score_on_suite`] does.
pub fn score_on_suite_within(
    program: &Program,
    tasks: &[Arc<Task>],
    seeds: &[u64],
    stop: &Stop,
) -> Result<SuiteScore, Halted> {
    suite_scores(program, tasks, seeds, Some(stop))
}

fn suite_scores(
    program: &Program,
    tasks: &[Arc<Task>],
    seeds: &[u64],
    stop: Option<&Stop>,
) -> Result<SuiteScore, Halted> {
    /// Tasks per lockstep batch: enough lanes to vectorise, enough batches to share
    /// across threads.
    const LANES: usize = 8;
    let n = tasks.len().min(seeds.len());
    let chunks: Vec<Vec<f32>> = tasks[..n]
        .par_chunks(LANES)
        .zip(seeds[..n].par_chunks(LANES))
        .map_init(
            || (Evaluator::new(), None::<(usize, Compiled)>),
            |(ev, cache), (chunk, chunk_seeds)| {
                if stop.is_some_and(|s| s.due()) {
                    return Err(Halted);
                }
                let dim = chunk[0].input_dim;
                if !matches!(cache, Some((d, _)) if *d == dim) {
                    *cache = Some((dim, compile(program, dim)));
                }
                let (_, c) = cache.as_ref().expect("compiled just above");
                let mut out = vec![0.0; chunk.len()];
                match TaskBatch::new(chunk) {
                    Some(batch) => ev.score_batch_within(c, &batch, chunk_seeds, stop, &mut out)?,
                    None => {
                        for ((task, &seed), o) in chunk.iter().zip(chunk_seeds).zip(&mut out) {
                            *o = if task.input_dim == dim {
                                ev.score_within(c, task, seed, stop)?
                            } else {
                                let other = compile(program, task.input_dim);
                                ev.score_within(&other, task, seed, stop)?
                            };
                        }
                    }
                }
                Ok(out)
            },
        )
        .collect::<Result<_, Halted>>()?;
    let per_task: Vec<f32> = chunks.into_iter().flatten().collect();
    Ok(SuiteScore {
        score: median(&per_task),
        per_task,
    })
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
