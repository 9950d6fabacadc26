//! The operator dashboard: `/dashboard` (the page), `/dashboard/login`
//! (form and POST), `/dashboard/logout` (POST). Read-only; see
//! [`crate::auth`] for the sign-in rules and [`page`] for the HTML.

pub mod page;

use crate::auth::{clear_cookie, set_cookie, token_from_cookies};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use port25_accounts::Verdict;
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// No script may run, nothing may be loaded from elsewhere, no framing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

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

fn operator(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    state.sessions.check(token_from_cookies(cookies)?, Instant::now())
}

pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(login) = operator(&state, &headers) else {
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
    };
    let body = page::dashboard(&login, state.migration_threshold, state.migration_days, &snap, &m.recent_rejections(), &counters);
    html_response(StatusCode::OK, body)
}

pub async fn login_form(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if operator(&state, &headers).is_some() {
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
    let login = form.login.trim().to_lowercase();
    if let Err(wait) = state.sessions.attempt(peer.ip(), Instant::now()) {
        emit!(info, ev::HTTP_LOGIN_FAILED, login = %login, peer = %peer, reason = "too many attempts");
        let mut r = html_response(
            StatusCode::TOO_MANY_REQUESTS,
            page::login(Some(&format!("Too many sign-in attempts from your address; try again in {wait} seconds."))),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let Some(accounts) = state.accounts.clone() else {
        return html_response(StatusCode::SERVICE_UNAVAILABLE, page::login(Some("No account database is configured.")));
    };
    let (l, p) = (login.clone(), form.password);
    // argon2 is deliberately slow: off the async threads.
    let checked = tokio::task::spawn_blocking(move || -> Result<(Verdict, bool), String> {
        let verdict = accounts.verify(&l, &p).map_err(|e| e.to_string())?;
        let operator = matches!(verdict, Verdict::Valid { .. }) && accounts.is_operator(&l).map_err(|e| e.to_string())?;
        Ok((verdict, operator))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let reason = match checked {
        Ok((Verdict::Valid { .. }, true)) => {
            emit!(info, ev::HTTP_LOGIN, login = %login, peer = %peer);
            let token = state.sessions.start(&login, Instant::now());
            let https = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
            let mut r = Redirect::to("/dashboard").into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie(&token, state.sessions.lifetime(), https)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
        Ok((Verdict::Valid { .. }, false)) => "not an operator",
        Ok((Verdict::WrongPassword, _)) => "wrong password",
        Ok((Verdict::UnknownUser, _)) => "unknown login",
        Err(e) => {
            emit!(warn, ev::HTTP_ERROR, what = "account database", error = %e);
            return html_response(StatusCode::INTERNAL_SERVER_ERROR, page::login(Some("The account database cannot be read; see the server log.")));
        }
    };
    emit!(info, ev::HTTP_LOGIN_FAILED, login = %login, peer = %peer, reason);
    // One message for every failure: the form does not tell which logins exist.
    html_response(StatusCode::UNAUTHORIZED, page::login(Some("Wrong login or password, or the login is not an operator.")))
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(t) = headers.get(header::COOKIE).and_then(|c| c.to_str().ok()).and_then(token_from_cookies) {
        state.sessions.end(t);
    }
    let mut r = Redirect::to("/dashboard/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&clear_cookie()).expect("ASCII"));
    r
}
