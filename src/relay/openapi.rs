//! The OpenAPI 3 document served at `/openapi.json`.
//!
//! Written by hand next to the handlers (the wire format is the reference's, which a
//! derive-based generator would not reproduce exactly); a test checks that it lists
//! exactly the routes the relay serves, and the integration tests check the statuses.

use serde_json::{json, Value};
use std::sync::OnceLock;

fn error_ref() -> Value {
    json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok_schema(schema: Value) -> Value {
    json!({"description": "success", "content": {"application/json": {"schema": schema}}})
}

/// One operation: summary, security, parameters, request schema, 200 schema, error codes.
fn op(
    summary: &str,
    security: Option<&str>,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
    errors: &[u16],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), ok);
    for code in errors {
        responses.insert(code.to_string(), error_ref());
    }
    let mut o = json!({"summary": summary, "parameters": params, "responses": responses});
    if let Some(s) = security {
        o["security"] = match s {
            "admin" => json!([{"AdminToken": []}, {"DashboardBasic": []}]),
            _ => json!([{"Key": [], "Timestamp": [], "Signature": []}]),
        };
        o["x-role"] = json!(s);
    }
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

fn query_int(name: &str, default: i64, min: i64, max: i64) -> Value {
    json!({"name": name, "in": "query", "required": false,
        "schema": {"type": "integer", "default": default, "minimum": min, "maximum": max},
        "description": "clamped to the range"})
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn hotkey() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9]{48}$"})
}

