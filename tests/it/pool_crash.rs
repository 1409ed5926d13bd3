//! Crash safety of the pool: SIGKILL the daemon while miners register, take tasks and
//! leases and submit evolutions and evaluations (epochs closing every few seconds),
//! restart it on the same data directory, and find every acknowledged write and a stored
//! state that passes the pool's audit (counters, reputation and epoch bookings, pending
//! marks, tasks, leases, ledgers and carry-overs all agree).

use crate::common;
use crate::pool_support;

use bitsota::pool::audit::audit;
use bitsota::pool::state::PoolState;
use common::{Daemon, Opts};
use pool_support::Miner;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MINERS: usize = 6;
const DSL: &str = "# setup\nv1 = gaussian(0.0, 0.1)\n# predict\ns0 = dot(v0, v1)\n# learn\n";

/// Writes the pool acknowledged: `(algorithm id, hotkey)`.
#[derive(Default)]
struct Acked {
    evolutions: Vec<(u64, String)>,
    evaluations: Vec<(u64, String)>,
}

impl Acked {
    /// The evaluations of `todo` by `hotkey` that the answer `r` acknowledged (all).
    fn record(&mut self, r: &Value, todo: &[u64], hotkey: &str) {
        let accepted = r["accepted_evaluations"].as_u64();
        assert_eq!(accepted, Some(todo.len() as u64), "{r}");
        let by = |id: &u64| (*id, hotkey.to_string());
        self.evaluations.extend(todo.iter().map(by));
    }
}

/// Miner `i`'s evaluations of `todo`.
fn evaluations(todo: &[u64], i: usize) -> Vec<Value> {
    let score = score_of(i);
    todo.iter()
        .map(|id| json!({"algorithm_id": id, "score": score}))
        .collect()
}

/// Scores disagree across miners, so consensus marks some evaluations inaccurate (and
/// reputation hits its floor).
fn score_of(i: usize) -> f64 {
    if i % 3 == 0 {
        0.2
    } else {
        0.6
    }
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// One round of miner `i`'s work; `None` once the pool is unreachable.
fn round(m: &Miner, i: usize, acked: &Mutex<Acked>, ops: &AtomicUsize) -> Option<()> {
    let me = m.hotkey();
    let ok = |s: u16| {
        if s == 200 {
            ops.fetch_add(1, Ordering::SeqCst);
        }
        s == 200
    };
    ok(m.try_post("/api/v1/miners/register", json!({}))?.0);
    let (s, t) = m.try_post("/api/v1/tasks/request", json!({"task_type": "evolve"}))?;
    if ok(s) {
        let parent = ids(&t["algorithms"])[0];
        let (s, r) = m.try_post(
            &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
            json!({"evolved_function": DSL, "parent_functions": [{"id": parent}]}),
        )?;
        if ok(s) {
            let id = r["algorithm_id"].as_u64().unwrap();
            acked.lock().unwrap().evolutions.push((id, me.clone()));
        }
    }
    let (s, t) = m.try_post("/api/v1/tasks/request", json!({"task_type": "evaluate"}))?;
    if ok(s) {
        let todo = ids(&t["algorithms"]);
        let (s, r) = m.try_post(
            &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
            json!({ "evaluations": evaluations(&todo, i) }),
        )?;
        if ok(s) {
            acked.lock().unwrap().record(&r, &todo, &me);
        }
    }
    let (s, l) = m.try_post(
        "/api/v1/tasks/lease",
        json!({"eval_batch_size": 2, "seed_batch_size": 1}),
    )?;
    if ok(s) {
        let todo = ids(&l["evaluate_algorithms"]);
        let seed = ids(&l["seed_algorithms"]);
        let body = json!({
            "evaluations": evaluations(&todo, i),
            "evolutions": [{"parent_algorithm_ids": seed, "algorithm_dsl": DSL}],
            "iterations": 3,
        });
        let (s, r) = m.try_post(
            &format!("/api/v1/tasks/{}/submit_lease", l["lease_id"]),
            body,
        )?;
        if ok(s) {
            let mut g = acked.lock().unwrap();
            g.record(&r, &todo, &me);
            for id in r["algorithm_ids"].as_array().unwrap() {
                g.evolutions.push((id.as_u64().unwrap(), me.clone()));
            }
        }
    }
    Some(())
}

#[test]
fn sigkill_under_load_leaves_the_pool_consistent() {
    let mut d = Daemon::start(
        Opts::default()
            .env("BITSOTA_POOL_SEED_FROM_RELAY", "false")
            .env("BITSOTA_POOL_FORWARD_TO_RELAY", "false")
            .env("BITSOTA_POOL_EPOCH_S", "2")
            .env("BITSOTA_POOL_WINDOW_S", "1")
            // Small shares are carried over, so ledgers and carry-overs both change.
            .env("BITSOTA_POOL_MIN_PAYOUT_RAO", "300000000"),
    );
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let ops = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..MINERS)
        .map(|i| {
            let (base, acked, ops, stop) =
                (d.pool.clone(), acked.clone(), ops.clone(), stop.clone());
            std::thread::spawn(move || {
                let m = Miner::new(&base);
                while !stop.load(Ordering::SeqCst) && round(&m, i, &acked, &ops).is_some() {}
            })
        })
        .collect();
    // Long enough for epochs to close under load; then kill -9 mid-stream.
    let closed = |base: &str| {
        let (_, v) = pool_support::send(common::http().get(format!("{base}/api/v1/epochs")));
        v["epochs"].as_array().map_or(0, Vec::len)
    };
    let reached = common::poll_until(600, Duration::from_millis(100), || {
        (ops.load(Ordering::SeqCst) >= 400 && closed(&d.pool) >= 2).then_some(())
    });
    assert!(
        reached.is_some(),
        "load too slow: {} ops",
        ops.load(Ordering::SeqCst)
    );
    d.crash_and_restart();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("miner thread");
    }
    // The restarted pool serves, and closes what is due.
    let m = Miner::new(&d.pool);
    assert_eq!(m.post("/api/v1/miners/register", json!({})).0, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        d.signal_and_wait(libc::SIGTERM).code(),
        Some(0),
        "{}",
        d.stderr()
    );
    assert!(
        !d.stderr().contains("stored state is inconsistent"),
        "{}",
        d.stderr()
    );

    let store =
        bitsota::store::Store::open(&d.data_dir.join("store"), bitsota::store::Durability::Sync)
            .unwrap();
    let state = PoolState::open(store, Default::default()).unwrap();
    let snap = state.snapshot().unwrap();
    assert_eq!(audit(&snap), Vec::<String>::new());
    let acked = acked.lock().unwrap();
    assert!(
        acked.evolutions.len() >= 20 && acked.evaluations.len() >= 20,
        "too little acknowledged work: {} evolutions, {} evaluations",
        acked.evolutions.len(),
        acked.evaluations.len()
    );
    assert!(
        snap.ledgers.len() >= 2,
        "epochs must have closed under load"
    );
    for (id, hotkey) in &acked.evolutions {
        let a = state
            .algorithm(*id)
            .unwrap()
            .expect("acknowledged evolution lost");
        assert_eq!(a.author.as_deref(), Some(hotkey.as_str()));
    }
    for (id, hotkey) in &acked.evaluations {
        let a = state.algorithm(*id).unwrap().unwrap();
        assert!(
            a.evaluations.iter().any(|e| &e.hotkey == hotkey),
            "acknowledged evaluation of {id} by {hotkey} lost"
        );
    }
}
