//! `kst clean`: remove everything the scope's lock tracks, and empty the lock (SPEC 2).
//!
//! Not a second remover: it is `kst sync` with every config entry taken out, so what is removed
//! and what is kept follows the same rules as pruning an entry — only what the lock tracks, an
//! MCP entry removed only if it still hashes as kst wrote it. Untracked folders and the user's
//! own servers stay. One guard first: a tracked skill folder edited since kst installed it
//! (what `kst verify` calls modified) would lose those edits, so clean stops, names it and
//! changes nothing, unless `--force`.

use clap::Args;

use crate::error::{Error, Result};
use crate::pipeline::SyncOptions;
use crate::report::Printer;
use crate::workspace::{Common, Workspace};

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also remove installed skill folders edited since kst installed them (the edits are lost)
    #[arg(long)]
    pub force: bool,
}

/// The workspace `clean` syncs: the same scope, lock and agents, no entries. Without `force`,
/// an installed skill folder with local edits stops the run first.
fn without_entries(ctx: &mut Workspace, force: bool) -> Result<()> {
    if !force {
        let edited: Vec<String> = crate::commands::verify::check_installed(ctx)
            .into_iter()
            .filter(|c| c.status == "modified")
            .map(|c| crate::escape::escape_line(&c.path))
            .collect();
        if !edited.is_empty() {
            return Err(Error::Failed(anyhow::anyhow!(
                "not cleaning {}: these skill folders were edited since kst installed them, and \
                 cleaning would delete the edits:\n  {}\ncopy out what you want to keep, then run \
                 `kst clean --force`",
                ctx.scope.lock_path.display(),
                edited.join("\n  ")
            )));
        }
    }
    ctx.config.skills.clear();
    ctx.config.commands.clear();
    ctx.config.instructions.clear();
    ctx.config.mcps.clear();
    Ok(())
}

pub fn run(common: &Common, args: CleanArgs, printer: &Printer) -> Result<()> {
    let opts = SyncOptions {
        force: args.force,
        ..SyncOptions::default()
    };
    // Nothing is installed, so there is nothing to audit.
    let no_audit = (None, true, false);
    crate::commands::sync::sync_as("clean", common, &opts, no_audit, printer, None, |ctx| {
        without_entries(ctx, args.force)
    })
}
