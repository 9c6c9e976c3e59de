//! `kst sync` end to end with a local-folder pack (`source: ./pack`) installed into the project
//! scope of two agents (claude-code → `.claude/skills`, codex → `.agents/skills`).
//!
//! Every test builds its pack in `<project>/pack`, writes `kasetto.yaml`, runs the real binary
//! and checks the file system, the lock and the output byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The two project-scope skills folders of `agent: [claude-code, codex]`.
const CLAUDE: &str = ".claude/skills";
const AGENTS: &str = ".agents/skills";

/// Build `<project>/pack` with `skills/<name>/…` for each name. `pdf` is special: it has an
/// executable script and a relative symlink that stays inside the skill. Files are 0644 (0755
/// for the script) whatever the umask.
fn pack(env: &TestEnv, names: &[&str]) -> PathBuf {
    let root = env.project_path("pack");
    for name in names {
        add_skill(&root, name);
    }
    root
}

fn add_skill(pack_root: &Path, name: &str) {
    let dir = pack_root.join("skills").join(name);
    write_file(
        dir.join("SKILL.md"),
        skill_md(name, &format!("The {name} skill")),
    );
    fs::set_permissions(dir.join("SKILL.md"), fs::Permissions::from_mode(0o644)).unwrap();
    if name == "pdf" {
        write_executable(dir.join("scripts/run.sh"), "#!/bin/sh\necho pdf\n");
        symlink("../SKILL.md", dir.join("docs/skill.md"));
    } else {
        write_file(
            dir.join("reference.md"),
            format!("# {name} reference\n\nline two\n"),
        );
        fs::set_permissions(dir.join("reference.md"), fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// `kasetto.yaml` in the project: project scope, `agents`, one local entry `./pack` picking
/// `skills` (a YAML value: `"*"` or `[a, b]`).
fn config(env: &TestEnv, agents: &str, skills: &str) {
    write_config(
        env,
        &format!(
            "agent: {agents}\nscope: project\nskills:\n  - source: ./pack\n    skills: {skills}\n"
        ),
    );
}

fn write_config(env: &TestEnv, text: &str) {
    write_file(env.project_path("kasetto.yaml"), text);
}

/// The standard setup: pack with `names`, both agents, `skills: [names…]`.
fn setup(env: &TestEnv, names: &[&str]) -> PathBuf {
    let root = pack(env, names);
    config(
        env,
        "[claude-code, codex]",
        &format!("[{}]", names.join(", ")),
    );
    root
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// The change lines (`+`, `~`, `-`, `!` followed by a space) of the human output, sorted,
    /// each with its ` → a, b` destinations sorted (their order is not part of the contract).
    fn changes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .stderr
            .lines()
            .filter(|l| {
                let mut c = l.chars();
                matches!(c.next(), Some('+' | '~' | '-' | '!')) && c.next() == Some(' ')
            })
            .map(|l| match l.split_once(" → ") {
                Some((head, dests)) => {
                    let mut d: Vec<&str> = dests.split(", ").collect();
                    d.sort();
                    format!("{head} → {}", d.join(", "))
                }
                None => l.to_string(),
            })
            .collect();
        out.sort();
        out
    }

    /// The change line of skill `name`, if any.
    fn line_for(&self, name: &str) -> Option<String> {
        self.changes()
            .into_iter()
            .find(|l| l[2..].starts_with(&format!("{name} ")))
    }

    #[track_caller]
    fn assert_no_changes(&self) {
        assert!(
            self.changes().is_empty(),
            "expected no change lines:\n{self:?}"
        );
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self:?}"))
    }
}

fn run(cmd: &mut assert_cmd::Command) -> Run {
    let out = cmd.output().expect("run kst");
    Run {
        code: out.status.code().expect("kst exited by a signal"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// `kst sync ARGS…` in the project.
fn sync(env: &TestEnv, args: &[&str]) -> Run {
    run(env.kst().arg("sync").args(args))
}

/// `kst sync ARGS…`, asserting exit 0.
#[track_caller]
fn sync_ok(env: &TestEnv, args: &[&str]) -> Run {
    let r = sync(env, args);
    assert_eq!(r.code, 0, "kst sync {args:?} failed:\n{r:?}");
    r
}

/// A snapshot reduced to what git records: bytes, the executable bit, symlink targets, and
/// which folders exist (folder modes and the umask are not part of a skill's content).
fn content(dir: impl AsRef<Path>) -> Snapshot {
    read_tree_snapshot(dir)
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                SnapEntry::Dir { .. } => SnapEntry::Dir { mode: 0 },
                SnapEntry::File { mode, bytes } => SnapEntry::File {
                    mode: if mode & 0o100 != 0 { 0o755 } else { 0o644 },
                    bytes,
                },
                other => other,
            };
            (k, v)
        })
        .collect()
}

/// `dest` is a real folder (not a symlink) holding exactly the files of `src`.
#[track_caller]
fn assert_copy(src: &Path, dest: &Path) {
    let md = fs::symlink_metadata(dest)
        .unwrap_or_else(|e| panic!("{} is not installed: {e}", dest.display()));
    assert!(md.is_dir(), "{} is not a folder", dest.display());
    let want = content(src);
    assert!(want.len() > 1, "{} is empty", src.display());
    assert_snapshots_eq(&want, &content(dest));
}

/// Both agents' copies of `name` match `<pack>/skills/<name>`.
#[track_caller]
fn assert_installed(env: &TestEnv, name: &str) {
    let src = env.project_path("pack/skills").join(name);
    for folder in [CLAUDE, AGENTS] {
        assert_copy(&src, &env.project_path(folder).join(name));
    }
}

#[track_caller]
fn assert_absent(path: impl AsRef<Path>) {
    let path = path.as_ref();
    assert!(
        fs::symlink_metadata(path).is_err(),
        "{} should not exist",
        path.display()
    );
}

/// Git's own tree id of `skills/<name>` for each name, computed with the git CLI on a copy
/// of the pack (`git add -A`, `git write-tree`, `git rev-parse <tree>:skills/<name>`).
fn git_trees(env: &TestEnv, pack_root: &Path, names: &[&str]) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("pack");
    run_ok(env.cmd("cp").arg("-a").arg(pack_root).arg(&copy));
    let dir = copy.to_str().expect("utf-8 temp path");
    env.git_ok(&["-C", dir, "init", "-q"]);
    env.git_ok(&["-C", dir, "add", "-A"]);
    let root = env.git_ok(&["-C", dir, "write-tree"]);
    names
        .iter()
        .map(|n| {
            let id = env.git_ok(&["-C", dir, "rev-parse", &format!("{root}:skills/{n}")]);
            (n.to_string(), id)
        })
        .collect()
}

