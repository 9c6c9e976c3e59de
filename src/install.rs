//! Materialising a skill at a destination (SPEC 8), one skill at a time, atomically.
//!
//! A skill is written into a private staging folder on the destination's file system but outside
//! the skills folder agents read (see [`work_dir`]), then swapped into place in one rename; what
//! it replaces, and a skill being removed, is first renamed out of sight and only then deleted,
//! so a crash never leaves a half-written or half-deleted skill where an agent may load it.
//! Writing never follows a symlink: files are created with `O_EXCL` inside a folder we just
//! created, and symlinks are created last, so no path written during materialisation can
//! traverse a link of the skill's own.

use std::fs::File;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::Odb;

use crate::fsat;
use crate::fsx;
use crate::tree::{BlobRef, EntryKind, Tree};

/// Where blob bytes come from: the pack's object database (git) or the disk (local).
pub type Objects<'a> = Option<&'a Odb<'a>>;

/// One skill to install: its tree, where, the scope's root (see [`work_dir`]), and the bare
/// repository its blobs are read from (None: the tree's files are on disk).
pub struct Job<'a> {
    pub tree: &'a Tree,
    pub target: &'a Path,
    pub root: &'a Path,
    pub db: Option<&'a Path>,
}

/// Name of the work folder inside a skills folder, used only when its parent cannot hold one.
const WORK_INSIDE: &str = ".kst-work";

/// The hidden folder where staging folders and trash for the skills folder `folder` live: next
/// to it in its parent (`.claude/.kst-work-skills` for `.claude/skills`), on the same file system
/// so a rename moves a whole skill in or out in one step, and outside the folder agents load
/// skills from. When the parent is not inside the scope's `root` (a `destination:` that is the
/// project root or HOME itself) or is on another file system (the skills folder is a mount point
/// or a symlink to another disk), it is `.kst-work` inside the skills folder instead: a staging
/// folder there is two levels down, where no agent looks for a `SKILL.md`. The folder is ours:
/// every run empties it before writing (see [`clean_work_dirs`]) and removes it when empty.
pub fn work_dir(folder: &Path, root: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let inside = folder.join(WORK_INSIDE);
    let (Some(beside), Some(parent)) = (beside(folder, root), folder.parent()) else {
        return inside;
    };
    let same_fs = match (fs::metadata(parent), fs::metadata(folder)) {
        (Ok(p), Ok(f)) => p.dev() == f.dev(),
        // The skills folder does not exist yet: it will be created in `parent`.
        (Ok(_), Err(_)) => true,
        _ => false,
    };
    if same_fs { beside } else { inside }
}

/// `<parent>/.kst-work-<name>` for the skills folder `<parent>/<name>`, if `parent` is inside
/// the scope's `root`.
fn beside(folder: &Path, root: &Path) -> Option<PathBuf> {
    let (parent, name) = (folder.parent()?, folder.file_name()?);
    let norm = crate::pathsafe::normalise;
    norm(parent).starts_with(norm(root)).then(|| {
        parent.join(format!(
            "{}work-{}",
            fsx::TEMP_PREFIX,
            name.to_string_lossy()
        ))
    })
}

/// Remove what an interrupted run left in the work folders of `folder` (half-written staging
/// folders, half-deleted trash) and in `folder` itself (`.kst-*` entries: the `.kst-work`
/// fallback, and staging folders of older versions). Called under the scope's lock, before
/// anything is written. Never follows a symlink: a link planted at a work folder's path is
/// removed, not its target.
pub fn clean_work_dirs(folder: &Path, root: &Path) {
    fsx::clean_stale_temps(folder);
    if let Some(beside) = beside(folder, root)
        && fs::symlink_metadata(&beside).is_ok()
    {
        tracing::info!(
            "removing leftover {} from an interrupted run",
            beside.display()
        );
        let _ = fsx::remove_any(&beside);
    }
}

/// Remove `folder`'s work folders if they are empty (the end of a run).
pub fn drop_work_dir(folder: &Path, root: &Path) {
    if let Some(beside) = beside(folder, root) {
        let _ = fs::remove_dir(beside);
    }
    let _ = fs::remove_dir(folder.join(WORK_INSIDE));
}

/// The work folder of the skills folder `folder`, created private if missing: the one
/// [`work_dir`] names, or `.kst-work` inside `folder` when that cannot be created (a parent
/// kst may not write to). An existing one must be a real folder, never a symlink.
fn ensure_work_dir(folder: &Path, root: &Path) -> Result<PathBuf> {
    let preferred = work_dir(folder, root);
    let first = match crate::failpoint::fail("work-dir").and_then(|()| create_work_dir(&preferred))
    {
        Ok(()) => return Ok(preferred),
        Err(e) => e,
    };
    let inside = folder.join(WORK_INSIDE);
    if preferred != inside && create_work_dir(&inside).is_ok() {
        return Ok(inside);
    }
    Err(first)
}

