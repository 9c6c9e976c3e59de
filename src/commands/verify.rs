//! `kst verify`: prove the installed bytes are the locked ones (SPEC 2).
//!
//! Offline by default: each installed folder's tree id is recomputed from disk and compared
//! with the lock. When they differ, the expected listing (from the cache, or from a local
//! source that still matches) names the files that were modified, lost, added or re-moded.
//! `--remote` also asks each remote whether the locked tags and branches still point where the
//! lock says.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;
use serde::Serialize;

use crate::discover::{DiskPack, PackView};
use crate::error::{Error, Outcome, Result};
use crate::git::{Cache, GitPack};
use crate::lock::{LockedSource, Requested};
use crate::plan;
use crate::report::Printer;
use crate::source::{self, Source};
use crate::tree::{self, Budget, Caps, EntryKind, Tree};
use crate::workspace::{Common, Workspace};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also ask each remote whether locked tags and branches still point where the lock says
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SkillCheck {
    pub name: String,
    pub source: String,
    pub path: String,
    pub status: &'static str,
    pub tree: String,
    pub found_tree: Option<String>,
    pub modified: Vec<String>,
    pub mode_changed: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RemoteCheck {
    pub url: String,
    pub requested: String,
    pub locked: String,
    pub remote: Option<String>,
    /// `same`, `moved` (a tag that moved is drift; a branch that moved is news), `missing`,
    /// or `error`.
    pub status: &'static str,
    pub error: Option<String>,
}

/// A signed pin (SPEC 16) checked again: the lock's `signer` against the signature of the
/// locked commit (or annotated tag) in the cache, offline.
#[derive(Debug, Serialize)]
pub struct SignerCheck {
    pub url: String,
    pub requested: String,
    pub commit: String,
    /// The fingerprint the lock records.
    pub signer: String,
    /// The fingerprint of the key that signed the pin, as found in the cache.
    pub found: Option<String>,
    /// `ok`, `changed` (signed by another key), `not-allowed` (the config's allowed-signers
    /// file no longer lists the key), `invalid` (unsigned, or a signature that does not
    /// verify), or `error` (the commit is not in the cache: it cannot be checked offline).
    pub status: &'static str,
    pub error: Option<String>,
}

/// Every lock entry that records a signer, checked against the cache.
pub fn check_signers(ctx: &Workspace) -> Vec<SignerCheck> {
    let cache = ctx.cache().ok();
    let config_dir = ctx.config.path.parent().unwrap_or(Path::new("."));
    let pins = ctx
        .old_lock
        .sources
        .iter()
        .map(|s| (&s.url, &s.requested, &s.commit, &s.signer))
        .chain(
            ctx.old_lock
                .mcps
                .iter()
                .map(|s| (&s.url, &s.requested, &s.commit, &s.signer)),
        )
        .chain(
            ctx.old_lock
                .commands
                .iter()
                .chain(&ctx.old_lock.instructions)
                .map(|s| (&s.url, &s.requested, &s.commit, &s.signer)),
        );
    let mut out = Vec::new();
    for (url, requested, commit, signer) in pins {
        let Some(signer) = signer else { continue };
        let mut row = SignerCheck {
            url: url.clone(),
            requested: requested.to_string(),
            commit: commit.clone().unwrap_or_default(),
            signer: signer.clone(),
            found: None,
            status: "error",
            error: None,
        };
        let repo = (|| {
            let Source::Git(g) = source::parse(url, config_dir).ok()? else {
                return None;
            };
            cache?.database(g.canonical()).open().ok()
        })();
        let oid = commit.as_deref().and_then(crate::oid::parse);
        match (repo, oid) {
            (Some(repo), Some(oid)) if repo.find_commit(oid).is_ok() => {
                match crate::signed::signer_of(&repo, oid, requested) {
                    Ok(s) if s.fingerprint == *signer => match trust_of(ctx, url) {
                        Some(t) if !t.signers().is_ok_and(|a| a.allows_fingerprint(signer)) => {
                            row.status = "not-allowed";
                            row.error = Some(format!(
                                "the pin's signer {signer} is not in the allowed signers {} \
                                 (set at {})",
                                t.allowed_signers.display(),
                                t.at
                            ));
                        }
                        _ => row.status = "ok",
                    },
                    Ok(s) => {
                        row.status = "changed";
                        row.error = Some(format!(
                            "the pin is signed by {}, but the lock records {}",
                            s.fingerprint,
                            crate::escape::escape_line(signer)
                        ));
                        row.found = Some(s.fingerprint);
                    }
                    Err(why) => {
                        row.status = "invalid";
                        row.error = Some(format!("the pinned object {why}"));
                    }
                }
            }
            _ => {
                row.error = Some(format!(
                    "commit {} is not in the cache, so its signature cannot be checked offline; \
                     run `kst sync` (or `kst fetch`) first",
                    row.commit
                ))
            }
        }
        out.push(row);
    }
    out
}

/// The `trust:` of the config entry (of any kind) whose source is `url`, if it has one.
fn trust_of<'a>(ctx: &'a Workspace, url: &str) -> Option<&'a crate::config::entry::Trust> {
    let c = &ctx.config;
    c.skills
        .iter()
        .chain(&c.commands)
        .chain(&c.instructions)
        .filter(|e| e.source.identity() == url)
        .find_map(|e| e.trust.as_ref())
        .or_else(|| {
            c.mcps
                .iter()
                .filter(|e| e.url() == url)
                .find_map(|e| e.trust.as_ref())
        })
}

