//! Wire formats shared by the services and their clients, so that a server and the
//! clients that talk to it use one definition.
//!
//! A leaf: it may use `keys` and `score_json`, never a service.

pub mod pool;
pub mod run_events;
pub mod wire;
