//! The operator's view: the status document and the dashboard page (relay.md §5).

use super::super::admin::{dashboard_html, status};
use super::roles::Admin;
use super::state::now_us;
use super::{doc, Reply, Shared};
use crate::http::{ok, schema_ref, Api, Op};
use poem::{handler, Response};
use serde_json::json;

pub fn routes(api: Api) -> Api {
    api.get(
        "/admin/status",
        Op::new("Status and request metrics")
            .security("admin", doc::admin())
            .ok(schema_ref("AdminStatus"))
            .errors(&[401]),
        admin_status,
    )
    .get(
        "/admin/dashboard",
        Op::new("Auto-refreshing HTML status page")
            .security("admin", doc::admin())
            .response(
                200,
                json!({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}),
            )
            .errors(&[401]),
        admin_dashboard,
    )
}

#[handler]
fn admin_status(_: Admin, relay: Shared<'_>) -> Reply {
    ok(&status(&relay, now_us() as f64 / 1e6))
}

#[handler]
fn admin_dashboard(_: Admin, relay: Shared<'_>) -> Reply {
    let html = dashboard_html(&status(&relay, now_us() as f64 / 1e6));
    Ok(Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
