//! The sensor side of shipping: follows the local capture log and sends it
//! to the collector, bodies first, then the lines that name them.
//!
//! Position: `(segment, offset)` of the first byte the collector has not
//! acknowledged, kept in `<capture>/ship.state` (written to a temporary
//! file, fsynced, renamed). It only advances on the collector's `acked`
//! answer, and the collector appends by offset (idempotently), so a crash
//! of either side, a lost answer or a collector that is down for a day
//! loses nothing and duplicates nothing: the sensor keeps writing locally
//! and catches up from its position. Segments removed by the disk quota
//! before they were shipped are skipped (the quota event says so).

use crate::wire::Conn;
use port25_capture::{log, reader};
use port25_events as ev;
use port25_events::emit;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// `https://host:port` of the collector.
    pub url: String,
    pub token: String,
    /// PEM certificate(s) to trust for the collector (its self-signed
    /// certificate, or a private CA). Without it: the system's roots are not
    /// loaded here, so give one.
    pub ca_file: PathBuf,
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    #[serde(default = "default_batch")]
    pub batch_bytes: usize,
}

fn default_interval() -> u64 {
    1000
}

fn default_batch() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub segment: String,
    pub offset: u64,
}

fn state_path(capture: &Path) -> PathBuf {
    capture.join("ship.state")
}

