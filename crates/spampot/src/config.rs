//! The sensor's configuration: its own small TOML file (`port25 spampot
//! --config spampot.toml`), every key optional. With no file the sensor
//! starts with the defaults below: bait on unprivileged ports that stand for
//! the ports open proxies are found on (docs/spampot.md has the mapping and
//! the firewall redirects that put them on the real ports).

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// HTTP proxy, SOCKS4/4a and SOCKS5 on one port.
    Proxy,
    /// SMTP spoken directly: open-relay bait.
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub kind: Kind,
    /// Expect a PROXY v1/v2 header (sensor behind NAT or a load balancer).
    #[serde(default)]
    pub proxy_protocol: bool,
    /// The proxies whose header is believed; a connection from any other
    /// address is closed unread (else any client could name its source
    /// and rotate past the per-source caps).
    #[serde(default, deserialize_with = "networks")]
    pub proxy_protocol_from: Vec<IpNet>,
}

/// Addresses or prefixes ("192.0.2.10", "10.0.0.0/24").
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            port25_config::network(s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{s:?} is not an address or a prefix; write e.g. \"192.0.2.10\" or \"10.0.0.0/24\""
                ))
            })
        })
        .collect()
}

/// Where each listener's `proxy_protocol` key is, for errors with a line.
#[derive(Deserialize, Default)]
struct ListenerSpans {
    #[serde(default)]
    listener: Vec<ListenerSpan>,
}

#[derive(Deserialize)]
struct ListenerSpan {
    proxy_protocol: Option<toml::Spanned<bool>>,
    proxy_protocol_from: Option<toml::Spanned<toml::Value>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    port25_config::line_col(text, offset).0
}

/// What a tunnel to a port that is not a mail port gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    /// The protocol's "connection refused" (SOCKS5 05, SOCKS4 5B, HTTP 503).
    Refuse,
    /// Close without a reply.
    Close,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_connections: usize,
    /// Open connections per source: an IPv4 address or an IPv6 /64.
    pub max_connections_per_source: usize,
    /// Bytes of message data all sessions together may hold in memory;
    /// past it a message gets 452 4.3.1.
    pub max_data_memory: usize,
    /// Bytes one connection may send in messages before it is closed.
    pub max_session_bytes: u64,
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Seconds for the proxy handshake (and a PROXY header).
    pub handshake_timeout_secs: u64,
    /// Seconds to wait for each SMTP command.
    pub command_timeout_secs: u64,
    /// Seconds to wait for each block of message data (RFC 5321
    /// §4.5.3.2.6: 3 minutes), not the command timeout.
    pub data_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 20_000,
            max_connections_per_source: 64,
            max_data_memory: 256 * 1024 * 1024,
            max_session_bytes: 64 * 1024 * 1024,
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 1000,
            handshake_timeout_secs: 30,
            command_timeout_secs: 120,
            data_timeout_secs: 180,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    pub max_segment_bytes: u64,
    /// Disk quota for the capture directory (1 GiB unless set; 0: no fixed
    /// size). Whatever it is, new bodies are refused while the filesystem
    /// has less free than `port25_capture::free_floor`.
    pub quota_bytes: u64,
}

/// The capture store's quota when none is configured: on by default, so a
/// sensor left alone cannot fill its disk.
pub const DEFAULT_QUOTA_BYTES: u64 = 1 << 30;

impl Default for Store {
    fn default() -> Store {
        Store { max_segment_bytes: 64 * 1024 * 1024, quota_bytes: DEFAULT_QUOTA_BYTES }
    }
}

/// `[site]`: where the sensor sits (the white paper's sensors: 5 operators,
/// cable and ADSL, 4 cities). Written in every capture event, so the report
/// can group by operator, city and access type (`--group-by`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Site {
    pub operator: Option<String>,
    pub asn: Option<u32>,
    pub city: Option<String>,
    /// `cable`, `adsl`, `fiber`, `3g`... (free text, one word).
    pub access: Option<String>,
}

