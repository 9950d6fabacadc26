//! The file's shape (`Raw*`, as written) and the checked result ([`Config`]).

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    hostname: Option<Spanned<String>>,
    data_dir: Option<String>,
    max_data_memory: Option<Spanned<usize>>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    mx: RawMx,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    submission: crate::submission::RawSubmission,
    #[serde(default)]
    outbound: crate::outbound::RawOutbound,
    #[serde(default)]
    http: crate::http::RawHttp,
    #[serde(default)]
    abuse: crate::abuse::RawAbuse,
    #[serde(default, rename = "listener")]
    listeners: Option<Vec<Spanned<RawListener>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    acme: Option<Spanned<crate::acme::RawAcme>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMx {
    domains: Option<Spanned<Vec<Spanned<String>>>>,
    recipients: Option<Vec<Spanned<String>>>,
    recipients_file: Option<Spanned<String>>,
    recipient_delimiter: Option<Spanned<String>>,
    catch_all: Option<Vec<Spanned<String>>>,
    bounce_after_accept: Option<bool>,
    verify_timeout_secs: Option<Spanned<u64>>,
    verify_positive_ttl_secs: Option<u64>,
    verify_negative_ttl_secs: Option<u64>,
    verify_cache_entries: Option<usize>,
    #[serde(default)]
    auth: crate::mxauth::RawMxAuth,
    #[serde(default)]
    greylist: crate::mxauth::RawGreylist,
    #[serde(default)]
    screen: crate::screen::RawScreen,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    method: Option<Spanned<DeliveryMethod>>,
    maildir: Option<String>,
    lmtp: Option<Spanned<String>>,
    lmtp_timeout_secs: Option<u64>,
    first_retry_secs: Option<Spanned<u64>>,
    max_retry_secs: Option<Spanned<u64>>,
    max_lifetime_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: String,
    address: SocketAddr,
    #[serde(default)]
    service: Service,
    tls: Option<Spanned<TlsMode>>,
    proxy_protocol: Option<Spanned<bool>>,
    proxy_protocol_from: Option<Spanned<Vec<Spanned<String>>>>,
    /// Submission only: offer AUTH before TLS (tests, trusted loopback).
    plaintext_auth: Option<bool>,
    /// MX only: authenticated submission on port 25 during the migration.
    legacy_submission: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    max_commands_before_mail: Option<u32>,
    max_recipients: Option<usize>,
    max_message_size: Option<usize>,
    max_command_line: Option<usize>,
    max_data_line: Option<usize>,
    max_errors: Option<u32>,
    command_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
    handshake_timeout_secs: Option<u64>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMethod {
    #[default]
    Maildir,
    Lmtp,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Port 25: mail for local domains from other servers.
    #[default]
    Mx,
    /// Ports 587/465: the provider's users, authenticated (RFC 6409).
    Submission,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Implicit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub hostname: String,
    pub data_dir: PathBuf,
    /// Bytes of message data all sessions together may hold in memory.
    pub max_data_memory: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    /// (certificate, key); `None` means a self-signed pair in data_dir/tls.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// `[tls.acme]`: the certificate comes from an ACME CA (crates/port25/src/cmd/acme.rs).
    pub acme: Option<crate::acme::Acme>,
    pub mx: Mx,
    pub delivery: Delivery,
    pub submission: crate::submission::Submission,
    pub outbound: crate::outbound::Outbound,
    pub http: crate::http::Http,
    pub abuse: crate::abuse::Abuse,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub domains: Vec<String>,
    pub recipients: Option<Vec<String>>,
    pub recipient_delimiter: Option<char>,
    /// Local domains where any plain local part is accepted.
    pub catch_all: Vec<String>,
    /// DSNs for unauthenticated port-25 mail that fails after acceptance.
    pub bounce_after_accept: bool,
    /// Recipient verification against the LMTP server at RCPT.
    pub verify: Verify,
    /// `[mx.auth]`: SPF, DKIM, DMARC, iprev at the end of DATA.
    pub auth: crate::mxauth::MxAuth,
    /// `[mx.greylist]`: greylisting at RCPT.
    pub greylist: crate::mxauth::Greylist,
    /// Screening before the banner (`[mx.screen]`).
    pub screen: crate::screen::Screen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verify {
    pub timeout: Duration,
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub cache_entries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub method: DeliveryMethod,
    pub maildir: PathBuf,
    pub lmtp: Option<String>,
    pub lmtp_timeout: Duration,
    /// A deferred recipient is tried again after this, then after twice
    /// as long each time, up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// A recipient still deferred when its message is this old fails for
    /// good (its sender gets a DSN).
    pub max_lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub service: Service,
    pub tls: TlsMode,
    pub proxy_protocol: bool,
    /// The proxies (load balancers) whose PROXY header is believed.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
    /// Submission listeners: AUTH offered before TLS (for tests only).
    pub plaintext_auth: bool,
    /// MX listeners: AUTH after STARTTLS still works, each use recorded.
    pub legacy_submission: bool,
    /// What the SMTP engine enforces on this listener.
    pub limits: Limits,
}

/// What an SMTP listener enforces, the engine's [`Limits`] type too
/// (port25-engine uses this one), so a listener's limits go from the file
/// to the engine without a translation, and their defaults are written
/// here only: [`Limits::default`] for the MX, [`Limits::for_service`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one client may have open at once: an IPv4 address, or
    /// an IPv6 /64. Over it: 421 4.7.0.
    pub max_connections_per_client: usize,
    /// Commands outside a transaction (NOOP, RSET, VRFY, EHLO, ...) before a
    /// successful MAIL; protects against probing and idle abuse.
    pub max_commands_before_mail: u32,
    pub max_recipients: usize,
    /// Largest message accepted, in bytes (advertised in SIZE).
    pub max_message_size: usize,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Longest message line, CRLF excluded (998 per RFC 5322 §2.1.1).
    pub max_data_line: usize,
    pub max_errors: u32,
    /// Wait for each command (RFC 5321 §4.5.3.2.7 says at least 5 minutes).
    pub command_timeout: Duration,
    /// Wait for each block of message data (§4.5.3.2.6: 3 minutes).
    pub data_timeout: Duration,
    /// How long a PROXY header or a TLS handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 20_000,
            max_connections_per_client: MX_CONNECTIONS_PER_CLIENT,
            max_commands_before_mail: 50,
            max_recipients: 100,
            max_message_size: 25 * 1024 * 1024,
            max_command_line: 2048,
            max_data_line: 998,
            max_errors: 20,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The defaults of a listener of `service`.
    pub fn for_service(service: Service) -> Limits {
        let per_client = match service {
            Service::Mx => MX_CONNECTIONS_PER_CLIENT,
            Service::Submission => SUBMISSION_CONNECTIONS_PER_CLIENT,
        };
        Limits { max_connections_per_client: per_client, ..Limits::default() }
    }
}

pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // or truncates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// A network as a configuration writes it: a prefix ("192.0.2.0/28",
/// "2001:db8::/64") or a single address. An IPv4-mapped one
/// ("::ffff:192.0.2.1", "::ffff:192.0.2.0/120") is the IPv4 network: peers
/// are folded the same way when they connect, so the mapped form would
/// never match. Shared by every list of networks (trusted networks, PROXY
/// and HTTP proxies, allowed MX targets, the sensor's listeners).
pub fn network(s: &str) -> Option<ipnet::IpNet> {
    let net = s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).ok()?;
    Some(match net {
        ipnet::IpNet::V6(n) if n.prefix_len() >= 96 && n.addr().to_ipv4_mapped().is_some() => {
            let v4 = n.addr().to_ipv4_mapped().expect("checked");
            ipnet::IpNet::new(v4.into(), n.prefix_len() - 96).expect("at most 32").trunc()
        }
        net => net.trunc(),
    })
}

