//! `kst outdated`: what changed upstream since the locked commits (SPEC 2). Read-only: nothing
//! installed and not the lock is written, and in the cache only objects and refs under
//! `refs/kst/outdated/` (the moving refs fetched into kst's private namespace).
//!
//! A branch or default source: its moving ref is fetched (with the history since the locked
//! commit), and each locked item is compared at the two commits; an item whose path changed
//! lists the commits that touched it (short id, date, subject). A tag source: the remote's
//! tags that are newer by version order. A `rev` or local source is not checked. `--offline`
//! uses what the cache already has (the last fetch of the moving ref) and says so.

use std::cmp::Ordering;

use git2::{Oid, Repository};
use serde::Serialize;

use crate::error::{Error, Outcome, Result};
use crate::item::Kind;
use crate::lock::{Lock, LockedEntry, Requested};
use crate::report::Printer;
use crate::source::GitUrl;
use crate::source::{DisplayUrl, Source};
use crate::workspace::{Common, Workspace};

/// At most this many commits are listed per item (the count is still exact up to the walk).
const MAX_COMMITS: usize = 50;

/// A locked git source to check, with the items it provides.
struct Target {
    url: String,
    requested: Requested,
    sub_dir: Option<String>,
    commit: Oid,
    /// (kind, name, path inside the repository)
    items: Vec<(Kind, String, String)>,
}

/// The locked git sources and their items. The one walk over the lock.
fn targets(lock: &Lock) -> Vec<Target> {
    let mut out = Vec::new();
    for s in &lock.sources {
        let items = s.skills.iter();
        out.extend(target(s, items.map(|k| (Kind::Skill, &k.name, &k.path))));
    }
    for (kind, section) in [
        (Kind::Command, &lock.commands),
        (Kind::Instruction, &lock.instructions),
    ] {
        for s in section {
            out.extend(target(s, s.items.iter().map(|f| (kind, &f.name, &f.path))));
        }
    }
    for s in &lock.mcps {
        let packs = s.packs.iter();
        out.extend(target(s, packs.map(|p| (Kind::McpPack, &p.file, &p.file))));
    }
    out
}

/// A lock entry as a source to check, with its (kind, name, path) items; none for a source
/// with no commit (a local folder, an inline pack).
fn target<'a, L: LockedEntry>(
    s: &L,
    items: impl Iterator<Item = (Kind, &'a String, &'a String)>,
) -> Option<Target> {
    Some(Target {
        url: s.url().to_string(),
        requested: s.requested().clone(),
        sub_dir: s.sub_dir().map(str::to_string),
        commit: s.commit().and_then(crate::oid::parse)?,
        items: items.map(|(k, n, p)| (k, n.clone(), p.clone())).collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct JsonCommit {
    /// 7 digits.
    pub id: String,
    /// ISO 8601, UTC.
    pub date: String,
    /// The first line of the message, control characters escaped.
    pub subject: String,
}

#[derive(Debug, Serialize)]
pub struct JsonItem {
    /// `skill` | `command` | `instruction` | `mcp_pack`
    pub kind: Kind,
    pub name: String,
    pub path: String,
    /// `up_to_date` | `changed` | `removed` (the path is gone upstream) | `unknown`
    pub status: &'static str,
    /// The commits between the locked and the latest commit that touched `path`, newest first.
    pub commits: Vec<JsonCommit>,
    /// More commits touched it than are listed.
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct JsonSource {
    pub url: String,
    pub requested: String,
    pub sub_dir: Option<String>,
    pub locked: String,
    /// Branch/default: the commit the moving ref points to now. Tag: null.
    pub latest: Option<String>,
    /// `up_to_date` | `behind` | `rewritten` (the locked commit is not in the new history) |
    /// `newer_tags` | `pinned` (a `rev`) | `error`
    pub status: &'static str,
    /// `remote` (asked now) or `cache` (`--offline`: as of the last fetch).
    pub checked: &'static str,
    /// Tags: newer tags by version order, newest first.
    pub newer_tags: Vec<String>,
    pub items: Vec<JsonItem>,
    pub error: Option<String>,
}

pub fn run(common: &Common, printer: &Printer) -> Result<()> {
    let ctx = Workspace::load(
        common,
        crate::trust::Access::Reads {
            network: !common.offline,
        },
    )?;
    let targets = targets(&ctx.old_lock);
    let mut sources = Vec::new();
    if !targets.is_empty() {
        let cache = ctx.cache()?;
        for t in &targets {
            sources.push(check(&ctx, cache, t, common.offline));
        }
    }
    let failed = sources.iter().filter(|s| s.status == "error").count();
    // Update review (SPEC 16): what taking each moved ref would add, from the cache.
    let moves: Vec<crate::audit::review::Move> = targets
        .iter()
        .zip(&sources)
        .filter(|(_, s)| matches!(s.status, "behind" | "rewritten"))
        .filter_map(|(t, s)| {
            Some(crate::audit::review::Move {
                url: &t.url,
                requested: &t.requested,
                sub_dir: t.sub_dir.as_deref(),
                latest: crate::oid::parse(s.latest.as_deref()?)?,
            })
        })
        .collect();
    let review = if moves.is_empty() {
        Vec::new()
    } else {
        let new = crate::audit::review::moved_lock(&ctx, &ctx.old_lock, &moves);
        crate::audit::review::review(&ctx, &ctx.old_lock, &new)
    };
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1, "command": "outdated", "offline": common.offline,
            "scope": ctx.scope.name(),
            "lock": ctx.scope.lock_path.display().to_string(),
            "sources": sources,
            "review": review,
        }));
    } else {
        print_human(printer, &sources, common.offline);
        crate::audit::review::print(printer, &review);
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Reported(Outcome::Problems))
    }
}

