//! Reloading `port25 serve` without a restart: SIGHUP (sent by `port25
//! reload`, systemd's ExecReload= or a certbot deploy hook) reads the
//! configuration file again and checks it as `serve --check` does (but
//! the ports: changed listeners are bound by the reload itself). If it
//! passes, the runtime for it is built beside the running one
//! (cmd/runtime.rs: domains, recipients, accounts and directory, limits,
//! screening, sender authentication, DKIM keys, TLS), the certificate and
//! key are read again, and every listener's next generation accepts with
//! the new runtime (cmd/generation.rs) while sessions in progress finish
//! on the one they started with. Whatever fails (a file that does not
//! parse or fails a check, a part that cannot be built, a certificate or
//! key missing, unreadable or not a pair) is logged
//! (`port25.server.reload_failed`, naming the file or the section) and
//! changes nothing: the server goes on serving. Settings that only a
//! restart applies are named in `restart_needed` (docs/DEPLOY.md).
//!
//! `serve` writes its pid to `data_dir/port25.pid` for `port25 reload`.

use super::generation::Listeners;
use super::runtime::{Fixed, Runtime};
use port25_config::{Config, TlsMode};
use port25_events as ev;
use port25_events::emit;
use port25_listen::tls::CertStore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::Signal;

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

/// Writes the pid file and takes SIGHUP from now on (a HUP that arrives
/// before [`handle`] starts is kept for it, not fatal).
pub fn spawn(running: &Config) -> anyhow::Result<(Running, Signal)> {
    use tokio::signal::unix::{signal, SignalKind};
    let pid = pid_file(running);
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
    let hup = signal(SignalKind::hangup())?;
    Ok((Running(pid), hup))
}

/// What a reload changes: the running runtime and the listeners.
pub struct Live {
    /// The configuration file (None: built-in defaults, which do not change).
    pub path: Option<PathBuf>,
    pub runtime: Arc<Runtime>,
    pub fixed: Fixed,
    pub certs: Option<Arc<CertStore>>,
    pub listeners: Arc<tokio::sync::Mutex<Listeners>>,
}

/// Reloads on each SIGHUP, one at a time.
pub fn handle(mut hup: Signal, mut live: Live) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            super::systemd::reloading();
            let status = live.reload().await;
            super::systemd::reloaded(status);
        }
    });
}

fn refuse(error: String, status: &'static str) -> &'static str {
    emit!(error, ev::SERVER_RELOAD_FAILED, error = %error);
    status
}

impl Live {
    /// One reload; what systemd's STATUS= says afterwards.
    async fn reload(&mut self) -> &'static str {
        const KEPT: &str = "reload refused; serving with the previous configuration";
        let running = &self.runtime.config;
        let fresh = match self.path.as_deref().map(port25_config::load) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return refuse(e.to_string(), KEPT),
            None => running.clone(),
        };
        let problems = super::serve_check::problems(&fresh);
        if !problems.is_empty() {
            return refuse(format!("{}: {}", file(self.path.as_deref()), problems.join("; ")), KEPT);
        }
        let config = super::runtime::effective(running, &fresh);
        let pending = super::runtime::restart_needed(running, &fresh);
        let changed = changed(running, &config);
        // The first listener with TLS since the start: a store for it.
        let certs = match (&self.certs, config.listeners.iter().any(|l| l.tls != TlsMode::None)) {
            (None, true) => match super::serve::cert_store(&config) {
                Ok(c) => c,
                Err(e) => return refuse(format!("{e:#}"), KEPT),
            },
            (c, _) => c.clone(),
        };
        let next = match self.runtime.next(config, &self.fixed, certs.as_ref()) {
            Ok(r) => Arc::new(r),
            Err(e) => return refuse(format!("{}: {e:#}", file(self.path.as_deref())), KEPT),
        };
        let (cert, key) = cert_paths(&next.config);
        if let Some(store) = &certs {
            if let Err(e) = store.reload(&cert, &key) {
                return refuse(e.to_string(), "reload refused (certificate); serving with the previous one");
            }
        }
        self.certs = certs;
        let notes = self.listeners.lock().await.apply(&next).await;
        self.runtime = next;
        let (changed, listeners) = (changed.join(", "), notes.join("; "));
        match pending.is_empty() {
            true => {
                emit!(info, ev::SERVER_RELOADED, certificate = %cert.display(), changed = %changed, listeners = %listeners)
            }
            false => {
                emit!(warn, ev::SERVER_RELOADED, certificate = %cert.display(), changed = %changed, listeners = %listeners,
                restart_needed = %pending.join(", "))
            }
        }
        "accepting mail"
    }
}

fn file(path: Option<&Path>) -> String {
    path.map_or_else(|| "built-in configuration".to_owned(), |p| p.display().to_string())
}

/// The sections a reload applied live because they changed.
fn changed(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            out.push(name);
        }
    };
    check(running.mx != next.mx, "[mx]");
    check(running.submission != next.submission, "[submission]");
    check(running.outbound.dkim != next.outbound.dkim, "[[outbound.dkim]]");
    check(running.tls_files != next.tls_files, "[tls]");
    check(running.listeners != next.listeners, "[[listener]]");
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
