//! The MCP plan: for every server and every settings file, what kst will do and why (SPEC 10).
//!
//! Ownership is by content. The lock records, per server, the hash of the definition kst wrote
//! (placeholder form) and the files it wrote it to. For each server and file:
//!
//! | lock says | in the file | action |
//! |---|---|---|
//! | not ours | nothing | `added` |
//! | not ours | exactly what kst would write now | `unchanged` (adopted: a crash before the lock) |
//! | not ours | any other entry of that name | `skipped` (conflict) — never touched |
//! | ours | nothing (the user deleted it) | `repaired` |
//! | ours | what kst writes now, any secret values | `unchanged` (new secret values: `--update`) |
//! | ours | what kst wrote before (any secret values) | `updated` |
//! | ours | anything else (the user edited it) | `skipped` (modified locally) — left alone |
//!
//! Entries the lock tracks that nothing claims any more are removed when they are still what
//! kst wrote; edited ones are left in place. A settings file that does not parse fails every
//! server that would touch it and is never written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::agents::{self, Agent, McpFormat};
use crate::claims::{Claims, keyed};
pub use crate::item::Reason;
use crate::item::{Action, Dest, Item, Kind, Target};
use crate::lock::{Lock, LockedMcpPack, LockedMcpSource, LockedServer, Requested};
use crate::mcp::format::render;
use crate::mcp::resolve::{FailedMcp, ResolvedMcp, find_locked};
use crate::mcp::settings::SettingsFile;
use crate::mcp::{secrets, store};

/// A settings file of this scope, and its shape.
#[derive(Debug, Clone)]
pub struct McpTarget {
    pub target: Target,
    pub format: McpFormat,
}

/// What the lock says of one settings file of a server, before and after this run.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The hash to record for this file if the step succeeds (None: not ours afterwards).
    record: Option<String>,
    /// The hash the old lock recorded (kept if the step fails).
    prev: Option<String>,
}

/// One settings file of a server.
pub type ServerDest = Dest<Recorded>;

/// Where a server's record goes in the lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LockKey {
    url: String,
    requested: Requested,
    sub_dir: Option<String>,
    commit: Option<String>,
    /// The pin's signer (SPEC 16), carried to the lock with the commit.
    signer: Option<String>,
    file: String,
}

/// A server's own planning state.
#[derive(Debug, Clone, Default)]
pub struct ServerExtra {
    /// The pack file it comes from (`inline` for inline packs).
    pub pack: String,
    key: Option<LockKey>,
    /// The definition (placeholder form), to remember in the store once written.
    def: Option<Map<String, Value>>,
}

/// One server (or one broken pack), all its settings files.
pub type ServerItem = Item<ServerExtra, Recorded>;

impl ServerItem {
    /// The definition (placeholder form), for servers from a pack.
    pub(crate) fn def(&self) -> Option<&Map<String, Value>> {
        self.extra.def.as_ref()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// Add or replace the entry; the value is in placeholder form, filled in at write time
    /// with `secrets` (resolved once, by the plan; `Debug` never shows a value).
    Upsert {
        name: String,
        value: Value,
        secrets: BTreeMap<String, secrets::Secret>,
    },
    Remove {
        name: String,
    },
}

/// The edits to one settings file.
#[derive(Debug)]
pub struct FilePlan {
    pub target: McpTarget,
    /// (item index, destination index, edit)
    pub(crate) edits: Vec<(usize, usize, Edit)>,
}

#[derive(Debug, Default)]
pub struct McpPlan {
    pub items: Vec<ServerItem>,
    pub files: Vec<FilePlan>,
    pub resolved: Vec<ResolvedMcp>,
    pub failed: Vec<FailedMcp>,
    /// Lock entries of sources that failed as a whole, and of broken packs: kept as they were.
    kept: Vec<(LockKey, String, LockedServer)>,
    /// The lock's `mcps` as it will be if every step succeeds.
    pub lock: Vec<LockedMcpSource>,
    pub(crate) cache_root: Option<PathBuf>,
    /// Project scope: the project folder (canonical); settings files must resolve inside it.
    pub(crate) confine: Option<PathBuf>,
}

/// What to do about secret placeholders whose value is not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPolicy {
    /// What the config's `secrets.on_missing` says (default: the server fails, exit 1).
    Require,
    /// `--allow-missing-secrets` (= `on_missing: skip`): the server is skipped, with a warning.
    AllowMissing,
    /// `kst lock`: nothing is written, so values are not needed; plan as if they were set
    /// (placeholders are still checked for form: an unknown tag fails).
    Ignore,
}

