//! `kst init`, `kst add`, `kst remove` and `kst completions` end to end (issue 14): the config
//! is edited in place — every byte outside the edited entry kept — only after the new source
//! resolved; errors leave the file byte-identical; then the sync runs and its exit code is
//! the command's.

use std::fs;

use crate::support::*;

/// A config with comments everywhere, a local pack `./pack` (skills `a`, `b`), and a second
/// local pack `./more` (skill `c`).
const CONFIG: &str = "\
# team config — keep these comments
agent: claude-code   # the agent
scope: project

skills:
  # the pack we all use
  - source: ./pack   # local
    skills: [a]      # only a for now

# MCP servers come later
";

fn local_packs(env: &TestEnv) {
    for (dir, name) in [("pack", "a"), ("pack", "b"), ("more", "c")] {
        write_file(
            env.project_path(format!("{dir}/{name}/SKILL.md")),
            skill_md(name, &format!("skill {name}")),
        );
    }
}

fn read(env: &TestEnv, rel: &str) -> String {
    fs::read_to_string(env.project_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout_json(a: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&a.get_output().stdout).expect("one JSON document on stdout")
}

fn installed(env: &TestEnv, name: &str) -> bool {
    env.project_path(format!(".claude/skills/{name}/SKILL.md"))
        .is_file()
}

// ---------------------------------------------------------------------------------------------
// init

#[test]
fn init_writes_a_starter_config_that_syncs_as_written() {
    let env = TestEnv::new();
    let a = env.kst().args(["init", "--json"]).assert().success();
    let doc = stdout_json(&a);
    assert_eq!(doc["command"], "init");
    assert_eq!(doc["scope"], "project");
    let text = read(&env, "kasetto.yaml");
    assert!(text.starts_with("# kasetto.yaml"), "{text}");
    assert!(text.contains("# mcps:"), "commented-out examples: {text}");
    assert!(env.project_path("my-skills/hello/SKILL.md").is_file());
    // Works as written: the example skill installs, and the config is trusted (the user's own
    // command wrote it), so even `--global`-less secrets and the global scope need no prompt.
    env.kst().arg("sync").assert().success();
    assert!(installed(&env, "hello"));
    let trusted = fs::read_to_string(env.xdg_data().join("kasetto/trusted.yaml")).unwrap();
    assert!(trusted.contains("kasetto.yaml"), "{trusted}");

    // Never overwritten without --force: exit 2, file unchanged.
    write_file(env.project_path("kasetto.yaml"), "agent: codex\n");
    let a = env.kst().arg("init").assert().code(2);
    assert!(stderr(&a).contains("already exists"), "{}", stderr(&a));
    assert!(stderr(&a).contains("--force"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), "agent: codex\n");
    // --force replaces it; the user's example folder is left alone.
    write_file(
        env.project_path("my-skills/hello/SKILL.md"),
        skill_md("hello", "mine"),
    );
    env.kst().args(["init", "--force"]).assert().success();
    assert_eq!(read(&env, "kasetto.yaml"), text);
    assert!(read(&env, "my-skills/hello/SKILL.md").contains("mine"));
}

#[test]
fn init_global_writes_the_global_config() {
    let env = TestEnv::new();
    env.kst().args(["init", "--global"]).assert().success();
    let path = env.xdg_config().join("kasetto/kasetto.yaml");
    let text = fs::read_to_string(&path).expect("global config written");
    assert!(!text.contains("\nscope: project"), "{text}");
    assert!(!env.project_path("kasetto.yaml").exists());
    // Found by discovery from any folder; installs into HOME.
    env.kst().arg("sync").assert().success();
    assert!(env.home_path(".claude/skills/hello/SKILL.md").is_file());
    env.kst().args(["init", "--global"]).assert().code(2);
    // --dry-run writes nothing.
    let other = TestEnv::new();
    other.kst().args(["init", "--dry-run"]).assert().success();
    assert!(!other.project_path("kasetto.yaml").exists());
    assert!(!other.project_path("my-skills").exists());
}

#[test]
fn a_missing_config_names_kst_init() {
    let env = TestEnv::new();
    for cmd in ["sync", "add"] {
        let mut c = env.kst();
        c.arg(cmd);
        if cmd == "add" {
            c.arg("./pack");
        }
        let a = c.assert().code(2);
        assert!(stderr(&a).contains("`kst init`"), "{cmd}: {}", stderr(&a));
    }
}

// ---------------------------------------------------------------------------------------------
// add / remove on a local folder

#[test]
fn add_and_remove_keep_every_other_byte_of_the_config() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    env.kst().arg("sync").assert().success();
    assert!(installed(&env, "a"));

    // A new source: appended after the last entry, nothing else moved.
    env.kst().args(["add", "./more"]).assert().success();
    let added = CONFIG.replacen(
        "    skills: [a]      # only a for now\n",
        "    skills: [a]      # only a for now\n  - source: ./more\n    skills: \"*\"\n",
        1,
    );
    assert_eq!(read(&env, "kasetto.yaml"), added);
    assert!(installed(&env, "c"), "synced after the edit");

    // A name added to an existing entry: that entry is rewritten, the rest is byte-identical.
    let a = env
        .kst()
        .args(["add", "./pack", "b", "--json"])
        .assert()
        .success();
    let doc = stdout_json(&a);
    assert_eq!(doc["command"], "add");
    assert_eq!(doc["edits"][0]["action"], "extended");
    assert_eq!(doc["edits"][0]["names"], serde_json::json!(["b"]));
    assert_eq!(
        doc["sync"]["command"], "sync",
        "the sync's report inside: {doc}"
    );
    let extended = added.replacen(
        "    skills: [a]      # only a for now\n",
        "    skills: [a, b]      # only a for now\n",
        1,
    );
    assert_eq!(read(&env, "kasetto.yaml"), extended);
    assert!(installed(&env, "b"));

    // Adding what is there already changes nothing.
    env.kst().args(["add", "./pack", "a"]).assert().success();
    assert_eq!(read(&env, "kasetto.yaml"), extended);

    // Removing a name, then the other source: back to the very bytes we started from.
    env.kst().args(["rm", "./pack", "b"]).assert().success();
    assert!(!installed(&env, "b"), "pruned");
    env.kst().args(["remove", "./more"]).assert().success();
    assert!(!installed(&env, "c"), "pruned");
    assert_eq!(read(&env, "kasetto.yaml"), CONFIG);

    // Removing the last name removes the entry; the list stays, empty.
    env.kst()
        .args(["rm", "./pack", "--skill", "a"])
        .assert()
        .success();
    let empty = CONFIG.replacen(
        "skills:\n  # the pack we all use\n  - source: ./pack   # local\n    skills: [a]      # only a for now\n",
        "skills: []\n  # the pack we all use\n",
        1,
    );
    assert_eq!(read(&env, "kasetto.yaml"), empty);
    assert!(!installed(&env, "a"));
}

