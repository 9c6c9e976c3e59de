//! The fast path from the lock for local sources (issue 15): a warm no-op of a local folder
//! reads no file of it — no `SKILL.md` either — when every skill lists (through the stat cache)
//! as exactly the tree the lock recorded; anything that changed a skill still goes through
//! discovery in full. Checked with an inotify watch and kst's own read counter, never by timing.

use std::path::Path;

use crate::linear_cost::{local_installed, sync_counted, sync_json};
use crate::perf_smoke::{OpenWatch, set_mtime};
use crate::support::*;

const SKILLS: &str = ".claude/skills";

/// `kst sync --json`, successful: the whole document.
fn sync_doc(env: &TestEnv) -> serde_json::Value {
    let out = env.kst().args(["sync", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn item<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {doc}"))
}

/// Rewrite a file with same-size contents and put its mtime back, as an edit within one
/// timestamp tick would leave it: only its ctime moved.
pub(crate) fn edit_in_place(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len(), "a same-size edit");
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
    set_mtime(path, mtime);
}

#[test]
fn a_local_noop_reads_no_skill_md() {
    // Before: discovery read and parsed every SKILL.md on every sync, for its frontmatter.
    let n = 20;
    let env = TestEnv::new();
    local_installed(&env, n);
    let lock_before = std::fs::read(env.project_path("kasetto.lock")).unwrap();
    let watch = OpenWatch::new(&env.project_path("pack"));
    let (_, reads) = sync_counted(&env, &[]);
    let opened = watch.opened();
    assert!(opened.is_empty(), "a local no-op opened {opened:?}");
    assert_eq!(reads, 0, "file contents read on a local no-op");
    assert_eq!(
        std::fs::read(env.project_path("kasetto.lock")).unwrap(),
        lock_before,
        "a no-op rewrote the lock"
    );
    // And it is a no-op: every skill unchanged (`--json` reads the SKILL.mds for their
    // descriptions, and still finds nothing to do).
    let all = sync_json(&env);
    assert_eq!(all.len(), n);
    assert!(all.iter().all(|(_, a)| a == "unchanged"), "{all:?}");
}

#[test]
fn json_still_has_every_description() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let doc = sync_doc(&env);
    for i in 0..3 {
        let it = item(&doc, &format!("skill-{i:03}"));
        assert_eq!(it["action"], "unchanged");
        assert_eq!(it["description"], "a skill", "{it}");
    }
}

#[test]
fn a_same_size_edit_of_a_skill_md_with_its_mtime_put_back_is_picked_up() {
    // The SKILL.md keeps its size and mtime: the stat cache does not vouch for it (its ctime
    // moved), so the skill's tree is not the locked one and its SKILL.md is read again.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let md = env.project_path("pack/skills/skill-001/SKILL.md");
    edit_in_place(&md, "a skill", "A SKILL");
    let doc = sync_doc(&env);
    assert_eq!(item(&doc, "skill-000")["action"], "unchanged");
    let edited = item(&doc, "skill-001");
    assert_eq!(edited["action"], "updated", "{edited}");
    assert_eq!(edited["description"], "A SKILL");
    let installed = env.project_path(Path::new(SKILLS).join("skill-001/SKILL.md"));
    assert_eq!(
        std::fs::read(installed).unwrap(),
        std::fs::read(&md).unwrap()
    );
    // A changed frontmatter `name:` (same size, mtime put back) is seen on a plain sync: the
    // skill still installs under its folder's name, and the mismatch is warned about.
    edit_in_place(&md, "name: skill-001", "name: skill-00x");
    let out = env.kst().arg("sync").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SKILL.md says name \"skill-00x\""),
        "no warning about the changed name:\n{err}"
    );
    assert!(
        std::fs::read_to_string(env.project_path(Path::new(SKILLS).join("skill-001/SKILL.md")))
            .unwrap()
            .contains("name: skill-00x")
    );
}

