//! The abuse desk in `port25 serve` (crates/abuse, docs/abuse.md): opened
//! from `[abuse]`, fed by the event layer, watching submission, holding
//! mail in the outbound queue, ticking every second; and `port25 trace`.

use port25_abuse::index::{parse_utc, Query, Reader, Trace};
use port25_abuse::signals::{Action, Rules};
use port25_abuse::{Desk, Notice};
use port25_config::Config;
use port25_engine::SessionInfo;
use port25_events as ev;
use port25_events::emit;
use port25_outbound::bounce::LocalMailboxes;
use port25_spool::{Spool, SpooledMessage};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn action(s: &str) -> Action {
    Action::parse(s).expect("checked by the configuration")
}

/// Opens the desk when `[abuse] enabled` (the default).
pub fn open(config: &Config) -> anyhow::Result<Option<Arc<Desk>>> {
    let a = &config.abuse;
    if !a.enabled {
        return Ok(None);
    }
    let enrich = match a.enrichment.is_empty() {
        true => None,
        false => {
            let mut e = port25_report::enrich::Enricher::default();
            for p in &a.enrichment {
                e.add(p).map_err(|e| anyhow::anyhow!("[abuse] enrichment: {e}"))?;
            }
            Some(e)
        }
    };
    let rules = Rules {
        recipients_per_day: a.recipients_per_day,
        messages_per_day: a.messages_per_day,
        jump_factor: a.jump_factor,
        complaints_per_day: a.complaints_per_day,
        bounces_per_day: a.bounces_per_day,
        on_complaints: action(&a.on_complaints),
        on_volume: action(&a.on_volume),
        on_new_network: action(&a.on_new_network),
        on_new_asn: action(&a.on_new_asn),
        on_new_country: action(&a.on_new_country),
        on_bounces: action(&a.on_bounces),
    };
    let desk = Desk::open(port25_abuse::Config {
        data_dir: config.data_dir.clone(),
        hostname: config.hostname.clone(),
        retention: a.retention,
        rules,
        lock_text: a.lock_text.clone(),
        notify: a.notify.clone(),
        mailbox: a.mailbox.clone(),
        enrich,
        reports_per_hour: a.reports_per_reporter_per_hour,
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open the abuse desk's database {}: {e}",
            port25_abuse::desk::db_path(&config.data_dir).display()
        )
    })?;
    Ok(Some(desk))
}

/// Submission's view of the desk.
pub struct Watch(pub Arc<Desk>);

impl port25_submission::Watch for Watch {
    fn locked(&self, login: &str) -> Option<String> {
        self.0.locked(login)
    }
    fn logged_in(&self, info: &SessionInfo, login: &str) {
        self.0.logged_in(&info.id, login, info.peer.ip(), info.tls.as_ref().map(|t| t.version.as_str()));
    }
    fn submitted(
        &self,
        info: &SessionInfo,
        login: &str,
        id: &str,
        message_id: Option<&str>,
        rcpts: &[String],
    ) -> Option<Box<dyn FnOnce() + Send>> {
        self.0.submit(&info.id, id, login, message_id, rcpts)
    }
}

/// The HTTP side's view of the desk (/metrics, the dashboard).
pub struct View(pub Arc<Desk>);

impl port25_http::state::AbuseView for View {
    fn exposition(&self) -> String {
        self.0.metrics()
    }
    fn logins(&self) -> Vec<port25_http::state::AbuseRow> {
        self.0
            .logins()
            .into_iter()
            .map(|l| port25_http::state::AbuseRow {
                login: l.login,
                action: l.action.unwrap_or_default(),
                since: l.since.unwrap_or_default(),
                reason: l.reason.unwrap_or_default(),
                complaints_today: l.complaints_today,
                to_action_secs: l.to_action_secs,
            })
            .collect()
    }
}

/// The outbound queue asks the desk which messages to keep.
pub fn holds(desk: &Option<Arc<Desk>>) -> port25_outbound::settings::Holds {
    match desk {
        Some(d) => {
            let d = d.clone();
            port25_outbound::settings::Holds::new(move |id| d.held(id))
        }
        None => Default::default(),
    }
}

