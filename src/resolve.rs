//! From a config entry to concrete content: which commit (git) or which files (local), and the
//! listing and tree id of every selected skill.
//!
//! Resolution reads; it never writes to a destination. Its output, [`ResolvedSource`], is what
//! the plan compares against the lock and the disk.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use git2::Oid;

use crate::config::{Pick, Selection, SkillSource};
use crate::discover::{self, PackView};
use crate::git::{Cache, FetchMode, GitPack, Progress, looks_damaged};
use crate::lock::{LockedSource, Requested};
use crate::source::GitUrl;
use crate::source::Source;
use crate::tree::{Budget, Caps, Tree};

/// Where a resolved source's bytes are read from when installing.
#[derive(Debug, Clone)]
pub enum Origin {
    Local(PathBuf),
    /// A bare repository in the cache, and the commit to install from it.
    Git {
        db: PathBuf,
        commit: Oid,
    },
}

pub use crate::pin::Fetch;

#[derive(Debug)]
pub struct ResolvedSkill {
    pub name: String,
    pub path: String,
    /// From SKILL.md, when the skill was read in this run (not on the fast path from the lock).
    pub description: Option<String>,
    /// Git's tree id of `path`: listed, or (fast path) the locked id.
    pub tree_id: Oid,
    /// The listing: read at resolution, or — for a skill taken from the lock — on first need
    /// ([`ResolvedSkill::list`]), i.e. only when something must be written.
    listing: OnceLock<Result<Tree, String>>,
    /// For a local skill taken from the lock: the pack's folder and the folder it may read
    /// from (`DiskPack`), with the folder's stat cache, to list it on first need.
    local: Option<std::sync::Arc<LocalPack>>,
}

/// A local source folder whose skills taken from the lock are listed on first need, with the
/// stat cache that vouched for them (as loaded at the start of the run): a file whose `lstat`
/// data are the recorded ones is not read and hashed again before its copy is written (the
/// offline re-sync of a local folder, issue 15); any other file is.
pub struct LocalPack {
    disk: discover::DiskPack,
    stat: Option<crate::statcache::StatCache>,
}

impl std::fmt::Debug for LocalPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPack")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl ResolvedSkill {
    fn listed(name: String, path: String, description: Option<String>, tree: Tree) -> Self {
        ResolvedSkill {
            name,
            path,
            description,
            tree_id: tree.id,
            listing: OnceLock::from(Ok(tree)),
            local: None,
        }
    }

    /// A skill of a locked commit, known from the lock alone: nothing is read.
    fn from_lock(name: String, path: String, tree_id: Oid) -> Self {
        ResolvedSkill {
            name,
            path,
            description: None,
            tree_id,
            listing: OnceLock::new(),
            local: None,
        }
    }

    /// The listing, if it has been read (successfully).
    pub fn listing(&self) -> Option<&Tree> {
        self.listing.get().and_then(|r| r.as_ref().ok())
    }

    /// The listing, reading it from the cache repository if it was not read yet: with every
    /// SPEC 13 check of resolution, and its id must be the locked one. `repos` keeps the
    /// caller's open repositories (libgit2 handles are per thread).
    pub fn list(&self, origin: &Origin, repos: &mut Repos) -> Result<&Tree, String> {
        self.listing
            .get_or_init(|| {
                if let Some(pack) = &self.local {
                    return list_local(pack, &self.path, self.tree_id)
                        .map_err(|e| format!("skill {:?}: {e:#}", self.name));
                }
                let Origin::Git { db, commit } = origin else {
                    return Err("a local skill without a listing".to_string());
                };
                repos
                    .get(db)
                    .and_then(|repo| {
                        let pack = GitPack::new(repo, *commit)?;
                        let tree = pack.list(&self.path, &mut Budget::new(Caps::from_env()))?;
                        tree.check_link_chains()?;
                        anyhow::ensure!(
                            tree.id == self.tree_id,
                            "{commit}:{} is tree {}, but the lock says {}",
                            self.path,
                            tree.id,
                            self.tree_id
                        );
                        Ok(tree)
                    })
                    .map_err(|e| format!("skill {:?}: {e:#}", self.name))
            })
            .as_ref()
            .map_err(String::clone)
    }
}

/// A local skill taken from the lock, listed now that it must be written: every check of
/// resolution (SPEC 13, the confinement of an untrusted config), and it must still be the tree
/// that was compared.
fn list_local(pack: &LocalPack, path: &str, want: Oid) -> anyhow::Result<Tree> {
    let mut budget = Budget::new(Caps::from_env());
    let tree = match &pack.stat {
        Some(stat) => pack.disk.list_with(path, &mut budget, &stat.skill(path))?,
        None => pack.disk.list(path, &mut budget)?,
    };
    tree.check_link_chains()?;
    anyhow::ensure!(
        tree.id == want,
        "{} changed while kst was reading it; run kst sync again",
        path
    );
    Ok(tree)
}

