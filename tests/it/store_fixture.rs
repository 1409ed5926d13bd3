//! Stores written by earlier schema versions open, migrate and read back (appliance.md §4).
//!
//! `fixtures/store-v1/` is a store written by a real run of the shipped local loop at
//! schema version 1 (miner, validators, relay, sidecar). Each test copies it into a fresh
//! data directory, starts the daemon on it and reads the data back over HTTP.

use crate::common;

use bitsota::keys::{relay_validator_headers, Keypair};
use bitsota::store::{Durability, Store};
use common::{http, repo_root, Daemon, Opts};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn fixture_data_dir(version: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(
        &repo_root()
            .join("fixtures")
            .join(format!("store-v{version}")),
        &data.join("store"),
    );
    (tmp, data)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn schema_1_store_opens_at_the_current_version() {
    let (_tmp, data) = fixture_data_dir(1);
    let store = Store::open(&data.join("store"), Durability::Sync).unwrap();
    assert_eq!(
        store.schema_version().unwrap() as usize,
        bitsota::store::MIGRATIONS.len()
    );
}

#[test]
fn schema_1_store_serves_its_data() {
    let (_tmp, data) = fixture_data_dir(1);
    let d = Daemon::start(Opts {
        data_dir: Some(data),
        ..Opts::default()
    });
    let c = http();

    // Relay: the finalized events and the raised threshold.
    let events: serde_json::Value = c
        .get(format!("{}/sota-events", d.relay))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(events["total"].as_u64().unwrap() >= 1, "{events}");
    let threshold: serde_json::Value = c
        .get(format!("{}/sota_threshold", d.relay))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        threshold["sota_threshold"].as_f64().unwrap() > 0.0,
        "{threshold}"
    );

    // Relay: the miner's result, readable by a validator (test mode).
    let validator = Keypair::generate();
    let headers = relay_validator_headers(&validator, unix_now());
    let mut req = c.get(format!("{}/results", d.relay));
    for (k, v) in headers.pairs() {
        req = req.header(k, v);
    }
    let results: Vec<serde_json::Value> = req.send().unwrap().json().unwrap();
    assert!(!results.is_empty());
    let algorithm: serde_json::Value =
        serde_json::from_str(results[0]["algorithm_result"].as_str().unwrap()).unwrap();
    bitsota::engine::parse_program(algorithm["algorithm_dsl"].as_str().unwrap()).unwrap();

    // Sidecar: the run, its candidates and its log.
    let state: serde_json::Value = c
        .get(format!("{}/state", d.sidecar))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        state["successful_submissions"].as_u64().unwrap() >= 1,
        "{state}"
    );
    let run = state["run_id"].as_str().unwrap();
    for path in ["candidates", "logs"] {
        let page: serde_json::Value = c
            .get(format!("{}/{path}?run_id={run}&cursor=0", d.sidecar))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(
            !page["items"].as_array().unwrap().is_empty(),
            "{path}: {page}"
        );
    }
}
