//! `kasetto.yaml` (SPEC 3): discovery, parsing and validation.
//!
//! Parsing is strict: unknown keys, wrong types, unknown agents and unsafe names are errors that
//! name the file and line, because a typo must never silently drop a skill. Validation happens
//! inside deserialisation (typed newtypes with their own `Deserialize`) so the YAML parser can
//! attach the line of the offending value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::agents::{self, Agent};
use crate::dirs;
use crate::envvars;
use crate::error::{Error, Result};
use crate::fsx;
use crate::malformed::{self, Quote};
use crate::source::Source;

/// Which set of folders and which lock a run works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Project,
}

/// A loaded, validated config.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from (absolute). For a remote config: `kasetto.yaml` in the current
    /// folder, which anchors the project scope and its lock.
    pub path: PathBuf,
    /// The file or URL, for messages and JSON.
    pub label: String,
    pub agents: Vec<&'static Agent>,
    /// Explicit skills folder; overrides the agents' folders for skills.
    pub destination: Option<PathBuf>,
    /// `file:line` of the `destination:` that won, for messages.
    pub destination_at: Option<String>,
    pub scope: Scope,
    pub skills: Vec<SkillSource>,
    /// `commands:` entries (SPEC 10a): the skills entry shape, `:`-namespaced names.
    pub commands: Vec<SkillSource>,
    /// `instructions:` entries (SPEC 10b): the skills entry shape, `:`-namespaced names.
    pub instructions: Vec<SkillSource>,
    /// `mcps:` entries (SPEC 10), merged across `extends` by identity; in order, because the
    /// first pack providing a server name wins.
    pub mcps: Vec<mcp::McpSource>,
    /// The local files read to build it: the config itself, then its local `extends` parents
    /// (absolute, as spelled). In the project scope each must lie inside the project.
    pub files: Vec<PathBuf>,
    /// Some layer (the config or a parent) was read from a URL.
    pub remote: bool,
    /// `secrets:` (SPEC 10c): where MCP secrets come from, what a missing one does.
    pub secrets: secrets::SecretsConfig,
    /// `audit:` (SPEC 16): the sync gate.
    pub audit: audit::AuditConfig,
    /// The global `trust:` (SPEC 16, signed pins); already applied to every git entry that
    /// sets none of its own.
    pub trust: Option<entry::Trust>,
}

pub use crate::request::{Pick, Reference, Selection};

pub mod audit;
pub mod edit;
pub mod entry;
pub mod mcp;
pub mod secrets;
pub mod target;
mod unknown;
use entry::{Namespaced, NonEmpty, RawTrust, RelPath, Trust, source_entry, trust_entry};

/// One entry of `skills:`, `commands:` or `instructions:` (one shape for the three lists).
#[derive(Debug, Clone)]
pub struct SkillSource {
    pub source: Source,
    pub reference: Reference,
    /// Discovery root inside the source, without leading or trailing `/`.
    pub sub_dir: Option<String>,
    pub selection: Selection,
    /// `file:line` of the entry, for messages.
    pub at: String,
    /// `trust:` (its own, else the global one): its git pins must be signed (SPEC 16).
    pub trust: Option<Trust>,
}

// ---------------------------------------------------------------------------------------------
// Raw shapes, as written in YAML.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    agent: Option<OneOrMany<AgentId>>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    extends: Option<OneOrMany<String>>,
    #[serde(default)]
    skills: Vec<RawSkillSource>,
    #[serde(default)]
    commands: Vec<RawSkillSource>,
    #[serde(default)]
    instructions: Vec<RawSkillSource>,
    #[serde(default)]
    mcps: Vec<mcp::RawMcpSource>,
    #[serde(default)]
    secrets: Option<secrets::RawSecrets>,
    audit: Option<audit::RawAudit>,
    #[serde(default)]
    trust: Option<RawTrust>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkillSource {
    source: String,
    #[serde(default, rename = "ref")]
    reference: Option<NonEmpty>,
    #[serde(default)]
    branch: Option<NonEmpty>,
    #[serde(default, rename = "sub-dir", alias = "sub_dir")]
    sub_dir: Option<RelPath>,
    /// The selection, under the list's own key (`skills:` in a `skills:` entry, …).
    #[serde(default)]
    skills: Option<Selection>,
    #[serde(default)]
    commands: Option<Namespaced>,
    #[serde(default)]
    trust: Option<RawTrust>,
    #[serde(default)]
    instructions: Option<Namespaced>,
}

