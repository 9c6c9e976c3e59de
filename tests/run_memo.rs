//! The whole-run no-op memo of `kst sync` (`runmemo.rs`): a sync that found every command and
//! instruction of local sources up to date records the stat data of every path its result
//! depends on; the next one with the same invocation checks them and says the same. Proven
//! here: a hit says exactly what the full run said and writes nothing; every change the
//! result depends on is a full run with the full run's result; nothing is recorded for a run
//! the memo cannot witness or that said anything but its summary; a damaged or foreign memo is
//! a full run; `--json` and `-v` are never answered.
//!
//! "Answered by the memo" is the debug build's `run-memo-hits` counter.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use crate::linear_cost::counter;
use crate::perf_smoke::{set_mtime, settle};
use crate::support::*;

const AGENTS: &str = "agent: [claude-code, cursor, gemini-cli]\nscope: project\n";

const FILES: &str = "commands:\n  - source: ./pack\n    commands: \"*\"\ninstructions:\n  - source: ./pack\n    instructions: \"*\"\n";

fn command(i: usize) -> String {
    format!("---\ndescription: command {i}\n---\nDo $ARGUMENTS number {i}.\n")
}

fn instruction(i: usize) -> String {
    format!("---\ndescription: rule {i}\nalwaysApply: true\n---\nFollow rule number {i}.\n")
}

/// A local pack in the project (commands c1..c3 and ns:x, instructions r1, r2), the user's
/// own CLAUDE.md text, and a config taking all of it (`extra` appended) into three agents.
fn project(env: &TestEnv, extra: &str) {
    let pack = env.project_path("pack");
    for i in 1..=3 {
        write_file(pack.join(format!("commands/c{i}.md")), command(i));
    }
    write_file(pack.join("commands/ns/x.md"), command(9));
    for i in 1..=2 {
        write_file(pack.join(format!("instructions/r{i}.md")), instruction(i));
    }
    write_file(env.project_path("CLAUDE.md"), "# My project\n\nMy notes.\n");
    write_file(
        env.project_path("kasetto.yaml"),
        format!("{AGENTS}{FILES}{extra}"),
    );
}

/// `kst sync ARGS` with the debug counters on.
fn run(env: &TestEnv, args: &[&str]) -> Output {
    env.kst()
        .arg("sync")
        .args(args)
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: kst sync failed:\n{}",
        text(out)
    );
}

fn hits(out: &Output) -> usize {
    counter(out, "run-memo-hits")
}

/// A run that must be a full one (not answered by the memo).
#[track_caller]
fn full(env: &TestEnv, args: &[&str], what: &str) -> Output {
    let out = run(env, args);
    assert_eq!(
        hits(&out),
        0,
        "{what}: answered by the memo:\n{}",
        text(&out)
    );
    out
}

/// A run that must be answered by the memo.
#[track_caller]
fn hit(env: &TestEnv, args: &[&str], what: &str) -> Output {
    let out = run(env, args);
    assert_eq!(
        hits(&out),
        1,
        "{what}: not answered by the memo:\n{}",
        text(&out)
    );
    ok(&out, what);
    out
}

/// The summary line, without its time.
fn summary(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("Synced:") || l.starts_with("Would sync:"))
        .unwrap_or_else(|| panic!("no summary in:\n{}", text(out)));
    line.rsplit_once(" in ").unwrap().0.to_string()
}

/// Every line said, but the counters, with the summary's time taken out.
fn said(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("kst-debug-counters:"))
        .map(|l| match l.rsplit_once(" in ") {
            Some((s, _)) if l.starts_with("Synced:") || l.starts_with("Would sync:") => {
                s.to_string()
            }
            _ => l.to_string(),
        })
        .collect()
}

