//! `extends` and remote configs (SPEC 3, 11): merging, cycles, depth, HTTPS with a test CA,
//! tokens for private configs, browser URLs and HTML answers.

use std::path::Path;

use crate::support::*;

const TOKEN: &str = "cfg-token-44b1e9a0";

fn local_pack(dir: &Path, names: &[&str]) {
    for n in names {
        write_file(
            dir.join(format!("skills/{n}/SKILL.md")),
            skill_md(n, "a skill"),
        );
    }
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn extends_merges_parents_then_child() {
    let env = TestEnv::new();
    // In the project scope `extends` names files inside the project (SPEC 3).
    let team = env.project_path("team");
    local_pack(&team.join("pack"), &["pdf", "docx"]);
    local_pack(&env.project_path("mine"), &["notes"]);
    write_file(
        team.join("base.yaml"),
        "agent: cursor\nscope: global\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: ./team/base.yaml\nagent: claude-code\nscope: project\nskills:\n  - source: ./team/pack\n    skills: [pdf, docx]\n  - source: ./mine\n    skills: \"*\"\n",
    );
    env.kst().arg("sync").assert().success();
    // The child's scope and agent won; its entry with the parent's identity replaced it.
    for s in ["pdf", "docx", "notes"] {
        assert!(
            env.project_path(format!(".claude/skills/{s}/SKILL.md"))
                .is_file(),
            "{s} missing"
        );
    }
    assert!(!env.project_path(".cursor").exists());
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    // The parent's local source is spelled relative to the project, once.
    assert_eq!(lock.matches("url: ./team/pack").count(), 1, "{lock}");
}

#[test]
fn extends_parent_entries_are_inherited() {
    let env = TestEnv::new();
    local_pack(&env.project_path("team/pack"), &["pdf"]);
    write_file(
        env.project_path("team/base.yaml"),
        "agent: claude-code\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: [./team/base.yaml]\nscope: project\n",
    );
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
}

#[test]
fn extends_cycle_is_rejected_with_the_chain() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: a.yaml\nagent: claude-code\n",
    );
    write_file(env.project_path("a.yaml"), "extends: b.yaml\n");
    write_file(env.project_path("b.yaml"), "extends: a.yaml\n");
    let a = env.kst().arg("sync").assert().code(2);
    let err = stderr(&a);
    assert!(
        err.contains("cycle") && err.contains("a.yaml → ") && err.contains("b.yaml"),
        "{err}"
    );
}

#[test]
fn extends_deeper_than_eight_is_rejected() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: l1.yaml\nagent: claude-code\n",
    );
    for i in 1..=9 {
        write_file(
            env.project_path(format!("l{i}.yaml")),
            format!("extends: l{}.yaml\n", i + 1),
        );
    }
    write_file(env.project_path("l10.yaml"), "scope: project\n");
    let a = env.kst().arg("sync").assert().code(2);
    assert!(stderr(&a).contains("deeper than 8"), "{}", stderr(&a));
}

#[test]
fn parent_config_errors_name_the_parent_file_and_line() {
    let env = TestEnv::new();
    write_file(
        env.project_path("kasetto.yaml"),
        "extends: base.yaml\nagent: claude-code\n",
    );
    write_file(
        env.project_path("base.yaml"),
        "agent: claude-code\nskils: []\n",
    );
    let a = env.kst().arg("sync").assert().code(2);
    assert!(stderr(&a).contains("base.yaml:2:"), "{}", stderr(&a));
}

fn remote_cfg(pack_dir: &Path) -> String {
    // Remote configs cannot name local folders; a file:// git URL is fine.
    let mut repo = FixtureRepo::init(pack_dir);
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    format!(
        "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
        repo.file_url()
    )
}

#[test]
fn remote_config_with_a_token() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN).with_file(
            "/team/kasetto.yaml",
            "text/yaml",
            cfg.as_bytes(),
        ),
    );
    let url = format!("{}/team/kasetto.yaml", h.base_url());
    // Without the token: a clear error naming the variable.
    let a = env.kst().args(["sync", "--config", &url]).assert().code(1);
    assert!(
        stderr(&a).contains("KASETTO_TOKEN_127_0_0_1"),
        "{}",
        stderr(&a)
    );
    assert!(!env.project_path(".claude").exists());
    // With it: installs, the lock is next to the current folder.
    env.kst()
        .args(["sync", "--config", &url])
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .assert()
        .success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    assert!(env.project_path("kasetto.lock").is_file());
}

