//! Credentials for git remotes and remote configs (SPEC 11).
//!
//! There is no login command and no credentials file: a token comes from the environment,
//! chosen by the host of the URL being contacted, and is offered only to that host. After the
//! environment: the user's git credential helper; for SSH, the ssh-agent, then default keys.
//! Each method is tried once, so a rejected credential ends in one clear error instead of a
//! loop of requests. Nothing here derives `Debug` on a secret, and every secret value known to
//! this process can be scrubbed out of text before it is shown ([`scrub`]).

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A secret string. Its `Debug` never shows the value; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A user name and token for HTTPS basic auth, and where it came from (a variable *name*).
#[derive(Clone, Debug)]
pub struct HostToken {
    pub username: String,
    pub token: Secret,
    pub from: String,
}

/// Every variable that may hold a secret kst reads (for scrubbing, and to keep them away from
/// child processes).
pub const TOKEN_VARS: &[&str] = &[
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
];

/// Prefixes of variable families that hold secrets: per-host tokens, MCP secrets.
pub const TOKEN_PREFIXES: &[&str] = &["KASETTO_TOKEN_", "KST_"];

/// How the token table reads the environment (a parameter, so the table is unit-testable
/// without touching the process environment).
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn var(env: Env, name: &str) -> Option<Secret> {
    env(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(Secret)
}

/// `KASETTO_TOKEN_<HOST>`: host upper-cased, every non-alphanumeric character → `_`.
pub fn host_var(host: &str) -> String {
    let h: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("KASETTO_TOKEN_{h}")
}

/// `KASETTO_USERNAME_<HOST>`: the user name sent with a `KASETTO_TOKEN_<HOST>` token.
pub fn host_user_var(host: &str) -> String {
    host_var(host).replacen("KASETTO_TOKEN_", "KASETTO_USERNAME_", 1)
}

/// One row of the SPEC 11 table: a token variable sent with a fixed user name, or a pair of
/// variables (user name, token).
enum Candidate {
    Token {
        var: &'static str,
        user: &'static str,
    },
    Pair {
        user_var: &'static str,
        token_var: &'static str,
    },
}

/// The family rows for `host`, in the order they are tried. One table serves both the lookup
/// and the error messages, so the two cannot disagree. A family token is only ever listed for
/// its own hosts; `KASETTO_TOKEN_<HOST>` (tried last) is the only way to any other host.
fn family(host: &str, env: Env) -> Vec<Candidate> {
    use Candidate::*;
    let gh_host = env("GH_HOST")
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty());
    let tokens = |vars: &[&'static str], user: &'static str| -> Vec<Candidate> {
        vars.iter().map(|v| Token { var: v, user }).collect()
    };
    if host == "github.com" {
        tokens(&["GITHUB_TOKEN", "GH_TOKEN"], "x-access-token")
    } else if gh_host.as_deref() == Some(host) {
        tokens(
            &["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"],
            "x-access-token",
        )
    } else if host == "gitlab.com" || host.starts_with("gitlab.") {
        vec![
            Token {
                var: "GITLAB_TOKEN",
                user: "oauth2",
            },
            Token {
                var: "CI_JOB_TOKEN",
                user: "gitlab-ci-token",
            },
        ]
    } else if host == "bitbucket.org" {
        vec![
            Pair {
                user_var: "BITBUCKET_EMAIL",
                token_var: "BITBUCKET_TOKEN",
            },
            Pair {
                user_var: "BITBUCKET_USERNAME",
                token_var: "BITBUCKET_APP_PASSWORD",
            },
        ]
    } else if is_gitea_family(host) {
        tokens(
            &["GITEA_TOKEN", "CODEBERG_TOKEN", "FORGEJO_TOKEN"],
            "oauth2",
        )
    } else {
        Vec::new()
    }
}

/// The variables that would supply a token for `host`, in order — for error messages.
pub fn candidate_vars(host: &str) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    let mut out: Vec<String> = family(&host, &process_env)
        .iter()
        .map(|c| match c {
            Candidate::Token { var, .. } => var.to_string(),
            Candidate::Pair {
                user_var,
                token_var,
            } => format!("{user_var}+{token_var}"),
        })
        .collect();
    out.push(host_var(&host));
    out
}

