//! MCP servers (SPEC 10): packs of server definitions merged into every selected agent's
//! settings file, in that agent's shape, tracked by content.
//!
//! The flow mirrors skills: [`config`] entries → [`resolve`] (git, local folder or inline) →
//! [`plan`] (read each settings file, decide per server and file) → [`apply`] (one atomic write
//! per changed file) → lock entries. The plan is a value: it is printed, serialised and checked
//! against the lock before anything is written.
//!
//! What this module must never do: touch a server entry kst did not write, change a byte of a
//! settings file that does not parse, or put a secret anywhere but the agent's settings file
//! (not the lock, not the cache, not output or logs). Secrets live in packs as `${kst_NAME}`
//! and `${kst:TAG:REF}` placeholders ([`secrets`]), resolved once per run by the plan and
//! filled in only when the file is written.

pub mod apply;
pub mod config;
pub mod format;
pub mod pack;
pub mod plan;
pub mod resolve;
pub mod secrets;
pub mod settings;
pub mod store;

pub use config::{McpSource, McpSourceKind, PackPick, PackSelection};
pub use plan::{McpPlan, SecretPolicy, ServerItem};
pub use resolve::{FailedMcp, ResolvedMcp};

use crate::config::Scope;
use crate::error::Result;

/// Resolve the config's `mcps:` and plan every settings file edit, writing nothing.
pub fn plan_sync(
    ctx: &crate::sync::Context,
    update: &Option<Vec<String>>,
    offline: bool,
    secrets: plan::SecretPolicy,
) -> Result<McpPlan> {
    if ctx.config.mcps.is_empty() && ctx.old_lock.mcps.is_empty() {
        return Ok(McpPlan::default());
    }
    let resolved = resolve::resolve_all(
        &ctx.config.mcps,
        &ctx.old_lock,
        update,
        offline,
        ctx.reads_within.as_deref(),
    );
    let home = crate::dirs::home()?;
    let cache_root = crate::git::Cache::open()
        .ok()
        .map(|c| c.root().to_path_buf());
    let resolver = secrets
        .resolver(&ctx.config.secrets)
        .refusing(ctx.secrets_refused.clone());
    Ok(plan::build(plan::Inputs {
        resolved,
        old: &ctx.old_lock,
        agents: &ctx.config.agents,
        global: ctx.scope.scope == Scope::Global,
        home: &home,
        scope_root: &ctx.scope.root,
        secrets: &resolver,
        update,
        cache_root,
        confine: (ctx.scope.scope == Scope::Project).then(|| plan::real_path(&ctx.scope.root)),
    }))
}

/// `--locked`: config entries the lock does not know, as drift lines.
pub fn unlocked(ctx: &crate::sync::Context) -> Vec<String> {
    ctx.config
        .mcps
        .iter()
        .filter(|e| resolve::find_locked(&ctx.old_lock, e).is_none())
        .map(|e| {
            format!(
                "{}: MCP {} ({}) is not in the lock",
                e.at,
                e.url(),
                resolve::requested_of(e)
            )
        })
        .collect()
}
