//! `kst sync`: config → resolve → plan → apply → lock, for every kind, and the report.

use std::time::Instant;

use anyhow::anyhow;
use clap::Args;

use crate::error::{Error, Outcome, Result};
use crate::pipeline::{self, SyncOptions};
use crate::plan::Action;
use crate::report::{self, Printer, Summary};
use crate::workspace::{Common, Workspace};

#[derive(Debug, Default, Args)]
pub struct SyncArgs {
    /// Re-resolve branch and default sources (all, or those providing NAME) and move their pins
    #[arg(short, long, num_args = 0.., value_name = "NAME", conflicts_with_all = ["locked", "frozen"])]
    pub update: Option<Vec<String>>,
    /// Fail if the lock would change (installs exactly the locked commits)
    #[arg(long)]
    pub locked: bool,
    /// --locked and --offline
    #[arg(long)]
    pub frozen: bool,
    /// Replace folders at destinations that kst did not install
    #[arg(long)]
    pub force: bool,
    /// Skip MCP servers whose ${kst_NAME} secrets are not set, instead of failing their pack
    #[arg(long)]
    pub allow_missing_secrets: bool,
    /// After syncing, audit what is installed; a finding at or above LEVEL (default high) exits 1
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "high", ignore_case = true, value_enum, conflicts_with = "no_audit")]
    pub audit: Option<crate::audit::Threshold>,
    /// Skip the audit gate even if `audit.fail-on` is configured
    #[arg(long)]
    pub no_audit: bool,
    /// With the audit gate on: also fail when an item could not be checked
    #[arg(long)]
    pub fail_on_unverified: bool,
    /// Take pin moves that add capability (needed with `audit.review-updates: true`)
    #[arg(long)]
    pub accept: bool,
}

/// `kst sync`: make every destination match the config and the lock, then record the lock.
pub fn run(mut common: Common, args: SyncArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    if args.frozen {
        common.offline = true;
    }
    // The whole-run memo (runmemo.rs): nothing it witnesses changed since a sync found
    // everything up to date, so this one would too.
    let memo = memo_key(&common, &args, printer);
    if let Some(hit) = memo.as_ref().and_then(crate::runmemo::check) {
        return replay(hit, &common, printer, started);
    }
    let opts = SyncOptions {
        update: args.update,
        locked: args.locked || args.frozen,
        force: args.force,
        allow_missing_secrets: args.allow_missing_secrets,
        accept: args.accept,
    };
    let audit = (args.audit, args.no_audit, args.fail_on_unverified);
    let recording = memo.and_then(crate::runmemo::Recording::begin);
    sync_as(
        "sync",
        &common,
        &opts,
        audit,
        printer,
        recording,
        |_| Ok(()),
    )
}

/// The memo's key for this invocation; None for one the memo never answers: `--update` moves
/// pins, `--json` and `-v` print every item, `--audit` reads what is installed.
fn memo_key(common: &Common, args: &SyncArgs, printer: &Printer) -> Option<crate::runmemo::Key> {
    if args.update.is_some()
        || args.audit.is_some()
        || printer.json
        || printer.verbosity > crate::printer::Verbosity::Normal
    {
        return None;
    }
    crate::runmemo::Key::of(&format!("{common:?} {args:?} {:?}", printer.verbosity))
}

/// Say what the recorded run said (its summary, with this run's time), and record the run for
/// `kst doctor` as a full one does.
fn replay(
    hit: crate::runmemo::Hit,
    common: &Common,
    printer: &Printer,
    started: Instant,
) -> Result<()> {
    let mut summary = Summary::of(0, started.elapsed());
    summary.unchanged = hit.counts.unchanged;
    summary.kinds = hit.counts.kinds;
    printer.line(&summary.human(common.dry_run));
    if !common.dry_run {
        crate::machine::record_last_sync(&crate::machine::LastSync {
            command: "sync".to_string(),
            scope: hit.scope,
            lock: hit.lock,
            finished: crate::machine::now(),
            ok: true,
            summary: serde_json::to_value(&summary).unwrap_or_default(),
        });
    }
    Ok(())
}

