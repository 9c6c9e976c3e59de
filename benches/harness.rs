//! kst's benchmark harness (SPEC 14; the method and the last results are in
//! docs/performance.md). One command builds everything and prints one table:
//!
//! ```text
//! cargo bench --bench harness                 # 20 repos × 50 skills × 10 files, a few minutes
//! cargo bench --bench harness -- --help       # sizes, run counts, transports, scenarios
//! ```
//!
//! It generates fixture packs (N repos × M skills × K files, with large files and executables),
//! serves them on 127.0.0.1 with `git daemon` (git://) and `git http-backend` behind a small
//! HTTP/1.1 server (http://), and times, on the same data and in the same run:
//!
//! - kst cold sync of every repo vs `git clone --depth 1` of the same repos, one after another
//!   (and, for information, all at once);
//! - kst warm no-op sync vs `git status --porcelain` on a git work tree of the same files;
//! - kst offline re-sync into empty destinations vs `cp -r` of the same files;
//! - the peak RSS of every kst run (from `wait4(2)`, per process).
//!
//! Every reported time is the median wall-clock time of several runs. Children run with a
//! cleared environment (their own HOME, XDG folders, kst cache) and git's configuration
//! isolated from the machine's, so the numbers do not depend on the user's setup. Nothing here
//! is an assertion: the table says which targets are met, the exit code only says whether the
//! benchmark itself could run.
//!
//! This file is also compiled into the integration tests (tests/perf_smoke.rs) for a tiny smoke
//! run, so it must not rot.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "harness",
    about = "kst against git and cp on generated fixtures served on 127.0.0.1 (SPEC 14)"
)]
pub struct Args {
    /// Fixture repositories (packs).
    #[arg(long, default_value_t = 20)]
    pub repos: usize,
    /// Skills per repository.
    #[arg(long, default_value_t = 50)]
    pub skills: usize,
    /// Files per skill (SKILL.md, an executable script, Markdown references, large files).
    #[arg(long, default_value_t = 10)]
    pub files: usize,
    /// Large (incompressible) files per repository.
    #[arg(long, default_value_t = 1)]
    pub large: usize,
    /// Size of each large file, KiB.
    #[arg(long, default_value_t = 1024)]
    pub large_kib: usize,
    /// Timed runs per measurement (warm no-op, offline re-sync and their references).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Timed runs of each cold measurement (kst and both git clone variants).
    #[arg(long, default_value_t = 3)]
    pub cold_runs: usize,
    /// Transports for the cold sync: git, http or both.
    #[arg(long, value_enum, default_value = "both")]
    pub transport: Transports,
    /// Scenarios to run (comma-separated): cold, noop, offline, files (the warm no-op of
    /// commands and instructions, SPEC 14).
    #[arg(long, value_delimiter = ',', default_value = "cold,noop,offline,files")]
    pub scenarios: Vec<Scenario>,
    /// Commands and instructions of the `files` scenario.
    #[arg(long, default_value_t = 500)]
    pub commands: usize,
    #[arg(long, default_value_t = 200)]
    pub instructions: usize,
    /// Shapes of the same skills (comma-separated, SPEC 14): spread (--repos × --skills),
    /// monorepo (one repository with all of them under `skills/`), local (one local folder of
    /// them). The cold sync is measured for the spread shape only.
    #[arg(long, value_delimiter = ',', default_value = "spread,monorepo,local")]
    pub shapes: Vec<Shape>,
    /// File systems to run on (comma-separated): shm (/dev/shm, in memory) and disk ($TMPDIR,
    /// a real disk, where users' skills live). Ignored with --workdir.
    #[arg(long, value_delimiter = ',', default_value = "shm,disk")]
    pub disks: Vec<Disk>,
    /// The scale step: the monorepo and local shapes again with this many times the skills,
    /// on the first file system only (1: no scale step).
    #[arg(long, default_value_t = 10)]
    pub scale: usize,
    /// Kasetto binary to compare the warm no-op with (default: `kasetto` on PATH, if any).
    #[arg(long)]
    pub kasetto: Option<PathBuf>,
    /// The kst binary (default: the one cargo built with this harness).
    #[arg(long)]
    pub kst: Option<PathBuf>,
    /// Build the fixtures here and keep them (default: a temporary folder, removed at exit, on
    /// the memory file system /dev/shm when there is one, so that the tools are measured rather
    /// than the disk; else in $TMPDIR).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args::parse_from(["harness"])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transports {
    Git,
    Http,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Cold,
    Noop,
    Offline,
    Files,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Spread,
    Monorepo,
    Local,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Spread => "spread",
            Shape::Monorepo => "monorepo",
            Shape::Local => "local",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Disk {
    Shm,
    Disk,
}

#[allow(dead_code)] // the smoke test calls `run`, not `main`
fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == MEASURE_CHILD) {
        std::process::exit(measure_child(&argv[2..]));
    }
    if let Ok(me) = std::env::current_exe() {
        let _ = MEASURER.set(me);
    }
    let args = Args::parse();
    match run(&args) {
        Ok(table) => print!("{table}"),
        Err(e) => {
            eprintln!("harness: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Run every selected scenario and return the rendered table.
pub fn run(args: &Args) -> Result<String> {
    ensure!(
        args.repos > 0 && args.skills > 0 && args.files > 0,
        "--repos, --skills and --files must be at least 1"
    );
    ensure!(
        args.runs > 0 && args.cold_runs > 0,
        "--runs and --cold-runs must be at least 1"
    );
    let kst = match &args.kst {
        Some(p) => p
            .canonicalize()
            .with_context(|| format!("{}", p.display()))?,
        None => PathBuf::from(env!("CARGO_BIN_EXE_kst")),
    };
    ensure!(kst.is_file(), "kst binary not found at {}", kst.display());
    ensure!(args.scale >= 1, "--scale must be at least 1");
    // (label, folder) per file system; temporary folders are removed at the end.
    let mut temps = Vec::new();
    let mut roots: Vec<(String, PathBuf)> = Vec::new();
    if let Some(d) = &args.workdir {
        fs::create_dir_all(d)?;
        roots.push(("workdir".into(), d.canonicalize()?));
    } else {
        for disk in &args.disks {
            let mut b = tempfile::Builder::new();
            b.prefix("kst-bench-");
            let shm = Path::new("/dev/shm");
            let t = match disk {
                Disk::Shm if shm.is_dir() => b.tempdir_in(shm)?,
                Disk::Shm => {
                    eprintln!("harness: no /dev/shm here; skipping the shm runs");
                    continue;
                }
                Disk::Disk => b.tempdir()?,
            };
            let label = match disk {
                Disk::Shm => "shm".to_string(),
                Disk::Disk => format!("disk ({})", std::env::temp_dir().display()),
            };
            roots.push((label, t.path().canonicalize()?));
            temps.push(t);
        }
    }
    ensure!(!roots.is_empty(), "no file system to run on");
    let mut notes: Vec<String> = Vec::new();
    let kasetto = args
        .kasetto
        .clone()
        .or_else(|| find_on_path("kasetto"))
        .filter(|p| p.is_file());
    // kst installs a `kasetto` binary of its own (the same program): only the real Kasetto 3.x
    // is a reference.
    let kasetto = match kasetto {
        Some(k) if !is_kasetto_3(&k) => {
            notes.push(format!(
                "{} is not Kasetto 3.x (`--version`): its rows are skipped",
                k.display()
            ));
            None
        }
        k => k,
    };
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    if kasetto.is_none() && notes.is_empty() {
        notes.push(
            "Kasetto 3.12 is not installed (`cargo install kasetto --version 3.12.0`, or \
             --kasetto PATH): its rows are skipped"
                .into(),
        );
    }
    let mut first_fx = None;
    for (di, (disk, root)) in roots.iter().enumerate() {
        for &shape in &args.shapes {
            let scales: Vec<usize> = if di == 0 && shape != Shape::Spread && args.scale > 1 {
                vec![1, args.scale]
            } else {
                vec![1]
            };
            let mut at_one: Option<(Row, Option<Row>)> = None;
            for scale in scales {
                let here = root.join(format!("{}-{scale}x", shape.label()));
                let w = Work::new(&here, kst.clone())?;
                eprintln!(
                    "harness: {} shape ×{scale} on {disk}: building fixtures in {}",
                    shape.label(),
                    here.display()
                );
                let fx = build_fixtures(&w, args, shape, scale)?;
                let tag = format!("{} ×{scale}, {disk}", shape.label());
                let (noop_row, offline_row) =
                    shape_rows(&w, args, &fx, &tag, kasetto.as_deref(), &mut rows)?;
                if scale == 1 {
                    at_one = Some((noop_row.clone(), offline_row.clone()));
                } else if let Some((one_noop, one_off)) = &at_one {
                    let grow = 1.1 * scale as f64;
                    let mut push = |what: &str, big: &Row, small: &Row| {
                        rows.push(Row {
                            scenario: format!(
                                "scale: {} {what}, {scale}× the skills",
                                shape.label()
                            ),
                            kst: big.kst,
                            reference: format!("the same at {} skills", small.skills),
                            ref_time: small.kst,
                            target: Some(grow),
                            rss_kib: big.rss_kib,
                            skills: big.skills,
                            scaled: true,
                        })
                    };
                    push("no-op", &noop_row, one_noop);
                    if let (Some(b), Some(s)) = (&offline_row, one_off) {
                        push("offline re-sync", b, s);
                    }
                }
                if first_fx.is_none() {
                    first_fx = Some(fx);
                }
                drop(w);
                if args.workdir.is_none() {
                    rm_rf(&here)?;
                }
            }
        }
    }
    if args.scenarios.contains(&Scenario::Files) {
        for (disk, root) in &roots {
            let here = root.join("files");
            let w = Work::new(&here, kst.clone())?;
            eprintln!("harness: commands and instructions on {disk}: warm no-op sync");
            let mut row = files_noop(&w, args)?;
            row.scenario = format!("files, {disk}: {}", row.scenario);
            rows.push(row);
            drop(w);
            if args.workdir.is_none() {
                rm_rf(&here)?;
            }
        }
    }
    drop(temps);
    let fx = first_fx.context("no shape was run")?;
    Ok(render(args, &fx, &kst, &rows, &notes, started.elapsed()))
}

/// The rows of one shape on one file system: cold (spread only), warm no-op (and Kasetto's),
/// offline re-sync. Returns the no-op and offline rows for the scale step.
fn shape_rows(
    w: &Work,
    args: &Args,
    fx: &Fixtures,
    tag: &str,
    kasetto: Option<&Path>,
    rows: &mut Vec<Row>,
) -> Result<(Row, Option<Row>)> {
    let wanted = |s| args.scenarios.contains(&s);
    // Local folders need no server.
    let servers = if fx.local.is_none() {
        Some((
            GitDaemon::start(&w.remotes)?,
            HttpServer::start(&w.remotes)?,
        ))
    } else {
        None
    };
    let transports: Vec<Transport> = match &servers {
        None => vec![Transport {
            label: "local",
            port: 0,
        }],
        Some((daemon, http)) => {
            let git = Transport {
                label: "git://",
                port: daemon.port,
            };
            let web = Transport {
                label: "http://",
                port: http.port,
            };
            match args.transport {
                Transports::Git => vec![git],
                Transports::Http => vec![web],
                Transports::Both => vec![git, web],
            }
        }
    };
    if wanted(Scenario::Cold) && fx.shape == Shape::Spread {
        for t in &transports {
            eprintln!("harness: {tag}: cold sync over {}", t.label);
            rows.extend(cold(w, args, fx, t)?);
        }
    }
    // A synced project: lock written, cache warm, every skill installed.
    w.write_config(fx, &transports[0])?;
    w.reset_kst(true)?;
    w.kst(&["sync", "-q"]).context("initial sync")?;
    w.check_installed(fx)?;
    // Let every timestamp settle (both kst's stat cache and git's index treat files
    // written in the last instant as "racy" and re-read them), as on a machine where the
    // last change was not this very second.
    std::thread::sleep(Duration::from_millis(1100));
    eprintln!("harness: {tag}: warm no-op sync");
    let mut n = noop(w, args, fx)?;
    n.scenario = format!("{tag}: {}", n.scenario);
    if let Some(k) = kasetto {
        eprintln!("harness: {tag}: Kasetto's warm no-op");
        rows.push(n.clone());
        let mut row = kasetto_noop(w, args, fx, k)?;
        row.kst = n.kst;
        rows.push(row);
    } else {
        rows.push(n.clone());
    }
    let off = if wanted(Scenario::Offline) {
        eprintln!("harness: {tag}: offline re-sync into empty destinations");
        let mut o = offline(w, args, fx)?;
        o.scenario = format!("{tag}: {}", o.scenario);
        rows.push(o.clone());
        Some(o)
    } else {
        None
    };
    drop(servers);
    Ok((n, off))
}

/// Kasetto's warm no-op on the same config, in a project of its own (same HOME and skills):
/// an information row against kst's no-op, with SPEC 14's target (kst ≤ 0.5× Kasetto).
fn kasetto_noop(w: &Work, args: &Args, fx: &Fixtures, kasetto: &Path) -> Result<Row> {
    let project = w.root.join("kasetto-project");
    rm_rf(&project)?;
    fs::create_dir_all(&project)?;
    // Git shapes: the same repositories as forge archives over HTTPS, which is how Kasetto
    // fetches (it needs them for the install only; its no-op reads no network).
    let forge = match fx.local {
        Some(_) => {
            fs::copy(w.project.join("kasetto.yaml"), project.join("kasetto.yaml"))?;
            None
        }
        None => {
            let forge = Forge::start(w, fx)?;
            let mut y = String::from("agent: claude-code\nscope: project\nskills:\n");
            for r in &fx.repos {
                writeln!(y, "  - source: {}\n    skills: \"*\"", forge.url(r))?;
            }
            fs::write(project.join("kasetto.yaml"), y)?;
            Some(forge)
        }
    };
    let run = |what: &str| -> Result<Sample> {
        let mut c = w.cmd(kasetto);
        c.current_dir(&project).args(["sync", "--quiet"]);
        if let Some(f) = &forge {
            c.env("SSL_CERT_FILE", &f.tls.ca);
        }
        timed(&mut c, what)
    };
    run("kasetto sync (install)")?;
    std::thread::sleep(Duration::from_millis(1100));
    run("kasetto sync (warm)")?;
    let times: Vec<Duration> = (0..args.runs)
        .map(|_| run("kasetto sync (no-op)").map(|s| s.wall))
        .collect::<Result<_>>()?;
    rm_rf(&project)?;
    Ok(Row {
        scenario: String::new(),
        kst: Duration::ZERO,
        reference: "Kasetto 3.12, same config".into(),
        ref_time: median(times),
        target: Some(0.5),
        rss_kib: 0,
        skills: fx.skills,
        scaled: false,
    })
}

/// Kasetto 3.12 fetches a git source as a forge's archive over HTTPS
/// (`https://HOST/OWNER/REPO/archive/refs/heads/BRANCH.tar.gz` for a host it does not know),
/// not from a git server: the fixtures' repositories as such archives, from `git archive`,
/// served by [`TlsServer`] with a throwaway CA that only Kasetto's run trusts.
struct Forge {
    tls: TlsServer,
}

impl Forge {
    fn start(w: &Work, fx: &Fixtures) -> Result<Forge> {
        let dir = w.root.join("forge");
        rm_rf(&dir)?;
        let www = dir.join("www");
        for r in &fx.repos {
            let git_dir = w.remotes.join(format!("{r}.git"));
            let head = w
                .cmd("git")
                .arg("--git-dir")
                .arg(&git_dir)
                .args(["symbolic-ref", "--short", "HEAD"])
                .output()?;
            let branch = String::from_utf8(head.stdout)?.trim().to_string();
            let at = www.join(format!("bench/{r}/archive/refs/heads"));
            fs::create_dir_all(&at)?;
            let out = w
                .cmd("git")
                .arg("--git-dir")
                .arg(&git_dir)
                .args([
                    "archive",
                    "--format=tar.gz",
                    &format!("--prefix={r}-{branch}/"),
                    &branch,
                ])
                .output()?;
            ensure!(out.status.success(), "git archive of {r} failed");
            fs::write(at.join(format!("{branch}.tar.gz")), out.stdout)?;
        }
        let tls = TlsServer::start(&dir.join("tls"), &www)?;
        Ok(Forge { tls })
    }

    fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/bench/{repo}", self.tls.port)
    }
}

/// An HTTPS server on 127.0.0.1 serving the files of a folder (`openssl s_server -WWW`), with
/// a certificate for `localhost` and `127.0.0.1` from a throwaway CA (`ca`, valid two days)
/// that only the runs told about it trust. Shared with the test suite (remote configs, HTTPS
/// fetches).
pub struct TlsServer {
    child: Child,
    pub port: u16,
    /// The CA certificate (PEM) to trust, e.g. through `SSL_CERT_FILE`.
    pub ca: PathBuf,
}

impl TlsServer {
    /// Make the CA and the server's key and certificate in `tls`, then serve `www`.
    pub fn start(tls: &Path, www: &Path) -> Result<TlsServer> {
        fs::create_dir_all(tls)?;
        fs::create_dir_all(www)?;
        let openssl = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .current_dir(tls)
                .args(args)
                .output()?;
            ensure!(
                out.status.success(),
                "openssl {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kst throwaway CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ])?;
        fs::write(
            tls.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ])?;
        // A port picked free can be taken before s_server binds it: a few tries.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = Command::new("openssl")
                .current_dir(www)
                .args([
                    "s_server",
                    "-accept",
                    &format!("127.0.0.1:{port}"),
                    "-WWW",
                    "-quiet",
                ])
                .arg("-cert")
                .arg(tls.join("srv.pem"))
                .arg("-key")
                .arg(tls.join("srv.key"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut server = TlsServer {
                child,
                port,
                ca: tls.join("ca.pem"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!("openssl s_server did not start on 127.0.0.1")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_kasetto_3(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("kasetto 3."))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const MIB: f64 = 1024.0 * 1024.0;

/// One of the two servers.
struct Transport {
    label: &'static str,
    port: u16,
}

impl Transport {
    fn url(&self, repo: &str) -> String {
        format!("{}127.0.0.1:{}/{repo}.git", self.label, self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// The work area and running things

struct Work {
    root: PathBuf,
    kst: PathBuf,
    /// Bare repositories served by both servers.
    remotes: PathBuf,
    /// HOME of every child.
    home: PathBuf,
    /// kst's cache (KASETTO_CACHE_DIR).
    cache: PathBuf,
    /// The kst project: kasetto.yaml, kasetto.lock, .claude/skills.
    project: PathBuf,
    /// Scratch space for the references (clones, git work tree, cp copies).
    scratch: PathBuf,
}

impl Work {
    fn new(root: &Path, kst: PathBuf) -> Result<Work> {
        let w = Work {
            root: root.to_path_buf(),
            kst,
            remotes: root.join("remotes"),
            home: root.join("home"),
            cache: root.join("cache"),
            project: root.join("project"),
            scratch: root.join("scratch"),
        };
        for d in [&w.remotes, &w.home, &w.project, &w.scratch] {
            fs::create_dir_all(d)?;
        }
        Ok(w)
    }

    fn skills_dir(&self) -> PathBuf {
        self.project.join(".claude/skills")
    }

    /// A command with the harness's hermetic environment.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear();
        let vars: [(&str, OsString); 15] = [
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
            // No background gc or maintenance from building fixtures while timing.
            ("GIT_CONFIG_COUNT", "2".into()),
            ("GIT_CONFIG_KEY_0", "gc.auto".into()),
            ("GIT_CONFIG_VALUE_0", "0".into()),
            ("GIT_CONFIG_KEY_1", "maintenance.auto".into()),
            ("GIT_CONFIG_VALUE_1", "false".into()),
            ("HOME", self.home.clone().into()),
            ("XDG_CONFIG_HOME", self.home.join(".config").into()),
            ("XDG_CACHE_HOME", self.home.join(".cache").into()),
            ("XDG_DATA_HOME", self.home.join(".local/share").into()),
            ("KASETTO_CACHE_DIR", self.cache.clone().into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("NO_COLOR", "1".into()),
        ];
        c.envs(vars);
        c.current_dir(&self.root).stdin(Stdio::null());
        c
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let out = self
            .cmd("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_NAME", "Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .context("run git (is it installed?)")?;
        ensure!(
            out.status.success(),
            "git {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run kst in the project (untimed), failing with its output if it fails.
    fn kst(&self, args: &[&str]) -> Result<String> {
        let out = self
            .cmd(&self.kst)
            .current_dir(&self.project)
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "kst {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn kst_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&self.kst);
        c.current_dir(&self.project).args(args);
        c
    }

    fn write_config(&self, fx: &Fixtures, t: &Transport) -> Result<()> {
        let mut y = String::from("agent: claude-code\nscope: project\nskills:\n");
        if let Some(dir) = &fx.local {
            writeln!(y, "  - source: {}\n    skills: \"*\"", dir.display())?;
        } else {
            for r in &fx.repos {
                writeln!(y, "  - source: {}\n    skills: \"*\"", t.url(r))?;
            }
        }
        fs::write(self.project.join("kasetto.yaml"), y)?;
        Ok(())
    }

    /// Forget installed skills and the lock; with `keep_cache` false, also the cache.
    fn reset_kst(&self, keep_cache: bool) -> Result<()> {
        rm_rf(&self.project.join(".claude"))?;
        rm_rf(&self.project.join("kasetto.lock"))?;
        if !keep_cache {
            rm_rf(&self.cache)?;
        }
        Ok(())
    }

    /// Every fixture skill is installed, with all its files.
    fn check_installed(&self, fx: &Fixtures) -> Result<()> {
        let (dirs, files) = count_tree(&self.skills_dir())?;
        let skills = fs::read_dir(self.skills_dir())?.count();
        ensure!(
            skills == fx.skills && files == fx.files,
            "expected {} skills / {} files installed, found {skills} / {files} ({dirs} folders)",
            fx.skills,
            fx.files
        );
        Ok(())
    }
}

fn rm_rf(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(p).with_context(|| format!("remove {}", p.display()))
        }
        Ok(_) => fs::remove_file(p).with_context(|| format!("remove {}", p.display())),
    }
}

/// (folders, files) under `dir`, not following symlinks.
fn count_tree(dir: &Path) -> Result<(usize, usize)> {
    let (mut dirs, mut files) = (0, 0);
    for e in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            let (d, f) = count_tree(&e.path())?;
            dirs += d + 1;
            files += f;
        } else {
            files += 1;
        }
    }
    Ok((dirs, files))
}

/// One timed process: wall time and its own peak RSS.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    rss_kib: u64,
}

/// Spawn and wait with `wait4(2)`, which reports the peak RSS of this child alone (unlike
/// `getrusage(RUSAGE_CHILDREN)`, which keeps the maximum over every child so far).
fn spawn_timed(cmd: &mut Command) -> Result<(Instant, Child)> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    Ok((start, child))
}

fn wait_timed(start: Instant, mut child: Child, what: &str) -> Result<Sample> {
    // Drain stderr on a thread so a chatty child cannot block on a full pipe.
    let mut err = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let rc = loop {
        // SAFETY: `pid` is our own child, not yet reaped (std never waits on its own).
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let wall = start.elapsed();
    let stderr = reader.join().unwrap_or_default();
    ensure!(
        rc == pid,
        "wait4 on {what}: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    ensure!(ok, "{what} failed (status {status:#x}): {stderr}");
    // Linux reports ru_maxrss in KiB.
    Ok(Sample {
        wall,
        rss_kib: usage.ru_maxrss as u64,
    })
}

/// Time `cmd` (made by [`Work::cmd`]: its whole environment is explicit) and take its peak
/// RSS, through a small process of this binary that starts it ([`measure_child`]).
///
/// Why not `wait4` here: Linux keeps a process's peak RSS across `execve`, and a child started
/// by `fork`/`vfork` begins with its parent's high-water mark, so every child of this harness —
/// which holds 100,000-file fixtures at the scale step — reported at least the harness's own
/// peak (315 MiB for a 1,000-skill no-op). A fresh, small process in between starts each
/// measured command clean; it also takes the wall time, so its own start-up is not counted.
///
/// Where the harness runs as a library (the smoke test) there is no such process: the command
/// is waited for directly, and its peak RSS may include the caller's.
fn timed(cmd: &mut Command, what: &str) -> Result<Sample> {
    let Some(measurer) = MEASURER.get() else {
        let (start, child) = spawn_timed(cmd)?;
        return wait_timed(start, child, what);
    };
    let report = tempfile::NamedTempFile::new()?;
    let mut m = Command::new(measurer);
    m.env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    if let Some(dir) = cmd.get_current_dir() {
        m.current_dir(dir);
    }
    m.arg(MEASURE_CHILD)
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    let (start, child) = spawn_timed(&mut m)?;
    wait_timed(start, child, what)?;
    let text = fs::read_to_string(report.path())?;
    let mut fields = text.split(' ').map(str::parse::<u64>);
    let (Some(Ok(nanos)), Some(Ok(rss_kib))) = (fields.next(), fields.next()) else {
        bail!("{what}: no measurement from the measuring process");
    };
    Ok(Sample {
        wall: Duration::from_nanos(nanos),
        rss_kib,
    })
}

const MEASURE_CHILD: &str = "--measure-child";

/// This harness's own binary, when it runs as one (set in `main`).
static MEASURER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// `harness --measure-child REPORT PROGRAM ARGS…`: run PROGRAM (stdout and stderr inherited),
/// write "<wall ns> <peak RSS KiB>" of it to REPORT, and exit with its exit code.
fn measure_child(argv: &[OsString]) -> i32 {
    let [report, program, rest @ ..] = argv else {
        eprintln!("harness {MEASURE_CHILD}: REPORT PROGRAM [ARGS…]");
        return 2;
    };
    let start = Instant::now();
    let child = match Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("harness: cannot start {}: {e}", program.to_string_lossy());
            return 127;
        }
    };
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std never waits on its own).
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 1;
        }
    }
    let wall = start.elapsed();
    // Linux reports ru_maxrss in KiB.
    if fs::write(report, format!("{} {}", wall.as_nanos(), usage.ru_maxrss)).is_err() {
        return 1;
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    }
}

/// `--runs` warm no-op syncs of the project, each followed by `git status --porcelain` in the
/// work tree `wt` of the same files: kst's times, git's times, kst's peak RSS.
fn noop_against_git_status(
    w: &Work,
    args: &Args,
    wt: &Path,
) -> Result<(Vec<Duration>, Vec<Duration>, u64)> {
    let (mut k, mut g) = (Vec::new(), Vec::new());
    let mut rss = 0;
    for _ in 0..args.runs {
        let s = timed(&mut w.kst_cmd(&["sync", "-q"]), "kst sync (no-op)")?;
        k.push(s.wall);
        rss = rss.max(s.rss_kib);
        let mut c = w.cmd("git");
        c.current_dir(wt).args(["status", "--porcelain"]);
        g.push(timed(&mut c, "git status")?.wall);
    }
    Ok((k, g, rss))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixtures {
    shape: Shape,
    /// Repository names (`r00`, …, or `mono`), served as `<name>.git`; none for a local folder.
    repos: Vec<String>,
    /// The local source folder (the local shape).
    local: Option<PathBuf>,
    skills: usize,
    files: usize,
    bytes: u64,
}

/// xorshift64*: deterministic content, so every run and machine builds the same repos.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "skill", "agent", "commit", "tree", "cache", "fetch", "install", "folder", "lock", "plan",
    "the", "a", "of", "to", "and", "when", "every", "file", "source", "branch", "tag", "review",
    "test", "build", "deploy", "config", "yaml", "markdown", "python", "script", "output",
];

/// Markdown-ish text of about `len` bytes: compressible like real skill files.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut col = 0;
    while out.len() < len {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if col > 72 {
            out.push(b'\n');
            col = 0;
        } else {
            out.push(b' ');
        }
    }
    out.push(b'\n');
    out
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<u64> {
    fs::create_dir_all(path.parent().expect("has a parent"))?;
    fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(bytes.len() as u64)
}

/// N repos × M skills × K files under `skills/<name>/`: `SKILL.md`, an executable
/// `scripts/run.sh`, Markdown references (some nested), and in the first `--large` of every M
/// skills one large incompressible file instead of a reference. Each repo is committed once
/// with a fixed signature and date, cloned bare into `remotes/` and repacked, as a forge
/// serves it. The monorepo shape is one repo of N × M × `scale` skills; the local shape is the
/// same files as a plain folder (no git).
fn build_fixtures(w: &Work, args: &Args, shape: Shape, scale: usize) -> Result<Fixtures> {
    // A local source lives inside the project: a config found in the working directory may
    // read only there until it is trusted (SPEC 3 "Trust").
    let src = match shape {
        Shape::Local => w.project.join("packs"),
        Shape::Spread | Shape::Monorepo => w.root.join("src"),
    };
    rm_rf(&src)?;
    let mut fx = Fixtures {
        shape,
        repos: Vec::new(),
        local: None,
        skills: 0,
        files: 0,
        bytes: 0,
    };
    let (repos, per_repo) = match shape {
        Shape::Spread => (args.repos, args.skills),
        Shape::Monorepo | Shape::Local => (1, args.repos * args.skills * scale),
    };
    for r in 0..repos {
        let repo = match shape {
            Shape::Spread => format!("r{r:02}"),
            Shape::Monorepo | Shape::Local => "mono".to_string(),
        };
        let dir = src.join(&repo);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (r as u64 + 1));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("README.md"), format!("# Fixture pack {repo}\n"))?;
        for s in 0..per_repo {
            let name = format!("{repo}-s{s:05}");
            let sd = dir.join("skills").join(&name);
            let mut body = format!(
                "---\nname: {name}\ndescription: Fixture skill {s} of pack {repo}, for benchmarks.\n---\n\n# {name}\n\n"
            )
            .into_bytes();
            body.extend(text(&mut rng, 1200));
            fx.bytes += write(&sd.join("SKILL.md"), &body, 0o644)?;
            let mut made = 1;
            if made < args.files {
                let script = format!("#!/bin/sh\n# {name}\nset -eu\necho \"running {name}\"\n");
                fx.bytes += write(&sd.join("scripts/run.sh"), script.as_bytes(), 0o755)?;
                made += 1;
            }
            let mut large = usize::from(s % args.skills < args.large);
            let mut k = 0;
            while made < args.files {
                if large > 0 {
                    let mut blob = vec![0u8; args.large_kib * 1024];
                    for chunk in blob.chunks_mut(8) {
                        let v = rng.next().to_le_bytes();
                        chunk.copy_from_slice(&v[..chunk.len()]);
                    }
                    fx.bytes += write(&sd.join("assets/large.bin"), &blob, 0o644)?;
                    large -= 1;
                } else {
                    let sub = if k % 3 == 2 {
                        "reference/deep"
                    } else {
                        "reference"
                    };
                    let len = 300 + rng.below(6000) as usize;
                    let t = text(&mut rng, len);
                    fx.bytes += write(&sd.join(format!("{sub}/doc-{k:02}.md")), &t, 0o644)?;
                    k += 1;
                }
                made += 1;
            }
            fx.skills += 1;
            fx.files += made;
        }
        if shape == Shape::Local {
            fx.local = Some(dir.clone());
            fx.repos.push(repo);
            continue;
        }
        w.git(&dir, &["init", "-q", "-b", "main"])?;
        w.git(&dir, &["add", "-A"])?;
        w.git(&dir, &["commit", "-q", "-m", "fixture"])?;
        let bare = w.remotes.join(format!("{repo}.git"));
        rm_rf(&bare)?;
        w.git(
            &w.root,
            &[
                "clone",
                "-q",
                "--bare",
                "--no-local",
                &dir.to_string_lossy(),
                &bare.to_string_lossy(),
            ],
        )?;
        // kst fetches a locked commit by id; forges allow that.
        w.git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"])?;
        w.git(&bare, &["repack", "-adq"])?;
        fx.repos.push(repo);
    }
    // A plain copy of what kst installs, for the references.
    let plain = w.scratch.join("plain");
    rm_rf(&plain)?;
    fs::create_dir_all(&plain)?;
    for r in &fx.repos {
        for e in fs::read_dir(src.join(r).join("skills"))? {
            let e = e?;
            let st = w
                .cmd("cp")
                .arg("-r")
                .arg(e.path())
                .arg(plain.join(e.file_name()))
                .status()?;
            ensure!(st.success(), "cp -r {} failed", e.path().display());
        }
    }
    Ok(fx)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone)]
struct Row {
    scenario: String,
    kst: Duration,
    reference: String,
    ref_time: Duration,
    /// Target ratio (kst / reference), or None for information-only rows.
    target: Option<f64>,
    rss_kib: u64,
    /// Skills synced in the measured run.
    skills: usize,
    /// A run of the scale step (its memory target is 200 MiB, not 100).
    scaled: bool,
}

/// Commands and instructions (SPEC 14): a local pack of `--commands` commands (a tenth of them
/// namespaced) and `--instructions` instructions synced into three agents (claude-code,
/// cursor, gemini-cli: Markdown, body-only Markdown and TOML commands; CLAUDE.md and GEMINI.md
/// blocks and Cursor rule files); the warm no-op against `git status --porcelain` on a work
/// tree of the written files.
fn files_noop(w: &Work, args: &Args) -> Result<Row> {
    // Inside the project: a config found in the working directory reads only inside it
    // until trusted.
    let pack = w.project.join("pack");
    let mut rng = Rng(0x5eed_f11e);
    for i in 0..args.commands {
        let rel = if i % 10 == 0 {
            format!("commands/ns{}/c{i}.md", i % 7)
        } else {
            format!("commands/c{i}.md")
        };
        let mut body = format!("---\ndescription: command {i}\n---\nDo $ARGUMENTS.\n").into_bytes();
        body.extend(text(&mut rng, 400));
        write(&pack.join(rel), &body, 0o644)?;
    }
    for i in 0..args.instructions {
        let mut body = format!("---\ndescription: rule {i}\nalwaysApply: true\n---\n").into_bytes();
        body.extend(text(&mut rng, 300));
        write(&pack.join(format!("instructions/r{i}.md")), &body, 0o644)?;
    }
    let config = format!(
        "agent: [claude-code, cursor, gemini-cli]\nscope: project\ncommands:\n  - source: {p}\n    commands: \"*\"\ninstructions:\n  - source: {p}\n    instructions: \"*\"\n",
        p = pack.display()
    );
    fs::write(w.project.join("kasetto.yaml"), config)?;
    w.kst(&["sync", "-q"]).context("initial sync")?;
    let items = args.commands + args.instructions;
    let json = w.kst(&["sync", "--json"])?;
    let doc: serde_json::Value = serde_json::from_str(&json)?;
    let unchanged = doc["summary"]["unchanged"].as_u64().unwrap_or(0) as usize;
    ensure!(
        unchanged == items,
        "the warm sync was not a no-op: {}",
        doc["summary"]
    );
    // The reference: a git work tree of exactly what kst wrote.
    let wt = w.scratch.join("files-worktree");
    rm_rf(&wt)?;
    fs::create_dir_all(&wt)?;
    for name in [".claude", ".cursor", ".gemini", "CLAUDE.md", "GEMINI.md"] {
        let st = w
            .cmd("cp")
            .arg("-r")
            .arg(w.project.join(name))
            .arg(&wt)
            .status()?;
        ensure!(st.success(), "cp -r {name} failed");
    }
    w.git(&wt, &["init", "-q"])?;
    w.git(&wt, &["add", "-A"])?;
    w.git(&wt, &["commit", "-q", "-m", "snapshot"])?;
    std::thread::sleep(Duration::from_millis(1100));
    w.git(&wt, &["update-index", "-q", "--refresh"])?;
    let files = count_tree(&wt)?.1;
    let (k, g, rss) = noop_against_git_status(w, args, &wt)?;
    rm_rf(&wt)?;
    Ok(Row {
        scenario: format!(
            "warm no-op sync, {} commands + {} instructions into 3 agents ({files} files)",
            args.commands, args.instructions
        ),
        kst: median(k),
        reference: "git status --porcelain, the written files".into(),
        ref_time: median(g),
        target: Some(1.0),
        rss_kib: rss,
        skills: 0,
        scaled: false,
    })
}

/// Cold: an empty cache and no lock, every repo fetched and installed; against cloning the
/// same repos with the git CLI (which also fetches and checks files out).
fn cold(w: &Work, args: &Args, fx: &Fixtures, t: &Transport) -> Result<Vec<Row>> {
    w.write_config(fx, t)?;
    let clones = w.scratch.join("clones");
    let (mut k, mut seq, mut par) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss = 0;
    for _ in 0..args.cold_runs {
        w.reset_kst(false)?;
        let s = timed(&mut w.kst_cmd(&["sync", "-q"]), "kst sync (cold)")?;
        w.check_installed(fx)?;
        k.push(s.wall);
        rss = rss.max(s.rss_kib);

        rm_rf(&clones)?;
        fs::create_dir_all(&clones)?;
        let start = Instant::now();
        for r in &fx.repos {
            let mut c = w.cmd("git");
            c.args(["clone", "-q", "--depth", "1", &t.url(r)])
                .arg(clones.join(r));
            timed(&mut c, "git clone")?;
        }
        seq.push(start.elapsed());

        rm_rf(&clones)?;
        fs::create_dir_all(&clones)?;
        let start = Instant::now();
        let children: Vec<(Instant, Child)> = fx
            .repos
            .iter()
            .map(|r| {
                let mut c = w.cmd("git");
                c.args(["clone", "-q", "--depth", "1", &t.url(r)])
                    .arg(clones.join(r));
                spawn_timed(&mut c)
            })
            .collect::<Result<_>>()?;
        for (s, c) in children {
            wait_timed(s, c, "git clone (parallel)")?;
        }
        par.push(start.elapsed());
    }
    rm_rf(&clones)?;
    let kst = median(k);
    Ok(vec![
        Row {
            scenario: format!("cold sync, {} repos, {}", fx.repos.len(), t.label),
            kst,
            reference: "git clone --depth 1, one after another".into(),
            ref_time: median(seq),
            target: Some(0.6),
            rss_kib: rss,
            skills: fx.skills,
            scaled: false,
        },
        Row {
            scenario: String::new(),
            kst,
            reference: "git clone --depth 1, all at once".into(),
            ref_time: median(par),
            target: None,
            rss_kib: rss,
            skills: fx.skills,
            scaled: false,
        },
    ])
}

/// Warm no-op: everything installed and unchanged; against `git status --porcelain` on a git
/// work tree holding the same files (git's index is the state of the art for "did anything
/// change?").
fn noop(w: &Work, args: &Args, fx: &Fixtures) -> Result<Row> {
    let wt = w.scratch.join("worktree");
    rm_rf(&wt)?;
    let st = w
        .cmd("cp")
        .arg("-r")
        .arg(w.skills_dir())
        .arg(&wt)
        .status()?;
    ensure!(st.success(), "cp -r of the installed skills failed");
    w.git(&wt, &["init", "-q"])?;
    w.git(&wt, &["add", "-A"])?;
    w.git(&wt, &["commit", "-q", "-m", "snapshot"])?;
    // As for kst: let the index's timestamps settle, then refresh it once.
    std::thread::sleep(Duration::from_millis(1100));
    w.git(&wt, &["update-index", "-q", "--refresh"])?;
    let out = w.git(&wt, &["status", "--porcelain"])?;
    ensure!(out.is_empty(), "git status is not clean: {out}");

    // Warm up (fills kst's stat cache) and check it really is a no-op.
    let json = w.kst(&["sync", "--json"])?;
    let doc: serde_json::Value = serde_json::from_str(&json)?;
    let unchanged = doc["summary"]["unchanged"].as_u64().unwrap_or(0) as usize;
    ensure!(
        unchanged == fx.skills,
        "the warm sync was not a no-op: {}",
        doc["summary"]
    );
    let (k, g, rss) = noop_against_git_status(w, args, &wt)?;
    rm_rf(&wt)?;
    Ok(Row {
        scenario: format!("warm no-op sync, {} skills / {} files", fx.skills, fx.files),
        kst: median(k),
        reference: "git status --porcelain, same files".into(),
        ref_time: median(g),
        target: Some(1.0),
        rss_kib: rss,
        skills: fx.skills,
        scaled: fx.skills > args.repos * args.skills,
    })
}

/// Offline re-sync: lock and cache in place, destinations deleted; against `cp -r` of the
/// same files from a warm page cache.
fn offline(w: &Work, args: &Args, fx: &Fixtures) -> Result<Row> {
    let plain = w.scratch.join("plain");
    let copy = w.scratch.join("copy");
    let (mut k, mut c) = (Vec::new(), Vec::new());
    let mut rss = 0;
    for _ in 0..args.runs {
        rm_rf(&w.skills_dir())?;
        let s = timed(
            &mut w.kst_cmd(&["sync", "-q", "--offline"]),
            "kst sync --offline",
        )?;
        w.check_installed(fx)?;
        k.push(s.wall);
        rss = rss.max(s.rss_kib);

        rm_rf(&copy)?;
        let mut cp = w.cmd("cp");
        cp.arg("-r").arg(&plain).arg(&copy);
        c.push(timed(&mut cp, "cp -r")?.wall);
    }
    rm_rf(&copy)?;
    Ok(Row {
        scenario: format!("offline re-sync into empty folders, {} files", fx.files),
        kst: median(k),
        reference: "cp -r, same files".into(),
        ref_time: median(c),
        target: Some(1.2),
        rss_kib: rss,
        skills: fx.skills,
        scaled: fx.skills > args.repos * args.skills,
    })
}

// ---------------------------------------------------------------------------------------------
// The table

fn fmt_dur(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn render(
    args: &Args,
    fx: &Fixtures,
    kst: &Path,
    rows: &[Row],
    notes: &[String],
    took: Duration,
) -> String {
    let mut out = String::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        out,
        "kst benchmark: {} repos × {} skills × {} files = {} files, {:.1} MiB ({} large file(s) of {} KiB per {} skills); {} CPU(s)",
        args.repos,
        args.skills,
        args.files,
        fx.files,
        fx.bytes as f64 / MIB,
        args.large.min(args.skills),
        args.large_kib,
        args.skills,
        cpus
    );
    let _ = writeln!(
        out,
        "shapes: spread = {} repos × {} skills; monorepo = one repo, the same skills under skills/; local = one local folder of them; scale step ×{} (monorepo, local) on the first file system",
        args.repos, args.skills, args.scale
    );
    let _ = writeln!(
        out,
        "medians of {} runs (cold: {}); ratio = kst / reference; kst = {}\n",
        args.runs,
        args.cold_runs,
        kst.display()
    );
    let header = [
        "scenario",
        "kst",
        "reference",
        "ref.",
        "ratio",
        "target",
        "met",
        "kst peak RSS",
    ];
    let mut table: Vec<[String; 8]> = vec![header.map(String::from)];
    let mut met = 0;
    let mut targets = 0;
    let (mut peak, mut peak_scaled) = (0, 0);
    for r in rows {
        let ratio = r.kst.as_secs_f64() / r.ref_time.as_secs_f64().max(1e-9);
        let (target, ok) = match r.target {
            Some(t) => {
                targets += 1;
                let ok = ratio <= t;
                met += usize::from(ok);
                (
                    format!("≤ {t:.2}×"),
                    if ok { "yes" } else { "NO" }.to_string(),
                )
            }
            None => ("(info)".into(), String::new()),
        };
        if r.scaled {
            peak_scaled = peak_scaled.max(r.rss_kib);
        } else {
            peak = peak.max(r.rss_kib);
        }
        table.push([
            r.scenario.clone(),
            if r.scenario.is_empty() {
                String::new()
            } else {
                fmt_dur(r.kst)
            },
            r.reference.clone(),
            fmt_dur(r.ref_time),
            format!("{ratio:.2}×"),
            target,
            ok,
            if r.scenario.is_empty() || r.rss_kib == 0 {
                String::new()
            } else {
                format!("{:.1} MiB", r.rss_kib as f64 / 1024.0)
            },
        ]);
    }
    for (label, value, cap) in [
        ("peak RSS, any kst run above", peak, 100.0),
        ("peak RSS, the scale step's runs", peak_scaled, 200.0),
    ] {
        if value == 0 {
            continue;
        }
        let ok = value as f64 / 1024.0 <= cap;
        targets += 1;
        met += usize::from(ok);
        table.push([
            label.into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("≤ {cap:.0} MiB"),
            if ok { "yes" } else { "NO" }.into(),
            format!("{:.1} MiB", value as f64 / 1024.0),
        ]);
    }
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..8).map(width).collect();
    for (n, r) in table.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            // Numbers right-aligned, text left-aligned.
            if matches!(i, 1 | 3 | 4 | 7) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * 7;
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    for n in notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    let _ = writeln!(
        out,
        "\n{met} of {targets} targets met; the harness took {:.0} s",
        took.as_secs_f64()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Servers on 127.0.0.1

/// Path of a git helper (`git-daemon`, `git-http-backend`). Run directly, not as `git daemon`:
/// the wrapper runs the helper as its child, so killing the wrapper would orphan the server.
fn git_helper(name: &str) -> Result<PathBuf> {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .context("run `git --exec-path` (is git installed?)")?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(name);
    ensure!(p.exists(), "{} not found", p.display());
    Ok(p)
}

fn isolated(c: &mut Command, home: &Path) {
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
}

/// `git daemon` serving git://, one `git daemon --inetd` per connection behind our own
/// listener. Standalone, git daemon listens with a backlog of 5: twenty simultaneous connects
/// overflow it, the kernel drops the extra SYNs and those clients wait a full second to
/// retransmit — a penalty on concurrency that no forge imposes. Our listener has the usual
/// backlog; everything after accept() is git daemon's own.
struct GitDaemon {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl GitDaemon {
    fn start(base: &Path) -> Result<GitDaemon> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let daemon = git_helper("git-daemon")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (base, flag) = (base.to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let mut c = Command::new(&daemon);
                isolated(&mut c, &base);
                c.args(["--inetd", "--export-all", "--enable=upload-pack"])
                    .arg(format!("--base-path={}", base.display()))
                    .arg(&base)
                    .stderr(Stdio::null());
                let fd = std::os::fd::OwnedFd::from(stream);
                let Ok(out) = fd.try_clone() else { continue };
                c.stdin(Stdio::from(fd)).stdout(Stdio::from(out));
                // Reap each child on its own thread; it ends when its client hangs up.
                if let Ok(mut child) = c.spawn() {
                    std::thread::spawn(move || child.wait());
                }
            }
        });
        Ok(GitDaemon { port, stop })
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A minimal HTTP/1.1 server (keep-alive, chunked request bodies) running `git http-backend`
/// as CGI for each request, like a forge's smart-HTTP endpoint.
struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    fn start(base: &Path) -> Result<HttpServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let backend = git_helper("git-http-backend")?;
        let (base, flag) = (base.to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (base, backend) = (base.clone(), backend.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &base, &backend, port);
                });
            }
        });
        Ok(HttpServer { port, stop })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn line(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf)? == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn serve(stream: TcpStream, base: &Path, backend: &Path, port: u16) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    loop {
        let Some(first) = line(&mut r)? else {
            return Ok(());
        };
        if first.is_empty() {
            continue;
        }
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or("GET").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        while let Some(h) = line(&mut r)? {
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let size = line(&mut r)?.unwrap_or_default();
                let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
                if n == 0 {
                    while line(&mut r)?.is_some_and(|l| !l.is_empty()) {}
                    break;
                }
                let at = body.len();
                body.resize(at + n, 0);
                r.read_exact(&mut body[at..])?;
                line(&mut r)?;
            }
        } else if let Some(n) = get("content-length") {
            body.resize(n.parse()?, 0);
            r.read_exact(&mut body)?;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut c = Command::new(backend);
        isolated(&mut c, base);
        c.env("GIT_PROJECT_ROOT", base)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("SERVER_NAME", "127.0.0.1")
            .env("SERVER_PORT", port.to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_LENGTH", body.len().to_string());
        for (var, h) in [
            ("CONTENT_TYPE", "content-type"),
            ("HTTP_GIT_PROTOCOL", "git-protocol"),
            ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ] {
            if let Some(v) = get(h) {
                c.env(var, v);
            }
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let cgi = child.wait_with_output()?;
        let _ = feeder.join();
        let split = cgi
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| {
                cgi.stdout
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, 2))
            });
        let Some((at, sep)) = split else {
            bail!("malformed CGI output");
        };
        let (head, payload) = (&cgi.stdout[..at], &cgi.stdout[at + sep..]);
        let mut status = "200 OK".to_string();
        let mut resp = String::new();
        for h in String::from_utf8_lossy(head).lines() {
            match h.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().into(),
                Some((k, _)) if k.eq_ignore_ascii_case("content-length") => {}
                Some(_) => {
                    resp.push_str(h);
                    resp.push_str("\r\n");
                }
                None => {}
            }
        }
        write!(
            out,
            "HTTP/1.1 {status}\r\n{resp}Content-Length: {}\r\n\r\n",
            payload.len()
        )?;
        out.write_all(payload)?;
        out.flush()?;
        if get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            return Ok(());
        }
    }
}
