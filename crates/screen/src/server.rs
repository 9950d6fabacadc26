//! The screened port-25 listener: postscreen's model in one process. Per
//! connection, after the PROXY header (only from trusted proxies) and the
//! per-client cap:
//!
//! 1. the operator's end-user space and the connection rate are judged at
//!    once; refused there, the client's greeting is the refusal;
//! 2. a client with an unexpired pass is handed over at once;
//! 3. else it gets the `220-` teaser, and for `greet_wait` the lists and
//!    reverse DNS are asked while whatever it sends is watched: a client
//!    that talks before the banner is a pregreeter (a bot that does not
//!    wait for the server), one that sends HTTP or a proxy request gets
//!    521;
//! 4. the verdict refuses it (554 5.7.1 with the reason, or 421 4.7.1, then
//!    close) or hands the socket to the engine, whose banner line
//!    `220 ...` completes the multi-line greeting. A pass is allowlisted
//!    for `pass_ttl`.
//!
//! Clients take the last line's code of a multi-line reply (RFC 5321
//! §4.2.1), so a refusal after the teaser is read as the refusal.

use crate::lookup::Lookups;
use crate::verdict::{self, Evidence, Outcome, Pregreet, Rdns, Verdict, PREGREET_KEEP};
use crate::Screener;
use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::command::MailParams;
use port25_engine::reply::std_replies as R;
use port25_engine::sasl::Credentials;
use port25_engine::{
    Admitted, AuthOffer, Decision, Envelope, Hooks, ListenerSettings, Message, Reply, Reset, SessionInfo,
};
use port25_events as ev;
use port25_events::emit;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Bytes read from a pregreeter (kept for the engine when its action lets
/// it through).
const PREGREET_READ: usize = 512;

/// Serves a port-25 listener with screening until `shutdown`, then drains:
/// the engine's listener (connection caps, PROXY header, drain) with the
/// screen between admission and the session.
pub async fn run<H: Hooks>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    screener: Arc<Screener>,
    shutdown: CancellationToken,
) {
    let session_settings = settings.clone();
    port25_engine::run_with(listener, settings, shutdown, move |admitted, sessions| {
        connection(admitted, session_settings.clone(), hooks.clone(), screener.clone(), sessions)
    })
    .await
}

/// [`run`] for one generation of a listener that a reload replaces
/// (crates/port25/src/cmd/generation.rs): accepts until `accepting` is
/// cancelled and returns the tracker of the sessions still running.
pub async fn accept_until<H: Hooks>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    screener: Arc<Screener>,
    accepting: &CancellationToken,
    sessions: CancellationToken,
) -> tokio_util::task::TaskTracker {
    let session_settings = settings.clone();
    port25_engine::accept_until(listener, settings, accepting, sessions, move |admitted, sessions| {
        connection(admitted, session_settings.clone(), hooks.clone(), screener.clone(), sessions)
    })
    .await
}

async fn connection<H: Hooks>(
    admitted: Admitted,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    screener: Arc<Screener>,
    shutdown: CancellationToken,
) {
    // The client's slot of the per-client cap is held to the end.
    let Admitted { info, mut tcp, input, slot: _client } = admitted;
    // Bytes that came with the PROXY header are the client talking first.
    let early = input.buffered().to_vec();
    let started = Instant::now();
    let (verdict, buffered) = tokio::select! {
        r = screener.screen(&mut tcp, info.peer.ip(), early) => r,
        _ = shutdown.cancelled() => {
            let _ = tokio::time::timeout(settings.limits.handshake_timeout, tcp.write_all(&R::SHUTDOWN.to_wire())).await;
            return;
        }
    };
    let Some(verdict) = verdict else {
        emit!(info, ev::SCREEN_VERDICT, session = %info.id, listener = %info.listener, peer = %info.peer, verdict = "hangup",
            seconds = started.elapsed().as_secs_f64());
        return;
    };
    screener.log(&info, &verdict, started.elapsed());
    if !verdict.outcome.hands_over() {
        let reply = verdict.reply.clone().unwrap_or(R::SHUTDOWN);
        let _ = tokio::time::timeout(settings.limits.handshake_timeout, async {
            tcp.write_all(&reply.to_wire()).await?;
            tcp.shutdown().await
        })
        .await;
        return;
    }
    if matches!(verdict.outcome, Outcome::Pass | Outcome::Allowlisted)
        && !verdict.lines.iter().any(|l| l.check == "allowlist")
    {
        if let Err(e) = screener.allow.insert(info.peer.ip(), screener.cfg.pass_ttl.as_secs()) {
            emit!(warn, ev::SCREEN_ALLOWLIST_FAILED, error = %e);
        }
    }
    let tagged = Arc::new(Tagged { inner: hooks, tag: verdict.tag.clone() });
    port25_engine::serve_stream(info, tcp, &buffered, settings, tagged, shutdown).await;
}

/// Which lookup a result belongs to.
enum Answered {
    List(usize, crate::dnsbl::Answer),
    Rdns(Rdns),
}

