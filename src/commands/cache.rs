//! `kst cache dir|prune|clear` (SPEC 2, 5): show, garbage-collect and empty the cache.
//!
//! `prune` keeps every repository a lock on this machine references — the locks kst has
//! written, remembered in the data folder ([`crate::machine`]); a lock that no longer exists no
//! longer counts — and drops the rest, with the repositories moved aside as damaged. What
//! stays is repacked into one pack with the git CLI when there is one (libgit2 has no gc);
//! nothing reachable or not is dropped from a kept repository. `clear` empties the cache.
//! Both hold the cache lock exclusively ([`Cache::open_exclusive`]): a sync running meanwhile
//! is waited for, never broken.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Cache;
use crate::lock::Lock;
use crate::report::Printer;
use crate::source::Source;
use crate::workspace::Common;

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Print the cache folder
    Dir,
    /// Drop cached repositories no lock on this machine references, then repack the rest
    Prune,
    /// Remove everything in the cache (asks first on a terminal)
    Clear {
        /// Do not ask
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub fn run(common: &Common, args: CacheArgs, printer: &Printer) -> Result<()> {
    match args.action {
        CacheAction::Dir => dir(printer),
        CacheAction::Prune => prune(common, printer),
        CacheAction::Clear { yes } => clear(common, yes, printer),
    }
}

fn dir(printer: &Printer) -> Result<()> {
    let root = crate::dirs::cache_root()?;
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1, "command": "cache dir", "path": root.display().to_string(),
            "exists": root.is_dir(),
        }));
    } else {
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            crate::printer::clean(&root.display().to_string())
        );
    }
    Ok(())
}

/// The git URLs a lock pins (skill, MCP, command and instruction sources with a commit). The one walk over the lock.
fn pinned_urls(lock: &Lock) -> Vec<&str> {
    let skills = lock
        .sources
        .iter()
        .filter(|s| s.commit.is_some())
        .map(|s| s.url.as_str());
    let mcps = lock
        .mcps
        .iter()
        .filter(|s| s.commit.is_some())
        .map(|s| s.url.as_str());
    let files = lock
        .commands
        .iter()
        .chain(&lock.instructions)
        .filter(|s| s.commit.is_some())
        .map(|s| s.url.as_str());
    skills.chain(mcps).chain(files).collect()
}

