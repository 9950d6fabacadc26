//! `port25 migration report`: how far the provider's users have moved from
//! port 25 to submission on 587/465 (the seeds' first phase: at least 90%
//! before the access networks block port 25).

use port25_accounts::migration;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Per domain: active users, the share submitting only on 587/465, and who is still on port 25
    #[command(
        after_help = "Uses are recorded at each login on the submission listeners and, while an MX listener has \
        legacy_submission = true, at each login on port 25.\nExit status: 0 when every domain meets the threshold, 1 when one does not, 2 on errors."
    )]
    Report {
        /// Users seen in the last DAYS days are active
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// The share (percent) of active users that must submit only on 587/465
        #[arg(long, default_value_t = 90.0)]
        threshold: f64,
        /// One JSON document instead of text
        #[arg(long)]
        json: bool,
        /// Configuration file (for the account database); default: built-in defaults
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Create an Ed25519 key pair to sign reports with (the access networks get FILE.pub)
    Keygen(super::migration_sign::KeygenArgs),
    /// Sign a report (migration report --json) for an access network's `egress plan --readiness`
    Sign(super::migration_sign::SignArgs),
    /// Check a signed report against the given public key(s)
    Verify(super::migration_sign::VerifyArgs),
}

fn time(t: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    httpdate::fmt_http_date(t)
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let (days, threshold, json, config) = match cmd {
        Command::Report { days, threshold, json, config } => (days, threshold, json, config),
        Command::Keygen(a) => return super::migration_sign::keygen(a),
        Command::Sign(a) => return super::migration_sign::sign(a),
        Command::Verify(a) => return super::migration_sign::verify(a),
    };
    let config = match &config {
        Some(path) => port25_config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => port25_config::embedded_default(),
    };
    let accounts = super::users::open(&config)?;
    let now = port25_time::unix_secs() as i64;
    // Several nodes: every node's uses, one record per login, from the
    // shared store (this node's own table holds only its share).
    let uses = match super::shared::usage(&config)? {
        Some(uses) => uses,
        None => accounts.usage()?,
    };
    let report = migration::report(&uses, now, days, threshold);
    let all_met = report.iter().all(|d| d.threshold_met);
    if json {
        let domains: Vec<serde_json::Value> = report
            .iter()
            .map(|d| {
                serde_json::json!({
                    "domain": d.domain, "active": d.active, "submission_only": d.submission_only,
                    "share": (d.share * 10.0).round() / 10.0, "threshold_met": d.threshold_met,
                    "still_on_25": d.still_on_25.iter().map(|s| serde_json::json!({
                        "login": s.login, "last_ip": s.last_ip, "last_seen": s.last_seen, "also_on_submission": s.also_on_submission,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!("{}", serde_json::json!({"days": days, "threshold": threshold, "all_met": all_met, "domains": domains}));
    } else {
        outln!("Active users in the last {days} days; threshold {threshold}% submitting only on 587/465");
        if report.is_empty() {
            outln!("  no authenticated submission recorded yet");
        }
        for d in &report {
            let verdict = if d.threshold_met { "met" } else { "NOT met" };
            outln!(
                "{}: {} active, {} only on 587/465 ({:.1}%): {verdict}",
                d.domain,
                d.active,
                d.submission_only,
                d.share
            );
            for s in &d.still_on_25 {
                let also = if s.also_on_submission { " (also uses 587/465)" } else { "" };
                outln!("  still on 25: {} last from {} at {}{also}", s.login, s.last_ip, time(s.last_seen));
            }
        }
    }
    Ok(if all_met { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
