//! MCP packs (SPEC 10): JSON files with an `mcpServers` object, found under a discovery root as
//! `.mcp.json`, `mcp.json` and `mcps/*.json`, or named (`mcps/<name>.json`, `{name, path}`).
//!
//! Packs are read through [`PackView`], so a git commit in the cache and a local folder follow
//! the same rules. Nothing in a pack is ever executed; definitions are data to be written.

use serde_json::{Map, Value};

use crate::discover::PackView;
use crate::tree::{Budget, Caps, EntryKind};

pub use crate::config::mcp::{PackPick, PackSelection, check_name, check_server};

/// One server definition, in the pack's (`mcpServers`) shape, placeholders unresolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub def: Map<String, Value>,
}

/// A parsed pack file.
#[derive(Debug, Clone)]
pub struct PackFile {
    /// Relative to the source root (including `sub-dir`), or `inline`.
    pub file: String,
    pub servers: Vec<Server>,
}

/// A pack that was asked for (or found) and cannot be used.
#[derive(Debug, Clone)]
pub struct BrokenPack {
    /// The pack file (relative to the source root).
    pub file: String,
    pub error: String,
}

/// Options for reading JSON written by people: comments and trailing commas (JSONC, as in VS
/// Code's files) are fine; the JSON5 extensions are not.
pub fn jsonc_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Parse a pack file's bytes.
pub fn parse(file: &str, bytes: &[u8]) -> Result<PackFile, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8"))?;
    let value: Value = jsonc_parser::cst::CstRootNode::parse(text, &jsonc_options())
        .map_err(|e| format!("{file}: not valid JSON: {e}"))?
        .value()
        .and_then(|v| v.to_serde_value())
        .unwrap_or(Value::Null);
    let Some(servers) = value.as_object().and_then(|o| o.get("mcpServers")) else {
        return Err(format!("{file}: no `mcpServers` object"));
    };
    let Some(servers) = servers.as_object() else {
        return Err(format!("{file}: `mcpServers` must be an object"));
    };
    let mut out = Vec::new();
    for (name, def) in servers {
        check_name(name).map_err(|e| format!("{file}: {e}"))?;
        let def = check_server(name, def).map_err(|e| format!("{file}: {e}"))?;
        out.push(Server {
            name: name.to_string(),
            def,
        });
    }
    Ok(PackFile {
        file: file.to_string(),
        servers: out,
    })
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// Every pack file under `root`, in a stable order: `.mcp.json`, `mcp.json`, then
/// `mcps/*.json` by name.
pub fn discover(view: &dyn PackView, root: &str) -> Vec<String> {
    let mut out: Vec<String> = [".mcp.json", "mcp.json"]
        .iter()
        .map(|f| join(root, f))
        .filter(|f| view.is_file(f))
        .collect();
    if view.subdirs(root).iter().any(|d| d == "mcps") {
        let dir = join(root, "mcps");
        if let Ok(tree) = view.list(&dir, &mut Budget::new(Caps::from_env())) {
            let mut names: Vec<&str> = tree
                .entries
                .iter()
                .filter(|e| matches!(e.kind, EntryKind::File { .. }))
                .map(|e| e.name.as_str())
                .filter(|n| n.ends_with(".json"))
                .collect();
            names.sort();
            out.extend(names.into_iter().map(|n| join(&dir, n)));
        }
    }
    out
}

/// The outcome of selecting packs from a source.
#[derive(Debug, Default)]
pub struct Selected {
    pub packs: Vec<PackFile>,
    pub broken: Vec<BrokenPack>,
    pub warnings: Vec<String>,
}

/// Read the selected pack files. A named pack that is missing, and any pack that does not
/// parse, is broken; the rest are used. A server name found twice in one source keeps its
/// first place, with a warning (as skills do).
pub fn select(view: &dyn PackView, root: &str, selection: &PackSelection) -> Selected {
    let files: Vec<String> = match selection {
        PackSelection::All => discover(view, root),
        PackSelection::Named(picks) => picks.iter().map(|p| join(root, &p.file())).collect(),
    };
    let mut out = Selected::default();
    if files.is_empty() {
        out.broken.push(BrokenPack {
            file: if root.is_empty() {
                ".".into()
            } else {
                root.into()
            },
            error: format!(
                "no MCP pack found under {} (looked for .mcp.json, mcp.json, mcps/*.json)",
                if root.is_empty() {
                    "the source root"
                } else {
                    root
                }
            ),
        });
        return out;
    }
    for file in files {
        let Some(bytes) = view.read_file(&file) else {
            out.broken.push(BrokenPack {
                error: format!("pack {file} not found (or not a regular file under 1 MiB)"),
                file,
            });
            continue;
        };
        match parse(&file, &bytes) {
            Ok(mut p) => {
                p.servers.retain(|s| {
                    let seen = out
                        .packs
                        .iter()
                        .find(|q| q.servers.iter().any(|t| t.name == s.name));
                    if let Some(q) = seen {
                        out.warnings.push(format!(
                            "server {:?} is in {} and {}; using {}",
                            s.name, q.file, file, q.file
                        ));
                    }
                    seen.is_none()
                });
                out.packs.push(p);
            }
            Err(error) => out.broken.push(BrokenPack { file, error }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::DiskPack;
    use crate::mcp::config::PackPick;

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn discovery_order_and_selection() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        write(r, "mcp.json", r#"{"mcpServers": {"a": {"command": "x"}}}"#);
        write(
            r,
            ".mcp.json",
            r#"{"mcpServers": {"b": {"url": "https://e"}}}"#,
        );
        write(
            r,
            "mcps/zz.json",
            "{ // c\n\"mcpServers\": {\"a\": {\"command\": \"y\"},},}",
        );
        write(
            r,
            "mcps/gh.json",
            r#"{"mcpServers": {"github": {"command": "gh"}}}"#,
        );
        write(r, "mcps/notes.txt", "x");
        let view = DiskPack::new(r.to_path_buf(), None);
        assert_eq!(
            discover(&view, ""),
            [".mcp.json", "mcp.json", "mcps/gh.json", "mcps/zz.json"]
        );
        let all = select(&view, "", &PackSelection::All);
        assert!(all.broken.is_empty(), "{:?}", all.broken);
        let names: Vec<&str> = all
            .packs
            .iter()
            .flat_map(|p| p.servers.iter().map(|s| s.name.as_str()))
            .collect();
        assert_eq!(names, ["b", "a", "github"]);
        assert_eq!(all.warnings.len(), 1, "{:?}", all.warnings);

        let named = select(
            &view,
            "",
            &PackSelection::Named(vec![
                PackPick {
                    name: "gh".into(),
                    path: None,
                },
                PackPick {
                    name: "nope".into(),
                    path: None,
                },
            ]),
        );
        assert_eq!(named.packs.len(), 1);
        assert_eq!(named.broken[0].file, "mcps/nope.json");
    }

    #[test]
    fn malformed_packs_are_broken() {
        assert!(parse("p.json", b"{").is_err());
        assert!(parse("p.json", br#"{"servers": {}}"#).is_err());
        assert!(parse("p.json", br#"{"mcpServers": {"a": {}}}"#).is_err());
        assert!(parse("p.json", br#"{"mcpServers": {"a b": {"command": "x"}}}"#).is_err());
        assert!(
            parse(
                "p.json",
                br#"{"mcpServers": {"a": {"command": "x", "args": [1]}}}"#
            )
            .is_err()
        );
    }
}
