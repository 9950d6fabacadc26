//! What the HTTP side reads besides the event counters: the accounts store
//! (operators; migration records), the spools' gauges (kept in memory by
//! the spools themselves: no spool file is read per request) and a
//! SpamPots capture directory. Each is optional so the router also serves
//! a configuration without them (and tests build it in pieces).

use crate::captures::CaptureStats;
use crate::clients::ClientSettings;
use crate::health::Readiness;
use crate::metrics::{Exposition, Metrics};
use port25_accounts::migration::{self, DomainReport};
use port25_accounts::Accounts;
use port25_events as ev;
use port25_events::emit;
use port25_spool::{Gauges, QueueStatus};
use std::sync::{Arc, Mutex};

pub struct AppState {
    pub clients: ClientSettings,
    pub ready: Readiness,
    pub metrics: Arc<Metrics>,
    pub accounts: Option<Arc<Accounts>>,
    /// (name, what its spool holds): `local` (local delivery) and
    /// `outbound` (remote delivery).
    pub queues: Vec<(&'static str, Gauges)>,
    pub captures: Option<Mutex<CaptureStats>>,
    pub migration_days: u32,
    pub migration_threshold: f64,
    pub sessions: crate::auth::Sessions,
    /// The password gate shared with SMTP AUTH (its accounts are `accounts`).
    pub gate: Option<Arc<port25_accounts::gate::Gate>>,
    /// `[http] trusted_proxies`: whose forwarded headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `[http] cookie_secure`.
    pub cookie_secure: bool,
    /// The abuse desk (crates/abuse, through the binary): its gauges on
    /// /metrics, its logins on the dashboard.
    pub abuse: Option<Arc<dyn AbuseView>>,
}

/// What the HTTP side shows of the abuse desk (docs/abuse.md).
pub trait AbuseView: Send + Sync {
    /// Prometheus text: complaints per login and day, held and locked
    /// logins, first complaint to action.
    fn exposition(&self) -> String;
    /// Logins with an action in force or complaints today.
    fn logins(&self) -> Vec<AbuseRow>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbuseRow {
    pub login: String,
    /// hold, lock, tag, or empty (complaints only)
    pub action: String,
    pub since: String,
    pub reason: String,
    pub complaints_today: i64,
    /// Seconds from the first complaint to the action, when both exist.
    pub to_action_secs: Option<i64>,
}

/// Everything read from disk for one page or scrape.
pub struct Snapshot {
    pub migration: Result<Vec<DomainReport>, String>,
    pub queues: Vec<(&'static str, QueueStatus)>,
    pub captures: Option<Result<CaptureView, String>>,
    /// The abuse desk's logins, when it runs.
    pub abuse: Option<Vec<AbuseRow>>,
}

pub struct CaptureView {
    pub messages: u64,
    pub connections: u64,
    pub last_hour: usize,
    pub sources: usize,
    pub top: Vec<(String, u64)>,
    /// (capture, subject)
    pub recent: Vec<(crate::captures::Captured, Option<String>)>,
}

impl AppState {
    /// Reads the migration records, the spools' gauges and the captures.
    /// Blocking (SQLite, files): call from a blocking thread.
    pub fn snapshot(&self, with_subjects: bool) -> Snapshot {
        let now = port25_time::unix_secs();
        let migration = match &self.accounts {
            Some(a) => a
                .usage()
                .map(|u| migration::report(&u, now as i64, self.migration_days, self.migration_threshold))
                .map_err(|e| e.to_string()),
            None => Err("no account database".into()),
        };
        let queues: Vec<_> = self.queues.iter().map(|(name, gauges)| (*name, gauges.status(now))).collect();
        let captures = self.captures.as_ref().map(|c| {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            c.refresh().map_err(|e| e.to_string())?;
            let hour_ago =
                port25_time::rfc3339_millis(std::time::SystemTime::now() - std::time::Duration::from_secs(3600));
            let recent = c.recent().into_iter().map(|m| {
                let subject = if with_subjects && !m.digest.is_empty() { c.subject(&m.digest) } else { None };
                (m, subject)
            });
            Ok(CaptureView {
                messages: c.messages,
                connections: c.connections,
                last_hour: c.messages_since(&hour_ago),
                sources: c.sources.len(),
                top: c.top_sources(10),
                recent: recent.collect(),
            })
        });
        // "no account database" is a configuration, not an error.
        if let Err(e) = migration.as_ref().map(|_| ()).map_err(String::as_str) {
            if !e.starts_with("no ") {
                emit!(warn, ev::HTTP_ERROR, what = "migration", error = %e);
            }
        }
        if let Some(Err(e)) = &captures {
            emit!(warn, ev::HTTP_ERROR, what = "spampot captures", error = %e);
        }
        let abuse = self.abuse.as_ref().map(|a| a.logins());
        Snapshot { migration, queues, captures, abuse }
    }