/// Ticks the desk every second (on a thread: it reads files and SQLite)
/// until `stop`; notices to `[abuse] notify` are stored as mail, local
/// addresses by local delivery, others through the outbound queue.
pub fn start(
    desk: Arc<Desk>,
    config: &Config,
    local: Spool,
    outbound: port25_outbound::Enqueuer,
    mailboxes: Arc<dyn LocalMailboxes>,
    stop: CancellationToken,
) {
    let handle = tokio::runtime::Handle::current();
    let (hostname, domains) = (config.hostname.clone(), config.mx.domains.clone());
    desk.on_notice(Box::new(move |n: Notice| {
        let (local, outbound, mailboxes, hostname, domains) = (local.clone(), outbound.clone(), mailboxes.clone(), hostname.clone(), domains.clone());
        handle.spawn(async move {
            let id = port25_engine::session_id();
            let date = port25_engine::received::rfc5322_date(std::time::SystemTime::now());
            let content = format!(
                "From: port25 abuse desk <postmaster@{hostname}>\r\nTo: <{}>\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{id}@{hostname}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
                n.to, n.subject, n.text
            );
            let mut msg = SpooledMessage {
                id: id.clone(),
                received_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                peer: "127.0.0.1:0".into(),
                helo: hostname.clone(),
                from: String::new(),
                rcpts: vec![n.to.clone()],
                content: content.into_bytes(),
                from_mx: false,
            };
            let domain = n.to.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
            let stored = if domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
                match mailboxes.mailbox_of(&n.to).await {
                    Ok(Some(mailbox)) => {
                        msg.rcpts = vec![mailbox];
                        local.commit(msg).await.map_err(|e| e.to_string())
                    }
                    Ok(None) => Err("the notify address is in a local domain but has no mailbox".into()),
                    Err(e) => Err(e),
                }
            } else {
                outbound.enqueue(msg).await.map_err(|e| e.to_string())
            };
            match stored {
                Ok(()) => emit!(info, ev::ABUSE_NOTICE, to = %n.to, id = %id),
                Err(e) => emit!(error, ev::ABUSE_NOTICE, to = %n.to, id = %id, error = %e),
            }
        });
    }));
    let _ = std::thread::Builder::new().name("abuse-desk".into()).spawn(move || {
        while !stop.is_cancelled() {
            desk.tick();
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    port25 trace --message-id '<5f1c@laptop.example>'\n  \
    port25 trace --queue-id 18C2A9B7E4100001\n  \
    port25 trace --client 203.0.113.7:40123 --from 2026-12-02T13:00:00Z --to 2026-12-02T14:00:00Z\n  \
    port25 trace --client 2001:db8::7 --from 2026-12-02 --json\n\n\
    Times are UTC (a trailing Z is optional), or seconds since 1970. The index is\n\
    data_dir/abuse/abuse.sqlite, kept by `port25 serve` ([abuse] retention_days).")]
pub struct TraceArgs {
    /// The Message-ID header of the message (with or without <>)
    #[arg(long, group = "key")]
    message_id: Option<String>,
    /// port25's queue id ("queued as ..." in the 250 reply, "id" in our Received header)
    #[arg(long, group = "key")]
    queue_id: Option<String>,
    /// The client's address, with its source port where known (RFC 6302):
    /// 203.0.113.7:40123, [2001:db8::7]:40123, or an address alone
    #[arg(long, group = "key")]
    client: Option<String>,
    /// Start of the time window for --client (default: 24 hours ago)
    #[arg(long)]
    from: Option<String>,
    /// End of the time window for --client (default: now)
    #[arg(long)]
    to: Option<String>,
    /// One JSON object (sessions, messages with recipients) for scripts
    #[arg(long)]
    json: bool,
    /// Sessions shown at most
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Configuration file, to find data_dir
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn client(s: &str) -> Option<(std::net::IpAddr, Option<u16>)> {
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    s.trim_start_matches('[').trim_end_matches(']').parse().ok().map(|ip| (ip, None))
}

pub fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => match port25_config::load(p) {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => port25_config::embedded_default(),
    };
    let query = match (&args.message_id, &args.queue_id, &args.client) {
        (Some(m), _, _) => Query::MessageId(m.clone()),
        (_, Some(q), _) => Query::QueueId(q.clone()),
        (_, _, Some(c)) => {
            let Some((ip, port)) = client(c) else {
                errln!("port25 trace: --client {c:?} is not an address or address:port (IPv6 with a port: [2001:db8::7]:40123)");
                return Ok(ExitCode::from(2));
            };
            let now = port25_abuse::index::now_ms();
            let time = |v: &Option<String>, default: i64, name: &str| -> Result<i64, String> {
                match v {
                    None => Ok(default),
                    Some(t) => parse_utc(t)
                        .ok_or_else(|| format!("port25 trace: --{name} {t:?} is not a time: write 2026-12-02T13:14:05Z (UTC) or seconds since 1970")),
                }
            };
            let (from_ms, to_ms) = match (time(&args.from, now - 86_400_000, "from"), time(&args.to, now, "to")) {
                (Ok(f), Ok(t)) => (f, t),
                (Err(e), _) | (_, Err(e)) => {
                    errln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            };
            Query::Client { ip, port, from_ms, to_ms }
        }
        (None, None, None) => {
            errln!("port25 trace: give --message-id, --queue-id or --client (see port25 trace --help)");
            return Ok(ExitCode::from(2));
        }
    };
    let path = port25_abuse::desk::db_path(&config.data_dir);
    if !path.exists() {
        errln!(
            "port25 trace: no index at {} ([abuse] enabled = true in the server's configuration, and has it run?)",
            path.display()
        );
        return Ok(ExitCode::from(2));
    }
    let reader = Reader::open(&path).map_err(|e| anyhow::anyhow!("cannot open the index {}: {e}", path.display()))?;
    let t = reader.trace(&query, args.limit.max(1))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print_trace(&t);
    }
    Ok(if t.sessions.is_empty() && t.messages.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_trace(t: &Trace) {
    if t.sessions.is_empty() && t.messages.is_empty() {
        outln!("nothing found");
        return;
    }
    for s in &t.sessions {
        let client = match s.client_ip.contains(':') {
            true => format!("[{}]:{}", s.client_ip, s.client_port),
            false => format!("{}:{}", s.client_ip, s.client_port),
        };
        outln!("session {} on listener {} ({})", s.session, s.listener, s.local);
        outln!(
            "  client  {client}{}",
            s.proxied_by.as_deref().map(|p| format!(" (via proxy {p})")).unwrap_or_default()
        );
        outln!("  time    {} .. {}", s.start, s.end.as_deref().unwrap_or("(open)"));
        outln!("  login   {}", s.login.as_deref().unwrap_or("(none)"));
        outln!("  tls     {}", s.tls.as_deref().unwrap_or("(none)"));
        for m in t.messages.iter().filter(|m| m.session == s.session) {
            print_message(m);
        }
    }
    for m in t.messages.iter().filter(|m| !t.sessions.iter().any(|s| s.session == m.session)) {
        outln!("session {} (not in the index any more)", m.session);
        print_message(m);
    }
}

fn print_message(m: &port25_abuse::index::MessageRow) {
    outln!("  message {} at {}", m.queue_id, m.time);
    outln!("    message-id  {}", m.message_id.as_deref().map(|x| format!("<{x}>")).unwrap_or("(none)".into()));
    outln!("    login       {}", m.login.as_deref().unwrap_or("(none)"));
    outln!(
        "    mail from   <{}>  size {}",
        m.sender.as_deref().unwrap_or(""),
        m.size.map(|s| s.to_string()).unwrap_or("?".into())
    );
    for r in &m.recipients {
        outln!(
            "    rcpt        {}  {} at {}{}",
            r.rcpt,
            r.outcome,
            r.time,
            if r.detail.is_empty() { String::new() } else { format!(": {}", r.detail) }
        );
    }
}

fn desk_db(config: &Config) -> anyhow::Result<port25_abuse::desk::Db> {
    let path = port25_abuse::desk::db_path(&config.data_dir);
    port25_abuse::desk::open_db(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the abuse desk's database {}: {e}", path.display()))
}

/// `port25 users explain LOGIN`.
pub fn explain(config: &Config, login: &str, json: bool) -> anyhow::Result<ExitCode> {
    let e = port25_abuse::desk::explain(&desk_db(config)?, login)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(ExitCode::SUCCESS);
    }
    match (&e.action, &e.since) {
        (Some(a), Some(since)) => outln!("{login}: {a} since {since}\n  why: {}", e.reason.as_deref().unwrap_or("")),
        _ => outln!("{login}: no action in force"),
    }
    if let Some(f) = &e.first_complaint {
        outln!("  first complaint: {f}");
    }
    if e.signals.is_empty() {
        outln!("signals: none");
    } else {
        outln!("signals (newest first):");
        for s in &e.signals {
            outln!("  {}  {:<12} {:<5} {}", s.time, s.signal, s.action, s.evidence);
        }
    }
    if !e.days.is_empty() {
        outln!(
            "history (UTC days):\n  {:<10} {:>8} {:>10} {:>10} {:>7}",
            "day",
            "messages",
            "recipients",
            "complaints",
            "bounces"
        );
        for d in &e.days {
            outln!("  {:<10} {:>8} {:>10} {:>10} {:>7}", d.day, d.messages, d.recipients, d.complaints, d.bounces);
        }
    }
    if !e.networks.is_empty() {
        outln!("came from:");
        for (kind, value, first) in &e.networks {
            outln!("  {kind:<8} {value:<24} first {first}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `port25 users release LOGIN`.
pub fn release(config: &Config, login: &str) -> anyhow::Result<ExitCode> {
    match port25_abuse::desk::release(&desk_db(config)?, login)? {
        Some(was) => outln!("{login}: {was} lifted (the server applies it within a second; held mail goes out)"),
        None => outln!("{login}: no action was in force"),
    }
    Ok(ExitCode::SUCCESS)
}
