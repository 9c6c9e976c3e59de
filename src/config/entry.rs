//! The parts every config entry shares, whatever its kind (`skills:`, `mcps:`): the checked
//! scalar shapes (`NonEmpty`, `RelPath`), the item selection ([`Selection`]) and the
//! `source:`/`ref:`/`branch:` triple (`source_entry`).
//!
//! A kind's config module builds its entries from these; it must never need the whole config
//! loader (which imports every kind), so this module imports nothing above the base layer.

use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::pathsafe;
use crate::request::{Pick, Reference, Selection};
use crate::source::{self, Source};

pub(crate) struct NonEmpty(pub(crate) String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        if t.is_empty() || t.chars().any(|c| c.is_control()) {
            return Err(de::Error::custom(
                "must be a non-empty name without control characters",
            ));
        }
        Ok(NonEmpty(t.to_string()))
    }
}

/// A relative path inside a source, checked component by component.
pub(crate) struct RelPath(pub(crate) String);

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        pathsafe::check_relative_path(&s).map_err(de::Error::custom)?;
        let norm: Vec<&str> = s
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        Ok(RelPath(norm.join("/")))
    }
}

/// How a selection's names are checked: skills and MCP packs name one folder or file
/// ([`pathsafe::check_skill_name`]); commands and instructions may be `:`-namespaced
/// ([`pathsafe::check_namespaced_name`]).
type NameCheck = fn(&str) -> std::result::Result<(), String>;

impl<'de> Deserialize<'de> for Selection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(SelectionOf(pathsafe::check_skill_name))
    }
}

/// A selection of `:`-namespaced names (`commands: [git:commit]`).
pub(crate) struct Namespaced(pub(crate) Selection);

impl<'de> Deserialize<'de> for Namespaced {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(SelectionOf(pathsafe::check_namespaced_name))
            .map(Namespaced)
    }
}

struct SelectionOf(NameCheck);

impl<'de> Visitor<'de> for SelectionOf {
    type Value = Selection;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"*\" or a list of names")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Selection, E> {
        if v == "*" {
            Ok(Selection::All)
        } else {
            Err(E::custom(format!(
                "must be \"*\" or a list of names, not {v:?} (write [{v}] for one)"
            )))
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Selection, A::Error> {
        let mut out: Vec<Pick> = Vec::new();
        while let Some(p) = seq.next_element_seed(PickOf(self.0))? {
            if out.iter().any(|o| o.name == p.name) {
                return Err(de::Error::custom(format!("{:?} is listed twice", p.name)));
            }
            out.push(p);
        }
        Ok(Selection::Named(out))
    }
}

/// One pick: `name` or `{name, path}`, the name checked by the selection's rule.
struct PickOf(NameCheck);

impl<'de> de::DeserializeSeed<'de> for PickOf {
    type Value = Pick;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Pick, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PickOf {
    type Value = Pick;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name or {name, path}")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Pick, E> {
        (self.0)(v).map_err(E::custom)?;
        Ok(Pick {
            name: v.to_string(),
            path: None,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Pick, A::Error> {
        let (mut name, mut path) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => {
                    let n: String = map.next_value()?;
                    (self.0)(&n).map_err(de::Error::custom)?;
                    name = Some(n);
                }
                "path" => path = Some(map.next_value::<RelPath>()?.0),
                other => return Err(de::Error::unknown_field(other, &["name", "path"])),
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        Ok(Pick {
            name,
            path: path.filter(|p| !p.is_empty()),
        })
    }
}

/// The `source:`, `ref:` and `branch:` of a `skills:` or `mcps:` entry, validated: a remote
/// config may not name local folders, a parent's local folder is spelled relative to
/// `root_dir` (so its lock identity does not depend on which file listed it), `ref` wins over
/// `branch`, and neither applies to a local folder.
pub(crate) fn source_entry(
    raw: &str,
    reference: Option<NonEmpty>,
    branch: Option<NonEmpty>,
    at: &str,
    base: Option<&Path>,
    root_dir: &Path,
) -> Result<(Source, Reference)> {
    let source = source::parse(raw, base.unwrap_or(root_dir)).map_err(|e| {
        Error::usage(format!(
            "{at}: source {:?}: {e}",
            source::DisplayUrl::new(raw)
        ))
    })?;
    let source = match source {
        Source::Local { .. } if base.is_none() => {
            return Err(Error::usage(format!(
                "{at}: a remote config cannot name a local folder ({raw:?}); use a git URL"
            )));
        }
        Source::Local { spelled, path } if base != Some(root_dir) => {
            let spelled = if spelled.starts_with("~/") || Path::new(&spelled).is_absolute() {
                spelled
            } else {
                relative_spelling(root_dir, &path)
            };
            Source::Local { spelled, path }
        }
        other => other,
    };
    let reference = match (reference, branch) {
        // SPEC 3: `ref` wins over `branch`.
        (Some(r), _) => Reference::Ref(r.0),
        (None, Some(b)) => Reference::Branch(b.0),
        (None, None) => Reference::Default,
    };
    if matches!(source, Source::Local { .. }) && reference != Reference::Default {
        return Err(Error::usage(format!(
            "{at}: {raw:?} is a local folder; `ref` and `branch` only apply to git sources (use file:// for a local repository)"
        )));
    }
    Ok((source, reference))
}

/// `path` spelled relative to `root` (`../team/skills`), for lock identities.
pub(crate) fn relative_spelling(root: &Path, path: &Path) -> String {
    let norm = |p: &Path| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other.as_os_str().to_string_lossy().into_owned()),
            }
        }
        out
    };
    let (r, p) = (norm(root), norm(path));
    let common = r.iter().zip(&p).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); r.len() - common];
    parts.extend(p[common..].iter().cloned());
    if parts.first().is_none_or(|f| f != "..") {
        parts.insert(0, ".".into());
    }
    parts.join("/")
}