#[test]
fn remove_errors_leave_the_file_unchanged() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    // An unknown source: exit 2, the configured sources listed.
    let a = env.kst().args(["remove", "./nope"]).assert().code(2);
    let err = stderr(&a);
    assert!(err.contains("is not a source"), "{err}");
    assert!(
        err.contains("Configured sources:") && err.contains("./pack"),
        "{err}"
    );
    // A name the entry does not list; a name out of a "*" entry.
    let a = env.kst().args(["rm", "./pack", "zzz"]).assert().code(2);
    assert!(stderr(&a).contains("it lists: a"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), CONFIG);
    let star = CONFIG.replace("skills: [a]", "skills: \"*\"");
    write_file(env.project_path("kasetto.yaml"), &star);
    let a = env.kst().args(["rm", "./pack", "a"]).assert().code(2);
    assert!(stderr(&a).contains("\"*\""), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), star);
    // --json: one document with the error.
    let a = env.kst().args(["rm", "./nope", "--json"]).assert().code(2);
    let doc = stdout_json(&a);
    assert!(doc["error"].as_str().unwrap().contains("./pack"), "{doc}");
    assert_eq!(read(&env, "kasetto.yaml"), star);
}

#[test]
fn add_errors_leave_the_file_unchanged() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    // A folder that does not exist, a skill the pack does not have.
    let a = env.kst().args(["add", "./nope"]).assert().failure();
    assert!(stderr(&a).contains("was not changed"), "{}", stderr(&a));
    let a = env.kst().args(["add", "./more", "zzz"]).assert().failure();
    assert!(stderr(&a).contains("zzz"), "{}", stderr(&a));
    // A command the pack does not have.
    let a = env
        .kst()
        .args(["add", "./more", "--command", "x"])
        .assert()
        .failure();
    assert!(stderr(&a).contains("\"x\" not found"), "{}", stderr(&a));
    assert!(stderr(&a).contains("was not changed"), "{}", stderr(&a));
    // A local folder with a ref.
    env.kst().args(["add", "./more@v1"]).assert().failure();
    env.kst()
        .args(["add", "./more", "--ref", "v1"])
        .assert()
        .code(2);
    assert_eq!(read(&env, "kasetto.yaml"), CONFIG);
    assert!(!env.project_path("kasetto.lock").exists());

    // A password in the URL (a browser URL too) is refused and never echoed.
    for url in [
        "https://u:kst-sentinel-91ab@127.0.0.1:9/org/repo",
        "https://u:kst-sentinel-91ab@127.0.0.1:9/org/repo/blob/main/README.md",
        "https://u:kst-sentinel-91ab@127.0.0.1:9/org/repo/tree/main/x",
    ] {
        let a = env.kst().args(["add", url]).assert().code(2);
        let out = format!(
            "{}{}",
            stderr(&a),
            String::from_utf8_lossy(&a.get_output().stdout)
        );
        assert!(!out.contains("kst-sentinel-91ab"), "{out}");
    }
    assert_eq!(read(&env, "kasetto.yaml"), CONFIG);

    // A malformed config is not edited.
    let bad = format!("{CONFIG}skils: []\n");
    write_file(env.project_path("kasetto.yaml"), &bad);
    let a = env.kst().args(["add", "./more"]).assert().code(2);
    assert!(stderr(&a).contains("skils"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), bad);

    // A layout kst cannot edit safely: a flow list.
    let flow = "agent: claude-code\nscope: project\nskills: [{source: ./pack, skills: [a]}]\n";
    write_file(env.project_path("kasetto.yaml"), flow);
    let a = env.kst().args(["add", "./more"]).assert().code(2);
    assert!(stderr(&a).contains("block list"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), flow);

    // A remote config cannot be edited (said before any network use).
    let a = env
        .kst()
        .args([
            "add",
            "./more",
            "--config",
            "http://127.0.0.1:9/kasetto.yaml",
        ])
        .assert()
        .code(2);
    assert!(stderr(&a).contains("remote config"), "{}", stderr(&a));

    // A symlinked config is not written through.
    write_file(env.path("real.yaml"), CONFIG);
    fs::remove_file(env.project_path("kasetto.yaml")).unwrap();
    symlink(env.path("real.yaml"), env.project_path("kasetto.yaml"));
    let a = env.kst().args(["add", "./more"]).assert().code(2);
    assert!(stderr(&a).contains("symlink"), "{}", stderr(&a));
    assert_eq!(fs::read_to_string(env.path("real.yaml")).unwrap(), CONFIG);
}