#[test]
fn a_renamed_folder_and_an_added_file_resolve_as_on_a_first_sync() {
    let env = TestEnv::new();
    local_installed(&env, 3);
    let pack = env.project_path("pack/skills");
    std::fs::rename(pack.join("skill-001"), pack.join("skill-101")).unwrap();
    write_file(pack.join("skill-002/reference/extra.md"), "more\n");
    assert_eq!(
        sync_json(&env),
        vec![
            ("skill-000".into(), "unchanged".into()),
            ("skill-001".into(), "removed".into()),
            ("skill-002".into(), "updated".into()),
            ("skill-101".into(), "added".into()),
        ]
    );
    let skills = env.project_path(SKILLS);
    assert!(!skills.join("skill-001").exists());
    assert!(skills.join("skill-101/reference/guide.md").is_file());
    assert_eq!(
        std::fs::read_to_string(skills.join("skill-002/reference/extra.md")).unwrap(),
        "more\n"
    );
    // The next no-op is fast again: nothing of the pack is opened.
    let watch = OpenWatch::new(&env.project_path("pack"));
    sync_counted(&env, &[]);
    sync_counted(&env, &[]);
    assert_eq!(watch.opened().len(), 0);
}

#[test]
fn a_root_skill_renamed_in_its_frontmatter_installs_under_the_new_name() {
    // A source whose root is the skill is named by its frontmatter, which the fast path takes
    // from the lock: a changed `name:` must still be read.
    let env = TestEnv::new();
    write_file(
        env.project_path("solo/SKILL.md"),
        skill_md("solo-aa", "one skill"),
    );
    write_file(env.project_path("solo/notes.md"), "notes\n");
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./solo\n    skills: \"*\"\n",
    );
    sync_counted(&env, &[]);
    sync_counted(&env, &[]);
    let skills = env.project_path(SKILLS);
    assert!(skills.join("solo-aa/notes.md").is_file());
    let watch = OpenWatch::new(&env.project_path("solo"));
    let (_, reads) = sync_counted(&env, &[]);
    assert_eq!(
        (watch.opened().len(), reads),
        (0, 0),
        "the no-op read solo/"
    );
    edit_in_place(
        &env.project_path("solo/SKILL.md"),
        "name: solo-aa",
        "name: solo-bb",
    );
    assert_eq!(
        sync_json(&env),
        vec![
            ("solo-aa".into(), "removed".into()),
            ("solo-bb".into(), "added".into()),
        ]
    );
    assert!(!skills.join("solo-aa").exists());
    assert!(skills.join("solo-bb/notes.md").is_file());
}

