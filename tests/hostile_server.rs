//! Hostile git servers and remote strings (SPEC 13.4, 13.7, 13.8): a pack that inflates without
//! bound, a lock pinning a commit the repository lacks, control characters in anything that
//! came from outside.

use crate::support::*;

fn config(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: \"*\"\n"
        ),
    );
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Folders under the cache's `git/db` whose name marks a repository moved aside.
fn moved_aside(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.cache().join("git/db"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect()
}

/// A lock pinning a commit the repository does not have: the healthy cache repository is not
/// "damaged" and is never moved aside; the error names the commit and the source.
#[test]
fn a_locked_commit_the_repository_lacks_is_not_cache_damage() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    config(&env, &repo.file_url());
    env.kst().arg("sync").assert().success();
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let real = repo.branch_tip("main").unwrap().to_string();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    assert!(lock.contains(&real), "lock has no commit: {lock}");
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&real, missing),
    );
    for run in 0..2 {
        let a = env.kst().arg("sync").assert().code(1);
        let err = stderr(&a);
        assert!(
            err.contains(missing),
            "run {run}: the commit is not named: {err}"
        );
        assert!(
            err.contains("remotes/pack"),
            "run {run}: the source is not named: {err}"
        );
        assert!(!err.contains("moved"), "run {run}: moved aside: {err}");
        assert_eq!(moved_aside(&env), Vec::<String>::new(), "run {run}: {err}");
    }
}

/// Neither is a branch the remote does not have, over git:// or file://.
#[test]
fn a_missing_branch_is_not_cache_damage() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    let d = GitDaemon::start(env.remotes());
    for url in [repo.file_url(), d.url("pack.git")] {
        config(&env, &url);
        env.kst().arg("sync").assert().success();
        write_file(
            env.project_path("kasetto.yaml"),
            format!(
                "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    branch: gone\n    skills: \"*\"\n"
            ),
        );
        for run in 0..2 {
            let a = env.kst().arg("sync").assert().code(1);
            let err = stderr(&a);
            assert!(
                err.contains("gone"),
                "{url} run {run}: the branch is not named: {err}"
            );
            assert!(
                !err.contains("moved"),
                "{url} run {run}: moved aside: {err}"
            );
            assert_eq!(
                moved_aside(&env),
                Vec::<String>::new(),
                "{url} run {run}: {err}"
            );
        }
    }
}

/// A pack with a tiny skill, and next to it a delta bomb: a 4 KiB blob and two deltas of a few
/// hundred bytes that build a 256 KiB and a 16 MiB blob. Returns the pack's size.
pub(crate) fn bomb_repo(env: &TestEnv) -> (FixtureRepo, usize) {
    let mut repo = FixtureRepo::init(env.remotes().join("bomb.git"));
    let (ids, pack_len) = crate::support::pack::write_delta_bomb(&repo, 4096, 64, 2);
    let tiny = repo.write_blob(skill_md("tiny", "a tiny skill").as_bytes());
    let bomb_md = repo.write_blob(skill_md("bomb", "a delta bomb").as_bytes());
    let tiny_tree = repo.write_raw_tree(&[("SKILL.md", MODE_BLOB, tiny)]);
    let bomb_tree = repo.write_raw_tree(&[
        ("0.bin", MODE_BLOB, ids[0]),
        ("1.bin", MODE_BLOB, ids[1]),
        ("2.bin", MODE_BLOB, ids[2]),
        ("SKILL.md", MODE_BLOB, bomb_md),
    ]);
    let skills = repo.write_raw_tree(&[
        ("bomb", MODE_TREE, bomb_tree),
        ("tiny", MODE_TREE, tiny_tree),
    ]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    (repo, pack_len)
}

fn config_only_tiny(env: &TestEnv, url: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: [tiny]\n"
        ),
    );
}

/// The delta bomb over git://, http:// and file:// with only the tiny skill selected: no object is built past the
/// file cap (lowered here to 4 MiB so the fixture stays small; the default is 100 MiB), the
/// fetch fails naming the cap and its variable, and the cache repository is not "damaged".
#[test]
fn a_delta_bomb_stops_at_the_file_cap_before_it_is_inflated() {
    let env = TestEnv::new();
    let (_repo, pack_len) = bomb_repo(&env);
    assert!(pack_len < 16 << 10, "the bomb pack is {pack_len} bytes");
    let d = GitDaemon::start(env.remotes());
    let h = HttpGitServer::start(env.remotes(), HttpOptions::default());
    for url in [d.url("bomb.git"), h.url("bomb.git"), _repo.file_url()] {
        config_only_tiny(&env, &url);
        let a = env
            .kst()
            .arg("sync")
            .env("KASETTO_MAX_FILE_BYTES", (4u64 << 20).to_string())
            .assert()
            .code(1);
        let err = stderr(&a);
        assert!(
            err.contains("KASETTO_MAX_FILE_BYTES")
                && err.contains("inflates to more than 4194304 bytes"),
            "{url}: the cap is not named: {err}\n{}",
            d.log()
        );
        assert!(!err.contains("moved"), "{url}: moved aside: {err}");
        assert_eq!(moved_aside(&env), Vec::<String>::new(), "{url}: {err}");
        assert!(
            !env.project_path(".claude/skills/tiny").exists(),
            "{url}: installed from a refused pack: {err}"
        );
        // The stopped transfer left no pack, temporary or whole, in the cache.
        let packs: Vec<String> = read_tree_snapshot(env.cache())
            .keys()
            .filter(|p| p.contains("pack_git2") || p.ends_with(".pack"))
            .cloned()
            .collect();
        assert_eq!(packs, Vec::<String>::new(), "{url}");
    }
}

