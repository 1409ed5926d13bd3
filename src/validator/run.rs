//! The validator loop (validator.md §1): poll the relay, judge every new result, vote.
//! Independent of the daemon — `bitsota validate` runs the same loop — and synchronous:
//! it runs on its own (blocking) thread, and re-evaluations run on rayon.
//!
//! Submissions are untrusted, so no submission can starve the others:
//! - a program over the evaluation budget (`engine::cost`) is counted invalid without
//!   being run, and one that outlives the wall-clock deadline (`[budget] deadline_s`,
//!   looked at between examples) is counted invalid when it passes it;
//! - new results wait in a queue, newest first, bounded by what one poll fetches; a poll
//!   re-evaluates from its head for at most one poll interval (at least
//!   [`MIN_SLICE`]), votes on what it judged, and the rest waits for the next poll,
//!   which starts at once while work is queued. So an honest submission arriving after
//!   any number of hostile ones is judged in the next poll;
//! - shutdown cancels a running evaluation between examples; the result stays unseen
//!   and is judged after a restart.
//!
//! A vote the relay could not take (a 5xx — 507 while its disk is low —, a timeout, no
//! connection; [`rules::retry_vote`]) is deferred: sent again from a later poll once the
//! poll backoff has passed, with the score already judged (never re-evaluated), for as
//! long as the relay lists the result and the score beats its SOTA. A deferred result is
//! out of the seen-set, so a restart judges it afresh rather than forgetting the vote.

use super::metrics::{short_hotkey, MetricsLog};
use super::rules::{self, backoff, judge, select_vote, stats_line, Candidate, Submission, Verdict};
use super::seen::{SeenSet, SEEN_CAPACITY};
use super::state::{ValidatorState, VoteRecord};
use super::suites::{Algorithm, PreparedSuite, Suites};
use super::ValidatorError;
use crate::clock::{self, SecondsFormat};
use crate::config::ValidatorConfig;
use crate::engine::Stop;
use crate::keys::{verify_hex, Keypair};
use crate::protocol::client::ClientError;
use crate::protocol::relay_client::RelayClient;
use crate::protocol::wire::{SotaVote, StatusAnswer, VoteAnswer};
use crate::store::Store;
use crate::tasks::TaskType;
use rayon::prelude::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a sleeping loop checks for shutdown and a due stats line.
const TICK: Duration = Duration::from_millis(100);
/// Shortest time a poll spends re-evaluating before it votes (the poll interval when
/// longer).
pub const MIN_SLICE: Duration = Duration::from_secs(1);

/// The relay's answer to a vote (SOTA or blacklist), as the dashboard shows it.
#[derive(Clone, Debug, PartialEq)]
struct VoteOutcome {
    /// `vote_recorded`, `vote_updated`, `already_voted`, `finalized`,
    /// `blacklist vote recorded`, `late` when the relay refused a SOTA vote because the
    /// SOTA already reached its score ([`rules::vote_was_late`]), `retrying` when the
    /// relay could not take it now ([`rules::retry_vote`]), or `rejected` when the relay
    /// refused otherwise. The detail is the relay's answer.
    status: String,
    detail: String,
    /// The SOTA after the vote (SOTA votes only).
    current_sota: Option<f64>,
}

impl VoteOutcome {
    fn rejected(e: ClientError) -> Self {
        let retry = match &e {
            ClientError::Status { status, .. } => rules::retry_vote(Some(*status)),
            ClientError::Transport { .. } => rules::retry_vote(None),
            // Nothing was sent, or a 2xx that could not be read: retrying cannot help.
            ClientError::Client(_) | ClientError::Body { .. } => false,
        };
        VoteOutcome {
            status: if retry { "retrying" } else { "rejected" }.into(),
            detail: e.detail(),
            current_sota: None,
        }
    }

