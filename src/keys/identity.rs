//! The appliance's own identities (miner, validators, pool): btcli-format plaintext
//! keyfiles in `<data_dir>/keys/<name>`, created on first start. Plaintext because the
//! daemon must sign unattended; the directory is 0700 and the files 0600.

use super::keyfile::{self, KeyfileContent, Overwrite};
use super::{KeyError, Keypair};
use std::path::{Path, PathBuf};

/// `<data_dir>/keys`.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// `<data_dir>/keys/<name>`, refusing names that would escape the keys directory.
pub fn key_path(data_dir: &Path, name: &str) -> Result<PathBuf, KeyError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(KeyError::Name(name.to_string()));
    }
    Ok(keys_dir(data_dir).join(name))
}

/// Load the identity `name`, creating it (fresh 12-word mnemonic) on first use.
pub fn load_or_create(data_dir: &Path, name: &str) -> Result<Keypair, KeyError> {
    let path = key_path(data_dir, name)?;
    if path.exists() {
        return keyfile::read_keypair(&path, None);
    }
    let kp = Keypair::generate();
    match keyfile::write(
        &path,
        &KeyfileContent::from(kp.clone()),
        None,
        Overwrite::Refuse,
    ) {
        Ok(()) => Ok(kp),
        // Another thread or process created it between our check and write: use theirs.
        Err(KeyError::Exists { .. }) => keyfile::read_keypair(&path, None),
        Err(e) => Err(e),
    }
}

/// Names of the identities present in `<data_dir>/keys`, sorted.
pub fn list(data_dir: &Path) -> Result<Vec<String>, KeyError> {
    keyfile::list_names(&keys_dir(data_dir), |p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), "miner").unwrap();
        let b = load_or_create(dir.path(), "miner").unwrap();
        assert_eq!(a.public(), b.public());
        let v = load_or_create(dir.path(), "validator-0").unwrap();
        assert_ne!(a.public(), v.public());
        assert_eq!(list(dir.path()).unwrap(), vec!["miner", "validator-0"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/miner"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            load_or_create(dir.path(), "../x"),
            Err(KeyError::Name(_))
        ));
    }
}
