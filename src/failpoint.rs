//! Test-only crash points: `KASETTO_FAILPOINT=<name>` makes a debug build abort the process at
//! that point, as a power cut or `kill -9` would, so tests can prove the next run recovers.
//! Release builds compile every fail point to nothing: no environment variable can make a
//! shipped kst crash on purpose.

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
