//! The one reader of a spool's files: which batches a spool holds, a
//! batch's messages or only their envelopes, and its done log.
//!
//! Nothing here changes a file. Recovery ([`crate::Spool::open`]) and
//! delivery ([`crate::Spool::load`]) decide from what a [`Scan`] finds
//! what to quarantine or remove; `port25 queue` reads the outbound spool
//! with it while the server runs, and changes nothing.

use crate::record::{self, DecodeError, SpooledMessage};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub fn batch_name(seq: u64) -> String {
    format!("{seq:016x}.batch")
}

pub fn done_name(seq: u64) -> String {
    format!("{seq:016x}.done")
}

/// A read-only view of the `batches/` directory of the spool at a path.
#[derive(Debug, Clone)]
pub struct Scan {
    batches: PathBuf,
}

/// What [`Scan::list`] found, by sequence number.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Batch files, ascending.
    pub batches: Vec<u64>,
    /// Done logs, in directory order; one whose batch is gone belongs to a
    /// batch that finished just before a crash.
    pub done: Vec<u64>,
    /// The highest sequence number of any batch or done file (0 if none).
    pub max_seq: u64,
}

/// A whole batch as [`Scan::read`] found it.
#[derive(Debug)]
pub enum Batch {
    /// No such batch (all its recipients were done, and it was removed).
    Gone,
    /// The file is not a valid batch (recovery quarantines it).
    Damaged(DecodeError),
    Read {
        messages: Vec<SpooledMessage>,
        /// (message index, recipient index) already done.
        done: BTreeSet<(usize, usize)>,
    },
}

/// Why [`Scan::envelopes`] could not read a batch.
#[derive(Debug)]
pub enum Damaged {
    Io(io::Error),
    Format(&'static str),
}

impl Scan {
    /// The spool at `spool_dir` (the directory [`crate::Spool::open`] takes).
    pub fn new(spool_dir: &Path) -> Scan {
        Scan { batches: spool_dir.join("batches") }
    }

    /// The `batches/` directory.
    pub fn dir(&self) -> &Path {
        &self.batches
    }

    pub fn batch_path(&self, seq: u64) -> PathBuf {
        self.batches.join(batch_name(seq))
    }

    pub fn done_path(&self, seq: u64) -> PathBuf {
        self.batches.join(done_name(seq))
    }

    /// The batch and done files, by the names the spool gives them
    /// (sixteen hex digits and `.batch` or `.done`); other files are
    /// passed over.
    pub fn list(&self) -> io::Result<Listing> {
        let mut out = Listing::default();
        for entry in fs::read_dir(&self.batches)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
            let Ok(seq) = u64::from_str_radix(stem, 16) else {
                continue;
            };
            out.max_seq = out.max_seq.max(seq);
            match ext {
                "batch" => out.batches.push(seq),
                "done" => out.done.push(seq),
                _ => {}
            }
        }
        out.batches.sort_unstable();
        Ok(out)
    }

