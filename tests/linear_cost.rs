//! No quadratic step (SPEC 14, issue 15), checked structurally, never by timing: a debug build
//! run with `KASETTO_DEBUG_COUNTERS=1` prints how many tree objects it read from the cache and
//! how many files' contents it read (`failpoint::count`).

use std::path::Path;

use crate::support::*;

const SKILLS: &str = ".claude/skills";

/// (tree reads, file reads) printed by a debug kst run with `KASETTO_DEBUG_COUNTERS=1`.
fn counters(out: &std::process::Output) -> (usize, usize) {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("kst-debug-counters: "))
        .unwrap_or_else(|| panic!("no counters in the output:\n{err}"));
    let get = |key: &str| -> usize {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    (get("tree-reads"), get("file-reads"))
}

fn sync_counted(env: &TestEnv, args: &[&str]) -> (usize, usize) {
    let out = env
        .kst()
        .arg("sync")
        .args(args)
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kst sync {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    counters(&out)
}

/// A monorepo: `n` skills under `skills/`, each with a SKILL.md and a nested file.
fn monorepo(env: &TestEnv, n: usize) -> String {
    let mut repo = FixtureRepo::init(env.remotes().join("mono.git"));
    let mut files = Vec::new();
    for i in 0..n {
        let name = format!("skill-{i:03}");
        files.push((
            format!("skills/{name}/SKILL.md"),
            FileSpec::File(skill_md(&name, "a skill").into_bytes()),
        ));
        files.push((
            format!("skills/{name}/reference/guide.md"),
            FileSpec::File(format!("# {name}\n").into_bytes()),
        ));
    }
    repo.commit_files("main", &files);
    format!("file://{}", env.remotes().join("mono.git").display())
}

fn config(env: &TestEnv, source: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {source}\n    skills: \"*\"\n"
        ),
    );
}

#[test]
fn a_monorepo_is_read_one_tree_at_a_time() {
    // Before: `Tree::get_path("skills/<name>")` re-read the whole `skills` tree for every skill
    // (libgit2 caches no tree over 4 KiB): O(skills × entries).
    for n in [10, 60] {
        let env = TestEnv::new();
        config(&env, &monorepo(&env, n));
        // Resolution reads the root, `skills/`, and each skill's folder once to find its
        // SKILL.md; listing a skill reads its own folders (not counted: they are read once).
        let (first, _) = sync_counted(&env, &[]);
        assert!(
            first <= n + 2,
            "{n} skills: {first} tree reads on the first sync (at most {})",
            n + 2
        );
        assert!(
            env.project_path(Path::new(SKILLS).join("skill-000"))
                .is_dir()
        );
        // The no-op checks every locked tree id against `<commit>:skills/<name>`: the root and
        // `skills/` are read once, whatever the number of skills.
        let (noop, _) = sync_counted(&env, &[]);
        assert!(
            noop <= 2,
            "{n} skills: {noop} tree reads on a no-op (the root and skills/ only)"
        );
        // An offline re-sync into an empty folder lists every skill: still one read of
        // `skills/`, not one per skill.
        std::fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
        let (offline, _) = sync_counted(&env, &["--offline"]);
        assert!(
            offline <= 2,
            "{n} skills: {offline} indexed tree reads on an offline re-sync"
        );
        assert!(
            env.project_path(Path::new(SKILLS).join("skill-000/reference/guide.md"))
                .is_file()
        );
    }
}
