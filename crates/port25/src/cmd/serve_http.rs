//! The HTTP listener of `port25 serve` (`[http]`, crates/http): bound
//! before the spool opens so that /healthz answers and /readyz says "not
//! ready" during start-up; `port25 serve` marks readiness as it goes.

use anyhow::Context;
use port25_config::Config;
use port25_events as ev;
use port25_events::emit;
use port25_http::state::AppState;
use port25_http::{ClientSettings, Metrics, Readiness};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub struct Http {
    pub ready: Readiness,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub stop: CancellationToken,
}

/// `gate`: the accounts and the password gate shared with submission
/// (`Some` whenever `[http]` is enabled).
pub async fn start(config: &Config, metrics: Arc<Metrics>, gate: Option<Arc<port25_accounts::gate::Gate>>) -> anyhow::Result<Http> {
    let ready = Readiness::default();
    let stop = CancellationToken::new();
    let Some(address) = config.http.address else {
        return Ok(Http { ready, task: None, stop });
    };
    let h = &config.http;
    let state = AppState {
        clients: ClientSettings {
            display_name: h.display_name.clone(),
            domains: config.mx.domains.clone(),
            submission_host: h.submission_host.clone(),
            submission_port: h.submission_port,
            submissions_port: h.submissions_port,
            imap: h.imap.clone(),
            imaps: h.imaps.clone(),
        },
        ready: ready.clone(),
        metrics,
        accounts: gate.as_ref().map(|g| g.accounts().clone()),
        gate,
        queues: vec![("local", config.data_dir.join("spool")), ("outbound", config.data_dir.join("outbound"))],
        captures: h.spampot_capture.as_deref().map(|d| Mutex::new(port25_http::captures::CaptureStats::new(d))),
        migration_days: h.migration_days,
        migration_threshold: h.migration_threshold,
        sessions: port25_http::auth::Sessions::new(h.session, h.login_attempts_per_minute),
        trusted_proxies: h.trusted_proxies.clone(),
        cookie_secure: h.cookie_secure,
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("[http] cannot bind {address} (another server on it? set [http] address, or enabled = false)"))?;
    emit!(info, ev::HTTP_LISTENING, address = %listener.local_addr()?);
    let task = tokio::spawn(port25_http::run(listener, Arc::new(state), stop.clone()));
    Ok(Http { ready, task: Some(task), stop })
}
