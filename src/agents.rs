//! Agent presets (SPEC 9): where each agent reads skills and MCP servers, globally and per project.
//!
//! One table, one row per agent, so adding an agent is one line. Global paths are relative to
//! the home directory (or to `PI_CODING_AGENT_DIR` for pi); project paths to the project root.
//!
//! Each row also says where the agent reads slash commands (SPEC 10a: a folder and a file
//! format) and instructions (SPEC 10b: an aggregate file shared with the user's text, or a
//! folder of one file per rule), per scope; `None` where the agent has no such place. They are
//! set with the [`Agent::commands`] and [`Agent::instructions`] builders on the row.

use std::path::PathBuf;

use crate::envvars;

/// How an agent's settings file stores MCP servers (used by the MCP writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpFormat {
    /// `{"mcpServers": {...}}`
    McpServers,
    /// VS Code: `{"servers": {...}}` with `type`.
    VsCode,
    /// OpenCode: `{"mcp": {...}}` with `type: local|remote` and a `command` array.
    OpenCode,
    /// Codex: TOML `[mcp_servers.NAME]`.
    CodexToml,
    /// ZCode: `{"mcp": {"servers": {...}}}`.
    ZCode,
}

/// The file format an agent reads slash commands in (SPEC 10a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandFormat {
    /// The source Markdown as it is, frontmatter included; a `:` namespace is a subfolder.
    Markdown,
    /// As [`CommandFormat::Markdown`], but flat (`git-commit.md`): pi's prompts.
    MarkdownFlat,
    /// The Markdown body only, frontmatter dropped; flat.
    MarkdownBody,
    /// Gemini CLI TOML (`description`, `prompt`); a `:` namespace is a subfolder.
    GeminiToml,
    /// Continue's `<name>.prompt` (an `invokable: true` header); flat.
    ContinuePrompt,
    /// GitHub Copilot's `<name>.prompt.md`, frontmatter kept; flat.
    CopilotPrompt,
}

/// How a `:` namespace (`git:commit`) becomes a file path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespacing {
    /// Nested folders: `git/commit.md`.
    Nested,
    /// One flat name, `:` replaced by `-`: `git-commit.md`.
    Flat,
}

impl CommandFormat {
    /// How this format lays out a namespaced command (SPEC 10a).
    pub const fn namespacing(self) -> Namespacing {
        match self {
            CommandFormat::Markdown | CommandFormat::GeminiToml => Namespacing::Nested,
            _ => Namespacing::Flat,
        }
    }
}

/// The shape of a per-rule instruction file (SPEC 10b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFormat {
    /// Cursor's `<name>.mdc`, with `description`/`globs`/`alwaysApply` frontmatter.
    CursorMdc,
    /// `<name>.md`, the body only.
    Markdown,
}

/// Where an agent reads instructions in one scope (SPEC 10b). Paths are templates like the
/// skills columns (relative to the home or the project; `<pi>` for pi's folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionPlace {
    /// One file shared with the user's own text; each instruction is a managed block in it.
    Aggregate(&'static str),
    /// A folder holding one file per instruction.
    PerRule(&'static str, RuleFormat),
}

#[derive(Debug)]
pub struct Agent {
    pub id: &'static str,
    pub aliases: &'static [&'static str],
    pub global_skills: &'static str,
    pub project_skills: &'static str,
    pub global_mcp: &'static str,
    pub project_mcp: &'static str,
    pub mcp_format: McpFormat,
    /// Global commands folder (relative to the home), if the agent has one.
    pub global_commands: Option<&'static str>,
    /// Project commands folder, if the agent has one.
    pub project_commands: Option<&'static str>,
    /// The format of its command files (the same in both scopes).
    pub command_format: CommandFormat,
    pub global_instructions: Option<InstructionPlace>,
    pub project_instructions: Option<InstructionPlace>,
}

use InstructionPlace::{Aggregate, PerRule};
use McpFormat::*;