/// The memo files in the cache.
fn memos(env: &TestEnv) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(env.cache().join("runs"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Settled, then a full sync that finds everything up to date and records the memo.
#[track_caller]
fn record(env: &TestEnv, args: &[&str]) -> Output {
    settle(env);
    let before = memos(env).len();
    let out = full(env, args, "the recording run");
    ok(&out, "the recording run");
    assert!(
        summary(&out).contains("up to date"),
        "the recording run changed things:\n{}",
        text(&out)
    );
    assert!(
        memos(env).len() > before || !memos(env).is_empty(),
        "no memo recorded:\n{}",
        text(&out)
    );
    out
}

/// The project installed, and a memo recorded of its no-op; the next plain sync is a hit.
fn memoised(env: &TestEnv) -> Output {
    project(env, "");
    let first = full(env, &[], "install");
    ok(&first, "install");
    assert!(summary(&first).contains("6 added"), "{}", text(&first));
    assert_eq!(
        memos(env),
        Vec::<PathBuf>::new(),
        "a run that changed things was memoised"
    );
    record(env, &[])
}

/// Every entry under `dir` with its bytes and its stat data (size, mtime, ctime, inode).
fn stamped(dir: &Path) -> (Snapshot, BTreeMap<PathBuf, [i64; 6]>) {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, [i64; 6]>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            out.insert(
                p.clone(),
                [
                    m.size() as i64,
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.ino() as i64,
                ],
            );
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut stats = BTreeMap::new();
    walk(dir, &mut stats);
    (read_tree_snapshot(dir), stats)
}

/// The same size, one byte changed, mtime put back (only the ctime moves).
fn same_size_edit(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let before = fs::read_to_string(path).unwrap();
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let after = before.replacen(from, to, 1);
    assert_ne!(before, after, "{from:?} is not in {}", path.display());
    fs::write(path, after).unwrap();
    set_mtime(path, mtime);
}

#[test]
fn a_warm_noop_is_answered_by_the_memo_and_says_what_the_full_run_said() {
    let env = TestEnv::new();
    let recorded = memoised(&env);
    let (bytes, stats) = stamped(&env.project());
    // The last sync's record for `kst doctor`, taken away: the memo's answer writes it again.
    let last = env.xdg_data().join("kasetto/last-sync");
    let records: Vec<_> = fs::read_dir(&last)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    fs::remove_file(&records[0]).unwrap();

    let out = hit(&env, &[], "a warm no-op");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        summary(&out),
        "Synced: 4 commands, 2 instructions up to date"
    );
    assert_eq!(said(&out), said(&recorded), "the memo said something else");
    assert!(out.stdout.is_empty());
    let (bytes_after, stats_after) = stamped(&env.project());
    assert_snapshots_eq(&bytes, &bytes_after);
    assert_eq!(stats, stats_after, "the memo's answer touched the project");

    let doc: serde_json::Value = serde_json::from_slice(
        &env.kst()
            .args(["doctor", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(doc["last_sync"]["command"], "sync", "{doc}");
    assert_eq!(doc["last_sync"]["ok"], true, "{doc}");
    assert_eq!(
        doc["last_sync"]["lock"],
        env.project_path("kasetto.lock").display().to_string(),
        "{doc}"
    );
    // And again: a hit leaves the memo as it was.
    hit(&env, &[], "a second warm no-op");
}

#[test]
fn a_same_size_edit_of_a_written_command_with_its_mtime_put_back_is_repaired() {
    let env = TestEnv::new();
    memoised(&env);
    let file = env.project_path(".claude/commands/c3.md");
    let want = fs::read_to_string(&file).unwrap();
    same_size_edit(&file, "number 3", "NUMBER 3");
    let out = full(&env, &[], "after the edit");
    ok(&out, "after the edit");
    assert_eq!(
        summary(&out),
        "Synced: 1 repaired (4 commands, 2 instructions)"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), want);
}

#[test]
fn a_same_size_source_edit_with_its_mtime_put_back_is_installed() {
    let env = TestEnv::new();
    memoised(&env);
    let src = env.project_path("pack/commands/c2.md");
    same_size_edit(&src, "number 2", "NUMBER 2");
    let out = full(&env, &[], "after the source edit");
    ok(&out, "after the source edit");
    assert_eq!(
        summary(&out),
        "Synced: 1 updated (4 commands, 2 instructions)"
    );
    assert_eq!(
        fs::read_to_string(env.project_path(".claude/commands/c2.md")).unwrap(),
        fs::read_to_string(&src).unwrap()
    );
}

#[test]
fn a_command_added_to_or_removed_from_the_pack_is_installed_or_removed() {
    let env = TestEnv::new();
    memoised(&env);
    write_file(env.project_path("pack/commands/c4.md"), command(4));
    let out = full(&env, &[], "a command added");
    ok(&out, "a command added");
    assert_eq!(
        summary(&out),
        "Synced: 1 added (5 commands, 2 instructions)"
    );
    assert!(env.project_path(".claude/commands/c4.md").is_file());

    record(&env, &[]);
    hit(&env, &[], "memoised again");
    // One in a sub-folder (`ns/`), whose folder alone changes.
    fs::remove_file(env.project_path("pack/commands/ns/x.md")).unwrap();
    let out = full(&env, &[], "a command removed");
    ok(&out, "a command removed");
    assert!(
        summary(&out).starts_with("Synced: 1 removed ("),
        "{}",
        text(&out)
    );
    assert!(!env.project_path(".claude/commands/ns/x.md").exists());
}

#[test]
fn an_edit_inside_a_kst_block_of_claude_md_is_reported_as_the_full_run_reports_it() {
    let env = TestEnv::new();
    memoised(&env);
    let claude = env.project_path("CLAUDE.md");
    same_size_edit(&claude, "Follow rule number 1.", "FOLLOW rule number 1.");
    let edited = fs::read_to_string(&claude).unwrap();
    let out = full(&env, &[], "after the block edit");
    ok(&out, "after the block edit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CLAUDE.md#") && err.contains("modified locally"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&claude).unwrap(),
        edited,
        "the edit is kept"
    );
    // A run with a warning is not memoised: the next one says it again.
    settle(&env);
    full(&env, &[], "the run after");
    let out = full(&env, &[], "the run after that");
    assert!(String::from_utf8_lossy(&out.stderr).contains("modified locally"));
}

#[test]
fn the_users_own_claude_md_text_edited_is_still_up_to_date_and_kept() {
    let env = TestEnv::new();
    memoised(&env);
    let claude = env.project_path("CLAUDE.md");
    same_size_edit(&claude, "My notes.", "My NOTES.");
    let edited = fs::read_to_string(&claude).unwrap();
    let out = full(&env, &[], "after the user's edit");
    ok(&out, "after the user's edit");
    assert_eq!(
        summary(&out),
        "Synced: 4 commands, 2 instructions up to date"
    );
    assert_eq!(fs::read_to_string(&claude).unwrap(), edited);
    // That run was a no-op: it (or, if the edit was too recent, the next one) is memoised.
    settle(&env);
    run(&env, &[]);
    hit(&env, &[], "memoised again");
}

#[test]
fn an_agent_added_to_the_config_is_a_full_run_that_renders_for_it() {
    let env = TestEnv::new();
    memoised(&env);
    let config = fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replace("gemini-cli]", "gemini-cli, codex]"),
    );
    let out = full(&env, &[], "codex added");
    ok(&out, "codex added");
    assert!(env.project_path("AGENTS.md").is_file(), "{}", text(&out));
}

#[test]
fn the_lock_deleted_or_edited_is_a_full_run() {
    let env = TestEnv::new();
    memoised(&env);
    let lock = env.project_path("kasetto.lock");
    let want = fs::read_to_string(&lock).unwrap();
    fs::remove_file(&lock).unwrap();
    let out = full(&env, &[], "the lock deleted");
    ok(&out, "the lock deleted");
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        want,
        "the lock written again"
    );

    record(&env, &[]);
    hit(&env, &[], "memoised again");
    // A recorded sha of a written file changed (same size): the full run records the right one.
    let sha = want
        .lines()
        .find_map(|l| l.split_once(": sha256:").map(|(_, s)| s.trim()))
        .expect("a sha256 in the lock")
        .to_string();
    let other: String = sha
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    fs::write(&lock, want.replacen(&sha, &other, 1)).unwrap();
    let out = full(&env, &[], "the lock edited");
    ok(&out, "the lock edited");
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        want,
        "the lock put right"
    );
}

