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
