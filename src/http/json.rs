//! Typed request input: JSON bodies deserialised into the handler's type, query strings
//! and path parameters — each refusal a `{"detail"}` that names the failing field.
//!
//! The listeners refuse malformed input with the statuses and words their reference
//! services used, which clients and tests read: a [`Dialect`] says them once per listener.

use super::error::Invalid;
use super::ApiError;
use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::str::FromStr;

/// How a listener answers malformed input.
pub trait Dialect: Send + Sync + 'static {
    /// Status of well-formed input of the wrong shape: a body that is not an object, a
    /// field missing or of the wrong type, a parameter that does not parse. (FastAPI, and
    /// so the reference relay, answers 422; the sidecar and pool 400.)
    const SHAPE: StatusCode;
    /// Detail of a body that is not JSON.
    const NOT_JSON: &'static str;
    /// Whether the parser's reason follows [`Self::NOT_JSON`] (`"<NOT_JSON>: <reason>"`).
    const NOT_JSON_REASON: bool;
    /// Detail of a JSON body that is not an object.
    const NOT_OBJECT: &'static str;
    /// Whether an empty body stands for `{}` (clients that post no body at all).
    const EMPTY_IS_OBJECT: bool;
}

/// A JSON object body deserialised into `T`. Its size is bounded by the listener's guard
/// ([`super::harden`]), which answers 413 for a body over the limit.
pub struct Json<T, D>(pub T, pub PhantomData<D>);

impl<'a, T: DeserializeOwned, D: Dialect> FromRequest<'a> for Json<T, D> {
    async fn from_request(_req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = body
            .take()?
            .into_vec()
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
        Ok(Json(parse::<T, D>(&bytes)?, PhantomData))
    }
}

/// Parse `bytes` as a JSON object and deserialise it into `T`.
pub fn parse<T: DeserializeOwned, D: Dialect>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = if D::EMPTY_IS_OBJECT && bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| {
            ApiError::bad_request(if D::NOT_JSON_REASON {
                format!("{}: {e}", D::NOT_JSON)
            } else {
                D::NOT_JSON.to_string()
            })
        })?
    };
    if !value.is_object() {
        let at = Invalid {
            loc: vec!["body".into()],
            kind: "type_error.dict",
        };
        return Err(ApiError::invalid(D::SHAPE, at, D::NOT_OBJECT));
    }
    from_value::<T, D>(value)
}

/// Deserialise an already parsed body into `T` (for handlers that look at the raw
/// object first, such as the pool's signed envelope).
pub fn from_value<T: DeserializeOwned, D: Dialect>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (at, detail) = field_problem(&e);
        ApiError::invalid(D::SHAPE, at, detail)
    })
}

/// Where the body failed (`loc` from `"body"` down to the field, FastAPI's error `type`)
/// and why: `"<field> is required"`, `"<field> must be <kind>"`, or `"<field>: <serde's
/// reason>"`.
///
/// serde reports a missing field at its parent, and says what it expected only in its
/// message (`missing field `x``, `invalid type: …, expected f64`): both are read from
/// there. The wording is serde's stable `de::Error` default, pinned by the unit test.
fn field_problem(e: &serde_path_to_error::Error<serde_json::Error>) -> (Invalid, String) {
    use serde_path_to_error::Segment;
    let mut loc: Vec<Value> = vec!["body".into()];
    loc.extend(e.path().iter().filter_map(|seg| match seg {
        Segment::Seq { index } => Some(Value::from(*index)),
        Segment::Map { key } => Some(Value::from(key.as_str())),
        Segment::Enum { variant } => Some(Value::from(variant.as_str())),
        Segment::Unknown => None,
    }));
    let at = |loc: Vec<Value>, kind| Invalid { loc, kind };
    let path = e.path().to_string();
    let msg = e.inner().to_string();
    if msg.starts_with(&path) {
        // A field's own deserialiser already named it.
        return (at(loc, "value_error"), msg);
    }
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let name = match path.as_str() {
            "." => field.to_string(),
            p => format!("{p}.{field}"),
        };
        loc.push(field.into());
        return (
            at(loc, "value_error.missing"),
            format!("{name} is required"),
        );
    }
    let expected = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
        .and_then(|r| r.rsplit_once(", expected "))
        .map(|(_, exp)| exp);
    match expected.and_then(kind) {
        Some((kind, fastapi)) => (at(loc, fastapi), format!("{path} must be {kind}")),
        None => (at(loc, "value_error"), format!("{path}: {msg}")),
    }
}

