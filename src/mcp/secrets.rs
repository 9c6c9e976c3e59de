//! `${kst_NAME}` placeholders (SPEC 10): filled from the environment variable `KST_NAME` only
//! when a settings file is written, so a secret's value exists in exactly one file on disk —
//! the agent's settings file — and never in the lock, the cache, output or logs.
//!
//! What kst owns is tracked in placeholder form. To recognise its own entry in a settings file
//! (where the placeholder has been replaced by a value), [`matches`] compares an entry with a
//! template, letting each placeholder stand for any text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

const OPEN: &str = "${kst_";

/// A secret's value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The environment variable a placeholder name is read from.
pub fn env_var(name: &str) -> String {
    format!("{}{name}", crate::envvars::KST_SECRET_PREFIX)
}

#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Split a string into text and placeholders. `${kst_` not followed by `NAME}` is text.
fn segments(s: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut text_start = 0usize;
    let mut offset = 0usize;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let start = offset + i;
            if start > text_start {
                out.push(Seg::Text(&s[text_start..start]));
            }
            let name_start = start + OPEN.len();
            out.push(Seg::Placeholder(&s[name_start..name_start + name_len]));
            text_start = name_start + name_len + 1;
            offset = text_start;
            rest = &s[offset..];
        } else {
            offset += i + OPEN.len();
            rest = &s[offset..];
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

/// The placeholder names used anywhere in `v` (keys included).
pub fn names_in(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk_strings(v, &mut |s| {
        for seg in segments(s) {
            if let Seg::Placeholder(n) = seg {
                out.insert(n.to_string());
            }
        }
    });
    out
}

/// Read the values of `names` from the environment. Returns the values found and the
/// variables that are missing (unset or empty).
pub fn lookup(names: &BTreeSet<String>) -> (BTreeMap<String, Secret>, Vec<String>) {
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    for n in names {
        match std::env::var(env_var(n)) {
            Ok(v) if !v.is_empty() => {
                found.insert(n.clone(), Secret(v));
            }
            _ => missing.push(env_var(n)),
        }
    }
    (found, missing)
}

fn fill(s: &str, values: &BTreeMap<String, Secret>) -> String {
    segments(s)
        .into_iter()
        .map(|seg| match seg {
            Seg::Text(t) => t.to_string(),
            Seg::Placeholder(n) => match values.get(n) {
                Some(Secret(v)) => v.clone(),
                // Not provided (allowed-missing): keep the placeholder visible.
                None => format!("{OPEN}{n}}}"),
            },
        })
        .collect()
}

/// `v` with every placeholder replaced by its value.
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
                Seg::Placeholder("TOKEN"),
                Seg::Text(" x")
            ]
        );
        assert_eq!(segments("${kst_}${kst_A"), [Seg::Text("${kst_}${kst_A")]);
        assert_eq!(segments("${env:HOME}"), [Seg::Text("${env:HOME}")]);
        let v = json!({"env": {"T": "${kst_GH_TOKEN}"}, "args": ["--k=${kst_K}${kst_GH_TOKEN}"]});
        let names: Vec<String> = names_in(&v).into_iter().collect();
        assert_eq!(names, ["GH_TOKEN", "K"]);
    }

    #[test]
    fn substitute_then_match() {
        let t = json!({"args": ["--token=${kst_T}", "plain"], "n": 3});
        let mut values = BTreeMap::new();
        values.insert("T".to_string(), Secret("s3cr3t".into()));
        let filled = substitute(&t, &values);
        assert_eq!(filled, json!({"args": ["--token=s3cr3t", "plain"], "n": 3}));
        assert!(matches(&filled, &t));
        assert!(matches(
            &json!({"args": ["--token=other", "plain"], "n": 3}),
            &t
        ));
        assert!(!matches(
            &json!({"args": ["--tokn=s3cr3t", "plain"], "n": 3}),
            &t
        ));
        assert!(!matches(
            &json!({"args": ["--token=s3cr3t", "edited"], "n": 3}),
            &t
        ));
        assert!(!matches(&json!({"args": ["--token=s3cr3t", "plain"]}), &t));
        assert!(str_matches("ab-x-cd", "ab${kst_A}-${kst_B}cd"));
        assert!(!str_matches("abcd", "ab${kst_A}-${kst_B}cd"));
        assert!(
            format!("{:?}", Secret("s3cr3t".into()))
                .find("s3cr3t")
                .is_none()
        );
    }
}
