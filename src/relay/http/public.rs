//! Unauthenticated reads: liveness, the update manifest, the SOTA and its history.

use super::state::{iso, now_us};
use super::{RelayDialect, Reply, Shared};
use crate::http::{ok, query_int, schema_ref, Api, Op, Params};
use crate::protocol::wire::{Health, PublicEvent, SotaEventsPage, SotaThreshold};
use poem::handler;
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.get(
        "/health",
        Op::new("Liveness").ok(json!({"type": "object", "properties": {"status": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"}}})),
        health,
    )
    .get(
        "/version.json",
        Op::new("Update manifest: the configured one, else this appliance's own version")
            .ok(schema_ref("VersionManifest")),
        version_json,
    )
    .get(
        "/sota_threshold",
        Op::new("Current global SOTA").ok(schema_ref("SotaThreshold")),
        sota_threshold,
    )
    .get(
        "/sota-events",
        Op::new("SOTA events, newest first, paginated")
            .params(vec![
                query_int("page", 1, 1, i64::MAX),
                query_int("page_size", 50, 1, 100),
            ])
            .ok(schema_ref("PaginatedEvents"))
            .errors(&[400, 422]),
        sota_events,
    )
}

/// `healthy`, or `degraded` with the reasons and 503.
#[handler]
fn health(relay: Shared<'_>) -> Reply {
    let report = relay.health.report();
    let mut body = serde_json::to_value(Health {
        status: report.status.into(),
        timestamp: iso(now_us()),
    })
    .unwrap_or_default();
    if !report.healthy() {
        body["reasons"] = json!(report.reasons);
    }
    Ok(crate::health::response(&report, body))
}

#[handler]
fn version_json(relay: Shared<'_>) -> Reply {
    // The reference ships a manifest (its GUI's `update_manifest_url` points here); without
    // a configured one the appliance describes itself.
    match &relay.cfg.version_manifest {
        Some(m) => ok(m),
        None => ok(&crate::config::VersionManifest::appliance()),
    }
}

#[handler]
fn sota_threshold(relay: Shared<'_>) -> Reply {
    let s = relay.sota();
    let updated = if s.updated_us == 0 {
        relay.started_at_us()
    } else {
        s.updated_us
    };
    ok(&SotaThreshold {
        task_type: "global".into(),
        sota_threshold: s.value,
        updated_at: iso(updated),
        cached: true,
    })
}

#[handler]
fn sota_events(q: Params, relay: Shared<'_>) -> Reply {
    let page = q.int::<RelayDialect>("page", 1, 1, i64::MAX as i128)? as usize;
    let size = q.int::<RelayDialect>("page_size", 50, 1, 100)? as usize;
    let (events, total) = relay.db.events_page(page, size)?;
    ok(&SotaEventsPage {
        results: events
            .iter()
            .map(|e| PublicEvent {
                miner_hotkey: e.miner_hotkey.clone(),
                score: e.score,
                created_at: iso(e.created_us),
            })
            .collect(),
        total: total as u64,
        page: page as u64,
        page_size: size as u64,
        total_pages: total.div_ceil(size) as u64,
    })
}
