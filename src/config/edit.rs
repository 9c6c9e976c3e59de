//! Editing the entry lists of a `kasetto.yaml` in place, for `kst add` and `kst remove`.
//!
//! The file is the user's: its comments, order, blank lines and quoting are kept. No YAML
//! library edits a file while keeping all of that and is mature enough to trust with it, so this
//! is a small line-level editor of one shape — the block lists `skills:`, `mcps:`,
//! `commands:`, `instructions:` at the top level, whose items start with `- ` at one indent —
//! with four edits: append an entry to a list, set an entry's names in place (a one-line
//! `[a, b]` list rewritten on its line, or lines added to and taken out of a block list), replace
//! one entry's lines with a new rendering of that entry, remove one entry's lines. Nothing
//! outside the edited lines changes, byte for byte. Anything else (a flow list `skills: [...]`, a key kst cannot find on its own
//! line, a list whose items it cannot count) is refused with an error that says how to write it.
//!
//! Every edit is proven before it is returned: the new text is parsed again and must be the old
//! document with exactly that change ([`Doc::apply`]); the caller then runs the real config
//! parser on it before writing.

use serde_yaml_ng::{Mapping, Value};

/// The lists `add`/`remove` edit: each key holds entries whose selection key is the same word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Skills,
    Mcps,
    Commands,
    Instructions,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Skills, Kind::Mcps, Kind::Commands, Kind::Instructions];

    /// The top-level key, which is also the entry's selection key.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Skills => "skills",
            Kind::Mcps => "mcps",
            Kind::Commands => "commands",
            Kind::Instructions => "instructions",
        }
    }
}

/// One entry of a list, as the file has it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Its place in the list.
    pub index: usize,
    /// The 1-based line of its `- `.
    pub line: usize,
    pub value: Mapping,
}

impl Entry {
    fn str_of(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    /// `source:` as written; `None` for an inline MCP pack (`name` + `servers`).
    pub fn source(&self) -> Option<&str> {
        self.str_of("source")
    }

    /// `ref:` (which wins) or `branch:`, as written.
    pub fn ref_or_branch(&self) -> (Option<&str>, Option<&str>) {
        (self.str_of("ref"), self.str_of("branch"))
    }

    /// `sub-dir:` (or `sub_dir:`), normalised as the config parser does (no `.`, no empty parts).
    pub fn sub_dir(&self) -> Option<String> {
        let raw = self.str_of("sub-dir").or_else(|| self.str_of("sub_dir"))?;
        normalise_sub_dir(raw)
    }

    /// The selection under the kind's key: `None` for `"*"` (or no key: all), else the names.
    pub fn names(&self) -> Option<Vec<String>> {
        match self.value.get(self.kind.key()) {
            Some(Value::Sequence(items)) => Some(items.iter().filter_map(pick_name).collect()),
            _ => None,
        }
    }
}

/// `a/./b/` → `a/b`; empty → `None`.
pub fn normalise_sub_dir(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The name of a pick: `name` or `{name, path}`.
pub fn pick_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Where a list is in the text.
#[derive(Debug, Clone)]
struct List {
    /// The line of `key:` (0-based).
    key_line: usize,
    /// Each item's first and last line (0-based, inclusive): from its `- ` to its last line
    /// that is not blank and not a comment.
    items: Vec<(usize, usize)>,
}

/// A parsed config text, ready to be edited.
#[derive(Debug, Clone)]
pub struct Doc {
    lines: Vec<String>,
    root: Mapping,
    newline: &'static str,
}

/// One change to a document.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Append an entry to the kind's list (creating the list if there is none).
    Append(Kind, Mapping),
    /// Replace the entry at this index with this one.
    Replace(Kind, usize, Mapping),
    /// Remove the entry at this index.
    Remove(Kind, usize),
    /// Set the selection (the names) of the entry at this index: in place when its selection is
    /// a block list or a one-line flow list (the entry's other lines and comments kept), else
    /// by rewriting the entry.
    SetNames(Kind, usize, Vec<Value>),
}

impl Doc {
    /// Parse `text`. Errors are for the user: the file is not a mapping, or not YAML (the real
    /// parser has said so first, with the line).
    pub fn parse(text: &str) -> Result<Doc, String> {
        let root = if text.trim().is_empty() {
            Mapping::new()
        } else {
            match serde_yaml_ng::from_str::<Value>(text) {
                Ok(Value::Mapping(m)) => m,
                Ok(Value::Null) => Mapping::new(),
                Ok(_) => return Err("the config is not a mapping of keys".into()),
                Err(e) => return Err(format!("the config is not valid YAML: {e}")),
            }
        };
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        Ok(Doc {
            lines: text.split_inclusive('\n').map(str::to_string).collect(),
            root,
            newline,
        })
    }

