//! The index fed from the event catalogue: a tracing layer beside the
//! metrics layer, so the engine, delivery and the outbound queue need no
//! index code of their own and the event ids stay the one contract
//! (docs/EVENTS.md). What no event carries (the login, the Message-ID
//! header) the submission policy adds through [`crate::Desk`].
//!
//! [`Feed::record`] is pure bookkeeping (event id and fields in, index
//! records out), tested without a subscriber. Per open session it keeps
//! the proxy address and the accepted recipients of the transaction in
//! progress, both bounded.
//!
//! The layer runs on the sessions' threads for every catalogued event,
//! about ten per message: it reads only the few fields the event's id
//! needs ([`READS`]) into a small list, no map of every field.

use crate::index::{now_ms, Index, Record, RecordRef};
use port25_events as ev;
use port25_events::fields::{Named, Picked, Reads};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::layer::{Context, Layer};

/// Sessions with pending state at most; beyond it new ones keep none.
const MAX_SESSIONS: usize = 50_000;
/// Recipients remembered per transaction (the engine caps them lower).
const MAX_RCPTS: usize = 2_000;

#[derive(Default)]
struct Pending {
    proxy: Option<String>,
    /// The transaction's accepted recipients as index keys, each ended by
    /// a line feed (no address has one: SMTP refuses control characters
    /// in a path): one buffer per session, reused, not a string each.
    rcpts: String,
    rcpt_count: usize,
}

/// The bookkeeping between events; [`FeedLayer`] calls it.
#[derive(Default)]
pub struct Feed {
    sessions: crate::FastMap<String, Pending>,
}

/// An address as the index keys it: without brackets, lower-cased
/// (allocated only when it has upper case or non-ASCII to lower).
pub fn rcpt_key(to: &str) -> std::borrow::Cow<'_, str> {
    let bare = to.trim().trim_start_matches('<').trim_end_matches('>');
    if bare.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        bare.to_lowercase().into()
    } else {
        bare.into()
    }
}

/// The events the index reads, and the fields [`Feed::record`] reads of
/// each: the layer's filter and each event's [`Picked`].
pub const READS: Reads = &[
    (ev::SESSION_PROXY, &["session", "proxy"]),
    (ev::SESSION_CONNECT, &["session", "peer", "listener", "local"]),
    (ev::SESSION_CLOSED, &["session"]),
    (ev::SESSION_REFUSED, &["session"]),
    (ev::SMTP_STARTTLS, &["session", "version"]),
    (ev::SMTP_MAIL_ACCEPTED, &["session"]),
    (ev::SMTP_RCPT_ACCEPTED, &["session", "to"]),
    (ev::SMTP_DATA_ACCEPTED, &["session", "id", "from", "size"]),
    (ev::OUTBOUND_QUEUED, &["id", "dkim"]),
    (ev::OUTBOUND_DELIVERED, &["id", "to", "host", "reply"]),
    (ev::OUTBOUND_DEFERRED, &["id", "to", "reason"]),
    (ev::OUTBOUND_BOUNCED, &["id", "to", "reply", "expired"]),
    (ev::DELIVERY_DELIVERED, &["id", "to"]),
    (ev::DELIVERY_DEFERRED, &["id", "to", "reason"]),
    (ev::DELIVERY_FAILED, &["id", "to", "reason"]),
];

impl Feed {
    /// The index records one event makes (its [`READS`] fields), owned
    /// (tests, tools; the layer uses [`Feed::record_to`]).
    pub fn record(&mut self, id: &str, f: Picked) -> Vec<Record> {
        let mut out = Vec::new();
        self.record_to(id, &f, &mut |r| out.push(r.to_record()));
        out
    }