#[test]
fn a_lock_naming_another_tree_does_not_pass_for_the_skill() {
    // The lock is a file in the project: a skill is taken from it only when its folder lists
    // as exactly the recorded tree. Here the recorded tree is wrong, so the skill is read and
    // resolved as it is, and the lock is corrected.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let lock_path = env.project_path("kasetto.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let tree = {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&lock).unwrap();
        doc["sources"][0]["skills"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "skill-001")
            .unwrap()["tree"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let fake = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(&lock_path, lock.replace(&tree, fake)).unwrap();
    let watch = OpenWatch::new(&env.project_path("pack/skills/skill-001"));
    sync_counted(&env, &[]);
    assert!(
        watch
            .opened()
            .contains(&env.project_path("pack/skills/skill-001/SKILL.md")),
        "the skill whose lock record is not its tree was not read"
    );
    let fixed = std::fs::read_to_string(&lock_path).unwrap();
    assert!(fixed.contains(&tree) && !fixed.contains(fake), "{fixed}");
}

/// `path-resolves` printed by a debug kst run with `KASETTO_DEBUG_COUNTERS=1`.
fn path_resolves(env: &TestEnv) -> usize {
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    err.lines()
        .find_map(|l| l.strip_prefix("kst-debug-counters: "))
        .and_then(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix("path-resolves="))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no path-resolves counter in:\n{err}"))
}

#[test]
fn a_confined_local_noop_resolves_the_pack_once_not_every_path() {
    // The project's config is not trusted, so its local source may be read only inside the
    // project (SPEC 3 "Trust"). Before: every SKILL.md and every skill folder was resolved
    // in full (`realpath`, a `readlink` per component from `/`), two per skill. Now each
    // folder is judged from its parent's judgement and one lstat: only the pack's root is
    // resolved in full.
    let n = 20;
    let env = TestEnv::new();
    local_installed(&env, n);
    let resolves = path_resolves(&env);
    assert!(
        resolves <= 1,
        "{resolves} full path resolutions for {n} skills on a confined no-op"
    );
    // A changed skill is listed with every check before it is written, its folder resolved
    // in full: one more, not one per skill.
    write_file(
        env.project_path("pack/skills/skill-003/reference/guide.md"),
        "changed\n",
    );
    let resolves = path_resolves(&env);
    assert!(resolves <= 2, "{resolves} for one changed skill");
    assert_eq!(
        std::fs::read_to_string(
            env.project_path(Path::new(SKILLS).join("skill-003/reference/guide.md"))
        )
        .unwrap(),
        "changed\n"
    );
}

#[test]
fn a_skill_taken_from_the_lock_is_listed_with_every_check_before_it_is_written() {
    // A skill taken from the lock is compared by tree id alone; when it must be written (here:
    // its installed copy was deleted) it is listed with every check of resolution first. The
    // lock is a file in the project: one naming the tree of a folder kst refuses (a symlink
    // leading out of the skill) must not let that folder be installed.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let skills = env.project_path(SKILLS);
    // An honest repair first: the copy is written again from the source.
    std::fs::remove_dir_all(skills.join("skill-000")).unwrap();
    let out = env.kst().arg("sync").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(skills.join("skill-000/reference/guide.md")).unwrap(),
        "# guide\nline\n"
    );
    // Now a symlink out of the skill, and a lock recording exactly that folder's tree.
    let bad = env.project_path("pack/skills/skill-001");
    symlink("../../../../outside", bad.join("escape"));
    let pack = env.project_path("pack");
    let git = |args: &[&str]| run_ok(env.git().current_dir(&pack).args(args));
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    let root = git(&["write-tree"]);
    let tree = git(&["rev-parse", &format!("{root}:skills/skill-001")]);
    std::fs::remove_dir_all(pack.join(".git")).unwrap();
    let lock_path = env.project_path("kasetto.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let old = lock
        .split("- name: skill-001")
        .nth(1)
        .and_then(|rest| rest.split("tree: ").nth(1))
        .map(|t| t[..40].to_string())
        .unwrap();
    std::fs::write(&lock_path, lock.replace(&old, &tree)).unwrap();
    std::fs::remove_dir_all(skills.join("skill-001")).unwrap();
    let out = env.kst().args(["sync", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let it = item(&doc, "skill-001");
    assert!(
        it["error"].as_str().is_some_and(|e| e.contains("escape")),
        "{it}"
    );
    // And without --json (the fast path: the lock still records that tree, kept for the
    // broken skill) the same.
    assert!(std::fs::read_to_string(&lock_path).unwrap().contains(&tree));
    let out = env.kst().arg("sync").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("escape"), "{err}");
    assert!(!skills.join("skill-001").exists());
}

#[test]
fn a_lock_naming_a_skill_path_outside_the_project_reads_nothing_there() {
    // The lock is a file in a cloned project (untrusted here: its local source may be read
    // only inside the project). A skill record whose path is absolute must not make the
    // per-folder confinement judgement (each folder judged from its parent and one lstat)
    // call a folder outside the project inside: nothing there is listed, opened or hashed.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let outside = env.path("secret/evil");
    write_file(outside.join("SKILL.md"), skill_md("evil", "not yours"));
    write_file(outside.join("key.txt"), "secret\n");
    let lock_path = env.project_path("kasetto.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains("  skills:\n"), "{lock}");
    let record = format!(
        "  skills:\n  - name: evil\n    path: {}\n    tree: \"0123456789abcdef0123456789abcdef01234567\"\n    installed: []\n",
        outside.display()
    );
    std::fs::write(&lock_path, lock.replacen("  skills:\n", &record, 1)).unwrap();
    let watch = OpenWatch::new(&outside);
    let out = env.kst().arg("sync").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = watch.opened();
    assert!(
        opened.is_empty(),
        "a confined sync read outside the project: {opened:?}"
    );
}

#[test]
fn a_folder_swapped_for_a_symlink_out_of_the_project_after_a_sync_is_not_read() {
    // After a warm sync (stat caches and confinement judged, the lock recording every tree),
    // the pack's root, its `skills/` or one skill's folder is moved out of the project and a
    // symlink to it put in its place: same files, same stat data. The project's config is not
    // trusted, so nothing behind the link may be read — not by the no-op's tree-id check, not
    // by discovery, not by a listing before a write.
    for moved in ["pack", "pack/skills", "pack/skills/skill-001"] {
        let env = TestEnv::new();
        local_installed(&env, 2);
        let installed = env.project_path(Path::new(SKILLS).join("skill-001/SKILL.md"));
        let copy_before = std::fs::read(&installed).unwrap();
        let away = env.path("outside").join(moved.replace('/', "-"));
        std::fs::create_dir_all(away.parent().unwrap()).unwrap();
        std::fs::rename(env.project_path(moved), &away).unwrap();
        symlink(&away, env.project_path(moved));
        let watch = OpenWatch::new(&away);
        let out = env.kst().arg("sync").output().unwrap();
        let opened = watch.opened();
        assert!(
            opened.is_empty(),
            "{moved} swapped for a symlink out of the project: read {opened:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Behind the link is read as absent (SPEC 3 "Trust"): the pack's root is refused,
        // leaving everything as it is; a skill behind a link is gone from the pack.
        if moved == "pack" {
            assert!(!out.status.success(), "{moved}");
            assert_eq!(std::fs::read(&installed).unwrap(), copy_before, "{moved}");
        } else {
            assert!(!installed.exists(), "{moved}");
        }
    }
}

/// Wait until the file system's clock (the mtime of a file touched now) has moved past the
/// last change of everything under `root`, so that a sync's stat caches may record it (the
/// racy rule). A checked condition, not a guess at the timestamp tick.
fn settle(env: &TestEnv, root: &Path) {
    fn newest(dir: &Path, n: &mut std::time::SystemTime) {
        use std::os::unix::fs::MetadataExt;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let c = std::time::UNIX_EPOCH
                + std::time::Duration::new(m.ctime() as u64, m.ctime_nsec() as u32);
            *n = (*n).max(c).max(m.modified().unwrap());
            if m.is_dir() {
                newest(&p, n);
            }
        }
    }
    let mut last = std::time::UNIX_EPOCH;
    newest(root, &mut last);
    let probe = env.path("settle-probe");
    loop {
        std::fs::write(&probe, "").unwrap();
        if std::fs::metadata(&probe).unwrap().modified().unwrap() > last {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Every file under `root` (path, contents, executable), sorted.
fn files_under(root: &Path) -> Vec<(String, Vec<u8>, bool)> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, bool)>) {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                go(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                out.push((
                    rel,
                    std::fs::read(&p).unwrap(),
                    m.permissions().mode() & 0o100 != 0,
                ));
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

/// A named change to make.
type Change<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// The changes of the two tests below: a file added, removed, renamed in a sub-folder, and a
/// file added at the top of the skill, each of which moves only its own folder's mtime.
fn changes(skill: &Path) -> Vec<Change<'_>> {
    vec![
        (
            "added",
            Box::new(move || write_file(skill.join("reference/extra.md"), "more\n")),
        ),
        (
            "removed",
            Box::new(move || std::fs::remove_file(skill.join("reference/guide.md")).unwrap()),
        ),
        (
            "renamed",
            Box::new(move || {
                std::fs::rename(skill.join("scripts/run.sh"), skill.join("scripts/go.sh")).unwrap()
            }),
        ),
        (
            "added at the top",
            Box::new(move || write_file(skill.join("NOTES.md"), "notes\n")),
        ),
    ]
}

#[test]
fn a_file_added_removed_or_renamed_in_a_source_skill_after_a_noop_is_installed() {
    // A local no-op takes each unchanged folder's names from the stat cache instead of reading
    // them (issue 15). Each change below moves its folder's mtime, after no-ops that recorded
    // every folder (settled past the racy window), and is installed.
    let env = TestEnv::new();
    local_installed(&env, 3);
    let pack = env.project_path("pack");
    let source = pack.join("skills/skill-001");
    let installed = env.project_path(Path::new(SKILLS).join("skill-001"));
    for (what, change) in changes(&source) {
        settle(&env, &pack);
        sync_counted(&env, &[]);
        change();
        // A plain sync: the one that takes unchanged skills from the lock (`--json` reads
        // every SKILL.md for its description).
        let out = env.kst().arg("sync").output().unwrap();
        assert!(out.status.success(), "{what}");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("skill-001"), "{what}: not updated:\n{said}");
        assert_eq!(files_under(&installed), files_under(&source), "{what}");
    }
}

#[test]
fn a_file_added_removed_or_renamed_in_an_installed_skill_after_a_noop_is_repaired() {
    // The same on the destination side: an installed skill's folders are taken from the stat
    // cache while unchanged, and a file added, removed or renamed there is seen (the skill is
    // modified locally) and put back as the source has it.
    let env = TestEnv::new();
    local_installed(&env, 3);
    let source = env.project_path("pack/skills/skill-001");
    let skills = env.project_path(SKILLS);
    let installed = skills.join("skill-001");
    for (what, change) in changes(&installed) {
        settle(&env, &skills);
        sync_counted(&env, &[]);
        change();
        let actions = sync_json(&env);
        assert_eq!(actions[1].0, "skill-001");
        assert_ne!(actions[1].1, "unchanged", "{what}: {actions:?}");
        assert_eq!(files_under(&installed), files_under(&source), "{what}");
    }
}

#[test]
fn an_unchanged_local_skill_is_copied_again_without_hashing_its_files() {
    // The offline re-sync of a local folder (issue 15): a skill taken from the lock whose copy
    // is gone is listed, with every check, before it is written; its files' ids are vouched
    // for by the source folder's stat cache (their stat data are the recorded ones), so no
    // file is read and hashed on top of the copy.
    let env = TestEnv::new();
    local_installed(&env, 3);
    let skills = env.project_path(SKILLS);
    let source = env.project_path("pack/skills/skill-001");
    settle(&env, &env.project_path("pack"));
    sync_counted(&env, &[]);
    std::fs::remove_dir_all(skills.join("skill-001")).unwrap();
    let (_, reads) = sync_counted(&env, &["--offline"]);
    assert_eq!(
        reads, 0,
        "source files hashed to re-install an unchanged skill"
    );
    assert_eq!(files_under(&skills.join("skill-001")), files_under(&source));
}

#[test]
fn a_source_file_touched_since_it_was_recorded_is_hashed_before_its_copy_is_written() {
    // The premise broken: one file's stat data are no longer the recorded ones (touched, same
    // contents), so the skill is still the locked tree but that file is hashed again — by the
    // no-op's check, and by the listing before the copy is written (the cache as loaded no
    // longer vouches for it).
    let env = TestEnv::new();
    local_installed(&env, 3);
    let skills = env.project_path(SKILLS);
    let source = env.project_path("pack/skills/skill-001");
    settle(&env, &env.project_path("pack"));
    sync_counted(&env, &[]);
    set_mtime(
        &source.join("reference/guide.md"),
        std::time::SystemTime::now(),
    );
    std::fs::remove_dir_all(skills.join("skill-001")).unwrap();
    let (_, reads) = sync_counted(&env, &["--offline"]);
    assert_eq!(
        reads, 2,
        "the touched file: hashed by the check and by the listing"
    );
    assert_eq!(files_under(&skills.join("skill-001")), files_under(&source));
}
