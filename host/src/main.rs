//! The `runbook` command. Thin: parsing and dispatch live in `cli`, the work in
//! the library. Exit codes are part of the interface (see the README and
//! `runbook_host::exit`).

// Output goes through `cli::out`, which never panics on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use runbook_host::exit;

mod cli;

fn main() -> ExitCode {
    match cli::main(std::env::args_os().collect()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cli::out::error(e);
            ExitCode::from(exit::HOST_ERROR)
        }
    }
}
