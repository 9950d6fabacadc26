//! port25's HTTP side, started by `port25 serve` (`[http]`): what mail
//! clients need to configure themselves for submission on 587/465 (never
//! 25), what Prometheus scrapes, what operators look at, and what process
//! supervisors and load balancers probe.
//!
//! Two listeners, two routers: [`public_router`] serves only what mail
//! clients anywhere must reach (autoconfig, autodiscover, mobileconfig);
//! [`private_router`] what only the operator's network should (metrics,
//! dashboard, health). A path of the one is 404 on the other, so exposing
//! autoconfig to the internet exposes nothing else.
//!
//! Layout, one file per concern: [`autoconfig`] (Thunderbird),
//! [`autodiscover`] (Outlook), [`mobileconfig`] (Apple), [`email`] (the
//! address clients send), [`clients`] (what all three say), [`health`],
//! [`metrics`] (a tracing layer over the event catalogue, and the text
//! format), [`state`] (what is read per request: the spools' in-memory
//! gauges, accounts, captures), [`captures`] (the SpamPots reader),
//! [`auth`] and [`dashboard`].
//! Every document is built from escaped values ([`escape`]).

pub mod acme;
pub mod auth;
pub mod autoconfig;
pub mod autodiscover;
pub mod captures;
pub mod clients;
pub mod dashboard;
pub mod email;
pub mod escape;
pub mod health;
pub mod metrics;
pub mod mobileconfig;
pub mod state;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use port25_events as ev;
use port25_events::emit;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use clients::ClientSettings;
pub use health::Readiness;
pub use metrics::{Metrics, MetricsLayer};

/// Mail client autoconfiguration: the public listener.
pub fn public_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mail/config-v1.1.xml", get(mozilla))
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(mozilla))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
        .route("/mail.mobileconfig", get(mobileconfig))
        .layer(axum::extract::DefaultBodyLimit::max(autodiscover::MAX_REQUEST))
        .with_state(state)
}

/// Metrics, dashboard and health: the private listener.
pub fn private_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/dashboard", get(dashboard::show))
        .route("/dashboard/login", get(dashboard::login_form).post(dashboard::login))
        .route("/dashboard/logout", post(dashboard::logout))
        .layer(axum::extract::DefaultBodyLimit::max(autodiscover::MAX_REQUEST))
        .with_state(state)
}

/// Serves `router` until `shutdown`; in-flight requests finish first.
pub async fn run(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

fn typed(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body.into())
        .into_response()
}

fn xml_response(content_type: &'static str, body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

/// The `emailaddress` query parameter, checked against our domains:
/// `Ok(None)` when absent, `Err` with the answer to send when bad.
fn query_address(state: &AppState, query: Option<&str>) -> Result<Option<email::Address>, Box<Response>> {
    let value = email::query_param(query.unwrap_or(""), "emailaddress")
        .map_err(|e| Box::new(text(StatusCode::BAD_REQUEST, format!("{e}\n"))))?;
    match value {
        None => Ok(None),
        Some(v) => match email::parse(&v, &state.clients.domains) {
            Ok(a) => Ok(Some(a)),
            Err(e @ email::EmailError::NotOurs(_)) => Err(Box::new(text(StatusCode::NOT_FOUND, format!("{e}\n")))),
            Err(e) => Err(Box::new(text(StatusCode::BAD_REQUEST, format!("emailaddress: {e}\n")))),
        },
    }
}

async fn mozilla(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    let address = match query_address(&state, query.as_deref()) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let domain = address
        .as_ref()
        .map_or_else(|| state.clients.domains.first().cloned().unwrap_or_default(), |a| a.domain.clone());
    emit!(info, ev::HTTP_AUTOCONFIG, kind = "mozilla", domain = %domain, peer = %peer);
    xml_response("application/xml; charset=utf-8", autoconfig::render(&state.clients, address.as_ref()))
}

async fn autodiscover(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let xml = "application/xml; charset=utf-8";
    let request = match autodiscover::parse_request(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, xml)],
                autodiscover::render_error(600, &format!("Invalid Request: {e}")),
            )
                .into_response()
        }
    };
    if request.schema.as_deref().is_some_and(|s| s != autodiscover::OUTLOOK_RESPONSE_SCHEMA) {
        let msg = format!(
            "Provider is not available: only {} is served (IMAP/SMTP settings), not Exchange ActiveSync",
            autodiscover::OUTLOOK_RESPONSE_SCHEMA
        );
        return xml_response(xml, autodiscover::render_error(601, &msg));
    }
    match email::parse(&request.email, &state.clients.domains) {
        Ok(a) => {
            emit!(info, ev::HTTP_AUTOCONFIG, kind = "autodiscover", domain = %a.domain, peer = %peer);
            xml_response(xml, autodiscover::render(&state.clients, &a))
        }
        Err(e) => xml_response(xml, autodiscover::render_error(601, &format!("Provider is not available: {e}"))),
    }
}

async fn mobileconfig(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    let address = match query_address(&state, query.as_deref()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return text(
                StatusCode::BAD_REQUEST,
                "an Apple profile is made for one account: add ?emailaddress=you@your.domain\n",
            )
        }
        Err(r) => return *r,
    };
    let Some(profile) = mobileconfig::render(&state.clients, &address) else {
        return text(
            StatusCode::NOT_FOUND,
            "Apple's mail profile needs an incoming (IMAP) server, and none is configured ([http] imaps or imap)\n",
        );
    };
    emit!(info, ev::HTTP_AUTOCONFIG, kind = "mobileconfig", domain = %address.domain, peer = %peer);
    let disposition = format!("attachment; filename=\"{}.mobileconfig\"", address.domain);
    let mut r = xml_response("application/x-apple-aspen-config", profile);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match tokio::task::spawn_blocking(move || state.exposition()).await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
            body,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")),
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.ready.check() {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(missing) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", missing.join(", "))),
    }
}
