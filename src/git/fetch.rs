//! Resolving a requested reference to a commit, fetching as little as possible (SPEC 5).
//!
//! The decision is explicit, as in cargo: [`Want::Locked`] is a commit we already know (from
//! the lock) — if it is in the cache nothing touches the network; otherwise exactly that commit
//! is fetched. [`Want::Deferred`] is a moving or unresolved reference — a branch or the default
//! HEAD is always asked of the remote; a tag or a full SHA already in the cache is reused.
//!
//! Refspecs are narrow: a branch fetches only that branch, a tag only that tag, a SHA only that
//! commit (`+<sha>:refs/commit/<sha>`), the default only `HEAD`. Network fetches are shallow
//! (depth 1); libgit2's local transport cannot do shallow fetches, so `file://` fetches in full.

use anyhow::{Context, Result, anyhow, bail};
use git2::{AutotagOption, Direction, FetchOptions, ObjectType, Oid, RemoteCallbacks, Repository};

use crate::request::Reference;
use std::cell::{Cell, RefCell};

use crate::credentials::Auth;
use crate::envvars;
use crate::request::Requested;
use crate::source::GitUrl;

/// What to resolve.
#[derive(Debug, Clone)]
pub enum Want {
    /// A commit pinned in the lock; `requested` says which ref to fall back to if the server
    /// will not send a commit by id.
    Locked { commit: Oid, requested: Requested },
    /// A reference to resolve now.
    Deferred(Reference),
}

/// May we use the network?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    Online,
    /// `--offline`: a missing commit is an error.
    Offline,
}

/// A reference resolved to a commit.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub commit: Oid,
    pub requested: Requested,
    /// True when the network was used.
    pub fetched: bool,
}

/// Called with (received objects, total objects, received bytes) during a fetch.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, usize);

/// Limits on one fetch (SPEC 13.7), overridable by env. The transfer is stopped from libgit2's
/// progress callback as soon as the server has sent more bytes, or announced more objects, than
/// this — before the pack is indexed, so before any delta is inflated. The size an object may
/// inflate to is bounded separately, inside libgit2 ([`super::setup::init`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchCaps {
    pub max_bytes: u64,
    pub max_objects: u64,
}

impl FetchCaps {
    /// 1 GiB received and 1,000,000 objects per fetch by default: a shallow fetch of a
    /// 10,000-skill monorepo is about 120,000 objects.
    pub const DEFAULT_BYTES: u64 = 1 << 30;
    pub const DEFAULT_OBJECTS: u64 = 1_000_000;

    pub fn from_env() -> FetchCaps {
        let get = |name, default| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        FetchCaps {
            max_bytes: get(envvars::KASETTO_MAX_FETCH_BYTES, Self::DEFAULT_BYTES),
            max_objects: get(envvars::KASETTO_MAX_FETCH_OBJECTS, Self::DEFAULT_OBJECTS),
        }
    }
}

/// Which limit stopped a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapKind {
    /// More bytes received than [`FetchCaps::max_bytes`].
    Bytes(u64),
    /// More objects announced than [`FetchCaps::max_objects`].
    Objects(u64),
    /// An object that would inflate past the file cap (libgit2's pack object size limit).
    ObjectSize(u64),
}

/// A fetch stopped by one of its caps. Not damage to the cache: nothing is moved aside, and no
/// other way of fetching the same thing is tried.
#[derive(Debug, thiserror::Error)]
#[error("fetch from {url} stopped: {}", describe(*.cap))]
pub struct FetchCapExceeded {
    pub url: String,
    pub cap: CapKind,
}

fn describe(cap: CapKind) -> String {
    match cap {
        CapKind::Bytes(n) => format!(
            "the server sent more than {n} bytes, over the fetch cap (raise {} to allow it)",
            envvars::KASETTO_MAX_FETCH_BYTES
        ),
        CapKind::Objects(n) => format!(
            "the pack holds more than {n} objects, over the fetch cap (raise {} to allow it)",
            envvars::KASETTO_MAX_FETCH_OBJECTS
        ),
        CapKind::ObjectSize(n) => format!(
            "an object in the pack inflates to more than {n} bytes, over the file cap \
             (a delta bomb, or a file too large to install; raise {} to allow it)",
            envvars::KASETTO_MAX_FILE_BYTES
        ),
    }
}

