//! Update review (SPEC 16): what a move of a pin adds in capability, from the two commits in
//! the cache — no network, nothing run, nothing quoted.
//!
//! For each source whose pinned commit moves (the old lock's commit against the one the plan
//! resolved), each item whose id changed is compared:
//!
//! - skills: the two trees of the skill folder (modes and blob ids): new or changed executables,
//!   files that became executable; in text files, new URLs and domains; a changed
//!   `allowed-tools` in `SKILL.md`'s frontmatter;
//! - commands and instructions: the two blobs (URLs, `allowed-tools`);
//! - MCP servers: the two definitions in placeholder form: the launch `command`, `args`, `env`
//!   keys (never values) and a remote `url`'s host.
//!
//! A change is described by kst in one short line: a path, a host, a key name, each escaped;
//! never a file's content, a URL's path or query, or an `env` value. An item that cannot be
//! compared (an object missing from the cache) is *unverified* and counts as adding
//! capability: the gate (`audit: { review-updates: true }`) then wants `--accept` for it too.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Kind;
use super::rules::short;
use crate::discover::PackView;
use crate::lock::{Lock, LockedEntry, LockedFileSource, LockedMcpSource, LockedSource};
use crate::workspace::Workspace;

/// At most this many changes of one kind are listed per item (the rest are counted).
const MAX_PER_KIND: usize = 20;

/// One thing a move adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `new-executable`, `changed-executable`, `became-executable`, `allowed-tools`,
    /// `new-domain`, `new-url`, `mcp-command`, `mcp-args`, `mcp-env`, `mcp-url`.
    pub change: &'static str,
    /// The file (inside the item) or, for a server, the pack file.
    pub file: String,
    /// One line written by kst (anything from the pack in it is short and escaped).
    pub detail: String,
}

/// The review of one moved item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReview {
    pub kind: Kind,
    pub name: String,
    pub source: String,
    /// The commit the lock pinned (absent for an item new in the moved source).
    pub from: String,
    /// The commit the move pins.
    pub to: String,
    /// Whether the item is new in the source (compared with nothing).
    pub added: bool,
    pub changes: Vec<Change>,
    /// Why it could not be compared; such an item needs `--accept` like one with changes.
    pub unverified: Vec<String>,
}

impl ItemReview {
    /// Whether the move adds capability (or could not be checked): what the gate asks about.
    pub fn needs_accept(&self) -> bool {
        !self.changes.is_empty() || !self.unverified.is_empty()
    }
}

/// Every moved item of `new` against `old`, in lock order (skills, servers, commands,
/// instructions).
pub fn review(ctx: &Workspace, old: &Lock, new: &Lock) -> Vec<ItemReview> {
    let mut out = Vec::new();
    for (o, n, oc, nc) in moved(&old.sources, &new.sources) {
        out.extend(review_skills(ctx, o, n, oc, nc));
    }
    for (o, n, oc, nc) in moved(&old.mcps, &new.mcps) {
        out.extend(review_servers(ctx, o, n, oc, nc));
    }
    for (kind, old_s, new_s) in [
        (Kind::Command, &old.commands, &new.commands),
        (Kind::Instruction, &old.instructions, &new.instructions),
    ] {
        for (o, n, oc, nc) in moved(old_s, new_s) {
            out.extend(review_files(ctx, kind, o, n, oc, nc));
        }
    }
    out
}

/// Pairs of (old, new) lock entries of one source whose commit moved: the same source and
/// root, the old one preferably with the same request.
fn moved<'a, L: LockedEntry>(old: &'a [L], new: &'a [L]) -> Vec<(&'a L, &'a L, &'a str, &'a str)> {
    let mut out = Vec::new();
    for n in new {
        let Some(nc) = n.commit() else { continue };
        let same =
            |o: &&L| o.url() == n.url() && o.sub_dir() == n.sub_dir() && o.commit().is_some();
        let o = old
            .iter()
            .filter(same)
            .find(|o| o.requested() == n.requested())
            .or_else(|| old.iter().find(same));
        if let Some(o) = o {
            let oc = o.commit().unwrap_or_default();
            if oc != nc {
                out.push((o, n, oc, nc));
            }
        }
    }
    out
}

