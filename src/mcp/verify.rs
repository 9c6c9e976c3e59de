//! `kst verify` for MCP server entries (SPEC 2, 6): is each entry the lock records still the
//! one kst wrote? The same ownership test a sync uses (`mcp::plan::written_by_us`), applied
//! to the lock alone: offline, read-only, the config and the packs are not consulted.
//!
//! What this module must never do: write a settings file, read one the lock names but no agent
//! uses (a hostile lock must not make kst read `~/.ssh/…` into a message), or show an entry's
//! value (it may hold a secret); a check says only the server, the file and the status.

use std::path::Path;

use serde::Serialize;

use crate::lock::Lock;
use crate::mcp::plan::{known_target, load, written_by_us};

/// One server entry in one settings file, as found on disk.
#[derive(Debug, Serialize)]
pub struct ServerCheck {
    pub name: String,
    /// The lock's source URL (`inline:<name>` for an inline pack).
    pub source: String,
    /// The settings file, relative to the scope root.
    pub path: String,
    /// `ok`, `modified` (not what kst wrote), `missing`, `unverifiable` (the definition kst
    /// wrote it from is not in this machine's cache), or `error` (the file cannot be read).
    pub status: &'static str,
    /// The locked hash of the definition (placeholder form).
    pub hash: String,
    pub error: Option<String>,
}

/// Where this scope's settings files are.
pub struct Place<'a> {
    pub global: bool,
    pub home: &'a Path,
    pub root: &'a Path,
    pub cache_root: Option<&'a Path>,
    /// In the project scope: no settings file is read through a symlink leading out of it.
    pub confine: Option<&'a Path>,
}

/// Every server entry of the lock, checked.
pub fn check(lock: &Lock, at: &Place) -> Vec<ServerCheck> {
    let mut out = Vec::new();
    for s in &lock.mcps {
        for p in &s.packs {
            for (name, rec) in &p.servers {
                for rel in &rec.targets {
                    let mut c = ServerCheck {
                        name: name.clone(),
                        source: s.url.clone(),
                        path: rel.clone(),
                        status: "ok",
                        hash: rec.hash.clone(),
                        error: None,
                    };
                    let Some(t) = known_target(rel, at.global, at.home, at.root) else {
                        c.status = "error";
                        c.error = Some(
                            "the lock names a file that is no agent's settings file; it was not read"
                                .into(),
                        );
                        out.push(c);
                        continue;
                    };
                    match load(&t, at.confine) {
                        Err(e) => {
                            c.status = "error";
                            c.error = Some(format!("{}: {e}", t.target.abs.display()));
                        }
                        Ok(sf) => match sf.get(name) {
                            None => c.status = "missing",
                            Some(d) => {
                                match written_by_us(&d, &rec.hash, t.format, at.cache_root) {
                                    Some(true) => {}
                                    Some(false) => c.status = "modified",
                                    None => {
                                        c.status = "unverifiable";
                                        c.error = Some(
                                        "the definition kst wrote it from is not in this machine's cache, so kst cannot tell whether it was changed; `kst sync` records it again".into(),
                                    );
                                    }
                                }
                            }
                        },
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}
