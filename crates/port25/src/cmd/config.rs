//! `port25 config check FILE` and `port25 config default`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a configuration file; print a summary, or the error with its line and fix
    Check {
        /// The TOML file to check
        file: PathBuf,
    },
    /// Print the documented default configuration (every key, commented)
    Default,
}

pub const DEFAULT_TOML: &str = include_str!("../../../../dist/port25.toml");

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { file } => match port25_config::load(&file) {
            Ok(c) => {
                outln!("{}: ok", file.display());
                outln!("  hostname   {}", c.hostname);
                outln!("  data_dir   {}", c.data_dir.display());
                outln!("  domains    {}", c.mx.domains.join(", "));
                if let Some(r) = &c.mx.recipients {
                    outln!("  recipients {} addresses", r.len());
                }
                if !c.mx.catch_all.is_empty() {
                    outln!("  catch_all  {}", c.mx.catch_all.join(", "));
                }
                for l in &c.listeners {
                    let proxies: Vec<String> = l.proxy_protocol_from.iter().map(|n| n.to_string()).collect();
                    let proxy = if l.proxy_protocol {
                        format!(" proxy_protocol from {}", proxies.join(","))
                    } else {
                        String::new()
                    };
                    outln!("  listener   {} {} {:?} tls={:?}{proxy}", l.name, l.address, l.service, l.tls);
                }
                outln!("  delivery   {:?}", c.delivery.method);
                if let Some(line) = smarthost_summary(&c) {
                    outln!("  smarthost  {line}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                errln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Default => {
            out!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `config check` says about the smarthost: how its certificate is
/// verified, and when AUTH and mail go to it.
fn smarthost_summary(c: &port25_config::Config) -> Option<String> {
    let (host, port) = c.outbound.smarthost.as_ref()?;
    let trust = match super::wiring::smarthost_trust(c) {
        port25_outbound::tls_policy::SmarthostTrust::SystemRoots => {
            "a certificate for that name from the system's CAs".to_owned()
        }
        port25_outbound::tls_policy::SmarthostTrust::Ca(p) => {
            format!("a certificate for that name from the CAs in {}", p.display())
        }
        port25_outbound::tls_policy::SmarthostTrust::Pins(p) => {
            format!("a certificate whose key is one of the {} in smarthost_pin_sha256", p.len())
        }
    };
    let when = match (&c.outbound.smarthost_auth, c.outbound.smarthost_require_tls) {
        (Some((user, _)), _) => format!(
            "AUTH PLAIN as {user} only after STARTTLS with {trust}; no STARTTLS, a refused one or a certificate that does not verify defers the mail (never AUTH in clear, whatever smarthost_require_tls says)"
        ),
        (None, true) => format!("only after STARTTLS with {trust}; otherwise deferred"),
        (None, false) => format!("STARTTLS with {trust} when offered (one that does not verify defers the mail); in clear only if STARTTLS is not offered"),
    };
    Some(format!("{host}:{port}: {when}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_default_file_is_valid() {
        port25_config::parse(
            super::DEFAULT_TOML,
            std::path::Path::new("dist/port25.toml"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
    }

    /// The documented default is the runtime default: dist/port25.toml as
    /// shipped parses to the built-in configuration (with its host name and
    /// domain), and so does it with
    /// every commented-out `key = value` uncommented, except the keys whose
    /// line shows an example rather than the default (listed here).
    #[test]
    fn the_documented_defaults_are_the_runtime_defaults() {
        let base = std::path::Path::new("/srv/p25");
        let parse = |t: &str| {
            port25_config::parse(t, std::path::Path::new("dist/port25.toml"), base).unwrap_or_else(|e| panic!("{e}"))
        };
        // The shipped file names a host and its domain, as an operator must.
        let own = "hostname = \"mx.example.net\"\n[mx]\ndomains = [\"example.net\"]\nrecipient_delimiter = \"+\"\n";
        let builtin = port25_config::parse(own, std::path::Path::new("<built-in defaults>"), base).unwrap();
        assert_eq!(parse(super::DEFAULT_TOML), builtin, "dist/port25.toml as shipped");
        let examples = [
            "certificate",
            "private_key",
            "recipients",
            "recipients_file",
            "catch_all",
            "lmtp",
            "device_ca",
            "helo_name",
            "smarthost",
            "smarthost_username",
            "smarthost_password_file",
            "smarthost_require_tls",
            "smarthost_ca",
            "mta_sts_ca",
            "dane_trust_anchor",
            "domain",
            "selector",
            "display_name",
            "submission_host",
            "imap",
            "imaps",
            "spampot_capture",
            "proxy_protocol_from",
            "legacy_submission",
            "plaintext_auth",
            // [mx.screen]: example resolvers, policy and lists
            "dns_servers",
            "end_user_policy",
            "zone",
            "codes",
            "weight",
        ];
        let (mut uncommented, mut text) = (Vec::new(), String::new());
        // Keys under a commented-out table header (`# [submission.directory]`)
        // show an optional section, not defaults of the table above it.
        let mut in_commented_table = false;
        for line in super::DEFAULT_TOML.lines() {
            if line.starts_with('[') {
                in_commented_table = false;
            } else if line
                .strip_prefix("# ")
                .is_some_and(|rest| rest.starts_with('[') && rest.trim_end().ends_with(']'))
            {
                in_commented_table = true;
            }
            let setting = line.strip_prefix("# ").filter(|_| !in_commented_table).filter(|rest| {
                rest.split_once(" = ").is_some_and(|(key, _)| {
                    key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && !examples.contains(&key)
                })
            });
            match setting {
                Some(rest) => {
                    uncommented.push(rest.split_once(" = ").map(|(k, _)| k.to_owned()).unwrap_or_default());
                    text.push_str(rest);
                }
                None => text.push_str(line),
            }
            text.push('\n');
        }
        assert!(uncommented.len() > 60, "only {uncommented:?}");
        assert_eq!(parse(&text), builtin, "dist/port25.toml with its documented defaults written out: {uncommented:?}");
    }

    /// Neither the documented default nor the built-in one accepts any
    /// plain local part: no recipient list, no catch-all, and no DSN to
    /// an unverified sender after acceptance (docs/mx.md).
    #[test]
    fn no_default_accepts_mail_for_anyone() {
        let dist = port25_config::parse(
            super::DEFAULT_TOML,
            std::path::Path::new("dist/port25.toml"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        for mx in [dist.mx, port25_config::embedded_default().mx] {
            assert_eq!((mx.recipients, mx.catch_all, mx.bounce_after_accept), (None, vec![], false));
        }
    }
}
