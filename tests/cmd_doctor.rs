//! `kst doctor`: paths, trust, the last sync, what verify finds, untracked entries and leftovers;
//! exit 1 with a fix for each problem.

use std::fs;

use crate::cmd_fixtures::*;
use crate::support::*;

fn problems(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["problem"].as_str().unwrap().to_string(),
                p["fix"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn doctor_is_happy_with_a_fresh_local_project_install() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    // The user's own skill folder: listed, not a problem.
    write_file(
        env.project_path(".claude/skills/mine/SKILL.md"),
        skill_md("mine", "own"),
    );
    let doc = json(&env, &["doctor"], 0);
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["scope"], "project");
    assert_eq!(
        doc["config"],
        env.project_path("kasetto.yaml").display().to_string()
    );
    assert_eq!(
        doc["lock"],
        env.project_path("kasetto.lock").display().to_string()
    );
    assert_eq!(doc["cache"], env.cache().display().to_string());
    assert_eq!(doc["trust"]["origin"], "working_dir");
    assert_eq!(doc["last_sync"]["command"], "sync");
    assert_eq!(doc["last_sync"]["ok"], true);
    assert_eq!(doc["last_sync"]["summary"]["added"], 3);
    assert_eq!(
        doc["untracked"],
        serde_json::json!([env
            .project_path(".claude/skills/mine")
            .display()
            .to_string()])
    );
    let err = stderr(&env, &["doctor"], 0);
    assert!(err.contains("No problems found"), "{err}");
}

#[test]
fn doctor_finds_modified_and_missing_items_and_leftovers_each_with_its_fix() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    fs::write(env.project_path(".claude/skills/pdf/SKILL.md"), "edited\n").unwrap();
    fs::remove_dir_all(env.project_path(".claude/skills/docx")).unwrap();
    let mcp = env.project_path(".mcp.json");
    fs::write(
        &mcp,
        fs::read_to_string(&mcp)
            .unwrap()
            .replace("tool-mcp", "other"),
    )
    .unwrap();
    fs::create_dir_all(env.project_path(".claude/.kst-work-skills/stage")).unwrap();
    let before = read_tree_snapshot(env.project());
    let doc = json(&env, &["doctor"], 1);
    assert_eq!(doc["ok"], false);
    let p = problems(&doc);
    let find = |needle: &str| {
        p.iter()
            .find(|(what, _)| what.contains(needle))
            .unwrap_or_else(|| panic!("no problem about {needle}: {p:?}"))
            .clone()
    };
    let (what, fix) = find(".claude/skills/pdf");
    assert!(
        what.contains("modified") && fix.starts_with("kst sync"),
        "{what} / {fix}"
    );
    let (what, fix) = find(".claude/skills/docx");
    assert!(
        what.contains("missing") && fix.starts_with("kst sync"),
        "{what} / {fix}"
    );
    let (what, fix) = find("MCP server tool");
    assert!(
        what.contains("modified") && fix.contains("delete the entry"),
        "{what} / {fix}"
    );
    let (what, fix) = find(".kst-work-skills");
    assert!(
        what.contains("interrupted") && fix.starts_with("kst sync"),
        "{what} / {fix}"
    );
    assert_eq!(p.len(), 4, "{p:?}");
    // Read-only: nothing in the project changed.
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    let err = stderr(&env, &["doctor"], 1);
    assert!(
        err.contains("4 problems found") && err.contains("fix: kst sync"),
        "{err}"
    );
    // The fixes work.
    fs::remove_file(&mcp).unwrap();
    env.kst().arg("sync").assert().success();
    json(&env, &["doctor"], 0);
}

