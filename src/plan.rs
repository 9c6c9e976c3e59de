//! The plan: what should be where, compared with the lock and the disk (SPEC 7, 8).
//!
//! A [`Plan`] is a value: it can be printed (`--dry-run`, `--json`) or checked (`--locked`)
//! before anything is written. It also carries the lock that will be written if every step
//! succeeds. Tracked-only: a path is replaced or removed only when the old lock says kst put
//! it there; anything else at a destination is a conflict unless `--force`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::claims::{Claims, Tracked, exclusive};
use crate::config::SkillSource;
use crate::lock::{Lock, LockedSkill, LockedSource};
use crate::resolve::{FailedSource, Repos, ResolvedSource};
use crate::statcache::StatCache;
use crate::tree::{self, Budget, Caps};
use git2::Oid;

pub use crate::item::{Action, Kind, Target};

/// One destination of a skill.
pub type DestAction = crate::item::Dest;

/// One skill, all its destinations. `extra`: for a skill that installs something, its index
/// into the resolved sources and their skills.
pub type Item = crate::item::Item<Option<(usize, usize)>>;

#[derive(Debug)]
pub struct Plan {
    pub items: Vec<Item>,
    /// The lock as it will be if every step succeeds.
    pub lock: Lock,
    /// Sources taken from the lock whose skills could not be read when they had to be
    /// written (a damaged cache repository): resolve them in full and plan again.
    pub reread: Vec<usize>,
}

/// The lock entry a config entry corresponds to: same URL, same request, same sub-dir.
pub fn find_locked<'a>(lock: &'a Lock, entry: &SkillSource) -> Option<&'a LockedSource> {
    crate::lock::find_entry(&lock.sources, &entry.id())
}

/// Where a skill folder is recorded in the lock: relative to the scope root when inside it.
pub fn target(folder: &Path, name: &str, scope_root: &Path) -> Target {
    let abs = folder.join(name);
    let rel = match abs.strip_prefix(scope_root) {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => abs.to_string_lossy().into_owned(),
    };
    Target { abs, rel }
}

/// Does the folder at `path` hold exactly what installing the tree `want` writes? Never follows
/// a symlink. Only the tree id is computed, and with the stat cache of the skills folder `path`
/// is in, files whose stat data have not changed since they were last hashed are not read
/// (statcache.rs): a no-op sync reads no file contents. `installed_id` gives what installing
/// `want` writes when that differs from `want` (gitlinks, odd modes); it may have to list the
/// skill, so it is only called when the folder is not `want`.
pub fn disk_matches(
    path: &Path,
    want: Oid,
    installed_id: &mut dyn FnMut() -> Option<Oid>,
    stats: Option<&StatCache>,
) -> bool {
    // A symlink or anything but a folder at `path` fails to open (never followed): not `want`.
    let mut budget = Budget::new(Caps::from_env());
    let name = path.file_name().and_then(|n| n.to_str());
    let (id, ids) = match (stats, name) {
        (Some(stats), Some(name)) => {
            let ids = stats.skill(name);
            (
                tree::disk_tree_id_nofollow(path, &mut budget, &ids),
                Some(ids),
            )
        }
        _ => (
            tree::disk_tree_id_nofollow(path, &mut budget, &tree::HashContents),
            None,
        ),
    };
    // A folder on disk has no gitlinks and only canonical modes, so it can only equal
    // `want` when that is also what installing writes; `installed_id` (which hashes the
    // whole listing again, and may first have to read it) is needed only when it does not.
    let same = id.is_ok_and(|id| id == want || installed_id() == Some(id));
    if let (true, Some(ids)) = (same, ids) {
        ids.keep();
    }
    same
}

/// The old lock's skills by installed path (the first one listing it, as
/// [`Lock::skill_installed_at`] finds it), so that a plan over many skills is not quadratic.
fn installed_index(lock: &Lock) -> HashMap<&str, &LockedSkill> {
    let mut index = HashMap::new();
    for s in &lock.sources {
        for k in &s.skills {
            for path in &k.installed {
                index.entry(path.as_str()).or_insert(k);
            }
        }
    }
    index
}

