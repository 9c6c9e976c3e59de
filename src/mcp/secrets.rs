//! Secret placeholders in MCP packs (SPEC 10c): `${kst_NAME}` and `${kst:TAG:PAYLOAD}`, filled
//! in only when a settings file is written, so a secret's value exists in exactly one file on
//! disk — the agent's settings file — and never in the lock, the cache, output or logs.
//!
//! - `${kst_name}`: the first hit of the variable `kst_name` as written, the variable
//!   `KST_NAME`, the key `kst_name` (any case; `__` in the name descends into nested keys) of
//!   `$XDG_CONFIG_HOME/kasetto/credentials.yaml`, then of each file of `secrets.files`.
//! - `${kst:env:NAME}` reads `NAME` verbatim; `${kst:crd:a/b}` reads the credentials files.
//! - The manager tags (`op`, `vault`, `kp`, `aws`, `gcp`, `az`, `pass`, `keychain`) run the
//!   manager's own CLI ([`managers`]).
//!
//! What kst owns is tracked in placeholder form. To recognise its own entry in a settings file
//! (where a placeholder has been replaced by a value), [`matches`] compares an entry with a
//! template, letting each placeholder stand for any text.

mod credfile;
mod managers;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

const OPEN: &str = "${kst";

/// The tags `${kst:TAG:…}` understands.
pub const TAGS: &[&str] = &[
    "env", "crd", "op", "vault", "kp", "keepass", "aws", "gcp", "az", "pass", "keychain",
];

/// A secret's value. Its `Debug` never shows the value; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The environment variable a chain placeholder `${kst_name}` is read from after `kst_name`.
pub fn env_var(name: &str) -> String {
    format!(
        "{}{}",
        crate::envvars::KST_SECRET_PREFIX,
        name.to_ascii_uppercase()
    )
}

// ---------------------------------------------------------------------------------------------
// Placeholders.

/// What a placeholder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// `${kst_name}`: the lookup chain.
    Chain(String),
    /// `${kst:tag:payload}`.
    Tagged { tag: String, payload: String },
    /// `${kst…}` that is neither: an error, never written literally.
    Malformed,
}

/// Parse a placeholder's full text (`${kst_…}` or `${kst:…}`).
pub fn parse(text: &str) -> Ref {
    let inner = text
        .strip_prefix(OPEN)
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or("");
    if let Some(name) = inner.strip_prefix('_') {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        return if ok {
            Ref::Chain(name.to_string())
        } else {
            Ref::Malformed
        };
    }
    if let Some(rest) = inner.strip_prefix(':')
        && let Some((tag, payload)) = rest.split_once(':')
        && !tag.is_empty()
        && tag.chars().all(|c| c.is_ascii_alphanumeric())
        && !payload.is_empty()
        && !payload.chars().any(|c| c.is_control())
    {
        return Ref::Tagged {
            tag: tag.to_string(),
            payload: payload.to_string(),
        };
    }
    Ref::Malformed
}

#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Text(&'a str),
    /// The placeholder's full text, `${kst…}` included.
    Placeholder(&'a str),
}

/// Split a string into text and placeholders: `${kst_` or `${kst:` up to the next `}`.
/// An opening without a closing brace is text.
fn segments(s: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0usize;
    let mut at = 0usize;
    while let Some(i) = s[at..].find(OPEN) {
        let start = at + i;
        let after = &s[start + OPEN.len()..];
        let opener = matches!(after.as_bytes().first(), Some(b'_' | b':'));
        match (opener, after.find('}')) {
            (true, Some(close)) => {
                if start > text_start {
                    out.push(Seg::Text(&s[text_start..start]));
                }
                let end = start + OPEN.len() + close + 1;
                out.push(Seg::Placeholder(&s[start..end]));
                text_start = end;
                at = end;
            }
            _ => at = start + OPEN.len(),
        }
    }
    if text_start < s.len() {
        out.push(Seg::Text(&s[text_start..]));
    }
    out
}

fn walk_strings<'a>(v: &'a Value, f: &mut impl FnMut(&'a str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            f(k);
            walk_strings(x, f)
        }),
        _ => {}
    }
}

/// The placeholders (their full text) used anywhere in `v`, keys included.
pub fn names_in(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk_strings(v, &mut |s| {
        for seg in segments(s) {
            if let Seg::Placeholder(p) = seg {
                out.insert(p.to_string());
            }
        }
    });
    out
}

fn fill(s: &str, values: &BTreeMap<String, Secret>) -> String {
    segments(s)
        .into_iter()
        .map(|seg| match seg {
            Seg::Text(t) => t,
            Seg::Placeholder(p) => match values.get(p) {
                Some(Secret(v)) => v.as_str(),
                // Not provided (`on_missing: warn`): the placeholder stays visible.
                None => p,
            },
        })
        .collect()
}