/// Did libgit2 stop on the limits [`super::setup::init`] gave it? Its messages are fixed
/// strings of libgit2's (delta.c, indexer.c).
fn libgit2_cap(e: &git2::Error) -> Option<CapKind> {
    let limits = super::setup::pack_limits();
    match e.class() {
        git2::ErrorClass::Invalid if e.message().contains("overly large object") => {
            Some(CapKind::ObjectSize(limits.max_object_size))
        }
        git2::ErrorClass::Indexer if e.message().contains("too many objects") => {
            Some(CapKind::Objects(limits.max_objects))
        }
        _ => None,
    }
}

/// Is this error a fetch stopped by a cap?
pub fn is_cap(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<FetchCapExceeded>().is_some())
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_abbrev_sha(s: &str) -> bool {
    (4..40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit a ref in the cache points to, peeling tags.
fn cached_ref(repo: &Repository, name: &str) -> Option<Oid> {
    repo.find_reference(name)
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

fn has_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok()
}

/// The cache repository holds an object it cannot read: it must be re-fetched from scratch.
#[derive(Debug, thiserror::Error)]
#[error("the cache repository is corrupt: {0}")]
pub struct Corrupt(pub String);

/// An object that exists but does not parse means a damaged cache, not a missing commit. An
/// object that reads fine but is not a commit (a lock naming a tree or blob id) is a wrong
/// lock, not damage.
fn check_not_corrupt(repo: &Repository, oid: Oid) -> Result<()> {
    let Ok(odb) = repo.odb() else {
        return Ok(());
    };
    if !odb.exists(oid) {
        return Ok(());
    }
    if let Ok((_, kind)) = odb.read_header(oid)
        && kind != ObjectType::Commit
        // Read in full, so its content is checked against its id: a damaged commit whose
        // header now says "blob" is damage, not a wrong lock.
        && odb.read(oid).is_ok()
    {
        bail!("{oid} is a {kind}, not a commit; fix the lock (or run `kst sync --update`)");
    }
    if let Err(e) = repo.find_commit(oid) {
        return Err(Corrupt(format!("commit {oid} cannot be read ({})", e.message())).into());
    }
    Ok(())
}

/// Resolve `want` against the remote `url`, using the cache repository `repo`.
pub fn resolve(
    repo: &Repository,
    url: &GitUrl,
    want: &Want,
    mode: FetchMode,
    progress: Progress,
) -> Result<Resolution> {
    let offline_err = |what: &str| {
        anyhow!(
            "{what} is not in the cache and --offline forbids fetching it from {}; run `kst fetch` (or sync once) while online",
            url.canonical()
        )
    };
    match want {
        Want::Locked { commit, requested } => {
            check_not_corrupt(repo, *commit)?;
            if has_commit(repo, *commit) {
                return Ok(Resolution {
                    commit: *commit,
                    requested: requested.clone(),
                    fetched: false,
                });
            }
            if mode == FetchMode::Offline {
                return Err(offline_err(&format!("locked commit {commit}")));
            }
            fetch_commit(repo, url, *commit, requested, progress)?;
            // A tag pin's tag object comes along (fetched by id, the commit arrives alone): a
            // signed tag is what a signed pin verifies (SPEC 16), offline after `kst fetch` too.
            if let Requested::Tag(t) = requested
                && let Err(e) = fetch_tag(repo, url, t, progress)
            {
                tracing::debug!("fetching tag {t} of a locked pin: {e:#}");
            }
            Ok(Resolution {
                commit: *commit,
                requested: requested.clone(),
                fetched: true,
            })
        }
        Want::Deferred(Reference::Ref(r)) if is_full_sha(r) => {
            let oid = crate::oid::parse(r).ok_or_else(|| anyhow!("{r:?} is not a commit id"))?;
            if has_commit(repo, oid) {
                return Ok(Resolution {
                    commit: oid,
                    requested: Requested::Rev(r.clone()),
                    fetched: false,
                });
            }
            if mode == FetchMode::Offline {
                return Err(offline_err(&format!("commit {r}")));
            }
            fetch_commit(repo, url, oid, &Requested::Default, progress)?;
            Ok(Resolution {
                commit: oid,
                requested: Requested::Rev(r.clone()),
                fetched: true,
            })
        }
        Want::Deferred(Reference::Ref(r)) => resolve_ref(repo, url, r, mode, progress),
        Want::Deferred(Reference::Branch(b)) => {
            let local = format!("refs/remotes/origin/{b}");
            if mode == FetchMode::Offline {
                let c =
                    cached_ref(repo, &local).ok_or_else(|| offline_err(&format!("branch {b}")))?;
                return Ok(Resolution {
                    commit: c,
                    requested: Requested::Branch(b.clone()),
                    fetched: false,
                });
            }
            fetch(repo, url, &[format!("+refs/heads/{b}:{local}")], progress)
                .with_context(|| format!("cannot fetch branch {b:?} from {}", url.canonical()))?;
            let c = cached_ref(repo, &local)
                .ok_or_else(|| anyhow!("branch {b:?} does not exist at {}", url.canonical()))?;
            Ok(Resolution {
                commit: c,
                requested: Requested::Branch(b.clone()),
                fetched: true,
            })
        }
        Want::Deferred(Reference::Default) => {
            let local = "refs/remotes/origin/HEAD";
            if mode == FetchMode::Offline {
                let c = cached_ref(repo, local)
                    .ok_or_else(|| offline_err("the default branch (HEAD)"))?;
                return Ok(Resolution {
                    commit: c,
                    requested: Requested::Default,
                    fetched: false,
                });
            }
            // The server resolves its own HEAD: the default branch, never guessed.
            fetch(repo, url, &[format!("+HEAD:{local}")], progress).with_context(|| {
                format!(
                    "cannot fetch the default branch (HEAD) of {}",
                    url.canonical()
                )
            })?;
            let c = cached_ref(repo, local)
                .ok_or_else(|| anyhow!("{} has no default branch (HEAD)", url.canonical()))?;
            Ok(Resolution {
                commit: c,
                requested: Requested::Default,
                fetched: true,
            })
        }
    }
}

/// `ref:` that is not a full SHA: a tag, a ref name, or an abbreviated SHA.
fn resolve_ref(
    repo: &Repository,
    url: &GitUrl,
    r: &str,
    mode: FetchMode,
    progress: Progress,
) -> Result<Resolution> {
    let tag_ref = format!("refs/tags/{r}");
    // Tags are immutable by convention: one already fetched is reused (`kst verify --remote`
    // reports a tag that moved upstream).
    if let Some(c) = cached_ref(repo, &tag_ref) {
        return Ok(Resolution {
            commit: c,
            requested: Requested::Tag(r.to_string()),
            fetched: false,
        });
    }
    if is_abbrev_sha(r)
        && let Ok(obj) = repo.revparse_single(r)
        && let Ok(c) = obj.peel_to_commit()
    {
        return Ok(Resolution {
            commit: c.id(),
            requested: Requested::Rev(r.to_string()),
            fetched: false,
        });
    }
    if mode == FetchMode::Offline {
        bail!(
            "{r:?} is not in the cache and --offline forbids asking {} for it",
            url.canonical()
        );
    }
    let advertised = list_remote(repo, url)?;
    let find = |name: &str| advertised.iter().find(|(n, _)| n == name).map(|(_, o)| *o);
    if find(&tag_ref).is_some() {
        fetch(repo, url, &[format!("+{tag_ref}:{tag_ref}")], progress)?;
        let c = cached_ref(repo, &tag_ref).ok_or_else(|| {
            anyhow!(
                "tag {r:?} at {} does not point to a commit",
                url.canonical()
            )
        })?;
        return Ok(Resolution {
            commit: c,
            requested: Requested::Tag(r.to_string()),
            fetched: true,
        });
    }
    for name in [format!("refs/heads/{r}"), r.to_string()] {
        if name.starts_with("refs/") && find(&name).is_some() {
            let local = format!("refs/kst/rev/{}", name.trim_start_matches("refs/"));
            fetch(repo, url, &[format!("+{name}:{local}")], progress)?;
            let c = cached_ref(repo, &local)
                .ok_or_else(|| anyhow!("{name} at {} is not a commit", url.canonical()))?;
            return Ok(Resolution {
                commit: c,
                requested: Requested::Rev(r.to_string()),
                fetched: true,
            });
        }
    }
    if is_abbrev_sha(r) {
        // An abbreviated SHA cannot be asked for by id: fetch the advertised branches and tags
        // in full and look for it among them.
        let lower = r.to_ascii_lowercase();
        if let Some((name, _)) = advertised
            .iter()
            .find(|(_, o)| o.to_string().starts_with(&lower))
        {
            let local = format!("refs/kst/rev/{}", name.trim_start_matches("refs/"));
            fetch(repo, url, &[format!("+{name}:{local}")], progress)?;
        } else {
            fetch_everything(repo, url, progress)?;
        }
        let obj = repo.revparse_single(r).with_context(|| {
            format!(
                "commit {r} was not found in any branch or tag of {}",
                url.canonical()
            )
        })?;
        let c = obj
            .peel_to_commit()
            .with_context(|| format!("{r} is not a commit"))?;
        return Ok(Resolution {
            commit: c.id(),
            requested: Requested::Rev(r.to_string()),
            fetched: true,
        });
    }
    let mut names: Vec<&str> = advertised
        .iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("refs/tags/")
                .or_else(|| n.strip_prefix("refs/heads/"))
        })
        .filter(|n| !n.ends_with("^{}"))
        .take(12)
        .collect();
    names.dedup();
    bail!(
        "ref {r:?} is neither a tag, a branch nor a commit of {}; it has: {}",
        url.canonical(),
        if names.is_empty() {
            "no branches or tags".to_string()
        } else {
            names.join(", ")
        }
    )
}

