//! The MX's screening before the banner (`[mx.screen]`, docs/screen.md):
//! the receiving half of port 25 management. A client that connects to
//! port 25 from end-user space is a bot, not an MTA; this refuses it
//! before the SMTP session starts, and says why.
//!
//! Layout: the pure parts first, unit-tested and fuzzed ([`dnsbl`]: query
//! names and RFC 5782 answers; [`rdns`]: generic reverse-DNS names;
//! [`verdict`]: scores, actions, the reply), then the state ([`allow`]:
//! passed clients, kept across restarts; [`rate`]: new connections per
//! address and per /64), then the I/O ([`lookup`]: the DNS questions;
//! [`server`]: the listener that screens, then hands the socket to the
//! engine). Submission listeners never come here (serve.rs decides).

pub mod allow;
pub mod dnsbl;
pub mod lookup;
pub mod rate;
pub mod rdns;
pub mod server;
pub mod verdict;

use port25_config::Screen;
use port25_egress::policy::Policy;
use port25_egress::table::{EntryKind, Table};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use verdict::{EndUser, Evidence, Verdict};

/// Where the passes are kept.
pub fn allowlist_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("screen").join("allowlist")
}

/// Rate-table keys (addresses and /64s) remembered at most.
const RATE_KEYS: usize = 200_000;

/// Everything a screened listener shares: configuration, resolver,
/// end-user table, allowlist, rate table.
pub struct Screener {
    pub cfg: Screen,
    hostname: String,
    lookups: lookup::Lookups,
    end_user: Option<(Policy, Table)>,
    pub allow: allow::Allowlist,
    rate: rate::Rate,
    unusable_logged: Mutex<HashMap<String, std::time::Instant>>,
}

impl Screener {
    /// `data_dir` holds the allowlist (`screen/allowlist`). Errors name
    /// what to fix.
    pub fn new(cfg: &Screen, hostname: &str, data_dir: &Path) -> Result<Screener, String> {
        let path = allowlist_path(data_dir);
        let allow = allow::Allowlist::open(&path, cfg.allowlist_entries)
            .map_err(|e| format!("screen allowlist {}: {e}", path.display()))?;
        Screener::with_allowlist(cfg, hostname, allow)
    }

    /// With an allowlist already loaded (`mx explain` reads the server's
    /// file without writing it).
    pub fn with_allowlist(cfg: &Screen, hostname: &str, allow: allow::Allowlist) -> Result<Screener, String> {
        let end_user = match &cfg.end_user_policy {
            Some(path) => {
                let policy =
                    port25_egress::policy::load(path).map_err(|e| format!("[mx.screen] end_user_policy: {e}"))?;
                let table = Table::new(&policy);
                Some((policy, table))
            }
            None => None,
        };
        Ok(Screener {
            cfg: cfg.clone(),
            hostname: hostname.to_owned(),
            lookups: lookup::Lookups::new(cfg)?,
            end_user,
            allow,
            rate: rate::Rate::new(cfg.rate_window, cfg.rate_per_address, cfg.rate_per_64, RATE_KEYS),
            unusable_logged: Mutex::new(HashMap::new()),
        })
    }

    /// The blocked end-user network of the egress policy that holds `ip`.
    pub fn end_user(&self, ip: IpAddr) -> Option<EndUser> {
        let (policy, table) = self.end_user.as_ref()?;
        let ip = ip.to_canonical();
        let entry = table.lookup(ip);
        if !table.is_blocked(entry) {
            return None;
        }
        let (kind, index, prefix) = port25_egress::check::deciding_entry(policy, ip)?;
        if kind != EntryKind::Network {
            return None;
        }
        let n = policy.networks.get(index)?;
        Some(EndUser { network: n.name.clone(), class: n.class.as_str(), prefix: prefix.to_string() })
    }

    /// Every check but the pregreet and the rate (which need a
    /// connection), for `port25 mx explain`: asks the lists and reverse
    /// DNS and waits for all answers (each bounded by dns_timeout).
    pub async fn explain(&self, ip: IpAddr) -> Verdict {
        let ip = ip.to_canonical();
        let end_user = self.end_user(ip);
        let rdns = async {
            match self.wants_rdns() {
                true => Some(self.lookups.rdns(ip).await),
                false => None,
            }
        };
        let (dnsbl, rdns) = tokio::join!(self.lookups.all_lists(ip), rdns);
        let ev = Evidence { end_user, dnsbl, rdns, pregreet: None };
        verdict::judge(&self.cfg, ip, &self.hostname, &ev)
    }
}
