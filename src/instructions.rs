//! Instructions (SPEC 10b): which Markdown files of a pack are instructions, the per-rule files
//! rendered from them, and the managed blocks kst keeps in files it shares with the user
//! (`CLAUDE.md`, `AGENTS.md`, …).
//!
//! Pure: nothing here touches the disk; the pipeline reads a file, calls [`upsert`] /
//! [`remove`] and writes the bytes back atomically. The block engine exists so that sharing a
//! file with the user is safe:
//!
//! - everything outside kst's own block is returned byte for byte (line endings, a missing
//!   final newline, a UTF-8 BOM, other tools' blocks);
//! - a new block is appended after one blank line, in the file's dominant line ending, and
//!   [`remove`] takes away exactly what [`upsert`] added, so a round trip gives the original
//!   bytes back;
//! - a file whose markers do not pair up (a START without its END, a START inside a block, a
//!   stray END, the same block twice) is refused with the line, never "repaired": guessing
//!   where a block ends could delete the user's text;
//! - an instruction whose own text has a marker line is refused, since writing it would make
//!   the file ambiguous;
//! - [`Block::sha256`] is the hash of the block as written, which the lock records: a block
//!   whose hash differs from the lock's was edited by the user (*modified locally*).
//!
//! The markers and ids are Kasetto 3.12's (`<!-- kasetto:instruction:ID START -->`, ID =
//! `NAME-` + 8 hex digits of sha256 of `SOURCE::NAME`), so a switch either way finds its blocks.

use std::fmt;

use crate::agents::RuleFormat;
use crate::discover::PackView;
use crate::mdasset::{self, Kind, Picked};
use crate::request::Selection;

/// Instructions live under `instructions/` of the pack (or of its `sub-dir`), `.md` or `.mdc`.
pub const KIND: Kind = Kind {
    folder: "instructions",
    exts: &["md", "mdc"],
    noun: "instruction",
};

/// The configured instructions of a pack (`root` is its discovery root).
pub fn pick(view: &dyn PackView, root: &str, selection: &Selection) -> Picked {
    mdasset::pick(view, root, &KIND, selection)
}

