//! Where a pack comes from (SPEC 4): a git remote or a local folder, and its canonical URL.
//!
//! The *canonical URL* (scheme + lowercase host + port + path without trailing `/` or `.git`,
//! no userinfo) is the identity used in the lock, in cache keys, in messages and in JSON. The
//! original spelling is kept only to fetch from. Neither may hold a password: URLs with one are
//! refused, so nothing downstream ever has a secret to leak.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

use crate::envvars;

/// A parsed `source:` value.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    Git(GitUrl),
    /// A plain folder, read as it is now. `spelled` is what the config said (the lock identity);
    /// `path` is resolved against the config file's folder.
    Local {
        spelled: String,
        path: PathBuf,
    },
}

/// A git remote: how to reach it and who it is.
#[derive(Clone, PartialEq, Eq)]
pub struct GitUrl {
    /// What libgit2 is given to fetch. Userinfo may hold a user name (ssh), never a password.
    fetch: String,
    canonical: CanonicalUrl,
    /// Lowercase host (empty for `file://`).
    host: String,
    scheme: String,
}

/// The identity of a remote. Displaying it can never show a credential: it has none.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CanonicalUrl(String);

impl CanonicalUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalUrl({})", self.0)
    }
}

impl fmt::Debug for GitUrl {
    // Only the canonical form: the fetch URL may carry a user name we need not print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitUrl({})", self.canonical)
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Git(g) => g.fmt(f),
            Source::Local { spelled, .. } => write!(f, "Local({spelled})"),
        }
    }
}

impl GitUrl {
    pub fn canonical(&self) -> &CanonicalUrl {
        &self.canonical
    }
    pub fn fetch_url(&self) -> &str {
        &self.fetch
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
    /// libgit2's local transport cannot do shallow fetches.
    pub fn supports_shallow(&self) -> bool {
        self.scheme != "file"
    }
}

impl Source {
    /// The identity string used in the lock and in messages.
    pub fn identity(&self) -> &str {
        match self {
            Source::Git(g) => g.canonical.as_str(),
            Source::Local { spelled, .. } => spelled,
        }
    }
}

/// Parse a `source:` value. `base` is the folder relative local paths are resolved against.
pub fn parse(raw: &str, base: &Path) -> Result<Source, String> {
    if raw.chars().any(|c| c.is_control()) {
        return Err("the source contains control characters".into());
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("the source is empty".into());
    }
    if raw.contains("://") {
        return parse_url(raw).map(Source::Git);
    }
    if let Some(scp) = parse_scp(raw) {
        return scp.map(Source::Git);
    }
    let path = if let Some(rest) = raw.strip_prefix("~/") {
        crate::dirs::home().map_err(|e| e.to_string())?.join(rest)
    } else {
        base.join(raw)
    };
    Ok(Source::Local {
        spelled: raw.trim_end_matches('/').to_string(),
        path,
    })
}

fn parse_url(raw: &str) -> Result<GitUrl, String> {
    let url = Url::parse(raw)
        .map_err(|e| format!("{:?} is not a valid URL: {e}", DisplayUrl::new(raw)))?;
    if url.password().is_some() {
        return Err(
            "the URL contains a password; remove it and set a token variable instead \
             (e.g. GITHUB_TOKEN, or KASETTO_TOKEN_<HOST>; see docs/credentials.md)"
                .into(),
        );
    }
    let scheme = url.scheme().to_ascii_lowercase();
    if !url.username().is_empty() && matches!(scheme.as_str(), "http" | "https") {
        // Over HTTP(S) a user name in the URL is often a token in disguise
        // (`https://ghp_…@github.com/…`); kst takes credentials from variables only.
        return Err(
            "the URL contains a user name; remove it — kst sends credentials from variables \
             (e.g. GITHUB_TOKEN, KASETTO_TOKEN_<HOST> and KASETTO_USERNAME_<HOST>; see docs/credentials.md)"
                .into(),
        );
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "https" | "ssh" | "git" => {
            if host.is_empty() {
                return Err(format!("{} has no host", DisplayUrl::from(&url)));
            }
        }
        "http" => {
            if !is_loopback(&host) && !envvars::flag(envvars::KASETTO_ALLOW_HTTP) {
                return Err(format!(
                    "{} uses plain http, which anyone on the network can read and alter; \
                     use https, or set {}=1 if you must",
                    DisplayUrl::from(&url),
                    envvars::KASETTO_ALLOW_HTTP
                ));
            }
        }
        "file" => {
            if !host.is_empty() && host != "localhost" {
                return Err(format!(
                    "{} names a host; file URLs must be file:///absolute/path",
                    DisplayUrl::from(&url)
                ));
            }
            if trim_repo_path(url.path()).is_empty() {
                return Err("a file URL needs a repository path: file:///absolute/path".into());
            }
        }
        other => {
            return Err(format!(
                "unsupported URL scheme {other:?}; use https, ssh, git, file or a local path"
            ));
        }
    }
    // Canonical: no userinfo, lowercase host, explicit non-default port, path without `/` or
    // `.git` at the end.
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let canonical = format!("{scheme}://{host}{port}{}", trim_repo_path(url.path()));
    // Fetch URL: the original minus nothing; a user name (ssh) is kept, passwords were refused.
    Ok(GitUrl {
        fetch: url.to_string(),
        canonical: CanonicalUrl(canonical),
        host,
        scheme,
    })
}

/// `user@host:path` (scp-like ssh). Returns None when `raw` is not in that form.
fn parse_scp(raw: &str) -> Option<Result<GitUrl, String>> {
    let (before, path) = raw.split_once(':')?;
    // `C:\x` or `./a:b` are paths; scp-like needs a host before the first ':' and no '/' in it.
    if before.is_empty() || before.contains('/') || before.len() == 1 {
        return None;
    }
    let (user, host) = match before.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, before),
    };
    if host.is_empty() || path.is_empty() {
        return Some(Err(format!(
            "{:?} is not a valid scp-like address (user@host:path)",
            DisplayUrl::new(raw)
        )));
    }
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !host_ok || trim_repo_path(path.trim_start_matches('/')).is_empty() {
        return Some(Err(format!(
            "{:?} is not a valid scp-like address (user@host:path)",
            DisplayUrl::new(raw)
        )));
    }
    let host = host.to_ascii_lowercase();
    let canonical = format!(
        "ssh://{host}/{}",
        trim_repo_path(path).trim_start_matches('/')
    );
    // libgit2 is given the scp-like form itself: there a path without a leading `/` is
    // relative to the remote user's home (as with git), which no `ssh://` URL can express.
    let fetch = match user {
        Some(u) => format!("{u}@{host}:{path}"),
        None => format!("{host}:{path}"),
    };
    Some(Ok(GitUrl {
        fetch,
        canonical: CanonicalUrl(canonical),
        host,
        scheme: "ssh".into(),
    }))
}

