//! Strangers' programs under the evaluation budget (issue: one submission froze every
//! validator). The relay refuses programs over the budget; a validator counts one that
//! reached it anyway (planted in a relay's store) invalid without running it; and an
//! honest submission after a stream of hostile at-budget ones is still finalized within
//! a few poll intervals.

use crate::common;
use crate::validator_support;

use bitsota::config::BudgetConfig;
use bitsota::engine::{compile, cost, parse_program, Examples};
use bitsota::keys::Keypair;
use common::{poll_until, Daemon, Opts};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use validator_support::*;

const DEFAULT_EXAMPLES: Examples = Examples {
    train: 1000,
    val: 1000,
};

/// A live chain of `k` learn instructions `line` (updating `m1`), read by `predict`;
/// the prediction is `0·‖m1‖` (so it scores like a constant 0 predictor). `salt` makes
/// texts differ (the relay refuses duplicates).
fn chain(line: &str, k: usize, salt: usize) -> String {
    format!(
        "# setup\nm0 = uniform(-0.1, 0.1)\nm1 = gaussian(0.0, 1.0)\ns2 = {salt}.0\n\
         # predict\ns3 = norm(m1)\ns0 = s3 * s2\n# learn\n{}",
        format!("{line}\n").repeat(k)
    )
}

/// `k` 16×16 matrix products per training example.
fn matmul_chain(k: usize, salt: usize) -> String {
    chain("m1 = matmul(m1, m0)", k, salt)
}

fn cost_of(dsl: &str) -> u64 {
    cost::estimate(&compile(&parse_program(dsl).unwrap(), 16), DEFAULT_EXAMPLES)
}

#[test]
fn the_relay_refuses_a_program_at_twice_the_budget_naming_the_limit() {
    let d = Daemon::start(Opts::default());
    let budget = BudgetConfig::default().scalar_linear;
    // Four products per training example: about twice the scalar_linear budget.
    let dsl = matmul_chain(4, 0);
    let cost = cost_of(&dsl);
    assert!(
        (2 * budget..3 * budget).contains(&cost),
        "{cost} vs budget {budget}"
    );
    let miner = Keypair::generate();
    let (status, body) = submit(&d.relay, &miner, algorithm(&dsl), 0.5);
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("budget of {budget} units"))
            && detail.contains("budget.scalar_linear")
            && detail.contains(&cost.to_string()),
        "{detail}"
    );
    // The shape: vector_dim 1024 for 16 features.
    let wide = format!("# meta: vector_dim=1024\n{LINEAR}");
    let (status, body) = submit(&d.relay, &miner, algorithm(&wide), 0.5);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("input_dim=16"),
        "{body}"
    );
    // Half the budget is accepted.
    let (status, body) = submit(&d.relay, &miner, algorithm(&matmul_chain(1, 0)), 0.5);
    assert_eq!(status, 200, "{body}");
}

/// The program: 10,000 predict instructions of outer products, matrix products
/// and norms at `vector_dim` 1024, for 16 features.
fn frozen_validator_program() -> String {
    let mut text = String::from("# meta: vector_dim=1024 matrix_count=4\n# predict\n");
    for _ in 0..3333 {
        text.push_str("m1 = outer(v0, v0)\nm2 = matmul(m1, m1)\ns0 = norm(m2)\n");
    }
    text.push_str("s0 = s0 + s0\n");
    text
}

/// Exit status and CPU seconds (user + system) of a child, reaped with `wait4`; killed
/// if it runs for more than two minutes.
fn reap_with_cpu(child: std::process::Child) -> (i32, f64) {
    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..1200 {
                std::thread::sleep(Duration::from_millis(100));
                if done.load(Ordering::SeqCst) {
                    return;
                }
            }
            // SAFETY: plain FFI call on our own, still unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
    }
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and writes only into the two locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    done.store(true, Ordering::SeqCst);
    assert_eq!(r, pid, "wait4");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (status, tv(usage.ru_utime) + tv(usage.ru_stime))
}

