//! The one error answer of every listener: a status and `{"detail": "<reason>"}`, the
//! shape FastAPI gives the reference services and their clients read. A 422 is FastAPI's
//! validation answer, `{"detail": [{"loc", "msg", "type"}]}`, naming the failing field.

use poem::http::{header, HeaderValue, StatusCode};
use poem::{IntoResponse, Response};
use serde::Serialize;

/// An HTTP error answer. Services turn their domain errors into it (`From` impls in
/// their HTTP modules); nothing below the HTTP shells knows a status code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// A `WWW-Authenticate` challenge to send with a 401 (a browser then asks for HTTP
    /// Basic credentials).
    pub challenge: Option<&'static str>,
    /// Where and how the input failed validation, for a 422.
    pub invalid: Option<Invalid>,
    /// The refusal's class for `/metrics`, when the status alone does not say it.
    pub class: Option<RefusalClass>,
}

/// A refusal's class for `/metrics` (`metrics::Metrics::outcome`) where its status
/// alone does not say it: a late SOTA vote is a 400 like an invalid one. Carried to the
/// request metrics as a response extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusalClass(pub &'static str);

/// FastAPI's `loc` (`["body", "value"]`, `["query", "limit"]`) and error `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub loc: Vec<serde_json::Value>,
    pub kind: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            challenge: None,
            invalid: None,
            class: None,
        }
    }

    /// Input that failed validation at `invalid.loc` (answered as FastAPI's list on a 422).
    pub fn invalid(status: StatusCode, invalid: Invalid, detail: impl Into<String>) -> ApiError {
        ApiError {
            invalid: Some(invalid),
            ..ApiError::new(status, detail)
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
    /// 507: the data directory is below its free-space watermark; `detail` names it.
    pub fn insufficient_storage(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INSUFFICIENT_STORAGE, detail)
    }

    /// The same error, counted under `class` in `/metrics`.
    pub fn with_class(self, class: &'static str) -> ApiError {
        ApiError {
            class: Some(RefusalClass(class)),
            ..self
        }
    }

    /// The same error, asking the client for credentials with `challenge`.
    pub fn with_challenge(self, challenge: &'static str) -> ApiError {
        ApiError {
            challenge: Some(challenge),
            ..self
        }
    }
}

/// Low space is a 507 whose detail names the data directory and its free space (the
/// client may retry later). Any other storage fault is the server's: its text is logged,
/// never answered — a failed store is a 503 (the daemon is restarting), anything else a
/// 500.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        use crate::store::StoreError;
        match &e {
            StoreError::LowSpace { .. } => {
                tracing::debug!(error = %e, "write refused");
                ApiError::insufficient_storage(e.to_string())
            }
            _ if e.is_fault() => {
                tracing::error!(error = %e, "store failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage failed; the daemon is restarting",
                )
            }
            _ => {
                tracing::error!(error = %e, "store error");
                ApiError::internal("internal storage error")
            }
        }
    }
}

/// `body` as JSON with `status`.
fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(bytes)
}

/// What every handler returns: its answer, or the error answer.
pub type Reply = Result<Response, ApiError>;

/// A 200 answer with `body` as JSON.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> Reply {
    Ok(json_response(StatusCode::OK, body))
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let body = if self.status == StatusCode::UNPROCESSABLE_ENTITY {
            let (loc, kind) = self
                .invalid
                .as_ref()
                .map_or((vec!["body".into()], "value_error"), |i| {
                    (i.loc.clone(), i.kind)
                });
            serde_json::json!({ "detail": [{"loc": loc, "msg": self.detail, "type": kind}] })
        } else {
            serde_json::json!({ "detail": self.detail })
        };
        let mut resp = json_response(self.status, &body);
        if let Some(c) = self.challenge {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Some(class) = self.class {
            resp.extensions_mut().insert(class);
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}
