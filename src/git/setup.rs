//! Process-wide libgit2 set-up, made once ([`init`]) before any other libgit2 call — and only
//! by a run that uses a repository.
//!
//! **Initialised when needed** (issue 15): initialising libgit2 initialises OpenSSL, 11 M
//! instructions (~3 ms, a tenth of a warm no-op) that a sync of local folders, `kst --version`
//! or `kst list` never needed. [`init`] runs on the main thread in `Workspace::load` when the
//! config or the lock names a git source, and in every repository opener (`git/cache.rs`, the
//! only place one is opened): the limits below are set before any repository is read on every
//! path. Ids are parsed and hashed without libgit2 (`crate::oid`), since every git2 id function
//! initialises it. `init` writes environment variables (as git2's own start-up does): a debug
//! build of the program panics if it would run while other threads exist. So a caller about to
//! start threads that may open repositories calls [`before_workers`] with its entries' sources
//! first (the resolvers of every kind: `kst add` probes a git source with no workspace).
//!
//! **The CA bundle is read when the first connection is set up**, not at start-up. libgit2
//! initialises OpenSSL eagerly, and `SSL_CTX_set_default_verify_paths` parses the whole system
//! bundle (about 25 ms, a third of a no-op sync) even when nothing goes to the network. So
//! libgit2 is initialised with `SSL_CERT_FILE` naming an empty file, and [`load_ca_bundle`] adds
//! the real bundle — the one libgit2 would have read: `SSL_CERT_FILE` if it names a file, else
//! what openssl-probe finds — to libgit2's TLS context before the first connection. The
//! certificate folder (`SSL_CERT_DIR`) is searched lazily by OpenSSL and is untouched, and the
//! environment is left as git2 would have left it. Nothing about what is trusted changes.
//!
//! (libgit2's re-hashing of every object it reads is deliberately left on: it is what catches
//! a tampered cache, e.g. a CI cache restored from another job, and what SECURITY.md 10's
//! "damage is moved aside" rests on. What made it costly was reading the same large tree once
//! per skill; `git::pack` now reads each tree once per process, so each object read is hashed
//! once, and turning verification off would save only that one hash while installing unverified
//! bytes from a damaged cache.)
//!
//! **Pack limits** (SPEC 13.7): a delta bomb is a few KiB of deltas that each copy their base
//! many times over, so that resolving them builds objects of gigabytes. libgit2 checks the
//! result size written in each delta's header against `GIT_OPT_SET_PACK_MAX_OBJECT_SIZE`
//! before it allocates the result, when indexing a fetched pack and when reading any pack. We
//! set it to the file cap (`KASETTO_MAX_FILE_BYTES`): no object larger than a file kst may
//! install is ever built by applying a delta. `GIT_OPT_SET_PACK_MAX_OBJECTS` bounds the object
//! count a pack header may announce (its table is allocated from that count) to the fetch cap
//! (`KASETTO_MAX_FETCH_OBJECTS`). Both are process-wide, hence set here, once.
//!
//! **Memory bounds** ([`MEMORY_LIMITS`]): libgit2 reads packs through mapped *windows*, by
//! default 1 GiB each and up to 8 GiB in all, kept mapped until the repository is freed. Every
//! page of a pack an install touches stays resident, so an offline re-sync of a 300 MiB pack
//! (10,000 skills) peaked at 370 MiB, most of it the pack itself. Windows are now
//! [`MemoryLimits::window`] bytes and at most [`MemoryLimits::mapped`] are kept mapped (a soft
//! limit: libgit2 unmaps the least recently used window not in use), so what is resident of a
//! pack is bounded whatever its size; re-mapping a window costs a `mmap` and page faults on
//! pages still in the page cache, nothing next to inflating the objects. libgit2 also keeps
//! every parsed tree of up to 4 KiB in each repository's object cache for the handle's
//! lifetime (up to 256 MiB in all); kst reads each tree once — through `git::pack`'s index, or
//! once per listing — so that cache held every tree of every listed skill for nothing (30 MiB
//! at 10,000 skills): trees are no longer cached ([`MemoryLimits::cache_trees`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// The bundle [`load_ca_bundle`] adds: set by [`init`]; unset when nothing was deferred.
static DEFERRED_BUNDLE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Set by the program (`cli::main`): a debug build then refuses to initialise libgit2 once
/// other threads run (a library caller, such as a test, may have threads of its own).
static STRICT: AtomicBool = AtomicBool::new(false);

/// Called by the program before anything else: from now on, a debug build panics if libgit2
/// would be initialised while the process has more than one thread.
pub fn strict() {
    STRICT.store(true, Ordering::Relaxed);
}

/// Whether [`init`] has run.
pub fn initialised() -> bool {
    DEFERRED_BUNDLE.get().is_some()
}