    /// The whole /metrics document.
    pub fn exposition(&self) -> String {
        let snap = self.snapshot(false);
        let mut out = Exposition::default();
        self.metrics.render_counters(&mut out);
        out.family("port25_ready", "gauge", "1 when every SMTP listener is bound and the spool is open (/readyz).");
        out.sample("port25_ready", &[], if self.ready.check().is_ok() { 1.0 } else { 0.0 });
        type Field = fn(&QueueStatus) -> f64;
        let fields: [(&str, &str, Field); 5] = [
            (
                "port25_spool_messages",
                "Spooled messages with a recipient not delivered yet, per queue (local, outbound).",
                |q| q.messages as f64,
            ),
            ("port25_spool_recipients", "Recipients not delivered yet, per queue.", |q| q.recipients as f64),
            ("port25_spool_oldest_age_seconds", "Age of the oldest message still waiting, per queue.", |q| {
                q.oldest_age as f64
            }),
            ("port25_spool_bytes", "Size of the queue's batch files.", |q| q.bytes as f64),
            ("port25_spool_quarantined", "Batch files set aside as damaged (see port25.spool.quarantined).", |q| {
                q.quarantined as f64
            }),
        ];
        for (name, help, get) in fields {
            out.family(name, "gauge", help);
            for (queue, q) in &snap.queues {
                out.sample(name, &[("queue", queue.to_string())], get(q));
            }
        }
        if let Ok(m) = &snap.migration {
            out.family(
                "port25_migration_threshold_percent",
                "gauge",
                "The share of active users that must submit only on 587/465.",
            );
            out.sample("port25_migration_threshold_percent", &[], self.migration_threshold);
            type Get = fn(&DomainReport) -> f64;
            let families: [(&str, &str, Get); 4] = [
                ("port25_migration_active_users", "Users who submitted in the migration window, per domain.", |d| d.active as f64),
                ("port25_migration_submission_only_users", "Active users seen only on 587/465, per domain.", |d| d.submission_only as f64),
                ("port25_migration_still_on_25_users", "Active users still submitting on port 25, per domain.", |d| d.still_on_25.len() as f64),
                (
                    "port25_migration_share_percent",
                    "Share of active users submitting only on 587/465, per domain (same figures as port25 migration report).",
                    |d| d.share,
                ),
            ];
            for (name, help, get) in families {
                out.family(name, "gauge", help);
                for d in m {
                    out.sample(name, &[("domain", d.domain.clone())], get(d));
                }
            }
        }
        if let Some(Ok(c)) = &snap.captures {
            out.family(
                "port25_spampot_captures_total",
                "counter",
                "Messages in the SpamPots capture directory ([http] spampot_capture).",
            );
            out.sample("port25_spampot_captures_total", &[], c.messages as f64);
            out.family("port25_spampot_connections_total", "counter", "Connections recorded in the capture directory.");
            out.sample("port25_spampot_connections_total", &[], c.connections as f64);
            out.family("port25_spampot_captures_last_hour", "gauge", "Messages captured in the last hour.");
            out.sample("port25_spampot_captures_last_hour", &[], c.last_hour as f64);
            out.family("port25_spampot_sources", "gauge", "Distinct source addresses that sent captured messages.");
            out.sample("port25_spampot_sources", &[], c.sources as f64);
        }
        if let Some(abuse) = &self.abuse {
            out.text.push_str(&abuse.exposition());
        }
        out.text
    }
}
