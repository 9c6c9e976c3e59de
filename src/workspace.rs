//! The workspace a command works on: the config, the scope it decides, the scope's lock as it
//! was read, the scope's file lock, and the git cache.
//!
//! Loading is the only place a command turns flags into these values: the config is found
//! (and, for a working-directory config about to reach the global scope, its trust checked
//! first, [`crate::trust::gate`]), the scope decided, the lock read. Nothing here resolves,
//! plans or writes an installed file; that is the pipeline's ([`crate::pipeline`]).

use std::sync::OnceLock;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::git::Cache;
use crate::lock::Lock;
use crate::printer::Printer;
use crate::scope::ScopeCtx;

/// Options shared by commands that read the config.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub config: Option<String>,
    pub scope: Option<config::Scope>,
    pub dry_run: bool,
    pub offline: bool,
    /// kst may ask on the terminal (for trust, SPEC 3).
    pub interactive: bool,
}

/// Everything a run needs, loaded once.
pub struct Workspace {
    pub config: Config,
    pub scope: ScopeCtx,
    pub old_lock: Lock,
    /// Why no secret may be resolved for this config (it was found in the working directory
    /// and is not trusted); `None` when secrets may be resolved.
    pub secrets_refused: Option<String>,
    /// For such a config, the project (canonical): local sources are read only inside it.
    pub reads_within: Option<std::path::PathBuf>,
    /// The scope's lock was Kasetto's (SPEC 17): `old_lock` is what kst took over from it.
    pub kasetto: Option<crate::migrate::Takeover>,
    /// Opened on first use: a config of local folders only never creates the cache.
    cache: OnceLock<Cache>,
}

impl Workspace {
    /// Find and load the config, decide the scope, read its lock. A working-directory config
    /// must be trusted before it is even loaded when the command would write to, or fetch for,
    /// the global scope ([`crate::trust::gate`]).
    pub fn load(common: &Common, access: crate::trust::Access) -> Result<Workspace> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
        let (path, origin) = config::discover(common.config.as_deref(), &cwd)?;
        crate::trust::gate(
            &path,
            origin,
            &crate::trust::Run {
                access,
                scope_flag: common.scope,
                offline: common.offline,
                interactive: common.interactive,
            },
        )?;
        // Secrets are the user's (the environment, credentials files, secret managers),
        // whatever the scope: a config kst found by itself may have them resolved only once
        // trusted.
        let stranger = crate::trust::is_stranger(&path, origin, common.scope)?;
        let secrets_refused = stranger.then(|| crate::trust::secrets_refusal(&path));
        let config = config::load_for(&path, common.offline, common.scope)?;
        // Its local source folders must lie inside its project too.
        let reads_within = if stranger {
            Some(crate::trust::check_stranger_sources(&config)?)
        } else {
            None
        };
        let scope = ScopeCtx::new(&config, common.scope)?;
        // In the project scope the lock is the project's: one leaving it (a symlink) is refused.
        let within = (scope.scope == config::Scope::Project).then_some(scope.root.as_path());
        // Read once: told from a Kasetto lock, then parsed (or taken over).
        let read = crate::fsx::read_input_bytes(&scope.lock_path, crate::fsx::LOCK_CAP, within);
        let takeover = match &read {
            Ok(bytes) => crate::migrate::read(&scope.lock_path, bytes, &scope, &config)?,
            Err(_) => None,
        };
        let (old_lock, kasetto) = match takeover {
            Some((lock, takeover)) => (lock, Some(takeover)),
            None => (Lock::from_read(&scope.lock_path, read)?, None),
        };
        // Here, on the main thread before any worker exists, libgit2 is initialised for a run
        // that may open a repository; a run of local folders never initialises it
        // (`git::setup::init`; a path that opens one anyway initialises it there).
        if uses_git(&config, &old_lock) {
            crate::git::setup::init();
        }
        Ok(Workspace {
            config,
            scope,
            old_lock,
            secrets_refused,
            reads_within,
            kasetto,
            cache: OnceLock::new(),
        })
    }

    /// Hold the scope's file lock for the rest of the run (one writer per scope); a wait is
    /// said on the printer.
    pub fn exclusive(&self, printer: &Printer) -> Result<std::fs::File> {
        self.scope.exclusive(|msg| printer.line(msg))
    }

    /// The git cache, opened (and created) on first use.
    pub fn cache(&self) -> Result<&Cache> {
        if let Some(c) = self.cache.get() {
            return Ok(c);
        }
        let opened = Cache::open().map_err(Error::Failed)?;
        Ok(self.cache.get_or_init(|| opened))
    }
}

/// Does the config name a git source, or the lock hold a commit (a git source it tracks, which
/// a prune, `verify` or `list` may read from the cache)?
fn uses_git(config: &Config, lock: &Lock) -> bool {
    use crate::config::mcp::McpSourceKind;
    use crate::source::Source;
    let git = |s: &Source| matches!(s, Source::Git(_));
    config
        .skills
        .iter()
        .chain(&config.commands)
        .chain(&config.instructions)
        .any(|e| git(&e.source))
        || config.mcps.iter().any(|m| match &m.kind {
            McpSourceKind::Pack { source, .. } => git(source),
            McpSourceKind::Inline { .. } => false,
        })
        || lock.sources.iter().any(|s| s.commit.is_some())
        || lock.commands.iter().any(|s| s.commit.is_some())
        || lock.instructions.iter().any(|s| s.commit.is_some())
        || lock.mcps.iter().any(|s| s.commit.is_some())
}
