//! The warm no-op of commands and instructions (SPEC 14): an item whose source file and every
//! destination are what they were when kst last found them in order is neither read, parsed
//! nor rendered, and none of its destinations is read.
//!
//! It rests on the stat cache (`statcache.rs`, git's racy rule) in two places:
//!
//! - **Source side.** A local source's item files are looked up by their `lstat` data in the
//!   source folder's own stat cache (`local commands\0<root>` keyed by the folder), which gives
//!   their git blob ids without reading them. A git source's item blob ids are
//!   `<commit>:<path>`, read from the commit's trees (the per-process tree index of
//!   `git/pack.rs`), never from the lock: a lock edited to match an edited install is not
//!   trusted, it only fails to match.
//! - **Destination side.** One cache file per kind and scope (`rendered commands\0<scope>` keyed
//!   by the scope root) has a section per rendered item, named by a fingerprint of everything
//!   rendering depends on: kst's version, the kind, the scope and its root and home, the
//!   agents in the config's order, the source as written (it names a block), the item's name,
//!   path and blob. Its records are the item's destinations, as the lock keys them: a rendered
//!   file's own `lstat` data, or for a block the whole shared file's (CLAUDE.md, AGENTS.md …),
//!   each with an id standing for the sha256 the full path found there and computed by
//!   rendering. A section is only written when the full path planned every destination of the
//!   item as *unchanged* from contents it read after the stamp, with stat data older than the
//!   stamp.
//!
//! An item takes the fast path when its blob is the lock's, its fingerprint's section is in
//! the cache, the lock records exactly that section's destinations with the same sha256s, and
//! every destination's `lstat` data are the recorded ones (no symlinked folder on the way to a
//! rendered file; a shared file still a regular file confined to the project). A rendered file
//! under the scope root is looked up by its name in its folder, opened once (`fsat.rs`): in a
//! project every folder below the root is opened with `O_NOFOLLOW`, so one swapped for a
//! symlink fails to open and the item takes the full path, which reports it. Then the full
//! path would have rendered the same bytes, found them on disk and the lock in agreement:
//! *unchanged*. Anything else — a changed source, an edited, missing or racy destination, an
//! agent added, another kst version — goes through the full path, which reads, renders and
//! records again. `kst verify` never uses any of this: it proves bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::Oid;

use sha2::{Digest, Sha256};

use crate::config::SkillSource;
use crate::fsat::Folders;
use crate::item::{Kind, Target};
use crate::lock::LockedFile;
use crate::statcache::{StatCache, StatData};

use super::Places;

/// A destination found unchanged by its stat data, without reading it.
#[derive(Debug, Clone)]
pub struct Unchanged {
    pub target: Target,
    /// Its lock key (`FILE#ID` for a block). (The sha256 there is the one the lock records
    /// for it.)
    pub key: String,
    /// A rendered file (not a block in a shared file).
    pub file: bool,
}

/// The fast path of one kind in one scope, for one run.
pub struct Fast {
    root: PathBuf,
    confine: Option<PathBuf>,
    cache_root: PathBuf,
    /// The shared files of this kind and scope, as lock keys name them (`FILE` of `FILE#ID`).
    /// The shared files of this kind and scope, as lock keys name them (`FILE` of `FILE#ID`),
    /// with where each is.
    shared_files: Vec<(String, Target)>,
    /// What every fingerprint starts with (what rendering depends on besides the item),
    /// hashed once.
    context: Sha256,
    cache: StatCache,
    /// Shared files: their `lstat` data when they are regular files confined to the project.
    shared: Mutex<HashMap<PathBuf, Option<StatData>>>,
    /// The folders of rendered files under the scope root, each opened once; in a project
    /// none below the root may be a symlink (`fsat.rs`).
    dests: Folders,
}

/// The id a destination record holds for the sha256 found there (`sha256:<hex>`): its first
/// 160 bits. None for anything else (then nothing is recorded, or the lock does not match).
fn sha_id(sha: &str) -> Option<Oid> {
    let hex = sha.strip_prefix("sha256:")?;
    (hex.len() == 64).then_some(())?;
    crate::oid::parse(&hex[..40])
}

impl Fast {
    /// `confine`: in a project, its folder (canonical), where shared files must resolve.
    pub fn new(kind: Kind, at: &Places, confine: Option<PathBuf>, cache_root: &Path) -> Fast {
        let scope = if at.global { "global" } else { "project" };
        let mut context = Sha256::new();
        context.update(format!(
            "kst files fast 1\0{}\0{}\0{scope}\0",
            env!("CARGO_PKG_VERSION"),
            kind.noun()
        ));
        for p in [at.home, at.root] {
            context.update(p.as_os_str().as_encoded_bytes());
            context.update([0]);
        }
        for a in at.agents {
            context.update(a.id.as_bytes());
            context.update([0]);
        }
        Fast {
            root: at.root.to_path_buf(),
            confine,
            cache_root: cache_root.to_path_buf(),
            shared_files: super::known(kind, at.global, at.home, at.root)
                .shared
                .into_iter()
                .map(|f| {
                    let t = super::target_at(PathBuf::from(&f), at.root);
                    (f, t)
                })
                .collect(),
            context,
            cache: StatCache::for_items(
                cache_root,
                &format!("rendered {}s in {scope}", kind.noun()),
                at.root,
            ),
            shared: Mutex::new(HashMap::new()),
            dests: Folders::new(at.root, !at.global),
        }
    }

