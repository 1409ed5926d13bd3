//! Checks of a closed pool epoch ledger (pool.md §3), shared by the pool test suites.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Independent Merkle check (pool.md §3 leaf/node layout, as documented in rules.rs).
pub fn verify_payout(hotkey: &str, amount: u64, proof: &Value, root_hex: &str) -> bool {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(hotkey.as_bytes());
    h.update([0u8]);
    h.update(amount.to_be_bytes());
    let mut acc: Vec<u8> = h.finalize().to_vec();
    for step in proof.as_array().unwrap() {
        let sib = hex::decode(step["sibling"].as_str().unwrap()).unwrap();
        let mut h = Sha256::new();
        h.update([1u8]);
        if step["left"].as_bool().unwrap() {
            h.update(&sib);
            h.update(&acc);
        } else {
            h.update(&acc);
            h.update(&sib);
        }
        acc = h.finalize().to_vec();
    }
    hex::encode(acc) == root_hex
}

/// A closed ledger is consistent: payouts, carried and undistributed amounts add up to
/// the budget, no payout exceeds the cap, and every payout's Merkle proof verifies
/// against the root (and fails for any other amount).
pub fn check_ledger(ledger: &Value) {
    let budget = ledger["budget_rao"].as_u64().unwrap();
    let cap = ledger["payout_cap"].as_f64().unwrap();
    let payouts = ledger["payouts"].as_array().unwrap();
    let root = ledger["merkle_root"].as_str().unwrap();
    let total: u64 = payouts
        .iter()
        .map(|p| p["amount_rao"].as_u64().unwrap())
        .sum();
    let undistributed = ledger["undistributed_rao"].as_u64().unwrap();
    let carried: u64 = ledger["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount_rao"].as_u64().unwrap())
        .sum();
    assert_eq!(total + undistributed + carried, budget, "{ledger}");
    if payouts.len() as f64 * cap >= 1.0 {
        assert!(undistributed <= payouts.len() as u64, "{ledger}");
    }
    for p in payouts {
        let amount = p["amount_rao"].as_u64().unwrap();
        assert!(amount as f64 <= cap * budget as f64 + 1.0, "{p}");
        assert!(
            verify_payout(p["hotkey"].as_str().unwrap(), amount, &p["proof"], root),
            "proof of {p} against {root}"
        );
        assert!(!verify_payout(
            p["hotkey"].as_str().unwrap(),
            amount + 1,
            &p["proof"],
            root
        ));
    }
}
