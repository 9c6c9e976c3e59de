//! Error kinds at the library's boundary and the exit codes they map to (SPEC 12).
//!
//! Inside modules we use `anyhow` with context; what crosses into `main` is an [`Error`]
//! whose variant decides the exit code. Messages must say what failed, where, and what to do,
//! and must never contain a credential.

use std::fmt;

/// What went wrong, classified by who has to act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line, the config file or the lock file is wrong: the user must edit something.
    /// Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Something failed while doing the work (a source, a skill, drift found). Exit code 1.
    #[error("{0:#}")]
    Failed(anyhow::Error),
    /// The work ran, reported its own problems, and only the exit code is left to give.
    #[error("{0}")]
    Reported(Outcome),
}

/// Result of a command whose problems were already printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something was broken or drifted; details were reported.
    Problems,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("problems were reported")
    }
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) | Error::Reported(_) => 1,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        // A usage error wrapped in context keeps its kind.
        match e.downcast::<Error>() {
            Ok(inner) => inner,
            Err(e) => Error::Failed(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
