//! Clients that passed: not screened again until their entry expires, and
//! remembered across restarts in `data_dir/screen/allowlist` (one line per
//! pass: the address and the expiry in Unix seconds, appended; rewritten
//! without expired or repeated lines at start and when it has grown to
//! twice the live entries).
//!
//! Bounded: at most `max` addresses; when it is full, expired entries are
//! dropped, and if none are, the new pass is not remembered (that client
//! is screened again next time: the safe side). A lost line (the file is
//! appended without fsync) costs the same. A line that does not parse is
//! skipped: the file is ours, but a disk can tear a line.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Allowlist {
    path: Option<PathBuf>,
    max: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    entries: HashMap<IpAddr, u64>,
    file: Option<std::fs::File>,
    lines: usize,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn parse_line(line: &str) -> Option<(IpAddr, u64)> {
    let (ip, until) = line.trim().split_once(' ')?;
    Some((ip.parse::<IpAddr>().ok()?.to_canonical(), until.trim().parse().ok()?))
}

impl Allowlist {
    /// In memory only (`port25 mx explain`, tests).
    pub fn memory(max: usize) -> Allowlist {
        Allowlist { path: None, max, inner: Mutex::new(Inner { entries: HashMap::new(), file: None, lines: 0 }) }
    }

    /// Loads (and compacts) the file at `path`, creating its directory.
    pub fn open(path: &Path, max: usize) -> std::io::Result<Allowlist> {
        if let Some(dir) = path.parent() {
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(dir)?;
        }
        let mut list = Allowlist::read(path, max)?;
        list.path = Some(path.to_owned());
        {
            let mut inner = list.inner.lock().unwrap_or_else(|e| e.into_inner());
            list.rewrite(&mut inner)?;
        }
        Ok(list)
    }

    /// The file's live entries, in memory only: what `port25 mx explain`
    /// reads while the server may be appending to it.
    pub fn read(path: &Path, max: usize) -> std::io::Result<Allowlist> {
        let mut entries = HashMap::new();
        let now = now();
        match std::fs::read(path) {
            Ok(bytes) => {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    if let Some((ip, until)) = parse_line(line) {
                        if until > now && (entries.len() < max || entries.contains_key(&ip)) {
                            entries.insert(ip, until);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Allowlist { path: None, max, inner: Mutex::new(Inner { entries, file: None, lines: 0 }) })
    }

    /// Writes the live entries to a new file and renames it over the old.
    fn rewrite(&self, inner: &mut Inner) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let tmp = path.with_extension("tmp");
        let mut text = String::with_capacity(inner.entries.len() * 24);
        for (ip, until) in &inner.entries {
            text.push_str(&format!("{ip} {until}\n"));
        }
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        inner.file = Some(std::fs::OpenOptions::new().append(true).open(path)?);
        inner.lines = inner.entries.len();
        Ok(())
    }

    /// True while `ip` has an unexpired pass.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.get(&ip).is_some_and(|until| *until > now())
    }

    /// Remembers a pass until `ttl_secs` from now. Errors writing the file
    /// are returned (the entry stays in memory).
    pub fn insert(&self, ip: IpAddr, ttl_secs: u64) -> std::io::Result<()> {
        let ip = ip.to_canonical();
        let now = now();
        let until = now.saturating_add(ttl_secs);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.entries.len() >= self.max && !inner.entries.contains_key(&ip) {
            inner.entries.retain(|_, u| *u > now);
            if inner.entries.len() >= self.max {
                return Ok(());
            }
        }
        inner.entries.insert(ip, until);
        if self.path.is_none() {
            return Ok(());
        }
        if inner.lines >= 1024 && inner.lines >= 2 * inner.entries.len() {
            inner.entries.retain(|_, u| *u > now);
            return self.rewrite(&mut inner);
        }
        inner.lines += 1;
        match inner.file.as_mut() {
            Some(f) => f.write_all(format!("{ip} {until}\n").as_bytes()),
            None => Ok(()),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_survive_a_restart_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("screen/allowlist");
        let a = Allowlist::open(&path, 10).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        a.insert(ip, 3600).unwrap();
        a.insert("::ffff:192.0.2.8".parse().unwrap(), 0).unwrap();
        assert!(a.contains(ip) && a.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!a.contains("192.0.2.8".parse().unwrap()), "expired at once");
        drop(a);
        // A torn line and garbage are skipped.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"192.0.2.9 99999999999\nnot a line\n192.0.2.").unwrap();
        let b = Allowlist::open(&path, 10).unwrap();
        assert!(b.contains(ip) && b.contains("192.0.2.9".parse().unwrap()));
        assert_eq!(b.len(), 2, "the expired entry is gone");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn bounded() {
        let a = Allowlist::memory(3);
        for i in 0..100u32 {
            a.insert(IpAddr::from(i.to_be_bytes()), 3600).unwrap();
        }
        assert_eq!(a.len(), 3);
        assert!(a.contains(IpAddr::from(0u32.to_be_bytes())));
        assert!(!a.contains(IpAddr::from(50u32.to_be_bytes())), "a full list does not take new passes");
    }

    #[test]
    fn the_file_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allowlist");
        let a = Allowlist::open(&path, 10).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3000 {
            a.insert(ip, 3600).unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 1025, "{lines} lines for one address");
    }
}
