//! The submission policy (ports 587 and 465, RFC 6409, RFC 8314): the
//! mail clients of the provider's own users, always authenticated.
//!
//! A sibling of the MX policy over the same engine, in its own crate because
//! it owns what the MX must never have: accounts, AUTH, brute-force limits
//! and sending quotas. It reuses the MX for what they share: which
//! recipients are local, and storing a message for local delivery.
//!
//! Rules, in the order a session meets them:
//! - AUTH (PLAIN, LOGIN) only after TLS unless the listener allows plaintext
//!   for tests; failures 535 5.7.8 (also an authzid that is not the login,
//!   and a login over 255 bytes, neither ever checked); brute force slowed
//!   then locked, concurrent checks bounded ([`port25_accounts::gate`],
//!   shared with the dashboard); at most `max_sessions_per_login`
//!   authenticated sessions per login at once (454 4.7.0 past it); MAIL
//!   before AUTH 530 5.7.0.
//! - MAIL FROM and the From: header must be addresses of the login
//!   (`accounts`, or what the provider's directory said at AUTH when one
//!   checks logins: crates/directory), else 553 5.7.1 ([`headers`] reads
//!   From:).
//! - Per-login limits on messages and recipients, reserved at RCPT so that
//!   parallel sessions share them ([`quota`]).
//! - Recipients: local ones as the MX accepts them (on to local delivery);
//!   other domains go to the outbound queue when the server has one
//!   ([`Submission::with_outbound`]), else they are refused with a
//!   temporary reply that says so (451 4.4.0).
//! - Missing Message-ID and Date are added (RFC 6409 §8); Received says
//!   ESMTPSA (RFC 3848).
//! - Off by default: devices in trusted networks, or presenting a TLS
//!   client certificate from the configured device CA, may submit without
//!   AUTH, as any address of a local domain; each use is an event
//!   (`port25.submission.legacy`) for the migration report.

pub mod headers;
pub mod legacy;
pub mod quota;
mod shared;

use ipnet::IpNet;
use port25_accounts::gate::{Attempt, Gate, Outcome, Purpose, SharedLock, SharedSuccess};
/// The brute-force guard moved to the accounts crate, shared with the dashboard.
pub use port25_accounts::guard;
use port25_accounts::Accounts;
use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::command::MailParams;
use port25_engine::sasl::Credentials;
use port25_engine::{AuthOffer, Decision, Envelope, Hooks, Message, Reply, Reset, SessionInfo};
use port25_events as ev;
use port25_events::emit;
use port25_mx::MxPolicy;
use quota::{Exceeded, Quota, QuotaConfig};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct SubmissionConfig {
    pub quota: QuotaConfig,
    /// Authenticated sessions one login may hold at once.
    pub max_sessions_per_login: u32,
    /// Client networks whose devices may submit without AUTH (legacy).
    pub trusted_networks: Vec<IpNet>,
    /// The MX's address extension separator: "alice+news@" is alice's.
    pub recipient_delimiter: Option<char>,
}

pub const AUTH_REQUIRED: Reply = Reply::new(
    530,
    "5.7.0",
    "Authentication required: this is the submission service; log in with AUTH before sending",
);
pub const AUTH_FAILED: Reply = Reply::new(535, "5.7.8", "Authentication credentials invalid");
const AUTH_TEMPORARY: Reply = Reply::new(454, "4.7.0", "Temporary authentication failure; try again later");
const NULL_SENDER: Reply =
    Reply::new(553, "5.7.1", "A null sender (MAIL FROM:<>) is not accepted from mail clients; use your address");
impl Default for SubmissionConfig {
    fn default() -> SubmissionConfig {
        SubmissionConfig {
            quota: QuotaConfig::default(),
            max_sessions_per_login: 10,
            trusted_networks: Vec::new(),
            recipient_delimiter: None,
        }
    }
}

const REMOTE_UNAVAILABLE: &str = "delivery to other domains is not available on this server yet (no outbound queue); only local recipients are accepted";

