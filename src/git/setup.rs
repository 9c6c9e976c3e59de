//! Process-wide libgit2 set-up, made once at start-up ([`init`]) before any other libgit2 call.
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
use std::sync::{Once, OnceLock};

const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// The bundle [`load_ca_bundle`] adds: set by [`init`]; unset when nothing was deferred.
static DEFERRED_BUNDLE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Initialise libgit2 with the settings above. Call first thing in `main`, while the process
/// has a single thread (it sets environment variables); calling it again does nothing.
pub fn init() {
    if DEFERRED_BUNDLE.get().is_some() {
        return;
    }
    let bundle = openssl_probe::probe().cert_file;
    if bundle.is_some() {
        // SAFETY: start-up, single-threaded (see above): nothing can read the environment
        // concurrently.
        unsafe { std::env::set_var(SSL_CERT_FILE, "/dev/null") };
    }
    // The first git2 call (re-stating libgit2's default) initialises libgit2 and OpenSSL,
    // reading the empty bundle.
    git2::opts::strict_hash_verification(true);
    set_pack_limits();
    set_memory_limits();
    if let Some(b) = &bundle {
        // What git2's own start-up (openssl-probe) leaves in the environment, for anything
        // else in the process that reads it (the HTTPS client of remote configs).
        // SAFETY: as above.
        unsafe { std::env::set_var(SSL_CERT_FILE, b) };
    }
    let _ = DEFERRED_BUNDLE.set(bundle);
    crate::failpoint::init_counters();
}

/// Give libgit2's TLS context the CA bundle that [`init`] deferred. Call before every
/// connection; only the first call does anything, and every other caller waits for it, so no
/// handshake can run while the bundle is being added.
pub fn load_ca_bundle() {
    static LOADED: Once = Once::new();
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
    // SAFETY: libgit2 is initialised (by the git2 call before this one) and the process is
    // single-threaded (see `init`); both options take one `size_t`, and only write a global.
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
    // SAFETY: libgit2 is initialised (by `init`'s first git2 call) and the process is
    // single-threaded (see `init`); each option only writes a global.
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