impl SecretPolicy {
    /// The resolver for this policy and the config's `secrets:`.
    pub fn resolver(self, cfg: &secrets::SecretsConfig) -> secrets::Resolver {
        let mode = match self {
            SecretPolicy::Require => {
                secrets::Mode::Resolve(cfg.on_missing.unwrap_or(secrets::OnMissing::Fail))
            }
            SecretPolicy::AllowMissing => secrets::Mode::Resolve(secrets::OnMissing::Skip),
            SecretPolicy::Ignore => secrets::Mode::Check,
        };
        secrets::Resolver::new(cfg.clone(), mode)
    }
}

/// Everything the plan needs.
pub struct Inputs<'a> {
    pub resolved: Vec<Result<ResolvedMcp, FailedMcp>>,
    pub old: &'a Lock,
    pub agents: &'a [&'static Agent],
    pub global: bool,
    pub home: &'a Path,
    pub scope_root: &'a Path,
    pub secrets: &'a secrets::Resolver,
    /// `--update [NAME…]`: owned entries get the secrets' current values.
    pub update: &'a Option<Vec<String>>,
    /// Where the definitions kst wrote are remembered (None: no cache, nothing remembered).
    pub cache_root: Option<PathBuf>,
    /// Project scope: the project folder. A settings file (or a folder on its way) that is a
    /// symlink leading out of the project is refused: a cloned project could point
    /// `.mcp.json` at `~/.claude.json`. Global settings files may be symlinked anywhere.
    pub confine: Option<PathBuf>,
}

pub(crate) use crate::shared_file::{check_confined, real_path};

fn rel_of(abs: &Path, root: &Path) -> String {
    match abs.strip_prefix(root) {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => abs.to_string_lossy().into_owned(),
    }
}

fn target_of(agent: &Agent, global: bool, home: &Path, root: &Path) -> McpTarget {
    let p = agent.mcp_path(global, home);
    let abs = if p.is_absolute() { p } else { root.join(p) };
    McpTarget {
        target: Target {
            rel: rel_of(&abs, root),
            abs,
        },
        format: agent.mcp_format,
    }
}

/// The settings files of the configured agents, one per path (agents sharing `.mcp.json`
/// share one entry).
pub fn targets(agents: &[&Agent], global: bool, home: &Path, root: &Path) -> Vec<McpTarget> {
    let mut out: Vec<McpTarget> = Vec::new();
    for a in agents {
        let t = target_of(a, global, home, root);
        if !out.iter().any(|o| o.target.abs == t.target.abs) {
            out.push(t);
        }
    }
    out
}

/// A lock path kst may edit: the settings file of some agent in this scope, nothing else. The
/// lock is a file in the project; a hostile one must not make kst edit `~/.bashrc`.
pub(crate) fn known_target(rel: &str, global: bool, home: &Path, root: &Path) -> Option<McpTarget> {
    agents::AGENTS
        .iter()
        .map(|a| target_of(a, global, home, root))
        .find(|t| t.target.rel == rel)
}

/// Read and parse a settings file (following a symlink: the agent reads the target).
pub(crate) fn load(t: &McpTarget, confine: Option<&Path>) -> Result<SettingsFile, String> {
    check_confined(&t.target.abs, confine)?;
    let text = match crate::fsx::read_input(&t.target.abs, crate::fsx::SETTINGS_CAP, None) {
        Ok(s) => Some(s),
        Err(crate::fsx::ReadError::NotFound) => {
            if std::fs::symlink_metadata(&t.target.abs).is_ok() {
                return Err("it is a symlink to a missing file".into());
            }
            None
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    SettingsFile::parse(t.format, text.as_deref())
}

type Loaded = (McpTarget, Result<SettingsFile, String>);

/// Each settings file is read and parsed once per plan.
fn file_of<'a>(
    files: &'a mut HashMap<String, Loaded>,
    t: &McpTarget,
    confine: Option<&Path>,
) -> &'a mut Loaded {
    files
        .entry(t.target.rel.clone())
        .or_insert_with(|| (t.clone(), load(t, confine)))
}