/// Files of a listing: path → (mode, blob id).
fn flatten(t: &Tree) -> BTreeMap<String, (u32, git2::Oid)> {
    let mut out = BTreeMap::new();
    t.walk(|p, e| {
        if !matches!(e.kind, EntryKind::Gitlink) {
            out.insert(p.to_string(), (e.mode(), e.id));
        }
    });
    out
}

/// The listing the lock describes, if we can still read it without the network.
fn expected_listing(
    src: &LockedSource,
    path: &str,
    want: &str,
    cache: Option<&Cache>,
    config_dir: &Path,
) -> Option<Tree> {
    let caps = Caps::from_env();
    match (&src.commit, src.requested == Requested::Local) {
        (_, true) => {
            let view = DiskPack::new(config_dir.join(&src.url), None);
            view.list(path, &mut Budget::new(caps))
                .ok()
                .filter(|t| t.id.to_string() == want)
        }
        (Some(commit), false) => {
            let cache = cache?;
            let url = match source::parse(&src.url, config_dir).ok()? {
                Source::Git(g) => g,
                Source::Local { .. } => return None,
            };
            let repo = cache.database(url.canonical()).open().ok()?;
            let pack = GitPack::new(&repo, crate::oid::parse(commit)?).ok()?;
            pack.list(path, &mut Budget::new(caps)).ok()
        }
        _ => None,
    }
}

/// Every MCP server entry of the lock, checked where this scope's agents read them.
pub fn check_servers(ctx: &Workspace) -> Result<Vec<crate::mcp::verify::ServerCheck>> {
    if ctx.old_lock.mcps.is_empty() {
        return Ok(Vec::new());
    }
    let home = crate::dirs::home()?;
    let cache_root = ctx.cache().ok().map(|c| c.root().to_path_buf());
    let project = ctx.scope.scope == crate::config::Scope::Project;
    let confine = project.then(|| crate::mcp::plan::real_path(&ctx.scope.root));
    Ok(crate::mcp::verify::check(
        &ctx.old_lock,
        &crate::mcp::verify::Place {
            global: !project,
            home: &home,
            root: &ctx.scope.root,
            cache_root: cache_root.as_deref(),
            confine: confine.as_deref(),
        },
    ))
}

/// Every command and instruction destination of the lock, checked.
pub fn check_files(ctx: &Workspace) -> Result<Vec<crate::files::verify::FileCheck>> {
    let lock = &ctx.old_lock;
    if lock.commands.is_empty() && lock.instructions.is_empty() {
        return Ok(Vec::new());
    }
    let home = crate::dirs::home()?;
    let project = ctx.scope.scope == crate::config::Scope::Project;
    let confine = project.then(|| crate::shared_file::real_path(&ctx.scope.root));
    let mut out = Vec::new();
    for (kind, section) in [
        (crate::item::Kind::Command, &lock.commands),
        (crate::item::Kind::Instruction, &lock.instructions),
    ] {
        out.extend(crate::files::verify::check(
            kind,
            section,
            !project,
            &home,
            &ctx.scope.root,
            confine.as_deref(),
        ));
    }
    Ok(out)
}

