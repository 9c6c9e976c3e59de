//! One item of any kind — a skill, an MCP server — as a plan holds it and the report shows it.
//!
//! Every kind plans the same thing: per item, per destination, an [`Action`] (and why it was
//! left alone, or what failed). So the item, its destinations, the action order, what counts
//! as broken, the human line, the JSON item and the summary are written once, here and in
//! `report.rs`; a kind adds only its private planning state (`extra`), which the report
//! never sees.

use std::path::PathBuf;

use serde::Serialize;

/// The kinds of asset kst syncs. The JSON `kind` of an item, and what messages call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Skill,
    Server,
    /// An MCP pack file that failed as a whole (its servers are not known).
    McpPack,
    Command,
    Instruction,
}

impl Kind {
    /// What the summary calls `n` items of this kind (`3 skills`, `1 server`).
    pub fn count(self, n: usize) -> String {
        format!("{n} {}{}", self.noun(), if n == 1 { "" } else { "s" })
    }

    /// What a lock message puts before a source of this kind (`MCP https://…`).
    pub fn source_prefix(self) -> &'static str {
        match self {
            Kind::Server | Kind::McpPack => "MCP ",
            Kind::Skill | Kind::Command | Kind::Instruction => "",
        }
    }

    /// What the lock's id of an item of this kind is called.
    pub fn id_name(self) -> &'static str {
        match self {
            Kind::Skill => "tree",
            Kind::Server | Kind::McpPack => "hash",
            Kind::Command | Kind::Instruction => "blob",
        }
    }

    /// One item of this kind, in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::Server => "server",
            Kind::McpPack => "MCP pack",
            Kind::Command => "command",
            Kind::Instruction => "instruction",
        }
    }

    /// The word before an item's name in a human line (`server github`); skills and packs
    /// (`pack github.json`) need none.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Server => "server ",
            Kind::Command => "command ",
            Kind::Instruction => "instruction ",
            Kind::Skill | Kind::McpPack => "",
        }
    }
}

/// What happens (or happened) to one destination of an item. Ordered by significance: an
/// item's action is the most significant of its destinations'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Unchanged,
    /// Left alone on purpose (a conflict, an entry the user edited, a missing secret).
    Skipped,
    Removed,
    Repaired,
    Added,
    Updated,
    Broken,
}

impl Action {
    pub fn writes(self) -> bool {
        matches!(self, Action::Added | Action::Updated | Action::Repaired)
    }
}

/// Why a destination was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Something of that name exists and kst did not write it.
    Conflict,
    /// kst wrote it and the user changed it since.
    ModifiedLocally,
    /// A secret is not set (`secrets.on_missing: skip`, `--allow-missing-secrets`).
    MissingSecret,
}

/// A destination path, absolute and as recorded in the lock (relative to the scope root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub abs: PathBuf,
    pub rel: String,
}

/// One destination of an item; `extra` is the kind's own planning state.
#[derive(Debug, Clone)]
pub struct Dest<D = ()> {
    pub target: Target,
    pub action: Action,
    pub reason: Option<Reason>,
    pub error: Option<String>,
    pub extra: D,
}

impl Dest {
    pub fn new(target: Target, action: Action) -> Dest {
        Dest {
            target,
            action,
            reason: None,
            error: None,
            extra: (),
        }
    }
}

/// One item, all its destinations; `extra` is the kind's own planning state.
#[derive(Debug, Clone)]
pub struct Item<X = (), D = ()> {
    pub kind: Kind,
    pub name: String,
    pub source: String,
    pub commit: Option<String>,
    /// The git tree id of a skill folder.
    pub tree: Option<String>,
    /// `sha256:` of what kst writes for an entry in a shared file (an MCP server's definition
    /// in placeholder form), as in the lock.
    pub hash: Option<String>,
    /// The `description` of the item's frontmatter, when it has one.
    pub description: Option<String>,
    pub dests: Vec<Dest<D>>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub extra: X,
}

impl<X, D> Item<X, D> {
    /// The most significant action over all destinations; any error makes it broken.
    pub fn action(&self) -> Action {
        if self.error.is_some() || self.dests.iter().any(|d| d.error.is_some()) {
            return Action::Broken;
        }
        self.dests
            .iter()
            .map(|d| d.action)
            .max()
            .unwrap_or(Action::Unchanged)
    }

    /// The error to show for a broken item: its own, else its first destination's.
    pub fn first_error(&self) -> Option<&String> {
        self.error
            .as_ref()
            .or_else(|| self.dests.iter().find_map(|d| d.error.as_ref()))
    }
}