pub fn load_position(capture: &Path) -> Position {
    std::fs::read(state_path(capture)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save_position(capture: &Path, p: &Position) -> io::Result<()> {
    let tmp = capture.join("ship.state.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, &serde_json::to_vec(p).expect("position serialises"))?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, state_path(capture))?;
    std::fs::File::open(capture)?.sync_all()
}

/// (host, port) of an `https://host:port` URL.
pub fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest =
        url.strip_prefix("https://").ok_or_else(|| format!("{url}: the collector URL must start with https://"))?;
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("{url}: give the port, e.g. https://collector.example:8443"))?;
    let port = port.parse().map_err(|_| format!("{url}: bad port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

/// Up to `batch` bytes of `path` from `offset`, more when no line ends in
/// them (a line longer than a batch goes alone, up to the collector's limit).
fn read_from(path: &Path, offset: u64, batch: usize) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    let mut limit = batch as u64;
    loop {
        let before = out.len();
        (&mut f).take(limit).read_to_end(&mut out)?;
        if out.contains(&b'\n') || out.len() == before || out.len() >= crate::collector::MAX_BODY {
            return Ok(out);
        }
        limit = batch as u64;
    }
}

pub struct Shipper {
    config: ShipConfig,
    host: String,
    port: u16,
    tls: tokio_rustls::TlsConnector,
    capture: PathBuf,
}

type Link = Conn<TlsStream<TcpStream>>;

impl Shipper {
    pub fn new(config: ShipConfig, capture: &Path) -> Result<Shipper, String> {
        let (host, port) = parse_url(&config.url)?;
        let pem =
            std::fs::read(&config.ca_file).map_err(|e| format!("ship.ca_file {}: {e}", config.ca_file.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("ship.ca_file {}: {e}", config.ca_file.display()))?;
            roots.add(cert).map_err(|e| format!("ship.ca_file {}: {e}", config.ca_file.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("ship.ca_file {}: no PEM certificate in it", config.ca_file.display()));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Shipper {
            config,
            host,
            port,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            capture: capture.to_owned(),
        })
    }

    async fn connect(&self) -> io::Result<Link> {
        let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio::time::timeout(Duration::from_secs(10), self.tls.connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS timed out"))??;
        Ok(Conn::new(tls, Duration::from_secs(60)))
    }

    async fn request(&self, link: &mut Link, method: &str, target: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let auth = format!("Bearer {}", self.config.token);
        link.write(&format!("{method} {target} HTTP/1.1"), &[("Host", &self.host), ("Authorization", &auth)], body)
            .await?;
        let (head, body) = link.read(1 << 20).await?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let status = head.status().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        if status == 401 || status == 403 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("collector refused the token ({status})"),
            ));
        }
        Ok((status, body))
    }

    /// Ships everything complete up to now; returns the number of bytes
    /// acknowledged.
    pub async fn ship_once(&self) -> io::Result<u64> {
        let events = self.capture.join("events");
        let mut pos = load_position(&self.capture);
        let mut link: Option<Link> = None;
        let mut shipped = 0u64;
        loop {
            let segments = log::list_segments(&events)?;
            let current = log::parse_segment_name(&pos.segment).map(|(_, s)| s);
            // The segment at the position, or the next one that still exists.
            let Some((seq, path)) = segments.iter().find(|(s, _)| current.is_none_or(|c| *s >= c)).cloned() else {
                return Ok(shipped);
            };
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if Some(seq) != current {
                pos = Position { segment: name.clone(), offset: 0 };
            }
            let window = read_from(&path, pos.offset, self.config.batch_bytes)?;
            let cut = match window.iter().take(self.config.batch_bytes).rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // One line longer than a batch goes alone.
                None => window.iter().position(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0),
            };
            if cut == 0 {
                if segments.last().is_some_and(|(s, _)| *s > seq) {
                    pos = Position {
                        segment: segments
                            .iter()
                            .find(|(s, _)| *s > seq)
                            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        offset: 0,
                    };
                    save_position(&self.capture, &pos)?;
                    continue;
                }
                return Ok(shipped);
            }
            let batch = &window[..cut];
            if link.is_none() {
                link = Some(self.connect().await?);
            }
            let l = link.as_mut().expect("connected above");
            for (_, e) in reader::parse(batch, pos.offset).events {
                let Some(d) = e.digest else { continue };
                let (status, _) = self.request(l, "HEAD", &format!("/v1/bodies/{d}"), b"").await?;
                if status == 200 {
                    continue;
                }
                let Some(file) = port25_capture::bodies::path_of(&self.capture.join("bodies"), &d) else {
                    continue;
                };
                // A body removed by the quota cannot be sent; the collector
                // will refuse the batch, so skipping would stall: send what
                // exists and let the line go without it.
                let Ok(zst) = std::fs::read(&file) else {
                    continue;
                };
                let (status, body) = self.request(l, "PUT", &format!("/v1/bodies/{d}"), &zst).await?;
                if status != 201 {
                    return Err(io::Error::other(format!(
                        "collector refused body {d}: {status} {}",
                        String::from_utf8_lossy(&body)
                    )));
                }
            }
            let (status, body) =
                self.request(l, "POST", &format!("/v1/events/{name}?offset={}", pos.offset), batch).await?;
            #[derive(Deserialize)]
            struct Ack {
                acked: u64,
            }
            let ack: Ack = serde_json::from_slice(&body).map_err(|_| {
                io::Error::other(format!("collector answered {status} {}", String::from_utf8_lossy(&body)))
            })?;
            match status {
                // 409: the collector holds a different length (a lost
                // answer, a restored collector): resume from what it holds.
                200 | 409 => {
                    shipped += ack.acked.saturating_sub(pos.offset);
                    pos.offset = ack.acked;
                    save_position(&self.capture, &pos)?;
                    emit!(debug, ev::SPAMPOT_SHIP_SENT, segment = %name, acked = ack.acked, status);
                }
                _ => {
                    return Err(io::Error::other(format!(
                        "collector answered {status} {}",
                        String::from_utf8_lossy(&body)
                    )))
                }
            }
        }
    }

    /// Ships until `shutdown`, retrying with a growing pause (up to a
    /// minute) while the collector is unreachable.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(self.config.interval_ms);
        loop {
            let pause = match self.ship_once().await {
                Ok(_) => {
                    backoff = Duration::from_millis(self.config.interval_ms);
                    backoff
                }
                Err(e) => {
                    emit!(warn, ev::SPAMPOT_SHIP_FAILED, collector = %self.config.url, error = %e, retry_in_ms = backoff.as_millis() as u64);
                    let p = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    p
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_lines_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seg");
        let long = "x".repeat(50);
        std::fs::write(&p, format!("a\nbb\n{long}\ntail")).unwrap();
        assert_eq!(read_from(&p, 0, 4).unwrap(), b"a\nbb");
        assert_eq!(read_from(&p, 2, 100).unwrap(), format!("bb\n{long}\ntail").as_bytes());
        // A line longer than the batch is read to its end.
        let got = read_from(&p, 5, 8).unwrap();
        assert!(got.len() > 50 && got.contains(&b'\n'), "{}", String::from_utf8_lossy(&got));
        assert_eq!(read_from(&p, 100, 8).unwrap(), b"");
        assert_eq!(parse_url("https://c.example:8443/").unwrap(), ("c.example".into(), 8443));
        assert!(parse_url("http://c.example:8443").is_err());
        assert!(parse_url("https://c.example").is_err());
    }
}
