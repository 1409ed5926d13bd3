//! The relay over HTTP against the real daemon: every endpoint's shapes and status codes,
//! authentication roles and hardening, malformed input.

use crate::common;
use crate::relay_support;

use bitsota::keys::{relay_miner_headers, Keypair, SignedHeaders};
use bitsota::protocol::client::ClientError;
use common::{Daemon, Opts};
use relay_support::{now, Api, As};
use serde_json::json;

fn daemon(opts: Opts) -> (Daemon, Api) {
    let d = Daemon::start(opts);
    let api = Api::new(&d.relay);
    (d, api)
}

#[test]
fn public_endpoints_and_request_ids() {
    let (_d, api) = daemon(Opts::default().env("DEFAULT_SOTA_THRESHOLD", "0.25"));
    let h = api.get("/health", As::Nobody);
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (200, Some("healthy"))
    );
    let s = api.get("/sota_threshold", As::Nobody);
    assert_eq!(s.status, 200);
    assert_eq!(s.body["task_type"], "global");
    assert_eq!(s.body["sota_threshold"], 0.25);
    assert_eq!(s.body["cached"], true);
    assert!(s.body["updated_at"].as_str().unwrap().ends_with('Z'));
    // Without a configured manifest, the appliance's own, in the reference's keys.
    let v = api.get("/version.json", As::Nobody);
    assert_eq!(v.status, 200, "{:?}", v.body);
    for key in ["version", "versionCode", "desc", "mac", "linux", "windows"] {
        assert!(v.body.get(key).is_some(), "no {key} in {:?}", v.body);
    }
    assert_eq!(v.body["version"], env!("CARGO_PKG_VERSION"));
    assert!(v.body["versionCode"].as_i64() > Some(0), "{:?}", v.body);
    let e = api.get("/sota-events?page=0&page_size=1000", As::Nobody);
    assert_eq!(e.status, 200);
    assert_eq!(
        (e.body["page"].as_u64(), e.body["page_size"].as_u64()),
        (Some(1), Some(100)),
        "clamped"
    );
    assert_eq!(e.body["total"], 0);
    assert_eq!(api.get("/sota-events?page=x", As::Nobody).status, 422);
    // Request ids are echoed, else generated.
    let echoed = api.send(
        api.client
            .get(api.url("/health"))
            .header("X-Request-ID", "abc-123"),
    );
    assert_eq!(echoed.request_id, "abc-123");
    assert_ne!(h.request_id, s.request_id);
    // Unknown routes and wrong methods are JSON errors too.
    assert_eq!(api.get("/nope", As::Nobody).status, 404);
    assert_eq!(api.get("/submit_solution", As::Nobody).status, 405);
    // The OpenAPI document lists the routes.
    let doc = api.get("/openapi.json", As::Nobody);
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/sota/vote"]["post"].is_object());
}

#[test]
fn version_manifest_comes_from_config() {
    let (_d, api) = daemon(Opts::default().env(
        "BITSOTA_RELAY_VERSION_MANIFEST",
        r#"{ version = "1.2.3", versionCode = 7, linux = "https://x/l" }"#,
    ));
    let v = api.get("/version.json", As::Nobody);
    assert_eq!(v.status, 200, "{:?}", v.body);
    assert_eq!(v.body["version"], "1.2.3");
    assert_eq!(v.body["versionCode"], 7);
    assert_eq!(v.body["linux"], "https://x/l");
}

