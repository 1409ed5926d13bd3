//! SIGTERM ends the daemon within 5 s whatever its output and its validators are doing:
//! stdout and stderr closed pipes, stderr a full pipe, a validator in the middle of a
//! long evaluation. The store is flushed: the next daemon on the data directory opens it.

mod common;
mod validator_support;

use bitsota::keys::Keypair;
use common::{http, serve_command, wait_bounded, Daemon, Opts};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The operators' promise (`server::SHUTDOWN_LIMIT`).
const LIMIT: Duration = Duration::from_secs(5);

/// Read the daemon's announcement from its stdout; returns the relay URL.
fn announced(child: &mut Child) -> (String, BufReader<std::process::ChildStdout>) {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut relay = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("stdout");
        assert!(n > 0, "the daemon did not start");
        if line.starts_with("relay listening on") {
            relay = line.split_whitespace().last().unwrap().to_string();
        }
        if line.starts_with("data directory") {
            return (relay, out);
        }
    }
}

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
    assert!(http()
        .get(format!("{}/health", d.relay))
        .send()
        .unwrap()
        .status()
        .is_success());
    assert_eq!(d.signal_and_wait(libc::SIGTERM).code(), Some(0));
}

/// Validators on (the case: their blocking threads kept the process alive).
fn with_validators(cmd: &mut std::process::Command) {
    cmd.env("BITSOTA_VALIDATOR_ENABLED", "true")
        .env("BITSOTA_VALIDATOR_COUNT", "2")
        .env("VALIDATOR_TASK_COUNT", validator_support::TASKS);
}

#[test]
fn closed_stdout_and_stderr_do_not_keep_the_daemon_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut cmd = serve_command(&data);
    with_validators(&mut cmd);
    cmd.env("BITSOTA_LOG_LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (relay, out) = announced(&mut child);
    // `bitsota serve 2>&1 | head -2`: the reader goes away.
    drop(out);
    drop(child.stderr.take());
    // Traffic that logs (debug level) into the closed pipes, then the signal.
    for _ in 0..20 {
        let _ = http().get(format!("{relay}/health")).send();
    }
    std::thread::sleep(Duration::from_millis(500));
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
    let mut cmd = serve_command(&data);
    with_validators(&mut cmd);
    cmd.env("BITSOTA_LOG_LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (relay, _out) = announced(&mut child);
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
