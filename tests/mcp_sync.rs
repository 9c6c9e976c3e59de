//! MCP servers end to end (SPEC 10): `kst sync` merges pack servers into the settings files of
//! five agents — one per format — that already hold the user's own servers, other keys and
//! comments:
//!
//! | agent | file (project scope) | format |
//! |---|---|---|
//! | claude-code | `.mcp.json` | `mcpServers` |
//! | github-copilot | `.vscode/mcp.json` | VS Code `servers` (JSONC) |
//! | opencode | `.opencode/opencode.json` | OpenCode `mcp` (JSONC) |
//! | codex | `.codex/config.toml` | TOML `[mcp_servers.NAME]` |
//! | zcode | `.zcode/config.json` | `mcp.servers` |
//!
//! The promise under test: additive merge, the user's servers never touched, only kst's own
//! entries changed or removed, secrets only in the settings files.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use kasetto::agents::McpFormat;
use kasetto::mcp::settings::SettingsFile;
use serde_json::{Value, json};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

const AGENTS: &str = "[claude-code, github-copilot, opencode, codex, zcode]";

/// (file, format, the user's content before kst runs)
const SEEDS: &[(&str, McpFormat, &str)] = &[
    (
        ".mcp.json",
        McpFormat::McpServers,
        "{\n  \"mcpServers\": {\n    \"mine\": { \"command\": \"my-server\", \"args\": [\"--x\"] }\n  },\n  \"other\": true\n}\n",
    ),
    (
        ".vscode/mcp.json",
        McpFormat::VsCode,
        "{\n  // my VS Code servers\n  \"inputs\": [],\n  \"servers\": {\n    \"mine\": { \"type\": \"stdio\", \"command\": \"my-server\" }, // keep me\n  },\n}\n",
    ),
    (
        ".opencode/opencode.json",
        McpFormat::OpenCode,
        "{\n  \"$schema\": \"https://opencode.ai/config.json\",\n  /* block comment */\n  \"theme\": \"dark\",\n  \"mcp\": {\n    \"mine\": { \"type\": \"local\", \"command\": [\"my-server\"] }\n  }\n}\n",
    ),
    (
        ".codex/config.toml",
        McpFormat::CodexToml,
        "# my codex config\nmodel = \"o3\" # inline comment\n\n[mcp_servers.mine]\ncommand = \"my-server\"\n\n[profiles.fast]\nmodel = \"o4-mini\"\n",
    ),
    (
        ".zcode/config.json",
        McpFormat::ZCode,
        "{\n  \"theme\": \"x\",\n  \"mcp\": {\n    \"enabled\": true,\n    \"servers\": {\n      \"mine\": {\"command\": \"my-server\"}\n    }\n  }\n}\n",
    ),
];

const SECRET: &str = "kst-sentinel-7f3a91c2";

/// The github pack: one server using a secret placeholder.
fn github_pack(args: &[&str]) -> String {
    json!({"mcpServers": {"github": {
        "command": "gh-mcp",
        "args": args,
        "env": {"GITHUB_TOKEN": "${kst_GH_TOKEN}"}
    }}})
    .to_string()
}

