//! Tests that need a tool from the machine (OpenSSH, `script`, …) print a note and pass when it
//! is missing on a developer's machine, but must never pass silently in CI: with `CI` set a
//! missing tool fails the test, and `.ci/run` installs every tool the suite needs.

use std::path::PathBuf;

/// Where `program` is on the test process's `PATH`, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The one rule for a test that cannot run here: under CI (`CI` set) it panics with `note`;
/// elsewhere it prints the note and returns, so the caller returns early. Always returns false.
pub fn skip_or_fail_in_ci(note: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{note} (CI must run this test: .ci/run installs what it needs)");
    }
    eprintln!("note: {note}");
    false
}

/// True when `program` is installed; otherwise [`skip_or_fail_in_ci`] with a note naming the
/// test and the package that provides it.
pub fn tool_or_skip(test: &str, program: &str, package: &str) -> bool {
    if which(program).is_some() {
        return true;
    }
    skip_or_fail_in_ci(&format!(
        "{test}: skipped, `{program}` is not installed; install {package}"
    ))
}