impl RawSkillSource {
    /// The selection under `key`; a selection under another list's key is a mistake.
    fn selection(self, key: &str, at: &str) -> Result<Selection> {
        let (skills, commands, instructions) = (
            self.skills,
            self.commands.map(|n| n.0),
            self.instructions.map(|n| n.0),
        );
        let mut given = [
            ("skills", skills),
            ("commands", commands),
            ("instructions", instructions),
        ];
        if let Some((other, _)) = given.iter().find(|(k, v)| *k != key && v.is_some()) {
            return Err(Error::usage(format!(
                "{at}: `{other}:` does not belong in a `{key}:` entry; name what to install under `{key}:`"
            )));
        }
        let slot = given
            .iter_mut()
            .find(|(k, _)| *k == key)
            .expect("a known key");
        slot.1.take().ok_or_else(|| {
            Error::usage(format!(
                "{at}: missing field `{key}` (\"*\" or a list of names)"
            ))
        })
    }
}

/// `x` or `[x, y]`.
struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                let one = T::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

struct AgentId(&'static Agent);

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        agents::find(&id)
            .map(AgentId)
            .ok_or_else(|| de::Error::custom(unknown_agent(&id)))
    }
}

pub fn unknown_agent(id: &str) -> String {
    let hint = agents::closest(id)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default();
    let valid: Vec<_> = agents::ids().collect();
    format!(
        "unknown agent {id:?}{hint}; valid agents: {}",
        valid.join(", ")
    )
}

// ---------------------------------------------------------------------------------------------
// Discovery and loading.

/// How a config was found (SPEC 3 "Trust"). Only a config kst found by itself in the working
/// directory may be a stranger's (a cloned project): it needs the user's trust to write to the
/// global scope (see [`crate::trust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--config PATH|URL`.
    Flag,
    /// `$KASETTO_CONFIG`.
    Env,
    /// `./kasetto.yaml` in the working directory.
    WorkingDir,
    /// `$XDG_CONFIG_HOME/kasetto/` (`config.yaml`'s `source:` or `kasetto.yaml`).
    Xdg,
}

/// Find the config file (SPEC 3): `--config` → `$KASETTO_CONFIG` → `./kasetto.yaml` → the
/// `source:` of `$XDG_CONFIG_HOME/kasetto/config.yaml` → `$XDG_CONFIG_HOME/kasetto/kasetto.yaml`,
/// and say which of these it was.
pub fn discover(explicit: Option<&str>, cwd: &Path) -> Result<(PathBuf, Origin)> {
    if let Some(p) = explicit {
        return local_config_path(p, cwd, "--config").map(|p| (p, Origin::Flag));
    }
    if let Some(p) = envvars::non_empty(envvars::KASETTO_CONFIG) {
        return local_config_path(&p.to_string_lossy(), cwd, envvars::KASETTO_CONFIG)
            .map(|p| (p, Origin::Env));
    }
    let here = cwd.join("kasetto.yaml");
    if here.is_file() {
        return Ok((here, Origin::WorkingDir));
    }
    let kdir = dirs::config_home()?.join("kasetto");
    let pointer = kdir.join("config.yaml");
    if pointer.is_file() {
        #[derive(Deserialize)]
        struct Pointer {
            source: String,
        }
        let text = read(&pointer)?;
        let p: Pointer = serde_yaml_ng::from_str(&text)
            .map_err(|e| yaml_error(&pointer, &text, Quote::Named, e))?;
        return local_config_path(&p.source, &kdir, &pointer.display().to_string())
            .map(|p| (p, Origin::Xdg));
    }
    let global = kdir.join("kasetto.yaml");
    if global.is_file() {
        return Ok((global, Origin::Xdg));
    }
    Err(Error::usage(format!(
        "no kasetto.yaml found (looked in {} and {}); run `kst init` to create a starter config here (`kst init --global` for your global one), or pass --config PATH (or set KASETTO_CONFIG)",
        cwd.display(),
        kdir.display()
    )))
}