/// State shared by every submission listener of the process.
pub struct Submission {
    accounts: Arc<Accounts>,
    gate: Arc<Gate>,
    quota: Quota,
    max_sessions_per_login: u32,
    /// Authenticated sessions per login (each session's own login is in
    /// its [`SessionState`]).
    sessions: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    mx: Arc<MxPolicy>,
    hostname: String,
    trusted: Vec<IpNet>,
    delimiter: Option<char>,
    /// When each (login, legacy) use was last written to the usage table:
    /// one write a minute per login is enough for a report in days.
    recorded: std::sync::Mutex<std::collections::HashMap<(String, bool), Instant>>,
    /// Where mail for other domains goes; `None`: refused with 451.
    outbound: Option<port25_outbound::Enqueuer>,
    /// The abuse desk, when the server runs one ([`Submission::set_watch`]).
    watch: std::sync::OnceLock<Arc<dyn Watch>>,
    /// State shared with other nodes ([`Submission::set_shared`]).
    shared_state: std::sync::OnceLock<port25_shared::Shared>,
}

/// The abuse desk's view of submission (crates/abuse, wired by the
/// binary): told of each login and each message before it is stored,
/// asked whether a login is locked. `logged_in` blocks (the desk's
/// database): the policy calls it off the async workers.
pub trait Watch: Send + Sync {
    /// The text after 454 4.7.0 when `login` is locked.
    fn locked(&self, login: &str) -> Option<String>;
    fn logged_in(&self, info: &SessionInfo, login: &str);
    /// Before the message is stored: a held login's mail must be known as
    /// held before the outbound queue can pick it up. Does not block; what
    /// is left that blocks (rarely: a signal raised) comes back, and the
    /// policy runs it off the async workers before it stores the message.
    /// Per message, no thread hand-off in the common case.
    fn submitted(
        &self,
        info: &SessionInfo,
        login: &str,
        id: &str,
        message_id: Option<&str>,
        rcpts: &[String],
    ) -> Option<Box<dyn FnOnce() + Send>>;
}

impl Submission {
    /// `gate` checks passwords (its accounts are the submission accounts).
    pub fn new(config: SubmissionConfig, gate: Arc<Gate>, mx: Arc<MxPolicy>, hostname: &str) -> Arc<Submission> {
        Self::build(config, gate, mx, hostname, None)
    }

    /// Like `new`, with remote recipients accepted into the outbound queue.
    pub fn with_outbound(
        config: SubmissionConfig,
        gate: Arc<Gate>,
        mx: Arc<MxPolicy>,
        hostname: &str,
        outbound: port25_outbound::Enqueuer,
    ) -> Arc<Submission> {
        Self::build(config, gate, mx, hostname, Some(outbound))
    }

    fn build(
        config: SubmissionConfig,
        gate: Arc<Gate>,
        mx: Arc<MxPolicy>,
        hostname: &str,
        outbound: Option<port25_outbound::Enqueuer>,
    ) -> Arc<Submission> {
        Arc::new(Submission {
            accounts: gate.accounts().clone(),
            gate,
            quota: Quota::new(config.quota),
            max_sessions_per_login: config.max_sessions_per_login.max(1),
            sessions: Default::default(),
            mx,
            hostname: hostname.to_owned(),
            trusted: config.trusted_networks,
            delimiter: config.recipient_delimiter,
            recorded: Default::default(),
            outbound,
            watch: Default::default(),
            shared_state: Default::default(),
        })
    }

    /// Lets the abuse desk watch logins and messages (set once).
    pub fn set_watch(&self, watch: Arc<dyn Watch>) {
        let _ = self.watch.set(watch);
    }

    /// Sending limits, session caps and migration usage also kept in
    /// `shared` (several nodes behind one name; set once).
    pub fn set_shared(&self, shared: port25_shared::Shared) {
        let _ = self.shared_state.set(shared);
    }

    /// 454 4.7.0 with the desk's text when `login` is locked.
    fn locked(&self, info: &SessionInfo, login: &str) -> Option<Decision> {
        let text = self.watch.get()?.locked(login)?;
        emit!(info, ev::ABUSE_LOCKED, session = %info.id, peer = %info.peer, user = %login);
        Some(Decision::Reject(Reply::owned(454, "4.7.0", text)))
    }

