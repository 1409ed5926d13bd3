//! The pool's refusals that its clients act on: the coordinator backs off or waits for
//! the next window when it reads these `detail` texts, so server and client share them.

pub const NO_ACTIVE_LEASE: &str = "Active lease assignment not found";
pub const LEASE_ALREADY_ISSUED: &str =
    "Lease already issued for this window. Wait for next window.";
pub const ACTIVE_TASK: &str = "Miner already has active task";
