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

/// A pack with a tiny skill, and next to it a delta bomb: a 4 KiB blob and two deltas of a few
/// hundred bytes that build a 256 KiB and a 16 MiB blob. Returns the pack's size.
fn bomb_repo(env: &TestEnv) -> (FixtureRepo, usize) {
    let mut repo = FixtureRepo::init(env.remotes().join("bomb.git"));
    let (ids, pack_len) = crate::support::pack::write_delta_bomb(&repo, 4096, 64, 2);
    let tiny = repo.write_blob(skill_md("tiny", "a tiny skill").as_bytes());
    let bomb_md = repo.write_blob(skill_md("bomb", "a delta bomb").as_bytes());
    let tiny_tree = repo.write_raw_tree(&[("SKILL.md", MODE_BLOB, tiny)]);
    let bomb_tree = repo.write_raw_tree(&[
        ("0.bin", MODE_BLOB, ids[0]),
        ("1.bin", MODE_BLOB, ids[1]),
        ("2.bin", MODE_BLOB, ids[2]),
        ("SKILL.md", MODE_BLOB, bomb_md),
    ]);
    let skills = repo.write_raw_tree(&[
        ("bomb", MODE_TREE, bomb_tree),
        ("tiny", MODE_TREE, tiny_tree),
    ]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    (repo, pack_len)
}

fn config_only_tiny(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: [tiny]\n"
        ),
    );
}

/// The delta bomb over git:// with only the tiny skill selected: no object is built past the
/// file cap (lowered here to 4 MiB so the fixture stays small; the default is 100 MiB), the
/// fetch fails naming the cap and its variable, and the cache repository is not "damaged".
#[test]
fn a_delta_bomb_stops_at_the_file_cap_before_it_is_inflated() {
    let env = TestEnv::new();
    let (_repo, pack_len) = bomb_repo(&env);
    assert!(pack_len < 16 << 10, "the bomb pack is {pack_len} bytes");
    let d = GitDaemon::start(env.remotes());
    for url in [d.url("bomb.git"), _repo.file_url()] {
        config_only_tiny(&env, &url);
        let a = env
            .kst()
            .arg("sync")
            .env("KASETTO_MAX_FILE_BYTES", (4u64 << 20).to_string())
            .assert()
            .code(1);
        let err = stderr(&a);
        assert!(
            err.contains("KASETTO_MAX_FILE_BYTES")
                && err.contains("inflates to more than 4194304 bytes"),
            "{url}: the cap is not named: {err}\n{}",
            d.log()
        );
        assert!(!err.contains("moved"), "{url}: moved aside: {err}");
        assert_eq!(moved_aside(&env), Vec::<String>::new(), "{url}: {err}");
        assert!(
            !env.project_path(".claude/skills/tiny").exists(),
            "{url}: installed from a refused pack: {err}"
        );
    }
}

/// More bytes received than KASETTO_MAX_FETCH_BYTES: the transfer stops and says which cap.
#[test]
fn a_fetch_stops_past_the_byte_cap() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("big.git"));
    // 256 KiB that zlib cannot shrink.
    let mut x = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..256 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut files = skill_pack("skills", &[("tiny", "a tiny skill")]);
    files.push(("data/noise.bin".into(), FileSpec::file(noise)));
    repo.commit("main", &files);
    let d = GitDaemon::start(env.remotes());
    config_only_tiny(&env, &d.url("big.git"));
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FETCH_BYTES", "65536")
        .assert()
        .code(1);
    let err = stderr(&a);
    assert!(
        err.contains("KASETTO_MAX_FETCH_BYTES") && err.contains("more than 65536 bytes"),
        "the cap is not named: {err}"
    );
    assert_eq!(moved_aside(&env), Vec::<String>::new(), "{err}");
    // Under the default caps the same fetch goes through.
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/tiny/SKILL.md").is_file());
}

/// A pack announcing more objects than KASETTO_MAX_FETCH_OBJECTS stops at its header.
#[test]
fn a_fetch_stops_past_the_object_cap() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("many.git"));
    repo.commit(
        "main",
        &skill_pack("skills", &[("a", "one"), ("b", "two"), ("c", "three")]),
    );
    let d = GitDaemon::start(env.remotes());
    config(&env, &d.url("many.git"));
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FETCH_OBJECTS", "4")
        .assert()
        .code(1);
    let err = stderr(&a);
    assert!(
        err.contains("KASETTO_MAX_FETCH_OBJECTS") && err.contains("more than 4 objects"),
        "the cap is not named: {err}"
    );
    assert_eq!(moved_aside(&env), Vec::<String>::new(), "{err}");
}
