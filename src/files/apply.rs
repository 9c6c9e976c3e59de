//! Carrying out a commands or instructions plan. A rendered file is written atomically (temp
//! file, fsync, rename), never through a symlinked folder of the project; a shared file gets
//! one atomic write with all its block edits, through its own symlink if it is one, and only
//! inside the project. A step that fails keeps what the old lock said (see
//! [`FilePlan::lock_entries`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};

use crate::fsx;
use crate::item::Target;
use crate::scope::ScopeCtx;

use super::plan::{FilePlan, Write};

fn no_symlinked_parent(scope: &ScopeCtx, t: &Target) -> Result<()> {
    match scope.symlinked_parent(&t.abs) {
        Some(link) => bail!(
            "{} is a symlink; inside a project kst never writes or deletes through a symlink \
             (a cloned project could point it anywhere); replace it with a real folder",
            link.display()
        ),
        None => Ok(()),
    }
}

fn write_file(scope: &ScopeCtx, t: &Target, bytes: &[u8]) -> Result<()> {
    no_symlinked_parent(scope, t)?;
    crate::failpoint::fail("file-write")?;
    fsx::clean_stale_temps_for(&t.abs);
    fsx::write_atomic(&t.abs, bytes, None)
        .with_context(|| format!("cannot write {}", t.abs.display()))
}

fn remove_file(scope: &ScopeCtx, t: &Target) -> Result<()> {
    no_symlinked_parent(scope, t)?;
    crate::failpoint::fail("remove")?;
    match std::fs::symlink_metadata(&t.abs) {
        Ok(m) if m.file_type().is_file() => std::fs::remove_file(&t.abs)
            .with_context(|| format!("cannot remove {}", t.abs.display())),
        _ => Ok(()),
    }
}

/// All the block edits to one shared file, in plan order, as one write. Read again here: the
/// file may have changed since the plan (then the markers are checked again).
fn edit_shared(t: &Target, edits: &[&Write], confine: Option<&std::path::Path>) -> Result<()> {
    crate::shared_file::check_confined(&t.abs, confine)
        .map_err(|e| anyhow!("{}: {e}; left unchanged", t.abs.display()))?;
    let path = crate::shared_file::write_path(&t.abs)?;
    let before = match fsx::read_input_bytes(&path, fsx::SETTINGS_CAP, None) {
        Ok(b) => Some(b),
        Err(fsx::ReadError::NotFound) => None,
        Err(e) => bail!("cannot read {}: {e}; left unchanged", path.display()),
    };
    let mut bytes = before.clone().unwrap_or_default();
    for w in edits {
        let r = match w {
            Write::Block { id, body } => crate::instructions::upsert(&bytes, id, body),
            Write::RemoveBlock { id } => crate::instructions::remove(&bytes, id),
            _ => continue,
        };
        bytes = r.map_err(|r| {
            anyhow!(
                "{}:{}: {}; left unchanged",
                path.display(),
                r.line,
                r.message
            )
        })?;
    }
    // Never create a file to hold nothing, and never delete the user's file (SPEC 10b).
    if before.as_deref() == Some(bytes.as_slice()) || (before.is_none() && bytes.is_empty()) {
        return Ok(());
    }
    crate::failpoint::fail("file-write")?;
    fsx::clean_stale_temps_for(&path);
    fsx::write_atomic(&path, &bytes, None)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Returns whether the lock section was made again ([`FilePlan::lock`]): only when a step
/// wrote or removed something, or failed (here or before: a step's error keeps the old
/// record). Otherwise it is exactly what the plan made, and `plan.lock` is left as it is.
pub fn apply(plan: &mut FilePlan, scope: &ScopeCtx) -> bool {
    let mut touched = false;
    // Shared files: every block edit of one file together.
    let mut shared: BTreeMap<String, (Target, Vec<(usize, usize)>)> = BTreeMap::new();
    for (ii, item) in plan.items.iter_mut().enumerate() {
        for (di, d) in item.dests.iter_mut().enumerate() {
            touched |= !matches!(d.extra.write, Write::Nothing) || d.error.is_some();
            let result = match &d.extra.write {
                Write::Nothing => Ok(()),
                Write::File(bytes) => write_file(scope, &d.target, bytes),
                Write::RemoveFile => remove_file(scope, &d.target),
                Write::Block { .. } | Write::RemoveBlock { .. } => {
                    shared
                        .entry(d.target.rel.clone())
                        .or_insert_with(|| (d.target.clone(), Vec::new()))
                        .1
                        .push((ii, di));
                    Ok(())
                }
            };
            if let Err(e) = result {
                d.error = Some(format!("{e:#}"));
            }
        }
    }
    for (target, steps) in shared.values() {
        let edits: Vec<&Write> = steps
            .iter()
            .map(|&(ii, di)| &plan.items[ii].dests[di].extra.write)
            .collect();
        if let Err(e) = edit_shared(target, &edits, plan.confine.as_deref()) {
            let msg = format!("{e:#}");
            for &(ii, di) in steps {
                plan.items[ii].dests[di].error = Some(msg.clone());
            }
        }
    }
    if touched {
        plan.lock = plan.lock_entries();
    }
    touched
}
