//! Crash safety for commands and instructions (SPEC 8, 10a, 10b): abort at each write step of
//! a first install and of an update, and prove the next sync converges — every file and block
//! as kst writes it, the user's CLAUDE.md text intact, one block per instruction (never a
//! second copy), no temp file left, verify clean. And a step that fails loses nothing: the
//! lock never claims what was not written.

use crate::support::*;

const USER_TEXT: &str = "\u{feff}# My notes\r\nKeep me.\r\n";

fn project(env: &TestEnv, version: &str) {
    write_file(
        env.project_path("pack/commands/git/commit.md"),
        format!("---\ndescription: Commit {version}\n---\nCommit $ARGUMENTS ({version}).\n"),
    );
    write_file(
        env.project_path("pack/instructions/style.md"),
        format!("Use four spaces ({version}).\n"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex]\nscope: project\ncommands:\n  - source: ./pack\n    commands: \"*\"\ninstructions:\n  - source: ./pack\n    instructions: \"*\"\n",
    );
}

fn leftovers(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".kst-") || name.contains(".tmp") {
            out.push(e.path());
        }
        if e.file_type().unwrap().is_dir() && name != "pack" {
            leftovers(&e.path(), out);
        }
    }
}

#[track_caller]
fn assert_converged(env: &TestEnv, point: &str, version: &str) {
    let a = env.kst().arg("sync").assert();
    assert!(
        a.get_output().status.success(),
        "{point}: recovery sync failed: {}",
        String::from_utf8_lossy(&a.get_output().stderr)
    );
    let a = env.kst().args(["sync", "--json"]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(doc["lock_changed"], false, "{point}: {doc:#}");
    assert!(
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "unchanged"),
        "{point}: {doc:#}"
    );
    env.kst().arg("verify").assert().success();
    let mut left = Vec::new();
    leftovers(&env.project(), &mut left);
    assert!(left.is_empty(), "{point}: leftovers {left:?}");
    let cmd = std::fs::read_to_string(env.project_path(".claude/commands/git/commit.md")).unwrap();
    assert!(cmd.contains(version), "{point}: command is not {version}");
    for file in ["CLAUDE.md", "AGENTS.md"] {
        let text = std::fs::read_to_string(env.project_path(file)).unwrap();
        assert_eq!(
            text.matches(" START -->").count(),
            1,
            "{point}: {file} must hold one block: {text:?}"
        );
        assert!(text.contains(version), "{point}: {file} is not {version}");
    }
    let claude = std::fs::read(env.project_path("CLAUDE.md")).unwrap();
    assert!(
        claude.starts_with(USER_TEXT.as_bytes()),
        "{point}: the user's text changed"
    );
}

fn crash(env: &TestEnv, point: &str) {
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT", point)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{point}: the fail point was not reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const POINTS: &[&str] = &[
    "write-before-rename:commit.md",
    "write-before-rename:CLAUDE.md",
    "write-before-rename:AGENTS.md",
    "sync-before-lock",
    "write-before-rename:kasetto.lock",
];

#[test]
fn crash_at_every_write_of_a_first_install_recovers() {
    for point in POINTS {
        let env = TestEnv::new();
        project(&env, "v1");
        write_file(env.project_path("CLAUDE.md"), USER_TEXT);
        crash(&env, point);
        assert_converged(&env, point, "v1");
    }
}

#[test]
fn crash_at_every_write_of_an_update_recovers() {
    for point in POINTS {
        let env = TestEnv::new();
        project(&env, "v1");
        write_file(env.project_path("CLAUDE.md"), USER_TEXT);
        env.kst().arg("sync").assert().success();
        project(&env, "v2");
        crash(&env, point);
        assert_converged(&env, point, "v2");
    }
}

#[test]
fn a_failed_write_keeps_the_lock_honest() {
    let env = TestEnv::new();
    project(&env, "v1");
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT_ERROR", "file-write")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Nothing was written, so the lock claims nothing was.
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap_or_default();
    assert!(!lock.contains("sha256:"), "{lock}");
    assert!(!env.project_path(".claude/commands/git/commit.md").exists());
    // The next run installs everything.
    env.kst().arg("sync").assert().success();
    env.kst().arg("verify").assert().success();
}
