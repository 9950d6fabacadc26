//! Per-listener settings the engine enforces. The config crate builds these
//! from the TOML file; tests build them directly.

use crate::budget::DataBudget;
use ipnet::IpNet;
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS on this listener.
    None,
    /// Plain connection, STARTTLS offered (RFC 3207).
    StartTls,
    /// TLS from the first byte (RFC 8314, port 465).
    Implicit,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one client may have open at once: an IPv4 address, or
    /// an IPv6 /64 (see [`crate::accept::client_key`]). Over it: 421 4.7.0.
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
            max_connections_per_client: 20,
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

#[derive(Clone)]
pub struct ListenerSettings {
    pub name: Arc<str>,
    /// Our name in the banner, EHLO reply and Received header.
    pub hostname: String,
    pub tls_mode: TlsMode,
    pub tls: Option<Arc<ServerConfig>>,
    /// Expect a HAProxy PROXY v1/v2 header on every connection.
    pub proxy_protocol: bool,
    /// The proxies allowed to send that header. A connection from any other
    /// address is closed unread: whoever can reach the listener directly
    /// must not choose the address it is judged by.
    pub proxy_protocol_from: Vec<IpNet>,
    pub limits: Limits,
    /// Memory for message data in flight; one budget shared by every
    /// listener of the process.
    pub data_budget: Arc<DataBudget>,
    /// How long shutdown waits for sessions in a transaction.
    pub drain_timeout: Duration,
}
