//! The local delivery loop: committed batches in, mailboxes out.
//!
//! The spool announces each batch by name; the loop runs one delivery
//! attempt per batch at a time, a few batches at once ([`PARALLEL_BATCHES`]
//! slots). An attempt reads the batch from disk, delivers every recipient
//! left, records the finished ones (delivered, or failed for good) in the
//! batch's done log only after the delivery itself is durable, and ends.
//! A batch with deferred recipients then waits for its retry (growing
//! delays, [`Retry`]) holding no slot and none of its contents, so one
//! mailbox that defers (over quota, a permission error, its LMTP server
//! down) holds back nobody else, and a backlog costs disk, not memory.
//! At shutdown the loop stops starting attempts and lets the running ones
//! end; what is left stays in the spool for next time.
//!
//! A recipient that fails for good (the mailbox server's 5xx), or is still
//! deferred once its message is older than [`Retry::lifetime`], was
//! accepted with a 250 earlier, so its sender must be told (RFC 5321
//! §6.1): the [`Bounce`] hook stores a DSN first, and only then is the
//! recipient finished; if the DSN cannot be stored the recipient is tried
//! again.

use crate::lmtp::Lmtp;
use crate::maildir::Maildir;
use crate::outcome::{RcptOutcome, Work};
use port25_events as ev;
use port25_events::emit;
use port25_spool::{BatchRef, DoneLog, Spool, SpooledMessage};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Delivery attempts running at the same time.
pub const PARALLEL_BATCHES: usize = 4;

/// When deferred recipients are tried again (`[delivery]` first_retry_secs,
/// max_retry_secs, max_lifetime_secs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The wait after the first deferral; it doubles at every retry ...
    pub first: Duration,
    /// ... up to this.
    pub max: Duration,
    /// A recipient still deferred when its message is this old fails for
    /// good (and its sender is told).
    pub lifetime: Duration,
}

/// Stores the DSN for `message`'s recipients (indices, with the mailbox
/// server's reply) that failed for good; Ok once it is durable (or when
/// none is due: a null sender gets none). Supplied by the binary, which
/// has the DSN writer and the outbound queue; local delivery stays local.
pub type Bounce = Arc<
    dyn Fn(Arc<SpooledMessage>, Vec<(usize, String)>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

#[derive(Debug, Clone)]
pub enum Target {
    Maildir(Maildir),
    Lmtp(Lmtp),
}

impl Target {
    async fn deliver(&self, work: Vec<Work>, recovered: bool) -> Vec<(usize, usize, RcptOutcome)> {
        match self {
            Target::Maildir(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || m.deliver(&work, recovered))
                    .await
                    .unwrap_or_else(|e| panic!("maildir delivery thread panicked: {e}"))
            }
            Target::Lmtp(l) => l.deliver(&work).await,
        }
    }
}

pub async fn run(
    spool: Spool,
    recovered: Vec<BatchRef>,
    mut ready: mpsc::UnboundedReceiver<BatchRef>,
    target: Arc<Target>,
    bounce: Bounce,
    retry: Retry,
    shutdown: CancellationToken,
) {
    // (batch, the wait before its next attempt should this one defer).
    let mut runnable: VecDeque<(BatchRef, Duration)> = recovered.into_iter().map(|b| (b, retry.first)).collect();
    let mut waiting: BTreeMap<(Instant, u64), (BatchRef, Duration)> = BTreeMap::new();
    let mut running = JoinSet::new();
    // One attempt at a batch, as a task of its own.
    let attempt_of = |batch: BatchRef, wait: Duration| {
        let (spool, target, bounce) = (spool.clone(), target.clone(), bounce.clone());
        async move { attempt(&spool, batch, wait, &target, &bounce, retry.lifetime).await.map(|b| (b, wait)) }
    };
    let mut open = true;
    loop {
        // Take what is there before starting anything: an attempt that has
        // ended frees its slot, and batches are started in commit order.
        while let Ok(b) = ready.try_recv() {
            runnable.push_back((b, retry.first));
        }
        while let Some(ended) = running.try_join_next() {
            ended_attempt(ended, &mut waiting, retry);
        }
        // Batches committed before shutdown are still started when a slot
        // is free (as the sessions that committed them have ended).
        while running.len() < PARALLEL_BATCHES {
            let Some((batch, wait)) = runnable.pop_front() else { break };
            running.spawn(attempt_of(batch, wait));
        }
        let next_due = waiting.first_key_value().map(|((due, _), _)| *due);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                // select! is biased to shutdown: a batch whose notice was
                // ready at the same moment was committed before it and is
                // started too, PARALLEL_BATCHES at a time.
                while let Ok(b) = ready.try_recv() {
                    runnable.push_back((b, retry.first));
                }
                while let Some((batch, wait)) = runnable.pop_front() {
                    if running.len() >= PARALLEL_BATCHES {
                        running.join_next().await;
                    }
                    running.spawn(attempt_of(batch, wait));
                }
                break;
            }
            Some(ended) = running.join_next(), if !running.is_empty() => ended_attempt(ended, &mut waiting, retry),
            b = ready.recv(), if open => match b {
                Some(b) => runnable.push_back((b, retry.first)),
                None => open = false,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let now = Instant::now();
                while let Some(entry) = waiting.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    runnable.push_back(entry.remove());
                }
            }
        }
    }
    while running.join_next().await.is_some() {}
}

