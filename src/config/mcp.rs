//! The `mcps:` entries of `kasetto.yaml` (SPEC 3, 10), parsed as strictly as `skills:`.
//!
//! Two shapes: a pack source (`source` + optional `ref`/`branch`/`sub-dir`/`mcps`) and an inline
//! pack (`name` + `servers`). Unknown keys, a mix of both shapes, bad server names and server
//! definitions without `command` or `url` are errors naming the file and line.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::entry::{NonEmpty, RelPath};
use crate::error::{Error, Result};
use crate::request::Reference;
use crate::source::Source;

/// The `mcps:` selection of a pack source: the same shape as a skills selection.
pub type PackSelection = crate::request::Selection;
/// One named pack: `name` or `{name, path}`.
pub type PackPick = crate::request::Pick;

impl PackPick {
    /// The pack file this pick names, relative to the discovery root.
    pub fn file(&self) -> String {
        // Kasetto documents `mcps: [github.json]`: a name already ending in `.json` names that
        // file, not `github.json.json`.
        let file = if self.name.ends_with(".json") {
            self.name.clone()
        } else {
            format!("{}.json", self.name)
        };
        match &self.path {
            None => format!("mcps/{file}"),
            Some(p) if p.ends_with(".json") => p.clone(),
            Some(p) => format!("{p}/{file}"),
        }
    }
}

/// A server or inline-pack name: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`. Names become keys in
/// JSON and TOML files, so they are kept plain.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid MCP server name (letters, digits, '.', '_', '-'; starting with a letter or digit; at most 128)"
        ))
    }
}

/// Validate one server definition: an object with a string `command` (a local process) or a
/// string `url` (a remote server). Everything else is passed through to the agent as written.
pub fn check_server(name: &str, def: &Value) -> Result<Map<String, Value>, String> {
    let Some(obj) = def.as_object() else {
        return Err(format!("server {name:?} must be an object"));
    };
    let command = obj.get("command");
    let url = obj.get("url");
    match (command, url) {
        (Some(Value::String(c)), _) if !c.trim().is_empty() => {}
        (None, Some(Value::String(u))) if !u.trim().is_empty() => {}
        (Some(_), _) => return Err(format!("server {name:?}: `command` must be a string")),
        (None, Some(_)) => return Err(format!("server {name:?}: `url` must be a string")),
        (None, None) => {
            return Err(format!(
                "server {name:?} needs a `command` (local) or a `url` (remote)"
            ));
        }
    }
    if let Some(a) = obj.get("args")
        && !a.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(format!("server {name:?}: `args` must be a list of strings"));
    }
    for key in ["env", "headers"] {
        if let Some(e) = obj.get(key)
            && !e
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
        {
            return Err(format!(
                "server {name:?}: `{key}` must map names to strings"
            ));
        }
    }
    Ok(obj.clone())
}

/// One entry of `mcps:`.
#[derive(Debug, Clone)]
pub struct McpSource {
    pub kind: McpSourceKind,
    /// `file:line` of the entry, for messages.
    pub at: String,
    /// `trust:` (its own, else the global one): its git pins must be signed (SPEC 16).
    pub trust: Option<crate::config::entry::Trust>,
}

#[derive(Debug, Clone)]
pub enum McpSourceKind {
    /// Pack files from a git repository or a local folder.
    Pack {
        source: Source,
        reference: Reference,
        sub_dir: Option<String>,
        selection: PackSelection,
    },
    /// `name` + `servers` written in the config itself.
    Inline {
        name: String,
        servers: Vec<(String, Map<String, Value>)>,
    },
}

/// The URL recorded in the lock for an inline pack: there is no repository to name.
pub fn inline_url(name: &str) -> String {
    format!("inline:{name}")
}

