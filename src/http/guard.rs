//! The guard every listener (relay, sidecar, pool) puts around its routes, so that no
//! request can get a non-JSON answer, take the process down with a panic, or make a
//! handler buffer an unbounded body:
//!
//! - a panicking handler answers `500 {"detail": …}` and the listener keeps serving;
//! - framework rejections (no route, wrong method, bad path parameter) answer JSON with
//!   their status (`404 {"detail":"Not Found"}`, `405 {"detail":"Method Not Allowed"}`);
//! - a body over the listener's limit answers `413` — at once when `Content-Length` says
//!   so, else as soon as a handler reads past the limit of a streamed body.
//!
//! [`super::Api::into_route`] applies it to every listener (the relay inside its request
//! metrics, so its counters see these answers too).

use super::ApiError;
use parking_lot::Mutex;
use poem::endpoint::BoxEndpoint;
use poem::http::{header, StatusCode};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Body limit of the listeners without a configured one (sidecar, pool): a lease
/// submission or an ingested batch carries many programs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Largest oversize body read and discarded so the client can read its 413 (a client
/// still sending when the connection closes sees a broken pipe, not the answer).
const DRAIN_MAX: u64 = 64 * 1024 * 1024;

/// The 413 answer for `limit`.
fn too_large(limit: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {limit} bytes"),
    )
    .into_response()
}

/// Read and discard (at most [`DRAIN_MAX`] of) a body nobody will use, so the client can
/// finish sending and read the answer.
async fn drain(reader: impl AsyncRead + Unpin) {
    let _ = tokio::io::copy(&mut reader.take(DRAIN_MAX), &mut tokio::io::sink()).await;
}

/// Wrap `inner` with the panic guard, JSON framework errors and a `max_body_bytes` limit.
pub fn harden<E: Endpoint + 'static>(inner: E, max_body_bytes: usize) -> BoxEndpoint<'static> {
    let inner = inner.with(poem::middleware::CatchPanic::new().with_handler(|_| {
        tracing::error!("a request handler panicked");
        ApiError::internal("internal error (handler panicked)").into_response()
    }));
    Guard {
        inner,
        max_body_bytes,
    }
    .boxed()
}

struct Guard<E> {
    inner: E,
    max_body_bytes: usize,
}

impl<E: Endpoint> Endpoint for Guard<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let limit = self.max_body_bytes;
        let declared = req
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            drain(req.take_body().into_async_read()).await;
            return Ok(too_large(limit));
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let body: Shared = Arc::new(Mutex::new(Some(Box::new(
            req.take_body().into_async_read(),
        ))));
        req.set_body(Body::from_async_read(Limited {
            inner: body.clone(),
            left: limit as u64,
            exceeded: exceeded.clone(),
        }));
        let resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => framework_error(e),
        };
        // Whatever the handler made of its failed read, the answer is the 413 — after
        // the rest of the body, which the handler left unread.
        if exceeded.load(Ordering::Acquire) {
            let rest = body.lock().take();
            if let Some(rest) = rest {
                drain(rest).await;
            }
            return Ok(too_large(limit));
        }
        Ok(resp)
    }
}

/// A framework error as a JSON answer; errors that already render JSON (a service's own
/// error type) pass unchanged, and an [`ApiError`] renders itself whole (poem's own
/// rendering would drop the response extensions it sets).
fn framework_error(e: poem::Error) -> Response {
    if let Some(api) = e.downcast_ref::<ApiError>() {
        return api.clone().into_response();
    }
    let status = e.status();
    let detail = match status {
        StatusCode::NOT_FOUND => "Not Found".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_string(),
        _ => e.to_string(),
    };
    let resp = e.into_response();
    let is_json = resp
        .content_type()
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        resp
    } else {
        ApiError::new(status, detail).into_response()
    }
}

/// The request body's reader, shared by the handler's [`Limited`] view and the guard
/// (which drains what is left after an oversize body).
type Shared = Arc<Mutex<Option<Box<dyn AsyncRead + Unpin + Send>>>>;

/// A body reader that fails once more than `left` bytes were read, and says so.
struct Limited {
    inner: Shared,
    left: u64,
    exceeded: Arc<AtomicBool>,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let mut inner = this.inner.lock();
        let Some(reader) = inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(reader).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n > this.left {
                    this.exceeded.store(true, Ordering::Release);
                    return Poll::Ready(Err(std::io::Error::other("request body too large")));
                }
                this.left -= n;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::{get, handler, post, Route};

    #[handler]
    fn boom() -> &'static str {
        panic!("boom")
    }

    #[handler]
    async fn echo(body: Body) -> poem::Result<Vec<u8>> {
        Ok(body.into_vec().await?)
    }

    async fn call(ep: &BoxEndpoint<'static>, req: Request) -> (u16, serde_json::Value) {
        let resp = ep.call(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().into_vec().await.unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    fn app() -> BoxEndpoint<'static> {
        harden(
            Route::new()
                .at("/boom", get(boom))
                .at("/echo", post(echo))
                .at("/n/:id", get(boom)),
            10,
        )
    }

    #[tokio::test]
    async fn every_rejection_is_json() {
        let ep = app();
        let get_req = |p: &str| Request::builder().uri_str(p).finish();
        let (s, b) = call(&ep, get_req("/boom")).await;
        assert_eq!(
            (s, b["detail"].as_str()),
            (500, Some("internal error (handler panicked)"))
        );
        let (s, b) = call(&ep, get_req("/nope")).await;
        assert_eq!((s, b["detail"].as_str()), (404, Some("Not Found")));
        let (s, b) = call(&ep, get_req("/echo")).await;
        assert_eq!((s, b["detail"].as_str()), (405, Some("Method Not Allowed")));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_declared_or_streamed() {
        let ep = app();
        let post = || {
            Request::builder()
                .method(poem::http::Method::POST)
                .uri_str("/echo")
        };
        let post_req = |body: Body| post().body(body);
        let resp = ep.call(post_req(Body::from(vec![b'x'; 10]))).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.into_body().into_vec().await.unwrap().len(), 10);
        // Declared too large.
        let declared = post().header("Content-Length", "11").body(vec![b'x'; 11]);
        let (s, b) = call(&ep, declared).await;
        assert_eq!(
            (s, b["detail"].as_str()),
            (413, Some("request body larger than 10 bytes"))
        );
        // Streamed without a length: found out while the handler reads.
        let stream = Body::from_async_read(std::io::Cursor::new(vec![b'x'; 1000]));
        let (s, _) = call(&ep, post_req(stream)).await;
        assert_eq!(s, 413);
    }
}
