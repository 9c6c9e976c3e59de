//! Deterministic fixture git repositories built with git2.
//!
//! Repos are *bare* (servable as-is by `git daemon` and `git http-backend`).
//! Commits are written as raw objects with a fixed author/committer
//! ("Kasetto Test <test@example.invalid>") and a timestamp that advances 60 s per
//! object, starting from a fixed epoch, so the same sequence of calls always
//! yields the same commit ids — in any directory, on any machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use git2::{ObjectType, Oid, Repository, RepositoryInitOptions, Signature, Time};

pub const MODE_BLOB: u32 = 0o100644;
pub const MODE_EXEC: u32 = 0o100755;
pub const MODE_LINK: u32 = 0o120000;
pub const MODE_TREE: u32 = 0o040000;
pub const MODE_GITLINK: u32 = 0o160000;

pub const AUTHOR_NAME: &str = "Kasetto Test";
pub const AUTHOR_EMAIL: &str = "test@example.invalid";
/// 2023-11-14T22:13:20Z; every commit/annotated tag adds 60 s.
pub const BASE_TIME: i64 = 1_700_000_000;

/// Content of one path in a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSpec {
    /// Regular file, mode 100644.
    File(Vec<u8>),
    /// Executable file, mode 100755.
    Exec(Vec<u8>),
    /// Symlink (mode 120000) whose blob is the target text.
    Symlink(String),
}

impl FileSpec {
    pub fn file(contents: impl AsRef<[u8]>) -> FileSpec {
        FileSpec::File(contents.as_ref().to_vec())
    }
    pub fn exec(contents: impl AsRef<[u8]>) -> FileSpec {
        FileSpec::Exec(contents.as_ref().to_vec())
    }
    pub fn symlink(target: impl Into<String>) -> FileSpec {
        FileSpec::Symlink(target.into())
    }
    pub fn mode(&self) -> u32 {
        match self {
            FileSpec::File(_) => MODE_BLOB,
            FileSpec::Exec(_) => MODE_EXEC,
            FileSpec::Symlink(_) => MODE_LINK,
        }
    }
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileSpec::File(b) | FileSpec::Exec(b) => b,
            FileSpec::Symlink(t) => t.as_bytes(),
        }
    }
}

impl From<&str> for FileSpec {
    fn from(s: &str) -> Self {
        FileSpec::file(s)
    }
}
impl From<String> for FileSpec {
    fn from(s: String) -> Self {
        FileSpec::File(s.into_bytes())
    }
}
impl From<Vec<u8>> for FileSpec {
    fn from(b: Vec<u8>) -> Self {
        FileSpec::File(b)
    }
}

/// A `SKILL.md` with YAML frontmatter. The description is emitted as a
/// double-quoted YAML scalar so any text (colons, quotes) stays valid YAML.
pub fn skill_md(name: &str, description: &str) -> String {
    let mut quoted = String::from("\"");
    for c in description.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    format!("---\nname: {name}\ndescription: {quoted}\n---\n\n# {name}\n\n{description}\n")
}

/// Files for a pack of skills: `<dir>/<name>/SKILL.md` for each `(name, description)`.
/// Pass `dir = "skills"` for the conventional layout, `""` for skills at the root.
pub fn skill_pack(dir: &str, skills: &[(&str, &str)]) -> Vec<(String, FileSpec)> {
    skills
        .iter()
        .map(|(name, desc)| {
            let path = if dir.is_empty() {
                format!("{name}/SKILL.md")
            } else {
                format!("{}/{name}/SKILL.md", dir.trim_end_matches('/'))
            };
            (path, FileSpec::from(skill_md(name, desc)))
        })
        .collect()
}

/// Make libgit2 *in this test process* ignore the machine's global/XDG/system
/// git config (url.insteadOf, http.proxy, init.defaultBranch...). Idempotent.
/// Called by `FixtureRepo::init`; call it yourself before using git2 directly
/// in a test that doesn't create a fixture first.
pub fn isolate_libgit2_config() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let nowhere = std::env::temp_dir().join("kasetto-test-no-git-config");
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::ProgramData,
        ] {
            // SAFETY: done once, early, from a Once; all support helpers go through it.
            unsafe { git2::opts::set_search_path(level, nowhere.as_os_str()) }
                .expect("set libgit2 config search path");
        }
    });
}

