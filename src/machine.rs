//! What kst remembers about this machine, in its data folder (`$XDG_DATA_HOME/kasetto`):
//!
//! ```text
//! locks.json                 every lock file kst has written (absolute paths): `kst cache
//!                            prune` keeps the repositories these locks reference
//! last-sync/<hash16>.json    the summary of the last `kst sync` (or `clean`) of one lock,
//!                            keyed by the lock's path: `kst doctor` shows it
//! ```
//!
//! Both are bookkeeping, never needed to install anything: a failure to write them is logged
//! and the run goes on. Neither holds a credential (paths and counts only).

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Cap on what is read back: these files are small.
const CAP: u64 = 4 << 20;

fn data_dir() -> Option<PathBuf> {
    crate::dirs::data_home().ok().map(|d| d.join("kasetto"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Locks {
    locks: BTreeSet<String>,
}

fn locks_file() -> Option<PathBuf> {
    data_dir().map(|d| d.join("locks.json"))
}

fn read_locks(path: &Path) -> Locks {
    crate::fsx::read_input(path, CAP, None)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Remember that kst wrote the lock at `lock` (made absolute). Read-modify-write under an OS
/// lock on `locks.json.lock`, so two syncs finishing together both get recorded.
pub fn record_lock(lock: &Path) {
    if let Err(e) = try_record_lock(lock) {
        tracing::warn!(
            "cannot record {} in kst's list of locks: {e:#}",
            lock.display()
        );
    }
}

fn try_record_lock(lock: &Path) -> anyhow::Result<()> {
    let Some(file) = locks_file() else {
        return Ok(());
    };
    let abs = std::path::absolute(lock)?;
    // A path that is not UTF-8 cannot be kept in JSON; such a lock's repositories are simply
    // not protected from `kst cache prune` (they would be fetched again).
    let Some(abs) = abs.to_str() else {
        return Ok(());
    };
    std::fs::create_dir_all(file.parent().expect("has a parent"))?;
    let _guard = registry_guard(&file)?;
    let mut known = read_locks(&file);
    if known.locks.insert(abs.to_string()) {
        let text = serde_json::to_string_pretty(&known)?;
        crate::fsx::write_atomic(&file, text.as_bytes(), Some(0o600))?;
    }
    Ok(())
}

/// The OS lock that serialises every read-modify-write of the registry `file` (held until
/// the returned file is dropped).
fn registry_guard(file: &Path) -> std::io::Result<std::fs::File> {
    let guard = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file.with_extension("json.lock"))?;
    guard.lock()?;
    Ok(guard)
}

/// Forget the locks that no longer exist (`kst cache prune`), under the same OS lock.
pub fn forget_missing_locks() -> anyhow::Result<()> {
    let Some(file) = locks_file() else {
        return Ok(());
    };
    if !file.exists() {
        return Ok(());
    }
    let _guard = registry_guard(&file)?;
    let mut known = read_locks(&file);
    let before = known.locks.len();
    known.locks.retain(|p| Path::new(p).is_file());
    if known.locks.len() != before {
        let text = serde_json::to_string_pretty(&known)?;
        crate::fsx::write_atomic(&file, text.as_bytes(), Some(0o600))?;
    }
    Ok(())
}

/// Every lock kst has written on this machine that still exists.
pub fn known_locks() -> Vec<PathBuf> {
    let Some(file) = locks_file() else {
        return Vec::new();
    };
    read_locks(&file)
        .locks
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

/// The last sync of one lock, as `kst doctor` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastSync {
    /// `sync` or `clean`.
    pub command: String,
    pub scope: String,
    pub lock: String,
    /// Seconds since the Unix epoch when it finished.
    pub finished: u64,
    /// No broken item and no failed source.
    pub ok: bool,
    /// The `summary` of `kst sync --json` (docs/json.md).
    pub summary: serde_json::Value,
}

fn last_sync_file(lock: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(lock).ok()?;
    let key = crate::oid::hash(git2::ObjectType::Blob, abs.to_string_lossy().as_bytes())
        .ok()?
        .to_string();
    data_dir().map(|d| d.join("last-sync").join(format!("{}.json", &key[..16])))
}

/// Keep the summary of a sync that just finished (logged, not fatal, on failure). A sync that
/// changed nothing and found no problem (skipped MCP entries are a standing state, not a
/// change) leaves an ok record as it is: a no-op sync writes
/// nothing, here either. So the record is the last sync that changed something or failed (or
/// the first all-clear after a failure).
pub fn record_last_sync(rec: &LastSync) {
    let Some(file) = last_sync_file(Path::new(&rec.lock)) else {
        return;
    };
    let n = |k: &str| rec.summary[k].as_u64().unwrap_or(0);
    let no_op = rec.ok
        && [
            "added",
            "updated",
            "repaired",
            "removed",
            "broken",
            "failed_sources",
        ]
        .iter()
        .all(|k| n(k) == 0);
    if no_op && last_sync(Path::new(&rec.lock)).is_some_and(|old| old.ok) {
        return;
    }
    let text = serde_json::to_string_pretty(rec).unwrap_or_default();
    if let Err(e) = crate::fsx::write_atomic(&file, text.as_bytes(), Some(0o600)) {
        tracing::warn!("cannot record the last sync in {}: {e:#}", file.display());
    }
}

/// The last sync recorded for the lock at `lock`, if any.
pub fn last_sync(lock: &Path) -> Option<LastSync> {
    let file = last_sync_file(lock)?;
    let text = crate::fsx::read_input(&file, CAP, None).ok()?;
    serde_json::from_str(&text).ok()
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