/// Default connections per client: the MX 20; submission 50, since a
/// whole office behind one NAT address submits there.
pub const MX_CONNECTIONS_PER_CLIENT: usize = 20;
pub const SUBMISSION_CONNECTIONS_PER_CLIENT: usize = 50;
/// Default budget for message data in memory, all sessions together.
pub const MAX_DATA_MEMORY: usize = 256 * 1024 * 1024;

pub(crate) fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

pub(crate) fn resolve(raw: RawConfig, text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);

    let hostname = match raw.hostname {
        Some(h) if !valid_domain(h.get_ref()) => {
            return Err(err(
                h.span().start,
                format!("hostname {:?} is not a valid host name", h.get_ref()),
                "use a fully qualified name such as \"mx.example.net\"",
            ))
        }
        Some(h) => h.into_inner(),
        None => system_hostname(),
    };
    let data_dir = crate::absolute(base, raw.data_dir.as_deref().unwrap_or("port25-data"));
    let max_data_memory = match raw.max_data_memory {
        None => MAX_DATA_MEMORY,
        Some(m) if *m.get_ref() < 1024 * 1024 => {
            return Err(err(
                m.span().start,
                format!("max_data_memory {} is below 1 MiB", m.get_ref()),
                "give the bytes of message data all sessions together may hold in memory, e.g. 268435456 (256 MiB)",
            ))
        }
        Some(m) => m.into_inner(),
    };

    let acme_raw = raw.tls.acme;
    if let (Some(_), Some(c)) = (&acme_raw, &raw.tls.certificate) {
        return Err(err(
            c.span().start,
            "[tls] certificate is set and so is [tls.acme]".into(),
            "use either your own files (certificate, private_key) or [tls.acme], not both",
        ));
    }
    let tls_files = match (raw.tls.certificate, raw.tls.private_key) {
        (Some(c), Some(k)) => Some((crate::absolute(base, c.get_ref()), crate::absolute(base, k.get_ref()))),
        (None, None) => None,
        (Some(c), None) => {
            return Err(err(
                c.span().start,
                "[tls] certificate is set without private_key".into(),
                "set both certificate and private_key, or neither for a self-signed certificate",
            ))
        }
        (None, Some(k)) => {
            return Err(err(
                k.span().start,
                "[tls] private_key is set without certificate".into(),
                "set both certificate and private_key, or neither for a self-signed certificate",
            ))
        }
    };

    // Where a screening error points: its `enabled` line.
    let screen_at = raw.mx.screen.enabled.as_ref().map_or(0, |e| e.span().start);
    let mx = resolve_mx(raw.mx, &hostname, &data_dir, text, file, base)?;
    let delivery = resolve_delivery(raw.delivery, &data_dir, text, file, base)?;
    let listeners = resolve_listeners(raw.listeners.unwrap_or_default(), text, file)?;
    let submission = crate::submission::resolve(raw.submission, text, file, base, &data_dir)?;
    let outbound = crate::outbound::resolve(raw.outbound, text, file, base)?;
    let http = crate::http::resolve(raw.http, text, file, base, &hostname, &mx.domains)?;
    let abuse = crate::abuse::resolve(raw.abuse, text, file, base)?;
    let acme = match acme_raw {
        Some(a) => {
            let at = a.span().start;
            let acme = crate::acme::resolve(a.into_inner(), text, file, base, at)?;
            crate::acme::check_reachable(&acme, &http, &listeners, text, file, at)?;
            Some(acme)
        }
        None => None,
    };
    // The screen talks in clear before the banner: an implicit-TLS port-25
    // listener could not be screened, and must not be left out silently.
    if let Some(l) = listeners
        .iter()
        .find(|l| mx.screen.enabled && l.service == Service::Mx && l.tls == TlsMode::Implicit && !l.legacy_submission)
    {
        return Err(err(
            screen_at,
            format!("[mx.screen] is enabled but listener {:?} is an MX with implicit TLS, which cannot be screened before the banner", l.name),
            "use tls = \"starttls\" on port-25 listeners (RFC 3207), or disable [mx.screen]",
        ));
    }

    let log_level = raw.log.level.unwrap_or_else(|| "info".into());
    Ok(Config {
        hostname,
        data_dir,
        max_data_memory,
        log_format: raw.log.format.unwrap_or_default(),
        log_level,
        tls_files,
        acme,
        mx,
        delivery,
        submission,
        outbound,
        http,
        abuse,
        listeners,
    })
}

