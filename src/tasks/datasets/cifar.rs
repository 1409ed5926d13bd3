//! CIFAR-10 binary batches: headerless 3073-byte records (label, then R, G, B planes).

use crate::tasks::error::TaskError;
use std::path::Path;

/// Bytes per record: one label byte and 3 × 32 × 32 pixel bytes.
pub const RECORD_LEN: usize = 3073;

/// Append the records of one batch file to `pixels` / `labels`.
pub fn parse_batch(
    path: &Path,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<(), TaskError> {
    if bytes.is_empty() || bytes.len() % RECORD_LEN != 0 {
        return Err(TaskError::bad(
            path,
            format!(
                "size {} is not a positive multiple of the {RECORD_LEN}-byte CIFAR-10 record",
                bytes.len()
            ),
        ));
    }
    pixels.reserve(bytes.len() / RECORD_LEN * (RECORD_LEN - 1));
    for (i, rec) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        if rec[0] > 9 {
            return Err(TaskError::bad(
                path,
                format!("record {i} has label {} (expected 0–9)", rec[0]),
            ));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let mut rec = vec![7u8; RECORD_LEN];
        rec[0] = 3;
        let (mut px, mut lb) = (Vec::new(), Vec::new());
        parse_batch(Path::new("b"), &rec.repeat(2), &mut px, &mut lb).unwrap();
        assert_eq!(lb, vec![3, 3]);
        assert_eq!(px.len(), 2 * 3072);
        assert!(parse_batch(Path::new("b"), &rec[..100], &mut px, &mut lb).is_err());
        rec[0] = 10;
        assert!(parse_batch(Path::new("b"), &rec, &mut px, &mut lb).is_err());
    }
}
