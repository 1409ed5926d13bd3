//! `bitsota profile sidecar`: a miner that reports to a sidecar over HTTP, as remote
//! miners do (sidecar-miner.md §1.2): `POST /runs/start`, then its events through
//! `POST /ingest_batch` in batches of `--batch-size`. Its islands run on threads of
//! their own and send their events to this thread, which batches and posts them and
//! verifies candidates on the validator suite at the miner's cadence (the daemon
//! miner's `Policy` and `Verifier`).
//!
//! Every event a window makes is counted: a progress event per worker every
//! `--checkpoint-generations` children, one event per verification (the candidate, or a
//! line saying why there is none) and the closing `done`. The batch pending when the
//! window opens is posted before it, and batches are posted only when full and at the
//! end, so the window's requests are exactly ⌈events ÷ batch size⌉.

use super::record::{profile_to, Record, Sampled, Sampler};
use super::{LocalDaemon, SearchFlags, UsageError};
use crate::engine::{print_program, Evolver, Stages};
use crate::miner::run::{Found, Policy, Verified};
use crate::miner::search::{self, Verifier};
use crate::miner::settings::MinerSettings;
use anyhow::{bail, Context};
use parking_lot::{Condvar, Mutex};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct SidecarArgs {
    #[command(flatten)]
    pub search: SearchFlags,
    /// The sidecar to report to (default: an in-process daemon's, on an ephemeral port).
    #[arg(long, value_name = "URL")]
    pub sidecar_url: Option<String>,
    /// The run to report into, started afresh (default: a new run the sidecar names).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Mining workers (islands, one thread each).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The run's length in children per worker, warm-up included, as the reference
    /// miner counts `iterations` (default: (warm-up + generations) × pop size).
    #[arg(long, conflicts_with = "generations")]
    pub iterations: Option<u64>,
    /// Verify the newest better candidate at most every this many children, all workers
    /// together (default: `[miner] validate_every`).
    #[arg(long)]
    pub validate_every: Option<u64>,
    /// Children per worker between progress events (default: --pop-size).
    #[arg(long)]
    pub checkpoint_generations: Option<u64>,
    /// Events per `POST /ingest_batch`.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
}

pub fn run(args: &SidecarArgs) -> anyhow::Result<()> {
    let flags = &args.search;
    let mut extra = Map::from_iter([("workers".into(), json!(args.workers))]);
    if let Some(v) = args.validate_every {
        extra.insert("validate_every".into(), json!(v));
    }
    let (settings, search) = flags.settings(&flags.problem_config(extra))?;
    let pop = search.pop_size as u64;
    let warmup = flags.warmup_generations * pop;
    let total = args.iterations.unwrap_or(warmup + flags.generations * pop);
    if total <= warmup {
        return Err(UsageError(format!(
            "--iterations ({total}) must exceed the warm-up's {warmup} children"
        ))
        .into());
    }
    let checkpoint = args.checkpoint_generations.unwrap_or(pop);
    if checkpoint == 0 || args.batch_size == 0 {
        return Err(UsageError(
            "--checkpoint-generations and --batch-size must be at least 1".into(),
        )
        .into());
    }
    if let Some(url) = &args.sidecar_url {
        reqwest::Url::parse(url).map_err(|e| UsageError(format!("--sidecar-url {url:?}: {e}")))?;
    }
    let plan = Plan {
        settings,
        warmup,
        window: total - warmup,
        checkpoint,
        batch_size: args.batch_size,
        frequency: flags.frequency,
    };
    profile_to(&flags.out, flags.flamegraph, || {
        let local = match &args.sidecar_url {
            Some(_) => None,
            None => Some(LocalDaemon::start("sidecar", |_, c| {
                c.relay.enabled = false
            })?),
        };
        let url = match (&args.sidecar_url, &local) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(d)) => d.sidecar_url()?,
            (None, None) => unreachable!("a local daemon runs when no URL is given"),
        };
        let outcome = mine(&plan, &url, args.run_id.as_deref(), &flags.data_dir);
        let stopped = local.map_or(Ok(()), LocalDaemon::stop);
        let (sampled, engine, poster, run_id) = outcome?;
        stopped?;
        let mut recorded = flags.record(&plan.settings, &search);
        if args.iterations.is_some() {
            // The window need not be whole generations.
            let generations = plan.window as f64 / pop as f64;
            recorded.insert("generations".into(), json!(generations));
        }
        recorded.insert("iterations".into(), json!(total));
        recorded.insert("children_per_worker".into(), json!(plan.window));
        recorded.insert("checkpoint_generations".into(), json!(plan.checkpoint));
        recorded.insert("validate_every".into(), json!(plan.settings.validate_every));
        recorded.insert("batch_size".into(), json!(plan.batch_size));
        let sidecar = match &args.sidecar_url {
            Some(_) => url.as_str(),
            None => "in-process",
        };
        recorded.insert("sidecar".into(), json!(sidecar));
        recorded.insert("run_id".into(), json!(run_id));
        let mut record = Record::new("sidecar", recorded, &engine, &search.mutations);
        record.stage("post", poster.requests, poster.post_time);
        record.stage("verify", poster.verifications, poster.verify_time);
        record.count("events_written", poster.events);
        record.count("progress_events", poster.progress_events);
        record.count("verifications", poster.verifications);
        record.count("http_requests", poster.requests);
        record.count("http_bytes_sent", poster.bytes_sent);
        record.count("http_bytes_received", poster.bytes_received);
        Ok((sampled, record))
    })
}

