//! Engine: programs, DSL, interpreter, evolution (engine.md).
//!
//! - [`ops`], [`program`]: opcodes, registers, instructions, programs, profiles.
//! - [`dsl`]: [`parse_program`] (strict; used by relay, validators, pool) and
//!   [`print_program`] (canonical dialect A).
//! - [`interp`]: [`compile`] a program once, [`evaluate_task`] / [`score_on_suite`].

pub mod dsl;
pub mod evolve;
pub mod fec;
pub mod interp;
pub mod mutate;
pub mod ops;
pub mod program;

pub use dsl::{parse_program, print_program, DslError};
pub use evolve::{
    run_islands, EngineKind, EvolutionConfig, EvolutionEvent, EvolveError, Evolver,
    InitialPopulation, Member, ProfileChoice,
};
pub use fec::FecStats;
pub use interp::{
    compile, evaluate_task, score_on_suite, Combine, Compiled, EvalOptions, Evaluator, SuiteScore,
};
pub use mutate::Mutation;
pub use ops::{Kind, Op, Signature};
pub use program::{Addr, Instruction, OpEntry, Phase, PhaseSpec, Profile, Program, ProgramMeta};
