//! Event ids and the fields each event carries. Add an id here (with its
//! fields) and a row in docs/EVENTS.md in the same commit; the tests below
//! hold the three together: every id documented, every field of an id
//! named in its row, and every `emit!` in the sources writing only the
//! fields listed for its id. Readers of events (the /metrics layer in
//! crates/http) name fields through [`field`], so a field renamed here is
//! renamed for them too.

macro_rules! catalogue {
    ($($name:ident = $id:literal [$($field:ident),* $(,)?];)*) => {
        $(pub const $name: &str = $id;)*
        /// Every id, for the documentation check and for tools.
        pub const ALL: &[&str] = &[$($id),*];
        /// Every event: its constant's name, its id and its fields.
        pub const EVENTS: &[Event] = &[$(Event { name: stringify!($name), id: $id, fields: &[$(stringify!($field)),*] }),*];
    };
}

/// One catalogued event.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The constant's name (`SESSION_CONNECT`).
    pub name: &'static str,
    pub id: &'static str,
    /// The fields its log lines carry (besides `event`); some only on some
    /// lines (a refusal has `reply` or `reason`).
    pub fields: &'static [&'static str],
}

/// The fields of the event `id` (empty for an id not in the catalogue).
pub fn fields(id: &str) -> &'static [&'static str] {
    EVENTS.iter().find(|e| e.id == id).map_or(&[], |e| e.fields)
}

/// Field names that readers of events use (the /metrics layer), so that
/// they name a field the catalogue lists; a test checks each is one.
pub mod field {
    pub const SESSION: &str = "session";
    pub const LISTENER: &str = "listener";
    pub const PEER: &str = "peer";
    pub const HELO: &str = "helo";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const SENDER: &str = "sender";
    pub const USER: &str = "user";
    pub const REPLY: &str = "reply";
    pub const REASON: &str = "reason";
    pub const LIMIT: &str = "limit";
    pub const VIOLATION: &str = "violation";
    pub const SCOPE: &str = "scope";
    pub const KIND: &str = "kind";
    pub const CHECK: &str = "check";
    pub const OUTCOME: &str = "outcome";
    pub const VERDICT: &str = "verdict";
    /// Every constant above.
    pub const ALL: &[&str] = &[
        SESSION, LISTENER, PEER, HELO, FROM, TO, SENDER, USER, REPLY, REASON, LIMIT, VIOLATION, SCOPE, KIND, CHECK,
        OUTCOME, VERDICT,
    ];
}

