//! `kst doctor`: one read-only look at everything that can be wrong with a scope (SPEC 2).
//!
//! Version, the paths kst uses, the config's trust state, the last sync's result (kept by
//! `sync` in the data folder, [`crate::machine`]), what `kst verify` finds (called, not
//! copied), untracked entries in the skills folders kst manages, and staging folders an
//! interrupted run left behind. Each problem comes with the command that fixes it; any problem
//! makes the exit code 1. Offline; nothing installed is changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Origin, Scope};
use crate::error::{Error, Outcome, Result};
use crate::lock::Lock;
use crate::report::Printer;
use crate::workspace::{Common, Workspace};

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong (one line; outside text escaped).
    pub problem: String,
    /// The command that fixes it.
    pub fix: String,
}

#[derive(Debug, Serialize)]
struct Trust {
    /// How the config was found: `flag` | `env` | `working_dir` | `xdg`.
    origin: &'static str,
    /// `not_needed` (kst did not find it by itself) | `trusted` | `not_trusted`.
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct Report {
    schema: u32,
    command: &'static str,
    ok: bool,
    version: &'static str,
    scope: Option<&'static str>,
    config: Option<String>,
    lock: Option<String>,
    cache: Option<String>,
    data: Option<String>,
    trust: Option<Trust>,
    last_sync: Option<crate::machine::LastSync>,
    /// Installed skill folders and MCP entries that are not as locked (`kst verify`'s rows).
    skills: Vec<crate::commands::verify::SkillCheck>,
    servers: Vec<crate::mcp::verify::ServerCheck>,
    /// Command files, rule files and instruction blocks that are not as locked.
    files: Vec<crate::files::verify::FileCheck>,
    /// kst/Kasetto instruction blocks in this scope's shared files that the lock does not
    /// track (`FILE#ID`).
    orphaned_blocks: Vec<String>,
    /// Entries of managed skills folders that the lock does not track (reported, not a problem).
    untracked: Vec<String>,
    /// Staging and temp folders left by an interrupted run.
    stale: Vec<String>,
    problems: Vec<Problem>,
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Flag => "flag",
        Origin::Env => "env",
        Origin::WorkingDir => "working_dir",
        Origin::Xdg => "xdg",
    }
}

/// Every path the lock tracks in this scope, absolute. The one walk over the lock here.
fn tracked_paths(lock: &Lock, root: &Path) -> BTreeSet<PathBuf> {
    lock.sources
        .iter()
        .flat_map(|s| s.skills.iter())
        .flat_map(|k| k.installed.iter())
        .map(|rel| crate::pathsafe::normalise(&crate::plan::abs_of(rel, root)))
        .collect()
}

/// Entries of the skills folders that the lock does not track, and kst's own leftovers.
fn scan_folders(ctx: &Workspace) -> (Vec<String>, Vec<String>) {
    let tracked = tracked_paths(&ctx.old_lock, &ctx.scope.root);
    let mut untracked = Vec::new();
    let mut stale = Vec::new();
    for folder in &ctx.scope.folders {
        let work = crate::install::work_dir(folder, &ctx.scope.root);
        if std::fs::symlink_metadata(&work).is_ok() {
            stale.push(work.display().to_string());
        }
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for path in names {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(crate::fsx::TEMP_PREFIX) {
                if path != work {
                    stale.push(path.display().to_string());
                }
                continue;
            }
            if !tracked.contains(&crate::pathsafe::normalise(&path)) {
                untracked.push(path.display().to_string());
            }
        }
    }
    (untracked, stale)
}

fn trust_state(common: &Common, path: &Path, origin: Origin) -> (Trust, Option<Problem>) {
    let origin_s = origin_name(origin);
    if origin != Origin::WorkingDir {
        return (
            Trust {
                origin: origin_s,
                status: "not_needed",
            },
            None,
        );
    }
    let stranger = crate::trust::is_stranger(path, origin, common.scope).unwrap_or(true);
    let status = if stranger { "not_trusted" } else { "trusted" };
    // Untrusted matters only where the config would reach the global scope.
    let global = match common.scope {
        Some(s) => s == Scope::Global,
        None => crate::trust::chain(path)
            .map(|c| c.scope() != Some(Scope::Project))
            .unwrap_or(false),
    };
    let problem = (stranger && global).then(|| Problem {
        problem: format!(
            "{} was found in the working directory and is not trusted: kst will not sync it to \
             the global scope",
            crate::trust::shown(path)
        ),
        fix: "kst trust   (read the config first; or add `scope: project` to it)".to_string(),
    });
    (
        Trust {
            origin: origin_s,
            status,
        },
        problem,
    )
}

