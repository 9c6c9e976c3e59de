//! `KASETTO_ALLOW_UNKNOWN_KEYS=1` (SPEC 3): a config shared with other tools may carry keys
//! neither Kasetto nor kst knows. Without the variable such a key is an error (naming the
//! closest valid key: a typo must not silently drop a skill); with it, each unknown key is
//! named in a warning (file:line) and ignored.
//!
//! The strict parse stays the only parser: an unknown key's error gives its position, the key
//! (with its value) is blanked out of the text there, and the text is parsed again. Blanking
//! keeps every line where it was, so later messages and warnings keep their line numbers.

use serde::de::DeserializeOwned;

/// Is the escape hatch on?
fn allowed() -> bool {
    std::env::var(crate::envvars::KASETTO_ALLOW_UNKNOWN_KEYS).is_ok_and(|v| v == "1")
}

/// Parse `text` strictly; under `KASETTO_ALLOW_UNKNOWN_KEYS=1`, unknown keys are ignored with a
/// warning (`label` names the file in it). Any other error, or an unknown key whose entry kst
/// cannot cut out of the text, is returned as the strict parse gives it.
pub(crate) fn from_str<T: DeserializeOwned>(
    label: &str,
    text: &str,
) -> Result<T, serde_yaml_ng::Error> {
    let first = match serde_yaml_ng::from_str::<T>(text) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    if !allowed() {
        return Err(first);
    }
    let mut cur = text.to_owned();
    let mut err = first;
    // Each round removes one key, so the number of lines bounds the rounds.
    for _ in 0..=text.lines().count() {
        let Some((key, valid)) = unknown_key(&err) else {
            return Err(err);
        };
        let Some(loc) = err.location() else {
            return Err(err);
        };
        let Some(next) = cut(
            &cur,
            loc.line().saturating_sub(1),
            loc.column().saturating_sub(1),
        ) else {
            return Err(err);
        };
        let hint = crate::suggest::closest(&key, valid.iter().map(String::as_str))
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        tracing::warn!(
            "{}:{}: unknown key {} ignored ({}=1){hint}",
            // A remote config's URL as spelled may carry a token in its query.
            crate::source::DisplayUrl::new(label),
            loc.line(),
            crate::malformed::key_shown(&key),
            crate::envvars::KASETTO_ALLOW_UNKNOWN_KEYS
        );
        cur = next;
        let parsed = if cur.trim().is_empty() {
            serde_yaml_ng::from_str::<T>("{}")
        } else {
            serde_yaml_ng::from_str::<T>(&cur)
        };
        match parsed {
            Ok(t) => return Ok(t),
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// The key of an "unknown field" error and the valid keys serde lists with it.
fn unknown_key(e: &serde_yaml_ng::Error) -> Option<(String, Vec<String>)> {
    let msg = e.to_string();
    let rest = &msg[msg.find("unknown field `")? + "unknown field `".len()..];
    let end = rest
        .find("`, expected")
        .or_else(|| rest.find("`, there are no"))?;
    let valid = rest[end + 1..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    Some((rest[..end].to_owned(), valid))
}

/// `text` without the mapping entry whose key starts at `line`:`col` (0-based, in chars): in a
/// block mapping the key, its value and the lines indented under it are blanked (the lines
/// stay); in a flow mapping on one line, `key: value` and one comma go. `None` when the entry
/// cannot be delimited that way.
fn cut(text: &str, line: usize, col: usize) -> Option<String> {
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    let chars: Vec<char> = lines.get(line)?.chars().collect();
    if col > chars.len() {
        return None;
    }
    let before: String = chars[..col].iter().collect();
    let block = before.trim().chars().all(|c| c == '-' || c.is_whitespace());
    if block {
        lines[line] = before.trim_end().to_owned();
        if lines[line].ends_with('-') {
            lines[line].push(' ');
        }
        let indent = |s: &str| s.chars().take_while(|c| *c == ' ').count();
        for l in lines.iter_mut().skip(line + 1) {
            let t = l.trim();
            let inside = t.is_empty()
                || t.starts_with('#')
                || indent(l) > col
                || (indent(l) == col && (t == "-" || t.starts_with("- ")));
            if !inside {
                break;
            }
            l.clear();
        }
        return Some(lines.join("\n"));
    }
    // Flow: scan `key: value` to the `,` `}` or `]` that ends it at depth 0.
    let (mut depth, mut quote, mut end) = (0usize, None::<char>, None);
    for (i, &c) in chars.iter().enumerate().skip(col) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') if depth == 0 => {
                end = Some((i, false));
                break;
            }
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                end = Some((i, true));
                break;
            }
            _ => {}
        }
    }
    let (end, comma) = end?;
    let (start, stop) = if comma {
        let after = chars[end + 1..].iter().take_while(|c| **c == ' ').count();
        (col, end + 1 + after)
    } else {
        // The last entry: the comma before it goes instead.
        let prev = chars[..col].iter().rposition(|c| !c.is_whitespace())?;
        if chars[prev] == ',' {
            (prev, end)
        } else {
            (col, end)
        }
    };
    let kept: String = chars[..start].iter().chain(&chars[stop..]).collect();
    lines[line] = kept;
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_block_entry_goes_with_its_value_and_the_lines_stay() {
        let t = "skills:\n  - source: x\n    bogus:\n      - a\n      - b\n    skills: \"*\"\n";
        assert_eq!(
            cut(t, 2, 4).unwrap(),
            "skills:\n  - source: x\n\n\n\n    skills: \"*\"\n"
        );
        let t = "- bogus: 1\n  source: x\n";
        assert_eq!(cut(t, 0, 2).unwrap(), "- \n  source: x\n");
        let t = "bogus:\n- a\nskills: []\n";
        assert_eq!(cut(t, 0, 0).unwrap(), "\n\nskills: []\n");
    }

    #[test]
    fn a_flow_entry_goes_with_one_comma() {
        let t = "skills: [{ source: x, bogus: {a: 1}, skills: \"*\" }]\n";
        assert_eq!(
            cut(t, 0, 22).unwrap(),
            "skills: [{ source: x, skills: \"*\" }]\n"
        );
        let t = "skills: [{ source: x, bogus: 'a,}' }]\n";
        assert_eq!(cut(t, 0, 22).unwrap(), "skills: [{ source: x}]\n");
    }
}