/// What a window runs.
struct Plan {
    settings: MinerSettings,
    /// Children per worker before and in the window.
    warmup: u64,
    window: u64,
    checkpoint: u64,
    batch_size: usize,
    frequency: i32,
}

/// What an island tells the reporting thread.
enum Msg {
    Progress {
        worker: usize,
        children: u64,
        rate: f64,
        best: Option<f64>,
    },
    Improved(Found),
    /// The island finished its warm-up and waits for the window.
    WarmedUp,
    Finished,
}

/// Lets the islands into the window, or tells them to stop.
#[derive(Default)]
struct Release {
    decided: Mutex<Option<bool>>,
    cv: Condvar,
}

impl Release {
    fn decide(&self, go: bool) {
        self.decided.lock().get_or_insert(go);
        self.cv.notify_all();
    }

    fn wait(&self) -> bool {
        let mut d = self.decided.lock();
        loop {
            if let Some(go) = *d {
                return go;
            }
            self.cv.wait(&mut d);
        }
    }
}

/// Start the run, mine through the warm-up and the window, and report.
fn mine(
    plan: &Plan,
    url: &str,
    run_id: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(Sampled, Stages, Poster, String)> {
    let mut poster = Poster::new(url, plan.batch_size)?;
    let mut start = Map::new();
    if let Some(r) = run_id {
        start.insert("run_id".into(), json!(r));
    }
    start.insert("replace".into(), json!(true));
    let started = poster.post("/runs/start", &Value::Object(start))?;
    poster.run_id = started["run_id"]
        .as_str()
        .context("POST /runs/start: no run_id in the answer")?
        .to_string();
    let s = &plan.settings;
    let suite = search::miner_suite(s, data_dir).map_err(anyhow::Error::msg)?;
    poster.verifier = Some(Verifier::new(s, data_dir).map_err(anyhow::Error::msg)?);
    poster.policy = Policy::new(s.validate_every, Duration::ZERO, None);
    let config = search::evolution_config(s, None).map_err(anyhow::Error::msg)?;
    let islands = (0..s.workers)
        .map(|w| Evolver::for_worker(config.clone(), suite.tasks.clone(), suite.seeds.clone(), w))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, rx) = channel();
    let release = Release::default();
    let stop = AtomicBool::new(false);
    let (stages, sampled) = std::thread::scope(|scope| {
        let handles: Vec<_> = islands
            .into_iter()
            .enumerate()
            .map(|(w, island)| {
                let (tx, release, stop) = (tx.clone(), &release, &stop);
                scope.spawn(move || mine_island(w, island, plan, &tx, release, stop))
            })
            .collect();
        drop(tx);
        let mut reporting = Reporting::default();
        let mut failed: Option<anyhow::Error> = None;
        for msg in rx {
            if failed.is_some() {
                continue;
            }
            let step = reporting.take(msg, &mut poster, plan, s.workers, &release);
            if let Err(e) = step {
                stop.store(true, Ordering::Relaxed);
                release.decide(false);
                failed = Some(e);
            }
        }
        let stages = handles
            .into_iter()
            .map(|h| h.join().expect("an island panicked"))
            .fold(Stages::default(), |sum, s| sum.plus(&s));
        match (failed, reporting.sampled) {
            (Some(e), _) => Err(e),
            (None, Some(sampled)) => Ok((stages, sampled)),
            (None, None) => bail!("the window did not finish"),
        }
    })?;
    let run_id = poster.run_id.clone();
    Ok((sampled, stages, poster, run_id))
}

