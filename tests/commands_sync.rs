//! Commands end to end (SPEC 6, 10a; issue 12), through the binary: one pack with every asset
//! kind (a skill, an MCP pack, commands, instructions), from a git pack on loopback and from a
//! local folder, into claude-code, cursor, gemini-cli, codex, continue, github-copilot and
//! windsurf, in the project and the global scope. Every file is compared byte for byte with the
//! format SPEC 10a documents (the expected bytes are in `support/assets.rs`); the lock records
//! per item the commit, the source's blob id and per destination the sha256 of what was written;
//! a re-sync changes no byte and no mtime; `verify` is clean and then names an edited file.
//!
//! The command-specific behaviours follow: repair of an edited file, prune of kst's files only,
//! a user's own file is a conflict unless `--force`, hostile names and malformed frontmatter
//! break only their command, `--dry-run`, `--locked`, `--offline`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::Oid;
use kasetto::agents::{self, CommandFormat, InstructionTarget, RuleFormat};
use kasetto::{instructions, slash};
use serde_json::Value;

use crate::support::assets::*;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The expected bytes and paths are the documented ones.

/// The constants in `support/assets.rs` are written from SPEC 10a/10b and the docs; this checks
/// them against the render functions and the agent table on main, so the end-to-end tests
/// below fail only when what reaches the disk differs. (Green before the wiring.)
#[test]
fn expected_bytes_are_what_the_documented_renderers_give() {
    let render = |name: &str, src: &str, f: CommandFormat| {
        let (_, b) = slash::render(name, src.as_bytes(), f).unwrap();
        String::from_utf8(b).unwrap()
    };
    assert_eq!(
        render("git:commit", CMD_COMMIT, CommandFormat::Markdown),
        CMD_COMMIT
    );
    assert_eq!(
        render("git:commit", CMD_COMMIT, CommandFormat::MarkdownBody),
        BODY_COMMIT
    );
    assert_eq!(
        render("git:commit", CMD_COMMIT, CommandFormat::GeminiToml),
        GEMINI_COMMIT
    );
    assert_eq!(
        render("review", CMD_REVIEW, CommandFormat::GeminiToml),
        GEMINI_REVIEW
    );
    assert_eq!(
        render("git:commit", CMD_COMMIT, CommandFormat::ContinuePrompt),
        CONTINUE_COMMIT
    );
    assert_eq!(
        render("review", CMD_REVIEW, CommandFormat::ContinuePrompt),
        CONTINUE_REVIEW
    );
    assert_eq!(
        render("git:commit", CMD_COMMIT, CommandFormat::CopilotPrompt),
        CMD_COMMIT
    );
    let rule = |name: &str, src: &str, f: RuleFormat| {
        let (file, b) = instructions::render_rule(name, src.as_bytes(), f).unwrap();
        (file, String::from_utf8(b).unwrap())
    };
    assert_eq!(
        rule("style", INS_STYLE, RuleFormat::CursorMdc),
        ("style.mdc".to_string(), MDC_STYLE.to_string())
    );
    assert_eq!(
        rule("house:security", INS_SEC, RuleFormat::CursorMdc),
        ("house-security.mdc".to_string(), MDC_SEC.to_string())
    );
    assert_eq!(
        rule("house:security", INS_SEC, RuleFormat::Markdown),
        ("house-security.md".to_string(), RULE_SEC.to_string())
    );
    assert_eq!(rule("style", INS_STYLE, RuleFormat::Markdown).1, RULE_STYLE);
    // Blocks: the id and the bytes of a new aggregate file.
    for source in ["./pack", "git://127.0.0.1:9/pack"] {
        assert_eq!(
            block_id(source, "house:security"),
            instructions::block_id(source, "house:security")
        );
        let [a, b] = blocks_of(source, "\n");
        let body = |src: &str| instructions::block_body(src.as_bytes()).unwrap();
        let one = instructions::upsert(b"", &block_id(source, "style"), &body(INS_STYLE)).unwrap();
        let two = instructions::upsert(&one, &block_id(source, "house:security"), &body(INS_SEC))
            .unwrap();
        assert_eq!(String::from_utf8(two).unwrap(), format!("{a}\n\n{b}\n"));
    }

    // The paths: each agent's folder (SPEC 10a, 10b) + the documented file name.
    let home = Path::new("/h");
    let ids = [
        "claude-code",
        "cursor",
        "gemini-cli",
        "codex",
        "continue",
        "github-copilot",
        "windsurf",
    ];
    for global in [false, true] {
        let rel = |p: PathBuf| -> String {
            let p = if global {
                p.strip_prefix(home).unwrap().to_path_buf()
            } else {
                p
            };
            p.to_str().unwrap().to_string()
        };
        let mut cmds = Vec::new();
        let mut rules = Vec::new();
        let mut aggregates = Vec::new();
        for id in ids {
            let a = agents::find(id).unwrap();
            if let Some((dir, f)) = a.commands_dir(global, home) {
                for (name, src) in [("git:commit", CMD_COMMIT), ("review", CMD_REVIEW)] {
                    let (p, b) = slash::render(name, src.as_bytes(), f).unwrap();
                    cmds.push((
                        format!("{}/{p}", rel(dir.clone())),
                        String::from_utf8(b).unwrap(),
                    ));
                }
            }
            match a.instructions_target(global, home) {
                Some(InstructionTarget::Aggregate(f)) => aggregates.push(rel(f)),
                Some(InstructionTarget::PerRule(dir, f)) => {
                    for (name, src) in [("style", INS_STYLE), ("house:security", INS_SEC)] {
                        let (p, b) = instructions::render_rule(name, src.as_bytes(), f).unwrap();
                        rules.push((
                            format!("{}/{p}", rel(dir.clone())),
                            String::from_utf8(b).unwrap(),
                        ));
                    }
                }
                None => {}
            }
        }
        let owned = |v: Vec<(&str, &str)>| -> Vec<(String, String)> {
            let mut v: Vec<_> = v
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            v.sort();
            v
        };
        cmds.sort();
        rules.sort();
        aggregates.sort();
        assert_eq!(cmds, owned(command_files(global)), "global={global}");
        assert_eq!(rules, owned(rule_files(global)), "global={global}");
        let mut want: Vec<String> = aggregate_files(global)
            .into_iter()
            .map(String::from)
            .collect();
        want.sort();
        assert_eq!(aggregates, want, "global={global}");
    }
}

