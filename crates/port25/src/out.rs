//! Every byte the binary writes to standard output or standard error goes
//! through here, so a reader that goes away (`port25 report build | head`,
//! a closed terminal) never makes it panic.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe returns EPIPE, and
//! `println!` panics on any write error. Restoring SIGPIPE's default would
//! also kill `serve` when a Unix-socket peer (LMTP, Dovecot auth) hangs up,
//! so instead: the first EPIPE on standard output marks it gone, and what
//! follows is dropped while the command finishes its real work (files
//! under `--out`, the account database); the exit status is the command's.
//! Any other write error on standard output (a full disk behind `>`) is
//! kept and reported once at the end, with exit status 2: output was lost.
//! Standard error is best effort: if it is gone there is nobody to tell.
//!
//! `println!`, `print!`, `eprintln!`, `eprint!` and `std::io::stdout` are
//! refused by clippy in this crate (crates/port25/clippy.toml), so a new
//! command cannot bring the panic back.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Standard output was closed by its reader (EPIPE): later writes are dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// The first write error on standard output other than EPIPE.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes `bytes` to standard output (flushed: the lock's line buffer
/// would otherwise hold the tail until exit, when an error can no longer
/// be seen).
#[allow(clippy::disallowed_methods)] // the one place that may touch stdout
pub fn write_stdout(bytes: &[u8]) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let mut slot = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e);
        }
    }
}

/// Formats and writes to standard output.
pub fn stdout_fmt(args: std::fmt::Arguments<'_>) {
    match args.as_str() {
        Some(s) => write_stdout(s.as_bytes()),
        None => write_stdout(args.to_string().as_bytes()),
    }
}

/// Formats and writes to standard error; errors are ignored (a closed
/// standard error has no reader to tell).
pub fn stderr_fmt(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.flush());
}

/// The write error standard output met, other than its reader leaving.
pub fn stdout_error() -> Option<std::io::Error> {
    STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A [`Write`] over standard output with the same rules, for code that
/// wants a writer (`serde_json::to_writer`, `write!`).
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stdout(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `println!` that survives a closed standard output.
macro_rules! outln {
    () => { $crate::out::write_stdout(b"\n") };
    ($($arg:tt)*) => { $crate::out::stdout_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed standard output.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::stdout_fmt(format_args!($($arg)*)) };
}

/// `eprintln!` that survives a closed standard error.
macro_rules! errln {
    () => { $crate::out::stderr_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::stderr_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that survives a closed standard error.
macro_rules! err {
    ($($arg:tt)*) => { $crate::out::stderr_fmt(format_args!($($arg)*)) };
}
