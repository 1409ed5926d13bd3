//! `bitsota wallet` end to end, running the built binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared_vectors() -> PathBuf {
    std::env::var_os("BITSOTA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("vectors")
}

/// Run `bitsota wallet <args>` with no wallet-related environment leaking in.
fn wallet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bitsota"))
        .arg("wallet")
        .args(args)
        .env_remove("BITSOTA_WALLET_ROOT")
        .env_remove("BITSOTA_WALLET_PASSWORD")
        .env_remove("BITSOTA_DATA_DIR")
        .output()
        .expect("run bitsota")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = wallet(args);
    assert!(
        o.status.success(),
        "bitsota wallet {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// The value after `label: ` in the command's output.
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no '{label}' in {out}"))
        .to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn new_sign_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let root = path_str(dir.path());
    let key = ["--root", root, "--wallet", "w", "--hotkey", "h"];
    let created = ok(&[&["new"][..], &key].concat());
    let address = field(&created, "address");
    assert!(address.starts_with('5') && address.len() == 48, "{address}");
    // btcli's layout: the hotkey and its public file.
    assert!(dir.path().join("w/hotkeys/h").is_file());
    assert!(dir.path().join("w/hotkeys/hpub.txt").is_file());

    let shown = ok(&[&["show"][..], &key].concat());
    assert_eq!(field(&shown, "address"), address);
    assert!(
        !shown.contains("mnemonic"),
        "secrets shown unasked: {shown}"
    );

    let sig = ok(&[&["sign"][..], &key, &["--message", "auth:1764400000"]].concat());
    let sig = sig.trim();
    assert_eq!(sig.len(), 128);
    assert!(sig
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

    let verify = |message: &str, signature: &str| {
        wallet(&[
            "verify",
            "--address",
            &address,
            "--message",
            message,
            "--signature",
            signature,
        ])
    };
    let good = verify("auth:1764400000", sig);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(stdout(&good).contains("valid"));
    let bad = verify("auth:1764400001", sig);
    assert_eq!(bad.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&bad.stderr).trim().is_empty());
    let bad_address = wallet(&[
        "verify",
        "--address",
        "5notanaddress",
        "--message",
        "m",
        "--signature",
        sig,
    ]);
    assert_eq!(bad_address.status.code(), Some(2));
}

#[test]
fn new_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let root = path_str(dir.path());
    let first = field(&ok(&["new", "--root", root, "--wallet", "w"]), "address");
    let again = wallet(&["new", "--root", root, "--wallet", "w"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let shown = field(&ok(&["show", "--root", root, "--wallet", "w"]), "address");
    assert_eq!(shown, first);
    let replaced = field(
        &ok(&["new", "--root", root, "--wallet", "w", "--overwrite"]),
        "address",
    );
    assert_ne!(replaced, first);
    assert!(dir.path().join("w/coldkeypub.txt").is_file());
}

#[test]
fn import_reproduces_the_reference_address() {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(shared_vectors().join("keys.json")).unwrap())
            .unwrap();
    let v = &doc["vectors"][0];
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("imported");
    let out = ok(&[
        "import",
        "--keyfile",
        path_str(&keyfile),
        "--mnemonic",
        v["mnemonic"].as_str().unwrap(),
    ]);
    assert_eq!(field(&out, "address"), v["ss58"].as_str().unwrap());
    let secrets = ok(&["show", "--keyfile", path_str(&keyfile), "--secrets"]);
    assert_eq!(field(&secrets, "mnemonic"), v["mnemonic"].as_str().unwrap());
    assert_eq!(
        field(&secrets, "secret seed"),
        format!("0x{}", v["mini_secret_hex"].as_str().unwrap())
    );
    // A reference signature verifies through the CLI; the tampered one does not.
    let sig = &v["signatures"][0];
    let check = |message: &Value, signature: &Value| {
        wallet(&[
            "verify",
            "--address",
            v["ss58"].as_str().unwrap(),
            "--message",
            message.as_str().unwrap(),
            "--signature",
            signature.as_str().unwrap(),
        ])
        .status
        .code()
    };
    assert_eq!(check(&sig["message"], &sig["signature_hex"]), Some(0));
    let bad = &v["must_not_verify"];
    assert_eq!(check(&bad["message"], &bad["signature_hex"]), Some(1));
    let bad_phrase = wallet(&[
        "import",
        "--keyfile",
        path_str(&dir.path().join("x")),
        "--mnemonic",
        "one two three",
    ]);
    assert_eq!(bad_phrase.status.code(), Some(2));
}

#[test]
fn list_and_show_read_btcli_wallets() {
    let root = shared_vectors().join("wallets");
    let listed = ok(&["list", "--root", path_str(&root)]);
    assert!(
        listed.contains("vector_wallet  coldkey 5GMwyKuRH1AKqDUZznm3A1F1rFpcJ4pPj3ajDYCNMTxatoAB"),
        "{listed}"
    );
    assert!(
        listed.contains("hotkey vector_hot  5EHTCk7pthND69EmTx9DUb2hxxKakmWBKEs3JSVvQJaQP5yc"),
        "{listed}"
    );
    assert!(
        listed.contains("encrypted_wallet  coldkey (encrypted)"),
        "{listed}"
    );
    let hot = ok(&[
        "show",
        "--root",
        path_str(&root),
        "--wallet",
        "vector_wallet",
        "--hotkey",
        "vector_hot",
    ]);
    assert_eq!(
        field(&hot, "address"),
        "5EHTCk7pthND69EmTx9DUb2hxxKakmWBKEs3JSVvQJaQP5yc"
    );
    // Signing with an encrypted coldkey and no password: a clear error naming the file.
    let o = wallet(&[
        "sign",
        "--root",
        path_str(&root),
        "--wallet",
        "encrypted_wallet",
        "--message",
        "m",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("encrypted_wallet/coldkey") && err.contains("password"),
        "{err}"
    );
}

#[test]
fn appliance_keys_live_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = path_str(dir.path());
    let made = field(
        &ok(&["new", "--data-dir", data, "--key", "miner"]),
        "address",
    );
    assert!(dir.path().join("keys/miner").is_file());
    // The library's loader finds the same identity the CLI made.
    let loaded = bitsota::keys::identity::load_or_create(dir.path(), "miner").unwrap();
    assert_eq!(loaded.ss58(), made);
    let listed = ok(&["list", "--root", data, "--data-dir", data]);
    assert!(listed.contains(&format!("miner  {made}")), "{listed}");
}
