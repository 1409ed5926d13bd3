//! The submission pipeline (relay.md §3) as pure functions: the score rule, the ordered
//! checks over facts the caller gathered, the duplicate/hourly tracker, result ids. The
//! body's shape is [`crate::protocol::wire::SubmitSolution`]'s.

use crate::config::BudgetConfig;
use crate::engine::{cost, parse_program};
use crate::protocol::wire::SubmitSolution;
use crate::tasks::hyperparams::SuiteConfig;
use crate::tasks::TaskType;
use crate::tasks::MAX_INPUT_DIM;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// Why a submission is refused, in the order the checks run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("score is required")]
    ScoreRequired,
    #[error("score must be finite with |score| < {MAX_ABS_SCORE}, got {0}")]
    ScoreOutOfRange(f64),
    #[error("Please register your invitation code first")]
    NotInvited,
    #[error("Miner is blacklisted")]
    Blacklisted,
    #[error("Duplicate solution submitted within {0} seconds")]
    Duplicate(u64),
    #[error("Rate limit exceeded. Max {0} submissions per hour")]
    RateLimited(u32),
    #[error("Score {score} is below the SOTA threshold of {sota}")]
    BelowSota { score: f64, sota: f64 },
    /// Step 7: what is wrong with `algorithm_result` (see [`check_algorithm`]).
    #[error("{0}")]
    Content(String),
}

/// The stored form of `algorithm_result`: a JSON string holding the object.
pub fn algorithm_result_text(sub: &SubmitSolution) -> String {
    Value::Object(sub.algorithm_result.clone()).to_string()
}

/// Hash of the canonical JSON of `algorithm_result` (keys sorted at every level:
/// serde_json's map is ordered by key), for the duplicate window.
pub fn result_hash(sub: &SubmitSolution) -> [u8; 32] {
    Sha256::digest(algorithm_result_text(sub).as_bytes()).into()
}

/// Largest |score| accepted: `score × 1e18` must fit an i64.
pub const MAX_ABS_SCORE: f64 = 9.0;

/// Step 2: the submission's score — required unless `score_required` is false (test
/// submissions) — finite with |score| < [`MAX_ABS_SCORE`].
pub fn score(sub: &SubmitSolution, score_required: bool) -> Result<Option<f64>, Refusal> {
    match sub.score {
        None if score_required => Err(Refusal::ScoreRequired),
        None => Ok(None),
        Some(s) if !s.is_finite() || s.abs() >= MAX_ABS_SCORE => Err(Refusal::ScoreOutOfRange(s)),
        Some(s) => Ok(Some(s)),
    }
}

/// Everything the ordered checks (steps 3–7) look at, gathered by the caller.
#[derive(Clone, Debug)]
pub struct Facts {
    pub test_mode: bool,
    pub invited: bool,
    pub blacklist_votes: u32,
    pub blacklist_threshold: u32,
    pub duplicate: bool,
    pub submissions_last_hour: u32,
    /// 0 = unlimited.
    pub max_per_hour: u32,
    pub duplicate_window_s: u64,
    pub sota: f64,
    /// Step 7's verdict on `algorithm_result` (see [`check_algorithm`]).
    pub content: Result<(), String>,
}

/// Steps 3–7 in order; the first failing check answers.
pub fn check(score: f64, f: &Facts) -> Result<(), Refusal> {
    if !f.test_mode && !f.invited {
        return Err(Refusal::NotInvited);
    }
    if f.blacklist_votes >= f.blacklist_threshold.max(1) {
        return Err(Refusal::Blacklisted);
    }
    if f.duplicate {
        return Err(Refusal::Duplicate(f.duplicate_window_s));
    }
    if f.max_per_hour > 0 && f.submissions_last_hour >= f.max_per_hour {
        return Err(Refusal::RateLimited(f.max_per_hour));
    }
    if score < f.sota {
        return Err(Refusal::BelowSota {
            score,
            sota: f.sota,
        });
    }
    f.content.clone().map_err(Refusal::Content)
}

/// Step 7: `task_type`, when present, is known; `input_dim`, when present, is an integer
/// the validators accept; `algorithm_dsl`, when present, parses strictly (the error names
/// line and column) and fits the evaluation budget of its task (`engine::cost`: the
/// error names the limit), since validators would count it invalid without running it.
/// Missing `task_type`/`input_dim` are the validators' defaults.
pub fn check_algorithm(result: &Map<String, Value>, budget: &BudgetConfig) -> Result<(), String> {
    let defaults = SuiteConfig::default();
    let task_type = match result.get("task_type") {
        None | Some(Value::Null) => defaults.default_task_type,
        Some(Value::String(t)) => t.parse::<TaskType>().map_err(|_| {
            let known: Vec<&str> = TaskType::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown task_type '{t}' (known: {})", known.join(", "))
        })?,
        Some(_) => return Err("algorithm_result.task_type must be a string".into()),
    };
    let input_dim = match result.get("input_dim") {
        None | Some(Value::Null) => defaults.default_input_dim,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=MAX_INPUT_DIM as u64).contains(d))
            .ok_or_else(|| {
                format!("algorithm_result.input_dim must be an integer in 1..={MAX_INPUT_DIM}")
            })? as usize,
    };
    let dsl = match result.get("algorithm_dsl") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(dsl)) => dsl,
        Some(_) => return Err("algorithm_result.algorithm_dsl must be a string".into()),
    };
    let program = parse_program(dsl).map_err(|e| format!("algorithm_dsl does not parse: {e}"))?;
    let examples = defaults.tasks.examples(task_type);
    cost::check(
        &program,
        task_type,
        input_dim,
        examples,
        &budget.limits(task_type),
    )
    .map(|_| ())
    .map_err(|e| format!("algorithm_dsl is over the evaluation budget: {e}"))
}