const fn agent(
    id: &'static str,
    global_skills: &'static str,
    project_skills: &'static str,
    global_mcp: &'static str,
    project_mcp: &'static str,
    mcp_format: McpFormat,
) -> Agent {
    Agent {
        id,
        aliases: &[],
        global_skills,
        project_skills,
        global_mcp,
        project_mcp,
        mcp_format,
        global_commands: None,
        project_commands: None,
        command_format: CommandFormat::Markdown,
        global_instructions: None,
        project_instructions: None,
    }
}

impl Agent {
    /// This row with its commands folders (`None` for a scope without one) and format.
    const fn commands(
        self,
        global: Option<&'static str>,
        project: Option<&'static str>,
        format: CommandFormat,
    ) -> Agent {
        Agent {
            global_commands: global,
            project_commands: project,
            command_format: format,
            ..self
        }
    }

    /// This row with its instructions places (`None` for a scope without one).
    const fn instructions(
        self,
        global: Option<InstructionPlace>,
        project: Option<InstructionPlace>,
    ) -> Agent {
        Agent {
            global_instructions: global,
            project_instructions: project,
            ..self
        }
    }
}

use CommandFormat::{
    ContinuePrompt, CopilotPrompt, GeminiToml, Markdown as Md, MarkdownBody, MarkdownFlat,
};
use RuleFormat::{CursorMdc, Markdown as RuleMd};

