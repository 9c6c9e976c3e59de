//! The memo of the parsed lock (`lockmemo.rs`): a run whose lock is the text and the file kst
//! last parsed or wrote does not parse its YAML again; any other text, or the same text in
//! another file (a fresh checkout, a memo planted in a shared cache), is parsed from the file.
//! Checked with kst's own counter of YAML parses, never by timing.

use std::path::PathBuf;

use crate::linear_cost::{counter, local_installed, sync_output};
use crate::support::*;

fn lock_parses(env: &TestEnv, args: &[&str]) -> usize {
    counter(&sync_output(env, args), "lock-parses")
}

/// `kst verify`: its exit code and how many times it parsed a lock's YAML.
fn verify_counted(env: &TestEnv) -> (Option<i32>, usize) {
    let out = env
        .kst()
        .arg("verify")
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    (out.status.code(), counter(&out, "lock-parses"))
}

/// The one memo file of this test's cache.
fn memo(env: &TestEnv) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(env.cache().join("stat"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("lock-")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// The first skill's locked tree id, and another valid one.
fn a_tree_and_another(lock: &str) -> (String, String) {
    let tree = lock
        .lines()
        .find_map(|l| l.trim().strip_prefix("tree: "))
        .expect("a tree in the lock")
        .to_string();
    let other = tree.replace(|c: char| c.is_ascii_hexdigit(), "a");
    assert_ne!(tree, other);
    (tree, other)
}

#[test]
fn a_noop_after_a_sync_parses_no_lock_yaml() {
    // Before the memo, every run parsed the lock's YAML (40 % of a 700-item files no-op).
    let env = TestEnv::new();
    local_installed(&env, 3);
    assert_eq!(
        lock_parses(&env, &[]),
        0,
        "the lock written by kst is read from its memo"
    );
    assert_eq!(lock_parses(&env, &[]), 0);
    // The lock on disk still decides what the next write looks like: nothing changed.
    assert!(env.kst().arg("verify").output().unwrap().status.success());
}

#[test]
fn a_hand_edited_lock_is_read_from_its_text() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let path = env.project_path("kasetto.lock");
    let text = std::fs::read_to_string(&path).unwrap();
    let (tree, other) = a_tree_and_another(&text);
    // Same size, and the mtime put back: only the text (and the ctime) tell.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, text.replacen(&tree, &other, 1)).unwrap();
    crate::perf_smoke::set_mtime(&path, mtime);
    assert_eq!(
        verify_counted(&env),
        (Some(1), 1),
        "verify must parse and see the edited lock"
    );
}

#[test]
fn a_memo_is_not_used_for_the_same_text_in_another_file() {
    // A memo whose recorded text is this lock's, but made for another file (what a memo planted
    // in a shared CI cache, or left from an earlier checkout, looks like), is not used: the
    // file is parsed, and what the memo said does not count.
    let env = TestEnv::new();
    local_installed(&env, 3);
    let path = env.project_path("kasetto.lock");
    let text = std::fs::read_to_string(&path).unwrap();
    let (tree, other) = a_tree_and_another(&text);
    let memo = memo(&env);
    let forged = std::fs::read_to_string(&memo)
        .unwrap()
        .replacen(&tree, &other, 1);
    // The same text, a new file (new inode and ctime), and the forged memo.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &text).unwrap();
    std::fs::write(&memo, forged).unwrap();
    assert_eq!(
        verify_counted(&env),
        (Some(0), 1),
        "the forged memo was used"
    );
    // Parsed once, remembered again for this file.
    assert_eq!(verify_counted(&env), (Some(0), 0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_damaged_memo_is_a_miss() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let memo = memo(&env);
    let header = std::fs::read_to_string(&memo)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    // The right header, then a lock that does not pass the lock's checks; then no JSON.
    for body in [
        "{\"version\":1,\"sources\":[{\"url\":\"x\",\"requested\":\"default\",\"commit\":\"zz\",\"skills\":[]}]}",
        "not json",
    ] {
        std::fs::write(&memo, format!("{header}\n{body}")).unwrap();
        assert_eq!(verify_counted(&env), (Some(0), 1), "{body}");
    }
}