// ---------------------------------------------------------------------------------------------
// One pack, four kinds, seven agents.

/// Where a scope's files and lock are.
struct Scope {
    root: PathBuf,
    lock: PathBuf,
}

fn scope(env: &TestEnv, global: bool) -> Scope {
    if global {
        Scope {
            root: env.home(),
            lock: env.xdg_data().join("kasetto/kasetto.lock"),
        }
    } else {
        Scope {
            root: env.project(),
            lock: env.project_path("kasetto.lock"),
        }
    }
}

/// Write the config for a scope: the project's `kasetto.yaml`, or the user's own global one.
fn write_config(env: &TestEnv, global: bool, text: &str) {
    let at = if global {
        env.xdg_config().join("kasetto/kasetto.yaml")
    } else {
        env.project_path("kasetto.yaml")
    };
    write_file(at, text);
}

/// The snapshot a no-op must leave unchanged (bytes, modes, file mtimes).
fn state(s: &Scope) -> BTreeMap<String, (String, i64, i64)> {
    let mut all = BTreeMap::new();
    for (tag, dir) in [
        ("root", s.root.clone()),
        ("lock", s.lock.parent().unwrap().to_path_buf()),
    ] {
        for (k, v) in snapshot_with_mtimes(&dir) {
            all.insert(format!("{tag}:{k}"), v);
        }
    }
    all
}

