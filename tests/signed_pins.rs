//! Signed pins (SPEC 16): with `trust: { allowed-signers: FILE }` a git pin installs only when
//! its commit (or, for a tag pin, its annotated tag) carries an SSH signature, namespace `git`,
//! by a key FILE allows. The signer's fingerprint goes into the lock and `kst verify` checks it
//! again offline. The keys and signed objects are made here, by the tests (ed25519 keys from
//! the `ssh-key` crate, commits written with git2's `commit_signed`).

use std::fs;

use git2::{ObjectType, Oid};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, SshSig};

use crate::support::repo::{AUTHOR_EMAIL, AUTHOR_NAME, BASE_TIME};
use crate::support::*;

const SKILLS: &str = ".claude/skills";

fn new_key() -> PrivateKey {
    PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519).unwrap()
}

fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// An `allowed_signers` line for `key`, as a team writes it for git.
fn allowed_line(key: &PrivateKey) -> String {
    format!(
        "dev@example.invalid namespaces=\"git\" {}\n",
        key.public_key().to_openssh().unwrap()
    )
}

fn sign(key: &PrivateKey, namespace: &str, data: &[u8]) -> String {
    SshSig::sign(key, namespace, HashAlg::Sha512, data)
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

/// Commit `files` on `branch` of `repo`; with `key`, the commit is SSH-signed (namespace
/// `git`, as `git commit -S` with `gpg.format=ssh` does).
fn commit(
    repo: &mut FixtureRepo,
    branch: &str,
    files: &[(String, FileSpec)],
    key: Option<&PrivateKey>,
) -> Oid {
    commit_in(repo, branch, files, key, "git")
}

/// [`commit`], signed in `namespace`.
fn commit_in(
    repo: &mut FixtureRepo,
    branch: &str,
    files: &[(String, FileSpec)],
    key: Option<&PrivateKey>,
    namespace: &str,
) -> Oid {
    let plain = repo.commit_files(branch, files);
    let Some(key) = key else { return plain };
    let g = repo.git2();
    let c = g.find_commit(plain).unwrap();
    let parents: Vec<git2::Commit> = c.parents().collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    let buf = g
        .commit_create_buffer(
            &c.author(),
            &c.committer(),
            c.message().unwrap(),
            &c.tree().unwrap(),
            &parents,
        )
        .unwrap();
    let text = std::str::from_utf8(&buf).unwrap().to_string();
    let signed = g
        .commit_signed(&text, &sign(key, namespace, text.as_bytes()), None)
        .unwrap();
    repo.set_branch(branch, signed);
    signed
}

/// An annotated tag `name` → `target`, with an SSH signature appended to its message, as
/// `git tag -s` with `gpg.format=ssh` writes it. The message itself quotes a signature's first
/// line: as git does, only the last such line starts the signature.
fn signed_tag(repo: &FixtureRepo, name: &str, target: Oid, key: &PrivateKey) -> Oid {
    let t = BASE_TIME + 3600;
    let body = format!(
        "object {target}\ntype commit\ntag {name}\ntagger {AUTHOR_NAME} <{AUTHOR_EMAIL}> {t} +0000\n\nrelease {name}\n-----BEGIN SSH SIGNATURE-----\n(quoted in the release notes)\n"
    );
    let raw = format!("{body}{}", sign(key, "git", body.as_bytes()));
    let g = repo.git2();
    let id = g
        .odb()
        .unwrap()
        .write(ObjectType::Tag, raw.as_bytes())
        .unwrap();
    g.reference(&format!("refs/tags/{name}"), id, true, "fixture")
        .unwrap();
    id
}

fn skill(name: &str) -> Vec<(String, FileSpec)> {
    vec![(
        format!("skills/{name}/SKILL.md"),
        FileSpec::File(skill_md(name, &format!("The {name} skill")).into_bytes()),
    )]
}

fn two_skills() -> Vec<(String, FileSpec)> {
    let mut f = skill("alpha");
    f.extend(skill("beta"));
    f
}

fn url(env: &TestEnv) -> String {
    format!("file://{}", env.remotes().join("pack.git").display())
}

/// A project whose one skills entry trusts `allowed_signers` (inside the project).
fn config(env: &TestEnv, extra: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n    trust:\n      allowed-signers: keys/allowed_signers\n{extra}",
            url(env)
        ),
    );
}

fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.kst().args(args).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lock_text(env: &TestEnv) -> Option<String> {
    fs::read_to_string(env.project_path("kasetto.lock")).ok()
}

fn installed(env: &TestEnv, name: &str) -> bool {
    env.project_path(format!("{SKILLS}/{name}/SKILL.md"))
        .exists()
}

#[test]
fn a_signed_pin_installs_and_records_its_signer() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let signed = commit(&mut repo, "main", &skill("alpha"), Some(&key));
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    config(&env, "");

    let out = run(&env, &["sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&env, "alpha"));
    let lock = lock_text(&env).unwrap();
    assert!(lock.contains(&format!("commit: {signed}")), "{lock}");
    assert!(
        lock.contains(&format!("signer: {}", fingerprint(&key))),
        "{lock}"
    );

    // The no-op (the lock's fast path) verifies the signature again and changes nothing.
    let again = run(&env, &["sync"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(lock_text(&env).unwrap(), lock);
    let verify = run(&env, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn an_unsigned_pin_never_installs() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let unsigned = commit(&mut repo, "main", &skill("alpha"), None);
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    config(&env, "");

    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&unsigned.to_string()), "{said}");
    assert!(said.contains("is not signed"), "{said}");
    assert!(said.contains("allowed_signers"), "{said}");
    assert!(!installed(&env, "alpha"));
    assert!(!lock_text(&env).is_some_and(|l| l.contains("alpha")));
}

#[test]
fn a_pin_signed_by_another_key_never_installs_and_keeps_what_was_there() {
    let env = TestEnv::new();
    let (key, stranger) = (new_key(), new_key());
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    commit(&mut repo, "main", &skill("alpha"), Some(&key));
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    config(&env, "");
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    let lock = lock_text(&env).unwrap();

    // Upstream moves to a commit signed by a key nobody allowed, adding beta.
    let moved = commit(&mut repo, "main", &two_skills(), Some(&stranger));
    let out = run(&env, &["sync", "--update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&moved.to_string()), "{said}");
    assert!(said.contains(&fingerprint(&stranger)), "{said}");
    assert!(said.contains("not an allowed signer"), "{said}");
    assert!(!installed(&env, "beta"));
    assert!(installed(&env, "alpha"), "what was installed before stays");
    assert_eq!(lock_text(&env).unwrap(), lock, "the lock is unchanged");

    // The same for an unsigned move.
    commit(&mut repo, "main", &two_skills(), None);
    let out = run(&env, &["sync", "--update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!installed(&env, "beta"));
    assert_eq!(lock_text(&env).unwrap(), lock);

    // And for the allowed key signing in another namespace than git's.
    commit_in(&mut repo, "main", &two_skills(), Some(&key), "file");
    let out = run(&env, &["sync", "--update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("namespace"), "{}", text(&out));
    assert!(!installed(&env, "beta"));
    assert_eq!(lock_text(&env).unwrap(), lock);
}

#[test]
fn a_key_removed_from_allowed_signers_fails_even_the_locked_no_op() {
    let env = TestEnv::new();
    let (key, other) = (new_key(), new_key());
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    commit(&mut repo, "main", &skill("alpha"), Some(&key));
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    config(&env, "");
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    let lock = lock_text(&env).unwrap();

    write_file(
        env.project_path("keys/allowed_signers"),
        allowed_line(&other),
    );
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not an allowed signer"),
        "{}",
        text(&out)
    );
    assert_eq!(lock_text(&env).unwrap(), lock);
    // `kst verify` checks the lock's signer against the config's allowed signers too.
    let out = run(&env, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not-allowed"), "{}", text(&out));
}

#[test]
fn verify_catches_a_lock_whose_signer_was_edited() {
    let env = TestEnv::new();
    let (key, other) = (new_key(), new_key());
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    commit(&mut repo, "main", &skill("alpha"), Some(&key));
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    config(&env, "");
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    let ok = run(&env, &["verify"]);
    assert!(ok.status.success(), "{}", text(&ok));

    let lock = lock_text(&env).unwrap();
    let edited = lock.replace(&fingerprint(&key), &fingerprint(&other));
    assert_ne!(edited, lock);
    write_file(env.project_path("kasetto.lock"), &edited);
    let out = run(&env, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("signed pin file://"), "{said}");
    assert!(said.contains("remotes/pack"), "{said}");
    assert!(said.contains("changed"), "{said}");
    assert!(said.contains(&fingerprint(&key)), "{said}");

    // A signer that is not a fingerprint is a malformed lock (exit 2), never quoted.
    write_file(
        env.project_path("kasetto.lock"),
        lock.replace(&fingerprint(&key), "SHA256:not-a-fingerprint-sentinel"),
    );
    let out = run(&env, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not a SHA256 key fingerprint"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("sentinel"), "{}", text(&out));
}

#[test]
fn a_signed_annotated_tag_pins_an_unsigned_commit() {
    let env = TestEnv::new();
    let (key, stranger) = (new_key(), new_key());
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let c = commit(&mut repo, "main", &skill("alpha"), None);
    signed_tag(&repo, "v1", c, &key);
    signed_tag(&repo, "v2", c, &stranger);
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));

    config(&env, "");
    let yaml = fs::read_to_string(env.project_path("kasetto.yaml")).unwrap();
    let at = |r: &str| {
        yaml.replace(
            "    skills: \"*\"\n",
            &format!("    ref: {r}\n    skills: \"*\"\n"),
        )
    };

    write_file(env.project_path("kasetto.yaml"), at("v2"));
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("annotated tag"), "{}", text(&out));
    assert!(!installed(&env, "alpha"));

    write_file(env.project_path("kasetto.yaml"), at("v1"));
    let out = run(&env, &["sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&env, "alpha"));
    let lock = lock_text(&env).unwrap();
    assert!(
        lock.contains(&format!("signer: {}", fingerprint(&key))),
        "{lock}"
    );
    let verify = run(&env, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));

    // On a machine with an empty cache the locked commit is fetched by id: the tag object is
    // fetched too, so the same pin is verified the same way.
    fs::remove_dir_all(env.cache()).unwrap();
    fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
    let out = run(&env, &["sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&env, "alpha"));
    assert_eq!(lock_text(&env).unwrap(), lock);

    // `kst fetch` fills the cache for an offline sync: the tag object included.
    fs::remove_dir_all(env.cache()).unwrap();
    fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
    let fetch = run(&env, &["fetch"]);
    assert!(fetch.status.success(), "{}", text(&fetch));
    let out = run(&env, &["sync", "--offline"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(installed(&env, "alpha"));
    assert_eq!(lock_text(&env).unwrap(), lock);
}

#[test]
fn a_global_trust_applies_to_mcp_packs() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let pack = vec![(
        "mcps/echo.json".to_string(),
        FileSpec::file(r#"{"mcpServers": {"echo": {"command": "echo-mcp", "args": ["--x"]}}}"#),
    )];
    commit(&mut repo, "main", &pack, None);
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\ntrust:\n  allowed-signers: keys/allowed_signers\nmcps:\n  - source: {}\n",
            url(&env)
        ),
    );
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not signed"), "{}", text(&out));
    assert!(!env.project_path(".mcp.json").exists());

    commit(&mut repo, "main", &pack, Some(&key));
    let out = run(&env, &["sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fs::read_to_string(env.project_path(".mcp.json"))
            .unwrap()
            .contains("echo-mcp")
    );
    let lock = lock_text(&env).unwrap();
    assert!(
        lock.contains(&format!("signer: {}", fingerprint(&key))),
        "{lock}"
    );
}

#[test]
fn the_allowed_signers_file_is_confined_to_the_project_and_must_parse() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    commit(&mut repo, "main", &skill("alpha"), Some(&key));
    // A symlink out of the project is refused, not read.
    write_file(env.home_path("outside_signers"), allowed_line(&key));
    symlink(
        env.home_path("outside_signers"),
        env.project_path("keys/allowed_signers"),
    );
    config(&env, "");
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("outside the project"), "{}", text(&out));
    assert!(!installed(&env, "alpha"));

    // A malformed file names its line, never its content.
    fs::remove_file(env.project_path("keys/allowed_signers")).unwrap();
    write_file(
        env.project_path("keys/allowed_signers"),
        "# team\ndev@example.invalid ssh-ed25519 not-a-key-sentinel\n",
    );
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("allowed_signers:2"), "{said}");
    assert!(!said.contains("not-a-key-sentinel"), "{said}");
    assert!(!installed(&env, "alpha"));

    // `trust` on a local folder is a mistake, said as such.
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./local\n    skills: \"*\"\n    trust: { allowed-signers: keys/allowed_signers }\n",
    );
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("only to git sources"), "{}", text(&out));
}

#[test]
fn adding_trust_to_a_locked_source_is_lock_drift_until_the_signer_is_recorded() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    commit(&mut repo, "main", &skill("alpha"), Some(&key));
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            url(&env)
        ),
    );
    let first = run(&env, &["sync"]);
    assert!(first.status.success(), "{}", text(&first));
    let unsigned_lock = lock_text(&env).unwrap();
    assert!(!unsigned_lock.contains("signer:"), "{unsigned_lock}");

    config(&env, "");
    // The lock does not say who signed the pin: `--locked` and `lock --check` say so.
    let locked = run(&env, &["sync", "--locked"]);
    assert_eq!(locked.status.code(), Some(1), "{}", text(&locked));
    assert!(text(&locked).contains("signer"), "{}", text(&locked));
    assert_eq!(lock_text(&env).unwrap(), unsigned_lock);
    let check = run(&env, &["lock", "--check"]);
    assert!(!check.status.success(), "{}", text(&check));

    let lock = run(&env, &["lock"]);
    assert!(lock.status.success(), "{}", text(&lock));
    let written = lock_text(&env).unwrap();
    assert!(
        written.contains(&format!("signer: {}", fingerprint(&key))),
        "{written}"
    );
    let locked = run(&env, &["sync", "--locked"]);
    assert!(locked.status.success(), "{}", text(&locked));
}

#[test]
fn commands_entries_take_trust_too() {
    let env = TestEnv::new();
    let key = new_key();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let pack = vec![(
        "commands/review.md".to_string(),
        FileSpec::file("---\ndescription: Review the diff\n---\nReview $ARGUMENTS\n"),
    )];
    commit(&mut repo, "main", &pack, None);
    write_file(env.project_path("keys/allowed_signers"), allowed_line(&key));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\ncommands:\n  - source: {}\n    commands: \"*\"\n    trust: {{ allowed-signers: keys/allowed_signers }}\n",
            url(&env)
        ),
    );
    let out = run(&env, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not signed"), "{}", text(&out));
    assert!(!env.project_path(".claude/commands/review.md").exists());

    commit(&mut repo, "main", &pack, Some(&key));
    let out = run(&env, &["sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(env.project_path(".claude/commands/review.md").exists());
    let lock = lock_text(&env).unwrap();
    assert!(
        lock.contains(&format!("signer: {}", fingerprint(&key))),
        "{lock}"
    );
    let verify = run(&env, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}
