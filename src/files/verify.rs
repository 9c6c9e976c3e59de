//! `kst verify` for commands and instructions: is each file and block the lock records still
//! what kst wrote (its sha256)? Offline and read-only. A key the lock names outside every
//! place kst writes this kind to is not read (a hostile lock must not point kst at
//! `~/.ssh/…`); a check never shows a file's content.

use std::path::Path;

use serde::Serialize;

use crate::item::Kind;
use crate::lock::LockedFileSource;

use super::{KnownPlace, known};

#[derive(Debug, Serialize)]
pub struct FileCheck {
    pub kind: Kind,
    pub name: String,
    pub source: String,
    /// The destination as the lock names it (`FILE#ID` for a block).
    pub path: String,
    /// `ok`, `modified`, `missing`, or `error`.
    pub status: &'static str,
    pub error: Option<String>,
    /// A block in a shared file (not a file of its own).
    pub block: bool,
}

/// Every destination of one kind's lock section, checked in this scope.
pub fn check(
    kind: Kind,
    section: &[LockedFileSource],
    global: bool,
    home: &Path,
    root: &Path,
    confine: Option<&Path>,
) -> Vec<FileCheck> {
    let known = known(kind, global, home, root);
    let mut out = Vec::new();
    for s in section {
        for it in &s.items {
            for (key, sha) in &it.installed {
                let mut c = FileCheck {
                    kind,
                    name: it.name.clone(),
                    source: s.url.clone(),
                    path: key.clone(),
                    status: "ok",
                    error: None,
                    block: false,
                };
                let found = match known.place_of(key, root) {
                    None => Err(format!(
                        "the lock names a place where kst writes no {}; it was not read",
                        kind.noun()
                    )),
                    Some(KnownPlace::File(t))
                        if let Some(link) = super::symlinked_folder(global, root, &t.abs) =>
                    {
                        Err(super::symlinked_folder_error(&link))
                    }
                    Some(KnownPlace::File(t)) => match std::fs::symlink_metadata(&t.abs) {
                        Err(_) => Ok(None),
                        Ok(_) => Ok(Some(super::plan::file_sha(&t.abs).unwrap_or_default())),
                    },
                    Some(KnownPlace::Block { target, id }) => {
                        c.block = true;
                        crate::shared_file::check_confined(&target.abs, confine)
                            .and_then(|()| {
                                crate::fsx::read_input_bytes(
                                    &target.abs,
                                    crate::fsx::SETTINGS_CAP,
                                    None,
                                )
                                .or_else(|e| match e {
                                    crate::fsx::ReadError::NotFound => Ok(Vec::new()),
                                    e => Err(format!("cannot read it: {e}")),
                                })
                            })
                            .and_then(|bytes| {
                                crate::instructions::get(&bytes, &id)
                                    .map(|b| b.map(|b| b.sha256))
                                    .map_err(|r| format!("line {}: {}", r.line, r.message))
                            })
                            .map_err(|e| format!("{}: {e}", target.abs.display()))
                    }
                };
                match found {
                    Err(e) => {
                        c.status = "error";
                        c.error = Some(e);
                    }
                    Ok(None) => c.status = "missing",
                    Ok(Some(now)) if now == *sha => {}
                    Ok(Some(_)) => c.status = "modified",
                }
                out.push(c);
            }
        }
    }
    out
}