catalogue! {
    SERVER_STARTING = "port25.server.starting" [version, hostname, data_dir, sensor];
    SERVER_LISTENING = "port25.server.listening" [listener, address, service, tls, proxy_protocol];
    SERVER_STOPPING = "port25.server.stopping" [listener, sessions, note];
    SERVER_STOPPED = "port25.server.stopped" [];
    SERVER_RELOADED = "port25.server.reloaded" [certificate, restart_needed, changed, listeners];
    SERVER_RELOAD_FAILED = "port25.server.reload_failed" [error];
    SERVER_REBIND_FAILED = "port25.server.rebind_failed" [listener, address, error];
    CONFIG_INVALID = "port25.config.invalid" [file, line, error];
    TLS_CERT_GENERATED = "port25.tls.cert.generated" [path, hostname];
    ACME_ORDER_STARTED = "port25.tls.acme.order_started" [directory, domains, reason];
    ACME_CERT_INSTALLED = "port25.tls.acme.installed" [path, domains, serial, not_after, renew_at];
    ACME_ORDER_FAILED = "port25.tls.acme.order_failed" [directory, error, retry_in_secs, attempt];
    ACME_CHALLENGE_SERVED = "port25.tls.acme.challenge_served" [challenge, peer, domain];

    SESSION_CONNECT = "port25.session.connect" [session, listener, peer, local];
    SESSION_REFUSED = "port25.session.refused" [session, peer, reply];
    SESSION_CLOSED = "port25.session.closed" [session, peer, reason, transactions, accepted, seconds];
    SESSION_TIMEOUT = "port25.session.timeout" [session, peer, phase];
    SESSION_PROXY = "port25.session.proxy" [session, proxy, source, destination];
    SESSION_PROXY_INVALID = "port25.session.proxy.invalid" [session, peer, error];
    SESSION_PROXY_UNTRUSTED = "port25.session.proxy.untrusted" [session, listener, peer];
    SESSION_LIMIT = "port25.session.limit" [listener, session, peer, limit, error, max, in_flight];
    SESSION_PROTOCOL_VIOLATION = "port25.session.protocol_violation" [session, peer, violation, bytes];

    SMTP_EHLO = "port25.smtp.ehlo" [session, helo, esmtp];
    SMTP_STARTTLS = "port25.smtp.starttls" [session, version, cipher];
    SMTP_STARTTLS_FAILED = "port25.smtp.starttls.failed" [session, peer, error];
    SMTP_MAIL_ACCEPTED = "port25.smtp.mail.accepted" [session, from];
    SMTP_MAIL_REJECTED = "port25.smtp.mail.rejected" [session, peer, from, reply, reason];
    SMTP_RCPT_ACCEPTED = "port25.smtp.rcpt.accepted" [session, to];
    SMTP_RCPT_REJECTED = "port25.smtp.rcpt.rejected" [session, peer, from, to, reply, reason];
    SMTP_DATA_ACCEPTED = "port25.smtp.data.accepted" [session, peer, id, from, rcpts, size];
    SMTP_DATA_REJECTED = "port25.smtp.data.rejected" [session, peer, from, reason, reply, size];
    SMTP_COMMAND_REJECTED = "port25.smtp.command.rejected" [session, reply];
    SMTP_AUTH_ACCEPTED = "port25.smtp.auth.accepted" [session, peer, user, mechanism];
    SMTP_AUTH_REJECTED = "port25.smtp.auth.rejected" [session, peer, user, mechanism, reply];

    MX_VERIFY_FAILED = "port25.mx.verify_failed" [to, reason];
    MX_AUTH = "port25.mx.auth" [session, peer, from, results, tagged];
    MX_AUTH_REJECTED = "port25.mx.auth.rejected" [session, peer, from, results, reason];
    MX_GREYLIST = "port25.mx.greylist" [session, peer, from, to, action, reason];

    SUBMISSION_ACCEPTED = "port25.submission.accepted" [session, user, id, from, rcpts];
    SUBMISSION_AUTH_FAILED = "port25.submission.auth.failed" [session, peer, user, reason, error];
    SUBMISSION_LOCKOUT = "port25.submission.lockout" [scope, key, failures, seconds];
    SUBMISSION_SENDER_REJECTED = "port25.submission.sender.rejected" [session, user, sender, field, reason, error];
    SUBMISSION_LIMIT = "port25.submission.limit" [session, user, limit, max, retry_after_secs];
    SUBMISSION_LEGACY = "port25.submission.legacy" [session, peer, network, certificate, listener, from, port, user];
    SUBMISSION_FIXED = "port25.submission.fixed" [session, id, added];
    SHARED_UNREACHABLE = "port25.shared.unreachable" [backend, operation, policy, error, suppressed];
    SCREEN_CHECK = "port25.screen.check" [session, peer, check, list, outcome, score, reason];
    SCREEN_VERDICT = "port25.screen.verdict" [session, listener, peer, verdict, check, score, reply, seconds];
    SCREEN_LIST_UNUSABLE = "port25.screen.list_unusable" [list, reason];
    SCREEN_ALLOWLIST_FAILED = "port25.screen.allowlist_failed" [error];


    SPOOL_RECOVERED = "port25.spool.recovered" [batch, messages, done];
    SPOOL_QUARANTINED = "port25.spool.quarantined" [batch, path, error];
    SPOOL_WRITE_FAILED = "port25.spool.write_failed" [batch, error, path];
    SPOOL_READ_FAILED = "port25.spool.read_failed" [batch, error];

    DELIVERY_DELIVERED = "port25.delivery.delivered" [id, to];
    DELIVERY_DEFERRED = "port25.delivery.deferred" [id, to, reason, retry_in];
    DELIVERY_FAILED = "port25.delivery.failed" [id, to, reason];
    DELIVERY_ATTEMPT_PANICKED = "port25.delivery.attempt_panicked" [error];

    OUTBOUND_QUEUED = "port25.outbound.queued" [id, from, rcpts, size, dkim];
    OUTBOUND_DELIVERED = "port25.outbound.delivered" [id, to, host, reply, attempts];
    OUTBOUND_DEFERRED = "port25.outbound.deferred" [id, to, reason, attempts, retry_in];
    OUTBOUND_BOUNCED = "port25.outbound.bounced" [id, to, reply, attempts, expired];
    OUTBOUND_DSN = "port25.outbound.dsn" [id, dsn, to, kind, recipients, error];
    OUTBOUND_DSN_SUPPRESSED = "port25.outbound.dsn_suppressed" [id, to, reason, recipients];
    OUTBOUND_CONNECT_FAILED = "port25.outbound.connect_failed" [destination, host, address, reason, fallback];
    OUTBOUND_CONNECTION_PANICKED = "port25.outbound.connection_panicked" [destination, host, address, error];
    OUTBOUND_STATS = "port25.outbound.stats" [recipients, messages, deferred, oldest_secs, attempts, connections, hold];
    OUTBOUND_HELD = "port25.outbound.held" [id];

    ABUSE_SIGNAL = "port25.abuse.signal" [user, signal, action, evidence];
    ABUSE_ACTION = "port25.abuse.action" [user, action, signal, seconds_since_first_complaint];
    ABUSE_COMPLAINT = "port25.abuse.complaint" [reporter, verdict, user, id, reason];
    ABUSE_LOCKED = "port25.abuse.locked" [session, peer, user];
    ABUSE_NOTICE = "port25.abuse.notice" [to, id, error];
    ABUSE_STATE_FAILED = "port25.abuse.state.failed" [error];
    ABUSE_INDEX_FAILED = "port25.abuse.index.failed" [path, error];
    ABUSE_INDEX_DROPPED = "port25.abuse.index.dropped" [records, queue];
    ABUSE_INDEX_PRUNED = "port25.abuse.index.pruned" [rows, retention_days];
    OUTBOUND_CONTROL = "port25.outbound.control" [command, recipients];
    OUTBOUND_DKIM_FAILED = "port25.outbound.dkim_failed" [id, error];
    OUTBOUND_TARGET_REFUSED = "port25.outbound.target_refused" [destination, host, address, reason];
    OUTBOUND_MTA_STS_POLICY = "port25.outbound.mta_sts.policy" [destination, id, mode, max_age, mx];
    OUTBOUND_MTA_STS_FAILED = "port25.outbound.mta_sts.failed" [destination, result, reason, fallback];
    OUTBOUND_MTA_STS_NO_ROOTS = "port25.outbound.mta_sts.no_roots" [];
    OUTBOUND_TLS_POLICY_FAILED = "port25.outbound.tls_policy.failed" [destination, policy, mode, result, host, address, reason];
    OUTBOUND_DANE = "port25.outbound.dane" [destination, host, records];
    OUTBOUND_DANE_NO_VALIDATION = "port25.outbound.dane.no_validation" [error, dane];
    OUTBOUND_TLS_RPT_FAILED = "port25.outbound.tls_rpt.failed" [path, error];
    OUTBOUND_TLS_RPT_SENT = "port25.outbound.tls_rpt.sent" [destination, day, id, to];

    SPAMPOT_CONNECT = "port25.spampot.connect" [session, listener, peer, protocol];
    SPAMPOT_PROXY_REQUEST = "port25.spampot.proxy.request" [session, peer, proxy_type, username, host, port];
    SPAMPOT_PROXY_REFUSED = "port25.spampot.proxy.refused" [session, peer, proxy_type, reason, host, port];
    SPAMPOT_HTTP_REQUEST = "port25.spampot.http.request" [session, peer, method, url];
    SPAMPOT_PROTOCOL_UNKNOWN = "port25.spampot.protocol.unknown" [session, peer, reason];
    SPAMPOT_MESSAGE = "port25.spampot.message" [session, peer, digest, size, probe, id, from, rcpts];
    SPAMPOT_SESSION_CLOSED = "port25.spampot.session.closed" [session, peer, messages, bytes, bytes_in, bytes_out, reason];
    SPAMPOT_LIMIT = "port25.spampot.limit" [session, peer, reason, listener, error];
    SPAMPOT_QUOTA_ROTATED = "port25.spampot.quota.rotated" [files, bytes, usage, limit];
    SPAMPOT_STORE_FAILED = "port25.spampot.store.failed" [what, error];
    SPAMPOT_SHIP_SENT = "port25.spampot.ship.sent" [segment, acked, status];
    SPAMPOT_SHIP_FAILED = "port25.spampot.ship.failed" [collector, error, retry_in_ms];
    SPAMPOT_HPFEEDS_FAILED = "port25.spampot.hpfeeds.failed" [broker, error, retry_in_ms, dropped];
    COLLECT_RECEIVED = "port25.collect.received" [sensor, segment, offset, events, acked];
    COLLECT_REFUSED = "port25.collect.refused" [peer, sensor, reason, bytes_read, free, named, segment];

    HTTP_LISTENING = "port25.http.listening" [listener, address];
    HTTP_AUTOCONFIG = "port25.http.autoconfig" [kind, domain, peer];
    HTTP_LOGIN = "port25.http.login" [login, peer];
    HTTP_LOGIN_FAILED = "port25.http.login.failed" [login, peer, reason, scope];
    HTTP_ERROR = "port25.http.error" [what, error];
}

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Ids written as `port25.x.y` in backticks in the first column of a table row.
    fn documented() -> BTreeSet<String> {
        let text = std::fs::read_to_string(workspace_root().join("docs/EVENTS.md")).expect("docs/EVENTS.md exists");
        text.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .filter(|id| id.starts_with("port25."))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_id_is_documented_and_every_documented_id_exists() {
        let code: BTreeSet<String> = ALL.iter().map(|s| s.to_string()).collect();
        let docs = documented();
        let undocumented: Vec<_> = code.difference(&docs).collect();
        let stale: Vec<_> = docs.difference(&code).collect();
        assert!(undocumented.is_empty(), "ids missing from docs/EVENTS.md: {undocumented:?}");
        assert!(stale.is_empty(), "docs/EVENTS.md lists ids the code lacks: {stale:?}");
    }

    /// The fields column of each id's row in docs/EVENTS.md.
    fn documented_fields() -> std::collections::BTreeMap<String, String> {
        let text = std::fs::read_to_string(workspace_root().join("docs/EVENTS.md")).expect("docs/EVENTS.md exists");
        text.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| {
                Some((
                    rest.split('`').next()?.to_owned(),
                    rest.trim_end().trim_end_matches('|').rsplit(" | ").next()?.to_owned(),
                ))
            })
            .collect()
    }

    #[test]
    fn every_field_is_named_in_its_row_of_the_documentation() {
        let docs = documented_fields();
        let mut missing = Vec::new();
        for e in super::EVENTS {
            let row = docs.get(e.id).map(String::as_str).unwrap_or_default();
            let words: BTreeSet<&str> = row.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
            missing.extend(e.fields.iter().filter(|f| !words.contains(**f)).map(|f| format!("{} {f}", e.id)));
        }
        assert!(missing.is_empty(), "fields missing from their row in docs/EVENTS.md: {missing:#?}");
    }

    #[test]
    fn the_fields_readers_name_are_catalogued() {
        for f in super::field::ALL {
            assert!(super::EVENTS.iter().any(|e| e.fields.contains(f)), "{f} is no event's field");
        }
    }

    /// The arguments of each `emit!(...)` in `text` (before its tests), with
    /// the line it starts on: strings and nested brackets kept whole.
    fn emits(text: &str) -> Vec<(usize, Vec<String>)> {
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut out = Vec::new();
        for (start, _) in text.match_indices("emit!(") {
            let body = text.get(start + 6..).unwrap_or_default();
            let (mut depth, mut args, mut cur, mut chars) = (1, Vec::new(), String::new(), body.chars());
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        cur.push(c);
                        while let Some(s) = chars.next() {
                            cur.push(s);
                            if s == '\\' {
                                cur.extend(chars.next());
                            } else if s == '"' {
                                break;
                            }
                        }
                        continue;
                    }
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 1 => {
                        args.push(std::mem::take(&mut cur).trim().to_owned());
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                cur.push(c);
            }
            args.push(cur.trim().to_owned());
            out.push((text.get(..start).unwrap_or_default().lines().count(), args));
        }
        out
    }

    /// Every `emit!` in crates/*/src writes only fields its id lists.
    #[test]
    fn every_emit_writes_only_catalogued_fields() {
        let mut bad = Vec::new();
        let mut checked = 0;
        let mut stack = vec![workspace_root().join("crates")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.ends_with("target") && !path.ends_with("tests") {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    for (line, args) in emits(&std::fs::read_to_string(&path).unwrap()) {
                        let Some(name) = args.get(1).map(|a| a.rsplit("::").next().unwrap_or(a)) else { continue };
                        let Some(event) = super::EVENTS.iter().find(|e| e.name == name) else { continue };
                        checked += 1;
                        for arg in args.iter().skip(2).filter(|a| !a.starts_with('"')) {
                            let field: String = arg
                                .trim_start_matches(['%', '?'])
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            if !event.fields.contains(&field.as_str()) {
                                bad.push(format!("{}:{line}: {} has no field {field:?}", path.display(), event.id));
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "found only {checked} emit! calls: the scan is broken");
        assert!(bad.is_empty(), "fields not in the catalogue: {bad:#?}");
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for id in ALL {
            assert!(seen.insert(*id), "duplicate id {id}");
            let parts: Vec<_> = id.split('.').collect();
            assert!(parts.len() >= 3 && parts[0] == "port25", "bad id {id}");
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
                "bad id {id}"
            );
        }
    }

    /// No crate may log an id by string literal outside this catalogue: every
    /// `"port25.` literal in crates/*/src must be one of ALL.
    #[test]
    fn no_uncatalogued_literal_ids_in_sources() {
        let mut bad = Vec::new();
        let crates = workspace_root().join("crates");
        let mut stack = vec![crates];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let mut rest = line;
                        while let Some((_, after)) = rest.split_once("\"port25.") {
                            let (name, tail) = after.split_once('"').unwrap_or((after, ""));
                            let id = format!("port25.{name}");
                            let id = id.as_str();
                            let looks_like_event = id.matches('.').count() >= 2
                                && id
                                    .chars()
                                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_');
                            if looks_like_event && !ALL.contains(&id) {
                                bad.push(format!("{}:{}: {id}", path.display(), n + 1));
                            }
                            rest = tail;
                        }
                    }
                }
            }
        }
        assert!(bad.is_empty(), "uncatalogued event ids: {bad:#?}");
    }
}
