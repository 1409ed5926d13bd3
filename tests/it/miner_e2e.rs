//! The local loop end to end with the real daemon: the shipped `appliance.toml` (relay in
//! test mode, embedded validators), `bitsota mine start --task scalar_linear`, and the
//! relay ends up holding accepted results from the miner's hotkey while the sidecar shows
//! successful submissions, a rising local SOTA, and the progress and candidate lines.
//!
//! The miner suite is small (a problem config) so a debug build gets there quickly; the
//! miner verifies on exactly the validators' suite (same count, seed and sizes), so its
//! verified score is theirs and the SOTA their votes set stays consistent with it.

use crate::common;

use bitsota::keys::{relay_validator_headers, Keypair};
use common::{http, poll_until, Daemon, Opts};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

fn get(url: &str) -> Value {
    http()
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap_or(Value::Null)
}

fn state(d: &Daemon) -> Value {
    get(&format!("{}/state", d.sidecar))
}

#[test]
fn mining_submits_to_the_embedded_relay_and_local_sota_rises() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = tmp.path().join("problem_config.json");
    std::fs::write(
        &pc,
        json!({
            "mining": {"miner_task_count": 2, "validator_task_count": 16, "validate_every": 20,
                       "checkpoint_generations": 200},
            "env": {"MINER_SUBMISSION_COOLDOWN_SECONDS": 1, "MINER_SOTA_CACHE_SECONDS": 1}
        })
        .to_string(),
    )
    .unwrap();
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_MINER_PROBLEM_CONFIG", &pc.display().to_string())
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_TASK_COUNT", "16")
            .env("BITSOTA_VALIDATOR_POLL_INTERVAL_S", "0.5"),
    );
    let out = Command::new(common::bin())
        .args([
            "mine",
            "start",
            "--task",
            "scalar_linear",
            "--seed",
            "5",
            "--config",
        ])
        .arg(common::repo_root().join("appliance.toml"))
        .arg("--data-dir")
        .arg(&d.data_dir)
        .output()
        .unwrap();
    common::assert_success(&out);

    // A first accepted submission.
    let first = poll_until(600, Duration::from_millis(200), || {
        let s = state(&d);
        (s["successful_submissions"].as_u64()? >= 1).then(|| s["local_sota"].as_f64())?
    })
    .unwrap_or_else(|| panic!("no accepted submission; stderr:\n{}", d.stderr()));

    // The search improves and a better program is accepted: local SOTA rises.
    let risen = poll_until(2000, Duration::from_millis(200), || {
        let l = state(&d)["local_sota"].as_f64()?;
        (l > first).then_some(l)
    })
    .unwrap_or_else(|| {
        panic!(
            "local SOTA stayed at {first}; logs: {}",
            get(&format!("{}/logs?cursor=0&limit=500", d.sidecar))
        )
    });
    assert!(risen > first);
    let s = state(&d);
    assert!(s["successful_submissions"].as_u64().unwrap() >= 2);
    // The relay holds the miner's result (one per miner: the latest accepted one).
    let hotkey = get(&format!("{}/appliance/status", d.sidecar))["miner"]["hotkey"]
        .as_str()
        .unwrap()
        .to_string();
    let reader = Keypair::generate();
    let mut rb = http().get(format!("{}/results/{hotkey}", d.relay));
    for (k, v) in relay_validator_headers(&reader, now()).pairs() {
        rb = rb.header(k, v);
    }
    let results: Value = rb.send().unwrap().json().unwrap();
    let result = &results[0];
    assert_eq!(result["miner_hotkey"], hotkey.as_str());
    let algo: Value = serde_json::from_str(result["algorithm_result"].as_str().unwrap()).unwrap();
    assert_eq!(algo["task_type"], "scalar_linear");
    assert_eq!(algo["input_dim"], 16);
    assert_eq!(algo["metadata"]["engine_type"], "baseline");
    assert!(algo["algorithm_dsl"]
        .as_str()
        .unwrap()
        .contains("# predict"));
    assert!(result["task_id"]
        .as_str()
        .unwrap()
        .starts_with("sota-mine-"));

    // The embedded validators re-evaluate and vote: SOTA events for this miner, and the
    // miner follows the relay's SOTA.
    let event = poll_until(600, Duration::from_millis(200), || {
        let v = get(&format!("{}/sota-events", d.relay));
        v["results"].as_array()?.first().cloned()
    })
    .unwrap_or_else(|| panic!("no SOTA event; stderr:\n{}", d.stderr()));
    assert_eq!(event["miner_hotkey"], hotkey.as_str());
    let sota = event["score"].as_f64().unwrap();
    assert!(
        sota >= first,
        "a SOTA event at {sota}, below the first accepted {first}"
    );
    poll_until(100, Duration::from_millis(200), || {
        (state(&d)["global_sota"].as_f64()? >= sota).then_some(())
    })
    .expect("the miner refreshed the relay's SOTA");

    let logs = get(&format!("{}/logs?cursor=0&limit=500", d.sidecar));
    let lines: Vec<&str> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["message"].as_str())
        .collect();
    assert!(
        lines.iter().any(|m| m.starts_with("[w0] Iter ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|m| m.starts_with("[candidate] w0 iter ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|m| m.starts_with("[submit] accepted")),
        "{lines:?}"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn message_lines(d: &Daemon) -> Vec<String> {
    get(&format!("{}/logs?cursor=0&limit=500", d.sidecar))["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["message"].as_str().map(str::to_string))
        .collect()
}

fn start_mining(d: &Daemon) {
    let r = http()
        .post(format!("{}/appliance/mine/start", d.sidecar))
        .json(&json!({"task_type": "scalar_linear", "seed": 2}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Outside test mode the relay refuses submissions until the miner's invitation code is
/// linked: the miner says so and logs the relay's reason; with `[miner] invite_code` it
/// links the code first and its submissions are accepted.
#[test]
fn outside_test_mode_the_miner_links_its_invitation_code() {
    let tmp = tempfile::tempdir().unwrap();
    let pc = tmp.path().join("problem_config.json");
    std::fs::write(
        &pc,
        json!({"mining": {"miner_task_count": 2, "validator_task_count": 4, "validate_every": 20}})
            .to_string(),
    )
    .unwrap();
    let pc = pc.display().to_string();
    let data_dir = tmp.path().join("data");
    let opts = Opts {
        data_dir: Some(data_dir.clone()),
        ..Opts::default()
    }
    .env("BITSOTA_TEST_MODE", "false")
    .env("ADMIN_AUTH_TOKEN", "tok")
    .env("BITSOTA_MINER_PROBLEM_CONFIG", &pc);

    let mut d = Daemon::start(opts.clone());
    start_mining(&d);
    let refused = poll_until(600, Duration::from_millis(100), || {
        let l = message_lines(&d);
        l.iter()
            .any(|m| m.starts_with("[submit] rejected by the relay (HTTP 403): Please register your invitation code first"))
            .then_some(l)
    })
    .unwrap_or_else(|| panic!("no refusal: {:?}", message_lines(&d)));
    assert!(refused
        .iter()
        .any(|m| m.starts_with("[miner] invitation: no invitation code is linked")));
    assert_eq!(state(&d)["successful_submissions"], 0);

    // An admin makes a code; the miner is configured with it and links it on start.
    let codes: Value = http()
        .post(format!("{}/invitation_code/generate/1", d.relay))
        .header("X-Auth-Token", "tok")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let code = codes["data"][0].as_str().unwrap().to_string();
    assert_eq!(d.signal_and_wait(libc::SIGTERM).code(), Some(0));
    let d = Daemon::start(opts.env("BITSOTA_MINER_INVITE_CODE", &code));
    start_mining(&d);
    poll_until(600, Duration::from_millis(100), || {
        (state(&d)["successful_submissions"].as_u64()? >= 1).then_some(())
    })
    .unwrap_or_else(|| panic!("no accepted submission: {:?}", message_lines(&d)));
    let l = message_lines(&d);
    assert!(
        l.contains(&format!("[miner] linked invitation code {code}")),
        "{l:?}"
    );
}

/// The validators' score of a fixture on a `count`-task scalar_linear suite (what an
/// honest miner claims).
fn fixture_score(name: &str, count: usize) -> f64 {
    let out = Command::new(common::bin())
        .args(["eval", "--task", "scalar_linear", "--json", "--tasks"])
        .arg(count.to_string())
        .arg("--dsl")
        .arg(common::repo_root().join("fixtures/programs").join(name))
        .output()
        .unwrap();
    common::assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["score"].as_f64().unwrap()
}

/// A miner joining a network that has made progress starts from the relay's SOTA
/// program (`start_from_sota`): another miner's learner becomes the SOTA, a run started
/// with `start_from_sota` reads it from the relay, says so, and its very first
/// candidate is already that learner's score, where a fresh run of the same seed starts
/// near the score of predicting nothing.
#[test]
fn a_run_can_start_from_the_relays_sota_program() {
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_TASK_COUNT", "8")
            .env("BITSOTA_VALIDATOR_POLL_INTERVAL_S", "0.5")
            .env("BITSOTA_MINER_VALIDATOR_TASK_COUNT", "8")
            .env("BITSOTA_MINER_MINER_TASK_COUNT", "2")
            .env("BITSOTA_MINER_POP_SIZE", "20")
            .env("BITSOTA_MINER_TOURNAMENT_SIZE", "4")
            .env("BITSOTA_MINER_VALIDATE_EVERY", "1")
            .env("BITSOTA_MINER_SUBMISSION_COOLDOWN_SECONDS", "3600"),
    );
    let score = fixture_score("linear_sgd.dsl", 8);
    let author = Keypair::generate();
    let body = json!({
        "task_id": "sota-e2e",
        "score": score,
        "algorithm_result": {
            "task_type": "scalar_linear",
            "input_dim": 16,
            "algorithm_dsl": std::fs::read_to_string(
                common::repo_root().join("fixtures/programs/linear_sgd.dsl")).unwrap(),
        },
    });
    let mut rb = http().post(format!("{}/submit_solution", d.relay));
    for (k, v) in bitsota::keys::relay_miner_headers(&author, now()).pairs() {
        rb = rb.header(k, v);
    }
    let r = rb.json(&body).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    poll_until(600, Duration::from_millis(200), || {
        let v = get(&format!("{}/sota-events", d.relay));
        let e = v["results"].as_array()?.first()?.clone();
        (e["miner_hotkey"] == author.ss58().as_str()).then_some(())
    })
    .unwrap_or_else(|| panic!("the learner did not become the SOTA:\n{}", d.stderr()));

    let first_candidate = |from_sota: bool| {
        let r = http()
            .post(format!("{}/appliance/mine/start", d.sidecar))
            .json(
                &json!({"task_type": "scalar_linear", "seed": 4, "workers": 1,
                          "start_from_sota": from_sota}),
            )
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let run: Value = r.json().unwrap();
        let run = run["run_id"].as_str().unwrap().to_string();
        let status = get(&format!("{}/appliance/status", d.sidecar));
        assert_eq!(status["miner"]["start_from_sota"], from_sota);
        let verified = poll_until(600, Duration::from_millis(200), || {
            let v = get(&format!("{}/candidates?run_id={run}&limit=1", d.sidecar));
            v["items"].as_array()?.first()?["validator_score"].as_f64()
        })
        .unwrap_or_else(|| panic!("no verified candidate:\n{}", d.stderr()));
        let lines: Vec<String> = get(&format!(
            "{}/logs?run_id={run}&cursor=0&limit=500",
            d.sidecar
        ))["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["message"].as_str().map(str::to_string))
            .collect();
        http()
            .post(format!("{}/appliance/mine/stop", d.sidecar))
            .send()
            .unwrap();
        (verified, lines)
    };
    let (from_sota, lines) = first_candidate(true);
    let said = format!(
        "[miner] starting from the relay's SOTA program (score {score:.6}, miner {})",
        author.ss58()
    );
    assert!(lines.contains(&said), "{lines:?}");
    assert!(from_sota >= score - 1e-9, "{from_sota} < {score}");
    let (fresh, lines) = first_candidate(false);
    assert!(
        !lines.iter().any(|l| l.contains("starting from the relay")),
        "{lines:?}"
    );
    assert!(fresh < 0.5 && score > 0.9, "fresh {fresh}, SOTA {score}");
}
