//! Secret managers: `${kst:TAG:PAYLOAD}` runs the manager's own CLI (SPEC 10c).
//!
//! | tag | argument vector |
//! |---|---|
//! | `op` | `op read --no-newline op://VAULT/ITEM/FIELD` |
//! | `vault` | `vault kv get -field=FIELD PATH` (`PATH#FIELD`) |
//! | `kp`, `keepass` | `keepassxc-cli show --quiet -s -a ATTR [--key-file KF] [--no-password] DB ENTRY` (`ENTRY#ATTR`, default `Password`; the password of `KST_KEEPASS_PASSWORD` on stdin) |
//! | `aws` | `aws secretsmanager get-secret-value --secret-id ID --query SecretString --output text` (`ID#KEY`) |
//! | `gcp` | `gcloud secrets versions access latest --secret NAME` (`NAME#KEY`) |
//! | `az` | `az keyvault secret show --vault-name VAULT --name NAME --query value --output tsv` (`VAULT/NAME#KEY`) |
//! | `pass` | `pass show PATH` (its first line) |
//! | `keychain` | `security find-generic-password -s SERVICE [-a ACCOUNT] -w` (`SERVICE#ACCOUNT`) |
//!
//! `#KEY` of `aws`, `gcp` and `az` selects a field of a JSON answer. The CLI is started with an
//! argument vector, never through a shell; it inherits the user's environment (it needs its
//! own session) minus every token variable of SPEC 11 and every `KST_…` secret; its stdin is
//! closed (or carries the KeePass password); it is stopped after a time-out
//! (`KASETTO_SECRETS_TIMEOUT`, default 30 s) or when its answer exceeds a size cap
//! (`KASETTO_SECRETS_MAX_BYTES`, default 1 MiB). Its stderr is shown only when it fails, with
//! every secret value kst knows replaced by `***`, control characters escaped, and shortened.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Ref, Secret, SecretsConfig, shown};

const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
/// How much of a failing CLI's stderr is shown.
const STDERR_SHOWN: usize = 600;

/// The variable holding the KeePass master password (fed on stdin, never in argv or env).
pub const KST_KEEPASS_PASSWORD: &str = "KST_KEEPASS_PASSWORD";

/// What to do with the CLI's answer.
enum Post {
    Raw,
    FirstLine,
    JsonField(String),
}

struct Call {
    bin: &'static str,
    /// What to install when the CLI is missing.
    what: &'static str,
    args: Vec<String>,
    stdin: Option<Secret>,
    post: Post,
}

/// `id#field` → (id, Some(field)); an empty field is none.
fn split_field(payload: &str) -> (&str, Option<&str>) {
    match payload.split_once('#') {
        Some((id, f)) if !f.is_empty() => (id, Some(f)),
        Some((id, _)) => (id, None),
        None => (payload, None),
    }
}

/// A piece of a payload that becomes an argument: not empty, and not an option (a pack must not
/// be able to add `-address=…` to the user's `vault`).
fn arg(piece: &str, what: &str) -> Result<String, String> {
    if piece.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if piece.starts_with('-') {
        return Err(format!(
            "the {what} {:?} starts with `-`; kst does not pass options to a secret manager",
            shown(piece)
        ));
    }
    Ok(piece.to_string())
}