#[test]
fn doctor_on_a_git_global_install_and_a_failed_last_sync() {
    let env = TestEnv::new();
    let (_repo, mut d) = git_global(&env);
    env.kst().arg("sync").assert().success();
    let doc = json(&env, &["doctor"], 0);
    assert_eq!(doc["scope"], "global");
    assert_eq!(doc["trust"]["origin"], "xdg");
    assert_eq!(doc["trust"]["status"], "not_needed");
    assert_eq!(doc["lock"], global_lock(&env).display().to_string());
    // A sync that fails (the server is gone and a new source is asked for) is remembered.
    d.stop();
    let cfg = env.xdg_config().join("kasetto/kasetto.yaml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(
        &cfg,
        text.replace(
            "skills:\n",
            "skills:\n  - source: ./missing-folder\n    skills: \"*\"\n",
        ),
    )
    .unwrap();
    env.kst().arg("sync").assert().code(1);
    let doc = json(&env, &["doctor"], 1);
    assert_eq!(doc["last_sync"]["ok"], false, "{doc}");
    let p = problems(&doc);
    assert!(
        p.iter()
            .any(|(w, f)| w.contains("last `kst sync`") && f.starts_with("kst sync --global")),
        "{p:?}"
    );
}

#[test]
fn doctor_says_an_untrusted_working_dir_config_needs_kst_trust() {
    let env = TestEnv::new();
    for f in skill_pack("skills", &[("pdf", "PDF")]) {
        write_file(env.project_path(format!("pack/{}", f.0)), f.1.bytes());
    }
    // No `scope:`: the global scope, which a config found in the working directory may only
    // reach once trusted.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    let doc = json(&env, &["doctor"], 1);
    assert_eq!(doc["trust"]["status"], "not_trusted");
    let p = problems(&doc);
    assert!(p.iter().any(|(_, f)| f.starts_with("kst trust")), "{p:?}");
    env.kst().arg("trust").assert().success();
    let doc = json(&env, &["doctor"], 0);
    assert_eq!(doc["trust"]["status"], "trusted");
}

#[test]
fn doctor_reports_a_missing_config_and_a_malformed_lock_as_problems() {
    let env = TestEnv::new();
    let doc = json(&env, &["doctor"], 1);
    assert_eq!(doc["config"], serde_json::Value::Null);
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    let p = problems(&doc);
    assert!(p[0].1.contains("kst init"), "{p:?}");

    local_project(&env);
    write_file(env.project_path("kasetto.lock"), "version: 1\nsources: {\n");
    let doc = json(&env, &["doctor"], 1);
    let p = problems(&doc);
    assert!(
        p.iter()
            .any(|(w, _)| w.contains("kasetto.lock") && w.contains("malformed")),
        "{p:?}"
    );
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        "version: 1\nsources: {\n"
    );
}

#[test]
fn doctor_checks_commands_instructions_and_finds_orphaned_blocks() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/commands/review.md"),
        "Review $ARGUMENTS.\n",
    );
    write_file(
        env.project_path("pack/instructions/style.md"),
        "Use tabs.\n",
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\ncommands:\n  - source: ./pack\n    commands: \"*\"\ninstructions:\n  - source: ./pack\n    instructions: \"*\"\n",
    );
    write_file(env.project_path("CLAUDE.md"), "# mine\n");
    env.kst().arg("sync").assert().success();
    let doc = json(&env, &["doctor"], 0);
    assert_eq!(doc["ok"], true, "{doc}");
    // An edited command file, and a block no lock tracks.
    let cmd = env.project_path(".claude/commands/review.md");
    fs::write(&cmd, "mine now\n").unwrap();
    let mut claude = fs::read_to_string(env.project_path("CLAUDE.md")).unwrap();
    claude.push_str(
        "\n<!-- kasetto:instruction:old-12345678 START -->\nold\n<!-- kasetto:instruction:old-12345678 END -->\n",
    );
    fs::write(env.project_path("CLAUDE.md"), claude).unwrap();
    let doc = json(&env, &["doctor"], 1);
    let p = problems(&doc);
    assert!(
        p.iter().any(|(what, fix)| what
            .contains("command review at .claude/commands/review.md is modified")
            && fix.starts_with("kst sync")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|(what, _)| what.contains("CLAUDE.md#old-12345678")),
        "{p:?}"
    );
    assert_eq!(
        doc["orphaned_blocks"],
        serde_json::json!(["CLAUDE.md#old-12345678"])
    );
}