/// The source's cached git database, opened read-only (no network).
fn repo(ctx: &Workspace, url: &str) -> Result<Repository, String> {
    let config_dir = ctx
        .config
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let Ok(crate::source::Source::Git(u)) = crate::source::parse(url, config_dir) else {
        return Err("the source is not a git source".into());
    };
    let cache = ctx
        .cache()
        .map_err(|e| format!("the cache cannot be opened: {e:#}"))?;
    cache
        .database(u.canonical())
        .open()
        .map_err(|_| "the source is not in this machine's cache".to_string())
}

fn oid(s: &str) -> Result<Oid, String> {
    crate::oid::parse(s).ok_or_else(|| format!("{:?} is not a git object id", short(s)))
}

fn item(kind: Kind, name: &str, src: &str, from: &str, to: &str, added: bool) -> ItemReview {
    ItemReview {
        kind,
        name: name.to_string(),
        source: src.to_string(),
        from: if added {
            String::new()
        } else {
            from.to_string()
        },
        to: to.to_string(),
        added,
        changes: Vec::new(),
        unverified: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Skills

/// A file of a skill folder at one commit.
#[derive(Debug, Clone)]
struct FileAt {
    id: Oid,
    executable: bool,
}

fn review_skills(
    ctx: &Workspace,
    old: &LockedSource,
    new: &LockedSource,
    oc: &str,
    nc: &str,
) -> Vec<ItemReview> {
    review_moved(
        ctx,
        Kind::Skill,
        &new.url,
        (&old.skills, &new.skills),
        (oc, nc),
        |repo, o, k| {
            let before = match o {
                None => BTreeMap::new(),
                Some(o) => skill_files(repo, oc, &o.path)?,
            };
            let after = skill_files(repo, nc, &k.path)?;
            Ok(diff_trees(repo, &before, &after, Kind::Skill))
        },
    )
}

/// A locked item as the review sees it: its name, its path in the repository and the git id
/// that moves with its content (a skill's tree, a command's or instruction's blob).
trait Versioned {
    fn name(&self) -> &str;
    fn path(&self) -> &str;
    fn git_id(&self) -> &str;
    fn set_git_id(&mut self, id: String);
}

macro_rules! versioned {
    ($t:ty, $id:ident) => {
        impl Versioned for $t {
            fn name(&self) -> &str {
                &self.name
            }
            fn path(&self) -> &str {
                &self.path
            }
            fn git_id(&self) -> &str {
                &self.$id
            }
            fn set_git_id(&mut self, id: String) {
                self.$id = id;
            }
        }
    };
}
versioned!(crate::lock::LockedSkill, tree);
versioned!(crate::lock::LockedFile, blob);

/// The review of each item of one moved source that is new or whose git id changed, by
/// `diff(repo, old item, new item)` against the cached database. An item that cannot be
/// compared (no cache, an object missing) is *unverified*: the gate asks about it.
fn review_moved<'a, T: Versioned>(
    ctx: &Workspace,
    kind: Kind,
    url: &str,
    (old, new): (&'a [T], &'a [T]),
    (oc, nc): (&str, &str),
    diff: impl Fn(&Repository, Option<&'a T>, &'a T) -> Result<Vec<Change>, String>,
) -> Vec<ItemReview> {
    let moved: Vec<(&T, Option<&T>)> = new
        .iter()
        .map(|k| (k, old.iter().find(|o| o.name() == k.name())))
        .filter(|(k, o)| o.is_none_or(|o| o.git_id() != k.git_id()))
        .collect();
    if moved.is_empty() {
        return Vec::new();
    }
    let repo = repo(ctx, url);
    moved
        .into_iter()
        .map(|(k, o)| {
            let mut r = item(kind, k.name(), url, oc, nc, o.is_none());
            match repo
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|repo| diff(repo, o, k))
            {
                Ok(changes) => r.changes = changes,
                Err(e) => r.unverified.push(e),
            }
            r
        })
        .collect()
}

