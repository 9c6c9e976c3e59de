//! Commands and instructions (SPEC 10a, 10b): the kinds whose items are single source files,
//! each rendered into every agent's own place.
//!
//! They share everything but where an item lands and how it is rendered ([`places`]): the
//! resolution (pinned like skills through [`crate::pin`], a local folder re-read each sync),
//! the plan, the writes and the lock section. A destination is owned in one of the two ways
//! kst owns anything (`claims.rs`): a rendered file (a command, a per-rule instruction file)
//! is an exclusive path; a marker block in a shared file (CLAUDE.md, AGENTS.md) is a keyed
//! entry. The lock records, per item, the source file's git blob id and, per destination, the
//! sha256 of what kst wrote (a block's key is `FILE#ID`).

pub mod apply;
pub mod fast;
pub mod plan;
pub mod verify;

use std::path::{Path, PathBuf};

use git2::Oid;

use crate::agents::{Agent, InstructionTarget};
use crate::config::SkillSource;
use crate::discover::{DiskPack, PackView};
use crate::git::{Cache, FetchMode};
use crate::item::{Kind, Target};
use crate::lock::LockedFileSource;
use crate::mdasset::{self, Picked};
use crate::pin::Fetch;
use crate::request::{Requested, Selection};
use crate::source::Source;
use crate::statcache::StatData;

/// One command or instruction read from its pack.
#[derive(Debug, Clone)]
pub struct FileItem {
    pub name: String,
    /// Its file inside the pack.
    pub path: String,
    /// The git blob id of its bytes.
    pub blob: String,
    /// Empty when `unchanged` is set: then it was not read.
    pub bytes: Vec<u8>,
    /// Every destination, found unchanged by the fast path ([`fast`]) without reading the item
    /// or any destination: nothing to render.
    pub unchanged: Option<Vec<fast::Unchanged>>,
}

/// An item that was asked for (or found) and cannot be installed.
#[derive(Debug, Clone)]
pub struct BrokenItem {
    pub name: String,
    pub error: String,
}

/// A source of commands or instructions, resolved.
#[derive(Debug)]
pub struct Resolved {
    pub entry: SkillSource,
    pub url: String,
    pub requested: Requested,
    pub commit: Option<Oid>,
    /// The fingerprint of the key that signed the pin (`trust:`, SPEC 16).
    pub signer: Option<String>,
    pub fetch: Fetch,
    pub items: Vec<FileItem>,
    pub broken: Vec<BrokenItem>,
    pub warnings: Vec<String>,
    /// A local source: every path its reading looked at, for the whole-run memo
    /// (`runmemo.rs`); None for a git source.
    pub observed: Option<crate::runmemo::Observed>,
}

/// A source that could not be resolved at all; what it installed before is kept.
#[derive(Debug)]
pub struct Failed {
    /// Boxed: the config entry is large, and this is the error side of every resolver's result.
    pub entry: Box<SkillSource>,
    pub url: String,
    pub error: String,
}

fn pick(kind: Kind, view: &dyn PackView, root: &str, selection: &Selection) -> Picked {
    match kind {
        Kind::Command => crate::slash::pick(view, root, selection),
        _ => crate::instructions::pick(view, root, selection),
    }
}

fn folder(kind: Kind) -> &'static str {
    match kind {
        Kind::Command => crate::slash::KIND.folder,
        _ => crate::instructions::KIND.folder,
    }
}

/// How an item's blob id is had without reading it, for the fast path.
enum Ids<'a> {
    /// `<commit>:<path>`, from the commit's trees.
    Git(&'a crate::git::GitPack<'a>),
    /// From the local source folder's stat cache (read and hashed when its stat data changed),
    /// each file's `lstat` data looked up in its opened folder (`fsat.rs`; following links as
    /// a path does: where a folder of the pack may lead is `DiskPack::folder_allowed`'s call).
    Local(&'a DiskPack, &'a dyn ByStat, crate::fsat::Folders),
}

/// A blob id by a file's stat data ([`crate::statcache::SkillIds::blob_id_of`]).
trait ByStat {
    fn by_stat(&self, rel: &str, stat: StatData, path: &dyn Fn() -> PathBuf) -> Option<Oid>;
}

