//! Wire shapes of the daemon's HTTP APIs, as far as the dashboard reads them.
//!
//! Decoding is deliberately lenient (every field defaulted, `null` accepted anywhere): the
//! dashboard watches daemons of other versions and must show "–" for a missing field rather
//! than lose a whole panel. Shapes the spec leaves open (pool monitor summary, epochs) are
//! kept as JSON and read with fallbacks.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads `null` (or a missing field, with `#[serde(default)]`) as `T::default()`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /appliance/status` (sidecar listener).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApplianceStatus {
    pub version: Option<String>,
    pub uptime_s: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub services: Services,
    #[serde(deserialize_with = "nullable")]
    pub miner: MinerStatus,
    /// The daemon's health (`healthy`, or `degraded` with the reasons).
    #[serde(deserialize_with = "nullable")]
    pub health: Health,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Health {
    pub status: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Services {
    pub relay: Option<ServiceInfo>,
    pub sidecar: Option<ServiceInfo>,
    pub pool: Option<ServiceInfo>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ServiceInfo {
    #[serde(deserialize_with = "nullable")]
    pub enabled: bool,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct MinerStatus {
    #[serde(deserialize_with = "nullable")]
    pub running: bool,
    pub run_id: Option<String>,
    pub task_type: Option<String>,
    pub engine: Option<String>,
    pub workers: Option<u32>,
    /// The run's (or, when stopped, the configuration's) `start_from_sota`.
    pub start_from_sota: Option<bool>,
    pub hotkey: Option<String>,
    pub generation: Option<u64>,
    pub children_per_sec: Option<f64>,
    pub best_fitness: Option<f64>,
    pub started_at: Option<String>,
    /// Pool mining's progress (pool mode only).
    pub pool: Option<PoolProgress>,
    /// Set when the task's SOTA is at its ceiling: nothing mined can be accepted.
    pub ceiling: Option<Ceiling>,
}

/// `miner.pool` of `/appliance/status`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PoolProgress {
    pub evolutions_submitted: u64,
    pub evaluations_submitted: u64,
    pub leases_submitted: u64,
    pub current: Option<String>,
    pub reputation: Option<f64>,
}

/// `miner.ceiling` of `/appliance/status`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Ceiling {
    pub sota: Option<f64>,
    pub next_task: Option<String>,
}

/// `GET /state` (sidecar-miner.md §1.1).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SidecarState {
    pub run_id: Option<String>,
    pub status: Option<String>,
    pub global_sota: Option<f64>,
    pub local_sota: Option<f64>,
    pub successful_submissions: Option<u64>,
    pub tasks_completed: Option<u64>,
    pub best_candidate_score: Option<f64>,
    pub queued_jobs: Option<u64>,
    pub leased_jobs: Option<u64>,
    pub completed_jobs: Option<u64>,
    pub updated_at_s: Option<f64>,
}

/// A cursor page of `/logs` or `/candidates`: keep `cursor` and ask from it next time.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct CursorPage<T> {
    #[serde(default)]
    pub cursor: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub items: Vec<T>,
}

/// One log item. The sidecar's item shape is `{seq, ts, message}` in the reference, but a
/// bare string or another text key is shown too rather than dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogLine {
    pub seq: Option<u64>,
    pub text: String,
}

impl<'de> Deserialize<'de> for LogLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let seq = v.get("seq").and_then(Value::as_u64);
        let text = match &v {
            Value::String(s) => s.clone(),
            Value::Object(o) => ["message", "msg", "line", "text"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string()),
            other => other.to_string(),
        };
        Ok(LogLine { seq, text })
    }
}

/// One verified candidate from `/candidates` (the sidecar's `candidate` ingest event).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Candidate {
    pub seq: Option<u64>,
    pub worker_id: Option<Value>,
    pub iteration: Option<u64>,
    pub eval_score: Option<f64>,
    pub validator_score: Option<f64>,
    pub input_dim: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub algorithm_dsl: String,
    pub task_type: Option<String>,
    /// Whether the miner submitted it to the relay, when the daemon records that.
    pub submitted: Option<bool>,
}

impl Candidate {
    /// The verified (validator-suite) score, else the miner's own.
    pub fn score(&self) -> Option<f64> {
        self.validator_score.or(self.eval_score)
    }

    /// Worker ids are integers in the reference and strings in some workers.
    pub fn worker(&self) -> String {
        match &self.worker_id {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "–".into(),
        }
    }
}

/// `GET /appliance/validators`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ValidatorsResponse {
    #[serde(deserialize_with = "nullable")]
    pub validators: Vec<ValidatorInfo>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ValidatorInfo {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub hotkey: Option<String>,
    pub relay_url: Option<String>,
    pub sota: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub counters: ValidatorCounters,
    #[serde(deserialize_with = "nullable")]
    pub recent_votes: Vec<RecentVote>,
    pub weights: Option<Weights>,
}

/// The validator's stats-line counters (validator.md §2).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ValidatorCounters {
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
    pub votes_ok: u64,
    pub votes_tried: u64,
    /// Votes refused only because another validator's vote had already finalized the score.
    pub votes_late: u64,
    pub finalized: u64,
    pub unique_seen: u64,
}

/// A vote a validator sent and the relay's answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RecentVote {
    pub ts: Option<String>,
    pub kind: Option<String>,
    pub miner_hotkey: Option<String>,
    pub score: Option<f64>,
    pub status: Option<String>,
    pub detail: Option<String>,
}