impl Site {
    /// The capture format's form of it.
    pub fn capture(&self) -> port25_capture::Site {
        port25_capture::Site {
            operator: self.operator.clone(),
            asn: self.asn,
            city: self.city.clone(),
            access: self.access.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This sensor's name in every event.
    pub sensor: String,
    pub data_dir: PathBuf,
    pub log_format: String,
    pub log_level: String,
    /// The sensor's public addresses, for probe recognition.
    pub public_addresses: Vec<IpAddr>,
    /// Tunnels to these ports get the fake mail server.
    pub mail_ports: Vec<u16>,
    /// Refusal for other ports; `refusal_per_port` overrides it per port.
    pub refusal: Refusal,
    pub refusal_per_port: BTreeMap<String, Refusal>,
    /// Name in the relay bait's banner, and for tunnels to an IP literal.
    pub hostname: String,
    /// The mail server the sensor claims to be ("ESMTP <software>").
    pub smtp_software: String,
    /// Messages from a new source that may be probes.
    pub probe_first_messages: u64,
    /// Pause between the proxy's "connected" and the fake server's banner,
    /// as a real tunnel has (the remote server answers after a round trip).
    /// It also keeps clients that read the proxy's answer through a
    /// buffered reader (PySocks' HTTP CONNECT) from swallowing the banner.
    pub tunnel_banner_delay_ms: u64,
    #[serde(rename = "listener")]
    pub listeners: Vec<Listener>,
    pub limits: Limits,
    pub store: Store,
    pub site: Site,
    /// `[ship]`: send the capture log to a collector (url, token, ca_file,
    /// interval_ms, batch_bytes); read by the binary's shipper.
    pub ship: Option<toml::Table>,
    /// `[hpfeeds]`: publish events to a broker (broker, ident, secret,
    /// channel); read by the binary.
    pub hpfeeds: Option<toml::Table>,
}

fn listener(name: &str, port: u16, kind: Kind) -> Listener {
    Listener {
        name: name.to_owned(),
        address: SocketAddr::from(([0, 0, 0, 0], port)),
        kind,
        proxy_protocol: false,
        proxy_protocol_from: Vec::new(),
    }
}

/// The default bait: real port + 10000 (or 10080 for 80).
pub fn default_listeners() -> Vec<Listener> {
    vec![
        listener("socks-1080", 11080, Kind::Proxy),
        listener("squid-3128", 13128, Kind::Proxy),
        listener("http-8080", 18080, Kind::Proxy),
        listener("http-8000", 18000, Kind::Proxy),
        listener("proxy-6588", 16588, Kind::Proxy),
        listener("http-80", 10080, Kind::Proxy),
        listener("smtp-25", 12525, Kind::Smtp),
    ]
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sensor: "spampot".into(),
            data_dir: PathBuf::from("./spampot-data"),
            log_format: "text".into(),
            log_level: "info".into(),
            public_addresses: Vec::new(),
            mail_ports: vec![25, 587],
            refusal: Refusal::Refuse,
            refusal_per_port: BTreeMap::new(),
            hostname: "mail".into(),
            smtp_software: "Postfix".into(),
            probe_first_messages: 3,
            tunnel_banner_delay_ms: 150,
            listeners: default_listeners(),
            limits: Limits::default(),
            store: Store::default(),
            site: Site::default(),
            ship: None,
            hpfeeds: None,
        }
    }
}

