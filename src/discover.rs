//! Finding skills inside a pack (SPEC 3): a `SKILL.md` at the discovery root, `<dir>/SKILL.md`
//! for each top-level folder, and `skills/<dir>/SKILL.md`; then picking the configured ones.
//!
//! Discovery reads through [`PackView`], so the same rules apply to a local folder and to a
//! git tree in the object database.

use std::path::{Path, PathBuf};

use crate::pathsafe;
use crate::request::{Pick, Selection};
use crate::tree::{self, Budget, Tree};

/// Read-only access to a pack's files, by paths relative to the pack's root ('/'-separated).
pub trait PackView {
    fn is_file(&self, rel: &str) -> bool;
    /// Names of the folders directly inside `rel` (`""` for the root), sorted.
    fn subdirs(&self, rel: &str) -> Vec<String>;
    /// Names of the regular files directly inside `rel` (`""` for the root), sorted. Names
    /// that are not UTF-8 are left out, as in [`PackView::subdirs`].
    fn files(&self, rel: &str) -> Vec<String>;
    /// A small file's bytes (a `SKILL.md`), or None if it is not a regular file.
    fn read_file(&self, rel: &str) -> Option<Vec<u8>>;
    /// The full listing of the folder at `rel`, with its tree id, checked against SPEC 13.
    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree>;
}

/// A skill found in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// Path of the skill folder inside the pack ("" when the root itself is the skill).
    pub path: String,
    pub description: Option<String>,
    /// The `name` its SKILL.md declares, if any (read once, with the description).
    pub declared: Option<String>,
    /// Why its SKILL.md cannot be used (a frontmatter too big or too deep): the skill is broken.
    pub problem: Option<String>,
}

/// The outcome of selecting skills: those found, and the named ones that were not.
#[derive(Debug, Default)]
pub struct Picked {
    pub found: Vec<Found>,
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
}

use crate::tree::join_rel as join;

/// The largest SKILL.md frontmatter kst parses.
pub const MAX_FRONTMATTER_BYTES: usize = 64 << 10;
/// The deepest nesting of `[`/`{` a SKILL.md frontmatter may have.
pub const MAX_FRONTMATTER_DEPTH: usize = 32;

