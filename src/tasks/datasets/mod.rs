//! Real image datasets in their standard binary layouts (engine.md §3).
//!
//! Files live in `<datasets_dir>/{mnist,cifar10}/`. MNIST is the official train + t10k
//! IDX pair set (each file plain or gzipped — detected by the gzip magic, not the name);
//! CIFAR-10 is every `*.bin` batch file present, in sorted name order. Loading records
//! which files were used and a SHA-256 checksum over their (unpacked) contents, which keys
//! the prepared-task cache. Nothing is ever synthesised: a missing file is an error.

pub mod cifar;
pub mod fetch;
pub mod idx;

use super::error::TaskError;
use super::TaskType;
use md5::Md5;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::SystemTime;

/// The image datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetKind {
    Mnist,
    Cifar10,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::Cifar10];

    /// Folder and command name (`mnist`, `cifar10`).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// `<datasets_dir>/<name>`.
    pub fn dir(self, datasets_dir: &Path) -> PathBuf {
        datasets_dir.join(self.name())
    }

    /// The dataset a task type draws from (`None` for synthetic tasks).
    pub fn for_task(task_type: TaskType) -> Option<Self> {
        match task_type {
            TaskType::ScalarLinear => None,
            TaskType::MnistBinary => Some(DatasetKind::Mnist),
            TaskType::Cifar10Binary => Some(DatasetKind::Cifar10),
        }
    }

    /// Pixel bytes per image.
    pub fn pixel_count(self) -> usize {
        match self {
            DatasetKind::Mnist => 784,
            DatasetKind::Cifar10 => 3072,
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, TaskError> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                TaskError::Config(format!("unknown dataset '{s}' (known: mnist, cifar10)"))
            })
    }
}

/// The official MNIST file names (unpacked), in load order: train before t10k.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Published MD5 of each unpacked official MNIST file (engine.md §3).
pub const MNIST_MD5: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    (
        "train-labels-idx1-ubyte",
        "a25bea736e30d166cdddb491f175f624",
    ),
    ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
];

/// Published SHA-256 of the official CIFAR-10 binary batches.
pub const CIFAR_SHA256: [(&str, &str); 6] = [
    (
        "data_batch_1.bin",
        "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    ),
    (
        "data_batch_2.bin",
        "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    ),
    (
        "data_batch_3.bin",
        "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    ),
    (
        "data_batch_4.bin",
        "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    ),
    (
        "data_batch_5.bin",
        "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    ),
    (
        "test_batch.bin",
        "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
    ),
];

/// The published checksum of a dataset file, if one exists: `(algorithm, hex)`.
pub fn published_checksum(kind: DatasetKind, name: &str) -> Option<(&'static str, &'static str)> {
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    match kind {
        DatasetKind::Mnist => MNIST_MD5
            .iter()
            .find(|(n, _)| *n == plain)
            .map(|(_, h)| ("md5", *h)),
        DatasetKind::Cifar10 => CIFAR_SHA256
            .iter()
            .find(|(n, _)| *n == plain)
            .map(|(_, h)| ("sha256", *h)),
    }
}

/// Digests of one file's unpacked content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub unpacked_len: u64,
    pub sha256: String,
    /// Only for files with a published MD5 (MNIST): hashing CIFAR with it too is wasted time.
    pub md5: Option<String>,
}

impl FileDigest {
    /// Digest `bytes`, with MD5 if `with_md5`.
    pub fn of(bytes: &[u8], with_md5: bool) -> Self {
        FileDigest {
            unpacked_len: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            md5: with_md5.then(|| hex::encode(Md5::digest(bytes))),
        }
    }

    /// The digest named by `algorithm` (`md5` or `sha256`; empty if not computed).
    pub fn get(&self, algorithm: &str) -> &str {
        if algorithm == "md5" {
            self.md5.as_deref().unwrap_or("")
        } else {
            &self.sha256
        }
    }
}

/// Whether a file has a published MD5 (by its unpacked name).
fn has_published_md5(path: &Path) -> bool {
    published_checksum(DatasetKind::Mnist, &file_name(path)).is_some()
}

/// One file a dataset was loaded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Size on disk (compressed, for a gzipped file).
    pub disk_len: u64,
    pub digest: FileDigest,
}

/// Which files a dataset came from, and one checksum over all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSource {
    pub kind: DatasetKind,
    pub files: Vec<SourceFile>,
    /// SHA-256 over each file's unpacked name, length and SHA-256, in load order: equal
    /// content gives an equal checksum whether the files are gzipped or not.
    pub checksum: String,
}

impl DatasetSource {
    fn new(kind: DatasetKind, files: Vec<SourceFile>) -> Self {
        let mut h = Sha256::new();
        for f in &files {
            let name = file_name(&f.path);
            let plain = name.strip_suffix(".gz").unwrap_or(&name);
            h.update(format!(
                "{plain}\n{}\n{}\n",
                f.digest.unpacked_len, f.digest.sha256
            ));
        }
        DatasetSource {
            kind,
            files,
            checksum: hex::encode(h.finalize()),
        }
    }
}

/// Labelled images: `len × pixel_count` row-major bytes, one label byte each.
#[derive(Clone, Debug)]
pub struct Images {
    pub pixel_count: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
    pub source: DatasetSource,
}

impl Images {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The pixel bytes of image `i`.
    #[inline]
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.pixel_count..(i + 1) * self.pixel_count]
    }
}

