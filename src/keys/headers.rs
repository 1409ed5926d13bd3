//! Signed request headers (`X-Key`, `X-Timestamp`, `X-Signature`): builders for the
//! clients (miner, validator, pool worker) and verifiers for the servers (relay, pool).
//! Pure functions over header values and an explicit `now`, so they test without HTTP.

use super::sr25519::{parse_signature_hex, Keypair, PublicKey};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

pub const HEADER_KEY: &str = "X-Key";
pub const HEADER_TIMESTAMP: &str = "X-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Signature";

/// The three auth header values a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Signer's SS58 address.
    pub key: String,
    /// `X-Timestamp` value (relay: the signed message itself; pool: bare unix seconds).
    pub timestamp: String,
    /// Lowercase hex signature, no `0x`.
    pub signature: String,
}

impl SignedHeaders {
    /// `(header name, value)` pairs, ready for any HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_KEY, &self.key),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// Relay headers for a miner: signs `auth:<unix>`, sent verbatim as `X-Timestamp`.
pub fn relay_miner_headers(kp: &Keypair, now: u64) -> SignedHeaders {
    signed(kp, format!("auth:{now}"), format!("auth:{now}"))
}

/// Relay headers for a validator: signs `<unix>`, sent verbatim as `X-Timestamp`.
pub fn relay_validator_headers(kp: &Keypair, now: u64) -> SignedHeaders {
    signed(kp, now.to_string(), now.to_string())
}

/// Pool headers: signs `auth:<unix>`, but `X-Timestamp` is the bare `<unix>`.
pub fn pool_headers(kp: &Keypair, now: u64) -> SignedHeaders {
    signed(kp, now.to_string(), format!("auth:{now}"))
}

fn signed(kp: &Keypair, timestamp: String, message: String) -> SignedHeaders {
    SignedHeaders {
        key: kp.ss58(),
        timestamp,
        signature: kp.sign_hex(&message),
    }
}

/// How a server turns `X-Timestamp` into the signed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStyle {
    /// The relay: the message is `X-Timestamp` verbatim. `auth:<n>` (miners) and `<n>`
    /// (validators) are skew-checked; any other message is accepted as the reference does.
    Relay,
    /// The pool: `X-Timestamp` must be unix seconds; the message is `auth:<X-Timestamp>`.
    Pool,
}

/// Why a signed request was refused. The `Display` text is what HTTP layers return as
/// `detail` (all map to 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {header} header: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
    #[error("invalid X-Key address: {0}")]
    BadAddress(String),
    #[error("invalid signature")]
    BadSignature,
    #[error("stale timestamp {timestamp}: more than {max_skew_s} s from server time {now}")]
    Stale {
        timestamp: u64,
        now: u64,
        max_skew_s: u64,
    },
    #[error("signature already used (replay)")]
    Replay,
}

/// A request whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSigner {
    /// The signer's address in format 42, whatever format `X-Key` used: one key must
    /// not count as two hotkeys (per-hotkey rules, allowlists compare strings).
    pub hotkey: String,
    pub public: [u8; 32],
    /// The message that was signed.
    pub message: String,
    /// The signature bytes (the replay guard's key; hex case or `0x` cannot dodge it).
    pub signature: [u8; 64],
}

fn required<'a>(header: &'static str, v: Option<&'a str>) -> Result<&'a str, AuthError> {
    match v.map(str::trim) {
        None | Some("") => Err(AuthError::Missing(header)),
        Some(s) => Ok(s),
    }
}

