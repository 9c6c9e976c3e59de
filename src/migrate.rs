//! Taking over a Kasetto 3.12 `kasetto.lock` (SPEC 17).
//!
//! Kasetto writes its lock where kst reads its own (next to the config in the project scope,
//! `$XDG_DATA_HOME/kasetto/kasetto.lock` globally), in another shape: `version: 1|2|3` with a
//! `skills:` map (`<source>::<name>` → destination CSV, hash, source, revision) and an `assets:`
//! map (`mcp::<source>::<file>` → the pack file's hash and the server names it merged; commands
//! and instructions the same way). Kasetto recorded no commit, so nothing in it pins a source:
//! what kst keeps from it is *ownership* of what it installed.
//!
//! Ownership is taken only where the disk is still what Kasetto recorded, checked with
//! Kasetto's own hash:
//! - a skill folder: SHA-256 over the folder's files in path order, each contributing its
//!   `/`-separated relative path, a NUL byte, its bytes and a NUL byte ([`kasetto_dir_hash`]);
//!   Kasetto copies a symlink's target as a regular file, so a folder holding a symlink is not
//!   one it wrote (and is never followed here);
//! - an inline MCP pack (`<inline>`): SHA-256 of the compact JSON of its servers map with sorted
//!   keys, recomputed from the entries in each `mcpServers` settings file;
//! - an MCP pack file of a local-folder source: SHA-256 of the file's bytes; where the file still
//!   has that hash, Kasetto wrote its servers verbatim, so an entry equal to its server is
//!   Kasetto's.
//!
//! A checked item becomes an entry of the lock kst plans against (the skill's git tree id as it
//! is on disk; the server entry's own hash), so the usual rules apply from there: still in the
//! config → kept or updated in place; gone from the config → pruned. Anything else Kasetto
//! listed and that is still there is *modified locally*: it is not in that lock, so kst neither
//! overwrites nor deletes it, and the sync reports it. MCP servers from a git pack (whose hash
//! is of a pack file Kasetto downloaded, which kst does not have), or from a local pack file that
//! changed since, cannot be checked: kst's usual rule takes them over when the entry is exactly
//! what kst writes now, and leaves any other one alone as a conflict.
//!
//! Commands: Kasetto hashed each command's *source* file, and names and renders some agents'
//! files its own way (Gemini's flat `git-commit.toml`, its TOML, CRLF made LF, …). Once the sync
//! has read the configured commands ([`Takeover::take_files`]), a file the lock lists is
//! Kasetto's when the source still has that hash and the file is exactly Kasetto's rendering of
//! it ([`kasetto_command_bytes`]) at Kasetto's path for it ([`kasetto_command_path`]); it joins
//! the commands section as kst's, so the plan replaces it (same path) or prunes it (a path kst
//! does not write). Any other listed file is kept: changed since (*modified locally*), or not
//! checkable (source not read, or changed). Instructions' own rule files (Kasetto's
//! `file:PATH`) are taken over the same way ([`kasetto_rule_bytes`]); their blocks in shared
//! files (`agg:FILE`) have the same ids in both tools and are adopted by kst's usual rule.
//!
//! The Kasetto lock is kept, byte for byte, as `kasetto.lock.kasetto-backup` next to the new
//! lock before kst writes its own ([`Takeover::backup`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::agents::{CommandFormat, McpFormat, RuleFormat};
use crate::config::{Config, Scope};
use crate::error::{Error, Result};
use crate::item::{Action, Kind, Reason};
use crate::lock::{
    Lock, LockedFile, LockedFileSource, LockedMcpPack, LockedMcpSource, LockedServer, LockedSkill,
    LockedSource,
};
use crate::request::Requested;
use crate::scope::ScopeCtx;

/// The name of the backup kept next to the new lock.
pub const BACKUP_SUFFIX: &str = ".kasetto-backup";

/// Kasetto's lock as its 3.12 source defines it (unknown fields, such as v1's `last_run`, are
/// ignored as Kasetto ignores them).
#[derive(Debug, Deserialize)]
struct KasettoLock {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    skills: BTreeMap<String, KasettoSkill>,
    #[serde(default)]
    assets: BTreeMap<String, KasettoAsset>,
}

#[derive(Debug, Deserialize)]
struct KasettoSkill {
    /// Install folders, comma-separated, relative to the scope root (absolute in old locks).
    destination: String,
    hash: String,
    skill: String,
    source: String,
    #[serde(default)]
    source_revision: String,
}

#[derive(Debug, Deserialize)]
struct KasettoAsset {
    kind: String,
    name: String,
    hash: String,
    source: String,
    /// For MCP packs: the server names merged, comma-separated.
    destination: String,
}

/// Kasetto's source name of an inline MCP pack.
const INLINE: &str = "<inline>";

/// What the take-over found; the lock to plan against is returned beside it.
#[derive(Debug, Default)]
pub struct Takeover {
    /// The Kasetto lock's path and exact bytes (for the backup).
    pub path: PathBuf,
    bytes: Vec<u8>,
    /// Skill folders taken over (relative to the scope root).
    pub skills: Vec<String>,
    /// Skill folders Kasetto listed that no longer match its hash (kept, reported).
    pub modified_skills: Vec<String>,
    /// `(server, settings file)` pairs taken over.
    pub servers: Vec<(String, String)>,
    /// `(server, settings file)` pairs that no longer match Kasetto's hash (kept, reported).
    pub modified_servers: Vec<(String, String)>,
    /// Servers of pack files, which kst's usual rule decides (see the module comment).
    pub unchecked_servers: Vec<String>,
    /// Entries of kinds kst does not know, not taken over.
    pub other_assets: Vec<String>,
    /// Entries left alone because they name a place kst does not manage.
    pub outside: Vec<String>,
    /// Kasetto's command and instructions entries, each with the files it wrote that lie where
    /// Kasetto writes that item for an agent of this scope: checked once the sync has read
    /// their sources ([`Takeover::take_files`]).
    file_assets: Vec<KasettoFileAsset>,
    /// Command and rule files the Kasetto lock lists elsewhere (`..`, absolute, another folder
    /// or name): never read, owned or removed.
    pub outside_files: Vec<String>,
    /// What [`Takeover::take_files`] found, per kind (unset until the sync reads the sources).
    command_files: std::sync::OnceLock<FileFindings>,
    rule_files: std::sync::OnceLock<FileFindings>,
}

/// A `command::<source>::<name>` or `instructions::<source>::<name>` entry of Kasetto's lock:
/// its source file's hash (SHA-256 of the Markdown file's bytes, as Kasetto hashed it) and the
/// files it rendered from it, each with the format of the agent whose folder holds it.
/// (Instruction blocks in shared files are not listed: kst adopts a block that is exactly
/// what it writes, and both tools give a block the same id.)
#[derive(Debug, Clone)]
struct KasettoFileAsset {
    kind: Kind,
    source: String,
    name: String,
    hash: String,
    files: Vec<(String, FileFormat)>,
}

/// The format of the agent a Kasetto file was written for, as kst names it.
#[derive(Debug, Clone, Copy)]
enum FileFormat {
    Command(CommandFormat),
    Rule(RuleFormat),
}

