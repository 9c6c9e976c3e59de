//! The whole-run no-op memo (`runmemo.rs`) for skills from local folders: a settled no-op is
//! answered by the memo (kst's debug counter `run-memo-hits`), and every change to a source
//! skill or an installed copy — including the ones a stat of the skill's folder alone would
//! miss (a same-size edit with its mtime put back, a file added deep inside) — sends the next
//! sync through the whole pipeline, which reports it. A git source is never memoised.

use crate::linear_cost::{counter, local_installed};
use crate::local_fast::edit_in_place;
use crate::perf_smoke::settle;
use crate::support::*;

/// `kst sync` (plain, as people run it): its stderr and whether the memo answered it.
fn sync(env: &TestEnv) -> (String, usize) {
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kst sync failed:\n{err}");
    (err, counter(&out, "run-memo-hits"))
}

/// Settle what was written, let a full no-op record the memo, and check the next sync is
/// answered by it with the same summary.
fn memoised(env: &TestEnv, summary: &str) {
    settle(env);
    // A full run, unless the memo was recorded already (then answered the same).
    let (full, _) = sync(env);
    assert!(full.contains(summary), "{full}");
    let (again, hits) = sync(env);
    assert_eq!(
        hits, 1,
        "a settled no-op was not answered by the memo:\n{again}"
    );
    let line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Synced:"))
            .map(|l| l.rsplit_once(" in ").map_or(l, |(a, _)| a).to_string())
    };
    assert_eq!(line(&again), line(&full), "the memo's summary differs");
}

/// The next sync is a full run that reports `what`.
fn full_run_says(env: &TestEnv, what: &str) {
    let (err, hits) = sync(env);
    assert_eq!(hits, 0, "the memo answered over a change ({what}):\n{err}");
    assert!(err.contains(what), "expected {what:?}:\n{err}");
}

#[test]
fn a_local_skills_noop_is_memoised_and_every_change_is_seen() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let summary = "3 skills up to date";
    memoised(&env, summary);

    // An installed copy edited in place, same size, mtime put back.
    let installed = env.project_path(".claude/skills/skill-001");
    edit_in_place(&installed.join("reference/guide.md"), "line", "LINE");
    full_run_says(&env, "repaired");
    memoised(&env, summary);

    // A file added deep inside an installed copy (its folder changes, not the skill's).
    write_file(installed.join("reference/extra.md"), "extra\n");
    full_run_says(&env, "repaired");
    memoised(&env, summary);

    // A source file edited in place, same size, mtime put back.
    let source = env.project_path("pack/skills/skill-002");
    edit_in_place(&source.join("reference/guide.md"), "line", "LONE");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);

    // A file added deep inside a source skill.
    write_file(source.join("reference/deep/more.md"), "more\n");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);

    // A new skill in the pack.
    write_file(
        env.project_path("pack/skills/skill-new/SKILL.md"),
        skill_md("skill-new", "a new skill"),
    );
    full_run_says(&env, "1 added");
    memoised(&env, "4 skills up to date");

    // A skill removed from the pack.
    std::fs::remove_dir_all(env.project_path("pack/skills/skill-new")).unwrap();
    full_run_says(&env, "1 removed");
    memoised(&env, summary);

    // An installed copy's folder swapped for a symlink to an identical copy.
    let copy = env.path("elsewhere/skill-000");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let skill0 = env.project_path(".claude/skills/skill-000");
    std::fs::rename(&skill0, &copy).unwrap();
    symlink(&copy, &skill0);
    let (err, hits) = sync(&env);
    assert_eq!(
        hits, 0,
        "the memo answered over a symlinked skill folder:\n{err}"
    );
}

#[test]
fn a_git_skill_source_is_not_memoised() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDFs")]));
    let d = GitDaemon::start(env.remotes());
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            d.url("pack.git")
        ),
    );
    sync(&env);
    for _ in 0..3 {
        settle(&env);
        let (err, hits) = sync(&env);
        assert_eq!(hits, 0, "a git source was answered by the memo:\n{err}");
        assert!(err.contains("1 skill up to date"), "{err}");
    }
    assert!(
        !env.cache().join("runs").exists()
            || std::fs::read_dir(env.cache().join("runs")).unwrap().count() == 0,
        "a memo was recorded for a git source"
    );
}

/// A skill whose folder is itself a symlink — a pick's `path:` leading to a link, a `sub-dir`
/// that is one — is read through that link (its tree id is what the link leads to), so what
/// the link leads to is watched entry by entry: an edit there, a file added, is an update.
#[test]
fn a_skill_folder_that_is_a_symlink_is_watched_through_it() {
    let env = TestEnv::new();
    let pack = env.project_path("pack");
    write_file(
        pack.join("real/picked/SKILL.md"),
        skill_md("picked", "a skill picked through a link"),
    );
    write_file(
        pack.join("real/picked/reference/guide.md"),
        "# guide\nline\n",
    );
    symlink("../real/picked", pack.join("links/picked"));
    write_file(
        pack.join("real/rooted/SKILL.md"),
        skill_md("rooted", "a root skill through a link"),
    );
    write_file(pack.join("real/rooted/notes.md"), "notes\nline\n");
    symlink("real/rooted", pack.join("rootlink"));
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills:\n      - { name: picked, path: links }\n  - source: ./pack\n    sub-dir: rootlink\n    skills: \"*\"\n",
    );
    let (first, _) = sync(&env);
    assert!(first.contains("2 added"), "{first}");
    let summary = "2 skills up to date";
    memoised(&env, summary);

    edit_in_place(&pack.join("real/picked/reference/guide.md"), "line", "LINE");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);

    write_file(pack.join("real/picked/reference/more.md"), "more\n");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);

    edit_in_place(&pack.join("real/rooted/notes.md"), "line", "LINE");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);
}

