//! Miners' submissions (relay.md §3) and UID0's test submissions.

use super::super::store::{ResultRec, TestSubRec};
use super::super::submit::{self, Facts};
use super::roles::{Miner, Uid0};
use super::state::{iso, now_s, now_us};
use super::{doc, Body, RelayDialect, Reply, Shared};
use crate::http::{array, ok, query_int, schema_ref, Api, Json, Op, Params};
use crate::protocol::wire::{SubmitAccepted, SubmitSolution, TestAccepted, TestSubmission};
use poem::{handler, Request};
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.post(
        "/submit_solution",
        Op::new("Submit a result (one per miner; a new one replaces the old, keeping its id)")
            .security("miner", doc::signed())
            .body(schema_ref("Submission"))
            .ok(json!({"type": "object", "properties": {"result_id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted"]}}}))
            .errors(&[400, 401, 403, 413, 422, 429]),
        submit_solution,
    )
    .post(
        "/test/submit_solution",
        Op::new("UID0 test submission (score optional)")
            .security("uid0", doc::signed())
            .body(schema_ref("Submission"))
            .ok(json!({"type": "object", "properties": {"test_submission_id": {"type": "string"}, "status": {"type": "string"}}}))
            .errors(&[400, 401, 403, 413, 422]),
        test_submit,
    )
    .get(
        "/test/submissions",
        Op::new("Oldest unclaimed test submissions; returning them claims them")
            .security("uid0", doc::signed())
            .params(vec![query_int("limit", 50, 1, 200)])
            .ok(array(schema_ref("TestSubmission")))
            .errors(&[400, 401, 403, 422]),
        test_submissions,
    )
}

/// The signature header as the miner sent it, stored so validators can verify it.
fn signature(req: &Request) -> String {
    req.header(crate::keys::HEADER_SIGNATURE)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[handler]
async fn submit_solution(
    req: &Request,
    Miner(signer): Miner,
    Json(sub, ..): Body<SubmitSolution>,
    relay: Shared<'_>,
) -> Reply {
    let relay = *relay;
    let score = submit::score(&sub, true)?.unwrap_or_default();
    let content = submit::check_algorithm(&sub.algorithm_result, &relay.budget);
    let hash = submit::result_hash(&sub);
    let hotkey = signer.hotkey;
    let invited = relay.cfg.test_mode || relay.db.linked_code(&hotkey)?.is_some();
    let blacklist_votes = relay.db.blacklist_votes(&hotkey)?;
    let now_s = now_s();
    let record = ResultRec {
        id: submit::result_id(&hotkey, &sub.task_id, now_s),
        miner_hotkey: hotkey.clone(),
        task_id: sub.task_id.clone(),
        algorithm_result: submit::algorithm_result_text(&sub),
        score,
        timestamp_us: 0,
        signature: signature(req),
        timestamp_message: signer.message,
        seq: 0,
    };
    let stored = {
        let mut tracker = relay.submissions.lock();
        let facts = Facts {
            test_mode: relay.cfg.test_mode,
            invited,
            blacklist_votes,
            blacklist_threshold: relay.cfg.blacklist_votes,
            duplicate: tracker.is_duplicate(&hash, now_s, relay.cfg.duplicate_window_s),
            submissions_last_hour: tracker.last_hour(&hotkey, now_s),
            max_per_hour: relay.cfg.max_submissions_per_hour,
            duplicate_window_s: relay.cfg.duplicate_window_s,
            sota: relay.sota().value,
            content,
        };
        submit::check(score, &facts)?;
        // Stamped under the lock, so that newest-first order and timestamps agree.
        let stored = relay.db.put_result(ResultRec {
            timestamp_us: now_us(),
            ..record
        })?;
        tracker.record(&hotkey, hash, now_s, relay.cfg.max_submissions_per_hour > 0);
        stored
    };
    relay.commit().await?;
    tracing::info!(miner = %hotkey, result_id = %stored.id, score, task_id = %stored.task_id, "relay: submission accepted");
    ok(&SubmitAccepted {
        result_id: stored.id,
        status: "accepted".into(),
    })
}

#[handler]
async fn test_submit(
    req: &Request,
    Uid0(signer): Uid0,
    Json(sub, ..): Body<SubmitSolution>,
    relay: Shared<'_>,
) -> Reply {
    let relay = *relay;
    let score = submit::score(&sub, false)?;
    let now = now_us();
    let id = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(
            format!("test:{}:{}:{}", signer.hotkey, sub.task_id, now / 1000).as_bytes(),
        );
        hex::encode(d)[..16].to_string()
    };
    let rec = relay.db.add_test(TestSubRec {
        id,
        submitter_hotkey: signer.hotkey.clone(),
        task_id: sub.task_id.clone(),
        algorithm_result: submit::algorithm_result_text(&sub),
        score,
        created_us: now,
        claimed_us: None,
        claimed_by: None,
        signature: signature(req),
        timestamp_message: signer.message,
    })?;
    relay.commit().await?;
    tracing::info!(uid0 = %signer.hotkey, id = %rec.id, "relay: test submission stored");
    ok(&TestAccepted {
        test_submission_id: rec.id,
        status: "accepted".into(),
    })
}

fn test_submission(t: TestSubRec) -> TestSubmission {
    TestSubmission {
        id: t.id,
        submitter_hotkey: t.submitter_hotkey,
        task_id: t.task_id,
        algorithm_result: t.algorithm_result,
        score: t.score,
        created_at: iso(t.created_us),
        claimed_at: t.claimed_us.map(iso),
        claimed_by: t.claimed_by,
        signature: t.signature,
        timestamp_message: t.timestamp_message,
    }
}

#[handler]
async fn test_submissions(Uid0(signer): Uid0, q: Params, relay: Shared<'_>) -> Reply {
    let relay = *relay;
    let limit = q.int::<RelayDialect>("limit", 50, 1, 200)? as usize;
    let claimed = {
        let _serial = relay.test_lock.lock();
        relay.db.claim_tests(limit, &signer.hotkey, now_us())?
    };
    relay.commit().await?;
    let out: Vec<TestSubmission> = claimed.into_iter().map(test_submission).collect();
    ok(&out)
}
