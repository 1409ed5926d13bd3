//! The validator's decisions as pure functions over plain data (validator.md §1, §3):
//! which fields a result must carry, the blacklist test, which result gets the batch's
//! vote, the poll backoff, the vote's `seen_block`, the would-be weights and the stats
//! line. The loop ([`super::run`]) only gathers inputs and performs the effects.

use crate::config::SeenBlockMode;
use serde::Serialize;
use std::time::Duration;

/// Scores within this distance of the best are a tie (validator.md §1 step 4).
pub const TIE_EPSILON: f64 = 1e-9;
/// Upper bound of the poll backoff.
pub const MAX_BACKOFF_S: f64 = 300.0;
/// Shares of the would-be weights: the burn hotkey and the latest SOTA winner.
pub const BURN_SHARE: f64 = 0.9;
pub const WINNER_SHARE: f64 = 0.1;

/// The fields of a relay result the validator needs, extracted from the wire JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    pub id: String,
    pub miner_hotkey: String,
    /// The message the miner signed (`auth:<unix seconds>`).
    pub timestamp_message: String,
    pub signature: String,
    /// The score the miner claimed.
    pub claimed: f64,
    /// `algorithm_result`: the JSON text of an object.
    pub algorithm_result: String,
}

impl Submission {
    /// When the miner signed it (unix seconds), for the "oldest submission" tie rule;
    /// `u64::MAX` when the message carries no number, so such results rank last.
    pub fn signed_at(&self) -> u64 {
        let text = self.timestamp_message.trim();
        text.strip_prefix("auth:")
            .unwrap_or(text)
            .parse()
            .unwrap_or(u64::MAX)
    }
}

/// The seen-set key of a result: `(miner_hotkey, timestamp_message)`. A miner's new
/// submission replaces its old one at the relay but is signed at a new time, so it gets
/// a new key; the same result polled again keeps its key.
pub fn seen_key(raw: &serde_json::Value) -> Vec<u8> {
    let field = |name: &str| raw.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let mut key = field("miner_hotkey").as_bytes().to_vec();
    key.push(b'\n');
    key.extend_from_slice(field("timestamp_message").as_bytes());
    key
}

/// Extract the fields of one result; `Err` names what is missing (counted `invalid`).
/// `algorithm_result` is a string holding JSON on the wire; an object is accepted too.
pub fn extract(raw: &serde_json::Value) -> Result<Submission, String> {
    let text = |name: &str| -> Result<String, String> {
        match raw.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Null) | None => Err(format!("missing {name}")),
            Some(_) => Err(format!("{name} is not a non-empty string")),
        }
    };
    let miner_hotkey = text("miner_hotkey")?;
    let signature = text("signature")?;
    let timestamp_message = text("timestamp_message")?;
    let claimed = match raw.get("score") {
        Some(v) if v.is_number() => v.as_f64().filter(|s| s.is_finite()),
        Some(serde_json::Value::Null) | None => return Err("missing score".into()),
        Some(_) => None,
    }
    .ok_or("score is not a finite number")?;
    let algorithm_result = match raw.get("algorithm_result") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v @ serde_json::Value::Object(_)) => v.to_string(),
        Some(serde_json::Value::Null) | None => return Err("missing algorithm_result".into()),
        Some(_) => return Err("algorithm_result is neither a JSON string nor an object".into()),
    };
    let id = match raw.get("id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    Ok(Submission {
        id,
        miner_hotkey,
        timestamp_message,
        signature,
        claimed,
        algorithm_result,
    })
}

/// What a re-evaluated result amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The claim is off by more than the cutoff: vote to blacklist the miner.
    Blacklisted,
    /// Honest, but not above the SOTA.
    FailedSota,
    /// Honest and at or above the SOTA: a vote candidate.
    Passed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Blacklisted => "blacklisted",
            Verdict::FailedSota => "failed_sota",
            Verdict::Passed => "passed",
        }
    }
}

/// Judge one result. The cheat test comes first, so a miner that lies below the SOTA is
/// caught too; a non-finite validator score never counts as agreeing with a claim.
pub fn judge(validator_score: f64, claimed: f64, sota: f64, cutoff: f64) -> Verdict {
    let diff = (validator_score - claimed).abs();
    if diff.is_nan() || diff > cutoff {
        Verdict::Blacklisted
    } else if validator_score < sota {
        Verdict::FailedSota
    } else {
        Verdict::Passed
    }
}

/// A passed result competing for the batch's vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub miner_hotkey: String,
    pub validator_score: f64,
    /// [`Submission::signed_at`].
    pub signed_at: u64,
    pub result_id: String,
}

