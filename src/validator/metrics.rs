//! JSONL metrics in the reference validator's format (validator.md §2): one JSON object
//! per line with `timestamp`, `session_id`, `event` and the event's fields. Write errors
//! are logged once and never stop validation.

use crate::logfile::RotatingFile;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a validator's metrics go, from the `metrics_log` setting: `auto` =
/// `<data_dir>/metrics/<name>.jsonl`, empty = off, anything else = a directory.
pub fn metrics_path(setting: &str, data_dir: &Path, name: &str) -> Option<PathBuf> {
    match setting.trim() {
        "" => None,
        "auto" => Some(data_dir.join("metrics").join(format!("{name}.jsonl"))),
        dir => Some(Path::new(dir).join(format!("{name}.jsonl"))),
    }
}

/// The reference truncates hotkeys in metrics: first 8 characters and `...`.
pub fn short_hotkey(hotkey: &str) -> String {
    let head: String = hotkey.chars().take(8).collect();
    format!("{head}...")
}

pub struct MetricsLog {
    file: Option<RotatingFile>,
    session_id: String,
    failed: bool,
}

impl MetricsLog {
    /// Open (append) the log at `path`; `None` = metrics off.
    pub fn open(path: Option<PathBuf>) -> Self {
        let session_id = crate::clock::now_s().to_string();
        let file = path.as_ref().and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            RotatingFile::open(p, 0)
                .map_err(|e| tracing::warn!(path = %p.display(), error = %e, "validator metrics log disabled"))
                .ok()
        });
        MetricsLog {
            file,
            session_id,
            failed: false,
        }
    }

    /// Rotate the file to `<name>.1` past `max_bytes` (0 = never; `[store]
    /// metrics_log_max_mb`): the history kept is at most about twice the cap.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        if let Some(f) = &mut self.file {
            f.set_max_bytes(max_bytes);
        }
        self
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(RotatingFile::path)
    }

    /// Append one event with `fields` (an object).
    pub fn event(&mut self, event: &str, fields: Value) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut entry = Map::new();
        entry.insert(
            "timestamp".into(),
            json!(crate::clock::now_iso(crate::clock::SecondsFormat::Micros)),
        );
        entry.insert("session_id".into(), json!(self.session_id));
        entry.insert("event".into(), json!(event));
        if let Value::Object(extra) = fields {
            entry.extend(extra);
        }
        let mut line = Value::Object(entry).to_string();
        line.push('\n');
        if let Err(e) = file.write_all(line.as_bytes()) {
            if !self.failed {
                tracing::warn!(path = %file.path().display(), error = %e, "cannot write validator metrics");
                self.failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_past_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.jsonl");
        let mut log = MetricsLog::open(Some(path.clone())).with_max_bytes(300);
        for i in 0..20 {
            log.event("tick", json!({ "i": i }));
        }
        let len = |p: &Path| std::fs::metadata(p).unwrap().len();
        let rotated = dir.path().join("v.jsonl.1");
        // A file rotates at the first write after it passed the cap (lines are < 150).
        assert!(
            len(&path) < 450 && (300..450).contains(&len(&rotated)),
            "{} {}",
            len(&path),
            len(&rotated)
        );
    }

    #[test]
    fn lines_carry_the_common_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = metrics_path("auto", dir.path(), "validator-1").unwrap();
        assert_eq!(path, dir.path().join("metrics/validator-1.jsonl"));
        let mut log = MetricsLog::open(Some(path.clone()));
        log.event("session_start", json!({}));
        log.event("sota_update", json!({"old_sota": 0.1, "new_sota": 0.2}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["event"], "sota_update");
        assert_eq!(lines[1]["new_sota"], 0.2);
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[0]["session_id"], lines[1]["session_id"]);
        assert!(metrics_path("", dir.path(), "v").is_none());
        assert_eq!(
            metrics_path("/x", dir.path(), "v"),
            Some(PathBuf::from("/x/v.jsonl"))
        );
        assert_eq!(
            short_hotkey("5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX"),
            "5F3sa2TJ..."
        );
    }
}
