//! The port25 binary: one executable, one subcommand per part.

use clap::{Parser, Subcommand};

// First: its macros (outln!, errln!, ...) are then in scope in cmd.
#[macro_use]
mod out;
mod cmd;

#[derive(Parser)]
#[command(
    name = "port25",
    version,
    about = "Port 25 management: mail submission kept apart from transport, egress policy, SpamPots, reports",
    long_about = "port25 runs a provider's MX (port 25, transport only, never an open relay), \
                  authenticated submission (587/465) with its outbound queue, the access network's egress policy \
                  (port25 egress), SpamPots sensors (port25 spampot) and the reports that measure them (port25 report).\n\nStart here:  port25 serve        (built-in defaults: MX on 127.0.0.1:2525, \
                  submission on 127.0.0.1:5870 (STARTTLS) and 127.0.0.1:4650 (implicit TLS), \
                  self-signed TLS, data in ./port25-data)\n             port25 users add alice@example.net   (password read from standard input)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mail services (MX, submission, local delivery, HTTP on 127.0.0.1:8025 and :8026) until SIGINT or SIGTERM
    Serve(cmd::serve::Args),
    /// Tell the running server (its pid file in data_dir) to read its certificates and configuration again (SIGHUP)
    Reload(cmd::reload::Args),
    /// Check or print the configuration
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Submission accounts: add, passwd, addresses, limits, del, list, import, operator
    #[command(subcommand)]
    Users(cmd::users::Command),
    /// Migration off port 25: the share of active users on 587/465
    #[command(subcommand)]
    Migration(cmd::migration::Command),
    /// State shared by several nodes ([submission.shared]): the PostgreSQL schema
    #[command(subcommand)]
    Shared(cmd::shared::Command),
    /// Access-network egress policy: compile, check, diff, flows, publish
    Egress(cmd::egress::Args),
    /// The MX's screening before the banner: explain (every check's answer, score and reason for an address)
    #[command(subcommand)]
    Mx(cmd::mx::Command),
    /// SpamPots sensor: open-proxy and open-relay bait that captures and never delivers
    #[command(long_about = cmd::spampot::LONG_ABOUT)]
    Spampot(cmd::spampot::Args),
    /// The outbound queue: list, show, flush, retry, delete, hold, release
    Queue(cmd::queue::Args),
    /// DKIM signing keys: keygen
    #[command(subcommand)]
    Dkim(cmd::dkim::Command),
    /// Reports: Table 1 over captures, origin and destination, campaigns, blocklist rank, complaints
    Report(cmd::report::Args),
    /// DNS records mail clients use to find submission (RFC 6186 SRV) and autoconfig/autodiscover
    #[command(subcommand)]
    Dns(cmd::dns::Command),
    /// Who sent this? Sessions, login, client address and port, TLS, envelope and each recipient's outcome, by Message-ID, queue id or client address and time
    Trace(cmd::abuse::TraceArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Reload(args) => cmd::reload::run(args),
        Command::Config(c) => cmd::config::run(c),
        Command::Users(c) => cmd::users::run(c),
        Command::Migration(c) => cmd::migration::run(c),
        Command::Shared(c) => cmd::shared::run(c),
        Command::Egress(args) => cmd::egress::run(args),
        Command::Mx(c) => cmd::mx::run(c),
        Command::Spampot(args) => cmd::spampot::run(args),
        Command::Queue(args) => cmd::queue::run(args),
        Command::Dkim(c) => cmd::dkim::run(c),
        Command::Report(args) => cmd::report::run(args),
        Command::Dns(c) => cmd::dns::run(c),
        Command::Trace(args) => cmd::abuse::trace(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            errln!("port25: {err:#}");
            std::process::ExitCode::from(2)
        }
    };
    // A reader that left (EPIPE) is not an error; a full disk behind `>` is.
    match out::stdout_error() {
        Some(e) => {
            errln!("port25: writing standard output: {e}");
            std::process::ExitCode::from(2)
        }
        None => code,
    }
}