fn is_gitea_family(host: &str) -> bool {
    matches!(host, "codeberg.org" | "gitea.com" | "forgejo.org")
        || host.starts_with("gitea.")
        || host.starts_with("forgejo.")
}

/// The token for `host` from the environment (SPEC 11 table), or None.
pub fn token_for_host(host: &str) -> Option<HostToken> {
    token_for_host_in(host, &process_env)
}

fn token_for_host_in(host: &str, env: Env) -> Option<HostToken> {
    let host = host.to_ascii_lowercase();
    let from_family = family(&host, env).into_iter().find_map(|c| match c {
        Candidate::Token { var: v, user } => var(env, v).map(|t| HostToken {
            username: user.to_string(),
            token: t,
            from: v.to_string(),
        }),
        Candidate::Pair {
            user_var,
            token_var,
        } => Some(HostToken {
            username: env(user_var)?.trim().to_string(),
            token: var(env, token_var)?,
            from: format!("{user_var}+{token_var}"),
        }),
    });
    from_family.or_else(|| {
        let name = host_var(&host);
        let user = env(&host_user_var(&host))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "x-access-token".into());
        var(env, &name).map(|t| HostToken {
            username: user,
            token: t,
            from: name,
        })
    })
}

/// Every secret value visible to this process, longest first (so a token that contains
/// another is scrubbed whole).
fn known_secrets() -> Vec<String> {
    let mut set: BTreeSet<String> = BTreeSet::new();
    for (k, v) in std::env::vars() {
        let secretish =
            TOKEN_VARS.contains(&k.as_str()) || TOKEN_PREFIXES.iter().any(|p| k.starts_with(p));
        let v = v.trim().to_string();
        // Very short values would scrub ordinary words; they are not plausible tokens anyway.
        if secretish && v.len() >= 6 {
            set.insert(v);
        }
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

/// Secret values kst learned while running (MCP secrets from credentials files and secret
/// managers), scrubbed like the environment's.
static REGISTERED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Add a secret value to those [`scrub`] removes (values shorter than 6 bytes are not).
pub fn register_secret(value: &str) {
    let v = value.trim();
    if v.len() < 6 {
        return;
    }
    let mut list = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|s| s == v) {
        list.push(v.to_string());
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Replace every known secret value in `text` with `***`. Applied to everything kst prints
/// and logs (the environment does not change while kst runs, so the list is read once).
pub fn scrub(text: &str) -> String {
    static SECRETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let mut out = text.to_string();
    let registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    for s in registered
        .iter()
        .chain(SECRETS.get_or_init(known_secrets).iter())
    {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Remove every secret-bearing variable from a child's environment (SPEC 11: no child
/// process gets token variables).
pub fn sanitise_child(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let upper = k.to_ascii_uppercase();
        if TOKEN_VARS.contains(&k.as_str())
            || TOKEN_PREFIXES.iter().any(|p| k.starts_with(p))
            || ["TOKEN", "PASSWORD", "SECRET", "CREDENTIAL"]
                .iter()
                .any(|w| upper.contains(w))
        {
            cmd.env_remove(&k);
        }
    }
}

/// A secret manager's CLI (`op`, `vault`, …; SPEC 10c) keeps the user's environment — it needs
/// its own session variables (`VAULT_TOKEN`, `AWS_SECRET_ACCESS_KEY`, …) — minus the git-host
/// token variables of SPEC 11 ([`TOKEN_VARS`], `KASETTO_TOKEN_<HOST>`) and every `KST_…` /
/// `kst_…` MCP secret (including the KeePass password, which goes on stdin).
pub fn sanitise_secret_manager(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let upper = k.to_ascii_uppercase();
        if TOKEN_VARS.contains(&k.as_str()) || TOKEN_PREFIXES.iter().any(|p| upper.starts_with(p)) {
            cmd.env_remove(&k);
        }
    }
}

/// Ask the user's git credential helper(s) for `url` (git's `credential.helper` protocol).
/// Returns (username, password). The helper runs without any token variable in its
/// environment and without a terminal prompt.
pub fn from_credential_helper(url: &str, username: Option<&str>) -> Option<(String, Secret)> {
    let parsed = url::Url::parse(url).ok()?;
    let config = git2::Config::open_default().ok()?;
    let mut helpers: Vec<String> = Vec::new();
    // `credential.helper` and `credential.<url-prefix>.helper`, in config order.
    if let Ok(mut entries) = config.entries(Some(r"credential\..*helper")) {
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else { continue };
            let (Ok(name), Ok(value)) = (entry.name(), entry.value()) else {
                continue;
            };
            let scoped = name
                .strip_prefix("credential.")
                .and_then(|r| r.strip_suffix(".helper"));
            let applies = match scoped {
                None => name == "credential.helper",
                Some(prefix) => url.starts_with(prefix),
            };
            if applies {
                if value.is_empty() {
                    helpers.clear(); // git: an empty value resets the list
                } else {
                    helpers.push(value.to_string());
                }
            }
        }
    }
    let host = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str()?),
        None => parsed.host_str()?.to_string(),
    };
    let mut request = format!(
        "protocol={}\nhost={host}\npath={}\n",
        parsed.scheme(),
        parsed.path().trim_start_matches('/')
    );
    if let Some(u) = username.filter(|u| !u.is_empty()) {
        request.push_str(&format!("username={u}\n"));
    }
    request.push('\n');
    for helper in helpers {
        let mut cmd = if let Some(shell) = helper.strip_prefix('!') {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{shell} get"));
            c
        } else if PathBuf::from(helper.split_whitespace().next()?).is_absolute() {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("{helper} get"));
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("git credential-{helper} get"));
            c
        };
        sanitise_child(&mut cmd);
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let Ok(mut child) = cmd.spawn() else { continue };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(request.as_bytes());
        }
        let Ok(out) = child.wait_with_output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut user = None;
        let mut pass = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("username=") {
                user = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("password=") {
                pass = Some(Secret(v.to_string()));
            }
        }
        if let (Some(u), Some(p)) = (user.or_else(|| username.map(str::to_owned)), pass) {
            return Some((u, p));
        }
    }
    None
}

