//! The pool's rules (pool.md §3) as pure functions over plain data: windows and epochs,
//! task and lease expiry, evaluation assignment, parent choice, evaluation consensus
//! and accuracy, reputation, evaluator eligibility, capped proportional payouts and the
//! Merkle tree that makes each closed epoch provable. Storage and HTTP live elsewhere
//! ([`super::state`] applies these inside one transaction per operation, [`super::api`]).

use super::state::{
    Algorithm, Assignment, EpochLedger, Lease, Payout, Refusal, TaskBatch, TaskKind, WorkStatus,
};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// Lease window containing `now` (unix seconds).
pub fn window_number(now: f64, window_s: u64) -> u64 {
    (now.max(0.0) / window_s.max(1) as f64).floor() as u64
}

/// Seconds until the window containing `now` ends.
pub fn window_remaining(now: f64, window_s: u64) -> f64 {
    let w = window_s.max(1) as f64;
    (window_number(now, window_s) as f64 + 1.0) * w - now
}

/// Epoch containing `now`; epoch `n` covers `[n·epoch_s, (n+1)·epoch_s)`.
pub fn epoch_number(now: f64, epoch_s: u64) -> u64 {
    window_number(now, epoch_s)
}

use crate::tasks::suite::median_f64 as median;

/// An evaluation is accurate when within `tolerance` of the median's magnitude (at
/// least 1e-6 absolute). Equal values (including equal infinities) are accurate.
pub fn is_accurate(score: f64, median: f64, tolerance: f64) -> bool {
    if score == median {
        return true;
    }
    if !score.is_finite() || !median.is_finite() {
        return false;
    }
    let allowed = (tolerance * median.abs()).max(1e-6);
    (score - median).abs() <= allowed
}

/// The outcome of `evals_required` independent evaluations of one evolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Consensus {
    pub score: f64,
    /// Per evaluation, in the order given.
    pub accurate: Vec<bool>,
}

/// Consensus score (median) and each evaluation's accuracy.
pub fn consensus(scores: &[f64], tolerance: f64) -> Consensus {
    let m = median(scores);
    Consensus {
        score: m,
        accurate: scores
            .iter()
            .map(|&s| is_accurate(s, m, tolerance))
            .collect(),
    }
}

/// Reputation change of one evaluator.
pub fn evaluation_delta(accurate: bool) -> f64 {
    if accurate {
        1.0
    } else {
        -1.0
    }
}

/// Reputation after applying `delta`, floored at 0; returns (new value, applied delta).
pub fn apply_reputation(current: f64, delta: f64) -> (f64, f64) {
    let next = (current + delta).max(0.0);
    (next, next - current)
}

/// Reputation an evolution's author earns: `2 × consensus` when the consensus reaches
/// `min_score` and beats every parent whose score is known, else nothing.
pub fn evolution_reward(consensus: f64, min_score: f64, best_parent: Option<f64>) -> f64 {
    let beats = best_parent.map_or(true, |p| consensus > p);
    if consensus.is_finite() && consensus >= min_score && beats {
        2.0 * consensus
    } else {
        0.0
    }
}

/// Whether `hotkey` may be handed this evolution to evaluate: not its author, has not
/// evaluated it, is not already assigned it, and the evaluations done plus the live
/// assignments still fall short of `required`.
pub fn can_evaluate(
    author: Option<&str>,
    evaluated_by: &[&str],
    assigned_to: &[&str],
    required: usize,
    hotkey: &str,
) -> bool {
    author != Some(hotkey)
        && !evaluated_by.contains(&hotkey)
        && !assigned_to.contains(&hotkey)
        && evaluated_by.len() + assigned_to.len() < required
}

/// Whether an evaluation `hotkey` submits is taken: the evolution still awaits
/// evaluations (`pending`, fewer than `required`), and `hotkey` is neither its author nor
/// one of its evaluators.
pub fn accepts_evaluation(
    pending: bool,
    author: Option<&str>,
    evaluated_by: &[&str],
    required: usize,
    hotkey: &str,
) -> bool {
    pending
        && author != Some(hotkey)
        && !evaluated_by.contains(&hotkey)
        && evaluated_by.len() < required
}

/// What becomes of a miner's active task when the miner is next seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskFate {
    /// Active and in time: the miner still holds it.
    Held,
    /// Active but its time is up (`expires_at <= now`): it is marked expired and the
    /// miner is free.
    Expires,
    /// Already completed or expired, or gone: the miner is free.
    Released,
}