/// What the take-over of one kind's files found, by file (relative to the scope root).
#[derive(Debug, Clone, Default)]
pub struct FileFindings {
    /// Still what Kasetto wrote: recorded as kst's, so kst's usual rules update (same path) or
    /// prune (a path kst does not write) them.
    pub taken: Vec<String>,
    /// Changed since Kasetto wrote them: kept as they are, not kst's.
    pub modified: Vec<String>,
    /// Kasetto's files whose source this sync did not read, or whose source changed since
    /// Kasetto hashed it: what Kasetto wrote cannot be known, so they are left alone.
    pub unchecked: Vec<String>,
}

/// Is `text` a Kasetto lock rather than kst's? Kasetto's top level has `skills:`/`assets:`
/// maps; kst's has `sources:`/`mcps:` lists and neither of those keys.
///
/// Asked on every run, before the lock is parsed for real: the top-level keys are read from
/// the lines that start at column 0 (the block style both tools write), stopping at the first
/// key that decides it — kst writes `sources:` on its lock's second line, so kst's own lock
/// costs a few lines, not a scan of thousands of entries. Anything that is not plainly block
/// style up to there is parsed in full.
pub fn is_kasetto_lock(text: &str) -> bool {
    // A UTF-8 BOM may start a YAML stream (an editor on Windows adds one).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(answer) = block_decision(text) {
        return answer;
    }
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(serde_yaml_ng::Value::Mapping(m)) => {
            let has = |k: &str| m.contains_key(k);
            (has("skills") || has("assets")) && !has("sources") && !has("mcps")
        }
        _ => false,
    }
}

/// The answer read from the block-style top-level keys (`key:` at column 0), or None when the
/// text is anything else up to the deciding key: flow style, quoted or complex keys, anchors,
/// tags, several documents.
///
/// A `sources:` or `mcps:` key decides at once (no): YAML reads on line by line, so nothing
/// after a key at column 0 can make it anything but a top-level key — a later line can only
/// add keys, or make the text no YAML at all (a duplicate key, a second document), which is
/// no Kasetto lock either.
fn block_decision(text: &str) -> Option<bool> {
    let mut kasetto_key = false;
    let mut any_key = false;
    let mut rest = text;
    let mut i = 0usize;
    loop {
        let (raw, next) = match rest.find('\n') {
            Some(at) => (
                rest[..at].strip_suffix('\r').unwrap_or(&rest[..at]),
                Some(&rest[at + 1..]),
            ),
            None => (rest, None),
        };
        // YAML also breaks lines at a lone CR: parse such a text in full.
        if raw.contains('\r') {
            return None;
        }
        match line_key(raw, i, any_key)? {
            Some("sources" | "mcps") => return Some(false),
            Some(key) => {
                any_key = true;
                kasetto_key |= key == "skills" || key == "assets";
            }
            None => {}
        }
        i += 1;
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    any_key.then_some(kasetto_key)
}

/// One line of a block-style top-level mapping: `Some(Some(key))` for `key:` at column 0,
/// `Some(None)` for a line that adds no key (indented, a comment, a sequence item at column 0,
/// a leading `---`), None for anything that needs the full parse.
fn line_key(line: &str, i: usize, after_a_key: bool) -> Option<Option<&str>> {
    // A quoted scalar or a flow collection may go on past the line, even onto a line that
    // starts at column 0 and looks like a key (the parser takes it): parse in full.
    if !closed_on_its_line(line) {
        return None;
    }
    let Some(first) = line.chars().next() else {
        return Some(None);
    };
    match first {
        ' ' | '\t' | '#' => Some(None),
        // A block sequence written at column 0 under the key before it (serde's style).
        '-' if after_a_key && (line == "-" || line.starts_with("- ")) => Some(None),
        '-' if i == 0 && line.trim_end() == "---" => Some(None),
        c if c.is_ascii_alphabetic() || c == '_' => {
            let (key, _) = line.split_once(':')?;
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                .then_some(Some(key))
        }
        _ => None,
    }
}

/// Does every quote and bracket opened on `line` close on it (a comment ends it)? Any quote
/// character counts as opening one, even inside a plain scalar where YAML reads it as text:
/// that only sends the text to the full parse.
fn closed_on_its_line(line: &str) -> bool {
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    let mut prev = b' ';
    let mut bytes = line.bytes().peekable();
    while let Some(b) = bytes.next() {
        match (quote, b) {
            (Some(b'"'), b'\\') => {
                bytes.next();
            }
            (Some(b'\''), b'\'') if bytes.peek() == Some(&b'\'') => {
                bytes.next();
            }
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'{' | b'[') => depth += 1,
            (None, b'}' | b']') => depth = depth.saturating_sub(1),
            (None, b'#') if prev == b' ' || prev == b'\t' => break,
            _ => {}
        }
        prev = b;
    }
    quote.is_none() && depth == 0
}

/// Take over the scope's lock if it is a Kasetto lock: the lock kst plans against (what was
/// taken over) and what the take-over found. `bytes`: the lock at `path`, as read (once, by
/// [`crate::workspace::Workspace::load`]). `None`: kst's own ([`Lock::from_read`] parses it
/// and reports its errors).
pub fn read(
    path: &Path,
    bytes: &[u8],
    scope: &ScopeCtx,
    config: &Config,
) -> Result<Option<(Lock, Takeover)>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    // A UTF-8 BOM may start a YAML stream; the YAML parser reads one as a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !is_kasetto_lock(text) {
        return Ok(None);
    }
    let bad = |msg: String| {
        Error::usage(format!(
            "{}: {msg}\n  this is a Kasetto lock that kst cannot take over; it was left untouched: \
             fix it, or move it away and run `kst sync` to install afresh",
            path.display()
        ))
    };
    // The lock may be any file: its content is never quoted.
    let k: KasettoLock = serde_yaml_ng::from_str(text).map_err(|e| {
        bad(crate::malformed::yaml(&e, text, crate::malformed::Quote::Nothing).position_first())
    })?;
    if let Some(v) = k.version
        && !(1..=3).contains(&v)
    {
        return Err(bad(format!(
            "Kasetto lock version {v} is not supported (kst takes over versions 1 to 3)"
        )));
    }
    let mut t = Takeover {
        path: path.to_path_buf(),
        bytes: bytes.to_vec(),
        ..Takeover::default()
    };
    let mut lock = Lock::empty();
    let base = config.path.parent().unwrap_or(Path::new("."));
    for entry in k.skills.values() {
        take_skill(entry, scope, base, &mut lock, &mut t);
    }
    for asset in k.assets.values() {
        match asset.kind.as_str() {
            "mcp" if asset.source == INLINE => {
                let at = Pack {
                    url: crate::mcp::config::inline_url(&asset.name),
                    file: crate::mcp::resolve::INLINE_FILE.to_owned(),
                    defs: None,
                };
                take_servers(asset, &at, scope, config, &mut lock, &mut t)?;
            }
            "mcp" => match local_pack(asset, scope, base) {
                Some(at) => take_servers(asset, &at, scope, config, &mut lock, &mut t)?,
                None => t.unchecked_servers.extend(names(&asset.destination)),
            },
            "command" => asset_files(asset, Kind::Command, scope, &mut t)?,
            "instructions" => asset_files(asset, Kind::Instruction, scope, &mut t)?,
            other => t.other_assets.push(format!("{other} {}", asset.name)),
        }
    }
    lock.normalise();
    Ok(Some((lock, t)))
}

