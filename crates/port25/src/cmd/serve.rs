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
use port25_spool::Spool;
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
    /// Check everything serving needs (configuration, certificates and
    /// keys, directories, ports), print one line per check and exit:
    /// 0 when all pass, 1 otherwise. For ExecStartPre= and ExecReload=
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => match port25_config::load(path) {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => port25_config::embedded_default(),
    };
    if args.check {
        return super::serve_check::run(&config);
    }
    // Before any thread: it takes the sockets and clears LISTEN_*.
    let inherited = super::systemd::take_inherited(&config.listeners)?;
    let format = match args.log_format.as_deref() {
        Some(f) => f.parse::<ev::LogFormat>().map_err(anyhow::Error::msg)?,
        None => super::wiring::log_format(config.log_format),
    };
    // The metrics layer sees every catalogued event (crates/http/src/metrics.rs).
    let metrics = Arc::new(port25_http::Metrics::default());
    // The abuse desk's trace index is fed by the same events (crates/abuse/src/feed.rs).
    let feed = port25_abuse::feed::FeedLayer::default();
    let layers: Vec<ev::ExtraLayer> = vec![port25_http::MetricsLayer::boxed(metrics.clone()), feed.clone().boxed()];
    ev::init_with(format, &config.log_level, Box::new(layers));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("port25").build()?;
    runtime.block_on(serve(config, metrics, inherited, args.config, feed))?;
    Ok(ExitCode::SUCCESS)
}

/// The certificate every TLS listener serves, through one store that a
/// reload replaces (cmd/reload.rs); None when no listener uses TLS.
pub(crate) fn cert_store(config: &Config) -> anyhow::Result<Option<Arc<port25_listen::tls::CertStore>>> {
    if config.listeners.iter().all(|l| l.tls == TlsMode::None) && config.acme.is_none() {
        return Ok(None);
    }
    let (cert, key) = match &config.tls_files {
        Some(pair) => pair.clone(),
        // [tls.acme]: the stored certificate when it is usable, else the
        // self-signed one until the CA's arrives (cmd/acme.rs).
        None if super::reload::acme_usable(config) => super::acme::paths(&config.data_dir),
        None => {
            let dir = config.data_dir.join("tls");
            let (cert, key, fresh) = port25_listen::tls::self_signed(&dir, &config.hostname)?;
            if fresh {
                emit!(info, ev::TLS_CERT_GENERATED, path = %cert.display(), hostname = %config.hostname);
            }
            (cert, key)
        }
    };
    Ok(Some(port25_listen::tls::CertStore::load(&cert, &key)?))
}

/// Submission listeners ask for device certificates when a device CA is set.
pub(crate) fn device_tls_config(
    config: &Config,
    certs: &Option<Arc<port25_listen::tls::CertStore>>,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(ca), Some(store)) = (&config.submission.device_ca, certs) else { return Ok(None) };
    Ok(Some(port25_engine::device_tls::server_config_with_device_ca_store(store, ca)?))
}

