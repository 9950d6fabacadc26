//! Message bodies, stored once by SHA-256 and zstd-compressed.
//!
//! `bodies/ab/cd/abcd…(64 hex).zst`: two levels of fan-out keep directories
//! small at millions of bodies. A body is written to `bodies/tmp/` and
//! renamed into place before the event that names it is queued; it is on
//! disk before that event is: [`Bodies::put`] fsyncs file and directory
//! itself, [`Bodies::put_unsynced`] leaves it to the log's group commit
//! (one `syncfs` per group instead of two fsyncs per body).
//! Two sessions storing the same new body at once both rename identical
//! bytes onto the same name, which is harmless. A body stored again gets
//! its modification time refreshed: the file time is when the body was last
//! seen, which is what the quota ([`crate::quota`]) evicts by.

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// zstd level 3: the library's default; spam compresses well at it and it
/// costs little CPU per message.
const LEVEL: i32 = 3;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn digest_hex(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The path of a body under `root` (the `bodies` directory). Refuses
/// anything that is not 64 lower-case hex digits, so a digest read from a
/// log can never name a path outside the store.
pub fn path_of(root: &Path, digest: &str) -> Option<PathBuf> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    Some(root.join(digest.get(..2)?).join(digest.get(2..4)?).join(format!("{digest}.zst")))
}

#[derive(Debug, Clone)]
pub struct Bodies {
    root: PathBuf,
}

/// What [`Bodies::put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub digest: String,
    /// The body was already stored: nothing was written.
    pub duplicate: bool,
    /// Compressed bytes written (0 for a duplicate).
    pub written: u64,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Bodies {
    pub fn open(root: &Path) -> io::Result<Bodies> {
        // Captured mail: 0700 directories, 0600 files, whatever the umask.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root.join("tmp"))?;
        // Leftovers of a crash between write and rename: never named by an event.
        for e in fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(Bodies { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `body` unless it is already there. Blocking (fsync).
    pub fn put(&self, body: &[u8]) -> io::Result<Put> {
        self.write(body, true, &|| Ok(()))
    }

    /// Stores `body` without syncing it: the caller must make it durable
    /// (the event log's group commit does, with one `syncfs` for all the
    /// bodies written since the last group) before anyone relies on it.
    pub fn put_unsynced(&self, body: &[u8]) -> io::Result<Put> {
        self.write(body, false, &|| Ok(()))
    }

    /// [`Bodies::put_unsynced`], asking `room` first when the body is new
    /// (a duplicate takes no space): its error is returned and nothing is
    /// written.
    pub fn put_unsynced_if_room(&self, body: &[u8], room: &dyn Fn() -> io::Result<()>) -> io::Result<Put> {
        self.write(body, false, room)
    }

    fn write(&self, body: &[u8], sync: bool, room: &dyn Fn() -> io::Result<()>) -> io::Result<Put> {
        let digest = digest_hex(body);
        let path = path_of(&self.root, &digest).expect("our own digest is valid");
        // A body seen again is stamped now: the quota removes the bodies
        // seen least recently first, so a campaign still running keeps its
        // body however long ago it first came. A body the quota removed
        // meanwhile is simply written again.
        match File::open(&path).and_then(|f| f.set_modified(SystemTime::now())) {
            Ok(()) => return Ok(Put { digest, duplicate: true, written: 0 }),
            Err(e) if e.kind() != io::ErrorKind::NotFound && path.exists() => {
                return Ok(Put { digest, duplicate: true, written: 0 })
            }
            Err(_) => {}
        }
        room()?;
        let compressed = zstd::bulk::compress(body, LEVEL)?;
        let tmp = self.root.join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        {
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&compressed)?;
            if sync {
                f.sync_data()?;
            }
        }
        let dir = path.parent().expect("fan-out directory");
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        fs::rename(&tmp, &path)?;
        if sync {
            sync_dir(dir)?;
        }
        Ok(Put { digest, duplicate: false, written: compressed.len() as u64 })
    }

    /// The body named by `digest`, decompressed and checked against it.
    pub fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let path = path_of(&self.root, digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a SHA-256 hex digest"))?;
        let body = zstd::stream::decode_all(File::open(path)?)?;
        if digest_hex(&body) != digest {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "stored body does not match its digest"));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bodies::open(&dir.path().join("bodies")).unwrap();
        let body = b"Subject: buy now\r\n\r\n".repeat(100);
        let first = b.put(&body).unwrap();
        assert!(!first.duplicate && first.written > 0 && first.written < body.len() as u64);
        let second = b.put(&body).unwrap();
        assert_eq!(second, Put { digest: first.digest.clone(), duplicate: true, written: 0 });
        assert_eq!(b.get(&first.digest).unwrap(), body);
        let p = path_of(b.root(), &first.digest).unwrap();
        assert!(p.starts_with(
            dir.path().join("bodies").join(first.digest.get(..2).unwrap()).join(first.digest.get(2..4).unwrap())
        ));
        assert_eq!(first.digest, digest_hex(&body));
        assert!(path_of(b.root(), "../../etc/passwd").is_none());
        assert!(path_of(b.root(), &"A".repeat(64)).is_none());
    }
}