/// `rel` in the project moved to `away` (same inodes and stat data) and linked back in its
/// place.
fn link_out(env: &TestEnv, rel: &str, away: &Path) {
    fs::rename(env.project_path(rel), away).unwrap();
    symlink(away, env.project_path(rel));
}

#[test]
fn a_destination_folder_swapped_for_a_symlink_to_a_copy_is_refused_as_the_full_run_refuses() {
    let env = TestEnv::new();
    memoised(&env);
    // The same files (moved: same inodes and stat data) behind a link in the folder's place.
    let away = env.path("outside-commands");
    link_out(&env, ".claude/commands", &away);
    let out = full(&env, &[], "the folder swapped");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(".claude/commands is a symlink"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_pack_swapped_for_a_symlink_out_of_the_project_is_refused_as_the_full_run_refuses() {
    // The config is a stranger's (found in the working folder, never trusted): its sources are
    // read only inside the project. The pack is moved out (same inodes) and linked back.
    let env = TestEnv::new();
    memoised(&env);
    let away = env.path("outside-pack");
    link_out(&env, "pack", &away);
    let out = full(&env, &[], "the pack swapped");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("outside the project"), "{}", text(&out));
}

#[test]
fn a_folder_on_the_way_to_a_source_swapped_for_a_symlink_out_of_the_project_is_refused() {
    // As above, one folder higher: `./packs/main`, with `packs/` moved out and linked back
    // (the source folder itself is untouched: same inode, same ctime).
    let env = TestEnv::new();
    project(&env, "");
    fs::create_dir_all(env.project_path("packs")).unwrap();
    fs::rename(env.project_path("pack"), env.project_path("packs/main")).unwrap();
    let config = fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replace("./pack\n", "./packs/main\n"),
    );
    ok(&full(&env, &[], "install"), "install");
    record(&env, &[]);
    hit(&env, &[], "memoised");
    let away = env.path("outside-packs");
    link_out(&env, "packs", &away);
    let out = full(&env, &[], "packs/ swapped");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("outside the project"), "{}", text(&out));
}

