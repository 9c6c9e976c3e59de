//! `kst remove SOURCE [NAME…]` (alias `rm`): the reverse of `kst add`. Without names or kind
//! flags the source's entries go from every list; with names they are taken out of the entry
//! (its last name going takes the entry with it); `--skill '*'` drops the skills entry. The
//! file keeps its comments and layout outside the edited entry; the sync that follows prunes
//! what the entry installed. An unknown source is an error listing the configured ones (exit 2,
//! the file unchanged).

use clap::Args;
use serde_yaml_ng::Value;

use crate::commands::add::{
    Change, configured, entry_reference, finish, kinds_asked, open_editable, same_source,
    selection_of,
};
use crate::config::edit::{Edit, Entry, Kind, normalise_sub_dir, pick_name};
use crate::config::target::{self, TargetRef};
use crate::error::{Error, Result};
use crate::report::Printer;
use crate::request::Reference;
use crate::source::DisplayUrl;
use crate::trust::shown;
use crate::workspace::Common;

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The source as the config lists it (a URL, scp-like address or folder; `SOURCE@REF` and
    /// a forge's web URL are read as `kst add` reads them)
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Skills to take out of its entry (default: the whole source, from every list)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// A skill to take out (repeatable; `*` drops the skills entry)
    #[arg(long = "skill", value_name = "NAME", value_delimiter = ',')]
    pub skill: Vec<String>,
    /// An MCP pack to take out (repeatable; `*` drops the mcps entry)
    #[arg(long = "mcp", value_name = "NAME", value_delimiter = ',')]
    pub mcp: Vec<String>,
    /// A command to take out (repeatable; `*` drops the commands entry)
    #[arg(long = "command", value_name = "NAME", value_delimiter = ',')]
    pub command: Vec<String>,
    /// An instruction to take out (repeatable; `*` drops the instructions entry)
    #[arg(long = "instruction", value_name = "NAME", value_delimiter = ',')]
    pub instruction: Vec<String>,
    /// Only the entry pinned to this ref (when the source is listed more than once)
    #[arg(long = "ref", value_name = "REF", conflicts_with = "branch")]
    pub reference: Option<String>,
    /// Only the entry tracking this branch
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Only the entry with this sub-dir
    #[arg(long = "sub-dir", alias = "sub_dir", value_name = "DIR")]
    pub sub_dir: Option<String>,
    /// Edit the config only; do not sync (nothing is pruned)
    #[arg(long)]
    pub no_sync: bool,
}