/// Initialise libgit2 with the settings above; calling it again does nothing.
///
/// **Only when a run uses a repository.** Initialising libgit2 initialises OpenSSL (about
/// 3 ms, a tenth of a warm no-op), so it is not done at start-up: [`Workspace::load`] calls
/// this on the main thread, before any worker exists, when the config or the lock names a git
/// source, and every repository is opened through [`super::GitDatabase`], whose openers call
/// it first — so the pack and memory limits are set before any repository, object database or
/// pack is read, on every path. Ids are made without libgit2 ([`crate::oid`]), so nothing else
/// initialises it behind kst's back. `init` (and git2's own start-up, at the first git2 call)
/// writes environment variables, which is only sound while the process has a single thread:
/// a debug build of the program panics if it is reached later (the tests would show such a
/// path), and a release build then skips its own environment change (the CA bundle is then
/// read at start-up, as libgit2 does by default: slower, trusting the same certificates).
///
/// [`Workspace::load`]: crate::workspace::Workspace::load
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let alone = single_threaded();
        if !alone && STRICT.load(Ordering::Relaxed) && cfg!(debug_assertions) {
            panic!(
                "libgit2 initialised while other threads run: call git::setup::init on the \
                 main thread before they start"
            );
        }
        let bundle = if alone {
            openssl_probe::probe().cert_file
        } else {
            None
        };
        if bundle.is_some() {
            // SAFETY: the process has a single thread (checked above): nothing can read the
            // environment concurrently.
            unsafe { std::env::set_var(SSL_CERT_FILE, "/dev/null") };
        }
        // The first git2 call (re-stating libgit2's default) initialises libgit2 and OpenSSL,
        // reading the empty bundle.
        git2::opts::strict_hash_verification(true);
        set_pack_limits();
        set_memory_limits();
        set_network_timeouts();
        if let Some(b) = &bundle {
            // What git2's own start-up (openssl-probe) leaves in the environment, for anything
            // else in the process that reads it (a credential helper it runs).
            // SAFETY: as above.
            unsafe { std::env::set_var(SSL_CERT_FILE, b) };
        }
        let _ = DEFERRED_BUNDLE.set(bundle);
        crate::failpoint::count(crate::failpoint::Counter::Libgit2Init);
    });
}

/// [`init`], when any of `sources` is a git source, before the caller starts worker threads
/// that may open its repositories: a run whose workspace named no git source (`kst add` of one
/// probes it with no workspace, `Workspace::load` never saw it) must not reach the first
/// [`init`] on a worker, where it would write the environment while other threads run (git2's
/// own start-up does too; a debug build of the program panics there).
pub fn before_workers<'s>(sources: impl IntoIterator<Item = &'s crate::source::Source>) {
    if sources
        .into_iter()
        .any(|s| matches!(s, crate::source::Source::Git(_)))
    {
        init();
    }
}

/// Does the process have one thread? (`/proc/self/status`; where there is none, the callers'
/// order is trusted.)
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim() == "1")
        })
        .unwrap_or(true)
}

/// A server that accepts a connection and then says nothing must not hang kst forever.
fn set_network_timeouts() {
    // SAFETY: libgit2 is initialised (by `init`'s first git2 call); each option only writes a
    // global, before any connection exists.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(30_000);
        let _ = git2::opts::set_server_timeout_in_milliseconds(120_000);
    }
}

/// Give libgit2's TLS context the CA bundle that [`init`] deferred. Call before every
/// connection; only the first call does anything, and every other caller waits for it, so no
/// handshake can run while the bundle is being added.
pub fn load_ca_bundle() {
    static LOADED: Once = Once::new();
    // Every connection is made for a repository, opened through `GitDatabase`: `init` ran.
    debug_assert!(initialised(), "a connection before libgit2 was initialised");
    LOADED.call_once(|| {
        if let Some(Some(bundle)) = DEFERRED_BUNDLE.get() {
            // SAFETY: libgit2 is initialised (by `init`), and no connection exists yet: every
            // connection is set up after this function returns.
            if let Err(e) = unsafe { git2::opts::set_ssl_cert_file(bundle) } {
                tracing::warn!(
                    "cannot load the CA certificates in {}: {}",
                    bundle.display(),
                    e.message()
                );
            }
        }
    });
}

/// The pack limits given to libgit2 (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Largest object a delta may build, in bytes.
    pub max_object_size: u64,
    /// Most objects a pack may announce.
    pub max_objects: u64,
}

static PACK_LIMITS: OnceLock<PackLimits> = OnceLock::new();

/// The limits [`init`] gave libgit2 (what they would be, when it has not run).
pub fn pack_limits() -> PackLimits {
    *PACK_LIMITS.get_or_init(|| PackLimits {
        max_object_size: crate::tree::Caps::from_env().max_file_bytes,
        max_objects: super::FetchCaps::from_env().max_objects,
    })
}