#[test]
fn add_dry_run_and_no_sync() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    let a = env
        .kst()
        .args(["add", "./more", "--dry-run", "--json"])
        .assert()
        .success();
    let doc = stdout_json(&a);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["edits"][0]["action"], "added");
    assert_eq!(read(&env, "kasetto.yaml"), CONFIG);
    env.kst()
        .args(["add", "./more", "--no-sync"])
        .assert()
        .success();
    assert!(read(&env, "kasetto.yaml").contains("./more"));
    assert!(!installed(&env, "c"), "--no-sync installs nothing");
    assert!(!env.project_path("kasetto.lock").exists());
}

/// The global scope: the XDG config, edited from any folder, installing under HOME; an
/// absolute local folder.
#[test]
fn add_and_remove_in_the_global_scope() {
    let env = TestEnv::new();
    local_packs(&env);
    let cfg = env.xdg_config().join("kasetto/kasetto.yaml");
    write_file(&cfg, "# mine\nagent: claude-code\n");
    let pack = env.project_path("more").display().to_string();
    env.kst().args(["add", &pack]).assert().success();
    assert_eq!(
        fs::read_to_string(&cfg).unwrap(),
        format!("# mine\nagent: claude-code\nskills:\n  - source: {pack}\n    skills: \"*\"\n")
    );
    assert!(env.home_path(".claude/skills/c/SKILL.md").is_file());
    env.kst().args(["remove", &pack]).assert().success();
    assert!(!env.home_path(".claude/skills/c").exists());
    assert_eq!(
        fs::read_to_string(&cfg).unwrap(),
        "# mine\nagent: claude-code\nskills: []\n"
    );
}