/// Fetch the tag `refs/tags/<tag>` (its tag object, for a signed pin whose locked commit was
/// fetched by id), unless the cache already has that ref.
pub fn fetch_tag(repo: &Repository, url: &GitUrl, tag: &str, progress: Progress) -> Result<()> {
    let name = format!("refs/tags/{tag}");
    if repo.find_reference(&name).is_ok() {
        return Ok(());
    }
    fetch(repo, url, &[format!("+{name}:{name}")], progress)
}

/// Fetch one commit by id; if the server refuses ids, fall back to the ref it was requested by,
/// then to everything, deepening as needed.
fn fetch_commit(
    repo: &Repository,
    url: &GitUrl,
    commit: Oid,
    requested: &Requested,
    progress: Progress,
) -> Result<()> {
    let by_id = fetch(
        repo,
        url,
        &[format!("+{commit}:refs/commit/{commit}")],
        progress,
    );
    if by_id.is_ok() && has_commit(repo, commit) {
        return Ok(());
    }
    // A cap is not a refusal of fetch-by-id: asking again another way would only fetch more.
    if let Err(e) = &by_id
        && is_cap(e)
    {
        return by_id;
    }
    if let Err(e) = &by_id {
        tracing::debug!(
            "fetching {commit} by id from {} failed ({e:#}); falling back to refs",
            url.canonical()
        );
    }
    let by_ref = match requested {
        Requested::Branch(b) => vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
        Requested::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
        _ => vec!["+HEAD:refs/remotes/origin/HEAD".to_string()],
    };
    // The locked commit may be behind the tip: fetch the ref with its history.
    match fetch_full(repo, url, &by_ref, progress) {
        Ok(()) if has_commit(repo, commit) => {
            keep(repo, commit)?;
            return Ok(());
        }
        Err(e) if is_cap(&e) => return Err(e),
        _ => {}
    }
    fetch_everything(repo, url, progress)
        .with_context(|| format!("cannot fetch from {}", url.canonical()))?;
    if has_commit(repo, commit) {
        keep(repo, commit)?;
        return Ok(());
    }
    // Every branch and tag was fetched without error: the cache repository is healthy and the
    // remote simply does not have the commit. The refused by-id fetch is kept as text only, so
    // its libgit2 class ("object not found", "target OID ... doesn't exist") is never mistaken
    // for damage to the cache.
    Err(MissingCommit {
        commit,
        url: url.canonical().to_string(),
        by_id: by_id.err().map(|e| format!("{e:#}")),
    }
    .into())
}

