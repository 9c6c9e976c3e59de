//! A skill's files as git sees them, and its git tree id (SPEC 5, "Content identity").
//!
//! A [`Tree`] is a listing — names, modes, blob references — never file contents, so listing a
//! skill with thousands of files stays cheap. It comes from the object database (git sources)
//! or from disk (local sources, installed folders); either way its `id` is the git tree id that
//! `git rev-parse <commit>:<path>` prints, so one hash identifies content everywhere.
//!
//! Listing enforces the rules that must hold before anything is written (SPEC 13): every name
//! passes [`pathsafe`], no two names in a folder fold to the same string, symlinks are relative
//! and stay inside the skill, and the caps on sizes and counts hold.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use git2::{ObjectType, Oid};
use unicode_normalization::UnicodeNormalization;

use crate::envvars;
use crate::pathsafe;
use crate::statcache::StatData;

pub const MODE_FILE: u32 = 0o100644;
pub const MODE_EXEC: u32 = 0o100755;
pub const MODE_LINK: u32 = 0o120000;
pub const MODE_TREE: u32 = 0o040000;
pub const MODE_GITLINK: u32 = 0o160000;

/// Where a file's bytes come from when it is materialised.
#[derive(Debug, Clone)]
pub enum BlobRef {
    Disk(PathBuf),
    Git,
}

#[derive(Debug, Clone)]
pub enum EntryKind {
    File {
        executable: bool,
        size: u64,
        blob: BlobRef,
    },
    Symlink {
        target: String,
    },
    Dir(Tree),
    /// A submodule: recorded in git's tree, never fetched, skipped on install with a warning.
    Gitlink,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// The object id: blob (file, symlink), tree (dir) or commit (gitlink).
    pub id: Oid,
    pub kind: EntryKind,
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub id: Oid,
    /// In git's tree order.
    pub entries: Vec<Entry>,
}

/// Size and count limits (SPEC 13.4), checked from metadata or object headers before any
/// content is read.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_file_bytes: u64,
    pub max_skill_bytes: u64,
    pub max_skill_files: u64,
}

impl Caps {
    pub fn from_env() -> Self {
        let get = |name, default| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Caps {
            max_file_bytes: get(envvars::KASETTO_MAX_FILE_BYTES, 100 << 20),
            max_skill_bytes: get(envvars::KASETTO_MAX_SKILL_BYTES, 512 << 20),
            max_skill_files: get(envvars::KASETTO_MAX_SKILL_FILES, 50_000),
        }
    }
}

/// Running totals while listing one skill, to enforce [`Caps`].
#[derive(Clone)]
pub struct Budget {
    caps: Caps,
    bytes: u64,
    files: u64,
}

impl Budget {
    pub fn new(caps: Caps) -> Self {
        Budget {
            caps,
            bytes: 0,
            files: 0,
        }
    }

    pub fn charge(&mut self, path: &str, size: u64) -> anyhow::Result<()> {
        self.files += 1;
        self.bytes += size;
        if size > self.caps.max_file_bytes {
            bail!(
                "{path} is {size} bytes, over the {} byte file cap (raise {} to allow it)",
                self.caps.max_file_bytes,
                envvars::KASETTO_MAX_FILE_BYTES
            );
        }
        if self.files > self.caps.max_skill_files {
            bail!(
                "more than {} files (raise {} to allow it)",
                self.caps.max_skill_files,
                envvars::KASETTO_MAX_SKILL_FILES
            );
        }
        if self.bytes > self.caps.max_skill_bytes {
            bail!(
                "more than {} bytes in total (raise {} to allow it)",
                self.caps.max_skill_bytes,
                envvars::KASETTO_MAX_SKILL_BYTES
            );
        }
        Ok(())
    }
}

/// Git's tree order: byte order of names, with a directory compared as if its name ended in `/`.
fn git_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let key = |e: &Entry| {
        let mut k = e.name.as_bytes().to_vec();
        if matches!(e.kind, EntryKind::Dir(_)) {
            k.push(b'/');
        }
        k
    };
    key(a).cmp(&key(b))
}

impl Entry {
    pub fn mode(&self) -> u32 {
        match &self.kind {
            EntryKind::File {
                executable: true, ..
            } => MODE_EXEC,
            EntryKind::File { .. } => MODE_FILE,
            EntryKind::Symlink { .. } => MODE_LINK,
            EntryKind::Dir(_) => MODE_TREE,
            EntryKind::Gitlink => MODE_GITLINK,
        }
    }
}