impl Config {
    pub fn parse(text: &str, file: &Path) -> Result<Config, String> {
        let c: Config =
            port25_config::from_toml(text, file, "see dist/spampot.toml for every key").map_err(|e| e.to_string())?;
        c.check().map_err(|e| format!("{}: {e}", file.display()))?;
        let spans: ListenerSpans = toml::from_str(text).unwrap_or_default();
        for (n, l) in c.listeners.iter().enumerate() {
            let span = spans.listener.get(n);
            if l.proxy_protocol && l.proxy_protocol_from.is_empty() {
                let line = span.and_then(|s| s.proxy_protocol.as_ref()).map_or(0, |p| line_of(text, p.span().start));
                return Err(format!(
                    "{}:{line}: listener {:?}: proxy_protocol = true without proxy_protocol_from; fix: add proxy_protocol_from = [\"<address or prefix of your load balancer>\"] (a PROXY header from anyone else is refused)",
                    file.display(),
                    l.name
                ));
            }
            if !l.proxy_protocol && !l.proxy_protocol_from.is_empty() {
                let line =
                    span.and_then(|s| s.proxy_protocol_from.as_ref()).map_or(0, |p| line_of(text, p.span().start));
                return Err(format!(
                    "{}:{line}: listener {:?}: proxy_protocol_from without proxy_protocol = true; fix: set proxy_protocol = true or remove proxy_protocol_from",
                    file.display(),
                    l.name
                ));
            }
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let text = port25_config::read(
            path,
            "the sensor configuration",
            "give the path of a spampot.toml (see dist/spampot.toml), or run without one",
        )
        .map_err(|e| e.to_string())?;
        Config::parse(&text, path)
    }

    fn check(&self) -> Result<(), String> {
        if self.listeners.is_empty() {
            return Err("no [[listener]]: add one, or remove the file to get the default bait ports".into());
        }
        for port in self.refusal_per_port.keys() {
            port.parse::<u16>().map_err(|_| format!("refusal_per_port: {port:?} is not a port number"))?;
        }
        if self.limits.max_data_memory < 1024 * 1024 {
            return Err(format!(
                "[limits] max_data_memory {} is below 1 MiB: give the bytes of message data all sessions together may hold, e.g. 268435456",
                self.limits.max_data_memory
            ));
        }
        for (key, v) in [("operator", &self.site.operator), ("city", &self.site.city), ("access", &self.site.access)] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty() || v.chars().any(char::is_control)) {
                return Err(format!(
                    "[site] {key}: give a non-empty name without control characters, or leave the key out"
                ));
            }
        }
        if self.site.access.as_deref().is_some_and(|a| a.contains(char::is_whitespace)) {
            return Err("[site] access: one word, e.g. access = \"cable\" (or \"adsl\", \"fiber\", \"3g\")".into());
        }
        if self.sensor.is_empty() || self.sensor.contains(char::is_whitespace) {
            return Err("sensor: give a name without spaces, e.g. sensor = \"br-sp-01\"".into());
        }
        Ok(())
    }

    pub fn refusal_for(&self, port: u16) -> Refusal {
        self.refusal_per_port.get(&port.to_string()).copied().unwrap_or(self.refusal)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.handshake_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_with_line() {
        let c = Config::parse("", Path::new("s.toml")).unwrap();
        assert_eq!(c.listeners.len(), 7);
        assert_eq!(c.mail_ports, vec![25, 587]);
        let c = Config::parse(
            "sensor = \"s1\"\nrefusal_per_port = { \"80\" = \"close\" }\n[[listener]]\nname = \"p\"\naddress = \"127.0.0.1:0\"\nkind = \"proxy\"\n",
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(c.refusal_for(80), Refusal::Close);
        assert_eq!(c.refusal_for(443), Refusal::Refuse);
        let e = Config::parse("sensor = \"s1\"\n\n[limits]\nmax_conections = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(e.starts_with("s.toml:4:1: unknown field `max_conections`"), "{e}");
        // Durations are in seconds and say so; the old names get the new ones as the fix.
        let e = Config::parse("[limits]\ncommand_timeout = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(
            e.starts_with("s.toml:2:1: unknown field `command_timeout`")
                && e.ends_with("fix: rename command_timeout to command_timeout_secs (the same number of seconds)"),
            "{e}"
        );
        let c = Config::parse("[limits]\ncommand_timeout_secs = 3\n", Path::new("s.toml")).unwrap();
        assert_eq!(
            (c.limits.command_timeout_secs, c.limits.data_timeout_secs),
            (3, 180),
            "the data timeout is its own"
        );
        let e = Config::parse("refusal_per_port = { \"http\" = \"close\" }\n", Path::new("s.toml")).unwrap_err();
        assert!(e.contains("not a port number"), "{e}");
        let e = Config::parse("[limits]\nmax_data_memory = 0\n", Path::new("s.toml")).unwrap_err();
        assert!(e.contains("max_data_memory 0 is below 1 MiB"), "{e}");
    }

    #[test]
    fn proxy_protocol_needs_the_proxies_it_trusts() {
        let listener = "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n";
        let e = Config::parse(&format!("{listener}proxy_protocol = true\n"), Path::new("s.toml")).unwrap_err();
        assert!(e.starts_with("s.toml:5: listener \"lb\": proxy_protocol = true without proxy_protocol_from; fix: add proxy_protocol_from"), "{e}");
        let e =
            Config::parse(&format!("{listener}proxy_protocol = true\nproxy_protocol_from = []\n"), Path::new("s.toml"))
                .unwrap_err();
        assert!(e.starts_with("s.toml:5:"), "{e}");
        let e = Config::parse(
            &format!("{listener}proxy_protocol = true\nproxy_protocol_from = [\"lb.example\"]\n"),
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert!(e.starts_with("s.toml:6:") && e.contains("not an address or a prefix"), "{e}");
        let e = Config::parse(&format!("{listener}proxy_protocol_from = [\"10.0.0.1\"]\n"), Path::new("s.toml"))
            .unwrap_err();
        assert!(e.starts_with("s.toml:5:") && e.contains("without proxy_protocol = true"), "{e}");
        let c = Config::parse(
            &format!("{listener}proxy_protocol = true\nproxy_protocol_from = [\"10.0.0.1\", \"2001:db8::/64\"]\n"),
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(
            c.listeners[0].proxy_protocol_from,
            vec!["10.0.0.1/32".parse::<IpNet>().unwrap(), "2001:db8::/64".parse().unwrap()]
        );
    }
}

#[cfg(test)]
mod dist {
    /// The example shipped in dist/ must stay valid.
    #[test]
    fn dist_example_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/spampot.toml");
        let c = super::Config::load(&path).unwrap();
        assert_eq!(c.listeners.len(), 4);
        assert_eq!(c.store.quota_bytes, 50_000_000_000);
        let site = c.site.capture();
        assert_eq!(
            (site.operator.as_deref(), site.asn, site.city.as_deref(), site.access.as_deref()),
            (Some("Example Telecom"), Some(64500), Some("São Paulo"), Some("cable"))
        );
    }

    #[test]
    fn site_is_checked() {
        let c =
            super::Config::parse("[site]\noperator = \"NET\"\nasn = 28573\n", std::path::Path::new("s.toml")).unwrap();
        assert_eq!((c.site.operator.as_deref(), c.site.asn, c.site.city.as_deref()), (Some("NET"), Some(28573), None));
        let e = super::Config::parse("[site]\naccess = \"cable modem\"\n", std::path::Path::new("s.toml")).unwrap_err();
        assert!(e.contains("[site] access: one word"), "{e}");
        let e = super::Config::parse("[site]\ncity = \" \"\n", std::path::Path::new("s.toml")).unwrap_err();
        assert!(e.contains("[site] city"), "{e}");
        let e = super::Config::parse("[site]\nisp = \"x\"\n", std::path::Path::new("s.toml")).unwrap_err();
        assert!(e.contains("unknown field `isp`"), "{e}");
    }
}