    /// Records a successful login for the migration report (blocking).
    fn record_use(&self, login: &str, legacy: bool, ip: std::net::IpAddr, port: u16) -> bool {
        let now = Instant::now();
        {
            let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
            if recorded
                .get(&(login.to_owned(), legacy))
                .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(60))
            {
                return false;
            }
            recorded.insert((login.to_owned(), legacy), now);
        }
        if let Err(e) = self.accounts.record_use(login, legacy, ip, port) {
            emit!(warn, ev::SUBMISSION_AUTH_FAILED, user = %login, reason = "cannot record the use for the migration report", error = %e);
        }
        true
    }

    /// Counts an authenticated session for `login` (the session's login
    /// until now is `held`, updated); false past the cap.
    fn enter_session(&self, held: &mut Option<String>, login: &str) -> bool {
        if held.as_deref() == Some(login) {
            return true;
        }
        let mut per_login = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if per_login.get(login).is_some_and(|&n| n >= self.max_sessions_per_login) {
            return false;
        }
        leave(&mut per_login, held.take());
        *per_login.entry(login.to_owned()).or_insert(0) += 1;
        *held = Some(login.to_owned());
        true
    }

    fn leave_session(&self, held: &mut Option<String>) {
        leave(&mut self.sessions.lock().unwrap_or_else(|p| p.into_inner()), held.take());
    }

    fn is_remote(&self, to: &ForwardPath) -> bool {
        matches!(to, ForwardPath::Mailbox { mailbox, source_route: None } if !self.mx.is_local(&mailbox.domain))
    }
}

fn leave(per_login: &mut std::collections::HashMap<String, u32>, login: Option<String>) {
    let Some(login) = login else { return };
    if let Some(n) = per_login.get_mut(&login) {
        *n -= 1;
        if *n == 0 {
            per_login.remove(&login);
        }
    }
}

/// A submission session's state ([`Hooks::State`]): the login it counts
/// against `max_sessions_per_login`, and what its transaction resolved at
/// MAIL.
#[derive(Default)]
pub struct SessionState {
    login: Option<String>,
    /// What a remote directory said at AUTH the login may send as (kept
    /// for the session; `None` when the accounts database is asked).
    directory_addresses: Option<Vec<String>>,
    sender: Option<Sender>,
    /// This transaction's reservations in the shared store.
    shared_held: Vec<shared::Held>,
    /// The login's session slot in the shared store: (login, name).
    shared_session: Option<(String, String)>,
}

/// Who sends in this transaction, as which addresses and with which
/// limits: read from the accounts database once, at MAIL, on a blocking
/// thread, and used by RCPT and DATA until the transaction ends.
struct Sender {
    /// The login, or a device (its certificate, its trusted network).
    who: String,
    /// The addresses and `@domain` entries a login may send as; `None` for
    /// a device, which may use any address of a local domain.
    addresses: Option<Vec<String>>,
    limits: QuotaConfig,
}

/// A login as logged: made-up logins may be kilobytes long.
fn loggable(login: &str) -> std::borrow::Cow<'_, str> {
    match login.chars().nth(80) {
        Some(_) => format!("{}… ({} bytes)", login.chars().take(80).collect::<String>(), login.len()).into(),
        None => login.into(),
    }
}

/// The hooks of one submission listener.
pub struct SubmissionPolicy {
    shared: Arc<Submission>,
    offer: AuthOffer,
    /// Port 25 with legacy submission: logins are recorded as legacy.
    legacy: bool,
}

impl SubmissionPolicy {
    /// `plaintext_auth` offers AUTH before TLS: for tests only.
    pub fn new(shared: Arc<Submission>, plaintext_auth: bool) -> SubmissionPolicy {
        SubmissionPolicy {
            shared,
            offer: if plaintext_auth { AuthOffer::Always } else { AuthOffer::AfterTls },
            legacy: false,
        }
    }

    fn trusted_network(&self, info: &SessionInfo) -> Option<IpNet> {
        let ip = info.peer.ip();
        self.shared.trusted.iter().find(|n| n.contains(&ip)).copied()
    }

    /// Who is sending: the login, or a device (its verified client
    /// certificate, or its trusted network).
    fn sender_identity(&self, info: &SessionInfo) -> Option<String> {
        if let Some(login) = &info.auth {
            return Some(port25_accounts::Login::of(login).into_string());
        }
        if let Some(cert) = device_cert(info) {
            return Some(format!("device {}", cert.get(..16).unwrap_or(cert)));
        }
        self.trusted_network(info).map(|n| format!("network {n}"))
    }