/// The regular files of the folder `path` at `commit`, by path inside the folder.
fn skill_files(
    repo: &Repository,
    commit: &str,
    path: &str,
) -> Result<BTreeMap<String, FileAt>, String> {
    let pack = crate::git::GitPack::new(repo, oid(commit)?)
        .map_err(|_| format!("commit {} is not in this machine's cache", short(commit)))?;
    let mut budget = crate::tree::Budget::new(crate::tree::Caps::from_env());
    let tree = pack.list(path, &mut budget).map_err(|e| {
        format!(
            "{} at {}: {}",
            short(path),
            short(commit),
            short(&format!("{e:#}"))
        )
    })?;
    let mut out = BTreeMap::new();
    flatten(&tree, "", &mut out);
    Ok(out)
}

fn flatten(tree: &crate::tree::Tree, rel: &str, out: &mut BTreeMap<String, FileAt>) {
    for e in &tree.entries {
        let p = crate::tree::join_rel(rel, &e.name);
        match &e.kind {
            crate::tree::EntryKind::Dir(t) => flatten(t, &p, out),
            crate::tree::EntryKind::File { executable, .. } => {
                out.insert(
                    p,
                    FileAt {
                        id: e.id,
                        executable: *executable,
                    },
                );
            }
            _ => {}
        }
    }
}

/// A blob's text, if it is text (UTF-8 without NUL), read up to the scan cap.
fn blob_text(repo: &Repository, id: Oid) -> Option<String> {
    let blob = repo.find_blob(id).ok()?;
    let cap = super::scan::scan_cap() as usize;
    let bytes = blob.content();
    let truncated = bytes.len() > cap;
    let bytes = &bytes[..bytes.len().min(cap)];
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => Some(t.to_string()),
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()])
                .ok()
                .map(str::to_string)
        }
        Err(_) => None,
    }
}

/// What the files `after` add over `before`: executables, URLs and domains, `allowed-tools`.
fn diff_trees(
    repo: &Repository,
    before: &BTreeMap<String, FileAt>,
    after: &BTreeMap<String, FileAt>,
    kind: Kind,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (p, a) in after {
        if !a.executable {
            continue;
        }
        let (change, detail) = match before.get(p) {
            None => ("new-executable", "a new executable file"),
            Some(b) if !b.executable => ("became-executable", "the file became executable"),
            Some(b) if b.id != a.id => ("changed-executable", "an executable file changed"),
            Some(_) => continue,
        };
        out.push(Change {
            change,
            file: short(p),
            detail: detail.into(),
        });
    }
    let texts = |files: &BTreeMap<String, FileAt>| -> Vec<(String, String)> {
        files
            .iter()
            .filter_map(|(p, f)| blob_text(repo, f.id).map(|t| (p.clone(), t)))
            .collect()
    };
    let old_texts = if before.is_empty() {
        Vec::new()
    } else {
        texts(before)
    };
    // Only changed or new files can bring a new URL; unchanged ones are not read twice.
    let new_texts: Vec<(String, String)> = after
        .iter()
        .filter(|(p, f)| before.get(*p).is_none_or(|b| b.id != f.id))
        .filter_map(|(p, f)| blob_text(repo, f.id).map(|t| (p.clone(), t)))
        .collect();
    out.extend(url_changes(&old_texts, &new_texts));
    if kind == Kind::Skill {
        let tools = |texts: &[(String, String)], files: &BTreeMap<String, FileAt>| {
            texts
                .iter()
                .find(|(p, _)| p == "SKILL.md")
                .map(|(_, t)| allowed_tools(t))
                .or_else(|| {
                    files
                        .get("SKILL.md")
                        .and_then(|f| blob_text(repo, f.id))
                        .map(|t| allowed_tools(&t))
                })
                .flatten()
        };
        let b = tools(&old_texts, before);
        let a = tools(&new_texts, after);
        out.extend(tools_change("SKILL.md", b, a));
    }
    out
}