/// Install all four kinds from `source` (as spelled in the config) and check everything on
/// disk, in the lock, in `--json`, then a no-op re-sync and a clean `verify`.
fn install_and_check(env: &TestEnv, global: bool, source: &str, commit: Option<Oid>) {
    let s = scope(env, global);
    write_config(
        env,
        global,
        &config_all(AGENTS, (!global).then_some("project"), source),
    );
    let r = ok(kst(env, &["sync", "--json"]));
    let doc = r.json();

    // The skill and the MCP server went where SPEC 9 says: the new kinds did not displace them.
    assert!(
        s.root.join(".claude/skills/pdf/SKILL.md").is_file(),
        "{r:?}"
    );
    let mcp = if global { ".claude.json" } else { ".mcp.json" };
    assert!(read(&s.root.join(mcp)).contains("gh-mcp"), "{r:?}");

    // Commands: every agent's file, byte for byte; nothing for agents without a folder.
    for (rel, want) in command_files(global) {
        let p = s.root.join(rel);
        assert!(p.is_file(), "{rel} missing: {r:?}");
        assert_eq!(read(&p), want, "{rel}");
    }
    for rel in no_command_places(global) {
        assert!(!s.root.join(rel).exists(), "{rel} written: {r:?}");
    }
    // Instructions: per-rule files and one block per instruction in each aggregate file.
    for (rel, want) in rule_files(global) {
        let p = s.root.join(rel);
        assert!(p.is_file(), "{rel} missing: {r:?}");
        assert_eq!(read(&p), want, "{rel}");
    }
    for rel in aggregate_files(global) {
        assert_new_aggregate(&s.root.join(rel), source);
    }
    if global {
        // continue has no global rules; windsurf's global rules are an aggregate.
        assert!(!s.root.join(".continue/rules").exists());
        assert!(!s.root.join(".codeium/windsurf/rules").exists());
    } else {
        assert!(!s.root.join("WARP.md").exists());
    }

    // --json: one item per command and instruction, with its kind, and the summary counts each.
    let cmds = items_of(&doc, "command");
    assert_eq!(
        cmds.keys().collect::<Vec<_>>(),
        ["git:commit", "review"],
        "{doc:#}"
    );
    for (name, item) in &cmds {
        assert_eq!(item["action"], "added", "{item:#}");
        assert_eq!(item["source"], source, "{item:#}");
        assert_eq!(item["error"], Value::Null, "{item:#}");
        let want: Vec<String> = {
            let mut v: Vec<String> = command_files(global)
                .into_iter()
                .filter(|(p, _)| {
                    if name == "git:commit" {
                        p.contains("commit")
                    } else {
                        p.contains("review")
                    }
                })
                .map(|(p, _)| p.to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(dest_paths(item), want, "{item:#}");
    }
    let ins = items_of(&doc, "instruction");
    assert_eq!(
        ins.keys().collect::<Vec<_>>(),
        ["house:security", "style"],
        "{doc:#}"
    );
    for item in ins.values() {
        assert_eq!(item["action"], "added", "{item:#}");
        // One destination per aggregate file and per rules folder.
        assert_eq!(
            dest_paths(item).len(),
            aggregate_files(global).len() + rule_files(global).len() / 2,
            "{item:#}"
        );
    }
    let kinds = &doc["summary"]["kinds"];
    assert_eq!(kinds["skill"], 1, "{doc:#}");
    assert_eq!(kinds["server"], 1, "{doc:#}");
    assert_eq!(kinds["command"], 2, "{doc:#}");
    assert_eq!(kinds["instruction"], 2, "{doc:#}");

    // The lock (SPEC 6): commit, blob id of the source, sha256 of each thing written.
    let lock = lock_yaml(&s.lock);
    let items = lock_items(&lock, "commands");
    assert_eq!(items.keys().collect::<Vec<_>>(), ["git:commit", "review"]);
    for (name, file, src) in [
        ("git:commit", "commands/git/commit.md", CMD_COMMIT),
        ("review", "commands/review.md", CMD_REVIEW),
    ] {
        let (entry, item) = &items[name];
        assert_eq!(entry["url"].as_str(), Some(source), "{entry:?}");
        match commit {
            Some(c) => assert_eq!(entry["commit"].as_str(), Some(c.to_string().as_str())),
            None => assert_eq!(entry["requested"].as_str(), Some("local"), "{entry:?}"),
        }
        assert_eq!(item["path"].as_str(), Some(file), "{item:?}");
        assert_eq!(
            item["blob"].as_str(),
            Some(blob_id(src.as_bytes()).as_str())
        );
        let want: BTreeMap<String, String> = command_files(global)
            .into_iter()
            .filter(|(p, _)| p.contains(if name == "review" { "review" } else { "commit" }))
            .map(|(p, b)| (p.to_string(), sha256(b.as_bytes())))
            .collect();
        assert_eq!(installed_of(item), want, "{name}");
    }
    let items = lock_items(&lock, "instructions");
    assert_eq!(
        items.keys().collect::<Vec<_>>(),
        ["house:security", "style"]
    );
    let [style_block, sec_block] = blocks_of(source, "\n");
    for (name, file, src, blk, stem) in [
        (
            "style",
            "instructions/style.md",
            INS_STYLE,
            &style_block,
            "style",
        ),
        (
            "house:security",
            "instructions/house/security.mdc",
            INS_SEC,
            &sec_block,
            "house-security",
        ),
    ] {
        let (entry, item) = &items[name];
        assert_eq!(entry["url"].as_str(), Some(source), "{entry:?}");
        if let Some(c) = commit {
            assert_eq!(entry["commit"].as_str(), Some(c.to_string().as_str()));
        }
        assert_eq!(item["path"].as_str(), Some(file), "{item:?}");
        assert_eq!(
            item["blob"].as_str(),
            Some(blob_id(src.as_bytes()).as_str())
        );
        let mut want: BTreeMap<String, String> = aggregate_files(global)
            .into_iter()
            .map(|f| {
                (
                    format!("{f}#{}", block_id(source, name)),
                    sha256(blk.as_bytes()),
                )
            })
            .collect();
        for (p, b) in rule_files(global) {
            let fname = p.rsplit('/').next().unwrap();
            if fname.split('.').next() == Some(stem) {
                want.insert(p.to_string(), sha256(b.as_bytes()));
            }
        }
        assert_eq!(installed_of(item), want, "{name}");
    }
    if !global {
        let lock_text = read(&s.lock);
        assert!(
            !lock_text.contains(env.project().to_str().unwrap()),
            "an absolute path in the lock:\n{lock_text}"
        );
    }

    // A re-sync is a no-op: no byte, mode or mtime changed, and the summary names each kind.
    let before = state(&s);
    let r = ok(kst(env, &["sync"]));
    assert_eq!(state(&s), before, "a re-sync changed something: {r:?}");
    assert!(
        r.stderr.contains("2 commands") && r.stderr.contains("2 instructions"),
        "the summary names each kind: {r:?}"
    );
    assert!(
        !r.stderr
            .lines()
            .any(|l| l.starts_with("+ ") || l.starts_with("~ ")),
        "{r:?}"
    );

    // `verify` is clean and checks every command file, rule file and block.
    let r = ok(kst(env, &["verify"]));
    assert!(!r.stderr.contains("modified"), "{r:?}");
    let r = ok(kst(env, &["verify", "--json"]));
    let doc = r.json();
    assert_eq!(doc["ok"], true, "{doc:#}");
    let rows = status_rows(&doc);
    for (rel, _) in command_files(global).into_iter().chain(rule_files(global)) {
        assert!(
            rows.iter().any(|(p, st)| p == rel && st == "ok"),
            "{rel} not verified: {rows:?}"
        );
    }
    for rel in aggregate_files(global) {
        assert!(
            rows.iter()
                .any(|(p, st)| p.starts_with(&format!("{rel}#")) && st == "ok")
                || rows.iter().any(|(p, st)| p == rel && st == "ok"),
            "{rel} blocks not verified: {rows:?}"
        );
    }
    assert_eq!(state(&s), before, "verify wrote something");
}

#[test]
fn all_kinds_from_a_local_folder_into_seven_agents_in_the_project() {
    let env = TestEnv::new();
    write_local_pack(&env.project_path("pack"));
    install_and_check(&env, false, "./pack", None);
}

#[test]
fn all_kinds_from_a_local_folder_into_seven_agents_globally() {
    let env = TestEnv::new();
    let pack = env.home_path("packs/team");
    write_local_pack(&pack);
    install_and_check(&env, true, pack.to_str().unwrap(), None);
}

#[test]
fn all_kinds_from_a_git_pack_on_loopback_into_seven_agents_in_the_project() {
    let env = TestEnv::new();
    let (_repo, commit) = git_pack(&env);
    let d = GitDaemon::start(env.remotes());
    install_and_check(&env, false, &d.url("pack"), Some(commit));
}

#[test]
fn all_kinds_from_a_git_pack_over_http_into_seven_agents_globally() {
    let env = TestEnv::new();
    let (_repo, commit) = git_pack(&env);
    let h = HttpGitServer::start(env.remotes(), HttpOptions::default());
    install_and_check(&env, true, &h.url("pack"), Some(commit));
}

// ---------------------------------------------------------------------------------------------
// Commands only: ownership, prune, conflicts, hostile packs, flags.

/// A project syncing the pack's commands from `./pack` into the seven agents.
fn commands_setup(env: &TestEnv) {
    write_local_pack(&env.project_path("pack"));
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins(AGENTS, "./pack", true, false),
    );
}

#[test]
fn verify_names_an_edited_command_file_in_text_and_json() {
    let env = TestEnv::new();
    commands_setup(&env);
    ok(kst(&env, &["sync"]));
    ok(kst(&env, &["verify"]));
    let edited = ".gemini/commands/git/commit.toml";
    let original = read(&env.project_path(edited));
    write_file(
        env.project_path(edited),
        original.replace("{{args}}", "{{args}} now"),
    );

    let r = code(kst(&env, &["verify"]), 1);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(edited))
        .unwrap_or_else(|| panic!("{edited} not named: {r:?}"));
    assert!(line.contains("modified"), "{r:?}");
    assert!(line.contains("git:commit"), "the command is named: {r:?}");
    for (other, _) in command_files(false) {
        if other != edited {
            assert!(!r.stderr.contains(other), "{other} named: {r:?}");
        }
    }
    let r = code(kst(&env, &["verify", "--json"]), 1);
    let doc = r.json();
    assert_eq!(doc["ok"], false);
    // Every command file is checked; only the edited one is not ok.
    let dests: Vec<&str> = command_files(false).into_iter().map(|(p, _)| p).collect();
    for (p, st) in status_rows(&doc) {
        if dests.contains(&p.as_str()) {
            let want = if p == edited { "modified" } else { "ok" };
            assert_eq!(st, want, "{p}: {doc:#}");
        }
    }
    assert!(
        status_rows(&doc).iter().any(|(p, _)| p == edited),
        "{doc:#}"
    );
    // A deleted file is missing.
    std::fs::remove_file(env.project_path(".claude/commands/review.md")).unwrap();
    let doc = code(kst(&env, &["verify", "--json"]), 1).json();
    assert!(
        status_rows(&doc)
            .iter()
            .any(|(p, st)| p == ".claude/commands/review.md" && st == "missing"),
        "{doc:#}"
    );
}