/// Hash a tree object the way git does: `<octal mode> <name>\0<20-byte id>` per entry.
pub fn hash_tree(entries: &[Entry]) -> Oid {
    let mut buf = Vec::with_capacity(entries.len() * 40);
    for e in entries {
        buf.extend_from_slice(mode_octal(e.mode()));
        buf.push(b' ');
        buf.extend_from_slice(e.name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(e.id.as_bytes());
    }
    crate::oid::hash(ObjectType::Tree, &buf).expect("hashing an in-memory buffer cannot fail")
}

impl Tree {
    /// Build a tree from entries (any order); computes git's id.
    pub fn from_entries(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(git_order);
        Tree {
            id: hash_tree(&entries),
            entries,
        }
    }

    /// The id of what kst writes to disk for this tree, which `verify` recomputes from the
    /// installed folder: gitlinks are skipped and modes normalised, so a git tree that has
    /// either installs as a different tree. Equal to `id` for almost every skill; computed from
    /// the listing alone (no file is read).
    pub fn installed_id(&self) -> Oid {
        fn normalised(t: &Tree) -> Vec<Entry> {
            t.entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::Gitlink => None,
                    EntryKind::Dir(sub) => {
                        let kids = normalised(sub);
                        (!kids.is_empty()).then(|| Entry {
                            id: hash_tree(&kids),
                            ..e.clone()
                        })
                    }
                    _ => Some(e.clone()),
                })
                .collect()
        }
        hash_tree(&normalised(self))
    }

    /// Each symlink was checked alone when listed: relative, and inside the skill when its
    /// target is resolved *lexically*. A chain can still escape: `d/e/l → ../..` is fine alone,
    /// but `esc → d/e/l/../../../x` walks *through* `l`, whose real target a lexical check does
    /// not follow. So no link target may pass through another symlink of the skill; with that,
    /// lexical resolution is the real one.
    pub fn check_link_chains(&self) -> anyhow::Result<()> {
        // Most skills have no symlink at all: then there is no chain, and no path to build.
        if !self.has_symlinks() {
            return Ok(());
        }
        let mut links: Vec<(String, String)> = Vec::new();
        self.walk(|path, e| {
            if let EntryKind::Symlink { target } = &e.kind {
                links.push((path.to_string(), target.clone()));
            }
        });
        // Compared as a case-insensitive, normalising file system (macOS, Windows) would: `A`
        // reaches the link `a` there, on every OS we judge it so.
        let names: HashMap<String, &str> = links
            .iter()
            .map(|(p, _)| (fold_path(p), p.as_str()))
            .collect();
        for (path, target) in &links {
            let mut at: Vec<&str> = path.split('/').collect();
            at.pop();
            let parts: Vec<&str> = target
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            for (i, part) in parts.iter().enumerate() {
                if *part == ".." {
                    at.pop();
                } else {
                    at.push(part);
                }
                if i + 1 < parts.len()
                    && let Some(link) = names.get(&fold_path(&at.join("/")))
                {
                    bail!(
                        "symlink {path} → {target:?} passes through the symlink {link}; links may not be chained through folders"
                    );
                }
            }
        }
        Ok(())
    }

    fn has_symlinks(&self) -> bool {
        self.entries.iter().any(|e| match &e.kind {
            EntryKind::Symlink { .. } => true,
            EntryKind::Dir(t) => t.has_symlinks(),
            _ => false,
        })
    }

    pub fn has_gitlinks(&self) -> bool {
        self.entries.iter().any(|e| match &e.kind {
            EntryKind::Gitlink => true,
            EntryKind::Dir(t) => t.has_gitlinks(),
            _ => false,
        })
    }

    /// Every file and symlink, with its path relative to the tree root.
    pub fn walk(&self, mut f: impl FnMut(&str, &Entry)) {
        fn go(t: &Tree, prefix: &str, f: &mut dyn FnMut(&str, &Entry)) {
            for e in &t.entries {
                let path = if prefix.is_empty() {
                    e.name.clone()
                } else {
                    format!("{prefix}/{}", e.name)
                };
                match &e.kind {
                    EntryKind::Dir(sub) => go(sub, &path, f),
                    _ => f(&path, e),
                }
            }
        }
        go(self, "", &mut f)
    }
}

/// Checks shared by every way of listing a folder: safe names, no case-fold collisions,
/// symlinks that stay inside the skill. `rel` is the folder's path inside the skill ("" at the
/// root).
pub fn check_entries(rel: &str, entries: &[Entry]) -> anyhow::Result<()> {
    let mut folded: HashMap<String, &str> = HashMap::new();
    for e in entries {
        pathsafe::check_component(e.name.as_bytes()).with_context(|| join_rel(rel, &e.name))?;
        let key = fold(&e.name);
        if let Some(other) = folded.insert(key, &e.name) {
            if other == e.name {
                bail!(
                    "{} appears twice in one folder (as a file, folder or link); one would be written through the other",
                    join_rel(rel, other)
                );
            }
            bail!(
                "{} and {} differ only in case or Unicode normalisation; they would collide on macOS and Windows",
                join_rel(rel, other),
                join_rel(rel, &e.name)
            );
        }
        if let EntryKind::Symlink { target } = &e.kind {
            check_symlink(rel, &e.name, target)?;
        }
    }
    Ok(())
}

