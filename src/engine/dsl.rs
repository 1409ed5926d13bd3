//! The program text format (engine.md §1.3): a strict parser for both dialects the
//! reference writes, and a canonical printer (dialect A) whose output re-parses to an
//! identical program.
//!
//! Dialect A: `# meta: …`, `# setup` / `# predict` / `# learn` sections.
//! Dialect B: `def Setup():` functions with indented bodies, `NoOp()`, `dot(m, v)` for
//! MATMUL, `maximum`/`minimum`, `heaviside(x, 1.0)`.
//!
//! Strictness matters because the relay, validators and pool all run untrusted text
//! through [`parse_program`]: anything not understood is an error naming line and column,
//! never a panic and never a silently skipped line.

use super::ops::{Kind, Op};
use super::program::{Addr, Instruction, Phase, Profile, Program, ProgramMeta};
use std::fmt::Write as _;

/// More instructions than this (all phases together) is an error.
pub const MAX_INSTRUCTIONS: usize = 10_000;
/// Longer texts are rejected before parsing.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Upper bounds for `# meta:` values, so a text cannot make evaluation allocate
/// unbounded register memory.
pub const MAX_SCALARS: usize = 256;
pub const MAX_VECTORS: usize = 64;
pub const MAX_MATRICES: usize = 16;
pub const MAX_VECTOR_DIM: usize = 1024;

/// A parse error at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct DslError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parse program text strictly; values missing from `# meta:` come from the `full`
/// profile (the most permissive register counts).
pub fn parse_program(text: &str) -> Result<Program, DslError> {
    let full = Profile::builtin("full").expect("the full profile is built in");
    parse_program_with(text, &full.meta())
}

/// Parse program text strictly, taking values missing from `# meta:` from `defaults`.
pub fn parse_program_with(text: &str, defaults: &ProgramMeta) -> Result<Program, DslError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(DslError {
            line: 1,
            column: 1,
            message: format!(
                "program text is {} bytes, over the {} byte limit",
                text.len(),
                MAX_TEXT_BYTES
            ),
        });
    }
    let dialect_b = text.lines().any(|l| l.trim_start().starts_with("def "));
    let meta = parse_meta(text, defaults)?;
    let mut program = Program::empty(meta);
    let mut phase: Option<Phase> = None;
    let mut count = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(after) = trimmed.strip_prefix('#') {
            let after = after.trim();
            if !after.starts_with("meta:") {
                if let Some(p) = phase_name(after.trim_end_matches(':').trim()) {
                    phase = Some(p);
                }
            }
            continue;
        }
        if trimmed.ends_with(':') {
            let name = trimmed.trim_end_matches(':').trim();
            let name = name.strip_prefix("def ").unwrap_or(name).trim();
            let name = name.strip_suffix("()").unwrap_or(name).trim();
            match phase_name(name) {
                Some(p) => phase = Some(p),
                None => {
                    return Err(err_at(
                        raw,
                        lineno,
                        raw.len() - raw.trim_start().len(),
                        format!("unknown section '{trimmed}' (expected setup, predict or learn)"),
                    ))
                }
            }
            continue;
        }
        let Some(current) = phase else {
            return Err(err_at(
                raw,
                lineno,
                raw.len() - raw.trim_start().len(),
                "instruction before any setup/predict/learn section".to_string(),
            ));
        };
        count += 1;
        if count > MAX_INSTRUCTIONS {
            return Err(err_at(
                raw,
                lineno,
                0,
                format!("more than {MAX_INSTRUCTIONS} instructions"),
            ));
        }
        let mut cur = Cursor {
            line: raw,
            pos: 0,
            lineno,
            meta: &program.meta,
            dialect_b,
        };
        let instr = cur.instruction()?;
        program.phase_mut(current).push(instr);
    }
    Ok(program)
}

fn phase_name(name: &str) -> Option<Phase> {
    match name.to_ascii_lowercase().as_str() {
        "setup" => Some(Phase::Setup),
        "predict" => Some(Phase::Predict),
        "learn" => Some(Phase::Learn),
        _ => None,
    }
}

fn err_at(line: &str, lineno: usize, byte_pos: usize, message: String) -> DslError {
    let byte_pos = byte_pos.min(line.len());
    let column = line
        .char_indices()
        .take_while(|(i, _)| *i < byte_pos)
        .count()
        + 1;
    DslError {
        line: lineno,
        column,
        message,
    }
}