    /// Reads and verifies a whole batch (every checksum) and its done log.
    pub fn read(&self, seq: u64) -> io::Result<Batch> {
        let bytes = match fs::read(self.batch_path(seq)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Batch::Gone),
            Err(e) => return Err(e),
        };
        Ok(match record::decode_batch(&bytes) {
            Ok(messages) => Batch::Read { messages, done: self.done(seq) },
            Err(e) => Batch::Damaged(e),
        })
    }

    /// Reads "message recipient" lines; a torn last line (crash mid-append)
    /// is ignored, which only means that recipient is tried again.
    pub fn done(&self, seq: u64) -> BTreeSet<(usize, usize)> {
        let Ok(text) = fs::read_to_string(self.done_path(seq)) else {
            return BTreeSet::new();
        };
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .filter_map(|l| {
                let (m, r) = l.trim_end().split_once(' ')?;
                Some((m.parse().ok()?, r.parse().ok()?))
            })
            .collect()
    }

    /// The file size and each record's envelope, reading only the first
    /// bytes of every record and seeking past the message (the checksum is
    /// verified when the batch is [`read`](Scan::read) for delivery).
    pub fn envelopes(&self, seq: u64) -> Result<(u64, Vec<record::Envelope>), Damaged> {
        /// Enough for the fields before the recipients of any real message.
        const PREFIX: usize = 4096;
        let mut f = File::open(self.batch_path(seq)).map_err(Damaged::Io)?;
        let size = f.metadata().map_err(Damaged::Io)?.len();
        let mut magic = [0u8; record::MAGIC.len()];
        f.read_exact(&mut magic).map_err(|_| Damaged::Format("not a port25 batch file (bad magic)"))?;
        if &magic != record::MAGIC {
            return Err(Damaged::Format("not a port25 batch file (bad magic)"));
        }
        let mut pos = magic.len() as u64;
        let mut out = Vec::new();
        let mut prefix = Vec::with_capacity(PREFIX);
        while pos < size {
            let mut head = [0u8; 8];
            f.read_exact(&mut head).map_err(|_| Damaged::Format("a record is truncated"))?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let end = pos + 8 + len as u64;
            if end > size {
                return Err(Damaged::Format("a record is truncated"));
            }
            prefix.clear();
            (&mut f).take(len.min(PREFIX) as u64).read_to_end(&mut prefix).map_err(Damaged::Io)?;
            let envelope = match record::envelope(&prefix, len) {
                Some(e) => Some(e),
                None if len > PREFIX => {
                    // Unusually long fields: the whole payload, this once.
                    f.seek(SeekFrom::Start(pos + 8)).map_err(Damaged::Io)?;
                    prefix.clear();
                    (&mut f).take(len as u64).read_to_end(&mut prefix).map_err(Damaged::Io)?;
                    record::envelope(&prefix, len)
                }
                None => None,
            };
            out.push(envelope.ok_or(Damaged::Format("a record's fields do not fit it"))?);
            pos = end;
            f.seek(SeekFrom::Start(pos)).map_err(Damaged::Io)?;
        }
        Ok((size, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn a_scan_reads_what_recovery_reads_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let batches = dir.path().join("batches");
        fs::create_dir_all(&batches).unwrap();
        let good = record::encode_batch(&[sample(1), sample(2)]);
        fs::write(batches.join(batch_name(0x12)), &good).unwrap();
        fs::write(batches.join(done_name(0x12)), b"0 0\n1 0\n1").unwrap();
        fs::write(batches.join(batch_name(3)), &good[..good.len() - 1]).unwrap();
        fs::write(batches.join(done_name(0x20)), b"0 0\n").unwrap();
        fs::write(batches.join("notes.batch"), &good).unwrap();
        let before: BTreeSet<_> = fs::read_dir(&batches).unwrap().map(|e| e.unwrap().file_name()).collect();

        let scan = Scan::new(dir.path());
        let listing = scan.list().unwrap();
        assert_eq!(listing.batches, vec![3, 0x12]);
        assert_eq!(listing.done.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([0x12, 0x20]));
        assert_eq!(listing.max_seq, 0x20);
        let Batch::Read { messages, done } = scan.read(0x12).unwrap() else { panic!("a good batch") };
        assert_eq!(messages, vec![sample(1), sample(2)]);
        assert_eq!(done, BTreeSet::from([(0, 0), (1, 0)]));
        let (size, envelopes) = scan.envelopes(0x12).unwrap();
        assert_eq!(size, good.len() as u64);
        assert_eq!(
            envelopes.iter().map(|e| (e.received_at, e.rcpts)).collect::<Vec<_>>(),
            messages.iter().map(|m| (m.received_at, m.rcpts.len())).collect::<Vec<_>>()
        );
        assert!(matches!(scan.read(3).unwrap(), Batch::Damaged(DecodeError::Truncated { .. })));
        assert!(matches!(scan.envelopes(3), Err(Damaged::Format(_))));
        assert!(matches!(scan.read(0x20).unwrap(), Batch::Gone));

        let after: BTreeSet<_> = fs::read_dir(&batches).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(before, after, "a scan quarantines and removes nothing");
    }
}
