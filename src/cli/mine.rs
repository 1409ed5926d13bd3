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
        .or_else(|| body["detail"][0]["msg"].as_str())
        .map_or_else(|| body.to_string(), str::to_string);
    if matches!(status.as_u16(), 400 | 422) {
        Err(UsageError(detail).into())
    } else {
        anyhow::bail!("{detail} (HTTP {status})")
    }
}

fn opt(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        // `+ 0.0` turns a negative zero into zero: never print `-0.000000`.
        Value::Number(n) => n
            .as_f64()
            .filter(|_| n.is_f64())
            .map_or_else(|| n.to_string(), |f| format!("{:.6}", f + 0.0)),
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
            print!("{}", status_lines(miner));
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

/// The miner's part of `mine status`: in pool mode the pool's progress (submissions by
/// kind, the work in hand, reputation) rather than generations, which pool mining does
/// not have; and a note when the task's SOTA is at its ceiling.
fn status_lines(miner: &Value) -> String {
    let running = miner["running"].as_bool().unwrap_or(false);
    let pool = &miner["pool"];
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut field = |label, v: &Value| rows.push((label, opt(v)));
    if running {
        field("run:", &miner["run_id"]);
        field("task:", &miner["task_type"]);
        field("engine:", &miner["engine"]);
        field("workers:", &miner["workers"]);
        field("from SOTA:", &miner["start_from_sota"]);
        field("hotkey:", &miner["hotkey"]);
        if pool.is_object() {
            field("evolutions:", &pool["evolutions_submitted"]);
            field("evaluations:", &pool["evaluations_submitted"]);
            field("leases:", &pool["leases_submitted"]);
            field("working on:", &pool["current"]);
            field("reputation:", &pool["reputation"]);
        } else {
            field("generation:", &miner["generation"]);
            field("children/s:", &miner["children_per_sec"]);
            field("best fitness:", &miner["best_fitness"]);
        }
        field("started at:", &miner["started_at"]);
    }
    if !miner["last_error"].is_null() {
        field("last error:", &miner["last_error"]);
    }
    let mut out: String = rows
        .iter()
        .map(|(label, v)| format!("{label:<14}{v}\n"))
        .collect();
    let ceiling = &miner["ceiling"];
    if ceiling.is_object() {
        let next = match ceiling["next_task"].as_str() {
            Some(t) => format!("; try the next task: bitsota mine start --task {t}"),
            None => String::new(),
        };
        out += &format!(
            "note:         the SOTA {} is at the task's ceiling: no candidate can beat it. \
             Mining goes on until you stop it{next}\n",
            // In full: at six decimals 0.9999997 would read 1.000000.
            ceiling["sota"]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_mode_shows_pool_progress_and_never_a_negative_zero() {
        let pool = json!({"running": true, "run_id": "r", "task_type": "pool",
            "generation": null, "children_per_sec": null, "last_error": null,
            "pool": {"evolutions_submitted": 3, "evaluations_submitted": 2,
                     "leases_submitted": 0, "current": "evolve batch 7", "reputation": 1.5}});
        let out = status_lines(&pool);
        for line in [
            "evolutions:   3",
            "evaluations:  2",
            "working on:   evolve batch 7",
            "reputation:   1.500000",
        ] {
            assert!(out.contains(line), "{out}");
        }
        assert!(
            !out.contains("generation") && !out.contains("children/s"),
            "{out}"
        );
        let local = json!({"running": true, "generation": 0, "children_per_sec": -0.0});
        let out = status_lines(&local);
        assert!(out.contains("children/s:   0.000000"), "{out}");
        assert!(!out.contains("-0"), "{out}");
    }

    #[test]
    fn a_task_at_its_ceiling_says_so_and_names_the_next() {
        let m = json!({"running": true, "task_type": "scalar_linear",
            "ceiling": {"sota": 0.9999997, "next_task": "mnist_binary"}});
        let out = status_lines(&m);
        assert!(out.contains("the SOTA 0.9999997 is"), "{out}");
        assert!(out.contains("at the task's ceiling"), "{out}");
        assert!(out.contains("--task mnist_binary"), "{out}");
        assert!(!status_lines(&json!({"running": true})).contains("ceiling"));
    }
}
