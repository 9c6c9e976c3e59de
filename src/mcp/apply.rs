//! Carrying out an MCP plan: one atomic write per changed settings file.
//!
//! Each file is read again, edited in memory (only the entries the plan names), and written
//! with [`fsx::write_atomic`]: a temp file in the same folder, fsync, rename. New files are
//! created `0600`; existing ones keep their mode. A symlinked settings file stays a symlink:
//! the write goes to the file it points to (atomically, next to that file). Secrets are filled
//! in here, and only here, with the values the plan resolved.

use std::path::Path;

use anyhow::{Context, Result};

use crate::fsx;
use crate::mcp::plan::{Edit, FilePlan, McpPlan};
use crate::mcp::settings::SettingsFile;
use crate::mcp::{secrets, store};

use crate::shared_file::write_path;

fn write_file(f: &FilePlan, confine: Option<&Path>) -> Result<()> {
    crate::mcp::plan::check_confined(&f.target.target.abs, confine)
        .map_err(|e| anyhow::anyhow!("{}: {e}; left unchanged", f.target.target.abs.display()))?;
    let path = write_path(&f.target.target.abs)?;
    let before = match crate::fsx::read_input(&path, crate::fsx::SETTINGS_CAP, None) {
        Ok(t) => Some(t),
        Err(crate::fsx::ReadError::NotFound) => None,
        Err(e) => anyhow::bail!("cannot read {}: {e}; left unchanged", path.display()),
    };
    let mut sf = SettingsFile::parse(f.target.format, before.as_deref()).map_err(|e| {
        anyhow::anyhow!("{} no longer parses ({e}); left unchanged", path.display())
    })?;
    for (_, _, edit) in &f.edits {
        match edit {
            Edit::Upsert {
                name,
                value,
                secrets: values,
            } => {
                sf.upsert(name, &secrets::substitute(value, values));
            }
            Edit::Remove { name } => {
                sf.remove(name);
            }
        }
    }
    let after = sf.to_text();
    if before.as_deref() == Some(after.as_str()) {
        return Ok(());
    }
    fsx::write_atomic(&path, after.as_bytes(), Some(0o600))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Remove the temp files a crashed write left next to this plan's settings files: they may hold
/// secret values. Writes to one scope's files are serialised by the scope's lock.
fn clean_stale_temps(plan: &McpPlan) {
    let mut seen = std::collections::BTreeSet::new();
    for abs in plan
        .items
        .iter()
        .flat_map(|i| &i.dests)
        .map(|d| &d.target.abs)
    {
        if !seen.insert(abs.clone())
            || crate::mcp::plan::check_confined(abs, plan.confine.as_deref()).is_err()
        {
            continue;
        }
        if let Ok(path) = write_path(abs) {
            fsx::clean_stale_temps_for(&path);
        }
    }
}

/// Write every changed file. A file that fails marks its steps as failed; the lock entries are
/// then recomputed so the lock never claims an entry that was not written.
pub fn apply(plan: &mut McpPlan) {
    // Between planning and writing a settings file may change (a symlink swapped in): every
    // write checks confinement again. Tests stop here to make that change.
    crate::failpoint::hold("mcp-apply");
    clean_stale_temps(plan);
    for f in &plan.files {
        if let Err(e) = write_file(f, plan.confine.as_deref()) {
            let msg = format!("{e:#}");
            for &(ii, di, _) in &f.edits {
                plan.items[ii].dests[di].error = Some(msg.clone());
            }
        }
    }
    if let Some(root) = &plan.cache_root {
        for item in &plan.items {
            if let Some(def) = item.def()
                && item.dests.iter().any(|d| d.error.is_none())
            {
                store::put(root, def);
            }
        }
    }
    plan.lock = plan.lock_entries();
}