/// Cache repositories opened by one thread, by path.
#[derive(Default)]
pub struct Repos(Vec<(PathBuf, git2::Repository)>);

impl Repos {
    fn get(&mut self, db: &Path) -> anyhow::Result<&git2::Repository> {
        let at = match self.0.iter().position(|(p, _)| p == db) {
            Some(at) => at,
            None => {
                let repo = crate::git::GitDatabase {
                    path: db.to_path_buf(),
                }
                .open()?;
                self.0.push((db.to_path_buf(), repo));
                self.0.len() - 1
            }
        };
        Ok(&self.0[at].1)
    }
}

/// A skill that was asked for and cannot be installed.
#[derive(Debug, Clone)]
pub struct BrokenSkill {
    pub name: String,
    pub error: String,
    /// The skill could not be read because the cache repository is damaged (not because the
    /// skill itself is bad): the source is then fetched afresh.
    pub damaged: bool,
}

#[derive(Debug)]
pub struct ResolvedSource {
    pub entry: SkillSource,
    pub url: String,
    pub requested: Requested,
    pub commit: Option<Oid>,
    /// The fingerprint of the key that signed the pin (`trust:`, SPEC 16).
    pub signer: Option<String>,
    pub origin: Origin,
    pub fetch: Fetch,
    pub skills: Vec<ResolvedSkill>,
    pub broken: Vec<BrokenSkill>,
    pub warnings: Vec<String>,
    /// Taken from the lock without reading the skills (the warm fast path): a skill that then
    /// cannot be read when it must be written sends the source back through [`git`] with
    /// `full`, which moves a damaged cache repository aside and fetches again.
    pub from_lock: bool,
    /// A local source: every path and folder tree its reading looked at, for the whole-run
    /// memo (`runmemo.rs`); None for a git source.
    pub observed: Option<crate::runmemo::Observed>,
}

/// A source that could not be resolved at all; its installed skills are kept as they are.
#[derive(Debug)]
pub struct FailedSource {
    /// Boxed: the config entry is large, and this is the error side of every resolver's result.
    pub entry: Box<SkillSource>,
    pub url: String,
    pub error: String,
}

/// Pick and list skills from a pack view.
pub fn select(
    view: &dyn PackView,
    root: &str,
    fallback_name: &str,
    selection: &Selection,
) -> (Vec<ResolvedSkill>, Vec<BrokenSkill>, Vec<String>) {
    let picked = discover::pick(view, root, fallback_name, selection);
    let mut skills = Vec::new();
    let mut broken: Vec<BrokenSkill> = picked
        .missing
        .iter()
        .map(|name| BrokenSkill {
            name: name.clone(),
            error: format!(
                "skill {name:?} not found under {}",
                if root.is_empty() {
                    "the pack root"
                } else {
                    root
                }
            ),
            damaged: false,
        })
        .collect();
    let caps = Caps::from_env();
    for f in picked.found {
        // Vouched for by the lock without a listing (a local skill whose folder is the locked
        // tree): listed only if it must be written.
        if let Some(id) = view.taken_from_lock(&f.path) {
            skills.push(ResolvedSkill::from_lock(f.name, f.path, id));
            continue;
        }
        if let Some(problem) = &f.problem {
            broken.push(BrokenSkill {
                name: f.name.clone(),
                damaged: false,
                error: format!("skill {:?}: {problem}", f.name),
            });
            continue;
        }
        let listed = view
            .list(&f.path, &mut Budget::new(caps))
            .and_then(|t| t.check_link_chains().map(|()| t));
        match listed {
            Ok(tree) => skills.push(ResolvedSkill::listed(f.name, f.path, f.description, tree)),
            Err(e) => broken.push(BrokenSkill {
                name: f.name.clone(),
                damaged: looks_damaged(&e),
                error: format!("skill {:?}: {e:#}", f.name),
            }),
        }
    }
    (skills, broken, picked.warnings)
}

/// `"*"` git sources stay frozen to the set of skills in their lock entry until `--update`.
pub fn frozen_selection(
    entry: &SkillSource,
    locked: Option<&LockedSource>,
    update: bool,
) -> Selection {
    // Local folders have no pin: they are read as they are now, so `"*"` is what is there now.
    let local = matches!(entry.source, Source::Local { .. });
    match (&entry.selection, locked) {
        (Selection::All, Some(l)) if !update && !local => Selection::Named(
            l.skills
                .iter()
                .map(|s| Pick {
                    name: s.name.clone(),
                    path: None,
                })
                .collect(),
        ),
        (s, _) => s.clone(),
    }
}