pub fn check_installed(ctx: &Workspace) -> Vec<SkillCheck> {
    let cache = ctx.cache().ok();
    let config_dir = ctx.config.path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for src in &ctx.old_lock.sources {
        for skill in &src.skills {
            for rel in &skill.installed {
                let abs = plan::abs_of(rel, &ctx.scope.root);
                let mut c = SkillCheck {
                    name: skill.name.clone(),
                    source: src.url.clone(),
                    path: rel.clone(),
                    tree: skill.tree.clone(),
                    ..Default::default()
                };
                let found = match std::fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_dir() => {
                        tree::read_disk(&abs, &mut Budget::new(Caps::from_env()))
                    }
                    Ok(_) => Err(anyhow::anyhow!("{} is not a folder", abs.display())),
                    Err(_) => {
                        c.status = "missing";
                        out.push(c);
                        continue;
                    }
                };
                match found {
                    Err(e) => {
                        c.status = "error";
                        c.error = Some(format!("{e:#}"));
                    }
                    Ok(t) if t.id.to_string() == skill.tree => c.status = "ok",
                    Ok(t) => {
                        c.status = "modified";
                        c.found_tree = Some(t.id.to_string());
                        if let Some(want) =
                            expected_listing(src, &skill.path, &skill.tree, cache, config_dir)
                        {
                            if want.installed_id() == t.id {
                                // Only gitlinks differ: what kst installs is exactly this.
                                c.status = "ok";
                            } else {
                                let (a, b) = (flatten(&want), flatten(&t));
                                for (p, (mode, id)) in &a {
                                    match b.get(p) {
                                        None => c.missing.push(p.clone()),
                                        Some((m2, id2)) if id2 != id => {
                                            c.modified.push(p.clone());
                                            if m2 != mode {
                                                c.mode_changed.push(p.clone());
                                            }
                                        }
                                        Some((m2, _)) if m2 != mode => {
                                            c.mode_changed.push(p.clone())
                                        }
                                        _ => {}
                                    }
                                }
                                c.extra =
                                    b.keys().filter(|p| !a.contains_key(*p)).cloned().collect();
                            }
                        }
                    }
                }
                out.push(c);
            }
        }
    }
    out
}

/// Ask each remote where the locked tags and branches point now.
pub fn check_remotes(ctx: &Workspace) -> Vec<RemoteCheck> {
    let Ok(cache) = Cache::open() else {
        return Vec::new();
    };
    let config_dir = ctx.config.path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for src in &ctx.old_lock.sources {
        let (Some(commit), Ok(Source::Git(canonical))) =
            (&src.commit, source::parse(&src.url, config_dir))
        else {
            continue;
        };
        // Fetch from the URL as the config spells it (it may carry an ssh user name).
        let url = ctx
            .config
            .skills
            .iter()
            .find_map(|e| match &e.source {
                Source::Git(g) if g.canonical() == canonical.canonical() => Some(g.clone()),
                _ => None,
            })
            .unwrap_or(canonical);
        let wanted = match &src.requested {
            Requested::Tag(t) => vec![format!("refs/tags/{t}^{{}}"), format!("refs/tags/{t}")],
            Requested::Branch(b) => vec![format!("refs/heads/{b}")],
            Requested::Default => vec!["HEAD".to_string()],
            _ => continue,
        };
        let mut row = RemoteCheck {
            url: src.url.clone(),
            requested: src.requested.to_string(),
            locked: commit.clone(),
            remote: None,
            status: "error",
            error: None,
        };
        let db = cache.database(url.canonical());
        let listed = db
            .open_or_init()
            .and_then(|repo| crate::git::list_remote(&repo, &url));
        match listed {
            Err(e) => row.error = Some(format!("{e:#}")),
            Ok(refs) => match wanted
                .iter()
                .find_map(|w| refs.iter().find(|(n, _)| n == w))
            {
                None => row.status = "missing",
                Some((_, oid)) => {
                    row.remote = Some(oid.to_string());
                    row.status = if oid.to_string() == *commit {
                        "same"
                    } else {
                        "moved"
                    };
                }
            },
        }
        out.push(row);
    }
    out
}

