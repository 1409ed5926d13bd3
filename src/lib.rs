//! `bitsota`: the BitSota research-network loop as one appliance.
//!
//! See `ARCHITECTURE.md` for the module map, the data flow of the local loop and the
//! invariants. Each service folder keeps its rules as pure functions over plain data;
//! HTTP handlers and storage are thin shells around them.

pub mod cli;
pub mod config;
pub mod engine;
pub mod keys;
pub mod miner;
pub mod pool;
pub mod relay;
pub mod rng;
pub mod score_json;
pub mod server;
pub mod sidecar;
pub mod store;
pub mod tasks;
pub mod validator;