    /// The index records one event makes, handed to `out` borrowed from
    /// the event's fields (nothing allocated for a record itself).
    pub fn record_to(&mut self, id: &str, f: &Picked, out: &mut dyn FnMut(RecordRef<'_>)) {
        // The clock is read by the events that record a time only (not by
        // MAIL and RCPT, two of a message's four).
        match id {
            // Beyond MAX_SESSIONS a proxied session keeps no proxy.
            ev::SESSION_PROXY if self.sessions.len() < MAX_SESSIONS => {
                let proxy = f.get("proxy").to_owned();
                self.sessions.entry(f.get("session").to_owned()).or_default().proxy = Some(proxy);
            }
            ev::SESSION_CONNECT => {
                let session = f.get("session");
                let Ok(peer) = f.get("peer").parse::<SocketAddr>() else { return };
                let proxy = match self.sessions.get_mut(session) {
                    Some(p) => p.proxy.take(),
                    None => {
                        if self.sessions.len() < MAX_SESSIONS {
                            self.sessions.insert(session.to_owned(), Pending::default());
                        }
                        None
                    }
                };
                let ip = peer.ip().to_canonical().to_string();
                out(RecordRef::Session {
                    id: session,
                    listener: f.get("listener"),
                    ip: &ip,
                    port: peer.port(),
                    local: f.get("local"),
                    proxy: proxy.as_deref(),
                    time_ms: now_ms(),
                    tls: None,
                    login: None,
                    end_ms: None,
                });
            }
            ev::SESSION_CLOSED | ev::SESSION_REFUSED => {
                let session = f.get("session");
                self.sessions.remove(session);
                out(RecordRef::SessionEnd { id: session, time_ms: now_ms() });
            }
            ev::SMTP_STARTTLS => out(RecordRef::Tls { session: f.get("session"), version: f.get("version") }),
            ev::SMTP_MAIL_ACCEPTED => {
                if let Some(p) = self.sessions.get_mut(f.get("session")) {
                    p.rcpts.clear();
                    p.rcpt_count = 0;
                }
            }
            ev::SMTP_RCPT_ACCEPTED => {
                if let Some(p) = self.sessions.get_mut(f.get("session")) {
                    let key = rcpt_key(f.get("to"));
                    if p.rcpt_count < MAX_RCPTS && !key.contains('\n') {
                        p.rcpts.push_str(&key);
                        p.rcpts.push('\n');
                        p.rcpt_count += 1;
                    }
                }
            }
            ev::SMTP_DATA_ACCEPTED => {
                let (session, qid, now) = (f.get("session"), f.get("id"), now_ms());
                out(RecordRef::Message {
                    id: qid,
                    session,
                    time_ms: now,
                    message_id: None,
                    login: None,
                    sender: Some(f.get("from")),
                    size: f.get("size").parse().ok(),
                });
                if let Some(p) = self.sessions.get_mut(session) {
                    for rcpt in p.rcpts.lines() {
                        out(RecordRef::Rcpt { id: qid, rcpt, outcome: "accepted", detail: "", time_ms: now });
                    }
                    // Cleared, not dropped: the next transaction reuses it.
                    p.rcpts.clear();
                    p.rcpt_count = 0;
                }
            }
            ev::OUTBOUND_QUEUED => {
                let digest = f.get("dkim");
                if !digest.is_empty() {
                    out(RecordRef::Dkim { id: f.get("id"), digest });
                }
            }
            ev::OUTBOUND_DELIVERED | ev::DELIVERY_DELIVERED => {
                if id == ev::DELIVERY_DELIVERED {
                    outcome(f, "delivered", "local mailbox", out);
                } else {
                    let detail = format!("{} {}", f.get("host"), f.get("reply"));
                    outcome(f, "delivered", &detail, out);
                }
            }
            ev::OUTBOUND_DEFERRED | ev::DELIVERY_DEFERRED => outcome(f, "deferred", f.get("reason"), out),
            ev::OUTBOUND_BOUNCED => {
                let kind = if f.get("expired") == "true" { "expired" } else { "bounced" };
                outcome(f, kind, f.get("reply"), out)
            }
            ev::DELIVERY_FAILED => outcome(f, "bounced", f.get("reason"), out),
            _ => {}
        }
    }
}

/// A recipient's outcome; none when the event names no message or
/// recipient (an empty field counts as absent: nothing to look up by).
fn outcome(f: &Picked, outcome: &'static str, detail: &str, out: &mut dyn FnMut(RecordRef<'_>)) {
    if !f.has("id") || !f.has("to") {
        return;
    }
    out(RecordRef::Rcpt {
        id: f.get("id"),
        rcpt: &rcpt_key(f.get("to")),
        outcome,
        detail: detail.trim(),
        time_ms: now_ms(),
    });
}

/// The layer; the index is set once the server has opened it (events
/// before that are not indexed).
#[derive(Clone, Default)]
pub struct FeedLayer {
    index: Arc<OnceLock<Index>>,
    feed: Arc<Mutex<Feed>>,
}

impl FeedLayer {
    pub fn set_index(&self, index: Index) {
        let _ = self.index.set(index);
    }

    /// The layer with its callsite filter, for `port25_events::init_with`.
    pub fn boxed(self) -> port25_events::ExtraLayer {
        Box::new(self.with_filter(Named(READS)))
    }
}

