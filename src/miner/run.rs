//! One mining run on its own thread (sidecar-miner.md §2): the search runs on worker
//! threads; this thread receives their events, batches progress into its event sink,
//! verifies candidates on the validator suite at the configured cadence, and submits the
//! ones that meet the rules to the relay.

use super::search::{self, SearchEvent, Verifier};
use super::settings::MinerSettings;
use super::{Live, RunSink};
use crate::engine::{parse_program, Program};
use crate::keys::Keypair;
use crate::protocol::client::ClientError;
use crate::protocol::relay_client::RelayClient;
use crate::protocol::run_events::{self, Event};
use crate::protocol::wire::{InviteLink, SubmitSolution};
use serde_json::{json, Map};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A program a worker found, not yet verified.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub worker: usize,
    pub children: u64,
    pub fitness: f64,
    pub dsl: String,
}

/// A verified candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub found: Found,
    pub score: f64,
}

/// The candidate and submission rules as a pure state machine over explicit time and
/// step counts.
#[derive(Debug)]
pub struct Policy {
    validate_every: u64,
    cooldown: Duration,
    /// Miner fitness of the last verified candidate.
    last_verified_fitness: f64,
    last_verified_at: Option<u64>,
    pending: Option<Found>,
    /// Best score the relay accepted from this run.
    pub local_best: Option<f64>,
    /// The relay's SOTA (None until first read).
    pub global_sota: Option<f64>,
    last_submit: Option<Instant>,
    /// The best verified candidate waiting for the cooldown.
    queued: Option<Verified>,
    /// No submission before this (the relay said it is out of storage).
    paused_until: Option<Instant>,
}

/// How long the miner holds its submissions after the relay answered 507.
pub const STORAGE_PAUSE: Duration = Duration::from_secs(60);

impl Policy {
    pub fn new(validate_every: u64, cooldown: Duration, local_best: Option<f64>) -> Self {
        Policy {
            validate_every: validate_every.max(1),
            cooldown,
            last_verified_fitness: f64::NEG_INFINITY,
            last_verified_at: None,
            pending: None,
            local_best,
            global_sota: None,
            last_submit: None,
            queued: None,
            paused_until: None,
        }
    }

    /// A worker improved: it is a candidate when its miner fitness beats the miner
    /// fitness of the last verified candidate (as the reference miner decides: the two
    /// suites' scores are not comparable) and any candidate already waiting.
    pub fn offer(&mut self, f: Found) {
        let beats_pending = self
            .pending
            .as_ref()
            .map_or(true, |p| f.fitness > p.fitness);
        if f.fitness > self.last_verified_fitness && beats_pending {
            self.pending = Some(f);
        }
    }

    /// The candidate to verify now, if one waits and `validate_every` steps passed since
    /// the last verification (verification costs a validator-suite evaluation).
    pub fn take_due(&mut self, total_children: u64) -> Option<Found> {
        let due = self
            .last_verified_at
            .map_or(true, |at| total_children >= at + self.validate_every);
        if !due {
            return None;
        }
        let f = self.pending.take()?;
        self.last_verified_at = Some(total_children);
        self.last_verified_fitness = f.fitness;
        Some(f)
    }

    /// Record a verification; `true` when the candidate qualifies for submission (score
    /// ≥ the relay's SOTA and above the run's accepted best) and is queued for it.
    pub fn verified(&mut self, v: Verified) -> bool {
        let qualifies =
            self.qualifies(v.score) && self.queued.as_ref().map_or(true, |q| v.score > q.score);
        if qualifies {
            self.queued = Some(v);
        }
        qualifies
    }

    fn qualifies(&self, score: f64) -> bool {
        score >= self.global_sota.unwrap_or(f64::NEG_INFINITY)
            && self.local_best.map_or(true, |l| score > l)
    }

    /// The queued candidate to submit now: the cooldown has passed and it still meets the
    /// rules (the SOTA may have risen meanwhile; then it is dropped).
    pub fn take_submission(&mut self, now: Instant) -> Option<Verified> {
        let cooled = self
            .last_submit
            .map_or(true, |t| now.duration_since(t) >= self.cooldown);
        if !cooled || self.paused_until.is_some_and(|t| now < t) {
            return None;
        }
        let v = self.queued.take()?;
        self.qualifies(v.score).then_some(v)
    }

    /// The relay is out of storage: keep `v` (unless a better one is queued) and submit
    /// nothing before `until`.
    pub fn hold(&mut self, v: Verified, until: Instant) {
        self.paused_until = Some(until);
        if self.queued.as_ref().map_or(true, |q| v.score > q.score) {
            self.queued = Some(v);
        }
    }

