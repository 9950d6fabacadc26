//! The event log: JSON lines appended to segments by one writer thread.
//!
//! Segments are `events/events-YYYYMMDD-NNNNNN.jsonl`: the UTC day, then a
//! sequence number that only grows (across days and restarts), so sorting
//! by sequence is sorting by time and a shipper can name a position as
//! (segment, byte offset). A new segment starts when the day changes or
//! when the next line would pass the size limit: a line is never split.
//!
//! One thread owns the file and commits in groups: it takes every line
//! queued while it was busy, writes them with one `write`, and calls
//! `fdatasync` once if any of them asked to be durable. Sessions that
//! answer 250 wait for that (a message is on disk before the client hears
//! it was accepted); other events are written at once and synced with the
//! next durable group or rotation.
//!
//! On start the writer truncates a torn last line of the newest segment (a
//! crash during a write; that event was never acknowledged) and opens a new
//! segment, so every segment holds whole lines only.

use crate::quota::Quota;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::oneshot;

pub fn segment_name(day: &str, seq: u64) -> String {
    format!("events-{day}-{seq:06}.jsonl")
}

/// (day, sequence) of a segment file name.
pub fn parse_segment_name(name: &str) -> Option<(String, u64)> {
    let rest = name.strip_prefix("events-")?.strip_suffix(".jsonl")?;
    let (day, seq) = rest.split_once('-')?;
    if day.len() != 8
        || !day.bytes().all(|b| b.is_ascii_digit())
        || seq.is_empty()
        || !seq.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((day.to_owned(), seq.parse().ok()?))
}

/// Segments in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Some((_, seq)) = e.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

struct Writer {
    dir: PathBuf,
    max_segment: u64,
    file: File,
    day: String,
    seq: u64,
    size: u64,
}

impl Writer {
    fn open(dir: &Path, max_segment: u64) -> io::Result<Writer> {
        // What spammers sent, with their victims' addresses: 0700/0600.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let segments = list_segments(dir)?;
        let mut seq = 1;
        if let Some((last, path)) = segments.last() {
            let parsed = crate::reader::read_file(path)?;
            if parsed.torn.is_some() {
                let f = OpenOptions::new().write(true).open(path)?;
                f.set_len(parsed.complete_len)?;
                f.sync_all()?;
            }
            seq = last + 1;
        }
        let day = port25_time::day(SystemTime::now());
        let file = Self::create(dir, &day, seq)?;
        Ok(Writer { dir: dir.to_owned(), max_segment, file, day, seq, size: 0 })
    }

    fn create(dir: &Path, day: &str, seq: u64) -> io::Result<File> {
        let file =
            OpenOptions::new().create_new(true).append(true).mode(0o600).open(dir.join(segment_name(day, seq)))?;
        File::open(dir)?.sync_all()?;
        Ok(file)
    }

    /// Starts the next segment if `len` more bytes do not belong in this one.
    fn rotate_for(&mut self, len: u64) -> io::Result<()> {
        let today = port25_time::day(SystemTime::now());
        if today != self.day || (self.size > 0 && self.size + len > self.max_segment) {
            self.file.sync_data()?;
            self.seq += 1;
            self.file = Self::create(&self.dir, &today, self.seq)?;
            self.day = today;
            self.size = 0;
        }
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }
}

type Ack = oneshot::Sender<io::Result<()>>;

struct Request {
    line: Vec<u8>,
    /// Present when the caller waits for the line to be synced.
    ack: Option<Ack>,
}

/// Set when bodies were written unsynced; the next durable group then
/// syncs the whole filesystem (`syncfs`) before the log itself, so a
/// message event never reaches the disk before its body.
pub type Dirty = Arc<std::sync::atomic::AtomicBool>;

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Log {
    tx: mpsc::Sender<Request>,
    dir: PathBuf,
}

