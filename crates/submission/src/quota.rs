//! Per-login sending limits: messages and recipients per hour and per day,
//! recipients per message. A compromised account is contained to these
//! numbers; over a limit the client gets a reply that says which limit and
//! when to try again (never a silent delay).
//!
//! What counts: every message the login submits and every recipient of it,
//! local or remote, since a spammer with a stolen password targets local
//! users too. What the server generates (bounces) and mail delivered *to*
//! the user never pass here, so they never count. Usage lives in memory: a
//! restart forgives the current window.
//!
//! Parallel sessions of one login share its limits: each recipient (and
//! the message, with its first recipient) is *reserved* at RCPT, counted
//! with what was sent when the next RCPT or MAIL of any session is checked,
//! committed when the message is stored, and given back when it is not
//! (refused at DATA, RSET, EHLO, the session's end without DATA). So N
//! sessions together never get more than the limit accepted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

/// Zero means "no limit".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    pub messages_per_hour: u32,
    pub messages_per_day: u32,
    pub recipients_per_hour: u32,
    pub recipients_per_day: u32,
    pub recipients_per_message: u32,
}

impl QuotaConfig {
    /// These limits with a login's own values where it has them.
    pub fn with(&self, own: &port25_accounts::UserLimits) -> QuotaConfig {
        QuotaConfig {
            messages_per_hour: own.messages_per_hour.unwrap_or(self.messages_per_hour),
            messages_per_day: own.messages_per_day.unwrap_or(self.messages_per_day),
            recipients_per_hour: own.recipients_per_hour.unwrap_or(self.recipients_per_hour),
            recipients_per_day: own.recipients_per_day.unwrap_or(self.recipients_per_day),
            recipients_per_message: own.recipients_per_message.unwrap_or(self.recipients_per_message),
        }
    }
}

