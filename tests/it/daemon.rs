//! The daemon as a whole: listeners, data directory lock, shutdown, configuration errors.

use crate::common;

use common::{bin, http, Daemon, Opts};
use std::process::Command;

fn serve_with_env(env: &[(&str, &str)], data_dir: &std::path::Path) -> std::process::Output {
    let mut cmd = common::serve_command(data_dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_bounded(&mut child, std::time::Duration::from_secs(30));
    child.wait_with_output().unwrap()
}

fn health(base: &str) -> serde_json::Value {
    http()
        .get(format!("{base}/health"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn all_listeners_answer_health_and_sigint_exits_zero() {
    let mut d = Daemon::start(Opts::default());
    let relay = health(&d.relay);
    assert_eq!(relay["status"], "healthy");
    assert!(relay["timestamp"].as_str().unwrap().ends_with('Z'));
    let sidecar = health(&d.sidecar);
    assert_eq!(sidecar["status"], "ok");
    assert!(sidecar["ts"].as_f64().unwrap() > 1.7e9);
    let pool = health(&d.pool);
    assert_eq!(pool["status"], "healthy");
    for sub in ["store", "keys", "datasets", "metrics", "logs"] {
        assert!(d.data_dir.join(sub).is_dir(), "{sub} missing");
    }
    let status = d.signal_and_wait(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "stderr: {}", d.stderr());
}

#[test]
fn sigterm_exits_zero_and_the_store_reopens() {
    let mut d = Daemon::start(Opts::default());
    d.restart();
    assert!(common::healthy(&d.relay));
    assert_eq!(d.signal_and_wait(libc::SIGTERM).code(), Some(0));
}

#[test]
fn second_daemon_on_same_data_dir_is_refused() {
    let d = Daemon::start(Opts::default());
    let out = serve_with_env(&[], &d.data_dir);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "stderr: {err}");
    // The first daemon is unharmed.
    assert!(common::healthy(&d.relay));
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BITSOTA_RELAY_BOGUS", "1")], "bogus"),
        (&[("SOTA_CONSENSUS_VOTES", "many")], "relay.consensus_votes"),
        (
            &[("BITSOTA_RELAY_LISTEN", "not-an-address")],
            "relay.listen",
        ),
        (&[("BITSOTA_MINER_WORKERS", "-3")], "miner.workers"),
        // Checked against the task type's recipe (miner::settings::check_config).
        (
            &[("BITSOTA_MINER_TOURNAMENT_SIZE", "2000")],
            "tournament_size (2000) must not exceed pop_size",
        ),
    ];
    for (env, needle) in cases {
        let out = serve_with_env(env, &tmp.path().join("d"));
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    }
}

#[test]
fn unknown_key_in_file_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[pool]\nwindow = 5\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("window"));
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = serve_with_env(&[("BITSOTA_POOL_LISTEN", &addr)], &tmp.path().join("d"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pool.listen") && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "serve", "up", "dash", "mine", "eval", "bench", "data", "wallet", "validate", "worker",
    ] {
        let out = Command::new(bin()).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help failed");
        assert!(!out.stdout.is_empty());
    }
}
