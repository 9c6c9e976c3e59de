//! Materialising a skill at a destination (SPEC 8), one skill at a time, atomically.
//!
//! A skill is written into a private staging folder on the destination's file system but outside
//! the skills folder agents read (see [`work_dir`]), then swapped into place in one rename; what
//! it replaces, and a skill being removed, is first renamed out of sight and only then deleted,
//! so a crash never leaves a half-written or half-deleted skill where an agent may load it.
//! Writing never follows a symlink: files are created with `O_EXCL` inside a folder we just
//! created, and symlinks are created last, so no path written during materialisation can
//! traverse a link of the skill's own.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::Odb;

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
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut repos: Vec<(&Path, Option<git2::Repository>)> = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = run_job(job, &mut repos);
                    *results[i].lock().expect("result lock") = Some(result);
                }
            });
        }
    });
    let mut parents: Vec<&Path> = jobs.iter().filter_map(|j| j.target.parent()).collect();
    parents.sort();
    parents.dedup();
    for p in parents {
        fsx::sync_dir(p);
    }
    results
        .into_iter()
        .map(|r| r.into_inner().expect("result lock").expect("every job ran"))
        .collect()
}

fn run_job<'a>(
    job: &Job<'a>,
    repos: &mut Vec<(&'a Path, Option<git2::Repository>)>,
) -> Result<Vec<String>> {
    crate::failpoint::hit("apply-item");
    crate::failpoint::fail("install")?;
    let Some(db) = job.db else {
        return swap_in(job.tree, job.target, job.root, None);
    };
    let at = match repos.iter().position(|(p, _)| *p == db) {
        Some(at) => at,
        None => {
            repos.push((db, crate::git::open_bare(db).ok()));
            repos.len() - 1
        }
    };
    let odb = repos[at].1.as_ref().and_then(|r| r.odb().ok());
    swap_in(job.tree, job.target, job.root, odb.as_ref())
}

/// Materialise `tree` in a staging folder in the work folder and swap it into place at
/// `target` (the old content lands in the work folder, out of sight, and is deleted there); the
/// caller makes the swap durable.
fn swap_in(tree: &Tree, target: &Path, root: &Path, objects: Objects) -> Result<Vec<String>> {
    let parent = target
        .parent()
        .context("destination has no parent folder")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let work = ensure_work_dir(parent, root)?;
    let staging = fsx::temp_in(&work, target, "stage");
    fsx::create_private_dir(&staging)?;
    let mut warnings = Vec::new();
    let result = materialise(tree, &staging, objects, &mut warnings)
        .and_then(|()| fsx::set_mode(&staging, 0o755))
        .and_then(|()| {
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

/// Write a tree's files into `dir` (which exists and is empty).
fn materialise(
    tree: &Tree,
    dir: &Path,
    objects: Objects,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut links = Vec::new();
    write_tree(tree, dir, "", objects, warnings, &mut links)?;
    // Symlinks last: nothing else is written after them, so no write can pass through one.
    for (path, target) in links {
        std::os::unix::fs::symlink(&target, &path)
            .with_context(|| format!("cannot create symlink {}", path.display()))?;
    }
    Ok(())
}

fn write_tree(
    tree: &Tree,
    dir: &Path,
    rel: &str,
    objects: Objects,
    warnings: &mut Vec<String>,
    links: &mut Vec<(std::path::PathBuf, String)>,
) -> Result<()> {
    for e in &tree.entries {
        // Names were checked when the tree was listed; joining a single safe component keeps
        // the path inside `dir`.
        let path = dir.join(&e.name);
        let rel_path = if rel.is_empty() {
            e.name.clone()
        } else {
            format!("{rel}/{}", e.name)
        };
        match &e.kind {
            EntryKind::Dir(sub) => {
                fs::create_dir(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                write_tree(sub, &path, &rel_path, objects, warnings, links)?;
            }
            EntryKind::File {
                executable, blob, ..
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                match blob {
                    BlobRef::Disk(src) => {
                        let mut input = OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(src)
                            .with_context(|| format!("cannot read {}", src.display()))?;
                        std::io::copy(&mut input, &mut out)
                            .with_context(|| format!("cannot copy {}", src.display()))?;
                    }
                    BlobRef::Git => {
                        let odb = objects.context("a git blob without an object database")?;
                        let obj = odb
                            .read(e.id)
                            .with_context(|| format!("cannot read blob {} ({rel_path})", e.id))?;
                        out.write_all(obj.data())
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
                crate::failpoint::hit("install-mid-write");
            }
            EntryKind::Symlink { target } => links.push((path, target.clone())),
            EntryKind::Gitlink => {
                warnings.push(format!(
                    "{rel_path} is a git submodule; submodules are not installed"
                ));
            }
        }
    }
    Ok(())
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
