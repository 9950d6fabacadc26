//! `port25 users`: the submission accounts in the SQLite database named by
//! the configuration (`[submission] accounts`, default data_dir/accounts.db).
//! Changes are seen by a running `port25 serve` at the next login.

use anyhow::Context;
use port25_accounts::Accounts;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Common {
    /// Configuration file (for the database path); without it the built-in
    /// defaults: ./port25-data/accounts.db
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a login with a new password (argon2id), read from standard input
    #[command(
        after_help = "Examples:\n  port25 users add alice@example.net          (asks for the password)\n  echo 's3cret' | port25 users add alice@example.net --address alice@example.net --address @example.org\n\nWithout --address, a login that is an address may send as itself only. The addresses (and @domains) also receive mail: the MX accepts them at RCPT."
    )]
    Add {
        login: String,
        /// An address the login may send as, or @domain for a whole domain; repeat for more
        #[arg(long = "address", short)]
        addresses: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Set a new password (argon2id), read from standard input
    Passwd {
        login: String,
        #[command(flatten)]
        common: Common,
    },
    /// Set the addresses a login may send as (replacing the old list)
    Addresses {
        login: String,
        /// Addresses, or @domain for a whole domain
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Give a login its own sending limits (0 = none); unset ones follow [submission]
    #[command(
        after_help = "Examples:\n  port25 users limits news@example.net --messages-per-hour 2000 --recipients-per-message 500\n  \
        port25 users limits alice@example.net --messages-per-hour 5     (contain a suspicious account)\n  \
        port25 users limits alice@example.net                           (back to the defaults)\n\nPrints the limits in force."
    )]
    Limits {
        login: String,
        #[arg(long)]
        messages_per_hour: Option<u32>,
        #[arg(long)]
        messages_per_day: Option<u32>,
        #[arg(long)]
        recipients_per_hour: Option<u32>,
        #[arg(long)]
        recipients_per_day: Option<u32>,
        #[arg(long)]
        recipients_per_message: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a login
    Del {
        login: String,
        #[command(flatten)]
        common: Common,
    },
    /// List logins, their hash scheme and their addresses
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Let a login sign in to the HTTP operator dashboard (or, with --revoke, stop it)
    #[command(
        after_help = "The dashboard (`[http]` in the configuration, /dashboard) shows migration progress, the queue, \
        recent rejections and SpamPots captures to operators only.\nExample:  port25 users operator ops@example.net"
    )]
    Operator {
        login: String,
        /// Take the operator flag away
        #[arg(long)]
        revoke: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Why a login is tagged, held or locked: the abuse desk's signals with their evidence (docs/abuse.md)
    #[command(
        after_help = "Example:  port25 users explain alice@example.net\n\nShows the action in force and since when, each signal with its evidence, the login's daily counts\n(its own history) and the networks, ASNs and countries it came from."
    )]
    Explain {
        login: String,
        /// One JSON object
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Lift the abuse desk's hold or lock on a login (its held mail then goes out: delete it first with `port25 queue delete --login`)
    Release {
        login: String,
        #[command(flatten)]
        common: Common,
    },
    /// Import users with existing hashes from a file of login:hash[:addresses] lines
    #[command(after_help = "The file has one user per line:  login:hash[:addresses]\n  \
        hash       $6$... (SHA-512-crypt), $5$... (SHA-256-crypt), $2b$/$2y$/$2a$... (bcrypt) or $argon2id$...;\n             \
        a Dovecot scheme prefix such as {SHA512-CRYPT} or {BLF-CRYPT} is accepted and dropped\n  \
        addresses  comma-separated addresses and @domain entries; default: the login itself if it is an address\n  \
        Blank lines and lines starting with # are skipped. Nothing is imported when any line is bad.\n\n\
        Example line:  alice@example.net:$6$saltsalt$...:alice@example.net,@example.org")]
    Import {
        file: PathBuf,
        /// Replace logins that already exist (default: refuse the whole file)
        #[arg(long)]
        replace: bool,
        /// No progress bar (there is none anyway when standard error is not a terminal)
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        common: Common,
    },
}

fn config(common: &Common) -> anyhow::Result<port25_config::Config> {
    match &common.config {
        Some(path) => port25_config::load(path).map_err(|e| anyhow::anyhow!("{e}")),
        None => Ok(port25_config::embedded_default()),
    }
}

/// Opens the account database the configuration names.
pub fn open(config: &port25_config::Config) -> anyhow::Result<Accounts> {
    let path = &config.submission.accounts;
    Accounts::open(path, config.submission.password_cache)
        .with_context(|| format!("cannot open the account database {}", path.display()))
}

/// Reads a password: a prompt without echo on a terminal, else one line.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        err!("{prompt}");
        std::io::stderr().flush()?;
    }
    let _echo = tty.then(EchoOff::new);
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if tty {
        errln!();
    }
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        anyhow::bail!("empty password (give it on standard input, e.g. echo 'secret' | port25 users add LOGIN)");
    }
    Ok(password)
}