    /// Resolves the transaction's sender: for a login its addresses and
    /// its own limits (where it has them), read on a blocking thread: the
    /// accounts database is SQLite, and a runtime worker waiting on it
    /// would stall every session it serves.
    async fn resolve(
        &self,
        info: &SessionInfo,
        directory_addresses: Option<&Vec<String>>,
        who: String,
    ) -> Result<Sender, Decision> {
        let defaults = self.shared.quota.defaults().clone();
        let Some(login) = info.auth.clone() else {
            return Ok(Sender { who, addresses: None, limits: defaults });
        };
        // Logged in through a remote directory: its answer at AUTH is the
        // list (none kept: nothing allowed); the accounts file is not asked.
        let from_directory = match directory_addresses {
            Some(a) => Some(a.clone()),
            None if self.shared.gate.directory().is_some() => Some(Vec::new()),
            None => None,
        };
        let accounts = self.shared.accounts.clone();
        let read = tokio::task::spawn_blocking(move || {
            let addresses = match from_directory {
                Some(a) => Ok(a),
                None => accounts.addresses(&login),
            };
            (addresses, accounts.limits(&login))
        })
        .await;
        let (addresses, limits) = match read {
            Ok(r) => r,
            Err(e) => {
                emit!(error, ev::SUBMISSION_SENDER_REJECTED, session = %info.id, user = %who, field = "MAIL FROM", reason = "account database error", error = %e);
                return Err(Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR));
            }
        };
        let addresses = match addresses {
            Ok(a) => a,
            Err(e) => {
                emit!(error, ev::SUBMISSION_SENDER_REJECTED, session = %info.id, user = %who, field = "MAIL FROM", reason = "account database error", error = %e);
                return Err(Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR));
            }
        };
        // Without its own limits (or when they cannot be read) a login has
        // the configured ones: never none.
        let limits = limits.map(|own| defaults.with(&own)).unwrap_or(defaults);
        Ok(Sender { who, addresses: Some(addresses), limits })
    }

    fn release_shared(&self, state: &mut SessionState) {
        if let Some(s) = self.shared.shared_state.get() {
            shared::release(s, std::mem::take(&mut state.shared_held));
        }
    }

    /// The login's session slot in the shared store; the refusal when the
    /// cap is reached there or the store fails closed.
    /// `success` (the gate's, not told to the shared store yet) goes with
    /// the slot in one round trip.
    async fn enter_shared_session(
        &self,
        info: &SessionInfo,
        state: &mut SessionState,
        login: &str,
        success: Option<SharedSuccess>,
    ) -> Option<Decision> {
        let Some(s) = self.shared.shared_state.get() else {
            return self.shared_lock_refusal(info, login, SharedSuccess::record_any(success).await);
        };
        if state.shared_session.as_ref().is_some_and(|(l, _)| l == login) {
            return self.shared_lock_refusal(info, login, SharedSuccess::record_any(success).await);
        }
        if let Some((old, name)) = state.shared_session.take() {
            shared::leave_session(s, old, name);
        }
        let name = s.session_name(&info.id);
        let max = self.shared.max_sessions_per_login;
        let slot = port25_shared::Slot { login, session: &name, max, ttl: shared::SESSION_TTL };
        let entered = match success {
            Some(success) => match success.record_entering(slot).await {
                Ok(Err((scope, remaining))) => return Some(self.locked_reply(info, login, scope, remaining)),
                Ok(Ok(entered)) => Ok(entered),
                Err(e) => Err(e),
            },
            None => {
                let answer = s.backend().enter_session(login, &name, max, shared::SESSION_TTL).await;
                s.settle("enter_session", answer, true)
            }
        };
        match entered {
            Ok(true) => {
                state.shared_session = Some((login.to_owned(), name));
                None
            }
            Ok(false) => {
                emit!(info, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %login, reason = "too many sessions for this login (all nodes)");
                Some(Decision::Reject(Reply::owned(
                    454,
                    "4.7.0",
                    format!("Too many sessions for this login at once (at most {max}); close one or try again later"),
                )))
            }
            Err(e) => {
                emit!(error, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %login, reason = "shared state unreachable", error = %e);
                Some(Decision::Reject(AUTH_TEMPORARY))
            }
        }
    }

    /// The refusal a valid login gets when the shared store holds a lock
    /// on it or its address, or cannot say (failing closed).
    fn shared_lock_refusal(
        &self,
        info: &SessionInfo,
        login: &str,
        recorded: Result<Option<SharedLock>, port25_shared::Unreachable>,
    ) -> Option<Decision> {
        match recorded {
            Ok(None) => None,
            Ok(Some((scope, remaining))) => Some(self.locked_reply(info, login, scope, remaining)),
            Err(e) => {
                emit!(error, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %login, reason = "shared state unreachable", error = %e);
                Some(Decision::Reject(AUTH_TEMPORARY))
            }
        }
    }

    /// 454 for a login refused by a lock, the guard's or the shared
    /// store's: the same words either way, and whether the password was
    /// right or not.
    fn locked_reply(&self, info: &SessionInfo, user: &str, scope: guard::Scope, remaining: Duration) -> Decision {
        let reason = format!("locked: {}", scope.name());
        emit!(info, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %user, reason = %reason);
        let whose = match scope {
            guard::Scope::Address => "from your address",
            guard::Scope::Login => "for this login",
        };
        let minutes = remaining.as_secs().div_ceil(60).max(1);
        Decision::Reject(Reply::owned(
            454,
            "4.7.0",
            format!("Too many failed logins {whose}; try again in {minutes} minutes"),
        ))
    }

    fn shared_refusal(&self, info: &SessionInfo, who: &str, refused: shared::Refused) -> Decision {
        match refused {
            shared::Refused::Over(e) => self.limit_reply(info, who, e),
            shared::Refused::Unreachable => {
                emit!(warn, ev::SUBMISSION_LIMIT, session = %info.id, user = %who, limit = "shared state unreachable", max = 0, retry_after_secs = 0);
                Decision::Reject(Reply::new(
                    454,
                    "4.7.0",
                    "Sending limits cannot be checked right now; try again later",
                ))
            }
        }
    }

    fn limit_reply(&self, info: &SessionInfo, who: &str, e: Exceeded) -> Decision {
        let retry = e.retry_after.map(|d| d.as_secs());
        emit!(warn, ev::SUBMISSION_LIMIT, session = %info.id, user = %who, limit = e.limit, max = e.max, retry_after_secs = retry.unwrap_or(0));
        let text = match (e.limit, retry) {
            ("recipients_per_message", _) => {
                return Decision::Reject(Reply::owned(
                    452,
                    "4.5.3",
                    format!("Too many recipients for one message: the limit for {who} is {}", e.max),
                ))
            }
            (limit, Some(secs)) => format!(
                "Sending limit reached for {who}: {limit} is {}; try again in {} minutes",
                e.max,
                secs.div_ceil(60).max(1)
            ),
            (limit, None) => format!("Sending limit reached for {who}: {limit} is {}", e.max),
        };
        Decision::Reject(Reply::owned(450, "4.7.1", text))
    }

    /// Sender binding for one address; `field` names where it came from.
    fn may_send_as(&self, info: &SessionInfo, sender: &Sender, address: &str, field: &str) -> Result<(), Decision> {
        let who = &sender.who;
        let allowed = match &sender.addresses {
            Some(list) => {
                if port25_accounts::address::allows(list, address) || self.allows_base(list, address) {
                    return Ok(());
                }
                let list =
                    if list.is_empty() { "no address at all (ask your provider)".to_owned() } else { list.join(", ") };
                format!("login {who} may send as {list}")
            }
            // A trusted device may use any address of a local domain.
            None => match address.rsplit_once('@').and_then(|(_, d)| port25_engine::address::parse_domain(d).ok()) {
                Some(domain) if self.shared.mx.is_local(&domain) => return Ok(()),
                _ => "devices on trusted networks may only send as addresses of this provider's domains".to_owned(),
            },
        };
        emit!(info, ev::SUBMISSION_SENDER_REJECTED, session = %info.id, user = %who, sender = %address, field, reason = "not an address of the sender");
        Err(Decision::Reject(Reply::owned(
            553,
            "5.7.1",
            format!("Sender address rejected: <{address}> in {field} is not yours; {allowed}"),
        )))
    }

    /// "alice+news@example.net" with "+" as the delimiter is alice's too.
    fn allows_base(&self, list: &[String], address: &str) -> bool {
        let (Some(d), Some((local, domain))) = (self.shared.delimiter, address.rsplit_once('@')) else { return false };
        match local.split_once(d) {
            Some((base, _)) if !base.is_empty() => port25_accounts::address::allows(list, &format!("{base}@{domain}")),
            _ => false,
        }
    }

    fn auth_failure(&self, info: &SessionInfo, login: &str, reason: &str, locks: Vec<guard::Lockout>) -> Decision {
        let user = loggable(login);
        emit!(info, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %user, reason);
        for lock in locks {
            let key = match lock.scope {
                guard::Scope::Address => guard::address_key(info.peer.ip()).to_string(),
                guard::Scope::Login => port25_accounts::Login::of(login).into_string(),
            };
            emit!(warn, ev::SUBMISSION_LOCKOUT, scope = lock.scope.name(), key = %key, failures = lock.failures, seconds = lock.duration.as_secs());
        }
        Decision::Reject(AUTH_FAILED)
    }
}