/// In-memory tree used to build nested commits.
enum Node {
    Dir(BTreeMap<String, Node>),
    Leaf { oid: Oid, mode: u32 },
}

/// A bare fixture repository.
pub struct FixtureRepo {
    path: PathBuf,
    repo: Repository,
    /// Number of timestamped objects written so far (drives the fake clock).
    clock: i64,
}

impl FixtureRepo {
    /// Create a bare repo at `path` (parents created) with HEAD → `main` (unborn)
    /// and `uploadpack.allowAnySHA1InWant` / `allowReachableSHA1InWant` /
    /// `allowTipSHA1InWant` = true in its own config, so protocol-v0 clients
    /// (libgit2) may fetch a commit by SHA over git:// and http. Turn that off with
    /// `allow_sha1_in_want(false)` to test a client's fallback path.
    pub fn init(path: impl AsRef<Path>) -> FixtureRepo {
        isolate_libgit2_config();
        let path = path.as_ref().to_path_buf();
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).mkpath(true).initial_head("main");
        let repo = Repository::init_opts(&path, &opts)
            .unwrap_or_else(|e| panic!("init fixture repo {}: {e}", path.display()));
        let mut fx = FixtureRepo {
            path,
            repo,
            clock: 0,
        };
        fx.allow_sha1_in_want(true);
        fx.set_config("uploadpack.allowFilter", "true");
        fx
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `file:///abs/path` for this repo.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }
    pub fn git2(&self) -> &Repository {
        &self.repo
    }

    pub fn set_config(&mut self, key: &str, value: &str) {
        self.repo
            .config()
            .and_then(|mut c| c.set_str(key, value))
            .unwrap_or_else(|e| panic!("set {key}: {e}"));
    }

    /// Toggle the `uploadpack.allow*SHA1InWant` settings (see `init`).
    /// Note: protocol-v2 clients (the git CLI) may fetch any existing object
    /// regardless; these settings only constrain protocol v0/v1 (libgit2).
    pub fn allow_sha1_in_want(&mut self, allow: bool) {
        let v = if allow { "true" } else { "false" };
        for key in [
            "uploadpack.allowAnySHA1InWant",
            "uploadpack.allowReachableSHA1InWant",
            "uploadpack.allowTipSHA1InWant",
        ] {
            self.set_config(key, v);
        }
    }

    fn next_time(&mut self) -> i64 {
        let t = BASE_TIME + 60 * self.clock;
        self.clock += 1;
        t
    }

    /// The fixed signature at the next tick of the fake clock.
    pub fn signature(&mut self) -> Signature<'static> {
        let t = self.next_time();
        Signature::new(AUTHOR_NAME, AUTHOR_EMAIL, &Time::new(t, 0)).expect("signature")
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Oid {
        self.repo.blob(bytes).expect("write blob")
    }

    /// Current tip of `refs/heads/<branch>`, if any.
    pub fn branch_tip(&self, branch: &str) -> Option<Oid> {
        self.repo
            .find_reference(&format!("refs/heads/{branch}"))
            .ok()
            .and_then(|r| r.target())
    }

    /// Commit exactly `files` as the whole tree of `branch` (previous tip, if
    /// any, is the parent). Nested paths (`a/b/c`) create subtrees.
    pub fn commit<P: AsRef<str>>(&mut self, branch: &str, files: &[(P, FileSpec)]) -> Oid {
        self.commit_files(branch, files)
    }

    /// Same as `commit`: full tree replacement.
    pub fn commit_files<P: AsRef<str>>(&mut self, branch: &str, files: &[(P, FileSpec)]) -> Oid {
        let msg = format!("commit {}", self.clock + 1);
        self.commit_files_msg(branch, files, &msg)
    }

    /// `commit_files` with an explicit message.
    pub fn commit_files_msg<P: AsRef<str>>(
        &mut self,
        branch: &str,
        files: &[(P, FileSpec)],
        message: &str,
    ) -> Oid {
        let mut root = BTreeMap::new();
        for (path, spec) in files {
            self.put(&mut root, path.as_ref(), spec);
        }
        let tree = self.write_node(&root);
        self.commit_tree_msg(branch, tree, message)
    }

    /// Modify the tip of `branch`: add/replace `put`, then delete `remove`
    /// (a file or a whole directory). Empty directories disappear.
    pub fn commit_update<P: AsRef<str>>(
        &mut self,
        branch: &str,
        put: &[(P, FileSpec)],
        remove: &[&str],
    ) -> Oid {
        let mut root = match self.branch_tip(branch) {
            Some(tip) => {
                let tree = self.repo.find_commit(tip).expect("tip commit").tree_id();
                self.load_tree(tree)
            }
            None => BTreeMap::new(),
        };
        for (path, spec) in put {
            self.put(&mut root, path.as_ref(), spec);
        }
        for path in remove {
            remove_path(&mut root, path);
        }
        let tree = self.write_node(&root);
        let msg = format!("commit {}", self.clock + 1);
        self.commit_tree_msg(branch, tree, &msg)
    }

    /// Commit an existing tree (e.g. from `write_raw_tree`) on `branch`.
    pub fn commit_tree(&mut self, branch: &str, tree: Oid) -> Oid {
        let msg = format!("commit {}", self.clock + 1);
        self.commit_tree_msg(branch, tree, &msg)
    }

    /// Commit `tree` on `branch` with the tip as parent. The commit object is
    /// written raw, so the tree is never parsed or validated (adversarial trees
    /// are fine).
    pub fn commit_tree_msg(&mut self, branch: &str, tree: Oid, message: &str) -> Oid {
        let parents: Vec<Oid> = self.branch_tip(branch).into_iter().collect();
        let oid = self.write_raw_commit(tree, &parents, message);
        self.set_branch(branch, oid);
        oid
    }

    /// Write a commit object without touching any ref.
    pub fn write_raw_commit(&mut self, tree: Oid, parents: &[Oid], message: &str) -> Oid {
        let t = self.next_time();
        let mut body = format!("tree {tree}\n");
        for p in parents {
            let _ = writeln!(body, "parent {p}");
        }
        let _ = writeln!(body, "author {AUTHOR_NAME} <{AUTHOR_EMAIL}> {t} +0000");
        let _ = writeln!(body, "committer {AUTHOR_NAME} <{AUTHOR_EMAIL}> {t} +0000");
        body.push('\n');
        body.push_str(message);
        if !message.ends_with('\n') {
            body.push('\n');
        }
        self.repo
            .odb()
            .and_then(|odb| odb.write(ObjectType::Commit, body.as_bytes()))
            .expect("write commit")
    }

    /// Point `refs/heads/<branch>` at `oid` (force; e.g. to simulate a force-push).
    pub fn set_branch(&self, branch: &str, oid: Oid) {
        self.repo
            .reference(&format!("refs/heads/{branch}"), oid, true, "fixture")
            .unwrap_or_else(|e| panic!("update branch {branch}: {e}"));
    }

    pub fn delete_branch(&self, branch: &str) {
        self.repo
            .find_reference(&format!("refs/heads/{branch}"))
            .and_then(|mut r| r.delete())
            .unwrap_or_else(|e| panic!("delete branch {branch}: {e}"));
    }

    /// Make HEAD a symbolic ref to `refs/heads/<branch>` (the server's default branch).
    pub fn set_head(&self, branch: &str) {
        self.repo
            .set_head(&format!("refs/heads/{branch}"))
            .unwrap_or_else(|e| panic!("set HEAD to {branch}: {e}"));
    }

    /// Lightweight tag `refs/tags/<name>` → `target`. Returns `target`.
    pub fn tag(&self, name: &str, target: Oid) -> Oid {
        self.repo
            .reference(&format!("refs/tags/{name}"), target, true, "fixture")
            .unwrap_or_else(|e| panic!("tag {name}: {e}"));
        target
    }

    /// Annotated tag `refs/tags/<name>` → tag object → `target`. Returns the
    /// *tag object* id (peel with `rev_parse("<name>^{commit}")`).
    pub fn tag_annotated(&mut self, name: &str, target: Oid, message: &str) -> Oid {
        let sig = self.signature();
        let obj = self.repo.find_object(target, None).expect("tag target");
        self.repo
            .tag(name, &obj, &sig, message, true)
            .unwrap_or_else(|e| panic!("annotated tag {name}: {e}"))
    }

    /// `git rev-parse <spec>` (e.g. `"<commit>:skills/pdf"` → tree id).
    pub fn rev_parse(&self, spec: &str) -> Oid {
        self.repo
            .revparse_single(spec)
            .unwrap_or_else(|e| panic!("rev-parse {spec}: {e}"))
            .id()
    }

    /// Tree id of `path` inside `commit` (`""` = root tree).
    pub fn tree_id(&self, commit: Oid, path: &str) -> Oid {
        if path.is_empty() {
            self.rev_parse(&format!("{commit}^{{tree}}"))
        } else {
            self.rev_parse(&format!("{commit}:{path}"))
        }
    }

    /// Write a tree object byte-for-byte from `(name, mode, oid)` in the given
    /// order — no sorting, no validation — so tests can build trees the
    /// TreeBuilder refuses: `..`, `.git`, `a/b`, duplicates, unsorted entries,
    /// gitlinks (`MODE_GITLINK`) to missing commits... Names may be `&str` or `&[u8]`.
    pub fn write_raw_tree<N: AsRef<[u8]>>(&self, entries: &[(N, u32, Oid)]) -> Oid {
        let mut bytes = Vec::new();
        for (name, mode, oid) in entries {
            // git writes modes in octal without leading zeros ("40000" for trees).
            bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
            bytes.extend_from_slice(name.as_ref());
            bytes.push(0);
            bytes.extend_from_slice(oid.as_bytes());
        }
        self.repo
            .odb()
            .and_then(|odb| odb.write(ObjectType::Tree, &bytes))
            .expect("write raw tree")
    }

    // --- tree building -----------------------------------------------------

    fn put(&self, root: &mut BTreeMap<String, Node>, path: &str, spec: &FileSpec) {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        assert!(!parts.is_empty(), "empty path in fixture");
        let oid = self.write_blob(spec.bytes());
        let mut dir = root;
        for part in &parts[..parts.len() - 1] {
            let node = dir
                .entry(part.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            if let Node::Leaf { .. } = node {
                *node = Node::Dir(BTreeMap::new()); // a file becomes a directory
            }
            dir = match node {
                Node::Dir(d) => d,
                Node::Leaf { .. } => unreachable!(),
            };
        }
        dir.insert(
            parts[parts.len() - 1].to_string(),
            Node::Leaf {
                oid,
                mode: spec.mode(),
            },
        );
    }

    fn load_tree(&self, tree: Oid) -> BTreeMap<String, Node> {
        let tree = self.repo.find_tree(tree).expect("find tree");
        let mut out = BTreeMap::new();
        for e in tree.iter() {
            let name = e.name().expect("utf-8 tree entry name").to_string();
            let mode = e.filemode() as u32;
            let node = if mode == MODE_TREE {
                Node::Dir(self.load_tree(e.id()))
            } else {
                Node::Leaf { oid: e.id(), mode }
            };
            out.insert(name, node);
        }
        out
    }

    /// Write a directory bottom-up through TreeBuilder (which sorts entries
    /// git's way and validates names — use `write_raw_tree` to bypass).
    fn write_node(&self, dir: &BTreeMap<String, Node>) -> Oid {
        let mut tb = self.repo.treebuilder(None).expect("treebuilder");
        for (name, node) in dir {
            let (oid, mode) = match node {
                Node::Dir(d) => (self.write_node(d), MODE_TREE),
                Node::Leaf { oid, mode } => (*oid, *mode),
            };
            tb.insert(name, oid, mode as i32)
                .unwrap_or_else(|e| panic!("tree entry {name:?}: {e}"));
        }
        tb.write().expect("write tree")
    }
}

/// Delete `path` from the in-memory tree; prune directories left empty.
fn remove_path(dir: &mut BTreeMap<String, Node>, path: &str) -> bool {
    let (head, rest) = match path.trim_matches('/').split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path.trim_matches('/'), None),
    };
    match rest {
        None => {
            dir.remove(head);
        }
        Some(rest) => {
            if let Some(Node::Dir(sub)) = dir.get_mut(head)
                && remove_path(sub, rest)
            {
                dir.remove(head);
            }
        }
    }
    dir.is_empty()
}
