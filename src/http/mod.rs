//! The HTTP layer every listener (relay, sidecar, pool) is built on:
//!
//! - [`ApiError`]: the one error answer, `{"detail": …}` with a status;
//! - [`Json`], [`Params`], [`path_int`]: typed, bounded input whose refusals name the
//!   failing field, worded per listener by a [`Dialect`];
//! - [`Api`]: the route table from which a listener's router and its OpenAPI document
//!   (`/openapi.json`, `/docs`) are both built;
//! - [`harden`]: the guard around every listener (panics, JSON 404/405, body limit).
//!
//! Domain rules never see this module: services map their own error enums into
//! [`ApiError`] in their HTTP shells.

mod api;
mod error;
mod guard;
mod json;

pub use api::{
    array, documented, is_unrouted, path_param, query, query_int, sample_path, schema_ref, Api, Op,
};
pub use error::{ok, ApiError, RefusalClass, Reply};
pub use guard::{harden, DEFAULT_MAX_BODY_BYTES};
pub use json::{from_value, parse, path_int, Dialect, Json, Params};

/// Whether a presented token (admin token, dashboard password, monitor token) equals the
/// configured one, in time independent of where they differ and of their lengths: both
/// are hashed, and the digests compared with `subtle`.
pub fn token_eq(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_value_only() {
        assert!(token_eq("sesame", "sesame"));
        assert!(token_eq("", ""));
        assert!(!token_eq("sesame", "sesamf"));
        assert!(!token_eq("sesame", "sesame "));
        assert!(!token_eq("", "sesame"));
    }
}
