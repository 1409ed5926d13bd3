//! Dataset files written in temporary folders: loaders, rejections, import, archive
//! unpacking, downloads from a loopback server, and the `bitsota data` command.

use bitsota::rng::Rng;
use bitsota::tasks::datasets::fetch::{self, DownloadEvent};
use bitsota::tasks::datasets::{self, cifar, idx, DatasetKind};
use bitsota::tasks::image::{self, ImageSizes};
use bitsota::tasks::{TaskError, TaskSpec, TaskType};
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `n` random 28×28 images with labels cycling 0..9.
fn mnist_pair(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let px: Vec<u8> = (0..n * 784).map(|_| rng.below(256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (idx::encode_images(28, 28, &px), idx::encode_labels(&labels))
}

/// A small MNIST folder; the train images are gzipped under their *plain* name (the
/// loader must detect gzip by magic), t10k images gzipped under the `.gz` name.
fn write_mnist(root: &Path) {
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let (ti, tl) = mnist_pair(60, 1);
    let (vi, vl) = mnist_pair(30, 2);
    std::fs::write(dir.join("train-images-idx3-ubyte"), gzip(&ti)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), tl).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&vi)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), vl).unwrap();
}

/// `n` CIFAR records with labels cycling 0..9.
fn cifar_records(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend((0..3072).map(|_| rng.below(256) as u8));
    }
    out
}

#[test]
fn small_mnist_loads_and_builds() {
    let tmp = tempfile::tempdir().unwrap();
    write_mnist(tmp.path());
    let images = datasets::load(DatasetKind::Mnist, tmp.path()).unwrap();
    assert_eq!(images.len(), 90);
    assert_eq!(images.source.files.len(), 4);
    // The checksum depends on content, not on packing: gunzip everything and compare.
    let plain = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(plain.path().join("mnist")).unwrap();
    for f in &images.source.files {
        let name = datasets::file_name(&f.path);
        let name = name.trim_end_matches(".gz");
        let bytes = datasets::read_unpacked(&f.path).unwrap();
        std::fs::write(plain.path().join("mnist").join(name), bytes).unwrap();
    }
    let again = datasets::fingerprint(DatasetKind::Mnist, plain.path()).unwrap();
    assert_eq!(again.checksum, images.source.checksum);

    let sizes = ImageSizes {
        n_samples: 12,
        train_split: 0.5,
    };
    let spec = TaskSpec::new(TaskType::MnistBinary, 3, 4);
    let t = image::build(&spec, sizes, &images).unwrap();
    // 18 candidates (digits 0 and 1 among 90), 12 sampled.
    assert_eq!((t.train_len(), t.val_len()), (6, 6));
    assert_eq!(t, image::build(&spec, sizes, &images).unwrap());
    // Too few candidates for the request: all of them are used.
    let big = ImageSizes {
        n_samples: 1000,
        train_split: 0.5,
    };
    assert_eq!(image::build(&spec, big, &images).unwrap().train_len(), 9);
}

