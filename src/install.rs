//! Materialising a skill at a destination (SPEC 8), one skill at a time, atomically.
//!
//! A skill is written into a private staging folder next to its destination (same file system),
//! then swapped into place in one rename. Writing never follows a symlink: files are created
//! with `O_EXCL` inside a folder we just created, and symlinks are created last, so no path
//! written during materialisation can traverse a link of the skill's own.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use git2::Odb;

use crate::fsx;
use crate::tree::{BlobRef, EntryKind, Tree};

/// Where blob bytes come from: the pack's object database (git) or the disk (local).
pub type Objects<'a> = Option<&'a Odb<'a>>;

/// One skill to install: its tree, where, and the bare repository its blobs are read from
/// (None: the tree's files are on disk).
pub struct Job<'a> {
    pub tree: &'a Tree,
    pub target: &'a Path,
    pub db: Option<&'a Path>,
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
        return swap_in(job.tree, job.target, None);
    };
    let at = match repos.iter().position(|(p, _)| *p == db) {
        Some(at) => at,
        None => {
            repos.push((db, git2::Repository::open_bare(db).ok()));
            repos.len() - 1
        }
    };
    let odb = repos[at].1.as_ref().and_then(|r| r.odb().ok());
    swap_in(job.tree, job.target, odb.as_ref())
}

/// Materialise `tree` in a staging folder next to `target` and swap it into place; the caller
/// makes the swap durable.
fn swap_in(tree: &Tree, target: &Path, objects: Objects) -> Result<Vec<String>> {
    let parent = target
        .parent()
        .context("destination has no parent folder")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = fsx::temp_sibling(target, "stage");
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
/// symlinks.
pub fn remove(target: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    if !target.parent().is_some_and(|p| p.is_dir()) {
        bail!("{} has no parent folder", target.display());
    }
    fsx::remove_any(target)
}
