//! What the user typed after `kst add` / `kst remove`: a source, perhaps with an `@REF`
//! shorthand, perhaps a URL copied from a forge's web page, decomposed into the pieces a config
//! entry has (`source`, `ref` or `branch`, `sub-dir`, and a skill name).
//!
//! Pure string work: nothing here reads the network or the disk. Whether the source exists is
//! the caller's to check (it resolves it once before editing the config).

/// A reference the user gave: a pin (`ref:`) or a branch to track (`branch:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    Ref(String),
    Branch(String),
}

/// The pieces of a config entry found in what the user typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The source as it will be written in the config (a URL, scp-like address or path).
    pub source: String,
    /// From `SOURCE@REF` or from a browser URL.
    pub reference: Option<TargetRef>,
    /// `@REF` was used (it may not be combined with `--ref`/`--branch`).
    pub shorthand: bool,
    /// From a browser URL's path.
    pub sub_dir: Option<String>,
    /// From a browser URL of a `SKILL.md`: the skill's folder name.
    pub name: Option<String>,
}

/// Split `input` into its pieces. Errors say what is wrong with it and what to type instead.
pub fn parse(input: &str) -> Result<Target, String> {
    if input.chars().any(char::is_control) {
        return Err("the source contains control characters".into());
    }
    let input = input.trim();
    if input.is_empty() {
        return Err("the source is empty".into());
    }
    let (source, at_ref) = split_at_ref(input)?;
    let mut target = match browser(source)? {
        Some(t) => t,
        None => Target {
            source: source.to_string(),
            ..Target::default()
        },
    };
    if let Some(r) = at_ref {
        if target.reference.is_some() {
            return Err("it names a ref twice (in the URL's path and after `@`); keep one".into());
        }
        target.reference = Some(TargetRef::Ref(r.to_string()));
        target.shorthand = true;
    }
    Ok(target)
}

/// `SOURCE@REF` → `(SOURCE, Some(REF))`. Only an `@` inside the repository path counts: the
/// `@` of `git@host:path` or of `ssh://user@host/path` is a user name, and a local folder
/// (which has no refs) is never split.
fn split_at_ref(input: &str) -> Result<(&str, Option<&str>), String> {
    let path_start = if let Some(i) = input.find("://") {
        // The path starts at the first `/` after the authority.
        match input[i + 3..].find('/') {
            Some(j) => i + 3 + j,
            None => return Ok((input, None)),
        }
    } else if let Some(colon) = scp_colon(input) {
        colon + 1
    } else {
        return Ok((input, None));
    };
    match input[path_start..].rfind('@') {
        None => Ok((input, None)),
        Some(k) => {
            let at = path_start + k;
            let (source, reference) = (&input[..at], &input[at + 1..]);
            if reference.is_empty() {
                return Err(
                    "it ends with `@` but names no ref; write SOURCE@REF (a tag, commit or ref)"
                        .into(),
                );
            }
            Ok((source, Some(reference)))
        }
    }
}

/// The `:` of a scp-like address (`[user@]host:path`), as [`crate::source::parse`] reads it.
fn scp_colon(input: &str) -> Option<usize> {
    let colon = input.find(':')?;
    let before = &input[..colon];
    (!before.is_empty() && !before.contains('/') && before.len() > 1).then_some(colon)
}

