//! The relay's records in the sled store (trees prefixed `relay.`).
//!
//! A thin layer: every rule is decided in `consensus`/`submit`; this file only reads and
//! writes, using sled transactions wherever one request changes several trees (event +
//! SOTA + pending votes, invitation + miner index, test-queue claims). Callers serialise
//! read-modify-write sequences with the relay's locks.
//!
//! The hot path (a submission) is one single-key insert: a sled transaction takes sled's
//! global write lock, which waits for any flush in progress (an fsync), so transactions
//! on that path would serialise every submission behind the disk. The newest-first order
//! of results is therefore an in-memory index rebuilt from the records at start-up.

use super::consensus::{Params, Vote, Window};
use crate::store::{decode, encode, key_u64, u64_key, Store, StoreError, TypedTree};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::sync::atomic::{AtomicU64, Ordering};

/// A miner's (single) result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRec {
    pub id: String,
    pub miner_hotkey: String,
    pub task_id: String,
    /// The JSON object, as text.
    pub algorithm_result: String,
    pub score: f64,
    /// Unix microseconds of the latest submission.
    pub timestamp_us: i64,
    pub signature: String,
    pub timestamp_message: String,
    /// Position in the newest-first order (newest = largest).
    pub seq: u64,
}

/// A finalized SOTA event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRec {
    pub id: u64,
    pub miner_hotkey: String,
    pub score: f64,
    pub score_int: i64,
    pub result_id: Option<String>,
    pub decision_block: u64,
    pub start_block: u64,
    pub end_block: u64,
    pub alignment_mod: u64,
    pub t2_blocks: u64,
    pub created_us: i64,
}

/// The global SOTA.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SotaRec {
    pub value: f64,
    pub updated_us: i64,
}

/// An invitation code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteRec {
    pub code: String,
    pub miner_hotkey: Option<String>,
    pub coldkey_address: Option<String>,
    pub created_us: i64,
    /// Creation order (listing order).
    pub seq: u64,
}

/// A UID0 test submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSubRec {
    pub id: String,
    pub submitter_hotkey: String,
    pub task_id: String,
    pub algorithm_result: String,
    pub score: Option<f64>,
    pub created_us: i64,
    pub claimed_us: Option<i64>,
    pub claimed_by: Option<String>,
    pub signature: String,
    pub timestamp_message: String,
}

const SOTA_KEY: &[u8] = b"global";

/// Outcome of linking an invitation code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// Unknown code, a code used by another miner, or the miner already holds another.
    Refused,
}

pub struct RelayStore {
    store: Store,
    results: TypedTree<ResultRec>,
    /// seq → miner hotkey: the order of results, derived from `results`.
    order: parking_lot::RwLock<std::collections::BTreeMap<u64, String>>,
    votes: TypedTree<Vote>,
    events: TypedTree<EventRec>,
    /// miner hotkey ++ score_int (be) → event id.
    event_index: sled::Tree,
    sota: TypedTree<SotaRec>,
    /// miner ++ '/' ++ validator → unix µs.
    blacklist: TypedTree<i64>,
    invites: TypedTree<InviteRec>,
    /// miner hotkey → code.
    invite_by_miner: sled::Tree,
    tests: TypedTree<TestSubRec>,
    /// seq → () for test submissions not yet claimed.
    tests_unclaimed: sled::Tree,
    next_seq: AtomicU64,
}

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn candidate_key(miner: &str, score_int: i64) -> Vec<u8> {
    let mut k = miner.as_bytes().to_vec();
    k.extend_from_slice(&score_int.to_be_bytes());
    k
}

fn blacklist_prefix(miner: &str) -> Vec<u8> {
    let mut k = miner.as_bytes().to_vec();
    k.push(b'/');
    k
}