/// Index of the candidate that gets the batch's one vote: the best validator score
/// strictly above `sota`. Candidates within [`TIE_EPSILON`] of the best tie: the miner
/// this validator currently backs (`current_winner`: its pending vote, else the latest
/// SOTA winner) keeps it,
/// else the oldest submission (then the smallest result id, so the choice never depends
/// on the relay's ordering).
pub fn select_vote(
    candidates: &[Candidate],
    sota: f64,
    current_winner: Option<&str>,
) -> Option<usize> {
    let above = || {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.validator_score.is_finite() && c.validator_score > sota)
    };
    let best = above()
        .map(|(_, c)| c.validator_score)
        .fold(f64::NEG_INFINITY, f64::max);
    let tied = || above().filter(|(_, c)| c.validator_score >= best - TIE_EPSILON);
    if let Some(w) = current_winner {
        if let Some((i, _)) = tied().find(|(_, c)| c.miner_hotkey == w) {
            return Some(i);
        }
    }
    tied()
        .min_by(|(_, a), (_, b)| (a.signed_at, &a.result_id).cmp(&(b.signed_at, &b.result_id)))
        .map(|(i, _)| i)
}

/// Wait before the next poll after `failures` consecutive relay errors:
/// `min(interval·2^failures, 300 s)` (just `interval` when the last poll worked).
pub fn backoff(interval_s: f64, failures: u32) -> Duration {
    let factor = 2f64.powi(failures.min(63) as i32);
    Duration::from_secs_f64((interval_s * factor).clamp(0.0, MAX_BACKOFF_S))
}

/// Whether a vote (SOTA or blacklist) that failed with `status` — `None` when no
/// answer came: the relay was unreachable or the request timed out — is sent again from
/// a later poll. The relay could not take it now: a 5xx (507 while its disk is below the
/// watermark, 503 while its store has failed and it restarts, a 500), 408 or 429. Any
/// other refusal is the relay's verdict on the vote itself, final (a late vote included).
/// A vote waits [`backoff`]`(poll interval, failures so far)` before each new attempt.
pub fn retry_vote(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s >= 500 || s == 408 || s == 429,
    }
}

/// The `seen_block` of a vote: unix seconds, or the configured constant.
pub fn seen_block(mode: SeenBlockMode, fixed: u64, unix_now: u64) -> u64 {
    match mode {
        SeenBlockMode::Time => unix_now,
        SeenBlockMode::Fixed => fixed,
    }
}

/// The chain weights a validator would set for the latest SOTA event (validator.md §3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Weights {
    pub burn_hotkey: String,
    pub burn: f64,
    pub winner: Option<String>,
    pub winner_weight: f64,
}

/// [`BURN_SHARE`] to the burn hotkey and [`WINNER_SHARE`] to the latest winner; everything
/// burns while there is no winner (or the winner is the burn hotkey itself).
pub fn weights(burn_hotkey: &str, latest_winner: Option<&str>) -> Weights {
    match latest_winner.filter(|w| *w != burn_hotkey) {
        Some(w) => Weights {
            burn_hotkey: burn_hotkey.to_string(),
            burn: BURN_SHARE,
            winner: Some(w.to_string()),
            winner_weight: WINNER_SHARE,
        },
        None => Weights {
            burn_hotkey: burn_hotkey.to_string(),
            burn: 1.0,
            winner: latest_winner.map(str::to_string),
            winner_weight: 0.0,
        },
    }
}

/// What a validator has counted since it started (validator.md §2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub polls: u64,
    pub fetched: u64,
    pub new: u64,
    pub dupe: u64,
    pub invalid: u64,
    pub sig_fail: u64,
    pub parse_fail: u64,
    pub eval_err: u64,
    pub failed_sota: u64,
    pub blacklisted: u64,
    pub passed: u64,
    /// SOTA votes the relay accepted / attempted (blacklist votes are `blacklisted`).
    pub votes_ok: u64,
    pub votes_tried: u64,
    /// SOTA votes refused only because the SOTA had already reached the voted score
    /// ([`vote_was_late`]): another validator's vote finalized it first.
    pub votes_late: u64,
    /// Votes of ours that finalized an event.
    pub finalized: u64,
    /// Size of the persisted seen-set.
    pub unique_seen: u64,
}

impl Counters {
    pub fn record(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Blacklisted => self.blacklisted += 1,
            Verdict::FailedSota => self.failed_sota += 1,
            Verdict::Passed => self.passed += 1,
        }
    }
}

