//! Compilation: a [`Program`] becomes, once per vector size, a [`Compiled`] — per phase
//! a flat list of pre-resolved instructions ([`CInstr`]: register offsets, operand
//! broadcasting modes, one [`Kernel`] each), with invalid instructions dropped and dead
//! code removed by [`super::liveness`]. [`Compiled`] also answers what a search and the
//! cost model ask of compiled code: its size, its work and its [`Compiled::code_key`].

use super::liveness::{liveness, liveness_of_setup, RegSet};
use crate::engine::cache::KeyHasher;
use crate::engine::ops::{Kind, Op};
use crate::engine::program::{Addr, Changed, Instruction, Phase, Program};
use std::hash::{Hash, Hasher};

/// How an operand maps onto the destination's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// One value for every element.
    Scalar,
    /// Element-for-element (same kind as the destination).
    Same,
    /// A vector applied to every row of a matrix destination.
    Row,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UnOp {
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
pub(super) enum Reduce {
    Norm,
    Mean,
    Std,
}

/// A pre-resolved kernel. Offsets live in [`CInstr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kernel {
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
    pub(super) fn code(self) -> u64 {
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
pub(super) struct CInstr {
    pub(super) k: Kernel,
    /// Destination kind: the number of elements written (1, D or D²).
    pub(super) dk: Kind,
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) d: u32,
    /// Skip: number of 64-bit draws to discard.
    pub(super) n: u32,
    pub(super) c1: f32,
    pub(super) c2: f32,
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
    pub(super) dim: usize,
    pub(super) n_regs: usize,
    pub(super) v0: Option<usize>,
    pub(super) s0: Option<usize>,
    pub(super) s1: Option<usize>,
    pub(super) phases: [Vec<CInstr>; 3],
}

pub(super) struct Layout {
    pub(super) counts: [usize; 3],
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
    pub(super) fn n_ids(&self) -> usize {
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
#[derive(Clone, Copy, Debug)]
pub(super) struct Resolved {
    ins: CInstr,
    /// Register ids (see [`Layout::id`]) read and written.
    pub(super) reads: [Option<usize>; 2],
    pub(super) write: usize,
    /// Whether every element of the destination is written (all but CONST_VEC).
    pub(super) full: bool,
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
    Compiler::keeping_dead().compile_into(p, input_dim, &mut out);
    out
}

/// A program's instructions resolved, with their liveness: what compiling a child one
/// mutation away can reuse ([`Compiler::compile_child`]). A search keeps one beside
/// each member of its population.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    resolved: [Vec<Resolved>; 3],
    live: [Vec<bool>; 3],
    /// Registers live at predict's start, which setup's liveness depends on alone
    /// (`None`: liveness did not run, so every instruction is kept).
    live_in_predict: Option<RegSet>,
    /// What it was made for: `D`, the register counts and whether dead code was kept
    /// (`None` until made).
    made_for: Option<(usize, [usize; 3], bool)>,
}

/// The buffers [`compile`] works in, kept between calls so that a search compiling
/// one child after another allocates nothing.
#[derive(Default)]
pub struct Compiler {
    scratch: Resolution,
    /// Keep dead instructions (tests compare scores with and without elimination).
    keep_dead: bool,
}

impl Compiler {
    /// A compiler that keeps dead instructions: tests compare scores with and without
    /// elimination, and `bench kernels` times instructions whose results nothing reads.
    pub fn keeping_dead() -> Compiler {
        Compiler {
            keep_dead: true,
            ..Compiler::default()
        }
    }

    /// [`compile`] into `out`, reusing its buffers and this compiler's.
    pub fn compile_into(&mut self, program: &Program, input_dim: usize, out: &mut Compiled) {
        let mut res = std::mem::take(&mut self.scratch);
        self.compile_child(program, input_dim, None, Changed::All, &mut res, out);
        self.scratch = res;
    }

    /// [`Self::compile_into`] for a child that differs from its parent by `changed`:
    /// only the changed phase is resolved again, and liveness runs again only where it
    /// can change (a change to setup leaves predict's and learn's as they were). The
    /// rest comes from the parent's resolution: `parent`, or, when `None`, the one
    /// `res` already holds. `res` becomes the child's. The result is exactly
    /// [`compile`]'s (a unit test compares them on random mutations).
    pub fn compile_child(
        &mut self,
        program: &Program,
        input_dim: usize,
        parent: Option<&Resolution>,
        changed: Changed,
        res: &mut Resolution,
        out: &mut Compiled,
    ) {
        let meta = &program.meta;
        let dim = meta.dim_for(input_dim);
        let counts = [meta.scalar_count, meta.vector_count, meta.matrix_count];
        let bases = [0, counts[0], counts[0] + counts[1] * dim];
        let lay = Layout { counts, bases, dim };
        let made_for = Some((dim, counts, self.keep_dead));
        let from = parent.map_or(res.made_for, |p| p.made_for);
        let changed = if from == made_for {
            changed
        } else {
            Changed::All
        };
        let redo = |phase: Phase| match changed {
            Changed::Nothing => false,
            Changed::Phase(p) => p == phase,
            Changed::All => true,
        };
        if let Some(p) = parent {
            for (i, &phase) in Phase::ALL.iter().enumerate() {
                if !redo(phase) {
                    res.resolved[i].clone_from(&p.resolved[i]);
                    res.live[i].clone_from(&p.live[i]);
                }
            }
            res.live_in_predict = p.live_in_predict;
        }
        res.made_for = made_for;
        for (resolved, &p) in res.resolved.iter_mut().zip(&Phase::ALL) {
            if redo(p) {
                resolved.clear();
                resolved.extend(program.phase(p).iter().filter_map(|i| resolve(i, &lay)));
            }
        }
        match (changed, res.live_in_predict) {
            (Changed::Nothing, _) => {}
            (Changed::Phase(Phase::Setup), Some(in_predict)) => {
                liveness_of_setup(&res.resolved[0], in_predict, &mut res.live[0]);
            }
            _ => {
                res.live_in_predict = if self.keep_dead {
                    None
                } else {
                    liveness(&res.resolved, &lay, &mut res.live)
                };
            }
        }
        if res.live_in_predict.is_none() {
            for (live, resolved) in res.live.iter_mut().zip(&res.resolved) {
                live.clear();
                live.resize(resolved.len(), true);
            }
        }
        for ((code, resolved), live) in out.phases.iter_mut().zip(&res.resolved).zip(&res.live) {
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
    /// units of [`crate::engine::cost`]: the sum of every live instruction's weighted size.
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
    /// a search can reuse the score (the exact-duplicate cache in [`crate::engine::evolve`]).
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