/// The distinct places instructions go for `agents` in one scope, in the agents' order, each
/// with the ids of the agents that read it: codex, opencode, amp, zcode and pi all read the
/// project's `AGENTS.md`, which gets one block per instruction, not one per agent. Agents with
/// no place in the scope are left out.
pub fn targets(
    agents: &[&crate::agents::Agent],
    global: bool,
    home: &std::path::Path,
) -> Vec<(crate::agents::InstructionTarget, Vec<&'static str>)> {
    let mut out: Vec<(crate::agents::InstructionTarget, Vec<&'static str>)> = Vec::new();
    for a in agents {
        let Some(t) = a.instructions_target(global, home) else {
            continue;
        };
        match out.iter_mut().find(|(seen, _)| *seen == t) {
            Some((_, ids)) => ids.push(a.id),
            None => out.push((t, vec![a.id])),
        }
    }
    out
}

/// The id of an instruction's block: `NAME-` and the first 8 hex digits of
/// sha256(`SOURCE::NAME`), SOURCE as written in the config. Two sources' same-named
/// instructions get different blocks.
pub fn block_id(source: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{source}::{name}").as_bytes());
    let hex: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

const OPEN: &str = "<!-- kasetto:instruction:";
const START: &str = " START -->";
const END: &str = " END -->";

/// Why kst will not touch a file (or write an instruction): the 1-based line it is about, in
/// the file (or in the instruction's text) and what is wrong. Print it after the file's name:
/// `CLAUDE.md:12: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Refusal {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker<'a> {
    Start(&'a str),
    End(&'a str),
}

/// A marker line: the line, less its line ending and surrounding blanks, is a START or END
/// marker with a non-empty id.
fn marker(line: &[u8]) -> Option<Marker<'_>> {
    let s = std::str::from_utf8(line).ok()?;
    let s = s.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    let rest = s.strip_prefix(OPEN)?;
    if let Some(id) = rest.strip_suffix(START).filter(|i| !i.is_empty()) {
        return Some(Marker::Start(id));
    }
    rest.strip_suffix(END)
        .filter(|i| !i.is_empty())
        .map(Marker::End)
}

/// An id for messages: shown when it is a short plain id, else not at all.
fn shown(id: &str) -> String {
    let plain = id.chars().count() <= 80
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if plain {
        format!("{id:?}")
    } else {
        "(id not shown)".to_string()
    }
}

/// One managed block of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: String,
    /// The 1-based line of its START marker.
    pub line: usize,
    /// From the start of its START line to the end of its END marker (no line ending after).
    start: usize,
    end: usize,
    /// Its text between the marker lines, as in the file.
    pub body: Vec<u8>,
    /// `sha256:<hex>` of the block's bytes, START line to END marker: what the lock records.
    pub sha256: String,
}

/// Lines of `bytes` from `from`: (start, end of content without '\n', start of the next line).
fn lines(bytes: &[u8], from: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                at += i + 1;
                Some((start, start + i, at))
            }
            None => {
                at = bytes.len();
                Some((start, at, at))
            }
        }
    })
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Every managed block of a file, in order; a file whose markers do not pair up is refused.
pub fn blocks(file: &[u8]) -> Result<Vec<Block>, Refusal> {
    let from = if file.starts_with(BOM) { BOM.len() } else { 0 };
    let mut out: Vec<Block> = Vec::new();
    // (id, line, start offset, offset after the START line)
    let mut open: Option<(&str, usize, usize, usize)> = None;
    for (n, (start, end, next)) in lines(file, from).enumerate() {
        let line = n + 1;
        match marker(&file[start..end]) {
            None => {}
            Some(Marker::Start(id)) => {
                if let Some((oid, oline, _, _)) = open {
                    return Err(Refusal {
                        line,
                        message: format!(
                            "a START marker for {} inside the block {} opened on line {oline}, \
                             whose END marker is missing; fix the markers by hand (kst will not \
                             guess where a block ends)",
                            shown(id),
                            shown(oid)
                        ),
                    });
                }
                if let Some(first) = out.iter().find(|b| b.id == id) {
                    return Err(Refusal {
                        line,
                        message: format!(
                            "a second block {} (the first is on line {}); remove one by hand",
                            shown(id),
                            first.line
                        ),
                    });
                }
                open = Some((id, line, start, next));
            }
            Some(Marker::End(id)) => {
                let Some((oid, oline, ostart, body_start)) = open else {
                    return Err(Refusal {
                        line,
                        message: format!(
                            "an END marker for {} without its START marker; fix the markers \
                             by hand",
                            shown(id)
                        ),
                    });
                };
                if oid != id {
                    return Err(Refusal {
                        line,
                        message: format!(
                            "an END marker for {} closes the block {} opened on line {oline}; \
                             fix the markers by hand",
                            shown(id),
                            shown(oid)
                        ),
                    });
                }
                // The block ends with its END marker; a '\r' before '\n' is the line ending.
                let mut bend = end;
                if bend > start && file[bend - 1] == b'\r' {
                    bend -= 1;
                }
                out.push(Block {
                    id: id.to_string(),
                    line: oline,
                    start: ostart,
                    end: bend,
                    body: file[body_start..start].to_vec(),
                    sha256: mdasset::sha256(&file[ostart..bend]),
                });
                open = None;
            }
        }
    }
    if let Some((id, line, _, _)) = open {
        return Err(Refusal {
            line,
            message: format!(
                "the START marker for {} has no END marker; fix the markers by hand (kst will \
                 not guess where a block ends)",
                shown(id)
            ),
        });
    }
    Ok(out)
}

/// The block `id` of a file, if it has one.
pub fn get(file: &[u8], id: &str) -> Result<Option<Block>, Refusal> {
    Ok(blocks(file)?.into_iter().find(|b| b.id == id))
}

/// Refuse an instruction's text that has a marker line (its line in the text).
pub fn check_body(body: &[u8]) -> Result<(), Refusal> {
    for (n, (start, end, _)) in lines(body, 0).enumerate() {
        if marker(&body[start..end]).is_some() {
            return Err(Refusal {
                line: n + 1,
                message: "the instruction's text has a kst/Kasetto block marker line; kst will \
                          not write it into a shared file, where it would break the blocks"
                    .to_string(),
            });
        }
    }
    Ok(())
}