#[test]
fn local_config_extends_a_remote_one() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file("/base.yaml", "text/plain", cfg.as_bytes()),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "extends: {}/base.yaml\nagent: [claude-code, codex]\n",
            h.base_url()
        ),
    );
    // The scope comes from the remote parent, which kst does not read before the file is
    // trusted (trust::untrusted_config_with_a_remote_parent_reads_nothing_from_the_network).
    env.kst().arg("trust").assert().success();
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".agents/skills/pdf/SKILL.md").is_file());
}

#[test]
fn html_answer_is_a_clear_error() {
    let env = TestEnv::new();
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file(
            "/k.yaml",
            "text/html",
            "<!DOCTYPE html><html><body>Sign in</body></html>",
        ),
    );
    let a = env
        .kst()
        .args(["sync", "--config", &format!("{}/k.yaml", h.base_url())])
        .assert()
        .code(2);
    assert!(stderr(&a).contains("HTML page, not YAML"), "{}", stderr(&a));
}

#[test]
fn remote_config_that_is_not_yaml_is_a_clear_error() {
    let env = TestEnv::new();
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file("/k.yaml", "text/plain", "{{{ not: yaml"),
    );
    let url = format!("{}/k.yaml", h.base_url());
    let a = env.kst().args(["sync", "--config", &url]).assert().code(2);
    assert!(stderr(&a).contains("/k.yaml"), "{}", stderr(&a));
}

#[test]
fn plain_http_to_a_non_loopback_host_is_refused() {
    let env = TestEnv::new();
    let a = env
        .kst()
        .args(["sync", "--config", "http://example.invalid/k.yaml"])
        .assert()
        .code(2);
    assert!(stderr(&a).contains("loopback"), "{}", stderr(&a));
}

pub(crate) use crate::perf_smoke::harness::TlsServer;

/// An HTTPS server serving the files of `dir`, with a certificate from a throwaway CA made in
/// `dir/tls` (the benchmark harness's, shared).
pub(crate) fn tls_server(dir: &Path) -> TlsServer {
    TlsServer::start(&dir.join("tls"), dir).expect("the HTTPS test server starts")
}

#[test]
fn https_remote_config_is_verified_against_the_trusted_ca() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    let dir = env.path("tls");
    let server = tls_server(&dir);
    write_file(dir.join("kasetto.yaml"), cfg);
    let url = format!("https://localhost:{}/kasetto.yaml", server.port);
    // Untrusted CA: refused.
    let a = env.kst().args(["sync", "--config", &url]).assert().code(1);
    assert!(
        !env.project_path(".claude").exists(),
        "installed from an untrusted server: {}",
        stderr(&a)
    );
    // Trusted through SSL_CERT_FILE: works.
    env.kst()
        .args(["sync", "--config", &url])
        .env("SSL_CERT_FILE", &server.ca)
        .assert()
        .success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
}

#[test]
fn offline_never_downloads_a_remote_config() {
    let env = TestEnv::new();
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file("/k.yaml", "text/plain", "agent: claude-code\n"),
    );
    let url = format!("{}/k.yaml", h.base_url());
    let a = env
        .kst()
        .args(["sync", "--offline", "--config", &url])
        .assert()
        .code(1);
    assert!(stderr(&a).contains("--offline"), "{}", stderr(&a));
    assert_eq!(h.requests(), 0, "an offline run downloaded the config");
    // Messages keep the port, so the user can tell servers apart.
    let gone = format!("http://127.0.0.1:{}/k.yaml", h.port());
    drop(h);
    let a = env.kst().args(["sync", "--config", &gone]).assert().code(1);
    assert!(stderr(&a).contains(&gone), "{}", stderr(&a));
}

const TOKEN_B: &str = "cfg-token-for-target-90c2";

