//! Reloading `port25 serve` without a restart: SIGHUP (sent by `port25
//! reload`, systemd's ExecReload= or a certbot deploy hook) reads the
//! configuration file again and, if it parses, the certificate and key it
//! names; new TLS handshakes get the new pair while sessions in progress
//! finish on the one they started with. Whatever fails (a configuration
//! that does not parse, a certificate or key missing, unreadable or not a
//! pair) is logged (`port25.server.reload_failed`, naming the file) and
//! changes nothing: the server goes on serving. Other settings are not
//! applied live yet; a reload that sees them changed says which need a
//! restart (`restart_needed` in `port25.server.reloaded`).
//!
//! `serve` writes its pid to `data_dir/port25.pid` for `port25 reload`.

use port25_config::Config;
use port25_events as ev;
use port25_events::emit;
use port25_listen::tls::CertStore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The certificate and key serve uses: `[tls]`'s files, else the kept
/// self-signed pair in data_dir/tls.
/// With `[tls.acme]`: the CA's pair in data_dir/acme once it is usable.
pub fn cert_paths(config: &Config) -> (PathBuf, PathBuf) {
    match &config.tls_files {
        Some(pair) => pair.clone(),
        None if acme_usable(config) => super::acme::paths(&config.data_dir),
        None => (config.data_dir.join("tls/selfsigned.crt"), config.data_dir.join("tls/selfsigned.key")),
    }
}

/// `[tls.acme]` is set and its stored certificate is one we may serve
/// (its key, every domain, within its dates).
pub fn acme_usable(config: &Config) -> bool {
    config.acme.as_ref().is_some_and(|a| super::acme::usable(&config.data_dir, &a.domains).is_ok())
}

fn pid_file(config: &Config) -> PathBuf {
    config.data_dir.join("port25.pid")
}

/// Removes the pid file when serve ends.
pub struct Running(PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the pid file and handles SIGHUP from now on.
pub fn spawn(path: Option<PathBuf>, running: Config, certs: Option<Arc<CertStore>>) -> anyhow::Result<Running> {
    use tokio::signal::unix::{signal, SignalKind};
    let pid = pid_file(&running);
    // 0600 like everything in data_dir, whatever the umask.
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&pid)?;
        writeln!(f, "{}", std::process::id())
    };
    write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", pid.display()))?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            super::systemd::reloading();
            let status = reload(path.as_deref(), &running, certs.as_deref());
            super::systemd::reloaded(status);
        }
    });
    Ok(Running(pid))
}

/// One reload; what systemd's STATUS= says afterwards.
fn reload(path: Option<&Path>, running: &Config, certs: Option<&CertStore>) -> &'static str {
    let fresh = match path {
        Some(p) => match port25_config::load(p) {
            Ok(c) => c,
            Err(e) => {
                emit!(error, ev::SERVER_RELOAD_FAILED, error = %e);
                return "reload refused (configuration); serving with the previous one";
            }
        },
        None => running.clone(),
    };
    let (cert, key) = cert_paths(&fresh);
    if let Some(store) = certs {
        if let Err(e) = store.reload(&cert, &key) {
            emit!(error, ev::SERVER_RELOAD_FAILED, error = %e);
            return "reload refused (certificate); serving with the previous one";
        }
    }
    let pending = restart_needed(running, &fresh);
    match pending.is_empty() {
        true => emit!(info, ev::SERVER_RELOADED, certificate = %cert.display()),
        false => emit!(warn, ev::SERVER_RELOADED, certificate = %cert.display(), restart_needed = %pending.join(", ")),
    }
    "accepting mail"
}

/// The parts of the configuration that changed but are applied only at
/// start (everything but the certificate files, for now).
fn restart_needed(running: &Config, fresh: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            out.push(name);
        }
    };
    check(running.hostname != fresh.hostname, "hostname");
    check(running.data_dir != fresh.data_dir, "data_dir");
    check(running.max_data_memory != fresh.max_data_memory, "max_data_memory");
    check(running.log_format != fresh.log_format || running.log_level != fresh.log_level, "[log]");
    check(running.mx != fresh.mx, "[mx]");
    check(running.delivery != fresh.delivery, "[delivery]");
    check(running.submission != fresh.submission, "[submission]");
    check(running.outbound != fresh.outbound, "[outbound]");
    check(running.http != fresh.http, "[http]");
    check(running.listeners != fresh.listeners, "[[listener]]");
    out
}

/// `port25 reload`: SIGHUP to the serve whose pid file is in data_dir.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration the server runs with (it names data_dir); default: built-in defaults
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => match port25_config::load(path) {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}\nport25 reload: not sent; the server would refuse this file too");
                return Ok(ExitCode::from(2));
            }
        },
        None => port25_config::embedded_default(),
    };
    let file = pid_file(&config);
    let pid: i32 = match std::fs::read_to_string(&file).ok().and_then(|t| t.trim().parse().ok()) {
        Some(p) if p > 1 => p,
        _ => {
            errln!(
                "port25 reload: no running server: {} is missing or unreadable (is port25 serve running with data_dir {}?)",
                file.display(),
                config.data_dir.display()
            );
            return Ok(ExitCode::from(1));
        }
    };
    // A pid file left by a server that died may name another process now.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_serve = words.first().is_some_and(|w| w.ends_with(b"port25")) && words.iter().any(|w| *w == b"serve");
    if !is_serve {
        errln!(
            "port25 reload: {} names pid {pid}, which is not a running port25 serve (a stale file: remove it)",
            file.display()
        );
        return Ok(ExitCode::from(1));
    }
    // SAFETY: kill(2) with a checked pid and a valid signal.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        errln!("port25 reload: cannot signal pid {pid}: {}", std::io::Error::last_os_error());
        return Ok(ExitCode::from(1));
    }
    outln!(
        "sent SIGHUP to port25 serve (pid {pid}); its log says port25.server.reloaded or port25.server.reload_failed"
    );
    Ok(ExitCode::SUCCESS)
}
