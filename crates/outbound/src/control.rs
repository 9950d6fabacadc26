//! Operator commands to the outbound queue, one type for both ends.
//!
//! `port25 queue flush|retry|delete|hold|release` [`send`]s a [`Control`]
//! as one line in a file of its own in `outbound/control/`; the scheduler
//! [`take`]s the waiting files every second (and at its start), oldest
//! first, so the queue's state keeps a single writer whether or not the
//! server runs when the command is given.

use std::fmt;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Try every queued recipient now.
    Flush,
    /// Try the recipients of one message (by id) now.
    Retry(String),
    /// Remove a message's recipients without delivering them, without a DSN.
    Delete(String),
    /// Stop sending (mail keeps queueing) until `Release`.
    Hold,
    Release,
}

impl Control {
    /// The command in one line: a verb, and the message id for those that
    /// take one; any further word is ignored.
    pub fn parse(line: &str) -> Option<Control> {
        let mut words = line.split_whitespace();
        match (words.next()?, words.next()) {
            ("flush", None) => Some(Control::Flush),
            ("retry", Some(id)) => Some(Control::Retry(id.to_owned())),
            ("delete", Some(id)) => Some(Control::Delete(id.to_owned())),
            ("hold", None) => Some(Control::Hold),
            ("release", None) => Some(Control::Release),
            _ => None,
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::Flush => f.write_str("flush"),
            Control::Retry(id) => write!(f, "retry {id}"),
            Control::Delete(id) => write!(f, "delete {id}"),
            Control::Hold => f.write_str("hold"),
            Control::Release => f.write_str("release"),
        }
    }
}

/// `control/` in the outbound spool at `root`.
pub fn dir(root: &Path) -> PathBuf {
    root.join("control")
}

/// Creates `control/` (0700) where it is missing.
pub fn create_dir(root: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir(root))
}

/// Leaves `command` for the scheduler of the outbound spool at `root`.
pub fn send(root: &Path, command: &Control) -> io::Result<()> {
    create_dir(root)?;
    let dir = dir(root);
    let nanos = port25_time::unix_nanos();
    let tmp = dir.join(format!("{nanos}.tmp"));
    std::fs::write(&tmp, format!("{command}\n"))?;
    // Renamed into place so the scheduler never reads half a command.
    std::fs::rename(&tmp, dir.join(format!("{nanos}.cmd")))
}

/// Reads and removes the commands waiting, oldest first: each file's text
/// (trimmed, for the log) and the command, None when it is not one.
pub fn take(root: &Path) -> Vec<(String, Option<Control>)> {
    let Ok(list) = std::fs::read_dir(dir(root)) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        list.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "cmd")).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let _ = std::fs::remove_file(&path);
            let command = Control::parse(&text);
            (text.trim().to_owned(), command)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_cli_sends_the_scheduler_takes_in_order() {
        let root = tempfile::tempdir().unwrap();
        let all = [
            Control::Flush,
            Control::Retry("4F1A2B3C0000001".into()),
            Control::Delete("X1".into()),
            Control::Hold,
            Control::Release,
        ];
        for c in &all {
            send(root.path(), c).unwrap();
            // Distinct names even on a coarse clock.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let taken = take(root.path());
        assert_eq!(taken.iter().map(|(_, c)| c.clone().unwrap()).collect::<Vec<_>>(), all);
        assert_eq!(taken[1].0, "retry 4F1A2B3C0000001");
        assert!(take(root.path()).is_empty(), "taken once");
    }

    #[test]
    fn a_line_that_is_no_command_parses_to_none() {
        for line in ["", "flush now", "retry", "delete", "hold on", "drop X1", "FLUSH"] {
            assert_eq!(Control::parse(line), None, "{line:?}");
        }
        assert_eq!(Control::parse("retry A B\n"), Some(Control::Retry("A".into())));
    }
}
