//! A relay whose stored result was tampered with (a forged miner signature) must not get
//! a validator's vote. The embedded relay verifies signatures on submission, so the
//! forgery is planted in its store while the daemon is stopped — what a compromised
//! remote relay could serve.

mod common;

use bitsota::keys::{relay_miner_headers, Keypair};
use bitsota::relay::store::RelayStore;
use bitsota::store::{Durability, Store};
use common::{bin, http, repo_root, wait_bounded, Daemon, Opts};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const LINEAR: &str = "# setup\ns2 = 0.009999999776482582\nv1 = gaussian(0.0, 0.10000000149011612)\n\
    # predict\ns0 = dot(v0, v1)\n# learn\ns3 = s1 - s0\ns3 = s3 * s2\nv2 = v0 * s3\nv1 = v1 + v2\n";

#[test]
fn a_forged_signature_is_counted_and_never_voted() {
    let mut first = Daemon::start(Opts::default());
    let miner = Keypair::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut req = http().post(format!("{}/submit_solution", first.relay)).json(&json!({
        "task_id": "t", "score": 0.9,
        "algorithm_result": {"task_type": "scalar_linear", "algorithm_dsl": LINEAR, "input_dim": 16}
    }));
    for (k, v) in relay_miner_headers(&miner, now).pairs() {
        req = req.header(k, v);
    }
    assert_eq!(req.send().unwrap().status().as_u16(), 200);
    assert!(first.signal_and_wait(libc::SIGTERM).success());

    {
        let store = Store::open(&first.data_dir.join("store"), Durability::Sync).unwrap();
        let relay = RelayStore::open(&store).unwrap();
        let mut rec = relay.result_of(&miner.ss58()).unwrap().expect("stored");
        rec.signature = Keypair::generate().sign_hex(&rec.timestamp_message);
        relay.put_result(rec).unwrap();
        store.flush().unwrap();
    }

    let d = Daemon::start(Opts {
        data_dir: Some(first.data_dir.clone()),
        ..Opts::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let stderr_path = tmp.path().join("validate.log");
    let mut child = Command::new(bin())
        .args(["validate", "--config"])
        .arg(repo_root().join("appliance.toml"))
        .arg("--data-dir")
        .arg(tmp.path().join("v"))
        .args(["--relay-url", &d.relay, "--max-polls", "1"])
        .env("VALIDATOR_TASK_COUNT", "4")
        .env("BITSOTA_LOG_FILE", "false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_bounded(&mut child, Duration::from_secs(120)).success());
    let out = std::fs::read_to_string(&stderr_path).unwrap();
    let stats = out.lines().rev().find(|l| l.contains("polls=")).expect(&out);
    for part in ["new=1 ", "sig_fail=1 ", "votes=0/0 ", "blacklisted=0 ", "passed=0 "] {
        assert!(stats.contains(part), "{part} in {stats}");
    }
    let sota: Value = http()
        .get(format!("{}/sota_threshold", d.relay))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(sota["sota_threshold"].as_f64(), Some(0.0));
}