impl McpSource {
    /// Who this entry is, for finding its lock entry (an inline pack is local).
    pub fn id(&self) -> crate::request::EntryId {
        let (url, reference, sub_dir) = self.identity();
        crate::request::EntryId {
            url,
            reference,
            local: match &self.kind {
                McpSourceKind::Inline { .. } => true,
                McpSourceKind::Pack { source, .. } => matches!(source, Source::Local { .. }),
            },
            sub_dir,
        }
    }

    /// The discovery root inside the source (packs only).
    pub fn sub_dir(&self) -> Option<&str> {
        match &self.kind {
            McpSourceKind::Pack { sub_dir, .. } => sub_dir.as_deref(),
            McpSourceKind::Inline { .. } => None,
        }
    }

    /// `(source, ref-or-branch, sub-dir)` as for skills; inline packs are identified by name.
    pub fn identity(&self) -> (String, Reference, Option<String>) {
        match &self.kind {
            McpSourceKind::Pack {
                source,
                reference,
                sub_dir,
                ..
            } => (
                source.identity().to_string(),
                reference.clone(),
                sub_dir.clone(),
            ),
            McpSourceKind::Inline { name, .. } => (inline_url(name), Reference::Default, None),
        }
    }

    /// A pack from a git repository (the only kind `trust:` applies to).
    pub fn is_git(&self) -> bool {
        matches!(
            &self.kind,
            McpSourceKind::Pack {
                source: Source::Git(_),
                ..
            }
        )
    }

    /// The identity string used in the lock, messages and JSON.
    pub fn url(&self) -> String {
        self.identity().0
    }
}

