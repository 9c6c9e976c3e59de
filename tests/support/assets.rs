//! A pack with every asset kind (a skill, an MCP pack, commands, instructions) and what kst must
//! write from it for seven agents in each scope (SPEC 9, 10a, 10b), for `commands_sync` and
//! `instructions_sync`.
//!
//! The expected bytes are written out here literally, from the formats SPEC 10a/10b and
//! docs/commands.md / docs/instructions.md document, so an end-to-end test compares what is on
//! disk with what the contract says, not with what the renderer happens to produce
//! (`commands_sync::expected_bytes_are_what_the_documented_renderers_give` checks the two
//! agree).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use git2::Oid;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FileSpec, FixtureRepo, TestEnv, skill_md, write_file};

/// The seven agents of the end-to-end tests, one per command/instruction format family.
pub const AGENTS: &str =
    "[claude-code, cursor, gemini-cli, codex, continue, github-copilot, windsurf]";

/// `commands/git/commit.md`: frontmatter, `$ARGUMENTS`.
pub const CMD_COMMIT: &str = "---\ndescription: Commit the staged work\nargument-hint: <message>\n---\nWrite a commit message for the staged changes: $ARGUMENTS\n";
/// `commands/review.md`: no frontmatter.
pub const CMD_REVIEW: &str = "Review the diff of $ARGUMENTS.\n";
/// `instructions/style.md`.
pub const INS_STYLE: &str = "---\ndescription: Code style\n---\nUse tabs.\n";
/// `instructions/house/security.mdc`: Cursor's three keys (a list of globs) and one it drops.
pub const INS_SEC: &str = "---\ndescription: House security rules\nglobs: [\"*.ts\", \"*.tsx\"]\nalwaysApply: false\nowner: sec-team\n---\nNever log a token.\nRotate keys.\n";
/// `mcps/github.json`.
pub const MCP_PACK: &str =
    "{\"mcpServers\": {\"github\": {\"command\": \"gh-mcp\", \"args\": [\"--ro\"]}}}\n";

// Rendered forms (SPEC 10a, docs/commands.md "Formats").
/// Markdown body only (cursor).
pub const BODY_COMMIT: &str = "Write a commit message for the staged changes: $ARGUMENTS\n";
/// Gemini TOML: `description` and `prompt`, `$ARGUMENTS` → `{{args}}` (a multi-line basic
/// string, as `toml_edit` writes it).
pub const GEMINI_COMMIT: &str = "description = \"Commit the staged work\"\nprompt = \"\"\"\nWrite a commit message for the staged changes: {{args}}\n\"\"\"\n";
pub const GEMINI_REVIEW: &str = "prompt = \"\"\"\nReview the diff of {{args}}.\n\"\"\"\n";
/// Continue `.prompt`: `invokable: true` added, `$ARGUMENTS` → `{{{ input }}}`.
pub const CONTINUE_COMMIT: &str = "---\ndescription: Commit the staged work\nargument-hint: <message>\ninvokable: true\n---\nWrite a commit message for the staged changes: {{{ input }}}\n";
pub const CONTINUE_REVIEW: &str = "---\ninvokable: true\n---\nReview the diff of {{{ input }}}.\n";

// Rendered rules (SPEC 10b, docs/instructions.md "Per-rule files").
pub const MDC_STYLE: &str = "---\ndescription: Code style\n---\nUse tabs.\n";
pub const MDC_SEC: &str = "---\ndescription: House security rules\nglobs: *.ts, *.tsx\nalwaysApply: false\n---\nNever log a token.\nRotate keys.\n";
pub const RULE_STYLE: &str = "Use tabs.\n";
pub const RULE_SEC: &str = "Never log a token.\nRotate keys.\n";
/// What an instruction puts between its block markers (its body, outer blank lines dropped).
pub const BLOCK_STYLE: &str = "Use tabs.";
pub const BLOCK_SEC: &str = "Never log a token.\nRotate keys.";

/// The pack's files: one skill, one MCP pack, two commands, two instructions.
pub fn pack_files() -> Vec<(String, FileSpec)> {
    vec![
        (
            "skills/pdf/SKILL.md".into(),
            skill_md("pdf", "PDF tools").into(),
        ),
        ("mcps/github.json".into(), MCP_PACK.into()),
        ("commands/git/commit.md".into(), CMD_COMMIT.into()),
        ("commands/review.md".into(), CMD_REVIEW.into()),
        ("instructions/style.md".into(), INS_STYLE.into()),
        ("instructions/house/security.mdc".into(), INS_SEC.into()),
        ("README.md".into(), "# a pack\n".into()),
    ]
}

/// Write the pack into a local folder.
pub fn write_local_pack(dir: &Path) {
    for (rel, spec) in pack_files() {
        write_file(dir.join(rel), spec.bytes());
    }
}

