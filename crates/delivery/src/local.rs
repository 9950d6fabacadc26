//! The local delivery loop: committed batches in, mailboxes out.
//!
//! Each batch is delivered by its own task (a few at a time). Finished
//! recipients, delivered or failed for good, go to the batch's done log
//! only after the delivery itself is durable; deferred ones are tried again
//! with a growing delay. At shutdown the loop stops taking batches and lets
//! the running attempts end; what is left stays in the spool for next time.
//!
//! A recipient that fails for good (the mailbox server's 5xx) was accepted
//! with a 250 earlier, so its sender must be told (RFC 5321 §6.1): the
//! [`Bounce`] hook stores a DSN first, and only then is the recipient
//! finished; if the DSN cannot be stored the recipient is tried again.

use crate::lmtp::Lmtp;
use crate::maildir::Maildir;
use crate::outcome::{RcptOutcome, Work};
use port25_events as ev;
use port25_events::emit;
use port25_queue::{DoneLog, PendingBatch, Spool, SpooledMessage};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches delivered at the same time.
const PARALLEL_BATCHES: usize = 4;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Stores the DSN for `message`'s recipients (indices, with the mailbox
/// server's reply) that failed for good; Ok once it is durable (or when
/// none is due: a null sender gets none). Supplied by the binary, which
/// has the DSN writer and the outbound queue; local delivery stays local.
pub type Bounce = Arc<dyn Fn(Arc<SpooledMessage>, Vec<(usize, String)>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

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
                tokio::task::spawn_blocking(move || m.deliver(&work, recovered)).await.unwrap_or_else(|e| panic!("maildir delivery thread panicked: {e}"))
            }
            Target::Lmtp(l) => l.deliver(&work).await,
        }
    }
}

pub async fn run(
    spool: Spool,
    recovered: Vec<PendingBatch>,
    mut ready: mpsc::UnboundedReceiver<PendingBatch>,
    target: Arc<Target>,
    bounce: Bounce,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(PARALLEL_BATCHES));
    let tracker = TaskTracker::new();
    let mut backlog = recovered.into_iter();
    loop {
        let batch = match backlog.next() {
            Some(b) => b,
            // Biased: batches committed before shutdown are still started.
            None => tokio::select! {
                biased;
                b = ready.recv() => match b { Some(b) => b, None => break },
                _ = shutdown.cancelled() => break,
            },
        };
        let permit = tokio::select! {
            biased;
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (spool, target, bounce, shutdown) = (spool.clone(), target.clone(), bounce.clone(), shutdown.clone());
        tracker.spawn(async move {
            deliver_batch(&spool, batch, &target, &bounce, &shutdown).await;
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn deliver_batch(spool: &Spool, batch: PendingBatch, target: &Target, bounce: &Bounce, shutdown: &CancellationToken) {
    let mut log = DoneLog::new(spool, batch.seq);
    let mut todo: Vec<Work> = batch
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| Work { message: m.clone(), index: i, rcpts: (0..m.rcpts.len()).filter(|r| !batch.done.contains(&(i, *r))).collect() })
        .filter(|w| !w.rcpts.is_empty())
        .collect();
    let mut delay = FIRST_RETRY;
    let mut recovered = batch.recovered;
    while !todo.is_empty() {
        let results = target.deliver(todo.clone(), recovered).await;
        // After one attempt, files from before the crash have been seen.
        recovered = true;
        let mut finished = Vec::new();
        let mut failed: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
        for (m, r, outcome) in &results {
            let msg = &batch.messages[*m];
            match outcome {
                RcptOutcome::Delivered => {
                    emit!(info, ev::DELIVERY_DELIVERED, id = %msg.id, to = %msg.rcpts[*r]);
                    finished.push((*m, *r));
                }
                RcptOutcome::Failed(why) => {
                    emit!(warn, ev::DELIVERY_FAILED, id = %msg.id, to = %msg.rcpts[*r], reason = %why);
                    failed.entry(*m).or_default().push((*r, why.clone()));
                }
                RcptOutcome::Deferred(why) => {
                    emit!(warn, ev::DELIVERY_DEFERRED, id = %msg.id, to = %msg.rcpts[*r], reason = %why, retry_in = delay.as_secs());
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
                        let reason = format!("failed for good, but the sender's DSN could not be stored ({e}): tried again");
                        emit!(error, ev::DELIVERY_DEFERRED, id = %msg.id, to = %msg.rcpts[r], reason = %reason, retry_in = delay.as_secs());
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
            break;
        }
        // The done log fsyncs: on a blocking thread, never on a worker
        // that SMTP sessions are waiting for.
        let record = finished.clone();
        let (returned, written) = tokio::task::spawn_blocking(move || {
            let written = log.record(&record);
            (log, written)
        })
        .await
        .unwrap_or_else(|e| panic!("done log thread panicked: {e}"));
        log = returned;
        if let Err(e) = written {
            // Without the record the recipients are tried again later, and
            // the delivery's own idempotence keeps that to one copy.
            emit!(error, ev::SPOOL_WRITE_FAILED, batch = batch.seq, error = %e);
            return;
        }
        for w in &mut todo {
            w.rcpts.retain(|r| !finished.contains(&(w.index, *r)));
        }
        todo.retain(|w| !w.rcpts.is_empty());
        if todo.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
    let finished = tokio::task::spawn_blocking(move || log.finish()).await.unwrap_or_else(|e| panic!("done log thread panicked: {e}"));
    if let Err(e) = finished {
        emit!(error, ev::SPOOL_WRITE_FAILED, batch = batch.seq, error = %e);
    }
}