/// A URL copied from a forge's web page: GitHub's `/tree/<ref>/<path>` and
/// `/blob/<ref>/<path>/SKILL.md`, GitLab's `/-/tree/` and `/-/blob/`, Gitea's and Forgejo's
/// `/src/branch/`, `/src/tag/`, `/src/commit/`. `None` when `source` is none of these.
fn browser(source: &str) -> Result<Option<Target>, String> {
    let lower = source.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Ok(None);
    }
    let Ok(url) = url::Url::parse(source) else {
        // Not a URL at all: the source parser says why, with the same words as for a config.
        return Ok(None);
    };
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL are refused by the source parser, with its own message.
        return Ok(None);
    }
    let segs: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    // (repository segments, kind, the ref, the path after it)
    let found = if let Some(i) = segs.iter().position(|s| *s == "-") {
        match segs.get(i + 1) {
            Some(&k @ ("tree" | "blob")) if i > 0 => Some((i, k, i + 2)),
            _ => None,
        }
    } else if segs.len() >= 3 && matches!(segs[2], "tree" | "blob") {
        Some((2, segs[2], 3))
    } else if segs.len() >= 4 && segs[2] == "src" && matches!(segs[3], "branch" | "tag" | "commit")
    {
        Some((2, segs[3], 4))
    } else {
        None
    };
    let Some((repo_len, kind, ref_at)) = found else {
        return Ok(None);
    };
    let Some(reference) = segs.get(ref_at).map(|r| r.to_string()) else {
        return Err(format!(
            "the URL has no ref after /{kind}/; paste the URL of a folder or a SKILL.md"
        ));
    };
    let rest: Vec<&str> = segs[ref_at + 1..].to_vec();
    if rest
        .iter()
        .any(|p| *p == "." || *p == ".." || p.contains('%'))
    {
        return Err(
            "its path has `.`, `..` or %-escapes; pass the repository URL with --sub-dir instead"
                .into(),
        );
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let repo = format!(
        "{}://{host}{port}/{}",
        url.scheme(),
        segs[..repo_len].join("/")
    );
    let is_sha = reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit());
    let reference = match kind {
        "branch" => TargetRef::Branch(reference),
        "tag" | "commit" => TargetRef::Ref(reference),
        // A web page's ref may be a branch, a tag or a commit: a full commit id pins, anything
        // else is tracked as a branch (what a user browsing a branch expects, as in Kasetto).
        _ if is_sha => TargetRef::Ref(reference),
        _ => TargetRef::Branch(reference),
    };
    let mut target = Target {
        source: repo,
        reference: Some(reference),
        ..Target::default()
    };
    let is_blob = kind == "blob";
    if is_blob {
        // …/blob/<ref>/<dir…>/<skill>/SKILL.md: the skill is the folder holding SKILL.md.
        match rest.split_last() {
            Some((file, dirs)) if *file == "SKILL.md" && !dirs.is_empty() => {
                let (name, parent) = dirs.split_last().expect("not empty");
                target.name = Some(name.to_string());
                target.sub_dir = (!parent.is_empty()).then(|| parent.join("/"));
            }
            _ => {
                return Err(
                    "it is a file's page, not a skill's SKILL.md; paste the URL of the \
                     skill's SKILL.md or of a folder (…/tree/<ref>/<path>)"
                        .into(),
                );
            }
        }
    } else {
        target.sub_dir = (!rest.is_empty()).then(|| rest.join("/"));
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn at_ref_shorthand_splits_only_inside_the_path() {
        let a = t("https://github.com/org/skills@v1.2.0");
        assert_eq!(a.source, "https://github.com/org/skills");
        assert_eq!(a.reference, Some(TargetRef::Ref("v1.2.0".into())));
        assert!(a.shorthand);
        // scp-like: the user name stays, the ref splits.
        let b = t("git@github.com:org/skills.git@main");
        assert_eq!(b.source, "git@github.com:org/skills.git");
        assert_eq!(b.reference, Some(TargetRef::Ref("main".into())));
        for plain in [
            "git@github.com:org/skills.git",
            "ssh://git@example.com/org/skills",
            "ssh://git@example.com:2222/org/skills",
            "./my@skills",
            "~/skills@v1",
        ] {
            let p = t(plain);
            assert_eq!(p.source, plain);
            assert_eq!(p.reference, None, "{plain}");
        }
        let c = t("ssh://git@example.com/org/skills@feature/x");
        assert_eq!(c.source, "ssh://git@example.com/org/skills");
        assert_eq!(c.reference, Some(TargetRef::Ref("feature/x".into())));
        assert!(parse("https://github.com/org/skills@").is_err());
    }

    #[test]
    fn browser_urls_are_decomposed() {
        let a = t("https://github.com/org/skills/tree/main/packs/backend");
        assert_eq!(a.source, "https://github.com/org/skills");
        assert_eq!(a.reference, Some(TargetRef::Branch("main".into())));
        assert_eq!(a.sub_dir.as_deref(), Some("packs/backend"));
        assert_eq!(a.name, None);

        let b = t("https://github.com/org/skills/blob/v2/skills/personal/edit-article/SKILL.md");
        assert_eq!(b.source, "https://github.com/org/skills");
        assert_eq!(b.reference, Some(TargetRef::Branch("v2".into())));
        assert_eq!(b.sub_dir.as_deref(), Some("skills/personal"));
        assert_eq!(b.name.as_deref(), Some("edit-article"));

        let sha = "0123456789abcdef0123456789abcdef01234567";
        let c = t(&format!(
            "https://github.com/org/skills/blob/{sha}/pdf/SKILL.md"
        ));
        assert_eq!(c.reference, Some(TargetRef::Ref(sha.into())));
        assert_eq!(c.sub_dir, None);
        assert_eq!(c.name.as_deref(), Some("pdf"));

        let d = t("https://gitlab.example.com/group/sub/project/-/tree/develop/skills");
        assert_eq!(d.source, "https://gitlab.example.com/group/sub/project");
        assert_eq!(d.reference, Some(TargetRef::Branch("develop".into())));
        assert_eq!(d.sub_dir.as_deref(), Some("skills"));

        let e = t("https://codeberg.org/org/skills/src/tag/v1/skills/pdf");
        assert_eq!(e.source, "https://codeberg.org/org/skills");
        assert_eq!(e.reference, Some(TargetRef::Ref("v1".into())));
        assert_eq!(e.sub_dir.as_deref(), Some("skills/pdf"));
        let f = t("https://gitea.example.com:3000/org/skills/src/branch/main");
        assert_eq!(f.source, "https://gitea.example.com:3000/org/skills");
        assert_eq!(f.reference, Some(TargetRef::Branch("main".into())));
        assert_eq!(f.sub_dir, None);

        // A plain repository URL is left alone.
        assert_eq!(
            t("https://github.com/org/skills").source,
            "https://github.com/org/skills"
        );
        // A blob that is not a SKILL.md, a ref given twice, a path leaving the repository.
        assert!(parse("https://github.com/org/skills/blob/main/README.md").is_err());
        assert!(parse("https://github.com/org/skills/tree/main/x@v1").is_err());
        assert!(parse("https://github.com/org/skills/tree/main/a%20b").is_err());
        assert!(parse("https://github.com/org/skills/tree").is_err());
        // Credentials are left in for the source parser to refuse, and never quoted here.
        let u = t("https://user:pw@github.com/org/skills/tree/main/x");
        assert_eq!(u.reference, None);
        let e = parse("https://github.com/org/skills/blob/main/README.md").unwrap_err();
        assert!(!e.contains("github.com"), "{e}");
    }
}
