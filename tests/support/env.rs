//! `TestEnv`: a hermetic per-test environment, plus filesystem helpers
//! (writing files, byte-for-byte directory snapshots, secret scanning).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A temp dir laid out as:
///
/// ```text
/// <root>/home         HOME
/// <root>/xdg_config   XDG_CONFIG_HOME
/// <root>/xdg_cache    XDG_CACHE_HOME
/// <root>/xdg_data     XDG_DATA_HOME
/// <root>/cache        KASETTO_CACHE_DIR
/// <root>/project      current dir of `kst()`
/// <root>/remotes      a place for fixture repos (base path for the servers)
/// ```
///
/// The directory is deleted when the `TestEnv` is dropped.
pub struct TestEnv {
    dir: TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("kst-test-")
            .tempdir()
            .expect("create temp dir");
        let env = TestEnv { dir };
        for d in [
            env.home(),
            env.xdg_config(),
            env.xdg_cache(),
            env.xdg_data(),
            env.project(),
            env.remotes(),
        ] {
            fs::create_dir_all(&d).expect("create test env dir");
        }
        // `cache/` is deliberately NOT created: kst must create it (0700 + CACHEDIR.TAG).
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    pub fn xdg_config(&self) -> PathBuf {
        self.root().join("xdg_config")
    }
    pub fn xdg_cache(&self) -> PathBuf {
        self.root().join("xdg_cache")
    }
    pub fn xdg_data(&self) -> PathBuf {
        self.root().join("xdg_data")
    }
    /// `KASETTO_CACHE_DIR`. Not created by `new()`.
    pub fn cache(&self) -> PathBuf {
        self.root().join("cache")
    }
    pub fn project(&self) -> PathBuf {
        self.root().join("project")
    }
    /// Where tests put fixture repos; serve it with `GitDaemon`/`HttpGitServer`.
    pub fn remotes(&self) -> PathBuf {
        self.root().join("remotes")
    }

    /// `<root>/<rel>`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root().join(rel)
    }
    /// `<home>/<rel>`.
    pub fn home_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.home().join(rel)
    }
    /// `<project>/<rel>`.
    pub fn project_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.project().join(rel)
    }

    /// The exact environment every child gets (nothing else is inherited).
    pub fn hermetic_vars(&self) -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = Vec::new();
        // PATH is needed to find `git` etc.; it carries no secrets.
        if let Some(path) = std::env::var_os("PATH") {
            vars.push(("PATH".into(), path));
        }
        let mut set = |k: &str, v: OsString| vars.push((k.into(), v));
        set("HOME", self.home().into());
        set("XDG_CONFIG_HOME", self.xdg_config().into());
        set("XDG_CACHE_HOME", self.xdg_cache().into());
        set("XDG_DATA_HOME", self.xdg_data().into());
        set("KASETTO_CACHE_DIR", self.cache().into());
        // Isolate git config from the machine (libgit2 honours these too).
        set("GIT_CONFIG_NOSYSTEM", "1".into());
        set("GIT_CONFIG_GLOBAL", "/dev/null".into());
        set("NO_COLOR", "1".into());
        vars
    }

    /// `kst` with a cleared environment plus `hermetic_vars()`, run in `project/`.
    /// Add test-specific variables (tokens, `KASETTO_OFFLINE`, ...) with `.env()`.
    pub fn kst(&self) -> assert_cmd::Command {
        self.bin(env!("CARGO_BIN_EXE_kst"))
    }

    /// `kst trust` the project's `kasetto.yaml` as it is now, as a user does after reading
    /// it: a config found in the working directory needs it to have secrets resolved (and to
    /// work on the global scope). Call it again after each change to the file.
    pub fn trust_project_config(&self) {
        self.kst().arg("trust").assert().success();
    }

    /// Same as `kst()` but for the `kasetto` alias binary.
    pub fn kasetto(&self) -> assert_cmd::Command {
        self.bin(env!("CARGO_BIN_EXE_kasetto"))
    }

    fn bin(&self, path: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(path);
        cmd.env_clear();
        for (k, v) in self.hermetic_vars() {
            cmd.env(k, v);
        }
        cmd.current_dir(self.project());
        cmd
    }

    /// Any program with the same hermetic environment, run in `project/`.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear();
        for (k, v) in self.hermetic_vars() {
            cmd.env(k, v);
        }
        cmd.current_dir(self.project());
        cmd
    }

    /// The git CLI, hermetic, never prompting (a prompt would hang a test).
    pub fn git(&self) -> std::process::Command {
        let mut cmd = self.cmd("git");
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        cmd.env("GIT_ASKPASS", "/bin/false");
        cmd
    }

    /// Run the git CLI, panic with its output on failure, return trimmed stdout.
    pub fn git_ok(&self, args: &[&str]) -> String {
        run_ok(self.git().args(args))
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// Run a command, panic with stdout/stderr if it fails, return trimmed stdout.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Write a file (mode as created by the umask, normally 0644), creating parents.
pub fn write_file(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
    let path = path.as_ref();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Write a file with mode 0755, creating parents.
pub fn write_executable(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
    let path = path.as_ref();
    write_file(path, contents);
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

/// Create a symlink at `link` pointing to `target` (not resolved), creating parents.
pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    let link = link.as_ref();
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).expect("mkdir for symlink");
    }
    std::os::unix::fs::symlink(target.as_ref(), link)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

/// One entry of a `Snapshot`. Modes are the permission bits (`& 0o7777`).
#[derive(Clone, PartialEq, Eq)]
pub enum SnapEntry {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        bytes: Vec<u8>,
    },
    /// Symlinks are never followed; only the target text is recorded.
    Symlink {
        target: PathBuf,
    },
    /// Fifo, socket, device...
    Other {
        mode: u32,
    },
}