fn file_error(t: &McpTarget, e: &str) -> String {
    format!(
        "{} cannot be edited ({e}); it was left unchanged — fix it by hand and sync again",
        t.target.abs.display()
    )
}

pub fn build(inp: Inputs) -> McpPlan {
    let mut plan = McpPlan {
        cache_root: inp.cache_root.clone(),
        confine: inp.confine.clone(),
        ..Default::default()
    };
    let tgts = targets(inp.agents, inp.global, inp.home, inp.scope_root);
    let mut files: HashMap<String, Loaded> = HashMap::new();
    let mut edits: BTreeMap<String, Vec<(usize, usize, Edit)>> = BTreeMap::new();

    // Who owns what: (server, file) → (hash, old source index, pack file).
    let mut owned: HashMap<(String, String), (String, usize, String)> = HashMap::new();
    for (si, s) in inp.old.mcps.iter().enumerate() {
        for p in &s.packs {
            for (name, rec) in &p.servers {
                for t in &rec.targets {
                    owned
                        .entry((name.clone(), t.clone()))
                        .or_insert_with(|| (rec.hash.clone(), si, p.file.clone()));
                }
            }
        }
    }
    // (server, file) pairs this plan accounts for; the rest of `owned` is pruned.
    let mut claims: Claims<(String, String)> = Claims::default();
    // Server name → who provides it (first source wins).
    let mut providers: HashMap<String, String> = HashMap::new();

    for r in inp.resolved {
        let r = match r {
            Ok(r) => r,
            Err(f) => {
                // A source that failed as a whole keeps its lock entries and its servers,
                // whatever request recorded them (as for skills).
                let id = f.entry.id();
                for prev in crate::lock::kept_by_failure(&inp.old.mcps, &id) {
                    for p in &prev.packs {
                        let key = key_of_locked(prev, &p.file);
                        keep_what_it_had(p, key, &mut claims, &mut plan.kept);
                    }
                }
                plan.failed.push(f);
                continue;
            }
        };
        let locked = find_locked(inp.old, &r.entry);
        let commit = r.commit.map(|c| c.to_string());
        let key = |file: &str| LockKey {
            url: r.url.clone(),
            requested: r.requested.clone(),
            sub_dir: r.entry.identity().2,
            commit: commit.clone(),
            signer: r.signer.clone(),
            file: file.to_string(),
        };
        for b in &r.selected.broken {
            // A pack that cannot be read now keeps what it had installed before.
            if let Some(prev) = locked.and_then(|l| l.packs.iter().find(|p| p.file == b.file)) {
                keep_what_it_had(prev, key(&b.file), &mut claims, &mut plan.kept);
            }
            plan.items.push(ServerItem {
                kind: Kind::McpPack,
                name: format!("pack {}", b.file),
                source: r.url.clone(),
                commit: commit.clone(),
                tree: None,
                hash: None,
                description: None,
                dests: Vec::new(),
                error: Some(b.error.clone()),
                warnings: Vec::new(),
                extra: ServerExtra {
                    pack: b.file.clone(),
                    key: None,
                    def: None,
                },
            });
        }
        for pack in &r.selected.packs {
            for server in &pack.servers {
                let name = &server.name;
                let hash = store::hash(&server.def);
                let mut item = ServerItem {
                    kind: Kind::Server,
                    name: name.clone(),
                    source: r.url.clone(),
                    commit: commit.clone(),
                    tree: None,
                    hash: Some(hash.clone()),
                    description: None,
                    dests: Vec::new(),
                    error: None,
                    warnings: Vec::new(),
                    extra: ServerExtra {
                        pack: pack.file.clone(),
                        key: Some(key(&pack.file)),
                        def: Some(server.def.clone()),
                    },
                };
                if let Some(owner) = providers.get(name) {
                    item.error = Some(format!(
                        "server {name:?} is already provided by {owner}; the first source wins"
                    ));
                    item.extra.key = None;
                    plan.items.push(item);
                    continue;
                }
                let provider = format!("{} ({})", r.url, pack.file);
                providers.insert(name.clone(), provider.clone());

                let names = secrets::names_in(&Value::Object(server.def.clone()));
                // Placeholders kst cannot understand fail the server before anything else.
                let form_errors = inp.secrets.check(&names);
                let on_missing = match inp.secrets.mode() {
                    secrets::Mode::Resolve(m) => m,
                    // `kst lock`: values are not needed.
                    secrets::Mode::Check => secrets::OnMissing::Warn,
                };
                // `--update`, or `--update NAME` naming this server or its pack: a new secret
                // value is written only then.
                let refresh = match inp.update {
                    None => false,
                    Some(n) if n.is_empty() => true,
                    Some(n) => n.contains(name) || picks_named(&r.entry, n),
                };
                // Values are resolved only when an entry is to be written or compared, once
                // per server (a manager's CLI may prompt).
                let mut res: Option<secrets::Resolution> = None;
                let ii = plan.items.len();
                for t in &tgts {
                    claims.claim((name.clone(), t.target.rel.clone()), provider.clone());
                    let prev = owned
                        .get(&(name.clone(), t.target.rel.clone()))
                        .map(|o| o.0.clone());
                    let mut dest = ServerDest {
                        target: t.target.clone(),
                        action: Action::Unchanged,
                        reason: None,
                        error: None,
                        extra: Recorded {
                            record: prev.clone(),
                            prev: prev.clone(),
                        },
                    };
                    // A placeholder that cannot be resolved (an unknown tag, a malformed one)
                    // fails the server whatever on_missing says: nothing is written for it,
                    // never the placeholder.
                    if !form_errors.is_empty() {
                        dest.error = Some(form_errors.join("; "));
                        item.dests.push(dest);
                        continue;
                    }
                    let (rendered, warnings) = render(t.format, &server.def);
                    for w in warnings {
                        let w = format!("{}: {w}", t.target.rel);
                        if !item.warnings.contains(&w) {
                            item.warnings.push(w);
                        }
                    }
                    let file = file_of(&mut files, t, inp.confine.as_deref());
                    let sf = match &file.1 {
                        Ok(sf) => sf,
                        Err(e) => {
                            dest.error = Some(file_error(t, e));
                            item.dests.push(dest);
                            continue;
                        }
                    };
                    let on_disk = sf.get(name);
                    // First what can be decided without secret values.
                    let ours_now = on_disk
                        .as_ref()
                        .is_some_and(|d| secrets::matches(d, &rendered));
                    let decided = match (&prev, &on_disk) {
                        (None, Some(_)) if !ours_now => {
                            Some((Action::Skipped, Some(Reason::Conflict), None))
                        }
                        // kst's entry for this very definition, whatever the secrets' values:
                        // a rotated secret is written on `--update` only (SPEC 10c). An entry
                        // still holding a placeholder (`on_missing: warn`) is filled in.
                        (Some(h), Some(d))
                            if ours_now
                                && *h == hash
                                && !refresh
                                && !holds_placeholder(d, &names) =>
                        {
                            Some((Action::Unchanged, None, Some(hash.clone())))
                        }
                        (Some(h), Some(d))
                            if !ours_now
                                && !was_written_by_us(
                                    d,
                                    h,
                                    t.format,
                                    inp.cache_root.as_deref(),
                                ) =>
                        {
                            Some((
                                Action::Skipped,
                                Some(Reason::ModifiedLocally),
                                Some(h.clone()),
                            ))
                        }
                        _ => None,
                    };
                    if let Some((action, reason, record)) = decided {
                        dest.action = action;
                        dest.reason = reason;
                        dest.extra.record = record;
                        item.dests.push(dest);
                        continue;
                    }
                    let res = res.get_or_insert_with(|| {
                        let mut r = inp.secrets.resolve(&names);
                        if inp.secrets.mode() == secrets::Mode::Check {
                            r.missing.clear();
                        }
                        r
                    });
                    // A failing manager CLI or an unusable credentials file fails the server
                    // whatever on_missing says.
                    if !res.errors.is_empty() {
                        dest.error = Some(res.errors.join("; "));
                        item.dests.push(dest);
                        continue;
                    }
                    if !res.missing.is_empty() && on_missing != secrets::OnMissing::Warn {
                        if on_missing == secrets::OnMissing::Skip {
                            dest.action = Action::Skipped;
                            dest.reason = Some(Reason::MissingSecret);
                        } else {
                            dest.error = Some(format!(
                                "{}; or pass --allow-missing-secrets (or set `secrets: {{ on_missing: skip }}`) to skip this server",
                                res.missing.join("; ")
                            ));
                        }
                        item.dests.push(dest);
                        continue;
                    }
                    let want = secrets::substitute(&rendered, &res.values);
                    let (action, reason) =
                        keyed(prev.is_some(), on_disk.as_ref().map(|d| *d == want));
                    if prev.is_none() && action == Action::Unchanged {
                        tracing::info!(
                            "{}: server {name:?} is exactly what kst would write; adopting it",
                            t.target.rel
                        );
                    }
                    let record = (reason.is_none()).then(|| hash.clone());
                    dest.action = action;
                    dest.reason = reason;
                    dest.extra.record = record;
                    if action.writes() {
                        edits.entry(t.target.rel.clone()).or_default().push((
                            ii,
                            item.dests.len(),
                            Edit::Upsert {
                                name: name.clone(),
                                value: rendered,
                                secrets: res.values.clone(),
                            },
                        ));
                    }
                    item.dests.push(dest);
                }
                if let Some(res) = &res
                    && !res.missing.is_empty()
                    && res.errors.is_empty()
                {
                    match on_missing {
                        secrets::OnMissing::Skip => item.warnings.push(format!(
                            "{}; server not written (--allow-missing-secrets / on_missing: skip)",
                            res.missing.join("; ")
                        )),
                        secrets::OnMissing::Warn => item.warnings.push(format!(
                            "{}; server written with the placeholder left in place (on_missing: warn): it will not authenticate until the secret is set and kst syncs again",
                            res.missing.join("; ")
                        )),
                        secrets::OnMissing::Fail => {}
                    }
                }
                for d in &item.dests {
                    match d.reason {
                        Some(Reason::Conflict) => item.warnings.push(format!(
                            "{} already has a server {name:?} that kst did not install; left as it is (rename one of them to use both)",
                            d.target.rel
                        )),
                        Some(Reason::ModifiedLocally) => item.warnings.push(format!(
                            "{}: server {name:?} was modified locally; left as it is (delete the entry to let kst reinstall it)",
                            d.target.rel
                        )),
                        _ => {}
                    }
                }
                plan.items.push(item);
            }
        }
        plan.resolved.push(r);
    }

    // Prune: entries the old lock tracks that nothing claims or keeps.
    let mut gone: BTreeMap<(usize, String, String), Vec<(String, String)>> = BTreeMap::new();
    for key in claims.pruned(owned.keys()) {
        let (name, rel) = key;
        let (hash, si, file) = &owned[key];
        gone.entry((*si, file.clone(), name.clone()))
            .or_default()
            .push((rel.clone(), hash.clone()));
    }
    for ((si, file, name), rels) in gone {
        let src = &inp.old.mcps[si];
        let mut item = ServerItem {
            kind: Kind::Server,
            name: name.clone(),
            source: src.url.clone(),
            commit: src.commit.clone(),
            tree: None,
            hash: None,
            description: None,
            dests: Vec::new(),
            error: None,
            warnings: Vec::new(),
            extra: ServerExtra {
                pack: file.clone(),
                key: Some(key_of_locked(src, &file)),
                def: None,
            },
        };
        let ii = plan.items.len();
        for (rel, hash) in rels {
            let Some(t) = tgts
                .iter()
                .find(|t| t.target.rel == rel)
                .cloned()
                .or_else(|| known_target(&rel, inp.global, inp.home, inp.scope_root))
            else {
                tracing::warn!(
                    "the lock lists {rel:?} for server {name:?}, which is not an agent's settings file; left alone"
                );
                continue;
            };
            let mut dest = ServerDest {
                target: t.target.clone(),
                action: Action::Removed,
                reason: None,
                error: None,
                extra: Recorded {
                    record: None,
                    prev: Some(hash.clone()),
                },
            };
            let file = file_of(&mut files, &t, inp.confine.as_deref());
            match &file.1 {
                Err(e) => dest.error = Some(file_error(&t, e)),
                Ok(sf) => match sf.get(&name) {
                    // Already gone: just forget it.
                    None => continue,
                    Some(d)
                        if was_written_by_us(&d, &hash, t.format, inp.cache_root.as_deref()) =>
                    {
                        edits.entry(rel.clone()).or_default().push((
                            ii,
                            item.dests.len(),
                            Edit::Remove { name: name.clone() },
                        ));
                    }
                    Some(_) => {
                        dest.action = Action::Skipped;
                        dest.reason = Some(Reason::ModifiedLocally);
                        item.warnings.push(format!(
                            "{rel}: server {name:?} is no longer in the config but was modified locally (or kst cannot tell: its definition is not in this machine's cache); left in place and no longer tracked — delete it by hand if you do not want it"
                        ));
                    }
                },
            }
            item.dests.push(dest);
        }
        if !item.dests.is_empty() {
            plan.items.push(item);
        }
    }

    for (rel, e) in edits {
        let target = files[&rel].0.clone();
        plan.files.push(FilePlan { target, edits: e });
    }
    plan.lock = plan.lock_entries();
    plan
}

