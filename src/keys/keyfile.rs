//! btcli keyfiles: plaintext JSON (what hotkeys normally are), `$NACL`-encrypted
//! coldkeys (bittensor-wallet's format), and the `<root>/<wallet>/…` layout.

use super::sr25519::{Keypair, PublicKey};
use super::KeyError;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Marker that starts a bittensor-wallet encrypted keyfile.
const NACL_MARKER: &[u8] = b"$NACL";
/// bittensor-wallet's fixed Argon2i salt (it uses one salt for every file).
const NACL_SALT: [u8; 16] = *b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1";
/// libsodium `crypto_pwhash_argon2i` SENSITIVE limits, which bittensor-wallet uses:
/// 8 passes over 512 MiB, one lane.
const ARGON2I_OPS: u32 = 8;
const ARGON2I_MEM_KIB: u32 = 512 * 1024;
const NONCE_LEN: usize = 24;

/// The fields we read from a btcli keyfile (camelCase, all optional).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct KeyfileJson {
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    secret_phrase: Option<String>,
    #[serde(default)]
    secret_seed: Option<String>,
    #[serde(default)]
    ss58_address: Option<String>,
}

impl Drop for KeyfileJson {
    fn drop(&mut self) {
        self.private_key.zeroize();
        self.secret_phrase.zeroize();
        self.secret_seed.zeroize();
    }
}

/// What a keyfile holds: a full keypair, or only the public half (`*pub.txt` files).
#[derive(Debug, Clone)]
pub enum KeyfileContent {
    /// Boxed: a keypair is ten times the size of a public key.
    Pair(Box<Keypair>),
    PublicOnly(PublicKey),
}

impl KeyfileContent {
    pub fn public(&self) -> PublicKey {
        match self {
            KeyfileContent::Pair(kp) => kp.public(),
            KeyfileContent::PublicOnly(pk) => *pk,
        }
    }
}

/// Whether writing may replace an existing file. Explicit so that no caller overwrites
/// a key by accident (a lost coldkey is lost funds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Allow,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |cause| KeyError::Io {
        path: path.display().to_string(),
        cause,
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Keyfile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Read a keyfile. Encrypted (`$NACL`) files need `password`; without one the error
/// names the file. Secrets are taken in btcli's order: phrase, seed, private key.
pub fn read(path: &Path, password: Option<&str>) -> Result<KeyfileContent, KeyError> {
    // Both the file and its decryption hold secrets: wiped when dropped.
    let raw = Zeroizing::new(std::fs::read(path).map_err(io_err(path))?);
    let plain = if raw.starts_with(NACL_MARKER) {
        let Some(password) = password else {
            return Err(KeyError::Encrypted {
                path: path.display().to_string(),
            });
        };
        decrypt(path, &raw[NACL_MARKER.len()..], password)?
    } else {
        raw
    };
    parse(path, &plain)
}

