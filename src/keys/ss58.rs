//! SS58 addresses: base58(prefix ++ pubkey ++ checksum), checksum = first 2 bytes of
//! blake2b-512("SS58PRE" ++ prefix ++ pubkey). Only single-byte prefixes (0..=63) exist
//! for 32-byte keys on Bittensor and the reference, so that is all we decode.

use blake2::{Blake2b512, Digest};

/// Bittensor's (and generic Substrate's) address format.
pub const DEFAULT_FORMAT: u8 = 42;

/// Byte length of a decoded single-prefix address: prefix + 32-byte key + 2-byte checksum.
const DECODED_LEN: usize = 1 + 32 + 2;

/// Why a string is not a usable SS58 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    #[error("address '{address}' is not valid base58: {reason}")]
    Base58 { address: String, reason: String },
    #[error("address '{address}' decodes to {len} bytes, expected {DECODED_LEN} (1-byte prefix, 32-byte key, 2-byte checksum)")]
    Length { address: String, len: usize },
    #[error(
        "address '{address}' has prefix {prefix}, which is not a single-byte SS58 format (0..=63)"
    )]
    Prefix { address: String, prefix: u8 },
    #[error("address '{address}' has a bad checksum (mistyped or corrupted)")]
    Checksum { address: String },
}

fn checksum(body: &[u8]) -> [u8; 2] {
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(body);
    let d = h.finalize();
    [d[0], d[1]]
}

/// Encode a public key as an SS58 address with a single-byte `format` (0..=63).
pub fn encode(public: &[u8; 32], format: u8) -> String {
    debug_assert!(format < 64, "multi-byte SS58 formats are not supported");
    let mut bytes = Vec::with_capacity(DECODED_LEN);
    bytes.push(format);
    bytes.extend_from_slice(public);
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    bs58::encode(bytes).into_string()
}

/// Decode an SS58 address of any single-byte format; returns `(format, public key)`.
pub fn decode(address: &str) -> Result<(u8, [u8; 32]), Ss58Error> {
    let bytes = bs58::decode(address)
        .into_vec()
        .map_err(|e| Ss58Error::Base58 {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    if bytes.len() != DECODED_LEN {
        return Err(Ss58Error::Length {
            address: address.to_string(),
            len: bytes.len(),
        });
    }
    if bytes[0] >= 64 {
        return Err(Ss58Error::Prefix {
            address: address.to_string(),
            prefix: bytes[0],
        });
    }
    if checksum(&bytes[..33]) != bytes[33..] {
        return Err(Ss58Error::Checksum {
            address: address.to_string(),
        });
    }
    let mut public = [0u8; 32];
    public.copy_from_slice(&bytes[1..33]);
    Ok((bytes[0], public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let pk = [7u8; 32];
        for format in [0u8, 42, 63] {
            let a = encode(&pk, format);
            assert_eq!(decode(&a).unwrap(), (format, pk));
        }
        let a = encode(&pk, 42);
        assert!(a.starts_with('5') && a.len() == 48, "{a}");
        assert!(matches!(decode("0OIl"), Err(Ss58Error::Base58 { .. })));
        assert!(matches!(decode("5abc"), Err(Ss58Error::Length { .. })));
        // Flip a checksum byte.
        let mut raw = bs58::decode(&a).into_vec().unwrap();
        raw[34] ^= 1;
        let bad = bs58::encode(raw).into_string();
        assert!(matches!(decode(&bad), Err(Ss58Error::Checksum { .. })));
    }
}
