//! The warm no-op of commands and instructions (SPEC 14, `files/fast.rs`): an item whose source
//! file and destinations are unchanged by their stat data is neither read nor rendered, and
//! every change is still seen — a same-size edit with its mtime put back (ctime moves), an edit
//! inside a CLAUDE.md block, a racy file — and a git source's blob ids come from the commit,
//! never from the lock.
//!
//! "Reads no file" is proven by the kernel (an inotify watch on the whole project, pack
//! included) and, for a git source, by the debug build's count of blobs read.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value as Json;

use crate::perf_smoke::{OpenWatch, set_mtime, settle};
use crate::support::*;

const AGENTS: &str = "agent: [claude-code, cursor, gemini-cli]\nscope: project\n";

fn command(i: usize) -> String {
    format!("---\ndescription: command {i}\n---\nDo $ARGUMENTS number {i}.\n")
}

fn instruction(i: usize) -> String {
    format!("---\ndescription: rule {i}\nalwaysApply: true\n---\nFollow rule number {i}.\n")
}

/// A local pack in the project (commands c1..c3 and ns:x, instructions r1, r2) synced into
/// three agents, then synced again once settled, so the stat caches know every file.
fn installed(env: &TestEnv) {
    let pack = env.project_path("pack");
    for i in 1..=3 {
        write_file(pack.join(format!("commands/c{i}.md")), command(i));
    }
    write_file(pack.join("commands/ns/x.md"), command(9));
    for i in 1..=2 {
        write_file(pack.join(format!("instructions/r{i}.md")), instruction(i));
    }
    // The user's own text around kst's blocks.
    write_file(env.project_path("CLAUDE.md"), "# My project\n\nMy notes.\n");
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "{AGENTS}commands:\n  - source: ./pack\n    commands: \"*\"\ninstructions:\n  - source: ./pack\n    instructions: \"*\"\n"
        ),
    );
    sync(env, "install");
    settle(env);
    sync(env, "warm the caches");
    settle(env);
}

