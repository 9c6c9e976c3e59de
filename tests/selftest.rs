//! Self-tests for tests/support: fixture repos, git daemon, http-backend server.
//! Proven with both the git CLI and git2 (libgit2, as used by kst).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::*;
use git2::{Cred, FetchOptions, Oid, RemoteCallbacks, Repository};

struct Fixture {
    repo: FixtureRepo,
    c1: Oid,
    c2: Oid,
    /// Annotated tag object of v2 (points at c2).
    v2_tag: Oid,
}

/// `remotes/pack.git`: two commits on `trunk` (HEAD → trunk), tag v1 (lightweight
/// → c1) and v2 (annotated → c2).
fn build_fixture(dir: &Path) -> Fixture {
    let mut repo = FixtureRepo::init(dir.join("pack.git"));
    let mut files = skill_pack(
        "skills",
        &[
            ("pdf", "Extract text: from PDFs"),
            ("docx", "Word \"docs\""),
        ],
    );
    files.push(("README.md".into(), FileSpec::file("# pack\n")));
    let c1 = repo.commit("trunk", &files);
    let c2 = repo.commit_update(
        "trunk",
        &[
            (
                "skills/pdf/scripts/run.sh",
                FileSpec::exec("#!/bin/sh\necho hi\n"),
            ),
            ("skills/pdf/link", FileSpec::symlink("../docx")),
        ],
        &["README.md"],
    );
    repo.tag("v1", c1);
    let v2_tag = repo.tag_annotated("v2", c2, "release 2\n");
    repo.set_head("trunk");
    Fixture {
        repo,
        c1,
        c2,
        v2_tag,
    }
}

// --- git2 helpers ----------------------------------------------------------

/// Fetch `refspecs` from `url` into a fresh bare repo, like kst does.
fn git2_fetch(
    dir: &Path,
    url: &str,
    refspecs: &[&str],
    depth: Option<i32>,
    creds: Option<(&str, &str)>,
) -> Result<Repository, git2::Error> {
    isolate_libgit2_config();
    let repo = Repository::init_bare(dir)?;
    let mut remote = repo.remote_anonymous(url)?;
    let mut cbs = RemoteCallbacks::new();
    let calls = AtomicUsize::new(0);
    cbs.credentials(move |_url, _user, _allowed| {
        // Offer credentials once; libgit2 would otherwise loop on a rejection.
        match creds {
            Some((u, p)) if calls.fetch_add(1, Ordering::SeqCst) == 0 => {
                Cred::userpass_plaintext(u, p)
            }
            _ => Err(git2::Error::from_str("no (more) credentials")),
        }
    });
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(cbs);
    if let Some(d) = depth {
        fo.depth(d);
    }
    remote.fetch(refspecs, Some(&mut fo), None)?;
    drop(remote);
    Ok(repo)
}

fn has_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok()
}

