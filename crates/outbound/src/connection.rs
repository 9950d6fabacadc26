//! One connection task: a connection to one MX address (once more in
//! cleartext when an opportunistic STARTTLS handshake fails), then the jobs
//! waiting for that address one after another over it, whatever their
//! domain. With nothing left to send it stays open `idle_connection` for
//! the next message (as Postfix's connection cache does), unless another
//! destination needs its connection slot. Results go back as events.

use crate::client::{ClientSettings, ConnectFailure, Session, Verdict};
use crate::dest::{Job, Shared, Target};
use crate::queue::Event;
use crate::settings::Settings;
use crate::tls_policy::TlsPolicy;
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// What connection tasks share.
pub(crate) struct Ctx {
    pub settings: Arc<Settings>,
    pub dns: crate::dns::Dns,
    pub events: mpsc::UnboundedSender<Event>,
    pub stopping: CancellationToken,
    /// Every connection slot is taken and a destination waits: idle
    /// connections close.
    pub slots_wanted: Notify,
}

/// Runs one connection to `target`; `Err` when it could not be set up.
pub(crate) async fn connection(ctx: &Ctx, target: &Target, host: &str, shared: &Shared) -> Result<(), ConnectFailure> {
    let s = &ctx.settings;
    let auth = s.smarthost.as_ref().and_then(|h| h.auth.as_ref()).map(|(u, p)| (u.as_str(), p.as_str()));
    let mut session = match connect(target.addr, host, shared, &s.client, target.policy, auth).await {
        Ok(session) => session,
        Err(f) => {
            emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %shared.domains(), host = %host, address = %target.addr.ip(), reason = %f.reason);
            return Err(f);
        }
    };
    shared.connected.fetch_add(1, Ordering::SeqCst);
    let mut sent = 0;
    let mut broken = false;
    while sent < s.messages_per_connection && !ctx.stopping.is_cancelled() {
        let Some(job) = next_job(ctx, shared).await else { break };
        sent += 1;
        // Reports name the MX of the job's own domain: domains sharing the
        // address may know it by other names (the session's SNI is the
        // first job's; a connection has only one).
        let remote = Some(format!("{} [{}]", job.mx_host(), session.addr.ip()));
        let rcpts: Vec<&str> = job.entries.iter().map(|(_, r)| job.msg.rcpts[*r].as_str()).collect();
        let results = match session.send(&job.msg.from, &rcpts, &job.msg.content).await {
            Ok(verdicts) => job.entries.iter().map(|(id, _)| *id).zip(verdicts).collect(),
            Err(reason) => {
                broken = true;
                let verdict = Verdict::Deferred { reply: format!("451 4.4.2 {reason}"), status: "4.4.2".into() };
                job.entries.iter().map(|(id, _)| (*id, verdict.clone())).collect()
            }
        };
        let _ = ctx.events.send(Event::Results { results, remote });
        if broken {
            break;
        }
    }
    shared.connected.fetch_sub(1, Ordering::SeqCst);
    if !broken {
        session.quit().await;
    }
    Ok(())
}

/// The next job for this address: one waiting now, or one that arrives
/// while the connection idles; `None` to close.
async fn next_job(ctx: &Ctx, shared: &Shared) -> Option<Job> {
    let deadline = tokio::time::Instant::now() + ctx.settings.idle_connection;
    loop {
        if let Some(job) = shared.take() {
            return Some(job);
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = ctx.stopping.cancelled() => return None,
            _ = ctx.slots_wanted.notified() => return None,
        }
    }
}

/// Connects to one MX address; when its STARTTLS handshake fails and TLS
/// is only opportunistic, connects once more without STARTTLS (what
/// Postfix does: plaintext is no worse than no TLS offered at all).
async fn connect(
    addr: SocketAddr,
    host: &str,
    shared: &Shared,
    client: &ClientSettings,
    policy: TlsPolicy,
    auth: Option<(&str, &str)>,
) -> Result<Session, ConnectFailure> {
    match Session::connect(addr, host, client, policy, auth).await {
        Err(f) if f.retry_cleartext => {
            emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %shared.domains(), host = %host, address = %addr.ip(), reason = %f.reason, fallback = "cleartext");
            Session::connect(addr, host, client, TlsPolicy::Cleartext, auth).await
        }
        r => r,
    }
}
