//! Remote configs (SPEC 11): `--config https://…` and `extends: https://…`.
//!
//! One HTTPS GET (plain `http://` only to loopback hosts), with the same per-host token rules as
//! git fetches, browser URLs rewritten to raw content, a size cap, a timeout, and a clear error
//! for an answer that is a web page rather than YAML. Redirects are followed by hand, so the
//! token is chosen afresh for every host and never carried to another one.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use url::Url;

use crate::credentials;
use crate::source::DisplayUrl;

/// Largest config accepted.
pub const MAX_BYTES: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 5;

/// The address to download and, if it was rewritten from a browser page, a note saying so.
pub fn raw_url(url: &Url) -> (Url, Option<String>) {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let segs: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let rewritten = if host == "github.com" && segs.len() > 4 && segs[2] == "blob" {
        // github.com/<o>/<r>/blob/<ref>/<path> → raw.githubusercontent.com/<o>/<r>/<ref>/<path>
        Url::parse(&format!(
            "https://raw.githubusercontent.com/{}/{}/{}",
            segs[0],
            segs[1],
            segs[3..].join("/")
        ))
        .ok()
    } else if let Some(i) = segs.windows(2).position(|w| w == ["-", "blob"]) {
        // GitLab: <o>/<r>/-/blob/<ref>/<path> → <o>/<r>/-/raw/<ref>/<path>
        let mut u = url.clone();
        let mut s = segs.clone();
        s[i + 1] = "raw";
        u.set_path(&s.join("/"));
        Some(u)
    } else if let Some(i) = segs
        .windows(2)
        .position(|w| w[0] == "src" && matches!(w[1], "branch" | "tag" | "commit"))
    {
        // Gitea / Forgejo / Codeberg: <o>/<r>/src/branch/<ref>/<path> → <o>/<r>/raw/branch/<ref>/<path>
        let mut u = url.clone();
        let mut s = segs.clone();
        s[i] = "raw";
        u.set_path(&s.join("/"));
        Some(u)
    } else {
        None
    };
    match rewritten {
        Some(r) => {
            let note = format!(
                "{} is a web page; fetching its raw content from {}",
                DisplayUrl::from(url),
                DisplayUrl::from(&r)
            );
            (r, Some(note))
        }
        None => (url.clone(), None),
    }
}

/// The fetch failed (network, server, credentials) rather than the address or the answer
/// being unusable: exit 1 instead of 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transport(String);

fn transport(msg: String) -> anyhow::Error {
    anyhow::Error::new(Transport(msg))
}

/// The host whose token a request may carry: GitHub's raw-content host belongs to github.com.
fn token_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    if host == "raw.githubusercontent.com" {
        "github.com".to_string()
    } else {
        host
    }
}

/// The token for a request to `url` (chosen by the host of `url` itself, never an earlier one).
fn token_for(url: &Url) -> Option<credentials::HostToken> {
    credentials::token_for_host(&token_host(url))
}

/// Download a remote config. Returns its text and any notes for the user. An unusable address
/// or answer is a usage error (exit 2); a failed fetch, or `--offline`, is a failure (exit 1).
pub fn fetch(
    raw: &str,
    offline: bool,
) -> std::result::Result<(String, Vec<String>), crate::error::Error> {
    use crate::error::Error;
    if offline {
        return Err(Error::Failed(anyhow::anyhow!(
            "{}: remote configs are not cached, and --offline forbids fetching them; use a local copy",
            DisplayUrl::new(raw)
        )));
    }
    fetch_online(raw).map_err(|e| match e.downcast_ref::<Transport>() {
        Some(_) => Error::Failed(e),
        None => Error::Usage(format!("{e:#}")),
    })
}