/// Kasetto's command and rule files that are still on disk and that kst's lock does not track,
/// by the Kasetto lock kept at `backup` after the take-over (for `kst doctor`): files Kasetto
/// wrote that kst left alone (changed since, or not checkable). Only files where Kasetto writes
/// them are looked at (`asset_files`); a backup that cannot be read lists none.
pub fn leftover_files(backup: &Path, scope: &ScopeCtx, lock: &Lock) -> Vec<String> {
    let within = (scope.scope == Scope::Project).then_some(scope.root.as_path());
    let Ok(bytes) = crate::fsx::read_input_bytes(backup, crate::fsx::LOCK_CAP, within) else {
        return Vec::new();
    };
    let Ok(k) = serde_yaml_ng::from_slice::<KasettoLock>(&bytes) else {
        return Vec::new();
    };
    let tracked: std::collections::BTreeSet<&String> = lock
        .commands
        .iter()
        .chain(&lock.instructions)
        .flat_map(|s| &s.items)
        .flat_map(|i| i.installed.keys())
        .collect();
    let mut t = Takeover::default();
    for asset in k.assets.values() {
        let kind = match asset.kind.as_str() {
            "command" => Kind::Command,
            "instructions" => Kind::Instruction,
            _ => continue,
        };
        if asset_files(asset, kind, scope, &mut t).is_err() {
            return Vec::new();
        }
    }
    let mut out: Vec<String> = t
        .file_assets
        .iter()
        .flat_map(|c| c.files.iter().map(|(rel, _)| rel))
        .filter(|rel| !tracked.contains(rel))
        .filter(|rel| {
            let abs = crate::files::target_at(PathBuf::from(rel.as_str()), &scope.root).abs;
            std::fs::symlink_metadata(abs).is_ok()
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

fn names(csv: &str) -> impl Iterator<Item = String> + '_ {
    csv.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The lock's source for a Kasetto source: its canonical URL (never a user name or token) or
/// the local folder as spelled; the request from Kasetto's revision label. No commit: kst pins
/// the source afresh.
fn locked_source(source: &str, revision: &str, base: &Path) -> (String, Requested) {
    let url = match crate::source::parse(source, base) {
        Ok(s) => s.identity().to_owned(),
        Err(_) => "kasetto-lock".to_owned(),
    };
    let requested = if revision == "local" {
        Requested::Local
    } else if let Some(b) = revision.strip_prefix("branch:") {
        Requested::Branch(b.to_owned())
    } else if let Some(r) = revision.strip_prefix("ref:") {
        Requested::Tag(r.to_owned())
    } else {
        Requested::Default
    };
    (url, requested)
}

fn take_skill(
    entry: &KasettoSkill,
    scope: &ScopeCtx,
    base: &Path,
    lock: &mut Lock,
    t: &mut Takeover,
) {
    for dest in names(&entry.destination) {
        let p = Path::new(&dest);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            scope.root.join(p)
        };
        let rel = crate::plan::target(
            abs.parent().unwrap_or(Path::new("/")),
            abs.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            &scope.root,
        )
        .rel;
        // Only a folder in a skills folder of this scope, named like the skill: a hostile lock
        // must not make kst own (and later delete) anything else.
        let named = abs.file_name().and_then(|n| n.to_str()) == Some(entry.skill.as_str());
        if !named || !crate::plan::is_manageable(&rel, &scope.root, &scope.manageable) {
            t.outside.push(rel);
            continue;
        }
        match std::fs::symlink_metadata(&abs) {
            Err(_) => continue, // gone: nothing to take over
            Ok(m) if !m.is_dir() => {
                t.modified_skills.push(rel);
                continue;
            }
            Ok(_) => {}
        }
        let same = kasetto_dir_hash(&abs).is_ok_and(|h| h.is_some_and(|h| h == entry.hash));
        let tree = same
            .then(|| {
                let mut budget = crate::tree::Budget::new(crate::tree::Caps::from_env());
                crate::tree::disk_tree_id(&abs, &mut budget, &crate::tree::HashContents).ok()
            })
            .flatten();
        let Some(tree) = tree else {
            t.modified_skills.push(rel);
            continue;
        };
        let (url, requested) = locked_source(&entry.source, &entry.source_revision, base);
        let src = match lock
            .sources
            .iter_mut()
            .position(|s| s.url == url && s.requested == requested)
        {
            Some(i) => &mut lock.sources[i],
            None => {
                lock.sources.push(LockedSource {
                    url,
                    requested,
                    sub_dir: None,
                    commit: None,
                    signer: None,
                    skills: Vec::new(),
                });
                lock.sources.last_mut().expect("just pushed")
            }
        };
        src.skills.push(LockedSkill {
            name: entry.skill.clone(),
            path: entry.skill.clone(),
            tree: tree.to_string(),
            installed: vec![rel.clone()],
        });
        t.skills.push(rel);
    }
}

/// Where a Kasetto MCP asset came from, as kst's lock names it, and how what Kasetto wrote is
/// checked: `defs: None` for an inline pack (Kasetto hashed the servers themselves), else the
/// servers of the pack file whose bytes have Kasetto's hash.
struct Pack {
    url: String,
    file: String,
    defs: Option<Map<String, Value>>,
}

/// A pack file in a local-folder source (Kasetto's revision `local`) whose bytes are still the
/// ones Kasetto hashed: then the entries Kasetto wrote were its servers, verbatim. Kasetto looks
/// for `mcps/<file>`, `mcp.json` and `.mcp.json` at the source's root. `None`: not a local
/// source, no such file, or the file changed since (what Kasetto wrote cannot be known).
fn local_pack(asset: &KasettoAsset, scope: &ScopeCtx, base: &Path) -> Option<Pack> {
    let Ok(crate::source::Source::Local { spelled, path }) =
        crate::source::parse(&asset.source, base)
    else {
        return None;
    };
    if asset.name.contains('/') || asset.name.starts_with('.') && asset.name != ".mcp.json" {
        return None;
    }
    // In the project scope only files of the project are read (a lock may name any path).
    let within = (scope.scope == Scope::Project).then_some(scope.root.as_path());
    let file = [format!("mcps/{}", asset.name), asset.name.clone()]
        .into_iter()
        .find(|f| {
            crate::fsx::read_input_bytes(&path.join(f), crate::fsx::SETTINGS_CAP, within)
                .is_ok_and(|b| hex(Sha256::digest(&b)) == asset.hash)
        })?;
    let bytes =
        crate::fsx::read_input_bytes(&path.join(&file), crate::fsx::SETTINGS_CAP, within).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let defs = v.get("mcpServers")?.as_object()?.clone();
    Some(Pack {
        url: spelled,
        file,
        defs: Some(defs),
    })
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn take_servers(
    asset: &KasettoAsset,
    at: &Pack,
    scope: &ScopeCtx,
    config: &Config,
    lock: &mut Lock,
    t: &mut Takeover,
) -> Result<()> {
    let servers: Vec<String> = names(&asset.destination).collect();
    let home = crate::dirs::home()?;
    let global = scope.scope == Scope::Global;
    let confine = (!global).then(|| crate::mcp::plan::real_path(&scope.root));
    let mut pack = LockedMcpPack {
        file: at.file.clone(),
        servers: BTreeMap::new(),
    };
    for target in crate::mcp::plan::targets(&config.agents, global, &home, &scope.root) {
        // Kasetto writes a server verbatim only into `mcpServers` files; in the other formats
        // what it wrote cannot be recomputed.
        if target.format != McpFormat::McpServers {
            continue;
        }
        let Ok(file) = crate::mcp::plan::load(&target, confine.as_deref()) else {
            continue;
        };
        let found: Vec<(String, Value)> = servers
            .iter()
            .filter_map(|n| file.get(n).map(|v| (n.clone(), v)))
            .collect();
        if found.is_empty() {
            continue;
        }
        let rel = target.target.rel.clone();
        let inline_ok = || {
            let map: Map<String, Value> = found.iter().cloned().collect();
            found.len() == servers.len()
                && crate::mcp::store::hash(&map).strip_prefix("sha256:")
                    == Some(asset.hash.as_str())
        };
        let inline_ok = at.defs.is_none() && inline_ok();
        for (name, v) in &found {
            let ours = match &at.defs {
                None => inline_ok,
                Some(defs) => defs.get(name) == Some(v),
            };
            let Some(def) = v.as_object().filter(|_| ours) else {
                t.modified_servers.push((name.clone(), rel.clone()));
                continue;
            };
            pack.servers
                .entry(name.clone())
                .or_insert_with(|| LockedServer {
                    hash: crate::mcp::store::hash(def),
                    targets: Vec::new(),
                })
                .targets
                .push(rel.clone());
            t.servers.push((name.clone(), rel.clone()));
        }
    }
    if !pack.servers.is_empty() {
        lock.mcps.push(LockedMcpSource {
            url: at.url.clone(),
            requested: Requested::Local,
            sub_dir: None,
            commit: None,
            signer: None,
            packs: vec![pack],
        });
    }
    Ok(())
}

/// The files a Kasetto command or instructions entry lists, kept only where Kasetto writes that
/// item for some agent of this scope (its own file name rules, [`kasetto_command_path`],
/// [`kasetto_rule_path`]) inside a place kst manages that kind in: a hostile lock must not make
/// kst read, own or delete anything else. An instructions entry names its files `file:PATH`
/// (blocks in shared files, `agg:FILE`, are left to kst's usual adoption).
fn asset_files(asset: &KasettoAsset, kind: Kind, scope: &ScopeCtx, t: &mut Takeover) -> Result<()> {
    let home = crate::dirs::home()?;
    let global = scope.scope == Scope::Global;
    let known = crate::files::known(kind, global, &home, &scope.root);
    let named = crate::mdasset::check_name(&asset.name).is_ok();
    let dir_rel = |dir: PathBuf| crate::files::target_at(dir, &scope.root).rel;
    // Every (folder, format) an agent of this scope reads this kind from.
    let places: Vec<(String, FileFormat)> = crate::agents::AGENTS
        .iter()
        .filter_map(|a| match kind {
            Kind::Command => a
                .commands_dir(global, &home)
                .map(|(d, f)| (dir_rel(d), FileFormat::Command(f))),
            _ => match a.instructions_target(global, &home) {
                Some(crate::agents::InstructionTarget::PerRule(d, f)) => {
                    Some((dir_rel(d), FileFormat::Rule(f)))
                }
                _ => None,
            },
        })
        .collect();
    let mut files = Vec::new();
    for dest in names(&asset.destination) {
        let path = match kind {
            Kind::Command => dest.as_str(),
            _ if dest.starts_with("agg:") => continue,
            _ => match dest.strip_prefix("file:") {
                Some(p) => p,
                None => {
                    t.outside_files.push(dest.clone());
                    continue;
                }
            },
        };
        let rel = crate::files::target_at(PathBuf::from(path), &scope.root).rel;
        let format = places
            .iter()
            .find_map(|(dir, format)| {
                let name = match format {
                    FileFormat::Command(f) => kasetto_command_path(&asset.name, *f),
                    FileFormat::Rule(f) => kasetto_rule_path(&asset.name, *f),
                };
                (format!("{dir}/{name}") == rel).then_some(*format)
            })
            .filter(|_| named && known.place_of(&rel, &scope.root).is_some());
        match format {
            Some(f) => files.push((rel, f)),
            None => t.outside_files.push(rel),
        }
    }
    t.file_assets.push(KasettoFileAsset {
        kind,
        source: asset.source.clone(),
        name: asset.name.clone(),
        hash: asset.hash.clone(),
        files,
    });
    Ok(())
}

/// Where Kasetto 3.12 writes command `name` (`git:commit`) inside an agent's commands folder,
/// for the agent kst renders in `format`: nested folders only for the agents kst also nests
/// Markdown for; every other agent (Gemini CLI included) gets one flat name, `:` replaced by
/// `-` (`git-commit.toml`).
pub fn kasetto_command_path(name: &str, format: CommandFormat) -> String {
    let flat = crate::mdasset::flat_name(name);
    match format {
        CommandFormat::Markdown => {
            let parts: Vec<&str> = name.split(':').filter(|p| !p.is_empty()).collect();
            if parts.is_empty() {
                "command.md".to_owned()
            } else {
                format!("{}.md", parts.join("/"))
            }
        }
        CommandFormat::MarkdownFlat | CommandFormat::MarkdownBody => format!("{flat}.md"),
        CommandFormat::CopilotPrompt => format!("{flat}.prompt.md"),
        CommandFormat::ContinuePrompt => format!("{flat}.prompt"),
        CommandFormat::GeminiToml => format!("{flat}.toml"),
    }
}

/// A source file as Kasetto 3.12 reads it: text with CRLF made LF, split into its frontmatter
/// (a first line `---` up to the next line that is exactly `---`; without its trailing blank
/// lines) and its body (the text, without a frontmatter). None where Kasetto fails: not UTF-8,
/// or an opening `---` never closed.
fn kasetto_parse(source: &[u8]) -> Option<(Option<String>, String)> {
    let text = std::str::from_utf8(source).ok()?.replace("\r\n", "\n");
    let Some(rest) = text.strip_prefix("---\n") else {
        return Some((None, text));
    };
    let mut at = 0;
    while at < rest.len() {
        let end = rest[at..].find('\n').map_or(rest.len(), |n| at + n);
        if &rest[at..end] == "---" {
            let body = rest[(end + 1).min(rest.len())..].to_owned();
            return Some((Some(rest[..at].trim_end_matches('\n').to_owned()), body));
        }
        at = end + 1;
    }
    None
}

/// Where Kasetto 3.12 writes instruction `name` in an agent's rules folder: its flat name
/// (`house:security` → `house-security`), `.mdc` for Cursor, `.md` otherwise.
pub fn kasetto_rule_path(name: &str, format: RuleFormat) -> String {
    let flat = crate::mdasset::flat_name(name);
    match format {
        RuleFormat::CursorMdc => format!("{flat}.mdc"),
        RuleFormat::Markdown => format!("{flat}.md"),
    }
}

/// The bytes Kasetto 3.12 writes for an instruction's own rule file (reimplemented from its
/// behaviour), the source read as `kasetto_parse` says: the body for a Markdown rules folder;
/// for Cursor, a frontmatter rebuilt from the source's `description` (a string), `globs` (a
/// string, or a list's strings joined by `, `) and `alwaysApply` (a boolean), each as
/// `key: value` with nothing escaped, then the body — or the body alone when none is set.
pub fn kasetto_rule_bytes(source: &[u8], format: RuleFormat) -> Option<Vec<u8>> {
    let (front, body) = kasetto_parse(source)?;
    if format == RuleFormat::Markdown {
        return Some(body.into_bytes());
    }
    let meta = front
        .as_deref()
        .and_then(|f| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(f).ok());
    let field = |k: &str| meta.as_ref().and_then(|m| m.get(k));
    let mut lines = Vec::new();
    if let Some(d) = field("description").and_then(|v| v.as_str()) {
        lines.push(format!("description: {d}"));
    }
    let globs = match field("globs") {
        Some(serde_yaml_ng::Value::String(g)) => Some(g.clone()),
        Some(serde_yaml_ng::Value::Sequence(seq)) => {
            let parts: Vec<&str> = seq.iter().filter_map(|v| v.as_str()).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    };
    if let Some(g) = globs {
        lines.push(format!("globs: {g}"));
    }
    if let Some(a) = field("alwaysApply").and_then(|v| v.as_bool()) {
        lines.push(format!("alwaysApply: {a}"));
    }
    if lines.is_empty() {
        return Some(body.into_bytes());
    }
    Some(format!("---\n{}\n---\n{body}", lines.join("\n")).into_bytes())
}

/// The bytes Kasetto 3.12 writes for a command whose source file is `source`, for the agent
/// kst renders in `format` (reimplemented from Kasetto's behaviour, not its code). Kasetto
/// reads the source as text with CRLF made LF; a frontmatter is a first line `---` up to the
/// next line that is exactly `---`; what it writes:
/// - Markdown (nested, flat, Copilot's `.prompt.md`): `---`, the frontmatter without its
///   trailing blank lines, `---`, the body (no frontmatter: the text);
/// - body-only Markdown (Cursor, Cline): the body;
/// - Continue's `.prompt`: `---`, the frontmatter's non-blank lines plus `invokable: true`
///   unless a line sets `invokable:`, `---`, the body with `$ARGUMENTS` → `{{{ input }}}`;
/// - Gemini TOML: `description = "…"` (the frontmatter's `description` string, with `\`, `"`
///   and newlines escaped, if not empty), then `prompt = """`, the body without its trailing
///   newlines (`$ARGUMENTS` kept), `"""`.
///
/// None: Kasetto could not have written it (not UTF-8; an opening `---` never closed).
pub fn kasetto_command_bytes(source: &[u8], format: CommandFormat) -> Option<Vec<u8>> {
    let (front, body) = kasetto_parse(source)?;
    let (front, body) = (front.as_deref(), body.as_str());
    let out = match format {
        CommandFormat::Markdown | CommandFormat::MarkdownFlat | CommandFormat::CopilotPrompt => {
            match front {
                Some(f) => format!("---\n{f}\n---\n{body}"),
                None => body.to_owned(),
            }
        }
        CommandFormat::MarkdownBody => body.to_owned(),
        CommandFormat::ContinuePrompt => {
            let mut lines: Vec<&str> = front
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            if !lines
                .iter()
                .any(|l| l.trim_start().starts_with("invokable:"))
            {
                lines.push("invokable: true");
            }
            format!(
                "---\n{}\n---\n{}",
                lines.join("\n"),
                body.replace("$ARGUMENTS", "{{{ input }}}")
            )
        }
        CommandFormat::GeminiToml => {
            let description = front
                .and_then(|f| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(f).ok())
                .and_then(|v| {
                    v.get("description")
                        .and_then(|d| d.as_str())
                        .map(String::from)
                })
                .unwrap_or_default();
            let mut out = String::new();
            if !description.is_empty() {
                let escaped = description
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                out.push_str(&format!("description = \"{escaped}\"\n"));
            }
            out.push_str(&format!(
                "prompt = \"\"\"\n{}\n\"\"\"\n",
                body.trim_end_matches('\n')
            ));
            out
        }
    };
    Some(out.into_bytes())
}

/// Kasetto's hash of an installed skill folder (lowercase hex SHA-256; see the module comment),
/// reimplemented from its description. `None` when the folder holds a symlink: Kasetto never
/// installs one, and it is not followed.
pub fn kasetto_dir_hash(dir: &Path) -> std::io::Result<Option<String>> {
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    if !collect(dir, Path::new(""), &mut files)? {
        return Ok(None);
    }
    // Path order (component by component), as Kasetto sorts its list.
    files.sort();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for (rel, abs) in files {
        h.update(rel.to_string_lossy().replace('\\', "/").as_bytes());
        h.update([0u8]);
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&abs)?
        };
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.update([0u8]);
    }
    Ok(Some(
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

/// The regular files under `dir`; false when a symlink (or anything but a file or folder) is met.
fn collect(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> std::io::Result<bool> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        let r = rel.join(e.file_name());
        if ft.is_dir() {
            if !collect(&e.path(), &r, out)? {
                return Ok(false);
            }
        } else if ft.is_file() {
            out.push((r, e.path()));
        } else {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Takeover {
    /// Take over Kasetto's command files (`kind` Command) or instructions' own rule files
    /// (`kind` Instruction), once the sync has read the configured items of that kind
    /// (`resolved`): a file is Kasetto's only if its item's source file still has the hash
    /// Kasetto's lock records and the file is, byte for byte, what Kasetto renders from that
    /// source for its agent ([`kasetto_command_bytes`], [`kasetto_rule_bytes`]). Such a file is
    /// added to `old` (the section the plan starts from) as kst's, with the sha256 of those
    /// bytes: the
    /// plan then updates it where kst writes the same path, and prunes it where kst writes
    /// another (Kasetto's flat `git-commit.toml` next to kst's `git/commit.toml`), with kst's
    /// usual checks. A changed file is *modified locally* and kept; a file whose source was not
    /// read, or changed since, cannot be checked and is left alone. The findings are kept for
    /// the sync's report ([`Takeover::summary`]).
    pub fn take_files(
        &self,
        kind: Kind,
        resolved: &[std::result::Result<crate::files::Resolved, crate::files::Failed>],
        old: &[LockedFileSource],
        config: &Config,
        scope: &ScopeCtx,
    ) -> Vec<LockedFileSource> {
        let mut out = old.to_vec();
        let mut found = FileFindings::default();
        let global = scope.scope == Scope::Global;
        let base = config.path.parent().unwrap_or(Path::new("."));
        for cmd in self.file_assets.iter().filter(|a| a.kind == kind) {
            let identity = crate::source::parse(&cmd.source, base)
                .ok()
                .map(|s| s.identity().to_owned());
            // The configured source Kasetto's entry names, and its command of that name whose
            // bytes Kasetto hashed.
            let read = resolved.iter().flatten().find_map(|r| {
                let item = r
                    .items
                    .iter()
                    .find(|i| i.name == cmd.name && hex(Sha256::digest(&i.bytes)) == cmd.hash)?;
                (Some(r.entry.source.identity()) == identity.as_deref()).then_some((r, item))
            });
            for (key, format) in &cmd.files {
                let abs = crate::files::target_at(PathBuf::from(key), &scope.root).abs;
                let Ok(meta) = std::fs::symlink_metadata(&abs) else {
                    continue; // gone: nothing to take over
                };
                let expected = read.and_then(|(_, item)| match format {
                    FileFormat::Command(f) => kasetto_command_bytes(&item.bytes, *f),
                    FileFormat::Rule(f) => kasetto_rule_bytes(&item.bytes, *f),
                });
                let (Some((r, item)), Some(expected)) = (read, expected) else {
                    found.unchecked.push(key.clone());
                    continue;
                };
                if crate::files::symlinked_folder(global, &scope.root, &abs).is_some() {
                    found.unchecked.push(key.clone());
                    continue;
                }
                let sha = crate::mdasset::sha256(&expected);
                if !meta.file_type().is_file()
                    || crate::files::plan::file_sha(&abs).as_deref() != Some(sha.as_str())
                {
                    found.modified.push(key.clone());
                    continue;
                }
                let at = match crate::lock::find_entry(&out, &r.entry.id()) {
                    Some(l) => out
                        .iter()
                        .position(|x| std::ptr::eq(x, l))
                        .expect("found in out"),
                    None => {
                        out.push(LockedFileSource {
                            url: r.url.clone(),
                            requested: r.requested.clone(),
                            sub_dir: r.entry.sub_dir.clone(),
                            commit: None,
                            signer: None,
                            items: Vec::new(),
                        });
                        out.len() - 1
                    }
                };
                let items = &mut out[at].items;
                let i = match items.iter().position(|x| x.name == item.name) {
                    Some(i) => i,
                    None => {
                        items.push(LockedFile {
                            name: item.name.clone(),
                            path: item.path.clone(),
                            blob: item.blob.clone(),
                            installed: BTreeMap::new(),
                        });
                        items.len() - 1
                    }
                };
                items[i].installed.insert(key.clone(), sha);
                found.taken.push(key.clone());
            }
        }
        let _ = self.findings_cell(kind).set(found);
        out
    }

    fn findings_cell(&self, kind: Kind) -> &std::sync::OnceLock<FileFindings> {
        match kind {
            Kind::Command => &self.command_files,
            _ => &self.rule_files,
        }
    }

    /// What the take-over of `kind`'s files found; empty before [`Takeover::take_files`] ran.
    pub fn findings(&self, kind: Kind) -> FileFindings {
        self.findings_cell(kind).get().cloned().unwrap_or_default()
    }

    /// Say *modified locally* for a Kasetto command or rule file the user changed since, where
    /// kst writes the same path: it stays what the plan makes of a file kst did not write (left
    /// alone; the sync fails until the user moves it away or passes `--force`), with the reason.
    pub fn explain_files(&self, kind: Kind, items: &mut [crate::files::plan::FileItemPlan]) {
        let modified = self.findings(kind).modified;
        for item in items.iter_mut() {
            for d in &mut item.dests {
                if d.action == Action::Broken && modified.contains(&d.target.rel) {
                    d.error = Some(format!(
                        "{} was modified since Kasetto installed it (it is no longer what Kasetto wrote from the source its lock names); kept as it is: move it away, or pass --force to replace it",
                        d.target.rel
                    ));
                }
            }
        }
    }

    /// The lines a sync says once about the take-over (`would` under `--dry-run`).
    pub fn summary(&self, dry_run: bool) -> Vec<String> {
        let verb = if dry_run { "would take" } else { "took" };
        let mut out = vec![format!(
            "{}: this is a Kasetto lock; kst {verb} over {} and {} that are as Kasetto installed them{}",
            self.path.display(),
            Kind::Skill.count(self.skills.len()),
            Kind::Server.count(self.servers.len()),
            if dry_run {
                String::new()
            } else {
                format!(
                    "; the Kasetto lock is kept as {}",
                    self.backup_path().display()
                )
            }
        )];
        for p in &self.modified_skills {
            out.push(format!(
                "{p} was modified since Kasetto installed it; kept as it is and not managed by kst"
            ));
        }
        for (n, f) in &self.modified_servers {
            out.push(format!(
                "{f}: server {n:?} was modified since Kasetto installed it; kept as it is and not managed by kst"
            ));
        }
        if !self.unchecked_servers.is_empty() {
            out.push(format!(
                "MCP servers from Kasetto pack files ({}) are taken over only where the entry is exactly what kst writes now",
                self.unchecked_servers.join(", ")
            ));
        }
        for (kind, noun) in [(Kind::Command, "command"), (Kind::Instruction, "rule")] {
            let files = self.findings(kind);
            if !files.taken.is_empty() {
                out.push(format!(
                    "kst {verb} over {} as Kasetto wrote them: kst's own file replaces each (where Kasetto named it differently, Kasetto's is removed)",
                    plural(files.taken.len(), &format!("{noun} file")),
                ));
            }
            for p in &files.modified {
                out.push(format!(
                    "{p} was modified since Kasetto installed it; kept as it is and not managed by kst (delete it if you no longer want it)"
                ));
            }
            if !files.unchecked.is_empty() {
                out.push(format!(
                    "Kasetto's {noun} files {} are left alone: their source is not in this config or changed since Kasetto installed them, so what Kasetto wrote cannot be checked (delete them if you no longer want them)",
                    files.unchecked.join(", ")
                ));
            }
        }
        for p in &self.outside_files {
            out.push(format!(
                "the Kasetto lock lists {p:?}, which is not where Kasetto writes that command or instruction in an agent's folder of this scope; left alone"
            ));
        }
        if !self.other_assets.is_empty() {
            out.push(format!(
                "not taken over from the Kasetto lock (a kind kst does not know): {}",
                self.other_assets.join(", ")
            ));
        }
        for p in &self.outside {
            out.push(format!(
                "the Kasetto lock lists {p:?}, which is not a skills folder of this scope; left alone"
            ));
        }
        out
    }

    /// The take-over in a sync's JSON document (`kasetto_lock`, docs/json.md).
    pub fn json(&self, dry_run: bool) -> Value {
        let servers = |v: &[(String, String)]| -> Vec<Value> {
            v.iter()
                .map(|(n, f)| serde_json::json!({ "name": n, "file": f }))
                .collect()
        };
        let (files, rules) = (
            self.findings(Kind::Command),
            self.findings(Kind::Instruction),
        );
        serde_json::json!({
            "path": self.path.display().to_string(),
            "backup": (!dry_run).then(|| self.backup_path().display().to_string()),
            "taken_over": {
                "skills": self.skills,
                "servers": servers(&self.servers),
                "command_files": files.taken,
                "rule_files": rules.taken,
            },
            "modified_locally": {
                "skills": self.modified_skills,
                "servers": servers(&self.modified_servers),
                "command_files": files.modified,
                "rule_files": rules.modified,
            },
            "unchecked_servers": self.unchecked_servers,
            "unchecked_command_files": files.unchecked,
            "unchecked_rule_files": rules.unchecked,
            "not_taken_over": self.other_assets,
            "outside": self.outside,
            "outside_files": self.outside_files,
        })
    }

    /// `kasetto.lock.kasetto-backup` next to the lock.
    pub fn backup_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(BACKUP_SUFFIX);
        self.path.with_file_name(name)
    }

    /// Keep the Kasetto lock, byte for byte, before kst replaces it. An existing backup with
    /// other content is never overwritten: the error says what to do.
    pub fn backup(&self) -> Result<PathBuf> {
        let p = self.backup_path();
        match crate::fsx::read_input_bytes(&p, crate::fsx::LOCK_CAP, None) {
            Ok(b) if b == self.bytes => return Ok(p),
            Err(crate::fsx::ReadError::NotFound) if std::fs::symlink_metadata(&p).is_err() => {}
            _ => {
                return Err(Error::usage(format!(
                    "{} already exists; move it away so kst can keep the Kasetto lock {} there before replacing it",
                    p.display(),
                    self.path.display()
                )));
            }
        }
        crate::fsx::write_atomic(&p, &self.bytes, None).map_err(|e| {
            Error::Failed(e.context(format!("cannot keep the Kasetto lock as {}", p.display())))
        })?;
        Ok(p)
    }

    /// Say *modified locally* for what Kasetto installed and the user changed since. A skill
    /// folder stays what the plan makes of a folder kst did not install (left alone, and the
    /// sync fails until the user moves it away or passes `--force`), with the reason.
    pub fn explain_skills(&self, items: &mut [crate::plan::Item]) {
        for item in items.iter_mut().filter(|i| i.kind == Kind::Skill) {
            for d in &mut item.dests {
                if d.action == Action::Broken && self.modified_skills.contains(&d.target.rel) {
                    d.error = Some(format!(
                        "{} was modified since Kasetto installed it (it no longer matches the Kasetto lock's hash); kept as it is: move it away, or pass --force to replace it",
                        d.target.rel
                    ));
                }
            }
        }
    }

    /// The same for MCP server entries: a conflict at an entry Kasetto wrote is a local change
    /// (left alone, as any entry kst did not write).
    pub fn explain_servers(&self, items: &mut [crate::mcp::plan::ServerItem]) {
        for item in items.iter_mut() {
            let name = item.name.clone();
            for d in &mut item.dests {
                let rel = &d.target.rel;
                if d.reason != Some(Reason::Conflict)
                    || !self
                        .modified_servers
                        .iter()
                        .any(|(n, f)| *n == name && f == rel)
                {
                    continue;
                }
                d.reason = Some(Reason::ModifiedLocally);
                let conflict = format!(
                    "{rel} already has a server {name:?} that kst did not install; left as it is (rename one of them to use both)"
                );
                let why = format!(
                    "{rel}: server {name:?} was modified since Kasetto installed it; left as it is (delete the entry to let kst install it)"
                );
                item.warnings.retain(|w| *w != conflict);
                if !item.warnings.contains(&why) {
                    item.warnings.push(why);
                }
            }
        }
    }

    /// The error of what must not take the lock over (`sync --locked`/`--frozen`, `lock`,
    /// `verify`, `fetch`): the take-over is a sync's.
    pub fn refused(&self, what: &str) -> Error {
        Error::Failed(anyhow::anyhow!(
            "{what}: {} is a Kasetto lock; run `kst sync` once to take over the Kasetto lock, then commit the new lock",
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dir_hash_is_kasettos() {
        // The value Kasetto 3.12's own test expects for this tree (fsops/hash.rs).
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub/deep")).unwrap();
        std::fs::write(d.path().join("SKILL.md"), "# Demo\n").unwrap();
        std::fs::write(d.path().join("sub/extra.md"), "body\n").unwrap();
        std::fs::write(d.path().join("sub/deep/leaf.md"), "leaf\n").unwrap();
        assert_eq!(
            kasetto_dir_hash(d.path()).unwrap().as_deref(),
            Some("d06ced109f573f70d5db8d5ce42010ae5978cf97fa2793aeae8d460f0343a8e1")
        );
    }

    #[test]
    fn a_symlink_is_not_what_kasetto_wrote() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("SKILL.md"), "x").unwrap();
        std::os::unix::fs::symlink("SKILL.md", d.path().join("alias.md")).unwrap();
        assert_eq!(kasetto_dir_hash(d.path()).unwrap(), None);
    }

    /// What the real Kasetto 3.12 wrote for these sources (captured from its output files), per
    /// format: CRLF made LF, a frontmatter's trailing blank lines dropped, an empty frontmatter
    /// kept as a blank line, a BOM making the whole file the body, Gemini's flat TOML with its
    /// own escapes and `$ARGUMENTS` kept, Continue's non-blank header lines.
    #[test]
    fn command_bytes_and_paths_are_kasettos() {
        use CommandFormat as F;
        let crlf = b"---\r\ndescription: crlf\r\n---\r\nline1\r\nline2 $ARGUMENTS\r\n";
        let blanks = b"---\ndescription: d\n\nargument-hint: x\n\n---\nbody $ARGUMENTS\n\n\n";
        let esc = b"---\ndescription: \"a\\\\b \\\"q\\\" \\nc\"\n---\nsay \"\"\"hi\"\"\"\n";
        let bom = b"\xef\xbb\xbf---\ndescription: bom\n---\nb\n";
        let cases: &[(&[u8], F, &[u8])] = &[
            (crlf, F::Markdown, b"---\ndescription: crlf\n---\nline1\nline2 $ARGUMENTS\n"),
            (crlf, F::MarkdownBody, b"line1\nline2 $ARGUMENTS\n"),
            (
                crlf,
                F::GeminiToml,
                b"description = \"crlf\"\nprompt = \"\"\"\nline1\nline2 $ARGUMENTS\n\"\"\"\n",
            ),
            (
                blanks,
                F::CopilotPrompt,
                b"---\ndescription: d\n\nargument-hint: x\n---\nbody $ARGUMENTS\n\n\n",
            ),
            (
                blanks,
                F::ContinuePrompt,
                b"---\ndescription: d\nargument-hint: x\ninvokable: true\n---\nbody {{{ input }}}\n\n\n",
            ),
            (
                blanks,
                F::GeminiToml,
                b"description = \"d\"\nprompt = \"\"\"\nbody $ARGUMENTS\n\"\"\"\n",
            ),
            (b"---\n---\nbody\n", F::MarkdownFlat, b"---\n\n---\nbody\n"),
            (b"---\n---\nbody\n", F::ContinuePrompt, b"---\ninvokable: true\n---\nbody\n"),
            (
                b"---\n  invokable: false\n---\nx",
                F::ContinuePrompt,
                b"---\n  invokable: false\n---\nx",
            ),
            (
                esc,
                F::GeminiToml,
                b"description = \"a\\\\b \\\"q\\\" \\nc\"\nprompt = \"\"\"\nsay \"\"\"hi\"\"\"\n\"\"\"\n",
            ),
            (bom, F::Markdown, bom),
            (
                bom,
                F::ContinuePrompt,
                b"---\ninvokable: true\n---\n\xef\xbb\xbf---\ndescription: bom\n---\nb\n",
            ),
            (
                b"---\ndescription: 12\n---\n---\nafter\n",
                F::GeminiToml,
                b"prompt = \"\"\"\n---\nafter\n\"\"\"\n",
            ),
        ];
        for (src, f, want) in cases {
            assert_eq!(
                kasetto_command_bytes(src, *f).as_deref(),
                Some(*want),
                "{f:?} {:?}",
                String::from_utf8_lossy(src)
            );
        }
        // Kasetto writes nothing for these.
        assert_eq!(kasetto_command_bytes(b"---\nno end\n", F::Markdown), None);
        assert_eq!(kasetto_command_bytes(b"\xff", F::Markdown), None);
        let paths = [
            (F::Markdown, "git/work/commit.md"),
            (F::GeminiToml, "git-work-commit.toml"),
            (F::MarkdownFlat, "git-work-commit.md"),
            (F::MarkdownBody, "git-work-commit.md"),
            (F::CopilotPrompt, "git-work-commit.prompt.md"),
            (F::ContinuePrompt, "git-work-commit.prompt"),
        ];
        for (f, want) in paths {
            assert_eq!(kasetto_command_path("git:work:commit", f), want, "{f:?}");
        }
    }

    /// The same for instructions' own rule files (captured from the real Kasetto 3.12): Cursor's
    /// rebuilt frontmatter (a list of globs joined, non-strings dropped; a multi-line
    /// description written as it is; nothing when no field is set), the body elsewhere.
    #[test]
    fn rule_bytes_and_paths_are_kasettos() {
        use RuleFormat as F;
        let crlf = b"---\r\ndescription: Style\r\nglobs: \"*.rs\"\r\n---\r\nUse four spaces.\r\n";
        let list = b"---\ndescription: \"two\\nlines\"\nglobs: [\"*.ts\", 3, \"*.js\"]\nalwaysApply: true\nother: x\n---\nbody\n";
        let empty = b"---\nglobs: []\nalwaysApply: \"yes\"\n---\n\nlead blank\n";
        let cases: &[(&[u8], F, &[u8])] = &[
            (
                crlf,
                F::CursorMdc,
                b"---\ndescription: Style\nglobs: *.rs\n---\nUse four spaces.\n",
            ),
            (crlf, F::Markdown, b"Use four spaces.\n"),
            (
                list,
                F::CursorMdc,
                b"---\ndescription: two\nlines\nglobs: *.ts, *.js\nalwaysApply: true\n---\nbody\n",
            ),
            (empty, F::CursorMdc, b"\nlead blank\n"),
            (
                b"---\nother: x\n---\nonly body\n",
                F::CursorMdc,
                b"only body\n",
            ),
        ];
        for (src, f, want) in cases {
            assert_eq!(
                kasetto_rule_bytes(src, *f).as_deref(),
                Some(*want),
                "{f:?} {:?}",
                String::from_utf8_lossy(src)
            );
        }
        assert_eq!(
            kasetto_rule_path("house:security", F::CursorMdc),
            "house-security.mdc"
        );
        assert_eq!(
            kasetto_rule_path("house:security", F::Markdown),
            "house-security.md"
        );
    }

    #[test]
    fn kasetto_and_kst_locks_are_told_apart() {
        assert!(is_kasetto_lock("version: 3\nskills: {}\nassets: {}\n"));
        assert!(is_kasetto_lock("version: 1\nlast_run: '1'\nskills: {}\n"));
        assert!(!is_kasetto_lock("version: 1\nsources: []\n"));
        assert!(!is_kasetto_lock("version: 1\n"));
        assert!(!is_kasetto_lock("- a\n"));
        // Not plainly block style: decided by a full parse, the same way.
        assert!(is_kasetto_lock("{version: 3, skills: {}}"));
        assert!(!is_kasetto_lock("{version: 1, sources: [], skills: {}}"));
        assert!(is_kasetto_lock("---\nversion: 3\n\"skills\": {}\n"));
        // kst's own lock, as serde writes it (sequences at column 0 under their key).
        assert!(!is_kasetto_lock(
            "version: 1\nsources:\n- url: x\n  skills:\n  - name: a\nskills_note: 1\n"
        ));
        assert!(is_kasetto_lock(
            "# Kasetto\nversion: 3\nskills:\n  a: {}\nassets: {}\n"
        ));
    }

    /// The sniff answers as a full YAML parse of the top-level keys would, for every way a
    /// tool or a user may write either lock: comments, `---`/`...`, CRLF and lone CR line
    /// endings, a UTF-8 BOM, quoted keys, indented or flow values, multi-line scalars.
    #[test]
    fn the_lock_sniff_agrees_with_a_full_parse() {
        let by_parse = |text: &str| -> bool {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
                Ok(serde_yaml_ng::Value::Mapping(m)) => {
                    let has = |k: &str| m.contains_key(k);
                    (has("skills") || has("assets")) && !has("sources") && !has("mcps")
                }
                _ => false,
            }
        };
        let kasetto =
            "version: 3\nlast_run: '2026-01-01'\nskills:\n  a:\n    hash: x\nassets: {}\n";
        let kst = "version: 1\nsources:\n- url: x\n  skills:\n  - name: a\nmcps: []\n";
        let mut texts: Vec<String> = Vec::new();
        for base in [kasetto, kst] {
            texts.push(base.to_string());
            texts.push(format!("# a comment\n{base}"));
            texts.push(format!("---\n{base}"));
            texts.push(format!("# a comment\n---\n{base}"));
            texts.push(format!("{base}...\n"));
            texts.push(base.replace('\n', "\r\n"));
            texts.push(base.replace('\n', "\r"));
            texts.push(format!("\u{feff}{base}"));
            texts.push(format!("\u{feff}{}", base.replace('\n', "\r\n")));
            texts.push(base.replace("skills:", "\"skills\":"));
            texts.push(base.replace("sources:", "'sources':"));
            texts.push(base.replace("version:", "version :"));
            texts.push(base.replace("\n- ", "\n  - "));
            texts.push(base.replace("version: 3\n", "version: 3 # three\n"));
            texts.push(base.replace("version: 1\n", "version: 1 # one\n"));
        }
        // A quoted scalar or a flow collection going on onto a line that starts at column 0
        // and looks like a key (the parser takes it, at any depth).
        for t in [
            "version: 3\nlast_run: \"a\nsources: b\"\nskills: {}\n",
            "version: 3\nx:\n  y: \"a\nsources: b\"\nskills: {}\n",
            "version: 3\nx:\n- y: \"a \\\"\nsources: b\"\nskills: {}\n",
            "version: 3\nx:\n- 'it''s\nsources: b'\nskills: {}\n",
            "version: 3\nx: {a: 1,\nsources: 2}\nskills: {}\n",
            "version: 3\nx:\n  y: [a,\nsources: 2]\nskills: {}\n",
            "version: 3\nx: |\n  a \"\nsources: b\nskills: {}\n",
            "version: 3\nx: a # \"\nsources: b\nskills: {}\n",
            "version: 3\nx: a\nsources\nskills: {}\n",
            "version: 1\nnote: \"a\nskills: b\"\ncommands: []\n",
        ] {
            texts.push(t.into());
        }
        for t in &texts {
            assert_eq!(is_kasetto_lock(t), by_parse(t), "{t:?}");
        }
        // What both tools write is still read from its lines, without a parse.
        let written = "version: 1\nsources:\n- url: https://h/r\n  commit: \"0a\"\n  skills:\n  - name: s\n    tree: \"0b\"\n    installed: [.claude/skills/s]\nmcps: []\n";
        for t in [kasetto, kst, written, &written.replace('\n', "\r\n")] {
            assert!(block_decision(t).is_some(), "{t:?}");
        }
    }

    /// kst's lock is told from its first lines: whatever follows `sources:` (here text that is
    /// no block style, or no YAML at all) is not read, and the answer is the full parse's.
    #[test]
    fn kst_s_lock_is_told_at_its_sources_key() {
        for tail in [
            "{not: block}\n",
            "\"open\n",
            "skills: {}\nsources: []\n",
            "---\nskills: {}\n",
            "x: a\rskills: {}\n",
        ] {
            for head in [
                "version: 1\nsources: []\n",
                "# kst\nversion: 1\nmcps:\n- url: x\n",
            ] {
                let t = format!("{head}{tail}");
                assert_eq!(block_decision(&t), Some(false), "{t:?}");
                assert!(!is_kasetto_lock(&t), "{t:?}");
            }
        }
        // Before the deciding key, anything not plainly block style is still parsed in full.
        for t in [
            "version: 1\n{a: 1}\nsources: []\n",
            "version: 1\rsources: []\n",
        ] {
            assert_eq!(block_decision(t), None, "{t:?}");
        }
    }
}