    pub fn text(&self) -> String {
        self.lines.concat()
    }

    /// The entries of one list, in order, with their lines.
    pub fn entries(&self, kind: Kind) -> Result<Vec<Entry>, String> {
        let Some(list) = self.list(kind)? else {
            return Ok(Vec::new());
        };
        let values = match self.root.get(kind.key()) {
            Some(Value::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        };
        Ok(values
            .into_iter()
            .zip(&list.items)
            .enumerate()
            .map(|(index, (v, (start, _)))| Entry {
                kind,
                index,
                line: start + 1,
                value: match v {
                    Value::Mapping(m) => m,
                    _ => Mapping::new(),
                },
            })
            .collect())
    }

    /// Apply one edit and prove it: the new text must parse to the old document with exactly
    /// this change.
    pub fn apply(&self, edit: &Edit) -> Result<Doc, String> {
        if let Edit::SetNames(kind, index, items) = edit {
            let entries = self.entries(*kind)?;
            let entry = entries.get(*index).ok_or("no such entry")?;
            let mut value = entry.value.clone();
            value.insert(
                Value::String(kind.key().into()),
                Value::Sequence(items.clone()),
            );
            if let Some(lines) = self.names_in_place(entry, items) {
                let mut expected = self.root.clone();
                if let Some(Value::Sequence(s)) = expected.get_mut(kind.key()) {
                    s[*index] = Value::Mapping(value.clone());
                }
                if let Ok(doc) = proven(lines, expected) {
                    return Ok(doc);
                }
            }
            return self.apply(&Edit::Replace(*kind, *index, value));
        }
        let mut expected = self.root.clone();
        let mut lines = self.lines.clone();
        let nl = self.newline;
        match edit {
            Edit::Append(kind, entry) => {
                let key = kind.key();
                match self.list(*kind)? {
                    None => {
                        if let Some(last) = lines.last_mut()
                            && !last.ends_with('\n')
                        {
                            last.push_str(nl);
                        }
                        lines.push(format!("{key}:{nl}"));
                        lines.extend(render(entry, 2, 4, nl)?);
                    }
                    Some(list) if list.items.is_empty() => {
                        let comment = comment_of(&lines[list.key_line]);
                        lines[list.key_line] = format!("{key}:{comment}{nl}");
                        let at = list.key_line + 1;
                        lines.splice(at..at, render(entry, 2, 4, nl)?);
                    }
                    Some(list) => {
                        let (first, _) = list.items[0];
                        let (dash, keycol) = item_indents(&lines, first);
                        let (_, last_end) = *list.items.last().expect("not empty");
                        let at = last_end + 1;
                        lines.splice(at..at, render(entry, dash, keycol, nl)?);
                    }
                }
                match expected.get_mut(key) {
                    Some(Value::Sequence(s)) => s.push(Value::Mapping(entry.clone())),
                    _ => {
                        expected.insert(
                            Value::String(key.into()),
                            Value::Sequence(vec![Value::Mapping(entry.clone())]),
                        );
                    }
                }
            }
            Edit::Replace(kind, index, entry) => {
                let list = self.list(*kind)?.ok_or("no such list")?;
                let (start, end) = *list.items.get(*index).ok_or("no such entry")?;
                let (dash, keycol) = item_indents(&lines, start);
                lines.splice(start..=end, render(entry, dash, keycol, nl)?);
                match expected.get_mut(kind.key()) {
                    Some(Value::Sequence(s)) if *index < s.len() => {
                        s[*index] = Value::Mapping(entry.clone())
                    }
                    _ => return Err("no such entry".into()),
                }
            }
            Edit::SetNames(..) => unreachable!("handled above"),
            Edit::Remove(kind, index) => {
                let key = kind.key();
                let list = self.list(*kind)?.ok_or("no such list")?;
                let (start, end) = *list.items.get(*index).ok_or("no such entry")?;
                lines.drain(start..=end);
                if list.items.len() == 1 {
                    // The list is empty now: say so, as an empty list (a bare `key:` is null).
                    let comment = comment_of(&lines[list.key_line]);
                    lines[list.key_line] = format!("{key}: []{comment}{nl}");
                }
                match expected.get_mut(key) {
                    Some(Value::Sequence(s)) if *index < s.len() => {
                        s.remove(*index);
                    }
                    _ => return Err("no such entry".into()),
                }
            }
        }
        proven(lines, expected)
    }

    /// The lines of the document with the entry's selection set to `items`, edited in place:
    /// a one-line flow list is rewritten on its line (its comment kept), a block list loses the
    /// lines of the names dropped and gains lines for the names added after its last one.
    /// `None` when the selection is neither (`"*"`), or the list cannot be told apart.
    fn names_in_place(&self, entry: &Entry, items: &[Value]) -> Option<Vec<String>> {
        let key = entry.kind.key();
        let list = self.list(entry.kind).ok()??;
        let (start, end) = *list.items.get(entry.index)?;
        let (_, keycol) = item_indents(&self.lines, start);
        let old = match entry.value.get(key) {
            Some(Value::Sequence(s)) => s.clone(),
            _ => return None,
        };
        // The selection's own line: `key:` at the entry's key column.
        let at = (start..=end).find(|&i| {
            let line = self.lines[i].trim_end_matches(['\n', '\r']);
            let indent = line.len() - line.trim_start_matches([' ', '-']).len();
            let body = line.get(keycol..).unwrap_or("");
            (indent == keycol || i == start) && key_rest(body, key).is_some()
        })?;
        let raw = &self.lines[at];
        let trimmed = raw.trim_end_matches(['\n', '\r']);
        let ending = &raw[trimmed.len()..];
        let colon = keycol + trimmed.get(keycol..)?.find(':')?;
        let rest = &trimmed[colon + 1..];
        let value_part = strip_comment(rest);
        let value = value_part.trim();
        let mut lines = self.lines.clone();
        if value.starts_with('[') && value.ends_with(']') {
            let flows: Result<Vec<String>, String> = items.iter().map(flow).collect();
            let lead = &value_part[..value_part.len() - value_part.trim_start().len()];
            let pad = &value_part[value_part.trim_end().len()..];
            let comment = &rest[value_part.len()..];
            lines[at] = format!(
                "{}{lead}[{}]{pad}{comment}{ending}",
                &trimmed[..colon + 1],
                flows.ok()?.join(", ")
            );
            return Some(lines);
        }
        if !value.is_empty() {
            return None;
        }
        // A block list: its items at one indent, deeper than the key, up to the entry's end.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut dash: Option<usize> = None;
        for i in at + 1..=end {
            let line = self.lines[i].trim_end_matches(['\n', '\r']);
            let t = line.trim_start_matches(' ');
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = line.len() - t.len();
            if indent <= keycol {
                break;
            }
            let d = *dash.get_or_insert(indent);
            if indent == d && (t == "-" || t.starts_with("- ")) {
                spans.push((i, i));
            } else if indent > d
                && let Some(last) = spans.last_mut()
            {
                last.1 = i;
            } else {
                return None;
            }
        }
        let dash = dash?;
        if spans.len() != old.len() || spans.is_empty() {
            return None;
        }
        // Old items kept in order, the rest dropped; new items after them are appended.
        let mut j = 0;
        let mut dropped = Vec::new();
        for (k, item) in old.iter().enumerate() {
            if j < items.len() && items[j] == *item {
                j += 1;
            } else {
                dropped.push(spans[k]);
            }
        }
        let nl = self.newline;
        let added: Result<Vec<String>, String> = items[j..]
            .iter()
            .map(|v| Ok(format!("{}- {}{nl}", " ".repeat(dash), flow(v)?)))
            .collect();
        let after = spans.last().expect("not empty").1 + 1;
        lines.splice(after..after, added.ok()?);
        for (a, b) in dropped.into_iter().rev() {
            lines.drain(a..=b);
        }
        Some(lines)
    }

    /// Find the list `kind` in the text. `None` when the document has no such key.
    fn list(&self, kind: Kind) -> Result<Option<List>, String> {
        let key = kind.key();
        let value = self.root.get(key);
        let Some(value) = value else {
            return Ok(None);
        };
        let cannot = |why: &str| {
            Err(format!(
                "cannot edit `{key}:` in this file ({why}); write it as a block list, one \
                 `- source: …` entry per item, or edit the file by hand"
            ))
        };
        let key_lines: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| key_rest(l, key).is_some())
            .map(|(i, _)| i)
            .collect();
        let [key_line] = key_lines[..] else {
            return cannot("its key is not found once at the start of a line");
        };
        let rest = key_rest(&self.lines[key_line], key).expect("found");
        let inline = strip_comment(rest).trim();
        let expected_len = match value {
            Value::Sequence(s) => s.len(),
            Value::Null => 0,
            _ => return cannot("it is not a list"),
        };
        if !inline.is_empty() {
            if matches!(inline, "[]" | "~" | "null") && expected_len == 0 {
                return Ok(Some(List {
                    key_line,
                    items: Vec::new(),
                }));
            }
            return cannot("it is a flow list on one line");
        }
        // The items: lines starting with `-` at one indent, up to the first line that is less
        // indented (or, at indent 0, not an item): the next top-level key.
        let mut items: Vec<(usize, usize)> = Vec::new();
        let mut dash: Option<usize> = None;
        for (i, raw) in self.lines.iter().enumerate().skip(key_line + 1) {
            let line = raw.trim_end_matches(['\n', '\r']);
            let t = line.trim_start_matches(' ');
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if t.starts_with('\t') {
                return cannot("it is indented with tabs");
            }
            let indent = line.len() - t.len();
            let is_item = t == "-" || t.starts_with("- ");
            let d = *dash.get_or_insert(indent);
            if indent < d || (indent == d && !is_item) {
                break;
            }
            if indent == d {
                items.push((i, i));
            } else if let Some(last) = items.last_mut() {
                last.1 = i;
            } else {
                break;
            }
        }
        if items.len() != expected_len {
            return cannot("its items could not be told apart");
        }
        Ok(Some(List { key_line, items }))
    }
}

/// The document `lines` make, if it is `expected`: every edit is proven this way.
fn proven(lines: Vec<String>, expected: Mapping) -> Result<Doc, String> {
    let doc = Doc::parse(&lines.concat())?;
    if Value::Mapping(doc.root.clone()) != Value::Mapping(expected) {
        return Err(
            "the edited file would not read back as intended (an unusual layout); \
             edit it by hand"
                .into(),
        );
    }
    Ok(doc)
}

/// For a line `key:…` at the start of the line, what follows the colon.
fn key_rest<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_end_matches(['\n', '\r']).strip_prefix(key)?;
    let rest = rest.trim_start_matches(' ').strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// A value without its trailing ` # comment`.
fn strip_comment(s: &str) -> &str {
    if s.trim_start().starts_with('#') {
        return "";
    }
    match s.find(" #") {
        Some(i) => &s[..i],
        None => s,
    }
}

/// The trailing ` # comment` of a `key:` line (with its leading spaces), or "".
fn comment_of(line: &str) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    match line.find(" #") {
        Some(i) => {
            // With the spaces that set it apart from the value.
            let start = line[..i].trim_end_matches(' ').len();
            line[start..].to_string()
        }
        None => String::new(),
    }
}