/// `[mx]`: the local domains (the host name and localhost unless listed),
/// the recipients that exist, the delimiter, catch-alls, verification.
fn resolve_mx(
    mut mx: RawMx,
    hostname: &str,
    data_dir: &Path,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Mx, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let screen = crate::screen::resolve(std::mem::take(&mut mx.screen), text, file, base)?;
    let mut domains = Vec::new();
    match mx.domains {
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(err(
                    list.span().start,
                    "[mx] domains is empty".into(),
                    "list at least one domain this MX receives mail for",
                ));
            }
            for d in list.into_inner() {
                if !valid_domain(d.get_ref()) {
                    return Err(err(
                        d.span().start,
                        format!("{:?} is not a valid domain", d.get_ref()),
                        "write a domain name such as \"example.net\" (no @, no brackets, no trailing dot)",
                    ));
                }
                domains.push(d.into_inner().to_lowercase());
            }
        }
        None => {
            domains.push(hostname.to_lowercase());
            if hostname != "localhost" {
                domains.push("localhost".into());
            }
        }
    }

    let recipient_delimiter = match mx.recipient_delimiter {
        None => None,
        Some(d) => {
            let mut chars = d.get_ref().chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if "+-_=".contains(c) => Some(c),
                _ => {
                    return Err(err(
                        d.span().start,
                        format!("recipient_delimiter {:?} is not one character of + - _ =", d.get_ref()),
                        "use \"+\" (the common choice) or remove the key",
                    ))
                }
            }
        }
    };

    let recipients =
        resolve_recipients(mx.recipients, mx.recipients_file, &domains, recipient_delimiter, text, file, base)?;
    let mut catch_all = Vec::new();
    for d in mx.catch_all.unwrap_or_default() {
        if !domains.iter().any(|l| l.eq_ignore_ascii_case(d.get_ref())) {
            return Err(err(
                d.span().start,
                format!("catch_all domain {:?} is not one of [mx] domains", d.get_ref()),
                "list it in [mx] domains too, or remove it from catch_all",
            ));
        }
        catch_all.push(d.into_inner().to_lowercase());
    }
    let verify = Verify {
        timeout: Duration::from_secs(match mx.verify_timeout_secs {
            Some(t) if *t.get_ref() == 0 => {
                return Err(err(
                    t.span().start,
                    "verify_timeout_secs must be greater than 0".into(),
                    "remove the key for the default (10)",
                ))
            }
            t => t.map_or(10, Spanned::into_inner),
        }),
        positive_ttl: Duration::from_secs(mx.verify_positive_ttl_secs.unwrap_or(3600)),
        negative_ttl: Duration::from_secs(mx.verify_negative_ttl_secs.unwrap_or(300)),
        cache_entries: mx.verify_cache_entries.unwrap_or(100_000),
    };

    let auth = crate::mxauth::resolve_auth(mx.auth, hostname, text, file, base)?;
    let greylist = crate::mxauth::resolve_greylist(mx.greylist, data_dir, text, file, base)?;
    Ok(Mx {
        domains,
        recipients,
        recipient_delimiter,
        catch_all,
        bounce_after_accept: mx.bounce_after_accept.unwrap_or(false),
        verify,
        auth,
        greylist,
        screen,
    })
}

