//! What `kst audit` looks at: the lock, turned into [`Item`]s (kind, name, installed paths, and
//! the bytes or definitions to check).
//!
//! - Skills: the files of the installed folder the lock names, read from disk without following
//!   a symlink, each capped at [`scan_cap`] bytes, at most [`MAX_FILES`] files per skill. Only a
//!   folder that is exactly `<skills folder of this scope>/<name>` is read: a hostile lock must
//!   not make kst read `~/.ssh` (the same test a sync uses before it deletes a folder).
//! - MCP servers: the definition kst wrote the entry from, in placeholder form — from the
//!   cache's definition store by the lock's hash, else from the pack file (the cached commit, the
//!   local folder, or the config's inline pack) when its hash still matches. Never the settings
//!   file's entry, which holds resolved secrets. A server whose definition cannot be found is
//!   *unverified*.
//!
//! Commands and instructions plug in here as more producers of items once they exist.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Content, Entry, Item, Kind};
use crate::discover::{DiskPack, PackView};
use crate::lock::{Lock, LockedMcpSource, Requested};
use crate::workspace::Workspace;

/// Most files read per item.
pub const MAX_FILES: usize = 50_000;
/// Default bytes scanned per file (`KASETTO_AUDIT_MAX_BYTES` overrides).
pub const SCAN_CAP: u64 = 4 << 20;
/// Deepest folder nesting walked inside an item.
const MAX_DEPTH: usize = 64;

/// Bytes scanned per file.
pub fn scan_cap() -> u64 {
    std::env::var(crate::envvars::KASETTO_AUDIT_MAX_BYTES)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(SCAN_CAP)
}

/// Every installed item of `lock`, in this workspace's scope. `names` (if not empty) keeps
/// only items with one of these names (or MCP servers of a pack with that name); the second
/// value lists the names that matched nothing.
pub fn items(ctx: &Workspace, lock: &Lock, names: &[String]) -> (Vec<Item>, Vec<String>) {
    let wanted = |n: &str| names.is_empty() || names.iter().any(|x| x == n);
    let mut out = Vec::new();
    for src in &lock.sources {
        for skill in &src.skills {
            if wanted(&skill.name) {
                out.push(skill_item(ctx, &src.url, &skill.name, &skill.installed));
            }
        }
    }
    let mut matched: Vec<&str> = Vec::new();
    for src in &lock.mcps {
        for pack in &src.packs {
            // A pack's name (`mcps/github.json` → `github`) picks all its servers.
            let stem = pack.file.rsplit('/').next().unwrap_or("");
            let stem = stem.strip_suffix(".json").unwrap_or(stem);
            let whole_pack = !names.is_empty() && names.iter().any(|n| n == stem);
            if whole_pack {
                matched.push(stem);
            }
            for (name, rec) in &pack.servers {
                if whole_pack || wanted(name) {
                    out.push(server_item(
                        ctx,
                        src,
                        &pack.file,
                        name,
                        &rec.hash,
                        &rec.targets,
                    ));
                }
            }
        }
    }
    for (kind, section) in [
        (crate::item::Kind::Command, &lock.commands),
        (crate::item::Kind::Instruction, &lock.instructions),
    ] {
        for src in section {
            for it in &src.items {
                if wanted(&it.name) {
                    out.push(file_item(ctx, kind, &src.url, it));
                }
            }
        }
    }
    let missing = names
        .iter()
        .filter(|n| !out.iter().any(|i| &i.name == *n) && !matched.contains(&n.as_str()))
        .cloned()
        .collect();
    (out, missing)
}