fn trim_repo_path(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    let p = p.strip_suffix(".git").unwrap_or(p);
    p.trim_end_matches('/')
}

/// `localhost`, an IPv4 address in 127.0.0.0/8 or `::1` (bracketed or not): the only hosts
/// plain `http://` may reach. The host is parsed as an IP address, so a name that merely starts
/// like one (`127.attacker.example`) is not loopback.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => v6.is_loopback(),
        Err(_) => false,
    }
}

/// A URL (or anything a user gave where a URL was expected) as it may be shown: in every
/// message, log line and `--json` field that names a URL spelled by a user, a config or a
/// server. The whole userinfo — user name and password — is replaced by `***` (a user name in
/// an `https://` URL is often a pasted token), the query and fragment are dropped (they may hold
/// `?private_token=…`), and control characters are escaped. This is the one display type for
/// URLs: nothing prints a user-spelled URL any other way.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayUrl(String);

impl DisplayUrl {
    /// From any spelling: a URL, an scp-like `user@host:path`, a local path, or something
    /// unparseable (redacted by hand, the same way).
    pub fn new(raw: &str) -> DisplayUrl {
        let raw = raw.trim();
        if let Ok(u) = Url::parse(raw)
            && raw.contains("://")
        {
            return DisplayUrl::from(&u);
        }
        let shown = match raw.find("://") {
            Some(s) => {
                let (scheme, rest) = (&raw[..s], &raw[s + 3..]);
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(end);
                let tail = tail.split(['?', '#']).next().unwrap_or("");
                let authority = match authority.rfind('@') {
                    Some(at) => format!("***{}", &authority[at..]),
                    None => authority.to_string(),
                };
                format!("{scheme}://{authority}{tail}")
            }
            // scp-like `user@host:path`: the user name is userinfo too.
            None => match (raw.find('@'), raw.find(':'), raw.find('/')) {
                (Some(at), Some(colon), slash)
                    if at < colon && slash.is_none_or(|sl| sl > colon) =>
                {
                    format!("***{}", &raw[at..])
                }
                _ => raw.to_string(),
            },
        };
        DisplayUrl(escape_controls(&shown))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Url> for DisplayUrl {
    fn from(url: &Url) -> DisplayUrl {
        let userinfo = if url.username().is_empty() && url.password().is_none() {
            ""
        } else {
            "***@"
        };
        let host = match url.host_str() {
            Some(h) => h.to_string(),
            None => String::new(),
        };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        DisplayUrl(escape_controls(&format!(
            "{}://{userinfo}{host}{port}{}",
            url.scheme(),
            url.path()
        )))
    }
}

impl fmt::Display for DisplayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DisplayUrl {
    /// Quoted, like a string's `Debug`, so `{:?}` in messages still reads as a quoted value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl serde::Serialize for DisplayUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(raw: &str) -> GitUrl {
        match parse(raw, Path::new("/base")).unwrap() {
            Source::Git(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            git("https://GitHub.com/Org/Repo.git/").canonical().as_str(),
            "https://github.com/Org/Repo"
        );
        // A user name over https may be a token: refused, never echoed.
        let err = parse("https://ghp_tok@github.com/org/repo", Path::new("/")).unwrap_err();
        assert!(
            err.contains("user name") && !err.contains("ghp_tok"),
            "{err}"
        );
        assert_eq!(
            git("ssh://git@github.com/org/repo").canonical().as_str(),
            "ssh://github.com/org/repo"
        );
        assert_eq!(
            git("git@gitlab.example.com:platform/skills.git")
                .canonical()
                .as_str(),
            "ssh://gitlab.example.com/platform/skills"
        );
        assert_eq!(
            git("git@gitlab.example.com:platform/skills.git").fetch_url(),
            "git@gitlab.example.com:platform/skills.git"
        );
        assert_eq!(
            git("ssh://git@host:2222/a/b").canonical().as_str(),
            "ssh://host:2222/a/b"
        );
        assert_eq!(
            git("git://127.0.0.1:9418/pack").canonical().as_str(),
            "git://127.0.0.1:9418/pack"
        );
        assert_eq!(
            git("file:///srv/repos/pack.git").canonical().as_str(),
            "file:///srv/repos/pack"
        );
        assert!(!git("file:///srv/repos/pack.git").supports_shallow());
    }

    #[test]
    fn local_paths() {
        let s = parse("./local-skills/", Path::new("/cfg")).unwrap();
        assert_eq!(
            s,
            Source::Local {
                spelled: "./local-skills".into(),
                path: PathBuf::from("/cfg/./local-skills/")
            }
        );
        assert!(matches!(
            parse("/abs/dir", Path::new("/cfg")).unwrap(),
            Source::Local { .. }
        ));
    }

    #[test]
    fn only_real_loopback_hosts_are_loopback() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.254",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "127.attacker.example",
            "127.0.0.1.attacker.example",
            "127.0.0.1.nip.io",
            "localhost.attacker.example",
            "128.0.0.1",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "[::2]",
            "::ffff:8.8.8.8",
            "example.com",
            "",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
        // And through the source parser: plain http to a look-alike is refused.
        let err = parse("http://127.attacker.example/o/r", Path::new("/")).unwrap_err();
        assert!(err.contains("plain http"), "{err}");
    }

    #[test]
    fn display_urls_never_show_userinfo() {
        let d = |s: &str| DisplayUrl::new(s).to_string();
        assert_eq!(
            d("https://TOK@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(
            d("https://u:TOK@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(
            d("HTTPS://TOK@GitHub.com:8443/o/r"),
            "https://***@github.com:8443/o/r"
        );
        assert_eq!(
            d("https://github.com/o/r.yaml?private_token=TOK#x"),
            "https://github.com/o/r.yaml"
        );
        // Unparseable: redacted by hand, the same way.
        assert_eq!(
            d("https://TOK@git hub.com/o/r"),
            "https://***@git hub.com/o/r"
        );
        assert_eq!(d("https://a@TOK@x y/o?q=TOK"), "https://***@x y/o");
        assert_eq!(d("TOK@host:o/r"), "***@host:o/r");
        assert_eq!(d("./local/path"), "./local/path");
        assert_eq!(d("https://github.com/o/r"), "https://github.com/o/r");
        assert_eq!(d("https://x y/\u{1b}]52;c;"), "https://x y/\\u{1b}]52;c;");
        assert_eq!(d("https://x y/a\u{1b}b"), "https://x y/a\\u{1b}b");
        for bad in [
            "https://SEKRIT@github.com/o/r",
            "SEKRIT@h st:o",
            "https://SEKRIT@x y/o",
        ] {
            let e = parse(bad, Path::new("/")).unwrap_err();
            assert!(!e.contains("SEKRIT"), "{e}");
        }
    }

    /// Every way out of a `DisplayUrl` — `Display`, `as_str`, `{:?}`, `--json` — holds the same
    /// redacted text (a mutant that made `as_str` return anything else went unnoticed).
    #[test]
    fn every_form_of_a_display_url_is_the_redacted_one() {
        let u = DisplayUrl::new("https://TOK@github.com/o/r?private_token=TOK");
        let shown = "https://***@github.com/o/r";
        assert_eq!(u.to_string(), shown);
        assert_eq!(u.as_str(), shown);
        assert_eq!(format!("{u:?}"), format!("{shown:?}"));
        assert_eq!(serde_json::to_string(&u).unwrap(), format!("{shown:?}"));
        let from = DisplayUrl::from(&Url::parse("https://u:TOK@h.example/p").unwrap());
        assert_eq!(from.as_str(), "https://***@h.example/p");
    }

    #[test]
    fn refusals() {
        let err = parse("https://user:secret@github.com/o/r", Path::new("/")).unwrap_err();
        assert!(err.contains("password") && !err.contains("secret"), "{err}");
        assert!(parse("https://github.com/o/r\n", Path::new("/")).is_err());
        assert!(parse("http://example.com/o/r", Path::new("/")).is_err());
        assert!(parse("http://127.0.0.1:8080/o/r", Path::new("/")).is_ok());
        assert!(parse("ftp://example.com/o/r", Path::new("/")).is_err());
    }
}
