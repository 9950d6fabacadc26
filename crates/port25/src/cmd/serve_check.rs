//! `port25 serve --check`: everything `serve` needs, checked without
//! serving, for systemd's ExecStartPre= (a broken start is refused before
//! the old process is gone) and ExecReload= (a broken file is refused
//! before the running server is told to re-read it).
//!
//! The configuration was parsed already (its errors name file:line:column);
//! this checks what parsing cannot: the certificate and key files (readable,
//! PEM, the key belongs to the certificate, the chain in date and in order,
//! the server's name in it), the device CA, the DKIM keys,
//! the directories serve writes (writable by the user this runs as, data
//! directory not readable by others), and each listener's address (an
//! address of this machine; a port below 1024 only through systemd's socket
//! units or CAP_NET_BIND_SERVICE). Every failure says what to change. Runs
//! as the service's user (ExecStartPre= runs with the unit's User=), so
//! "writable" means writable by the port25 user.

use port25_config::{Config, DeliveryMethod, TlsMode};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

struct Report {
    failed: usize,
    /// Collect the failures instead of printing ([`problems`]).
    collected: Option<Vec<String>>,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        if self.collected.is_none() {
            outln!("ok    {what}: {detail}");
        }
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        match &mut self.collected {
            Some(list) => list.push(format!("{what}: {detail}")),
            None => outln!("FAIL  {what}: {detail}"),
        }
    }
}

/// The checks of [`run`] but the ports' (a reload binds what changed
/// itself, cmd/generation.rs), as a list of failures: what a reload
/// refuses a configuration for.
pub fn problems(config: &Config) -> Vec<String> {
    let mut r = Report { failed: 0, collected: Some(Vec::new()) };
    tls(config, &mut r);
    dkim(config, &mut r);
    directories(config, &mut r);
    r.collected.unwrap_or_default()
}

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let mut r = Report { failed: 0, collected: None };
    r.ok("config", format!("{} listeners, domains {}", config.listeners.len(), config.mx.domains.join(", ")));
    tls(config, &mut r);
    dkim(config, &mut r);
    directories(config, &mut r);
    for l in &config.listeners {
        port(&l.name, l.address, &mut r);
    }
    for (name, addr) in [("http", config.http.address), ("http private", config.http.private_address)] {
        if let Some(a) = addr {
            port(name, a, &mut r);
        }
    }
    if r.failed > 0 {
        outln!("{} check(s) failed: port25 serve would not start (or would refuse that part)", r.failed);
        return Ok(ExitCode::from(1));
    }
    outln!("all checks passed");
    Ok(ExitCode::SUCCESS)
}

fn tls(config: &Config, r: &mut Report) {
    if config.listeners.iter().all(|l| l.tls == TlsMode::None) {
        r.ok("tls", "no listener uses TLS");
        return;
    }
    match &config.tls_files {
        Some((cert, key)) => match port25_listen::tls::server_config(cert, key) {
            Ok(_) => {
                r.ok(
                    "tls",
                    format!("certificate {} and key {} load and belong together", cert.display(), key.display()),
                );
                match certificate(cert, config, rustls::pki_types::UnixTime::now()) {
                    Ok(facts) => r.ok("certificate", facts),
                    Err(e) => r.fail("certificate", format!("{}: {e}", cert.display())),
                }
            }
            Err(e) => r.fail("tls", format!("{e}; fix [tls] certificate / private_key (PEM, readable by this user)")),
        },
        None if config.acme.is_some() => acme(config, r),
        None => {
            let dir = config.data_dir.join("tls");
            let (cert, key) = (dir.join("selfsigned.crt"), dir.join("selfsigned.key"));
            if cert.exists() && key.exists() {
                match port25_listen::tls::server_config(&cert, &key) {
                    Ok(_) => r.ok(
                        "tls",
                        format!("self-signed certificate {} (set [tls] certificate for a real one)", cert.display()),
                    ),
                    Err(e) => r.fail(
                        "tls",
                        format!("{e}; remove {} and {} to have a new one made", cert.display(), key.display()),
                    ),
                }
            } else {
                r.ok(
                    "tls",
                    format!(
                        "a self-signed certificate will be made in {} (set [tls] certificate for a real one)",
                        dir.display()
                    ),
                );
            }
        }
    }
    if let Some(ca) = &config.submission.device_ca {
        let pair = config.tls_files.clone().unwrap_or_else(|| {
            (config.data_dir.join("tls/selfsigned.crt"), config.data_dir.join("tls/selfsigned.key"))
        });
        if pair.0.exists() {
            match port25_engine::device_tls::server_config_with_device_ca(&pair.0, &pair.1, ca) {
                Ok(_) => r.ok("device CA", ca.display()),
                Err(e) => r.fail("device CA", format!("{e}; fix [submission] device_ca")),
            }
        }
    }
}

