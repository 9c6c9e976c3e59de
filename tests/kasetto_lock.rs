//! Switching from Kasetto (SPEC 17): a project set up by Kasetto 3.12 — its `kasetto.lock`
//! (`version: 3`, `skills:` and `assets:` maps) and what it installed — is taken over by one
//! `kst sync`.
//!
//! The fixture locks are written here in Kasetto's exact format (its `LockFile` / `SkillEntry`
//! / `AssetEntry` serde structs: field names, `<source>::<skill>` and `mcp::<source>::<name>`
//! keys, comma-separated destinations), with the hashes computed here the way Kasetto computes
//! them (written independently of kst's code): a skill folder is SHA-256 over its files in path
//! order (`path NUL bytes NUL` each); an inline MCP pack is SHA-256 of its servers' compact JSON
//! with sorted keys.

use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

const SKILLS: &str = ".claude/skills";

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

fn kst(env: &TestEnv, args: &[&str]) -> Run {
    let out = env.kst().args(args).output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Kasetto's hash of a folder: every regular file, ordered by its path's components, as
/// `relative/path NUL content NUL`.
fn kasetto_hash(dir: &Path) -> String {
    fn walk(dir: &Path, rel: Vec<String>, out: &mut Vec<(Vec<String>, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let mut r = rel.clone();
            r.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), r, out);
            } else {
                out.push((r, fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, Vec::new(), &mut files);
    files.sort();
    let mut h = Sha256::new();
    for (rel, bytes) in files {
        h.update(rel.join("/").as_bytes());
        h.update([0]);
        h.update(&bytes);
        h.update([0]);
    }
    hex(h.finalize())
}

/// `<project>/pack/skills/<name>/` with a SKILL.md, a nested file and a file whose name sorts
/// differently by component than as a string (`a.md` vs `a/b.md`).
fn add_skill(env: &TestEnv, name: &str) {
    let dir = env.project_path("pack/skills").join(name);
    write_file(
        dir.join("SKILL.md"),
        skill_md(name, &format!("The {name} skill")),
    );
    write_file(dir.join("a.md"), format!("{name} a\n"));
    write_file(dir.join("a/b.md"), format!("{name} a/b\n"));
}

/// What Kasetto did: copy each skill of the pack into `.claude/skills/`.
fn kasetto_install(env: &TestEnv, name: &str) {
    copy_dir(
        &env.project_path("pack/skills").join(name),
        &env.project_path(SKILLS).join(name),
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// One `skills:` entry of a Kasetto lock, as Kasetto 3.12 serialises `SkillEntry`.
fn kasetto_skill(name: &str, dest: &str, hash: &str) -> String {
    format!(
        "  ./pack::{name}:\n    destination: {dest}\n    hash: {hash}\n    skill: {name}\n    description: The {name} skill\n    source: ./pack\n    source_revision: local\n"
    )
}

/// One `assets:` entry for an inline MCP pack, as Kasetto 3.12 serialises `AssetEntry`.
fn kasetto_inline_mcp(name: &str, servers: &str, hash: &str) -> String {
    format!(
        "  mcp::<inline>::{name}:\n    kind: mcp\n    name: {name}\n    hash: {hash}\n    source: <inline>\n    destination: {servers}\n    source_revision: <inline>\n"
    )
}

fn write_kasetto_lock(path: &Path, skills: &[String], assets: &[String]) {
    let mut text = String::from("version: 3\nskills:\n");
    if skills.is_empty() {
        text = String::from("version: 3\nskills: {}\n");
    }
    for s in skills {
        text.push_str(s);
    }
    if assets.is_empty() {
        text.push_str("assets: {}\n");
    } else {
        text.push_str("assets:\n");
        for a in assets {
            text.push_str(a);
        }
    }
    write_file(path, text);
}

/// The servers of the inline packs, compact JSON with sorted keys (what Kasetto hashes).
const DB: &str = r#"{"local-db":{"args":["--ro"],"command":"pg-mcp"}}"#;
const TOOLS: &str = r#"{"tools":{"command":"tool-mcp"}}"#;

fn config(env: &TestEnv, skills: &[&str], inline: bool) {
    let mut text = format!(
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: [{}]\n",
        skills.join(", ")
    );
    if inline {
        text.push_str(
            "mcps:\n  - name: laptop\n    servers: { local-db: { command: pg-mcp, args: [\"--ro\"] } }\n  - name: extras\n    servers: { tools: { command: tool-mcp } }\n",
        );
    }
    write_file(env.project_path("kasetto.yaml"), text);
}

/// A project as Kasetto 3.12 left it: skills alpha, beta, gamma installed (beta edited by the
/// user since), two inline MCP packs merged into `.mcp.json` (the `tools` entry edited since)
/// next to the user's own server, and Kasetto's lock.
fn kasetto_project(env: &TestEnv) -> String {
    for s in ["alpha", "beta", "gamma"] {
        add_skill(env, s);
        kasetto_install(env, s);
    }
    config(env, &["alpha", "beta", "gamma"], true);
    let mut skills = Vec::new();
    for s in ["alpha", "beta", "gamma"] {
        let dest = format!("{SKILLS}/{s}");
        skills.push(kasetto_skill(
            s,
            &dest,
            &kasetto_hash(&env.project_path(&dest)),
        ));
    }
    // The user edits beta after Kasetto installed it.
    write_file(
        env.project_path(SKILLS).join("beta/SKILL.md"),
        "my own beta\n",
    );
    let assets = vec![
        kasetto_inline_mcp("laptop", "local-db", &hex(Sha256::digest(DB))),
        kasetto_inline_mcp("extras", "tools", &hex(Sha256::digest(TOOLS))),
    ];
    write_kasetto_lock(&env.project_path("kasetto.lock"), &skills, &assets);
    // Kasetto merged the servers verbatim; the user changed `tools` since.
    write_file(
        env.project_path(".mcp.json"),
        "{\n  \"mcpServers\": {\n    \"mine\": {\"command\": \"my-server\"},\n    \"local-db\": {\"command\": \"pg-mcp\", \"args\": [\"--ro\"]},\n    \"tools\": {\"command\": \"tool-mcp\", \"args\": [\"--mine\"]}\n  }\n}\n",
    );
    fs::read_to_string(env.project_path("kasetto.lock")).unwrap()
}

fn lock(env: &TestEnv) -> String {
    fs::read_to_string(env.project_path("kasetto.lock")).unwrap()
}

fn mcp_json(env: &TestEnv) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(env.project_path(".mcp.json")).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// One `kst sync` takes over what is as Kasetto installed it, keeps what the user changed
/// (a skill folder kst did not install fails the sync until the user decides, as always), loses
/// no file, duplicates no entry, keeps the Kasetto lock as a backup; a later config change
/// prunes what Kasetto had installed (and only that).
#[test]
fn one_sync_takes_over_a_kasetto_project_and_a_config_change_prunes_it() {
    let env = TestEnv::new();
    let kasetto_lock = kasetto_project(&env);
    let beta_before = read_tree_snapshot(env.project_path(SKILLS).join("beta"));

    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "beta is in the way: {r:?}");
    assert!(
        r.stderr
            .contains("this is a Kasetto lock; kst took over 2 skills and 1 server"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            ".claude/skills/beta was modified since Kasetto installed it (it no longer matches the Kasetto lock's hash); kept as it is: move it away, or pass --force"
        ),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            ".mcp.json: server \"tools\" was modified since Kasetto installed it; left as it is"
        ),
        "{r:?}"
    );
    assert!(!r.stderr.contains("kst did not install"), "{r:?}");
    // The backup is the Kasetto lock, byte for byte; the lock is kst's now.
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock.kasetto-backup")).unwrap(),
        kasetto_lock
    );
    let l = lock(&env);
    assert!(l.starts_with("# Generated by kst."), "{l}");
    for s in ["alpha", "gamma"] {
        assert!(l.contains(&format!("{SKILLS}/{s}")), "{l}");
    }
    assert!(!l.contains(&format!("{SKILLS}/beta")), "{l}");
    assert!(l.contains("local-db") && !l.contains("tools"), "{l}");
    // No lost file: beta is byte for byte the user's; the others are the pack's.
    assert_snapshots_eq(
        &beta_before,
        &read_tree_snapshot(env.project_path(SKILLS).join("beta")),
    );
    for s in ["alpha", "gamma"] {
        assert_snapshots_eq(
            &read_tree_snapshot(env.project_path("pack/skills").join(s)),
            &read_tree_snapshot(env.project_path(SKILLS).join(s)),
        );
    }
    // No duplicate, nothing lost in the settings file.
    let text = fs::read_to_string(env.project_path(".mcp.json")).unwrap();
    assert_eq!(text.matches("\"local-db\"").count(), 1, "{text}");
    let m = mcp_json(&env);
    assert_eq!(m["mcpServers"]["mine"]["command"], "my-server");
    assert_eq!(m["mcpServers"]["tools"]["args"][0], "--mine");

    // A second sync is a plain kst sync: no take-over, the lock does not change.
    let l1 = lock(&env);
    let r = kst(&env, &["sync"]);
    assert!(!r.stderr.contains("Kasetto lock"), "{r:?}");
    assert_eq!(lock(&env), l1);

    // The config drops beta, gamma and the `laptop` pack: what Kasetto had installed and kst
    // took over is pruned; the user's beta, the edited `tools` and the user's server stay.
    config(&env, &["alpha"], false);
    let r = ok(kst(&env, &["sync"]));
    assert!(!env.project_path(SKILLS).join("gamma").exists(), "{r:?}");
    assert!(env.project_path(SKILLS).join("alpha/SKILL.md").exists());
    assert_snapshots_eq(
        &beta_before,
        &read_tree_snapshot(env.project_path(SKILLS).join("beta")),
    );
    let m = mcp_json(&env);
    assert!(m["mcpServers"].get("local-db").is_none(), "{m}");
    assert_eq!(m["mcpServers"]["mine"]["command"], "my-server");
    assert_eq!(m["mcpServers"]["tools"]["args"][0], "--mine");
    let l = lock(&env);
    assert!(!l.contains("gamma") && !l.contains("local-db"), "{l}");
}

/// `--dry-run` shows the take-over and writes nothing: not the lock, not a backup, not a skill.
#[test]
fn dry_run_shows_the_takeover_and_writes_nothing() {
    let env = TestEnv::new();
    kasetto_project(&env);
    let before = read_tree_snapshot(env.project());
    let r = kst(&env, &["sync", "--dry-run"]);
    assert_eq!(r.code, 1, "beta is in the way: {r:?}");
    assert!(
        r.stderr
            .contains("this is a Kasetto lock; kst would take over 2 skills and 1 server"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("beta was modified since Kasetto"),
        "{r:?}"
    );
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    // And in JSON.
    let r = kst(&env, &["sync", "--dry-run", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    let k = &doc["kasetto_lock"];
    assert_eq!(
        k["taken_over"]["skills"],
        serde_json::json!([".claude/skills/alpha", ".claude/skills/gamma"]),
        "{doc}"
    );
    assert_eq!(
        k["taken_over"]["servers"],
        serde_json::json!([{"name": "local-db", "file": ".mcp.json"}])
    );
    assert_eq!(
        k["modified_locally"]["skills"],
        serde_json::json!([".claude/skills/beta"])
    );
    assert_eq!(
        k["modified_locally"]["servers"],
        serde_json::json!([{"name": "tools", "file": ".mcp.json"}])
    );
    assert!(k["backup"].is_null(), "{doc}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
}

/// `--locked` and `--frozen` refuse the take-over with the way out; so do `lock`, `verify`
/// and `fetch`. Nothing is written.
#[test]
fn locked_frozen_and_other_commands_refuse_it_with_the_way_out() {
    let env = TestEnv::new();
    kasetto_project(&env);
    let before = read_tree_snapshot(env.project());
    for args in [
        &["sync", "--locked"][..],
        &["sync", "--frozen"],
        &["lock"],
        &["verify"],
        &["fetch"],
    ] {
        let r = kst(&env, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("run `kst sync` once to take over the Kasetto lock"),
            "{args:?}: {r:?}"
        );
        assert!(!r.stderr.contains("unknown field"), "{r:?}");
    }
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
}

/// A Kasetto lock is a file in the project: one naming a folder outside the skills folders
/// (with its correct hash) does not make kst own it, so no later sync deletes it.
#[test]
fn a_kasetto_lock_cannot_make_kst_own_a_folder_outside_the_skills_folders() {
    let env = TestEnv::new();
    add_skill(&env, "alpha");
    kasetto_install(&env, "alpha");
    copy_dir(
        &env.project_path("pack/skills/alpha"),
        &env.project_path("docs/alpha"),
    );
    config(&env, &["alpha"], false);
    let hash = kasetto_hash(&env.project_path("docs/alpha"));
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[
            kasetto_skill("alpha", &format!("{SKILLS}/alpha,docs/alpha"), &hash),
            kasetto_skill("alpha", "../alpha", &hash).replace("./pack::alpha", "x::alpha"),
        ],
        &[],
    );
    let docs = read_tree_snapshot(env.project_path("docs"));
    let r = ok(kst(&env, &["sync"]));
    assert!(
        r.stderr.contains("kst took over 1 skill and 0 servers"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            "lists \"docs/alpha\", which is not a skills folder of this scope; left alone"
        ),
        "{r:?}"
    );
    config(&env, &[], false);
    ok(kst(&env, &["sync"]));
    assert!(!env.project_path(SKILLS).join("alpha").exists());
    assert_snapshots_eq(&docs, &read_tree_snapshot(env.project_path("docs")));
}

/// A backup that already exists with other content is never overwritten: the sync stops
/// before writing anything, saying what to do.
#[test]
fn an_existing_different_backup_is_not_overwritten() {
    let env = TestEnv::new();
    kasetto_project(&env);
    write_file(env.project_path("kasetto.lock.kasetto-backup"), "older\n");
    let k = lock(&env);
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("kasetto.lock.kasetto-backup already exists; move it away"),
        "{r:?}"
    );
    assert_eq!(lock(&env), k);
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock.kasetto-backup")).unwrap(),
        "older\n"
    );
}

/// The global scope: Kasetto's lock at `$XDG_DATA_HOME/kasetto/kasetto.lock`, destinations
/// relative to HOME.
#[test]
fn a_global_kasetto_lock_is_taken_over() {
    let env = TestEnv::new();
    add_skill(&env, "alpha");
    let installed = env.home_path(SKILLS).join("alpha");
    copy_dir(&env.project_path("pack/skills/alpha"), &installed);
    let cfg = env.xdg_config().join("kasetto/kasetto.yaml");
    write_file(
        &cfg,
        format!(
            "agent: claude-code\nscope: global\nskills:\n  - source: {}\n    skills: [alpha]\n",
            env.project_path("pack").display()
        ),
    );
    let lock_path = env.xdg_data().join("kasetto/kasetto.lock");
    write_kasetto_lock(
        &lock_path,
        &[kasetto_skill(
            "alpha",
            &format!("{SKILLS}/alpha"),
            &kasetto_hash(&installed),
        )],
        &[],
    );
    let r = ok(kst(&env, &["sync", "--config", cfg.to_str().unwrap()]));
    assert!(r.stderr.contains("kst took over 1 skill"), "{r:?}");
    let l = fs::read_to_string(&lock_path).unwrap();
    assert!(
        l.starts_with("# Generated by kst.") && l.contains(".claude/skills/alpha"),
        "{l}"
    );
    assert!(
        env.xdg_data()
            .join("kasetto/kasetto.lock.kasetto-backup")
            .exists()
    );
}

/// MCP servers from a local pack file: Kasetto hashed the pack file's bytes. Where the file is
/// still what Kasetto hashed, an entry equal to its server is Kasetto's and is taken over (here
/// pruned at once: the config no longer lists its pack); an entry the user edited is reported as
/// modified and kept.
#[test]
fn servers_of_an_unchanged_local_pack_are_taken_over_and_edited_ones_kept() {
    let env = TestEnv::new();
    let db = r#"{"mcpServers":{"db":{"command":"db-mcp"}}}"#;
    let web = r#"{"mcpServers":{"web":{"command":"web-mcp","args":["-v"]}}}"#;
    write_file(env.project_path("pack/mcps/db.json"), db);
    write_file(env.project_path("pack/mcps/web.json"), web);
    write_file(
        env.project_path(".mcp.json"),
        "{\"mcpServers\": {\"mine\": {\"command\": \"my-server\"}, \"db\": {\"command\": \"db-mcp\"}, \"web\": {\"command\": \"web-mcp\", \"args\": [\"-v\", \"--mine\"]}}}\n",
    );
    let asset = |file: &str, server: &str, bytes: &str| {
        format!(
            "  mcp::./pack::{file}:\n    kind: mcp\n    name: {file}\n    hash: {}\n    source: ./pack\n    destination: {server}\n    source_revision: local\n",
            hex(Sha256::digest(bytes))
        )
    };
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[],
        &[asset("db.json", "db", db), asset("web.json", "web", web)],
    );
    // The user dropped the db pack from the config before switching.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nmcps:\n  - source: ./pack\n    mcps: [web]\n",
    );
    let r = ok(kst(&env, &["sync"]));
    assert!(
        r.stderr.contains("kst took over 0 skills and 1 server"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(".mcp.json: server \"web\" was modified since Kasetto installed it"),
        "{r:?}"
    );
    let m = mcp_json(&env);
    assert!(m["mcpServers"].get("db").is_none(), "{m}");
    assert_eq!(m["mcpServers"]["web"]["args"][1], "--mine");
    assert_eq!(m["mcpServers"]["mine"]["command"], "my-server");
}

/// The real Kasetto 3.12 binary, if built by
/// `cargo install kasetto --version 3.12.0 --root /tmp/ref-kasetto`.
const REAL_KASETTO: &str = "/tmp/ref-kasetto/bin/kasetto";

/// A project set up by the real Kasetto 3.12 (skills, a local MCP pack, an inline MCP pack), one
/// skill edited afterwards: one `kst sync` takes over the rest; a config change prunes it.
/// Needs the real binary: without it the test prints why it did nothing.
#[test]
fn a_project_set_up_by_the_real_kasetto_is_taken_over() {
    if !Path::new(REAL_KASETTO).exists() {
        eprintln!(
            "NOTE: {REAL_KASETTO} is absent; this test checks nothing here (build it with \
             `cargo install kasetto --version 3.12.0 --root /tmp/ref-kasetto`)"
        );
        return;
    }
    let env = TestEnv::new();
    for s in ["alpha", "beta"] {
        add_skill(&env, s);
    }
    write_file(
        env.project_path("pack/mcps/db.json"),
        r#"{"mcpServers":{"db":{"command":"db-mcp","args":["--ro"]}}}"#,
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: [alpha, beta]\nmcps:\n  - source: ./pack\n    mcps: [db]\n  - name: laptop\n    servers: { local-db: { command: pg-mcp, args: [\"--ro\"] } }\n",
    );
    let out = env
        .cmd(REAL_KASETTO)
        .arg("sync")
        .env("KASETTO_NO_UPDATE_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kasetto sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kasetto_lock = lock(&env);
    assert!(kasetto_lock.contains("version: 3"), "{kasetto_lock}");
    // The user edits beta after Kasetto installed it.
    write_file(
        env.project_path(SKILLS).join("beta/SKILL.md"),
        "my own beta\n",
    );
    let beta = read_tree_snapshot(env.project_path(SKILLS).join("beta"));

    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "beta is in the way: {r:?}");
    assert!(
        r.stderr
            .contains("this is a Kasetto lock; kst took over 1 skill and 2 servers"),
        "{r:?}\n{kasetto_lock}"
    );
    assert!(
        r.stderr.contains("beta was modified since Kasetto"),
        "{r:?}"
    );
    assert_eq!(
        fs::read_to_string(env.project_path("kasetto.lock.kasetto-backup")).unwrap(),
        kasetto_lock
    );
    let text = fs::read_to_string(env.project_path(".mcp.json")).unwrap();
    assert_eq!(text.matches("\"db\"").count(), 1, "{text}");
    assert_eq!(text.matches("\"local-db\"").count(), 1, "{text}");

    // The config drops alpha and both packs: what Kasetto installed is pruned, beta stays.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills: []\n",
    );
    let r = ok(kst(&env, &["sync"]));
    assert!(!env.project_path(SKILLS).join("alpha").exists(), "{r:?}");
    assert_snapshots_eq(
        &beta,
        &read_tree_snapshot(env.project_path(SKILLS).join("beta")),
    );
    let m = mcp_json(&env);
    assert!(m["mcpServers"].get("db").is_none(), "{m}");
    assert!(m["mcpServers"].get("local-db").is_none(), "{m}");
}

/// Commands and instructions set up by the real Kasetto 3.12 for agents it names and renders
/// differently from kst (Gemini's flat `git-commit.toml`; CRLF made LF in commands and rule
/// files; Continue's and body-only renderings): one `kst sync` takes every file over — kst's own replaces each, the
/// differently named one is removed — with one block per instruction; `kst verify` and
/// `kst doctor` are clean; dropping the entries prunes all of it. Needs the real binary: without
/// it the test prints why it did nothing.
#[test]
fn commands_set_up_by_the_real_kasetto_are_taken_over_with_no_orphan() {
    if !Path::new(REAL_KASETTO).exists() {
        eprintln!(
            "NOTE: {REAL_KASETTO} is absent; this test checks nothing here (build it with \
             `cargo install kasetto --version 3.12.0 --root /tmp/ref-kasetto`)"
        );
        return;
    }
    let env = TestEnv::new();
    write_file(env.project_path("pack/commands/git/commit.md"), COMMIT_MD);
    write_file(
        env.project_path("pack/commands/crlf.md"),
        "---\r\ndescription: crlf\r\n\r\n---\r\nline1 $ARGUMENTS\r\n",
    );
    write_file(
        env.project_path("pack/instructions/style.md"),
        "---\r\ndescription: Style\r\nglobs: \"*.rs\"\r\n---\r\nUse four spaces.\r\n",
    );
    let agents =
        "agent: [claude-code, gemini-cli, cursor, continue, github-copilot, pi]\nscope: project\n";
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "{agents}commands:\n  - source: ./pack\n    commands: \"*\"\ninstructions:\n  - source: ./pack\n    instructions: \"*\"\n"
        ),
    );
    let out = env
        .cmd(REAL_KASETTO)
        .arg("sync")
        .env("KASETTO_NO_UPDATE_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kasetto sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.project_path(GEMINI_FLAT).exists(), "Kasetto's own name");
    let kasetto_lock = lock(&env);

    let r = ok(kst(&env, &["sync"]));
    // 2 commands × 6 agents, every one still as Kasetto wrote it.
    assert!(
        all(&r).contains("kst took over 12 command files as Kasetto wrote them"),
        "{r:?}\n{kasetto_lock}"
    );
    // Cursor's and Continue's rule files: Kasetto made the CRLF source LF, kst keeps it.
    assert!(
        all(&r).contains("kst took over 2 rule files as Kasetto wrote them"),
        "{r:?}\n{kasetto_lock}"
    );
    assert!(!all(&r).contains("modified since"), "{r:?}");
    assert!(!env.project_path(GEMINI_FLAT).exists(), "{r:?}");
    let toml = fs::read_to_string(env.project_path(GEMINI_KST)).unwrap();
    assert!(toml.contains("Commit with {{args}}."), "{toml}");
    let claude_md = fs::read_to_string(env.project_path("CLAUDE.md")).unwrap();
    assert_eq!(
        claude_md.matches("Use four spaces.").count(),
        1,
        "{claude_md}"
    );
    ok(kst(&env, &["verify"]));
    let r = ok(kst(&env, &["doctor"]));
    assert!(all(&r).contains("No problems found"), "{r:?}");

    // Dropping both entries prunes everything Kasetto had installed.
    write_file(env.project_path("kasetto.yaml"), agents);
    ok(kst(&env, &["sync"]));
    let left = read_tree_snapshot(env.project());
    let files: Vec<&String> = left
        .iter()
        .filter(|(_, e)| matches!(e, SnapEntry::File { .. }))
        .map(|(p, _)| p)
        .collect();
    let shared = [
        "CLAUDE.md",
        "GEMINI.md",
        "AGENTS.md",
        ".github/copilot-instructions.md",
    ];
    for p in &files {
        assert!(
            p.starts_with("pack/") || p.starts_with("kasetto.") || shared.contains(&p.as_str()),
            "left behind: {p} in {files:?}"
        );
    }
    let claude_md = fs::read_to_string(env.project_path("CLAUDE.md")).unwrap_or_default();
    assert!(!claude_md.contains("Use four spaces."), "{claude_md}");
}

/// A Kasetto lock kst cannot read (a version it does not know, a wrong shape) is an error
/// (exit 2) that says it is a Kasetto lock; the lock is left byte-identical and no backup made.
#[test]
fn an_unreadable_kasetto_lock_is_an_error_and_left_untouched() {
    for text in [
        "version: 4\nskills: {}\nassets: {}\n",
        "version: 3\nskills:\n  x: [1, 2]\n",
    ] {
        let env = TestEnv::new();
        add_skill(&env, "alpha");
        config(&env, &["alpha"], false);
        write_file(env.project_path("kasetto.lock"), text);
        let r = kst(&env, &["sync"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr
                .contains("this is a Kasetto lock that kst cannot take over"),
            "{r:?}"
        );
        assert_eq!(lock(&env), text);
        assert!(!env.project_path("kasetto.lock.kasetto-backup").exists());
        assert!(!env.project_path(SKILLS).exists());
    }
}

/// `kst doctor` reports a Kasetto lock waiting to be taken over, with the fix; it changes nothing.
#[test]
fn doctor_reports_a_kasetto_lock_waiting_to_be_taken_over() {
    let env = TestEnv::new();
    kasetto_project(&env);
    let before = read_tree_snapshot(env.project());
    let r = kst(&env, &["doctor", "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    let p = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["problem"].as_str().unwrap().contains("is a Kasetto lock"))
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(
        p["problem"].as_str().unwrap().contains(
            "not taken over yet (2 skills and 1 MCP servers would be, 2 items are modified locally)"
        ),
        "{p}"
    );
    assert!(p["fix"].as_str().unwrap().starts_with("kst sync"), "{p}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
}

// ---------------------------------------------------------------------------------------------
// Commands: Kasetto names and renders some agents' files differently from kst (Gemini CLI's
// `git-commit.toml` where kst writes `git/commit.toml`; its own TOML, Continue and body-only
// renderings). Its lock records the *source* file's SHA-256; the files below are written here
// byte for byte as Kasetto 3.12 writes them (checked against the real binary's output).

/// A namespaced command, `commands/git/commit.md` in the pack.
const COMMIT_MD: &str = "---\ndescription: Commit \"staged\" work\n---\nCommit with $ARGUMENTS.\n";
/// What Kasetto 3.12 writes for it for gemini-cli: a flat name, its TOML, `$ARGUMENTS` kept.
const COMMIT_TOML_KASETTO: &str = "description = \"Commit \\\"staged\\\" work\"\nprompt = \"\"\"\nCommit with $ARGUMENTS.\n\"\"\"\n";
const GEMINI_FLAT: &str = ".gemini/commands/git-commit.toml";
const GEMINI_KST: &str = ".gemini/commands/git/commit.toml";
const CLAUDE_CMD: &str = ".claude/commands/git/commit.md";

/// One `assets:` entry for a command, as Kasetto 3.12 serialises `AssetEntry`.
fn kasetto_command(name: &str, dests: &str, hash: &str) -> String {
    kasetto_command_from("./pack", "local", name, dests, hash)
}

fn kasetto_command_from(
    source: &str,
    revision: &str,
    name: &str,
    dests: &str,
    hash: &str,
) -> String {
    format!(
        "  command::{source}::{name}:\n    kind: command\n    name: {name}\n    hash: {hash}\n    source: {source}\n    destination: {dests}\n    source_revision: {revision}\n"
    )
}

fn commands_config(env: &TestEnv, with_commands: bool) {
    let mut text = String::from("agent: [claude-code, gemini-cli]\nscope: project\n");
    if with_commands {
        text.push_str("commands:\n  - source: ./pack\n    commands: \"*\"\n");
    }
    write_file(env.project_path("kasetto.yaml"), text);
}

/// A project as Kasetto 3.12 left it after syncing `git:commit` for claude-code and gemini-cli.
fn kasetto_commands_project(env: &TestEnv) {
    write_file(env.project_path("pack/commands/git/commit.md"), COMMIT_MD);
    commands_config(env, true);
    write_file(env.project_path(CLAUDE_CMD), COMMIT_MD);
    write_file(env.project_path(GEMINI_FLAT), COMMIT_TOML_KASETTO);
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[],
        &[kasetto_command(
            "git:commit",
            &format!("{CLAUDE_CMD},{GEMINI_FLAT}"),
            &hex(Sha256::digest(COMMIT_MD)),
        )],
    );
}

fn all(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// Kasetto's differently named Gemini file is taken over and removed by the first sync, which
/// writes kst's own; `--dry-run` shows both and writes nothing; `kst verify` and `kst doctor`
/// are clean after; a later config change prunes the rest.
#[test]
fn kasetto_command_files_are_taken_over_renamed_and_later_pruned() {
    let env = TestEnv::new();
    kasetto_commands_project(&env);
    let before = read_tree_snapshot(env.project());

    let r = ok(kst(&env, &["sync", "--dry-run"]));
    let out = all(&r);
    assert!(
        out.contains("kst would take over 2 command files as Kasetto wrote them"),
        "{r:?}"
    );
    assert!(
        out.contains(&format!("- command git:commit (./pack) → {GEMINI_FLAT}")),
        "{r:?}"
    );
    assert!(
        out.contains(&format!("+ command git:commit (./pack) → {GEMINI_KST}")),
        "{r:?}"
    );
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    let r = ok(kst(&env, &["sync", "--dry-run", "--json"]));
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert_eq!(
        doc["kasetto_lock"]["taken_over"]["command_files"],
        serde_json::json!([CLAUDE_CMD, GEMINI_FLAT]),
        "{doc}"
    );
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));

    let r = ok(kst(&env, &["sync"]));
    assert!(
        all(&r).contains("kst took over 2 command files as Kasetto wrote them"),
        "{r:?}"
    );
    assert!(!env.project_path(GEMINI_FLAT).exists(), "{r:?}");
    let toml = fs::read_to_string(env.project_path(GEMINI_KST)).unwrap();
    assert!(toml.contains("Commit with {{args}}."), "{toml}");
    assert_eq!(
        fs::read_to_string(env.project_path(CLAUDE_CMD)).unwrap(),
        COMMIT_MD
    );
    let l = lock(&env);
    assert!(l.contains(GEMINI_KST) && l.contains(CLAUDE_CMD), "{l}");
    assert!(!l.contains("git-commit.toml"), "{l}");
    ok(kst(&env, &["verify"]));
    let r = ok(kst(&env, &["doctor"]));
    assert!(all(&r).contains("No problems found"), "{r:?}");

    // The config drops the commands: kst prunes what Kasetto had installed.
    commands_config(&env, false);
    ok(kst(&env, &["sync"]));
    for p in [CLAUDE_CMD, GEMINI_KST, GEMINI_FLAT] {
        assert!(!env.project_path(p).exists(), "{p}");
    }
}

/// A Kasetto command file the user changed since is never removed or overwritten: at a path kst
/// does not write (Gemini's flat name) it is kept and reported; at kst's own path it is in the
/// way, as any file kst did not write (the sync fails, saying why and what to do).
#[test]
fn an_edited_kasetto_command_file_is_kept_and_said_why() {
    let env = TestEnv::new();
    kasetto_commands_project(&env);
    write_file(env.project_path(GEMINI_FLAT), "prompt = \"mine\"\n");
    write_file(env.project_path(CLAUDE_CMD), "my own commit\n");

    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "the edited Claude file is in the way: {r:?}");
    let out = all(&r);
    assert!(
        out.contains(&format!(
            "{GEMINI_FLAT} was modified since Kasetto installed it; kept as it is and not managed by kst (delete it if you no longer want it)"
        )),
        "{r:?}"
    );
    assert!(
        out.contains(&format!(
            "{CLAUDE_CMD} was modified since Kasetto installed it (it is no longer what Kasetto wrote from the source its lock names); kept as it is: move it away, or pass --force"
        )),
        "{r:?}"
    );
    assert!(!out.contains("was not installed by kst"), "{r:?}");
    assert_eq!(
        fs::read_to_string(env.project_path(GEMINI_FLAT)).unwrap(),
        "prompt = \"mine\"\n"
    );
    assert_eq!(
        fs::read_to_string(env.project_path(CLAUDE_CMD)).unwrap(),
        "my own commit\n"
    );
    assert!(env.project_path(GEMINI_KST).exists(), "{r:?}");
    let l = lock(&env);
    assert!(
        !l.contains("git-commit.toml") && !l.contains(CLAUDE_CMD),
        "{l}"
    );
    // `kst doctor` names what Kasetto left that kst does not manage.
    let r = kst(&env, &["doctor"]);
    assert_eq!(r.code, 1, "{r:?}");
    for p in [GEMINI_FLAT, CLAUDE_CMD] {
        assert!(
            all(&r).contains(&format!("{p} was written by Kasetto (")),
            "{p}: {r:?}"
        );
    }

    // Dropping the commands prunes kst's file only; the user's two stay.
    commands_config(&env, false);
    ok(kst(&env, &["sync"]));
    assert!(!env.project_path(GEMINI_KST).exists());
    assert_eq!(
        fs::read_to_string(env.project_path(GEMINI_FLAT)).unwrap(),
        "prompt = \"mine\"\n"
    );
    assert_eq!(
        fs::read_to_string(env.project_path(CLAUDE_CMD)).unwrap(),
        "my own commit\n"
    );
}

/// A Kasetto lock is a file in the project: a command entry naming files outside the agents'
/// commands folders (`..`, an absolute path, another folder) or under another name, each holding
/// exactly Kasetto's rendering, makes kst own none of them: none is ever removed, and the sync
/// says so.
#[test]
fn a_hostile_kasetto_lock_cannot_make_kst_remove_a_command_file_elsewhere() {
    let env = TestEnv::new();
    kasetto_commands_project(&env);
    let absolute = env.home_path(GEMINI_FLAT);
    let outside = env.root().join("git-commit.toml");
    let elsewhere = [
        env.project_path("docs/git-commit.toml"),
        env.project_path(".gemini/commands/other.toml"),
        env.project_path("docs/git/commit.md"),
        absolute.clone(),
        outside.clone(),
    ];
    for p in &elsewhere {
        write_file(p, COMMIT_TOML_KASETTO);
    }
    write_file(env.project_path("docs/git/commit.md"), COMMIT_MD);
    let dests = format!(
        "docs/git-commit.toml,.gemini/commands/other.toml,../git-commit.toml,{},.claude/commands/../../docs/git/commit.md",
        absolute.display()
    );
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[],
        &[kasetto_command(
            "git:commit",
            &dests,
            &hex(Sha256::digest(COMMIT_MD)),
        )],
    );
    let snapshot = |p: &Path| fs::read(p).unwrap();
    let before: Vec<Vec<u8>> = elsewhere.iter().map(|p| snapshot(p)).collect();
    let r = ok(kst(&env, &["sync"]));
    let out = all(&r);
    for listed in [
        "docs/git-commit.toml".to_owned(),
        ".gemini/commands/other.toml".to_owned(),
        "../git-commit.toml".to_owned(),
        absolute.display().to_string(),
        ".claude/commands/../../docs/git/commit.md".to_owned(),
    ] {
        assert!(
            out.contains(&format!(
                "the Kasetto lock lists {listed:?}, which is not where Kasetto writes that command or instruction in an agent's folder of this scope; left alone"
            )),
            "{listed}: {r:?}"
        );
    }
    commands_config(&env, false);
    ok(kst(&env, &["sync"]));
    let after: Vec<Vec<u8>> = elsewhere.iter().map(|p| snapshot(p)).collect();
    assert_eq!(before, after);
}

/// A command whose source changed since Kasetto installed it: what Kasetto wrote cannot be
/// known, so its differently named file is left alone (and said so), never removed.
#[test]
fn a_kasetto_command_file_whose_source_changed_is_left_alone() {
    let env = TestEnv::new();
    kasetto_commands_project(&env);
    fs::remove_file(env.project_path(CLAUDE_CMD)).unwrap();
    write_file(
        env.project_path("pack/commands/git/commit.md"),
        "---\ndescription: newer\n---\nNewer.\n",
    );
    let r = ok(kst(&env, &["sync"]));
    assert!(
        all(&r).contains(&format!(
            "Kasetto's command files {GEMINI_FLAT} are left alone: their source is not in this config or changed since Kasetto installed them"
        )),
        "{r:?}"
    );
    assert_eq!(
        fs::read_to_string(env.project_path(GEMINI_FLAT)).unwrap(),
        COMMIT_TOML_KASETTO
    );
    assert!(env.project_path(GEMINI_KST).exists());
}

/// The same from a git source: Kasetto's entry names the URL as the config spells it; the command
/// read from the pinned commit has the hash Kasetto recorded, so its files are taken over.
#[test]
fn kasetto_command_files_from_a_git_source_are_taken_over() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit(
        "main",
        &[("commands/git/commit.md", FileSpec::file(COMMIT_MD))],
    );
    let url = repo.file_url();
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: [claude-code, gemini-cli]\nscope: project\ncommands:\n  - source: {url}\n    commands: \"*\"\n"
        ),
    );
    write_file(env.project_path(CLAUDE_CMD), COMMIT_MD);
    write_file(env.project_path(GEMINI_FLAT), COMMIT_TOML_KASETTO);
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[],
        &[kasetto_command_from(
            &url,
            "",
            "git:commit",
            &format!("{CLAUDE_CMD},{GEMINI_FLAT}"),
            &hex(Sha256::digest(COMMIT_MD)),
        )],
    );
    let r = ok(kst(&env, &["sync"]));
    assert!(
        all(&r).contains("kst took over 2 command files as Kasetto wrote them"),
        "{r:?}"
    );
    assert!(!env.project_path(GEMINI_FLAT).exists(), "{r:?}");
    assert!(env.project_path(GEMINI_KST).exists(), "{r:?}");
    ok(kst(&env, &["verify"]));
}

