//! The durable spool with group commit.
//!
//! Sessions hand a message to [`Spool::commit`] and wait. One committer
//! thread takes every message waiting at that moment, writes them as one
//! batch file in `tmp/`, fsyncs it, renames it into `batches/` and fsyncs
//! that directory; only then are all those sessions told "stored" and only
//! then do they answer 250. While one batch is being fsynced the next one
//! fills, so under load many messages share each pair of fsyncs instead of
//! paying two each (the classic write-temp/fsync/rename, per batch).
//!
//! Delivery progress is kept in a `.done` file next to each batch (one line
//! "message recipient" per finished recipient, fdatasynced); a batch whose
//! recipients are all done is deleted. After a crash, [`Spool::open`] lists
//! the batches and hands back what is left: nothing that got a 250 is lost,
//! and a rename either happened whole or not at all, so nothing is
//! half-written. Leftovers in `tmp/` never got a 250 and are removed.
//!
//! What the delivery loops are told of a batch, at commit and at recovery,
//! is its name ([`BatchRef`]), never its contents: they read it with
//! [`Spool::load`] when they deliver it and drop it after, so the memory a
//! backlog takes does not grow with the backlog (a deferred batch waiting
//! for its retry holds none). Recovery reads only each record's envelope
//! (arrival time, recipient count) for the [`Gauges`], not the messages.

use crate::gauges::Gauges;
use crate::record::{self, SpooledMessage};
use crate::scan::{self, Damaged, Scan};
pub use crate::scan::{batch_name, done_name};
use port25_events as ev;
use port25_events::emit;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Upper bound on messages in one batch, so one fsync never waits on an
/// unbounded amount of writing.
const MAX_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool committer has stopped")]
    Stopped,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

/// A batch on disk with recipients still to deliver, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRef {
    pub seq: u64,
    /// Found at start-up (or tried before): a delivery may already have
    /// happened, so deliverers check for an earlier copy (exactly once).
    pub recovered: bool,
}

/// A batch read from disk by [`Spool::load`], for one delivery attempt.
#[derive(Debug)]
pub struct PendingBatch {
    pub seq: u64,
    pub messages: Vec<Arc<SpooledMessage>>,
    /// (message index, recipient index) already done.
    pub done: BTreeSet<(usize, usize)>,
    /// As [`BatchRef::recovered`].
    pub recovered: bool,
}

struct Job {
    message: SpooledMessage,
    reply: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct Spool {
    dir: Arc<PathBuf>,
    jobs: mpsc::Sender<Job>,
    gauges: Gauges,
}

impl Spool {
    /// Opens (creating) the spool at `dir`, lists what is pending, and
    /// starts the committer. New batches are announced on `ready`;
    /// `gauges` follows what the spool holds from now on.
    pub fn open(
        dir: &Path,
        ready: tokio::sync::mpsc::UnboundedSender<BatchRef>,
        gauges: Gauges,
    ) -> Result<(Spool, Vec<BatchRef>), SpoolError> {
        let batches = dir.join("batches");
        let tmp = dir.join("tmp");
        let quarantine = dir.join("quarantine");
        // Mail: only port25's user may read it, whatever the umask (0700
        // directories, 0600 files), also where an older version made them.
        for d in [&batches, &tmp, &quarantine] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(d).map_err(io_err(d))?;
        }
        for d in [dir, &batches, &tmp, &quarantine] {
            if fs::metadata(d).map_err(io_err(d))?.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io_err(d))?;
            }
        }
        // Whatever is in tmp/ was never acknowledged.
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let path = entry.map_err(io_err(&tmp))?.path();
            let _ = fs::remove_file(&path);
        }
        let (pending, max_seq) = recover(&Scan::new(dir), &quarantine, &gauges)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let committer = Committer { batches, tmp, next_seq: max_seq + 1, ready, gauges: gauges.clone() };
        std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || committer.run(rx))
            .map_err(io_err(dir))?;
        Ok((Spool { dir: Arc::new(dir.to_owned()), jobs, gauges }, pending))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn gauges(&self) -> &Gauges {
        &self.gauges
    }

    /// Reads a batch and its done log for one delivery attempt; blocking
    /// (run it on a blocking thread). `Ok(None)`: the batch is gone (all
    /// done) or damaged, and then quarantined as at start-up.
    pub fn load(&self, batch: BatchRef) -> Result<Option<PendingBatch>, SpoolError> {
        let scan = Scan::new(&self.dir);
        let path = scan.batch_path(batch.seq);
        match scan.read(batch.seq).map_err(io_err(&path))? {
            scan::Batch::Gone => Ok(None),
            scan::Batch::Read { messages, done } => Ok(Some(PendingBatch {
                seq: batch.seq,
                messages: messages.into_iter().map(Arc::new).collect(),
                done,
                recovered: batch.recovered,
            })),
            scan::Batch::Damaged(e) => {
                quarantine(&path, &self.dir.join("quarantine"), batch.seq, &e.to_string());
                self.gauges.quarantine(batch.seq);
                Ok(None)
            }
        }
    }

    /// Stores the message durably; returns once it is fsynced.
    pub async fn commit(&self, message: SpooledMessage) -> Result<(), SpoolError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job { message, reply }).map_err(|_| SpoolError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SpoolError::Io { path: self.dir.to_path_buf(), source: io::Error::other(e) }),
            Err(_) => Err(SpoolError::Stopped),
        }
    }
}

