//! The warm no-op sync of a locked git source reads nothing from the object database: the lock
//! already names each skill's tree, and a skill is read from the cache only when a copy of it
//! must be written (resolve.rs's fast path, plan.rs). Proven by corrupting every object in the
//! cache repository after the first sync: a no-op still succeeds, a repair fails naming the
//! source, and succeeds again once the objects are back.

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

/// Every object file of the cache repository (packs and loose objects).
fn object_files(env: &TestEnv) -> Vec<PathBuf> {
    let db = fs::read_dir(env.cache().join("git/db"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.join("objects").is_dir())
        .expect("a cache repository");
    let mut out = Vec::new();
    let mut stack = vec![db.join("objects")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".pack")
                || (name.len() == 38 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                out.push(p);
            }
        }
    }
    assert!(!out.is_empty(), "no object files found");
    out
}

/// Make every object unreadable while its existence stays known: a pack keeps its header and
/// trailer (the index and the pack's checksum still agree) with everything between zeroed; a
/// loose object is zeroed. Returns what to restore.
fn corrupt_objects(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    object_files(env)
        .into_iter()
        .map(|p| {
            let orig = fs::read(&p).unwrap();
            let mut bad = orig.clone();
            let (from, to) = if p.extension().is_some_and(|e| e == "pack") {
                (12, bad.len() - 20)
            } else {
                (0, bad.len())
            };
            bad[from..to].fill(0);
            let mut perm = fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            fs::set_permissions(&p, perm).unwrap();
            fs::write(&p, &bad).unwrap();
            (p, orig)
        })
        .collect()
}

fn restore(saved: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in saved {
        fs::write(p, bytes).unwrap();
    }
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

#[test]
fn a_noop_sync_of_a_locked_source_reads_no_object() {
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

    let saved = corrupt_objects(&env);
    // Nothing to write: nothing is read, so the corrupt objects are never noticed.
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

    // A repair must read the skill, before writing anything: it fails, naming the source,
    // and the untouched skill and the lock stay as they are.
    fs::remove_dir_all(installed(&env, "alpha")).unwrap();
    let repair = run(&env, &["sync"]);
    assert!(!repair.status.success(), "{}", text(&repair));
    let out = text(&repair);
    assert!(
        out.contains("alpha") && out.contains("cache repository for file://"),
        "{out}"
    );
    assert!(!installed(&env, "alpha").exists());
    assert!(installed(&env, "beta/SKILL.md").is_file());
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        lock
    );

    restore(&saved);
    for (p, bytes) in &saved {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{}", p.display());
    }
    let repaired = run(&env, &["sync"]);
    assert!(repaired.status.success(), "{}", text(&repaired));
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project_path(SKILLS)));
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        lock
    );
    env.kst().arg("verify").assert().success();
}

#[test]
fn a_lock_whose_tree_does_not_match_its_commit_is_caught_before_writing() {
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
    // Swap alpha's tree id for another (valid) one in the lock, and remove the installed copy:
    // the fast path takes the id from the lock, and the listing must refuse the mismatch.
    let lock = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let tree = lock
        .lines()
        .find_map(|l| l.trim().strip_prefix("tree: "))
        .expect("a tree line")
        .trim_matches('"')
        .to_string();
    let other = "0123456789abcdef0123456789abcdef01234567";
    write_file(env.project_path("kasetto.lock"), lock.replace(&tree, other));
    fs::remove_dir_all(installed(&env, "alpha")).unwrap();
    let out = run(&env, &["sync"]);
    assert!(!out.status.success(), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains(other) && msg.contains(&tree), "{msg}");
    assert!(!installed(&env, "alpha").exists());
}
