//! Every environment variable kst reads, in one place (like uv's `uv-static`).

pub const KASETTO_CONFIG: &str = "KASETTO_CONFIG";
pub const KASETTO_CACHE_DIR: &str = "KASETTO_CACHE_DIR";
pub const KASETTO_LOG: &str = "KASETTO_LOG";
pub const KASETTO_OFFLINE: &str = "KASETTO_OFFLINE";
pub const KASETTO_ALLOW_HTTP: &str = "KASETTO_ALLOW_HTTP";
/// `1`: a config key neither Kasetto nor kst knows is a warning (and ignored), not an error.
pub const KASETTO_ALLOW_UNKNOWN_KEYS: &str = "KASETTO_ALLOW_UNKNOWN_KEYS";
pub const NO_COLOR: &str = "NO_COLOR";
/// Colours even when stderr is not a terminal (`--color auto` only; NO_COLOR wins).
pub const CLICOLOR_FORCE: &str = "CLICOLOR_FORCE";
pub const HOME: &str = "HOME";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
pub const PI_CODING_AGENT_DIR: &str = "PI_CODING_AGENT_DIR";
/// VS Code's user folder (github-copilot's global `mcp.json`), when not the default.
pub const KASETTO_VSCODE_USER_DIR: &str = "KASETTO_VSCODE_USER_DIR";
/// Prefix of the variables that fill `${kst_NAME}` placeholders in MCP packs (`KST_NAME`).
pub const KST_SECRET_PREFIX: &str = "KST_";
/// Secret managers (SPEC 10c): seconds a manager's CLI may take (default 30), and the most
/// bytes of answer read from it (default 1 MiB).
pub const KASETTO_SECRETS_TIMEOUT: &str = "KASETTO_SECRETS_TIMEOUT";
pub const KASETTO_SECRETS_MAX_BYTES: &str = "KASETTO_SECRETS_MAX_BYTES";
/// Caps of SPEC 13.4, overridable for users with unusual skills.
pub const KASETTO_MAX_FILE_BYTES: &str = "KASETTO_MAX_FILE_BYTES";
pub const KASETTO_MAX_SKILL_BYTES: &str = "KASETTO_MAX_SKILL_BYTES";
pub const KASETTO_MAX_SKILL_FILES: &str = "KASETTO_MAX_SKILL_FILES";
/// Caps on one fetch (SPEC 13.7): bytes received and objects in the pack (git/fetch.rs).
pub const KASETTO_MAX_FETCH_BYTES: &str = "KASETTO_MAX_FETCH_BYTES";
pub const KASETTO_MAX_FETCH_OBJECTS: &str = "KASETTO_MAX_FETCH_OBJECTS";
/// `kst audit` (SPEC 16): bytes scanned per file (default 4 MiB), and the OSV endpoint that
/// `--online` asks (default https://api.osv.dev).
pub const KASETTO_AUDIT_MAX_BYTES: &str = "KASETTO_AUDIT_MAX_BYTES";
pub const KASETTO_OSV_URL: &str = "KASETTO_OSV_URL";

/// True when the variable is set to something other than empty, `0` or `false`.
pub fn flag(name: &str) -> bool {
    match std::env::var_os(name) {
        None => false,
        Some(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
    }
}

/// A non-empty value of the variable, as a path or string.
pub fn non_empty(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Every variable above that a sync the whole-run memo may record can read, and the test-only
/// ones (`failpoint.rs`), by name: their values are part of the memo's key (`runmemo.rs`), so
/// a change of any of them is a full run. Not here: `KST_*` secrets and the credentials and
/// network variables, which only MCP servers and git sources read — and a config with either
/// is never memoised. (A unit test keeps this list and the constants above in step.)
pub const RUN_INPUTS: &[&str] = &[
    KASETTO_CONFIG,
    KASETTO_CACHE_DIR,
    KASETTO_LOG,
    KASETTO_OFFLINE,
    KASETTO_ALLOW_HTTP,
    KASETTO_ALLOW_UNKNOWN_KEYS,
    NO_COLOR,
    CLICOLOR_FORCE,
    HOME,
    XDG_CONFIG_HOME,
    XDG_CACHE_HOME,
    XDG_DATA_HOME,
    PI_CODING_AGENT_DIR,
    KASETTO_VSCODE_USER_DIR,
    KASETTO_SECRETS_TIMEOUT,
    KASETTO_SECRETS_MAX_BYTES,
    KASETTO_MAX_FILE_BYTES,
    KASETTO_MAX_SKILL_BYTES,
    KASETTO_MAX_SKILL_FILES,
    KASETTO_MAX_FETCH_BYTES,
    KASETTO_MAX_FETCH_OBJECTS,
    KASETTO_AUDIT_MAX_BYTES,
    KASETTO_OSV_URL,
    "APPDATA",
    "KASETTO_FAILPOINT",
    "KASETTO_FAILPOINT_ERROR",
    "KASETTO_FAILPOINT_HOLD",
    "KASETTO_DEBUG_COUNTERS",
];

#[cfg(test)]
mod tests {
    /// Every variable named above is one of the memo's inputs, but the secrets' prefix.
    #[test]
    fn run_inputs_name_every_variable() {
        let text = include_str!("envvars.rs");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str = ") else {
                continue;
            };
            let value = value.trim_end_matches(';').trim_matches('"');
            if name == "KST_SECRET_PREFIX" {
                continue;
            }
            assert!(
                super::RUN_INPUTS.contains(&value),
                "{name} is not in RUN_INPUTS (runmemo.rs keys on every variable kst reads)"
            );
        }
    }
}
