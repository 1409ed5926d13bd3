//! Operations with real faults: the data directory on a small tmpfs filled through the
//! HTTP API (507s naming the directory, `degraded` health, no 500s, recovery when space
//! returns, every acknowledged write after a restart and after a `kill -9` mid-fill, and
//! a daemon whose store really fails exiting non-zero with one line), and `/metrics`
//! checked by `promtool`.

use crate::common;
use crate::relay_support;
use crate::validator_support;

use bitsota::keys::Keypair;
use common::{http, Daemon, Opts};
use relay_support::{answer, Answer, Api, As};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount `size` of tmpfs at `dir`, or `None` (with a message) where mounting is not
    /// permitted (not root, no CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); run as root to test a full disk",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A signed submission of a ~3 KB program by a miner of its own.
fn submit(api: &Api, kp: &Keypair, n: u64) -> reqwest::Result<Answer> {
    api.try_post(
        "/submit_solution",
        As::Miner(kp),
        &json!({
            "task_id": format!("fill-{n}"),
            "score": 0.5,
            "algorithm_result": {"task_type": "scalar_linear", "input_dim": 16,
                "metadata": {"salt": n, "pad": "x".repeat(3000)}},
        }),
    )
}

/// What the fill saw.
#[derive(Default)]
struct Fill {
    acked: BTreeSet<String>,
    refused: usize,
    other: Vec<(u16, String)>,
}

/// Submit from fresh miners until `stop` says so, recording every answer.
fn fill(api: &Api, from: u64, fill: &Mutex<Fill>, stop: impl Fn(&Fill) -> bool) {
    for n in from.. {
        if stop(&fill.lock().unwrap()) {
            return;
        }
        let kp = Keypair::generate();
        let Ok(a) = submit(api, &kp, n) else {
            return; // the daemon is gone
        };
        let mut f = fill.lock().unwrap();
        match a.status {
            200 => {
                f.acked.insert(kp.ss58());
            }
            507 => f.refused += 1,
            s => f.other.push((s, a.detail().to_string())),
        }
    }
}

/// Status and JSON body of an answer from any listener.
fn reply(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn health(base: &str) -> (u16, Value) {
    reply(http().get(format!("{base}/health")).send().unwrap())
}

/// `/admin/status` with the test-mode admin token.
fn admin_status(api: &Api) -> Value {
    let s = answer(
        http()
            .get(api.url("/admin/status"))
            .header("X-Auth-Token", "dev")
            .send()
            .unwrap(),
    );
    assert_eq!(s.status, 200, "{:?}", s.body);
    s.body
}

fn results_held(api: &Api) -> usize {
    admin_status(api)["store"]["results"].as_u64().unwrap() as usize
}

/// A daemon whose data directory is a 4 MB tmpfs holding 1 MB of ballast (to free
/// later, as an operator would), with `min_free_mb`; `None` where mounting is not
/// permitted.
fn on_small_disk(tmp: &Path, min_free_mb: &str) -> Option<(Tmpfs, PathBuf, Daemon)> {
    let mnt = Tmpfs::mount(&tmp.join("mnt"), "4m")?;
    let ballast = mnt.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1 << 20]).unwrap();
    // The mount point is the data directory (the daemon's stderr file lands beside it).
    let opts = Opts {
        data_dir: Some(mnt.0.clone()),
        ..Opts::default()
    }
    .env("BITSOTA_STORE_MIN_FREE_MB", min_free_mb);
    let d = Daemon::start(opts);
    Some((mnt, ballast, d))
}

