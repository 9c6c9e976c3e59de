//! `kst add SOURCE[@REF] [NAME…]`: add a source to the local config, keeping the file's
//! comments and layout ([`crate::config::edit`]), then sync.
//!
//! The order is what makes a typo harmless: the config is found and checked, the trust gate
//! passed, the edit made in memory and proven, the new source **resolved once** (a URL that does
//! not exist, a ref or a named skill that is not there: exit non-zero, the file byte-identical),
//! the result parsed by the real config parser — and only then is the file written (atomically)
//! and the sync run. The exit code is the sync's.
//!
//! The helpers shared with `kst remove` (finding the editable config, writing it, the sync that
//! follows) live here too.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::config::edit::{self, Doc, Edit, Entry, Kind};
use crate::config::entry::NonEmpty;
use crate::config::target::{self, TargetRef};
use crate::config::{self, Origin, Selection};
use crate::error::{Error, Result};
use crate::report::Printer;
use crate::request::{Pick, Reference};
use crate::source::{DisplayUrl, Source};
use crate::trust::shown;
use crate::workspace::Common;

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A git URL, scp-like address or local folder; `SOURCE@REF` pins a ref; a forge's
    /// web URL (…/tree/<ref>/<path>, …/blob/<ref>/<path>/SKILL.md) is decomposed
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Skills to take from it (default: all, `skills: "*"`)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// A skill to take (repeatable, or comma-separated; `*` for all)
    #[arg(long = "skill", value_name = "NAME", value_delimiter = ',')]
    pub skill: Vec<String>,
    /// An MCP pack to take (mcps/<NAME>.json; repeatable; `*` for all)
    #[arg(long = "mcp", value_name = "NAME", value_delimiter = ',')]
    pub mcp: Vec<String>,
    /// A command to take (repeatable; `*` for all)
    #[arg(long = "command", value_name = "NAME", value_delimiter = ',')]
    pub command: Vec<String>,
    /// An instruction to take (repeatable; `*` for all)
    #[arg(long = "instruction", value_name = "NAME", value_delimiter = ',')]
    pub instruction: Vec<String>,
    /// Pin a tag, a commit or any ref
    #[arg(long = "ref", value_name = "REF", conflicts_with = "branch")]
    pub reference: Option<String>,
    /// Track a branch (pinned in the lock until `kst sync --update`)
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Where the items are inside the source
    #[arg(long = "sub-dir", alias = "sub_dir", value_name = "DIR")]
    pub sub_dir: Option<String>,
    /// Edit the config only; do not sync
    #[arg(long)]
    pub no_sync: bool,
}

/// The kind flags of `add` and `remove`, and the positional names (skills).
pub(crate) fn kinds_asked(
    names: &[String],
    skill: &[String],
    mcp: &[String],
    command: &[String],
    instruction: &[String],
) -> Vec<(Kind, Vec<String>)> {
    let mut skills: Vec<String> = names.to_vec();
    skills.extend(skill.iter().cloned());
    let mut out = Vec::new();
    for (kind, list) in [
        (Kind::Skills, skills),
        (Kind::Mcps, mcp.to_vec()),
        (Kind::Commands, command.to_vec()),
        (Kind::Instructions, instruction.to_vec()),
    ] {
        if !list.is_empty() {
            out.push((kind, list));
        }
    }
    out
}

