//! Configuration errors that name the file, the line and the fix.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not tied to a line (missing file).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to change.
    pub hint: String,
}

impl ConfigError {
    pub fn at(
        file: &std::path::Path,
        text: &str,
        offset: usize,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_col(text, offset);
        ConfigError { file: file.to_owned(), line, column, message: message.into(), hint: hint.into() }
    }
}

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Bytes: an offset inside a UTF-8 character must not panic.
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rposition(|&b| b == b'\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