fn sref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let auth = [401, 413, 422];
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "BitSota relay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Miners submit, validators poll and vote, SOTA consensus, admin. Wire-compatible with the reference relay. Every error is {\"detail\": str}; every response carries X-Request-ID; bodies over max_body_bytes get 413."
        },
        "paths": {
            "/health": {"get": op("Liveness", None, vec![], None,
                ok_schema(json!({"type": "object", "properties": {"status": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"}}})), &[])},
            "/version.json": {"get": op("Update manifest from the configuration", None, vec![], None,
                ok_schema(sref("VersionManifest")), &[404])},
            "/openapi.json": {"get": op("This document", None, vec![], None, ok_schema(json!({"type": "object"})), &[])},
            "/sota_threshold": {"get": op("Current global SOTA", None, vec![], None, ok_schema(sref("SotaThreshold")), &[])},
            "/sota-events": {"get": op("SOTA events, newest first, paginated", None,
                vec![query_int("page", 1, 1, i64::MAX), query_int("page_size", 50, 1, 100)], None,
                ok_schema(sref("PaginatedEvents")), &[400, 422])},
            "/submit_solution": {"post": op("Submit a result (one per miner; a new one replaces the old, keeping its id)", Some("miner"), vec![],
                Some(sref("Submission")),
                ok_schema(json!({"type": "object", "properties": {"result_id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted"]}}})),
                &[400, 401, 403, 413, 422, 429])},
            "/results": {"get": op("Results, newest first", Some("validator"),
                vec![query_int("limit", 256, 1, 1000), json!({"name": "task_id", "in": "query", "required": false, "schema": {"type": "string"}})],
                None, ok_schema(array(sref("Result"))), &[400, 401, 403, 422])},
            "/results/{miner_hotkey}": {"get": op("A miner's result (0 or 1)", Some("validator"),
                vec![path_param("miner_hotkey", hotkey())], None, ok_schema(array(sref("Result"))), &[400, 401, 403])},
            "/sota/vote": {"post": op("Vote for a SOTA candidate", Some("validator"), vec![],
                Some(sref("Vote")), ok_schema(sref("VoteResponse")), &[400, 401, 403, 413, 422])},
            "/sota/events": {"get": op("SOTA events by start_block descending", Some("validator"),
                vec![query_int("limit", 20, 1, 200)], None, ok_schema(array(sref("Event"))), &[400, 401, 403, 422])},
            "/blacklist/{miner_hotkey}": {"post": op("Vote to blacklist a miner", Some("validator"),
                vec![path_param("miner_hotkey", hotkey())], None,
                ok_schema(json!({"type": "object", "properties": {"status": {"type": "string"}}})), &[400, 401, 403])},
            "/invitation_code/generate/{count}": {"post": op("Generate invitation codes", Some("admin"),
                vec![path_param("count", json!({"type": "integer", "minimum": 1, "maximum": 1000}))], None,
                ok_schema(json!({"type": "object", "properties": {"data": array(json!({"type": "string", "pattern": "^[A-Z0-9]{8}$"}))}})),
                &[400, 401, 422])},
            "/invitation_code/list/{page}/{size}": {"get": op("List invitation codes in creation order", Some("admin"),
                vec![path_param("page", json!({"type": "integer", "minimum": 1})), path_param("size", json!({"type": "integer", "minimum": 1, "maximum": 1000}))],
                None, ok_schema(json!({"type": "object", "properties": {"data": array(sref("Invitation")), "count": {"type": "integer"}}})),
                &[400, 401, 422])},
            "/invitation_code/linked": {"get": op("The caller's linked code", Some("miner"), vec![], None,
                ok_schema(json!({"type": "object", "properties": {"data": {"type": "string", "nullable": true}}})), &[401])},
            "/invitation_code/link": {"post": op("Link an invitation code (data 1 = linked, 0 = unknown or used code)", Some("miner"), vec![],
                Some(json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}, "coldkey_address": {"type": "string", "nullable": true}}})),
                ok_schema(json!({"type": "object", "properties": {"data": {"type": "integer", "enum": [0, 1]}}})), &auth)},
            "/coldkey_address/update": {"post": op("Set the coldkey of the caller's invitation", Some("miner"), vec![],
                Some(json!({"type": "object", "required": ["coldkey_address"], "properties": {"coldkey_address": {"type": "string"}}})),
                ok_schema(json!({"type": "object", "properties": {"status": {"type": "string"}, "coldkey_address": {"type": "string"}, "invite_code": {"type": "string"}}})),
                &[400, 401, 404, 413, 422])},
            "/test/submit_solution": {"post": op("UID0 test submission (score optional)", Some("uid0"), vec![],
                Some(sref("Submission")),
                ok_schema(json!({"type": "object", "properties": {"test_submission_id": {"type": "string"}, "status": {"type": "string"}}})),
                &[400, 401, 403, 413, 422])},
            "/test/submissions": {"get": op("Oldest unclaimed test submissions; returning them claims them", Some("uid0"),
                vec![query_int("limit", 50, 1, 200)], None, ok_schema(array(sref("TestSubmission"))), &[400, 401, 403, 422])},
            "/admin/status": {"get": op("Status and request metrics", Some("admin"), vec![], None, ok_schema(sref("AdminStatus")), &[401])},
            "/admin/dashboard": {"get": {"summary": "Auto-refreshing HTML status page", "x-role": "admin",
                "security": [{"AdminToken": []}, {"DashboardBasic": []}],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}, "401": error_ref()}}}
        },
        "components": {
            "securitySchemes": {
                "Key": {"type": "apiKey", "in": "header", "name": "X-Key", "description": "signer's SS58 hotkey"},
                "Timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp", "description": "the signed message: miners auth:<unix s>, validators <unix s>; within auth_max_skew_s of server time"},
                "Signature": {"type": "apiKey", "in": "header", "name": "X-Signature", "description": "lowercase hex sr25519 signature (context 'substrate') of X-Timestamp; each signature is accepted once"},
                "AdminToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "DashboardBasic": {"type": "http", "scheme": "basic"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
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
                    "finalized_event": {"allOf": [sref("Event")], "nullable": true}}},
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
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_exactly_the_served_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = super::super::http::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
        // Every $ref resolves.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(doc["components"]["schemas"][&name].is_object(), "{name}");
        }
    }
}