impl ByStat for crate::statcache::SkillIds<'_> {
    fn by_stat(&self, rel: &str, stat: StatData, path: &dyn Fn() -> PathBuf) -> Option<Oid> {
        self.blob_id_of(rel, stat, path).ok()
    }
}

/// What the fast path needs while a source's items are picked.
struct Quick<'a> {
    ids: Ids<'a>,
    fast: &'a fast::Fast,
    entry: &'a SkillSource,
    /// The source's lock records, by item name.
    locked: std::collections::HashMap<&'a str, &'a crate::lock::LockedFile>,
}

impl Quick<'_> {
    fn blob(&self, path: &str) -> Option<Oid> {
        match &self.ids {
            Ids::Git(pack) => pack.blob_at(path),
            Ids::Local(disk, ids, folders) => {
                // A regular file, looked up in its opened folder (no path walk per file), in a
                // folder the pack may read from (judged once per folder by the pack).
                let stat = folders.lstat(path)?;
                if !stat.is_file() {
                    return None;
                }
                let folder = path.rsplit_once('/').map_or("", |(f, _)| f);
                if !disk.folder_allowed(folder) {
                    return None;
                }
                // Bounded as reading it is: a bigger file is never hashed here.
                if stat.size > crate::git::MAX_SKILL_MD as u64 {
                    return None;
                }
                ids.by_stat(path, stat, &|| disk.root.join(path))
            }
        }
    }

    /// The item's destinations, when all are unchanged (nothing to read or render).
    fn unchanged(&self, name: &str, path: &str) -> Option<Vec<fast::Unchanged>> {
        let locked = *self.locked.get(name)?;
        let blob = self.blob(path)?;
        self.fast
            .unchanged(self.entry, Some(locked), name, path, blob)
    }
}

fn quick<'a>(
    ids: Ids<'a>,
    fast: Option<&'a fast::Fast>,
    entry: &'a SkillSource,
    locked: Option<&'a LockedFileSource>,
) -> Option<Quick<'a>> {
    Some(Quick {
        ids,
        fast: fast?,
        entry,
        // The first record of a name, as the plan takes it (`plan::build`): a lock listing a
        // name twice gives the fast path and the plan the same record.
        locked: locked?
            .items
            .iter()
            .rev()
            .map(|i| (i.name.as_str(), i))
            .collect(),
    })
}

/// The selected items of a pack, read (those the fast path finds unchanged are not).
fn read_items(
    kind: Kind,
    view: &dyn PackView,
    root: &str,
    selection: &Selection,
    quick: Option<&Quick>,
) -> (Vec<FileItem>, Vec<BrokenItem>, Vec<String>) {
    let picked = pick(kind, view, root, selection);
    let under = crate::tree::join_rel(root, folder(kind));
    let noun = kind.noun();
    let mut broken: Vec<BrokenItem> = picked
        .missing
        .iter()
        .map(|name| BrokenItem {
            name: name.clone(),
            error: format!("{noun} {name:?} not found under {under}/"),
        })
        .collect();
    let mut items = Vec::new();
    for f in picked.found {
        if let Some(problem) = f.problem {
            broken.push(BrokenItem {
                name: f.name,
                error: problem,
            });
            continue;
        }
        if let Some(unchanged) = quick.and_then(|q| q.unchanged(&f.name, &f.path)) {
            items.push(FileItem {
                blob: quick
                    .and_then(|q| q.locked.get(f.name.as_str()))
                    .map(|l| l.blob.clone())
                    .unwrap_or_default(),
                name: f.name,
                path: f.path,
                bytes: Vec::new(),
                unchanged: Some(unchanged),
            });
            continue;
        }
        match view.read_file(&f.path) {
            Some(bytes) => items.push(FileItem {
                blob: mdasset::blob_id(&bytes).to_string(),
                name: f.name,
                path: f.path,
                bytes,
                unchanged: None,
            }),
            None => broken.push(BrokenItem {
                error: format!(
                    "{}: cannot be read (not a regular file, or larger than {} KiB)",
                    f.path,
                    crate::git::MAX_SKILL_MD / 1024
                ),
                name: f.name,
            }),
        }
    }
    (items, broken, picked.warnings)
}