/// Read a keyfile that must hold a secret (for signing).
pub fn read_keypair(path: &Path, password: Option<&str>) -> Result<Keypair, KeyError> {
    match read(path, password)? {
        KeyfileContent::Pair(kp) => Ok(*kp),
        KeyfileContent::PublicOnly(_) => Err(KeyError::PublicOnly {
            path: path.display().to_string(),
        }),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<KeyfileContent, KeyError> {
    let json: KeyfileJson = serde_json::from_slice(bytes)
        .map_err(|e| bad(path, format!("not a btcli JSON keyfile: {e}")))?;
    let within = |e: KeyError| bad(path, e.to_string());
    let content: KeyfileContent = if let Some(phrase) = json.secret_phrase.as_deref() {
        Keypair::from_mnemonic(phrase).map_err(within)?.into()
    } else if let Some(seed) = json.secret_seed.as_deref() {
        let mini = Keypair::hex_field::<32>("secretSeed", seed).map_err(within)?;
        Keypair::from_mini_secret(&mini).map_err(within)?.into()
    } else if let Some(private) = json.private_key.as_deref() {
        let bytes = Keypair::hex_field::<64>("privateKey", private).map_err(within)?;
        Keypair::from_private_key(&bytes).map_err(within)?.into()
    } else if let Some(public) = json.public_key.as_deref().or(json.account_id.as_deref()) {
        PublicKey(Keypair::hex_field::<32>("publicKey", public).map_err(within)?).into()
    } else if let Some(address) = json.ss58_address.as_deref() {
        PublicKey::from_ss58(address)
            .map_err(|e| bad(path, e.to_string()))?
            .into()
    } else {
        return Err(bad(
            path,
            "holds no key (no secretPhrase, secretSeed, privateKey, publicKey or ss58Address)",
        ));
    };
    // A stated address that disagrees with the key means a corrupted or hand-edited file;
    // signing with it would silently use another identity.
    if let Some(address) = json.ss58_address.as_deref() {
        let stated = PublicKey::from_ss58(address).map_err(|e| bad(path, e.to_string()))?;
        if stated != content.public() {
            return Err(bad(
                path,
                format!(
                    "ss58Address {address} does not match the key it holds ({})",
                    content.public().to_ss58()
                ),
            ));
        }
    }
    Ok(content)
}

impl From<Keypair> for KeyfileContent {
    fn from(kp: Keypair) -> Self {
        KeyfileContent::Pair(Box::new(kp))
    }
}

impl From<PublicKey> for KeyfileContent {
    fn from(pk: PublicKey) -> Self {
        KeyfileContent::PublicOnly(pk)
    }
}

/// Argon2i key for the secretbox, as libsodium `crypto_pwhash` with bittensor's limits.
fn derive_box_key(password: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = argon2::Params::new(ARGON2I_MEM_KIB, ARGON2I_OPS, 1, Some(32))
        .map_err(|e| KeyError::Crypto(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), &NACL_SALT, key.as_mut())
        .map_err(|e| KeyError::Crypto(format!("argon2: {e}")))?;
    Ok(key)
}

/// Decrypt the bytes after `$NACL`: 24-byte nonce, then XSalsa20-Poly1305 box.
fn decrypt(path: &Path, body: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    if body.len() < NONCE_LEN + 16 {
        return Err(bad(path, "encrypted keyfile is truncated"));
    }
    let key = derive_box_key(password)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    let nonce = crypto_secretbox::Nonce::from_slice(&body[..NONCE_LEN]);
    cipher
        .decrypt(nonce, &body[NONCE_LEN..])
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword {
            path: path.display().to_string(),
        })
}

/// Encrypt keyfile JSON the way bittensor-wallet does (`$NACL` + nonce + box).
fn encrypt(plain: &[u8], password: &str) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, AeadCore, KeyInit, OsRng};
    let key = derive_box_key(password)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    let nonce = crypto_secretbox::XSalsa20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, plain)
        .map_err(|e| KeyError::Crypto(format!("secretbox: {e}")))?;
    let mut out = NACL_MARKER.to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// btcli's JSON: public files carry only the public fields; secret files add
/// `privateKey`, `secretPhrase` and `secretSeed` (null when unknown, as btcli writes).
fn to_json(content: &KeyfileContent) -> Zeroizing<Vec<u8>> {
    let public = content.public();
    let mut json = serde_json::json!({
        "accountId": public.to_hex0x(),
        "publicKey": public.to_hex0x(),
        "ss58Address": public.to_ss58(),
        "cryptoType": 1,
    });
    if let KeyfileContent::Pair(kp) = content {
        json["privateKey"] = format!("0x{}", hex::encode(kp.private_key())).into();
        json["secretPhrase"] = kp.mnemonic().into();
        json["secretSeed"] = kp
            .mini_secret()
            .map(|s| format!("0x{}", hex::encode(s)))
            .into();
    }
    let bytes = serde_json::to_vec(&json).expect("keyfile JSON always serialises");
    for field in ["privateKey", "secretPhrase", "secretSeed"] {
        if let Some(serde_json::Value::String(secret)) = json.get_mut(field) {
            secret.zeroize();
        }
    }
    Zeroizing::new(bytes)
}

