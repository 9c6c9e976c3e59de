//! `kst clean`: everything the lock tracks is removed and the lock emptied; what kst did not
//! install stays; the pruning rules are sync's.

use std::fs;

use crate::cmd_fixtures::*;
use crate::support::*;

fn lock_text(path: &std::path::Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn clean_removes_what_the_lock_tracks_in_a_local_project_and_keeps_the_rest() {
    let env = TestEnv::new();
    local_project(&env);
    // The user's own server and skill folder, which kst did not install.
    write_file(
        env.project_path(".mcp.json"),
        "{\"mcpServers\": {\"mine\": {\"command\": \"my-server\"}}}\n",
    );
    write_file(
        env.project_path(".claude/skills/mine/SKILL.md"),
        skill_md("mine", "own"),
    );
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());

    // --dry-run: says what would go, writes nothing.
    let before = read_tree_snapshot(env.project());
    let doc = json(&env, &["clean", "--dry-run"], 0);
    assert_eq!(doc["command"], "clean");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["summary"]["removed"], 3, "{doc}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));

    let doc = json(&env, &["clean"], 0);
    assert_eq!(doc["summary"]["removed"], 3, "{doc}");
    for item in doc["items"].as_array().unwrap() {
        assert_eq!(item["action"], "removed", "{item}");
    }
    assert!(!env.project_path(".claude/skills/pdf").exists());
    assert!(!env.project_path(".claude/skills/docx").exists());
    assert!(env.project_path(".claude/skills/mine/SKILL.md").is_file());
    let settings: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.project_path(".mcp.json")).unwrap()).unwrap();
    assert_eq!(settings["mcpServers"]["mine"]["command"], "my-server");
    assert!(settings["mcpServers"].get("tool").is_none(), "{settings}");
    let lock = lock_text(&env.project_path("kasetto.lock"));
    assert!(
        lock.contains("sources: []") && !lock.contains("mcps"),
        "{lock}"
    );
    // The config is left as it is, and a second clean has nothing to do.
    assert!(
        fs::read_to_string(env.project_path("kasetto.yaml"))
            .unwrap()
            .contains("./pack")
    );
    let doc = json(&env, &["clean"], 0);
    assert_eq!(doc["summary"]["removed"], 0);
    // `kst sync` brings it all back.
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
}

#[test]
fn clean_removes_a_git_global_install_and_empties_the_global_lock() {
    let env = TestEnv::new();
    let (_repo, _d) = git_global(&env);
    env.kst().arg("sync").assert().success();
    assert!(env.home_path(".claude/skills/pdf/SKILL.md").is_file());
    assert!(lock_text(&global_lock(&env)).contains("pdf"));
    let doc = json(&env, &["clean"], 0);
    assert_eq!(doc["scope"], "global");
    assert_eq!(doc["summary"]["removed"], 3, "{doc}");
    assert!(!env.home_path(".claude/skills/pdf").exists());
    assert!(!env.home_path(".claude/skills/docx").exists());
    let lock = lock_text(&global_lock(&env));
    assert!(!lock.contains("pdf") && !lock.contains("commit"), "{lock}");
}

#[test]
fn clean_keeps_an_edited_skill_folder_unless_forced() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    let edited = env.project_path(".claude/skills/pdf/SKILL.md");
    fs::write(&edited, "my own notes\n").unwrap();
    let before = read_tree_snapshot(env.project());
    let err = stderr(&env, &["clean"], 1);
    assert!(
        err.contains(".claude/skills/pdf") && err.contains("kst clean --force"),
        "{err}"
    );
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    env.kst().args(["clean", "--force"]).assert().success();
    assert!(!env.project_path(".claude/skills/pdf").exists());
}

#[test]
fn clean_leaves_an_mcp_entry_edited_by_the_user() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    let path = env.project_path(".mcp.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("tool-mcp", "my-tool");
    fs::write(&path, &text).unwrap();
    env.kst().arg("clean").assert().success();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // No longer tracked: the lock is empty.
    assert!(!lock_text(&env.project_path("kasetto.lock")).contains("tool"));
}

#[test]
fn clean_error_paths_change_nothing() {
    let env = TestEnv::new();
    // No config: exit 2.
    let doc = json(&env, &["clean"], 2);
    assert!(doc["error"].is_string());
    // A malformed lock: exit 2, nothing removed, the lock untouched.
    local_project(&env);
    env.kst().arg("sync").assert().success();
    write_file(env.project_path("kasetto.lock"), "version: 1\nsources: {\n");
    let before = read_tree_snapshot(env.project());
    let err = stderr(&env, &["clean"], 2);
    assert!(err.contains("malformed"), "{err}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
}
