//! The pool's cross-tree invariants, as one pure function over a snapshot of its state.
//!
//! Every pool operation writes several trees in one transaction ([`super::state`]); these
//! are the facts that hold only if no operation was ever half-applied: a miner's counters
//! match the records they count, reputation matches its epoch bookings, pending marks
//! match algorithm status, tasks and leases match their miners, and the carry-overs match
//! the ledgers that made them. The pool checks them at start-up (a violation is logged),
//! and the crash test checks them after `kill -9`.

use super::rules;
use super::state::{Algorithm, AlgorithmStatus, EpochLedger, Lease, Miner, TaskBatch, WorkStatus};
use std::collections::{BTreeMap, BTreeSet};

/// Everything the invariants relate, read from the store.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub evals_required: usize,
    pub miners: Vec<Miner>,
    pub algorithms: Vec<Algorithm>,
    pub pending: Vec<u64>,
    pub tasks: Vec<TaskBatch>,
    pub leases: Vec<Lease>,
    /// `(hotkey, window, lease id)` of the one-lease-per-window index.
    pub lease_index: Vec<(String, u64, u64)>,
    /// `(epoch, hotkey, reputation earned)`.
    pub earned: Vec<(u64, String, f64)>,
    pub ledgers: Vec<EpochLedger>,
    pub carry: Vec<(String, u64)>,
}

/// Reputation is a sum of the same deltas as its bookings, in another order.
const REPUTATION_SLACK: f64 = 1e-6;

/// Every violated invariant, described (empty = consistent).
pub fn audit(s: &Snapshot) -> Vec<String> {
    let mut bad = Vec::new();
    audit_algorithms(s, &mut bad);
    audit_miners(s, &mut bad);
    audit_tasks_and_leases(s, &mut bad);
    audit_ledgers(s, &mut bad);
    bad
}

fn audit_algorithms(s: &Snapshot, bad: &mut Vec<String>) {
    let pending: BTreeSet<u64> = s.pending.iter().copied().collect();
    for a in &s.algorithms {
        let marked = pending.contains(&a.id);
        let decided = a
            .evaluations
            .iter()
            .filter(|e| e.accurate.is_some())
            .count();
        match a.status {
            AlgorithmStatus::Pending => {
                if !marked {
                    bad.push(format!("algorithm {}: pending but not marked", a.id));
                }
                if decided > 0 || a.evaluations.len() >= s.evals_required {
                    bad.push(format!("algorithm {}: pending with a decision", a.id));
                }
            }
            AlgorithmStatus::Verified => {
                if marked {
                    bad.push(format!("algorithm {}: verified but marked pending", a.id));
                }
                if decided != a.evaluations.len() || a.evaluations.len() < s.evals_required {
                    bad.push(format!(
                        "algorithm {}: verified without a full decision",
                        a.id
                    ));
                }
            }
            AlgorithmStatus::Seed => {
                if marked || !a.evaluations.is_empty() {
                    bad.push(format!("seed {}: evaluated or marked pending", a.id));
                }
            }
        }
    }
    let known: BTreeSet<u64> = s.algorithms.iter().map(|a| a.id).collect();
    for id in pending.difference(&known) {
        bad.push(format!("pending mark {id} without an algorithm"));
    }
}

/// Per hotkey: evaluations, decided evaluations (accurate, inaccurate), evolutions.
type Counts = BTreeMap<String, (u64, u64, u64, u64)>;