fn local_config_path(p: &str, base: &Path, from: &str) -> Result<PathBuf> {
    if is_url(p) {
        // A URL: `load` downloads it; keep it as the "path" so it reaches `load` unchanged.
        return Ok(PathBuf::from(p));
    }
    let path = base.join(p);
    // Whether it can be read (a regular file, under the cap) is `load`'s to say.
    if !path.exists() {
        return Err(Error::usage(format!(
            "{from}: config file {} does not exist",
            path.display()
        )));
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

/// `http(s)://` in any case: a URL (`load` downloads it), not a local path.
pub(crate) fn is_url(p: &str) -> bool {
    // Any case: `HTTPS://…` is a URL too, not a local path to echo back.
    let scheme = |s: &str| p.get(..s.len()).is_some_and(|h| h.eq_ignore_ascii_case(s));
    scheme("https://") || scheme("http://")
}

fn read(path: &Path) -> Result<String> {
    fsx::read_input(path, fsx::CONFIG_CAP, None)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))
}

/// Turn a YAML error into `file:line:col: message`, quoting nothing of the file but what
/// `quote` allows (SPEC 13.7).
fn yaml_error(path: &Path, text: &str, quote: Quote, e: serde_yaml_ng::Error) -> Error {
    Error::usage(malformed::yaml(&e, text, quote).at(&path.display().to_string()))
}

/// Load and validate a config (a file, or an `https://` URL), following `extends`.
pub fn load(path: &Path, offline: bool) -> Result<Config> {
    load_for(path, offline, None)
}

/// [`load`], knowing the scope the command line asks for (`--project`/`--global`), so that a
/// project-scope config's local `extends` are confined to the project before they are read.
pub fn load_for(path: &Path, offline: bool, scope_override: Option<Scope>) -> Result<Config> {
    let spelled = path.to_string_lossy();
    let cwd = std::env::current_dir().unwrap_or_default();
    let (anchor, root_dir) = if is_url(&spelled) {
        (cwd.join("kasetto.yaml"), cwd.clone())
    } else {
        (
            path.to_path_buf(),
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        )
    };
    let mut loader = Loader {
        root_dir: &root_dir,
        offline,
        scope_override,
        chain: Vec::new(),
        confine: (scope_override == Some(Scope::Project)).then(|| root_dir.clone()),
        files: Vec::new(),
        reads: 0,
        remote: false,
    };
    let layer = loader.layer(&spelled)?;
    let files = std::mem::take(&mut loader.files);
    let mut config = finish(anchor, spelled.into_owned(), layer)?;
    config.files = files;
    config.remote = loader.remote;
    // A parent may have set `scope: project` after other parents were read: check them all.
    let project = scope_override.unwrap_or(config.scope) == Scope::Project;
    if project {
        for f in &config.files {
            if let Err(e) = inside(f, &root_dir) {
                // (A parent that vanished since it was read is outside too.)
                return Err(outside_project(&config.label, f, &root_dir, &e));
            }
        }
    }
    config.load_signers(project.then_some(root_dir.as_path()))?;
    Ok(config)
}

/// Whether `file` (after resolving symlinks and `..`) lies inside `root`.
fn inside(file: &Path, root: &Path) -> std::result::Result<(), String> {
    let real = std::fs::canonicalize(file).map_err(|e| e.to_string())?;
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if real.starts_with(&root_real) {
        Ok(())
    } else {
        Err("through a symlink or `..`".into())
    }
}

fn outside_project(label: &str, file: &Path, root: &Path, why: &str) -> Error {
    Error::usage(format!(
        "{label}: {} is outside the project {} ({why}); in the project scope a config and its \
         `extends` files must be inside the project (use a file inside it or an https:// URL, \
         or run with --global)",
        file.display(),
        root.display()
    ))
}

/// Parse one config text (no `extends` allowed): used by tests and tools.
pub fn parse(path: &Path, text: &str) -> Result<Config> {
    let base = path.parent().unwrap_or(Path::new("."));
    let label = path.display().to_string();
    let layer = parse_layer(&label, Some(base), base, text, Quote::Named)?;
    if !layer.extends.is_empty() {
        return Err(Error::usage(format!(
            "{label}: `extends` needs `config::load`"
        )));
    }
    let mut config = finish(path.to_path_buf(), label, layer)?;
    config.load_signers(None)?;
    Ok(config)
}

