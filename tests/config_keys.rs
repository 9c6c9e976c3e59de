//! Config keys (SPEC 3): every key Kasetto 3.12 accepts loads (its `Config`, `SourceSpec`,
//! `McpSpec`, `CommandSourceSpec`, `InstructionSourceSpec`, `AuditConfig`, `SecretsConfig`,
//! `KeePassConfig` serde structs); a key nobody knows is an error naming the file,
//! the line and the closest valid key, unless `KASETTO_ALLOW_UNKNOWN_KEYS=1`, which makes it a
//! warning and ignores it.

use crate::support::*;

struct Run {
    code: i32,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stderr\n{}", self.code, self.stderr)
    }
}

fn sync(env: &TestEnv, allow: Option<&str>, extra: &[&str]) -> Run {
    let mut cmd = env.kst();
    cmd.arg("sync").args(extra);
    if let Some(v) = allow {
        cmd.env("KASETTO_ALLOW_UNKNOWN_KEYS", v);
    }
    let out = cmd.output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn pack(env: &TestEnv) {
    let dir = env.project_path("pack/skills/alpha");
    write_file(dir.join("SKILL.md"), skill_md("alpha", "The alpha skill"));
    write_file(
        env.project_path("pack/mcps/db.json"),
        r#"{"mcpServers":{"db":{"command":"db-mcp"}}}"#,
    );
}

/// Every key of Kasetto 3.12's config in one file, with both spellings where Kasetto has two
/// (`sub-dir`/`sub_dir`, `fail-on`/`fail_on`): it loads; nothing is an unknown key.
#[test]
fn every_kasetto_key_is_accepted() {
    let env = TestEnv::new();
    pack(&env);
    write_file(env.project_path("base.yaml"), "agent: claude-code\n");
    write_file(
        env.project_path("other/tools/db2.json"),
        r#"{"mcpServers":{"db2":{"command":"db2-mcp"}}}"#,
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: ./base.yaml
agent: [claude-code, codex]
destination: ./my-skills
scope: project
skills:
  - source: ./pack
    sub-dir: skills
    skills: [alpha]
  - source: ./pack
    sub_dir: .
    skills:
      - { name: alpha, path: skills }
  - source: https://example.invalid/org/skills
    ref: v1.0.0
    skills: \"*\"
  - source: https://example.invalid/org/more
    branch: main
    skills: [x]
mcps:
  - source: ./pack
    mcps: [db]
  - source: ./other
    mcps: [{ name: db2, path: tools }]
  - source: https://example.invalid/org/mcps
    branch: main
    ref: v2
    mcps: \"*\"
  - name: laptop
    servers: { local-db: { command: pg-mcp, args: [\"--ro\"] } }
commands:
  - source: ./pack
    sub-dir: .
    commands: \"*\"
instructions:
  - source: ./pack
    sub_dir: .
    instructions: [x]
audit:
  fail-on: critical
  fail_on_unverified: false
secrets:
  on_missing: warn
  files: [./creds.yaml]
  keepass:
    database: ./vault.kdbx
    key_file: ./vault.key
",
    );
    let r = sync(&env, None, &["--dry-run", "--offline"]);
    assert!(!r.stderr.contains("unknown key"), "{r:?}");
    // The two remote sources cannot be fetched offline (exit 1); the config itself loaded.
    assert_ne!(r.code, 2, "{r:?}");
}

/// A typo is an error naming the file, the line and the closest valid key, at the top level
/// and inside an entry; nothing is written.
#[test]
fn a_typo_names_the_closest_valid_key() {
    let env = TestEnv::new();
    pack(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskils:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    let r = sync(&env, None, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("kasetto.yaml:3:1: unknown key `skils` (did you mean `skills`?)"),
        "{r:?}"
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    brnach: main\n    skills: \"*\"\n",
    );
    for allow in [None, Some("0")] {
        let r = sync(&env, allow, &[]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains(
                "kasetto.yaml:5:5: skills[0]: unknown key `brnach` (did you mean `branch`?)"
            ),
            "{r:?}"
        );
    }
    assert!(!env.project_path(".claude").exists());
    assert!(!env.project_path("kasetto.lock").exists());
}

/// `KASETTO_ALLOW_UNKNOWN_KEYS=1`: each unknown key (top level, in an entry, in a flow mapping)
/// is a warning naming file and line, and is ignored; the rest of the config works; an error
/// after an ignored key still names its own line.
#[test]
fn allow_unknown_keys_warns_and_ignores_them() {
    let env = TestEnv::new();
    pack(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code
scope: project
other-tool:
  setting: [1, 2]
skills:
  - source: ./pack
    brnach: main
    skills: [alpha]
mcps:
  - { source: ./pack, color: blue, mcps: [db] }
",
    );
    let r = sync(&env, Some("1"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    for w in [
        "kasetto.yaml:3: unknown key `other-tool` ignored (KASETTO_ALLOW_UNKNOWN_KEYS=1)",
        "kasetto.yaml:7: unknown key `brnach` ignored (KASETTO_ALLOW_UNKNOWN_KEYS=1) (did you mean `branch`?)",
        "kasetto.yaml:10: unknown key `color` ignored (KASETTO_ALLOW_UNKNOWN_KEYS=1)",
    ] {
        assert!(r.stderr.contains(w), "{w}\n{r:?}");
    }
    assert!(env.project_path(".claude/skills/alpha/SKILL.md").exists());
    let mcp = std::fs::read_to_string(env.project_path(".mcp.json")).unwrap();
    assert!(mcp.contains("db-mcp"), "{mcp}");

    // Without the variable the same file is an error.
    let r = sync(&env, None, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("kasetto.yaml:3:1: unknown key `other-tool`"),
        "{r:?}"
    );

    // Another error after an ignored key keeps its own line.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nother-tool: 1\nscope: 42\n",
    );
    let r = sync(&env, Some("1"), &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("kasetto.yaml:3:"), "{r:?}");
}
