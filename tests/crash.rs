//! Crash safety (SPEC 8): abort the process at each fail point (a debug-build-only
//! `KASETTO_FAILPOINT`), then prove the next run converges to the correct state, and that two
//! syncs at once end in a valid state.

use crate::support::*;

fn project(env: &TestEnv, version: &str) {
    for n in ["pdf", "docx", "xlsx"] {
        write_file(
            env.project_path(format!("pack/skills/{n}/SKILL.md")),
            skill_md(n, &format!("{n} {version}")),
        );
        write_file(
            env.project_path(format!("pack/skills/{n}/data.txt")),
            format!("{n} data {version}\n"),
        );
    }
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
}

/// After recovery: a plain sync is a no-op, verify passes, no staging leftovers, and the
/// installed content is `version`.
fn assert_converged(env: &TestEnv, version: &str) {
    env.kst().arg("sync").assert().success();
    let a = env.kst().args(["sync", "--json"]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(doc["lock_changed"], false, "{doc:#}");
    assert!(
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "unchanged"),
        "{doc:#}"
    );
    env.kst().arg("verify").assert().success();
    // No staging folder, trash or temp file anywhere (work folders sit next to skills folders).
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    assert!(left.is_empty(), "leftovers {left:?}");
    for dir in [".claude/skills", ".agents/skills"] {
        let md = std::fs::read_to_string(env.project_path(format!("{dir}/pdf/SKILL.md"))).unwrap();
        assert!(
            md.contains(&format!("pdf {version}")),
            "{dir}/pdf is not {version}"
        );
    }
}

fn crash_at(env: &TestEnv, point: &str) {
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT", point)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "fail point {point} was not reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(point),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What an agent sees at the crash point: every entry of a skills folder is a whole skill of
/// one of `versions` (its `SKILL.md` and `data.txt`, from the same version), and nothing of
/// ours (no `.kst-*` staging folder, half-written or half-deleted, that holds a `SKILL.md`).
#[track_caller]
fn assert_nothing_half_done(env: &TestEnv, point: &str, versions: &[&str]) {
    for dir in [".claude/skills", ".agents/skills"] {
        let Ok(listing) = std::fs::read_dir(env.project_path(dir)) else {
            continue;
        };
        for e in listing.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".kst-"),
                "{point}: {dir}/{name} is visible to agents"
            );
            let md = std::fs::read_to_string(e.path().join("SKILL.md")).unwrap_or_default();
            let data = std::fs::read_to_string(e.path().join("data.txt")).unwrap_or_default();
            assert!(
                versions
                    .iter()
                    .any(|v| md.contains(&format!("{name} {v}"))
                        && data == format!("{name} data {v}\n")),
                "{point}: {dir}/{name} is not a whole skill (SKILL.md {md:?}, data.txt {data:?})"
            );
        }
    }
}

#[test]
fn crash_at_every_point_of_a_first_install_recovers() {
    for point in [
        "apply-item",
        "install-mid-write",
        "install-before-swap",
        "install-after-swap",
        "sync-before-lock",
        "write-before-rename:kasetto.lock",
    ] {
        let env = TestEnv::new();
        project(&env, "v1");
        crash_at(&env, point);
        assert_nothing_half_done(&env, point, &["v1"]);
        assert_converged(&env, "v1");
    }
}

/// A staging folder is private (`0700`) while it is being written, and so is the work folder
/// that holds it; neither is inside a skills folder.
#[test]
fn staging_folders_are_private_while_written() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    project(&env, "v1");
    crash_at(&env, "install-mid-write");
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    let staging: Vec<&std::path::Path> = left
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("stage-"))
        .map(|p| p.as_path())
        .collect();
    assert!(!staging.is_empty(), "no staging folder: {left:?}");
    let work: Vec<&std::path::Path> = staging.iter().map(|p| p.parent().unwrap()).collect();
    for p in staging.iter().chain(&work) {
        let mode = std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{p:?} is {mode:o}");
        assert!(
            !p.parent().unwrap().ends_with("skills"),
            "{p:?} is inside a skills folder"
        );
    }
    assert_converged(&env, "v1");
}

/// A `destination:` that is the project root itself: the work folder may not go into the
/// project's parent (outside the project), so it is `.kst-work` inside the destination, where a
/// staging folder is two levels down.
#[test]
fn staging_for_a_destination_at_the_project_root_stays_inside_the_project() {
    let env = TestEnv::new();
    project(&env, "v1");
    write_file(
        env.project_path("kasetto.yaml"),
        "destination: .\nscope: project\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
    crash_at(&env, "install-mid-write");
    let parent = env.project().parent().unwrap().to_path_buf();
    let ours: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kst-"))
        .map(|e| e.path())
        .collect();
    assert!(ours.is_empty(), "wrote next to the project: {ours:?}");
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    assert!(
        left.iter().any(|p| p.ends_with(".kst-work")),
        "no work folder inside the destination: {left:?}"
    );
    let out = env.kst().arg("sync").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.project_path("pdf/SKILL.md").is_file());
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    assert!(left.is_empty(), "leftovers {left:?}");
}

