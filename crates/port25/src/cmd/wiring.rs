//! Configuration to runtime: every translation from a checked
//! [`Config`] to the values the crates run with, in one place, so that
//! `port25 serve` (and `port25 config check`) only wire parts together.
//! Defaults are not decided here: they are the config crate's.

use port25_config::{Config, DeliveryMethod, Listener, LogFormat, Service, TlsMode};
use port25_delivery::{lmtp::Lmtp, maildir::Maildir, Target};
use port25_engine::{DataBudget, ListenerSettings};
use port25_outbound::backoff::Backoff;
use port25_outbound::client::ClientSettings;
use port25_outbound::tls_policy;
use port25_outbound::{Settings, Smarthost};
use std::sync::Arc;
use std::time::Duration;

/// `[log] format` as the event crate's.
pub fn log_format(format: LogFormat) -> port25_events::LogFormat {
    match format {
        LogFormat::Text => port25_events::LogFormat::Text,
        LogFormat::Json => port25_events::LogFormat::Json,
    }
}

/// The TLS configurations a listener may use: the server's certificate,
/// and the one that also asks devices for theirs.
pub struct ListenerTls {
    pub server: Option<Arc<rustls::ServerConfig>>,
    pub device: Option<Arc<rustls::ServerConfig>>,
    /// The implicit-TLS listeners' when they answer ACME TLS-ALPN-01
    /// (`[tls.acme]`); `server` otherwise.
    pub implicit: Option<Arc<rustls::ServerConfig>>,
}

/// One `[[listener]]` as the SMTP engine runs it; `data_budget` is the
/// process's one budget for message data in memory.
pub fn listener_settings(
    config: &Config,
    l: &Listener,
    tls: &ListenerTls,
    data_budget: &Arc<DataBudget>,
) -> ListenerSettings {
    ListenerSettings {
        name: l.name.as_str().into(),
        hostname: config.hostname.clone(),
        tls_mode: match l.tls {
            TlsMode::None => port25_engine::TlsMode::None,
            TlsMode::Starttls => port25_engine::TlsMode::StartTls,
            TlsMode::Implicit => port25_engine::TlsMode::Implicit,
        },
        // Submission listeners ask for device certificates when a device CA is set.
        tls: match (l.tls, l.service, &tls.device) {
            (TlsMode::None, _, _) => None,
            (_, Service::Submission, Some(d)) => Some(d.clone()),
            (TlsMode::Implicit, _, _) if tls.implicit.is_some() => tls.implicit.clone(),
            _ => tls.server.clone(),
        },
        proxy_protocol: l.proxy_protocol,
        proxy_protocol_from: l.proxy_protocol_from.clone(),
        limits: l.limits.clone(),
        data_budget: data_budget.clone(),
        drain_timeout: Duration::from_secs(30),
    }
}

/// `[delivery]`: where local mail goes.
pub fn delivery_target(config: &Config) -> anyhow::Result<Target> {
    Ok(match config.delivery.method {
        DeliveryMethod::Maildir => Target::Maildir(Maildir::new(&config.delivery.maildir, &config.hostname)),
        DeliveryMethod::Lmtp => Target::Lmtp(Lmtp {
            address: config.delivery.lmtp.as_deref().unwrap_or_default().parse().map_err(anyhow::Error::msg)?,
            hostname: config.hostname.clone(),
            timeout: config.delivery.lmtp_timeout,
        }),
    })
}

/// `[delivery]`: when a deferred local recipient is tried again.
pub fn delivery_retry(config: &Config) -> port25_delivery::Retry {
    port25_delivery::Retry {
        first: config.delivery.first_retry,
        max: config.delivery.max_retry,
        lifetime: config.delivery.max_lifetime,
    }
}

/// The password gate: brute-force limits and the bounds on password
/// checks, shared by submission and the dashboard.
pub fn gate(
    config: &Config,
    accounts: Arc<port25_accounts::Accounts>,
    directory: Option<Arc<dyn port25_accounts::remote::RemoteDirectory>>,
) -> port25_accounts::gate::Gate {
    let s = &config.submission;
    let gate = port25_accounts::gate::GateConfig {
        guard: port25_accounts::guard::GuardConfig {
            window: s.auth_failure_window,
            slow_after: s.auth_slow_after,
            delay_step: s.auth_delay_step,
            max_delay: s.auth_max_delay,
            ip_lock_after: s.auth_address_lock_after,
            user_lock_after: s.auth_login_lock_after,
            lockout: s.auth_lockout,
            known_for: s.auth_known_device,
        },
        max_verifications: s.auth_concurrent_checks as usize,
        verification_wait: s.auth_check_wait,
        in_flight_per_address: s.auth_in_flight_per_address,
    };
    let gate = port25_accounts::gate::Gate::new(accounts, gate);
    // A provider's directory (Dovecot, LDAP, PostgreSQL) checks the logins.
    match (directory, &config.submission.directory) {
        (Some(d), Some(c)) => gate.with_directory(d, c.timeout),
        _ => gate,
    }
}