/// A pack that cannot be read now (or whose source failed) keeps what it had installed: its
/// servers' lock records and their entries, as they were.
fn keep_what_it_had(
    pack: &LockedMcpPack,
    key: LockKey,
    claims: &mut Claims<(String, String)>,
    kept: &mut Vec<(LockKey, String, LockedServer)>,
) {
    for (name, rec) in &pack.servers {
        claims.keep(rec.targets.iter().map(|t| (name.clone(), t.clone())));
        kept.push((key.clone(), name.clone(), rec.clone()));
    }
}

/// Does `entry` pick a pack by one of `names`?
fn picks_named(entry: &crate::mcp::McpSource, names: &[String]) -> bool {
    matches!(&entry.kind, crate::mcp::McpSourceKind::Pack { selection: crate::mcp::PackSelection::Named(p), .. }
        if p.iter().any(|p| names.contains(&p.name)))
}

/// Does the entry `d` still hold one of the placeholders `names` as text (written under
/// `on_missing: warn`)?
fn holds_placeholder(d: &Value, names: &BTreeSet<String>) -> bool {
    !names.is_empty() && secrets::names_in(d).iter().any(|n| names.contains(n))
}

/// Is the entry `d` one kst wrote from the definition with hash `h` (whatever the secrets)?
/// Not being able to tell counts as no: the safe side for a sync (see [`written_by_us`]).
fn was_written_by_us(d: &Value, h: &str, format: McpFormat, cache_root: Option<&Path>) -> bool {
    written_by_us(d, h, format, cache_root).unwrap_or(false)
}