/// One URL found in text: its scheme and host (shown), and scheme+host+path (compared; the
/// query and fragment, which may carry a token, are dropped and never shown).
fn urls_in(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let lower = text.to_ascii_lowercase();
    for scheme in ["http://", "https://"] {
        for (i, _) in lower.match_indices(scheme) {
            if i > 0 && lower.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let rest = &text[i + scheme.len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || "\"'<>()`,;|[]{}?#".contains(c))
                .unwrap_or(rest.len());
            let full = rest[..end].trim_end_matches(['.', ':', '!']);
            let authority = full.split('/').next().unwrap_or("");
            let hostport = authority.rsplit('@').next().unwrap_or(authority);
            let host = if let Some(r) = hostport.strip_prefix('[') {
                r.split(']').next().unwrap_or("")
            } else {
                hostport.split(':').next().unwrap_or("")
            }
            .to_ascii_lowercase();
            if host.is_empty() {
                continue;
            }
            let path = &full[authority.len()..];
            out.insert((format!("{scheme}{host}"), format!("{scheme}{host}{path}")));
        }
    }
    out
}

fn url_changes(old: &[(String, String)], new: &[(String, String)]) -> Vec<Change> {
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for (_, t) in old {
        for (h, u) in urls_in(t) {
            hosts.insert(host_only(&h));
            known.insert(u);
        }
    }
    let mut out = Vec::new();
    let (mut domains, mut urls) = (0usize, 0usize);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (p, t) in new {
        for (h, u) in urls_in(t) {
            if known.contains(&u) || !seen.insert(u) {
                continue;
            }
            let host = host_only(&h);
            if !hosts.contains(&host) {
                hosts.insert(host.clone());
                domains += 1;
                if domains <= MAX_PER_KIND {
                    out.push(Change {
                        change: "new-domain",
                        file: short(p),
                        detail: format!("a URL to a new domain: {}", short(&h)),
                    });
                }
            } else {
                urls += 1;
                if urls <= MAX_PER_KIND {
                    out.push(Change {
                        change: "new-url",
                        file: short(p),
                        detail: format!("a new URL on {}", short(&h)),
                    });
                }
            }
        }
    }
    for (n, what) in [(domains, "new-domain"), (urls, "new-url")] {
        if n > MAX_PER_KIND {
            out.push(Change {
                change: what,
                file: String::new(),
                detail: format!("and {} more", n - MAX_PER_KIND),
            });
        }
    }
    out
}

fn host_only(scheme_host: &str) -> String {
    scheme_host
        .split("://")
        .nth(1)
        .unwrap_or(scheme_host)
        .to_string()
}

/// The tools `allowed-tools` (or `allowed_tools`) grants in a Markdown frontmatter; `None`
/// when the key is absent.
fn allowed_tools(text: &str) -> Option<BTreeSet<String>> {
    let mut lines = text.lines();
    if lines
        .next()
        .is_none_or(|l| l.trim_start_matches('\u{FEFF}').trim() != "---")
    {
        return None;
    }
    let mut tools: Option<BTreeSet<String>> = None;
    let mut in_key = false;
    for l in lines {
        if l.trim() == "---" {
            break;
        }
        let key_value = l
            .strip_prefix("allowed-tools:")
            .or_else(|| l.strip_prefix("allowed_tools:"));
        let found = if let Some(v) = key_value {
            in_key = true;
            super::rules::split_tools(v)
        } else if in_key && l.trim_start().starts_with('-') {
            super::rules::split_tools(l.trim_start().trim_start_matches('-'))
        } else {
            in_key = false;
            continue;
        };
        let set = tools.get_or_insert_with(BTreeSet::new);
        for t in found {
            let t = t.trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']');
            if !t.is_empty() {
                set.insert(t.to_string());
            }
        }
    }
    tools
}