#[test]
fn an_edited_or_deleted_command_file_is_repaired_by_sync() {
    let env = TestEnv::new();
    commands_setup(&env);
    ok(kst(&env, &["sync"]));
    write_file(env.project_path(".cursor/commands/git-commit.md"), "mine\n");
    std::fs::remove_file(env.project_path(".continue/prompts/review.prompt")).unwrap();
    let r = ok(kst(&env, &["sync", "--json"]));
    let doc = r.json();
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds["git:commit"]["action"], "repaired", "{doc:#}");
    // A tracked file that is missing is installed again, as on a fresh machine (the one
    // exclusive-path table, claims::exclusive, as for skill folders).
    assert_eq!(cmds["review"]["action"], "added", "{doc:#}");
    for (rel, want) in command_files(false) {
        assert_eq!(read(&env.project_path(rel)), want, "{rel}");
    }
    ok(kst(&env, &["verify"]));
}

#[test]
fn a_changed_source_command_is_updated_everywhere() {
    let env = TestEnv::new();
    commands_setup(&env);
    ok(kst(&env, &["sync"]));
    let v2 = CMD_COMMIT.replace("staged changes", "staged files");
    write_file(env.project_path("pack/commands/git/commit.md"), &v2);
    let r = ok(kst(&env, &["sync", "--json"]));
    let doc = r.json();
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds["git:commit"]["action"], "updated", "{doc:#}");
    assert_eq!(cmds["review"]["action"], "unchanged", "{doc:#}");
    for (rel, want) in command_files(false) {
        let want = want.replace("staged changes", "staged files");
        assert_eq!(read(&env.project_path(rel)), want, "{rel}");
    }
    let lock = lock_yaml(&env.project_path("kasetto.lock"));
    let (_, item) = &lock_items(&lock, "commands")["git:commit"];
    assert_eq!(item["blob"].as_str(), Some(blob_id(v2.as_bytes()).as_str()));
    ok(kst(&env, &["verify"]));
}

