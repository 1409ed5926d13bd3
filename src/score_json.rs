//! How a score crosses JSON. JSON has no infinities and no NaN, and a program whose
//! predictions blow up scores −∞; every place that writes a score (the `eval` and
//! `bench` commands, pool evaluations and results) uses this one form:
//!
//! - a finite score is a JSON number (shortest form that parses back to the same bits);
//! - a non-finite score is `null`, and the object carries `"invalid"` (for a field named
//!   `score`) or `"<field>_invalid"` (any other field) naming why: `"-inf"`, `"inf"` or
//!   `"nan"` (`"non-finite"` where only that much is known);
//! - in a list of scores (per-task scores) a non-finite entry is `null`.

use serde_json::{Map, Value};

/// `"-inf"`, `"inf"` or `"nan"` for a non-finite value; `None` when finite.
pub fn non_finite_reason(x: impl Into<f64>) -> Option<&'static str> {
    let x: f64 = x.into();
    if x.is_nan() {
        Some("nan")
    } else if x == f64::INFINITY {
        Some("inf")
    } else if x == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// A score as a JSON value: the number (an `f32` keeps its own shortest form), or
/// `null` when non-finite.
pub fn value<T: Into<f64> + Copy + serde::Serialize>(x: T) -> Value {
    if x.into().is_finite() {
        serde_json::to_value(x).unwrap_or(Value::Null)
    } else {
        Value::Null
    }
}

/// The name of the field that explains a non-finite `key`.
pub fn invalid_key(key: &str) -> String {
    if key == "score" {
        "invalid".to_string()
    } else {
        format!("{key}_invalid")
    }
}

/// Write `key` (and, when non-finite, its `invalid` field) into `obj`.
pub fn put<T: Into<f64> + Copy + serde::Serialize>(obj: &mut Map<String, Value>, key: &str, x: T) {
    obj.insert(key.to_string(), value(x));
    if let Some(reason) = non_finite_reason(x) {
        obj.insert(invalid_key(key), Value::String(reason.to_string()));
    }
}

/// [`put`] into a JSON object value (anything else is left alone).
pub fn put_in<T: Into<f64> + Copy + serde::Serialize>(v: &mut Value, key: &str, x: T) {
    if let Value::Object(obj) = v {
        put(obj, key, x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finite_scores_are_numbers_and_the_rest_is_explained() {
        let mut v = json!({});
        put_in(&mut v, "score", 0.25);
        assert_eq!(v, json!({"score": 0.25}));
        let mut v = json!({});
        put_in(&mut v, "score", f64::NEG_INFINITY);
        assert_eq!(v, json!({"score": null, "invalid": "-inf"}));
        let mut v = json!({});
        put_in(&mut v, "best_fitness", f32::NAN);
        assert_eq!(
            v,
            json!({"best_fitness": null, "best_fitness_invalid": "nan"})
        );
        put_in(&mut v, "x", f64::INFINITY);
        assert_eq!(v["x_invalid"], "inf");
        assert_eq!(value(f64::MIN_POSITIVE), json!(f64::MIN_POSITIVE));
        assert_eq!(value(0.9f32), json!(0.9f32));
    }
}