fn tools_change(
    file: &str,
    before: Option<BTreeSet<String>>,
    after: Option<BTreeSet<String>>,
) -> Option<Change> {
    if before == after {
        return None;
    }
    let list = |s: &BTreeSet<String>| short(&s.iter().cloned().collect::<Vec<_>>().join(", "));
    let detail = match (&before, &after) {
        (_, None) => "allowed-tools was removed (the agent asks before each tool again)".into(),
        (None, Some(a)) => format!("allowed-tools now grants {}", list(a)),
        (Some(b), Some(a)) => {
            let added: BTreeSet<String> = a.difference(b).cloned().collect();
            let removed: BTreeSet<String> = b.difference(a).cloned().collect();
            match (added.is_empty(), removed.is_empty()) {
                (false, true) => format!("allowed-tools adds {}", list(&added)),
                (true, false) => format!("allowed-tools drops {}", list(&removed)),
                _ => format!(
                    "allowed-tools adds {}, drops {}",
                    list(&added),
                    list(&removed)
                ),
            }
        }
    };
    Some(Change {
        change: "allowed-tools",
        file: file.to_string(),
        detail,
    })
}

// ---------------------------------------------------------------------------------------------
// Commands and instructions

fn review_files(
    ctx: &Workspace,
    kind: Kind,
    old: &LockedFileSource,
    new: &LockedFileSource,
    oc: &str,
    nc: &str,
) -> Vec<ItemReview> {
    review_moved(
        ctx,
        kind,
        &new.url,
        (&old.items, &new.items),
        (oc, nc),
        |repo, o, k| {
            let text = |blob: &str| -> Result<String, String> {
                let id = oid(blob)?;
                repo.find_blob(id)
                    .map_err(|_| format!("blob {} is not in this machine's cache", short(blob)))?;
                Ok(blob_text(repo, id).unwrap_or_default())
            };
            let before = o.map(|o| text(&o.blob)).transpose()?;
            let after = text(&k.blob)?;
            let old_t: Vec<(String, String)> =
                before.iter().map(|t| (k.path.clone(), t.clone())).collect();
            let mut changes = url_changes(&old_t, &[(k.path.clone(), after.clone())]);
            if kind == Kind::Command {
                let bt = before.as_deref().and_then(allowed_tools);
                changes.extend(tools_change(&short(&k.path), bt, allowed_tools(&after)));
            }
            Ok(changes)
        },
    )
}

// ---------------------------------------------------------------------------------------------
// MCP servers

fn review_servers(
    ctx: &Workspace,
    old: &LockedMcpSource,
    new: &LockedMcpSource,
    oc: &str,
    nc: &str,
) -> Vec<ItemReview> {
    let mut out = Vec::new();
    let old_servers: BTreeMap<&str, (&str, &str)> = old
        .packs
        .iter()
        .flat_map(|p| {
            p.servers
                .iter()
                .map(move |(n, s)| (n.as_str(), (p.file.as_str(), s.hash.as_str())))
        })
        .collect();
    for p in &new.packs {
        for (name, s) in &p.servers {
            let o = old_servers.get(name.as_str());
            if o.is_some_and(|(_, h)| *h == s.hash) {
                continue;
            }
            let mut r = item(Kind::Mcp, name, &new.url, oc, nc, o.is_none());
            let after = definition(ctx, new, &p.file, name, &s.hash);
            let before = o.map(|(f, h)| definition(ctx, old, f, name, h));
            match (before, after) {
                (None, Some(a)) => r.changes = server_changes(&p.file, &Map::new(), &a),
                (Some(Some(b)), Some(a)) => r.changes = server_changes(&p.file, &b, &a),
                _ => r.unverified.push(
                    "a definition of this server is neither in this machine's cache nor in its cached pack".into(),
                ),
            }
            out.push(r);
        }
    }
    out
}

