//! DMARC (RFC 7489) with the Public Suffix List.
//!
//! mail-auth 0.13 evaluates DMARCbis' DNS tree walk; the issue (and most
//! receivers today) use RFC 7489's organizational domain, the registrable
//! domain under the Public Suffix List: one TXT question at the author
//! domain, one more at its organizational domain when the first has no
//! record, none for alignment. Records are parsed by mail-auth.

use super::{Check, Outcome};
use mail_auth::common::cache::NoCache;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};
use mail_auth::{DnsError, Error, MessageAuthenticator, Txt};
use publicsuffix::{List, Psl};
use std::sync::Arc;

/// The Public Suffix List, read once at start-up.
pub struct Suffixes(List);

impl Suffixes {
    /// Reads the list (the file of Debian's `publicsuffix` package, or
    /// any copy of publicsuffix.org's list).
    pub fn load(path: &std::path::Path) -> Result<Suffixes, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read the Public Suffix List {}: {e}", path.display()))?;
        Suffixes::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Suffixes, String> {
        let list = List::from_bytes(bytes).map_err(|e| format!("not a Public Suffix List: {e}"))?;
        if list.is_empty() {
            return Err("the Public Suffix List is empty".into());
        }
        Ok(Suffixes(list))
    }

    /// The organizational domain (RFC 7489 3.2): the public suffix and one
    /// label more; a name that is itself a public suffix is its own.
    pub fn organizational<'a>(&self, domain: &'a str) -> &'a str {
        let d = domain.trim_end_matches('.');
        match self.0.domain(d.as_bytes()) {
            // The registrable domain is a suffix of `d`: cut at a char boundary.
            Some(org) => d.get(d.len() - org.as_bytes().len()..).unwrap_or(d),
            None => d,
        }
    }
}

/// The policy a failing message is handled by, as the domain owner asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    None,
    Quarantine,
    Reject,
}

impl Requested {
    pub fn as_str(self) -> &'static str {
        match self {
            Requested::None => "none",
            Requested::Quarantine => "quarantine",
            Requested::Reject => "reject",
        }
    }
}

/// What DMARC needs from the other checks.
pub struct Inputs<'a> {
    /// The RFC5322.From domain.
    pub from_domain: &'a str,
    /// The domain SPF checked for MAIL FROM (the HELO name for `<>`), and
    /// whether it passed or had a temporary error.
    pub spf_domain: &'a str,
    pub spf: Outcome,
    /// (d=, result) of each DKIM signature.
    pub dkim: Vec<(String, Outcome)>,
}