/// `[mx] recipients` and `recipients_file`: full addresses of the local
/// domains, as the MX will judge them (no extension, unquoted).
fn resolve_recipients(
    listed: Option<Vec<Spanned<String>>>,
    recipients_file: Option<Spanned<String>>,
    domains: &[String],
    recipient_delimiter: Option<char>,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Option<Vec<String>>, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let mut recipients: Option<Vec<String>> = None;
    let check_recipient = |addr: &str, offset: usize| -> Result<String, ConfigError> {
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return Err(err(
                offset,
                format!("recipient {addr:?} has no @domain"),
                "write full addresses such as \"alice@example.net\"",
            ));
        };
        if local.is_empty() || !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return Err(err(
                offset,
                format!("recipient {addr:?} is not in a local domain"),
                "add its domain to [mx] domains or remove the address",
            ));
        }
        // The MX judges the mailbox after the delimiter, unquoted: an entry
        // with either could never match, so it would refuse that mail.
        if let Some(d) = recipient_delimiter.filter(|d| local.contains(*d)) {
            let base = local.split(d).next().unwrap_or_default();
            return Err(err(
                offset,
                format!("recipient {addr:?} contains the recipient_delimiter {d:?}: the MX looks up the mailbox without its extension, so it never matches"),
                &format!("list the mailbox itself, \"{base}@{domain}\" (its extensions are accepted with it)"),
            ));
        }
        if local.contains(['"', '\\']) {
            return Err(err(
                offset,
                format!("recipient {addr:?} is quoted: quoted local parts are refused at RCPT, so it never matches"),
                "list a plain address",
            ));
        }
        Ok(addr.to_lowercase())
    };
    if let Some(list) = listed {
        let mut out = Vec::new();
        for r in list {
            out.push(check_recipient(r.get_ref(), r.span().start)?);
        }
        recipients = Some(out);
    }
    if let Some(f) = recipients_file {
        let path = crate::absolute(base, f.get_ref());
        let content = std::fs::read_to_string(&path).map_err(|e| {
            err(
                f.span().start,
                format!("cannot read recipients_file {}: {e}", path.display()),
                "give a readable file with one address per line",
            )
        })?;
        let list = recipients.get_or_insert_with(Vec::new);
        for (n, line) in content.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let addr = check_recipient(line, f.span().start).map_err(|mut e| {
                e.message = format!("{} (line {} of {})", e.message, n + 1, path.display());
                e
            })?;
            list.push(addr);
        }
    }

    Ok(recipients)
}

