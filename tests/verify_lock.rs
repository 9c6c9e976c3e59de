//! `kst verify`, `kst fetch`, `kst lock [--check]` against a git pack on loopback.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn setup(env: &TestEnv) -> (FixtureRepo, GitDaemon) {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let mut f = skill_pack("skills", &[("pdf", "PDF tools"), ("docx", "Word")]);
    f.push((
        "skills/pdf/run.sh".into(),
        FileSpec::exec("#!/bin/sh\necho run\n"),
    ));
    f.push(("skills/pdf/notes.md".into(), FileSpec::file("notes\n")));
    repo.commit("trunk", &f);
    repo.set_head("trunk");
    let d = GitDaemon::start(env.remotes());
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            d.url("pack.git")
        ),
    );
    (repo, d)
}

fn pdf(env: &TestEnv, rel: &str) -> std::path::PathBuf {
    env.project_path(format!(".claude/skills/pdf/{rel}"))
}

fn verify_json(env: &TestEnv) -> serde_json::Value {
    let out = env
        .kst()
        .args(["verify", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("verify --json prints JSON")
}

fn pdf_check(doc: &serde_json::Value) -> &serde_json::Value {
    doc["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "pdf")
        .expect("pdf checked")
}

#[test]
fn verify_passes_on_a_clean_install() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    env.kst().arg("sync").assert().success();
    env.kst().arg("verify").assert().success();
}

#[test]
fn verify_catches_a_one_byte_edit() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    env.kst().arg("sync").assert().success();
    write_file(pdf(&env, "notes.md"), "notez\n");
    let doc = verify_json(&env);
    assert_eq!(pdf_check(&doc)["status"], "modified");
    assert_eq!(pdf_check(&doc)["modified"], serde_json::json!(["notes.md"]));
}

#[test]
fn verify_catches_an_exec_bit_change() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    env.kst().arg("sync").assert().success();
    std::fs::set_permissions(pdf(&env, "run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let doc = verify_json(&env);
    assert_eq!(
        pdf_check(&doc)["mode_changed"],
        serde_json::json!(["run.sh"])
    );
}

#[test]
fn verify_catches_deleted_and_added_files() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    env.kst().arg("sync").assert().success();
    std::fs::remove_file(pdf(&env, "notes.md")).unwrap();
    write_file(pdf(&env, "extra.txt"), "new\n");
    let doc = verify_json(&env);
    assert_eq!(pdf_check(&doc)["missing"], serde_json::json!(["notes.md"]));
    assert_eq!(pdf_check(&doc)["extra"], serde_json::json!(["extra.txt"]));
    // Human output names the files too.
    let a = env.kst().arg("verify").assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("missing: notes.md") && err.contains("extra: extra.txt"),
        "{err}"
    );
}

#[test]
fn verify_reports_a_missing_folder() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    env.kst().arg("sync").assert().success();
    std::fs::remove_dir_all(env.project_path(".claude/skills/docx")).unwrap();
    let doc = verify_json(&env);
    let docx = doc["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "docx")
        .unwrap();
    assert_eq!(docx["status"], "missing");
}

#[test]
fn fetch_then_frozen_installs_in_a_new_home_with_no_server() {
    let env = TestEnv::new();
    let (_r, mut d) = setup(&env);
    env.kst().arg("lock").assert().success();
    assert!(
        !env.project_path(".claude").exists(),
        "lock installed something"
    );
    // A CI job fills a shared cache...
    let shared = env.path("shared-cache");
    env.kst()
        .arg("fetch")
        .env("KASETTO_CACHE_DIR", &shared)
        .assert()
        .success();
    d.stop();
    // ...and a later job on a fresh HOME installs from it with no network at all.
    let fresh = TestEnv::new();
    for f in ["kasetto.yaml", "kasetto.lock"] {
        write_file(
            fresh.project_path(f),
            std::fs::read(env.project_path(f)).unwrap(),
        );
    }
    fresh
        .kst()
        .args(["sync", "--frozen"])
        .env("KASETTO_CACHE_DIR", &shared)
        .assert()
        .success();
    assert!(fresh.project_path(".claude/skills/pdf/SKILL.md").is_file());
    fresh
        .kst()
        .arg("verify")
        .env("KASETTO_CACHE_DIR", &shared)
        .assert()
        .success();
}

#[test]
fn lock_check_fails_on_drift_and_writes_nothing() {
    let env = TestEnv::new();
    let (mut r, _d) = setup(&env);
    env.kst().arg("lock").assert().success();
    let before = std::fs::read(env.project_path("kasetto.lock")).unwrap();
    env.kst().args(["lock", "--check"]).assert().success();
    // Upstream moves: a pinned lock does not drift...
    r.commit("trunk", &skill_pack("skills", &[("pdf", "PDF tools v2")]));
    env.kst().args(["lock", "--check"]).assert().success();
    // ...but --update would move it, and a config change is drift.
    env.kst()
        .args(["lock", "--check", "--update"])
        .assert()
        .code(1);
    let cfg = std::fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    write_file(
        env.project_path("kasetto.yaml"),
        cfg.replace("\"*\"", "[pdf]"),
    );
    let a = env.kst().args(["lock", "--check"]).assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("docx"), "{err}");
    assert_eq!(
        std::fs::read(env.project_path("kasetto.lock")).unwrap(),
        before
    );
}

#[test]
fn lock_reports_a_skill_it_cannot_record() {
    let env = TestEnv::new();
    let (_r, _d) = setup(&env);
    // A folder the user made is where `pdf` would go: kst will not claim it, and says so
    // instead of silently writing a lock without pdf.
    write_file(env.project_path(".claude/skills/pdf/mine.txt"), "mine\n");
    let a = env.kst().arg("lock").assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("! pdf") && err.contains("was not installed by kst"),
        "{err}"
    );
    let a = env.kst().args(["lock", "--json"]).assert().code(1);
    let doc: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(doc["broken"][0]["name"], "pdf", "{doc:#}");
    assert_eq!(
        std::fs::read_to_string(env.project_path(".claude/skills/pdf/mine.txt")).unwrap(),
        "mine\n"
    );
    // pdf stays in the pinned set (installed nowhere here), so "*" did not shrink.
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    assert!(
        lock.contains("name: pdf") && lock.contains("installed: []"),
        "{lock}"
    );
    std::fs::remove_dir_all(env.project_path(".claude/skills/pdf")).unwrap();
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
}
