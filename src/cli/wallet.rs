//! `bitsota wallet`: create, list, show, sign with and verify btcli keyfiles and the
//! appliance's own identities (`<data_dir>/keys/<name>`).

use super::UsageError;
use crate::keys::keyfile::{self, KeyfileContent, Overwrite};
use crate::keys::{identity, KeyError, Keypair, PublicKey, Wallet};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct WalletArgs {
    #[command(subcommand)]
    pub command: WalletCommand,
}

#[derive(Subcommand, Debug)]
pub enum WalletCommand {
    /// Create a key from a fresh 12-word mnemonic (refuses to replace an existing one).
    New {
        #[command(flatten)]
        key: KeySelect,
        #[command(flatten)]
        write: WriteOpts,
        /// Also print the new mnemonic (it is stored in the keyfile either way).
        #[arg(long)]
        show_mnemonic: bool,
    },
    /// List btcli wallets (coldkey and hotkey addresses) and the appliance's keys.
    List {
        /// Wallets root.
        #[arg(long, env = "BITSOTA_WALLET_ROOT")]
        root: Option<PathBuf>,
        /// Also list the appliance's keys in `<DIR>/keys`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print a key's address and public key (secrets only with --secrets).
    Show {
        #[command(flatten)]
        key: KeySelect,
        /// Also print the mnemonic, seed and private key.
        #[arg(long)]
        secrets: bool,
    },
    /// Sign a message (UTF-8) and print the signature as lowercase hex.
    Sign {
        #[command(flatten)]
        key: KeySelect,
        #[arg(long)]
        message: String,
    },
    /// Check a signature: exit 0 if valid, 1 if not.
    Verify {
        /// Signer's SS58 address (any single-byte format).
        #[arg(long)]
        address: String,
        #[arg(long)]
        message: String,
        /// Hex signature (optional `0x`).
        #[arg(long)]
        signature: String,
    },
    /// Store a key derived from an existing mnemonic (Substrate's scheme, as btcli).
    Import {
        #[command(flatten)]
        key: KeySelect,
        #[command(flatten)]
        write: WriteOpts,
        #[arg(long)]
        mnemonic: String,
    },
}

/// Which keyfile: `--keyfile PATH`, an appliance identity (`--data-dir DIR --key NAME`),
/// or a btcli wallet key (`--root`, `--wallet`, `--hotkey`; without `--hotkey`, the coldkey).
#[derive(Args, Debug)]
pub struct KeySelect {
    /// Wallets root (btcli layout).
    #[arg(long, env = "BITSOTA_WALLET_ROOT")]
    root: Option<PathBuf>,
    /// Wallet name.
    #[arg(long, default_value = "default")]
    wallet: String,
    /// Hotkey name in the wallet; without it the coldkey is meant.
    #[arg(long)]
    hotkey: Option<String>,
    /// The appliance's data directory (with --key).
    #[arg(long, env = "BITSOTA_DATA_DIR", default_value = "bitsota-data")]
    data_dir: PathBuf,
    /// An appliance identity in `<data-dir>/keys/` (e.g. miner, validator-0, pool).
    #[arg(long, conflicts_with_all = ["hotkey", "keyfile"])]
    key: Option<String>,
    /// An explicit keyfile path.
    #[arg(long, conflicts_with = "hotkey")]
    keyfile: Option<PathBuf>,
    /// Password of an encrypted ($NACL) keyfile; prefer the environment variable, since
    /// command lines are visible to other users.
    #[arg(long, env = "BITSOTA_WALLET_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

#[derive(Args, Debug)]
pub struct WriteOpts {
    /// Replace an existing keyfile (its old key is lost unless backed up).
    #[arg(long)]
    overwrite: bool,
    /// Encrypt the keyfile with the password (btcli's $NACL format).
    #[arg(long)]
    encrypt: bool,
}

/// A resolved keyfile and, for wallet keys, the public file btcli keeps beside it.
struct Target {
    path: PathBuf,
    public_path: Option<PathBuf>,
}

impl KeySelect {
    fn target(&self) -> anyhow::Result<Target> {
        if let Some(path) = &self.keyfile {
            return Ok(Target {
                path: path.clone(),
                public_path: None,
            });
        }
        if let Some(name) = &self.key {
            let path =
                identity::key_path(&self.data_dir, name).map_err(|e| UsageError(e.to_string()))?;
            return Ok(Target {
                path,
                public_path: None,
            });
        }
        let wallet = Wallet::new(
            self.root
                .clone()
                .unwrap_or_else(keyfile::default_wallet_root),
            &self.wallet,
        );
        Ok(match &self.hotkey {
            Some(h) => Target {
                path: wallet.hotkey_path(h),
                public_path: Some(wallet.hotkeypub_path(h)),
            },
            None => Target {
                path: wallet.coldkey_path(),
                public_path: Some(wallet.coldkeypub_path()),
            },
        })
    }

