//! The relay's request and response bodies (relay.md §2), typed once for the server and
//! its clients. Field names and optional fields are the reference relay's: its Python
//! validator, GUI and scripts must read what we write.
//!
//! Request bodies derive `Deserialize` with the reference's defaults (a missing optional
//! field is `None`) and `Serialize` for our clients; responses derive both. Floats cross
//! as JSON numbers: serde_json writes the shortest form that parses back to the same
//! bits, and with `float_roundtrip` it parses them back exactly, so a score read from the
//! relay is bit-identical to the one it stored. Every float here is finite by the relay's
//! rules (scores are checked at submission), since JSON has no NaN or infinity.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

// ----- requests -----

/// `POST /submit_solution` (score required) and `POST /test/submit_solution` (score
/// optional). Which checks apply to the values is the relay's business, not the shape's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitSolution {
    pub task_id: String,
    /// `{task_type, algorithm_dsl, input_dim, metadata, …}`: kept as an object, since the
    /// relay stores it verbatim and hashes its canonical form.
    pub algorithm_result: Map<String, Value>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// `POST /sota/vote`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SotaVote {
    pub miner_hotkey: String,
    pub score: f64,
    /// A negative block reads as 0, so the vote rules refuse it with their own message
    /// (`seen_block must be > 0`) rather than a shape error.
    #[serde(deserialize_with = "block_number")]
    pub seen_block: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_id: Option<String>,
}

/// `POST /invitation_code/link`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteLink {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coldkey_address: Option<String>,
}

/// `POST /coldkey_address/update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColdkeyUpdate {
    pub coldkey_address: String,
}

/// Query of `GET /results`: `limit` (default 256, clamped 1..1000), `task_id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// Query of `GET /sota/events` (default 20, clamped 1..200) and `GET /test/submissions`
/// (default 50, clamped 1..200).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Query of `GET /sota-events`: `page` ≥ 1 (default 1), `page_size` (default 50,
/// clamped 1..100).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
}

// ----- responses -----

/// Every error: `{"detail": "<message>"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: String,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    /// ISO-8601 UTC.
    pub timestamp: String,
}

/// `GET /sota_threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SotaThreshold {
    /// Always `"global"`.
    pub task_type: String,
    pub sota_threshold: f64,
    pub updated_at: String,
    pub cached: bool,
}

/// One row of the public `GET /sota-events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublicEvent {
    pub miner_hotkey: String,
    pub score: f64,
    pub created_at: String,
}

/// `GET /sota-events`: a page of SOTA events, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SotaEventsPage {
    pub results: Vec<PublicEvent>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    pub total_pages: u64,
}

/// `POST /submit_solution`, accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitAccepted {
    /// 16 hex characters.
    pub result_id: String,
    /// `"accepted"`.
    pub status: String,
}

/// A stored result, as `GET /results` and `GET /results/{miner_hotkey}` list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RelayResult {
    pub id: String,
    pub miner_hotkey: String,
    pub task_id: String,
    /// A string holding the JSON object the miner submitted (the reference's form). A
    /// relay that sends the object itself is read as its JSON text.
    #[serde(deserialize_with = "json_text")]
    pub algorithm_result: String,
    pub score: f64,
    pub timestamp: String,
    /// Always `null` (the reference never sets it).
    pub validator_verified: Option<bool>,
    /// The miner's auth headers, so a validator can verify the submission.
    pub signature: String,
    pub timestamp_message: String,
    /// From the miner's invitation, or `null`.
    pub coldkey_address: Option<String>,
}

impl RelayResult {
    /// `algorithm_result` parsed; `None` when it is not a JSON object.
    pub fn algorithm(&self) -> Option<Map<String, Value>> {
        match serde_json::from_str(&self.algorithm_result) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    }
}

/// A finalized SOTA event (`GET /sota/events`, a vote's `finalized_event`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SotaEvent {
    pub id: u64,
    pub miner_hotkey: String,
    pub score: f64,
    /// `round_half_even(score × 1e18)`.
    pub score_int: i64,
    pub result_id: Option<String>,
    pub decision_block: u64,
    pub start_block: u64,
    pub end_block: u64,
    pub alignment_mod: u64,
    pub t2_blocks: u64,
    pub created_at: String,
}

/// `POST /sota/vote`, taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteAnswer {
    /// `vote_recorded`, `vote_updated`, `already_voted` or `finalized`.
    pub status: String,
    pub votes_for_candidate: u32,
    pub votes_needed: u32,
    pub current_sota: f64,
    pub finalized_event: Option<SotaEvent>,
}

/// A bare `{"status": …}` answer (`POST /blacklist/{miner_hotkey}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusAnswer {
    pub status: String,
}

/// `POST /invitation_code/generate/{count}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteCodes {
    pub data: Vec<String>,
}

/// One invitation, as `GET /invitation_code/list/{page}/{size}` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    /// The code.
    pub id: String,
    pub miner_hotkey: Option<String>,
    pub coldkey_address: Option<String>,
    pub timestamp: String,
}

/// `GET /invitation_code/list/{page}/{size}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteList {
    pub data: Vec<Invite>,
    pub count: u64,
}

/// `GET /invitation_code/linked`: the caller's code, or `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkedCode {
    pub data: Option<String>,
}

/// `POST /invitation_code/link`: `1` linked, `0` not (unknown or used code).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkAnswer {
    pub data: i32,
}

/// `POST /coldkey_address/update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColdkeyUpdated {
    /// `"success"`.
    pub status: String,
    pub coldkey_address: String,
    pub invite_code: String,
}

