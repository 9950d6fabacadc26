//! What the queue needs to know, filled from `[outbound]` by the binary.

use crate::backoff::Backoff;
use crate::client::ClientSettings;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
    /// (username, password) for AUTH PLAIN, sent only after STARTTLS with
    /// a verified certificate, whatever `require_tls` says: no STARTTLS,
    /// a refused or broken one, or a certificate that does not verify
    /// means no AUTH, and the mail is deferred (4.7.5).
    pub auth: Option<(String, String)>,
    /// Never send in clear, even without credentials.
    pub require_tls: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    /// The port of remote MXes: 25, except in tests.
    pub port: u16,
    pub smarthost: Option<Smarthost>,
    /// Domains whose mail is never sent without TLS.
    pub require_tls: Vec<String>,
    /// Which MX addresses may be connected to.
    pub targets: crate::targets::TargetPolicy,
    pub backoff: Backoff,
    /// A recipient still deferred this long after arrival is bounced.
    pub max_lifetime: Duration,
    /// A sender is told once that a recipient is still deferred after this.
    pub delay_warning: Option<Duration>,
    /// Per MX address (and TLS policy), whichever domains it serves.
    pub connections_per_destination: usize,
    pub max_connections: usize,
    pub messages_per_connection: usize,
    /// How long a connection with nothing to send waits for another
    /// message to the same MX before QUIT.
    pub idle_connection: Duration,
    pub client: ClientSettings,
    /// Start with delivery held (messages queue, nothing is sent) until
    /// `port25 queue release`.
    pub hold: bool,
    pub stats_interval: Duration,
    /// Messages kept back one by one (the abuse desk's held logins).
    pub holds: Holds,
    /// MTA-STS (`[outbound] mta_sts = "on"`): recipient domains' policies.
    pub sts: Option<std::sync::Arc<crate::mta_sts::Sts>>,
    /// TLS-RPT reports of sessions under a policy (with `sts`).
    pub tls_rpt: Option<std::sync::Arc<crate::tls_rpt::TlsRpt>>,
}

/// Which messages (by id) the queue keeps instead of sending, asked when
/// a message is due and again every second while it is held; none by
/// default. The abuse desk (crates/abuse) answers it through the binary.
#[derive(Clone, Default)]
pub struct Holds(Option<std::sync::Arc<HeldFn>>);

/// Whether the message with this id is held.
pub type HeldFn = dyn Fn(&str) -> bool + Send + Sync;

impl Holds {
    pub fn new(held: impl Fn(&str) -> bool + Send + Sync + 'static) -> Holds {
        Holds(Some(std::sync::Arc::new(held)))
    }

    pub fn held(&self, id: &str) -> bool {
        self.0.as_ref().is_some_and(|f| f(id))
    }
}

impl std::fmt::Debug for Holds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Holds(set)" } else { "Holds(none)" })
    }
}