/// Check one config text as the parser reads the file at `path` (its `extends` are not
/// followed): `kst add` and `kst remove` run it on the edited text before writing it.
pub fn check_text(path: &Path, text: &str) -> Result<()> {
    let base = path.parent().unwrap_or(Path::new("."));
    let label = path.display().to_string();
    let layer = parse_layer(&label, Some(base), base, text, Quote::Named)?;
    finish(
        path.to_path_buf(),
        label,
        Layer {
            extends: Vec::new(),
            ..layer
        },
    )
    .map(|_| ())
}

/// Maximum depth of an `extends` chain.
pub const MAX_EXTENDS_DEPTH: usize = 8;

/// Maximum number of files one load reads through `extends` (the config included). Depth alone
/// does not bound the work: a file listing the same parent a thousand times, each listing its
/// own a thousand times, would be read a thousand to the eighth power times.
pub const MAX_EXTENDS_FILES: usize = 64;

/// The error when a load would read more than [`MAX_EXTENDS_FILES`] files.
pub(crate) fn too_many_extends(label: &str) -> Error {
    Error::usage(format!(
        "{label}: `extends` would read more than {MAX_EXTENDS_FILES} files (a parent listed \
         many times, or a very wide tree of parents); list each parent once"
    ))
}

/// One config file, parsed and validated on its own, before merging with its parents.
struct Layer {
    agents: Option<Vec<&'static Agent>>,
    destination: Option<PathBuf>,
    destination_at: Option<String>,
    scope: Option<Scope>,
    extends: Vec<String>,
    skills: Vec<SkillSource>,
    commands: Vec<SkillSource>,
    instructions: Vec<SkillSource>,
    mcps: Vec<mcp::McpSource>,
    secrets: Option<secrets::SecretsConfig>,
    audit: Option<audit::AuditConfig>,
    trust: Option<Trust>,
}

/// Loads a config and its `extends` parents.
struct Loader<'a> {
    /// The folder of the config the user named (the project, in the project scope).
    root_dir: &'a Path,
    offline: bool,
    scope_override: Option<Scope>,
    /// The files being loaded, for cycle detection and for messages that show how a file was
    /// reached.
    chain: Vec<String>,
    /// Set once the scope is known to be the project's: local files must lie inside it.
    confine: Option<PathBuf>,
    /// Every local file read.
    files: Vec<PathBuf>,
    /// Files read so far, remote ones and repeats included ([`MAX_EXTENDS_FILES`]).
    reads: usize,
    /// A layer was read from a URL.
    remote: bool,
}

