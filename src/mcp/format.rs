//! One server definition, rendered in each agent's shape (SPEC 9, 10).
//!
//! Packs use the common `mcpServers` shape (`command`, `args`, `env`, or `url`, `headers`).
//! Rendering is a pure function of the definition, so kst can recompute what it wrote from the
//! template it recorded. Fields an agent has no place for are dropped with a warning rather
//! than written into a file the agent would refuse to load.

use serde_json::{Map, Value};

use crate::agents::McpFormat;

/// Where servers live inside a settings file of this format.
pub fn container_path(format: McpFormat) -> &'static [&'static str] {
    match format {
        McpFormat::McpServers => &["mcpServers"],
        McpFormat::VsCode => &["servers"],
        McpFormat::OpenCode => &["mcp"],
        McpFormat::CodexToml => &["mcp_servers"],
        McpFormat::ZCode => &["mcp", "servers"],
    }
}

/// A short name for messages and docs.
pub fn describe(format: McpFormat) -> &'static str {
    match format {
        McpFormat::McpServers => "mcpServers",
        McpFormat::VsCode => "VS Code servers",
        McpFormat::OpenCode => "OpenCode mcp",
        McpFormat::CodexToml => "Codex TOML mcp_servers",
        McpFormat::ZCode => "ZCode mcp.servers",
    }
}

fn is_remote(def: &Map<String, Value>) -> bool {
    !def.contains_key("command") && def.contains_key("url")
}

/// Render `def` for `format`. Returns the entry and warnings about fields that were dropped.
pub fn render(format: McpFormat, def: &Map<String, Value>) -> (Value, Vec<String>) {
    let mut warnings = Vec::new();
    let out = match format {
        McpFormat::McpServers | McpFormat::ZCode => def.clone(),
        McpFormat::VsCode => {
            // VS Code needs `type`; put it first, as its own docs do.
            let mut m = Map::new();
            let ty = def.get("type").cloned().unwrap_or_else(|| {
                Value::String(if is_remote(def) { "http" } else { "stdio" }.into())
            });
            m.insert("type".into(), ty);
            for (k, v) in def {
                if k != "type" {
                    m.insert(k.clone(), v.clone());
                }
            }
            m
        }
        McpFormat::OpenCode => {
            let mut m = Map::new();
            if is_remote(def) {
                m.insert("type".into(), "remote".into());
                m.insert("url".into(), def["url"].clone());
                if let Some(h) = def.get("headers") {
                    m.insert("headers".into(), h.clone());
                }
            } else {
                m.insert("type".into(), "local".into());
                let mut command = vec![def["command"].clone()];
                if let Some(Value::Array(args)) = def.get("args") {
                    command.extend(args.iter().cloned());
                }
                m.insert("command".into(), Value::Array(command));
                if let Some(e) = def.get("env") {
                    m.insert("environment".into(), e.clone());
                }
            }
            for k in ["enabled", "timeout"] {
                if let Some(v) = def.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            let used = [
                "type", "url", "headers", "command", "args", "env", "enabled", "timeout",
            ];
            for k in def.keys().filter(|k| !used.contains(&k.as_str())) {
                warnings.push(format!("`{k}` has no OpenCode equivalent; not written"));
            }
            m
        }
        McpFormat::CodexToml => {
            let mut m = Map::new();
            const KEEP: &[&str] = &[
                "command",
                "args",
                "env",
                "cwd",
                "url",
                "env_vars",
                "bearer_token_env_var",
                "enabled",
                "enabled_tools",
                "disabled_tools",
                "startup_timeout_sec",
                "tool_timeout_sec",
            ];
            for (k, v) in def {
                if v.is_null() {
                    warnings.push(format!(
                        "`{k}` is null, which TOML cannot hold; not written"
                    ));
                } else if KEEP.contains(&k.as_str()) {
                    m.insert(k.clone(), v.clone());
                } else if k == "headers" {
                    m.insert("http_headers".into(), v.clone());
                } else if k != "type" {
                    warnings.push(format!("`{k}` has no Codex equivalent; not written"));
                }
            }
            m
        }
    };
    (Value::Object(out), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn shapes() {
        let local = def(json!({"command": "gh-mcp", "args": ["--ro"], "env": {"T": "${kst_T}"}}));
        let remote = def(json!({"url": "https://mcp.example/x", "headers": {"A": "b"}}));

        assert_eq!(
            render(McpFormat::McpServers, &local).0,
            Value::Object(local.clone())
        );
        let (v, _) = render(McpFormat::VsCode, &local);
        assert_eq!(v["type"], "stdio");
        assert_eq!(v.as_object().unwrap().keys().next().unwrap(), "type");
        assert_eq!(render(McpFormat::VsCode, &remote).0["type"], "http");

        let (v, w) = render(McpFormat::OpenCode, &local);
        assert_eq!(
            v,
            json!({"type": "local", "command": ["gh-mcp", "--ro"], "environment": {"T": "${kst_T}"}})
        );
        assert!(w.is_empty());
        let (v, _) = render(McpFormat::OpenCode, &remote);
        assert_eq!(
            v,
            json!({"type": "remote", "url": "https://mcp.example/x", "headers": {"A": "b"}})
        );

        let (v, _) = render(McpFormat::CodexToml, &remote);
        assert_eq!(
            v,
            json!({"url": "https://mcp.example/x", "http_headers": {"A": "b"}})
        );
        let (_, w) = render(
            McpFormat::CodexToml,
            &def(json!({"command": "x", "disabled": true, "type": "stdio"})),
        );
        assert_eq!(w.len(), 1, "{w:?}");
    }
}
