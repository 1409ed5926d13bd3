//! Random instructions and mutations (engine.md §5). Every function here is pure given
//! its RNG: the same program, profile and RNG state give the same result.
//!
//! # Fidelity to AutoML-Zero
//!
//! The draws follow AutoML-Zero's public code (`instruction.cc`, `mutator.cc`,
//! `randomizer.cc`), because the search is very sensitive to them: with constants drawn
//! from U(−2, 2) and re-drawn uniformly on alter_param, the demo search needed about
//! three times as many children as AutoML-Zero's; with both made faithful together it
//! needs the same. Each difference found, and what was done about it:
//!
//! | what | AutoML-Zero | here before | now |
//! |---|---|---|---|
//! | new constant (CONST, CONST_VEC value) | U(−1, 1) | U(−2, 2) | U(−1, 1) |
//! | alter_param: which instruction | any instruction of a uniformly drawn phase | only instructions holding constants | any instruction |
//! | alter_param: what changes | one parameter, uniformly: each input register, the output register, or the data | one constant, re-drawn uniformly | the same as AutoML-Zero |
//! | alter_param: a constant's data | sign flip with p = 0.1, else magnitude × exp(N(0, 1)) | uniform re-draw | flip or log-scale step |
//! | alter_param: CONST_VEC | index re-drawn or value flipped / log-scaled (½ each) | value re-drawn | the same as AutoML-Zero |
//! | alter_param: GAUSSIAN | mean flipped / log-scaled or std log-scaled (½ each) | either re-drawn | the same as AutoML-Zero |
//! | alter_param: UNIFORM | low or high flipped / log-scaled (½ each), then ordered | either re-drawn | the same as AutoML-Zero |
//! | new UNIFORM bounds | two U(−1, 1) draws | low U(−1, 1), high = low + U(0, 2) | two U(−1, 1) draws, ordered (our op reads `[const1, const2)`) |
//! | randomize_component | re-draws every instruction of the phase, keeping its size | refilled the phase to its initial size | keeps the size (so it does not apply to an empty phase) |
//! | destinations | never the label or the input vector | the same | unchanged |
//!
//! Differences kept on purpose: a mutation is applied to a phase where it can act
//! (AutoML-Zero draws the phase first and leaves the child unchanged when, say, insert
//! meets a full phase); insert fills a phase up to its `max_ops` (AutoML-Zero's insert
//! stops one short of `mutate_*_size_max`). Neither matters for the fixed-size demo
//! search, where every mutation applies to every phase.

use super::ops::{Kind, Op, Signature};
use super::program::{
    Addr, Changed, ConstantDraw, Instruction, OpEntry, Phase, PhaseSpec, Profile, Program,
    ProgramMeta,
};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The mutation kinds; one is chosen uniformly per child from the configured list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mutation {
    /// A random instruction at a random position (respecting the phase's maximum size).
    Insert,
    /// Remove one instruction (respecting the minimum size).
    Remove,
    /// Replace one instruction with a random one.
    AlterInstruction,
    /// Re-draw one register of an instruction within its kind.
    AlterArg,
    /// AutoML-Zero's parameter mutation: one parameter of any instruction — an input
    /// register, the output register, or its data (a constant's sign flipped with
    /// p = 0.1, else its magnitude scaled by exp(N(0, 1)); an index re-drawn).
    AlterParam,
    /// Re-draw every instruction of one phase, keeping its size.
    RandomizeComponent,
    /// Refill every phase to its initial size.
    RandomizeProgram,
}

impl Mutation {
    /// AutoML-Zero's demo search's list: re-draw a parameter, an instruction or a whole
    /// phase (fixed-size phases, so nothing inserts or removes).
    pub const AUTOML_ZERO_DEMO: [Mutation; 3] = [
        Mutation::AlterParam,
        Mutation::AlterInstruction,
        Mutation::RandomizeComponent,
    ];

    /// The reference's default list.
    pub const DEFAULTS: [Mutation; 4] = [
        Mutation::Insert,
        Mutation::Remove,
        Mutation::AlterInstruction,
        Mutation::AlterParam,
    ];
}