/// The last component of a path, as text (empty for none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Gunzip `bytes` if they are gzipped (by magic), else return them unchanged.
pub fn maybe_gunzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, TaskError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| TaskError::bad(path, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// Read a file whole, gunzipping it if it is gzipped.
pub fn read_unpacked(path: &Path) -> Result<Vec<u8>, TaskError> {
    let bytes = std::fs::read(path).map_err(|e| TaskError::io(path, e))?;
    maybe_gunzip(path, bytes)
}

/// Digests are memoised by (path, size, mtime) so that a cache hit does not re-hash the
/// dataset every time a suite is prepared in this process.
type DigestKey = (PathBuf, u64, Option<SystemTime>);
static DIGESTS: LazyLock<Mutex<HashMap<DigestKey, FileDigest>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn digest_key(path: &Path) -> Result<DigestKey, TaskError> {
    let meta = std::fs::metadata(path).map_err(|e| TaskError::io(path, e))?;
    Ok((path.to_path_buf(), meta.len(), meta.modified().ok()))
}

/// The digest of a file's unpacked content (memoised).
pub fn file_digest(path: &Path) -> Result<(u64, FileDigest), TaskError> {
    let key = digest_key(path)?;
    if let Some(d) = DIGESTS.lock().get(&key) {
        return Ok((key.1, d.clone()));
    }
    let digest = FileDigest::of(&read_unpacked(path)?, has_published_md5(path));
    let len = key.1;
    DIGESTS.lock().insert(key, digest.clone());
    Ok((len, digest))
}

/// Digest already-read unpacked content of `path` (unless memoised), and memoise it.
fn digest_loaded(path: &Path, unpacked: &[u8]) -> Result<SourceFile, TaskError> {
    let key = digest_key(path)?;
    let disk_len = key.1;
    let known = DIGESTS.lock().get(&key).cloned();
    let digest = match known {
        Some(d) if d.unpacked_len == unpacked.len() as u64 => d,
        _ => {
            let d = FileDigest::of(unpacked, has_published_md5(path));
            DIGESTS.lock().insert(key, d.clone());
            d
        }
    };
    Ok(SourceFile {
        path: path.to_path_buf(),
        disk_len,
        digest,
    })
}

fn missing(kind: DatasetKind, dir: &Path, file: impl Into<String>) -> TaskError {
    TaskError::DatasetMissing {
        dataset: kind.name(),
        dir: dir.to_path_buf(),
        file: file.into(),
    }
}

/// The files a dataset loads from, in load order; a missing file is an error naming the
/// command that installs it.
pub fn dataset_files(kind: DatasetKind, datasets_dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let dir = kind.dir(datasets_dir);
    match kind {
        DatasetKind::Mnist => MNIST_FILES
            .iter()
            .map(|name| {
                let plain = dir.join(name);
                let gz = dir.join(format!("{name}.gz"));
                if plain.is_file() {
                    Ok(plain)
                } else if gz.is_file() {
                    Ok(gz)
                } else {
                    Err(missing(kind, &dir, format!("{name} (or {name}.gz)")))
                }
            })
            .collect(),
        DatasetKind::Cifar10 => {
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    missing(kind, &dir, "the cifar10 folder")
                } else {
                    TaskError::io(&dir, e)
                }
            })?;
            let mut files = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| TaskError::io(&dir, e))?;
                let path = entry.path();
                let name = file_name(&path);
                // Hidden files (temporaries, resource forks) are never batches.
                if path.is_file() && name.ends_with(".bin") && !name.starts_with('.') {
                    files.push(path);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(missing(
                    kind,
                    &dir,
                    "any *.bin batch file (data_batch_1.bin …)",
                ));
            }
            Ok(files)
        }
    }
}

/// Which files a dataset would load and their checksum, without keeping the images.
pub fn fingerprint(kind: DatasetKind, datasets_dir: &Path) -> Result<DatasetSource, TaskError> {
    let files = dataset_files(kind, datasets_dir)?
        .into_iter()
        .map(|path| {
            let (disk_len, digest) = file_digest(&path)?;
            Ok(SourceFile {
                path,
                disk_len,
                digest,
            })
        })
        .collect::<Result<Vec<_>, TaskError>>()?;
    Ok(DatasetSource::new(kind, files))
}

/// Load a whole dataset.
pub fn load(kind: DatasetKind, datasets_dir: &Path) -> Result<Images, TaskError> {
    let paths = dataset_files(kind, datasets_dir)?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut files = Vec::new();
    match kind {
        DatasetKind::Mnist => {
            for pair in paths.chunks(2) {
                let (img_path, lbl_path) = (&pair[0], &pair[1]);
                let img_bytes = read_unpacked(img_path)?;
                let lbl_bytes = read_unpacked(lbl_path)?;
                let imgs = idx::parse_images(img_path, &img_bytes)?;
                let lbls = idx::parse_labels(lbl_path, &lbl_bytes)?;
                if imgs.rows * imgs.cols != kind.pixel_count() {
                    return Err(TaskError::bad(
                        img_path,
                        format!("images are {}×{}, expected 28×28", imgs.rows, imgs.cols),
                    ));
                }
                if imgs.count != lbls.len() {
                    return Err(TaskError::bad(
                        lbl_path,
                        format!(
                            "{} labels for {} images in {}",
                            lbls.len(),
                            imgs.count,
                            file_name(img_path)
                        ),
                    ));
                }
                pixels.extend_from_slice(imgs.pixels);
                labels.extend_from_slice(lbls);
                files.push(digest_loaded(img_path, &img_bytes)?);
                files.push(digest_loaded(lbl_path, &lbl_bytes)?);
            }
        }
        DatasetKind::Cifar10 => {
            for path in &paths {
                let bytes = read_unpacked(path)?;
                cifar::parse_batch(path, &bytes, &mut pixels, &mut labels)?;
                files.push(digest_loaded(path, &bytes)?);
            }
        }
    }
    Ok(Images {
        pixel_count: kind.pixel_count(),
        pixels,
        labels,
        source: DatasetSource::new(kind, files),
    })
}
