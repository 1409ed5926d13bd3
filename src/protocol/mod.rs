//! Wire formats shared by the services and their clients, so that a server and the
//! clients that talk to it use one definition: the relay's JSON bodies ([`wire`]) and the
//! one relay client ([`relay_client`]) the miner, the validators and the pool's relay
//! link use; the sidecar's run events ([`run_events`]); the pool's refusal texts
//! ([`pool`]).
//!
//! A leaf module: it may use `keys`, `clock` and `score_json`, never a service (`relay`,
//! `sidecar`, `pool`, `validator`, `miner`, `server`), so that every service can depend
//! on it without a cycle.

pub mod client;
pub mod pool;
pub mod relay_client;
pub mod run_events;
pub mod wire;