/// All transport checks for one URL (git CLI + git2), shared by both servers.
fn check_served(env: &TestEnv, fx: &Fixture, url: &str, tag: &str) {
    let (c1, c2) = (fx.c1.to_string(), fx.c2.to_string());

    // git ls-remote, protocol v2 (default) and v0.
    for proto in ["2", "0"] {
        let out = env.git_ok(&[
            "-c",
            &format!("protocol.version={proto}"),
            "ls-remote",
            "--symref",
            url,
        ]);
        assert!(
            out.contains("ref: refs/heads/trunk\tHEAD"),
            "v{proto}: {out}"
        );
        assert!(
            out.contains(&format!("{c2}\trefs/heads/trunk")),
            "v{proto}: {out}"
        );
        assert!(
            out.contains(&format!("{c1}\trefs/tags/v1")),
            "v{proto}: {out}"
        );
        assert!(
            out.contains(&format!("{}\trefs/tags/v2\n", fx.v2_tag)),
            "v{proto}: {out}"
        );
        assert!(
            out.contains(&format!("{c2}\trefs/tags/v2^{{}}")),
            "v{proto}: {out}"
        );
    }

    // git clone --depth 1: default branch is trunk, one commit, modes preserved.
    let clone = env.path(format!("clone-{tag}"));
    env.git_ok(&[
        "clone",
        "--quiet",
        "--depth",
        "1",
        url,
        clone.to_str().unwrap(),
    ]);
    let in_clone = |args: &[&str]| env.git_ok(&[&["-C", clone.to_str().unwrap()], args].concat());
    assert_eq!(in_clone(&["rev-parse", "HEAD"]), c2);
    assert_eq!(in_clone(&["rev-parse", "--abbrev-ref", "HEAD"]), "trunk");
    assert_eq!(in_clone(&["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(in_clone(&["rev-parse", "--is-shallow-repository"]), "true");
    let snap = read_tree_snapshot(&clone);
    assert!(
        matches!(&snap["skills/pdf/scripts/run.sh"], SnapEntry::File { mode, .. } if mode & 0o111 != 0)
    );
    assert!(
        matches!(&snap["skills/pdf/link"], SnapEntry::Symlink { target } if target == Path::new("../docx"))
    );
    assert!(!snap.contains_key("README.md"));

    // git CLI fetch of a non-tip commit by SHA, v2 and v0 (v0 needs allowAnySHA1InWant).
    for proto in ["2", "0"] {
        let bare = env.path(format!("cli-sha-{tag}-v{proto}.git"));
        env.git_ok(&["init", "--quiet", "--bare", bare.to_str().unwrap()]);
        env.git_ok(&[
            "-C",
            bare.to_str().unwrap(),
            "-c",
            &format!("protocol.version={proto}"),
            "fetch",
            "--quiet",
            "--depth",
            "1",
            url,
            &format!("+{c1}:refs/commit/{c1}"),
        ]);
        let got = env.git_ok(&[
            "-C",
            bare.to_str().unwrap(),
            "rev-parse",
            &format!("refs/commit/{c1}"),
        ]);
        assert_eq!(got, c1);
    }

    // git2: shallow fetch of the branch.
    let r = git2_fetch(
        &env.path(format!("g2-branch-{tag}.git")),
        url,
        &["+refs/heads/trunk:refs/remotes/origin/trunk"],
        Some(1),
        None,
    )
    .unwrap_or_else(|e| panic!("git2 shallow fetch from {url}: {e}"));
    assert!(has_commit(&r, fx.c2));
    assert!(!has_commit(&r, fx.c1), "depth 1 must not bring the parent");
    assert!(r.is_shallow());
    assert_eq!(r.refname_to_id("refs/remotes/origin/trunk").unwrap(), fx.c2);
    // The tree id in the fetched repo equals the fixture's (content identity).
    let pdf = r
        .find_commit(fx.c2)
        .unwrap()
        .tree()
        .unwrap()
        .get_path(Path::new("skills/pdf"))
        .unwrap()
        .id();
    assert_eq!(pdf, fx.repo.tree_id(fx.c2, "skills/pdf"));

    // git2: shallow fetch of a specific (non-tip) commit by SHA.
    let r = git2_fetch(
        &env.path(format!("g2-sha-{tag}.git")),
        url,
        &[&format!("+{c1}:refs/commit/{c1}")],
        Some(1),
        None,
    )
    .unwrap_or_else(|e| panic!("git2 fetch by sha from {url}: {e}"));
    assert!(has_commit(&r, fx.c1));
    assert!(!has_commit(&r, fx.c2));
    assert_eq!(
        r.refname_to_id(&format!("refs/commit/{c1}")).unwrap(),
        fx.c1
    );

    // git2: a tag only.
    let r = git2_fetch(
        &env.path(format!("g2-tag-{tag}.git")),
        url,
        &["+refs/tags/v2:refs/tags/v2"],
        Some(1),
        None,
    )
    .unwrap_or_else(|e| panic!("git2 tag fetch from {url}: {e}"));
    assert_eq!(r.revparse_single("v2^{commit}").unwrap().id(), fx.c2);
}

// --- servers ---------------------------------------------------------------

#[test]
fn git_daemon_serves_fixture() {
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let daemon = GitDaemon::start(env.remotes());
    let url = daemon.url("pack.git");
    assert!(url.starts_with("git://127.0.0.1:"));
    check_served(&env, &fx, &url, "daemon");
    // Unknown repo: a clear error, not a hang.
    let out = env
        .git()
        .args(["ls-remote", &daemon.url("nope.git")])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn git_daemon_stop_refuses_connections() {
    let env = TestEnv::new();
    build_fixture(&env.remotes());
    // A name no other test's daemon serves: the kernel may hand this port to another test's
    // server once it is free, so what must hold is that nothing serves *this* repository.
    let unique = format!("stop-{}.git", std::process::id());
    std::fs::rename(env.remotes().join("pack.git"), env.remotes().join(&unique)).unwrap();
    let mut daemon = GitDaemon::start(env.remotes());
    let url = daemon.url(&unique);
    let ls = |env: &TestEnv| {
        env.git()
            .args(["ls-remote", &url])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(ls(&env), "the premise: the running daemon serves it");
    daemon.stop();
    assert!(!ls(&env), "a stopped daemon still serves {url}");
}

#[test]
fn http_backend_serves_fixture() {
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let srv = HttpGitServer::start(env.remotes(), HttpOptions::default());
    let url = srv.url("pack.git");
    check_served(&env, &fx, &url, "http");
    let log = srv.request_log();
    assert!(
        log.iter()
            .any(|r| r.method == "POST" && r.path == "/pack.git/git-upload-pack")
    );
    // The git CLI negotiated protocol v2 through the Git-Protocol header.
    assert!(
        log.iter()
            .any(|r| r.git_protocol.as_deref() == Some("version=2"))
    );
    assert!(srv.seen_authorizations().is_empty());
    assert_eq!(srv.auth_failures(), 0);
    assert!(
        log.iter().all(|r| r.status == 200),
        "{log:#?}\n{}",
        srv.cgi_stderr()
    );
}

#[test]
fn sha_fetch_refused_without_allow_sha1_in_want() {
    // Documents what kst's fallback must handle: with uploadpack.allow*SHA1InWant
    // off, the server does not advertise allow-tip-sha1-in-want /
    // allow-reachable-sha1-in-want, and libgit2 (protocol v0 only) then refuses
    // *client-side*, before any want is sent — even for a tip commit — with
    // "cannot fetch a specific object from the remote repository" (class Invalid).
    let env = TestEnv::new();
    let mut fx = build_fixture(&env.remotes());
    fx.repo.allow_sha1_in_want(false);
    let srv = HttpGitServer::start(env.remotes(), HttpOptions::default());
    let daemon = GitDaemon::start(env.remotes());
    for (i, url) in [srv.url("pack.git"), daemon.url("pack.git")]
        .iter()
        .enumerate()
    {
        for (j, oid) in [fx.c1, fx.c2].into_iter().enumerate() {
            let res = git2_fetch(
                &env.path(format!("r{i}{j}.git")),
                url,
                &[&format!("+{oid}:refs/commit/{oid}")],
                Some(1),
                None,
            );
            let err = res
                .err()
                .unwrap_or_else(|| panic!("expected refusal from {url}"));
            assert_eq!(err.class(), git2::ErrorClass::Invalid, "{err}");
            assert!(
                err.message().contains("cannot fetch a specific object"),
                "{err}"
            );
        }
        // The branch refspec still works (the fallback path).
        git2_fetch(
            &env.path(format!("b{i}.git")),
            url,
            &["+refs/heads/trunk:refs/heads/trunk"],
            Some(1),
            None,
        )
        .unwrap_or_else(|e| panic!("branch fetch from {url}: {e}"));
    }
    // The git CLI (protocol v2) is not restricted by these settings.
    let bare = env.path("cli.git");
    env.git_ok(&["init", "--quiet", "--bare", bare.to_str().unwrap()]);
    let c1 = fx.c1;
    env.git_ok(&[
        "-C",
        bare.to_str().unwrap(),
        "fetch",
        "--quiet",
        "--depth",
        "1",
        &daemon.url("pack.git"),
        &format!("+{c1}:refs/commit/{c1}"),
    ]);
}

#[test]
fn http_basic_auth() {
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let srv = HttpGitServer::start(
        env.remotes(),
        HttpOptions::basic_auth("alice", "s3cret-token"),
    );
    let url = srv.url("pack.git");

    // git CLI, no credentials: rejected (prompting disabled).
    let out = env.git().args(["ls-remote", &url]).output().unwrap();
    assert!(!out.status.success());
    assert!(srv.auth_failures() >= 1);
    assert!(srv.seen_authorizations().is_empty());

    // git CLI, credentials in the URL (self-test only): accepted.
    let with_creds = url.replace("http://", "http://alice:s3cret-token@");
    let out = env.git_ok(&["ls-remote", &with_creds]);
    assert!(out.contains(&format!("{}\trefs/heads/trunk", fx.c2)));
    let expected = basic_auth_header("alice", "s3cret-token");
    assert!(
        srv.seen_authorizations().contains(&expected),
        "{:?}",
        srv.seen_authorizations()
    );
    assert_eq!(
        decode_basic(&expected),
        Some(("alice".into(), "s3cret-token".into()))
    );

    // git2 with a credentials callback: 401 first, then accepted.
    srv.reset_log();
    let r = git2_fetch(
        &env.path("g2.git"),
        &url,
        &["+refs/heads/trunk:refs/heads/trunk"],
        Some(1),
        Some(("alice", "s3cret-token")),
    )
    .expect("git2 fetch with credentials");
    assert!(has_commit(&r, fx.c2));
    assert_eq!(srv.auth_failures(), 1, "{:#?}", srv.request_log());
    assert!(
        srv.request_log()
            .iter()
            .any(|r| r.status == 200 && r.method == "POST")
    );
    assert!(srv.seen_authorizations().iter().all(|a| a == &expected));

    // git2 with a wrong password: rejected, and the server saw it.
    srv.reset_log();
    let res = git2_fetch(
        &env.path("g2-bad.git"),
        &url,
        &["+refs/heads/trunk:refs/heads/trunk"],
        Some(1),
        Some(("alice", "wrong")),
    );
    assert!(res.is_err());
    assert!(srv.auth_failures() >= 2);
    assert_eq!(
        srv.seen_authorizations(),
        vec![basic_auth_header("alice", "wrong")]
    );
    assert!(srv.requests() >= 2);
}

#[test]
fn http_redirect_to_other_host() {
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let real = HttpGitServer::start(env.remotes(), HttpOptions::default());
    // Redirect to the same server under another host name.
    let target = format!("http://localhost:{}", real.port());
    let redirector = HttpGitServer::start(env.remotes(), HttpOptions::redirect(&target));
    let url = redirector.url("pack.git");

    let out = env.git_ok(&["ls-remote", &url]);
    assert!(out.contains(&fx.c2.to_string()));
    let log = redirector.request_log();
    assert_eq!(log[0].status, 302);
    assert!(real.requests() >= 1);
    assert_eq!(
        real.request_log()[0].host.as_deref(),
        Some(format!("localhost:{}", real.port()).as_str())
    );

    // libgit2 follows the initial redirect by default.
    real.reset_log();
    let r = git2_fetch(
        &env.path("g2.git"),
        &url,
        &["+refs/heads/trunk:refs/heads/trunk"],
        Some(1),
        None,
    )
    .expect("git2 fetch via redirect");
    assert!(has_commit(&r, fx.c2));
    assert!(real.requests() >= 2);
}

#[test]
fn http_static_files_and_auth() {
    let env = TestEnv::new();
    let opts = HttpOptions::basic_auth("u", "p").with_file(
        "/cfg/kasetto.yaml",
        "text/yaml",
        "skills: []\n",
    );
    let srv = HttpGitServer::start(env.remotes(), opts);
    let get = |auth: Option<&str>| {
        let mut s = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /cfg/kasetto.yaml HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let no = get(None);
    assert!(no.starts_with("HTTP/1.1 401"), "{no}");
    assert!(no.contains("WWW-Authenticate: Basic realm=\"test\""));
    let yes = get(Some(&basic_auth_header("u", "p")));
    assert!(yes.starts_with("HTTP/1.1 200"), "{yes}");
    assert!(yes.ends_with("\r\n\r\nskills: []\n"), "{yes}");
    assert_eq!(srv.requests(), 2);
    assert_eq!(srv.auth_failures(), 1);
}

/// pkt-line encode.
fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

#[test]
fn http_chunked_request_body_and_keep_alive() {
    // A hand-written v0 upload-pack request sent chunked (odd chunk sizes),
    // then a second request on the same connection.
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let srv = HttpGitServer::start(env.remotes(), HttpOptions::default());
    let body = format!(
        "{}0000{}",
        pkt(&format!("want {} ofs-delta\n", fx.c1)),
        pkt("done\n")
    );
    let mut s = TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    let mut req = String::from(
        "POST /pack.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for piece in body.as_bytes().chunks(7) {
        req.push_str(&format!(
            "{:x};ext=1\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        ));
    }
    req.push_str("0\r\nX-Trailer: y\r\n\r\n");
    // Second request, pipelined on the same connection.
    req.push_str("GET /pack.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/x-git-upload-pack-result"));
    assert!(text.contains("0008NAK\nPACK"), "{text}");
    assert!(
        text.contains("application/x-git-upload-pack-advertisement"),
        "{text}"
    );
    let log = srv.request_log();
    assert_eq!(log.len(), 2);
    assert!(log[0].chunked);
    assert_eq!(log[0].body_len, body.len());
    assert_eq!(log[1].query, "service=git-upload-pack");
}

#[test]
fn http_stop_refuses_connections() {
    let env = TestEnv::new();
    let mut srv = HttpGitServer::start(env.remotes(), HttpOptions::default());
    let port = srv.port();
    srv.stop();
    // The port may already belong to a server another test started (the kernel reuses freed
    // ports), so "connect fails" alone would be a race: what must hold is that the stopped
    // server serves nothing. A request that does connect is not seen by it.
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(b"GET /after-stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let _ = s.read_to_end(&mut Vec::new());
    }
    assert!(
        srv.request_log().is_empty(),
        "a stopped server served {:?}",
        srv.request_log()
    );
}

// --- fixture repos ---------------------------------------------------------

#[test]
fn fixture_ids_are_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let fa = build_fixture(a.path());
    let fb = build_fixture(b.path());
    assert_eq!((fa.c1, fa.c2, fa.v2_tag), (fb.c1, fb.c2, fb.v2_tag));
    // Pinned: any change here means fixture ids changed for every test.
    assert_eq!(fa.c1.to_string(), PINNED_C1, "c1");
    assert_eq!(fa.c2.to_string(), PINNED_C2, "c2");
}

const PINNED_C1: &str = "26ac9a558c59367022d5e1915c5df1b2562b14d0";
const PINNED_C2: &str = "9c9659dcd5d608d116225feebd71f2f6c2ebbc45";

#[test]
fn fixture_tree_ids_match_git_cli() {
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let gd = fx.repo.path().to_str().unwrap().to_string();
    for spec in [
        format!("{}:skills/pdf", fx.c2),
        format!("{}:skills", fx.c1),
        "v2^{commit}".into(),
        "trunk~1".into(),
    ] {
        assert_eq!(
            env.git_ok(&["--git-dir", &gd, "rev-parse", &spec]),
            fx.repo.rev_parse(&spec).to_string(),
            "{spec}"
        );
    }
    assert_eq!(fx.repo.rev_parse("trunk~1"), fx.c1);
    assert_eq!(
        env.git_ok(&["--git-dir", &gd, "symbolic-ref", "HEAD"]),
        "refs/heads/trunk"
    );
    assert_eq!(
        env.git_ok(&["--git-dir", &gd, "cat-file", "-t", "v2"]),
        "tag"
    );
    assert_eq!(
        env.git_ok(&["--git-dir", &gd, "cat-file", "-t", "v1"]),
        "commit"
    );
    let ls = env.git_ok(&["--git-dir", &gd, "ls-tree", "-r", &fx.c2.to_string()]);
    assert!(
        ls.contains("100755 blob") && ls.contains("\tskills/pdf/scripts/run.sh"),
        "{ls}"
    );
    assert!(
        ls.contains("120000 blob") && ls.contains("\tskills/pdf/link"),
        "{ls}"
    );
    assert!(!ls.contains("README.md"), "{ls}");
    let md = env.git_ok(&[
        "--git-dir",
        &gd,
        "show",
        &format!("{}:skills/docx/SKILL.md", fx.c1),
    ]);
    assert_eq!(md, skill_md("docx", "Word \"docs\"").trim());
    assert!(
        md.starts_with("---\nname: docx\ndescription: \"Word \\\"docs\\\"\"\n---\n"),
        "{md}"
    );
    // fsck: every object well-formed.
    env.git_ok(&["--git-dir", &gd, "fsck", "--strict"]);
    let log = env.git_ok(&["--git-dir", &gd, "log", "--format=%an <%ae> %at", "trunk"]);
    assert_eq!(
        log,
        "Kasetto Test <test@example.invalid> 1700000060\nKasetto Test <test@example.invalid> 1700000000"
    );
}

#[test]
fn adversarial_raw_trees() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("evil.git"));
    let blob = repo.write_blob(b"pwned\n");
    let link = repo.write_blob(b"../../../../etc");
    let inner = repo.write_raw_tree(&[("x", MODE_BLOB, blob)]);
    let gitlink = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
    let tree = repo.write_raw_tree(&[
        ("..", MODE_TREE, inner),
        (".GIT", MODE_TREE, inner),
        ("a/b", MODE_BLOB, blob),
        ("escape", MODE_LINK, link),
        ("sub", MODE_GITLINK, gitlink),
        ("Readme", MODE_BLOB, blob),
        ("README", MODE_BLOB, blob),
    ]);
    let c = repo.commit_tree("main", tree);
    // The TreeBuilder refuses such names — that's why write_raw_tree exists.
    assert!(
        repo.git2()
            .treebuilder(None)
            .unwrap()
            .insert("..", blob, 0o100644)
            .is_err()
    );
    let gd = repo.path().to_str().unwrap().to_string();
    let ls = env.git_ok(&["--git-dir", &gd, "ls-tree", &c.to_string()]);
    for name in [
        "\t..",
        "\t.GIT",
        "\ta/b",
        "120000 blob",
        "160000 commit 1111111111111111111111111111111111111111\tsub",
    ] {
        assert!(ls.contains(name), "{name} missing in\n{ls}");
    }
    // It is servable: a git2 (non-shallow) fetch gets the objects.
    let daemon = GitDaemon::start(env.remotes());
    let r = git2_fetch(
        &env.path("f.git"),
        &daemon.url("evil.git"),
        &["+refs/heads/main:refs/heads/main"],
        None,
        None,
    )
    .expect("fetch adversarial tree");
    let t = r.find_commit(c).unwrap().tree().unwrap();
    let names: Vec<_> = t.iter().map(|e| e.name().unwrap().to_string()).collect();
    assert!(
        names.contains(&"..".to_string()) && names.contains(&"a/b".to_string()),
        "{names:?}"
    );
}

#[test]
fn commit_update_and_nested_paths() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("u.git"));
    repo.commit(
        "main",
        &[
            ("a/b/c.txt", FileSpec::from("1")),
            ("a/d.txt", FileSpec::from("2")),
            ("e", FileSpec::from("3")),
        ],
    );
    let c2 = repo.commit_update(
        "main",
        &[("a/b/new.txt", FileSpec::from("4"))],
        &["a/d.txt", "e"],
    );
    let c3 = repo.commit_update::<&str>("main", &[], &["a/b"]);
    let gd = repo.path().to_str().unwrap().to_string();
    assert_eq!(
        env.git_ok(&[
            "--git-dir",
            &gd,
            "ls-tree",
            "-r",
            "--name-only",
            &c2.to_string()
        ]),
        "a/b/c.txt\na/b/new.txt"
    );
    // Removing the last entries leaves the empty root tree.
    assert_eq!(
        repo.tree_id(c3, "").to_string(),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    );
    assert_eq!(repo.branch_tip("main"), Some(c3));
}

// --- TestEnv ---------------------------------------------------------------

#[test]
fn test_env_is_hermetic() {
    let env = TestEnv::new();
    let out = run_ok(env.cmd("env").env_remove("__NOTHING__"));
    let mut names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_NOSYSTEM",
            "HOME",
            "KASETTO_CACHE_DIR",
            "NO_COLOR",
            "PATH",
            "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME"
        ]
    );
    assert!(out.contains(&format!("HOME={}\n", env.home().display())));
    assert!(out.contains(&format!("KASETTO_CACHE_DIR={}\n", env.cache().display())));
    assert_eq!(
        run_ok(&mut env.cmd("pwd")),
        env.project().display().to_string()
    );
    assert!(!env.cache().exists(), "cache dir is left for kst to create");
    // kst() builds a command (behaviour is tested elsewhere).
    let _ = env.kst();
    let _ = env.kasetto();
}