fn read_lock(path: impl AsRef<Path>) -> Yaml {
    let path = path.as_ref();
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("read lock {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("lock does not parse: {e}\n{text}"))
}

fn project_lock(env: &TestEnv) -> Yaml {
    read_lock(env.project_path("kasetto.lock"))
}

/// The lock's skill entries by name, over all sources.
fn locked_skills(lock: &Yaml) -> BTreeMap<String, Yaml> {
    let mut out = BTreeMap::new();
    for src in lock["sources"].as_sequence().expect("sources is a list") {
        for s in src["skills"].as_sequence().expect("skills is a list") {
            let name = s["name"].as_str().expect("skill name").to_string();
            assert!(
                out.insert(name.clone(), s.clone()).is_none(),
                "{name} locked twice"
            );
        }
    }
    out
}

fn locked_tree(env: &TestEnv, name: &str) -> String {
    locked_skills(&project_lock(env))[name]["tree"]
        .as_str()
        .expect("tree")
        .to_string()
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Both agents' destinations of `name`, as written in the lock (sorted).
fn both(name: &str) -> Vec<String> {
    vec![format!("{AGENTS}/{name}"), format!("{CLAUDE}/{name}")]
}

/// Everything a sync may write to: the project, HOME and XDG data (the global lock).
fn world(env: &TestEnv) -> (Snapshot, Snapshot, Snapshot) {
    (
        read_tree_snapshot(env.project()),
        read_tree_snapshot(env.home()),
        read_tree_snapshot(env.xdg_data()),
    )
}

#[track_caller]
fn assert_world_eq(
    before: &(Snapshot, Snapshot, Snapshot),
    after: &(Snapshot, Snapshot, Snapshot),
) {
    assert_snapshots_eq(&before.0, &after.0);
    assert_snapshots_eq(&before.1, &after.1);
    assert_snapshots_eq(&before.2, &after.2);
}

/// Append one byte to a file.
fn append(path: impl AsRef<Path>, bytes: &str) {
    let path = path.as_ref();
    let mut b = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    b.extend_from_slice(bytes.as_bytes());
    fs::write(path, b).unwrap();
}

/// The JSON item named `name`.
fn item<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {doc:#}"))
}

// ---------------------------------------------------------------------------------------------
// 1. First install

#[test]
fn installs_into_both_agents_with_identical_bytes() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let r = sync_ok(&env, &[]);
    assert_installed(&env, "pdf");
    assert_installed(&env, "docx");
    // Nothing else was put into the skills folders (no staging leftovers).
    for folder in [CLAUDE, AGENTS] {
        let mut names: Vec<String> = fs::read_dir(env.project_path(folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["docx", "pdf"], "{folder}");
    }
    let lines = r.changes();
    assert_eq!(
        lines,
        [
            "+ docx (./pack) → .agents/skills/docx, .claude/skills/docx",
            "+ pdf (./pack) → .agents/skills/pdf, .claude/skills/pdf",
        ],
        "{r:?}"
    );
    assert!(r.stderr.contains("Synced: 2 added"), "{r:?}");
}

#[test]
fn install_keeps_the_exec_bit_and_internal_symlinks() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    for folder in [CLAUDE, AGENTS] {
        let skill = env.project_path(folder).join("pdf");
        let script = fs::metadata(skill.join("scripts/run.sh")).unwrap();
        assert_eq!(
            script.permissions().mode() & 0o111,
            0o111,
            "{folder}: run.sh lost +x"
        );
        let md = fs::metadata(skill.join("SKILL.md")).unwrap();
        assert_eq!(
            md.permissions().mode() & 0o111,
            0,
            "{folder}: SKILL.md became executable"
        );
        let link = skill.join("docs/skill.md");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{folder}: docs/skill.md is not a symlink"
        );
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("../SKILL.md"));
        assert_eq!(
            fs::read(&link).unwrap(),
            fs::read(skill.join("SKILL.md")).unwrap(),
            "the link resolves inside the installed skill"
        );
    }
}

#[test]
fn lock_records_local_source_paths_trees_and_destinations() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let text = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    assert!(
        !text.contains(env.root().to_str().unwrap()),
        "absolute path in the lock:\n{text}"
    );
    let lock = project_lock(&env);
    assert_eq!(lock["version"].as_u64(), Some(1), "{text}");
    let sources = lock["sources"].as_sequence().unwrap();
    assert_eq!(sources.len(), 1, "{text}");
    let src = &sources[0];
    assert_eq!(
        src["url"].as_str(),
        Some("./pack"),
        "url as written:\n{text}"
    );
    assert_eq!(src["requested"].as_str(), Some("local"), "{text}");
    assert!(
        src.get("commit").is_none(),
        "a local source has no commit:\n{text}"
    );
    let names: Vec<&str> = src["skills"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docx", "pdf"], "skills sorted by name:\n{text}");
    let trees = git_trees(&env, &root, &["pdf", "docx"]);
    let skills = locked_skills(&lock);
    for name in ["pdf", "docx"] {
        let s = &skills[name];
        assert_eq!(
            s["path"].as_str(),
            Some(format!("skills/{name}").as_str()),
            "{text}"
        );
        assert_eq!(
            s["tree"].as_str(),
            Some(trees[name].as_str()),
            "{name}: tree is git's\n{text}"
        );
        assert_eq!(strings(&s["installed"]), both(name), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Re-run

#[test]
fn rerun_is_a_noop() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let before = world(&env);
    let r = sync_ok(&env, &[]);
    r.assert_no_changes();
    assert!(r.stderr.contains("2 skills up to date"), "{r:?}");
    assert_eq!(r.stdout, "", "human output goes to stderr");
    assert_world_eq(&before, &world(&env));
}

#[test]
fn rerun_with_verbose_lists_unchanged_skills() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let r = sync_ok(&env, &["-v"]);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("= pdf ")),
        "-v shows `= pdf`:\n{r:?}"
    );
    assert!(r.stderr.lines().any(|l| l.starts_with("= docx ")), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Source edits

#[test]
fn editing_a_source_file_updates_the_skill() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let old_tree = locked_tree(&env, "docx");
    let pdf_tree = locked_tree(&env, "pdf");
    let pdf_before = read_tree_snapshot(env.project_path(CLAUDE).join("pdf"));

    append(root.join("skills/docx/reference.md"), "new line\n");
    write_file(root.join("skills/docx/extra/notes.txt"), "added later\n");
    let r = sync_ok(&env, &[]);

    let line = r
        .line_for("docx")
        .unwrap_or_else(|| panic!("no docx line:\n{r:?}"));
    assert!(line.starts_with("~ docx "), "{line}");
    assert!(
        !line.contains("repaired"),
        "an upstream change is an update: {line}"
    );
    assert_eq!(r.line_for("pdf"), None, "pdf did not change:\n{r:?}");
    assert!(r.stderr.contains("1 updated"), "{r:?}");
    assert_installed(&env, "docx");
    let new_tree = locked_tree(&env, "docx");
    assert_ne!(new_tree, old_tree, "the lock's tree must move");
    assert_eq!(new_tree, git_trees(&env, &root, &["docx"])["docx"]);
    assert_eq!(locked_tree(&env, "pdf"), pdf_tree);
    assert_snapshots_eq(
        &pdf_before,
        &read_tree_snapshot(env.project_path(CLAUDE).join("pdf")),
    );
}