/// What every kind's config entry answers, whatever else it holds: where it is written, and
/// who it is (for finding its lock entry).
pub trait ConfigEntry {
    /// `file:line` of the entry, for messages.
    fn at(&self) -> &str;
    fn id(&self) -> crate::request::EntryId;
}

/// `trust:` as written, globally or in a source entry (SPEC 16, signed pins).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrust {
    #[serde(rename = "allowed-signers", alias = "allowed_signers")]
    allowed_signers: NonEmpty,
}

/// `trust: { allowed-signers: FILE }`: every git pin it applies to must be signed by a key in
/// FILE (ssh `allowed_signers` format). Set on an entry, or globally for every git entry that
/// sets none; the file is read once the scope is known ([`load_signers`]).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The allowed-signers file, absolute.
    pub allowed_signers: std::path::PathBuf,
    /// `file:line` of the `trust:` that set it, for messages.
    pub at: String,
    /// The parsed file; filled by [`load_signers`] before any source is pinned.
    pub signers: Option<std::sync::Arc<crate::signed::AllowedSigners>>,
}

impl Trust {
    /// The parsed allowed signers; an error if the file was never read (fails closed).
    pub fn signers(&self) -> anyhow::Result<&crate::signed::AllowedSigners> {
        self.signers.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the allowed-signers file {} was not read",
                self.at,
                self.allowed_signers.display()
            )
        })
    }
}

/// A `trust:` entry, checked: `~/` is under HOME, a relative path is from the folder of the
/// file that says it (a remote config may not name a relative file), and it applies only to
/// git sources (`git`: false for a local folder or inline pack; `None` for the global key).
pub(crate) fn trust_entry(
    raw: Option<RawTrust>,
    at: &str,
    base: Option<&Path>,
    git: Option<bool>,
) -> Result<Option<Trust>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if git == Some(false) {
        return Err(Error::usage(format!(
            "{at}: `trust` applies only to git sources (a local folder or an inline pack has no \
             signed commits); remove it from this entry"
        )));
    }
    let spelled = raw.allowed_signers.0;
    let file = match (spelled.strip_prefix("~/"), base) {
        (Some(rest), _) => crate::dirs::home()?.join(rest),
        (None, Some(b)) => b.join(&spelled),
        (None, None) if Path::new(&spelled).is_absolute() => std::path::PathBuf::from(&spelled),
        (None, None) => {
            return Err(Error::usage(format!(
                "{at}: a remote config cannot name a relative allowed-signers file; use ~/… or \
                 an absolute path"
            )));
        }
    };
    Ok(Some(Trust {
        allowed_signers: std::path::absolute(&file).unwrap_or(file),
        at: at.to_string(),
        signers: None,
    }))
}

/// Read and parse every allowed-signers file `trusts` name (each file once). With `within`
/// (the project, in the project scope) each file must lie inside it after resolving symlinks.
/// A file that cannot be read or parsed is a usage error naming the `trust:` that set it.
pub(crate) fn load_signers<'a>(
    trusts: impl IntoIterator<Item = &'a mut Trust>,
    within: Option<&Path>,
) -> Result<()> {
    let mut read: Vec<std::sync::Arc<crate::signed::AllowedSigners>> = Vec::new();
    for t in trusts {
        if let Some(s) = read.iter().find(|s| s.file == t.allowed_signers) {
            t.signers = Some(s.clone());
            continue;
        }
        let s = crate::signed::AllowedSigners::read(&t.allowed_signers, within)
            .map_err(|e| Error::usage(format!("{}: trust: {e}", t.at)))?;
        let s = std::sync::Arc::new(s);
        read.push(s.clone());
        t.signers = Some(s);
    }
    Ok(())
}