impl RelayStore {
    pub fn open(store: &Store) -> Result<RelayStore, StoreError> {
        let db = store.db();
        let s = RelayStore {
            store: store.clone(),
            results: store.tree("relay.results")?,
            order: Default::default(),
            votes: store.tree("relay.votes")?,
            events: store.tree("relay.events")?,
            event_index: db.open_tree("relay.event_index")?,
            sota: store.tree("relay.sota")?,
            blacklist: store.tree("relay.blacklist")?,
            invites: store.tree("relay.invites")?,
            invite_by_miner: db.open_tree("relay.invite_by_miner")?,
            tests: store.tree("relay.test_submissions")?,
            tests_unclaimed: db.open_tree("relay.test_unclaimed")?,
            next_seq: AtomicU64::new(0),
        };
        // One counter for every ordered record: larger than any already stored.
        let mut max = 0;
        {
            let mut order = s.order.write();
            for r in s.results.iter() {
                let (_, rec) = r?;
                max = max.max(rec.seq);
                order.insert(rec.seq, rec.miner_hotkey);
            }
        }
        if let Some((k, _)) = s.tests.raw().last()? {
            max = max.max(key_u64(&k).unwrap_or(0));
        }
        for r in s.invites.iter() {
            max = max.max(r?.1.seq);
        }
        s.next_seq.store(max + 1, Ordering::SeqCst);
        Ok(s)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    // ----- results -----

    pub fn result_of(&self, miner: &str) -> Result<Option<ResultRec>, StoreError> {
        self.results.get(miner.as_bytes())
    }

    /// Store `rec` as the miner's only result. `rec.id` is replaced by the existing id when
    /// the miner has one. The caller holds the submission lock.
    pub fn put_result(&self, mut rec: ResultRec) -> Result<ResultRec, StoreError> {
        let old = self.result_of(&rec.miner_hotkey)?;
        if let Some(o) = &old {
            rec.id = o.id.clone();
        }
        rec.seq = self.seq();
        self.results.insert(rec.miner_hotkey.as_bytes(), &rec)?;
        let mut order = self.order.write();
        if let Some(o) = &old {
            order.remove(&o.seq);
        }
        order.insert(rec.seq, rec.miner_hotkey.clone());
        Ok(rec)
    }

    /// Results, newest first, optionally only those of `task_id`.
    pub fn results_newest(
        &self,
        limit: usize,
        task_id: Option<&str>,
    ) -> Result<Vec<ResultRec>, StoreError> {
        let miners: Vec<String> = match task_id {
            // Without a filter only `limit` records are needed; with one, scan in order.
            None => self
                .order
                .read()
                .values()
                .rev()
                .take(limit)
                .cloned()
                .collect(),
            Some(_) => self.order.read().values().rev().cloned().collect(),
        };
        let mut out = Vec::new();
        for miner in miners {
            if out.len() >= limit {
                break;
            }
            if let Some(r) = self.results.get(miner.as_bytes())? {
                if task_id.map_or(true, |t| r.task_id == t) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    pub fn result_count(&self) -> usize {
        self.results.len()
    }

    /// Delete the results past the newest `max` (`crate::retention::results_to_prune`),
    /// keeping the one behind the latest SOTA event. Returns how many went. The caller
    /// holds the submission lock, so no result changes meanwhile.
    pub fn prune_results(&self, max: usize) -> Result<usize, StoreError> {
        let sota_miner = match self.events.raw().last()? {
            Some((_, bytes)) => Some(decode::<EventRec>(self.events.name(), &bytes)?.miner_hotkey),
            None => None,
        };
        let doomed: Vec<String> = {
            let order = self.order.read();
            let oldest_first: Vec<&str> = order.values().map(String::as_str).collect();
            crate::retention::results_to_prune(&oldest_first, sota_miner.as_deref(), max)
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        for miner in &doomed {
            if let Some(old) = self.results.remove(miner.as_bytes())? {
                self.order.write().remove(&old.seq);
            }
        }
        if !doomed.is_empty() {
            self.store.commit()?;
        }
        Ok(doomed.len())
    }

    // ----- votes, events, SOTA -----

    pub fn pending_votes(&self) -> Result<Vec<Vote>, StoreError> {
        self.votes.iter().map(|r| r.map(|(_, v)| v)).collect()
    }

    pub fn put_vote(&self, v: &Vote) -> Result<(), StoreError> {
        self.votes.insert(v.validator_hotkey.as_bytes(), v)
    }

    pub fn sota(&self, default: f64) -> Result<SotaRec, StoreError> {
        Ok(self.sota.get(SOTA_KEY)?.unwrap_or(SotaRec {
            value: default,
            updated_us: 0,
        }))
    }

    /// Finalize the candidate of `vote` (stored with it), atomically: reuse the event for
    /// this candidate or create one with the window of `decision_block`, set the SOTA to
    /// the vote's score, and delete every pending vote. Returns the event and the SOTA.
    /// The caller holds the vote lock.
    pub fn finalize(
        &self,
        vote: &Vote,
        decision_block: u64,
        window: Window,
        p: &Params,
        now_us: i64,
    ) -> Result<(EventRec, SotaRec), StoreError> {
        self.store.check_write()?;
        let pending: Vec<sled::IVec> = self.votes.raw().iter().keys().collect::<Result<_, _>>()?;
        let next_id = match self.events.raw().last()? {
            Some((k, _)) => key_u64(&k).unwrap_or(0) + 1,
            None => 1,
        };
        let ckey = candidate_key(&vote.miner_hotkey, vote.score_int);
        let sota = SotaRec {
            value: vote.score,
            updated_us: now_us,
        };
        let sota_bytes = encode(&sota)?;
        let fresh = EventRec {
            id: next_id,
            miner_hotkey: vote.miner_hotkey.clone(),
            score: vote.score,
            score_int: vote.score_int,
            result_id: vote.result_id.clone(),
            decision_block,
            start_block: window.start_block,
            end_block: window.end_block,
            alignment_mod: p.alignment_mod,
            t2_blocks: window.t2_blocks,
            created_us: now_us,
        };
        let fresh_bytes = encode(&fresh)?;
        let events_name = self.events.name().to_string();
        let (event, sota) = (
            self.votes.raw(),
            self.events.raw(),
            &self.event_index,
            self.sota.raw(),
        )
            .transaction(|(votes, events, index, sota_tree)| {
                for k in &pending {
                    votes.remove(k.clone())?;
                }
                if let Some(id) = index.get(&ckey)? {
                    let bytes = events.get(id)?.ok_or_else(|| {
                        abort(StoreError::Aborted("event index points nowhere".into()))
                    })?;
                    let existing: EventRec = decode(&events_name, &bytes).map_err(abort)?;
                    let current = match sota_tree.get(SOTA_KEY)? {
                        Some(b) => decode(&events_name, &b).map_err(abort)?,
                        None => sota,
                    };
                    return Ok((existing, current));
                }
                events.insert(&u64_key(next_id), fresh_bytes.clone())?;
                index.insert(ckey.clone(), &u64_key(next_id))?;
                sota_tree.insert(SOTA_KEY, sota_bytes.clone())?;
                Ok((fresh.clone(), sota))
            })
            .map_err(tx_err)?;
        Ok((event, sota))
    }

    /// Events by `start_block` descending (ties: newest first).
    pub fn events_by_start(&self, limit: usize) -> Result<Vec<EventRec>, StoreError> {
        let mut all: Vec<EventRec> = self
            .events
            .iter()
            .map(|r| r.map(|(_, e)| e))
            .collect::<Result<_, _>>()?;
        all.sort_by(|a, b| b.start_block.cmp(&a.start_block).then(b.id.cmp(&a.id)));
        all.truncate(limit);
        Ok(all)
    }

    /// One page of events, newest first, and the total count.
    pub fn events_page(
        &self,
        page: usize,
        size: usize,
    ) -> Result<(Vec<EventRec>, usize), StoreError> {
        let total = self.events.len();
        let skip = (page - 1).saturating_mul(size);
        let items = self
            .events
            .iter()
            .rev()
            .skip(skip)
            .take(size)
            .map(|r| r.map(|(_, e)| e))
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    // ----- blacklist -----

    /// Record a blacklist vote; false when this validator already voted for this miner.
    pub fn blacklist_vote(
        &self,
        miner: &str,
        validator: &str,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        self.store.check_write()?;
        let mut key = blacklist_prefix(miner);
        key.extend_from_slice(validator.as_bytes());
        let swapped = self.blacklist.raw().compare_and_swap(
            key,
            None as Option<&[u8]>,
            Some(encode(&now_us)?),
        )?;
        Ok(swapped.is_ok())
    }

    pub fn blacklist_votes(&self, miner: &str) -> Result<u32, StoreError> {
        Ok(self
            .blacklist
            .raw()
            .scan_prefix(blacklist_prefix(miner))
            .count() as u32)
    }

    // ----- invitations (callers hold the invitation lock) -----

    /// Create `codes` (skipping any that exist); returns the ones created.
    pub fn add_invites(&self, codes: &[String], now_us: i64) -> Result<Vec<String>, StoreError> {
        let mut created = Vec::new();
        for code in codes {
            let rec = InviteRec {
                code: code.clone(),
                miner_hotkey: None,
                coldkey_address: None,
                created_us: now_us,
                seq: self.seq(),
            };
            let swapped = self.invites.raw().compare_and_swap(
                code.as_bytes(),
                None as Option<&[u8]>,
                Some(encode(&rec)?),
            )?;
            if swapped.is_ok() {
                created.push(code.clone());
            }
        }
        Ok(created)
    }

    pub fn invite(&self, code: &str) -> Result<Option<InviteRec>, StoreError> {
        self.invites.get(code.as_bytes())
    }

    /// A page of invitations in creation order and the total.
    pub fn invites_page(
        &self,
        page: usize,
        size: usize,
    ) -> Result<(Vec<InviteRec>, usize), StoreError> {
        let mut all: Vec<InviteRec> = self
            .invites
            .iter()
            .map(|r| r.map(|(_, v)| v))
            .collect::<Result<_, _>>()?;
        all.sort_by_key(|r| r.seq);
        let total = all.len();
        let items = all
            .into_iter()
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .collect();
        Ok((items, total))
    }

    pub fn linked_code(&self, miner: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .invite_by_miner
            .get(miner.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Link `code` to `miner` (and set the coldkey if given).
    pub fn link(
        &self,
        code: &str,
        miner: &str,
        coldkey: Option<&str>,
    ) -> Result<LinkOutcome, StoreError> {
        if let Some(held) = self.linked_code(miner)? {
            if held != code {
                return Ok(LinkOutcome::Refused);
            }
        }
        let Some(mut rec) = self.invite(code)? else {
            return Ok(LinkOutcome::Refused);
        };
        match rec.miner_hotkey.as_deref() {
            Some(m) if m != miner => return Ok(LinkOutcome::Refused),
            _ => {}
        }
        rec.miner_hotkey = Some(miner.to_string());
        if let Some(c) = coldkey {
            rec.coldkey_address = Some(c.to_string());
        }
        self.put_invite(&rec)?;
        Ok(LinkOutcome::Linked)
    }

    /// Write an invitation and its miner index entry atomically.
    pub fn put_invite(&self, rec: &InviteRec) -> Result<(), StoreError> {
        self.store.check_write()?;
        let bytes = encode(rec)?;
        (self.invites.raw(), &self.invite_by_miner)
            .transaction(|(inv, by_miner)| {
                inv.insert(rec.code.as_bytes(), bytes.clone())?;
                if let Some(m) = &rec.miner_hotkey {
                    by_miner.insert(m.as_bytes(), rec.code.as_bytes())?;
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    pub fn new_invite(&self, code: &str, miner: Option<&str>, now_us: i64) -> InviteRec {
        InviteRec {
            code: code.to_string(),
            miner_hotkey: miner.map(str::to_string),
            coldkey_address: None,
            created_us: now_us,
            seq: self.seq(),
        }
    }

    pub fn invite_count(&self) -> usize {
        self.invites.len()
    }

    // ----- UID0 test submissions -----

    pub fn add_test(&self, mut rec: TestSubRec) -> Result<TestSubRec, StoreError> {
        self.store.check_write()?;
        let seq = self.seq();
        let bytes = encode(&rec)?;
        (self.tests.raw(), &self.tests_unclaimed)
            .transaction(|(tests, unclaimed)| {
                tests.insert(&u64_key(seq), bytes.clone())?;
                unclaimed.insert(&u64_key(seq), &[] as &[u8])?;
                Ok(())
            })
            .map_err(tx_err)?;
        rec.claimed_us = None;
        Ok(rec)
    }

    /// Claim up to `limit` unclaimed test submissions, oldest first, atomically.
    /// The caller holds the test-queue lock.
    pub fn claim_tests(
        &self,
        limit: usize,
        by: &str,
        now_us: i64,
    ) -> Result<Vec<TestSubRec>, StoreError> {
        self.store.check_write()?;
        let keys: Vec<sled::IVec> = self
            .tests_unclaimed
            .iter()
            .keys()
            .take(limit)
            .collect::<Result<_, _>>()?;
        let mut claimed = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Some(mut rec) = self.tests.get(k)? {
                rec.claimed_us = Some(now_us);
                rec.claimed_by = Some(by.to_string());
                claimed.push((k.clone(), encode(&rec)?, rec));
            }
        }
        (self.tests.raw(), &self.tests_unclaimed)
            .transaction(|(tests, unclaimed)| {
                for k in &keys {
                    unclaimed.remove(k.clone())?;
                }
                for (k, bytes, _) in &claimed {
                    tests.insert(k.clone(), bytes.clone())?;
                }
                Ok(())
            })
            .map_err(tx_err)?;
        Ok(claimed.into_iter().map(|(_, _, r)| r).collect())
    }
}

/// Group commit: writers call [`GroupCommit::commit`] after their writes and wait until
/// one flush that started after those writes has finished. One background thread does
/// the flushing, so concurrent requests share an fsync instead of each paying for one
/// (and no async worker thread ever blocks on the disk).
pub struct GroupCommit {
    inner: std::sync::Arc<GcInner>,
    /// The flushing thread, until the relay's start hands it to the daemon to join. It
    /// ends once every `GroupCommit` is dropped (the relay's endpoint, at shutdown).
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct GcInner {
    store: Store,
    /// Number of commit requests so far.
    requested: parking_lot::Mutex<u64>,
    wake: parking_lot::Condvar,
    /// (requests covered by the latest finished flush, its error if it failed).
    done: tokio::sync::watch::Sender<(u64, Option<String>)>,
}

impl GroupCommit {
    pub fn start(store: Store) -> GroupCommit {
        let inner = std::sync::Arc::new(GcInner {
            store,
            requested: parking_lot::Mutex::new(0),
            wake: parking_lot::Condvar::new(),
            done: tokio::sync::watch::channel((0, None)).0,
        });
        let thread = if inner.store.durability() == crate::store::Durability::Sync {
            let weak = std::sync::Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("relay-commit".into())
                .spawn(move || flusher(weak))
                .ok()
        } else {
            None
        };
        GroupCommit {
            inner,
            thread: parking_lot::Mutex::new(thread),
        }
    }

    /// The flushing thread's handle (once), for whoever waits for it at shutdown.
    pub fn take_thread(&self) -> Option<std::thread::JoinHandle<()>> {
        self.thread.lock().take()
    }

    /// Make every write this task did before the call durable (no-op with async durability).
    pub async fn commit(&self) -> Result<(), StoreError> {
        let gc = &self.inner;
        if gc.store.durability() != crate::store::Durability::Sync {
            return Ok(());
        }
        let mut rx = gc.done.subscribe();
        let ticket = {
            let mut r = gc.requested.lock();
            *r += 1;
            *r
        };
        gc.wake.notify_one();
        let state = rx
            .wait_for(|(covered, _)| *covered >= ticket)
            .await
            .map_err(|_| StoreError::Aborted("the commit thread stopped".into()))?;
        match &state.1 {
            Some(e) => Err(StoreError::Failed(format!("flush failed: {e}"))),
            None => Ok(()),
        }
    }
}

fn flusher(weak: std::sync::Weak<GcInner>) {
    let mut covered = 0u64;
    loop {
        let Some(gc) = weak.upgrade() else { return };
        let target = {
            let mut r = gc.requested.lock();
            if *r == covered {
                gc.wake
                    .wait_for(&mut r, std::time::Duration::from_millis(200));
            }
            *r
        };
        if target == covered {
            continue;
        }
        let err = gc.store.commit().err().map(|e| e.to_string());
        if let Some(e) = &err {
            tracing::error!(error = %e, "relay: store flush failed");
        }
        gc.done.send_replace((target, err));
        covered = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    #[test]
    fn pruning_drops_the_oldest_results_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), Durability::Sync).unwrap();
        let db = RelayStore::open(&store).unwrap();
        for i in 0..5 {
            db.put_result(ResultRec {
                id: format!("id{i}"),
                miner_hotkey: format!("m{i}"),
                task_id: "t".into(),
                algorithm_result: "{}".into(),
                score: 0.5,
                timestamp_us: i,
                signature: String::new(),
                timestamp_message: String::new(),
                seq: 0,
            })
            .unwrap();
        }
        assert_eq!(db.prune_results(3).unwrap(), 2);
        assert_eq!(db.result_count(), 3);
        assert!(db.result_of("m0").unwrap().is_none() && db.result_of("m1").unwrap().is_none());
        let newest: Vec<String> = db
            .results_newest(10, None)
            .unwrap()
            .into_iter()
            .map(|r| r.miner_hotkey)
            .collect();
        assert_eq!(newest, ["m4", "m3", "m2"]);
        assert_eq!(db.prune_results(0).unwrap(), 0, "0 = unlimited");
    }
}
