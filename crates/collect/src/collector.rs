//! `port25 spampot collect`: receives capture logs and bodies from sensors
//! over HTTPS. Each sensor authenticates with its own bearer token, and the
//! token decides which sensor it is: a line naming another sensor is
//! refused, so one stolen token cannot forge another sensor's data.
//!
//! Layout written: `<data_dir>/sensors/<sensor>/events/<segment>` (the
//! sensor's own segments, byte for byte) and `<data_dir>/bodies/` (one
//! content-addressed store for all sensors). Both are the capture format
//! (docs/capture-format.md), so the report reads a collector like a sensor.
//!
//! Routes (all need `Authorization: Bearer <token>`):
//! - `HEAD /v1/bodies/<sha256>`: 200 when held, 404 when not;
//! - `PUT /v1/bodies/<sha256>`: the sensor's `.zst` file; checked against
//!   the digest, then stored;
//! - `POST /v1/events/<segment>?offset=<n>`: complete lines; appended and
//!   fsynced per [`crate::append::plan`] before `200 {"acked": <len>}`;
//!   `409 {"acked": <len>}` on a gap. The shipper sends the bodies a batch
//!   names before the batch (a body the sensor's quota already removed is
//!   missing for good and does not block the lines).

use crate::append::{self, Plan};
use crate::wire::Conn;
use port25_capture::bodies::Bodies;
use port25_capture::{log, reader};
use port25_events as ev;
use port25_events::emit;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Largest request body: a batch of lines or one compressed body.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorAuth {
    pub name: String,
    pub token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectConfig {
    pub listen: std::net::SocketAddr,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default = "default_log_format")]
    pub log_format: String,
    #[serde(rename = "sensor")]
    pub sensors: Vec<SensorAuth>,
}

fn default_hostname() -> String {
    "localhost".into()
}

fn default_log_format() -> String {
    "text".into()
}

impl CollectConfig {
    pub fn load(path: &Path) -> Result<CollectConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: CollectConfig = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1).unwrap_or(0);
            format!("{}:{line}: {}", path.display(), e.message())
        })?;
        if c.sensors.is_empty() {
            return Err(format!("{}: add at least one [[sensor]] with name and token", path.display()));
        }
        for s in &c.sensors {
            if s.token.len() < 16 {
                return Err(format!("{}: sensor {:?}: use a token of at least 16 characters", path.display(), s.name));
            }
            if s.name.is_empty() || !s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) || s.name.starts_with('.') {
                return Err(format!("{}: sensor name {:?}: use letters, digits, '-', '_' and '.'", path.display(), s.name));
            }
        }
        if c.cert.is_some() != c.key.is_some() {
            return Err(format!("{}: give both cert and key, or neither (a self-signed pair is generated)", path.display()));
        }
        Ok(c)
    }
}

struct State {
    root: PathBuf,
    bodies: Bodies,
    tokens: HashMap<String, String>,
    /// Appends are serialised: sensors ship one batch at a time anyway.
    append: Mutex<()>,
}

/// Compares without an early exit on the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl State {
    fn sensor_of(&self, auth: Option<&str>) -> Option<String> {
        let token = auth?.strip_prefix("Bearer ")?.trim();
        self.tokens.iter().find(|(t, _)| same(t, token)).map(|(_, s)| s.clone())
    }
}

fn reply_json(status: &str, acked: u64) -> (String, Vec<u8>) {
    (format!("HTTP/1.1 {status}"), format!("{{\"acked\":{acked}}}").into_bytes())
}

fn text(status: &str, msg: &str) -> (String, Vec<u8>) {
    (format!("HTTP/1.1 {status}"), msg.as_bytes().to_vec())
}

