//! Every file the lab writes goes through here, so a crash never leaves a half-written record.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Pretty JSON, written atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Removes the temporary files that writers killed mid-write left under `dir` (recursively):
/// those whose process is gone from this host and that are over a minute old, and any over an
/// hour old (a writer on another host sharing the folder). Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            removed += remove_stale_temps(&path);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".tmp") else { continue };
        let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
        let writer_gone = stem
            .rsplit('.')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !crate::provenance::process_alive(pid));
        let stale = (writer_gone && age.as_secs() >= 60) || age.as_secs() >= 3600;
        if stale && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("codescale-atomic-{}", std::process::id()));
        let path = dir.join("a.json");
        write_atomic(&path, b"first version, long").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> =
            fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "a.json").collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("trials/x");
        fs::create_dir_all(&sub).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        let touch = |path: &Path, when: std::time::SystemTime| {
            fs::write(path, b"partial").unwrap();
            fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
        };
        let dead = sub.join(format!(".trial.json.{}.tmp", u32::MAX - 1));
        let live = sub.join(format!(".trial.json.{}.tmp", std::process::id()));
        let recent_dead = dir.path().join(format!(".plan.json.{}.tmp", u32::MAX - 1));
        touch(&dead, old);
        touch(&live, old);
        touch(&recent_dead, std::time::SystemTime::now());
        fs::write(sub.join("trial.json"), b"{}").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!dead.exists() && live.exists() && recent_dead.exists() && sub.join("trial.json").exists());
    }
}
