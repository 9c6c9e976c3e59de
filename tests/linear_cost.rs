//! No quadratic step (SPEC 14, issue 15), checked structurally, never by timing: a debug build
//! run with `KASETTO_DEBUG_COUNTERS=1` prints how many tree objects it read from the cache and
//! how many files' contents it read (`failpoint::count`).

use std::path::Path;

use crate::support::*;

const SKILLS: &str = ".claude/skills";

/// (tree reads, file reads) printed by a debug kst run with `KASETTO_DEBUG_COUNTERS=1`.
fn counters(out: &std::process::Output) -> (usize, usize) {
    (counter(out, "tree-reads"), counter(out, "file-reads"))
}

/// One value of the `kst-debug-counters:` line of a debug kst run.
pub(crate) fn counter(out: &std::process::Output, key: &str) -> usize {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("kst-debug-counters: "))
        .unwrap_or_else(|| panic!("no counters in the output:\n{err}"));
    let get = |key: &str| -> usize {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    get(key)
}

pub(crate) fn sync_counted(env: &TestEnv, args: &[&str]) -> (usize, usize) {
    counters(&sync_output(env, args))
}

/// A successful debug `kst sync ARGS` run with `KASETTO_DEBUG_COUNTERS=1`.
pub(crate) fn sync_output(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let out = env
        .kst()
        .arg("sync")
        .args(args)
        .env("KASETTO_DEBUG_COUNTERS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kst sync {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A monorepo: `n` skills under `skills/`, each with a SKILL.md and a nested file.
fn monorepo(env: &TestEnv, n: usize) -> String {
    let mut repo = FixtureRepo::init(env.remotes().join("mono.git"));
    let mut files = Vec::new();
    for i in 0..n {
        let name = format!("skill-{i:03}");
        files.push((
            format!("skills/{name}/SKILL.md"),
            FileSpec::File(skill_md(&name, "a skill").into_bytes()),
        ));
        files.push((
            format!("skills/{name}/reference/guide.md"),
            FileSpec::File(format!("# {name}\n").into_bytes()),
        ));
    }
    repo.commit_files("main", &files);
    format!("file://{}", env.remotes().join("mono.git").display())
}

fn config(env: &TestEnv, source: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {source}\n    skills: \"*\"\n"
        ),
    );
}

#[test]
fn a_monorepo_is_read_one_tree_at_a_time() {
    // Before: `Tree::get_path("skills/<name>")` re-read the whole `skills` tree for every skill
    // (libgit2 caches no tree over 4 KiB): O(skills × entries).
    for n in [10, 60] {
        let env = TestEnv::new();
        config(&env, &monorepo(&env, n));
        // Resolution reads the root, `skills/`, and each skill's folder once to find its
        // SKILL.md; listing a skill reads its own folders (not counted: they are read once).
        let (first, _) = sync_counted(&env, &[]);
        assert!(
            first <= n + 2,
            "{n} skills: {first} tree reads on the first sync (at most {})",
            n + 2
        );
        assert!(
            env.project_path(Path::new(SKILLS).join("skill-000"))
                .is_dir()
        );
        // The no-op checks every locked tree id against `<commit>:skills/<name>`: the root and
        // `skills/` are read once, whatever the number of skills.
        let (noop, _) = sync_counted(&env, &[]);
        assert!(
            noop <= 2,
            "{n} skills: {noop} tree reads on a no-op (the root and skills/ only)"
        );
        // An offline re-sync into an empty folder lists every skill: still one read of
        // `skills/`, not one per skill.
        std::fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
        let (offline, _) = sync_counted(&env, &["--offline"]);
        assert!(
            offline <= 2,
            "{n} skills: {offline} indexed tree reads on an offline re-sync"
        );
        assert!(
            env.project_path(Path::new(SKILLS).join("skill-000/reference/guide.md"))
                .is_file()
        );
    }
}