impl Default for QuotaConfig {
    fn default() -> QuotaConfig {
        QuotaConfig {
            messages_per_hour: 200,
            messages_per_day: 1000,
            recipients_per_hour: 500,
            recipients_per_day: 2000,
            recipients_per_message: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// e.g. "messages_per_hour", as in the configuration.
    pub limit: &'static str,
    pub max: u32,
    /// When the oldest counted message leaves the window.
    pub retry_after: Option<Duration>,
}

pub struct Quota {
    config: QuotaConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    usage: HashMap<String, Usage>,
    /// Reservations of each session's transaction in progress.
    pending: HashMap<String, Pending>,
}

#[derive(Default)]
struct Usage {
    log: SendLog,
    /// Messages and recipients reserved by transactions in progress.
    messages: u32,
    recipients: u32,
}

struct Pending {
    who: String,
    recipients: u32,
}

/// One login's messages of the last day, oldest first, each with the
/// running total of recipients before it. A window's counts are then one
/// binary search and a subtraction: the checks run at every MAIL and
/// RCPT, and a role account may send thousands of messages a day, so a
/// scan of the log per check would cost more than the message itself.
#[derive(Default)]
struct SendLog {
    entries: VecDeque<Sent>,
}

struct Sent {
    at: Instant,
    recipients: u32,
    /// Recipients of every earlier message still in the log or not.
    recipients_before: u64,
}

#[derive(Default)]
struct Window {
    messages: u32,
    recipients: u32,
    oldest: Option<Instant>,
}

impl SendLog {
    fn window(&self, now: Instant, span: Duration) -> Window {
        let first = self.entries.partition_point(|e| now.saturating_duration_since(e.at) >= span);
        let (Some(oldest), Some(last)) = (self.entries.get(first), self.entries.back()) else {
            return Window::default();
        };
        let recipients = last.recipients_before + u64::from(last.recipients) - oldest.recipients_before;
        Window {
            messages: (self.entries.len() - first) as u32,
            recipients: recipients.min(u64::from(u32::MAX)) as u32,
            oldest: Some(oldest.at),
        }
    }

    fn push(&mut self, now: Instant, recipients: u32) {
        while self.entries.front().is_some_and(|e| now.saturating_duration_since(e.at) >= DAY) {
            self.entries.pop_front();
        }
        // Sessions record concurrently, so `now` may be a hair older than
        // the last entry: keep the log sorted for the binary search.
        let (at, recipients_before) = match self.entries.back() {
            Some(last) => (now.max(last.at), last.recipients_before + u64::from(last.recipients)),
            None => (now, 0),
        };
        self.entries.push_back(Sent { at, recipients, recipients_before });
    }
}

fn window(log: Option<&SendLog>, now: Instant, span: Duration) -> Window {
    log.map_or_else(Window::default, |log| log.window(now, span))
}

fn over(
    limit: &'static str,
    max: u32,
    used: u32,
    oldest: Option<Instant>,
    span: Duration,
    now: Instant,
) -> Result<(), Exceeded> {
    if max == 0 || used < max {
        return Ok(());
    }
    Err(Exceeded { limit, max, retry_after: oldest.map(|t| (t + span).saturating_duration_since(now)) })
}

impl Quota {
    pub fn new(config: QuotaConfig) -> Quota {
        Quota { config, state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn defaults(&self) -> &QuotaConfig {
        &self.config
    }

    /// At MAIL: may this login start another message? `c`: its limits.
    pub fn check_message(&self, login: &str, c: &QuotaConfig, now: Instant) -> Result<(), Exceeded> {
        let state = self.state();
        messages_left(state.usage.get(login), c, now)
    }

    /// At RCPT: reserves one more recipient (and, with the first, the
    /// message) for `session`'s transaction, `in_message` being the
    /// recipients it already has; refused when that would pass a limit.
    pub fn reserve_recipient(
        &self,
        session: &str,
        login: &str,
        c: &QuotaConfig,
        in_message: u32,
        now: Instant,
    ) -> Result<(), Exceeded> {
        over("recipients_per_message", c.recipients_per_message, in_message, None, HOUR, now)?;
        let mut state = self.state();
        if state.pending.get(session).is_some_and(|p| p.who != login) {
            release(&mut state, session);
        }
        let first = !state.pending.contains_key(session);
        let usage = state.usage.get(login);
        if first {
            messages_left(usage, c, now)?;
        }
        let reserved = usage.map_or(0, |u| u.recipients);
        let hour = window(usage.map(|u| &u.log), now, HOUR);
        over(
            "recipients_per_hour",
            c.recipients_per_hour,
            hour.recipients.saturating_add(reserved),
            hour.oldest,
            HOUR,
            now,
        )?;
        let day = window(usage.map(|u| &u.log), now, DAY);
        over(
            "recipients_per_day",
            c.recipients_per_day,
            day.recipients.saturating_add(reserved),
            day.oldest,
            DAY,
            now,
        )?;
        let usage = state.usage.entry(login.to_owned()).or_default();
        usage.recipients += 1;
        usage.messages += u32::from(first);
        state
            .pending
            .entry(session.to_owned())
            .or_insert_with(|| Pending { who: login.to_owned(), recipients: 0 })
            .recipients += 1;
        Ok(())
    }

    /// After the message is stored: `session`'s reservation becomes a sent
    /// message.
    pub fn commit(&self, session: &str, now: Instant) {
        let mut state = self.state();
        let Some(p) = release(&mut state, session) else { return };
        state.usage.entry(p.who).or_default().log.push(now, p.recipients);
    }

    /// The transaction ended without a stored message: its reservation is
    /// given back. Nothing happens when there is none.
    pub fn release(&self, session: &str) {
        release(&mut self.state(), session);
    }
}

fn release(state: &mut State, session: &str) -> Option<Pending> {
    let p = state.pending.remove(session)?;
    if let Some(u) = state.usage.get_mut(&p.who) {
        u.messages = u.messages.saturating_sub(1);
        u.recipients = u.recipients.saturating_sub(p.recipients);
        if u.messages == 0 && u.log.entries.is_empty() {
            state.usage.remove(&p.who);
        }
    }
    Some(p)
}

/// Sent plus reserved messages against the hourly and daily limits.
fn messages_left(usage: Option<&Usage>, c: &QuotaConfig, now: Instant) -> Result<(), Exceeded> {
    let reserved = usage.map_or(0, |u| u.messages);
    let hour = window(usage.map(|u| &u.log), now, HOUR);
    over("messages_per_hour", c.messages_per_hour, hour.messages.saturating_add(reserved), hour.oldest, HOUR, now)?;
    let day = window(usage.map(|u| &u.log), now, DAY);
    over("messages_per_day", c.messages_per_day, day.messages.saturating_add(reserved), day.oldest, DAY, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_daily_and_per_message_limits() {
        let c = QuotaConfig {
            messages_per_hour: 2,
            messages_per_day: 3,
            recipients_per_hour: 5,
            recipients_per_day: 0,
            recipients_per_message: 3,
        };
        let q = Quota::new(c.clone());
        let c = &c;
        let own = port25_accounts::UserLimits {
            messages_per_hour: Some(0),
            recipients_per_message: Some(1),
            ..Default::default()
        };
        let merged = c.with(&own);
        assert_eq!((merged.messages_per_hour, merged.messages_per_day, merged.recipients_per_message), (0, 3, 1));
        let t0 = Instant::now();
        let send = |session: &str, rcpts: u32, at: Instant| {
            for i in 0..rcpts {
                q.reserve_recipient(session, "a", c, i, at).unwrap();
            }
            q.commit(session, at);
        };
        assert!(q.check_message("a", c, t0).is_ok());
        assert_eq!(q.reserve_recipient("s", "a", c, 3, t0).unwrap_err().limit, "recipients_per_message");
        send("s", 3, t0);
        send("s", 1, t0 + Duration::from_secs(60));
        let e = q.check_message("a", c, t0 + Duration::from_secs(120)).unwrap_err();
        assert_eq!((e.limit, e.max, e.retry_after), ("messages_per_hour", 2, Some(Duration::from_secs(3480))));
        assert!(q.check_message("b", c, t0).is_ok(), "limits are per login");
        let later = t0 + Duration::from_secs(3700);
        assert!(q.check_message("a", c, later).is_ok());
        send("s", 1, later);
        assert_eq!(q.check_message("a", c, later).unwrap_err().limit, "messages_per_day");
        assert!(q.check_message("a", c, t0 + DAY + Duration::from_secs(61)).is_ok());
    }

    /// Issue 13 item 6: quotas used to be checked at MAIL/RCPT and recorded
    /// after DATA, so N parallel sessions each got the whole limit.
    #[test]
    fn parallel_transactions_share_the_limits_and_unsent_ones_give_back() {
        let c = QuotaConfig {
            messages_per_hour: 3,
            messages_per_day: 0,
            recipients_per_hour: 4,
            recipients_per_day: 0,
            recipients_per_message: 0,
        };
        let q = Quota::new(c.clone());
        let t0 = Instant::now();
        // Three sessions start a message each: the hourly message limit is
        // taken by their reservations, before any of them is sent.
        for s in ["s1", "s2", "s3"] {
            q.reserve_recipient(s, "a", &c, 0, t0).unwrap();
        }
        assert_eq!(q.check_message("a", &c, t0).unwrap_err().limit, "messages_per_hour");
        assert_eq!(q.reserve_recipient("s4", "a", &c, 0, t0).unwrap_err().limit, "messages_per_hour");
        q.reserve_recipient("s1", "a", &c, 1, t0).unwrap();
        assert_eq!(
            q.reserve_recipient("s2", "a", &c, 1, t0).unwrap_err().limit,
            "recipients_per_hour",
            "4 recipients reserved"
        );
        // s2 resets (RSET, end of session): its message and recipient are back.
        q.release("s2");
        q.release("s2");
        q.reserve_recipient("s4", "a", &c, 0, t0).unwrap();
        q.commit("s1", t0);
        q.commit("s1", t0);
        q.commit("s3", t0);
        q.release("s4");
        // Sent: 2 messages, 3 recipients.
        assert!(q.check_message("a", &c, t0).is_ok());
        q.reserve_recipient("s5", "a", &c, 0, t0).unwrap();
        assert_eq!(q.reserve_recipient("s5", "a", &c, 1, t0).unwrap_err().limit, "recipients_per_hour");
        q.release("s5");
        let state = q.state();
        assert!(state.pending.is_empty());
        assert_eq!((state.usage["a"].messages, state.usage["a"].recipients), (0, 0));
    }

    /// The running sums give what a scan of every message would.
    #[test]
    fn windows_from_running_sums_equal_a_scan() {
        let t0 = Instant::now();
        let mut log = SendLog::default();
        let mut naive: Vec<(Instant, u32)> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut t = t0;
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += Duration::from_secs(x % 90);
            let r = (x % 12) as u32;
            log.push(t, r);
            naive.push((t, r));
            if i % 97 == 0 {
                for span in [HOUR, DAY] {
                    let w = log.window(t, span);
                    let inside: Vec<_> = naive.iter().filter(|(at, _)| t.duration_since(*at) < span).collect();
                    assert_eq!(w.messages as usize, inside.len());
                    assert_eq!(w.recipients, inside.iter().map(|(_, r)| r).sum::<u32>());
                    assert_eq!(w.oldest, inside.first().map(|(at, _)| *at));
                }
            }
        }
        assert!(log.entries.len() < naive.len(), "entries older than a day are dropped");
    }
}
