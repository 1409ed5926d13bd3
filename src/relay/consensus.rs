//! SOTA consensus rules (relay.md §4) as pure functions over plain data.
//!
//! The HTTP handler loads the pending votes under the vote lock, asks [`decide_vote`]
//! what to do, and applies the returned writes atomically; nothing here touches the store.

use serde::{Deserialize, Serialize};

/// `round_half_even(score × 1e18)` as i64: the exact integer validators agree on.
/// `None` when the score is not finite or does not fit in an i64.
pub fn score_int(score: f64) -> Option<i64> {
    let scaled = (score * 1e18).round_ties_even();
    // `i64::MAX as f64` is exactly 2^63: the first value that does not fit.
    let limit = i64::MAX as f64;
    (-limit..limit).contains(&scaled).then_some(scaled as i64)
}

/// `b` if it is a multiple of `m`, else the next multiple of `m` (`m` ≥ 1).
pub fn ceil_to_mod(b: u64, m: u64) -> u64 {
    let m = m.max(1);
    match b % m {
        0 => b,
        r => b.saturating_add(m - r),
    }
}

/// The consensus settings of `[relay]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub consensus_votes: u32,
    pub alignment_mod: u64,
    pub t2_blocks: u64,
    pub t2_intervals: Option<u64>,
    pub min_t2_intervals: u64,
    pub activation_delay_intervals: u64,
}

impl Params {
    pub fn from_config(c: &crate::config::RelayConfig) -> Params {
        Params {
            consensus_votes: c.consensus_votes,
            alignment_mod: c.alignment_mod.max(1),
            t2_blocks: c.t2_blocks,
            t2_intervals: c.t2_intervals,
            min_t2_intervals: c.min_t2_intervals,
            activation_delay_intervals: c.activation_delay_intervals,
        }
    }
}

/// The activation window of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_block: u64,
    pub end_block: u64,
    /// The effective window length (`intervals × mod`).
    pub t2_blocks: u64,
}

/// The window of an event decided at `decision_block`.
pub fn window(p: &Params, decision_block: u64) -> Window {
    let m = p.alignment_mod.max(1);
    let intervals = p
        .t2_intervals
        .unwrap_or_else(|| p.t2_blocks.div_ceil(m))
        .max(p.min_t2_intervals);
    let t2 = intervals.saturating_mul(m);
    let start = ceil_to_mod(decision_block, m)
        .saturating_add(p.activation_delay_intervals.saturating_mul(m));
    Window {
        start_block: start,
        end_block: start.saturating_add(t2),
        t2_blocks: t2,
    }
}

/// A pending vote (one per validator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub validator_hotkey: String,
    pub miner_hotkey: String,
    pub score: f64,
    pub score_int: i64,
    pub result_id: Option<String>,
    pub seen_block: u64,
    /// Unix microseconds of the (latest) vote.
    pub timestamp_us: i64,
}

impl Vote {
    fn same_candidate(&self, miner: &str, score_int: i64) -> bool {
        self.miner_hotkey == miner && self.score_int == score_int
    }
}

/// What a vote did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    AlreadyVoted,
    VoteUpdated,
    VoteRecorded,
    Finalized,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AlreadyVoted => "already_voted",
            Status::VoteUpdated => "vote_updated",
            Status::VoteRecorded => "vote_recorded",
            Status::Finalized => "finalized",
        }
    }
}

/// Why a vote was refused (all 400).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum VoteReject {
    #[error("seen_block must be > 0")]
    SeenBlock,
    #[error("score must be a finite number with |score| < 9")]
    BadScore,
    #[error("Score {score} is not above current SOTA {current}")]
    NotAboveSota { score: f64, current: f64 },
    #[error("Validator has already voted this round (existing vote is better or equal)")]
    AlreadyVotedBetter,
}

/// The decision for one vote and the writes it implies.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: Status,
    /// The validator's vote to store (None: nothing to write for the vote itself).
    pub write: Option<Vote>,
    /// The validator's vote from an earlier round that this one replaces (step 2), so the
    /// caller can log that a round without consensus expired.
    pub expired: Option<Vote>,
    pub votes_for_candidate: u32,
    /// Set when consensus is reached: the event's decision block (max `seen_block` of
    /// the candidate's votes). The caller creates or reuses the event, sets the SOTA and
    /// deletes every pending vote, atomically.
    pub finalize: Option<u64>,
}

/// Scores a vote may carry: finite, |score| < 9 so that `score_int` fits an i64.
pub fn valid_score(score: f64) -> bool {
    score.is_finite() && score.abs() < 9.0
}

