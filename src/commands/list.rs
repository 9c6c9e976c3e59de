//! `kst list`: what the scope's lock says is installed (SPEC 2), one row per item: kind, name,
//! scope, source, short commit, destinations. Read-only and offline: the lock is the record.
//!
//! The lock is walked in one place, [`rows`]; the table and the JSON are both made from its
//! rows. The table fits the terminal: a cell that does not fit is cut with an ellipsis, never
//! wrapped, so each item stays one line.

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::error::Result;
use crate::lock::{Lock, Requested};
use crate::report::Printer;
use crate::source::DisplayUrl;
use crate::workspace::{Common, Workspace};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which kind of item to list
    #[arg(long = "type", value_enum, default_value = "all", value_name = "KIND")]
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Skills
    #[value(alias = "skills")]
    Skill,
    /// MCP servers
    #[value(alias = "mcps", alias = "server", alias = "servers")]
    Mcp,
    /// Slash commands
    #[value(alias = "commands")]
    Command,
    /// Instructions (rule files and blocks)
    #[value(alias = "instructions")]
    Instruction,
    /// Everything the lock holds
    All,
}

/// One installed item, as the lock records it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    /// `skill`, `server`, `command` or `instruction` (the kinds of `kst sync --json`).
    pub kind: crate::item::Kind,
    pub name: String,
    pub scope: &'static str,
    /// The source as shown to people ([`DisplayUrl`]): no userinfo, no query, controls escaped.
    pub source: String,
    /// `default` | `local` | `branch X` | `tag X` | `rev X`.
    pub requested: String,
    /// Full commit id; `None` for local folders and inline packs.
    pub commit: Option<String>,
    /// Skills: the folder inside the source; servers: the pack file.
    pub path: String,
    /// Skills: the git tree id; servers: the hash of the definition; commands and
    /// instructions: the git blob id of the source file.
    pub id: String,
    /// Relative to the scope root (absolute only outside it), as in the lock.
    pub destinations: Vec<String>,
}

/// Every item of `lock` of the wanted kind, in lock order. The one walk over the lock.
pub fn rows(lock: &Lock, want: Kind, scope: &'static str) -> Vec<Row> {
    let kind = want;
    let mut out = Vec::new();
    if matches!(kind, Kind::Skill | Kind::All) {
        for src in &lock.sources {
            for skill in &src.skills {
                out.push(Row {
                    kind: crate::item::Kind::Skill,
                    name: skill.name.clone(),
                    scope,
                    source: DisplayUrl::new(&src.url).to_string(),
                    requested: src.requested.to_string(),
                    commit: src.commit.clone(),
                    path: skill.path.clone(),
                    id: skill.tree.clone(),
                    destinations: skill.installed.clone(),
                });
            }
        }
    }
    if matches!(kind, Kind::Mcp | Kind::All) {
        for src in &lock.mcps {
            for pack in &src.packs {
                for (name, server) in &pack.servers {
                    out.push(Row {
                        kind: crate::item::Kind::Server,
                        name: name.clone(),
                        scope,
                        source: DisplayUrl::new(&src.url).to_string(),
                        requested: src.requested.to_string(),
                        commit: src.commit.clone(),
                        path: pack.file.clone(),
                        id: server.hash.clone(),
                        destinations: server.targets.clone(),
                    });
                }
            }
        }
    }
    for (kind, section) in [
        (Kind::Command, &lock.commands),
        (Kind::Instruction, &lock.instructions),
    ] {
        if want != Kind::All && want != kind {
            continue;
        }
        for src in section {
            for file in &src.items {
                out.push(Row {
                    kind: if kind == Kind::Command {
                        crate::item::Kind::Command
                    } else {
                        crate::item::Kind::Instruction
                    },
                    name: file.name.clone(),
                    scope,
                    source: DisplayUrl::new(&src.url).to_string(),
                    requested: src.requested.to_string(),
                    commit: src.commit.clone(),
                    path: file.path.clone(),
                    id: file.blob.clone(),
                    destinations: file.installed.keys().cloned().collect(),
                });
            }
        }
    }
    out
}

#[derive(Serialize)]
struct JsonList<'a> {
    schema: u32,
    command: &'static str,
    scope: &'static str,
    lock: String,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    kind: crate::item::Kind,
    name: &'a str,
    scope: &'static str,
    source: &'a str,
    requested: &'a str,
    commit: Option<&'a str>,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'a str>,
    /// Commands and instructions: the source file's git blob id.
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<&'a str>,
    destinations: &'a [String],
}

