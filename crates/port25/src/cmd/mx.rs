//! `port25 mx explain`: what the MX's screening before the banner would
//! do with a client address, check by check (as `egress check` does for
//! the access network): the end-user policy, each DNSBL/DNSWL's answer and
//! weight, reverse DNS (FCrDNS and generic names), the HELO name against
//! them, the score and the verdict with the reply the client would get.
//! The checks that need a live connection (pregreet, rate) are not run.
//!
//! With `--from` and/or `--message`, sender authentication follows in the
//! same report: iprev, SPF for the HELO name and MAIL FROM, DKIM and DMARC
//! of the message as `[mx.auth]` would judge it at the end of DATA, each
//! with its reason, and that verdict (docs/mx-auth.md).

use port25_screen::verdict::{Outcome, Verdict};
use std::fmt::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every screening check's answer, score and reason for ADDRESS, and the verdict
    #[command(
        after_help = "Uses [mx.screen] of the configuration (lists, weights, actions, resolvers, end_user_policy), \
        whether or not it is enabled, and asks the same DNS servers the MX would.\n\
        Exit status: 0 the client would pass, 1 it would be refused (reject or tempfail), 2 error.\n\n\
        With --from or --message, the sender authentication [mx.auth] would do at the end of DATA follows \
        (iprev, SPF for HELO and MAIL FROM, DKIM, DMARC), whether or not [mx.auth] is enabled; \
        a message DMARC would reject also makes the exit status 1.\n\n\
        Examples:\n  port25 mx explain -c /etc/port25/port25.toml 192.0.2.7 --helo mail.example.net\n  \
        port25 mx explain -c /etc/port25/port25.toml 192.0.2.7 --helo mail.example.net --from ceo@bank.example --message suspect.eml"
    )]
    Explain {
        /// The client's IPv4 or IPv6 address
        address: IpAddr,
        /// The name the client would give in EHLO/HELO
        #[arg(long)]
        helo: Option<String>,
        /// The envelope sender (MAIL FROM) to check with SPF; "" for the null sender
        #[arg(long)]
        from: Option<String>,
        /// A message (RFC 5322, as received) whose DKIM signatures and DMARC policy to check
        #[arg(long)]
        message: Option<PathBuf>,
        /// Configuration file; default: built-in defaults
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Explain { address, helo, from, message, config } = cmd;
    let config = match &config {
        Some(path) => port25_config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => port25_config::embedded_default(),
    };
    let screen = &config.mx.screen;
    let allow = port25_screen::allow::Allowlist::read(
        &port25_screen::allowlist_path(&config.data_dir),
        screen.allowlist_entries,
    )?;
    // Read before any lookup: a missing file is the user's error, said first.
    let message = match &message {
        Some(path) => Some(std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (verdict, helo_line, allowlisted) = runtime.block_on(async {
        let screener =
            port25_screen::Screener::with_allowlist(screen, &config.hostname, allow).map_err(anyhow::Error::msg)?;
        let verdict = screener.explain(address).await;
        let helo_line = match &helo {
            Some(h) => Some(helo_check(&screener, address, h, &verdict).await),
            None => None,
        };
        anyhow::Ok((verdict, helo_line, screener.allow.contains(address)))
    })?;
    out!("{}", render(address, screen, &verdict, helo_line.as_deref(), allowlisted));
    let mut refused = matches!(verdict.outcome, Outcome::Reject | Outcome::Tempfail | Outcome::NonSmtp);
    if from.is_some() || message.is_some() {
        let auth = super::mx_auth::authenticator(&config)?;
        let mail_from = from.as_deref().unwrap_or("").trim_start_matches('<').trim_end_matches('>');
        let sender =
            port25_mx::auth::Sender { ip: address.to_canonical(), helo: helo.as_deref().unwrap_or(""), mail_from };
        let report = runtime.block_on(auth.check(&sender, message.as_deref().unwrap_or(b"")));
        out!("\nsender authentication (what [mx.auth] would do at the end of DATA):\n{report}");
        refused |= matches!(report.verdict, port25_mx::auth::Verdict::Reject(_));
    }
    Ok(if refused { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The HELO name against the address: the forward-confirmed PTR name, or
/// a name that resolves to the address, or an address literal of it.
/// Informational (RFC 5321 §4.1.4: a server must not refuse a client for
/// its HELO name alone).
async fn helo_check(screener: &port25_screen::Screener, ip: IpAddr, helo: &str, v: &Verdict) -> String {
    let helo = helo.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Some(literal) = helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let literal = literal.strip_prefix("ipv6:").unwrap_or(literal);
        return match literal.parse::<IpAddr>() {
            Ok(a) if a.to_canonical() == ip.to_canonical() => format!("{helo}: the client's own address literal"),
            Ok(_) => format!("{helo}: an address literal of another address"),
            Err(_) => format!("{helo}: not a valid address literal"),
        };
    }
    if v.lines
        .iter()
        .any(|l| l.check == "rdns" && l.outcome == "confirmed" && l.reason.split(' ').next() == Some(helo.as_str()))
    {
        return format!("{helo}: the client's forward-confirmed reverse DNS name");
    }
    match screener.lookups().resolves_to(&helo, ip.to_canonical()).await {
        Ok(true) => format!("{helo}: resolves to {ip}"),
        Ok(false) => format!("{helo}: does not resolve to {ip} (nor is it the reverse DNS name)"),
        Err(e) => format!("{helo}: cannot tell ({e})"),
    }
}

fn render(ip: IpAddr, screen: &port25_config::Screen, v: &Verdict, helo: Option<&str>, allowlisted: bool) -> String {
    let mut s = String::new();
    let verdict = match v.outcome {
        Outcome::Pass => "PASS".to_owned(),
        Outcome::Allowlisted => "PASS (allowlisted by a DNSWL)".to_owned(),
        Outcome::Monitored => format!("PASS (monitor: {} fired, its action is ignore)", v.decided_by),
        Outcome::Tag => format!("PASS, TAGGED (X-Port25-Screen: {})", v.tag.as_deref().unwrap_or("")),
        Outcome::Tempfail => format!("TEMPFAIL (decided by {})", v.decided_by),
        Outcome::Reject => format!("REJECT (decided by {})", v.decided_by),
        Outcome::NonSmtp => "REFUSED (non-SMTP)".to_owned(),
    };
    let _ = writeln!(
        s,
        "{ip}: {verdict}; score {} (threshold {}, allowlist at {} or below)",
        v.score, screen.threshold, screen.allowlist_threshold
    );
    if !screen.enabled {
        let _ =
            writeln!(s, "  note: [mx.screen] enabled = false: the MX does not screen now; this is what it would do");
    }
    if screen.end_user_policy.is_none() {
        let _ = writeln!(s, "  end_user  -                    not checked: no [mx.screen] end_user_policy");
    } else if !v.lines.iter().any(|l| l.check == "end_user") {
        let _ =
            writeln!(s, "  end_user  outside              0  not in a blocked end-user network of the egress policy");
    }
    if screen.lists.is_empty() {
        let _ = writeln!(s, "  dnsbl     -                    no [[mx.screen.dnsbl]] lists configured");
    }
    for l in &v.lines {
        let what = if l.list.is_empty() { l.outcome.to_owned() } else { format!("{} {}", l.list, l.outcome) };
        let _ = writeln!(s, "  {:<9} {:<20} {:>2}  {}", l.check, what, l.score, l.reason);
    }
    if let Some(h) = helo {
        let _ = writeln!(s, "  helo      -                     0  {h}");
    }
    let _ = writeln!(
        s,
        "  pregreet  not run: it needs a live connection (the MX waits {} ms after its 220- teaser)",
        screen.greet_wait.as_millis()
    );
    if allowlisted {
        let _ = writeln!(
            s,
            "  allowlist the address passed recently: the MX lets it in without screening until its entry expires"
        );
    }
    if let Some(r) = &v.reply {
        let _ = writeln!(s, "  reply:    {r}");
    }
    s
}
