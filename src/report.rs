//! What the user sees: human lines in the style of cargo/uv, or one JSON document (SPEC 12).
//!
//! Logic never prints; it hands results to a [`Printer`]. Human output goes to stderr (like
//! cargo), so stdout stays clean for `--json`. The JSON schema is documented in docs/json.md.

use serde::Serialize;

use std::io::Write;

use crate::item::{Action, Item, Kind, Reason};
use crate::mcp::McpPlan;
use crate::resolve::{FailedSource, ResolvedSource};

pub use crate::escape::{escape_controls, escape_controls_but_esc};

pub use crate::printer::{ColorChoice, Printer, Verbosity, clean, json_text};

fn symbol(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Added => ("+", "32"),
        Action::Updated | Action::Repaired => ("~", "33"),
        Action::Removed => ("-", "31"),
        Action::Broken => ("!", "31"),
        Action::Unchanged => ("=", "2"),
        Action::Skipped => ("*", "33"),
    }
}

fn short(c: &str) -> &str {
    &c[..c.len().min(7)]
}

/// Print the plan or the outcome of a sync, one line per change, for items of any kind.
pub fn print_items<X, D>(p: &Printer, items: &[Item<X, D>]) {
    for item in items {
        let action = item.action();
        if action == Action::Unchanged && p.verbosity < Verbosity::Verbose {
            continue;
        }
        let (sym, code) = symbol(action);
        let at = match &item.commit {
            Some(c) => format!("{}@{}", item.source, short(c)),
            None => item.source.clone(),
        };
        let word = match action {
            Action::Repaired => " (repaired)",
            Action::Skipped => " (skipped)",
            _ => "",
        };
        let dests: Vec<&str> = item
            .dests
            .iter()
            .filter(|d| d.action != Action::Unchanged || action == Action::Unchanged)
            .map(|d| d.target.rel.as_str())
            .collect();
        let arrow = if dests.is_empty() {
            String::new()
        } else {
            format!(" → {}", dests.join(", "))
        };
        // Every part is cleaned on its own (the colours are ours): names, sources and paths
        // came from outside.
        let line = format!(
            "{} {}{word} {}{}",
            p.paint(code, sym),
            clean(&format!("{}{}", item.kind.label(), item.name)),
            p.paint("2", &format!("({at})")),
            clean(&arrow)
        );
        let shown = if action == Action::Broken {
            // Broken lines must be seen even with -q.
            !p.json
        } else {
            !p.json && p.verbosity >= Verbosity::Normal
        };
        if shown {
            crate::printer::note_emitted();
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        if let Some(e) = item.first_error()
            && !p.json
        {
            crate::printer::note_emitted();
            let _ = writeln!(std::io::stderr(), "    {}", clean(e));
        }
        for w in &item.warnings {
            p.warn(&format!("{}: {w}", item.name));
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub added: usize,
    pub updated: usize,
    pub repaired: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub broken: usize,
    /// MCP servers left alone on purpose (conflict, modified locally, missing secret).
    pub skipped: usize,
    pub failed_sources: usize,
    pub duration_ms: u128,
    /// How many items of each kind the run covered (`{"skill": 3, "server": 2}`).
    pub kinds: std::collections::BTreeMap<Kind, usize>,
}

impl Summary {
    pub fn of(failed_sources: usize, duration: std::time::Duration) -> Summary {
        Summary {
            failed_sources,
            duration_ms: duration.as_millis(),
            ..Default::default()
        }
    }

    /// Count the items of one kind's plan.
    pub fn count<X, D>(&mut self, items: &[Item<X, D>]) {
        let s = self;
        for i in items {
            *s.kinds.entry(i.kind).or_default() += 1;
            match i.action() {
                Action::Added => s.added += 1,
                Action::Updated => s.updated += 1,
                Action::Repaired => s.repaired += 1,
                Action::Removed => s.removed += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Broken => s.broken += 1,
                Action::Skipped => s.skipped += 1,
            }
        }
    }

    pub fn ok(&self) -> bool {
        self.broken == 0 && self.failed_sources == 0
    }

    pub fn human(&self, dry_run: bool) -> String {
        let mut parts = Vec::new();
        for (n, w) in [
            (self.added, "added"),
            (self.updated, "updated"),
            (self.repaired, "repaired"),
            (self.removed, "removed"),
            (self.broken, "broken"),
            (self.skipped, "skipped"),
            (self.failed_sources, "sources failed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {w}"));
            }
        }
        // Each kind by its own name: "3 skills, 2 servers up to date".
        let mut kinds: Vec<String> = self.kinds.iter().map(|(k, n)| k.count(*n)).collect();
        if kinds.is_empty() {
            kinds.push(Kind::Skill.count(0));
        }
        let kinds = kinds.join(", ");
        let what = if parts.is_empty() {
            format!("{kinds} up to date")
        } else {
            format!("{} ({kinds})", parts.join(", "))
        };
        let secs = self.duration_ms as f64 / 1000.0;
        if dry_run {
            format!("Would sync: {what} (dry run, nothing written) in {secs:.2}s")
        } else {
            format!("Synced: {what} in {secs:.2}s")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON (docs/json.md). Field names are a stable interface: add, never rename.

#[derive(Serialize)]
pub struct JsonSource<'a> {
    pub url: &'a str,
    pub requested: String,
    pub sub_dir: Option<&'a str>,
    pub commit: Option<String>,
    pub fetch: Option<crate::pin::Fetch>,
    pub error: Option<&'a str>,
    pub warnings: &'a [String],
}

#[derive(Serialize)]
pub struct JsonDest<'a> {
    pub path: &'a str,
    pub action: Action,
    pub error: Option<&'a str>,
    /// MCP servers only: why the entry was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

#[derive(Serialize)]
pub struct JsonItem<'a> {
    pub kind: Kind,
    pub name: &'a str,
    pub source: &'a str,
    pub action: Action,
    pub commit: Option<&'a str>,
    pub tree: Option<&'a str>,
    /// Skills only: the SKILL.md frontmatter `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// MCP servers only: `sha256:` of the definition (placeholder form), as in the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<&'a str>,
    pub destinations: Vec<JsonDest<'a>>,
    pub error: Option<&'a str>,
    pub warnings: &'a [String],
}

#[derive(Serialize)]
pub struct JsonSync<'a> {
    pub schema: u32,
    pub command: &'static str,
    pub dry_run: bool,
    pub scope: &'static str,
    pub config: String,
    pub lock: String,
    pub lock_changed: bool,
    pub sources: Vec<JsonSource<'a>>,
    pub items: Vec<JsonItem<'a>>,
    pub summary: Summary,
}

impl<'a> JsonSource<'a> {
    /// A source that resolved, of any kind.
    pub fn resolved(
        url: &'a str,
        requested: &crate::request::Requested,
        sub_dir: Option<&'a str>,
        commit: Option<git2::Oid>,
        fetch: crate::pin::Fetch,
        warnings: &'a [String],
    ) -> Self {
        JsonSource {
            url,
            requested: requested.to_string(),
            sub_dir,
            commit: commit.map(|c| c.to_string()),
            fetch: Some(fetch),
            error: None,
            warnings,
        }
    }

    /// A source that failed as a whole, of any kind.
    pub fn failed(
        url: &'a str,
        requested: &crate::request::Requested,
        sub_dir: Option<&'a str>,
        error: &'a str,
    ) -> Self {
        JsonSource {
            url,
            requested: requested.to_string(),
            sub_dir,
            commit: None,
            fetch: None,
            error: Some(error),
            warnings: &[],
        }
    }
}

pub fn json_sources<'a>(
    resolved: &'a [ResolvedSource],
    failed: &'a [FailedSource],
) -> Vec<JsonSource<'a>> {
    let mut out: Vec<JsonSource> = resolved
        .iter()
        .map(|r| {
            let sub_dir = r.entry.sub_dir.as_deref();
            JsonSource::resolved(
                &r.url,
                &r.requested,
                sub_dir,
                r.commit,
                r.fetch,
                &r.warnings,
            )
        })
        .collect();
    out.extend(failed.iter().map(|f| {
        JsonSource::failed(
            &f.url,
            &f.entry.requested(),
            f.entry.sub_dir.as_deref(),
            &f.error,
        )
    }));
    out
}

