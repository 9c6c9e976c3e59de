//! Secrets in MCP packs end to end (SPEC 10c): the `${kst_name}` lookup chain (environment,
//! `credentials.yaml`, `secrets.files`), the tagged forms, and every secret manager run as a
//! fake CLI put first on PATH. The fake records its argument vector, its environment and its
//! stdin, and answers what the test tells it to.
//!
//! The promises under test: the exact argv of each manager (never a shell), no git-host token
//! variable and no `KST_…` secret in the manager's environment, its stderr scrubbed of the
//! value, a time-out and a size cap, `#key` selecting a field of a JSON answer, a credentials
//! file others can read refused without quoting it, `on_missing`, and an unknown tag failing
//! the pack without writing the placeholder anywhere.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

/// Every manager's CLI is this script, under its own name. It logs to `$FAKE_DIR/<name>.*`
/// and answers with `<name>.answer` (and `<name>.stderr`, `<name>.exit`, `<name>.sleep`).
const FAKE: &str = r#"#!/bin/sh
me=$(basename "$0")
d="$FAKE_DIR"
: > "$d/$me.argv"
for a in "$@"; do printf '%s\n' "$a" >> "$d/$me.argv"; done
env > "$d/$me.env"
cat > "$d/$me.stdin"
if [ -f "$d/$me.sleep" ]; then sleep 30; fi
if [ -f "$d/$me.stderr" ]; then cat "$d/$me.stderr" >&2; fi
if [ -f "$d/$me.answer" ]; then cat "$d/$me.answer"; fi
exit $(cat "$d/$me.exit" 2>/dev/null || echo 0)
"#;

const BINS: &[&str] = &[
    "op",
    "vault",
    "keepassxc-cli",
    "aws",
    "gcloud",
    "az",
    "pass",
    "security",
];

/// Git-host token variables and other secrets that must never reach a manager's CLI.
const TOKENS: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp-sentinel-0001"),
    ("GH_TOKEN", "gh-sentinel-0002"),
    ("GITLAB_TOKEN", "glpat-sentinel-0003"),
    ("CI_JOB_TOKEN", "ci-sentinel-0004"),
    ("KASETTO_TOKEN_EXAMPLE_COM", "host-sentinel-0005"),
    ("KST_UNRELATED", "kst-sentinel-0006"),
    ("kst_lower", "kst-sentinel-0007"),
];

struct Fake {
    _dir: tempfile::TempDir,
    /// Where the scripts log (outside the test's tree, so leak checks stay meaningful).
    log: PathBuf,
    bin: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let log = dir.path().join("log");
        fs::create_dir_all(&log).unwrap();
        for b in BINS {
            write_executable(bin.join(b), FAKE);
        }
        Fake {
            _dir: dir,
            log,
            bin,
        }
    }
    fn set(&self, bin: &str, what: &str, content: impl AsRef<[u8]>) {
        fs::write(self.log.join(format!("{bin}.{what}")), content).unwrap();
    }
    fn got(&self, bin: &str, what: &str) -> Option<String> {
        fs::read_to_string(self.log.join(format!("{bin}.{what}"))).ok()
    }
    fn argv(&self, bin: &str) -> Vec<String> {
        self.got(bin, "argv")
            .unwrap_or_else(|| panic!("{bin} was not run"))
            .lines()
            .map(String::from)
            .collect()
    }
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

/// A project whose local pack has `servers` (name → env value), for claude-code.
fn project(env: &TestEnv, servers: &[(&str, &str)], extra_config: &str) {
    let mut m = serde_json::Map::new();
    for (name, value) in servers {
        m.insert(
            name.to_string(),
            json!({"command": "srv", "args": ["--x"], "env": {"T": value}}),
        );
    }
    write_file(
        env.project_path("pack/mcps/s.json"),
        json!({ "mcpServers": m }).to_string(),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: claude-code\nscope: project\nmcps:\n  - source: ./pack\n{extra_config}"),
    );
    // Secrets are resolved only for a config the user trusts.
    env.trust_project_config();
}

