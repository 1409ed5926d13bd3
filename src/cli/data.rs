//! `bitsota data status|fetch`: inspect and install the image datasets.

use crate::tasks::datasets::fetch::{self, DownloadEvent, Installed};
use crate::tasks::datasets::{self, DatasetKind};
use crate::tasks::prepare::DataConfig;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// Data directory (datasets live in `<DIR>/datasets/`).
    #[arg(
        long,
        global = true,
        env = "BITSOTA_DATA_DIR",
        default_value = "bitsota-data"
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// The store's size per tree, and each dataset's files, sizes and checksum
    /// verification.
    Status,
    /// Download (or with --from, import) a dataset and verify it.
    Fetch {
        /// `mnist` or `cifar10`.
        dataset: DatasetArg,
        /// Import files already on disk from this folder (or the CIFAR-10 archive file).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum DatasetArg {
    Mnist,
    Cifar10,
}

impl From<DatasetArg> for DatasetKind {
    fn from(a: DatasetArg) -> Self {
        match a {
            DatasetArg::Mnist => DatasetKind::Mnist,
            DatasetArg::Cifar10 => DatasetKind::Cifar10,
        }
    }
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    let cfg = DataConfig::for_data_dir(&args.data_dir);
    match args.command {
        DataCommand::Status => status(&args.data_dir, &cfg),
        DataCommand::Fetch { dataset, from } => {
            let kind = DatasetKind::from(dataset);
            let installed = match from {
                Some(from) => fetch::import(kind, &cfg.datasets_dir, &from).with_context(|| {
                    format!("importing {} from {}", kind.name(), from.display())
                })?,
                None => {
                    let mut bar = ProgressBarSink::default();
                    let result = match kind {
                        DatasetKind::Mnist => {
                            fetch::fetch_mnist(&cfg.datasets_dir, fetch::MNIST_MIRROR, &mut |e| {
                                bar.on(e)
                            })
                        }
                        DatasetKind::Cifar10 => fetch::fetch_cifar10(
                            &cfg.datasets_dir,
                            fetch::CIFAR10_URL,
                            fetch::CIFAR10_SHA256,
                            &mut |e| bar.on(e),
                        ),
                    };
                    result.with_context(|| {
                        format!(
                            "fetching {} (no network? download the files elsewhere and use `bitsota data fetch {} --from DIR`)",
                            kind.name(),
                            kind.name()
                        )
                    })?
                }
            };
            print_installed(&installed);
            let src = datasets::fingerprint(kind, &cfg.datasets_dir)?;
            println!(
                "{} ready in {} ({} files, checksum {})",
                kind.name(),
                kind.dir(&cfg.datasets_dir).display(),
                src.files.len(),
                &src.checksum[..16]
            );
            Ok(())
        }
    }
}

fn print_installed(installed: &[Installed]) {
    for i in installed {
        let size = std::fs::metadata(&i.path).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {:<32} {:>12} bytes  {}",
            datasets::file_name(&i.path),
            size,
            i.check
        );
    }
}

/// An indicatif bar per download.
#[derive(Default)]
struct ProgressBarSink {
    bar: Option<ProgressBar>,
}

impl ProgressBarSink {
    fn on(&mut self, event: DownloadEvent) {
        match event {
            DownloadEvent::Start { url, total } => {
                let bar = match total {
                    Some(t) => ProgressBar::new(t).with_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    ),
                    None => ProgressBar::new_spinner(),
                };
                bar.set_message(url.rsplit('/').next().unwrap_or_default().to_string());
                self.bar = Some(bar);
            }
            DownloadEvent::Bytes(n) => {
                if let Some(b) = &self.bar {
                    b.inc(n);
                }
            }
            DownloadEvent::Finish => {
                if let Some(b) = self.bar.take() {
                    b.finish();
                }
            }
        }
    }
}

/// The store's size per tree: read from the store itself, or, while a daemon holds it,
/// from the usage the daemon last left in the data directory.
fn store_status(data_dir: &Path) {
    use crate::store::{Durability, Store, StoreError, Usage, USAGE_FILE};
    let path = data_dir.join("store");
    if !path.exists() {
        println!("store: none yet in {}", path.display());
        return;
    }
    let (usage, source) = match Store::open(&path, Durability::Async) {
        Ok(store) => (
            Some(store.usage(crate::clock::now_f64())),
            "now".to_string(),
        ),
        Err(StoreError::Locked { .. }) => {
            let usage: Option<Usage> = std::fs::read(data_dir.join(USAGE_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let when = usage.as_ref().map_or("-".into(), |u| {
                crate::clock::iso((u.at * 1e6) as i64, crate::clock::SecondsFormat::Secs)
            });
            (usage, format!("reported by the running daemon at {when}"))
        }
        Err(e) => {
            println!("store: {e}");
            return;
        }
    };
    let Some(usage) = usage else {
        println!("store: in use by a running daemon, which has not reported its usage yet");
        return;
    };
    println!(
        "store: {} ({:.2} MiB on disk, {source})",
        path.display(),
        usage.size_on_disk_bytes as f64 / (1 << 20) as f64
    );
    println!("  {:<28} {:>10} {:>14}", "tree", "records", "bytes");
    for t in &usage.trees {
        println!("  {:<28} {:>10} {:>14}", t.name, t.records, t.bytes);
    }
}

/// Print the store's size per tree, then every dataset's files and checks; fails (exit
/// 1) if a file has a wrong checksum.
fn status(data_dir: &Path, cfg: &DataConfig) -> anyhow::Result<()> {
    store_status(data_dir);
    println!("datasets dir: {}", cfg.datasets_dir.display());
    let mut mismatches = 0;
    for kind in DatasetKind::ALL {
        let dir = kind.dir(&cfg.datasets_dir);
        match datasets::fingerprint(kind, &cfg.datasets_dir) {
            Ok(src) => println!(
                "{}: ready ({} files, checksum {})",
                kind.name(),
                src.files.len(),
                &src.checksum[..16]
            ),
            Err(e) => println!("{}: not usable: {e}", kind.name()),
        }
        for path in dir_files(&dir) {
            let name = datasets::file_name(&path);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let check = match datasets::file_digest(&path) {
                Err(e) => format!("unreadable: {e}"),
                Ok((_, d)) => match datasets::published_checksum(kind, &name) {
                    Some((algo, expected)) if d.get(algo) == expected => format!("{algo} ok"),
                    Some((algo, expected)) => {
                        mismatches += 1;
                        format!("{algo} MISMATCH (expected {expected}, got {})", d.get(algo))
                    }
                    None => "no published checksum".into(),
                },
            };
            println!("  {name:<32} {size:>12} bytes  {check}");
        }
    }
    if let Some(cache) = &cfg.cache_dir {
        let entries: Vec<u64> = dir_files(cache)
            .into_iter()
            .flat_map(|d| dir_files(&d))
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
            .collect();
        println!(
            "prepared tasks: {} entries, {:.1} MiB in {}",
            entries.len(),
            entries.iter().sum::<u64>() as f64 / (1 << 20) as f64,
            cache.display()
        );
    }
    anyhow::ensure!(
        mismatches == 0,
        "{mismatches} dataset file(s) have wrong checksums"
    );
    Ok(())
}

/// Entries of a folder (files and subfolders), sorted; none if it does not exist.
fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| !datasets::file_name(p).starts_with('.'));
    out.sort();
    out
}
