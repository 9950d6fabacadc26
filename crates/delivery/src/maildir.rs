//! Maildir delivery (one directory per recipient: `root/domain/local/`).
//!
//! Each file is written to `tmp/`, made durable, renamed into `new/`, and
//! the rename made durable before the recipient is recorded as done. File
//! names are derived from the message id and recipient index, so a delivery
//! that is repeated after a crash finds its earlier copy and does not
//! duplicate it: exactly once.
//!
//! A batch's files are written together and made durable with one
//! `syncfs(2)` before the renames and one after, instead of an fsync per
//! file and per mailbox: the order that matters (content durable before the
//! name appears in `new/`, names durable before the spool forgets them) is
//! kept, at two flushes per batch rather than one or more per message.
//! Where `syncfs` fails, each file and directory is fsynced instead.
//!
//! Small batches (fewer than [`SYNCFS_MIN_FILES`] files) are fsynced file by
//! file and directory by directory instead: `syncfs` writes back every dirty
//! page of the whole file system, other programs' too, so its cost has no
//! bound we control. Measured on a shared disk (issue 8, submission with 4
//! clients, batches of one message): a `syncfs` took 240 ms while builds
//! wrote elsewhere on the same file system, and the spool's fsync of the
//! next 2 KB batch, waiting on the same journal, took 233 ms instead of
//! ~1 ms, i.e. the next client's 250 waited on other people's writes.

use crate::outcome::{delivery_headers, RcptOutcome, Work};
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// From this many files in a batch on, one `syncfs` before the renames and
/// one after are cheaper than an fsync per file and per mailbox; below it,
/// per-file fsyncs keep the cost to our own bytes (see the module comment).
const SYNCFS_MIN_FILES: usize = 16;

#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    hostname: String,
    /// Mailboxes whose tmp/new/cur exist, so a batch does not recreate them.
    created: Arc<Mutex<HashSet<PathBuf>>>,
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
        Maildir { root: root.into(), hostname, created: Arc::default() }
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
        for w in work {
            for &r in &w.rcpts {
                let rcpt = &w.message.rcpts[r];
                let Some(dir) = self.mailbox(rcpt) else {
                    results.push((w.index, r, RcptOutcome::Failed(format!("no safe mailbox name for {rcpt}"))));
                    continue;
                };
                let name = self.file_name(w, r);
                match self.write_tmp(&dir, &name, w, rcpt, recovered) {
                    Ok(None) => results.push((w.index, r, RcptOutcome::Delivered)),
                    Ok(Some(tmp)) => staged.push((w.index, r, tmp, dir.join("new").join(&name))),
                    Err(e) => results.push((w.index, r, RcptOutcome::Deferred(format!("{}: {e}", dir.display())))),
                }
            }
        }
        if staged.is_empty() {
            return results;
        }
        let whole_fs = staged.len() >= SYNCFS_MIN_FILES;
        // Content first: nothing may appear in new/ before its bytes are on disk.
        if !whole_fs || sync_filesystem(&self.root).is_err() {
            staged.retain(|(m, r, tmp, _)| {
                let ok = File::open(tmp).and_then(|f| f.sync_all()).is_ok();
                if !ok {
                    results.push((*m, *r, RcptOutcome::Deferred(format!("cannot fsync {}", tmp.display()))));
                }
                ok
            });
        }
        let mut renamed = Vec::new();
        for (m, r, tmp, new) in staged {
            match fs::rename(&tmp, &new) {
                Ok(()) => renamed.push((m, r, new)),
                Err(e) => results.push((m, r, RcptOutcome::Deferred(format!("{}: {e}", new.display())))),
            }
        }
        // Then the names, before the spool records these recipients as done.
        let all_synced = whole_fs && sync_filesystem(&self.root).is_ok();
        let dirs: BTreeSet<&Path> = renamed.iter().filter_map(|(_, _, p)| p.parent()).collect();
        let synced: BTreeSet<&Path> =
            dirs.into_iter().filter(|d| all_synced || File::open(d).and_then(|f| f.sync_all()).is_ok()).collect();
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

    /// Writes one copy into the mailbox's tmp/ (not yet synced); None when
    /// a delivery from before a crash is already there.
    fn write_tmp(&self, dir: &Path, name: &str, w: &Work, rcpt: &str, recovered: bool) -> io::Result<Option<PathBuf>> {
        let known = self.created.lock().expect("maildir cache poisoned").contains(dir);
        if !known {
            // Mail is for its owner only, whatever the umask: 0700
            // directories (the domain's and the root too, when made here),
            // 0600 files.
            for sub in ["tmp", "new", "cur"] {
                fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join(sub))?;
            }
            self.created.lock().expect("maildir cache poisoned").insert(dir.to_owned());
        }
        if recovered && already_delivered(dir, name) {
            return Ok(None);
        }
        let tmp = dir.join("tmp").join(name);
        let mut f =
            fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).inspect_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    // Removed behind our back: create it again on the next try.
                    self.created.lock().expect("maildir cache poisoned").remove(dir);
                }
            })?;
        f.write_all(&delivery_headers(&w.message.from, rcpt))?;
        f.write_all(&w.message.content)?;
        Ok(Some(tmp))
    }
}

/// Flushes everything written on the file system that holds `dir`.
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let f = File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open.
    if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Was this exact file delivered before a crash? It is in new/, or a mail
/// reader has moved it to cur/ (adding ":2,flags").
fn already_delivered(dir: &Path, name: &str) -> bool {
    if dir.join("new").join(name).exists() {
        return true;
    }
    let Ok(entries) = fs::read_dir(dir.join("cur")) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_str().is_some_and(|n| n == name || n.starts_with(&format!("{name}:"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use port25_spool::SpooledMessage;
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
            from_mx: false,
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
