//! Append-only files with a size cap: the daemon's log (`<data_dir>/logs/bitsota.log`,
//! `[log] file_max_mb`) and each validator's JSONL metrics (`[store]
//! metrics_log_max_mb`). Once a file has passed its cap, the next write first renames it
//! to `<name>.1` (replacing an older one) and starts a fresh file, so a file and its
//! predecessor hold at most about twice the cap (`retention::rotate_file` is the rule).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file opened for appending that rotates past `max_bytes` (0 = never).
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file (what it held when opened, plus what was written).
    len: u64,
    max_bytes: u64,
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl RotatingFile {
    /// Open (create or append to) `path`, rotating past `max_bytes` (0 = never).
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<RotatingFile> {
        let file = append(path)?;
        let len = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            len,
            max_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Change the cap (0 = never rotate); applies from the next write.
    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    /// The name the full file is moved to.
    pub fn rotated_path(path: &Path) -> PathBuf {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        PathBuf::from(old)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        std::fs::rename(&self.path, Self::rotated_path(&self.path))?;
        self.file = append(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    /// Rotates first when the file is past its cap; a failed rotation fails the write,
    /// so the file never grows past its cap by more than one write.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if crate::retention::rotate_file(self.len, self.max_bytes) {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rotates_once_past_its_cap_and_keeps_one_predecessor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut f = RotatingFile::open(&path, 20).unwrap();
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        f.write_all(b"0123456789\n").unwrap(); // 9 + 11 = 20: at the cap, not past it
        assert_eq!(len(&path), 20);
        f.write_all(b"a\n").unwrap(); // 22: past the cap, written whole
        assert_eq!(len(&path), 22);
        assert!(!RotatingFile::rotated_path(&path).exists());
        f.write_all(b"b\n").unwrap(); // rotates first
        assert_eq!(len(&path), 2);
        assert_eq!(len(&RotatingFile::rotated_path(&path)), 22);
        for _ in 0..30 {
            f.write_all(b"0123456789\n").unwrap();
        }
        assert!(len(&path) <= 20 + 11 && len(&RotatingFile::rotated_path(&path)) <= 20 + 11);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "one predecessor only");
        // Reopening counts what the file already holds.
        let mut f = RotatingFile::open(&path, 1).unwrap();
        f.write_all(b"c\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c\n");
    }

    #[test]
    fn no_cap_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = RotatingFile::open(&path, 0).unwrap();
        for _ in 0..100 {
            f.write_all(b"0123456789\n").unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1100);
        assert!(!RotatingFile::rotated_path(&path).exists());
    }
}
