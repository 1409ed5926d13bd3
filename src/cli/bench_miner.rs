//! `bitsota bench miner`: the miner inside the daemon against the bare engine, on the
//! same settings and seed (so the same children are evaluated). Event reporting,
//! candidate verification and submissions must not slow the search; this prints both
//! rates so a slowdown shows. The daemon is this executable's `serve`, started on
//! ephemeral ports in a scratch data directory, mining through its appliance API.

use super::bench::BenchArgs;
use crate::miner::search::{self, SearchEvent};
use crate::miner::settings::{MinerSettings, Overrides};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Options of `bench miner`.
#[derive(clap::Args, Debug)]
pub struct MinerBenchArgs {
    /// miner: children per worker, in each of the two runs.
    #[arg(long, default_value_t = 30_000)]
    pub children: u64,
}

/// Run both measurements in a scratch directory, removed afterwards.
pub fn run(args: &BenchArgs, miner: &MinerBenchArgs) -> anyhow::Result<Value> {
    let scratch = std::env::temp_dir().join(format!("bitsota-bench-miner-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("creating the scratch directory")?;
    let result = measure(args, miner, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure(args: &BenchArgs, miner: &MinerBenchArgs, scratch: &Path) -> anyhow::Result<Value> {
    let children = miner.children;
    let workers = args.workers;
    let problem = scratch.join("problem_config.json");
    std::fs::write(
        &problem,
        json!({
            "mining": {"checkpoint_generations": 1000},
            "args": {"iterations": children, "workers": workers, "seed": args.seed},
        })
        .to_string(),
    )?;

    // The bare engine, in this process, with the settings the daemon resolves (both read
    // ./appliance.toml when it exists and the environment).
    let config = crate::config::load_from_env(Path::new("appliance.toml"), false, &[])?;
    let settings = MinerSettings::resolve(&config, Some(&problem), &Overrides::default())
        .map_err(anyhow::Error::msg)?;
    let suite =
        search::miner_suite(&settings, &scratch.join("bare")).map_err(anyhow::Error::msg)?;
    eprintln!("[bench miner] bare engine: {children} children x {workers} workers");
    let started = Instant::now();
    let mut done = 0u64;
    search::run(&settings, &suite, None, &AtomicBool::new(false), |e| {
        if let SearchEvent::Finished { children, .. } = e {
            done += children;
        }
    })
    .map_err(anyhow::Error::msg)?;
    let bare = done as f64 / started.elapsed().as_secs_f64();
    eprintln!("[bench miner] bare engine: {bare:.0} children/s");

    let mut daemon = spawn_daemon(&scratch.join("daemon"), &problem)?;
    let figures = daemon_rate(&daemon.sidecar, children, workers);
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
    let (rate, state) = figures?;
    eprintln!("[bench miner] daemon miner: {rate:.0} children/s");
    Ok(json!({
        "bench": "miner",
        "workers": workers,
        "children_per_worker": children,
        "bare_children_per_sec": bare,
        "daemon_children_per_sec": rate,
        "daemon_over_bare": rate / bare,
        "best_verified_score": state["best_candidate_score"],
        "submissions_accepted": state["successful_submissions"],
    }))
}

struct Daemon {
    child: Child,
    sidecar: String,
}

/// `serve` on ephemeral ports in `data_dir`, mining off until asked, no validators and
/// no log file; returns once it printed its sidecar URL.
fn spawn_daemon(data_dir: &Path, problem: &Path) -> anyhow::Result<Daemon> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut child = Command::new(exe)
        .arg("serve")
        .env("BITSOTA_DATA_DIR", data_dir)
        .env("BITSOTA_RELAY_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_SIDECAR_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_POOL_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_MINER_AUTOSTART", "false")
        .env("BITSOTA_VALIDATOR_ENABLED", "false")
        .env("BITSOTA_LOG_FILE", "false")
        .env("BITSOTA_MINER_PROBLEM_CONFIG", problem)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the daemon")?;
    let stdout = child.stdout.take().context("daemon stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("sidecar listening on ") {
            return Ok(Daemon {
                child,
                sidecar: url.trim().to_string(),
            });
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("the daemon exited before announcing its sidecar")
}

/// Start a run, wait until it stops, and sum the rates the workers' final progress lines
/// report; also returns the sidecar's final state.
fn daemon_rate(sidecar: &str, children: u64, workers: usize) -> anyhow::Result<(f64, Value)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let get = |path: &str| -> anyhow::Result<Value> {
        Ok(http
            .get(format!("{sidecar}{path}"))
            .send()?
            .error_for_status()?
            .json()?)
    };
    http.post(format!("{sidecar}/appliance/mine/start"))
        .json(&json!({}))
        .send()?
        .error_for_status()
        .context("starting the run")?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let state = loop {
        let state = get("/state")?;
        if state["status"] == "stopped" {
            break state;
        }
        if Instant::now() > deadline {
            bail!("the daemon's run did not stop within an hour");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut messages = Vec::new();
    let mut cursor = 0;
    loop {
        let page = get(&format!("/logs?limit=500&cursor={cursor}"))?;
        let items = page["items"].as_array().context("logs page")?;
        if items.is_empty() {
            break;
        }
        messages.extend(
            items
                .iter()
                .filter_map(|i| i["message"].as_str().map(str::to_string)),
        );
        cursor = page["cursor"].as_u64().context("logs cursor")?;
    }
    // The last progress line of each worker that reports a rate (the final one may
    // have none: `rate=n/a`).
    let mut rate = 0.0;
    for w in 0..workers {
        let prefix = format!("[w{w}] Iter ");
        rate += messages
            .iter()
            .filter(|m| m.starts_with(&prefix))
            .filter_map(|m| m.rsplit("rate=").next()?.trim().parse::<f64>().ok())
            .next_back()
            .with_context(|| {
                format!("no progress line with a rate for worker {w} ({children} children)")
            })?;
    }
    Ok((rate, state))
}
