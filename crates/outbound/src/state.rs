//! The queue's own records, next to the spool's batch and done files. Pure
//! encode/parse, fuzzed.
//!
//! `state/<batch>.state`: one line per change of a deferred recipient
//! ("m r attempts next_attempt warned reply"); the last line for a
//! recipient wins and a torn last line (crash mid-append) is ignored, which
//! only means an older attempt count is used. It is not fsynced: losing it
//! costs an earlier retry, never a message.
//!
//! `history.log`: one line per finished recipient ("time id rcpt outcome
//! reply", tab separated), written before the done log so an operator can
//! always see what happened to a recipient the queue no longer holds.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptState {
    pub attempts: u32,
    /// Seconds since the Unix epoch.
    pub next_attempt: u64,
    /// A delay warning was sent.
    pub warned: bool,
    pub last_reply: String,
}

/// Replies come from remote servers: keep them on one line, bounded.
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect()
}

pub fn encode_state(m: usize, r: usize, s: &RcptState) -> String {
    format!("{m} {r} {} {} {} {}\n", s.attempts, s.next_attempt, u8::from(s.warned), clean(&s.last_reply))
}

/// Parses a state file: the latest state of each (message, recipient).
pub fn parse_state(text: &str) -> BTreeMap<(usize, usize), RcptState> {
    let mut out = BTreeMap::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let mut f = line.trim_end_matches('\n').splitn(6, ' ');
        let parsed = (|| {
            let m = f.next()?.parse().ok()?;
            let r = f.next()?.parse().ok()?;
            let attempts = f.next()?.parse().ok()?;
            let next_attempt = f.next()?.parse().ok()?;
            let warned = match f.next()? {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            let last_reply = f.next().unwrap_or("").to_owned();
            Some(((m, r), RcptState { attempts, next_attempt, warned, last_reply }))
        })();
        if let Some((k, v)) = parsed {
            out.insert(k, v);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Bounced,
    Expired,
    Deleted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Bounced => "bounced",
            Outcome::Expired => "expired",
            Outcome::Deleted => "deleted",
        }
    }
    fn from_name(s: &str) -> Option<Outcome> {
        [Outcome::Delivered, Outcome::Bounced, Outcome::Expired, Outcome::Deleted].into_iter().find(|o| o.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub time: u64,
    pub id: String,
    pub rcpt: String,
    pub outcome: Outcome,
    pub reply: String,
}

fn field(s: &str) -> String {
    clean(s).replace('\t', " ")
}

pub fn encode_history(h: &HistoryLine) -> String {
    format!("{}\t{}\t{}\t{}\t{}\n", h.time, field(&h.id), field(&h.rcpt), h.outcome.name(), field(&h.reply))
}

pub fn parse_history(text: &str) -> Vec<HistoryLine> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let mut f = l.trim_end_matches('\n').splitn(5, '\t');
            Some(HistoryLine {
                time: f.next()?.parse().ok()?,
                id: f.next()?.to_owned(),
                rcpt: f.next()?.to_owned(),
                outcome: Outcome::from_name(f.next()?)?,
                reply: f.next()?.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_state_wins_and_torn_lines_are_ignored() {
        let a = RcptState { attempts: 1, next_attempt: 100, warned: false, last_reply: "451 4.3.0 try\nlater".into() };
        let b = RcptState { attempts: 2, next_attempt: 300, warned: true, last_reply: "421 busy".into() };
        let mut text = encode_state(0, 1, &a) + &encode_state(0, 1, &b) + &encode_state(2, 0, &a);
        text.push_str("0 1 9 9 0 torn");
        let p = parse_state(&text);
        assert_eq!(p[&(0, 1)], b);
        assert_eq!(p[&(2, 0)].last_reply, "451 4.3.0 try later");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn history_round_trips() {
        let h = HistoryLine {
            time: 5,
            id: "ABC".into(),
            rcpt: "a@b.example".into(),
            outcome: Outcome::Bounced,
            reply: "550\t5.1.1 no".into(),
        };
        let text = encode_history(&h);
        assert_eq!(parse_history(&text), vec![HistoryLine { reply: "550 5.1.1 no".into(), ..h }]);
        assert!(parse_history("1\tx\ty\tdelivered").is_empty());
    }
}