#[test]
fn a_changed_environment_variable_is_a_full_run() {
    let env = TestEnv::new();
    memoised(&env);
    // Too small for any command: the full run refuses every item.
    let out = run_with(&env, &[("KASETTO_MAX_FILE_BYTES", "10")]);
    assert_eq!(hits(&out), 0, "{}", text(&out));
    hit(&env, &[], "back to the recorded environment");
    let out = run_with(&env, &[("KASETTO_ALLOW_UNKNOWN_KEYS", "1")]);
    assert_eq!(hits(&out), 0, "{}", text(&out));
}

fn run_with(env: &TestEnv, vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.kst();
    cmd.arg("sync").env("KASETTO_DEBUG_COUNTERS", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn each_set_of_flags_has_its_own_memo() {
    let env = TestEnv::new();
    memoised(&env);
    for flags in [&["--dry-run"][..], &["--locked"], &["-q"], &["--frozen"]] {
        // Settled already: this full run records its own memo.
        let first = full(&env, flags, "another set of flags");
        ok(&first, "another set of flags");
        let again = hit(&env, flags, "its own memo");
        assert_eq!(said(&again), said(&first), "{flags:?}");
        hit(&env, &[], "the plain sync's memo is still there");
    }
    let out = hit(&env, &["--dry-run"], "dry run");
    assert_eq!(
        summary(&out),
        "Would sync: 4 commands, 2 instructions up to date (dry run, nothing written)"
    );
    assert!(said(&hit(&env, &["-q"], "quiet")).is_empty());
}

#[test]
fn json_and_verbose_runs_are_never_answered_by_the_memo() {
    let env = TestEnv::new();
    memoised(&env);
    let before = memos(&env);
    for flags in [&["--json"][..], &["-v"], &["--json"], &["-v"]] {
        let out = full(&env, flags, "json or verbose");
        ok(&out, "json or verbose");
        settle(&env);
    }
    let out = full(&env, &["--json"], "json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 6, "{doc}");
    assert!(
        String::from_utf8_lossy(&full(&env, &["-v"], "verbose").stderr).contains("= command c1")
    );
    assert_eq!(memos(&env), before, "a json or verbose run recorded a memo");
}

/// Settled syncs of a project set up by `setup` (which installs it): none records a memo.
#[track_caller]
fn never_memoised(env: &TestEnv, what: &str) {
    for _ in 0..2 {
        settle(env);
        full(env, &[], what);
    }
    assert_eq!(
        memos(env),
        Vec::<PathBuf>::new(),
        "{what}: a memo was recorded"
    );
}

/// Skills from a local folder beside commands and instructions are memoised too (their trees
/// are witnessed: tests/run_memo_skills.rs shows each change to one is seen), and the memo
/// says the same summary.
#[test]
fn a_config_with_local_skills_is_memoised_with_its_commands() {
    let env = TestEnv::new();
    project(&env, "skills:\n  - source: ./pack\n    skills: \"*\"\n");
    write_file(
        env.project_path("pack/skills/alpha/SKILL.md"),
        "---\nname: alpha\ndescription: a skill\n---\nBody.\n",
    );
    ok(&full(&env, &[], "install"), "install");
    let recorded = record(&env, &[]);
    let answered = hit(&env, &[], "local skills");
    assert_eq!(said(&answered), said(&recorded));
    assert!(
        summary(&answered).contains("1 skill, "),
        "{}",
        text(&answered)
    );
}

#[test]
fn a_config_with_mcps_is_never_memoised() {
    let env = TestEnv::new();
    project(&env, "mcps:\n  - source: ./pack\n    mcps: [plain]\n");
    write_file(
        env.project_path("pack/mcps/plain.json"),
        "{\"mcpServers\": {\"plain\": {\"command\": \"plain-server\"}}}\n",
    );
    ok(&full(&env, &[], "install"), "install");
    never_memoised(&env, "mcps");
}

#[test]
fn a_config_with_a_git_source_is_never_memoised() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit_files(
        "main",
        &[("commands/g1.md", FileSpec::File(command(7).into_bytes()))],
    );
    let daemon = GitDaemon::start(env.remotes());
    project(&env, "");
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "{AGENTS}commands:\n  - source: ./pack\n    commands: \"*\"\n  - source: {}\n    commands: \"*\"\n",
            daemon.url("pack.git")
        ),
    );
    let out = full(&env, &[], "install");
    ok(&out, "install");
    assert!(
        env.project_path(".claude/commands/g1.md").is_file(),
        "{}",
        text(&out)
    );
    never_memoised(&env, "a git source");
}