fn call(tag: &str, payload: &str, cfg: &SecretsConfig) -> Result<Call, String> {
    Ok(match tag {
        "op" => {
            let rest = payload.strip_prefix("//").unwrap_or(payload);
            let rest = arg(rest, "1Password reference (VAULT/ITEM/FIELD)")?;
            Call {
                bin: "op",
                what: "the 1Password CLI",
                args: vec!["read".into(), "--no-newline".into(), format!("op://{rest}")],
                stdin: None,
                post: Post::Raw,
            }
        }
        "vault" => {
            let (path, field) = split_field(payload);
            let Some(field) = field else {
                return Err("a Vault reference is PATH#FIELD (e.g. secret/myapp#token)".into());
            };
            Call {
                bin: "vault",
                what: "the Vault CLI",
                args: vec![
                    "kv".into(),
                    "get".into(),
                    format!("-field={}", arg(field, "Vault field")?),
                    arg(path, "Vault path")?,
                ],
                stdin: None,
                post: Post::Raw,
            }
        }
        "kp" | "keepass" => {
            let (entry, attr) = split_field(payload);
            let attr = attr.unwrap_or("Password");
            let password = std::env::var(KST_KEEPASS_PASSWORD)
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret);
            let mut args = vec![
                "show".into(),
                "--quiet".into(),
                "-s".into(),
                "-a".into(),
                arg(attr, "KeePass attribute")?,
            ];
            let entry = arg(entry, "KeePass entry")?;
            let Some(kp) = &cfg.keepass else {
                return Err("no `secrets.keepass.database` in the config".into());
            };
            if let Some(kf) = &kp.key_file {
                args.push("--key-file".into());
                args.push(kf.display().to_string());
            }
            if password.is_none() {
                args.push("--no-password".into());
            }
            args.push(kp.database.display().to_string());
            args.push(entry);
            Call {
                bin: "keepassxc-cli",
                what: "KeePassXC",
                args,
                stdin: password,
                post: Post::Raw,
            }
        }
        "aws" => {
            let (id, key) = split_field(payload);
            Call {
                bin: "aws",
                what: "the AWS CLI",
                args: vec![
                    "secretsmanager".into(),
                    "get-secret-value".into(),
                    "--secret-id".into(),
                    arg(id, "AWS secret id")?,
                    "--query".into(),
                    "SecretString".into(),
                    "--output".into(),
                    "text".into(),
                ],
                stdin: None,
                post: key.map_or(Post::Raw, |k| Post::JsonField(k.into())),
            }
        }
        "gcp" => {
            let (name, key) = split_field(payload);
            Call {
                bin: "gcloud",
                what: "the Google Cloud CLI",
                args: vec![
                    "secrets".into(),
                    "versions".into(),
                    "access".into(),
                    "latest".into(),
                    "--secret".into(),
                    arg(name, "Google Cloud secret name")?,
                ],
                stdin: None,
                post: key.map_or(Post::Raw, |k| Post::JsonField(k.into())),
            }
        }
        "az" => {
            let (path, key) = split_field(payload);
            let Some((vault, name)) = path.split_once('/') else {
                return Err(
                    "an Azure Key Vault reference is VAULT/NAME (e.g. my-vault/db-password)".into(),
                );
            };
            Call {
                bin: "az",
                what: "the Azure CLI",
                args: vec![
                    "keyvault".into(),
                    "secret".into(),
                    "show".into(),
                    "--vault-name".into(),
                    arg(vault, "Azure vault name")?,
                    "--name".into(),
                    arg(name, "Azure secret name")?,
                    "--query".into(),
                    "value".into(),
                    "--output".into(),
                    "tsv".into(),
                ],
                stdin: None,
                post: key.map_or(Post::Raw, |k| Post::JsonField(k.into())),
            }
        }
        "pass" => Call {
            bin: "pass",
            what: "pass",
            args: vec!["show".into(), arg(payload, "pass entry")?],
            stdin: None,
            post: Post::FirstLine,
        },
        "keychain" => {
            let (service, account) = split_field(payload);
            let mut args = vec![
                "find-generic-password".into(),
                "-s".into(),
                arg(service, "Keychain service")?,
            ];
            if let Some(a) = account {
                args.push("-a".into());
                args.push(arg(a, "Keychain account")?);
            }
            args.push("-w".into());
            Call {
                bin: "security",
                what: "macOS's `security` tool",
                args,
                stdin: None,
                post: Post::Raw,
            }
        }
        other => return Err(format!("unknown secret tag {:?}", shown(other))),
    })
}

