//! `smtp-load`: the submission benchmarks' load generator (bench/).
//!
//! Python's smtplib spent more CPU than the servers it measured on this
//! two-core machine, so its figures said more about the client than about
//! Postfix or port25. This generator does the same sessions with rustls and
//! tokio on one thread (by default), so nearly all the CPU is left to the
//! server. bench/loadgen-check.sh checks it against Postfix's smtp-source
//! on the plain MX path.
//!
//! It prints one JSON line (sessions, messages, failures, seconds, rates)
//! and exits 1 if any session failed: a benchmark must not count a refused
//! message.

mod session;
mod smtp;

use anyhow::{bail, Context, Result};
use clap::Parser;
use session::{Plan, Tls};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "smtp-load",
    about = "SMTP sessions back to back from CONCURRENCY clients: TLS, AUTH PLAIN, MESSAGES messages, QUIT"
)]
struct Args {
    /// Server address
    #[arg(long, default_value = "127.0.0.1:4650")]
    server: SocketAddr,
    /// TLS: none (plain, the MX path), starttls (587) or implicit (465)
    #[arg(long, value_enum, default_value = "implicit")]
    tls: Tls,
    /// Log in with AUTH PLAIN as this user (the envelope sender defaults to it)
    #[arg(long)]
    login: Option<String>,
    /// The password for --login
    #[arg(long, default_value = "")]
    password: String,
    /// Envelope sender (default: the login, or bench@bench.example)
    #[arg(long)]
    from: Option<String>,
    /// Recipient (repeat for several; default: the sender)
    #[arg(long)]
    to: Vec<String>,
    /// Messages per session (0: connect, EHLO, AUTH, QUIT)
    #[arg(long, default_value_t = 1)]
    messages: usize,
    /// Message size in bytes, headers included
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Sessions in parallel
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Run sessions until this many seconds have passed (sessions under way finish)
    #[arg(long, default_value_t = 10.0, conflicts_with = "sessions")]
    seconds: f64,
    /// Run exactly this many sessions instead of --seconds
    #[arg(long)]
    sessions: Option<u64>,
    /// Client threads (1 keeps the client on one core)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Resume TLS sessions (off: every session pays a full handshake, as smtplib)
    #[arg(long)]
    resume: bool,
    /// Local address(es) to connect from: one address or an IPv4 range
    /// A-B (e.g. 127.0.3.1-127.0.3.100); repeat for more. Sessions take
    /// them in turn, so one run looks like many clients to a screening MX.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// The EHLO name
    #[arg(long, default_value = "bench.example")]
    helo: String,
    /// Send this file as the message (headers and body; e.g. DKIM-signed
    /// once beforehand) instead of a generated one: line ends become CRLF,
    /// lines starting with a dot are stuffed, a Message-ID field is still
    /// prepended per message (sign without one)
    #[arg(long, conflicts_with = "size")]
    message: Option<std::path::PathBuf>,
    /// Expect the server to refuse every session before its banner ends (a
    /// listed client meeting a screening MX): a 4xx/5xx reply then the
    /// close counts as refused; a complete 220 banner counts as let in (the
    /// session then QUITs); anything else is a failure
    #[arg(long)]
    refused: bool,
}

/// User + system CPU time of this process: the client's share of the
/// machine, printed so a run shows how much the generator itself used.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.threads == 0 {
        bail!("--concurrency and --threads must be at least 1");
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(load(args))
}

async fn load(args: Args) -> Result<()> {
    let mut tls = (*port25_outbound::tls_policy::client_config()).clone();
    if !args.resume {
        tls.resumption = rustls::client::Resumption::disabled();
    }
    let from = args.from.clone().or_else(|| args.login.clone()).unwrap_or_else(|| "bench@bench.example".into());
    let to = if args.to.is_empty() { vec![from.clone()] } else { args.to.clone() };
    let plan = Arc::new(Plan {
        server: args.server,
        tls: args.tls,
        connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        auth: args.login.as_deref().map(|l| session::plain_initial_response(l, &args.password)),
        body: match &args.message {
            Some(path) => {
                session::from_file(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => session::body(&from, &to[0], args.size),
        },
        sources: session::sources(&args.sources)?,
        next_source: AtomicU64::new(0),
        ehlo: format!("EHLO {}\r\n", args.helo).into_bytes(),
        refused: AtomicU64::new(0),
        let_in: AtomicU64::new(0),
        from,
        to,
        messages: args.messages,
        sent: AtomicU64::new(0),
        message_ids: AtomicU64::new(0),
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (plan, claimed, limit, refused) = (plan.clone(), claimed.clone(), args.sessions, args.refused);
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
            loop {
                let more = match limit {
                    Some(n) => claimed.fetch_add(1, Ordering::Relaxed) < n,
                    None => Instant::now() < deadline,
                };
                if !more {
                    break;
                }
                let result = if refused { session::expect_refusal(&plan).await } else { session::run(&plan).await };
                match result {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, failed, first_error)
        }));
    }
    let (mut sessions, mut failures, mut errors) = (0, 0, Vec::new());
    for w in workers {
        let (ok, failed, error) = w.await.context("a client task panicked")?;
        sessions += ok;
        failures += failed;
        errors.extend(error);
    }
    let seconds = start.elapsed().as_secs_f64();
    let messages = plan.sent.load(Ordering::Relaxed);
    let (refused, let_in) = (plan.refused.load(Ordering::Relaxed), plan.let_in.load(Ordering::Relaxed));
    for e in errors.iter().take(3) {
        eprintln!("smtp-load: session failed: {e:#}");
    }
    println!(
        "{{\"sessions\": {sessions}, \"messages\": {messages}, \"refused\": {refused}, \"let_in\": {let_in}, \"failures\": {failures}, \"seconds\": {seconds:.2}, \"sessions_per_s\": {:.1}, \"messages_per_s\": {:.1}, \"client_cpu_s\": {:.2}}}",
        sessions as f64 / seconds,
        messages as f64 / seconds,
        own_cpu_seconds()
    );
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
