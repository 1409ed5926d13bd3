//! Operations: opcodes (part of the stored format), register kinds and the natural
//! signatures that mutation draws well-typed instructions from (engine.md §1.1).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Register kind. The order is the rank used by result typing and assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Scalar,
    Vector,
    Matrix,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Scalar, Kind::Vector, Kind::Matrix];

    /// 0 for scalars, 1 for vectors, 2 for matrices.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The register-name prefix (`s`, `v`, `m`).
    pub fn letter(self) -> char {
        match self {
            Kind::Scalar => 's',
            Kind::Vector => 'v',
            Kind::Matrix => 'm',
        }
    }

    pub fn from_letter(c: char) -> Option<Kind> {
        match c {
            's' => Some(Kind::Scalar),
            'v' => Some(Kind::Vector),
            'm' => Some(Kind::Matrix),
            _ => None,
        }
    }
}

/// An operation. The discriminants are the opcode numbers of the stored format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Op {
    Noop = 0,
    Const = 1,
    ConstVec = 2,
    Add = 3,
    Sub = 4,
    Mul = 5,
    Div = 6,
    Abs = 7,
    Exp = 8,
    Log = 9,
    Sin = 10,
    Cos = 11,
    Tan = 12,
    Heaviside = 13,
    Gaussian = 14,
    Uniform = 15,
    Dot = 16,
    Matmul = 17,
    Outer = 18,
    Norm = 19,
    Mean = 20,
    Std = 21,
    Copy = 22,
    Min = 23,
    Max = 24,
}

use Kind::{Matrix as M, Scalar as S, Vector as V};

const fn sig0(out: Kind) -> Signature {
    Signature {
        a: None,
        b: None,
        out,
    }
}
const fn sig1(a: Kind, out: Kind) -> Signature {
    Signature {
        a: Some(a),
        b: None,
        out,
    }
}
const fn sig2(a: Kind, b: Kind, out: Kind) -> Signature {
    Signature {
        a: Some(a),
        b: Some(b),
        out,
    }
}

const SIG_BINARY: &[Signature] = &[sig2(S, S, S), sig2(V, V, V), sig2(M, M, M)];
const SIG_MULDIV: &[Signature] = &[
    sig2(S, S, S),
    sig2(V, V, V),
    sig2(M, M, M),
    sig2(S, V, V),
    sig2(S, M, M),
];
const SIG_UNARY: &[Signature] = &[sig1(S, S), sig1(V, V), sig1(M, M)];
const SIG_RANDOM: &[Signature] = &[sig0(S), sig0(V), sig0(M)];
const SIG_REDUCE: &[Signature] = &[sig1(V, S), sig1(M, S)];

impl Op {
    pub const ALL: [Op; 25] = [
        Op::Noop,
        Op::Const,
        Op::ConstVec,
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Abs,
        Op::Exp,
        Op::Log,
        Op::Sin,
        Op::Cos,
        Op::Tan,
        Op::Heaviside,
        Op::Gaussian,
        Op::Uniform,
        Op::Dot,
        Op::Matmul,
        Op::Outer,
        Op::Norm,
        Op::Mean,
        Op::Std,
        Op::Copy,
        Op::Min,
        Op::Max,
    ];