/// `name` and `description` from a SKILL.md's YAML frontmatter; absent or malformed → None.
/// A frontmatter too big (over 64 KiB) or nested too deep to parse quickly is an error, which
/// makes the skill broken: it is refused before the YAML parser sees it (a 100,000-deep
/// `[[[…` costs that parser minutes). Messages never quote the file.
pub fn frontmatter(text: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok((None, None));
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---")
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
    else {
        return Ok((None, None));
    };
    let end = rest.find("\n---").map(|i| i + 1).unwrap_or(rest.len());
    let yaml = &rest[..end];
    if yaml.len() > MAX_FRONTMATTER_BYTES {
        return Err(format!(
            "SKILL.md frontmatter is larger than {} KiB; kst does not parse it",
            MAX_FRONTMATTER_BYTES >> 10
        ));
    }
    let mut depth = 0usize;
    for b in yaml.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FRONTMATTER_DEPTH {
                    return Err(format!(
                        "SKILL.md frontmatter is nested deeper than {MAX_FRONTMATTER_DEPTH} \
                         levels; kst does not parse it"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(yaml) else {
        return Ok((None, None));
    };
    let get = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
    };
    Ok((get("name"), get("description")))
}

/// Read a SKILL.md's frontmatter through `view`: (declared name, description, problem).
fn read_frontmatter(
    view: &dyn PackView,
    rel: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    match view.read_file(rel).map(|b| frontmatter(&b)) {
        None => (None, None, None),
        Some(Ok((n, d))) => (n, d, None),
        Some(Err(e)) => (None, None, Some(e)),
    }
}

/// Every skill discoverable under `root`, in a stable order: the root skill, then top-level
/// folders, then `skills/*`. A name seen twice keeps its first place, with a warning.
pub fn discover(
    view: &dyn PackView,
    root: &str,
    fallback_root_name: &str,
) -> (Vec<Found>, Vec<String>) {
    let mut found: Vec<Found> = Vec::new();
    let mut warnings = Vec::new();
    // Where each name was first found, so a pack of n skills costs n lookups, not n²/2
    // comparisons (10,000 skills: 50 million).
    let mut first: std::collections::HashMap<String, usize> = Default::default();
    let mut push = |f: Found, found: &mut Vec<Found>| {
        if let Some(&at) = first.get(&f.name) {
            let prev: &Found = &found[at];
            warnings.push(format!(
                "skill {:?} found at {} and {}; using {}",
                f.name, prev.path, f.path, prev.path
            ));
        } else {
            first.insert(f.name.clone(), found.len());
            found.push(f);
        }
    };
    let root_md = join(root, "SKILL.md");
    if view.is_file(&root_md) {
        let (fm_name, description, problem) = read_frontmatter(view, &root_md);
        let name = fm_name
            .clone()
            .filter(|n| pathsafe::check_skill_name(n).is_ok())
            .unwrap_or_else(|| fallback_root_name.to_string());
        push(
            Found {
                name,
                path: root.to_string(),
                description,
                declared: fm_name,
                problem,
            },
            &mut found,
        );
    }
    for base in [root.to_string(), join(root, "skills")] {
        for dir in view.subdirs(&base) {
            let path = join(&base, &dir);
            if pathsafe::check_skill_name(&dir).is_err() || !view.is_file(&join(&path, "SKILL.md"))
            {
                continue;
            }
            let (declared, description, problem) = read_frontmatter(view, &join(&path, "SKILL.md"));
            push(
                Found {
                    name: dir,
                    path,
                    description,
                    declared,
                    problem,
                },
                &mut found,
            );
        }
    }
    (found, warnings)
}

/// Apply the config's selection to a pack.
pub fn pick(
    view: &dyn PackView,
    root: &str,
    fallback_root_name: &str,
    selection: &Selection,
) -> Picked {
    let (all, mut warnings) = discover(view, root, fallback_root_name);
    let mut out = Picked::default();
    match selection {
        Selection::All => out.found = all,
        Selection::Named(picks) => {
            // Names are unique in `all` (discover keeps the first of each).
            let by_name: std::collections::HashMap<&str, &Found> =
                all.iter().map(|f| (f.name.as_str(), f)).collect();
            for Pick { name, path } in picks {
                let hit = match path {
                    Some(p) => {
                        let dir = join(&join(root, p), name);
                        view.is_file(&join(&dir, "SKILL.md")).then(|| {
                            let (declared, description, problem) =
                                read_frontmatter(view, &join(&dir, "SKILL.md"));
                            Found {
                                name: name.clone(),
                                path: dir.clone(),
                                description,
                                declared,
                                problem,
                            }
                        })
                    }
                    None => by_name.get(name.as_str()).map(|&f| f.clone()),
                };
                match hit {
                    Some(f) => out.found.push(f),
                    None => out.missing.push(name.clone()),
                }
            }
        }
    }
    // The folder name is the install name; a different frontmatter name confuses agents.
    for f in &out.found {
        if let Some(fm) = &f.declared
            && *fm != f.name
            && !f.path.is_empty()
        {
            warnings.push(format!(
                "skill {:?}: SKILL.md says name {fm:?}; installing as {:?}",
                f.name, f.name
            ));
        }
    }
    out.warnings = warnings;
    out
}

/// A local folder as a pack.
pub struct DiskPack {
    pub root: PathBuf,
    /// When set (a config found in the working directory that the user has not trusted), the
    /// folder it may read from (the project, canonical): anything whose real path leaves it,
    /// through a symlink in the pack, is read as absent (SPEC 3 "Trust").
    pub within: Option<PathBuf>,
}

impl DiskPack {
    /// A local source folder as a pack, checked the same way for every kind: it is a folder,
    /// and its discovery root (`sub_dir`, if any) is a folder inside it. Returns the pack and
    /// the root (`""` for none); `within` as in [`DiskPack::within`].
    pub fn open(
        path: &Path,
        sub_dir: Option<&str>,
        within: Option<&Path>,
    ) -> Result<(DiskPack, String), String> {
        if !path.is_dir() {
            return Err(format!("local source {} is not a folder", path.display()));
        }
        let root = sub_dir.unwrap_or_default().to_string();
        if !root.is_empty() && !path.join(&root).is_dir() {
            return Err(format!(
                "sub-dir {root:?} does not exist in {}",
                path.display()
            ));
        }
        let pack = DiskPack {
            root: path.to_path_buf(),
            within: within.map(Path::to_path_buf),
        };
        Ok((pack, root))
    }

    fn at(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Whether `p` may be read: always, or, when confined, if its real path is inside.
    fn allowed(&self, p: &Path) -> bool {
        match &self.within {
            None => true,
            Some(w) => std::fs::canonicalize(p).is_ok_and(|r| r.starts_with(w)),
        }
    }
}

impl PackView for DiskPack {
    fn is_file(&self, rel: &str) -> bool {
        let p = self.at(rel);
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) && self.allowed(&p)
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        if !self.allowed(&self.at(rel)) {
            return Vec::new();
        }
        let mut out: Vec<String> = std::fs::read_dir(self.at(rel))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn files(&self, rel: &str) -> Vec<String> {
        if !self.allowed(&self.at(rel)) {
            return Vec::new();
        }
        let mut out: Vec<String> = std::fs::read_dir(self.at(rel))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| self.allowed(&self.at(rel).join(n)))
            .collect();
        out.sort();
        out
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        if !self.is_file(rel) {
            return None;
        }
        crate::failpoint::count(crate::failpoint::Counter::FileRead);
        // Bounded like a git pack's SKILL.md; a bigger one is read as having no frontmatter.
        crate::fsx::read_input_bytes(&self.at(rel), crate::git::MAX_SKILL_MD as u64, None).ok()
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree> {
        self.list_with(rel, budget, &tree::HashContents)
    }
}

impl DiskPack {
    /// [`PackView::list`], with each regular file's blob id from `ids`.
    fn list_with(
        &self,
        rel: &str,
        budget: &mut Budget,
        ids: &dyn tree::BlobIds,
    ) -> anyhow::Result<Tree> {
        let p = self.at(rel);
        if !self.allowed(&p) {
            anyhow::bail!(
                "{} leads outside the project (through a symlink); a config found in the working \
                 directory that you have not trusted may read only inside its project",
                p.display()
            );
        }
        tree::read_disk_with(&p, budget, ids)
    }
}

/// A local source folder as a pack, listed through a stat cache (SPEC 14: a no-op reads no
/// file contents, for local sources too): a file whose `lstat` data are what they were when its
/// contents were last hashed is not read again, with git's racy rule (`statcache`). What
/// `kst verify` uses is [`DiskPack`], which reads every byte. The cache is written when this
/// value is dropped.
pub struct CachedDiskPack {
    disk: DiskPack,
    stat: Option<crate::statcache::StatCache>,
}

impl CachedDiskPack {
    /// [`DiskPack::open`], with the folder's stat cache under the cache root (none if there is
    /// no cache root: then every file is hashed).
    pub fn open(
        path: &Path,
        sub_dir: Option<&str>,
        within: Option<&Path>,
    ) -> Result<(CachedDiskPack, String), String> {
        let (disk, root) = DiskPack::open(path, sub_dir, within)?;
        let stat = crate::dirs::cache_root()
            .ok()
            .map(|cache| crate::statcache::StatCache::for_source(&cache, &disk.root));
        Ok((CachedDiskPack { disk, stat }, root))
    }
}

impl PackView for CachedDiskPack {
    fn is_file(&self, rel: &str) -> bool {
        self.disk.is_file(rel)
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        self.disk.subdirs(rel)
    }

    fn files(&self, rel: &str) -> Vec<String> {
        self.disk.files(rel)
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        self.disk.read_file(rel)
    }

    fn list(&self, rel: &str, budget: &mut Budget) -> anyhow::Result<Tree> {
        let Some(stat) = &self.stat else {
            return self.disk.list(rel, budget);
        };
        let ids = stat.skill(rel);
        let tree = self.disk.list_with(rel, budget, &ids)?;
        // Only a complete listing updates the skill's section.
        ids.keep();
        Ok(tree)
    }
}

impl Drop for CachedDiskPack {
    fn drop(&mut self) {
        if let Some(stat) = &self.stat {
            stat.save();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn discovery_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for d in ["a", "skills/b", "skills/a", "not-a-skill"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(
            r.join("a/SKILL.md"),
            "---\nname: a\ndescription: first\n---\n",
        )
        .unwrap();
        fs::write(r.join("skills/a/SKILL.md"), "---\nname: a\n---\n").unwrap();
        fs::write(r.join("skills/b/SKILL.md"), "---\nname: bee\n---\n").unwrap();
        let view = DiskPack {
            root: r.to_path_buf(),
            within: None,
        };
        let (found, warnings) = discover(&view, "", "pack");
        let names: Vec<_> = found
            .iter()
            .map(|f| (f.name.as_str(), f.path.as_str()))
            .collect();
        assert_eq!(names, [("a", "a"), ("b", "skills/b")]);
        assert_eq!(found[0].description.as_deref(), Some("first"));
        assert_eq!(warnings.len(), 1);

        let picked = pick(
            &view,
            "",
            "pack",
            &Selection::Named(vec![
                Pick {
                    name: "b".into(),
                    path: None,
                },
                Pick {
                    name: "zzz".into(),
                    path: None,
                },
            ]),
        );
        assert_eq!(picked.found.len(), 1);
        assert_eq!(picked.missing, ["zzz"]);
        assert!(picked.warnings.iter().any(|w| w.contains("bee")));
    }

    #[test]
    fn frontmatter_parsing() {
        assert_eq!(
            frontmatter(b"---\nname: x\ndescription: y z\n---\nbody"),
            Ok((Some("x".into()), Some("y z".into())))
        );
        assert_eq!(frontmatter(b"no frontmatter"), Ok((None, None)));
        assert_eq!(frontmatter(b"---\n: : bad\n"), Ok((None, None)));
    }

    #[test]
    fn huge_or_deep_frontmatter_is_refused_before_parsing() {
        let deep = format!("---\nname: x\ndescription: {}\n---\n", "[".repeat(100_000));
        let e = frontmatter(deep.as_bytes()).unwrap_err();
        assert!(e.contains("larger than 64 KiB"), "{e}");
        // Under the size cap but deep: refused by the depth check, not parsed.
        let deep = format!("---\nname: x\ndescription: {}\n---\n", "[".repeat(60_000));
        let e = frontmatter(deep.as_bytes()).unwrap_err();
        assert!(e.contains("nested deeper than 32"), "{e}");
        assert!(!e.contains("[["), "{e}");
        // Ordinary brackets are fine.
        assert_eq!(
            frontmatter(b"---\nname: x\ndescription: use [a] or {b}\ntags: [[1, 2], [3]]\n---\n"),
            Ok((Some("x".into()), Some("use [a] or {b}".into())))
        );
    }
}