/// When the work folder next to the skills folder cannot be created (a parent kst may not
/// write to; here a fail point), staging falls back to `.kst-work` inside the skills folder:
/// two levels down, where no agent looks for a `SKILL.md`.
#[test]
fn staging_falls_back_inside_the_skills_folder_when_its_parent_is_not_writable() {
    let env = TestEnv::new();
    project(&env, "v1");
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT", "install-mid-write")
        .env("KASETTO_FAILPOINT_ERROR", "work-dir")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_nothing_half_done_at_depth_one(&env);
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    assert!(
        left.iter()
            .any(|p| p.ends_with(".claude/skills/.kst-work")
                || p.ends_with(".agents/skills/.kst-work")),
        "staging did not fall back: {left:?}"
    );
    assert!(
        !left
            .iter()
            .any(|p| p.to_string_lossy().contains(".kst-work-")),
        "{left:?}"
    );
    let out = env
        .kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT_ERROR", "work-dir")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_converged(&env, "v1");
}

/// No staging folder directly in a skills folder: only `.kst-work` (which holds them) may be.
#[track_caller]
fn assert_nothing_half_done_at_depth_one(env: &TestEnv) {
    for dir in [".claude/skills", ".agents/skills"] {
        for e in std::fs::read_dir(env.project_path(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                name == ".kst-work" || e.path().join("SKILL.md").is_file(),
                "{dir}/{name} is visible to agents"
            );
            if name == ".kst-work" {
                assert!(!e.path().join("SKILL.md").exists());
            }
        }
    }
}