/// The file's dominant line ending: CRLF if more lines end with it than with a bare LF.
pub fn dominant_eol(file: &[u8]) -> &'static str {
    let lf = file.iter().filter(|&&b| b == b'\n').count();
    let crlf = file.windows(2).filter(|w| w == b"\r\n").count();
    if crlf > lf - crlf { "\r\n" } else { "\n" }
}

fn check_id(id: &str) -> Result<(), Refusal> {
    let bad =
        id.is_empty() || id.chars().any(char::is_control) || id.contains("-->") || id.trim() != id;
    if bad {
        return Err(Refusal {
            line: 0,
            message: format!("{} cannot be a block id", shown(id)),
        });
    }
    Ok(())
}

/// The block `id` holding `body` as [`upsert`] writes it, START line to END marker, with lines
/// ending in `eol`.
fn block_text(id: &str, body: &str, eol: &str) -> Result<String, Refusal> {
    check_id(id)?;
    check_body(body.as_bytes())?;
    let text = body
        .trim_matches(|c| c == '\r' || c == '\n')
        .replace("\r\n", "\n");
    let mut block = format!("{OPEN}{id}{START}{eol}");
    if !text.is_empty() {
        block.push_str(&text.replace('\n', eol));
        block.push_str(eol);
    }
    block.push_str(&format!("{OPEN}{id}{END}"));
    Ok(block)
}

/// What [`Block::sha256`] of block `id` holding `body` will be once [`upsert`] writes it into
/// a file whose [`dominant_eol`] is `eol` — without editing the file (a plan asks this for
/// every block of a file: it must not cost the file's size each time).
pub fn sha_as_written(eol: &str, id: &str, body: &str) -> Result<String, Refusal> {
    block_text(id, body, eol).map(|b| mdasset::sha256(b.as_bytes()))
}