#[test]
fn submissions_one_result_per_miner_with_stable_id() {
    let (_d, api) = daemon(Opts::default());
    let miner = Keypair::generate();
    let validator = Keypair::generate();
    let a = api.submit(&miner, "task-a", 0.4, 1);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["status"], "accepted");
    let id = a.body["result_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let b = api.submit(&miner, "task-b", 0.6, 2);
    assert_eq!(b.status, 200);
    assert_eq!(b.body["result_id"], id.as_str(), "the id is kept");
    let other = Keypair::generate();
    assert_eq!(api.submit(&other, "task-c", 0.5, 3).status, 200);

    let all = api.get("/results", As::Validator(&validator));
    assert_eq!(all.status, 200);
    let rows = all.body.as_array().unwrap();
    assert_eq!(rows.len(), 2, "one result per miner");
    assert_eq!(rows[0]["miner_hotkey"], other.ss58(), "newest first");
    let mine = &rows[1];
    assert_eq!(mine["id"], id.as_str());
    assert_eq!(mine["task_id"], "task-b");
    assert_eq!(mine["score"], 0.6);
    assert_eq!(mine["validator_verified"], serde_json::Value::Null);
    assert_eq!(mine["coldkey_address"], serde_json::Value::Null);
    let inner: serde_json::Value =
        serde_json::from_str(mine["algorithm_result"].as_str().unwrap()).unwrap();
    assert_eq!(inner["metadata"]["salt"], 2);
    // The miner's signature verifies over timestamp_message (what validators check).
    bitsota::keys::verify_hex(
        &miner.ss58(),
        mine["timestamp_message"].as_str().unwrap(),
        mine["signature"].as_str().unwrap(),
    )
    .unwrap();
    assert!(mine["timestamp"].as_str().unwrap().ends_with('Z'));

    let limited = api.get("/results?limit=1", As::Validator(&validator));
    assert_eq!(limited.body.as_array().unwrap().len(), 1);
    let by_task = api.get("/results?task_id=task-c", As::Validator(&validator));
    assert_eq!(by_task.body.as_array().unwrap().len(), 1);
    let one = api.get(
        &format!("/results/{}", miner.ss58()),
        As::Validator(&validator),
    );
    assert_eq!(one.body.as_array().unwrap().len(), 1);
    let none = api.get(
        &format!("/results/{}", Keypair::generate().ss58()),
        As::Validator(&validator),
    );
    assert_eq!((none.status, none.body.as_array().unwrap().len()), (200, 0));
    assert_eq!(
        api.get("/results/short", As::Validator(&validator)).status,
        400
    );
    assert_eq!(
        api.get("/results?limit=abc", As::Validator(&validator))
            .status,
        422
    );
}

