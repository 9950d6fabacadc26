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
//! Hostile peers: the token is checked from the request head, before any
//! body is read; a request without a valid one gets `401` and the
//! connection is closed (after discarding at most [`PRE_AUTH_LINGER`] bytes
//! the peer was already sending, so that it reads the answer). Only an
//! authenticated sensor may send a body of up to [`MAX_BODY`]; `Expect:
//! 100-continue` is answered once the token is checked. Connections are
//! capped overall and per client address (IPv4-mapped addresses count as
//! IPv4, IPv6 per /64); over a cap the connection is closed at once.
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
use port25_listen::accept::{accept_loop, drain, Refused};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest request body of an authenticated sensor: a batch of lines or
/// one compressed body.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// What a peer without a valid token can make the collector read past the
/// request head: the body it was already sending when the `401` went out,
/// discarded, up to this much.
pub const PRE_AUTH_LINGER: u64 = 64 * 1024;

/// The whole request head (and the wait for it on a kept-alive connection)
/// must come within this: a peer trickling a byte at a time does not hold
/// its connection slot for longer.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorAuth {
    pub name: String,
    /// Spanned: a duplicate is reported with its line.
    pub token: toml::Spanned<String>,
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
    /// Connections at once, all clients together.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections at once from one client address (IPv6: one /64).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Seconds a new connection has to finish its TLS handshake; until
    /// then it holds a connection slot, so a peer that opens connections
    /// and never speaks holds them no longer than this.
    #[serde(default = "default_handshake_timeout_secs")]
    pub handshake_timeout_secs: u64,
    #[serde(rename = "sensor")]
    pub sensors: Vec<SensorAuth>,
}

fn default_max_connections() -> usize {
    256
}

fn default_max_connections_per_address() -> usize {
    8
}

fn default_handshake_timeout_secs() -> u64 {
    30
}

fn default_hostname() -> String {
    "localhost".into()
}

fn default_log_format() -> String {
    "text".into()
}

impl CollectConfig {
    pub fn load(path: &Path) -> Result<CollectConfig, String> {
        let text = port25_config::read(
            path,
            "the collector configuration",
            "give the path of a collect.toml (see dist/collect.toml)",
        )
        .map_err(|e| e.to_string())?;
        let line_of = |offset: usize| port25_config::line_col(&text, offset).0;
        let c: CollectConfig =
            port25_config::from_toml(&text, path, "see dist/collect.toml for every key").map_err(|e| e.to_string())?;
        if c.sensors.is_empty() {
            return Err(format!("{}: add at least one [[sensor]] with name and token", path.display()));
        }
        if c.max_connections == 0 || c.max_connections_per_address == 0 {
            return Err(format!(
                "{}: max_connections and max_connections_per_address must be at least 1",
                path.display()
            ));
        }
        if !(1..=3600).contains(&c.handshake_timeout_secs) {
            return Err(format!("{}: handshake_timeout_secs must be 1 to 3600", path.display()));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for s in &c.sensors {
            let line = line_of(s.token.span().start);
            if let Some(first) = seen.insert(s.token.get_ref(), line) {
                return Err(format!(
                    "{}:{line}: sensor {:?}: this token is already given on line {first}; give every sensor its own token (the token decides which sensor a request is)",
                    path.display(),
                    s.name
                ));
            }
            if s.token.get_ref().len() < 16 {
                return Err(format!("{}: sensor {:?}: use a token of at least 16 characters", path.display(), s.name));
            }
            if s.name.is_empty()
                || !s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                || s.name.starts_with('.')
            {
                return Err(format!(
                    "{}: sensor name {:?}: use letters, digits, '-', '_' and '.'",
                    path.display(),
                    s.name
                ));
            }
        }
        if c.cert.is_some() != c.key.is_some() {
            return Err(format!(
                "{}: give both cert and key, or neither (a self-signed pair is generated)",
                path.display()
            ));
        }
        Ok(c)
    }
}

struct State {
    root: PathBuf,
    bodies: Bodies,
    /// (SHA-256 of the token, sensor name).
    tokens: Vec<([u8; 32], String)>,
    /// Appends are serialised: sensors ship one batch at a time anyway.
    append: Mutex<()>,
    /// `handshake_timeout_secs`.
    handshake_timeout: Duration,
}

fn sha256(s: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s).into()
}

