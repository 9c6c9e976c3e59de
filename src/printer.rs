//! The printer: where every line and JSON document kst shows goes out (SPEC 12). Human output
//! goes to stderr (like cargo), so stdout stays clean for `--json`; every line is scrubbed of
//! secrets and escaped ([`clean`]) here, at the sink.
//!
//! A base module: any layer may hold a [`Printer`] (trust asks on the terminal through it); what
//! to print about a plan is [`crate::report`]'s.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::credentials::scrub;
use crate::escape::escape_controls;

/// Outside text on its way to a human: secrets scrubbed, control characters escaped.
pub fn clean(s: &str) -> String {
    escape_controls(&scrub(s)).into_owned()
}

/// A JSON document as text, secrets scrubbed. serde_json escapes C0 controls in strings; DEL
/// and C1 controls it leaves raw, so they are escaped here (`\u009b`): they can only occur
/// inside strings, so the document stays valid and means the same.
pub fn json_text<T: Serialize + ?Sized>(doc: &T) -> String {
    let text = scrub(&serde_json::to_string_pretty(doc).unwrap_or_default());
    if !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub verbosity: Verbosity,
    pub json: bool,
    pub color: bool,
}

impl Printer {
    pub fn new(verbosity: Verbosity, json: bool, color: ColorChoice) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            // NO_COLOR wins; then CLICOLOR_FORCE (set, not `0`) forces colour without a TTY.
            ColorChoice::Auto => {
                crate::envvars::non_empty(crate::envvars::NO_COLOR).is_none()
                    && (crate::envvars::flag(crate::envvars::CLICOLOR_FORCE)
                        || std::io::stderr().is_terminal())
            }
        };
        Printer {
            verbosity,
            json,
            color,
        }
    }

    /// Whether progress bars may be drawn: a TTY, not quiet, not JSON.
    pub fn progress(&self) -> bool {
        !self.json && self.verbosity >= Verbosity::Normal && std::io::stderr().is_terminal()
    }

    /// `s`, cleaned ([`clean`]), in colour `code`: the only escape sequences printed are these.
    pub(crate) fn paint(&self, code: &str, s: &str) -> String {
        let s = clean(s);
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s
        }
    }

    /// A line for humans (stderr), unless quiet or JSON.
    pub fn line(&self, s: &str) {
        if !self.json && self.verbosity >= Verbosity::Normal {
            note_emitted();
            let _ = writeln!(std::io::stderr(), "{}", clean(s));
        }
    }

    pub fn warn(&self, s: &str) {
        if !self.json && self.verbosity >= Verbosity::Normal {
            note_emitted();
            let _ = writeln!(
                std::io::stderr(),
                "{} {}",
                self.paint("33", "warning:"),
                clean(s)
            );
        }
    }

    /// An error line; shown even when quiet (but not in JSON mode, where it is in the document).
    pub fn error(&self, s: &str) {
        if !self.json {
            note_emitted();
            let _ = writeln!(
                std::io::stderr(),
                "{} {}",
                self.paint("31", "error:"),
                clean(s)
            );
        }
    }

    /// Print a JSON document on stdout (or hand it to [`capture_json`]).
    pub fn json<T: Serialize>(&self, doc: &T) {
        if CAPTURED.with(|c| c.borrow().is_some()) {
            let value = serde_json::to_value(doc).unwrap_or(serde_json::Value::Null);
            CAPTURED.with(|c| c.borrow_mut().as_mut().map(|v| v.push(value)));
            return;
        }
        let _ = writeln!(std::io::stdout().lock(), "{}", json_text(doc));
    }
}

/// Lines written for people so far in this process (the printer's, log events, prompts).
static EMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Count a line written to stderr for people: everything that writes one calls this, so that
/// the whole-run memo (`runmemo.rs`) records only a run that said nothing but its summary.
pub fn note_emitted() {
    EMITTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many lines [`note_emitted`] counted.
pub fn emitted() -> usize {
    EMITTED.load(std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    static CAPTURED: std::cell::RefCell<Option<Vec<serde_json::Value>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` with the JSON documents it prints (on this thread) collected instead of printed: a
/// command that runs another inside its own one document (`kst add` runs `sync`).
pub fn capture_json<R>(f: impl FnOnce() -> R) -> (R, Vec<serde_json::Value>) {
    let outer = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let docs = CAPTURED.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (r, docs.unwrap_or_default())
}