impl<S: tracing::Subscriber> Layer<S> for FeedLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let Some(index) = self.index.get() else { return };
        // Only the events in READS get here ([`Named`]: chosen once per
        // callsite, by the id `emit!` gives as the callsite's name).
        let id = event.metadata().name();
        // One lock for the feed's state; the records go to the index's
        // queue as they are made (copied there, nothing allocated each).
        Picked::read(Named(READS).fields(id), event, |f| {
            self.feed.lock().unwrap_or_else(|p| p.into_inner()).record_to(id, f, &mut |r| index.send_ref(r))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&'static str, &str)]) -> Picked {
        Picked::of(pairs)
    }

    /// Every event the index reads is catalogued, with each field read
    /// (a field renamed in the catalogue must be renamed here).
    #[test]
    fn the_fields_read_per_event_are_catalogued_for_it() {
        for (id, reads) in READS {
            for name in *reads {
                assert!(ev::fields(id).contains(name), "{id} has no field {name}");
            }
        }
    }

    #[test]
    fn events_through_the_layer_are_found_by_trace_whatever_other_fields_they_carry() {
        use crate::index::{Query, Reader};
        use port25_events::emit;
        use tracing_subscriber::layer::SubscriberExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let layer = FeedLayer::default();
        let index = Index::start(&path, std::time::Duration::from_secs(86400)).unwrap();
        layer.set_index(index.clone());
        let subscriber = tracing_subscriber::registry().with(layer.boxed());
        tracing::subscriber::with_default(subscriber, || {
            // As the engine and local delivery emit them, with fields the
            // index does not read in between.
            emit!(info, ev::SESSION_CONNECT, session = %"S9", listener = %"submission", peer = %"203.0.113.5:41000", local = %"192.0.2.1:587");
            emit!(info, ev::SMTP_STARTTLS, session = %"S9", version = %"TLSv1_3", cipher = %"TLS13_AES_128_GCM_SHA256");
            emit!(info, ev::SMTP_MAIL_ACCEPTED, session = %"S9", from = %"a@example.net");
            emit!(debug, ev::SMTP_RCPT_ACCEPTED, session = %"S9", to = %"<Bob@Remote.Example>");
            emit!(info, ev::SMTP_DATA_ACCEPTED, session = %"S9", peer = %"203.0.113.5:41000", id = %"S9A", from = %"a@example.net", size = 1234u64, rcpts = 1u64);
            emit!(info, ev::DELIVERY_DELIVERED, id = %"S9A", to = %"bob@remote.example");
            emit!(info, ev::SESSION_CLOSED, session = %"S9", seconds = 0.5);
        });
        assert!(index.sync(std::time::Duration::from_secs(10)));
        let t = Reader::open(&path).unwrap().trace(&Query::QueueId("S9A".into()), 10).unwrap();
        let (s, m) = (&t.sessions[0], &t.messages[0]);
        assert_eq!((s.client_ip.as_str(), s.client_port, s.tls.as_deref()), ("203.0.113.5", 41000, Some("TLSv1_3")));
        assert!(s.end.is_some(), "{s:?}");
        assert_eq!((m.sender.as_deref(), m.size), (Some("a@example.net"), Some(1234)));
        assert_eq!(m.recipients.len(), 1, "{m:?}");
        assert_eq!(
            (m.recipients[0].rcpt.as_str(), m.recipients[0].outcome.as_str()),
            ("bob@remote.example", "delivered")
        );
    }

    #[test]
    fn a_session_its_recipients_and_their_outcomes_become_records() {
        let mut feed = Feed::default();
        assert!(feed.record(ev::SESSION_PROXY, fields(&[("session", "S1"), ("proxy", "10.0.0.1:9")])).is_empty());
        let r = feed.record(
            ev::SESSION_CONNECT,
            fields(&[
                ("session", "S1"),
                ("listener", "sub"),
                ("peer", "[::ffff:198.51.100.7]:40123"),
                ("local", "1.2.3.4:587"),
            ]),
        );
        assert!(
            matches!(&r[..], [Record::Session { ip, port: 40123, proxy: Some(p), .. }] if ip == "198.51.100.7" && p == "10.0.0.1:9"),
            "{r:?}"
        );
        feed.record(ev::SMTP_MAIL_ACCEPTED, fields(&[("session", "S1")]));
        feed.record(ev::SMTP_RCPT_ACCEPTED, fields(&[("session", "S1"), ("to", "dropped@x.example")]));
        // A second MAIL starts a new transaction: the first's recipients go.
        feed.record(ev::SMTP_MAIL_ACCEPTED, fields(&[("session", "S1")]));
        feed.record(ev::SMTP_RCPT_ACCEPTED, fields(&[("session", "S1"), ("to", "Bob@Remote.Example")]));
        let r = feed.record(
            ev::SMTP_DATA_ACCEPTED,
            fields(&[("session", "S1"), ("id", "S1A"), ("from", "a@b"), ("size", "42")]),
        );
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            matches!(&r[1], Record::Rcpt { rcpt, outcome, .. } if rcpt == "bob@remote.example" && *outcome == "accepted")
        );
        let r = feed.record(
            ev::OUTBOUND_BOUNCED,
            fields(&[("id", "S1A"), ("to", "bob@remote.example"), ("reply", "550 no"), ("expired", "true")]),
        );
        assert!(
            matches!(&r[..], [Record::Rcpt { outcome, detail, .. }] if *outcome == "expired" && detail == "550 no")
        );
        assert!(matches!(
            &feed.record(ev::SESSION_CLOSED, fields(&[("session", "S1")]))[..],
            [Record::SessionEnd { .. }]
        ));
        assert!(feed.sessions.is_empty());
        // A peer that is no address makes no session (nothing to look up by).
        assert!(feed.record(ev::SESSION_CONNECT, fields(&[("session", "S2"), ("peer", "garbage")])).is_empty());
    }
}
