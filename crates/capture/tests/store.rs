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
        let body: Vec<u8> = (0..300u32).map(|j| (i.wrapping_mul(2654435761).wrapping_add(j * 40503) >> 7) as u8).collect();
        let stored = store.store_body(body).await.unwrap();
        let mut e = store.event(port25_events::SPAMPOT_MESSAGE);
        e.digest = Some(stored.digest);
        e.session = format!("{i:08}");
        store.record_durable(&e).await.unwrap();
    }
    let total: u64 = walk(dir.path()).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
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