/// The fate of a miner's active task `task` at `now`.
pub fn task_fate(task: Option<&TaskBatch>, now: f64) -> TaskFate {
    match task {
        Some(t) if t.status == WorkStatus::Active && t.expires_at <= now => TaskFate::Expires,
        Some(t) if t.status == WorkStatus::Active => TaskFate::Held,
        _ => TaskFate::Released,
    }
}

/// The task `hotkey` submits `kind` work for at `now`, if it may: it must be the
/// miner's own task, still active and in time, and of that kind.
pub fn check_task_submission(
    task: Option<TaskBatch>,
    hotkey: &str,
    kind: TaskKind,
    now: f64,
) -> Result<TaskBatch, Refusal> {
    let Some(t) = task.filter(|t| t.hotkey == hotkey) else {
        return Err(Refusal::not_found("Task not found"));
    };
    if t.status != WorkStatus::Active || t.expires_at <= now {
        return Err(Refusal::not_found("Task is no longer active"));
    }
    if t.kind != kind {
        return Err(Refusal::bad_request(format!(
            "Task {} is an {} task",
            t.batch_id,
            t.kind.as_str()
        )));
    }
    Ok(t)
}

/// A lease issued at `now`: the window it counts against (a miner gets one lease per
/// window) and its deadline, a full window after issue, so a lease taken late in a
/// window still gets a window's time.
pub fn lease_terms(now: f64, window_s: u64) -> (u64, f64) {
    (window_number(now, window_s), now + window_s as f64)
}

/// Where a lease stands when `hotkey` submits it at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStanding {
    /// No active lease of that id held by `hotkey`.
    Unknown,
    /// Active, but its deadline passed: it is marked expired (and that is kept).
    TimedOut,
    /// Active and in time: the submission is taken.
    Live,
}

/// The standing of `lease` for a submission by `hotkey` at `now`.
pub fn lease_standing(lease: Option<&Lease>, hotkey: &str, now: f64) -> LeaseStanding {
    match lease {
        Some(l) if l.hotkey == hotkey && l.status == WorkStatus::Active => {
            if l.timeout_at <= now {
                LeaseStanding::TimedOut
            } else {
                LeaseStanding::Live
            }
        }
        _ => LeaseStanding::Unknown,
    }
}

/// Assign `a` to `hotkey` for evaluation until `expires_at`, if [`can_evaluate`] allows
/// it given the evaluations done and the assignments still live at `now` (an
/// assignment lapses at its `expires_at`); lapsed assignments are dropped. Returns
/// whether it was assigned; `a` is unchanged when not.
pub fn assign_evaluation(
    a: &mut Algorithm,
    hotkey: &str,
    required: usize,
    now: f64,
    expires_at: f64,
) -> bool {
    let evaluated: Vec<&str> = a.evaluations.iter().map(|e| e.hotkey.as_str()).collect();
    let assigned: Vec<&str> = a
        .assignments
        .iter()
        .filter(|x| x.expires_at > now)
        .map(|x| x.hotkey.as_str())
        .collect();
    if !can_evaluate(a.author.as_deref(), &evaluated, &assigned, required, hotkey) {
        return false;
    }
    a.assignments.retain(|x| x.expires_at > now);
    a.assignments.push(Assignment {
        hotkey: hotkey.to_string(),
        expires_at,
    });
    true
}

/// Best first: the higher score (none counts as -inf), then the older (lower) id.
pub fn best_first(a: &Algorithm, b: &Algorithm) -> Ordering {
    let sa = a.score.unwrap_or(f64::NEG_INFINITY);
    let sb = b.score.unwrap_or(f64::NEG_INFINITY);
    sb.total_cmp(&sa).then(a.id.cmp(&b.id))
}

/// Parents handed out for evolving: `verified` (the best verified algorithms, already
/// best first), then `seeds` best first, up to `limit` in all (at least one, so an
/// empty pool still hands out a seed).
pub fn choose_parents(
    verified: Vec<Algorithm>,
    mut seeds: Vec<Algorithm>,
    limit: usize,
) -> Vec<Algorithm> {
    let mut out = verified;
    seeds.sort_by(best_first);
    for s in seeds {
        if out.len() >= limit.max(1) {
            break;
        }
        out.push(s);
    }
    out
}