#[test]
fn deleting_a_source_file_removes_it_from_the_installed_copies() {
    let env = TestEnv::new();
    let root = setup(&env, &["docx"]);
    sync_ok(&env, &[]);
    fs::remove_file(root.join("skills/docx/reference.md")).unwrap();
    let r = sync_ok(&env, &[]);
    assert!(
        r.line_for("docx").is_some_and(|l| l.starts_with("~ ")),
        "{r:?}"
    );
    assert_installed(&env, "docx");
    assert_absent(env.project_path(CLAUDE).join("docx/reference.md"));
}

// ---------------------------------------------------------------------------------------------
// 4. Pruning

#[test]
fn removing_a_name_from_the_list_prunes_only_that_skill() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx", "xlsx"]);
    // A folder of the user's own beside ours.
    write_file(env.project_path(CLAUDE).join("mine/SKILL.md"), "mine\n");
    sync_ok(&env, &[]);
    let keep: Vec<(PathBuf, Snapshot)> = ["pdf", "xlsx", "mine"]
        .iter()
        .flat_map(|n| [CLAUDE, AGENTS].map(|f| env.project_path(f).join(n)))
        .map(|p| (p.clone(), read_tree_snapshot(&p)))
        .collect();

    config(&env, "[claude-code, codex]", "[pdf, xlsx]");
    let r = sync_ok(&env, &[]);

    assert_eq!(
        r.changes(),
        ["- docx (./pack) → .agents/skills/docx, .claude/skills/docx"],
        "{r:?}"
    );
    assert!(r.stderr.contains("1 removed"), "{r:?}");
    assert_absent(env.project_path(CLAUDE).join("docx"));
    assert_absent(env.project_path(AGENTS).join("docx"));
    for (p, snap) in &keep {
        assert_snapshots_eq(snap, &read_tree_snapshot(p));
    }
    assert!(
        env.project_path("pack/skills/docx/SKILL.md").is_file(),
        "the source is untouched"
    );
    let skills = locked_skills(&project_lock(&env));
    assert_eq!(skills.keys().collect::<Vec<_>>(), ["pdf", "xlsx"]);
}

#[test]
fn removing_a_source_entry_prunes_its_skills_only() {
    let env = TestEnv::new();
    pack(&env, &["pdf", "docx"]);
    add_skill(&env.project_path("other"), "lint");
    let two = "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n  - source: ./other\n    skills: \"*\"\n";
    write_config(&env, two);
    sync_ok(&env, &[]);
    assert_copy(
        &env.project_path("other/skills/lint"),
        &env.project_path(CLAUDE).join("lint"),
    );
    let before_claude = read_tree_snapshot(env.project_path(CLAUDE).join("pdf"));
    let before_agents = read_tree_snapshot(env.project_path(AGENTS).join("docx"));

    config(&env, "[claude-code, codex]", "\"*\"");
    let r = sync_ok(&env, &[]);

    assert_eq!(
        r.changes(),
        ["- lint (./other) → .agents/skills/lint, .claude/skills/lint"],
        "{r:?}"
    );
    assert_absent(env.project_path(CLAUDE).join("lint"));
    assert_absent(env.project_path(AGENTS).join("lint"));
    assert_snapshots_eq(
        &before_claude,
        &read_tree_snapshot(env.project_path(CLAUDE).join("pdf")),
    );
    assert_snapshots_eq(
        &before_agents,
        &read_tree_snapshot(env.project_path(AGENTS).join("docx")),
    );
    let lock = project_lock(&env);
    let urls: Vec<&str> = lock["sources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["./pack"]);
}

#[test]
fn removing_an_agent_prunes_its_folder_only() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    let claude = read_tree_snapshot(env.project_path(CLAUDE));
    config(&env, "[claude-code]", "[pdf]");
    let r = sync_ok(&env, &[]);
    assert_absent(env.project_path(AGENTS).join("pdf"));
    assert_snapshots_eq(&claude, &read_tree_snapshot(env.project_path(CLAUDE)));
    assert!(
        r.changes()
            .iter()
            .any(|l| l.starts_with("- pdf ") && l.contains(".agents/skills/pdf")),
        "{r:?}"
    );
    assert_eq!(
        strings(&locked_skills(&project_lock(&env))["pdf"]["installed"]),
        [format!("{CLAUDE}/pdf")]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Untracked folders at destinations

/// A folder of the user's own at `.claude/skills/docx`, made before kst ever ran.
fn user_docx(env: &TestEnv) -> (PathBuf, Snapshot) {
    let p = env.project_path(CLAUDE).join("docx");
    write_file(p.join("SKILL.md"), "my own docx skill\n");
    write_file(p.join("notes/todo.txt"), "keep me\n");
    let snap = read_tree_snapshot(&p);
    (p, snap)
}

#[test]
fn untracked_folder_is_left_alone_and_reported_broken() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let (mine, snap) = user_docx(&env);
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_snapshots_eq(&snap, &read_tree_snapshot(&mine));
    let line = r
        .line_for("docx")
        .unwrap_or_else(|| panic!("no docx line:\n{r:?}"));
    assert!(line.starts_with("! docx"), "{line}");
    let detail = r
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("! docx"))
        .nth(1)
        .unwrap_or("");
    assert!(
        detail.starts_with("    ")
            && detail.contains(".claude/skills/docx")
            && detail.contains("--force"),
        "the indented error names the folder and the way out: {detail:?}\n{r:?}"
    );
    assert!(r.stderr.contains("1 broken"), "{r:?}");
    // The rest still installs.
    assert_installed(&env, "pdf");
    // The lock never claims the user's folder.
    let skills = locked_skills(&project_lock(&env));
    let claimed: Vec<String> = skills
        .values()
        .flat_map(|s| strings(&s["installed"]))
        .collect();
    assert!(
        !claimed.contains(&format!("{CLAUDE}/docx")),
        "lock claims the user's folder: {claimed:?}"
    );
}

