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
pub use crate::config::mcp as config;
pub mod format;
pub mod pack;
pub mod plan;
pub mod resolve;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod verify;

pub use config::{McpSource, McpSourceKind, PackPick, PackSelection};
pub use plan::{McpPlan, SecretPolicy, ServerItem};
pub use resolve::{FailedMcp, ResolvedMcp};
