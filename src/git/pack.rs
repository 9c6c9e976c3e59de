//! A commit's files, read straight from the object database: no worktree, no checkout, so no
//! filters, hooks or submodule logic of git's ever run (SPEC 13.5).
//!
//! **Each tree is read once per process** ([`tree_index`]). libgit2 keeps parsed trees in its
//! object cache only up to 4 KiB, so `Tree::get_path("skills/<name>")` re-read, re-inflated,
//! re-hashed and re-parsed the whole `skills` tree for every skill: O(skills × entries), 78×
//! the time for 10× the skills of a monorepo. Paths are instead walked through an index of each
//! tree's entries by name, built the first time that tree is needed and shared by every later
//! lookup (and every thread). It is keyed by the tree's id, so what it says is a fact about
//! that id's content, which libgit2 verified (its strict hash verification stays on: what it
//! costs is now one hash per tree, and it is what tells a damaged cache, SECURITY.md 10).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use git2::{ObjectType, Oid, Repository};

use crate::discover::PackView;
use crate::tree::{self, BlobRef, Budget, Entry, EntryKind, Tree};

/// One entry of an indexed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub name: Box<[u8]>,
    pub id: Oid,
    /// The raw git mode (`0o40000`, `0o100644`, …).
    pub mode: u32,
}

impl IndexEntry {
    fn is_tree(&self) -> bool {
        self.mode == tree::MODE_TREE
    }
    fn is_regular_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// A tree's entries in git's order, with an index by name.
#[derive(Debug)]
pub struct TreeIndex {
    entries: Vec<IndexEntry>,
    by_name: HashMap<Box<[u8]>, usize>,
}

impl TreeIndex {
    pub fn get(&self, name: &[u8]) -> Option<&IndexEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }
}

/// Trees indexed so far in this process, by id.
static TREES: OnceLock<Mutex<HashMap<Oid, Arc<TreeIndex>>>> = OnceLock::new();

/// The tree `id` of `repo`, indexed by name: read from the object database the first time it is
/// asked for in this process, from memory afterwards.
pub fn tree_index(repo: &Repository, id: Oid) -> Result<Arc<TreeIndex>, git2::Error> {
    let trees = TREES.get_or_init(Default::default);
    if let Some(t) = trees.lock().expect("tree index lock").get(&id) {
        return Ok(Arc::clone(t));
    }
    let tree = repo.find_tree(id)?;
    crate::failpoint::count(crate::failpoint::Counter::TreeRead);
    let entries: Vec<IndexEntry> = tree
        .iter()
        .map(|e| IndexEntry {
            name: e.name_bytes().into(),
            id: e.id(),
            mode: e.filemode() as u32,
        })
        .collect();
    let by_name = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let index = Arc::new(TreeIndex { entries, by_name });
    // Two threads may both have read it; either copy is the same.
    trees
        .lock()
        .expect("tree index lock")
        .insert(id, Arc::clone(&index));
    Ok(index)
}

/// The entry at `rel` ('/'-separated, not empty) under the tree `root`, walking each folder on
/// the way through its index; None when a component is missing or not a folder.
pub fn entry_at(
    repo: &Repository,
    root: Oid,
    rel: &str,
) -> Result<Option<IndexEntry>, git2::Error> {
    let mut dir = root;
    let mut parts = rel.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let index = tree_index(repo, dir)?;
        let Some(e) = index.get(part.as_bytes()) else {
            return Ok(None);
        };
        if parts.peek().is_none() {
            return Ok(Some(e.clone()));
        }
        if !e.is_tree() {
            return Ok(None);
        }
        dir = e.id;
    }
    Ok(None)
}

/// The id of `<commit>:<rel>` (`rel` empty: the commit's root tree), None when there is no such
/// path.
pub fn path_id(repo: &Repository, commit: Oid, rel: &str) -> Result<Option<Oid>, git2::Error> {
    let root = repo.find_commit(commit)?.tree_id();
    if rel.split('/').all(str::is_empty) {
        return Ok(Some(root));
    }
    Ok(entry_at(repo, root, rel)?.map(|e| e.id))
}

pub struct GitPack<'r> {
    repo: &'r Repository,
    root: Oid,
}

/// SKILL.md files larger than this are not parsed for frontmatter.
pub const MAX_SKILL_MD: usize = 1 << 20;

impl<'r> GitPack<'r> {
    pub fn new(repo: &'r Repository, commit: Oid) -> Result<Self> {
        let root = repo
            .find_commit(commit)
            .with_context(|| format!("commit {commit} is not in the cache"))?
            .tree_id();
        tree_index(repo, root)
            .with_context(|| format!("cannot read the tree of commit {commit}"))?;
        Ok(GitPack { repo, root })
    }