fn seed(env: &TestEnv) {
    for (file, _, text) in SEEDS {
        write_file(env.project_path(file), text);
        fs::set_permissions(env.project_path(file), fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// A local pack folder `<project>/pack` with `mcps/github.json`, and a config using it.
fn setup(env: &TestEnv) {
    seed(env);
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--ro"]),
    );
    config(env, "  - source: ./pack\n    mcps: [github]\n");
}

fn config(env: &TestEnv, mcps: &str) {
    let body = if mcps.is_empty() {
        String::new()
    } else {
        format!("mcps:\n{mcps}")
    };
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: {AGENTS}\nscope: project\n{body}"),
    );
    // Its servers' secrets are resolved only for a config the user trusts.
    env.trust_project_config();
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

fn kst(env: &TestEnv, args: &[&str], secret: Option<&str>) -> Run {
    let mut cmd = env.kst();
    cmd.args(args);
    if let Some(s) = secret {
        cmd.env("KST_GH_TOKEN", s);
    }
    let out = cmd.output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sync(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    kst(env, &all, Some(SECRET))
}

#[track_caller]
fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn read(env: &TestEnv, file: &str) -> String {
    fs::read_to_string(env.project_path(file)).unwrap()
}

/// The entry `name` of a settings file, as JSON.
fn entry(env: &TestEnv, file: &str, format: McpFormat, name: &str) -> Option<Value> {
    SettingsFile::parse(format, Some(&read(env, file)))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .get(name)
}

/// What the github server looks like in each format, with the secret filled in.
fn expected_github(format: McpFormat, args: &[&str]) -> Value {
    let env = json!({"GITHUB_TOKEN": SECRET});
    match format {
        McpFormat::McpServers | McpFormat::ZCode => {
            json!({"command": "gh-mcp", "args": args, "env": env})
        }
        McpFormat::VsCode => {
            json!({"type": "stdio", "command": "gh-mcp", "args": args, "env": env})
        }
        McpFormat::OpenCode => {
            let mut command = vec!["gh-mcp"];
            command.extend_from_slice(args);
            json!({"type": "local", "command": command, "environment": env})
        }
        McpFormat::CodexToml => json!({"command": "gh-mcp", "args": args, "env": env}),
    }
}

/// The user's `mine` entry, exactly as seeded.
fn seeded_mine(format: McpFormat) -> Value {
    let seed = SEEDS.iter().find(|s| s.1 == format).unwrap().2;
    SettingsFile::parse(format, Some(seed))
        .unwrap()
        .get("mine")
        .unwrap()
}

/// The lock (Null when there is none).
fn lock(env: &TestEnv) -> serde_yaml_ng::Value {
    match fs::read_to_string(env.project_path("kasetto.lock")) {
        Ok(t) => serde_yaml_ng::from_str(&t).unwrap(),
        Err(_) => serde_yaml_ng::Value::Null,
    }
}

fn lock_server<'a>(lock: &'a serde_yaml_ng::Value, name: &str) -> Option<&'a serde_yaml_ng::Value> {
    lock["mcps"]
        .as_sequence()?
        .iter()
        .flat_map(|s| s["packs"].as_sequence().into_iter().flatten())
        .find_map(|p| p["servers"].get(name))
}

fn settings_snapshot(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    SEEDS
        .iter()
        .map(|(f, _, _)| (f.to_string(), fs::read(env.project_path(f)).unwrap()))
        .collect()
}

#[track_caller]
fn assert_seeds_intact(env: &TestEnv) {
    for (file, _, text) in SEEDS {
        assert_eq!(read(env, file), *text, "{file} changed");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn adds_servers_to_every_format_keeping_user_content() {
    let env = TestEnv::new();
    setup(&env);
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("+ server github (./pack) → "), "{r:?}");
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--ro"])),
            "{file}"
        );
        assert_eq!(
            entry(&env, file, *format, "mine"),
            Some(seeded_mine(*format)),
            "{file}"
        );
    }
    // Untouched parts keep their bytes: other keys, comments, order.
    assert!(read(&env, ".mcp.json").contains("\"other\": true"));
    let vscode = read(&env, ".vscode/mcp.json");
    assert!(vscode.starts_with("{\n  // my VS Code servers\n  \"inputs\": [],\n  \"servers\": {\n    \"mine\": { \"type\": \"stdio\", \"command\": \"my-server\" }, // keep me\n"), "{vscode}");
    let opencode = read(&env, ".opencode/opencode.json");
    assert!(
        opencode.contains("/* block comment */\n  \"theme\": \"dark\","),
        "{opencode}"
    );
    let codex = read(&env, ".codex/config.toml");
    // The new table joins its siblings; everything else keeps its bytes.
    assert_eq!(
        codex,
        format!(
            "# my codex config\nmodel = \"o3\" # inline comment\n\n[mcp_servers.mine]\ncommand = \"my-server\"\n\n[mcp_servers.github]\ncommand = \"gh-mcp\"\nargs = [\"--ro\"]\nenv = {{ GITHUB_TOKEN = \"{SECRET}\" }}\n\n[profiles.fast]\nmodel = \"o4-mini\"\n"
        )
    );
    let zcode: Value = serde_json::from_str(&read(&env, ".zcode/config.json")).unwrap();
    assert_eq!(zcode["theme"], "x");
    assert_eq!(zcode["mcp"]["enabled"], true);

    // The lock: one hash (placeholder form) and every file it went to.
    let l = lock(&env);
    let gh = lock_server(&l, "github").expect("github in the lock");
    assert!(gh["hash"].as_str().unwrap().starts_with("sha256:"));
    let mut targets: Vec<&str> = gh["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    targets.sort();
    let mut want: Vec<&str> = SEEDS.iter().map(|s| s.0).collect();
    want.sort();
    assert_eq!(targets, want);
    assert_eq!(l["mcps"][0]["url"], "./pack");
    assert_eq!(l["mcps"][0]["packs"][0]["file"], "mcps/github.json");
    assert!(lock_server(&l, "mine").is_none());
}

#[test]
fn resync_is_a_byte_identical_no_op() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    let before = read_tree_snapshot(env.project());
    let r = ok(sync(&env, &["-v"]));
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    assert!(r.stderr.contains("= server github"), "{r:?}");
    assert!(!r.stderr.contains("+ server"), "{r:?}");
}

#[test]
fn user_edit_is_preserved_and_reported_as_modified_locally() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    // The user edits kst's entry in every file.
    for (file, _, _) in SEEDS {
        let text = read(&env, file).replace("--ro", "--rw");
        write_file(env.project_path(file), text);
    }
    let before = settings_snapshot(&env);
    let r = ok(sync(&env, &["--json"]));
    assert_eq!(
        settings_snapshot(&env),
        before,
        "an edited entry was overwritten"
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let item = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "server" && i["name"] == "github")
        .unwrap();
    assert_eq!(item["action"], "skipped");
    for d in item["destinations"].as_array().unwrap() {
        assert_eq!(d["action"], "skipped", "{d}");
        assert_eq!(d["reason"], "modified_locally", "{d}");
    }
    assert_eq!(doc["summary"]["skipped"], 1);
    // Human output says so too, and the lock still owns the entry.
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("modified locally"), "{r:?}");
    assert!(lock_server(&lock(&env), "github").is_some());
    // Deleting the entry lets kst reinstall it.
    let mut f = SettingsFile::parse(McpFormat::McpServers, Some(&read(&env, ".mcp.json"))).unwrap();
    f.remove("github");
    write_file(env.project_path(".mcp.json"), f.to_text());
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("~ server github (repaired)"), "{r:?}");
    assert_eq!(
        entry(&env, ".mcp.json", McpFormat::McpServers, "github"),
        Some(expected_github(McpFormat::McpServers, &["--ro"]))
    );
}

