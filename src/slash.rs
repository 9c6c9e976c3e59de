//! Slash commands (SPEC 10a): which Markdown files of a pack are commands, and what each agent's
//! file for one of them is — its path under the agent's commands folder and its bytes.
//!
//! Pure: nothing here touches the disk. The pipeline picks commands with [`pick`], reads each
//! picked file through the pack, records its [`crate::mdasset::blob_id`], renders it once per
//! agent format with [`render`] and writes the bytes where [`crate::agents::Agent::commands_dir`]
//! says, recording [`crate::mdasset::sha256`] of what it wrote. Rendering is deterministic, so
//! a re-sync of an unchanged source produces the same bytes (a no-op).
//!
//! Formats (where SPEC 10a is silent, as Kasetto 3.12 does):
//! - Markdown + frontmatter, pi's flat Markdown, Copilot's `.prompt.md`: the source file as it
//!   is (its frontmatter still checked, so a malformed one breaks the command everywhere);
//! - body-only Markdown: what follows the frontmatter;
//! - Gemini TOML: `description` (if the frontmatter has one) and `prompt` (the body, with
//!   `$ARGUMENTS` → `{{args}}`), written by `toml_edit` so any text is a valid TOML string;
//! - Continue `.prompt`: the source's frontmatter with `invokable: true` added unless it sets
//!   `invokable`, then the body with `$ARGUMENTS` → `{{{ input }}}`.

use crate::agents::{CommandFormat, Namespacing};
use crate::discover::PackView;
use crate::mdasset::{self, Kind, Picked};
use crate::request::Selection;

/// Commands live under `commands/` of the pack (or of its `sub-dir`), as `.md` files.
pub const KIND: Kind = Kind {
    folder: "commands",
    exts: &["md"],
    noun: "command",
};

/// The configured commands of a pack (`root` is its discovery root, `""` or the `sub-dir`).
pub fn pick(view: &dyn PackView, root: &str, selection: &Selection) -> Picked {
    mdasset::pick(view, root, &KIND, selection)
}

/// Where a command's file goes, '/'-separated, relative to the agent's commands folder:
/// `git:commit` → `git/commit.md` (nested formats) or `git-commit.prompt.md` (flat ones).
pub fn rel_path(name: &str, format: CommandFormat) -> String {
    let ext = match format {
        CommandFormat::Markdown | CommandFormat::MarkdownFlat | CommandFormat::MarkdownBody => "md",
        CommandFormat::GeminiToml => "toml",
        CommandFormat::ContinuePrompt => "prompt",
        CommandFormat::CopilotPrompt => "prompt.md",
    };
    let stem = match format.namespacing() {
        Namespacing::Nested => name.replace(':', "/"),
        Namespacing::Flat => mdasset::flat_name(name),
    };
    format!("{stem}.{ext}")
}

/// The file for command `name` (`git:commit`) in `format`: its path relative to the agent's
/// commands folder ([`rel_path`]) and its bytes. An unsafe name, a source that is not UTF-8
/// or whose frontmatter is malformed, too big or too deep is an error `LINE:COL: what` (put
/// the source's path in front), quoting nothing of the file.
pub fn render(
    name: &str,
    source: &[u8],
    format: CommandFormat,
) -> Result<(String, Vec<u8>), String> {
    mdasset::check_name(name).map_err(|e| format!("command {e}"))?;
    let parsed = mdasset::parse(source)?;
    let bytes = match format {
        CommandFormat::Markdown | CommandFormat::MarkdownFlat | CommandFormat::CopilotPrompt => {
            source.to_vec()
        }
        CommandFormat::MarkdownBody => parsed.body.as_bytes().to_vec(),
        CommandFormat::GeminiToml => gemini_toml(&parsed).into_bytes(),
        CommandFormat::ContinuePrompt => continue_prompt(&parsed).into_bytes(),
    };
    Ok((rel_path(name, format), bytes))
}

fn gemini_toml(parsed: &mdasset::Parsed<'_>) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    if let Some(d) = parsed.scalar("description") {
        doc["description"] = toml_edit::value(d);
    }
    doc["prompt"] = toml_edit::value(parsed.body.replace("$ARGUMENTS", "{{args}}"));
    doc.to_string()
}