/// Compares two digests without an early exit on the first differing byte.
/// Comparing digests rather than the tokens themselves means the time
/// depends on neither token's length nor its content.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

impl State {
    /// The sensor a request's `Authorization` header belongs to. Every
    /// configured token is compared (no early exit), so the time does not
    /// tell which one came close either.
    fn sensor_of(&self, auth: Option<&str>) -> Option<String> {
        let token = auth?.strip_prefix("Bearer ")?.trim();
        let digest = sha256(token.as_bytes());
        let mut found = None;
        for (t, s) in &self.tokens {
            if same(t, &digest) && found.is_none() {
                found = Some(s);
            }
        }
        found.cloned()
    }
}

/// The key a client's connections are counted under: the address with
/// IPv4-mapped IPv6 folded to IPv4, or the /64 of an IPv6 address (one
/// subscriber usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Connections held per client key; a slot is released when its
/// [`ClientSlot`] drops.
struct PerClient {
    max: usize,
    held: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl PerClient {
    fn take(table: &Arc<PerClient>, ip: IpAddr) -> Option<ClientSlot> {
        let key = client_key(ip);
        let mut held = table.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= table.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot { table: table.clone(), key })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

fn reply_json(status: &str, acked: u64) -> (String, Vec<u8>) {
    (format!("HTTP/1.1 {status}"), format!("{{\"acked\":{acked}}}").into_bytes())
}

fn text(status: &str, msg: &str) -> (String, Vec<u8>) {
    (format!("HTTP/1.1 {status}"), msg.as_bytes().to_vec())
}

/// `507` while the collector's filesystem is below the capture store's
/// free-space floor: the sensor keeps its data and retries later.
fn no_room(root: &Path) -> Option<(String, Vec<u8>)> {
    let (avail, total) = port25_capture::filesystem_space(root).ok()?;
    if avail >= port25_capture::free_floor(total) {
        return None;
    }
    emit!(error, ev::COLLECT_REFUSED, reason = "collector disk below its free-space floor", free = avail);
    Some(text("507 Insufficient Storage", "the collector's disk is nearly full; retry later"))
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
                if let Some(full) = no_room(&state.root) {
                    return full;
                }
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
        if let Some(full) = no_room(&state.root) {
            return full;
        }
        let dir = state.root.join("sensors").join(sensor).join("events");
        let _guard = state.append.lock().await;
        let path = dir.join(segment);
        let events = parsed.events.len();
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<(Plan, u64)> {
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700).create(&dir)?;
            let have = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let plan = append::plan(have, offset, &body);
            if let Plan::Append { skip } = plan {
                let mut f =
                    std::os::unix::fs::OpenOptionsExt::mode(OpenOptions::new().create(true).append(true), 0o600)
                        .open(&path)?;
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

async fn serve_conn(
    state: Arc<State>,
    tls: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) {
    let Ok(Ok(stream)) = tokio::time::timeout(state.handshake_timeout, tls.accept(tcp)).await else {
        return;
    };
    let mut conn = Conn::new(stream, Duration::from_secs(60));
    loop {
        let head = match tokio::time::timeout(HEAD_DEADLINE, conn.read_head()).await {
            Ok(Ok(Some(h))) => h,
            _ => return,
        };
        let Some((method, target)) = head.request() else {
            return;
        };
        // The token first, from the head alone: nothing of the body is read
        // for a peer without one.
        let Some(sensor) = state.sensor_of(head.header("authorization")) else {
            let _ = conn.write("HTTP/1.1 401 Unauthorized", &[("Connection", "close")], b"").await;
            let read = conn.close_lingering(PRE_AUTH_LINGER, Duration::from_secs(1)).await;
            emit!(warn, ev::COLLECT_REFUSED, peer = %peer, reason = "bad or missing token", bytes_read = read);
            return;
        };
        let refuse = match head.content_length() {
            Err(e) => Some(("400 Bad Request", e.to_string())),
            Ok(len) if len > MAX_BODY => Some(("413 Content Too Large", format!("a body is at most {MAX_BODY} bytes"))),
            Ok(_) => None,
        };
        if let Some((status, why)) = refuse {
            let _ = conn.write(&format!("HTTP/1.1 {status}"), &[("Connection", "close")], why.as_bytes()).await;
            conn.close_lingering(PRE_AUTH_LINGER, Duration::from_secs(1)).await;
            return;
        }
        let len = head.content_length().unwrap_or(0);
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && conn.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
        {
            return;
        }
        let Ok(body) = conn.read_body(len).await else {
            return;
        };
        let (status, body) = handle(&state, &sensor, method, target, body).await;
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
            let (c, k, fresh) = port25_listen::tls::self_signed(&config.data_dir.join("tls"), &config.hostname)
                .map_err(|e| e.to_string())?;
            if fresh {
                emit!(info, ev::TLS_CERT_GENERATED, path = %c.display(), hostname = %config.hostname);
            }
            (c, k)
        }
    };
    let tls =
        tokio_rustls::TlsAcceptor::from(port25_listen::tls::server_config(&cert, &key).map_err(|e| e.to_string())?);
    let state = Arc::new(State {
        bodies: Bodies::open(&config.data_dir.join("bodies")).map_err(|e| e.to_string())?,
        root: config.data_dir.clone(),
        tokens: config.sensors.iter().map(|s| (sha256(s.token.get_ref().as_bytes()), s.name.clone())).collect(),
        append: Mutex::new(()),
        handshake_timeout: Duration::from_secs(config.handshake_timeout_secs),
    });
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let per_client = Arc::new(PerClient { max: config.max_connections_per_address, held: Default::default() });
    let tracker = TaskTracker::new();
    accept_loop(
        &listener,
        &slots,
        &tracker,
        &shutdown,
        |r| {
            if let Refused::Full(_, peer) = r {
                emit!(warn, ev::COLLECT_REFUSED, peer = %peer, reason = "too many connections");
            }
        },
        |tcp, peer| {
            let slot = PerClient::take(&per_client, peer.ip());
            let (state, tls) = (state.clone(), tls.clone());
            async move {
                let Some(_slot) = slot else {
                    emit!(warn, ev::COLLECT_REFUSED, peer = %peer, reason = "too many connections from this address");
                    return;
                };
                serve_conn(state, tls, tcp, peer).await;
            }
        },
    )
    .await;
    drain(&tracker, Duration::from_secs(5)).await;
    Ok(())
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
        std::fs::write(
            &bad,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\n[[sensor]]\nname = \"s\"\ntoken = \"short\"\n",
        )
        .unwrap();
        assert!(CollectConfig::load(&bad).unwrap_err().contains("at least 16 characters"));
        std::fs::write(
            &bad,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\n[[sensor]]\nname = \"../x\"\ntoken = \"0123456789abcdef\"\n",
        )
        .unwrap();
        assert!(CollectConfig::load(&bad).unwrap_err().contains("sensor name"));
        assert_eq!(c.handshake_timeout_secs, 30);
        for t in ["0", "3601"] {
            std::fs::write(
                &bad,
                format!("listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\nhandshake_timeout_secs = {t}\n[[sensor]]\nname = \"s\"\ntoken = \"0123456789abcdef\"\n"),
            )
            .unwrap();
            assert!(CollectConfig::load(&bad).unwrap_err().contains("handshake_timeout_secs must be 1 to 3600"), "{t}");
        }
    }

    #[test]
    fn duplicate_tokens_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"x\"\n[[sensor]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n\
             [[sensor]]\nname = \"b\"\ntoken = \"fedcba9876543210\"\n[[sensor]]\nname = \"c\"\ntoken = \"0123456789abcdef\"\n",
        )
        .unwrap();
        let e = CollectConfig::load(&p).unwrap_err();
        assert!(
            e.starts_with(&format!("{}:11: sensor \"c\"", p.display())) && e.contains("already given on line 5"),
            "{e}"
        );
    }

