//! Which names may be written to disk (SPEC 13.1).
//!
//! Every file or folder kst creates is named by a tree entry (git) or a directory entry (local
//! source). libgit2 validates names only during checkout, and we write blobs ourselves, so this
//! module is the one gate every name passes. The rules follow git's own (`verify_path`) and are
//! applied on every OS, because a lock written on Linux is installed on Windows and macOS too.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeName {
    pub name: String,
    pub reason: &'static str,
}

impl fmt::Display for UnsafeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsafe entry name {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for UnsafeName {}

const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "CONIN$",
    "CONOUT$",
];

/// Check one path component (a file or folder name) before it is joined to a destination.
pub fn check_component(name: &[u8]) -> Result<&str, UnsafeName> {
    let fail = |reason| UnsafeName {
        name: String::from_utf8_lossy(name).into_owned(),
        reason,
    };
    let s = std::str::from_utf8(name).map_err(|_| fail("not valid UTF-8"))?;
    if s.is_empty() {
        return Err(fail("empty name"));
    }
    if s == "." || s == ".." {
        return Err(fail("relative path component"));
    }
    if s.contains('/') || s.contains('\\') {
        return Err(fail("contains a path separator"));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(fail("contains a NUL or control character"));
    }
    if s.contains(':') {
        // NTFS alternate data streams (`.git::$INDEX_ALLOCATION`) and drive-relative names.
        return Err(fail("contains ':' (NTFS stream or drive syntax)"));
    }
    if is_git_alias(s) {
        return Err(fail(
            "names git's metadata folder (or an NTFS/HFS alias of it)",
        ));
    }
    if s.ends_with('.') || s.ends_with(' ') {
        return Err(fail("ends with a dot or space (Windows strips them)"));
    }
    let stem = s.split('.').next().unwrap_or(s).trim_end();
    if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        return Err(fail("is a reserved device name on Windows"));
    }
    if s.chars()
        .any(|c| matches!(c, '<' | '>' | '"' | '|' | '?' | '*'))
    {
        return Err(fail("contains a character Windows forbids in file names"));
    }
    Ok(s)
}

/// `.git` in any case, its 8.3 short name `git~1`, and spellings HFS+ folds to `.git`
/// by ignoring Unicode "ignorable" code points (git's `is_hfs_dotgit`).
pub fn is_git_alias(s: &str) -> bool {
    if s.eq_ignore_ascii_case("git~1") {
        return true;
    }
    let folded: String = s.chars().filter(|c| !is_hfs_ignorable(*c)).collect();
    folded.eq_ignore_ascii_case(".git")
}

fn is_hfs_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}'
    )
}

/// A skill name: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, and safe as a folder name.
pub fn check_skill_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_first || !ok_rest || name.len() > 128 {
        return Err(format!(
            "invalid skill name {name:?}: names must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}"
        ));
    }
    check_component(name.as_bytes()).map_err(|e| e.to_string())?;
    Ok(())
}

/// A `:`-namespaced name (`git:commit`, a command or an instruction): each part becomes a
/// folder or file name, so each must be a safe path component.
pub fn check_namespaced_name(name: &str) -> Result<(), String> {
    for part in name.split(':') {
        check_component(part.as_bytes()).map_err(|e| format!("name {name:?}: {e}"))?;
    }
    Ok(())
}

/// A relative path written in config (`sub-dir`, `path`): each component must be safe.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    let trimmed = path.trim_matches('/');
    if path.starts_with('/') || path.contains('\\') {
        return Err(format!(
            "{path:?} must be a relative path with '/' separators"
        ));
    }
    for part in trimmed.split('/').filter(|p| !p.is_empty() && *p != ".") {
        check_component(part.as_bytes()).map_err(|e| format!("{path:?}: {e}"))?;
    }
    Ok(())
}