    /// Record the relay's answer to a submission made at `now`.
    pub fn submitted(&mut self, now: Instant, score: f64, accepted: bool) {
        self.last_submit = Some(now);
        if accepted {
            self.local_best = Some(self.local_best.map_or(score, |l| l.max(score)));
        }
    }
}

/// Everything a run needs, moved onto its thread.
pub struct RunJob {
    pub run_id: String,
    pub settings: MinerSettings,
    /// Where the run's events go.
    pub sink: Arc<dyn RunSink>,
    pub stop: Arc<AtomicBool>,
    pub live: Arc<Live>,
    /// The relay to submit to (none: verify only).
    pub relay_url: Option<String>,
    /// The miner identity that signs submissions.
    pub keypair: Keypair,
    /// Link an invitation code before submitting (outside the embedded test-mode relay).
    pub needs_invitation: bool,
    pub invite_code: Option<String>,
    pub data_dir: PathBuf,
}

/// How often batched progress reaches the store.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// At most one progress line per worker this often: a fast search reports thousands of
/// times a second, and the run's log (store, dashboard) needs about one line a second.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Wait after a failed SOTA read before trying again.
const SOTA_BACKOFF: Duration = Duration::from_secs(5);

struct Runner {
    job: RunJob,
    /// Built on the run's thread: a blocking HTTP client must not live in the runtime.
    relay: Option<RelayClient>,
    policy: Policy,
    /// Prepared once the run's suites are built.
    verifier: Option<Verifier>,
    batch: Vec<Event>,
    last_flush: Instant,
    next_sota: Instant,
    /// The last SOTA read failed (log a failure streak once, not every retry).
    sota_failing: bool,
    children: Vec<u64>,
    /// When each worker's last progress line was written.
    progress_at: Vec<Option<Instant>>,
}

fn log(message: String) -> Event {
    Event::Log {
        worker_id: None,
        message,
    }
}

impl Runner {
    fn emit(&mut self, e: Event) {
        self.batch.push(e);
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Err(e) = self.job.sink.ingest(&self.job.run_id, &self.batch) {
            tracing::warn!(run = %self.job.run_id, error = %e, "miner: cannot write events");
        }
        self.batch.clear();
        self.last_flush = Instant::now();
    }

    fn total_children(&self) -> u64 {
        self.children.iter().sum()
    }

    fn refresh_sota(&mut self, now: Instant) {
        if now < self.next_sota {
            return;
        }
        let Some(relay) = &self.relay else {
            return;
        };
        match relay.sota_threshold() {
            Ok(sota) => {
                self.sota_failing = false;
                self.policy.global_sota = Some(sota);
                self.next_sota = now + Duration::from_secs(self.job.settings.sota_refresh_s);
                if let Err(e) = self.job.sink.set_global_sota(&self.job.run_id, sota) {
                    tracing::warn!(error = %e, "miner: cannot record the global SOTA");
                }
            }
            Err(e) => {
                self.next_sota = now + SOTA_BACKOFF;
                if !self.sota_failing {
                    self.sota_failing = true;
                    self.emit(log(format!("[miner] cannot read the relay's SOTA: {e}")));
                }
            }
        }
    }

    fn on_event(&mut self, event: SearchEvent) {
        match event {
            SearchEvent::Progress {
                worker,
                children,
                children_per_sec,
                best_fitness,
                ..
            } => {
                self.children[worker] = children;
                self.job
                    .live
                    .progress(worker, children, children_per_sec, best_fitness);
                let now = Instant::now();
                if line_due(self.progress_at[worker], now) {
                    self.progress_at[worker] = Some(now);
                    self.emit(Event::Progress {
                        worker_id: worker.to_string(),
                        iteration: children,
                        rate: Some(children_per_sec),
                        engine_best: best_fitness,
                        pop_best: None,
                    });
                }
            }
            SearchEvent::Improved {
                worker,
                children,
                fitness,
                dsl,
            } => {
                self.children[worker] = self.children[worker].max(children);
                self.job.live.improved(fitness);
                if self.job.settings.verbose {
                    self.emit(Event::Log {
                        worker_id: Some(worker.to_string()),
                        message: format!(
                            "[w{worker}] improved: fitness={fitness:.6} at {children}"
                        ),
                    });
                }
                self.policy.offer(Found {
                    worker,
                    children,
                    fitness,
                    dsl,
                });
            }
            SearchEvent::Finished { worker, children } => {
                self.children[worker] = children;
                self.job.live.progress(worker, children, 0.0, None);
                // The last line is never throttled: the run's log and its
                // `tasks_completed` end at the worker's real count.
                self.progress_at[worker] = Some(Instant::now());
                self.emit(Event::Progress {
                    worker_id: worker.to_string(),
                    iteration: children,
                    rate: None,
                    engine_best: None,
                    pop_best: None,
                });
            }
        }
        let now = Instant::now();
        self.refresh_sota(now);
        if let Some(found) = self.policy.take_due(self.total_children()) {
            self.verify(found);
        }
        if let Some(v) = self.policy.take_submission(now) {
            self.submit(v);
        }
        if now.duration_since(self.last_flush) >= FLUSH_EVERY {
            self.flush();
        }
    }