/// The SHA-256 of a client certificate the listener's device CA verified.
fn device_cert(info: &SessionInfo) -> Option<&str> {
    info.tls.as_ref()?.client_cert.as_deref()
}

impl SubmissionPolicy {
    /// Remote recipients to the outbound queue first, then local ones to
    /// the spool; 250 only when both are stored. (If the second store
    /// fails the client retries and the remote recipients may get the
    /// message twice: duplicates over losses.)
    async fn store(&self, info: &SessionInfo, envelope: &Envelope, id: String, content: Vec<u8>) -> Decision {
        let (remote, local): (Vec<ForwardPath>, Vec<ForwardPath>) =
            envelope.rcpts.iter().cloned().partition(|r| self.shared.is_remote(r));
        if !remote.is_empty() {
            let Some(outbound) = &self.shared.outbound else {
                return Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR);
            };
            let mut rcpts: Vec<String> = Vec::new();
            for r in &remote {
                if let ForwardPath::Mailbox { mailbox, .. } = r {
                    // The local part is the remote domain's business: kept as sent.
                    let mut m = mailbox.clone();
                    if let port25_engine::address::Domain::Name(n) = &mut m.domain {
                        *n = n.to_lowercase();
                    }
                    let a = m.to_string();
                    if !rcpts.contains(&a) {
                        rcpts.push(a);
                    }
                }
            }
            let spooled = port25_spool::SpooledMessage {
                id: id.clone(),
                received_at: port25_time::unix_secs(),
                peer: info.peer.to_string(),
                helo: info.helo.clone().unwrap_or_default(),
                from: envelope.from.to_string(),
                rcpts,
                content: content.clone(),
                from_mx: false,
            };
            if outbound.enqueue(spooled).await.is_err() {
                return Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR);
            }
        }
        if local.is_empty() {
            return Decision::Accept;
        }
        let local_envelope = Envelope { rcpts: local, ..envelope.clone() };
        self.shared.mx.store(info, &local_envelope, id, content).await
    }
}

