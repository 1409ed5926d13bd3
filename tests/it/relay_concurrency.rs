//! Many concurrent submissions and votes from hundreds of keys leave a consistent store:
//! one result per miner (the last acknowledged, with its first id), exactly one event per
//! finalized candidate, no acknowledged write lost.

use crate::common;
use crate::relay_support;

use bitsota::keys::Keypair;
use common::{Daemon, Opts};
use relay_support::{Api, As};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

const MINERS: usize = 200;
const ROUNDS: u64 = 3;
const VALIDATORS: usize = 60;
const CANDIDATES: usize = 12;
const THREADS: usize = 16;

#[test]
fn concurrent_submissions_and_votes_stay_consistent() {
    let d = Daemon::start(
        Opts::default()
            .env("SOTA_CONSENSUS_VOTES", "3")
            .env("SOTA_ALIGNMENT_MOD", "1000000"),
    );
    let api = Api::new(&d.relay);
    let miners: Arc<Vec<Keypair>> = Arc::new((0..MINERS).map(|_| Keypair::generate()).collect());
    let validators: Arc<Vec<Keypair>> =
        Arc::new((0..VALIDATORS).map(|_| Keypair::generate()).collect());
    let candidates: Arc<Vec<(String, f64)>> = Arc::new(
        (0..CANDIDATES)
            .map(|j| (miners[j].ss58(), 0.1 + 0.01 * j as f64))
            .collect(),
    );

    // (miner index) → (first acknowledged id, last acknowledged salt)
    let acked: Arc<Mutex<HashMap<usize, (String, u64)>>> = Arc::default();
    // Finalized answers: (event id, miner, score_int).
    let finalized: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let (api, miners, validators, candidates) = (
            api.clone(),
            miners.clone(),
            validators.clone(),
            candidates.clone(),
        );
        let (acked, finalized) = (acked.clone(), finalized.clone());
        handles.push(std::thread::spawn(move || {
            // Each miner belongs to one thread, so its submissions are ordered.
            for round in 0..ROUNDS {
                for i in (t..MINERS).step_by(THREADS) {
                    let salt = round * 1_000_000 + i as u64;
                    let a = api.submit(&miners[i], &format!("task-{i}"), 0.9, salt);
                    assert_eq!(a.status, 200, "{:?}", a.body);
                    let id = a.body["result_id"].as_str().unwrap().to_string();
                    let mut acked = acked.lock().unwrap();
                    let entry = acked.entry(i).or_insert((id.clone(), salt));
                    assert_eq!(entry.0, id, "a miner's id never changes");
                    entry.1 = salt;
                }
                // Votes interleaved with the submissions: every validator of this thread
                // votes for candidates in a thread-specific order.
                for v in (t..VALIDATORS).step_by(THREADS) {
                    for k in 0..CANDIDATES {
                        let (miner, score) = &candidates[(k * 7 + v + round as usize) % CANDIDATES];
                        let a = api.vote(&validators[v], miner, *score, 10 + round);
                        assert!(
                            a.status == 200 || a.status == 400,
                            "{} {:?}",
                            a.status,
                            a.body
                        );
                        if a.body["status"] == "finalized" {
                            let ev = &a.body["finalized_event"];
                            finalized.lock().unwrap().push((
                                ev["id"].as_u64().unwrap(),
                                ev["miner_hotkey"].as_str().unwrap().to_string(),
                                ev["score_int"].as_i64().unwrap(),
                            ));
                        }
                    }
                }
            }
        }));
    }
    for h in handles {
        h.join().expect("worker thread");
    }

    // Results: one per miner, the last acknowledged body, the first id.
    let v = Keypair::generate();
    let rows = api.get("/results?limit=1000", As::Validator(&v)).body;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), MINERS);
    let acked = acked.lock().unwrap();
    let by_miner: HashMap<String, usize> = miners
        .iter()
        .enumerate()
        .map(|(i, k)| (k.ss58(), i))
        .collect();
    let mut seen = HashSet::new();
    for r in rows {
        let i = by_miner[r["miner_hotkey"].as_str().unwrap()];
        assert!(seen.insert(i), "one result per miner");
        let (id, salt) = &acked[&i];
        assert_eq!(r["id"], id.as_str());
        let inner: serde_json::Value =
            serde_json::from_str(r["algorithm_result"].as_str().unwrap()).unwrap();
        assert_eq!(inner["metadata"]["salt"].as_u64(), Some(*salt));
    }
    // Newest first: sequence order is strictly by acknowledgement time of the last write.
    let stamps: Vec<&str> = rows
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Events: exactly one per finalized candidate, each acknowledged one present.
    let events = api.get("/sota/events?limit=200", As::Validator(&v)).body;
    let events = events.as_array().unwrap();
    let finalized = finalized.lock().unwrap();
    assert!(
        !finalized.is_empty(),
        "some candidate must have reached consensus"
    );
    let mut candidates_seen = HashSet::new();
    for e in events {
        let key = (
            e["miner_hotkey"].as_str().unwrap().to_string(),
            e["score_int"].as_i64().unwrap(),
        );
        assert!(candidates_seen.insert(key), "one event per candidate");
    }
    let ids: HashSet<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    for (id, miner, score_int) in finalized.iter() {
        assert!(ids.contains(id), "acknowledged event {id} missing");
        let e = events.iter().find(|e| e["id"] == *id).unwrap();
        assert_eq!(
            (
                e["miner_hotkey"].as_str().unwrap(),
                e["score_int"].as_i64().unwrap()
            ),
            (miner.as_str(), *score_int)
        );
    }
    assert_eq!(ids.len(), events.len());
    // Each event raised the SOTA: scores increase with the event id.
    let mut by_id: Vec<(u64, f64)> = events
        .iter()
        .map(|e| (e["id"].as_u64().unwrap(), e["score"].as_f64().unwrap()))
        .collect();
    by_id.sort_by_key(|p| p.0);
    assert!(by_id.windows(2).all(|w| w[0].1 < w[1].1), "{by_id:?}");
    assert_eq!(api.sota(), by_id.last().unwrap().1);
}