/// An attempt has ended: a batch with deferred recipients waits for its
/// retry, then is tried with a doubled wait.
type Ended = Result<Option<(BatchRef, Duration)>, tokio::task::JoinError>;

fn ended_attempt(ended: Ended, waiting: &mut BTreeMap<(Instant, u64), (BatchRef, Duration)>, retry: Retry) {
    match ended {
        Ok(None) => {}
        Ok(Some((batch, wait))) => {
            waiting.insert((Instant::now() + wait, batch.seq), (batch, (wait * 2).min(retry.max)));
        }
        // The batch stays in the spool and is delivered after a restart.
        Err(e) => emit!(error, ev::DELIVERY_ATTEMPT_PANICKED, error = %e),
    }
}

/// One delivery attempt: Some(batch) when recipients are left for a retry
/// (in `wait`).
async fn attempt(
    spool: &Spool,
    batch: BatchRef,
    wait: Duration,
    target: &Target,
    bounce: &Bounce,
    lifetime: Duration,
) -> Option<BatchRef> {
    let again = BatchRef { seq: batch.seq, recovered: true };
    let loader = spool.clone();
    let loaded = tokio::task::spawn_blocking(move || loader.load(batch))
        .await
        .unwrap_or_else(|e| panic!("spool read thread panicked: {e}"));
    let batch = match loaded {
        Ok(Some(b)) => b,
        // Finished (or damaged and quarantined, which was logged).
        Ok(None) => return None,
        Err(e) => {
            emit!(error, ev::SPOOL_READ_FAILED, batch = batch.seq, error = %e);
            return Some(again);
        }
    };
    let mut log = DoneLog::new(spool, batch.seq);
    let todo: Vec<Work> = batch
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| Work {
            message: m.clone(),
            index: i,
            rcpts: (0..m.rcpts.len()).filter(|r| !batch.done.contains(&(i, *r))).collect(),
        })
        .filter(|w| !w.rcpts.is_empty())
        .collect();
    if todo.is_empty() {
        finish(log, batch.seq).await;
        return None;
    }
    let results = target.deliver(todo.clone(), batch.recovered).await;
    let now = port25_time::unix_secs();
    let mut finished = Vec::new();
    let mut failed: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
    for (m, r, outcome) in results {
        let msg = &batch.messages[m];
        let age = now.saturating_sub(msg.received_at);
        match outcome {
            RcptOutcome::Delivered => {
                emit!(info, ev::DELIVERY_DELIVERED, id = %msg.id, to = %msg.rcpts[r]);
                finished.push((m, r));
            }
            RcptOutcome::Failed(why) => {
                emit!(warn, ev::DELIVERY_FAILED, id = %msg.id, to = %msg.rcpts[r], reason = %why);
                failed.entry(m).or_default().push((r, why));
            }
            RcptOutcome::Deferred(why) if age >= lifetime.as_secs() => {
                let why = format!("{why} (deferred since the message arrived {age} s ago; [delivery] max_lifetime_secs is {}: given up)", lifetime.as_secs());
                emit!(warn, ev::DELIVERY_FAILED, id = %msg.id, to = %msg.rcpts[r], reason = %why);
                failed.entry(m).or_default().push((r, why));
            }
            RcptOutcome::Deferred(why) => {
                emit!(warn, ev::DELIVERY_DEFERRED, id = %msg.id, to = %msg.rcpts[r], reason = %why, retry_in = wait.as_secs());
            }
        }
    }
    // Failed for good: finished once the sender's DSN is stored.
    for (m, rcpts) in failed {
        let done: Vec<_> = rcpts.iter().map(|(r, _)| (m, *r)).collect();
        let msg = &batch.messages[m];
        match bounce(msg.clone(), rcpts).await {
            Ok(()) => finished.extend(done),
            Err(e) => {
                for (_, r) in done {
                    let reason =
                        format!("failed for good, but the sender's DSN could not be stored ({e}): tried again");
                    emit!(error, ev::DELIVERY_DEFERRED, id = %msg.id, to = %msg.rcpts[r], reason = %reason, retry_in = wait.as_secs());
                }
            }
        }
    }
    // Everything left is finished: no done file at all, the batch is
    // removed (durably, see DoneLog::finish) right below. A done file
    // per batch cost a file creation, a directory fsync and an
    // fdatasync per batch, i.e. per message at low concurrency, and
    // ext4 creations were ~40% of port25's CPU in the submission
    // benchmark (perf, issue 8). A crash before the removal is durable
    // redelivers, as a crash before the done line was durable did.
    if todo.iter().all(|w| w.rcpts.iter().all(|r| finished.contains(&(w.index, *r)))) {
        finish(log, batch.seq).await;
        return None;
    }
    // The done log fsyncs: on a blocking thread, never on a worker that
    // SMTP sessions are waiting for. Without the record the recipients are
    // tried again, and the delivery's own idempotence keeps that to one copy.
    let written = tokio::task::spawn_blocking(move || log.record(&finished))
        .await
        .unwrap_or_else(|e| panic!("done log thread panicked: {e}"));
    if let Err(e) = written {
        emit!(error, ev::SPOOL_WRITE_FAILED, batch = batch.seq, error = %e);
    }
    Some(again)
}

async fn finish(log: DoneLog, seq: u64) {
    let finished = tokio::task::spawn_blocking(move || log.finish())
        .await
        .unwrap_or_else(|e| panic!("done log thread panicked: {e}"));
    if let Err(e) = finished {
        emit!(error, ev::SPOOL_WRITE_FAILED, batch = seq, error = %e);
    }
}