/// Submission resolves the sender once per transaction, at MAIL, and keeps
/// it in the session's state for RCPT and DATA; the login's session slot
/// is held in the state too, and given back when the session closes.
impl Hooks for SubmissionPolicy {
    type State = SessionState;

    fn auth_offer(&self, _info: &SessionInfo) -> AuthOffer {
        self.offer
    }

    async fn authenticate(&self, info: &SessionInfo, state: &mut SessionState, credentials: &Credentials) -> Decision {
        let attempt = Attempt {
            ip: info.peer.ip(),
            login: &credentials.username,
            authzid: credentials.authzid.as_deref(),
            password: &credentials.password,
            purpose: Purpose::Submission,
            secured: info.tls.is_some(),
        };
        let user = loggable(&credentials.username);
        // A valid login's success reaches the shared store with its
        // session slot, in one round trip (enter_shared_session), or alone
        // when refused here first.
        let (outcome, success) = self.shared.gate.attempt_deferring(attempt).await;
        match outcome {
            Outcome::Valid { login, addresses, .. } => {
                // Refused here first: the success is still told (a lock the
                // store holds changes nothing then).
                if let Some(refusal) = self.shared.locked(info, &login) {
                    let _ = SharedSuccess::record_any(success).await;
                    return refusal;
                }
                if !self.shared.enter_session(&mut state.login, &login) {
                    let _ = SharedSuccess::record_any(success).await;
                    let max = self.shared.max_sessions_per_login;
                    emit!(info, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %login, reason = "too many sessions for this login");
                    return Decision::Reject(Reply::owned(
                        454,
                        "4.7.0",
                        format!(
                            "Too many sessions for this login at once (at most {max}); close one or try again later"
                        ),
                    ));
                }
                if let Some(refusal) = self.enter_shared_session(info, state, &login, success).await {
                    self.shared.leave_session(&mut state.login);
                    return refusal;
                }
                state.directory_addresses = addresses;
                let shared = self.shared.clone();
                let (l, legacy, ip, port) = (login.clone(), self.legacy, info.peer.ip(), info.local.port());
                let watched = info.clone();
                let recorded = tokio::task::spawn_blocking(move || {
                    let recorded = shared.record_use(&l, legacy, ip, port);
                    if let Some(w) = shared.watch.get() {
                        w.logged_in(&watched, &l);
                    }
                    recorded
                })
                .await;
                if let (Ok(true), Some(s)) = (recorded, self.shared.shared_state.get()) {
                    let answer = s
                        .backend()
                        .record_use(
                            &login,
                            self.legacy,
                            &info.peer.ip().to_canonical().to_string(),
                            info.local.port(),
                            port25_time::unix_secs() as i64,
                        )
                        .await;
                    let _ = s.settle("record_use", answer, ());
                }
                if self.legacy {
                    emit!(info, ev::SUBMISSION_LEGACY, session = %info.id, peer = %info.peer, user = %login, listener = %info.listener, port = info.local.port());
                }
                Decision::Accept
            }
            Outcome::Refused { reason, locks } => self.auth_failure(info, &credentials.username, reason, locks),
            Outcome::Locked { scope, remaining } => self.locked_reply(info, &user, scope, remaining),
            Outcome::Busy { reason } => {
                emit!(info, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %user, reason);
                Decision::Reject(AUTH_TEMPORARY)
            }
            Outcome::Error(e) => {
                emit!(error, ev::SUBMISSION_AUTH_FAILED, session = %info.id, peer = %info.peer, user = %user, reason = "account database or directory unavailable", error = %e);
                Decision::Reject(AUTH_TEMPORARY)
            }
        }
    }

