//! Engine: programs, DSL, interpreter, evolution (engine.md). Pure computation: no I/O.
//!
//! - [`ops`], [`program`]: opcodes (numbers are the stored format), registers,
//!   instructions, programs, and profiles (search spaces as data: [`Profile::builtin`]
//!   or serde from a problem config; op entries like `"MUL[s,v->v]"`).
//! - [`dsl`]: [`parse_program`] — strict, both dialects, errors name line and column;
//!   the relay, validators and pool run untrusted text through it — and
//!   [`print_program`], canonical dialect A that re-parses to an identical program.
//! - [`interp`]: [`compile`] a program once per vector size (pre-resolved kernels,
//!   flow-sensitive dead-code elimination that keeps random draws), then
//!   [`evaluate_task`] / [`score_on_suite`] (validator rule: median including
//!   non-finite scores; bit-identical for any thread count). [`Evaluator`] keeps
//!   buffers for hot loops; [`TaskBatch`] runs several equal-shape tasks in lockstep.
//! - [`cost`]: the evaluation cost model and the budget every evaluator of untrusted
//!   programs checks first ([`cost::check`]); [`score_on_suite_within`] adds a
//!   wall-clock deadline and cancellation ([`Stop`]), looked at between examples.
//! - [`mutate`]: random well-typed instructions and the mutation rules (pure given the
//!   RNG). [`fec`]: the functional equivalence cache; [`cache`]: the LRU both fitness
//!   caches use (FEC and the exact-duplicate cache of compiled code).
//! - [`evolve`]: the search engines; [`stages`]: their stage counters (children,
//!   mutations, compilations, cache hits, evaluations, instructions; times while
//!   profiling), which `bitsota profile` reports.
//!
//! # Running a search (for the miner supervisor)
//!
//! ```no_run
//! use bitsota::engine::{run_islands, EvolutionConfig, EvolutionEvent};
//! use std::sync::atomic::AtomicBool;
//! # fn demo(tasks: Vec<std::sync::Arc<bitsota::tasks::Task>>, seeds: Vec<u64>) {
//! // Defaults follow engine.md §5; every field can come from JSON/TOML (serde).
//! let config: EvolutionConfig =
//!     serde_json::from_str(r#"{"profile": "cifar", "workers": 2, "seed": 7}"#).unwrap();
//! let stop = AtomicBool::new(false); // set it from another thread to stop
//! let bests = run_islands(&config, &tasks, &seeds, &stop, |event| match event {
//!     // every `checkpoint_generations` children of a worker
//!     EvolutionEvent::Progress { worker, children, children_per_sec, best_fitness, .. } => {}
//!     // a worker's best improved: verify it on the validator suite, maybe submit
//!     EvolutionEvent::Candidate { worker, children, member } => {}
//!     EvolutionEvent::Finished { .. } => {}
//! })
//! .unwrap();
//! # }
//! ```
//!
//! `tasks`/`seeds` are the miner suite (`SuiteSpec::new(type, dim, miner_task_count,
//! miner_task_seed)`, seeds from `SuiteSpec::eval_seed`); a run with the same config,
//! tasks and seeds is reproducible (each worker's stream is `seed + worker`; migration
//! every `migration_generations` children happens at fixed points). For finer control,
//! [`Evolver`] is one island: [`Evolver::step`] makes exactly one child;
//! [`Evolver::run`] steps until stopped, `max_children` or `target_fitness`.
//! Events arrive on the calling thread of [`run_islands`]; events are cheap except
//! `Candidate`, which clones a program.

pub mod cache;
pub mod cost;
pub mod dsl;
pub mod evolve;
pub mod fec;
pub mod interp;
pub mod mutate;
pub mod ops;
pub mod program;
pub mod stages;

pub use cache::CacheStats;
pub use cost::{Examples, Limits, OverBudget};
pub use dsl::{parse_program, print_program, DslError};
pub use evolve::{
    run_islands, EngineKind, EvolutionConfig, EvolutionEvent, EvolveError, Evolver,
    InitialPopulation, Member, ProfileChoice,
};
pub use interp::{
    compile, evaluate_task, score_on_suite, score_on_suite_within, Combine, Compiled, EvalOptions,
    Evaluator, Halted, Stop, SuiteScore, TaskBatch,
};
pub use mutate::Mutation;
pub use ops::{Kind, Op, Signature};
pub use program::{
    Addr, Changed, ConstantDraw, Instruction, OpEntry, Phase, PhaseSpec, Profile, Program,
    ProgramMeta,
};
pub use stages::{Stage, Stages};
