//! What one config entry asks of a source, as plain values: which revision ([`Reference`], and
//! [`Requested`] as the lock records it) and which items ([`Selection`], [`Pick`]).
//!
//! These sit below the git layer, the config and the lock, so that all three can name them
//! without importing one another. Parsing them from YAML is the config's business
//! ([`crate::config`]); this module must never read files or import anything above the base
//! layer.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::source::Source;

/// What the config asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// Neither `ref` nor `branch`: the remote's HEAD.
    Default,
    Branch(String),
    /// `ref:` — a tag, a full or abbreviated SHA, or any ref name.
    Ref(String),
}

/// Which items of a source to take — skills under `skills:`, MCP packs under `mcps:`: `"*"`,
/// or a list of names and `{name, path}` maps. Names are checked like skill names (they become
/// folder names or file names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Named(Vec<Pick>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub name: String,
    /// `{name, path}`: a skill at `<path>/<name>`, a pack at `<path>/<name>.json` (or `path`
    /// itself when it ends in `.json`), under the
    /// discovery root.
    pub path: Option<String>,
}

/// What the config asked for, as recorded: `default`, `local`, `{branch: x}`, `{tag: x}`, `{rev: x}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requested {
    Default,
    Local,
    Branch(String),
    Tag(String),
    Rev(String),
}

impl fmt::Display for Requested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requested::Default => f.write_str("default"),
            Requested::Local => f.write_str("local"),
            Requested::Branch(b) => write!(f, "branch {b}"),
            Requested::Tag(t) => write!(f, "tag {t}"),
            Requested::Rev(r) => write!(f, "rev {r}"),
        }
    }
}

impl Requested {
    /// Does this lock entry answer the config's request? `ref:` may have resolved to a tag or a
    /// revision; the spelling is what must match.
    pub fn answers(&self, r: &Reference, local: bool) -> bool {
        match (self, r) {
            (Requested::Local, Reference::Default) => local,
            (Requested::Default, Reference::Default) => !local,
            (Requested::Branch(a), Reference::Branch(b)) => a == b,
            (Requested::Tag(a) | Requested::Rev(a), Reference::Ref(b)) => a == b,
            _ => false,
        }
    }

    /// Branch and default requests move upstream; tags and revisions do not (on purpose).
    pub fn is_moving(&self) -> bool {
        matches!(self, Requested::Default | Requested::Branch(_))
    }
}

impl Serialize for Requested {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (k, v) = match self {
            Requested::Default => return s.serialize_str("default"),
            Requested::Local => return s.serialize_str("local"),
            Requested::Branch(v) => ("branch", v),
            Requested::Tag(v) => ("tag", v),
            Requested::Rev(v) => ("rev", v),
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(k, v)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Requested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Word(String),
            Map(std::collections::BTreeMap<String, String>),
        }
        match Repr::deserialize(d)? {
            Repr::Word(w) if w == "default" => Ok(Requested::Default),
            Repr::Word(w) if w == "local" => Ok(Requested::Local),
            Repr::Map(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().expect("one entry");
                match k.as_str() {
                    "branch" => Ok(Requested::Branch(v)),
                    "tag" => Ok(Requested::Tag(v)),
                    "rev" => Ok(Requested::Rev(v)),
                    _ => Err(D::Error::custom(format!(
                        "unknown request kind {k:?}; expected branch, tag or rev"
                    ))),
                }
            }
            _ => Err(D::Error::custom(
                "requested must be default, local, {branch: x}, {tag: x} or {rev: x}",
            )),
        }
    }
}

impl Requested {
    /// The request an entry makes before resolution: a local folder is `local` whatever its
    /// reference; a `ref:` is shown as `rev` (resolution may find it is a tag).
    pub fn of(source: &Source, reference: &Reference) -> Requested {
        Requested::asked(matches!(source, Source::Local { .. }), reference)
    }

    /// [`Requested::of`], from whether the source is local.
    pub fn asked(local: bool, reference: &Reference) -> Requested {
        match (local, reference) {
            (true, _) => Requested::Local,
            (_, Reference::Default) => Requested::Default,
            (_, Reference::Branch(b)) => Requested::Branch(b.clone()),
            (_, Reference::Ref(r)) => Requested::Rev(r.clone()),
        }
    }
}

/// Who a config entry is, for finding its lock entry, whatever its kind: the source's identity
/// (canonical URL, a local folder as spelled, `inline:NAME`), what it asked for, whether it is
/// local (a local entry is recorded as `local` whatever its reference), and its discovery root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryId {
    pub url: String,
    pub reference: Reference,
    pub local: bool,
    pub sub_dir: Option<String>,
}

impl EntryId {
    /// The request the entry makes, before resolution.
    pub fn requested(&self) -> Requested {
        Requested::asked(self.local, &self.reference)
    }
}
