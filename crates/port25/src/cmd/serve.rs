//! `port25 serve`: the MX and submission listeners, the spool and local
//! delivery.
//!
//! Start-up order matters: the spool is opened (and recovered) before any
//! listener accepts, so a message accepted now never races with recovery;
//! on shutdown the listeners drain first, then delivery stops.

use anyhow::Context;
use port25_config::{Config, Service, TlsMode};
use port25_events as ev;
use port25_events::emit;
use port25_outbound::bounce::LocalMailboxes;
use port25_queue::Spool;
use port25_submission::SubmissionPolicy;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML). Without it, built-in defaults: an MX on
    /// 127.0.0.1:2525, submission on 127.0.0.1:5870 (STARTTLS) and
    /// 127.0.0.1:4650 (implicit TLS), a self-signed certificate, data and
    /// accounts (`port25 users`) in ./port25-data; HTTP autoconfig on
    /// 127.0.0.1:8025, /metrics, /dashboard, /healthz, /readyz on
    /// 127.0.0.1:8026
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Log format, overriding the file: text or json
    #[arg(long)]
    log_format: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => match port25_config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => port25_config::embedded_default(),
    };
    let format = match args.log_format.as_deref() {
        Some(f) => f.parse::<ev::LogFormat>().map_err(anyhow::Error::msg)?,
        None => super::wiring::log_format(config.log_format),
    };
    // The metrics layer sees every catalogued event (crates/http/src/metrics.rs).
    let metrics = Arc::new(port25_http::Metrics::default());
    ev::init_with(format, &config.log_level, port25_http::MetricsLayer::boxed(metrics.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("port25").build()?;
    runtime.block_on(serve(config, metrics))?;
    Ok(ExitCode::SUCCESS)
}

fn tls_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if config.listeners.iter().all(|l| l.tls == TlsMode::None) {
        return Ok(None);
    }
    let (cert, key) = match &config.tls_files {
        Some(pair) => pair.clone(),
        None => {
            let dir = config.data_dir.join("tls");
            let (cert, key, fresh) = port25_listen::tls::self_signed(&dir, &config.hostname)?;
            if fresh {
                emit!(info, ev::TLS_CERT_GENERATED, path = %cert.display(), hostname = %config.hostname);
            }
            (cert, key)
        }
    };
    Ok(Some(port25_listen::tls::server_config(&cert, &key)?))
}

/// Submission listeners ask for device certificates when a device CA is set.
fn device_tls_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let Some(ca) = &config.submission.device_ca else { return Ok(None) };
    let (cert, key) = match &config.tls_files {
        Some(pair) => pair.clone(),
        None => {
            let dir = config.data_dir.join("tls");
            let (cert, key, _) = port25_listen::tls::self_signed(&dir, &config.hostname)?;
            (cert, key)
        }
    };
    Ok(Some(port25_engine::device_tls::server_config_with_device_ca(&cert, &key, ca)?))
}

async fn serve(config: Config, metrics: Arc<port25_http::Metrics>) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives while the listeners are being
    // set up must mean "stop gracefully", not the default "die at once".
    let stop = stop_signals();
    emit!(info, ev::SERVER_STARTING, version = env!("CARGO_PKG_VERSION"), hostname = %config.hostname, data_dir = %config.data_dir.display());
    // Mail, accounts and keys live under it: 0700 when made here, whatever the umask.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let tls = super::wiring::ListenerTls { server: tls_config(&config)?, device: device_tls_config(&config)? };
    // The accounts: logins for submission and the dashboard, and mailboxes
    // the MX asks about at RCPT.
    let accounts = Arc::new(super::users::open(&config)?);
    // One password gate for SMTP AUTH and the dashboard: one guard, one
    // bound; made when either is served.
    let wants_submission = config.listeners.iter().any(|l| l.service == Service::Submission || l.legacy_submission);
    let gate = match wants_submission || config.http.address.is_some() {
        true => Some(Arc::new(super::wiring::gate(&config, accounts.clone()))),
        false => None,
    };
    let http = super::serve_http::start(&config, metrics, gate.clone()).await?;

    let (ready_tx, ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (spool, recovered) = Spool::open(&config.data_dir.join("spool"), ready_tx, http.gauges.local.clone())?;
    let target = super::wiring::delivery_target(&config)?;

    // The MX accepts only recipients that exist (accounts, lists, the LMTP
    // server's answer); DSNs to local senders ask it the same question.
    let mx = super::recipients::mx_policy(&config, spool.clone(), accounts.clone(), &target);
    let mailboxes: Arc<dyn LocalMailboxes> = Arc::new(super::recipients::MxMailboxes(mx.clone()));

    let outbound = super::outbound::start(&config, spool.clone(), mailboxes.clone(), http.gauges.outbound.clone())?;
    http.ready.spool_open();

    let shutdown = CancellationToken::new();
    let delivery_stop = CancellationToken::new();
    let bounce = super::outbound::local_bounce(&config, spool.clone(), outbound.enqueuer.clone(), mailboxes);
    let retry = super::wiring::delivery_retry(&config);
    let delivery = tokio::spawn(port25_delivery::run(spool.clone(), recovered, ready_rx, Arc::new(target), bounce, retry, delivery_stop.clone()));

    let submission = match (&gate, wants_submission) {
        (Some(gate), true) => Some(super::wiring::submission(&config, gate.clone(), mx.clone(), outbound.enqueuer.clone())),
        _ => None,
    };
    let mut servers = Vec::new();
    // One budget for message data in memory, whichever listener it arrives on.
    let data_budget = port25_engine::DataBudget::new(config.max_data_memory);
    for l in &config.listeners {
        let listener = tokio::net::TcpListener::bind(l.address).await.with_context(|| {
            format!("listener {:?}: cannot bind {} (ports below 1024 need root or CAP_NET_BIND_SERVICE; is another server on it?)", l.name, l.address)
        })?;
        let bound = listener.local_addr()?;
        let settings = Arc::new(super::wiring::listener_settings(&config, l, &tls, &data_budget));
        emit!(info, ev::SERVER_LISTENING, listener = %l.name, address = %bound, service = ?l.service, tls = ?l.tls);
        let server = match (l.service, &submission) {
            (Service::Mx, Some(shared)) if l.legacy_submission => {
                let policy = Arc::new(port25_submission::legacy::LegacyMx::new(mx.clone(), shared.clone()));
                tokio::spawn(port25_engine::run(listener, settings, policy, shutdown.clone()))
            }
            (Service::Mx, _) => tokio::spawn(port25_engine::run(listener, settings, mx.clone(), shutdown.clone())),
            (Service::Submission, Some(shared)) => {
                let policy = Arc::new(SubmissionPolicy::new(shared.clone(), l.plaintext_auth));
                tokio::spawn(port25_engine::run(listener, settings, policy, shutdown.clone()))
            }
            (Service::Submission, None) => {
                unreachable!("opened above when any listener is a submission listener")
            }
        };
        servers.push(server);
    }

    http.ready.listeners_bound();

    stop.await;
    http.ready.stopping();
    shutdown.cancel();
    for s in servers {
        let _ = s.await;
    }
    delivery_stop.cancel();
    outbound.stop.cancel();
    let _ = delivery.await;
    let _ = outbound.task.await;
    http.stop.cancel();
    if let Some(task) = http.task {
        let _ = task.await;
    }
    emit!(info, ev::SERVER_STOPPED);
    Ok(())
}

/// Installs the SIGTERM/SIGINT handlers now; the future resolves on either.
pub(crate) fn stop_signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