#[test]
fn removing_the_commands_entry_deletes_only_kst_files() {
    let env = TestEnv::new();
    commands_setup(&env);
    // The user's own commands next to kst's, in a folder kst writes to and in a namespace.
    write_file(env.project_path(".claude/commands/mine.md"), "my own\n");
    write_file(
        env.project_path(".gemini/commands/git/mine.toml"),
        "prompt = \"x\"\n",
    );
    ok(kst(&env, &["sync"]));
    for (rel, _) in command_files(false) {
        assert!(env.project_path(rel).is_file(), "{rel}");
    }
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: {AGENTS}\nscope: project\n"),
    );
    let r = ok(kst(&env, &["sync", "--json"]));
    let doc = r.json();
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds["git:commit"]["action"], "removed", "{doc:#}");
    assert_eq!(cmds["review"]["action"], "removed", "{doc:#}");
    for (rel, _) in command_files(false) {
        assert!(!env.project_path(rel).exists(), "{rel} left behind");
    }
    assert_eq!(
        read(&env.project_path(".claude/commands/mine.md")),
        "my own\n"
    );
    assert_eq!(
        read(&env.project_path(".gemini/commands/git/mine.toml")),
        "prompt = \"x\"\n"
    );
    let lock = read(&env.project_path("kasetto.lock"));
    assert!(!lock.contains("git:commit"), "{lock}");
}

