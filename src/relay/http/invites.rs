//! Invitation codes (admin generates and lists them, miners link one) and the coldkey a
//! miner's invitation carries.

use super::super::store::{InviteRec, LinkOutcome};
use super::roles::{Admin, Miner};
use super::state::{iso, now_us};
use super::{doc, Body, RelayDialect, Reply, Shared};
use crate::http::{array, ok, path_int, path_param, schema_ref, Api, ApiError, Json, Op};
use crate::protocol::wire::{
    ColdkeyUpdate, ColdkeyUpdated, Invite, InviteCodes, InviteLink, InviteList, LinkAnswer,
    LinkedCode,
};
use poem::handler;
use poem::web::Path;
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.post(
        "/invitation_code/generate/{count}",
        Op::new("Generate invitation codes")
            .security("admin", doc::admin())
            .params(vec![path_param("count", json!({"type": "integer", "minimum": 1, "maximum": 1000}))])
            .ok(json!({"type": "object", "properties": {"data": array(json!({"type": "string", "pattern": "^[A-Z0-9]{8}$"}))}}))
            .errors(&[400, 401, 422]),
        generate,
    )
    .get(
        "/invitation_code/list/{page}/{size}",
        Op::new("List invitation codes in creation order")
            .security("admin", doc::admin())
            .params(vec![
                path_param("page", json!({"type": "integer", "minimum": 1})),
                path_param("size", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
            ])
            .ok(json!({"type": "object", "properties": {"data": array(schema_ref("Invitation")), "count": {"type": "integer"}}}))
            .errors(&[400, 401, 422]),
        list,
    )
    .get(
        "/invitation_code/linked",
        Op::new("The caller's linked code")
            .security("miner", doc::signed())
            .ok(json!({"type": "object", "properties": {"data": {"type": "string", "nullable": true}}}))
            .errors(&[401]),
        linked,
    )
    .post(
        "/invitation_code/link",
        Op::new("Link an invitation code (data 1 = linked, 0 = unknown or used code)")
            .security("miner", doc::signed())
            .body(json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}, "coldkey_address": {"type": "string", "nullable": true}}}))
            .ok(json!({"type": "object", "properties": {"data": {"type": "integer", "enum": [0, 1]}}}))
            .errors(&[401, 413, 422]),
        link,
    )
    .post(
        "/coldkey_address/update",
        Op::new("Set the coldkey of the caller's invitation")
            .security("miner", doc::signed())
            .body(json!({"type": "object", "required": ["coldkey_address"], "properties": {"coldkey_address": {"type": "string"}}}))
            .ok(json!({"type": "object", "properties": {"status": {"type": "string"}, "coldkey_address": {"type": "string"}, "invite_code": {"type": "string"}}}))
            .errors(&[400, 401, 404, 413, 422]),
        coldkey_update,
    )
}

/// An 8-character invitation code, A–Z and 0–9.
fn new_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn invite(i: &InviteRec) -> Invite {
    Invite {
        id: i.code.clone(),
        miner_hotkey: i.miner_hotkey.clone(),
        coldkey_address: i.coldkey_address.clone(),
        timestamp: iso(i.created_us),
    }
}

#[handler]
async fn generate(_: Admin, Path(count): Path<String>, relay: Shared<'_>) -> Reply {
    let relay = *relay;
    let count: i64 = path_int::<_, RelayDialect>(&count, "count")?;
    if !(1..=1000).contains(&count) {
        return Err(ApiError::bad_request("count must be between 1 and 1000"));
    }
    let mut codes = Vec::with_capacity(count as usize);
    {
        let _serial = relay.invite_lock.lock();
        // Collisions among 36^8 codes are rare; retry the few that hit an existing code.
        for _ in 0..10 {
            let want = count as usize - codes.len();
            if want == 0 {
                break;
            }
            let batch: Vec<String> = (0..want).map(|_| new_code()).collect();
            codes.extend(relay.db.add_invites(&batch, now_us())?);
        }
    }
    relay.commit().await?;
    tracing::info!(count = codes.len(), "relay: invitation codes generated");
    ok(&InviteCodes { data: codes })
}

#[handler]
fn list(_: Admin, Path((page, size)): Path<(String, String)>, relay: Shared<'_>) -> Reply {
    let page: i64 = path_int::<_, RelayDialect>(&page, "page")?;
    let size: i64 = path_int::<_, RelayDialect>(&size, "size")?;
    if page < 1 || !(1..=1000).contains(&size) {
        return Err(ApiError::bad_request(
            "page must be >= 1 and size between 1 and 1000",
        ));
    }
    let (items, count) = relay.db.invites_page(page as usize, size as usize)?;
    ok(&InviteList {
        data: items.iter().map(invite).collect(),
        count: count as u64,
    })
}

#[handler]
fn linked(Miner(signer): Miner, relay: Shared<'_>) -> Reply {
    ok(&LinkedCode {
        data: relay.db.linked_code(&signer.hotkey)?,
    })
}

#[handler]
async fn link(Miner(signer): Miner, Json(body, ..): Body<InviteLink>, relay: Shared<'_>) -> Reply {
    let relay = *relay;
    let code = body.code.as_str();
    let outcome = {
        let _serial = relay.invite_lock.lock();
        if relay.cfg.test_mode
            && code == relay.cfg.test_invite_code
            && relay.db.invite(code)?.is_none()
        {
            relay
                .db
                .put_invite(&relay.db.new_invite(code, None, now_us()))?;
        }
        relay
            .db
            .link(code, &signer.hotkey, body.coldkey_address.as_deref())?
    };
    relay.commit().await?;
    let is_linked = outcome == LinkOutcome::Linked;
    tracing::info!(miner = %signer.hotkey, linked = is_linked, "relay: invitation link");
    ok(&LinkAnswer {
        data: i32::from(is_linked),
    })
}

#[handler]
async fn coldkey_update(
    Miner(signer): Miner,
    Json(body, ..): Body<ColdkeyUpdate>,
    relay: Shared<'_>,
) -> Reply {
    let relay = *relay;
    let coldkey = body.coldkey_address;
    let code = {
        let _serial = relay.invite_lock.lock();
        let mut rec = match relay.db.linked_code(&signer.hotkey)? {
            Some(code) => relay
                .db
                .invite(&code)?
                .ok_or_else(|| ApiError::internal("invitation index points nowhere"))?,
            None if relay.cfg.test_mode => {
                // Test mode: give the miner the test code, or a fresh one if it is taken.
                let mut code = relay.cfg.test_invite_code.clone();
                while relay.db.invite(&code)?.is_some() {
                    code = new_code();
                }
                relay.db.new_invite(&code, Some(&signer.hotkey), now_us())
            }
            None => {
                return Err(ApiError::not_found(
                    "No invitation code linked to this miner",
                ))
            }
        };
        rec.coldkey_address = Some(coldkey.clone());
        relay.db.put_invite(&rec)?;
        rec.code
    };
    relay.commit().await?;
    ok(&ColdkeyUpdated {
        status: "success".into(),
        coldkey_address: coldkey,
        invite_code: code,
    })
}
