//! `/admin/status` and `/admin/dashboard` (relay.md §5).

use super::http::Relay;
use serde_json::{json, Value};

/// Seconds between dashboard reloads.
pub const DASHBOARD_REFRESH_S: u32 = 5;

/// The status document at unix time `now`.
pub fn status(relay: &Relay, now: f64) -> Value {
    let (db_ok, db_error) = match relay.db.pending_votes() {
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.to_string())),
    };
    let sota = relay.sota();
    let health = relay.health.report();
    let store = relay.db.store();
    let guard = store.guard_state();
    json!({
        "status": if !db_ok { "unhealthy" } else { health.status },
        "reasons": health.reasons,
        "db_ok": db_ok,
        "db_error": db_error,
        "uid0_hotkey": relay.uid0(),
        "test_mode": relay.cfg.test_mode,
        "auth": {
            "validator_count": relay.validator_count(),
            "any_signer_is_validator": relay.cfg.test_mode,
            "replay_cache_size": relay.replay_cache_len(),
            "max_skew_s": relay.cfg.auth_max_skew_s,
        },
        "store": {
            "results": relay.db.result_count(),
            "events": relay.db.event_count(),
            "invitations": relay.db.invite_count(),
            "pending_votes": relay.db.pending_votes().map(|v| v.len()).unwrap_or(0),
            "sota_threshold": sota.value,
        },
        "storage": {
            "data_dir": guard.data_dir,
            "free_bytes": guard.free_bytes,
            "min_free_bytes": guard.min_free_bytes,
            "low_space": guard.low_space,
            "failed": guard.failed,
            "size_on_disk_bytes": store.size_on_disk(),
            "trees": store.tree_sizes(),
        },
        "metrics": relay.metrics.snapshot(now, relay.uptime_s()),
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(label: &str, value: &str) -> String {
    format!("<tr><th>{}</th><td>{}</td></tr>", esc(label), esc(value))
}

/// The dashboard: the status document as an HTML page that reloads itself.
pub fn dashboard_html(s: &Value) -> String {
    let m = &s["metrics"];
    let uptime = m["uptime_seconds"].as_f64().unwrap_or(0.0);
    let last = m["last_request_ts"]
        .as_f64()
        .and_then(|t| chrono::DateTime::from_timestamp_micros((t * 1e6) as i64))
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into());
    let status_rows = [
        row("Service", &text(&s["status"])),
        row(
            "DB",
            &if s["db_ok"].as_bool() == Some(true) {
                "ok".to_string()
            } else {
                format!("error: {}", text(&s["db_error"]))
            },
        ),
        row("Test mode", &text(&s["test_mode"])),
        row("UID0 hotkey", &text(&s["uid0_hotkey"])),
        row("Validators allowed", &text(&s["auth"]["validator_count"])),
        row("SOTA threshold", &text(&s["store"]["sota_threshold"])),
        row("Results", &text(&s["store"]["results"])),
        row("SOTA events", &text(&s["store"]["events"])),
        row("Pending votes", &text(&s["store"]["pending_votes"])),
        row("Uptime", &format!("{:.1} minutes", uptime / 60.0)),
        row("Last request", &last),
    ]
    .concat();
    let windows = [
        ("last_1m", "1 min"),
        ("last_1h", "1 h"),
        ("last_24h", "24 h"),
    ];
    let cats = [
        "total",
        "miner",
        "validator",
        "admin",
        "public",
        "other",
        "errors_5xx",
    ];
    let header: String = windows
        .iter()
        .map(|(_, label)| format!("<th>{label}</th>"))
        .collect();
    let body: String = cats
        .iter()
        .map(|c| {
            let cells: String = windows
                .iter()
                .map(|(k, _)| format!("<td class=\"n\" id=\"{k}-{c}\">{}</td>", text(&m[*k][*c])))
                .collect();
            format!("<tr><th>{c}</th>{cells}</tr>")
        })
        .collect();
    format!(
        r#"<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{DASHBOARD_REFRESH_S}">
<title>Relay Admin Dashboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 18px; }}
.grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }}
.card {{ border: 1px solid #ddd; border-radius: 10px; padding: 14px 16px; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.muted {{ color: #666; }}
</style>
</head>
<body>
<h2>Relay Admin Dashboard</h2>
<p class="muted">Auto-refresh: {DASHBOARD_REFRESH_S}s &middot; 5xx total: {errors}</p>
<div class="grid">
<div class="card"><h3>Status</h3><table>{status_rows}</table></div>
<div class="card"><h3>Requests</h3><table><tr><th></th>{header}</tr>{body}</table></div>
</div>
</body>
</html>
"#,
        errors = text(&m["errors_5xx_total"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_shows_counters_and_escapes() {
        let s = json!({
            "status": "healthy", "db_ok": true, "db_error": null,
            "uid0_hotkey": "<script>", "test_mode": true,
            "auth": {"validator_count": 2}, "store": {"sota_threshold": 0.5, "results": 3, "events": 1, "pending_votes": 0},
            "metrics": {"uptime_seconds": 120.0, "last_request_ts": 1.7e9, "errors_5xx_total": 4,
                "last_1m": {"total": 7, "miner": 5, "validator": 1, "admin": 1, "public": 0, "other": 0, "errors_5xx": 0},
                "last_1h": {"total": 9}, "last_24h": {"total": 11}}
        });
        let html = dashboard_html(&s);
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(html.contains("id=\"last_1m-miner\">5<"));
        assert!(html.contains("id=\"last_24h-total\">11<"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
