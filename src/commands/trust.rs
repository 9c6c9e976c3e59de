//! `kst trust [PATH] [--revoke]`: record (or forget) the user's trust in a working-directory
//! config, so it may write to the global scope (SPEC 3). The records and the gate are
//! [`crate::trust`]'s; this module is the command's flags and its output.

use clap::Args;

use crate::error::{Error, Result};
use crate::pathsafe::normalise;
use crate::report::Printer;
use crate::trust::{revoke, shown, trust};
use crate::workspace::Common;

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The config to trust (default: kasetto.yaml in the working directory)
    #[arg(value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
    /// Forget the trust instead
    #[arg(long)]
    pub revoke: bool,
}

/// `kst trust [PATH] [--revoke]`.
pub fn run(common: &Common, args: TrustArgs, printer: &Printer) -> Result<()> {
    let (path, revoke_it, dry_run) = (args.path.as_deref(), args.revoke, common.dry_run);
    let would = if dry_run { "would be " } else { "" };
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
    let mut path = match path {
        Some(p) => cwd.join(p),
        None => cwd.join("kasetto.yaml"),
    };
    if path.is_dir() {
        path.push("kasetto.yaml");
    }
    let path = normalise(&path);
    if revoke_it {
        let was = revoke(&path, dry_run)?;
        if printer.json {
            printer.json(&serde_json::json!({
                "schema": 1, "command": "trust", "dry_run": dry_run,
                "config": path.display().to_string(), "trusted": false, "revoked": was,
            }));
        } else if was {
            printer.line(&format!("{} {would}no longer trusted", shown(&path)));
        } else {
            printer.line(&format!("{} was not trusted", shown(&path)));
        }
        return Ok(());
    }
    let chain = trust(&path, dry_run)?;
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1, "command": "trust", "dry_run": dry_run,
            "config": path.display().to_string(), "trusted": true, "files": chain.files,
        }));
    } else {
        let others = chain.files.len().saturating_sub(1);
        let (also, them) = match others {
            0 => (String::new(), "it"),
            1 => (" and 1 extends file".to_string(), "any of them"),
            n => (format!(" and {n} extends files"), "any of them"),
        };
        printer.line(&format!(
            "{}trusted {}{also} to write to the global scope; a change to {them} asks again",
            if dry_run { "(dry run) would have " } else { "" },
            shown(&path)
        ));
        if chain.remote {
            printer.warn(
                "it extends https:// configs; their content is not covered by the trust (the \
                 destination rules still apply to them)",
            );
        }
    }
    Ok(())
}
