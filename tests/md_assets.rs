//! Commands and instructions found in a git pack (SPEC 10a, 10b, 13): trees written with raw
//! object writes, so names git's own tree builder refuses (`..`, `a/b`, control characters)
//! reach discovery. Each hostile name breaks only its item; the others are found, read and
//! rendered from the object database. (The sync wiring lands with the pipeline, issue 11.)

use crate::support::*;
use kasetto::agents::{CommandFormat, RuleFormat};
use kasetto::discover::PackView;
use kasetto::git::GitPack;
use kasetto::request::Selection;
use kasetto::{instructions, mdasset, slash};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_git_pack_with_hostile_names_breaks_only_those_items() {
    let tmp = tempdir();
    let mut repo = FixtureRepo::init(tmp.path().join("pack.git"));
    let commit_src = b"---\ndescription: Commit\n---\nCommit $ARGUMENTS\n";
    let ok = repo.write_blob(commit_src);
    let other = repo.write_blob(b"other\n");
    let rule = repo.write_blob(b"---\nglobs: \"*.rs\"\n---\nUse tabs.\n");
    let inner = repo.write_raw_tree(&[("inner.md", MODE_BLOB, other)]);
    let git = repo.write_raw_tree(&[("commit.md", MODE_BLOB, ok)]);
    let commands = repo.write_raw_tree(&[
        ("..", MODE_TREE, inner),
        ("a/b.md", MODE_BLOB, other),
        ("bell\x07.md", MODE_BLOB, other),
        ("git", MODE_TREE, git),
        ("link.md", MODE_LINK, other),
        ("ok.md", MODE_BLOB, ok),
    ]);
    let house = repo.write_raw_tree(&[("style.mdc", MODE_BLOB, rule)]);
    let instructions_tree =
        repo.write_raw_tree(&[("con.md", MODE_BLOB, other), ("house", MODE_TREE, house)]);
    let root = repo.write_raw_tree(&[
        ("commands", MODE_TREE, commands),
        ("instructions", MODE_TREE, instructions_tree),
    ]);
    let commit = repo.commit_tree("main", root);
    let pack = GitPack::new(repo.git2(), commit).unwrap();

    let picked = slash::pick(&pack, "", &Selection::All);
    let got: Vec<(&str, bool)> = picked
        .found
        .iter()
        .map(|i| (i.name.as_str(), i.problem.is_none()))
        .collect();
    assert_eq!(
        got,
        [
            ("a/b", false),
            ("bell\x07", false),
            ("ok", true),
            ("..", false),
            ("git:commit", true),
        ],
        "{:?}",
        picked.found
    );
    // The symlink is not a command; the folder named `..` was not entered.
    assert!(!picked.found.iter().any(|i| i.name.contains("link")));
    assert!(!picked.found.iter().any(|i| i.name.ends_with("inner")));
    for broken in picked.found.iter().filter(|i| i.problem.is_some()) {
        let why = broken.problem.as_deref().unwrap();
        assert!(
            why.starts_with("command") || why.starts_with("folder"),
            "{why}"
        );
        assert!(!why.contains('\x07'), "{why}");
    }

    // A good item reads from the object database with its git blob id, and renders.
    let item = picked
        .found
        .iter()
        .find(|i| i.name == "git:commit")
        .unwrap();
    let bytes = pack.read_file(&item.path).unwrap();
    assert_eq!(mdasset::blob_id(&bytes), ok);
    let (path, toml) = slash::render(&item.name, &bytes, CommandFormat::GeminiToml).unwrap();
    assert_eq!(path, "git/commit.toml");
    assert!(String::from_utf8(toml).unwrap().contains("Commit {{args}}"));

    let picked = instructions::pick(&pack, "", &Selection::All);
    let got: Vec<(&str, bool)> = picked
        .found
        .iter()
        .map(|i| (i.name.as_str(), i.problem.is_none()))
        .collect();
    assert_eq!(got, [("con", false), ("house:style", true)]);
    let item = &picked.found[1];
    let bytes = pack.read_file(&item.path).unwrap();
    let (file, mdc) = instructions::render_rule(&item.name, &bytes, RuleFormat::CursorMdc).unwrap();
    assert_eq!(file, "house-style.mdc");
    assert_eq!(mdc, b"---\nglobs: *.rs\n---\nUse tabs.\n");
}
