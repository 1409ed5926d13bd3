//! Validators' reads of the miners' results.

use super::super::store::ResultRec;
use super::roles::Validator;
use super::state::{iso, Relay};
use super::{check_hotkey, doc, RelayDialect, Reply, Shared};
use crate::http::{array, ok, path_param, query, query_int, schema_ref, Api, ApiError, Op, Params};
use crate::protocol::wire::RelayResult;
use poem::handler;
use poem::web::Path;
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.get(
        "/results",
        Op::new("Results, newest first")
            .security("validator", doc::signed())
            .params(vec![
                query_int("limit", 256, 1, 1000),
                query("task_id", json!({"type": "string"})),
            ])
            .ok(array(schema_ref("Result")))
            .errors(&[400, 401, 403, 422]),
        results,
    )
    .get(
        "/results/{miner_hotkey}",
        Op::new("A miner's result (0 or 1)")
            .security("validator", doc::signed())
            .params(vec![path_param("miner_hotkey", doc::hotkey())])
            .ok(array(schema_ref("Result")))
            .errors(&[400, 401, 403]),
        results_of,
    )
}

fn result(relay: &Relay, r: ResultRec) -> Result<RelayResult, ApiError> {
    let coldkey_address = relay.coldkey_of(&r.miner_hotkey)?;
    Ok(RelayResult {
        id: r.id,
        miner_hotkey: r.miner_hotkey,
        task_id: r.task_id,
        algorithm_result: r.algorithm_result,
        score: r.score,
        timestamp: iso(r.timestamp_us),
        validator_verified: None,
        signature: r.signature,
        timestamp_message: r.timestamp_message,
        coldkey_address,
    })
}

#[handler]
fn results(_: Validator, q: Params, relay: Shared<'_>) -> Reply {
    let limit = q.int::<RelayDialect>("limit", 256, 1, 1000)? as usize;
    let rows = relay.db.results_newest(limit, q.text("task_id"))?;
    let out = rows
        .into_iter()
        .map(|r| result(&relay, r))
        .collect::<Result<Vec<_>, _>>()?;
    ok(&out)
}

#[handler]
fn results_of(_: Validator, Path(miner): Path<String>, relay: Shared<'_>) -> Reply {
    check_hotkey(&miner, "Invalid hotkey format")?;
    let out = match relay.db.result_of(&miner)? {
        Some(r) => vec![result(&relay, r)?],
        None => vec![],
    };
    ok(&out)
}
