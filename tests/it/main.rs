//! The integration tests, gathered into one binary so the crate is linked once instead of
//! once per suite. Each suite is a module: run one with `cargo test --test it relay_api::`.
//! The harness (`common`) starts the real daemon on ephemeral ports and talks HTTP to it;
//! the `*_support` modules hold helpers shared by the suites of one service.
//!
//! `tests/interp_props.rs` stays a binary of its own: CI rebuilds it with
//! `--features checked`, and on its own that rebuild compiles one suite, not all of them.

mod common;
mod pool_support;
mod relay_support;
mod validator_support;

mod compat;
mod compat_floats;
mod daemon;
mod dashboard_e2e;
mod datasets_files;
mod datasets_real;
mod engine_cli;
mod fuzz_endpoints;
mod hostile_programs;
mod keys_vectors;
mod listeners;
mod miner_control;
mod miner_e2e;
mod operations;
mod pool_api;
mod pool_crash;
mod profile;
mod relay_api;
mod relay_concurrency;
mod relay_consensus;
mod relay_crash;
mod shutdown;
mod sidecar_api;
mod store_fixture;
mod validator_appliance;
mod validator_embedded;
mod validator_forged;
mod validator_loop;
mod wallet_cli;
mod worker_cli;
