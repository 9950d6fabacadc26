//! ACME HTTP-01 (RFC 8555 section 8.3) on the public listener:
//! `GET /.well-known/acme-challenge/TOKEN` answers the key authorization
//! while port25 has an order's challenge open for that token, 404
//! otherwise. The tokens are set by `[tls.acme]` (crates/port25/src/cmd/acme.rs).

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use port25_events as ev;
use port25_events::emit;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A token is base64url (RFC 8555 section 8.1); Let's Encrypt's are 43
/// characters. Longer requests are not looked up.
const MAX_TOKEN: usize = 256;

/// The open HTTP-01 challenges: token → key authorization.
#[derive(Debug, Default)]
pub struct Http01Tokens(Mutex<HashMap<String, String>>);

impl Http01Tokens {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(token);
    }

    /// Forgets every token (the order is over).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn get(&self, token: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }
}

/// The route, to merge into the public router.
pub fn router(tokens: Arc<Http01Tokens>) -> Router {
    Router::new().route("/.well-known/acme-challenge/{token}", get(challenge)).with_state(tokens)
}

async fn challenge(
    State(tokens): State<Arc<Http01Tokens>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let well_formed = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match tokens.get(&token).filter(|_| well_formed) {
        Some(answer) => {
            emit!(info, ev::ACME_CHALLENGE_SERVED, challenge = "http-01", peer = %peer.ip().to_canonical(), domain = "");
            // RFC 8555 section 8.3: the key authorization, as
            // application/octet-stream.
            crate::typed(StatusCode::OK, "application/octet-stream", answer)
        }
        None => crate::text(StatusCode::NOT_FOUND, "no such challenge\n"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_open_well_formed_tokens_are_answered() {
        let t = super::Http01Tokens::default();
        t.insert("abc_-1", "abc_-1.thumb");
        assert_eq!(t.get("abc_-1").as_deref(), Some("abc_-1.thumb"));
        t.remove("abc_-1");
        assert_eq!(t.get("abc_-1"), None);
    }
}
