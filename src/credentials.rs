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
type EnvFn = dyn Fn(&str) -> Option<String>;

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

/// One way to supply a token: a variable sent with a fixed user name, or a pair of variables
/// (user name, token).
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

/// One row of the SPEC 11 table: the hosts a family's tokens may go to — its public hosts, and
/// the host named by its host variable — and the variables tried for them, in order.
struct Row {
    public_hosts: &'static [&'static str],
    host_var: Option<&'static str>,
    candidates: &'static [Candidate],
}

const fn tok(var: &'static str, user: &'static str) -> Candidate {
    Candidate::Token { var, user }
}

/// The family rows (SPEC 11). A family token goes only to a host listed here for it: a host
/// that merely looks like the family (`gitlab.attacker.example`, `gitea.evil`, `forgejo.x`)
/// gets nothing; `KASETTO_TOKEN_<HOST>` (tried last) is the only way to any other host. One
/// table serves the lookup, the error messages and the scrubbed-variable check, so they cannot
/// disagree.
const TABLE: &[Row] = &[
    Row {
        public_hosts: &["github.com"],
        host_var: None,
        candidates: &[
            tok("GITHUB_TOKEN", "x-access-token"),
            tok("GH_TOKEN", "x-access-token"),
        ],
    },
    Row {
        public_hosts: &[],
        host_var: Some("GH_HOST"),
        candidates: &[
            tok("GH_ENTERPRISE_TOKEN", "x-access-token"),
            tok("GITHUB_ENTERPRISE_TOKEN", "x-access-token"),
        ],
    },
    Row {
        public_hosts: &["gitlab.com"],
        host_var: Some("GITLAB_HOST"),
        candidates: &[tok("GITLAB_TOKEN", "oauth2")],
    },
    Row {
        // A CI job token belongs to the instance running the job, which names itself.
        public_hosts: &[],
        host_var: Some("CI_SERVER_HOST"),
        candidates: &[tok("CI_JOB_TOKEN", "gitlab-ci-token")],
    },
    Row {
        public_hosts: &["bitbucket.org"],
        host_var: None,
        candidates: &[
            Candidate::Pair {
                user_var: "BITBUCKET_EMAIL",
                token_var: "BITBUCKET_TOKEN",
            },
            Candidate::Pair {
                user_var: "BITBUCKET_USERNAME",
                token_var: "BITBUCKET_APP_PASSWORD",
            },
        ],
    },
    Row {
        public_hosts: &["codeberg.org", "gitea.com"],
        host_var: Some("GITEA_HOST"),
        candidates: &[
            tok("GITEA_TOKEN", "oauth2"),
            tok("CODEBERG_TOKEN", "oauth2"),
            tok("FORGEJO_TOKEN", "oauth2"),
        ],
    },
];

/// The host a host variable names: a bare host (`gitlab.corp.example`), tolerating a scheme,
/// a port or a path around it; lower-cased. None when unset or empty.
fn named_host(env: Env, name: &str) -> Option<String> {
    let v = env(name)?;
    let v = v.trim().to_ascii_lowercase();
    let v = v.split_once("://").map_or(v.as_str(), |(_, rest)| rest);
    let v = v.split(['/', '?', '#']).next().unwrap_or("");
    let v = v.rsplit_once('@').map_or(v, |(_, h)| h);
    let v = match v.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => v,
    };
    let v = v.trim_end_matches('.');
    (!v.is_empty()).then(|| v.to_string())
}

/// The family candidates for `host` (lower-cased), in the order they are tried.
fn family(host: &str, env: Env) -> Vec<&'static Candidate> {
    TABLE
        .iter()
        .filter(|row| {
            row.public_hosts.contains(&host)
                || row
                    .host_var
                    .and_then(|v| named_host(env, v))
                    .is_some_and(|h| h == host)
        })
        .flat_map(|row| row.candidates.iter())
        .collect()
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

/// The token for `host` from the environment (SPEC 11 table), or None.
pub fn token_for_host(host: &str) -> Option<HostToken> {
    token_for_host_in(host, &process_env)
}

