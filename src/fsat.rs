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

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::statcache::StatData;

/// The flags a folder is opened with: only to look names up in it.
#[cfg(target_os = "linux")]
const SEARCH: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const SEARCH: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// How many folders one [`Folders`] keeps open: past it, all are closed before the next is
/// opened (a pack of thousands of folders must not take the process's descriptors).
const MAX_OPEN: usize = 64;

/// Opened folders under one root, for one run (shared between threads).
pub struct Folders {
    root: PathBuf,
    nofollow: bool,
    /// Folder (relative to the root, `""` for the root) → its descriptor, or None when it
    /// cannot be opened (missing, not a folder, a symlink with `nofollow`).
    open: Mutex<HashMap<String, Option<OwnedFd>>>,
}

/// A name as the C string a system call takes, on the stack (a name longer than any file
/// system allows is None).
fn c_name(name: &[u8], buf: &mut [u8; 256]) -> bool {
    if name.is_empty() || name.len() >= buf.len() || name.contains(&0) {
        return false;
    }
    buf[..name.len()].copy_from_slice(name);
    buf[name.len()] = 0;
    true
}

fn open_at(dir: RawFd, name: &[u8], nofollow: bool) -> Option<OwnedFd> {
    let mut buf = [0u8; 256];
    if !c_name(name, &mut buf) || name == b"." || name == b".." {
        return None;
    }
    let flags = SEARCH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    // SAFETY: `dir` is an open descriptor owned by the caller's map, `buf` a NUL-terminated
    // name; the returned descriptor, when valid, is owned by nothing else.
    let fd = unsafe { libc::openat(dir, buf.as_ptr().cast(), flags) };
    // SAFETY: a descriptor just returned by openat, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_at(dir: RawFd, name: &[u8]) -> Option<StatData> {
    let mut buf = [0u8; 256];
    if !c_name(name, &mut buf) {
        return None;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open descriptor, `buf` a NUL-terminated name, `st` room for a stat.
    let rc = unsafe {
        libc::fstatat(
            dir,
            buf.as_ptr().cast(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: fstatat filled it in, as it returned 0.
    let st = unsafe { st.assume_init() };
    Some(StatData::of_stat(&st))
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
        if let Some(fd) = open.get(folder) {
            return stat_at(fd.as_ref()?.as_raw_fd(), name.as_bytes());
        }
        if open.len() >= MAX_OPEN {
            // Nothing borrows a descriptor here: each is used only while the lock is held.
            open.clear();
        }
        let fd = self.open_folder(&mut open, folder);
        stat_at(fd?, name.as_bytes())
    }

    /// Open `folder` (and every folder above it not yet open), remembering each answer.
    fn open_folder(
        &self,
        open: &mut HashMap<String, Option<OwnedFd>>,
        folder: &str,
    ) -> Option<RawFd> {
        if let Some(fd) = open.get(folder) {
            return fd.as_ref().map(|f| f.as_raw_fd());
        }
        let fd = if folder.is_empty() {
            let path = CString::new(self.root.as_os_str().as_bytes()).ok();
            path.and_then(|p| {
                // SAFETY: a NUL-terminated path; the descriptor returned is owned by nothing else.
                let fd = unsafe { libc::open(p.as_ptr(), SEARCH) };
                // SAFETY: as above.
                (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            })
        } else {
            let (parent, name) = folder.rsplit_once('/').unwrap_or(("", folder));
            self.open_folder(open, parent)
                .and_then(|dir| open_at(dir, name.as_bytes(), self.nofollow))
        };
        let raw = fd.as_ref().map(|f| f.as_raw_fd());
        open.insert(folder.to_string(), fd);
        raw
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
