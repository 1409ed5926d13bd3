//! The validator loop (validator.md §1): poll the relay, judge every new result, vote.
//! Independent of the daemon — `bitsota validate` runs the same loop — and synchronous:
//! it runs on its own (blocking) thread, and re-evaluations run on rayon.

use super::client::{RelayClient, SotaVote, VoteAnswer};
use super::metrics::{short_hotkey, MetricsLog};
use super::rules::{self, backoff, judge, select_vote, stats_line, Candidate, Submission, Verdict};
use super::seen::{SeenSet, SEEN_CAPACITY};
use super::state::{ValidatorState, VoteRecord};
use super::suites::{Algorithm, PreparedSuite, Suites};
use super::ValidatorError;
use crate::config::ValidatorConfig;
use crate::keys::{verify_hex, Keypair};
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
}

/// A new result that passed the signature and parse checks.
struct Pending {
    sub: Submission,
    alg: Algorithm,
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
        })
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
            match self.poll_once() {
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
            let until = Instant::now() + backoff(self.cfg.poll_interval_s, failures);
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

    /// One poll: fetch, judge every new result, vote. `Err` when the relay's result list
    /// could not be fetched or the seen-set not written (the caller backs off).
    pub fn poll_once(&mut self) -> Result<(), ValidatorError> {
        self.state.count(|c| c.polls += 1);
        let raw = self.client.results(self.cfg.limit)?;
        let sota = self.client.sota_threshold().unwrap_or_else(|e| {
            tracing::warn!(validator = %self.state.name, error = %e, "SOTA threshold unavailable; using 0");
            0.0
        });
        self.state.set_sota(sota);
        self.state.count(|c| c.fetched += raw.len() as u64);

        let pending = self.screen(&raw)?;
        let judged = self.evaluate(pending, sota);
        self.vote(judged, sota);
        self.refresh_weights();
        Ok(())
    }

    /// Skip seen results, then check fields, signature and program of the new ones.
    /// Every new result is marked seen (and committed) before any vote is sent, so a
    /// restart never votes for it again.
    fn screen(&mut self, raw: &[serde_json::Value]) -> Result<Vec<Pending>, ValidatorError> {
        let name = &self.state.name;
        let mut pending = Vec::new();
        for item in raw {
            let key = rules::seen_key(item);
            if self.seen.contains(&key)? {
                self.state.count(|c| c.dupe += 1);
                continue;
            }
            self.seen.insert(&key)?;
            self.state.count(|c| c.new += 1);
            let sub = match rules::extract(item) {
                Ok(s) => s,
                Err(reason) => {
                    tracing::info!(validator = %name, %reason, "invalid result");
                    self.state.count(|c| c.invalid += 1);
                    continue;
                }
            };
            if let Err(e) = verify_hex(&sub.miner_hotkey, &sub.timestamp_message, &sub.signature) {
                tracing::info!(validator = %name, miner = %sub.miner_hotkey, error = %e, "miner signature rejected");
                self.state.count(|c| c.sig_fail += 1);
                continue;
            }
            match self.suites.parse(&sub.algorithm_result) {
                Ok(alg) => pending.push(Pending { sub, alg }),
                Err(reason) => {
                    tracing::info!(validator = %name, miner = %sub.miner_hotkey, %reason, "unparsable submission");
                    self.state.count(|c| c.parse_fail += 1);
                }
            }
        }
        self.seen.commit()?;
        let unique = self.seen.len() as u64;
        self.state.count(|c| c.unique_seen = unique);
        Ok(pending)
    }

    /// Re-evaluate the batch (in parallel across results, and across tasks inside each)
    /// and judge each result. Results whose suite cannot be prepared count `eval_err`.
    fn evaluate(&mut self, pending: Vec<Pending>, sota: f64) -> Vec<(Pending, f64, Verdict)> {
        let name = self.state.name.clone();
        // Suites are prepared here, on this plain thread, before the parallel section.
        let mut suites: HashMap<(TaskType, usize), Option<Arc<PreparedSuite>>> = HashMap::new();
        for p in &pending {
            let key = (p.alg.task_type, p.alg.input_dim);
            suites.entry(key).or_insert_with(|| match self.suites.prepared(key.0, key.1) {
                Ok(s) => Some(s),
                Err(reason) => {
                    tracing::warn!(validator = %name, task_type = %key.0, input_dim = key.1, %reason,
                        "cannot prepare the validator suite; results of this kind are not evaluated");
                    None
                }
            });
        }
        let mut ready = Vec::new();
        let mut failed = 0u64;
        for p in pending {
            match &suites[&(p.alg.task_type, p.alg.input_dim)] {
                Some(suite) => ready.push((p, suite.clone())),
                None => failed += 1,
            }
        }
        self.state.count(|c| c.eval_err += failed);
        if ready.is_empty() {
            return Vec::new();
        }
        let started = Instant::now();
        let scores: Vec<f64> = ready
            .par_iter()
            .map(|(p, suite)| suite.score(&p.alg.program))
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        let n = ready.len();
        tracing::info!(validator = %name, evaluations = n, seconds = elapsed, "batch re-evaluated");
        self.metrics.event(
            "evaluation_batch",
            json!({
                "num_evaluations": n,
                "total_evaluation_time_seconds": elapsed,
                "avg_time_per_eval_seconds": elapsed / n as f64,
                "sota_threshold": sota,
            }),
        );
        ready
            .into_iter()
            .zip(scores)
            .map(|((p, _), score)| {
                let verdict = judge(score, p.sub.claimed, sota, self.cfg.blacklist_cutoff);
                self.state.count(|c| c.record(verdict));
                (p, score, verdict)
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
                miner_hotkey: &p.sub.miner_hotkey,
                score: *score,
                seen_block: rules::seen_block(
                    self.cfg.seen_block_mode,
                    self.cfg.seen_block,
                    unix_now(),
                ),
                result_id: &p.sub.id,
            };
            let answer = self.client.vote(&vote);
            self.state.count(|c| {
                c.votes_tried += 1;
                if answer.accepted() {
                    c.votes_ok += 1;
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
                let answer = self.client.blacklist(&p.sub.miner_hotkey);
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

    fn record(&self, kind: &'static str, miner: &str, score: f64, answer: VoteAnswer) {
        tracing::info!(validator = %self.state.name, kind, miner, score, status = %answer.status,
            detail = %answer.detail, "vote sent");
        self.state.push_vote(VoteRecord {
            ts: now_iso(),
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
        match self.client.latest_winner() {
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

        let batch = [good, forged, replayed, unparsable, missing];
        let pending = v.screen(&batch).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sub.miner_hotkey, honest.ss58());
        let c = v.state.counters();
        assert_eq!(
            (c.new, c.sig_fail, c.parse_fail, c.invalid, c.unique_seen),
            (5, 2, 1, 1, 5)
        );
        // Seen: a second look skips them all, rejected ones included.
        assert!(v.screen(&batch).unwrap().is_empty());
        assert_eq!(v.state.counters().dupe, 5);
    }
}
