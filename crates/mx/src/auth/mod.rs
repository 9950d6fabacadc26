//! Sender authentication at the end of DATA: iprev, SPF (RFC 7208) for
//! HELO and MAIL FROM, DKIM (RFC 6376) and DMARC (RFC 7489, with the
//! Public Suffix List), into one `Authentication-Results` field (RFC 8601)
//! with our authserv-id.
//!
//! Everything runs at the end of DATA, where the From: header is known
//! (the MX policy's `data` hook): the checks run in parallel, each within
//! `[mx.auth] timeout_secs`. What is done with the results:
//!
//! - DMARC `fail` where the domain asks `p=reject`: 550 5.7.1, or a tag
//!   (`dmarc_reject = "tag"`); `p=quarantine`: a tag.
//! - SPF `fail` (`-all`) for MAIL FROM without a DMARC pass: nothing more
//!   than the header by default (`spf_fail = "ignore"`: RFC 7489 10.1,
//!   rejecting on SPF alone breaks forwarded mail that DKIM would carry),
//!   or a tag, or 550 5.7.1.
//! - A DNS temporary error is `temperror` in the header and never a
//!   rejection: DMARC is `temperror` too whenever an identifier that could
//!   have aligned could not be checked.
//!
//! A tag is one `X-Port25-Tag:` header field naming the check and why,
//! for the mailbox side (a Sieve rule) to file the message as junk.
//!
//! [`Authenticator::check`] gives every check's result and reason: the MX
//! uses it for each message and `port25 mx explain` prints it ([`Report`]
//! implements `Display`).

pub mod dmarc;
pub mod dns;
pub mod header;

use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, IprevResult, MessageAuthenticator, Parameters, SpfResult};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A check's result, as RFC 8601 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

/// One line of the Authentication-Results field: method, result, the
/// reason in words, and the properties (`smtp.mailfrom=`, `header.d=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub method: &'static str,
    pub outcome: Outcome,
    pub reason: String,
    pub props: Vec<(&'static str, String)>,
}

/// What `dmarc_reject` and `spf_fail` may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Only the Authentication-Results field.
    Ignore,
    /// The header field and `X-Port25-Tag:`.
    Tag,
    /// 550 5.7.1 at the end of DATA.
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Our authserv-id (RFC 8601 2.5): the host name by default.
    pub authserv_id: String,
    /// Name servers; empty: those of /etc/resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    /// One DNS question's timeout.
    pub dns_timeout: Duration,
    /// Each check's whole time (an SPF record has up to 10 lookups).
    pub timeout: Duration,
    pub dmarc_reject: Action,
    pub dmarc_quarantine: Action,
    pub spf_fail: Action,
    /// DKIM signatures verified per message (each is a DNS question).
    pub max_signatures: usize,
    pub public_suffix_list: PathBuf,
}

/// What the MX does with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Accept with `X-Port25-Tag: <why>`.
    Tag(String),
    /// 550 5.7.1 with this text.
    Reject(String),
}

/// Every check's answer and the verdict: what `port25 mx explain` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

impl Report {
    /// The first check of a method (`"dmarc"`, `"iprev"`).
    pub fn get(&self, method: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.method == method)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            write!(f, "{:<6} {:<9}", c.method, c.outcome.as_str())?;
            for (k, v) in &c.props {
                write!(f, " {k}={v}")?;
            }
            writeln!(f)?;
            if !c.reason.is_empty() {
                writeln!(f, "       {}", shown(&c.reason))?;
            }
        }
        match &self.verdict {
            Verdict::Accept => writeln!(f, "verdict: accept"),
            Verdict::Tag(why) => writeln!(f, "verdict: accept, tagged ({})", shown(why)),
            Verdict::Reject(why) => writeln!(f, "verdict: reject 550 5.7.1 ({})", shown(why)),
        }
    }
}