/// What a complete set of evaluations decides about an evolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The consensus score; `None` when it is not finite.
    pub score: Option<f64>,
    /// Per evaluation, in the order given.
    pub accurate: Vec<bool>,
    /// Reputation the author earns (before the floor at 0 is applied).
    pub author_reward: f64,
}

/// Decide an evolution from its evaluations (`None` = a non-finite score, counted as
/// `-inf`): consensus, each evaluator's accuracy, the author's reward against the best
/// known parent score.
pub fn decide(
    scores: &[Option<f64>],
    tolerance: f64,
    min_evolution_score: f64,
    best_parent: Option<f64>,
) -> Decision {
    let raw: Vec<f64> = scores
        .iter()
        .map(|s| s.unwrap_or(f64::NEG_INFINITY))
        .collect();
    let c = consensus(&raw, tolerance);
    Decision {
        score: c.score.is_finite().then_some(c.score),
        accurate: c.accurate,
        author_reward: evolution_reward(c.score, min_evolution_score, best_parent),
    }
}

/// The parameters of an epoch's payout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PayoutParams {
    pub epoch_s: u64,
    pub budget_rao: u64,
    pub payout_cap: f64,
    pub min_payout_rao: u64,
}

/// Close epoch `epoch`: `earned` is `(hotkey, reputation earned)` sorted by hotkey and
/// `carry_in` what each of them had carried over. Each earner gets its capped share of
/// the budget plus its carry; amounts below `min_payout_rao` are carried on instead of
/// paid. The paid entries are the Merkle leaves, in order.
pub fn settle_epoch(
    epoch: u64,
    earned: &[(String, f64)],
    carry_in: &[u64],
    p: PayoutParams,
    now: f64,
) -> EpochLedger {
    let weights: Vec<f64> = earned.iter().map(|(_, w)| w.max(0.0)).collect();
    let (shares, undistributed) = split_budget(&weights, p.budget_rao, p.payout_cap);
    let mut payouts = Vec::new();
    let mut carried = Vec::new();
    for (((hotkey, rep), share), carry) in earned.iter().zip(shares).zip(carry_in) {
        let amount = share + carry;
        if amount == 0 {
            continue;
        }
        if amount < p.min_payout_rao {
            carried.push((hotkey.clone(), amount));
        } else {
            payouts.push(Payout {
                hotkey: hotkey.clone(),
                reputation: *rep,
                amount_rao: amount,
            });
        }
    }
    let leaves: Vec<[u8; 32]> = payouts
        .iter()
        .map(|x| merkle_leaf(&x.hotkey, x.amount_rao))
        .collect();
    EpochLedger {
        number: epoch,
        start_s: epoch * p.epoch_s,
        end_s: (epoch + 1) * p.epoch_s,
        closed_at: now,
        budget_rao: p.budget_rao,
        payout_cap: p.payout_cap,
        payouts,
        carried,
        undistributed_rao: undistributed,
        merkle_root: hex::encode(merkle_root(&leaves)),
    }
}

/// Split `budget` in proportion to `weights` (non-positive weights get nothing), no
/// share above `cap × budget`: capped shares are fixed and the excess is redistributed
/// over the others in proportion (water filling). Integer rao: floors, then the
/// leftover units go one each by largest remainder (ties by input order) to those
/// below the cap. Returns the amounts (in input order) and what could not be paid
/// because every earner is at the cap.
pub fn split_budget(weights: &[f64], budget: u64, cap: f64) -> (Vec<u64>, u64) {
    let n = weights.len();
    let mut amounts = vec![0u64; n];
    let cap_amount = (cap.clamp(0.0, 1.0) * budget as f64).floor() as u64;
    let mut exact = vec![0f64; n];
    let mut capped = vec![false; n];
    let eligible: Vec<usize> = (0..n)
        .filter(|&i| weights[i] > 0.0 && weights[i].is_finite())
        .collect();
    if eligible.is_empty() || budget == 0 {
        return (amounts, budget);
    }
    loop {
        let fixed: f64 = eligible
            .iter()
            .filter(|&&i| capped[i])
            .map(|_| cap_amount as f64)
            .sum();
        let free: Vec<usize> = eligible.iter().copied().filter(|&i| !capped[i]).collect();
        let total_w: f64 = free.iter().map(|&i| weights[i]).sum();
        let remaining = (budget as f64 - fixed).max(0.0);
        let mut newly_capped = false;
        for &i in &free {
            exact[i] = remaining * weights[i] / total_w;
            if exact[i] > cap_amount as f64 {
                capped[i] = true;
                newly_capped = true;
            }
        }
        for &i in eligible.iter().filter(|&&i| capped[i]) {
            exact[i] = cap_amount as f64;
        }
        if !newly_capped || free.is_empty() {
            break;
        }
    }
    for &i in &eligible {
        amounts[i] = (exact[i].floor() as u64).min(cap_amount);
    }
    let target = (exact.iter().sum::<f64>().round() as u64).min(budget);
    let mut paid: u64 = amounts.iter().sum();
    let mut order: Vec<usize> = eligible
        .iter()
        .copied()
        .filter(|&i| amounts[i] < cap_amount)
        .collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for i in order {
        if paid >= target {
            break;
        }
        amounts[i] += 1;
        paid += 1;
    }
    (amounts, budget - paid)
}

