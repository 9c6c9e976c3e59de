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
    // The process id, asked of the kernel once (a system call each time otherwise).
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let unique = format!("{TEMP_PREFIX}{kind}-{name}-{pid}-{n}");
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

// ---------------------------------------------------------------------------------------------
// Reading untrusted input files (SPEC 13.7).

/// Size cap of a config file (`kasetto.yaml`, an `extends` parent, the XDG pointer file).
pub const CONFIG_CAP: u64 = 1 << 20;
/// Size cap of a lock file.
pub const LOCK_CAP: u64 = 64 << 20;
/// Size cap of an agent's settings file (MCP servers).
pub const SETTINGS_CAP: u64 = 16 << 20;

/// Why an input file was not read. The message never contains any of the file's content.
#[derive(Debug)]
pub enum ReadError {
    NotFound,
    /// A folder, FIFO, device or socket: reading it could block forever or never end.
    NotRegular(&'static str),
    /// Larger than the cap (bytes).
    TooBig(u64),
    /// Not valid UTF-8 text.
    NotUtf8,
    /// A symlink (or `..`) that leads out of the folder the file must stay in.
    Outside(PathBuf),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("it does not exist"),
            ReadError::NotRegular(kind) => write!(
                f,
                "it is {kind}, not a regular file; kst reads only regular files (a FIFO or a \
                 device could block or never end)"
            ),
            ReadError::TooBig(cap) => write!(
                f,
                "it is larger than the {} cap; a file that big is not one kst wrote or expects",
                human_size(*cap)
            ),
            ReadError::NotUtf8 => f.write_str("it is not UTF-8 text"),
            ReadError::Outside(root) => write!(
                f,
                "it resolves (through a symlink or `..`) to a file outside {}; kst reads only \
                 files inside it",
                root.display()
            ),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

fn human_size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n}-byte")
    }
}

fn kind_of(t: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read an input file (config, lock, settings file) as text, safely: only a regular file (after
/// following symlinks), at most `cap` bytes, never blocking. With `within`, the file (after
/// resolving every symlink and `..`) must lie inside that folder.
///
/// The file is checked with `stat` first, then opened with `O_NONBLOCK` (so a FIFO swapped in
/// between cannot block the open) and checked again with `fstat` on the opened descriptor; the
/// read is bounded (`take(cap + 1)`), so a file that grows while read cannot defeat the cap.
pub fn read_input(path: &Path, cap: u64, within: Option<&Path>) -> Result<String, ReadError> {
    let bytes = read_input_bytes(path, cap, within)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// [`read_input`], as bytes.
pub fn read_input_bytes(
    path: &Path,
    cap: u64,
    within: Option<&Path>,
) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Io(e),
    };
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    let open_path = match within {
        Some(root) => {
            let real = fs::canonicalize(path).map_err(io)?;
            let root_real = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            if !real.starts_with(&root_real) {
                return Err(ReadError::Outside(root.to_path_buf()));
            }
            // The resolved path has no symlink left: one swapped in now is not followed.
            flags |= libc::O_NOFOLLOW;
            real
        }
        None => path.to_path_buf(),
    };
    let meta = fs::metadata(&open_path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooBig(cap));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&open_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::NotRegular("a symlink"),
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(cap) as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooBig(cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = tmp.path().join("ok.yaml");
        fs::write(&ok, "a: 1\n").unwrap();
        assert_eq!(read_input(&ok, 16, None).unwrap(), "a: 1\n");
        assert!(matches!(
            read_input(&ok, 4, None),
            Err(ReadError::TooBig(4))
        ));
        assert!(matches!(
            read_input(&tmp.path().join("missing"), 16, None),
            Err(ReadError::NotFound)
        ));
        assert!(matches!(
            read_input(tmp.path(), 16, None),
            Err(ReadError::NotRegular("a folder"))
        ));
        assert!(matches!(
            read_input(Path::new("/dev/zero"), 16, None),
            Err(ReadError::NotRegular("a device"))
        ));
        // A FIFO with no writer: refused, not opened for a read that would wait forever.
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_input(&fifo, 16, None),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        fs::write(tmp.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_input(&tmp.path().join("bin"), 16, None),
            Err(ReadError::NotUtf8)
        ));
    }

    #[test]
    fn the_cap_holds_for_a_file_whose_size_lies() {
        // procfs files say they are empty and then yield more: the bounded read catches it.
        let maps = Path::new("/proc/self/maps");
        assert_eq!(fs::metadata(maps).unwrap().len(), 0, "the premise");
        assert!(matches!(
            read_input(maps, 64, None),
            Err(ReadError::TooBig(64))
        ));
    }

    #[test]
    fn within_refuses_symlinks_and_dot_dots_that_leave_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("project");
        fs::create_dir_all(project.join("sub")).unwrap();
        fs::write(tmp.path().join("secret"), "s\n").unwrap();
        fs::write(project.join("sub/in.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), project.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/in.yaml", project.join("in-link")).unwrap();
        let within = Some(project.as_path());
        assert!(matches!(
            read_input(&project.join("out"), 16, within),
            Err(ReadError::Outside(_))
        ));
        assert!(matches!(
            read_input(&project.join("sub/../../secret"), 16, within),
            Err(ReadError::Outside(_))
        ));
        assert_eq!(
            read_input(&project.join("in-link"), 16, within).unwrap(),
            "a: 1\n"
        );
        // Without confinement the same link is read (the user's own global files may link).
        assert_eq!(read_input(&project.join("out"), 16, None).unwrap(), "s\n");
    }
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