    fn state(root: &Path) -> State {
        State {
            root: root.to_owned(),
            bodies: Bodies::open(&root.join("bodies")).unwrap(),
            tokens: ["0123456789abcdef", "another-token-0123"]
                .iter()
                .zip(["a", "b"])
                .map(|(t, s)| (sha256(t.as_bytes()), s.to_owned()))
                .collect(),
            append: Mutex::new(()),
            handshake_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn a_collector_disk_below_the_floor_answers_507_and_stores_nothing() {
        let mnt = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(mnt.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (./test.sh runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        struct Umount<'a>(&'a Path);
        impl Drop for Umount<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
        let _umount = Umount(mnt.path());
        let root = mnt.path().join("data");
        let state = state(&root);
        let raw = b"Subject: x\r\n\r\nbody\r\n".to_vec();
        let digest = port25_capture::bodies::digest_hex(&raw);
        let zst = zstd::bulk::compress(&raw, 3).unwrap();
        let (avail, _) = port25_capture::filesystem_space(&root).unwrap();
        std::fs::write(mnt.path().join("filler"), vec![0u8; (avail - 40 * 1024) as usize]).unwrap();
        let (status, _) = handle(&state, "a", "PUT", &format!("/v1/bodies/{digest}"), zst.clone()).await;
        assert_eq!(status, "HTTP/1.1 507 Insufficient Storage");
        let (status, _) =
            handle(&state, "a", "POST", "/v1/events/events-20260101-000001.jsonl?offset=0", Vec::new()).await;
        assert_eq!(status, "HTTP/1.1 507 Insufficient Storage");
        assert!(port25_capture::bodies::path_of(state.bodies.root(), &digest).is_some_and(|p| !p.exists()));
        std::fs::remove_file(mnt.path().join("filler")).unwrap();
        let (status, _) = handle(&state, "a", "PUT", &format!("/v1/bodies/{digest}"), zst).await;
        assert_eq!(status, "HTTP/1.1 201 Created");
    }

    #[test]
    fn tokens_compare_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path());
        assert_eq!(state.sensor_of(Some("Bearer 0123456789abcdef")).as_deref(), Some("a"));
        assert_eq!(state.sensor_of(Some("Bearer another-token-0123")).as_deref(), Some("b"));
        for bad in [
            "Bearer 0123456789abcde",
            "Bearer 0123456789abcdef0",
            "Bearer ",
            "0123456789abcdef",
            "Basic 0123456789abcdef",
        ] {
            assert_eq!(state.sensor_of(Some(bad)), None, "{bad}");
        }
        assert_eq!(state.sensor_of(None), None);
    }

    #[test]
    fn clients_are_counted_per_address_v4_mapped_folded_v6_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        let table = Arc::new(PerClient { max: 2, held: Default::default() });
        let a = PerClient::take(&table, ip("192.0.2.7")).unwrap();
        let _b = PerClient::take(&table, ip("::ffff:192.0.2.7")).unwrap();
        assert!(PerClient::take(&table, ip("192.0.2.7")).is_none(), "the mapped form is the same client");
        assert!(PerClient::take(&table, ip("192.0.2.8")).is_some());
        let _c = PerClient::take(&table, ip("2001:db8:1:2::1")).unwrap();
        let _d = PerClient::take(&table, ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(PerClient::take(&table, ip("2001:db8:1:2:1234::1")).is_none(), "one /64 is one client");
        assert!(PerClient::take(&table, ip("2001:db8:1:3::1")).is_some());
        drop(a);
        assert!(PerClient::take(&table, ip("192.0.2.7")).is_some(), "a closed connection frees its slot");
    }
}