/// A local source that is a git working copy of one skill (its `SKILL.md` at the root): `.git`
/// is no part of the skill (every reader leaves it out of the tree id, at any depth), so git's
/// own bookkeeping there — `git status` rewriting the index, a fetch adding objects — changes
/// nothing the run says, and the memo still answers; the skill's own files are still watched.
#[test]
fn git_bookkeeping_inside_a_skill_is_no_change() {
    let env = TestEnv::new();
    let one = env.project_path("one");
    write_file(
        one.join("SKILL.md"),
        skill_md("one", "a single-skill repository"),
    );
    write_file(one.join("guide.md"), "# guide\nline\n");
    write_file(one.join(".git/index"), "index 1\n");
    write_file(one.join(".git/objects/ab/cdef"), "object\n");
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./one\n    skills: \"*\"\n",
    );
    let (first, _) = sync(&env);
    assert!(first.contains("1 added"), "{first}");
    let summary = "1 skill up to date";
    memoised(&env, summary);

    write_file(one.join(".git/index"), "index 2, rewritten\n");
    write_file(one.join(".git/objects/12/3456"), "another object\n");
    let (err, hits) = sync(&env);
    assert_eq!(hits, 1, "git's bookkeeping cost the memo:\n{err}");
    assert!(err.contains(summary), "{err}");

    edit_in_place(&one.join("guide.md"), "line", "LINE");
    full_run_says(&env, "1 updated");
    memoised(&env, summary);
}

/// `kst sync` with the debug counters, whatever its exit code.
fn sync_any(env: &TestEnv) -> std::process::Output {
    env.kst()
        .arg("sync")
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap()
}

/// The memos recorded so far.
fn memos(env: &TestEnv) -> usize {
    std::fs::read_dir(env.cache().join("runs")).map_or(0, |d| d.count())
}

/// Forget every memo (a settled no-op of the set-up may have recorded one).
fn forget_memos(env: &TestEnv) {
    let _ = std::fs::remove_dir_all(env.cache().join("runs"));
}

/// A skills run that said anything but its summary is never memoised, however often it is run
/// settled: a name found twice in the pack (a warning every run says), a folder kst did not
/// install in a skill's way (a conflict, exit 1), a skill asked for that the pack lacks.
#[test]
fn a_skills_run_that_warned_or_failed_is_not_memoised() {
    // A warning.
    let env = TestEnv::new();
    local_installed(&env, 2);
    write_file(
        env.project_path("pack/skill-000/SKILL.md"),
        skill_md("skill-000", "the same name at the pack's root"),
    );
    sync(&env);
    forget_memos(&env);
    for _ in 0..2 {
        settle(&env);
        let (err, hits) = sync(&env);
        assert_eq!(hits, 0, "{err}");
        assert!(
            err.contains("found at skill-000 and skills/skill-000"),
            "{err}"
        );
    }
    assert_eq!(memos(&env), 0, "a run that warned was memoised");

    // A conflict: a new skill whose folder is already there, not kst's.
    let env = TestEnv::new();
    local_installed(&env, 2);
    write_file(
        env.project_path("pack/skills/skill-new/SKILL.md"),
        skill_md("skill-new", "a new skill"),
    );
    write_file(
        env.project_path(".claude/skills/skill-new/mine.md"),
        "mine\n",
    );
    forget_memos(&env);
    for _ in 0..3 {
        settle(&env);
        let out = sync_any(&env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(counter(&out, "run-memo-hits"), 0, "{err}");
        assert!(err.contains("was not installed by kst"), "{err}");
    }
    assert_eq!(memos(&env), 0, "a run with a conflict was memoised");

    // A skill the pack lacks.
    let config = std::fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    std::fs::remove_dir_all(env.project_path("pack/skills/skill-new")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replace("skills: \"*\"", "skills: [skill-000, skill-gone]"),
    );
    for _ in 0..3 {
        settle(&env);
        let out = sync_any(&env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(counter(&out, "run-memo-hits"), 0, "{err}");
        assert!(err.contains("skill-gone"), "{err}");
    }
    assert_eq!(memos(&env), 0, "a run with a missing skill was memoised");
}

/// The pack's skills that are not picked: discovery reads their `SKILL.md` alone (a picked one
/// is compared whole), so an edit of their other files changes nothing the run says and the
/// memo still answers; their `SKILL.md` edited is still a full run (which says the same).
#[test]
fn only_the_skill_md_of_a_skill_not_picked_is_watched() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let config = std::fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        config.replace("skills: \"*\"", "skills: [skill-000]"),
    );
    let (first, _) = sync(&env);
    assert!(first.contains("2 removed"), "{first}");
    let summary = "1 skill up to date";
    memoised(&env, summary);

    let other = env.project_path("pack/skills/skill-001");
    edit_in_place(&other.join("reference/guide.md"), "line", "LINE");
    write_file(other.join("reference/extra.md"), "extra\n");
    let (err, hits) = sync(&env);
    assert_eq!(hits, 1, "a skill not picked cost the memo:\n{err}");
    assert!(err.contains(summary), "{err}");

    edit_in_place(&other.join("SKILL.md"), "a skill", "A SKILL");
    let (err, hits) = sync(&env);
    assert_eq!(
        hits, 0,
        "the SKILL.md of a skill not picked is not watched:\n{err}"
    );
    assert!(err.contains(summary), "{err}");
    // The picked one is still watched whole.
    edit_in_place(
        &env.project_path("pack/skills/skill-000/reference/guide.md"),
        "line",
        "LINE",
    );
    full_run_says(&env, "1 updated");
}
