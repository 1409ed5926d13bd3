//! Installing datasets: download the official archives, or import files already on disk.
//!
//! Everything installed is verified against the published checksums where they exist
//! (MNIST: the MD5 of each *unpacked* file, since mirrors' gzip headers differ; CIFAR-10:
//! the SHA-256 of the archive and of each batch) and checked to parse; a file that fails is
//! not installed. Files are written to a temporary name and renamed into place.

use super::{
    cifar, file_name, idx, is_gzip, maybe_gunzip, published_checksum, read_unpacked, DatasetKind,
    FileDigest, MNIST_FILES,
};
use crate::tasks::error::TaskError;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The official CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Its published SHA-256.
pub const CIFAR10_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
/// The MNIST mirror torchvision uses (the four `*-ubyte.gz` files).
pub const MNIST_MIRROR: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
/// The CIFAR-10 archive's file name (also looked for by `--from`).
pub const CIFAR10_ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// Class names shipped beside the batches.
const CIFAR_META: &str = "batches.meta.txt";

/// Download progress, for a progress bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadEvent {
    Start { url: String, total: Option<u64> },
    Bytes(u64),
    Finish,
}

/// One installed file and how it was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub path: PathBuf,
    pub check: String,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TaskError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
    let tmp = dir.join(format!(".{}.part-{}", file_name(path), std::process::id()));
    let res = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| TaskError::io(path, e))
}

/// Compare a digest with the published one for `name`; `None` if none is published.
fn verify(
    kind: DatasetKind,
    name: &str,
    path: &Path,
    digest: &FileDigest,
) -> Result<Option<String>, TaskError> {
    match published_checksum(kind, name) {
        None => Ok(None),
        Some((algo, expected)) if digest.get(algo) == expected => {
            Ok(Some(format!("{algo} verified")))
        }
        Some((algo, expected)) => Err(TaskError::ChecksumMismatch {
            path: path.to_path_buf(),
            algorithm: algo,
            expected: expected.to_string(),
            actual: digest.get(algo).to_string(),
        }),
    }
}