/// Write a keyfile in btcli's JSON format, mode 0600, encrypted if `password` is given.
/// Parent directories are created (mode 0700). Refuses to replace an existing file
/// unless `overwrite` is [`Overwrite::Allow`].
pub fn write(
    path: &Path,
    content: &KeyfileContent,
    password: Option<&str>,
    overwrite: Overwrite,
) -> Result<(), KeyError> {
    let plain = to_json(content);
    let bytes = match password {
        Some(pw) => Zeroizing::new(encrypt(&plain, pw)?),
        None => plain,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    match overwrite {
        // create_new makes the existence check and the creation one atomic step.
        Overwrite::Refuse => opts.create_new(true),
        Overwrite::Allow => opts.create(true).truncate(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.display().to_string(),
            }
        } else {
            io_err(path)(e)
        }
    })?;
    #[cfg(unix)]
    {
        // `mode` only applies to new files; an overwritten file keeps its old mode.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    f.write_all(&bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io_err(dir))
}

/// `~/.bittensor/wallets`, btcli's default wallets root.
pub fn default_wallet_root() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".bittensor")
        .join("wallets")
}

/// One btcli wallet: `<root>/<name>/coldkey`, `coldkeypub.txt`, `hotkeys/<hotkey>`.
#[derive(Clone, Debug)]
pub struct Wallet {
    pub root: PathBuf,
    pub name: String,
}

impl Wallet {
    pub fn new(root: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Wallet {
            root: root.into(),
            name: name.into(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    pub fn coldkey_path(&self) -> PathBuf {
        self.dir().join("coldkey")
    }

    pub fn coldkeypub_path(&self) -> PathBuf {
        self.dir().join("coldkeypub.txt")
    }

    pub fn hotkey_path(&self, hotkey: &str) -> PathBuf {
        self.dir().join("hotkeys").join(hotkey)
    }

    /// `hotkeys/<hotkey>pub.txt`, which current btcli writes next to each hotkey.
    pub fn hotkeypub_path(&self, hotkey: &str) -> PathBuf {
        self.dir().join("hotkeys").join(format!("{hotkey}pub.txt"))
    }

    /// Names of the wallet's hotkeys (files in `hotkeys/` that are not `*pub.txt`).
    pub fn hotkeys(&self) -> Result<Vec<String>, KeyError> {
        list_names(&self.dir().join("hotkeys"), |p| p.is_file()).map(|names| {
            names
                .into_iter()
                .filter(|n| !n.ends_with("pub.txt"))
                .collect()
        })
    }
}

/// Wallet names under a root (directories), sorted; an absent root has none.
pub fn list_wallets(root: &Path) -> Result<Vec<Wallet>, KeyError> {
    Ok(list_names(root, |p| p.is_dir())?
        .into_iter()
        .map(|n| Wallet::new(root, n))
        .collect())
}

/// Sorted names of the entries of `dir` that pass `keep`; an absent `dir` has none.
pub(crate) fn list_names(
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<String>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        if keep(&path) {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_round_trip_and_no_silent_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w/hotkeys/h");
        let kp = Keypair::generate();
        write(&path, &kp.clone().into(), None, Overwrite::Refuse).unwrap();
        let back = read_keypair(&path, None).unwrap();
        assert_eq!(back.public(), kp.public());
        assert_eq!(back.mnemonic(), kp.mnemonic());
        let e = write(&path, &kp.clone().into(), None, Overwrite::Refuse).unwrap_err();
        assert!(matches!(e, KeyError::Exists { .. }), "{e}");
        let other = Keypair::generate();
        write(&path, &other.clone().into(), None, Overwrite::Allow).unwrap();
        assert_eq!(read_keypair(&path, None).unwrap().public(), other.public());
    }

    #[test]
    fn public_only_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let kp = Keypair::generate();
        let p = dir.path().join("pub.txt");
        write(&p, &kp.public().into(), None, Overwrite::Refuse).unwrap();
        assert!(
            matches!(read(&p, None).unwrap(), KeyfileContent::PublicOnly(pk) if pk == kp.public())
        );
        assert!(matches!(
            read_keypair(&p, None),
            Err(KeyError::PublicOnly { .. })
        ));

        let q = dir.path().join("mismatch");
        let text = format!(
            "{{\"secretPhrase\":\"{}\",\"ss58Address\":\"{}\"}}",
            kp.mnemonic().unwrap(),
            Keypair::generate().ss58()
        );
        std::fs::write(&q, text).unwrap();
        let e = read(&q, None).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        std::fs::write(&q, "not json").unwrap();
        assert!(matches!(read(&q, None), Err(KeyError::Keyfile { .. })));
    }
}
