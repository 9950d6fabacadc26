//! Event ids. Add an id here and a row in docs/EVENTS.md in the same commit;
//! the tests below hold the two together.

macro_rules! catalogue {
    ($($name:ident = $id:literal;)*) => {
        $(pub const $name: &str = $id;)*
        /// Every id, for the documentation check and for tools.
        pub const ALL: &[&str] = &[$($id),*];
    };
}

catalogue! {
    SERVER_STARTING = "port25.server.starting";
    SERVER_LISTENING = "port25.server.listening";
    SERVER_STOPPING = "port25.server.stopping";
    SERVER_STOPPED = "port25.server.stopped";
    CONFIG_INVALID = "port25.config.invalid";
    TLS_CERT_GENERATED = "port25.tls.cert.generated";

    SESSION_CONNECT = "port25.session.connect";
    SESSION_REFUSED = "port25.session.refused";
    SESSION_CLOSED = "port25.session.closed";
    SESSION_TIMEOUT = "port25.session.timeout";
    SESSION_PROXY = "port25.session.proxy";
    SESSION_PROXY_INVALID = "port25.session.proxy.invalid";
    SESSION_PROXY_UNTRUSTED = "port25.session.proxy.untrusted";
    SESSION_LIMIT = "port25.session.limit";
    SESSION_PROTOCOL_VIOLATION = "port25.session.protocol_violation";

    SMTP_EHLO = "port25.smtp.ehlo";
    SMTP_STARTTLS = "port25.smtp.starttls";
    SMTP_STARTTLS_FAILED = "port25.smtp.starttls.failed";
    SMTP_MAIL_ACCEPTED = "port25.smtp.mail.accepted";
    SMTP_MAIL_REJECTED = "port25.smtp.mail.rejected";
    SMTP_RCPT_ACCEPTED = "port25.smtp.rcpt.accepted";
    SMTP_RCPT_REJECTED = "port25.smtp.rcpt.rejected";
    SMTP_DATA_ACCEPTED = "port25.smtp.data.accepted";
    SMTP_DATA_REJECTED = "port25.smtp.data.rejected";
    SMTP_COMMAND_REJECTED = "port25.smtp.command.rejected";
    SMTP_AUTH_ACCEPTED = "port25.smtp.auth.accepted";
    SMTP_AUTH_REJECTED = "port25.smtp.auth.rejected";

    MX_VERIFY_FAILED = "port25.mx.verify_failed";

    SUBMISSION_ACCEPTED = "port25.submission.accepted";
    SUBMISSION_AUTH_FAILED = "port25.submission.auth.failed";
    SUBMISSION_LOCKOUT = "port25.submission.lockout";
    SUBMISSION_SENDER_REJECTED = "port25.submission.sender.rejected";
    SUBMISSION_LIMIT = "port25.submission.limit";
    SUBMISSION_LEGACY = "port25.submission.legacy";
    SUBMISSION_FIXED = "port25.submission.fixed";

    SPOOL_RECOVERED = "port25.spool.recovered";
    SPOOL_QUARANTINED = "port25.spool.quarantined";
    SPOOL_WRITE_FAILED = "port25.spool.write_failed";
    SPOOL_READ_FAILED = "port25.spool.read_failed";

    DELIVERY_DELIVERED = "port25.delivery.delivered";
    DELIVERY_DEFERRED = "port25.delivery.deferred";
    DELIVERY_FAILED = "port25.delivery.failed";
    DELIVERY_ATTEMPT_PANICKED = "port25.delivery.attempt_panicked";

    OUTBOUND_QUEUED = "port25.outbound.queued";
    OUTBOUND_DELIVERED = "port25.outbound.delivered";
    OUTBOUND_DEFERRED = "port25.outbound.deferred";
    OUTBOUND_BOUNCED = "port25.outbound.bounced";
    OUTBOUND_DSN = "port25.outbound.dsn";
    OUTBOUND_DSN_SUPPRESSED = "port25.outbound.dsn_suppressed";
    OUTBOUND_CONNECT_FAILED = "port25.outbound.connect_failed";
    OUTBOUND_CONNECTION_PANICKED = "port25.outbound.connection_panicked";
    OUTBOUND_STATS = "port25.outbound.stats";
    OUTBOUND_HELD = "port25.outbound.held";

    ABUSE_SIGNAL = "port25.abuse.signal";
    ABUSE_ACTION = "port25.abuse.action";
    ABUSE_COMPLAINT = "port25.abuse.complaint";
    ABUSE_LOCKED = "port25.abuse.locked";
    ABUSE_NOTICE = "port25.abuse.notice";
    ABUSE_STATE_FAILED = "port25.abuse.state.failed";
    ABUSE_INDEX_FAILED = "port25.abuse.index.failed";
    ABUSE_INDEX_DROPPED = "port25.abuse.index.dropped";
    ABUSE_INDEX_PRUNED = "port25.abuse.index.pruned";
    OUTBOUND_CONTROL = "port25.outbound.control";
    OUTBOUND_DKIM_FAILED = "port25.outbound.dkim_failed";
    OUTBOUND_TARGET_REFUSED = "port25.outbound.target_refused";

    SPAMPOT_CONNECT = "port25.spampot.connect";
    SPAMPOT_PROXY_REQUEST = "port25.spampot.proxy.request";
    SPAMPOT_PROXY_REFUSED = "port25.spampot.proxy.refused";
    SPAMPOT_HTTP_REQUEST = "port25.spampot.http.request";
    SPAMPOT_PROTOCOL_UNKNOWN = "port25.spampot.protocol.unknown";
    SPAMPOT_MESSAGE = "port25.spampot.message";
    SPAMPOT_SESSION_CLOSED = "port25.spampot.session.closed";
    SPAMPOT_LIMIT = "port25.spampot.limit";
    SPAMPOT_QUOTA_ROTATED = "port25.spampot.quota.rotated";
    SPAMPOT_STORE_FAILED = "port25.spampot.store.failed";
    SPAMPOT_SHIP_SENT = "port25.spampot.ship.sent";
    SPAMPOT_SHIP_FAILED = "port25.spampot.ship.failed";
    SPAMPOT_HPFEEDS_FAILED = "port25.spampot.hpfeeds.failed";
    COLLECT_RECEIVED = "port25.collect.received";
    COLLECT_REFUSED = "port25.collect.refused";

    HTTP_LISTENING = "port25.http.listening";
    HTTP_AUTOCONFIG = "port25.http.autoconfig";
    HTTP_LOGIN = "port25.http.login";
    HTTP_LOGIN_FAILED = "port25.http.login.failed";
    HTTP_ERROR = "port25.http.error";
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

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for id in ALL {
            assert!(seen.insert(*id), "duplicate id {id}");
            let parts: Vec<_> = id.split('.').collect();
            assert!(parts.len() >= 3 && parts[0] == "port25", "bad id {id}");
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'), "bad id {id}");
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
                            let looks_like_event =
                                id.matches('.').count() >= 2 && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_');
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