#[test]
fn upstream_change_is_applied_only_with_update() {
    let env = TestEnv::new();
    seed(&env);
    let mut repo = FixtureRepo::init(env.remotes().join("mcp-packs.git"));
    let c1 = repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v1"])))],
    );
    config(
        &env,
        &format!("  - source: {}\n    mcps: [github]\n", repo.file_url()),
    );
    ok(sync(&env, &[]));
    let l = lock(&env);
    assert_eq!(
        l["mcps"][0]["commit"].as_str(),
        Some(c1.to_string().as_str())
    );
    assert_eq!(l["mcps"][0]["requested"], "default");

    let c2 = repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v2"])))],
    );
    // Plain sync: the pin holds.
    let before = settings_snapshot(&env);
    ok(sync(&env, &[]));
    assert_eq!(settings_snapshot(&env), before);

    let r = ok(sync(&env, &["--update"]));
    assert!(r.stderr.contains("~ server github"), "{r:?}");
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--v2"])),
            "{file}"
        );
        assert_eq!(
            entry(&env, file, *format, "mine"),
            Some(seeded_mine(*format))
        );
    }
    assert_eq!(
        lock(&env)["mcps"][0]["commit"].as_str(),
        Some(c2.to_string().as_str())
    );
}

#[test]
fn upstream_change_replaces_entries_kst_wrote_even_with_secrets() {
    // The old definition is recognised through the placeholder, whatever the secret's value.
    let env = TestEnv::new();
    setup(&env);
    ok(kst(&env, &["sync"], Some("old-value")));
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--new"]),
    );
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("~ server github"), "{r:?}");
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--new"])),
            "{file}"
        );
    }
}

#[test]
fn removing_the_pack_from_the_config_removes_only_ours() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    config(&env, "");
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("- server github"), "{r:?}");
    // Back to the user's bytes, comments and all.
    assert_seeds_intact(&env);
    assert!(lock(&env).get("mcps").is_none());
}

#[test]
fn edited_entry_is_left_in_place_when_removed_from_the_config() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    let text = read(&env, ".codex/config.toml").replace("--ro", "--mine-now");
    write_file(env.project_path(".codex/config.toml"), &text);
    config(&env, "");
    let r = ok(sync(&env, &[]));
    assert_eq!(read(&env, ".codex/config.toml"), text);
    assert!(r.stderr.contains("modified locally"), "{r:?}");
    // The others were removed.
    assert_eq!(read(&env, ".mcp.json"), SEEDS[0].2);
}

#[test]
fn name_clash_with_a_user_server_is_reported_and_untouched() {
    let env = TestEnv::new();
    seed(&env);
    write_file(
        env.project_path("pack/mcps/mine.json"),
        json!({"mcpServers": {"mine": {"command": "pack-version"}}}).to_string(),
    );
    config(&env, "  - source: ./pack\n    mcps: [mine]\n");
    let r = ok(sync(&env, &["--json"]));
    assert_seeds_intact(&env);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let item = &doc["items"][0];
    assert_eq!(item["name"], "mine");
    assert_eq!(item["action"], "skipped");
    assert_eq!(item["destinations"][0]["reason"], "conflict");
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("that kst did not install"), "{r:?}");
    assert_seeds_intact(&env);
    assert!(lock_server(&lock(&env), "mine").is_none());
    // Removing the pack does not remove the user's server.
    config(&env, "");
    ok(sync(&env, &[]));
    assert_seeds_intact(&env);
}

/// Write `value` as the entry `name` of a settings file, by hand (not through kst).
fn put_entry(env: &TestEnv, file: &str, format: McpFormat, name: &str, value: &Value) {
    let mut f = SettingsFile::parse(format, Some(&read(env, file))).unwrap();
    f.upsert(name, value);
    write_file(env.project_path(file), f.to_text());
}

/// `v` with every string's `from` replaced by `to`.
fn replace_in(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_in(x, from, to)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), replace_in(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The sync's `github` item from `--json` output.
fn github_item(r: &Run) -> Value {
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "server" && i["name"] == "github")
        .cloned()
        .unwrap_or_else(|| panic!("no github item: {r:?}"))
}

#[test]
fn untracked_entry_exactly_like_ours_is_adopted() {
    // What a run that crashed before writing its lock leaves behind: entries that are exactly
    // what kst would write (secret filled in, each format's shape), and no lock.
    let env = TestEnv::new();
    setup(&env);
    for (file, format, _) in SEEDS {
        put_entry(
            &env,
            file,
            *format,
            "github",
            &expected_github(*format, &["--ro"]),
        );
    }
    let before = settings_snapshot(&env);
    let r = ok(sync(&env, &["--json"]));
    assert_eq!(
        settings_snapshot(&env),
        before,
        "an adopted entry was rewritten"
    );
    let item = github_item(&r);
    assert_eq!(item["action"], "unchanged", "{r:?}");
    for d in item["destinations"].as_array().unwrap() {
        assert_eq!(d["action"], "unchanged", "{d}");
        assert!(d.get("reason").is_none_or(Value::is_null), "{d}");
    }
    let l = lock(&env);
    let targets = lock_server(&l, "github").expect("adopted into the lock")["targets"]
        .as_sequence()
        .unwrap()
        .len();
    assert_eq!(targets, SEEDS.len());
    // The next run converges: a byte-identical no-op.
    let snap = read_tree_snapshot(env.project());
    let r = ok(sync(&env, &["-v"]));
    assert_snapshots_eq(&snap, &read_tree_snapshot(env.project()));
    assert!(r.stderr.contains("= server github"), "{r:?}");
    // It is kst's now: a change upstream replaces it.
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--new"]),
    );
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("~ server github"), "{r:?}");
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--new"])),
            "{file}"
        );
    }
}

