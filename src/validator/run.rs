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
use std::collections::HashMap;
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
    /// SOTA already reached its score ([`rules::vote_was_late`]), or `rejected` when the
    /// relay refused otherwise or failed. The detail is the relay's answer.
    status: String,
    detail: String,
    /// The SOTA after the vote (SOTA votes only).
    current_sota: Option<f64>,
}

impl VoteOutcome {
    fn rejected(e: ClientError) -> Self {
        VoteOutcome {
            status: "rejected".into(),
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
        !matches!(self.status.as_str(), "rejected" | "late")
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
        let judged = judged?;
        self.vote(judged, sota);
        self.refresh_weights();
        Ok(())
    }

    /// Rebuild the queue from a fetched list: results already queued keep their place
    /// in the relay's order, seen ones are skipped, new ones are checked (fields,
    /// signature, program, budget). A result failing a check is marked seen (and
    /// committed) at once; one passing waits in the queue, unseen until judged. Queued
    /// results the relay no longer lists are dropped.
    fn screen(&mut self, raw: &[serde_json::Value]) -> Result<(), ValidatorError> {
        let mut queued: HashMap<Vec<u8>, Pending> = std::mem::take(&mut self.queue)
            .into_iter()
            .map(|q| (q.key, q.pending))
            .collect();
        for item in raw {
            let key = rules::seen_key(item);
            if let Some(pending) = queued.remove(&key) {
                self.queue.push(Queued { key, pending });
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
    ) -> Result<Vec<(Pending, f64, Verdict)>, ValidatorError> {
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
                    Outcome::Scored(score) => scored.push((q.pending, score)),
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
            .map(|(p, score)| {
                let verdict = judge(score, p.sub.claimed, sota, self.cfg.blacklist_cutoff);
                self.state.count(|c| c.record(verdict));
                (p, score, verdict)
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

    /// Blacklist the cheaters, then give the batch's one SOTA vote.
    fn vote(&mut self, judged: Vec<(Pending, f64, Verdict)>, sota: f64) {
        let candidates: Vec<(usize, Candidate)> = judged
            .iter()
            .enumerate()
            .filter(|(_, (_, _, v))| *v == Verdict::Passed)
            .map(|(i, (p, score, _))| {
                (
                    i,
                    Candidate {
                        miner_hotkey: p.sub.miner_hotkey.clone(),
                        validator_score: *score,
                        signed_at: p.sub.signed_at(),
                        result_id: p.sub.id.clone(),
                    },
                )
            })
            .collect();
        let plain: Vec<Candidate> = candidates.iter().map(|(_, c)| c.clone()).collect();
        let chosen = select_vote(&plain, sota, self.backing.as_deref()).map(|k| candidates[k].0);

        let mut pushed = None;
        if let Some(i) = chosen {
            let (p, score, _) = &judged[i];
            let vote = SotaVote {
                miner_hotkey: p.sub.miner_hotkey.clone(),
                score: *score,
                seen_block: rules::seen_block(
                    self.cfg.seen_block_mode,
                    self.cfg.seen_block,
                    clock::now_s(),
                ),
                result_id: Some(p.sub.id.clone()).filter(|id| !id.is_empty()),
            };
            let answer = VoteOutcome::of_vote(self.client.vote(&vote), *score);
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
                self.backing = Some(p.sub.miner_hotkey.clone());
                pushed = Some(i);
            }
            if answer.status == "finalized" {
                let new_sota = answer.current_sota.unwrap_or(*score);
                self.state.set_sota(new_sota);
                self.metrics.event(
                    "sota_update",
                    json!({
                        "old_sota": sota,
                        "new_sota": new_sota,
                        "improvement": new_sota - sota,
                        "triggering_miner": short_hotkey(&p.sub.miner_hotkey),
                    }),
                );
            }
            self.record("sota", &p.sub.miner_hotkey, *score, answer);
        }

        for (i, (p, score, verdict)) in judged.iter().enumerate() {
            if *verdict == Verdict::Blacklisted {
                tracing::warn!(validator = %self.state.name, miner = %p.sub.miner_hotkey,
                    claimed = p.sub.claimed, validator_score = score, "claimed score is off; voting to blacklist");
                let answer = VoteOutcome::of_blacklist(self.client.blacklist(&p.sub.miner_hotkey));
                self.record("blacklist", &p.sub.miner_hotkey, *score, answer);
            }
            let delta = if *score > sota { score - sota } else { 0.0 };
            self.metrics.event(
                "miner_result",
                json!({
                    "miner_hotkey": short_hotkey(&p.sub.miner_hotkey),
                    "miner_score": p.sub.claimed,
                    "validator_score": finite_or_null(*score),
                    "sota_threshold": sota,
                    "delta_improvement": finite_or_null(delta),
                    "result_status": verdict.as_str(),
                    "pushed_sota": pushed == Some(i),
                }),
            );
        }
    }

    fn record(&self, kind: &'static str, miner: &str, score: f64, answer: VoteOutcome) {
        tracing::info!(validator = %self.state.name, kind, miner, score, status = %answer.status,
            detail = %answer.detail, "vote sent");
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
        let order: Vec<String> = judged
            .iter()
            .map(|(p, _, _)| p.sub.miner_hotkey.clone())
            .collect();
        let want: Vec<String> = miners.iter().map(|m| m.ss58()).collect();
        assert_eq!(order, want, "in the relay's (newest-first) order");
        assert!(v.queue.is_empty());
        assert_eq!(v.state.counters().unique_seen, 3);
    }
}