/// Names as a selection: `None` for all (`*`), else the names, checked (as the config parser
/// checks that kind's names) and without repeats.
pub(crate) fn selection_of(kind: Kind, names: &[String]) -> Result<Option<Vec<String>>> {
    if names.iter().any(|n| n == "*") {
        return Ok(None);
    }
    let check = match kind {
        Kind::Skills | Kind::Mcps => crate::pathsafe::check_skill_name,
        Kind::Commands | Kind::Instructions => crate::pathsafe::check_namespaced_name,
    };
    let mut out: Vec<String> = Vec::new();
    for n in names {
        check(n)
            .map_err(|e| Error::usage(format!("name {:?}: {e}", crate::escape::escape_line(n))))?;
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    Ok(Some(out))
}

/// The config `add`/`remove` edit, read and checked.
pub(crate) struct Editable {
    pub path: PathBuf,
    pub text: String,
    pub doc: Doc,
    pub config: config::Config,
    /// The user trusted it as it was (then the edited file is trusted too: docs/trust.md).
    pub was_trusted: bool,
    /// Untrusted config found in the working directory: new local sources must lie inside
    /// its project (the folder, canonical).
    pub within: Option<PathBuf>,
}

impl Editable {
    pub fn base(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// `file:line`.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", shown(&self.path))
    }

    /// An error about the file's layout (from [`Doc`]): nothing was written.
    pub fn layout_error(&self, e: String) -> Error {
        Error::usage(format!("{}: {e}; nothing was changed", shown(&self.path)))
    }
}

/// Find the config as every command does, refuse what cannot be edited (a remote config, a
/// symlink), pass the trust gate when a sync will follow, and load it (a malformed config is
/// an error here, before anything is fetched or written).
pub(crate) fn open_editable(common: &Common, will_sync: bool) -> Result<Editable> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
    let (path, origin) = config::discover(common.config.as_deref(), &cwd)?;
    let spelled = path.to_string_lossy();
    if config::is_url(&spelled) {
        return Err(Error::usage(format!(
            "{} is a remote config: kst add and kst remove edit a local file only. Edit it \
             where it is hosted, or save a copy and pass --config FILE",
            DisplayUrl::new(&spelled)
        )));
    }
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", shown(&path))))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(&path)
            .map(|t| shown(&t))
            .unwrap_or_else(|_| "a missing file".into());
        return Err(Error::usage(format!(
            "{} is a symlink (to {target}); kst never writes through a link: pass --config \
             with the file it points to",
            shown(&path)
        )));
    }
    crate::trust::gate(
        &path,
        origin,
        &crate::trust::Run {
            access: if will_sync {
                crate::trust::Access::Writes
            } else {
                crate::trust::Access::Reads { network: false }
            },
            scope_flag: common.scope,
            offline: common.offline,
            interactive: common.interactive,
        },
    )?;
    let config = config::load_for(&path, common.offline, common.scope)?;
    let text = crate::fsx::read_input(&path, crate::fsx::CONFIG_CAP, None)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", shown(&path))))?;
    let doc = Doc::parse(&text)
        .map_err(|e| Error::usage(format!("{}: {e}; nothing was changed", shown(&path))))?;
    let was_trusted =
        origin == Origin::WorkingDir && !crate::trust::is_stranger(&path, origin, None)?;
    let within = if crate::trust::is_stranger(&path, origin, common.scope)? {
        Some(crate::trust::check_stranger_sources(&config)?)
    } else {
        None
    };
    Ok(Editable {
        path,
        text,
        doc,
        config,
        was_trusted,
        within,
    })
}

/// Whether a `source:` as written names the same source as `typed` (both resolved against the
/// config's folder): the same canonical URL, or the same folder.
pub(crate) fn same_source(written: &str, typed: &str, base: &Path) -> bool {
    match (
        crate::source::parse(written, base),
        crate::source::parse(typed, base),
    ) {
        (Ok(Source::Git(a)), Ok(Source::Git(b))) => a.canonical() == b.canonical(),
        (Ok(Source::Local { path: a, .. }), Ok(Source::Local { path: b, .. })) => {
            crate::pathsafe::normalise(&a) == crate::pathsafe::normalise(&b)
        }
        _ => written.trim() == typed.trim(),
    }
}

/// An entry's reference as the config parser reads it (`ref` wins over `branch`).
pub(crate) fn entry_reference(e: &Entry) -> Reference {
    match e.ref_or_branch() {
        (Some(r), _) => Reference::Ref(r.trim().to_string()),
        (None, Some(b)) => Reference::Branch(b.trim().to_string()),
        (None, None) => Reference::Default,
    }
}

/// One line per configured source entry, for "which sources are there" errors.
pub(crate) fn configured(doc: &Doc) -> Vec<String> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for e in doc.entries(kind).unwrap_or_default() {
            let Some(s) = e.source() else { continue };
            let reference = match entry_reference(&e) {
                Reference::Ref(r) => format!(" (ref {r})"),
                Reference::Branch(b) => format!(" (branch {b})"),
                Reference::Default => String::new(),
            };
            let sub = e
                .sub_dir()
                .map(|d| format!(" (sub-dir {d})"))
                .unwrap_or_default();
            out.push(format!(
                "{}: {}{reference}{sub} (line {})",
                kind.key(),
                DisplayUrl::new(s),
                e.line
            ));
        }
    }
    out
}

