//! SIGTERM ends the daemon within 5 s whatever its output and its validators are doing:
//! stdout and stderr closed pipes, stderr a full pipe, a validator in the middle of a
//! long evaluation. The store is flushed: the next daemon on the data directory opens it.

use crate::common;
use crate::validator_support;

use bitsota::keys::Keypair;
use common::{http, serve_command, wait_bounded, Daemon, Opts};
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The operators' promise: 5 s.
const LIMIT: Duration = bitsota::server::SHUTDOWN_LIMIT;

/// SIGTERM, then the exit status and how long it took.
fn terminate(child: &mut Child) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_bounded(child, LIMIT);
    (status, start.elapsed())
}

/// The data directory opens again (the lock is gone, the store intact).
fn reopens(data_dir: &std::path::Path) {
    let mut d = Daemon::start(Opts {
        data_dir: Some(data_dir.to_path_buf()),
        ..Default::default()
    });
    assert!(common::healthy(&d.relay));
    assert_eq!(d.signal_and_wait(libc::SIGTERM).code(), Some(0));
}

/// A daemon with stdout and stderr on pipes, logging at debug level, with validators
/// (the case: their blocking threads kept the process alive).
fn spawn_piped(data_dir: &std::path::Path) -> Child {
    serve_command(data_dir)
        .env("BITSOTA_VALIDATOR_ENABLED", "true")
        .env("BITSOTA_VALIDATOR_COUNT", "2")
        .env("VALIDATOR_TASK_COUNT", validator_support::TASKS)
        .env("BITSOTA_LOG_LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The relay URL from `<data_dir>/endpoints.json` (for a daemon whose stdout is gone).
fn relay_from_file(data_dir: &std::path::Path) -> String {
    common::poll_until(600, Duration::from_millis(50), || {
        let text = std::fs::read_to_string(data_dir.join("endpoints.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["relay"].as_str().map(str::to_string)
    })
    .expect("the daemon did not start")
}

#[test]
fn closed_stdout_and_stderr_do_not_keep_the_daemon_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = spawn_piped(&data);
    // `bitsota serve 2>&1 | head -0`: the reader is gone before the daemon says anything,
    // so even the announcement of its URLs hits a closed pipe.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let relay = relay_from_file(&data);
    // It serves (and logs into the closed pipes at debug level).
    for _ in 0..20 {
        let status = http()
            .get(format!("{relay}/health"))
            .send()
            .unwrap()
            .status();
        assert!(status.is_success());
    }
    let (status, took) = terminate(&mut child);
    assert_eq!(status.code(), Some(0), "took {took:?}");
    reopens(&data);
}

/// Bytes waiting in the pipe `fd` and its capacity.
fn pipe_fill(fd: i32) -> (i32, i32) {
    let mut queued: libc::c_int = 0;
    let capacity = unsafe {
        libc::ioctl(fd, libc::FIONREAD, &mut queued);
        libc::fcntl(fd, libc::F_GETPIPE_SZ)
    };
    (queued, capacity)
}

#[test]
fn a_full_stderr_pipe_does_not_block_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = spawn_piped(&data);
    let relay = relay_from_file(&data);
    // Nobody reads stderr: debug logs of requests fill the pipe.
    let stderr = child.stderr.take().unwrap();
    let fd = stderr.as_raw_fd();
    let full = common::poll_until(200, Duration::from_millis(10), || {
        for _ in 0..20 {
            let _ = http().get(format!("{relay}/health")).send();
        }
        let (queued, capacity) = pipe_fill(fd);
        (capacity > 0 && queued >= capacity - 4096).then_some(())
    });
    assert!(
        full.is_some(),
        "stderr pipe never filled: {:?}",
        pipe_fill(fd)
    );
    // The daemon still serves with its log output stuck.
    assert!(http()
        .get(format!("{relay}/health"))
        .send()
        .unwrap()
        .status()
        .is_success());
    let (status, took) = terminate(&mut child);
    assert_eq!(status.code(), Some(0), "took {took:?}");
    drop(stderr);
    reopens(&data);
}

/// A long-running but well-formed `full`-profile program on the 16-dim scalar_linear
/// suite: every phase at the profile's 64-instruction limit of live outer products and
/// matrix-vector products (`bitsota eval` in a debug build: about 0.8 s per task, so the
/// suite of 128 tasks takes about a minute).
fn heavy_program() -> String {
    let block = |m: &str, v: &str, scale: &str, into: &str| {
        format!(
            "{m} = outer(v0, v1)\n{v} = matmul({m}, {into})\ns2 = norm({v})\ns3 = {scale} / s2\n"
        )
    };
    let mut predict = String::new();
    for _ in 0..12 {
        predict += &block("m1", "v2", "s4", "v1");
        predict += "v1 = v2 * s3\n";
    }
    predict += "s0 = dot(v0, v1)\n";
    let mut learn = String::from("s5 = s1 - s0\ns5 = s5 * s6\n");
    for _ in 0..12 {
        learn += &block("m2", "v3", "s5", "v0");
        learn += "v1 = v1 + v3\n";
    }
    format!("# setup\ns4 = 1.0\ns6 = 0.01\nv1 = gaussian(0.0, 0.1)\n# predict\n{predict}# learn\n{learn}")
}

#[test]
fn sigterm_mid_evaluation_exits_within_the_limit() {
    let mut d = Daemon::start(
        Opts::default()
            .arg("--test")
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_COUNT", "2")
            .env("VALIDATOR_TASK_COUNT", "128")
            // Legal here by configuration: the evaluation budget is raised so that the
            // validators really run a long evaluation when the signal comes.
            .env("BITSOTA_BUDGET_SETUP_MAX_OPS", "64")
            .env("BITSOTA_BUDGET_PREDICT_MAX_OPS", "64")
            .env("BITSOTA_BUDGET_LEARN_MAX_OPS", "64")
            .env("BITSOTA_BUDGET_SCALAR_LINEAR", "1000000000000"),
    );
    let miner = Keypair::generate();
    let alg = validator_support::algorithm(&heavy_program());
    let (status, body) = validator_support::submit(&d.relay, &miner, alg, 0.5);
    assert_eq!(status, 200, "{body}");
    // Both validators have taken it (it is marked seen just before evaluation starts).
    let taken = common::poll_until(300, Duration::from_millis(100), || {
        let v = validator_support::get(&format!("{}/appliance/validators", d.sidecar));
        let all = v["validators"].as_array()?;
        all.iter()
            .all(|x| x["counters"]["new"].as_u64() >= Some(1))
            .then_some(())
    });
    assert!(taken.is_some(), "validators never took the submission");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !d.stderr().contains("batch re-evaluated"),
        "the evaluation was too short to test anything: {}",
        d.stderr()
    );
    let start = Instant::now();
    let status = d.signal_and_wait(libc::SIGTERM);
    let took = start.elapsed();
    eprintln!("exit {took:?} after SIGTERM mid-evaluation");
    assert!(took < LIMIT, "exit took {took:?}");
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    let log = d.stderr();
    assert!(log.contains("store flushed; bye"), "{log}");
    assert!(
        !log.contains("batch re-evaluated"),
        "not mid-evaluation: {log}"
    );
    d.restart_stopped();
    assert_eq!(d.signal_and_wait(libc::SIGTERM).code(), Some(0));
}

/// SIGTERM while the validators prepare a large suite: preparation looks at the shutdown
/// token between tasks, so no background work outlives the shutdown budget (it waited
/// out the whole suite: 2.9–3.0 s for 1024 tasks, more for larger ones).
#[test]
fn sigterm_mid_suite_preparation_stops_between_tasks() {
    let mut d = Daemon::start(
        Opts::default()
            .arg("--test")
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_COUNT", "2")
            .env("VALIDATOR_TASK_COUNT", "2048"),
    );
    let miner = Keypair::generate();
    let (status, body) = validator_support::submit(
        &d.relay,
        &miner,
        validator_support::algorithm(validator_support::LINEAR),
        0.5,
    );
    assert_eq!(status, 200, "{body}");
    let preparing = common::poll_until(600, Duration::from_millis(50), || {
        d.stderr().contains("preparing tasks").then_some(())
    });
    assert!(preparing.is_some(), "no preparation seen: {}", d.stderr());
    let start = Instant::now();
    let status = d.signal_and_wait(libc::SIGTERM);
    let took = start.elapsed();
    eprintln!("exit {took:?} after SIGTERM mid-preparation");
    let log = d.stderr();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        !log.contains("total=2048 done=2048") && !log.contains("done=2048 total=2048"),
        "preparation finished before the signal: {log}"
    );
    assert!(!log.contains("did not stop in time"), "{log}");
    assert!(log.contains("store flushed; bye"), "{log}");
}