/// `<pi>` stands for `${PI_CODING_AGENT_DIR:-~/.pi/agent}`; `<vscode>` for VS Code's user dir.
pub static AGENTS: &[Agent] = &[
    agent(
        "amp",
        ".config/agents/skills",
        ".agents/skills",
        ".config/agents/mcp.json",
        ".amp/mcp.json",
        McpServers,
    )
    .commands(Some(".config/amp/commands"), Some(".agents/commands"), Md)
    .instructions(
        Some(Aggregate(".config/amp/AGENTS.md")),
        Some(Aggregate("AGENTS.md")),
    ),
    agent(
        "antigravity",
        ".gemini/antigravity/skills",
        ".gemini/antigravity/skills",
        ".gemini/antigravity/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .instructions(
        Some(Aggregate(".gemini/GEMINI.md")),
        Some(Aggregate("GEMINI.md")),
    ),
    agent(
        "augment",
        ".augment/skills",
        ".augment/skills",
        ".augment/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .commands(Some(".augment/commands"), Some(".augment/commands"), Md)
    .instructions(
        Some(PerRule(".augment/rules", RuleMd)),
        Some(PerRule(".augment/rules", RuleMd)),
    ),
    Agent {
        aliases: &["claude"],
        ..agent(
            "claude-code",
            ".claude/skills",
            ".claude/skills",
            ".claude.json",
            ".mcp.json",
            McpServers,
        )
        .commands(Some(".claude/commands"), Some(".claude/commands"), Md)
        .instructions(
            Some(Aggregate(".claude/CLAUDE.md")),
            Some(Aggregate("CLAUDE.md")),
        )
    },
    agent(
        "cline",
        ".agents/skills",
        ".agents/skills",
        ".cline/data/settings/cline_mcp_settings.json",
        ".cline_mcp_servers.json",
        McpServers,
    )
    .commands(None, Some(".clinerules/workflows"), MarkdownBody)
    .instructions(
        Some(PerRule("Documents/Cline/Rules", RuleMd)),
        Some(PerRule(".clinerules", RuleMd)),
    ),
    agent(
        "codex",
        ".agents/skills",
        ".agents/skills",
        ".codex/config.toml",
        ".codex/config.toml",
        CodexToml,
    )
    .commands(Some(".codex/prompts"), None, Md)
    .instructions(
        Some(Aggregate(".codex/AGENTS.md")),
        Some(Aggregate("AGENTS.md")),
    ),
    agent(
        "continue",
        ".continue/skills",
        ".continue/skills",
        ".continue/mcpServers/kasetto.json",
        ".continue/mcpServers/kasetto.json",
        McpServers,
    )
    .commands(
        Some(".continue/prompts"),
        Some(".continue/prompts"),
        ContinuePrompt,
    )
    .instructions(None, Some(PerRule(".continue/rules", RuleMd))),
    agent(
        "cursor",
        ".cursor/skills",
        ".cursor/skills",
        ".cursor/mcp.json",
        ".cursor/mcp.json",
        McpServers,
    )
    .commands(None, Some(".cursor/commands"), MarkdownBody)
    .instructions(
        Some(PerRule(".cursor/rules", CursorMdc)),
        Some(PerRule(".cursor/rules", CursorMdc)),
    ),
    agent(
        "gemini-cli",
        ".gemini/skills",
        ".gemini/skills",
        ".gemini/settings.json",
        ".gemini/settings.json",
        McpServers,
    )
    .commands(
        Some(".gemini/commands"),
        Some(".gemini/commands"),
        GeminiToml,
    )
    .instructions(
        Some(Aggregate(".gemini/GEMINI.md")),
        Some(Aggregate("GEMINI.md")),
    ),
    agent(
        "github-copilot",
        ".copilot/skills",
        ".copilot/skills",
        "<vscode>/mcp.json",
        ".vscode/mcp.json",
        VsCode,
    )
    .commands(None, Some(".github/prompts"), CopilotPrompt)
    .instructions(
        Some(Aggregate(".copilot/copilot-instructions.md")),
        Some(Aggregate(".github/copilot-instructions.md")),
    ),
    agent(
        "goose",
        ".config/goose/skills",
        ".goose/skills",
        ".config/goose/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .instructions(
        Some(Aggregate(".config/goose/.goosehints")),
        Some(Aggregate(".goosehints")),
    ),
    agent(
        "junie",
        ".junie/skills",
        ".junie/skills",
        ".junie/mcp.json",
        ".junie/mcp/mcp.json",
        McpServers,
    )
    .commands(None, Some(".junie/commands"), Md)
    .instructions(
        Some(Aggregate(".junie/AGENTS.md")),
        Some(Aggregate(".junie/AGENTS.md")),
    ),
    agent(
        "kiro-cli",
        ".kiro/skills",
        ".kiro/skills",
        ".kiro/mcp.json",
        ".kiro/settings/mcp.json",
        McpServers,
    )
    .instructions(
        Some(PerRule(".kiro/steering", RuleMd)),
        Some(PerRule(".kiro/steering", RuleMd)),
    ),
    agent(
        "openclaw",
        ".openclaw/skills",
        ".openclaw/skills",
        ".openclaw/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .instructions(Some(Aggregate(".openclaw/workspace/AGENTS.md")), None),
    agent(
        "opencode",
        ".config/opencode/skills",
        ".opencode/skills",
        ".config/opencode/opencode.json",
        ".opencode/opencode.json",
        OpenCode,
    )
    .commands(
        Some(".config/opencode/commands"),
        Some(".opencode/commands"),
        Md,
    )
    .instructions(
        Some(Aggregate(".config/opencode/AGENTS.md")),
        Some(Aggregate("AGENTS.md")),
    ),
    agent(
        "openhands",
        ".openhands/skills",
        ".openhands/skills",
        ".openhands/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .commands(None, Some(".openhands/microagents"), Md)
    .instructions(None, Some(Aggregate(".openhands/microagents/repo.md"))),
    agent(
        "pi",
        "<pi>/skills",
        ".pi/skills",
        "<pi>/mcp.json",
        ".pi/mcp.json",
        McpServers,
    )
    .commands(Some("<pi>/prompts"), Some(".pi/prompts"), MarkdownFlat)
    .instructions(
        Some(Aggregate("<pi>/AGENTS.md")),
        Some(Aggregate("AGENTS.md")),
    ),
    agent(
        "replit",
        ".config/agents/skills",
        ".agents/skills",
        ".config/agents/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .instructions(None, Some(Aggregate("replit.md"))),
    agent(
        "roo",
        ".roo/skills",
        ".roo/skills",
        ".roo/mcp_settings.json",
        ".roo/mcp.json",
        McpServers,
    )
    .commands(Some(".roo/commands"), Some(".roo/commands"), Md)
    .instructions(
        Some(PerRule(".roo/rules", RuleMd)),
        Some(PerRule(".roo/rules", RuleMd)),
    ),
    agent(
        "trae",
        ".trae/skills",
        ".trae/skills",
        ".trae/mcp.json",
        ".trae/mcp.json",
        McpServers,
    )
    .instructions(None, Some(PerRule(".trae/rules", RuleMd))),
    agent(
        "warp",
        ".agents/skills",
        ".agents/skills",
        ".warp/mcp.json",
        ".mcp.json",
        McpServers,
    )
    .instructions(None, Some(Aggregate("WARP.md"))),
    agent(
        "windsurf",
        ".codeium/windsurf/skills",
        ".windsurf/skills",
        ".codeium/windsurf/mcp_config.json",
        ".windsurf/mcp.json",
        McpServers,
    )
    .commands(
        Some(".codeium/windsurf/global_workflows"),
        Some(".windsurf/workflows"),
        Md,
    )
    .instructions(
        Some(Aggregate(".codeium/windsurf/memories/global_rules.md")),
        Some(PerRule(".windsurf/rules", RuleMd)),
    ),
    agent(
        "zcode",
        ".zcode/skills",
        ".zcode/skills",
        ".zcode/cli/config.json",
        ".zcode/config.json",
        ZCode,
    )
    .commands(Some(".zcode/commands"), Some(".zcode/commands"), Md)
    .instructions(
        Some(Aggregate(".zcode/AGENTS.md")),
        Some(Aggregate("AGENTS.md")),
    ),
];

/// Find an agent by id or alias.
pub fn find(id: &str) -> Option<&'static Agent> {
    AGENTS
        .iter()
        .find(|a| a.id == id || a.aliases.contains(&id))
}

pub fn ids() -> impl Iterator<Item = &'static str> {
    AGENTS.iter().map(|a| a.id)
}

/// The closest valid id to a misspelt one, for "did you mean" hints.
pub fn closest(id: &str) -> Option<&'static str> {
    let names = AGENTS
        .iter()
        .flat_map(|a| std::iter::once(a.id).chain(a.aliases.iter().copied()));
    let c = crate::suggest::closest(id, names)?;
    Some(find(c).map(|a| a.id).unwrap_or(c))
}

impl Agent {
    /// The skills folder for a scope: absolute for global, relative to the project otherwise.
    pub fn skills_dir(&self, global: bool, home: &std::path::Path) -> PathBuf {
        if global {
            expand_global(self.global_skills, home)
        } else {
            PathBuf::from(self.project_skills)
        }
    }

    /// The MCP settings file for a scope: absolute for global, relative to the project otherwise.
    pub fn mcp_path(&self, global: bool, home: &std::path::Path) -> PathBuf {
        if global {
            expand_global(self.global_mcp, home)
        } else {
            PathBuf::from(self.project_mcp)
        }
    }
}

/// An instructions destination resolved for one scope: absolute for global, relative to the
/// project otherwise (see [`Agent::instructions_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionTarget {
    /// The shared file the instruction's managed block goes into.
    Aggregate(PathBuf),
    /// The folder its own file goes into, and that file's shape.
    PerRule(PathBuf, RuleFormat),
}