/// docs/trust.md: a config the user trusted stays trusted after their own `add`; a config
/// they never trusted is not edited for a sync that the gate would refuse.
#[test]
fn add_keeps_trust_and_never_grants_it() {
    let env = TestEnv::new();
    local_packs(&env);
    let global = "agent: claude-code\nskills:\n  - source: ./pack\n    skills: [a]\n";
    write_file(env.project_path("kasetto.yaml"), global);
    // Untrusted, global scope: refused before anything is fetched or written.
    let a = env.kst().args(["add", "./more"]).assert().code(2);
    assert!(stderr(&a).contains("kst trust"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), global);
    // --no-sync edits the file, but does not make it trusted.
    env.kst()
        .args(["add", "./more", "--no-sync"])
        .assert()
        .success();
    env.kst().arg("sync").assert().code(2);
    // Trusted: add edits it and it stays trusted for the next plain sync.
    env.trust_project_config();
    env.kst().args(["add", "./pack", "b"]).assert().success();
    assert!(env.home_path(".claude/skills/b/SKILL.md").is_file());
    env.kst().args(["rm", "./more"]).assert().success();
    env.kst().arg("sync").assert().success();
    assert!(!env.home_path(".claude/skills/c").exists());
}

// ---------------------------------------------------------------------------------------------
// Git packs on loopback

fn git_pack(env: &TestEnv, rel: &str) -> FixtureRepo {
    let mut repo = FixtureRepo::init(env.remotes().join(rel));
    let c1 = repo.commit(
        "trunk",
        &skill_pack("skills", &[("pdf", "PDF v1"), ("docx", "Word")]),
    );
    repo.tag("v1", c1);
    repo.commit(
        "trunk",
        &skill_pack("skills", &[("pdf", "PDF v2"), ("docx", "Word")]),
    );
    repo.set_head("trunk");
    repo
}

const PROJECT: &str = "# project\nagent: claude-code\nscope: project\n";