#[test]
fn a_planted_program_over_budget_is_invalid_and_costs_a_validator_under_a_second() {
    // The embedded relay refuses it, so it is planted in the store while the daemon is
    // stopped: what a compromised or differently configured relay could serve.
    let mut first = Daemon::start(Opts::default());
    let miner = Keypair::generate();
    let (status, body) = submit(&first.relay, &miner, algorithm(LINEAR), 0.9);
    assert_eq!(status, 200, "{body}");
    let (status, body) = submit(
        &first.relay,
        &Keypair::generate(),
        algorithm(&frozen_validator_program()),
        0.9,
    );
    assert_eq!(status, 400, "{body}");
    assert!(first.signal_and_wait(libc::SIGTERM).success());
    tamper_with_result(&first.data_dir, &miner, |rec| {
        rec.algorithm_result = algorithm(&frozen_validator_program()).to_string();
    });
    let d = Daemon::start(Opts {
        data_dir: Some(first.data_dir.clone()),
        ..Opts::default()
    });

    // A validator process at the default budget, three polls.
    let tmp = tempfile::tempdir().unwrap();
    let (mut cmd, stderr_path) = validate_command(&d.relay, &tmp.path().join("v"), 3, &[]);
    let child = cmd.spawn().unwrap();
    let (status, cpu) = reap_with_cpu(child);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status, 0, "{stderr}");
    let stats = last_stats(&stderr);
    let got: Vec<&str> = ["new", "invalid", "passed", "blacklisted", "votes"]
        .iter()
        .map(|k| stats[*k].as_str())
        .collect();
    assert_eq!(got, ["1", "1", "0", "0", "0/0"], "{stderr}");
    assert!(stderr.contains("over the evaluation budget"), "{stderr}");
    assert!(
        cpu < 1.0,
        "the validator process used {cpu:.2} s of CPU in all (start-up included)"
    );
    assert_eq!(sota(&d.relay), 0.0);
}

/// What the daemon's validators say (`/appliance/validators`).
fn validator_counters(d: &Daemon) -> Vec<Value> {
    get(&format!("{}/appliance/validators", d.sidecar))["validators"]
        .as_array()
        .map(|v| v.iter().map(|x| x["counters"].clone()).collect())
        .unwrap_or_default()
}

#[test]
fn an_honest_learner_after_twenty_hostile_at_budget_programs_is_finalized_within_ten_polls() {
    const POLL_S: f64 = 2.0;
    const HOSTILE: usize = 20;
    // Each hostile program costs exactly the budget the daemon is configured with (eight
    // matrix additions per training example: about a second of a debug build's CPU on
    // the test suite).
    let hostile: Vec<String> = (0..HOSTILE)
        .map(|i| chain("m1 = m1 + m0", 8, i + 1))
        .collect();
    let budget = cost_of(&hostile[0]);
    assert!(hostile.iter().all(|h| cost_of(h) == budget));
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_VALIDATOR_ENABLED", "true")
            .env("BITSOTA_VALIDATOR_POLL_INTERVAL_S", &POLL_S.to_string())
            .env("BITSOTA_VALIDATOR_STATS_INTERVAL_S", "0")
            .env("VALIDATOR_TASK_COUNT", TASKS)
            .env("BITSOTA_BUDGET_SCALAR_LINEAR", &budget.to_string()),
    );
    for h in &hostile {
        // Claims far from what the validators compute: blacklisted, never voted.
        let (status, body) = submit(&d.relay, &Keypair::generate(), algorithm(h), 0.95);
        assert_eq!(status, 200, "{body}");
    }
    // The validators are busy with hostile programs before the honest one arrives.
    let busy = poll_until(300, Duration::from_millis(100), || {
        let c = validator_counters(&d);
        (c.len() == 2 && c.iter().all(|c| c["new"].as_u64() >= Some(1))).then_some(())
    });
    assert!(busy.is_some(), "validators never polled: {}", d.stderr());

    let honest = Keypair::generate();
    let claim = local_score(LINEAR);
    let (status, body) = submit(&d.relay, &honest, algorithm(LINEAR), claim);
    assert_eq!(status, 200, "{body}");
    let submitted = Instant::now();
    let finalized = poll_until(600, Duration::from_millis(100), || {
        (sota(&d.relay) > 0.0).then(|| submitted.elapsed())
    })
    .unwrap_or_else(|| panic!("never finalized; stderr: {}", d.stderr()));
    assert_eq!(sota(&d.relay), claim);
    assert_eq!(
        events(&d.relay).last().unwrap()["miner_hotkey"],
        honest.ss58()
    );
    let limit = Duration::from_secs_f64(10.0 * POLL_S);
    assert!(
        finalized <= limit,
        "finalized {finalized:?} after submission (limit {limit:?}); stderr: {}",
        d.stderr()
    );
    // The hostile programs were real work, judged and never voted for.
    let judged: u64 = validator_counters(&d)
        .iter()
        .map(|c| c["blacklisted"].as_u64().unwrap_or(0))
        .sum();
    assert!(judged >= 1, "{:?}", validator_counters(&d));
}