fn sync_args(env: &TestEnv, args: &[&str], what: &str) -> Json {
    let out = env
        .kst()
        .args(["sync", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: kst sync failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sync(env: &TestEnv, what: &str) -> Json {
    sync_args(env, &[], what)
}

/// item name → action.
fn actions(doc: &Json) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn all(action: &str) -> Vec<(String, String)> {
    ["c1", "c2", "c3", "ns:x", "r1", "r2"]
        .iter()
        .map(|n| (n.to_string(), action.to_string()))
        .collect()
}

/// The files opened under the project since the last call, less the config and the lock (and
/// the lock's temporary file), which every sync reads.
fn opened(watch: &OpenWatch) -> BTreeSet<PathBuf> {
    watch
        .opened()
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("kasetto.")
        })
        .collect()
}

/// Every opened file belongs to `item` (its name is in the file's name): nothing of another
/// item was read.
fn only_of(opened: &BTreeSet<PathBuf>, item: &str) {
    for p in opened {
        assert!(
            p.file_name().unwrap().to_string_lossy().contains(item),
            "{} was opened, which is not {item}'s; opened: {opened:?}",
            p.display()
        );
    }
}

#[test]
fn a_files_noop_opens_no_source_and_no_written_file() {
    let env = TestEnv::new();
    installed(&env);
    let watch = OpenWatch::new(&env.project());
    let doc = sync(&env, "no-op");
    assert_eq!(actions(&doc), all("unchanged"));
    assert_eq!(opened(&watch), BTreeSet::new(), "a no-op sync opened files");
    // The same again (the cache was kept as it was).
    assert_eq!(actions(&sync(&env, "again")), all("unchanged"));
    assert_eq!(opened(&watch), BTreeSet::new());

    // The watch does see reads: verify proves bytes, so it reads every written file.
    env.kst().arg("verify").assert().success();
    let seen = opened(&watch);
    for f in [
        ".claude/commands/c1.md",
        ".gemini/commands/c1.toml",
        "CLAUDE.md",
    ] {
        assert!(
            seen.contains(&env.project_path(f)),
            "the watch did not see {f} read by verify (is inotify working?): {seen:?}"
        );
    }
}

#[test]
fn an_edited_source_file_is_installed_and_only_it_is_read() {
    let env = TestEnv::new();
    installed(&env);
    let src = env.project_path("pack/commands/c2.md");
    let watch = OpenWatch::new(&env.project());

    // A same-size edit with its mtime put back: the ctime moved, so it is read.
    let mtime = fs::metadata(&src).unwrap().modified().unwrap();
    let edited = command(2).replace("number", "NUMBER");
    fs::write(&src, &edited).unwrap();
    set_mtime(&src, mtime);
    let doc = sync(&env, "same-size source edit");
    let mut want = all("unchanged");
    want[1].1 = "updated".into();
    assert_eq!(actions(&doc), want);
    assert_eq!(
        fs::read_to_string(env.project_path(".claude/commands/c2.md")).unwrap(),
        edited
    );
    let seen = opened(&watch);
    assert!(seen.contains(&src), "{seen:?}");
    only_of(&seen, "c2");

    // An edit that changes the size.
    settle(&env);
    let grown = format!("{edited}One more line.\n");
    fs::write(&src, &grown).unwrap();
    let doc = sync(&env, "source edit");
    assert_eq!(actions(&doc), want);
    assert_eq!(
        fs::read_to_string(env.project_path(".claude/commands/c2.md")).unwrap(),
        grown
    );
    only_of(&opened(&watch), "c2");
    env.kst().arg("verify").assert().success();
}

#[test]
fn a_same_size_edit_of_a_written_command_with_its_mtime_put_back_is_repaired() {
    let env = TestEnv::new();
    installed(&env);
    let file = env.project_path(".gemini/commands/c3.toml");
    let before = fs::read(&file).unwrap();
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let mut edited = before.clone();
    let at = edited.iter().position(|b| *b == b'3').unwrap();
    edited[at] = b'4';
    let watch = OpenWatch::new(&env.project());
    fs::write(&file, &edited).unwrap();
    set_mtime(&file, mtime);
    let _ = watch.opened();
    let doc = sync(&env, "after the edit");
    let mut want = all("unchanged");
    want[2].1 = "repaired".into();
    assert_eq!(actions(&doc), want);
    assert_eq!(fs::read(&file).unwrap(), before, "the edit was undone");
    let seen = opened(&watch);
    assert!(seen.contains(&file), "{seen:?}");
    only_of(&seen, "c3");
}

#[test]
fn a_same_size_edit_inside_a_claude_md_block_is_modified_locally() {
    let env = TestEnv::new();
    installed(&env);
    let claude = env.project_path("CLAUDE.md");
    let before = fs::read_to_string(&claude).unwrap();
    let mtime = fs::metadata(&claude).unwrap().modified().unwrap();
    let edited = before.replacen("Follow rule number 1.", "FOLLOW rule number 1.", 1);
    assert_ne!(edited, before, "rule 1's text is in CLAUDE.md:\n{before}");
    let watch = OpenWatch::new(&env.project());
    fs::write(&claude, &edited).unwrap();
    set_mtime(&claude, mtime);
    let _ = watch.opened();
    let doc = sync(&env, "after the block edit");
    let r1 = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "r1")
        .unwrap();
    assert!(
        r1["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("CLAUDE.md#")
            && w.as_str().unwrap().contains("modified locally")),
        "r1: {r1}"
    );
    assert_eq!(
        fs::read_to_string(&claude).unwrap(),
        edited,
        "the edit is kept"
    );
    // The shared file changed, so its blocks were read; the commands were not.
    let seen = opened(&watch);
    assert!(seen.contains(&claude), "{seen:?}");
    for p in &seen {
        assert!(
            !p.starts_with(env.project_path(".claude/commands"))
                && !p.starts_with(env.project_path("pack/commands")),
            "a command was read: {seen:?}"
        );
    }
    // verify reports it too (it never trusts stat data).
    env.kst().arg("verify").assert().code(1);
}