/// What one edit did, for the report.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Change {
    /// `added` (a new entry), `extended` (names added to an entry), `unchanged`, `removed`
    /// (the entry), `reduced` (names removed from it).
    pub action: &'static str,
    pub kind: &'static str,
    pub source: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_dir: Option<String>,
    /// The entry's selection after the edit: `"*"` or the names (`null` once removed).
    pub selection: serde_json::Value,
    /// The names this edit added or removed.
    pub names: Vec<String>,
}

impl Change {
    fn human(&self, dry_run: bool, file: &str) -> String {
        let would = if dry_run { "would be " } else { "" };
        let mut what = DisplayUrl::new(&self.source).to_string();
        if let Some(r) = &self.reference {
            what.push_str(&format!(" (ref {r})"));
        }
        if let Some(b) = &self.branch {
            what.push_str(&format!(" (branch {b})"));
        }
        if let Some(d) = &self.sub_dir {
            what.push_str(&format!(" (sub-dir {d})"));
        }
        let names = self.names.join(", ");
        let kind = self.kind;
        match self.action {
            "added" => format!(
                "{what}: {would}added to {file} ({kind}: {})",
                match &self.selection {
                    serde_json::Value::String(s) => s.clone(),
                    _ => names,
                }
            ),
            "extended" if self.names.is_empty() => {
                format!("{what}: {kind} {would}widened to \"*\" in {file}")
            }
            "extended" => format!("{what}: {kind} {names} {would}added in {file}"),
            "removed" => format!("{what}: {kind} entry {would}removed from {file}"),
            "reduced" => format!("{what}: {kind} {names} {would}removed from {file}"),
            _ => format!("{what}: already in {file} ({kind}); nothing to change"),
        }
    }
}

/// Check the new text with the real config parser, write it (atomically; a trusted file stays
/// trusted), report, and sync unless told not to. The exit code is the sync's.
pub(crate) fn finish(
    command: &'static str,
    ed: &Editable,
    doc: &Doc,
    changes: &[Change],
    common: Common,
    no_sync: bool,
    printer: &Printer,
) -> Result<()> {
    let new_text = doc.text();
    let changed = new_text != ed.text;
    if changed {
        config::check_text(&ed.path, &new_text).map_err(|e| {
            Error::usage(format!(
                "the edit would make the config invalid ({e}); {} was not changed",
                shown(&ed.path)
            ))
        })?;
    }
    let dry_run = common.dry_run;
    if changed && !dry_run {
        crate::fsx::write_atomic(&ed.path, new_text.as_bytes(), None).map_err(Error::Failed)?;
        if ed.was_trusted {
            // The user trusted the file and their own command changed it: still theirs.
            crate::trust::trust(&ed.path, false)?;
        }
    }
    let file = shown(&ed.path);
    if !printer.json {
        for c in changes {
            printer.line(&c.human(dry_run, &file));
        }
    }
    let doc_of = |sync: Option<serde_json::Value>| {
        serde_json::json!({
            "schema": 1,
            "command": command,
            "dry_run": dry_run,
            "config": ed.path.display().to_string(),
            "changed": changed,
            "edits": changes,
            "sync": sync,
        })
    };
    // A dry run shows the edit only: a sync would read the file as it is, without the edit.
    if no_sync || dry_run {
        if printer.json {
            printer.json(&doc_of(None));
        }
        return Ok(());
    }
    let args = crate::commands::sync::SyncArgs::default();
    if !printer.json {
        return crate::commands::sync::run(common, args, printer).map_err(|e| synced_after(e, ed));
    }
    let (result, docs) =
        crate::printer::capture_json(|| crate::commands::sync::run(common, args, printer));
    match result {
        Ok(()) | Err(Error::Reported(_)) => {
            printer.json(&doc_of(docs.into_iter().next()));
            result
        }
        Err(e) => Err(synced_after(e, ed)),
    }
}