/// The cache repositories the known locks reference. A known lock that cannot be read stops
/// the prune: what it references cannot be known.
fn referenced(cache: &Cache, locks: &[PathBuf]) -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for path in locks {
        let lock = Lock::read(path).map_err(|e| {
            Error::usage(format!(
                "{e}\n  `kst cache prune` cannot tell which repositories this lock needs, so it \
                 removed nothing; fix the lock (or delete it) and run it again"
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for url in pinned_urls(&lock) {
            if let Ok(Source::Git(g)) = crate::source::parse(url, base) {
                out.insert(cache.database(g.canonical()).path);
            }
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct JsonPrune {
    schema: u32,
    command: &'static str,
    dry_run: bool,
    cache: String,
    /// The locks whose references were kept.
    locks: Vec<String>,
    kept: Vec<String>,
    removed: Vec<String>,
    /// Whether the kept repositories were repacked (false: dry run, none kept, or no `git`).
    repacked: bool,
    notes: Vec<String>,
}

fn prune(common: &Common, printer: &Printer) -> Result<()> {
    let cache = Cache::open_exclusive(|m| printer.line(m)).map_err(Error::Failed)?;
    if !common.dry_run {
        // Forgetting locks that are gone is bookkeeping: a failure is only logged.
        if let Err(e) = crate::machine::forget_missing_locks() {
            tracing::warn!("cannot tidy kst's list of locks: {e:#}");
        }
        // Run memos (`runmemo.rs`) of folders and flags long gone would pile up: each is
        // recorded again by the next no-op sync of its own.
        let runs = cache.root().join("runs");
        if runs.is_dir()
            && let Err(e) = crate::fsx::remove_any(&runs)
        {
            tracing::warn!("cannot remove the run memos in {}: {e:#}", runs.display());
        }
    }
    let locks = crate::machine::known_locks();
    let keep = referenced(&cache, &locks)?;
    let db_dir = cache.root().join("git").join("db");
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    let mut notes = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&db_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in &entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let is_lock_file = name.ends_with(".lock");
        let owner = if is_lock_file {
            PathBuf::from(path.to_string_lossy().trim_end_matches(".lock"))
        } else {
            path.clone()
        };
        if keep.contains(&owner) {
            if !is_lock_file {
                kept.push(path.clone());
            }
            continue;
        }
        // A repository's own lock file goes with it; nobody holds it while we hold the cache.
        if is_lock_file && entries.contains(&owner) {
            if !common.dry_run {
                let _ = std::fs::remove_file(path);
            }
            continue;
        }
        if !common.dry_run {
            crate::fsx::remove_any(path).map_err(|e| {
                Error::Failed(e.context(format!("cannot remove {}", path.display())))
            })?;
        }
        removed.push(path.clone());
    }
    let mut repacked = false;
    if !common.dry_run && !kept.is_empty() {
        match repack_all(&kept) {
            Ok(()) => repacked = true,
            Err(note) => notes.push(note),
        }
    }
    let shown =
        |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| p.display().to_string()).collect() };
    if printer.json {
        printer.json(&JsonPrune {
            schema: 1,
            command: "cache prune",
            dry_run: common.dry_run,
            cache: cache.root().display().to_string(),
            locks: shown(&locks),
            kept: shown(&kept),
            removed: shown(&removed),
            repacked,
            notes,
        });
        return Ok(());
    }
    for p in &removed {
        printer.line(&format!("- {}", p.display()));
    }
    for n in &notes {
        printer.warn(n);
    }
    printer.line(&format!(
        "{}: {} {} removed, {} kept for {} lock{}{}",
        if common.dry_run {
            "Would prune"
        } else {
            "Pruned"
        },
        removed.len(),
        if removed.len() == 1 {
            "repository"
        } else {
            "repositories"
        },
        kept.len(),
        locks.len(),
        if locks.len() == 1 { "" } else { "s" },
        if repacked { " (repacked)" } else { "" },
    ));
    Ok(())
}

/// Repack each kept repository into one pack, dropping nothing (`--keep-unreachable`), with the
/// git CLI isolated from the user's git settings. `Err`: a note for the user (no `git`, or a
/// repack that failed — the repository is left as it was).
fn repack_all(repos: &[PathBuf]) -> std::result::Result<(), String> {
    for repo in repos {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo)
            .args([
                "-c",
                "gc.auto=0",
                "repack",
                "-a",
                "-d",
                "-q",
                "--keep-unreachable",
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(
                    "the git CLI is not installed: kept repositories were not repacked \
                     (libgit2 cannot repack; nothing is lost, they are only larger)"
                        .to_string(),
                );
            }
            Err(e) => return Err(format!("cannot run git to repack: {e}")),
            Ok(o) if !o.status.success() => {
                return Err(format!(
                    "git repack failed in {}: {}",
                    repo.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn clear(common: &Common, yes: bool, printer: &Printer) -> Result<()> {
    let root = crate::dirs::cache_root()?;
    if !yes && !common.dry_run {
        if !common.interactive {
            return Err(Error::usage(format!(
                "`kst cache clear` removes everything in {}; without a terminal to ask on, pass \
                 --yes to confirm",
                root.display()
            )));
        }
        if !ask(&format!(
            "Remove everything in the cache {}? Every repository will be fetched again. [y/N] ",
            root.display()
        ))? {
            printer.line("Nothing removed.");
            return Ok(());
        }
    }
    let cache = Cache::open_exclusive(|m| printer.line(m)).map_err(Error::Failed)?;
    // The lock files stay: other runs may be waiting on them. CACHEDIR.TAG marks the folder.
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(cache.root())
        .map_err(|e| Error::Failed(anyhow!("cannot read {}: {e}", cache.root().display())))?
        .flatten()
    {
        let name = entry.file_name();
        if name == "locks" || name == "CACHEDIR.TAG" {
            continue;
        }
        if !common.dry_run {
            crate::fsx::remove_any(&entry.path()).map_err(|e| {
                Error::Failed(e.context(format!("cannot remove {}", entry.path().display())))
            })?;
        }
        removed.push(entry.path().display().to_string());
    }
    removed.sort();
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1, "command": "cache clear", "dry_run": common.dry_run,
            "cache": cache.root().display().to_string(), "removed": removed,
        }));
    } else {
        printer.line(&format!(
            "{} {}",
            if common.dry_run {
                "Would clear"
            } else {
                "Cleared"
            },
            cache.root().display()
        ));
    }
    Ok(())
}

/// Ask a yes/no question on the terminal (stderr, answer on stdin); no is the default.
fn ask(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{}", crate::printer::clean(question));
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Failed(e.into()))?;
    let a = answer.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}
