//! `git daemon` on 127.0.0.1 serving bare repos under a base path over git://.
//!
//! Fetch-by-SHA: `git daemon` runs `upload-pack` with each repo's own config,
//! so `FixtureRepo::init` enables `uploadpack.allowAnySHA1InWant` (etc.) in the
//! repo config; nothing is passed on the daemon command line for it.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GitDaemon {
    child: Option<Child>,
    port: u16,
    base: PathBuf,
    // Holds the daemon's stderr log (`--verbose`); removed on drop.
    log_dir: tempfile::TempDir,
}

/// Path of a git helper program (`git-daemon`, `git-http-backend`) in
/// `git --exec-path`. We run helpers directly rather than as `git daemon`:
/// the `git` wrapper runs them as a *child*, so killing the wrapper would
/// orphan the real daemon, still listening.
pub fn git_helper(name: &str) -> PathBuf {
    static EXEC_PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = EXEC_PATH.get_or_init(|| {
        let out = Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("run `git --exec-path` (is git installed?)");
        assert!(out.status.success(), "git --exec-path failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found (git installed without it?)",
        path.display()
    );
    path
}

/// A port that was free a moment ago (bind :0, read the port, release it).
/// Racy by nature; callers retry if the server then fails to bind.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl GitDaemon {
    /// Serve every repo under `base_path` (no `git-daemon-export-ok` needed).
    /// Returns once the port accepts connections.
    pub fn start(base_path: impl AsRef<Path>) -> GitDaemon {
        let base = base_path
            .as_ref()
            .canonicalize()
            .expect("canonicalize daemon base path");
        let mut errors = Vec::new();
        // Retry: another process may grab the port between free_port() and bind.
        for _attempt in 0..10 {
            let mut daemon = GitDaemon::spawn(&base, free_port());
            match daemon.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return daemon,
                Err(e) => errors.push(format!("{e}\n{}", daemon.log())),
            }
            // dropping `daemon` kills it
        }
        panic!("git daemon failed to start:\n{}", errors.join("\n---\n"));
    }

    fn spawn(base: &Path, port: u16) -> GitDaemon {
        let log_dir = tempfile::Builder::new()
            .prefix("kst-git-daemon-")
            .tempdir()
            .expect("log dir");
        let log = File::create(log_dir.path().join("daemon.log")).expect("daemon log");
        let child = Command::new(git_helper("git-daemon"))
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--verbose")
            .arg("--informative-errors")
            .arg("--enable=upload-pack")
            .arg(format!("--base-path={}", base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(base) // whitelist: nothing outside base is served
            // Isolated from the machine's git config, like the clients.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", log_dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn git-daemon");
        GitDaemon {
            child: Some(child),
            port,
            base: base.to_path_buf(),
            log_dir,
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "git daemon exited early ({status}) on port {}",
                    self.port
                ));
            }
            // A bare connect+close is harmless: the daemon's child sees EOF and exits.
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "git daemon did not listen on port {} in time",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `git://127.0.0.1:PORT/<repo_rel>` (repo_rel relative to the base path).
    pub fn url(&self, repo_rel: &str) -> String {
        format!(
            "git://127.0.0.1:{}/{}",
            self.port,
            repo_rel.trim_start_matches('/')
        )
    }

    /// The daemon's stderr so far (connections, errors) — handy in assert messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Kill the daemon now (also done on drop). In-flight upload-pack children
    /// finish on their own; new connections are refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