fn continue_prompt(parsed: &mdasset::Parsed<'_>) -> String {
    let mut header = parsed.yaml.unwrap_or_default().replace("\r\n", "\n");
    if !header.is_empty() && !header.ends_with('\n') {
        header.push('\n');
    }
    if !parsed.fields.contains_key("invokable") {
        header.push_str("invokable: true\n");
    }
    format!(
        "---\n{header}---\n{}",
        parsed.body.replace("$ARGUMENTS", "{{{ input }}}")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandFormat as F;

    const SRC: &[u8] =
        b"---\ndescription: Commit \"staged\" work\nargument-hint: <msg>\n---\nCommit with $ARGUMENTS.\nUse '''quotes''' and \"\"\" and \\ too.\n";

    fn text(r: Result<(String, Vec<u8>), String>) -> (String, String) {
        let (p, b) = r.unwrap();
        (p, String::from_utf8(b).unwrap())
    }

    #[test]
    fn paths_per_format() {
        let cases = [
            (F::Markdown, "git/work/commit.md"),
            (F::GeminiToml, "git/work/commit.toml"),
            (F::MarkdownFlat, "git-work-commit.md"),
            (F::MarkdownBody, "git-work-commit.md"),
            (F::CopilotPrompt, "git-work-commit.prompt.md"),
            (F::ContinuePrompt, "git-work-commit.prompt"),
        ];
        for (f, want) in cases {
            assert_eq!(rel_path("git:work:commit", f), want, "{f:?}");
        }
        assert_eq!(rel_path("commit", F::Markdown), "commit.md");
        assert_eq!(rel_path("commit", F::GeminiToml), "commit.toml");
    }

    #[test]
    fn markdown_formats_keep_the_source_bytes() {
        let crlf = b"\xef\xbb\xbf---\r\ndescription: x\r\n---\r\nbody\r\n";
        for f in [F::Markdown, F::MarkdownFlat, F::CopilotPrompt] {
            assert_eq!(render("c", SRC, f).unwrap().1, SRC, "{f:?}");
            assert_eq!(render("c", crlf, f).unwrap().1, crlf, "{f:?}");
        }
        let (_, body) = text(render("c", SRC, F::MarkdownBody));
        assert_eq!(
            body,
            "Commit with $ARGUMENTS.\nUse '''quotes''' and \"\"\" and \\ too.\n"
        );
        assert_eq!(render("c", crlf, F::MarkdownBody).unwrap().1, b"body\r\n");
        // No frontmatter: the whole file is the body.
        assert_eq!(
            render("c", b"just text\n", F::MarkdownBody).unwrap().1,
            b"just text\n"
        );
    }

    #[test]
    fn gemini_toml_is_valid_and_maps_arguments() {
        let (path, toml) = text(render("git:commit", SRC, F::GeminiToml));
        assert_eq!(path, "git/commit.toml");
        let doc: toml_edit::DocumentMut = toml.parse().expect("valid TOML");
        assert_eq!(doc["description"].as_str(), Some("Commit \"staged\" work"));
        assert_eq!(
            doc["prompt"].as_str(),
            Some("Commit with {{args}}.\nUse '''quotes''' and \"\"\" and \\ too.\n")
        );
        assert_eq!(doc.len(), 2);
        // Without a description, only the prompt.
        let (_, toml) = text(render("c", b"run $ARGUMENTS now", F::GeminiToml));
        let doc: toml_edit::DocumentMut = toml.parse().unwrap();
        assert!(doc.get("description").is_none());
        assert_eq!(doc["prompt"].as_str(), Some("run {{args}} now"));
        // Control characters and CRLF survive as escapes, still valid.
        let (_, toml) = text(render("c", b"a\r\nb\x1b[0m\x7f\n", F::GeminiToml));
        let doc: toml_edit::DocumentMut = toml.parse().unwrap();
        assert_eq!(doc["prompt"].as_str(), Some("a\r\nb\x1b[0m\x7f\n"));
    }

    #[test]
    fn continue_prompt_header() {
        let (path, out) = text(render("git:commit", SRC, F::ContinuePrompt));
        assert_eq!(path, "git-commit.prompt");
        assert_eq!(
            out,
            "---\ndescription: Commit \"staged\" work\nargument-hint: <msg>\ninvokable: true\n---\n\
             Commit with {{{ input }}}.\nUse '''quotes''' and \"\"\" and \\ too.\n"
        );
        let (_, out) = text(render("c", b"do $ARGUMENTS", F::ContinuePrompt));
        assert_eq!(out, "---\ninvokable: true\n---\ndo {{{ input }}}");
        let (_, out) = text(render(
            "c",
            b"---\ninvokable: false\n---\nx\n",
            F::ContinuePrompt,
        ));
        assert_eq!(out, "---\ninvokable: false\n---\nx\n");
        let (_, out) = text(render("c", b"---\n---\nx\n", F::ContinuePrompt));
        assert_eq!(out, "---\ninvokable: true\n---\nx\n");
    }

    #[test]
    fn malformed_frontmatter_is_an_error_with_a_position_in_every_format() {
        let bad = b"---\ndescription: ok\ntools: [a, {b: SECRET-TOKEN\n---\nbody\n";
        for f in [
            F::Markdown,
            F::MarkdownFlat,
            F::MarkdownBody,
            F::GeminiToml,
            F::ContinuePrompt,
            F::CopilotPrompt,
        ] {
            let e = render("c", bad, f).unwrap_err();
            assert!(
                e.split(':').next().unwrap().parse::<usize>().unwrap() >= 3,
                "{f:?}: {e}"
            );
            assert!(e.contains("invalid frontmatter"), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
        let e = render("c", b"---\nno end\n", F::Markdown).unwrap_err();
        assert!(e.starts_with("1:1:") && e.contains("never closed"), "{e}");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["..", "a:..", "a/b", "x\u{1b}y", "con", "a::b", ""] {
            let e = render(bad, b"x", F::Markdown).unwrap_err();
            assert!(e.starts_with("command name"), "{bad:?}: {e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn pick_reads_commands_through_the_pack() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("commands/git")).unwrap();
        std::fs::write(tmp.path().join("commands/git/commit.md"), SRC).unwrap();
        let view = crate::discover::DiskPack::new(tmp.path().to_path_buf(), None);
        let picked = pick(&view, "", &Selection::All);
        assert_eq!(picked.found.len(), 1);
        let item = &picked.found[0];
        assert_eq!(item.name, "git:commit");
        let bytes = view.read_file(&item.path).unwrap();
        let (path, _) = render(&item.name, &bytes, F::Markdown).unwrap();
        assert_eq!(path, "git/commit.md");
    }
}