fn skill_item(ctx: &Workspace, url: &str, name: &str, installed: &[String]) -> Item {
    let mut item = Item {
        kind: Kind::Skill,
        name: name.to_string(),
        source: url.to_string(),
        installed: installed.to_vec(),
        entries: Vec::new(),
        unverified: Vec::new(),
    };
    let root = &ctx.scope.root;
    // The first copy kst may manage and that is there; `kst verify` proves the copies equal.
    let folder = installed.iter().find(|rel| {
        let abs = crate::plan::abs_of(rel, root);
        crate::plan::is_manageable(rel, root, &ctx.scope.manageable)
            && ctx.scope.symlinked_parent(&abs).is_none()
            && std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir())
    });
    let Some(rel) = folder else {
        let why = if installed
            .iter()
            .any(|rel| !crate::plan::is_manageable(rel, root, &ctx.scope.manageable))
        {
            "the lock names a folder that is no skills folder of this scope; it was not read"
        } else {
            "not installed where the lock says; run `kst sync`"
        };
        item.unverified.push(why.to_string());
        return item;
    };
    let abs = crate::plan::abs_of(rel, root);
    let cap = scan_cap();
    let mut files = Vec::new();
    if let Err(e) = walk(&abs, "", 0, &mut files) {
        item.unverified.push(e);
    }
    for (sub, path) in files {
        let shown = format!("{rel}/{sub}");
        match read_capped(&path, cap) {
            Ok((bytes, executable, truncated)) => item.entries.push(Entry {
                path: shown,
                content: Content::File {
                    bytes,
                    executable,
                    truncated,
                },
            }),
            Err(e) => item.unverified.push(format!(
                "{}: cannot read it: {e}",
                crate::escape::escape_line(&shown)
            )),
        }
    }
    item
}

/// A command or an instruction: what kst wrote at its first destination that is a place kst
/// writes this kind to (a rendered file, or its block in a shared file). A lock naming any
/// other place is not read.
fn file_item(
    ctx: &Workspace,
    kind: crate::item::Kind,
    url: &str,
    it: &crate::lock::LockedFile,
) -> Item {
    let mut item = Item {
        kind: if kind == crate::item::Kind::Command {
            Kind::Command
        } else {
            Kind::Instruction
        },
        name: it.name.clone(),
        source: url.to_string(),
        installed: it.installed.keys().cloned().collect(),
        entries: Vec::new(),
        unverified: Vec::new(),
    };
    let root = &ctx.scope.root;
    let global = ctx.scope.scope == crate::config::Scope::Global;
    let Ok(home) = crate::dirs::home() else {
        item.unverified.push("HOME is not set".into());
        return item;
    };
    let known = crate::files::known(kind, global, &home, root);
    let cap = scan_cap();
    for key in it.installed.keys() {
        let read = match known.place_of(key, root) {
            None => continue,
            Some(crate::files::KnownPlace::File(t)) => {
                if ctx.scope.symlinked_parent(&t.abs).is_some() {
                    continue;
                }
                read_capped(&t.abs, cap).map(|(bytes, executable, truncated)| Content::File {
                    bytes,
                    executable,
                    truncated,
                })
            }
            Some(crate::files::KnownPlace::Block { target, id }) => {
                let confine = (!global).then(|| crate::shared_file::real_path(root));
                if crate::shared_file::check_confined(&target.abs, confine.as_deref()).is_err() {
                    continue;
                }
                crate::fsx::read_input_bytes(&target.abs, crate::fsx::SETTINGS_CAP, None)
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|bytes| {
                        crate::instructions::get(&bytes, &id)
                            .ok()
                            .flatten()
                            .ok_or_else(|| std::io::Error::other("kst's block is not there"))
                    })
                    .map(|b| Content::File {
                        bytes: b.body,
                        executable: false,
                        truncated: false,
                    })
            }
        };
        match read {
            Ok(content) => {
                item.entries.push(Entry {
                    path: key.clone(),
                    content,
                });
                return item;
            }
            Err(e) => item.unverified.push(format!(
                "{}: cannot read it: {e}",
                crate::escape::escape_line(key)
            )),
        }
    }
    if item.entries.is_empty() && item.unverified.is_empty() {
        item.unverified.push(
            "not installed where the lock says (or the lock names no place kst writes to); run `kst sync`"
                .into(),
        );
    }
    item
}

/// Regular files under `dir` (symlinks are not followed, and not listed), sorted.
fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "{prefix}: nested deeper than {MAX_DEPTH} folders; the rest was not read"
        ));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            walk(&e.path(), &rel, depth + 1, out)?;
        } else if t.is_file() {
            if out.len() >= MAX_FILES {
                return Err(format!(
                    "more than {MAX_FILES} files; the rest was not read"
                ));
            }
            out.push((rel, e.path()));
        }
    }
    Ok(())
}