/// `[tls.acme]`: the stored certificate if usable; none (or an unusable
/// one) is fine, since serve orders one at start, but an unreadable
/// `ca_file` is not.
fn acme(config: &Config, r: &mut Report) {
    let Some(a) = &config.acme else { return };
    if let Some(ca) = &a.ca_file {
        let roots = std::fs::read(ca).map_err(|e| e.to_string()).and_then(|pem| {
            match rustls_pemfile::certs(&mut pem.as_slice()).next() {
                Some(Ok(_)) => Ok(()),
                _ => Err("no PEM certificate in it".to_owned()),
            }
        });
        if let Err(e) = roots {
            r.fail("acme", format!("[tls.acme] ca_file {}: {e}", ca.display()));
            return;
        }
    }
    let (cert, _) = super::acme::paths(&config.data_dir);
    match super::acme::usable(&config.data_dir, &a.domains) {
        Ok(facts) => r.ok(
            "tls",
            format!(
                "ACME certificate {} for {} (serial {}), renewed from {} before it ends",
                cert.display(),
                a.domains.join(", "),
                facts.serial,
                a.directory
            ),
        ),
        Err(why) => r.ok(
            "tls",
            format!(
                "no usable ACME certificate yet ({why}): serve orders one from {} at start and serves a self-signed one until it arrives",
                a.directory
            ),
        ),
    }
}

/// How soon before the end of a certificate the check says to renew it.
const RENEW_WITHIN: u64 = 14 * 24 * 3600;

/// The certificate chain verifies from its first to its last certificate
/// at `now` (none expired or not yet valid, each signed by the next; the
/// last is taken as the anchor, the system's roots are not consulted) and
/// names `hostname` or the submission host. Ok: what it covers, and a
/// reminder when it ends within 14 days.
fn certificate(path: &Path, config: &Config, now: rustls::pki_types::UnixTime) -> Result<String, String> {
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let chain: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let (first, last) = (chain.first().ok_or("no certificate")?, chain.last().ok_or("no certificate")?);
    let ee =
        webpki::EndEntityCert::try_from(first).map_err(|e| format!("the first certificate cannot be read: {e}"))?;
    let anchor =
        webpki::anchor_from_trusted_cert(last).map_err(|e| format!("the last certificate cannot be read: {e}"))?;
    let intermediates = chain.get(1..chain.len().saturating_sub(1)).unwrap_or_default();
    let verify = |at: UnixTime| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            std::slice::from_ref(&anchor),
            intermediates,
            at,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    match verify(now) {
        Ok(()) => {}
        Err(webpki::Error::CertExpired { .. }) => return Err("expired: renew it (docs/DEPLOY.md, certbot)".into()),
        Err(webpki::Error::CertNotValidYet { .. }) => return Err("not valid yet (is the clock right?)".into()),
        Err(e) => return Err(format!("the chain does not verify ({e:?}): the file must hold the server's certificate first, then each issuer in order")),
    }
    let names = [config.hostname.as_str(), config.http.submission_host.as_str()];
    let covered: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| ServerName::try_from(*n).is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok()))
        .collect();
    if covered.is_empty() {
        return Err(format!(
            "names neither hostname {} nor [http] submission_host {}: clients that verify will refuse it",
            names[0], names[1]
        ));
    }
    let soon = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs() + RENEW_WITHIN));
    let ending = match verify(soon) {
        Err(webpki::Error::CertExpired { .. }) => "; it ends within 14 days: renew it",
        _ => "",
    };
    Ok(format!("valid now for {}{ending}", covered.join(", ")))
}

