//! One captured event: the unit of the log, one JSON object per line.
//!
//! Fields are optional where an event kind does not have them; absent
//! fields are omitted, never written as null, so lines stay short.
//! Readers must ignore fields they do not know (the format grows by adding
//! fields; a change that breaks readers bumps [`FORMAT_VERSION`]).

use serde::{Deserialize, Serialize};

/// The `v` field of every line; see docs/capture-format.md. Version 2 added
/// the wire counters (`bytes_in`, `bytes_out`) and the sensor's `site`;
/// a version 1 line reads as a version 2 line without them.
pub const FORMAT_VERSION: u32 = 2;

/// Where a sensor sits: the access network that hosts it. Set once in the
/// sensor's configuration (`[site]`) and written in each of its events, so
/// a report over many sensors can group by operator, city or access type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The access network's operator, e.g. "NET Servicos".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The operator's autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The kind of access line: `cable`, `adsl`, `fiber`, `3g`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

impl Site {
    pub fn is_empty(&self) -> bool {
        *self == Site::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    /// The catalogue id, e.g. `port25.spampot.message` (docs/EVENTS.md).
    pub event: String,
    pub sensor: String,
    /// UTC, RFC 3339 with milliseconds.
    pub time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// The sensor's port the client connected to (after PROXY protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// `proxy` (open-proxy bait) or `smtp` (open-relay bait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `socks4`, `socks4a`, `socks5`, `http-connect`, `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_type: Option<String>,
    /// What the client asked the proxy to reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Destination>,
    /// Proxy credentials the client offered (SOCKS5 user/password, SOCKS4
    /// user id, HTTP Proxy-Authorization decoded when Basic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// HTTP proxy requests: method and absolute URI, User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    /// Reverse path as given (empty string for the null sender `<>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rcpt_to: Vec<String>,
    /// Message id the client was told ("queued as").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Lower-case hex SHA-256 of the stored body; names it in bodies/.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Body size in bytes, uncompressed, as received (after dot-unstuffing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// True when this body was already in the store (deduplicated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_reasons: Vec<String>,
    /// Free text: why a connection was refused, which limit was hit...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Counters (session end: messages, bytes; quota: files and bytes freed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Session close (v2): TCP payload bytes the client sent and bytes of
    /// ours it acknowledged, whole connection (PROXY header, handshake and
    /// SMTP), from the kernel's TCP_INFO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// The sensor's site (v2), in every event of a sensor that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
}

impl Event {
    /// A new event of kind `id` stamped now.
    pub fn new(id: &str, sensor: &str) -> Event {
        Event {
            v: FORMAT_VERSION,
            event: id.to_owned(),
            sensor: sensor.to_owned(),
            time: port25_time::rfc3339_millis(std::time::SystemTime::now()),
            ..Event::default()
        }
    }

    /// The JSON line, newline included. Serialising our own struct cannot
    /// fail (string keys, no maps with non-string keys).
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("event serialises");
        line.push(b'\n');
        line
    }
}