fn token_for_host_in(host: &str, env: Env) -> Option<HostToken> {
    let host = host.to_ascii_lowercase();
    let from_family = family(&host, env).into_iter().find_map(|c| match *c {
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

/// Every form in which a secret value visible to this process could be shown, longest first
/// (so a token that contains another is scrubbed whole): the value itself, its percent-encoded
/// spellings (as it would appear in a URL), and the base64 of `user:value` for every user name
/// it may be sent with (as it appears in an `Authorization: Basic` header).
fn known_secrets() -> Vec<String> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    secret_forms(&vars)
}

fn secret_forms(vars: &[(String, String)]) -> Vec<String> {
    let mut users: BTreeSet<String> = BTreeSet::new();
    for row in TABLE {
        for c in row.candidates {
            if let Candidate::Token { user, .. } = c {
                users.insert(user.to_string());
            }
        }
    }
    users.insert("x-access-token".into());
    for (k, v) in vars {
        let user_var = k.starts_with("KASETTO_USERNAME_")
            || TABLE
                .iter()
                .flat_map(|r| r.candidates)
                .any(|c| matches!(c, Candidate::Pair { user_var, .. } if user_var == k));
        if user_var && !v.trim().is_empty() {
            users.insert(v.trim().to_string());
        }
    }
    let mut set: BTreeSet<String> = BTreeSet::new();
    for (k, v) in vars {
        let secretish =
            TOKEN_VARS.contains(&k.as_str()) || TOKEN_PREFIXES.iter().any(|p| k.starts_with(p));
        let v = v.trim();
        // Very short values would scrub ordinary words; they are not plausible tokens anyway.
        if !secretish || v.len() < 6 {
            continue;
        }
        set.insert(v.to_string());
        set.insert(percent_encode(v, false));
        set.insert(percent_encode(v, true));
        for u in &users {
            set.insert(base64(format!("{u}:{v}").as_bytes()));
        }
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

/// Every byte but RFC 3986's unreserved characters as `%XX` (upper- or lower-case hex).
fn percent_encode(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (as in HTTP Basic auth).
pub(crate) fn base64(b: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(b)
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
/// once per host) and for which host, so a rejection ends in one error that says what was tried.
pub struct Auth {
    host: Option<String>,
    tried: Vec<String>,
    env_done: bool,
    helper_done: bool,
    agent_done: bool,
    keys_done: usize,
    /// Where tokens are read from: the process environment (a parameter for unit tests).
    env: Box<EnvFn>,
}

impl Default for Auth {
    fn default() -> Auth {
        Auth {
            host: None,
            tried: Vec::new(),
            env_done: false,
            helper_done: false,
            agent_done: false,
            keys_done: 0,
            env: Box::new(process_env),
        }
    }
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
    /// libgit2's credential callback. It is called only once a server has asked for
    /// credentials (a 401). `url` is the URL being contacted *now* (after any redirect), so a
    /// token is only ever chosen for the host that will receive it; when the host changes, the
    /// new host starts afresh (it has its own token, or none) and nothing chosen for the
    /// previous host is kept.
    pub fn credential(
        &mut self,
        url: &str,
        user_from_url: Option<&str>,
        allowed: git2::CredentialType,
    ) -> Result<git2::Cred, git2::Error> {
        use git2::{Cred, CredentialType as T};
        let host = host_of(url);
        if self.host.as_deref() != Some(host.as_str()) {
            if self.host.is_some() {
                self.env_done = false;
                self.helper_done = false;
            }
            self.host = Some(host.clone());
        }
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
        // A credential is never offered over plain http to anything but this machine: neither
        // now nor on a later call for this host (the "done" flags).
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
                if let Some(t) = token_for_host_in(&host, &*self.env) {
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
        // tracing-subscriber escapes ESC, DEL and C1 in messages and fields; the other C0
        // controls (CR, ...) are escaped here, its own colours (ESC) kept (SPEC 13.8).
        let text = scrub(&String::from_utf8_lossy(&self.0));
        let text = crate::escape::escape_controls_but_esc(&text);
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

pub fn scrubbing_stderr() -> ScrubbingStderr {
    ScrubbingStderr(Vec::new())
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

    /// Every family token variable of SPEC 11, each with its own value.
    const FAMILY_VARS: [(&str, &str); 13] = [
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
    ];

    #[test]
    fn the_spec_token_table() {
        let mut all = FAMILY_VARS.to_vec();
        all.extend([
            ("GH_HOST", "GHE.Corp.example"),
            ("KASETTO_TOKEN_GIT_EXAMPLE_COM", "l"),
        ]);
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
            pick(
                "gitlab.corp.example",
                &[
                    ("CI_JOB_TOKEN", "f"),
                    ("CI_SERVER_HOST", "gitlab.corp.example")
                ]
            ),
            some("gitlab-ci-token", "CI_JOB_TOKEN")
        );
        assert_eq!(
            pick(
                "gitlab.corp.example",
                &[
                    ("GITLAB_TOKEN", "e"),
                    ("GITLAB_HOST", "https://GitLab.corp.example/")
                ]
            ),
            some("oauth2", "GITLAB_TOKEN")
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
            pick("gitea.com", &[("FORGEJO_TOKEN", "k")]),
            some("oauth2", "FORGEJO_TOKEN")
        );
        assert_eq!(
            pick(
                "forge.corp.example",
                &[
                    ("FORGEJO_TOKEN", "k"),
                    ("GITEA_HOST", "forge.corp.example:3000")
                ]
            ),
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
        for row in TABLE {
            for c in row.candidates {
                let secret = match c {
                    Candidate::Token { var, .. } => var,
                    Candidate::Pair { token_var, .. } => token_var,
                };
                assert!(TOKEN_VARS.contains(secret), "{secret} is not in TOKEN_VARS");
            }
        }
    }

    #[test]
    fn family_tokens_go_only_to_their_public_host_or_the_host_variable() {
        let all = FAMILY_VARS;
        // Look-alikes of a family get nothing, with no host variable set...
        for host in [
            "gitlab.attacker.example",
            "gitlab.com.attacker.example",
            "gitea.evil",
            "forgejo.x",
            "forgejo.org",
            "github.attacker.example",
            "bitbucket.attacker.example",
            "codeberg.org.evil",
            "evilgitlab.com",
        ] {
            assert_eq!(pick(host, &all), None, "{host}");
        }
        // ... and with host variables naming other hosts.
        let mut with_hosts = all.to_vec();
        with_hosts.extend([
            ("GH_HOST", "ghe.corp.example"),
            ("GITLAB_HOST", "gitlab.corp.example"),
            ("CI_SERVER_HOST", "gitlab.corp.example"),
            ("GITEA_HOST", "gitea.corp.example"),
        ]);
        for host in [
            "gitlab.attacker.example",
            "gitea.evil",
            "forgejo.x",
            "corp.example",
            "ghe.corp.example.evil",
        ] {
            assert_eq!(pick(host, &with_hosts), None, "{host}");
        }
        // CI_JOB_TOKEN belongs to the instance running the job only: not to gitlab.com
        // unless that is the instance.
        assert_eq!(pick("gitlab.com", &[("CI_JOB_TOKEN", "f")]), None);
        assert_eq!(
            pick(
                "gitlab.com",
                &[("CI_JOB_TOKEN", "f"), ("CI_SERVER_HOST", "gitlab.com")]
            ),
            some("gitlab-ci-token", "CI_JOB_TOKEN")
        );
        // The GitLab family's host variable does not lend GITLAB_TOKEN to a GH_HOST, etc.
        assert_eq!(
            pick(
                "ghe.corp.example",
                &[("GITLAB_TOKEN", "e"), ("GH_HOST", "ghe.corp.example")]
            ),
            None
        );
        assert_eq!(
            pick(
                "gitea.corp.example",
                &[("GITEA_TOKEN", "i"), ("GITLAB_HOST", "gitea.corp.example")]
            ),
            None
        );
        // Error messages name exactly what the lookup would use.
        let env = |k: &str| (k == "GITLAB_HOST").then(|| "gitlab.corp.example".to_string());
        let names = |h: &str| -> Vec<String> {
            family(h, &env)
                .iter()
                .map(|c| match c {
                    Candidate::Token { var, .. } => var.to_string(),
                    Candidate::Pair { token_var, .. } => token_var.to_string(),
                })
                .collect()
        };
        assert_eq!(names("gitlab.corp.example"), ["GITLAB_TOKEN"]);
        assert!(names("gitlab.attacker.example").is_empty());
    }

    #[test]
    fn host_variables_are_read_as_host_names() {
        let named = |v: &str| named_host(&|_: &str| Some(v.to_string()), "X");
        assert_eq!(
            named("GitLab.Corp.example"),
            Some("gitlab.corp.example".into())
        );
        assert_eq!(
            named("https://gitlab.corp.example/"),
            Some("gitlab.corp.example".into())
        );
        assert_eq!(
            named("gitlab.corp.example:8443"),
            Some("gitlab.corp.example".into())
        );
        assert_eq!(named("  "), None);
        assert_eq!(named(""), None);
    }

    #[test]
    fn plain_http_offers_nothing_even_with_a_token_set_and_never_later() {
        let mut auth = Auth {
            env: Box::new(|k: &str| {
                (k == "KASETTO_TOKEN_GIT_EXAMPLE_COM").then(|| "tok-plain-http-1".to_string())
            }),
            ..Auth::default()
        };
        for _ in 0..3 {
            let r = auth.credential(
                "http://git.example.com/o/r",
                None,
                git2::CredentialType::USER_PASS_PLAINTEXT,
            );
            assert!(r.is_err(), "a credential was offered over plain http");
        }
        assert_eq!(
            auth.tried,
            ["nothing: credentials are never sent over plain http"],
            "{:?}",
            auth.tried
        );
    }

    #[test]
    fn a_new_host_after_a_redirect_gets_its_own_token_once() {
        let mut auth = Auth {
            env: Box::new(|k: &str| match k {
                "KASETTO_TOKEN_127_0_0_1" => Some("token-for-front".to_string()),
                "KASETTO_TOKEN_LOCALHOST" => Some("token-for-target".to_string()),
                _ => None,
            }),
            ..Auth::default()
        };
        let t = git2::CredentialType::USER_PASS_PLAINTEXT;
        assert!(auth.credential("http://127.0.0.1:1/o/r", None, t).is_ok());
        assert!(auth.credential("http://localhost:1/o/r", None, t).is_ok());
        let tokens: Vec<&String> = auth
            .tried
            .iter()
            .filter(|t| t.starts_with("token"))
            .collect();
        assert_eq!(
            tokens,
            [
                "token from KASETTO_TOKEN_127_0_0_1",
                "token from KASETTO_TOKEN_LOCALHOST"
            ]
        );
    }

    /// A value registered at run time (a credential helper's password) is scrubbed from then
    /// on, from 6 bytes; a shorter one is not (`register_secret` had no test at all).
    #[test]
    fn a_registered_secret_is_scrubbed_from_six_bytes() {
        register_secret("  h11-registered-secret  ");
        let out = scrub("x h11-registered-secret y");
        assert!(!out.contains("h11-registered-secret"), "{out}");
        register_secret("r6x8z1");
        assert!(!scrub("r6x8z1").contains("r6x8z1"));
        register_secret("q5x7z");
        assert_eq!(scrub("q5x7z"), "q5x7z");
    }

    /// A token of 6 bytes is scrubbed, one of 5 is not (it would scrub ordinary words).
    #[test]
    fn tokens_of_six_bytes_or_more_are_scrubbed() {
        let forms = |v: &str| secret_forms(&[("GITHUB_TOKEN".to_string(), v.to_string())]);
        assert!(forms("abc123").contains(&"abc123".to_string()));
        assert!(!forms("abc12").contains(&"abc12".to_string()));
    }

    #[test]
    fn the_scrubber_knows_every_form_a_token_is_sent_in() {
        let vars = [
            ("GITHUB_TOKEN".to_string(), "gh/tok+en=1".to_string()),
            (
                "BITBUCKET_EMAIL".to_string(),
                "me@example.invalid".to_string(),
            ),
            ("BITBUCKET_TOKEN".to_string(), "bb-token-2".to_string()),
            ("HOME".to_string(), "/home/someone".to_string()),
        ];
        let forms = secret_forms(&vars);
        for f in [
            "gh/tok+en=1",
            "gh%2Ftok%2Ben%3D1",
            "gh%2ftok%2ben%3d1",
            &base64(b"x-access-token:gh/tok+en=1"),
            &base64(b"oauth2:gh/tok+en=1"),
            &base64(b"me@example.invalid:bb-token-2"),
        ] {
            assert!(forms.iter().any(|x| x == f), "{f} missing from {forms:?}");
        }
        assert!(!forms.iter().any(|x| x.contains("/home/someone")));
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
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