/// Decide a vote (relay.md §4 steps 1–6) given every pending vote (`pending`, any round,
/// including the validator's own if any) and the current SOTA. `vote` carries the
/// validator, candidate, seen block and timestamp; its `score_int` is recomputed here.
pub fn decide_vote(
    p: &Params,
    current_sota: f64,
    pending: &[Vote],
    vote: &Vote,
) -> Result<Decision, VoteReject> {
    if vote.seen_block == 0 {
        return Err(VoteReject::SeenBlock);
    }
    if !valid_score(vote.score) {
        return Err(VoteReject::BadScore);
    }
    if vote.score <= current_sota {
        return Err(VoteReject::NotAboveSota {
            score: vote.score,
            current: current_sota,
        });
    }
    let score_int = score_int(vote.score).ok_or(VoteReject::BadScore)?;
    let new = Vote {
        score_int,
        ..vote.clone()
    };
    let round = ceil_to_mod(new.seen_block, p.alignment_mod);
    let mine = pending
        .iter()
        .find(|v| v.validator_hotkey == new.validator_hotkey);
    let (existing, expired) = match mine {
        Some(v) if ceil_to_mod(v.seen_block, p.alignment_mod) != round => (None, Some(v.clone())),
        other => (other, None),
    };
    let count = |exclude_mine: bool| -> u32 {
        pending
            .iter()
            .filter(|v| !(exclude_mine && v.validator_hotkey == new.validator_hotkey))
            .filter(|v| v.same_candidate(&new.miner_hotkey, score_int))
            .count() as u32
    };
    let status = match existing {
        Some(v) if v.same_candidate(&new.miner_hotkey, score_int) => {
            return Ok(Decision {
                status: Status::AlreadyVoted,
                write: None,
                expired: None,
                votes_for_candidate: count(false),
                finalize: None,
            });
        }
        Some(v)
            if score_int > v.score_int
                || (score_int == v.score_int && v.miner_hotkey != new.miner_hotkey) =>
        {
            Status::VoteUpdated
        }
        Some(_) => return Err(VoteReject::AlreadyVotedBetter),
        None => Status::VoteRecorded,
    };
    // Pending votes for the candidate once this vote is written (the validator's own
    // earlier vote, whatever it was, is replaced).
    let votes_for_candidate = count(true) + 1;
    let finalize = (votes_for_candidate >= p.consensus_votes).then(|| {
        pending
            .iter()
            .filter(|v| v.validator_hotkey != new.validator_hotkey)
            .filter(|v| v.same_candidate(&new.miner_hotkey, score_int))
            .map(|v| v.seen_block)
            .chain([new.seen_block])
            .max()
            .unwrap_or(new.seen_block)
    });
    Ok(Decision {
        status: if finalize.is_some() {
            Status::Finalized
        } else {
            status
        },
        write: Some(new),
        expired,
        votes_for_candidate,
        finalize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(votes: u32, m: u64, t2: u64) -> Params {
        Params {
            consensus_votes: votes,
            alignment_mod: m,
            t2_blocks: t2,
            t2_intervals: None,
            min_t2_intervals: 2,
            activation_delay_intervals: 1,
        }
    }

    #[test]
    fn score_int_vectors() {
        assert_eq!(score_int(0.93), Some(930_000_000_000_000_000));
        assert_eq!(score_int(0.7515), Some(751_500_000_000_000_000));
        assert_eq!(score_int(-0.5), Some(-500_000_000_000_000_000));
        assert_eq!(score_int(0.0), Some(0));
        assert_eq!(score_int(f64::NAN), None);
        assert_eq!(score_int(f64::INFINITY), None);
        assert_eq!(score_int(10.0), None);
        // Ties go to even: 2.5e-18 × 1e18 = 2.5 → 2, 3.5e-18 → 4 (as products in f64).
        assert_eq!((2.5f64).round_ties_even(), 2.0);
        // The product is taken in f64, as the reference's `int(round(score * 10**18))` does.
        assert_eq!(score_int(8.999), Some(8_999_000_000_000_001_024));
    }

    #[test]
    fn ceil_to_mod_cases() {
        assert_eq!(ceil_to_mod(150, 100), 200);
        assert_eq!(ceil_to_mod(200, 100), 200);
        assert_eq!(ceil_to_mod(0, 100), 0);
        assert_eq!(ceil_to_mod(7, 1), 7);
        assert_eq!(ceil_to_mod(u64::MAX, 10), u64::MAX);
    }

    #[test]
    fn window_vectors() {
        let cases = [
            ((12345, 100, 1000), (12500, 13500, 1000)),
            ((12400, 100, 1000), (12500, 13500, 1000)),
            ((5000, 360, 1000), (5400, 6480, 1080)),
            ((5000, 100, 50), (5100, 5300, 200)),
            ((1, 1, 1000), (2, 1002, 1000)),
        ];
        for ((d, m, t2), (s, e, t)) in cases {
            let w = window(&params(2, m, t2), d);
            assert_eq!(
                (w.start_block, w.end_block, w.t2_blocks),
                (s, e, t),
                "{d} {m} {t2}"
            );
        }
        let mut p = params(2, 100, 1000);
        p.t2_intervals = Some(3);
        assert_eq!(window(&p, 100).t2_blocks, 300);
        p.t2_intervals = Some(1);
        assert_eq!(window(&p, 100).t2_blocks, 200, "min_t2_intervals applies");
    }

    const M1: &str = "M1";
    const M2: &str = "M2";

    fn vote(validator: &str, miner: &str, score: f64, seen: u64) -> Vote {
        Vote {
            validator_hotkey: validator.into(),
            miner_hotkey: miner.into(),
            score,
            score_int: 0,
            result_id: None,
            seen_block: seen,
            timestamp_us: 0,
        }
    }

    /// A minimal state: pending votes by validator, and the SOTA.
    struct Sim {
        p: Params,
        sota: f64,
        pending: Vec<Vote>,
    }

    impl Sim {
        fn cast(&mut self, v: Vote) -> Result<Decision, VoteReject> {
            let d = decide_vote(&self.p, self.sota, &self.pending, &v)?;
            if let Some(w) = &d.write {
                self.pending
                    .retain(|x| x.validator_hotkey != w.validator_hotkey);
                self.pending.push(w.clone());
            }
            if d.finalize.is_some() {
                self.sota = v.score;
                self.pending.clear();
            }
            Ok(d)
        }
    }

    #[test]
    fn the_vote_sequence_vector() {
        let mut s = Sim {
            p: params(2, 100, 1000),
            sota: 0.5,
            pending: vec![],
        };
        let d = s.cast(vote("V1", M1, 0.6, 150)).unwrap();
        assert_eq!((d.status, d.votes_for_candidate), (Status::VoteRecorded, 1));
        let d = s.cast(vote("V1", M1, 0.6, 160)).unwrap();
        assert_eq!(d.status, Status::AlreadyVoted);
        assert_eq!(d.write, None);
        assert_eq!(
            s.cast(vote("V1", M2, 0.55, 170)),
            Err(VoteReject::AlreadyVotedBetter)
        );
        let d = s.cast(vote("V1", M2, 0.7, 180)).unwrap();
        assert_eq!((d.status, d.votes_for_candidate), (Status::VoteUpdated, 1));
        let d = s.cast(vote("V1", M1, 0.55, 250)).unwrap();
        assert_eq!(d.status, Status::VoteRecorded, "new round");
        assert_eq!(d.expired.map(|v| v.seen_block), Some(180));
        let d = s.cast(vote("V2", M1, 0.55, 260)).unwrap();
        assert_eq!((d.status, d.votes_for_candidate), (Status::Finalized, 2));
        assert_eq!(d.finalize, Some(260));
        let w = window(&s.p, 260);
        assert_eq!((w.start_block, w.end_block), (400, 1400));
        assert_eq!(s.sota, 0.55);
        assert!(s.pending.is_empty());
        assert!(matches!(
            s.cast(vote("V3", M1, 0.55, 270)),
            Err(VoteReject::NotAboveSota { .. })
        ));
    }

    #[test]
    fn equal_score_other_miner_updates_and_bad_inputs_are_refused() {
        let mut s = Sim {
            p: params(3, 100, 1000),
            sota: 0.0,
            pending: vec![],
        };
        s.cast(vote("V1", M1, 0.6, 10)).unwrap();
        let d = s.cast(vote("V1", M2, 0.6, 20)).unwrap();
        assert_eq!(d.status, Status::VoteUpdated);
        assert_eq!(
            s.cast(vote("V1", M1, 0.6, 30)).unwrap().status,
            Status::VoteUpdated
        );
        assert_eq!(s.cast(vote("V2", M1, 0.6, 0)), Err(VoteReject::SeenBlock));
        assert_eq!(
            s.cast(vote("V2", M1, f64::NAN, 5)),
            Err(VoteReject::BadScore)
        );
        assert_eq!(s.cast(vote("V2", M1, 9.5, 5)), Err(VoteReject::BadScore));
        // Decision block is the max seen_block among the candidate's votes.
        s.cast(vote("V2", M1, 0.6, 90)).unwrap();
        let d = s.cast(vote("V3", M1, 0.6, 40)).unwrap();
        assert_eq!((d.status, d.finalize), (Status::Finalized, Some(90)));
    }

    #[test]
    fn consensus_one_finalizes_immediately() {
        let mut s = Sim {
            p: params(1, 1, 1000),
            sota: 0.1,
            pending: vec![],
        };
        let d = s.cast(vote("V1", M1, 0.2, 7)).unwrap();
        assert_eq!((d.status, d.finalize), (Status::Finalized, Some(7)));
    }
}
