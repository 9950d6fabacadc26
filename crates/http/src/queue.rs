//! What is waiting in the spool, read from its directory (batch files and
//! their done logs; see crates/queue) without touching the running
//! committer: a batch appears only whole (renamed after fsync), and a done
//! log only grows, so a read at any moment is consistent enough to count.

use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    pub batches: usize,
    pub messages: usize,
    /// Recipients not delivered yet.
    pub recipients: usize,
    /// Age in seconds of the oldest message with a recipient left.
    pub oldest_age: u64,
    pub bytes: u64,
    pub quarantined: usize,
}

pub fn status(spool: &Path, now: u64) -> std::io::Result<QueueStatus> {
    let mut s = QueueStatus::default();
    let batches = spool.join("batches");
    for entry in std::fs::read_dir(&batches)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(seq) = name.strip_suffix(".batch").and_then(|h| u64::from_str_radix(h, 16).ok()) else { continue };
        // Deleted between the listing and the read: delivered meanwhile.
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(messages) = port25_queue::record::decode_batch(&bytes) else { continue };
        let done_text = std::fs::read_to_string(batches.join(port25_queue::spool::done_name(seq))).unwrap_or_default();
        let done: std::collections::HashSet<&str> = done_text.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(str::trim_end).collect();
        s.batches += 1;
        s.bytes += bytes.len() as u64;
        for (i, m) in messages.iter().enumerate() {
            let left = (0..m.rcpts.len()).filter(|r| !done.contains(format!("{i} {r}").as_str())).count();
            if left > 0 {
                s.messages += 1;
                s.recipients += left;
                s.oldest_age = s.oldest_age.max(now.saturating_sub(m.received_at));
            }
        }
    }
    s.quarantined = std::fs::read_dir(spool.join("quarantine")).map(|d| d.count()).unwrap_or(0);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use port25_queue::record::{encode_batch, SpooledMessage};

    #[test]
    fn counts_what_the_done_logs_leave() {
        let dir = tempfile::tempdir().unwrap();
        let batches = dir.path().join("batches");
        std::fs::create_dir_all(&batches).unwrap();
        let m = |id: &str, at: u64, rcpts: usize| SpooledMessage {
            id: id.into(),
            received_at: at,
            peer: "192.0.2.1".into(),
            helo: "h".into(),
            from: "a@example.net".into(),
            rcpts: (0..rcpts).map(|i| format!("r{i}@example.org")).collect(),
            content: b"x\r\n".to_vec(),
            from_mx: false,
        };
        std::fs::write(batches.join(port25_queue::spool::batch_name(1)), encode_batch([&m("old", 100, 2), &m("new", 900, 1)])).unwrap();
        // Message 0 is finished, message 1 half: a torn last line counts as not done.
        std::fs::write(batches.join(port25_queue::spool::done_name(1)), "0 0\n0 1\n1 0").unwrap();
        let s = super::status(dir.path(), 1000).unwrap();
        assert_eq!((s.batches, s.messages, s.recipients, s.oldest_age, s.quarantined), (1, 1, 1, 100, 0));
        assert!(super::status(&dir.path().join("missing"), 0).is_err());
    }
}
