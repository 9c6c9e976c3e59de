//! Trust for configs found in the working directory (SPEC 3 "Trust").
//!
//! A `kasetto.yaml` that kst finds by itself in the working directory may be a stranger's: the
//! project was cloned, and its config was written by whoever wrote the project. Such a config
//! may write to the **global** scope (the user's own skills folders, global lock and agent
//! settings) only once the user trusts that exact file: `kst trust` records the sha256 of its
//! content and of every local `extends` file (recursively) in `$XDG_DATA_HOME/kasetto/
//! trusted.yaml`, keyed by the config's absolute path (not resolved through a symlink: a link
//! to a trusted config, elsewhere, is that config in a folder the user never trusted). A
//! changed file is a stranger again.
//! `--global` trusts it for one run; on a terminal kst asks once.
//!
//! The gate runs before the config is loaded (loading follows `https://` extends), so an
//! untrusted config reads nothing from the network and writes nothing. The project scope needs
//! no trust (it stays inside the project); configs named by `--config`, `$KASETTO_CONFIG` or
//! found in the XDG config folder were chosen by the user and need none either.
//!
//! Second rule, whatever the origin: in the global scope a `destination:` must be a folder
//! under HOME that no program loads code or settings from ([`check_global_destination`]).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{self, Config, Origin, Scope};
use crate::dirs;
use crate::error::{Error, Result};
use crate::pathsafe::normalise;

/// Largest trust record kst reads.
const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// What a command does with the scope it works on, which decides whether it needs trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writes (skills, lock, MCP settings, cache) or fetches: `sync`, `lock`, `fetch`.
    Writes,
    /// Reads the installed state: `verify`. `network`: also asks remotes (`--remote`).
    Reads { network: bool },
}

/// What the gate needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub access: Access,
    /// `--project` / `--global` on the command line.
    pub scope_flag: Option<Scope>,
    pub offline: bool,
    /// May kst ask on the terminal (stdin and stderr are terminals, not `--json`, not `-q`)?
    pub interactive: bool,
}

/// The files a trust covers: the config and its local `extends` files, each with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Canonical path → `sha256:<hex>`; the config itself is one of them.
    pub files: BTreeMap<String, String>,
    /// The scope the local files set, as `config::load` would merge it; `Unknown` when an
    /// `https://` parent could decide it.
    scope: Eff,
    /// Some `extends` is an `https://` URL (loading the config reads from the network).
    pub remote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eff {
    Unset,
    Known(Scope),
    Unknown,
}

impl Chain {
    /// The scope the config will work on without a command-line flag, if the local files say.
    pub fn scope(&self) -> Option<Scope> {
        match self.scope {
            Eff::Unset => Some(Scope::Global),
            Eff::Known(s) => Some(s),
            Eff::Unknown => None,
        }
    }
}

/// Read the config at `path` and its local `extends` files (recursively), without the network.
pub fn chain(path: &Path) -> Result<Chain> {
    let mut files = BTreeMap::new();
    let mut remote = false;
    let mut stack = Vec::new();
    let mut reads = 0;
    let scope = walk(path, &mut files, &mut remote, &mut stack, &mut reads)?;
    Ok(Chain {
        files,
        scope,
        remote,
    })
}