/// What `--update [NAME…]` and the lock say about resolving a kind's sources.
pub struct Resolving<'a> {
    pub kind: Kind,
    pub old: &'a [LockedFileSource],
    pub update: &'a Option<Vec<String>>,
    pub mode: FetchMode,
    /// Where local sources may be read from (an untrusted project: only inside it).
    pub within: Option<&'a Path>,
    /// Opened when any entry is a git source.
    pub cache: Option<&'a Cache>,
    /// The warm no-op's fast path (None: every item is read and rendered).
    pub fast: Option<&'a fast::Fast>,
}

/// Resolve every entry of one kind, each on its own thread.
///
/// A git entry's resolver opens a cache repository on its thread: libgit2 is initialised here
/// first, on the calling thread before the resolvers exist (`git::setup::before_workers`).
pub fn resolve_all(r: &Resolving, entries: &[SkillSource]) -> Vec<Result<Resolved, Failed>> {
    crate::git::setup::before_workers(entries.iter().map(|e| &e.source));
    crate::threads::each(entries, "a resolver", |entry| resolve_one(r, entry))
}

fn resolve_one(r: &Resolving, entry: &SkillSource) -> Result<Resolved, Failed> {
    let id = entry.id();
    let locked = crate::lock::find_entry(r.old, &id);
    let names = locked
        .into_iter()
        .flat_map(|l| l.items.iter().map(|i| i.name.as_str()));
    let update = crate::lock::update_moves(r.update, names);
    let url = id.url.clone();
    let fail = |error: String| Failed {
        entry: Box::new(entry.clone()),
        url: url.clone(),
        error: format!("{}: {url}: {error}", entry.at),
    };
    let done = |requested, commit, fetch, (items, broken, warnings)| Resolved {
        entry: entry.clone(),
        url: url.clone(),
        requested,
        commit,
        signer: None,
        fetch,
        items,
        broken,
        warnings,
        observed: None,
    };
    match &entry.source {
        Source::Local { path, .. } => {
            let (view, root) =
                DiskPack::open(path, entry.sub_dir.as_deref(), r.within).map_err(fail)?;
            // The source folder's own stat cache, for this kind and discovery root.
            let stat = r.fast.map(|f| {
                crate::statcache::StatCache::for_items(
                    f.cache_root(),
                    &format!("local {}s at {root:?}", r.kind.noun()),
                    &view.root,
                )
            });
            let ids = stat.as_ref().map(|s| s.skill("items"));
            let q = ids.as_ref().and_then(|ids| {
                let folders = crate::fsat::Folders::new(&view.root, false);
                quick(Ids::Local(&view, ids, folders), r.fast, entry, locked)
            });
            // What discovery looks at is noted, for the whole-run memo's witnesses; the fast
            // path looks at the items' files besides.
            let noting = crate::runmemo::Noting::new(&view);
            let read = read_items(r.kind, &noting, &root, &entry.selection, q.as_ref());
            drop(q);
            if let (Some(stat), Some(ids)) = (&stat, ids) {
                ids.keep();
                stat.save();
            }
            let observed = Some(noting.finish(&view.root, read.0.iter().map(|i| i.path.as_str())));
            Ok(Resolved {
                observed,
                ..done(Requested::Local, None, Fetch::Local, read)
            })
        }
        Source::Git(git_url) => {
            let cache = r
                .cache
                .ok_or_else(|| fail("the cache is not open".into()))?;
            let pinning = crate::pin::GitEntry {
                url: git_url,
                reference: &entry.reference,
                sub_dir: entry.sub_dir.as_deref(),
                locked: locked.map(|l| l as _),
                update,
                trust: entry.trust.as_ref(),
            };
            let read = |p: crate::pin::Reading| {
                let q = quick(Ids::Git(p.pack), r.fast, entry, locked);
                Ok(read_items(
                    r.kind,
                    p.pack,
                    p.root,
                    &entry.selection,
                    q.as_ref(),
                ))
            };
            let (pin, (items, broken, mut warnings), repaired) = crate::pin::git(
                &pinning,
                cache,
                r.mode,
                &mut |_, _, _| {},
                |_, _, _| None,
                read,
            )
            .map_err(|e| fail(format!("{e:#}")))?;
            warnings.splice(0..0, repaired);
            Ok(Resolved {
                signer: pin.signer.clone(),
                ..done(
                    pin.requested,
                    Some(pin.commit),
                    pin.fetch,
                    (items, broken, warnings),
                )
            })
        }
    }
}