/// Is the entry `d` one kst wrote from the definition with hash `h` (whatever the secrets)?
/// Needs that definition back from the store; entries without placeholders in the plain
/// `mcpServers` shape can also be recognised by hashing them directly. `None`: kst cannot tell
/// (the definition is not in this machine's cache and the entry is no plain copy of it).
pub(crate) fn written_by_us(
    d: &Value,
    h: &str,
    format: McpFormat,
    cache_root: Option<&Path>,
) -> Option<bool> {
    if let Some(old) = cache_root.and_then(|root| store::get(root, h)) {
        return Some(secrets::matches(d, &render(format, &old).0));
    }
    (matches!(format, McpFormat::McpServers | McpFormat::ZCode)
        && d.as_object().is_some_and(|m| store::hash(m) == h))
    .then_some(true)
}

fn key_of_locked(l: &LockedMcpSource, file: &str) -> LockKey {
    LockKey {
        url: l.url.clone(),
        requested: l.requested.clone(),
        sub_dir: l.sub_dir.clone(),
        commit: l.commit.clone(),
        signer: l.signer.clone(),
        file: file.to_string(),
    }
}

impl McpPlan {
    /// The lock's `mcps` from the items' outcomes: a step that failed keeps what the old lock
    /// said, a step that succeeded records what it wrote.
    pub(crate) fn lock_entries(&self) -> Vec<LockedMcpSource> {
        let mut recs: BTreeMap<LockKey, BTreeMap<String, Vec<(String, String)>>> = BTreeMap::new();
        for item in &self.items {
            let Some(key) = &item.extra.key else { continue };
            for d in &item.dests {
                let rec = if d.error.is_some() {
                    &d.extra.prev
                } else {
                    &d.extra.record
                };
                if let Some(h) = rec {
                    recs.entry(key.clone())
                        .or_default()
                        .entry(item.name.clone())
                        .or_default()
                        .push((d.target.rel.clone(), h.clone()));
                }
            }
        }
        for (key, name, rec) in &self.kept {
            let v = recs
                .entry(key.clone())
                .or_default()
                .entry(name.clone())
                .or_default();
            // A kept record may repeat one this run wrote (two requests of one source, one of
            // them failed): each file once.
            for tgt in &rec.targets {
                if !v.iter().any(|(x, _)| x == tgt) {
                    v.push((tgt.clone(), rec.hash.clone()));
                }
            }
        }
        let mut out: Vec<LockedMcpSource> = Vec::new();
        for (key, servers) in recs {
            let pack = LockedMcpPack {
                file: key.file.clone(),
                servers: servers
                    .into_iter()
                    .map(|(name, targets)| {
                        let new_hash = self
                            .items
                            .iter()
                            .find(|i| i.name == name && i.extra.key.as_ref() == Some(&key))
                            .and_then(|i| i.hash.clone());
                        // One hash per server: if some file still holds an older definition
                        // (modified locally), keep that one, so it is still recognised.
                        let hash = targets
                            .iter()
                            .map(|(_, h)| h)
                            .find(|h| Some(*h) != new_hash.as_ref())
                            .or(new_hash.as_ref())
                            .cloned()
                            .unwrap_or_default();
                        let targets = targets.into_iter().map(|(t, _)| t).collect();
                        (name, LockedServer { hash, targets })
                    })
                    .collect(),
            };
            match out.iter_mut().find(|s| {
                s.url == key.url && s.requested == key.requested && s.sub_dir == key.sub_dir
            }) {
                // The same source under two commits (a failed removal after `--update`):
                // one entry, one pack per file.
                Some(s) => match s.packs.iter_mut().find(|p| p.file == pack.file) {
                    Some(p) => p.servers.extend(pack.servers),
                    None => s.packs.push(pack),
                },
                None => out.push(LockedMcpSource {
                    url: key.url.clone(),
                    requested: key.requested.clone(),
                    sub_dir: key.sub_dir.clone(),
                    commit: key.commit.clone(),
                    signer: key.signer.clone(),
                    packs: vec![pack],
                }),
            }
        }
        // A source resolved in this run is pinned to what it resolved to, whatever old records
        // (kept after a failed step) say.
        for s in &mut out {
            if let Some(r) = self.resolved.iter().find(|r| {
                r.url == s.url
                    && r.requested == s.requested
                    && r.entry.sub_dir() == s.sub_dir.as_deref()
            }) {
                s.commit = r.commit.map(|c| c.to_string());
                s.signer = r.signer.clone();
            }
        }
        let mut lock = Lock {
            mcps: out,
            ..Lock::empty()
        };
        lock.normalise();
        lock.mcps
    }
}
