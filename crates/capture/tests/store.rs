//! The store as the sensor uses it: bodies once, events durable, quota.

use port25_capture::{log::list_segments, reader, Store, StoreConfig};

fn config(dir: &std::path::Path, quota: Option<u64>) -> StoreConfig {
    StoreConfig { root: dir.to_owned(), sensor: "test-sensor".into(), max_segment_bytes: 4096, quota_bytes: quota }
}

#[tokio::test]
async fn identical_bodies_are_stored_once_and_events_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), None)).unwrap();
    let body = b"Subject: campaign\r\n\r\nbuy\r\n".to_vec();
    let a = store.store_body(body.clone()).await.unwrap();
    let b = store.store_body(body.clone()).await.unwrap();
    assert!(!a.duplicate && b.duplicate && a.digest == b.digest && a.size == body.len() as u64);
    let mut e = store.event(port25_events::SPAMPOT_MESSAGE);
    e.digest = Some(a.digest.clone());
    e.size = Some(a.size);
    store.record_durable(&e).await.unwrap();
    let segs = list_segments(store.events_dir()).unwrap();
    let parsed = reader::read_file(&segs[0].1).unwrap();
    assert_eq!(parsed.events.len(), 1);
    let got = &parsed.events[0].1;
    assert_eq!(got.sensor, "test-sensor");
    assert_eq!(store.bodies().get(got.digest.as_ref().unwrap()).unwrap(), body);
    let mut files = 0;
    for d in walk(&dir.path().join("bodies")) {
        if d.extension().is_some_and(|e| e == "zst") {
            files += 1;
        }
    }
    assert_eq!(files, 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn quota_removes_oldest_first_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Some(40_000))).unwrap();
    for i in 0..200u32 {
        // Incompressible-ish distinct bodies so they count.
        let body: Vec<u8> =
            (0..300u32).map(|j| (i.wrapping_mul(2654435761).wrapping_add(j * 40503) >> 7) as u8).collect();
        let stored = store.store_body(body).await.unwrap();
        let mut e = store.event(port25_events::SPAMPOT_MESSAGE);
        e.digest = Some(stored.digest);
        e.session = format!("{i:08}");
        store.record_durable(&e).await.unwrap();
    }
    // The writer may still be removing files after the last acknowledgement.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let total: u64 = walk(dir.path()).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    assert!(total <= 40_000 + 8192, "usage {total}");
    let segs = list_segments(store.events_dir()).unwrap();
    assert!(segs[0].0 > 1, "the oldest segment was removed");
    let mut rotated = 0;
    let mut sessions = Vec::new();
    for (_, p) in &segs {
        for (_, e) in reader::read_file(p).unwrap().events {
            if e.event == port25_events::SPAMPOT_QUOTA_ROTATED {
                rotated += 1;
                assert!(e.bytes.unwrap() > 0);
            } else {
                sessions.push(e.session);
            }
        }
    }
    assert!(rotated >= 1);
    assert_eq!(sessions.last().unwrap(), "00000199", "the newest events survive");
}

/// `n` bytes that zstd cannot shrink.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn quota_evicts_the_body_seen_least_recently_not_the_one_written_first() {
    let dir = tempfile::tempdir().unwrap();
    // Three 10 kB bodies fit; a fourth passes the limit and the quota frees
    // down to 90 % of it: exactly one body goes.
    let store = Store::open(&config(dir.path(), Some(36_000))).unwrap();
    let [a, b, c, d] = [1, 2, 3, 4].map(|i| noise(i, 10_000));
    let mut digests = Vec::new();
    for body in [&a, &b, &c, &a] {
        // Distinct file times whatever the clock's granularity.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let stored = store.store_body(body.clone()).await.unwrap();
        let mut e = store.event(port25_events::SPAMPOT_MESSAGE);
        e.digest = Some(stored.digest.clone());
        store.record_durable(&e).await.unwrap();
        digests.push(stored.digest);
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    let stored = store.store_body(d.clone()).await.unwrap();
    let mut e = store.event(port25_events::SPAMPOT_MESSAGE);
    e.digest = Some(stored.digest.clone());
    store.record_durable(&e).await.unwrap();
    // The writer may still be removing files after the acknowledgement.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let bodies = store.bodies();
    assert!(bodies.get(&digests[1]).is_err(), "B, last seen before A's second sighting, goes first");
    assert_eq!(bodies.get(&digests[0]).unwrap(), a, "A, first written but seen again, stays");
    assert_eq!(bodies.get(&digests[2]).unwrap(), c);
    assert_eq!(bodies.get(&stored.digest).unwrap(), d);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (./test.sh runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn new_bodies_are_refused_below_the_free_space_floor_whatever_the_quota() {
    let fs = Tmpfs::mount("4m");
    let root = fs.0.path().join("capture");
    // No quota at all: only the floor stands between captures and a full disk.
    let store = Store::open(&config(&root, None)).unwrap();
    let early = store.store_body(noise(7, 2000)).await.unwrap();
    let (avail, total) = port25_capture::filesystem_space(&root).unwrap();
    assert_eq!(port25_capture::free_floor(total), total / 50);
    // Something else fills the disk to 40 KiB above nothing.
    let filler = fs.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; (avail - 40 * 1024) as usize]).unwrap();
    let e = store.store_body(noise(8, 2000)).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
    let again = store.store_body(noise(7, 2000)).await.unwrap();
    assert!(again.duplicate && again.digest == early.digest, "a duplicate takes no space and is still captured");
    std::fs::remove_file(&filler).unwrap();
    assert!(!store.store_body(noise(8, 2000)).await.unwrap().duplicate, "with room again, new bodies are stored");
}
