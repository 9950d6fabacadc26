//! `port25 spampot`: the SpamPots sensor (open-proxy and open-relay bait).

use anyhow::Context;
use port25_capture::{Store, StoreConfig};
use port25_events as ev;
use port25_events::emit;
use port25_spampot::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `port25 spampot --help` (set on the subcommand in main.rs, where the
/// one-line doc comment would otherwise replace it).
pub const LONG_ABOUT: &str = "Poses as an open proxy (HTTP CONNECT and absolute-URI requests, SOCKS4, SOCKS4a, SOCKS5 \
                  with or without username/password, all on every proxy port) and as an open relay. \
                  Tunnels to ports 25 and 587 reach a fake mail server that answers 250 and stores every \
                  message in the capture store (docs/capture-format.md); tunnels to other ports are \
                  refused; nothing is ever forwarded.\n\n\
                  Without --config: sensor \"spampot\", data in ./spampot-data, bait on 0.0.0.0 ports \
                  11080 13128 18080 18000 16588 10080 (proxy) and 12525 (SMTP), standing for 1080 3128 \
                  8080 8000 6588 80 and 25: redirect the real ports to them (docs/spampot.md).";

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Sensor configuration (TOML, every key optional; see docs/spampot.md)
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Log format: text or json (overrides the file)
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Run the collector: receive capture logs and bodies from sensors over HTTPS
    #[command(long_about = "Receives what sensors ship (their [ship] section names this collector's \
        https://host:port, a token and the certificate to trust) and stores it per sensor in the \
        capture format: <data_dir>/sensors/<sensor>/events/ and one shared <data_dir>/bodies/. \
        Appends are by byte offset and fsynced before they are acknowledged: nothing lost, nothing twice.\n\n\
        Configuration (TOML):\n  listen = \"0.0.0.0:8443\"\n  data_dir = \"/var/lib/port25-collector\"\n  \
        # cert = \"...\"  key = \"...\"   (else a self-signed pair in data_dir/tls/)\n  \
        [[sensor]]\n  name = \"br-sp-01\"\n  token = \"a long random secret\"")]
    Collect {
        /// Collector configuration (TOML)
        #[arg(long, short)]
        config: PathBuf,
        /// Log format: text or json (overrides the file)
        #[arg(long)]
        log_format: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Sub::Collect { config, log_format }) = args.command {
        return collect(&config, log_format);
    }
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Config::default(),
    };
    // Before any thread: it takes the sockets systemd passed and clears LISTEN_*.
    let wanted: Vec<(&str, std::net::SocketAddr)> =
        config.listeners.iter().map(|l| (l.name.as_str(), l.address)).collect();
    let inherited = super::systemd::take_inherited_for(&wanted)?;
    let format = args
        .log_format
        .as_deref()
        .unwrap_or(&config.log_format)
        .parse::<ev::LogFormat>()
        .map_err(anyhow::Error::msg)?;
    ev::init(format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("spampot").build()?;
    runtime.block_on(sensor(config, inherited))?;
    Ok(ExitCode::SUCCESS)
}

async fn sensor(config: Config, mut inherited: super::systemd::Inherited) -> anyhow::Result<()> {
    // Handlers before binding: a SIGTERM during start-up stops, not kills.
    let stop = super::serve::stop_signals();
    emit!(info, ev::SERVER_STARTING, version = env!("CARGO_PKG_VERSION"), sensor = %config.sensor, data_dir = %config.data_dir.display());
    let root = config.data_dir.join("capture");
    let store = Store::open(&StoreConfig {
        root: root.clone(),
        sensor: config.sensor.clone(),
        max_segment_bytes: config.store.max_segment_bytes,
        quota_bytes: (config.store.quota_bytes > 0).then_some(config.store.quota_bytes),
    })
    .with_context(|| format!("cannot open the capture store in {}", root.display()))?
    .with_site(config.site.capture());
    let mut bound = Vec::new();
    let listeners = config.listeners.len();
    for l in &config.listeners {
        // The socket systemd passed (port25-spampot.socket), else bound here.
        let listener = inherited.listener(&l.name, l.address).await?;
        emit!(info, ev::SERVER_LISTENING, listener = %l.name, address = %listener.local_addr()?, service = ?l.kind, proxy_protocol = l.proxy_protocol);
        bound.push((l.clone(), listener));
    }
    let shipper = match &config.ship {
        Some(table) => {
            let ship: port25_collect::shipper::ShipConfig =
                table.clone().try_into().map_err(|e| anyhow::anyhow!("[ship]: {e}"))?;
            Some(port25_collect::shipper::Shipper::new(ship, &root).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let hpfeeds = match &config.hpfeeds {
        Some(table) => {
            let feed: port25_collect::hpfeeds::HpfeedsConfig =
                table.clone().try_into().map_err(|e| anyhow::anyhow!("[hpfeeds]: {e}"))?;
            Some((feed, store.subscribe(10_000).expect("first subscriber")))
        }
        None => None,
    };
    let shared = port25_spampot::Shared::new(config, store);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(port25_spampot::run(shared, bound, shutdown.clone()));
    let shipping = shipper.map(|s| tokio::spawn(s.run(shutdown.clone())));
    let feeding = hpfeeds.map(|(feed, rx)| tokio::spawn(port25_collect::hpfeeds::run(feed, rx, shutdown.clone())));
    super::systemd::ready_with(&format!("capturing on {listeners} listeners"));
    stop.await;
    super::systemd::stopping_with("closing sessions and the capture store");
    shutdown.cancel();
    let _ = server.await;
    for task in shipping.into_iter().chain(feeding) {
        let _ = task.await;
    }
    emit!(info, ev::SERVER_STOPPED);
    Ok(())
}

fn collect(path: &std::path::Path, log_format: Option<String>) -> anyhow::Result<ExitCode> {
    let config = match port25_collect::collector::CollectConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            errln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Before any thread: the socket systemd passed (port25-collector.socket), if any.
    let mut inherited = super::systemd::take_inherited_for(&[("collect", config.listen)])?;
    let format =
        log_format.as_deref().unwrap_or(&config.log_format).parse::<ev::LogFormat>().map_err(anyhow::Error::msg)?;
    ev::init(format, "info");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("collect").build()?;
    runtime.block_on(async {
        let stop = super::serve::stop_signals();
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        let listener = inherited.listener("collect", config.listen).await?;
        emit!(info, ev::SERVER_LISTENING, listener = "collect", address = %listener.local_addr()?, service = "collect");
        let shutdown = CancellationToken::new();
        let mut server = tokio::spawn(port25_collect::collector::run(config, listener, shutdown.clone()));
        super::systemd::ready_with("receiving captures");
        tokio::select! {
            r = &mut server => r?.map_err(anyhow::Error::msg)?,
            _ = stop => {
                super::systemd::stopping_with("finishing uploads in progress");
                shutdown.cancel();
                (&mut server).await?.map_err(anyhow::Error::msg)?;
            }
        }
        emit!(info, ev::SERVER_STOPPED);
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
