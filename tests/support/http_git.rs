//! A tiny HTTP/1.1 server on 127.0.0.1 that runs `git http-backend` as CGI,
//! with optional Basic auth, redirect mode, static files and a request log.
//!
//! Written on std only (no HTTP crate) so it can record exactly what clients
//! send (Authorization headers, chunking, Git-Protocol).
//!
//! - Keep-alive is supported (libgit2 reuses connections) and every response
//!   carries a Content-Length (CGI output is buffered).
//! - Request bodies: `Content-Length` or `Transfer-Encoding: chunked` (git CLI
//!   chunks POSTs larger than http.postBuffer; libgit2 1.9 chunks only
//!   receive-pack). Bodies are de-chunked here and handed to the CGI with an
//!   exact CONTENT_LENGTH. `Content-Encoding: gzip` is passed through as
//!   HTTP_CONTENT_ENCODING: http-backend inflates it itself.
//! - `Expect: 100-continue` is answered with `100 Continue`.
//! - `Git-Protocol` is passed as HTTP_GIT_PROTOCOL (http-backend turns it into
//!   GIT_PROTOCOL, enabling protocol v2 for the git CLI).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Server behaviour. `HttpOptions::default()` = plain anonymous git server.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// Require `Authorization: Basic base64(user:password)` on every request;
    /// otherwise answer 401 with `WWW-Authenticate: Basic realm="test"`.
    pub require_basic_auth: Option<(String, String)>,
    /// Answer every request with `302 Location: <redirect_to><path>?<query>`
    /// (e.g. `"http://localhost:1234"` to send clients to another host).
    pub redirect_to: Option<String>,
    /// Non-git paths served verbatim: path (e.g. `/cfg/kasetto.yaml`) →
    /// (content type, body). Checked before git; auth still applies.
    pub static_files: BTreeMap<String, (String, Vec<u8>)>,
    /// Sleep this long before answering each request (timeout tests).
    pub delay: Option<Duration>,
    /// With `redirect_to` and `require_basic_auth`: ask for credentials first (401), and
    /// redirect only a request that carries them.
    pub redirect_after_auth: bool,
}

impl HttpOptions {
    pub fn basic_auth(user: &str, password: &str) -> HttpOptions {
        HttpOptions {
            require_basic_auth: Some((user.into(), password.into())),
            ..Default::default()
        }
    }
    pub fn redirect(to_base_url: &str) -> HttpOptions {
        HttpOptions {
            redirect_to: Some(to_base_url.into()),
            ..Default::default()
        }
    }
    /// Builder: add a static file.
    pub fn with_file(
        mut self,
        path: &str,
        content_type: &str,
        body: impl AsRef<[u8]>,
    ) -> HttpOptions {
        self.static_files
            .insert(path.into(), (content_type.into(), body.as_ref().to_vec()));
        self
    }
    /// Builder: redirect (like `redirect`) but only after Basic auth succeeded.
    pub fn then_redirect(mut self, to_base_url: &str) -> HttpOptions {
        self.redirect_to = Some(to_base_url.into());
        self.redirect_after_auth = true;
        self
    }
    pub fn with_delay(mut self, delay: Duration) -> HttpOptions {
        self.delay = Some(delay);
        self
    }
}

/// One request as received, and the status we answered.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    /// Path without the query string, as sent (not percent-decoded).
    pub path: String,
    pub query: String,
    /// Host header value.
    pub host: Option<String>,
    pub authorization: Option<String>,
    pub git_protocol: Option<String>,
    pub user_agent: Option<String>,
    pub content_encoding: Option<String>,
    /// True if the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Decoded body length.
    pub body_len: usize,
    pub status: u16,
}

struct Shared {
    base: PathBuf,
    options: HttpOptions,
    port: u16,
    stop: AtomicBool,
    log: Mutex<Vec<RequestRecord>>,
    cgi_stderr: Mutex<String>,
    // Clones of live connections, shut down on stop so their threads exit.
    conns: Mutex<Vec<TcpStream>>,
}