impl fmt::Debug for SnapEntry {
    // Print a digestible summary rather than megabytes of bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapEntry::Dir { mode } => write!(f, "dir {mode:o}"),
            SnapEntry::File { mode, bytes } => {
                let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
                    .chars()
                    .map(|c| if c.is_control() { '.' } else { c })
                    .collect();
                write!(f, "file {mode:o} {} bytes {preview:?}", bytes.len())
            }
            SnapEntry::Symlink { target } => write!(f, "symlink -> {}", target.display()),
            SnapEntry::Other { mode } => write!(f, "other {mode:o}"),
        }
    }
}

/// Relative path (with `/`, root is `"."`) → entry.
pub type Snapshot = BTreeMap<String, SnapEntry>;

/// Record every entry under `dir` (including `dir` itself as `"."`) byte-for-byte,
/// with permission bits, without following symlinks. A missing `dir` gives an
/// empty snapshot, so "did not exist before and after" compares equal.
pub fn read_tree_snapshot(dir: impl AsRef<Path>) -> Snapshot {
    let dir = dir.as_ref();
    let mut out = Snapshot::new();
    if fs::symlink_metadata(dir).is_err() {
        return out;
    }
    snapshot_into(dir, ".", &mut out);
    out
}

fn snapshot_into(path: &Path, rel: &str, out: &mut Snapshot) {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let mode = md.permissions().mode() & 0o7777;
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).expect("readlink");
        out.insert(rel.to_string(), SnapEntry::Symlink { target });
    } else if ft.is_file() {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        out.insert(rel.to_string(), SnapEntry::File { mode, bytes });
    } else if ft.is_dir() {
        out.insert(rel.to_string(), SnapEntry::Dir { mode });
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("readdir {}: {e}", path.display()))
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let name_s = name.to_string_lossy();
            let child_rel = if rel == "." {
                name_s.to_string()
            } else {
                format!("{rel}/{name_s}")
            };
            snapshot_into(&path.join(&name), &child_rel, out);
        }
    } else {
        out.insert(rel.to_string(), SnapEntry::Other { mode });
    }
}

/// Panic with a readable list of added / removed / changed paths if the snapshots differ.
#[track_caller]
pub fn assert_snapshots_eq(before: &Snapshot, after: &Snapshot) {
    if before == after {
        return;
    }
    let mut msg = String::from("directory changed:\n");
    for (k, v) in before {
        match after.get(k) {
            None => msg.push_str(&format!("  - removed {k}: {v:?}\n")),
            Some(a) if a != v => msg.push_str(&format!("  ~ changed {k}: {v:?} => {a:?}\n")),
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            msg.push_str(&format!("  + added   {k}: {v:?}\n"));
        }
    }
    panic!("{msg}");
}

/// Every path under `dir` whose file contents, name or symlink target contains
/// `needle` (symlinks not followed). Used to prove a sentinel token leaked nowhere.
pub fn find_bytes_in_tree(dir: impl AsRef<Path>, needle: &[u8]) -> Vec<String> {
    assert!(!needle.is_empty());
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let mut hits = Vec::new();
    for (rel, entry) in read_tree_snapshot(dir) {
        let hit = contains(rel.as_bytes())
            || match &entry {
                SnapEntry::File { bytes, .. } => contains(bytes),
                SnapEntry::Symlink { target } => contains(target.as_os_str().as_encoded_bytes()),
                _ => false,
            };
        if hit {
            hits.push(rel);
        }
    }
    hits
}