/// More bytes received than KASETTO_MAX_FETCH_BYTES: the transfer stops and says which cap.
#[test]
fn a_fetch_stops_past_the_byte_cap() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("big.git"));
    // 256 KiB that zlib cannot shrink.
    let mut x = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..256 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut files = skill_pack("skills", &[("tiny", "a tiny skill")]);
    files.push(("data/noise.bin".into(), FileSpec::file(noise)));
    repo.commit("main", &files);
    let d = GitDaemon::start(env.remotes());
    config_only_tiny(&env, &d.url("big.git"));
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FETCH_BYTES", "65536")
        .assert()
        .code(1);
    let err = stderr(&a);
    assert!(
        err.contains("KASETTO_MAX_FETCH_BYTES") && err.contains("more than 65536 bytes"),
        "the cap is not named: {err}"
    );
    assert_eq!(moved_aside(&env), Vec::<String>::new(), "{err}");
    // Under the default caps the same fetch goes through.
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/tiny/SKILL.md").is_file());
}

/// A pack announcing more objects than KASETTO_MAX_FETCH_OBJECTS stops at its header.
#[test]
fn a_fetch_stops_past_the_object_cap() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("many.git"));
    repo.commit(
        "main",
        &skill_pack("skills", &[("a", "one"), ("b", "two"), ("c", "three")]),
    );
    let d = GitDaemon::start(env.remotes());
    config(&env, &d.url("many.git"));
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FETCH_OBJECTS", "4")
        .assert()
        .code(1);
    let err = stderr(&a);
    assert!(
        err.contains("KASETTO_MAX_FETCH_OBJECTS") && err.contains("more than 4 objects"),
        "the cap is not named: {err}"
    );
    assert_eq!(moved_aside(&env), Vec::<String>::new(), "{err}");
}

/// Raw terminal controls in `bytes`: C0 other than newline and tab, DEL, C1 (U+0080–U+009F).
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect()
}

/// Outside strings holding terminal escapes — an OSC 52 clipboard write and a screen clear
/// (ESC [2J, and its 8-bit form CSI U+009B) — in a branch name the server advertises, a skill
/// folder name, a frontmatter name and description: none reaches stderr or stdout raw, in human
/// or JSON mode, and the JSON stays valid.
#[test]
fn escape_sequences_from_a_remote_never_reach_the_terminal() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("esc.git"));
    let osc52 = "\u{1b}]52;c;cm0gLXJmIH4K\u{7}";
    let md = |name: &str| {
        format!(
            "---\nname: \"{name}\"\ndescription: \"clip \\e]52;c;cm0gLXJmIH4K\\a clear \\e[2J\\x9b2J \\r over\"\n---\n# body\n"
        )
    };
    let good = repo.write_blob(md("good").as_bytes());
    let renamed = repo.write_blob(md("re\\e[2Jnamed").as_bytes());
    let good_tree = repo.write_raw_tree(&[("SKILL.md", MODE_BLOB, good)]);
    let renamed_tree = repo.write_raw_tree(&[("SKILL.md", MODE_BLOB, renamed)]);
    let evil_name = format!("evil{osc52}\u{1b}[2J");
    let skills = repo.write_raw_tree(&[
        (evil_name.as_str(), MODE_TREE, good_tree),
        ("good", MODE_TREE, good_tree),
        ("renamed", MODE_TREE, renamed_tree),
    ]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    let c = repo.commit_tree("main", root);
    // A C1 CSI is a valid character in a git ref name.
    repo.set_branch("clear\u{9b}2J", c);
    let d = GitDaemon::start(env.remotes());
    let url = d.url("esc.git");
    let check = |what: &str, out: &std::process::Output, json: bool| {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let raw = raw_controls(bytes);
            assert!(
                raw.is_empty(),
                "{what}: raw {raw:?} on {stream}:\n{}",
                String::from_utf8_lossy(bytes).escape_debug()
            );
        }
        if json {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{what}: stdout is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            assert!(doc.is_object(), "{what}: {doc}");
        }
    };
    // A ref that does not exist: the error lists the advertised branches.
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    ref: nope\n    skills: \"*\"\n"
        ),
    );
    for json in [false, true] {
        let mut cmd = env.kst();
        cmd.arg("sync");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !json {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("clear\\u{9b}2J"),
                "the branch is not shown escaped: {err}"
            );
        }
        check(&format!("ref: nope, json {json}"), &out, json);
    }
    // Every skill: a hostile folder name, a hostile frontmatter name and description (the
    // description is in the JSON of a fresh sync).
    config(&env, &url);
    for args in [
        &["sync", "--json"][..],
        &["sync", "-v"],
        &["verify"],
        &["verify", "--json"],
    ] {
        let out = env.kst().args(args).output().unwrap();
        check(&format!("{args:?}"), &out, args.contains(&"--json"));
    }
    // A skill named in the (cloned) config that does not exist: reported broken, by name.
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {url}\n    skills: [good, \"evil\\e]52;c;cm0gLXJmIH4K\\a\\e[2J\"]\n"
        ),
    );
    for args in [&["sync"][..], &["sync", "--json"]] {
        let out = env.kst().args(args).output().unwrap();
        assert_ne!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check(
            &format!("missing skill {args:?}"),
            &out,
            args.contains(&"--json"),
        );
    }
}