    async fn mail(
        &self,
        info: &SessionInfo,
        state: &mut SessionState,
        from: &ReversePath,
        _params: &MailParams,
    ) -> Decision {
        state.sender = None;
        let Some(who) = self.sender_identity(info) else {
            return Decision::Reject(AUTH_REQUIRED);
        };
        // Locked while the session was open: no new transaction.
        if let Some(refusal) = info.auth.as_deref().and_then(|l| self.shared.locked(info, &l.to_lowercase())) {
            return refusal;
        }
        if info.auth.is_none() {
            let network = self.trusted_network(info).map(|n| n.to_string()).unwrap_or_default();
            let cert = device_cert(info).unwrap_or_default();
            emit!(info, ev::SUBMISSION_LEGACY, session = %info.id, peer = %info.peer, network = %network, certificate = %cert, listener = %info.listener, from = %from);
        }
        let ReversePath::Mailbox(mailbox) = from else {
            emit!(info, ev::SUBMISSION_SENDER_REJECTED, session = %info.id, user = %who, sender = "<>", field = "MAIL FROM", reason = "null sender");
            return Decision::Reject(NULL_SENDER);
        };
        let sender = match self.resolve(info, state.directory_addresses.as_ref(), who).await {
            Ok(s) => s,
            Err(d) => return d,
        };
        if let Err(d) = self.may_send_as(info, &sender, &mailbox.to_string(), "MAIL FROM") {
            return d;
        }
        if let Err(e) = self.shared.quota.check_message(&sender.who, &sender.limits, Instant::now()) {
            return self.limit_reply(info, &sender.who, e);
        }
        // The shared windows are asked at the first RCPT (shared.rs).
        state.sender = Some(sender);
        Decision::Accept
    }