/// The payload's form, checked without running anything (also by `kst lock`).
pub(super) fn check_payload(r: &Ref, payload: &str) -> Result<(), String> {
    let Ref::Tagged { tag, .. } = r else {
        return Ok(());
    };
    match tag.as_str() {
        "env" | "crd" => Ok(()),
        "kp" | "keepass" => {
            // The database comes from the config; check the payload alone.
            let (entry, attr) = split_field(payload);
            arg(entry, "KeePass entry")?;
            arg(attr.unwrap_or("Password"), "KeePass attribute").map(|_| ())
        }
        t => call(t, payload, &SecretsConfig::default()).map(|_| ()),
    }
}

fn timeout() -> Duration {
    let secs = std::env::var(crate::envvars::KASETTO_SECRETS_TIMEOUT)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

fn max_bytes() -> usize {
    std::env::var(crate::envvars::KASETTO_SECRETS_MAX_BYTES)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_MAX_BYTES)
}

/// Replace every value of `secrets` (and every secret kst knows) in `text` with `***`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut list: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3).collect();
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in list {
        out = out.replace(s.as_str(), "***");
    }
    crate::credentials::scrub(&out)
}

/// Kill the CLI and everything it started (its own process group).
fn kill(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // SAFETY: kill(2) on the process group the child leads (set at spawn).
        let pgid = child.id() as libc::pid_t;
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

type Reader = std::sync::mpsc::Receiver<(Vec<u8>, bool)>;

/// Read at most `cap` bytes of a pipe on a thread; `over` is set when there was more.
fn reader(mut pipe: impl Read + Send + 'static, cap: usize, over: Arc<AtomicBool>) -> Reader {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut too_big = false;
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf.len() + n > cap {
                        too_big = true;
                        over.store(true, Ordering::SeqCst);
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = tx.send((buf, too_big));
    });
    rx
}

