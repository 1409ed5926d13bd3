//! Keys: sr25519, SS58, keyfiles, signed headers (keys.md), compatible with
//! substrate-interface / bittensor so btcli keys work here and our signatures verify there.
//!
//! The public API, by user:
//! - **signing clients** (miner, validator, pool worker): get a [`Keypair`] from
//!   [`identity::load_or_create`] (the appliance's own keys in `<data_dir>/keys/<name>`)
//!   or [`keyfile::read_keypair`] on a btcli [`Wallet`] path; build auth headers with
//!   [`relay_miner_headers`], [`relay_validator_headers`] or [`pool_headers`] and send
//!   [`SignedHeaders::pairs`].
//! - **servers** (relay, pool): one [`ReplayGuard`] per listener, then
//!   [`ReplayGuard::verify`] on the three header values with [`AuthStyle::Relay`] or
//!   [`AuthStyle::Pool`] → [`VerifiedSigner`] or an [`AuthError`] whose `Display` is the
//!   401 `detail`. [`verify_headers`] is the same check without replay memory.
//! - **validator**: [`verify_hex`] checks a miner's `signature` over `timestamp_message`.
//! - addresses: [`PublicKey::from_ss58`] / [`PublicKey::to_ss58`], or [`ss58`] for other
//!   formats.

mod headers;
pub mod identity;
pub mod keyfile;
mod sr25519;
pub mod ss58;

pub use headers::{
    pool_headers, relay_miner_headers, relay_validator_headers, verify_headers, AuthError,
    AuthStyle, ReplayGuard, SignedHeaders, VerifiedSigner, HEADER_KEY, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
pub use keyfile::{default_wallet_root, KeyfileContent, Overwrite, Wallet};
pub use sr25519::{parse_signature_hex, verify_hex, Keypair, PublicKey, MNEMONIC_WORDS};
pub use ss58::Ss58Error;

/// Everything that can go wrong with keys and keyfiles (auth failures are [`AuthError`]).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    // Not a `#[source]`: the text already includes the cause, and anyhow's `{:#}` would
    // print it twice.
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    #[error("invalid secret key: {0}")]
    Secret(String),
    #[error(transparent)]
    Ss58(#[from] Ss58Error),
    #[error("{0}")]
    Signature(String),
    #[error("keyfile {path}: {reason}")]
    Keyfile { path: String, reason: String },
    #[error("keyfile {path} is encrypted ($NACL); a password is needed to read it")]
    Encrypted { path: String },
    #[error("keyfile {path}: wrong password (or a corrupted file)")]
    WrongPassword { path: String },
    #[error("keyfile {path} already exists; refusing to overwrite it")]
    Exists { path: String },
    #[error("keyfile {path} holds only a public key; signing needs the secret key")]
    PublicOnly { path: String },
    #[error("invalid key name '{0}': use letters, digits, '-', '_' and '.'")]
    Name(String),
    #[error("{0}")]
    Crypto(String),
}