fn parse_meta(text: &str, defaults: &ProgramMeta) -> Result<ProgramMeta, DslError> {
    let mut meta = *defaults;
    let mut seen = false;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let Some(after) = raw.trim().strip_prefix('#') else {
            continue;
        };
        let Some(pairs) = after.trim().strip_prefix("meta:") else {
            continue;
        };
        let offset_of = |s: &str| s.as_ptr() as usize - raw.as_ptr() as usize;
        if seen {
            return Err(err_at(
                raw,
                lineno,
                offset_of(raw.trim_start()),
                "second '# meta:' line".into(),
            ));
        }
        seen = true;
        for pair in pairs.split_whitespace() {
            let at = offset_of(pair);
            let bad = |m: String| Err(err_at(raw, lineno, at, m));
            let Some((key, value)) = pair.split_once('=') else {
                return bad(format!(
                    "malformed meta entry '{pair}' (expected key=value)"
                ));
            };
            let Ok(n) = value.parse::<usize>() else {
                return bad(format!(
                    "meta value '{value}' of {key} is not a whole number"
                ));
            };
            let (slot, max) = match key {
                "scalar_count" => (&mut meta.scalar_count, MAX_SCALARS),
                "vector_count" => (&mut meta.vector_count, MAX_VECTORS),
                "matrix_count" => (&mut meta.matrix_count, MAX_MATRICES),
                "setup_max_ops" => (&mut meta.setup_max_ops, MAX_INSTRUCTIONS),
                "predict_max_ops" => (&mut meta.predict_max_ops, MAX_INSTRUCTIONS),
                "learn_max_ops" => (&mut meta.learn_max_ops, MAX_INSTRUCTIONS),
                "vector_dim" => {
                    if n == 0 || n > MAX_VECTOR_DIM {
                        return bad(format!("vector_dim must be in 1..={MAX_VECTOR_DIM}"));
                    }
                    meta.vector_dim = Some(n);
                    continue;
                }
                _ => return bad(format!("unknown meta key '{key}'")),
            };
            if n > max {
                return bad(format!("{key}={n} is over the limit {max}"));
            }
            *slot = n;
        }
    }
    Ok(meta)
}

/// The right-hand side of a function call: its arguments.
enum Arg {
    Reg(Addr, usize),
    Num(f32, usize),
}

struct Cursor<'a> {
    line: &'a str,
    pos: usize,
    lineno: usize,
    meta: &'a ProgramMeta,
    dialect_b: bool,
}

impl<'a> Cursor<'a> {
    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, DslError> {
        Err(err_at(self.line, self.lineno, at, message.into()))
    }