/// Resolve `.` and `..` lexically (no file-system access, so no symlink is followed).
pub fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name is refused by the rule meant for it (not by another one by accident), so
    /// dropping any one rule fails this test.
    #[test]
    fn refuses_hostile_names() {
        const SEP: &str = "path separator";
        const WIN: &str = "Windows forbids";
        const GIT: &str = "git's metadata folder";
        const DEV: &str = "reserved device name";
        for (bad, why) in [
            ("", "empty name"),
            (".", "relative path component"),
            ("..", "relative path component"),
            ("a/b", SEP),
            ("/", SEP),
            ("a\\b", SEP),
            ("a\0b", "control character"),
            ("a\nb", "control character"),
            ("a:b", "':'"),
            (".git", GIT),
            (".GIT", GIT),
            (".Git", GIT),
            ("git~1", GIT),
            ("GIT~1", GIT),
            (".git::$INDEX_ALLOCATION", "':'"),
            (".g\u{200c}it", GIT),
            ("\u{feff}.git", GIT),
            ("CON", DEV),
            ("con", DEV),
            ("aux.md", DEV),
            ("NUL.txt", DEV),
            ("com1", DEV),
            ("x.", "ends with a dot or space"),
            ("x ", "ends with a dot or space"),
            ("a<b", WIN),
            ("a>b", WIN),
            ("a\"b", WIN),
            ("a|b", WIN),
            ("a?b", WIN),
            ("a*b", WIN),
        ] {
            match check_component(bad.as_bytes()) {
                Ok(_) => panic!("{bad:?} accepted"),
                Err(e) => assert!(e.reason.contains(why), "{bad:?}: {e} (expected: {why})"),
            }
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for good in [
            "SKILL.md",
            ".gitignore",
            ".github",
            "run.sh",
            "a b.txt",
            "über.md",
            "console.md",
            ".git-hooks",
        ] {
            assert!(check_component(good.as_bytes()).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn skill_names() {
        assert!(check_skill_name("pdf").is_ok());
        assert!(check_skill_name("my_skill-2.0").is_ok());
        assert!(check_skill_name("-x").is_err());
        assert!(check_skill_name("../x").is_err());
        assert!(check_skill_name("con").is_err());
        assert!(check_skill_name(&"a".repeat(129)).is_err());
    }

    // Found by cargo-mutants (docs/testing.md): the length limit's edge, a bad character after
    // a good first one, and each refusal's reason (the message tells the user what to fix, and
    // several names would also be refused later for a worse reason).
    #[test]
    fn skill_name_edges() {
        assert!(check_skill_name(&"a".repeat(128)).is_ok());
        assert!(check_skill_name("a b").is_err());
        assert!(check_skill_name("a+b").is_err());
        assert!(check_skill_name("").is_err());
    }

    #[test]
    fn each_refusal_says_why() {
        let why = |n: &str| check_component(n.as_bytes()).unwrap_err().reason;
        assert_eq!(why(""), "empty name");
        assert_eq!(why("."), "relative path component");
        assert_eq!(why(".."), "relative path component");
        assert_eq!(why("a/b"), "contains a path separator");
        assert_eq!(why("a\\b"), "contains a path separator");
        assert_eq!(why("a\0b"), "contains a NUL or control character");
        assert_eq!(why("a:b"), "contains ':' (NTFS stream or drive syntax)");
        for git in [
            ".git",
            "GIT~1",
            ".g\u{200c}it",
            "\u{feff}.git",
            ".git\u{206f}",
        ] {
            assert_eq!(
                why(git),
                "names git's metadata folder (or an NTFS/HFS alias of it)",
                "{git:?}"
            );
        }
        assert_eq!(why("x."), "ends with a dot or space (Windows strips them)");
        assert_eq!(why("x "), "ends with a dot or space (Windows strips them)");
        assert_eq!(why("aux.md"), "is a reserved device name on Windows");
        assert_eq!(
            check_component(b"\xff").unwrap_err().reason,
            "not valid UTF-8"
        );
    }

    #[test]
    fn relative_paths() {
        for good in ["skills", "a/b", "a/./b", "a/b/", "./a"] {
            assert!(check_relative_path(good).is_ok(), "{good:?} refused");
        }
        for bad in ["/abs", "a\\b", "../x", "a/../b", "a/.git/b", "a/CON"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