/// Every comparison of a destination with the tree it should hold that [`build`] will make,
/// computed up front on all cores: they are independent and mostly file-system calls, and on
/// a no-op sync they are most of the work. Keyed by (source, skill, folder) index.
fn compare_disks(
    inp: &Inputs,
    installed_at: &HashMap<&str, &LockedSkill>,
    stats: &[StatCache],
) -> HashMap<(usize, usize, usize), bool> {
    let mut jobs = Vec::new();
    for (si, rs) in inp.resolved.iter().enumerate() {
        for (ki, skill) in rs.skills.iter().enumerate() {
            for (fi, folder) in inp.folders.iter().enumerate() {
                let t = target(folder, &skill.name, inp.scope_root);
                // Same tree as locked: repaired unless intact. Untracked: adopted if identical.
                let needed = installed_at
                    .get(t.rel.as_str())
                    .is_none_or(|lk| lk.tree == skill.tree_id.to_string());
                if needed {
                    jobs.push(((si, ki, fi), t.abs));
                }
            }
        }
    }
    let next = AtomicUsize::new(0);
    let results: Vec<AtomicBool> = jobs.iter().map(|_| AtomicBool::new(false)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().div_ceil(16));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut repos = Repos::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(((si, ki, fi), path)) = jobs.get(i) else {
                        break;
                    };
                    let rs = &inp.resolved[*si];
                    let skill = &rs.skills[*ki];
                    // A skill not listed yet (fast path) is listed here, on all cores, when its
                    // folder differs: it is about to be written, or holds a gitlink-free copy.
                    let mut installed_id = || {
                        let t = skill.list(&rs.origin, &mut repos).ok()?;
                        Some(t.installed_id())
                    };
                    let same = disk_matches(path, skill.tree_id, &mut installed_id, stats.get(*fi));
                    results[i].store(same, Ordering::Relaxed);
                    // A folder that is not the skill is about to be written (or is in the
                    // way): list the skill here, on all cores, rather than one skill at a
                    // time in `build`. Listing only fills the skill's `OnceLock`; whether the
                    // listing is needed, and what its failure means, is still decided there.
                    if !same {
                        let _ = skill.list(&rs.origin, &mut repos);
                    }
                }
            });
        }
    });
    jobs.into_iter()
        .zip(results)
        .map(|((key, _), same)| (key, same.into_inner()))
        .collect()
}

pub struct Inputs<'a> {
    pub resolved: &'a [ResolvedSource],
    pub failed: &'a [FailedSource],
    pub old: &'a Lock,
    /// Skills folders for this scope, absolute and deduplicated.
    pub folders: &'a [PathBuf],
    pub scope_root: &'a Path,
    /// Every folder kst may manage in this scope (all agents' skills folders and the configured
    /// destination). A lock entry elsewhere is never removed: the lock is a file in the
    /// project, and a hostile one must not be able to make kst delete `~/.ssh`.
    pub manageable: &'a [PathBuf],
    pub force: bool,
}