/// What case-insensitive, normalising file systems (macOS, Windows) see as the same name: NFC,
/// then lower case.
pub fn fold(name: &str) -> String {
    // ASCII is its own NFC, and its lower case is ASCII's: no normaliser needed (the common
    // case, on every destination of a no-op).
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    name.nfc().collect::<String>().to_lowercase()
}

/// [`fold`] for a '/'-separated path, one component at a time.
fn fold_path(path: &str) -> String {
    path.split('/').map(fold).collect::<Vec<_>>().join("/")
}

/// `a/b` for '/'-separated paths inside a pack or a skill, where `""` is the root.
pub fn join_rel(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// A symlink is kept only when its target is relative and, resolved lexically from the link's
/// folder, stays inside the skill (SPEC 8).
fn check_symlink(rel: &str, name: &str, target: &str) -> anyhow::Result<()> {
    let path = join_rel(rel, name);
    if target.is_empty()
        || target.starts_with('/')
        || target.contains('\\')
        || target.contains('\0')
    {
        bail!(
            "symlink {path} → {target:?} is absolute or malformed; only relative links inside the skill are allowed"
        );
    }
    let mut depth: i64 = rel.split('/').filter(|p| !p.is_empty()).count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            bail!("symlink {path} → {target:?} points outside the skill");
        }
    }
    Ok(())
}

/// A regular file being identified: by its path, or by its folder's path and its name there
/// (the path is only built when it is needed: to read the file, or to name it in an error).
pub enum FileAt<'a> {
    Path(&'a Path),
    In(&'a Path, &'a str),
}

impl FileAt<'_> {
    pub fn path(&self) -> std::borrow::Cow<'_, Path> {
        match self {
            FileAt::Path(p) => std::borrow::Cow::Borrowed(p),
            FileAt::In(dir, name) => std::borrow::Cow::Owned(dir.join(name)),
        }
    }
}

/// A folder's listing as [`disk_tree_id`] last saw it (kept by the stat cache, git's
/// "untracked cache" idea): the folder's own `lstat` data, every entry (name, mode, id; an
/// empty sub-folder, which git does not store, has no id) in git's order, and the tree id they
/// hash to (None: nothing git would store). While the folder's stat data stay what they were
/// (adding, removing or renaming an entry moves its mtime), the names need not be read again;
/// each entry is still `lstat`ed, and the recorded tree id is reused only when every entry's
/// mode and id are again the recorded ones, so it is exactly the id hashing would give.
/// The names are kept in one string (a cache of thousands of folders is loaded, and freed,
/// on every no-op: two allocations per folder, not one per entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub stat: StatData,
    /// Every entry's name, one after the other.
    names: Box<str>,
    entries: Vec<Listed>,
    pub tree: Option<Oid>,
}

/// One entry of a [`Listing`]: where its name ends in `names`, its mode and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    end: u32,
    mode: u32,
    id: Option<Oid>,
}

