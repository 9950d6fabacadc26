//! Which recipients exist, for `port25 serve`: the directories behind the
//! MX's one question (crates/mx/src/directory.rs), and the MX's answer
//! handed to the DSN store for local senders.
//!
//! In the order asked: the `[mx] recipients` lists (kept by the MX itself),
//! the logins and addresses of `port25 users` accounts (SQLite, read
//! on a blocking thread), and, when local delivery is LMTP, the mailbox
//! server's own answer to an RCPT probe, cached ([mx] verify_*); and
//! the provider's directory (`[submission.directory]`, Dovecot's userdb,
//! LDAP or PostgreSQL) when it is configured to tell, cached the same way.

use port25_accounts::remote::RemoteDirectory;
use port25_accounts::Accounts;
use port25_config::Config;
use port25_delivery::lmtp::{Lmtp, Probe};
use port25_delivery::Target;
use port25_mx::directory::{Answer, CacheSettings, Cached, Exists, RecipientDirectory};
use port25_mx::{MxConfig, MxPolicy};
use port25_outbound::bounce::{LocalMailboxes, MailboxAnswer};
use port25_spool::Spool;
use std::sync::Arc;
use std::time::Duration;

/// The logins and addresses of `port25 users` accounts (not the `@domain`s
/// they may send as: no catch-all the operator did not write); read at each
/// question, so an account added while the server runs receives at once.
struct AccountAddresses(Arc<Accounts>);

impl RecipientDirectory for AccountAddresses {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        let (accounts, address) = (self.0.clone(), address.to_owned());
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || accounts.has_address(&address)).await {
                Ok(Ok(true)) => Exists::Yes,
                Ok(Ok(false)) => Exists::No,
                Ok(Err(e)) => Exists::CannotTell(format!("account database: {e}")),
                Err(e) => Exists::CannotTell(format!("account lookup: {e}")),
            }
        })
    }
}

/// At most this many probes talk to the LMTP server at once: a flood of
/// RCPTs for random names (each a cache miss) must not become a flood of
/// connections to the mailbox server. Others wait, within their timeout.
const PARALLEL_PROBES: usize = 16;

/// The LMTP server's answer to `RCPT TO` (a probe without DATA).
struct LmtpProbe {
    lmtp: Lmtp,
    timeout: Duration,
    slots: tokio::sync::Semaphore,
}

impl RecipientDirectory for LmtpProbe {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let Ok(Ok(_slot)) = tokio::time::timeout(self.timeout, self.slots.acquire()).await else {
                return Exists::CannotTell(format!("{PARALLEL_PROBES} verifications already in progress"));
            };
            let left = self.timeout.saturating_sub(started.elapsed());
            match self.lmtp.probe(address, left).await {
                Probe::Exists => Exists::Yes,
                Probe::Unknown(_) => Exists::No,
                Probe::CannotTell(why) => Exists::CannotTell(why),
            }
        })
    }
}

/// The provider's directory (Dovecot userdb, LDAP, PostgreSQL), asked at
/// most [`PARALLEL_PROBES`] at a time and at most `[mx] verify_timeout_ms`
/// each; down or slow is "cannot tell" (450), never a yes.
struct Provider {
    directory: Arc<dyn RemoteDirectory>,
    timeout: Duration,
    slots: tokio::sync::Semaphore,
}

impl RecipientDirectory for Provider {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        Box::pin(async move {
            let kind = self.directory.kind();
            let asked = async {
                let _slot = self.slots.acquire().await;
                match self.directory.exists(address) {
                    Some(answer) => answer.await,
                    None => Err("not configured to look up recipients".into()),
                }
            };
            match tokio::time::timeout(self.timeout, asked).await {
                Ok(Ok(true)) => Exists::Yes,
                Ok(Ok(false)) => Exists::No,
                Ok(Err(e)) => Exists::CannotTell(format!("{kind} directory: {e}")),
                Err(_) => {
                    Exists::CannotTell(format!("{kind} directory: no answer within {} ms", self.timeout.as_millis()))
                }
            }
        })
    }
}

/// The MX policy with every directory of this configuration behind it.
/// (and sender authentication and greylisting where configured).
pub fn mx_policy(
    config: &Config,
    spool: Spool,
    accounts: Arc<Accounts>,
    target: &Target,
    provider: Option<Arc<dyn RemoteDirectory>>,
) -> anyhow::Result<Arc<MxPolicy>> {
    let mx_config = MxConfig {
        domains: config.mx.domains.clone(),
        recipients: config.mx.recipients.clone(),
        recipient_delimiter: config.mx.recipient_delimiter,
        catch_all: config.mx.catch_all.clone(),
        plain_names_only: matches!(target, Target::Maildir(_)),
    };
    let lmtp = match target {
        Target::Lmtp(l) => Some(l),
        _ => None,
    };
    let mut directories = directories(config, accounts, lmtp);
    // Asked only when it can tell (a Dovecot without userdb_socket, an LDAP
    // without recipient_filter, a PostgreSQL without recipient_query cannot).
    let asks = config.submission.directory.as_ref().is_some_and(|d| d.recipients);
    if let Some(directory) = provider.filter(|d| asks && d.tells_recipients()) {
        let v = &config.mx.verify;
        let cache =
            CacheSettings { positive_ttl: v.positive_ttl, negative_ttl: v.negative_ttl, max_entries: v.cache_entries };
        let provider = Provider { directory, timeout: v.timeout, slots: tokio::sync::Semaphore::new(PARALLEL_PROBES) };
        directories.push(Arc::new(Cached::new(provider, cache)));
    }
    let mx = directories.into_iter().fold(MxPolicy::new(&mx_config, spool), MxPolicy::with_directory);
    Ok(Arc::new(super::mx_auth::attach(config, mx)?))
}

/// The directories after the MX's own lists, in the order asked.
fn directories(config: &Config, accounts: Arc<Accounts>, lmtp: Option<&Lmtp>) -> Vec<Arc<dyn RecipientDirectory>> {
    let mut out: Vec<Arc<dyn RecipientDirectory>> = vec![Arc::new(AccountAddresses(accounts))];
    if let Some(lmtp) = lmtp {
        let v = &config.mx.verify;
        let cache =
            CacheSettings { positive_ttl: v.positive_ttl, negative_ttl: v.negative_ttl, max_entries: v.cache_entries };
        let probe =
            LmtpProbe { lmtp: lmtp.clone(), timeout: v.timeout, slots: tokio::sync::Semaphore::new(PARALLEL_PROBES) };
        out.push(Arc::new(Cached::new(probe, cache)));
    }
    out
}

/// The MX resolves a local sender's address for its DSN as it resolves a
/// recipient, and says whether it has a mailbox.
pub struct MxMailboxes(pub Arc<MxPolicy>);

impl LocalMailboxes for MxMailboxes {
    fn mailbox_of<'a>(&'a self, sender: &'a str) -> MailboxAnswer<'a> {
        Box::pin(self.0.mailbox_of(sender))
    }
}
