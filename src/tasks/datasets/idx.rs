//! MNIST IDX files: a big-endian `u32` header (magic, counts, dimensions) then bytes.

use crate::tasks::error::TaskError;
use std::path::Path;

/// Magic of an IDX file of `u8` images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic of an IDX file of `u8` labels (1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// A parsed image file, borrowing its pixel bytes.
#[derive(Debug)]
pub struct IdxImages<'a> {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: &'a [u8],
}

fn header(path: &Path, bytes: &[u8], words: usize) -> Result<Vec<u32>, TaskError> {
    if bytes.len() < 4 * words {
        return Err(TaskError::Truncated {
            path: path.to_path_buf(),
            expected: 4 * words as u64,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes[..4 * words]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn check_magic(
    path: &Path,
    what: &'static str,
    expected: u32,
    found: u32,
) -> Result<(), TaskError> {
    if found == expected {
        Ok(())
    } else {
        Err(TaskError::WrongMagic {
            path: path.to_path_buf(),
            what,
            expected,
            found,
        })
    }
}

fn body<'a>(path: &Path, bytes: &'a [u8], offset: usize, len: u64) -> Result<&'a [u8], TaskError> {
    let expected = offset as u64 + len;
    let actual = bytes.len() as u64;
    if actual < expected {
        return Err(TaskError::Truncated {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    if actual > expected {
        return Err(TaskError::bad(
            path,
            format!(
                "{} trailing bytes after the {expected} the header announces",
                actual - expected
            ),
        ));
    }
    Ok(&bytes[offset..])
}

/// Parse an (unpacked) IDX image file.
pub fn parse_images<'a>(path: &Path, bytes: &'a [u8]) -> Result<IdxImages<'a>, TaskError> {
    let h = header(path, bytes, 4)?;
    check_magic(path, "images", IMAGES_MAGIC, h[0])?;
    let (count, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    let pixels = body(path, bytes, 16, count as u64 * rows as u64 * cols as u64)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parse an (unpacked) IDX label file; labels must be digits 0–9.
pub fn parse_labels<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], TaskError> {
    let h = header(path, bytes, 2)?;
    check_magic(path, "labels", LABELS_MAGIC, h[0])?;
    let labels = body(path, bytes, 8, h[1] as u64)?;
    if let Some(pos) = labels.iter().position(|&l| l > 9) {
        return Err(TaskError::bad(
            path,
            format!("label {} at index {pos} is not a digit 0–9", labels[pos]),
        ));
    }
    Ok(labels)
}

/// Encode images as an IDX file (used to write test files and by importers).
pub fn encode_images(rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let count = pixels.len() / (rows * cols);
    let mut out = Vec::with_capacity(16 + pixels.len());
    for w in [IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encode labels as an IDX file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for w in [LABELS_MAGIC, labels.len() as u32] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let p = Path::new("x");
        let px: Vec<u8> = (0..2 * 4).map(|i| i as u8).collect();
        let enc = encode_images(2, 2, &px);
        let img = parse_images(p, &enc).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 2, 2));
        assert_eq!(img.pixels, &px[..]);
        assert!(matches!(
            parse_images(p, &enc[..enc.len() - 1]),
            Err(TaskError::Truncated { .. })
        ));
        assert!(matches!(
            parse_labels(p, &enc),
            Err(TaskError::WrongMagic { found: 2051, .. })
        ));
        let lbl = encode_labels(&[1, 0, 9]);
        assert_eq!(parse_labels(p, &lbl).unwrap(), &[1, 0, 9]);
        assert!(matches!(
            parse_labels(p, &encode_labels(&[10])),
            Err(TaskError::BadFormat { .. })
        ));
        assert!(matches!(
            parse_labels(p, &[0, 0]),
            Err(TaskError::Truncated { .. })
        ));
    }
}