/// The pack as a bare repo `<remotes>/pack` on `trunk` (its HEAD): the repo and the commit.
/// No `.git` suffix, so its URL as written is also its canonical URL (the lock's `url`), and
/// block ids (from the URL as written) are unambiguous.
pub fn git_pack(env: &TestEnv) -> (FixtureRepo, Oid) {
    let mut repo = FixtureRepo::init(env.remotes().join("pack"));
    let c = repo.commit("trunk", &pack_files());
    repo.set_head("trunk");
    (repo, c)
}

/// A config with all four kinds from `source` (spelled as given). `scope` is `Some("project")`
/// or None (the global default). `extra` is appended verbatim.
pub fn config_all(agents: &str, scope: Option<&str>, source: &str) -> String {
    let scope = scope.map(|s| format!("scope: {s}\n")).unwrap_or_default();
    format!(
        "agent: {agents}\n{scope}skills:\n  - source: {source}\n    skills: \"*\"\n\
         mcps:\n  - source: {source}\n    mcps: [github]\n\
         commands:\n  - source: {source}\n    commands: \"*\"\n\
         instructions:\n  - source: {source}\n    instructions: [style, \"house:security\"]\n"
    )
}

/// A project config with only commands and instructions from `source`.
pub fn config_cmd_ins(agents: &str, source: &str, commands: bool, instructions: bool) -> String {
    let mut s = format!("agent: {agents}\nscope: project\n");
    if commands {
        s.push_str(&format!(
            "commands:\n  - source: {source}\n    commands: \"*\"\n"
        ));
    }
    if instructions {
        s.push_str(&format!(
            "instructions:\n  - source: {source}\n    instructions: \"*\"\n"
        ));
    }
    s
}

/// Every command file the seven agents get, relative to the scope root, with its bytes.
pub fn command_files(global: bool) -> Vec<(&'static str, &'static str)> {
    if global {
        vec![
            (".claude/commands/git/commit.md", CMD_COMMIT),
            (".claude/commands/review.md", CMD_REVIEW),
            (".gemini/commands/git/commit.toml", GEMINI_COMMIT),
            (".gemini/commands/review.toml", GEMINI_REVIEW),
            (".codex/prompts/git/commit.md", CMD_COMMIT),
            (".codex/prompts/review.md", CMD_REVIEW),
            (".continue/prompts/git-commit.prompt", CONTINUE_COMMIT),
            (".continue/prompts/review.prompt", CONTINUE_REVIEW),
            (
                ".codeium/windsurf/global_workflows/git/commit.md",
                CMD_COMMIT,
            ),
            (".codeium/windsurf/global_workflows/review.md", CMD_REVIEW),
        ]
    } else {
        vec![
            (".claude/commands/git/commit.md", CMD_COMMIT),
            (".claude/commands/review.md", CMD_REVIEW),
            (".cursor/commands/git-commit.md", BODY_COMMIT),
            (".cursor/commands/review.md", CMD_REVIEW),
            (".gemini/commands/git/commit.toml", GEMINI_COMMIT),
            (".gemini/commands/review.toml", GEMINI_REVIEW),
            (".continue/prompts/git-commit.prompt", CONTINUE_COMMIT),
            (".continue/prompts/review.prompt", CONTINUE_REVIEW),
            (".github/prompts/git-commit.prompt.md", CMD_COMMIT),
            (".github/prompts/review.prompt.md", CMD_REVIEW),
            (".windsurf/workflows/git/commit.md", CMD_COMMIT),
            (".windsurf/workflows/review.md", CMD_REVIEW),
        ]
    }
}

/// Places kst must not write commands to: the agents with no commands folder in the scope.
pub fn no_command_places(global: bool) -> Vec<&'static str> {
    if global {
        vec![".cursor/commands", ".github/prompts", ".copilot/prompts"]
    } else {
        vec![".codex/prompts"]
    }
}

/// Every per-rule file, relative to the scope root, with its bytes.
pub fn rule_files(global: bool) -> Vec<(&'static str, &'static str)> {
    if global {
        vec![
            (".cursor/rules/style.mdc", MDC_STYLE),
            (".cursor/rules/house-security.mdc", MDC_SEC),
        ]
    } else {
        vec![
            (".cursor/rules/style.mdc", MDC_STYLE),
            (".cursor/rules/house-security.mdc", MDC_SEC),
            (".windsurf/rules/style.md", RULE_STYLE),
            (".windsurf/rules/house-security.md", RULE_SEC),
            (".continue/rules/style.md", RULE_STYLE),
            (".continue/rules/house-security.md", RULE_SEC),
        ]
    }
}

/// Every aggregate file (one block per instruction), relative to the scope root.
pub fn aggregate_files(global: bool) -> Vec<&'static str> {
    if global {
        vec![
            ".claude/CLAUDE.md",
            ".codex/AGENTS.md",
            ".gemini/GEMINI.md",
            ".copilot/copilot-instructions.md",
            ".codeium/windsurf/memories/global_rules.md",
        ]
    } else {
        vec![
            "CLAUDE.md",
            "AGENTS.md",
            "GEMINI.md",
            ".github/copilot-instructions.md",
        ]
    }
}