/// SHA-256 leaf of a payout: `0x00 ‖ hotkey ‖ 0x00 ‖ amount (u64 big-endian)`. The
/// prefixes keep leaves and inner nodes apart (no second-preimage via a 64-byte leaf).
pub fn merkle_leaf(hotkey: &str, amount_rao: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(hotkey.as_bytes());
    h.update([0u8]);
    h.update(amount_rao.to_be_bytes());
    h.finalize().into()
}

/// Inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn merkle_node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// One step of a proof: the sibling hash and whether it sits on the left.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProofStep {
    pub sibling: String,
    pub left: bool,
}

fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => merkle_node(l, r),
            // An odd node is promoted unchanged.
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// Root over `leaves` in the given order (all zeros for none).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return [0u8; 32];
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// The proof that `leaves[index]` is under [`merkle_root`] of `leaves`.
pub fn merkle_proof(leaves: &[[u8; 32]], mut index: usize) -> Vec<ProofStep> {
    let mut proof = Vec::new();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let sibling = index ^ 1;
        if sibling < level.len() {
            proof.push(ProofStep {
                sibling: hex::encode(level[sibling]),
                left: sibling < index,
            });
        }
        level = next_level(&level);
        index /= 2;
    }
    proof
}

/// Whether `leaf` with `proof` hashes up to `root`.
pub fn verify_proof(leaf: [u8; 32], proof: &[ProofStep], root: &[u8; 32]) -> bool {
    let mut acc = leaf;
    for step in proof {
        let Ok(bytes) = hex::decode(&step.sibling) else {
            return false;
        };
        let Ok(sib) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            return false;
        };
        acc = if step.left {
            merkle_node(&sib, &acc)
        } else {
            merkle_node(&acc, &sib)
        };
    }
    &acc == root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::state::{AlgorithmStatus, EvaluationRecord};

    fn task(status: WorkStatus, expires_at: f64) -> TaskBatch {
        TaskBatch {
            batch_id: 7,
            hotkey: "A".into(),
            kind: TaskKind::Evaluate,
            algorithm_ids: vec![1],
            issued_at: 0.0,
            expires_at,
            status,
        }
    }

    #[test]
    fn a_task_is_held_until_its_time_is_up() {
        let active = task(WorkStatus::Active, 100.0);
        assert_eq!(task_fate(Some(&active), 99.9), TaskFate::Held);
        assert_eq!(task_fate(Some(&active), 100.0), TaskFate::Expires);
        let done = task(WorkStatus::Completed, 100.0);
        assert_eq!(task_fate(Some(&done), 50.0), TaskFate::Released);
        let expired = task(WorkStatus::Expired, 100.0);
        assert_eq!(task_fate(Some(&expired), 50.0), TaskFate::Released);
        assert_eq!(task_fate(None, 50.0), TaskFate::Released);
    }

    #[test]
    fn only_the_holder_submits_a_live_task_of_its_kind() {
        let t = || Some(task(WorkStatus::Active, 100.0));
        let ok = check_task_submission(t(), "A", TaskKind::Evaluate, 50.0);
        assert_eq!(ok.map(|t| t.batch_id), Ok(7));
        let detail = |r: Result<TaskBatch, Refusal>| r.map(|_| ()).unwrap_err();
        let not_found = Refusal::not_found("Task not found");
        assert_eq!(
            detail(check_task_submission(t(), "B", TaskKind::Evaluate, 50.0)),
            not_found
        );
        assert_eq!(
            detail(check_task_submission(None, "A", TaskKind::Evaluate, 50.0)),
            not_found
        );
        let gone = Refusal::not_found("Task is no longer active");
        assert_eq!(
            detail(check_task_submission(t(), "A", TaskKind::Evaluate, 100.0)),
            gone
        );
        let done = Some(task(WorkStatus::Completed, 100.0));
        assert_eq!(
            detail(check_task_submission(done, "A", TaskKind::Evaluate, 50.0)),
            gone
        );
        assert_eq!(
            detail(check_task_submission(t(), "A", TaskKind::Evolve, 50.0)),
            Refusal::bad_request("Task 7 is an evaluate task")
        );
    }

    #[test]
    fn a_lease_counts_against_its_window_and_lasts_a_window() {
        assert_eq!(lease_terms(3590.0, 3600), (0, 7190.0));
        assert_eq!(lease_terms(3600.0, 3600), (1, 7200.0));
        let lease = |status| Lease {
            lease_id: 1,
            hotkey: "A".into(),
            window_number: 0,
            issued_at: 0.0,
            timeout_at: 100.0,
            evolve_budget: 1,
            evaluate_ids: vec![],
            seed_ids: vec![],
            status,
            completed_at: None,
            iterations: 0,
        };
        let active = lease(WorkStatus::Active);
        assert_eq!(
            lease_standing(Some(&active), "A", 99.0),
            LeaseStanding::Live
        );
        assert_eq!(
            lease_standing(Some(&active), "A", 100.0),
            LeaseStanding::TimedOut
        );
        assert_eq!(
            lease_standing(Some(&active), "B", 50.0),
            LeaseStanding::Unknown
        );
        let done = lease(WorkStatus::Completed);
        assert_eq!(
            lease_standing(Some(&done), "A", 50.0),
            LeaseStanding::Unknown
        );
        assert_eq!(lease_standing(None, "A", 50.0), LeaseStanding::Unknown);
    }

    fn algorithm(id: u64, score: Option<f64>) -> Algorithm {
        Algorithm {
            id,
            dsl: String::new(),
            task_type: "scalar_linear".into(),
            input_dim: 4,
            author: Some("A".into()),
            parent_ids: vec![],
            created_at: 0.0,
            status: AlgorithmStatus::Pending,
            score,
            verified_at: None,
            evaluations: vec![],
            assignments: vec![],
            reward: 0.0,
            origin: String::new(),
        }
    }

    #[test]
    fn lapsed_assignments_free_their_place() {
        let mut a = algorithm(1, None);
        a.evaluations.push(EvaluationRecord {
            hotkey: "B".into(),
            score: Some(0.5),
            submitted_at: 0.0,
            accurate: None,
        });
        assert!(assign_evaluation(&mut a, "C", 3, 0.0, 10.0));
        // Two places taken (B evaluated, C assigned): D gets the last one.
        assert!(assign_evaluation(&mut a, "D", 3, 0.0, 20.0));
        let before = a.clone();
        assert!(!assign_evaluation(&mut a, "E", 3, 5.0, 30.0), "full");
        assert!(!assign_evaluation(&mut a, "A", 3, 50.0, 60.0), "author");
        assert!(!assign_evaluation(&mut a, "B", 3, 50.0, 60.0), "evaluated");
        assert_eq!(a, before, "refusals change nothing");
        // At 10 C's assignment lapsed: E takes its place, and C's record is dropped.
        assert!(assign_evaluation(&mut a, "E", 3, 10.0, 30.0));
        let held: Vec<(&str, f64)> = a
            .assignments
            .iter()
            .map(|x| (x.hotkey.as_str(), x.expires_at))
            .collect();
        assert_eq!(held, [("D", 20.0), ("E", 30.0)]);
        // At 30 both lapsed: D may take it again, alone on the list.
        assert!(assign_evaluation(&mut a, "D", 3, 30.0, 40.0));
        assert_eq!(a.assignments.len(), 1);
    }

    #[test]
    fn parents_are_the_best_verified_then_the_best_seeds() {
        let ids = |v: Vec<Algorithm>| v.iter().map(|a| a.id).collect::<Vec<_>>();
        let seeds = || {
            vec![
                algorithm(5, None),
                algorithm(4, Some(0.1)),
                algorithm(3, None),
            ]
        };
        let verified = vec![algorithm(9, Some(0.9)), algorithm(8, Some(0.2))];
        assert_eq!(ids(choose_parents(verified.clone(), seeds(), 2)), [9, 8]);
        assert_eq!(ids(choose_parents(verified, seeds(), 4)), [9, 8, 4, 3]);
        // An empty pool still hands out one seed, even for a limit of 0.
        assert_eq!(ids(choose_parents(vec![], seeds(), 0)), [4]);
        let mut tied = vec![
            algorithm(2, Some(0.5)),
            algorithm(1, Some(0.5)),
            algorithm(0, None),
        ];
        tied.sort_by(best_first);
        assert_eq!(ids(tied), [1, 2, 0]);
    }

    #[test]
    fn evaluations_are_taken_once_per_evaluator_until_decided() {
        let by = ["B", "C"];
        assert!(accepts_evaluation(true, Some("A"), &by, 3, "D"));
        assert!(!accepts_evaluation(true, Some("A"), &by, 3, "A"), "author");
        assert!(!accepts_evaluation(true, Some("A"), &by, 3, "B"), "twice");
        assert!(
            !accepts_evaluation(true, Some("A"), &by, 2, "D"),
            "complete"
        );
        assert!(
            !accepts_evaluation(false, Some("A"), &by, 3, "D"),
            "decided"
        );
    }

    #[test]
    fn decide_scores_accuracy_and_reward() {
        let d = decide(&[Some(0.9), Some(0.92), None], 0.1, 0.0, Some(0.5));
        assert_eq!(d.score, Some(0.9));
        assert_eq!(d.accurate, vec![true, true, false]);
        assert_eq!(d.author_reward, 1.8);
        // Not better than a parent: no reward.
        assert_eq!(
            decide(&[Some(0.4); 3], 0.1, 0.0, Some(0.5)).author_reward,
            0.0
        );
        // A non-finite consensus has no score and earns nothing.
        let d = decide(&[None, None, Some(0.3)], 0.1, 0.0, None);
        assert_eq!((d.score, d.author_reward), (None, 0.0));
    }

    #[test]
    fn settle_epoch_pays_carries_and_balances() {
        let p = PayoutParams {
            epoch_s: 100,
            budget_rao: 1000,
            payout_cap: 1.0,
            min_payout_rao: 50,
        };
        let earned = vec![
            ("a".to_string(), 9.0),
            ("b".to_string(), 0.3),
            ("c".to_string(), 0.0),
        ];
        // b's share (~32) is below the minimum: carried; c has only its carry-in (60).
        let l = settle_epoch(7, &earned, &[0, 0, 60], p, 750.0);
        assert_eq!((l.start_s, l.end_s, l.closed_at), (700, 800, 750.0));
        let paid: Vec<(&str, u64)> = l
            .payouts
            .iter()
            .map(|x| (x.hotkey.as_str(), x.amount_rao))
            .collect();
        assert_eq!(paid, vec![("a", 968), ("c", 60)]);
        assert_eq!(l.carried, vec![("b".to_string(), 32)]);
        assert_eq!(l.undistributed_rao, 0);
        let leaves: Vec<[u8; 32]> = l
            .payouts
            .iter()
            .map(|x| merkle_leaf(&x.hotkey, x.amount_rao))
            .collect();
        assert_eq!(l.merkle_root, hex::encode(merkle_root(&leaves)));
    }

    #[test]
    fn windows_and_epochs() {
        assert_eq!(window_number(1199.9, 600), 1);
        assert_eq!(window_number(1200.0, 600), 2);
        assert!((window_remaining(1190.0, 600) - 10.0).abs() < 1e-9);
        assert_eq!(epoch_number(7200.0, 3600), 2);
    }

    #[test]
    fn consensus_median_and_tolerance() {
        let c = consensus(&[0.9, 0.95, 0.5], 0.1);
        assert_eq!(c.score, 0.9);
        assert_eq!(c.accurate, vec![true, true, false]);
        // Even count: mean of the middle two.
        assert_eq!(median(&[1.0, 4.0, 2.0, 3.0]), 2.5);
        // The absolute floor applies around zero.
        assert!(is_accurate(5e-7, 0.0, 0.1));
        assert!(!is_accurate(2e-6, 0.0, 0.1));
        // Non-finite scores order deterministically; equal infinities agree.
        let c = consensus(&[f64::NEG_INFINITY, f64::NEG_INFINITY, 0.3], 0.1);
        assert_eq!(c.score, f64::NEG_INFINITY);
        assert_eq!(c.accurate, vec![true, true, false]);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn reputation_rules() {
        assert_eq!(apply_reputation(0.5, -1.0), (0.0, -0.5));
        assert_eq!(apply_reputation(2.0, 1.0), (3.0, 1.0));
        assert_eq!(evolution_reward(0.8, 0.7, Some(0.75)), 1.6);
        assert_eq!(evolution_reward(0.8, 0.7, Some(0.8)), 0.0);
        assert_eq!(evolution_reward(0.6, 0.7, None), 0.0);
        assert_eq!(evolution_reward(0.7, 0.7, None), 1.4);
        assert_eq!(evolution_reward(f64::INFINITY, 0.7, None), 0.0);
    }

    #[test]
    fn evaluator_eligibility() {
        let author = Some("A");
        assert!(!can_evaluate(author, &[], &[], 3, "A"));
        assert!(can_evaluate(author, &["B"], &["C"], 3, "D"));
        assert!(!can_evaluate(author, &["B"], &["C", "E"], 3, "D"));
        assert!(!can_evaluate(author, &["D"], &[], 3, "D"));
        assert!(!can_evaluate(author, &[], &["D"], 3, "D"));
        assert!(can_evaluate(None, &[], &[], 1, "A"));
    }

    #[test]
    fn split_is_proportional_and_capped() {
        let (a, left) = split_budget(&[1.0, 1.0, 2.0], 1000, 1.0);
        assert_eq!((a, left), (vec![250, 250, 500], 0));
        // Cap 0.4: the heavy earner is capped, the excess goes to the others.
        let (a, left) = split_budget(&[1.0, 1.0, 8.0], 1000, 0.4);
        assert_eq!(a, vec![300, 300, 400]);
        assert_eq!(left, 0);
        // Cascading cap.
        let (a, left) = split_budget(&[1.0, 2.0, 3.0, 100.0], 1000, 0.3);
        assert!(a.iter().all(|&x| x <= 300), "{a:?}");
        assert_eq!(a.iter().sum::<u64>() + left, 1000);
        assert_eq!(left, 0);
        // Everyone capped: the rest is undistributed.
        let (a, left) = split_budget(&[1.0, 5.0], 1000, 0.05);
        assert_eq!(a, vec![50, 50]);
        assert_eq!(left, 900);
        // Rounding: the sum is the budget exactly.
        let (a, left) = split_budget(&[1.0, 1.0, 1.0], 100, 1.0);
        assert_eq!(a.iter().sum::<u64>(), 100);
        assert_eq!(left, 0);
        // No positive weight: nothing paid.
        let (a, left) = split_budget(&[0.0, -1.0], 100, 1.0);
        assert_eq!((a, left), (vec![0, 0], 100));
    }

    proptest::proptest! {
        #[test]
        fn split_never_overpays_and_fills_when_it_can(
            weights in proptest::collection::vec(0.0f64..100.0, 0..12),
            budget in 0u64..10_000_000,
            cap in 0.01f64..1.0,
        ) {
            let (a, left) = split_budget(&weights, budget, cap);
            let cap_amount = (cap * budget as f64).floor() as u64;
            proptest::prop_assert_eq!(a.iter().sum::<u64>() + left, budget);
            proptest::prop_assert!(a.iter().all(|&x| x <= cap_amount));
            for (w, x) in weights.iter().zip(&a) {
                if *w <= 0.0 {
                    proptest::prop_assert_eq!(*x, 0);
                }
            }
            // Money is left over only when every earner is (within a unit) at the cap.
            let earners: Vec<u64> =
                weights.iter().zip(&a).filter(|(w, _)| **w > 0.0).map(|(_, x)| *x).collect();
            if left > earners.len() as u64 && !earners.is_empty() {
                proptest::prop_assert!(earners.iter().all(|&x| x + 1 >= cap_amount));
            }
        }
    }

    #[test]
    fn merkle_proofs_verify_and_detect_tampering() {
        for n in 1..=7usize {
            let leaves: Vec<[u8; 32]> = (0..n)
                .map(|i| merkle_leaf(&format!("hk{i}"), 100 + i as u64))
                .collect();
            let root = merkle_root(&leaves);
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = merkle_proof(&leaves, i);
                assert!(verify_proof(*leaf, &proof, &root), "n={n} i={i}");
                let forged = merkle_leaf(&format!("hk{i}"), 999);
                assert!(!verify_proof(forged, &proof, &root));
            }
        }
        assert_eq!(merkle_root(&[]), [0u8; 32]);
    }
}