/// The URL to fetch from: as the config spells it (it may carry an ssh user name), else the
/// lock's canonical URL.
fn fetch_url(ctx: &Workspace, lock_url: &str) -> Option<GitUrl> {
    let base = ctx.config.path.parent()?;
    let Ok(Source::Git(canonical)) = crate::source::parse(lock_url, base) else {
        return None;
    };
    let spelled = ctx
        .config
        .skills
        .iter()
        .map(|e| &e.source)
        .chain(ctx.config.mcps.iter().filter_map(|m| match &m.kind {
            crate::mcp::config::McpSourceKind::Pack { source, .. } => Some(source),
            crate::mcp::config::McpSourceKind::Inline { .. } => None,
        }))
        .find_map(|s| match s {
            Source::Git(g) if g.canonical() == canonical.canonical() => Some(g.clone()),
            _ => None,
        });
    Some(spelled.unwrap_or(canonical))
}

fn check(ctx: &Workspace, cache: &crate::git::Cache, t: &Target, offline: bool) -> JsonSource {
    let mut out = JsonSource {
        url: DisplayUrl::new(&t.url).to_string(),
        requested: t.requested.to_string(),
        sub_dir: t.sub_dir.clone(),
        locked: t.commit.to_string(),
        latest: None,
        status: "error",
        checked: if offline { "cache" } else { "remote" },
        newer_tags: Vec::new(),
        items: Vec::new(),
        error: None,
    };
    if let Requested::Rev(_) = t.requested {
        out.status = "pinned";
        return out;
    }
    let Some(url) = fetch_url(ctx, &t.url) else {
        out.error = Some("not a git URL".to_string());
        return out;
    };
    let db = cache.database(url.canonical());
    // One fetch per cache repository at a time, as in sync: held until the end.
    let opened = db.lock().and_then(|held| Ok((held, db.open_or_init()?)));
    let (_held, repo) = match opened {
        Ok(v) => v,
        Err(e) => {
            out.error = Some(format!("{e:#}"));
            return out;
        }
    };
    let r = match &t.requested {
        Requested::Tag(tag) => newer_tags(&repo, &url, tag, offline).map(|tags| {
            out.status = if tags.is_empty() {
                "up_to_date"
            } else {
                "newer_tags"
            };
            out.newer_tags = tags;
        }),
        Requested::Branch(b) => moved(
            &repo,
            &url,
            t,
            &format!("refs/heads/{b}"),
            offline,
            &mut out,
        ),
        _ => moved(&repo, &url, t, "HEAD", offline, &mut out),
    };
    if let Err(e) = r {
        out.status = "error";
        out.error = Some(format!("{e:#}"));
    }
    out
}

/// Where the moving ref `remote` is kept: kst's private namespace (`refs/kst/outdated/…`).
fn private_ref(remote: &str) -> String {
    format!("refs/kst/outdated/{}", remote.trim_start_matches("refs/"))
}

