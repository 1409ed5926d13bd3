//! The migration runner: ordered, atomic, exactly-once schema changes.
//!
//! Migrations are data (`migrations/NNNN_name.toml`, embedded at build time) made of
//! idempotent steps. On open, every migration above the recorded schema version runs in
//! order; the new version is written only after all its steps succeed and the store is
//! flushed, so a crash mid-way re-runs that migration, and a finished one never runs
//! again. A store whose version is above the newest known migration is refused.

use super::{decode, encode, StoreError, META_TREE};
use serde::Deserialize;

/// One schema migration, parsed from `migrations/`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    #[serde(default)]
    pub steps: Vec<MigrationStep>,
}

/// The vocabulary of migration steps. Each is idempotent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum MigrationStep {
    /// Make sure a tree exists.
    CreateTree { tree: String },
    /// Drop a tree and its records (no-op if absent).
    DropTree { tree: String },
    /// Move every record of `from` into `to`, then drop `from` (no-op if `from` is empty).
    RenameTree { from: String, to: String },
}

/// The migrations this build knows, in order (embedded from `migrations/`).
pub static MIGRATIONS: &[(&str, &str)] = &[(
    "0001_initial.toml",
    include_str!("../../migrations/0001_initial.toml"),
)];

const VERSION_KEY: &str = "schema_version";

/// Parse the embedded migrations and check they are numbered 1, 2, 3, … in order.
pub fn parse_all(sources: &[(&str, &str)]) -> Result<Vec<Migration>, StoreError> {
    let mut out = Vec::with_capacity(sources.len());
    for (i, (file, text)) in sources.iter().enumerate() {
        let m: Migration = toml::from_str(text).map_err(|e| StoreError::Migration {
            version: i as u32 + 1,
            name: file.to_string(),
            reason: e.to_string(),
        })?;
        if m.version != i as u32 + 1 {
            return Err(StoreError::Migration {
                version: m.version,
                name: file.to_string(),
                reason: format!("expected version {}", i + 1),
            });
        }
        out.push(m);
    }
    Ok(out)
}

/// The schema version recorded in `db` (0 for a new store).
pub fn recorded_version(db: &sled::Db) -> Result<u32, StoreError> {
    let meta = db.open_tree(META_TREE)?;
    match meta.get(VERSION_KEY)? {
        Some(bytes) => decode(META_TREE, &bytes),
        None => Ok(0),
    }
}

/// Record `version` as the store's schema version.
pub fn record_version(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    db.open_tree(META_TREE)?
        .insert(VERSION_KEY, encode(&version)?)?;
    Ok(())
}

/// Run every pending migration of `sources` on `db`.
pub fn run(db: &sled::Db, sources: &[(&str, &str)]) -> Result<u32, StoreError> {
    let migrations = parse_all(sources)?;
    let known = migrations.len() as u32;
    let recorded = recorded_version(db)?;
    if recorded > known {
        return Err(StoreError::TooNew {
            found: recorded,
            known,
        });
    }
    let mut current = recorded;
    for m in migrations.iter().filter(|m| m.version > recorded) {
        for step in &m.steps {
            apply(db, step).map_err(|e| StoreError::Migration {
                version: m.version,
                name: m.name.clone(),
                reason: e.to_string(),
            })?;
        }
        db.flush()?;
        record_version(db, m.version)?;
        db.flush()?;
        tracing::info!(version = m.version, name = %m.name, "store migrated");
        current = m.version;
    }
    Ok(current)
}

fn apply(db: &sled::Db, step: &MigrationStep) -> Result<(), StoreError> {
    match step {
        MigrationStep::CreateTree { tree } => {
            db.open_tree(tree)?;
        }
        MigrationStep::DropTree { tree } => {
            db.drop_tree(tree)?;
        }
        MigrationStep::RenameTree { from, to } => {
            let src = db.open_tree(from)?;
            let dst = db.open_tree(to)?;
            for kv in src.iter() {
                let (k, v) = kv?;
                dst.insert(k, v)?;
            }
            db.flush()?;
            db.drop_tree(from)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        (dir, db)
    }

    const V1: &str = "version = 1\nname = \"a\"\n[[steps]]\nop = \"create_tree\"\ntree = \"old\"\n";
    const V2: &str = "version = 2\nname = \"b\"\n[[steps]]\nop = \"rename_tree\"\nfrom = \"old\"\nto = \"new\"\n";

    #[test]
    fn runs_in_order_exactly_once() {
        let (_d, db) = temp_db();
        assert_eq!(run(&db, &[("1", V1)]).unwrap(), 1);
        db.open_tree("old").unwrap().insert("k", "v").unwrap();
        assert_eq!(run(&db, &[("1", V1), ("2", V2)]).unwrap(), 2);
        assert_eq!(db.open_tree("new").unwrap().get("k").unwrap().unwrap(), "v");
        assert!(db.open_tree("old").unwrap().is_empty());
        // Running again changes nothing.
        db.open_tree("old").unwrap().insert("k2", "v2").unwrap();
        assert_eq!(run(&db, &[("1", V1), ("2", V2)]).unwrap(), 2);
        assert!(db.open_tree("new").unwrap().get("k2").unwrap().is_none());
    }

    #[test]
    fn newer_store_is_refused() {
        let (_d, db) = temp_db();
        record_version(&db, 7).unwrap();
        let err = run(&db, &[("1", V1)]).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 7, known: 1 }));
        assert!(err.to_string().contains("newer"));
    }

    #[test]
    fn misnumbered_or_malformed_migrations_are_errors() {
        let (_d, db) = temp_db();
        assert!(run(&db, &[("2", V2)]).is_err());
        assert!(run(&db, &[("x", "version = 1\nname = \"x\"\nbogus = 3\n")]).is_err());
        assert!(run(
            &db,
            &[(
                "x",
                "version = 1\nname = \"x\"\n[[steps]]\nop = \"explode\"\n"
            )]
        )
        .is_err());
    }

    #[test]
    fn shipped_migrations_parse() {
        let all = parse_all(MIGRATIONS).unwrap();
        assert_eq!(all.len(), MIGRATIONS.len());
    }
}
