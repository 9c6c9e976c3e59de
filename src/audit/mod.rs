//! `kst audit` (SPEC 16): an offline security review of what the lock says is installed.
//!
//! The flow: [`scan`] turns the lock into a list of [`Item`]s — an item kind, its name, where it
//! is installed, and the files (path + bytes) or MCP definitions (placeholder form) to look at —
//! [`rules`] turns each item into [`Finding`]s, [`output`] prints them (text, JSON, SARIF), and
//! [`Gate`] decides whether a run fails. [`osv`] is the one online check (`--online`). The
//! `audit:` config keys are the model's ([`crate::config::audit`]).
//!
//! A new kind of item (commands, instructions) plugs in as one more producer of [`Item`]s in
//! [`scan`]: the rules only see a kind, a name, paths and bytes.
//!
//! What this module must never do: print, store or send the content of a file or a secret. A
//! finding says the rule, the file, the line and a one-line reason written by kst; anything in
//! a reason that came from a file (a flag name, a package name) is short and escaped. MCP
//! definitions are read in placeholder form, never with a resolved secret value.

pub mod osv;
pub mod output;
pub mod rules;
pub mod scan;

use serde::Serialize;

/// How bad a finding is: `info` < `low` < `medium` < `high` < `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

pub use crate::config::audit::Threshold;

impl Threshold {
    pub fn severity(self) -> Severity {
        match self {
            Threshold::Low => Severity::Low,
            Threshold::Medium => Severity::Medium,
            Threshold::High => Severity::High,
            Threshold::Critical => Severity::Critical,
        }
    }
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Skill,
    Command,
    Instruction,
    Mcp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::Command => "command",
            Kind::Instruction => "instruction",
            Kind::Mcp => "mcp",
        }
    }
}

/// One file of an item: its installed path (relative to the scope root, `/`-separated), and
/// what the rules look at.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub enum Content {
    /// A file's bytes (at most [`scan::SCAN_CAP`] of them; `truncated` when there were more).
    File {
        bytes: Vec<u8>,
        executable: bool,
        truncated: bool,
    },
    /// An MCP server definition in the pack's shape, placeholders unresolved; `line` is where
    /// its entry starts in the settings file (1 when unknown).
    Server {
        def: serde_json::Map<String, serde_json::Value>,
        line: usize,
    },
}

/// One installed item and what to look at.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    /// The lock's source URL (canonical, no credentials).
    pub source: String,
    /// Where it is installed, relative to the scope root.
    pub installed: Vec<String>,
    pub entries: Vec<Entry>,
    /// Why (part of) it could not be checked; such an item is *unverified*, never clean.
    pub unverified: Vec<String>,
}

/// One finding: a rule, where, and a one-line reason written by kst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// The installed file, relative to the scope root.
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// The audit of one item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    pub kind: Kind,
    pub name: String,
    pub source: String,
    pub installed: Vec<String>,
    /// The worst finding's severity, if any.
    pub severity: Option<Severity>,
    /// `clean`, `findings` or `unverified` (could not be fully checked, with or without
    /// findings).
    pub status: &'static str,
    pub unverified: Vec<String>,
    pub findings: Vec<Finding>,
}

impl ItemReport {
    pub fn of(item: &Item, mut findings: Vec<Finding>) -> ItemReport {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.file.cmp(&b.file))
                .then(a.line.cmp(&b.line))
                .then(a.rule.cmp(b.rule))
        });
        findings.dedup();
        let severity = findings.iter().map(|f| f.severity).max();
        let status = if !item.unverified.is_empty() {
            "unverified"
        } else if findings.is_empty() {
            "clean"
        } else {
            "findings"
        };
        ItemReport {
            kind: item.kind,
            name: item.name.clone(),
            source: item.source.clone(),
            installed: item.installed.clone(),
            severity,
            status,
            unverified: item.unverified.clone(),
            findings,
        }
    }
}

/// Scan one item with every offline rule.
pub fn audit_item(item: &Item) -> ItemReport {
    let mut findings = Vec::new();
    for e in &item.entries {
        findings.extend(rules::check_entry(item.kind, e));
    }
    ItemReport::of(item, findings)
}

