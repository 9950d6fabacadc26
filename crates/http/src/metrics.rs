//! Counters fed by the event catalogue, and the Prometheus text format.
//!
//! [`MetricsLayer`] is a tracing layer: every `emit!` in every crate passes
//! through it, so the services need no metrics code of their own and the
//! event ids stay the one contract (docs/EVENTS.md). Only the events it
//! counts reach it ([`READS`], decided once per callsite by tracing),
//! whatever the log level, and of each only the fields it reads
//! are turned into strings: it runs on the sessions' threads, for several
//! events per message. Gauges that describe state (queue, migration, captures)
//! are read at scrape time by [`crate::state`], not counted here.
//!
//! Label values come from bounded sets (listener names, enhanced status
//! codes, reasons the code writes); nothing a client sends becomes a label.

use port25_events as ev;
use port25_events::field;
use port25_events::fields::{Named, Picked, Reads};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::{Context, Layer};

/// Remembered HELO names and listeners of open sessions; beyond this many
/// the oldest are dropped (only a label or a dashboard column is lost).
const MAX_SESSIONS: usize = 50_000;
pub const RECENT_REJECTIONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub time: std::time::SystemTime,
    pub event: &'static str,
    pub listener: String,
    pub peer: String,
    pub helo: String,
    /// The sender, recipient or login concerned, as the client gave it.
    pub subject: String,
    pub reason: String,
}

/// A counter's name and its label pairs.
type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Inner {
    counters: BTreeMap<Key, u64>,
    active: BTreeMap<String, i64>,
    sessions: HashMap<String, (String, String)>,
    order: VecDeque<String>,
    recent: VecDeque<Rejection>,
    /// Screening verdicts per (day since the epoch, verdict, deciding
    /// check), the last [`SCREEN_DAYS`] days.
    screen_days: BTreeMap<(u64, String, String), u64>,
}

/// Days of screening verdicts the dashboard shows.
pub const SCREEN_DAYS: u64 = 14;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The enhanced status code of an SMTP reply ("550 5.7.1 ..." gives
/// "5.7.1"), or its basic code: a bounded label for "why".
fn reply_reason(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or("");
    match words.next() {
        Some(w)
            if w.split('.').count() == 3
                && w.split('.').all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            w.to_owned()
        }
        _ if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => code.to_owned(),
        _ => "other".into(),
    }
}

/// Keeps a label value from a field the code writes short; anything odd
/// (a field that turned out to carry client text) collapses to "other".
fn bounded(v: &str) -> String {
    if !v.is_empty() && v.len() <= 48 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b" _-.:/".contains(&b)) {
        v.to_owned()
    } else {
        "other".into()
    }
}

