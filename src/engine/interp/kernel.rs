//! The interpreter's kernel: the only module of the crate allowed `unsafe` code.
//!
//! Two kinds of `unsafe` live here, and nowhere else:
//!
//! - **Unchecked register access** ([`Regs`]). The hot loop reads and writes the
//!   register file through a raw pointer, without bounds checks. The proof that every
//!   index is in range is split in two: [`super::Compiler::compile_into`] verifies every
//!   instruction it emits against the register file it lays out
//!   ([`super::Compiled::in_bounds`], a hard check, not a `debug_assert`), and a
//!   [`super::Compiled`] cannot be built any other way; [`Evaluator::run`] then sizes the
//!   register file to `n_regs·lanes` and dispatches `D`/`T` equal to the compiled vector
//!   size and lane count. Every function that touches registers is an `unsafe fn` whose
//!   `# Safety` section states what it needs; [`exec`] is the single entry point.
//!   Built with the `checked` cargo feature, every access is bounds-checked instead
//!   (a violated invariant panics rather than corrupting memory); the property test
//!   `tests/interp_props.rs` runs random and adversarial programs under that feature.
//! - **AVX2 dispatch**: the same safe code compiled a second time with
//!   `#[target_feature(enable = "avx2")]`, called only after the CPU reported AVX2.

use super::compile::{BinOp, CInstr, Compiled, Kernel, Mode, Reduce, UnOp};
use super::evaluate::{copy_small, stop_astray, Evaluator, Lanes, RunSpec, STOP_CHECK_EVERY};
use crate::engine::ops::Kind;
use crate::rng::Rng;

/// Raw access to a register file laid out task-major: element `e` of task `t` lives at
/// `e·T + t`, so one instruction runs for all `T` tasks in a row and the per-task
/// arithmetic vectorises.
///
/// Every method is `unsafe`: the caller guarantees that the flat index it touches
/// (`e·T + t`, or `j..j+8`) lies inside the slice the value was made from, and that
/// no other reference to that slice is used while this value is.
#[derive(Clone, Copy)]
struct Regs {
    p: *mut f32,
    t: usize,
    /// Elements of the register file (checked builds verify every index against it).
    #[cfg(feature = "checked")]
    len: usize,
}

impl Regs {
    fn new(regs: &mut [f32], t: usize) -> Regs {
        Regs {
            p: regs.as_mut_ptr(),
            t,
            #[cfg(feature = "checked")]
            len: regs.len(),
        }
    }

    /// Panics (checked builds only) unless flat indices `j..j + n` are in the file.
    #[inline(always)]
    fn check(self, j: usize, n: usize) {
        #[cfg(feature = "checked")]
        assert!(
            j.checked_add(n).is_some_and(|end| end <= self.len),
            "register access {j}..{} outside a file of {} values",
            j.saturating_add(n),
            self.len
        );
        #[cfg(not(feature = "checked"))]
        let _ = (j, n);
    }

    /// # Safety
    /// `e·T + t` is inside the register file.
    #[inline(always)]
    unsafe fn get(self, e: usize, t: usize) -> f32 {
        self.check(e * self.t + t, 1);
        *self.p.add(e * self.t + t)
    }
    /// # Safety
    /// `e·T + t` is inside the register file.
    #[inline(always)]
    unsafe fn set(self, e: usize, t: usize, v: f32) {
        self.check(e * self.t + t, 1);
        *self.p.add(e * self.t + t) = v
    }
    /// Eight consecutive values from flat index `j` (= e·T + t).
    ///
    /// # Safety
    /// `j..j + 8` is inside the register file.
    #[inline(always)]
    unsafe fn load8(self, j: usize) -> [f32; 8] {
        self.check(j, 8);
        (self.p.add(j) as *const [f32; 8]).read_unaligned()
    }
    /// # Safety
    /// `j..j + 8` is inside the register file.
    #[inline(always)]
    unsafe fn store8(self, j: usize, v: [f32; 8]) {
        self.check(j, 8);
        (self.p.add(j) as *mut [f32; 8]).write_unaligned(v)
    }
    /// The `T` lanes of element `e` as one array (`T` = this file's lane count).
    ///
    /// # Safety
    /// `e·T..e·T + T` is inside the register file.
    #[inline(always)]
    unsafe fn lanes<const T: usize>(self, e: usize) -> [f32; T] {
        debug_assert_eq!(T, self.t);
        self.check(e * T, T);
        (self.p.add(e * T) as *const [f32; T]).read_unaligned()
    }
    /// # Safety
    /// `e·T..e·T + T` is inside the register file.
    #[inline(always)]
    unsafe fn set_lanes<const T: usize>(self, e: usize, v: [f32; T]) {
        debug_assert_eq!(T, self.t);
        self.check(e * T, T);
        (self.p.add(e * T) as *mut [f32; T]).write_unaligned(v)
    }
    /// Set flat indices `j..j + n` to `v`.
    ///
    /// # Safety
    /// `j..j + n` is inside the register file.
    #[inline(always)]
    unsafe fn fill(self, j: usize, n: usize, v: f32) {
        self.check(j, n);
        std::slice::from_raw_parts_mut(self.p.add(j), n).fill(v)
    }
}