/// A reader's name for what serde's primitive visitors say they expected, and FastAPI's
/// error type for it.
fn kind(expected: &str) -> Option<(&'static str, &'static str)> {
    Some(match expected {
        "f64" | "f32" => ("a number", "type_error.float"),
        "u8" | "u16" | "u32" | "u64" | "usize" => ("a non-negative integer", "type_error.integer"),
        "i8" | "i16" | "i32" | "i64" | "isize" => ("an integer", "type_error.integer"),
        "a string" => ("a string", "type_error.str"),
        "a boolean" => ("a boolean", "type_error.bool"),
        "a sequence" => ("a list", "type_error.list"),
        "a map" => ("an object", "type_error.dict"),
        e if e.starts_with("struct ") => ("an object", "type_error.dict"),
        _ => return None,
    })
}

/// The query string as name → value (the last of repeated names wins).
pub struct Params(pub HashMap<String, String>);

impl<'a> FromRequest<'a> for Params {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.params::<HashMap<String, String>>()
            .map(Params)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")).into())
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-empty value of `name`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// An integer parameter (`default` when absent), clamped into `lo..=hi` as the
    /// reference services do: clients send what they accepted (`limit=100000`,
    /// `cursor=-5`). Only a value that is not an integer is refused.
    pub fn int<D: Dialect>(
        &self,
        name: &str,
        default: i128,
        lo: i128,
        hi: i128,
    ) -> Result<i128, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i128>()
                .map(|n| n.clamp(lo, hi))
                .map_err(|_| {
                    let at = Invalid {
                        loc: vec!["query".into(), name.into()],
                        kind: "type_error.integer",
                    };
                    ApiError::invalid(D::SHAPE, at, format!("{name} must be an integer"))
                }),
        }
    }

    /// An optional parameter that must parse as `T`.
    pub fn parse<T: FromStr, D: Dialect>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|_| invalid::<D>("query", name, v))
            })
            .transpose()
    }
}

/// An integer path parameter.
pub fn path_int<T: FromStr, D: Dialect>(raw: &str, name: &str) -> Result<T, ApiError> {
    raw.parse::<T>()
        .map_err(|_| invalid::<D>("path", name, raw))
}

