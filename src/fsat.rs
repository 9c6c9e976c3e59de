//! `lstat` relative to opened folders: what a warm no-op checks for each of thousands of files
//! (SPEC 14), at the cost of one `fstatat` per file instead of a walk of the whole absolute
//! path (and, inside a project, of an `lstat` of every folder on the way).
//!
//! A [`Folders`] opens its root once, then each folder below it once (`openat` of one name
//! from its parent's descriptor, `O_DIRECTORY`), and looks a file up by its last name in its
//! folder's descriptor (`fstatat(…, AT_SYMLINK_NOFOLLOW)`). With `nofollow` (a project: a
//! folder on the way may have been swapped for a symlink by a cloned project), every folder
//! below the root is opened with `O_NOFOLLOW`: a symlinked folder fails to open, so no file is
//! ever looked up through one — the rule of [`crate::scope::symlinked_below`], held by
//! construction rather than checked beside the lookup. The root itself is opened as a path is
//! resolved (it is where the scope is, whatever links lead there).
//!
//! It only reads stat data, never contents, and never writes: an answer it cannot give (a
//! missing folder, a symlinked one, a name too long) is None, and the caller takes its full
//! path, which reports what is wrong.
//!
//! [`Dir`] is the opened folder underneath, also what the tree walks of `tree.rs` use (a
//! folder's own stat data, its entries' `lstat`s and link targets, its names) and what an
//! install creates a skill's folders and files in (`install.rs`: `mkdirat`, `openat` with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`): one place where kst's descriptor-relative system calls are
//! made.

// `libc::stat`'s field types and the `S_IF*` constants' differ between Linux and macOS: the
// casts are what keeps this portable.
#![allow(clippy::unnecessary_cast)]

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::statcache::StatData;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// The kind of a file from its `st_mode`.
pub fn kind(mode: u32) -> Kind {
    match mode & libc::S_IFMT as u32 {
        m if m == libc::S_IFREG as u32 => Kind::File,
        m if m == libc::S_IFDIR as u32 => Kind::Dir,
        m if m == libc::S_IFLNK as u32 => Kind::Link,
        _ => Kind::Other,
    }
}

pub struct Dir(OwnedFd);

/// `name` NUL-terminated, on the stack when it fits (every name a folder can hold does).
fn with_c<T>(name: &[u8], f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    let mut buf = [0u8; 256];
    if name.len() < buf.len() && !name.contains(&0) {
        buf[..name.len()].copy_from_slice(name);
        let c = CStr::from_bytes_until_nul(&buf).expect("NUL-terminated");
        return f(c);
    }
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a file name"))?;
    f(&c)
}

/// A name of one entry of a folder: not empty, `.`, `..` or anything with a `/`.
fn single_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single name",
        ));
    }
    Ok(())
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A folder is opened only to be looked into (`fstat`, `fstatat`, `openat`): on Linux as
/// a path (`O_PATH`: no open file to set up); its names are read through a second, real
/// open of `.` ([`Dir::names`]), which only a folder whose listing is not recorded needs.
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

impl Dir {
    /// Open the folder at `path`; a symlink there is followed only when `follow`.
    pub fn open(path: &Path, follow: bool) -> io::Result<Dir> {
        let flags = DIR_FLAGS | if follow { 0 } else { libc::O_NOFOLLOW };
        with_c(path.as_os_str().as_bytes(), |c| {
            // SAFETY: a valid NUL-terminated path; the descriptor returned is owned here.
            let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
            // SAFETY: `fd` was just opened and is owned by nothing else.
            Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
        })
    }