/// `[delivery]`: Maildir (under data_dir unless set) or LMTP, and retries.
fn resolve_delivery(
    raw: RawDelivery,
    data_dir: &Path,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Delivery, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let method_at = raw.method.as_ref().map_or(0, |m| m.span().start);
    let method = raw.method.map(Spanned::into_inner).unwrap_or_default();
    let lmtp = raw.lmtp.map(|l| (l.span().start, l.into_inner()));
    if let Some((offset, addr)) = &lmtp {
        let ok = addr.strip_prefix("unix:").is_some_and(|p| p.starts_with('/'))
            || addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(err(
                *offset,
                format!("lmtp address {addr:?} is not understood"),
                "write \"unix:/run/dovecot/lmtp\" or \"127.0.0.1:24\"",
            ));
        }
    }
    if method == DeliveryMethod::Lmtp && lmtp.is_none() {
        return Err(err(
            method_at,
            "delivery method is lmtp but no lmtp address is set".into(),
            "add lmtp = \"unix:/run/dovecot/lmtp\" (or host:port) under [delivery]",
        ));
    }
    let delivery_secs = |v: Option<&Spanned<u64>>, default: u64, key: &str| match v {
        Some(s) if *s.get_ref() == 0 => {
            Err(err(s.span().start, format!("[delivery] {key} must be at least 1"), "remove the key for the default"))
        }
        Some(s) => Ok(Duration::from_secs(*s.get_ref())),
        None => Ok(Duration::from_secs(default)),
    };
    let delivery = Delivery {
        method,
        maildir: match raw.maildir {
            Some(m) => crate::absolute(base, &m),
            None => data_dir.join("mail"),
        },
        lmtp: lmtp.map(|(_, a)| a),
        lmtp_timeout: Duration::from_secs(raw.lmtp_timeout_secs.unwrap_or(60)),
        first_retry: delivery_secs(raw.first_retry_secs.as_ref(), 5, "first_retry_secs")?,
        max_retry: delivery_secs(raw.max_retry_secs.as_ref(), 300, "max_retry_secs")?,
        max_lifetime: delivery_secs(raw.max_lifetime_secs.as_ref(), 5 * 86400, "max_lifetime_secs")?,
    };
    if delivery.max_retry < delivery.first_retry {
        return Err(err(
            raw.max_retry_secs.as_ref().map_or(0, |s| s.span().start),
            format!(
                "[delivery] max_retry_secs {} is less than first_retry_secs {}",
                delivery.max_retry.as_secs(),
                delivery.first_retry.as_secs()
            ),
            "make max_retry_secs at least first_retry_secs: it caps the doubling delays",
        ));
    }

    Ok(delivery)
}

