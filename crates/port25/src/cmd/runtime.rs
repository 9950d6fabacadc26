//! The runtime one configuration makes (issue 15, section 2): the MX
//! policy (domains, recipients, sender authentication, greylisting), the
//! screener (`[mx.screen]`), the accounts and the provider's directory, the
//! password gate, submission (sending limits, DKIM keys) and the TLS
//! configurations. One [`Runtime`] is immutable; a reload builds the next
//! one beside it (cmd/reload.rs) and the listeners' next generation runs
//! on it (cmd/generation.rs), so a session keeps the runtime it was
//! accepted with until it ends.
//!
//! A part whose settings did not change is carried over, not rebuilt: its
//! state (brute-force counters and lockouts, sending quotas, sessions per
//! login, the screen's rate table, greylisting) survives a reload that
//! does not touch it. A part that is rebuilt starts with fresh state (with
//! `[submission.shared]`, the counters live in Redis and survive anyway).
//!
//! What cannot change while serving (the process's directories, the spool,
//! the delivery target, the outbound queue's settings, logging, HTTP, the
//! abuse desk, the host name) is taken from the running configuration by
//! [`effective`], and [`restart_needed`] names what differed.

use port25_accounts::gate::Gate;
use port25_accounts::remote::RemoteDirectory;
use port25_accounts::Accounts;
use port25_config::{Config, Service};
use port25_engine::DataBudget;
use port25_mx::MxPolicy;
use port25_screen::Screener;
use port25_spool::Spool;
use port25_submission::Submission;
use std::sync::Arc;

/// What lives as long as the process, whatever a reload says.
pub struct Fixed {
    /// The durable spool of accepted mail.
    pub spool: Spool,
    /// The outbound queue's spool (signed mail is enqueued there).
    pub outbound: port25_spool::Spool,
    pub shared: Option<port25_shared::Shared>,
    pub desk: Option<Arc<port25_abuse::Desk>>,
    /// One budget for message data in memory, whichever listener it arrives on.
    pub data_budget: Arc<DataBudget>,
}

/// One configuration's runtime; see the module comment.
pub struct Runtime {
    /// The configuration in effect ([`effective`]).
    pub config: Config,
    pub accounts: Arc<Accounts>,
    pub directory: Option<Arc<dyn RemoteDirectory>>,
    pub gate: Option<Arc<Gate>>,
    pub mx: Arc<MxPolicy>,
    pub submission: Option<Arc<Submission>>,
    pub screener: Option<Arc<Screener>>,
    pub tls: super::wiring::ListenerTls,
    /// Submission's way into the outbound queue, with the DKIM keys.
    pub enqueuer: port25_outbound::Enqueuer,
    /// The process's one budget for message data in memory ([`Fixed`]'s).
    pub data_budget: Arc<DataBudget>,
}

/// Whether any listener takes authenticated submission.
pub fn wants_submission(config: &Config) -> bool {
    config.listeners.iter().any(|l| l.service == Service::Submission || l.legacy_submission)
}

/// `fresh` with the settings that only a restart applies taken from
/// `running`: the configuration a reload puts in effect.
pub fn effective(running: &Config, fresh: &Config) -> Config {
    let mut out = fresh.clone();
    out.hostname = running.hostname.clone();
    out.data_dir = running.data_dir.clone();
    out.max_data_memory = running.max_data_memory;
    out.log_format = running.log_format;
    out.log_level = running.log_level.clone();
    out.delivery = running.delivery.clone();
    out.http = running.http.clone();
    out.abuse = running.abuse.clone();
    out.submission.shared = running.submission.shared.clone();
    // [tls.acme]: its order loop and the TLS-ALPN-01 answerer start with serve.
    out.acme = running.acme.clone();
    // [outbound]: the queue runs with its start-up settings; the DKIM
    // keys are submission's (it signs at enqueue) and change live.
    out.outbound = port25_config::Outbound { dkim: fresh.outbound.dkim.clone(), ..running.outbound.clone() };
    out
}

/// The settings that changed in `fresh` but wait for a restart (what
/// [`effective`] kept from `running`).
pub fn restart_needed(running: &Config, fresh: &Config) -> Vec<&'static str> {
    let kept = effective(running, fresh);
    let mut out = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            out.push(name);
        }
    };
    check(kept.hostname != fresh.hostname, "hostname");
    check(kept.data_dir != fresh.data_dir, "data_dir");
    check(kept.max_data_memory != fresh.max_data_memory, "max_data_memory");
    check(kept.log_format != fresh.log_format || kept.log_level != fresh.log_level, "[log]");
    check(kept.delivery != fresh.delivery, "[delivery]");
    check(kept.outbound != fresh.outbound, "[outbound] (but [[outbound.dkim]])");
    check(kept.http != fresh.http, "[http]");
    check(kept.abuse != fresh.abuse, "[abuse]");
    check(kept.submission.shared != fresh.submission.shared, "[submission.shared]");
    check(kept.acme != fresh.acme, "[tls.acme]");
    out
}