#[test]
fn a_users_own_file_at_a_command_destination_is_a_conflict_unless_force() {
    let env = TestEnv::new();
    commands_setup(&env);
    let theirs = ".claude/commands/git/commit.md";
    write_file(env.project_path(theirs), "the user's own commit command\n");

    let r = code(kst(&env, &["sync", "--json"]), 1);
    let doc = r.json();
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds["git:commit"]["action"], "broken", "{doc:#}");
    let err = cmds["git:commit"].to_string();
    assert!(err.contains(theirs), "the conflict names the file: {doc:#}");
    // Left byte-identical; the other command synced.
    assert_eq!(
        read(&env.project_path(theirs)),
        "the user's own commit command\n"
    );
    assert_eq!(
        read(&env.project_path(".claude/commands/review.md")),
        CMD_REVIEW
    );
    let r = code(kst(&env, &["sync"]), 1);
    assert!(
        r.stderr.contains(theirs) && r.stderr.contains("git:commit"),
        "{r:?}"
    );
    // Not recorded as kst's: removing the entry must not delete it.
    let lock = lock_yaml(&env.project_path("kasetto.lock"));
    if let Some((_, item)) = lock_items(&lock, "commands").get("git:commit") {
        assert!(
            !installed_of(item).contains_key(theirs),
            "a conflicting file was recorded as kst's: {item:?}"
        );
    }

    // --force replaces it, and from then on it is kst's.
    ok(kst(&env, &["sync", "--force"]));
    assert_eq!(read(&env.project_path(theirs)), CMD_COMMIT);
    ok(kst(&env, &["verify"]));
}

