//! `kst completions SHELL`: a completion script for the shell, on stdout (clap_complete).

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Write the script for the binary's own name (`kst` or its alias `kasetto`).
pub fn run(args: CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let name = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|n| n == "kasetto")
        .unwrap_or_else(|| "kst".to_string());
    let mut out: Vec<u8> = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|_| stdout.flush())
        .or_else(|e| {
            // `kst completions bash | head` closes the pipe early: not an error worth a code.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(Error::Failed(e.into()))
            }
        })
}