/// `d[j] = f(a[j], b[j])` for `len` values from flat indices `d`, `a`, `b`, eight at a
/// time so that the compiler emits vector instructions. Reading a chunk of each
/// operand before writing it is the element-wise result because the ranges passed
/// here never partly overlap: they are whole registers (or rows) of one kind, which
/// either coincide or are disjoint.
///
/// # Safety
/// `d..d + len`, `a..a + len` and `b..b + len` are inside the register file.
#[inline(always)]
unsafe fn zip_map<F: Fn(f32, f32) -> f32>(
    r: Regs,
    d: usize,
    a: usize,
    b: usize,
    len: usize,
    f: &F,
) {
    let mut j = 0;
    while j + 8 <= len {
        let (x, y) = (r.load8(a + j), r.load8(b + j));
        // A plain loop, not `array::from_fn`: in the AVX2 build that stayed an
        // out-of-line call for one of the demo's element-wise ops (a tenth of its
        // samples in `perf`; removing it raised `bench demo` about 10 %).
        let mut z = [0.0f32; 8];
        for k in 0..8 {
            z[k] = f(x[k], y[k]);
        }
        r.store8(d + j, z);
        j += 8;
    }
    for j in j..len {
        // Element 0 of "task" j is flat index j.
        r.set(0, d + j, f(r.get(0, a + j), r.get(0, b + j)));
    }
}

/// Values in the longest scalar tile of [`zip_scalar`].
const TILE: usize = 40;

/// `d[j] = f(s[j mod T], a[j])` (`f(a[j], s[j mod T])` unless `S_FIRST`) for `len` values
/// from flat indices `d` and `a`, `len` a multiple of `T` = `tasks`: a scalar operand
/// (one value per lane, from flat index `s`) with every element of another.
///
/// With 8 to 16 lanes each element's lanes are two eight-wide runs, the second
/// overlapping the first (lanes 2..8 of ten are computed twice, to the same bits): the
/// scalar's two runs stay in vector registers for the whole operand. Otherwise the
/// scalar's lanes are tiled to `lcm(T, 8)` values, so the run goes eight at a time like
/// [`zip_map`]; false (nothing done) when that tile would be longer than [`TILE`], or
/// the run shorter than two tiles: then building the tile costs more than it saves.
///
/// # Safety
/// `d..d + len`, `a..a + len` and `s..s + T` are inside the register file.
#[inline(always)]
unsafe fn zip_scalar<const S_FIRST: bool, F: Fn(f32, f32) -> f32>(
    r: Regs,
    d: usize,
    a: usize,
    s: usize,
    len: usize,
    tasks: usize,
    f: &F,
) -> bool {
    if tasks == 0 {
        return false;
    }
    let g = |x: f32, y: f32| if S_FIRST { f(x, y) } else { f(y, x) };
    if (8..=16).contains(&tasks) {
        let hi = tasks - 8;
        let (s0, s1) = (r.load8(s), r.load8(s + hi));
        for e in (0..len).step_by(tasks) {
            // Both loads before both stores: `d` may be `a`.
            let (x0, x1) = (r.load8(a + e), r.load8(a + e + hi));
            let (mut z0, mut z1) = ([0.0f32; 8], [0.0f32; 8]);
            for k in 0..8 {
                z0[k] = g(s0[k], x0[k]);
                z1[k] = g(s1[k], x1[k]);
            }
            r.store8(d + e, z0);
            r.store8(d + e + hi, z1);
        }
        return true;
    }
    let l = tasks / gcd(tasks, 8) * 8;
    if l > TILE || len < 2 * l {
        return false;
    }
    // The whole tile, with a constant trip count: with `T` a constant the indices fold
    // and the tile can live in vector registers rather than be stored and reloaded.
    let mut tile = [0.0f32; TILE];
    for (i, x) in tile.iter_mut().enumerate() {
        *x = r.get(0, s + i % tasks);
    }
    let mut j = 0;
    // `j` steps by whole tiles (whole multiples of T), so lane (j + q) mod T is q mod T.
    while j + l <= len {
        for q in (0..l).step_by(8) {
            let (x, y) = (&tile[q..q + 8], r.load8(a + j + q));
            let mut z = [0.0f32; 8];
            for k in 0..8 {
                z[k] = g(x[k], y[k]);
            }
            r.store8(d + j + q, z);
        }
        j += l;
    }
    for j in j..len {
        r.set(0, d + j, g(tile[j % tasks], r.get(0, a + j)));
    }
    true
}

const fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `i`'s binary element-wise op over `n` destination elements; `modes` is `None` for
/// [`Kernel::BinS`] (a scalar from two scalars, per lane).
///
/// # Safety
/// `i` passed [`Compiled::in_bounds`] for this register file at vector size `dim`.
#[inline(always)]
unsafe fn bin<F: Fn(f32, f32) -> f32>(
    r: Regs,
    i: &CInstr,
    modes: Option<(Mode, Mode)>,
    n: usize,
    dim: usize,
    tasks: usize,
    f: F,
) {
    let (a, b, d) = (i.a as usize, i.b as usize, i.d as usize);
    let Some((ma, mb)) = modes else {
        for t in 0..tasks {
            r.set(d, t, f(r.get(a, t), r.get(b, t)));
        }
        return;
    };
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
            if !zip_scalar::<true, F>(r, d * tasks, b * tasks, a * tasks, n * tasks, tasks, &f) {
                for k in 0..n {
                    zip_map(r, (d + k) * tasks, a * tasks, (b + k) * tasks, tasks, &f);
                }
            }
        }
        (Mode::Same, Mode::Scalar) => {
            if !zip_scalar::<false, F>(r, d * tasks, a * tasks, b * tasks, n * tasks, tasks, &f) {
                for k in 0..n {
                    zip_map(r, (d + k) * tasks, (a + k) * tasks, b * tasks, tasks, &f);
                }
            }
        }
        // A matrix with a vector on every row: each row of both is one contiguous run.
        (Mode::Same, Mode::Row) => {
            for row in (0..n).step_by(dim.max(1)) {
                zip_map(
                    r,
                    (d + row) * tasks,
                    (a + row) * tasks,
                    b * tasks,
                    dim * tasks,
                    &f,
                );
            }
        }
        (Mode::Row, Mode::Same) => {
            for row in (0..n).step_by(dim.max(1)) {
                zip_map(
                    r,
                    (d + row) * tasks,
                    a * tasks,
                    (b + row) * tasks,
                    dim * tasks,
                    &f,
                );
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

/// `i`'s unary element-wise op over `n` destination elements.
///
/// # Safety
/// As for [`bin`].
#[inline(always)]
unsafe fn un<F: Fn(f32) -> f32>(
    r: Regs,
    i: &CInstr,
    m: Mode,
    n: usize,
    dim: usize,
    tasks: usize,
    f: F,
) {
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

/// `R` sums of products for every lane at once: `sums[q] = Σ_k x(k)·y(q, k)`, each
/// summed from 0 in `k` order exactly as a lone sum would be (the `R` sums only share
/// the loads of `x`, and run side by side instead of one after another). `x(k)` and
/// `y(q, k)` are element indices; `X_FIRST` says which operand is written first in the
/// product, as the kernels always did (the product's bits do not depend on it, but a
/// NaN's payload does).
///
/// # Safety
/// Every element `x(k)` and `y(q, k)` for `k < len`, `q < R` is inside the register
/// file of `T` lanes.
#[inline(always)]
unsafe fn sums<const R: usize, const T: usize, const X_FIRST: bool>(
    r: Regs,
    len: usize,
    x: impl Fn(usize) -> usize,
    y: impl Fn(usize, usize) -> usize,
) -> [[f32; T]; R] {
    let mut acc = [[0.0f32; T]; R];
    for k in 0..len {
        let xk = r.lanes::<T>(x(k));
        for (q, acc) in acc.iter_mut().enumerate() {
            let yk = r.lanes::<T>(y(q, k));
            for t in 0..T {
                // Not the same twice: with two NaN operands the result carries the
                // first one's payload, and the kernels always put `X_FIRST`'s first.
                #[allow(clippy::if_same_then_else)]
                let product = if X_FIRST {
                    xk[t] * yk[t]
                } else {
                    yk[t] * xk[t]
                };
                acc[t] += product;
            }
        }
    }
    acc
}

/// Products of `count` sums (numbered from 0) into `out`, four at a time: sum `j` is
/// `Σ_k x(j, k)·y(j, k)` with `x` shared by the four (see [`sums`]), stored as lanes
/// `j·T..j·T + T` of `out`.
///
/// # Safety
/// As for [`sums`], for every `j < count`; `out` holds `count·T` values.
#[inline(always)]
unsafe fn sums_into<const T: usize, const X_FIRST: bool>(
    r: Regs,
    count: usize,
    len: usize,
    x: impl Fn(usize, usize) -> usize,
    y: impl Fn(usize, usize) -> usize,
    out: &mut [f32],
) {
    let mut j = 0;
    // Four sums that share `x` (the same row of a product, or one dot product).
    while j + 4 <= count && x(j, 0) == x(j + 3, 0) {
        let block = sums::<4, T, X_FIRST>(r, len, |k| x(j, k), |q, k| y(j + q, k));
        for (q, sum) in block.iter().enumerate() {
            out[(j + q) * T..(j + q + 1) * T].copy_from_slice(sum);
        }
        j += 4;
    }
    for j in j..count {
        let [sum] = sums::<1, T, X_FIRST>(r, len, |k| x(j, k), |_, k| y(j, k));
        out[j * T..(j + 1) * T].copy_from_slice(&sum);
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

/// Reduction of `len` elements from `a` for task `t`, summed in index order.
///
/// # Safety
/// Elements `a..a + len` of task `t` are inside the register file.
unsafe fn reduce(r: Regs, a: usize, len: usize, t: usize, op: Reduce) -> f32 {
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
///
/// # Safety
/// Every instruction of `code` passed [`Compiled::in_bounds`] for a file of
/// `regs.len() / tasks` registers at vector size `dim_rt`, where `tasks` is `T` when
/// `T` > 0 (then `rngs.len()` = `T`) and else `rngs.len()`; `D` is 0 or `dim_rt`;
/// `s.acc` holds at least `tasks` values and `s.mat` at least `dim_rt²·tasks`.
#[inline(always)]
unsafe fn exec<const D: usize, const T: usize>(
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
    let r = Regs::new(regs, tasks);
    for i in code {
        let (a, b, d) = (i.a as usize, i.b as usize, i.d as usize);
        let n = len(i.dk);
        match i.k {
            // The op's match outside the loops: each op's lane loop is compiled (and
            // vectorised) on its own.
            Kernel::BinS(op) | Kernel::Bin(op, ..) => {
                let modes = match i.k {
                    Kernel::Bin(_, ma, mb) => Some((ma, mb)),
                    _ => None,
                };
                match op {
                    BinOp::Add => bin(r, i, modes, n, dim, tasks, |x, y| x + y),
                    BinOp::Sub => bin(r, i, modes, n, dim, tasks, |x, y| x - y),
                    BinOp::Mul => bin(r, i, modes, n, dim, tasks, |x, y| x * y),
                    BinOp::Div => bin(r, i, modes, n, dim, tasks, |x, y| x / (y + 1e-8)),
                    BinOp::Min => bin(r, i, modes, n, dim, tasks, min_nan),
                    BinOp::Max => bin(r, i, modes, n, dim, tasks, max_nan),
                }
            }
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
            Kernel::Fill => r.fill(d * tasks, n * tasks, i.c1),
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
                let [acc] = sums::<1, T, true>(r, dim, |k| a + k, |_, k| b + k);
                for k in 0..n {
                    r.set_lanes::<T>(d + k, acc);
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
                // As below, four rows at a time sharing each load of the vector.
                let (x, y) = (|_, c| b + c, |row, c| a + row * dim + c);
                sums_into::<T, false>(r, dim, dim, x, y, s.mat);
                for k in 0..n {
                    let e = k % dim;
                    r.set_lanes::<T>(d + k, s.mat[e * T..(e + 1) * T].try_into().unwrap());
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
                // Element e = (row, c): Σ_k a[row][k]·b[k][c], four columns of a row at
                // a time sharing each load of a[row][k].
                let x = |e: usize, k| a + (e / dim) * dim + k;
                let y = |e: usize, k| b + k * dim + e % dim;
                sums_into::<T, true>(r, n, dim, x, y, s.mat);
                for k in 0..n {
                    r.set_lanes::<T>(d + k, s.mat[k * T..(k + 1) * T].try_into().unwrap());
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
            Kernel::Outer if T > 0 => {
                // Row `row` is a[row] (one value per lane) times every element of b: a
                // scalar with a vector, as one contiguous run of `dim` elements.
                for row in 0..dim {
                    let (dr, ar) = ((d + row * dim) * T, (a + row) * T);
                    let mul = |x: f32, y: f32| x * y;
                    if !zip_scalar::<true, _>(r, dr, b * T, ar, dim * T, T, &mul) {
                        let x = r.lanes::<T>(a + row);
                        for c in 0..dim {
                            let y = r.lanes::<T>(b + c);
                            let mut z = [0.0f32; T];
                            for t in 0..T {
                                z[t] = x[t] * y[t];
                            }
                            r.set_lanes::<T>(d + row * dim + c, z);
                        }
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

impl Evaluator {
    /// [`Self::run_lanes`] compiled twice: for the baseline x86-64 (SSE2, 4 floats per
    /// instruction) and, picked at run time, for AVX2 (8). Only the width of the
    /// per-lane loops changes — no fused multiply-add, no reassociation — so every
    /// result is bit-identical on either path.
    pub(super) fn run_dim<const D: usize, const T: usize>(
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
    pub(super) fn run_lanes<const D: usize, const T: usize>(
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
        // SAFETY (every `exec` below): `c` was built by `compile_into`, which verified
        // each instruction against `c.n_regs` registers at vector size `c.dim`
        // (`Compiled::in_bounds`); `run` sized `regs` to `n_regs·lanes`, `rngs` to at most
        // `lanes` seeds (exactly `T` when `T` > 0), the scratch to `dim²·lanes` and
        // `lanes`, and dispatched `D` ∈ {0, c.dim}, `T` ∈ {0, lanes}.
        unsafe { exec::<D, T>(setup, regs, &mut scratch, rngs, dim) };
        let mut running = nt;
        // Between examples only: the arithmetic of a finished run is untouched. The
        // example count is tested here, so the call (out of line: a closure does not
        // take the AVX2 build's features) happens every STOP_CHECK_EVERY examples.
        let due = || spec.stop.is_some_and(|s| s.due());
        for e in 0..spec.n_train {
            if e % STOP_CHECK_EVERY == 0 && due() {
                self.halted = true;
                return;
            }
            self.train_steps += running as u64;
            load_example(regs, data.train_x, e);
            unsafe { exec::<D, T>(predict, regs, &mut scratch, rngs, dim) };
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
            unsafe { exec::<D, T>(learn, regs, &mut scratch, rngs, dim) };
            if let Some(s1) = c.s1 {
                regs[s1 * nt..(s1 + 1) * nt].fill(0.0);
            }
        }
        for e in 0..spec.n_val {
            if e % STOP_CHECK_EVERY == 0 && due() {
                self.halted = true;
                return;
            }
            load_example(regs, data.val_x, e);
            unsafe { exec::<D, T>(predict, regs, &mut scratch, rngs, dim) };
            if let Some(s0) = c.s0 {
                copy_small(
                    &mut self.preds[e * nt..(e + 1) * nt],
                    &regs[s0 * nt..(s0 + 1) * nt],
                );
            }
        }
    }
}

/// Add each lane's squared errors to `sums` (predictions and labels example-major,
/// `sums.len()` lanes), in example order per lane, and mark in `astray` each lane with
/// a prediction further than `limit` from its label, or NaN (early stopping's rule,
/// `stop_astray`, applied to every example at once; `None` marks nothing).
///
/// One pass does both, and at the lockstep lane counts (8, 10) the lanes' sums and
/// flags stay in registers for the whole pass (the flags as integers, so they
/// vectorise). A prediction that is not finite makes its lane's sum not finite, so
/// callers check the sums for that. Dispatched like [`Evaluator::run_lanes`]: AVX2
/// when the CPU has it, same bits.
pub(super) fn squared_errors(
    preds: &[f32],
    labels: &[f32],
    sums: &mut [f64],
    limit: Option<f32>,
    astray: &mut [bool],
) {
    /// One lane's step: add the squared error; whether it is astray (a NaN error is
    /// astray too), as 0 or 1.
    #[inline(always)]
    fn step(sum: &mut f64, p: f32, y: f32, bound: f32) -> u32 {
        let err = p - y;
        *sum += err as f64 * err as f64;
        super::evaluate::astray(err, bound)
    }
    /// `N` lanes, a constant.
    #[inline(always)]
    fn fixed<const N: usize>(
        preds: &[f32],
        labels: &[f32],
        sums: &mut [f64],
        limit: Option<f32>,
        astray: &mut [bool],
    ) {
        let bound = limit.unwrap_or(f32::INFINITY);
        let mut acc: [f64; N] = sums[..N].try_into().expect("N lanes");
        let mut far = [0u32; N];
        for (row, ys) in preds.chunks_exact(N).zip(labels.chunks_exact(N)) {
            for t in 0..N {
                far[t] |= step(&mut acc[t], row[t], ys[t], bound);
            }
        }
        sums[..N].copy_from_slice(&acc);
        if limit.is_some() {
            for (a, f) in astray.iter_mut().zip(far) {
                *a |= f != 0;
            }
        }
    }
    /// Any lane count.
    #[inline(always)]
    fn any(
        preds: &[f32],
        labels: &[f32],
        sums: &mut [f64],
        limit: Option<f32>,
        astray: &mut [bool],
    ) {
        let nt = sums.len();
        let bound = limit.unwrap_or(f32::INFINITY);
        for (row, ys) in preds.chunks_exact(nt).zip(labels.chunks_exact(nt)) {
            for (t, (&p, &y)) in row.iter().zip(ys).enumerate() {
                if step(&mut sums[t], p, y, bound) != 0 && limit.is_some() {
                    astray[t] = true;
                }
            }
        }
    }
    #[inline(always)]
    fn lanes(
        preds: &[f32],
        labels: &[f32],
        sums: &mut [f64],
        limit: Option<f32>,
        astray: &mut [bool],
    ) {
        match sums.len() {
            10 => fixed::<10>(preds, labels, sums, limit, astray),
            8 => fixed::<8>(preds, labels, sums, limit, astray),
            _ => any(preds, labels, sums, limit, astray),
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(
            preds: &[f32],
            labels: &[f32],
            sums: &mut [f64],
            limit: Option<f32>,
            astray: &mut [bool],
        ) {
            lanes(preds, labels, sums, limit, astray)
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { wide(preds, labels, sums, limit, astray) };
    }
    lanes(preds, labels, sums, limit, astray)
}

/// `bench kernels`' ceiling: `out = m·v` for every lane of a task-major lockstep
/// layout (the interpreter's: element `e` of lane `t` at `e·T + t`), summed in column
/// order like the kernel's (four rows at a time) but with a fused multiply-add per
/// product — one instruction where the kernel needs two, so it is what this CPU can do
/// on this layout, not what bit-identical scores allow. Returns `out[0]` so the work cannot be optimised away.
/// With `D`×`D` matrices and `T` lanes: `m` holds `D²·T` values, `v` and `out` `D·T`.
pub(crate) fn fma_matvec<const D: usize, const T: usize>(
    m: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> f32 {
    #[inline(always)]
    fn body<const D: usize, const T: usize>(m: &[f32], v: &[f32], out: &mut [f32]) -> f32 {
        let (m, v) = (&m[..D * D * T], &v[..D * T]);
        // Four rows at a time sharing each load of `v`, as the kernel does: one row's
        // sums alone wait on the multiply-add latency and are no ceiling.
        for (block, o) in out[..D * T].chunks_exact_mut(4 * T).enumerate() {
            let mut acc = [[0.0f32; T]; 4];
            for c in 0..D {
                let vc = &v[c * T..][..T];
                for (q, acc) in acc.iter_mut().enumerate() {
                    let mc = &m[((4 * block + q) * D + c) * T..][..T];
                    for t in 0..T {
                        acc[t] = mc[t].mul_add(vc[t], acc[t]);
                    }
                }
            }
            for (q, acc) in acc.iter().enumerate() {
                o[q * T..(q + 1) * T].copy_from_slice(acc);
            }
        }
        out[0]
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<const D: usize, const T: usize>(m: &[f32], v: &[f32], o: &mut [f32]) -> f32 {
            body::<D, T>(m, v, o)
        }
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { wide::<D, T>(m, v, out) };
    }
    body::<D, T>(m, v, out)
}
