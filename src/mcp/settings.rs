//! An agent's settings file, edited in place: JSON/JSONC through a concrete syntax tree
//! (`jsonc-parser`), Codex TOML through `toml_edit`. Both keep every byte kst does not change —
//! key order, formatting, comments, trailing commas — so an edit touches only the server
//! entries kst owns.
//!
//! A file that does not parse, or whose servers container has the wrong type, is refused as a
//! whole: the caller leaves it byte-identical. Error messages give a position and a reason but
//! never quote the file, which may hold secrets.

use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::{Map, Number, Value};
use toml_edit::{DocumentMut, Item, Table};

use crate::agents::McpFormat;
use crate::mcp::format::container_path;

enum Doc {
    Json(CstRootNode),
    Toml(DocumentMut),
}

pub struct SettingsFile {
    format: McpFormat,
    doc: Doc,
}

impl SettingsFile {
    /// Parse a settings file; `None` is a file that does not exist yet.
    pub fn parse(format: McpFormat, text: Option<&str>) -> Result<SettingsFile, String> {
        let doc = match format {
            McpFormat::CodexToml => {
                let src = text.unwrap_or("");
                // toml_edit's Display prints the offending line: never shown (SPEC 13.7).
                let doc: DocumentMut = src.parse().map_err(|e: toml_edit::TomlError| {
                    crate::malformed::toml(&e, src, crate::malformed::Quote::Nothing)
                        .position_first()
                })?;
                if let Some(item) = doc.get("mcp_servers")
                    && !item.is_table()
                {
                    return Err(
                        "`mcp_servers` is not a [mcp_servers] table (inline tables are not edited)"
                            .into(),
                    );
                }
                Doc::Toml(doc)
            }
            _ => {
                let text = match text {
                    Some(t) if !t.trim().is_empty() => t,
                    _ => "{}\n",
                };
                let root =
                    CstRootNode::parse(text, &crate::mcp::pack::jsonc_options()).map_err(|e| {
                        crate::malformed::jsonc(&e, text, crate::malformed::Quote::Nothing)
                            .position_first()
                    })?;
                let Some(obj) = root.object_value() else {
                    return Err("the top level is not a JSON object".into());
                };
                let mut cur = obj;
                for key in container_path(format) {
                    let Some(prop) = cur.get(key) else { break };
                    match prop.object_value() {
                        Some(o) => cur = o,
                        None => return Err(format!("`{key}` is not an object")),
                    }
                }
                Doc::Json(root)
            }
        };
        Ok(SettingsFile { format, doc })
    }

    /// The servers container, if present (JSON).
    fn json_container(&self, root: &CstRootNode, create: bool) -> Option<CstObject> {
        let mut cur = root.object_value()?;
        for key in container_path(self.format) {
            cur = match cur.get(key).and_then(|p| p.object_value()) {
                Some(o) => o,
                None if create => cur.object_value_or_set(key),
                None => return None,
            };
        }
        Some(cur)
    }

    /// The entry named `name`, as a JSON value.
    pub fn get(&self, name: &str) -> Option<Value> {
        match &self.doc {
            Doc::Json(root) => self
                .json_container(root, false)?
                .get(name)?
                .value()?
                .to_serde_value(),
            Doc::Toml(doc) => doc
                .get("mcp_servers")?
                .as_table()?
                .get(name)
                .map(item_to_json),
        }
    }

    /// Add or replace the entry `name`. A replaced entry keeps its place in the file.
    pub fn upsert(&mut self, name: &str, value: &Value) {
        match &mut self.doc {
            Doc::Json(root) => {
                let root = root.clone();
                let c = self
                    .json_container(&root, true)
                    .expect("the root is an object (checked when parsed)");
                match c.get(name) {
                    Some(p) => p.set_value(to_cst(value)),
                    None => {
                        c.append(name, to_cst(value));
                    }
                }
            }
            Doc::Toml(doc) => {
                if doc.get("mcp_servers").is_none() {
                    let mut t = Table::new();
                    // No empty `[mcp_servers]` header: only `[mcp_servers.NAME]` tables.
                    t.set_implicit(true);
                    doc.insert("mcp_servers", Item::Table(t));
                }
                let servers = doc["mcp_servers"]
                    .as_table_mut()
                    .expect("mcp_servers is a table (checked when parsed)");
                let mut table = json_to_table(value);
                if let Some(old) = servers.get(name).and_then(Item::as_table) {
                    table.set_position(old.position());
                    table.decor_mut().clone_from(old.decor());
                }
                servers.insert(name, Item::Table(table));
            }
        }
    }

