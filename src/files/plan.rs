//! The plan for commands or instructions: per item, per destination, what kst will do and
//! why, before anything is written.
//!
//! A rendered file follows the exclusive-path table ([`claims::exclusive`]): kst's own copy is
//! put back when edited, someone else's file is a conflict unless `--force`. A block in a
//! shared file follows the keyed-entry table ([`claims::keyed`]), after one rule of its own: a
//! block kst wrote and the user edited since is *modified locally* and left alone. A shared
//! file kst cannot read or whose markers do not pair up fails every block that would touch
//! it and is never written.

use std::collections::HashMap;
use std::path::Path;

use crate::claims::{self, Claims, Tracked};
use crate::item::{Action, Dest, Item, Kind, Reason, Target};
use crate::lock::{LockedFile, LockedFileSource};
use crate::statcache::StatData;

use super::fast::{Fast, Unchanged};
use super::{Failed, KnownPlace, Place, Resolved};

/// What a step writes or removes.
#[derive(Debug, Clone)]
pub enum Write {
    Nothing,
    File(Vec<u8>),
    RemoveFile,
    Block { id: String, body: String },
    RemoveBlock { id: String },
}

/// One destination's planning state: its lock key, what the lock says before and after, and
/// the write.
#[derive(Debug, Clone)]
pub struct Step {
    pub key: String,
    /// What the lock records for this destination if the step succeeds (None: not ours).
    pub record: Option<String>,
    /// What the old lock recorded (kept if the step fails).
    pub prev: Option<String>,
    pub write: Write,
    /// The `lstat` data of what the plan read to decide (the rendered file, or the whole
    /// shared file of a block), when it was a regular file: what the fast path records.
    pub seen: Option<StatData>,
}

/// An item's place in the lock: its source (an index into [`FilePlan::sources`]), path and
/// blob. None for an item that records nothing (broken).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source: Option<usize>,
    pub path: String,
    pub blob: String,
    /// Removed from the config: recorded only where its removal failed.
    pub pruned: bool,
}

pub type FileItemPlan = Item<Origin, Step>;

#[derive(Debug, Default)]
pub struct FilePlan {
    pub kind: Option<Kind>,
    pub items: Vec<FileItemPlan>,
    pub resolved: Vec<Resolved>,
    pub failed: Vec<Failed>,
    /// The lock sources this plan writes to (items empty): resolved ones, then old ones.
    pub sources: Vec<LockedFileSource>,
    /// Lock records of broken items and failed sources, kept as they were.
    kept: Vec<(usize, LockedFile)>,
    /// The section as it will be if every step succeeds.
    pub lock: Vec<LockedFileSource>,
    /// Project scope: the project folder (canonical); shared files must resolve inside it.
    pub confine: Option<std::path::PathBuf>,
}

pub struct Inputs<'a> {
    pub kind: Kind,
    pub resolved: Vec<Result<Resolved, Failed>>,
    pub old: &'a [LockedFileSource],
    pub places: super::Places<'a>,
    pub force: bool,
    pub confine: Option<std::path::PathBuf>,
    /// The warm no-op's fast path: told what the full path found unchanged.
    pub fast: Option<&'a Fast>,
}

/// A shared file, read and parsed once per plan: its bytes (empty when missing) and the sha256
/// of each block by id, or why it cannot be used. Shared between its blocks (`Rc`): a plan asks
/// it once per block, so nothing here may cost the file's size per ask.
type Shared = Result<std::rc::Rc<SharedFile>, String>;

#[derive(Debug)]
struct SharedFile {
    /// Its `lstat` data, taken before it was read, when it is a regular file.
    stat: Option<StatData>,
    /// The line ending new blocks get (the file's dominant one).
    eol: &'static str,
    /// sha256 of each block, by id.
    shas: HashMap<String, String>,
}