/// The remote does not have a commit (a lock pinning a commit force-pushed away, or a lock from
/// another repository). Not damage: the cache repository stays where it is.
#[derive(Debug, thiserror::Error)]
#[error(
    "commit {commit} is not in {url}: it is not reachable from any branch or tag there (was it force-pushed away?){}; \
     run `kst sync --update` to pin a commit the source has, or fix the source's URL",
    by_id.as_ref().map(|e| format!(" (asking for it by id: {e})")).unwrap_or_default()
)]
pub struct MissingCommit {
    pub commit: Oid,
    pub url: String,
    by_id: Option<String>,
}

/// Pin a commit with a ref of our own so `git gc` never drops it from the cache.
fn keep(repo: &Repository, commit: Oid) -> Result<()> {
    repo.reference(
        &format!("refs/commit/{commit}"),
        commit,
        true,
        "kst: keep locked commit",
    )?;
    Ok(())
}

/// Fetch one remote ref (`HEAD`, `refs/heads/<b>`) into `local`, a ref of kst's private
/// namespace (`refs/kst/…`), with the history since the commits the cache already has (not a
/// shallow fetch): `kst outdated` walks it. Nothing outside `refs/kst/` is written. Returns the
/// commit the remote ref points to.
pub fn fetch_private(repo: &Repository, url: &GitUrl, remote: &str, local: &str) -> Result<Oid> {
    if !local.starts_with("refs/kst/") {
        bail!("{local} is not in kst's private ref namespace");
    }
    fetch_depth(
        repo,
        url,
        &[format!("+{remote}:{local}")],
        None,
        &mut |_, _, _| {},
    )
    .with_context(|| format!("cannot fetch {remote} from {}", url.canonical()))?;
    cached_ref(repo, local).ok_or_else(|| anyhow!("{} has no {remote}", url.canonical()))
}

