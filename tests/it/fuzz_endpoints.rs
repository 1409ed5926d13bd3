//! Every endpoint of every listener answers malformed input with a 4xx and a reason —
//! never a 5xx, never a dropped connection. Seeded, bounded random requests (signed where
//! the endpoint needs a signature, so the bodies reach the parsers behind the auth).

use crate::common;

use bitsota::keys::{pool_headers, relay_miner_headers, Keypair};
use bitsota::rng::Rng;
use common::{http, Daemon, Opts};
use serde_json::{json, Value};

/// Field names the endpoints read, so random objects hit real parsers with wrong types.
const FIELDS: &[&str] = &[
    "task_id",
    "algorithm_result",
    "score",
    "miner_hotkey",
    "seen_block",
    "result_id",
    "code",
    "coldkey_address",
    "run_id",
    "replace",
    "value",
    "status",
    "events",
    "type",
    "kind",
    "payload",
    "job_id",
    "result",
    "error",
    "task_type",
    "engine",
    "workers",
    "seed",
    "evaluations",
    "evolved_function",
    "parent_functions",
    "evolutions",
    "iterations",
    "eval_batch_size",
    "seed_batch_size",
    "algorithm_dsl",
    "input_dim",
    "public_address",
    "signature",
    "message",
    "worker_id",
    "iteration",
];

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.index(12) {
        0 => Value::Null,
        1 => json!(rng.index(2) == 1),
        2 => json!(rng.next_u64() as i64),
        3 => json!(-(rng.index(1000) as i64)),
        4 => json!(1e308),
        5 => json!(-0.0),
        6 => json!(rng.next_f64() * 2.0 - 0.5),
        7 => json!("NaN"),
        8 => json!("5".repeat(rng.index(60))),
        9 => json!("x\u{0}y\u{202e}é"),
        10 => json!("# setup\ns0 = bogus(1)\n"),
        _ => json!(""),
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    if depth > 2 {
        return random_scalar(rng);
    }
    match rng.index(4) {
        0 => Value::Array(
            (0..rng.index(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        1 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.index(6) {
                let k = FIELDS[rng.index(FIELDS.len())].to_string();
                m.insert(k, random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => random_scalar(rng),
    }
}

/// A request body: broken JSON text, random bytes, or a random JSON document.
fn random_body(rng: &mut Rng) -> Vec<u8> {
    match rng.index(5) {
        0 => (0..rng.index(64)).map(|_| rng.next_u64() as u8).collect(),
        1 => b"{\"score\": 0.5, \"task_id\": ".to_vec(),
        2 => b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
        _ => serde_json::to_vec(&random_value(rng, 0)).unwrap(),
    }
}

fn random_query(rng: &mut Rng) -> String {
    let keys = [
        "limit",
        "page",
        "page_size",
        "cursor",
        "run_id",
        "task_id",
        "worker_id",
        "lease_seconds",
        "task_type",
        "min_score",
    ];
    let vals = [
        "-1",
        "0",
        "1",
        "99999999999999999999",
        "abc",
        "",
        "%00",
        "1e9",
        "0.5",
        "null",
    ];
    (0..rng.index(3))
        .map(|_| {
            format!(
                "{}={}",
                keys[rng.index(keys.len())],
                vals[rng.index(vals.len())]
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    Relay,
    Pool,
    Admin,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn malformed_requests_never_get_a_5xx() {
    let d = Daemon::start(Opts::default());
    let c = http();
    let key = Keypair::generate();
    let hk = key.ss58();
    let relay: Vec<(&str, String, Auth)> = vec![
        ("POST", "/submit_solution".into(), Auth::Relay),
        ("POST", "/test/submit_solution".into(), Auth::Relay),
        ("POST", "/sota/vote".into(), Auth::Relay),
        ("POST", format!("/blacklist/{hk}"), Auth::Relay),
        ("POST", "/blacklist/not-a-hotkey".into(), Auth::Relay),
        ("POST", "/invitation_code/link".into(), Auth::Relay),
        ("POST", "/coldkey_address/update".into(), Auth::Relay),
        ("GET", "/invitation_code/linked".into(), Auth::Relay),
        ("GET", "/results".into(), Auth::Relay),
        ("GET", format!("/results/{hk}"), Auth::Relay),
        ("GET", "/sota/events".into(), Auth::Relay),
        ("GET", "/test/submissions".into(), Auth::Relay),
        ("POST", "/invitation_code/generate/0".into(), Auth::Admin),
        ("POST", "/invitation_code/generate/abc".into(), Auth::Admin),
        ("GET", "/invitation_code/list/-1/x".into(), Auth::Admin),
        ("GET", "/admin/status".into(), Auth::Admin),
        ("GET", "/sota-events".into(), Auth::None),
        ("GET", "/sota_threshold".into(), Auth::None),
        ("GET", "/version.json".into(), Auth::None),
    ];
    let sidecar: Vec<(&str, String, Auth)> = [
        ("POST", "/runs/start"),
        ("POST", "/runs/stop"),
        ("GET", "/state"),
        ("POST", "/set_global_sota"),
        ("POST", "/submission_result"),
        ("POST", "/ingest_batch"),
        ("GET", "/logs"),
        ("GET", "/candidates"),
        ("GET", "/populations"),
        ("POST", "/jobs/enqueue"),
        ("GET", "/jobs/next"),
        ("GET", "/jobs/results"),
        ("POST", "/jobs/nope/result"),
        ("POST", "/appliance/mine/stop"),
        ("GET", "/appliance/validators"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_string(), Auth::None))
    .collect();
    let pool: Vec<(&str, String, Auth)> = [
        ("POST", "/api/v1/miners/register"),
        ("GET", "/api/v1/miners/stats"),
        ("GET", "/api/v1/miners/leaderboard"),
        ("POST", "/api/v1/tasks/request"),
        ("POST", "/api/v1/tasks/lease"),
        ("POST", "/api/v1/tasks/1/submit_evolution"),
        ("POST", "/api/v1/tasks/abc/submit_evaluation"),
        ("POST", "/api/v1/tasks/99999999999999999999/submit_lease"),
        ("GET", "/api/v1/results/sota"),
        ("GET", "/api/v1/results"),
        ("GET", "/api/v1/monitor/summary"),
        ("GET", "/api/v1/epochs"),
        ("GET", "/api/v1/epochs/-3"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_string(), Auth::Pool))
    .collect();

    let mut rng = Rng::new(0xF022);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (base, routes) in [(&d.relay, relay), (&d.sidecar, sidecar), (&d.pool, pool)] {
        for (method, path, auth) in routes {
            for _ in 0..12 {
                let q = random_query(&mut rng);
                let url = format!("{base}{path}?{q}");
                let mut req = if method == "GET" {
                    c.get(&url)
                } else {
                    c.post(&url)
                };
                let headers = match auth {
                    Auth::Relay => Some(relay_miner_headers(&key, unix_now())),
                    Auth::Pool => Some(pool_headers(&key, unix_now())),
                    _ => None,
                };
                if let Some(h) = &headers {
                    for (k, v) in h.pairs() {
                        req = req.header(k, v);
                    }
                }
                if let Auth::Admin = auth {
                    req = req.header("X-Auth-Token", "dev");
                }
                if method == "POST" {
                    req = req
                        .header("Content-Type", "application/json")
                        .body(random_body(&mut rng));
                }
                let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
                let status = resp.status();
                let text = resp.text().unwrap_or_default();
                assert!(
                    status.as_u16() < 500,
                    "{method} {url} answered {status}: {text}\nstderr:\n{}",
                    d.stderr()
                );
                if status.is_client_error() && status.as_u16() != 404 {
                    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                        panic!("{method} {url}: {status} body is not JSON: {text}")
                    });
                    assert!(
                        v.get("detail").is_some(),
                        "{method} {url}: {status} without detail: {text}"
                    );
                }
                *statuses.entry(status.as_u16()).or_default() += 1;
            }
        }
    }
    println!("statuses: {statuses:?}");
    // The bodies reached the parsers behind the auth (not only 401s), and some were fine.
    let count = |lo: u16, hi: u16| statuses.range(lo..=hi).map(|(_, n)| n).sum::<usize>();
    assert!(count(400, 400) + count(422, 422) > 100, "{statuses:?}");
    assert!(count(200, 299) > 50, "{statuses:?}");
    // The daemon is still healthy.
    assert!(c
        .get(format!("{}/health", d.relay))
        .send()
        .unwrap()
        .status()
        .is_success());
}