#[test]
fn untracked_folder_stays_untouched_on_later_syncs() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let (mine, snap) = user_docx(&env);
    assert_eq!(sync(&env, &[]).code, 1);
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "still a conflict:\n{r:?}");
    assert!(
        r.line_for("docx").is_some_and(|l| l.starts_with("! ")),
        "{r:?}"
    );
    assert_snapshots_eq(&snap, &read_tree_snapshot(&mine));
    // Dropping the skill from the config must not delete the user's folder either.
    config(&env, "[claude-code, codex]", "[pdf]");
    sync(&env, &[]);
    assert_snapshots_eq(&snap, &read_tree_snapshot(&mine));
}

#[test]
fn force_replaces_an_untracked_folder() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    user_docx(&env);
    let r = sync_ok(&env, &["--force"]);
    assert_installed(&env, "docx");
    assert_installed(&env, "pdf");
    assert!(
        r.line_for("docx").is_some_and(|l| !l.starts_with("! ")),
        "{r:?}"
    );
    assert_eq!(
        strings(&locked_skills(&project_lock(&env))["docx"]["installed"]),
        both("docx")
    );
    // And from now on it is ours: a plain sync is a no-op.
    let r = sync_ok(&env, &[]);
    r.assert_no_changes();
}

#[test]
fn untracked_file_or_symlink_at_a_destination_is_a_conflict_too() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let outside = env.path("elsewhere");
    write_file(outside.join("precious.txt"), "do not touch\n");
    let outside_snap = read_tree_snapshot(&outside);
    write_file(env.project_path(CLAUDE).join("docx"), "a plain file\n");
    symlink(&outside, env.project_path(AGENTS).join("pdf"));
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        fs::read(env.project_path(CLAUDE).join("docx")).unwrap(),
        b"a plain file\n"
    );
    assert_eq!(
        fs::read_link(env.project_path(AGENTS).join("pdf")).unwrap(),
        outside
    );
    assert_snapshots_eq(&outside_snap, &read_tree_snapshot(&outside));
    assert!(
        r.line_for("docx").is_some_and(|l| l.starts_with("! ")),
        "{r:?}"
    );
    assert!(
        r.line_for("pdf").is_some_and(|l| l.starts_with("! ")),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Repairs

#[test]
fn one_byte_edit_in_an_installed_copy_is_repaired() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let lock_before = fs::read(env.project_path("kasetto.lock")).unwrap();
    let claude_pdf = read_tree_snapshot(env.project_path(CLAUDE).join("pdf"));
    append(env.project_path(AGENTS).join("pdf/SKILL.md"), "x");

    let r = sync_ok(&env, &[]);
    assert_eq!(
        r.changes(),
        ["~ pdf (repaired) (./pack) → .agents/skills/pdf"],
        "only the damaged copy is named:\n{r:?}"
    );
    assert!(r.stderr.contains("1 repaired"), "{r:?}");
    assert_installed(&env, "pdf");
    assert_snapshots_eq(
        &claude_pdf,
        &read_tree_snapshot(env.project_path(CLAUDE).join("pdf")),
    );
    assert_eq!(
        fs::read(env.project_path("kasetto.lock")).unwrap(),
        lock_before,
        "a repair does not change the lock"
    );
}

#[test]
fn deleted_installed_folder_is_restored() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    fs::remove_dir_all(env.project_path(CLAUDE).join("docx")).unwrap();
    let r = sync_ok(&env, &[]);
    assert_installed(&env, "docx");
    let line = r
        .line_for("docx")
        .unwrap_or_else(|| panic!("no docx line:\n{r:?}"));
    // Locked but gone from disk: installed again, shown as added (a missing folder is not a
    // damaged one).
    assert!(line.starts_with("+ docx"), "{line}");
    assert!(line.ends_with("→ .claude/skills/docx"), "{line}");
}

#[test]
fn lost_exec_bit_and_extra_file_in_an_installed_copy_are_repaired() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    let script = env.project_path(CLAUDE).join("pdf/scripts/run.sh");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    write_file(env.project_path(AGENTS).join("pdf/stray.txt"), "stray\n");
    let r = sync_ok(&env, &[]);
    assert!(
        r.line_for("pdf")
            .is_some_and(|l| l.starts_with("~ pdf (repaired)")),
        "{r:?}"
    );
    assert_installed(&env, "pdf");
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o111,
        0o111
    );
}

#[test]
fn repair_then_rerun_is_a_noop() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    append(env.project_path(CLAUDE).join("pdf/SKILL.md"), "!");
    sync_ok(&env, &[]);
    let r = sync_ok(&env, &[]);
    r.assert_no_changes();
}

// ---------------------------------------------------------------------------------------------
// 7. Dry run

#[test]
fn dry_run_first_install_writes_nothing() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let before = world(&env);
    let r = sync_ok(&env, &["--dry-run"]);
    assert_world_eq(&before, &world(&env));
    let lines = r.changes();
    assert_eq!(
        lines,
        [
            "+ docx (./pack) → .agents/skills/docx, .claude/skills/docx",
            "+ pdf (./pack) → .agents/skills/pdf, .claude/skills/pdf",
        ],
        "{r:?}"
    );
    assert!(
        r.stderr.contains("dry run"),
        "the summary says it is a dry run:\n{r:?}"
    );
    assert!(!r.stderr.contains("Synced:"), "{r:?}");
}