fn load_shared(t: &Target, confine: Option<&Path>) -> Shared {
    crate::shared_file::check_confined(&t.abs, confine)?;
    let stat = std::fs::symlink_metadata(&t.abs)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| StatData::of(&m));
    let bytes = match crate::fsx::read_input_bytes(&t.abs, crate::fsx::SETTINGS_CAP, None) {
        Ok(b) => b,
        Err(crate::fsx::ReadError::NotFound) => {
            if std::fs::symlink_metadata(&t.abs).is_ok() {
                return Err("it is a symlink to a missing file".into());
            }
            Vec::new()
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let shas = crate::instructions::blocks(&bytes)
        .map_err(|r| format!("line {}: {}", r.line, r.message))?
        .into_iter()
        .map(|b| (b.id, b.sha256))
        .collect();
    let eol = crate::instructions::dominant_eol(&bytes);
    Ok(std::rc::Rc::new(SharedFile { stat, eol, shas }))
}

fn shared_error(t: &Target, e: &str) -> String {
    format!(
        "{} cannot be edited ({e}); it was left unchanged — fix it by hand and sync again",
        t.abs.display()
    )
}

/// The sha256 of the file at `abs`, if it is a regular file kst can read.
pub fn file_sha(abs: &Path) -> Option<String> {
    file_sha_seen(abs).map(|(sha, _)| sha)
}

/// [`file_sha`], and the file's `lstat` data taken before it was read.
fn file_sha_seen(abs: &Path) -> Option<(String, StatData)> {
    let m = std::fs::symlink_metadata(abs).ok()?;
    if !m.file_type().is_file() {
        return None;
    }
    let bytes = crate::fsx::read_input_bytes(abs, crate::fsx::SETTINGS_CAP, None).ok()?;
    Some((crate::mdasset::sha256(&bytes), StatData::of(&m)))
}

fn source_of(r: &Resolved) -> LockedFileSource {
    LockedFileSource {
        url: r.url.clone(),
        requested: r.requested.clone(),
        sub_dir: r.entry.sub_dir.clone(),
        commit: r.commit.map(|c| c.to_string()),
        signer: r.signer.clone(),
        items: Vec::new(),
    }
}

/// `old` without its items: where its records go.
fn header(old: &LockedFileSource) -> LockedFileSource {
    LockedFileSource {
        items: Vec::new(),
        ..old.clone()
    }
}

impl FilePlan {
    fn source_index(&mut self, s: LockedFileSource) -> usize {
        match self.sources.iter().position(|x| *x == s) {
            Some(i) => i,
            None => {
                self.sources.push(s);
                self.sources.len() - 1
            }
        }
    }

    /// A broken item, or a failed source's item, keeps what it had installed.
    fn keep(&mut self, source: usize, prev: &LockedFile, claims: &mut Claims<String>) {
        claims.keep(prev.installed.keys().cloned());
        self.kept.push((source, prev.clone()));
    }

    /// The lock section from the steps as they ended: a step that failed keeps what the old
    /// lock said.
    pub fn lock_entries(&self) -> Vec<LockedFileSource> {
        let mut out = self.sources.clone();
        // Each source's records by (name, path), found in one lookup (not a scan per item).
        let mut at: HashMap<(usize, &str, &str), usize> = HashMap::new();
        fn add<'s>(
            out: &mut [LockedFileSource],
            at: &mut HashMap<(usize, &'s str, &'s str), usize>,
            si: usize,
            f: LockedFile,
            (name, path): (&'s str, &'s str),
        ) {
            let items = &mut out[si].items;
            match at.entry((si, name, path)) {
                std::collections::hash_map::Entry::Occupied(i) => {
                    items[*i.get()].installed.extend(f.installed)
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(items.len());
                    items.push(f);
                }
            }
        }
        for (si, f) in &self.kept {
            add(&mut out, &mut at, *si, f.clone(), (&f.name, &f.path));
        }
        for item in &self.items {
            let Some(si) = item.extra.source else {
                continue;
            };
            let installed = item
                .dests
                .iter()
                .filter_map(|d| {
                    let rec = if d.error.is_some() {
                        d.extra.prev.clone()
                    } else {
                        d.extra.record.clone()
                    };
                    rec.map(|r| (d.extra.key.clone(), r))
                })
                .collect::<std::collections::BTreeMap<_, _>>();
            if item.extra.pruned && installed.is_empty() {
                continue;
            }
            add(
                &mut out,
                &mut at,
                si,
                LockedFile {
                    name: item.name.clone(),
                    path: item.extra.path.clone(),
                    blob: item.extra.blob.clone(),
                    installed,
                },
                (&item.name, &item.extra.path),
            );
        }
        // A prune whose removal succeeded leaves an old source with nothing to record.
        crate::lock::normalise_files(&mut out);
        out
    }
}