fn ago(finished: u64) -> String {
    let s = crate::machine::now().saturating_sub(finished);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

pub fn run(common: &Common, printer: &Printer) -> Result<()> {
    let mut problems = Vec::new();
    let cache = crate::dirs::cache_root().ok();
    let data = crate::dirs::data_home().ok().map(|d| d.join("kasetto"));
    let mut report = Report {
        schema: 1,
        command: "doctor",
        ok: true,
        version: env!("CARGO_PKG_VERSION"),
        scope: None,
        config: None,
        lock: None,
        cache: cache.as_ref().map(|c| c.display().to_string()),
        data: data.as_ref().map(|d| d.display().to_string()),
        trust: None,
        last_sync: None,
        skills: Vec::new(),
        servers: Vec::new(),
        files: Vec::new(),
        orphaned_blocks: Vec::new(),
        untracked: Vec::new(),
        stale: Vec::new(),
        problems: Vec::new(),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
    match crate::config::discover(common.config.as_deref(), &cwd) {
        Err(e) => problems.push(Problem {
            problem: e.to_string(),
            fix: "kst init   (or pass --config PATH)".to_string(),
        }),
        Ok((path, origin)) => {
            report.config = Some(path.display().to_string());
            let (trust, problem) = trust_state(common, &path, origin);
            report.trust = Some(trust);
            problems.extend(problem);
            match Workspace::load(common, crate::trust::Access::Reads { network: false }) {
                Err(e) => problems.push(Problem {
                    problem: e.to_string(),
                    fix: "fix the file named above (a malformed lock can be deleted: `kst lock` \
                          writes it again)"
                        .to_string(),
                }),
                Ok(ctx) => check_workspace(&ctx, &mut report, &mut problems)?,
            }
        }
    }
    report.ok = problems.is_empty();
    report.problems = problems;
    if printer.json {
        printer.json(&report);
    } else {
        print_human(printer, &report);
    }
    if report.ok {
        Ok(())
    } else {
        Err(Error::Reported(Outcome::Problems))
    }
}

fn check_workspace(
    ctx: &Workspace,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    report.scope = Some(ctx.scope.name());
    report.lock = Some(ctx.scope.lock_path.display().to_string());
    // SPEC 17: a Kasetto lock waits for the one sync that takes it over.
    if let Some(k) = &ctx.kasetto {
        problems.push(Problem {
            problem: format!(
                "{} is a Kasetto lock, not taken over yet ({} skills and {} MCP servers would be, {} items are modified locally)",
                k.path.display(),
                k.skills.len(),
                k.servers.len(),
                k.modified_skills.len() + k.modified_servers.len()
            ),
            fix: "kst sync   (once: it takes over the Kasetto lock and keeps it as kasetto.lock.kasetto-backup; docs/migrating.md)".to_string(),
        });
    }
    let scope_flag = match ctx.scope.scope {
        Scope::Global => "--global",
        Scope::Project => "--project",
    };
    // After the take-over: command and rule files Kasetto wrote that kst left alone (SPEC 17).
    if ctx.kasetto.is_none() {
        let mut backup = ctx.scope.lock_path.as_os_str().to_owned();
        backup.push(crate::migrate::BACKUP_SUFFIX);
        let backup = PathBuf::from(backup);
        for rel in crate::migrate::leftover_files(&backup, &ctx.scope, &ctx.old_lock) {
            problems.push(Problem {
                problem: format!(
                    "{} was written by Kasetto ({} lists it) and kst does not manage it: it changed since, or kst could not check it",
                    crate::escape::escape_line(&rel),
                    backup.display()
                ),
                fix: "delete it if you no longer want it (kst never removes a file Kasetto wrote unless it is exactly what Kasetto wrote); delete the backup once you have decided".to_string(),
            });
        }
    }
    report.last_sync = crate::machine::last_sync(&ctx.scope.lock_path);
    if let Some(last) = &report.last_sync
        && !last.ok
    {
        problems.push(Problem {
            problem: format!(
                "the last `kst {}` ({}) had broken items or failed sources",
                last.command,
                ago(last.finished)
            ),
            fix: format!("kst sync {scope_flag}   (it says what fails and why)"),
        });
    }
    // What `kst verify` checks, offline.
    let skills: Vec<_> = crate::commands::verify::check_installed(ctx)
        .into_iter()
        .filter(|c| c.status != "ok")
        .collect();
    for c in &skills {
        problems.push(Problem {
            problem: format!(
                "skill {} at {} is {}",
                crate::escape::escape_line(&c.name),
                crate::escape::escape_line(&c.path),
                c.status
            ),
            fix: format!("kst sync {scope_flag}   (`kst verify` names the files)"),
        });
    }
    let servers: Vec<_> = crate::commands::verify::check_servers(ctx)?
        .into_iter()
        .filter(|c| c.status != "ok")
        .collect();
    for c in &servers {
        problems.push(Problem {
            problem: format!(
                "MCP server {} in {} is {}",
                crate::escape::escape_line(&c.name),
                crate::escape::escape_line(&c.path),
                c.status
            ),
            fix: if c.status == "modified" {
                format!(
                    "delete the entry, then kst sync {scope_flag}   (kst does not overwrite an edited entry)"
                )
            } else {
                format!("kst sync {scope_flag}")
            },
        });
    }
    let files: Vec<_> = crate::commands::verify::check_files(ctx)?
        .into_iter()
        .filter(|c| c.status != "ok")
        .collect();
    for c in &files {
        problems.push(Problem {
            problem: format!(
                "{} {} at {} is {}",
                c.kind.noun(),
                crate::escape::escape_line(&c.name),
                crate::escape::escape_line(&c.path),
                c.status
            ),
            fix: if c.block && c.status == "modified" {
                format!(
                    "delete the block, then kst sync {scope_flag}   (kst does not overwrite an edited block)"
                )
            } else {
                format!("kst sync {scope_flag}")
            },
        });
    }
    let orphaned = orphaned_blocks(ctx)?;
    for key in &orphaned {
        problems.push(Problem {
            problem: format!(
                "{} is an instruction block no lock of this scope tracks (left by another tool, an older lock, or a removed entry that was edited)",
                crate::escape::escape_line(key)
            ),
            fix: "delete the block by hand, or add its instruction back to `instructions:` and kst sync".into(),
        });
    }
    report.skills = skills;
    report.servers = servers;
    report.files = files;
    report.orphaned_blocks = orphaned;
    let (untracked, stale) = scan_folders(ctx);
    for s in &stale {
        problems.push(Problem {
            problem: format!(
                "{} was left by an interrupted run",
                crate::escape::escape_line(s)
            ),
            fix: format!("kst sync {scope_flag}   (it removes what interrupted runs left)"),
        });
    }
    report.untracked = untracked;
    report.stale = stale;
    Ok(())
}

/// Instruction blocks in this scope's shared files (every agent's, not only the configured
/// ones) that the lock does not list. A file kst cannot read or whose markers do not pair up is
/// skipped here (`kst sync` reports it).
fn orphaned_blocks(ctx: &Workspace) -> Result<Vec<String>> {
    let home = crate::dirs::home()?;
    let global = ctx.scope.scope == Scope::Global;
    let known = crate::files::known(
        crate::item::Kind::Instruction,
        global,
        &home,
        &ctx.scope.root,
    );
    let confine = (!global).then(|| crate::shared_file::real_path(&ctx.scope.root));
    let tracked: BTreeSet<&String> = ctx
        .old_lock
        .instructions
        .iter()
        .flat_map(|s| &s.items)
        .flat_map(|i| i.installed.keys())
        .collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for rel in &known.shared {
        if !seen.insert(rel) {
            continue;
        }
        let t = crate::files::target_at(PathBuf::from(rel), &ctx.scope.root);
        if crate::shared_file::check_confined(&t.abs, confine.as_deref()).is_err() {
            continue;
        }
        let Ok(bytes) = crate::fsx::read_input_bytes(&t.abs, crate::fsx::SETTINGS_CAP, None) else {
            continue;
        };
        let Ok(blocks) = crate::instructions::blocks(&bytes) else {
            continue;
        };
        for b in blocks {
            let key = crate::files::block_key(rel, &b.id);
            if !tracked.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

fn print_human(printer: &Printer, r: &Report) {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    printer.line(&format!("kst {}", r.version));
    printer.line(&format!(
        "config:  {}{}",
        or_none(&r.config),
        r.trust
            .as_ref()
            .map(|t| format!(
                " (found by {}, {})",
                t.origin.replace('_', " "),
                t.status.replace('_', " ")
            ))
            .unwrap_or_default()
    ));
    printer.line(&format!(
        "lock:    {}{}",
        or_none(&r.lock),
        r.scope.map(|s| format!(" ({s} scope)")).unwrap_or_default()
    ));
    printer.line(&format!("cache:   {}", or_none(&r.cache)));
    printer.line(&format!("data:    {}", or_none(&r.data)));
    match &r.last_sync {
        None => printer.line("last sync: none recorded for this lock"),
        Some(l) => {
            let n = |k: &str| l.summary[k].as_u64().unwrap_or(0);
            printer.line(&format!(
                "last sync: `kst {}` {}, {}: {} added, {} updated, {} repaired, {} removed, {} broken, {} failed sources",
                l.command,
                ago(l.finished),
                if l.ok { "ok" } else { "with problems" },
                n("added"),
                n("updated"),
                n("repaired"),
                n("removed"),
                n("broken"),
                n("failed_sources"),
            ));
        }
    }
    for u in &r.untracked {
        printer.line(&format!(
            "note: {u} is not tracked by the lock (kst leaves it alone)"
        ));
    }
    for p in &r.problems {
        printer.error(&p.problem);
        printer.line(&format!("  fix: {}", p.fix));
    }
    if r.problems.is_empty() {
        printer.line("No problems found.");
    } else {
        printer.error(&format!(
            "{} problem{} found",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        ));
    }
}