fn dkim(config: &Config, r: &mut Report) {
    for k in &config.outbound.dkim {
        let what = format!("dkim {} selector {}", k.domain, k.selector);
        match port25_outbound::dkim::Dkim::load(&[(k.domain.clone(), k.selector.clone(), k.private_key.clone())]) {
            Ok(_) => r.ok(&what, k.private_key.display()),
            Err(e) => r.fail(&what, format!("{e}; make one with `port25 dkim keygen`")),
        }
    }
}

fn directories(config: &Config, r: &mut Report) {
    writable_dir("data_dir", &config.data_dir, true, r);
    if config.delivery.method == DeliveryMethod::Maildir && !config.delivery.maildir.starts_with(&config.data_dir) {
        writable_dir("maildir", &config.delivery.maildir, false, r);
    }
    if let Some(parent) =
        config.submission.accounts.parent().filter(|p| !p.starts_with(&config.data_dir) && !p.as_os_str().is_empty())
    {
        writable_dir("accounts directory", parent, false, r);
    }
}

/// The directory exists (or can be made) and this user can write in it;
/// `private`: not open to group or others (it holds mail and keys).
fn writable_dir(what: &str, dir: &Path, private: bool, r: &mut Report) {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // serve makes it (0700): its nearest existing parent must be writable.
            let mut parent = dir.parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
                parent = p.parent();
            }
            let parent = parent.filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            match probe_write(parent) {
                Ok(()) => r.ok(what, format!("{} will be made (0700)", dir.display())),
                Err(e) => r.fail(
                    what,
                    format!(
                        "{} does not exist and cannot be made in {}: {e}; create it owned by this user, mode 0700",
                        dir.display(),
                        parent.display()
                    ),
                ),
            }
            return;
        }
        Err(e) => return r.fail(what, format!("{}: {e}", dir.display())),
    };
    if !meta.is_dir() {
        return r.fail(what, format!("{} is not a directory", dir.display()));
    }
    if let Err(e) = probe_write(dir) {
        return r.fail(
            what,
            format!("{} is not writable by this user: {e}; chown it to the user port25 runs as", dir.display()),
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if private && mode & 0o077 != 0 {
        return r.fail(
            what,
            format!(
                "{} is mode {mode:04o}: it holds mail, password hashes and keys; chmod 0700 {}",
                dir.display(),
                dir.display()
            ),
        );
    }
    r.ok(what, format!("{} writable, mode {mode:04o}", dir.display()));
}

fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".port25-check-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Binds the address for a moment. A port already in use is fine when a
/// socket listens on it (systemd's socket unit, or this server when the
/// check runs for a reload); so is a privileged port held that way.
fn port(name: &str, addr: SocketAddr, r: &mut Report) {
    let what = format!("listener {name}");
    let err = match std::net::TcpListener::bind(addr) {
        Ok(_) => return r.ok(&what, format!("{addr} can be bound")),
        Err(e) => e,
    };
    if listening_on(addr) {
        return r.ok(&what, format!("{addr} is held by a listening socket: port25's socket unit or the running port25 (if neither, another server: stop it)"));
    }
    match err.raw_os_error() {
        Some(libc::EACCES) => r.fail(
            &what,
            format!("{addr}: port {} is below 1024 and nothing listens on it: enable the socket unit (systemctl enable --now port25-{name}.socket) or grant CAP_NET_BIND_SERVICE (docs/DEPLOY.md)", addr.port()),
        ),
        Some(libc::EADDRNOTAVAIL) => r.fail(&what, format!("{addr}: {} is not an address of this machine; use one it has, or 0.0.0.0 / [::]", addr.ip())),
        _ => r.fail(&what, format!("cannot bind {addr}: {err}")),
    }
}

/// Whether a TCP socket of this machine listens on the address's port (on
/// any address: a wildcard socket holds them all), from /proc/self/net/tcp
/// and tcp6 (under the unit's ProcSubset=pid, /proc/net itself is hidden).
fn listening_on(addr: SocketAddr) -> bool {
    let port = format!("{:04X}", addr.port());
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"].iter().any(|f| {
        let Ok(text) = std::fs::read_to_string(f) else { return false };
        // "  sl  local_address rem_address   st ...": 0A is LISTEN.
        text.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            matches!((cols.get(1).and_then(|l| l.rsplit_once(':')), cols.get(3)), (Some((_, p)), Some(&"0A")) if p == port)
        })
    })
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::UnixTime;
    use std::time::Duration;

    fn config() -> port25_config::Config {
        port25_config::parse(
            "hostname = \"mx.example.net\"\n[http]\nsubmission_host = \"smtp.example.net\"\n",
            "t".as_ref(),
            "".as_ref(),
        )
        .unwrap()
    }

    fn cert(dir: &std::path::Path, names: &[&str], days: (i64, i64)) -> std::path::PathBuf {
        let mut p = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let now = rcgen::date_time_ymd(2026, 12, 2);
        let shift = |d: i64| match d >= 0 {
            true => now + Duration::from_secs(d as u64 * 86_400),
            false => now - Duration::from_secs(d.unsigned_abs() * 86_400),
        };
        (p.not_before, p.not_after) = (shift(days.0), shift(days.1));
        let key = rcgen::KeyPair::generate().unwrap();
        let path = dir.join(format!("{}-{}.pem", names[0], days.1));
        std::fs::write(&path, p.self_signed(&key).unwrap().pem()).unwrap();
        path
    }

    #[test]
    fn dates_order_and_names_of_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let now = UnixTime::since_unix_epoch(Duration::from_secs(1_796_169_600 + 3600)); // 2026-12-02 01:00 UTC
        let c = config();
        let ok = super::certificate(&cert(dir.path(), &["mx.example.net"], (-10, 80)), &c, now).unwrap();
        assert_eq!(ok, "valid now for mx.example.net");
        let soon = super::certificate(&cert(dir.path(), &["smtp.example.net"], (-80, 10)), &c, now).unwrap();
        assert!(soon.contains("smtp.example.net") && soon.contains("within 14 days"), "{soon}");
        let e = super::certificate(&cert(dir.path(), &["mx.example.net"], (-90, -1)), &c, now).unwrap_err();
        assert!(e.starts_with("expired"), "{e}");
        let e = super::certificate(&cert(dir.path(), &["mx.example.net"], (1, 90)), &c, now).unwrap_err();
        assert!(e.starts_with("not valid yet"), "{e}");
        let e = super::certificate(&cert(dir.path(), &["www.example.org"], (-1, 90)), &c, now).unwrap_err();
        assert!(e.contains("names neither hostname mx.example.net nor [http] submission_host smtp.example.net"), "{e}");
        // Two unrelated certificates: the first is not issued by the second.
        let a = std::fs::read_to_string(cert(dir.path(), &["mx.example.net"], (-2, 90))).unwrap();
        let b = std::fs::read_to_string(cert(dir.path(), &["other.example"], (-2, 91))).unwrap();
        std::fs::write(dir.path().join("chain.pem"), a + &b).unwrap();
        let e = super::certificate(&dir.path().join("chain.pem"), &c, now).unwrap_err();
        assert!(e.contains("the chain does not verify"), "{e}");
    }
}
