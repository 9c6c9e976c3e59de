//! Markdown assets (SPEC 10a commands, 10b instructions): finding `:`-namespaced files under a
//! folder of a pack, picking the configured ones, and splitting a file's YAML frontmatter.
//!
//! Commands and instructions are found the same way — `commands/git/commit.md` is `git:commit`,
//! `instructions/house/security.mdc` is `house:security` — so both kinds share this one walker
//! and this one set of name checks: a hostile name (`..`, a separator, a control character, a
//! reserved device name) makes *that item* broken, with the reason, and the others go on. The
//! result has the shape of [`crate::discover::Picked`] for skills.
//!
//! Names may hold characters that are unsafe to print (a control character is exactly what
//! makes an item broken): escape them before printing.

use crate::discover::PackView;
use crate::pathsafe;
use crate::request::{Pick, Selection};
use crate::tree::{fold, join_rel};

/// Which asset kind is being discovered: its folder in the pack and its file extensions.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The folder under the pack's root (`commands`, `instructions`).
    pub folder: &'static str,
    /// The file extensions that make an item, in order of preference (`["md", "mdc"]`).
    pub exts: &'static [&'static str],
    /// The word used in messages (`command`, `instruction`).
    pub noun: &'static str,
}

/// The deepest namespace (nested folders) discovery follows.
pub const MAX_DEPTH: usize = 16;
/// The most items one pack's folder may hold; the rest are not read, with a warning.
pub const MAX_ITEMS: usize = 10_000;

/// One item found in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `:`-namespaced name (`git:commit`).
    pub name: String,
    /// Its file inside the pack ('/'-separated), relative to the pack's root.
    pub path: String,
    /// Why it cannot be installed (an unsafe name, a collision): the item is broken.
    pub problem: Option<String>,
}

/// The outcome of selecting items: those found (some possibly broken), the named ones that
/// were not, and warnings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Picked {
    pub found: Vec<Item>,
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
}

/// Why a `:`-namespaced name cannot name files: the first unsafe component.
pub use crate::pathsafe::check_namespaced_name as check_name;

/// The name as one flat file stem (`git:commit` → `git-commit`).
pub fn flat_name(name: &str) -> String {
    name.replace(':', "-")
}

/// Every item under `<root>/<kind.folder>`, each checked: a folder's files by name, then its
/// subfolders by name. Items whose flat names collide (`a:b` and `a-b`, or names differing
/// only in case) keep the first and mark the others broken, since some agents would write them
/// to one file. At most [`MAX_ITEMS`] items and [`MAX_DEPTH`] folders deep, with a warning.
pub fn discover(view: &dyn PackView, root: &str, kind: &Kind) -> (Vec<Item>, Vec<String>) {
    discover_at_most(view, root, kind, MAX_ITEMS)
}

fn discover_at_most(
    view: &dyn PackView,
    root: &str,
    kind: &Kind,
    limit: usize,
) -> (Vec<Item>, Vec<String>) {
    let mut w = Walk {
        view,
        kind,
        limit,
        items: Vec::new(),
        warnings: Vec::new(),
        full: false,
    };
    w.walk(&join_rel(root, kind.folder), &[]);
    mark_collisions(&mut w.items, kind);
    (w.items, w.warnings)
}

struct Walk<'v> {
    view: &'v dyn PackView,
    kind: &'v Kind,
    limit: usize,
    items: Vec<Item>,
    warnings: Vec<String>,
    /// An item beyond the limit was found: the walk stops.
    full: bool,
}