/// Default SSH private keys, in OpenSSH's order.
pub fn default_ssh_keys() -> Vec<PathBuf> {
    let Ok(home) = crate::dirs::home() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|k| home.join(".ssh").join(k))
        .filter(|p| p.is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_variable_names() {
        assert_eq!(host_var("127.0.0.1"), "KASETTO_TOKEN_127_0_0_1");
        assert_eq!(
            host_var("git.example-corp.com"),
            "KASETTO_TOKEN_GIT_EXAMPLE_CORP_COM"
        );
    }

    /// (host, variables set) → (user, variable the token came from), or None.
    fn pick(host: &str, vars: &[(&str, &str)]) -> Option<(String, String)> {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        token_for_host_in(host, &env).map(|t| (t.username, t.from))
    }

    fn some(user: &str, from: &str) -> Option<(String, String)> {
        Some((user.to_string(), from.to_string()))
    }

    #[test]
    fn the_spec_token_table() {
        let all = [
            ("GITHUB_TOKEN", "a"),
            ("GH_TOKEN", "b"),
            ("GH_ENTERPRISE_TOKEN", "c"),
            ("GITHUB_ENTERPRISE_TOKEN", "d"),
            ("GITLAB_TOKEN", "e"),
            ("CI_JOB_TOKEN", "f"),
            ("BITBUCKET_EMAIL", "me@x"),
            ("BITBUCKET_TOKEN", "g"),
            ("BITBUCKET_USERNAME", "me"),
            ("BITBUCKET_APP_PASSWORD", "h"),
            ("GITEA_TOKEN", "i"),
            ("CODEBERG_TOKEN", "j"),
            ("FORGEJO_TOKEN", "k"),
            ("GH_HOST", "GHE.Corp.example"),
            ("KASETTO_TOKEN_GIT_EXAMPLE_COM", "l"),
        ];
        assert_eq!(
            pick("github.com", &all),
            some("x-access-token", "GITHUB_TOKEN")
        );
        assert_eq!(
            pick("github.com", &[("GH_TOKEN", "b")]),
            some("x-access-token", "GH_TOKEN")
        );
        assert_eq!(
            pick("ghe.corp.example", &all),
            some("x-access-token", "GH_ENTERPRISE_TOKEN")
        );
        assert_eq!(pick("gitlab.com", &all), some("oauth2", "GITLAB_TOKEN"));
        assert_eq!(
            pick("gitlab.corp.example", &[("CI_JOB_TOKEN", "f")]),
            some("gitlab-ci-token", "CI_JOB_TOKEN")
        );
        assert_eq!(
            pick("bitbucket.org", &all),
            some("me@x", "BITBUCKET_EMAIL+BITBUCKET_TOKEN")
        );
        assert_eq!(
            pick(
                "bitbucket.org",
                &[
                    ("BITBUCKET_USERNAME", "me"),
                    ("BITBUCKET_APP_PASSWORD", "h")
                ]
            ),
            some("me", "BITBUCKET_USERNAME+BITBUCKET_APP_PASSWORD")
        );
        assert_eq!(pick("codeberg.org", &all), some("oauth2", "GITEA_TOKEN"));
        assert_eq!(
            pick("forgejo.corp.example", &[("FORGEJO_TOKEN", "k")]),
            some("oauth2", "FORGEJO_TOKEN")
        );
        assert_eq!(
            pick("git.example.com", &all),
            some("x-access-token", "KASETTO_TOKEN_GIT_EXAMPLE_COM")
        );
        assert_eq!(
            pick(
                "git.example.com",
                &[
                    ("KASETTO_TOKEN_GIT_EXAMPLE_COM", "l"),
                    ("KASETTO_USERNAME_GIT_EXAMPLE_COM", "bot")
                ]
            ),
            some("bot", "KASETTO_TOKEN_GIT_EXAMPLE_COM")
        );
        // A family token never goes to a host outside its family, and nothing is guessed.
        assert_eq!(pick("git.other.example", &all), None);
        assert_eq!(pick("notgithub.com", &all), None);
        assert_eq!(pick("github.com.evil.example", &all), None);
        // Empty values do not count.
        assert_eq!(
            pick("github.com", &[("GITHUB_TOKEN", "  "), ("GH_TOKEN", "b")]),
            some("x-access-token", "GH_TOKEN")
        );
    }

    #[test]
    fn nothing_is_offered_over_plain_http_to_another_machine() {
        let mut auth = Auth::default();
        let r = auth.credential(
            "http://git.example.com/o/r",
            None,
            git2::CredentialType::USER_PASS_PLAINTEXT,
        );
        assert!(r.is_err());
        assert!(
            auth.tried.iter().any(|t| t.contains("plain http")),
            "{:?}",
            auth.tried
        );
    }

    #[test]
    fn every_token_variable_of_the_table_is_scrubbed_and_kept_from_children() {
        // TOKEN_VARS (scrubbing, child environments) and the table must not drift apart.
        let env = |k: &str| (k == "GH_HOST").then(|| "ghe.example".to_string());
        for host in [
            "github.com",
            "ghe.example",
            "gitlab.com",
            "bitbucket.org",
            "codeberg.org",
        ] {
            for c in family(host, &env) {
                let secret = match c {
                    Candidate::Token { var, .. } => var,
                    Candidate::Pair { token_var, .. } => token_var,
                };
                assert!(
                    TOKEN_VARS.contains(&secret),
                    "{secret} ({host}) is not in TOKEN_VARS"
                );
            }
        }
    }

    #[test]
    fn secret_debug_hides_the_value() {
        let t = HostToken {
            username: "u".into(),
            token: Secret("s3cr3t-value".into()),
            from: "X".into(),
        };
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}

/// The host of a URL libgit2 is contacting: a URL, or scp-like `user@host:path`.
fn host_of(url: &str) -> String {
    if let Ok(u) = url::Url::parse(url)
        && let Some(h) = u.host_str()
    {
        return h.to_ascii_lowercase();
    }
    let before = url.split(':').next().unwrap_or("");
    before.rsplit('@').next().unwrap_or("").to_ascii_lowercase()
}

/// The credential callback's state for one connection: which methods were tried (each at most
/// once) and for which host, so a rejection ends in one error that says what was tried.
#[derive(Default)]
pub struct Auth {
    host: Option<String>,
    tried: Vec<String>,
    env_done: bool,
    helper_done: bool,
    agent_done: bool,
    keys_done: usize,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("host", &self.host)
            .field("tried", &self.tried)
            .finish()
    }
}