    fn rest(&self) -> &str {
        &self.line[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.rest().is_empty() || self.rest().starts_with('#')
    }

    fn expect(&mut self, c: char) -> Result<(), DslError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(self.pos, format!("expected '{c}'"))
        }
    }

    fn ident(&mut self) -> Option<(&'a str, usize)> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            let ok = if i == 0 {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return None;
        }
        self.pos += end;
        let line: &'a str = self.line;
        Some((&line[start..start + end], start))
    }

    /// A register name → address, checked against the meta's counts.
    fn reg_of(&self, name: &str, at: usize) -> Result<Option<Addr>, DslError> {
        let mut chars = name.chars();
        let Some(kind) = chars.next().and_then(Kind::from_letter) else {
            return Ok(None);
        };
        let digits = &name[1..];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let count = self.meta.count(kind);
        let index = match digits.parse::<usize>() {
            Ok(i) if i < count => i,
            _ => {
                let what = match kind {
                    Kind::Scalar => "scalar_count",
                    Kind::Vector => "vector_count",
                    Kind::Matrix => "matrix_count",
                };
                return self.err(at, format!("register {name} out of range ({what}={count})"));
            }
        };
        Ok(Some(Addr::new(kind, index as u16)))
    }

    fn register(&mut self) -> Result<Addr, DslError> {
        self.skip_ws();
        let at = self.pos;
        match self.ident() {
            Some((name, at)) => {
                let name = name.to_string();
                match self.reg_of(&name, at)? {
                    Some(a) => Ok(a),
                    None => self.err(at, format!("expected a register, found '{name}'")),
                }
            }
            None => self.err(at, "expected a register"),
        }
    }

    fn starts_number(&self) -> bool {
        let mut chars = self.rest().chars();
        match chars.next() {
            Some(c) if c.is_ascii_digit() || c == '.' => true,
            Some('+' | '-') => matches!(chars.next(), Some(c) if c.is_ascii_digit() || c == '.'),
            _ => false,
        }
    }

    /// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?` as an `f32`.
    fn number(&mut self) -> Result<f32, DslError> {
        self.skip_ws();
        let start = self.pos;
        let b = self.line.as_bytes();
        let mut i = self.pos;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut digits = i - int_start;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let frac = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            digits += i - frac;
        }
        if digits == 0 {
            return self.err(start, "malformed number");
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            let exp = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == exp {
                return self.err(start, "malformed number (empty exponent)");
            }
        }
        if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
            return self.err(start, "malformed number");
        }
        let text = &self.line[start..i];
        match text.parse::<f32>() {
            Ok(v) if v.is_finite() => {
                self.pos = i;
                Ok(v)
            }
            _ => self.err(start, format!("number '{text}' is out of the f32 range")),
        }
    }

    fn args(&mut self) -> Result<Vec<Arg>, DslError> {
        self.expect('(')?;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            self.skip_ws();
            let at = self.pos;
            if self.starts_number() {
                args.push(Arg::Num(self.number()?, at));
            } else {
                args.push(Arg::Reg(self.register()?, at));
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return self.err(self.pos, "expected ',' or ')'"),
            }
        }
    }

    fn instruction(&mut self) -> Result<Instruction, DslError> {
        self.skip_ws();
        let start = self.pos;
        let Some((name, _)) = self.ident() else {
            return self.err(start, "expected an instruction");
        };
        if name == "noop" || name == "NoOp" {
            self.expect('(')?;
            self.expect(')')?;
            return self.finish(Instruction::NOOP);
        }
        let name = name.to_string();
        let Some(dest) = self.reg_of(&name, start)? else {
            return self.err(start, format!("expected a register, found '{name}'"));
        };
        self.skip_ws();
        if self.peek() == Some('[') {
            self.pos += 1;
            self.skip_ws();
            let at = self.pos;
            let index = self.number()?;
            if index.fract() != 0.0 || index.abs() > 1e9 {
                return self.err(at, "element index must be a whole number");
            }
            self.expect(']')?;
            self.expect('=')?;
            self.skip_ws();
            let value = self.number()?;
            if dest.kind != Kind::Vector {
                return self.err(start, "element assignment needs a vector register");
            }
            return self.finish(Instruction::constant(Op::ConstVec, dest, index, value));
        }
        self.expect('=')?;
        self.skip_ws();
        if self.starts_number() {
            let value = self.number()?;
            return self.finish(Instruction::constant(Op::Const, dest, value, 0.0));
        }
        let at = self.pos;
        let Some((fname, _)) = self.ident() else {
            return self.err(at, "expected a number, register or function");
        };
        let fname = fname.to_string();
        if let Some(a) = self.reg_of(&fname, at)? {
            if self.at_end() {
                return self.finish(Instruction::unary(Op::Copy, a, dest));
            }
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                Some('*') => Op::Mul,
                Some('/') => Op::Div,
                _ => return self.err(self.pos, "expected '+', '-', '*' or '/'"),
            };
            self.pos += 1;
            let b = self.register()?;
            return self.finish(Instruction::binary(op, a, b, dest));
        }
        let args = self.args()?;
        let instr = self.call(&fname, at, &args, dest)?;
        self.finish(instr)
    }

    fn call(
        &self,
        fname: &str,
        at: usize,
        args: &[Arg],
        dest: Addr,
    ) -> Result<Instruction, DslError> {
        let regs = |n: usize, extra_numbers: usize| -> Result<Vec<Addr>, DslError> {
            if args.len() < n || args.len() > n + extra_numbers {
                return self.err(
                    at,
                    format!(
                        "{fname}() takes {n} register argument(s), got {}",
                        args.len()
                    ),
                );
            }
            let mut out = Vec::new();
            for (i, a) in args.iter().enumerate() {
                match (a, i < n) {
                    (Arg::Reg(r, _), true) => out.push(*r),
                    (Arg::Num(..), false) => {}
                    (Arg::Num(_, p), true) => {
                        return self.err(*p, format!("{fname}() expects a register here"))
                    }
                    (Arg::Reg(_, p), false) => {
                        return self.err(*p, format!("{fname}() expects a number here"))
                    }
                }
            }
            Ok(out)
        };
        let unary = |op: Op| -> Result<Instruction, DslError> {
            Ok(Instruction::unary(op, regs(1, 0)?[0], dest))
        };
        let binary = |op: Op| -> Result<Instruction, DslError> {
            let r = regs(2, 0)?;
            Ok(Instruction::binary(op, r[0], r[1], dest))
        };
        match fname {
            "gaussian" | "uniform" => {
                regs(0, 2)?;
                let num = |i: usize, default: f32| match args.get(i) {
                    Some(Arg::Num(v, _)) => *v,
                    _ => default,
                };
                let op = if fname == "gaussian" {
                    Op::Gaussian
                } else {
                    Op::Uniform
                };
                Ok(Instruction::constant(op, dest, num(0, 0.0), num(1, 1.0)))
            }
            "dot" => {
                let r = regs(2, 0)?;
                let op = if self.dialect_b && r[0].kind == Kind::Matrix {
                    Op::Matmul
                } else {
                    Op::Dot
                };
                Ok(Instruction::binary(op, r[0], r[1], dest))
            }
            "matmul" => binary(Op::Matmul),
            "outer" => binary(Op::Outer),
            "minimum" | "min" => binary(Op::Min),
            "maximum" | "max" => binary(Op::Max),
            "heaviside" => Ok(Instruction::unary(Op::Heaviside, regs(1, 1)?[0], dest)),
            "abs" => unary(Op::Abs),
            "exp" => unary(Op::Exp),
            "log" => unary(Op::Log),
            "sin" => unary(Op::Sin),
            "cos" => unary(Op::Cos),
            "tan" => unary(Op::Tan),
            "norm" => unary(Op::Norm),
            "mean" => unary(Op::Mean),
            "std" => unary(Op::Std),
            _ => self.err(at, format!("unknown function '{fname}'")),
        }
    }

    fn finish(&mut self, instr: Instruction) -> Result<Instruction, DslError> {
        if self.at_end() {
            Ok(instr)
        } else {
            self.err(self.pos, "unexpected text after the instruction")
        }
    }
}