impl Loader<'_> {
    /// Load `spelled` (a path or URL) and its parents, merged.
    fn layer(&mut self, spelled: &str) -> Result<Layer> {
        self.reads += 1;
        if self.reads > MAX_EXTENDS_FILES {
            return Err(too_many_extends(
                self.chain.first().map(String::as_str).unwrap_or(spelled),
            ));
        }
        let chain = &self.chain;
        // Only the config the user named may be quoted (a short token of it) in an error; a
        // parent may be any file at all (`extends: ~/.env`).
        let mut quote = if chain.is_empty() {
            Quote::Named
        } else {
            Quote::Nothing
        };
        let (label, base, text) = if is_url(spelled) {
            self.remote = true;
            let (text, notes) =
                crate::remote::fetch(spelled, self.offline).map_err(|e| match e {
                    Error::Failed(e) if chain.is_empty() => Error::Failed(e),
                    Error::Failed(e) => {
                        Error::Failed(e.context(via(chain).trim_end_matches(": ").to_string()))
                    }
                    other => Error::usage(format!("{}{other}", via(chain))),
                })?;
            for n in notes {
                tracing::warn!("{n}");
            }
            (spelled.to_string(), None, text)
        } else {
            let p = PathBuf::from(spelled);
            let p = std::path::absolute(&p).unwrap_or(p);
            let text = fsx::read_input(&p, fsx::CONFIG_CAP, self.confine.as_deref()).map_err(
                |e| match (&e, &self.confine) {
                    (fsx::ReadError::Outside(root), Some(_)) if chain.is_empty() => {
                        Error::usage(format!(
                            "{} resolves (through a symlink) to a file outside the project {}; \
                             in the project scope the config must be inside the project (use a \
                             regular file, or run with --global)",
                            p.display(),
                            root.display()
                        ))
                    }
                    (fsx::ReadError::Outside(root), Some(_)) => Error::usage(format!(
                        "{}{} is outside the project {}; in the project scope `extends` may \
                         name only files inside the project, or https:// URLs (use a file \
                         inside it, or run with --global)",
                        via(chain),
                        p.display(),
                        root.display()
                    )),
                    _ => Error::usage(format!(
                        "{}cannot read config {}: {e}",
                        via(chain),
                        p.display()
                    )),
                },
            )?;
            // A config reached through a symlink that leaves its folder is another file.
            if quote == Quote::Named && inside(&p, self.root_dir).is_err() {
                quote = Quote::Nothing;
            }
            self.files.push(p.clone());
            (
                p.display().to_string(),
                p.parent().map(Path::to_path_buf),
                text,
            )
        };
        if let Some(i) = chain.iter().position(|c| *c == label) {
            let mut cycle = chain[i..].to_vec();
            cycle.push(label.clone());
            return Err(Error::usage(format!(
                "`extends` cycle: {}",
                cycle.join(" → ")
            )));
        }
        if chain.len() >= MAX_EXTENDS_DEPTH {
            return Err(Error::usage(format!(
                "`extends` is nested deeper than {MAX_EXTENDS_DEPTH} files: {} → {label}",
                chain.join(" → ")
            )));
        }
        let mut layer = parse_layer(&label, base.as_deref(), self.root_dir, &text, quote)?;
        // The config the user named says `scope: project`: its parents are confined from now.
        if self.chain.is_empty()
            && self.scope_override.is_none()
            && layer.scope == Some(Scope::Project)
            && base.is_some()
        {
            self.confine = Some(self.root_dir.to_path_buf());
        }
        self.chain.push(label.clone());
        // Parents merge left to right; this file is applied last.
        let mut merged: Option<Layer> = None;
        for parent in std::mem::take(&mut layer.extends) {
            let parent_spelled = if is_url(&parent) {
                parent.clone()
            } else if let Some(b) = &base {
                local_parent(b, &parent)?.display().to_string()
            } else {
                // A relative parent of a remote config is a sibling URL.
                url::Url::parse(&label)
                    .and_then(|u| u.join(&parent))
                    .map(|u| u.to_string())
                    .map_err(|e| Error::usage(format!("{label}: extends {parent:?}: {e}")))?
            };
            let p = self.layer(&parent_spelled)?;
            merged = Some(match merged {
                None => p,
                Some(m) => merge(m, p),
            });
        }
        self.chain.pop();
        Ok(match merged {
            None => layer,
            Some(m) => merge(m, layer),
        })
    }
}

/// Where a local `extends` parent is: `~/…` under HOME, anything else against the folder of
/// the file that extends it. The trust gate hashes exactly the files this names.
pub(crate) fn local_parent(base: &Path, parent: &str) -> Result<PathBuf> {
    Ok(match parent.strip_prefix("~/") {
        Some(rest) => dirs::home()?.join(rest),
        None => base.join(parent),
    })
}

fn via(chain: &[String]) -> String {
    if chain.is_empty() {
        String::new()
    } else {
        format!("{} extends: ", chain.join(" → "))
    }
}

/// `child` over `parent`: scalars are replaced; list entries merge by identity (same identity
/// replaces in place, new identities append).
fn merge(parent: Layer, child: Layer) -> Layer {
    fn by_identity<T, I: PartialEq>(
        mut parent: Vec<T>,
        child: Vec<T>,
        id: impl Fn(&T) -> I,
    ) -> Vec<T> {
        for c in child {
            match parent.iter().position(|p| id(p) == id(&c)) {
                Some(i) => parent[i] = c,
                None => parent.push(c),
            }
        }
        parent
    }
    let skills = by_identity(parent.skills, child.skills, SkillSource::identity);
    let commands = by_identity(parent.commands, child.commands, SkillSource::identity);
    let instructions = by_identity(
        parent.instructions,
        child.instructions,
        SkillSource::identity,
    );
    let mcps = by_identity(parent.mcps, child.mcps, mcp::McpSource::identity);
    Layer {
        agents: child.agents.or(parent.agents),
        destination_at: if child.destination.is_some() {
            child.destination_at
        } else {
            parent.destination_at
        },
        destination: child.destination.or(parent.destination),
        scope: child.scope.or(parent.scope),
        extends: Vec::new(),
        skills,
        commands,
        instructions,
        mcps,
        secrets: secrets::SecretsConfig::merge(parent.secrets, child.secrets),
        audit: audit::AuditConfig::merge(parent.audit, child.audit),
        trust: child.trust.or(parent.trust),
    }
}