pub struct HttpGitServer {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl HttpGitServer {
    /// Serve the repos under `base_path` (GIT_PROJECT_ROOT) on 127.0.0.1:<random>.
    pub fn start(base_path: impl AsRef<Path>, options: HttpOptions) -> HttpGitServer {
        let base = base_path
            .as_ref()
            .canonicalize()
            .expect("canonicalize http base path");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            base,
            options,
            port,
            stop: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            cgi_stderr: Mutex::new(String::new()),
            conns: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    s.conns.lock().unwrap().push(clone);
                }
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(&s, stream);
                });
            }
        });
        HttpGitServer {
            shared,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `http://127.0.0.1:PORT/<repo_rel>`.
    pub fn url(&self, repo_rel: &str) -> String {
        self.url_with_host("127.0.0.1", repo_rel)
    }

    /// Same server under another host name, e.g. `"localhost"` — to test that a
    /// token for one host is not sent to another (both resolve to loopback).
    pub fn url_with_host(&self, host: &str, repo_rel: &str) -> String {
        format!(
            "http://{host}:{}/{}",
            self.shared.port,
            repo_rel.trim_start_matches('/')
        )
    }

    /// `http://127.0.0.1:PORT` (for `HttpOptions::redirect`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// Number of requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// Number of 401 answers so far.
    pub fn auth_failures(&self) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 401)
            .count()
    }

    /// Every `Authorization` header value received, in order (requests without one are skipped).
    pub fn seen_authorizations(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.authorization.clone())
            .collect()
    }

    /// All requests so far.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forget requests seen so far (counters restart at 0).
    pub fn reset_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Whatever `git http-backend` wrote to stderr (for assert messages).
    pub fn cgi_stderr(&self) -> String {
        self.shared.cgi_stderr.lock().unwrap().clone()
    }

    /// Stop accepting and close live connections (also done on drop).
    pub fn stop(&mut self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the thread sees the stop flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.shared.port)),
            Duration::from_secs(1),
        );
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for HttpGitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// --- Basic auth helpers ----------------------------------------------------

pub fn base64_encode(input: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(input)
}

pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64ct::Encoding;
    base64ct::Base64::decode_vec(input.trim()).ok()
}

/// `Basic base64(user:password)` — the exact header value a client should send.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// Decode an `Authorization: Basic ...` value into (user, password).
pub fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(base64_decode(rest)?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

// --- HTTP handling ---------------------------------------------------------

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>, // names lower-cased
    body: Vec<u8>,
    chunked: bool,
    keep_alive: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn serve_connection(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    // Don't let an idle keep-alive connection pin a thread forever.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(req) = read_request(&mut reader, &mut writer)? else {
            return Ok(());
        };
        let resp = handle(shared, &req);
        shared.log.lock().unwrap().push(RequestRecord {
            method: req.method.clone(),
            path: req.target.split('?').next().unwrap_or("").to_string(),
            query: req
                .target
                .split_once('?')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default(),
            host: req.header("host").map(str::to_string),
            authorization: req.header("authorization").map(str::to_string),
            git_protocol: req.header("git-protocol").map(str::to_string),
            user_agent: req.header("user-agent").map(str::to_string),
            content_encoding: req.header("content-encoding").map(str::to_string),
            chunked: req.chunked,
            body_len: req.body.len(),
            status: resp.status,
        });
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, resp.reason);
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        head.push_str(if req.keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        writer.write_all(head.as_bytes())?;
        if req.method != "HEAD" {
            writer.write_all(&resp.body)?;
        }
        writer.flush()?;
        if !req.keep_alive {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Read one line (CRLF or LF), without the terminator. `None` on clean EOF.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(64 * 1024).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn read_request(
    r: &mut BufReader<TcpStream>,
    w: &mut TcpStream,
) -> std::io::Result<Option<Request>> {
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue, // tolerate stray CRLF between requests
            Some(l) => break l,
        }
    };
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or_else(|| bad("no method"))?.to_string();
    let target = parts.next().ok_or_else(|| bad("no target"))?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();

    let mut headers = Vec::new();
    loop {
        let l = read_line(r)?.ok_or_else(|| bad("eof in headers"))?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let conn = get("connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        conn.contains("keep-alive")
    } else {
        !conn.contains("close")
    };

    if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        w.flush()?;
    }

    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(r)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
        chunked,
        keep_alive,
    }))
}

