//! Credentials (SPEC 11): per-host tokens from the environment, the git credential helper,
//! bounded attempts, redirects, and no token ever leaking into output or files.

use crate::support::http_git::base64_encode;
use crate::support::*;

const TOKEN: &str = "kst-test-token-7f3a9c";
const SENTINEL: &str = "SENTINEL-5e1d0b77c2";

fn pack(env: &TestEnv) -> FixtureRepo {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    repo
}

fn config(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
        ),
    );
}

fn out(a: &assert_cmd::assert::Assert) -> String {
    let o = a.get_output();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn host_token_variable_authenticates() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN),
    );
    config(&env, &h.url("pack.git"));
    env.kst()
        .arg("sync")
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .assert()
        .success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    assert!(
        h.seen_authorizations()
            .iter()
            .any(|a| a == &basic_auth_header("x-access-token", TOKEN))
    );
}

#[test]
fn missing_token_names_the_variable_to_set() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN),
    );
    config(&env, &h.url("pack.git"));
    let a = env.kst().arg("sync").assert().code(1);
    let text = out(&a);
    assert!(text.contains("KASETTO_TOKEN_127_0_0_1"), "{text}");
    assert!(text.contains("requires authentication"), "{text}");
}

#[test]
fn wrong_token_fails_once_with_a_bounded_number_of_requests() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN),
    );
    config(&env, &h.url("pack.git"));
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_TOKEN_127_0_0_1", "wrong-token-123456")
        .assert()
        .code(1);
    let text = out(&a);
    assert!(text.contains("rejected the credentials"), "{text}");
    assert!(
        text.contains("token from KASETTO_TOKEN_127_0_0_1"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-token-123456"),
        "the token was printed: {text}"
    );
    assert!(
        h.requests() <= 4,
        "{} requests for one rejected token",
        h.requests()
    );
    assert!(
        h.auth_failures() <= 2,
        "{} auth failures",
        h.auth_failures()
    );
}

#[test]
fn family_token_is_never_sent_to_another_host() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN),
    );
    config(&env, &h.url("pack.git"));
    // GitHub's token must not be offered to 127.0.0.1 "because it might be GitHub".
    env.kst()
        .arg("sync")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GH_TOKEN", TOKEN)
        .env("GITLAB_TOKEN", TOKEN)
        .assert()
        .code(1);
    assert!(
        h.seen_authorizations().is_empty(),
        "a family token was sent: {:?}",
        h.seen_authorizations()
    );
}

#[test]
fn redirect_to_another_host_never_carries_the_token() {
    let env = TestEnv::new();
    pack(&env);
    // The target requires a token it is never given: only 127.0.0.1 has one.
    let target = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN),
    );
    let target_base = target.base_url().replace("127.0.0.1", "localhost");
    let front = HttpGitServer::start(env.remotes(), HttpOptions::redirect(&target_base));
    config(&env, &front.url("pack.git"));
    env.kst()
        .arg("sync")
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .assert()
        .code(1);
    assert!(
        front.requests() >= 1,
        "the redirecting server was not contacted"
    );
    assert!(target.requests() >= 1, "the redirect was not followed");
    let expected = basic_auth_header("x-access-token", TOKEN);
    assert!(
        !target.seen_authorizations().iter().any(|a| a == &expected),
        "the token followed the redirect to another host"
    );
}

#[test]
fn git_credential_helper_is_used_without_token_variables_in_its_environment() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(env.remotes(), HttpOptions::basic_auth("helper-user", TOKEN));
    config(&env, &h.url("pack.git"));
    let seen = env.path("helper-env.txt");
    let script = env.path("helper.sh");
    write_executable(
        &script,
        format!(
            "#!/bin/sh\nenv > {}\ncat >/dev/null\necho username=helper-user\necho password={TOKEN}\n",
            seen.display()
        ),
    );
    write_file(
        env.home_path(".gitconfig"),
        format!("[credential]\n\thelper = {}\n", script.display()),
    );
    env.kst()
        .arg("sync")
        .env("GITHUB_TOKEN", SENTINEL)
        .env("KASETTO_TOKEN_EXAMPLE_COM", SENTINEL)
        .assert()
        .success();
    let helper_env = std::fs::read_to_string(&seen).expect("the helper ran");
    assert!(
        !helper_env.contains(SENTINEL),
        "a token variable reached the helper:\n{helper_env}"
    );
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
}