fn kst(env: &TestEnv, fake: Option<&Fake>, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = env.kst();
    cmd.args(args);
    if let Some(f) = fake {
        let path = format!(
            "{}:{}",
            f.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path).env("FAKE_DIR", &f.log);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `T` value of server `name` in `.mcp.json`.
fn written(env: &TestEnv, name: &str) -> Option<String> {
    let text = fs::read_to_string(env.project_path(".mcp.json")).ok()?;
    let v: Value = serde_json::from_str(&text).unwrap();
    v["mcpServers"][name]["env"]["T"].as_str().map(String::from)
}

fn cred_file(path: &Path, text: &str, mode: u32) {
    write_file(path, text);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------

/// (server, placeholder, CLI, its answer, expected argv, expected value)
type ManagerCase<'a> = (&'a str, &'a str, &'a str, &'a str, Vec<String>, &'a str);

#[test]
fn each_manager_runs_its_own_cli_with_an_exact_argv_and_no_token_variable() {
    let env = TestEnv::new();
    let fake = Fake::new();
    // (server, placeholder, CLI, its answer, expected argv, expected value)
    let kdbx = env.home_path("secrets.kdbx");
    let keyx = env.project_path("k.keyx");
    let cases: Vec<ManagerCase> = vec![
        (
            "s-op",
            "${kst:op:Private/GitHub/token}",
            "op",
            "op-value-1111",
            vec!["read", "--no-newline", "op://Private/GitHub/token"]
                .into_iter()
                .map(String::from)
                .collect(),
            "op-value-1111",
        ),
        (
            "s-vault",
            "${kst:vault:secret/myapp#token}",
            "vault",
            "vault-value-2222\n",
            ["kv", "get", "-field=token", "secret/myapp"]
                .map(String::from)
                .to_vec(),
            "vault-value-2222",
        ),
        (
            "s-kp",
            "${kst:kp:GitHub/PAT#Token}",
            "keepassxc-cli",
            "kp-value-3333\n",
            vec![
                "show".to_string(),
                "--quiet".into(),
                "-s".into(),
                "-a".into(),
                "Token".into(),
                "--key-file".into(),
                keyx.display().to_string(),
                kdbx.display().to_string(),
                "GitHub/PAT".into(),
            ],
            "kp-value-3333",
        ),
        (
            "s-aws",
            "${kst:aws:prod/db#password}",
            "aws",
            "{\"username\":\"u\",\"password\":\"aws-value-4444\"}\n",
            [
                "secretsmanager",
                "get-secret-value",
                "--secret-id",
                "prod/db",
                "--query",
                "SecretString",
                "--output",
                "text",
            ]
            .map(String::from)
            .to_vec(),
            "aws-value-4444",
        ),
        (
            "s-gcp",
            "${kst:gcp:db-password}",
            "gcloud",
            "gcp-value-5555",
            [
                "secrets",
                "versions",
                "access",
                "latest",
                "--secret",
                "db-password",
            ]
            .map(String::from)
            .to_vec(),
            "gcp-value-5555",
        ),
        (
            "s-az",
            "${kst:az:my-vault/db#pw}",
            "az",
            "{\"pw\":\"az-value-6666\"}",
            [
                "keyvault",
                "secret",
                "show",
                "--vault-name",
                "my-vault",
                "--name",
                "db",
                "--query",
                "value",
                "--output",
                "tsv",
            ]
            .map(String::from)
            .to_vec(),
            "az-value-6666",
        ),
        (
            "s-pass",
            "${kst:pass:work/vercel}",
            "pass",
            "pass-value-7777\nuser: me\n",
            ["show", "work/vercel"].map(String::from).to_vec(),
            "pass-value-7777",
        ),
        (
            "s-keychain",
            "${kst:keychain:vercel-token#me}",
            "security",
            "kc-value-8888\n",
            [
                "find-generic-password",
                "-s",
                "vercel-token",
                "-a",
                "me",
                "-w",
            ]
            .map(String::from)
            .to_vec(),
            "kc-value-8888",
        ),
    ];
    for (_, _, bin, answer, _, _) in &cases {
        fake.set(bin, "answer", answer);
    }
    let servers: Vec<(&str, &str)> = cases.iter().map(|c| (c.0, c.1)).collect();
    project(
        &env,
        &servers,
        "secrets:\n  keepass:\n    database: ~/secrets.kdbx\n    key_file: k.keyx\n",
    );
    let mut vars: Vec<(&str, &str)> = TOKENS.to_vec();
    vars.push(("VAULT_TOKEN", "the-vault-session"));
    vars.push(("KST_KEEPASS_PASSWORD", "kp-master-9999"));
    let r = kst(&env, Some(&fake), &vars, &["sync", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    for (server, _, bin, _, argv, value) in &cases {
        assert_eq!(&fake.argv(bin), argv, "{bin}");
        assert_eq!(written(&env, server).as_deref(), Some(*value), "{server}");
        let child_env = fake.got(bin, "env").unwrap();
        for (k, v) in TOKENS {
            assert!(
                !child_env.contains(&format!("{k}=")) && !child_env.contains(v),
                "{k} reached {bin}"
            );
        }
        assert!(!child_env.contains("kp-master-9999"), "{bin}");
        // The manager keeps its own session.
        assert!(child_env.contains("VAULT_TOKEN=the-vault-session"), "{bin}");
    }
    // KeePass gets its master password on stdin; the others get nothing.
    assert_eq!(
        fake.got("keepassxc-cli", "stdin").as_deref(),
        Some("kp-master-9999\n")
    );
    assert_eq!(fake.got("op", "stdin").as_deref(), Some(""));

    // Values only in the settings file: not in output, the lock, the cache.
    for (_, _, _, _, _, value) in &cases {
        assert!(
            !r.stdout.contains(value) && !r.stderr.contains(value),
            "{r:?}"
        );
        assert_eq!(
            find_bytes_in_tree(env.root(), value.as_bytes()),
            ["project/.mcp.json"],
            "{value}"
        );
    }
    let lock = fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    assert!(lock.contains("s-op"), "{lock}");

    // A second run changes nothing; an upstream change updates every entry (ownership is
    // recognised through each tagged placeholder).
    let before = fs::read(env.project_path(".mcp.json")).unwrap();
    let r = kst(&env, Some(&fake), &vars, &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(env.project_path(".mcp.json")).unwrap(), before);
    let pack = fs::read_to_string(env.project_path("pack/mcps/s.json")).unwrap();
    write_file(
        env.project_path("pack/mcps/s.json"),
        pack.replace("--x", "--y"),
    );
    let r = kst(&env, Some(&fake), &vars, &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("modified locally"), "{r:?}");
    let text = fs::read_to_string(env.project_path(".mcp.json")).unwrap();
    assert!(!text.contains("--x") && text.contains("--y"), "{text}");
}

#[test]
fn a_failing_manager_fails_its_server_and_its_stderr_is_scrubbed_of_the_value() {
    let env = TestEnv::new();
    let fake = Fake::new();
    project(&env, &[("svc", "Bearer ${kst:op:Private/x/token}")], "");
    fake.set("op", "answer", "leaked-value-4242\n");
    fake.set(
        "op",
        "stderr",
        "error: item leaked-value-4242 is locked\x1b[31m; also ghp-sentinel-0001\n",
    );
    fake.set("op", "exit", "3");
    let r = kst(&env, Some(&fake), TOKENS, &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("${kst:op:Private/x/token}"), "{r:?}");
    assert!(r.stderr.contains("exit status 3"), "{r:?}");
    assert!(r.stderr.contains("item *** is locked"), "{r:?}");
    assert!(!r.stderr.contains("leaked-value-4242"), "{r:?}");
    assert!(!r.stderr.contains("ghp-sentinel-0001"), "{r:?}");
    assert!(!r.stderr.contains('\x1b'), "{r:?}");
    assert!(!env.project_path(".mcp.json").exists());

    // A CLI that is not installed: the error says which and what to do.
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("`op` was not found on PATH"), "{r:?}");
}

#[test]
fn a_manager_is_stopped_after_the_time_out_and_beyond_the_size_cap() {
    let env = TestEnv::new();
    let fake = Fake::new();
    project(&env, &[("svc", "${kst:vault:secret/app#token}")], "");
    fake.set("vault", "sleep", "");
    fake.set("vault", "answer", "never-seen-1234");
    let r = kst(
        &env,
        Some(&fake),
        &[("KASETTO_SECRETS_TIMEOUT", "1")],
        &["sync"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("`vault` did not answer within 1 s"),
        "{r:?}"
    );
    assert!(!env.project_path(".mcp.json").exists());

    fs::remove_file(fake.log.join("vault.sleep")).unwrap();
    fake.set("vault", "answer", "x".repeat(5000));
    let r = kst(
        &env,
        Some(&fake),
        &[("KASETTO_SECRETS_MAX_BYTES", "1000")],
        &["sync"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("more than 1000 bytes"), "{r:?}");
    assert!(!env.project_path(".mcp.json").exists());

    // `#key` of a JSON answer that lacks it: a clear error that does not quote the answer.
    project(&env, &[("svc", "${kst:aws:prod/db#password}")], "");
    fake.set("aws", "answer", "{\"user\":\"quoted-never-77\"}");
    let r = kst(&env, Some(&fake), &[], &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no field \"password\""), "{r:?}");
    assert!(!r.stderr.contains("quoted-never-77"), "{r:?}");
}

#[test]
fn the_lookup_chain_is_the_variable_as_written_then_upper_cased_then_credentials_files() {
    let env = TestEnv::new();
    project(
        &env,
        &[("a", "${kst_gh_pat}"), ("b", "${kst_org__ci__token}")],
        "secrets:\n  files: [./team-credentials.yaml]\n",
    );
    let creds = env.xdg_config().join("kasetto/credentials.yaml");
    cred_file(
        &creds,
        "KST_GH_PAT: from-credentials\norg:\n  CI:\n    token: from-nested\n",
        0o600,
    );
    cred_file(
        &env.project_path("team-credentials.yaml"),
        "kst_gh_pat: from-team-file\norg: {ci: {token: from-team-nested}}\n",
        0o600,
    );
    // `--update`: the value source changes between runs (a plain sync keeps what is installed).
    let sync = |vars: &[(&str, &str)]| {
        let r = kst(&env, None, vars, &["sync", "--update"]);
        assert_eq!(r.code, 0, "{r:?}");
    };
    sync(&[("kst_gh_pat", "as-written"), ("KST_GH_PAT", "upper")]);
    assert_eq!(written(&env, "a").as_deref(), Some("as-written"));
    sync(&[("KST_GH_PAT", "upper")]);
    assert_eq!(written(&env, "a").as_deref(), Some("upper"));
    sync(&[]);
    assert_eq!(written(&env, "a").as_deref(), Some("from-credentials"));
    assert_eq!(written(&env, "b").as_deref(), Some("from-nested"));
    // Without the user's file, the files of `secrets.files`.
    fs::remove_file(&creds).unwrap();
    sync(&[]);
    assert_eq!(written(&env, "a").as_deref(), Some("from-team-file"));
    assert_eq!(written(&env, "b").as_deref(), Some("from-team-nested"));

    // The tagged forms: `env` reads a variable verbatim, `crd` a path of the files.
    project(
        &env,
        &[("c", "${kst:env:MY_VAR}"), ("d", "${kst:crd:org/ci/token}")],
        "secrets:\n  files: [./team-credentials.yaml]\n",
    );
    sync(&[("MY_VAR", "verbatim-var"), ("KST_MY_VAR", "not-this")]);
    assert_eq!(written(&env, "c").as_deref(), Some("verbatim-var"));
    assert_eq!(written(&env, "d").as_deref(), Some("from-team-nested"));

    // Values read from files appear in no output, even at the highest verbosity.
    for args in [
        &["sync", "--update", "-vvv"][..],
        &["sync", "--update", "--json"],
    ] {
        let r = kst(&env, None, &[("MY_VAR", "verbatim-var")], args);
        assert_eq!(r.code, 0, "{r:?}");
        for v in ["from-team-nested", "from-team-file"] {
            assert!(!r.stdout.contains(v) && !r.stderr.contains(v), "{r:?}");
        }
    }
}

#[test]
fn a_credentials_file_others_can_read_is_refused_without_quoting_it() {
    let env = TestEnv::new();
    project(&env, &[("a", "${kst_gh_pat}")], "");
    let creds = env.xdg_config().join("kasetto/credentials.yaml");
    cred_file(&creds, "KST_GH_PAT: cred-content-5150\n", 0o644);
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("can be read by other users"), "{r:?}");
    assert!(r.stderr.contains("chmod 600"), "{r:?}");
    assert!(r.stderr.contains("credentials.yaml"), "{r:?}");
    assert!(!r.stderr.contains("cred-content-5150"), "{r:?}");
    assert!(!r.stdout.contains("cred-content-5150"), "{r:?}");
    assert!(!env.project_path(".mcp.json").exists());
    // The environment, first in the chain, never needs the file.
    let r = kst(&env, None, &[("KST_GH_PAT", "from-env-1")], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(written(&env, "a").as_deref(), Some("from-env-1"));

    // A file that does not parse: its position, never its content.
    fs::remove_file(env.project_path(".mcp.json")).unwrap();
    cred_file(&creds, "KST_GH_PAT: [cred-content-5150\n", 0o600);
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is not valid YAML (line"), "{r:?}");
    assert!(!r.stderr.contains("cred-content-5150"), "{r:?}");
}

#[test]
fn on_missing_fail_warn_and_skip() {
    let env = TestEnv::new();
    let seed = "{\n  \"mcpServers\": {\n    \"mine\": { \"command\": \"x\" }\n  }\n}\n";
    write_file(env.project_path(".mcp.json"), seed);
    let mcp = || fs::read_to_string(env.project_path(".mcp.json")).unwrap();

    // Default (Kasetto's `error` is the same): the server fails, nothing is written.
    for extra in ["", "secrets:\n  on_missing: error\n"] {
        project(&env, &[("svc", "${kst_absent}")], extra);
        let r = kst(&env, None, &[], &["sync"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("KST_ABSENT is not set"), "{r:?}");
        assert_eq!(mcp(), seed);
    }

    // skip, or --allow-missing-secrets over `fail`: not written, a warning, exit 0.
    for (extra, args) in [
        ("secrets:\n  on_missing: skip\n", vec!["sync"]),
        (
            "secrets:\n  on_missing: fail\n",
            vec!["sync", "--allow-missing-secrets"],
        ),
    ] {
        project(&env, &[("svc", "${kst_absent}")], extra);
        let r = kst(&env, None, &[], &args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("KST_ABSENT is not set"), "{r:?}");
        assert_eq!(mcp(), seed);
    }

    // warn: written with the placeholder in place; the next sync with the secret fills it in.
    project(
        &env,
        &[("svc", "${kst_absent}")],
        "secrets:\n  on_missing: warn\n",
    );
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("placeholder left in place"), "{r:?}");
    assert_eq!(written(&env, "svc").as_deref(), Some("${kst_absent}"));
    let r = kst(&env, None, &[("KST_ABSENT", "now-set-1")], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(written(&env, "svc").as_deref(), Some("now-set-1"));

    // A bad value is a config error.
    project(&env, &[("svc", "x")], "secrets:\n  on_missing: maybe\n");
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("on_missing"), "{r:?}");
}

#[test]
fn an_unknown_tag_fails_the_pack_and_is_never_written() {
    let env = TestEnv::new();
    let seed = "{\n  \"mcpServers\": {}\n}\n";
    write_file(env.project_path(".mcp.json"), seed);
    for placeholder in ["${kst:nope:x}", "${kst:op}", "${kst_a b}"] {
        project(
            &env,
            &[("bad", placeholder), ("good", "plain")],
            "secrets:\n  on_missing: warn\n",
        );
        let r = kst(&env, None, &[], &["sync", "--allow-missing-secrets"]);
        assert_eq!(r.code, 1, "{placeholder}: {r:?}");
        let text = fs::read_to_string(env.project_path(".mcp.json")).unwrap();
        assert!(!text.contains(placeholder), "{text}");
        assert!(written(&env, "bad").is_none(), "{text}");
        // The other server of the pack is still written.
        assert_eq!(written(&env, "good").as_deref(), Some("plain"));
    }
    project(&env, &[("bad", "${kst:nope:x}")], "");
    let r = kst(&env, None, &[], &["sync"]);
    assert!(r.stderr.contains("unknown secret tag \"nope\""), "{r:?}");
    // A pack cannot pass options to a manager.
    project(&env, &[("bad", "${kst:vault:-address=http://x/#f}")], "");
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("starts with `-`"), "{r:?}");
}

#[test]
fn a_rotated_secret_is_written_on_update_only_and_a_plain_sync_runs_no_manager() {
    let env = TestEnv::new();
    let fake = Fake::new();
    project(
        &env,
        &[("a", "${kst_rot}"), ("b", "${kst:pass:team/b}")],
        "",
    );
    fake.set("pass", "answer", "pass-v1\n");
    let r = kst(&env, Some(&fake), &[("KST_ROT", "rot-v1")], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(written(&env, "a").as_deref(), Some("rot-v1"));
    assert_eq!(written(&env, "b").as_deref(), Some("pass-v1"));

    // New values: a plain sync keeps what is installed, and asks no manager (no prompt).
    fs::remove_file(fake.log.join("pass.argv")).unwrap();
    fake.set("pass", "answer", "pass-v2\n");
    let before = fs::read_to_string(env.project_path(".mcp.json")).unwrap();
    let r = kst(&env, Some(&fake), &[("KST_ROT", "rot-v2")], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        fs::read_to_string(env.project_path(".mcp.json")).unwrap(),
        before
    );
    assert!(
        fake.got("pass", "argv").is_none(),
        "pass ran on a no-op sync"
    );
    // Nor does an installed entry need its secret to be set at all.
    let r = kst(&env, None, &[], &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        fs::read_to_string(env.project_path(".mcp.json")).unwrap(),
        before
    );

    // `--update NAME` writes that server's new value; `--update` all of them.
    let r = kst(
        &env,
        Some(&fake),
        &[("KST_ROT", "rot-v2")],
        &["sync", "--update", "a"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(written(&env, "a").as_deref(), Some("rot-v2"));
    assert_eq!(written(&env, "b").as_deref(), Some("pass-v1"));
    let r = kst(
        &env,
        Some(&fake),
        &[("KST_ROT", "rot-v2")],
        &["sync", "--update"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(written(&env, "b").as_deref(), Some("pass-v2"));
}
