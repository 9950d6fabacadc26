//! What the engine's integration tests share.

use port25_engine::{Limits, ListenerSettings, TlsMode};
use std::sync::Arc;
use std::time::Duration;

/// A plaintext listener with the default limits, no PROXY header and no
/// memory budget for DATA.
pub fn plain_settings(name: &str, hostname: &str) -> Arc<ListenerSettings> {
    Arc::new(ListenerSettings {
        name: name.into(),
        hostname: hostname.into(),
        tls_mode: TlsMode::None,
        tls: None,
        proxy_protocol: false,
        proxy_protocol_from: Vec::new(),
        limits: Limits::default(),
        data_budget: port25_engine::DataBudget::unlimited(),
        drain_timeout: Duration::from_secs(1),
    })
}
