//! Known-answer tests against vectors made with substrate-interface and bittensor-wallet
//! (`<shared>/vectors`): agreement with the reference, not just with ourselves.

use bitsota::keys::keyfile::{self, KeyfileContent, Overwrite};
use bitsota::keys::{self, ss58, KeyError, Keypair, PublicKey, Ss58Error, Wallet};
use serde_json::Value;
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    std::env::var_os("BITSOTA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("vectors")
}

fn key_vectors() -> Vec<Value> {
    let path = vectors_dir().join("keys.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set BITSOTA_SHARED_DIR)", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let v = doc["vectors"].as_array().unwrap().clone();
    assert!(!v.is_empty());
    v
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field}"))
}

fn sig(v: &Value) -> [u8; 64] {
    keys::parse_signature_hex(s(v, "signature_hex")).unwrap()
}

#[test]
fn mnemonic_derives_reference_keys_and_addresses() {
    for v in key_vectors() {
        let kp = Keypair::from_mnemonic(s(&v, "mnemonic")).unwrap();
        assert_eq!(
            hex::encode(kp.mini_secret().unwrap()),
            s(&v, "mini_secret_hex")
        );
        assert_eq!(hex::encode(kp.public().0), s(&v, "public_key_hex"));
        assert_eq!(kp.ss58(), s(&v, "ss58"));
        assert_eq!(ss58::encode(&kp.public().0, 0), s(&v, "ss58_format_0"));
        // Both formats decode to the same key.
        assert_eq!(PublicKey::from_ss58(s(&v, "ss58")).unwrap(), kp.public());
        assert_eq!(
            PublicKey::from_ss58(s(&v, "ss58_format_0")).unwrap(),
            kp.public()
        );
    }
}

#[test]
fn reference_signatures_verify_and_tampered_ones_do_not() {
    for v in key_vectors() {
        let public = PublicKey::from_ss58(s(&v, "ss58")).unwrap();
        let sigs = v["signatures"].as_array().unwrap();
        assert!(!sigs.is_empty());
        for entry in sigs {
            let message = s(entry, "message");
            assert!(
                public.verify(message.as_bytes(), &sig(entry)),
                "{message:?}"
            );
            assert!(keys::verify_hex(s(&v, "ss58"), message, s(entry, "signature_hex")).is_ok());
            // Same signature, different message: must fail.
            let other = format!("{message}x");
            assert!(!public.verify(other.as_bytes(), &sig(entry)));
        }
        let wrapped = &v["bytes_wrapped"];
        assert!(public.verify(s(wrapped, "message").as_bytes(), &sig(wrapped)));
        let bad = &v["must_not_verify"];
        assert!(!public.verify(s(bad, "message").as_bytes(), &sig(bad)));
        assert!(
            keys::verify_hex(s(&v, "ss58"), s(bad, "message"), s(bad, "signature_hex")).is_err()
        );
    }
}

#[test]
fn reference_signatures_pass_the_relay_header_check() {
    use keys::{verify_headers, AuthStyle};
    for v in key_vectors() {
        for entry in v["signatures"].as_array().unwrap() {
            let message = s(entry, "message");
            if message.is_empty() {
                continue; // an empty X-Timestamp is a missing header
            }
            let r = verify_headers(
                Some(s(&v, "ss58")),
                Some(message),
                Some(s(entry, "signature_hex")),
                AuthStyle::Relay,
                0,
                0,
            );
            assert_eq!(r.unwrap().message, message);
        }
    }
}

#[test]
fn our_signatures_verify_with_the_reference_public_keys() {
    let v = &key_vectors()[0];
    let kp = Keypair::from_mnemonic(s(v, "mnemonic")).unwrap();
    let reference = PublicKey::from_ss58(s(v, "ss58")).unwrap();
    assert!(reference.verify(b"auth:1764400000", &kp.sign(b"auth:1764400000")));
}

#[test]
fn ss58_bad_checksum_is_a_clear_error() {
    let address = s(&key_vectors()[0], "ss58").to_string();
    let mut raw = bs58::decode(&address).into_vec().unwrap();
    raw[10] ^= 0x01; // corrupt the key; the checksum no longer matches
    let tampered = bs58::encode(raw).into_string();
    let e = PublicKey::from_ss58(&tampered).unwrap_err();
    assert!(matches!(e, Ss58Error::Checksum { .. }), "{e:?}");
    assert!(e.to_string().contains("checksum"), "{e}");
}

fn vector_wallet() -> Wallet {
    Wallet::new(vectors_dir().join("wallets"), "vector_wallet")
}

