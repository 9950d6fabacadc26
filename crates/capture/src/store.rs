//! [`Store`]: the event log, the bodies and the quota behind one handle
//! that sessions share.

use crate::bodies::Bodies;
use crate::event::Event;
use crate::log::Log;
use crate::quota::Quota;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The capture directory: `events/` and `bodies/` are created in it.
    pub root: PathBuf,
    /// This sensor's name, written in every event.
    pub sensor: String,
    /// A segment is closed before it would pass this size.
    pub max_segment_bytes: u64,
    /// Disk quota for segments plus bodies; `None`: unlimited. Whatever it
    /// is, new bodies are refused while the filesystem is below
    /// [`free_floor`].
    pub quota_bytes: Option<u64>,
}

/// The free space the store never writes a new body into: the smaller of
/// 2 % of the filesystem and 1 GiB. A sensor shares its disk with the
/// system; a quota set larger than the disk, or other programs filling it,
/// must not let captures take the last of it.
pub fn free_floor(filesystem_bytes: u64) -> u64 {
    (filesystem_bytes / 50).min(1 << 30)
}

/// (available to unprivileged users, total) bytes of the filesystem
/// holding `path`.
pub fn filesystem_space(path: &std::path::Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))?;
    // SAFETY: statvfs writes into the zeroed struct we own and reads the
    // NUL-terminated path, which outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let unit = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

/// Err(StorageFull) when the filesystem holding `path` is below its floor.
fn room_on(path: &std::path::Path) -> io::Result<()> {
    let (avail, total) = filesystem_space(path)?;
    if avail < free_floor(total) {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{avail} bytes free on the capture filesystem, under the floor of {}: new bodies are refused",
                free_floor(total)
            ),
        ));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Store {
    sensor: Arc<str>,
    /// Written in every event when set ([`Store::with_site`]).
    site: Option<Arc<crate::event::Site>>,
    bodies: Bodies,
    log: Log,
    quota: Option<Arc<Quota>>,
    dirty: crate::log::Dirty,
    /// A live copy of every line for a feed (hpfeeds); never blocks.
    tap: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<Vec<u8>>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub digest: String,
    pub duplicate: bool,
    pub size: u64,
}

impl Store {
    pub fn open(config: &StoreConfig) -> io::Result<Store> {
        let events = config.root.join("events");
        let bodies = Bodies::open(&config.root.join("bodies"))?;
        let quota = config.quota_bytes.map(|q| Arc::new(Quota::new(q, &events, bodies.root(), &config.sensor)));
        let dirty = crate::log::Dirty::default();
        let log = Log::open(&events, config.max_segment_bytes, quota.clone(), dirty.clone())?;
        Ok(Store { sensor: config.sensor.as_str().into(), site: None, bodies, log, quota, dirty, tap: Arc::default() })
    }

    /// The sensor's site, written in every event from now on (none when
    /// `site` is empty).
    pub fn with_site(mut self, site: crate::event::Site) -> Store {
        self.site = (!site.is_empty()).then(|| Arc::new(site));
        self
    }

    pub fn sensor(&self) -> &str {
        &self.sensor
    }

    pub fn bodies(&self) -> &Bodies {
        &self.bodies
    }

    pub fn events_dir(&self) -> &std::path::Path {
        self.log.dir()
    }

    /// A new event of kind `id` from this sensor, stamped now.
    pub fn event(&self, id: &str) -> Event {
        let mut e = Event::new(id, &self.sensor);
        e.site = self.site.as_deref().cloned();
        e
    }

    /// Stores a body (once) on a blocking thread. It is durable as soon as
    /// an event recorded after this returns is ([`Store::record_durable`]:
    /// the log's group commit syncs unsynced bodies first). A new body is
    /// refused (`StorageFull`) while the filesystem is below [`free_floor`].
    pub async fn store_body(&self, body: Vec<u8>) -> io::Result<StoredBody> {
        let bodies = self.bodies.clone();
        let size = body.len() as u64;
        let put = tokio::task::spawn_blocking(move || bodies.put_unsynced_if_room(&body, &|| room_on(bodies.root())))
            .await
            .map_err(io::Error::other)??;
        if !put.duplicate {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
        }
        if let Some(q) = &self.quota {
            q.add(put.written);
        }
        Ok(StoredBody { digest: put.digest, duplicate: put.duplicate, size })
    }

    /// Logs an event and waits until it is on disk.
    pub async fn record_durable(&self, event: &Event) -> io::Result<()> {
        let line = event.to_line();
        self.feed(&line);
        self.log.append_durable(line).await
    }

    /// Logs an event; it reaches the disk with the next durable group.
    pub fn record(&self, event: &Event) {
        let line = event.to_line();
        self.feed(&line);
        self.log.append(line);
    }

    /// A live copy of every line logged from now on (one subscriber). Lines
    /// are dropped, never waited for, when the subscriber falls `capacity`
    /// behind: the log is the record, a feed is best effort.
    pub fn subscribe(&self, capacity: usize) -> Option<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        self.tap.set(tx).ok().map(|()| rx)
    }

    fn feed(&self, line: &[u8]) {
        if let Some(tx) = self.tap.get() {
            let _ = tx.try_send(line.to_vec());
        }
    }
}