/// A sync that failed after the config was written: say that the edit stays.
fn synced_after(e: Error, ed: &Editable) -> Error {
    let note = format!(
        "{} was edited; fix the problem and run `kst sync`",
        shown(&ed.path)
    );
    match e {
        Error::Usage(m) => Error::Usage(format!("{m}\n({note})")),
        Error::Failed(e) => Error::Failed(e.context(note)),
        other => other,
    }
}

/// `kst add`.
pub fn run(common: Common, args: AddArgs, printer: &Printer) -> Result<()> {
    let target = target::parse(&args.source)
        .map_err(|e| Error::usage(format!("{}: {e}", DisplayUrl::new(&args.source))))?;
    if target.shorthand && (args.reference.is_some() || args.branch.is_some()) {
        return Err(Error::usage(
            "pass the ref either as SOURCE@REF or with --ref/--branch, not both",
        ));
    }
    let (reference, branch) = match (&args.reference, &args.branch, &target.reference) {
        (Some(r), _, _) => (Some(r.clone()), None),
        (None, Some(b), _) => (None, Some(b.clone())),
        (None, None, Some(TargetRef::Ref(r))) => (Some(r.clone()), None),
        (None, None, Some(TargetRef::Branch(b))) => (None, Some(b.clone())),
        (None, None, None) => (None, None),
    };
    let sub_dir = match args.sub_dir.as_deref().or(target.sub_dir.as_deref()) {
        Some(d) => {
            crate::pathsafe::check_relative_path(d)
                .map_err(|e| Error::usage(format!("--sub-dir {d:?}: {e}")))?;
            edit::normalise_sub_dir(d)
        }
        None => None,
    };
    let mut names = args.names.clone();
    names.extend(target.name.clone());
    let mut asked = kinds_asked(
        &names,
        &args.skill,
        &args.mcp,
        &args.command,
        &args.instruction,
    );
    if asked.is_empty() {
        asked.push((Kind::Skills, vec!["*".to_string()]));
    }
    let mut wanted: Vec<(Kind, Option<Vec<String>>)> = Vec::new();
    for (kind, list) in &asked {
        wanted.push((*kind, selection_of(*kind, list)?));
    }

    let will_sync = !args.no_sync && !common.dry_run;
    let ed = open_editable(&common, will_sync)?;
    let base = ed.base().to_path_buf();
    let mut doc = ed.doc.clone();
    let mut changes = Vec::new();
    let mut checks: Vec<(Kind, Option<Vec<String>>)> = Vec::new();
    let want_ref = match (&reference, &branch) {
        (Some(r), _) => Reference::Ref(r.trim().to_string()),
        (None, Some(b)) => Reference::Branch(b.trim().to_string()),
        (None, None) => Reference::Default,
    };
    for (kind, selection) in wanted {
        let entries = doc.entries(kind).map_err(|e| ed.layout_error(e))?;
        let same = entries.iter().find(|e| {
            e.source()
                .is_some_and(|s| same_source(s, &target.source, &base))
                && entry_reference(e) == want_ref
                && e.sub_dir() == sub_dir
        });
        let change = |action, names: Vec<String>, after: serde_json::Value| Change {
            action,
            kind: kind.key(),
            source: target.source.clone(),
            reference: reference.clone(),
            branch: branch.clone(),
            sub_dir: sub_dir.clone(),
            selection: after,
            names,
        };
        let Some(existing) = same else {
            let entry = edit::new_entry(
                kind,
                &target.source,
                reference.as_deref(),
                branch.as_deref(),
                sub_dir.as_deref(),
                selection.as_deref(),
            );
            doc = doc
                .apply(&Edit::Append(kind, entry))
                .map_err(|e| ed.layout_error(e))?;
            changes.push(change(
                "added",
                selection.clone().unwrap_or_default(),
                json_selection(selection.as_deref()),
            ));
            checks.push((kind, selection));
            continue;
        };
        let had = existing.names();
        let (value, added, after) = match (&had, &selection) {
            // Already everything: nothing to add.
            (None, _) => (None, Vec::new(), None),
            // Names listed, all asked for: widen to "*".
            (Some(_), None) => (Some(Value::String("*".into())), Vec::new(), None),
            (Some(old), Some(new)) => {
                let missing: Vec<String> =
                    new.iter().filter(|n| !old.contains(n)).cloned().collect();
                if missing.is_empty() {
                    (None, Vec::new(), Some(old.clone()))
                } else {
                    let mut items = match existing.value.get(kind.key()) {
                        Some(Value::Sequence(s)) => s.clone(),
                        _ => Vec::new(),
                    };
                    items.extend(missing.iter().map(|n| Value::String(n.clone())));
                    let mut all = old.clone();
                    all.extend(missing.iter().cloned());
                    (Some(Value::Sequence(items)), missing, Some(all))
                }
            }
        };
        let Some(value) = value else {
            changes.push(change(
                "unchanged",
                Vec::new(),
                json_selection(had.as_deref()),
            ));
            continue;
        };
        let edit = match value {
            Value::Sequence(items) => Edit::SetNames(kind, existing.index, items),
            star => {
                let mut entry = existing.value.clone();
                entry.insert(Value::String(kind.key().into()), star);
                Edit::Replace(kind, existing.index, entry)
            }
        };
        doc = doc.apply(&edit).map_err(|e| ed.layout_error(e))?;
        // Only what is new is resolved here: the names already listed (some with a `path` of
        // their own) are the sync's to find.
        checks.push((kind, (!added.is_empty()).then(|| added.clone())));
        changes.push(change("extended", added, json_selection(after.as_deref())));
    }

    // Resolve each new or widened entry once, before anything is written.
    for (kind, selection) in &checks {
        check_resolves(
            &ed,
            &common,
            *kind,
            &target.source,
            &reference,
            &branch,
            &sub_dir,
            selection.as_deref(),
        )?;
    }
    finish("add", &ed, &doc, &changes, common, args.no_sync, printer)
}

