//! The relay document's shared parts: security schemes, role requirements and the
//! schemas its operations refer to.

use crate::http::{array, schema_ref};
use serde_json::{json, Value};

/// The security requirements of a signed role (`miner`, `validator`, `uid0`).
pub fn signed() -> Value {
    json!([{"Key": [], "Timestamp": [], "Signature": []}])
}

/// The security requirements of the `admin` role.
pub fn admin() -> Value {
    json!([{"AdminToken": []}, {"DashboardBasic": []}])
}

/// A hotkey in a path or body.
pub fn hotkey() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9]{48}$"})
}

/// Security schemes and schemas.
pub fn components() -> Value {
    json!({
        "securitySchemes": {
            "Key": {"type": "apiKey", "in": "header", "name": "X-Key", "description": "signer's SS58 hotkey"},
            "Timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp", "description": "the signed message: miners auth:<unix s>, validators <unix s>; within auth_max_skew_s of server time"},
            "Signature": {"type": "apiKey", "in": "header", "name": "X-Signature", "description": "lowercase hex sr25519 signature (context 'substrate') of X-Timestamp; each signature is accepted once"},
            "AdminToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            "DashboardBasic": {"type": "http", "scheme": "basic"}
        },
        "schemas": {
            "VersionManifest": {"type": "object", "properties": {"version": {"type": "string"}, "versionCode": {"type": "integer"}, "desc": {"type": "string"}, "mac": {"type": "string"}, "linux": {"type": "string"}, "windows": {"type": "string"}}},
            "SotaThreshold": {"type": "object", "properties": {"task_type": {"type": "string"}, "sota_threshold": {"type": "number"}, "updated_at": {"type": "string", "format": "date-time"}, "cached": {"type": "boolean"}}},
            "Submission": {"type": "object", "required": ["task_id", "algorithm_result"], "properties": {
                "task_id": {"type": "string"},
                "algorithm_result": {"type": "object", "description": "algorithm_dsl (strict DSL), task_type (known type), input_dim, metadata", "additionalProperties": true},
                "score": {"type": "number", "description": "required for /submit_solution; finite, |score| < 9, >= current SOTA"}}},
            "Result": {"type": "object", "properties": {
                "id": {"type": "string"}, "miner_hotkey": {"type": "string"}, "task_id": {"type": "string"},
                "algorithm_result": {"type": "string", "description": "the submitted JSON object, as a string"},
                "score": {"type": "number"}, "timestamp": {"type": "string", "format": "date-time"},
                "validator_verified": {"type": "string", "nullable": true},
                "signature": {"type": "string"}, "timestamp_message": {"type": "string"},
                "coldkey_address": {"type": "string", "nullable": true}}},
            "Vote": {"type": "object", "required": ["miner_hotkey", "score", "seen_block"], "properties": {
                "miner_hotkey": hotkey(), "score": {"type": "number"}, "seen_block": {"type": "integer", "minimum": 1},
                "result_id": {"type": "string", "nullable": true}}},
            "VoteResponse": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["already_voted", "vote_updated", "vote_recorded", "finalized"]},
                "votes_for_candidate": {"type": "integer"}, "votes_needed": {"type": "integer"},
                "current_sota": {"type": "number"},
                "finalized_event": {"allOf": [schema_ref("Event")], "nullable": true}}},
            "Event": {"type": "object", "properties": {
                "id": {"type": "integer"}, "miner_hotkey": {"type": "string"}, "score": {"type": "number"},
                "score_int": {"type": "integer", "format": "int64"}, "result_id": {"type": "string", "nullable": true},
                "decision_block": {"type": "integer"}, "start_block": {"type": "integer"}, "end_block": {"type": "integer"},
                "alignment_mod": {"type": "integer"}, "t2_blocks": {"type": "integer"},
                "created_at": {"type": "string", "format": "date-time"}}},
            "PaginatedEvents": {"type": "object", "properties": {
                "results": array(json!({"type": "object", "properties": {"miner_hotkey": {"type": "string"}, "score": {"type": "number"}, "created_at": {"type": "string", "format": "date-time"}}})),
                "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total_pages": {"type": "integer"}}},
            "Invitation": {"type": "object", "properties": {
                "id": {"type": "string"}, "miner_hotkey": {"type": "string", "nullable": true},
                "coldkey_address": {"type": "string", "nullable": true}, "timestamp": {"type": "string", "format": "date-time"}}},
            "TestSubmission": {"type": "object", "properties": {
                "id": {"type": "string"}, "submitter_hotkey": {"type": "string"}, "task_id": {"type": "string"},
                "algorithm_result": {"type": "string"}, "score": {"type": "number", "nullable": true},
                "created_at": {"type": "string", "format": "date-time"}, "claimed_at": {"type": "string", "nullable": true},
                "claimed_by": {"type": "string", "nullable": true}, "signature": {"type": "string"}, "timestamp_message": {"type": "string"}}},
            "AdminStatus": {"type": "object", "properties": {
                "status": {"type": "string"}, "db_ok": {"type": "boolean"}, "db_error": {"type": "string", "nullable": true},
                "uid0_hotkey": {"type": "string", "nullable": true}, "auth": {"type": "object"}, "store": {"type": "object"},
                "metrics": {"type": "object", "description": "uptime_seconds, last_request_ts, totals, last_1m/last_1h/last_24h {total, miner, validator, admin, public, other, errors_5xx}, errors_5xx_total"}}}
        }
    })
}