fn new_item(kind: Kind, name: &str, source: &str, commit: Option<String>) -> FileItemPlan {
    Item {
        kind,
        name: name.to_string(),
        source: source.to_string(),
        commit,
        tree: None,
        hash: None,
        description: None,
        dests: Vec::new(),
        error: None,
        warnings: Vec::new(),
        extra: Origin::default(),
    }
}

fn step(target: Target, action: Action, key: String, prev: Option<String>) -> Dest<Step> {
    Dest {
        target,
        action,
        reason: None,
        error: None,
        extra: Step {
            key,
            record: prev.clone(),
            prev,
            write: Write::Nothing,
            seen: None,
        },
    }
}

pub fn build(inp: Inputs) -> FilePlan {
    let kind = inp.kind;
    let root = inp.places.root;
    let mut plan = FilePlan {
        kind: Some(kind),
        confine: inp.confine.clone(),
        ..Default::default()
    };
    let mut claims: Claims<String> = Claims::default();
    // Rendered files by case-folded path: `Deploy.md` and `deploy.md` are one file on macOS
    // and Windows (the key first claimed, and by whom).
    let mut folded: HashMap<String, (String, String)> = HashMap::new();
    let mut shared: HashMap<String, (Target, Shared)> = HashMap::new();
    let mut shared_of = |t: &Target| -> Shared {
        shared
            .entry(t.rel.clone())
            .or_insert_with(|| (t.clone(), load_shared(t, inp.confine.as_deref())))
            .1
            .clone()
    };

    for r in inp.resolved {
        let r = match r {
            Ok(r) => r,
            Err(f) => {
                // A source that failed as a whole keeps its lock entries, whatever request
                // recorded them (as for skills).
                let id = f.entry.id();
                for prev in crate::lock::kept_by_failure(inp.old, &id) {
                    let si = plan.source_index(header(prev));
                    for it in &prev.items {
                        plan.keep(si, it, &mut claims);
                    }
                }
                plan.failed.push(f);
                continue;
            }
        };
        let locked = crate::lock::find_entry(inp.old, &r.entry.id());
        let si = plan.source_index(source_of(&r));
        let commit = r.commit.map(|c| c.to_string());
        // The old records by name (the first of a name, as a scan would find it).
        let mut by_name: HashMap<&str, &LockedFile> = HashMap::new();
        for i in locked.into_iter().flat_map(|l| &l.items) {
            by_name.entry(i.name.as_str()).or_insert(i);
        }
        let prev_of = |name: &str| by_name.get(name).copied();
        for b in &r.broken {
            if let Some(prev) = prev_of(&b.name) {
                plan.keep(si, prev, &mut claims);
            }
            let mut item = new_item(kind, &b.name, &r.url, commit.clone());
            item.error = Some(b.error.clone());
            plan.items.push(item);
        }
        // What the fast path found, moved into the plan: nothing reads it from the items after.
        let mut r = r;
        let hits: Vec<_> = r.items.iter_mut().map(|fi| fi.unchanged.take()).collect();
        for (fi, hit) in r.items.iter().zip(hits) {
            let mut item = new_item(kind, &fi.name, &r.url, commit.clone());
            let prev = prev_of(&fi.name);
            let fast_hit = hit.is_some();
            let wants: Vec<Want> = match hit {
                // The fast path: every destination as kst last found it; nothing to render.
                Some(kept) => kept.into_iter().map(Want::Unchanged).collect(),
                None => {
                    if let Some(f) = inp.fast {
                        f.begin_reading();
                    }
                    match super::places(kind, &inp.places, &r.entry, fi) {
                        Ok(p) => p.into_iter().map(Want::Place).collect(),
                        Err(e) => {
                            if let Some(prev) = prev {
                                plan.keep(si, prev, &mut claims);
                            }
                            item.error = Some(e);
                            plan.items.push(item);
                            continue;
                        }
                    }
                }
            };
            item.extra = Origin {
                source: Some(si),
                path: fi.path.clone(),
                blob: fi.blob.clone(),
                pruned: false,
            };
            let recorded = |key: &str| prev.and_then(|p| p.installed.get(key)).cloned();
            let owner = format!("{} ({})", r.url, fi.name);
            for mut want in wants {
                let key = want.take_key();
                if let Some(owner) = claims.owner(&key) {
                    item.error = Some(format!(
                        "{key} is already provided by {owner}; two sources cannot install the same {} name",
                        kind.noun()
                    ));
                    break;
                }
                // A rendered file's path, case-folded (folded once: checked, then claimed).
                let fold = want.file_target().map(|t| crate::tree::fold(&t.rel));
                if let Some(f) = &fold
                    && let Some((first, owner)) = folded.get(f)
                    && *first != key
                {
                    item.error = Some(format!(
                        "{key} is one file with {first} on a case-insensitive file system (macOS, Windows), which is already provided by {owner}; two sources cannot install {}s whose names differ only in case",
                        kind.noun()
                    ));
                    break;
                }
                let rec = recorded(&key);
                let place = match want {
                    Want::Unchanged(u) => {
                        // What plan_file / plan_block find for a destination that is what the
                        // lock says and what kst renders: unchanged, recorded as it is.
                        item.dests
                            .push(step(u.target, Action::Unchanged, key.clone(), rec));
                        if let Some(f) = fold {
                            folded
                                .entry(f)
                                .or_insert_with(|| (key.clone(), owner.clone()));
                        }
                        claims.claim(key, owner.clone());
                        continue;
                    }
                    Want::Place(place) => place,
                };
                let d = match place {
                    Place::File { target, .. }
                        if let Some(link) =
                            super::symlinked_folder(inp.places.global, root, &target.abs) =>
                    {
                        let mut d = step(target, Action::Broken, key.clone(), rec);
                        d.extra.record = d.extra.prev.clone();
                        d.error = Some(super::symlinked_folder_error(&link));
                        d
                    }
                    Place::File { target, bytes } => {
                        plan_file(target, bytes, key.clone(), rec, inp.force)
                    }
                    Place::Block { target, id, body } => {
                        let file = shared_of(&target);
                        plan_block(target, file, id, body, key.clone(), rec)
                    }
                };
                match d.reason {
                    Some(Reason::ModifiedLocally) => item.warnings.push(format!(
                        "{key} was modified locally; left as it is (delete kst's block to let kst write it again)"
                    )),
                    Some(Reason::Conflict) => item.warnings.push(format!(
                        "{key}: a block of that id exists and was not written by kst; left alone"
                    )),
                    _ => {}
                }
                if d.error.is_none() && d.reason != Some(Reason::Conflict) {
                    // (`d.target` is the place's file target, whose path `fold` is.)
                    if let Some(f) = fold {
                        folded
                            .entry(f)
                            .or_insert_with(|| (key.clone(), owner.clone()));
                    }
                    claims.claim(key, owner.clone());
                }
                item.dests.push(d);
            }
            if item.error.is_some() {
                item.extra.source = None;
                item.dests.clear();
                if let Some(prev) = prev {
                    plan.keep(si, prev, &mut claims);
                }
            } else if let Some(f) = inp.fast
                && !fast_hit
            {
                record_unchanged(f, &r, fi, &item);
            }
            plan.items.push(item);
        }
        plan.resolved.push(r);
    }

    // Prune: every destination the old lock tracks that nothing claims or keeps, when it is
    // still what kst wrote; an edited one is left in place and no longer tracked.
    let known = super::known(kind, inp.places.global, inp.places.home, root);
    for old in inp.old {
        for it in &old.items {
            let gone: Vec<(&String, &String)> = it
                .installed
                .iter()
                .filter(|(k, _)| !claims.accounts_for(k))
                .collect();
            if gone.is_empty() {
                continue;
            }
            let si = plan.source_index(header(old));
            let mut item = new_item(kind, &it.name, &old.url, old.commit.clone());
            item.extra = Origin {
                source: Some(si),
                path: it.path.clone(),
                blob: it.blob.clone(),
                pruned: true,
            };
            for (key, sha) in gone {
                let Some(place) = known.place_of(key, root) else {
                    tracing::warn!(
                        "the lock lists {key:?}, which is not a place kst writes {}s to; left alone",
                        kind.noun()
                    );
                    continue;
                };
                let d = match place {
                    KnownPlace::File(target)
                        if let Some(link) =
                            super::symlinked_folder(inp.places.global, root, &target.abs) =>
                    {
                        let mut d =
                            step(target, Action::Removed, key.clone(), Some(sha.to_string()));
                        d.error = Some(super::symlinked_folder_error(&link));
                        Some(d)
                    }
                    KnownPlace::File(target) => prune_file(target, key, sha, &mut item.warnings),
                    KnownPlace::Block { target, id } => {
                        let file = shared_of(&target);
                        prune_block(target, file, id, key, sha, &mut item.warnings)
                    }
                };
                if let Some(d) = d {
                    item.dests.push(d);
                }
            }
            if !item.dests.is_empty() {
                plan.items.push(item);
            }
        }
    }
    plan.lock = plan.lock_entries();
    plan
}