#[test]
fn a_racy_written_file_is_read_on_every_sync() {
    // A file whose mtime is not older than the moment kst would record it (here: in the
    // future) may still change without its stat data moving, so it is never trusted.
    let env = TestEnv::new();
    installed(&env);
    let racy = env.project_path(".claude/commands/c1.md");
    set_mtime(&racy, SystemTime::now() + Duration::from_secs(3600));
    settle(&env);
    let watch = OpenWatch::new(&env.project());
    for round in 0..3 {
        assert_eq!(actions(&sync(&env, "racy")), all("unchanged"));
        let seen = opened(&watch);
        assert!(seen.contains(&racy), "round {round}: {seen:?}");
        only_of(&seen, "c1");
    }
}

#[test]
fn without_its_stat_cache_a_sync_is_still_right_and_rebuilds_it() {
    let env = TestEnv::new();
    installed(&env);
    let lock = fs::read(env.project_path("kasetto.lock")).unwrap();
    fs::remove_dir_all(env.cache().join("stat")).unwrap();
    assert_eq!(actions(&sync(&env, "no stat cache")), all("unchanged"));
    settle(&env);
    for f in fs::read_dir(env.cache().join("stat")).unwrap() {
        let f = f.unwrap().path();
        if f.file_name().unwrap() != "clock" {
            fs::write(f, b"garbage").unwrap();
        }
    }
    assert_eq!(actions(&sync(&env, "damaged stat cache")), all("unchanged"));
    settle(&env);
    assert_eq!(fs::read(env.project_path("kasetto.lock")).unwrap(), lock);
    let watch = OpenWatch::new(&env.project());
    assert_eq!(actions(&sync(&env, "rebuilt")), all("unchanged"));
    assert_eq!(opened(&watch), BTreeSet::new());
}

#[test]
fn an_agent_added_to_the_config_renders_for_it() {
    // The agents are part of what an item's rendering depends on: a new one is written to.
    let env = TestEnv::new();
    installed(&env);
    let config = fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replace("gemini-cli]", "gemini-cli, codex]"),
    );
    let doc = sync(&env, "codex added");
    assert_eq!(doc["summary"]["unchanged"], 4, "{}", doc["summary"]);
    assert!(env.project_path("AGENTS.md").is_file());
    env.kst().arg("verify").assert().success();
}