#[test]
fn snapshots_detect_every_change() {
    let env = TestEnv::new();
    let d = env.project_path("dest");
    write_file(d.join("a/SKILL.md"), "hello");
    write_executable(d.join("a/run.sh"), "#!/bin/sh\n");
    symlink("../elsewhere", d.join("a/link"));
    let before = read_tree_snapshot(&d);
    assert!(matches!(
        &before["a/run.sh"],
        SnapEntry::File { mode: 0o755, .. }
    ));
    assert!(matches!(&before["a/link"], SnapEntry::Symlink { .. }));
    assert!(before.contains_key("."));
    assert_snapshots_eq(&before, &read_tree_snapshot(&d));

    let changed = |f: &dyn Fn()| {
        f();
        let after = read_tree_snapshot(&d);
        let r = std::panic::catch_unwind(|| assert_snapshots_eq(&before, &after));
        assert!(r.is_err(), "change not detected");
    };
    use std::os::unix::fs::PermissionsExt;
    changed(&|| {
        std::fs::set_permissions(d.join("a/SKILL.md"), std::fs::Permissions::from_mode(0o600))
            .unwrap()
    });
    changed(&|| write_file(d.join("a/SKILL.md"), "hellO"));
    changed(&|| {
        std::fs::remove_file(d.join("a/link")).unwrap();
        symlink("../other", d.join("a/link"));
    });
    changed(&|| write_file(d.join("new"), ""));

    // Missing dir → empty snapshot.
    assert!(read_tree_snapshot(env.path("nope")).is_empty());

    // Secret scanning covers contents, names and symlink targets.
    write_file(d.join("x/file"), "..SENTINEL..");
    symlink("SENTINEL", d.join("x/l"));
    write_file(d.join("x/SENTINEL.txt"), "");
    assert_eq!(
        find_bytes_in_tree(&d, b"SENTINEL"),
        ["x/SENTINEL.txt", "x/file", "x/l"]
    );
}

