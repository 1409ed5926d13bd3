//! Throughput of the miner inside the daemon against the bare engine on the same
//! configuration and seed (the same children are evaluated): event reporting, candidate
//! verification and submissions must not slow the search. A measurement, not a check —
//! run it on a release build and read the figures:
//!
//! `cargo test --release --test miner_throughput -- --ignored --nocapture`
//! (`MINER_BENCH_CHILDREN`, default 30000 per worker; `MINER_BENCH_WORKERS`, default 1).

mod common;

use bitsota::miner::search::{self, SearchEvent};
use bitsota::miner::settings::{MinerSettings, Overrides};
use common::{http, poll_until, Daemon, Opts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a measurement: run on a release build with --ignored --nocapture"]
fn daemon_miner_against_bare_engine() {
    let children = env_u64("MINER_BENCH_CHILDREN", 30_000);
    let workers = env_u64("MINER_BENCH_WORKERS", 1);
    let tmp = tempfile::tempdir().unwrap();
    let pc = tmp.path().join("problem_config.json");
    std::fs::write(
        &pc,
        json!({
            "mining": {"checkpoint_generations": 1000},
            "args": {"iterations": children, "workers": workers, "seed": 11},
        })
        .to_string(),
    )
    .unwrap();

    // The bare engine, in this process, with the settings the daemon resolves.
    let config = bitsota::config::load(
        Some(&common::repo_root().join("appliance.toml")),
        true,
        &BTreeMap::new(),
        &[],
    )
    .unwrap();
    let settings = MinerSettings::resolve(&config, Some(&pc), &Overrides::default()).unwrap();
    let suite = search::miner_suite(&settings, &tmp.path().join("data")).unwrap();
    let started = Instant::now();
    let mut done = 0u64;
    search::run(&settings, &suite, None, &AtomicBool::new(false), |e| {
        if let SearchEvent::Finished { children, .. } = e {
            done += children;
        }
    })
    .unwrap();
    let bare = done as f64 / started.elapsed().as_secs_f64();

    // The daemon's miner on the same settings: the rate its workers report at the end.
    let d = Daemon::start(
        Opts::default().env("BITSOTA_MINER_PROBLEM_CONFIG", &pc.display().to_string()),
    );
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    poll_until(6000, Duration::from_millis(100), || {
        let s: Value = http()
            .get(format!("{}/state", d.sidecar))
            .send()
            .ok()?
            .json()
            .ok()?;
        (s["status"] == "stopped").then_some(())
    })
    .expect("the daemon's run finished");
    let mut messages = Vec::new();
    let mut cursor = 0;
    loop {
        let page: Value = http()
            .get(format!("{}/logs?limit=500&cursor={cursor}", d.sidecar))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        messages.extend(
            items
                .iter()
                .filter_map(|i| i["message"].as_str().map(str::to_string)),
        );
        cursor = page["cursor"].as_u64().unwrap();
    }
    let state: Value = http()
        .get(format!("{}/state", d.sidecar))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut daemon = 0.0;
    for w in 0..workers {
        let prefix = format!("[w{w}] Iter {children:04}:");
        let line = messages
            .iter()
            .rfind(|m| m.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no final progress line for worker {w}"));
        daemon += line.rsplit("rate=").next().unwrap().parse::<f64>().unwrap();
    }
    println!(
        "children per worker {children}, workers {workers}: bare engine {bare:.0} children/s, \
         daemon miner {daemon:.0} children/s ({:.1} %); best verified score {}, submissions accepted {}",
        100.0 * daemon / bare,
        state["best_candidate_score"],
        state["successful_submissions"],
    );
}
