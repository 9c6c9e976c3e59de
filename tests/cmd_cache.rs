//! `kst cache dir|prune|clear`: prune keeps what the locks on this machine reference and drops
//! the rest; clear asks, or refuses without a terminal; both wait for a run using the cache.

use std::io::BufRead;
use std::path::PathBuf;

use crate::cmd_fixtures::*;
use crate::support::*;

fn dbs(env: &TestEnv) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(env.cache().join("git/db"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The global install of `pack.git` (kept by its lock), plus a second project at `<root>/two`
/// with its own lock using `other.git`.
fn two_locks(env: &TestEnv) -> (GitDaemon, PathBuf) {
    let (_, d) = git_global(env);
    let mut other = FixtureRepo::init(env.remotes().join("other.git"));
    other.commit("main", &skill_pack("skills", &[("xlsx", "Sheets")]));
    let two = env.path("two/kasetto.yaml");
    write_file(
        &two,
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            d.url("other.git")
        ),
    );
    env.kst().arg("sync").assert().success();
    env.kst()
        .args(["--config", two.to_str().unwrap(), "sync"])
        .assert()
        .success();
    assert_eq!(dbs(env).len(), 2);
    (d, two)
}

#[test]
fn cache_dir_prints_the_cache_folder() {
    let env = TestEnv::new();
    let out = run(&env, &["cache", "dir"], 0);
    assert_eq!(out.trim(), env.cache().display().to_string());
    let doc = json(&env, &["cache", "dir"], 0);
    assert_eq!(doc["path"], env.cache().display().to_string());
    // Showing the folder does not create it.
    assert!(!env.cache().exists());
}

#[test]
fn prune_drops_repositories_no_existing_lock_references_and_keeps_the_rest() {
    let env = TestEnv::new();
    let (_d, two) = two_locks(&env);
    // Both locks referenced: nothing to drop.
    let doc = json(&env, &["cache", "prune"], 0);
    assert_eq!(doc["removed"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["kept"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["locks"].as_array().unwrap().len(), 2, "{doc}");
    // The second project's lock is gone: its repository no longer counts.
    std::fs::remove_file(two.with_file_name("kasetto.lock")).unwrap();
    let dry = json(&env, &["cache", "prune", "--dry-run"], 0);
    assert_eq!(dry["removed"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dbs(&env).len(), 2, "a dry run removes nothing");
    let doc = json(&env, &["cache", "prune"], 0);
    let removed = doc["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{doc}");
    assert!(removed[0].as_str().unwrap().contains("/other-"), "{doc}");
    assert_eq!(doc["repacked"], true, "{doc}");
    let left = dbs(&env);
    assert_eq!(left.len(), 1);
    assert!(left[0].starts_with("pack-"), "{left:?}");
    // What stays is whole: the locked commit installs offline from the repacked repository.
    std::fs::remove_dir_all(env.home_path(".claude/skills/pdf")).unwrap();
    env.kst().args(["sync", "--offline"]).assert().success();
    assert!(env.home_path(".claude/skills/pdf/SKILL.md").is_file());
    // The list of locks forgot the deleted one.
    let list = std::fs::read_to_string(env.xdg_data().join("kasetto/locks.json")).unwrap();
    assert!(!list.contains("two"), "{list}");
}

#[test]
fn prune_without_git_keeps_everything_unrepacked_and_says_so() {
    let env = TestEnv::new();
    let (_d, _two) = two_locks(&env);
    let empty = env.path("no-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env
        .kst()
        .args(["cache", "prune", "--json"])
        .env("PATH", &empty)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["repacked"], false);
    assert!(
        doc["notes"][0]
            .as_str()
            .unwrap()
            .contains("git CLI is not installed"),
        "{doc}"
    );
    assert_eq!(dbs(&env).len(), 2);
}

#[test]
fn prune_stops_on_a_malformed_known_lock() {
    let env = TestEnv::new();
    let (_d, two) = two_locks(&env);
    write_file(
        two.with_file_name("kasetto.lock"),
        "version: 1\nsources: {\n",
    );
    let err = stderr(&env, &["cache", "prune"], 2);
    assert!(err.contains("removed nothing"), "{err}");
    assert_eq!(dbs(&env).len(), 2);
}

#[test]
fn prune_waits_for_a_run_that_holds_the_cache() {
    let env = TestEnv::new();
    let (_d, two) = two_locks(&env);
    std::fs::remove_file(two.with_file_name("kasetto.lock")).unwrap();
    // A run using the cache holds its lock shared (as `Cache::open` does).
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(env.cache().join("locks/cache.lock"))
        .unwrap();
    held.lock_shared().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kst"));
    child.env_clear().current_dir(env.project());
    for (k, v) in env.hermetic_vars() {
        child.env(k, v);
    }
    let mut child = child
        .args(["cache", "prune"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("waiting for other kst runs"), "{first}");
    // While it waits, nothing is removed.
    assert_eq!(dbs(&env).len(), 2);
    drop(held);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert_eq!(dbs(&env).len(), 1);
}

#[test]
fn clear_refuses_without_a_terminal_and_empties_the_cache_with_yes() {
    let env = TestEnv::new();
    let (_d, _two) = two_locks(&env);
    let err = stderr(&env, &["cache", "clear"], 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(dbs(&env).len(), 2);
    let doc = json(&env, &["cache", "clear"], 2);
    assert!(doc["error"].as_str().unwrap().contains("--yes"));
    let doc = json(&env, &["cache", "clear", "--yes"], 0);
    assert!(!doc["removed"].as_array().unwrap().is_empty());
    assert!(dbs(&env).is_empty());
    assert!(env.cache().join("CACHEDIR.TAG").is_file());
    // A sync fetches again.
    std::fs::remove_dir_all(env.home_path(".claude/skills/pdf")).unwrap();
    env.kst().arg("sync").assert().success();
    assert_eq!(dbs(&env).len(), 1);
}

#[test]
fn a_sync_waits_while_the_cache_is_being_pruned() {
    let env = TestEnv::new();
    let (_repo, _d) = git_global(&env);
    env.kst().arg("sync").assert().success();
    std::fs::remove_dir_all(env.home_path(".claude/skills/pdf")).unwrap();
    // `kst cache prune|clear` hold the cache lock exclusively.
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(env.cache().join("locks/cache.lock"))
        .unwrap();
    held.lock().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kst"));
    child.env_clear().current_dir(env.project());
    for (k, v) in env.hermetic_vars() {
        child.env(k, v);
    }
    let mut child = child
        .arg("sync")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("waiting for `kst cache prune`"), "{first}");
    assert!(!env.home_path(".claude/skills/pdf").exists());
    drop(held);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(env.home_path(".claude/skills/pdf/SKILL.md").is_file());
}

#[test]
fn prune_keeps_a_repository_only_a_commands_section_references() {
    let env = TestEnv::new();
    let (_d, two) = two_locks(&env);
    // The second lock names other.git in its `commands:` section only.
    let lock = two.with_file_name("kasetto.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
            .unwrap()
            .trim()
            .to_string()
    };
    let (url, commit) = (field("url:"), field("commit:"));
    write_file(
        &lock,
        format!(
            "version: 1\nsources: []\ncommands:\n  - url: {url}\n    requested: default\n    commit: {commit}\n    items:\n      - name: x\n        path: commands/x.md\n        blob: {}\n        installed: {{}}\n",
            "c".repeat(40)
        ),
    );
    let doc = json(&env, &["cache", "prune"], 0);
    assert_eq!(doc["removed"], serde_json::json!([]), "{doc}");
    assert_eq!(dbs(&env).len(), 2);
}

/// The whole-run memos (`<cache>/runs/`, runmemo.rs) are dropped by a prune, and the next no-op
/// sync records its own again.
#[test]
fn prune_drops_the_run_memos() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/commands/review.md"),
        "---\ndescription: review\n---\nReview it.\n",
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\ncommands:\n  - source: ./pack\n    commands: \"*\"\n",
    );
    let runs = env.cache().join("runs");
    let memos = || std::fs::read_dir(&runs).map_or(0, |d| d.count());
    env.kst().arg("sync").assert().success();
    // A no-op records the memo once what it witnessed is settled (racy rule).
    for _ in 0..200 {
        crate::perf_smoke::settle(&env);
        env.kst().arg("sync").assert().success();
        if memos() > 0 {
            break;
        }
    }
    assert_eq!(memos(), 1, "a settled no-op sync recorded no run memo");
    env.kst().args(["cache", "prune"]).assert().success();
    assert!(!runs.exists(), "prune left the run memos");
    env.kst().arg("sync").assert().success();
    assert_eq!(memos(), 1, "the next no-op did not record its memo again");
}