impl Listing {
    /// A listing of `entries` (name, mode, id), in git's order.
    pub fn new<'n, I>(stat: StatData, entries: I, tree: Option<Oid>) -> Listing
    where
        I: Iterator<Item = (&'n str, u32, Option<Oid>)> + Clone,
    {
        let mut names = String::with_capacity(entries.clone().map(|(n, ..)| n.len()).sum());
        let entries = entries
            .map(|(name, mode, id)| {
                names.push_str(name);
                Listed {
                    end: names.len() as u32,
                    mode,
                    id,
                }
            })
            .collect();
        Listing {
            stat,
            names: names.into_boxed_str(),
            entries,
            tree,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each entry: (name, mode, id), in git's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32, Option<Oid>)> + Clone {
        let mut start = 0usize;
        self.entries.iter().map(move |e| {
            let end = e.end as usize;
            // Built by `new` (or decoded and checked by it): every end is a char boundary.
            let name = &self.names[start..end];
            start = end;
            (name, e.mode, e.id)
        })
    }
}

/// Where [`read_disk_with`] and [`disk_tree_id`] get a regular file's blob id: by hashing its
/// contents, or from a cache that can vouch for them (the stat cache), and where
/// [`disk_tree_id`] may find a folder's listing without reading it again.
pub trait BlobIds {
    /// The blob id of the regular file `file` (`rel` inside the listed folder), whose `lstat`
    /// data are `stat`.
    fn blob_id_at(&self, file: &FileAt, rel: &str, stat: &StatData) -> anyhow::Result<Oid>;

    /// [`BlobIds::blob_id_at`] for the file at `path` whose `lstat` data are `meta`.
    fn blob_id(&self, path: &Path, rel: &str, meta: &fs::Metadata) -> anyhow::Result<Oid> {
        self.blob_id_at(&FileAt::Path(path), rel, &StatData::of(meta))
    }

    /// The listing recorded for the folder `rel` (`""`: the root), if any.
    fn listing(&self, _rel: &str) -> Option<&Listing> {
        None
    }

    /// Called before a folder's names are read from disk, so that its listing may be recorded
    /// (the racy rule needs a stamp taken before the read).
    fn before_listing(&self) {}

    /// The folder `rel` was walked completely: `Some` with what it holds now, or None when
    /// that is exactly the listing [`BlobIds::listing`] gave.
    fn listed(&self, _rel: &str, _now: Option<Listing>) {}
}

/// Read and hash every file: what `verify` and local sources do.
pub struct HashContents;

impl BlobIds for HashContents {
    fn blob_id_at(&self, file: &FileAt, _rel: &str, _stat: &StatData) -> anyhow::Result<Oid> {
        hash_file(&file.path())
    }
}

/// The git blob id of a regular file's contents (`git hash-object`).
pub fn hash_file(path: &Path) -> anyhow::Result<Oid> {
    crate::failpoint::count(crate::failpoint::Counter::FileRead);
    crate::oid::hash_file(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The tree id [`read_disk`] would compute for the folder at `root`, without building the
/// listing: for comparing an installed folder with the tree it should hold, which is the hot
/// path of a no-op sync. The name and symlink checks are not repeated: a folder whose id equals
/// a checked tree's has exactly that tree's entries. Caps still apply, so a huge file is never
/// read. `root` itself is opened as `read_dir` would (a symlink there is followed); below it,
/// every folder is opened relative to its parent without following a symlink, and every entry
/// is `lstat`ed relative to its open folder (no path walk per file). A folder whose stat data
/// are those of its recorded [`Listing`] (`ids`) is not read again.
pub fn disk_tree_id(root: &Path, budget: &mut Budget, ids: &dyn BlobIds) -> anyhow::Result<Oid> {
    let dir = dirfd::Dir::open(root, true)
        .with_context(|| format!("cannot read folder {}", root.display()))?;
    Ok(disk_tree_id_at(&dir, root, "", budget, ids)?.unwrap_or_else(|| hash_tree_bytes(&[])))
}

/// [`disk_tree_id`] of a folder that must be one: a symlink at `root` is an error, not followed.
pub fn disk_tree_id_nofollow(
    root: &Path,
    budget: &mut Budget,
    ids: &dyn BlobIds,
) -> anyhow::Result<Oid> {
    let dir = dirfd::Dir::open(root, false)
        .with_context(|| format!("cannot read folder {}", root.display()))?;
    Ok(disk_tree_id_at(&dir, root, "", budget, ids)?.unwrap_or_else(|| hash_tree_bytes(&[])))
}

/// One entry of a folder being hashed: git's sort key (the name, `/`-terminated for folders),
/// mode and id (None: an empty folder, which git does not store).
struct Hashed {
    key: Vec<u8>,
    mode: u32,
    id: Option<Oid>,
}

/// The tree object's bytes for entries in git's order (empty folders left out).
fn tree_bytes<'e>(entries: impl Iterator<Item = (&'e str, u32, Option<Oid>)>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    for (name, mode, id) in entries {
        let Some(id) = id else { continue };
        buf.extend_from_slice(mode_octal(mode));
        buf.push(b' ');
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(id.as_bytes());
    }
    buf
}

/// None for a folder with nothing git would store (it vanishes from its parent).
fn disk_tree_id_at(
    dir: &dirfd::Dir,
    path: &Path,
    rel: &str,
    budget: &mut Budget,
    ids: &dyn BlobIds,
) -> anyhow::Result<Option<Oid>> {
    let stat = dir
        .stat()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if dirfd::kind(stat.mode) != dirfd::Kind::Dir {
        bail!("{} is not a folder", path.display());
    }
    if let Some(recorded) = ids.listing(rel).filter(|l| l.stat == stat) {
        let before = budget.clone();
        if let Some(id) = walk_recorded(dir, path, rel, recorded, budget, ids)? {
            return Ok(id);
        }
        // An entry is not what the listing says (only possible if the folder changed within
        // its recorded timestamp tick, which the racy rule excludes): list it from disk.
        *budget = before;
    }
    ids.before_listing();
    let names = dir
        .names()
        .with_context(|| format!("cannot read folder {}", path.display()))?;
    let mut entries: Vec<Hashed> = Vec::with_capacity(names.len());
    for (raw, kind) in names {
        let Ok(name) = std::str::from_utf8(&raw) else {
            bail!(
                "{}: file name is not valid UTF-8",
                join_rel(rel, &String::from_utf8_lossy(&raw))
            );
        };
        if name == ".git" {
            continue;
        }
        let child_rel = join_rel(rel, name);
        let file = FileAt::In(path, name);
        let kind = match kind {
            Some(k) => k,
            None => dirfd::kind(
                dir.stat_at(name)
                    .with_context(|| format!("cannot stat {}", file.path().display()))?
                    .mode,
            ),
        };
        let (mode, id) = match kind {
            dirfd::Kind::Link => {
                let target = dir
                    .read_link(name)
                    .with_context(|| format!("cannot read link {}", file.path().display()))?;
                budget.charge(&child_rel, target.len() as u64)?;
                (
                    MODE_LINK,
                    Some(crate::oid::hash(ObjectType::Blob, &target)?),
                )
            }
            dirfd::Kind::Dir => {
                let sub_path = path.join(name);
                let sub = dir
                    .open_dir(name)
                    .with_context(|| format!("cannot read folder {}", sub_path.display()))?;
                let id = disk_tree_id_at(&sub, &sub_path, &child_rel, budget, ids)?;
                (MODE_TREE, id)
            }
            dirfd::Kind::File => {
                let st = dir
                    .stat_at(name)
                    .with_context(|| format!("cannot stat {}", file.path().display()))?;
                // Replaced by something else since the listing: not what was installed.
                if dirfd::kind(st.mode) != dirfd::Kind::File {
                    bail!("{child_rel} changed while it was being read");
                }
                budget.charge(&child_rel, st.size)?;
                let id = ids.blob_id_at(&file, &child_rel, &st)?;
                (file_mode(st.mode), Some(id))
            }
            dirfd::Kind::Other => bail!("{child_rel} is not a regular file, folder or symlink"),
        };
        let mut key = Vec::with_capacity(name.len() + 1);
        key.extend_from_slice(name.as_bytes());
        if mode == MODE_TREE {
            key.push(b'/');
        }
        entries.push(Hashed { key, mode, id });
    }
    entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let named = entries.iter().map(|e| {
        let key = match e.mode {
            MODE_TREE => &e.key[..e.key.len() - 1],
            _ => &e.key[..],
        };
        let name = std::str::from_utf8(key).expect("checked UTF-8 above");
        (name, e.mode, e.id)
    });
    let buf = tree_bytes(named.clone());
    let tree = (!buf.is_empty()).then(|| hash_tree_bytes(&buf));
    ids.listed(rel, Some(Listing::new(stat, named, tree)));
    Ok(tree)
}

/// The mode git records for a regular file with permission bits `mode`.
fn file_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 {
        MODE_EXEC
    } else {
        MODE_FILE
    }
}

/// [`disk_tree_id_at`] from the recorded listing of a folder whose stat data are unchanged:
/// every entry is still `lstat`ed (a file's stat data vouch for its id), sub-folders are
/// walked. `Ok(None)`: an entry is no longer of its recorded kind (the caller lists the folder
/// from disk); `Ok(Some(id))`: the folder's tree id (None inside: nothing git would store).
fn walk_recorded(
    dir: &dirfd::Dir,
    path: &Path,
    rel: &str,
    recorded: &Listing,
    budget: &mut Budget,
    ids: &dyn BlobIds,
) -> anyhow::Result<Option<Option<Oid>>> {
    let mut now: Vec<(u32, Option<Oid>)> = Vec::with_capacity(recorded.len());
    // Each entry's path inside the skill, built in one buffer (no allocation per entry).
    let mut child_rel = String::with_capacity(rel.len() + 64);
    for (name, recorded_mode, _) in recorded.iter() {
        child_rel.clear();
        if !rel.is_empty() {
            child_rel.push_str(rel);
            child_rel.push('/');
        }
        child_rel.push_str(name);
        let (mode, id) = match recorded_mode {
            MODE_TREE => {
                let sub_path = path.join(name);
                let Ok(sub) = dir.open_dir(name) else {
                    return Ok(None);
                };
                let id = disk_tree_id_at(&sub, &sub_path, &child_rel, budget, ids)?;
                (MODE_TREE, id)
            }
            MODE_LINK => {
                match dir.stat_at(name) {
                    Ok(st) if dirfd::kind(st.mode) == dirfd::Kind::Link => {}
                    _ => return Ok(None),
                }
                let Ok(target) = dir.read_link(name) else {
                    return Ok(None);
                };
                budget.charge(&child_rel, target.len() as u64)?;
                (
                    MODE_LINK,
                    Some(crate::oid::hash(ObjectType::Blob, &target)?),
                )
            }
            _ => {
                let st = match dir.stat_at(name) {
                    Ok(st) if dirfd::kind(st.mode) == dirfd::Kind::File => st,
                    _ => return Ok(None),
                };
                budget.charge(&child_rel, st.size)?;
                let id = ids.blob_id_at(&FileAt::In(path, name), &child_rel, &st)?;
                (file_mode(st.mode), Some(id))
            }
        };
        now.push((mode, id));
    }
    let same = recorded
        .iter()
        .zip(&now)
        .all(|((_, mode, id), (m, i))| mode == *m && id == *i);
    if same {
        ids.listed(rel, None);
        return Ok(Some(recorded.tree));
    }
    let listed = recorded
        .iter()
        .zip(now)
        .map(|((name, ..), (mode, id))| (name, mode, id));
    let buf = tree_bytes(listed.clone());
    let tree = (!buf.is_empty()).then(|| hash_tree_bytes(&buf));
    ids.listed(rel, Some(Listing::new(recorded.stat, listed, tree)));
    Ok(Some(tree))
}

fn mode_octal(mode: u32) -> &'static [u8] {
    match mode {
        MODE_FILE => b"100644",
        MODE_EXEC => b"100755",
        MODE_LINK => b"120000",
        MODE_TREE => b"40000",
        _ => b"160000",
    }
}

