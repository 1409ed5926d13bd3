//! Crash safety: SIGKILL the daemon in the middle of a stream of submissions and votes,
//! restart it on the same data directory, and find every acknowledged write.

use crate::common;
use crate::relay_support;

use bitsota::keys::Keypair;
use common::{Daemon, Opts};
use relay_support::{Api, As};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const MINERS: usize = 40;

#[derive(Default)]
struct Acked {
    /// miner index → (first id, last acknowledged salt)
    results: HashMap<usize, (String, u64)>,
    /// Finalized events: (id, miner, score_int).
    events: Vec<(u64, String, i64)>,
    /// The latest acknowledged first vote of a pair: (validator, miner, score).
    pending: Option<(usize, String, f64)>,
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_write() {
    let mut d = Daemon::start(
        Opts::default()
            .env("SOTA_CONSENSUS_VOTES", "2")
            .env("SOTA_ALIGNMENT_MOD", "1000000"),
    );
    let api = Api::new(&d.relay);
    let miners: Arc<Vec<Keypair>> = Arc::new((0..MINERS).map(|_| Keypair::generate()).collect());
    let validators: Arc<Vec<Keypair>> = Arc::new((0..400).map(|_| Keypair::generate()).collect());
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let stream = {
        let (api, miners, validators) = (api.clone(), miners.clone(), validators.clone());
        let (acked, count, stop) = (acked.clone(), count.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut k = 0usize;
            for n in 0u64.. {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let i = n as usize % MINERS;
                let Ok(a) = api.try_submit(&miners[i], &format!("task-{i}"), 0.95, n) else {
                    return; // the daemon is gone
                };
                if a.status == 200 {
                    let id = a.body["result_id"].as_str().unwrap().to_string();
                    let mut g = acked.lock().unwrap();
                    let e = g.results.entry(i).or_insert((id, n));
                    e.1 = n;
                    count.fetch_add(1, Ordering::SeqCst);
                }
                // Every 4th step: a pair of votes on a new, higher candidate.
                if n % 4 == 3 && 2 * k + 1 < validators.len() {
                    let miner = miners[k % MINERS].ss58();
                    let score = 0.1 + 0.001 * k as f64;
                    let Ok(first) = api.try_vote(&validators[2 * k], &miner, score, 7) else {
                        return;
                    };
                    assert_eq!(first.body["status"], "vote_recorded", "{:?}", first.body);
                    acked.lock().unwrap().pending = Some((2 * k, miner.clone(), score));
                    let Ok(second) = api.try_vote(&validators[2 * k + 1], &miner, score, 8) else {
                        return;
                    };
                    assert_eq!(second.body["status"], "finalized", "{:?}", second.body);
                    let ev = &second.body["finalized_event"];
                    let mut g = acked.lock().unwrap();
                    g.events.push((
                        ev["id"].as_u64().unwrap(),
                        miner,
                        ev["score_int"].as_i64().unwrap(),
                    ));
                    g.pending = None;
                    k += 1;
                }
            }
        })
    };
    // Let the stream run, then kill -9 while it is still sending.
    let reached = common::poll_until(600, std::time::Duration::from_millis(50), || {
        (count.load(Ordering::SeqCst) >= 150).then_some(())
    });
    assert!(reached.is_some(), "stream too slow");
    d.crash_and_restart();
    stop.store(true, Ordering::SeqCst);
    let _ = stream.join();

    let api = Api::new(&d.relay);
    let acked = acked.lock().unwrap();
    assert!(
        acked.events.len() >= 3,
        "the stream must have finalized events"
    );
    let v = Keypair::generate();
    let rows = api.get("/results?limit=1000", As::Validator(&v)).body;
    let rows = rows.as_array().unwrap().clone();
    let by_hotkey: HashMap<String, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["miner_hotkey"].as_str().unwrap().to_string(), r))
        .collect();
    for (i, (id, salt)) in &acked.results {
        let r = by_hotkey
            .get(&miners[*i].ss58())
            .unwrap_or_else(|| panic!("acknowledged result of miner {i} lost"));
        assert_eq!(r["id"], id.as_str());
        let inner: serde_json::Value =
            serde_json::from_str(r["algorithm_result"].as_str().unwrap()).unwrap();
        // A submission in flight at the kill may have been stored without its answer.
        assert!(
            inner["metadata"]["salt"].as_u64().unwrap() >= *salt,
            "miner {i}"
        );
    }
    let events = api.get("/sota/events?limit=200", As::Validator(&v)).body;
    let events = events.as_array().unwrap();
    for (id, miner, score_int) in &acked.events {
        let e = events
            .iter()
            .find(|e| e["id"] == *id)
            .unwrap_or_else(|| panic!("acknowledged event {id} lost"));
        assert_eq!(e["miner_hotkey"], miner.as_str());
        assert_eq!(e["score_int"], *score_int);
    }
    let best = acked.events.iter().map(|e| e.2).max().unwrap();
    assert!(bitsota::relay::consensus::score_int(api.sota()).unwrap() >= best);
    // An acknowledged vote whose pair never completed is still pending: voting it again
    // is `already_voted` — unless the second vote landed unacknowledged and finalized it.
    if let Some((vi, miner, score)) = &acked.pending {
        let again = api.vote(&validators[*vi], miner, *score, 7);
        if again.status == 200 {
            assert_eq!(again.body["status"], "already_voted", "{:?}", again.body);
        } else {
            let si = bitsota::relay::consensus::score_int(*score).unwrap();
            assert!(
                events
                    .iter()
                    .any(|e| e["miner_hotkey"] == miner.as_str() && e["score_int"] == si),
                "pending vote lost: {:?}",
                again.body
            );
        }
    }
}
