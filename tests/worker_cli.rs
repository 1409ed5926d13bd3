//! `bitsota worker` usage errors (the job flow itself is exercised in `pool_api.rs`,
//! where an external worker process runs a lease coordinator's jobs).

mod common;

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .arg("worker")
        .args(args)
        .output()
        .expect("run bitsota worker")
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = worker(&["--sidecar-url", "localhost:8123", "--run-id", "r"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sidecar-url"), "{err}");
    let out = worker(&["--sidecar-url", "http://127.0.0.1:9", "--run-id", " "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--run-id"));
    // --run-id is required.
    assert_eq!(
        worker(&["--sidecar-url", "http://127.0.0.1:9"])
            .status
            .code(),
        Some(2)
    );
}
