//! Parse errors of input files, turned into our own messages (SPEC 13.7).
//!
//! Parsers quote what they could not parse: serde's `invalid type: string "…"` holds the whole
//! value, `toml_edit`'s `Display` prints the offending source line. A config may `extends:` a
//! file that is not a config at all (`~/.env`, a private key) and a cloned project may carry
//! `kasetto.lock → ~/.git-credentials`; quoting those files would publish secrets in CI logs.
//! Every parse error of a config, lock, settings or pack file goes through this module, which
//! keeps the position and a category ("not a YAML mapping", "expected a list", "unknown key
//! NAME") and quotes at most:
//!
//! - a key name, when it is a short (≤ 40 characters) plain name (`[A-Za-z0-9_.-]`);
//! - with [`Quote::Named`] (the config the user named), a short control-character-free token;
//! - with [`Quote::Nothing`] (any other file), only our own words: a quoted token that occurs in
//!   the file's text is replaced by `<not shown>`.
//!
//! Control characters left in a message are escaped.

use std::fmt::Write as _;

/// The longest token of a file that a message may quote.
pub const MAX_TOKEN: usize = 40;

/// What a message may quote of the file it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// The config file the user named (`--config`, `$KASETTO_CONFIG`, `./kasetto.yaml`): a
    /// short token of it may be quoted, which makes typos easy to find.
    Named,
    /// Any other file (an `extends` parent, the lock, a settings file, a pack file): nothing of
    /// its content but a plain key name.
    Nothing,
}