impl Agent {
    /// The commands folder for a scope and the format of its files, or None when the agent
    /// has no commands there (it is skipped for commands).
    pub fn commands_dir(
        &self,
        global: bool,
        home: &std::path::Path,
    ) -> Option<(PathBuf, CommandFormat)> {
        let dir = if global {
            expand_global(self.global_commands?, home)
        } else {
            PathBuf::from(self.project_commands?)
        };
        Some((dir, self.command_format))
    }

    /// Where instructions go for a scope, or None when the agent has no such place.
    pub fn instructions_target(
        &self,
        global: bool,
        home: &std::path::Path,
    ) -> Option<InstructionTarget> {
        let place = if global {
            self.global_instructions?
        } else {
            self.project_instructions?
        };
        let at = |t: &str| {
            if global {
                expand_global(t, home)
            } else {
                PathBuf::from(t)
            }
        };
        Some(match place {
            InstructionPlace::Aggregate(f) => InstructionTarget::Aggregate(at(f)),
            InstructionPlace::PerRule(d, shape) => InstructionTarget::PerRule(at(d), shape),
        })
    }
}

/// VS Code's user folder: `$KASETTO_VSCODE_USER_DIR` (Insiders, VSCodium, portable installs),
/// else `~/Library/Application Support/Code/User` on macOS, `%APPDATA%\Code\User` on
/// Windows, `$XDG_CONFIG_HOME/Code/User` (default `~/.config/Code/User`) elsewhere.
pub fn vscode_user_dir(home: &std::path::Path) -> PathBuf {
    if let Some(d) = envvars::non_empty(envvars::KASETTO_VSCODE_USER_DIR) {
        return PathBuf::from(d);
    }
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/Code/User");
    }
    if cfg!(windows)
        && let Some(appdata) = std::env::var_os("APPDATA")
    {
        return PathBuf::from(appdata).join("Code").join("User");
    }
    envvars::non_empty(envvars::XDG_CONFIG_HOME)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"))
        .join("Code")
        .join("User")
}

