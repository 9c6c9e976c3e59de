//! `kst audit --online` (SPEC 16): OSV advisories for the exact npm/PyPI package versions MCP
//! servers launch, in one `POST /v1/querybatch` to `KASETTO_OSV_URL` (default
//! https://api.osv.dev).
//!
//! Only package names, ecosystems and versions are sent: no args, no env, no URL of a source, no
//! credential (no token is ever attached). A server whose package has no exact version, or whose
//! answer did not come (unreachable, an error status, a malformed answer), is *unverified* —
//! never clean. Advisory ids from the answer are checked to be plain ids before they are shown.

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};

use super::rules::{Package, launched_package};
use super::{Content, Finding, Item, Kind, Severity};

pub const DEFAULT_URL: &str = "https://api.osv.dev";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_BYTES: u64 = 8 << 20;
/// Most advisories reported per package.
const MAX_VULNS: usize = 50;

/// The endpoint base, from `KASETTO_OSV_URL`.
fn base() -> String {
    crate::envvars::non_empty(crate::envvars::KASETTO_OSV_URL)
        .map(|v| v.to_string_lossy().trim_end_matches('/').to_string())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// An OSV id fit to show: letters, digits, `-`, `_`, `.`, `:`; at most 64.
fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Check every MCP item's launched package online; findings and unverified reasons are added
/// to `items` (findings returned per item index).
pub fn check(items: &mut [Item]) -> Vec<(usize, Finding)> {
    let mut queries: Vec<(usize, Package, String, usize)> = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        if item.kind != Kind::Mcp {
            continue;
        }
        let Some((file, line, pkg)) = item.entries.iter().find_map(|e| match &e.content {
            Content::Server { def, line } => {
                launched_package(def).map(|p| (e.path.clone(), *line, p))
            }
            Content::File { .. } => None,
        }) else {
            continue;
        };
        if pkg.version.is_none() {
            item.unverified.push(format!(
                "OSV was not asked: {} package {} has no exact version",
                pkg.ecosystem,
                super::rules::short(&pkg.name)
            ));
            continue;
        }
        queries.push((i, pkg, file, line));
    }
    if queries.is_empty() {
        return Vec::new();
    }
    let url = format!("{}/v1/querybatch", base());
    let body = json!({
        "queries": queries.iter().map(|(_, p, _, _)| json!({
            "package": { "name": p.name, "ecosystem": p.ecosystem },
            "version": p.version,
        })).collect::<Vec<_>>()
    });
    let answer = post(&url, &body);
    let mut out = Vec::new();
    let results = match answer {
        Ok(v) => match v.get("results").and_then(Value::as_array) {
            Some(r) if r.len() == queries.len() => r.clone(),
            _ => {
                for (i, ..) in &queries {
                    items[*i]
                        .unverified
                        .push("OSV's answer was not the expected shape".into());
                }
                return out;
            }
        },
        Err(e) => {
            for (i, ..) in &queries {
                items[*i]
                    .unverified
                    .push(format!("OSV could not be asked: {e}"));
            }
            return out;
        }
    };
    for ((i, pkg, file, line), res) in queries.iter().zip(results) {
        let vulns = res
            .get("vulns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if res.get("next_page_token").is_some_and(|t| !t.is_null()) {
            items[*i]
                .unverified
                .push("OSV has more advisories than one answer holds".into());
        }
        for v in vulns.iter().take(MAX_VULNS) {
            let Some(id) = v.get("id").and_then(Value::as_str).filter(|s| plain_id(s)) else {
                items[*i]
                    .unverified
                    .push("OSV answered an advisory without a usable id".into());
                continue;
            };
            let malicious = id.starts_with("MAL-");
            out.push((
                *i,
                Finding {
                    rule: if malicious {
                        "osv-malicious"
                    } else {
                        "osv-advisory"
                    },
                    severity: if malicious {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    file: file.clone(),
                    line: *line,
                    reason: format!(
                        "{} {}@{}: {} {id}",
                        pkg.ecosystem,
                        super::rules::short(&pkg.name),
                        super::rules::short(pkg.version.as_deref().unwrap_or("")),
                        if malicious {
                            "known malicious package"
                        } else {
                            "advisory"
                        }
                    ),
                },
            ));
        }
    }
    out
}

/// POST `body` as JSON and parse the answer; an error is one line without any secret.
fn post(url: &str, body: &Value) -> Result<Value, String> {
    let parsed =
        url::Url::parse(url).map_err(|_| "KASETTO_OSV_URL is not a valid URL".to_string())?;
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    match parsed.scheme() {
        "https" => {}
        "http" if crate::source::is_loopback(&host) => {}
        _ => {
            return Err(format!(
                "{} is not https (plain http only for loopback hosts)",
                crate::source::DisplayUrl::from(&parsed)
            ));
        }
    }
    let shown = crate::source::DisplayUrl::from(&parsed).to_string();
    let agent = crate::remote::http_agent(TIMEOUT);
    let resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .send(body.to_string())
        .map_err(|e| format!("{shown}: {}", crate::credentials::scrub(&e.to_string())))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("{shown} answered HTTP {status}"));
    }
    let mut bytes = Vec::new();
    resp.into_body()
        .into_reader()
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the answer of {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("{shown} answered more than {MAX_BYTES} bytes"));
    }
    serde_json::from_slice(&bytes).map_err(|_| format!("{shown} did not answer JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_shown() {
        assert!(plain_id("GHSA-abcd-1234-efgh"));
        assert!(plain_id("MAL-2025-1"));
        assert!(!plain_id("x\u{1b}[2J"));
        assert!(!plain_id(""));
        assert!(!plain_id(&"a".repeat(65)));
    }
}
