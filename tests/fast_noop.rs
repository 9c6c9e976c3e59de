//! The warm no-op sync of a locked git source reads no skill from the object database: the lock
//! already names each skill's tree (checked against the commit's trees, which are read), and a
//! skill's files are read from the cache only when a copy must be written (resolve.rs's fast
//! path, plan.rs). Proven by corrupting every *blob* in the cache repository after the first
//! sync: a no-op still succeeds; a repair then notices, moves the repository aside and fetches
//! again.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

const SKILLS: &str = ".claude/skills";

fn pack(env: &TestEnv) -> String {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let mut files = Vec::new();
    for name in ["alpha", "beta"] {
        files.push((
            format!("skills/{name}/SKILL.md"),
            FileSpec::File(skill_md(name, &format!("The {name} skill")).into_bytes()),
        ));
        files.push((
            format!("skills/{name}/reference/guide.md"),
            FileSpec::File(b"# guide\n".to_vec()),
        ));
    }
    repo.commit_files("main", &files);
    format!("file://{}", env.remotes().join("pack.git").display())
}

fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.kst().args(args).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn installed(env: &TestEnv, skill: &str) -> PathBuf {
    env.project_path(Path::new(SKILLS).join(skill))
}

/// Rewrite the cache repository so that its blobs are unreadable (their bytes zeroed) while
/// commits and trees stay intact: the repository is re-packed by the git CLI with loose objects,
/// and every loose blob is then zeroed. Returns what to restore.
fn corrupt_blobs(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    let db = fs::read_dir(env.cache().join("git/db"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.join("objects").is_dir())
        .expect("a cache repository");
    let git = |args: &[&str]| {
        let out = env
            .git()
            .arg("--git-dir")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Explode every pack into loose objects, then delete the packs.
    let packs: Vec<PathBuf> = fs::read_dir(db.join("objects/pack"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for p in packs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
    {
        let moved = db.join("unpack-me.pack");
        fs::rename(p, &moved).unwrap();
        let out = env
            .git()
            .arg("--git-dir")
            .arg(&db)
            .arg("unpack-objects")
            .stdin(fs::File::open(&moved).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::remove_file(&moved).unwrap();
    }
    for p in packs.iter().filter(|p| p.exists()) {
        fs::remove_file(p).unwrap();
    }
    let blobs = git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objectname) %(objecttype)",
    ]);
    blobs
        .lines()
        .filter(|l| l.ends_with(" blob"))
        .map(|l| {
            let id = &l[..40];
            let p = db.join("objects").join(&id[..2]).join(&id[2..]);
            let orig = fs::read(&p).unwrap();
            let mut perm = fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            fs::set_permissions(&p, perm).unwrap();
            fs::write(&p, vec![0u8; orig.len()]).unwrap();
            (p, orig)
        })
        .collect()
}

#[test]
fn a_noop_sync_of_a_locked_source_reads_no_skill() {
    let env = TestEnv::new();
    let url = pack(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
        ),
    );
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    let lock = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let before = read_tree_snapshot(env.project_path(SKILLS));

    let saved = corrupt_blobs(&env);
    assert!(!saved.is_empty());
    // Nothing to write: no blob is read, so the damage is never noticed.
    let noop = run(&env, &["sync", "--json"]);
    assert!(noop.status.success(), "{}", text(&noop));
    let doc: serde_json::Value = serde_json::from_slice(&noop.stdout).unwrap();
    assert_eq!(doc["lock_changed"], false, "{doc}");
    for item in doc["items"].as_array().unwrap() {
        assert_eq!(item["action"], "unchanged", "{item}");
        // Descriptions come from SKILL.md, which this run did not read.
        assert!(item.get("description").is_none(), "{item}");
    }
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project_path(SKILLS)));
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        lock
    );

    // A repair must read the skill's files: the damage is found before anything is written,
    // the repository is moved aside and fetched again (the source is reachable), in one run.
    fs::remove_dir_all(installed(&env, "alpha")).unwrap();
    let healed = run(&env, &["sync"]);
    assert!(healed.status.success(), "{}", text(&healed));
    assert!(
        text(&healed).contains("moved to"),
        "no warning about the damaged cache: {}",
        text(&healed)
    );
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project_path(SKILLS)));
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        lock
    );
    env.kst().arg("verify").assert().success();
}

#[test]
fn a_lock_whose_tree_is_not_its_commits_does_not_pass_a_noop() {
    let env = TestEnv::new();
    let url = pack(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: [alpha]\n"
        ),
    );
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    // Edit the installed copy *and* the lock's tree id to match it: the lock no longer says
    // what `<commit>:<path>` is. A no-op must not trust it.
    let lock = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let tree = lock
        .lines()
        .find_map(|l| l.trim().strip_prefix("tree: "))
        .expect("a tree line")
        .trim_matches('"')
        .to_string();
    write_file(installed(&env, "alpha").join("SKILL.md"), "tampered\n");
    let tampered_tree = env
        .git()
        .args(["hash-object", "-t", "tree", "--stdin"])
        .output()
        .map(|_| ())
        .ok();
    let _ = tampered_tree;
    let listing = run(&env, &["verify", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let found = doc["skills"][0]["found_tree"]
        .as_str()
        .expect("verify found a different tree")
        .to_string();
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&tree, &found),
    );
    // --locked: the lock is not the commit's, so it would change: refused, nothing written.
    let locked = run(&env, &["sync", "--locked"]);
    assert!(!locked.status.success(), "{}", text(&locked));
    assert_eq!(
        fs::read_to_string(installed(&env, "alpha").join("SKILL.md")).unwrap(),
        "tampered\n"
    );
    // A plain sync restores the commit's content and the true tree id.
    let plain = run(&env, &["sync"]);
    assert!(plain.status.success(), "{}", text(&plain));
    assert!(
        fs::read_to_string(env.project_path("kasetto.lock"))
            .unwrap()
            .contains(&tree)
    );
    env.kst().arg("verify").assert().success();
}