/// The unix seconds a relay/pool message claims, if it has that shape.
fn message_time(message: &str) -> Option<u64> {
    let digits = message.strip_prefix("auth:").unwrap_or(message);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An all-digit value too large for u64 is a (far-future) time, so it must fail the
    // skew check rather than pass as a free-form message.
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// Verify the three header values. `max_skew_s` = 0 turns the timestamp check off.
/// Does not check replays: see [`ReplayGuard::verify`] for the full server-side check.
pub fn verify_headers(
    key: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    style: AuthStyle,
    now: u64,
    max_skew_s: u64,
) -> Result<VerifiedSigner, AuthError> {
    let key = required(HEADER_KEY, key)?;
    let timestamp = required(HEADER_TIMESTAMP, timestamp)?;
    let signature = required(HEADER_SIGNATURE, signature)?;
    let public = PublicKey::from_ss58(key).map_err(|e| AuthError::BadAddress(e.to_string()))?;
    let sig = parse_signature_hex(signature).map_err(|e| AuthError::Malformed {
        header: HEADER_SIGNATURE,
        reason: e.to_string(),
    })?;
    let (message, claimed) = match style {
        AuthStyle::Relay => (timestamp.to_string(), message_time(timestamp)),
        AuthStyle::Pool => {
            let t = message_time(timestamp)
                .filter(|_| !timestamp.starts_with("auth:"))
                .ok_or_else(|| AuthError::Malformed {
                    header: HEADER_TIMESTAMP,
                    reason: format!("'{timestamp}' is not unix seconds"),
                })?;
            (format!("auth:{timestamp}"), Some(t))
        }
    };
    if !public.verify(message.as_bytes(), &sig) {
        return Err(AuthError::BadSignature);
    }
    if let Some(t) = claimed.filter(|_| max_skew_s > 0) {
        if t.abs_diff(now) > max_skew_s {
            return Err(AuthError::Stale {
                timestamp: t,
                now,
                max_skew_s,
            });
        }
    }
    Ok(VerifiedSigner {
        hotkey: public.to_ss58(),
        public: public.0,
        message,
        signature: sig,
    })
}

/// Signatures seen recently, to refuse replays. Bounded: when full, the oldest entries
/// go first (availability over perfect replay memory under a flood).
pub struct ReplayGuard {
    max_skew_s: u64,
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    expires: HashMap<[u8; 64], u64>,
    order: VecDeque<([u8; 64], u64)>,
}

impl ReplayGuard {
    /// Default bound on remembered signatures (~333 requests/s over a 300 s window).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// `max_skew_s` = 0 disables both the timestamp and the replay check.
    pub fn new(max_skew_s: u64, capacity: usize) -> Self {
        ReplayGuard {
            max_skew_s,
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    pub fn max_skew_s(&self) -> u64 {
        self.max_skew_s
    }

    /// Refuse a signature seen within the window, else remember it. A timestamp is
    /// accepted from `n - skew` to `n + skew`, so a signature stays replayable for up to
    /// twice the skew after first sight: that is how long it is remembered.
    pub fn check_and_insert(&self, signature: &[u8; 64], now: u64) -> Result<(), AuthError> {
        if self.max_skew_s == 0 {
            return Ok(());
        }
        let mut seen = self.inner.lock();
        while let Some(&(sig, exp)) = seen.order.front() {
            if exp > now && seen.order.len() < self.capacity {
                break;
            }
            seen.order.pop_front();
            // Only drop the map entry if it belongs to this queue slot.
            if seen.expires.get(&sig) == Some(&exp) {
                seen.expires.remove(&sig);
            }
        }
        if seen.expires.get(signature).is_some_and(|&exp| exp > now) {
            return Err(AuthError::Replay);
        }
        let exp = now.saturating_add(2 * self.max_skew_s);
        seen.expires.insert(*signature, exp);
        seen.order.push_back((*signature, exp));
        Ok(())
    }

    /// Number of remembered signatures.
    pub fn len(&self) -> usize {
        self.inner.lock().expires.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The full server check: headers, signature, timestamp skew, then replay.
    pub fn verify(
        &self,
        key: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        style: AuthStyle,
        now: u64,
    ) -> Result<VerifiedSigner, AuthError> {
        let v = verify_headers(key, timestamp, signature, style, now, self.max_skew_s)?;
        self.check_and_insert(&v.signature, now)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(h: &SignedHeaders, style: AuthStyle, now: u64) -> Result<VerifiedSigner, AuthError> {
        verify_headers(
            Some(&h.key),
            Some(&h.timestamp),
            Some(&h.signature),
            style,
            now,
            300,
        )
    }

    #[test]
    fn builders_verify_in_their_style() {
        let kp = Keypair::generate();
        let now = 1_764_400_000;
        let m = relay_miner_headers(&kp, now);
        assert_eq!(m.timestamp, "auth:1764400000");
        let v = verify(&m, AuthStyle::Relay, now + 10).unwrap();
        assert_eq!(
            (v.hotkey.as_str(), v.message.as_str()),
            (kp.ss58().as_str(), "auth:1764400000")
        );
        let val = relay_validator_headers(&kp, now);
        assert_eq!(
            verify(&val, AuthStyle::Relay, now).unwrap().message,
            "1764400000"
        );
        let p = pool_headers(&kp, now);
        assert_eq!(p.timestamp, "1764400000");
        assert_eq!(
            verify(&p, AuthStyle::Pool, now).unwrap().message,
            "auth:1764400000"
        );
        // Styles are not interchangeable.
        assert_eq!(
            verify(&p, AuthStyle::Relay, now),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            verify(&m, AuthStyle::Pool, now),
            Err(AuthError::Malformed { .. })
        ));
        assert_eq!(m.pairs()[0], ("X-Key", kp.ss58().as_str()));
    }

    #[test]
    fn rejects_forged_stale_malformed() {
        let kp = Keypair::generate();
        let now = 1_000_000;
        let mut h = relay_miner_headers(&kp, now);
        // Forged: someone else's address on this signature.
        let forged = SignedHeaders {
            key: Keypair::generate().ss58(),
            ..h.clone()
        };
        assert_eq!(
            verify(&forged, AuthStyle::Relay, now),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            verify(&h, AuthStyle::Relay, now + 301),
            Err(AuthError::Stale { .. })
        ));
        assert!(matches!(
            verify(&h, AuthStyle::Relay, now - 301),
            Err(AuthError::Stale { .. })
        ));
        assert!(verify_headers(
            Some(&h.key),
            Some(&h.timestamp),
            Some(&h.signature),
            AuthStyle::Relay,
            now + 10_000,
            0
        )
        .is_ok());
        assert_eq!(
            verify_headers(None, Some("1"), Some("ab"), AuthStyle::Relay, now, 300),
            Err(AuthError::Missing(HEADER_KEY))
        );
        assert_eq!(
            verify_headers(
                Some(&h.key),
                Some(" "),
                Some("ab"),
                AuthStyle::Relay,
                now,
                300
            ),
            Err(AuthError::Missing(HEADER_TIMESTAMP))
        );
        assert!(matches!(
            verify_headers(
                Some("5notanaddress"),
                Some("1"),
                Some("ab"),
                AuthStyle::Relay,
                now,
                300
            ),
            Err(AuthError::BadAddress(_))
        ));
        h.signature.truncate(10);
        assert!(matches!(
            verify(&h, AuthStyle::Relay, now),
            Err(AuthError::Malformed {
                header: HEADER_SIGNATURE,
                ..
            })
        ));
    }

    #[test]
    fn other_address_formats_and_huge_timestamps() {
        let kp = Keypair::generate();
        let h = relay_miner_headers(&kp, 100);
        let format0 = crate::keys::ss58::encode(&kp.public().0, 0);
        let v = verify_headers(
            Some(&format0),
            Some(&h.timestamp),
            Some(&h.signature),
            AuthStyle::Relay,
            100,
            300,
        )
        .unwrap();
        assert_eq!(v.hotkey, kp.ss58());
        let huge = "auth:99999999999999999999999";
        let sig = kp.sign_hex(huge);
        let r = verify_headers(
            Some(&h.key),
            Some(huge),
            Some(&sig),
            AuthStyle::Relay,
            100,
            300,
        );
        assert!(matches!(r, Err(AuthError::Stale { .. })), "{r:?}");
        // Free-form relay messages are accepted (as the reference does), unchecked for time.
        let sig = kp.sign_hex("hello");
        let r = verify_headers(
            Some(&h.key),
            Some("hello"),
            Some(&sig),
            AuthStyle::Relay,
            100,
            300,
        );
        assert_eq!(r.unwrap().message, "hello");
    }

    #[test]
    fn replay_guard_refuses_repeats_and_forgets_expired() {
        let kp = Keypair::generate();
        let guard = ReplayGuard::new(300, 1000);
        let now = 5_000;
        let h = relay_miner_headers(&kp, now);
        let args = |g: &ReplayGuard, t| {
            g.verify(
                Some(&h.key),
                Some(&h.timestamp),
                Some(&h.signature),
                AuthStyle::Relay,
                t,
            )
        };
        args(&guard, now).unwrap();
        assert_eq!(args(&guard, now + 1), Err(AuthError::Replay));
        // Upper-case hex or a 0x prefix is the same signature.
        let upper = format!("0x{}", h.signature.to_uppercase());
        assert_eq!(
            guard.verify(
                Some(&h.key),
                Some(&h.timestamp),
                Some(&upper),
                AuthStyle::Relay,
                now + 2
            ),
            Err(AuthError::Replay)
        );
        // After twice the skew the entry expires (and the timestamp is stale anyway).
        let sig = [9u8; 64];
        guard.check_and_insert(&sig, 0).unwrap();
        assert_eq!(guard.check_and_insert(&sig, 599), Err(AuthError::Replay));
        guard.check_and_insert(&sig, 600).unwrap();
        assert!(guard.len() <= 2);
    }

    #[test]
    fn replay_guard_is_bounded() {
        let guard = ReplayGuard::new(300, 4);
        for i in 0..10u8 {
            guard.check_and_insert(&[i; 64], 1).unwrap();
        }
        assert!(guard.len() <= 4);
        let off = ReplayGuard::new(0, 4);
        off.check_and_insert(&[1; 64], 1).unwrap();
        off.check_and_insert(&[1; 64], 1).unwrap();
        assert!(off.is_empty());
    }
}