async fn serve(
    config: Config,
    metrics: Arc<port25_http::Metrics>,
    mut inherited: super::systemd::Inherited,
    path: Option<PathBuf>,
    feed: port25_abuse::feed::FeedLayer,
) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives while the listeners are being
    // set up must mean "stop gracefully", not the default "die at once".
    let stop = stop_signals();
    emit!(info, ev::SERVER_STARTING, version = env!("CARGO_PKG_VERSION"), hostname = %config.hostname, data_dir = %config.data_dir.display());
    // Mail, accounts and keys live under it: 0700 when made here, whatever the umask.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let acme = super::acme::Acme::new(&config)?;
    let certs = cert_store(&config)?;
    let tls = super::wiring::ListenerTls {
        server: certs.as_ref().map(|c| c.server_config()).transpose()?,
        device: device_tls_config(&config, &certs)?,
        // [tls.acme] with TLS-ALPN-01: the implicit-TLS listeners answer it.
        implicit: match (&certs, acme.as_ref().and_then(|a| a.alpn())) {
            (Some(c), Some(alpn)) => Some(c.server_config_with_acme_alpn(alpn)?),
            _ => None,
        },
    };
    let acme_store = certs.clone();
    let (_pid, hup) = super::reload::spawn(&config)?;
    // The accounts: logins for submission and the dashboard, and mailboxes
    // the MX asks about at RCPT.
    let accounts = Arc::new(super::users::open(&config)?);
    // A directory the provider runs ([submission.directory]): submission
    // logins, and the MX's recipients, are asked there.
    let directory = match &config.submission.directory {
        Some(d) => Some(port25_directory::open(d).map_err(|e| anyhow::anyhow!("[submission.directory]: {e}"))?),
        None => None,
    };
    // One password gate for SMTP AUTH and the dashboard: one guard, one
    // bound; made when either is served.
    let wants_submission = config.listeners.iter().any(|l| l.service == Service::Submission || l.legacy_submission);
    // State shared with the other nodes behind the same name, if any.
    let shared = super::shared::open(&config).await?;
    let gate = match wants_submission || config.http.address.is_some() {
        true => Some(Arc::new(match &shared {
            Some(s) => super::wiring::gate(&config, accounts.clone(), directory.clone()).with_shared(s.clone()),
            None => super::wiring::gate(&config, accounts.clone(), directory.clone()),
        })),
        false => None,
    };
    // The abuse desk (docs/abuse.md): the trace index and the signals.
    let desk = super::abuse::open(&config)?;
    if let Some(d) = &desk {
        feed.set_index(d.index().clone());
    }
    let abuse_metrics = desk.clone().map(|d| Arc::new(super::abuse::View(d)) as Arc<dyn port25_http::state::AbuseView>);
    let http =
        super::serve_http::start(&config, metrics, gate.clone(), abuse_metrics, acme.as_ref().and_then(|a| a.http01()))
            .await?;

    let (ready_tx, ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (spool, recovered) = Spool::open(&config.data_dir.join("spool"), ready_tx, http.gauges.local.clone())?;
    let target = super::wiring::delivery_target(&config)?;

    // The MX accepts only recipients that exist (accounts, lists, the LMTP
    // server's answer); DSNs to local senders ask it the same question.
    let mx = super::recipients::mx_policy(&config, spool.clone(), accounts.clone(), &target, directory.clone())?;
    let mailboxes: Arc<dyn LocalMailboxes> = Arc::new(super::recipients::MxMailboxes(mx.clone()));

    let outbound = super::outbound::start(
        &config,
        spool.clone(),
        mailboxes.clone(),
        http.gauges.outbound.clone(),
        super::abuse::holds(&desk),
    )?;
    http.ready.spool_open();

    let shutdown = CancellationToken::new();
    let delivery_stop = CancellationToken::new();
    let bounce = super::outbound::local_bounce(&config, spool.clone(), outbound.enqueuer.clone(), mailboxes.clone());
    let retry = super::wiring::delivery_retry(&config);
    let delivery = tokio::spawn(port25_delivery::run(
        spool.clone(),
        recovered,
        ready_rx,
        Arc::new(target),
        bounce,
        retry,
        delivery_stop.clone(),
    ));

    let submission = match (&gate, wants_submission) {
        (Some(gate), true) => {
            Some(super::wiring::submission(&config, gate.clone(), mx.clone(), outbound.enqueuer.clone()))
        }
        _ => None,
    };
    if let (Some(sub), Some(s)) = (&submission, &shared) {
        sub.set_shared(s.clone());
    }
    // Screening before the banner, shared by the port-25 listeners
    // (docs/screen.md); built before any listener binds, so a bad
    // end-user policy stops start-up.
    let screener = match config.mx.screen.enabled {
        true => Some(Arc::new(
            port25_screen::Screener::new(&config.mx.screen, &config.hostname, &config.data_dir)
                .map_err(anyhow::Error::msg)?,
        )),
        false => None,
    };
    let desk_stop = CancellationToken::new();
    if let Some(d) = &desk {
        if let Some(s) = &submission {
            s.set_watch(Arc::new(super::abuse::Watch(d.clone())));
        }
        super::abuse::start(
            d.clone(),
            &config,
            spool.clone(),
            outbound.enqueuer.clone(),
            mailboxes.clone(),
            desk_stop.clone(),
        );
    }
    // The runtime the listeners serve with; a reload builds the next one
    // (cmd/runtime.rs) and moves the listeners to it (cmd/generation.rs).
    let fixed = super::runtime::Fixed {
        spool: spool.clone(),
        outbound: outbound.enqueuer.spool().clone(),
        shared: shared.clone(),
        desk: desk.clone(),
        data_budget: port25_engine::DataBudget::new(config.max_data_memory),
    };
    let runtime = Arc::new(super::runtime::Runtime {
        config: config.clone(),
        accounts,
        directory,
        gate,
        mx,
        submission,
        screener,
        tls,
        enqueuer: outbound.enqueuer.clone(),
        data_budget: fixed.data_budget.clone(),
    });
    let listeners = super::generation::Listeners::start(&runtime, &mut inherited, shutdown.clone()).await?;
    let count = listeners.len();
    let listeners = Arc::new(tokio::sync::Mutex::new(listeners));
    super::reload::handle(hup, super::reload::Live { path, runtime, fixed, certs, listeners: listeners.clone() });

    http.ready.listeners_bound();
    super::systemd::ready(count);
    // [tls.acme]: orders once the CA can reach the challenge listeners.
    let acme_stop = CancellationToken::new();
    let acme_task = match (acme, acme_store) {
        (Some(a), Some(store)) => Some(tokio::spawn(a.run(config.data_dir.clone(), store, acme_stop.clone()))),
        _ => None,
    };

    stop.await;
    super::systemd::stopping();
    http.ready.stopping();
    shutdown.cancel();
    acme_stop.cancel();
    if let Some(t) = acme_task {
        let _ = t.await;
    }
    listeners.lock().await.wait().await;
    delivery_stop.cancel();
    outbound.stop.cancel();
    desk_stop.cancel();
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