fn walk(
    path: &Path,
    files: &mut BTreeMap<String, String>,
    remote: &mut bool,
    stack: &mut Vec<PathBuf>,
    reads: &mut usize,
) -> Result<Eff> {
    // Bounded like the loader ([`config::MAX_EXTENDS_FILES`]): repeats and wide trees count.
    *reads += 1;
    if *reads > config::MAX_EXTENDS_FILES {
        let first = stack.first().map(PathBuf::as_path).unwrap_or(path);
        return Err(config::too_many_extends(&shown(first)));
    }
    let via = if stack.is_empty() {
        String::new()
    } else {
        format!("{} extends: ", shown(stack.last().expect("not empty")))
    };
    // The path as the loader spells it: relative parents resolve against *its* folder, not
    // against the folder a symlink leads to, or the files hashed would not be the files loaded.
    let spelled = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let canonical = std::fs::canonicalize(path)
        .map_err(|e| Error::usage(format!("{via}cannot read config {}: {e}", shown(path))))?;
    // A cycle or an over-deep chain is the loader's to report; the files are hashed already.
    // A cycle is judged as the loader judges it, by the path as spelled: a file reached again
    // through a symlink is loaded again, against another folder, so it is walked again here.
    if stack.contains(&spelled) || stack.len() >= config::MAX_EXTENDS_DEPTH {
        return Ok(Eff::Unset);
    }
    let bytes = crate::fsx::read_input_bytes(&canonical, crate::fsx::CONFIG_CAP, None)
        .map_err(|e| Error::usage(format!("{via}cannot read config {}: {e}", shown(path))))?;
    files.insert(canonical.to_string_lossy().into_owned(), digest(&bytes));
    let text = String::from_utf8_lossy(&bytes);
    let doc: serde_yaml_ng::Value = if text.trim().is_empty() {
        serde_yaml_ng::Value::Null
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| {
            // Only where: the message of a YAML error may quote the file.
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            Error::usage(format!("{via}{}{at}: not valid YAML", shown(path)))
        })?
    };
    let own = match doc.get("scope").and_then(|s| s.as_str()) {
        Some("global") => Eff::Known(Scope::Global),
        Some("project") => Eff::Known(Scope::Project),
        // An invalid value is the loader's to report; until then, assume the worst.
        Some(_) => Eff::Unknown,
        None if doc.get("scope").is_some() => Eff::Unknown,
        None => Eff::Unset,
    };
    let parents: Vec<String> = match doc.get("extends") {
        Some(serde_yaml_ng::Value::String(s)) => vec![s.clone()],
        Some(serde_yaml_ng::Value::Sequence(v)) => v
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let base = spelled.parent().map(Path::to_path_buf).unwrap_or_default();
    stack.push(spelled);
    // Parents merge left to right and the file itself is applied last (as `config::load`).
    let mut merged = Eff::Unset;
    for p in parents {
        let got = if crate::config::is_url(&p) {
            *remote = true;
            Eff::Unknown
        } else {
            // Resolved as `config::load` resolves a local parent, so the files hashed are the
            // files loaded.
            walk(
                &config::local_parent(&base, &p)?,
                files,
                remote,
                stack,
                reads,
            )?
        };
        if got != Eff::Unset {
            merged = got;
        }
    }
    stack.pop();
    Ok(if own != Eff::Unset { own } else { merged })
}

/// `sha256:<hex>` of some bytes.
fn digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A path for messages: control characters escaped (a cloned folder's name is outside input).
pub fn shown(p: &Path) -> String {
    crate::escape::escape_line(&p.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// The record.

/// `$XDG_DATA_HOME/kasetto/trusted.yaml`.
pub fn record_path() -> Result<PathBuf> {
    Ok(dirs::data_home()?.join("kasetto").join("trusted.yaml"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    schema: u32,
    /// Config (absolute path) → the files its trust covers (canonical path → digest).
    #[serde(default)]
    trusted: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_record() -> Result<Record> {
    let path = record_path()?;
    let bytes = match crate::fsx::read_input_bytes(&path, MAX_RECORD_BYTES, None) {
        Ok(b) => b,
        Err(crate::fsx::ReadError::NotFound) => return Ok(Record::default()),
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot read the trust record {}: {e}",
                shown(&path)
            )));
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.trim().is_empty() {
        return Ok(Record::default());
    }
    // The error names the place, never the content.
    serde_yaml_ng::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        Error::usage(format!(
            "{}{at}: not a valid trust record; remove it and trust your configs again with `kst trust`",
            shown(&path)
        ))
    })
}

fn write_record(r: &Record) -> Result<()> {
    let path = record_path()?;
    let mut text = String::from(
        "# Configs trusted to write to the global scope (`kst trust`, `kst trust --revoke`).\n",
    );
    text.push_str(
        &serde_yaml_ng::to_string(&Record {
            schema: 1,
            trusted: r.trusted.clone(),
        })
        .map_err(|e| Error::Failed(e.into()))?,
    );
    crate::fsx::write_atomic(&path, text.as_bytes(), Some(0o600)).map_err(Error::Failed)
}

/// The record's key for a config: its absolute path as found, *not* resolved through a
/// symlink. The config's folder is where its relative paths (local sources, `extends`) and,
/// in the project scope, the project are: a `./kasetto.yaml` that links to a config trusted
/// elsewhere is that config used from another folder, which the user never trusted.
fn key_of(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::usage(format!("cannot read config {}: {e}", shown(path))))?;
    Ok(normalise(&abs).to_string_lossy().into_owned())
}

/// How the recorded trust compares with the files as they are now.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    Trusted,
    Never,
    /// Trusted once; these files were changed, added or removed since.
    Changed(Vec<String>),
}

