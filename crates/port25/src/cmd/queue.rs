//! `port25 queue`: the operator's view of the outbound queue.
//!
//! `list` and `show` read the queue's files directly (batches, done logs,
//! state, history), so they work whether or not the server runs. Commands
//! that change the queue (`flush`, `retry`, `delete`, `hold`, `release`)
//! are written as files into `outbound/control/`, which the running server
//! reads every second (or at its next start): one writer of the queue's
//! state, never two.

use port25_outbound::control::Control;
use port25_outbound::journal::{read_history, read_states};
use port25_outbound::state::RcptState;
use port25_spool::scan::{Batch, Scan};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  port25 queue list -c /etc/port25/port25.toml\n  port25 queue show 4F1A2B3C0000001\n  port25 queue retry 4F1A2B3C0000001     # try now instead of at the next scheduled time\n  port25 queue hold && port25 queue release"
)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Configuration file, to find data_dir
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// The data directory (instead of --config)
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Every queued recipient: message id, age, sender, recipient, attempts, next attempt, last reply
    List,
    /// One message: envelope, headers, each recipient's state and what happened to finished ones
    Show { id: String },
    /// Try every queued recipient now
    Flush,
    /// Try the recipients of one message now
    Retry { id: String },
    /// Remove a message from the queue without delivering it and without a DSN
    #[command(
        after_help = "With --login: every message of the login that the abuse desk holds (`port25 queue held`)."
    )]
    Delete {
        #[arg(required_unless_present = "login")]
        id: Option<String>,
        /// Every held message of this login
        #[arg(long, conflicts_with = "id")]
        login: Option<String>,
    },
    /// Stop sending (mail keeps queueing) until `release`
    Hold,
    /// Resume sending after `hold` or `[outbound] hold = true`; with an id, send one message the abuse desk holds
    #[command(
        after_help = "Examples:\n  port25 queue release                    # after port25 queue hold\n  port25 queue release 18C2A9B7E4100001   # one held message of a held or locked login\n  port25 queue release --login alice@example.net   # all of them (the login stays held)"
    )]
    Release {
        id: Option<String>,
        /// Every held message of this login
        #[arg(long, conflicts_with = "id")]
        login: Option<String>,
    },
    /// Messages the abuse desk holds (logins on hold or locked: `port25 users explain LOGIN`)
    Held,
}

struct Open {
    id: String,
    received_at: u64,
    from: String,
    rcpt: String,
    state: RcptState,
    content: Vec<u8>,
}