#[test]
fn a_full_disk_refuses_recovers_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((mnt, ballast, mut d)) = on_small_disk(tmp.path(), "1") else {
        return;
    };
    let data_dir = mnt.0.clone();
    let api = Api::new(&d.relay);

    // Fill until refused, and a little past it.
    let seen = Mutex::new(Fill::default());
    fill(&api, 0, &seen, |f| f.refused >= 5 || f.acked.len() > 5000);
    let acked_before = {
        let f = seen.lock().unwrap();
        assert!(
            f.other.is_empty(),
            "only 200 and 507 expected: {:?}",
            f.other
        );
        assert_eq!(f.refused, 5, "never refused after {} writes", f.acked.len());
        assert!(f.acked.len() > 50, "refused too early: {}", f.acked.len());
        f.acked.len()
    };
    let kp = Keypair::generate();
    let refused = submit(&api, &kp, 1_000_000).unwrap();
    assert_eq!(refused.status, 507);
    let detail = refused.detail();
    assert!(
        detail.contains(&data_dir.display().to_string()) && detail.contains("MB free"),
        "{detail}"
    );
    // Every listener says why; the sidecar and pool refuse writes too; reads work.
    for base in [&d.relay, &d.sidecar, &d.pool] {
        let (status, body) = health(base);
        assert_eq!(status, 503, "{base}: {body}");
        assert_eq!(body["status"], "degraded", "{body}");
        assert!(
            body["reasons"][0].as_str().unwrap().contains("low disk"),
            "{body}"
        );
    }
    let side = reply(
        http()
            .post(format!("{}/runs/start", d.sidecar))
            .json(&json!({}))
            .send()
            .unwrap(),
    );
    assert_eq!(side.0, 507, "{side:?}");
    assert_eq!(api.get("/sota_threshold", As::Nobody).status, 200);
    let status = admin_status(&api);
    assert_eq!(status["status"], "degraded");
    assert_eq!(status["storage"]["low_space"], true);

    // Space returns: writes resume without a restart.
    std::fs::remove_file(&ballast).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let back = submit(&api, &kp, 1_000_001).unwrap();
    assert_eq!(back.status, 200, "{:?}", back.body);
    seen.lock().unwrap().acked.insert(kp.ss58());
    assert_eq!(health(&d.relay).0, 200);

    // kill -9 in the middle of a second fill, then restart: nothing acknowledged is lost.
    let seen = Arc::new(seen);
    let stop = Arc::new(AtomicBool::new(false));
    let filler = {
        let (api, seen, stop) = (api.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            fill(&api, 2_000_000, &seen, |f| {
                stop.load(Ordering::SeqCst) || f.refused > 5
            })
        })
    };
    assert!(common::poll_until(600, Duration::from_millis(10), || {
        (seen.lock().unwrap().acked.len() >= acked_before + 30).then_some(())
    })
    .is_some());
    d.crash_and_restart();
    stop.store(true, Ordering::SeqCst);
    filler.join().unwrap();
    let f = seen.lock().unwrap();
    assert!(f.other.is_empty(), "{:?}", f.other);
    let api = Api::new(&d.relay);
    assert_eq!(
        results_held(&api),
        f.acked.len(),
        "acknowledged results lost"
    );
    for miner in f.acked.iter().step_by(17) {
        let r = api.get(
            &format!("/results/{miner}"),
            As::Validator(&Keypair::generate()),
        );
        assert_eq!(r.status, 200, "{miner}: {:?}", r.body);
    }
    eprintln!(
        "disk-full run: {acked_before} acknowledged before the watermark, {} refused with 507, {} acknowledged in all, {} present after kill -9 and restart",
        f.refused,
        f.acked.len(),
        results_held(&api)
    );
    let status = d.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "{status}: {}", d.stderr());
}

/// Without a watermark the disk really fills and sled fails: the daemon does not sit
/// there answering 500s but exits non-zero with one line, and a restart (once space is
/// back) holds every acknowledged write.
#[test]
fn a_store_that_fails_stops_the_daemon_and_a_restart_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((_mnt, ballast, mut d)) = on_small_disk(tmp.path(), "0") else {
        return;
    };
    let api = Api::new(&d.relay);
    let seen = Mutex::new(Fill::default());
    fill(&api, 0, &seen, |f| {
        !f.other.is_empty() || f.acked.len() > 5000
    });
    let f = seen.lock().unwrap();
    // The first failed write answers 503 without internal text; then the daemon exits.
    let (status, detail) = f.other.first().cloned().expect("the disk never filled");
    assert_eq!(status, 503, "{detail}");
    assert!(
        !detail.contains("Os {") && !detail.contains("sled"),
        "{detail}"
    );
    let mut child = d.child.take().unwrap();
    let exit = common::wait_bounded(&mut child, Duration::from_secs(15));
    assert!(!exit.success(), "a failed store must exit non-zero");
    let stderr = d.stderr();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("error: the store failed"), "{stderr}");

    std::fs::remove_file(&ballast).unwrap();
    d.restart_stopped();
    let api = Api::new(&d.relay);
    assert_eq!(
        results_held(&api),
        f.acked.len(),
        "acknowledged results lost"
    );
}

