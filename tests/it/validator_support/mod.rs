//! Shared by the validator integration tests: the test program, a signing miner, a
//! `bitsota validate` runner, and readers for its stats line and JSONL metrics.
#![allow(dead_code)] // each test crate uses a different part

use crate::common::{bin, http, repo_root, wait_bounded};
use bitsota::config::ValidatorConfig;
use bitsota::keys::{relay_miner_headers, relay_validator_headers, Keypair};
use bitsota::relay::store::{RelayStore, ResultRec};
use bitsota::store::{Durability, Store};
use bitsota::tasks::TaskType;
use bitsota::validator::suites::Suites;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Validator suite size for these tests (small: debug builds). Validators under test get
/// it through `VALIDATOR_TASK_COUNT`.
pub const TASKS: &str = "6";

/// The spec's dialect-A example: online linear regression by gradient steps.
pub const LINEAR: &str =
    "# setup\ns2 = 0.009999999776482582\nv1 = gaussian(0.0, 0.10000000149011612)\n\
    # predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A scalar_linear `algorithm_result` with 16 features.
pub fn algorithm(dsl: &str) -> Value {
    json!({"task_type": "scalar_linear", "algorithm_dsl": dsl, "input_dim": 16})
}

/// The validator score of `dsl` on the test suite, computed in this process by the same
/// library code the validators run.
pub fn local_score(dsl: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ValidatorConfig {
        task_count: TASKS.parse().unwrap(),
        ..ValidatorConfig::default()
    };
    let suites = Suites::from_config(&cfg, dir.path()).unwrap();
    let alg = suites.parse(&algorithm(dsl).to_string()).unwrap();
    suites
        .prepared(TaskType::ScalarLinear, 16, &|| false)
        .unwrap()
        .score(&alg.program)
}

/// A signed `POST /submit_solution`; returns the status and body.
pub fn submit(relay: &str, miner: &Keypair, algorithm_result: Value, score: f64) -> (u16, Value) {
    let mut req = http().post(format!("{relay}/submit_solution")).json(
        &json!({"task_id": "sota-mine-test", "score": score, "algorithm_result": algorithm_result}),
    );
    for (k, v) in relay_miner_headers(miner, unix_now()).pairs() {
        req = req.header(k, v);
    }
    let resp = req.send().unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

pub fn get(url: &str) -> Value {
    http().get(url).send().unwrap().json().unwrap()
}

pub fn sota(relay: &str) -> f64 {
    get(&format!("{relay}/sota_threshold"))["sota_threshold"]
        .as_f64()
        .unwrap()
}

/// `GET /sota/events` as some validator (test mode: any signer).
pub fn events(relay: &str) -> Vec<Value> {
    let mut req = http().get(format!("{relay}/sota/events"));
    for (k, v) in relay_validator_headers(&Keypair::generate(), unix_now()).pairs() {
        req = req.header(k, v);
    }
    let body: Value = req.send().unwrap().json().unwrap();
    body.as_array().cloned().unwrap_or_default()
}

/// `bitsota validate` against `relay` with its own data directory, polling `polls` times
/// (0.2 s apart), its stderr going to the returned path beside `data_dir`.
pub fn validate_command(
    relay: &str,
    data_dir: &Path,
    polls: u32,
    extra: &[&str],
) -> (Command, PathBuf) {
    let stderr_path = data_dir.with_extension("stderr.log");
    let mut cmd = Command::new(bin());
    cmd.args(["validate", "--config"])
        .arg(repo_root().join("appliance.toml"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--relay-url", relay, "--poll-interval", "0.2"])
        .args(["--max-polls", &polls.to_string()])
        .args(extra)
        .env_remove("RUST_LOG")
        .env("VALIDATOR_TASK_COUNT", TASKS)
        .env("BITSOTA_LOG_FILE", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    (cmd, stderr_path)
}

/// Run [`validate_command`] to its end; returns its stderr (the stats lines).
pub fn validate(relay: &str, data_dir: &Path, polls: u32, extra: &[&str]) -> String {
    let (mut cmd, stderr_path) = validate_command(relay, data_dir, polls, extra);
    let mut child = cmd.spawn().unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "validate failed: {stderr}");
    stderr
}

/// The counters of the last stats line, as `name → value`.
pub fn last_stats(stderr: &str) -> HashMap<String, String> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("polls="))
        .unwrap_or_else(|| panic!("no stats line in: {stderr}"));
    let start = line.find("polls=").unwrap();
    line[start..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The JSONL metrics lines of one file (none if it does not exist).
pub fn metrics_file(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("metrics lines are JSON"))
        .collect()
}

/// Every JSONL metrics line the validators of `data_dir` wrote.
pub fn metrics(data_dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir.join("metrics")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with("validator-") && name.ends_with(".jsonl"),
            "{name}"
        );
        out.extend(metrics_file(&path));
    }
    out
}

pub fn of_event<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// Rewrite `miner`'s stored result in a stopped daemon's relay store: what a compromised
/// or differently configured relay could serve, past the embedded relay's checks.
pub fn tamper_with_result(data_dir: &Path, miner: &Keypair, change: impl FnOnce(&mut ResultRec)) {
    let store = Store::open(&data_dir.join("store"), Durability::Sync).unwrap();
    let relay = RelayStore::open(&store).unwrap();
    let mut rec = relay.result_of(&miner.ss58()).unwrap().expect("stored");
    change(&mut rec);
    relay.put_result(rec).unwrap();
    store.flush().unwrap();
}