/// A parse error: where, and what, in words that quote nothing they must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Failure {
    /// `label:line:column: message` (or `label: message` without a position).
    pub fn at(&self, label: &str) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{label}:{l}:{c}: {}", self.message),
            (Some(l), None) => format!("{label}:{l}: {}", self.message),
            _ => format!("{label}: {}", self.message),
        }
    }

    /// `line:column: message`, for messages that name the file themselves.
    pub fn position_first(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("line {l}, column {c}: {}", self.message),
            (Some(l), None) => format!("line {l}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// A YAML (serde_yaml_ng) error.
pub fn yaml(e: &serde_yaml_ng::Error, text: &str, q: Quote) -> Failure {
    let loc = e.location();
    Failure {
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        message: describe(&e.to_string(), text, q, "YAML"),
    }
}

/// A JSON (serde_json) error.
pub fn json(e: &serde_json::Error, text: &str, q: Quote) -> Failure {
    let known = e.line() > 0;
    Failure {
        line: known.then(|| e.line()),
        column: known.then(|| e.column()),
        message: describe(&e.to_string(), text, q, "JSON"),
    }
}

/// A JSON-with-comments (jsonc-parser) error. Its messages are fixed words; the position is
/// taken from the error itself.
pub fn jsonc(e: &jsonc_parser::errors::ParseError, text: &str, q: Quote) -> Failure {
    Failure {
        line: Some(e.line_display()),
        column: Some(e.column_display()),
        message: describe(&e.kind().to_string(), text, q, "JSON"),
    }
}

/// A TOML (toml_edit) error. Its `Display` prints the offending source line, so only its
/// message and span are used.
pub fn toml(e: &toml_edit::TomlError, text: &str, q: Quote) -> Failure {
    let (line, column) = match e.span() {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    let first = e.message().lines().next().unwrap_or("invalid TOML");
    Failure {
        line,
        column,
        message: describe(first, text, q, "TOML"),
    }
}

/// A message of our own that may carry tokens of the file `text` (a custom error from a
/// `Deserialize` impl, a check after parsing): quoted tokens follow the same rules.
pub fn message(msg: &str, text: &str, q: Quote) -> String {
    escape_controls(&redact_copies(&filter_literals(msg, text, q), text))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Whether `key` may be shown: a short plain name.
pub fn showable_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_TOKEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(crate) fn key_shown(key: &str) -> String {
    if showable_key(key) {
        format!("`{key}`")
    } else {
        "(a key not shown)".to_string()
    }
}

/// The serde messages we recognise, in the order tried.
const SERDE_STARTS: &[&str] = &[
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
    "unknown variant `",
    "unknown field `",
    "missing field `",
    "duplicate field `",
    "duplicate entry with key ",
];

fn describe(raw: &str, text: &str, q: Quote, lang: &str) -> String {
    let msg = strip_positions(raw);
    // serde_yaml_ng prefixes `path: ` (keys of the document, unquoted); find where serde's own
    // message starts, and keep the path only when it is made of plain names.
    let (path, body) = split_path(&msg);
    let body = rewrite(body, text, q, lang, path.is_none());
    let out = match path {
        Some(p) if is_plain_path(p) => format!("{p}: {body}"),
        _ => body,
    };
    escape_controls(&redact_copies(&out, text))
}

/// The last guard: any run of more than [`MAX_TOKEN`] bytes of the message that is also in the
/// file (a key in a path prefix, a value in a message we did not recognise) is replaced.
fn redact_copies(msg: &str, text: &str) -> String {
    let window = MAX_TOKEN + 1;
    if msg.len() < window || text.len() < window {
        return msg.to_string();
    }
    let mut hidden = vec![false; msg.len()];
    for i in (0..=msg.len() - window).filter(|&i| msg.is_char_boundary(i)) {
        let mut end = i + window;
        while end < msg.len() && !msg.is_char_boundary(end) {
            end += 1;
        }
        if text.contains(&msg[i..end]) {
            hidden[i..end].iter_mut().for_each(|h| *h = true);
        }
    }
    if !hidden.contains(&true) {
        return msg.to_string();
    }
    let mut out = String::with_capacity(msg.len());
    let mut in_hidden = false;
    for (i, c) in msg.char_indices() {
        if hidden[i] {
            if !in_hidden {
                out.push_str("<not shown>");
            }
            in_hidden = true;
        } else {
            in_hidden = false;
            out.push(c);
        }
    }
    out
}

fn split_path(msg: &str) -> (Option<&str>, &str) {
    for start in SERDE_STARTS {
        if msg.starts_with(start) {
            return (None, msg);
        }
        // The first ": " followed by a serde message: the path is what precedes it.
        let needle = format!(": {start}");
        if let Some(i) = msg.find(&needle) {
            return (Some(&msg[..i]), &msg[i + 2..]);
        }
    }
    (None, msg)
}

fn is_plain_path(p: &str) -> bool {
    p.len() <= 120
        && p.split('.').all(|seg| {
            let name = seg.split('[').next().unwrap_or("");
            (name.is_empty() || showable_key(name))
                && seg[name.len()..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '[' || c == ']')
        })
}

fn rewrite(body: &str, text: &str, q: Quote, lang: &str, top: bool) -> String {
    if let Some(rest) = body
        .strip_prefix("invalid type: ")
        .or_else(|| body.strip_prefix("invalid value: "))
    {
        let invalid_value = body.starts_with("invalid value");
        let (found, expected) = match rest.rfind(", expected ") {
            Some(i) => (&rest[..i], Some(&rest[i + ", expected ".len()..])),
            None => (rest, None),
        };
        let shown = match q {
            // The named config may show the short value it has (`found a number `42``).
            Quote::Named => unexpected_token(found)
                .filter(|t| token_ok(t, text, q))
                .map(|t| format!(" `{t}`"))
                .unwrap_or_default(),
            Quote::Nothing => String::new(),
        };
        let found = format!("{}{shown}", category(found));
        let expected = expected.map(|e| expected_words(e, lang));
        return match expected {
            Some(e) if top && e == format!("a {lang} mapping") => {
                format!("not a {lang} mapping (found {found})")
            }
            // serde's "expected" words come from our types, never from the file.
            Some(e) if invalid_value => format!("invalid value ({found}), expected {e}"),
            Some(e) => format!("expected {e}, found {found}"),
            None => format!("unexpected {found}"),
        };
    }
    if let Some(rest) = body.strip_prefix("unknown field `") {
        let (key, tail) = split_tick(rest);
        let tail = tail.strip_prefix(", ").unwrap_or(tail);
        // The list of valid keys is ours.
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("; {tail}")
        };
        // The closest valid key (from our list, never from the file) names the likely typo.
        let hint = crate::suggest::closest(key, tail.split('`').skip(1).step_by(2))
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        return format!("unknown key {}{hint}{tail}", key_shown(key));
    }
    if let Some(rest) = body.strip_prefix("unknown variant `") {
        let (value, tail) = split_tick(rest);
        let tail = tail.strip_prefix(", ").unwrap_or(tail);
        let shown = match token_ok(value, text, q) {
            true => format!("`{value}`"),
            false => "<not shown>".to_string(),
        };
        return format!("unknown value {shown}, {tail}");
    }
    if let Some(rest) = body.strip_prefix("duplicate entry with key ") {
        let _ = rest;
        return "duplicate key (a key appears twice in one mapping)".to_string();
    }
    // Everything else (serde's other messages, the scanner's fixed words, our own messages):
    // quoted tokens follow the rules.
    filter_literals(body, text, q)
}

/// `name`, rest after the closing backtick (the last "`, " or a trailing "`").
fn split_tick(rest: &str) -> (&str, &str) {
    if let Some(i) = rest.rfind("`, expected ") {
        return (&rest[..i], &rest[i + 1..]);
    }
    if let Some(i) = rest.rfind("`, there are no") {
        return (&rest[..i], &rest[i + 1..]);
    }
    match rest.strip_suffix('`') {
        Some(k) => (k, ""),
        None => (rest, ""),
    }
}

/// The value in serde's `Unexpected` text (`integer `42``, `string "pdf"`), if it is one
/// plain token (no escapes).
fn unexpected_token(unexpected: &str) -> Option<&str> {
    let u = unexpected.trim();
    let (open, close) = (u.find(['`', '"'])?, u.len() - 1);
    let q = u.as_bytes()[open];
    if close <= open || u.as_bytes()[close] != q {
        return None;
    }
    let t = &u[open + 1..close];
    (!t.contains(['\\', '"', '`'])).then_some(t)
}

/// What kind of value serde found, from its `Unexpected` text, without the value.
fn category(unexpected: &str) -> &'static str {
    let u = unexpected.trim();
    let kinds: &[(&str, &str)] = &[
        ("string", "a string"),
        ("character", "a string"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("unit value", "an empty value"),
        ("null", "an empty value"),
        ("Option value", "an optional value"),
        ("map", "a mapping"),
        ("sequence", "a list"),
        ("byte array", "bytes"),
        ("bytes", "bytes"),
        ("enum", "a tagged value"),
        ("unit variant", "a tagged value"),
        ("newtype", "a tagged value"),
        ("tuple variant", "a tagged value"),
        ("struct variant", "a tagged value"),
    ];
    kinds
        .iter()
        .find(|(k, _)| u.starts_with(k))
        .map(|(_, w)| *w)
        .unwrap_or("another kind of value")
}

/// serde's "expected" words, in ours: `struct RawConfig` → a YAML mapping.
fn expected_words(e: &str, lang: &str) -> String {
    let e = e.trim();
    if e.starts_with("struct ") || e == "a map" || e == "map" || e == "a mapping" {
        return format!("a {lang} mapping");
    }
    match e {
        "a sequence" | "sequence" => "a list".into(),
        "a string" | "a borrowed string" => "a string".into(),
        "a boolean" => "true or false".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number".into()
        }
        _ => e.to_string(),
    }
}

fn token_ok(token: &str, text: &str, q: Quote) -> bool {
    if token.is_empty()
        || token.chars().count() > MAX_TOKEN
        || token.chars().any(|c| c.is_control() || c == '\\')
    {
        return false;
    }
    match q {
        Quote::Named => true,
        // Our own words (a suggestion, a keyword) are fine; anything that is in the file is
        // not — except a little punctuation (`','`, `"*"`), which says nothing about it.
        Quote::Nothing => {
            (token.chars().count() <= 3 && !token.chars().any(char::is_alphanumeric))
                || !text.contains(token)
        }
    }
}

/// Replace each quoted token (`"…"` with backslash escapes, or `` `…` ``) that may not be
/// shown by `<not shown>`.
fn filter_literals(msg: &str, text: &str, q: Quote) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        out.push_str(&rest[..i]);
        let quote = rest.as_bytes()[i] as char;
        let after = &rest[i + 1..];
        // Find the closing quote (for `"`, skipping backslash escapes).
        let mut end = None;
        let mut escaped = false;
        for (j, c) in after.char_indices() {
            if quote == '"' && escaped {
                escaped = false;
                continue;
            }
            if quote == '"' && c == '\\' {
                escaped = true;
                continue;
            }
            if c == quote {
                end = Some(j);
                break;
            }
        }
        match end {
            Some(j) => {
                let token = &after[..j];
                if token_ok(token, text, q) {
                    let _ = write!(out, "{quote}{token}{quote}");
                } else {
                    out.push_str("<not shown>");
                }
                rest = &after[j + 1..];
            }
            None => {
                // An unclosed quote: what follows may be anything; keep nothing of it.
                out.push_str("<not shown>");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drop the parsers' own ` at line N column M` / ` at position N` (we give the position in
/// front, as `file:line:column`).
fn strip_positions(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    loop {
        let next = [" at line ", " at position "]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min();
        let Some((i, p)) = next else { break };
        let tail = &rest[i + p.len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            out.push_str(&rest[..i + p.len()]);
            rest = tail;
            continue;
        }
        let mut skip = digits;
        if p == " at line "
            && let Some(t) = tail[digits..].strip_prefix(" column ")
        {
            skip += " column ".len() + t.chars().take_while(char::is_ascii_digit).count();
        }
        out.push_str(&rest[..i]);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// Escape control characters (`\u{1b}` …) so nothing in a message acts on a terminal.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && c != '\n' {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "ghp_SENTINELsecretTOKEN0123456789abcdefABCD";

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        skills: Vec<String>,
    }

    fn y(text: &str, q: Quote) -> String {
        let e = serde_yaml_ng::from_str::<Conf>(text).unwrap_err();
        yaml(&e, text, q).at("f.yaml")
    }

    #[test]
    fn a_scalar_file_is_not_a_mapping_and_is_not_quoted() {
        for text in [
            format!("GITHUB_TOKEN={SECRET}\n"),
            format!("https://user:{SECRET}@github.com\n"),
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n-----END OPENSSH PRIVATE KEY-----\n"
            ),
        ] {
            for q in [Quote::Named, Quote::Nothing] {
                let m = y(&text, q);
                assert!(!m.contains("SENTINEL"), "{m}");
                assert!(m.contains("not a YAML mapping (found a string)"), "{m}");
                assert!(m.starts_with("f.yaml:1:1: "), "{m}");
            }
        }
    }

    #[test]
    fn wrong_types_say_what_was_expected_without_the_value() {
        let m = y(&format!("agent: [\"{SECRET}\"]\n"), Quote::Named);
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("agent: expected a string, found a list"), "{m}");
        // A short value of the named config is shown; of another file, never.
        let m = y("skills: 42\n", Quote::Named);
        assert!(m.contains("expected a list, found a number `42`"), "{m}");
        let m = y("skills: 42\n", Quote::Nothing);
        assert!(m.contains("expected a list, found a number"), "{m}");
        assert!(!m.contains("42"), "{m}");
        let m = y(&format!("skills: {SECRET}\n"), Quote::Nothing);
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("expected a list, found a string"), "{m}");
    }

    #[test]
    fn unknown_keys_are_named_only_when_plain() {
        let m = y("skils: []\n", Quote::Nothing);
        assert!(
            m.contains(
                "unknown key `skils` (did you mean `skills`?); expected `agent` or `skills`"
            ),
            "{m}"
        );
        let m = y(&format!("\"{SECRET} x\": 1\n"), Quote::Nothing);
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("unknown key (a key not shown)"), "{m}");
        // Both conditions hold each on its own: a short key that is not a plain name, and a
        // plain name that is too long, are not shown (a mutant joining them with `||` showed
        // `pw=SEKRIT x`).
        let m = y("\"pw=SEKRIT x\": 1\n", Quote::Nothing);
        assert!(!m.contains("SEKRIT"), "{m}");
        assert!(m.contains("unknown key (a key not shown)"), "{m}");
        let long = "k".repeat(MAX_TOKEN + 1);
        assert!(!showable_key(&long));
        assert!(showable_key(&long[1..]));
        assert!(!showable_key("a b"));
        assert!(!showable_key(""));
    }

    /// Of the config the user named, a token of up to `MAX_TOKEN` characters may be quoted —
    /// exactly 40 too (a mutant refusing 40 went unnoticed) — and 41 may not.
    #[test]
    fn a_named_config_may_quote_a_token_of_up_to_forty_characters() {
        let t40 = "k".repeat(MAX_TOKEN);
        let t41 = "k".repeat(MAX_TOKEN + 1);
        let text = format!("{t41}: 1\n");
        let m = filter_literals(&format!("unknown variant `{t40}`"), &text, Quote::Named);
        assert_eq!(m, format!("unknown variant `{t40}`"));
        let m = filter_literals(&format!("unknown variant `{t41}`"), &text, Quote::Named);
        assert_eq!(m, "unknown variant <not shown>");
    }

    /// Of any other file, only a little punctuation (at most 3 characters, no letter or
    /// digit) may be quoted although it is in the file: a short word of the file is not, nor
    /// is longer punctuation (each part of the rule on its own).
    #[test]
    fn only_short_punctuation_of_another_file_may_be_quoted() {
        let text = "abc: ','\n----\n";
        let f = |m: &str| filter_literals(m, text, Quote::Nothing);
        assert_eq!(f("unknown `abc`"), "unknown <not shown>");
        assert_eq!(f("expected `,`"), "expected `,`");
        assert_eq!(f("bad `----`"), "bad <not shown>");
        assert_eq!(f("expected `skills`"), "expected `skills`");
    }

    /// A `"` quote ends only at an unescaped `"`: an escaped one inside does not cut the token
    /// short (which would leave its tail in the message, unfiltered).
    #[test]
    fn an_escaped_quote_does_not_end_a_quoted_token() {
        let m = filter_literals(r#"bad "x\"SEKRIT" here"#, "", Quote::Named);
        assert_eq!(m, "bad <not shown> here");
        let m = filter_literals(r#"bad "ok" here"#, "", Quote::Named);
        assert_eq!(m, r#"bad "ok" here"#);
    }

    #[test]
    fn tokens_of_other_files_are_never_quoted() {
        let text = format!("agent: {}\n", &SECRET[..30]);
        let custom = format!(
            "unknown agent \"{}\" (did you mean \"cursor\"?)",
            &SECRET[..30]
        );
        let m = message(&custom, &text, Quote::Nothing);
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("\"cursor\""), "{m}");
        // The named config may show a short token...
        let m = message(&custom, &text, Quote::Named);
        assert!(m.contains(&SECRET[..30]), "{m}");
        // ...but never a long one, nor one with control characters.
        let long = format!("unknown agent \"{SECRET}\"");
        assert!(!message(&long, SECRET, Quote::Named).contains("SENTINEL"));
        let ctl = "unknown agent \"a\\u{1b}]52;c;x\"";
        assert!(message(ctl, "", Quote::Named).contains("<not shown>"));
    }

    #[test]
    fn toml_errors_do_not_print_the_source_line() {
        let text = format!("[mcp_servers]\napi_key = {SECRET}\n");
        let e = text.parse::<toml_edit::DocumentMut>().unwrap_err();
        assert!(
            e.to_string().contains("SENTINEL"),
            "the premise: Display quotes the line"
        );
        let f = toml(&e, &text, Quote::Nothing);
        assert!(!f.message.contains("SENTINEL"), "{f:?}");
        assert_eq!(f.line, Some(2), "{f:?}");
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            n: u32,
        }
        let text = format!("{{\"n\": \"{SECRET}\"}}");
        let e = serde_json::from_str::<S>(&text).unwrap_err();
        let f = json(&e, &text, Quote::Nothing);
        assert!(!f.message.contains("SENTINEL"), "{f:?}");
        assert!(f.message.contains("found a string"), "{f:?}");
    }

    #[test]
    fn long_copies_of_the_file_are_redacted_whatever_the_message() {
        // An unquoted path prefix made of a hostile key, in a message we do not recognise.
        let key = format!("servers.{SECRET} with spaces");
        let text = format!("mcps:\n  - servers:\n      {SECRET} with spaces: 1\n");
        let m = message(&format!("mcps[0].{key}: bad server"), &text, Quote::Named);
        assert!(!m.contains("SENTINEL"), "{m}");
        assert!(m.contains("<not shown>"), "{m}");
        assert!(m.ends_with("bad server"), "{m}");
    }

    /// The guard hides copies of *more than* `MAX_TOKEN` bytes: a 40-byte token the rules let a
    /// message quote stays readable, 41 bytes do not (a window one or two bytes short went
    /// unnoticed).
    #[test]
    fn copies_up_to_the_token_limit_are_kept_longer_ones_hidden() {
        let run: String = (0..MAX_TOKEN + 1)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let text = format!("x{run}y\n");
        let short = format!("<{}>", &run[..MAX_TOKEN]);
        assert_eq!(redact_copies(&short, &text), short);
        let long = format!("<{run}>");
        assert_eq!(redact_copies(&long, &text), "<<not shown>>");
        // Exactly 41 bytes of message, and a file of exactly 41 bytes: hidden too.
        assert_eq!(redact_copies(&run, &run), "<not shown>");
        // Multi-byte characters: a window that ends inside one is widened to the next
        // character, never narrowed (that would hide a 40-byte copy) nor cut mid-character.
        let msg = "\u{e9}".repeat(25);
        let forty = format!("x{}y", "\u{e9}".repeat(20));
        assert_eq!(redact_copies(&msg, &forty), msg);
        assert_eq!(redact_copies(&msg, &"\u{e9}".repeat(21)), "<not shown>");
    }

    #[test]
    fn positions_are_stripped_and_controls_escaped() {
        assert_eq!(strip_positions("bad at line 3 column 4, x"), "bad, x");
        assert_eq!(strip_positions("bad at position 9"), "bad");
        assert_eq!(escape_controls("a\u{1b}b"), "a\\u{1b}b");
    }
}