/// A new constant, drawn as the phase says (by default U(−1, 1), as AutoML-Zero draws
/// every new constant value).
fn draw_const(draw: ConstantDraw, rng: &mut Rng) -> f32 {
    match draw {
        ConstantDraw::Uniform => rng.uniform_f32(-1.0, 1.0),
        ConstantDraw::LogUniform => {
            let magnitude = libm::pow(10.0, -4.0 * rng.next_f64());
            let sign = if rng.index(2) == 0 { 1.0 } else { -1.0 };
            (sign * magnitude) as f32
        }
    }
}

/// AutoML-Zero's probability that alter_param flips a constant's sign instead of
/// scaling it.
const SIGN_FLIP_PROB: f64 = 0.1;

/// `v · exp(N(0, 1))`: a step relative to the constant's own size, so a learning rate
/// of 0.01 is refined as finely as a weight of 1 (a uniform re-draw almost never lands
/// near a small value again). Zero stays zero, as in AutoML-Zero.
fn log_scale(v: f32, rng: &mut Rng) -> f32 {
    (v as f64 * libm::exp(rng.standard_normal())) as f32
}

/// [`log_scale`], or with probability [`SIGN_FLIP_PROB`] a sign flip.
fn log_scale_or_flip(v: f32, rng: &mut Rng) -> f32 {
    if rng.next_f64() < SIGN_FLIP_PROB {
        -v
    } else {
        log_scale(v, rng)
    }
}

/// Bounds of a new UNIFORM: two U(−1, 1) draws, ordered.
fn draw_bounds(rng: &mut Rng) -> (f32, f32) {
    let a = rng.uniform_f32(-1.0, 1.0);
    let b = rng.uniform_f32(-1.0, 1.0);
    (a.min(b), a.max(b))
}

/// Perturb an instruction's data (its constants) as AutoML-Zero's alter_param does.
/// `dim` is the vector size (CONST_VEC's index range).
fn alter_data(ins: &mut Instruction, dim: usize, rng: &mut Rng) {
    let first = rng.index(2) == 0;
    match ins.op {
        Op::Const => ins.const1 = log_scale_or_flip(ins.const1, rng),
        // const1 of CONST_VEC is an element index: re-drawn, never scaled.
        Op::ConstVec if first => ins.const1 = rng.index(dim.max(1)) as f32,
        Op::ConstVec => ins.const2 = log_scale_or_flip(ins.const2, rng),
        // A standard deviation keeps its sign.
        Op::Gaussian if first => ins.const1 = log_scale_or_flip(ins.const1, rng),
        Op::Gaussian => ins.const2 = log_scale(ins.const2, rng),
        Op::Uniform => {
            let (mut lo, mut hi) = (ins.const1, ins.const2);
            if first {
                lo = log_scale_or_flip(lo, rng);
            } else {
                hi = log_scale_or_flip(hi, rng);
            }
            (ins.const1, ins.const2) = (lo.min(hi), lo.max(hi));
        }
        _ => {}
    }
}

fn usable(sig: &Signature, meta: &ProgramMeta) -> bool {
    [sig.a, sig.b, Some(sig.out)]
        .into_iter()
        .flatten()
        .all(|k| meta.count(k) > 0)
}

fn random_reg(kind: Kind, meta: &ProgramMeta, rng: &mut Rng) -> Addr {
    Addr::new(kind, rng.index(meta.count(kind)) as u16)
}

/// A random destination register. As in AutoML-Zero's generator, random code never
/// writes the input features (`v0`) or the label (`s1`) while another register of that
/// kind exists: such a write only destroys the example being learned from, and in the
/// small profiles it made up a third of all random vector instructions. Programs that do
/// write them stay valid (the parser and interpreter accept them); the search just does
/// not propose them.
fn random_dest(kind: Kind, meta: &ProgramMeta, rng: &mut Rng) -> Addr {
    let protected = match kind {
        Kind::Scalar => Some(Addr::LABEL.index),
        Kind::Vector => Some(Addr::INPUT.index),
        Kind::Matrix => None,
    };
    let n = meta.count(kind);
    match protected {
        Some(p) if (p as usize) < n && n > 1 => {
            let i = rng.index(n - 1) as u16;
            Addr::new(kind, if i >= p { i + 1 } else { i })
        }
        _ => random_reg(kind, meta, rng),
    }
}