/// `kst remove`.
pub fn run(common: Common, args: RemoveArgs, printer: &Printer) -> Result<()> {
    let target = target::parse(&args.source)
        .map_err(|e| Error::usage(format!("{}: {e}", DisplayUrl::new(&args.source))))?;
    if target.shorthand && (args.reference.is_some() || args.branch.is_some()) {
        return Err(Error::usage(
            "pass the ref either as SOURCE@REF or with --ref/--branch, not both",
        ));
    }
    let want_ref: Option<Reference> = match (&args.reference, &args.branch, &target.reference) {
        (Some(r), _, _) => Some(Reference::Ref(r.trim().to_string())),
        (None, Some(b), _) => Some(Reference::Branch(b.trim().to_string())),
        (None, None, Some(TargetRef::Ref(r))) => Some(Reference::Ref(r.clone())),
        (None, None, Some(TargetRef::Branch(b))) => Some(Reference::Branch(b.clone())),
        (None, None, None) => None,
    };
    let want_sub: Option<String> = args
        .sub_dir
        .as_deref()
        .or(target.sub_dir.as_deref())
        .and_then(normalise_sub_dir);
    let mut names = args.names.clone();
    names.extend(target.name.clone());
    let asked = kinds_asked(
        &names,
        &args.skill,
        &args.mcp,
        &args.command,
        &args.instruction,
    );
    let mut wanted: Vec<(Kind, Option<Vec<String>>)> = Vec::new();
    for (kind, list) in &asked {
        wanted.push((*kind, selection_of(*kind, list)?));
    }

    let will_sync = !args.no_sync && !common.dry_run;
    let ed = open_editable(&common, will_sync)?;
    let base = ed.base().to_path_buf();
    let matches = |entries: &[Entry]| -> Vec<Entry> {
        entries
            .iter()
            .filter(|e| {
                e.source()
                    .is_some_and(|s| same_source(s, &target.source, &base))
                    && want_ref.as_ref().is_none_or(|r| entry_reference(e) == *r)
                    && want_sub
                        .as_ref()
                        .is_none_or(|d| e.sub_dir().as_ref() == Some(d))
            })
            .cloned()
            .collect()
    };
    // The whole source from every list, or names from the kinds asked.
    let whole = wanted.is_empty();
    let kinds: Vec<(Kind, Option<Vec<String>>)> = if whole {
        Kind::ALL.iter().map(|k| (*k, None)).collect()
    } else {
        wanted
    };
    let mut doc = ed.doc.clone();
    let mut changes = Vec::new();
    for (kind, selection) in kinds {
        let entries = doc.entries(kind).map_err(|e| ed.layout_error(e))?;
        let found = matches(&entries);
        let entry = match found.as_slice() {
            [] if whole => continue,
            [] => return Err(unknown(&ed, &args.source, Some(kind))),
            [one] => one.clone(),
            many => {
                let at: Vec<String> = many
                    .iter()
                    .map(|e| {
                        let how = match entry_reference(e) {
                            Reference::Ref(r) => format!("--ref {r}"),
                            Reference::Branch(b) => format!("--branch {b}"),
                            Reference::Default => "no ref".into(),
                        };
                        let sub = e
                            .sub_dir()
                            .map(|d| format!(" --sub-dir {d}"))
                            .unwrap_or_default();
                        format!("{} ({how}{sub})", ed.at(e.line))
                    })
                    .collect();
                return Err(Error::usage(format!(
                    "{} is listed {} times under `{}:` ({}); pick one with --ref, --branch or \
                     --sub-dir. Nothing was changed",
                    DisplayUrl::new(&args.source),
                    many.len(),
                    kind.key(),
                    at.join(", ")
                )));
            }
        };
        let (reference, branch) = match entry_reference(&entry) {
            Reference::Ref(r) => (Some(r), None),
            Reference::Branch(b) => (None, Some(b)),
            Reference::Default => (None, None),
        };
        let change = |action, names: Vec<String>, after: serde_json::Value| Change {
            action,
            kind: kind.key(),
            source: entry.source().unwrap_or_default().to_string(),
            reference: reference.clone(),
            branch: branch.clone(),
            sub_dir: entry.sub_dir(),
            selection: after,
            names,
        };
        let Some(drop) = selection else {
            doc = doc
                .apply(&Edit::Remove(kind, entry.index))
                .map_err(|e| ed.layout_error(e))?;
            changes.push(change("removed", Vec::new(), serde_json::Value::Null));
            continue;
        };
        let Some(had) = entry.names() else {
            return Err(Error::usage(format!(
                "{}: this `{}` entry takes every item (\"*\"), so there is no name to take out; \
                 list the names you want in it instead, or remove the whole entry with --{} '*'. \
                 Nothing was changed",
                ed.at(entry.line),
                kind.key(),
                flag_of(kind)
            )));
        };
        let missing: Vec<&String> = drop.iter().filter(|n| !had.contains(n)).collect();
        if !missing.is_empty() {
            let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(Error::usage(format!(
                "{}: {} not in this `{}` entry (it lists: {}). Nothing was changed",
                ed.at(entry.line),
                missing.join(", "),
                kind.key(),
                had.join(", ")
            )));
        }
        let items: Vec<Value> = match entry.value.get(kind.key()) {
            Some(Value::Sequence(s)) => s
                .iter()
                .filter(|v| pick_name(v).is_none_or(|n| !drop.contains(&n)))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        if items.is_empty() {
            doc = doc
                .apply(&Edit::Remove(kind, entry.index))
                .map_err(|e| ed.layout_error(e))?;
            changes.push(change("removed", drop.clone(), serde_json::Value::Null));
        } else {
            let left: Vec<String> = items.iter().filter_map(pick_name).collect();
            doc = doc
                .apply(&Edit::SetNames(kind, entry.index, items))
                .map_err(|e| ed.layout_error(e))?;
            changes.push(change("reduced", drop.clone(), serde_json::json!(left)));
        }
    }
    if changes.is_empty() {
        return Err(unknown(&ed, &args.source, None));
    }
    finish("remove", &ed, &doc, &changes, common, args.no_sync, printer)
}

fn flag_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Skills => "skill",
        Kind::Mcps => "mcp",
        Kind::Commands => "command",
        Kind::Instructions => "instruction",
    }
}

/// The source is not in the file: say which sources are, and whether it comes from an
/// `extends` parent (to be removed there).
fn unknown(ed: &crate::commands::add::Editable, typed: &str, kind: Option<Kind>) -> Error {
    let base = ed.base();
    let inherited: Vec<String> = ed
        .config
        .skills
        .iter()
        .filter(|s| same_source(s.source.identity(), typed, base))
        .map(|s| s.at.clone())
        .chain(
            ed.config
                .mcps
                .iter()
                .filter(|m| same_source(&m.url(), typed, base))
                .map(|m| m.at.clone()),
        )
        .filter(|at| !at.starts_with(&ed.path.display().to_string()))
        .collect();
    let list = configured(&ed.doc);
    let place = kind
        .map(|k| format!(" under `{}:`", k.key()))
        .unwrap_or_default();
    let mut msg = format!(
        "{} is not a source{place} in {}",
        DisplayUrl::new(typed),
        shown(&ed.path)
    );
    if !inherited.is_empty() {
        msg.push_str(&format!(
            "; it comes from {} (through `extends`): remove it there",
            inherited.join(", ")
        ));
    }
    if list.is_empty() {
        msg.push_str("; the file lists no source");
    } else {
        msg.push_str(&format!(". Configured sources:\n  {}", list.join("\n  ")));
    }
    msg.push_str("\nNothing was changed");
    Error::usage(msg)
}