impl Metrics {
    fn add(inner: &mut Inner, name: &'static str, labels: Vec<(&'static str, String)>) {
        *inner.counters.entry((name, labels)).or_default() += 1;
    }

    /// Counts one catalogued event (the layer calls this; tests too), given
    /// its [`READS`] fields.
    fn observe(&self, id: &str, f: &Picked) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        let session = f.get(field::SESSION).to_owned();
        let stage = |id: &str| id.trim_start_matches("port25.").replace('.', "_");
        match id {
            ev::SESSION_CONNECT => {
                let listener = f.get(field::LISTENER).to_owned();
                Self::add(inner, "port25_sessions_total", vec![("listener", bounded(&listener))]);
                *inner.active.entry(bounded(&listener)).or_default() += 1;
                if inner.order.len() >= MAX_SESSIONS {
                    if let Some(old) = inner.order.pop_front() {
                        inner.sessions.remove(&old);
                    }
                }
                inner.order.push_back(session.clone());
                inner.sessions.insert(session, (listener, String::new()));
            }
            ev::SESSION_CLOSED => {
                if let Some((listener, _)) = inner.sessions.remove(&session) {
                    *inner.active.entry(bounded(&listener)).or_default() -= 1;
                }
            }
            ev::SMTP_EHLO => {
                if let Some(s) = inner.sessions.get_mut(&session) {
                    s.1 = f.get(field::HELO).to_owned();
                }
            }
            ev::SMTP_DATA_ACCEPTED => {
                let listener = inner.sessions.get(&session).map(|s| bounded(&s.0)).unwrap_or_else(|| "unknown".into());
                Self::add(inner, "port25_messages_accepted_total", vec![("listener", listener)]);
            }
            ev::SUBMISSION_AUTH_FAILED => {
                Self::add(inner, "port25_auth_failures_total", vec![("reason", bounded(f.get(field::REASON)))])
            }
            ev::SUBMISSION_LOCKOUT => {
                Self::add(inner, "port25_auth_lockouts_total", vec![("scope", bounded(f.get(field::SCOPE)))])
            }
            ev::SUBMISSION_LEGACY => {
                Self::add(inner, "port25_legacy_submissions_total", vec![("listener", bounded(f.get(field::LISTENER)))])
            }
            ev::DELIVERY_DELIVERED | ev::DELIVERY_DEFERRED | ev::DELIVERY_FAILED => {
                let outcome = id.rsplit('.').next().unwrap_or("other").to_owned();
                Self::add(inner, "port25_delivery_total", vec![("outcome", outcome)]);
            }
            ev::SPAMPOT_MESSAGE => Self::add(inner, "port25_spampot_messages_total", vec![]),
            ev::SCREEN_CHECK => Self::add(
                inner,
                "port25_screen_checks_total",
                vec![("check", bounded(f.get(field::CHECK))), ("outcome", bounded(f.get(field::OUTCOME)))],
            ),
            ev::SCREEN_VERDICT => {
                let check = match f.get(field::CHECK) {
                    "" => "none".to_owned(),
                    c => bounded(c),
                };
                let day = port25_time::unix_secs() / 86_400;
                *inner.screen_days.entry((day, bounded(f.get(field::VERDICT)), check.clone())).or_default() += 1;
                inner.screen_days.retain(|(d, _, _), _| d + SCREEN_DAYS > day);
                Self::add(
                    inner,
                    "port25_screen_verdicts_total",
                    vec![("verdict", bounded(f.get(field::VERDICT))), ("check", check)],
                );
            }
            ev::HTTP_AUTOCONFIG => {
                Self::add(inner, "port25_autoconfig_requests_total", vec![("kind", bounded(f.get(field::KIND)))])
            }
            ev::SMTP_MAIL_REJECTED
            | ev::SMTP_RCPT_REJECTED
            | ev::SMTP_DATA_REJECTED
            | ev::SESSION_REFUSED
            | ev::SESSION_LIMIT
            | ev::SESSION_PROTOCOL_VIOLATION
            | ev::SUBMISSION_SENDER_REJECTED
            | ev::SUBMISSION_LIMIT => {
                let reason =
                    match (f.get(field::REASON), f.get(field::LIMIT), f.get(field::VIOLATION), f.get(field::REPLY)) {
                        (r, _, _, _) if !r.is_empty() => bounded(r),
                        (_, l, _, _) if !l.is_empty() => bounded(l),
                        (_, _, v, _) if !v.is_empty() => bounded(v),
                        (_, _, _, reply) if !reply.is_empty() => reply_reason(reply),
                        _ => "other".into(),
                    };
                Self::add(inner, "port25_rejections_total", vec![("stage", stage(id)), ("reason", reason)]);
                let (listener, helo) = inner.sessions.get(&session).cloned().unwrap_or_default();
                let subject = [f.get(field::FROM), f.get(field::TO), f.get(field::SENDER), f.get(field::USER)]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .unwrap_or("")
                    .to_owned();
                let why = [f.get(field::REPLY), f.get(field::REASON), f.get(field::LIMIT), f.get(field::VIOLATION)]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .unwrap_or("")
                    .to_owned();
                if inner.recent.len() >= RECENT_REJECTIONS {
                    inner.recent.pop_front();
                }
                let event = ev::ALL.iter().copied().find(|e| *e == id).unwrap_or("port25.other");
                inner.recent.push_back(Rejection {
                    time: std::time::SystemTime::now(),
                    event,
                    listener,
                    peer: f.get(field::PEER).to_owned(),
                    helo,
                    subject,
                    reason: why,
                });
            }
            _ => {}
        }
    }

    /// The most recent rejections, newest first.
    pub fn recent_rejections(&self) -> Vec<Rejection> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).recent.iter().rev().cloned().collect()
    }

    /// Screening verdicts per day (days since the epoch, newest first),
    /// verdict and deciding check.
    pub fn screen_days(&self) -> Vec<(u64, String, String, u64)> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = g.screen_days.iter().map(|((d, v, c), n)| (*d, v.clone(), c.clone(), *n)).collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)).then_with(|| a.2.cmp(&b.2)));
        rows
    }

    /// Sum of a counter over all its label sets.
    pub fn total(&self, name: &str) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// The counters and the active-session gauge in the text format.
    pub fn render_counters(&self, out: &mut Exposition) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in COUNTERS {
            out.family(name, "counter", help);
            for ((n, labels), v) in g.counters.iter() {
                if *n == name {
                    out.sample(name, labels, *v as f64);
                }
            }
        }
        out.family("port25_sessions_active", "gauge", "SMTP sessions open now, per listener.");
        for (listener, v) in &g.active {
            out.sample("port25_sessions_active", &[("listener", listener.clone())], *v as f64);
        }
    }
}