/// A branch or default source: fetch the moving ref, compare every item.
fn moved(
    repo: &Repository,
    url: &GitUrl,
    t: &Target,
    remote: &str,
    offline: bool,
    out: &mut JsonSource,
) -> anyhow::Result<()> {
    let local = private_ref(remote);
    let latest = if offline {
        // What the cache has: the last `outdated` fetch, else what sync last fetched.
        let sync_ref = match remote {
            "HEAD" => "refs/remotes/origin/HEAD".to_string(),
            r => format!(
                "refs/remotes/origin/{}",
                r.trim_start_matches("refs/heads/")
            ),
        };
        [local.as_str(), sync_ref.as_str()]
            .iter()
            .find_map(|r| repo.find_reference(r).ok()?.peel_to_commit().ok())
            .map(|c| c.id())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--offline: {remote} of {} is not in the cache; run `kst outdated` online",
                    url.canonical()
                )
            })?
    } else {
        crate::git::fetch_private(repo, url, remote, &local)?
    };
    out.latest = Some(latest.to_string());
    let ancestor =
        latest == t.commit || repo.graph_descendant_of(latest, t.commit).unwrap_or(false);
    out.status = if latest == t.commit {
        "up_to_date"
    } else if ancestor {
        "behind"
    } else {
        "rewritten"
    };
    for (kind, name, path) in &t.items {
        out.items.push(item(repo, t, latest, *kind, name, path));
    }
    Ok(())
}

/// The path of an item at a commit: as locked (skills: inside the repository), or under the
/// source's sub-dir (an MCP pack file may be recorded relative to it).
fn id_at(repo: &Repository, commit: Oid, t: &Target, path: &str) -> Option<Oid> {
    let direct = crate::git::path_id(repo, commit, path).ok().flatten();
    if direct.is_some() {
        return direct;
    }
    let sub = t.sub_dir.as_deref()?;
    crate::git::path_id(repo, commit, &crate::tree::join_rel(sub, path))
        .ok()
        .flatten()
}

fn item(
    repo: &Repository,
    t: &Target,
    latest: Oid,
    kind: Kind,
    name: &str,
    path: &str,
) -> JsonItem {
    let mut it = JsonItem {
        kind,
        name: name.to_string(),
        path: path.to_string(),
        status: "unknown",
        commits: Vec::new(),
        truncated: false,
    };
    // The item's path at the locked commit: the sub-dir form if that is where it was.
    let rel = if crate::git::path_id(repo, t.commit, path)
        .ok()
        .flatten()
        .is_some()
    {
        path.to_string()
    } else if let Some(sub) = t.sub_dir.as_deref() {
        crate::tree::join_rel(sub, path)
    } else {
        path.to_string()
    };
    let before = id_at(repo, t.commit, t, path);
    let after = crate::git::path_id(repo, latest, &rel).ok().flatten();
    it.status = match (before, after) {
        (_, None) => "removed",
        (b, a) if b == a => "up_to_date",
        _ => "changed",
    };
    if it.status == "up_to_date" {
        return it;
    }
    let (commits, truncated) = touching(repo, t.commit, latest, &rel);
    it.commits = commits;
    it.truncated = truncated;
    it
}

/// Commits reachable from `latest` but not from `locked` whose first-parent diff touches
/// `rel`, newest first.
fn touching(repo: &Repository, locked: Oid, latest: Oid, rel: &str) -> (Vec<JsonCommit>, bool) {
    let mut out = Vec::new();
    let Ok(mut walk) = repo.revwalk() else {
        return (out, false);
    };
    let _ = walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME);
    if walk.push(latest).is_err() {
        return (out, false);
    }
    let _ = walk.hide(locked);
    for oid in walk.flatten() {
        let Ok(c) = repo.find_commit(oid) else {
            continue;
        };
        let here = crate::git::path_id(repo, oid, rel).ok().flatten();
        let parent = c
            .parent_id(0)
            .ok()
            .and_then(|p| crate::git::path_id(repo, p, rel).ok().flatten());
        if here == parent {
            continue;
        }
        if out.len() == MAX_COMMITS {
            return (out, true);
        }
        out.push(JsonCommit {
            id: oid.to_string()[..7].to_string(),
            date: iso_date(c.time().seconds()),
            subject: crate::escape::escape_line(
                c.summary_bytes()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .as_ref(),
            ),
        });
    }
    (out, false)
}

