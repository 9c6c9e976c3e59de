//! Command-line parsing (clap) and dispatch. Raw flags become validated options here; the
//! commands themselves live in their own modules.

use clap::{Args, Parser, Subcommand};

use crate::config::Scope;
use crate::error::{Error, Result};
use crate::report::{ColorChoice, Printer, Verbosity};
use crate::sync::{self, Common, SyncOptions};

#[derive(Debug, Parser)]
#[command(
    name = "kst",
    version,
    about = "Keep AI coding agents' skills in sync with kasetto.yaml, pinned to git commits and tree ids",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More output: -v shows unchanged items and info logs, -vv debug, -vvv trace
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colors
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
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
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The config to trust (default: kasetto.yaml in the working directory)
    #[arg(value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
    /// Forget the trust instead
    #[arg(long)]
    pub revoke: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Exit 1 if the lock would change; write nothing
    #[arg(long)]
    pub check: bool,
    /// Re-resolve branch and default sources (all, or those providing NAME)
    #[arg(short, long, num_args = 0.., value_name = "NAME")]
    pub update: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also ask each remote whether locked tags and branches still point where the lock says
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
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
}

impl GlobalArgs {
    pub fn printer(&self) -> Printer {
        let v = if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Printer::new(v, self.json, self.color)
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
        _ => EnvFilter::new(match (g.quiet, g.verbose) {
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
        .with_writer(crate::credentials::scrubbing_stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}

pub fn run(cli: Cli) -> Result<()> {
    let printer = cli.global.printer();
    let mut common = cli.global.common();
    match cli.command {
        Command::Sync(a) => {
            if a.frozen {
                common.offline = true;
            }
            let opts = SyncOptions {
                update: a.update,
                locked: a.locked || a.frozen,
                force: a.force,
                allow_missing_secrets: a.allow_missing_secrets,
            };
            sync::sync(&common, &opts, &printer)
        }
        Command::Lock(a) => {
            let opts = SyncOptions {
                update: a.update,
                ..Default::default()
            };
            sync::lock(&common, &opts, a.check, &printer)
        }
        Command::Fetch => sync::fetch(&common, &printer),
        Command::Verify(a) => crate::verify::verify(&common, a.remote, &printer),
        Command::Trust(a) => {
            crate::trust::command(a.path.as_deref(), a.revoke, common.dry_run, &printer)
        }
    }
    .map_err(|e: Error| e)
}

/// A server that accepts a connection and then says nothing must not hang kst forever.
fn set_network_timeouts() {
    // SAFETY: called once at start-up, before any other thread or libgit2 call exists.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(30_000);
        let _ = git2::opts::set_server_timeout_in_milliseconds(120_000);
    }
}

/// The whole program behind both binary names: parse, run, map the error kind to an exit code.
pub fn main() -> ! {
    let cli = Cli::parse();
    crate::git::setup::init();
    set_network_timeouts();
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
