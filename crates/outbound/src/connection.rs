//! One connection task: the route to a destination, a connection to the
//! first MX address that works (once more in cleartext when an
//! opportunistic STARTTLS handshake fails), then the destination's jobs one
//! after another over it. Results go back to the scheduler as events.

use crate::client::{ClientSettings, ConnectFailure, Session, Verdict};
use crate::dns::{Dns, Route};
use crate::queue::Event;
use crate::settings::Settings;
use crate::tls_policy::{policy_for, TlsPolicy};
use port25_events as ev;
use port25_events::emit;
use port25_queue::SpooledMessage;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) struct Job {
    pub msg: Arc<SpooledMessage>,
    /// (entry id, recipient index in msg.rcpts)
    pub entries: Vec<(u64, usize)>,
}

pub(crate) type Jobs = Arc<Mutex<VecDeque<Job>>>;

#[derive(Default)]
pub(crate) struct Dest {
    pub jobs: Jobs,
    pub active: usize,
}

/// What connection tasks share.
pub(crate) struct Ctx {
    pub settings: Arc<Settings>,
    pub dns: Dns,
    pub events: mpsc::UnboundedSender<Event>,
    pub stopping: CancellationToken,
}

pub(crate) fn take(jobs: &Jobs) -> Option<Job> {
    jobs.lock().expect("jobs lock").pop_front()
}

/// Gives every waiting job of the destination the same verdict.
fn fail_all(ctx: &Ctx, jobs: &Jobs, verdict: Verdict, remote: Option<String>) {
    let mut results = Vec::new();
    while let Some(job) = take(jobs) {
        results.extend(job.entries.iter().map(|(id, _)| (*id, verdict.clone())));
    }
    if !results.is_empty() {
        let _ = ctx.events.send(Event::Results { results, remote });
    }
}

/// One connection task: find the route, connect, send jobs until none is
/// left, the connection breaks or `messages_per_connection` is reached.
pub(crate) async fn connection(ctx: &Ctx, dest: &str, jobs: &Jobs) {
    let s = &ctx.settings;
    let (route, port, policy, auth) = match &s.smarthost {
        Some(h) => {
            let policy = if h.require_tls { TlsPolicy::Required } else { TlsPolicy::Opportunistic };
            let auth = h.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            let route = match ctx.dns.addresses(&h.host).await {
                Ok(addrs) if !addrs.is_empty() => Ok(Route::Hosts(vec![crate::dns::Host { name: h.host.clone(), preference: 0, addrs }])),
                Ok(_) => Err(crate::dns::DnsFailure { permanent: false, reason: format!("smarthost {} has no address", h.host) }),
                Err(e) => Err(e),
            };
            (route, h.port, policy, auth)
        }
        None => (ctx.dns.route(dest).await, s.port, policy_for(dest, &s.require_tls), None),
    };
    let hosts = match route {
        Ok(Route::Hosts(h)) => h,
        Ok(Route::NullMx) => {
            let reply = format!("556 5.1.10 {dest} does not accept mail (null MX, RFC 7505)");
            return fail_all(ctx, jobs, Verdict::Failed { reply, status: "5.1.10".into() }, None);
        }
        Err(f) if f.permanent => return fail_all(ctx, jobs, Verdict::Failed { reply: format!("550 5.1.2 {}", f.reason), status: "5.1.2".into() }, None),
        Err(f) => return fail_all(ctx, jobs, Verdict::Deferred { reply: format!("451 4.4.3 {}", f.reason), status: "4.4.3".into() }, None),
    };
    let mut session = None;
    let mut failures = Vec::new();
    let mut tls_failure = false;
    'hosts: for host in &hosts {
        for ip in &host.addrs {
            match connect(SocketAddr::new(*ip, port), &host.name, dest, &s.client, policy, auth).await {
                Ok(sess) => {
                    session = Some(sess);
                    break 'hosts;
                }
                Err(f) => {
                    emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %dest, host = %host.name, address = %ip, reason = %f.reason);
                    tls_failure |= f.tls;
                    failures.push(f.reason);
                }
            }
        }
    }
    let Some(mut session) = session else {
        let status = if tls_failure { "4.7.5" } else { "4.4.1" };
        let reply = format!("451 {status} {}", failures.last().cloned().unwrap_or_else(|| "no host to connect to".into()));
        return fail_all(ctx, jobs, Verdict::Deferred { reply, status: status.into() }, None);
    };
    let remote = Some(format!("{} [{}]", session.host, session.addr.ip()));
    let mut sent = 0;
    while sent < s.messages_per_connection && !ctx.stopping.is_cancelled() {
        let Some(job) = take(jobs) else { break };
        sent += 1;
        let rcpts: Vec<&str> = job.entries.iter().map(|(_, r)| job.msg.rcpts[*r].as_str()).collect();
        match session.send(&job.msg.from, &rcpts, &job.msg.content).await {
            Ok(verdicts) => {
                let results = job.entries.iter().map(|(id, _)| *id).zip(verdicts).collect();
                let _ = ctx.events.send(Event::Results { results, remote: remote.clone() });
            }
            Err(reason) => {
                let verdict = Verdict::Deferred { reply: format!("451 4.4.2 {reason}"), status: "4.4.2".into() };
                let results = job.entries.iter().map(|(id, _)| (*id, verdict.clone())).collect();
                let _ = ctx.events.send(Event::Results { results, remote: remote.clone() });
                return;
            }
        }
    }
    session.quit().await;
}

/// Connects to one MX address; when its STARTTLS handshake fails and TLS
/// is only opportunistic, connects once more without STARTTLS (what
/// Postfix does: plaintext is no worse than no TLS offered at all).
async fn connect(
    addr: SocketAddr,
    host: &str,
    dest: &str,
    client: &ClientSettings,
    policy: TlsPolicy,
    auth: Option<(&str, &str)>,
) -> Result<Session, ConnectFailure> {
    match Session::connect(addr, host, client, policy, auth).await {
        Err(f) if f.retry_cleartext => {
            emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %dest, host = %host, address = %addr.ip(), reason = %f.reason, fallback = "cleartext");
            Session::connect(addr, host, client, TlsPolicy::Cleartext, auth).await
        }
        r => r,
    }
}