impl Auth {
    /// libgit2's credential callback. `url` is the URL being contacted *now* (after any
    /// redirect), so a token is only ever chosen for the host that will receive it.
    pub fn credential(
        &mut self,
        url: &str,
        user_from_url: Option<&str>,
        allowed: git2::CredentialType,
    ) -> Result<git2::Cred, git2::Error> {
        use git2::{Cred, CredentialType as T};
        let host = host_of(url);
        self.host = Some(host.clone());
        if allowed.contains(T::USERNAME) {
            return Cred::username(user_from_url.unwrap_or("git"));
        }
        if allowed.contains(T::SSH_KEY) {
            let user = user_from_url.unwrap_or("git");
            if !self.agent_done {
                self.agent_done = true;
                if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                    self.tried.push("ssh-agent".into());
                    return Cred::ssh_key_from_agent(user);
                }
            }
            let keys = default_ssh_keys();
            if let Some(key) = keys.get(self.keys_done) {
                self.keys_done += 1;
                self.tried.push(format!("key {}", key.display()));
                return Cred::ssh_key(user, None, key, None);
            }
        }
        // A credential is never offered over plain http to anything but this machine.
        let cleartext = url.starts_with("http://") && !crate::source::is_loopback(&host);
        if cleartext && allowed.contains(T::USER_PASS_PLAINTEXT) && !self.env_done {
            self.env_done = true;
            self.helper_done = true;
            self.tried
                .push("nothing: credentials are never sent over plain http".into());
        }
        if allowed.contains(T::USER_PASS_PLAINTEXT) {
            if !self.env_done {
                self.env_done = true;
                if let Some(t) = token_for_host(&host) {
                    self.tried.push(format!("token from {}", t.from));
                    return Cred::userpass_plaintext(&t.username, t.token.expose());
                }
            }
            if !self.helper_done {
                self.helper_done = true;
                if let Some((user, pass)) = from_credential_helper(url, user_from_url) {
                    self.tried.push("git credential helper".into());
                    return Cred::userpass_plaintext(&user, pass.expose());
                }
            }
        }
        Err(git2::Error::from_str("no more credentials to try"))
    }

    /// Turn a failed connection into one clear, secret-free error when it was about
    /// authentication or host keys; otherwise return the error unchanged.
    pub fn explain(&self, url: &crate::source::GitUrl, err: git2::Error) -> anyhow::Error {
        let host = self.host.clone().unwrap_or_else(|| url.host().to_string());
        let auth_failed = err.code() == git2::ErrorCode::Auth
            || err.class() == git2::ErrorClass::Http && err.message().contains("401")
            || err.message().contains("no more credentials to try")
            || err.message().contains("authentication required");
        if err.code() == git2::ErrorCode::Certificate && url.scheme() == "ssh" {
            return anyhow::anyhow!(
                "the SSH host key of {host} is unknown or has changed (checked against ~/.ssh/known_hosts); \
                 verify its fingerprint, then add it with `ssh-keyscan {}{host} >> ~/.ssh/known_hosts`",
                url::Url::parse(url.fetch_url())
                    .ok()
                    .and_then(|u| u.port())
                    .map(|p| format!("-p {p} "))
                    .unwrap_or_default()
            );
        }
        if !auth_failed {
            return anyhow::Error::new(err);
        }
        let fix = if url.scheme() == "ssh" {
            "load a key into ssh-agent (ssh-add), or put one at ~/.ssh/id_ed25519".to_string()
        } else {
            format!("set {}", candidate_vars(&host).join(" or "))
        };
        let tried = if self.tried.is_empty() {
            "no credentials were found".to_string()
        } else {
            format!("tried {}", self.tried.join(", "))
        };
        let verb = if self.tried.is_empty() {
            "requires authentication"
        } else {
            "rejected the credentials"
        };
        anyhow::anyhow!("{host} {verb} ({tried}); {fix}")
    }
}

/// A log writer that scrubs secrets from each event before it reaches stderr.
pub struct ScrubbingStderr(Vec<u8>);

impl Write for ScrubbingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbingStderr {
    fn drop(&mut self) {
        let text = scrub(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

pub fn scrubbing_stderr() -> ScrubbingStderr {
    ScrubbingStderr(Vec::new())
}
