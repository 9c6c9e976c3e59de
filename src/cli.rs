//! Command-line parsing (clap) and dispatch: global flags become [`Common`] options and a
//! [`Printer`], each command's own flags live with it in [`crate::commands`], and [`main`] maps
//! the error kind to the exit code.

use clap::{Args, Parser, Subcommand};

use crate::commands::cache::CacheArgs;
use crate::commands::clean::CleanArgs;
use crate::commands::list::ListArgs;
use crate::commands::{
    self, add::AddArgs, audit::AuditArgs, completions::CompletionsArgs, init::InitArgs,
    lock::LockArgs, remove::RemoveArgs, sync::SyncArgs, trust::TrustArgs, verify::VerifyArgs,
};
use crate::config::Scope;
use crate::error::{Error, Result};
use crate::report::{ColorChoice, Printer, Verbosity};
use crate::workspace::Common;

#[derive(Debug, Parser)]
#[command(
    name = "kst",
    version,
    about = "Keep AI coding agents' skills in sync with kasetto.yaml, pinned to git commits and tree ids",
    propagate_version = true
)]
pub struct Cli {
    /// `None` for a bare `kst`: [`main`] prints the short help and exits 0.
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file to use instead of discovering kasetto.yaml
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<String>,
    /// Work on the project scope (skills folders next to the config)
    #[arg(long, global = true, conflicts_with = "global")]
    pub project: bool,
    /// Work on the global scope (skills folders under HOME)
    #[arg(long, global = true)]
    pub global: bool,
    /// Show what would change; write nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Print one JSON document on stdout (schema: docs/json.md)
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors (repeatable, as in Kasetto: `-qq` is the same as `-q`)
    #[arg(short, long, global = true, conflicts_with = "verbose", action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// More output: -v shows unchanged items and info logs, -vv debug, -vvv trace
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colors
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Kasetto's deprecated spelling of `--color never`
    #[arg(long, global = true, hide = true)]
    pub plain: bool,
    /// Never use the network (also KASETTO_OFFLINE=1)
    #[arg(long, global = true)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the skills folders match the config and the lock
    Sync(SyncArgs),
    /// Resolve sources and write the lock without installing
    Lock(LockArgs),
    /// Put every locked commit into the cache (for CI caches and air-gapped machines)
    Fetch,
    /// Check that installed skills are exactly the locked trees (offline)
    Verify(VerifyArgs),
    /// Trust a kasetto.yaml found in the working directory to write to the global scope
    Trust(TrustArgs),
    /// Review installed skills and MCP servers for security risks (offline unless --online)
    Audit(AuditArgs),
    /// Write a commented starter kasetto.yaml (with --global: the global config)
    Init(InitArgs),
    /// Add a source to the config (keeping its comments and layout), then sync
    Add(AddArgs),
    /// Remove a source, or names from it, from the config, then sync (prunes what it installed)
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
    /// List what the lock says is installed: kind, name, scope, source, commit, destinations
    List(ListArgs),
    /// Remove everything the lock tracks in the scope and empty the lock (untracked files stay)
    Clean(CleanArgs),
    /// Show (dir), garbage-collect (prune) or empty (clear) the git cache
    Cache(CacheArgs),
    /// Check this scope for problems (paths, trust, last sync, installed items, leftovers)
    Doctor,
    /// Show what changed upstream since the locked commits (read-only)
    Outdated,
}

impl GlobalArgs {
    pub fn printer(&self) -> Printer {
        let v = if self.quiet > 0 {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let color = if self.plain {
            ColorChoice::Never
        } else {
            self.color
        };
        Printer::new(v, self.json, color)
    }

    pub fn common(&self) -> Common {
        Common {
            config: self.config.clone(),
            scope: if self.project {
                Some(Scope::Project)
            } else if self.global {
                Some(Scope::Global)
            } else {
                None
            },
            dry_run: self.dry_run,
            offline: self.offline || crate::envvars::flag(crate::envvars::KASETTO_OFFLINE),
            interactive: crate::trust::interactive(&self.printer()),
        }
    }
}

/// Set up logging: `-v` info, `-vv` debug, `-vvv` trace, or `KASETTO_LOG` (EnvFilter syntax).
pub fn init_logging(g: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var(crate::envvars::KASETTO_LOG) {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new(match (g.quiet > 0, g.verbose) {
            (true, _) => "error",
            (_, 0) => "warn",
            (_, 1) => "kasetto=info",
            (_, 2) => "kasetto=debug",
            _ => "kasetto=trace",
        }),
    };
    let ansi = g.printer().color;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Each event written is a line for people (`printer::note_emitted`: a run that logged
        // anything is not memoised, runmemo.rs).
        .with_writer(|| {
            crate::printer::note_emitted();
            crate::credentials::scrubbing_stderr()
        })
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}

pub fn run(cli: Cli) -> Result<()> {
    let printer = cli.global.printer();
    let common = cli.global.common();
    let Some(command) = cli.command else {
        return print_short_help();
    };
    match command {
        Command::Sync(a) => commands::sync::run(common, a, &printer),
        Command::Lock(a) => commands::lock::run(&common, a, &printer),
        Command::Fetch => commands::fetch::run(&common, &printer),
        Command::Verify(a) => commands::verify::run(&common, a, &printer),
        Command::Trust(a) => commands::trust::run(&common, a, &printer),
        Command::Audit(a) => commands::audit::run(&common, a, &printer),
        Command::Init(a) => commands::init::run(&common, a, &printer),
        Command::Add(a) => commands::add::run(common, a, &printer),
        Command::Remove(a) => commands::remove::run(common, a, &printer),
        Command::Completions(a) => {
            // The command tree is the CLI's: handed down, so `commands` never imports `cli`.
            commands::completions::run(a, <Cli as clap::CommandFactory>::command())
        }
        Command::List(a) => commands::list::run(&common, a, &printer),
        Command::Clean(a) => commands::clean::run(&common, a, &printer),
        Command::Cache(a) => commands::cache::run(&common, a, &printer),
        Command::Doctor => commands::doctor::run(&common, &printer),
        Command::Outdated => commands::outdated::run(&common, &printer),
    }
}

/// A bare `kst`: the short help (`-h`) on stdout; exit 0, as Kasetto does.
fn print_short_help() -> Result<()> {
    use clap::CommandFactory;
    use std::io::Write;
    let help = Cli::command().render_help();
    let mut out = std::io::stdout().lock();
    // A closed stdout (`kst | head -0`) is not an error worth a non-zero exit.
    let _ = write!(out, "{help}");
    let _ = out.flush();
    Ok(())
}

/// The whole program behind both binary names: parse, run, map the error kind to an exit code.
pub fn main() -> ! {
    crate::failpoint::init_counters();
    let cli = Cli::parse();
    // libgit2 is initialised only by a run that uses a repository (`git::setup::init`).
    crate::git::setup::strict();
    init_logging(&cli.global);
    let json = cli.global.json;
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            match &e {
                // Already reported in the command's own output.
                Error::Reported(_) => {}
                other if json => {
                    let doc = serde_json::json!({ "schema": 1, "error": other.to_string(), "exit_code": other.exit_code() });
                    println!("{}", crate::report::json_text(&doc));
                }
                other => eprintln!("error: {}", crate::report::clean(&other.to_string())),
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}