    /// Remove the entry `name`; true if it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        match &mut self.doc {
            Doc::Json(root) => {
                let root = root.clone();
                match self.json_container(&root, false).and_then(|c| c.get(name)) {
                    Some(p) => {
                        p.remove();
                        true
                    }
                    None => false,
                }
            }
            Doc::Toml(doc) => doc
                .get_mut("mcp_servers")
                .and_then(Item::as_table_mut)
                .is_some_and(|t| t.remove(name).is_some()),
        }
    }

    /// The file's text after the edits.
    pub fn to_text(&self) -> String {
        match &self.doc {
            Doc::Json(root) => {
                let mut s = root.to_string();
                if !s.ends_with('\n') {
                    s.push('\n');
                }
                s
            }
            Doc::Toml(doc) => doc.to_string(),
        }
    }
}

fn to_cst(v: &Value) -> CstInputValue {
    match v {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(a) => CstInputValue::Array(a.iter().map(to_cst).collect()),
        Value::Object(m) => {
            CstInputValue::Object(m.iter().map(|(k, v)| (k.clone(), to_cst(v))).collect())
        }
    }
}

fn toml_value_to_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as T;
    match v {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::Number((*i.value()).into()),
        T::Float(f) => Number::from_f64(*f.value())
            .map(Value::Number)
            .unwrap_or(Value::Null),
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(a.iter().map(toml_value_to_json).collect()),
        T::InlineTable(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), toml_value_to_json(v)))
                .collect(),
        ),
    }
}

fn item_to_json(item: &Item) -> Value {
    match item {
        Item::None => Value::Null,
        Item::Value(v) => toml_value_to_json(v),
        Item::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), item_to_json(v)))
                .collect::<Map<String, Value>>(),
        ),
        Item::ArrayOfTables(a) => Value::Array(
            a.iter()
                .map(|t| item_to_json(&Item::Table(t.clone())))
                .collect(),
        ),
    }
}