/// Advertised refs of the remote (ls-remote).
pub fn list_remote(repo: &Repository, url: &GitUrl) -> Result<Vec<(String, Oid)>> {
    let mut remote = repo.remote_anonymous(url.fetch_url())?;
    let auth = RefCell::new(Auth::default());
    let conn = match remote.connect_auth(Direction::Fetch, Some(callbacks(None, &auth)), None) {
        Ok(c) => c,
        Err(e) => {
            return Err(auth.borrow().explain(url, e))
                .with_context(|| format!("cannot connect to {}", url.canonical()));
        }
    };
    Ok(conn
        .list()?
        .iter()
        .map(|h| (h.name().to_string(), h.oid()))
        .collect())
}

/// A transfer's progress callback and the caps it enforces.
struct Transfer<'a> {
    progress: Progress<'a>,
    caps: FetchCaps,
    /// Set by the callback when it stops the transfer.
    tripped: &'a Cell<Option<CapKind>>,
}

fn callbacks<'a>(transfer: Option<Transfer<'a>>, auth: &'a RefCell<Auth>) -> RemoteCallbacks<'a> {
    // Every connection is set up through here: the deferred CA bundle goes in first.
    super::setup::load_ca_bundle();
    let mut cb = RemoteCallbacks::new();
    if let Some(t) = transfer {
        cb.transfer_progress(move |s| {
            // Called for every chunk received and every object indexed: returning false makes
            // libgit2 abandon the fetch (and its temporary pack) at once.
            let cap = if s.received_bytes() as u64 > t.caps.max_bytes {
                Some(CapKind::Bytes(t.caps.max_bytes))
            } else if s.total_objects() as u64 > t.caps.max_objects {
                Some(CapKind::Objects(t.caps.max_objects))
            } else {
                None
            };
            if cap.is_some() {
                t.tripped.set(cap);
                return false;
            }
            (t.progress)(s.received_objects(), s.total_objects(), s.received_bytes());
            true
        });
    }
    cb.credentials(move |url, user, allowed| auth.borrow_mut().credential(url, user, allowed));
    cb
}