fn definition(
    ctx: &Workspace,
    src: &LockedMcpSource,
    file: &str,
    name: &str,
    hash: &str,
) -> Option<Map<String, Value>> {
    ctx.cache()
        .ok()
        .and_then(|c| crate::mcp::store::get(c.root(), hash))
        .or_else(|| {
            super::scan::from_pack(ctx, src, file, name)
                .filter(|d| crate::mcp::store::hash(d) == hash)
        })
}

fn server_changes(
    file: &str,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let file = short(file);
    let s = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let (bc, ac) = (s(before, "command"), s(after, "command"));
    if ac.is_some() && bc != ac {
        out.push(Change {
            change: "mcp-command",
            file: file.clone(),
            detail: format!(
                "launch command {} (was {})",
                short(ac.as_deref().unwrap_or_default()),
                bc.as_deref().map(short).unwrap_or_else(|| "none".into())
            ),
        });
    }
    if before.get("args") != after.get("args") && after.get("args").is_some() {
        let args = |m: &Map<String, Value>| {
            super::rules::argv(m)
                .into_iter()
                .skip(1)
                .collect::<Vec<_>>()
        };
        let (ba, aa) = (args(before), args(after));
        let added: Vec<&String> = aa.iter().filter(|a| !ba.contains(a)).collect();
        let detail = if added.is_empty() {
            "launch arguments changed (reordered or removed)".to_string()
        } else {
            // Arguments may hold placeholders for secrets, never values: show at most a few,
            // short and escaped.
            let shown: Vec<String> = added.iter().take(5).map(|a| short(a)).collect();
            let more = added.len().saturating_sub(5);
            format!(
                "launch arguments add {}{}",
                shown.join(" "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        };
        out.push(Change {
            change: "mcp-args",
            file: file.clone(),
            detail,
        });
    }
    let env = |m: &Map<String, Value>| -> BTreeMap<String, Value> {
        m.get("env")
            .and_then(Value::as_object)
            .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let (be, ae) = (env(before), env(after));
    let added: Vec<String> = ae
        .keys()
        .filter(|k| !be.contains_key(*k))
        .map(|k| short(k))
        .collect();
    let changed: Vec<String> = ae
        .iter()
        .filter(|(k, v)| be.get(*k).is_some_and(|b| b != *v))
        .map(|(k, _)| short(k))
        .collect();
    if !added.is_empty() {
        out.push(Change {
            change: "mcp-env",
            file: file.clone(),
            detail: format!("new env keys {}", added.join(", ")),
        });
    }
    if !changed.is_empty() {
        out.push(Change {
            change: "mcp-env",
            file: file.clone(),
            detail: format!("env values changed for {}", changed.join(", ")),
        });
    }
    let host = |m: &Map<String, Value>| {
        s(m, "url").map(|u| {
            urls_in(&u)
                .into_iter()
                .next()
                .map(|(h, _)| h)
                .unwrap_or_default()
        })
    };
    let (bu, au) = (host(before), host(after));
    if au.is_some() && bu != au {
        out.push(Change {
            change: "mcp-url",
            file,
            detail: format!(
                "remote server at {}",
                short(au.as_deref().unwrap_or_default())
            ),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// `kst outdated`: the lock as it would be at the latest commits

/// One source `kst outdated` found behind: the lock entry's source, root and request, and the
/// commit its moving ref points to now (in the cache).
pub struct Move<'a> {
    pub url: &'a str,
    pub requested: &'a crate::lock::Requested,
    pub sub_dir: Option<&'a str>,
    pub latest: Oid,
}

/// `old` with each moved source pinned to its latest commit and its items' ids read there (an
/// item whose path is gone upstream is left out: a removal adds nothing). Only what the lock
/// already names is looked at — no new items are discovered, as `kst outdated` lists only those.
pub fn moved_lock(ctx: &Workspace, old: &Lock, moves: &[Move]) -> Lock {
    let mut new = old.clone();
    let find = |url: &str, req: &crate::lock::Requested, sub: Option<&str>| {
        moves
            .iter()
            .find(|m| m.url == url && m.requested == req && m.sub_dir == sub)
            .map(|m| m.latest)
    };
    let id_at = |repo: &Repository, commit: Oid, sub: Option<&str>, path: &str| {
        crate::git::path_id(repo, commit, path)
            .ok()
            .flatten()
            .or_else(|| {
                let sub = sub?;
                crate::git::path_id(repo, commit, &crate::tree::join_rel(sub, path))
                    .ok()
                    .flatten()
            })
    };
    // Each skill's tree and each command's or instruction's blob, read at the latest commit.
    fn repin<T: Versioned>(
        repo: &Repository,
        items: &mut Vec<T>,
        id_at: impl Fn(&Repository, &str) -> Option<Oid>,
    ) {
        items.retain_mut(|k| match id_at(repo, k.path()) {
            Some(id) => {
                k.set_git_id(id.to_string());
                true
            }
            None => false,
        });
    }
    for s in &mut new.sources {
        let Some(latest) = find(&s.url, &s.requested, s.sub_dir.as_deref()) else {
            continue;
        };
        let Ok(repo) = repo(ctx, &s.url) else {
            continue;
        };
        s.commit = Some(latest.to_string());
        let sub = s.sub_dir.clone();
        repin(&repo, &mut s.skills, |r, p| {
            id_at(r, latest, sub.as_deref(), p)
        });
    }
    for section in [&mut new.commands, &mut new.instructions] {
        for s in section.iter_mut() {
            let Some(latest) = find(&s.url, &s.requested, s.sub_dir.as_deref()) else {
                continue;
            };
            let Ok(repo) = repo(ctx, &s.url) else {
                continue;
            };
            s.commit = Some(latest.to_string());
            let sub = s.sub_dir.clone();
            repin(&repo, &mut s.items, |r, p| {
                id_at(r, latest, sub.as_deref(), p)
            });
        }
    }
    for s in &mut new.mcps {
        let Some(latest) = find(&s.url, &s.requested, s.sub_dir.as_deref()) else {
            continue;
        };
        s.commit = Some(latest.to_string());
        let at = s.clone();
        for p in &mut s.packs {
            let file = p.file.clone();
            p.servers.retain(
                |name, rec| match super::scan::from_pack(ctx, &at, &file, name) {
                    Some(def) => {
                        rec.hash = crate::mcp::store::hash(&def);
                        true
                    }
                    None => false,
                },
            );
        }
    }
    new
}

// ---------------------------------------------------------------------------------------------
// The gate

/// The review of a run's moves, and what the `review-updates` gate decided.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReview {
    /// `audit.review-updates` is on.
    pub required: bool,
    /// `--accept` was given.
    pub accepted: bool,
    /// The gate refused the run: nothing was installed and the lock was not written.
    pub refused: bool,
    pub items: Vec<ItemReview>,
}

impl UpdateReview {
    /// Review `new` against the workspace's old lock and decide: with `review-updates` on, a
    /// move that adds capability (or could not be checked) without `--accept` refuses the run.
    /// Decided from the plan, before anything is applied or written.
    pub fn decide(ctx: &Workspace, new: &Lock, accept: bool) -> UpdateReview {
        let items = review(ctx, &ctx.old_lock, new);
        let required = ctx.config.audit.review_updates.unwrap_or(false);
        let refused = required && !accept && items.iter().any(ItemReview::needs_accept);
        UpdateReview {
            required,
            accepted: accept,
            refused,
            items,
        }
    }

    /// The error of a refused run.
    pub fn refusal(&self) -> String {
        let n = self.items.iter().filter(|i| i.needs_accept()).count();
        format!(
            "{n} updated item{} add{} capability and audit.review-updates is on: nothing was installed and the lock is unchanged; read the review above and run again with --accept to take the update",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
        )
    }

    /// For `--json`: the `review` key.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// For people: each moved item's review, and the refusal.
    pub fn print(&self, printer: &crate::report::Printer) {
        print(printer, &self.items);
        if self.refused {
            printer.error(&self.refusal());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// Print the reviews for people, one block per item.
pub fn print(printer: &crate::report::Printer, reviews: &[ItemReview]) {
    for r in reviews {
        let from = if r.added {
            "new in this source".to_string()
        } else {
            format!("{} -> {}", abbrev(&r.from), abbrev(&r.to))
        };
        let head = format!(
            "review {} {} ({}, {from})",
            r.kind.name(),
            crate::escape::escape_line(&r.name),
            crate::source::DisplayUrl::new(&r.source),
        );
        if !r.needs_accept() {
            printer.line(&format!("{head}: adds no capability"));
            continue;
        }
        printer.line(&format!("{head}:"));
        for c in &r.changes {
            let at = if c.file.is_empty() {
                String::new()
            } else {
                format!(" {}", c.file)
            };
            printer.line(&format!("  + {}{at}: {}", c.change, c.detail));
        }
        for u in &r.unverified {
            printer.line(&format!(
                "  ? unverified: {}",
                crate::escape::escape_line(u)
            ));
        }
    }
}

fn abbrev(c: &str) -> &str {
    &c[..c.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_without_query_and_show_only_the_host() {
        let u = urls_in("see https://Example.com/a?token=SECRET and http://x.test/b#frag.");
        assert!(u.contains(&("https://example.com".into(), "https://example.com/a".into())));
        assert!(u.contains(&("http://x.test".into(), "http://x.test/b".into())));
        let ch = url_changes(
            &[("a.md".into(), "https://example.com/a".into())],
            &[(
                "a.md".into(),
                "https://example.com/a https://example.com/b?k=SECRET https://evil.test/x".into(),
            )],
        );
        let mut kinds: Vec<&str> = ch.iter().map(|c| c.change).collect();
        kinds.sort();
        assert_eq!(kinds, ["new-domain", "new-url"]);
        assert!(
            ch.iter()
                .all(|c| !c.detail.contains("SECRET") && !c.detail.contains("/x"))
        );
    }

    #[test]
    fn an_item_that_could_not_be_compared_needs_accept() {
        let mut r = item(Kind::Skill, "x", "s", "a", "b", false);
        assert!(!r.needs_accept());
        r.unverified.push("not in the cache".into());
        assert!(r.needs_accept());
    }

    #[test]
    fn allowed_tools_changes_are_described() {
        let a = allowed_tools("---\nname: x\nallowed-tools: Read, Bash(git:*)\n---\n");
        assert_eq!(a.clone().unwrap().len(), 2);
        let b = allowed_tools("---\nallowed-tools:\n  - Read\n  - Bash\n---\n");
        let c = tools_change("SKILL.md", a.clone(), b).unwrap();
        assert!(c.detail.contains("adds Bash"), "{}", c.detail);
        assert!(tools_change("SKILL.md", a.clone(), a).is_none());
        assert_eq!(allowed_tools("no frontmatter"), None);
    }

    #[test]
    fn server_changes_name_command_args_and_env_keys_but_never_env_values() {
        let j = |v: Value| v.as_object().unwrap().clone();
        let b = j(
            serde_json::json!({"command": "npx", "args": ["-y", "pkg@1.0.0"], "env": {"A": "1"}}),
        );
        let a = j(
            serde_json::json!({"command": "sh", "args": ["-c", "run"], "env": {"A": "2", "TOKEN": "hunter2"}}),
        );
        let ch = server_changes("mcps/x.json", &b, &a);
        let kinds: Vec<&str> = ch.iter().map(|c| c.change).collect();
        assert_eq!(kinds, ["mcp-command", "mcp-args", "mcp-env", "mcp-env"]);
        assert!(ch.iter().all(|c| !c.detail.contains("hunter2")));
        assert!(server_changes("f", &a, &a).is_empty());
    }
}