fn json_selection(names: Option<&[String]>) -> serde_json::Value {
    match names {
        None => serde_json::Value::String("*".into()),
        Some(n) => serde_json::json!(n),
    }
}

fn non_empty(v: &Option<String>, flag: &str) -> Result<Option<NonEmpty>> {
    v.as_deref()
        .map(|s| {
            NonEmpty::deserialize(
                serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s),
            )
            .map_err(|e| Error::usage(format!("{flag} {:?}: {e}", crate::escape::escape_line(s))))
        })
        .transpose()
}

/// Resolve a new entry as the sync will: the source exists, the ref is there, the sub-dir and
/// the named items exist. Nothing is written to the config when it fails.
#[allow(clippy::too_many_arguments)]
fn check_resolves(
    ed: &Editable,
    common: &Common,
    kind: Kind,
    raw: &str,
    reference: &Option<String>,
    branch: &Option<String>,
    sub_dir: &Option<String>,
    names: Option<&[String]>,
) -> Result<()> {
    let base = ed.base();
    let at = "kst add";
    let (source, reference) = crate::config::entry::source_entry(
        raw,
        non_empty(reference, "--ref")?,
        non_empty(branch, "--branch")?,
        at,
        Some(base),
        base,
    )?;
    let selection = match names {
        None => Selection::All,
        Some(n) => Selection::Named(
            n.iter()
                .map(|name| Pick {
                    name: name.clone(),
                    path: None,
                })
                .collect(),
        ),
    };
    let unchanged =
        |what: String| Error::Failed(anyhow!("{what}\n{} was not changed", shown(&ed.path)));
    let mode = if common.offline {
        crate::git::FetchMode::Offline
    } else {
        crate::git::FetchMode::Online
    };
    match kind {
        Kind::Skills => {
            let entry = config::SkillSource {
                source,
                reference,
                sub_dir: sub_dir.clone(),
                selection,
                at: at.to_string(),
                // A probe installs nothing: the sync that follows checks signed pins.
                trust: None,
            };
            let resolved = match &entry.source {
                Source::Git(url) => {
                    let cache = crate::git::Cache::open().map_err(Error::Failed)?;
                    crate::resolve::git(
                        &entry,
                        url,
                        None,
                        false,
                        true,
                        &cache,
                        mode,
                        &mut |_, _, _| {},
                    )
                }
                Source::Local { .. } => {
                    crate::resolve::local(&entry, None, false, ed.within.as_deref(), false)
                }
            };
            let r = resolved.map_err(|f| unchanged(f.error))?;
            if !r.broken.is_empty() {
                let why: Vec<String> = r.broken.iter().map(|b| b.error.clone()).collect();
                return Err(unchanged(format!(
                    "{}: {}",
                    DisplayUrl::new(raw),
                    why.join("; ")
                )));
            }
            if r.skills.is_empty() {
                return Err(unchanged(format!(
                    "{}: no skill found (a SKILL.md at the root{}, in <dir>/ or in skills/<dir>/)",
                    DisplayUrl::new(raw),
                    sub_dir
                        .as_deref()
                        .map(|d| format!(" of {d}"))
                        .unwrap_or_default()
                )));
            }
        }
        Kind::Mcps => {
            let entry = crate::mcp::config::McpSource {
                kind: crate::mcp::config::McpSourceKind::Pack {
                    source,
                    reference,
                    sub_dir: sub_dir.clone(),
                    selection,
                },
                at: at.to_string(),
                // A probe installs nothing: the sync that follows checks signed pins.
                trust: None,
            };
            let results = crate::mcp::resolve::resolve_all(
                std::slice::from_ref(&entry),
                &crate::lock::Lock::default(),
                &None,
                common.offline,
                ed.within.as_deref(),
            );
            match results.into_iter().next() {
                Some(Ok(r)) if r.selected.broken.is_empty() => {}
                Some(Ok(r)) => {
                    let why: Vec<String> =
                        r.selected.broken.iter().map(|b| b.error.clone()).collect();
                    return Err(unchanged(format!(
                        "{}: {}",
                        DisplayUrl::new(raw),
                        why.join("; ")
                    )));
                }
                Some(Err(f)) => return Err(unchanged(f.error)),
                None => {}
            }
        }
        Kind::Commands | Kind::Instructions => {
            let entry = config::SkillSource {
                source,
                reference,
                sub_dir: sub_dir.clone(),
                selection,
                at: at.to_string(),
                // A probe installs nothing: the sync that follows checks signed pins.
                trust: None,
            };
            let cache = match &entry.source {
                Source::Git(_) => Some(crate::git::Cache::open().map_err(Error::Failed)?),
                Source::Local { .. } => None,
            };
            let resolving = crate::files::Resolving {
                kind: if kind == Kind::Commands {
                    crate::item::Kind::Command
                } else {
                    crate::item::Kind::Instruction
                },
                old: &[],
                update: &None,
                mode,
                within: ed.within.as_deref(),
                cache: cache.as_ref(),
                fast: None,
            };
            let noun = resolving.kind.noun();
            match crate::files::resolve_all(&resolving, std::slice::from_ref(&entry)).pop() {
                Some(Ok(r)) if !r.broken.is_empty() => {
                    let why: Vec<String> = r.broken.iter().map(|b| b.error.clone()).collect();
                    return Err(unchanged(format!(
                        "{}: {}",
                        DisplayUrl::new(raw),
                        why.join("; ")
                    )));
                }
                Some(Ok(r)) if r.items.is_empty() => {
                    return Err(unchanged(format!(
                        "{}: no {noun} found",
                        DisplayUrl::new(raw)
                    )));
                }
                Some(Ok(_)) | None => {}
                Some(Err(f)) => return Err(unchanged(f.error)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_selections() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let k = kinds_asked(&s(&["a"]), &s(&["b"]), &s(&["m"]), &[], &[]);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0], (Kind::Skills, s(&["a", "b"])));
        assert_eq!(k[1], (Kind::Mcps, s(&["m"])));
        assert_eq!(selection_of(Kind::Skills, &s(&["a", "*"])).unwrap(), None);
        assert_eq!(
            selection_of(Kind::Skills, &s(&["a", "b", "a"])).unwrap(),
            Some(s(&["a", "b"]))
        );
        assert!(selection_of(Kind::Skills, &s(&["../x"])).is_err());
        assert!(selection_of(Kind::Commands, &s(&["git:commit"])).is_ok());
        assert!(selection_of(Kind::Commands, &s(&["git:.."])).is_err());
    }

    #[test]
    fn same_source_compares_canonical_urls_and_folders() {
        let base = Path::new("/p");
        assert!(same_source(
            "https://Example.com/org/skills.git",
            "https://example.com/org/skills/",
            base
        ));
        assert!(same_source("./pack/", "pack", base));
        assert!(!same_source("./pack", "./other", base));
        assert!(!same_source("https://example.com/a", "./a", base));
    }
}
