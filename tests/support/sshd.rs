//! A real OpenSSH `sshd` on 127.0.0.1 with throwaway keys, and an `ssh-agent` holding a key.
//!
//! `Sshd::start(dir)` writes everything it needs into `dir` (host key, a client key pair,
//! `authorized_keys`, `sshd_config`, the pid file and the log) and runs `/usr/sbin/sshd -D -e`
//! as a direct child (no wrapper, so killing the child kills the real daemon). Only public-key
//! authentication is enabled, for the user running the tests. The session's environment gets
//! the test's `PATH` (so `git-upload-pack` is found) and git config isolated from the machine.
//!
//! Tests that need it start with `let Some(...) = ... else { return }` on [`sshd_or_skip`]:
//! without `sshd` they print a note and pass — except under CI (`CI` set), where `.ci/run`
//! installs OpenSSH and a missing `sshd` is a failure.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where sshd lives (it must be run by absolute path: it re-executes itself).
pub fn sshd_path() -> Option<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/usr/sbin/sshd"),
        PathBuf::from("/usr/local/sbin/sshd"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("sshd")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// True when sshd and the OpenSSH client tools (ssh-keygen, ssh-agent, ssh-add) are installed.
/// When they are not: under CI this panics (CI must run the SSH tests); elsewhere it prints a
/// note and returns false so the test can return early.
pub fn sshd_or_skip(test: &str) -> bool {
    let missing: Vec<&str> = ["ssh-keygen", "ssh-agent", "ssh-add"]
        .into_iter()
        .filter(|p| !on_path(p))
        .chain(sshd_path().is_none().then_some("sshd"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let note = format!(
        "{test}: skipped, OpenSSH is not installed (missing {}); install openssh-server and openssh-client",
        missing.join(", ")
    );
    super::tools::skip_or_fail_in_ci(&note)
}

/// The user the tests run as (sshd can only let this user in without PAM).
pub fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("run `id -un`");
    assert!(out.status.success(), "id -un failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `ssh-keygen -t ed25519 -N '' -f <path>`; returns the public key line (`ssh-ed25519 AAAA… comment`).
pub fn keygen(path: &Path, comment: &str) -> String {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -f {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    fs::read_to_string(PathBuf::from(pub_path))
        .expect("read generated public key")
        .trim()
        .to_string()
}

/// `type base64` of a public key line, without the comment.
fn key_without_comment(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running sshd (killed on drop).
pub struct Sshd {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    user: String,
    host_public_key: String,
    client_key: PathBuf,
    client_public_key: String,
}

impl Sshd {
    /// Start sshd on a free port on 127.0.0.1, with its files in `dir` (created). Returns
    /// once sshd listens. Panics if it cannot start.
    pub fn start(dir: impl AsRef<Path>) -> Sshd {
        let mut errors = Vec::new();
        // Retry: another process may take the port between free_port() and sshd's bind.
        for _ in 0..10 {
            match Sshd::start_on(dir.as_ref(), crate::support::git_daemon::free_port()) {
                Ok(s) => return s,
                Err(e) => errors.push(e),
            }
        }
        panic!("sshd failed to start:\n{}", errors.join("\n---\n"));
    }

    /// Start sshd on a fixed port (e.g. 22, for scp-like URLs, which cannot name a port).
    /// Err (with sshd's log) if it could not listen there, e.g. because the port is taken.
    pub fn start_on(dir: &Path, port: u16) -> Result<Sshd, String> {
        let sshd = sshd_path().ok_or("sshd is not installed")?;
        fs::create_dir_all(dir).expect("create sshd dir");
        let dir = dir.canonicalize().expect("canonicalize sshd dir");
        // Privilege separation directory: sshd refuses to start without it.
        if is_root() && !Path::new("/run/sshd").is_dir() {
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));
        }
        let host_key = dir.join("ssh_host_ed25519_key");
        let host_public_key = keygen(&host_key, "kst-test-host");
        let client_key = dir.join("client_ed25519");
        let client_public_key = keygen(&client_key, "kst-test-client");
        let authorized_keys = dir.join("authorized_keys");
        fs::write(&authorized_keys, format!("{client_public_key}\n")).expect("authorized_keys");

        // The session runs `git-upload-pack '<path>'` through the user's shell: give it the
        // test's PATH with git's own directory first, and keep the machine's git config out.
        let git_dir = which("git").and_then(|g| g.parent().map(Path::to_path_buf));
        let mut path = git_dir.map(|d| d.display().to_string()).unwrap_or_default();
        if let Some(p) = std::env::var_os("PATH") {
            path = format!("{path}:{}", p.to_string_lossy());
        }
        let user = current_user();
        let permit_root = if user == "root" {
            "PermitRootLogin prohibit-password\n"
        } else {
            ""
        };
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {host_key}\n\
                 HostKeyAlgorithms ssh-ed25519\n\
                 AuthorizedKeysFile {authorized_keys}\n\
                 AllowUsers {user}\n\
                 {permit_root}\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 HostbasedAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 AllowAgentForwarding no\n\
                 AllowTcpForwarding no\n\
                 X11Forwarding no\n\
                 PermitTTY no\n\
                 PidFile {pid}\n\
                 LogLevel VERBOSE\n\
                 SetEnv \"PATH={path}\" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null\n",
                host_key = host_key.display(),
                authorized_keys = authorized_keys.display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .expect("write sshd_config");

        let log_path = dir.join("sshd.log");
        let log = fs::File::create(&log_path).expect("create sshd log");
        let child = Command::new(&sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", sshd.display()))?;
        let mut s = Sshd {
            child: Some(child),
            port,
            dir,
            user,
            host_public_key,
            client_key,
            client_public_key,
        };
        s.wait_ready(Duration::from_secs(15))?;
        Ok(s)
    }

    /// Ready when sshd logs that it listens (no probe connection: those show up in the log
    /// and in connection counts).
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let want = format!("Server listening on 127.0.0.1 port {}", self.port);
        loop {
            if self.log().contains(&want) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "sshd exited early ({status}) on port {}:\n{}",
                    self.port,
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sshd did not listen on port {} in time:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// The user sshd lets in (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The authorized client private key (ed25519, no passphrase).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }
    /// `ssh-ed25519 AAAA… kst-test-client`.
    pub fn client_public_key(&self) -> &str {
        &self.client_public_key
    }
    /// `ssh-ed25519 AAAA…` (no comment).
    pub fn host_public_key(&self) -> String {
        key_without_comment(&self.host_public_key)
    }
    /// How `known_hosts` names this server: `[127.0.0.1]:PORT`, or `127.0.0.1` on port 22.
    pub fn known_hosts_host(&self) -> String {
        if self.port == 22 {
            "127.0.0.1".into()
        } else {
            format!("[127.0.0.1]:{}", self.port)
        }
    }
    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn known_hosts_line(&self) -> String {
        format!("{} {}", self.known_hosts_host(), self.host_public_key())
    }
    /// `ssh://USER@127.0.0.1:PORT/abs/path`.
    pub fn url(&self, repo: &Path) -> String {
        assert!(repo.is_absolute(), "{} is not absolute", repo.display());
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.display()
        )
    }
    /// `USER@127.0.0.1:/abs/path` (scp-like: no port, so only meaningful on port 22).
    pub fn scp_url(&self, repo: &Path) -> String {
        assert!(repo.is_absolute(), "{} is not absolute", repo.display());
        format!("{}@127.0.0.1:{}", self.user, repo.display())
    }

    /// sshd's log so far (connections, accepted/failed keys, errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
    /// How many TCP connections sshd has seen.
    pub fn connections(&self) -> usize {
        self.log().matches("Connection from ").count()
    }
    /// How many public keys were accepted (successful logins).
    pub fn accepted_logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// True if something already listens on 127.0.0.1:`port` or we may not bind it.
pub fn port_busy(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// An `ssh-agent` in the foreground (`-D`, a direct child: killed on drop) on its own socket.
pub struct SshAgent {
    child: Option<Child>,
    sock: PathBuf,
}

impl SshAgent {
    /// Start an agent with its socket in `dir` and add `keys` to it.
    pub fn start(dir: impl AsRef<Path>, keys: &[&Path]) -> SshAgent {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).expect("create agent dir");
        let sock = dir.join("agent.sock");
        let _ = fs::remove_file(&sock);
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent");
        let mut agent = SshAgent {
            child: Some(child),
            sock,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !agent.sock.exists() {
            if let Some(Ok(Some(status))) = agent.child.as_mut().map(|c| c.try_wait()) {
                panic!("ssh-agent exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            agent.add(key);
        }
        agent
    }

    /// `ssh-add <key>`.
    pub fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-add");
        assert!(
            out.status.success(),
            "ssh-add {} failed: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The value for `SSH_AUTH_SOCK`.
    pub fn sock(&self) -> &Path {
        &self.sock
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ssh-agent -a <dir>/agent.sock` holding `key`; the agent is killed when the result drops.
pub fn start_agent(dir: impl AsRef<Path>, key: &Path) -> SshAgent {
    SshAgent::start(dir, &[key])
}