impl Screener {
    /// Screens one client: `None` when it hung up during the wait; else
    /// the verdict and the bytes it sent that the engine must read.
    pub async fn screen(&self, tcp: &mut TcpStream, ip: IpAddr, early: Vec<u8>) -> (Option<Verdict>, Vec<u8>) {
        let ip = ip.to_canonical();
        let mut ev = Evidence { end_user: self.end_user(ip), ..Default::default() };
        // 1. End-user space and the rate: judged before any teaser.
        if ev.end_user.is_some() {
            let v = verdict::judge(&self.cfg, ip, &self.hostname, &ev);
            if !v.outcome.hands_over() {
                return (Some(v), early);
            }
        }
        if let Err(over) = self.rate.arrive(ip, Instant::now()) {
            let v = self.rate_verdict(ip, over);
            if !v.outcome.hands_over() {
                return (Some(v), early);
            }
        }
        // 2. A client that passed before.
        if early.is_empty() && self.allow.contains(ip) {
            let mut v = verdict::judge(&self.cfg, ip, &self.hostname, &ev);
            v.lines.push(verdict::Line {
                check: "allowlist",
                list: String::new(),
                outcome: "hit",
                score: 0,
                reason: "passed before".into(),
            });
            if v.outcome == Outcome::Pass {
                v.outcome = Outcome::Allowlisted;
            }
            return (Some(v), early);
        }
        // 3. The teaser, the questions, the wait.
        let teaser = format!("220-{} ESMTP\r\n", self.hostname);
        if !matches!(tokio::time::timeout(Duration::from_secs(10), tcp.write_all(teaser.as_bytes())).await, Ok(Ok(())))
        {
            return (None, early);
        }
        let deadline = tokio::time::Instant::now() + self.cfg.greet_wait;
        let zones = self.lookups.zones().len();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Answered>(zones + 1);
        let mut tasks = Vec::with_capacity(zones + 1);
        for i in 0..zones {
            let (lookups, tx) = (self.lookups.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let zone = lookups.zones()[i].clone();
                let _ = tx.send(Answered::List(i, lookups.dnsbl(ip, &zone).await)).await;
            }));
        }
        if self.wants_rdns() {
            let (lookups, tx) = (self.lookups.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let _ = tx.send(Answered::Rdns(lookups.rdns(ip).await)).await;
            }));
        }
        drop(tx);
        let expected = tasks.len();
        let mut lists: Vec<Option<crate::dnsbl::Answer>> = vec![None; zones];
        let mut answered = 0;
        let mut read = early;
        let mut buf = [0u8; 256];
        if !read.is_empty() {
            ev.pregreet = Some(pregreet(&read));
        }
        loop {
            if ev.pregreet.is_some() && self.cfg.pregreet_action >= port25_config::ScreenAction::Tempfail {
                break;
            }
            tokio::select! {
                a = rx.recv(), if answered < expected => {
                    match a {
                        Some(Answered::List(i, answer)) => lists[i] = Some(answer),
                        Some(Answered::Rdns(r)) => ev.rdns = Some(r),
                        None => answered = expected,
                    }
                    answered += 1;
                    if answered >= expected && ev.pregreet.is_none() {
                        // A DNSWL may end the wait early.
                        ev.dnsbl = self.collect(&lists);
                        if verdict::judge(&self.cfg, ip, &self.hostname, &ev).outcome == Outcome::Allowlisted {
                            break;
                        }
                    }
                }
                n = tcp.read(&mut buf), if read.len() < PREGREET_READ => match n {
                    Ok(0) | Err(_) => {
                        for t in &tasks {
                            t.abort();
                        }
                        return (None, read);
                    }
                    Ok(n) => {
                        read.extend_from_slice(&buf[..n.min(PREGREET_READ - read.len())]);
                        ev.pregreet = Some(pregreet(&read));
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        for t in &tasks {
            t.abort();
        }
        ev.dnsbl = self.collect(&lists);
        if ev.rdns.is_none() && self.wants_rdns() {
            ev.rdns = Some(Rdns::TempError("no answer within greet_wait".into()));
        }
        (Some(verdict::judge(&self.cfg, ip, &self.hostname, &ev)), read)
    }

    /// The answers in, each missing one a failure ("no answer in time").
    fn collect(&self, lists: &[Option<crate::dnsbl::Answer>]) -> Vec<(String, crate::dnsbl::Answer)> {
        self.lookups
            .zones()
            .iter()
            .zip(lists)
            .map(|(z, a)| {
                (
                    z.clone(),
                    a.clone().unwrap_or_else(|| crate::dnsbl::Answer::Failed("no answer within greet_wait".into())),
                )
            })
            .collect()
    }

    /// Reverse DNS is asked only when one of its weights counts.
    pub(crate) fn wants_rdns(&self) -> bool {
        let c = &self.cfg;
        c.rdns_no_ptr != 0 || c.rdns_unconfirmed != 0 || c.rdns_address_in_name != 0 || c.rdns_dynamic_token != 0
    }

    fn rate_verdict(&self, ip: IpAddr, over: crate::rate::Over) -> Verdict {
        let reason =
            format!("more than the allowed new connections {} in {} s", over.as_str(), self.cfg.rate_window.as_secs());
        let line =
            verdict::Line { check: "rate", list: String::new(), outcome: "over", score: 0, reason: reason.clone() };
        let (outcome, reply) = match self.cfg.rate_action {
            port25_config::ScreenAction::Reject => {
                (Outcome::Reject, Some(Reply::owned(554, "5.7.1", format!("[{ip}]: {reason}"))))
            }
            port25_config::ScreenAction::Tempfail => {
                (Outcome::Tempfail, Some(Reply::owned(421, "4.7.0", format!("[{ip}]: {reason}; try again later"))))
            }
            port25_config::ScreenAction::Tag => (Outcome::Tag, None),
            port25_config::ScreenAction::Ignore => (Outcome::Monitored, None),
        };
        let tag = (outcome == Outcome::Tag).then(|| "score=0; checks=rate".to_owned());
        Verdict { lines: vec![line], score: 0, outcome, decided_by: "rate", reply, tag }
    }

    /// The events of a verdict: one per check, then the verdict.
    pub fn log(&self, info: &SessionInfo, v: &Verdict, took: Duration) {
        for l in &v.lines {
            emit!(debug, ev::SCREEN_CHECK, session = %info.id, peer = %info.peer, check = l.check, list = %l.list, outcome = l.outcome,
                score = l.score, reason = %l.reason);
            if l.outcome == "unusable" {
                self.list_unusable(&l.list, &l.reason);
            }
        }
        let reply = v.reply.as_ref().map(ToString::to_string).unwrap_or_default();
        emit!(info, ev::SCREEN_VERDICT, session = %info.id, listener = %info.listener, peer = %info.peer, verdict = v.outcome.as_str(),
            check = v.decided_by, score = v.score, reply = %reply, seconds = took.as_secs_f64());
    }

    /// At most one warning per list per minute: a list that refuses us
    /// refuses every client, and one line says it.
    fn list_unusable(&self, zone: &str, reason: &str) {
        let mut last = self.unusable_logged.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.get(zone).is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)) {
            return;
        }
        if last.len() > 1000 {
            last.clear();
        }
        last.insert(zone.to_owned(), now);
        emit!(warn, ev::SCREEN_LIST_UNUSABLE, list = %zone, reason = %reason);
    }
}

