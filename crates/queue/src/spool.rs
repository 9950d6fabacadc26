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
//! recipients are all done is deleted. After a crash, [`Spool::open`] reads
//! every batch and its done file and hands back what is left: nothing that
//! got a 250 is lost, and a rename either happened whole or not at all, so
//! nothing is half-written. Leftovers in `tmp/` never got a 250 and are
//! removed.

use crate::record::{self, SpooledMessage};
use port25_events as ev;
use port25_events::emit;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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

/// A batch that is on disk and has recipients still to deliver.
#[derive(Debug)]
pub struct PendingBatch {
    pub seq: u64,
    pub messages: Vec<Arc<SpooledMessage>>,
    /// (message index, recipient index) already done.
    pub done: BTreeSet<(usize, usize)>,
    /// Loaded at start-up: a delivery may already have happened before the
    /// crash, so deliverers check for an earlier copy (exactly once).
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
}

impl Spool {
    /// Opens (creating) the spool at `dir`, recovers what is pending, and
    /// starts the committer. New batches are announced on `ready`.
    pub fn open(dir: &Path, ready: tokio::sync::mpsc::UnboundedSender<PendingBatch>) -> Result<(Spool, Vec<PendingBatch>), SpoolError> {
        let batches = dir.join("batches");
        let tmp = dir.join("tmp");
        let quarantine = dir.join("quarantine");
        for d in [&batches, &tmp, &quarantine] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        // Whatever is in tmp/ was never acknowledged.
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let path = entry.map_err(io_err(&tmp))?.path();
            let _ = fs::remove_file(&path);
        }
        let (pending, max_seq) = recover(&batches, &quarantine)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let committer = Committer { batches, tmp, next_seq: max_seq + 1, ready };
        std::thread::Builder::new().name("spool-commit".into()).spawn(move || committer.run(rx)).map_err(io_err(dir))?;
        Ok((Spool { dir: Arc::new(dir.to_owned()), jobs }, pending))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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
    ready: tokio::sync::mpsc::UnboundedSender<PendingBatch>,
}

impl Committer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let bytes = record::encode_batch(jobs.iter().map(|j| &j.message));
            match self.write(seq, &bytes) {
                Ok(()) => {
                    let (messages, replies): (Vec<_>, Vec<_>) = jobs.into_iter().map(|j| (Arc::new(j.message), j.reply)).unzip();
                    // Announce before answering: once a session has its 250
                    // and ends, a shutdown must still find this batch queued
                    // for delivery.
                    let _ = self.ready.send(PendingBatch { seq, messages, done: BTreeSet::new(), recovered: false });
                    for reply in replies {
                        let _ = reply.send(Ok(()));
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

    fn write(&self, seq: u64, bytes: &[u8]) -> io::Result<()> {
        let name = batch_name(seq);
        let tmp = self.tmp.join(&name);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.batches.join(&name))?;
            sync_dir(&self.batches)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

pub fn batch_name(seq: u64) -> String {
    format!("{seq:016x}.batch")
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn recover(batches: &Path, quarantine: &Path) -> Result<(Vec<PendingBatch>, u64), SpoolError> {
    let mut seqs = Vec::new();
    let mut max_seq = 0;
    for entry in fs::read_dir(batches).map_err(io_err(batches))? {
        let path = entry.map_err(io_err(batches))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
        let Ok(seq) = u64::from_str_radix(stem, 16) else {
            continue;
        };
        max_seq = max_seq.max(seq);
        match ext {
            "batch" => seqs.push(seq),
            // A done file whose batch is gone: the batch finished and was
            // deleted just before the crash.
            "done" if !batches.join(batch_name(seq)).exists() => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
    seqs.sort_unstable();
    let mut pending = Vec::new();
    for seq in seqs {
        let path = batches.join(batch_name(seq));
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        match record::decode_batch(&bytes) {
            Ok(messages) => {
                let done = read_done(&batches.join(done_name(seq)));
                let batch = PendingBatch { seq, messages: messages.into_iter().map(Arc::new).collect(), done, recovered: true };
                emit!(info, ev::SPOOL_RECOVERED, batch = seq, messages = batch.messages.len(), done = batch.done.len());
                pending.push(batch);
            }
            Err(e) => {
                emit!(error, ev::SPOOL_QUARANTINED, batch = seq, error = %e, path = %path.display());
                let _ = fs::rename(&path, quarantine.join(batch_name(seq)));
            }
        }
    }
    Ok((pending, max_seq))
}

pub fn done_name(seq: u64) -> String {
    format!("{seq:016x}.done")
}

/// Reads "message recipient" lines; a torn last line (crash mid-append) is
/// ignored, which only means that recipient is tried again.
fn read_done(path: &Path) -> BTreeSet<(usize, usize)> {
    let Ok(text) = fs::read_to_string(path) else {
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

/// Records finished recipients of a batch and removes the batch when all
/// are finished. Used by the delivery loop; one per batch, never shared.
pub struct DoneLog {
    batches: PathBuf,
    seq: u64,
    file: Option<File>,
}

impl DoneLog {
    pub fn new(spool: &Spool, seq: u64) -> DoneLog {
        DoneLog { batches: spool.dir.join("batches"), seq, file: None }
    }

    /// Appends and fdatasyncs; call only after the delivery itself is durable.
    pub fn record(&mut self, finished: &[(usize, usize)]) -> io::Result<()> {
        if finished.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let path = self.batches.join(done_name(self.seq));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            sync_dir(&self.batches)?;
            self.file = Some(f);
        }
        let mut text = String::new();
        for (m, r) in finished {
            text.push_str(&format!("{m} {r}\n"));
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(text.as_bytes())?;
        f.sync_data()
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
        let (spool, pending) = Spool::open(dir.path(), tx).unwrap();
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
            announced.push(b);
        }
        let total: usize = announced.iter().map(|b| b.messages.len()).sum();
        assert_eq!(total, 200);
        assert!(announced.len() < 200, "group commit should batch: {} batches", announced.len());

        // Finish the first batch entirely, half of the second.
        let first = &announced[0];
        let mut log = DoneLog::new(&spool, first.seq);
        let all: Vec<_> = (0..first.messages.len()).flat_map(|m| [(m, 0), (m, 1)]).collect();
        log.record(&all).unwrap();
        log.finish().unwrap();
        let second = &announced[1];
        DoneLog::new(&spool, second.seq).record(&[(0, 0)]).unwrap();
        // A torn line from a crash mid-append is ignored.
        OpenOptions::new().append(true).open(dir.path().join("batches").join(done_name(second.seq))).unwrap().write_all(b"0 1").unwrap();

        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (_spool, pending) = Spool::open(dir.path(), tx).unwrap();
        let left: usize = pending.iter().map(|b| b.messages.len()).sum();
        assert_eq!(left, 200 - first.messages.len());
        let p2 = pending.iter().find(|b| b.seq == second.seq).unwrap();
        assert_eq!(p2.done, BTreeSet::from([(0, 0)]));
        assert!(pending.iter().all(|b| b.recovered));
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
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (_spool, pending) = Spool::open(dir.path(), tx).unwrap();
        assert!(pending.is_empty());
        assert_eq!(fs::read(dir.path().join("quarantine").join(batch_name(7))).unwrap(), bytes);
        assert!(fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none());
    }
}