fn hash_tree_bytes(buf: &[u8]) -> Oid {
    crate::oid::hash(ObjectType::Tree, buf).expect("hashing an in-memory buffer cannot fail")
}

/// List a folder on disk as git would store it. Empty folders vanish (git cannot store them);
/// `.git` entries are skipped as git skips them.
pub fn read_disk(root: &Path, budget: &mut Budget) -> anyhow::Result<Tree> {
    read_disk_at(root, "", budget, &HashContents)
}

/// [`read_disk`], taking each regular file's blob id from `ids` (the stat cache, for local
/// source folders).
pub fn read_disk_with(root: &Path, budget: &mut Budget, ids: &dyn BlobIds) -> anyhow::Result<Tree> {
    read_disk_at(root, "", budget, ids)
}

fn read_disk_at(
    dir: &Path,
    rel: &str,
    budget: &mut Budget,
    ids: &dyn BlobIds,
) -> anyhow::Result<Tree> {
    let mut entries = Vec::new();
    let listing =
        fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    for item in listing {
        let item = item.with_context(|| format!("cannot read folder {}", dir.display()))?;
        let raw = item.file_name();
        let Some(name) = raw.to_str().map(str::to_owned) else {
            bail!(
                "{}: file name is not valid UTF-8",
                join_rel(rel, &raw.to_string_lossy())
            );
        };
        if name == ".git" {
            continue;
        }
        let path = item.path();
        // The kind comes with the folder listing; only regular files are stat'ed (relative to
        // the open folder: no path walk per file).
        let ft = item
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let child_rel = join_rel(rel, &name);
        let entry = if ft.is_symlink() {
            let target = fs::read_link(&path)
                .with_context(|| format!("cannot read link {}", path.display()))?;
            let Some(target) = target.to_str().map(str::to_owned) else {
                bail!("symlink {child_rel}: target is not valid UTF-8");
            };
            budget.charge(&child_rel, target.len() as u64)?;
            let id = crate::oid::hash(ObjectType::Blob, target.as_bytes())?;
            Entry {
                name,
                id,
                kind: EntryKind::Symlink { target },
            }
        } else if ft.is_dir() {
            let sub = read_disk_at(&path, &child_rel, budget, ids)?;
            if sub.entries.is_empty() {
                continue;
            }
            Entry {
                name,
                id: sub.id,
                kind: EntryKind::Dir(sub),
            }
        } else if ft.is_file() {
            let meta = item
                .metadata()
                .with_context(|| format!("cannot stat {}", path.display()))?;
            // Replaced by something else since the listing: read it again later.
            if !meta.is_file() {
                bail!("{child_rel} changed while it was being read");
            }
            budget.charge(&child_rel, meta.len())?;
            let id = ids.blob_id(&path, &child_rel, &meta)?;
            let executable = meta.permissions().mode() & 0o100 != 0;
            Entry {
                name,
                id,
                kind: EntryKind::File {
                    executable,
                    size: meta.len(),
                    blob: BlobRef::Disk(path),
                },
            }
        } else {
            bail!("{child_rel} is not a regular file, folder or symlink");
        };
        entries.push(entry);
    }
    check_entries(rel, &entries)?;
    Ok(Tree::from_entries(entries))
}