/// The column of an item's `-` and of its keys.
fn item_indents(lines: &[String], start: usize) -> (usize, usize) {
    let line = lines[start].trim_end_matches(['\n', '\r']);
    let dash = line.len() - line.trim_start_matches(' ').len();
    let after = &line[dash + 1..];
    let keycol = if after.trim().is_empty() {
        // `-` alone: the keys are on the next lines.
        lines
            .get(start + 1)
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .unwrap_or(dash + 2)
    } else {
        dash + 1 + (after.len() - after.trim_start_matches(' ').len())
    };
    (dash, keycol.max(dash + 2))
}

/// The lines of an entry: `- ` at column `dash`, its keys at column `keycol`, in the order of
/// the mapping; a list value as a block list of names or `{name, path}` maps.
fn render(entry: &Mapping, dash: usize, keycol: usize, nl: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, (k, v)) in entry.iter().enumerate() {
        let prefix = if i == 0 {
            format!("{}-{}", " ".repeat(dash), " ".repeat(keycol - dash - 1))
        } else {
            " ".repeat(keycol)
        };
        let key = scalar(k)?;
        match v {
            Value::Sequence(items) if !items.is_empty() => {
                out.push(format!("{prefix}{key}:{nl}"));
                for item in items {
                    out.push(format!("{}- {}{nl}", " ".repeat(keycol + 2), flow(item)?));
                }
            }
            other => out.push(format!("{prefix}{key}: {}{nl}", flow(other)?)),
        }
    }
    Ok(out)
}

