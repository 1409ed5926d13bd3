//! Engine: programs, DSL, interpreter, evolution (engine.md).