/// Decode a chunked body: `<hex>[;ext]\r\n<data>\r\n ... 0\r\n[trailers]\r\n`.
fn read_chunked(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("eof in chunk size"))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, until an empty line.
            while let Some(l) = read_line(r)? {
                if l.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let crlf = read_line(r)?.ok_or_else(|| bad("eof after chunk"))?;
        if !crlf.is_empty() {
            return Err(bad("missing CRLF after chunk"));
        }
    }
}

fn simple(status: u16, reason: &str, body: &str) -> Response {
    Response {
        status,
        reason: reason.into(),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn handle(shared: &Shared, req: &Request) -> Response {
    let opts = &shared.options;
    if let Some(d) = opts.delay {
        std::thread::sleep(d);
    }
    let redirect = |to: &String| {
        let mut resp = simple(302, "Found", "redirect\n");
        resp.headers.push((
            "Location".into(),
            format!("{}{}", to.trim_end_matches('/'), req.target),
        ));
        resp
    };
    if let Some(to) = &opts.redirect_to
        && !opts.redirect_after_auth
    {
        return redirect(to);
    }
    let mut remote_user = None;
    if let Some((user, pass)) = &opts.require_basic_auth {
        match req.header("authorization").and_then(decode_basic) {
            Some((u, p)) if &u == user && &p == pass => remote_user = Some(u),
            _ => {
                let mut resp = simple(401, "Unauthorized", "authentication required\n");
                resp.headers
                    .push(("WWW-Authenticate".into(), "Basic realm=\"test\"".into()));
                return resp;
            }
        }
    }
    if let Some(to) = &opts.redirect_to {
        return redirect(to);
    }
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.target.as_str(), ""),
    };
    if let Some((ctype, body)) = opts.static_files.get(path) {
        return Response {
            status: 200,
            reason: "OK".into(),
            headers: vec![("Content-Type".into(), ctype.clone())],
            body: body.clone(),
        };
    }
    run_cgi(
        shared,
        req,
        &percent_decode(path),
        query,
        remote_user.as_deref(),
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run `git http-backend` for one request and turn its CGI output into a response.
fn run_cgi(
    shared: &Shared,
    req: &Request,
    path_info: &str,
    query: &str,
    remote_user: Option<&str>,
) -> Response {
    // Run the helper directly (see `git_helper`): one process per request, not two.
    let mut cmd = Command::new(super::git_daemon::git_helper("git-http-backend"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &shared.base)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &shared.base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_NAME", "127.0.0.1")
        .env("SERVER_PORT", shared.port.to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", &req.method)
        .env("SCRIPT_NAME", "")
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        // Always exact: chunked bodies were decoded above.
        .env("CONTENT_LENGTH", req.body.len().to_string());
    if let Some(ct) = req.header("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(u) = remote_user {
        cmd.env("REMOTE_USER", u);
    }
    if let Some(p) = req.header("git-protocol") {
        cmd.env("HTTP_GIT_PROTOCOL", p);
    }
    if let Some(enc) = req.header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return simple(
                500,
                "Internal Server Error",
                &format!("spawn git http-backend: {e}\n"),
            );
        }
    };
    // Feed stdin from another thread: the backend may start writing before it has read everything.
    let mut stdin = child.stdin.take().expect("stdin");
    let body = req.body.clone();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            return simple(
                500,
                "Internal Server Error",
                &format!("git http-backend: {e}\n"),
            );
        }
    };
    let _ = feeder.join();
    if !out.stderr.is_empty() {
        shared
            .cgi_stderr
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(&out.stderr));
    }
    parse_cgi_output(&out.stdout)
}

/// Split CGI output into headers (with `Status:`) and body.
fn parse_cgi_output(out: &[u8]) -> Response {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match find(out, b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => return simple(502, "Bad Gateway", "malformed CGI output\n"),
        },
    };
    let mut resp = Response {
        status: 200,
        reason: "OK".into(),
        headers: Vec::new(),
        body: body.to_vec(),
    };
    for line in String::from_utf8_lossy(head).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("status") {
            let (code, reason) = v.split_once(' ').unwrap_or((v, ""));
            resp.status = code.parse().unwrap_or(500);
            resp.reason = reason.to_string();
        } else if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection")
        {
            resp.headers.push((k.to_string(), v.to_string()));
        }
    }
    resp
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
