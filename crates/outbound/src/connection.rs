//! One connection task: a connection to one MX address (once more in
//! cleartext when an opportunistic STARTTLS handshake fails), then the jobs
//! waiting for that address one after another over it, whatever their
//! domain. With nothing left to send it stays open `idle_connection` for
//! the next message (as Postfix's connection cache does), unless another
//! destination waits for its connection slot ([`Slots`]). Results go back
//! as events.

use crate::client::{ClientSettings, ConnectFailure, Session, Verdict};
use crate::dest::{Job, Shared, Target};
use crate::queue::Event;
use crate::settings::Settings;
use crate::tls_policy::TlsPolicy;
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// What connection tasks share.
pub(crate) struct Ctx {
    pub settings: Arc<Settings>,
    pub dns: crate::dns::Dns,
    pub events: mpsc::UnboundedSender<Event>,
    pub stopping: CancellationToken,
    /// Destinations waiting for a connection slot: idle connections give
    /// theirs up.
    pub slots: Slots,
    /// TLS-RPT: sessions under a policy, counted per domain and day.
    pub reports: Option<Arc<crate::tls_rpt::TlsRpt>>,
}

impl Ctx {
    /// Counts one session to `host` for `domain` under `policy` (TLS-RPT)
    /// and logs a failure.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        domain: &str,
        sts: &crate::tls_rpt::PolicyDesc,
        mode: TlsPolicy,
        host: &str,
        addr: SocketAddr,
        local: Option<std::net::IpAddr>,
        failure: Option<(&'static str, &str)>,
    ) {
        if let Some((result, reason)) = failure {
            let mode = match mode {
                TlsPolicy::Sts => "enforce",
                TlsPolicy::Dane => "dane",
                _ => "testing",
            };
            emit!(warn, ev::OUTBOUND_TLS_POLICY_FAILED, destination = %domain, policy = sts.policy_type, mode = mode, result = result, host = %host, address = %addr.ip(), reason = %reason);
        }
        let Some(reports) = &self.reports else { return };
        match failure {
            None => reports.success(domain, sts),
            Some((result_type, info)) => reports.failure(
                domain,
                sts,
                &crate::tls_rpt::Failure {
                    result_type,
                    receiving_mx_hostname: Some(host),
                    receiving_ip: Some(addr.ip()),
                    sending_mta_ip: local,
                    additional_information: info,
                },
            ),
        }
    }
}

/// The destinations that have jobs but no connection because every slot
/// (`max_connections`) is taken, and the idle connections closing for
/// them. A level, not a wake-up: a connection that goes idle later (it
/// was sending when the destination started waiting) still sees it, so
/// an idle connection never holds a slot a destination waits for.
#[derive(Default)]
pub(crate) struct Slots {
    /// Set by the queue after every routing and every closed connection.
    starved: AtomicUsize,
    /// Idle connections that chose to close and whose end the queue has
    /// not seen yet: one per starved destination is enough.
    yielding: AtomicUsize,
    /// Wakes the connections that are idle when `starved` is set.
    wake: Notify,
}

impl Slots {
    pub fn set_starved(&self, n: usize) {
        self.starved.store(n, Ordering::SeqCst);
        if n > self.yielding.load(Ordering::SeqCst) {
            self.wake.notify_waiters();
        }
    }

    /// An idle connection asks whether to close for a waiting destination:
    /// yes for as many connections as destinations wait.
    pub fn claim(&self) -> bool {
        let starved = self.starved.load(Ordering::SeqCst);
        self.yielding.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |y| (y < starved).then_some(y + 1)).is_ok()
    }

    /// The queue saw a connection that claimed its slot close.
    pub fn yielded(&self) {
        let _ = self.yielding.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |y| y.checked_sub(1));
    }
}

