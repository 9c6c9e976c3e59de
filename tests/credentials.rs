//! Credentials (SPEC 11): per-host tokens from the environment, the git credential helper,
//! bounded attempts, redirects, and no token ever leaking into output or files.

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

#[test]
fn sentinel_token_leaves_no_trace_anywhere() {
    let env = TestEnv::new();
    pack(&env);
    let h = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", SENTINEL),
    );
    config(&env, &h.url("pack.git"));
    // Spelled out here rather than taken from the product's list, so a variable the product
    // forgot to scrub is still tested.
    let vars = [
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
    let run = |args: &[&str], ok: bool| {
        let mut cmd = env.kst();
        cmd.args(args)
            .env("BITBUCKET_EMAIL", "me@example.invalid")
            .env("BITBUCKET_USERNAME", "me")
            .env("GH_HOST", "127.0.0.1");
        for v in vars {
            cmd.env(v, SENTINEL);
        }
        let a = cmd.assert();
        let a = if ok { a.success() } else { a };
        let text = out(&a);
        assert!(
            !text.contains(SENTINEL),
            "kst {args:?} printed the token:\n{text}"
        );
    };
    run(&["sync", "-vvv"], true);
    run(&["sync", "--json", "-vvv"], true);
    run(&["lock", "--update", "-vvv"], true);
    run(&["verify", "--remote", "--json", "-vvv"], false);
    run(&["fetch", "-vvv"], true);
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();
    run(&["sync", "--frozen", "-vvv"], true);
    // An auth failure's error text is scrubbed too.
    let wrong = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("x-access-token", "something-else"),
    );
    config(&env, &wrong.url("pack.git"));
    run(&["sync", "-vvv"], false);
    for dir in [
        env.project(),
        env.home(),
        env.cache(),
        env.xdg_data(),
        env.xdg_cache(),
        env.xdg_config(),
    ] {
        let hits = find_bytes_in_tree(&dir, SENTINEL.as_bytes());
        assert!(
            hits.is_empty(),
            "token found in {}: {hits:?}",
            dir.display()
        );
    }
    assert!(
        h.seen_authorizations()
            .iter()
            .any(|a| a == &basic_auth_header("x-access-token", SENTINEL))
    );
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
