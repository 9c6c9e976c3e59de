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

/// Install `tree` at `target`, replacing whatever is there (the caller checked it is ours).
/// Returns warnings (skipped gitlinks).
pub fn install(tree: &Tree, target: &Path, objects: Objects) -> Result<Vec<String>> {
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
            fsx::sync_dir(parent);
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