    /// The blob id of the regular file at `rel` (`git rev-parse <commit>:<rel>`), read from the
    /// trees on the way to it, not from the blob.
    pub fn blob_at(&self, rel: &str) -> Option<Oid> {
        self.entry(rel)
            .filter(IndexEntry::is_regular_file)
            .map(|e| e.id)
    }

    fn entry(&self, rel: &str) -> Option<IndexEntry> {
        if rel.is_empty() {
            return None;
        }
        entry_at(self.repo, self.root, rel).ok().flatten()
    }

    /// The id of the folder at `rel`.
    fn tree_id_at(&self, rel: &str) -> Option<Oid> {
        if rel.is_empty() {
            return Some(self.root);
        }
        self.entry(rel).filter(IndexEntry::is_tree).map(|e| e.id)
    }

    fn list_tree(&self, tree: &git2::Tree, rel: &str, budget: &mut Budget) -> Result<Tree> {
        let odb = self.repo.odb()?;
        let mut entries = Vec::with_capacity(tree.len());
        for e in tree.iter() {
            let name = match std::str::from_utf8(e.name_bytes()) {
                Ok(n) => n.to_string(),
                Err(_) => bail!(
                    "{}: entry name is not valid UTF-8",
                    tree::join_rel(rel, &String::from_utf8_lossy(e.name_bytes()))
                ),
            };
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let mode = e.filemode() as u32;
            let kind = match mode {
                tree::MODE_TREE => {
                    let sub = self
                        .repo
                        .find_tree(e.id())
                        .with_context(|| format!("cannot read folder {child}"))?;
                    // Check names before descending, so a hostile name is reported as itself.
                    crate::pathsafe::check_component(name.as_bytes())
                        .with_context(|| child.clone())?;
                    EntryKind::Dir(self.list_tree(&sub, &child, budget)?)
                }
                tree::MODE_GITLINK => EntryKind::Gitlink,
                tree::MODE_LINK => {
                    // Caps are checked from the object header, before the blob is inflated.
                    let (size, _) = odb.read_header(e.id())?;
                    budget.charge(&child, size as u64)?;
                    let blob = self.repo.find_blob(e.id())?;
                    let Ok(target) = std::str::from_utf8(blob.content()) else {
                        bail!("symlink {child}: target is not valid UTF-8");
                    };
                    EntryKind::Symlink {
                        target: target.to_string(),
                    }
                }
                // 100644, 100755, and the legacy 100664 git still accepts.
                m if m & 0o170000 == 0o100000 => {
                    let (size, kind) = odb.read_header(e.id())?;
                    if kind != ObjectType::Blob {
                        bail!("{child}: expected a blob, found a {kind}");
                    }
                    budget.charge(&child, size as u64)?;
                    EntryKind::File {
                        executable: m & 0o111 != 0,
                        size: size as u64,
                        blob: BlobRef::Git,
                    }
                }
                m => bail!("{child}: unsupported entry mode {m:o}"),
            };
            entries.push(Entry {
                name,
                id: e.id(),
                kind,
            });
        }
        tree::check_entries(rel, &entries)?;
        // Keep git's own tree id: it is what `git rev-parse <commit>:<path>` prints.
        Ok(Tree {
            id: tree.id(),
            entries,
        })
    }
}

impl PackView for GitPack<'_> {
    fn is_file(&self, rel: &str) -> bool {
        self.entry(rel).is_some_and(|e| e.is_regular_file())
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        let Some(t) = self
            .tree_id_at(rel)
            .and_then(|id| tree_index(self.repo, id).ok())
        else {
            return Vec::new();
        };
        let mut out: Vec<String> = t
            .entries()
            .iter()
            .filter(|e| e.is_tree())
            .filter_map(|e| std::str::from_utf8(&e.name).ok().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn files(&self, rel: &str) -> Vec<String> {
        let Some(t) = self
            .tree_id_at(rel)
            .and_then(|id| tree_index(self.repo, id).ok())
        else {
            return Vec::new();
        };
        let mut out: Vec<String> = t
            .entries()
            .iter()
            .filter(|e| e.is_regular_file())
            .filter_map(|e| std::str::from_utf8(&e.name).ok().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        let e = self.entry(rel).filter(IndexEntry::is_regular_file)?;
        let (size, kind) = self.repo.odb().ok()?.read_header(e.id).ok()?;
        if size > MAX_SKILL_MD || kind != ObjectType::Blob {
            return None;
        }
        crate::failpoint::count(crate::failpoint::Counter::BlobRead);
        self.repo.find_blob(e.id).ok().map(|b| b.content().to_vec())
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> Result<Tree> {
        let t = self
            .tree_id_at(rel)
            .and_then(|id| self.repo.find_tree(id).ok())
            .with_context(|| format!("{rel} is not a folder at this commit"))?;
        // Paths inside the listing are relative to the skill, not the repository: symlink
        // targets are judged against the skill's root (a link may not leave the skill).
        self.list_tree(&t, "", budget)
    }
}