#[test]
fn a_run_with_a_broken_item_is_not_memoised() {
    let env = TestEnv::new();
    project(&env, "");
    let config = fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replacen("commands: \"*\"", "commands: [c1, missing]", 1),
    );
    let out = full(&env, &[], "install");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for _ in 0..2 {
        settle(&env);
        let out = full(&env, &[], "broken");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    assert_eq!(memos(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_run_that_warned_is_not_memoised() {
    // The config loader's warning (an unknown key, allowed) is said by every full run: a memo
    // answering would not say it.
    let env = TestEnv::new();
    project(&env, "x-other-tool: 1\n");
    let warned = |out: &Output| {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown key"),
            "{}",
            text(out)
        );
    };
    let out = run_with(&env, &[("KASETTO_ALLOW_UNKNOWN_KEYS", "1")]);
    ok(&out, "install");
    warned(&out);
    for _ in 0..2 {
        settle(&env);
        let out = run_with(&env, &[("KASETTO_ALLOW_UNKNOWN_KEYS", "1")]);
        assert_eq!(hits(&out), 0, "{}", text(&out));
        warned(&out);
    }
    assert_eq!(memos(&env), Vec::<PathBuf>::new());
    // So does a log line asked for with KASETTO_LOG.
    let env = TestEnv::new();
    project(&env, "");
    ok(&full(&env, &[], "install"), "install");
    for _ in 0..2 {
        settle(&env);
        let out = run_with(&env, &[("KASETTO_LOG", "kasetto=debug")]);
        assert_eq!(hits(&out), 0, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("DEBUG"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(memos(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_racy_witness_is_not_recorded() {
    let env = TestEnv::new();
    project(&env, "");
    ok(&full(&env, &[], "install"), "install");
    // A source file's mtime in the future: it could change again within the same tick.
    set_mtime(
        &env.project_path("pack/commands/c1.md"),
        SystemTime::now() + Duration::from_secs(3600),
    );
    settle(&env);
    full(&env, &[], "racy");
    full(&env, &[], "still racy");
    assert_eq!(memos(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_damaged_truncated_or_foreign_memo_is_a_full_run() {
    let env = TestEnv::new();
    let recorded = memoised(&env);
    let [memo] = &memos(&env)[..] else {
        panic!("one memo: {:?}", memos(&env))
    };
    let good = fs::read(memo).unwrap();
    let check = |bytes: &[u8], what: &str| {
        fs::write(memo, bytes).unwrap();
        let out = full(&env, &[], what);
        ok(&out, what);
        assert_eq!(said(&out), said(&recorded), "{what}");
    };
    check(b"", "empty");
    check(b"garbage\n\x00\x01\xff", "garbage");
    let head = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(3)
        .unwrap()
        .0
        + 1;
    check(&good[..head], "its first lines alone");
    // Cut just before each folder's path (each names the test's folder), and a few bytes
    // earlier (wherever what holds its length is): what is left may be a well-formed memo of
    // fewer witnesses, and must not be used.
    let root = env.root().as_os_str().as_encoded_bytes();
    let mut cuts: Vec<usize> = (head..good.len())
        .filter(|&i| good[i..].starts_with(root))
        .flat_map(|i| i.saturating_sub(8)..=i)
        .filter(|&c| c > head && c < good.len())
        .collect();
    cuts.dedup();
    assert!(cuts.len() > 20, "cuts: {cuts:?}");
    for cut in cuts {
        check(&good[..cut], &format!("cut at {cut} of {}", good.len()));
    }
    check(&good[..good.len() - 1], "one byte short");
    // A byte flipped in the stat data.
    let mut flipped = good.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 1;
    check(&flipped, "a byte flipped");

    // A memo of another invocation (the dry run's) in this one's place.
    fs::write(memo, &good).unwrap();
    hit(&env, &[], "put back");
    let before = memos(&env);
    record(&env, &["--dry-run"]);
    let dry: Vec<_> = memos(&env)
        .into_iter()
        .filter(|m| !before.contains(m))
        .collect();
    let [dry] = &dry[..] else { panic!("{dry:?}") };
    fs::copy(dry, memo).unwrap();
    check(&fs::read(memo).unwrap(), "the dry run's memo");
    // Its first line (which names its key) made this one's: the same witnesses, so it may be
    // used, but never to say a dry run's summary.
    let dry_text = fs::read(dry).unwrap();
    let nl = dry_text.iter().position(|b| *b == b'\n').unwrap();
    let (first, rest) = dry_text.split_at(nl);
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let first = String::from_utf8_lossy(first).replace(&name(dry), &name(memo));
    fs::write(memo, [first.as_bytes(), rest].concat()).unwrap();
    let out = run(&env, &[]);
    ok(&out, "the dry run's memo under this key");
    assert!(
        !summary(&out).starts_with("Would sync"),
        "a plain sync said a dry run's summary:\n{}",
        text(&out)
    );
    fs::write(memo, &good).unwrap();
    hit(&env, &[], "put back again");
}

#[test]
fn a_config_made_in_the_working_folder_is_a_full_run_that_takes_it() {
    // No kasetto.yaml in the working folder: the user's global config is the one, and where
    // it was looked for first is witnessed.
    let env = TestEnv::new();
    let pack = env.path("mypack");
    write_file(pack.join("commands/g1.md"), command(1));
    let global = env.xdg_config().join("kasetto/kasetto.yaml");
    write_file(
        &global,
        format!(
            "agent: [claude-code]\nscope: global\ncommands:\n  - source: {}\n    commands: \"*\"\n",
            pack.display()
        ),
    );
    ok(&full(&env, &[], "install"), "install");
    assert!(env.home_path(".claude/commands/g1.md").is_file());
    record(&env, &[]);
    hit(&env, &[], "memoised");
    // The project's own config, now found first.
    write_file(env.project_path("pack/commands/p1.md"), command(2));
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code]\nscope: project\ncommands:\n  - source: ./pack\n    commands: \"*\"\n",
    );
    let out = full(&env, &[], "a project config made");
    ok(&out, "a project config made");
    assert!(summary(&out).contains("1 added"), "{}", text(&out));
    assert!(env.project_path(".claude/commands/p1.md").is_file());
}

#[test]
fn a_parent_config_edited_is_a_full_run() {
    // The agents come from the config's `extends:` parent, which discovery does not look at.
    let env = TestEnv::new();
    project(&env, "");
    write_file(env.project_path("base.yaml"), AGENTS);
    write_file(
        env.project_path("kasetto.yaml"),
        format!("extends: ./base.yaml\n{FILES}"),
    );
    ok(&full(&env, &[], "install"), "install");
    record(&env, &[]);
    hit(&env, &[], "memoised");
    write_file(
        env.project_path("base.yaml"),
        AGENTS.replace("gemini-cli]", "gemini-cli, codex]"),
    );
    let out = full(&env, &[], "the parent edited");
    ok(&out, "the parent edited");
    assert!(env.project_path("AGENTS.md").is_file(), "{}", text(&out));
}

/// The project with CLAUDE.md a link to `docs/CLAUDE.md` (inside it), installed and memoised.
fn linked_claude_md(env: &TestEnv) {
    project(env, "");
    fs::remove_file(env.project_path("CLAUDE.md")).unwrap();
    write_file(
        env.project_path("docs/CLAUDE.md"),
        "# My project\n\nMy notes.\n",
    );
    symlink("docs/CLAUDE.md", env.project_path("CLAUDE.md"));
    ok(&full(env, &[], "install"), "install");
    assert!(
        fs::read_to_string(env.project_path("docs/CLAUDE.md"))
            .unwrap()
            .contains("Follow rule number 1."),
        "written through the link"
    );
    record(env, &[]);
    hit(env, &[], "memoised");
}

#[test]
fn a_block_edited_in_the_file_a_claude_md_link_leads_to_is_seen() {
    let env = TestEnv::new();
    linked_claude_md(&env);
    same_size_edit(
        &env.project_path("docs/CLAUDE.md"),
        "Follow rule number 1.",
        "FOLLOW rule number 1.",
    );
    let out = full(&env, &[], "after the edit behind the link");
    ok(&out, "after the edit behind the link");
    assert!(text(&out).contains("modified locally"), "{}", text(&out));
}

#[test]
fn a_folder_a_claude_md_link_leads_through_swapped_for_a_link_out_of_the_project_is_refused() {
    // `docs/` moved out of the project (its file keeps its inode and ctime) and linked back:
    // the link and what it leads to have the stat data they had, but it now leads out of the
    // project, which the full run refuses to write through.
    let env = TestEnv::new();
    linked_claude_md(&env);
    let away = env.path("outside-docs");
    link_out(&env, "docs", &away);
    let out = full(&env, &[], "docs/ swapped");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("leads out of the project"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_folder_a_linked_pack_leads_through_swapped_for_a_link_out_of_the_project_is_refused() {
    // `pack` is a link to `packs/main` (inside the project: a stranger's config may read it);
    // `packs/` is moved out and linked back.
    let env = TestEnv::new();
    project(&env, "");
    fs::create_dir_all(env.project_path("packs")).unwrap();
    fs::rename(env.project_path("pack"), env.project_path("packs/main")).unwrap();
    symlink("packs/main", env.project_path("pack"));
    ok(&full(&env, &[], "install"), "install");
    record(&env, &[]);
    hit(&env, &[], "memoised");
    let away = env.path("outside-packs");
    link_out(&env, "packs", &away);
    let out = full(&env, &[], "packs/ swapped");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("outside the project"), "{}", text(&out));
}

#[test]
fn a_block_edited_in_the_file_a_global_claude_md_link_leads_to_is_seen() {
    // In the global scope links are followed (a dotfiles setup) and not looked through: what
    // the link leads to is witnessed by its own stat data.
    let env = TestEnv::new();
    let pack = env.path("mypack");
    write_file(pack.join("instructions/r1.md"), instruction(1));
    write_file(env.home_path("dotfiles/CLAUDE.md"), "# Mine\n");
    symlink(
        env.home_path("dotfiles/CLAUDE.md"),
        env.home_path(".claude/CLAUDE.md"),
    );
    write_file(
        env.xdg_config().join("kasetto/kasetto.yaml"),
        format!(
            "agent: [claude-code]\nscope: global\ninstructions:\n  - source: {}\n    instructions: \"*\"\n",
            pack.display()
        ),
    );
    ok(&full(&env, &[], "install"), "install");
    let target = env.home_path("dotfiles/CLAUDE.md");
    assert!(
        fs::read_to_string(&target)
            .unwrap()
            .contains("Follow rule number 1."),
        "written through the link"
    );
    record(&env, &[]);
    hit(&env, &[], "memoised");
    same_size_edit(&target, "Follow rule number 1.", "FOLLOW rule number 1.");
    let out = full(&env, &[], "after the edit behind the link");
    ok(&out, "after the edit behind the link");
    assert!(text(&out).contains("modified locally"), "{}", text(&out));
}
