//! `kst lock [--check]`: resolve every source and record the lock; install nothing.

use clap::Args;

use crate::error::{Error, Outcome, Result};
use crate::pipeline::{self, SyncOptions};
use crate::plan::{self, Action};
use crate::report::{self, Printer};
use crate::workspace::{Common, Workspace};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Exit 1 if the lock would change; write nothing
    #[arg(long)]
    pub check: bool,
    /// Re-resolve branch and default sources (all, or those providing NAME)
    #[arg(short, long, num_args = 0.., value_name = "NAME")]
    pub update: Option<Vec<String>>,
    /// Take pin moves that add capability (needed with `audit.review-updates: true`)
    #[arg(long)]
    pub accept: bool,
}

/// `kst lock [--check]`: resolve every source and write the lock, installing nothing.
/// `--check` writes nothing and exits 1 when the lock would change.
pub fn run(common: &Common, args: LockArgs, printer: &Printer) -> Result<()> {
    let opts = &SyncOptions {
        update: args.update,
        accept: args.accept,
        ..Default::default()
    };
    let check = args.check;
    let ctx = Workspace::load(common, crate::trust::Access::Writes)?;
    let _guard = ctx.exclusive(printer)?;
    if let Some(k) = &ctx.kasetto {
        return Err(k.refused("kst lock"));
    }
    let (resolved, failed, mut plan) =
        pipeline::resolve_and_plan(&ctx, opts, common.offline, printer, false)?;
    // Secrets are not needed to lock: the lock holds the placeholder form.
    let mcp_plan = pipeline::plan_mcp(
        &ctx,
        &opts.update,
        common.offline,
        crate::mcp::SecretPolicy::Ignore,
    )?;
    plan.lock.mcps = mcp_plan.lock.clone();
    let mut file_plans = pipeline::plan_files(&ctx, &opts.update, common.offline, false)?;
    crate::commands::sync::set_file_sections(&mut plan.lock, &mut file_plans);
    report::print_file_sources(printer, &file_plans);
    for f in &failed {
        printer.error(&f.error);
    }
    for f in &mcp_plan.failed {
        printer.error(&f.error);
    }
    let drift = ctx.old_lock.drift(&plan.lock);
    // Skills that cannot be installed here (a folder kst did not install is in the way) are
    // left out of the lock: say so, or machines would silently disagree about the lock.
    let broken: Vec<plan::Item> = plan
        .items
        .iter()
        .filter(|i| i.action() == Action::Broken)
        .cloned()
        .collect();
    if !printer.json {
        report::print_items(printer, &broken);
    }
    // Update review (SPEC 16): a refused move leaves the lock as it was.
    let review = crate::audit::review::UpdateReview::decide(&ctx, &plan.lock, opts.accept);
    let write = !check && !common.dry_run && !drift.is_empty() && !review.refused;
    if write {
        plan.lock.write(&ctx.scope.lock_path)?;
    }
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1,
            "command": "lock",
            "check": check,
            "dry_run": common.dry_run,
            "lock": ctx.scope.lock_path.display().to_string(),
            "changes": drift,
            "broken": broken.iter().map(|i| serde_json::json!({
                "name": i.name,
                "source": i.source,
                "error": i.error.clone().or_else(|| i.dests.iter().find_map(|d| d.error.clone())),
            })).collect::<Vec<_>>(),
            "written": write,
            "review": review.json(),
            "sources": report::json_sources(&resolved, &failed)
                .into_iter()
                .chain(report::mcp_json_sources(&mcp_plan))
                .chain(file_plans.iter().flat_map(report::file_json_sources))
                .collect::<Vec<_>>(),
        }));
    } else if review.refused {
        review.print(printer);
    } else if drift.is_empty() {
        printer.line(&format!("{} is up to date", ctx.scope.lock_path.display()));
    } else {
        let verb = if write { "updated" } else { "would change" };
        printer.line(&format!("{} {verb}:", ctx.scope.lock_path.display()));
        for d in &drift {
            printer.line(&format!("  {d}"));
        }
        review.print(printer);
    }
    if check && !drift.is_empty() && !printer.json {
        printer.error("the lock is out of date; run `kst lock` and commit the result");
    }
    if !failed.is_empty()
        || !mcp_plan.failed.is_empty()
        || file_plans.iter().any(|f| !f.failed.is_empty())
        || !broken.is_empty()
        || review.refused
        || (check && !drift.is_empty())
    {
        return Err(Error::Reported(Outcome::Problems));
    }
    Ok(())
}
