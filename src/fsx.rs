//! File-system operations that must be atomic or must not follow symlinks, in one place.
//!
//! Everything that replaces a file or a folder goes through here: atomic file writes (temp file
//! in the same folder, fsync, rename, fsync the folder) and atomic folder swaps (Linux
//! `renameat2(RENAME_EXCHANGE)`, with a two-rename fallback elsewhere).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Prefix of our own temporary names inside destination folders. Entries with this prefix are
/// ours to clean up; skill names cannot start with `.`, so no skill can be named like them.
pub const TEMP_PREFIX: &str = ".kst-";

/// A fresh, unique name next to `target` for a temporary file or folder.
pub fn temp_sibling(target: &Path, kind: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = format!("{TEMP_PREFIX}{kind}-{name}-{}-{n}", std::process::id());
    target.with_file_name(unique)
}

/// A fresh, unique name inside `dir` for a temporary copy of `target` (a staging folder, the
/// trash of a removed one).
pub fn temp_in(dir: &Path, target: &Path, kind: &str) -> PathBuf {
    let sibling = temp_sibling(target, kind);
    dir.join(
        sibling
            .file_name()
            .expect("temp_sibling always names a file"),
    )
}

/// Write `bytes` to `path` atomically. `mode` applies to a new file; an existing file keeps its
/// mode. A symlink at `path` is replaced, never written through (callers that must write
/// through a symlinked settings file resolve it first).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path.parent().context("path has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let keep_mode = fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map(|m| m.permissions().mode() & 0o7777);
    let tmp = temp_sibling(path, "tmp");
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(keep_mode.or(mode).unwrap_or(0o644))
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if cfg!(debug_assertions) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::failpoint::hit(&format!("write-before-rename:{name}"));
        }
        fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsync a folder so a rename inside it survives a crash. Best effort: some file systems
/// refuse to sync folders and that must not fail a sync.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Create a private folder (0700) that must not exist yet.
pub fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Put `new` at `target` in one step, returning where the previous content went (to delete): the
/// folder `new` was in, so it is as much out of sight as `new` was. `target` may not exist. On
/// Linux the swap is a single `renameat2(RENAME_EXCHANGE)`, so a crash leaves either the old or
/// the new folder at `target`, never neither.
pub fn swap_into_place(new: &Path, target: &Path) -> Result<Option<PathBuf>> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::rename(new, target)
                .with_context(|| format!("cannot move into {}", target.display()))?;
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", target.display())),
        Ok(_) => {}
    }
    #[cfg(target_os = "linux")]
    {
        if exchange(new, target).is_ok() {
            // `new` now holds the old content.
            return Ok(Some(new.to_path_buf()));
        }
    }
    let old = temp_sibling(new, "old");
    fs::rename(target, &old).with_context(|| format!("cannot move {} aside", target.display()))?;
    if let Err(e) = fs::rename(new, target) {
        let _ = fs::rename(&old, target);
        return Err(e).with_context(|| format!("cannot move into {}", target.display()));
    }
    Ok(Some(old))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Remove a file, symlink or folder without following symlinks. Missing is fine.
pub fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
        Ok(m) if m.is_dir() => {
            if crate::failpoint::armed("remove-midway") {
                // As a kill while remove_dir_all is halfway would: some files already gone.
                remove_some_files(path);
                crate::failpoint::hit("remove-midway");
            }
            // remove_dir_all does not follow symlinks inside the tree.
            fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Debug builds, fail point `remove-midway`: delete the files directly in `dir` (not its
/// folders), as the first steps of `remove_dir_all` would.
fn remove_some_files(dir: &Path) {
    for item in fs::read_dir(dir).into_iter().flatten().flatten() {
        if item.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Remove leftovers of an interrupted run (`.kst-*` entries) from a destination folder.
pub fn clean_stale_temps(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for item in listing.flatten() {
        if item.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            tracing::info!(
                "removing leftover {} from an interrupted run",
                item.path().display()
            );
            let _ = remove_any(&item.path());
        }
    }
}

/// Remove temp files a crashed [`write_atomic`] of `target` left next to it. Only for files
/// whose writers are serialised (the lock, under the scope's OS lock).
pub fn clean_stale_temps_for(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!("{TEMP_PREFIX}tmp-{}-", name.to_string_lossy());
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for item in listing.flatten() {
        if item.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Set a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `write_atomic` replaces the folder entry (temp file, rename): a hard link to the old file
    /// keeps the old bytes. Writing in place would change both, and a crash halfway would leave
    /// a torn file.
    #[test]
    fn write_atomic_renames_a_new_file_over_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kasetto.lock");
        fs::write(&path, b"old\n").unwrap();
        fs::hard_link(&path, dir.path().join("witness")).unwrap();
        write_atomic(&path, b"new, longer\n", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new, longer\n");
        assert_eq!(fs::read(dir.path().join("witness")).unwrap(), b"old\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "temp file left: {names:?}");
    }
}