/// The first `cap` bytes of a regular file (never through a symlink, never blocking on a FIFO),
/// whether it is executable, and whether there was more.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<(Vec<u8>, bool, bool)> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(cap + 1).read_to_end(&mut bytes)?;
    let truncated = bytes.len() as u64 > cap;
    bytes.truncate(cap as usize);
    Ok((bytes, meta.permissions().mode() & 0o111 != 0, truncated))
}

fn server_item(
    ctx: &Workspace,
    src: &LockedMcpSource,
    file: &str,
    name: &str,
    hash: &str,
    targets: &[String],
) -> Item {
    let mut item = Item {
        kind: Kind::Mcp,
        name: name.to_string(),
        source: src.url.clone(),
        installed: targets.to_vec(),
        entries: Vec::new(),
        unverified: Vec::new(),
    };
    let def = ctx
        .cache()
        .ok()
        .and_then(|c| crate::mcp::store::get(c.root(), hash))
        .or_else(|| from_pack(ctx, src, file, name).filter(|d| crate::mcp::store::hash(d) == hash));
    let Some(def) = def else {
        item.unverified.push(
            "the definition kst wrote this server from is neither in this machine's cache nor in its pack any more; run `kst sync`".into(),
        );
        return item;
    };
    let (path, line) = locate(ctx, targets, name);
    item.entries.push(Entry {
        path,
        content: Content::Server { def, line },
    });
    item
}

/// The server's definition from its pack as the lock pins it, if it can be read offline.
pub(crate) fn from_pack(
    ctx: &Workspace,
    src: &LockedMcpSource,
    file: &str,
    name: &str,
) -> Option<Map<String, Value>> {
    if let Some(inline) = src.url.strip_prefix("inline:") {
        return ctx.config.mcps.iter().find_map(|m| match &m.kind {
            crate::mcp::McpSourceKind::Inline { name: n, servers } if n == inline => servers
                .iter()
                .find(|(s, _)| s == name)
                .map(|(_, d)| d.clone()),
            _ => None,
        });
    }
    let config_dir = ctx.config.path.parent().unwrap_or(Path::new("."));
    let bytes = match (&src.commit, &src.requested) {
        (_, Requested::Local) => {
            DiskPack::new(config_dir.join(&src.url), ctx.reads_within.clone()).read_file(file)?
        }
        (Some(commit), _) => {
            let crate::source::Source::Git(url) =
                crate::source::parse(&src.url, config_dir).ok()?
            else {
                return None;
            };
            let repo = ctx.cache().ok()?.database(url.canonical()).open().ok()?;
            let pack = crate::git::GitPack::new(&repo, crate::oid::parse(commit)?).ok()?;
            pack.read_file(file)?
        }
        _ => return None,
    };
    crate::mcp::pack::parse(file, &bytes)
        .ok()?
        .servers
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| s.def)
}

/// The first settings file of the server that is an agent's settings file of this scope, and
/// the line its entry starts on there (1 if it cannot be found). Only the line number is taken
/// from the file.
fn locate(ctx: &Workspace, targets: &[String], name: &str) -> (String, usize) {
    let global = ctx.scope.scope == crate::config::Scope::Global;
    let Some(first) = targets.first() else {
        return (String::new(), 1);
    };
    let Ok(home) = crate::dirs::home() else {
        return (first.clone(), 1);
    };
    let confine = (!global).then(|| crate::mcp::plan::real_path(&ctx.scope.root));
    for rel in targets {
        let Some(t) = crate::mcp::plan::known_target(rel, global, &home, &ctx.scope.root) else {
            continue;
        };
        let Ok(text) =
            crate::fsx::read_input(&t.target.abs, crate::fsx::SETTINGS_CAP, confine.as_deref())
        else {
            return (rel.clone(), 1);
        };
        let quoted = format!("\"{name}\"");
        let toml = [
            format!("mcp_servers.{name}]"),
            format!("mcp_servers.\"{name}\"]"),
        ];
        let line = text
            .lines()
            .position(|l| {
                let t = l.trim_start();
                (t.starts_with(&quoted) && t[quoted.len()..].trim_start().starts_with(':'))
                    || toml
                        .iter()
                        .any(|k| t.starts_with('[') && t.ends_with(k.as_str()))
            })
            .map(|i| i + 1)
            .unwrap_or(1);
        return (rel.clone(), line);
    }
    (first.clone(), 1)
}