/// The DMARC result and the policy to apply on failure.
pub async fn evaluate(resolver: &MessageAuthenticator, psl: &Suffixes, inputs: &Inputs<'_>) -> (Check, Requested) {
    let from = inputs.from_domain.trim_end_matches('.').to_ascii_lowercase();
    let org = psl.organizational(&from).to_owned();
    let props = vec![("header.from", from.clone())];
    let check = |outcome, reason: String| Check { method: "dmarc", outcome, reason, props: props.clone() };

    let (record, at_org) = match lookup(resolver, &from).await {
        Ok(Some(r)) => (r, false),
        Ok(None) if org != from => match lookup(resolver, &org).await {
            Ok(Some(r)) => (r, true),
            Ok(None) => {
                return (
                    check(Outcome::None, format!("no DMARC record at _dmarc.{from} or _dmarc.{org}")),
                    Requested::None,
                )
            }
            Err(e) => return (check(Outcome::TempError, format!("_dmarc.{org}: {e}")), Requested::None),
        },
        Ok(None) => return (check(Outcome::None, format!("no DMARC record at _dmarc.{from}")), Requested::None),
        Err(e) => return (check(Outcome::TempError, format!("_dmarc.{from}: {e}")), Requested::None),
    };
    let mut policy = if at_org { record.sp } else { record.p };
    if policy == Policy::Unspecified {
        policy = Policy::None;
    }
    // t=y (testing): one step milder.
    if record.t {
        policy = match policy {
            Policy::Reject => Policy::Quarantine,
            _ => Policy::None,
        };
    }
    let requested = match policy {
        Policy::Reject => Requested::Reject,
        Policy::Quarantine => Requested::Quarantine,
        Policy::None | Policy::Unspecified => Requested::None,
    };
    let aligned = |d: &str, mode: Alignment| {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        d == from || (mode == Alignment::Relaxed && psl.organizational(&d) == org)
    };
    let mut props = props.clone();
    props.push(("policy.dmarc", requested.as_str().to_owned()));
    let source = if at_org { format!("_dmarc.{org} (organizational domain)") } else { format!("_dmarc.{from}") };

    let spf_aligned = aligned(inputs.spf_domain, record.aspf);
    if inputs.spf == Outcome::Pass && spf_aligned {
        let reason = format!("SPF passed for {} and is aligned; policy from {source}", inputs.spf_domain);
        return (Check { method: "dmarc", outcome: Outcome::Pass, reason, props }, Requested::None);
    }
    if let Some((d, _)) = inputs.dkim.iter().find(|(d, o)| *o == Outcome::Pass && aligned(d, record.adkim)) {
        let reason = format!("DKIM signature of {d} passed and is aligned; policy from {source}");
        return (Check { method: "dmarc", outcome: Outcome::Pass, reason, props }, Requested::None);
    }
    // No aligned pass. A temporary error of an aligned identifier may
    // have hidden one: never a rejection on that (temperror).
    let spf_temp = inputs.spf == Outcome::TempError && spf_aligned;
    if let Some((d, _)) = inputs.dkim.iter().find(|(d, o)| *o == Outcome::TempError && aligned(d, record.adkim)) {
        let reason = format!("DKIM signature of {d} could not be checked now (DNS); policy from {source}");
        return (Check { method: "dmarc", outcome: Outcome::TempError, reason, props }, Requested::None);
    }
    if spf_temp {
        let reason = format!("SPF of {} could not be checked now (DNS); policy from {source}", inputs.spf_domain);
        return (Check { method: "dmarc", outcome: Outcome::TempError, reason, props }, Requested::None);
    }
    let reason = format!(
        "neither SPF ({} for {}) nor any DKIM signature passed aligned with {from}; p={} from {source}",
        inputs.spf.as_str(),
        if inputs.spf_domain.is_empty() { "-" } else { inputs.spf_domain },
        requested.as_str()
    );
    (Check { method: "dmarc", outcome: Outcome::Fail, reason, props }, requested)
}

/// The DMARC record at `_dmarc.<domain>`: `Ok(None)` when there is none
/// (no such name, no TXT, no record starting with v=DMARC1, or one that
/// does not parse: RFC 7489 6.6.3 says to ignore those), `Err` for a
/// temporary DNS failure.
async fn lookup(resolver: &MessageAuthenticator, domain: &str) -> Result<Option<Arc<Dmarc>>, String> {
    match resolver.txt_lookup::<Dmarc>(format!("_dmarc.{domain}."), None::<&NoCache<Box<str>, Txt>>).await {
        Ok(r) => Ok(Some(r)),
        Err(e @ Error::Dns(DnsError::Resolver(_))) => Err(e.to_string()),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::Suffixes;

    #[test]
    fn organizational_domain_is_one_label_under_the_public_suffix() {
        let psl = Suffixes::parse(
            b"// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\n*.ck\n!www.ck\n// ===END ICANN DOMAINS===\n",
        )
        .unwrap();
        for (name, org) in [
            ("mail.example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("example.co.uk.", "example.co.uk"),
            ("co.uk", "co.uk"),
            ("x.y.foo.ck", "y.foo.ck"),
            ("a.www.ck", "www.ck"),
            // Not in the list: the last label is the suffix (the "*" rule).
            ("mail.d.example", "d.example"),
        ] {
            assert_eq!(psl.organizational(name), org, "{name}");
        }
        assert!(Suffixes::parse(b"").is_err());
    }

    #[test]
    fn debians_list_when_installed() {
        // The real file, as `port25 serve` reads it: required where the
        // test suite runs (.ci/install-deps installs publicsuffix).
        let psl = Suffixes::load(std::path::Path::new("/usr/share/publicsuffix/public_suffix_list.dat"))
            .expect("Debian package publicsuffix is needed (apt-get install publicsuffix)");
        assert_eq!(psl.organizational("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(psl.organizational("mail.google.com"), "google.com");
        assert_eq!(psl.organizational("x.blogspot.com"), "x.blogspot.com");
    }
}
