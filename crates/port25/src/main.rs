//! The port25 binary: one executable, one subcommand per part.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "port25", version, about = "Port 25 management: submission apart from transport, egress policy, SpamPots, reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Access-network egress policy: compile, check, diff, flows
    Egress(cmd::egress::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Egress(args) => cmd::egress::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("port25: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
