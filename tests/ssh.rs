//! SSH remotes (SPEC 11) against a real `sshd` on 127.0.0.1: `ssh://` and scp-like URLs, the
//! key from the ssh-agent or from `~/.ssh/id_ed25519`, host keys checked against
//! `~/.ssh/known_hosts` (unknown or changed → a clear failure before any credential is sent),
//! and a missing or rejected key → one clear error after a bounded number of attempts.
//!
//! Without OpenSSH installed these tests print a note and pass, except under CI (see
//! `support::sshd::sshd_or_skip`).

use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// No SSH test may hang: a prompt or a credential loop would hit this.
const TIMEOUT: Duration = Duration::from_secs(90);

struct Setup {
    env: TestEnv,
    sshd: Sshd,
    repo: FixtureRepo,
}

fn setup(test: &str) -> Option<Setup> {
    if !sshd_or_skip(test) {
        return None;
    }
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    let sshd = Sshd::start(env.path("sshd"));
    Some(Setup { env, sshd, repo })
}

fn config(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
        ),
    );
}

/// `~/.ssh/<name>` = the server's authorized client key (0600, as ssh-keygen makes it).
fn install_key(env: &TestEnv, key: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let dest = env.home_path(".ssh").join(name);
    write_file(&dest, std::fs::read(key).expect("read client key"));
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn known_hosts(env: &TestEnv, text: &str) {
    write_file(env.home_path(".ssh/known_hosts"), text);
}

fn out(a: &assert_cmd::assert::Assert) -> String {
    let o = a.get_output();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn installed(env: &TestEnv) -> bool {
    env.project_path(".claude/skills/pdf/SKILL.md").is_file()
}

fn nothing_installed(env: &TestEnv) {
    assert!(
        !env.project_path(".claude/skills/pdf").exists(),
        "a skill was installed from a remote that failed"
    );
}

fn lock(env: &TestEnv) -> String {
    std::fs::read_to_string(env.project_path("kasetto.lock")).expect("lock written")
}

/// The message for a host key that is not (or no longer) the one in known_hosts.
fn assert_host_key_message(text: &str, sshd: &Sshd) {
    assert!(text.contains("127.0.0.1"), "names the host: {text}");
    assert!(text.contains("known_hosts"), "names known_hosts: {text}");
    assert!(
        text.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port())),
        "says how to add the key: {text}"
    );
    assert!(text.contains("host key"), "{text}");
}

#[test]
fn ssh_url_with_the_default_key_file() {
    let Some(Setup { env, sshd, repo }) = setup("ssh_url_with_the_default_key_file") else {
        return;
    };
    install_key(&env, sshd.client_key(), "id_ed25519");
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    let url = sshd.url(repo.path());
    config(&env, &url);
    let a = env.kst().arg("sync").timeout(TIMEOUT).assert();
    let text = out(&a);
    a.success();
    assert!(installed(&env), "{text}\n--- sshd log\n{}", sshd.log());
    assert!(sshd.accepted_logins() >= 1, "{}", sshd.log());
    // The lock names the remote canonically: no user name.
    let lock = lock(&env);
    let canonical = format!(
        "ssh://127.0.0.1:{}{}",
        sshd.port(),
        repo.path().display().to_string().trim_end_matches(".git")
    );
    assert!(
        lock.contains(&canonical),
        "{canonical} not in lock:\n{lock}"
    );
    assert!(!lock.contains(&format!("{}@", sshd.user())), "{lock}");

    // A second sync fetches again (moving default branch) over the same key: still fine.
    env.kst().arg("sync").timeout(TIMEOUT).assert().success();
}

#[test]
fn ssh_url_with_the_key_only_in_the_agent() {
    let Some(Setup { env, sshd, repo }) = setup("ssh_url_with_the_key_only_in_the_agent") else {
        return;
    };
    let agent = start_agent(env.path("agent"), sshd.client_key());
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    for k in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        assert!(!env.home_path(".ssh").join(k).exists());
    }
    config(&env, &sshd.url(repo.path()));
    let a = env
        .kst()
        .arg("sync")
        .env("SSH_AUTH_SOCK", agent.sock())
        .timeout(TIMEOUT)
        .assert();
    let text = out(&a);
    a.success();
    assert!(installed(&env), "{text}\n--- sshd log\n{}", sshd.log());
    assert!(sshd.accepted_logins() >= 1, "{}", sshd.log());
}