impl Walk<'_> {
    /// Add an item; false (after one warning) when the limit is reached.
    fn push(&mut self, item: Item) -> bool {
        if self.items.len() >= self.limit {
            self.full = true;
            self.warnings.push(format!(
                "more than {} {}s in {}; the rest are not read",
                self.limit, self.kind.noun, self.kind.folder
            ));
            return false;
        }
        self.items.push(item);
        true
    }

    fn walk(&mut self, dir: &str, ns: &[String]) {
        let noun = self.kind.noun;
        for file in self.view.files(dir) {
            let Some((stem, _)) = split_ext(&file, self.kind.exts) else {
                continue;
            };
            let mut parts = ns.to_vec();
            parts.push(stem.to_string());
            let name = parts.join(":");
            let problem = pathsafe::check_component(file.as_bytes())
                .and_then(|_| pathsafe::check_component(stem.as_bytes()))
                .err()
                .map(|e| format!("{noun} {name:?}: {e}"));
            let item = Item {
                name,
                path: join_rel(dir, &file),
                problem,
            };
            if !self.push(item) {
                return;
            }
        }
        for sub in self.view.subdirs(dir) {
            let mut parts = ns.to_vec();
            parts.push(sub.clone());
            let name = parts.join(":");
            let path = join_rel(dir, &sub);
            if let Err(e) = pathsafe::check_component(sub.as_bytes()) {
                // Not entered: a folder named `..` or `a/b` must not be joined to a path.
                let item = Item {
                    name,
                    path,
                    problem: Some(format!(
                        "folder of {noun}s {e}; the {noun}s inside it are skipped"
                    )),
                };
                if !self.push(item) {
                    return;
                }
                continue;
            }
            if parts.len() > MAX_DEPTH {
                self.warnings.push(format!(
                    "{path}: {noun}s nested deeper than {MAX_DEPTH} folders are not read"
                ));
                continue;
            }
            self.walk(&path, &parts);
            if self.full {
                return;
            }
        }
    }
}

/// `name.md` → `name` for one of `exts`; None for other files.
fn split_ext<'a>(file: &'a str, exts: &[&'static str]) -> Option<(&'a str, &'static str)> {
    exts.iter().find_map(|ext| {
        file.strip_suffix(ext)
            .and_then(|s| s.strip_suffix('.'))
            .map(|stem| (stem, *ext))
    })
}

fn mark_collisions(items: &mut [Item], kind: &Kind) {
    // Folded flat name → (name, path) of the first item that has it.
    let mut seen: std::collections::HashMap<String, (String, String)> =
        std::collections::HashMap::new();
    for it in items.iter_mut() {
        if it.problem.is_some() {
            continue;
        }
        let key = fold(&flat_name(&it.name));
        match seen.get(&key) {
            Some((first, path)) if *first == it.name => {
                it.problem = Some(format!(
                    "{noun} {:?} is found twice; {path} is used",
                    it.name,
                    noun = kind.noun
                ));
            }
            Some((first, _)) => {
                it.problem = Some(format!(
                    "{noun} {:?} would be written to the same file as {first:?} (the names \
                     differ only in ':' against '-' or in case); rename one",
                    it.name,
                    noun = kind.noun
                ));
            }
            None => {
                seen.insert(key, (it.name.clone(), it.path.clone()));
            }
        }
    }
}

/// Apply the config's selection: `"*"` takes every item; a name is looked up among them; a
/// `{name, path}` is the file `<root>/<path>/<name>.<ext>` (a `:` in the name is a folder).
pub fn pick(view: &dyn PackView, root: &str, kind: &Kind, selection: &Selection) -> Picked {
    let (all, warnings) = discover(view, root, kind);
    let mut out = Picked {
        warnings,
        ..Picked::default()
    };
    let picks = match selection {
        Selection::All => {
            out.found = all;
            return out;
        }
        Selection::Named(picks) => picks,
    };
    for Pick { name, path } in picks {
        let name = kind
            .exts
            .iter()
            .find_map(|ext| name.strip_suffix(&format!(".{ext}")))
            .unwrap_or(name);
        let hit = match path {
            None => all.iter().find(|i| i.name == name).cloned(),
            Some(dir) => at_path(view, root, kind, name, dir),
        };
        match hit {
            Some(i) => out.found.push(i),
            None => out.missing.push(name.to_string()),
        }
    }
    out
}

/// `{name, path}`: the item at `<root>/<path>/<name>.<ext>`, or broken if the name or the path
/// is unsafe, or None if there is no such file.
fn at_path(view: &dyn PackView, root: &str, kind: &Kind, name: &str, dir: &str) -> Option<Item> {
    let broken = |problem: String| Item {
        name: name.to_string(),
        path: join_rel(root, dir),
        problem: Some(problem),
    };
    if let Err(e) = check_name(name) {
        return Some(broken(format!("{} {e}", kind.noun)));
    }
    if let Err(e) = pathsafe::check_relative_path(dir) {
        return Some(broken(format!("{} {name:?}: path {e}", kind.noun)));
    }
    let base = join_rel(root, dir.trim_matches('/'));
    let rel = name.replace(':', "/");
    kind.exts.iter().find_map(|ext| {
        let file = join_rel(&base, &format!("{rel}.{ext}"));
        view.is_file(&file).then(|| Item {
            name: name.to_string(),
            path: file,
            problem: None,
        })
    })
}

