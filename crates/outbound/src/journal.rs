//! The queue's writer thread: every record the queue makes goes through
//! here, so file I/O and fsyncs never run on the async workers.
//!
//! Like the spool's committer it works in rounds: it takes everything
//! waiting, appends state lines (no fsync), history lines (one fdatasync),
//! then done lines per batch (one fdatasync per batch touched), and only
//! then deletes batches that have nothing left. Under load thousands of
//! results share a handful of fsyncs. A recipient is "finished" only once
//! its done line is durable; a crash before that sends it again (at least
//! once), never loses it.

use crate::state::{encode_history, encode_state, parse_history, parse_state, HistoryLine, RcptState};
use port25_events as ev;
use port25_events::emit;
use port25_spool::{DoneLog, Spool};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

pub enum Record {
    /// A batch the queue holds, with how many recipients are still open.
    Register {
        seq: u64,
        open: usize,
    },
    State {
        seq: u64,
        m: usize,
        r: usize,
        state: RcptState,
    },
    Finished {
        seq: u64,
        m: usize,
        r: usize,
        history: HistoryLine,
    },
    /// Answered once everything sent before it is written.
    Sync(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Record>,
}

pub fn state_dir(root: &Path) -> PathBuf {
    root.join("state")
}

pub fn state_file(root: &Path, seq: u64) -> PathBuf {
    state_dir(root).join(format!("{seq:016x}.state"))
}

pub fn history_file(root: &Path) -> PathBuf {
    root.join("history.log")
}

/// The latest state of each open (message, recipient) of a batch; none
/// when the batch has no state file (no attempt deferred yet).
pub fn read_states(root: &Path, seq: u64) -> BTreeMap<(usize, usize), RcptState> {
    parse_state(&fs::read_to_string(state_file(root, seq)).unwrap_or_default())
}

/// Every finished recipient in `history.log`, oldest first.
pub fn read_history(root: &Path) -> Vec<HistoryLine> {
    parse_history(&fs::read_to_string(history_file(root)).unwrap_or_default())
}

impl Journal {
    pub fn start(spool: Spool) -> std::io::Result<Journal> {
        let root = spool.dir().to_owned();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(state_dir(&root))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("outbound-journal".into()).spawn(move || {
            Writer { spool, root, batches: HashMap::new(), states: HashMap::new(), history: None }.run(rx)
        })?;
        Ok(Journal { tx })
    }

    pub fn send(&self, r: Record) {
        // The thread only ends when every sender is gone.
        let _ = self.tx.send(r);
    }

    /// Waits until every earlier record is on disk.
    pub async fn sync(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Record::Sync(tx));
        let _ = rx.await;
    }
}

struct Writer {
    spool: Spool,
    root: PathBuf,
    /// Open batches: their done log and how many recipients remain.
    batches: HashMap<u64, (DoneLog, usize)>,
    states: HashMap<u64, File>,
    history: Option<File>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Record>) {
        for round in port25_groupcommit::groups(&rx, 65536) {
            self.round(round);
        }
    }

    fn round(&mut self, round: Vec<Record>) {
        let mut states: HashMap<u64, String> = HashMap::new();
        let mut history = String::new();
        let mut done: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
        let mut syncs = Vec::new();
        for r in round {
            match r {
                Record::Register { seq, open: 0 } => {
                    // Everything was done before a crash; only the delete was lost.
                    let _ = fs::remove_file(state_file(&self.root, seq));
                    if let Err(e) = DoneLog::new(&self.spool, seq).finish() {
                        emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e);
                    }
                }
                Record::Register { seq, open } => {
                    self.batches.entry(seq).or_insert_with(|| (DoneLog::new(&self.spool, seq), 0)).1 += open;
                }
                Record::State { seq, m, r, state } => {
                    states.entry(seq).or_default().push_str(&encode_state(m, r, &state))
                }
                Record::Finished { seq, m, r, history: h } => {
                    history.push_str(&encode_history(&h));
                    done.entry(seq).or_default().push((m, r));
                }
                Record::Sync(tx) => syncs.push(tx),
            }
        }
        for (seq, text) in states {
            if !self.batches.contains_key(&seq) {
                continue;
            }
            let path = state_file(&self.root, seq);
            let file = match self.states.entry(seq) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    match OpenOptions::new().create(true).append(true).mode(0o600).open(&path) {
                        Ok(f) => v.insert(f),
                        Err(e) => {
                            emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e, path = %path.display());
                            continue;
                        }
                    }
                }
            };
            let _ = file.write_all(text.as_bytes());
        }
        if !history.is_empty() {
            let path = history_file(&self.root);
            if self.history.is_none() {
                self.history = OpenOptions::new().create(true).append(true).mode(0o600).open(&path).ok();
            }
            if let Some(f) = &mut self.history {
                if let Err(e) = f.write_all(history.as_bytes()).and_then(|_| f.sync_data()) {
                    emit!(error, ev::SPOOL_WRITE_FAILED, error = %e, path = %path.display());
                }
            }
        }
        for (seq, list) in done {
            let Some((log, open)) = self.batches.get_mut(&seq) else {
                continue;
            };
            if let Err(e) = log.record(&list) {
                // Not recorded: after a restart these are sent again.
                emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e);
                continue;
            }
            *open = open.saturating_sub(list.len());
            if *open == 0 {
                let (log, _) = self.batches.remove(&seq).expect("present");
                self.states.remove(&seq);
                let _ = fs::remove_file(state_file(&self.root, seq));
                if let Err(e) = log.finish() {
                    emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e);
                }
            }
        }
        for tx in syncs {
            let _ = tx.send(());
        }
    }
}
