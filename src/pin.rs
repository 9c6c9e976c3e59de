//! Pinning a git source, for every kind: which commit to read (the lock's, unless `--update`
//! moves it, else what the config asks for), fetching what is missing, and reading what the
//! kind selects from that commit — with the cache repository held, and a damaged repository
//! moved aside and fetched once more.
//!
//! A kind says only what it reads from the pinned commit (`read`), and may answer from the
//! lock alone without reading the commit (`from_lock`, the skills' warm fast path).

use git2::{Oid, Repository};

use crate::git::{Cache, FetchMode, GitPack, Progress, Resolution, Want};
use crate::lock::LockedEntry;
use crate::request::{Reference, Requested};
use crate::source::GitUrl;

/// How a source's content was obtained in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fetch {
    /// A local folder, read from disk.
    Local,
    /// The commit was already in the cache: no network.
    Cached,
    /// Fetched from the remote in this run.
    Fetched,
}

impl Fetch {
    fn of(fetched: bool) -> Fetch {
        if fetched {
            Fetch::Fetched
        } else {
            Fetch::Cached
        }
    }
}

/// A git source, pinned.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub requested: Requested,
    pub commit: Oid,
    pub fetch: Fetch,
    /// The fingerprint (`SHA256:…`) of the key that signed the pin, when the entry has
    /// `trust:` (SPEC 16).
    pub signer: Option<String>,
}

/// What a kind's `read` is given: the repository, the pinned commit as a pack, and the
/// discovery root (the entry's `sub-dir`, checked to be a folder at that commit).
pub struct Reading<'a> {
    pub repo: &'a Repository,
    pub pack: &'a GitPack<'a>,
    pub root: &'a str,
    pub resolution: &'a Resolution,
}

/// A failed attempt; `true` when the cache repository looks damaged (then it is moved aside
/// and the source fetched afresh, once).
pub type Failure = (anyhow::Error, bool);

/// The git source of one config entry, and what its lock entry and `--update` say.
pub struct GitEntry<'a> {
    pub url: &'a GitUrl,
    pub reference: &'a Reference,
    pub sub_dir: Option<&'a str>,
    pub locked: Option<&'a dyn LockedEntry>,
    /// `--update` moves this entry.
    pub update: bool,
    /// `trust:`: the pin must be signed by an allowed key before anything is read from it.
    pub trust: Option<&'a crate::config::entry::Trust>,
}

/// Pin `entry` and read it. `from_lock` is asked first, when the lock pins a commit and
/// `--update` does not move it: `Some` answers without reading the commit (it must check what
/// it relies on itself). With `trust:`, the pin's signature is verified first on both paths
/// (one signature per source and run); a pin that is unsigned or signed by a key not allowed
/// fails the source before anything of it is read. Returns the pin, what `read` returned, and
/// the warnings said about a repository moved aside.
pub fn git<T>(
    entry: &GitEntry,
    cache: &Cache,
    mode: FetchMode,
    progress: Progress,
    mut from_lock: impl FnMut(&Repository, Oid, &Requested) -> Option<T>,
    mut read: impl FnMut(Reading) -> Result<T, Failure>,
) -> anyhow::Result<(Pinned, T, Vec<String>)> {
    let url = entry.url.canonical();
    let db = cache.database(url);
    let root = entry.sub_dir.unwrap_or_default();
    let ((pin, value), warnings) = db.with_repair(url.as_str(), mode, |repo| {
        let want = crate::lock::want(entry.locked, entry.update, entry.reference)
            .map_err(|e| (e, false))?;
        if let Want::Locked { commit, requested } = &want
            && let Some(v) = from_lock(repo, *commit, requested)
        {
            let signer = signer(entry, repo, *commit, requested, mode, &mut *progress)?;
            let pin = Pinned {
                requested: requested.clone(),
                commit: *commit,
                fetch: Fetch::Cached,
                signer,
            };
            return Ok((pin, v));
        }
        let res = crate::git::resolve(repo, entry.url, &want, mode, &mut *progress)
            .map_err(|e| (e, false))?;
        let signer = signer(
            entry,
            repo,
            res.commit,
            &res.requested,
            mode,
            &mut *progress,
        )?;
        // From here on everything is local: a failure means the cache repository is damaged.
        let pack = GitPack::new(repo, res.commit).map_err(|e| (e, true))?;
        let is_folder = crate::git::path_id(repo, res.commit, root)
            .map_err(|e| (e.into(), true))?
            .is_some_and(|id| repo.find_tree(id).is_ok());
        if !is_folder {
            return Err((
                anyhow::anyhow!("sub-dir {root:?} does not exist at commit {}", res.commit),
                false,
            ));
        }
        let value = read(Reading {
            repo,
            pack: &pack,
            root,
            resolution: &res,
        })?;
        let pin = Pinned {
            requested: res.requested.clone(),
            commit: res.commit,
            fetch: Fetch::of(res.fetched),
            signer,
        };
        Ok((pin, value))
    })?;
    Ok((pin, value, warnings))
}

/// The signer of the pin `commit`, verified against the entry's allowed signers; `None`
/// without `trust:`. A tag pin whose tag is not in the cache (its commit was fetched by id)
/// has the tag fetched first, when the network may be used: a signed tag is the tag object.
fn signer(
    entry: &GitEntry,
    repo: &Repository,
    commit: Oid,
    requested: &Requested,
    mode: FetchMode,
    progress: Progress,
) -> Result<Option<String>, Failure> {
    let Some(trust) = entry.trust else {
        return Ok(None);
    };
    let allowed = trust.signers().map_err(|e| (e, false))?;
    if let Requested::Tag(t) = requested
        && mode != FetchMode::Offline
        && let Err(e) = crate::git::fetch_tag(repo, entry.url, t, progress)
    {
        // Not fatal here: the commit's own signature may still prove the pin.
        tracing::debug!("fetching tag {t} for its signature: {e:#}");
    }
    crate::signed::verify_pin(repo, commit, requested, allowed)
        .map(|s| Some(s.fingerprint))
        .map_err(|e| (e, false))
}
