//! The stage cache: every stage writes a stamp of what it was made from (its key) into the run
//! directory, and is skipped while the stamp matches and its outputs exist.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ksnn_formats::ContentHash;
use serde::Serialize;

/// Skips a stage whose stamp matches; otherwise runs it and writes the stamp.
pub struct Stages {
    /// The run directory; stamps live in its `.stamps/` folder, one file per stage.
    pub dir: PathBuf,
}

impl Stages {
    /// Runs `f` unless stage `name` is fresh for `key`; true when it ran.
    pub fn run(
        &self,
        name: &str,
        key: &str,
        outputs: &[&Path],
        f: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        let stamp = self.dir.join(".stamps").join(name);
        let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s == key)
            && outputs.iter().all(|p| p.exists());
        if fresh {
            println!("\n== {name}: unchanged, skipped");
            return Ok(false);
        }
        println!("\n== {name}");
        let _ = std::fs::remove_file(&stamp);
        f().with_context(|| format!("stage {name}"))?;
        let stamps = self.dir.join(".stamps");
        std::fs::create_dir_all(&stamps)?;
        std::fs::write(&stamp, key)?;
        Ok(true)
    }
}

/// A stage's key: what it is made from (its settings and the keys before it), and the file
/// format version, so that outputs an older build wrote are remade rather than misread.
pub fn key(parts: &[&str]) -> String {
    let version = ksnn_formats::envelope::FORMAT_VERSION.to_string();
    let all: Vec<&str> = std::iter::once(version.as_str())
        .chain(parts.iter().copied())
        .collect();
    ContentHash::of(all.join("\n").as_bytes()).to_string()
}

/// Settings as they enter a key.
pub fn toml_of<T: Serialize>(v: &T) -> String {
    toml::to_string(v).unwrap_or_default()
}