/// A prune killed halfway through deleting a skill (some of its files gone) leaves no
/// half-deleted skill in the agent's folder, and the next run finishes the job.
#[test]
fn crash_midway_through_a_prune_leaves_no_half_deleted_skill() {
    let env = TestEnv::new();
    project(&env, "v1");
    env.kst().arg("sync").assert().success();
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
    crash_at(&env, "remove-midway");
    assert_nothing_half_done(&env, "remove-midway", &["v1"]);
    let out = env.kst().args(["sync", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dir in [".claude/skills", ".agents/skills"] {
        let mut names: Vec<String> = std::fs::read_dir(env.project_path(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["pdf"], "{dir}");
    }
    assert_converged(&env, "v1");
}

#[test]
fn crash_at_every_point_of_an_update_recovers() {
    for point in [
        "apply-item",
        "install-mid-write",
        "install-before-swap",
        "install-after-swap",
        "sync-before-lock",
        "write-before-rename:kasetto.lock",
    ] {
        let env = TestEnv::new();
        project(&env, "v1");
        env.kst().arg("sync").assert().success();
        let lock_before = std::fs::read(env.project_path("kasetto.lock")).unwrap();
        project(&env, "v2");
        crash_at(&env, point);
        // Every point is before the lock's rename, so the lock is exactly the old one: not
        // torn, and not the new one written in place before its rename.
        let lock_now = std::fs::read(env.project_path("kasetto.lock")).unwrap();
        assert!(
            lock_now == lock_before,
            "the lock changed before its rename ({point}): {}",
            String::from_utf8_lossy(&lock_now)
        );
        assert_nothing_half_done(&env, point, &["v1", "v2"]);
        assert_converged(&env, "v2");
        let lock_after = std::fs::read(env.project_path("kasetto.lock")).unwrap();
        assert_ne!(
            lock_after, lock_before,
            "{point}: the update changed no lock"
        );
    }
}

/// Read `child`'s stderr line by line until a line contains `needle`; the lines read. A child
/// that ends first (EOF) fails the test with what it said.
fn read_until(stderr: &mut impl std::io::BufRead, needle: &str, who: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
        assert!(n > 0, "{who} ended without saying {needle:?}:\n{seen}");
    }
}

/// Wait until the kernel reports `child` blocked on a file lock (a `->` line of /proc/locks).
/// A child that ends instead never waited: that fails the test.
fn wait_until_blocked_on_a_lock(child: &mut std::process::Child, who: &str) {
    let pid = child.id().to_string();
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        if locks.lines().any(|l| {
            let mut f = l.split_whitespace().skip(1);
            f.next() == Some("->") && f.nth(3) == Some(pid.as_str())
        }) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{who} did not wait for the scope lock: it ended ({status})");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn concurrent_syncs_end_in_a_valid_state() {
    // No race: the first sync stops right after taking the scope lock (a debug-build fail
    // point) until the test closes its stdin. Two more syncs start meanwhile; the kernel must
    // show each blocked on the lock, nothing may be installed while the first one holds it,
    // and each must say that it waited.
    use std::io::{BufReader, Read};
    use std::process::{Command, Stdio};
    let env = TestEnv::new();
    project(&env, "v1");
    let spawn = |hold: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kst"));
        c.env_clear()
            .envs(env.hermetic_vars())
            .current_dir(env.project())
            .arg("sync")
            .stdin(if hold { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if hold {
            c.env("KASETTO_FAILPOINT_HOLD", "scope-locked");
        }
        c.spawn().unwrap()
    };
    let mut first = spawn(true);
    let mut first_err = BufReader::new(first.stderr.take().unwrap());
    let mut said = read_until(
        &mut first_err,
        "fail point scope-locked reached",
        "the first sync",
    );
    let mut others: Vec<_> = (0..2).map(|_| spawn(false)).collect();
    for (i, c) in others.iter_mut().enumerate() {
        wait_until_blocked_on_a_lock(c, &format!("sync {}", i + 2));
    }
    let lock = env.project_path("kasetto.lock");
    assert!(
        !env.project_path(".claude/skills").exists() && !lock.exists(),
        "something was installed while the first sync held the scope lock"
    );
    // Let the first one go; the others follow, one at a time.
    drop(first.stdin.take());
    first_err.read_to_string(&mut said).unwrap();
    assert!(first.wait().unwrap().success(), "{said}");
    assert!(!said.contains("waiting for another kst"), "{said}");
    let waiting = format!("waiting for another kst to finish with {}", lock.display());
    for mut c in others {
        let mut said = String::new();
        c.stderr.take().unwrap().read_to_string(&mut said).unwrap();
        assert!(c.wait().unwrap().success(), "{said}");
        assert!(
            said.contains(&waiting),
            "a second run waited silently:\n{said}"
        );
    }
    assert_converged(&env, "v1");
}

// ---------------------------------------------------------------------------------------------
// MCP servers (SPEC 10): a crash after a settings file was written and before the lock was
// leaves entries the lock does not know. They are exactly what kst would write, so the next run
// adopts them instead of reporting them as the user's (a permanent conflict).

const MCP_SECRET: &str = "kst-crash-secret-5d1e";

/// Settings files (four formats, two of them already holding the user's own server), and a
/// local pack whose server uses a `${kst_…}` secret.
fn mcp_project(env: &TestEnv) {
    write_file(
        env.project_path(".mcp.json"),
        "{\n  \"mcpServers\": {\n    \"mine\": { \"command\": \"my-server\" }\n  }\n}\n",
    );
    write_file(
        env.project_path(".codex/config.toml"),
        "# mine\n[mcp_servers.mine]\ncommand = \"my-server\"\n",
    );
    mcp_pack(env, "--v1");
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex, cursor, github-copilot]\nscope: project\nmcps:\n  - source: ./pack\n    mcps: [srv]\n",
    );
    // Secrets are resolved only for a config the user trusts.
    env.trust_project_config();
}

fn mcp_pack(env: &TestEnv, arg: &str) {
    write_file(
        env.project_path("pack/mcps/srv.json"),
        format!(
            r#"{{"mcpServers": {{"srv": {{"command": "srv-mcp", "args": ["{arg}"], "env": {{"TOKEN": "${{kst_SRV_TOKEN}}"}}}}}}}}"#
        ),
    );
}

fn mcp_sync(env: &TestEnv, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = env.kst();
    cmd.arg("sync").args(args).env("KST_SRV_TOKEN", MCP_SECRET);
    if let Some(p) = failpoint {
        cmd.env("KASETTO_FAILPOINT", p);
    }
    cmd.output().unwrap()
}

fn mcp_crash_at(env: &TestEnv, point: &str) {
    let out = mcp_sync(env, &[], Some(point));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(point),
        "fail point {point} was not reached: {stderr}"
    );
}

/// Names starting with `.kst-` anywhere in the project (temp files may hold secret values).
fn kst_leftovers(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(".kst-") {
            out.push(e.path());
        }
        if e.file_type().unwrap().is_dir() {
            kst_leftovers(&e.path(), out);
        }
    }
}