/// The git blob id of a source file's bytes (what the lock records as the item's source).
pub fn blob_id(bytes: &[u8]) -> git2::Oid {
    crate::oid::hash(git2::ObjectType::Blob, bytes).expect("hashing a blob in memory")
}

/// `sha256:<hex>` of the bytes kst wrote (a rendered file, a managed block): what the lock
/// records per destination, and what `verify` compares.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The largest frontmatter kst parses (as for SKILL.md).
pub const MAX_FRONTMATTER_BYTES: usize = crate::discover::MAX_FRONTMATTER_BYTES;
/// The deepest `[`/`{` nesting a frontmatter may have.
pub const MAX_FRONTMATTER_DEPTH: usize = crate::discover::MAX_FRONTMATTER_DEPTH;

/// A Markdown file split into its frontmatter and body.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The frontmatter's text between the `---` lines, if the file has one.
    pub yaml: Option<&'a str>,
    /// Its fields (empty when there is none or it is empty).
    pub fields: serde_yaml_ng::Mapping,
    /// Everything after the closing `---` line (or the whole file, less a UTF-8 BOM).
    pub body: &'a str,
}

impl Parsed<'_> {
    /// A frontmatter field that is a string (trimmed), a number or a boolean, as text.
    pub fn scalar(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            serde_yaml_ng::Value::String(s) => Some(s.trim().to_string()),
            serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
            serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Split `text` into frontmatter and body. A frontmatter opens with a first line `---` and
/// closes with the next line that is `---`. Errors read `LINE:COLUMN: what` (the caller puts
/// the file's name in front) and never quote the file: not UTF-8, an unclosed frontmatter, one
/// too big or too deep to parse (refused before the parser sees it), invalid YAML, or YAML that
/// is not a mapping.
pub fn parse(text: &[u8]) -> Result<Parsed<'_>, String> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let (l, c) = crate::malformed::line_col(
            std::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or_default(),
            e.valid_up_to(),
        );
        format!("{l}:{c}: not valid UTF-8")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---")
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
    else {
        return Ok(Parsed {
            yaml: None,
            fields: serde_yaml_ng::Mapping::new(),
            body: text,
        });
    };
    // Find the closing line.
    let mut at = 0;
    let (yaml, body) = loop {
        if at >= rest.len() {
            return Err(
                "1:1: the frontmatter opened by '---' on line 1 is never closed \
                        (expected a line '---')"
                    .to_string(),
            );
        }
        let end = rest[at..]
            .find('\n')
            .map(|i| at + i + 1)
            .unwrap_or(rest.len());
        let line = rest[at..end].trim_end_matches('\n').trim_end_matches('\r');
        if line == "---" {
            break (&rest[..at], &rest[end..]);
        }
        at = end;
    };
    if yaml.len() > MAX_FRONTMATTER_BYTES {
        return Err(format!(
            "2:1: the frontmatter is larger than {} KiB; kst does not parse it",
            MAX_FRONTMATTER_BYTES >> 10
        ));
    }
    let mut depth = 0usize;
    for (i, b) in yaml.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FRONTMATTER_DEPTH {
                    let (l, c) = crate::malformed::line_col(yaml, i);
                    return Err(format!(
                        "{}:{c}: the frontmatter is nested deeper than \
                         {MAX_FRONTMATTER_DEPTH} levels; kst does not parse it",
                        l + 1
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let f = crate::malformed::yaml(&e, yaml, crate::malformed::Quote::Nothing);
        // The YAML starts on the file's line 2.
        let l = f.line.map_or(2, |l| l + 1);
        let c = f.column.unwrap_or(1);
        format!("{l}:{c}: invalid frontmatter: {}", f.message)
    })?;
    let fields = match value {
        serde_yaml_ng::Value::Mapping(m) => m,
        serde_yaml_ng::Value::Null => serde_yaml_ng::Mapping::new(),
        _ => return Err("2:1: the frontmatter is not a YAML mapping of keys".to_string()),
    };
    Ok(Parsed {
        yaml: Some(yaml),
        fields,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::DiskPack;
    use std::fs;

    const CMD: Kind = Kind {
        folder: "commands",
        exts: &["md"],
        noun: "command",
    };
    const INS: Kind = Kind {
        folder: "instructions",
        exts: &["md", "mdc"],
        noun: "instruction",
    };

    fn pack(files: &[&str]) -> (tempfile::TempDir, DiskPack) {
        let tmp = tempfile::tempdir().unwrap();
        for f in files {
            let p = tmp.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "body\n").unwrap();
        }
        let view = DiskPack::new(tmp.path().to_path_buf(), None);
        (tmp, view)
    }

    fn names(items: &[Item]) -> Vec<(&str, &str, bool)> {
        items
            .iter()
            .map(|i| (i.name.as_str(), i.path.as_str(), i.problem.is_some()))
            .collect()
    }

    #[test]
    fn nested_folders_are_namespaces() {
        let (_t, v) = pack(&[
            "commands/commit.md",
            "commands/git/commit.md",
            "commands/git/work/status.md",
            "commands/notes.txt",
            "sub/commands/deploy.md",
        ]);
        let (items, warnings) = discover(&v, "", &CMD);
        assert_eq!(
            names(&items),
            [
                ("commit", "commands/commit.md", false),
                ("git:commit", "commands/git/commit.md", false),
                ("git:work:status", "commands/git/work/status.md", false),
            ]
        );
        assert!(warnings.is_empty());
        let (items, _) = discover(&v, "sub", &CMD);
        assert_eq!(names(&items), [("deploy", "sub/commands/deploy.md", false)]);
        // No folder: nothing, no error.
        assert!(discover(&v, "", &INS).0.is_empty());
    }

    #[test]
    fn instructions_take_md_and_mdc_and_a_stem_seen_twice_is_broken() {
        let (_t, v) = pack(&[
            "instructions/style.md",
            "instructions/style.mdc",
            "instructions/house/security.mdc",
        ]);
        let (items, _) = discover(&v, "", &INS);
        assert_eq!(
            names(&items),
            [
                ("style", "instructions/style.md", false),
                ("style", "instructions/style.mdc", true),
                ("house:security", "instructions/house/security.mdc", false),
            ]
        );
        assert!(items[1].problem.as_ref().unwrap().contains("found twice"));
    }

    #[test]
    fn hostile_names_break_only_their_item() {
        let (_t, v) = pack(&[
            "commands/ok.md",
            "commands/con.md",
            "commands/a\u{7}b.md",
            "commands/x..md",
            "commands/.md",
            "commands/ctl\u{1b}dir/inner.md",
        ]);
        let (items, _) = discover(&v, "", &CMD);
        let by = |n: &str| items.iter().find(|i| i.name == n).unwrap();
        assert_eq!(by("ok").problem, None);
        assert!(
            by("con")
                .problem
                .as_ref()
                .unwrap()
                .contains("reserved device name")
        );
        assert!(
            by("a\u{7}b")
                .problem
                .as_ref()
                .unwrap()
                .contains("control character")
        );
        assert!(
            by("x.")
                .problem
                .as_ref()
                .unwrap()
                .contains("ends with a dot")
        );
        assert!(by("").problem.as_ref().unwrap().contains("empty name"));
        let dir = by("ctl\u{1b}dir");
        assert!(dir.problem.as_ref().unwrap().contains("control character"));
        assert!(dir.problem.as_ref().unwrap().contains("skipped"));
        // The folder was not entered.
        assert!(!items.iter().any(|i| i.name.ends_with(":inner")));
        // Messages escape what they quote.
        assert!(!by("a\u{7}b").problem.as_ref().unwrap().contains('\u{7}'));
    }

    #[test]
    fn discovery_is_bounded_in_count_and_depth() {
        let deep = format!("commands/{}/x.md", ["d"; MAX_DEPTH + 1].join("/"));
        let ok = format!("commands/{}/y.md", ["d"; MAX_DEPTH].join("/"));
        let (_t, v) = pack(&[
            "commands/a.md",
            "commands/b.md",
            "commands/c.md",
            "commands/s/d.md",
            "commands/t/e.md",
            &deep,
            &ok,
        ]);
        let (items, warnings) = discover_at_most(&v, "", &CMD, 4);
        assert_eq!(items.len(), 4);
        assert_eq!(items[3].name, "d:d:d:d:d:d:d:d:d:d:d:d:d:d:d:d:y");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("nested deeper than 16"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("more than 4 commands"), "{warnings:?}");
        let (items, warnings) = discover(&v, "", &CMD);
        assert_eq!(items.len(), 6);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn colliding_flat_names_keep_the_first() {
        let (_t, v) = pack(&["commands/git-commit.md", "commands/git/commit.md"]);
        let (items, _) = discover(&v, "", &CMD);
        assert_eq!(
            names(&items),
            [
                ("git-commit", "commands/git-commit.md", false),
                ("git:commit", "commands/git/commit.md", true),
            ]
        );
        assert!(items[1].problem.as_ref().unwrap().contains("same file"));
    }

    #[test]
    fn selection_by_all_name_and_path() {
        let (_t, v) = pack(&[
            "commands/a.md",
            "commands/git/commit.md",
            "ops/deploy.md",
            "ops/git/push.md",
        ]);
        let p = |name: &str, path: Option<&str>| Pick {
            name: name.into(),
            path: path.map(Into::into),
        };
        let all = pick(&v, "", &CMD, &Selection::All);
        assert_eq!(all.found.len(), 2);
        let named = pick(
            &v,
            "",
            &CMD,
            &Selection::Named(vec![
                p("git:commit", None),
                p("zzz", None),
                p("deploy", Some("ops")),
                p("deploy.md", Some("ops/")),
                p("git:push", Some("ops")),
                p("nope", Some("ops")),
                p("..:x", Some("ops")),
                p("y", Some("../etc")),
            ]),
        );
        assert_eq!(
            names(&named.found),
            [
                ("git:commit", "commands/git/commit.md", false),
                ("deploy", "ops/deploy.md", false),
                ("deploy", "ops/deploy.md", false),
                ("git:push", "ops/git/push.md", false),
                ("..:x", "ops", true),
                ("y", "../etc", true),
            ]
        );
        assert_eq!(named.missing, ["zzz", "nope"]);
        assert!(
            named.found[4]
                .problem
                .as_ref()
                .unwrap()
                .contains("relative path component")
        );
    }

    #[test]
    fn ids_and_hashes() {
        // `git hash-object` of "body\n" and of nothing.
        assert_eq!(
            blob_id(b"body\n").to_string(),
            "273a402f0f8b00fbf84e9f5aad031ed5446413e4"
        );
        assert_eq!(
            blob_id(b"").to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn frontmatter_split_and_errors() {
        let p = parse(b"---\ndescription: hi\nn: 3\n---\nbody $ARGUMENTS\n").unwrap();
        assert_eq!(p.yaml, Some("description: hi\nn: 3\n"));
        assert_eq!(p.scalar("description").as_deref(), Some("hi"));
        assert_eq!(p.scalar("n").as_deref(), Some("3"));
        assert_eq!(p.body, "body $ARGUMENTS\n");
        let p = parse(b"\xef\xbb\xbf---\r\na: b\r\n---\r\nx\r\n").unwrap();
        assert_eq!(p.scalar("a").as_deref(), Some("b"));
        assert_eq!(p.body, "x\r\n");
        let p = parse(b"no frontmatter\n---\n").unwrap();
        assert!(p.yaml.is_none());
        assert_eq!(p.body, "no frontmatter\n---\n");
        assert_eq!(parse(b"---\n---\n").unwrap().body, "");

        let e = parse(b"---\ndescription: x\nbody\n").unwrap_err();
        assert!(e.starts_with("1:1:") && e.contains("never closed"), "{e}");
        let e = parse(b"---\na: 1\nb: [unclosed SECRET\n---\nbody\n").unwrap_err();
        assert!(e.starts_with("3:") || e.starts_with("4:"), "{e}");
        assert!(e.contains("invalid frontmatter"), "{e}");
        assert!(!e.contains("SECRET"), "{e}");
        let e = parse(b"---\n- a\n- b\n---\n").unwrap_err();
        assert!(e.contains("not a YAML mapping"), "{e}");
        let deep = format!("---\na: 1\nb: {}\n---\n", "[".repeat(40));
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.starts_with("3:") && e.contains("deeper than 32"), "{e}");
        let big = format!("---\na: \"{}\"\n---\n", "x".repeat(70_000));
        assert!(
            parse(big.as_bytes())
                .unwrap_err()
                .contains("larger than 64 KiB")
        );
        let e = parse(b"---\na: 1\n---\nok \xff\n").unwrap_err();
        assert_eq!(e, "4:4: not valid UTF-8");
    }
}
