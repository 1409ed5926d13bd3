//! `bitsota`: the BitSota research-network loop as one appliance.
//!
//! See `ARCHITECTURE.md` for the module map, the data flow of the local loop and the
//! invariants. Each service folder keeps its rules as pure functions over plain data;
//! HTTP handlers and storage are thin shells around them.
//!
//! No `unsafe` code anywhere but the interpreter's kernel (`engine::interp::kernel`),
//! whose module docs carry the proof; the lint below refuses it everywhere else.
#![deny(unsafe_code)]

pub mod appliance;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod engine;
pub mod health;
pub mod http;
pub mod jobs;
pub mod keys;
#[cfg(test)]
mod layering;
pub mod logfile;
pub mod metrics;
pub mod miner;
pub mod pool;
pub mod protocol;
pub mod relay;
pub mod retention;
pub mod rng;
pub mod score_json;
pub mod server;
pub mod sidecar;
pub mod store;
pub mod tasks;
pub mod validator;