/// The value of the sample `series` (name and labels, as rendered) in `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A relay whose disk is below its watermark refuses a validator's vote with 507. The
/// validator (`bitsota validate`, its own store on a healthy disk) keeps the score it
/// judged and sends the vote again with backoff, so once space returns — here the relay
/// restarts on the same port without the watermark — the vote lands and the SOTA is
/// finalized: one evaluation, one accepted vote.
#[test]
fn a_vote_refused_for_storage_is_sent_again_when_space_returns() {
    use validator_support::{algorithm, last_stats, local_score, metrics, of_event, LINEAR};
    let tmp = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let relay_with = |min_free_mb: &str| {
        Daemon::start(
            Opts {
                data_dir: Some(tmp.path().join("relay")),
                ..Opts::default()
            }
            .env("BITSOTA_RELAY_LISTEN", &listen)
            .env("BITSOTA_STORE_MIN_FREE_MB", min_free_mb),
        )
    };
    let mut relay = relay_with("0");
    let url = relay.relay.clone();
    let miner = Keypair::generate();
    let score = local_score(LINEAR);
    let (status, body) = validator_support::submit(&url, &miner, algorithm(LINEAR), score);
    assert_eq!(status, 200, "{body}");
    // The disk "fills": the relay restarts asking for more free space than any disk has.
    assert!(relay.signal_and_wait(libc::SIGTERM).success());
    let mut relay = relay_with("100000000");

    let vdir = tmp.path().join("validator");
    let (mut cmd, stderr_path) =
        validator_support::validate_command(&url, &vdir, 0, &["--stats-interval", "1"]);
    let mut validator = common::Reaped(cmd.spawn().unwrap());
    let refused = common::poll_until(600, Duration::from_millis(100), || {
        let text = http()
            .get(format!("{url}/metrics"))
            .header("X-Auth-Token", "dev")
            .send()
            .ok()?
            .text()
            .ok()?;
        let series =
            r#"bitsota_relay_votes_total{outcome="refused",reason="insufficient_storage"}"#;
        (sample(&text, series)? >= 1.0).then_some(())
    });
    assert_eq!(Api::new(&url).sota(), 0.0);
    // Space returns.
    assert!(relay.signal_and_wait(libc::SIGTERM).success());
    let relay = relay_with("0");
    let finalized = common::poll_until(600, Duration::from_millis(100), || {
        (Api::new(&relay.relay).sota() == score).then_some(())
    });
    unsafe {
        libc::kill(validator.0.id() as i32, libc::SIGTERM);
    }
    let exit = common::wait_bounded(&mut validator.0, Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        refused.is_some(),
        "no vote was refused for storage: {stderr}"
    );
    assert!(
        finalized.is_some(),
        "the refused vote never landed: {stderr}"
    );
    assert!(exit.success(), "{stderr}");
    let stats = last_stats(&stderr);
    let (ok, tried) = stats["votes"].split_once('/').unwrap();
    assert_eq!(stats["passed"], "1", "judged once: {stderr}");
    assert_eq!(ok, "1", "{stderr}");
    assert!(tried.parse::<u32>().unwrap() >= 2, "{stderr}");
    assert_eq!(of_event(&metrics(&vdir), "miner_result").len(), 1);
    assert_eq!(validator_support::events(&relay.relay).len(), 1);
}

/// `/metrics` asks for the admin token and passes `promtool check metrics`; a vote
/// that came late (the SOTA already reached its score) is counted apart from an invalid
/// one, although both are 400s.
#[test]
fn metrics_pass_promtool() {
    let d = Daemon::start(Opts::default());
    let api = Api::new(&d.relay);
    let miner = Keypair::generate();
    assert_eq!(submit(&api, &miner, 1).unwrap().status, 200);
    let validator = Keypair::generate();
    let late = api.vote(&validator, &miner.ss58(), 0.0, 1);
    assert_eq!(
        (late.status, late.detail()),
        (400, "Score 0 is not above current SOTA 0")
    );
    let invalid = api.vote(&validator, &miner.ss58(), 0.5, 0);
    assert_eq!(
        (invalid.status, invalid.detail()),
        (400, "seen_block must be > 0")
    );
    let url = format!("{}/metrics", d.pool);
    let denied = reply(http().get(&url).send().unwrap());
    assert_eq!(denied.0, 401, "{denied:?}");
    let text = http()
        .get(&url)
        .header("Authorization", "Bearer dev")
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in [
        r#"bitsota_relay_submissions_total{outcome="accepted",reason="none"} 1"#,
        r#"bitsota_relay_votes_total{outcome="refused",reason="late"} 1"#,
        r#"bitsota_relay_votes_total{outcome="refused",reason="invalid"} 1"#,
        "bitsota_http_request_duration_seconds_bucket",
        "bitsota_store_free_bytes",
        "bitsota_store_low_space 0",
        r#"bitsota_store_tree_records{tree="relay.results"} 1"#,
        "bitsota_healthy 1",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "SKIPPED the promtool check: promtool is not installed (Debian package `prometheus`)"
        );
        return;
    };
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