/// The state every submission listener shares: the gate, sending limits.
pub fn submission(
    config: &Config,
    gate: Arc<port25_accounts::gate::Gate>,
    mx: Arc<port25_mx::MxPolicy>,
    outbound: port25_outbound::Enqueuer,
) -> Arc<port25_submission::Submission> {
    let s = &config.submission;
    let settings = port25_submission::SubmissionConfig {
        max_sessions_per_login: s.max_sessions_per_login,
        quota: port25_submission::quota::QuotaConfig {
            messages_per_hour: s.messages_per_hour,
            messages_per_day: s.messages_per_day,
            recipients_per_hour: s.recipients_per_hour,
            recipients_per_day: s.recipients_per_day,
            recipients_per_message: s.recipients_per_message,
        },
        trusted_networks: s.trusted_networks.clone(),
        recipient_delimiter: config.mx.recipient_delimiter,
    };
    port25_submission::Submission::with_outbound(settings, gate, mx, &config.hostname, outbound)
}

/// `[outbound]` as the outbound queue runs it.
pub fn outbound_settings(config: &Config) -> anyhow::Result<Settings> {
    let o = &config.outbound;
    let smarthost_tls = match o.smarthost {
        Some(_) => Some(
            tls_policy::smarthost_config(&smarthost_trust(config))
                .map_err(|e| anyhow::anyhow!("[outbound] smarthost: {e}"))?,
        ),
        None => None,
    };
    // MTA-STS applies to remote MXes only: not with a smarthost.
    let fetcher = match (o.mta_sts, &o.smarthost) {
        (true, None) => Some(
            port25_outbound::mta_sts::Fetcher::new(o.mta_sts_ca.as_deref(), o.mta_sts_port, o.mta_sts_timeout)
                .map_err(|e| anyhow::anyhow!("[outbound] mta_sts: {e}"))?,
        ),
        _ => None,
    };
    let sts = match &fetcher {
        Some(f) => {
            let dir = config.data_dir.join("mta-sts");
            let sts = port25_outbound::mta_sts::Sts::new(f.clone(), dir.clone())
                .map_err(|e| anyhow::anyhow!("[outbound] mta_sts: cannot create {}: {e}", dir.display()))?;
            Some(std::sync::Arc::new(sts))
        }
        None => None,
    };
    // TLS-RPT counts sessions under MTA-STS and DANE policies.
    let dane = o.dane && o.smarthost.is_none();
    let tls_rpt = (o.tls_rpt && (sts.is_some() || dane)).then(|| {
        std::sync::Arc::new(port25_outbound::tls_rpt::TlsRpt::new(config.data_dir.join("tls-rpt"), &config.hostname))
    });
    Ok(Settings {
        sts,
        tls_rpt,
        hostname: config.hostname.clone(),
        port: o.port,
        smarthost: o.smarthost.as_ref().map(|(host, port)| Smarthost {
            host: host.clone(),
            port: *port,
            auth: o.smarthost_auth.clone(),
            require_tls: o.smarthost_require_tls,
        }),
        require_tls: o.require_tls.clone(),
        targets: port25_outbound::targets::TargetPolicy {
            allowed: o.allowed_private_networks.clone(),
            own: config.listeners.iter().map(|l| l.address).collect(),
        },
        backoff: Backoff { first: o.first_retry, max: o.max_retry, jitter: o.retry_jitter },
        max_lifetime: o.max_lifetime,
        delay_warning: o.delay_warning,
        connections_per_destination: o.connections_per_destination,
        max_connections: o.max_connections,
        messages_per_connection: o.messages_per_connection,
        idle_connection: o.idle_connection,
        client: ClientSettings {
            helo_name: o.helo_name.clone().unwrap_or_else(|| config.hostname.clone()),
            connect_timeout: o.connect_timeout,
            command_timeout: o.command_timeout,
            data_timeout: o.data_timeout,
            tls: tls_policy::client_config(),
            smarthost_tls,
            sts: fetcher,
        },
        hold: o.hold,
        stats_interval: o.stats_interval,
        holds: Default::default(),
    })
}

/// How `[outbound]` says the smarthost's certificate is verified.
pub fn smarthost_trust(config: &Config) -> tls_policy::SmarthostTrust {
    let o = &config.outbound;
    match (&o.smarthost_ca, o.smarthost_pin_sha256.is_empty()) {
        (_, false) => tls_policy::SmarthostTrust::Pins(o.smarthost_pin_sha256.clone()),
        (Some(ca), true) => tls_policy::SmarthostTrust::Ca(ca.clone()),
        (None, true) => tls_policy::SmarthostTrust::SystemRoots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_runs_as_configured() {
        let config = port25_config::embedded_default();
        let budget = DataBudget::new(config.max_data_memory);
        let tls = ListenerTls { server: None, device: None, implicit: None };
        let modes: Vec<_> = config
            .listeners
            .iter()
            .map(|l| listener_settings(&config, l, &tls, &budget))
            .map(|s| (s.name.to_string(), s.tls_mode, s.limits))
            .collect();
        let want = [
            ("mx", port25_engine::TlsMode::StartTls),
            ("submission", port25_engine::TlsMode::StartTls),
            ("submissions", port25_engine::TlsMode::Implicit),
        ];
        for ((name, mode, limits), (l, (want_name, want_mode))) in
            modes.into_iter().zip(config.listeners.iter().zip(want))
        {
            assert_eq!((name.as_str(), mode), (want_name, want_mode));
            assert_eq!(limits, l.limits, "{name}: the configured limits, untranslated");
        }
        assert_eq!(delivery_retry(&config).first, config.delivery.first_retry);
        assert!(matches!(delivery_target(&config).unwrap(), Target::Maildir(_)));
    }
}
