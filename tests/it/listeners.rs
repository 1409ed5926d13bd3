//! The guard every listener wears (`http::harden`), over real HTTP: unknown paths and
//! wrong methods answer JSON 404/405, and bodies over the listener's limit answer JSON 413
//! — declared by `Content-Length` or streamed — on the relay, sidecar and pool alike.
//! (A panicking handler's JSON 500 is tested on the guard itself: no real handler
//! panics.)

use crate::common;

use bitsota::keys::{pool_headers, relay_miner_headers, Keypair, SignedHeaders};
use common::{http, Daemon, Opts};
use serde_json::Value;

const RELAY_LIMIT: usize = 1000;

fn json_of(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let is_json = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    assert!(is_json, "status {status}: not JSON");
    (status, r.json().unwrap())
}

/// A body of `n` bytes sent chunked (no `Content-Length`).
fn streamed(n: usize) -> reqwest::blocking::Body {
    reqwest::blocking::Body::new(std::io::Cursor::new(vec![b' '; n]))
}

#[test]
fn every_listener_answers_json_404_405_and_413() {
    let d = Daemon::start(
        Opts::default().env("BITSOTA_RELAY_MAX_BODY_BYTES", &RELAY_LIMIT.to_string()),
    );
    let big = bitsota::http::DEFAULT_MAX_BODY_BYTES;
    let kp = Keypair::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Signed where the handler authenticates before it reads the body.
    let cases: [(&String, &str, usize, Option<SignedHeaders>); 3] = [
        (
            &d.relay,
            "/submit_solution",
            RELAY_LIMIT,
            Some(relay_miner_headers(&kp, now)),
        ),
        (&d.sidecar, "/ingest_batch", big, None),
        (
            &d.pool,
            "/api/v1/miners/register",
            big,
            Some(pool_headers(&kp, now)),
        ),
    ];
    for (base, post_path, limit, signed) in cases {
        let (s, v) = json_of(http().get(format!("{base}/no/such/path")).send().unwrap());
        assert_eq!(
            (s, v["detail"].as_str()),
            (404, Some("Not Found")),
            "{base}"
        );
        let (s, v) = json_of(http().get(format!("{base}{post_path}")).send().unwrap());
        assert_eq!(
            (s, v["detail"].as_str()),
            (405, Some("Method Not Allowed")),
            "{base}"
        );
        let expected = format!("request body larger than {limit} bytes");
        let declared = http()
            .post(format!("{base}{post_path}"))
            .body(vec![b' '; limit + 1])
            .send()
            .unwrap();
        let (s, v) = json_of(declared);
        assert_eq!(
            (s, v["detail"].as_str()),
            (413, Some(expected.as_str())),
            "{base}"
        );
        let mut chunked = http()
            .post(format!("{base}{post_path}"))
            .body(streamed(limit + 300 * 1024));
        for (k, v) in signed.iter().flat_map(|h| h.pairs()) {
            chunked = chunked.header(k, v);
        }
        let chunked = chunked.send().unwrap();
        let (s, v) = json_of(chunked);
        assert_eq!(
            (s, v["detail"].as_str()),
            (413, Some(expected.as_str())),
            "{base}"
        );
    }
    // The validators' view on the sidecar listener is guarded too.
    let (s, _) = json_of(
        http()
            .post(format!("{}/appliance/validators", d.sidecar))
            .send()
            .unwrap(),
    );
    assert_eq!(s, 405);
    // A body at the limit is read (and judged on its content).
    let (s, v) = json_of(
        http()
            .post(format!("{}/ingest_batch", d.sidecar))
            .body(vec![b' '; 10])
            .send()
            .unwrap(),
    );
    assert_eq!(s, 400, "{v}");
}

/// Each listener's `/openapi.json` describes what it serves: every documented method and
/// path reaches a handler (whatever the handler then makes of a request without
/// credentials or with a malformed body, it is not the router's 404/405), and a method
/// the document does not list on a path is the router's 405. `/docs` is the page.
#[test]
fn every_listener_documents_exactly_the_routes_it_serves() {
    let d = Daemon::start(Opts::default());
    for base in [&d.relay, &d.sidecar, &d.pool] {
        let (s, doc) = json_of(http().get(format!("{base}/openapi.json")).send().unwrap());
        assert_eq!(s, 200, "{base}");
        let listed = bitsota::http::documented(&doc);
        assert!(listed.len() > 10, "{base}: {listed:?}");
        for (method, path) in &listed {
            let url = format!("{base}{}", bitsota::http::sample_path(path, "1"));
            let req = match method.as_str() {
                "get" => http().get(&url),
                // A body that is not JSON: the route is reached, nothing is changed.
                "post" => http().post(&url).body("{"),
                other => panic!("{base}: unexpected method {other} {path}"),
            };
            let resp = req.send().unwrap();
            let status = resp.status();
            let text = resp.text().unwrap_or_default();
            let detail = serde_json::from_str::<Value>(&text).ok();
            let detail = detail.as_ref().and_then(|v| v["detail"].as_str());
            assert!(
                !bitsota::http::is_unrouted(status, detail),
                "{base}: {method} {path} is documented but answered {status} {text}"
            );
            let other = http().delete(&url).send().unwrap().status();
            assert_eq!(other, 405, "{base}: DELETE {path}");
        }
        let page = http().get(format!("{base}/docs")).send().unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().unwrap().contains("openapi.json"), "{base}");
    }
}

/// A headless Chromium on this machine, if there is one.
fn browser() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// `/docs` works offline: a real headless Chromium with every host but the loopback
/// unresolvable and every proxied request sent to a dead port renders Swagger UI from the
/// daemon's own assets, listing each documented route. Skipped, with a message, where no
/// browser is installed (`.ci/run` installs Chromium).
#[test]
fn docs_render_offline_in_a_headless_browser() {
    let Some(chromium) = browser() else {
        eprintln!("SKIPPED: no chromium, chromium-browser or google-chrome on PATH");
        return;
    };
    let d = Daemon::start(Opts::default());
    let (_, doc) = json_of(
        http()
            .get(format!("{}/openapi.json", d.sidecar))
            .send()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{}/docs", d.sidecar))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let routes = bitsota::http::documented(&doc);
    assert!(routes.len() > 10, "{routes:?}");
    for (_, path) in routes {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "{path} is not on the rendered /docs page; DOM ({} bytes): {}",
            dom.len(),
            dom.chars().take(2000).collect::<String>()
        );
    }
}