fn pregreet(read: &[u8]) -> Pregreet {
    Pregreet { bytes: read.get(..PREGREET_KEEP).unwrap_or(read).to_vec(), non_smtp: verdict::looks_non_smtp(read) }
}

impl Screener {
    pub fn lookups(&self) -> &Lookups {
        &self.lookups
    }
}

/// The engine's policy for one screened session: the listener's, plus an
/// `X-Port25-Screen` header on each message when the verdict was `tag`.
pub struct Tagged<H> {
    inner: Arc<H>,
    tag: Option<String>,
}

impl<H: Hooks> Hooks for Tagged<H> {
    type State = H::State;

    async fn connect(&self, info: &SessionInfo, state: &mut H::State) -> Decision {
        self.inner.connect(info, state).await
    }
    async fn ehlo(&self, info: &SessionInfo, state: &mut H::State, helo: &str) -> Decision {
        self.inner.ehlo(info, state, helo).await
    }
    fn auth_offer(&self, info: &SessionInfo) -> AuthOffer {
        self.inner.auth_offer(info)
    }
    fn auth_refused(&self, info: &SessionInfo) -> Reply {
        self.inner.auth_refused(info)
    }
    async fn authenticate(&self, info: &SessionInfo, state: &mut H::State, credentials: &Credentials) -> Decision {
        self.inner.authenticate(info, state, credentials).await
    }
    async fn mail(
        &self,
        info: &SessionInfo,
        state: &mut H::State,
        from: &ReversePath,
        params: &MailParams,
    ) -> Decision {
        self.inner.mail(info, state, from, params).await
    }
    async fn rcpt(&self, info: &SessionInfo, state: &mut H::State, envelope: &Envelope, to: &ForwardPath) -> Decision {
        self.inner.rcpt(info, state, envelope, to).await
    }
    async fn data(
        &self,
        info: &SessionInfo,
        state: &mut H::State,
        envelope: &Envelope,
        mut message: Message,
    ) -> Decision {
        if let Some(tag) = &self.tag {
            // Our own text (fixed words, numbers, check names): no CR/LF.
            let clean: String = tag.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
            message.insert_after_received(format!("X-Port25-Screen: {clean}\r\n").as_bytes());
        }
        self.inner.data(info, state, envelope, message).await
    }
    fn reset(&self, info: &SessionInfo, state: &mut H::State, why: Reset) {
        self.inner.reset(info, state, why)
    }
    fn closed(&self, info: &SessionInfo, state: &mut H::State) {
        self.inner.closed(info, state)
    }
}