    fn verify(&mut self, found: Found) {
        let Some(verifier) = &self.verifier else {
            return;
        };
        let score = match verifier.verify(&found.dsl) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let line =
                    run_events::candidate_line(&found.worker.to_string(), found.children, None);
                self.emit(log(format!("{line} (diverges on the validator suite)")));
                return;
            }
            Err(e) => {
                self.emit(Event::Error {
                    worker_id: Some(found.worker.to_string()),
                    message: format!("verification failed: {e}"),
                });
                return;
            }
        };
        let s = &self.job.settings;
        let mut body = Map::new();
        body.insert("type".into(), json!("candidate"));
        body.insert("worker_id".into(), json!(found.worker));
        body.insert("iteration".into(), json!(found.children));
        body.insert("eval_score".into(), json!(found.fitness));
        body.insert("validator_score".into(), json!(score));
        body.insert("input_dim".into(), json!(s.input_dim));
        body.insert("algorithm_dsl".into(), json!(found.dsl));
        body.insert("task_type".into(), json!(s.task_type));
        let event = Event::Candidate {
            worker_id: found.worker.to_string(),
            iteration: found.children,
            verified: Some(score),
            eval: Some(found.fitness),
            body,
        };
        let queued = self.policy.verified(Verified { found, score });
        self.emit(event);
        if queued && self.relay.is_none() {
            self.emit(log("[miner] no relay is configured; not submitting".into()));
        }
        self.flush();
    }

    fn submission_body(&self, v: &Verified) -> SubmitSolution {
        let s = &self.job.settings;
        let mut algorithm_result = Map::new();
        algorithm_result.insert("task_type".into(), json!(s.task_type));
        algorithm_result.insert("algorithm_dsl".into(), json!(v.found.dsl));
        algorithm_result.insert("input_dim".into(), json!(s.input_dim));
        algorithm_result.insert(
            "metadata".into(),
            json!({
                "generation": v.found.children,
                "engine_type": s.engine,
                "total_algorithms_evaluated": self.total_children(),
                "worker_id": v.found.worker,
                "eval_score": v.found.fitness,
                "run_id": self.job.run_id,
                "seed": s.seed,
                "miner_task_count": s.miner_task_count,
                "validator_task_count": s.validator_task_count,
            }),
        );
        SubmitSolution {
            task_id: format!("sota-mine-{}", uuid::Uuid::new_v4()),
            score: Some(v.score),
            algorithm_result,
        }
    }

    fn submit(&mut self, v: Verified) {
        let Some(relay) = &self.relay else {
            return;
        };
        let body = self.submission_body(&v);
        let now = Instant::now();
        let (status, line) = match relay.submit(&body) {
            // Not the candidate's fault: hold it, stop submitting for a while, say why.
            Err(ClientError::Status {
                status: 507,
                detail,
                ..
            }) => {
                self.emit(log(format!(
                    "[submit] the relay is out of storage (HTTP 507): {detail}; holding the candidate (score={:.6}) and pausing submissions for {} s",
                    v.score,
                    STORAGE_PAUSE.as_secs()
                )));
                self.policy.hold(v, now + STORAGE_PAUSE);
                self.flush();
                return;
            }
            Ok(accepted) => (
                "accepted",
                format!(
                    "[submit] accepted: score={:.6} result_id={}",
                    v.score, accepted.result_id
                ),
            ),
            Err(ClientError::Status { status, detail, .. }) => (
                "rejected",
                format!(
                    "[submit] rejected by the relay (HTTP {status}): {detail} (score={:.6})",
                    v.score
                ),
            ),
            Err(e) => ("error", format!("[submit] {e}")),
        };
        self.policy.submitted(now, v.score, status == "accepted");
        self.emit(log(line));
        self.flush();
        if let Err(e) = self
            .job
            .sink
            .submission_result(&self.job.run_id, v.score, status)
        {
            tracing::warn!(error = %e, "miner: cannot record a submission result");
        }
        // A new SOTA follows an accepted submission once validators agree: read it soon.
        self.next_sota = now + Duration::from_secs(2);
    }
}