    fn of_vote(answer: Result<VoteAnswer, ClientError>, score: f64) -> Self {
        match answer {
            Ok(a) => VoteOutcome {
                detail: format!("{}/{} votes", a.votes_for_candidate, a.votes_needed),
                status: a.status,
                current_sota: Some(a.current_sota),
            },
            Err(e) if rules::vote_was_late(&e.detail(), score) => VoteOutcome {
                status: "late".into(),
                ..Self::rejected(e)
            },
            Err(e) => Self::rejected(e),
        }
    }

    fn of_blacklist(answer: Result<StatusAnswer, ClientError>) -> Self {
        match answer {
            Ok(a) => VoteOutcome {
                status: a.status,
                detail: String::new(),
                current_sota: None,
            },
            Err(e) => Self::rejected(e),
        }
    }

    /// The relay took the vote (any 2xx).
    fn accepted(&self) -> bool {
        !matches!(self.status.as_str(), "rejected" | "late" | "retrying")
    }

    /// The relay could not take the vote now: send it again later.
    fn retry(&self) -> bool {
        self.status == "retrying"
    }
}

/// One validator identity polling one relay.
pub struct ValidatorLoop {
    cfg: ValidatorConfig,
    client: RelayClient,
    seen: SeenSet,
    suites: Arc<Suites>,
    state: Arc<ValidatorState>,
    metrics: MetricsLog,
    /// The miner we back, who keeps our vote while tied: that of our last accepted SOTA
    /// vote, or — once an event has cleared the pending votes — the event's winner.
    backing: Option<String>,
    /// The winner of the newest SOTA event we have seen.
    latest_winner: Option<String>,
    /// New results that passed the cheap checks, waiting for re-evaluation in the
    /// relay's order (newest first); not yet in the seen-set.
    queue: Vec<Queued>,
    /// Votes the relay could not take, waiting to be sent again; their results are
    /// out of the seen-set meanwhile.
    deferred: Vec<Deferred>,
    /// The daemon's `/metrics` (queue depth, evaluation seconds), when embedded.
    prom: Option<Arc<crate::metrics::Metrics>>,
}

/// A new result that passed the signature, parse and budget checks.
struct Pending {
    sub: Submission,
    alg: Algorithm,
}

struct Queued {
    /// Its seen-set key.
    key: Vec<u8>,
    pending: Pending,
}

/// A judged result on its way to a vote.
struct Judged {
    /// Its seen-set key.
    key: Vec<u8>,
    sub: Submission,
    score: f64,
    verdict: Verdict,
    /// Earlier attempts at its vote that the relay could not take (0: judged this poll).
    attempts: u32,
}

/// A vote the relay could not take, sent again once `due` ([`rules::retry_vote`]).
struct Deferred {
    judged: Judged,
    due: Instant,
}

/// How one re-evaluation ended.
enum Outcome {
    Scored(f64),
    /// Its suite could not be prepared (`eval_err`).
    NoSuite,
    /// Past the wall-clock deadline: invalid.
    OverDeadline,
    /// Shutdown: left unjudged.
    Cancelled,
}

impl ValidatorLoop {
    /// A validator `name` signing with `keypair`, its seen-set in `store`, its metrics at
    /// `metrics_path` (`None` = off).
    pub fn new(
        name: String,
        keypair: Keypair,
        relay_url: &str,
        cfg: ValidatorConfig,
        store: &Store,
        suites: Arc<Suites>,
        metrics_path: Option<PathBuf>,
    ) -> Result<Self, ValidatorError> {
        let hotkey = keypair.ss58();
        let seen = SeenSet::open(store, &hotkey, SEEN_CAPACITY)?;
        let client = RelayClient::new(relay_url, keypair);
        let state = Arc::new(ValidatorState::new(
            name,
            hotkey,
            client.base_url().to_string(),
            &cfg.burn_hotkey,
        ));
        state.count(|c| c.unique_seen = seen.len() as u64);
        Ok(ValidatorLoop {
            cfg,
            client,
            seen,
            suites,
            state,
            metrics: MetricsLog::open(metrics_path),
            backing: None,
            latest_winner: None,
            queue: Vec::new(),
            deferred: Vec::new(),
            prom: None,
        })
    }

