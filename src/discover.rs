//! Finding skills inside a pack (SPEC 3): a `SKILL.md` at the discovery root, `<dir>/SKILL.md`
//! for each top-level folder, and `skills/<dir>/SKILL.md`; then picking the configured ones.
//!
//! Discovery reads through [`PackView`], so the same rules apply to a local folder and to a
//! git tree in the object database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::Oid;

use crate::pathsafe;
use crate::request::{Pick, Selection};
use crate::tree::{self, Budget, Tree};

/// Read-only access to a pack's files, by paths relative to the pack's root ('/'-separated).
pub trait PackView {
    fn is_file(&self, rel: &str) -> bool;
    /// Names of the folders directly inside `rel` (`""` for the root), sorted.
    fn subdirs(&self, rel: &str) -> Vec<String>;
    /// Names of the regular files directly inside `rel` (`""` for the root), sorted. Names
    /// that are not UTF-8 are left out, as in [`PackView::subdirs`].
    fn files(&self, rel: &str) -> Vec<String>;
    /// A small file's bytes (a `SKILL.md`), or None if it is not a regular file.
    fn read_file(&self, rel: &str) -> Option<Vec<u8>>;
    /// The full listing of the folder at `rel`, with its tree id, checked against SPEC 13.
    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree>;
    /// What the `SKILL.md` of the skill folder `skill` says: [`SkillMd`]. By default it is read
    /// and parsed; a view may know it without reading (a local source's skill that is what the
    /// lock recorded, [`CachedDiskPack`]).
    fn skill_md(&self, skill: &str) -> SkillMd {
        read_frontmatter(self, &join(skill, "SKILL.md"))
    }
    /// The tree id of the skill folder `rel` when this view took it from the lock without
    /// listing it ([`CachedDiskPack`]): its listing is read only if it must be written.
    fn taken_from_lock(&self, _rel: &str) -> Option<Oid> {
        None
    }
}

/// What discovery takes from a skill's `SKILL.md`: its declared (frontmatter) name, its
/// description, and why it cannot be used, if it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillMd {
    pub declared: Option<String>,
    pub description: Option<String>,
    pub problem: Option<String>,
}

/// A skill found in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// Path of the skill folder inside the pack ("" when the root itself is the skill).
    pub path: String,
    pub description: Option<String>,
    /// The `name` its SKILL.md declares, if any (read once, with the description).
    pub declared: Option<String>,
    /// Why its SKILL.md cannot be used (a frontmatter too big or too deep): the skill is broken.
    pub problem: Option<String>,
}

/// The outcome of selecting skills: those found, and the named ones that were not.
#[derive(Debug, Default)]
pub struct Picked {
    pub found: Vec<Found>,
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
}

use crate::tree::join_rel as join;

/// The largest SKILL.md frontmatter kst parses.
pub const MAX_FRONTMATTER_BYTES: usize = 64 << 10;
/// The deepest nesting of `[`/`{` a SKILL.md frontmatter may have.
pub const MAX_FRONTMATTER_DEPTH: usize = 32;

