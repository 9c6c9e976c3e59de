//! Files kst reads but does not own (SPEC 13.7, issue 10 items 2 and 4): a config's `extends`
//! parents, the lock, agents' settings files and SKILL.md frontmatter. Their errors never quote
//! them, a project-scope config cannot reach outside the project, and endless or blocking inputs
//! (`/dev/zero`, a FIFO, a huge file) are refused promptly instead of read.
//!
//! Every run has a generous time-out: a hang (the bug) kills kst and fails the test; no test
//! asserts how fast anything is.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// A line no message may ever contain.
const SENTINEL: &str = "kst-LEAK-sentinel-3b9f0e1d";

/// Longer than any run needs; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

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
    let out = env
        .kst()
        .args(args)
        .timeout(HANG_GUARD)
        .output()
        .expect("run kst");
    Run {
        // A run killed by the time-out has no exit code: -1 fails every assertion below.
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kst sync` and `kst sync --json`: both must fail with exit 2, quoting nothing secret.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str], expect: &str) -> Run {
    let mut last = None;
    for json in [false, true] {
        let mut all = vec!["sync"];
        all.extend_from_slice(args);
        if json {
            all.push("--json");
        }
        let r = kst(env, &all);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            !r.stdout.contains(SENTINEL) && !r.stderr.contains(SENTINEL),
            "leaked: {r:?}"
        );
        // Without --json on stderr; with --json in the document on stdout.
        let out = if json { &r.stdout } else { &r.stderr };
        assert!(out.contains(expect), "expected {expect:?}: {r:?}");
        last = Some(r);
    }
    last.unwrap()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Files of the user's that a hostile project would like to see printed.
fn secrets(env: &TestEnv) {
    write_file(
        env.home_path(".env"),
        format!("GITHUB_TOKEN={SENTINEL}\nOTHER=1\n"),
    );
    write_file(
        env.home_path(".ssh/id_ed25519"),
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA{SENTINEL}\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
    );
    write_file(
        env.home_path(".git-credentials"),
        format!("https://user:{SENTINEL}@github.com\n"),
    );
}

// ---------------------------------------------------------------------------------------------
// Item 2: errors never quote the files they could not parse.

#[test]
fn extends_of_a_secret_file_is_refused_without_quoting_it() {
    for file in [".env", ".ssh/id_ed25519", ".git-credentials"] {
        for spelled in ["ABS", "~/"] {
            let env = TestEnv::new();
            secrets(&env);
            let parent = match spelled {
                "~/" => format!("~/{file}"),
                _ => env.home_path(file).display().to_string(),
            };
            // The global scope (no `scope:`), named with --config: the parent is read, and
            // fails.
            write_file(
                env.project_path("kasetto.yaml"),
                format!("agent: claude-code\nextends: {parent}\n"),
            );
            let r = refused(&env, &["--config", "kasetto.yaml"], "not a YAML mapping");
            assert!(r.stdout.contains(file), "names the file: {r:?}");
        }
    }
}

#[test]
fn a_parent_with_a_wrong_value_is_not_quoted() {
    let env = TestEnv::new();
    write_file(
        env.home_path("base.yaml"),
        format!("agent: [claude-code]\nskills: {SENTINEL}\n"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nextends: {}\n",
            env.home_path("base.yaml").display()
        ),
    );
    let r = refused(
        &env,
        &["--config", "kasetto.yaml"],
        "expected a list, found a string",
    );
    assert!(r.stdout.contains("base.yaml:2:"), "file:line: {r:?}");
}

#[test]
fn a_parent_failing_our_own_checks_is_not_quoted() {
    let env = TestEnv::new();
    // Parses as a config; fails the server-name check, which quotes the name it refuses.
    write_file(
        env.home_path("base.yaml"),
        format!(
            "agent: claude-code\nmcps:\n  - name: extras\n    servers: {{ \"{SENTINEL} is a secret\": {{ command: x }} }}\n"
        ),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nextends: {}\n",
            env.home_path("base.yaml").display()
        ),
    );
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "is not a valid MCP server name",
    );
    // Fails a check made after parsing, whose message quotes the source.
    write_file(
        env.home_path("base.yaml"),
        format!(
            "agent: claude-code\nskills:\n  - source: ./{SENTINEL}-and-more\n    ref: v1\n    skills: \"*\"\n"
        ),
    );
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "only apply to git sources",
    );
}

#[test]
fn a_remote_parent_answering_a_secret_is_not_quoted() {
    let env = TestEnv::new();
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default()
            .with_file(
                "/k.yaml",
                "text/plain",
                "agent: claude-code\nextends: ./base.yaml\n",
            )
            .with_file("/base.yaml", "text/plain", format!("TOKEN={SENTINEL}\n")),
    );
    let url = format!("{}/k.yaml", h.base_url());
    let r = refused(&env, &["--config", &url], "not a YAML mapping");
    assert!(r.stdout.contains("/base.yaml"), "names the parent: {r:?}");
}

#[test]
fn a_lock_holding_a_secret_is_not_quoted() {
    let env = TestEnv::new();
    secrets(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\n",
    );
    // A regular file in the project that is not a lock (a committed copy of a secret).
    write_file(
        env.project_path("kasetto.lock"),
        format!("https://user:{SENTINEL}@github.com\n"),
    );
    refused(&env, &[], "not a YAML mapping");
    // A lock-shaped file with a secret where an id belongs.
    write_file(
        env.project_path("kasetto.lock"),
        format!(
            "version: 1\nsources:\n  - url: https://github.com/o/r\n    requested: default\n    commit: {SENTINEL}\n    skills: []\n"
        ),
    );
    let before = fs::read(env.project_path("kasetto.lock")).unwrap();
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains(SENTINEL), "{r:?}");
    assert_eq!(fs::read(env.project_path("kasetto.lock")).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// Item 2: a project-scope config stays inside the project.

#[test]
fn project_scope_extends_outside_the_project_is_refused() {
    let env = TestEnv::new();
    secrets(&env);
    write_file(env.path("outside.yaml"), "agent: codex\n");
    symlink(env.home_path(".env"), env.project_path("team/base.yaml"));
    for parent in ["~/.env", "../outside.yaml", "./team/base.yaml"] {
        write_file(
            env.project_path("kasetto.yaml"),
            format!("agent: claude-code\nscope: project\nextends: {parent}\n"),
        );
        let r = refused(&env, &[], "is outside the project");
        assert!(r.stdout.contains("https://"), "says the way out: {r:?}");
    }
    // `--project` on the command line confines a config that does not say `scope:` too.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nextends: ~/.env\n",
    );
    refused(&env, &["--project"], "is outside the project");
    // So is a config that is itself a symlink leaving the project.
    write_file(
        env.path("elsewhere.yaml"),
        "agent: claude-code\nscope: project\n",
    );
    fs::remove_file(env.project_path("kasetto.yaml")).unwrap();
    symlink(env.path("elsewhere.yaml"), env.project_path("kasetto.yaml"));
    refused(&env, &["--project"], "outside the project");
    refused(&env, &[], "outside the project");
    fs::remove_file(env.project_path("kasetto.yaml")).unwrap();
    // A parent inside the project is fine.
    write_file(env.project_path("team/ok.yaml"), "agent: codex\n");
    write_file(
        env.project_path("kasetto.yaml"),
        "scope: project\nextends: ./team/ok.yaml\n",
    );
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_parent_that_sets_project_scope_cannot_reach_outside_either() {
    let env = TestEnv::new();
    write_file(env.path("outside.yaml"), "agent: codex\n");
    write_file(
        env.project_path("base.yaml"),
        "scope: project\nagent: claude-code\n",
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: [../outside.yaml, ./base.yaml]\n",
    );
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "is outside the project",
    );
}

#[test]
fn project_lock_symlink_leaving_the_project_is_refused() {
    let env = TestEnv::new();
    secrets(&env);
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\n",
    );
    symlink(
        env.home_path(".git-credentials"),
        env.project_path("kasetto.lock"),
    );
    refused(&env, &[], "outside");
    assert_eq!(
        fs::read_to_string(env.home_path(".git-credentials")).unwrap(),
        format!("https://user:{SENTINEL}@github.com\n"),
        "the target is untouched"
    );
    assert!(
        fs::symlink_metadata(env.project_path("kasetto.lock"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

// ---------------------------------------------------------------------------------------------
// Item 4 (endless or blocking inputs): only regular files, under a cap, never blocking.

#[test]
fn extends_of_dev_zero_is_refused_promptly() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nextends: /dev/zero\n",
    );
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "a device, not a regular file",
    );
}

/// Depth alone does not bound `extends`: three files each listing the next one 200 times
/// would be read 8 million times (minutes of CPU from a cloned project, no trust needed in the
/// project scope). The files a load reads are capped, in the loader and in the trust gate.
#[test]
fn a_wide_extends_tree_is_refused_promptly() {
    let env = TestEnv::new();
    let many = |p: &str| format!("extends: [{}]\n", vec![p; 200].join(", "));
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: codex\nscope: project\n{}", many("a.yaml")),
    );
    write_file(env.project_path("a.yaml"), many("b.yaml"));
    write_file(env.project_path("b.yaml"), many("c.yaml"));
    write_file(env.project_path("c.yaml"), "agent: codex\n");
    // The project scope (the loader) and a config the user named.
    refused(&env, &[], "would read more than 64 files");
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "would read more than 64 files",
    );
    // The trust gate walks the same tree before loading (the global scope).
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: codex\n{}", many("a.yaml")),
    );
    refused(&env, &[], "would read more than 64 files");
    let r = kst(&env, &["trust"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("would read more than 64 files"), "{r:?}");
}

#[test]
fn extends_of_a_fifo_does_not_hang() {
    let env = TestEnv::new();
    mkfifo(&env.project_path("base.yaml"));
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nextends: ./base.yaml\n",
    );
    refused(&env, &[], "a FIFO, not a regular file");
}

#[test]
fn a_fifo_or_dev_zero_lock_does_not_hang() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\n",
    );
    mkfifo(&env.project_path("kasetto.lock"));
    refused(&env, &[], "a FIFO, not a regular file");
    fs::remove_file(env.project_path("kasetto.lock")).unwrap();
    symlink("/dev/zero", env.project_path("kasetto.lock"));
    // In the project scope the link leaves the project.
    refused(&env, &[], "outside");
}

#[test]
fn a_dev_zero_global_lock_is_refused_promptly() {
    let env = TestEnv::new();
    write_file(env.project_path("kasetto.yaml"), "agent: claude-code\n");
    let lock = env.xdg_data().join("kasetto/kasetto.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    symlink("/dev/zero", &lock);
    refused(
        &env,
        &["--config", "kasetto.yaml"],
        "a device, not a regular file",
    );
}

#[test]
fn oversize_config_and_lock_are_refused() {
    let env = TestEnv::new();
    // A config over 1 MiB (comments), named by the user.
    let mut big = String::from("agent: claude-code\nscope: project\n");
    while big.len() <= 1 << 20 {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    write_file(env.project_path("big.yaml"), &big);
    refused(&env, &["--config", "big.yaml"], "larger than the 1 MiB cap");
    // A lock over 64 MiB (sparse: nothing is read to find out).
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\n",
    );
    let f = fs::File::create(env.project_path("kasetto.lock")).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    refused(&env, &[], "larger than the 64 MiB cap");
}

#[test]
fn a_fifo_settings_file_does_not_hang_and_is_left_alone() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/mcps/github.json"),
        r#"{"mcpServers": {"github": {"command": "gh-mcp"}}}"#,
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nmcps:\n  - source: ./pack\n    mcps: [github]\n",
    );
    mkfifo(&env.project_path(".mcp.json"));
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("a FIFO, not a regular file"), "{r:?}");
    assert!(
        fs::symlink_metadata(env.project_path(".mcp.json"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_settings_file_that_does_not_parse_is_not_quoted() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/mcps/github.json"),
        r#"{"mcpServers": {"github": {"command": "gh-mcp"}}}"#,
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: codex\nscope: project\nmcps:\n  - source: ./pack\n    mcps: [github]\n",
    );
    let text = format!("model = \"o3\"\napi_key = {SENTINEL}\n");
    write_file(env.project_path(".codex/config.toml"), &text);
    let r = kst(&env, &["sync", "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        !r.stdout.contains(SENTINEL) && !r.stderr.contains(SENTINEL),
        "{r:?}"
    );
    assert!(r.stdout.contains("line 2, column"), "{r:?}");
    assert_eq!(
        fs::read_to_string(env.project_path(".codex/config.toml")).unwrap(),
        text
    );
}

// ---------------------------------------------------------------------------------------------
// Item 4: SKILL.md frontmatter nested 100,000 deep.

#[test]
fn deeply_nested_frontmatter_is_a_broken_skill_not_a_parse() {
    let env = TestEnv::new();
    write_file(
        env.project_path("pack/deep/SKILL.md"),
        format!(
            "---\nname: deep\ndescription: {}\n---\nbody\n",
            "[".repeat(100_000)
        ),
    );
    write_file(
        env.project_path("pack/fine/SKILL.md"),
        skill_md("fine", "A fine skill"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    let r = kst(&env, &["sync"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("frontmatter is larger than 64 KiB"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("[[["), "{r:?}");
    assert!(env.project_path(".claude/skills/fine/SKILL.md").is_file());
    assert!(!env.project_path(".claude/skills/deep").exists());
}
