//! sr25519 keys and signatures exactly as substrate-interface makes them.

use super::{ss58, KeyError};
use schnorrkel::{ExpansionMode, MiniSecretKey, SecretKey};
use zeroize::Zeroizing;

/// Signing context used by Substrate (and therefore by every Bittensor client).
const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Words in a freshly generated mnemonic (btcli's default).
pub const MNEMONIC_WORDS: usize = 12;

/// A 32-byte sr25519 public key (an account id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parse an SS58 address of any single-byte format.
    pub fn from_ss58(address: &str) -> Result<Self, ss58::Ss58Error> {
        ss58::decode(address).map(|(_, pk)| PublicKey(pk))
    }

    /// The address in Bittensor's format 42.
    pub fn to_ss58(&self) -> String {
        ss58::encode(&self.0, ss58::DEFAULT_FORMAT)
    }

    /// `0x` + lowercase hex, as btcli writes `publicKey`/`accountId`.
    pub fn to_hex0x(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// True if `signature` signs `message`, either as is or wrapped in
    /// `<Bytes>…</Bytes>` (what browser wallets such as polkadot.js sign).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(pk) = schnorrkel::PublicKey::from_bytes(&self.0) else {
            return false;
        };
        let Ok(sig) = schnorrkel::Signature::from_bytes(signature) else {
            return false;
        };
        if pk.verify_simple(SIGNING_CONTEXT, message, &sig).is_ok() {
            return true;
        }
        let mut wrapped = Vec::with_capacity(message.len() + 15);
        wrapped.extend_from_slice(b"<Bytes>");
        wrapped.extend_from_slice(message);
        wrapped.extend_from_slice(b"</Bytes>");
        pk.verify_simple(SIGNING_CONTEXT, &wrapped, &sig).is_ok()
    }
}

