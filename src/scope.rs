//! The scope a command works on (SPEC 2, 6, 9): its root, its skills folders, its lock, and the
//! OS file lock that keeps two syncs of one scope from running at once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::config::{Config, Scope};
use crate::error::{Error, Result};
use crate::pathsafe::normalise;
use crate::{agents, dirs, lock};

#[derive(Debug)]
pub struct ScopeCtx {
    pub scope: Scope,
    /// The project folder (the config's folder) or, globally, HOME.
    pub root: PathBuf,
    /// Where skills are installed, absolute, deduplicated (agents sharing a folder get one).
    pub folders: Vec<PathBuf>,
    /// Every skills folder kst may manage in this scope (see `plan::Inputs::manageable`).
    pub manageable: Vec<PathBuf>,
    pub lock_path: PathBuf,
}

impl ScopeCtx {
    pub fn new(config: &Config, override_scope: Option<Scope>) -> Result<ScopeCtx> {
        let scope = override_scope.unwrap_or(config.scope);
        let home = dirs::home()?;
        let global = scope == Scope::Global;
        let root = match scope {
            Scope::Project => config
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            Scope::Global => home.clone(),
        };
        let folder_of = |a: &agents::Agent| {
            let d = a.skills_dir(global, &home);
            if d.is_absolute() { d } else { root.join(d) }
        };
        // The project is untrusted input (a fresh clone may carry a hostile kasetto.yaml and
        // kasetto.lock): its `destination` must stay inside it, or a lock entry could name any
        // folder of the user's for kst to replace or delete.
        let destination = config.destination.as_ref().map(|d| normalise(d));
        if let (Scope::Project, Some(d)) = (scope, &destination)
            && !d.starts_with(normalise(&root))
        {
            return Err(Error::usage(format!(
                "{}: destination {} is outside the project {}; in the project scope skills are \
                     installed inside the project (use a path inside it, or --global)",
                config.label,
                d.display(),
                root.display()
            )));
        }
        // The global scope is the user's own HOME: a destination there must not be a place
        // that programs load code or settings from (SPEC 3 "Trust"), whoever wrote the config.
        if let (Scope::Global, Some(d)) = (scope, &destination) {
            crate::trust::check_global_destination(
                d,
                config.destination_at.as_deref().unwrap_or(&config.label),
                &home,
            )?;
        }
        let mut folders: Vec<PathBuf> = match &destination {
            Some(d) => vec![d.clone()],
            None => config.agents.iter().map(|a| folder_of(a)).collect(),
        };
        dedup(&mut folders);
        let mut manageable: Vec<PathBuf> = agents::AGENTS
            .iter()
            .map(folder_of)
            .chain(destination.clone())
            .collect();
        dedup(&mut manageable);
        let lock_path = lock::path_for(scope, &config.path)?;
        Ok(ScopeCtx {
            scope,
            root,
            folders,
            manageable,
            lock_path,
        })
    }

    /// In the project scope, the first folder between the project root and `target`'s parent
    /// that is a symlink. The project is untrusted input (it may be a fresh clone), so kst does
    /// not follow links in it; the global scope's folders belong to the user, who may well
    /// link `~/.claude` to a dotfiles repository.
    pub fn symlinked_parent(&self, target: &Path) -> Option<PathBuf> {
        if self.scope != Scope::Project {
            return None;
        }
        symlinked_below(&self.root, target)
    }

    pub fn name(&self) -> &'static str {
        match self.scope {
            Scope::Global => "global",
            Scope::Project => "project",
        }
    }

    /// Take the scope's OS lock, waiting (and saying so) if another kst holds it. The lock is
    /// released when the returned file is dropped or the process ends, even by a crash.
    pub fn exclusive(&self, on_wait: impl FnOnce(&str)) -> Result<File> {
        // Through the cache, so the root is created 0700 with its CACHEDIR.TAG.
        let guard_dir = crate::git::Cache::open()
            .map_err(Error::Failed)?
            .root()
            .join("locks");
        std::fs::create_dir_all(&guard_dir).map_err(|e| {
            Error::Failed(anyhow::anyhow!(
                "cannot create {}: {e}",
                guard_dir.display()
            ))
        })?;
        let key = crate::oid::hash(
            git2::ObjectType::Blob,
            self.lock_path.to_string_lossy().as_bytes(),
        )
        .map_err(|e| Error::Failed(e.into()))?;
        let path = guard_dir.join(format!("scope-{}.lock", &key.to_string()[..16]));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Failed(anyhow::anyhow!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait(&format!(
                    "waiting for another kst to finish with {}",
                    self.lock_path.display()
                ));
                file.lock().map_err(|e| {
                    Error::Failed(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
                })?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Failed(anyhow::anyhow!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        crate::failpoint::hold("scope-locked");
        Ok(file)
    }
}

fn dedup(v: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
}

/// The first folder between `root` (excluded) and `target`'s parent that is a symlink, if any
/// (None when `target` is not under `root` or a folder on the way does not exist yet).
pub fn symlinked_below(root: &Path, target: &Path) -> Option<PathBuf> {
    let rel = target.parent()?.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
