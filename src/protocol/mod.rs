//! The relay protocol as both ends speak it: the JSON bodies ([`wire`]) shared by the
//! relay's handlers and its clients, and the one client ([`relay_client`]) the miner, the
//! validators and the pool's relay link use.
//!
//! A leaf module: it may use `keys` and `score_json`, never a service (`relay`,
//! `sidecar`, `pool`, `validator`, `miner`, `server`), so that every service can depend
//! on it without a cycle.

pub mod relay_client;
pub mod wire;
