//! The disk quota: when the store (event segments plus bodies) passes its
//! limit, the oldest closed segments go first, then the bodies seen least
//! recently (a body's file time is refreshed each time it is stored again,
//! see [`crate::bodies`]), until
//! usage is back under 90 % of the limit; the rotation is itself logged as a
//! `port25.spampot.quota.rotated` event so the report knows data is missing.
//!
//! Usage is counted in memory (a scan at start, then what is written) so the
//! check per group is one atomic load; only enforcement walks directories.

use crate::event::Event;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub struct Quota {
    limit: u64,
    usage: AtomicU64,
    events: PathBuf,
    bodies: PathBuf,
    sensor: String,
}

fn walk(dir: &Path, out: &mut Vec<(SystemTime, u64, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            walk(&p, out);
        } else {
            out.push((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), p));
        }
    }
}

impl Quota {
    pub fn new(limit: u64, events: &Path, bodies: &Path, sensor: &str) -> Quota {
        let mut files = Vec::new();
        walk(events, &mut files);
        walk(bodies, &mut files);
        let usage = files.iter().map(|f| f.1).sum();
        Quota {
            limit,
            usage: AtomicU64::new(usage),
            events: events.to_owned(),
            bodies: bodies.to_owned(),
            sensor: sensor.to_owned(),
        }
    }

    pub fn usage(&self) -> u64 {
        self.usage.load(Ordering::Relaxed)
    }

    pub fn add(&self, n: u64) {
        self.usage.fetch_add(n, Ordering::Relaxed);
    }

    pub fn over(&self) -> bool {
        self.usage() > self.limit
    }

    /// Frees space, never touching segment `current` (being written).
    /// Returns the event line to log, if anything was removed.
    pub fn enforce(&self, current: u64) -> Option<Vec<u8>> {
        let target = self.limit / 10 * 9;
        let mut files = 0u64;
        let mut freed = 0u64;
        let mut remove = |path: &Path, len: u64, usage: &AtomicU64| -> io::Result<()> {
            fs::remove_file(path)?;
            usage.fetch_sub(len.min(usage.load(Ordering::Relaxed)), Ordering::Relaxed);
            files += 1;
            freed += len;
            Ok(())
        };
        if let Ok(segments) = crate::log::list_segments(&self.events) {
            for (seq, path) in segments {
                if self.usage() <= target || seq >= current {
                    break;
                }
                let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let _ = remove(&path, len, &self.usage);
            }
        }
        if self.usage() > target {
            let mut bodies = Vec::new();
            walk(&self.bodies, &mut bodies);
            // Least recently seen first (the file time is the last sighting).
            bodies.sort();
            for (_, len, path) in bodies {
                if self.usage() <= target {
                    break;
                }
                let _ = remove(&path, len, &self.usage);
            }
        }
        if files == 0 {
            return None;
        }
        port25_events::emit!(
            warn,
            port25_events::SPAMPOT_QUOTA_ROTATED,
            files,
            bytes = freed,
            usage = self.usage(),
            limit = self.limit
        );
        let mut e = Event::new(port25_events::SPAMPOT_QUOTA_ROTATED, &self.sensor);
        e.messages = Some(files);
        e.bytes = Some(freed);
        e.reason = Some(format!("disk quota {} bytes reached; oldest segments and bodies removed", self.limit));
        Some(e.to_line())
    }
}
