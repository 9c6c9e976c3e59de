//! `kst init [--global] [--force]`: write a commented starter `kasetto.yaml` that works as
//! written — it installs an example skill from a local folder created next to it — with the
//! other shapes (git packs, pins, MCP servers) as commented-out examples.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Scope;
use crate::error::{Error, Result};
use crate::report::Printer;
use crate::trust::shown;
use crate::workspace::Common;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing config (its content is lost)
    #[arg(long)]
    pub force: bool,
}

/// The folder of example skills, next to the config.
const EXAMPLES: &str = "my-skills";

const HEAD: &str = "\
# kasetto.yaml: the skills and MCP servers your AI coding agents get. `kst sync` makes the
# agents' folders match this file and records what it installed in kasetto.lock.
# `kst add SOURCE` adds a source and syncs it; `kst remove SOURCE` takes it out again.
# Every key is described in docs/config.md of kst's repository.

# The agents that get the skills: one preset or a list (claude-code, cursor, codex, ...).
agent: claude-code
";

const PROJECT_SCOPE: &str = "
# project: install into this project's agent folders (.claude/skills/...), with the lock
# next to this file. Without this line the scope is global: your own folders under HOME.
scope: project
";

const GLOBAL_SCOPE: &str = "
# The scope is global (the default): skills go to your own agent folders under HOME
# (~/.claude/skills/...) and the lock to ~/.local/share/kasetto/kasetto.lock.
";

const LISTS: &str = "
skills:
  # A local folder next to this file: each <name>/SKILL.md in it is one skill.
  - source: ./my-skills
    skills: \"*\"
  # A git pack pinned to a tag (a commit id or any ref works too):
  # - source: https://github.com/example/skill-pack
  #   ref: v1.2.0
  #   skills: [pdf, docx]      # or \"*\" for every skill in the pack
  # A branch, tracked: the lock pins the commit it resolved to until `kst sync --update`.
  # - source: git@github.com:example/team-skills.git
  #   branch: main
  #   sub-dir: packs/backend   # where the skills are inside the repository
  #   skills: \"*\"

# MCP servers, merged into each agent's settings file:
# mcps:
#   - source: https://github.com/example/mcp-pack
#     mcps: [github]           # -> mcps/github.json in the pack
#   - name: local-tools        # or defined right here
#     servers:
#       local-db: { command: pg-mcp, args: [\"--read-only\"] }
";

const EXAMPLE_SKILL: &str = "\
---
name: hello
description: An example skill written by `kst init`. Replace it with your own, or remove the my-skills entry from kasetto.yaml.
---

# hello

This is a skill: a folder with a `SKILL.md` (YAML frontmatter with `name` and `description`,
then Markdown instructions for the agent), plus any files beside it.

When the user says hello, answer with a short greeting that names the current project.
";

/// The starter config for a scope.
pub fn template(scope: Scope) -> String {
    let scope_part = match scope {
        Scope::Project => PROJECT_SCOPE,
        Scope::Global => GLOBAL_SCOPE,
    };
    format!("{HEAD}{scope_part}{LISTS}")
}

/// `kst init`.
pub fn run(common: &Common, args: InitArgs, printer: &Printer) -> Result<()> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
    let global = common.scope == Some(Scope::Global);
    let path: PathBuf = match &common.config {
        Some(p) if crate::config::is_url(p) => {
            return Err(Error::usage(format!(
                "--config {}: kst init writes a local file; name a path",
                crate::source::DisplayUrl::new(p)
            )));
        }
        Some(p) => cwd.join(p),
        None if global => crate::dirs::config_home()?
            .join("kasetto")
            .join("kasetto.yaml"),
        None => cwd.join("kasetto.yaml"),
    };
    let path = crate::pathsafe::normalise(&std::path::absolute(&path).unwrap_or(path));
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if meta.is_dir() {
            return Err(Error::usage(format!(
                "{} is a folder; name a file with --config",
                shown(&path)
            )));
        }
        if !args.force {
            return Err(Error::usage(format!(
                "{} already exists; kst init does not overwrite a config. Edit it (or `kst add \
                 SOURCE`), or pass --force to replace it with the starter config (its content \
                 is lost)",
                shown(&path)
            )));
        }
    }
    let folder = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let examples = folder.join(EXAMPLES);
    let skill = examples.join("hello").join("SKILL.md");
    // An existing folder is the user's: nothing is written into it.
    let write_example = std::fs::symlink_metadata(&examples).is_err();
    let scope = if global {
        Scope::Global
    } else {
        Scope::Project
    };
    let mut created = vec![path.clone()];
    if write_example {
        created.push(skill.clone());
    }
    // The user's own command wrote this file: it is trusted as written (docs/trust.md). The
    // XDG config needs no trust.
    let trusted = !global;
    if !common.dry_run {
        if write_example {
            crate::fsx::write_atomic(&skill, EXAMPLE_SKILL.as_bytes(), None)
                .map_err(Error::Failed)?;
        }
        crate::fsx::write_atomic(&path, template(scope).as_bytes(), None).map_err(Error::Failed)?;
        if trusted {
            crate::trust::trust(&path, false)?;
        }
    }
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1,
            "command": "init",
            "dry_run": common.dry_run,
            "config": path.display().to_string(),
            "scope": match scope { Scope::Global => "global", Scope::Project => "project" },
            "created": created.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "trusted": trusted,
        }));
        return Ok(());
    }
    let verb = if common.dry_run {
        "would create"
    } else {
        "created"
    };
    printer.line(&format!("{verb} {}", shown(&path)));
    if write_example {
        printer.line(&format!("{verb} {} (an example skill)", shown(&skill)));
    } else {
        printer.line(&format!(
            "{} already exists: left as it is",
            shown(&examples)
        ));
    }
    if !common.dry_run {
        let how = if common.config.is_some() {
            format!("kst sync --config {}", shown(&path))
        } else {
            "kst sync".to_string()
        };
        printer.line(&format!(
            "next: `{how}` installs it; `kst add SOURCE` adds a git pack or a folder"
        ));
    }
    Ok(())
}
