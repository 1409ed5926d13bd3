//! The dependency rule, checked: arrows point one way, cli → server → appliance →
//! services → foundations. A service never imports `server`, `appliance` or another
//! service; a foundation never imports a service. `cargo test layering` fails on the
//! first `crate::…` path that breaks the rule and names the file.

/// Where each top-level module sits. Same-layer imports are allowed only for
/// foundations, and only along the arrows listed in [`FOUNDATION_ARROWS`].
const LAYERS: &[(&str, u8)] = &[
    ("cli", 4),
    ("main", 4),
    ("server", 3),
    ("appliance", 2),
    ("relay", 1),
    ("sidecar", 1),
    ("pool", 1),
    ("validator", 1),
    ("miner", 1),
    ("clock", 0),
    ("config", 0),
    ("context", 0),
    ("engine", 0),
    ("health", 0),
    ("http", 0),
    ("jobs", 0),
    ("keys", 0),
    ("logfile", 0),
    ("metrics", 0),
    ("protocol", 0),
    ("retention", 0),
    ("rng", 0),
    ("score_json", 0),
    ("store", 0),
    ("tasks", 0),
    ("layering", 0),
];

/// The imports foundations make of each other (a DAG apart from engine ⇄ tasks, which
/// share the `Task`/`Examples` types and would move together into one crate).
const FOUNDATION_ARROWS: &[(&str, &[&str])] = &[
    ("config", &["engine", "store", "tasks"]),
    ("context", &["config", "health", "http", "metrics", "store"]),
    ("health", &["store"]),
    ("metrics", &["config", "health", "http", "store"]),
    ("engine", &["rng", "tasks"]),
    ("tasks", &["engine", "rng"]),
    ("jobs", &["config", "engine", "rng", "score_json", "tasks"]),
    ("protocol", &["clock", "keys", "score_json"]),
    ("http", &["store"]),
    ("keys", &[]),
    ("logfile", &["retention"]),
    ("retention", &[]),
    ("rng", &[]),
    ("score_json", &[]),
    ("store", &[]),
    ("layering", &[]),
];

mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The top-level modules named by `crate::x` paths in `text`.
    fn crate_paths(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        found
    }

    fn allowed(from: &str, to: &str) -> bool {
        if from == to {
            return true;
        }
        let (Some(lf), Some(lt)) = (layer(from), layer(to)) else {
            return false;
        };
        if lf == 0 && lt == 0 {
            return FOUNDATION_ARROWS
                .iter()
                .any(|(m, deps)| *m == from && deps.contains(&to));
        }
        lt < lf
    }

    #[test]
    fn every_import_points_down_the_layers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut broken = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            // lib.rs declares the modules; this file names paths in its own tests.
            if module == "lib" || module == "layering" {
                continue;
            }
            assert!(
                layer(&module).is_some(),
                "src/{first} is not placed in layering::LAYERS"
            );
            let text = std::fs::read_to_string(file).unwrap();
            for to in crate_paths(&text) {
                if !allowed(&module, &to) {
                    broken.push(format!("src/{}: {module} → {to}", rel.display()));
                }
            }
        }
        broken.sort();
        broken.dedup();
        assert!(
            broken.is_empty(),
            "imports against the layering:\n{}",
            broken.join("\n")
        );
    }

    #[test]
    fn the_rule_itself() {
        assert!(allowed("server", "relay"));
        assert!(allowed("appliance", "miner"));
        assert!(!allowed("relay", "server"));
        assert!(
            !allowed("miner", "sidecar"),
            "services do not import each other"
        );
        assert!(
            !allowed("config", "miner"),
            "foundations do not import services"
        );
        assert!(!allowed("keys", "store"), "foundation arrows are listed");
        assert!(crate_paths("use crate::a::b; crate::c(x) // crate::").len() == 2);
    }
}