fn fetch(repo: &Repository, url: &GitUrl, refspecs: &[String], progress: Progress) -> Result<()> {
    fetch_depth(
        repo,
        url,
        refspecs,
        url.supports_shallow().then_some(1),
        progress,
    )
}

/// What to say when libgit2 cannot read the server's ref advertisement. A server repository
/// that is itself shallow (a mirror made with `git clone --depth 1`) advertises `shallow <id>`
/// lines before its refs; libgit2 1.9 refuses them (`transports/smart_pkt.c`, `shallow_pkt`:
/// the line's newline makes its length check fail) whatever depth is asked for, so a full
/// fetch fails the same way and no retry helps. The git CLI reads them.
fn unreadable_advertisement_hint(e: &git2::Error) -> Option<&'static str> {
    (e.class() == git2::ErrorClass::Net && e.message() == "invalid packet line").then_some(
        "the server's answer could not be read. A server repository that is itself shallow \
         (made with `git clone --depth 1`) answers this way, and libgit2 cannot fetch from it \
         at any depth: serve a full clone (run `git fetch --unshallow` in that repository)",
    )
}

/// The last resort, when a commit cannot be asked for by id or found on its ref: every branch
/// and tag, with full history.
fn fetch_everything(repo: &Repository, url: &GitUrl, progress: Progress) -> Result<()> {
    let all = [
        "+refs/heads/*:refs/remotes/origin/*".to_string(),
        "+refs/tags/*:refs/tags/*".to_string(),
    ];
    fetch_full(repo, url, &all, progress)
}

/// Fetch with full history (deepening a shallow cache repository).
fn fetch_full(
    repo: &Repository,
    url: &GitUrl,
    refspecs: &[String],
    progress: Progress,
) -> Result<()> {
    // libgit2: GIT_FETCH_DEPTH_UNSHALLOW (i32::MAX) deepens a shallow repository to full.
    let depth = (url.supports_shallow() && repo.is_shallow()).then_some(i32::MAX);
    fetch_depth(repo, url, refspecs, depth, progress)
}

fn fetch_depth(
    repo: &Repository,
    url: &GitUrl,
    refspecs: &[String],
    depth: Option<i32>,
    progress: Progress,
) -> Result<()> {
    tracing::debug!(
        "fetching {refspecs:?} from {} (depth {depth:?})",
        url.canonical()
    );
    // Anonymous: nothing about the remote is written into the cache repository's config.
    let mut remote = repo.remote_anonymous(url.fetch_url())?;
    let auth = RefCell::new(Auth::default());
    let tripped = Cell::new(None);
    let result = {
        let mut opts = FetchOptions::new();
        let transfer = Transfer {
            progress,
            caps: FetchCaps::from_env(),
            tripped: &tripped,
        };
        opts.remote_callbacks(callbacks(Some(transfer), &auth))
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        if let Some(d) = depth {
            opts.depth(d);
        }
        remote.fetch(refspecs, Some(&mut opts), None)
    };
    if let Err(e) = &result
        && let Some(cap) = tripped.get().or_else(|| libgit2_cap(e))
    {
        // A fresh error, without libgit2's: its class (Indexer, Invalid) must not read as a
        // damaged cache repository.
        return Err(FetchCapExceeded {
            url: url.canonical().to_string(),
            cap,
        }
        .into());
    }
    result
        .map_err(|e| {
            let hint = unreadable_advertisement_hint(&e);
            let e = auth.borrow().explain(url, e);
            match hint {
                Some(h) => e.context(h),
                None => e,
            }
        })
        .with_context(|| format!("fetch from {} failed", url.canonical()))
}