/// Whether a worker's progress line is due (see [`PROGRESS_EVERY`]).
fn line_due(last: Option<Instant>, now: Instant) -> bool {
    last.map_or(true, |t| now.duration_since(t) >= PROGRESS_EVERY)
}

/// The relay's SOTA program to start from, when the run asks for it; the outcome goes
/// to the run's log. Without one (no SOTA yet, another task type, relay unreachable)
/// the run starts from the recipe's first population.
fn start_program(runner: &mut Runner) -> Option<Program> {
    let s = &runner.job.settings;
    if !s.start_from_sota {
        return None;
    }
    let Some(relay) = &runner.relay else {
        runner.emit(log(
            "[miner] start_from_sota: no relay is configured; starting afresh".into(),
        ));
        return None;
    };
    let (line, program) = match relay.sota_program(&s.task_type, s.input_dim) {
        Ok(Some(sota)) => match parse_program(&sota.dsl) {
            Ok(p) => (
                format!(
                    "[miner] starting from the relay's SOTA program (score {:.6}, miner {})",
                    sota.score, sota.miner
                ),
                Some(p),
            ),
            Err(e) => (
                format!("[miner] the relay's SOTA program does not parse ({e}); starting afresh"),
                None,
            ),
        },
        Ok(None) => (
            format!(
                "[miner] the relay has no SOTA program for {} yet; starting afresh",
                s.task_type
            ),
            None,
        ),
        Err(e) => (
            format!("[miner] cannot read the relay's SOTA program ({e}); starting afresh"),
            None,
        ),
    };
    runner.emit(log(line));
    program
}

/// Make sure an invitation code is linked (needed outside test mode): already linked →
/// nothing; else link `code`. Returns a line for the run's log.
fn ensure_invitation(relay: &RelayClient, code: Option<&str>) -> Result<String, String> {
    let linked = relay
        .linked_code()
        .map_err(|e| format!("invitation check: {e}"))?;
    if let Some(code) = linked {
        return Ok(format!("invitation code {code} is linked"));
    }
    let Some(code) = code else {
        return Err(
            "no invitation code is linked and [miner] invite_code is not set; \
                    the relay will refuse submissions"
                .into(),
        );
    };
    let link = InviteLink {
        code: code.to_string(),
        coldkey_address: None,
    };
    match relay.link_code(&link) {
        Ok(true) => Ok(format!("linked invitation code {code}")),
        Ok(false) => Err(format!(
            "the relay did not accept invitation code {code} (unknown or used)"
        )),
        Err(e) => Err(format!("invitation link: {e}")),
    }
}