/// Parse and validate one file. `base` is its folder (None for a remote file); local paths in
/// it resolve against `base`, and are spelled relative to `root_dir` (the folder of the config
/// the user named) so the lock's identity of a local source does not depend on which file of the
/// chain listed it.
fn parse_layer(
    label: &str,
    base: Option<&Path>,
    root_dir: &Path,
    text: &str,
    quote: Quote,
) -> Result<Layer> {
    let shown = Path::new(label);
    // A UTF-8 BOM (an editor on Windows) is not content: the YAML parser would take it for a
    // second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // An empty file is an empty config, not an error.
    let raw: RawConfig = if text.trim().is_empty() {
        serde_yaml_ng::from_str("{}").expect("empty mapping")
    } else {
        unknown::from_str(label, text).map_err(|e| yaml_error(shown, text, quote, e))?
    };
    let result = check_layer(raw, label, base, root_dir, text);
    if quote == Quote::Named {
        return result;
    }
    // A parent may be any file: what our own checks quote of it (a source, a server name)
    // follows the same rules as a parse error (SPEC 13.7).
    result.map_err(|e| match e {
        Error::Usage(m) => Error::usage(match m.strip_prefix(label) {
            Some(rest) => format!("{label}{}", malformed::message(rest, text, quote)),
            None => malformed::message(&m, text, quote),
        }),
        other => other,
    })
}

/// The checks of a parsed layer that serde does not make.
fn check_layer(
    raw: RawConfig,
    label: &str,
    base: Option<&Path>,
    root_dir: &Path,
    text: &str,
) -> Result<Layer> {
    let mcp_lines = entry_lines(text, "mcps");
    let skills = entries(raw.skills, "skills", label, base, root_dir, text)?;
    let commands = entries(raw.commands, "commands", label, base, root_dir, text)?;
    let instructions = entries(
        raw.instructions,
        "instructions",
        label,
        base,
        root_dir,
        text,
    )?;
    let agents = raw.agent.map(|OneOrMany(list)| {
        let mut out: Vec<&'static Agent> = Vec::new();
        for AgentId(a) in list {
            if !out.iter().any(|o| o.id == a.id) {
                out.push(a);
            }
        }
        out
    });
    let destination = match raw.destination {
        None => None,
        Some(d) => Some(match (d.strip_prefix("~/"), base) {
            (Some(rest), _) => dirs::home()?.join(rest),
            (None, Some(b)) => b.join(d),
            (None, None) if Path::new(&d).is_absolute() => PathBuf::from(d),
            (None, None) => {
                return Err(Error::usage(format!(
                    "{label}: a remote config cannot set a relative destination ({d:?})"
                )));
            }
        }),
    };
    let destination_at =
        destination
            .as_ref()
            .map(|_| match top_level_key_line(text, "destination") {
                Some(line) => format!("{label}:{line}"),
                None => label.to_string(),
            });
    let extends = raw.extends.map(|OneOrMany(v)| v).unwrap_or_default();
    let mcps = mcp::build(raw.mcps, &mcp_lines, label, base, root_dir)?;
    let secrets = raw.secrets.map(|s| s.build(label, base)).transpose()?;
    let audit = raw.audit.map(audit::RawAudit::build);
    let trust_at = match top_level_key_line(text, "trust") {
        Some(line) => format!("{label}:{line}"),
        None => label.to_string(),
    };
    let trust = trust_entry(raw.trust, &trust_at, base, None)?;
    Ok(Layer {
        agents,
        destination,
        destination_at,
        scope: raw.scope,
        extends,
        skills,
        commands,
        instructions,
        mcps,
        secrets,
        audit,
        trust,
    })
}