/// Every variable that may hold a token, spelled out here rather than taken from the product's
/// list, so a variable the product forgot to scrub is still tested.
const TOKEN_VARIABLES: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
    "BITBUCKET_TOKEN",
    "BITBUCKET_APP_PASSWORD",
    "GITEA_TOKEN",
    "CODEBERG_TOKEN",
    "FORGEJO_TOKEN",
    "KASETTO_TOKEN_127_0_0_1",
    "KASETTO_TOKEN_LOCALHOST",
];

/// A distinct sentinel per variable (so a leak says which variable leaked, and a token that is
/// scrubbed only because another variable holds the same value is not missed). `/`, `+` and `=`
/// make its URL-encoded spelling differ from the raw one.
fn sentinel_of(var: &str) -> String {
    format!("sNt/{var}+q=9")
}

const BB_EMAIL: &str = "me@example.invalid";
const BB_USER: &str = "bb-user";

fn pct(s: &str, lower: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every spelling of every sentinel that must never appear: raw, URL-encoded, base64 of the
/// token alone and of `user:token` for every user name a token is sent with (Basic auth).
fn forbidden_forms() -> Vec<(String, String)> {
    let users = [
        "x-access-token",
        "oauth2",
        "gitlab-ci-token",
        BB_EMAIL,
        BB_USER,
    ];
    let mut forms = Vec::new();
    for var in TOKEN_VARIABLES {
        let t = sentinel_of(var);
        forms.push((format!("{var} raw"), t.clone()));
        forms.push((format!("{var} url-encoded"), pct(&t, false)));
        forms.push((format!("{var} url-encoded (lower)"), pct(&t, true)));
        forms.push((format!("{var} base64"), base64_encode(t.as_bytes())));
        for u in users {
            forms.push((
                format!("{var} base64 of {u}:token"),
                base64_encode(format!("{u}:{t}").as_bytes()),
            ));
        }
    }
    forms
}

#[test]
fn sentinel_token_leaves_no_trace_anywhere() {
    let env = TestEnv::new();
    pack(&env);
    // GH_HOST names 127.0.0.1, so the GitHub Enterprise token is the one sent there.
    let sent = sentinel_of("GH_ENTERPRISE_TOKEN");
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", &sent),
    );
    // A remote config on another server of the same host, asked for after a 401 like the git
    // fetches.
    let remote_cfg = format!(
        "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
        h.url("pack.git")
    );
    let cfg_server = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", &sent).with_file(
            "/cfg/kasetto.yaml",
            "text/yaml",
            remote_cfg.as_bytes(),
        ),
    );
    let cfg_url = format!("{}/cfg/kasetto.yaml", cfg_server.base_url());
    config(&env, &h.url("pack.git"));
    let forms = forbidden_forms();
    let check = |what: &str, text: &str| {
        for (name, form) in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{what} shows the {name} form of a token:\n{text}"
            );
        }
    };
    let run = |args: &[&str], ok: bool| {
        let mut cmd = env.kst();
        cmd.args(args)
            .env("BITBUCKET_EMAIL", BB_EMAIL)
            .env("BITBUCKET_USERNAME", BB_USER)
            .env("GH_HOST", "127.0.0.1")
            .env("GITLAB_HOST", "localhost")
            .env("CI_SERVER_HOST", "localhost")
            .env("GITEA_HOST", "localhost");
        for v in TOKEN_VARIABLES {
            cmd.env(v, sentinel_of(v));
        }
        let a = cmd.assert();
        let a = if ok { a.success() } else { a };
        check(&format!("kst {args:?}"), &out(&a));
    };
    run(&["sync", "-vvv"], true);
    run(&["sync", "--json", "-vvv"], true);
    run(&["lock", "--update", "-vvv"], true);
    run(&["verify", "--remote", "--json", "-vvv"], false);
    run(&["fetch", "-vvv"], true);
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();
    run(&["sync", "--frozen", "-vvv"], true);
    // A remote config (token after a 401), and its JSON.
    run(&["sync", "--config", &cfg_url, "-vvv"], true);
    run(&["sync", "--config", &cfg_url, "--json", "-vvv"], true);
    // A server that echoes tokens back (raw and URL-encoded) in the address it redirects to:
    // every message naming that address goes through the scrubber.
    let echo = HttpGitServer::start(
        env.remotes(),
        HttpOptions::redirect(&format!(
            "{}/echo/{}/{}",
            h.base_url(),
            sentinel_of("GITHUB_TOKEN"),
            pct(&sentinel_of("GITLAB_TOKEN"), false)
        )),
    );
    run(
        &[
            "sync",
            "--config",
            &format!("{}/k.yaml", echo.base_url()),
            "-vvv",
        ],
        false,
    );
    run(
        &[
            "sync",
            "--json",
            "--config",
            &format!("{}/k.yaml", echo.base_url()),
        ],
        false,
    );
    // An auth failure's error text is scrubbed too.
    let wrong = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", "something-else"),
    );
    config(&env, &wrong.url("pack.git"));
    run(&["sync", "-vvv"], false);
    // Nothing kst wrote holds any form: lock, cache (and its repositories' git config),
    // settings, data.
    for dir in [
        env.project(),
        env.home(),
        env.cache(),
        env.xdg_data(),
        env.xdg_cache(),
        env.xdg_config(),
    ] {
        for (name, form) in &forms {
            let hits = find_bytes_in_tree(&dir, form.as_bytes());
            assert!(
                hits.is_empty(),
                "the {name} form of a token is in {}: {hits:?}",
                dir.display()
            );
        }
    }
    // The token really was used (the test exercised the credential paths).
    for server in [&h, &cfg_server] {
        assert!(
            server
                .seen_authorizations()
                .iter()
                .any(|a| a == &basic_auth_header("x-access-token", &sent))
        );
    }
}