const COUNTERS: [(&str, &str); 11] = [
    ("port25_sessions_total", "SMTP sessions accepted, per listener."),
    ("port25_messages_accepted_total", "Messages answered 250 after DATA (on disk), per listener."),
    ("port25_rejections_total", "Refusals: stage is the event (smtp_rcpt_rejected...), reason the enhanced status code or the limit."),
    ("port25_auth_failures_total", "Failed submission logins, per reason."),
    ("port25_auth_lockouts_total", "Brute-force lockouts, per scope (address or login)."),
    ("port25_legacy_submissions_total", "Submissions by the migration's legacy paths (port 25 AUTH, trusted devices)."),
    ("port25_delivery_total", "Delivery attempts per recipient, per outcome (delivered, deferred, failed)."),
    ("port25_spampot_messages_total", "Messages captured by a SpamPots sensor in this process."),
    ("port25_autoconfig_requests_total", "Client configuration documents served, per kind (mozilla, autodiscover, mobileconfig)."),
    ("port25_screen_checks_total", "Screening checks before the banner, per check (end_user, rate, dnsbl, rdns, pregreet, allowlist) and outcome."),
    (
        "port25_screen_verdicts_total",
        "Screening verdicts before the banner (pass, allowlisted, ignore, tag, tempfail, reject, non_smtp, hangup), per deciding check.",
    ),
];

/// Builds Prometheus text exposition format 0.0.4.
#[derive(Default)]
pub struct Exposition {
    pub text: String,
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }
    pub fn sample(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
            let _ = write!(self.text, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// The tracing layer; see the module documentation.
pub struct MetricsLayer(pub Arc<Metrics>);

impl<S: tracing::Subscriber> Layer<S> for MetricsLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        // Only the events in READS get here ([`Named`]); `emit!` makes the
        // id the callsite's name.
        let id = event.metadata().name();
        Picked::read(Named(READS).fields(id), event, |f| self.0.observe(id, f));
    }
}

impl MetricsLayer {
    /// The layer with its callsite filter, ready for `port25_events::init_with`.
    pub fn boxed(metrics: Arc<Metrics>) -> port25_events::ExtraLayer {
        Box::new(MetricsLayer(metrics).with_filter(Named(READS)))
    }
}

/// A rejection is counted by why and listed by who: the fields read.
const REJECTION_READS: &[&str] = &[
    field::SESSION,
    field::REASON,
    field::LIMIT,
    field::VIOLATION,
    field::REPLY,
    field::FROM,
    field::TO,
    field::SENDER,
    field::USER,
    field::PEER,
];