/// One island: warm-up, wait for the window, window; returns the window's counters.
fn mine_island(
    worker: usize,
    mut island: Evolver,
    plan: &Plan,
    tx: &Sender<Msg>,
    release: &Release,
    stop: &AtomicBool,
) -> Stages {
    let started = Instant::now();
    let run = |island: &mut Evolver, n: u64| {
        for _ in 0..n {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let outcome = island.step();
            let children = island.children();
            if outcome.improved {
                if let Some(best) = island.best().filter(|b| b.fitness.is_finite()) {
                    let _ = tx.send(Msg::Improved(Found {
                        worker,
                        children,
                        fitness: best.fitness as f64,
                        dsl: print_program(&best.program),
                    }));
                }
            }
            if children % plan.checkpoint == 0 {
                let best = island.best().map(|b| b.fitness as f64);
                let _ = tx.send(Msg::Progress {
                    worker,
                    children,
                    rate: children as f64 / started.elapsed().as_secs_f64().max(1e-9),
                    best: best.filter(|b| b.is_finite()),
                });
            }
        }
    };
    run(&mut island, plan.warmup);
    let _ = tx.send(Msg::WarmedUp);
    if !release.wait() {
        return Stages::default();
    }
    island.reset_stages();
    island.set_profiling(true);
    run(&mut island, plan.window);
    let _ = tx.send(Msg::Finished);
    *island.stages()
}

/// The reporting thread's progress through the run.
#[derive(Default)]
struct Reporting {
    warmed_up: usize,
    finished: usize,
    sampler: Option<Sampler>,
    sampled: Option<Sampled>,
}

impl Reporting {
    fn take(
        &mut self,
        msg: Msg,
        poster: &mut Poster,
        plan: &Plan,
        workers: usize,
        release: &Release,
    ) -> anyhow::Result<()> {
        match msg {
            Msg::Progress {
                worker,
                children,
                rate,
                best,
            } => {
                poster.note_children(worker, children);
                poster.progress_events += 1;
                poster.emit(json!({
                    "type": "progress", "worker_id": worker, "iteration": children,
                    "rate": rate, "engine_best": best,
                }))?;
            }
            Msg::Improved(found) => {
                poster.note_children(found.worker, found.children);
                poster.policy.offer(found);
            }
            Msg::WarmedUp => {
                self.warmed_up += 1;
                if self.warmed_up == workers {
                    poster.flush()?;
                    self.sampler = Some(Sampler::start(plan.frequency)?);
                    poster.reset_counts();
                    release.decide(true);
                }
            }
            Msg::Finished => {
                self.finished += 1;
                if self.finished == workers {
                    poster.emit(json!({"type": "done"}))?;
                    poster.flush()?;
                    let sampler = self.sampler.take().context("sampling never started")?;
                    self.sampled = Some(sampler.stop()?);
                }
            }
        }
        poster.verify_due(plan)
    }
}