/// Resolve a local-folder source: re-read on every sync.
/// `within`: the folder the source may be read from, when confined (an untrusted config found
/// in the working directory may read only inside its project; see [`DiskPack::within`]).
/// `descriptions`: every skill's description is wanted (`--json`); otherwise a skill that is
/// exactly what its lock entry recorded is taken from the lock without reading its `SKILL.md`
/// ([`discover::CachedDiskPack::with_lock`]).
pub fn local(
    entry: &SkillSource,
    locked: Option<&LockedSource>,
    update: bool,
    within: Option<&Path>,
    descriptions: bool,
) -> Result<ResolvedSource, FailedSource> {
    let Source::Local { spelled, path } = &entry.source else {
        unreachable!("local() called on a git source")
    };
    let fail = |error: String| FailedSource {
        entry: Box::new(entry.clone()),
        url: spelled.clone(),
        error,
    };
    let (mut view, root) = discover::CachedDiskPack::open(path, entry.sub_dir.as_deref(), within)
        .map_err(|e| fail(format!("{}: {e}", entry.at)))?;
    if let Some(l) = locked.filter(|_| !descriptions) {
        view = view.with_lock(l);
    }
    let fallback = root_name(&root, spelled);
    let selection = frozen_selection(entry, locked, update);
    // What discovery looks at is noted, for the whole-run memo's witnesses.
    let noting = crate::runmemo::Noting::new(&view);
    let (mut skills, broken, warnings) = select(&noting, &root, &fallback, &selection);
    let observed = Some(noting.finish(path, []));
    // Saved now; kept (as loaded) for listing the skills taken from the lock, with the pack's
    // folders as already judged inside the project or not.
    let (disk, stat) = view.into_parts();
    let unlisted = skills.iter().any(|s| s.listing.get().is_none());
    if unlisted {
        let pack = std::sync::Arc::new(LocalPack { disk, stat });
        for s in skills.iter_mut().filter(|s| s.listing.get().is_none()) {
            s.local = Some(pack.clone());
        }
    }
    Ok(ResolvedSource {
        entry: entry.clone(),
        url: spelled.clone(),
        requested: Requested::Local,
        commit: None,
        signer: None,
        origin: Origin::Local(path.clone()),
        fetch: Fetch::Local,
        skills,
        broken,
        warnings,
        from_lock: false,
        observed,
    })
}

/// The name a root `SKILL.md` without a usable frontmatter name installs as: the last
/// component of the sub-dir, else of the source.
pub fn root_name(root: &str, source: &str) -> String {
    let last = if root.is_empty() { source } else { root };
    let last = last
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("skill");
    let last = last.strip_suffix(".git").unwrap_or(last);
    if crate::pathsafe::check_skill_name(last).is_ok() {
        last.to_string()
    } else {
        "skill".to_string()
    }
}