/// A value on one line: a scalar, `[]`, or a flat `{ k: v }` map.
fn flow(v: &Value) -> Result<String, String> {
    match v {
        Value::Mapping(m) => {
            let parts: Result<Vec<String>, String> = m
                .iter()
                .map(|(k, v)| Ok(format!("{}: {}", scalar(k)?, scalar(v)?)))
                .collect();
            Ok(format!("{{ {} }}", parts?.join(", ")))
        }
        Value::Sequence(s) if s.is_empty() => Ok("[]".into()),
        other => scalar(other),
    }
}

/// A scalar as YAML writes it (quoted when it must be).
fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(_) | Value::Bool(_) | Value::Number(_) | Value::Null => {
            let s = serde_yaml_ng::to_string(v).map_err(|e| e.to_string())?;
            let s = s.trim_end_matches('\n');
            if s.contains('\n') {
                return Err("a value spans several lines".into());
            }
            // `"*"` as configs usually spell it, rather than the emitter's `'*'`: the same
            // string when there is nothing to escape.
            if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\''))
                && !inner.contains(['\'', '"', '\\'])
            {
                return Ok(format!("\"{inner}\""));
            }
            Ok(s.to_string())
        }
        _ => Err("an entry holds a nested value kst cannot rewrite; edit it by hand".into()),
    }
}