fn audit_miners(s: &Snapshot, bad: &mut Vec<String>) {
    let mut counts = Counts::new();
    for a in &s.algorithms {
        if let Some(author) = &a.author {
            counts.entry(author.clone()).or_default().3 += 1;
        }
        for e in &a.evaluations {
            let c = counts.entry(e.hotkey.clone()).or_default();
            c.0 += 1;
            match e.accurate {
                Some(true) => c.1 += 1,
                Some(false) => c.2 += 1,
                None => {}
            }
        }
    }
    let mut earned: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, hotkey, r) in &s.earned {
        *earned.entry(hotkey).or_default() += r;
    }
    let mut leases: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &s.leases {
        *leases.entry(&l.hotkey).or_default() += 1;
    }
    let registered: BTreeSet<&str> = s.miners.iter().map(|m| m.hotkey.as_str()).collect();
    for m in &s.miners {
        let (evals, accurate, inaccurate, evolutions) =
            counts.get(&m.hotkey).copied().unwrap_or_default();
        let mine = (
            m.evaluations,
            m.accurate_evaluations,
            m.inaccurate_evaluations,
            m.evolutions,
        );
        if mine != (evals, accurate, inaccurate, evolutions) {
            bad.push(format!(
                "miner {}: counters (evaluations, accurate, inaccurate, evolutions) {mine:?} \
                 but the records say {:?}",
                m.hotkey,
                (evals, accurate, inaccurate, evolutions)
            ));
        }
        let booked = earned.get(m.hotkey.as_str()).copied().unwrap_or(0.0);
        if (m.reputation - booked).abs() > REPUTATION_SLACK {
            bad.push(format!(
                "miner {}: reputation {} but {booked} booked to epochs",
                m.hotkey, m.reputation
            ));
        }
        let issued = leases.get(m.hotkey.as_str()).copied().unwrap_or(0);
        if m.leases != issued {
            bad.push(format!(
                "miner {}: {} leases counted, {issued} stored",
                m.hotkey, m.leases
            ));
        }
    }
    let with_records: BTreeSet<&str> = counts
        .keys()
        .map(String::as_str)
        .chain(earned.keys().copied())
        .collect();
    for hotkey in with_records.difference(&registered) {
        bad.push(format!("{hotkey}: has records but no miner entry"));
    }
}

fn audit_tasks_and_leases(s: &Snapshot, bad: &mut Vec<String>) {
    let miners: BTreeMap<&str, &Miner> = s.miners.iter().map(|m| (m.hotkey.as_str(), m)).collect();
    let tasks: BTreeMap<u64, &TaskBatch> = s.tasks.iter().map(|t| (t.batch_id, t)).collect();
    for t in &s.tasks {
        let holder = miners.get(t.hotkey.as_str()).and_then(|m| m.active_task);
        if t.status == WorkStatus::Active && holder != Some(t.batch_id) {
            bad.push(format!(
                "task {}: active but not its miner's task",
                t.batch_id
            ));
        }
    }
    for m in &s.miners {
        if let Some(id) = m.active_task {
            let ok = tasks
                .get(&id)
                .is_some_and(|t| t.hotkey == m.hotkey && t.status == WorkStatus::Active);
            if !ok {
                bad.push(format!(
                    "miner {}: active task {id} is not active",
                    m.hotkey
                ));
            }
        }
    }
    let leases: BTreeMap<u64, &Lease> = s.leases.iter().map(|l| (l.lease_id, l)).collect();
    for (hotkey, window, id) in &s.lease_index {
        let ok = leases
            .get(id)
            .is_some_and(|l| &l.hotkey == hotkey && l.window_number == *window);
        if !ok {
            bad.push(format!(
                "lease index ({hotkey}, {window}) points to no lease {id}"
            ));
        }
    }
    if s.lease_index.len() != s.leases.len() {
        bad.push(format!(
            "{} leases but {} lease index entries",
            s.leases.len(),
            s.lease_index.len()
        ));
    }
}

