//! Random instructions and mutations (engine.md §5). Every function here is pure given
//! its RNG: the same program, profile and RNG state give the same result.

use super::ops::{Kind, Op, Signature};
use super::program::{Addr, Instruction, OpEntry, Phase, PhaseSpec, Profile, Program, ProgramMeta};
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
    /// Re-draw one constant uniformly in [−2, 2).
    AlterParam,
    /// Refill one phase with random instructions.
    RandomizeComponent,
    /// Refill every phase.
    RandomizeProgram,
}

impl Mutation {
    /// The reference's default list.
    pub const DEFAULTS: [Mutation; 4] = [
        Mutation::Insert,
        Mutation::Remove,
        Mutation::AlterInstruction,
        Mutation::AlterParam,
    ];
}

fn draw_const(rng: &mut Rng) -> f32 {
    rng.uniform_f32(-2.0, 2.0)
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
        Op::Const => ins.const1 = draw_const(rng),
        Op::ConstVec => {
            ins.const1 = rng.index(dim.max(1)) as f32;
            ins.const2 = draw_const(rng);
        }
        Op::Gaussian => {
            ins.const1 = rng.uniform_f32(-1.0, 1.0);
            ins.const2 = rng.uniform_f32(0.0, 1.0);
        }
        Op::Uniform => {
            ins.const1 = rng.uniform_f32(-1.0, 1.0);
            ins.const2 = ins.const1 + rng.uniform_f32(0.0, 2.0);
        }
        _ => {}
    }
    Some(ins)
}

/// A phase of `spec.init_size()` random instructions.
pub fn random_phase(
    spec: &PhaseSpec,
    meta: &ProgramMeta,
    dim: usize,
    rng: &mut Rng,
) -> Vec<Instruction> {
    (0..spec.init_size())
        .map_while(|_| random_instruction(spec, meta, dim, rng))
        .collect()
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
    match m {
        Mutation::Insert => code.len() < spec.max_ops && !spec.ops.is_empty(),
        Mutation::Remove => code.len() > spec.min_ops && !code.is_empty(),
        Mutation::AlterInstruction => !code.is_empty() && !spec.ops.is_empty(),
        Mutation::AlterArg => code.iter().any(|i| i.dest.is_some()),
        Mutation::AlterParam => code.iter().any(|i| i.op.const_count() > 0),
        Mutation::RandomizeComponent | Mutation::RandomizeProgram => !spec.ops.is_empty(),
    }
}

/// Apply `mutation` to one phase it applies to (chosen uniformly). Returns false, with
/// the program unchanged, when it applies nowhere (e.g. `insert` into full phases).
pub fn mutate(
    program: &mut Program,
    profile: &Profile,
    dim: usize,
    mutation: Mutation,
    rng: &mut Rng,
) -> bool {
    let meta = program.meta;
    if mutation == Mutation::RandomizeProgram {
        *program = random_program(profile, dim, rng);
        program.meta = meta;
        return true;
    }
    let phases: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|&p| applies(mutation, program.phase(p), profile.phase(p)))
        .collect();
    if phases.is_empty() {
        return false;
    }
    let phase = phases[rng.index(phases.len())];
    let spec = profile.phase(phase);
    let code = program.phase_mut(phase);
    match mutation {
        Mutation::Insert => {
            let Some(ins) = random_instruction(spec, &meta, dim, rng) else {
                return false;
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
                return false;
            };
            code[at] = ins;
        }
        Mutation::AlterArg => {
            let candidates: Vec<usize> = (0..code.len())
                .filter(|&i| code[i].dest.is_some())
                .collect();
            let ins = &mut code[candidates[rng.index(candidates.len())]];
            let mut slots: Vec<(bool, &mut Option<Addr>)> = [
                (false, &mut ins.arg1),
                (false, &mut ins.arg2),
                (true, &mut ins.dest),
            ]
            .into_iter()
            .filter(|(_, s)| s.is_some())
            .collect();
            let n = slots.len();
            let (is_dest, slot) = &mut slots[rng.index(n)];
            let kind = slot.map(|a| a.kind).unwrap_or(Kind::Scalar);
            if meta.count(kind) == 0 {
                return false;
            }
            **slot = Some(if *is_dest {
                random_dest(kind, &meta, rng)
            } else {
                random_reg(kind, &meta, rng)
            });
        }
        Mutation::AlterParam => {
            let candidates: Vec<usize> = (0..code.len())
                .filter(|&i| code[i].op.const_count() > 0)
                .collect();
            let ins = &mut code[candidates[rng.index(candidates.len())]];
            match ins.op {
                Op::Const => ins.const1 = draw_const(rng),
                // const1 of CONST_VEC is an element index, not a parameter.
                Op::ConstVec => ins.const2 = draw_const(rng),
                _ => {
                    if rng.index(2) == 0 {
                        ins.const1 = draw_const(rng);
                    } else {
                        ins.const2 = draw_const(rng);
                    }
                }
            }
        }
        Mutation::RandomizeComponent => *code = random_phase(spec, &meta, dim, rng),
        Mutation::RandomizeProgram => unreachable!("handled above"),
    }
    true
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
        for name in ["az_demo", "cifar", "scalar_linear"] {
            let profile = Profile::builtin(name).unwrap();
            let mut rng = Rng::new(11);
            let mut p = Program::empty(profile.meta());
            for k in 0..2000 {
                let m = all[k % all.len()];
                let mut q = p.clone();
                if mutate(&mut q, &profile, 4, m, &mut rng) {
                    assert!(well_typed(&q, &profile), "{name} {m:?}");
                    p = q;
                } else {
                    assert_eq!(q, p, "a mutation that does not apply changes nothing");
                }
            }
        }
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
        assert!(!mutate(&mut p, &profile, 4, Mutation::Remove, &mut rng));
        assert!(!mutate(&mut p, &profile, 4, Mutation::AlterParam, &mut rng));
        assert!(mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng));
        assert_eq!(p.len(), 1);
        // Insert respects max size: predict max 2.
        for _ in 0..100 {
            mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng);
        }
        assert_eq!((p.setup.len(), p.predict.len(), p.learn.len()), (10, 2, 8));
        assert!(!mutate(&mut p, &profile, 4, Mutation::Insert, &mut rng));
        // Fixed-size profile: remove never applies.
        let demo = Profile::builtin("az_demo").unwrap();
        let mut q = random_program(&demo, 4, &mut rng);
        assert!(!mutate(&mut q, &demo, 4, Mutation::Remove, &mut rng));
        // AlterParam changes exactly one constant, into [-2, 2).
        let mut c = Program::empty(profile.meta());
        c.setup
            .push(Instruction::constant(Op::Const, Addr::s(2), 100.0, 0.0));
        assert!(mutate(&mut c, &profile, 4, Mutation::AlterParam, &mut rng));
        assert!((-2.0..2.0).contains(&c.setup[0].const1));
    }
}