/// Folders opened as descriptors, and entries looked at relative to them: no path walk per
/// entry, and no symlink followed below the folder a walk starts from (`O_NOFOLLOW`,
/// `AT_SYMLINK_NOFOLLOW`).
// `libc::stat`'s field types and the `S_IF*` constants' differ between Linux and macOS: the
// casts are what keeps this portable.
#[allow(clippy::unnecessary_cast)]
mod dirfd {
    use std::ffi::CStr;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

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

        /// The sub-folder `name`, never through a symlink.
        pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
            with_c(name.as_bytes(), |c| {
                // SAFETY: a valid descriptor and NUL-terminated name.
                let fd = check(unsafe {
                    libc::openat(self.0.as_raw_fd(), c.as_ptr(), DIR_FLAGS | libc::O_NOFOLLOW)
                })?;
                // SAFETY: `fd` was just opened and is owned by nothing else.
                Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
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
            with_c(name.as_bytes(), |c| {
                let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
                // SAFETY: a valid descriptor, NUL-terminated name and buffer of the right type.
                check(unsafe {
                    libc::fstatat(
                        self.0.as_raw_fd(),
                        c.as_ptr(),
                        st.as_mut_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn disk_tree_id_equals_gits() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let skill = root.join("skill");
        fs::create_dir_all(skill.join("nested/deeper")).unwrap();
        fs::create_dir_all(skill.join("empty")).unwrap();
        fs::write(skill.join("SKILL.md"), "---\nname: skill\n---\nhi\n").unwrap();
        fs::write(skill.join("nested/deeper/data.bin"), [0u8, 1, 2, 255]).unwrap();
        fs::write(skill.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(skill.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        // Names that exercise git's ordering: '-' < '.' < '/' < '0', and a dir vs file prefix.
        fs::write(skill.join("nested-file"), "x").unwrap();
        fs::write(skill.join("nested.txt"), "y").unwrap();
        fs::write(skill.join("nested0"), "z").unwrap();
        fs::write(skill.join("sp ace ü.md"), "unicode").unwrap();
        symlink("nested/deeper/data.bin", skill.join("link")).unwrap();

        git(root, &["init", "-q"]);
        git(root, &["add", "-A"]);
        let tree = git(root, &["write-tree"]);
        let expected = git(root, &["rev-parse", &format!("{tree}:skill")]);

        let listed = read_disk(&skill, &mut Budget::new(Caps::from_env())).unwrap();
        assert_eq!(listed.id.to_string(), expected);
        let id = disk_tree_id(&skill, &mut Budget::new(Caps::from_env()), &HashContents).unwrap();
        assert_eq!(id.to_string(), expected, "the id-only walk agrees");
    }

    /// A gitlink deep in a folder is skipped on install, so the folder's installed id is
    /// recomputed from what is left (a mutant keeping the git subtree's id went unnoticed):
    /// the tree installs exactly like the same tree without the gitlink.
    #[test]
    fn a_nested_gitlink_changes_no_installed_id() {
        let link = |n: &str| Entry {
            name: n.into(),
            id: Oid::hash_object(ObjectType::Blob, b"x").unwrap(),
            kind: EntryKind::Symlink { target: "x".into() },
        };
        let gitlink = Entry {
            name: "sub".into(),
            id: Oid::from_str("1111111111111111111111111111111111111111").unwrap(),
            kind: EntryKind::Gitlink,
        };
        let dir = |t: Tree| Entry {
            name: "d".into(),
            id: t.id,
            kind: EntryKind::Dir(t),
        };
        let with = Tree::from_entries(vec![dir(Tree::from_entries(vec![link("l"), gitlink]))]);
        let without = Tree::from_entries(vec![dir(Tree::from_entries(vec![link("l")]))]);
        assert_ne!(with.id, without.id);
        assert_eq!(without.installed_id(), without.id);
        assert_eq!(with.installed_id(), without.id);
    }

    #[test]
    fn escaping_and_absolute_symlinks_are_refused() {
        assert!(check_symlink("", "l", "../x").is_err());
        assert!(check_symlink("a", "l", "../../x").is_err());
        assert!(check_symlink("a", "l", "../b").is_ok());
        assert!(check_symlink("", "l", "/etc/passwd").is_err());
        // A backslash and a NUL are each refused on their own.
        assert!(check_symlink("", "l", "a\\b").is_err());
        // `.` and empty parts go nowhere: `./..` still leaves the skill.
        assert!(check_symlink("", "l", "./../x").is_err());
        assert!(check_symlink("a", "l", ".//../../x").is_err());
        assert!(check_symlink("", "l", "a\0b").is_err());
        assert!(check_symlink("", "l", "a/../../x").is_err());
    }

    /// `d/e/l → ../..` plus `esc → <spelling of d/e/l>/../../../x`: escapes through `l`
    /// whenever the spelling reaches `l`, which on macOS and Windows includes other cases and
    /// the other Unicode normalisation.
    #[test]
    fn link_chains_are_judged_case_and_normalisation_insensitively() {
        let link = |name: &str, target: &str| Entry {
            name: name.to_string(),
            id: Oid::ZERO_SHA1,
            kind: EntryKind::Symlink {
                target: target.to_string(),
            },
        };
        let dir = |name: &str, entries: Vec<Entry>| Entry {
            name: name.to_string(),
            id: Oid::ZERO_SHA1,
            kind: EntryKind::Dir(Tree::from_entries(entries)),
        };
        let chain = |folder: &str, via: &str| {
            Tree::from_entries(vec![
                dir(folder, vec![dir("e", vec![link("l", "../..")])]),
                link("esc", &format!("{via}/../../../x")),
            ])
        };
        for (folder, via) in [
            ("d", "d/e/l"),
            ("d", "d/e/L"),
            ("d", "D/E/l"),
            ("caf\u{e9}", "cafe\u{301}/e/l"),
            ("cafe\u{301}", "CAF\u{c9}/e/l"),
        ] {
            let err = chain(folder, via)
                .check_link_chains()
                .expect_err(&format!("{folder} via {via}"));
            assert!(
                format!("{err:#}").contains(&format!("through the symlink {folder}/e/l")),
                "{err:#}"
            );
        }
        // A target that reaches no link in any spelling is fine.
        chain("d", "d/e/m").check_link_chains().unwrap();
    }

    /// Records every listing a walk makes; then, as a stat cache whose records are trusted,
    /// hands them back (with the stat data given) and notes which files it was asked for.
    #[derive(Default)]
    struct Recorder {
        made: std::sync::Mutex<HashMap<String, Listing>>,
        given: HashMap<String, Listing>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl BlobIds for Recorder {
        fn blob_id_at(&self, file: &FileAt, rel: &str, _stat: &StatData) -> anyhow::Result<Oid> {
            self.asked.lock().unwrap().push(rel.to_string());
            hash_file(&file.path())
        }
        fn listing(&self, rel: &str) -> Option<&Listing> {
            self.given.get(rel)
        }
        fn listed(&self, rel: &str, now: Option<Listing>) {
            if let Some(l) = now {
                self.made.lock().unwrap().insert(rel.to_string(), l);
            }
        }
    }

    /// A sub-folder swapped for a symlink to a folder elsewhere, in a folder whose listing is
    /// taken as recorded (as if the swap had kept the folder's stat data, which only a change
    /// within the recorded timestamp tick could): the walk opens sub-folders without following
    /// a symlink, so nothing behind the link is looked at; the link is seen, as a full
    /// listing sees it.
    #[test]
    fn a_recorded_listing_never_leads_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let skill = tmp.path().join("skill");
        fs::create_dir_all(skill.join("ref")).unwrap();
        fs::write(skill.join("SKILL.md"), "---\nname: skill\n---\n").unwrap();
        fs::write(skill.join("ref/a.md"), "alpha\n").unwrap();
        let budget = || Budget::new(Caps::from_env());
        let first = Recorder::default();
        let before = disk_tree_id(&skill, &mut budget(), &first).unwrap();
        let mut given = first.made.into_inner().unwrap();
        assert_eq!(given.len(), 2);
        let away = tmp.path().join("away");
        fs::rename(skill.join("ref"), &away).unwrap();
        symlink(&away, skill.join("ref")).unwrap();
        // Both recorded listings "still match": the skill's and, behind the link, `ref`'s.
        let stat_of = |p: &Path| StatData::of(&fs::symlink_metadata(p).unwrap());
        given.get_mut("").unwrap().stat = stat_of(&skill);
        given.get_mut("ref").unwrap().stat = stat_of(&away);
        let trusting = Recorder {
            given,
            ..Default::default()
        };
        let after = disk_tree_id(&skill, &mut budget(), &trusting).unwrap();
        let asked = trusting.asked.into_inner().unwrap();
        assert!(
            asked.iter().all(|f| f == "SKILL.md"),
            "only the skill's own file was looked at: {asked:?}"
        );
        assert_ne!(after, before);
        assert_eq!(
            after,
            disk_tree_id(&skill, &mut budget(), &HashContents).unwrap(),
            "the link is seen as a full listing sees it"
        );
    }

    #[test]
    fn caps_refuse_big_files() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("big"), vec![0u8; 2048]).unwrap();
        let caps = Caps {
            max_file_bytes: 1024,
            max_skill_bytes: 1 << 30,
            max_skill_files: 10,
        };
        let err = read_disk(tmp.path(), &mut Budget::new(caps)).unwrap_err();
        assert!(format!("{err:#}").contains("file cap"), "{err:#}");
    }

    #[test]
    fn caps_refuse_big_skills_and_many_files() {
        let tmp = tempfile::tempdir().unwrap();
        for n in ["a", "b", "c"] {
            fs::write(tmp.path().join(n), vec![0u8; 600]).unwrap();
        }
        let caps = |bytes, files| Caps {
            max_file_bytes: 1000,
            max_skill_bytes: bytes,
            max_skill_files: files,
        };
        read_disk(tmp.path(), &mut Budget::new(caps(1800, 3))).unwrap();
        let err = read_disk(tmp.path(), &mut Budget::new(caps(1799, 3))).unwrap_err();
        assert!(
            format!("{err:#}").contains("more than 1799 bytes in total"),
            "{err:#}"
        );
        let err = read_disk(tmp.path(), &mut Budget::new(caps(1800, 2))).unwrap_err();
        assert!(format!("{err:#}").contains("more than 2 files"), "{err:#}");
    }
}
