//! The operator dashboard: `/dashboard` (the page), `/dashboard/login`
//! (form and POST), `/dashboard/logout` (POST). Read-only; see
//! [`crate::auth`] for the sign-in rules and [`page`] for the HTML.

pub mod page;

use crate::auth::{clear_cookie, client_ip, loggable, set_cookie, token_from_cookies};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use port25_accounts::gate::{Attempt, Outcome, Purpose};
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// No script may run, nothing may be loaded from elsewhere, no framing.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// The operator of a live session. Checked against the accounts store on
/// every request (one indexed lookup): a session ends as soon as its login
/// is deleted, loses the operator flag or gets a new password.
async fn operator(state: &Arc<AppState>, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = token_from_cookies(cookies)?.to_owned();
    let session = state.sessions.check(&token, Instant::now())?;
    let accounts = state.accounts.clone()?;
    let login = session.login.clone();
    let current = tokio::task::spawn_blocking(move || accounts.operator_stamp(&login)).await;
    match current {
        Ok(Ok(Some(stamp))) if stamp == session.stamp => Some(session.login),
        Ok(Ok(_)) => {
            emit!(info, ev::HTTP_LOGIN_FAILED, login = %session.login, reason = "session ended: login deleted, no longer an operator, or a new password");
            state.sessions.end(&token);
            None
        }
        Ok(Err(e)) => {
            emit!(warn, ev::HTTP_ERROR, what = "account database", error = %e);
            None
        }
        Err(e) => {
            emit!(warn, ev::HTTP_ERROR, what = "account database", error = %e);
            None
        }
    }
}

pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(login) = operator(&state, &headers).await else {
        return Redirect::to("/dashboard/login").into_response();
    };
    let s = state.clone();
    let snap = match tokio::task::spawn_blocking(move || s.snapshot(true)).await {
        Ok(snap) => snap,
        Err(e) => {
            return html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                page::layout("error", &format!("<p>internal error: {}</p>", crate::escape::html(&e.to_string()))),
            )
        }
    };
    let m = &state.metrics;
    let counters = page::Counters {
        sessions: m.total("port25_sessions_total"),
        accepted: m.total("port25_messages_accepted_total"),
        rejections: m.total("port25_rejections_total"),
        auth_failures: m.total("port25_auth_failures_total"),
        screen: m.screen_days(),
    };
    let body = page::dashboard(
        &login,
        state.migration_threshold,
        state.migration_days,
        &snap,
        &m.recent_rejections(),
        &counters,
    );
    html_response(StatusCode::OK, body)
}

pub async fn login_form(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if operator(&state, &headers).await.is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    html_response(StatusCode::OK, page::login(None))
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let client = client_ip(peer.ip(), &headers, &state.trusted_proxies);
    let shown = loggable(&form.login);
    let too_many = |wait: u64| {
        let mut r = html_response(
            StatusCode::TOO_MANY_REQUESTS,
            page::login(Some(&format!("Too many sign-in attempts; try again in {wait} seconds."))),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        r
    };
    if let Err(wait) = state.sessions.attempt(client, Instant::now()) {
        emit!(info, ev::HTTP_LOGIN_FAILED, login = %shown, peer = %client, reason = "too many attempts");
        return too_many(wait);
    }
    let Some(gate) = state.gate.clone() else {
        return html_response(StatusCode::SERVICE_UNAVAILABLE, page::login(Some("No account database is configured.")));
    };
    let attempt = Attempt {
        ip: client,
        login: &form.login,
        authzid: None,
        password: &form.password,
        purpose: Purpose::Dashboard,
        secured: false,
    };
    let reason = match gate.attempt(attempt).await {
        Outcome::Valid { login, stamp: Some(stamp), .. } => {
            emit!(info, ev::HTTP_LOGIN, login = %login, peer = %client);
            let token = state.sessions.start(&login, stamp, Instant::now());
            let mut r = Redirect::to("/dashboard").into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie(&token, state.sessions.lifetime(), state.cookie_secure)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
        Outcome::Valid { stamp: None, .. } => "no stamp for an operator",
        Outcome::Refused { reason, locks } => {
            for lock in locks {
                let key = match lock.scope {
                    port25_accounts::guard::Scope::Address => port25_accounts::guard::address_key(client).to_string(),
                    port25_accounts::guard::Scope::Login => port25_accounts::Login::of(&form.login).into_string(),
                };
                emit!(warn, ev::SUBMISSION_LOCKOUT, scope = lock.scope.name(), key = %loggable(&key), failures = lock.failures, seconds = lock.duration.as_secs());
            }
            reason
        }
        Outcome::Locked { scope, remaining } => {
            emit!(info, ev::HTTP_LOGIN_FAILED, login = %shown, peer = %client, reason = "locked", scope = scope.name());
            return too_many(remaining.as_secs().max(1));
        }
        Outcome::Busy { reason } => {
            emit!(info, ev::HTTP_LOGIN_FAILED, login = %shown, peer = %client, reason);
            return too_many(5);
        }
        Outcome::Error(e) => {
            emit!(warn, ev::HTTP_ERROR, what = "account database", error = %e);
            return html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                page::login(Some("The account database cannot be read; see the server log.")),
            );
        }
    };
    emit!(info, ev::HTTP_LOGIN_FAILED, login = %shown, peer = %client, reason);
    // One message for every failure: the form does not tell which logins exist.
    html_response(
        StatusCode::UNAUTHORIZED,
        page::login(Some("Wrong login or password, or the login is not an operator.")),
    )
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(t) = headers.get(header::COOKIE).and_then(|c| c.to_str().ok()).and_then(token_from_cookies) {
        state.sessions.end(t);
    }
    let mut r = Redirect::to("/dashboard/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&clear_cookie()).expect("ASCII"));
    r
}