/// Turns terminal echo off while a password is typed; restored on drop.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the attributes read in new().
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Add { login, addresses, common } => {
            let accounts = open(&config(&common)?)?;
            let password = read_password("Password: ")?;
            accounts.add(&login, &password, &addresses)?;
            let list = accounts.addresses(&login)?;
            outln!(
                "added {} (may send as: {})",
                port25_accounts::Login::of(&login),
                if list.is_empty() { "nothing yet; use port25 users addresses".into() } else { list.join(", ") }
            );
        }
        Command::Passwd { login, common } => {
            let accounts = open(&config(&common)?)?;
            let password = read_password("New password: ")?;
            accounts.set_password(&login, &password)?;
            outln!("password of {} changed", port25_accounts::Login::of(&login));
        }
        Command::Addresses { login, addresses, common } => {
            let accounts = open(&config(&common)?)?;
            accounts.set_addresses(&login, &addresses)?;
            outln!("{} may send as: {}", port25_accounts::Login::of(&login), accounts.addresses(&login)?.join(", "));
        }
        Command::Limits {
            login,
            messages_per_hour,
            messages_per_day,
            recipients_per_hour,
            recipients_per_day,
            recipients_per_message,
            common,
        } => {
            let config = config(&common)?;
            let accounts = open(&config)?;
            let own = port25_accounts::UserLimits {
                messages_per_hour,
                messages_per_day,
                recipients_per_hour,
                recipients_per_day,
                recipients_per_message,
            };
            accounts.set_limits(&login, &own)?;
            let s = &config.submission;
            let show = |name: &str, own: Option<u32>, default: u32| {
                let value = own.unwrap_or(default);
                let value = if value == 0 { "no limit".to_owned() } else { value.to_string() };
                outln!("{name:<24}{value}{}", if own.is_some() { "" } else { "  (default)" });
            };
            outln!("limits of {}:", port25_accounts::Login::of(&login));
            show("messages_per_hour", own.messages_per_hour, s.messages_per_hour);
            show("messages_per_day", own.messages_per_day, s.messages_per_day);
            show("recipients_per_hour", own.recipients_per_hour, s.recipients_per_hour);
            show("recipients_per_day", own.recipients_per_day, s.recipients_per_day);
            show("recipients_per_message", own.recipients_per_message, s.recipients_per_message);
        }
        Command::Del { login, common } => {
            open(&config(&common)?)?.delete(&login)?;
            outln!("deleted {}", port25_accounts::Login::of(&login));
        }
        Command::List { json, common } => {
            let accounts = open(&config(&common)?)?;
            for u in accounts.list()? {
                let operator = accounts.is_operator(&u.login)?;
                if json {
                    // "operator" only when set, so the lines of other logins keep their shape.
                    let mut line = serde_json::json!({"login": u.login, "scheme": u.scheme, "addresses": u.addresses});
                    if operator {
                        line["operator"] = true.into();
                    }
                    outln!("{line}");
                } else {
                    outln!(
                        "{}\t{}\t{}{}",
                        u.login,
                        u.scheme,
                        u.addresses.join(","),
                        if operator { "\toperator" } else { "" }
                    );
                }
            }
        }
        Command::Operator { login, revoke, common } => {
            open(&config(&common)?)?.set_operator(&login, !revoke)?;
            match revoke {
                false => outln!("{} may sign in to the dashboard", port25_accounts::Login::of(&login)),
                true => outln!("{} may no longer sign in to the dashboard", port25_accounts::Login::of(&login)),
            }
        }
        Command::Explain { login, json, common } => {
            return super::abuse::explain(&config(&common)?, &login.to_lowercase(), json)
        }
        Command::Release { login, common } => return super::abuse::release(&config(&common)?, &login.to_lowercase()),
        Command::Import { file, replace, quiet, common } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let accounts = open(&config(&common)?)?;
            let bar = std::cell::RefCell::new(None);
            let result = accounts.import_with(&text, replace, &|p| match p {
                port25_accounts::ImportProgress::Parsed(n) => {
                    *bar.borrow_mut() = Some(super::progress::Progress::new(quiet, "importing users", n, false))
                }
                port25_accounts::ImportProgress::Written(n) => {
                    if let Some(b) = bar.borrow().as_ref() {
                        b.inc(n);
                    }
                }
            });
            if let Some(b) = bar.into_inner() {
                b.finish();
            }
            match result {
                Ok((added, replaced)) => outln!("imported {}: {added} added, {replaced} replaced", file.display()),
                Err(port25_accounts::AccountsError::Invalid(e)) => {
                    errln!("{}: {e}\n  nothing was imported; fix the line and run again", file.display());
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
