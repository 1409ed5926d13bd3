//! The pool's stored state and the operations the API performs on it. Every operation
//! runs under one lock (the pool serialises its writes; its load is small next to the
//! evaluation work it hands out), writes everything it changes in one sled transaction
//! and commits before the caller answers: an acknowledged submission survives a crash,
//! and a crash never leaves half an operation (a miner's counters, the algorithm's
//! evaluations, reputation and its epoch booking, a ledger and its carry-overs agree).
//! Decisions are delegated to [`super::rules`].

use super::audit::Snapshot;
use super::rules;
use crate::config::PoolConfig;
use crate::store::{key_u64, u64_key, Store, StoreError, TxTree, TypedTree};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// Why the pool refuses a request: the request itself is wrong, or what it names does
/// not exist (any more). The HTTP shell gives each its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Invalid,
    NotFound,
}

/// A request the pool refuses: its kind and the `detail` text clients read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub detail: String,
}

impl Refusal {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Refusal {
            kind: RefusalKind::Invalid,
            detail: detail.into(),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Refusal {
            kind: RefusalKind::NotFound,
            detail: detail.into(),
        }
    }
}

/// A pool operation failure: a refusal (4xx) or a storage fault (500).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub use crate::protocol::pool::{ACTIVE_TASK, LEASE_ALREADY_ISSUED, NO_ACTIVE_LEASE};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Miner {
    pub hotkey: String,
    pub reputation: f64,
    pub registered_at: f64,
    pub last_seen: f64,
    pub evaluations: u64,
    pub evolutions: u64,
    pub accurate_evaluations: u64,
    pub inaccurate_evaluations: u64,
    pub leases: u64,
    /// The miner's unfinished task (batch id), if any.
    pub active_task: Option<u64>,
}