/// The events [`Metrics::observe`] counts and the fields it reads of
/// each: the layer's filter and each event's [`Picked`].
pub const READS: Reads = &[
    (ev::SESSION_CONNECT, &[field::SESSION, field::LISTENER]),
    (ev::SESSION_CLOSED, &[field::SESSION]),
    (ev::SMTP_EHLO, &[field::SESSION, field::HELO]),
    (ev::SMTP_DATA_ACCEPTED, &[field::SESSION]),
    (ev::SUBMISSION_AUTH_FAILED, &[field::REASON]),
    (ev::SUBMISSION_LOCKOUT, &[field::SCOPE]),
    (ev::SUBMISSION_LEGACY, &[field::LISTENER]),
    (ev::DELIVERY_DELIVERED, &[]),
    (ev::DELIVERY_DEFERRED, &[]),
    (ev::DELIVERY_FAILED, &[]),
    (ev::SPAMPOT_MESSAGE, &[]),
    (ev::SCREEN_CHECK, &[field::CHECK, field::OUTCOME]),
    (ev::SCREEN_VERDICT, &[field::CHECK, field::VERDICT]),
    (ev::HTTP_AUTOCONFIG, &[field::KIND]),
    (ev::SMTP_MAIL_REJECTED, REJECTION_READS),
    (ev::SMTP_RCPT_REJECTED, REJECTION_READS),
    (ev::SMTP_DATA_REJECTED, REJECTION_READS),
    (ev::SESSION_REFUSED, REJECTION_READS),
    (ev::SESSION_LIMIT, REJECTION_READS),
    (ev::SESSION_PROTOCOL_VIOLATION, REJECTION_READS),
    (ev::SUBMISSION_SENDER_REJECTED, REJECTION_READS),
    (ev::SUBMISSION_LIMIT, REJECTION_READS),
];

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// What `observe` reads from each event is a field the catalogue
    /// lists for it (a field renamed there must be renamed here), and
    /// every event it counts is a catalogued one.
    #[test]
    fn the_fields_read_per_event_are_catalogued_for_it() {
        for (id, reads) in READS {
            assert!(ev::ALL.contains(id), "{id} is not catalogued");
            if *reads == REJECTION_READS {
                // Counted by why (one of these) and listed by who: each
                // rejection has some of the fields, none has them all.
                let why = [field::REASON, field::LIMIT, field::VIOLATION, field::REPLY];
                assert!(why.iter().any(|w| ev::fields(id).contains(w)), "{id} says no why");
                assert!(ev::fields(id).contains(&field::SESSION), "{id} has no session");
                continue;
            }
            for name in *reads {
                assert!(ev::fields(id).contains(name), "{id} has no field {name}");
            }
        }
        let rejections = [
            ev::SMTP_MAIL_REJECTED,
            ev::SMTP_RCPT_REJECTED,
            ev::SMTP_DATA_REJECTED,
            ev::SESSION_REFUSED,
            ev::SESSION_LIMIT,
            ev::SESSION_PROTOCOL_VIOLATION,
            ev::SUBMISSION_SENDER_REJECTED,
            ev::SUBMISSION_LIMIT,
        ];
        for id in rejections {
            assert_eq!(Named(READS).fields(id), REJECTION_READS, "{id}: a rejection not read as one");
        }
    }

    /// The metrics after `events` went through a real subscriber with the
    /// layer (and its own filter), and their counters as exposed.
    fn observed(events: impl FnOnce()) -> (Arc<Metrics>, String) {
        let m = Arc::new(Metrics::default());
        let subscriber = tracing_subscriber::registry().with(MetricsLayer::boxed(m.clone()));
        tracing::subscriber::with_default(subscriber, events);
        let mut out = Exposition::default();
        m.render_counters(&mut out);
        (m, out.text)
    }

    /// Every event counted, through a real subscriber with the layer's own
    /// filter: an event missing from [`READS`] would count nothing.
    #[test]
    fn each_observed_event_reaches_its_counter_through_the_layers_filter() {
        let (_, text) = observed(|| {
            use port25_events::emit;
            emit!(info, ev::SESSION_CONNECT, session = "s1", listener = "mx", peer = "192.0.2.1:1");
            emit!(info, ev::SESSION_CONNECT, session = "s2", listener = "mx", peer = "192.0.2.1:2");
            emit!(info, ev::SESSION_CLOSED, session = "s2", peer = "192.0.2.1:2");
            emit!(info, ev::SUBMISSION_LOCKOUT, scope = "login", key = "k", failures = 10u64);
            emit!(info, ev::SUBMISSION_LEGACY, session = "s1", listener = "mx", user = "u");
            emit!(info, ev::DELIVERY_DELIVERED, id = "Q1", to = "a@b");
            emit!(info, ev::DELIVERY_FAILED, id = "Q1", to = "c@b", reason = "no such user");
            emit!(info, ev::SPAMPOT_MESSAGE, session = "p1", peer = "192.0.2.9:1", size = 10u64);
            emit!(info, ev::HTTP_AUTOCONFIG, kind = "mozilla", domain = "example.net");
            emit!(info, ev::SESSION_LIMIT, session = "s3", listener = "mx", limit = "per_client");
        });
        for line in [
            "port25_sessions_total{listener=\"mx\"} 2",
            "port25_sessions_active{listener=\"mx\"} 1",
            "port25_auth_lockouts_total{scope=\"login\"} 1",
            "port25_legacy_submissions_total{listener=\"mx\"} 1",
            "port25_delivery_total{outcome=\"delivered\"} 1",
            "port25_delivery_total{outcome=\"failed\"} 1",
            "port25_spampot_messages_total 1",
            "port25_autoconfig_requests_total{kind=\"mozilla\"} 1",
            "port25_rejections_total{stage=\"session_limit\",reason=\"per_client\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn events_become_counters() {
        let (m, text) = observed(|| {
            use port25_events::emit;
            emit!(info, ev::SESSION_CONNECT, session = "s1", listener = "mx", peer = "192.0.2.1:1");
            emit!(debug, ev::SMTP_EHLO, session = "s1", helo = "<script>x</script>");
            emit!(info, ev::SMTP_RCPT_REJECTED, session = "s1", peer = "192.0.2.1:1", to = "a@b", reply = %"554 5.7.1 relay denied");
            emit!(info, ev::SMTP_DATA_ACCEPTED, session = "s1", id = "x");
            emit!(info, ev::SUBMISSION_AUTH_FAILED, session = "s2", user = "u", reason = "wrong password");
            emit!(info, ev::SCREEN_VERDICT, session = "s3", verdict = "reject", check = "end_user", score = 0);
            emit!(info, ev::SCREEN_VERDICT, session = "s4", verdict = "pass", check = "", score = 0);
            emit!(debug, ev::SCREEN_CHECK, session = "s4", check = "dnsbl", list = "bl.example", outcome = "unusable");
            tracing::info!(note = "not catalogued");
        });
        assert!(text.contains("port25_sessions_total{listener=\"mx\"} 1"), "{}", text);
        assert!(text.contains("port25_rejections_total{stage=\"smtp_rcpt_rejected\",reason=\"5.7.1\"} 1"), "{}", text);
        assert!(text.contains("port25_messages_accepted_total{listener=\"mx\"} 1"));
        assert!(text.contains("port25_auth_failures_total{reason=\"wrong password\"} 1"));
        assert!(text.contains("port25_sessions_active{listener=\"mx\"} 1"));
        assert!(text.contains("port25_screen_verdicts_total{verdict=\"reject\",check=\"end_user\"} 1"), "{}", text);
        assert!(text.contains("port25_screen_verdicts_total{verdict=\"pass\",check=\"none\"} 1"), "{}", text);
        assert!(text.contains("port25_screen_checks_total{check=\"dnsbl\",outcome=\"unusable\"} 1"), "{}", text);
        let days = m.screen_days();
        assert_eq!(
            days.iter().map(|r| (r.1.as_str(), r.2.as_str(), r.3)).collect::<Vec<_>>(),
            vec![("pass", "none", 1), ("reject", "end_user", 1)]
        );
        let r = m.recent_rejections();
        assert_eq!(
            (r[0].helo.as_str(), r[0].subject.as_str(), r[0].listener.as_str()),
            ("<script>x</script>", "a@b", "mx")
        );
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(reply_reason("550 5.1.1 no such user"), "5.1.1");
        assert_eq!(reply_reason("421 too busy"), "421");
        assert_eq!(bounded("<evil>\n"), "other");
        let mut e = Exposition::default();
        e.sample("x", &[("l", "a\"b\\c\nd".into())], 1.0);
        assert_eq!(e.text, "x{l=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