impl Log {
    pub fn open(dir: &Path, max_segment: u64, quota: Option<Arc<Quota>>, dirty: Dirty) -> io::Result<Log> {
        let writer = Writer::open(dir, max_segment)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("capture-log".into()).spawn(move || writer_loop(writer, rx, quota, dirty))?;
        Ok(Log { tx, dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a line and waits until it is on disk (fdatasync).
    pub async fn append_durable(&self, line: Vec<u8>) -> io::Result<()> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Request { line, ack: Some(ack) }).map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }

    /// Appends a line without waiting; it is synced with the next durable
    /// group. Write errors are logged by the writer.
    pub fn append(&self, line: Vec<u8>) {
        let _ = self.tx.send(Request { line, ack: None });
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "capture log writer stopped")
}

/// Lines per group: bounds one write and the latency of the first waiter.
const MAX_GROUP: usize = 1024;

fn writer_loop(mut w: Writer, rx: mpsc::Receiver<Request>, quota: Option<Arc<Quota>>, dirty: Dirty) {
    let mut buf: Vec<u8> = Vec::new();
    for mut group in port25_groupcommit::groups(&rx, MAX_GROUP) {
        let result = sync_bodies(&w, &group, &dirty).and_then(|()| write_group(&mut w, &group, &mut buf));
        if let Err(e) = &result {
            port25_events::emit!(error, port25_events::SPAMPOT_STORE_FAILED, what = "event log", error = %e);
        }
        let written: u64 = group.iter().map(|r| r.line.len() as u64).sum();
        for r in group.drain(..) {
            if let Some(ack) = r.ack {
                let _ = ack.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
        if let Some(q) = &quota {
            q.add(written);
            if q.over() {
                let line = q.enforce(w.seq);
                if let Some(line) = line {
                    let _ = write_group(&mut w, &[Request { line, ack: None }], &mut buf);
                }
            }
        }
        if buf.capacity() > 1 << 20 {
            buf = Vec::new();
        }
    }
    let _ = w.file.sync_data();
}

/// Makes bodies written unsynced durable before a durable group's lines
/// are written (they name those bodies).
fn sync_bodies(w: &Writer, group: &[Request], dirty: &Dirty) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if group.iter().any(|r| r.ack.is_some()) && dirty.swap(false, std::sync::atomic::Ordering::AcqRel) {
        // SAFETY: syncfs only reads the descriptor, which `w.file` keeps open.
        if unsafe { libc::syncfs(w.file.as_raw_fd()) } != 0 {
            dirty.store(true, std::sync::atomic::Ordering::Release);
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes a group, rotating between lines when one would not fit, then
/// syncs once if anyone waits.
fn write_group(w: &mut Writer, group: &[Request], buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    for r in group {
        let pending = buf.len() as u64;
        if w.size + pending + r.line.len() as u64 > w.max_segment && w.size + pending > 0 {
            if !buf.is_empty() {
                w.write(buf)?;
                buf.clear();
            }
            w.rotate_for(r.line.len() as u64)?;
        } else if pending == 0 {
            w.rotate_for(r.line.len() as u64)?;
        }
        buf.extend_from_slice(&r.line);
    }
    if !buf.is_empty() {
        w.write(buf)?;
    }
    if group.iter().any(|r| r.ack.is_some()) {
        w.file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn names() {
        assert_eq!(segment_name("20261123", 7), "events-20261123-000007.jsonl");
        assert_eq!(parse_segment_name("events-20261123-000007.jsonl"), Some(("20261123".into(), 7)));
        assert_eq!(parse_segment_name("events-2026112-000007.jsonl"), None);
        assert_eq!(parse_segment_name("events-20261123-.jsonl"), None);
    }

    #[tokio::test]
    async fn rotates_by_size_without_splitting_and_repairs_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events");
        let log = Log::open(&events, 600, None, Dirty::default()).unwrap();
        let mut sent = Vec::new();
        for i in 0..20 {
            let mut e = Event::new("port25.spampot.message", "s1");
            e.session = format!("session-{i}");
            sent.push(e.clone());
            log.append_durable(e.to_line()).await.unwrap();
        }
        let segments = list_segments(&events).unwrap();
        assert!(segments.len() > 2, "{segments:?}");
        let mut read = Vec::new();
        for (_, p) in &segments {
            let parsed = crate::reader::read_file(p).unwrap();
            assert!(parsed.torn.is_none() && parsed.bad.is_empty());
            assert!(std::fs::metadata(p).unwrap().len() <= 600);
            read.extend(parsed.events.into_iter().map(|(_, e)| e));
        }
        assert_eq!(read, sent);
        drop(log);
        // A crash in the middle of a line: the next start cuts it off.
        let (_, last) = segments.last().unwrap();
        let mut f = OpenOptions::new().append(true).open(last).unwrap();
        f.write_all(b"{\"v\":1,\"event\":\"port25.spam").unwrap();
        drop(f);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let log = Log::open(&events, 600, None, Dirty::default()).unwrap();
        log.append_durable(Event::new("port25.spampot.connect", "s1").to_line()).await.unwrap();
        let parsed = crate::reader::read_file(last).unwrap();
        assert!(parsed.torn.is_none());
        let after = list_segments(&events).unwrap();
        assert_eq!(after.len(), segments.len() + 1);
    }
}