    /// The sub-folder `name` (one name: never `.` or `..`); a symlink there is followed only
    /// when `follow`.
    pub fn open_dir(&self, name: &str, follow: bool) -> io::Result<Dir> {
        single_name(name)?;
        let flags = DIR_FLAGS | if follow { 0 } else { libc::O_NOFOLLOW };
        with_c(name.as_bytes(), |c| {
            // SAFETY: a valid descriptor and NUL-terminated name.
            let fd = check(unsafe { libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags) })?;
            // SAFETY: `fd` was just opened and is owned by nothing else.
            Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
        })
    }

    /// Create the folder `name` here (it must not exist) and open it, never through a
    /// symlink.
    pub fn create_dir(&self, name: &str) -> io::Result<Dir> {
        single_name(name)?;
        with_c(name.as_bytes(), |c| {
            // SAFETY: a valid descriptor and NUL-terminated name; the mode is masked by the
            // umask, as `fs::create_dir`'s is.
            check(unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), 0o777) })
        })?;
        self.open_dir(name, false)
    }

    /// Create the file `name` here for writing: it must not exist (`O_EXCL`, which also
    /// refuses a symlink there), and is never reached through one.
    pub fn create_file(&self, name: &str, mode: libc::mode_t) -> io::Result<File> {
        single_name(name)?;
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        with_c(name.as_bytes(), |c| {
            // SAFETY: a valid descriptor and NUL-terminated name.
            let fd = check(unsafe {
                libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint)
            })?;
            // SAFETY: `fd` was just opened and is owned by nothing else.
            Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
        })
    }

    /// This folder's own stat data.
    pub fn stat(&self) -> io::Result<StatData> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid descriptor and a buffer of the right type.
        check(unsafe { libc::fstat(self.0.as_raw_fd(), st.as_mut_ptr()) })?;
        // SAFETY: fstat succeeded, so it filled the buffer.
        Ok(StatData::of_stat(&unsafe { st.assume_init() }))
    }

    /// `lstat` of the entry `name`.
    pub fn stat_at(&self, name: &str) -> io::Result<StatData> {
        self.stat_name(name.as_bytes(), false)
    }

    /// The stat data of the entry `name` (any bytes but `/` and NUL); a symlink there is
    /// followed only when `follow` (`stat`, else `lstat`).
    pub fn stat_name(&self, name: &[u8], follow: bool) -> io::Result<StatData> {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        with_c(name, |c| {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: a valid descriptor, NUL-terminated name and buffer of the right type.
            check(unsafe {
                libc::fstatat(self.0.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), flags)
            })?;
            // SAFETY: fstatat succeeded, so it filled the buffer.
            Ok(StatData::of_stat(&unsafe { st.assume_init() }))
        })
    }

    /// The target of the symlink `name`, as bytes.
    pub fn read_link(&self, name: &str) -> io::Result<Vec<u8>> {
        with_c(name.as_bytes(), |c| {
            let mut buf = vec![0u8; 256];
            loop {
                // SAFETY: a valid descriptor, NUL-terminated name and a buffer of its length.
                let n = unsafe {
                    libc::readlinkat(
                        self.0.as_raw_fd(),
                        c.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = n as usize;
                if n < buf.len() {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // Possibly cut short: try again with more room.
                buf.resize(buf.len() * 2, 0);
            }
        })
    }

    /// Every entry's name but `.` and `..`, with its kind when the listing gives it.
    pub fn names(&self) -> io::Result<Vec<(Vec<u8>, Option<Kind>)>> {
        // SAFETY: a valid descriptor and a NUL-terminated name; the new descriptor is
        // handed to fdopendir, which owns it from then on (closedir closes it).
        let fd = check(unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` is a valid descriptor of a folder, owned by nothing else.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `fd` is still ours to close.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let mut out = Vec::new();
        let result = loop {
            // readdir signals an error only through errno.
            errno_clear();
            // SAFETY: a valid stream; the entry is read before the next call.
            let ent = unsafe { libc::readdir(stream) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                break match e.raw_os_error() {
                    Some(0) | None => Ok(()),
                    _ => Err(e),
                };
            }
            // SAFETY: readdir returned a valid entry with a NUL-terminated name.
            let (name, d_type) = unsafe {
                (
                    CStr::from_ptr((*ent).d_name.as_ptr()).to_bytes(),
                    (*ent).d_type,
                )
            };
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_REG => Some(Kind::File),
                libc::DT_DIR => Some(Kind::Dir),
                libc::DT_LNK => Some(Kind::Link),
                libc::DT_UNKNOWN => None,
                _ => Some(Kind::Other),
            };
            out.push((name.to_vec(), kind));
        };
        // SAFETY: a valid stream, closed once (this closes its descriptor).
        unsafe { libc::closedir(stream) };
        result.map(|()| out)
    }
}

fn errno_clear() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the calling thread's errno.
    unsafe {
        *libc::__errno_location() = 0
    };
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: the calling thread's errno.
    unsafe {
        *libc::__error() = 0
    };
}

/// How many folders one [`Folders`] keeps open: past it, all are closed before the next is
/// opened (a pack of thousands of folders must not take the process's descriptors).
const MAX_OPEN: usize = 64;

/// Opened folders under one root, for one run (shared between threads).
pub struct Folders {
    root: PathBuf,
    nofollow: bool,
    /// Folder (relative to the root, `""` for the root) → its descriptor, or None when it
    /// cannot be opened (missing, not a folder, a symlink with `nofollow`).
    open: Mutex<HashMap<String, Option<Dir>>>,
}

impl Folders {
    /// `nofollow`: no folder below `root` may be a symlink (a project).
    pub fn new(root: &Path, nofollow: bool) -> Folders {
        Folders {
            root: root.to_path_buf(),
            nofollow,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The `lstat` data of `rel` (a relative path, `/`-separated, no `.` or `..`), looked up in
    /// its opened folder. None: it is missing, or cannot be looked up this way (see the module
    /// doc) — take the full path.
    pub fn lstat(&self, rel: &str) -> Option<StatData> {
        let (folder, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut open = self.open.lock().expect("folders lock");
        if name.is_empty() {
            return None;
        }
        if !open.contains_key(folder) && open.len() >= MAX_OPEN {
            // Nothing borrows a descriptor here: each is used only while the lock is held.
            open.clear();
        }
        self.open_folder(&mut open, folder)?;
        open.get(folder)?.as_ref()?.stat_at(name).ok()
    }

    /// Open `folder` (and every folder above it not yet open), remembering each answer; None
    /// when it cannot be opened.
    fn open_folder(&self, open: &mut HashMap<String, Option<Dir>>, folder: &str) -> Option<()> {
        if let Some(dir) = open.get(folder) {
            return dir.as_ref().map(|_| ());
        }
        let dir = if folder.is_empty() {
            Dir::open(&self.root, true).ok()
        } else {
            let (parent, name) = folder.rsplit_once('/').unwrap_or(("", folder));
            self.open_folder(open, parent);
            open.get(parent)
                .and_then(Option::as_ref)
                .and_then(|p| p.open_dir(name, !self.nofollow).ok())
        };
        let found = dir.as_ref().map(|_| ());
        open.insert(folder.to_string(), dir);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_stat_data_are_those_of_lstat() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        fs::write(tmp.path().join("a/b/f.md"), "x").unwrap();
        fs::write(tmp.path().join("top.md"), "y").unwrap();
        std::os::unix::fs::symlink("f.md", tmp.path().join("a/b/link")).unwrap();
        let f = Folders::new(tmp.path(), true);
        for rel in ["a/b/f.md", "top.md", "a/b/link", "a"] {
            let want = StatData::of(&fs::symlink_metadata(tmp.path().join(rel)).unwrap());
            assert_eq!(f.lstat(rel), Some(want), "{rel}");
        }
        assert_eq!(f.lstat("a/b/missing"), None);
        assert_eq!(f.lstat("a/missing/f.md"), None);
        assert_eq!(f.lstat("a/../top.md"), None);
    }

    #[test]
    fn many_folders_are_looked_up_with_a_bounded_number_open() {
        let tmp = tempfile::tempdir().unwrap();
        let n = MAX_OPEN * 3;
        for i in 0..n {
            fs::create_dir_all(tmp.path().join(format!("d/{i}"))).unwrap();
            fs::write(tmp.path().join(format!("d/{i}/f")), "x").unwrap();
        }
        let f = Folders::new(tmp.path(), true);
        for round in 0..2 {
            for i in 0..n {
                let rel = format!("d/{i}/f");
                let want = StatData::of(&fs::symlink_metadata(tmp.path().join(&rel)).unwrap());
                assert_eq!(f.lstat(&rel), Some(want), "{rel}, round {round}");
                assert!(f.open.lock().unwrap().len() <= MAX_OPEN + 2);
            }
        }
    }

    #[test]
    fn a_symlinked_folder_is_not_looked_through_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("real/b")).unwrap();
        fs::write(tmp.path().join("real/b/f.md"), "x").unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("a")).unwrap();
        std::os::unix::fs::symlink("b", tmp.path().join("real/c")).unwrap();
        let strict = Folders::new(tmp.path(), true);
        assert_eq!(strict.lstat("a/b/f.md"), None);
        assert_eq!(strict.lstat("real/c/f.md"), None);
        assert!(strict.lstat("real/b/f.md").is_some());
        let follow = Folders::new(tmp.path(), false);
        let want = StatData::of(&fs::metadata(tmp.path().join("real/b/f.md")).unwrap());
        assert_eq!(follow.lstat("a/b/f.md"), Some(want));
        assert_eq!(follow.lstat("real/c/f.md"), Some(want));
    }
}