/// Runs one connection to `target`; `Err` when it could not be set up,
/// `Ok(true)` when it closed to give its slot to a waiting destination.
pub(crate) async fn connection(
    ctx: &Ctx,
    target: &Target,
    host: &str,
    shared: &Shared,
) -> Result<bool, ConnectFailure> {
    let s = &ctx.settings;
    let auth = s.smarthost.as_ref().and_then(|h| h.auth.as_ref()).map(|(u, p)| (u.as_str(), p.as_str()));
    let (mut session, retried) = match connect(ctx, target.addr, host, shared, target.policy, auth).await {
        Ok(session) => session,
        Err(f) => {
            emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %shared.domains(), host = %host, address = %target.addr.ip(), reason = %f.reason);
            return Err(f);
        }
    };
    shared.connected.fetch_add(1, Ordering::SeqCst);
    let mut sent = 0;
    let mut broken = false;
    let mut yielded = false;
    // Domains whose session this connection already counted (TLS-RPT).
    let mut counted: Vec<String> = Vec::new();
    while sent < s.messages_per_connection && !ctx.stopping.is_cancelled() {
        let job = match next_job(ctx, shared).await {
            Next::Job(job) => job,
            Next::Close => break,
            Next::Yield => {
                yielded = true;
                break;
            }
        };
        sent += 1;
        if let (true, Some(sts)) = (target.policy.sts(), job.reported()) {
            // The session was checked for the first job's MX name; another
            // domain's MX at the same address is checked for its own.
            let check = if !session.tls {
                Err(("starttls-not-supported", format!("{} did not do TLS", job.mx_host())))
            } else if let (TlsPolicy::Dane, Some(dane)) = (target.policy, job.dane()) {
                session.verify_dane(&dane)
            } else if target.policy == TlsPolicy::Dane {
                Err(("tlsa-invalid", format!("no TLSA records for {}", job.mx_host())))
            } else if job.mx_host().eq_ignore_ascii_case(&session.host) {
                session.tls_failure.clone().map_or(Ok(()), Err)
            } else {
                session.verify_mx(job.mx_host())
            };
            if !counted.contains(&job.domain) && !retried {
                counted.push(job.domain.clone());
                let failure = check.as_ref().err().map(|(r, why)| (*r, why.as_str()));
                ctx.report(&job.domain, &sts, target.policy, job.mx_host(), session.addr, session.local_ip, failure);
            }
            if let (true, Err((_, why))) = (target.policy.enforced(), &check) {
                // Never sent: deferred until a certificate valid for its MX.
                let verdict = Verdict::Deferred { reply: format!("451 4.7.5 {why}"), status: "4.7.5".into() };
                let results = job.entries.iter().map(|(id, _)| (*id, verdict.clone())).collect();
                let _ = ctx.events.send(Event::Results { results, remote: None });
                continue;
            }
        }
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
    Ok(yielded)
}

enum Next {
    Job(Job),
    /// Idle too long, or stopping.
    Close,
    /// Close: a destination waits for this connection's slot.
    Yield,
}

/// The next job for this address: one waiting now, or one that arrives
/// while the connection idles.
async fn next_job(ctx: &Ctx, shared: &Shared) -> Next {
    let deadline = tokio::time::Instant::now() + ctx.settings.idle_connection;
    loop {
        if let Some(job) = shared.take() {
            return Next::Job(job);
        }
        // Listening before looking: a destination that starts waiting
        // between the look and the select still wakes us.
        let wanted = ctx.slots.wake.notified();
        tokio::pin!(wanted);
        wanted.as_mut().enable();
        if ctx.slots.claim() {
            return Next::Yield;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return Next::Close,
            _ = ctx.stopping.cancelled() => return Next::Close,
            _ = &mut wanted => {}
        }
    }
}

/// Connects to one MX address; when its STARTTLS handshake fails and TLS
/// is only opportunistic (or MTA-STS `testing`), connects once more
/// without STARTTLS (what Postfix does: plaintext is no worse than no TLS
/// offered at all), and says so (`true`: that session's failure is
/// already counted for TLS-RPT). A failure under an MTA-STS policy is
/// counted for every domain waiting here.
async fn connect(
    ctx: &Ctx,
    addr: SocketAddr,
    host: &str,
    shared: &Shared,
    policy: TlsPolicy,
    auth: Option<(&str, &str)>,
) -> Result<(Session, bool), ConnectFailure> {
    let client: &ClientSettings = &ctx.settings.client;
    let report = |f: &ConnectFailure| {
        if let (true, Some(result)) = (policy.sts(), f.result) {
            for (domain, sts) in shared.sts_domains() {
                ctx.report(&domain, &sts, policy, host, addr, None, Some((result, &f.reason)));
            }
        }
    };
    let dane = shared.first_dane();
    match Session::connect(addr, host, client, policy, auth, dane.as_deref()).await {
        Err(f) if f.retry_cleartext => {
            report(&f);
            emit!(info, ev::OUTBOUND_CONNECT_FAILED, destination = %shared.domains(), host = %host, address = %addr.ip(), reason = %f.reason, fallback = "cleartext");
            Session::connect(addr, host, client, TlsPolicy::Cleartext, auth, None).await.map(|s| (s, true))
        }
        Err(f) => {
            report(&f);
            Err(f)
        }
        Ok(s) => Ok((s, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_idle_connection_closes_per_waiting_destination() {
        let slots = Slots::default();
        assert!(!slots.claim(), "nobody waits: idle connections stay");
        slots.set_starved(2);
        assert!(slots.claim() && slots.claim());
        assert!(!slots.claim(), "two destinations wait: two connections close, not more");
        // One closed and its destination got the slot; the other still waits.
        slots.yielded();
        slots.set_starved(1);
        assert!(!slots.claim(), "the second connection is still closing for it");
        slots.yielded();
        assert!(slots.claim(), "that one closed but the slot went elsewhere: the next idle one closes");
        slots.yielded();
        slots.set_starved(0);
        assert!(!slots.claim());
    }
}
