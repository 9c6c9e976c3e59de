//! The cache (SPEC 5).
//!
//! Layout, under the root (`$KASETTO_CACHE_DIR`, else `$XDG_CACHE_HOME/kasetto`, else
//! `~/.cache/kasetto`), created `0700`:
//!
//! ```text
//! CACHEDIR.TAG                     marks the folder as a cache for backup tools
//! git/db/<name>-<hash16>/          one bare repository per canonical URL
//! git/db/<name>-<hash16>.lock      OS lock held while that repository is fetched into
//! git/db/<name>-<hash16>.corrupt-* a repository moved aside after failing to open
//! locks/scope-<hash16>.lock        one sync at a time per scope
//! locks/cache.lock                 shared by every run using the cache; `kst cache prune|clear`
//!                                  hold it exclusively, so they never pull a repository from
//!                                  under a running sync
//! stat/<hash16>                    the stat cache of one skills folder (statcache.rs)
//! ```
//!
//! `<hash16>` is the first 16 hex digits of the SHA-1 of the canonical URL, so the folder name
//! is stable and holds no credential (canonical URLs have no userinfo). Repositories are opened
//! by exact path, never by discovery, and have no named remotes: fetches use anonymous remotes,
//! so no URL is written into their config. Git objects are content-addressed: a commit used by
//! many configs and projects is stored once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::Repository;

use crate::dirs;
use crate::fsx;
use crate::source::CanonicalUrl;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by kst (Kasetto).\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// `locks/cache.lock`, held shared while this handle (or a clone) lives, or exclusively by
    /// [`Cache::open_exclusive`]. `None` only if the lock file cannot be created (a read-only
    /// cache), which leaves prune and clear nothing to guard against.
    _guard: Option<std::sync::Arc<File>>,
}

impl Cache {
    /// Open (creating if needed) the cache root, holding the cache lock shared: `kst cache
    /// prune|clear` wait until this run is done with the cache.
    pub fn open() -> Result<Cache> {
        let root = dirs::cache_root().map_err(|e| anyhow::anyhow!("{e}"))?;
        Cache::open_at(root)
    }

    /// Open the cache holding the cache lock exclusively: no other kst uses the cache until
    /// the handle is dropped. `on_wait` is told when another run holds it (kst waits).
    pub fn open_exclusive(on_wait: impl FnOnce(&str)) -> Result<Cache> {
        let root = dirs::cache_root().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut cache = Cache::create(root)?;
        let file = cache.guard_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait(&format!(
                    "waiting for other kst runs to finish with the cache {}",
                    cache.root.display()
                ));
                file.lock()
                    .with_context(|| format!("cannot lock the cache {}", cache.root.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot lock the cache {}", cache.root.display())));
            }
        }
        cache._guard = Some(std::sync::Arc::new(file));
        Ok(cache)
    }

    fn guard_file(&self) -> Result<File> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("cache.lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    pub fn open_at(root: PathBuf) -> Result<Cache> {
        let mut cache = Cache::create(root)?;
        // Without a lock file (a read-only cache) there is nothing to share: carry on.
        if let Ok(file) = cache.guard_file() {
            if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared() {
                tracing::warn!(
                    "waiting for `kst cache prune` or `kst cache clear` to finish with the cache {}",
                    cache.root.display()
                );
            }
            file.lock_shared().with_context(|| {
                format!("cannot lock the cache {} (shared)", cache.root.display())
            })?;
            cache._guard = Some(std::sync::Arc::new(file));
        }
        Ok(cache)
    }

    /// The root, created `0700` with its `CACHEDIR.TAG`; no lock taken.
    fn create(root: PathBuf) -> Result<Cache> {
        if !root.exists() {
            if let Some(parent) = root.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            match fsx::create_private_dir(&root) {
                Ok(()) => {}
                // Another process created it first: fine.
                Err(_) if root.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            fsx::write_atomic(&tag, CACHEDIR_TAG.as_bytes(), Some(0o644))?;
        }
        Ok(Cache { root, _guard: None })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database of a remote (not opened).
    pub fn database(&self, url: &CanonicalUrl) -> GitDatabase {
        let key = crate::oid::hash(git2::ObjectType::Blob, url.as_str().as_bytes())
            .expect("hashing an in-memory buffer cannot fail")
            .to_string();
        let name: String = url
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or("repo")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let name = name.trim_start_matches('.');
        let name = if name.is_empty() { "repo" } else { name };
        GitDatabase {
            path: self
                .root
                .join("git")
                .join("db")
                .join(format!("{name}-{}", &key[..16])),
        }
    }

    /// Every database folder in the cache.
    pub fn databases(&self) -> Vec<PathBuf> {
        let dir = self.root.join("git").join("db");
        let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.to_string_lossy().contains(".corrupt-"))
            .collect();
        out.sort();
        out
    }
}

/// Open the bare repository at `path` (a cache database a resolved source names), libgit2
/// initialised first (see [`GitDatabase::open`]).
pub fn open_bare(path: &Path) -> Result<Repository, git2::Error> {
    super::setup::init();
    Repository::open_bare(path)
}

/// One bare repository in the cache.
#[derive(Debug, Clone)]
pub struct GitDatabase {
    pub path: PathBuf,
}

impl GitDatabase {
    pub fn exists(&self) -> bool {
        self.path.join("HEAD").is_file()
    }

