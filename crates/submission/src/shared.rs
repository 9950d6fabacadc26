//! Submission's side of the state shared by several nodes
//! (`[submission.shared]`, crates/shared): the sending limits and the
//! per-login session cap taken against the shared store as well as the
//! node's own [`crate::quota`] and session counts, so N nodes together
//! allow what one would.
//!
//! The sending limits are the same sliding windows as the local quota: a
//! recipient (and the message, with its first recipient) is reserved at
//! RCPT under a name unique across nodes, kept when the message is stored,
//! and given back when the transaction ends otherwise. MAIL does not ask
//! the store: the first recipient's reservation refuses when a message
//! window is full, as a Postfix policy service answers at RCPT. (MAIL used
//! to check the message windows too: one round trip more per session, a
//! fifth of a session's waits on the store, for a refusal one command
//! earlier; the node's own quota still answers at MAIL.) The store not
//! answering is 454 4.7.0 when failing closed; with
//! `on_unreachable = "local"` the node's own limits decide.

use std::time::Duration;

use port25_shared::{Shared, Window};

use crate::quota::{Exceeded, QuotaConfig};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

/// How long a session entry outlives a node that died without leaving.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(3600);

/// One reserved recipient (or message): its window keys and its name.
pub(crate) struct Held {
    keys: Vec<String>,
    member: String,
}

/// Why the shared store said no.
pub(crate) enum Refused {
    Over(Exceeded),
    /// Not answering, and the node fails closed.
    Unreachable,
}

/// The windows a recipient is reserved in (and its message's, with the
/// first recipient), with their limits' names.
fn windows(who: &str, c: &QuotaConfig, message: bool) -> (Vec<Window>, Vec<&'static str>) {
    let mut w = Vec::new();
    let mut names = Vec::new();
    let mut add = |name: &'static str, tag: &str, span, max: u32| {
        if max > 0 {
            w.push(Window { key: format!("{tag}:{who}"), span, max });
            names.push(name);
        }
    };
    if message {
        add("messages_per_hour", "mph", HOUR, c.messages_per_hour);
        add("messages_per_day", "mpd", DAY, c.messages_per_day);
    }
    add("recipients_per_hour", "rph", HOUR, c.recipients_per_hour);
    add("recipients_per_day", "rpd", DAY, c.recipients_per_day);
    (w, names)
}

async fn take(shared: &Shared, windows: &[Window], names: &[&'static str], member: &str) -> Result<(), Refused> {
    let answer = shared.backend().reserve(windows, Some(member)).await;
    match shared.settle("reserve", answer, Ok(())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(full)) => {
            let w = &windows[full.index.min(windows.len() - 1)];
            Err(Refused::Over(Exceeded {
                limit: names[full.index.min(names.len() - 1)],
                max: w.max,
                retry_after: Some(full.retry_after),
            }))
        }
        Err(_) => Err(Refused::Unreachable),
    }
}

/// RCPT: reserves the recipient (and the message with its first one).
pub(crate) async fn reserve_recipient(
    shared: &Shared,
    session: &str,
    who: &str,
    c: &QuotaConfig,
    first: bool,
) -> Result<Option<Held>, Refused> {
    let (w, names) = windows(who, c, first);
    if w.is_empty() {
        return Ok(None);
    }
    let member = shared.member(session);
    take(shared, &w, &names, &member).await?;
    Ok(Some(Held { keys: w.into_iter().map(|w| w.key).collect(), member }))
}

/// Gives reservations back, off the session (called from hooks that
/// cannot wait; an unreachable store lets them age out of their windows).
pub(crate) fn release(shared: &Shared, held: Vec<Held>) {
    if held.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    let shared = shared.clone();
    rt.spawn(async move {
        for h in held {
            let answer = shared.backend().release(&h.keys, &h.member).await;
            let _ = shared.settle("release", answer, ());
        }
    });
}

/// Leaves the login's shared session slot, off the session.
pub(crate) fn leave_session(shared: &Shared, login: String, name: String) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    let shared = shared.clone();
    rt.spawn(async move {
        let answer = shared.backend().leave_session(&login, &name).await;
        let _ = shared.settle("leave_session", answer, ());
    });
}