/// (tree reads, file reads, blob reads) of a debug kst run with `KASETTO_DEBUG_COUNTERS=1`.
fn counted(env: &TestEnv, args: &[&str]) -> (std::process::Output, usize) {
    let out = env
        .kst()
        .args(args)
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("kst-debug-counters: "))
        .unwrap_or_else(|| panic!("no counters in the output:\n{err}"));
    let blobs = line
        .split(' ')
        .find_map(|kv| kv.strip_prefix("blob-reads="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no blob-reads in {line:?}"));
    (out, blobs)
}

/// A git pack of two commits on `main`: the older one's c1 differs. Returns the URL and the
/// older commit.
fn git_pack(env: &TestEnv) -> (String, String) {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let files = |c1: String| {
        let mut files = vec![(
            "commands/c1.md".to_string(),
            FileSpec::File(c1.into_bytes()),
        )];
        for i in 2..=3 {
            files.push((
                format!("commands/c{i}.md"),
                FileSpec::File(command(i).into_bytes()),
            ));
        }
        files.push((
            "instructions/r1.md".to_string(),
            FileSpec::File(instruction(1).into_bytes()),
        ));
        files
    };
    let older = repo.commit_files("main", &files(format!("{}Older.\n", command(1))));
    repo.commit_files("main", &files(command(1)));
    (
        format!("file://{}", env.remotes().join("pack.git").display()),
        older.to_string(),
    )
}

fn lock_blob(lock: &str, path: &str) -> String {
    let mut lines = lock
        .lines()
        .skip_while(|l| !l.contains(&format!("path: {path}")));
    lines.next().expect("the item's path line");
    lines
        .find_map(|l| l.trim().strip_prefix("blob: "))
        .expect("a blob line")
        .trim_matches('"')
        .to_string()
}

#[test]
fn a_git_noop_reads_no_blob_and_a_lock_whose_blob_is_not_the_commits_does_not_pass() {
    let env = TestEnv::new();
    let (url, older) = git_pack(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "{AGENTS}commands:\n  - source: {url}\n    commands: \"*\"\ninstructions:\n  - source: {url}\n    instructions: \"*\"\n"
        ),
    );
    sync(&env, "install");
    settle(&env);
    sync(&env, "warm");
    settle(&env);
    let (out, blobs) = counted(&env, &["sync"]);
    assert!(out.status.success());
    assert_eq!(blobs, 0, "a no-op read blobs from the cache");
    let lock = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let installed = fs::read(env.project_path(".claude/commands/c1.md")).unwrap();

    // The lock names c1's source as c2's blob (and still the sha256 of what is installed):
    // it is not `<commit>:commands/c1.md`. A no-op must not trust it.
    let (b1, b2) = (
        lock_blob(&lock, "commands/c1.md"),
        lock_blob(&lock, "commands/c2.md"),
    );
    assert_ne!(b1, b2);
    let tampered = lock.replacen(&b1, &b2, 1);
    write_file(env.project_path("kasetto.lock"), &tampered);
    // --locked: the lock is not the commit's, so it would change: refused, nothing written.
    let (locked, blobs) = counted(&env, &["sync", "--locked"]);
    assert!(
        !locked.status.success(),
        "--locked passed a lock not the commit's"
    );
    assert!(blobs >= 1, "c1 was not read");
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        tampered
    );
    // A plain sync records the commit's blob again.
    let doc = sync(&env, "repair the lock");
    assert_eq!(doc["summary"]["unchanged"], 4, "{}", doc["summary"]);
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        lock
    );
    settle(&env);

    // The lock pinned to the older commit, with the blob and sha256s of what is installed:
    // every blob id and sha256 the lock names is one kst wrote and found, but the older
    // commit's c1 is another file. It must be installed, not passed as unchanged.
    let head = lock
        .lines()
        .find_map(|l| l.trim().strip_prefix("commit: "))
        .expect("a commit line")
        .trim_matches('"')
        .to_string();
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&head, &older),
    );
    let (locked, _) = counted(&env, &["sync", "--locked"]);
    assert!(
        !locked.status.success(),
        "--locked passed c1's blob at the older commit"
    );
    let doc = sync(&env, "at the older commit");
    let c1 = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "c1")
        .unwrap();
    assert_eq!(c1["action"], "updated", "{c1}");
    assert_ne!(
        fs::read(env.project_path(".claude/commands/c1.md")).unwrap(),
        installed
    );
    env.kst().arg("verify").assert().success();
}