/// Whether the relay's refusal of a SOTA vote for `score` only says that the vote came
/// late: the reference's `Score <score> is not above current SOTA <current>` with
/// `current ≥ score`, as when another validator's vote finalized the same candidate first
/// (with two validators and consensus 1, the second vote always does).
pub fn vote_was_late(detail: &str, score: f64) -> bool {
    detail
        .strip_prefix("Score ")
        .and_then(|rest| rest.split_once(" is not above current SOTA "))
        .and_then(|(_, current)| current.trim().parse::<f64>().ok())
        .is_some_and(|current| current >= score)
}

/// The periodic stats line.
pub fn stats_line(c: &Counters, sota: f64) -> String {
    format!(
        "polls={} fetched={} new={} dupe={} invalid={} sig_fail={} parse_fail={} eval_err={} \
         failed_sota={} blacklisted={} passed={} votes={}/{} votes_late={} finalized={} unique_seen={} sota={:.6}",
        c.polls,
        c.fetched,
        c.new,
        c.dupe,
        c.invalid,
        c.sig_fail,
        c.parse_fail,
        c.eval_err,
        c.failed_sota,
        c.blacklisted,
        c.passed,
        c.votes_ok,
        c.votes_tried,
        c.votes_late,
        c.finalized,
        c.unique_seen,
        sota
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vote_refused_for_a_sota_already_reached_is_late() {
        assert!(vote_was_late(
            "Score 0.9999997 is not above current SOTA 0.9999997",
            0.9999997
        ));
        assert!(vote_was_late(
            "Score 0.9 is not above current SOTA 0.915",
            0.9
        ));
        // A different refusal, or a SOTA below the vote (not what the relay says), is not.
        assert!(!vote_was_late("seen_block must be > 0", 0.9));
        assert!(!vote_was_late(
            "Score 0.9 is not above current SOTA 0.8",
            0.9
        ));
        assert!(!vote_was_late("Score 0.9 is not above current SOTA x", 0.9));
    }

    fn cand(miner: &str, score: f64, signed_at: u64, id: &str) -> Candidate {
        Candidate {
            miner_hotkey: miner.into(),
            validator_score: score,
            signed_at,
            result_id: id.into(),
        }
    }

    #[test]
    fn vote_goes_to_the_best_strictly_above_sota() {
        let c = [
            cand("A", 0.6, 10, "a"),
            cand("B", 0.8, 20, "b"),
            cand("C", 0.7, 5, "c"),
        ];
        assert_eq!(select_vote(&c, 0.5, None), Some(1));
        // Equal to the SOTA is not above it.
        assert_eq!(select_vote(&c, 0.8, None), None);
        assert_eq!(select_vote(&[], 0.0, None), None);
        // Non-finite scores never win.
        let c = [
            cand("A", f64::INFINITY, 1, "a"),
            cand("B", f64::NAN, 1, "b"),
            cand("C", 0.6, 1, "c"),
        ];
        assert_eq!(select_vote(&c, 0.5, None), Some(2));
    }

    #[test]
    fn ties_keep_the_current_winner_else_the_oldest() {
        let c = [
            cand("A", 0.9, 30, "a"),
            cand("B", 0.9 + 5e-10, 20, "b"),
            cand("C", 0.9 - 4e-10, 10, "c"),
            cand("D", 0.8, 1, "d"),
        ];
        // Oldest of the tied (C), not the numerically best (B).
        assert_eq!(select_vote(&c, 0.5, None), Some(2));
        // The miner we back keeps the vote while tied.
        assert_eq!(select_vote(&c, 0.5, Some("A")), Some(0));
        // ... but not when it is clearly behind.
        assert_eq!(select_vote(&c, 0.5, Some("D")), Some(2));
        // Same signing time: the smaller result id, whatever the input order.
        let c = [cand("X", 0.9, 7, "zz"), cand("Y", 0.9, 7, "aa")];
        assert_eq!(select_vote(&c, 0.0, None), Some(1));
        // Outside the epsilon, the better score wins even if newer.
        let c = [cand("X", 0.9, 1, "x"), cand("Y", 0.9 + 1e-8, 9, "y")];
        assert_eq!(select_vote(&c, 0.0, None), Some(1));
    }

    #[test]
    fn blacklist_is_tested_before_sota() {
        // A cheater below the SOTA is blacklisted, not merely failed.
        assert_eq!(judge(0.2, 0.45, 0.5, 0.1), Verdict::Blacklisted);
        assert_eq!(judge(0.9, 0.7, 0.5, 0.1), Verdict::Blacklisted);
        assert_eq!(judge(0.45, 0.5, 0.5, 0.1), Verdict::FailedSota);
        assert_eq!(judge(0.5, 0.5, 0.5, 0.1), Verdict::Passed);
        assert_eq!(judge(0.55, 0.6, 0.5, 0.1), Verdict::Passed);
        // Exactly at the cutoff is honest (the rule is `> cutoff`).
        assert_eq!(judge(0.75, 0.5, 0.5, 0.25), Verdict::Passed);
        assert_eq!(judge(f64::NAN, 0.6, 0.5, 0.1), Verdict::Blacklisted);
        assert_eq!(
            judge(f64::NEG_INFINITY, 0.6, 0.0, 0.1),
            Verdict::Blacklisted
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(15.0, 0), Duration::from_secs(15));
        assert_eq!(backoff(15.0, 1), Duration::from_secs(30));
        assert_eq!(backoff(15.0, 4), Duration::from_secs(240));
        assert_eq!(backoff(15.0, 5), Duration::from_secs(300));
        assert_eq!(backoff(2.0, 1000), Duration::from_secs(300));
        assert_eq!(backoff(0.5, 2), Duration::from_secs(2));
    }

    #[test]
    fn votes_the_relay_could_not_take_are_retried_and_refusals_are_final() {
        for transient in [
            None,
            Some(500),
            Some(502),
            Some(503),
            Some(507),
            Some(408),
            Some(429),
        ] {
            assert!(retry_vote(transient), "{transient:?}");
        }
        for refused in [
            Some(400),
            Some(401),
            Some(403),
            Some(404),
            Some(413),
            Some(422),
        ] {
            assert!(!retry_vote(refused), "{refused:?}");
        }
        // The waits between attempts are the poll backoff's.
        let waits: Vec<u64> = (1..=10).map(|n| backoff(2.0, n).as_secs()).collect();
        assert_eq!(waits, [4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn seen_block_modes() {
        assert_eq!(
            seen_block(SeenBlockMode::Time, 1, 1_700_000_000),
            1_700_000_000
        );
        assert_eq!(seen_block(SeenBlockMode::Fixed, 7, 1_700_000_000), 7);
    }

    #[test]
    fn weights_split_between_burn_and_winner() {
        let w = weights("BURN", Some("M1"));
        assert_eq!(
            (w.burn, w.winner.as_deref(), w.winner_weight),
            (0.9, Some("M1"), 0.1)
        );
        assert!((w.burn + w.winner_weight - 1.0).abs() < 1e-12);
        let w = weights("BURN", None);
        assert_eq!((w.burn, w.winner, w.winner_weight), (1.0, None, 0.0));
        let w = weights("BURN", Some("BURN"));
        assert_eq!((w.burn, w.winner_weight), (1.0, 0.0));
    }

    #[test]
    fn extraction_names_the_missing_field() {
        let good = json!({"id": "abc", "miner_hotkey": "5M", "timestamp_message": "auth:17",
            "signature": "ff", "score": 0.5, "algorithm_result": "{\"algorithm_dsl\":\"\"}"});
        let s = extract(&good).unwrap();
        assert_eq!((s.claimed, s.signed_at(), s.id.as_str()), (0.5, 17, "abc"));
        for (field, want) in [
            ("signature", "missing signature"),
            ("score", "missing score"),
            ("algorithm_result", "missing algorithm_result"),
            ("timestamp_message", "missing timestamp_message"),
        ] {
            let mut bad = good.clone();
            bad.as_object_mut().unwrap().remove(field);
            assert_eq!(extract(&bad).unwrap_err(), want);
            bad[field] = serde_json::Value::Null;
            assert_eq!(extract(&bad).unwrap_err(), want);
        }
        let mut bad = good.clone();
        bad["score"] = json!("0.5");
        assert!(extract(&bad).is_err());
        let mut obj = good.clone();
        obj["algorithm_result"] = json!({"algorithm_dsl": "x"});
        assert_eq!(
            extract(&obj).unwrap().algorithm_result,
            r#"{"algorithm_dsl":"x"}"#
        );
    }

    #[test]
    fn seen_key_is_hotkey_and_message() {
        let a = json!({"miner_hotkey": "5M", "timestamp_message": "auth:1", "id": "x"});
        let b = json!({"miner_hotkey": "5M", "timestamp_message": "auth:2", "id": "x"});
        assert_ne!(seen_key(&a), seen_key(&b));
        assert_eq!(seen_key(&a), b"5M\nauth:1".to_vec());
        assert_eq!(seen_key(&json!({})), b"\n".to_vec());
    }

    #[test]
    fn stats_line_carries_every_counter() {
        let c = Counters {
            polls: 3,
            votes_ok: 1,
            votes_tried: 2,
            ..Counters::default()
        };
        let line = stats_line(&c, 0.25);
        for part in [
            "polls=3 ",
            "votes=1/2 ",
            "sig_fail=0 ",
            "unique_seen=0 ",
            "sota=0.250000",
        ] {
            assert!(line.contains(part), "{line}");
        }
    }
}
