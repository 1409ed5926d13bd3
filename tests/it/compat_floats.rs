//! Every float that crosses the wire comes back bit-identical (issue: the reference
//! validator re-voted for a SOTA stored one ULP low). 10,000 random finite doubles go
//! through the real daemon as relay scores and votes, sidecar candidate scores and pool
//! evaluations, and are read back from `/results`, `/sota_threshold`, `/sota-events`,
//! `/candidates` and the pool's `/api/v1/results`.

use crate::common;
use crate::relay_support;

use bitsota::keys::{pool_headers, Keypair};
use common::{http, Daemon, Opts};
use rand::{Rng, SeedableRng};
use relay_support::{now, Api, As};
use serde_json::{json, Value};
use std::collections::HashMap;

const VALUES: usize = 10_000;
/// Relay votes are serialised (each one finalises and raises the SOTA): a share of the
/// values goes through them, the rest through the parallel paths.
const VOTES: usize = 3_000;
/// Pool algorithms; each gets three evaluations (3 × this many values).
const POOL_ALGORITHMS: usize = 400;
const THREADS: usize = 8;

/// A random double in `[2^-40, 8)` with a random 52-bit mantissa: inside what the relay
/// accepts as a score (|s| < 9) and, with ~17 significant digits, exactly the numbers a
/// parser without correct rounding gets wrong.
fn relay_double(rng: &mut impl Rng) -> f64 {
    let exp: u64 = rng.gen_range(1023 - 40..=1023 + 2);
    f64::from_bits((exp << 52) | (rng.gen::<u64>() & ((1 << 52) - 1)))
}

/// Any finite double, subnormals and huge magnitudes included.
fn any_double(rng: &mut impl Rng) -> f64 {
    loop {
        let x = f64::from_bits(rng.gen());
        if x.is_finite() {
            return x;
        }
    }
}

fn same(label: &str, sent: f64, got: &Value) {
    let back = got
        .as_f64()
        .unwrap_or_else(|| panic!("{label}: {got} is not a number"));
    assert_eq!(
        back.to_bits(),
        sent.to_bits(),
        "{label}: sent {sent:e} ({:#x}), got {back:e} ({:#x})",
        sent.to_bits(),
        back.to_bits()
    );
}

/// A key from random bytes: thousands of miners without the mnemonic scheme's 2048
/// PBKDF2 rounds each.
fn fast_key(rng: &mut impl Rng) -> Keypair {
    Keypair::from_mini_secret(&rng.gen()).expect("any 32 bytes are a mini secret")
}

/// Run `f` over `items` on [`THREADS`] threads.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let chunk = items.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let f = &f;
            s.spawn(move || part.iter().for_each(f));
        }
    });
}