#[test]
fn submission_rejections_are_4xx_with_reasons() {
    let (_d, api) = daemon(Opts::default().env("DEFAULT_SOTA_THRESHOLD", "0.5"));
    let m = Keypair::generate();
    let post = |body: serde_json::Value| api.post("/submit_solution", As::Miner(&m), &body);
    let cases = [
        (
            json!({"task_id": "t", "algorithm_result": {}}),
            400,
            "score is required",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {}, "score": 9.5}),
            400,
            "finite",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {}, "score": "0.9"}),
            422,
            "number",
        ),
        (
            json!({"task_id": 5, "algorithm_result": {}, "score": 0.9}),
            422,
            "task_id",
        ),
        (
            json!({"algorithm_result": {}, "score": 0.9}),
            422,
            "task_id",
        ),
        (
            json!({"task_id": "t", "algorithm_result": [1], "score": 0.9}),
            422,
            "object",
        ),
        (
            json!({"task_id": "t", "score": 0.9}),
            422,
            "algorithm_result",
        ),
        (json!([1, 2]), 422, "object"),
        (
            json!({"task_id": "t", "algorithm_result": {"k": 1}, "score": 0.4}),
            400,
            "below the SOTA",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {"task_type": "chess"}, "score": 0.9}),
            400,
            "unknown task_type",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {"task_type": 3}, "score": 0.9}),
            400,
            "task_type",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {"algorithm_dsl": "# setup\ns0 = frob(s1)\n"}, "score": 0.9}),
            400,
            "line 2, column",
        ),
        (
            json!({"task_id": "t", "algorithm_result": {"algorithm_dsl": 42}, "score": 0.9}),
            400,
            "algorithm_dsl",
        ),
    ];
    for (body, status, needle) in cases {
        let a = post(body.clone());
        assert_eq!(a.status, status, "{body}: {:?}", a.body);
        assert!(a.detail().contains(needle), "{body}: {}", a.detail());
    }
    let bad_json = api.post_raw(
        "/submit_solution",
        As::Miner(&m),
        b"{\"task_id\": ".to_vec(),
    );
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.detail().contains("malformed JSON"));
    // 10 MB body: refused with 413 (declared length), never read into memory.
    let big = vec![b' '; 10 * 1024 * 1024];
    assert_eq!(
        api.post_raw("/submit_solution", As::Miner(&m), big).status,
        413
    );
    // Chunked (no Content-Length): the limit is enforced while reading.
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b' '; 300 * 1024]));
    let h = relay_miner_headers(&m, now());
    let mut rb = api.client.post(api.url("/submit_solution")).body(chunked);
    for (k, v) in h.pairs() {
        rb = rb.header(k, v);
    }
    let a = api.send(rb);
    assert_eq!(a.status, 413, "{:?}", a.body);
    // A strict-valid program is accepted.
    let good = json!({"task_id": "t", "score": 0.6, "algorithm_result": {
        "task_type": "scalar_linear", "input_dim": 16,
        "algorithm_dsl": "# setup\ns1 = uniform(0.5)\n# predict\ns0 = s1 + s1\n# learn\n"}});
    let a = post(good);
    assert_eq!(a.status, 200, "{:?}", a.body);
    // Equal to the SOTA is accepted; the same algorithm again (any miner) is a duplicate.
    let body = json!({"task_id": "t", "algorithm_result": {"a": 1, "b": 2}, "score": 0.5});
    assert_eq!(post(body).status, 200);
    let other = Keypair::generate();
    let dup = api.post(
        "/submit_solution",
        As::Miner(&other),
        &json!({"task_id": "u", "algorithm_result": {"b": 2, "a": 1}, "score": 0.7}),
    );
    assert_eq!(dup.status, 400);
    assert!(dup.detail().contains("Duplicate"));
}

#[test]
fn auth_hardening() {
    let (_d, api) = daemon(Opts::default());
    let kp = Keypair::generate();
    let body = json!({"task_id": "t", "algorithm_result": {"x": 1}, "score": 0.1});
    // Missing headers.
    let a = api.post("/submit_solution", As::Nobody, &body);
    assert_eq!(a.status, 401);
    assert!(a.detail().contains("X-Key"), "{}", a.detail());
    let h = relay_miner_headers(&kp, now());
    let partial = api.send(
        api.client
            .post(api.url("/submit_solution"))
            .header("X-Key", &h.key)
            .header("X-Signature", &h.signature)
            .json(&body),
    );
    assert_eq!(partial.status, 401);
    assert!(partial.detail().contains("X-Timestamp"));
    // Forged: another key claims this signature.
    let forged = SignedHeaders {
        key: Keypair::generate().ss58(),
        ..relay_miner_headers(&kp, now())
    };
    assert_eq!(
        api.post("/submit_solution", As::Headers(&forged), &body)
            .status,
        401
    );
    // Malformed signature and address.
    let malformed = SignedHeaders {
        signature: "zz".into(),
        ..relay_miner_headers(&kp, now())
    };
    assert_eq!(
        api.post("/submit_solution", As::Headers(&malformed), &body)
            .status,
        401
    );
    let bad_key = SignedHeaders {
        key: "not-an-address".into(),
        ..relay_miner_headers(&kp, now())
    };
    assert_eq!(
        api.post("/submit_solution", As::Headers(&bad_key), &body)
            .status,
        401
    );
    // Stale timestamp (both directions).
    for t in [now() - 400, now() + 400] {
        let stale = relay_miner_headers(&kp, t);
        let a = api.post("/submit_solution", As::Headers(&stale), &body);
        assert_eq!(a.status, 401);
        assert!(a.detail().contains("stale"), "{}", a.detail());
    }
    // Replay: the same signature twice.
    let once = relay_miner_headers(&kp, now());
    assert_eq!(
        api.post("/submit_solution", As::Headers(&once), &body)
            .status,
        200
    );
    let again = api.post("/submit_solution", As::Headers(&once), &body);
    assert_eq!(again.status, 401);
    assert!(again.detail().contains("replay"), "{}", again.detail());
    // Validator-only and admin-only endpoints refuse anonymous callers.
    assert_eq!(api.get("/results", As::Nobody).status, 401);
    assert_eq!(api.get("/sota/events", As::Nobody).status, 401);
    assert_eq!(api.get("/admin/status", As::Nobody).status, 401);
    assert_eq!(
        api.post("/invitation_code/generate/2", As::Miner(&kp), &json!({}))
            .status,
        401
    );
}