#[test]
fn untracked_entry_that_differs_in_any_way_is_a_conflict_and_untouched() {
    type Variant = fn(McpFormat) -> Value;
    let variants: &[(&str, Variant)] = &[
        ("another secret value", |f| {
            replace_in(
                &expected_github(f, &["--ro"]),
                SECRET,
                "someone-elses-token",
            )
        }),
        ("the placeholder itself", |f| {
            replace_in(&expected_github(f, &["--ro"]), SECRET, "${kst_GH_TOKEN}")
        }),
        ("another argument", |f| expected_github(f, &["--rw"])),
        ("an extra key", |f| {
            let mut v = expected_github(f, &["--ro"]);
            v["note"] = json!("mine");
            v
        }),
        ("a missing key", |f| {
            let mut v = expected_github(f, &["--ro"]);
            let m = v.as_object_mut().unwrap();
            m.remove("env");
            m.remove("environment");
            v
        }),
    ];
    for (what, variant) in variants {
        let env = TestEnv::new();
        setup(&env);
        for (file, format, _) in SEEDS {
            put_entry(&env, file, *format, "github", &variant(*format));
        }
        let before = settings_snapshot(&env);
        for _ in 0..2 {
            let r = ok(sync(&env, &["--json"]));
            assert_eq!(
                settings_snapshot(&env),
                before,
                "{what}: a user's entry was changed"
            );
            let item = github_item(&r);
            assert_eq!(item["action"], "skipped", "{what}: {r:?}");
            for d in item["destinations"].as_array().unwrap() {
                assert_eq!(d["action"], "skipped", "{what}: {d}");
                assert_eq!(d["reason"], "conflict", "{what}: {d}");
            }
            assert!(lock_server(&lock(&env), "github").is_none(), "{what}");
        }
        // Not ours, so removing the pack leaves it alone too.
        config(&env, "");
        ok(sync(&env, &[]));
        assert_eq!(
            settings_snapshot(&env),
            before,
            "{what}: removed with the pack"
        );
    }
}

#[test]
fn malformed_settings_file_is_left_byte_identical_and_fails_the_pack() {
    let broken: &[(&str, &str)] = &[
        (".mcp.json", "{\n  \"mcpServers\": {\n"),
        (
            ".vscode/mcp.json",
            "{ // unterminated\n  \"servers\": { \"mine\": [1,, ] }\n}\n",
        ),
        (
            ".opencode/opencode.json",
            "{ \"mcp\": \"not an object\" }\n",
        ),
        (
            ".codex/config.toml",
            "model = \"o3\"\n[mcp_servers.mine\ncommand = \"x\"\n",
        ),
        (".zcode/config.json", "[\"an array\"]\n"),
    ];
    for (file, text) in broken {
        let env = TestEnv::new();
        setup(&env);
        write_file(env.project_path(file), text);
        let r = sync(&env, &[]);
        assert_eq!(r.code, 1, "{file}: {r:?}");
        assert_eq!(read(&env, file), *text, "{file} was changed");
        assert!(r.stderr.contains("left unchanged"), "{file}: {r:?}");
        assert!(!r.stderr.contains(SECRET), "{r:?}");
        // The other files still got the server.
        for (other, format, _) in SEEDS.iter().filter(|s| s.0 != *file) {
            assert!(entry(&env, other, *format, "github").is_some(), "{other}");
        }
        // The lock does not claim the broken file.
        let l = lock(&env);
        let targets = &lock_server(&l, "github").unwrap()["targets"];
        assert!(
            !targets.as_sequence().unwrap().iter().any(|t| t == file),
            "{file}: {targets:?}"
        );
    }
}

#[test]
fn secret_reaches_only_the_settings_files() {
    let env = TestEnv::new();
    setup(&env);
    let runs = [
        sync(&env, &["--json"]),
        sync(&env, &["-vvv"]),
        kst(&env, &["lock", "--json"], Some(SECRET)),
        sync(&env, &["--dry-run", "--json"]),
    ];
    for r in &runs {
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            !r.stdout.contains(SECRET) && !r.stderr.contains(SECRET),
            "{r:?}"
        );
    }
    for (file, _, _) in SEEDS {
        assert!(read(&env, file).contains(SECRET), "{file}");
    }
    let mut hits = find_bytes_in_tree(env.root(), SECRET.as_bytes());
    hits.sort();
    let mut want: Vec<String> = SEEDS.iter().map(|s| format!("project/{}", s.0)).collect();
    want.sort();
    assert_eq!(hits, want, "the secret leaked outside the settings files");
    assert!(read(&env, "kasetto.lock").contains("sha256:"));
}