#[test]
fn dry_run_with_pending_changes_writes_nothing_and_shows_the_plan() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx", "xlsx"]);
    add_skill(&root, "csv");
    sync_ok(&env, &[]);
    append(root.join("skills/docx/SKILL.md"), "more\n"); // updated
    append(env.project_path(AGENTS).join("pdf/SKILL.md"), "x"); // repaired
    config(&env, "[claude-code, codex]", "[pdf, docx, csv]"); // xlsx removed, csv added
    let before = world(&env);

    let r = sync_ok(&env, &["--dry-run"]);
    assert_world_eq(&before, &world(&env));
    let lines = r.changes();
    assert_eq!(
        lines,
        [
            "+ csv (./pack) → .agents/skills/csv, .claude/skills/csv",
            "- xlsx (./pack) → .agents/skills/xlsx, .claude/skills/xlsx",
            "~ docx (./pack) → .agents/skills/docx, .claude/skills/docx",
            "~ pdf (repaired) (./pack) → .agents/skills/pdf",
        ],
        "{r:?}"
    );
    assert!(r.stderr.contains("dry run"), "{r:?}");

    // The plan shown is what a real sync then does.
    let real = sync_ok(&env, &[]);
    assert_eq!(real.changes(), lines, "{real:?}");
    for name in ["pdf", "docx", "csv"] {
        assert_installed(&env, name);
    }
    assert_absent(env.project_path(CLAUDE).join("xlsx"));
    assert_absent(env.project_path(AGENTS).join("xlsx"));
}

#[test]
fn dry_run_json_reports_the_plan_and_writes_nothing() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    let before = world(&env);
    let r = sync_ok(&env, &["--dry-run", "--json"]);
    assert_world_eq(&before, &world(&env));
    let doc = r.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(item(&doc, "pdf")["action"], "added");
    assert_eq!(doc["summary"]["added"], 1);
}

// ---------------------------------------------------------------------------------------------
// 8. JSON

