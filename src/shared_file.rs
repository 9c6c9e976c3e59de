//! Files kst shares with the user — agents' settings files, CLAUDE.md / AGENTS.md — where kst
//! owns entries or blocks, not the file. Such a file may be a symlink (a dotfiles setup, an
//! `AGENTS.md → CLAUDE.md` link): it is written through the link, atomically next to the real
//! file; in a project, never through a link that leads out of the project.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where a write to `abs` really lands: the end of its symlink chain (or of its nearest
/// existing folder's, for a file that does not exist yet).
pub fn real_path(abs: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(abs) {
        return p;
    }
    let mut rest = Vec::new();
    let mut at = abs;
    while let Some(parent) = at.parent() {
        rest.push(at.file_name().unwrap_or_default().to_owned());
        if let Ok(p) = std::fs::canonicalize(parent) {
            let mut out = p;
            out.extend(rest.iter().rev());
            return out;
        }
        at = parent;
    }
    abs.to_path_buf()
}

/// Refuse a path that leads out of `confine` through a symlink, or into a `.git` folder inside
/// it: a cloned project cannot ship `.git/`, but it can ship `CLAUDE.md → .git/hooks/pre-commit`,
/// and a block appended to the user's executable hook would run at the next commit.
pub fn check_confined(abs: &Path, confine: Option<&Path>) -> Result<(), String> {
    let Some(root) = confine else { return Ok(()) };
    let real = real_path(abs);
    if let Ok(inside) = real.strip_prefix(root) {
        let in_git = inside
            .components()
            .any(|c| crate::pathsafe::is_git_alias(&c.as_os_str().to_string_lossy()));
        if in_git {
            return Err(format!(
                "it leads into a .git folder of the project (to {}); kst never edits git's own files",
                crate::escape::escape_line(&real.display().to_string())
            ));
        }
        Ok(())
    } else {
        Err(format!(
            "it leads out of the project through a symlink (to {}); in a project kst follows no symlink out of it",
            // A link's target is the project's text: one line, escaped.
            crate::escape::escape_line(&real.display().to_string())
        ))
    }
}

/// The file to write for a shared path: the path itself, or the end of its symlink chain.
pub fn write_path(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).with_context(|| {
            format!(
                "{} is a symlink to a missing file; left unchanged",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}