/// A lock naming an object the cache has, but that is not a commit (a tree or blob id): a wrong
/// lock, not a damaged cache repository.
#[test]
fn a_locked_id_that_is_not_a_commit_is_not_cache_damage() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let c = repo.commit("main", &skill_pack("skills", &[("pdf", "PDF tools")]));
    config(&env, &repo.file_url());
    env.kst().arg("sync").assert().success();
    let lock = std::fs::read_to_string(env.project_path("kasetto.lock")).unwrap();
    let tree = repo.git2().find_commit(c).unwrap().tree_id().to_string();
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&c.to_string(), &tree),
    );
    for run in 0..2 {
        let a = env.kst().arg("sync").assert().code(1);
        let err = stderr(&a);
        assert!(
            err.contains(&format!("{tree} is a tree, not a commit")),
            "run {run}: {err}"
        );
        assert!(!err.contains("moved"), "run {run}: moved aside: {err}");
        assert_eq!(moved_aside(&env), Vec::<String>::new(), "run {run}: {err}");
    }
}

/// A hostile git:// server (protocol v0), for what `git daemon` will not send: on
/// `/refs.git` it advertises ref names holding raw ESC and BEL bytes; on `/err.git` it answers
/// with an `ERR` packet holding them. Stops when dropped.
struct HostileGitServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

impl HostileGitServer {
    const OSC52: &'static str = "\u{1b}]52;c;cm0gLXJmIH4K\u{7}";

    fn start() -> HostileGitServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let mut len = [0u8; 4];
                if conn.read_exact(&mut len).is_err() {
                    continue;
                }
                let n = usize::from_str_radix(std::str::from_utf8(&len).unwrap_or("0"), 16)
                    .unwrap_or(0);
                let mut request = vec![0u8; n.saturating_sub(4)];
                let _ = conn.read_exact(&mut request);
                let request = String::from_utf8_lossy(&request).into_owned();
                let oid = "1111111111111111111111111111111111111111";
                let mut answer = Vec::new();
                if request.contains("/err.git") {
                    answer.extend(pkt(
                        format!("ERR {} go away\u{1b}[2J\n", Self::OSC52).as_bytes()
                    ));
                } else {
                    answer.extend(pkt(format!("{oid} refs/heads/main\0ofs-delta\n").as_bytes()));
                    answer.extend(pkt(
                        format!("{oid} refs/heads/x{}\u{1b}[2J\n", Self::OSC52).as_bytes()
                    ));
                    answer.extend(pkt(format!("{oid} refs/tags/t\u{9b}2J\n").as_bytes()));
                    answer.extend(b"0000");
                }
                let _ = conn.write_all(&answer);
                // Whatever the client says next (a flush, wants), then it hangs up.
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink);
            }
        });
        HostileGitServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for HostileGitServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Raw ESC and BEL bytes in ref names a server advertises, and in the message of an `ERR`
/// packet: escaped on stderr, valid JSON on stdout.
#[test]
fn escape_sequences_in_advertised_refs_and_server_errors_are_escaped() {
    let env = TestEnv::new();
    let server = HostileGitServer::start();
    for (repo, reference, shows) in [
        (
            "refs.git",
            "    ref: nope\n",
            "x\\x1b]52;c;cm0gLXJmIH4K\\x07\\x1b[2J",
        ),
        (
            "err.git",
            "",
            "\\x1b]52;c;cm0gLXJmIH4K\\x07 go away\\x1b[2J",
        ),
    ] {
        write_file(
            env.project_path("kasetto.yaml"),
            format!(
                "agent: claude-code\nscope: project\nskills:\n  - source: {}\n{reference}    skills: \"*\"\n",
                server.url(repo)
            ),
        );
        let out = env.kst().arg("sync").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{repo}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            raw_controls(&out.stderr),
            Vec::<String>::new(),
            "{repo}: {}",
            err.escape_debug()
        );
        assert!(
            err.contains(shows),
            "{repo}: the server's text is not shown escaped: {err}"
        );
        let out = env.kst().args(["sync", "--json"]).output().unwrap();
        assert_eq!(raw_controls(&out.stdout), Vec::<String>::new(), "{repo}");
        assert_eq!(raw_controls(&out.stderr), Vec::<String>::new(), "{repo}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{repo}: not JSON ({e})"));
        assert!(doc.to_string().contains("52;c;"), "{repo}: {doc}");
    }
}
