//! Keys: sr25519, SS58, keyfiles, signed headers (keys.md).
