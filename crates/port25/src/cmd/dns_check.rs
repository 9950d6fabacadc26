//! `port25 dns check DOMAIN`: what the configuration says the domain's
//! records must be (server name, DKIM keys, submission host and ports),
//! handed to crates/dnscheck, which asks live DNS and judges.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(
    domain: &str,
    config: Option<PathBuf>,
    nameservers: &[String],
    sending: Vec<IpAddr>,
    web_host: Option<String>,
    ttl: u32,
) -> anyhow::Result<ExitCode> {
    let config = match &config {
        Some(path) => match port25_config::load(path) {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => port25_config::embedded_default(),
    };
    let domain = domain.trim_end_matches('.').to_lowercase();
    if !config.mx.domains.contains(&domain) {
        errln!(
            "port25 dns check: {domain} is not one of the [mx] domains ({}); add it to [mx] domains first",
            config.mx.domains.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let mut servers = Vec::new();
    for n in nameservers {
        let addr = n.parse::<SocketAddr>().or_else(|_| n.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
        match addr {
            Ok(a) => servers.push(a),
            Err(_) => {
                errln!("port25 dns check: --nameserver {n:?} is not an address or address:port");
                return Ok(ExitCode::from(2));
            }
        }
    }
    if servers.is_empty() {
        servers = config.outbound.nameservers.clone();
    }
    if servers.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        servers = port25_outbound::dns::resolv_conf_servers(&text);
    }
    if servers.is_empty() {
        errln!(
            "port25 dns check: no name server: give --nameserver, set [outbound] nameservers, or fill /etc/resolv.conf"
        );
        return Ok(ExitCode::from(2));
    }
    let mut dkim = Vec::new();
    for k in config.outbound.dkim.iter().filter(|k| k.domain == domain) {
        let (record, keys) = port25_outbound::dkim::public_record(&k.private_key).map_err(anyhow::Error::msg)?;
        dkim.push(port25_dnscheck::DkimExpect { selector: k.selector.clone(), record, keys });
    }
    let expect = port25_dnscheck::Expect {
        domain: domain.clone(),
        hostname: config.outbound.helo_name.clone().unwrap_or_else(|| config.hostname.clone()).to_lowercase(),
        sending,
        dkim,
        submission_host: config.http.submission_host.clone(),
        submission_port: config.http.submission_port,
        submissions_port: config.http.submissions_port,
        web_host: web_host.unwrap_or_else(|| config.http.submission_host.clone()),
        ttl,
        // The same CAs, port and timeout as deliveries use ([outbound] mta_sts_*).
        sts: Some(
            port25_outbound::mta_sts::Fetcher::new(
                config.outbound.mta_sts_ca.as_deref(),
                config.outbound.mta_sts_port,
                config.outbound.mta_sts_timeout,
            )
            .map_err(anyhow::Error::msg)?,
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let findings = runtime.block_on(async {
        let dns = port25_dnscheck::Dns::new(&servers, config.outbound.dns_timeout).map_err(anyhow::Error::msg)?;
        anyhow::Ok(port25_dnscheck::check(&dns, &expect).await)
    })?;
    out!("{}", port25_dnscheck::render(&domain, &findings));
    let failed = findings.iter().any(|f| f.level == port25_dnscheck::Level::Error);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