#[test]
fn missing_datasets_name_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in DatasetKind::ALL {
        let e = datasets::load(kind, tmp.path()).unwrap_err();
        assert!(matches!(e, TaskError::DatasetMissing { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("bitsota data fetch {}", kind.name())),
            "{msg}"
        );
        assert!(msg.contains("--from DIR"), "{msg}");
    }
    // One missing MNIST file is named.
    write_mnist(tmp.path());
    std::fs::remove_file(tmp.path().join("mnist/t10k-labels-idx1-ubyte")).unwrap();
    let msg = datasets::load(DatasetKind::Mnist, tmp.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
}

#[test]
fn corrupt_files_are_rejected_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let load_err = |root: &Path, kind| datasets::load(kind, root).unwrap_err();

    // Truncated images.
    write_mnist(tmp.path());
    let (ti, _) = mnist_pair(60, 1);
    std::fs::write(
        tmp.path().join("mnist/train-images-idx3-ubyte"),
        &ti[..ti.len() - 5],
    )
    .unwrap();
    let e = load_err(tmp.path(), DatasetKind::Mnist);
    assert!(matches!(e, TaskError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");

    // Labels where images should be: wrong magic.
    let (_, tl) = mnist_pair(60, 1);
    std::fs::write(tmp.path().join("mnist/train-images-idx3-ubyte"), &tl).unwrap();
    let e = load_err(tmp.path(), DatasetKind::Mnist);
    assert!(
        matches!(
            e,
            TaskError::WrongMagic {
                expected: 2051,
                found: 2049,
                ..
            }
        ),
        "{e}"
    );

    // Label count differs from image count.
    write_mnist(tmp.path());
    let (_, short) = mnist_pair(59, 1);
    std::fs::write(tmp.path().join("mnist/train-labels-idx1-ubyte"), short).unwrap();
    let e = load_err(tmp.path(), DatasetKind::Mnist);
    assert!(e.to_string().contains("train-labels-idx1-ubyte"), "{e}");

    // Broken gzip stream.
    write_mnist(tmp.path());
    let mut gz = std::fs::read(tmp.path().join("mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    gz.truncate(gz.len() / 2);
    std::fs::write(tmp.path().join("mnist/t10k-images-idx3-ubyte.gz"), gz).unwrap();
    let e = load_err(tmp.path(), DatasetKind::Mnist);
    assert!(e.to_string().contains("t10k-images-idx3-ubyte.gz"), "{e}");

    // CIFAR: a batch that is not a whole number of records.
    let cdir = tmp.path().join("cifar10");
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(cdir.join("data_batch_1.bin"), cifar_records(3, 1)).unwrap();
    std::fs::write(cdir.join("data_batch_2.bin"), &cifar_records(3, 2)[..5000]).unwrap();
    let e = load_err(tmp.path(), DatasetKind::Cifar10);
    assert!(matches!(e, TaskError::BadFormat { .. }), "{e}");
    assert!(e.to_string().contains("data_batch_2.bin"), "{e}");
    std::fs::remove_file(cdir.join("data_batch_2.bin")).unwrap();
    let ok = datasets::load(DatasetKind::Cifar10, tmp.path()).unwrap();
    assert_eq!(ok.len(), 3);
}

#[test]
fn cifar_batches_load_in_sorted_order_and_build() {
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("cifar10");
    std::fs::create_dir_all(&cdir).unwrap();
    let (b1, b2) = (cifar_records(40, 1), cifar_records(20, 2));
    std::fs::write(cdir.join("z_batch.bin"), &b2).unwrap();
    std::fs::write(cdir.join("a_batch.bin"), &b1).unwrap();
    std::fs::write(cdir.join("batches.meta.txt"), "airplane\n").unwrap();
    std::fs::write(cdir.join(".partial.bin"), b"not a batch").unwrap();
    let images = datasets::load(DatasetKind::Cifar10, tmp.path()).unwrap();
    assert_eq!(images.len(), 60);
    assert_eq!(images.image(0), &b1[1..cifar::RECORD_LEN]);
    assert_eq!(images.image(40), &b2[1..cifar::RECORD_LEN]);
    let names: Vec<String> = images
        .source
        .files
        .iter()
        .map(|f| datasets::file_name(&f.path))
        .collect();
    assert_eq!(names, ["a_batch.bin", "z_batch.bin"]);
    // Task 4499 is pair (8, 9): 12 candidates; label 1 = class 9.
    let sizes = ImageSizes {
        n_samples: 10,
        train_split: 0.6,
    };
    let t = image::build(
        &TaskSpec::new(TaskType::Cifar10Binary, 4499, 3),
        sizes,
        &images,
    )
    .unwrap();
    assert_eq!((t.train_len(), t.val_len()), (6, 4));
    let ones = t
        .train_y
        .iter()
        .chain(&t.val_y)
        .filter(|&&y| y == 1.0)
        .count();
    assert!((1..10).contains(&ones));
    let e = image::build(
        &TaskSpec::new(TaskType::Cifar10Binary, 4500, 3),
        sizes,
        &images,
    )
    .unwrap_err();
    assert!(e.to_string().contains("4500"), "{e}");
}

#[test]
fn import_verifies_what_it_can() {
    let src = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    // Unofficial MNIST content fails the published MD5s and is not installed.
    write_mnist(src.path());
    let e = fetch::import(DatasetKind::Mnist, dest.path(), &src.path().join("mnist")).unwrap_err();
    assert!(
        matches!(
            e,
            TaskError::ChecksumMismatch {
                algorithm: "md5",
                ..
            }
        ),
        "{e}"
    );
    assert!(!dest.path().join("mnist/train-images-idx3-ubyte").exists());

    // A CIFAR batch without a published checksum is installed after a layout check; one
    // named like an official batch must match its SHA-256.
    std::fs::write(src.path().join("extra_batch.bin"), cifar_records(5, 3)).unwrap();
    let done = fetch::import(DatasetKind::Cifar10, dest.path(), src.path()).unwrap();
    assert_eq!(done.len(), 1);
    assert!(
        done[0].check.contains("no published checksum"),
        "{:?}",
        done[0]
    );
    assert_eq!(
        datasets::load(DatasetKind::Cifar10, dest.path())
            .unwrap()
            .len(),
        5
    );
    std::fs::write(src.path().join("data_batch_1.bin"), cifar_records(5, 4)).unwrap();
    let e = fetch::import(DatasetKind::Cifar10, dest.path(), src.path()).unwrap_err();
    assert!(
        matches!(
            e,
            TaskError::ChecksumMismatch {
                algorithm: "sha256",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("data_batch_1.bin"), "{e}");
    // Nothing to import.
    let empty = tempfile::tempdir().unwrap();
    let e = fetch::import(DatasetKind::Cifar10, dest.path(), empty.path()).unwrap_err();
    assert!(matches!(e, TaskError::DatasetMissing { .. }), "{e}");
}

/// A CIFAR-style archive: `cifar-10-batches-bin/{small.bin,batches.meta.txt,readme.html}`.
fn cifar_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("cifar-10-batches-bin/small.bin", cifar_records(4, 9)),
        (
            "cifar-10-batches-bin/batches.meta.txt",
            b"airplane\n".to_vec(),
        ),
        ("cifar-10-batches-bin/readme.html", b"<html>".to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &data[..]).unwrap();
    }
    gzip(&tar.into_inner().unwrap())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn archive_is_verified_then_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a.tar.gz");
    let bytes = cifar_archive();
    std::fs::write(&archive, &bytes).unwrap();
    let dest = tmp.path().join("out");
    let e = fetch::unpack_cifar_archive(&archive, fetch::CIFAR10_SHA256, &dest).unwrap_err();
    assert!(matches!(e, TaskError::ChecksumMismatch { .. }), "{e}");
    assert!(!dest.exists());
    let done = fetch::unpack_cifar_archive(&archive, &sha256_hex(&bytes), &dest).unwrap();
    let names: Vec<String> = done.iter().map(|i| datasets::file_name(&i.path)).collect();
    assert_eq!(names, ["small.bin", "batches.meta.txt"]);
    assert_eq!(
        std::fs::read(dest.join("small.bin")).unwrap(),
        cifar_records(4, 9)
    );
}

/// Serve `responses` (status line, body) to successive connections on loopback.
fn serve(responses: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn downloads_verify_and_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = cifar_archive();
    let sum = sha256_hex(&bytes);
    let base = serve(vec![
        ("200 OK", bytes.clone()),
        ("404 Not Found", Vec::new()),
        ("200 OK", bytes),
    ]);
    let mut events = Vec::new();
    let done = fetch::fetch_cifar10(tmp.path(), &format!("{base}/c.tar.gz"), &sum, &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(done.len(), 2);
    assert!(matches!(
        events.first(),
        Some(DownloadEvent::Start { total: Some(_), .. })
    ));
    assert_eq!(events.last(), Some(&DownloadEvent::Finish));
    assert_eq!(
        datasets::load(DatasetKind::Cifar10, tmp.path())
            .unwrap()
            .len(),
        4
    );

    let e = fetch::fetch_cifar10(tmp.path(), &format!("{base}/c.tar.gz"), &sum, &mut |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    // The official checksum rejects any other archive, and no temporary file is left.
    let e = fetch::fetch_cifar10(
        tmp.path(),
        &format!("{base}/c.tar.gz"),
        fetch::CIFAR10_SHA256,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, TaskError::ChecksumMismatch { .. }), "{e}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("cifar10"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Nothing listening: a download error naming the URL.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/train-images-idx3-ubyte.gz");
    let e = fetch::fetch_mnist(tmp.path(), &format!("http://{closed}/"), &mut |_| {}).unwrap_err();
    assert!(matches!(e, TaskError::Download { .. }), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
}

#[test]
fn mnist_download_checks_unpacked_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let (ti, _) = mnist_pair(3, 1);
    let base = serve(vec![("200 OK", gzip(&ti))]);
    let e = fetch::fetch_mnist(tmp.path(), &format!("{base}/"), &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            e,
            TaskError::ChecksumMismatch {
                algorithm: "md5",
                ..
            }
        ),
        "{e}"
    );
    assert!(!tmp.path().join("mnist/train-images-idx3-ubyte").exists());
}

#[test]
fn cli_status_and_import() {
    let bin = env!("CARGO_BIN_EXE_bitsota");
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("data")
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("BITSOTA_DATA_DIR")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&["status"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("bitsota data fetch mnist") && text.contains("bitsota data fetch cifar10"),
        "{text}"
    );

    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("extra_batch.bin"), cifar_records(5, 3)).unwrap();
    let from = src.path().to_str().unwrap();
    let (code, text) = run(&["fetch", "cifar10", "--from", from]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("cifar10 ready"), "{text}");
    let (code, text) = run(&["status"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("cifar10: ready") && text.contains("extra_batch.bin"),
        "{text}"
    );

    // A file under an official name with other content: status reports the mismatch, exit 1.
    std::fs::write(
        data.path().join("datasets/cifar10/data_batch_1.bin"),
        cifar_records(2, 1),
    )
    .unwrap();
    let (code, text) = run(&["status"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("MISMATCH"), "{text}");

    let (code, text) = run(&["fetch", "imagenet"]);
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn prepare_handles_every_task_type() {
    use bitsota::tasks::cache::TaskCache;
    use bitsota::tasks::prepare::{prepare_tasks, DataConfig};
    use bitsota::tasks::scalar_linear::{self, LinearSizes};
    use bitsota::tasks::suite::SuiteSpec;

    let data = tempfile::tempdir().unwrap();
    let mut cfg = DataConfig::for_data_dir(data.path());
    cfg.scalar_linear = LinearSizes { train: 20, val: 5 };
    cfg.mnist_binary = ImageSizes {
        n_samples: 10,
        train_split: 0.5,
    };
    let cache = TaskCache::new(1 << 30);

    // scalar_linear: exactly scalar_linear::build, memory-cached, never written to disk.
    let suite = SuiteSpec::new(TaskType::ScalarLinear, 4, 3, 0);
    let tasks = prepare_tasks(&cache, &suite.tasks, &cfg, &|_| {}).unwrap();
    for (t, spec) in tasks.iter().zip(&suite.tasks) {
        assert_eq!(**t, scalar_linear::build(spec, cfg.scalar_linear));
    }
    assert!(!cfg.cache_dir.as_ref().unwrap().exists());

    // Image tasks without their dataset: the error names the fetch command.
    let mnist = SuiteSpec::new(TaskType::MnistBinary, 5, 2, 0);
    let e = prepare_tasks(&cache, &mnist.tasks, &cfg, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("bitsota data fetch mnist"), "{e}");

    // With the dataset (and mixed types in one call), in spec order, written to disk.
    write_mnist(&cfg.datasets_dir);
    let mixed: Vec<TaskSpec> = mnist.tasks.iter().chain(&suite.tasks).copied().collect();
    let tasks = prepare_tasks(&cache, &mixed, &cfg, &|_| {}).unwrap();
    assert_eq!(tasks.iter().map(|t| t.spec).collect::<Vec<_>>(), mixed);
    assert_eq!(tasks[0].train_len() + tasks[0].val_len(), 10);
    let entries = std::fs::read_dir(cfg.cache_dir.as_ref().unwrap().join("mnist_binary"))
        .unwrap()
        .count();
    assert_eq!(entries, 2);

    // Invalid sizes are a configuration error, not a panic.
    cfg.mnist_binary.train_split = 0.0;
    let e = prepare_tasks(&cache, &mixed, &cfg, &|_| {}).unwrap_err();
    assert!(matches!(e, TaskError::Config(_)), "{e}");
}
