//! Evaluation and scoring (engine.md §2): an [`Evaluator`] runs compiled code on one
//! task or on a [`TaskBatch`] of equal-shape tasks in lockstep (the loop itself lives
//! in [`super::kernel`]), then scores the validation predictions; [`score_on_suite`]
//! spreads a suite over threads; [`Combine`] turns a miner's task scores into one
//! fitness.

use super::compile::{compile, Compiled};
use super::kernel::squared_errors;
use crate::engine::program::Program;
use crate::rng::Rng;
use crate::tasks::suite::median;
use crate::tasks::{Metric, Task};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Early stopping's rule for one prediction: 1 when its error `err` is further than
/// `limit` from zero or NaN (a NaN prediction makes a NaN error), else 0 — an integer,
/// so that scans over lanes vectorise.
#[inline(always)]
pub(super) fn astray(err: f32, limit: f32) -> u32 {
    let off = err.abs();
    u32::from(off > limit) | u32::from(off.is_nan())
}

/// Early stopping for one training example: marks each running lane whose prediction
/// is NaN or further than `limit` from its label, and returns how many it marked.
#[inline(always)]
pub(super) fn stop_astray(
    preds: impl Iterator<Item = f32> + Clone,
    ys: &[f32],
    stopped: &mut [bool],
    limit: f32,
) -> usize {
    let astray = |p: f32, y: f32| astray(p - y, limit);
    // A branch-free scan first, in integers so that it vectorises: a running lane
    // going astray is rare, most examples need no more.
    let mut any = 0u32;
    for ((p, &y), &s) in preds.clone().zip(ys).zip(stopped.iter()) {
        any |= astray(p, y) & u32::from(!s);
    }
    if any == 0 {
        return 0;
    }
    let mut marked = 0;
    for ((p, &y), s) in preds.zip(ys).zip(stopped.iter_mut()) {
        if !*s && astray(p, y) == 1 {
            *s = true;
            marked += 1;
        }
    }
    marked
}

/// Copy a few dozen floats without a `memcpy` call (whose overhead dominates at this
/// size in the per-example loop).
#[inline(always)]
pub(super) fn copy_small(dst: &mut [f32], src: &[f32]) {
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
    pub(super) regs: Vec<f32>,
    pub(super) mat: Vec<f32>,
    pub(super) acc: Vec<f32>,
    pub(super) rngs: Vec<Rng>,
    /// Validation predictions, example-major: lane `t` of example `e` at `e·lanes + t`.
    pub(super) preds: Vec<f32>,
    /// Per-lane sums of squared errors (scoring buffer).
    lane_sums: Vec<f64>,
    n_val: usize,
    pub(super) stopped: Vec<bool>,
    /// The last run gave up because its [`RunSpec::stop`] was due.
    pub(super) halted: bool,
    pub(super) train_steps: u64,
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
    pub(super) lanes: usize,
    pub(super) input_dim: usize,
    n_train: usize,
    n_val: usize,
    pub(super) train_x: &'a [f32],
    pub(super) train_y: &'a [f32],
    pub(super) val_x: &'a [f32],
    pub(super) val_y: &'a [f32],
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
    pub(super) fn of(batch: &'a TaskBatch) -> Self {
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
pub(super) const STOP_CHECK_EVERY: usize = 16;

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
        // AutoML-Zero's early stopping covers validation too: a prediction that is NaN
        // or further than the limit from its label gives the task the minimum fitness
        // (rather than −inf or a tiny score).
        let lane = |t: usize| self.preds.iter().skip(t).step_by(nt).copied();
        if tasks
            .iter()
            .all(|t| t.borrow().metric == Metric::InverseAtanRmse)
        {
            // Every lane's squared errors summed example by example in one pass, with
            // the early-stopping check: each sum keeps its own index order
            // (bit-identical to scoring the lane alone), and the lanes' additions
            // overlap instead of waiting on each other.
            let sums = &mut self.lane_sums;
            sums.clear();
            sums.resize(nt, 0.0);
            let stopped = &mut self.stopped[..nt];
            squared_errors(&self.preds, data.val_y, sums, spec.early_stop, stopped);
            for (t, o) in out.iter_mut().enumerate() {
                *o = if self.stopped[t] {
                    MIN_FITNESS
                } else if !sums[t].is_finite() && lane(t).any(|p| !p.is_finite()) {
                    f32::NEG_INFINITY
                } else {
                    inverse_atan_rmse(sums[t], n_val)
                };
            }
            return Ok(());
        }
        if let Some(limit) = spec.early_stop {
            let preds = self.preds.chunks_exact(nt);
            for (p, ys) in preds.zip(data.val_y.chunks_exact(nt)).take(n_val) {
                stop_astray(p.iter().copied(), ys, &mut self.stopped[..nt], limit);
            }
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
            // The FEC probe and single-task scoring: one lane, no per-lane loops.
            (4, 1) => self.run_dim::<4, 1>(c, data, spec),
            (16, 1) => self.run_dim::<16, 1>(c, data, spec),
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