/// The block id SPEC 10b gives: `NAME-` + the first 8 hex digits of sha256(`SOURCE::NAME`).
pub fn block_id(source: &str, name: &str) -> String {
    let d = Sha256::digest(format!("{source}::{name}").as_bytes());
    let hex: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

/// A managed block as written, START line to END marker, without a line ending after it.
pub fn block(id: &str, body: &str, eol: &str) -> String {
    format!(
        "<!-- kasetto:instruction:{id} START -->{eol}{}{eol}<!-- kasetto:instruction:{id} END -->",
        body.replace('\n', eol)
    )
}

/// The two blocks of `source`'s instructions, in discovery order (style, house:security).
pub fn blocks_of(source: &str, eol: &str) -> [String; 2] {
    [
        block(&block_id(source, "style"), BLOCK_STYLE, eol),
        block(&block_id(source, "house:security"), BLOCK_SEC, eol),
    ]
}

/// A new aggregate file kst created with the two blocks (either order: SPEC does not fix it).
#[track_caller]
pub fn assert_new_aggregate(path: &Path, source: &str) {
    let got = read(path);
    let [a, b] = blocks_of(source, "\n");
    let one = format!("{a}\n\n{b}\n");
    let other = format!("{b}\n\n{a}\n");
    assert!(
        got == one || got == other,
        "{}: unexpected content:\n{got}\n--- want\n{one}",
        path.display()
    );
}

/// `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The git blob id of `bytes` (what `git hash-object` prints).
pub fn blob_id(bytes: &[u8]) -> String {
    Oid::hash_object(git2::ObjectType::Blob, bytes)
        .unwrap()
        .to_string()
}

#[track_caller]
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One run of kst.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
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
    /// The `--json` document on stdout.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

pub fn kst(env: &TestEnv, args: &[&str]) -> Run {
    let out = env.kst().args(args).output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
pub fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

#[track_caller]
pub fn code(r: Run, want: i32) -> Run {
    assert_eq!(r.code, want, "{r:?}");
    r
}

/// Every entry under `dir` with its bytes, mode and mtime (ns): a no-op must change none.
pub fn snapshot_with_mtimes(dir: &Path) -> BTreeMap<String, (String, i64, i64)> {
    let mut out = BTreeMap::new();
    for (rel, entry) in super::read_tree_snapshot(dir) {
        let md = fs::symlink_metadata(if rel == "." {
            dir.to_path_buf()
        } else {
            dir.join(&rel)
        })
        .unwrap();
        // Folders' mtimes change when a temp file comes and goes; files' must not.
        let (sec, nsec) = if md.is_dir() {
            (0, 0)
        } else {
            (md.mtime(), md.mtime_nsec())
        };
        out.insert(rel, (format!("{entry:?}"), sec, nsec));
    }
    out
}

/// The items of a `kst sync --json` document of `kind`, by name.
pub fn items_of<'a>(doc: &'a Value, kind: &str) -> BTreeMap<String, &'a Value> {
    doc["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {doc:#}"))
        .iter()
        .filter(|i| i["kind"] == kind)
        .map(|i| (i["name"].as_str().unwrap().to_string(), i))
        .collect()
}

/// The destination paths of an item, sorted.
pub fn dest_paths(item: &Value) -> Vec<String> {
    let mut v: Vec<String> = item["destinations"]
        .as_array()
        .unwrap_or_else(|| panic!("no destinations: {item:#}"))
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Every object in a JSON document that has both `path` and `status` (the rows of
/// `kst verify --json`, whatever list they are in), as (path, status).
pub fn status_rows(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(p)), Some(Value::String(s))) =
                    (m.get("path"), m.get("status"))
                {
                    out.push((p.clone(), s.clone()));
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(doc, &mut out);
    out.sort();
    out
}

/// The lock as YAML.
#[track_caller]
pub fn lock_yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("lock: {e}"))
}

/// The lock's `items` of section `section` (`commands` / `instructions`), by name, with the
/// entry (`url`, `requested`, `commit`) they are under.
pub fn lock_items(
    lock: &serde_yaml_ng::Value,
    section: &str,
) -> BTreeMap<String, (serde_yaml_ng::Value, serde_yaml_ng::Value)> {
    let mut out = BTreeMap::new();
    let entries = lock[section]
        .as_sequence()
        .unwrap_or_else(|| panic!("the lock has no `{section}:` section: {lock:?}"));
    for e in entries {
        for i in e["items"].as_sequence().expect("items") {
            out.insert(
                i["name"].as_str().unwrap().to_string(),
                (e.clone(), i.clone()),
            );
        }
    }
    out
}

/// An item's `installed` map of the lock, as (destination, hash) pairs.
pub fn installed_of(item: &serde_yaml_ng::Value) -> BTreeMap<String, String> {
    item["installed"]
        .as_mapping()
        .unwrap_or_else(|| panic!("no installed map: {item:?}"))
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect()
}
