//! `sim7k completions SHELL` and `sim7k man`: generated from the same clap definitions as
//! `--help`, so they cannot drift from it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::exit::Exit;

/// Arguments of `sim7k completions`.
#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `sim7k man`.
#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write one page per command (sim7k.1, sim7k-run.1, …) into DIR instead of printing
    /// sim7k(1) on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn write_out(bytes: &[u8]) -> Exit {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Exit::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Exit::Io
        }
    }
}

/// Print the completion script for `args.shell`.
pub(super) fn completions(args: &CompletionsArgs) -> Exit {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "sim7k", &mut buf);
    write_out(&buf)
}

/// Print the roff man page, or write every page into a directory.
pub(super) fn man(args: &ManArgs) -> Exit {
    let cmd = super::Cli::command();
    if let Some(dir) = &args.dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            return Exit::Io;
        }
        return match clap_mangen::generate_to(cmd, dir) {
            Ok(()) => {
                eprintln!("wrote the man pages into {}", dir.display());
                Exit::Success
            }
            Err(e) => {
                eprintln!(
                    "error: cannot write the man pages into {}: {e}",
                    dir.display()
                );
                Exit::Io
            }
        };
    }
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
        eprintln!("error: cannot render the man page: {e}");
        return Exit::Io;
    }
    write_out(&buf)
}
