//! `[mx.auth]` and `[mx.greylist]` for `port25 serve`: the authenticator
//! (its resolver and the Public Suffix List) and the greylist database,
//! attached to the MX policy (crates/mx/src/auth, crates/mx/src/greylist.rs).

use port25_config::{AuthAction, Config};
use port25_mx::auth::{Action, Authenticator, Settings};
use port25_mx::greylist::{self, Greylist};
use port25_mx::MxPolicy;
use std::sync::Arc;

fn action(a: AuthAction) -> Action {
    match a {
        AuthAction::Ignore => Action::Ignore,
        AuthAction::Tag => Action::Tag,
        AuthAction::Reject => Action::Reject,
    }
}

/// The authenticator of this configuration (also used by greylisting's
/// exemptions and by `port25 mx explain`).
pub fn authenticator(config: &Config) -> anyhow::Result<Arc<Authenticator>> {
    let a = &config.mx.auth;
    let settings = Settings {
        authserv_id: a.authserv_id.clone(),
        nameservers: a.nameservers.clone(),
        dns_timeout: a.dns_timeout,
        timeout: a.timeout,
        dmarc_reject: action(a.dmarc_reject),
        dmarc_quarantine: action(a.dmarc_quarantine),
        spf_fail: action(a.spf_fail),
        max_signatures: a.max_signatures,
        public_suffix_list: a.public_suffix_list.clone(),
    };
    Authenticator::new(settings).map(Arc::new).map_err(|e| {
        anyhow::anyhow!("[mx.auth]: {e} (install Debian's publicsuffix package, or set [mx.auth] public_suffix_list to a copy of publicsuffix.org's list)")
    })
}

/// The MX policy with sender authentication and greylisting as configured.
pub fn attach(config: &Config, mut mx: MxPolicy) -> anyhow::Result<MxPolicy> {
    let (a, g) = (&config.mx.auth, &config.mx.greylist);
    if !a.enabled && !g.enabled {
        return Ok(mx);
    }
    let auth = authenticator(config)?;
    if a.enabled {
        mx = mx.with_auth(auth.clone());
    }
    if g.enabled {
        let settings = greylist::Settings {
            path: g.database.clone(),
            delay: g.delay,
            max_wait: g.max_wait,
            allowlist_for: g.allowlist_for,
            ipv4_prefix: g.ipv4_prefix,
            ipv6_prefix: g.ipv6_prefix,
            exempt_spf_pass: g.exempt_spf_pass,
            dnswl: g.dnswl.clone(),
            max_entries: g.max_entries,
        };
        if let Some(dir) = g.database.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("[mx.greylist] database directory {}: {e}", dir.display()))?;
        }
        mx = mx.with_greylist(Arc::new(Greylist::open(settings, auth).map_err(anyhow::Error::msg)?));
    }
    Ok(mx)
}