#[test]
fn add_a_git_pack_with_at_ref_and_remove_it() {
    let env = TestEnv::new();
    let repo = git_pack(&env, "pack.git");
    let daemon = GitDaemon::start(env.remotes());
    write_file(env.project_path("kasetto.yaml"), PROJECT);
    let url = daemon.url("pack.git");

    // A typo in the URL, a ref that does not exist: non-zero, the file byte-identical.
    let a = env
        .kst()
        .args(["add", &daemon.url("nope.git")])
        .assert()
        .failure();
    assert!(stderr(&a).contains("was not changed"), "{}", stderr(&a));
    env.kst()
        .args(["add", &format!("{url}@v9")])
        .assert()
        .failure();
    env.kst()
        .args(["add", &url, "--skill", "nope"])
        .assert()
        .failure();
    assert_eq!(read(&env, "kasetto.yaml"), PROJECT);

    env.kst()
        .args(["add", &format!("{url}@v1"), "--skill", "pdf"])
        .assert()
        .success();
    assert_eq!(
        read(&env, "kasetto.yaml"),
        format!("{PROJECT}skills:\n  - source: {url}\n    ref: v1\n    skills:\n      - pdf\n")
    );
    assert!(read(&env, ".claude/skills/pdf/SKILL.md").contains("PDF v1"));
    let lock = read(&env, "kasetto.lock");
    assert!(lock.contains(&repo.rev_parse("v1").to_string()), "{lock}");

    // The same URL at another ref is another entry; remove then needs to know which.
    env.kst()
        .args(["add", &url, "docx", "--no-sync"])
        .assert()
        .success();
    let a = env.kst().args(["rm", &url]).assert().code(2);
    assert!(stderr(&a).contains("--ref v1"), "{}", stderr(&a));
    env.kst()
        .args(["rm", &format!("{url}@v1")])
        .assert()
        .success();
    assert!(!installed(&env, "pdf"));
    assert!(installed(&env, "docx"));
    assert_eq!(
        read(&env, "kasetto.yaml"),
        format!("{PROJECT}skills:\n  - source: {url}\n    skills:\n      - docx\n")
    );
}

/// A forge's web URLs (GitHub-style `tree`/`blob`) over loopback HTTP are decomposed into
/// source, branch, sub-dir and name.
#[test]
fn add_decomposes_browser_urls() {
    let env = TestEnv::new();
    git_pack(&env, "org/pack.git");
    let http = HttpGitServer::start(env.remotes(), HttpOptions::default());
    write_file(env.project_path("kasetto.yaml"), PROJECT);
    let repo = http.url("org/pack.git");

    let a = env
        .kst()
        .args([
            "add",
            &format!("{repo}/blob/trunk/skills/pdf/SKILL.md"),
            "--json",
        ])
        .assert()
        .success();
    let doc = stdout_json(&a);
    assert_eq!(doc["edits"][0]["branch"], "trunk");
    assert_eq!(doc["edits"][0]["sub_dir"], "skills");
    assert_eq!(
        read(&env, "kasetto.yaml"),
        format!(
            "{PROJECT}skills:\n  - source: {repo}\n    branch: trunk\n    sub-dir: skills\n    skills:\n      - pdf\n"
        )
    );
    assert!(read(&env, ".claude/skills/pdf/SKILL.md").contains("PDF v2"));
    // The tree URL of the same folder is the same entry: its names grow.
    env.kst()
        .args(["add", &format!("{repo}/tree/trunk/skills"), "docx"])
        .assert()
        .success();
    assert!(installed(&env, "docx"));
    assert!(read(&env, "kasetto.yaml").contains("      - pdf\n      - docx\n"));
    // And remove takes the same URLs.
    env.kst()
        .args(["rm", &format!("{repo}/blob/trunk/skills/pdf/SKILL.md")])
        .assert()
        .success();
    assert!(!installed(&env, "pdf"));
    assert!(installed(&env, "docx"));
}

// ---------------------------------------------------------------------------------------------
// MCP packs

#[test]
fn add_an_mcp_pack() {
    let env = TestEnv::new();
    write_file(
        env.project_path("servers/mcps/github.json"),
        r#"{"mcpServers": {"github": {"command": "gh-mcp", "args": ["--ro"]}}}"#,
    );
    write_file(env.project_path("kasetto.yaml"), PROJECT);
    let a = env
        .kst()
        .args(["add", "./servers", "--mcp", "nope"])
        .assert()
        .failure();
    assert!(stderr(&a).contains("was not changed"), "{}", stderr(&a));
    assert_eq!(read(&env, "kasetto.yaml"), PROJECT);
    env.kst()
        .args(["add", "./servers", "--mcp", "github"])
        .assert()
        .success();
    assert_eq!(
        read(&env, "kasetto.yaml"),
        format!("{PROJECT}mcps:\n  - source: ./servers\n    mcps:\n      - github\n")
    );
    assert!(read(&env, ".mcp.json").contains("gh-mcp"));
    env.kst().args(["rm", "./servers"]).assert().success();
    let left = fs::read_to_string(env.project_path(".mcp.json")).unwrap_or_default();
    assert!(!left.contains("gh-mcp"), "{left}");
}