/// Run a mining job to its end (stop flag, `max_generations`, or an error).
pub fn mine(job: RunJob) {
    let s = job.settings.clone();
    let start_line = format!(
        "[miner] run {} started: task={} engine={} workers={} seed={} start_from_sota={} hotkey={} relay={}",
        job.run_id,
        s.task_type,
        s.engine,
        s.workers,
        s.seed,
        s.start_from_sota,
        job.keypair.ss58(),
        job.relay_url.as_deref().unwrap_or("-"),
    );
    let batch = vec![log(start_line)];
    let relay = match &job.relay_url {
        Some(url) => Some(RelayClient::new(url, job.keypair.clone())),
        None => None,
    };
    let local_best = job.sink.local_sota(&job.run_id);
    let mut runner = Runner {
        policy: Policy::new(
            s.validate_every,
            Duration::from_secs(s.submission_cooldown_seconds),
            local_best,
        ),
        verifier: None,
        batch,
        relay,
        last_flush: Instant::now(),
        next_sota: Instant::now(),
        sota_failing: false,
        children: vec![0; s.workers],
        progress_at: vec![None; s.workers],
        job,
    };
    if runner.job.needs_invitation {
        if let Some(relay) = &runner.relay {
            let line = match ensure_invitation(relay, runner.job.invite_code.as_deref()) {
                Ok(l) => format!("[miner] {l}"),
                Err(e) => format!("[miner] invitation: {e}"),
            };
            runner.emit(log(line));
        }
    }
    let suites = search::miner_suite(&s, &runner.job.data_dir)
        .and_then(|m| Verifier::new(&s, &runner.job.data_dir).map(|v| (m, v)));
    let outcome = match suites {
        Ok((miner, verifier)) => {
            runner.verifier = Some(verifier);
            runner.refresh_sota(Instant::now());
            let start = start_program(&mut runner);
            runner.flush();
            let stop = runner.job.stop.clone();
            search::run(&s, &miner, start, &stop, |e| runner.on_event(e))
        }
        Err(e) => Err(e),
    };
    let total = runner.total_children();
    match outcome {
        Err(e) => {
            runner.job.live.failed(e.clone());
            runner.emit(Event::Error {
                worker_id: None,
                message: format!("[miner] {e}"),
            });
        }
        Ok(()) => runner.emit(log(format!("[miner] stopped after {total} children"))),
    }
    if !runner.job.stop.load(Ordering::Relaxed) {
        // Ended on its own (generation budget or error): the run is over.
        runner.emit(Event::Done { worker_id: None });
    }
    runner.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(children: u64, fitness: f64) -> Found {
        Found {
            worker: 0,
            children,
            fitness,
            dsl: String::new(),
        }
    }

    #[test]
    fn progress_lines_are_at_most_one_a_second() {
        let t0 = Instant::now();
        assert!(line_due(None, t0));
        assert!(!line_due(Some(t0), t0 + Duration::from_millis(999)));
        assert!(line_due(Some(t0), t0 + Duration::from_secs(1)));
    }

    #[test]
    fn candidates_are_verified_at_the_cadence() {
        let mut p = Policy::new(100, Duration::ZERO, None);
        p.offer(found(5, 0.5));
        assert_eq!(p.take_due(5).unwrap().children, 5); // first one at once
        p.offer(found(20, 0.6));
        assert!(p.take_due(50).is_none()); // too soon
        p.offer(found(30, 0.55)); // worse than the waiting one: ignored
        assert_eq!(p.take_due(105).unwrap().fitness, 0.6);
        // A candidate must beat the last verified miner fitness.
        p.offer(found(300, 0.6));
        assert!(p.take_due(400).is_none());
        p.offer(found(310, 0.61));
        assert_eq!(p.take_due(400).unwrap().children, 310);
        p.offer(found(320, 0.62));
        assert!(p.take_due(499).is_none());
        assert_eq!(p.take_due(500).unwrap().children, 320);
    }

    #[test]
    fn a_relay_out_of_storage_pauses_submissions_and_keeps_the_candidate() {
        let t0 = Instant::now();
        let mut p = Policy::new(1, Duration::from_secs(10), None);
        p.global_sota = Some(0.1);
        assert!(p.verified(Verified {
            found: found(1, 0.9),
            score: 0.5
        }));
        let taken = p.take_submission(t0).unwrap();
        p.hold(taken, t0 + STORAGE_PAUSE);
        assert!(p.take_submission(t0 + Duration::from_secs(59)).is_none());
        let again = p.take_submission(t0 + STORAGE_PAUSE).unwrap();
        assert_eq!(again.score, 0.5);
    }

    #[test]
    fn submissions_follow_sota_local_best_and_cooldown() {
        let t0 = Instant::now();
        let mut p = Policy::new(1, Duration::from_secs(60), None);
        p.global_sota = Some(0.5);
        assert!(!p.verified(Verified {
            found: found(1, 0.9),
            score: 0.4
        }));
        assert!(p.verified(Verified {
            found: found(2, 0.9),
            score: 0.6
        }));
        let v = p.take_submission(t0).unwrap();
        p.submitted(t0, v.score, true);
        assert_eq!(p.local_best, Some(0.6));
        // Equal to the local best: not better.
        assert!(!p.verified(Verified {
            found: found(3, 0.9),
            score: 0.6
        }));
        assert!(p.verified(Verified {
            found: found(4, 0.9),
            score: 0.8
        }));
        assert!(p.take_submission(t0 + Duration::from_secs(10)).is_none()); // cooldown
        let v = p.take_submission(t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(v.score, 0.8);
        // SOTA rose past a queued candidate: it is dropped.
        p.submitted(t0 + Duration::from_secs(61), 0.8, false);
        p.verified(Verified {
            found: found(5, 0.9),
            score: 0.85,
        });
        p.global_sota = Some(0.9);
        assert!(p.take_submission(t0 + Duration::from_secs(200)).is_none());
    }
}
