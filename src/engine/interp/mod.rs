//! The interpreter: a program is compiled once per vector size into a flat, pre-resolved
//! form (register offsets, operand broadcasting modes, one kernel per instruction, dead
//! code removed), then evaluated on tasks exactly as engine.md §2 prescribes.
//!
//! Determinism: every reduction runs sequentially in index order in `f32`, transcendental
//! functions come from `libm`, and each task is evaluated on one thread — so a score is
//! bit-identical whatever the machine or thread count.
//!
//! # Layout
//!
//! The stages of the pipeline live in their own files, each depending only on the ones
//! before it:
//!
//! - `compile` — [`compile`] / [`Compiler`]: resolve each instruction to a kernel and
//!   register offsets, drop what liveness finds dead (random ops become a bare RNG
//!   advance), and check every register range once (the kernel relies on it).
//!   [`Compiled`] also gives its work (the cost model's input) and its `code_key` (the
//!   exact-duplicate cache's).
//! - `liveness` — the flow-sensitive dead-code analysis over setup → predict → learn.
//! - `kernel` — the evaluation loop and the instruction kernels; the only module of the
//!   crate allowed `unsafe` code (unchecked register access, AVX2 dispatch), with the
//!   proof in its docs.
//! - `evaluate` — [`Evaluator`] (reusable buffers, lockstep [`TaskBatch`] runs, early
//!   stopping, [`Stop`] for untrusted code) and scoring: the metrics,
//!   [`score_on_suite`] (the validator rule) and [`Combine`] (a miner's fitness).
//!
//! The files are private; this module's re-exports are the whole API.

mod compile;
mod evaluate;
// The one module of the crate allowed `unsafe` code (see its docs for the proof).
#[allow(unsafe_code)]
mod kernel;
mod liveness;

#[cfg(test)]
pub(crate) use compile::compile_keeping_dead;
pub use compile::{compile, Compiled, Compiler, Resolution};
pub use evaluate::{
    evaluate_task, score_on_suite, score_on_suite_within, score_predictions, Combine, EvalOptions,
    Evaluator, Halted, Stop, SuiteScore, TaskBatch, MIN_FITNESS,
};
pub(crate) use evaluate::{Lanes, RunSpec};
pub(crate) use kernel::fma_matvec;

#[cfg(test)]
mod pins;
#[cfg(test)]
mod tests;