/// One destination of an item: rendered now, or found unchanged by the fast path.
enum Want {
    Place(Place),
    Unchanged(Unchanged),
}

impl Want {
    /// Its lock key (moved out of a destination found unchanged: nothing reads it after).
    fn take_key(&mut self) -> String {
        match self {
            Want::Place(p) => p.key(),
            Want::Unchanged(u) => std::mem::take(&mut u.key),
        }
    }

    /// The rendered file this destination is (None for a block).
    fn file_target(&self) -> Option<&Target> {
        match self {
            Want::Place(Place::File { target, .. }) => Some(target),
            Want::Unchanged(u) if u.file => Some(&u.target),
            _ => None,
        }
    }
}

/// An item planned in full whose every destination was found unchanged: tell the fast path,
/// with the stat data each was read under, so the next run need not read or render it.
fn record_unchanged(fast: &Fast, r: &Resolved, fi: &super::FileItem, item: &FileItemPlan) {
    let dests: Option<Vec<(String, StatData, String)>> = item
        .dests
        .iter()
        .map(|d| {
            let clean = d.action == Action::Unchanged && d.reason.is_none() && d.error.is_none();
            clean.then_some(())?;
            Some((d.extra.key.clone(), d.extra.seen?, d.extra.record.clone()?))
        })
        .collect();
    if let Some(dests) = dests {
        fast.record(&r.entry, &fi.name, &fi.path, &fi.blob, dests);
    }
}