fn fetch_online(raw: &str) -> Result<(String, Vec<String>)> {
    let original = Url::parse(raw)
        .with_context(|| format!("{:?} is not a valid URL", DisplayUrl::new(raw)))?;
    if original.password().is_some() || !original.username().is_empty() {
        bail!(
            "{}: remove the user name or password from the URL; set a token variable instead (see docs/credentials.md)",
            DisplayUrl::from(&original)
        );
    }
    let (mut url, note) = raw_url(&original);
    let mut notes: Vec<String> = note.into_iter().collect();
    let agent = http_agent(TIMEOUT);
    let mut hops = 0;
    // The token offered to the current URL, if any: chosen only after that URL's server asked
    // for credentials, and forgotten on every redirect (the next host gets its own, or none).
    let mut offered: Option<credentials::HostToken> = None;
    loop {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http" if crate::source::is_loopback(&host) => {}
            "http" => bail!(
                "{}: plain http is only allowed for loopback hosts; use https",
                DisplayUrl::from(&url)
            ),
            other => bail!(
                "{}: unsupported scheme {other:?} for a remote config",
                DisplayUrl::from(&url)
            ),
        }
        let mut req = agent
            .get(url.as_str())
            .header("Accept", "application/yaml, text/yaml, text/plain, */*");
        if let Some(t) = &offered {
            let basic = base64_basic(&t.username, t.token.expose());
            req = req.header("Authorization", format!("Basic {basic}"));
        }
        let resp = req.call().map_err(|e| {
            transport(format!(
                "cannot fetch {}: {}",
                DisplayUrl::from(&url),
                credentials::scrub(&e.to_string())
            ))
        })?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let loc = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .with_context(|| {
                    format!("{} redirected without a Location", DisplayUrl::from(&url))
                })?;
            let next = url.join(loc).with_context(|| {
                format!("{} redirected to an invalid URL", DisplayUrl::from(&url))
            })?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                bail!(
                    "{}: more than {MAX_REDIRECTS} redirects",
                    DisplayUrl::from(&original)
                );
            }
            url = next;
            offered = None;
            notes.push(format!("redirected to {}", DisplayUrl::from(&url)));
            continue;
        }
        // The server asks for credentials: offer this host's token, once. GitHub and GitLab
        // answer 404 (or 403) rather than 401 to an anonymous request for a private file, so
        // those count as asking too — the token still only ever goes to its own host.
        let asked = matches!(status, 401 | 403 | 404);
        if asked
            && offered.is_none()
            && let Some(t) = token_for(&url)
        {
            offered = Some(t);
            continue;
        }
        if status == 401 || status == 403 || status == 404 && offered.is_none() {
            let vars = credentials::candidate_vars(&token_host(&url)).join(" or ");
            let hint = match &offered {
                Some(t) => format!("the token from {} was rejected", t.from),
                None => "no token is set for this host".to_string(),
            };
            return Err(transport(format!(
                "{} answered {status} ({hint}); if the config is private, set {vars}",
                DisplayUrl::from(&url)
            )));
        }
        if !(200..300).contains(&status) {
            return Err(transport(format!(
                "{} answered HTTP {status}",
                DisplayUrl::from(&url)
            )));
        }
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                transport(format!(
                    "cannot read the answer of {}: {e}",
                    DisplayUrl::from(&url)
                ))
            })?;
        if body.len() as u64 > MAX_BYTES {
            bail!(
                "{} is larger than {MAX_BYTES} bytes; a config that big is not a config",
                DisplayUrl::from(&url)
            );
        }
        let text = String::from_utf8(body)
            .with_context(|| format!("{} is not UTF-8 text", DisplayUrl::from(&url)))?;
        let head = text
            .trim_start()
            .get(..15)
            .unwrap_or("")
            .to_ascii_lowercase();
        if ctype.starts_with("text/html")
            || head.starts_with("<!doctype")
            || head.starts_with("<html")
        {
            bail!(
                "{} answered with an HTML page, not YAML; use the URL of the raw file",
                DisplayUrl::from(&url)
            );
        }
        return Ok((text, notes));
    }
}

/// The HTTPS client kst uses for configs and advisories: the platform's roots (which honour
/// `SSL_CERT_FILE`), a time limit, no redirect followed on its own (each hop is checked by the
/// caller: a token never follows a redirect to another host), every status returned.
pub(crate) fn http_agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into()
}

fn base64_basic(user: &str, pass: &str) -> String {
    credentials::base64(format!("{user}:{pass}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_urls_become_raw() {
        let r = |s: &str| raw_url(&Url::parse(s).unwrap()).0.to_string();
        assert_eq!(
            r("https://github.com/o/r/blob/main/team/kasetto.yaml"),
            "https://raw.githubusercontent.com/o/r/main/team/kasetto.yaml"
        );
        assert_eq!(
            r("https://gitlab.example.com/g/r/-/blob/v1/k.yaml"),
            "https://gitlab.example.com/g/r/-/raw/v1/k.yaml"
        );
        assert_eq!(
            r("https://codeberg.org/o/r/src/branch/main/k.yaml"),
            "https://codeberg.org/o/r/raw/branch/main/k.yaml"
        );
        assert_eq!(
            r("https://example.com/k.yaml"),
            "https://example.com/k.yaml"
        );
    }

    #[test]
    fn basic_auth_encoding() {
        assert_eq!(
            base64_basic("Aladdin", "open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64_basic("a", "b"), "YTpi");
    }
}