/// Parse a signature given as hex (optional `0x`), 64 bytes.
pub fn parse_signature_hex(s: &str) -> Result<[u8; 64], KeyError> {
    let raw = strip_0x(s.trim());
    let bytes =
        hex::decode(raw).map_err(|e| KeyError::Signature(format!("signature is not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        KeyError::Signature(format!("signature has {} bytes, expected 64", b.len()))
    })
}

/// Verify a hex signature by an SS58 address over a UTF-8 message (also accepting the
/// `<Bytes>` wrapping). How the validator checks a miner's `timestamp_message`.
pub fn verify_hex(address: &str, message: &str, signature_hex: &str) -> Result<(), KeyError> {
    let public = PublicKey::from_ss58(address)?;
    let sig = parse_signature_hex(signature_hex)?;
    if public.verify(message.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(KeyError::Signature(format!(
            "signature does not verify for {address} over the given message"
        )))
    }
}

pub(crate) fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

/// An sr25519 keypair, remembering the mnemonic / mini secret it came from (if any) so
/// that it can be written back to a btcli keyfile without losing them. Every secret is
/// wiped from memory when the keypair is dropped (schnorrkel wipes its own key; the
/// mnemonic and mini secret are [`Zeroizing`]).
#[derive(Clone)]
pub struct Keypair {
    inner: schnorrkel::Keypair,
    mnemonic: Option<Zeroizing<String>>,
    mini_secret: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keypair {
    // Never print secrets, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("ss58", &self.ss58())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// A new key from a fresh 12-word English mnemonic (OS randomness).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut entropy = Zeroizing::new([0u8; MNEMONIC_WORDS * 4 / 3]);
        rand::rngs::OsRng.fill_bytes(entropy.as_mut());
        let m = bip39::Mnemonic::from_entropy(entropy.as_ref())
            .expect("16 bytes is valid BIP-39 entropy");
        let phrase = Zeroizing::new(m.to_string());
        Self::from_mnemonic(&phrase).expect("a generated mnemonic is valid")
    }

    /// Substrate's mnemonic scheme (substrate-bip39): mini secret = first 32 bytes of
    /// PBKDF2-HMAC-SHA512(password = mnemonic entropy, salt = "mnemonic", 2048 rounds).
    /// This is deliberately *not* the BIP-39 seed (which hashes the phrase text).
    pub fn from_mnemonic(phrase: &str) -> Result<Self, KeyError> {
        let normalized = Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
        let m = bip39::Mnemonic::parse_in(bip39::Language::English, normalized.as_str())
            .map_err(|e| KeyError::Mnemonic(e.to_string()))?;
        let entropy = Zeroizing::new(m.to_entropy());
        let mut seed = Zeroizing::new([0u8; 64]);
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&entropy, b"mnemonic", 2048, seed.as_mut());
        let mut mini = Zeroizing::new([0u8; 32]);
        mini.copy_from_slice(&seed[..32]);
        let mut kp = Self::from_mini_secret(&mini)?;
        kp.mnemonic = Some(normalized);
        Ok(kp)
    }

    /// From a 32-byte mini secret (btcli's `secretSeed`), expanded in Ed25519 mode.
    pub fn from_mini_secret(mini: &[u8; 32]) -> Result<Self, KeyError> {
        let msk = MiniSecretKey::from_bytes(mini)
            .map_err(|e| KeyError::Secret(format!("mini secret: {e}")))?;
        Ok(Keypair {
            inner: msk.expand_to_keypair(ExpansionMode::Ed25519),
            mnemonic: None,
            mini_secret: Some(Zeroizing::new(*mini)),
        })
    }

    /// From a 64-byte expanded secret (btcli's `privateKey`): schnorrkel's canonical
    /// layout (scalar ++ nonce), checked against a btcli keyfile; *not* the Ed25519
    /// (cofactor-multiplied) layout.
    pub fn from_private_key(bytes: &[u8; 64]) -> Result<Self, KeyError> {
        let sk = SecretKey::from_bytes(bytes)
            .map_err(|e| KeyError::Secret(format!("private key: {e}")))?;
        Ok(Keypair {
            inner: sk.to_keypair(),
            mnemonic: None,
            mini_secret: None,
        })
    }

    /// Parse `0x`-prefixed (or bare) hex of a fixed length, for keyfile fields.
    pub(crate) fn hex_field<const N: usize>(field: &str, s: &str) -> Result<[u8; N], KeyError> {
        let bytes = hex::decode(strip_0x(s.trim()))
            .map_err(|e| KeyError::Secret(format!("{field}: not hex: {e}")))?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            KeyError::Secret(format!("{field}: {} bytes, expected {N}", b.len()))
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.inner.public.to_bytes())
    }

    /// SS58 address, format 42.
    pub fn ss58(&self) -> String {
        self.public().to_ss58()
    }

    /// The mnemonic this key was derived from, if known.
    pub fn mnemonic(&self) -> Option<&str> {
        self.mnemonic.as_ref().map(|m| m.as_str())
    }

    /// The 32-byte mini secret (btcli `secretSeed`), if known.
    pub fn mini_secret(&self) -> Option<&[u8; 32]> {
        self.mini_secret.as_deref()
    }

    /// The 64-byte expanded secret in btcli's `privateKey` layout.
    pub fn private_key(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.inner.secret.to_bytes())
    }

    /// Sign bytes (context `substrate`). Signatures are randomised: two calls differ.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign_simple(SIGNING_CONTEXT, message).to_bytes()
    }

    /// Sign a UTF-8 message; lowercase hex without `0x`, as sent in `X-Signature`.
    pub fn sign_hex(&self, message: &str) -> String {
        hex::encode(self.sign(message.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_wrapping() {
        let kp = Keypair::generate();
        assert_eq!(kp.mnemonic().unwrap().split(' ').count(), 12);
        let sig = kp.sign(b"hello");
        assert!(kp.public().verify(b"hello", &sig));
        assert!(!kp.public().verify(b"hellO", &sig));
        let wrapped = kp.sign(b"<Bytes>hello</Bytes>");
        assert!(kp.public().verify(b"hello", &wrapped));
        assert!(verify_hex(&kp.ss58(), "hello", &format!("0x{}", hex::encode(sig))).is_ok());
        assert!(verify_hex(&kp.ss58(), "hello", "abcd").is_err());
        let other = Keypair::generate();
        assert!(!other.public().verify(b"hello", &sig));
    }

    #[test]
    fn secret_forms_agree() {
        let kp = Keypair::generate();
        let from_seed = Keypair::from_mini_secret(kp.mini_secret().unwrap()).unwrap();
        let from_priv = Keypair::from_private_key(&kp.private_key()).unwrap();
        assert_eq!(from_seed.public(), kp.public());
        assert_eq!(from_priv.public(), kp.public());
        let sig = from_priv.sign(b"m");
        assert!(kp.public().verify(b"m", &sig));
    }

    #[test]
    fn bad_mnemonic_is_an_error() {
        let e = Keypair::from_mnemonic("not a real mnemonic at all").unwrap_err();
        assert!(matches!(e, KeyError::Mnemonic(_)), "{e}");
    }
}
