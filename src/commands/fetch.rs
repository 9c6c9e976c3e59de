//! `kst fetch`: put every locked commit into the cache (for CI caches and air-gapped machines);
//! install nothing.

use crate::error::{Error, Outcome, Result};
use crate::git::FetchMode;
use crate::plan;
use crate::report::Printer;
use crate::source::Source;
use crate::workspace::{Common, Workspace};

/// One fetched source: its canonical URL, and whether it was downloaded (with the commit) or
/// why not.
type FetchOutcome = (String, std::result::Result<(bool, String), String>);

/// `kst fetch`: put every locked commit into the cache; install nothing.
pub fn run(common: &Common, printer: &Printer) -> Result<()> {
    let ctx = Workspace::load(common, crate::trust::Access::Writes)?;
    let mode = if common.offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let cache = ctx.cache()?;
    // Locked git entries; the config supplies the URL to fetch from (it may carry an ssh user).
    let jobs: Vec<_> = ctx
        .config
        .skills
        .iter()
        .filter_map(|e| match &e.source {
            Source::Git(url) => Some((e, url, plan::find_locked(&ctx.old_lock, e))),
            Source::Local { .. } => None,
        })
        .collect();
    let results: Vec<std::result::Result<(bool, String), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(entry, url, locked)| {
                s.spawn(move || {
                    let Some(l) = locked else {
                        return Err(format!(
                            "{}: {} is not in the lock; run `kst lock` first",
                            entry.at,
                            url.canonical()
                        ));
                    };
                    let commit = l
                        .commit
                        .as_deref()
                        .and_then(|c| git2::Oid::from_str(c).ok())
                        .ok_or_else(|| {
                            format!(
                                "{}: the lock has no valid commit for {}",
                                entry.at,
                                url.canonical()
                            )
                        })?;
                    let db = cache.database(url.canonical());
                    let _held = db.lock().map_err(|e| format!("{e:#}"))?;
                    let repo = db.open_or_init().map_err(|e| format!("{e:#}"))?;
                    let want = crate::git::Want::Locked {
                        commit,
                        requested: l.requested.clone(),
                    };
                    let r = crate::git::resolve(&repo, url, &want, mode, &mut |_, _, _| {})
                        .map_err(|e| format!("{}: {}: {e:#}", entry.at, url.canonical()))?;
                    Ok((r.fetched, commit.to_string()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fetch thread panicked"))
            .collect()
    });
    let mut problems = 0;
    let mut rows = Vec::new();
    let mut outcomes: Vec<FetchOutcome> = jobs
        .iter()
        .zip(results)
        .map(|(&(_, url, _), r)| (url.canonical().to_string(), r))
        .collect();
    outcomes.extend(crate::mcp::resolve::fetch_locked(
        &ctx.config.mcps,
        &ctx.old_lock,
        cache,
        mode,
    ));
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
