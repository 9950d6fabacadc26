//! SpamPots figures for the dashboard and /metrics, read from a capture
//! directory (docs/capture-format.md) that a sensor on this or another
//! machine writes. Read incrementally: each refresh continues every segment
//! from where the last one stopped, so a scrape costs only the new lines.

use port25_capture::bodies::Bodies;
use port25_capture::event::Event;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const RECENT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub time: String,
    pub src_ip: String,
    pub helo: String,
    pub mail_from: String,
    pub rcpts: usize,
    pub digest: String,
}

#[derive(Default)]
pub struct CaptureStats {
    dir: PathBuf,
    offsets: HashMap<PathBuf, u64>,
    pub messages: u64,
    pub connections: u64,
    /// Messages per source address.
    pub sources: HashMap<String, u64>,
    /// Message times (RFC 3339) of the last hour's worth, for the rate.
    times: VecDeque<String>,
    recent: VecDeque<Captured>,
    pub bad_lines: u64,
}

impl CaptureStats {
    pub fn new(dir: &Path) -> CaptureStats {
        CaptureStats { dir: dir.to_owned(), ..CaptureStats::default() }
    }

    /// Reads what was appended since the last call.
    pub fn refresh(&mut self) -> std::io::Result<()> {
        let events = self.dir.join("events");
        if !events.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a capture directory (no events/)", self.dir.display()),
            ));
        }
        for (_, path) in port25_capture::log::list_segments(&events)? {
            let from = self.offsets.get(&path).copied().unwrap_or(0);
            // Only what was appended: segments grow to 64 MiB, scrapes are frequent.
            let mut file = std::fs::File::open(&path)?;
            if file.metadata()?.len() <= from {
                continue;
            }
            file.seek(SeekFrom::Start(from))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let parsed = port25_capture::reader::parse(&bytes, from);
            self.bad_lines += parsed.bad.len() as u64;
            for (_, e) in parsed.events {
                self.add(e);
            }
            // A torn last line is read again once it is complete.
            self.offsets.insert(path, parsed.complete_len);
        }
        Ok(())
    }

    fn add(&mut self, e: Event) {
        match e.event.as_str() {
            port25_events::SPAMPOT_CONNECT => self.connections += 1,
            port25_events::SPAMPOT_MESSAGE => {
                self.messages += 1;
                let src = e.src_ip.clone().unwrap_or_default();
                *self.sources.entry(src.clone()).or_default() += 1;
                self.times.push_back(e.time.clone());
                while self.times.len() > 100_000 {
                    self.times.pop_front();
                }
                if self.recent.len() >= RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(Captured {
                    time: e.time,
                    src_ip: src,
                    helo: e.helo.unwrap_or_default(),
                    mail_from: e.mail_from.unwrap_or_default(),
                    rcpts: e.rcpt_to.len(),
                    digest: e.digest.unwrap_or_default(),
                });
            }
            _ => {}
        }
    }

    /// Messages captured since `since` (an RFC 3339 UTC time: these compare
    /// as strings).
    pub fn messages_since(&self, since: &str) -> usize {
        self.times.iter().filter(|t| t.as_str() >= since).count()
    }

    /// The `n` sources with most messages, most first (ties by address).
    pub fn top_sources(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.sources.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// Recent messages, newest first.
    pub fn recent(&self) -> Vec<Captured> {
        self.recent.iter().rev().cloned().collect()
    }

    /// A stored body's Subject header (unfolded, raw), if readable.
    pub fn subject(&self, digest: &str) -> Option<String> {
        let body = Bodies::open(&self.dir.join("bodies")).ok()?.get(digest).ok()?;
        subject_of(&body)
    }
}

/// `s` without `prefix` (ASCII, any case). Compared as bytes: `s` is
/// whatever a spammer sent, and a byte index inside a UTF-8 character
/// would panic as a `str` slice.
fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// The Subject header of a message, unfolded; pure.
pub fn subject_of(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&message[..message.len().min(64 * 1024)]);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r')).take_while(|l| !l.is_empty()).peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = strip_prefix_ignore_ascii_case(line, "subject:") {
            let mut value = rest.trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(
            subject_of(b"From: a\r\nSubject: <script>x</script>\r\n  more\r\n\r\nSubject: body"),
            Some("<script>x</script> more".into())
        );
        assert_eq!(subject_of(b"From: a\r\n\r\nSubject: in the body"), None);
    }

    #[test]
    fn incremental_reading() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events");
        std::fs::create_dir_all(&events).unwrap();
        let seg = events.join(port25_capture::log::segment_name("20261124", 1));
        let line = |ip: &str| {
            let mut e = Event::new(port25_events::SPAMPOT_MESSAGE, "s1");
            e.src_ip = Some(ip.into());
            e.helo = Some("<b>".into());
            e.to_line()
        };
        let mut bytes = line("192.0.2.1");
        bytes.extend(line("192.0.2.2"));
        bytes.extend(line("192.0.2.2"));
        bytes.extend(b"{\"torn");
        std::fs::write(&seg, &bytes).unwrap();
        let mut s = CaptureStats::new(dir.path());
        s.refresh().unwrap();
        assert_eq!(s.messages, 3);
        assert_eq!(s.top_sources(1), vec![("192.0.2.2".into(), 2)]);
        bytes.truncate(bytes.len() - 6);
        bytes.extend(line("192.0.2.3"));
        std::fs::write(&seg, &bytes).unwrap();
        s.refresh().unwrap();
        assert_eq!(s.messages, 4);
        assert_eq!(s.recent()[0].src_ip, "192.0.2.3");
        assert_eq!(s.sources.len(), 3);
        assert_eq!(s.messages_since("2000-01-01T00:00:00Z"), 4);
    }
}
