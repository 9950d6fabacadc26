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

/// The limits every listener enforces: the configuration's type, so the
/// values and their defaults are written once (crates/config).
pub use port25_config::Limits;

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