/// A tag source: the tags newer than `locked` by version order, newest first.
fn newer_tags(
    repo: &Repository,
    url: &GitUrl,
    locked: &str,
    offline: bool,
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = if offline {
        repo.references_glob("refs/tags/*")?
            .flatten()
            .filter_map(|r| r.name().ok().map(str::to_string))
            .collect()
    } else {
        crate::git::list_remote(repo, url)?
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let Some(mine) = Version::parse(locked) else {
        return Ok(Vec::new());
    };
    let mut newer: Vec<(Version, String)> = names
        .iter()
        .filter_map(|n| n.strip_prefix("refs/tags/"))
        .filter(|n| !n.ends_with("^{}"))
        .filter_map(|n| Version::parse(n).map(|v| (v, n.to_string())))
        .filter(|(v, _)| v.prefix == mine.prefix && v.cmp(&mine) == Ordering::Greater)
        .collect();
    newer.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    newer.dedup_by(|a, b| a.1 == b.1);
    Ok(newer
        .into_iter()
        .map(|(_, n)| crate::escape::escape_line(&n))
        .collect())
}

/// A semver-ish version: a non-numeric prefix (`v`, `release-`), dot-separated numbers, and an
/// optional pre-release after `-` (which sorts before the release).
#[derive(Debug)]
struct Version {
    prefix: String,
    numbers: Vec<u64>,
    pre: Option<String>,
}

impl Version {
    fn parse(tag: &str) -> Option<Version> {
        let start = tag.find(|c: char| c.is_ascii_digit())?;
        let (prefix, rest) = tag.split_at(start);
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (rest, None),
        };
        let core = core.split('+').next().unwrap_or(core);
        let numbers: Option<Vec<u64>> = core.split('.').map(|n| n.parse().ok()).collect();
        Some(Version {
            prefix: prefix.to_string(),
            numbers: numbers?,
            pre,
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.numbers.len().max(other.numbers.len());
        for i in 0..n {
            let (a, b) = (
                self.numbers.get(i).copied().unwrap_or(0),
                other.numbers.get(i).copied().unwrap_or(0),
            );
            match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => pre_cmp(a, b),
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pre-releases compared field by field, numbers numerically (`rc.2` < `rc.10`).
fn pre_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso_date(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn print_human(printer: &Printer, sources: &[JsonSource], offline: bool) {
    if offline {
        printer.line("--offline: as of the last fetch in the cache (not asked of the remotes)");
    }
    let mut behind = 0;
    for s in sources {
        let head = format!("{} ({})", s.url, s.requested);
        match s.status {
            "up_to_date" => {
                if printer.verbosity >= crate::report::Verbosity::Verbose {
                    printer.line(&format!("= {head}: up to date"));
                }
            }
            "pinned" => {
                if printer.verbosity >= crate::report::Verbosity::Verbose {
                    printer.line(&format!("= {head}: pinned to a commit"));
                }
            }
            "error" => printer.error(&format!(
                "{head}: {}",
                s.error.as_deref().unwrap_or("cannot be checked")
            )),
            "newer_tags" => {
                behind += 1;
                printer.line(&format!("~ {head}: newer tags {}", s.newer_tags.join(", ")));
            }
            _ => {
                behind += 1;
                printer.line(&format!(
                    "~ {head}: {} → {}{}",
                    &s.locked[..7],
                    s.latest.as_deref().map(|l| &l[..7]).unwrap_or("?"),
                    if s.status == "rewritten" {
                        " (history rewritten: the locked commit is not in it)"
                    } else {
                        ""
                    }
                ));
                for it in s.items.iter().filter(|i| i.status != "up_to_date") {
                    printer.line(&format!("    {} {} ({})", it.status, it.name, it.path));
                    for c in &it.commits {
                        printer.line(&format!("      {} {} {}", c.id, &c.date[..10], c.subject));
                    }
                    if it.truncated {
                        printer.line("      …");
                    }
                }
            }
        }
    }
    if behind == 0 {
        printer.line("Everything is up to date.");
    } else {
        printer.line(&format!(
            "{behind} source{} can be updated: `kst sync --update` moves branch and default pins; edit the tag in kasetto.yaml to move a tag",
            if behind == 1 { "" } else { "s" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_semver_ish() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("v1.10.0") > v("v1.9.3"));
        assert!(v("v2.0.0") > v("v2.0.0-rc.2"));
        assert!(v("v2.0.0-rc.10") > v("v2.0.0-rc.2"));
        assert!(v("1.2") == v("1.2.0"));
        assert!(Version::parse("latest").is_none());
        assert_eq!(v("release-3.1").prefix, "release-");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_date(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso_date(951_782_400), "2000-02-29T00:00:00Z");
    }
}