    /// Where local sources keep their stat caches.
    pub fn cache_root(&self) -> &Path {
        &self.cache_root
    }

    /// The section of an item: a fingerprint of everything its rendering depends on.
    fn section(&self, entry: &SkillSource, name: &str, path: &str, blob: &str) -> String {
        let mut h = self.context.clone();
        for s in [super::source_as_written(entry), name, path, blob] {
            h.update(s.as_bytes());
            h.update([0]);
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut name = String::with_capacity(40);
        for b in &h.finalize()[..20] {
            name.push(HEX[usize::from(b >> 4)] as char);
            name.push(HEX[usize::from(b & 15)] as char);
        }
        name
    }

    /// Where a destination recorded in a section is: a block of a shared file, or a rendered
    /// file. The key is one the full path made (a section's), so it needs no checking as a
    /// lock's key does (`Known::place_of`); and the fast path writes nothing.
    fn target_of(&self, key: &str) -> (Target, bool) {
        let block = self.shared_files.iter().find(|(f, _)| {
            key.strip_prefix(f.as_str())
                .is_some_and(|rest| rest.starts_with('#'))
        });
        match block {
            Some((_, t)) => (t.clone(), false),
            // A relative key is what `target_at` made of a path inside the root: its own
            // `rel`, in normal form.
            None if !key.starts_with('/') => (
                Target {
                    abs: self.root.join(key),
                    rel: key.to_string(),
                },
                true,
            ),
            None => (super::target_at(PathBuf::from(key), &self.root), true),
        }
    }

    /// Every destination of the item, if each is unchanged since kst last found it in order
    /// (see the module doc); None: plan it in full. `locked`: the item's lock record.
    pub fn unchanged(
        &self,
        entry: &SkillSource,
        locked: Option<&LockedFile>,
        name: &str,
        path: &str,
        blob: Oid,
    ) -> Option<Vec<Unchanged>> {
        let l = locked?;
        if l.path != path || l.installed.is_empty() || crate::oid::parse(&l.blob)? != blob {
            return None;
        }
        let section = self.section(entry, name, path, &l.blob);
        let records = self.cache.recorded(&section)?;
        if records.len() != l.installed.len() {
            return None;
        }
        let mut out = Vec::with_capacity(l.installed.len());
        for (key, sha) in &l.installed {
            let (stat, id) = records.get(key)?;
            if Some(id) != sha_id(sha) {
                return None;
            }
            let (target, file) = self.target_of(key);
            let now = if file && !key.starts_with('/') {
                // Looked up in its folder, opened once, no folder on the way a symlink in a
                // project (which `symlinked_folder` would report to the full path).
                self.dests.lstat(key)?
            } else if file {
                // Outside the scope root (a global agent folder elsewhere): no folder of a
                // project on the way.
                StatData::of(&std::fs::symlink_metadata(&target.abs).ok()?)
            } else {
                self.shared_stat(&target.abs)?
            };
            if now != stat {
                return None;
            }
            out.push(Unchanged {
                target,
                key: key.clone(),
                file,
            });
        }
        self.cache.keep_as_loaded(&section);
        Some(out)
    }

    /// A shared file's stat data, when it is a regular file kst may edit (confined to the
    /// project); the fast path does not take a symlinked one.
    fn shared_stat(&self, abs: &Path) -> Option<StatData> {
        let mut shared = self.shared.lock().expect("fast path lock");
        *shared.entry(abs.to_path_buf()).or_insert_with(|| {
            let m = std::fs::symlink_metadata(abs).ok()?;
            if !m.is_file() {
                return None;
            }
            crate::shared_file::check_confined(abs, self.confine.as_deref()).ok()?;
            Some(StatData::of(&m))
        })
    }

    /// Call before the plan reads any destination or shared file (git's racy rule: the stamp
    /// comes first).
    pub fn begin_reading(&self) {
        self.cache.begin_reading();
    }

    /// The full path planned the item: when every destination was found unchanged, from
    /// contents read under the stat data given, record them for the next run.
    /// `dests`: (lock key, stat data seen, sha256 found).
    pub fn record(
        &self,
        entry: &SkillSource,
        name: &str,
        path: &str,
        blob: &str,
        dests: Vec<(String, StatData, String)>,
    ) {
        if dests.is_empty() {
            return;
        }
        let section = self.section(entry, name, path, blob);
        let records: Option<Vec<_>> = dests
            .into_iter()
            .map(|(key, stat, sha)| Some((key, stat, sha_id(&sha)?)))
            .collect();
        if let Some(records) = records {
            self.cache.put(&section, records);
        }
    }

    /// Write the cache for the next run (only if it changed; best effort).
    pub fn save(&self) {
        self.cache.save();
    }
}