/// `[[listener]]`: each checked at its own position, with its service's
/// default limits; none at all gives the three unprivileged defaults.
fn resolve_listeners(
    raw_listeners: Vec<Spanned<RawListener>>,
    text: &str,
    file: &Path,
) -> Result<Vec<Listener>, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let mut listeners = Vec::new();
    let mut names = HashSet::new();
    let mut addresses = HashSet::new();
    for spanned in raw_listeners {
        let offset = spanned.span().start;
        let l = spanned.into_inner();
        if !names.insert(l.name.clone()) {
            return Err(err(
                offset,
                format!("two listeners are named {:?}", l.name),
                "give each [[listener]] its own name",
            ));
        }
        // Port 0 (the system picks a free port, as tests do) never collides.
        if l.address.port() != 0 && !addresses.insert(l.address) {
            return Err(err(
                offset,
                format!("two listeners use the address {}", l.address),
                "give each [[listener]] its own address or port",
            ));
        }
        let d = Limits::for_service(l.service);
        let positive = |v: Option<usize>, default: usize, key: &str| -> Result<usize, ConfigError> {
            match v {
                Some(0) => Err(err(
                    offset,
                    format!("listener {:?}: {key} must be greater than 0", l.name),
                    "remove the key to use the default",
                )),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let secs = |v: Option<u64>, default: Duration, key: &str| -> Result<Duration, ConfigError> {
            positive(v.map(|v| v as usize), default.as_secs() as usize, key).map(|s| Duration::from_secs(s as u64))
        };
        let max_command_line = positive(l.max_command_line, d.max_command_line, "max_command_line")?;
        if max_command_line < 512 {
            return Err(err(
                offset,
                format!("listener {:?}: max_command_line {max_command_line} is below RFC 5321's 512", l.name),
                "use at least 512",
            ));
        }
        let max_data_line = positive(l.max_data_line, d.max_data_line, "max_data_line")?;
        if l.plaintext_auth.is_some() && l.service != Service::Submission {
            let hint = "remove plaintext_auth from this listener (the MX never offers AUTH)";
            return Err(err(
                offset,
                format!("listener {:?}: plaintext_auth is only for service = \"submission\"", l.name),
                hint,
            ));
        }
        let proxy_protocol = l.proxy_protocol.as_ref().is_some_and(|p| *p.get_ref());
        let mut proxy_protocol_from = Vec::new();
        if let Some(list) = &l.proxy_protocol_from {
            if !proxy_protocol {
                let hint = "set proxy_protocol = true on this listener, or remove proxy_protocol_from";
                return Err(err(
                    list.span().start,
                    format!("listener {:?}: proxy_protocol_from without proxy_protocol = true", l.name),
                    hint,
                ));
            }
            for n in list.get_ref() {
                match network(n.get_ref()) {
                    Some(net) => proxy_protocol_from.push(net),
                    None => {
                        let hint =
                            "write the load balancer's address or prefix, e.g. \"192.0.2.10\" or \"10.0.0.0/24\"";
                        return Err(err(
                            n.span().start,
                            format!("proxy_protocol_from: {:?} is not an address or a prefix", n.get_ref()),
                            hint,
                        ));
                    }
                }
            }
        }
        if let Some(p) = l.proxy_protocol.as_ref().filter(|_| proxy_protocol && proxy_protocol_from.is_empty()) {
            // Believing a header from anyone lets any client name a trusted
            // address (relaying through trusted_networks) or rotate fake
            // sources past every per-address limit.
            let hint = "add proxy_protocol_from = [\"<address or prefix of your load balancer>\"] to this listener: a PROXY header from anyone else is refused";
            return Err(err(
                p.span().start,
                format!("listener {:?}: proxy_protocol = true without proxy_protocol_from", l.name),
                hint,
            ));
        }
        if l.legacy_submission.is_some() && l.service != Service::Mx {
            let hint = "legacy_submission belongs on the port-25 (service = \"mx\") listener; submission listeners always take AUTH";
            return Err(err(
                offset,
                format!("listener {:?}: legacy_submission is only for service = \"mx\"", l.name),
                hint,
            ));
        }
        let tls_at = l.tls.as_ref().map_or(offset, |t| t.span().start);
        let tls = l.tls.as_ref().map_or(TlsMode::Starttls, |t| *t.get_ref());
        if l.service == Service::Submission && tls == TlsMode::None && !l.plaintext_auth.unwrap_or(false) {
            let hint =
                "use tls = \"starttls\" (port 587) or \"implicit\" (port 465); plaintext_auth = true is for tests only";
            return Err(err(
                tls_at,
                format!("listener {:?}: submission without TLS can never authenticate anyone", l.name),
                hint,
            ));
        }
        listeners.push(Listener {
            plaintext_auth: l.plaintext_auth.unwrap_or(false),
            legacy_submission: l.legacy_submission.unwrap_or(false),
            limits: Limits {
                max_connections: positive(l.max_connections, d.max_connections, "max_connections")?,
                max_connections_per_client: positive(
                    l.max_connections_per_client,
                    d.max_connections_per_client,
                    "max_connections_per_client",
                )?,
                max_commands_before_mail: l.max_commands_before_mail.unwrap_or(d.max_commands_before_mail),
                max_recipients: positive(l.max_recipients, d.max_recipients, "max_recipients")?,
                max_message_size: positive(l.max_message_size, d.max_message_size, "max_message_size")?,
                max_command_line,
                max_data_line,
                max_errors: l.max_errors.unwrap_or(d.max_errors),
                command_timeout: secs(l.command_timeout_secs, d.command_timeout, "command_timeout_secs")?,
                data_timeout: secs(l.data_timeout_secs, d.data_timeout, "data_timeout_secs")?,
                handshake_timeout: secs(l.handshake_timeout_secs, d.handshake_timeout, "handshake_timeout_secs")?,
            },
            tls,
            name: l.name,
            address: l.address,
            service: l.service,
            proxy_protocol,
            proxy_protocol_from,
        });
    }
    if listeners.is_empty() {
        listeners = default_listeners();
    }
    Ok(listeners)
}

/// Unprivileged stand-ins for 25, 587 and 465, so that a first
/// `port25 serve` runs as any user.
fn default_listeners() -> Vec<Listener> {
    let defaults = [
        ("mx", "127.0.0.1:2525", Service::Mx, TlsMode::Starttls),
        ("submission", "127.0.0.1:5870", Service::Submission, TlsMode::Starttls),
        ("submissions", "127.0.0.1:4650", Service::Submission, TlsMode::Implicit),
    ];
    defaults
        .into_iter()
        .map(|(name, address, service, tls)| Listener {
            name: name.into(),
            address: address.parse().expect("valid"),
            service,
            tls,
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            plaintext_auth: false,
            legacy_submission: false,
            limits: Limits::for_service(service),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn ipv4_mapped_networks_are_the_ipv4_networks() {
        let n = |s: &str| network(s).map(|n| n.to_string());
        assert_eq!(n("::ffff:192.0.2.1").as_deref(), Some("192.0.2.1/32"));
        assert_eq!(n("::ffff:10.0.0.0/104").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(n("2001:db8::1/64").as_deref(), Some("2001:db8::/64"));
        assert_eq!(n("::/0").as_deref(), Some("::/0"), "a prefix shorter than the mapped range stays IPv6");
        assert_eq!(n("10.0.0.1/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(n("not a network"), None);
    }

    use crate::{parse, ConfigError, Service, TlsMode};
    use std::path::Path;

    fn check(text: &str) -> Result<crate::Config, ConfigError> {
        parse(text, Path::new("/etc/port25.toml"), Path::new("/etc"))
    }

    #[test]
    fn empty_file_gives_the_embedded_defaults() {
        let c = check("hostname = \"mx.example.net\"").unwrap();
        assert_eq!(c.mx.domains, vec!["mx.example.net", "localhost"]);
        let ports: Vec<(u16, Service, TlsMode)> =
            c.listeners.iter().map(|l| (l.address.port(), l.service, l.tls)).collect();
        let expected = vec![
            (2525, Service::Mx, TlsMode::Starttls),
            (5870, Service::Submission, TlsMode::Starttls),
            (4650, Service::Submission, TlsMode::Implicit),
        ];
        assert_eq!(ports, expected);
        assert_eq!(c.submission.accounts, Path::new("/etc/port25-data/accounts.db"));
        assert_eq!(c.data_dir, Path::new("/etc/port25-data"));
        assert_eq!(c.delivery.maildir, Path::new("/etc/port25-data/mail"));
        let d = &c.delivery;
        assert_eq!((d.first_retry.as_secs(), d.max_retry.as_secs(), d.max_lifetime.as_secs()), (5, 300, 5 * 86400));
    }

    /// An error points at the value it judges (toml's span), not at the
    /// first place the key's name appears: here a comment above it.
    #[test]
    fn error_positions_come_from_the_parser_not_a_text_search() {
        let cases = [
            ("# domains: the mail domains\n[mx]\ndomains = []\n", 3, "[mx] domains is empty"),
            ("# verify_timeout_secs, method\n[mx]\nverify_timeout_secs = 0\n", 3, "verify_timeout_secs must be greater than 0"),
            ("# method = lmtp needs lmtp\n[delivery]\nmethod = \"lmtp\"\n", 3, "delivery method is lmtp but no lmtp address is set"),
            (
                "# \"sub\" is below\n[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\n",
                6,
                "listener \"sub\": submission without TLS can never authenticate anyone",
            ),
            (
                "# private_address\n[http]\naddress = \"127.0.0.1:8025\"\nprivate_address = \"127.0.0.1:8025\"\n",
                4,
                "[http] address and private_address are both 127.0.0.1:8025",
            ),
            (
                "# smarthost_username below\n[outbound]\nsmarthost = \"relay.example\"\nsmarthost_username = \"u\"\n",
                4,
                "smarthost_username and smarthost_password_file go together",
            ),
            (
                "# smarthost_pin_sha256\n[outbound]\nsmarthost = \"relay.example\"\nsmarthost_ca = \"/nonexistent\"\n",
                4,
                "cannot read smarthost_ca /nonexistent",
            ),
            (
                &format!("# smarthost_ca, smarthost_pin_sha256\n[outbound]\nsmarthost_pin_sha256 = [\"{}\"]\n", "ab".repeat(32)),
                3,
                "smarthost_ca and smarthost_pin_sha256 verify a smarthost, but no smarthost is set",
            ),
        ];
        for (text, line, message) in cases {
            let e = check(text).unwrap_err();
            assert!(e.message.starts_with(message), "{text}: {e}");
            assert_eq!(e.line, line, "{text}: {e}");
        }
    }

    #[test]
    fn errors_name_line_and_fix() {
        let e =
            check("hostname = \"mx.example.net\"\n\n[mx]\ndomains = [\"ok.example\", \"bad domain\"]\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (4, "\"bad domain\" is not a valid domain"));
        assert!(e.to_string().starts_with("/etc/port25.toml:4:"), "{e}");
        assert!(e.to_string().contains("fix:"));

        let e = check("[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:25\"\nmax_recipents = 5\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("unknown field `max_recipents`"), "{}", e.message);

        let e = check("[[listener]]\nname = \"mx\"\naddress = \"nowhere\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");

        let e = check("[delivery]\nmethod = \"lmtp\"\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.hint.contains("lmtp ="));
        let e = check("[delivery]\nfirst_retry_secs = 60\nmax_retry_secs = 10\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = check("[delivery]\nmax_lifetime_secs = 0\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");

        let e = check("[log]\nformat = \"xml\"\n").unwrap_err();
        assert_eq!(e.line, 2);

        let e = check(
            "[mx]\ndomains = [\"a.example\"]\nrecipient_delimiter = \"+\"\nrecipients = [\"list+news@a.example\"]\n",
        )
        .unwrap_err();
        assert!(e.message.contains("contains the recipient_delimiter") && e.hint.contains("\"list@a.example\""), "{e}");
        assert!(
            check("[mx]\ndomains = [\"a.example\"]\nrecipients = [\"list+news@a.example\"]\n").is_ok(),
            "no delimiter: + is part of the name"
        );
        let e = check("[mx]\ndomains = [\"a.example\"]\nrecipients = [\"x@b.example\"]\n").unwrap_err();
        assert_eq!(e.line, 3);

        let e = check("[mx]\ndomains = [\"a.example\"]\ncatch_all = [\"b.example\"]\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let c = check("[mx]\ndomains = [\"a.example\", \"B.example\"]\ncatch_all = [\"b.EXAMPLE\"]\n").unwrap();
        assert_eq!((c.mx.catch_all, c.mx.bounce_after_accept), (vec!["b.example".to_owned()], false));
        assert_eq!(check("[mx]\nverify_timeout_secs = 0\n").unwrap_err().line, 2);

        let e = check("[submission]\ntrusted_networks = [\"10.0.0.0/8\", \"printer\"]\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.hint.contains("192.0.2.0/28"));
        let e = check("[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:25\"\nplaintext_auth = true\n").unwrap_err();
        assert!(e.message.contains("only for service"), "{e}");
        let e = check(
            "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:587\"\nservice = \"submission\"\ntls = \"none\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "the tls line: {e}");
        let e = check("[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:587\"\nservice = \"submission\"\nlegacy_submission = true\n").unwrap_err();
        assert!(e.message.contains("only for service = \"mx\""), "{e}");
        let e = check("[submission]\nauth_login_lock_after = 0\n").unwrap_err();
        assert_eq!(e.line, 2);

        let e = check("[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = true\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("without proxy_protocol_from") && e.hint.contains("proxy_protocol_from = ["), "{e}");
        let e = check(
            "[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = true\nproxy_protocol_from = []\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "an empty list trusts nobody and is refused the same way: {e}");
        let e = check("[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = true\nproxy_protocol_from = [\"10.0.0.0/8\", \"lb\"]\n")
            .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        let e = check("[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol_from = [\"10.0.0.1\"]\n")
            .unwrap_err();
        assert!(e.message.contains("without proxy_protocol = true"), "{e}");
        let c =
            check("[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = true\nproxy_protocol_from = [\"10.0.0.1\", \"2001:db8::/48\"]\n")
                .unwrap();
        assert_eq!(
            c.listeners[0].proxy_protocol_from,
            vec!["10.0.0.1/32".parse().unwrap(), "2001:db8::/48".parse::<ipnet::IpNet>().unwrap()]
        );
        assert_eq!(c.listeners[0].limits.max_connections_per_client, 20);
        let e = check("[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nmax_connections_per_client = 0\n")
            .unwrap_err();
        assert!(e.message.contains("max_connections_per_client must be greater than 0"), "{e}");
        assert_eq!(check("max_data_memory = 1000\n").unwrap_err().line, 1);
        assert_eq!(check("").unwrap().max_data_memory, 256 * 1024 * 1024);

        let two = "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:2525\"\n[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:2526\"\n";
        assert_eq!(check(two).unwrap_err().line, 4);
    }
}