fn audit_ledgers(s: &Snapshot, bad: &mut Vec<String>) {
    // The newest ledger naming a hotkey decides its carry: carried there = that amount
    // is still carried; paid there = nothing is.
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut ledgers: Vec<&EpochLedger> = s.ledgers.iter().collect();
    ledgers.sort_by_key(|l| l.number);
    for l in ledgers {
        let leaves: Vec<[u8; 32]> = l
            .payouts
            .iter()
            .map(|p| rules::merkle_leaf(&p.hotkey, p.amount_rao))
            .collect();
        if hex::encode(rules::merkle_root(&leaves)) != l.merkle_root {
            bad.push(format!(
                "epoch {}: Merkle root does not match its payouts",
                l.number
            ));
        }
        for p in &l.payouts {
            expected.remove(p.hotkey.as_str());
        }
        for (hotkey, amount) in &l.carried {
            expected.insert(hotkey, *amount);
        }
    }
    let stored: BTreeMap<&str, u64> = s.carry.iter().map(|(h, a)| (h.as_str(), *a)).collect();
    if stored != expected {
        bad.push(format!(
            "carry-overs {stored:?} do not match the ledgers' {expected:?}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::state::{EvaluationRecord, Payout};

    fn miner(hotkey: &str) -> Miner {
        Miner::new(hotkey, 0.0)
    }

    fn verified(id: u64, author: &str, evaluators: &[(&str, bool)]) -> Algorithm {
        Algorithm {
            id,
            dsl: String::new(),
            task_type: "scalar_linear".into(),
            input_dim: 16,
            author: Some(author.into()),
            parent_ids: Vec::new(),
            created_at: 0.0,
            status: AlgorithmStatus::Verified,
            score: Some(0.5),
            verified_at: Some(0.0),
            evaluations: evaluators
                .iter()
                .map(|(h, ok)| EvaluationRecord {
                    hotkey: (*h).into(),
                    score: Some(0.5),
                    submitted_at: 0.0,
                    accurate: Some(*ok),
                })
                .collect(),
            assignments: Vec::new(),
            reward: 0.0,
            origin: "evolution".into(),
        }
    }

    /// A consistent state: A evolved 1, B and C evaluated it (C inaccurately); epoch 0
    /// paid A and carried B's small amount.
    fn consistent() -> Snapshot {
        let mut a = miner("A");
        a.evolutions = 1;
        a.reputation = 1.0;
        let mut b = miner("B");
        (b.evaluations, b.accurate_evaluations, b.reputation) = (1, 1, 1.0);
        let mut c = miner("C");
        (c.evaluations, c.inaccurate_evaluations) = (1, 1);
        let payouts = vec![Payout {
            hotkey: "A".into(),
            reputation: 1.0,
            amount_rao: 90,
        }];
        let leaf = rules::merkle_leaf("A", 90);
        Snapshot {
            evals_required: 2,
            miners: vec![a, b, c],
            algorithms: vec![verified(1, "A", &[("B", true), ("C", false)])],
            earned: vec![(0, "A".into(), 1.0), (0, "B".into(), 1.0)],
            ledgers: vec![EpochLedger {
                number: 0,
                start_s: 0,
                end_s: 10,
                closed_at: 10.0,
                budget_rao: 100,
                payout_cap: 1.0,
                payouts,
                carried: vec![("B".into(), 10)],
                undistributed_rao: 0,
                merkle_root: hex::encode(rules::merkle_root(&[leaf])),
            }],
            carry: vec![("B".into(), 10)],
            ..Default::default()
        }
    }

    #[test]
    fn a_consistent_state_passes_and_each_half_write_is_caught() {
        assert_eq!(audit(&consistent()), Vec::<String>::new());
        type Break = fn(&mut Snapshot);
        let broken: Vec<(&str, Break)> = vec![
            ("counter without record", |s| s.miners[1].evaluations += 1),
            ("reputation without booking", |s| {
                s.miners[0].reputation += 2.0
            }),
            ("booking without reputation", |s| {
                s.earned.push((1, "C".into(), 1.0))
            }),
            ("verified but still pending", |s| s.pending.push(1)),
            ("ledger without its carry", |s| s.carry.clear()),
            ("carry without its ledger", |s| s.ledgers.clear()),
            ("task without its miner", |s| {
                s.tasks.push(TaskBatch {
                    batch_id: 7,
                    hotkey: "B".into(),
                    kind: crate::pool::state::TaskKind::Evolve,
                    algorithm_ids: vec![1],
                    issued_at: 0.0,
                    expires_at: 1.0,
                    status: WorkStatus::Active,
                })
            }),
            ("miner without its task", |s| {
                s.miners[2].active_task = Some(9)
            }),
            ("lease count", |s| s.miners[2].leases = 1),
        ];
        for (what, f) in broken {
            let mut s = consistent();
            f(&mut s);
            assert!(!audit(&s).is_empty(), "{what} not caught");
        }
    }
}