pub fn build(inp: &Inputs) -> Plan {
    let mut items = Vec::new();
    let mut reread: Vec<usize> = Vec::new();
    let mut lock = Lock {
        mcps: inp.old.mcps.clone(),
        ..Lock::empty()
    };
    // Paths this plan installs to (owner: "url skill") and paths it must leave alone.
    let mut claims: Claims<String> = Claims::default();
    // One stat cache per skills folder (machine-local, beside the git cache; never in the lock).
    let stats: Vec<StatCache> = match crate::dirs::cache_root() {
        Ok(root) => inp
            .folders
            .iter()
            .map(|f| StatCache::for_folder(&root, f))
            .collect(),
        Err(_) => Vec::new(),
    };
    let installed_at = installed_index(inp.old);
    let on_disk = compare_disks(inp, &installed_at, &stats);
    let mut repos = Repos::default();

    for (si, rs) in inp.resolved.iter().enumerate() {
        let locked = find_locked(inp.old, &rs.entry);
        let mut ls = LockedSource {
            url: rs.url.clone(),
            requested: rs.requested.clone(),
            sub_dir: rs.entry.sub_dir.clone(),
            commit: rs.commit.map(|c| c.to_string()),
            signer: rs.signer.clone(),
            skills: Vec::new(),
        };
        let commit = rs.commit.map(|c| c.to_string());
        for (ki, skill) in rs.skills.iter().enumerate() {
            let tree_id = skill.tree_id.to_string();
            let mut installed_id = || {
                let t = skill.list(&rs.origin, &mut repos).ok()?;
                Some(t.installed_id())
            };
            let mut item = Item {
                kind: Kind::Skill,
                name: skill.name.clone(),
                source: rs.url.clone(),
                commit: commit.clone(),
                tree: Some(tree_id.clone()),
                hash: None,
                description: skill.description.clone(),
                dests: Vec::new(),
                error: None,
                warnings: Vec::new(),
                extra: Some((si, ki)),
            };
            let mut installed = Vec::new();
            for (fi, folder) in inp.folders.iter().enumerate() {
                let t = target(folder, &skill.name, inp.scope_root);
                if let Some(owner) = claims.owner(&t.rel) {
                    item.error = Some(format!(
                        "{} is already provided by {owner}; two sources cannot install the same skill name",
                        t.rel
                    ));
                    break;
                }
                let tracked = installed_at.get(t.rel.as_str());
                let disk_ok = || {
                    on_disk.get(&(si, ki, fi)).copied().unwrap_or_else(|| {
                        disk_matches(&t.abs, skill.tree_id, &mut installed_id, stats.get(fi))
                    })
                };
                let tracked = match tracked {
                    None => Tracked::No,
                    Some(lk) if lk.tree == tree_id => Tracked::Same,
                    Some(_) => Tracked::Other,
                };
                let exists = || std::fs::symlink_metadata(&t.abs).is_ok();
                let (action, error) = match exclusive(tracked, disk_ok, exists, inp.force) {
                    Some(action) => (action, None),
                    None => (
                        Action::Broken,
                        Some(format!(
                            "{} exists and was not installed by kst; move it away, or pass --force to replace it",
                            t.abs.display()
                        )),
                    ),
                };
                if error.is_none() {
                    claims.claim(t.rel.clone(), format!("{} ({})", rs.url, skill.name));
                    installed.push(t.rel.clone());
                }
                item.dests.push(DestAction {
                    error,
                    ..DestAction::new(t, action)
                });
            }
            // A skill taken from the lock (resolve.rs's fast path) is read only now, when one of
            // its copies must be written — still before anything is written, with every check
            // of resolution. If it cannot be read it is broken and keeps what it had.
            if item.error.is_none()
                && item.dests.iter().any(|d| d.action.writes())
                && let Err(e) = skill.list(&rs.origin, &mut repos)
            {
                if rs.from_lock && !reread.contains(&si) {
                    reread.push(si);
                }
                keep_what_it_had(locked, &skill.name, &mut claims, &mut ls);
                item.error = Some(format!(
                    "{e} (read from the cache repository for {})",
                    rs.url
                ));
                item.extra = None;
                item.tree = None;
                item.dests.clear();
                items.push(item);
                continue;
            }
            // Recorded even when every destination is a conflict (`installed: []`): the skill
            // is still part of the pinned set, so a `"*"` source does not silently shrink
            // because of a folder in the way on one machine.
            if item.error.is_none() {
                ls.skills.push(LockedSkill {
                    name: skill.name.clone(),
                    path: skill.path.clone(),
                    tree: tree_id,
                    installed,
                });
            }
            items.push(item);
        }
        for b in &rs.broken {
            keep_what_it_had(locked, &b.name, &mut claims, &mut ls);
            items.push(Item {
                kind: Kind::Skill,
                name: b.name.clone(),
                source: rs.url.clone(),
                commit: commit.clone(),
                tree: None,
                hash: None,
                description: None,
                dests: Vec::new(),
                error: Some(b.error.clone()),
                warnings: Vec::new(),
                extra: None,
            });
        }
        lock.sources.push(ls);
    }

    // A source that failed as a whole keeps its lock entries and its installed folders —
    // whatever they were requested by: a typo in a changed `branch:` (or a ref not cached
    // offline) must not uninstall what the previous request installed.
    for f in inp.failed {
        let id = f.entry.id();
        for prev in crate::lock::kept_by_failure(&inp.old.sources, &id) {
            for s in &prev.skills {
                claims.keep(s.installed.iter().cloned());
            }
            if !lock.sources.contains(prev) {
                lock.sources.push(prev.clone());
            }
        }
    }

    // Prune: every path the old lock tracks that nothing claims or keeps.
    for src in &inp.old.sources {
        for s in &src.skills {
            let gone: Vec<&String> = claims
                .pruned(&s.installed)
                .into_iter()
                .filter(|p| {
                    let ok = is_manageable(p, inp.scope_root, inp.manageable);
                    if !ok {
                        tracing::warn!(
                            "the lock lists {p:?}, which is not inside a skills folder; left alone"
                        );
                    }
                    ok
                })
                .collect();
            if gone.is_empty() {
                continue;
            }
            items.push(Item {
                kind: Kind::Skill,
                name: s.name.clone(),
                source: src.url.clone(),
                commit: src.commit.clone(),
                tree: Some(s.tree.clone()),
                hash: None,
                description: None,
                dests: gone
                    .into_iter()
                    .map(|rel| {
                        let target = Target {
                            abs: abs_of(rel, inp.scope_root),
                            rel: rel.clone(),
                        };
                        DestAction::new(target, Action::Removed)
                    })
                    .collect(),
                error: None,
                warnings: Vec::new(),
                extra: None,
            });
        }
    }
    for s in &stats {
        s.save();
    }
    lock.normalise();
    Plan {
        items,
        lock,
        reread,
    }
}

/// The absolute path of a lock's `installed` entry.
/// A skill that cannot be installed now keeps what it had installed before: its lock record
/// and its folders, as they were.
fn keep_what_it_had(
    locked: Option<&LockedSource>,
    name: &str,
    claims: &mut Claims<String>,
    into: &mut LockedSource,
) {
    if let Some(prev) = locked.and_then(|l| l.skills.iter().find(|s| s.name == name)) {
        claims.keep(prev.installed.iter().cloned());
        into.skills.push(prev.clone());
    }
}

pub fn abs_of(rel: &str, scope_root: &Path) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        scope_root.join(p)
    }
}

/// A lock path kst may delete: exactly `<skills folder>/<valid skill name>`, compared as the
/// string kst itself would have written — no trailing `/`, no `.` or `..` or empty components.
/// (`Path::file_name` and `parent` quietly drop a trailing `/` or `/.`, and the OS then follows a
/// symlink named by such a path: string equality is the only safe test.)
pub fn is_manageable(rel: &str, scope_root: &Path, manageable: &[PathBuf]) -> bool {
    let Some((_, name)) = rel.rsplit_once('/') else {
        return false;
    };
    crate::pathsafe::check_skill_name(name).is_ok()
        && manageable
            .iter()
            .any(|folder| target(folder, name, scope_root).rel == rel)
}