/// The chain weights a validator would set (validator.md §3).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Weights {
    pub burn_hotkey: Option<String>,
    pub burn: Option<f64>,
    pub winner: Option<String>,
    pub winner_weight: Option<f64>,
}

/// `GET /sota_threshold` (relay).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SotaThreshold {
    pub sota_threshold: Option<f64>,
    pub updated_at: Option<String>,
}

/// `GET /sota-events` (relay, public), newest first.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SotaEventsPage {
    #[serde(deserialize_with = "nullable")]
    pub results: Vec<SotaEvent>,
    pub total: Option<u64>,
}

/// A SOTA event. The public list carries miner, score and time; the block fields are only
/// in the validator-only `/sota/events` and are shown when a daemon includes them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SotaEvent {
    pub miner_hotkey: Option<String>,
    pub score: Option<f64>,
    pub decision_block: Option<i64>,
    pub start_block: Option<i64>,
    pub end_block: Option<i64>,
    pub created_at: Option<String>,
}

/// `GET /admin/status` (relay.md §5).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AdminStatus {
    pub status: Option<String>,
    pub db_ok: Option<bool>,
    pub db_error: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub auth: AdminAuth,
    #[serde(deserialize_with = "nullable")]
    pub metrics: RelayMetrics,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AdminAuth {
    pub validator_count: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RelayMetrics {
    pub uptime_seconds: Option<f64>,
    /// A unix time or an ISO string depending on the relay; shown as given.
    pub last_request_ts: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub totals: CategoryCounts,
    #[serde(deserialize_with = "nullable")]
    pub last_1m: CategoryCounts,
    #[serde(deserialize_with = "nullable")]
    pub last_1h: CategoryCounts,
    #[serde(deserialize_with = "nullable")]
    pub last_24h: CategoryCounts,
    pub errors_5xx_total: Option<u64>,
}

/// Requests by category in one window.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CategoryCounts {
    pub miner: u64,
    pub validator: u64,
    pub admin: u64,
    pub public: u64,
    pub other: u64,
    pub errors_5xx: u64,
}

/// Pool `GET /health`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PoolHealth {
    pub status: Option<String>,
    pub window_number: Option<u64>,
    pub time_remaining_s: Option<f64>,
}

/// A row of `GET /api/v1/miners/leaderboard`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct LeaderRow {
    pub rank: Option<u64>,
    pub hotkey: Option<String>,
    pub reputation: Option<f64>,
    pub evaluations: Option<u64>,
    pub evolutions: Option<u64>,
}

/// One closed epoch, read with fallbacks because the ledger shape is the pool's to decide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochRow {
    pub number: Option<u64>,
    pub closed_at: Option<String>,
    pub total_rao: Option<u64>,
    pub payouts: Option<usize>,
    pub merkle_root: Option<String>,
}

impl EpochRow {
    fn from_value(v: &Value) -> EpochRow {
        let first = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()));
        EpochRow {
            number: first(&["epoch", "epoch_number", "number", "id"]).and_then(Value::as_u64),
            closed_at: first(&["closed_at", "end", "ended_at", "end_time"])
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned)),
            total_rao: first(&["total_paid_rao", "paid_rao", "total_rao", "budget_rao"])
                .and_then(Value::as_u64),
            payouts: first(&["payouts", "entries", "leaves"])
                .and_then(Value::as_array)
                .map(Vec::len)
                .or_else(|| {
                    first(&["payout_count", "miners"])
                        .and_then(Value::as_u64)
                        .map(|n| n as usize)
                }),
            merkle_root: first(&["merkle_root", "root"])
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// Accepts a bare list or an object holding the list (`epochs`, `results`, `data`).
    pub fn list_from(v: &Value) -> Vec<EpochRow> {
        let list = v.as_array().or_else(|| {
            ["epochs", "results", "data", "items"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_array))
        });
        list.map(|l| l.iter().map(EpochRow::from_value).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_from_a_list_or_a_wrapper() {
        let list = serde_json::json!([{"epoch": 3, "payouts": [{}, {}], "merkle_root": "ab"}]);
        let wrapped = serde_json::json!({"epochs": list.clone()});
        for v in [&list, &wrapped] {
            let rows = EpochRow::list_from(v);
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].number, Some(3));
            assert_eq!(rows[0].payouts, Some(2));
            assert_eq!(rows[0].merkle_root.as_deref(), Some("ab"));
        }
        assert!(EpochRow::list_from(&serde_json::json!({"detail": "x"})).is_empty());
    }

    #[test]
    fn log_lines_from_objects_or_strings() {
        let page: CursorPage<LogLine> = serde_json::from_str(
            r#"{"cursor": 9, "items": [{"seq": 7, "message": "a"}, "b", {"seq": 8, "level": "info"}]}"#,
        )
        .unwrap();
        assert_eq!(page.cursor, 9);
        let texts: Vec<&str> = page.items.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", r#"{"level":"info","seq":8}"#]);
        assert_eq!(page.items[0].seq, Some(7));
    }

    #[test]
    fn candidate_score_and_worker() {
        let c: Candidate = serde_json::from_str(
            r#"{"worker_id": "w-3", "eval_score": 0.5, "validator_score": null}"#,
        )
        .unwrap();
        assert_eq!(c.score(), Some(0.5));
        assert_eq!(c.worker(), "w-3");
        let c: Candidate =
            serde_json::from_str(r#"{"worker_id": 2, "validator_score": 0.7}"#).unwrap();
        assert_eq!((c.score(), c.worker().as_str()), (Some(0.7), "2"));
    }
}