    /// Open by exact path (no discovery, no walking up to a parent repository).
    ///
    /// This and [`GitDatabase::open_or_init`] and [`open_bare`] are the only places a
    /// repository is opened: each initialises libgit2 first ([`super::setup::init`]), so its
    /// pack and memory limits hold on every path.
    pub fn open(&self) -> Result<Repository, git2::Error> {
        super::setup::init();
        Repository::open_ext(
            &self.path,
            git2::RepositoryOpenFlags::NO_SEARCH | git2::RepositoryOpenFlags::BARE,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
    }

    /// Open, creating an empty bare repository if there is none.
    pub fn open_or_init(&self) -> Result<Repository> {
        if self.exists() {
            return self
                .open()
                .with_context(|| format!("cannot open cache repository {}", self.path.display()));
        }
        std::fs::create_dir_all(self.path.parent().expect("db has a parent"))?;
        super::setup::init();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true)
            .no_reinit(false)
            .mkpath(true)
            .external_template(false);
        Repository::init_opts(&self.path, &opts)
            .with_context(|| format!("cannot create cache repository {}", self.path.display()))
    }

    /// Move a repository that cannot be read out of the way, so it can be fetched afresh.
    /// It is kept (not deleted) for inspection; `kst cache prune` removes it.
    pub fn move_aside(&self) -> Result<PathBuf> {
        let aside = PathBuf::from(format!(
            "{}.corrupt-{}",
            self.path.display(),
            std::process::id()
        ));
        let _ = fsx::remove_any(&aside);
        std::fs::rename(&self.path, &aside)
            .with_context(|| format!("cannot move {} aside", self.path.display()))?;
        Ok(aside)
    }

    /// Hold this repository's OS lock (waits for another process or thread fetching into it).
    /// Run `attempt` on this repository (opened, or created empty), holding its lock. An
    /// attempt that fails because the repository is damaged (it says so with `Err((e, true))`,
    /// or the error [`looks_damaged`]) is run once more on a fresh repository when the network
    /// may be used, the damaged one moved aside: a bad cache heals itself in one run. Returns
    /// the value and the warning said about the move (`shown`: the URL for it).
    pub fn with_repair<T>(
        &self,
        shown: &str,
        mode: crate::git::FetchMode,
        mut attempt: impl FnMut(&Repository) -> std::result::Result<T, (anyhow::Error, bool)>,
    ) -> Result<(T, Vec<String>)> {
        let _held = self.lock()?;
        let mut warnings = Vec::new();
        loop {
            let outcome = match self.open_or_init() {
                Ok(repo) => attempt(&repo),
                Err(e) => Err((e, true)),
            };
            match outcome {
                Ok(v) => return Ok((v, warnings)),
                Err((e, damaged))
                    if (damaged || looks_damaged(&e))
                        && warnings.is_empty()
                        && mode == crate::git::FetchMode::Online =>
                {
                    let aside = self.move_aside()?;
                    let msg = format!(
                        "cache repository for {shown} was unreadable ({e:#}); moved to {} and fetching again",
                        aside.display()
                    );
                    tracing::warn!("{msg}");
                    warnings.push(msg);
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    pub fn lock(&self) -> Result<File> {
        let path = PathBuf::from(format!("{}.lock", self.path.display()));
        std::fs::create_dir_all(path.parent().expect("lock has a parent"))?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(f)
    }
}

/// Does an error say the cache repository itself is damaged (as opposed to the network or the
/// remote)? libgit2 reports unreadable objects, packs and refs with these classes.
pub fn looks_damaged(e: &anyhow::Error) -> bool {
    use git2::ErrorClass as C;
    // A commit the remote does not have, or a fetch stopped by a cap, is not damage, whatever
    // libgit2 said on the way.
    if e.chain().any(|c| {
        c.downcast_ref::<crate::git::MissingCommit>().is_some()
            || c.downcast_ref::<crate::git::FetchCapExceeded>().is_some()
    }) {
        return false;
    }
    e.chain().any(|c| {
        c.downcast_ref::<crate::git::Corrupt>().is_some()
            || c.downcast_ref::<git2::Error>().is_some_and(|g| {
                matches!(
                    g.class(),
                    C::Odb
                        | C::Zlib
                        | C::Object
                        | C::Repository
                        | C::Reference
                        | C::Indexer
                        | C::Tree
                )
            })
    })
}