#[test]
fn hostile_command_and_instruction_names_are_refused_per_item() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let good = repo.write_blob(CMD_COMMIT.as_bytes());
    let escape = repo.write_blob(b"escaped\n");
    let fine = repo.write_blob(INS_STYLE.as_bytes());
    let inner = repo.write_raw_tree(&[("inner.md", MODE_BLOB, escape)]);
    let commands = repo.write_raw_tree(&[
        ("..", MODE_TREE, inner),
        ("a/b.md", MODE_BLOB, escape),
        ("bell\x07.md", MODE_BLOB, escape),
        ("ok.md", MODE_BLOB, good),
        ("x..md", MODE_BLOB, escape),
    ]);
    let instructions_tree = repo.write_raw_tree(&[
        ("esc\x1b[31m.md", MODE_BLOB, escape),
        ("fine.md", MODE_BLOB, fine),
    ]);
    let root = repo.write_raw_tree(&[
        ("commands", MODE_TREE, commands),
        ("instructions", MODE_TREE, instructions_tree),
    ]);
    repo.commit_tree("main", root);
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins("[claude-code, cursor]", &repo.file_url(), true, true),
    );

    let r = code(kst(&env, &["sync"]), 1);
    assert!(
        !r.stderr.contains('\x07') && !r.stderr.contains('\x1b'),
        "control characters printed raw: {r:?}"
    );
    assert!(r.stderr.contains("control character"), "{r:?}");
    // The good items synced.
    assert_eq!(
        read(&env.project_path(".claude/commands/ok.md")),
        CMD_COMMIT
    );
    assert_eq!(read(&env.project_path(".cursor/rules/fine.mdc")), MDC_STYLE);
    let claude = read(&env.project_path("CLAUDE.md"));
    assert!(claude.contains("Use tabs."), "{claude}");
    assert!(!claude.contains("escaped"), "{claude}");
    // Nothing else anywhere: no file from the `..` folder, no hostile name.
    for dir in [env.project(), env.home(), env.root().to_path_buf()] {
        for path in read_tree_snapshot(&dir).keys() {
            assert!(
                !path.ends_with("inner.md") || path.starts_with("remotes"),
                "{path} written from a `..` folder"
            );
            assert!(
                !path.contains('\x07') && !path.contains('\x1b') && !path.ends_with("/b.md"),
                "{path:?} written"
            );
        }
    }
    let r = code(kst(&env, &["sync", "--json"]), 1);
    let doc = r.json();
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds["ok"]["action"], "unchanged", "{doc:#}");
    let broken: Vec<&String> = cmds
        .iter()
        .filter(|(_, i)| i["action"] == "broken")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        broken.len(),
        4,
        "`..`, `a/b`, bell and `x.` are broken: {doc:#}"
    );
    for (n, i) in &cmds {
        if i["action"] == "broken" {
            assert!(i["error"].is_string(), "{n}: {i:#}");
        }
    }
    let ins = items_of(&doc, "instruction");
    assert_eq!(ins["fine"]["action"], "unchanged", "{doc:#}");
    assert_eq!(
        ins.values().filter(|i| i["action"] == "broken").count(),
        1,
        "{doc:#}"
    );
}