#[test]
fn remote_config_token_is_offered_only_after_the_server_asks() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    // An open server never asks, so it never gets the token, though one is set for its host.
    let open = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file("/k.yaml", "text/yaml", cfg.as_bytes()),
    );
    env.kst()
        .args(["sync", "--config", &format!("{}/k.yaml", open.base_url())])
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .assert()
        .success();
    assert!(
        open.seen_authorizations().is_empty(),
        "a token was sent to a server that did not ask for one"
    );
    // A private one is asked anonymously first (401), then gets the token, once.
    let private = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN).with_file(
            "/k.yaml",
            "text/yaml",
            cfg.as_bytes(),
        ),
    );
    env.kst()
        .args([
            "sync",
            "--config",
            &format!("{}/k.yaml", private.base_url()),
        ])
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .assert()
        .success();
    let log = private.request_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].authorization.as_deref(), log[0].status),
        (None, 401)
    );
    assert_eq!(
        log[1].authorization.as_deref(),
        Some(basic_auth_header("x-access-token", TOKEN).as_str())
    );
}

#[test]
fn remote_config_token_is_chosen_afresh_for_the_host_a_redirect_leads_to() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    // `localhost` wants its own token; the front (127.0.0.1) asks for its own, then redirects.
    let target = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN_B).with_file(
            "/team/k.yaml",
            "text/yaml",
            cfg.as_bytes(),
        ),
    );
    let target_base = target.base_url().replace("127.0.0.1", "localhost");
    let front = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN).then_redirect(&target_base),
    );
    let a = env
        .kst()
        .args([
            "sync",
            "--config",
            &format!("{}/team/k.yaml", front.base_url()),
        ])
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .env("KASETTO_TOKEN_LOCALHOST", TOKEN_B)
        .assert();
    let err = stderr(&a);
    a.success();
    assert!(err.contains("redirected to"), "{err}");
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    let front_auth = basic_auth_header("x-access-token", TOKEN);
    assert_eq!(
        front.seen_authorizations(),
        std::slice::from_ref(&front_auth)
    );
    let log = target.request_log();
    assert!(
        log.iter()
            .all(|r| r.authorization.as_deref() != Some(front_auth.as_str())),
        "the first host's token followed the redirect: {log:?}"
    );
    assert_eq!(
        log.first().map(|r| (r.authorization.is_none(), r.status)),
        Some((true, 401)),
        "the new host was sent a token before it asked: {log:?}"
    );
    assert!(
        log.iter().any(|r| r.authorization.as_deref()
            == Some(basic_auth_header("x-access-token", TOKEN_B).as_str())),
        "{log:?}"
    );
}

#[test]
fn a_host_that_only_starts_like_a_loopback_address_gets_no_plain_http() {
    let env = TestEnv::new();
    for url in [
        "http://127.attacker.example/k.yaml",
        "http://127.0.0.1.attacker.example/k.yaml",
    ] {
        let a = env.kst().args(["sync", "--config", url]).assert().code(2);
        assert!(stderr(&a).contains("loopback"), "{}", stderr(&a));
    }
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: http://127.attacker.example/o/r\n    skills: \"*\"\n",
    );
    let a = env.kst().arg("sync").assert().code(2);
    assert!(stderr(&a).contains("plain http"), "{}", stderr(&a));
}

#[test]
fn json_names_a_remote_config_without_its_query() {
    let env = TestEnv::new();
    let cfg = remote_cfg(&env.remotes().join("pack.git"));
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::default().with_file("/k.yaml", "text/yaml", cfg.as_bytes()),
    );
    let url = format!("{}/k.yaml?private_token=SEKRIT-q-77", h.base_url());
    let a = env
        .kst()
        .args(["sync", "--json", "--config", &url])
        .assert()
        .success();
    let o = a.get_output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!text.contains("SEKRIT-q-77"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["config"], format!("{}/k.yaml", h.base_url()));
}

/// A server that answers 403 to an anonymous request (GitHub and GitLab do, for a private
/// file) is asking for credentials: the error names the variable to set, like a 401 (a mutant
/// that reported it as a plain "HTTP 403" went unnoticed).
#[test]
fn a_403_answer_names_the_token_variable_to_set() {
    use std::io::{Read, Write};
    let env = TestEnv::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let url = format!("http://127.0.0.1:{port}/k.yaml");
    let a = env.kst().args(["sync", "--config", &url]).assert().code(1);
    let err = stderr(&a);
    assert!(err.contains("answered 403"), "{err}");
    assert!(err.contains("KASETTO_TOKEN_127_0_0_1"), "{err}");
}