/// Instructions' own rule files: Kasetto's lock names them `file:PATH` (blocks `agg:FILE`).
/// One Kasetto wrote from a CRLF source differs from kst's (Kasetto made it LF): still as
/// Kasetto wrote it, it is taken over and rewritten, not a conflict; an edited one is kept and
/// said why; one listed elsewhere is never touched; dropping the entry prunes kst's.
#[test]
fn kasetto_rule_files_are_taken_over_and_edited_ones_kept() {
    let env = TestEnv::new();
    let source = "---\r\ndescription: Style\r\n---\r\nUse four spaces.\r\n";
    write_file(env.project_path("pack/instructions/style.md"), source);
    let cfg = |with: bool| {
        let mut text = String::from("agent: [cursor, roo]\nscope: project\n");
        if with {
            text.push_str("instructions:\n  - source: ./pack\n    instructions: \"*\"\n");
        }
        write_file(env.project_path("kasetto.yaml"), text);
    };
    cfg(true);
    // As Kasetto 3.12 wrote them: LF; the user edited Roo's since.
    let cursor = ".cursor/rules/style.mdc";
    let roo = ".roo/rules/style.md";
    write_file(
        env.project_path(cursor),
        "---\ndescription: Style\n---\nUse four spaces.\n",
    );
    write_file(env.project_path(roo), "Use tabs.\n");
    write_file(env.project_path("docs/style.md"), "Use four spaces.\n");
    write_kasetto_lock(
        &env.project_path("kasetto.lock"),
        &[],
        &[format!(
            "  instructions::./pack::style:\n    kind: instructions\n    name: style\n    hash: {}\n    source: ./pack\n    destination: file:{cursor},file:{roo},file:docs/style.md,agg:CLAUDE.md\n    source_revision: local\n",
            hex(Sha256::digest(source))
        )],
    );
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "the edited Roo file is in the way: {r:?}");
    let out = all(&r);
    assert!(
        out.contains("kst took over 1 rule file as Kasetto wrote them"),
        "{r:?}"
    );
    assert!(
        out.contains(&format!("{roo} was modified since Kasetto installed it (")),
        "{r:?}"
    );
    assert!(
        out.contains("the Kasetto lock lists \"docs/style.md\", which is not where"),
        "{r:?}"
    );
    assert_eq!(
        fs::read(env.project_path(cursor)).unwrap(),
        b"---\ndescription: Style\n---\nUse four spaces.\r\n",
        "kst's rendering (the source's line endings)"
    );
    assert_eq!(
        fs::read_to_string(env.project_path(roo)).unwrap(),
        "Use tabs.\n"
    );
    cfg(false);
    ok(kst(&env, &["sync"]));
    assert!(!env.project_path(cursor).exists());
    assert_eq!(
        fs::read_to_string(env.project_path(roo)).unwrap(),
        "Use tabs.\n"
    );
    assert_eq!(
        fs::read_to_string(env.project_path("docs/style.md")).unwrap(),
        "Use four spaces.\n"
    );
}

/// A Kasetto lock saved by a Windows editor (a UTF-8 BOM, CRLF line endings) is still told
/// apart from kst's and taken over, as the YAML it is.
#[test]
fn a_kasetto_lock_with_a_bom_and_crlf_is_taken_over() {
    let env = TestEnv::new();
    let text = kasetto_project(&env);
    fs::write(
        env.project_path("kasetto.lock"),
        format!("\u{feff}{}", text.replace('\n', "\r\n")),
    )
    .unwrap();
    let r = kst(&env, &["sync"]);
    assert!(
        r.stderr
            .contains("this is a Kasetto lock; kst took over 2 skills and 1 server"),
        "{r:?}"
    );
}