/// `sha256_hex("<hotkey>:<task_id>:<unix s>")[..16]`: a first submission's stable id.
pub fn result_id(hotkey: &str, task_id: &str, unix_s: u64) -> String {
    let digest = Sha256::digest(format!("{hotkey}:{task_id}:{unix_s}").as_bytes());
    hex::encode(digest)[..16].to_string()
}

/// Hotkeys in paths and bodies: 48 ASCII alphanumerics (the reference's check).
pub fn valid_hotkey(s: &str) -> bool {
    s.len() == 48 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Recent accepted submissions: the duplicate window (by result hash, any miner) and the
/// per-miner hourly count. In memory, like the reference: both are rate rules, and a
/// restart forgetting them loses no accepted data.
#[derive(Default)]
pub struct Tracker {
    hashes: HashMap<[u8; 32], u64>,
    hash_order: VecDeque<([u8; 32], u64)>,
    per_miner: HashMap<String, VecDeque<u64>>,
}

const HOUR_S: u64 = 3600;

impl Tracker {
    fn prune(&mut self, now: u64, window_s: u64) {
        while let Some(&(h, t)) = self.hash_order.front() {
            if now.saturating_sub(t) < window_s {
                break;
            }
            self.hash_order.pop_front();
            if self.hashes.get(&h) == Some(&t) {
                self.hashes.remove(&h);
            }
        }
    }

    /// Whether `hash` was accepted within the last `window_s` seconds.
    pub fn is_duplicate(&mut self, hash: &[u8; 32], now: u64, window_s: u64) -> bool {
        self.prune(now, window_s);
        self.hashes
            .get(hash)
            .is_some_and(|&t| now.saturating_sub(t) < window_s)
    }

    /// Accepted submissions of `miner` in the last hour.
    pub fn last_hour(&mut self, miner: &str, now: u64) -> u32 {
        let Some(times) = self.per_miner.get_mut(miner) else {
            return 0;
        };
        while times
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= HOUR_S)
        {
            times.pop_front();
        }
        let n = times.len() as u32;
        if n == 0 {
            self.per_miner.remove(miner);
        }
        n
    }

    /// Remember an accepted submission. Per-miner times are kept only when an hourly
    /// limit is in force.
    pub fn record(&mut self, miner: &str, hash: [u8; 32], now: u64, track_hourly: bool) {
        self.hashes.insert(hash, now);
        self.hash_order.push_back((hash, now));
        if track_hourly {
            self.per_miner
                .entry(miner.to_string())
                .or_default()
                .push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            test_mode: false,
            invited: true,
            blacklist_votes: 0,
            blacklist_threshold: 2,
            duplicate: false,
            submissions_last_hour: 0,
            max_per_hour: 0,
            duplicate_window_s: 300,
            sota: 0.5,
            content: Ok(()),
        }
    }

    fn submission(body: &str) -> SubmitSolution {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn scores() {
        let sub = |score: &str| {
            submission(&format!(
                r#"{{"task_id":"t","algorithm_result":{{"b":1,"a":[1,2]}}{score}}}"#
            ))
        };
        let ok = sub(r#","score":0.7"#);
        assert_eq!(score(&ok, true), Ok(Some(0.7)));
        assert_eq!(algorithm_result_text(&ok), r#"{"a":[1,2],"b":1}"#);
        assert_eq!(score(&sub(""), true), Err(Refusal::ScoreRequired));
        assert_eq!(
            score(&sub(r#","score":null"#), true),
            Err(Refusal::ScoreRequired)
        );
        assert_eq!(score(&sub(""), false), Ok(None));
        assert_eq!(
            score(&sub(r#","score":9.0"#), true),
            Err(Refusal::ScoreOutOfRange(9.0))
        );
        assert_eq!(score(&sub(r#","score":-8.5"#), true), Ok(Some(-8.5)));
    }

    #[test]
    fn checks_run_in_order() {
        let err = |f: &Facts, s| check(s, f).unwrap_err();
        let mut f = facts();
        f.invited = false;
        f.blacklist_votes = 5;
        assert_eq!(err(&f, 0.9), Refusal::NotInvited);
        assert!(err(&f, 0.9).to_string().contains("invitation"));
        f.test_mode = true;
        assert!(err(&f, 0.9).to_string().contains("blacklisted"));
        f.blacklist_votes = 1;
        f.duplicate = true;
        f.max_per_hour = 1;
        f.submissions_last_hour = 1;
        assert!(err(&f, 0.9).to_string().contains("Duplicate"));
        f.duplicate = false;
        assert_eq!(err(&f, 0.9), Refusal::RateLimited(1));
        f.max_per_hour = 0;
        f.content = Err("bad dsl".into());
        assert!(err(&f, 0.4).to_string().contains("below the SOTA"));
        assert_eq!(
            err(&f, 0.5).to_string(),
            "bad dsl",
            "equal to SOTA passes step 6"
        );
        f.content = Ok(());
        assert!(check(0.5, &f).is_ok());
    }

    #[test]
    fn algorithm_content() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let check = |v: Value| check_algorithm(&obj(v), &BudgetConfig::default());
        let learner = "# predict\ns0 = dot(v0, v1)\n# learn\nv1 = v0 * s1\n";
        assert!(check(serde_json::json!({})).is_ok());
        assert!(
            check(serde_json::json!({"task_type":"scalar_linear","algorithm_dsl":learner})).is_ok()
        );
        let e = check(serde_json::json!({"algorithm_dsl":"s0 = nope(v0)"})).unwrap_err();
        assert!(e.contains("line 1, column"), "{e}");
        let e = check(serde_json::json!({"task_type":"chess"})).unwrap_err();
        assert!(e.contains("unknown task_type 'chess'"), "{e}");
        assert!(check(serde_json::json!({"task_type":3})).is_err());
        assert!(check(serde_json::json!({"algorithm_dsl":[1]})).is_err());
        for bad in [
            serde_json::json!(0),
            serde_json::json!(65),
            serde_json::json!(4.5),
        ] {
            let e = check(serde_json::json!({"input_dim": bad})).unwrap_err();
            assert!(e.contains("input_dim"), "{e}");
        }
        // Over budget: the limit is named (here: D must be the task's input_dim).
        let wide = format!("# meta: vector_dim=1024\n{learner}");
        let e = check(serde_json::json!({"algorithm_dsl": wide, "input_dim": 16})).unwrap_err();
        assert!(
            e.contains("over the evaluation budget") && e.contains("input_dim=16"),
            "{e}"
        );
        // The budget follows the configuration.
        let big = "# predict\nm1 = matmul(m0, m0)\ns0 = norm(m1)\n";
        let raw = obj(serde_json::json!({"task_type":"scalar_linear","algorithm_dsl":big}));
        let e = check_algorithm(&raw, &BudgetConfig::default()).unwrap_err();
        assert!(e.contains("budget.scalar_linear"), "{e}");
        let raised = BudgetConfig {
            scalar_linear: 100_000_000,
            ..BudgetConfig::default()
        };
        assert!(check_algorithm(&raw, &raised).is_ok());
    }

    #[test]
    fn hash_ignores_key_order_and_ids_are_stable() {
        let a =
            submission(r#"{"task_id":"t","algorithm_result":{"x":{"q":1,"p":2},"a":1},"score":1}"#);
        let b =
            submission(r#"{"score":1,"algorithm_result":{"a":1,"x":{"p":2,"q":1}},"task_id":"u"}"#);
        assert_eq!(result_hash(&a), result_hash(&b));
        let id = result_id("5abc", "t", 1_700_000_000);
        assert_eq!(id.len(), 16);
        assert_eq!(id, result_id("5abc", "t", 1_700_000_000));
        assert_ne!(id, result_id("5abc", "t", 1_700_000_001));
        let full = hex::encode(Sha256::digest(b"5abc:t:1700000000"));
        assert_eq!(id, full[..16]);
        assert!(valid_hotkey(&"5".repeat(48)));
        assert!(!valid_hotkey(&"5".repeat(47)));
        assert!(!valid_hotkey(&format!("{}-", "5".repeat(47))));
    }

    #[test]
    fn tracker_windows() {
        let mut t = Tracker::default();
        let h = [1u8; 32];
        assert!(!t.is_duplicate(&h, 1000, 300));
        t.record("m", h, 1000, true);
        assert!(t.is_duplicate(&h, 1299, 300));
        assert!(!t.is_duplicate(&h, 1300, 300));
        assert_eq!(t.last_hour("m", 1000 + 3599), 1);
        assert_eq!(t.last_hour("m", 1000 + 3600), 0);
        assert_eq!(t.last_hour("other", 1000), 0);
        t.record("m", h, 2000, false);
        assert_eq!(t.last_hour("m", 2000), 0);
        assert!(t.is_duplicate(&h, 2100, 300));
    }
}