/// `name` and `description` from a SKILL.md's YAML frontmatter; absent or malformed → None.
/// A frontmatter too big (over 64 KiB) or nested too deep to parse quickly is an error, which
/// makes the skill broken: it is refused before the YAML parser sees it (a 100,000-deep
/// `[[[…` costs that parser minutes). Messages never quote the file.
pub fn frontmatter(text: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok((None, None));
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---")
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
    else {
        return Ok((None, None));
    };
    let end = rest.find("\n---").map(|i| i + 1).unwrap_or(rest.len());
    let yaml = &rest[..end];
    if yaml.len() > MAX_FRONTMATTER_BYTES {
        return Err(format!(
            "SKILL.md frontmatter is larger than {} KiB; kst does not parse it",
            MAX_FRONTMATTER_BYTES >> 10
        ));
    }
    let mut depth = 0usize;
    for b in yaml.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FRONTMATTER_DEPTH {
                    return Err(format!(
                        "SKILL.md frontmatter is nested deeper than {MAX_FRONTMATTER_DEPTH} \
                         levels; kst does not parse it"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(yaml) else {
        return Ok((None, None));
    };
    let get = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
    };
    Ok((get("name"), get("description")))
}

/// Read a SKILL.md's frontmatter through `view`.
fn read_frontmatter<V: PackView + ?Sized>(view: &V, rel: &str) -> SkillMd {
    match view.read_file(rel).map(|b| frontmatter(&b)) {
        None => SkillMd::default(),
        Some(Ok((declared, description))) => SkillMd {
            declared,
            description,
            problem: None,
        },
        Some(Err(e)) => SkillMd {
            problem: Some(e),
            ..SkillMd::default()
        },
    }
}

/// Every skill discoverable under `root`, in a stable order: the root skill, then top-level
/// folders, then `skills/*`. A name seen twice keeps its first place, with a warning.
pub fn discover(
    view: &dyn PackView,
    root: &str,
    fallback_root_name: &str,
) -> (Vec<Found>, Vec<String>) {
    let mut found: Vec<Found> = Vec::new();
    let mut warnings = Vec::new();
    // Where each name was first found, so a pack of n skills costs n lookups, not n²/2
    // comparisons (10,000 skills: 50 million).
    let mut first: std::collections::HashMap<String, usize> = Default::default();
    let mut push = |f: Found, found: &mut Vec<Found>| {
        if let Some(&at) = first.get(&f.name) {
            let prev: &Found = &found[at];
            warnings.push(format!(
                "skill {:?} found at {} and {}; using {}",
                f.name, prev.path, f.path, prev.path
            ));
        } else {
            first.insert(f.name.clone(), found.len());
            found.push(f);
        }
    };
    let root_md = join(root, "SKILL.md");
    if view.is_file(&root_md) {
        let md = view.skill_md(root);
        let name = md
            .declared
            .clone()
            .filter(|n| pathsafe::check_skill_name(n).is_ok())
            .unwrap_or_else(|| fallback_root_name.to_string());
        push(
            Found {
                name,
                path: root.to_string(),
                description: md.description,
                declared: md.declared,
                problem: md.problem,
            },
            &mut found,
        );
    }
    for base in [root.to_string(), join(root, "skills")] {
        for dir in view.subdirs(&base) {
            let path = join(&base, &dir);
            if pathsafe::check_skill_name(&dir).is_err() || !view.is_file(&join(&path, "SKILL.md"))
            {
                continue;
            }
            let md = view.skill_md(&path);
            push(
                Found {
                    name: dir,
                    path,
                    description: md.description,
                    declared: md.declared,
                    problem: md.problem,
                },
                &mut found,
            );
        }
    }
    (found, warnings)
}

/// Apply the config's selection to a pack.
pub fn pick(
    view: &dyn PackView,
    root: &str,
    fallback_root_name: &str,
    selection: &Selection,
) -> Picked {
    let (all, mut warnings) = discover(view, root, fallback_root_name);
    let mut out = Picked::default();
    match selection {
        Selection::All => out.found = all,
        Selection::Named(picks) => {
            // Names are unique in `all` (discover keeps the first of each).
            let by_name: std::collections::HashMap<&str, &Found> =
                all.iter().map(|f| (f.name.as_str(), f)).collect();
            for Pick { name, path } in picks {
                let hit = match path {
                    Some(p) => {
                        let dir = join(&join(root, p), name);
                        view.is_file(&join(&dir, "SKILL.md")).then(|| {
                            let md = view.skill_md(&dir);
                            Found {
                                name: name.clone(),
                                path: dir.clone(),
                                description: md.description,
                                declared: md.declared,
                                problem: md.problem,
                            }
                        })
                    }
                    None => by_name.get(name.as_str()).map(|&f| f.clone()),
                };
                match hit {
                    Some(f) => out.found.push(f),
                    None => out.missing.push(name.clone()),
                }
            }
        }
    }
    // The folder name is the install name; a different frontmatter name confuses agents.
    for f in &out.found {
        if let Some(fm) = &f.declared
            && *fm != f.name
            && !f.path.is_empty()
        {
            warnings.push(format!(
                "skill {:?}: SKILL.md says name {fm:?}; installing as {:?}",
                f.name, f.name
            ));
        }
    }
    out.warnings = warnings;
    out
}

/// A local folder as a pack.
#[derive(Debug)]
pub struct DiskPack {
    pub root: PathBuf,
    /// When set (a config found in the working directory that the user has not trusted), the
    /// folder it may read from (the project, canonical): anything whose real path leaves it,
    /// through a symlink in the pack, is read as absent (SPEC 3 "Trust").
    pub within: Option<PathBuf>,
    /// Folders (relative to `root`) already judged inside or outside `within`: every reader
    /// of a confined pack asks per folder, not per file ([`DiskPack::folder_allowed`]).
    judged: Mutex<HashMap<String, bool>>,
}

impl DiskPack {
    /// The local folder `root` as a pack, confined to `within` when set (see the field).
    pub fn new(root: PathBuf, within: Option<PathBuf>) -> DiskPack {
        DiskPack {
            root,
            within,
            judged: Mutex::new(HashMap::new()),
        }
    }

    /// A local source folder as a pack, checked the same way for every kind: it is a folder,
    /// and its discovery root (`sub_dir`, if any) is a folder inside it. Returns the pack and
    /// the root (`""` for none); `within` as in [`DiskPack::within`].
    pub fn open(
        path: &Path,
        sub_dir: Option<&str>,
        within: Option<&Path>,
    ) -> Result<(DiskPack, String), String> {
        if !path.is_dir() {
            return Err(format!("local source {} is not a folder", path.display()));
        }
        let root = sub_dir.unwrap_or_default().to_string();
        if !root.is_empty() && !path.join(&root).is_dir() {
            return Err(format!(
                "sub-dir {root:?} does not exist in {}",
                path.display()
            ));
        }
        let pack = DiskPack::new(path.to_path_buf(), within.map(Path::to_path_buf));
        Ok((pack, root))
    }

    fn at(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl PackView for DiskPack {
    /// Regular (so not a symlink): its real path is its folder's followed by its name.
    fn is_file(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.at(rel)).is_ok_and(|m| m.is_file())
            && (self.within.is_none() || self.judge(rel, true))
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        if !self.folder_allowed(rel) {
            return Vec::new();
        }
        let mut out: Vec<String> = std::fs::read_dir(self.at(rel))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn files(&self, rel: &str) -> Vec<String> {
        if !self.folder_allowed(rel) {
            return Vec::new();
        }
        let mut out: Vec<String> = std::fs::read_dir(self.at(rel))
            .into_iter()
            .flatten()
            .flatten()
            // Regular files only (the entry's own type: a symlink is not one), so each leads
            // where this folder leads, which was checked above: no real path per file.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        if !self.is_file(rel) {
            return None;
        }
        crate::failpoint::count(crate::failpoint::Counter::FileRead);
        // Bounded like a git pack's SKILL.md; a bigger one is read as having no frontmatter.
        crate::fsx::read_input_bytes(&self.at(rel), crate::git::MAX_SKILL_MD as u64, None).ok()
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree> {
        self.list_with(rel, budget, &tree::HashContents)
    }
}

impl DiskPack {
    /// Whether files and folders directly in `folder` (`""`: the root) may be read: always,
    /// or, when confined, if its real path is inside `within` — judged once per folder
    /// ([`DiskPack::judge`]). A regular file (not a symlink) leads where its folder leads, so
    /// a caller that has a file's stat data asks for its folder.
    pub fn folder_allowed(&self, folder: &str) -> bool {
        self.within.is_none() || self.judge(folder, false)
    }

    /// Judge the plain folders listed in each of `parents` at once (when confined): a folder
    /// the listing says is a folder (its kind from the listing, which never follows a symlink)
    /// is inside when its parent is — one listing of `skills/` instead of an `lstat` of each
    /// of its thousand skills.
    pub fn judge_children_of<'p>(&self, parents: impl Iterator<Item = &'p str>) {
        if self.within.is_none() {
            return;
        }
        let mut seen: Vec<&str> = parents.collect();
        seen.sort_unstable();
        seen.dedup();
        for parent in seen {
            if !self.folder_allowed(parent) {
                continue;
            }
            let Ok(listing) = std::fs::read_dir(self.at(parent)) else {
                continue;
            };
            let plain: Vec<String> = listing
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(|n| join(parent, n)))
                .filter(|rel| !rel.ends_with("/.") && !rel.ends_with("/.."))
                .collect();
            let mut judged = self.judged.lock().expect("judged lock");
            for rel in plain {
                judged.entry(rel).or_insert(true);
            }
        }
    }

    /// Is the real path of the folder (or, when `leaf_is_plain`, the file that is not a
    /// symlink) at `rel` inside `within`? Without resolving every path from `/` (`realpath`
    /// reads each component's link: most of a confined no-op's system calls): the real path
    /// of `a/b`, where `b` is not a symlink, is the real path of `a` followed by `b`, so each
    /// folder is judged once, from its parent's judgement and one `lstat`. A symlink, `.`,
    /// `..` or anything unusual on the way is resolved in full.
    fn judge(&self, rel: &str, leaf_is_plain: bool) -> bool {
        let Some(within) = &self.within else {
            return true;
        };
        if !leaf_is_plain && let Some(&v) = self.judged.lock().expect("judged lock").get(rel) {
            return v;
        }
        let resolve = || {
            crate::failpoint::count(crate::failpoint::Counter::PathResolve);
            std::fs::canonicalize(self.at(rel)).is_ok_and(|r| r.starts_with(within))
        };
        // Judged from its parent only when `rel` names plain folders below the pack's root:
        // an absolute path (its "parent" would be the root), `.`, `..` or an empty component
        // is resolved in full.
        let verdict = if rel.is_empty() || !plain_rel(rel) {
            resolve()
        } else {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let plain_name = !matches!(name, "" | "." | "..");
            let plain =
                leaf_is_plain || std::fs::symlink_metadata(self.at(rel)).is_ok_and(|m| m.is_dir());
            if plain_name && plain && self.judge(parent, false) {
                true
            } else {
                resolve()
            }
        };
        if !leaf_is_plain {
            self.judged
                .lock()
                .expect("judged lock")
                .insert(rel.to_string(), verdict);
        }
        verdict
    }

    /// [`PackView::list`], with each regular file's blob id from `ids`.
    pub fn list_with(
        &self,
        rel: &str,
        budget: &mut Budget,
        ids: &dyn tree::BlobIds,
    ) -> anyhow::Result<Tree> {
        let p = self.at(rel);
        if !self.folder_allowed(rel) {
            anyhow::bail!(
                "{} leads outside the project (through a symlink); a config found in the working \
                 directory that you have not trusted may read only inside its project",
                p.display()
            );
        }
        tree::read_disk_with(&p, budget, ids)
    }
}

/// A local source folder as a pack, listed through a stat cache (SPEC 14: a no-op reads no
/// file contents, for local sources too): a file whose `lstat` data are what they were when its
/// contents were last hashed is not read again, with git's racy rule (`statcache`). What
/// `kst verify` uses is [`DiskPack`], which reads every byte. The cache is written when this
/// value is dropped.
///
/// With the source's lock entry ([`CachedDiskPack::with_lock`]), a skill whose folder lists
/// (through the stat cache) as exactly the tree the lock recorded at that path is not read
/// at all: its `SKILL.md` is the one it was when the lock was written, so its name is the
/// lock's and it had no problem. Any change to the skill (an edited, added or removed file, a
/// renamed folder) gives another tree id, and its `SKILL.md` is read and parsed as usual.
/// What this gives up is what the `SKILL.md` alone says: the description (pass no lock when
/// it is needed, `--json`) and the warning about a frontmatter name that is not the folder's.
pub struct CachedDiskPack {
    /// The folder, confined as [`DiskPack::within`] says (its judgements per folder).
    disk: DiskPack,
    stat: Option<crate::statcache::StatCache>,
    /// The discovery root (`""`, or the sub-dir).
    root: String,
    /// The skills the lock recorded for this source, by path: (name, tree id).
    locked: HashMap<String, (String, Oid)>,
    /// Locked skills' folders as `list_locked` found them, to compare with the lock.
    checked: Mutex<HashMap<String, anyhow::Result<Checked>>>,
    /// Skills taken from the lock (path → tree id): `select` does not list them.
    taken: Mutex<HashMap<String, Oid>>,
}

/// A locked skill's folder, checked without a listing: its tree id (through the stat cache)
/// and whether it holds a regular `SKILL.md`.
struct Checked {
    id: Oid,
    skill_md: bool,
}

/// [`tree::BlobIds`] that notes whether the folder's own `SKILL.md` was among the regular
/// files (so discovery needs no second `lstat` of it).
struct NotingSkillMd<'a> {
    ids: &'a dyn tree::BlobIds,
    seen: std::sync::atomic::AtomicBool,
}

impl tree::BlobIds for NotingSkillMd<'_> {
    fn blob_id_at(
        &self,
        file: &tree::FileAt,
        rel: &str,
        stat: &crate::statcache::StatData,
    ) -> anyhow::Result<Oid> {
        if rel == "SKILL.md" {
            self.seen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.ids.blob_id_at(file, rel, stat)
    }
    fn listing(&self, rel: &str) -> Option<&tree::Listing> {
        self.ids.listing(rel)
    }
    fn before_listing(&self) {
        self.ids.before_listing()
    }
    fn listed(&self, rel: &str, now: Option<tree::Listing>) {
        self.ids.listed(rel, now)
    }
}

impl CachedDiskPack {
    /// [`DiskPack::open`], with the folder's stat cache under the cache root (none if there is
    /// no cache root: then every file is hashed).
    pub fn open(
        path: &Path,
        sub_dir: Option<&str>,
        within: Option<&Path>,
    ) -> Result<(CachedDiskPack, String), String> {
        let (disk, root) = DiskPack::open(path, sub_dir, within)?;
        let stat = crate::dirs::cache_root()
            .ok()
            .map(|cache| crate::statcache::StatCache::for_source(&cache, &disk.root));
        let pack = CachedDiskPack {
            disk,
            stat,
            root: root.clone(),
            locked: HashMap::new(),
            checked: Mutex::new(HashMap::new()),
            taken: Mutex::new(HashMap::new()),
        };
        Ok((pack, root))
    }

    /// Take a skill from the lock when it is unchanged (see the type's doc). `locked` must be
    /// the lock entry of the same config entry (same folder, same sub-dir), so that its paths
    /// are this pack's. A lock record is ignored (that skill is read) unless its name is a
    /// valid skill name, and the folder's own name for any skill but the root one (whose name
    /// is its frontmatter's), and its tree id is well formed.
    pub fn with_lock(mut self, locked: &crate::lock::LockedSource) -> Self {
        let root = self.root.as_str();
        self.locked = locked
            .skills
            .iter()
            .filter(|k| pathsafe::check_skill_name(&k.name).is_ok())
            .filter(|k| k.path == root || k.path.rsplit('/').next() == Some(k.name.as_str()))
            // A path discovery could have found: the root, or plain folders under it (the
            // lock is a file in the project: never an absolute path, `..` or `.`).
            .filter(|k| {
                k.path == root
                    || (plain_rel(&k.path)
                        && (root.is_empty()
                            || k.path
                                .strip_prefix(root)
                                .is_some_and(|r| r.starts_with('/'))))
            })
            .filter_map(|k| {
                let tree = crate::oid::parse(&k.tree)?;
                Some((k.path.clone(), (k.name.clone(), tree)))
            })
            .collect();
        self.list_locked();
        self
    }

    /// Check every skill the lock recorded, on all cores, for [`PackView::skill_md`] to compare
    /// with the lock: its tree id only, through the stat cache, as an installed folder is
    /// compared (`tree::disk_tree_id`: no listing, no name checks — an equal id means the
    /// recorded tree's exact entries; a skill that must be written is listed with every check
    /// first, `resolve::ResolvedSkill::list`). On a no-op these walks (an `lstat` of every
    /// source file) are most of a local source's work, and they are independent. A path that
    /// is no longer a folder is left to discovery.
    fn list_locked(&self) {
        let paths: Vec<&str> = self.locked.keys().map(String::as_str).collect();
        self.disk.judge_children_of(
            paths
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.rsplit_once('/').map_or("", |(d, _)| d)),
        );
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(paths.len().div_ceil(16));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break };
                        let checked = self.check(path);
                        self.checked
                            .lock()
                            .expect("checked lock")
                            .insert(path.to_string(), checked);
                    }
                });
            }
        });
    }

    /// The tree id of the folder `rel`, through the stat cache (a complete walk updates its
    /// section), and whether it holds a regular `SKILL.md`.
    fn check(&self, rel: &str) -> anyhow::Result<Checked> {
        if !self.inside(rel) {
            anyhow::bail!("{} leads outside the project", self.disk.at(rel).display());
        }
        let mut budget = Budget::new(tree::Caps::from_env());
        let at = self.disk.at(rel);
        let Some(stat) = &self.stat else {
            let noting = NotingSkillMd {
                ids: &tree::HashContents,
                seen: Default::default(),
            };
            let id = tree::disk_tree_id(&at, &mut budget, &noting)?;
            return Ok(Checked {
                id,
                skill_md: noting.seen.into_inner(),
            });
        };
        let ids = stat.skill(rel);
        let noting = NotingSkillMd {
            ids: &ids,
            seen: Default::default(),
        };
        let id = tree::disk_tree_id(&at, &mut budget, &noting)?;
        let skill_md = noting.seen.into_inner();
        ids.keep();
        Ok(Checked { id, skill_md })
    }

    /// The listing of `rel` through the stat cache; a complete listing updates its section.
    fn list_now(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree> {
        if !self.inside(rel) {
            anyhow::bail!(
                "{} leads outside the project (through a symlink); a config found in the working \
                 directory that you have not trusted may read only inside its project",
                self.disk.at(rel).display()
            );
        }
        let Some(stat) = &self.stat else {
            return self.disk.list(rel, budget);
        };
        let ids = stat.skill(rel);
        let tree = self.disk.list_with(rel, budget, &ids)?;
        // Only a complete listing updates the skill's section.
        ids.keep();
        Ok(tree)
    }

    /// Whether the folder `rel` may be read ([`DiskPack::folder_allowed`]).
    fn inside(&self, rel: &str) -> bool {
        self.disk.folder_allowed(rel)
    }
}

