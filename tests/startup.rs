//! Start-up (issue 15): libgit2 — and OpenSSL with it, milliseconds of every run — is
//! initialised only by a run that opens a repository (`git::setup::init`), and then before any
//! repository is read, so its pack limits (SPEC 13.7) hold on every path. Counted with kst's
//! own debug counter (`libgit2-inits`), never by timing.

use crate::linear_cost::counter;
use crate::support::*;

/// Run kst with the debug counters on; its exit code and how many times it initialised
/// libgit2.
fn inits(env: &TestEnv, args: &[&str]) -> (Option<i32>, usize, String) {
    let out = env
        .kst()
        .args(args)
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), counter(&out, "libgit2-inits"), err)
}

/// A project of local folders (skills and commands), plus the skill sources `extra`.
fn local_project(env: &TestEnv, extra: &[String]) {
    for name in ["alpha", "beta"] {
        write_file(
            env.project_path(format!("pack/skills/{name}/SKILL.md")),
            skill_md(name, "a skill"),
        );
    }
    write_file(
        env.project_path("pack/commands/review.md"),
        "---\ndescription: review\n---\nReview it.\n",
    );
    let extra: String = extra
        .iter()
        .map(|s| format!("  - source: {s}\n    skills: \"*\"\n"))
        .collect();
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n\
             {extra}commands:\n  - source: ./pack\n    commands: \"*\"\n"
        ),
    );
}

/// A sync of local folders — the first one, a no-op, and the read-only commands after it —
/// never initialises libgit2; a config with a git source does, once, on every run that reads
/// it (a warm no-op too: it may need the cache).
#[test]
fn only_a_run_that_may_open_a_repository_initialises_libgit2() {
    let env = TestEnv::new();
    local_project(&env, &[]);
    for args in [
        &["sync"][..],
        &["sync"],
        &["sync", "--dry-run"],
        &["list"],
        &["verify"],
        &["doctor"],
        &["--version"],
        &["--help"],
    ] {
        let (code, n, err) = inits(&env, args);
        assert_eq!(code, Some(0), "kst {args:?}: {err}");
        assert_eq!(n, 0, "kst {args:?} initialised libgit2: {err}");
    }
    assert!(env.project_path(".claude/skills/alpha/SKILL.md").is_file());

    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("gamma", "a git skill")]));
    local_project(&env, &[repo.file_url()]);
    for args in [&["sync"][..], &["sync"], &["list"]] {
        let (code, n, err) = inits(&env, args);
        assert_eq!(code, Some(0), "kst {args:?}: {err}");
        assert_eq!(n, 1, "kst {args:?} with a git source: {err}");
    }
}

/// `kst add` of a git source to a config of local folders: the run loads a workspace with no
/// git source (so it does not initialise libgit2 up front) and then opens a cache repository to
/// probe the new source — that opener initialises libgit2 with its pack limits first, so a
/// delta bomb is refused there as on every fetch: no object past the file cap is built, and
/// the config is left as it was.
#[test]
fn a_delta_bomb_is_refused_when_the_first_repository_is_opened_late() {
    let env = TestEnv::new();
    local_project(&env, &[]);
    let (code, n, err) = inits(&env, &["sync"]);
    assert_eq!((code, n), (Some(0), 0), "{err}");
    let (repo, _) = crate::hostile_server::bomb_repo(&env);
    let before = std::fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    let out = env
        .kst()
        .args(["add", &repo.file_url(), "--skill", "tiny"])
        .env("KASETTO_MAX_FILE_BYTES", (4u64 << 20).to_string())
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("KASETTO_MAX_FILE_BYTES")
            && err.contains("inflates to more than 4194304 bytes"),
        "the cap is not named: {err}"
    );
    assert_eq!(counter(&out, "libgit2-inits"), 1, "{err}");
    assert_eq!(
        std::fs::read_to_string(env.project_path("kasetto.yaml")).unwrap(),
        before
    );
    assert!(!env.project_path(".claude/skills/tiny").exists());
}

/// `kst add` of a git source of commands, instructions or MCP packs to a config of local
/// folders: the workspace named no git source, and the probe resolves the new one on a
/// resolver thread. libgit2 must be initialised before those threads start (on the main
/// thread, where it may write the environment), not by the first repository opened on one
/// (a debug build of the program panics there: "libgit2 initialised while other threads
/// run"; a release build's start-up would write the environment while threads run).
#[test]
fn adding_a_git_source_of_files_initialises_libgit2_before_its_resolvers() {
    let env = TestEnv::new();
    local_project(&env, &[]);
    let (code, n, err) = inits(&env, &["sync"]);
    assert_eq!((code, n), (Some(0), 0), "{err}");
    let mut repo = FixtureRepo::init(env.remotes().join("files.git"));
    repo.commit(
        "main",
        &[
            (
                "commands/lint.md",
                FileSpec::file("---\ndescription: lint\n---\nLint it.\n"),
            ),
            (
                "instructions/style.md",
                FileSpec::file("---\ndescription: style\n---\nBe brief.\n"),
            ),
            (
                "mcps/tool.json",
                FileSpec::file(crate::cmd_fixtures::TOOL_PACK),
            ),
        ],
    );
    for (flag, name) in [
        ("--command", "lint"),
        ("--instruction", "style"),
        ("--mcp", "tool"),
    ] {
        let (code, n, err) = inits(&env, &["add", &repo.file_url(), flag, name, "--no-sync"]);
        assert_eq!(code, Some(0), "kst add {flag}: {err}");
        assert_eq!(n, 1, "kst add {flag}: {err}");
    }
}