/// An error and its causes on one line (reqwest hides the cause, e.g. "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Download `url` to `dest` (via a temporary file), reporting progress.
pub fn download(
    url: &str,
    dest: &Path,
    progress: &mut dyn FnMut(DownloadEvent),
) -> Result<(), TaskError> {
    let fail = |reason: String| TaskError::Download {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client.get(url).send().map_err(|e| fail(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    progress(DownloadEvent::Start {
        url: url.to_string(),
        total: resp.content_length(),
    });
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.download-{}",
        file_name(dest),
        std::process::id()
    ));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(|e| TaskError::io(&tmp, e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = resp.read(&mut buf).map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| TaskError::io(&tmp, e))?;
            progress(DownloadEvent::Bytes(n as u64));
        }
        out.flush().map_err(|e| TaskError::io(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| TaskError::io(dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    progress(DownloadEvent::Finish);
    result
}

/// Install one MNIST file from (possibly gzipped) bytes: unpack, check format and MD5,
/// write the plain file.
fn install_mnist_file(
    dir: &Path,
    name: &str,
    from: &Path,
    bytes: Vec<u8>,
) -> Result<Installed, TaskError> {
    let plain = maybe_gunzip(from, bytes)?;
    if name.contains("images") {
        idx::parse_images(from, &plain)?;
    } else {
        idx::parse_labels(from, &plain)?;
    }
    let check = verify(
        DatasetKind::Mnist,
        name,
        from,
        &FileDigest::of(&plain, true),
    )?
    .unwrap_or_else(|| "format checked".into());
    let path = dir.join(name);
    write_atomic(&path, &plain)?;
    // A stale gzipped copy would be ignored by the loader; remove it to avoid confusion.
    let _ = std::fs::remove_file(dir.join(format!("{name}.gz")));
    Ok(Installed { path, check })
}

/// Install one CIFAR-10 batch (checked for record layout and, if published, SHA-256).
fn install_cifar_batch(
    dir: &Path,
    name: &str,
    from: &Path,
    bytes: Vec<u8>,
) -> Result<Installed, TaskError> {
    cifar::parse_batch(from, &bytes, &mut Vec::new(), &mut Vec::new())?;
    let check = verify(
        DatasetKind::Cifar10,
        name,
        from,
        &FileDigest::of(&bytes, false),
    )?
    .unwrap_or_else(|| "no published checksum; record layout checked".into());
    let path = dir.join(name);
    write_atomic(&path, &bytes)?;
    Ok(Installed { path, check })
}

/// Download the four official MNIST files from `mirror` (a base URL ending in `/`).
pub fn fetch_mnist(
    datasets_dir: &Path,
    mirror: &str,
    progress: &mut dyn FnMut(DownloadEvent),
) -> Result<Vec<Installed>, TaskError> {
    let dir = DatasetKind::Mnist.dir(datasets_dir);
    let mut done = Vec::new();
    for name in MNIST_FILES {
        let url = format!("{mirror}{name}.gz");
        let gz = dir.join(format!(".{name}.gz.fetch"));
        download(&url, &gz, progress)?;
        let bytes = std::fs::read(&gz).map_err(|e| TaskError::io(&gz, e));
        let _ = std::fs::remove_file(&gz);
        done.push(install_mnist_file(&dir, name, Path::new(&url), bytes?)?);
    }
    Ok(done)
}

/// Download the official CIFAR-10 archive from `url`, verify it against `sha256`, unpack.
pub fn fetch_cifar10(
    datasets_dir: &Path,
    url: &str,
    sha256: &str,
    progress: &mut dyn FnMut(DownloadEvent),
) -> Result<Vec<Installed>, TaskError> {
    let dir = DatasetKind::Cifar10.dir(datasets_dir);
    let archive = dir.join(format!(".{CIFAR10_ARCHIVE}.fetch"));
    download(url, &archive, progress)?;
    let result = unpack_cifar_archive(&archive, sha256, &dir);
    let _ = std::fs::remove_file(&archive);
    result
}

/// Verify a CIFAR-10 `.tar.gz` archive by SHA-256 and install its batches and class names.
pub fn unpack_cifar_archive(
    archive: &Path,
    sha256: &str,
    dir: &Path,
) -> Result<Vec<Installed>, TaskError> {
    let bytes = std::fs::read(archive).map_err(|e| TaskError::io(archive, e))?;
    let actual = FileDigest::of(&bytes, false).sha256;
    if actual != sha256 {
        return Err(TaskError::ChecksumMismatch {
            path: archive.to_path_buf(),
            algorithm: "sha256",
            expected: sha256.to_string(),
            actual,
        });
    }
    let bad =
        |e: std::io::Error| TaskError::bad(archive, format!("unreadable tar.gz archive: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut done = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry
            .path()
            .map_err(bad)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.ends_with(".bin") || name == CIFAR_META) || !entry.header().entry_type().is_file()
        {
            continue;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(bad)?;
        let member = archive.join(&name);
        done.push(if name == CIFAR_META {
            write_atomic(&dir.join(&name), &content)?;
            Installed {
                path: dir.join(&name),
                check: "class names".into(),
            }
        } else {
            install_cifar_batch(dir, &name, &member, content)?
        });
    }
    if !done.iter().any(|i| file_name(&i.path).ends_with(".bin")) {
        return Err(TaskError::bad(
            archive,
            "the archive holds no *.bin batch files",
        ));
    }
    Ok(done)
}

/// Import a dataset from files already on disk (`bitsota data fetch … --from DIR`).
///
/// MNIST: the four official files, plain or gzipped, in `from`. CIFAR-10: the official
/// archive (`from` itself or `from/cifar-10-binary.tar.gz`), else every `*.bin` batch in
/// `from` or `from/cifar-10-batches-bin`.
pub fn import(
    kind: DatasetKind,
    datasets_dir: &Path,
    from: &Path,
) -> Result<Vec<Installed>, TaskError> {
    let dir = kind.dir(datasets_dir);
    if !from.exists() {
        return Err(TaskError::io(
            from,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    match kind {
        DatasetKind::Mnist => MNIST_FILES
            .iter()
            .map(|name| {
                let src = [from.join(name), from.join(format!("{name}.gz"))]
                    .into_iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| TaskError::DatasetMissing {
                        dataset: kind.name(),
                        dir: from.to_path_buf(),
                        file: format!("{name} (or {name}.gz)"),
                    })?;
                let bytes = std::fs::read(&src).map_err(|e| TaskError::io(&src, e))?;
                install_mnist_file(&dir, name, &src, bytes)
            })
            .collect(),
        DatasetKind::Cifar10 => {
            let archive = if from.is_file() {
                from.to_path_buf()
            } else {
                from.join(CIFAR10_ARCHIVE)
            };
            if archive.is_file() {
                let head = std::fs::read(&archive).map_err(|e| TaskError::io(&archive, e))?;
                if !is_gzip(&head) {
                    return Err(TaskError::bad(&archive, "not a gzip archive"));
                }
                return unpack_cifar_archive(&archive, CIFAR10_SHA256, &dir);
            }
            let src_dir = [from.join("cifar-10-batches-bin"), from.to_path_buf()]
                .into_iter()
                .find(|d| d.is_dir())
                .unwrap_or_else(|| from.to_path_buf());
            let mut names: Vec<String> = std::fs::read_dir(&src_dir)
                .map_err(|e| TaskError::io(&src_dir, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".bin") || n == CIFAR_META)
                .collect();
            names.sort();
            if !names.iter().any(|n| n.ends_with(".bin")) {
                return Err(TaskError::DatasetMissing {
                    dataset: kind.name(),
                    dir: src_dir,
                    file: format!("{CIFAR10_ARCHIVE} or any *.bin batch file"),
                });
            }
            names
                .iter()
                .map(|name| {
                    let src = src_dir.join(name);
                    let bytes = read_unpacked(&src)?;
                    if name == CIFAR_META {
                        write_atomic(&dir.join(name), &bytes)?;
                        Ok(Installed {
                            path: dir.join(name),
                            check: "class names".into(),
                        })
                    } else {
                        install_cifar_batch(&dir, name, &src, bytes)
                    }
                })
                .collect()
        }
    }
}