/// Re-draw one register of `ins` — an input, or the output if `with_dest` — and, if
/// `with_data` and the op holds constants, its data as one more choice; all choices
/// equally likely. False (unchanged) when there is nothing to change.
fn alter_one(
    ins: &mut Instruction,
    meta: &ProgramMeta,
    dim: usize,
    with_data: bool,
    rng: &mut Rng,
) -> bool {
    let data = with_data && ins.op.const_count() > 0;
    let regs = [ins.arg1.is_some(), ins.arg2.is_some(), ins.dest.is_some()];
    let n = regs.iter().filter(|&&r| r).count() + data as usize;
    if n == 0 {
        return false;
    }
    let pick = rng.index(n);
    let Some(slot) = (0..3).filter(|&i| regs[i]).nth(pick) else {
        alter_data(ins, dim, rng);
        return true;
    };
    let reg = match slot {
        0 => &mut ins.arg1,
        1 => &mut ins.arg2,
        _ => &mut ins.dest,
    };
    let kind = reg.map_or(Kind::Scalar, |a| a.kind);
    if meta.count(kind) == 0 {
        return false;
    }
    *reg = Some(if slot == 2 {
        random_dest(kind, meta, rng)
    } else {
        random_reg(kind, meta, rng)
    });
    true
}

/// A random well-typed instruction for a phase: an allowed op, one of its allowed
/// signatures, registers of those kinds. `None` when the phase allows nothing usable
/// with these register counts.
pub fn random_instruction(
    spec: &PhaseSpec,
    meta: &ProgramMeta,
    dim: usize,
    rng: &mut Rng,
) -> Option<Instruction> {
    // Uniform over the usable entries, then over the entry's usable signatures; counted
    // rather than collected, since this runs for nearly every child.
    fn sigs<'a>(e: &'a OpEntry, meta: &'a ProgramMeta) -> impl Iterator<Item = Signature> + 'a {
        e.allowed().iter().filter(|s| usable(s, meta)).copied()
    }
    let usable_entries = spec.ops.iter().filter(|e| sigs(e, meta).next().is_some());
    let n = usable_entries.clone().count();
    if n == 0 {
        return None;
    }
    let entry = usable_entries.clone().nth(rng.index(n))?;
    let op = entry.op;
    let sig = sigs(entry, meta).nth(rng.index(sigs(entry, meta).count()))?;
    let dest = random_dest(sig.out, meta, rng);
    let mut ins = Instruction {
        op,
        dest: Some(dest),
        ..Instruction::NOOP
    };
    ins.arg1 = sig.a.map(|k| random_reg(k, meta, rng));
    ins.arg2 = sig.b.map(|k| random_reg(k, meta, rng));
    match op {
        Op::Const => ins.const1 = draw_const(spec.constants, rng),
        Op::ConstVec => {
            ins.const1 = rng.index(dim.max(1)) as f32;
            ins.const2 = draw_const(spec.constants, rng);
        }
        Op::Gaussian => {
            ins.const1 = rng.uniform_f32(-1.0, 1.0);
            ins.const2 = rng.uniform_f32(0.0, 1.0);
        }
        Op::Uniform => (ins.const1, ins.const2) = draw_bounds(rng),
        _ => {}
    }
    Some(ins)
}

/// `size` random instructions for a phase (fewer only when the phase allows nothing
/// usable).
fn random_code(
    spec: &PhaseSpec,
    meta: &ProgramMeta,
    dim: usize,
    size: usize,
    rng: &mut Rng,
) -> Vec<Instruction> {
    let mut code = Vec::with_capacity(size);
    refill_random(&mut code, spec, meta, dim, size, rng);
    code
}