pub fn run(common: &Common, args: VerifyArgs, printer: &Printer) -> Result<()> {
    let remote = args.remote;
    let ctx = Workspace::load(
        common,
        crate::trust::Access::Reads {
            network: remote && !common.offline,
        },
    )?;
    if let Some(k) = &ctx.kasetto {
        return Err(k.refused("kst verify"));
    }
    if ctx.old_lock.is_empty() {
        return Err(Error::usage(format!(
            "{} has nothing to verify; run `kst sync` first",
            ctx.scope.lock_path.display()
        )));
    }
    let skills = check_installed(&ctx);
    let servers = check_servers(&ctx)?;
    let files = check_files(&ctx)?;
    let signers = check_signers(&ctx);
    let remotes = if remote && !common.offline {
        check_remotes(&ctx)
    } else {
        Vec::new()
    };
    let drift = skills.iter().filter(|c| c.status != "ok").count()
        + servers.iter().filter(|c| c.status != "ok").count()
        + files.iter().filter(|c| c.status != "ok").count()
        + signers.iter().filter(|c| c.status != "ok").count()
        + remotes
            .iter()
            .filter(|r| {
                r.status != "same" && (r.status != "moved" || r.requested.starts_with("tag"))
            })
            .count();
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1, "command": "verify", "ok": drift == 0,
            "lock": ctx.scope.lock_path.display().to_string(),
            "skills": skills, "servers": servers, "files": files, "remote": remotes, "signers": signers,
        }));
    } else {
        for c in &skills {
            if c.status == "ok" {
                if printer.verbosity >= crate::report::Verbosity::Verbose {
                    printer.line(&format!("= {} {} ({})", c.name, c.path, &c.tree[..7]));
                }
                continue;
            }
            printer.error(&format!("{} at {}: {}", c.name, c.path, c.status));
            for (what, list) in [
                ("modified", &c.modified),
                ("mode changed", &c.mode_changed),
                ("missing", &c.missing),
                ("extra", &c.extra),
            ] {
                for p in list {
                    printer.error(&format!("    {what}: {p}"));
                }
            }
            if let Some(e) = &c.error {
                printer.error(&format!("    {e}"));
            }
        }
        for s in &signers {
            if s.status != "ok" {
                printer.error(&format!(
                    "signed pin {} ({}) at {}: {}: {}",
                    s.url,
                    s.requested,
                    s.commit,
                    s.status,
                    s.error.as_deref().unwrap_or("")
                ));
            }
        }
        for r in &remotes {
            match r.status {
                "same" => {}
                "moved" => printer.line(&format!(
                    "{} {} ({}) now points to {} (locked {})",
                    if r.requested.starts_with("tag") {
                        "!"
                    } else {
                        "~"
                    },
                    r.url,
                    r.requested,
                    r.remote.as_deref().unwrap_or("?"),
                    r.locked
                )),
                _ => printer.error(&format!(
                    "{} ({}): {}",
                    r.url,
                    r.requested,
                    r.error.as_deref().unwrap_or(r.status)
                )),
            }
        }
        for c in &servers {
            if c.status == "ok" {
                if printer.verbosity >= crate::report::Verbosity::Verbose {
                    printer.line(&format!("= server {} {}", c.name, c.path));
                }
                continue;
            }
            printer.error(&format!("server {} at {}: {}", c.name, c.path, c.status));
            if let Some(e) = &c.error {
                printer.error(&format!("    {e}"));
            }
        }
        for c in &files {
            if c.status == "ok" {
                if printer.verbosity >= crate::report::Verbosity::Verbose {
                    printer.line(&format!(
                        "= {} {} {}",
                        c.kind.noun(),
                        crate::escape::escape_line(&c.name),
                        crate::escape::escape_line(&c.path)
                    ));
                }
                continue;
            }
            // Both come from the lock, a file of the project: one line each, whatever it holds.
            printer.error(&format!(
                "{} {} at {}: {}",
                c.kind.noun(),
                crate::escape::escape_line(&c.name),
                crate::escape::escape_line(&c.path),
                c.status
            ));
            if let Some(e) = &c.error {
                printer.error(&format!("    {e}"));
            }
        }
        let count = |k: crate::item::Kind| files.iter().filter(|c| c.kind == k).count();
        let counted: Vec<String> = [
            (skills.len(), "installed skill folders"),
            (servers.len(), "MCP server entries"),
            (count(crate::item::Kind::Command), "command files"),
            (
                count(crate::item::Kind::Instruction),
                "instruction files and blocks",
            ),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if drift == 0 {
            printer.line(&format!(
                "Verified {} against {}",
                if counted.is_empty() {
                    "0 installed items".to_string()
                } else {
                    counted.join(" and ")
                },
                ctx.scope.lock_path.display()
            ));
        } else {
            printer.error(&format!(
                "{drift} problems found; run `kst sync` to repair installed skills and command or rule files (an edited MCP entry or instruction block is left alone: delete it, and `kst sync` writes kst's version again)"
            ));
        }
    }
    if drift == 0 {
        Ok(())
    } else {
        Err(Error::Reported(Outcome::Problems))
    }
}