/// Items worst first (then by kind and name), so the text and JSON read top-down.
pub fn sort_reports(reports: &mut [ItemReport]) {
    reports.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| {
                (a.status == "unverified")
                    .cmp(&(b.status == "unverified"))
                    .reverse()
            })
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// Counts per severity, for summaries.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub items: usize,
    pub findings: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub unverified: usize,
}

impl Summary {
    pub fn of(reports: &[ItemReport]) -> Summary {
        let mut s = Summary {
            items: reports.len(),
            ..Default::default()
        };
        for r in reports {
            if r.status == "unverified" {
                s.unverified += 1;
            }
            for f in &r.findings {
                s.findings += 1;
                *match f.severity {
                    Severity::Critical => &mut s.critical,
                    Severity::High => &mut s.high,
                    Severity::Medium => &mut s.medium,
                    Severity::Low => &mut s.low,
                    Severity::Info => &mut s.info,
                } += 1;
            }
        }
        s
    }
}

/// The gate (SPEC 16): findings at or above `level` fail; with `fail_on_unverified`, so does an
/// item that could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub level: Option<Severity>,
    pub fail_on_unverified: bool,
}

/// What the gate decided, for output.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// The threshold (`null` when only `fail-on-unverified` is set).
    pub level: Option<Severity>,
    pub fail_on_unverified: bool,
    /// Findings at or above the threshold.
    pub violations: usize,
    pub unverified: usize,
    pub passed: bool,
}

impl Gate {
    pub fn judge(&self, reports: &[ItemReport]) -> GateResult {
        let violations = match self.level {
            None => 0,
            Some(l) => reports
                .iter()
                .flat_map(|r| &r.findings)
                .filter(|f| f.severity >= l)
                .count(),
        };
        let unverified = reports.iter().filter(|r| r.status == "unverified").count();
        GateResult {
            level: self.level,
            fail_on_unverified: self.fail_on_unverified,
            violations,
            unverified,
            passed: violations == 0 && !(self.fail_on_unverified && unverified > 0),
        }
    }

    /// Whether the gate does anything at all.
    pub fn active(&self) -> bool {
        self.level.is_some() || self.fail_on_unverified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sev: &[Severity], unverified: bool) -> ItemReport {
        let item = Item {
            kind: Kind::Skill,
            name: "x".into(),
            source: "s".into(),
            installed: vec![],
            entries: vec![],
            unverified: if unverified {
                vec!["why".into()]
            } else {
                vec![]
            },
        };
        ItemReport::of(
            &item,
            sev.iter()
                .enumerate()
                .map(|(i, s)| Finding {
                    rule: "r",
                    severity: *s,
                    file: "f".into(),
                    line: i + 1,
                    reason: "why".into(),
                })
                .collect(),
        )
    }

    #[test]
    fn the_gate_fails_at_or_above_its_level_and_on_unverified_only_when_asked() {
        let r = vec![report(&[Severity::Medium, Severity::Low], false)];
        let gate = |l: Severity| Gate {
            level: Some(l),
            fail_on_unverified: false,
        };
        assert!(gate(Severity::High).judge(&r).passed);
        assert!(!gate(Severity::Medium).judge(&r).passed);
        assert_eq!(gate(Severity::Low).judge(&r).violations, 2);
        let u = vec![report(&[], true)];
        assert!(gate(Severity::Low).judge(&u).passed);
        let strict = Gate {
            level: None,
            fail_on_unverified: true,
        };
        assert!(!strict.judge(&u).passed);
        assert!(strict.judge(&r).passed);
    }

    #[test]
    fn findings_are_worst_first_and_status_never_clean_when_unverified() {
        let r = report(
            &[Severity::Low, Severity::Critical, Severity::Medium],
            false,
        );
        let order: Vec<Severity> = r.findings.iter().map(|f| f.severity).collect();
        assert_eq!(order, [Severity::Critical, Severity::Medium, Severity::Low]);
        assert_eq!(r.severity, Some(Severity::Critical));
        assert_eq!(report(&[], true).status, "unverified");
        assert_eq!(report(&[], false).status, "clean");
    }
}
