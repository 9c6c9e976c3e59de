//! Agent presets (SPEC 9): where each agent reads skills and MCP servers, globally and per project.
//!
//! One table, one row per agent, so adding an agent is one line. Global paths are relative to
//! the home directory (or to `PI_CODING_AGENT_DIR` for pi); project paths to the project root.

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

#[derive(Debug)]
pub struct Agent {
    pub id: &'static str,
    pub aliases: &'static [&'static str],
    pub global_skills: &'static str,
    pub project_skills: &'static str,
    pub global_mcp: &'static str,
    pub project_mcp: &'static str,
    pub mcp_format: McpFormat,
}

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
    }
}

/// `<pi>` stands for `${PI_CODING_AGENT_DIR:-~/.pi/agent}`; `<vscode>` for VS Code's user dir.
pub static AGENTS: &[Agent] = &[
    agent(
        "amp",
        ".config/agents/skills",
        ".agents/skills",
        ".config/agents/mcp.json",
        ".amp/mcp.json",
        McpServers,
    ),
    agent(
        "antigravity",
        ".gemini/antigravity/skills",
        ".gemini/antigravity/skills",
        ".gemini/antigravity/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "augment",
        ".augment/skills",
        ".augment/skills",
        ".augment/mcp.json",
        ".mcp.json",
        McpServers,
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
    },
    agent(
        "cline",
        ".agents/skills",
        ".agents/skills",
        ".cline/data/settings/cline_mcp_settings.json",
        ".cline_mcp_servers.json",
        McpServers,
    ),
    agent(
        "codex",
        ".agents/skills",
        ".agents/skills",
        ".codex/config.toml",
        ".codex/config.toml",
        CodexToml,
    ),
    agent(
        "continue",
        ".continue/skills",
        ".continue/skills",
        ".continue/mcpServers/kasetto.json",
        ".continue/mcpServers/kasetto.json",
        McpServers,
    ),
    agent(
        "cursor",
        ".cursor/skills",
        ".cursor/skills",
        ".cursor/mcp.json",
        ".cursor/mcp.json",
        McpServers,
    ),
    agent(
        "gemini-cli",
        ".gemini/skills",
        ".gemini/skills",
        ".gemini/settings.json",
        ".gemini/settings.json",
        McpServers,
    ),
    agent(
        "github-copilot",
        ".copilot/skills",
        ".copilot/skills",
        "<vscode>/mcp.json",
        ".vscode/mcp.json",
        VsCode,
    ),
    agent(
        "goose",
        ".config/goose/skills",
        ".goose/skills",
        ".config/goose/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "junie",
        ".junie/skills",
        ".junie/skills",
        ".junie/mcp.json",
        ".junie/mcp/mcp.json",
        McpServers,
    ),
    agent(
        "kiro-cli",
        ".kiro/skills",
        ".kiro/skills",
        ".kiro/mcp.json",
        ".kiro/settings/mcp.json",
        McpServers,
    ),
    agent(
        "openclaw",
        ".openclaw/skills",
        ".openclaw/skills",
        ".openclaw/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "opencode",
        ".config/opencode/skills",
        ".opencode/skills",
        ".config/opencode/opencode.json",
        ".opencode/opencode.json",
        OpenCode,
    ),
    agent(
        "openhands",
        ".openhands/skills",
        ".openhands/skills",
        ".openhands/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "pi",
        "<pi>/skills",
        ".pi/skills",
        "<pi>/mcp.json",
        ".pi/mcp.json",
        McpServers,
    ),
    agent(
        "replit",
        ".config/agents/skills",
        ".agents/skills",
        ".config/agents/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "roo",
        ".roo/skills",
        ".roo/skills",
        ".roo/mcp_settings.json",
        ".roo/mcp.json",
        McpServers,
    ),
    agent(
        "trae",
        ".trae/skills",
        ".trae/skills",
        ".trae/mcp.json",
        ".trae/mcp.json",
        McpServers,
    ),
    agent(
        "warp",
        ".agents/skills",
        ".agents/skills",
        ".warp/mcp.json",
        ".mcp.json",
        McpServers,
    ),
    agent(
        "windsurf",
        ".codeium/windsurf/skills",
        ".windsurf/skills",
        ".codeium/windsurf/mcp_config.json",
        ".windsurf/mcp.json",
        McpServers,
    ),
    agent(
        "zcode",
        ".zcode/skills",
        ".zcode/skills",
        ".zcode/cli/config.json",
        ".zcode/config.json",
        ZCode,
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
    AGENTS
        .iter()
        .flat_map(|a| std::iter::once(a.id).chain(a.aliases.iter().copied()))
        .map(|cand| (edit_distance(id, cand), cand))
        .filter(|(d, cand)| *d <= (cand.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| find(c).map(|a| a.id).unwrap_or(c))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
}