/// A local folder of `n` skills (`pack/skills/<name>/`: SKILL.md, a nested file, a script),
/// installed, settled past the racy window, and synced once more so the stat caches know every
/// file.
pub(crate) fn local_installed(env: &TestEnv, n: usize) {
    let pack = env.project_path("pack/skills");
    for i in 0..n {
        let name = format!("skill-{i:03}");
        write_file(
            pack.join(&name).join("SKILL.md"),
            skill_md(&name, "a skill"),
        );
        write_file(
            pack.join(&name).join("reference/guide.md"),
            "# guide\nline\n",
        );
        write_executable(
            pack.join(&name).join("scripts/run.sh"),
            "#!/bin/sh\necho hi\n",
        );
    }
    config(env, "./pack");
    sync_counted(env, &[]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    sync_counted(env, &[]);
}

pub(crate) fn sync_json(env: &TestEnv) -> Vec<(String, String)> {
    let out = env.kst().args(["sync", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<(String, String)> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_same_size_edit_of_a_local_source_is_installed() {
    // The edit keeps the size and even the mtime (as one within a timestamp tick would): the
    // ctime moved, so the stat cache does not vouch for the file.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let src = env.project_path("pack/skills/skill-001/reference/guide.md");
    let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    std::fs::write(&src, "# GUIDE\nline\n").unwrap();
    crate::perf_smoke::set_mtime(&src, mtime);
    assert_eq!(
        sync_json(&env),
        vec![
            ("skill-000".into(), "unchanged".into()),
            ("skill-001".into(), "updated".into())
        ]
    );
    let installed = env.project_path(Path::new(SKILLS).join("skill-001/reference/guide.md"));
    assert_eq!(
        std::fs::read_to_string(installed).unwrap(),
        "# GUIDE\nline\n"
    );
}

#[test]
fn a_racy_local_source_file_is_read_on_every_sync() {
    // A file whose mtime is not older than the moment kst would record it (here: in the future)
    // may change without its stat data moving: it is hashed on every sync, never cached.
    let env = TestEnv::new();
    local_installed(&env, 2);
    let racy = env.project_path("pack/skills/skill-000/reference/guide.md");
    crate::perf_smoke::set_mtime(
        &racy,
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let watch =
        crate::perf_smoke::OpenWatch::new(&env.project_path("pack/skills/skill-000/reference"));
    for round in 0..3 {
        sync_counted(&env, &[]);
        assert!(
            watch.opened().contains(&racy),
            "round {round}: the racy file was trusted from the stat cache"
        );
    }
}

/// A server repository that is itself shallow: a bare mirror made with `git clone --depth 1`
/// of a two-commit history.
fn shallow_mirror(env: &TestEnv) -> String {
    let mut repo = FixtureRepo::init(env.path("upstream.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools, v2")]));
    let mirror = env.remotes().join("shallow.git");
    env.git_ok(&[
        "clone",
        "--quiet",
        "--bare",
        "--depth",
        "1",
        &format!("file://{}", env.path("upstream.git").display()),
        mirror.to_str().unwrap(),
    ]);
    assert!(mirror.join("shallow").is_file(), "the mirror is shallow");
    "shallow.git".to_string()
}

#[test]
fn a_shallow_server_repository_is_a_clear_error() {
    // It advertises `shallow <id>` before its refs, which libgit2 1.9 cannot parse at any
    // depth (a full fetch fails the same way, so there is nothing to retry): the error says
    // what the likely cause is and what to do, and nothing is written.
    let env = TestEnv::new();
    let rel = shallow_mirror(&env);
    let daemon = GitDaemon::start(env.remotes());
    let http = HttpGitServer::start(env.remotes(), HttpOptions::default());
    for url in [daemon.url(&rel), http.url(&rel)] {
        config(&env, &url);
        let out = env.kst().args(["sync"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {err}");
        assert!(
            err.contains("kasetto.yaml:4") && err.contains(url.trim_end_matches(".git")),
            "{url}: the error names the config line and the source:\n{err}"
        );
        assert!(
            err.contains("itself shallow") && err.contains("git fetch --unshallow"),
            "{url}: the error names the cause and the fix:\n{err}"
        );
        assert!(
            !env.project_path(".claude").exists(),
            "{url}: nothing installed"
        );
        assert!(
            !env.project_path("kasetto.lock").exists(),
            "{url}: no lock written"
        );
    }
}

/// Deterministic bytes zlib cannot compress (xorshift64*), so a pack holds them at full size.
fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn an_offline_resync_keeps_little_of_a_large_pack_in_memory() {
    // 64 MiB of incompressible files in 16 skills: the cache's pack is about 64 MiB. libgit2
    // mapped packs in windows of 1 GiB, up to 8 GiB, and kept them mapped, so every page an
    // install read stayed resident: the re-sync's peak was the no-op's plus the whole pack.
    // With bounded windows (`git::setup`: 16 MiB mapped at most) it grows by far less than
    // the pack. Peaks are the process's own (`VmHWM`, printed by the debug counters); the
    // no-op, which reads no blob, is the baseline (the binary, the lock, the plan).
    const MIB: usize = 1 << 20;
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("big.git"));
    let mut files = Vec::new();
    for s in 0..16 {
        let name = format!("skill-{s:02}");
        files.push((
            format!("skills/{name}/SKILL.md"),
            FileSpec::File(skill_md(&name, "a large skill").into_bytes()),
        ));
        for f in 0..4 {
            files.push((
                format!("skills/{name}/data/blob-{f}.bin"),
                FileSpec::File(incompressible((s * 4 + f) as u64, MIB)),
            ));
        }
    }
    repo.commit_files("main", &files);
    drop(files);
    // Served by git's own upload-pack (libgit2's in-process one looks for deltas in 64 MiB
    // of random data, slowly, in a debug build).
    let daemon = GitDaemon::start(env.remotes());
    config(&env, &daemon.url("big.git"));
    sync_counted(&env, &[]);
    let pack_bytes: u64 = walk_files(&env.cache())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        pack_bytes >= 64 * MIB as u64,
        "the pack is {pack_bytes} bytes"
    );

    let noop = counter(&sync_output(&env, &["--offline"]), "peak-rss-kib");
    std::fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
    let resync = counter(&sync_output(&env, &["--offline"]), "peak-rss-kib");
    assert_eq!(
        std::fs::read(env.project_path(format!("{SKILLS}/skill-15/data/blob-3.bin"))).unwrap(),
        incompressible(63, MIB),
        "every file is installed"
    );
    assert!(
        noop > 0 && resync > 0,
        "peaks measured: {noop} / {resync} KiB"
    );
    let grew = resync.saturating_sub(noop) * 1024;
    assert!(
        grew < 32 * MIB,
        "re-syncing from a {} MiB pack took {} MiB more than a no-op ({} -> {} KiB; at most 32 MiB)",
        pack_bytes / MIB as u64,
        grew / MIB,
        noop,
        resync
    );
}

/// Every regular file under `dir`.
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).unwrap().flatten() {
        let t = item.file_type().unwrap();
        if t.is_dir() {
            out.extend(walk_files(&item.path()));
        } else if t.is_file() {
            out.push(item.path());
        }
    }
    out
}