/// Where one item goes for one agent's place.
#[derive(Debug, Clone)]
pub enum Place {
    /// A file only kst writes (a command, a per-rule instruction), and its bytes.
    File { target: Target, bytes: Vec<u8> },
    /// A marker block in a file shared with the user.
    Block {
        target: Target,
        id: String,
        body: String,
    },
}

impl Place {
    /// What the lock calls this destination: the file, or `FILE#ID` for a block.
    pub fn key(&self) -> String {
        match self {
            Place::File { target, .. } => target.rel.clone(),
            Place::Block { target, id, .. } => block_key(&target.rel, id),
        }
    }
}

pub fn block_key(file: &str, id: &str) -> String {
    format!("{file}#{id}")
}

/// A destination path of this scope: relative to the scope root when inside it.
pub fn target_at(p: PathBuf, root: &Path) -> Target {
    let abs = if p.is_absolute() { p } else { root.join(p) };
    let rel = match abs.strip_prefix(root) {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => abs.to_string_lossy().into_owned(),
    };
    Target { abs, rel }
}

/// In a project, the first folder between the project root and `target`'s parent that is a
/// symlink (the rule of [`crate::scope::ScopeCtx::symlinked_parent`], for the plan and verify,
/// which have no scope context): a rendered file there is not read, adopted, written or
/// removed, since the link may lead anywhere.
pub fn symlinked_folder(global: bool, root: &Path, target: &Path) -> Option<PathBuf> {
    if global {
        return None;
    }
    crate::scope::symlinked_below(root, target)
}

/// The error for a rendered file under a symlinked project folder.
pub fn symlinked_folder_error(link: &Path) -> String {
    format!(
        "{} is a symlink; inside a project kst never reads, writes or deletes through a symlink \
         (a cloned project could point it anywhere); replace it with a real folder",
        link.display()
    )
}

/// Where the selected agents read this kind, in one scope.
pub struct Places<'a> {
    pub agents: &'a [&'static Agent],
    pub global: bool,
    pub home: &'a Path,
    pub root: &'a Path,
}

/// The source as written in the config, which names an instruction's block (SPEC 10b).
pub fn source_as_written(entry: &SkillSource) -> &str {
    match &entry.source {
        Source::Git(url) => url.fetch_url(),
        Source::Local { spelled, .. } => spelled,
    }
}