impl crate::config::entry::ConfigEntry for McpSource {
    fn at(&self) -> &str {
        &self.at
    }
    fn id(&self) -> crate::request::EntryId {
        McpSource::id(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw shape, as written in YAML.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpSource {
    #[serde(default)]
    source: Option<String>,
    #[serde(default, rename = "ref")]
    reference: Option<NonEmpty>,
    #[serde(default)]
    branch: Option<NonEmpty>,
    #[serde(default, rename = "sub-dir", alias = "sub_dir")]
    sub_dir: Option<RelPath>,
    #[serde(default)]
    mcps: Option<PackSelection>,
    #[serde(default)]
    name: Option<ServerName>,
    #[serde(default)]
    servers: Option<InlineServers>,
    #[serde(default)]
    trust: Option<crate::config::entry::RawTrust>,
}

struct ServerName(String);

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_name(&s).map_err(de::Error::custom)?;
        Ok(ServerName(s))
    }
}

/// `servers:` of an inline pack: a map of server name → definition, validated on the spot so
/// the error carries its line.
struct InlineServers(Vec<(String, Map<String, Value>)>);

impl<'de> Deserialize<'de> for InlineServers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InlineServers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of server name to {command, args, env} or {url, headers}")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<InlineServers, A::Error> {
                let mut out: Vec<(String, Map<String, Value>)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    check_name(&name).map_err(de::Error::custom)?;
                    let def: Value = map.next_value()?;
                    let def = check_server(&name, &def).map_err(de::Error::custom)?;
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!(
                            "server {name:?} is defined twice"
                        )));
                    }
                    out.push((name, def));
                }
                Ok(InlineServers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Validate raw entries (in order, with the line of each) into [`McpSource`]s.
/// `base` is the file's folder (None for a remote config); local folders are spelled relative
/// to `root_dir`, the folder of the config the user named, as skills sources are.
pub(crate) fn build(
    raw: Vec<RawMcpSource>,
    lines: &[usize],
    label: &str,
    base: Option<&Path>,
    root_dir: &Path,
) -> Result<Vec<McpSource>> {
    let mut out: Vec<McpSource> = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let at = format!("{label}:{line}");
        let kind = match (m.source, m.name, m.servers) {
            (Some(raw_source), None, None) => {
                let (source, reference) = crate::config::entry::source_entry(
                    &raw_source,
                    m.reference,
                    m.branch,
                    &at,
                    base,
                    root_dir,
                )?;
                McpSourceKind::Pack {
                    source,
                    reference,
                    sub_dir: m.sub_dir.map(|p| p.0).filter(|p| !p.is_empty()),
                    selection: m.mcps.unwrap_or(PackSelection::All),
                }
            }
            (None, Some(ServerName(name)), Some(InlineServers(servers))) => {
                if m.reference.is_some()
                    || m.branch.is_some()
                    || m.sub_dir.is_some()
                    || m.mcps.is_some()
                {
                    return Err(Error::usage(format!(
                        "{at}: an inline pack (`name` + `servers`) takes no `ref`, `branch`, `sub-dir` or `mcps`"
                    )));
                }
                McpSourceKind::Inline { name, servers }
            }
            (Some(_), _, _) => {
                return Err(Error::usage(format!(
                    "{at}: an entry has either `source` (a pack) or `name` + `servers` (an inline pack), not both"
                )));
            }
            (None, Some(_), None) => {
                return Err(Error::usage(format!(
                    "{at}: inline pack without `servers`; add `servers: {{ NAME: {{ command: …, args: […] }} }}`"
                )));
            }
            (None, None, _) => {
                return Err(Error::usage(format!(
                    "{at}: an `mcps` entry needs `source` (a pack) or `name` + `servers` (an inline pack)"
                )));
            }
        };
        let mut entry = McpSource {
            kind,
            at,
            trust: None,
        };
        entry.trust =
            crate::config::entry::trust_entry(m.trust, &entry.at, base, Some(entry.is_git()))?;
        if let Some(prev) = out.iter().find(|p| p.identity() == entry.identity()) {
            return Err(Error::usage(format!(
                "{}: the same MCP source is listed twice (first at {}); merge the two entries",
                entry.at, prev.at
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::error::Error;
    use std::path::Path;

    use super::*;

    fn err(text: &str) -> String {
        match parse(Path::new("/p/kasetto.yaml"), text) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn both_shapes_parse() {
        let c = parse(
            Path::new("/p/kasetto.yaml"),
            r#"
agent: claude
mcps:
  - source: https://github.com/org/mcp-packs
    mcps: [github, { name: db, path: tools }, { name: x, path: a/b.json }]
  - name: laptop-extras
    servers: { local-db: { command: pg-mcp, args: ["--ro"] } }
  - source: ./local
"#,
        )
        .unwrap();
        assert_eq!(c.mcps.len(), 3);
        let McpSourceKind::Pack { selection, .. } = &c.mcps[0].kind else {
            panic!()
        };
        let PackSelection::Named(picks) = selection else {
            panic!()
        };
        let files: Vec<String> = picks.iter().map(PackPick::file).collect();
        assert_eq!(files, ["mcps/github.json", "tools/db.json", "a/b.json"]);
        assert_eq!(c.mcps[1].at, "/p/kasetto.yaml:6");
        assert_eq!(c.mcps[1].url(), "inline:laptop-extras");
        assert!(matches!(
            &c.mcps[2].kind,
            McpSourceKind::Pack {
                selection: PackSelection::All,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_file_and_line() {
        let m = err("agent: claude\nmcps:\n  - source: ./x\n    mcsp: [a]\n");
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");
        assert!(m.contains("mcsp"), "{m}");

        let m =
            err("agent: claude\nmcps:\n  - name: x\n    servers: { bad name: { command: a } }\n");
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");
        assert!(m.contains("bad name"), "{m}");

        let m = err("agent: claude\nmcps:\n  - name: x\n    servers: { a: { args: [b] } }\n");
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");
        assert!(m.contains("command"), "{m}");

        let m = err(
            "agent: claude\nmcps:\n  - source: ./x\n  - source: ./y\n    name: z\n    servers: {}\n",
        );
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");
        assert!(m.contains("not both"), "{m}");

        let m = err("agent: claude\nmcps:\n  - name: x\n");
        assert!(m.starts_with("/p/kasetto.yaml:3:"), "{m}");

        let m = err("mcps:\n  - source: ./x\n");
        assert!(m.contains("agent"), "{m}");
    }
}