/// A relative path of plain names: not absolute, no `.`, `..` or empty component.
fn plain_rel(rel: &str) -> bool {
    rel.split('/').all(|c| !matches!(c, "" | "." | ".."))
}

/// Confined as [`DiskPack`] is (`within`), judged by [`CachedDiskPack::inside`].
impl PackView for CachedDiskPack {
    fn is_file(&self, rel: &str) -> bool {
        // A locked skill's SKILL.md, asked by discovery right after `list_locked` walked its
        // folder: the walk says, without another lstat.
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name == "SKILL.md"
            && let Some(Ok(c)) = self.checked.lock().expect("checked lock").get(dir)
        {
            return c.skill_md;
        }
        self.disk.is_file(rel)
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        if !self.inside(rel) {
            return Vec::new();
        }
        self.disk.subdirs(rel)
    }

    /// Listed as regular files (never symlinks), so each is inside when its folder is.
    fn files(&self, rel: &str) -> Vec<String> {
        if !self.inside(rel) {
            return Vec::new();
        }
        self.disk.files(rel)
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        if !self.is_file(rel) {
            return None;
        }
        self.disk.read_file(rel)
    }

    /// A skill at a path the lock recorded is checked first (`list_locked`); if its tree id
    /// is the locked one, its `SKILL.md` is not read and it is taken from the lock.
    fn skill_md(&self, skill: &str) -> SkillMd {
        if let Some((name, tree)) = self.locked.get(skill) {
            let same = self
                .checked
                .lock()
                .expect("checked lock")
                .entry(skill.to_string())
                .or_insert_with(|| self.check(skill))
                .as_ref()
                .is_ok_and(|c| c.id == *tree);
            if same {
                self.taken
                    .lock()
                    .expect("taken lock")
                    .insert(skill.to_string(), *tree);
                // The root skill is named by its frontmatter: as the lock recorded it. Any
                // other is named by its folder, which is the lock's name (`with_lock`).
                return SkillMd {
                    declared: (skill == self.root).then(|| name.clone()),
                    ..SkillMd::default()
                };
            }
        }
        read_frontmatter(self, &join(skill, "SKILL.md"))
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree> {
        self.list_now(rel, budget)
    }

    fn taken_from_lock(&self, rel: &str) -> Option<Oid> {
        self.taken.lock().expect("taken lock").get(rel).copied()
    }
}

impl CachedDiskPack {
    /// Save the stat cache (as dropping does) and hand it over, for reading what it recorded,
    /// with the folder as a pack (its confinement judgements made so far kept).
    pub fn into_parts(mut self) -> (DiskPack, Option<crate::statcache::StatCache>) {
        let stat = self.stat.take();
        if let Some(s) = &stat {
            s.save();
        }
        let disk = std::mem::replace(&mut self.disk, DiskPack::new(PathBuf::new(), None));
        (disk, stat)
    }
}

impl Drop for CachedDiskPack {
    fn drop(&mut self) {
        if let Some(stat) = &self.stat {
            stat.save();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn discovery_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for d in ["a", "skills/b", "skills/a", "not-a-skill"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(
            r.join("a/SKILL.md"),
            "---\nname: a\ndescription: first\n---\n",
        )
        .unwrap();
        fs::write(r.join("skills/a/SKILL.md"), "---\nname: a\n---\n").unwrap();
        fs::write(r.join("skills/b/SKILL.md"), "---\nname: bee\n---\n").unwrap();
        let view = DiskPack::new(r.to_path_buf(), None);
        let (found, warnings) = discover(&view, "", "pack");
        let names: Vec<_> = found
            .iter()
            .map(|f| (f.name.as_str(), f.path.as_str()))
            .collect();
        assert_eq!(names, [("a", "a"), ("b", "skills/b")]);
        assert_eq!(found[0].description.as_deref(), Some("first"));
        assert_eq!(warnings.len(), 1);

        let picked = pick(
            &view,
            "",
            "pack",
            &Selection::Named(vec![
                Pick {
                    name: "b".into(),
                    path: None,
                },
                Pick {
                    name: "zzz".into(),
                    path: None,
                },
            ]),
        );
        assert_eq!(picked.found.len(), 1);
        assert_eq!(picked.missing, ["zzz"]);
        assert!(picked.warnings.iter().any(|w| w.contains("bee")));
    }

    /// The confined pack's cheaper judgement (one `lstat` per folder, memoised) agrees with
    /// resolving every path in full, for plain folders, symlinks leading out, symlinks staying
    /// in, `..` and missing paths.
    #[test]
    fn cached_confinement_judges_as_the_full_resolution() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("project");
        let outside = tmp.path().join("outside");
        for d in [
            "project/pack/skills/a/ref",
            "project/pack/other/c",
            "outside/x",
        ] {
            fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        for f in [
            "project/pack/skills/a/SKILL.md",
            "project/pack/skills/a/ref/r.md",
            "project/pack/other/c/SKILL.md",
            "outside/x/SKILL.md",
            "outside/SKILL.md",
        ] {
            fs::write(tmp.path().join(f), "---\nname: x\n---\n").unwrap();
        }
        let pack = project.join("pack");
        std::os::unix::fs::symlink(&outside, pack.join("skills/out")).unwrap();
        std::os::unix::fs::symlink("../other/c", pack.join("skills/in")).unwrap();
        std::os::unix::fs::symlink(&outside, pack.join("away")).unwrap();
        let within = fs::canonicalize(&project).unwrap();
        // The reference: every path resolved in full, then read unconfined.
        let open = DiskPack::new(pack.clone(), None);
        let inside =
            |rel: &str| fs::canonicalize(pack.join(rel)).is_ok_and(|r| r.starts_with(&within));
        let cached = CachedDiskPack {
            disk: DiskPack::new(pack.clone(), Some(within.clone())),
            stat: None,
            root: String::new(),
            locked: HashMap::new(),
            checked: Mutex::new(HashMap::new()),
            taken: Mutex::new(HashMap::new()),
        };
        let rels = [
            "",
            "skills",
            "skills/a",
            "skills/a/SKILL.md",
            "skills/a/ref",
            "skills/out",
            "skills/out/x",
            "skills/out/x/SKILL.md",
            "skills/out/SKILL.md",
            "skills/in",
            "skills/in/SKILL.md",
            "away",
            "away/x/SKILL.md",
            "skills/a/../a/SKILL.md",
            "skills/a/../../away/SKILL.md",
            "skills/missing",
            "skills/missing/SKILL.md",
            "skills//a",
            "skills/./a/SKILL.md",
        ];
        // Absolute paths (a lock is a file in the project and may name one): never judged
        // from "their parent", the pack's root.
        let outside_x = outside.join("x").to_str().unwrap().to_string();
        let outside_md = outside.join("x/SKILL.md").to_str().unwrap().to_string();
        let absolute = [outside_x.as_str(), outside_md.as_str(), "/"];
        let rels: Vec<&str> = rels.into_iter().chain(absolute).collect();
        // Twice: the second round answers from the memo. The third and fourth with every
        // folder of the pack's root, `skills/` and `skills/a` judged from their listings first
        // (what `list_locked` does).
        for round in 0..4 {
            if round == 2 {
                cached.disk.judged.lock().unwrap().clear();
                cached
                    .disk
                    .judge_children_of(["", "skills", "skills/a", "away"].into_iter());
            }
            for &rel in &rels {
                let ok = inside(rel);
                assert_eq!(
                    cached.is_file(rel),
                    open.is_file(rel) && ok,
                    "round {round}: is_file({rel:?})"
                );
                let (dirs, files) = if ok {
                    (open.subdirs(rel), open.files(rel))
                } else {
                    (Vec::new(), Vec::new())
                };
                assert_eq!(cached.subdirs(rel), dirs, "round {round}: subdirs({rel:?})");
                assert_eq!(cached.files(rel), files, "round {round}: files({rel:?})");
                // The confined pack itself answers as the pack over it does.
                assert_eq!(
                    cached.disk.subdirs(rel),
                    dirs,
                    "round {round}: disk {rel:?}"
                );
                let caps = tree::Caps::from_env();
                let listed = ok
                    .then(|| open.list(rel, &mut Budget::new(caps)).map(|t| t.id).ok())
                    .flatten();
                assert_eq!(
                    cached.list(rel, &mut Budget::new(caps)).map(|t| t.id).ok(),
                    listed,
                    "round {round}: list({rel:?})"
                );
            }
        }
        assert!(!cached.is_file("skills/out/x/SKILL.md"));
        assert!(cached.is_file("skills/in/SKILL.md"));
        assert!(!cached.inside(&outside_x), "an absolute path outside");
    }

    #[test]
    fn frontmatter_parsing() {
        assert_eq!(
            frontmatter(b"---\nname: x\ndescription: y z\n---\nbody"),
            Ok((Some("x".into()), Some("y z".into())))
        );
        assert_eq!(frontmatter(b"no frontmatter"), Ok((None, None)));
        assert_eq!(frontmatter(b"---\n: : bad\n"), Ok((None, None)));
    }

    #[test]
    fn huge_or_deep_frontmatter_is_refused_before_parsing() {
        let deep = format!("---\nname: x\ndescription: {}\n---\n", "[".repeat(100_000));
        let e = frontmatter(deep.as_bytes()).unwrap_err();
        assert!(e.contains("larger than 64 KiB"), "{e}");
        // Under the size cap but deep: refused by the depth check, not parsed.
        let deep = format!("---\nname: x\ndescription: {}\n---\n", "[".repeat(60_000));
        let e = frontmatter(deep.as_bytes()).unwrap_err();
        assert!(e.contains("nested deeper than 32"), "{e}");
        assert!(!e.contains("[["), "{e}");
        // Ordinary brackets are fine.
        assert_eq!(
            frontmatter(b"---\nname: x\ndescription: use [a] or {b}\ntags: [[1, 2], [3]]\n---\n"),
            Ok((Some("x".into()), Some("use [a] or {b}".into())))
        );
    }
}
