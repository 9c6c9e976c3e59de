//! `kst list`: what the lock says is installed, as a table that fits the terminal and as JSON.

use crate::cmd_fixtures::*;
use crate::support::*;

fn names(doc: &serde_json::Value, kind: &str) -> Vec<String> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == kind)
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_shows_a_local_project_install_per_kind() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    let doc = json(&env, &["list"], 0);
    assert_eq!(doc["command"], "list");
    assert_eq!(doc["scope"], "project");
    let mut skills = names(&doc, "skill");
    skills.sort();
    assert_eq!(skills, ["docx", "pdf"]);
    assert_eq!(names(&doc, "server"), ["tool"]);
    let pdf = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "pdf")
        .unwrap();
    assert_eq!(pdf["source"], "./pack");
    assert_eq!(pdf["requested"], "local");
    assert_eq!(pdf["commit"], serde_json::Value::Null);
    assert_eq!(pdf["scope"], "project");
    assert_eq!(
        pdf["destinations"],
        serde_json::json!([".claude/skills/pdf"])
    );
    assert_eq!(pdf["tree"].as_str().unwrap().len(), 40);
    let tool = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "tool")
        .unwrap();
    assert_eq!(tool["destinations"], serde_json::json!([".mcp.json"]));
    assert!(tool["hash"].as_str().unwrap().starts_with("sha256:"));

    // --type narrows the kinds.
    let doc = json(&env, &["list", "--type", "mcp"], 0);
    assert_eq!(names(&doc, "skill"), Vec::<String>::new());
    assert_eq!(names(&doc, "server"), ["tool"]);
    let doc = json(&env, &["list", "--type", "skills"], 0);
    assert_eq!(names(&doc, "server"), Vec::<String>::new());

    // The table: a header and one line per item.
    let table = run(&env, &["list"], 0);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("KIND"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    let pdf_line = lines.iter().find(|l| l.contains(" pdf ")).unwrap();
    assert!(
        pdf_line.contains("project") && pdf_line.contains("local"),
        "{pdf_line}"
    );
    assert!(pdf_line.contains(".claude/skills/pdf"), "{pdf_line}");
}

#[test]
fn list_shows_a_git_global_install_with_short_commits() {
    let env = TestEnv::new();
    let (repo, _d) = git_global(&env);
    env.kst().arg("sync").assert().success();
    let commit = repo.rev_parse("trunk").to_string();
    let doc = json(&env, &["list"], 0);
    assert_eq!(doc["scope"], "global");
    assert_eq!(
        doc["lock"].as_str().unwrap(),
        global_lock(&env).display().to_string()
    );
    for item in doc["items"].as_array().unwrap() {
        assert_eq!(item["commit"], commit.as_str());
        assert_eq!(item["scope"], "global");
        assert!(
            item["source"]
                .as_str()
                .unwrap()
                .starts_with("git://127.0.0.1")
        );
    }
    assert_eq!(doc["items"].as_array().unwrap().len(), 3);
    let table = run(&env, &["list"], 0);
    assert!(table.contains(&commit[..7]), "{table}");
    assert!(!table.contains(&commit[..8]), "short commits only: {table}");
}