/// Resolve a global path template against the home directory.
fn expand_global(template: &str, home: &std::path::Path) -> PathBuf {
    if let Some(rest) = template.strip_prefix("<pi>/") {
        let pi = envvars::non_empty(envvars::PI_CODING_AGENT_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".pi").join("agent"));
        return pi.join(rest);
    }
    if let Some(rest) = template.strip_prefix("<vscode>/") {
        return vscode_user_dir(home).join(rest);
    }
    home.join(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_suggestions() {
        assert_eq!(find("claude").unwrap().id, "claude-code");
        assert_eq!(closest("cursr"), Some("cursor"));
        assert_eq!(closest("claude-cod"), Some("claude-code"));
        assert_eq!(closest("zzzzzzzzzzzz"), None);
    }

    #[test]
    fn shared_folders_are_shared() {
        let home = std::path::Path::new("/h");
        let codex = find("codex").unwrap().skills_dir(true, home);
        let cline = find("cline").unwrap().skills_dir(true, home);
        assert_eq!(codex, cline);
        assert_eq!(codex, PathBuf::from("/h/.agents/skills"));
    }

    /// The commands columns match SPEC 10a for agents of every format, both scopes.
    #[test]
    fn commands_places_match_spec() {
        let home = std::path::Path::new("/h");
        let cmd = |id: &str, global: bool| find(id).unwrap().commands_dir(global, home);
        let p = |s: &str| PathBuf::from(s);
        use CommandFormat as F;
        assert_eq!(
            cmd("claude", true),
            Some((p("/h/.claude/commands"), F::Markdown))
        );
        assert_eq!(
            cmd("claude-code", false),
            Some((p(".claude/commands"), F::Markdown))
        );
        assert_eq!(cmd("cursor", true), None);
        assert_eq!(
            cmd("cursor", false),
            Some((p(".cursor/commands"), F::MarkdownBody))
        );
        assert_eq!(
            cmd("windsurf", true),
            Some((p("/h/.codeium/windsurf/global_workflows"), F::Markdown))
        );
        assert_eq!(
            cmd("windsurf", false),
            Some((p(".windsurf/workflows"), F::Markdown))
        );
        assert_eq!(
            cmd("cline", false),
            Some((p(".clinerules/workflows"), F::MarkdownBody))
        );
        assert_eq!(
            cmd("continue", true),
            Some((p("/h/.continue/prompts"), F::ContinuePrompt))
        );
        assert_eq!(cmd("github-copilot", true), None);
        assert_eq!(
            cmd("github-copilot", false),
            Some((p(".github/prompts"), F::CopilotPrompt))
        );
        assert_eq!(
            cmd("amp", true),
            Some((p("/h/.config/amp/commands"), F::Markdown))
        );
        assert_eq!(
            cmd("amp", false),
            Some((p(".agents/commands"), F::Markdown))
        );
        assert_eq!(
            cmd("codex", true),
            Some((p("/h/.codex/prompts"), F::Markdown))
        );
        assert_eq!(cmd("codex", false), None);
        assert_eq!(
            cmd("gemini-cli", false),
            Some((p(".gemini/commands"), F::GeminiToml))
        );
        assert_eq!(
            cmd("openhands", false),
            Some((p(".openhands/microagents"), F::Markdown))
        );
        assert_eq!(cmd("pi", false), Some((p(".pi/prompts"), F::MarkdownFlat)));
        for none in [
            "antigravity",
            "goose",
            "kiro-cli",
            "openclaw",
            "replit",
            "trae",
            "warp",
        ] {
            assert_eq!(cmd(none, true), None, "{none}");
            assert_eq!(cmd(none, false), None, "{none}");
        }
        // Namespaces: nested for Markdown + frontmatter and Gemini, flat elsewhere (pi too).
        assert_eq!(F::Markdown.namespacing(), Namespacing::Nested);
        assert_eq!(F::GeminiToml.namespacing(), Namespacing::Nested);
        for flat in [
            F::MarkdownFlat,
            F::MarkdownBody,
            F::ContinuePrompt,
            F::CopilotPrompt,
        ] {
            assert_eq!(flat.namespacing(), Namespacing::Flat, "{flat:?}");
        }
    }

    /// The instructions columns match SPEC 10b: aggregate files, per-rule folders, scopes
    /// without a place.
    #[test]
    fn instructions_places_match_spec() {
        let home = std::path::Path::new("/h");
        let ins = |id: &str, global: bool| find(id).unwrap().instructions_target(global, home);
        use InstructionTarget::{Aggregate as Agg, PerRule as Rule};
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(ins("claude-code", false), Some(Agg(p("CLAUDE.md"))));
        assert_eq!(
            ins("claude-code", true),
            Some(Agg(p("/h/.claude/CLAUDE.md")))
        );
        for shared in ["codex", "opencode", "amp", "zcode", "pi"] {
            assert_eq!(ins(shared, false), Some(Agg(p("AGENTS.md"))), "{shared}");
        }
        assert_eq!(ins("codex", true), Some(Agg(p("/h/.codex/AGENTS.md"))));
        assert_eq!(
            ins("opencode", true),
            Some(Agg(p("/h/.config/opencode/AGENTS.md")))
        );
        assert_eq!(ins("gemini-cli", false), Some(Agg(p("GEMINI.md"))));
        assert_eq!(
            ins("antigravity", true),
            Some(Agg(p("/h/.gemini/GEMINI.md")))
        );
        assert_eq!(
            ins("github-copilot", false),
            Some(Agg(p(".github/copilot-instructions.md")))
        );
        assert_eq!(
            ins("github-copilot", true),
            Some(Agg(p("/h/.copilot/copilot-instructions.md")))
        );
        assert_eq!(ins("goose", false), Some(Agg(p(".goosehints"))));
        assert_eq!(ins("warp", false), Some(Agg(p("WARP.md"))));
        assert_eq!(ins("warp", true), None);
        assert_eq!(ins("openclaw", false), None);
        assert_eq!(
            ins("openclaw", true),
            Some(Agg(p("/h/.openclaw/workspace/AGENTS.md")))
        );
        assert_eq!(
            ins("cursor", false),
            Some(Rule(p(".cursor/rules"), RuleFormat::CursorMdc))
        );
        assert_eq!(
            ins("cursor", true),
            Some(Rule(p("/h/.cursor/rules"), RuleFormat::CursorMdc))
        );
        assert_eq!(
            ins("windsurf", false),
            Some(Rule(p(".windsurf/rules"), RuleFormat::Markdown))
        );
        assert_eq!(
            ins("windsurf", true),
            Some(Agg(p("/h/.codeium/windsurf/memories/global_rules.md")))
        );
        assert_eq!(
            ins("cline", true),
            Some(Rule(p("/h/Documents/Cline/Rules"), RuleFormat::Markdown))
        );
        assert_eq!(
            ins("continue", false),
            Some(Rule(p(".continue/rules"), RuleFormat::Markdown))
        );
        assert_eq!(ins("continue", true), None);
        assert_eq!(
            ins("kiro-cli", true),
            Some(Rule(p("/h/.kiro/steering"), RuleFormat::Markdown))
        );
        assert_eq!(ins("trae", true), None);
        // Every agent has a place for instructions in at least one scope.
        for a in AGENTS {
            assert!(
                a.global_instructions.is_some() || a.project_instructions.is_some(),
                "{}",
                a.id
            );
        }
    }
}