async fn handle(state: &State, sensor: &str, method: &str, target: &str, body: Vec<u8>) -> (String, Vec<u8>) {
    if let Some(digest) = target.strip_prefix("/v1/bodies/") {
        let Some(path) = port25_capture::bodies::path_of(state.bodies.root(), digest) else {
            return text("400 Bad Request", "not a SHA-256 digest");
        };
        return match method {
            "HEAD" => {
                if path.exists() {
                    text("200 OK", "")
                } else {
                    text("404 Not Found", "")
                }
            }
            "PUT" => {
                let bodies = state.bodies.clone();
                let digest = digest.to_owned();
                let r = tokio::task::spawn_blocking(move || -> Result<(), String> {
                    let raw = zstd::bulk::decompress(&body, MAX_BODY).map_err(|e| format!("not a zstd frame: {e}"))?;
                    if port25_capture::bodies::digest_hex(&raw) != digest {
                        return Err("body does not match its digest".into());
                    }
                    bodies.put(&raw).map(|_| ()).map_err(|e| e.to_string())
                })
                .await;
                match r {
                    Ok(Ok(())) => text("201 Created", ""),
                    Ok(Err(e)) => text("422 Unprocessable Entity", &e),
                    Err(e) => text("500 Internal Server Error", &e.to_string()),
                }
            }
            _ => text("405 Method Not Allowed", ""),
        };
    }
    if let Some(rest) = target.strip_prefix("/v1/events/") {
        let Some((segment, query)) = rest.split_once("?offset=") else {
            return text("400 Bad Request", "POST /v1/events/<segment>?offset=<n>");
        };
        if method != "POST" || log::parse_segment_name(segment).is_none() {
            return text("400 Bad Request", "unknown segment name");
        }
        let Ok(offset) = query.parse::<u64>() else {
            return text("400 Bad Request", "bad offset");
        };
        if !body.is_empty() && body.last() != Some(&b'\n') {
            return text("422 Unprocessable Entity", "batches hold complete lines");
        }
        let parsed = reader::parse(&body, offset);
        if let Some((_, e)) = parsed.events.iter().find(|(_, e)| e.sensor != sensor) {
            emit!(warn, ev::COLLECT_REFUSED, sensor, reason = "event names another sensor", named = %e.sensor);
            return text("403 Forbidden", "events must name the sensor the token belongs to");
        }
        let dir = state.root.join("sensors").join(sensor).join("events");
        let _guard = state.append.lock().await;
        let path = dir.join(segment);
        let events = parsed.events.len();
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<(Plan, u64)> {
            std::fs::create_dir_all(&dir)?;
            let have = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let plan = append::plan(have, offset, &body);
            if let Plan::Append { skip } = plan {
                let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
                f.write_all(&body[skip..])?;
                f.sync_data()?;
                if have == 0 {
                    std::fs::File::open(&dir)?.sync_all()?;
                }
                return Ok((plan, have + (body.len() - skip) as u64));
            }
            Ok((plan, have))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        return match r {
            Ok((Plan::Append { .. }, len)) => {
                emit!(info, ev::COLLECT_RECEIVED, sensor, segment, offset, events, acked = len);
                reply_json("200 OK", len)
            }
            Ok((Plan::Duplicate, len)) => reply_json("200 OK", len),
            Ok((Plan::Gap, len)) => reply_json("409 Conflict", len),
            Ok((Plan::Misaligned, len)) => {
                emit!(warn, ev::COLLECT_REFUSED, sensor, segment, reason = "resend does not match what is held");
                reply_json("409 Conflict", len)
            }
            Err(e) => text("500 Internal Server Error", &e.to_string()),
        };
    }
    text("404 Not Found", "")
}

async fn serve_conn(state: Arc<State>, tls: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream, peer: std::net::SocketAddr) {
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(30), tls.accept(tcp)).await else {
        return;
    };
    let mut conn = Conn::new(stream, Duration::from_secs(60));
    loop {
        let (head, body) = match conn.read(MAX_BODY).await {
            Ok(Some(m)) => m,
            _ => return,
        };
        let Some((method, target)) = head.request() else {
            return;
        };
        let (status, body) = match state.sensor_of(head.header("authorization")) {
            None => {
                emit!(warn, ev::COLLECT_REFUSED, peer = %peer, reason = "bad or missing token");
                text("401 Unauthorized", "")
            }
            Some(sensor) => handle(&state, &sensor, method, target, body).await,
        };
        if conn.write(&status, &[("Content-Type", "application/json")], &body).await.is_err() {
            return;
        }
    }
}

/// Serves until `shutdown`; errors (certificate, store) are returned as text.
pub async fn run(config: CollectConfig, listener: TcpListener, shutdown: CancellationToken) -> Result<(), String> {
    let (cert, key) = match (&config.cert, &config.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k, fresh) = port25_engine::tls::self_signed(&config.data_dir.join("tls"), &config.hostname).map_err(|e| e.to_string())?;
            if fresh {
                emit!(info, ev::TLS_CERT_GENERATED, path = %c.display(), hostname = %config.hostname);
            }
            (c, k)
        }
    };
    let tls = tokio_rustls::TlsAcceptor::from(port25_engine::tls::server_config(&cert, &key).map_err(|e| e.to_string())?);
    let state = Arc::new(State {
        bodies: Bodies::open(&config.data_dir.join("bodies")).map_err(|e| e.to_string())?,
        root: config.data_dir.clone(),
        tokens: config.sensors.iter().map(|s| (s.token.clone(), s.name.clone())).collect(),
        append: Mutex::new(()),
    });
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue } },
            _ = shutdown.cancelled() => return Ok(()),
        };
        tokio::spawn(serve_conn(state.clone(), tls.clone(), tcp, peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_example_parses_and_bad_configs_say_why() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/collect.toml");
        let c = CollectConfig::load(&path).unwrap();
        assert_eq!(c.sensors[0].name, "br-sp-01");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("c.toml");
        std::fs::write(&bad, "listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\n[[sensor]]\nname = \"s\"\ntoken = \"short\"\n").unwrap();
        assert!(CollectConfig::load(&bad).unwrap_err().contains("at least 16 characters"));
        std::fs::write(&bad, "listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\n[[sensor]]\nname = \"../x\"\ntoken = \"0123456789abcdef\"\n").unwrap();
        assert!(CollectConfig::load(&bad).unwrap_err().contains("sensor name"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab"));
    }
}