#[test]
fn malformed_frontmatter_breaks_that_command_with_file_and_line() {
    let env = TestEnv::new();
    commands_setup(&env);
    write_file(
        env.project_path("pack/commands/bad.md"),
        "---\ndescription: ok\ntools: [a, {b: SECRET-VALUE\n---\nbody\n",
    );
    let r = code(kst(&env, &["sync"]), 1);
    // `file:line:column` (docs/commands.md), the line being the bad one's (3) or the next.
    assert!(
        r.stderr.contains("commands/bad.md:3:") || r.stderr.contains("commands/bad.md:4:"),
        "file:line:column: {r:?}"
    );
    assert!(
        !r.stderr.contains("SECRET-VALUE"),
        "the file is quoted: {r:?}"
    );
    for (rel, want) in command_files(false) {
        assert_eq!(read(&env.project_path(rel)), want, "{rel}");
    }
    assert!(!env.project_path(".claude/commands/bad.md").exists());
    assert!(!env.project_path(".gemini/commands/bad.toml").exists());
}

#[test]
fn dry_run_writes_nothing_and_lists_the_commands() {
    let env = TestEnv::new();
    commands_setup(&env);
    let before = snapshot_with_mtimes(&env.project());
    let r = ok(kst(&env, &["sync", "--dry-run", "--json"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    let doc = r.json();
    assert_eq!(doc["dry_run"], true);
    let cmds = items_of(&doc, "command");
    assert_eq!(cmds.len(), 2, "{doc:#}");
    assert_eq!(cmds["git:commit"]["action"], "added", "{doc:#}");
    let r = ok(kst(&env, &["sync", "--dry-run"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    assert!(r.stderr.contains("git:commit"), "{r:?}");
    assert!(r.stderr.contains("2 commands"), "{r:?}");
}

#[test]
fn locked_fails_when_the_lock_has_no_commands_section() {
    let env = TestEnv::new();
    write_local_pack(&env.project_path("pack"));
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    ok(kst(&env, &["sync"]));
    let lock_before = read(&env.project_path("kasetto.lock"));
    assert!(!lock_before.contains("commands:"), "{lock_before}");
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n\
         commands:\n  - source: ./pack\n    commands: \"*\"\n",
    );
    let r = code(kst(&env, &["sync", "--locked"]), 1);
    assert!(r.stderr.contains("./pack"), "the entry is named: {r:?}");
    assert!(
        r.stderr.contains("lock") || r.stderr.contains("--locked"),
        "{r:?}"
    );
    assert_eq!(read(&env.project_path("kasetto.lock")), lock_before);
    assert!(!env.project_path(".claude/commands").exists(), "{r:?}");
    // The plain sync records it; then --locked passes.
    ok(kst(&env, &["sync"]));
    ok(kst(&env, &["sync", "--locked"]));
}

#[test]
fn offline_resync_restores_commands_from_the_cache() {
    let env = TestEnv::new();
    let (_repo, commit) = git_pack(&env);
    let mut d = GitDaemon::start(env.remotes());
    let url = d.url("pack");
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins(AGENTS, &url, true, true),
    );
    ok(kst(&env, &["sync"]));
    d.stop();
    // The files are gone (a fresh checkout of the project keeps only the config and lock).
    for dir in [
        ".claude",
        ".cursor",
        ".gemini",
        ".continue",
        ".github",
        ".windsurf",
    ] {
        std::fs::remove_dir_all(env.project_path(dir)).unwrap();
    }
    for f in aggregate_files(false) {
        let _ = std::fs::remove_file(env.project_path(f));
    }
    let r = ok(kst(&env, &["sync", "--offline"]));
    for (rel, want) in command_files(false).into_iter().chain(rule_files(false)) {
        assert_eq!(read(&env.project_path(rel)), want, "{rel}: {r:?}");
    }
    for f in aggregate_files(false) {
        assert_new_aggregate(&env.project_path(f), &url);
    }
    ok(kst(&env, &["sync", "--frozen"]));
    let lock = lock_yaml(&env.project_path("kasetto.lock"));
    let (entry, _) = &lock_items(&lock, "commands")["git:commit"];
    assert_eq!(entry["commit"].as_str(), Some(commit.to_string().as_str()));
}