impl Runtime {
    /// The runtime for `config` (already [`effective`]), carrying over
    /// from `self` every part whose settings are the same. Errors name the
    /// section to fix; nothing is changed by a failure.
    pub fn next(
        &self,
        config: Config,
        fixed: &Fixed,
        certs: Option<&Arc<port25_listen::tls::CertStore>>,
    ) -> anyhow::Result<Runtime> {
        let old = &self.config;
        let (s, o) = (&config.submission, &old.submission);
        let accounts = match s.accounts == o.accounts {
            true => self.accounts.clone(),
            false => Arc::new(super::users::open(&config)?),
        };
        let same_accounts = Arc::ptr_eq(&accounts, &self.accounts);
        let same_directory = s.directory == o.directory;
        let directory = match (&s.directory, same_directory) {
            (_, true) => self.directory.clone(),
            (Some(d), false) => {
                Some(port25_directory::open(d).map_err(|e| anyhow::anyhow!("[submission.directory]: {e}"))?)
            }
            (None, false) => None,
        };
        let gate = match (&self.gate, s == o) {
            (Some(g), true) => Some(g.clone()),
            _ if wants_submission(&config) => {
                let gate = super::wiring::gate(&config, accounts.clone(), directory.clone());
                Some(Arc::new(match &fixed.shared {
                    Some(sh) => gate.with_shared(sh.clone()),
                    None => gate,
                }))
            }
            _ => None,
        };
        let mx = match config.mx == old.mx && same_accounts && same_directory {
            true => self.mx.clone(),
            false => {
                let target = super::wiring::delivery_target(&config)?;
                super::recipients::mx_policy(
                    &config,
                    fixed.spool.clone(),
                    accounts.clone(),
                    &target,
                    directory.clone(),
                )?
            }
        };
        let screener = match (config.mx.screen == old.mx.screen, config.mx.screen.enabled) {
            (true, _) => self.screener.clone(),
            (false, true) => Some(Arc::new(
                Screener::new(&config.mx.screen, &config.hostname, &config.data_dir)
                    .map_err(|e| anyhow::anyhow!("[mx.screen]: {e}"))?,
            )),
            (false, false) => None,
        };
        let enqueuer = match config.outbound.dkim == old.outbound.dkim {
            true => self.enqueuer.clone(),
            false => {
                let keys: Vec<_> = config
                    .outbound
                    .dkim
                    .iter()
                    .map(|k| (k.domain.clone(), k.selector.clone(), k.private_key.clone()))
                    .collect();
                let dkim = port25_outbound::dkim::Dkim::load(&keys)
                    .map_err(|e| anyhow::anyhow!("[outbound.dkim]: {e}; make a key with `port25 dkim keygen`"))?;
                port25_outbound::Enqueuer::with_dkim(fixed.outbound.clone(), dkim)
            }
        };
        let carried = self.submission.as_ref().filter(|_| {
            gate.as_ref().zip(self.gate.as_ref()).is_some_and(|(a, b)| Arc::ptr_eq(a, b))
                && Arc::ptr_eq(&mx, &self.mx)
                && config.outbound.dkim == old.outbound.dkim
                && config.mx.recipient_delimiter == old.mx.recipient_delimiter
        });
        let submission = match (carried, &gate) {
            (Some(sub), _) => Some(sub.clone()),
            (None, Some(gate)) if wants_submission(&config) => {
                let sub = super::wiring::submission(&config, gate.clone(), mx.clone(), enqueuer.clone());
                if let Some(sh) = &fixed.shared {
                    sub.set_shared(sh.clone());
                }
                if let Some(d) = &fixed.desk {
                    sub.set_watch(Arc::new(super::abuse::Watch(d.clone())));
                }
                Some(sub)
            }
            _ => None,
        };
        let tls = super::wiring::ListenerTls {
            server: certs.map(|c| c.server_config()).transpose()?,
            device: super::serve::device_tls_config(&config, &certs.cloned())?,
            // Built at start over the same certificate store ([tls.acme] is
            // restart-only), so it serves whatever a reload put there.
            implicit: self.tls.implicit.clone(),
        };
        Ok(Runtime {
            config,
            accounts,
            directory,
            gate,
            mx,
            submission,
            screener,
            tls,
            enqueuer,
            data_budget: fixed.data_budget.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        port25_config::parse(text, "t.toml".as_ref(), "".as_ref()).unwrap()
    }

    #[test]
    fn only_what_cannot_change_live_waits_for_a_restart() {
        // ([http] names derived from the hostname change with it: restart_needed says [http] too.)
        let http = "[http]\nsubmission_host = \"smtp.example\"\n";
        let running = parse(&format!("hostname = \"a.example\"\n[mx]\ndomains = [\"a.example\"]\n{http}"));
        let fresh = parse(&format!(
            "hostname = \"b.example\"\ndata_dir = \"/elsewhere\"\n[mx]\ndomains = [\"b.example\"]\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"127.0.0.1:24\"\n{http}",
        ));
        let pending = restart_needed(&running, &fresh);
        for name in ["hostname", "data_dir", "[delivery]"] {
            assert!(pending.contains(&name), "{name} in {pending:?}");
        }
        assert!(!pending.iter().any(|p| p.starts_with("[mx") || p.starts_with("[submission]")), "{pending:?}");
        let eff = effective(&running, &fresh);
        assert_eq!(eff.mx.domains, vec!["b.example"], "[mx] applies live");
        assert_eq!((eff.hostname.as_str(), &eff.data_dir), (running.hostname.as_str(), &running.data_dir));
        assert_eq!(eff.delivery, running.delivery);
        assert!(restart_needed(&running, &running).is_empty());
    }
}
