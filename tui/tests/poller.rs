//! The HTTP poller against real sockets: a refused connection is reported as unreachable,
//! and requests carry the documented paths, cursors, admin header and bodies. The server
//! here only replays the recorded fixtures; it checks the client, not a daemon.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bitsota_tui::app::{Action, Event, Feed, FetchError, Get, Payload, Request, StartMining};
use bitsota_tui::poller::Poller;
use bitsota_tui::Endpoints;
use common::fixture;

#[derive(Debug, Clone)]
struct Seen {
    line: String,
    token: Option<String>,
    body: String,
}

fn handle(stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (mut len, mut token) = (0usize, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap(),
            "x-auth-token" => token = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let line = line.trim_end().to_owned();
    let path = line
        .split(' ')
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (status, reply) = match path.as_str() {
        "/logs" => ("200 OK", fixture("logs_page2.json")),
        "/admin/status" if token.as_deref() == Some("sekret") => {
            ("200 OK", fixture("admin_status.json"))
        }
        "/admin/status" => (
            "401 Unauthorized",
            r#"{"detail":"Invalid admin token"}"#.into(),
        ),
        "/appliance/mine/start" => ("409 Conflict", r#"{"detail":"already mining"}"#.into()),
        "/appliance/mine/stop" => ("200 OK", r#"{"status":"stopped"}"#.into()),
        _ => ("404 Not Found", r#"{"detail":"Not Found"}"#.into()),
    };
    seen.lock().unwrap().push(Seen {
        line,
        token,
        body: String::from_utf8(body).unwrap(),
    });
    let mut s = stream;
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

fn serve() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            handle(stream, &s2);
        }
    });
    (url, seen)
}

fn endpoints(url: &str, token: Option<&str>) -> Endpoints {
    Endpoints {
        relay: url.into(),
        sidecar: format!("{url}/"),
        pool: url.into(),
        admin_token: token.map(str::to_owned),
    }
}

fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("poller answered")
}

fn plain(feed: Feed) -> Get {
    Get {
        feed,
        run_id: None,
        cursor: None,
    }
}

#[test]
fn refused_connection_is_unreachable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (tx, rx) = channel();
    let poller = Poller::spawn(&endpoints(&format!("http://127.0.0.1:{port}"), None), tx).unwrap();
    poller.send(Request::Get(plain(Feed::SotaThreshold)));
    match next(&rx) {
        Event::Polled(g, Err(FetchError::Unreachable(why))) => {
            assert_eq!(g.feed, Feed::SotaThreshold);
            assert!(!why.is_empty());
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[test]
fn requests_carry_cursor_token_and_body() {
    let (url, seen) = serve();
    let (tx, rx) = channel();
    let poller = Poller::spawn(&endpoints(&url, Some("sekret")), tx).unwrap();

    let logs = Get {
        feed: Feed::Logs,
        run_id: Some("run-7f3a9c".into()),
        cursor: Some(3),
    };
    poller.send(Request::Get(logs.clone()));
    match next(&rx) {
        Event::Polled(g, Ok(Payload::Logs(page))) => {
            assert_eq!(g, logs, "the request comes back with its answer");
            assert_eq!(page.cursor, 5);
            assert_eq!(page.items.len(), 2);
        }
        other => panic!("{other:?}"),
    }

    poller.send(Request::Get(plain(Feed::AdminStatus)));
    match next(&rx) {
        Event::Polled(_, Ok(Payload::AdminStatus(a))) => {
            assert_eq!(a.metrics.last_1h.validator, 3587)
        }
        other => panic!("{other:?}"),
    }

    let start = StartMining {
        task_type: "mnist_binary".into(),
        engine: "archive".into(),
        workers: 4,
        start_from_sota: true,
    };
    poller.send(Request::StartMining(start));
    assert_eq!(
        next(&rx),
        Event::Acted(
            Action::Start,
            Err(FetchError::Http {
                status: 409,
                detail: "already mining".into()
            })
        )
    );
    poller.send(Request::StopMining);
    assert_eq!(next(&rx), Event::Acted(Action::Stop, Ok("stopped".into())));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].line,
        "GET /logs?cursor=3&limit=500&run_id=run-7f3a9c HTTP/1.1"
    );
    assert_eq!(
        seen[0].token, None,
        "the admin token goes to /admin/status only"
    );
    assert_eq!(seen[1].token.as_deref(), Some("sekret"));
    assert_eq!(seen[2].line, "POST /appliance/mine/start HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"task_type":"mnist_binary","engine":"archive","workers":4,"start_from_sota":true})
    );
    assert_eq!(seen[3].line, "POST /appliance/mine/stop HTTP/1.1");
}

#[test]
fn wrong_token_is_an_http_error_with_detail() {
    let (url, _) = serve();
    let (tx, rx) = channel();
    let poller = Poller::spawn(&endpoints(&url, Some("wrong")), tx).unwrap();
    poller.send(Request::Get(plain(Feed::AdminStatus)));
    assert_eq!(
        next(&rx),
        Event::Polled(
            plain(Feed::AdminStatus),
            Err(FetchError::Http {
                status: 401,
                detail: "Invalid admin token".into()
            })
        )
    );
}