// ---------------------------------------------------------------------------------------------
// completions

#[test]
fn completions_for_every_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let a = env.kst().args(["completions", shell]).assert().success();
        let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
        assert!(out.contains("kst"), "{shell}: {out}");
        assert!(out.contains("remove") && out.contains("init"), "{shell}");
    }
    let a = env
        .kasetto()
        .args(["completions", "bash"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&a.get_output().stdout).contains("_kasetto"));
    env.kst().args(["completions", "tcsh"]).assert().code(2);
}

/// Extending an entry whose picks have their own `path` resolves only the names added (the
/// others are the sync's to find where their `path` says).
#[test]
fn add_a_name_to_an_entry_with_a_path_pick() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(
        env.project_path("pack/nested/deep/SKILL.md"),
        skill_md("deep", "deep"),
    );
    let config = CONFIG.replace("skills: [a]", "skills: [a, { name: deep, path: nested }]");
    write_file(env.project_path("kasetto.yaml"), &config);
    env.kst().args(["add", "./pack", "b"]).assert().success();
    assert!(installed(&env, "b") && installed(&env, "deep") && installed(&env, "a"));
    assert!(
        read(&env, "kasetto.yaml")
            .contains("skills: [a, { name: deep, path: nested }, b]      # only a for now\n"),
        "{}",
        read(&env, "kasetto.yaml")
    );
}

/// The exit code is the sync's: a sync that reports a broken item exits 1, and with `--json`
/// the one document holds both the edit and the sync's report.
#[test]
fn add_exits_with_the_syncs_code() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    // A folder kst did not install where `c` would go: the sync reports it broken.
    write_file(env.project_path(".claude/skills/c/notes.txt"), "mine\n");
    let a = env.kst().args(["add", "./more", "--json"]).assert().code(1);
    let doc = stdout_json(&a);
    assert_eq!(doc["edits"][0]["action"], "added", "{doc}");
    assert_eq!(doc["sync"]["command"], "sync", "{doc}");
    assert!(
        doc["sync"]["summary"]["broken"].as_u64().unwrap() >= 1,
        "{doc}"
    );
    assert!(read(&env, "kasetto.yaml").contains("./more"));
    assert_eq!(read(&env, ".claude/skills/c/notes.txt"), "mine\n");
}

#[test]
fn add_a_command_and_an_instruction_then_remove_them() {
    let env = TestEnv::new();
    local_packs(&env);
    write_file(
        env.project_path("more/commands/git/commit.md"),
        "---\ndescription: Commit\n---\nCommit $ARGUMENTS.\n",
    );
    write_file(
        env.project_path("more/instructions/style.md"),
        "Use tabs.\n",
    );
    write_file(env.project_path("kasetto.yaml"), CONFIG);
    write_file(env.project_path("CLAUDE.md"), "# mine\n");
    env.kst()
        .args(["add", "./more", "--command", "git:commit"])
        .assert()
        .success();
    let text = read(&env, "kasetto.yaml");
    assert!(
        text.contains("commands:") && text.contains("git:commit"),
        "{text}"
    );
    assert!(env.project_path(".claude/commands/git/commit.md").is_file());
    env.kst()
        .args(["add", "./more", "--instruction", "style"])
        .assert()
        .success();
    let claude = read(&env, "CLAUDE.md");
    assert!(claude.starts_with("# mine\n"), "{claude}");
    assert!(claude.contains("Use tabs."), "{claude}");
    env.kst()
        .args(["remove", "./more", "--instruction", "style"])
        .assert()
        .success();
    assert_eq!(read(&env, "CLAUDE.md"), "# mine\n");
    env.kst()
        .args(["remove", "./more", "--command", "git:commit"])
        .assert()
        .success();
    assert!(!env.project_path(".claude/commands/git/commit.md").exists());
}