fn create_work_dir(work: &Path) -> Result<()> {
    match fsx::create_private_dir(work) {
        Ok(()) => Ok(()),
        Err(e) => match fs::symlink_metadata(work) {
            Ok(m) if m.file_type().is_dir() => Ok(()),
            Ok(_) => bail!(
                "{} is not a folder; kst keeps its staging there (remove it)",
                work.display()
            ),
            Err(_) => Err(e),
        },
    }
}

/// Install every job's tree at its target, replacing whatever is there (the caller checked it
/// is ours); each result holds the job's warnings (skipped gitlinks). On all cores: each job
/// has its own staging folder and swap, and the work is inflating blobs and creating files, so
/// skills install independently. libgit2 handles
/// are not shared between threads: each worker opens its own on the repositories it reads.
/// The folders swapped into are synced once each at the end, not once per skill. Results are
/// in job order.
pub fn install_all(jobs: &[Job]) -> Vec<Result<Vec<String>>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Vec<String>>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    // At least a few workers even on few cores: a file system also waits.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(4, 8)
        .min(jobs.len());
    // Each skills folder and its work folder are made (or checked) once, not once per skill.
    let mut parents: Vec<(&Path, &Path)> = jobs
        .iter()
        .filter_map(|j| Some((j.target.parent()?, j.root)))
        .collect();
    parents.sort();
    parents.dedup();
    let works: Vec<(&Path, &Path, Result<PathBuf, String>)> = parents
        .iter()
        .map(|&(parent, root)| {
            let work = fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))
                .and_then(|()| ensure_work_dir(parent, root))
                .map_err(|e| format!("{e:#}"));
            (parent, root, work)
        })
        .collect();
    let work_of = |job: &Job| -> Result<&Path> {
        let parent = job
            .target
            .parent()
            .context("destination has no parent folder")?;
        let (.., work) = works
            .iter()
            .find(|(p, r, _)| *p == parent && *r == job.root)
            .expect("every job's parent was prepared");
        work.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut repos: Vec<(&Path, Option<git2::Repository>)> = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = work_of(job).and_then(|work| run_job(job, work, &mut repos));
                    *results[i].lock().expect("result lock") = Some(result);
                }
            });
        }
    });
    let mut synced: Vec<&Path> = parents.iter().map(|&(p, _)| p).collect();
    synced.dedup();
    for p in synced {
        fsx::sync_dir(p);
    }
    results
        .into_iter()
        .map(|r| r.into_inner().expect("result lock").expect("every job ran"))
        .collect()
}

fn run_job<'a>(
    job: &Job<'a>,
    work: &Path,
    repos: &mut Vec<(&'a Path, Option<git2::Repository>)>,
) -> Result<Vec<String>> {
    crate::failpoint::hit("apply-item");
    crate::failpoint::fail("install")?;
    let Some(db) = job.db else {
        return swap_in(job.tree, job.target, work, None);
    };
    let at = match repos.iter().position(|(p, _)| *p == db) {
        Some(at) => at,
        None => {
            repos.push((db, crate::git::open_bare(db).ok()));
            repos.len() - 1
        }
    };
    let odb = repos[at].1.as_ref().and_then(|r| r.odb().ok());
    swap_in(job.tree, job.target, work, odb.as_ref())
}

/// Materialise `tree` in a staging folder in the work folder `work` (made by the caller, see
/// [`ensure_work_dir`]) and swap it into place at `target` (the old content lands in the work
/// folder, out of sight, and is deleted there); the caller makes the swap durable.
fn swap_in(tree: &Tree, target: &Path, work: &Path, objects: Objects) -> Result<Vec<String>> {
    let staging = fsx::temp_in(work, target, "stage");
    fsx::create_private_dir(&staging)?;
    let mut warnings = Vec::new();
    let result = materialise(tree, &staging, objects, &mut warnings).and_then(|()| {
        crate::failpoint::hit("install-before-swap");
        fsx::swap_into_place(&staging, target)
    });
    match result {
        Ok(old) => {
            crate::failpoint::hit("install-after-swap");
            if let Some(old) = old {
                fsx::remove_any(&old)?;
            }
            Ok(warnings)
        }
        Err(e) => {
            let _ = fsx::remove_any(&staging);
            Err(e)
        }
    }
}

/// Write a tree's files into `dir` (which exists, is empty and is private), then open it to
/// everyone (0755) as the last step before the swap. Every file and folder is created relative
/// to its opened parent folder (`openat`/`mkdirat`: no path walk per file), never following a
/// symlink (`O_NOFOLLOW`, `O_EXCL`); symlinks come last, when nothing more is written.
fn materialise(
    tree: &Tree,
    dir: &Path,
    objects: Objects,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut links = Vec::new();
    let top =
        fsat::Dir::open(dir, false).with_context(|| format!("cannot open {}", dir.display()))?;
    write_tree(tree, &top, dir, "", objects, warnings, &mut links)?;
    // Symlinks last: nothing else is written after them, so no write can pass through one.
    for (path, target) in links {
        std::os::unix::fs::symlink(&target, &path)
            .with_context(|| format!("cannot create symlink {}", path.display()))?;
    }
    fsx::set_mode(dir, 0o755)
}