/// Run the manager and return its answer, or a message saying what failed (never the value).
pub(super) fn fetch(
    tag: &str,
    payload: &str,
    cfg: &SecretsConfig,
    known: &[String],
) -> Result<Secret, String> {
    let c = call(tag, payload, cfg)?;
    let limit = timeout();
    let cap = max_bytes();
    let mut cmd = Command::new(c.bin);
    cmd.args(&c.args)
        .stdin(if c.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::credentials::sanitise_secret_manager(&mut cmd);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    tracing::debug!("running {} for a ${{kst:{tag}:…}} secret", c.bin);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "`{}` was not found on PATH; install {} (and sign in), or set the secret another way",
                c.bin, c.what
            )
        } else {
            format!("cannot run `{}`: {e}", c.bin)
        }
    })?;
    let over = Arc::new(AtomicBool::new(false));
    let out_rx = reader(child.stdout.take().expect("piped"), cap, over.clone());
    let err_rx = reader(
        child.stderr.take().expect("piped"),
        64 * 1024,
        Arc::new(AtomicBool::new(false)),
    );
    if let (Some(s), Some(mut pipe)) = (&c.stdin, child.stdin.take()) {
        // Small; written before the answer is read. A CLI that does not read it gets EPIPE.
        let _ = pipe
            .write_all(s.expose().as_bytes())
            .and_then(|_| pipe.write_all(b"\n"));
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => {
                kill(&mut child);
                return Err(format!("`{}` could not be waited for: {e}", c.bin));
            }
        }
        if over.load(Ordering::SeqCst) {
            kill(&mut child);
            return Err(format!(
                "`{}` answered with more than {cap} bytes; it was stopped (a secret is never that large: check the reference, or raise {})",
                c.bin,
                crate::envvars::KASETTO_SECRETS_MAX_BYTES
            ));
        }
        if Instant::now() >= deadline {
            kill(&mut child);
            return Err(format!(
                "`{}` did not answer within {} s and was stopped; is it waiting for a sign-in or a prompt? Sign in first, or raise {}",
                c.bin,
                limit.as_secs(),
                crate::envvars::KASETTO_SECRETS_TIMEOUT
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Whatever it left running may hold the pipes open: wait for them no longer than the
    // time-out's remainder.
    let rest = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
    let (out, too_big) = out_rx.recv_timeout(rest).unwrap_or_default();
    let (err, _) = err_rx
        .recv_timeout(Duration::from_millis(100))
        .unwrap_or_default();
    if too_big {
        return Err(format!(
            "`{}` answered with more than {cap} bytes (a secret is never that large: check the reference, or raise {})",
            c.bin,
            crate::envvars::KASETTO_SECRETS_MAX_BYTES
        ));
    }
    let answer = String::from_utf8_lossy(&out).into_owned();
    let mut secrets: Vec<String> = known.to_vec();
    let trimmed = answer.trim().to_string();
    secrets.push(trimmed.clone());
    secrets.extend(answer.lines().map(|l| l.trim().to_string()));
    if let Some(p) = &c.stdin {
        secrets.push(p.expose().to_string());
    }
    let stderr = {
        let s = scrub(String::from_utf8_lossy(&err).trim(), &secrets);
        let mut s = shown(&s);
        if s.chars().count() > STDERR_SHOWN {
            s = s.chars().take(STDERR_SHOWN).collect::<String>() + "…";
        }
        s
    };
    if !status.success() {
        let code = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => "a signal".to_string(),
        };
        return Err(if stderr.is_empty() {
            format!("`{}` failed ({code})", c.bin)
        } else {
            format!("`{}` failed ({code}): {stderr}", c.bin)
        });
    }
    if !stderr.is_empty() {
        tracing::debug!("`{}` said on stderr: {stderr}", c.bin);
    }
    if std::str::from_utf8(&out).is_err() {
        return Err(format!(
            "`{}` answered with bytes that are not UTF-8",
            c.bin
        ));
    }
    let value = answer.trim_end_matches(['\n', '\r']);
    let value = match &c.post {
        Post::Raw => value.to_string(),
        Post::FirstLine => value.lines().next().unwrap_or("").to_string(),
        Post::JsonField(key) => json_field(value, key)?,
    };
    if value.is_empty() {
        return Err(format!("`{}` answered with an empty value", c.bin));
    }
    Ok(Secret(value))
}

/// The string (or number) field `key` of a JSON object. Errors never quote the answer.
fn json_field(answer: &str, key: &str) -> Result<String, String> {
    let k = shown(key);
    let v: serde_json::Value = serde_json::from_str(answer).map_err(|e| {
        format!(
            "the answer is not JSON (line {}, column {}), so #{k} cannot select a field of it",
            e.line(),
            e.column()
        )
    })?;
    match v.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(format!(
            "the field {k:?} of the JSON answer is not a string"
        )),
        None => Err(format!("the JSON answer has no field {k:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_forms() {
        let cfg = SecretsConfig::default();
        let args = |t: &str, p: &str| call(t, p, &cfg).map(|c| c.args);
        assert_eq!(
            args("op", "//V/i/f").unwrap(),
            ["read", "--no-newline", "op://V/i/f"]
        );
        assert_eq!(
            args("op", "V/i/f").unwrap(),
            ["read", "--no-newline", "op://V/i/f"]
        );
        assert!(args("vault", "secret/app").is_err());
        assert!(args("vault", "-address=http://x#f").is_err());
        assert!(args("az", "novault").is_err());
        assert!(args("pass", "--help").is_err());
        assert_eq!(
            args("keychain", "svc").unwrap(),
            ["find-generic-password", "-s", "svc", "-w"]
        );
    }

    #[test]
    fn json_fields_never_quote_the_answer() {
        assert_eq!(json_field(r#"{"a":"x","n":3}"#, "a").unwrap(), "x");
        assert_eq!(json_field(r#"{"a":"x","n":3}"#, "n").unwrap(), "3");
        let e = json_field("s3cr3t-not-json", "a").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = json_field(r#"{"b":"s3cr3t"}"#, "a").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