/// A new entry: `source`, then `ref` or `branch`, `sub-dir`, and the selection.
pub fn new_entry(
    kind: Kind,
    source: &str,
    reference: Option<&str>,
    branch: Option<&str>,
    sub_dir: Option<&str>,
    names: Option<&[String]>,
) -> Mapping {
    let mut m = Mapping::new();
    let s = |v: &str| Value::String(v.to_string());
    m.insert(s("source"), s(source));
    if let Some(r) = reference {
        m.insert(s("ref"), s(r));
    } else if let Some(b) = branch {
        m.insert(s("branch"), s(b));
    }
    if let Some(d) = sub_dir {
        m.insert(s("sub-dir"), s(d));
    }
    m.insert(
        s(kind.key()),
        match names {
            None => s("*"),
            Some(n) => Value::Sequence(n.iter().map(|x| s(x)).collect()),
        },
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# my config
agent: claude-code   # the agent

skills:
  # the team pack
  - source: https://example.com/team/skills   # pinned
    ref: v1          # tag
    skills: [pdf]
  # local ones
  - source: ./local
    skills:
      - reviewer     # mine
      - { name: deep, path: nested }

# trailing comment
mcps:
- source: ./servers
  mcps: \"*\"
";

    fn names(doc: &Doc, kind: Kind, i: usize) -> Option<Vec<String>> {
        doc.entries(kind).unwrap()[i].names()
    }

    #[test]
    fn finds_entries_and_their_lines() {
        let doc = Doc::parse(CONFIG).unwrap();
        let skills = doc.entries(Kind::Skills).unwrap();
        assert_eq!(skills.len(), 2);
        assert_eq!(skills[0].line, 6);
        assert_eq!(skills[0].source(), Some("https://example.com/team/skills"));
        assert_eq!(skills[0].ref_or_branch(), (Some("v1"), None));
        assert_eq!(skills[1].line, 10);
        assert_eq!(names(&doc, Kind::Skills, 1).unwrap(), ["reviewer", "deep"]);
        let mcps = doc.entries(Kind::Mcps).unwrap();
        assert_eq!(mcps.len(), 1);
        assert_eq!(mcps[0].line, 17);
        assert_eq!(mcps[0].names(), None);
        assert!(doc.entries(Kind::Commands).unwrap().is_empty());
    }

    #[test]
    fn append_keeps_every_other_byte() {
        let doc = Doc::parse(CONFIG).unwrap();
        let e = new_entry(
            Kind::Skills,
            "git@example.com:a/b.git",
            None,
            Some("main"),
            Some("packs/x"),
            Some(&["one".to_string()]),
        );
        let out = doc.apply(&Edit::Append(Kind::Skills, e)).unwrap().text();
        let added = "  - source: git@example.com:a/b.git\n    branch: main\n    sub-dir: packs/x\n    skills:\n      - one\n";
        let expected = CONFIG.replacen(
            "      - { name: deep, path: nested }\n",
            &format!("      - {{ name: deep, path: nested }}\n{added}"),
            1,
        );
        assert_eq!(out, expected);

        // The mcps list is at indent 0: the new entry is too.
        let e = new_entry(Kind::Mcps, "./more", None, None, None, None);
        let out = doc.apply(&Edit::Append(Kind::Mcps, e)).unwrap().text();
        assert_eq!(out, format!("{CONFIG}- source: ./more\n  mcps: \"*\"\n"));
    }

    #[test]
    fn append_creates_a_missing_or_empty_list() {
        let e = new_entry(Kind::Skills, "./s", None, None, None, None);
        let doc = Doc::parse("agent: codex # hi").unwrap();
        assert_eq!(
            doc.apply(&Edit::Append(Kind::Skills, e.clone()))
                .unwrap()
                .text(),
            "agent: codex # hi\nskills:\n  - source: ./s\n    skills: \"*\"\n"
        );
        let doc = Doc::parse("skills: []   # none yet\nagent: codex\n").unwrap();
        assert_eq!(
            doc.apply(&Edit::Append(Kind::Skills, e.clone()))
                .unwrap()
                .text(),
            "skills:   # none yet\n  - source: ./s\n    skills: \"*\"\nagent: codex\n"
        );
        let doc = Doc::parse("agent: codex\r\nskills:\r\n").unwrap();
        assert_eq!(
            doc.apply(&Edit::Append(Kind::Skills, e)).unwrap().text(),
            "agent: codex\r\nskills:\r\n  - source: ./s\r\n    skills: \"*\"\r\n"
        );
    }

    #[test]
    fn replace_and_remove_touch_only_that_entry() {
        let doc = Doc::parse(CONFIG).unwrap();
        let mut e = doc.entries(Kind::Skills).unwrap()[0].value.clone();
        e.insert(
            Value::String("skills".into()),
            Value::Sequence(vec!["pdf".into(), "docx".into()]),
        );
        let out = doc
            .apply(&Edit::Replace(Kind::Skills, 0, e))
            .unwrap()
            .text();
        let expected = CONFIG.replacen(
            "  - source: https://example.com/team/skills   # pinned\n    ref: v1          # tag\n    skills: [pdf]\n",
            "  - source: https://example.com/team/skills\n    ref: v1\n    skills:\n      - pdf\n      - docx\n",
            1,
        );
        assert_eq!(out, expected);

        let out = doc.apply(&Edit::Remove(Kind::Skills, 1)).unwrap().text();
        let expected = CONFIG.replacen(
            "  - source: ./local\n    skills:\n      - reviewer     # mine\n      - { name: deep, path: nested }\n",
            "",
            1,
        );
        assert_eq!(out, expected);

        // The last entry of a list: the list stays, empty.
        let out = doc.apply(&Edit::Remove(Kind::Mcps, 0)).unwrap().text();
        assert_eq!(
            out,
            CONFIG.replacen(
                "mcps:\n- source: ./servers\n  mcps: \"*\"\n",
                "mcps: []\n",
                1
            )
        );
    }

    #[test]
    fn names_are_set_in_place_keeping_the_entry_comments() {
        let doc = Doc::parse(CONFIG).unwrap();
        let v = |n: &str| Value::String(n.into());
        // A flow list: rewritten on its line, its comment kept.
        let out = doc
            .apply(&Edit::SetNames(Kind::Skills, 0, vec![v("pdf"), v("docx")]))
            .unwrap()
            .text();
        assert_eq!(
            out,
            CONFIG.replacen("skills: [pdf]\n", "skills: [pdf, docx]\n", 1)
        );
        // A block list: a name added after the last one, a name dropped with its lines.
        let deep = doc.entries(Kind::Skills).unwrap()[1].value["skills"][1].clone();
        let out = doc
            .apply(&Edit::SetNames(
                Kind::Skills,
                1,
                vec![v("reviewer"), deep.clone(), v("new")],
            ))
            .unwrap()
            .text();
        assert_eq!(
            out,
            CONFIG.replacen(
                "      - { name: deep, path: nested }\n",
                "      - { name: deep, path: nested }\n      - new\n",
                1
            )
        );
        let out = doc
            .apply(&Edit::SetNames(Kind::Skills, 1, vec![deep]))
            .unwrap()
            .text();
        assert_eq!(out, CONFIG.replacen("      - reviewer     # mine\n", "", 1));
        // "*": the entry is rewritten.
        let out = doc
            .apply(&Edit::SetNames(Kind::Mcps, 0, vec![v("github")]))
            .unwrap()
            .text();
        assert!(
            out.ends_with("mcps:\n- source: ./servers\n  mcps:\n    - github\n"),
            "{out}"
        );
    }

    #[test]
    fn refuses_layouts_it_cannot_edit() {
        let e = new_entry(Kind::Skills, "./s", None, None, None, None);
        for text in [
            "skills: [{source: ./a, skills: \"*\"}]\n",
            "\"skills\":\n  - source: ./a\n    skills: \"*\"\n",
            "skills:\n\t- source: ./a\n",
        ] {
            if let Ok(doc) = Doc::parse(text) {
                assert!(
                    doc.apply(&Edit::Append(Kind::Skills, e.clone())).is_err(),
                    "{text}"
                );
            }
        }
    }
}
