//! `kst audit [NAME…]` (SPEC 16): review what the lock says is installed, offline unless
//! `--online`; text, `--json` or `--sarif`; `--fail-on LEVEL` / `--fail-on-unverified` make it a
//! gate. [`gate`] is the same review run by `kst sync --audit[=LEVEL]` / `audit.fail-on`.

use clap::Args;

use crate::audit::{self, Gate, GateResult, ItemReport, Summary, Threshold, output};
use crate::error::{Error, Outcome, Result};
use crate::lock::Lock;
use crate::report::Printer;
use crate::workspace::{Common, Workspace};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit only these items (skill or MCP server names); default: everything installed
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Print a SARIF 2.1.0 log on stdout (for code-scanning tools)
    #[arg(long)]
    pub sarif: bool,
    /// Exit 1 if a finding is at or above LEVEL
    #[arg(long, value_enum, ignore_case = true, value_name = "LEVEL")]
    pub fail_on: Option<Threshold>,
    /// Exit 1 if an item could not be checked
    #[arg(long)]
    pub fail_on_unverified: bool,
    /// Also ask OSV about the exact npm/PyPI packages MCP servers launch (KASETTO_OSV_URL)
    #[arg(long)]
    pub online: bool,
}

/// Audit `lock`'s items in this workspace: reports worst first. `online` adds the OSV check.
pub fn review(
    ctx: &Workspace,
    lock: &Lock,
    names: &[String],
    online: bool,
) -> Result<Vec<ItemReport>> {
    let (mut items, missing) = audit::scan::items(ctx, lock, names);
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "no installed skill or MCP server is named {}; `kst list` shows what is installed",
            missing
                .iter()
                .map(|n| format!("{:?}", crate::escape::escape_line(n)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let extra = if online {
        audit::osv::check(&mut items)
    } else {
        Vec::new()
    };
    let mut reports: Vec<ItemReport> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut findings = audit::audit_item(item).findings;
            findings.extend(
                extra
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, f)| f.clone()),
            );
            ItemReport::of(item, findings)
        })
        .collect();
    audit::sort_reports(&mut reports);
    Ok(reports)
}

pub fn run(common: &Common, args: AuditArgs, printer: &Printer) -> Result<()> {
    if args.sarif && printer.json {
        return Err(Error::usage(
            "--json and --sarif are two output formats; pick one",
        ));
    }
    if args.online && common.offline {
        return Err(Error::usage(
            "--online asks OSV over the network, and --offline (or KASETTO_OFFLINE) forbids it; drop one",
        ));
    }
    let ctx = Workspace::load(
        common,
        crate::trust::Access::Reads {
            network: args.online,
        },
    )?;
    let reports = review(&ctx, &ctx.old_lock, &args.names, args.online)?;
    let summary = Summary::of(&reports);
    let gate = Gate {
        level: args.fail_on.map(Threshold::severity),
        fail_on_unverified: args.fail_on_unverified,
    };
    let verdict = gate.active().then(|| gate.judge(&reports));
    if args.sarif {
        printer.json(&output::sarif(&ctx.scope.root, &reports));
    } else if printer.json {
        printer.json(&output::json_doc(
            ctx.scope.name(),
            &ctx.scope.lock_path,
            args.online,
            &reports,
            &summary,
            verdict.as_ref(),
        ));
    } else {
        output::print_text(printer, &reports, &summary);
        if let Some(v) = &verdict {
            output::print_gate(printer, v);
        }
    }
    match verdict {
        Some(v) if !v.passed => Err(Error::Reported(Outcome::Problems)),
        _ => Ok(()),
    }
}

/// The gate of `kst sync`: `--audit[=LEVEL]` over `audit.fail-on`; `--fail-on-unverified` or
/// `audit.fail-on-unverified`; `--no-audit` turns it off. `None` when no gate is asked for.
pub fn sync_gate(
    ctx: &Workspace,
    audit_flag: Option<Threshold>,
    no_audit: bool,
    fail_on_unverified: bool,
) -> Option<Gate> {
    if no_audit {
        return None;
    }
    let level = audit_flag.or(ctx.config.audit.fail_on);
    // As in Kasetto: fail-on-unverified only acts when a level turns the gate on.
    level.map(|l| Gate {
        level: Some(l.severity()),
        fail_on_unverified: fail_on_unverified
            || ctx.config.audit.fail_on_unverified.unwrap_or(false),
    })
}

/// What the gate of a sync decided.
pub struct GateRun {
    pub verdict: GateResult,
    /// For sync's `--json`: the verdict, the findings at or above the level, the unverified items.
    pub doc: serde_json::Value,
    /// The items that fail the gate, with only their findings at or above the level.
    pub failing: Vec<ItemReport>,
}

impl GateRun {
    /// Tell people why the gate failed (nothing when it passed).
    pub fn print(&self, printer: &Printer) {
        if !self.verdict.passed {
            output::print_text(printer, &self.failing, &Summary::of(&self.failing));
            output::print_gate(printer, &self.verdict);
        }
    }
}

/// Run the gate over the lock a sync just wrote.
pub fn gate(ctx: &Workspace, lock: &Lock, gate: Gate) -> Result<GateRun> {
    let reports = review(ctx, lock, &[], false)?;
    let verdict = gate.judge(&reports);
    let level = gate.level.unwrap_or(audit::Severity::Critical);
    let violating: Vec<serde_json::Value> = reports
        .iter()
        .flat_map(|r| {
            r.findings
                .iter()
                .filter(|f| f.severity >= level)
                .map(move |f| {
                    serde_json::json!({
                        "kind": r.kind, "name": r.name, "source": r.source,
                        "rule": f.rule, "severity": f.severity, "file": f.file,
                        "line": f.line, "reason": f.reason,
                    })
                })
        })
        .collect();
    let unverified: Vec<serde_json::Value> = reports
        .iter()
        .filter(|r| r.status == "unverified")
        .map(|r| serde_json::json!({"kind": r.kind, "name": r.name, "source": r.source, "why": r.unverified}))
        .collect();
    let mut doc = serde_json::to_value(&verdict).unwrap_or_default();
    doc["findings"] = serde_json::Value::Array(violating);
    doc["unverified_items"] = serde_json::Value::Array(unverified);
    let failing: Vec<ItemReport> = reports
        .into_iter()
        .filter_map(|mut r| {
            r.findings.retain(|f| f.severity >= level);
            let keep =
                !r.findings.is_empty() || (gate.fail_on_unverified && r.status == "unverified");
            keep.then_some(r)
        })
        .collect();
    Ok(GateRun {
        verdict,
        doc,
        failing,
    })
}