impl Miner {
    /// A miner first seen at `now`.
    pub fn new(hotkey: &str, now: f64) -> Miner {
        Miner {
            hotkey: hotkey.to_string(),
            reputation: 0.0,
            registered_at: now,
            last_seen: now,
            evaluations: 0,
            evolutions: 0,
            accurate_evaluations: 0,
            inaccurate_evaluations: 0,
            leases: 0,
            active_task: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum AlgorithmStatus {
    /// A starting point (empty program, relay SOTA); never evaluated.
    Seed,
    /// Waiting for `evals_required` evaluations.
    Pending,
    /// Consensus reached.
    Verified,
}

impl AlgorithmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlgorithmStatus::Seed => "seed",
            AlgorithmStatus::Pending => "pending",
            AlgorithmStatus::Verified => "verified",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvaluationRecord {
    pub hotkey: String,
    /// `None` = non-finite (a program whose predictions blew up scores `-inf`).
    pub score: Option<f64>,
    pub submitted_at: f64,
    /// Set when consensus is reached.
    pub accurate: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Assignment {
    pub hotkey: String,
    pub expires_at: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Algorithm {
    pub id: u64,
    /// Canonical DSL (dialect A).
    pub dsl: String,
    pub task_type: String,
    pub input_dim: usize,
    pub author: Option<String>,
    pub parent_ids: Vec<u64>,
    pub created_at: f64,
    pub status: AlgorithmStatus,
    /// Consensus score (verified) or the known score of a seed (relay SOTA).
    pub score: Option<f64>,
    pub verified_at: Option<f64>,
    pub evaluations: Vec<EvaluationRecord>,
    pub assignments: Vec<Assignment>,
    /// Reputation the author earned for it.
    pub reward: f64,
    /// Where a seed came from (`empty`, `relay`).
    pub origin: String,
}

impl Algorithm {
    fn evaluators(&self) -> Vec<&str> {
        self.evaluations.iter().map(|e| e.hotkey.as_str()).collect()
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum WorkStatus {
    Active,
    Completed,
    Expired,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum TaskKind {
    Evolve,
    Evaluate,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Evolve => "evolve",
            TaskKind::Evaluate => "evaluate",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskBatch {
    pub batch_id: u64,
    pub hotkey: String,
    pub kind: TaskKind,
    pub algorithm_ids: Vec<u64>,
    pub issued_at: f64,
    pub expires_at: f64,
    pub status: WorkStatus,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub lease_id: u64,
    pub hotkey: String,
    pub window_number: u64,
    pub issued_at: f64,
    pub timeout_at: f64,
    pub evolve_budget: u32,
    pub evaluate_ids: Vec<u64>,
    pub seed_ids: Vec<u64>,
    pub status: WorkStatus,
    pub completed_at: Option<f64>,
    pub iterations: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Payout {
    pub hotkey: String,
    /// Reputation earned in the epoch (the payout weight).
    pub reputation: f64,
    /// Paid this epoch (its share plus any carried-in amount).
    pub amount_rao: u64,
}

/// An immutable closed-epoch ledger entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLedger {
    pub number: u64,
    pub start_s: u64,
    pub end_s: u64,
    pub closed_at: f64,
    pub budget_rao: u64,
    pub payout_cap: f64,
    /// Paid entries, sorted by hotkey (the Merkle leaves, in order).
    pub payouts: Vec<Payout>,
    /// Amounts below `min_payout_rao`, kept for a later epoch.
    pub carried: Vec<(String, u64)>,
    /// Budget nobody could take (every earner at the cap).
    pub undistributed_rao: u64,
    pub merkle_root: String,
}

/// Aggregate counters for stats and the monitor.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub miners: usize,
    pub algorithms: usize,
    pub verified: usize,
    pub pending_evaluations: usize,
    pub backlog: usize,
    pub active_tasks: usize,
    pub leases_issued_15m: usize,
    pub leases_completed_15m: usize,
    pub best_score: Option<f64>,
}

/// An evaluation a miner submits.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationIn {
    pub algorithm_id: u64,
    pub score: Option<f64>,
}

/// An evolution a miner submits (DSL already parsed and made canonical).
#[derive(Clone, Debug, PartialEq)]
pub struct EvolutionIn {
    pub parent_ids: Vec<u64>,
    pub dsl: String,
}

/// What the pool's lease carries.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedLease {
    pub lease: Lease,
    pub evaluate: Vec<Algorithm>,
    pub seeds: Vec<Algorithm>,
}

/// Outcome of a submission.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubmitOutcome {
    pub accepted_evaluations: usize,
    pub rejected_evaluations: usize,
    pub algorithm_ids: Vec<u64>,
    pub consensus_reached: Vec<u64>,
}

/// The pool's state in the store.
pub struct PoolState {
    store: Store,
    cfg: PoolConfig,
    lock: Mutex<()>,
    miners: TypedTree<Miner>,
    algorithms: TypedTree<Algorithm>,
    /// Ids of pending algorithms (value unused).
    pending: TypedTree<u8>,
    tasks: TypedTree<TaskBatch>,
    leases: TypedTree<Lease>,
    /// `hotkey ‖ 0 ‖ window` → lease id.
    lease_index: TypedTree<u64>,
    /// `epoch ‖ hotkey` → reputation earned in that epoch.
    earned: TypedTree<f64>,
    epochs: TypedTree<EpochLedger>,
    /// hotkey → payout carried over.
    carry: TypedTree<u64>,
    /// Named counters and markers.
    meta: TypedTree<f64>,
}

fn lease_index_key(hotkey: &str, window: u64) -> Vec<u8> {
    let mut k = hotkey.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&u64_key(window));
    k
}

fn earned_key(epoch: u64, hotkey: &str) -> Vec<u8> {
    let mut k = u64_key(epoch).to_vec();
    k.extend_from_slice(hotkey.as_bytes());
    k
}

/// How a pool transaction stops early: a refusal (nothing written) or a storage fault.
type TxError = ConflictableTransactionError<OpError>;
type TxResult<T> = Result<T, TxError>;

fn refuse<T>(r: Refusal) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(r.into()))
}

/// A store-only operation cannot be refused; should one be, it is reported as an abort.
fn store_only(e: OpError) -> StoreError {
    match e {
        OpError::Store(e) => e,
        OpError::Refused(r) => StoreError::Aborted(r.detail),
    }
}

/// The pool's trees inside one sled transaction. Every operation's writes go through
/// this, so that a crash leaves either all of them or none (miner counters, algorithm
/// evaluations, reputation and its epoch booking never disagree).
struct Tx<'a> {
    cfg: &'a PoolConfig,
    miners: TxTree<'a, Miner>,
    algorithms: TxTree<'a, Algorithm>,
    pending: TxTree<'a, u8>,
    tasks: TxTree<'a, TaskBatch>,
    leases: TxTree<'a, Lease>,
    lease_index: TxTree<'a, u64>,
    earned: TxTree<'a, f64>,
    epochs: TxTree<'a, EpochLedger>,
    carry: TxTree<'a, u64>,
    meta: TxTree<'a, f64>,
}

impl PoolState {
    pub fn open(store: Store, cfg: PoolConfig) -> Result<Self, StoreError> {
        Ok(PoolState {
            miners: store.tree("pool.miners")?,
            algorithms: store.tree("pool.algorithms")?,
            pending: store.tree("pool.pending")?,
            tasks: store.tree("pool.tasks")?,
            leases: store.tree("pool.leases")?,
            lease_index: store.tree("pool.lease_index")?,
            earned: store.tree("pool.earned")?,
            epochs: store.tree("pool.epochs")?,
            carry: store.tree("pool.carry")?,
            meta: store.tree("pool.meta")?,
            store,
            cfg,
            lock: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// Run `f` as one sled transaction over every pool tree, then commit (flush, with
    /// sync durability). Callers hold `self.lock`, which serialises the pool's writers:
    /// the scans they make before the transaction (sled transactions cannot iterate)
    /// therefore still hold inside it. `f` may run more than once (sled retries on
    /// conflicts), so it must not consume what it captures.
    fn transact<T>(&self, f: impl Fn(&Tx) -> TxResult<T>) -> Result<T, OpError> {
        self.store.check_write()?;
        let trees = [
            self.miners.raw(),
            self.algorithms.raw(),
            self.pending.raw(),
            self.tasks.raw(),
            self.leases.raw(),
            self.lease_index.raw(),
            self.earned.raw(),
            self.epochs.raw(),
            self.carry.raw(),
            self.meta.raw(),
        ];
        let out = trees[..]
            .transaction(|t| {
                f(&Tx {
                    cfg: &self.cfg,
                    miners: self.miners.in_tx(&t[0]),
                    algorithms: self.algorithms.in_tx(&t[1]),
                    pending: self.pending.in_tx(&t[2]),
                    tasks: self.tasks.in_tx(&t[3]),
                    leases: self.leases.in_tx(&t[4]),
                    lease_index: self.lease_index.in_tx(&t[5]),
                    earned: self.earned.in_tx(&t[6]),
                    epochs: self.epochs.in_tx(&t[7]),
                    carry: self.carry.in_tx(&t[8]),
                    meta: self.meta.in_tx(&t[9]),
                })
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => {
                    OpError::Store(self.store.observe::<()>(Err(e.into())).unwrap_err())
                }
            })?;
        self.store.commit()?;
        Ok(out)
    }

    pub fn meta_get(&self, name: &str) -> Result<Option<f64>, StoreError> {
        self.meta.get(name)
    }

    pub fn meta_set(&self, name: &str, value: f64) -> Result<(), StoreError> {
        let _g = self.lock.lock();
        self.transact(|tx| tx.meta.insert(name, &value))
            .map_err(store_only)
    }

    // ---- miners ----

    /// Register (idempotent) and touch `last_seen`.
    pub fn register(&self, hotkey: &str, now: f64) -> Result<Miner, StoreError> {
        let _g = self.lock.lock();
        self.transact(|tx| tx.touch(hotkey, now))
            .map_err(store_only)
    }

    pub fn miner(&self, hotkey: &str) -> Result<Option<Miner>, StoreError> {
        self.miners.get(hotkey)
    }

    /// Miners by reputation (desc), then hotkey.
    pub fn leaderboard(&self, limit: usize) -> Result<Vec<Miner>, StoreError> {
        let mut all: Vec<Miner> = self
            .miners
            .iter()
            .map(|r| r.map(|(_, m)| m))
            .collect::<Result<_, _>>()?;
        all.sort_by(|a, b| {
            b.reputation
                .total_cmp(&a.reputation)
                .then(a.hotkey.cmp(&b.hotkey))
        });
        all.truncate(limit);
        Ok(all)
    }

    // ---- algorithms ----

    pub fn algorithm(&self, id: u64) -> Result<Option<Algorithm>, StoreError> {
        self.algorithms.get(u64_key(id))
    }

    pub fn all_algorithms(&self) -> Result<Vec<Algorithm>, StoreError> {
        self.algorithms.iter().map(|r| r.map(|(_, a)| a)).collect()
    }

    /// Ids of the algorithms awaiting evaluations, oldest first.
    pub fn pending_ids(&self) -> Result<Vec<u64>, StoreError> {
        self.pending
            .iter()
            .map(|r| r.map(|(k, _)| key_u64(&k).unwrap_or(0)))
            .collect()
    }

    /// Add a seed unless the pool already holds an algorithm with the same DSL (the
    /// relay's SOTA may be the pool's own forwarded best); returns the new seed's id.
    pub fn add_seed(
        &self,
        dsl: &str,
        score: Option<f64>,
        origin: &str,
        now: f64,
    ) -> Result<Option<u64>, StoreError> {
        self.add_unauthored(dsl, score, origin, AlgorithmStatus::Seed, now)
    }

    /// Put a program without an author up for evaluation (genesis work that lets an
    /// empty pool's evaluators and evolvers start); skipped, like a seed, when the pool
    /// already holds the same program.
    pub fn add_genesis(&self, dsl: &str, now: f64) -> Result<Option<u64>, StoreError> {
        self.add_unauthored(dsl, None, "genesis", AlgorithmStatus::Pending, now)
    }

    fn add_unauthored(
        &self,
        dsl: &str,
        score: Option<f64>,
        origin: &str,
        status: AlgorithmStatus,
        now: f64,
    ) -> Result<Option<u64>, StoreError> {
        let _g = self.lock.lock();
        if self.all_algorithms()?.iter().any(|a| a.dsl == dsl) {
            return Ok(None);
        }
        self.transact(|tx| {
            let id = tx.next_id("next_algorithm_id")?;
            let a = Algorithm {
                id,
                dsl: dsl.to_string(),
                task_type: self.cfg.task_type.clone(),
                input_dim: self.cfg.input_dim,
                author: None,
                parent_ids: Vec::new(),
                created_at: now,
                status,
                score,
                verified_at: None,
                evaluations: Vec::new(),
                assignments: Vec::new(),
                reward: 0.0,
                origin: origin.to_string(),
            };
            tx.algorithms.insert(u64_key(id), &a)?;
            if status == AlgorithmStatus::Pending {
                tx.pending.insert(u64_key(id), &0)?;
            }
            Ok(Some(id))
        })
        .map_err(store_only)
    }

    /// The longest-waiting pending algorithm, if any.
    pub fn oldest_pending(&self) -> Result<Option<Algorithm>, StoreError> {
        match self.pending.iter().next().transpose()? {
            Some((k, _)) => self.algorithm(key_u64(&k).unwrap_or(0)),
            None => Ok(None),
        }
    }

    /// Verified algorithms, best first; filters as `/results`.
    pub fn verified(
        &self,
        task_type: Option<&str>,
        min_score: Option<f64>,
        limit: usize,
    ) -> Result<Vec<Algorithm>, StoreError> {
        let mut v: Vec<Algorithm> = self
            .all_algorithms()?
            .into_iter()
            .filter(|a| a.status == AlgorithmStatus::Verified)
            .filter(|a| task_type.map_or(true, |t| a.task_type == t))
            .filter(|a| min_score.map_or(true, |m| a.score.is_some_and(|s| s >= m)))
            .collect();
        v.sort_by(rules::best_first);
        v.truncate(limit);
        Ok(v)
    }

    /// Parents handed out for evolving: the best verified algorithms, then seeds.
    fn parents(&self, limit: usize) -> Result<Vec<Algorithm>, StoreError> {
        let verified = self.verified(Some(&self.cfg.task_type), None, limit)?;
        let seeds: Vec<Algorithm> = self
            .all_algorithms()?
            .into_iter()
            .filter(|a| a.status == AlgorithmStatus::Seed)
            .collect();
        Ok(rules::choose_parents(verified, seeds, limit))
    }

    // ---- tasks ----

    /// `POST /tasks/request`. A miner that still holds an unexpired task gets that same
    /// task back, whatever kind it asked for: a client that lost track of its task (a
    /// failed job, a restart) picks it up again instead of being stranded with
    /// `Miner already has active task` until the task times out.
    pub fn request_task(
        &self,
        hotkey: &str,
        kind: TaskKind,
        now: f64,
    ) -> Result<(TaskBatch, Vec<Algorithm>), OpError> {
        let _g = self.lock.lock();
        let (parents, pending) = match kind {
            TaskKind::Evolve => (self.parents(self.cfg.seed_batch_size)?, Vec::new()),
            TaskKind::Evaluate => (Vec::new(), self.pending_ids()?),
        };
        let expires_at = now + self.cfg.task_timeout_s as f64;
        // Refusals after `touch` still record that the miner was seen.
        let issued = self.transact(|tx| {
            let mut m = tx.touch(hotkey, now)?;
            tx.expire_task(&mut m, now)?;
            if let Some(id) = m.active_task {
                tx.miners.insert(hotkey, &m)?;
                let Some(t) = tx.tasks.get(u64_key(id))? else {
                    return Ok(Err(Refusal::bad_request(ACTIVE_TASK)));
                };
                let mut algorithms = Vec::new();
                for &a in &t.algorithm_ids {
                    algorithms.extend(tx.algorithms.get(u64_key(a))?);
                }
                return Ok(Ok((t, algorithms)));
            }
            let algorithms = match kind {
                TaskKind::Evolve => parents.clone(),
                TaskKind::Evaluate => tx.assign_evaluations(
                    &pending,
                    hotkey,
                    self.cfg.eval_batch_size,
                    now,
                    expires_at,
                )?,
            };
            if algorithms.is_empty() {
                tx.miners.insert(hotkey, &m)?;
                let detail = format!("No {} tasks available", kind.as_str());
                return Ok(Err(Refusal::not_found(detail)));
            }
            let batch = TaskBatch {
                batch_id: tx.next_id("next_task_id")?,
                hotkey: hotkey.to_string(),
                kind,
                algorithm_ids: algorithms.iter().map(|a| a.id).collect(),
                issued_at: now,
                expires_at,
                status: WorkStatus::Active,
            };
            tx.tasks.insert(u64_key(batch.batch_id), &batch)?;
            m.active_task = Some(batch.batch_id);
            tx.miners.insert(hotkey, &m)?;
            Ok(Ok((batch, algorithms)))
        })?;
        Ok(issued?)
    }

    /// `POST /tasks/{batch_id}/submit_evolution`.
    pub fn submit_evolution(
        &self,
        hotkey: &str,
        batch_id: u64,
        evo: EvolutionIn,
        now: f64,
    ) -> Result<SubmitOutcome, OpError> {
        let _g = self.lock.lock();
        self.transact(|tx| {
            let t = tx.active_task(hotkey, batch_id, TaskKind::Evolve, now)?;
            tx.check_parents(&evo.parent_ids)?;
            let id = tx.insert_evolution(hotkey, &evo, now)?;
            tx.finish_task(t, hotkey, now)?;
            Ok(SubmitOutcome {
                algorithm_ids: vec![id],
                ..Default::default()
            })
        })
    }

    /// `POST /tasks/{batch_id}/submit_evaluation`.
    pub fn submit_evaluation(
        &self,
        hotkey: &str,
        batch_id: u64,
        evaluations: &[EvaluationIn],
        now: f64,
    ) -> Result<SubmitOutcome, OpError> {
        let _g = self.lock.lock();
        self.transact(|tx| {
            let t = tx.active_task(hotkey, batch_id, TaskKind::Evaluate, now)?;
            if let Err(r) = check_evaluated_ids(evaluations, &t.algorithm_ids) {
                return refuse(r);
            }
            let out = tx.record_evaluations(hotkey, evaluations, now)?;
            tx.release(hotkey, &t.algorithm_ids)?;
            tx.finish_task(t, hotkey, now)?;
            Ok(out)
        })
    }

    // ---- leases ----

    /// `POST /tasks/lease`.
    pub fn issue_lease(
        &self,
        hotkey: &str,
        eval_batch_size: usize,
        seed_batch_size: usize,
        now: f64,
    ) -> Result<IssuedLease, OpError> {
        let _g = self.lock.lock();
        let (window, timeout_at) = rules::lease_terms(now, self.cfg.window_s);
        let index = lease_index_key(hotkey, window);
        let seeds = self.parents(seed_batch_size)?;
        let pending = self.pending_ids()?;
        self.transact(|tx| {
            if tx.lease_index.contains_key(&index)? {
                return refuse(Refusal::bad_request(LEASE_ALREADY_ISSUED));
            }
            let mut m = tx.touch(hotkey, now)?;
            let evaluate =
                tx.assign_evaluations(&pending, hotkey, eval_batch_size, now, timeout_at)?;
            let lease = Lease {
                lease_id: tx.next_id("next_lease_id")?,
                hotkey: hotkey.to_string(),
                window_number: window,
                issued_at: now,
                timeout_at,
                evolve_budget: self.cfg.evolve_budget,
                evaluate_ids: evaluate.iter().map(|a| a.id).collect(),
                seed_ids: seeds.iter().map(|a| a.id).collect(),
                status: WorkStatus::Active,
                completed_at: None,
                iterations: 0,
            };
            tx.leases.insert(u64_key(lease.lease_id), &lease)?;
            tx.lease_index.insert(&index, &lease.lease_id)?;
            m.leases += 1;
            tx.miners.insert(hotkey, &m)?;
            Ok(IssuedLease {
                lease,
                evaluate,
                seeds: seeds.clone(),
            })
        })
    }

    /// `POST /tasks/{lease_id}/submit_lease`.
    pub fn submit_lease(
        &self,
        hotkey: &str,
        lease_id: u64,
        evaluations: &[EvaluationIn],
        evolutions: Vec<EvolutionIn>,
        iterations: u64,
        now: f64,
    ) -> Result<SubmitOutcome, OpError> {
        let _g = self.lock.lock();
        // A lease found timed out is marked expired, and that is kept.
        let submitted = self.transact(|tx| {
            let lease = tx.leases.get(u64_key(lease_id))?;
            let mut lease = match (rules::lease_standing(lease.as_ref(), hotkey, now), lease) {
                (rules::LeaseStanding::Live, Some(lease)) => lease,
                (rules::LeaseStanding::TimedOut, Some(mut lease)) => {
                    lease.status = WorkStatus::Expired;
                    tx.leases.insert(u64_key(lease_id), &lease)?;
                    return Ok(Err(Refusal::not_found(NO_ACTIVE_LEASE)));
                }
                _ => return refuse(Refusal::not_found(NO_ACTIVE_LEASE)),
            };
            if let Err(r) = check_evaluated_ids(evaluations, &lease.evaluate_ids) {
                return refuse(r);
            }
            for e in &evolutions {
                tx.check_parents(&e.parent_ids)?;
            }
            let mut out = tx.record_evaluations(hotkey, evaluations, now)?;
            tx.release(hotkey, &lease.evaluate_ids)?;
            for e in &evolutions {
                out.algorithm_ids.push(tx.insert_evolution(hotkey, e, now)?);
            }
            lease.status = WorkStatus::Completed;
            lease.completed_at = Some(now);
            lease.iterations = iterations;
            tx.leases.insert(u64_key(lease_id), &lease)?;
            Ok(Ok(out))
        })?;
        Ok(submitted?)
    }

    /// Delete finished tasks and leases (with their index entries) issued before
    /// `cutoff` (`crate::retention::prune_finished`), in one transaction. Returns how
    /// many records went.
    pub fn prune_history(&self, cutoff: Option<f64>) -> Result<usize, StoreError> {
        let _g = self.lock.lock();
        let old = |status: WorkStatus, issued_at: f64| {
            crate::retention::prune_finished(status != WorkStatus::Active, issued_at, cutoff)
        };
        let mut tasks = Vec::new();
        for r in self.tasks.iter() {
            let (k, t) = r?;
            if old(t.status, t.issued_at) {
                tasks.push(k);
            }
        }
        let mut leases = Vec::new();
        for r in self.leases.iter() {
            let (k, l) = r?;
            if old(l.status, l.issued_at) {
                leases.push((k, lease_index_key(&l.hotkey, l.window_number)));
            }
        }
        if tasks.is_empty() && leases.is_empty() {
            return Ok(0);
        }
        self.transact(|tx| {
            for k in &tasks {
                tx.tasks.remove(k)?;
            }
            for (k, index) in &leases {
                tx.leases.remove(k)?;
                tx.lease_index.remove(index)?;
            }
            Ok(tasks.len() + leases.len())
        })
        .map_err(store_only)
    }

    // ---- epochs ----

    /// Close every epoch before `now`'s that has earnings and no ledger yet, all in one
    /// transaction: each ledger is written together with the carry-overs it moves.
    pub fn close_epochs(&self, now: f64) -> Result<Vec<u64>, StoreError> {
        let _g = self.lock.lock();
        let current = rules::epoch_number(now, self.cfg.epoch_s);
        let mut open: Vec<u64> = Vec::new();
        for r in self.earned.range(..u64_key(current).to_vec()) {
            let (k, _) = r?;
            let e = key_u64(&k[..8]).unwrap_or(0);
            if open.last() != Some(&e) {
                open.push(e);
            }
        }
        let mut due = Vec::new();
        for e in open {
            if !self.epochs.contains_key(u64_key(e))? {
                due.push((e, self.epoch_earnings(e)?));
            }
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.transact(|tx| {
            for (e, earned) in &due {
                tx.close_epoch(*e, earned, now)?;
            }
            Ok(due.iter().map(|(e, _)| *e).collect())
        })
        .map_err(store_only)
    }

    /// `(hotkey, reputation earned)` of an epoch, sorted by hotkey.
    pub fn epoch_earnings(&self, epoch: u64) -> Result<Vec<(String, f64)>, StoreError> {
        self.earned
            .scan_prefix(u64_key(epoch))
            .map(|r| r.map(|(k, v)| (String::from_utf8_lossy(&k[8..]).into_owned(), v)))
            .collect()
    }

    pub fn epoch(&self, n: u64) -> Result<Option<EpochLedger>, StoreError> {
        self.epochs.get(u64_key(n))
    }

    /// Closed epochs, newest first.
    pub fn epochs(&self, limit: usize) -> Result<Vec<EpochLedger>, StoreError> {
        self.epochs
            .iter()
            .rev()
            .take(limit)
            .map(|r| r.map(|(_, l)| l))
            .collect()
    }

    /// Everything [`super::audit::audit`] relates, read under the lock (so no operation
    /// is half-way).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let _g = self.lock.lock();
        fn all<V: Serialize + serde::de::DeserializeOwned>(
            t: &TypedTree<V>,
        ) -> Result<Vec<(sled::IVec, V)>, StoreError> {
            t.iter().collect()
        }
        let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        Ok(Snapshot {
            evals_required: self.cfg.evals_required as usize,
            miners: all(&self.miners)?.into_iter().map(|(_, m)| m).collect(),
            algorithms: self.all_algorithms()?,
            pending: self.pending_ids()?,
            tasks: all(&self.tasks)?.into_iter().map(|(_, t)| t).collect(),
            leases: all(&self.leases)?.into_iter().map(|(_, l)| l).collect(),
            lease_index: all(&self.lease_index)?
                .into_iter()
                .map(|(k, id)| {
                    let split = k.len().saturating_sub(9);
                    let window = key_u64(&k[split + 1..]).unwrap_or(0);
                    (text(&k[..split]), window, id)
                })
                .collect(),
            earned: all(&self.earned)?
                .into_iter()
                .map(|(k, r)| (key_u64(&k[..8]).unwrap_or(0), text(&k[8..]), r))
                .collect(),
            ledgers: all(&self.epochs)?.into_iter().map(|(_, l)| l).collect(),
            carry: all(&self.carry)?
                .into_iter()
                .map(|(k, a)| (text(&k), a))
                .collect(),
        })
    }

    // ---- summary ----

    pub fn summary(&self, now: f64) -> Result<Summary, StoreError> {
        let algorithms = self.all_algorithms()?;
        let required = self.cfg.evals_required as usize;
        let pending: Vec<&Algorithm> = algorithms
            .iter()
            .filter(|a| a.status == AlgorithmStatus::Pending)
            .collect();
        let since = now - 900.0;
        let mut issued = 0;
        let mut completed = 0;
        for r in self.leases.iter() {
            let (_, l) = r?;
            if l.issued_at >= since {
                issued += 1;
            }
            if l.completed_at.is_some_and(|c| c >= since) {
                completed += 1;
            }
        }
        let mut active_tasks = 0;
        for r in self.tasks.iter().rev() {
            let (_, t) = r?;
            if t.status == WorkStatus::Active && t.expires_at > now {
                active_tasks += 1;
            }
        }
        Ok(Summary {
            miners: self.miners.len(),
            algorithms: algorithms.len(),
            verified: algorithms
                .iter()
                .filter(|a| a.status == AlgorithmStatus::Verified)
                .count(),
            pending_evaluations: pending
                .iter()
                .map(|a| required.saturating_sub(a.evaluations.len()))
                .sum(),
            backlog: pending.len(),
            active_tasks,
            leases_issued_15m: issued,
            leases_completed_15m: completed,
            best_score: algorithms
                .iter()
                .filter(|a| a.status == AlgorithmStatus::Verified)
                .filter_map(|a| a.score)
                .fold(None, |b: Option<f64>, s| Some(b.map_or(s, |b| b.max(s)))),
        })
    }
}

impl Tx<'_> {
    fn next_id(&self, name: &str) -> TxResult<u64> {
        let n = self.meta.get(name)?.unwrap_or(0.0) as u64 + 1;
        self.meta.insert(name, &(n as f64))?;
        Ok(n)
    }

    /// The miner (registered now if new) with `last_seen` set to `now`, written back.
    fn touch(&self, hotkey: &str, now: f64) -> TxResult<Miner> {
        let mut m = self
            .miners
            .get(hotkey)?
            .unwrap_or_else(|| Miner::new(hotkey, now));
        m.last_seen = now;
        self.miners.insert(hotkey, &m)?;
        Ok(m)
    }

    /// Of the pending algorithms `pending` (oldest first), those `hotkey` may evaluate,
    /// at most `limit`, assigned to it until `expires_at`.
    fn assign_evaluations(
        &self,
        pending: &[u64],
        hotkey: &str,
        limit: usize,
        now: f64,
        expires_at: f64,
    ) -> TxResult<Vec<Algorithm>> {
        let required = self.cfg.evals_required as usize;
        let mut out = Vec::new();
        for &id in pending {
            if out.len() >= limit {
                break;
            }
            let Some(mut a) = self.algorithms.get(u64_key(id))? else {
                continue;
            };
            if !rules::assign_evaluation(&mut a, hotkey, required, now, expires_at) {
                continue;
            }
            self.algorithms.insert(u64_key(id), &a)?;
            out.push(a);
        }
        Ok(out)
    }

    /// Mark the miner's active task expired when its time is up.
    fn expire_task(&self, m: &mut Miner, now: f64) -> TxResult<()> {
        let Some(id) = m.active_task else {
            return Ok(());
        };
        let task = self.tasks.get(u64_key(id))?;
        match (rules::task_fate(task.as_ref(), now), task) {
            (rules::TaskFate::Held, _) => {}
            (rules::TaskFate::Expires, Some(mut t)) => {
                t.status = WorkStatus::Expired;
                self.tasks.insert(u64_key(id), &t)?;
                m.active_task = None;
            }
            _ => m.active_task = None,
        }
        Ok(())
    }

    fn active_task(
        &self,
        hotkey: &str,
        batch_id: u64,
        kind: TaskKind,
        now: f64,
    ) -> TxResult<TaskBatch> {
        let task = self.tasks.get(u64_key(batch_id))?;
        match rules::check_task_submission(task, hotkey, kind, now) {
            Ok(t) => Ok(t),
            Err(r) => refuse(r),
        }
    }

    fn finish_task(&self, mut t: TaskBatch, hotkey: &str, now: f64) -> TxResult<()> {
        t.status = WorkStatus::Completed;
        self.tasks.insert(u64_key(t.batch_id), &t)?;
        let mut m = self.touch(hotkey, now)?;
        if m.active_task == Some(t.batch_id) {
            m.active_task = None;
        }
        self.miners.insert(hotkey, &m)?;
        Ok(())
    }

    fn check_parents(&self, ids: &[u64]) -> TxResult<()> {
        for &p in ids {
            if !self.algorithms.contains_key(u64_key(p))? {
                return refuse(Refusal::bad_request(format!(
                    "Unknown parent algorithm {p}"
                )));
            }
        }
        Ok(())
    }

    fn insert_evolution(&self, hotkey: &str, evo: &EvolutionIn, now: f64) -> TxResult<u64> {
        let id = self.next_id("next_algorithm_id")?;
        let a = Algorithm {
            id,
            dsl: evo.dsl.clone(),
            task_type: self.cfg.task_type.clone(),
            input_dim: self.cfg.input_dim,
            author: Some(hotkey.to_string()),
            parent_ids: evo.parent_ids.clone(),
            created_at: now,
            status: AlgorithmStatus::Pending,
            score: None,
            verified_at: None,
            evaluations: Vec::new(),
            assignments: Vec::new(),
            reward: 0.0,
            origin: "evolution".into(),
        };
        self.algorithms.insert(u64_key(id), &a)?;
        self.pending.insert(u64_key(id), &0)?;
        let mut m = self.touch(hotkey, now)?;
        m.evolutions += 1;
        self.miners.insert(hotkey, &m)?;
        Ok(id)
    }

    /// Drop `hotkey`'s assignments of `ids` (work handed back unfinished goes to others
    /// at once instead of at its timeout).
    fn release(&self, hotkey: &str, ids: &[u64]) -> TxResult<()> {
        for &id in ids {
            if let Some(mut a) = self.algorithms.get(u64_key(id))? {
                let before = a.assignments.len();
                a.assignments.retain(|x| x.hotkey != hotkey);
                if a.assignments.len() != before {
                    self.algorithms.insert(u64_key(id), &a)?;
                }
            }
        }
        Ok(())
    }

    /// Store evaluations; an algorithm reaching `evals_required` gets its consensus.
    /// Evaluations of algorithms already decided (the assignment lapsed and others
    /// finished it) or already evaluated by this miner are counted as rejected.
    fn record_evaluations(
        &self,
        hotkey: &str,
        evaluations: &[EvaluationIn],
        now: f64,
    ) -> TxResult<SubmitOutcome> {
        let mut out = SubmitOutcome::default();
        let required = self.cfg.evals_required as usize;
        for e in evaluations {
            let Some(mut a) = self.algorithms.get(u64_key(e.algorithm_id))? else {
                out.rejected_evaluations += 1;
                continue;
            };
            let pending = a.status == AlgorithmStatus::Pending;
            let evaluators = a.evaluators();
            if !rules::accepts_evaluation(
                pending,
                a.author.as_deref(),
                &evaluators,
                required,
                hotkey,
            ) {
                out.rejected_evaluations += 1;
                continue;
            }
            a.evaluations.push(EvaluationRecord {
                hotkey: hotkey.to_string(),
                score: e.score.filter(|s| s.is_finite()),
                submitted_at: now,
                accurate: None,
            });
            a.assignments.retain(|x| x.hotkey != hotkey);
            out.accepted_evaluations += 1;
            let mut m = self.touch(hotkey, now)?;
            m.evaluations += 1;
            self.miners.insert(hotkey, &m)?;
            if a.evaluations.len() >= required {
                self.decide(&mut a, now)?;
                out.consensus_reached.push(a.id);
            }
            self.algorithms.insert(u64_key(a.id), &a)?;
        }
        Ok(out)
    }

    /// Apply [`rules::decide`] to a fully evaluated algorithm: its score, each
    /// evaluator's accuracy and reputation, the author's reward.
    fn decide(&self, a: &mut Algorithm, now: f64) -> TxResult<()> {
        let mut best_parent: Option<f64> = None;
        for &p in &a.parent_ids {
            if let Some(s) = self.algorithms.get(u64_key(p))?.and_then(|p| p.score) {
                best_parent = Some(best_parent.map_or(s, |b: f64| b.max(s)));
            }
        }
        let scores: Vec<Option<f64>> = a.evaluations.iter().map(|e| e.score).collect();
        let d = rules::decide(
            &scores,
            self.cfg.tolerance,
            self.cfg.min_evolution_score,
            best_parent,
        );
        let epoch = rules::epoch_number(now, self.cfg.epoch_s);
        for (e, &ok) in a.evaluations.iter_mut().zip(&d.accurate) {
            e.accurate = Some(ok);
            let mut m = self.touch(&e.hotkey, now)?;
            if ok {
                m.accurate_evaluations += 1;
            } else {
                m.inaccurate_evaluations += 1;
            }
            self.miners.insert(&e.hotkey, &m)?;
            self.add_reputation(&e.hotkey, rules::evaluation_delta(ok), epoch, now)?;
        }
        a.status = AlgorithmStatus::Verified;
        a.score = d.score;
        a.verified_at = Some(now);
        a.assignments.clear();
        self.pending.remove(u64_key(a.id))?;
        if d.author_reward > 0.0 {
            if let Some(author) = a.author.clone() {
                a.reward = self.add_reputation(&author, d.author_reward, epoch, now)?;
            }
        }
        Ok(())
    }

    /// Apply a reputation change (floored at 0) and book it to `epoch`; returns the
    /// applied delta.
    fn add_reputation(&self, hotkey: &str, delta: f64, epoch: u64, now: f64) -> TxResult<f64> {
        let mut m = self.touch(hotkey, now)?;
        let (next, applied) = rules::apply_reputation(m.reputation, delta);
        m.reputation = next;
        self.miners.insert(hotkey, &m)?;
        let key = earned_key(epoch, hotkey);
        let total = self.earned.get(&key)?.unwrap_or(0.0) + applied;
        self.earned.insert(&key, &total)?;
        Ok(applied)
    }

    /// Write the ledger of `epoch` ([`rules::settle_epoch`]) and move the carry-overs.
    fn close_epoch(&self, epoch: u64, earned: &[(String, f64)], now: f64) -> TxResult<()> {
        let mut carry_in = Vec::with_capacity(earned.len());
        for (hotkey, _) in earned {
            carry_in.push(self.carry.get(hotkey)?.unwrap_or(0));
        }
        let params = rules::PayoutParams {
            epoch_s: self.cfg.epoch_s,
            budget_rao: self.cfg.epoch_budget_rao,
            payout_cap: self.cfg.payout_cap,
            min_payout_rao: self.cfg.min_payout_rao,
        };
        let ledger = rules::settle_epoch(epoch, earned, &carry_in, params, now);
        for (hotkey, amount) in &ledger.carried {
            self.carry.insert(hotkey, amount)?;
        }
        for p in &ledger.payouts {
            self.carry.remove(&p.hotkey)?;
        }
        self.epochs.insert(u64_key(epoch), &ledger)?;
        Ok(())
    }
}

/// Every evaluated id must be one the task or lease handed out.
fn check_evaluated_ids(evaluations: &[EvaluationIn], allowed: &[u64]) -> Result<(), Refusal> {
    for e in evaluations {
        if !allowed.contains(&e.algorithm_id) {
            return Err(Refusal::bad_request(format!(
                "Algorithm {} was not assigned to this task",
                e.algorithm_id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    fn pool(cfg: PoolConfig) -> (tempfile::TempDir, PoolState) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), Durability::Async).unwrap();
        let p = PoolState::open(store, cfg).unwrap();
        p.add_seed("seed", None, "empty", 0.0).unwrap();
        (dir, p)
    }

    fn evaluate_all(p: &PoolState, hotkey: &str, score: f64, now: f64) -> Vec<u64> {
        let (t, algs) = p.request_task(hotkey, TaskKind::Evaluate, now).unwrap();
        let evals: Vec<EvaluationIn> = algs
            .iter()
            .map(|a| EvaluationIn {
                algorithm_id: a.id,
                score: Some(score),
            })
            .collect();
        p.submit_evaluation(hotkey, t.batch_id, &evals, now)
            .unwrap();
        algs.iter().map(|a| a.id).collect()
    }

    #[test]
    fn evolution_consensus_reputation_and_epoch() {
        let cfg = PoolConfig {
            payout_cap: 0.5,
            epoch_s: 100,
            ..PoolConfig::default()
        };
        let (_d, p) = pool(cfg);
        let now = 1000.0;
        let (t, parents) = p.request_task("A", TaskKind::Evolve, now).unwrap();
        assert_eq!(parents.len(), 1);
        // Asking again, for either kind, re-answers the active task.
        for kind in [TaskKind::Evolve, TaskKind::Evaluate] {
            let (again, algs) = p.request_task("A", kind, now).unwrap();
            assert_eq!((again.batch_id, again.kind), (t.batch_id, TaskKind::Evolve));
            assert_eq!(algs, parents);
        }
        let evo = EvolutionIn {
            parent_ids: vec![parents[0].id],
            dsl: "child".into(),
        };
        let out = p.submit_evolution("A", t.batch_id, evo, now).unwrap();
        let child = out.algorithm_ids[0];
        // The author cannot evaluate its own evolution.
        let err = p.request_task("A", TaskKind::Evaluate, now).unwrap_err();
        assert!(matches!(err, OpError::Refused(r) if r.kind == RefusalKind::NotFound));
        // An evaluation task handed back empty releases the work at once.
        let (t, _) = p.request_task("E", TaskKind::Evaluate, now).unwrap();
        p.submit_evaluation("E", t.batch_id, &[], now).unwrap();
        assert_eq!(evaluate_all(&p, "B", 0.9, now), vec![child]);
        assert_eq!(evaluate_all(&p, "C", 0.92, now), vec![child]);
        assert_eq!(evaluate_all(&p, "D", 0.2, now), vec![child]);
        // Three evaluations done: nobody else gets it.
        assert!(p.request_task("F", TaskKind::Evaluate, now).is_err());
        let a = p.algorithm(child).unwrap().unwrap();
        assert_eq!(a.status, AlgorithmStatus::Verified);
        assert_eq!(a.score, Some(0.9));
        let rep = |h: &str| p.miner(h).unwrap().unwrap().reputation;
        assert_eq!(rep("A"), 1.8);
        assert_eq!((rep("B"), rep("C"), rep("D")), (1.0, 1.0, 0.0));
        // Epoch 10 closes once time passes it.
        assert!(p.close_epochs(now + 50.0).unwrap().is_empty());
        assert_eq!(p.close_epochs(now + 100.0).unwrap(), vec![10]);
        let l = p.epoch(10).unwrap().unwrap();
        let total: u64 = l.payouts.iter().map(|x| x.amount_rao).sum();
        assert_eq!(total + l.undistributed_rao, l.budget_rao);
        assert!(l.payouts.iter().all(|x| x.amount_rao <= l.budget_rao / 2));
        assert_eq!(l.payouts.len(), 3, "{l:?}");
        // Closing again changes nothing.
        assert!(p.close_epochs(now + 200.0).unwrap().is_empty());
    }

    #[test]
    fn expired_assignments_are_reassigned() {
        let cfg = PoolConfig {
            evals_required: 1,
            task_timeout_s: 10,
            window_s: 10,
            ..PoolConfig::default()
        };
        let (_d, p) = pool(cfg);
        let (t, parents) = p.request_task("A", TaskKind::Evolve, 0.0).unwrap();
        let evo = EvolutionIn {
            parent_ids: vec![parents[0].id],
            dsl: "child".into(),
        };
        p.submit_evolution("A", t.batch_id, evo, 0.0).unwrap();
        let l = p.issue_lease("B", 8, 8, 1.0).unwrap();
        assert_eq!(l.evaluate.len(), 1);
        let again = p.issue_lease("B", 8, 8, 2.0).unwrap_err();
        assert!(matches!(again, OpError::Refused(r) if r.detail == LEASE_ALREADY_ISSUED));
        // While B holds it, C gets nothing; once the lease timed out, C gets it.
        assert!(p.request_task("C", TaskKind::Evaluate, 5.0).is_err());
        let (ct, algs) = p.request_task("C", TaskKind::Evaluate, 12.0).unwrap();
        assert_eq!(algs.len(), 1);
        let late = p.submit_lease("B", l.lease.lease_id, &[], vec![], 3, 12.0);
        assert!(matches!(late, Err(OpError::Refused(r)) if r.detail == NO_ACTIVE_LEASE));
        // A new window gives B a new lease.
        assert!(p.issue_lease("B", 8, 8, 12.0).is_ok());
        // C's task expires after task_timeout_s and C may ask again.
        let (held, _) = p.request_task("C", TaskKind::Evolve, 13.0).unwrap();
        assert_eq!(
            (held.batch_id, held.kind),
            (ct.batch_id, TaskKind::Evaluate)
        );
        assert!(p.request_task("C", TaskKind::Evolve, 23.0).is_ok());
        let gone = p.submit_evaluation("C", ct.batch_id, &[], 23.0);
        assert!(matches!(gone, Err(OpError::Refused(r)) if r.kind == RefusalKind::NotFound));
    }
}