    fn keypair(&self) -> anyhow::Result<Keypair> {
        let t = self.target()?;
        Ok(keyfile::read_keypair(&t.path, self.password.as_deref())?)
    }
}

pub fn run(args: WalletArgs) -> anyhow::Result<()> {
    match args.command {
        WalletCommand::New {
            key,
            write,
            show_mnemonic,
        } => {
            let kp = Keypair::generate();
            store(&key, &write, &kp)?;
            if show_mnemonic {
                println!("mnemonic: {}", kp.mnemonic().unwrap_or_default());
            }
            Ok(())
        }
        WalletCommand::Import {
            key,
            write,
            mnemonic,
        } => {
            let kp = Keypair::from_mnemonic(&mnemonic).map_err(|e| UsageError(e.to_string()))?;
            store(&key, &write, &kp)
        }
        WalletCommand::List { root, data_dir } => list(
            &root.unwrap_or_else(keyfile::default_wallet_root),
            data_dir.as_deref(),
        ),
        WalletCommand::Show { key, secrets } => show(&key, secrets),
        WalletCommand::Sign { key, message } => {
            println!("{}", key.keypair()?.sign_hex(&message));
            Ok(())
        }
        WalletCommand::Verify {
            address,
            message,
            signature,
        } => {
            PublicKey::from_ss58(&address).map_err(|e| UsageError(e.to_string()))?;
            crate::keys::verify_hex(&address, &message, &signature)
                .context("signature is INVALID")?;
            println!("valid: signed by {address}");
            Ok(())
        }
    }
}

/// Write a new key (and, for wallet keys, its public file), then print where and what.
fn store(key: &KeySelect, write: &WriteOpts, kp: &Keypair) -> anyhow::Result<()> {
    let t = key.target()?;
    let password = match (write.encrypt, key.password.as_deref()) {
        (true, None) => {
            return Err(UsageError(
                "--encrypt needs a password (BITSOTA_WALLET_PASSWORD or --password)".into(),
            )
            .into())
        }
        (true, Some(p)) => Some(p),
        (false, _) => None,
    };
    let overwrite = if write.overwrite {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    // Check both files first so a refusal leaves nothing half-written.
    if overwrite == Overwrite::Refuse {
        for p in std::iter::once(&t.path).chain(&t.public_path) {
            if p.exists() {
                return Err(KeyError::Exists {
                    path: p.display().to_string(),
                }
                .into());
            }
        }
    }
    keyfile::write(
        &t.path,
        &KeyfileContent::from(kp.clone()),
        password,
        overwrite,
    )?;
    if let Some(p) = &t.public_path {
        keyfile::write(p, &kp.public().into(), None, overwrite)?;
    }
    println!("wrote {}", t.path.display());
    print_public(&kp.public());
    Ok(())
}

fn print_public(pk: &PublicKey) {
    println!("address: {}", pk.to_ss58());
    println!("public key: {}", pk.to_hex0x());
}

fn show(key: &KeySelect, secrets: bool) -> anyhow::Result<()> {
    let t = key.target()?;
    let content = match keyfile::read(&t.path, key.password.as_deref()) {
        // The address of an encrypted coldkey is in its public file; no password needed.
        Err(KeyError::Encrypted { .. })
            if !secrets && t.public_path.as_deref().is_some_and(Path::exists) =>
        {
            keyfile::read(t.public_path.as_deref().unwrap_or(&t.path), None)?
        }
        r => r?,
    };
    print_public(&content.public());
    if secrets {
        let KeyfileContent::Pair(kp) = &content else {
            return Err(KeyError::PublicOnly {
                path: t.path.display().to_string(),
            }
            .into());
        };
        println!("mnemonic: {}", kp.mnemonic().unwrap_or("(unknown)"));
        let seed = kp.mini_secret().map(|s| format!("0x{}", hex::encode(s)));
        println!("secret seed: {}", seed.as_deref().unwrap_or("(unknown)"));
        println!("private key: 0x{}", hex::encode(kp.private_key()));
    }
    Ok(())
}

/// One line per key: its address, or why it could not be read (encrypted, damaged).
fn describe(path: &Path, public_path: Option<&Path>) -> String {
    let read = |p: &Path| keyfile::read(p, None).map(|c| c.public().to_ss58());
    match public_path.filter(|p| p.exists()).map(read) {
        Some(Ok(address)) => address,
        _ if !path.exists() => "(missing)".into(),
        _ => match read(path) {
            Ok(address) => address,
            Err(KeyError::Encrypted { .. }) => "(encrypted)".into(),
            Err(e) => format!("(unreadable: {e})"),
        },
    }
}

fn list(root: &Path, data_dir: Option<&Path>) -> anyhow::Result<()> {
    let wallets = keyfile::list_wallets(root)?;
    println!("wallets in {} ({})", root.display(), wallets.len());
    for w in wallets {
        println!(
            "  {}  coldkey {}",
            w.name,
            describe(&w.coldkey_path(), Some(&w.coldkeypub_path()))
        );
        for h in w.hotkeys()? {
            let address = describe(&w.hotkey_path(&h), Some(&w.hotkeypub_path(&h)));
            println!("    hotkey {h}  {address}");
        }
    }
    if let Some(dir) = data_dir {
        let names = identity::list(dir)?;
        println!(
            "appliance keys in {} ({})",
            identity::keys_dir(dir).display(),
            names.len()
        );
        for name in names {
            let path = identity::keys_dir(dir).join(&name);
            println!("  {name}  {}", describe(&path, None));
        }
    }
    Ok(())
}
