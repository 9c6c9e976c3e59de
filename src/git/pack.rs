//! A commit's files, read straight from the object database: no worktree, no checkout, so no
//! filters, hooks or submodule logic of git's ever run (SPEC 13.5).

use anyhow::{Context, Result, bail};
use git2::{ObjectType, Oid, Repository, TreeEntry};

use crate::discover::PackView;
use crate::tree::{self, BlobRef, Budget, Entry, EntryKind, Tree};

pub struct GitPack<'r> {
    repo: &'r Repository,
    root: git2::Tree<'r>,
}

/// SKILL.md files larger than this are not parsed for frontmatter.
pub const MAX_SKILL_MD: usize = 1 << 20;

impl<'r> GitPack<'r> {
    pub fn new(repo: &'r Repository, commit: Oid) -> Result<Self> {
        let root = repo
            .find_commit(commit)
            .with_context(|| format!("commit {commit} is not in the cache"))?
            .tree()
            .with_context(|| format!("cannot read the tree of commit {commit}"))?;
        Ok(GitPack { repo, root })
    }

    fn entry(&self, rel: &str) -> Option<TreeEntry<'static>> {
        if rel.is_empty() {
            return None;
        }
        self.root.get_path(std::path::Path::new(rel)).ok()
    }

    fn tree_at(&self, rel: &str) -> Option<git2::Tree<'r>> {
        if rel.is_empty() {
            return Some(self.root.clone());
        }
        let e = self.entry(rel)?;
        if e.kind() != Some(ObjectType::Tree) {
            return None;
        }
        self.repo.find_tree(e.id()).ok()
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
        self.entry(rel).is_some_and(|e| {
            e.kind() == Some(ObjectType::Blob) && e.filemode() as u32 & 0o170000 == 0o100000
        })
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        let Some(t) = self.tree_at(rel) else {
            return Vec::new();
        };
        let mut out: Vec<String> = t
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        let e = self.entry(rel)?;
        let (size, _) = self.repo.odb().ok()?.read_header(e.id()).ok()?;
        if size > MAX_SKILL_MD || !self.is_file(rel) {
            return None;
        }
        self.repo
            .find_blob(e.id())
            .ok()
            .map(|b| b.content().to_vec())
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> Result<Tree> {
        let t = self
            .tree_at(rel)
            .with_context(|| format!("{rel} is not a folder at this commit"))?;
        // Paths inside the listing are relative to the skill, not the repository: symlink
        // targets are judged against the skill's root (a link may not leave the skill).
        self.list_tree(&t, "", budget)
    }
}
