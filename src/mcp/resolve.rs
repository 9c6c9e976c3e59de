//! From an `mcps:` entry to pack files: pinned like skills for git sources (the locked commit
//! until `--update`), re-read on every sync for local folders and inline packs.

use git2::Oid;

use crate::discover::DiskPack;
use crate::git::{Cache, FetchMode};
use crate::lock::{Lock, LockedMcpSource, Requested};
use crate::mcp::config::{McpSource, McpSourceKind, PackSelection};
use crate::mcp::pack::{self, PackFile, Selected, Server};
use crate::pin::Fetch;
use crate::source::Source;

/// The pack file name recorded for an inline pack.
pub const INLINE_FILE: &str = "inline";

#[derive(Debug)]
pub struct ResolvedMcp {
    pub entry: McpSource,
    pub url: String,
    pub requested: Requested,
    pub commit: Option<Oid>,
    pub fetch: Fetch,
    pub selected: Selected,
    /// The fingerprint of the key that signed the pin (`trust:`, SPEC 16).
    pub signer: Option<String>,
}

/// An entry that could not be resolved at all; what it installed before is kept.
#[derive(Debug)]
pub struct FailedMcp {
    pub entry: McpSource,
    pub url: String,
    pub requested: Requested,
    pub error: String,
}

/// The request an entry makes, before resolution (an inline pack is `local`).
pub fn requested_of(entry: &McpSource) -> Requested {
    match &entry.kind {
        McpSourceKind::Inline { .. } => Requested::Local,
        McpSourceKind::Pack {
            source, reference, ..
        } => Requested::of(source, reference),
    }
}

/// The lock entry of a config entry: same URL, same request, same sub-dir.
pub fn find_locked<'a>(lock: &'a Lock, entry: &McpSource) -> Option<&'a LockedMcpSource> {
    crate::lock::find_entry(&lock.mcps, &entry.id())
}

/// Does `--update [NAME…]` apply to this entry? Names match server names it provides and pack
/// names it picks.
pub fn wants_update(
    update: &Option<Vec<String>>,
    entry: &McpSource,
    locked: Option<&LockedMcpSource>,
) -> bool {
    let servers = locked
        .into_iter()
        .flat_map(|l| l.packs.iter().flat_map(|p| p.servers.keys()));
    let packs = match &entry.kind {
        McpSourceKind::Pack {
            selection: PackSelection::Named(p),
            ..
        } => p.as_slice(),
        _ => &[],
    };
    crate::lock::update_moves(
        update,
        servers
            .map(String::as_str)
            .chain(packs.iter().map(|p| p.name.as_str())),
    )
}

/// Resolve every entry, in config order (the order decides which pack wins a server name).
/// Git entries are resolved concurrently.
#[allow(clippy::result_large_err)]
pub fn resolve_all(
    entries: &[McpSource],
    old: &Lock,
    update: &Option<Vec<String>>,
    offline: bool,
    within: Option<&std::path::Path>,
) -> Vec<Result<ResolvedMcp, FailedMcp>> {
    let needs_cache = entries.iter().any(|e| {
        matches!(
            e.kind,
            McpSourceKind::Pack {
                source: Source::Git(_),
                ..
            }
        )
    });
    // Git entries' resolvers open cache repositories on their threads: libgit2 first, here.
    if needs_cache {
        crate::git::setup::init();
    }
    let cache = if needs_cache {
        match Cache::open() {
            Ok(c) => Some(c),
            Err(e) => {
                return entries
                    .iter()
                    .map(|entry| {
                        Err(FailedMcp {
                            entry: entry.clone(),
                            url: entry.url(),
                            requested: requested_of(entry),
                            error: format!("{}: cannot open the cache: {e:#}", entry.at),
                        })
                    })
                    .collect();
            }
        }
    } else {
        None
    };
    let mode = if offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    crate::threads::each(entries, "an MCP resolver", |entry| {
        let locked = find_locked(old, entry);
        let update = wants_update(update, entry, locked);
        resolve_one(entry, locked, update, cache.as_ref(), mode, within)
    })
}

#[allow(clippy::result_large_err)]
fn resolve_one(
    entry: &McpSource,
    locked: Option<&LockedMcpSource>,
    update: bool,
    cache: Option<&Cache>,
    mode: FetchMode,
    within: Option<&std::path::Path>,
) -> Result<ResolvedMcp, FailedMcp> {
    let fail = |error: String| FailedMcp {
        entry: entry.clone(),
        url: entry.url(),
        requested: requested_of(entry),
        error: format!("{}: {}: {error}", entry.at, entry.url()),
    };
    let done = |requested, commit, fetch, selected| ResolvedMcp {
        entry: entry.clone(),
        url: entry.url(),
        requested,
        commit,
        fetch,
        selected,
        signer: None,
    };
    match &entry.kind {
        McpSourceKind::Inline { servers, .. } => Ok(done(
            Requested::Local,
            None,
            Fetch::Local,
            Selected {
                packs: vec![PackFile {
                    file: INLINE_FILE.into(),
                    servers: servers
                        .iter()
                        .map(|(name, def)| Server {
                            name: name.clone(),
                            def: def.clone(),
                        })
                        .collect(),
                }],
                ..Default::default()
            },
        )),
        McpSourceKind::Pack {
            source: Source::Local { path, .. },
            sub_dir,
            selection,
            ..
        } => {
            let (view, root) = DiskPack::open(path, sub_dir.as_deref(), within).map_err(fail)?;
            Ok(done(
                Requested::Local,
                None,
                Fetch::Local,
                pack::select(&view, &root, selection),
            ))
        }
        McpSourceKind::Pack {
            source: Source::Git(url),
            reference,
            sub_dir,
            selection,
        } => {
            let cache = cache.expect("the cache is opened for git entries");
            let entry = crate::pin::GitEntry {
                url,
                reference,
                sub_dir: sub_dir.as_deref(),
                locked: locked.map(|l| l as _),
                update,
                trust: entry.trust.as_ref(),
            };
            let read = |r: crate::pin::Reading| Ok(pack::select(r.pack, r.root, selection));
            let (pin, mut selected, repaired) =
                crate::pin::git(&entry, cache, mode, &mut |_, _, _| {}, |_, _, _| None, read)
                    .map_err(|e| fail(format!("{e:#}")))?;
            selected.warnings.splice(0..0, repaired);
            Ok(ResolvedMcp {
                signer: pin.signer.clone(),
                ..done(pin.requested, Some(pin.commit), pin.fetch, selected)
            })
        }
    }
}
