//! `kst fetch`: put every locked commit into the cache (for CI caches and air-gapped machines);
//! install nothing.

use crate::error::{Error, Outcome, Result};
use crate::git::FetchMode;
use crate::mcp::McpSourceKind;
use crate::pipeline::{self, LockedGit};
use crate::plan;
use crate::report::Printer;
use crate::source::Source;
use crate::workspace::{Common, Workspace};

/// `kst fetch`: put every locked commit into the cache; install nothing.
pub fn run(common: &Common, printer: &Printer) -> Result<()> {
    let ctx = Workspace::load(common, crate::trust::Access::Writes)?;
    if let Some(k) = &ctx.kasetto {
        return Err(k.refused("kst fetch"));
    }
    let mode = if common.offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let cache = ctx.cache()?;
    // Locked git entries of every kind; the config supplies the URL to fetch from (it may
    // carry an ssh user name).
    let mut jobs: Vec<LockedGit> = Vec::new();
    for e in &ctx.config.skills {
        if let Source::Git(url) = &e.source {
            jobs.push(LockedGit {
                at: &e.at,
                kind: "",
                url,
                locked: plan::find_locked(&ctx.old_lock, e).map(|l| l as _),
            });
        }
    }
    for e in &ctx.config.mcps {
        if let McpSourceKind::Pack {
            source: Source::Git(url),
            ..
        } = &e.kind
        {
            jobs.push(LockedGit {
                at: &e.at,
                kind: "MCP ",
                url,
                locked: crate::mcp::resolve::find_locked(&ctx.old_lock, e).map(|l| l as _),
            });
        }
    }
    let lock = &ctx.old_lock;
    for (entries, section) in [
        (&ctx.config.commands, &lock.commands),
        (&ctx.config.instructions, &lock.instructions),
    ] {
        for e in entries {
            if let Source::Git(url) = &e.source {
                jobs.push(LockedGit {
                    at: &e.at,
                    kind: "",
                    url,
                    locked: crate::lock::find_entry(section, &e.id()).map(|l| l as _),
                });
            }
        }
    }
    let outcomes = pipeline::fetch_locked(&jobs, cache, mode);
    let mut problems = 0;
    let mut rows = Vec::new();
    let total = outcomes.len();
    for (url, r) in outcomes {
        match r {
            Ok((fetched, commit)) => {
                let state = if fetched { "fetched" } else { "cached" };
                printer.line(&format!(
                    "{} {}@{} ({state})",
                    if fetched { "+" } else { "=" },
                    url,
                    &commit[..7]
                ));
                rows.push(serde_json::json!({"url": url, "commit": commit, "fetch": state}));
            }
            Err(e) => {
                problems += 1;
                printer.error(&e);
                rows.push(serde_json::json!({"url": url, "error": e}));
            }
        }
    }
    if printer.json {
        printer.json(&serde_json::json!({"schema": 1, "command": "fetch", "sources": rows}));
    } else {
        printer.line(&format!(
            "{} of {} locked sources are in the cache {}",
            total - problems,
            total,
            cache.root().display()
        ));
    }
    if problems > 0 {
        Err(Error::Reported(Outcome::Problems))
    } else {
        Ok(())
    }
}