/// Text from DNS or the client, shown as the text log shows it: control
/// and invisible characters escaped.
fn shown(s: &str) -> String {
    s.chars().map(|c| if port25_events::escaped(c) { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// The sender of one message as the MX saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub ip: IpAddr,
    /// The EHLO/HELO name ("" when none was given).
    pub helo: &'a str,
    /// MAIL FROM without brackets, "" for the null sender.
    pub mail_from: &'a str,
}

pub struct Authenticator {
    resolver: MessageAuthenticator,
    psl: dmarc::Suffixes,
    settings: Settings,
}

impl Authenticator {
    /// Fails (for `port25 serve` to stop with the reason) when the Public
    /// Suffix List cannot be read or the resolver cannot start.
    pub fn new(settings: Settings) -> Result<Authenticator, String> {
        let psl = dmarc::Suffixes::load(&settings.public_suffix_list)?;
        let resolver = MessageAuthenticator(dns::resolver(&settings.nameservers, settings.dns_timeout)?);
        Ok(Authenticator { resolver, psl, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The resolver (greylisting asks DNSWLs with it).
    pub fn resolver(&self) -> &hickory_resolver::TokioResolver {
        self.resolver.resolver()
    }

    async fn timed<F: Future<Output = Check>>(
        &self,
        method: &'static str,
        props: Vec<(&'static str, String)>,
        f: F,
    ) -> Check {
        match tokio::time::timeout(self.settings.timeout, f).await {
            Ok(c) => c,
            Err(_) => Check {
                method,
                outcome: Outcome::TempError,
                reason: format!("no answer within {}s", self.settings.timeout.as_secs()),
                props,
            },
        }
    }

    /// FCrDNS (RFC 8601 3: iprev): a PTR name of the client that resolves
    /// back to its address.
    pub async fn iprev(&self, ip: IpAddr) -> Check {
        let props = vec![("policy.iprev", ip.to_string())];
        self.timed("iprev", props.clone(), async {
            let out = self.resolver.verify_iprev(ip).await;
            let names = out
                .ptr
                .as_ref()
                .map(|p| p.iter().take(2).map(|n| n.trim_end_matches('.').to_owned()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let (outcome, reason) = match &out.result {
                IprevResult::Pass => (Outcome::Pass, format!("{ip} is {names}, which resolves back to it")),
                IprevResult::Fail(_) => {
                    (Outcome::Fail, format!("{ip} has PTR {names}, which does not resolve back to it"))
                }
                IprevResult::TempError(e) => (Outcome::TempError, format!("DNS error: {e}")),
                IprevResult::PermError(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_))) => {
                    (Outcome::PermError, format!("{ip} has no PTR record (or its name has no address)"))
                }
                IprevResult::PermError(e) => (Outcome::PermError, e.to_string()),
                IprevResult::None => (Outcome::None, "not checked".into()),
            };
            Check { method: "iprev", outcome, reason, props }
        })
        .await
    }

    /// SPF for the HELO name, or (`mail_from` not `None`) for MAIL FROM
    /// ("" is the null sender, checked as postmaster@ the HELO name).
    pub async fn spf(&self, sender: &Sender<'_>, mail_from: Option<&str>) -> Check {
        let helo = sender.helo.trim_end_matches('.');
        let (prop, identity, domain) = match mail_from {
            Some("") => ("smtp.mailfrom", format!("postmaster@{helo}"), helo.to_owned()),
            Some(m) => ("smtp.mailfrom", m.to_owned(), m.rsplit_once('@').map_or(helo, |(_, d)| d).to_owned()),
            None => ("smtp.helo", helo.to_owned(), helo.to_owned()),
        };
        let props = vec![(prop, identity.clone())];
        self.timed("spf", props.clone(), async {
            if domain.is_empty() || domain.parse::<IpAddr>().is_ok() || domain.starts_with('[') {
                return Check { method: "spf", outcome: Outcome::None, reason: format!("no domain to check in {identity:?}"), props };
            }
            let tally = dns::Tally::default();
            let (txt, mx, v4, v6, ptr) = (tally.txt(), tally.mx(), tally.v4(), tally.v6(), tally.ptr());
            let host = self.settings.authserv_id.as_str();
            let params = match mail_from {
                Some(m) => SpfParameters::verify_mail_from(sender.ip, helo, host, m),
                None => SpfParameters::verify_ehlo(sender.ip, helo, host),
            };
            let params = Parameters::new(params).with_txt_cache(&txt).with_mx_cache(&mx).with_ipv4_cache(&v4).with_ipv6_cache(&v6).with_ptr_cache(&ptr);
            let out = self.resolver.verify_spf(params).await;
            let result = out.result();
            // Every unanswered name but the one that ended evaluation
            // with a DNS error was void (dns.rs).
            let voids = tally.unanswered().saturating_sub(usize::from(result == SpfResult::TempError));
            let ip = sender.ip;
            let (outcome, reason) = if voids > 2 {
                (Outcome::PermError, format!("{voids} void DNS lookups evaluating the SPF record of {domain} (RFC 7208 4.6.4 allows 2)"))
            } else {
                match result {
                    SpfResult::Pass => (Outcome::Pass, format!("{domain} designates {ip} as permitted sender")),
                    SpfResult::Fail => (
                        Outcome::Fail,
                        match out.explanation() {
                            Some(x) => format!("{domain} does not designate {ip} as permitted sender: {x}"),
                            None => format!("{domain} does not designate {ip} as permitted sender"),
                        },
                    ),
                    SpfResult::SoftFail => (Outcome::SoftFail, format!("{domain} does not designate {ip}, but only softly (~all)")),
                    SpfResult::Neutral => (Outcome::Neutral, format!("{domain} says nothing about {ip} (?all)")),
                    SpfResult::None => (Outcome::None, format!("{domain} has no SPF record")),
                    SpfResult::TempError => (Outcome::TempError, format!("DNS error evaluating the SPF record of {domain}")),
                    SpfResult::PermError => {
                        (Outcome::PermError, format!("the SPF record of {domain} is invalid, loops, or needs more than RFC 7208's 10 DNS mechanisms"))
                    }
                }
            };
            Check { method: "spf", outcome, reason, props }
        })
        .await
    }

    /// Every DKIM signature's result (at most `max_signatures`), with its
    /// d= domain. `parsed` is `None` for a message without a header section.
    /// (mail-auth parses strictly: no `l=` signatures, so at most four body
    /// hashes, whatever the number of DKIM-Signature fields.)
    pub async fn dkim(&self, parsed: Option<AuthenticatedMessage<'_>>) -> Vec<(Check, String)> {
        let Some(mut parsed) = parsed else {
            let c = Check {
                method: "dkim",
                outcome: Outcome::None,
                reason: "the message has no header to check".into(),
                props: vec![],
            };
            return vec![(c, String::new())];
        };
        let more = parsed.dkim_headers.len().saturating_sub(self.settings.max_signatures);
        parsed.dkim_headers.truncate(self.settings.max_signatures);
        if parsed.dkim_headers.is_empty() {
            let reason =
                if parsed.has_dkim_errors { "no DKIM-Signature that can be read" } else { "no DKIM-Signature" };
            return vec![(
                Check { method: "dkim", outcome: Outcome::None, reason: reason.into(), props: vec![] },
                String::new(),
            )];
        }
        let verified = match tokio::time::timeout(self.settings.timeout, self.resolver.verify_dkim(&parsed)).await {
            Ok(v) => v,
            Err(_) => {
                let reason = format!("no answer within {}s", self.settings.timeout.as_secs());
                return vec![(
                    Check { method: "dkim", outcome: Outcome::TempError, reason, props: vec![] },
                    String::new(),
                )];
            }
        };
        let mut out = Vec::new();
        for v in &verified {
            let (d, s) = v.signature().map(|s| (s.d.to_ascii_lowercase(), s.s.clone())).unwrap_or_default();
            let (outcome, reason) = match v.result() {
                DkimResult::Pass => (Outcome::Pass, format!("signature of {d} verified")),
                DkimResult::Neutral(e) => (Outcome::Neutral, e.to_string()),
                DkimResult::Fail(e) => (Outcome::Fail, e.to_string()),
                DkimResult::PermError(e) => (Outcome::PermError, e.to_string()),
                DkimResult::TempError(e) => (Outcome::TempError, e.to_string()),
                DkimResult::None => (Outcome::None, String::new()),
            };
            let mut props = Vec::new();
            if !d.is_empty() {
                props.push(("header.d", d.clone()));
                props.push(("header.s", s));
            }
            out.push((Check { method: "dkim", outcome, reason, props }, d));
        }
        if more > 0 {
            if let Some((c, _)) = out.last_mut() {
                c.reason.push_str(&format!(" ({more} more signatures not checked)"));
            }
        }
        out
    }

    /// Every check for one message, and what to do with it.
    pub async fn check(&self, sender: &Sender<'_>, message: &[u8]) -> Report {
        let parsed = AuthenticatedMessage::parse(message);
        let authors = parsed.as_ref().map(author_domains).unwrap_or_default();
        let (iprev, spf_helo, spf_from, dkim) = tokio::join!(
            self.iprev(sender.ip),
            self.spf(sender, None),
            self.spf(sender, Some(sender.mail_from)),
            self.dkim(parsed)
        );
        let mut checks = vec![iprev, spf_helo, spf_from.clone()];
        let spf_domain = match sender.mail_from.rsplit_once('@') {
            Some((_, d)) => d.to_owned(),
            None => sender.helo.to_owned(),
        };
        let dkim_for_dmarc: Vec<(String, Outcome)> = dkim.iter().map(|(c, d)| (d.clone(), c.outcome)).collect();
        checks.extend(dkim.into_iter().map(|(c, _)| c));

        let mut verdict = Verdict::Accept;
        let mut dmarc_passed = false;
        if authors.is_empty() {
            checks.push(Check {
                method: "dmarc",
                outcome: Outcome::None,
                reason: "no From: address with a domain".into(),
                props: vec![],
            });
        }
        for from_domain in &authors {
            let inputs = dmarc::Inputs {
                from_domain,
                spf_domain: &spf_domain,
                spf: spf_from.outcome,
                dkim: dkim_for_dmarc.clone(),
            };
            let props = vec![("header.from", from_domain.clone())];
            let (check, requested) =
                match tokio::time::timeout(self.settings.timeout, dmarc::evaluate(&self.resolver, &self.psl, &inputs))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        let reason = format!("no answer within {}s", self.settings.timeout.as_secs());
                        (Check { method: "dmarc", outcome: Outcome::TempError, reason, props }, dmarc::Requested::None)
                    }
                };
            dmarc_passed |= check.outcome == Outcome::Pass;
            let action = match requested {
                dmarc::Requested::Reject => self.settings.dmarc_reject,
                dmarc::Requested::Quarantine => self.settings.dmarc_quarantine,
                dmarc::Requested::None => Action::Ignore,
            };
            let why = format!("DMARC policy of {from_domain} (p={}): {}", requested.as_str(), check.reason);
            verdict = worse(verdict, action, why);
            checks.push(check);
        }
        if spf_from.outcome == Outcome::Fail && !dmarc_passed {
            verdict = worse(verdict, self.settings.spf_fail, format!("SPF: {}", spf_from.reason));
        }
        Report { checks, verdict }
    }

    /// Our Authentication-Results field for `report`.
    pub fn header(&self, report: &Report) -> String {
        header::format(&self.settings.authserv_id, &report.checks)
    }
}

/// The stricter of a verdict so far and an action.
fn worse(so_far: Verdict, action: Action, why: String) -> Verdict {
    match (so_far, action) {
        (v @ Verdict::Reject(_), _) => v,
        (_, Action::Reject) => Verdict::Reject(why),
        (v @ Verdict::Tag(_), _) => v,
        (_, Action::Tag) => Verdict::Tag(why),
        (v, Action::Ignore) => v,
    }
}

/// At most this many author domains are evaluated (RFC 5322 allows
/// several From: mailboxes; each is checked and the strictest wins, so a
/// second address cannot hide a failing one).
const MAX_AUTHOR_DOMAINS: usize = 4;

/// The distinct domains of the From: addresses, lower case.
fn author_domains(parsed: &AuthenticatedMessage<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for from in &parsed.from {
        if let Some((_, d)) = from.rsplit_once('@') {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() && !out.contains(&d) && out.len() < MAX_AUTHOR_DOMAINS {
                out.push(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_explains_each_check_and_the_verdict() {
        let check = |method, outcome, reason: &str, props: Vec<(&'static str, String)>| Check {
            method,
            outcome,
            reason: reason.into(),
            props,
        };
        let report = Report {
            checks: vec![
                check(
                    "iprev",
                    Outcome::Pass,
                    "192.0.2.1 is mail.d.example, which resolves back to it",
                    vec![("policy.iprev", "192.0.2.1".into())],
                ),
                check(
                    "spf",
                    Outcome::Fail,
                    "d.example does not designate 192.0.2.1\u{202e}\r\nX: y",
                    vec![("smtp.mailfrom", "a@d.example".into())],
                ),
                check(
                    "dmarc",
                    Outcome::Fail,
                    "no aligned pass",
                    vec![("header.from", "d.example".into()), ("policy.dmarc", "reject".into())],
                ),
            ],
            verdict: Verdict::Reject("DMARC policy of d.example (p=reject): no aligned pass".into()),
        };
        let text = report.to_string();
        assert_eq!(
            text,
            "iprev  pass      policy.iprev=192.0.2.1\n       192.0.2.1 is mail.d.example, which resolves back to it\n\
             spf    fail      smtp.mailfrom=a@d.example\n       d.example does not designate 192.0.2.1\\u{202e}\\r\\nX: y\n\
             dmarc  fail      header.from=d.example policy.dmarc=reject\n       no aligned pass\n\
             verdict: reject 550 5.7.1 (DMARC policy of d.example (p=reject): no aligned pass)\n"
        );
        assert_eq!(report.get("dmarc").unwrap().outcome, Outcome::Fail);
        // The header field: one result per folded line, nothing from DNS can end it.
        let field = header::format("mx.example.net", &report.checks);
        assert!(field.starts_with("Authentication-Results: mx.example.net;\r\n\tiprev=pass reason=\""), "{field}");
        assert_eq!(field.matches("\r\n").count(), 4, "{field}");
        assert!(field.contains("reason=\"d.example does not designate 192.0.2.1???X: y\""), "{field}");
        assert_eq!(header::format("mx.example.net", &[]), "Authentication-Results: mx.example.net; none\r\n");
    }

    #[test]
    fn the_strictest_action_wins() {
        let v = worse(Verdict::Accept, Action::Tag, "q".into());
        assert_eq!(v, Verdict::Tag("q".into()));
        let v = worse(v, Action::Reject, "r".into());
        assert_eq!(v, Verdict::Reject("r".into()));
        assert_eq!(worse(v.clone(), Action::Tag, "t".into()), v);
        assert_eq!(worse(Verdict::Accept, Action::Ignore, "i".into()), Verdict::Accept);
    }
}