#[test]
fn production_mode_roles_invitations_blacklist_and_limits() {
    let allowed = Keypair::generate();
    let allowed2 = Keypair::generate();
    let uid0 = Keypair::generate();
    let list = format!("[\"{}\", \"{}\"]", allowed.ss58(), allowed2.ss58());
    let (_d, api) = daemon(
        Opts::default()
            .env("BITSOTA_TEST_MODE", "false")
            .env("BITSOTA_RELAY_VALIDATORS", &list)
            .env("ADMIN_AUTH_TOKEN", "s3cret")
            .env("ADMIN_DASHBOARD_PASSWORD", "pw")
            .env("RELAY_UID0_HOTKEY", &uid0.ss58())
            .env("BITSOTA_RELAY_MAX_SUBMISSIONS_PER_HOUR", "2"),
    );
    let admin = |rb: reqwest::blocking::RequestBuilder| rb.header("X-Auth-Token", "s3cret");
    let stranger = Keypair::generate();
    // Non-validator: valid signature, wrong role.
    let r = api.get("/results", As::Validator(&stranger));
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(api.get("/results", As::Validator(&allowed)).status, 200);
    // Non-UID0 on the test queue.
    let t = api.get("/test/submissions", As::Validator(&allowed));
    assert_eq!(t.status, 403);
    assert!(t.detail().contains("UID0"));

    // Invitation needed to submit.
    let miner = Keypair::generate();
    let a = api.submit(&miner, "t", 0.3, 1);
    assert_eq!(a.status, 403);
    assert_eq!(a.detail(), "Please register your invitation code first");
    // Admin: token, wrong token, Basic.
    let gen = api.send(admin(
        api.client.post(api.url("/invitation_code/generate/3")),
    ));
    assert_eq!(gen.status, 200, "{:?}", gen.body);
    let codes: Vec<String> = gen.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 3);
    assert!(codes.iter().all(|c| c.len() == 8
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())));
    let wrong = api.send(
        api.client
            .post(api.url("/invitation_code/generate/3"))
            .header("X-Auth-Token", "nope"),
    );
    assert_eq!(wrong.status, 401);
    for bad in ["0", "1001"] {
        let r = api.send(admin(
            api.client
                .post(api.url(&format!("/invitation_code/generate/{bad}"))),
        ));
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = api.send(admin(
        api.client.post(api.url("/invitation_code/generate/x")),
    ));
    assert_eq!(r.status, 422);
    // Linking.
    let linked = api.get("/invitation_code/linked", As::Miner(&miner));
    assert_eq!(linked.body["data"], serde_json::Value::Null);
    let unknown = api.post(
        "/invitation_code/link",
        As::Miner(&miner),
        &json!({"code": "ZZZZZZZZ"}),
    );
    assert_eq!(unknown.body["data"], 0);
    let coldkey = Keypair::generate().ss58();
    let ok = api.post(
        "/invitation_code/link",
        As::Miner(&miner),
        &json!({"code": codes[0], "coldkey_address": coldkey}),
    );
    assert_eq!((ok.status, ok.body["data"].as_i64()), (200, Some(1)));
    let used = api.post(
        "/invitation_code/link",
        As::Miner(&Keypair::generate()),
        &json!({"code": codes[0]}),
    );
    assert_eq!(used.body["data"], 0, "a used code cannot be linked again");
    assert_eq!(
        api.get("/invitation_code/linked", As::Miner(&miner)).body["data"],
        codes[0].as_str()
    );
    assert_eq!(
        api.post(
            "/invitation_code/link",
            As::Miner(&miner),
            &json!({"nocode": 1})
        )
        .status,
        422
    );
    let list = api.send(
        api.client
            .get(api.url("/invitation_code/list/1/2"))
            .basic_auth("admin", Some("pw")),
    );
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body["count"], 3);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], codes[0].as_str(), "creation order");
    assert_eq!(data[0]["miner_hotkey"], miner.ss58());
    assert_eq!(data[0]["coldkey_address"], coldkey.as_str());
    let bad_basic = api.send(
        api.client
            .get(api.url("/invitation_code/list/1/2"))
            .basic_auth("admin", Some("wrong")),
    );
    assert_eq!(bad_basic.status, 401);
    // Coldkey update: a linked miner; an unlinked one gets 404 outside test mode.
    let ck2 = Keypair::generate().ss58();
    let up = api.post(
        "/coldkey_address/update",
        As::Miner(&miner),
        &json!({"coldkey_address": ck2}),
    );
    assert_eq!(up.status, 200);
    assert_eq!(
        (up.body["status"].as_str(), up.body["invite_code"].as_str()),
        (Some("success"), Some(codes[0].as_str()))
    );
    let nolink = api.post(
        "/coldkey_address/update",
        As::Miner(&Keypair::generate()),
        &json!({"coldkey_address": ck2}),
    );
    assert_eq!(nolink.status, 404);

    // Now the miner may submit; the result carries the coldkey.
    assert_eq!(api.submit(&miner, "t", 0.3, 1).status, 200);
    let rows = api.get(
        &format!("/results/{}", miner.ss58()),
        As::Validator(&allowed),
    );
    assert_eq!(rows.body[0]["coldkey_address"], ck2.as_str());
    // Hourly limit (2).
    assert_eq!(api.submit(&miner, "t", 0.3, 2).status, 200);
    let limited = api.submit(&miner, "t", 0.3, 3);
    assert_eq!(limited.status, 429, "{:?}", limited.body);

    // Blacklist: one vote per validator, two votes blacklist.
    let path = format!("/blacklist/{}", miner.ss58());
    let b1 = api.post(&path, As::Validator(&allowed), &json!({}));
    assert_eq!(
        (b1.status, b1.body["status"].as_str()),
        (200, Some("blacklist vote recorded"))
    );
    let again = api.post(&path, As::Validator(&allowed), &json!({}));
    assert_eq!(again.status, 400);
    assert_eq!(
        again.detail(),
        "Validator has already voted to blacklist this miner"
    );
    assert_eq!(
        api.post(&path, As::Validator(&stranger), &json!({})).status,
        403
    );
    assert_eq!(
        api.post("/blacklist/bad", As::Validator(&allowed), &json!({}))
            .status,
        400
    );
    assert_eq!(
        api.post(&path, As::Validator(&allowed2), &json!({})).status,
        200
    );
    let banned = api.submit(&miner, "t", 0.3, 4);
    assert_eq!(banned.status, 403);
    assert!(banned.detail().contains("blacklisted"));

    // UID0 test queue: submit (score optional), claim-on-read.
    for i in 0..3 {
        let body = json!({"task_id": format!("test-{i}"), "algorithm_result": {"i": i}});
        let r = api.post("/test/submit_solution", As::Validator(&uid0), &body);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["status"], "accepted");
        assert_eq!(r.body["test_submission_id"].as_str().unwrap().len(), 16);
    }
    let first = api.get("/test/submissions?limit=2", As::Validator(&uid0));
    let rows = first.body.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["task_id"], "test-0", "oldest first");
    assert_eq!(rows[0]["claimed_by"], uid0.ss58());
    assert_eq!(rows[0]["score"], serde_json::Value::Null);
    let rest = api.get("/test/submissions", As::Validator(&uid0));
    let rows = rest.body.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["task_id"], "test-2");
    assert_eq!(
        api.get("/test/submissions", As::Validator(&uid0)).body,
        json!([])
    );
    // Test submissions are not results.
    let results = api.get("/results", As::Validator(&allowed)).body;
    assert!(results
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["miner_hotkey"] == miner.ss58()));
}

