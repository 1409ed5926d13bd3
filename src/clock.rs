//! The one clock: unix time in the forms the protocols and stores use, and ISO-8601
//! UTC text. A clock before 1970 reads as 0 rather than failing: every caller uses the
//! time for stamps and windows, none for ordering it must trust.

pub use chrono::SecondsFormat;

/// Unix time in whole seconds (signed headers, result ids, windows).
pub fn now_s() -> u64 {
    (now_us() / 1_000_000).max(0) as u64
}

/// Unix time in fractional seconds (the pool's and the sidecar's stored times).
pub fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Unix time in microseconds (the relay's stored times).
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `us` (unix microseconds) as ISO-8601 UTC with `Z`, to `precision`.
pub fn iso(us: i64, precision: SecondsFormat) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(precision, true)
}

/// Now as ISO-8601 UTC with `Z`, to `precision`.
pub fn now_iso(precision: SecondsFormat) -> String {
    iso(now_us(), precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        let us = 1_764_400_000_123_456;
        assert_eq!(
            iso(us, SecondsFormat::Micros),
            "2025-11-29T07:06:40.123456Z"
        );
        assert_eq!(iso(us, SecondsFormat::Millis), "2025-11-29T07:06:40.123Z");
        assert_eq!(iso(us, SecondsFormat::Secs), "2025-11-29T07:06:40Z");
        assert_eq!(iso(0, SecondsFormat::Micros), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn the_forms_agree() {
        let (s, f, us) = (now_s(), now_f64(), now_us());
        assert!(s > 1_700_000_000);
        assert!((f - s as f64).abs() < 2.0);
        assert!((us / 1_000_000 - s as i64).abs() < 2);
    }
}
