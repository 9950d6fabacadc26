//! The HTTP listeners of `port25 serve` (`[http]`, crates/http): the
//! public one (client autoconfiguration) and the private one (metrics,
//! dashboard, health), bound before the spool opens so that /healthz
//! answers and /readyz says "not ready" during start-up; `port25 serve`
//! marks readiness as it goes. The spools' gauges are made here, before
//! the spools, and handed to them when they open.

use anyhow::Context;
use port25_config::Config;
use port25_events as ev;
use port25_events::emit;
use port25_http::state::AppState;
use port25_http::{ClientSettings, Metrics, Readiness};
use port25_spool::Gauges;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub struct Http {
    pub ready: Readiness,
    /// Both listeners; ends when both have.
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub stop: CancellationToken,
    pub gauges: SpoolGauges,
}

/// What the local and the outbound spool hold (`/metrics`, the dashboard).
#[derive(Default)]
pub struct SpoolGauges {
    pub local: Gauges,
    pub outbound: Gauges,
}

/// `gate`: the accounts and the password gate shared with submission
/// (`Some` whenever `[http]` is enabled).
/// `abuse`: the abuse desk's gauges, appended to /metrics.
/// `acme`: the open HTTP-01 challenges of `[tls.acme]`, answered on the public listener.
pub async fn start(
    config: &Config,
    metrics: Arc<Metrics>,
    gate: Option<Arc<port25_accounts::gate::Gate>>,
    abuse: Option<Arc<dyn port25_http::state::AbuseView>>,
    acme: Option<Arc<port25_http::acme::Http01Tokens>>,
) -> anyhow::Result<Http> {
    let ready = Readiness::default();
    let stop = CancellationToken::new();
    let gauges = SpoolGauges::default();
    let (Some(public), Some(private)) = (config.http.address, config.http.private_address) else {
        return Ok(Http { ready, task: None, stop, gauges });
    };
    let h = &config.http;
    let state = AppState {
        clients: ClientSettings {
            display_name: h.display_name.clone(),
            domains: config.mx.domains.clone(),
            submission_host: h.submission_host.clone(),
            submission_port: h.submission_port,
            submissions_port: h.submissions_port,
            implicit_tls_first: h.implicit_tls_first,
            imap: h.imap.clone(),
            imaps: h.imaps.clone(),
        },
        ready: ready.clone(),
        metrics,
        accounts: gate.as_ref().map(|g| g.accounts().clone()),
        gate,
        queues: vec![("local", gauges.local.clone()), ("outbound", gauges.outbound.clone())],
        captures: h.spampot_capture.as_deref().map(|d| Mutex::new(port25_http::captures::CaptureStats::new(d))),
        migration_days: h.migration_days,
        migration_threshold: h.migration_threshold,
        sessions: port25_http::auth::Sessions::new(h.session, h.login_attempts_per_minute),
        trusted_proxies: h.trusted_proxies.clone(),
        cookie_secure: h.cookie_secure,
        abuse,
    };
    let state = Arc::new(state);
    let bind = |name: &'static str, address: std::net::SocketAddr, key: &'static str| async move {
        let listener = tokio::net::TcpListener::bind(address).await.with_context(|| {
            format!("[http] cannot bind {address} (another server on it? set [http] {key}, or enabled = false)")
        })?;
        emit!(info, ev::HTTP_LISTENING, listener = name, address = %listener.local_addr()?);
        anyhow::Ok(listener)
    };
    let public = port25_http::run(
        bind("public", public, "address").await?,
        match acme {
            // [tls.acme] with HTTP-01: the CA's requests come here (port 80).
            Some(tokens) => port25_http::public_router(state.clone()).merge(port25_http::acme::router(tokens)),
            None => port25_http::public_router(state.clone()),
        },
        stop.clone(),
    );
    let private = port25_http::run(
        bind("private", private, "private_address").await?,
        port25_http::private_router(state),
        stop.clone(),
    );
    let task = tokio::spawn(async move {
        let (a, b) = tokio::join!(public, private);
        a.and(b)
    });
    Ok(Http { ready, task: Some(task), stop, gauges })
}