#[test]
fn list_table_fits_the_terminal_width() {
    let env = TestEnv::new();
    let long = "a-skill-with-a-name-long-enough-to-need-cutting-in-a-narrow-terminal";
    for f in skill_pack("skills", &[(long, "long")]) {
        write_file(env.project_path(format!("pack/{}", f.0)), f.1.bytes());
    }
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    env.kst().arg("sync").assert().success();
    let wide = env
        .kst()
        .arg("list")
        .env("COLUMNS", "400")
        .assert()
        .success();
    let wide = String::from_utf8(wide.get_output().stdout.clone()).unwrap();
    assert!(wide.lines().nth(1).unwrap().contains(long), "{wide}");
    let narrow = env
        .kst()
        .arg("list")
        .env("COLUMNS", "70")
        .assert()
        .success();
    let narrow = String::from_utf8(narrow.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = narrow.lines().collect();
    assert_eq!(lines.len(), 2, "one line per item, never wrapped: {narrow}");
    for l in &lines {
        assert!(l.chars().count() <= 70, "{l:?} is wider than 70");
    }
    assert!(lines[1].contains('…'), "{narrow}");
}

#[test]
fn list_escapes_control_characters_in_names_and_sources() {
    let env = TestEnv::new();
    // A hand-edited lock is outside text: its strings are escaped in the table.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills: []\n",
    );
    write_file(
        env.project_path("kasetto.lock"),
        format!(
            "version: 1\nsources:\n  - url: \"./p\\e]52;c;eA==\\aack\"\n    requested: local\n    skills:\n      - name: \"evil\\e[2J\"\n        path: x\n        tree: {}\n        installed: [.claude/skills/x]\n",
            "a".repeat(40)
        ),
    );
    let table = run(&env, &["list"], 0);
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "{table:?}"
    );
    assert!(table.contains("evil\\u{1b}[2J"), "{table}");
    let doc = json(&env, &["list"], 0);
    assert_eq!(doc["items"][0]["name"], "evil\u{1b}[2J");
}

#[test]
fn list_with_nothing_installed_says_so_and_succeeds() {
    let env = TestEnv::new();
    local_project(&env);
    let err = stderr(&env, &["list"], 0);
    assert!(err.contains("nothing installed"), "{err}");
    let doc = json(&env, &["list"], 0);
    assert_eq!(doc["items"], serde_json::json!([]));
}

#[test]
fn list_error_paths_exit_2() {
    let env = TestEnv::new();
    // No config at all.
    let doc = json(&env, &["list"], 2);
    assert!(
        doc["error"].as_str().unwrap().contains("kst init")
            || doc["error"].as_str().unwrap().contains("kasetto.yaml"),
        "{doc}"
    );
    // A malformed lock is reported, not listed, and left as it is.
    local_project(&env);
    write_file(
        env.project_path("kasetto.lock"),
        "version: 1\nsources: [ {url: x\n",
    );
    let err = stderr(&env, &["list"], 2);
    assert!(
        err.contains("kasetto.lock") && err.contains("malformed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
        "version: 1\nsources: [ {url: x\n"
    );
    // An unknown kind is a usage error.
    env.kst().args(["list", "--type", "nope"]).assert().code(2);
}

#[test]
fn list_shows_commands_and_instructions_the_lock_holds() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills: []\n",
    );
    let blob = "b".repeat(40);
    write_file(
        env.project_path("kasetto.lock"),
        format!(
            "version: 1\nsources: []\ncommands:\n  - url: ./cmds\n    requested: local\n    items:\n      - name: \"git:commit\"\n        path: commands/git/commit.md\n        blob: {blob}\n        installed: {{ .claude/commands/git/commit.md: \"sha256:00\" }}\ninstructions:\n  - url: ./rules\n    requested: local\n    items:\n      - name: \"house:security\"\n        path: instructions/house/security.md\n        blob: {blob}\n        installed: {{ \"CLAUDE.md#house:security-1a2b3c4d\": \"sha256:00\" }}\n"
        ),
    );
    let doc = json(&env, &["list"], 0);
    assert_eq!(names(&doc, "command"), ["git:commit"], "{doc}");
    assert_eq!(names(&doc, "instruction"), ["house:security"], "{doc}");
    let cmd = &doc["items"][0];
    assert_eq!(cmd["blob"], blob.as_str());
    assert_eq!(
        cmd["destinations"],
        serde_json::json!([".claude/commands/git/commit.md"])
    );
    let doc = json(&env, &["list", "--type", "instructions"], 0);
    assert_eq!(doc["items"].as_array().unwrap().len(), 1);
    assert_eq!(doc["items"][0]["kind"], "instruction");
    let table = run(&env, &["list"], 0);
    assert!(
        table.contains("command") && table.contains("git:commit"),
        "{table}"
    );
}
