//! What the daemon's blocking HTTP clients share — the relay client, the pool-mining
//! coordinator and the sidecar job worker: the error a request ends in, and reading an
//! answer's status, JSON and the server's `detail`.

use serde_json::Value;

/// A request that did not give the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built (TLS backend, resolver): nothing was sent.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{url}: unreachable: {reason}")]
    Transport { url: String, reason: String },
    /// The server refused: its status and `detail`.
    #[error("{url}: HTTP {status}: {detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: unexpected answer: {reason}")]
    Body { url: String, reason: String },
}

impl ClientError {
    /// The server's status, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `detail` when it refused, else the whole message.
    pub fn detail(&self) -> String {
        match self {
            ClientError::Status { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// Worth retrying: the network, a timeout, a 5xx or 408. A 4xx refusal is final.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status >= 500 || *status == 408,
            ClientError::Transport { .. } => true,
            ClientError::Client(_) | ClientError::Body { .. } => false,
        }
    }
}

/// The `detail` of an error body (a string, or the JSON of a structured one such as a
/// 422's list), else the start of the body text.
pub fn detail(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut m)) => match m.remove("detail") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => short(text),
        },
        _ => short(text),
    }
}

/// At most 300 characters of `s`, for error messages.
pub fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Read an answer: its status and JSON body (`Null` when empty, the text as a string when
/// not JSON) for a 2xx, else [`ClientError::Status`] with the server's `detail`.
pub fn read_json(
    url: &str,
    answer: reqwest::Result<reqwest::blocking::Response>,
) -> Result<(u16, Value), ClientError> {
    let transport = |e: reqwest::Error| ClientError::Transport {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let answer = answer.map_err(transport)?;
    let status = answer.status().as_u16();
    let text = answer.text().map_err(transport)?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Status {
            url: url.to_string(),
            status,
            detail: detail(&text),
        });
    }
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details() {
        assert_eq!(
            detail(r#"{"detail":"score is required"}"#),
            "score is required"
        );
        assert_eq!(
            detail(r#"{"detail":[{"loc":["body"]}]}"#),
            r#"[{"loc":["body"]}]"#
        );
        assert_eq!(detail("plain"), "plain");
        assert_eq!(detail(&"x".repeat(1000)).len(), 300);
    }

    #[test]
    fn only_server_failures_are_transient() {
        let status = |status| ClientError::Status {
            url: "u".into(),
            status,
            detail: "d".into(),
        };
        assert!(status(503).is_transient());
        assert!(status(408).is_transient());
        assert!(!status(400).is_transient());
        assert_eq!(status(403).detail(), "d");
        assert_eq!(status(403).status(), Some(403));
        let t = ClientError::Transport {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(t.is_transient());
        assert_eq!(t.detail(), "u: unreachable: refused");
    }
}