/// The reporting side: the run's HTTP client and event batch, the candidate policy, and
/// what it did in the window.
struct Poster {
    client: reqwest::blocking::Client,
    base: String,
    run_id: String,
    batch: Vec<Value>,
    batch_size: usize,
    policy: Policy,
    verifier: Option<Verifier>,
    /// Each worker's children at its last message.
    children: Vec<u64>,
    events: u64,
    progress_events: u64,
    verifications: u64,
    requests: u64,
    bytes_sent: u64,
    bytes_received: u64,
    post_time: Duration,
    verify_time: Duration,
}

impl Poster {
    fn new(base: &str, batch_size: usize) -> anyhow::Result<Self> {
        Ok(Poster {
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.to_string(),
            run_id: String::new(),
            batch: Vec::new(),
            batch_size,
            policy: Policy::new(1, Duration::ZERO, None),
            verifier: None,
            children: Vec::new(),
            events: 0,
            progress_events: 0,
            verifications: 0,
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            post_time: Duration::ZERO,
            verify_time: Duration::ZERO,
        })
    }

    fn reset_counts(&mut self) {
        self.events = 0;
        self.progress_events = 0;
        self.verifications = 0;
        self.requests = 0;
        self.bytes_sent = 0;
        self.bytes_received = 0;
        self.post_time = Duration::ZERO;
        self.verify_time = Duration::ZERO;
    }

    fn note_children(&mut self, worker: usize, children: u64) {
        if self.children.len() <= worker {
            self.children.resize(worker + 1, 0);
        }
        self.children[worker] = self.children[worker].max(children);
    }

    /// POST a JSON body; the answer's JSON. Requests and bytes are counted.
    fn post(&mut self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let text = body.to_string();
        let t = Instant::now();
        let answer = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(text.clone())
            .send()
            .and_then(|r| Ok((r.status(), r.text()?)));
        self.post_time += t.elapsed();
        let (status, reply) = answer.with_context(|| format!("POST {url}"))?;
        self.requests += 1;
        self.bytes_sent += text.len() as u64;
        self.bytes_received += reply.len() as u64;
        if !status.is_success() {
            bail!(
                "POST {url}: HTTP {status}: {}",
                bitsota_tui::poller::detail_of(&reply)
            );
        }
        serde_json::from_str(&reply).with_context(|| format!("POST {url}: the answer is not JSON"))
    }

    fn emit(&mut self, event: Value) -> anyhow::Result<()> {
        self.events += 1;
        self.batch.push(event);
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.batch);
        let sent = events.len() as u64;
        let body = json!({"run_id": self.run_id, "events": events});
        let answer = self.post("/ingest_batch", &body)?;
        if answer["received"].as_u64() != Some(sent) {
            bail!(
                "POST /ingest_batch: the sidecar took {} of {sent} events",
                answer["received"]
            );
        }
        Ok(())
    }

    /// Verify the waiting candidate when the cadence allows, and report the outcome.
    fn verify_due(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let total = self.children.iter().sum();
        let Some(found) = self.policy.take_due(total) else {
            return Ok(());
        };
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        let t = Instant::now();
        let verified = verifier.verify(&found.dsl);
        self.verify_time += t.elapsed();
        self.verifications += 1;
        let s = &plan.settings;
        let event = match verified {
            Ok(Some(score)) => {
                self.policy.verified(Verified {
                    found: found.clone(),
                    score,
                });
                json!({
                    "type": "candidate", "worker_id": found.worker, "iteration": found.children,
                    "eval_score": found.fitness, "validator_score": score,
                    "input_dim": s.input_dim, "algorithm_dsl": found.dsl,
                    "task_type": s.task_type,
                })
            }
            Ok(None) => json!({
                "type": "log", "worker_id": found.worker,
                "message": format!("[w{}] candidate at {} diverges on the validator suite",
                    found.worker, found.children),
            }),
            Err(e) => json!({
                "type": "error", "worker_id": found.worker,
                "message": format!("verification failed: {e}"),
            }),
        };
        self.emit(event)
    }
}