#[test]
fn test_mode_invitations_and_coldkeys() {
    let (_d, api) = daemon(Opts::default());
    let m = Keypair::generate();
    let r = api.post(
        "/invitation_code/link",
        As::Miner(&m),
        &json!({"code": "TESTTEST1"}),
    );
    assert_eq!(r.body["data"], 1, "the test code is created on first use");
    let other = Keypair::generate();
    let up = api.post(
        "/coldkey_address/update",
        As::Miner(&other),
        &json!({"coldkey_address": "5xyz"}),
    );
    assert_eq!(up.status, 200);
    let code = up.body["invite_code"].as_str().unwrap();
    assert_ne!(code, "TESTTEST1", "the test code is taken: a fresh one");
    assert_eq!(
        api.get("/invitation_code/linked", As::Miner(&other)).body["data"],
        code
    );
}

#[test]
fn admin_status_and_dashboard() {
    let (_d, api) = daemon(Opts::default());
    let m = Keypair::generate();
    assert_eq!(api.submit(&m, "t", 0.1, 1).status, 200);
    api.get("/sota_threshold", As::Nobody);
    let st = api.send(
        api.client
            .get(api.url("/admin/status"))
            .header("X-Auth-Token", "dev"),
    );
    assert_eq!(st.status, 200);
    assert_eq!(st.body["status"], "healthy");
    assert_eq!(st.body["db_ok"], true);
    let m1 = &st.body["metrics"]["last_1m"];
    assert!(m1["miner"].as_u64().unwrap() >= 1, "{m1}");
    assert!(m1["public"].as_u64().unwrap() >= 1, "{m1}");
    assert!(st.body["metrics"]["last_24h"]["total"].as_u64().unwrap() >= 2);
    assert_eq!(st.body["metrics"]["errors_5xx_total"], 0);
    let page = api
        .client
        .get(api.url("/admin/dashboard"))
        .basic_auth("admin", Some("dev"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().unwrap();
    assert!(html.contains("http-equiv=\"refresh\""));
    assert!(html.contains("id=\"last_1m-miner\""));
    let by_token = api
        .client
        .get(api.url("/admin/dashboard"))
        .header("X-Auth-Token", "dev")
        .send()
        .unwrap();
    assert_eq!(by_token.status(), 200);
    let denied = api.client.get(api.url("/admin/dashboard")).send().unwrap();
    assert_eq!(denied.status(), 401);
    assert!(denied.headers().get("www-authenticate").is_some());
}

/// The one relay client (`protocol::relay_client`) against the real relay: every typed
/// call reads the server's bodies, refusals carry the status and `detail`, a dead relay
/// is a transient error, and floats come back with the bits they were sent with.
#[test]
fn the_typed_client_speaks_the_relay_protocol() {
    use bitsota::protocol::relay_client::RelayClient;
    use bitsota::protocol::wire::{InviteLink, SotaVote, SubmitSolution};
    let (d, _api) = daemon(Opts::default().env("DEFAULT_SOTA_THRESHOLD", "0.25"));
    let miner_kp = Keypair::generate();
    let miner = RelayClient::new(&d.relay, miner_kp.clone());
    let v1 = RelayClient::new(&d.relay, Keypair::generate());
    let v2 = RelayClient::new(&d.relay, Keypair::generate());
    assert_eq!(miner.sota_threshold().unwrap(), 0.25);
    assert_eq!(miner.latest_sota_event().unwrap(), None);
    assert_eq!(miner.sota_program("scalar_linear", 16).unwrap(), None);

    // Test mode: the test code links.
    assert_eq!(miner.linked_code().unwrap(), None);
    let link = InviteLink {
        code: "TESTTEST1".into(),
        coldkey_address: None,
    };
    assert!(miner.link_code(&link).unwrap());
    assert_eq!(miner.linked_code().unwrap().as_deref(), Some("TESTTEST1"));

    let dsl = "# setup\ns1 = uniform(0.5)\n# predict\ns0 = s1 + s1\n# learn\n";
    let score = 0.1 + 0.2; // 0.30000000000000004: needs all 17 digits
    let mut algorithm_result = serde_json::Map::new();
    algorithm_result.insert("task_type".into(), json!("scalar_linear"));
    algorithm_result.insert("input_dim".into(), json!(16));
    algorithm_result.insert("algorithm_dsl".into(), json!(dsl));
    let body = SubmitSolution {
        task_id: "t".into(),
        algorithm_result,
        score: Some(score),
    };
    let accepted = miner.submit(&body).unwrap();
    assert_eq!(
        (accepted.status.as_str(), accepted.result_id.len()),
        ("accepted", 16)
    );
    // The same algorithm again is a duplicate: a refusal with status and detail.
    match miner.submit(&body) {
        Err(e @ ClientError::Status { status: 400, .. }) => {
            assert!(e.detail().contains("Duplicate"), "{e}");
            assert!(!e.is_transient());
        }
        other => panic!("expected a 400, got {other:?}"),
    }

    let raw = v1.results(10).unwrap();
    assert_eq!(raw.len(), 1);
    let result = v1.result_of(&miner_kp.ss58()).unwrap().unwrap();
    assert_eq!(result.id, accepted.result_id);
    assert_eq!(result.score.to_bits(), score.to_bits());
    assert_eq!(v1.result_of(&Keypair::generate().ss58()).unwrap(), None);

    let vote = SotaVote {
        miner_hotkey: miner_kp.ss58(),
        score,
        seen_block: 150,
        result_id: Some(accepted.result_id.clone()),
    };
    let mut answer = v1.vote(&vote).unwrap();
    assert_eq!(answer.votes_for_candidate, 1);
    if answer.votes_needed > 1 {
        assert_eq!(answer.status, "vote_recorded");
        assert_eq!(answer.finalized_event, None);
        answer = v2.vote(&vote).unwrap();
    }
    let second = answer;
    assert_eq!(second.status, "finalized");
    assert_eq!(second.current_sota.to_bits(), score.to_bits());
    let event = second.finalized_event.unwrap();
    assert_eq!(event.score.to_bits(), score.to_bits());
    assert_eq!(v1.sota_events(1).unwrap(), vec![event]);
    assert_eq!(miner.sota_threshold().unwrap().to_bits(), score.to_bits());
    let public = miner.latest_sota_event().unwrap().unwrap();
    assert_eq!(public.miner_hotkey, miner_kp.ss58());
    let program = miner.sota_program("scalar_linear", 16).unwrap().unwrap();
    assert_eq!(
        (program.dsl.as_str(), program.miner.as_str()),
        (dsl, miner_kp.ss58().as_str())
    );
    assert_eq!(program.score.to_bits(), score.to_bits());
    assert_eq!(
        miner.sota_program("scalar_linear", 8).unwrap(),
        None,
        "another input size"
    );

    assert_eq!(
        v1.blacklist(&miner_kp.ss58()).unwrap().status,
        "blacklist vote recorded"
    );
    let again = v1.blacklist(&miner_kp.ss58()).unwrap_err();
    assert_eq!(again.status(), Some(400));
    assert_eq!(
        again.detail(),
        "Validator has already voted to blacklist this miner"
    );

    // Nothing listens on port 1: transient, and no status.
    let dead = RelayClient::new("http://127.0.0.1:1/", Keypair::generate());
    let e = dead.sota_threshold().unwrap_err();
    assert!(
        matches!(e, ClientError::Transport { .. }) && e.is_transient(),
        "{e}"
    );
}
