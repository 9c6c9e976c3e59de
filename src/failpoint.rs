//! Test-only crash points: `KASETTO_FAILPOINT=<name>` makes a debug build abort the process at
//! that point, as a power cut or `kill -9` would, so tests can prove the next run recovers.
//! `KASETTO_FAILPOINT_HOLD=<name>` makes it stop there until its standard input is closed, so a
//! test can order two processes without racing them (a run holding the scope lock while a
//! second one starts). Release builds compile every fail point to nothing: no environment
//! variable can make a shipped kst crash or wait on purpose.

/// Abort here if `KASETTO_FAILPOINT` names this point (debug builds only).
#[inline]
pub fn hit(name: &str) {
    if armed(name) {
        eprintln!("kst: fail point {name} reached; aborting (test build)");
        std::process::abort();
    }
}

/// Whether `KASETTO_FAILPOINT` names this point (debug builds only): for a point that must set
/// up the state a crash would leave before [`hit`] aborts.
#[inline]
pub fn armed(name: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("KASETTO_FAILPOINT").is_ok_and(|v| v == name)
}

/// Fail here with an error if `KASETTO_FAILPOINT_ERROR` names this point (debug builds only):
/// for proving that a step that fails (a permission error, a full disk) loses nothing.
pub fn fail(name: &str) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && std::env::var("KASETTO_FAILPOINT_ERROR").is_ok_and(|v| v == name) {
        anyhow::bail!("fail point {name} (test build)");
    }
    Ok(())
}

/// What a debug build counts for tests that prove an amount of work structurally (never by
/// timing): `KASETTO_DEBUG_COUNTERS=1` makes it print the counts to stderr when the process
/// exits, as one line `kst-debug-counters: tree-reads=N file-reads=M blob-reads=B
/// path-resolves=K peak-rss-kib=R` (R: the process's own peak resident memory, `VmHWM`, which a
/// parent's `wait4` cannot tell apart from the parent's own memory when it forked).
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// A tree object read from a cache repository's object database and indexed by name
    /// (`git::pack`): once per tree per process.
    TreeRead,
    /// A file's contents read from disk to hash it or parse its frontmatter.
    FileRead,
    /// A file's contents read from a cache repository's object database (`GitPack::read_file`).
    BlobRead,
    /// A path inside a confined local pack resolved in full (`realpath`) to check that it
    /// stays inside the project (`discover`).
    PathResolve,
    /// A lock's YAML parsed (`Lock::parse`); a lock read from its memo is not (`lockmemo`).
    LockParse,
    /// libgit2 (and with it OpenSSL) initialised (`git::setup::init`): once in a run that uses
    /// a repository, never in one that does not.
    Libgit2Init,
    /// A sync answered by the whole-run memo (`runmemo`): nothing loaded, resolved or planned.
    RunMemoHit,
}

#[cfg(debug_assertions)]
static COUNTS: [std::sync::atomic::AtomicUsize; 7] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

/// Arrange for the counts to be printed at exit when `KASETTO_DEBUG_COUNTERS` is set (debug
/// builds only). Called once at start-up (`cli::main`).
pub fn init_counters() {
    #[cfg(debug_assertions)]
    {
        static REGISTER: std::sync::Once = std::sync::Once::new();
        REGISTER.call_once(|| {
            if std::env::var_os("KASETTO_DEBUG_COUNTERS").is_some() {
                // SAFETY: registers a plain `extern "C"` function that takes no arguments.
                unsafe { libc::atexit(print_counts) };
            }
        });
    }
}

/// Count one `c` (debug builds only; nothing in a release build).
#[inline]
pub fn count(c: Counter) {
    #[cfg(debug_assertions)]
    {
        COUNTS[c as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(debug_assertions))]
    let _ = c;
}

#[cfg(debug_assertions)]
extern "C" fn print_counts() {
    use std::io::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let peak_rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let _ = writeln!(
        std::io::stderr(),
        "kst-debug-counters: tree-reads={} file-reads={} blob-reads={} path-resolves={} lock-parses={} libgit2-inits={} run-memo-hits={} peak-rss-kib={peak_rss_kib}",
        COUNTS[Counter::TreeRead as usize].load(Relaxed),
        COUNTS[Counter::FileRead as usize].load(Relaxed),
        COUNTS[Counter::BlobRead as usize].load(Relaxed),
        COUNTS[Counter::PathResolve as usize].load(Relaxed),
        COUNTS[Counter::LockParse as usize].load(Relaxed),
        COUNTS[Counter::Libgit2Init as usize].load(Relaxed),
        COUNTS[Counter::RunMemoHit as usize].load(Relaxed),
    );
}

/// Stop here until standard input is closed if `KASETTO_FAILPOINT_HOLD` names this point
/// (debug builds only). Says so on stderr first, so the test knows the point was reached; the
/// test then does what must happen meanwhile and closes the pipe to let the run go on.
pub fn hold(name: &str) {
    if cfg!(debug_assertions) && std::env::var("KASETTO_FAILPOINT_HOLD").is_ok_and(|v| v == name) {
        use std::io::{Read, Write};
        let _ = writeln!(
            std::io::stderr(),
            "kst: fail point {name} reached; holding until stdin is closed (test build)"
        );
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut sink);
    }
}