fn plan_file(
    target: Target,
    bytes: Vec<u8>,
    key: String,
    rec: Option<String>,
    force: bool,
) -> Dest<Step> {
    let sha = crate::mdasset::sha256(&bytes);
    let tracked = match &rec {
        None => Tracked::No,
        Some(r) if *r == sha => Tracked::Same,
        Some(_) => Tracked::Other,
    };
    let seen = file_sha_seen(&target.abs);
    let exists = std::fs::symlink_metadata(&target.abs).is_ok();
    let matches = || seen.as_ref().map(|(s, _)| s.as_str()) == Some(sha.as_str());
    let mut d = step(target, Action::Unchanged, key, rec);
    d.extra.seen = seen.as_ref().map(|(_, stat)| *stat);
    match claims::exclusive(tracked, matches, || exists, force) {
        Some(action) => {
            d.action = action;
            d.extra.record = Some(sha);
            if action.writes() {
                d.extra.write = Write::File(bytes);
            }
        }
        None => {
            d.action = Action::Broken;
            d.extra.record = None;
            d.error = Some(format!(
                "{} exists and was not installed by kst; move it away, or pass --force to replace it",
                d.target.abs.display()
            ));
        }
    }
    d
}

fn plan_block(
    target: Target,
    file: Shared,
    id: String,
    body: String,
    key: String,
    rec: Option<String>,
) -> Dest<Step> {
    let mut d = step(target, Action::Unchanged, key, rec.clone());
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            d.error = Some(shared_error(&d.target, &e));
            return d;
        }
    };
    d.extra.seen = file.stat;
    let now = file.shas.get(&id).cloned();
    let Ok(wanted) = crate::instructions::sha_as_written(file.eol, &id, &body) else {
        d.error = Some(shared_error(&d.target, "its kst blocks cannot be edited"));
        return d;
    };
    // kst wrote this block and the user changed it since: theirs now. (A block that is
    // exactly what kst writes now is kst's whatever the lock says: a run that crashed between
    // writing it and writing the lock.)
    if let (Some(r), Some(n)) = (&rec, &now)
        && r != n
        && *n != wanted
    {
        d.action = Action::Skipped;
        d.reason = Some(Reason::ModifiedLocally);
        return d;
    }
    let (action, reason) = claims::keyed(rec.is_some(), now.as_ref().map(|n| *n == wanted));
    d.action = action;
    d.reason = reason;
    d.extra.record = reason.is_none().then_some(wanted);
    if action.writes() {
        d.extra.write = Write::Block { id, body };
    }
    d
}