/// The sync pipeline for `command`, on the workspace as `prepare` leaves it (run under the
/// scope's lock; an error stops the run before anything is written): `kst clean` empties the
/// config's entries, so pruning is exactly what a sync does to an entry taken out.
pub(crate) fn sync_as(
    command: &'static str,
    common: &Common,
    opts: &SyncOptions,
    audit: (Option<crate::audit::Threshold>, bool, bool),
    printer: &Printer,
    recording: Option<crate::runmemo::Recording>,
    prepare: impl FnOnce(&mut Workspace) -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Workspace::load(common, crate::trust::Access::Writes)?;
    let gate = crate::commands::audit::sync_gate(&ctx, audit.0, audit.1, audit.2);
    let _guard = ctx.exclusive(printer)?;
    if let Some(k) = ctx.kasetto.as_ref().filter(|_| opts.locked) {
        return Err(k.refused("--locked"));
    }
    prepare(&mut ctx)?;
    if opts.locked {
        // Entries the lock does not know would have to be resolved: that is drift, found
        // before any network use.
        let missing = pipeline::unlocked(&ctx);
        if !missing.is_empty() {
            return Err(locked_error(&ctx, &missing));
        }
    }
    let (resolved, failed, mut plan) =
        pipeline::resolve_and_plan(&ctx, opts, common.offline, printer, opts.force)?;
    let mut mcp_plan = pipeline::plan_mcp(
        &ctx,
        &opts.update,
        common.offline,
        if opts.allow_missing_secrets {
            crate::mcp::SecretPolicy::AllowMissing
        } else {
            crate::mcp::SecretPolicy::Require
        },
    )?;
    plan.lock.mcps = mcp_plan.lock.clone();
    let mut file_plans = pipeline::plan_files(&ctx, &opts.update, common.offline, opts.force)?;
    set_file_sections(&mut plan.lock, &mut file_plans);
    if let Some(k) = &ctx.kasetto {
        k.explain_skills(&mut plan.items);
        k.explain_servers(&mut mcp_plan.items);
        k.explain_files(crate::item::Kind::Command, &mut file_plans[0].items);
        k.explain_files(crate::item::Kind::Instruction, &mut file_plans[1].items);
    }

    if opts.locked {
        let drift = ctx.old_lock.drift(&plan.lock);
        if !drift.is_empty() {
            // A skill that cannot be installed (a conflict at its destination, say) also
            // changes the lock; say why first, so the diagnosis is not "the lock is stale".
            let mut why: Vec<String> = plan
                .items
                .iter()
                .filter(|i| i.action() == Action::Broken)
                .filter_map(|i| {
                    i.error
                        .clone()
                        .or_else(|| i.dests.iter().find_map(|d| d.error.clone()))
                })
                .collect();
            why.extend(drift);
            return Err(locked_error(&ctx, &why));
        }
    }

    for f in &failed {
        printer.error(&f.error);
    }
    for r in &resolved {
        for w in &r.warnings {
            printer.warn(&format!("{}: {w}", r.url));
        }
    }
    for f in &mcp_plan.failed {
        printer.error(&f.error);
    }
    for r in &mcp_plan.resolved {
        for w in &r.selected.warnings {
            printer.warn(&format!("{}: {w}", r.url));
        }
    }
    report::print_file_sources(printer, &file_plans);

    // Update review (SPEC 16): what each moved pin adds, decided from the plan before anything
    // is applied, so a refused run installs nothing and leaves the lock as it was.
    let review = crate::audit::review::UpdateReview::decide(&ctx, &plan.lock, opts.accept);
    if review.refused {
        if printer.json {
            printer.json(&serde_json::json!({
                "schema": 1,
                "command": command,
                "dry_run": common.dry_run,
                "scope": ctx.scope.name(),
                "lock": ctx.scope.lock_path.display().to_string(),
                "lock_changed": false,
                "error": review.refusal(),
                "review": review.json(),
            }));
        } else {
            review.print(printer);
        }
        return Err(Error::Reported(Outcome::Problems));
    }

    if !common.dry_run {
        pipeline::apply_skills(&mut plan, &resolved, &ctx.scope, &ctx.old_lock);
        crate::mcp::apply::apply(&mut mcp_plan);
        plan.lock.mcps = mcp_plan.lock.clone();
        // A section no step of the plan touched is already in the lock as planned.
        if crate::files::apply::apply(&mut file_plans[0], &ctx.scope) {
            plan.lock.commands = std::mem::take(&mut file_plans[0].lock);
        }
        if crate::files::apply::apply(&mut file_plans[1], &ctx.scope) {
            plan.lock.instructions = std::mem::take(&mut file_plans[1].lock);
        }
    }
    // Equal values serialise equally: the (costly) text comparison is for an old lock that
    // parsed differently but reads the same, e.g. one not in normal order.
    let lock_changed = (plan.lock != ctx.old_lock && plan.lock.to_yaml() != ctx.old_lock.to_yaml())
        || !ctx.scope.lock_path.exists()
        || ctx.kasetto.is_some();
    if !common.dry_run && lock_changed && (!plan.lock.is_empty() || ctx.scope.lock_path.exists()) {
        crate::failpoint::hit("sync-before-lock");
        if let Some(k) = &ctx.kasetto {
            k.backup()?;
        }
        plan.lock.write(&ctx.scope.lock_path)?;
    }
    if let Some(k) = &ctx.kasetto {
        for l in k.summary(common.dry_run) {
            printer.line(&l);
        }
    }

    let file_failures: usize = file_plans.iter().map(|f| f.failed.len()).sum();
    let mut summary = Summary::of(
        failed.len() + mcp_plan.failed.len() + file_failures,
        started.elapsed(),
    );
    summary.count(&plan.items);
    summary.count(&mcp_plan.items);
    for fp in &file_plans {
        summary.count(&fp.items);
    }
    // The audit gate (SPEC 16) looks at what is installed now: after the lock is written, so
    // the lock and the files are consistent whatever it decides. A dry run installs nothing.
    let audited = match gate {
        Some(g) if !common.dry_run => Some(crate::commands::audit::gate(&ctx, &plan.lock, g)?),
        _ => None,
    };
    // Whether anything was said before the summary (the whole-run memo replays the summary
    // alone).
    let said_before_summary = crate::printer::emitted();
    if printer.json {
        let mut doc = serde_json::to_value(report::JsonSync {
            schema: 1,
            command,
            dry_run: common.dry_run,
            scope: ctx.scope.name(),
            // A remote config's URL as spelled may carry a query (`?private_token=…`).
            config: crate::source::DisplayUrl::new(&ctx.config.label).to_string(),
            lock: ctx.scope.lock_path.display().to_string(),
            lock_changed,
            sources: report::json_sources(&resolved, &failed)
                .into_iter()
                .chain(report::mcp_json_sources(&mcp_plan))
                .chain(file_plans.iter().flat_map(report::file_json_sources))
                .collect(),
            items: report::json_items(&plan.items)
                .into_iter()
                .chain(report::json_items(&mcp_plan.items))
                .chain(file_plans.iter().flat_map(|f| report::json_items(&f.items)))
                .collect(),
            summary: summary.clone(),
        })
        .unwrap_or_default();
        doc["review"] = review.json();
        doc["audit"] = audited
            .as_ref()
            .map(|a| a.doc.clone())
            .unwrap_or(serde_json::Value::Null);
        if let Some(k) = &ctx.kasetto {
            doc["kasetto_lock"] = k.json(common.dry_run);
        }
        printer.json(&doc);
    } else {
        report::print_items(printer, &plan.items);
        report::print_items(printer, &mcp_plan.items);
        for fp in &file_plans {
            report::print_items(printer, &fp.items);
        }
        review.print(printer);
        printer.line(&summary.human(common.dry_run));
        if let Some(a) = &audited {
            a.print(printer);
        }
    }
    if let Some(rec) = recording {
        // Only a run that found everything up to date, printed its summary alone and wrote
        // nothing is memoised (runmemo.rs), with every path its result depends on.
        let summary_lines = usize::from(printer.verbosity >= crate::printer::Verbosity::Normal);
        let quiet_noop = gate.is_none()
            && said_before_summary == 0
            && crate::printer::emitted() == summary_lines
            && !lock_changed
            && !review.refused
            && review.items.is_empty()
            && failed.is_empty()
            && resolved.iter().all(|r| r.warnings.is_empty())
            && plan
                .items
                .iter()
                .all(|i| i.action() == Action::Unchanged && i.warnings.is_empty())
            && mcp_plan.failed.is_empty()
            && mcp_plan.items.is_empty()
            && mcp_plan.resolved.is_empty()
            && file_plans.iter().all(|fp| {
                fp.failed.is_empty()
                    && fp.resolved.iter().all(|r| r.warnings.is_empty())
                    && fp
                        .items
                        .iter()
                        .all(|i| i.action() == Action::Unchanged && i.warnings.is_empty())
            })
            && summary.ok()
            && summary.unchanged > 0;
        if quiet_noop
            && let Some(w) = crate::pipeline::memo_witnesses(
                &ctx,
                common.config.is_some(),
                &resolved,
                &plan.items,
                &file_plans,
            )
        {
            // The plans are done with: freed before the memo is written, which at 10,000
            // skills holds hundreds of thousands of paths (SPEC 14's memory target).
            drop((plan, resolved, file_plans, mcp_plan));
            let counts = crate::runmemo::Counts {
                unchanged: summary.unchanged,
                kinds: summary.kinds.clone(),
            };
            rec.finish(w, &counts, ctx.scope.name(), &ctx.scope.lock_path);
        }
    }
    if !common.dry_run {
        // For `kst doctor`: what the last real run of this scope did.
        crate::machine::record_last_sync(&crate::machine::LastSync {
            command: command.to_string(),
            scope: ctx.scope.name().to_string(),
            lock: ctx.scope.lock_path.display().to_string(),
            finished: crate::machine::now(),
            ok: summary.ok(),
            summary: serde_json::to_value(&summary).unwrap_or_default(),
        });
    }
    if audited.as_ref().is_some_and(|a| !a.verdict.passed) {
        return Err(Error::Reported(Outcome::Problems));
    }
    if summary.ok() {
        Ok(())
    } else {
        Err(Error::Reported(Outcome::Problems))
    }
}

/// The lock's `commands` and `instructions` from their plans (commands first), moved: a plan's
/// `lock` is empty after this, until `apply` makes it again.
pub(crate) fn set_file_sections(
    lock: &mut crate::lock::Lock,
    plans: &mut [crate::files::plan::FilePlan],
) {
    lock.commands = std::mem::take(&mut plans[0].lock);
    lock.instructions = std::mem::take(&mut plans[1].lock);
}

fn locked_error(ctx: &Workspace, drift: &[String]) -> Error {
    Error::Failed(anyhow!(
        "--locked: the lock {} is out of date:\n  {}\nrun `kst sync` (or `kst lock`) and commit the updated lock",
        ctx.scope.lock_path.display(),
        drift.join("\n  ")
    ))
}