#[test]
fn a_wrong_key_in_the_agent_falls_back_to_the_key_file() {
    let Some(Setup { env, sshd, repo }) =
        setup("a_wrong_key_in_the_agent_falls_back_to_the_key_file")
    else {
        return;
    };
    // The agent holds a key the server does not know; ~/.ssh/id_ed25519 is the right one.
    let other = env.path("other_ed25519");
    sshd::keygen(&other, "not-authorized");
    let agent = start_agent(env.path("agent"), &other);
    install_key(&env, sshd.client_key(), "id_ed25519");
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    config(&env, &sshd.url(repo.path()));
    let a = env
        .kst()
        .arg("sync")
        .env("SSH_AUTH_SOCK", agent.sock())
        .timeout(TIMEOUT)
        .assert();
    let text = out(&a);
    a.success();
    assert!(installed(&env), "{text}\n--- sshd log\n{}", sshd.log());
}

#[test]
fn unknown_host_key_fails_clearly_before_authenticating() {
    let Some(Setup { env, sshd, repo }) =
        setup("unknown_host_key_fails_clearly_before_authenticating")
    else {
        return;
    };
    install_key(&env, sshd.client_key(), "id_ed25519");
    config(&env, &sshd.url(repo.path()));

    // No known_hosts file at all, then an empty one, then one that lists only other hosts.
    for hosts in [
        None,
        Some(String::new()),
        Some(format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port() as u32 + 1,
            sshd.host_public_key()
        )),
    ] {
        match &hosts {
            None => {
                let _ = std::fs::remove_file(env.home_path(".ssh/known_hosts"));
            }
            Some(text) => known_hosts(&env, text),
        }
        let a = env.kst().arg("sync").timeout(TIMEOUT).assert().code(1);
        let text = out(&a);
        assert_host_key_message(&text, &sshd);
        nothing_installed(&env);
        assert_eq!(
            sshd.accepted_logins(),
            0,
            "authenticated to an unverified host ({hosts:?}):\n{}",
            sshd.log()
        );
    }
    assert!(!env.project_path("kasetto.lock").exists());
}

#[test]
fn changed_host_key_fails_clearly_before_authenticating() {
    let Some(Setup { env, sshd, repo }) =
        setup("changed_host_key_fails_clearly_before_authenticating")
    else {
        return;
    };
    install_key(&env, sshd.client_key(), "id_ed25519");
    // known_hosts has a different ed25519 key for exactly this host and port.
    let impostor = sshd::keygen(&env.path("impostor_host_key"), "impostor");
    let impostor = impostor
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert_ne!(impostor, sshd.host_public_key());
    known_hosts(&env, &format!("{} {impostor}\n", sshd.known_hosts_host()));
    config(&env, &sshd.url(repo.path()));

    let a = env.kst().arg("sync").timeout(TIMEOUT).assert().code(1);
    let text = out(&a);
    assert_host_key_message(&text, &sshd);
    nothing_installed(&env);
    assert_eq!(sshd.accepted_logins(), 0, "{}", sshd.log());
    assert!(!env.project_path("kasetto.lock").exists());

    // Sanity: with the right key recorded, the same setup syncs.
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    env.kst().arg("sync").timeout(TIMEOUT).assert().success();
    assert!(installed(&env));
}

#[test]
fn no_key_at_all_fails_once_with_what_to_do() {
    let Some(Setup { env, sshd, repo }) = setup("no_key_at_all_fails_once_with_what_to_do") else {
        return;
    };
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    config(&env, &sshd.url(repo.path()));
    let a = env.kst().arg("sync").timeout(TIMEOUT).assert().code(1);
    let text = out(&a);
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("ssh-agent"), "{text}");
    assert!(text.contains("~/.ssh/id_ed25519"), "{text}");
    nothing_installed(&env);
    assert_eq!(sshd.accepted_logins(), 0, "{}", sshd.log());
    // Bounded: one connection per fetch attempt, not a loop.
    assert!(
        sshd.connections() <= 2,
        "{} connections:\n{}",
        sshd.connections(),
        sshd.log()
    );
}