/// `POST /test/submit_solution`, accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestAccepted {
    pub test_submission_id: String,
    /// `"accepted"`.
    pub status: String,
}

/// One UID0 test submission (`GET /test/submissions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSubmission {
    pub id: String,
    pub submitter_hotkey: String,
    pub task_id: String,
    /// A string holding the JSON object, as in [`RelayResult`].
    #[serde(deserialize_with = "json_text")]
    pub algorithm_result: String,
    pub score: Option<f64>,
    pub created_at: String,
    pub claimed_at: Option<String>,
    pub claimed_by: Option<String>,
    pub signature: String,
    pub timestamp_message: String,
}

/// A block number: a non-negative integer, or a negative one read as 0.
fn block_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Block {
        Unsigned(u64),
        Signed(i64),
    }
    match Block::deserialize(d) {
        Ok(Block::Unsigned(n)) => Ok(n),
        Ok(Block::Signed(n)) => Ok(u64::try_from(n).unwrap_or(0)),
        Err(_) => Err(serde::de::Error::custom("seen_block must be an integer")),
    }
}

/// A JSON text: a string as it is, any other value as its JSON.
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Awkward floats: shortest forms, subnormals, values that need all 17 digits.
    const FLOATS: [f64; 8] = [
        0.1 + 0.2,
        0.93,
        -0.7515,
        5e-324,
        8.999_999_999_999_998,
        1.0 / 3.0,
        2.225_073_858_507_201e-308,
        -0.0,
    ];

    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(v: &T) -> T {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn floats_cross_bit_identical() {
        for x in FLOATS {
            let vote = SotaVote {
                miner_hotkey: "m".into(),
                score: x,
                seen_block: 7,
                result_id: None,
            };
            assert_eq!(round_trip(&vote).score.to_bits(), x.to_bits(), "{x:e}");
            let answer = VoteAnswer {
                status: "finalized".into(),
                votes_for_candidate: 2,
                votes_needed: 2,
                current_sota: x,
                finalized_event: Some(SotaEvent {
                    id: 1,
                    miner_hotkey: "m".into(),
                    score: x,
                    score_int: 0,
                    result_id: None,
                    decision_block: 1,
                    start_block: 2,
                    end_block: 3,
                    alignment_mod: 1,
                    t2_blocks: 1,
                    created_at: String::new(),
                }),
            };
            let back = round_trip(&answer);
            assert_eq!(back.current_sota.to_bits(), x.to_bits());
            assert_eq!(back.finalized_event.unwrap().score.to_bits(), x.to_bits());
            let t = SotaThreshold {
                task_type: "global".into(),
                sota_threshold: x,
                updated_at: String::new(),
                cached: true,
            };
            assert_eq!(round_trip(&t).sota_threshold.to_bits(), x.to_bits());
        }
    }

    #[test]
    fn requests_take_the_reference_defaults() {
        let s: SubmitSolution =
            serde_json::from_value(json!({"task_id": "t", "algorithm_result": {"a": 1}})).unwrap();
        assert_eq!(s.score, None);
        assert!(serde_json::from_value::<SubmitSolution>(
            json!({"task_id": "t", "algorithm_result": "not an object", "score": 0.5})
        )
        .is_err());
        let v: SotaVote =
            serde_json::from_value(json!({"miner_hotkey": "m", "score": 0.6, "seen_block": -5}))
                .unwrap();
        assert_eq!((v.seen_block, v.result_id), (0, None));
        let e = serde_json::from_value::<SotaVote>(
            json!({"miner_hotkey": "m", "score": 0.6, "seen_block": 1.5}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("seen_block must be an integer"),
            "{e}"
        );
        let l: InviteLink = serde_json::from_value(json!({"code": "ABC"})).unwrap();
        assert_eq!(l.coldkey_address, None);
    }

    #[test]
    fn optional_fields_are_left_out_of_requests() {
        let vote = SotaVote {
            miner_hotkey: "m".into(),
            score: 0.5,
            seen_block: 3,
            result_id: None,
        };
        assert_eq!(
            serde_json::to_value(&vote).unwrap(),
            json!({"miner_hotkey": "m", "score": 0.5, "seen_block": 3})
        );
        assert_eq!(
            serde_json::to_value(ResultsQuery {
                limit: Some(5),
                task_id: None
            })
            .unwrap(),
            json!({"limit": 5})
        );
    }

    #[test]
    fn results_keep_nulls_and_read_either_algorithm_form() {
        let r = RelayResult {
            id: "abc".into(),
            miner_hotkey: "m".into(),
            task_id: "t".into(),
            algorithm_result: r#"{"algorithm_dsl":"x","task_type":"scalar_linear"}"#.into(),
            score: 0.25,
            timestamp: "2026-01-01T00:00:00.000000Z".into(),
            validator_verified: None,
            signature: "s".into(),
            timestamp_message: "auth:1".into(),
            coldkey_address: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["validator_verified"], Value::Null);
        assert_eq!(v["coldkey_address"], Value::Null);
        assert_eq!(round_trip(&r), r);
        let mut object_form = v.clone();
        object_form["algorithm_result"] = json!({"algorithm_dsl": "x"});
        let read: RelayResult = serde_json::from_value(object_form).unwrap();
        assert_eq!(read.algorithm().unwrap()["algorithm_dsl"], "x");
        assert_eq!(r.algorithm().unwrap()["task_type"], "scalar_linear");
    }
}