#[test]
fn ten_thousand_random_doubles_round_trip_bit_exactly() {
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_RELAY_DURABILITY", "async")
            .env("BITSOTA_POOL_DURABILITY", "async")
            .env("BITSOTA_POOL_SEED_FROM_RELAY", "false")
            .env("BITSOTA_POOL_FORWARD_TO_RELAY", "false")
            .env("BITSOTA_POOL_EVAL_BATCH_SIZE", "256")
            // The reference's cap of a run's candidates (the shipped one is smaller).
            .env("BITSOTA_STORE_MAX_RUN_CANDIDATES", "2000"),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let relay_values: Vec<f64> = (0..VALUES - VOTES - 3 * POOL_ALGORITHMS)
        .map(|_| relay_double(&mut rng))
        .collect();
    let mut votes: Vec<f64> = (0..VOTES).map(|_| relay_double(&mut rng)).collect();
    let pool_values: Vec<f64> = (0..3 * POOL_ALGORITHMS)
        .map(|_| any_double(&mut rng))
        .collect();
    let api = Api::new(&d.relay);
    let validator = Keypair::generate();

    // Relay scores → /results/{hotkey} and /results (one result per miner).
    let miners: Vec<(Keypair, f64)> = relay_values
        .iter()
        .map(|&v| (fast_key(&mut rng), v))
        .collect();
    let indexed: Vec<(usize, &(Keypair, f64))> = miners.iter().enumerate().collect();
    parallel(&indexed, |(i, (kp, score))| {
        let a = api.submit(kp, &format!("t{i}"), *score, *i as u64);
        assert_eq!(a.status, 200, "{}", a.body);
    });
    parallel(&miners, |(kp, score)| {
        let a = api.get(
            &format!("/results/{}", kp.ss58()),
            As::Validator(&validator),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        same("/results/{hotkey}", *score, &a.body[0]["score"]);
    });
    let by_hotkey: HashMap<String, f64> = miners.iter().map(|(k, s)| (k.ss58(), *s)).collect();
    let a = api.get("/results?limit=1000", As::Validator(&validator));
    assert_eq!(a.body.as_array().map(Vec::len), Some(1000));
    for r in a.body.as_array().unwrap() {
        same(
            "/results",
            by_hotkey[r["miner_hotkey"].as_str().unwrap()],
            &r["score"],
        );
    }

    // Votes (consensus 1 in the shipped config): each finalises, so they go in rising
    // order; every one is read back from /sota_threshold at once and /sota-events later.
    votes.sort_by(f64::total_cmp);
    votes.dedup();
    let voted_for: Vec<String> = votes.iter().map(|_| fast_key(&mut rng).ss58()).collect();
    for (i, (&score, miner)) in votes.iter().zip(&voted_for).enumerate() {
        let a = api.vote(&validator, miner, score, 1000 + i as u64);
        assert_eq!(a.body["status"], "finalized", "{}", a.body);
        same("vote current_sota", score, &a.body["current_sota"]);
        let t = api.get("/sota_threshold", As::Nobody);
        same("/sota_threshold", score, &t.body["sota_threshold"]);
    }
    let mut events = Vec::new();
    for page in 1.. {
        let a = api.get(
            &format!("/sota-events?page={page}&page_size=100"),
            As::Nobody,
        );
        let rows = a.body["results"].as_array().unwrap().clone();
        if rows.is_empty() {
            break;
        }
        events.extend(rows);
    }
    assert_eq!(events.len(), votes.len());
    // Newest first.
    for (row, (&score, miner)) in events.iter().zip(votes.iter().zip(&voted_for).rev()) {
        assert_eq!(row["miner_hotkey"], miner.as_str());
        same("/sota-events", score, &row["score"]);
    }

    // Sidecar candidates: every value, 500 per batch, 2,000 per run (the run's cap).
    let all: Vec<f64> = relay_values
        .iter()
        .chain(&votes)
        .chain(&pool_values)
        .copied()
        .collect();
    let c = http();
    let runs: Vec<(usize, &[f64])> = all.chunks(2000).enumerate().collect();
    parallel(&runs, |(r, values)| {
        let run = format!("floats-{r}");
        for (b, batch) in values.chunks(500).enumerate() {
            let events: Vec<Value> = batch
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    json!({"type": "candidate", "worker_id": 0, "iteration": b * 500 + i,
                    "validator_score": v, "eval_score": v, "algorithm_dsl": ""})
                })
                .collect();
            let r = c
                .post(format!("{}/ingest_batch", d.sidecar))
                .json(&json!({"run_id": run, "events": events}))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
        let mut cursor = 0;
        let mut got = Vec::new();
        loop {
            let v: Value = c
                .get(format!(
                    "{}/candidates?run_id={run}&cursor={cursor}&limit=500",
                    d.sidecar
                ))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let items = v["items"].as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            cursor = v["cursor"].as_u64().unwrap();
            got.extend(items);
        }
        assert_eq!(got.len(), values.len());
        for (item, &v) in got.iter().zip(values.iter()) {
            same("sidecar validator_score", v, &item["validator_score"]);
            same("sidecar eval_score", v, &item["eval_score"]);
        }
    });

    // Pool evaluations: three evaluators score every algorithm (evals_required = 3).
    let author = Keypair::generate();
    let pool_post = |kp: &Keypair, path: &str, body: Value| -> Value {
        let h = pool_headers(kp, now());
        let rb = h
            .pairs()
            .iter()
            .fold(c.post(format!("{}{path}", d.pool)), |rb, (k, v)| {
                rb.header(*k, *v)
            });
        let r = rb.json(&body).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.json().unwrap()
    };
    const DSL: &str = "# predict\ns0 = dot(v0, v1)\n";
    for _ in 0..POOL_ALGORITHMS {
        let t = pool_post(
            &author,
            "/api/v1/tasks/request",
            json!({"task_type": "evolve"}),
        );
        pool_post(
            &author,
            &format!("/api/v1/tasks/{}/submit_evolution", t["batch_id"]),
            json!({"evolved_function": DSL, "parent_functions": [{"id": t["algorithms"][0]["id"]}]}),
        );
    }
    let evaluators: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let mut expected: HashMap<(u64, String), f64> = HashMap::new();
    let mut values = pool_values.iter();
    for e in &evaluators {
        loop {
            let h = pool_headers(e, now());
            let rb = h.pairs().iter().fold(
                c.post(format!("{}/api/v1/tasks/request", d.pool)),
                |rb, (k, v)| rb.header(*k, *v),
            );
            let r = rb.json(&json!({"task_type": "evaluate"})).send().unwrap();
            if r.status().as_u16() == 404 {
                break;
            }
            let t: Value = r.json().unwrap();
            let evals: Vec<Value> = t["algorithms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let id = a["id"].as_u64().unwrap();
                    let v = *values.next().expect("enough values");
                    expected.insert((id, e.ss58()), v);
                    json!({"algorithm_id": id, "score": v})
                })
                .collect();
            pool_post(
                e,
                &format!("/api/v1/tasks/{}/submit_evaluation", t["batch_id"]),
                json!({ "evaluations": evals }),
            );
        }
    }
    assert_eq!(expected.len(), 3 * POOL_ALGORITHMS);
    let h = pool_headers(&author, now());
    let rb = h.pairs().iter().fold(
        c.get(format!("{}/api/v1/results?limit=1000", d.pool)),
        |rb, (k, v)| rb.header(*k, *v),
    );
    let results: Value = rb.send().unwrap().json().unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), POOL_ALGORITHMS);
    let mut checked = 0;
    for r in results {
        let id = r["id"].as_u64().unwrap();
        let mut scores = Vec::new();
        for e in r["evaluations"].as_array().unwrap() {
            let sent = expected[&(id, e["hotkey"].as_str().unwrap().to_string())];
            same("pool evaluation", sent, &e["score"]);
            scores.push(sent);
            checked += 1;
        }
        // The consensus score is the median: one of the submitted values, exactly.
        scores.sort_by(f64::total_cmp);
        same("pool consensus", scores[1], &r["score"]);
    }
    assert_eq!(checked, 3 * POOL_ALGORITHMS);
}