/// `raw` of parameter `name` (`place`: `query` or `path`) does not parse.
fn invalid<D: Dialect>(place: &str, name: &str, raw: &str) -> ApiError {
    let at = Invalid {
        loc: vec![place.into(), name.into()],
        kind: "value_error",
    };
    ApiError::invalid(D::SHAPE, at, format!("invalid {name} '{raw}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    struct Strict;
    impl Dialect for Strict {
        const SHAPE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
        const NOT_JSON: &'static str = "malformed JSON body";
        const NOT_JSON_REASON: bool = true;
        const NOT_OBJECT: &'static str = "body must be a JSON object";
        const EMPTY_IS_OBJECT: bool = false;
    }
    struct Lenient;
    impl Dialect for Lenient {
        const SHAPE: StatusCode = StatusCode::BAD_REQUEST;
        const NOT_JSON: &'static str = "Invalid JSON";
        const NOT_JSON_REASON: bool = false;
        const NOT_OBJECT: &'static str = "body must be a JSON object";
        const EMPTY_IS_OBJECT: bool = true;
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        n: u64,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        score: f64,
        #[serde(default)]
        flag: Option<bool>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        meta: Option<serde_json::Map<String, Value>>,
    }

    fn refusal<D: Dialect>(body: &str) -> (u16, String) {
        let e = parse::<Body, D>(body.as_bytes()).unwrap_err();
        (e.status.as_u16(), e.detail)
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(parse::<Body, Strict>(br#"{"name":"a","score":1}"#).is_ok());
        let r = |b| refusal::<Strict>(b);
        assert_eq!(r(r#"{"score":1}"#), (422, "name is required".into()));
        assert_eq!(
            r(r#"{"name":5,"score":1}"#),
            (422, "name must be a string".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":"1"}"#),
            (422, "score must be a number".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":1,"flag":3}"#),
            (422, "flag must be a boolean".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":1,"items":{}}"#),
            (422, "items must be a list".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":1,"items":[{"n":1},{"n":-1}]}"#),
            (422, "items[1].n must be a non-negative integer".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":1,"items":[{}]}"#),
            (422, "items[0].n is required".into())
        );
        assert_eq!(
            r(r#"{"name":"a","score":1,"meta":[1]}"#),
            (422, "meta must be an object".into())
        );
        assert_eq!(r("[1]"), (422, "body must be a JSON object".into()));
        let (s, d) = r("{");
        assert!(s == 400 && d.starts_with("malformed JSON body: "), "{d}");
        assert_eq!(r("").0, 400, "an empty body is not JSON here");
    }

    #[test]
    fn refusals_carry_fastapis_loc_and_type() {
        let at = |b: &str| {
            parse::<Body, Strict>(b.as_bytes())
                .unwrap_err()
                .invalid
                .unwrap()
        };
        let i = at(r#"{"score":1}"#);
        assert_eq!(
            (i.loc, i.kind),
            (vec![json!("body"), json!("name")], "value_error.missing")
        );
        let i = at(r#"{"name":"a","score":1,"items":[{"n":1},{"n":-1}]}"#);
        assert_eq!(
            (i.loc, i.kind),
            (
                vec![json!("body"), json!("items"), json!(1), json!("n")],
                "type_error.integer"
            )
        );
        let i = at(r#"{"name":"a","score":"x"}"#);
        assert_eq!(
            (i.loc, i.kind),
            (vec![json!("body"), json!("score")], "type_error.float")
        );
        assert_eq!(at("[1]").loc, vec![json!("body")]);
        let q = Params(HashMap::from([("limit".to_string(), "x".to_string())]));
        let e = q.int::<Strict>("limit", 1, 0, 10).unwrap_err();
        assert_eq!(e.invalid.unwrap().loc, vec![json!("query"), json!("limit")]);
        let e = path_int::<u64, Strict>("x", "epoch").unwrap_err();
        assert_eq!(e.invalid.unwrap().loc, vec![json!("path"), json!("epoch")]);
    }

    #[test]
    fn dialects_choose_status_and_words() {
        let r = |b| refusal::<Lenient>(b);
        assert_eq!(r("{"), (400, "Invalid JSON".into()));
        assert_eq!(r(r#"{"name":"a"}"#), (400, "score is required".into()));
        assert_eq!(r("  "), (400, "name is required".into()), "empty = {{}}");
    }

    #[test]
    fn params_clamp_or_refuse() {
        let q = Params(HashMap::from([
            ("a".to_string(), "-99999999999999999999999".to_string()),
            ("b".to_string(), "x".to_string()),
            ("c".to_string(), "2.5".to_string()),
        ]));
        assert_eq!(q.int::<Strict>("a", 1, 0, 10).unwrap(), 0);
        assert_eq!(q.int::<Strict>("none", 7, 0, 10).unwrap(), 7);
        let e = q.int::<Lenient>("b", 1, 0, 10).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.detail.as_str()),
            (400, "b must be an integer")
        );
        assert_eq!(q.parse::<f64, Strict>("c").unwrap(), Some(2.5));
        assert_eq!(q.parse::<u64, Strict>("c").unwrap_err().status, 422);
        assert_eq!(
            path_int::<u64, Lenient>("-3", "epoch").unwrap_err().status,
            400
        );
    }
}
