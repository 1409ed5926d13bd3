//! Programs (three straight-line instruction lists over typed registers) and profiles
//! (register counts, size limits and allowed ops per phase, as data) — engine.md §1.

use super::ops::{Kind, Op, OpParseError, Signature};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A register: kind and index (`s3`, `v0`, `m1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Addr {
    pub kind: Kind,
    pub index: u16,
}

impl Addr {
    pub const fn new(kind: Kind, index: u16) -> Self {
        Addr { kind, index }
    }
    pub const fn s(index: u16) -> Self {
        Addr::new(Kind::Scalar, index)
    }
    pub const fn v(index: u16) -> Self {
        Addr::new(Kind::Vector, index)
    }
    pub const fn m(index: u16) -> Self {
        Addr::new(Kind::Matrix, index)
    }

    /// `v0`: the input features, loaded before every `predict`.
    pub const INPUT: Addr = Addr::v(0);
    /// `s0`: the prediction, read after `predict`.
    pub const PREDICTION: Addr = Addr::s(0);
    /// `s1`: the label, written just before `learn` and reset after it.
    pub const LABEL: Addr = Addr::s(1);
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.letter(), self.index)
    }
}

/// One instruction `(op, arg1, arg2, dest, const1, const2)`; unused slots are `None` / 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instruction {
    pub op: Op,
    pub arg1: Option<Addr>,
    pub arg2: Option<Addr>,
    pub dest: Option<Addr>,
    pub const1: f32,
    pub const2: f32,
}

impl Instruction {
    pub const NOOP: Instruction = Instruction {
        op: Op::Noop,
        arg1: None,
        arg2: None,
        dest: None,
        const1: 0.0,
        const2: 0.0,
    };

    /// `dest = op(a, b)` for a two-operand op.
    pub fn binary(op: Op, a: Addr, b: Addr, dest: Addr) -> Self {
        Instruction {
            op,
            arg1: Some(a),
            arg2: Some(b),
            dest: Some(dest),
            ..Self::NOOP
        }
    }

    /// `dest = op(a)` for a one-operand op.
    pub fn unary(op: Op, a: Addr, dest: Addr) -> Self {
        Instruction {
            op,
            arg1: Some(a),
            dest: Some(dest),
            ..Self::NOOP
        }
    }

    /// The operand and result kinds this instruction uses its op with.
    pub fn signature(&self) -> Signature {
        Signature {
            a: self.arg1.map(|a| a.kind),
            b: self.arg2.map(|a| a.kind),
            out: self.dest.map_or(Kind::Scalar, |a| a.kind),
        }
    }

    /// `dest = op(const1, const2)` for CONST, CONST_VEC, GAUSSIAN, UNIFORM.
    pub fn constant(op: Op, dest: Addr, const1: f32, const2: f32) -> Self {
        Instruction {
            op,
            dest: Some(dest),
            const1,
            const2,
            ..Self::NOOP
        }
    }
}

/// The three component functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Setup,
    Predict,
    Learn,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Setup, Phase::Predict, Phase::Learn];
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Predict => "predict",
            Phase::Learn => "learn",
        }
    }
}

/// What a mutation changed in a program: what its compilation must redo
/// ([`super::interp::Compiler::compile_child`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Nothing: the program is its parent's copy.
    Nothing,
    /// The code of one phase.
    Phase(Phase),
    /// Anything (a new random program).
    All,
}

/// Register counts, vector size and per-phase size limits a program was written for
/// (the DSL's `# meta:` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProgramMeta {
    pub scalar_count: usize,
    pub vector_count: usize,
    pub matrix_count: usize,
    /// `D`; `None` means the task's `input_dim`.
    pub vector_dim: Option<usize>,
    pub setup_max_ops: usize,
    pub predict_max_ops: usize,
    pub learn_max_ops: usize,
}

impl ProgramMeta {
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Scalar => self.scalar_count,
            Kind::Vector => self.vector_count,
            Kind::Matrix => self.matrix_count,
        }
    }
    pub fn max_ops(&self, phase: Phase) -> usize {
        match phase {
            Phase::Setup => self.setup_max_ops,
            Phase::Predict => self.predict_max_ops,
            Phase::Learn => self.learn_max_ops,
        }
    }
    /// `D` for a task with `input_dim` features.
    pub fn dim_for(&self, input_dim: usize) -> usize {
        self.vector_dim.unwrap_or(input_dim)
    }
}