fn standing(record: &Record, key: &str, chain: &Chain) -> Standing {
    let Some(had) = record.trusted.get(key) else {
        return Standing::Never;
    };
    if *had == chain.files {
        return Standing::Trusted;
    }
    let mut changed: Vec<String> = chain
        .files
        .iter()
        .filter(|(p, d)| had.get(*p) != Some(*d))
        .map(|(p, _)| p.clone())
        .collect();
    changed.extend(
        had.keys()
            .filter(|p| !chain.files.contains_key(*p))
            .cloned(),
    );
    Standing::Changed(changed)
}

/// Record that the user trusts the config at `path` as it is now (unless `dry_run`); returns
/// the files covered.
pub fn trust(path: &Path, dry_run: bool) -> Result<Chain> {
    let chain = chain(path)?;
    let key = key_of(path)?;
    let mut record = read_record()?;
    record.trusted.insert(key, chain.files.clone());
    if !dry_run {
        write_record(&record)?;
    }
    Ok(chain)
}

/// Forget the trust of the config at `path` (unless `dry_run`); false if it was not trusted.
pub fn revoke(path: &Path, dry_run: bool) -> Result<bool> {
    // A config deleted since can still be revoked by the path it had.
    let key = key_of(path)?;
    let mut record = read_record()?;
    if record.trusted.remove(&key).is_none() {
        return Ok(false);
    }
    if !dry_run {
        write_record(&record)?;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// The gate.

/// May this run go on with the config at `path`? Called before the config is loaded, so an
/// untrusted config reads nothing from the network and writes nothing. Exit 2 (a usage error)
/// when the config needs a trust it does not have.
pub fn gate(path: &Path, origin: Origin, run: &Run) -> Result<()> {
    if origin != Origin::WorkingDir || run.scope_flag == Some(Scope::Project) {
        return Ok(());
    }
    // `--global` on the command line: the user chose the global scope for this run.
    if run.scope_flag == Some(Scope::Global) {
        return Ok(());
    }
    let chain = chain(path)?;
    if chain.scope() == Some(Scope::Project) {
        return Ok(());
    }
    let needs = match run.access {
        Access::Writes => true,
        // Reading the installed skills is harmless; asking remotes (or loading an https
        // parent) would use the network on a stranger's word.
        Access::Reads { network } => network || (chain.remote && !run.offline),
    };
    if !needs {
        return Ok(());
    }
    let key = key_of(path)?;
    let record = read_record()?;
    let standing = standing(&record, &key, &chain);
    if standing == Standing::Trusted {
        return Ok(());
    }
    // A config that is wrong is the first thing to say; loading files that are all local
    // reads nothing from the network and writes nothing.
    if !chain.remote {
        config::load(path, true)?;
    }
    let home = dirs::home()?;
    let why = match &standing {
        Standing::Changed(files) if files.len() == 1 && files[0] == key => {
            format!("{} changed since you trusted it", shown(path))
        }
        Standing::Changed(files) => format!(
            "{} changed since you trusted it (changed: {})",
            shown(path),
            files
                .iter()
                .map(|f| shown(Path::new(f)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            "{} was found in the working directory and is not trusted",
            shown(path)
        ),
    };
    if run.interactive && ask(&why, &home)? {
        trust(path, false)?;
        return Ok(());
    }
    Err(Error::usage(format!(
        "{why}: it would work on the global scope (your own skills folders, global lock and \
         agent settings under {home}), which a config kst found by itself (a cloned project's, \
         perhaps) may do only once you trust it. Read it, then run `kst trust` to trust it, pass \
         --global to trust it for this run only, or add \
         `scope: project` to it to keep it inside the project",
        home = shown(&home)
    )))
}

/// Whether the config at `path` is a stranger's for this run: kst found it by itself in the
/// working directory (a cloned project's, perhaps), the user has not trusted it, and did not
/// pass `--global` (which trusts it for the run). Such a config works inside its project only,
/// whatever its scope: secrets are not resolved for it ([`secrets_refusal`]) and its local
/// sources are read only inside the project ([`check_stranger_sources`]).
pub fn is_stranger(path: &Path, origin: Origin, scope_flag: Option<Scope>) -> Result<bool> {
    if origin != Origin::WorkingDir || scope_flag == Some(Scope::Global) {
        return Ok(false);
    }
    let record = read_record()?;
    let key = key_of(path)?;
    // Never trusted: a stranger, without reading its `extends` files.
    if !record.trusted.contains_key(&key) {
        return Ok(true);
    }
    Ok(standing(&record, &key, &chain(path)?) != Standing::Trusted)
}

/// Why secrets are not resolved for a stranger's config. Secret placeholders read the user's
/// environment, credentials files and secret-manager sessions and write the values into
/// settings files, next to server definitions the config chose (a header sent to a URL of its
/// choosing).
pub fn secrets_refusal(path: &Path) -> String {
    format!(
        "not resolved: {} was found in the working directory and is not trusted, and secrets \
         (your environment, credentials files and secret managers) are resolved only for a \
         config you trust. Read it, then run `kst trust`, or name it with --config",
        shown(path)
    )
}

/// A stranger's config reads only inside its project: each local source folder must lie inside
/// the config's folder after resolving symlinks and `..`, or a cloned project could copy the user's files (`~/.claude/skills`, an MCP settings
/// file through `mcps/` linked to `~/.cursor`) into itself. Returns the project, canonical,
/// for the readers to confine what they read inside the sources (a symlink in a pack).
pub fn check_stranger_sources(config: &Config) -> Result<PathBuf> {
    let root = config.path.parent().unwrap_or(Path::new("/"));
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| normalise(root));
    let check = |source: &crate::source::Source, at: &str| -> Result<()> {
        let path = match source {
            crate::source::Source::Local { path, .. } => path.clone(),
            _ => return Ok(()),
        };
        let real = std::fs::canonicalize(&path)
            .ok()
            .or_else(|| canonical_prefix(&normalise(&path)))
            .unwrap_or_else(|| normalise(&path));
        if real.starts_with(&root) {
            return Ok(());
        }
        Err(Error::usage(format!(
            "{at}: source {} is outside the project {}; a config kst found in the working \
             directory that you have not trusted may read only inside its project. Read it, \
             then run `kst trust`, or name it with --config",
            shown(&path),
            shown(&root)
        )))
    };
    for s in config
        .skills
        .iter()
        .chain(&config.commands)
        .chain(&config.instructions)
    {
        check(&s.source, &s.at)?;
    }
    for m in &config.mcps {
        if let crate::mcp::config::McpSourceKind::Pack { source, .. } = &m.kind {
            check(source, &m.at)?;
        }
    }
    Ok(root)
}

/// Ask on the terminal; true for yes.
fn ask(why: &str, home: &Path) -> Result<bool> {
    crate::printer::note_emitted();
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "{why}.\ntrust this config to write to {}/...? [y/N] ",
        shown(home)
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::Failed(e.into()))?;
    let a = answer.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}

/// Whether kst may ask on this terminal.
pub fn interactive(printer: &crate::printer::Printer) -> bool {
    !printer.json
        && printer.verbosity >= crate::printer::Verbosity::Normal
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

// ---------------------------------------------------------------------------------------------
// Destinations in the global scope.

/// Folder names that are code-loading or secret places wherever they are.
const ANYWHERE: &[(&str, &str)] = &[
    (
        "site-packages",
        "Python imports code from site-packages folders",
    ),
    (
        "dist-packages",
        "Python imports code from dist-packages folders",
    ),
    (
        "node_modules",
        "Node.js loads code from node_modules folders",
    ),
    (
        ".git",
        "git runs hooks and reads settings from .git folders",
    ),
    (".ssh", "ssh reads keys and settings from .ssh"),
    (".gnupg", "gpg reads keys and settings from .gnupg"),
];

/// Places under HOME that programs load code or settings from, and why.
const UNDER_HOME: &[(&str, &str)] = &[
    (".bashrc", "a shell start-up file"),
    (".bash_profile", "a shell start-up file"),
    (".bash_login", "a shell start-up file"),
    (".bash_logout", "a shell start-up file"),
    (".profile", "a shell start-up file"),
    (".zshrc", "a shell start-up file"),
    (".zprofile", "a shell start-up file"),
    (".zshenv", "a shell start-up file"),
    (".zlogin", "a shell start-up file"),
    (".zlogout", "a shell start-up file"),
    (".zsh", "zsh runs start-up code from there"),
    (".oh-my-zsh", "zsh runs start-up code from there"),
    (".cshrc", "a shell start-up file"),
    (".tcshrc", "a shell start-up file"),
    (".login", "a shell start-up file"),
    (".kshrc", "a shell start-up file"),
    (".mkshrc", "a shell start-up file"),
    (".inputrc", "a shell start-up file"),
    (".xprofile", "a session start-up file"),
    (".xinitrc", "a session start-up file"),
    (".xsession", "a session start-up file"),
    (".xsessionrc", "a session start-up file"),
    (".pam_environment", "a session start-up file"),
    (".config/fish", "fish runs start-up code from there"),
    (".config/environment.d", "session environment settings"),
    (".config/autostart", "programs there start at login"),
    (".config/autostart-scripts", "programs there start at login"),
    (".config/plasma-workspace", "scripts there run at login"),
    (".kde/Autostart", "programs there start at login"),
    (".kde4/Autostart", "programs there start at login"),
    (".config/systemd", "systemd user units start programs"),
    (".config/upstart", "upstart user jobs start programs"),
    (".config/git", "git settings can run programs"),
    (".gitconfig", "git settings can run programs"),
    (".config/nvim", "Neovim loads code from there"),
    (".vim", "Vim loads code from there"),
    (".vimrc", "Vim loads code from there"),
    (".emacs.d", "Emacs loads code from there"),
    (".emacs", "Emacs loads code from there"),
    (
        ".local/lib",
        "Python and others load code from ~/.local/lib",
    ),
    (".local/bin", "programs there are on PATH"),
    (
        ".local/share/nvim",
        "Neovim loads code from ~/.local/share/nvim/site",
    ),
    (".local/share/systemd", "systemd user units start programs"),
    (".local/share/fish", "fish runs start-up code from there"),
    (
        ".local/share/applications",
        "desktop entries there start programs",
    ),
    (".vscode", "VS Code loads extensions from there"),
    (".vscode-server", "VS Code loads extensions from there"),
    (".vscode-oss", "VS Code loads extensions from there"),
    (".cursor/extensions", "Cursor loads extensions from there"),
    (
        ".windsurf/extensions",
        "Windsurf loads extensions from there",
    ),
    (".rustup", "programs there are run by cargo and rustc"),
    (
        ".mozilla",
        "Firefox loads settings and extensions from there",
    ),
    ("bin", "programs there are on PATH"),
    (".cargo", "programs there are on PATH"),
    ("go/bin", "programs there are on PATH"),
    (".npm-global", "programs there are on PATH"),
    (".pyenv", "Python installations load code from there"),
    (".ipython", "IPython runs start-up code from there"),
    (".jupyter", "Jupyter runs start-up code from there"),
    ("Library/LaunchAgents", "launchd starts programs from there"),
    (
        "Library/LaunchDaemons",
        "launchd starts programs from there",
    ),
    ("Library/StartupItems", "programs there start at login"),
    ("Library/Python", "Python imports code from there"),
    (".aws", "it holds credentials"),
    (".kube", "it holds credentials"),
    (".docker", "it holds credentials"),
    (".netrc", "it holds credentials"),
    (".git-credentials", "it holds credentials"),
    (".config/gh", "it holds credentials"),
];

/// In the global scope a `destination:` must be a folder under HOME (not HOME itself) that is
/// not, is not inside, and does not contain a place that programs load code or settings from
/// (a skill named like one would land in it), nor kst's own folders. `at` is `file:line`.
pub fn check_global_destination(dest: &Path, at: &str, home: &Path) -> Result<()> {
    let refuse = |why: String| {
        Error::usage(format!(
            "{at}: destination {}: {why}. In the global scope a destination must be a folder \
             of its own under your home folder {} (such as ~/.claude/skills) that no program \
             loads code or settings from; use one, or set `scope: project`",
            shown(dest),
            shown(home)
        ))
    };
    let d = normalise(dest);
    let h = normalise(home);
    if d == h {
        return Err(refuse("is your home folder itself".into()));
    }
    if !d.starts_with(&h) {
        return Err(refuse("is not under your home folder".into()));
    }
    let mut forms = vec![(d.clone(), h.clone())];
    // Through symlinks too (a link inside HOME may lead to one of these places).
    if let (Some(cd), Ok(ch)) = (canonical_prefix(&d), std::fs::canonicalize(&h)) {
        forms.push((cd, ch));
    }
    // Compared as case-insensitive file systems (macOS, Windows) see names: there
    // `~/Library/launchagents` is `~/Library/LaunchAgents` and `~/.SSH` is `~/.ssh`.
    let forms: Vec<(PathBuf, PathBuf)> = forms.iter().map(|(p, h)| (fold(p), fold(h))).collect();
    let own: Vec<(PathBuf, PathBuf)> = own_folders().into_iter().map(|o| (fold(&o), o)).collect();
    for (path, home) in &forms {
        let names: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if let Some((n, why)) = ANYWHERE.iter().find(|(n, _)| names.iter().any(|c| c == n)) {
            return Err(refuse(format!("is inside a {n} folder; {why}")));
        }
        if names.windows(2).any(|w| {
            (w[0] == "lib" || w[0] == "lib64") && w[1].to_ascii_lowercase().starts_with("python")
        }) {
            return Err(refuse(
                "is inside a Python library folder; Python imports code from there".into(),
            ));
        }
        let Ok(rel) = path.strip_prefix(home) else {
            continue;
        };
        for (spelled, why) in UNDER_HOME {
            let place = fold(Path::new(spelled));
            let (place, shown_place) = (place.as_path(), Path::new(spelled));
            if rel.starts_with(place) {
                return Err(refuse(format!(
                    "is inside ~/{}: {why}",
                    shown_place.display()
                )));
            }
            if place.starts_with(rel) {
                return Err(refuse(format!(
                    "contains ~/{} ({why}); a skill named like it would land there",
                    shown_place.display()
                )));
            }
        }
        for (o, spelled) in &own {
            if path.starts_with(o) || o.starts_with(path) {
                return Err(refuse(format!(
                    "is or contains kst's own folder {}",
                    shown(spelled)
                )));
            }
        }
    }
    Ok(())
}

/// A path spelled as a case-insensitive file system compares it: each name lower-cased, and
/// without the trailing dots and spaces Windows ignores (`.ssh.` is `.ssh` there).
fn fold(p: &Path) -> PathBuf {
    p.components()
        .map(|c| match c {
            std::path::Component::Normal(n) => {
                let n = n.to_string_lossy().to_lowercase();
                let t = n.trim_end_matches(['.', ' ']);
                std::ffi::OsString::from(if t.is_empty() { n.as_str() } else { t })
            }
            other => other.as_os_str().to_os_string(),
        })
        .collect()
}

/// kst's own folders: its data (global lock, trust record), its XDG config, its cache.
fn own_folders() -> Vec<PathBuf> {
    [
        dirs::data_home().map(|d| d.join("kasetto")),
        dirs::config_home().map(|d| d.join("kasetto")),
        dirs::cache_root(),
    ]
    .into_iter()
    .flatten()
    .map(|p| normalise(&p))
    .collect()
}

/// `p` with its longest existing prefix resolved through symlinks.
fn canonical_prefix(p: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut at = p.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&at) {
            let mut out = c;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(at.file_name()?.to_os_string());
        at = at.parent()?.to_path_buf();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(files: &[(&str, &str)]) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        chain(&dir.path().join(files[0].0)).unwrap()
    }

    #[test]
    fn the_scope_is_merged_like_the_loader_merges_it() {
        let c = chain_of(&[("k.yaml", "agent: codex\n")]);
        assert_eq!(c.scope(), Some(Scope::Global));
        assert_eq!(c.files.len(), 1);
        // A parent's scope is inherited; a later parent wins; the file itself wins last.
        let c = chain_of(&[
            ("k.yaml", "extends: a.yaml\n"),
            ("a.yaml", "scope: project\n"),
        ]);
        assert_eq!(c.scope(), Some(Scope::Project));
        assert_eq!(c.files.len(), 2);
        let c = chain_of(&[
            ("k.yaml", "extends: [a.yaml, b.yaml]\n"),
            ("a.yaml", "scope: project\n"),
            ("b.yaml", "scope: global\n"),
        ]);
        assert_eq!(c.scope(), Some(Scope::Global));
        let c = chain_of(&[
            ("k.yaml", "extends: a.yaml\nscope: global\n"),
            ("a.yaml", "scope: project\n"),
        ]);
        assert_eq!(c.scope(), Some(Scope::Global));
        // An https parent after a local one could set it: unknown until trusted.
        let c = chain_of(&[
            (
                "k.yaml",
                "extends: [a.yaml, https://example.invalid/b.yaml]\n",
            ),
            ("a.yaml", "scope: project\n"),
        ]);
        assert_eq!(c.scope(), None);
        assert!(c.remote);
        // An invalid value is the loader's to report; until then the worst is assumed.
        let c = chain_of(&[("k.yaml", "scope: [project]\n")]);
        assert_eq!(c.scope(), None);
    }

    #[test]
    fn a_fifo_parent_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A config whose parent is a FIFO is refused, not waited on.
        std::fs::write(dir.path().join("k.yaml"), "extends: fifo\n").unwrap();
        let e = chain(&dir.path().join("k.yaml")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn the_digest_covers_every_byte_of_every_local_file() {
        let a = chain_of(&[
            ("k.yaml", "extends: a.yaml\n"),
            ("a.yaml", "agent: codex\n"),
        ]);
        let b = chain_of(&[
            ("k.yaml", "extends: a.yaml\n"),
            ("a.yaml", "agent: codex \n"),
        ]);
        let digests = |c: &Chain| c.files.values().cloned().collect::<Vec<_>>();
        assert_eq!(digests(&a)[1], digests(&b)[1], "the config is the same");
        assert_ne!(digests(&a)[0], digests(&b)[0], "the parent differs");
    }

    fn refused(rel: &str) -> bool {
        let home = Path::new("/nonexistent-home-for-kst-tests/u");
        check_global_destination(&home.join(rel), "k.yaml:3", home).is_err()
    }

    #[test]
    fn code_loading_places_are_refused_in_the_global_scope() {
        for rel in [
            ".local/lib/python3.12/site-packages/usercustomize",
            ".local",
            ".local/lib",
            ".config",
            ".config/autostart",
            ".config/systemd/user",
            ".config/fish/conf.d",
            ".bashrc",
            ".ssh",
            "work/repo/.git/hooks",
            "venv/lib/python3.11",
            "venv/lib64/python3.11",
            "x/dist-packages",
            "Library/LaunchAgents",
            "Library/launchagents",
            ".SSH/keys",
            ".ssh./x",
            "work/repo/.GIT/hooks",
            "venv/Lib/Python3.11",
            ".local/share",
            ".local/share/nvim/site/pack/x/start",
            ".local/share/systemd/user",
            ".local/share/fish/vendor_conf.d",
            ".vscode/extensions",
            ".cursor/extensions",
            "bin",
            "",
            "../elsewhere",
            "a/../../elsewhere",
        ] {
            assert!(refused(rel), "{rel:?} was accepted");
        }
    }

    #[test]
    fn ordinary_folders_are_accepted_in_the_global_scope() {
        for rel in [
            ".claude/skills",
            "skills",
            ".config/my-skills",
            ".local/share/skills",
            ".cursor/skills",
            "work/skills",
            // Only `lib`/`lib64` followed by `python…` is a Python library folder.
            "work/lib/skills",
            "work/python-skills",
        ] {
            assert!(!refused(rel), "{rel:?} was refused");
        }
    }

    #[test]
    fn every_agents_own_skills_folder_is_accepted_as_a_destination() {
        let home = Path::new("/nonexistent-home-for-kst-tests/u");
        for a in crate::agents::AGENTS {
            let d = a.skills_dir(true, home);
            let d = if d.is_absolute() { d } else { home.join(d) };
            if d.starts_with(home) {
                assert!(
                    check_global_destination(&d, "k.yaml:1", home).is_ok(),
                    "{} ({}) is refused",
                    a.id,
                    d.display()
                );
            }
        }
    }

    #[test]
    fn the_refusal_says_where_and_why() {
        let home = Path::new("/nonexistent-home-for-kst-tests/u");
        let e = check_global_destination(
            &home.join(".local/lib/python3.12/site-packages/x"),
            "/p/kasetto.yaml:2",
            home,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/p/kasetto.yaml:2: destination "), "{e}");
        assert!(e.contains("site-packages"), "{e}");
        assert!(e.contains("scope: project"), "{e}");
    }
}