#[test]
fn rejected_keys_fail_once_naming_what_was_tried() {
    let Some(Setup { env, sshd, repo }) = setup("rejected_keys_fail_once_naming_what_was_tried")
    else {
        return;
    };
    // An agent and a key file, both holding keys the server does not accept.
    let wrong_agent = env.path("wrong_agent_key");
    sshd::keygen(&wrong_agent, "not-authorized-1");
    let agent = start_agent(env.path("agent"), &wrong_agent);
    let wrong_file = env.path("wrong_file_key");
    sshd::keygen(&wrong_file, "not-authorized-2");
    install_key(&env, &wrong_file, "id_ed25519");
    known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
    config(&env, &sshd.url(repo.path()));

    let a = env
        .kst()
        .arg("sync")
        .env("SSH_AUTH_SOCK", agent.sock())
        .timeout(TIMEOUT)
        .assert()
        .code(1);
    let text = out(&a);
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("rejected"), "{text}");
    assert!(text.contains("ssh-agent"), "{text}");
    assert!(text.contains("id_ed25519"), "{text}");
    nothing_installed(&env);
    assert_eq!(sshd.accepted_logins(), 0, "{}", sshd.log());
    assert!(
        sshd.connections() <= 2,
        "{} connections:\n{}",
        sshd.connections(),
        sshd.log()
    );
    // Never more key offers than methods (agent identity + one key file), per connection.
    let failed = sshd.log().matches("Failed publickey").count();
    assert!(
        failed <= 2 * sshd.connections(),
        "{failed} failed:\n{}",
        sshd.log()
    );
}

/// scp-like `user@host:/path` has no port, so the server must be on 22. If port 22 is free
/// (root, nothing listening) a second sshd is started there and the sync must work end to end.
/// Otherwise this still checks the scp-like path: kst turns it into an ssh connection to
/// 127.0.0.1:22 and fails with an error that names the host, installing nothing.
#[test]
fn scp_like_url() {
    if !sshd_or_skip("scp_like_url") {
        return;
    }
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));

    let mut on_22 = None;
    let mut why = String::new();
    for _ in 0..20 {
        if !port_busy(22) {
            match Sshd::start_on(&env.path("sshd22"), 22) {
                Ok(s) => {
                    on_22 = Some(s);
                    break;
                }
                Err(e) => why = e,
            }
        } else {
            why = "port 22 is in use or may not be bound".into();
        }
        // Maybe another run of this test holds it for a moment.
        std::thread::sleep(Duration::from_millis(250));
    }

    match on_22 {
        Some(sshd) => {
            install_key(&env, sshd.client_key(), "id_ed25519");
            known_hosts(&env, &format!("{}\n", sshd.known_hosts_line()));
            let url = sshd.scp_url(repo.path());
            assert!(!url.contains("://"), "{url}");
            config(&env, &url);
            let a = env.kst().arg("sync").timeout(TIMEOUT).assert();
            let text = out(&a);
            a.success();
            assert!(installed(&env), "{text}\n--- sshd log\n{}", sshd.log());
            assert!(sshd.accepted_logins() >= 1, "{}", sshd.log());
            let lock = lock(&env);
            let canonical = format!(
                "ssh://127.0.0.1{}",
                repo.path().display().to_string().trim_end_matches(".git")
            );
            assert!(
                lock.contains(&canonical),
                "{canonical} not in lock:\n{lock}"
            );

            // And the host key is checked for scp-like URLs too (plain `host`, port 22).
            known_hosts(&env, "");
            std::fs::remove_dir_all(env.cache()).unwrap();
            std::fs::remove_dir_all(env.project_path(".claude")).unwrap();
            std::fs::remove_file(env.project_path("kasetto.lock")).unwrap();
            let before = sshd.accepted_logins();
            let a = env.kst().arg("sync").timeout(TIMEOUT).assert().code(1);
            let text = out(&a);
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(text.contains("known_hosts"), "{text}");
            assert!(text.contains("ssh-keyscan 127.0.0.1"), "{text}");
            assert_eq!(sshd.accepted_logins(), before, "{}", sshd.log());
            nothing_installed(&env);
        }
        None => {
            eprintln!(
                "note: scp_like_url: cannot run sshd on 127.0.0.1:22 ({}); checking only that \
                 the scp-like URL becomes an ssh connection to 127.0.0.1:22",
                why.lines().next().unwrap_or_default()
            );
            let user = sshd::current_user();
            config(&env, &format!("{user}@127.0.0.1:{}", repo.path().display()));
            let a = env.kst().arg("sync").timeout(TIMEOUT).assert().code(1);
            let text = out(&a);
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(
                text.contains("ssh://127.0.0.1/"),
                "canonical ssh URL: {text}"
            );
            nothing_installed(&env);
        }
    }
}