/// The address a plaintext keyfile states, read as JSON independently of our parser.
fn stated_address(path: &std::path::Path) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["ss58Address"].as_str().unwrap().to_string()
}

#[test]
fn every_plaintext_wallet_file_loads_with_its_address() {
    let w = vector_wallet();
    let hot = w.hotkeys().unwrap();
    assert_eq!(hot, vec!["vector_hot"]);
    let files = [
        (w.coldkey_path(), true),
        (w.coldkeypub_path(), false),
        (w.hotkey_path("vector_hot"), true),
        (w.hotkeypub_path("vector_hot"), false),
    ];
    for (path, secret) in files {
        let content = keyfile::read(&path, None).unwrap();
        assert_eq!(
            content.public().to_ss58(),
            stated_address(&path),
            "{}",
            path.display()
        );
        assert_eq!(
            matches!(content, KeyfileContent::Pair(_)),
            secret,
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_secret_field_of_a_btcli_keyfile_gives_the_same_key() {
    let w = vector_wallet();
    for path in [w.coldkey_path(), w.hotkey_path("vector_hot")] {
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let address = s(&v, "ss58Address");
        let from_phrase = Keypair::from_mnemonic(s(&v, "secretPhrase")).unwrap();
        let seed: [u8; 32] = hex::decode(&s(&v, "secretSeed")[2..])
            .unwrap()
            .try_into()
            .unwrap();
        let from_seed = Keypair::from_mini_secret(&seed).unwrap();
        let private: [u8; 64] = hex::decode(&s(&v, "privateKey")[2..])
            .unwrap()
            .try_into()
            .unwrap();
        let from_private = Keypair::from_private_key(&private).unwrap();
        for kp in [&from_phrase, &from_seed, &from_private] {
            assert_eq!(kp.ss58(), address);
        }
        // We write `privateKey` in the same layout btcli does.
        assert_eq!(*from_phrase.private_key(), private);
        assert_eq!(
            format!("0x{}", hex::encode(from_phrase.public().0)),
            s(&v, "publicKey")
        );
        // A signature made from the private key alone verifies for the address.
        assert!(from_private.public().verify(b"m", &from_private.sign(b"m")));
    }
}

#[test]
fn a_keyfile_we_write_has_btcli_fields_and_reads_back() {
    let src = vector_wallet().hotkey_path("vector_hot");
    let reference: Value = serde_json::from_slice(&std::fs::read(&src).unwrap()).unwrap();
    let kp = keyfile::read_keypair(&src, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Wallet::new(dir.path(), "w");
    let path = out.hotkey_path("h");
    keyfile::write(
        &path,
        &KeyfileContent::from(kp.clone()),
        None,
        Overwrite::Refuse,
    )
    .unwrap();
    let ours: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // Field for field what btcli wrote for the same key.
    assert_eq!(ours, reference);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        keyfile::read_keypair(&path, None).unwrap().ss58(),
        kp.ss58()
    );
    let again = keyfile::write(&path, &KeyfileContent::from(kp), None, Overwrite::Refuse);
    assert!(matches!(again, Err(KeyError::Exists { .. })));
}

fn encrypted_coldkey() -> PathBuf {
    vectors_dir().join("wallets/encrypted_wallet/coldkey")
}

#[test]
fn encrypted_keyfile_without_password_names_the_file() {
    let path = encrypted_coldkey();
    let e = keyfile::read(&path, None).unwrap_err();
    assert!(matches!(e, KeyError::Encrypted { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn encrypted_keyfile_decrypts_with_the_password() {
    let path = encrypted_coldkey();
    let expected = std::fs::read_to_string(path.with_file_name("EXPECTED_SS58")).unwrap();
    let content = keyfile::read(&path, Some("vector-password-123")).unwrap();
    assert_eq!(content.public().to_ss58(), expected.trim());
    assert!(matches!(content, KeyfileContent::Pair(_)));
    let wrong = keyfile::read(&path, Some("not-the-password")).unwrap_err();
    assert!(matches!(wrong, KeyError::WrongPassword { .. }), "{wrong:?}");
}

#[test]
fn a_keyfile_we_encrypt_reads_back_only_with_its_password() {
    let kp = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coldkey");
    keyfile::write(
        &path,
        &KeyfileContent::from(kp.clone()),
        Some("pw"),
        Overwrite::Refuse,
    )
    .unwrap();
    assert!(std::fs::read(&path).unwrap().starts_with(b"$NACL"));
    assert!(matches!(
        keyfile::read(&path, None),
        Err(KeyError::Encrypted { .. })
    ));
    assert_eq!(
        keyfile::read_keypair(&path, Some("pw")).unwrap().ss58(),
        kp.ss58()
    );
}
