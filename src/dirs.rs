//! Where things live on this machine: home, XDG base directories, the cache root.
//!
//! SPEC 3, 5 and 6 name XDG locations explicitly (also on macOS), so we read the variables
//! ourselves and fall back to the conventional `~/.config`, `~/.cache`, `~/.local/share`.

use std::path::PathBuf;

use crate::envvars;
use crate::error::{Error, Result};

pub fn home() -> Result<PathBuf> {
    if let Some(h) = envvars::non_empty(envvars::HOME) {
        return Ok(PathBuf::from(h));
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| Error::usage("cannot find your home directory: set HOME"))
}

fn xdg(var: &str, fallback: &[&str]) -> Result<PathBuf> {
    match envvars::non_empty(var) {
        // The XDG spec says relative values are invalid and must be ignored.
        Some(p) if PathBuf::from(&p).is_absolute() => Ok(PathBuf::from(p)),
        _ => {
            let mut p = home()?;
            p.extend(fallback);
            Ok(p)
        }
    }
}

pub fn config_home() -> Result<PathBuf> {
    xdg(envvars::XDG_CONFIG_HOME, &[".config"])
}

pub fn data_home() -> Result<PathBuf> {
    xdg(envvars::XDG_DATA_HOME, &[".local", "share"])
}

pub fn cache_home() -> Result<PathBuf> {
    xdg(envvars::XDG_CACHE_HOME, &[".cache"])
}

/// `$KASETTO_CACHE_DIR`, else `$XDG_CACHE_HOME/kasetto`, else `~/.cache/kasetto`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(p) = envvars::non_empty(envvars::KASETTO_CACHE_DIR) {
        return Ok(PathBuf::from(p));
    }
    Ok(cache_home()?.join("kasetto"))
}

/// The lock file of the global scope.
pub fn global_lock_path() -> Result<PathBuf> {
    Ok(data_home()?.join("kasetto").join("kasetto.lock"))
}