/// A program: `setup`, `predict`, `learn` over the registers described by `meta`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub meta: ProgramMeta,
    pub setup: Vec<Instruction>,
    pub predict: Vec<Instruction>,
    pub learn: Vec<Instruction>,
}

impl Clone for Program {
    fn clone(&self) -> Self {
        Program {
            meta: self.meta,
            setup: self.setup.clone(),
            predict: self.predict.clone(),
            learn: self.learn.clone(),
        }
    }

    /// Reuses this program's buffers: the search copies a parent into the evicted
    /// member's program for every child.
    fn clone_from(&mut self, source: &Self) {
        self.meta = source.meta;
        self.setup.clone_from(&source.setup);
        self.predict.clone_from(&source.predict);
        self.learn.clone_from(&source.learn);
    }
}

impl Program {
    /// A program with three empty phases.
    pub fn empty(meta: ProgramMeta) -> Self {
        Program {
            meta,
            setup: Vec::new(),
            predict: Vec::new(),
            learn: Vec::new(),
        }
    }
    pub fn phase(&self, phase: Phase) -> &Vec<Instruction> {
        match phase {
            Phase::Setup => &self.setup,
            Phase::Predict => &self.predict,
            Phase::Learn => &self.learn,
        }
    }
    pub fn phase_mut(&mut self, phase: Phase) -> &mut Vec<Instruction> {
        match phase {
            Phase::Setup => &mut self.setup,
            Phase::Predict => &mut self.predict,
            Phase::Learn => &mut self.learn,
        }
    }
    pub fn len(&self) -> usize {
        self.setup.len() + self.predict.len() + self.learn.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One allowed op of a phase, optionally restricted to some of its natural signatures.
/// Written as text in configurations: `MUL` (all signatures) or `MUL[s,v->v]` /
/// `ADD[s,s->s|v,v->v]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OpEntry {
    pub op: Op,
    /// Empty means every natural signature.
    pub signatures: Vec<Signature>,
}

impl OpEntry {
    /// The signatures this entry allows.
    pub fn allowed(&self) -> &[Signature] {
        if self.signatures.is_empty() {
            self.op.natural_signatures()
        } else {
            &self.signatures
        }
    }
}

impl TryFrom<String> for OpEntry {
    type Error = OpParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<OpEntry> for String {
    fn from(e: OpEntry) -> String {
        e.to_string()
    }
}

impl std::str::FromStr for OpEntry {
    type Err = OpParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, sigs) = match s.split_once('[') {
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix(']')
                    .ok_or_else(|| OpParseError::BadSignature(s.to_string()))?;
                (name, Some(body))
            }
            None => (s, None),
        };
        let op: Op = name.parse()?;
        let mut signatures = Vec::new();
        for sig in sigs.into_iter().flat_map(|b| b.split('|')) {
            let parsed: Signature = sig.parse()?;
            if !op.natural_signatures().contains(&parsed) {
                return Err(OpParseError::NotNatural {
                    op,
                    sig: sig.trim().to_string(),
                });
            }
            signatures.push(parsed);
        }
        if op == Op::Noop {
            return Err(OpParseError::UnknownOp(s.to_string()));
        }
        Ok(OpEntry { op, signatures })
    }
}

impl fmt::Display for OpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.name())?;
        if !self.signatures.is_empty() {
            let sigs: Vec<String> = self.signatures.iter().map(|s| s.to_string()).collect();
            write!(f, "[{}]", sigs.join("|"))?;
        }
        Ok(())
    }
}

/// How a phase's new constants are drawn (random instructions, alter_instruction,
/// randomize_component; alter_param then refines them on a log scale either way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstantDraw {
    /// U(−1, 1), as AutoML-Zero draws every new constant.
    #[default]
    Uniform,
    /// A random sign times 10^U(−4, 0): each decade from 10⁻⁴ to 1 equally likely, so a
    /// learning rate of 0.003 is drawn as often as a weight of 0.5 (U(−1, 1) puts one
    /// draw in 300 below 0.003).
    LogUniform,
}

/// Size limits and allowed ops of one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSpec {
    #[serde(default)]
    pub min_ops: usize,
    pub max_ops: usize,
    /// Size of a freshly randomised phase; defaults to `max_ops`.
    #[serde(default)]
    pub init_ops: Option<usize>,
    pub ops: Vec<OpEntry>,
    #[serde(default)]
    pub constants: ConstantDraw,
}

impl PhaseSpec {
    pub fn init_size(&self) -> usize {
        self.init_ops
            .unwrap_or(self.max_ops)
            .clamp(self.min_ops, self.max_ops)
    }
}

