//! `kst outdated`: per locked item, whether its path changed upstream and the commits that
//! touched it; newer tags by version order; read-only (only `refs/kst/` in the cache).

use crate::cmd_fixtures::*;
use crate::support::*;

fn files(pdf: &str, readme: &str, docx: bool) -> Vec<(String, FileSpec)> {
    let mut f = vec![
        (
            "skills/pdf/SKILL.md".to_string(),
            FileSpec::from(skill_md("pdf", pdf)),
        ),
        ("README.md".to_string(), FileSpec::from(readme)),
        ("mcps/tool.json".to_string(), FileSpec::from(TOOL_PACK)),
    ];
    if docx {
        f.push((
            "skills/docx/SKILL.md".into(),
            FileSpec::from(skill_md("docx", "Word")),
        ));
    }
    f
}

fn cache_repo(env: &TestEnv) -> git2::Repository {
    let dir = std::fs::read_dir(env.cache().join("git/db"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    git2::Repository::open_bare(dir).unwrap()
}

fn refs(repo: &git2::Repository) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = repo
        .references()
        .unwrap()
        .flatten()
        .map(|r| {
            (
                r.name().unwrap().to_string(),
                r.target().map(|t| t.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn outdated_lists_changed_items_and_the_commits_that_touched_them() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let c1 = repo.commit_files_msg("trunk", &files("PDF", "hi", true), "initial");
    repo.set_head("trunk");
    let d = GitDaemon::start(env.remotes());
    write_global_config(
        &env,
        &format!(
            "agent: claude-code\nskills:\n  - source: {url}\n    skills: \"*\"\nmcps:\n  - source: {url}\n    mcps: [tool]\n",
            url = d.url("pack.git")
        ),
    );
    env.kst().arg("sync").assert().success();
    let c2 = repo.commit_files_msg(
        "trunk",
        &files("PDF, sharper", "hi", true),
        "pdf: sharper \x1b[2J prompts\n\nbody",
    );
    repo.commit_files_msg("trunk", &files("PDF, sharper", "docs", true), "docs only");
    let c4 = repo.commit_files_msg("trunk", &files("PDF, sharper", "docs", false), "drop docx");

    let lock_before = std::fs::read(global_lock(&env)).unwrap();
    let home_before = read_tree_snapshot(env.home());
    let refs_before = refs(&cache_repo(&env));

    let doc = json(&env, &["outdated"], 0);
    assert_eq!(doc["command"], "outdated");
    let sources = doc["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{doc}");
    let skills = &sources[0];
    assert_eq!(skills["status"], "behind", "{doc}");
    assert_eq!(skills["checked"], "remote");
    assert_eq!(skills["locked"], c1.to_string());
    assert_eq!(skills["latest"], c4.to_string());
    let item = |name: &str| {
        skills["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()
            .clone()
    };
    let pdf = item("pdf");
    assert_eq!(pdf["status"], "changed");
    assert_eq!(pdf["commits"].as_array().unwrap().len(), 1, "{pdf}");
    assert_eq!(pdf["commits"][0]["id"], c2.to_string()[..7]);
    assert_eq!(
        pdf["commits"][0]["subject"],
        "pdf: sharper \\u{1b}[2J prompts"
    );
    assert!(pdf["commits"][0]["date"].as_str().unwrap().ends_with('Z'));
    let docx = item("docx");
    assert_eq!(docx["status"], "removed");
    assert_eq!(docx["commits"][0]["id"], c4.to_string()[..7]);
    // The MCP pack file did not change.
    assert_eq!(sources[1]["items"][0]["kind"], "mcp_pack");
    assert_eq!(sources[1]["items"][0]["status"], "up_to_date");

    // Read-only: the lock, the installs and every ref outside refs/kst/ are as they were.
    assert_eq!(std::fs::read(global_lock(&env)).unwrap(), lock_before);
    assert_snapshots_eq(&home_before, &read_tree_snapshot(env.home()));
    let after = refs(&cache_repo(&env));
    let outside: Vec<_> = after
        .iter()
        .filter(|(n, _)| !n.starts_with("refs/kst/"))
        .cloned()
        .collect();
    assert_eq!(outside, refs_before, "{after:?}");
    assert!(
        after.contains(&("refs/kst/outdated/HEAD".to_string(), c4.to_string())),
        "{after:?}"
    );

    // The human report, escaped.
    let err = stderr(&env, &["outdated"], 0);
    assert!(
        err.contains(&format!(
            "{} → {}",
            &c1.to_string()[..7],
            &c4.to_string()[..7]
        )),
        "{err}"
    );
    assert!(
        err.contains("changed pdf (skills/pdf)") && err.contains("removed docx"),
        "{err}"
    );
    assert!(
        !err.contains('\x1b') && err.contains("sharper \\u{1b}[2J"),
        "{err}"
    );

    // --offline: from the cache, and says so.
    drop(d);
    let doc = json(&env, &["outdated", "--offline"], 0);
    assert_eq!(doc["sources"][0]["checked"], "cache");
    assert_eq!(doc["sources"][0]["latest"], c4.to_string());
    let err = stderr(&env, &["outdated", "--offline"], 0);
    assert!(err.contains("--offline: as of the last fetch"), "{err}");
}

#[test]
fn outdated_lists_newer_tags_by_version_and_an_up_to_date_branch_in_a_project() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let c1 = repo.commit_files_msg("trunk", &files("PDF", "hi", true), "initial");
    repo.set_head("trunk");
    repo.tag("v1.0.0", c1);
    let d = GitDaemon::start(env.remotes());
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    branch: trunk\n    skills: [pdf]\n  - source: {url}\n    ref: v1.0.0\n    skills: [docx]\n",
            url = d.url("pack.git")
        ),
    );
    env.kst().arg("sync").assert().success();
    for t in ["v1.2.0", "v1.10.0", "v2.0.0-rc.1", "v0.9.0", "nightly"] {
        repo.tag(t, c1);
    }
    let doc = json(&env, &["outdated"], 0);
    let sources = doc["sources"].as_array().unwrap();
    let by_req = |r: &str| {
        sources
            .iter()
            .find(|s| s["requested"] == r)
            .unwrap()
            .clone()
    };
    let branch = by_req("branch trunk");
    assert_eq!(branch["status"], "up_to_date", "{doc}");
    assert_eq!(branch["items"][0]["status"], "up_to_date");
    let tag = by_req("tag v1.0.0");
    assert_eq!(tag["status"], "newer_tags");
    assert_eq!(
        tag["newer_tags"],
        serde_json::json!(["v2.0.0-rc.1", "v1.10.0", "v1.2.0"])
    );
    let err = stderr(&env, &["outdated"], 0);
    assert!(
        err.contains("newer tags v2.0.0-rc.1, v1.10.0, v1.2.0"),
        "{err}"
    );
}

#[test]
fn outdated_on_a_local_folder_has_nothing_to_check() {
    let env = TestEnv::new();
    local_project(&env);
    env.kst().arg("sync").assert().success();
    let doc = json(&env, &["outdated"], 0);
    assert_eq!(doc["sources"], serde_json::json!([]));
    let err = stderr(&env, &["outdated"], 0);
    assert!(err.contains("up to date"), "{err}");
}

#[test]
fn outdated_error_paths() {
    let env = TestEnv::new();
    // No config; then a malformed lock: exit 2.
    json(&env, &["outdated"], 2);
    let (_repo, mut d) = git_global(&env);
    env.kst().arg("sync").assert().success();
    let lock = global_lock(&env);
    let good = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, "version: 1\nsources: {\n").unwrap();
    let err = stderr(&env, &["outdated"], 2);
    assert!(err.contains("malformed"), "{err}");
    std::fs::write(&lock, &good).unwrap();
    // The server is gone: the source cannot be checked (exit 1), and says why.
    d.stop();
    let doc = json(&env, &["outdated"], 1);
    assert_eq!(doc["sources"][0]["status"], "error");
    assert!(
        doc["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{doc}"
    );
    // Offline, with nothing fetched by outdated: what sync fetched is used.
    let doc = json(&env, &["outdated", "--offline"], 0);
    assert_eq!(doc["sources"][0]["status"], "up_to_date", "{doc}");
}