struct Committer {
    batches: PathBuf,
    tmp: PathBuf,
    next_seq: u64,
    ready: tokio::sync::mpsc::UnboundedSender<BatchRef>,
    gauges: Gauges,
}

impl Committer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        for jobs in port25_groupcommit::groups(&rx, MAX_BATCH) {
            let seq = self.next_seq;
            self.next_seq += 1;
            match self.write(seq, jobs.iter().map(|j| &j.message)) {
                Ok(bytes) => {
                    let counts = jobs.iter().map(|j| (j.message.received_at, j.message.rcpts.len() as u32)).collect();
                    // Counted before announced: a delivery that finishes
                    // the batch at once removes what is already there.
                    self.gauges.add(seq, bytes, counts);
                    // Announce before answering: once a session has its 250
                    // and ends, a shutdown must still find this batch queued
                    // for delivery. The contents are dropped here; delivery
                    // reads them from disk (most likely the page cache).
                    let _ = self.ready.send(BatchRef { seq, recovered: false });
                    for job in jobs {
                        let _ = job.reply.send(Ok(()));
                    }
                }
                Err(e) => {
                    emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e);
                    for job in jobs {
                        let _ = job.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// Writes the batch straight from the messages' buffers (a buffered
    /// writer for the small record heads; contents larger than its buffer
    /// go to the file directly).
    fn write<'a>(&self, seq: u64, messages: impl IntoIterator<Item = &'a SpooledMessage>) -> io::Result<u64> {
        let name = batch_name(seq);
        let tmp = self.tmp.join(&name);
        let result = (|| {
            let file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            let mut f = io::BufWriter::with_capacity(64 * 1024, file);
            record::write_batch(&mut f, messages)?;
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            let len = f.metadata()?.len();
            fs::rename(&tmp, self.batches.join(&name))?;
            sync_dir(&self.batches)?;
            Ok(len)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn recover(scan: &Scan, quarantine_dir: &Path, gauges: &Gauges) -> Result<(Vec<BatchRef>, u64), SpoolError> {
    let listing = scan.list().map_err(io_err(scan.dir()))?;
    // A done file whose batch is gone: the batch finished and was deleted
    // just before the crash.
    for seq in listing.done {
        if !scan.batch_path(seq).exists() {
            let _ = fs::remove_file(scan.done_path(seq));
        }
    }
    gauges.set_quarantined(fs::read_dir(quarantine_dir).map(|d| d.count()).unwrap_or(0));
    let mut pending = Vec::new();
    for seq in listing.batches {
        match scan.envelopes(seq) {
            Ok((bytes, messages)) => {
                let done = scan.done(seq);
                let counts = messages
                    .iter()
                    .enumerate()
                    .map(|(m, e)| (e.received_at, (0..e.rcpts).filter(|r| !done.contains(&(m, *r))).count() as u32))
                    .collect();
                gauges.add(seq, bytes, counts);
                emit!(info, ev::SPOOL_RECOVERED, batch = seq, messages = messages.len(), done = done.len());
                pending.push(BatchRef { seq, recovered: true });
            }
            Err(Damaged::Io(e)) => return Err(SpoolError::Io { path: scan.batch_path(seq), source: e }),
            Err(Damaged::Format(what)) => {
                quarantine(&scan.batch_path(seq), quarantine_dir, seq, what);
                gauges.quarantine(seq);
            }
        }
    }
    Ok((pending, listing.max_seq))
}

fn quarantine(path: &Path, quarantine_dir: &Path, seq: u64, error: &str) {
    emit!(error, ev::SPOOL_QUARANTINED, batch = seq, error = %error, path = %path.display());
    let _ = fs::rename(path, quarantine_dir.join(batch_name(seq)));
}

/// Records finished recipients of a batch and removes the batch when all
/// are finished. Used by the delivery loop; one per batch, never shared.
pub struct DoneLog {
    batches: PathBuf,
    seq: u64,
    file: Option<File>,
    gauges: Gauges,
}

impl DoneLog {
    pub fn new(spool: &Spool, seq: u64) -> DoneLog {
        DoneLog { batches: spool.dir.join("batches"), seq, file: None, gauges: spool.gauges.clone() }
    }

    /// Appends and fdatasyncs; call only after the delivery itself is durable.
    pub fn record(&mut self, finished: &[(usize, usize)]) -> io::Result<()> {
        if finished.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let path = self.batches.join(done_name(self.seq));
            let f = OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
            sync_dir(&self.batches)?;
            self.file = Some(f);
        }
        let mut text = String::new();
        for (m, r) in finished {
            text.push_str(&format!("{m} {r}\n"));
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        self.gauges.finished(self.seq, finished);
        Ok(())
    }

    /// Deletes the batch (first) and its done file. A crash in between
    /// leaves a done file without batch, which recovery removes. When
    /// nothing was recorded (the whole batch finished at the first attempt,
    /// the common case, see the delivery loop) the removal is fsynced
    /// instead: it is then the only record that the batch was delivered.
    /// Otherwise it is not: a batch that comes back after a crash comes
    /// back with its durable done file, so nothing is delivered twice, and
    /// the next commit's directory fsync persists the removal anyway.
    pub fn finish(self) -> io::Result<()> {
        fs::remove_file(self.batches.join(batch_name(self.seq)))?;
        self.gauges.remove(self.seq);
        // (A recovered batch may have a done file from before the crash.)
        let _ = fs::remove_file(self.batches.join(done_name(self.seq)));
        if self.file.is_none() {
            return sync_dir(&self.batches);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> SpooledMessage {
        SpooledMessage {
            id: format!("M{i}"),
            received_at: 1,
            peer: "p".into(),
            helo: "h".into(),
            from: "f@x.example".into(),
            rcpts: vec!["a@x.example".into(), "b@x.example".into()],
            content: vec![b'x'; 100],
            from_mx: false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_batches_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (spool, pending) = Spool::open(dir.path(), tx, Gauges::default()).unwrap();
        assert!(pending.is_empty());
        // Two waves, so there are at least two batches however fast the disk.
        for wave in 0..2 {
            let tasks: Vec<_> = (wave * 100..wave * 100 + 100)
                .map(|i| {
                    let s = spool.clone();
                    tokio::spawn(async move { s.commit(msg(i)).await.unwrap() })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
        let mut announced = Vec::new();
        while let Ok(b) = rx.try_recv() {
            assert!(!b.recovered);
            announced.push(spool.load(b).unwrap().unwrap());
        }
        let total: usize = announced.iter().map(|b| b.messages.len()).sum();
        assert_eq!(total, 200);
        assert!(announced.len() < 200, "group commit should batch: {} batches", announced.len());
        let status = spool.gauges().status(1);
        assert_eq!((status.batches, status.messages, status.recipients), (announced.len(), 200, 400));

        // Finish the first batch entirely, half of the second.
        let first = &announced[0];
        let mut log = DoneLog::new(&spool, first.seq);
        let all: Vec<_> = (0..first.messages.len()).flat_map(|m| [(m, 0), (m, 1)]).collect();
        log.record(&all).unwrap();
        log.finish().unwrap();
        let second = &announced[1];
        DoneLog::new(&spool, second.seq).record(&[(0, 0)]).unwrap();
        let status = spool.gauges().status(1);
        assert_eq!(
            (status.batches, status.messages, status.recipients),
            (announced.len() - 1, 200 - first.messages.len(), 399 - 2 * first.messages.len())
        );
        // A torn line from a crash mid-append is ignored.
        OpenOptions::new()
            .append(true)
            .open(dir.path().join("batches").join(done_name(second.seq)))
            .unwrap()
            .write_all(b"0 1")
            .unwrap();

        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let gauges = Gauges::default();
        let (spool, pending) = Spool::open(dir.path(), tx, gauges.clone()).unwrap();
        assert!(pending.iter().all(|b| b.recovered));
        // Recovery counts from the envelopes alone, as the running spool did.
        assert_eq!(gauges.status(1), status);
        let loaded: Vec<_> = pending.iter().map(|b| spool.load(*b).unwrap().unwrap()).collect();
        let left: usize = loaded.iter().map(|b| b.messages.len()).sum();
        assert_eq!(left, 200 - first.messages.len());
        let p2 = loaded.iter().find(|b| b.seq == second.seq).unwrap();
        assert_eq!(p2.done, BTreeSet::from([(0, 0)]));
        assert!(loaded.iter().all(|b| b.recovered));
        // A finished batch is gone: nothing to load.
        assert!(spool.load(BatchRef { seq: first.seq, recovered: true }).unwrap().is_none());
    }

    #[test]
    fn spool_directories_are_0700_even_where_an_older_version_made_them_wider() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        fs::create_dir_all(spool.join("batches")).unwrap();
        for d in [&spool, &spool.join("batches")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = Spool::open(&spool, tx, Gauges::default()).unwrap();
        for d in [&spool, &spool.join("batches"), &spool.join("tmp"), &spool.join("quarantine")] {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn corrupt_batch_is_quarantined_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let batches = dir.path().join("batches");
        fs::create_dir_all(&batches).unwrap();
        let mut bytes = record::encode_batch(&[msg(1)]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(batches.join(batch_name(7)), &bytes).unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp").join(batch_name(8)), b"half").unwrap();
        // Truncated: found by the envelope scan at start-up.
        let good = record::encode_batch(&[msg(1), msg(2)]);
        fs::write(batches.join(batch_name(9)), &good[..good.len() - 3]).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let gauges = Gauges::default();
        let (spool, pending) = Spool::open(dir.path(), tx, gauges.clone()).unwrap();
        // The flipped bit is inside the content: the envelope scan cannot
        // see it, the checksum at load does.
        assert_eq!(pending, vec![BatchRef { seq: 7, recovered: true }]);
        assert_eq!(fs::read(dir.path().join("quarantine").join(batch_name(9))).unwrap(), &good[..good.len() - 3]);
        assert_eq!(gauges.status(0).quarantined, 1);
        assert!(spool.load(pending[0]).unwrap().is_none());
        assert_eq!(fs::read(dir.path().join("quarantine").join(batch_name(7))).unwrap(), bytes);
        assert_eq!(gauges.status(0), crate::QueueStatus { quarantined: 2, ..Default::default() });
        assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
    }
}