#[test]
fn libgit2_asks_credentials_for_the_redirect_target() {
    // Documents libgit2 behaviour kst's token rules depend on: after an initial
    // redirect to another host, the credentials callback receives the *new* URL,
    // and no Authorization header is sent before a 401 challenge.
    let env = TestEnv::new();
    let fx = build_fixture(&env.remotes());
    let real = HttpGitServer::start(env.remotes(), HttpOptions::basic_auth("u", "p"));
    let redirector = HttpGitServer::start(
        env.remotes(),
        HttpOptions::redirect(&real.url_with_host("localhost", "")),
    );
    isolate_libgit2_config();
    let repo = Repository::init_bare(env.path("r.git")).unwrap();
    let mut remote = repo.remote_anonymous(&redirector.url("pack.git")).unwrap();
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let mut cbs = RemoteCallbacks::new();
    cbs.credentials(|url, _user, _allowed| {
        seen.lock().unwrap().push(url.to_string());
        if seen.lock().unwrap().len() > 1 {
            return Err(git2::Error::from_str("once"));
        }
        Cred::userpass_plaintext("u", "p")
    });
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(cbs).depth(1);
    remote
        .fetch(&["+refs/heads/trunk:refs/heads/trunk"], Some(&mut fo), None)
        .expect("fetch via redirect with auth");
    drop(fo);
    drop(remote);
    assert!(has_commit(&repo, fx.c2));
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(&format!("http://localhost:{}/", real.port())),
        "{seen:?}"
    );
    assert!(redirector.seen_authorizations().is_empty());
    assert_eq!(real.auth_failures(), 1);
}
