//! The appliance: what makes the services one daemon rather than five programs — the
//! mining [`Supervisor`] that starts and stops the embedded miner.

pub mod supervisor;

pub use supervisor::{MinerError, StartRequest, Supervisor};
