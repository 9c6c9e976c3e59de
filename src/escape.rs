//! Terminal-safe text (SPEC 13.8): control characters from outside made visible. A base
//! module, so every layer (credentials' log writer, the printer) can use it without importing
//! the output layer.

/// Make text fit for a terminal (SPEC 13.8): every C0 control character except newline and tab,
/// DEL, and every C1 control character (U+0080–U+009F, which some terminals take as 8-bit
/// escape sequences: U+009B is CSI, U+009D is OSC) become visible escapes (`\x1b`, `\u{9b}`).
/// So no escape sequence that came from outside — a ref name, a server message, a file or
/// skill name, a frontmatter description, an error quoting any of them — can set the clipboard
/// (OSC 52), clear the screen (CSI 2J), or rewrite a line (CR). Our own multi-line messages keep
/// their newlines. Applied at the sinks: [`crate::report::Printer`]'s lines, [`crate::report::print_items`], the error `main`
/// prints, progress bar messages and the log writer; JSON goes through [`crate::report::json_text`].
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, false)
}

/// A one-line piece of outside text for a message (a path, a secret tag, a key): like
/// [`escape_controls`], and newline and tab escaped too, so it cannot break the message's line.
pub fn escape_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// [`escape_controls`] for text whose escape characters are all our own: the log writer's
/// input, where tracing-subscriber has already escaped ESC, DEL and C1 in every message and
/// field, so an ESC still there is its own colouring.
pub fn escape_controls_but_esc(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, true)
}

fn needs_escape(c: char, keep_esc: bool) -> bool {
    match c {
        '\n' | '\t' => false,
        '\x1b' => !keep_esc,
        c => c.is_control(),
    }
}

fn escape_with(s: &str, keep_esc: bool) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, keep_esc)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, keep_esc) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_piece_keeps_no_control_character_at_all() {
        let out = escape_line("a\nb\tc\u{1b}[2J\u{9b}d\u{7f}");
        assert!(!out.chars().any(char::is_control), "{out:?}");
        assert_eq!(out, "a\\nb\\tc\\u{1b}[2J\\u{9b}d\\u{7f}");
    }
}
