//! `kst audit`'s three outputs: text for people (grouped per item, worst first), one JSON
//! document (docs/json.md), and SARIF 2.1.0 for code-scanning tools (GitHub code scanning
//! loads it). Every string that came from outside (names, paths, reasons quoting a flag) is
//! escaped by the printer's sinks; reasons never hold file content.

use std::path::Path;

use serde_json::{Value, json};

use super::rules::{RULES, rule};
use super::{GateResult, ItemReport, Severity, Summary};
use crate::printer::{Printer, Verbosity};

fn paint(printer: &Printer, sev: Severity) -> String {
    let code = match sev {
        Severity::Critical | Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low | Severity::Info => "36",
    };
    printer.paint(code, &format!("{:<8}", sev.name()))
}

/// The human report: per item with findings (or unverified), worst first; clean items with -v.
pub fn print_text(printer: &Printer, reports: &[ItemReport], summary: &Summary) {
    for r in reports {
        let head = format!(
            "{} {} ({})",
            r.kind.name(),
            r.name,
            r.installed.first().map(String::as_str).unwrap_or("-")
        );
        match (r.severity, r.status) {
            (None, "clean") => {
                if printer.verbosity >= Verbosity::Verbose {
                    printer.line(&format!("= {head}: clean"));
                }
                continue;
            }
            (Some(s), _) => printer.line(&format!("{} {head}", paint(printer, s))),
            (None, _) => printer.line(&format!("{:<8} {head}", "?")),
        }
        for f in &r.findings {
            printer.line(&format!(
                "    {} {}:{}  {} [{}]",
                paint(printer, f.severity),
                f.file,
                f.line,
                f.reason,
                f.rule
            ));
        }
        for u in &r.unverified {
            printer.line(&format!("    unverified {u}"));
        }
    }
    let counts: Vec<String> = [
        (summary.critical, "critical"),
        (summary.high, "high"),
        (summary.medium, "medium"),
        (summary.low, "low"),
        (summary.info, "info"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, s)| format!("{n} {s}"))
    .collect();
    let mut line = format!(
        "Audited {} item{}: {}",
        summary.items,
        if summary.items == 1 { "" } else { "s" },
        if counts.is_empty() {
            "no findings".to_string()
        } else {
            format!(
                "{} finding{} ({})",
                summary.findings,
                if summary.findings == 1 { "" } else { "s" },
                counts.join(", ")
            )
        }
    );
    if summary.unverified > 0 {
        line.push_str(&format!(
            "; {} unverified (not clean: could not be checked)",
            summary.unverified
        ));
    }
    printer.line(&line);
}

/// The gate's verdict, for people.
pub fn print_gate(printer: &Printer, gate: &GateResult) {
    if gate.passed {
        return;
    }
    let mut why = Vec::new();
    if let Some(l) = gate.level
        && gate.violations > 0
    {
        why.push(format!(
            "{} finding{} at or above {}",
            gate.violations,
            if gate.violations == 1 { "" } else { "s" },
            l.name()
        ));
    }
    if gate.fail_on_unverified && gate.unverified > 0 {
        why.push(format!(
            "{} unverified item{} (fail-on-unverified)",
            gate.unverified,
            if gate.unverified == 1 { "" } else { "s" }
        ));
    }
    printer.error(&format!(
        "audit gate failed: {}; see `kst audit` for details",
        why.join(" and ")
    ));
}

/// The JSON document of `kst audit --json` (docs/json.md).
pub fn json_doc(
    scope: &str,
    lock: &Path,
    online: bool,
    reports: &[ItemReport],
    summary: &Summary,
    gate: Option<&GateResult>,
) -> Value {
    json!({
        "schema": 1,
        "command": "audit",
        "scope": scope,
        "lock": lock.display().to_string(),
        "online": online,
        "items": reports,
        "summary": summary,
        "gate": gate,
    })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning ranks by `security-severity` (a CVSS-like score).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A relative path as a URI reference: `/`-separated, every byte outside the unreserved set and
/// `/` percent-encoded.
pub fn uri_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF 2.1.0 log: one run, kst as the tool with every rule (and its help text), one
/// result per finding located at the installed file (relative to the scope root, given as the
/// `SCOPEROOT` base) and line.
pub fn sarif(scope_root: &Path, reports: &[ItemReport]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.short },
                "fullDescription": { "text": r.help },
                "help": { "text": r.help, "markdown": r.help },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": {
                    "security-severity": security_severity(r.severity),
                    "tags": ["security"],
                },
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in reports {
        for f in &r.findings {
            let index = RULES.iter().position(|x| x.id == f.rule).unwrap_or(0);
            let rel = f.file.trim_start_matches('/');
            let absolute = Path::new(&f.file).is_absolute();
            let mut loc = json!({ "uri": uri_path(if absolute { &f.file } else { rel }) });
            if absolute {
                loc["uri"] = json!(format!("file://{}", uri_path(&f.file)));
            } else {
                loc["uriBaseId"] = json!("SCOPEROOT");
            }
            results.push(json!({
                "ruleId": rule(f.rule).id,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{} {} {}: {}", r.kind.name(), r.name, f.severity.name(), f.reason) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": loc,
                        "region": { "startLine": f.line.max(1) },
                    }
                }],
                "properties": {
                    "severity": f.severity.name(),
                    "security-severity": security_severity(f.severity),
                    "item": { "kind": r.kind.name(), "name": r.name, "source": r.source },
                },
            }));
        }
    }
    let root = uri_path(&scope_root.display().to_string());
    let root = if root.ends_with('/') {
        root
    } else {
        format!("{root}/")
    };
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "kst",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "originalUriBaseIds": {
                "SCOPEROOT": { "uri": format!("file://{root}") }
            },
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Finding, Item, Kind};

    fn one(file: &str) -> Vec<ItemReport> {
        let item = Item {
            kind: Kind::Skill,
            name: "s".into(),
            source: "./pack".into(),
            installed: vec![],
            entries: vec![],
            unverified: vec![],
        };
        vec![ItemReport::of(
            &item,
            vec![Finding {
                rule: "pipe-to-shell",
                severity: Severity::High,
                file: file.into(),
                line: 4,
                reason: "r".into(),
            }],
        )]
    }

    #[test]
    fn sarif_locations_are_encoded_uris_relative_to_the_scope_root_or_absolute() {
        assert_eq!(uri_path("a b/ü#x.md"), "a%20b/%C3%BC%23x.md");
        let s = sarif(Path::new("/home/me"), &one(".claude/skills/s/a b.sh"));
        let run = &s["runs"][0];
        assert_eq!(
            run["originalUriBaseIds"]["SCOPEROOT"]["uri"],
            "file:///home/me/"
        );
        let loc = &run["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], ".claude/skills/s/a%20b.sh");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "SCOPEROOT");
        assert_eq!(loc["region"]["startLine"], 4);
        assert_eq!(run["results"][0]["level"], "error");
        // A destination outside the scope root is recorded absolute in the lock.
        let s = sarif(Path::new("/home/me"), &one("/srv/skills/s/i.sh"));
        let loc = &s["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "file:///srv/skills/s/i.sh");
        assert!(loc["artifactLocation"].get("uriBaseId").is_none());
    }
}