    /// The opcode number.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.get(code as usize).copied()
    }

    /// Upper-case name, as used in profiles (`MUL`, `CONST_VEC`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Noop => "NOOP",
            Op::Const => "CONST",
            Op::ConstVec => "CONST_VEC",
            Op::Add => "ADD",
            Op::Sub => "SUB",
            Op::Mul => "MUL",
            Op::Div => "DIV",
            Op::Abs => "ABS",
            Op::Exp => "EXP",
            Op::Log => "LOG",
            Op::Sin => "SIN",
            Op::Cos => "COS",
            Op::Tan => "TAN",
            Op::Heaviside => "HEAVISIDE",
            Op::Gaussian => "GAUSSIAN",
            Op::Uniform => "UNIFORM",
            Op::Dot => "DOT",
            Op::Matmul => "MATMUL",
            Op::Outer => "OUTER",
            Op::Norm => "NORM",
            Op::Mean => "MEAN",
            Op::Std => "STD",
            Op::Copy => "COPY",
            Op::Min => "MIN",
            Op::Max => "MAX",
        }
    }

    /// Number of register operands (0, 1 or 2).
    pub fn arity(self) -> usize {
        match self {
            Op::Noop | Op::Const | Op::ConstVec | Op::Gaussian | Op::Uniform => 0,
            Op::Abs
            | Op::Exp
            | Op::Log
            | Op::Sin
            | Op::Cos
            | Op::Tan
            | Op::Heaviside
            | Op::Norm
            | Op::Mean
            | Op::Std
            | Op::Copy => 1,
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Min
            | Op::Max
            | Op::Dot
            | Op::Matmul
            | Op::Outer => 2,
        }
    }

    /// Whether the op writes a destination register.
    pub fn has_dest(self) -> bool {
        self != Op::Noop
    }

    /// How many constants the op uses (`const1`, then `const2`).
    pub fn const_count(self) -> usize {
        match self {
            Op::Const => 1,
            Op::ConstVec | Op::Gaussian | Op::Uniform => 2,
            _ => 0,
        }
    }

    /// Whether the op draws from the evaluation RNG (so it is never dropped as dead code).
    pub fn is_random(self) -> bool {
        matches!(self, Op::Gaussian | Op::Uniform)
    }

    /// The signatures mutation may generate for this op (engine.md §1.1).
    pub fn natural_signatures(self) -> &'static [Signature] {
        const DOT: &[Signature] = &[sig2(V, V, S)];
        const MATMUL: &[Signature] = &[sig2(M, V, V), sig2(M, M, M)];
        const OUTER: &[Signature] = &[sig2(V, V, M)];
        const CONST: &[Signature] = &[sig0(S)];
        const CONST_VEC: &[Signature] = &[sig0(V)];
        match self {
            Op::Noop => &[],
            Op::Add | Op::Sub | Op::Min | Op::Max => SIG_BINARY,
            Op::Mul | Op::Div => SIG_MULDIV,
            Op::Abs
            | Op::Exp
            | Op::Log
            | Op::Sin
            | Op::Cos
            | Op::Tan
            | Op::Heaviside
            | Op::Copy => SIG_UNARY,
            Op::Dot => DOT,
            Op::Matmul => MATMUL,
            Op::Outer => OUTER,
            Op::Norm | Op::Mean | Op::Std => SIG_REDUCE,
            Op::Const => CONST,
            Op::ConstVec => CONST_VEC,
            Op::Gaussian | Op::Uniform => SIG_RANDOM,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown op or malformed signature in a profile entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpParseError {
    #[error("unknown op '{0}'")]
    UnknownOp(String),
    #[error("malformed signature '{0}' (expected e.g. 's,v->v' or '->s')")]
    BadSignature(String),
    #[error("signature '{sig}' is not a natural signature of {op}")]
    NotNatural { op: Op, sig: String },
}

impl FromStr for Op {
    type Err = OpParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        Op::ALL
            .into_iter()
            .find(|op| op.name() == upper)
            .ok_or_else(|| OpParseError::UnknownOp(s.to_string()))
    }
}

/// Operand kinds and result kind of one way to use an op (`s,v->v`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    pub a: Option<Kind>,
    pub b: Option<Kind>,
    pub out: Kind,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = [self.a, self.b]
            .into_iter()
            .flatten()
            .map(|k| k.letter().to_string())
            .collect();
        write!(f, "{}->{}", args.join(","), self.out.letter())
    }
}

impl FromStr for Signature {
    type Err = OpParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OpParseError::BadSignature(s.to_string());
        let (args, out) = s.split_once("->").ok_or_else(bad)?;
        let kind = |t: &str| {
            let t = t.trim();
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Kind::from_letter(c).ok_or_else(bad),
                _ => Err(bad()),
            }
        };
        let out = kind(out)?;
        let args: Vec<Kind> = if args.trim().is_empty() {
            Vec::new()
        } else {
            args.split(',').map(kind).collect::<Result<_, _>>()?
        };
        if args.len() > 2 {
            return Err(bad());
        }
        Ok(Signature {
            a: args.first().copied(),
            b: args.get(1).copied(),
            out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_numbers_are_the_format() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.code() as usize, i);
            assert_eq!(Op::from_code(i as u8), Some(*op));
            assert_eq!(op.name().parse::<Op>().unwrap(), *op);
        }
        assert_eq!(Op::Max.code(), 24);
        assert_eq!(Op::Copy.code(), 22);
        assert_eq!(Op::from_code(25), None);
    }

    #[test]
    fn signatures_match_arity_and_parse() {
        for op in Op::ALL {
            for sig in op.natural_signatures() {
                let n = sig.a.is_some() as usize + sig.b.is_some() as usize;
                assert_eq!(n, op.arity(), "{op} {sig}");
                assert_eq!(sig.to_string().parse::<Signature>().unwrap(), *sig);
            }
        }
        assert!("s,v,m->s".parse::<Signature>().is_err());
        assert!("x->s".parse::<Signature>().is_err());
        assert!("s".parse::<Signature>().is_err());
    }
}