/// The file with block `id` holding `body`: replaced where it is, or appended after one blank
/// line. Everything else is returned byte for byte. The block's lines end the way most of the
/// file's do; leading and trailing blank lines of `body` are dropped.
pub fn upsert(file: &[u8], id: &str, body: &str) -> Result<Vec<u8>, Refusal> {
    let found = blocks(file)?.into_iter().find(|b| b.id == id);
    let eol = dominant_eol(file);
    let block = block_text(id, body, eol)?;
    let mut out = Vec::with_capacity(file.len() + block.len() + 4);
    if let Some(b) = found {
        out.extend_from_slice(&file[..b.start]);
        out.extend_from_slice(block.as_bytes());
        out.extend_from_slice(&file[b.end..]);
        return Ok(out);
    }
    out.extend_from_slice(file);
    let text_part = file.strip_prefix(BOM).unwrap_or(file);
    if text_part.is_empty() {
        out.extend_from_slice(block.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    } else if text_part.ends_with(b"\n") {
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(block.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    } else {
        // No final newline: end the user's last line, leave a blank one, and keep the file
        // without a final newline, so that removing the block can restore it exactly.
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(block.as_bytes());
    }
    Ok(out)
}

/// The file without block `id` and the blank line [`upsert`] put before it (the file as it
/// was before, if nothing else changed); the file unchanged if it has no such block. The
/// user's text is never removed, only kst's block and line endings around it.
pub fn remove(file: &[u8], id: &str) -> Result<Vec<u8>, Refusal> {
    let Some(b) = blocks(file)?.into_iter().find(|b| b.id == id) else {
        return Ok(file.to_vec());
    };
    // The line ending kst used for this block: the one after its START line.
    let after_start = file[b.start..].iter().position(|&c| c == b'\n');
    let eol: &[u8] = match after_start {
        Some(i) if i > 0 && file[b.start + i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let before = &file[..b.start];
    let after = &file[b.end..];
    let (cut_before, tail): (usize, &[u8]) = if let Some(rest) = after
        .strip_prefix(b"\r\n")
        .or_else(|| after.strip_prefix(b"\n"))
    {
        // The blank line before it, if there is one (or the line ending before it at the top
        // of the file: the separator of a block that followed a block since removed).
        let blank = before
            .strip_suffix(eol)
            .is_some_and(|b| b.ends_with(b"\n") || b.is_empty() || b == BOM);
        (if blank { eol.len() } else { 0 }, rest)
    } else {
        // At the end of a file without a final newline: both line endings upsert added.
        let two = [eol, eol].concat();
        (if before.ends_with(&two) { two.len() } else { 0 }, after)
    };
    let mut out = Vec::with_capacity(file.len());
    out.extend_from_slice(&before[..before.len() - cut_before]);
    out.extend_from_slice(tail);
    Ok(out)
}

/// The text an instruction contributes to a shared file: its body, frontmatter dropped. A
/// malformed frontmatter (`LINE:COL: what`) or a marker line in the text is an error.
pub fn block_body(source: &[u8]) -> Result<String, String> {
    let parsed = mdasset::parse(source)?;
    check_body(parsed.body.as_bytes()).map_err(|r| body_error(&parsed, r))?;
    Ok(parsed.body.to_string())
}

/// A refusal in the body, as a `LINE:COL: what` of the source file.
fn body_error(parsed: &mdasset::Parsed<'_>, r: Refusal) -> String {
    let offset = parsed.yaml.map_or(0, |y| y.matches('\n').count() + 2);
    format!("{}:1: {}", r.line + offset, r.message)
}

/// An instruction's own file in a rules folder: its name (`house:security` →
/// `house-security.mdc` or `.md`) and bytes. Cursor's `.mdc` gets `description`, `globs`
/// and `alwaysApply` frontmatter from the source's (a list of globs joined with `, `); the
/// others get the body. Errors as [`block_body`], or an unsafe name.
pub fn render_rule(
    name: &str,
    source: &[u8],
    format: RuleFormat,
) -> Result<(String, Vec<u8>), String> {
    mdasset::check_name(name).map_err(|e| format!("instruction {e}"))?;
    let parsed = mdasset::parse(source)?;
    check_body(parsed.body.as_bytes()).map_err(|r| body_error(&parsed, r))?;
    let flat = mdasset::flat_name(name);
    match format {
        RuleFormat::Markdown => Ok((format!("{flat}.md"), parsed.body.as_bytes().to_vec())),
        RuleFormat::CursorMdc => Ok((format!("{flat}.mdc"), cursor_mdc(&parsed).into_bytes())),
    }
}

fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

fn cursor_mdc(parsed: &mdasset::Parsed<'_>) -> String {
    use serde_yaml_ng::Value;
    let mut fm = Vec::new();
    if let Some(d) = parsed.fields.get("description").and_then(Value::as_str) {
        fm.push(format!("description: {}", one_line(d)));
    }
    let globs = match parsed.fields.get("globs") {
        Some(Value::String(s)) => Some(one_line(s)),
        Some(Value::Sequence(seq)) => {
            let parts: Vec<String> = seq.iter().filter_map(Value::as_str).map(one_line).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    };
    if let Some(g) = globs {
        fm.push(format!("globs: {g}"));
    }
    if let Some(a) = parsed.fields.get("alwaysApply").and_then(Value::as_bool) {
        fm.push(format!("alwaysApply: {a}"));
    }
    if fm.is_empty() {
        return parsed.body.to_string();
    }
    format!("---\n{}\n---\n{}", fm.join("\n"), parsed.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    /// Computed with Kasetto 3.12's algorithm (sha256 of `SOURCE::NAME`, first 8 hex digits),
    /// independently with Python's hashlib.
    #[test]
    fn block_ids_are_kasettos() {
        assert_eq!(block_id("https://x/a", "style"), "style-ce3de397");
        assert_eq!(
            block_id("https://github.com/org/conventions", "house:security"),
            "house:security-7d228f07"
        );
        assert_eq!(block_id("./local-rules", "style"), "style-e0e26c0c");
    }

    #[test]
    fn agents_sharing_a_file_share_its_targets() {
        use crate::agents::{InstructionTarget as T, find};
        let ids = [
            "codex",
            "claude-code",
            "opencode",
            "cursor",
            "warp",
            "pi",
            "continue",
        ];
        let agents: Vec<_> = ids.iter().map(|i| find(i).unwrap()).collect();
        let home = std::path::Path::new("/h");
        let p = std::path::PathBuf::from;
        assert_eq!(
            targets(&agents, false, home),
            [
                (
                    T::Aggregate(p("AGENTS.md")),
                    vec!["codex", "opencode", "pi"]
                ),
                (T::Aggregate(p("CLAUDE.md")), vec!["claude-code"]),
                (
                    T::PerRule(p(".cursor/rules"), RuleFormat::CursorMdc),
                    vec!["cursor"]
                ),
                (T::Aggregate(p("WARP.md")), vec!["warp"]),
                (
                    T::PerRule(p(".continue/rules"), RuleFormat::Markdown),
                    vec!["continue"]
                ),
            ]
        );
        // Globally each has its own file; warp and continue have none.
        let global = targets(&agents, true, home);
        assert_eq!(global.len(), 5);
        assert!(global.iter().all(|(_, ids)| ids.len() == 1));
    }

    #[test]
    fn append_replace_remove_keep_the_users_text() {
        let user = "# Project\n\nUser paragraph.\n";
        let a = upsert(user.as_bytes(), "style-ce3de397", "Use tabs.\n").unwrap();
        assert_eq!(
            s(&a),
            "# Project\n\nUser paragraph.\n\n\
             <!-- kasetto:instruction:style-ce3de397 START -->\nUse tabs.\n\
             <!-- kasetto:instruction:style-ce3de397 END -->\n"
        );
        // Same body again: the same bytes (a no-op).
        assert_eq!(upsert(&a, "style-ce3de397", "Use tabs.").unwrap(), a);
        // A new body replaces only the block.
        let b = upsert(&a, "style-ce3de397", "\n\nUse spaces.\nTwo.\n\n").unwrap();
        assert!(s(&b).starts_with(user));
        assert!(s(&b).contains("START -->\nUse spaces.\nTwo.\n<!--"));
        assert_eq!(remove(&b, "style-ce3de397").unwrap(), user.as_bytes());
        // Removing a block that is not there changes nothing.
        assert_eq!(
            remove(user.as_bytes(), "x-00000000").unwrap(),
            user.as_bytes()
        );
        // A new file is just the block.
        let c = upsert(b"", "r-1", "x").unwrap();
        assert_eq!(
            s(&c),
            "<!-- kasetto:instruction:r-1 START -->\nx\n<!-- kasetto:instruction:r-1 END -->\n"
        );
        assert_eq!(remove(&c, "r-1").unwrap(), b"");
    }

    #[test]
    fn line_endings_bom_and_missing_final_newline_are_kept() {
        let crlf = b"\xef\xbb\xbfA\r\nB\r\nno final newline";
        let a = upsert(crlf, "r-1", "one\ntwo\r\n").unwrap();
        assert_eq!(
            a,
            [
                &crlf[..],
                b"\r\n\r\n<!-- kasetto:instruction:r-1 START -->\r\none\r\ntwo\r\n\
                  <!-- kasetto:instruction:r-1 END -->"
            ]
            .concat()
        );
        assert_eq!(remove(&a, "r-1").unwrap(), crlf);
        // The block hash is of the bytes as written.
        let blk = get(&a, "r-1").unwrap().unwrap();
        assert_eq!(blk.line, 5);
        assert_eq!(blk.body, b"one\r\ntwo\r\n");
        let start = a.windows(4).position(|w| w == b"<!--").unwrap();
        assert_eq!(blk.sha256, mdasset::sha256(&a[start..]));
        // BOM-only file.
        let a = upsert(BOM, "r-1", "x").unwrap();
        assert!(a.starts_with(b"\xef\xbb\xbf<!-- kasetto"));
        assert_eq!(remove(&a, "r-1").unwrap(), BOM);
        // A Kasetto-written block (LF, after a blank line) is found and removed cleanly.
        let kasetto = b"Mine.\n\n<!-- kasetto:instruction:s-1 START -->\nbody\n<!-- kasetto:instruction:s-1 END -->\n";
        assert_eq!(blocks(kasetto).unwrap().len(), 1);
        assert_eq!(remove(kasetto, "s-1").unwrap(), b"Mine.\n");
    }

    #[test]
    fn an_edited_block_has_another_hash() {
        let a = upsert(b"x\n", "r-1", "body").unwrap();
        let h = get(&a, "r-1").unwrap().unwrap().sha256;
        let edited = s(&a).replace("body", "body, edited").into_bytes();
        assert_ne!(get(&edited, "r-1").unwrap().unwrap().sha256, h);
        // What a plan predicts is what upsert writes, in LF and CRLF files.
        for file in [&b"# mine\n"[..], b"# mine\r\nmore\r\n", b""] {
            let out = upsert(file, "q-1", "line one\nline two\n").unwrap();
            assert_eq!(
                sha_as_written(dominant_eol(file), "q-1", "line one\nline two\n").unwrap(),
                get(&out, "q-1").unwrap().unwrap().sha256
            );
        }
        // The user's text around it does not change the block's hash.
        let mut more = b"new first line\n".to_vec();
        more.extend_from_slice(&a);
        more.extend_from_slice(b"trailing\n");
        assert_eq!(get(&more, "r-1").unwrap().unwrap().sha256, h);
        // A file's block found by get is what upsert wrote.
        assert_eq!(
            h,
            mdasset::sha256(
                b"<!-- kasetto:instruction:r-1 START -->\nbody\n<!-- kasetto:instruction:r-1 END -->"
            )
        );
    }

    #[test]
    fn broken_markers_are_refused_with_their_line() {
        let m = |id: &str, end: bool| {
            format!(
                "<!-- kasetto:instruction:{id} {} -->",
                if end { "END" } else { "START" }
            )
        };
        let cases = [
            (format!("a\n{}\nbody\n", m("x-1", false)), 2, "has no END"),
            (
                format!(
                    "{}\n{}\n{}\n",
                    m("x-1", false),
                    m("y-1", false),
                    m("y-1", true)
                ),
                2,
                "inside the block",
            ),
            (
                format!("a\nb\n{}\n", m("x-1", true)),
                3,
                "without its START",
            ),
            (
                format!("{}\n{}\n", m("x-1", false), m("y-1", true)),
                2,
                "closes the block",
            ),
            (
                format!(
                    "{}\n{}\n{}\n{}\n",
                    m("x-1", false),
                    m("x-1", true),
                    m("x-1", false),
                    m("x-1", true)
                ),
                3,
                "a second block",
            ),
            // Indented (quoted in a code block) still counts: refused rather than guessed.
            (
                format!("```\n    {}\n```\n", m("x-1", false)),
                2,
                "has no END",
            ),
        ];
        for (text, line, why) in cases {
            for op in 0..3 {
                let r = match op {
                    0 => upsert(text.as_bytes(), "x-1", "new").unwrap_err(),
                    1 => remove(text.as_bytes(), "x-1").unwrap_err(),
                    _ => get(text.as_bytes(), "x-1").unwrap_err(),
                };
                assert_eq!(r.line, line, "{text:?}: {r}");
                assert!(r.message.contains(why), "{text:?}: {r}");
            }
        }
        // A marker mentioned inside a line is text, not a marker.
        let inline = format!("see `{}` here\n", m("x-1", false));
        assert!(blocks(inline.as_bytes()).unwrap().is_empty());
        // Ids from a hostile file are not printed.
        let hostile = format!("{}\n", m("\u{1b}[2Jtoken", false));
        let r = blocks(hostile.as_bytes()).unwrap_err();
        assert!(r.message.contains("(id not shown)"), "{r}");
    }

    #[test]
    fn a_body_with_a_marker_line_is_refused() {
        let body = "Intro\n<!-- kasetto:instruction:other-12345678 END -->\nmore\n";
        let r = upsert(b"x\n", "r-1", body).unwrap_err();
        assert_eq!(r.line, 2);
        assert!(r.message.contains("marker line"), "{r}");
        let src = format!("---\ndescription: d\n---\n{body}");
        let e = block_body(src.as_bytes()).unwrap_err();
        assert!(e.starts_with("5:1:") && e.contains("marker line"), "{e}");
        let e = render_rule("r", src.as_bytes(), RuleFormat::Markdown).unwrap_err();
        assert!(e.starts_with("5:1:"), "{e}");
        // Mentioning the marker inside a sentence is fine.
        assert!(block_body(b"Never edit `<!-- kasetto:instruction:x START -->` blocks.\n").is_ok());
    }

    #[test]
    fn rule_files() {
        let src = b"---\ndescription: House style\nglobs:\n  - \"*.ts\"\n  - \"*.tsx\"\nalwaysApply: true\nother: x\n---\nUse tabs.\n";
        let (p, b) = render_rule("house:style", src, RuleFormat::CursorMdc).unwrap();
        assert_eq!(p, "house-style.mdc");
        assert_eq!(
            s(&b),
            "---\ndescription: House style\nglobs: *.ts, *.tsx\nalwaysApply: true\n---\nUse tabs.\n"
        );
        let (p, b) = render_rule("house:style", src, RuleFormat::Markdown).unwrap();
        assert_eq!(p, "house-style.md");
        assert_eq!(s(&b), "Use tabs.\n");
        // No Cursor fields: the body alone; a one-line description stays one line.
        let (_, b) = render_rule("r", b"---\nx: 1\n---\nB\n", RuleFormat::CursorMdc).unwrap();
        assert_eq!(s(&b), "B\n");
        let (_, b) = render_rule(
            "r",
            b"---\ndescription: \"two\\nlines\"\nglobs: src/**\n---\nB\n",
            RuleFormat::CursorMdc,
        )
        .unwrap();
        assert_eq!(
            s(&b),
            "---\ndescription: two lines\nglobs: src/**\n---\nB\n"
        );
        assert!(render_rule("a:..", b"x", RuleFormat::Markdown).is_err());
        let e = render_rule("r", b"---\na: [\n---\n", RuleFormat::CursorMdc).unwrap_err();
        assert!(e.contains("invalid frontmatter"), "{e}");
    }

    /// User text built from the pieces that matter: both line endings, lone CRs, blank lines,
    /// marker-like text inside lines, non-ASCII.
    fn user_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"text".to_vec()),
            Just(b" ".to_vec()),
            Just("\u{e9}t\u{e9}".as_bytes().to_vec()),
            Just(b"see <!-- kasetto:instruction:a-1 START --> inline".to_vec()),
            Just(b"---".to_vec()),
        ];
        (any::<bool>(), prop::collection::vec(piece, 0..24)).prop_map(|(bom, pieces)| {
            let mut v = if bom { BOM.to_vec() } else { Vec::new() };
            v.extend(pieces.concat());
            v
        })
    }

    fn body_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("\n"),
                Just("\r\n"),
                Just("rule"),
                Just(" "),
                Just("<!-- not a marker -->")
            ],
            0..10,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        #[test]
        fn upsert_then_remove_gives_the_original_back(
            user in user_text(),
            b1 in body_text(),
            b2 in body_text(),
            b3 in body_text(),
            first_out in any::<bool>(),
        ) {
            let one = upsert(&user, "a-12345678", &b1).unwrap();
            prop_assert_eq!(&remove(&one, "a-12345678").unwrap(), &user);
            // Updating in place then removing.
            let upd = upsert(&one, "a-12345678", &b3).unwrap();
            prop_assert_eq!(&remove(&upd, "a-12345678").unwrap(), &user);
            // Two blocks, removed in either order.
            let two = upsert(&one, "b-12345678", &b2).unwrap();
            let (x, y) = if first_out { ("a-12345678", "b-12345678") } else { ("b-12345678", "a-12345678") };
            let left = remove(&two, x).unwrap();
            prop_assert_eq!(&remove(&left, y).unwrap(), &user);
            // Replacing one block leaves every other byte alone.
            let blk = get(&two, "a-12345678").unwrap().unwrap();
            let again = upsert(&two, "a-12345678", &b3).unwrap();
            let nblk = get(&again, "a-12345678").unwrap().unwrap();
            prop_assert_eq!(&two[..blk.start], &again[..nblk.start]);
            prop_assert_eq!(&two[blk.end..], &again[nblk.end..]);
            // What get sees is what was written.
            prop_assert_eq!(&nblk.sha256, &mdasset::sha256(&again[nblk.start..nblk.end]));
        }
    }
}