/// Every place an item goes, rendered. An item that cannot be rendered (a malformed
/// frontmatter, a marker line in an instruction's text) is an error for all its places.
pub fn places(
    kind: Kind,
    at: &Places,
    entry: &SkillSource,
    item: &FileItem,
) -> Result<Vec<Place>, String> {
    // `path:LINE:COL: what` for an error at a position of the file, `path: what` otherwise.
    let shown = |e: String| {
        let at_position = e
            .split(':')
            .next()
            .is_some_and(|n| n.parse::<usize>().is_ok());
        if at_position {
            format!("{}:{e}", item.path)
        } else {
            format!("{}: {e}", item.path)
        }
    };
    let mut out = Vec::new();
    // A rendered file never lands on a file an agent reads instructions from (openhands
    // reads commands from `.openhands/microagents/` and instructions from its `repo.md`):
    // it would replace the user's text there, or fight kst's blocks at every sync.
    let shared = known(kind, at.global, at.home, at.root).instruction_files;
    let file = |target: Target, bytes: Vec<u8>| -> Result<Place, String> {
        if shared.contains(&crate::tree::fold(&target.rel)) {
            return Err(format!(
                "{} {:?} would be written to {}, the file where an agent reads instructions; rename it",
                kind.noun(),
                item.name,
                target.rel
            ));
        }
        Ok(Place::File { target, bytes })
    };
    match kind {
        Kind::Command => {
            let mut seen = Vec::new();
            for a in at.agents {
                let Some((dir, format)) = a.commands_dir(at.global, at.home) else {
                    continue;
                };
                if seen.contains(&(dir.clone(), format)) {
                    continue;
                }
                seen.push((dir.clone(), format));
                let (rel, bytes) =
                    crate::slash::render(&item.name, &item.bytes, format).map_err(shown)?;
                out.push(file(target_at(dir.join(rel), at.root), bytes).map_err(shown)?);
            }
        }
        _ => {
            for (t, _) in crate::instructions::targets(at.agents, at.global, at.home) {
                match t {
                    InstructionTarget::PerRule(dir, format) => {
                        let (rel, bytes) =
                            crate::instructions::render_rule(&item.name, &item.bytes, format)
                                .map_err(shown)?;
                        out.push(file(target_at(dir.join(rel), at.root), bytes).map_err(shown)?);
                    }
                    InstructionTarget::Aggregate(file) => {
                        let body = crate::instructions::block_body(&item.bytes).map_err(shown)?;
                        out.push(Place::Block {
                            target: target_at(file, at.root),
                            id: crate::instructions::block_id(source_as_written(entry), &item.name),
                            body,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Every place this kind may have written to in a scope, for any agent (the config may no
/// longer name the agent): what the lock may ask kst to remove. A lock is a file in the
/// project, so what it lists is only acted on inside these places.
pub struct Known {
    /// Folders of rendered files (relative to the scope root, or absolute).
    pub folders: Vec<String>,
    /// Shared files holding blocks.
    pub shared: Vec<String>,
    /// Every agent's instructions file in this scope, case-folded, whatever the kind: never a
    /// rendered file's place, so never one a lock can make kst delete as one.
    pub instruction_files: Vec<String>,
    /// Rule files lie directly in their folder (instructions' names are flattened): a key
    /// deeper down (cline's `.clinerules/workflows/…` commands) is not one.
    pub flat: bool,
}

pub fn known(kind: Kind, global: bool, home: &Path, root: &Path) -> Known {
    let mut k = Known {
        folders: Vec::new(),
        shared: Vec::new(),
        instruction_files: Vec::new(),
        flat: kind != Kind::Command,
    };
    for a in crate::agents::AGENTS {
        if let Some(InstructionTarget::Aggregate(f)) = a.instructions_target(global, home) {
            k.instruction_files
                .push(crate::tree::fold(&target_at(f, root).rel));
        }
        match kind {
            Kind::Command => {
                if let Some((dir, _)) = a.commands_dir(global, home) {
                    k.folders.push(target_at(dir, root).rel);
                }
            }
            _ => match a.instructions_target(global, home) {
                Some(InstructionTarget::PerRule(dir, _)) => {
                    k.folders.push(target_at(dir, root).rel)
                }
                Some(InstructionTarget::Aggregate(f)) => k.shared.push(target_at(f, root).rel),
                None => {}
            },
        }
    }
    k
}

impl Known {
    /// A lock key, read back as the destination it names: a block of a known shared file,
    /// or a file inside a known folder (no `..`, no absolute escape). None: not a place kst
    /// may touch.
    pub fn place_of(&self, key: &str, root: &Path) -> Option<KnownPlace> {
        // A block's id may hold a `#` (an instruction's name may): the file is the known
        // shared file the key starts with, the id all that follows its `#`.
        if let Some((file, id)) = self.shared.iter().find_map(|s| {
            key.strip_prefix(s.as_str())
                .and_then(|rest| rest.strip_prefix('#'))
                .map(|id| (s, id))
        }) {
            return Some(KnownPlace::Block {
                target: target_at(PathBuf::from(file), root),
                id: id.to_string(),
            });
        }
        let inside = self.folders.iter().any(|f| {
            key.strip_prefix(f.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| {
                    crate::pathsafe::check_relative_path(rest).is_ok()
                        && !(self.flat && rest.contains('/'))
                })
        });
        let ours = inside && !self.instruction_files.contains(&crate::tree::fold(key));
        ours.then(|| KnownPlace::File(target_at(PathBuf::from(key), root)))
    }
}

/// A destination named by the lock, inside a place kst may touch.
pub enum KnownPlace {
    File(Target),
    Block { target: Target, id: String },
}