fn set_pack_limits() {
    let limits = pack_limits();
    let clamp = |n: u64| usize::try_from(n).unwrap_or(usize::MAX) as libc::size_t;
    // SAFETY: libgit2 is initialised (by the git2 call before this one) and no repository
    // exists yet (inside `init`'s `Once`): both options take one `size_t`, and only write a
    // global nothing reads concurrently.
    let rc = unsafe {
        libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_SET_PACK_MAX_OBJECT_SIZE as libc::c_int,
            clamp(limits.max_object_size),
        ) | libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_SET_PACK_MAX_OBJECTS as libc::c_int,
            clamp(limits.max_objects),
        )
    };
    if rc != 0 {
        tracing::warn!("cannot set libgit2's pack limits (error {rc})");
    }
}

/// The bounds [`init`] gives libgit2's memory use (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Size of one mapped window of a pack file, in bytes.
    pub window: usize,
    /// Most bytes of pack windows kept mapped (libgit2's soft limit).
    pub mapped: usize,
    /// Whether parsed trees are kept in libgit2's object cache.
    pub cache_trees: bool,
}

/// What [`init`] sets.
pub const MEMORY_LIMITS: MemoryLimits = MemoryLimits {
    window: 4 << 20,
    mapped: 16 << 20,
    cache_trees: false,
};

/// The limits libgit2 is running with now (for tests: [`init`] must have set
/// [`MEMORY_LIMITS`]).
pub fn memory_limits() -> Result<MemoryLimits, git2::Error> {
    // SAFETY: reading two process-wide options libgit2 guards itself.
    let (window, mapped) = unsafe {
        (
            git2::opts::get_mwindow_size()?,
            git2::opts::get_mwindow_mapped_limit()?,
        )
    };
    Ok(MemoryLimits {
        window,
        mapped,
        cache_trees: TREES_CACHED.get().copied().unwrap_or(true),
    })
}

/// libgit2 has no getter for an object kind's cache limit: what [`set_memory_limits`] set.
static TREES_CACHED: OnceLock<bool> = OnceLock::new();

fn set_memory_limits() {
    let l = MEMORY_LIMITS;
    // SAFETY: libgit2 is initialised (by `init`'s first git2 call) and no repository exists
    // yet (inside `init`'s `Once`); each option only writes a global.
    let result = unsafe {
        git2::opts::set_mwindow_size(l.window)
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(l.mapped))
            .and_then(|()| {
                git2::opts::set_cache_object_limit(
                    git2::ObjectType::Tree,
                    if l.cache_trees { 4096 } else { 0 },
                )
            })
    };
    match result {
        Ok(()) => {
            let _ = TREES_CACHED.set(l.cache_trees);
        }
        Err(e) => tracing::warn!("cannot set libgit2's memory limits: {}", e.message()),
    }
}

#[cfg(test)]
mod tests {
    /// libgit2 is initialised before any repository is opened because every repository is
    /// opened in one file (`git/cache.rs`, whose openers call `init`), and nothing else calls
    /// the git2 functions that initialise libgit2 behind kst's back (ids are made by
    /// `crate::oid`). A new call elsewhere fails here: open it through `git::GitDatabase` or
    /// `git::open_bare`, make ids with `crate::oid`.
    #[test]
    fn every_repository_is_opened_after_init() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 20, "{}", src.display());
        let openers = [
            "Repository::open",
            "Repository::init",
            "Repository::discover",
            "Repository::clone",
            "RepoBuilder",
        ];
        let implicit = [
            "Oid::from_str(",
            "Oid::from_bytes(",
            "Oid::hash_object(",
            "Oid::hash_file(",
            "git2::Config::",
            "Odb::new",
            "Indexer::new",
        ];
        let mut found = Vec::new();
        for f in &files {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(f).unwrap();
            // The code, not its unit tests (which may build fixtures with git2 directly).
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                let opens = openers.iter().any(|p| line.contains(p)) && rel != "git/cache.rs";
                // A git2 credential callback reads the user's git config during a fetch, after
                // the repository it fetches into was opened.
                let implicit = implicit.iter().any(|p| line.contains(p))
                    && !(rel == "credentials.rs" && line.contains("git2::Config::open_default"));
                if opens || implicit {
                    found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        assert_eq!(found, Vec::<String>::new());
    }

    /// `init` bounds libgit2's pack windows and does not cache trees: without it, libgit2 maps
    /// 1 GiB windows up to 8 GiB and caches parsed trees up to 256 MiB. (`init` itself sets
    /// environment variables, which a multi-threaded test must not; it calls this.)
    #[test]
    fn libgit2s_memory_is_bounded() {
        super::set_memory_limits();
        assert_eq!(super::memory_limits().unwrap(), super::MEMORY_LIMITS);
        const { assert!(super::MEMORY_LIMITS.mapped <= 64 << 20 && !super::MEMORY_LIMITS.cache_trees) };
    }
}
