//! Errors in inputs name the file and, where there is one, the line, so a
//! user can open the file at the right place.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}:{line}: {msg}", path.display())]
    Line { path: PathBuf, line: u64, msg: String },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
}

impl InputError {
    pub fn line(path: &Path, line: u64, msg: impl Into<String>) -> InputError {
        InputError::Line { path: path.to_owned(), line, msg: msg.into() }
    }
    pub fn file(path: &Path, msg: impl std::fmt::Display) -> InputError {
        InputError::File { path: path.to_owned(), msg: msg.to_string() }
    }
}

/// Reads a whole input file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))
}

/// A parser's complaint about one line (1-based), before it knows the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub msg: String,
}

impl LineError {
    pub fn new(line: u64, msg: impl Into<String>) -> LineError {
        LineError { line, msg: msg.into() }
    }
    pub fn in_file(self, path: &Path) -> InputError {
        InputError::line(path, self.line, self.msg)
    }
}