/// After a crash at `point`: a plain sync exits 0 and the lock lists the server in every file;
/// a second sync is a byte-identical no-op; the user's servers and no leftovers remain.
#[track_caller]
fn assert_mcp_converged(env: &TestEnv, point: &str, arg: &str) {
    let out = mcp_sync(env, &[], None);
    assert!(
        out.status.success(),
        "{point}: recovery sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap(),
    )
    .unwrap();
    let srv = &lock["mcps"][0]["packs"][0]["servers"]["srv"];
    let mut targets: Vec<&str> = srv["targets"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{point}: srv is not in the lock: {lock:?}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            ".codex/config.toml",
            ".cursor/mcp.json",
            ".mcp.json",
            ".vscode/mcp.json"
        ],
        "{point}"
    );
    let mut left = Vec::new();
    kst_leftovers(&env.project(), &mut left);
    assert!(left.is_empty(), "{point}: leftovers {left:?}");
    for file in [
        ".mcp.json",
        ".codex/config.toml",
        ".cursor/mcp.json",
        ".vscode/mcp.json",
    ] {
        let text = std::fs::read_to_string(env.project_path(file)).unwrap();
        assert!(
            text.contains(MCP_SECRET) && text.contains(arg),
            "{point}: {file}: {text}"
        );
    }
    assert!(
        std::fs::read_to_string(env.project_path(".mcp.json"))
            .unwrap()
            .contains("\"mine\": { \"command\": \"my-server\" }"),
        "{point}"
    );
    assert!(
        std::fs::read_to_string(env.project_path(".codex/config.toml"))
            .unwrap()
            .starts_with("# mine\n[mcp_servers.mine]\ncommand = \"my-server\"\n"),
        "{point}"
    );

    let before = read_tree_snapshot(env.project());
    let out = mcp_sync(env, &["--json"], None);
    assert!(out.status.success(), "{point}");
    assert_snapshots_eq(&before, &read_tree_snapshot(env.project()));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lock_changed"], false, "{point}: {doc:#}");
    let item = &doc["items"][0];
    assert_eq!(item["name"], "srv", "{point}: {doc:#}");
    assert_eq!(item["action"], "unchanged", "{point}: {doc:#}");
}

/// The fail points a sync that writes MCP servers passes: each settings file's rename (codex's
/// `config.toml` is written first, `.vscode/mcp.json` last), the lock's rename, and just before
/// the lock.
const MCP_POINTS: &[&str] = &[
    "write-before-rename:config.toml",
    "write-before-rename:mcp.json",
    "write-before-rename:.mcp.json",
    "sync-before-lock",
    "write-before-rename:kasetto.lock",
];

#[test]
fn crash_at_every_point_of_a_first_mcp_install_recovers() {
    for point in MCP_POINTS {
        let env = TestEnv::new();
        mcp_project(&env);
        mcp_crash_at(&env, point);
        assert_mcp_converged(&env, point, "--v1");
    }
}

#[test]
fn crash_at_every_point_of_an_mcp_update_recovers() {
    for point in MCP_POINTS {
        let env = TestEnv::new();
        mcp_project(&env);
        assert!(mcp_sync(&env, &[], None).status.success());
        mcp_pack(&env, "--v2");
        mcp_crash_at(&env, point);
        assert_mcp_converged(&env, point, "--v2");
    }
}

#[test]
fn a_removal_that_fails_keeps_the_folder_tracked() {
    let env = TestEnv::new();
    project(&env, "v1");
    env.kst().arg("sync").assert().success();
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: [claude-code, codex]\nscope: project\nskills:\n  - source: ./pack\n    skills: [pdf, docx]\n",
    );
    env.kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT_ERROR", "remove")
        .assert()
        .code(1);
    assert!(env.project_path(".claude/skills/xlsx/SKILL.md").is_file());
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    assert!(
        lock.contains(".claude/skills/xlsx"),
        "the folder fell out of the lock:\n{lock}"
    );
    // The next run finishes the job.
    env.kst().arg("sync").assert().success();
    assert!(!env.project_path(".claude/skills/xlsx").exists());
    assert!(
        !std::fs::read_to_string(env.project_path("kasetto.lock"))
            .unwrap()
            .contains("xlsx")
    );
}

#[test]
fn an_install_that_fails_is_not_claimed_and_is_retried() {
    let env = TestEnv::new();
    project(&env, "v1");
    env.kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT_ERROR", "install")
        .assert()
        .code(1);
    assert!(!env.project_path(".claude/skills/pdf").exists());
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap_or_default();
    assert!(
        !lock.contains(".claude/skills/pdf"),
        "a failed install is in the lock:\n{lock}"
    );
    assert_converged(&env, "v1");
}

#[test]
fn a_reinstall_that_fails_keeps_the_locked_folder_ours() {
    let env = TestEnv::new();
    project(&env, "v1");
    env.kst().arg("sync").assert().success();
    std::fs::remove_dir_all(env.project_path(".claude/skills/pdf")).unwrap();
    env.kst()
        .arg("sync")
        .env("KASETTO_FAILPOINT_ERROR", "install")
        .assert()
        .code(1);
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    assert!(
        lock.contains(".claude/skills/pdf"),
        "a locked folder fell out of the lock:\n{lock}"
    );
    assert_converged(&env, "v1");
}