pub fn run(common: &Common, args: ListArgs, printer: &Printer) -> Result<()> {
    let ctx = Workspace::load(common, crate::trust::Access::Reads { network: false })?;
    let rows = rows(&ctx.old_lock, args.kind, ctx.scope.name());
    if printer.json {
        printer.json(&JsonList {
            schema: 1,
            command: "list",
            scope: ctx.scope.name(),
            lock: ctx.scope.lock_path.display().to_string(),
            items: rows
                .iter()
                .map(|r| JsonItem {
                    kind: r.kind,
                    name: &r.name,
                    scope: r.scope,
                    source: &r.source,
                    requested: &r.requested,
                    commit: r.commit.as_deref(),
                    path: &r.path,
                    tree: (r.kind == crate::item::Kind::Skill).then_some(r.id.as_str()),
                    hash: (r.kind == crate::item::Kind::Server).then_some(r.id.as_str()),
                    blob: matches!(
                        r.kind,
                        crate::item::Kind::Command | crate::item::Kind::Instruction
                    )
                    .then_some(r.id.as_str()),
                    destinations: &r.destinations,
                })
                .collect(),
        });
        return Ok(());
    }
    if rows.is_empty() {
        printer.line(&format!(
            "nothing installed in the {} scope ({} lists nothing); run `kst sync`",
            ctx.scope.name(),
            ctx.scope.lock_path.display()
        ));
        return Ok(());
    }
    let table = table(&rows, terminal_width());
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in table {
        // Cells are escaped already; secrets are scrubbed at this sink as everywhere.
        if writeln!(out, "{}", crate::printer::clean(&line)).is_err() {
            break; // a closed pipe (`kst list | head -1`) is not an error
        }
    }
    Ok(())
}

/// The width to fit: stdout's terminal, else `COLUMNS`, else none (a pipe gets whole cells).
fn terminal_width() -> Option<usize> {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(std::io::stdout()) {
        return Some(w as usize);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
}

const HEADERS: [&str; 6] = ["KIND", "NAME", "SCOPE", "SOURCE", "COMMIT", "DESTINATIONS"];
/// Columns that give up width when the table is too wide, and the least each keeps.
const SHRINKABLE: [(usize, usize); 3] = [(5, 12), (3, 12), (1, 8)];

fn cells(r: &Row) -> [String; 6] {
    let commit = match (&r.commit, &r.requested) {
        (Some(c), _) => c.chars().take(7).collect(),
        (None, req) if req == &Requested::Local.to_string() => "local".to_string(),
        (None, _) => "-".to_string(),
    };
    [
        match r.kind {
            crate::item::Kind::Skill => "skill",
            crate::item::Kind::Server => "server",
            crate::item::Kind::McpPack => "mcp_pack",
            crate::item::Kind::Command => "command",
            crate::item::Kind::Instruction => "instruction",
        }
        .to_string(),
        crate::escape::escape_line(&r.name),
        r.scope.to_string(),
        crate::escape::escape_line(&r.source),
        commit,
        crate::escape::escape_line(&r.destinations.join(", ")),
    ]
}

fn width_of(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` cut to at most `w` columns, with `…` when cut.
fn fit(s: &str, w: usize) -> String {
    if width_of(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// The table's lines (header first), each at most `width` columns when a width is given and
/// the fixed columns fit in it.
pub fn table(rows: &[Row], width: Option<usize>) -> Vec<String> {
    let body: Vec<[String; 6]> = rows.iter().map(cells).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| width_of(h)).collect();
    for r in &body {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(width_of(c));
        }
    }
    if let Some(max) = width {
        let gaps = 2 * (HEADERS.len() - 1);
        loop {
            let total: usize = widths.iter().sum::<usize>() + gaps;
            if total <= max {
                break;
            }
            // Take one column from the widest shrinkable column still above its minimum.
            let Some(&(i, _)) = SHRINKABLE
                .iter()
                .filter(|(i, min)| widths[*i] > *min)
                .max_by_key(|(i, _)| widths[*i])
            else {
                break;
            };
            widths[i] -= 1;
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c = fit(c, widths[i]);
            s.push_str(&c);
            if i < last {
                s.push_str(&" ".repeat(widths[i] - width_of(&c) + 2));
            }
        }
        s
    };
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    std::iter::once(line(&header))
        .chain(body.iter().map(|r| line(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, source: &str, dests: &[&str]) -> Row {
        Row {
            kind: crate::item::Kind::Skill,
            name: name.into(),
            scope: "project",
            source: source.into(),
            requested: "default".into(),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            path: format!("skills/{name}"),
            id: "f".repeat(40),
            destinations: dests.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_narrow_terminal_cuts_cells_with_an_ellipsis_and_never_wraps() {
        let rows = vec![row(
            "a-rather-long-skill-name",
            "https://example.com/some/very/long/path/to/a/repository.git",
            &[
                ".claude/skills/a-rather-long-skill-name",
                ".agents/skills/x",
            ],
        )];
        let lines = table(&rows, Some(80));
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert!(width_of(l) <= 80, "{l:?} is {} wide", width_of(l));
        }
        assert!(lines[1].contains('…'));
        assert!(lines[1].contains("0123456"));
        // Wide enough: nothing is cut.
        let lines = table(&rows, Some(400));
        assert!(!lines[1].contains('…'));
        assert!(lines[1].contains(".agents/skills/x"));
    }

    #[test]
    fn cells_escape_control_characters() {
        let rows = vec![row("evil\x1b]52;c;x\x07\nname", "/tmp/p\rack", &["d"])];
        let lines = table(&rows, None);
        assert!(!lines[1].contains('\x1b') && !lines[1].contains('\n'));
        assert!(!lines[1].contains('\r'));
        assert!(lines[1].contains("\\u{1b}"));
    }
}