fn prune_file(
    target: Target,
    key: &str,
    sha: &str,
    warnings: &mut Vec<String>,
) -> Option<Dest<Step>> {
    if std::fs::symlink_metadata(&target.abs).is_err() {
        return None;
    }
    let mut d = step(
        target,
        Action::Removed,
        key.to_string(),
        Some(sha.to_string()),
    );
    d.extra.record = None;
    if file_sha(&d.target.abs).as_deref() == Some(sha) {
        d.extra.write = Write::RemoveFile;
    } else {
        d.action = Action::Skipped;
        d.reason = Some(Reason::ModifiedLocally);
        warnings.push(format!(
            "{key} is no longer in the config but was modified locally; left in place and no longer tracked — delete it by hand if you do not want it"
        ));
    }
    Some(d)
}

fn prune_block(
    target: Target,
    file: Shared,
    id: String,
    key: &str,
    sha: &str,
    warnings: &mut Vec<String>,
) -> Option<Dest<Step>> {
    let mut d = step(
        target,
        Action::Removed,
        key.to_string(),
        Some(sha.to_string()),
    );
    d.extra.record = None;
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            d.error = Some(shared_error(&d.target, &e));
            return Some(d);
        }
    };
    match file.shas.get(&id).cloned() {
        None => None,
        Some(now) if now == sha => {
            d.extra.write = Write::RemoveBlock { id };
            Some(d)
        }
        Some(_) => {
            d.action = Action::Skipped;
            d.reason = Some(Reason::ModifiedLocally);
            warnings.push(format!(
                "{key} is no longer in the config but its block was modified locally; left in place and no longer tracked — delete it by hand if you do not want it"
            ));
            Some(d)
        }
    }
}