    /// Report to the daemon's `/metrics`, and rotate the JSONL metrics past
    /// `metrics_log_max_bytes`.
    pub fn with_metrics(
        mut self,
        prom: Arc<crate::metrics::Metrics>,
        metrics_log_max_bytes: u64,
    ) -> Self {
        self.prom = Some(prom);
        self.metrics = std::mem::replace(&mut self.metrics, MetricsLog::open(None))
            .with_max_bytes(metrics_log_max_bytes);
        self
    }

    fn report_queue(&self) {
        if let Some(p) = &self.prom {
            p.validator_queue
                .with_label_values(&[&self.state.name])
                .set(self.queue.len() as i64);
        }
    }

    pub fn state(&self) -> Arc<ValidatorState> {
        self.state.clone()
    }

    /// Poll until `stop` is cancelled (or after `max_polls` polls, when non-zero): every
    /// `poll_interval_s`, backing off while the relay fails; a stats line every
    /// `stats_interval_s`.
    pub fn run(mut self, stop: &CancellationToken, max_polls: u64) {
        let name = self.state.name.clone();
        tracing::info!(validator = %name, hotkey = %self.state.hotkey, relay = %self.client.base_url(),
            metrics = ?self.metrics.path(), "validator started");
        self.metrics.event("session_start", json!({}));
        let stats_every = Duration::from_secs(self.cfg.stats_interval_s);
        let mut last_stats = Instant::now();
        let mut failures = 0u32;
        let mut polls = 0u64;
        while !stop.is_cancelled() {
            match self.poll_once(stop) {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(validator = %name, error = %e, failures,
                        retry_in_s = backoff(self.cfg.poll_interval_s, failures).as_secs_f64(),
                        "poll failed");
                }
            }
            polls += 1;
            if max_polls > 0 && polls >= max_polls {
                break;
            }
            // Queued work continues at once (after a look at the relay for newer results).
            let wait = if failures == 0 && !self.queue.is_empty() {
                Duration::ZERO
            } else {
                backoff(self.cfg.poll_interval_s, failures)
            };
            let until = Instant::now() + wait;
            while !stop.is_cancelled() {
                if !stats_every.is_zero() && last_stats.elapsed() >= stats_every {
                    last_stats = Instant::now();
                    tracing::info!(validator = %name, "{}", stats_line(&self.state.counters(), self.state.sota()));
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(TICK));
            }
        }
        tracing::info!(validator = %name, "{}", stats_line(&self.state.counters(), self.state.sota()));
    }

    /// One poll: fetch, screen the new results, re-evaluate queued ones newest first
    /// for one slice, vote. `Err` when the relay's result list could not be fetched or
    /// the seen-set not written (the caller backs off).
    pub fn poll_once(&mut self, stop: &CancellationToken) -> Result<(), ValidatorError> {
        self.state.count(|c| c.polls += 1);
        let raw = self.client.results(self.cfg.limit)?;
        let sota = self.client.sota_threshold().unwrap_or_else(|e| {
            tracing::warn!(validator = %self.state.name, error = %e, "SOTA threshold unavailable; using 0");
            0.0
        });
        self.state.set_sota(sota);
        self.state.count(|c| c.fetched += raw.len() as u64);

        self.screen(&raw)?;
        self.report_queue();
        let judged = self.evaluate(sota, stop);
        self.report_queue();
        let mut judged = judged?;
        judged.extend(self.take_due(sota));
        self.vote(judged, sota)?;
        self.refresh_weights();
        Ok(())
    }

    /// The deferred votes whose wait is over, judged again against the current `sota`
    /// with the score they already have.
    fn take_due(&mut self, sota: f64) -> Vec<Judged> {
        let now = Instant::now();
        let (due, waiting) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|d| d.due <= now);
        self.deferred = waiting;
        let cutoff = self.cfg.blacklist_cutoff;
        due.into_iter()
            .map(|d| Judged {
                verdict: judge(d.judged.score, d.judged.sub.claimed, sota, cutoff),
                ..d.judged
            })
            .collect()
    }

    /// Rebuild the queue from a fetched list: results already queued keep their place
    /// in the relay's order, seen ones and those with a deferred vote are skipped, new
    /// ones are checked (fields, signature, program, budget). A result failing a check is
    /// marked seen (and committed) at once; one passing waits in the queue, unseen until
    /// judged. Queued results and deferred votes the relay no longer lists are dropped
    /// (the miner replaced its result).
    fn screen(&mut self, raw: &[serde_json::Value]) -> Result<(), ValidatorError> {
        let mut queued: HashMap<Vec<u8>, Pending> = std::mem::take(&mut self.queue)
            .into_iter()
            .map(|q| (q.key, q.pending))
            .collect();
        let deferred: HashSet<Vec<u8>> =
            self.deferred.iter().map(|d| d.judged.key.clone()).collect();
        let mut listed = HashSet::new();
        for item in raw {
            let key = rules::seen_key(item);
            if let Some(pending) = queued.remove(&key) {
                self.queue.push(Queued { key, pending });
                continue;
            }
            if deferred.contains(&key) {
                listed.insert(key);
                continue;
            }
            if self.seen.contains(&key)? {
                self.state.count(|c| c.dupe += 1);
                continue;
            }
            self.state.count(|c| c.new += 1);
            match self.check(item) {
                Some(pending) => self.queue.push(Queued { key, pending }),
                None => self.seen.insert(&key)?,
            }
        }
        self.deferred.retain(|d| listed.contains(&d.judged.key));
        self.seen.commit()?;
        let unique = self.seen.len() as u64;
        self.state.count(|c| c.unique_seen = unique);
        Ok(())
    }

    /// The cheap checks of one new result, counting a failure; `None` when it failed.
    fn check(&self, item: &serde_json::Value) -> Option<Pending> {
        let name = &self.state.name;
        let sub = match rules::extract(item) {
            Ok(s) => s,
            Err(reason) => {
                tracing::info!(validator = %name, %reason, "invalid result");
                self.state.count(|c| c.invalid += 1);
                return None;
            }
        };
        if let Err(e) = verify_hex(&sub.miner_hotkey, &sub.timestamp_message, &sub.signature) {
            tracing::info!(validator = %name, miner = %sub.miner_hotkey, error = %e, "miner signature rejected");
            self.state.count(|c| c.sig_fail += 1);
            return None;
        }
        let alg = match self.suites.parse(&sub.algorithm_result) {
            Ok(alg) => alg,
            Err(reason) => {
                tracing::info!(validator = %name, miner = %sub.miner_hotkey, %reason, "unparsable submission");
                self.state.count(|c| c.parse_fail += 1);
                return None;
            }
        };
        if let Err(e) = self.suites.check_budget(&alg) {
            tracing::info!(validator = %name, miner = %sub.miner_hotkey, reason = %e,
                "invalid result: over the evaluation budget; not evaluated");
            self.state.count(|c| c.invalid += 1);
            return None;
        }
        Some(Pending { sub, alg })
    }

    /// Re-evaluate queued results from the head (newest first), a round of as many as
    /// there are threads at a time, until the slice is spent, the queue is empty or
    /// shutdown; judge each scored result. Every judged result is marked seen (and
    /// committed) before the caller votes.
    fn evaluate(
        &mut self,
        sota: f64,
        stop: &CancellationToken,
    ) -> Result<Vec<Judged>, ValidatorError> {
        let name = self.state.name.clone();
        let slice = Duration::from_secs_f64(self.cfg.poll_interval_s).max(MIN_SLICE);
        let width = rayon::current_num_threads().max(1);
        let started = Instant::now();
        let mut scored = Vec::new();
        while !self.queue.is_empty() && started.elapsed() < slice && !stop.is_cancelled() {
            let round: Vec<Queued> = self.queue.drain(..width.min(self.queue.len())).collect();
            let outcomes = self.evaluate_round(&round, stop);
            for (q, outcome) in round.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Cancelled => continue,
                    Outcome::Scored(score) => scored.push((q.key.clone(), q.pending.sub, score)),
                    Outcome::NoSuite => self.state.count(|c| c.eval_err += 1),
                    Outcome::OverDeadline => {
                        tracing::info!(validator = %name, miner = %q.pending.sub.miner_hotkey,
                            deadline_s = self.suites.deadline().as_secs_f64(),
                            "invalid result: re-evaluation passed its deadline");
                        self.state.count(|c| c.invalid += 1);
                    }
                }
                self.seen.insert(&q.key)?;
            }
        }
        self.seen.commit()?;
        let unique = self.seen.len() as u64;
        self.state.count(|c| c.unique_seen = unique);
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = scored.len();
        tracing::info!(validator = %name, evaluations = n, seconds = elapsed, queued = self.queue.len(),
            "batch re-evaluated");
        self.metrics.event(
            "evaluation_batch",
            json!({
                "num_evaluations": n,
                "total_evaluation_time_seconds": elapsed,
                "avg_time_per_eval_seconds": elapsed / n as f64,
                "sota_threshold": sota,
            }),
        );
        Ok(scored
            .into_iter()
            .map(|(key, sub, score)| {
                let verdict = judge(score, sub.claimed, sota, self.cfg.blacklist_cutoff);
                self.state.count(|c| c.record(verdict));
                Judged {
                    key,
                    sub,
                    score,
                    verdict,
                    attempts: 0,
                }
            })
            .collect())
    }

    /// Re-evaluate one round in parallel (across results, and across tasks inside
    /// each), each under its own deadline and the shutdown token.
    fn evaluate_round(&self, round: &[Queued], stop: &CancellationToken) -> Vec<Outcome> {
        // Suites are prepared here, on this plain thread, before the parallel section;
        // preparation, like evaluation, stops at shutdown (the round is then left unjudged).
        let cancelled = || stop.is_cancelled();
        let mut suites: HashMap<(TaskType, usize), Option<Arc<PreparedSuite>>> = HashMap::new();
        for q in round {
            let key = (q.pending.alg.task_type, q.pending.alg.input_dim);
            suites.entry(key).or_insert_with(|| match self.suites.prepared(key.0, key.1, &cancelled) {
                Ok(s) => Some(s),
                Err(_) if stop.is_cancelled() => None,
                Err(reason) => {
                    tracing::warn!(validator = %self.state.name, task_type = %key.0, input_dim = key.1, %reason,
                        "cannot prepare the validator suite; results of this kind are not evaluated");
                    None
                }
            });
        }
        if stop.is_cancelled() {
            return round.iter().map(|_| Outcome::Cancelled).collect();
        }
        let deadline = self.suites.deadline();
        round
            .par_iter()
            .map(|q| {
                let alg = &q.pending.alg;
                let Some(suite) = &suites[&(alg.task_type, alg.input_dim)] else {
                    return Outcome::NoSuite;
                };
                let started = Instant::now();
                let limit = Stop {
                    deadline: Some(started + deadline),
                    cancelled: &cancelled,
                };
                let outcome = match suite.score_within(&alg.program, &limit) {
                    Ok(score) => Outcome::Scored(score),
                    Err(_) if stop.is_cancelled() => Outcome::Cancelled,
                    Err(_) => Outcome::OverDeadline,
                };
                if let Some(p) = &self.prom {
                    p.validator_eval_seconds
                        .with_label_values(&[&self.state.name])
                        .observe(started.elapsed().as_secs_f64());
                }
                outcome
            })
            .collect()
    }

    /// Blacklist the cheaters, then give the batch's one SOTA vote. `judged` holds this
    /// poll's judgements and the deferred votes now due. A vote the relay could not take
    /// is deferred (its result leaves the seen-set until the vote is settled); every
    /// other judged result ends up seen.
    fn vote(&mut self, judged: Vec<Judged>, sota: f64) -> Result<(), ValidatorError> {
        let candidates: Vec<(usize, Candidate)> = judged
            .iter()
            .enumerate()
            .filter(|(_, j)| j.verdict == Verdict::Passed)
            .map(|(i, j)| {
                (
                    i,
                    Candidate {
                        miner_hotkey: j.sub.miner_hotkey.clone(),
                        validator_score: j.score,
                        signed_at: j.sub.signed_at(),
                        result_id: j.sub.id.clone(),
                    },
                )
            })
            .collect();
        let plain: Vec<Candidate> = candidates.iter().map(|(_, c)| c.clone()).collect();
        let chosen = select_vote(&plain, sota, self.backing.as_deref()).map(|k| candidates[k].0);

        let mut pushed = None;
        let mut retry = vec![false; judged.len()];
        if let Some(i) = chosen {
            let j = &judged[i];
            let vote = SotaVote {
                miner_hotkey: j.sub.miner_hotkey.clone(),
                score: j.score,
                seen_block: rules::seen_block(
                    self.cfg.seen_block_mode,
                    self.cfg.seen_block,
                    clock::now_s(),
                ),
                result_id: Some(j.sub.id.clone()).filter(|id| !id.is_empty()),
            };
            let answer = VoteOutcome::of_vote(self.client.vote(&vote), j.score);
            self.state.count(|c| {
                c.votes_tried += 1;
                if answer.accepted() {
                    c.votes_ok += 1;
                }
                if answer.status == "late" {
                    c.votes_late += 1;
                }
                if answer.status == "finalized" {
                    c.finalized += 1;
                }
            });
            if answer.accepted() {
                self.backing = Some(j.sub.miner_hotkey.clone());
                pushed = Some(i);
            }
            if answer.status == "finalized" {
                let new_sota = answer.current_sota.unwrap_or(j.score);
                self.state.set_sota(new_sota);
                self.metrics.event(
                    "sota_update",
                    json!({
                        "old_sota": sota,
                        "new_sota": new_sota,
                        "improvement": new_sota - sota,
                        "triggering_miner": short_hotkey(&j.sub.miner_hotkey),
                    }),
                );
            }
            retry[i] = answer.retry();
            self.record("sota", j, answer);
        }

        for (i, j) in judged.iter().enumerate() {
            if j.verdict == Verdict::Blacklisted {
                tracing::warn!(validator = %self.state.name, miner = %j.sub.miner_hotkey,
                    claimed = j.sub.claimed, validator_score = j.score, "claimed score is off; voting to blacklist");
                let answer = VoteOutcome::of_blacklist(self.client.blacklist(&j.sub.miner_hotkey));
                retry[i] = answer.retry();
                self.record("blacklist", j, answer);
            }
            if j.attempts > 0 {
                continue; // its judgement was written when it was made
            }
            let delta = if j.score > sota { j.score - sota } else { 0.0 };
            self.metrics.event(
                "miner_result",
                json!({
                    "miner_hotkey": short_hotkey(&j.sub.miner_hotkey),
                    "miner_score": j.sub.claimed,
                    "validator_score": finite_or_null(j.score),
                    "sota_threshold": sota,
                    "delta_improvement": finite_or_null(delta),
                    "result_status": j.verdict.as_str(),
                    "pushed_sota": pushed == Some(i),
                }),
            );
        }

        // Every deferral is kept even when our own store refuses the seen-set's writes
        // (its disk is low too): the first refusal is reported after the loop.
        let now = Instant::now();
        let mut written = Ok(());
        for (j, retry) in judged.into_iter().zip(retry) {
            if retry {
                written = written.and(self.seen.remove(&j.key));
                let attempts = j.attempts + 1;
                let due = now + backoff(self.cfg.poll_interval_s, attempts);
                self.deferred.push(Deferred {
                    judged: Judged { attempts, ..j },
                    due,
                });
            } else {
                written = written.and(self.seen.insert(&j.key));
            }
        }
        written.and_then(|()| self.seen.commit())?;
        Ok(())
    }

    fn record(&self, kind: &'static str, j: &Judged, answer: VoteOutcome) {
        let (miner, score) = (&j.sub.miner_hotkey, j.score);
        tracing::info!(validator = %self.state.name, kind, miner, score, status = %answer.status,
            detail = %answer.detail, attempt = j.attempts + 1, "vote sent");
        self.state.push_vote(VoteRecord {
            ts: clock::now_iso(SecondsFormat::Millis),
            kind,
            miner_hotkey: miner.to_string(),
            score,
            status: answer.status,
            detail: answer.detail,
        });
    }

    /// The would-be weights follow the relay's newest SOTA event; a new event also
    /// becomes the miner we back (the relay dropped every pending vote when finalizing).
    fn refresh_weights(&mut self) {
        let latest = self.client.sota_events(1);
        match latest.map(|events| events.into_iter().next().map(|e| e.miner_hotkey)) {
            Ok(winner) => {
                if winner.is_some() && winner != self.latest_winner {
                    self.backing = winner.clone();
                }
                self.state
                    .set_weights(rules::weights(&self.cfg.burn_hotkey, winner.as_deref()));
                self.latest_winner = winner;
            }
            Err(e) => {
                tracing::debug!(validator = %self.state.name, error = %e, "SOTA events unavailable")
            }
        }
    }
}

