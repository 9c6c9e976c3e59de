//! Fixtures shared by the tests of `kst list`, `clean`, `cache`, `doctor` and `outdated`: a local
//! folder pack in the project scope, and a git pack on loopback in the global scope.

use crate::support::*;

/// The MCP pack file both fixtures carry: one server, no secret.
pub const TOOL_PACK: &str =
    r#"{"mcpServers": {"tool": {"command": "tool-mcp", "args": ["--ro"]}}}"#;

/// A local folder `<project>/pack` with skills `pdf` and `docx` and the MCP server `tool`; the
/// project's `kasetto.yaml` (project scope) takes all of them.
pub fn local_project(env: &TestEnv) {
    for f in skill_pack("skills", &[("pdf", "PDF tools"), ("docx", "Word")]) {
        write_file(env.project_path(format!("pack/{}", f.0)), f.1.bytes());
    }
    write_file(env.project_path("pack/mcps/tool.json"), TOOL_PACK);
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\nmcps:\n  - source: ./pack\n    mcps: [tool]\n",
    );
}

/// A git pack served on loopback (`pack.git`, branch `trunk` = HEAD) with skills `pdf` and
/// `docx`, and the user's global config (`$XDG_CONFIG_HOME/kasetto/kasetto.yaml`) taking all
/// of them: the global scope, installed under HOME.
pub fn git_global(env: &TestEnv) -> (FixtureRepo, GitDaemon) {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let mut f = skill_pack("skills", &[("pdf", "PDF tools"), ("docx", "Word")]);
    f.push(("mcps/tool.json".into(), FileSpec::file(TOOL_PACK)));
    repo.commit("trunk", &f);
    repo.set_head("trunk");
    let d = GitDaemon::start(env.remotes());
    write_global_config(
        env,
        &format!(
            "agent: claude-code\nskills:\n  - source: {url}\n    skills: \"*\"\nmcps:\n  - source: {url}\n    mcps: [tool]\n",
            url = d.url("pack.git")
        ),
    );
    (repo, d)
}

pub fn write_global_config(env: &TestEnv, text: &str) {
    write_file(env.xdg_config().join("kasetto/kasetto.yaml"), text);
}

pub fn global_lock(env: &TestEnv) -> std::path::PathBuf {
    env.xdg_data().join("kasetto/kasetto.lock")
}

/// Run kst with `args`; expect exit `code`; return stdout.
pub fn run(env: &TestEnv, args: &[&str], code: i32) -> String {
    let out = env
        .kst()
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8(out.stdout).unwrap()
}

/// Run kst with `args` and `--json`; expect exit `code`; return the document.
pub fn json(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run(env, &a, code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Run kst; expect exit `code`; return stderr.
pub fn stderr(env: &TestEnv, args: &[&str], code: i32) -> String {
    let out = env
        .kst()
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8(out.stderr).unwrap()
}