#[test]
fn json_first_install_has_the_documented_fields() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx"]);
    let r = sync_ok(&env, &["--json"]);
    let doc = r.json();
    assert!(
        !r.stderr.lines().any(|l| l.starts_with("+ ")),
        "no human lines with --json:\n{r:?}"
    );
    assert_eq!(doc["schema"], 1, "{doc:#}");
    assert_eq!(doc["command"], "sync");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["scope"], "project");
    assert_eq!(
        doc["config"].as_str(),
        env.project_path("kasetto.yaml").to_str()
    );
    assert_eq!(
        doc["lock"].as_str(),
        env.project_path("kasetto.lock").to_str()
    );
    assert_eq!(doc["lock_changed"], true);

    let sources = doc["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 1, "{doc:#}");
    let s = &sources[0];
    assert_eq!(s["url"], "./pack");
    assert_eq!(s["requested"], "local");
    assert_eq!(s["sub_dir"], Json::Null);
    assert_eq!(s["commit"], Json::Null);
    assert_eq!(s["fetch"], "local");
    assert_eq!(s["error"], Json::Null);
    assert_eq!(s["warnings"], serde_json::json!([]));

    let trees = git_trees(&env, &root, &["pdf", "docx"]);
    assert_eq!(doc["items"].as_array().unwrap().len(), 2, "{doc:#}");
    for name in ["pdf", "docx"] {
        let i = item(&doc, name);
        assert_eq!(i["kind"], "skill");
        assert_eq!(i["source"], "./pack");
        assert_eq!(i["action"], "added");
        assert_eq!(i["commit"], Json::Null);
        assert_eq!(i["tree"].as_str(), Some(trees[name].as_str()));
        assert_eq!(i["error"], Json::Null);
        assert_eq!(i["warnings"], serde_json::json!([]));
        let mut dests: Vec<(String, String)> = i["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["error"], Json::Null);
                (
                    d["path"].as_str().unwrap().to_string(),
                    d["action"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        dests.sort();
        assert_eq!(
            dests,
            both(name)
                .into_iter()
                .map(|p| (p, "added".to_string()))
                .collect::<Vec<_>>()
        );
    }
    let sum = &doc["summary"];
    for (k, v) in [
        ("added", 2),
        ("updated", 0),
        ("repaired", 0),
        ("removed", 0),
        ("unchanged", 0),
        ("broken", 0),
        ("failed_sources", 0),
    ] {
        assert_eq!(sum[k], v, "summary.{k}: {doc:#}");
    }
    assert!(sum["duration_ms"].is_u64(), "{doc:#}");
    // And it really installed.
    assert_installed(&env, "pdf");
}

#[test]
fn json_reports_every_action() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx", "xlsx", "csv"]);
    add_skill(&root, "md");
    sync_ok(&env, &[]);
    append(root.join("skills/docx/SKILL.md"), "v2\n"); // updated
    append(env.project_path(CLAUDE).join("xlsx/reference.md"), "x"); // repaired
    config(&env, "[claude-code, codex]", "[pdf, docx, xlsx, md, ghost]"); // csv removed, md added

    let r = sync(&env, &["--json"]);
    assert_eq!(r.code, 1, "ghost is broken:\n{r:?}");
    let doc = r.json();
    for (name, action) in [
        ("pdf", "unchanged"),
        ("docx", "updated"),
        ("xlsx", "repaired"),
        ("csv", "removed"),
        ("md", "added"),
        ("ghost", "broken"),
    ] {
        assert_eq!(item(&doc, name)["action"], action, "{name}: {doc:#}");
    }
    let xlsx_dests: BTreeMap<String, String> = item(&doc, "xlsx")["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().into(),
                d["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(xlsx_dests[&format!("{CLAUDE}/xlsx")], "repaired");
    assert_eq!(xlsx_dests[&format!("{AGENTS}/xlsx")], "unchanged");
    let csv = item(&doc, "csv");
    assert!(
        csv["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["action"] == "removed"),
        "{csv:#}"
    );
    let ghost = item(&doc, "ghost");
    assert!(
        ghost["error"].as_str().is_some_and(|e| e.contains("ghost")),
        "{ghost:#}"
    );
    assert_eq!(
        item(&doc, "docx")["tree"].as_str(),
        Some(locked_tree(&env, "docx").as_str())
    );
    assert_eq!(doc["lock_changed"], true);
    let sum = &doc["summary"];
    for k in [
        "added",
        "updated",
        "repaired",
        "removed",
        "unchanged",
        "broken",
    ] {
        assert_eq!(sum[k], 1, "summary.{k}: {doc:#}");
    }
    assert_eq!(sum["failed_sources"], 0);
}

#[test]
fn json_noop_says_the_lock_did_not_change() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    let doc = sync_ok(&env, &["--json"]).json();
    assert_eq!(doc["lock_changed"], false, "{doc:#}");
    assert_eq!(item(&doc, "pdf")["action"], "unchanged");
    assert_eq!(doc["summary"]["unchanged"], 1);
}

// ---------------------------------------------------------------------------------------------
// 9. Bad configs and locks

/// Install a good config first, then write `bad`: kst must exit 2 with `kasetto.yaml:LINE` and
/// every `needle` in its error, and change nothing in the project.
#[track_caller]
fn assert_config_error(bad: &str, line: usize, needles: &[&str]) -> Run {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    write_config(&env, bad);
    let before = world(&env);
    let r = sync(&env, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("kasetto.yaml:{line}")),
        "error must name kasetto.yaml:{line}:\n{r:?}"
    );
    for n in needles {
        assert!(r.stderr.contains(n), "error must mention {n:?}:\n{r:?}");
    }
    assert_world_eq(&before, &world(&env));
    r
}

#[test]
fn config_unknown_key_is_an_error_with_its_line() {
    assert_config_error(
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skils: [pdf]\n",
        5,
        &["skils"],
    );
}

#[test]
fn config_unknown_top_level_key_is_an_error_with_its_line() {
    assert_config_error(
        "agent: [claude-code, codex]\nscope: project\nskils:\n  - source: ./pack\n    skills: [pdf]\n",
        3,
        &["skils"],
    );
}

#[test]
fn config_unknown_agent_lists_valid_ones_and_suggests_the_closest() {
    let r = assert_config_error(
        "scope: project\nagent: [claude-code, codx]\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
        2,
        &["codx", "did you mean \"codex\""],
    );
    for valid in ["amp", "claude-code", "cline", "cursor", "windsurf", "zcode"] {
        assert!(
            r.stderr.contains(valid),
            "valid agent {valid} not listed:\n{r:?}"
        );
    }
}

#[test]
fn config_unsafe_skill_name_is_an_error_with_its_line() {
    assert_config_error(
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills:\n      - pdf\n      - ../x\n",
        7,
        &["../x"],
    );
}

#[test]
fn config_wrong_type_is_an_error_with_its_line() {
    assert_config_error(
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: 42\n",
        5,
        &["42"],
    );
}

#[test]
fn config_wrong_type_for_scope_is_an_error_with_its_line() {
    assert_config_error(
        "agent: [claude-code, codex]\nscope: [project]\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
        2,
        &["scope"],
    );
}

#[test]
fn config_error_with_json_is_a_json_document() {
    let env = TestEnv::new();
    pack(&env, &["pdf"]);
    write_config(
        &env,
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skils: [pdf]\n",
    );
    let r = sync(&env, &["--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let doc = r.json();
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("kasetto.yaml:5")),
        "{doc:#}"
    );
    assert_eq!(doc["exit_code"], 2);
}

/// Install, then replace the lock with `bad`: exit 2, the lock and everything else unchanged.
#[track_caller]
fn assert_lock_error(bad: &str) {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    write_file(env.project_path("kasetto.lock"), bad);
    let before = world(&env);
    let r = sync(&env, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("kasetto.lock"),
        "the error names the lock:\n{r:?}"
    );
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        bad
    );
    assert_world_eq(&before, &world(&env));
}

#[test]
fn malformed_lock_yaml_is_left_untouched() {
    assert_lock_error("version: 1\nsources: [ {url: ./pack, requested: local\n");
}

#[test]
fn lock_with_unknown_fields_is_left_untouched() {
    assert_lock_error("version: 1\nsources:\n- url: ./pack\n  requested: local\n  skils: []\n");
}

#[test]
fn lock_with_unsupported_version_is_left_untouched() {
    assert_lock_error("version: 7\nsources: []\n");
}

// ---------------------------------------------------------------------------------------------
// 10. Missing named skills

#[test]
fn missing_named_skill_is_broken_and_the_rest_installs() {
    let env = TestEnv::new();
    pack(&env, &["pdf", "docx"]);
    config(&env, "[claude-code, codex]", "[pdf, ghost, docx]");
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let line = r
        .line_for("ghost")
        .unwrap_or_else(|| panic!("no ghost line:\n{r:?}"));
    assert!(line.starts_with("! ghost"), "{line}");
    let detail = r
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("! ghost"))
        .nth(1)
        .unwrap_or("");
    assert!(
        detail.starts_with("    ") && detail.contains("ghost") && detail.contains("not found"),
        "{detail:?}\n{r:?}"
    );
    assert!(r.stderr.contains("1 broken"), "{r:?}");
    assert_installed(&env, "pdf");
    assert_installed(&env, "docx");
    assert_absent(env.project_path(CLAUDE).join("ghost"));
    assert_absent(env.project_path(AGENTS).join("ghost"));
    let skills = locked_skills(&project_lock(&env));
    assert_eq!(skills.keys().collect::<Vec<_>>(), ["docx", "pdf"]);
}

#[test]
fn skill_that_disappears_from_the_source_is_broken_and_kept_installed() {
    let env = TestEnv::new();
    let root = setup(&env, &["pdf", "docx"]);
    sync_ok(&env, &[]);
    let installed = read_tree_snapshot(env.project_path(CLAUDE).join("docx"));
    fs::remove_dir_all(root.join("skills/docx")).unwrap();
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.line_for("docx").is_some_and(|l| l.starts_with("! ")),
        "{r:?}"
    );
    assert_snapshots_eq(
        &installed,
        &read_tree_snapshot(env.project_path(CLAUDE).join("docx")),
    );
    assert!(
        locked_skills(&project_lock(&env)).contains_key("docx"),
        "the lock keeps what is still installed"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Quiet, and the `kasetto` alias

#[test]
fn quiet_prints_nothing_on_success() {
    let env = TestEnv::new();
    setup(&env, &["pdf", "docx"]);
    let r = sync_ok(&env, &["-q"]);
    assert_eq!(r.stdout, "", "{r:?}");
    assert_eq!(r.stderr, "", "{r:?}");
    assert_installed(&env, "pdf");
    assert_installed(&env, "docx");
}

#[test]
fn quiet_still_shows_broken_skills() {
    let env = TestEnv::new();
    pack(&env, &["pdf"]);
    config(&env, "[claude-code, codex]", "[pdf, ghost]");
    let r = sync(&env, &["-q"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("ghost"), "{r:?}");
    assert!(!r.stderr.contains("+ pdf"), "{r:?}");
}

#[test]
fn kasetto_binary_behaves_like_kst() {
    let a = TestEnv::new();
    let b = TestEnv::new();
    for env in [&a, &b] {
        setup(env, &["pdf", "docx"]);
    }
    let via_kst = sync_ok(&a, &[]);
    let via_kasetto = run(b.kasetto().arg("sync"));
    assert_eq!(via_kasetto.code, 0, "{via_kasetto:?}");
    // Same lines (minus timing), same files, same lock.
    let strip = |r: &Run| -> Vec<String> {
        r.stderr
            .lines()
            .map(|l| match l.find(" in ") {
                Some(i) if l.starts_with("Synced:") => l[..i].to_string(),
                _ => l.to_string(),
            })
            .collect()
    };
    assert_eq!(strip(&via_kst), strip(&via_kasetto));
    assert_snapshots_eq(
        &read_tree_snapshot(a.project()),
        &read_tree_snapshot(b.project()),
    );
    // And they share the lock: kst after kasetto is a no-op.
    let r = sync_ok(&b, &[]);
    r.assert_no_changes();
    let j = run(b.kasetto().args(["sync", "--json"]));
    assert_eq!(j.code, 0, "{j:?}");
    assert_eq!(j.json()["summary"]["unchanged"], 2);
}

// ---------------------------------------------------------------------------------------------
// 12. Shared folders

#[test]
fn agents_sharing_a_folder_get_one_copy() {
    let env = TestEnv::new();
    pack(&env, &["pdf"]);
    config(&env, "[codex, cline, warp]", "[pdf]");
    let r = sync_ok(&env, &[]);
    assert_eq!(
        r.changes(),
        ["+ pdf (./pack) → .agents/skills/pdf"],
        "{r:?}"
    );
    assert_copy(
        &env.project_path("pack/skills/pdf"),
        &env.project_path(AGENTS).join("pdf"),
    );
    let skills = locked_skills(&project_lock(&env));
    assert_eq!(
        strings(&skills["pdf"]["installed"]),
        [format!("{AGENTS}/pdf")]
    );
    // Only the shared folder was created.
    let dots: Vec<String> = fs::read_dir(env.project())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(dots, [".agents"]);
    let doc = sync_ok(&env, &["--json"]).json();
    assert_eq!(
        item(&doc, "pdf")["destinations"].as_array().unwrap().len(),
        1,
        "{doc:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 13. Global scope

#[test]
fn global_scope_installs_under_home_and_locks_under_xdg_data() {
    let env = TestEnv::new();
    let root = pack(&env, &["pdf"]);
    write_config(
        &env,
        "agent: claude-code\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
    // The user's own config in the working directory: trusted once to write to the global scope.
    env.kst().arg("trust").assert().success();
    let r = sync_ok(&env, &[]);
    assert!(
        r.line_for("pdf").is_some_and(|l| l.starts_with("+ ")),
        "{r:?}"
    );
    assert_copy(
        &root.join("skills/pdf"),
        &env.home_path(".claude/skills/pdf"),
    );
    let lock_path = env.xdg_data().join("kasetto/kasetto.lock");
    let lock = read_lock(&lock_path);
    let skills = locked_skills(&lock);
    assert_eq!(strings(&skills["pdf"]["installed"]), [".claude/skills/pdf"]);
    let text = fs::read_to_string(&lock_path).unwrap();
    assert!(
        !text.contains(env.home().to_str().unwrap()),
        "HOME-relative paths only:\n{text}"
    );
    assert_absent(env.project_path("kasetto.lock"));
    assert_absent(env.project_path(".claude"));
    // Re-run in the global scope is a no-op.
    let r = sync_ok(&env, &[]);
    r.assert_no_changes();
}

#[test]
fn project_flag_overrides_the_default_global_scope() {
    let env = TestEnv::new();
    pack(&env, &["pdf"]);
    write_config(
        &env,
        "agent: claude-code\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
    let home = read_tree_snapshot(env.home());
    sync_ok(&env, &["--project"]);
    assert_copy(
        &env.project_path("pack/skills/pdf"),
        &env.project_path(CLAUDE).join("pdf"),
    );
    assert!(env.project_path("kasetto.lock").is_file());
    assert_snapshots_eq(&home, &read_tree_snapshot(env.home()));
    assert_absent(env.xdg_data().join("kasetto/kasetto.lock"));
}

// ---------------------------------------------------------------------------------------------
// 14. Hostile locks

/// A lock that tracks `installed` paths for a skill no longer in the config.
fn hostile_lock(env: &TestEnv, installed: &[String]) {
    let mut text = String::from(
        "version: 1\nsources:\n- url: ./gone\n  requested: local\n  skills:\n  - name: victim\n    path: skills/victim\n    tree: 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n    installed:\n",
    );
    for p in installed {
        text.push_str(&format!("    - '{p}'\n"));
    }
    write_file(env.project_path("kasetto.lock"), text);
}

/// A folder with content worth keeping; returns its snapshot.
fn victim(dir: &Path) -> Snapshot {
    write_file(dir.join("SKILL.md"), "precious\n");
    write_file(dir.join("data/keep.txt"), "precious data\n");
    read_tree_snapshot(dir)
}

/// After a sync with a hostile lock: either kst refused the lock (exit 2, lock untouched) or
/// it went ahead and installed `pdf` from the config (so the hostile entries were looked at).
#[track_caller]
fn assert_ran_or_refused(env: &TestEnv, r: &Run, lock_before: &[u8]) {
    match r.code {
        0 => assert_installed(env, "pdf"),
        2 => assert_eq!(
            fs::read(env.project_path("kasetto.lock")).unwrap(),
            lock_before,
            "{r:?}"
        ),
        _ => panic!("unexpected exit code:\n{r:?}"),
    }
}

#[test]
fn hostile_lock_cannot_delete_folders_outside_skills_folders() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    let rel_victim = env.path("outside/victim");
    let abs_victim = env.path("outside/abs-victim");
    let dotdot_victim = env.path("outside/dotdot-victim");
    let victims = [
        (rel_victim.clone(), victim(&rel_victim)),
        (abs_victim.clone(), victim(&abs_victim)),
        (dotdot_victim.clone(), victim(&dotdot_victim)),
    ];
    // Things inside the project that are not skill folders.
    write_file(env.project_path(".claude/settings.json"), "{}\n");
    hostile_lock(
        &env,
        &[
            "../outside/victim".to_string(),
            abs_victim.to_str().unwrap().to_string(),
            ".claude/skills/../../../outside/dotdot-victim".to_string(),
            ".claude".to_string(),
            "kasetto.yaml".to_string(),
            "pack".to_string(),
        ],
    );
    let lock_before = fs::read(env.project_path("kasetto.lock")).unwrap();
    let project_before = read_tree_snapshot(env.project());
    let r = sync(&env, &[]);
    for (p, snap) in &victims {
        assert_snapshots_eq(snap, &read_tree_snapshot(p));
    }
    assert_ran_or_refused(&env, &r, &lock_before);
    // In the project, only the skills folders and the lock may have changed.
    let keep = |s: Snapshot| -> Snapshot {
        s.into_iter()
            .filter(|(k, _)| {
                !k.starts_with(".claude/skills")
                    && !k.starts_with(".agents")
                    && k != "kasetto.lock"
                    && k != ".claude"
            })
            .collect()
    };
    assert_snapshots_eq(
        &keep(project_before),
        &keep(read_tree_snapshot(env.project())),
    );
}

#[test]
fn project_lock_cannot_delete_global_skill_folders() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    let global = env.home_path(".claude/skills/victim");
    let snap = victim(&global);
    hostile_lock(&env, &[global.to_str().unwrap().to_string()]);
    let lock_before = fs::read(env.project_path("kasetto.lock")).unwrap();
    let r = sync(&env, &[]);
    assert_snapshots_eq(&snap, &read_tree_snapshot(&global));
    assert_ran_or_refused(&env, &r, &lock_before);
}

#[test]
fn hostile_lock_symlink_entry_does_not_delete_its_target() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    let target = env.path("outside/linked");
    let snap = victim(&target);
    symlink(&target, env.project_path(CLAUDE).join("victim"));
    hostile_lock(&env, &[format!("{CLAUDE}/victim")]);
    let lock_before = fs::read(env.project_path("kasetto.lock")).unwrap();
    let r = sync(&env, &[]);
    assert_snapshots_eq(&snap, &read_tree_snapshot(&target));
    assert_ran_or_refused(&env, &r, &lock_before);
}

/// `.claude/skills/victim` is a symlink to a folder outside the project, and the lock lists it
/// spelled so that the OS resolves the link (`victim/`, `victim/.`): removing "it" must not
/// empty the link's target.
fn hostile_spelling_keeps_symlink_target(spelling: &str) {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    let target = env.path("outside/linked");
    let snap = victim(&target);
    symlink(&target, env.project_path(CLAUDE).join("victim"));
    hostile_lock(&env, &[format!("{CLAUDE}/{spelling}")]);
    sync(&env, &[]);
    assert_snapshots_eq(&snap, &read_tree_snapshot(&target));
}

#[test]
fn hostile_lock_trailing_slash_does_not_delete_through_a_symlink() {
    hostile_spelling_keeps_symlink_target("victim/");
}

#[test]
fn hostile_lock_dot_component_does_not_delete_through_a_symlink() {
    hostile_spelling_keeps_symlink_target("victim/.");
}

// ---------------------------------------------------------------------------------------------
// More behaviours of local sources

#[test]
fn installed_copy_replaced_by_a_symlink_is_repaired_without_touching_the_target() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    let dev = env.path("dev/pdf");
    let snap = victim(&dev);
    let installed = env.project_path(CLAUDE).join("pdf");
    fs::remove_dir_all(&installed).unwrap();
    symlink(&dev, &installed);
    let r = sync_ok(&env, &[]);
    assert!(
        r.line_for("pdf")
            .is_some_and(|l| l.starts_with("~ pdf (repaired)")),
        "{r:?}"
    );
    assert_installed(&env, "pdf");
    assert_snapshots_eq(&snap, &read_tree_snapshot(&dev));
}

#[test]
fn stale_staging_folders_are_cleaned() {
    let env = TestEnv::new();
    setup(&env, &["pdf"]);
    sync_ok(&env, &[]);
    let stale = env.project_path(CLAUDE).join(".kst-stage-pdf-999999-0");
    write_file(stale.join("SKILL.md"), "half written\n");
    sync_ok(&env, &[]);
    assert_absent(&stale);
    assert_installed(&env, "pdf");
}

#[test]
fn star_local_source_follows_the_folder_as_it_is_now() {
    // A local folder has no pin (SPEC 7: re-read on every sync), so "*" is what is there now.
    let env = TestEnv::new();
    let root = pack(&env, &["pdf", "docx"]);
    config(&env, "[claude-code, codex]", "\"*\"");
    sync_ok(&env, &[]);
    add_skill(&root, "xlsx");
    let r = sync_ok(&env, &[]);
    assert_eq!(
        r.changes(),
        ["+ xlsx (./pack) → .agents/skills/xlsx, .claude/skills/xlsx"],
        "{r:?}"
    );
    assert_installed(&env, "xlsx");
}

#[test]
fn missing_local_source_fails_with_its_line_and_others_install() {
    let env = TestEnv::new();
    pack(&env, &["pdf"]);
    write_config(
        &env,
        "# team skills\nagent: [claude-code, codex]\nscope: project\nskills:\n  # ours\n  - source: ./pack\n    skills:\n      - pdf\n  - source: ./missing\n    skills: \"*\"\n",
    );
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("kasetto.yaml:9") && l.contains("missing")),
        "the error names the entry's line:\n{r:?}"
    );
    assert!(r.stderr.contains("1 sources failed"), "{r:?}");
    assert_installed(&env, "pdf");
    let doc = sync(&env, &["--json"]).json();
    let failed = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == "./missing")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert!(failed["error"].as_str().is_some(), "{doc:#}");
    assert_eq!(doc["summary"]["failed_sources"], 1);
}