fn write_tree(
    tree: &Tree,
    fd: &fsat::Dir,
    dir: &Path,
    rel: &str,
    objects: Objects,
    warnings: &mut Vec<String>,
    links: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<()> {
    for e in &tree.entries {
        // Names were checked when the tree was listed: each is a single safe component, so
        // creating it in `fd` stays inside the staging folder. Its path is built for errors
        // and symlinks only.
        let path = || dir.join(&e.name);
        let rel_path = || {
            if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            }
        };
        match &e.kind {
            EntryKind::Dir(sub) => {
                let sub_fd = fd
                    .create_dir(&e.name)
                    .with_context(|| format!("cannot create {}", path().display()))?;
                write_tree(sub, &sub_fd, &path(), &rel_path(), objects, warnings, links)?;
            }
            EntryKind::File {
                executable, blob, ..
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut out = fd
                    .create_file(&e.name, mode)
                    .with_context(|| format!("cannot create {}", path().display()))?;
                match blob {
                    BlobRef::Disk(src) => {
                        let input = OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(src)
                            .with_context(|| format!("cannot read {}", src.display()))?;
                        copy(&input, &out)
                            .with_context(|| format!("cannot copy {}", src.display()))?;
                    }
                    BlobRef::Git => {
                        let odb = objects.context("a git blob without an object database")?;
                        let obj = odb.read(e.id).with_context(|| {
                            format!("cannot read blob {} ({})", e.id, rel_path())
                        })?;
                        out.write_all(obj.data())
                            .with_context(|| format!("cannot write {}", path().display()))?;
                    }
                }
                crate::failpoint::hit("install-mid-write");
            }
            EntryKind::Symlink { target } => links.push((path(), target.clone())),
            EntryKind::Gitlink => {
                warnings.push(format!(
                    "{} is a git submodule; submodules are not installed",
                    rel_path()
                ));
            }
        }
    }
    Ok(())
}

/// Copy the rest of `input` to `out`, to its end: in the kernel where it can
/// (`copy_file_range`, what `cp` does), without the two `fstat`s `std::io::copy` makes
/// first to learn what kinds of files it was given (both are regular files here: the
/// output was just created, the input listed as one and opened without following a link).
fn copy(input: &File, out: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    loop {
        // SAFETY: two open descriptors; null offsets use and move the files' own.
        let n = unsafe {
            libc::copy_file_range(
                input.as_raw_fd(),
                std::ptr::null_mut(),
                out.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
                0,
            )
        };
        match n {
            0 => return Ok(()),
            n if n > 0 => continue,
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Not supported here (an old kernel, another file system for each,
                    // a special file system): copy through memory from where it stopped.
                    Some(
                        libc::ENOSYS | libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM,
                    ) => break,
                    _ => return Err(e),
                }
            }
        }
    }
    io::copy(&mut &*input, &mut &*out).map(|_| ())
}

/// Remove an installed skill folder (or whatever now stands at its path) without following
/// symlinks: renamed into the work folder first (one step, out of sight), deleted there, so a
/// crash halfway through the deletion leaves no half-deleted skill for an agent to load.
pub fn remove(target: &Path, root: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    let Some(parent) = target.parent().filter(|p| p.is_dir()) else {
        bail!("{} has no parent folder", target.display());
    };
    let work = ensure_work_dir(parent, root)?;
    let trash = fsx::temp_in(&work, target, "trash");
    fs::rename(target, &trash)
        .with_context(|| format!("cannot move {} out of sight", target.display()))?;
    fsx::sync_dir(parent);
    fsx::remove_any(&trash)
}

#[cfg(test)]
mod tests {
    use super::copy;
    use crate::fsat::Dir;

    #[test]
    fn folders_are_opened_and_files_created_without_following_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let (stage, outside) = (tmp.path().join("stage"), tmp.path().join("outside"));
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("f"), "theirs").unwrap();
        std::os::unix::fs::symlink(&outside, stage.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), stage.join("file")).unwrap();
        let top = Dir::open(&stage, false).unwrap();
        assert!(top.open_dir("dir", false).is_err());
        assert!(Dir::open(&stage.join("dir"), false).is_err());
        assert!(top.create_dir("dir").is_err());
        assert!(top.create_file("file", 0o644).is_err());
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"theirs");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn copy_takes_a_file_to_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..3 << 20)
            .map(|i: u32| (i * 7 + i / 4096) as u8)
            .collect();
        std::fs::write(tmp.path().join("in"), &bytes).unwrap();
        let top = Dir::open(tmp.path(), false).unwrap();
        let out = top.create_file("out", 0o600).unwrap();
        let input = std::fs::File::open(tmp.path().join("in")).unwrap();
        copy(&input, &out).unwrap();
        drop(out);
        assert_eq!(std::fs::read(tmp.path().join("out")).unwrap(), bytes);
    }
}
