//! The HTTP side: one thread per service runs the [`Request`]s the update function asks
//! for and sends each outcome back as an [`Event`]. A thread per service means a hung
//! relay cannot stall the sidecar's polls; the app's in-flight bookkeeping means requests
//! never pile up behind a slow service.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};

use crate::app::{Action, Event, Feed, FetchError, Payload, Request, Service};
use crate::Endpoints;

/// A daemon that does not answer within this is treated as down for this poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Routes requests to the per-service threads. Dropping it ends the threads once their
/// current request (bounded by the timeout) returns.
pub struct Poller {
    relay: Sender<Request>,
    sidecar: Sender<Request>,
    pool: Sender<Request>,
}

impl Poller {
    /// Starts the service threads; their results arrive on `events`.
    pub fn spawn(endpoints: &Endpoints, events: Sender<Event>) -> std::io::Result<Poller> {
        let start = |service: Service, base: &str| -> std::io::Result<Sender<Request>> {
            let (tx, rx) = channel();
            let worker = Worker {
                base: base.trim_end_matches('/').to_owned(),
                admin_token: endpoints.admin_token.clone(),
                events: events.clone(),
            };
            thread::Builder::new()
                .name(format!("tui-poll-{}", service.name()))
                .spawn(move || worker.run(rx))?;
            Ok(tx)
        };
        Ok(Poller {
            relay: start(Service::Relay, &endpoints.relay)?,
            sidecar: start(Service::Sidecar, &endpoints.sidecar)?,
            pool: start(Service::Pool, &endpoints.pool)?,
        })
    }

    /// Queues a request on its service's thread.
    pub fn send(&self, req: Request) {
        let tx = match req.service() {
            Service::Relay => &self.relay,
            Service::Sidecar => &self.sidecar,
            Service::Pool => &self.pool,
        };
        // A send only fails once the thread is gone, i.e. while shutting down.
        let _ = tx.send(req);
    }
}

struct Worker {
    base: String,
    admin_token: Option<String>,
    events: Sender<Event>,
}

impl Worker {
    fn run(self, rx: Receiver<Request>) {
        // The blocking client owns a private runtime, so it is built here on a plain
        // thread: building it inside the daemon's tokio context (`bitsota up`) would panic.
        let client = match Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                // Without a client every request fails the same way; report each one.
                let why = format!("HTTP client: {e}");
                for req in rx {
                    let _ = self
                        .events
                        .send(failed(req, FetchError::Unreachable(why.clone())));
                }
                return;
            }
        };
        for req in rx {
            let event = self.execute(&client, req);
            if self.events.send(event).is_err() {
                return;
            }
        }
    }

    fn execute(&self, client: &Client, req: Request) -> Event {
        match req {
            Request::Get(get) => {
                let mut rb = client
                    .get(format!("{}{}", self.base, get.feed.path()))
                    .query(&get.query());
                if get.feed == Feed::AdminStatus {
                    if let Some(t) = &self.admin_token {
                        rb = rb.header("X-Auth-Token", t);
                    }
                }
                let result = body_of(rb).and_then(|b| Payload::decode(get.feed, &b));
                Event::Polled(get, result)
            }
            Request::StartMining(body) => {
                let rb = client
                    .post(format!("{}/appliance/mine/start", self.base))
                    .json(&body);
                let result = body_of(rb).map(|b| field(&b, "run_id"));
                Event::Acted(Action::Start, result)
            }
            Request::StopMining => {
                let rb = client.post(format!("{}/appliance/mine/stop", self.base));
                let result = body_of(rb).map(|b| field(&b, "status"));
                Event::Acted(Action::Stop, result)
            }
        }
    }
}

/// The event reporting that `req` could not be made.
fn failed(req: Request, e: FetchError) -> Event {
    match req {
        Request::Get(g) => Event::Polled(g, Err(e)),
        Request::StartMining(_) => Event::Acted(Action::Start, Err(e)),
        Request::StopMining => Event::Acted(Action::Stop, Err(e)),
    }
}

/// Sends the request; a 2xx body, or the error with the daemon's `detail`.
fn body_of(rb: RequestBuilder) -> Result<String, FetchError> {
    let resp: Response = rb
        .send()
        .map_err(|e| FetchError::Unreachable(root_cause(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .map_err(|e| FetchError::Unreachable(root_cause(&e)))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(FetchError::Http {
            status: status.as_u16(),
            detail: detail_of(&body),
        })
    }
}

/// The `detail` of an error body (`{"detail": "..."}`), else the body itself, shortened.
pub fn detail_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("detail")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
        })
        .unwrap_or_else(|| body.chars().take(120).collect())
}

/// A string field of a JSON body, or the whole body when it has none.
fn field(body: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(key).and_then(|x| x.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}

/// reqwest's own message is "error sending request for url"; the cause ("connection
/// refused", "timed out") is what an operator needs.
fn root_cause(e: &reqwest::Error) -> String {
    let mut src: &dyn std::error::Error = e;
    while let Some(next) = src.source() {
        src = next;
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        src.to_string()
    }
}
