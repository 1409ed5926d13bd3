//! `bitsota mine start|stop|status`: a client of a running daemon's appliance API.
//!
//! The daemon is found with `--sidecar-url`, else `<data_dir>/endpoints.json` (written by
//! the daemon with the real ports, so ports chosen at start-up work), else the
//! configuration's `sidecar.listen`.

use super::serve::ConfigArgs;
use super::UsageError;
use anyhow::Context;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct MineArgs {
    #[command(subcommand)]
    pub action: Action,
}

/// Where the daemon is.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The daemon's sidecar URL (default: from the data directory or the configuration).
    #[arg(long)]
    pub sidecar_url: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Start mining (missing options = the daemon's configuration).
    Start {
        /// scalar_linear, mnist_binary, cifar10_binary, pool or pool_lease.
        #[arg(long)]
        task: Option<String>,
        /// baseline or archive.
        #[arg(long)]
        engine: Option<String>,
        /// Worker threads.
        #[arg(long)]
        workers: Option<usize>,
        /// Run seed (reproducible search).
        #[arg(long)]
        seed: Option<u64>,
        /// Start from the relay's current SOTA program (`[miner] start_from_sota`).
        #[arg(long, conflicts_with = "fresh")]
        from_sota: bool,
        /// Start from the task's first population even if `start_from_sota` is set.
        #[arg(long)]
        fresh: bool,
        /// Run id (default: a new one).
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Stop mining; the run's candidates and logs stay.
    Stop {
        #[command(flatten)]
        target: Target,
    },
    /// Show mining status.
    Status {
        /// Print the daemon's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

impl Target {
    fn url(&self) -> anyhow::Result<String> {
        if let Some(u) = &self.sidecar_url {
            return Ok(u.trim_end_matches('/').to_string());
        }
        let config = self.config.load(Vec::new())?;
        let file = config.data_dir.join(crate::server::ENDPOINTS_FILE);
        let from_file = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<crate::context::Endpoints>(&t).ok())
            .and_then(|e| e.sidecar);
        Ok(from_file.unwrap_or_else(|| format!("http://{}", config.sidecar.listen)))
    }
}

fn client() -> anyhow::Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// Call the daemon; a 4xx `detail` is the user's to fix (exit 2), other failures exit 1.
fn call(rb: reqwest::blocking::RequestBuilder, url: &str) -> anyhow::Result<Value> {
    let r = rb
        .send()
        .with_context(|| format!("no daemon answers at {url} (is `bitsota serve` running?)"))?;
    let status = r.status();
    let body: Value = r.json().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = body["detail"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_string);
    if status == reqwest::StatusCode::BAD_REQUEST {
        Err(UsageError(detail).into())
    } else {
        anyhow::bail!("{detail} (HTTP {status})")
    }
}

fn opt(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .filter(|_| n.is_f64())
            .map_or_else(|| n.to_string(), |f| format!("{f:.6}")),
        other => other.to_string(),
    }
}

pub fn run(args: MineArgs) -> anyhow::Result<()> {
    let c = client()?;
    match args.action {
        Action::Start {
            task,
            engine,
            workers,
            seed,
            from_sota,
            fresh,
            run_id,
            target,
        } => {
            let base = target.url()?;
            let start_from_sota = (from_sota || fresh).then_some(from_sota);
            let body = json!({
                "task_type": task, "engine": engine, "workers": workers, "seed": seed,
                "run_id": run_id, "start_from_sota": start_from_sota,
            });
            let url = format!("{base}/appliance/mine/start");
            let v = call(c.post(&url).json(&body), &base)?;
            println!(
                "mining started: run {}",
                v["run_id"].as_str().unwrap_or("?")
            );
        }
        Action::Stop { target } => {
            let base = target.url()?;
            let url = format!("{base}/appliance/mine/stop");
            call(c.post(&url), &base)?;
            println!("mining stopped");
        }
        Action::Status { json, target } => {
            let base = target.url()?;
            let status = call(c.get(format!("{base}/appliance/status")), &base)?;
            let miner = &status["miner"];
            let state = call(c.get(format!("{base}/state")), &base)?;
            if json {
                println!("{}", serde_json::json!({ "miner": miner, "state": state }));
                return Ok(());
            }
            let running = miner["running"].as_bool().unwrap_or(false);
            println!(
                "mining:       {}",
                if running { "running" } else { "stopped" }
            );
            for (label, key) in [
                ("run:", "run_id"),
                ("task:", "task_type"),
                ("engine:", "engine"),
                ("workers:", "workers"),
                ("from SOTA:", "start_from_sota"),
                ("hotkey:", "hotkey"),
                ("generation:", "generation"),
                ("children/s:", "children_per_sec"),
                ("best fitness:", "best_fitness"),
                ("started at:", "started_at"),
                ("last error:", "last_error"),
            ] {
                if running || key == "last_error" && !miner[key].is_null() {
                    println!("{label:<14}{}", opt(&miner[key]));
                }
            }
            println!(
                "sidecar run:  {} ({})",
                opt(&state["run_id"]),
                opt(&state["status"])
            );
            println!("local SOTA:   {}", opt(&state["local_sota"]));
            println!("global SOTA:  {}", opt(&state["global_sota"]));
            println!("submissions:  {}", opt(&state["successful_submissions"]));
        }
    }
    Ok(())
}
