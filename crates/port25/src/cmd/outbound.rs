//! Starting the outbound queue for `port25 serve`: its spool, resolver and
//! scheduler, from the `[outbound]` section.

use anyhow::Context;
use port25_config::Config;
use port25_outbound::bounce::{DsnStore, LocalMailboxes};
use port25_outbound::dns::{resolv_conf_servers, Dns};
use port25_outbound::Enqueuer;
use port25_spool::Spool;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Running {
    pub enqueuer: Enqueuer,
    pub task: JoinHandle<std::io::Result<()>>,
    pub stop: CancellationToken,
}

/// Where DSNs go: local senders' to the mailbox the MX resolves their
/// address to (when it has one), by local delivery; others' through the
/// outbound queue.
fn dsn_store(config: &Config, local: Spool, outbound: Enqueuer, mailboxes: Arc<dyn LocalMailboxes>) -> DsnStore {
    DsnStore {
        local_domains: config.mx.domains.clone(),
        local,
        mailboxes,
        outbound,
        bounce_after_accept: config.mx.bounce_after_accept,
    }
}

/// Local delivery's hook for recipients its mailbox server refused for
/// good: the sender's DSN, stored like the outbound queue's own (local
/// senders by local delivery, others through the outbound queue).
pub fn local_bounce(
    config: &Config,
    local: Spool,
    outbound: Enqueuer,
    mailboxes: Arc<dyn LocalMailboxes>,
) -> port25_delivery::local::Bounce {
    let store = dsn_store(config, local, outbound, mailboxes);
    let hostname = config.hostname.clone();
    Arc::new(move |msg, failed| {
        let (store, hostname) = (store.clone(), hostname.clone());
        Box::pin(async move { store.bounce_local(&hostname, &msg, &failed).await })
    })
}

/// Opens (and recovers) the outbound spool and starts the scheduler;
/// `local` receives DSNs for local senders that have a mailbox.
pub fn start(
    config: &Config,
    local: Spool,
    mailboxes: Arc<dyn LocalMailboxes>,
    gauges: port25_spool::Gauges,
    holds: port25_outbound::settings::Holds,
) -> anyhow::Result<Running> {
    let mut servers = config.outbound.nameservers.clone();
    if servers.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        servers = resolv_conf_servers(&text);
        if servers.is_empty() {
            // resolv.conf(5): without nameserver lines, the local machine.
            servers.push(std::net::SocketAddr::from(([127, 0, 0, 1], 53)));
        }
    }
    let mut dns = Dns::new(&servers, config.outbound.dns_timeout).context("cannot set up the DNS resolver")?;
    // DANE applies to remote MXes only: not with a smarthost.
    if config.outbound.dane && config.outbound.smarthost.is_none() {
        let anchor = config.outbound.dane_trust_anchor.as_deref();
        let dnssec = port25_outbound::dnssec::Dnssec::new(&servers, config.outbound.dns_timeout, anchor)
            .map_err(|e| anyhow::anyhow!("[outbound] dane: {e}"))?;
        // Says at start whether validation works (and logs it if not).
        let probe = dnssec.clone();
        tokio::spawn(async move { probe.validating().await });
        dns.dnssec = Some(dnssec);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let dir = config.data_dir.join("outbound");
    let (spool, recovered) = Spool::open(&dir, tx, gauges)
        .with_context(|| format!("cannot open the outbound queue in {}", dir.display()))?;
    let keys: Vec<_> =
        config.outbound.dkim.iter().map(|k| (k.domain.clone(), k.selector.clone(), k.private_key.clone())).collect();
    let dkim = port25_outbound::dkim::Dkim::load(&keys)
        .map_err(|e| anyhow::anyhow!("[outbound.dkim]: {e}; make a key with `port25 dkim keygen`"))?;
    let enqueuer = Enqueuer::with_dkim(spool, dkim);
    let stop = CancellationToken::new();
    let dsns = dsn_store(config, local, enqueuer.clone(), mailboxes);
    let task = tokio::spawn(port25_outbound::run(
        Arc::new(port25_outbound::Settings { holds, ..super::wiring::outbound_settings(config)? }),
        dns,
        enqueuer.clone(),
        recovered,
        rx,
        dsns,
        stop.clone(),
    ));
    Ok(Running { enqueuer, task, stop })
}
