//! Every byte the `runbook` binary writes goes through here.
//!
//! `println!` panics when stdout is a closed pipe (`runbook show J | head`), and
//! a panic mid-run would leave a run half done. Restoring SIGPIPE's default
//! action instead would kill a live run mid-mutation if the operator pipes its
//! output into `head`. So output is written with `write!` and a write error is
//! ignored: the command carries on (a run finishes and journals its outcome)
//! and exits with its own code. Clippy's `print_stdout`/`print_stderr` lints
//! (denied in main.rs and lib.rs) keep it that way.
//!
//! Text that came from a runbook, a journal or the operator is escaped with
//! `transcript::printable` before it gets here; [`error`] and [`say`] escape
//! whole messages too, as a last line of defence.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use runbook_host::transcript::{
    MAX_TEXT_CHARS, MAX_VALUE_CHARS, is_printable, printable, printable_within,
};

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::stdout(format_args!($($arg)*))
    };
}

/// `println!` that never panics.
macro_rules! outln {
    () => {
        $crate::cli::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics (and flushes, for a prompt).
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::out::stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => {
        $crate::cli::out::stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Whether human output (`out!`, `outln!`, [`human`]) goes to stderr: stdout
/// is kept for one machine-readable document (`run --output json`).
static HUMAN_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// From now on, send human output to stderr, keeping stdout for
/// [`machine`]. For the rest of the process: set once, after parsing.
pub fn human_to_stderr() {
    HUMAN_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Where human output goes: stdout, or stderr after [`human_to_stderr`].
pub fn human() -> Box<dyn Write> {
    if HUMAN_TO_STDERR.load(Ordering::Relaxed) {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    }
}

/// Write human output (stdout, or stderr after [`human_to_stderr`]); a
/// closed or full-disk stream is ignored.
pub fn stdout(args: fmt::Arguments<'_>) {
    let _ = human().write_fmt(args);
}

/// Write a machine-readable document to stdout, whatever
/// [`human_to_stderr`] says, and flush it; a closed stdout is ignored.
pub fn machine(document: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(document.as_bytes())
        .and_then(|()| out.flush());
}

/// Write to stderr, in one write (stderr is unbuffered: each formatted
/// piece would be a syscall of its own); a closed stderr is ignored.
pub fn stderr(args: fmt::Arguments<'_>) {
    let text = fmt::format(args);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Print `error: MESSAGE` on stderr, the whole message escaped and cut:
/// error messages quote paths, names and values from the command line, a
/// journal or a manifest.
pub fn error(message: impl fmt::Display) {
    // `{:#}` shows an anyhow error with its causes; plain types ignore it.
    let text = format!("{message:#}");
    errln!("error: {}", printable_within(&text, MAX_TEXT_CHARS));
    if let Ok(mut last) = LAST_ERROR.lock() {
        *last = Some(text);
    }
}

/// The last message [`error`] printed, as is: the summary of a run that
/// ended on an error, for machine output.
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// The last message [`error`] printed, if any (taken: a second call says
/// `None`).
pub fn take_last_error() -> Option<String> {
    LAST_ERROR.lock().ok().and_then(|mut last| last.take())
}

/// Print a progress message of the library (`say` callbacks) on stderr,
/// escaped and cut.
pub fn say(message: &str) {
    errln!("{}", printable_within(message, MAX_TEXT_CHARS));
}

/// Whether the command line holds text that must not reach the terminal as
/// is (see [`check_argv`]).
static UNSAFE_ARGV: AtomicBool = AtomicBool::new(false);

/// Look at the command line once, before parsing it: clap quotes arguments it
/// cannot parse in its errors, so an argument with control, format or
/// bidirectional characters (or one longer than a value may be) makes clap's
/// messages plain (see [`command`] and [`clap_exit`]), to be escaped here.
pub fn check_argv(argv: &[OsString]) {
    let bad = argv.iter().any(|a| {
        a.to_str()
            .is_none_or(|s| !is_printable(s) || s.chars().count() > MAX_VALUE_CHARS)
    });
    UNSAFE_ARGV.store(bad, Ordering::Relaxed);
}

/// `cmd` ready to parse this command line: without clap's colours if the
/// command line holds text that must be escaped, so that what clap renders is
/// exactly the text, to escape in [`clap_exit`].
pub fn command(cmd: clap::Command) -> clap::Command {
    if UNSAFE_ARGV.load(Ordering::Relaxed) {
        cmd.styles(clap::builder::Styles::plain())
    } else {
        cmd
    }
}

/// Print a clap error (a usage error, or `--help`/`--version`) and exit with
/// clap's code (2, or 0 for help), as `clap::Error::exit` does (which ignores
/// write errors), without passing command-line text raw to the terminal:
/// when the command line holds text to escape, clap's message is printed
/// plain, line by line escaped and cut.
pub fn clap_exit(e: clap::Error) -> ! {
    if !UNSAFE_ARGV.load(Ordering::Relaxed) {
        e.exit();
    }
    // Plain styles (see `command`): `ansi()` is the text as is, with the
    // command line's bytes raw (clap's plain rendering would strip escape
    // sequences silently, hiding what was typed).
    let text = e.render().ansi().to_string();
    let mut escaped = String::new();
    for line in text.lines() {
        escaped.push_str(&printable(line));
        escaped.push('\n');
    }
    if e.use_stderr() {
        err!("{escaped}");
    } else {
        out!("{escaped}");
        let _ = std::io::stdout().lock().flush();
    }
    std::process::exit(e.exit_code())
}