fn open_recipients(root: &Path) -> anyhow::Result<Vec<Open>> {
    let mut out = Vec::new();
    let scan = Scan::new(root);
    let Ok(listing) = scan.list() else { return Ok(out) };
    for seq in listing.batches {
        let (messages, done) = match scan.read(seq) {
            Ok(Batch::Read { messages, done }) => (messages, done),
            Ok(Batch::Damaged(e)) => {
                errln!("{}: {e} (the server quarantines it at start)", scan.batch_path(seq).display());
                continue;
            }
            Ok(Batch::Gone) | Err(_) => continue,
        };
        let states = read_states(root, seq);
        for (m, msg) in messages.into_iter().enumerate() {
            for (r, rcpt) in msg.rcpts.iter().enumerate() {
                if done.contains(&(m, r)) {
                    continue;
                }
                out.push(Open {
                    id: msg.id.clone(),
                    received_at: msg.received_at,
                    from: msg.from.clone(),
                    rcpt: rcpt.clone(),
                    state: states.get(&(m, r)).cloned().unwrap_or_default(),
                    content: msg.content.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// (queue id, login) of the messages the abuse desk holds.
fn held(data_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let path = port25_abuse::desk::db_path(data_dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(port25_abuse::desk::held_messages(&port25_abuse::desk::open_db(&path)?)?)
}

fn control(root: &Path, command: Control) -> anyhow::Result<()> {
    port25_outbound::control::send(root, &command)?;
    outln!("{command}: queued for the server (carried out within a second while it runs, else at its next start)");
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = match (&args.data_dir, &args.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => match port25_config::load(c) {
            Ok(c) => c.data_dir,
            Err(e) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        (None, None) => port25_config::embedded_default().data_dir,
    };
    let root = data_dir.join("outbound");
    match args.command {
        Cmd::List => {
            let open = open_recipients(&root)?;
            let now = port25_time::unix_secs();
            outln!("{:<20} {:>5} {:<30} {:<30} {:>3} {:>6}  last reply", "id", "age", "from", "to", "try", "next");
            for o in &open {
                let next = if o.state.next_attempt > now { age(o.state.next_attempt - now) } else { "now".into() };
                let from = if o.from.is_empty() { "<>" } else { &o.from };
                outln!(
                    "{:<20} {:>5} {:<30} {:<30} {:>3} {:>6}  {}",
                    o.id,
                    age(now.saturating_sub(o.received_at)),
                    from,
                    o.rcpt,
                    o.state.attempts,
                    next,
                    o.state.last_reply
                );
            }
            let messages: BTreeSet<&str> = open.iter().map(|o| o.id.as_str()).collect();
            outln!("{} recipient(s) of {} message(s) queued", open.len(), messages.len());
        }
        Cmd::Show { id } => {
            let open: Vec<Open> = open_recipients(&root)?.into_iter().filter(|o| o.id == id).collect();
            let history: Vec<_> = read_history(&root).into_iter().filter(|h| h.id == id).collect();
            if open.is_empty() && history.is_empty() {
                errln!(
                    "no message {id} in the outbound queue or its history (`port25 queue list` shows the queued ones)"
                );
                return Ok(ExitCode::from(1));
            }
            if let Some(o) = open.first() {
                outln!(
                    "id: {id}\nfrom: <{}>\nreceived: {} ago\nsize: {} bytes",
                    o.from,
                    age(port25_time::unix_secs().saturating_sub(o.received_at)),
                    o.content.len()
                );
                let head =
                    o.content.windows(4).position(|w| w == b"\r\n\r\n").map_or(&o.content[..], |i| &o.content[..i]);
                outln!(
                    "headers:\n{}",
                    String::from_utf8_lossy(head).lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
                );
            }
            for o in &open {
                outln!(
                    "queued {}: {} attempt(s), next at {}, last reply: {}",
                    o.rcpt,
                    o.state.attempts,
                    o.state.next_attempt,
                    o.state.last_reply
                );
            }
            for h in history {
                outln!(
                    "{} {}: {} at {} ({})",
                    h.outcome.name(),
                    h.rcpt,
                    h.reply,
                    h.time,
                    age(port25_time::unix_secs().saturating_sub(h.time))
                );
            }
        }
        Cmd::Flush => control(&root, Control::Flush)?,
        Cmd::Retry { id } => control(&root, Control::Retry(id))?,
        Cmd::Delete { id: Some(id), .. } => control(&root, Control::Delete(id))?,
        Cmd::Delete { id: None, login } => {
            let login = login.unwrap_or_default().to_lowercase();
            for (id, _) in held(&data_dir)?.into_iter().filter(|(_, l)| *l == login) {
                control(&root, Control::Delete(id))?;
            }
        }
        Cmd::Hold => control(&root, Control::Hold)?,
        Cmd::Release { id: None, login: None } => control(&root, Control::Release)?,
        Cmd::Release { id, login } => {
            let db = port25_abuse::desk::open_db(&port25_abuse::desk::db_path(&data_dir))?;
            let ids: Vec<String> = match (id, login) {
                (Some(id), _) => vec![id],
                (None, l) => {
                    let l = l.unwrap_or_default().to_lowercase();
                    held(&data_dir)?.into_iter().filter(|(_, x)| *x == l).map(|(id, _)| id).collect()
                }
            };
            for id in &ids {
                port25_abuse::desk::release_message(&db, id)?;
                outln!("release {id}: the server sends it within a second");
            }
            if ids.is_empty() {
                outln!("no held message of that login");
            }
        }
        Cmd::Held => {
            let queued: BTreeSet<String> = open_recipients(&root)?.into_iter().map(|o| o.id).collect();
            let held: Vec<(String, String)> =
                held(&data_dir)?.into_iter().filter(|(id, _)| queued.contains(id)).collect();
            outln!("{:<20} login", "id");
            for (id, login) in &held {
                outln!("{id:<20} {login}");
            }
            outln!("{} held message(s)", held.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