#[test]
fn password_in_a_url_is_refused_without_echoing_it() {
    let env = TestEnv::new();
    config(
        &env,
        &format!("https://user:{SENTINEL}@example.invalid/org/repo"),
    );
    let a = env.kst().arg("sync").assert().code(2);
    let text = out(&a);
    assert!(
        text.contains("password") && text.contains("token"),
        "{text}"
    );
    assert!(!text.contains(SENTINEL), "{text}");
}

#[test]
fn family_host_variables_lend_a_family_token_to_that_host_only() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(env.remotes(), HttpOptions::basic_auth("oauth2", TOKEN));
    config(&env, &h.url("pack.git"));
    // GITLAB_HOST names another host: GITLAB_TOKEN is not GitLab's for 127.0.0.1, and neither
    // is CI_JOB_TOKEN of a CI server elsewhere.
    env.kst()
        .arg("sync")
        .env("GITLAB_TOKEN", TOKEN)
        .env("GITLAB_HOST", "localhost")
        .env("CI_JOB_TOKEN", TOKEN)
        .env("CI_SERVER_HOST", "gitlab.example.invalid")
        .env("GITEA_TOKEN", TOKEN)
        .env("GITEA_HOST", "localhost")
        .assert()
        .code(1);
    assert!(
        h.seen_authorizations().is_empty(),
        "a family token went to a host its host variable does not name: {:?}",
        h.seen_authorizations()
    );
    // Named by GITLAB_HOST, 127.0.0.1 gets GITLAB_TOKEN (as oauth2), after a 401.
    env.kst()
        .arg("sync")
        .env("GITLAB_TOKEN", TOKEN)
        .env("GITLAB_HOST", "127.0.0.1")
        .assert()
        .success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    let seen = h.seen_authorizations();
    assert!(
        !seen.is_empty()
            && seen
                .iter()
                .all(|a| a == &basic_auth_header("oauth2", TOKEN)),
        "{seen:?}"
    );
}

