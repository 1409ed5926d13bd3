//! Validators' SOTA votes (relay.md §4), the finalized events, and blacklist votes.

use super::super::consensus::{self, Vote};
use super::super::store::EventRec;
use super::roles::Validator;
use super::state::{iso, now_us};
use super::{check_hotkey, doc, Body, RelayDialect, Reply, Shared};
use crate::http::{array, ok, path_param, query_int, schema_ref, Api, Json, Op, Params};
use crate::protocol::wire::{SotaEvent, SotaVote, StatusAnswer, VoteAnswer};
use poem::handler;
use poem::web::Path;
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.post(
        "/sota/vote",
        Op::new("Vote for a SOTA candidate")
            .security("validator", doc::signed())
            .body(schema_ref("Vote"))
            .ok(schema_ref("VoteResponse"))
            .errors(&[400, 401, 403, 413, 422]),
        sota_vote,
    )
    .get(
        "/sota/events",
        Op::new("SOTA events by start_block descending")
            .security("validator", doc::signed())
            .params(vec![query_int("limit", 20, 1, 200)])
            .ok(array(schema_ref("Event")))
            .errors(&[400, 401, 403, 422]),
        sota_events,
    )
    .post(
        "/blacklist/{miner_hotkey}",
        Op::new("Vote to blacklist a miner")
            .security("validator", doc::signed())
            .params(vec![path_param("miner_hotkey", doc::hotkey())])
            .ok(json!({"type": "object", "properties": {"status": {"type": "string"}}}))
            .errors(&[400, 401, 403]),
        blacklist,
    )
}

/// A finalized event as the wire carries it.
pub fn event(e: &EventRec) -> SotaEvent {
    SotaEvent {
        id: e.id,
        miner_hotkey: e.miner_hotkey.clone(),
        score: e.score,
        score_int: e.score_int,
        result_id: e.result_id.clone(),
        decision_block: e.decision_block,
        start_block: e.start_block,
        end_block: e.end_block,
        alignment_mod: e.alignment_mod,
        t2_blocks: e.t2_blocks,
        created_at: iso(e.created_us),
    }
}

#[handler]
async fn sota_vote(
    Validator(signer): Validator,
    Json(body, ..): Body<SotaVote>,
    relay: Shared<'_>,
) -> Reply {
    let relay = *relay;
    check_hotkey(&body.miner_hotkey, "Invalid miner hotkey format")?;
    let vote = Vote {
        validator_hotkey: signer.hotkey.clone(),
        miner_hotkey: body.miner_hotkey,
        score: body.score,
        score_int: 0,
        result_id: body.result_id,
        seen_block: body.seen_block,
        timestamp_us: now_us(),
    };
    let (decision, event_rec, current) = {
        let _serial = relay.vote_lock.lock();
        let sota = relay.sota();
        let pending = relay.db.pending_votes()?;
        let d = consensus::decide_vote(&relay.params, sota.value, &pending, &vote)?;
        if let Some(old) = &d.expired {
            tracing::info!(validator = %old.validator_hotkey, miner = %old.miner_hotkey,
                seen_block = old.seen_block, "relay: vote from an earlier round expired");
        }
        match (&d.write, d.finalize) {
            (Some(w), Some(decision_block)) => {
                let window = consensus::window(&relay.params, decision_block);
                let (event, new_sota) = relay.db.finalize(
                    w,
                    decision_block,
                    window,
                    &relay.params,
                    vote.timestamp_us,
                )?;
                *relay.sota.write() = new_sota;
                (d, Some(event), new_sota.value)
            }
            (Some(w), None) => {
                relay.db.put_vote(w)?;
                (d, None, sota.value)
            }
            (None, _) => (d, None, sota.value),
        }
    };
    relay.commit().await?;
    tracing::info!(validator = %vote.validator_hotkey, miner = %vote.miner_hotkey, score = vote.score,
        seen_block = vote.seen_block, status = decision.status.as_str(),
        votes = decision.votes_for_candidate, "relay: vote");
    if let Some(e) = &event_rec {
        relay.prom.sota_events.inc();
        relay.prom.sota.with_label_values(&["global"]).set(e.score);
        tracing::info!(event_id = e.id, miner = %e.miner_hotkey, score = e.score, start_block = e.start_block,
            end_block = e.end_block, "relay: SOTA event finalized");
    }
    ok(&VoteAnswer {
        status: decision.status.as_str().into(),
        votes_for_candidate: decision.votes_for_candidate,
        votes_needed: relay.params.consensus_votes,
        current_sota: current,
        finalized_event: event_rec.as_ref().map(event),
    })
}

#[handler]
fn sota_events(_: Validator, q: Params, relay: Shared<'_>) -> Reply {
    let limit = q.int::<RelayDialect>("limit", 20, 1, 200)? as usize;
    let events: Vec<SotaEvent> = relay.db.events_by_start(limit)?.iter().map(event).collect();
    ok(&events)
}

#[handler]
async fn blacklist(
    Validator(signer): Validator,
    Path(miner): Path<String>,
    relay: Shared<'_>,
) -> Reply {
    let relay = *relay;
    check_hotkey(&miner, "Invalid miner hotkey format")?;
    if !relay.db.blacklist_vote(&miner, &signer.hotkey, now_us())? {
        return Err(crate::http::ApiError::bad_request(
            "Validator has already voted to blacklist this miner",
        ));
    }
    relay.commit().await?;
    tracing::info!(validator = %signer.hotkey, miner = %miner, "relay: blacklist vote");
    ok(&StatusAnswer {
        status: "blacklist vote recorded".into(),
    })
}