/// Canonical text (dialect A) of a program; [`parse_program`] reads it back identically.
pub fn print_program(program: &Program) -> String {
    let m = &program.meta;
    let mut out = format!(
        "# meta: scalar_count={} vector_count={} matrix_count={}",
        m.scalar_count, m.vector_count, m.matrix_count
    );
    if let Some(d) = m.vector_dim {
        let _ = write!(out, " vector_dim={d}");
    }
    let _ = writeln!(
        out,
        " setup_max_ops={} predict_max_ops={} learn_max_ops={}",
        m.setup_max_ops, m.predict_max_ops, m.learn_max_ops
    );
    for phase in Phase::ALL {
        let _ = writeln!(out, "# {}", phase.name());
        for instr in program.phase(phase) {
            out.push_str(&print_instruction(instr));
            out.push('\n');
        }
    }
    out
}

/// One instruction as a DSL line (no newline).
pub fn print_instruction(i: &Instruction) -> String {
    let r = |a: Option<Addr>| a.map(|a| a.to_string()).unwrap_or_else(|| "s0".into());
    let (d, a, b) = (r(i.dest), r(i.arg1), r(i.arg2));
    match i.op {
        Op::Noop => "noop()".to_string(),
        Op::Const => format!("{d} = {}", i.const1),
        Op::ConstVec => format!("{d}[{}] = {}", i.const1.trunc() as i64, i.const2),
        Op::Gaussian => format!("{d} = gaussian({}, {})", i.const1, i.const2),
        Op::Uniform => format!("{d} = uniform({}, {})", i.const1, i.const2),
        Op::Add => format!("{d} = {a} + {b}"),
        Op::Sub => format!("{d} = {a} - {b}"),
        Op::Mul => format!("{d} = {a} * {b}"),
        Op::Div => format!("{d} = {a} / {b}"),
        Op::Copy => format!("{d} = {a}"),
        Op::Min => format!("{d} = minimum({a}, {b})"),
        Op::Max => format!("{d} = maximum({a}, {b})"),
        Op::Dot => format!("{d} = dot({a}, {b})"),
        Op::Matmul => format!("{d} = matmul({a}, {b})"),
        Op::Outer => format!("{d} = outer({a}, {b})"),
        Op::Abs => format!("{d} = abs({a})"),
        Op::Exp => format!("{d} = exp({a})"),
        Op::Log => format!("{d} = log({a})"),
        Op::Sin => format!("{d} = sin({a})"),
        Op::Cos => format!("{d} = cos({a})"),
        Op::Tan => format!("{d} = tan({a})"),
        Op::Heaviside => format!("{d} = heaviside({a})"),
        Op::Norm => format!("{d} = norm({a})"),
        Op::Mean => format!("{d} = mean({a})"),
        Op::Std => format!("{d} = std({a})"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const LINEAR_A: &str = "\
# meta: scalar_count=4 vector_count=3 matrix_count=1 vector_dim=4 setup_max_ops=10 predict_max_ops=2 learn_max_ops=8
# setup
s2 = 0.009999999776482582
v1 = gaussian(0.0, 0.10000000149011612)
# predict
s0 = dot(v0, v1)
# learn
s3 = s1 - s0
s3 = s3 * s2
v2 = v0 * s3
v1 = v1 + v2
";

    #[test]
    fn dialect_a_example() {
        let p = parse_program(LINEAR_A).unwrap();
        assert_eq!(p.meta.vector_dim, Some(4));
        assert_eq!(p.setup.len(), 2);
        assert_eq!(p.setup[0].const1, 0.01f32);
        assert_eq!(p.setup[1].op, Op::Gaussian);
        assert_eq!(p.setup[1].const2, 0.1f32);
        assert_eq!(
            p.predict[0],
            Instruction::binary(Op::Dot, Addr::v(0), Addr::v(1), Addr::s(0))
        );
        assert_eq!(
            p.learn[2],
            Instruction::binary(Op::Mul, Addr::v(0), Addr::s(3), Addr::v(2))
        );
        let text = print_program(&p);
        assert!(text.contains("s2 = 0.01\n"), "{text}");
        assert_eq!(parse_program(&text).unwrap(), p);
    }

    #[test]
    fn dialect_b_example() {
        let text = "\
def Setup():
  s2 = 0.01
  m0 = uniform(-1, 1)
def Predict():
  v3 = dot(m0, v0)
  v4 = maximum(v3, v1)
  s0 = dot(v4, v2)
  s4 = heaviside(s0, 1.0)
def Learn():
  NoOp()
";
        let p = parse_program(text).unwrap();
        assert_eq!(p.predict[0].op, Op::Matmul);
        assert_eq!(p.predict[1].op, Op::Max);
        assert_eq!(p.predict[2].op, Op::Dot);
        assert_eq!(
            p.predict[3],
            Instruction::unary(Op::Heaviside, Addr::s(0), Addr::s(4))
        );
        assert_eq!(p.setup[1].const1, -1.0);
        assert_eq!(p.learn, vec![Instruction::NOOP]);
        assert_eq!(parse_program(&print_program(&p)).unwrap(), p);
    }

    #[test]
    fn misc_grammar() {
        let text = "# setup\nv1[2] = -1.5e-3\ns1 = gaussian()\ns2 = uniform(0.5)\n# predict:\ns0 = s1 # trailing comment\ns3 = norm(m0)\n";
        let p = parse_program(text).unwrap();
        assert_eq!(
            p.setup[0],
            Instruction::constant(Op::ConstVec, Addr::v(1), 2.0, -1.5e-3)
        );
        assert_eq!((p.setup[1].const1, p.setup[1].const2), (0.0, 1.0));
        assert_eq!((p.setup[2].const1, p.setup[2].const2), (0.5, 1.0));
        assert_eq!(p.predict[0].op, Op::Copy);
        assert_eq!(
            p.meta.scalar_count, 20,
            "missing meta takes the full profile"
        );
        assert_eq!(parse_program(&print_program(&p)).unwrap(), p);
    }

    fn error_of(text: &str) -> DslError {
        parse_program(text).expect_err(text)
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = error_of("# setup\ns0 = frob(s1)\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("unknown function"), "{e}");
        let e = error_of("# meta: scalar_count=4\n# predict\n  s0 = s4 + s1\n");
        assert_eq!((e.line, e.column), (3, 8));
        assert!(e
            .to_string()
            .starts_with("line 3, column 8: register s4 out of range"));
        let e = error_of("# setup\ns0 = 1.2.3\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(error_of("# setup\ns0 = 1e99\n").message.contains("range"));
        assert!(error_of("# setup\ns0 = 1e\n").message.contains("malformed"));
        assert!(error_of("s0 = s1\n").message.contains("before any"));
        assert!(error_of("# setup\ns0 = s1 +\n")
            .message
            .contains("register"));
        assert!(error_of("# setup\ns0 = s1 s2\n")
            .message
            .contains("expected"));
        assert!(error_of("# setup\ns0 = dot(v1)\n")
            .message
            .contains("takes"));
        assert!(error_of("# setup\ns0[1] = 2\n").message.contains("vector"));
        assert!(error_of("def Train():\n  s0 = s1\n")
            .message
            .contains("unknown section"));
        assert!(error_of("# meta: foo=1\n")
            .message
            .contains("unknown meta key"));
        assert!(error_of("# meta: matrix_count=100000\n")
            .message
            .contains("limit"));
        assert!(error_of("# setup\ns0 = s1 ^ s2\n").message.contains("'+'"));
        assert!(error_of("# setup\ns0 = gaussian(s1)\n")
            .message
            .contains("number"));
        assert!(error_of("# setup\ns99999999999999999999 = 1\n")
            .message
            .contains("range"));
    }

    #[test]
    fn size_limits() {
        let mut text = String::from("# setup\n");
        for _ in 0..=MAX_INSTRUCTIONS {
            text.push_str("s0=1\n");
        }
        let e = error_of(&text);
        assert_eq!(e.line, MAX_INSTRUCTIONS + 2);
        let big = format!("# setup\n#{}\n", "x".repeat(MAX_TEXT_BYTES));
        assert!(error_of(&big).message.contains("byte limit"));
    }

    fn arb_addr(kind: Kind, count: u16) -> impl Strategy<Value = Addr> {
        (0..count).prop_map(move |i| Addr::new(kind, i))
    }

    fn arb_any_addr() -> impl Strategy<Value = Addr> {
        prop_oneof![
            arb_addr(Kind::Scalar, 6),
            arb_addr(Kind::Vector, 4),
            arb_addr(Kind::Matrix, 2)
        ]
    }

    fn arb_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            any::<f32>().prop_filter("finite", |v| v.is_finite()),
            (-4.0f32..4.0),
            Just(0.0f32),
            Just(-0.0f32),
        ]
    }

    pub(crate) fn arb_instruction() -> impl Strategy<Value = Instruction> {
        (
            1u8..25,
            arb_any_addr(),
            arb_any_addr(),
            arb_any_addr(),
            arb_f32(),
            arb_f32(),
            0u8..8,
        )
            .prop_map(|(code, a, b, d, c1, c2, idx)| {
                let op = Op::from_code(code).unwrap();
                match op {
                    Op::Const => Instruction::constant(op, d, c1, 0.0),
                    Op::ConstVec => Instruction::constant(op, Addr::v(d.index % 4), idx as f32, c2),
                    Op::Gaussian | Op::Uniform => Instruction::constant(op, d, c1, c2),
                    _ if op.arity() == 1 => Instruction::unary(op, a, d),
                    _ => Instruction::binary(op, a, b, d),
                }
            })
    }

    fn arb_program() -> impl Strategy<Value = Program> {
        let phase = || {
            proptest::collection::vec(
                prop_oneof![9 => arb_instruction(), 1 => Just(Instruction::NOOP)],
                0..12,
            )
        };
        (phase(), phase(), phase(), proptest::option::of(1usize..40)).prop_map(
            |(setup, predict, learn, vector_dim)| Program {
                meta: ProgramMeta {
                    scalar_count: 6,
                    vector_count: 4,
                    matrix_count: 2,
                    vector_dim,
                    setup_max_ops: 12,
                    predict_max_ops: 12,
                    learn_max_ops: 12,
                },
                setup,
                predict,
                learn,
            },
        )
    }

    proptest! {
        #[test]
        fn print_parse_identity(p in arb_program()) {
            let text = print_program(&p);
            let back = parse_program(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &p);
            // Bit-identical constants (PartialEq treats 0.0 == -0.0).
            let bits = |p: &Program| p.setup.iter().chain(&p.predict).chain(&p.learn)
                .map(|i| (i.const1.to_bits(), i.const2.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&p));
            prop_assert_eq!(print_program(&back), text);
        }

        #[test]
        fn parse_print_parse_is_stable(lines in proptest::collection::vec(
            prop_oneof![
                Just("# setup".to_string()), Just("def Predict():".to_string()),
                Just("# learn".to_string()), Just("  NoOp()".to_string()),
                arb_instruction().prop_map(|i| print_instruction(&i)),
                "[ -~]{0,20}",
            ], 0..20)) {
            let text = lines.join("\n");
            if let Ok(p) = parse_program(&text) {
                let printed = print_program(&p);
                let again = parse_program(&printed).map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
                prop_assert_eq!(print_program(&again), printed);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_program(&text);
            let framed = format!("# meta: scalar_count=3\n# setup\n{text}\n# predict\ns0 = {text}");
            let _ = parse_program(&framed);
        }
    }
}