/// Items of any kind as JSON.
pub fn json_items<X, D>(items: &[Item<X, D>]) -> Vec<JsonItem<'_>> {
    items
        .iter()
        .map(|i| JsonItem {
            kind: i.kind,
            name: &i.name,
            source: &i.source,
            action: i.action(),
            commit: i.commit.as_deref(),
            tree: i.tree.as_deref(),
            description: i.description.as_deref(),
            hash: i.hash.as_deref(),
            destinations: i
                .dests
                .iter()
                .map(|d| JsonDest {
                    path: &d.target.rel,
                    action: d.action,
                    error: d.error.as_deref(),
                    reason: d.reason,
                })
                .collect(),
            error: i.error.as_deref(),
            warnings: &i.warnings,
        })
        .collect()
}

/// A commands or instructions plan's sources as JSON, resolved then failed.
pub fn file_json_sources(plan: &crate::files::plan::FilePlan) -> Vec<JsonSource<'_>> {
    let mut out: Vec<JsonSource> = plan
        .resolved
        .iter()
        .map(|r| {
            let sub_dir = r.entry.sub_dir.as_deref();
            JsonSource::resolved(
                &r.url,
                &r.requested,
                sub_dir,
                r.commit,
                r.fetch,
                &r.warnings,
            )
        })
        .collect();
    out.extend(plan.failed.iter().map(|f| {
        JsonSource::failed(
            &f.url,
            &f.entry.requested(),
            f.entry.sub_dir.as_deref(),
            &f.error,
        )
    }));
    out
}

