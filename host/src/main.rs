//! The `runbook` command. Thin: parsing and dispatch live in `cli`, the work in
//! the library. Exit codes are part of the interface (see the README and
//! `runbook_host::sandbox::exit`).

use std::process::ExitCode;

use runbook_host::sandbox::exit;

mod cli;

fn main() -> ExitCode {
    match cli::main(std::env::args_os().collect()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::HOST_ERROR)
        }
    }
}
