//! Hostile git servers and remote strings (SPEC 13.4, 13.7, 13.8): a pack that inflates without
//! bound, a lock pinning a commit the repository lacks, control characters in anything that
//! came from outside.

use crate::support::*;

fn config(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
        ),
    );
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Folders under the cache's `git/db` whose name marks a repository moved aside.
fn moved_aside(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.cache().join("git/db"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect()
}

/// A lock pinning a commit the repository does not have: the healthy cache repository is not
/// "damaged" and is never moved aside; the error names the commit and the source.
#[test]
fn a_locked_commit_the_repository_lacks_is_not_cache_damage() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    config(&env, &repo.file_url());
    env.kst().arg("sync").assert().success();
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let real = repo.branch_tip("main").unwrap().to_string();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    assert!(lock.contains(&real), "lock has no commit: {lock}");
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&real, missing),
    );
    for run in 0..2 {
        let a = env.kst().arg("sync").assert().code(1);
        let err = stderr(&a);
        assert!(
            err.contains(missing),
            "run {run}: the commit is not named: {err}"
        );
        assert!(
            err.contains("remotes/pack"),
            "run {run}: the source is not named: {err}"
        );
        assert!(!err.contains("moved"), "run {run}: moved aside: {err}");
        assert_eq!(moved_aside(&env), Vec::<String>::new(), "run {run}: {err}");
    }
}

/// Neither is a branch the remote does not have, over git:// or file://.
#[test]
fn a_missing_branch_is_not_cache_damage() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    let d = GitDaemon::start(env.remotes());
    for url in [repo.file_url(), d.url("pack.git")] {
        config(&env, &url);
        env.kst().arg("sync").assert().success();
        write_file(
            env.project_path("kasetto.yaml"),
            format!(
                "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    branch: gone\n    skills: \"*\"\n"
            ),
        );
        for run in 0..2 {
            let a = env.kst().arg("sync").assert().code(1);
            let err = stderr(&a);
            assert!(
                err.contains("gone"),
                "{url} run {run}: the branch is not named: {err}"
            );
            assert!(
                !err.contains("moved"),
                "{url} run {run}: moved aside: {err}"
            );
            assert_eq!(
                moved_aside(&env),
                Vec::<String>::new(),
                "{url} run {run}: {err}"
            );
        }
    }
}