/// Replace `code` with up to `size` random instructions (fewer only when the phase has
/// no usable op), in `code`'s own buffer: randomize_component runs for a third of the
/// children and must not allocate.
fn refill_random(
    code: &mut Vec<Instruction>,
    spec: &PhaseSpec,
    meta: &ProgramMeta,
    dim: usize,
    size: usize,
    rng: &mut Rng,
) {
    code.clear();
    for _ in 0..size {
        match random_instruction(spec, meta, dim, rng) {
            Some(ins) => code.push(ins),
            None => break,
        }
    }
}

/// A phase of `spec.init_size()` random instructions.
pub fn random_phase(
    spec: &PhaseSpec,
    meta: &ProgramMeta,
    dim: usize,
    rng: &mut Rng,
) -> Vec<Instruction> {
    random_code(spec, meta, dim, spec.init_size(), rng)
}

/// A program whose phases are filled to their initial sizes.
pub fn random_program(profile: &Profile, dim: usize, rng: &mut Rng) -> Program {
    let meta = profile.meta();
    let mut p = Program::empty(meta);
    for phase in Phase::ALL {
        *p.phase_mut(phase) = random_phase(profile.phase(phase), &meta, dim, rng);
    }
    p
}

fn applies(m: Mutation, code: &[Instruction], spec: &PhaseSpec) -> bool {
    let has_params = || code.iter().any(|i| i.dest.is_some() || i.arg1.is_some());
    match m {
        Mutation::Insert => code.len() < spec.max_ops && !spec.ops.is_empty(),
        Mutation::Remove => code.len() > spec.min_ops && !code.is_empty(),
        Mutation::AlterInstruction | Mutation::RandomizeComponent => {
            !code.is_empty() && !spec.ops.is_empty()
        }
        Mutation::AlterArg | Mutation::AlterParam => has_params(),
        Mutation::RandomizeProgram => !spec.ops.is_empty(),
    }
}