/// Resolve a git source: pick the commit (locked, or resolved now), fetch what is missing,
/// and list the selected skills from the object database. A cache repository that turns out
/// to be unreadable is moved aside and fetched once more.
#[allow(clippy::too_many_arguments)]
pub fn git(
    entry: &SkillSource,
    url: &GitUrl,
    locked: Option<&LockedSource>,
    update: bool,
    full: bool,
    cache: &Cache,
    mode: FetchMode,
    progress: Progress,
) -> Result<ResolvedSource, FailedSource> {
    let root = entry.sub_dir.clone().unwrap_or_default();
    let pinning = crate::pin::GitEntry {
        url,
        reference: &entry.reference,
        sub_dir: entry.sub_dir.as_deref(),
        locked: locked.map(|l| l as _),
        update,
        trust: entry.trust.as_ref(),
    };
    // The fast path: a locked commit already in the cache, and every selected skill in the
    // lock. A commit's content cannot change, so the lock already says what each skill is;
    // only the commit and the trees *above* each skill are read, to prove the lock's tree ids
    // are the commit's (`git rev-parse <commit>:<path>`) — a lock edited to match an edited
    // install must not pass — never a SKILL.md or a skill's own listing. A skill is listed
    // later only if it must be written (plan.rs), and that listing is checked against the
    // locked tree id. Anything unreadable here falls back to the full path, which moves a
    // damaged cache repository aside and fetches again.
    let fast = |repo: &git2::Repository, commit: Oid, _: &Requested| {
        let l = locked.filter(|_| !full)?;
        let skills = from_lock(entry, l, &root)?;
        locked_trees_are_the_commits(repo, commit, &skills).then_some((
            skills,
            Vec::new(),
            Vec::new(),
            true,
        ))
    };
    let read = |r: crate::pin::Reading| {
        let (res, pack) = (r.resolution, r.pack);
        let selection = frozen_selection(entry, locked, update);
        let (skills, broken, warnings) = select(
            pack,
            r.root,
            &root_name(r.root, url.canonical().as_str()),
            &selection,
        );
        // A skill unreadable because the cache repository is damaged (a corrupt blob) makes
        // the whole source go round again: moved aside and fetched afresh.
        if let Some(b) = broken.iter().find(|b| b.damaged) {
            return Err((anyhow::anyhow!("{}", b.error), true));
        }
        // Moving the pin (`--update`, a moved default) to a commit that lacks a skill the lock
        // has installed would leave that skill pinned to a commit that does not contain it.
        // Keep the whole source at its locked commit instead, and say what to do.
        if let Some(l) = locked {
            let moved = l.commit.as_deref() != Some(res.commit.to_string().as_str());
            let lost: Vec<&str> = broken
                .iter()
                .filter(|b| l.skills.iter().any(|s| s.name == b.name))
                .map(|b| b.name.as_str())
                .collect();
            if moved && !lost.is_empty() {
                return Err((
                    anyhow::anyhow!(
                        "{} no longer exist(s) at {} ({}); the source stays at its locked commit {}. \
                         Remove {} from the config to move on, or pin a ref that still has it",
                        lost.join(", "),
                        res.commit,
                        res.requested,
                        l.commit.as_deref().unwrap_or("-"),
                        if lost.len() == 1 { "it" } else { "them" }
                    ),
                    false,
                ));
            }
        }
        Ok((skills, broken, warnings, false))
    };
    let (pin, (skills, broken, mut warnings, from_lock), repaired) =
        crate::pin::git(&pinning, cache, mode, progress, fast, read).map_err(|e| FailedSource {
            entry: Box::new(entry.clone()),
            url: url.canonical().to_string(),
            error: format!("{}: {}: {e:#}", entry.at, url.canonical()),
        })?;
    warnings.splice(0..0, repaired);
    Ok(ResolvedSource {
        entry: entry.clone(),
        url: url.canonical().to_string(),
        requested: pin.requested,
        commit: Some(pin.commit),
        signer: pin.signer,
        origin: Origin::Git {
            db: cache.database(url.canonical()).path.clone(),
            commit: pin.commit,
        },
        fetch: pin.fetch,
        skills,
        broken,
        warnings,
        from_lock,
        observed: None,
    })
}

/// Does every skill's locked tree id equal `<commit>:<path>` in the cache? Reads the commit and
/// the trees on the way to each skill, each once (`git::path_id`), not the skills' own trees.
fn locked_trees_are_the_commits(
    repo: &git2::Repository,
    commit: Oid,
    skills: &[ResolvedSkill],
) -> bool {
    skills
        .iter()
        .all(|s| crate::git::path_id(repo, commit, &s.path).is_ok_and(|id| id == Some(s.tree_id)))
}

/// The selected skills of a source whose lock entry answers its config entry, from the lock
/// alone; None when any pick is not in the lock as it would be found (then it is resolved).
fn from_lock(entry: &SkillSource, locked: &LockedSource, root: &str) -> Option<Vec<ResolvedSkill>> {
    let join = crate::tree::join_rel;
    let Selection::Named(picks) = frozen_selection(entry, Some(locked), false) else {
        return None;
    };
    let by_name = locked_by_name(locked);
    picks
        .iter()
        .map(|pick| {
            let k = by_name.get(pick.name.as_str())?.iter().find(|k| {
                pick.path
                    .as_ref()
                    .is_none_or(|p| k.path == join(&join(root, p), &pick.name))
            })?;
            // The lock is a file in the project: its name becomes a folder name.
            crate::pathsafe::check_skill_name(&k.name).ok()?;
            let tree_id = crate::oid::parse(&k.tree)?;
            Some(ResolvedSkill::from_lock(
                k.name.clone(),
                k.path.clone(),
                tree_id,
            ))
        })
        .collect()
}

/// A lock entry's skills by name, in lock order: so that taking n picks from the lock is n
/// lookups, not n²/2 name comparisons (10,000 skills: 50 million, on one thread).
fn locked_by_name(
    locked: &LockedSource,
) -> std::collections::HashMap<&str, Vec<&crate::lock::LockedSkill>> {
    let mut by_name: std::collections::HashMap<&str, Vec<_>> = Default::default();
    for k in &locked.skills {
        by_name.entry(k.name.as_str()).or_default().push(k);
    }
    by_name
}
