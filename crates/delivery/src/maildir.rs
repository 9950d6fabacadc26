//! Maildir delivery (one directory per recipient: `root/domain/local/`).
//!
//! Each file is written to `tmp/`, fsynced, renamed into `new/`, and the
//! directory fsynced before the recipient is recorded as done. File names
//! are derived from the message id and recipient index, so a delivery that
//! is repeated after a crash finds its earlier copy and does not duplicate
//! it: exactly once. Files of one batch are written first and synced
//! together, so a batch costs one directory fsync per mailbox.

use crate::outcome::{delivery_headers, RcptOutcome, Work};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    hostname: String,
}

/// Local parts and domains become directory names: allow only what cannot
/// escape the root or collide with Maildir's own names.
fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-=".contains(&b) || b >= 0x80)
}

impl Maildir {
    pub fn new(root: impl Into<PathBuf>, hostname: &str) -> Maildir {
        // The host part of a Maildir name may not contain '/' or ':'.
        let hostname = hostname.replace(['/', ':'], "_");
        Maildir { root: root.into(), hostname }
    }

    pub fn mailbox(&self, rcpt: &str) -> Option<PathBuf> {
        let (local, domain) = rcpt.rsplit_once('@')?;
        let (local, domain) = (local.to_lowercase(), domain.to_lowercase());
        (safe_component(&local) && safe_component(&domain)).then(|| self.root.join(domain).join(local))
    }

    fn file_name(&self, work: &Work, rcpt: usize) -> String {
        format!("{}.{}_{}.{}", work.message.received_at, work.message.id, rcpt, self.hostname)
    }

    /// Delivers a batch; blocking (run it on a blocking thread).
    pub fn deliver(&self, work: &[Work], recovered: bool) -> Vec<(usize, usize, RcptOutcome)> {
        let mut results = Vec::new();
        let mut staged: Vec<(usize, usize, PathBuf, PathBuf)> = Vec::new();
        let mut created: BTreeSet<PathBuf> = BTreeSet::new();
        for w in work {
            for &r in &w.rcpts {
                let rcpt = &w.message.rcpts[r];
                let Some(dir) = self.mailbox(rcpt) else {
                    results.push((w.index, r, RcptOutcome::Failed(format!("no safe mailbox name for {rcpt}"))));
                    continue;
                };
                let name = self.file_name(w, r);
                let outcome = (|| -> io::Result<Option<(PathBuf, PathBuf)>> {
                    if !created.contains(&dir) {
                        for sub in ["tmp", "new", "cur"] {
                            fs::create_dir_all(dir.join(sub))?;
                        }
                        created.insert(dir.clone());
                    }
                    if recovered && already_delivered(&dir, &name) {
                        return Ok(None);
                    }
                    let tmp = dir.join("tmp").join(&name);
                    let mut f = File::create(&tmp)?;
                    f.write_all(&delivery_headers(&w.message.from, rcpt))?;
                    f.write_all(&w.message.content)?;
                    f.sync_all()?;
                    Ok(Some((tmp, dir.join("new").join(&name))))
                })();
                match outcome {
                    Ok(None) => results.push((w.index, r, RcptOutcome::Delivered)),
                    Ok(Some((tmp, new))) => staged.push((w.index, r, tmp, new)),
                    Err(e) => results.push((w.index, r, RcptOutcome::Deferred(format!("{}: {e}", dir.display())))),
                }
            }
        }
        let mut renamed = Vec::new();
        for (m, r, tmp, new) in staged {
            match fs::rename(&tmp, &new) {
                Ok(()) => renamed.push((m, r, new)),
                Err(e) => results.push((m, r, RcptOutcome::Deferred(format!("{}: {e}", new.display())))),
            }
        }
        let dirs: BTreeSet<&Path> = renamed.iter().filter_map(|(_, _, p)| p.parent()).collect();
        let synced: BTreeSet<&Path> = dirs.into_iter().filter(|d| File::open(d).and_then(|f| f.sync_all()).is_ok()).collect();
        for (m, r, new) in &renamed {
            if new.parent().is_some_and(|d| synced.contains(d)) {
                results.push((*m, *r, RcptOutcome::Delivered));
            } else {
                // The file is in new/ but not durably; trying again finds it.
                results.push((*m, *r, RcptOutcome::Deferred("cannot fsync maildir".into())));
            }
        }
        results
    }
}

/// Was this exact file delivered before a crash? It is in new/, or a mail
/// reader has moved it to cur/ (adding ":2,flags").
fn already_delivered(dir: &Path, name: &str) -> bool {
    if dir.join("new").join(name).exists() {
        return true;
    }
    let Ok(entries) = fs::read_dir(dir.join("cur")) else { return false };
    entries.filter_map(Result::ok).any(|e| e.file_name().to_str().is_some_and(|n| n == name || n.starts_with(&format!("{name}:"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use port25_queue::SpooledMessage;
    use std::sync::Arc;

    fn work(rcpts: &[&str]) -> Work {
        let message = SpooledMessage {
            id: "ABC001".into(),
            received_at: 1_700_000_000,
            peer: "192.0.2.1:1".into(),
            helo: "h".into(),
            from: "s@remote.example".into(),
            rcpts: rcpts.iter().map(|s| s.to_string()).collect(),
            content: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        };
        Work { message: Arc::new(message), index: 0, rcpts: (0..rcpts.len()).collect() }
    }

    #[test]
    fn delivers_once_even_when_repeated_after_a_crash() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::new(root.path(), "mx.example");
        let w = work(&["User@Example.NET", "../etc@example.net"]);
        let out = md.deliver(std::slice::from_ref(&w), false);
        assert_eq!(out[0], (0, 1, RcptOutcome::Failed("no safe mailbox name for ../etc@example.net".into())));
        assert_eq!(out[1], (0, 0, RcptOutcome::Delivered));
        let new = root.path().join("example.net/user/new");
        let files: Vec<_> = fs::read_dir(&new).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        let text = fs::read_to_string(&files[0]).unwrap();
        assert!(text.starts_with("Return-Path: <s@remote.example>\r\nDelivered-To: User@Example.NET\r\nSubject: hi"));
        // A mail reader moves it to cur/; recovery must still see it.
        let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
        fs::rename(&files[0], root.path().join(format!("example.net/user/cur/{name}:2,S"))).unwrap();
        let w0 = Work { rcpts: vec![0], ..w };
        assert_eq!(md.deliver(std::slice::from_ref(&w0), true), vec![(0, 0, RcptOutcome::Delivered)]);
        assert_eq!(fs::read_dir(&new).unwrap().count(), 0);
        assert_eq!(fs::read_dir(root.path().join("example.net/user/cur")).unwrap().count(), 1);
    }
}