/// Apply `mutation` to one phase it applies to (chosen uniformly), and say what
/// changed: [`Changed::Nothing`], with the program unchanged, when it applies nowhere
/// (e.g. `insert` into full phases).
pub fn mutate(
    program: &mut Program,
    profile: &Profile,
    dim: usize,
    mutation: Mutation,
    rng: &mut Rng,
) -> Changed {
    let meta = program.meta;
    if mutation == Mutation::RandomizeProgram {
        *program = random_program(profile, dim, rng);
        program.meta = meta;
        return Changed::All;
    }
    let mut phases = [Phase::Setup; 3];
    let mut n = 0;
    for p in Phase::ALL {
        if applies(mutation, program.phase(p), profile.phase(p)) {
            phases[n] = p;
            n += 1;
        }
    }
    if n == 0 {
        return Changed::Nothing;
    }
    let phase = phases[rng.index(n)];
    let changed = Changed::Phase(phase);
    let spec = profile.phase(phase);
    let code = program.phase_mut(phase);
    match mutation {
        Mutation::Insert => {
            let Some(ins) = random_instruction(spec, &meta, dim, rng) else {
                return Changed::Nothing;
            };
            let at = rng.index(code.len() + 1);
            code.insert(at, ins);
        }
        Mutation::Remove => {
            let at = rng.index(code.len());
            code.remove(at);
        }
        Mutation::AlterInstruction => {
            let at = rng.index(code.len());
            let Some(ins) = random_instruction(spec, &meta, dim, rng) else {
                return Changed::Nothing;
            };
            code[at] = ins;
        }
        Mutation::AlterArg | Mutation::AlterParam => {
            // Any instruction with a parameter (only a NOOP has none).
            let with = |i: &Instruction| i.dest.is_some() || i.arg1.is_some();
            let count = code.iter().filter(|i| with(i)).count();
            let at = rng.index(count);
            let ins = code
                .iter_mut()
                .filter(|i| with(i))
                .nth(at)
                .expect("counted above");
            let altered = alter_one(ins, &meta, dim, mutation == Mutation::AlterParam, rng);
            return if altered { changed } else { Changed::Nothing };
        }
        Mutation::RandomizeComponent => {
            let size = code.len();
            refill_random(code, spec, &meta, dim, size, rng);
        }
        Mutation::RandomizeProgram => unreachable!("handled above"),
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_typed(p: &Program, profile: &Profile) -> bool {
        Phase::ALL.into_iter().all(|ph| {
            let spec = profile.phase(ph);
            let code = p.phase(ph);
            code.len() <= spec.max_ops
                && code.iter().all(|i| {
                    let sig = Signature {
                        a: i.arg1.map(|a| a.kind),
                        b: i.arg2.map(|a| a.kind),
                        out: i.dest.map(|a| a.kind).unwrap_or(Kind::Scalar),
                    };
                    let regs_ok = [i.arg1, i.arg2, i.dest]
                        .into_iter()
                        .flatten()
                        .all(|a| (a.index as usize) < p.meta.count(a.kind));
                    regs_ok
                        && spec
                            .ops
                            .iter()
                            .any(|e| e.op == i.op && e.allowed().contains(&sig))
                })
        })
    }

    #[test]
    fn random_programs_respect_the_profile() {
        for name in Profile::NAMES {
            let profile = Profile::builtin(name).unwrap();
            let mut rng = Rng::new(3);
            for _ in 0..20 {
                let p = random_program(&profile, 4, &mut rng);
                assert!(well_typed(&p, &profile), "{name}: {p:?}");
                assert_eq!(p.predict.len(), profile.predict.init_size());
            }
        }
    }

    #[test]
    fn mutations_keep_programs_well_typed_and_within_limits() {
        let all = [
            Mutation::Insert,
            Mutation::Remove,
            Mutation::AlterInstruction,
            Mutation::AlterArg,
            Mutation::AlterParam,
            Mutation::RandomizeComponent,
            Mutation::RandomizeProgram,
        ];
        for name in ["az_demo", "az_classify", "cifar", "scalar_linear"] {
            let profile = Profile::builtin(name).unwrap();
            let mut rng = Rng::new(11);
            let mut p = Program::empty(profile.meta());
            for k in 0..2000 {
                let m = all[k % all.len()];
                let mut q = p.clone();
                if mutate(&mut q, &profile, 4, m, &mut rng) != Changed::Nothing {
                    assert!(well_typed(&q, &profile), "{name} {m:?}");
                    p = q;
                } else {
                    assert_eq!(q, p, "a mutation that does not apply changes nothing");
                }
            }
        }
    }

    /// New constants follow the phase's draw: U(−1, 1) by default (AutoML-Zero's), and
    /// under `LogUniform` each decade from 10⁻⁴ to 1 about equally often, both signs.
    #[test]
    fn new_constants_follow_the_phases_draw() {
        let constants = |name: &str| {
            let profile = Profile::builtin(name).unwrap();
            let mut rng = Rng::new(29);
            let mut out = Vec::new();
            while out.len() < 20_000 {
                let ins = random_instruction(&profile.setup, &profile.meta(), 4, &mut rng)
                    .expect("setup allows CONST");
                if ins.op == Op::Const {
                    out.push(ins.const1);
                }
            }
            out
        };
        let share = |c: &[f32], f: &dyn Fn(f32) -> bool| {
            c.iter().filter(|&&v| f(v)).count() as f64 / c.len() as f64
        };
        let uniform = constants("az_demo");
        assert!(uniform.iter().all(|v| (-1.0..1.0).contains(v)));
        assert!((share(&uniform, &|v| v.abs() < 0.01) - 0.01).abs() < 0.004);
        let log = constants("az_classify");
        assert!(log.iter().all(|v| (1e-4..=1.0).contains(&v.abs())));
        for decade in 0..4 {
            let (lo, hi) = (10f32.powi(-decade - 1), 10f32.powi(-decade));
            let s = share(&log, &|v| (lo..hi).contains(&v.abs()));
            assert!((s - 0.25).abs() < 0.02, "decade {decade}: {s}");
        }
        assert!((share(&log, &|v| v > 0.0) - 0.5).abs() < 0.02);
    }

    /// Random code never writes `v0` (input) or `s1` (label) — neither in new
    /// instructions nor when alter_arg re-draws a destination — yet it still reads them.
    #[test]
    fn random_code_never_writes_the_input_or_the_label() {
        let protected = |a: Option<Addr>| a == Some(Addr::INPUT) || a == Some(Addr::LABEL);
        let mut reads_them = false;
        for name in ["az_demo", "cifar", "scalar_linear", "full"] {
            let profile = Profile::builtin(name).unwrap();
            let mut rng = Rng::new(17);
            let mut p = random_program(&profile, 4, &mut rng);
            for k in 0..3000 {
                let m = [
                    Mutation::Insert,
                    Mutation::AlterInstruction,
                    Mutation::AlterArg,
                ][k % 3];
                mutate(&mut p, &profile, 4, m, &mut rng);
                for i in Phase::ALL.iter().flat_map(|&ph| p.phase(ph)) {
                    assert!(!protected(i.dest), "{name}: {i:?}");
                    reads_them |= protected(i.arg1) || protected(i.arg2);
                }
            }
        }
        assert!(reads_them);
    }

    #[test]
    fn mutations_are_pure_given_the_rng() {
        let profile = Profile::builtin("cifar").unwrap();
        let base = random_program(&profile, 16, &mut Rng::new(1));
        for m in [
            Mutation::AlterInstruction,
            Mutation::AlterParam,
            Mutation::Insert,
        ] {
            let mut a = base.clone();
            let mut b = base.clone();
            mutate(&mut a, &profile, 16, m, &mut Rng::new(99));
            mutate(&mut b, &profile, 16, m, &mut Rng::new(99));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn specific_rules() {
        let profile = Profile::builtin("scalar_linear").unwrap();
        let mut rng = Rng::new(5);
        // Remove/alter on an empty program: nothing applies.
        let mut p = Program::empty(profile.meta());
        assert_eq!(
            mutate(&mut p, &profile, 4, Mutation::Remove, &mut rng),
            Changed::Nothing
        );
        assert_eq!(
            mutate(&mut p, &profile, 4, Mutation::AlterParam, &mut rng),
            Changed::Nothing
        );
        assert_ne!(
            mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng),
            Changed::Nothing
        );
        assert_eq!(p.len(), 1);
        // Insert respects max size: predict max 2.
        for _ in 0..100 {
            mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng);
        }
        assert_eq!((p.setup.len(), p.predict.len(), p.learn.len()), (10, 2, 8));
        assert_eq!(
            mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng),
            Changed::Nothing
        );
        // Fixed-size profile: remove never applies.
        let demo = Profile::builtin("az_demo").unwrap();
        let mut q = random_program(&demo, 4, &mut rng);
        assert_eq!(
            mutate(&mut q, &demo, 4, Mutation::Remove, &mut rng),
            Changed::Nothing
        );
        // AlterParam also applies to instructions without constants.
        let mut d = Program::empty(profile.meta());
        d.learn.push(Instruction::binary(
            Op::Dot,
            Addr::v(0),
            Addr::v(1),
            Addr::s(2),
        ));
        assert_ne!(
            mutate(&mut d, &profile, 4, Mutation::AlterParam, &mut rng),
            Changed::Nothing
        );
        assert_eq!(d.learn[0].op, Op::Dot);
        assert_eq!(d.learn[0].const1, 0.0);
        // RandomizeComponent keeps the phase's size and does not fill an empty phase.
        let mut r = Program::empty(profile.meta());
        r.learn = random_code(&profile.learn, &r.meta, 4, 3, &mut rng);
        for _ in 0..20 {
            assert_ne!(
                mutate(&mut r, &profile, 4, Mutation::RandomizeComponent, &mut rng),
                Changed::Nothing
            );
            assert_eq!((r.setup.len(), r.predict.len(), r.learn.len()), (0, 0, 3));
        }
    }

    /// AutoML-Zero's parameter mutation on a CONST: the output register or the data,
    /// half each; the data has its sign flipped one time in ten, otherwise its
    /// magnitude is multiplied by exp(N(0, 1)) (so a constant keeps its sign and
    /// moves by a factor whose log is standard normal).
    #[test]
    fn alter_param_flips_or_log_scales_constants() {
        let profile = Profile::builtin("scalar_linear").unwrap();
        let mut rng = Rng::new(8);
        let base = Instruction::constant(Op::Const, Addr::s(2), 0.5, 0.0);
        let (mut dest, mut moved, mut flips, mut scaled) = (0, 0, 0, Vec::new());
        let n = 20_000;
        for _ in 0..n {
            let mut p = Program::empty(profile.meta());
            p.setup.push(base);
            assert_ne!(
                mutate(&mut p, &profile, 4, Mutation::AlterParam, &mut rng),
                Changed::Nothing
            );
            let ins = p.setup[0];
            if ins.const1 == base.const1 {
                assert_ne!(ins.dest, Some(Addr::LABEL));
                dest += 1;
                moved += (ins.dest != base.dest) as usize;
            } else if ins.const1 == -base.const1 {
                flips += 1;
            } else {
                assert_eq!(ins.dest, base.dest);
                assert!(ins.const1 > 0.0, "log-scale keeps the sign");
                scaled.push(((ins.const1 / base.const1) as f64).ln());
            }
        }
        let frac = |k: usize, of: usize| k as f64 / of as f64;
        assert!((frac(dest, n) - 0.5).abs() < 0.02, "{dest}");
        // Re-drawn among s0, s2, s3 (never the label), so it stays put a third of the time.
        assert!(
            (frac(moved, dest) - 2.0 / 3.0).abs() < 0.03,
            "{moved} of {dest}"
        );
        let data = flips + scaled.len();
        assert!((frac(flips, data) - 0.1).abs() < 0.015, "{flips} of {data}");
        let mean = scaled.iter().sum::<f64>() / scaled.len() as f64;
        let var = scaled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / scaled.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.08,
            "{mean} {var}"
        );
    }

    /// On a two-input op, alter_param re-draws in1, in2 or out (a third each); on
    /// GAUSSIAN it never makes the standard deviation negative; on UNIFORM the bounds
    /// stay ordered; on CONST_VEC the index stays an index.
    #[test]
    fn alter_param_covers_every_parameter_kind() {
        let profile = Profile::builtin("full").unwrap();
        let meta = profile.meta();
        let mut rng = Rng::new(21);
        let mut changed = [0usize; 3];
        let base = Instruction::binary(Op::Add, Addr::s(4), Addr::s(5), Addr::s(6));
        for _ in 0..3000 {
            let mut p = Program::empty(meta);
            p.predict.push(base);
            mutate(&mut p, &profile, 8, Mutation::AlterParam, &mut rng);
            let i = p.predict[0];
            changed[0] += (i.arg1 != base.arg1) as usize;
            changed[1] += (i.arg2 != base.arg2) as usize;
            changed[2] += (i.dest != base.dest) as usize;
            assert_eq!(i.op, Op::Add);
        }
        for c in changed {
            assert!((900..1100).contains(&c), "{changed:?}");
        }
        let mut p = Program::empty(meta);
        p.setup = vec![
            Instruction::constant(Op::Gaussian, Addr::v(1), 0.2, 0.7),
            Instruction::constant(Op::Uniform, Addr::m(1), -0.5, 0.5),
            Instruction::constant(Op::ConstVec, Addr::v(2), 3.0, 0.25),
        ];
        for _ in 0..3000 {
            mutate(&mut p, &profile, 8, Mutation::AlterParam, &mut rng);
            let [g, u, c] = [p.setup[0], p.setup[1], p.setup[2]];
            assert!(g.const2 >= 0.0, "{g:?}");
            assert!(u.const1 <= u.const2, "{u:?}");
            assert!(
                c.const1.fract() == 0.0 && (0.0..8.0).contains(&c.const1),
                "{c:?}"
            );
        }
    }
}