/// A search space: register counts, `D`, and per-phase limits and ops (engine.md §1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub scalar_count: usize,
    pub vector_count: usize,
    pub matrix_count: usize,
    #[serde(default)]
    pub vector_dim: Option<usize>,
    pub setup: PhaseSpec,
    pub predict: PhaseSpec,
    pub learn: PhaseSpec,
}

fn entries(list: &str) -> Vec<OpEntry> {
    list.split_whitespace()
        .map(|e| e.parse().expect("built-in profile entries are valid"))
        .collect()
}

fn phase(min: usize, max: usize, ops: &str) -> PhaseSpec {
    PhaseSpec {
        min_ops: min,
        max_ops: max,
        init_ops: None,
        ops: entries(ops),
        constants: ConstantDraw::Uniform,
    }
}

impl Profile {
    pub const NAMES: [&'static str; 7] = [
        "cifar",
        "scalar_linear",
        "full",
        "az_demo",
        "az_classify",
        "az_bilinear",
        "az_baseline",
    ];

    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        let p = |s, v, m, setup, predict, learn| Profile {
            name: name.to_string(),
            scalar_count: s,
            vector_count: v,
            matrix_count: m,
            vector_dim: None,
            setup,
            predict,
            learn,
        };
        let all: String = Op::ALL[1..]
            .iter()
            .map(|o| o.name())
            .collect::<Vec<_>>()
            .join(" ");
        Some(match name {
            "cifar" => p(
                5,
                9,
                2,
                phase(0, 7, "CONST GAUSSIAN UNIFORM"),
                phase(0, 11, "ADD SUB MUL ABS MATMUL DOT NORM MEAN STD HEAVISIDE MAX"),
                phase(0, 23, "ADD SUB MUL HEAVISIDE OUTER"),
            ),
            "scalar_linear" => {
                let ops = "CONST ADD SUB MUL DOT";
                p(4, 3, 1, phase(0, 10, ops), phase(0, 2, ops), phase(0, 8, ops))
            }
            "full" => p(
                20,
                10,
                5,
                phase(0, 64, &all),
                phase(0, 64, &all),
                phase(0, 64, &all),
            ),
            "az_demo" => {
                let ops = "CONST[->s] DOT[v,v->s] SUB[s,s->s] MUL[s,s->s] MUL[s,v->v] ADD[v,v->v]";
                p(4, 3, 1, phase(10, 10, ops), phase(2, 2, ops), phase(8, 8, ops))
            }
            // The demo space made a classifier's: an ADD for a bias term and a fifth
            // scalar to hold it, fixed phase sizes 7/3/8 (within the image tasks'
            // 7/11/23 limits). Linear learners with a bias are the logistic-regression
            // level on the 16-feature image tasks; without one they stay near chance,
            // since labels are 0/1 and accuracy thresholds predictions at 0.5.
            "az_classify" => {
                let ops = "CONST[->s] DOT[v,v->s] ADD[s,s->s] SUB[s,s->s] MUL[s,s->s] MUL[s,v->v] ADD[v,v->v]";
                let phase = |n| PhaseSpec {
                    constants: ConstantDraw::LogUniform,
                    ..phase(n, n, ops)
                };
                p(5, 3, 1, phase(7), phase(3), phase(8))
            }
            // az_classify's space with matrices: the linear-algebra ops a learner of
            // second-order (bilinear) features is written with — a matrix times a vector,
            // an outer product, a matrix scaled and a matrix sum — beside every op of
            // az_classify, so each of its programs is one of these (`adopt`). Two
            // 16×16 matrices, seven scalars, five vectors; fixed phases 7/6/12 (within
            // the image tasks' 7/11/23) so every child costs about the same.
            "az_bilinear" => {
                let ops = "CONST[->s] DOT[v,v->s] ADD[s,s->s] SUB[s,s->s] MUL[s,s->s] MUL[s,v->v] ADD[v,v->v] \
                           MATMUL[m,v->v] OUTER[v,v->m] MUL[s,m->m] ADD[m,m->m]";
                let phase = |n| PhaseSpec {
                    constants: ConstantDraw::LogUniform,
                    ..phase(n, n, ops)
                };
                p(7, 5, 2, phase(7), phase(6), phase(12))
            }
            "az_baseline" => p(
                5,
                9,
                2,
                phase(1, 7, "CONST[->s] GAUSSIAN UNIFORM"),
                phase(
                    1,
                    11,
                    "ADD[s,s->s] MATMUL[m,v->v] MAX[v,v->v] DOT ADD[v,v->v]",
                ),
                phase(
                    1,
                    23,
                    "ADD[s,s->s] SUB[s,s->s] MUL[s,s->s] MUL[s,v->v] ADD[v,v->v] HEAVISIDE[v->v] MUL[v,v->v] OUTER ADD[m,m->m]",
                ),
            ),
            _ => return None,
        })
    }

    pub fn phase(&self, phase: Phase) -> &PhaseSpec {
        match phase {
            Phase::Setup => &self.setup,
            Phase::Predict => &self.predict,
            Phase::Learn => &self.learn,
        }
    }

    /// Whether `phase` of this profile may hold `ins` (a NOOP always may).
    pub fn allows(&self, phase: Phase, ins: &Instruction) -> bool {
        let meta = self.meta();
        let regs_ok = [ins.arg1, ins.arg2, ins.dest]
            .into_iter()
            .flatten()
            .all(|a| (a.index as usize) < meta.count(a.kind));
        let sig = ins.signature();
        ins.op == Op::Noop
            || regs_ok
                && self
                    .phase(phase)
                    .ops
                    .iter()
                    .any(|e| e.op == ins.op && e.allowed().contains(&sig))
    }

    /// `program` as a program of this profile, when every instruction is one this
    /// profile allows in its phase and no phase is too long: the same instructions,
    /// then NOOPs up to each phase's first size. A NOOP does nothing, so the adopted
    /// program computes what `program` did and scores the same; the search then
    /// rewrites the NOOPs. This is how a search moves on from a program of a smaller
    /// space (its own earlier best, or the relay's SOTA) into a larger one.
    pub fn adopt(&self, program: &Program) -> Option<Program> {
        let meta = self.meta();
        if program.meta.vector_dim != meta.vector_dim {
            return None;
        }
        let mut adopted = Program::empty(meta);
        for phase in Phase::ALL {
            let code = program.phase(phase);
            let spec = self.phase(phase);
            if code.len() > spec.max_ops || !code.iter().all(|i| self.allows(phase, i)) {
                return None;
            }
            let size = spec.init_size().max(code.len());
            let out = adopted.phase_mut(phase);
            out.extend_from_slice(code);
            out.resize(size, Instruction::NOOP);
        }
        Some(adopted)
    }

    /// The `meta` of programs searched in this profile.
    pub fn meta(&self) -> ProgramMeta {
        ProgramMeta {
            scalar_count: self.scalar_count,
            vector_count: self.vector_count,
            matrix_count: self.matrix_count,
            vector_dim: self.vector_dim,
            setup_max_ops: self.setup.max_ops,
            predict_max_ops: self.predict.max_ops,
            learn_max_ops: self.learn.max_ops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_exist_and_roundtrip_through_json() {
        for name in Profile::NAMES {
            let p = Profile::builtin(name).unwrap();
            let json = serde_json::to_string(&p).unwrap();
            let back: Profile = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p);
        }
        assert!(Profile::builtin("nope").is_none());
        let demo = Profile::builtin("az_demo").unwrap();
        assert_eq!(demo.learn.min_ops, 8);
        assert_eq!(demo.setup.ops[4].to_string(), "MUL[s,v->v]");
        assert_eq!(demo.setup.ops[4].allowed().len(), 1);
    }

    #[test]
    fn op_entries_are_checked() {
        assert!("MUL[s,v->v|s,s->s]".parse::<OpEntry>().is_ok());
        assert!("ADD[s,v->v]".parse::<OpEntry>().is_err(), "not natural");
        assert!("FOO".parse::<OpEntry>().is_err());
        assert!("MUL[s,v->v".parse::<OpEntry>().is_err());
        let json = r#"{"min_ops":0,"max_ops":3,"ops":["DOT","MUL[s,v->v]"]}"#;
        let spec: PhaseSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.ops.len(), 2);
        assert_eq!(spec.init_size(), 3);
        assert_eq!(
            spec.constants,
            ConstantDraw::Uniform,
            "AutoML-Zero's by default"
        );
        let log = r#"{"max_ops":3,"ops":["CONST"],"constants":"log_uniform"}"#;
        let spec: PhaseSpec = serde_json::from_str(log).unwrap();
        assert_eq!(spec.constants, ConstantDraw::LogUniform);
        let bad = r#"{"max_ops":3,"ops":["CONST"],"constants":"gaussian"}"#;
        assert!(serde_json::from_str::<PhaseSpec>(bad).is_err());
    }
}