    async fn rcpt(
        &self,
        info: &SessionInfo,
        state: &mut SessionState,
        envelope: &Envelope,
        to: &ForwardPath,
    ) -> Decision {
        // MAIL was accepted, so it resolved the sender; without one, refuse.
        let Some(sender) = &state.sender else {
            return Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR);
        };
        if let ForwardPath::Mailbox { mailbox, source_route: None } = to {
            if !self.shared.mx.is_local(&mailbox.domain) {
                if self.shared.outbound.is_none() {
                    return Decision::Reject(Reply::owned(451, "4.4.0", format!("<{to}>: {REMOTE_UNAVAILABLE}")));
                }
                // Authenticated users relay to domain names; an address
                // literal would bypass DNS and any per-domain TLS policy.
                if matches!(mailbox.domain, port25_engine::address::Domain::Literal(_)) {
                    return Decision::Reject(Reply::owned(
                        550,
                        "5.7.1",
                        format!("<{to}>: address literals are not accepted as recipients; use a domain name"),
                    ));
                }
            }
        }
        if !self.shared.is_remote(to) {
            // Local, or a relay trick the MX names precisely (literal, route, %).
            match self.shared.mx.check(to).await {
                Decision::Accept | Decision::AcceptWith(_) => {}
                refusal => return refusal,
            }
        }
        // The shared windows first: a local refusal can give this one
        // recipient back there, while the local quota releases only whole
        // transactions.
        let mut held = None;
        if let Some(s) = self.shared.shared_state.get() {
            match shared::reserve_recipient(s, &info.id, &sender.who, &sender.limits, envelope.rcpts.is_empty()).await {
                Ok(h) => held = h,
                Err(refused) => return self.shared_refusal(info, &sender.who, refused),
            }
        }
        match self.shared.quota.reserve_recipient(
            &info.id,
            &sender.who,
            &sender.limits,
            envelope.rcpts.len() as u32,
            Instant::now(),
        ) {
            Ok(()) => {
                state.shared_held.extend(held);
                Decision::Accept
            }
            Err(e) => {
                if let Some(s) = self.shared.shared_state.get() {
                    shared::release(s, held.into_iter().collect());
                }
                self.limit_reply(info, &sender.who, e)
            }
        }
    }

    async fn data(
        &self,
        info: &SessionInfo,
        state: &mut SessionState,
        envelope: &Envelope,
        mut message: Message,
    ) -> Decision {
        let Some(sender) = &state.sender else {
            return Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR);
        };
        let found = headers::scan(message.body());
        let authors = match headers::authors(&found) {
            Ok(a) => a,
            Err(reply) => return Decision::Reject(reply),
        };
        for (address, field) in authors {
            if let Err(d) = self.may_send_as(info, sender, address, field) {
                return d;
            }
        }
        let date = port25_engine::received::rfc5322_date(SystemTime::now());
        let added = headers::additions(&found, &message.id, &self.shared.hostname, &date);
        if !added.is_empty() {
            emit!(debug, ev::SUBMISSION_FIXED, session = %info.id, id = %message.id, added = %String::from_utf8_lossy(&added).trim_end());
        }
        // Added fields go in behind the Received header, in the message's
        // own buffer (no second copy of the message).
        message.insert_after_received(&added);
        let id = message.id.clone();
        if let (Some(w), Some(login)) = (self.shared.watch.get(), &info.auth) {
            // The one added above when the message had none.
            let added_id;
            let message_id = match &found.message_id {
                Some(m) => m.as_str(),
                None => {
                    added_id = format!("<{id}@{}>", self.shared.hostname);
                    added_id.as_str()
                }
            };
            let rcpts: Vec<String> = envelope.rcpts.iter().map(|r| r.to_string()).collect();
            // Logins are mostly lower case already: no copy then.
            let login: std::borrow::Cow<'_, str> = if login.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
                login.to_lowercase().into()
            } else {
                login.as_str().into()
            };
            if let Some(rest) = w.submitted(info, &login, &id, Some(message_id), &rcpts) {
                let _ = tokio::task::spawn_blocking(rest).await;
            }
        }
        let decision = self.store(info, envelope, id.clone(), message.into_content()).await;
        if matches!(decision, Decision::Accept) {
            self.shared.quota.commit(&info.id, Instant::now());
            // Stored: the shared reservations stay in their windows.
            state.shared_held.clear();
            emit!(info, ev::SUBMISSION_ACCEPTED, session = %info.id, user = %sender.who, id = %id, from = %envelope.from, rcpts = envelope.rcpts.len());
        }
        decision
    }

    fn reset(&self, info: &SessionInfo, state: &mut SessionState, _why: Reset) {
        state.sender = None;
        self.shared.quota.release(&info.id);
        self.release_shared(state);
    }

    fn closed(&self, info: &SessionInfo, state: &mut SessionState) {
        self.shared.quota.release(&info.id);
        self.shared.leave_session(&mut state.login);
        self.release_shared(state);
        if let (Some(s), Some((login, name))) = (self.shared.shared_state.get(), state.shared_session.take()) {
            shared::leave_session(s, login, name);
        }
    }
}