#[test]
fn missing_secret_fails_the_pack_unless_allowed() {
    let env = TestEnv::new();
    setup(&env);
    let r = kst(&env, &["sync"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("KST_GH_TOKEN is not set"), "{r:?}");
    assert_seeds_intact(&env);

    let r = kst(&env, &["sync", "--allow-missing-secrets"], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("KST_GH_TOKEN is not set"), "{r:?}");
    assert_seeds_intact(&env);
}

#[test]
fn new_settings_files_are_private_and_existing_ones_keep_their_mode() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--ro"]),
    );
    config(&env, "  - source: ./pack\n");
    // One existing file with its own mode; the others do not exist yet.
    write_file(env.project_path(".mcp.json"), SEEDS[0].2);
    fs::set_permissions(
        env.project_path(".mcp.json"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    ok(sync(&env, &[]));
    let mode = |f: &str| {
        fs::metadata(env.project_path(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".mcp.json"), 0o640);
    for (file, format, _) in &SEEDS[1..] {
        assert_eq!(mode(file), 0o600, "{file}");
        assert!(entry(&env, file, *format, "github").is_some(), "{file}");
    }
}

#[test]
fn symlinked_settings_file_stays_a_symlink() {
    // Global scope: ~/.claude.json links into a dotfiles folder, as people do.
    let env = TestEnv::new();
    let real = env.home_path("dotfiles/claude.json");
    write_file(&real, "{\n  \"numStartups\": 3,\n  \"mcpServers\": {}\n}\n");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
    symlink("dotfiles/claude.json", env.home_path(".claude.json"));
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--ro"]),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nmcps:\n  - source: ./pack\n",
    );
    // Global scope from the working directory: the user trusts the file first.
    ok(kst(&env, &["trust"], None));
    ok(sync(&env, &[]));
    let link = fs::symlink_metadata(env.home_path(".claude.json")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        fs::read_link(env.home_path(".claude.json")).unwrap(),
        std::path::Path::new("dotfiles/claude.json")
    );
    let v: Value = serde_json::from_str(&fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(v["numStartups"], 3);
    assert_eq!(v["mcpServers"]["github"]["env"]["GITHUB_TOKEN"], SECRET);
    assert_eq!(
        fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Removal writes through the link too.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nmcps: []\n",
    );
    // An edited file is trusted again.
    ok(kst(&env, &["trust"], None));
    ok(sync(&env, &[]));
    assert!(
        fs::symlink_metadata(env.home_path(".claude.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(&real).unwrap(),
        "{\n  \"numStartups\": 3,\n  \"mcpServers\": {}\n}\n"
    );
}

#[test]
fn project_symlink_inside_the_project_is_written_through() {
    let env = TestEnv::new();
    setup(&env);
    let shared = env.project_path("shared/mcp.json");
    fs::create_dir_all(shared.parent().unwrap()).unwrap();
    fs::rename(env.project_path(".mcp.json"), &shared).unwrap();
    symlink("shared/mcp.json", env.project_path(".mcp.json"));
    ok(sync(&env, &[]));
    assert!(
        fs::symlink_metadata(env.project_path(".mcp.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fs::read_to_string(&shared).unwrap().contains("gh-mcp"));
}

#[test]
fn project_symlink_leading_out_of_the_project_is_refused() {
    let env = TestEnv::new();
    setup(&env);
    // A cloned project points its .mcp.json at the user's global Claude settings.
    let outside = env.home_path(".claude.json");
    write_file(&outside, "{\"mcpServers\": {}}\n");
    fs::remove_file(env.project_path(".mcp.json")).unwrap();
    symlink(&outside, env.project_path(".mcp.json"));
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("leads out of the project"), "{r:?}");
    assert_eq!(
        fs::read_to_string(&outside).unwrap(),
        "{\"mcpServers\": {}}\n"
    );
}

#[test]
fn symlink_swapped_in_after_planning_is_refused_at_write_time() {
    // The plan read a plain `.mcp.json`; before kst writes it, it becomes a symlink to the
    // user's global settings. The write checks confinement again and refuses.
    use std::io::{BufRead, BufReader, Read};
    let env = TestEnv::new();
    setup(&env);
    let outside = env.home_path(".claude.json");
    write_file(&outside, "{\"mcpServers\": {}}\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kst"))
        .env_clear()
        .envs(env.hermetic_vars())
        .current_dir(env.project())
        .arg("sync")
        .env("KST_GH_TOKEN", SECRET)
        .env("KASETTO_FAILPOINT_HOLD", "mcp-apply")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("fail point mcp-apply reached") {
        assert!(err.read_line(&mut said).unwrap() > 0, "{said}");
    }
    fs::remove_file(env.project_path(".mcp.json")).unwrap();
    symlink(&outside, env.project_path(".mcp.json"));
    drop(child.stdin.take());
    err.read_to_string(&mut said).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(said.contains("leads out of the project"), "{said}");
    assert_eq!(
        fs::read_to_string(&outside).unwrap(),
        "{\"mcpServers\": {}}\n"
    );
    // The other agents' files were written, and the lock does not claim the refused one.
    assert_eq!(
        entry(&env, ".codex/config.toml", McpFormat::CodexToml, "github"),
        Some(expected_github(McpFormat::CodexToml, &["--ro"]))
    );
    let targets = lock_server(&lock(&env), "github").unwrap()["targets"].clone();
    assert!(
        !targets
            .as_sequence()
            .unwrap()
            .iter()
            .any(|t| t.as_str() == Some(".mcp.json")),
        "{targets:?}"
    );
}

#[test]
fn dry_run_writes_nothing_and_prints_the_plan() {
    let env = TestEnv::new();
    setup(&env);
    let before = read_tree_snapshot(env.project());
    let r = ok(sync(&env, &["--dry-run", "--json"]));
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    let item = &doc["items"][0];
    assert_eq!(item["kind"], "server");
    assert_eq!(item["name"], "github");
    assert_eq!(item["action"], "added");
    assert!(item["hash"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(item["destinations"].as_array().unwrap().len(), SEEDS.len());
    assert_eq!(doc["summary"]["added"], 1);
    let r = ok(sync(&env, &["--dry-run"]));
    assert!(r.stderr.contains("+ server github"), "{r:?}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
}

#[test]
fn locked_sync_fails_on_mcp_drift() {
    let env = TestEnv::new();
    setup(&env);
    let r = sync(&env, &["--locked"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("MCP ./pack (local) is not in the lock"),
        "{r:?}"
    );
    assert_seeds_intact(&env);
    ok(sync(&env, &[]));
    ok(sync(&env, &["--locked"]));
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--changed"]),
    );
    let r = sync(&env, &["--locked"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("server github hash"), "{r:?}");
    let check = kst(&env, &["lock", "--check"], Some(SECRET));
    assert_eq!(check.code, 1, "{check:?}");
}

#[test]
fn first_source_wins_between_packs() {
    let env = TestEnv::new();
    setup(&env);
    config(
        &env,
        "  - source: ./pack\n    mcps: [github]\n  - name: extras\n    servers: { github: { command: other }, local-db: { command: pg-mcp } }\n",
    );
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("already provided by ./pack"), "{r:?}");
    assert_eq!(
        entry(&env, ".mcp.json", McpFormat::McpServers, "github"),
        Some(expected_github(McpFormat::McpServers, &["--ro"]))
    );
    assert_eq!(
        entry(&env, ".mcp.json", McpFormat::McpServers, "local-db"),
        Some(json!({"command": "pg-mcp"}))
    );
    let l = lock(&env);
    assert_eq!(l["mcps"][0]["url"], "./pack");
    assert_eq!(l["mcps"][1]["url"], "inline:extras");
    assert_eq!(l["mcps"][1]["packs"][0]["file"], "inline");
}

#[test]
fn hostile_lock_cannot_make_kst_edit_other_files() {
    // The hostile lock carries the REAL hash of what kst writes for `evil`, and the files it
    // names hold exactly that entry: ownership by hash holds, so only the rule "a lock can name
    // only settings files of known agents in this scope" keeps kst out of them.
    let env = TestEnv::new();
    seed(&env);
    write_file(
        env.project_path("pack/mcps/x.json"),
        "{\"mcpServers\": {\"evil\": {\"command\": \"x\"}}}\n",
    );
    config(&env, "  - source: ./pack\n    mcps: [x]\n");
    ok(sync(&env, &[]));
    let locked = lock_server(&lock(&env), "evil")
        .expect("evil is locked")
        .clone();
    let hash = locked["hash"].as_str().unwrap().to_string();
    let real: Vec<String> = locked["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(real.len(), SEEDS.len(), "{real:?}");
    assert_eq!(
        entry(&env, ".mcp.json", McpFormat::McpServers, "evil"),
        Some(json!({"command": "x"}))
    );
    // Exactly what kst wrote into `.mcp.json`, in files that are no agent's settings file of
    // this scope: one in the project, one in a project subfolder, one beside the project, and
    // claude-code's own file of the *global* scope (a known agent, the wrong scope).
    let victim = "{\"mcpServers\": {\"evil\": {\"command\": \"x\"}}}\n";
    let outside = env.path("outside.json");
    let global = env.home_path(".claude.json");
    let victims = [
        env.project_path(".bashrc"),
        env.project_path("notes/settings.json"),
        outside.clone(),
        global.clone(),
    ];
    for v in &victims {
        write_file(v, victim);
    }
    write_file(
        env.project_path("kasetto.lock"),
        format!(
            "version: 1\nmcps:\n- url: ./pack\n  requested: local\n  packs:\n  - file: mcps/x.json\n    servers:\n      evil:\n        hash: {hash}\n        targets: [{}, .bashrc, notes/settings.json, ../outside.json, {}]\n",
            real.join(", "),
            global.display()
        ),
    );
    // The pack leaves the config: kst removes what the lock says it owns.
    config(&env, "");
    let r = sync(&env, &[]);
    // Nothing but the agents' settings files was touched...
    for v in &victims {
        assert_eq!(
            fs::read_to_string(v).unwrap(),
            victim,
            "{} was edited: {r:?}",
            v.display()
        );
    }
    // ...where the real hash does own the entries (so the hash is right): they are back to the
    // user's own.
    ok(r);
    assert_seeds_intact(&env);
}

#[test]
fn hostile_lock_with_a_wrong_hash_owns_nothing() {
    let env = TestEnv::new();
    seed(&env);
    config(&env, "");
    write_file(
        env.project_path("kasetto.lock"),
        "version: 1\nmcps:\n- url: ./pack\n  requested: local\n  packs:\n  - file: mcps/x.json\n    servers:\n      mine:\n        hash: sha256:0000000000000000000000000000000000000000000000000000000000000000\n        targets: [.mcp.json]\n",
    );
    ok(sync(&env, &[]));
    // A wrong hash is not ownership: the user's `mine` stays.
    assert_seeds_intact(&env);
}

#[test]
fn fetch_then_frozen_installs_locked_servers_without_the_remote() {
    let env = TestEnv::new();
    seed(&env);
    let mut repo = FixtureRepo::init(env.remotes().join("mcp-packs.git"));
    repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v1"])))],
    );
    config(
        &env,
        &format!("  - source: {}\n    mcps: [github]\n", repo.file_url()),
    );
    ok(sync(&env, &[]));
    // A CI runner: the lock and config are there, the cache is empty, then the network goes.
    fs::remove_dir_all(env.cache()).unwrap();
    let r = ok(kst(&env, &["fetch"], None));
    assert!(r.stderr.contains("(fetched)"), "{r:?}");
    fs::rename(
        env.remotes().join("mcp-packs.git"),
        env.remotes().join("gone.git"),
    )
    .unwrap();
    // The settings files are back to the user's own (the lock still says kst owns github there).
    seed(&env);
    let r = ok(sync(&env, &["--frozen"]));
    assert!(r.stderr.contains("~ server github (repaired)"), "{r:?}");
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--v1"])),
            "{file}"
        );
    }
}

#[test]
fn github_copilot_global_file_is_in_the_vscode_user_folder() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--ro"]),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: github-copilot\nmcps:\n  - source: ./pack\n",
    );
    // Global scope from the working directory: the user trusts the file first.
    ok(kst(&env, &["trust"], None));
    ok(sync(&env, &[]));
    let default = env.xdg_config().join("Code/User/mcp.json");
    let v: Value = serde_json::from_str(&fs::read_to_string(&default).unwrap()).unwrap();
    assert_eq!(v["servers"]["github"]["type"], "stdio");
    // Insiders, VSCodium, portable installs: KASETTO_VSCODE_USER_DIR.
    let custom = env.path("vscodium-user");
    let r = env
        .kst()
        .args(["sync"])
        .env("KST_GH_TOKEN", SECRET)
        .env("KASETTO_VSCODE_USER_DIR", &custom)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let v: Value =
        serde_json::from_str(&fs::read_to_string(custom.join("mcp.json")).unwrap()).unwrap();
    assert_eq!(v["servers"]["github"]["command"], "gh-mcp");
    // The lock records paths relative to HOME when inside it, absolute otherwise.
    let lock_text = fs::read_to_string(env.xdg_data().join("kasetto/kasetto.lock")).unwrap();
    assert!(
        lock_text.contains(&custom.join("mcp.json").display().to_string()),
        "{lock_text}"
    );
}

#[test]
fn lock_needs_no_secrets_and_matches_what_sync_writes() {
    let env = TestEnv::new();
    setup(&env);
    let r = kst(&env, &["lock"], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert_seeds_intact(&env);
    let locked = read(&env, "kasetto.lock");
    assert!(lock_server(&lock(&env), "github").is_some(), "{locked}");
    // A CI run with the secret set installs exactly what the lock says.
    ok(sync(&env, &["--locked"]));
    assert_eq!(read(&env, "kasetto.lock"), locked);
    assert!(read(&env, ".mcp.json").contains(SECRET));
}

#[test]
fn removing_an_agent_removes_our_entries_from_its_file_only() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, github-copilot, opencode, zcode]\nscope: project\nmcps:\n  - source: ./pack\n    mcps: [github]\n",
    );
    env.trust_project_config();
    let r = ok(sync(&env, &[]));
    assert!(
        r.stderr
            .contains("- server github (./pack) → .codex/config.toml"),
        "{r:?}"
    );
    assert_eq!(read(&env, ".codex/config.toml"), SEEDS[3].2);
    assert!(entry(&env, ".mcp.json", McpFormat::McpServers, "github").is_some());
}

#[test]
fn unreachable_source_keeps_its_servers_and_lock_entry() {
    let env = TestEnv::new();
    seed(&env);
    let mut repo = FixtureRepo::init(env.remotes().join("mcp-packs.git"));
    repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v1"])))],
    );
    config(
        &env,
        &format!("  - source: {}\n    mcps: [github]\n", repo.file_url()),
    );
    ok(sync(&env, &[]));
    let lock_before = read(&env, "kasetto.lock");
    let files_before = settings_snapshot(&env);
    fs::rename(
        env.remotes().join("mcp-packs.git"),
        env.remotes().join("gone.git"),
    )
    .unwrap();
    let r = sync(&env, &["--update", "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc["sources"][0]["error"].as_str().is_some(), "{doc}");
    assert_eq!(doc["summary"]["failed_sources"], 1);
    assert_eq!(read(&env, "kasetto.lock"), lock_before);
    assert_eq!(settings_snapshot(&env), files_before);
}

#[test]
fn damaged_cache_repository_is_moved_aside_and_fetched_again() {
    let env = TestEnv::new();
    seed(&env);
    let mut repo = FixtureRepo::init(env.remotes().join("mcp-packs.git"));
    repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v1"])))],
    );
    config(
        &env,
        &format!("  - source: {}\n    mcps: [github]\n", repo.file_url()),
    );
    ok(sync(&env, &[]));
    // Damage every object file of the cache repository.
    let db = fs::read_dir(env.cache().join("git/db"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let mut stack = vec![db.join("objects")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mut bytes = fs::read(&p).unwrap();
                for b in bytes.iter_mut().skip(2) {
                    *b ^= 0x5a;
                }
                fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
                fs::write(&p, bytes).unwrap();
            }
        }
    }
    seed(&env);
    let r = ok(sync(&env, &[]));
    assert!(r.stderr.contains("moved to"), "{r:?}");
    assert_eq!(
        entry(&env, ".mcp.json", McpFormat::McpServers, "github"),
        Some(expected_github(McpFormat::McpServers, &["--v1"]))
    );
}

// ---------------------------------------------------------------------------------------------
// `kst verify` on MCP entries (issue 11): every kind the lock holds is checked.

/// The `servers` rows of `kst verify --json`, as (path, status).
fn verify_rows(r: &Run) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let mut rows: Vec<(String, String)> = doc["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no servers: {r:?}"))
        .iter()
        .map(|s| {
            assert_eq!(s["name"], "github", "{s}");
            (
                s["path"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn verify_passes_on_untouched_mcp_entries_without_any_skill() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    let r = ok(kst(&env, &["verify"], None));
    assert!(r.stderr.contains("5 MCP server entries"), "{r:?}");
    let r = ok(kst(&env, &["verify", "--json"], None));
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{r:?}");
    let mut want: Vec<(String, String)> = SEEDS
        .iter()
        .map(|(f, _, _)| (f.to_string(), "ok".to_string()))
        .collect();
    want.sort();
    assert_eq!(verify_rows(&r), want);
}

#[test]
fn verify_reports_a_locally_edited_mcp_entry() {
    let env = TestEnv::new();
    setup(&env);
    // With a skill too: the skill verifies, the edited server entry must still be reported.
    write_file(
        env.project_path("pack/skills/pdf/SKILL.md"),
        skill_md("pdf", "pdf"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: {AGENTS}\nscope: project\nskills:\n  - source: ./pack\n    skills: [pdf]\nmcps:\n  - source: ./pack\n    mcps: [github]\n"
        ),
    );
    env.trust_project_config();
    ok(sync(&env, &[]));
    ok(kst(&env, &["verify"], None));
    let file = ".codex/config.toml";
    let text = read(&env, file).replace("--ro", "--rw");
    write_file(env.project_path(file), text);
    let before = settings_snapshot(&env);

    let r = kst(&env, &["verify"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("server github at .codex/config.toml: modified"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains(".mcp.json"),
        "only the edited file is named: {r:?}"
    );

    let r = kst(&env, &["verify", "--json"], None);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    for (path, status) in verify_rows(&r) {
        let want = if path == file { "modified" } else { "ok" };
        assert_eq!(status, want, "{path}: {r:?}");
    }
    // Verify reads; it never writes, and never shows a secret value.
    assert_eq!(settings_snapshot(&env), before);
    assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET));
}

#[test]
fn verify_reports_a_deleted_mcp_entry_as_missing() {
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    let mut f = SettingsFile::parse(McpFormat::McpServers, Some(&read(&env, ".mcp.json"))).unwrap();
    f.remove("github");
    write_file(env.project_path(".mcp.json"), f.to_text());
    let r = kst(&env, &["verify"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("server github at .mcp.json: missing"),
        "{r:?}"
    );
    let r = kst(&env, &["verify", "--json"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(verify_rows(&r).contains(&(".mcp.json".to_string(), "missing".to_string())));
}

#[test]
fn verify_cannot_vouch_for_an_entry_whose_definition_left_the_cache() {
    // An entry with a secret filled in can only be recognised from the definition kst wrote it
    // from (kept in the cache): without it, verify says it cannot tell (exit 1), and a sync
    // records the definition again.
    let env = TestEnv::new();
    setup(&env);
    ok(sync(&env, &[]));
    fs::remove_dir_all(env.cache()).unwrap();
    let r = kst(&env, &["verify", "--json"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        verify_rows(&r).iter().all(|(_, s)| s == "unverifiable"),
        "{r:?}"
    );
    let r = kst(&env, &["verify"], None);
    assert!(r.stderr.contains("kst sync"), "{r:?}");
    ok(sync(&env, &[]));
    ok(kst(&env, &["verify"], None));
}

#[test]
fn verify_reads_no_file_a_hostile_lock_names_and_vouches_for_nothing_by_a_wrong_hash() {
    let env = TestEnv::new();
    seed(&env);
    config(&env, "");
    let sentinel = "kst-verify-sentinel-51d2";
    write_file(
        env.project_path(".bashrc"),
        format!("{{\"mcpServers\": {{\"evil\": {{\"command\": \"{sentinel}\"}}}}}}\n"),
    );
    write_file(
        env.project_path("kasetto.lock"),
        "version: 1\nmcps:\n- url: ./pack\n  requested: local\n  packs:\n  - file: mcps/x.json\n    servers:\n      evil:\n        hash: sha256:0000000000000000000000000000000000000000000000000000000000000000\n        targets: [.bashrc]\n      mine:\n        hash: sha256:0000000000000000000000000000000000000000000000000000000000000000\n        targets: [.mcp.json]\n",
    );
    let before = settings_snapshot(&env);
    let r = kst(&env, &["verify", "--json"], None);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let status = |name: &str| {
        doc["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("evil").as_deref(), Some("error"), "{r:?}");
    // The user's own `mine` is not vouched for as kst's entry, whatever the lock says: no
    // definition with that hash was ever written by kst here.
    assert_eq!(status("mine").as_deref(), Some("unverifiable"), "{r:?}");
    let r = kst(&env, &["verify"], None);
    assert!(
        !r.stdout.contains(sentinel) && !r.stderr.contains(sentinel),
        "{r:?}"
    );
    assert_eq!(settings_snapshot(&env), before);
}

#[test]
fn a_mistyped_branch_removes_no_server() {
    // As for skills (SECURITY.md rule 8): a source that fails as a whole keeps what any earlier
    // request of it wrote, so a typo in a changed `branch:` does not remove its servers.
    let env = TestEnv::new();
    seed(&env);
    let mut repo = FixtureRepo::init(env.remotes().join("mcp-packs.git"));
    repo.commit(
        "main",
        &[("mcps/github.json", FileSpec::from(github_pack(&["--v1"])))],
    );
    config(
        &env,
        &format!("  - source: {}\n    mcps: [github]\n", repo.file_url()),
    );
    ok(sync(&env, &[]));
    let lock_before = read(&env, "kasetto.lock");
    let files_before = settings_snapshot(&env);
    config(
        &env,
        &format!(
            "  - source: {}\n    branch: mian\n    mcps: [github]\n",
            repo.file_url()
        ),
    );
    let r = sync(&env, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("- server github"), "{r:?}");
    assert_eq!(settings_snapshot(&env), files_before);
    assert_eq!(read(&env, "kasetto.lock"), lock_before);
}

/// Kasetto documents `mcps: [github.json]`: a name already ending in `.json` names that file
/// (`mcps/github.json`), not `mcps/github.json.json`.
#[test]
fn pack_name_ending_in_json_names_that_file() {
    let env = TestEnv::new();
    seed(&env);
    write_file(
        env.project_path("pack/mcps/github.json"),
        github_pack(&["--ro"]),
    );
    config(&env, "  - source: ./pack\n    mcps: [github.json]\n");
    ok(sync(&env, &[]));
    for (file, format, _) in SEEDS {
        assert_eq!(
            entry(&env, file, *format, "github"),
            Some(expected_github(*format, &["--ro"])),
            "{file}"
        );
    }
    assert_eq!(
        lock(&env)["mcps"][0]["packs"][0]["file"],
        "mcps/github.json"
    );
}