/// JSON has no infinities: a non-finite score is written as `null`.
fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::relay_miner_headers;
    use crate::store::Durability;

    const LINEAR: &str = "# setup\nv1 = gaussian(0.0, 0.1)\n# predict\ns0 = dot(v0, v1)\n";

    fn validator(dir: &std::path::Path) -> ValidatorLoop {
        let cfg = ValidatorConfig {
            task_count: 2,
            ..ValidatorConfig::default()
        };
        let store = Store::open(&dir.join("store"), Durability::Sync).unwrap();
        let suites = Arc::new(Suites::from_config(&cfg, dir).unwrap());
        // Screening never talks to the relay: an unroutable URL proves it.
        ValidatorLoop::new(
            "validator-t".into(),
            Keypair::generate(),
            "http://127.0.0.1:9",
            cfg,
            &store,
            suites,
            None,
        )
        .unwrap()
    }

    fn result(miner: &Keypair, dsl: &str) -> serde_json::Value {
        let h = relay_miner_headers(miner, 1_700_000_000);
        let alg = json!({"task_type": "scalar_linear", "input_dim": 4, "algorithm_dsl": dsl});
        json!({"id": "r", "miner_hotkey": miner.ss58(), "timestamp_message": h.timestamp,
               "signature": h.signature, "score": 0.5, "algorithm_result": alg.to_string()})
    }

    #[test]
    fn screening_counts_forgeries_and_bad_programs_and_passes_only_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = validator(dir.path());
        let (honest, forger, sloppy, other) = (
            Keypair::generate(),
            Keypair::generate(),
            Keypair::generate(),
            Keypair::generate(),
        );
        let good = result(&honest, LINEAR);
        // Signed by someone else than the claimed miner.
        let mut forged = result(&forger, LINEAR);
        forged["signature"] = json!(other.sign_hex(forged["timestamp_message"].as_str().unwrap()));
        // A valid signature, but over another message than the one presented.
        let mut replayed = result(&other, LINEAR);
        replayed["timestamp_message"] = json!("auth:1700000001");
        let unparsable = result(&sloppy, "s0 = frobnicate(v0)");
        let mut missing = result(&Keypair::generate(), LINEAR);
        missing.as_object_mut().unwrap().remove("score");

        // Over the budget: vector_dim must be the task's input_dim (4 here).
        let wide = result(
            &Keypair::generate(),
            &format!("# meta: vector_dim=1024\n{LINEAR}"),
        );

        let batch = [good, forged, replayed, unparsable, missing, wide];
        v.screen(&batch).unwrap();
        assert_eq!(v.queue.len(), 1);
        assert_eq!(v.queue[0].pending.sub.miner_hotkey, honest.ss58());
        let c = v.state.counters();
        assert_eq!(
            (c.new, c.sig_fail, c.parse_fail, c.invalid, c.unique_seen),
            (6, 2, 1, 2, 5),
            "rejected results are seen at once, the queued one when judged"
        );
        // A second look skips the rejected ones and keeps the queued one, once.
        v.screen(&batch).unwrap();
        assert_eq!(v.queue.len(), 1);
        assert_eq!((v.state.counters().dupe, v.state.counters().new), (5, 6));
        // A result the relay no longer lists leaves the queue.
        v.screen(&batch[1..]).unwrap();
        assert!(v.queue.is_empty());
    }

    #[test]
    fn the_queue_is_judged_newest_first_within_a_slice_and_shutdown_leaves_it_unseen() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = validator(dir.path());
        let miners: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
        let batch: Vec<_> = miners.iter().map(|m| result(m, LINEAR)).collect();
        v.screen(&batch).unwrap();
        assert_eq!(v.queue.len(), 3);

        // Shutdown before the round: nothing judged, nothing marked seen.
        let stopped = CancellationToken::new();
        stopped.cancel();
        assert!(v.evaluate(0.0, &stopped).unwrap().is_empty());
        assert_eq!((v.queue.len(), v.state.counters().unique_seen), (3, 0));

        let judged = v.evaluate(0.0, &CancellationToken::new()).unwrap();
        let order: Vec<String> = judged.iter().map(|j| j.sub.miner_hotkey.clone()).collect();
        let want: Vec<String> = miners.iter().map(|m| m.ss58()).collect();
        assert_eq!(order, want, "in the relay's (newest-first) order");
        assert!(v.queue.is_empty());
        assert_eq!(v.state.counters().unique_seen, 3);
    }

    /// The relay is unreachable (nothing listens on port 9): the vote is deferred, its
    /// result leaves the seen-set, later polls skip it until the wait is over, then vote
    /// again with the same score (no re-evaluation) and wait longer; once the relay no
    /// longer lists the result, the deferred vote goes.
    #[test]
    fn a_vote_the_relay_could_not_take_is_deferred_not_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = validator(dir.path());
        let batch = [result(&Keypair::generate(), LINEAR)];
        let key = rules::seen_key(&batch[0]);
        v.screen(&batch).unwrap();
        let judged = v.evaluate(0.0, &CancellationToken::new()).unwrap();
        let score = judged[0].score;
        v.vote(judged, 0.0).unwrap();
        assert_eq!(v.deferred.len(), 1);
        assert!(
            !v.seen.contains(&key).unwrap(),
            "out of the seen-set while deferred"
        );
        let vote = &v.state.view().recent_votes[0];
        assert_eq!(vote.status, "retrying", "{vote:?}");

        // Not due yet: screening neither queues nor drops it, and nothing is voted.
        v.screen(&batch).unwrap();
        assert!(v.queue.is_empty());
        assert!(v.take_due(0.0).is_empty());
        assert_eq!(v.deferred.len(), 1);

        // Due: voted again with the judged score, and deferred with a longer wait.
        let first_wait = v.deferred[0].due;
        v.deferred[0].due = Instant::now();
        let due = v.take_due(0.0);
        assert_eq!((due.len(), due[0].score, due[0].attempts), (1, score, 1));
        v.vote(due, 0.0).unwrap();
        assert_eq!(v.deferred[0].judged.attempts, 2);
        assert!(v.deferred[0].due > first_wait);
        assert_eq!(
            v.state.counters().passed + v.state.counters().blacklisted,
            1,
            "judged once"
        );

        // The relay no longer lists it (the miner replaced it): nothing left to vote for.
        v.screen(&[]).unwrap();
        assert!(v.deferred.is_empty());
    }
}