#[test]
fn git_token_is_offered_only_after_a_401_and_chosen_afresh_after_a_redirect() {
    let env = TestEnv::new();
    pack(&env);
    const TOKEN_B: &str = "kst-target-token-c41d";
    let target = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN_B),
    );
    let target_base = target.base_url().replace("127.0.0.1", "localhost");
    // The front asks for its own token (401) before it redirects.
    let front = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", TOKEN).then_redirect(&target_base),
    );
    config(&env, &front.url("pack.git"));
    env.kst()
        .arg("sync")
        .env("KASETTO_TOKEN_127_0_0_1", TOKEN)
        .env("KASETTO_TOKEN_LOCALHOST", TOKEN_B)
        .assert()
        .success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    let front_log = front.request_log();
    assert_eq!(
        front_log
            .first()
            .map(|r| (r.authorization.is_none(), r.status)),
        Some((true, 401)),
        "{front_log:?}"
    );
    let log = target.request_log();
    assert_eq!(
        log.first().map(|r| (r.authorization.is_none(), r.status)),
        Some((true, 401)),
        "{log:?}"
    );
    let first = basic_auth_header("x-access-token", TOKEN);
    assert!(
        log.iter()
            .all(|r| r.authorization.as_deref() != Some(first.as_str())),
        "the first host's token followed the redirect: {log:?}"
    );
}

/// A URL with a user name (often a pasted token) is refused from every entry point, and the
/// whole userinfo is shown as `***` on stderr and in --json.
#[test]
fn userinfo_is_never_echoed_from_any_entry_point() {
    let env = TestEnv::new();
    let secret = "ghp_userinfoSENTINEL9a8b";
    let urls = [
        format!("https://{secret}@github.com/o/r"),
        format!("https://x-access-token:{secret}@github.com/o/r"),
        // Unparseable: still redacted.
        format!("https://{secret}@git hub.com/o/r"),
        format!("HTTPS://{secret}@127.0.0.1:9/k.yaml"),
    ];
    let check = |what: &str, a: assert_cmd::assert::Assert| {
        let o = a.get_output();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        let a = a.code(2);
        let _ = a;
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains(secret),
                "{what} echoed the userinfo:\n{text}"
            );
        }
        let shown = format!("{stdout}{stderr}");
        assert!(shown.contains("***@"), "{what}: {shown}");
    };
    for url in &urls {
        for json in [false, true] {
            let flags: &[&str] = if json { &["sync", "--json"] } else { &["sync"] };
            // 1. In the config file: as a source, and as `extends`.
            write_file(
                env.project_path("kasetto.yaml"),
                format!(
                    "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
                ),
            );
            check(
                &format!("source {url} json={json}"),
                env.kst().args(flags).assert(),
            );
            write_file(
                env.project_path("kasetto.yaml"),
                format!(
                    "agent: claude-code\nscope: project\nmcps:\n  - source: {url}\n    mcps: [github]\n"
                ),
            );
            check(
                &format!("mcps source {url} json={json}"),
                env.kst().args(flags).assert(),
            );
            write_file(
                env.project_path("kasetto.yaml"),
                format!("agent: claude-code\nscope: project\nextends: {url}\n"),
            );
            check(
                &format!("extends {url} json={json}"),
                env.kst().args(flags).assert(),
            );
            // 2. --config.
            check(
                &format!("--config {url} json={json}"),
                env.kst().args(flags).args(["--config", url]).assert(),
            );
            // 3. KASETTO_CONFIG.
            check(
                &format!("KASETTO_CONFIG={url} json={json}"),
                env.kst().args(flags).env("KASETTO_CONFIG", url).assert(),
            );
        }
    }
}