/// The entries of one of the lists with the skills entry shape (`skills`, `commands`,
/// `instructions`), each with its `file:line`.
fn entries(
    raw: Vec<RawSkillSource>,
    key: &str,
    label: &str,
    base: Option<&Path>,
    root_dir: &Path,
    text: &str,
) -> Result<Vec<SkillSource>> {
    let lines = entry_lines(text, key);
    let mut out: Vec<SkillSource> = Vec::new();
    for (i, mut s) in raw.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let at = format!("{label}:{line}");
        let (source, reference) = source_entry(
            &s.source,
            s.reference.take(),
            s.branch.take(),
            &at,
            base,
            root_dir,
        )?;
        let sub_dir = s.sub_dir.take().map(|p| p.0).filter(|p| !p.is_empty());
        let git = matches!(source, Source::Git(_));
        let trust = trust_entry(s.trust.take(), &at, base, Some(git))?;
        let selection = s.selection(key, &at)?;
        let entry = SkillSource {
            source,
            reference,
            sub_dir,
            selection,
            at,
            trust,
        };
        // Two entries with one identity would fight over the same lock entry.
        if let Some(b) = out.iter().find(|b| b.identity() == entry.identity()) {
            return Err(Error::usage(format!(
                "{}: the same source is listed twice (first at {}); merge the two entries",
                entry.at, b.at
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The merged layers as a usable config.
fn finish(path: PathBuf, label: String, layer: Layer) -> Result<Config> {
    let agents = layer.agents.unwrap_or_default();
    if agents.is_empty() && layer.destination.is_none() && !layer.skills.is_empty() {
        return Err(Error::usage(format!(
            "{label}: no `agent` and no `destination`: kst does not know where to install skills; add e.g. `agent: claude-code`"
        )));
    }
    for (list, what) in [
        (&layer.commands, "commands"),
        (&layer.instructions, "instructions"),
    ] {
        if agents.is_empty() && !list.is_empty() {
            return Err(Error::usage(format!(
                "{label}: `{what}` needs an `agent`: kst writes {what} into each agent's own place; add e.g. `agent: claude-code`"
            )));
        }
    }
    if agents.is_empty() && !layer.mcps.is_empty() {
        return Err(Error::usage(format!(
            "{label}: `mcps` needs an `agent`: kst writes MCP servers into agents' settings files; add e.g. `agent: claude-code`"
        )));
    }
    // The global `trust:` applies to every git entry that sets none of its own.
    let (mut skills, mut commands, mut instructions, mut mcps) =
        (layer.skills, layer.commands, layer.instructions, layer.mcps);
    if let Some(t) = &layer.trust {
        for s in skills
            .iter_mut()
            .chain(commands.iter_mut())
            .chain(instructions.iter_mut())
            .filter(|s| matches!(s.source, Source::Git(_)))
        {
            s.trust.get_or_insert_with(|| t.clone());
        }
        for m in mcps.iter_mut().filter(|m| m.is_git()) {
            m.trust.get_or_insert_with(|| t.clone());
        }
    }
    Ok(Config {
        path,
        label,
        agents,
        destination: layer.destination,
        destination_at: layer.destination_at,
        scope: layer.scope.unwrap_or(Scope::Global),
        skills,
        commands,
        instructions,
        mcps,
        files: Vec::new(),
        remote: false,
        secrets: layer.secrets.unwrap_or_default(),
        audit: layer.audit.unwrap_or_default(),
        trust: layer.trust,
    })
}

impl Config {
    /// Read every allowed-signers file the config names (SPEC 16); with `within` (the project,
    /// in the project scope) each must lie inside it.
    fn load_signers(&mut self, within: Option<&Path>) -> Result<()> {
        let trusts = self
            .trust
            .iter_mut()
            .chain(
                self.skills
                    .iter_mut()
                    .chain(self.commands.iter_mut())
                    .chain(self.instructions.iter_mut())
                    .filter_map(|s| s.trust.as_mut()),
            )
            .chain(self.mcps.iter_mut().filter_map(|m| m.trust.as_mut()));
        entry::load_signers(trusts, within)
    }
}

impl SkillSource {
    /// `(source, ref-or-branch, sub-dir)`: entries with the same identity are the same entry.
    pub fn identity(&self) -> (String, Reference, Option<String>) {
        (
            self.source.identity().to_string(),
            self.reference.clone(),
            self.sub_dir.clone(),
        )
    }

    /// Who this entry is, for finding its lock entry.
    pub fn id(&self) -> crate::request::EntryId {
        crate::request::EntryId {
            url: self.source.identity().to_string(),
            reference: self.reference.clone(),
            local: matches!(self.source, Source::Local { .. }),
            sub_dir: self.sub_dir.clone(),
        }
    }

    /// The request this entry makes, before resolution.
    pub fn requested(&self) -> crate::request::Requested {
        crate::request::Requested::of(&self.source, &self.reference)
    }
}

impl entry::ConfigEntry for SkillSource {
    fn at(&self) -> &str {
        &self.at
    }
    fn id(&self) -> crate::request::EntryId {
        SkillSource::id(self)
    }
}

/// The line of each item of the top-level list `key:`, in order, for messages about entries.
fn entry_lines(text: &str, key: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_skills = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if !line.starts_with(' ') && !line.starts_with('-') && !t.is_empty() && !t.starts_with('#')
        {
            in_skills = t.starts_with(&format!("{key}:"));
            continue;
        }
        if in_skills && t.starts_with('-') {
            let indent = line.len() - t.len();
            // Only top-level items of the list (the least-indented dashes).
            if out.is_empty() || indent <= first_indent(text, out[0]) {
                out.push(i + 1);
            }
        }
    }
    out
}

/// The line of the top-level `key:`, if the file spells it plainly.
fn top_level_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn first_indent(text: &str, line: usize) -> usize {
    let l = text.lines().nth(line - 1).unwrap_or("");
    l.len() - l.trim_start().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_with_a_bom_and_crlf_reads_as_the_same_config() {
        let text =
            "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n";
        let path = Path::new("/p/kasetto.yaml");
        let plain = parse(path, text).unwrap();
        for other in [
            format!("\u{feff}{text}"),
            format!("\u{feff}{}", text.replace('\n', "\r\n")),
        ] {
            let c = parse(path, &other).unwrap_or_else(|e| panic!("{other:?}: {e}"));
            assert_eq!(format!("{:?}", c.skills), format!("{:?}", plain.skills));
            assert_eq!(c.scope, plain.scope);
        }
    }

    fn parse_str(text: &str) -> Result<Config> {
        parse(Path::new("/p/kasetto.yaml"), text)
    }

    fn err(text: &str) -> String {
        match parse_str(text) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn full_example_parses() {
        let c = parse_str(
            r#"
agent: [claude-code, codex]
scope: project
skills:
  - source: https://github.com/anthropics/skills
    ref: v1.2.0
    skills: [pptx, { name: pdf }]
  - source: git@gitlab.example.com:platform/skills.git
    branch: main
    sub-dir: packs/backend
    skills: "*"
  - source: ./local-skills
    skills:
      - { name: reviewer, path: nested/dir }
"#,
        )
        .unwrap();
        assert_eq!(c.agents.len(), 2);
        assert_eq!(c.scope, Scope::Project);
        assert_eq!(c.skills.len(), 3);
        assert_eq!(c.skills[0].reference, Reference::Ref("v1.2.0".into()));
        assert_eq!(c.skills[1].sub_dir.as_deref(), Some("packs/backend"));
        assert_eq!(c.skills[1].selection, Selection::All);
        assert_eq!(c.skills[2].at, "/p/kasetto.yaml:12");
        assert_eq!(
            c.skills[2].selection,
            Selection::Named(vec![Pick {
                name: "reviewer".into(),
                path: Some("nested/dir".into())
            }])
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let m = err("agent: claude\nskills:\n  - source: ./x\n    skils: \"*\"\n");
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");
        assert!(m.contains("skils"), "{m}");

        let m = err("agent: cursr\n");
        assert!(m.starts_with("/p/kasetto.yaml:1:"), "{m}");
        assert!(m.contains("did you mean \"cursor\""), "{m}");

        let m = err("agent: claude\nskills:\n  - source: ./x\n    skills: [\"../etc\"]\n");
        assert!(m.starts_with("/p/kasetto.yaml:4:"), "{m}");

        let m = err("agent: claude\nskills:\n  - source: ./x\n    skills: pdf\n");
        assert!(m.contains("write [pdf]"), "{m}");

        let m = err("agent: claude\nscope: everywhere\n");
        assert!(m.starts_with("/p/kasetto.yaml:2:"), "{m}");
    }

    #[test]
    fn sub_dir_alias_and_ref_wins() {
        let c = parse_str("agent: claude\nskills:\n  - source: file:///r\n    sub_dir: a/b/\n    ref: v1\n    branch: main\n    skills: '*'\n").unwrap();
        assert_eq!(c.skills[0].sub_dir.as_deref(), Some("a/b"));
        assert_eq!(c.skills[0].reference, Reference::Ref("v1".into()));
    }
}