fn json_to_toml(v: &Value) -> Option<toml_edit::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for x in a.iter().filter_map(json_to_toml) {
                arr.push(x);
            }
            toml_edit::Value::Array(arr)
        }
        Value::Object(m) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, x) in m {
                if let Some(x) = json_to_toml(x) {
                    t.insert(k, x);
                }
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

/// A server entry as a `[mcp_servers.NAME]` table; nested maps (`env`) as inline tables.
fn json_to_table(v: &Value) -> Table {
    let mut t = Table::new();
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            if let Some(x) = json_to_toml(x) {
                t.insert(k, Item::Value(x));
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jsonc_edits_keep_comments_order_and_trailing_commas() {
        let text = "{\n  // my settings\n  \"theme\": \"dark\",\n  \"servers\": {\n    \"mine\": { \"type\": \"stdio\", \"command\": \"me\" }, // keep\n  },\n  \"z\": 1,\n}\n";
        let mut f = SettingsFile::parse(McpFormat::VsCode, Some(text)).unwrap();
        assert_eq!(f.get("mine").unwrap()["command"], "me");
        assert_eq!(f.get("gh"), None);
        f.upsert("gh", &json!({"type": "stdio", "command": "gh"}));
        let out = f.to_text();
        assert!(out.contains("// my settings"), "{out}");
        assert!(out.contains("// keep"), "{out}");
        assert!(out.starts_with("{\n  // my settings\n  \"theme\": \"dark\",\n  \"servers\": {\n    \"mine\": { \"type\": \"stdio\", \"command\": \"me\" }, // keep\n"), "{out}");
        assert!(out.ends_with("  \"z\": 1,\n}\n"), "{out}");
        let again = SettingsFile::parse(McpFormat::VsCode, Some(&out)).unwrap();
        assert_eq!(again.get("gh").unwrap()["command"], "gh");

        let mut f = again;
        assert!(f.remove("gh"));
        assert_eq!(f.to_text(), text);
    }

    #[test]
    fn new_json_file_and_nested_container() {
        let mut f = SettingsFile::parse(McpFormat::ZCode, None).unwrap();
        f.upsert("a", &json!({"command": "x", "args": ["1"]}));
        let out = f.to_text();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["mcp"]["servers"]["a"]["args"][0], "1");
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        assert!(SettingsFile::parse(McpFormat::McpServers, Some("[1]")).is_err());
        assert!(SettingsFile::parse(McpFormat::McpServers, Some("{\"mcpServers\": 3}")).is_err());
        assert!(SettingsFile::parse(McpFormat::McpServers, Some("{\"a\": ")).is_err());
        assert!(SettingsFile::parse(McpFormat::CodexToml, Some("mcp_servers = 1\n")).is_err());
        let e = SettingsFile::parse(
            McpFormat::CodexToml,
            Some("a = \"secret-value\"\nb = = 2\n"),
        )
        .err()
        .unwrap();
        assert!(e.starts_with("line 2"), "{e}");
        assert!(!e.contains("secret-value"), "{e}");
    }

    #[test]
    fn toml_edits_keep_comments_and_position() {
        let text = "# my codex config\nmodel = \"o3\" # inline\n\n[mcp_servers.mine]\ncommand = \"me\"\n\n[mcp_servers.ours]\ncommand = \"old\"\n\n[profiles.x]\nmodel = \"y\"\n";
        let mut f = SettingsFile::parse(McpFormat::CodexToml, Some(text)).unwrap();
        assert_eq!(f.get("mine").unwrap(), json!({"command": "me"}));
        f.upsert("ours", &json!({"command": "new", "env": {"T": "v"}}));
        f.upsert("added", &json!({"command": "a", "args": ["--x"]}));
        let out = f.to_text();
        assert!(out.starts_with("# my codex config\nmodel = \"o3\" # inline\n\n[mcp_servers.mine]\ncommand = \"me\"\n\n[mcp_servers.ours]\ncommand = \"new\"\nenv = { T = \"v\" }\n"), "{out}");
        assert!(
            out.contains("[mcp_servers.added]\ncommand = \"a\"\nargs = [\"--x\"]\n"),
            "{out}"
        );
        let f2 = SettingsFile::parse(McpFormat::CodexToml, Some(&out)).unwrap();
        assert_eq!(
            f2.get("ours").unwrap(),
            json!({"command": "new", "env": {"T": "v"}})
        );
        let mut f3 = f2;
        f3.remove("added");
        f3.upsert("ours", &json!({"command": "old"}));
        assert_eq!(f3.to_text(), text);
    }

    #[test]
    fn new_toml_file_has_no_empty_header() {
        let mut f = SettingsFile::parse(McpFormat::CodexToml, None).unwrap();
        f.upsert("a", &json!({"command": "x"}));
        assert_eq!(f.to_text(), "[mcp_servers.a]\ncommand = \"x\"\n");
    }

    #[test]
    fn toml_dotted_keys_and_inline_server_tables_stay_valid() {
        // `mcp_servers.mine.command = …` at the top level, and `[mcp_servers]` with an inline
        // table per server: both are what people write by hand.
        for text in [
            "model = \"o3\"\nmcp_servers.mine.command = \"me\"\n",
            "[mcp_servers]\nmine = { command = \"me\" }\n",
        ] {
            let mut f = SettingsFile::parse(McpFormat::CodexToml, Some(text)).unwrap();
            assert_eq!(f.get("mine").unwrap(), json!({"command": "me"}), "{text}");
            f.upsert("added", &json!({"command": "a", "env": {"K": "v"}}));
            let out = f.to_text();
            let back = SettingsFile::parse(McpFormat::CodexToml, Some(&out))
                .unwrap_or_else(|e| panic!("{e}\n{out}"));
            assert_eq!(back.get("mine").unwrap(), json!({"command": "me"}), "{out}");
            assert_eq!(
                back.get("added").unwrap(),
                json!({"command": "a", "env": {"K": "v"}}),
                "{out}"
            );
            let mut back = back;
            back.remove("added");
            assert_eq!(back.to_text(), text);
        }
    }
}