#[test]
fn a_commands_folder_swapped_for_a_symlink_out_of_the_project_is_not_read() {
    // After a warm sync, the pack's `commands/` (or its `ns/` sub-folder) is moved out of the
    // project and a symlink to it put in its place: same files, same stat data, so the
    // source folder's stat cache would know every file. The project's config is not trusted:
    // nothing behind the link is read, by the fast path or the full one, and none of it is
    // taken as unchanged by its stat data.
    for moved in ["pack/commands", "pack/commands/ns"] {
        let env = TestEnv::new();
        installed(&env);
        let away = env.path("outside").join(moved.replace('/', "-"));
        fs::create_dir_all(away.parent().unwrap()).unwrap();
        fs::rename(env.project_path(moved), &away).unwrap();
        symlink(&away, env.project_path(moved));
        let watch = OpenWatch::new(&away);
        let out = env.kst().args(["sync", "--json"]).output().unwrap();
        let seen = watch.opened();
        assert!(
            seen.is_empty(),
            "{moved} swapped for a symlink out of the project: read {seen:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Behind the link is read as absent (SPEC 3 "Trust"): those commands are gone from
        // the pack, never found "unchanged" by their stat data.
        assert!(out.status.success(), "{moved}");
        let doc: Json = serde_json::from_slice(&out.stdout).unwrap();
        let mut want = all("unchanged");
        for (name, action) in &mut want {
            if moved == "pack/commands" && name.starts_with('c') || name == "ns:x" {
                *action = "removed".into();
            }
        }
        assert_eq!(actions(&doc), want, "{moved}");
    }
}

#[test]
fn a_written_folder_swapped_for_a_symlink_after_a_sync_takes_the_full_path() {
    // After a warm sync, a folder kst writes into (or one of its sub-folders) is moved out of
    // the project and a symlink to it put in its place: the same files with the same stat
    // data, so the destination stat cache would know every one. The fast path looks files up
    // in folders opened without following a symlink below the project root (`fsat.rs`): the
    // items there go through the full path, which reports the link and reads nothing behind
    // it; every other item is still unchanged without being read.
    for moved in [".claude/commands", ".claude/commands/ns", ".cursor/rules"] {
        let env = TestEnv::new();
        installed(&env);
        let away = env.path("outside").join(moved.replace('/', "-"));
        fs::create_dir_all(away.parent().unwrap()).unwrap();
        fs::rename(env.project_path(moved), &away).unwrap();
        symlink(&away, env.project_path(moved));
        let behind = OpenWatch::new(&away);
        let inside = OpenWatch::new(&env.project());
        let out = env.kst().args(["sync", "--json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            behind.opened(),
            BTreeSet::new(),
            "{moved}: read through the link"
        );
        assert_eq!(out.status.code(), Some(1), "{moved}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("{moved} is a symlink")),
            "{moved}: {stdout}"
        );
        let doc: Json = serde_json::from_slice(&out.stdout).unwrap();
        let mut want = all("unchanged");
        for (name, action) in &mut want {
            let hit = match moved {
                ".claude/commands" => name.starts_with('c') || name == "ns:x",
                ".claude/commands/ns" => name == "ns:x",
                _ => name.starts_with('r'),
            };
            if hit {
                *action = "broken".into();
            }
        }
        // (An item behind the link is listed twice: for its destinations there, and for its
        // recorded ones, which it cannot prune through the link either.)
        let mut got = actions(&doc);
        got.dedup();
        assert_eq!(got, want, "{moved}");
        // The items the link does not touch were not read (only the files of the items taken
        // through the full path were: their sources, and a rule's blocks in CLAUDE.md and GEMINI.md).
        for p in opened(&inside) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if moved == ".cursor/rules" && (name == "CLAUDE.md" || name == "GEMINI.md") {
                continue;
            }
            assert!(
                want.iter()
                    .any(|(n, a)| a == "broken" && name.contains(n.trim_start_matches("ns:"))),
                "{moved}: {} was read",
                p.display()
            );
        }
    }
}

#[test]
fn a_noop_rewrites_no_stat_cache_and_no_lock() {
    let env = TestEnv::new();
    installed(&env);
    // Every file of kst's stat caches and the lock, as (path, inode, mtime, ctime).
    let snap = || {
        use std::os::unix::fs::MetadataExt;
        let mut files: Vec<_> = fs::read_dir(env.cache().join("stat"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "clock")
            .collect();
        files.push(env.project_path("kasetto.lock"));
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let m = fs::symlink_metadata(&p).unwrap();
                let stamp = (
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                );
                (p, stamp)
            })
            .collect::<Vec<_>>()
    };
    let before = snap();
    assert!(
        before.len() >= 4,
        "the stat caches were not made: {before:?}"
    );
    assert_eq!(actions(&sync(&env, "no-op")), all("unchanged"));
    assert_eq!(snap(), before, "a no-op rewrote a stat cache or the lock");
}