/// `v` with every placeholder replaced by its value (placeholders without a value are kept).
pub fn substitute(v: &Value, values: &BTreeMap<String, Secret>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, values)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, values)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (fill(k, values), substitute(x, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Is `actual` what kst would write for `template`, whatever the placeholders' values were?
/// Same shape and same values, except that each placeholder in a string matches any text.
pub fn matches(actual: &Value, template: &Value) -> bool {
    match (actual, template) {
        (Value::String(a), Value::String(t)) => str_matches(a, t),
        (Value::Array(a), Value::Array(t)) => {
            a.len() == t.len() && a.iter().zip(t).all(|(x, y)| matches(x, y))
        }
        (Value::Object(a), Value::Object(t)) => {
            a.len() == t.len()
                && t.iter().all(|(k, tv)| match a.get(k) {
                    Some(av) => matches(av, tv),
                    None => false,
                })
        }
        (Value::Number(a), Value::Number(t)) => a.as_f64() == t.as_f64(),
        (a, t) => a == t,
    }
}

fn str_matches(actual: &str, template: &str) -> bool {
    let segs = segments(template);
    if !segs.iter().any(|s| matches!(s, Seg::Placeholder(_))) {
        return actual == template;
    }
    // Text pieces must appear in order; placeholders absorb whatever lies between them.
    // Leftmost matching of the middle pieces is enough to decide whether a match exists.
    let mut rest = actual;
    let n = segs.len();
    for (i, seg) in segs.iter().enumerate() {
        let Seg::Text(t) = seg else { continue };
        if i == 0 {
            match rest.strip_prefix(t) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == n - 1 {
            return rest.ends_with(t);
        } else {
            match rest.find(t) {
                Some(j) => rest = &rest[j + t.len()..],
                None => return false,
            }
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The `secrets:` config block.

pub use crate::config::secrets::{KeePass, OnMissing, SecretsConfig};

// ---------------------------------------------------------------------------------------------
// Resolving.

/// What the caller wants done with placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Resolve them; a missing one does what `on_missing` says.
    Resolve(OnMissing),
    /// `kst lock`: nothing is written, so values are not needed. Placeholders are only checked
    /// for form (an unknown tag is still an error).
    Check,
}

#[derive(Clone)]
enum Outcome {
    Found(Secret),
    /// Not found; where kst looked.
    Missing(String),
    /// A hard error (a failing CLI, an unreadable credentials file, an unknown tag).
    Failed(String),
}

/// The placeholders of one server, resolved.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Placeholder text → value.
    pub values: BTreeMap<String, Secret>,
    /// One line per missing placeholder: what was looked for, and where.
    pub missing: Vec<String>,
    /// One line per placeholder that failed hard.
    pub errors: Vec<String>,
}

/// Resolves placeholders for one run. Each distinct placeholder is resolved at most once per
/// run (a manager CLI may prompt), and each credentials file is read at most once.
pub struct Resolver {
    mode: Mode,
    cfg: SecretsConfig,
    /// `$XDG_CONFIG_HOME/kasetto/credentials.yaml`.
    default_file: Option<PathBuf>,
    memo: RefCell<HashMap<String, Outcome>>,
    files: RefCell<HashMap<PathBuf, Result<Option<credfile::CredFile>, String>>>,
    /// Why nothing may be resolved in this run (an untrusted config found in the working
    /// directory, [`crate::trust::secrets_refusal`]): every placeholder then fails its server.
    refused: Option<String>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The default credentials file.
pub fn credentials_path() -> Option<PathBuf> {
    crate::dirs::config_home()
        .ok()
        .map(|d| d.join("kasetto").join("credentials.yaml"))
}

fn shown(text: &str) -> String {
    crate::escape::escape_line(text)
}

impl Resolver {
    pub fn new(cfg: SecretsConfig, mode: Mode) -> Self {
        Resolver {
            mode,
            cfg,
            default_file: credentials_path(),
            memo: RefCell::new(HashMap::new()),
            files: RefCell::new(HashMap::new()),
            refused: None,
        }
    }

    /// A resolver that resolves nothing, for the reason given: each placeholder fails its
    /// server (whatever `on_missing` says), and no variable, credentials file or secret manager
    /// is read. Form errors are still reported.
    pub fn refusing(mut self, why: Option<String>) -> Self {
        self.refused = why;
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Resolve every placeholder of `placeholders` (full texts, from [`names_in`]).
    pub fn resolve(&self, placeholders: &BTreeSet<String>) -> Resolution {
        let mut out = Resolution::default();
        for p in placeholders {
            match self.outcome(p) {
                Outcome::Found(v) => {
                    out.values.insert(p.clone(), v);
                }
                Outcome::Missing(m) => out.missing.push(m),
                Outcome::Failed(e) => out.errors.push(e),
            }
        }
        out
    }

    fn outcome(&self, text: &str) -> Outcome {
        if let Some(o) = self.memo.borrow().get(text) {
            return o.clone();
        }
        let o = self.outcome_uncached(text);
        if let Outcome::Found(v) = &o {
            crate::credentials::register_secret(v.expose());
        }
        self.memo.borrow_mut().insert(text.to_string(), o.clone());
        o
    }

    /// Form errors of `placeholders` (unknown tags, malformed placeholders, bad references):
    /// found without resolving anything, and reported in every mode.
    pub fn check(&self, placeholders: &BTreeSet<String>) -> Vec<String> {
        placeholders
            .iter()
            .filter_map(|p| self.form_error(p))
            .collect()
    }

    fn form_error(&self, text: &str) -> Option<String> {
        match self.static_outcome(text) {
            Some(Outcome::Failed(e)) => Some(e),
            _ => None,
        }
    }

    fn outcome_uncached(&self, text: &str) -> Outcome {
        if let Some(o) = self.static_outcome(text) {
            return o;
        }
        let at = shown(text);
        if let Some(why) = &self.refused {
            return Outcome::Failed(format!("{at}: {why}"));
        }
        match parse(text) {
            Ref::Malformed => unreachable!("a form error"),
            Ref::Chain(name) => self.chain(&name, &at),
            Ref::Tagged { tag, payload } => match tag.as_str() {
                "env" => match non_empty_var(&payload) {
                    Some(v) => Outcome::Found(v),
                    None => Outcome::Missing(format!(
                        "{at}: the variable {} is not set",
                        shown(&payload)
                    )),
                },
                "crd" => {
                    let path: Vec<&str> = payload.split('/').filter(|s| !s.is_empty()).collect();
                    self.in_files(&path, None, &at, || {
                        format!("{at}: no key {} in", shown(&path.join(".")))
                    })
                }
                _ => match managers::fetch(&tag, &payload, &self.cfg, &self.known_values()) {
                    Ok(v) => Outcome::Found(v),
                    Err(e) => Outcome::Failed(format!("{at}: {e}")),
                },
            },
        }
    }

    /// What can be said without resolving: a form error, or (`kst lock`) nothing to resolve.
    fn static_outcome(&self, text: &str) -> Option<Outcome> {
        let at = shown(text);
        let r = parse(text);
        match &r {
            Ref::Malformed => {
                return Some(Outcome::Failed(format!(
                    "{at} is not a secret placeholder kst understands; write ${{kst_NAME}} or ${{kst:TAG:REF}} (tags: {})",
                    TAGS.join(", ")
                )));
            }
            Ref::Tagged { tag, .. } if !TAGS.contains(&tag.as_str()) => {
                return Some(Outcome::Failed(format!(
                    "{at}: unknown secret tag {:?}; known tags: {} (or ${{kst_NAME}} for the environment and credentials.yaml)",
                    shown(tag),
                    TAGS.join(", ")
                )));
            }
            Ref::Tagged { tag, .. }
                if (tag == "kp" || tag == "keepass") && self.cfg.keepass.is_none() =>
            {
                return Some(Outcome::Failed(format!(
                    "{at} needs a KeePass database: add `secrets: {{ keepass: {{ database: PATH }} }}` to the config"
                )));
            }
            _ => {}
        }
        if let Ref::Tagged { payload, .. } = &r
            && let Err(e) = managers::check_payload(&r, payload)
        {
            return Some(Outcome::Failed(format!("{at}: {e}")));
        }
        if self.mode == Mode::Check {
            // Stands in for a value; never written (`kst lock` writes no settings file).
            return Some(Outcome::Missing(String::new()));
        }
        None
    }

    /// `${kst_name}`: `kst_name`, `KST_NAME`, then the credentials files.
    fn chain(&self, name: &str, at: &str) -> Outcome {
        let as_written = format!("kst_{name}");
        let upper = env_var(name);
        for var in [&as_written, &upper] {
            if let Some(v) = non_empty_var(var) {
                return Outcome::Found(v);
            }
        }
        let nested: Vec<&str> = name.split("__").filter(|s| !s.is_empty()).collect();
        self.in_files(&nested, Some(&as_written), at, || {
            format!(
                "{upper} is not set ({at}: looked for the variables {} and {upper}, and the key {upper} in",
                shown(&as_written)
            )
        })
    }

    /// Look `path` (and first the flat key `flat`, any case) up in each credentials file.
    fn in_files(
        &self,
        path: &[&str],
        flat: Option<&str>,
        at: &str,
        missing: impl Fn() -> String,
    ) -> Outcome {
        let all: Vec<PathBuf> = self
            .default_file
            .iter()
            .chain(self.cfg.files.iter())
            .cloned()
            .collect();
        for f in &all {
            let mut files = self.files.borrow_mut();
            let loaded = files
                .entry(f.clone())
                .or_insert_with(|| credfile::CredFile::load(f));
            match loaded {
                Err(e) => return Outcome::Failed(format!("{at}: {e}")),
                Ok(None) => {}
                Ok(Some(cf)) => {
                    if let Some(v) = flat.and_then(|k| cf.get(&[k])).or_else(|| cf.get(path)) {
                        return Outcome::Found(v);
                    }
                }
            }
        }
        let list: Vec<String> = all
            .iter()
            .map(|p| shown(&p.display().to_string()))
            .collect();
        Outcome::Missing(format!(
            "{} {}); set it, or add it to a credentials file",
            missing(),
            if list.is_empty() {
                "no credentials file".to_string()
            } else {
                list.join(", ")
            }
        ))
    }

    /// The values resolved so far (to scrub them from a CLI's messages).
    fn known_values(&self) -> Vec<String> {
        self.memo
            .borrow()
            .values()
            .filter_map(|o| match o {
                Outcome::Found(v) => Some(v.0.clone()),
                _ => None,
            })
            .collect()
    }
}

fn non_empty_var(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_and_names() {
        assert_eq!(
            segments("Bearer ${kst_TOKEN} x"),
            [
                Seg::Text("Bearer "),
                Seg::Placeholder("${kst_TOKEN}"),
                Seg::Text(" x")
            ]
        );
        assert_eq!(
            segments("${kst_}${kst_A"),
            [Seg::Placeholder("${kst_}"), Seg::Text("${kst_A")]
        );
        assert_eq!(segments("${env:HOME}"), [Seg::Text("${env:HOME}")]);
        assert_eq!(segments("${kstX}"), [Seg::Text("${kstX}")]);
        assert_eq!(
            segments("a${kst:op:V/i/f}b"),
            [
                Seg::Text("a"),
                Seg::Placeholder("${kst:op:V/i/f}"),
                Seg::Text("b")
            ]
        );
        let v =
            json!({"env": {"T": "${kst_GH_TOKEN}"}, "args": ["--k=${kst_K}${kst:vault:s/a#f}"]});
        let names: Vec<String> = names_in(&v).into_iter().collect();
        assert_eq!(names, ["${kst:vault:s/a#f}", "${kst_GH_TOKEN}", "${kst_K}"]);
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse("${kst_gh_pat}"), Ref::Chain("gh_pat".into()));
        assert_eq!(
            parse("${kst:op://V/i/f}"),
            Ref::Tagged {
                tag: "op".into(),
                payload: "//V/i/f".into()
            }
        );
        assert_eq!(parse("${kst_}"), Ref::Malformed);
        assert_eq!(parse("${kst_a b}"), Ref::Malformed);
        assert_eq!(parse("${kst:op}"), Ref::Malformed);
        assert_eq!(parse("${kst::x}"), Ref::Malformed);
        assert_eq!(parse("${kst:op:}"), Ref::Malformed);
    }

    #[test]
    fn substitute_then_match() {
        let t = json!({"args": ["--token=${kst_T}", "plain", "${kst:op:V/i/f}"], "n": 3});
        let mut values = BTreeMap::new();
        values.insert("${kst_T}".to_string(), Secret("s3cr3t".into()));
        values.insert("${kst:op:V/i/f}".to_string(), Secret("0p".into()));
        let filled = substitute(&t, &values);
        assert_eq!(
            filled,
            json!({"args": ["--token=s3cr3t", "plain", "0p"], "n": 3})
        );
        assert!(matches(&filled, &t));
        assert!(matches(
            &json!({"args": ["--token=other", "plain", "x"], "n": 3}),
            &t
        ));
        // A placeholder left in place (on_missing: warn) matches too.
        assert!(matches(&substitute(&t, &BTreeMap::new()), &t));
        assert!(!matches(
            &json!({"args": ["--tokn=s3cr3t", "plain", "0p"], "n": 3}),
            &t
        ));
        assert!(!matches(
            &json!({"args": ["--token=s3cr3t", "edited", "0p"], "n": 3}),
            &t
        ));
        assert!(!matches(
            &json!({"args": ["--token=s3cr3t", "plain", "0p"]}),
            &t
        ));
        assert!(str_matches("ab-x-cd", "ab${kst_A}-${kst_B}cd"));
        assert!(!str_matches("abcd", "ab${kst_A}-${kst_B}cd"));
        assert!(
            format!("{:?}", Secret("s3cr3t".into()))
                .find("s3cr3t")
                .is_none()
        );
    }
}