/// The failures and warnings of commands and instructions sources.
pub fn print_file_sources(p: &Printer, plans: &[crate::files::plan::FilePlan]) {
    for plan in plans {
        for f in &plan.failed {
            p.error(&f.error);
        }
        for r in &plan.resolved {
            for w in &r.warnings {
                p.warn(&format!("{}: {w}", r.url));
            }
        }
    }
}

/// The MCP plan's sources as JSON, resolved then failed.
pub fn mcp_json_sources(plan: &McpPlan) -> Vec<JsonSource<'_>> {
    let mut out: Vec<_> = plan
        .resolved
        .iter()
        .map(|r| {
            let (sub_dir, warnings) = (r.entry.sub_dir(), &r.selected.warnings);
            JsonSource::resolved(&r.url, &r.requested, sub_dir, r.commit, r.fetch, warnings)
        })
        .collect();
    out.extend(
        plan.failed
            .iter()
            .map(|f| JsonSource::failed(&f.url, &f.requested, f.entry.sub_dir(), &f.error)),
    );
    out
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn the_summary_names_each_kind() {
        let item = |kind, action| Item {
            kind,
            name: "x".into(),
            source: "s".into(),
            commit: None,
            tree: None,
            hash: None,
            description: None,
            dests: vec![crate::item::Dest::new(
                crate::item::Target {
                    abs: "/x".into(),
                    rel: "x".into(),
                },
                action,
            )],
            error: None,
            warnings: Vec::new(),
            extra: (),
        };
        let mut s = Summary::of(0, std::time::Duration::ZERO);
        s.count(&[
            item(Kind::Skill, Action::Unchanged),
            item(Kind::Skill, Action::Unchanged),
            item(Kind::Skill, Action::Unchanged),
        ]);
        s.count(&[item(Kind::Server, Action::Unchanged)]);
        assert_eq!(
            s.human(false),
            "Synced: 3 skills, 1 server up to date in 0.00s"
        );
        s.count(&[item(Kind::Server, Action::Added)]);
        assert_eq!(
            s.human(true),
            "Would sync: 1 added (3 skills, 2 servers) (dry run, nothing written) in 0.00s"
        );
        assert_eq!(s.kinds[&Kind::Server], 2);
    }

    #[test]
    fn controls_from_outside_become_visible_escapes() {
        let hostile = "a\u{1b}]52;c;QQ==\u{7}b\u{1b}[2J\r\u{9b}2J\u{9d}\u{7f}\u{0}z";
        assert_eq!(
            escape_controls(hostile),
            "a\\x1b]52;c;QQ==\\x07b\\x1b[2J\\x0d\\u{9b}2J\\u{9d}\\x7f\\x00z"
        );
        // Our own line breaks and tabs stay; plain text is not copied.
        assert!(matches!(
            escape_controls("two\nlines\tand é ✓"),
            std::borrow::Cow::Borrowed("two\nlines\tand é ✓")
        ));
        // The log writer keeps tracing-subscriber's own colours (it escapes ESC itself).
        assert_eq!(
            escape_controls_but_esc("\u{1b}[33mWARN\u{1b}[0m x\ry\u{9b}"),
            "\u{1b}[33mWARN\u{1b}[0m x\\x0dy\\u{9b}"
        );
    }

    #[test]
    fn json_text_escapes_what_serde_leaves_raw_and_stays_valid() {
        let doc = serde_json::json!({ "d": "clip \u{1b}]52;c;QQ==\u{7} csi \u{9b}2J del \u{7f}" });
        let text = json_text(&doc);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control in {text:?}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }
}
