//! DANE for SMTP (RFC 7672): matching the certificate an MX presents
//! against its TLSA records (`_25._tcp.MX`). Only what RFC 7672 §3.1
//! asks of SMTP: usages DANE-TA(2) and DANE-EE(3) (PKIX-TA(0) and
//! PKIX-EE(1) are unusable for SMTP), selectors Cert(0) and SPKI(1),
//! matching Full(0), SHA2-256(1) and SHA2-512(2). Records with anything
//! else are unusable; a set with no usable record means opportunistic
//! TLS (§2.2), never a failure.
//!
//! - DANE-EE: the server's own certificate (or its key) matches; its names
//!   and dates are not looked at (§3.1.1).
//! - DANE-TA: a certificate in the chain the server sent matches; the
//!   server's certificate must chain to it and be valid for one of the
//!   reference names (the MX host name, §3.2.2), at its dates.
//!
//! Pure functions over DER; the DNS side (DNSSEC-validated lookups) is
//! the caller's.

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;
use std::sync::Arc;

/// One TLSA record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Whether RFC 7672 lets SMTP use this record.
    pub fn usable(&self) -> bool {
        matches!(self.usage, 2 | 3)
            && matches!(self.selector, 0 | 1)
            && match self.matching {
                0 => !self.data.is_empty(),
                1 => self.data.len() == 32,
                2 => self.data.len() == 64,
                _ => false,
            }
    }

    /// Whether `cert` matches this record's selector and matching type.
    fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        let selected: Vec<u8> = match self.selector {
            0 => cert.as_ref().to_vec(),
            _ => match webpki::EndEntityCert::try_from(cert) {
                Ok(ee) => ee.subject_public_key_info().as_ref().to_vec(),
                Err(_) => return false,
            },
        };
        match self.matching {
            0 => selected == self.data,
            1 => sha2::Sha256::digest(&selected).as_slice() == self.data.as_slice(),
            2 => sha2::Sha512::digest(&selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }

    /// As a zone file writes it: `3 1 1 ab12...`.
    pub fn presentation(&self) -> String {
        let hex: String = self.data.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {} {} {hex}", self.usage, self.selector, self.matching)
    }
}

/// What DANE needs for one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneHost {
    /// The TLSA records at `_25._tcp.HOST` (at least one usable).
    pub records: Vec<crate::dane::Tlsa>,
    /// The names a DANE-TA certificate may be valid for (RFC 7672
    /// §3.2.2): the MX host, then the recipient domain.
    pub names: Vec<String>,
    /// The policy as TLS-RPT reports it (`tlsa`).
    pub desc: std::sync::Arc<crate::tls_rpt::PolicyDesc>,
}

/// Whether the chain the server sent (its certificate first) matches one of
/// the usable `records` (at least one must be usable: the caller checked),
/// for the reference name `host`. `Err` says why not.
pub fn verify(chain: &[CertificateDer<'_>], records: &[Tlsa], host: &str) -> Result<(), String> {
    let Some((ee, rest)) = chain.split_first() else { return Err("the server sent no certificate".into()) };
    let usable: Vec<&Tlsa> = records.iter().filter(|r| r.usable()).collect();
    if usable.iter().any(|r| r.usage == 3 && r.matches(ee)) {
        return Ok(());
    }
    let mut why = "no TLSA record matches the certificate or its chain".to_owned();
    for ta in chain.iter().filter(|c| usable.iter().any(|r| r.usage == 2 && r.matches(c))) {
        match chains_to(ee, rest, ta, host) {
            Ok(()) => return Ok(()),
            Err(e) => why = format!("the chain has the DANE-TA certificate, but {e}"),
        }
    }
    Err(why)
}

/// The server's certificate, with the intermediates it sent, chains to
/// `ta` and is valid for `host` now.
fn chains_to(
    ee: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    ta: &CertificateDer<'_>,
    host: &str,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    // A TA that is not a well-formed CA certificate (a self-signed leaf,
    // say) cannot anchor a chain: only DANE-EE would match it.
    roots.add(ta.clone().into_owned()).map_err(|e| format!("the DANE-TA certificate is unusable: {e}"))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.trim_end_matches('.').to_owned()).map_err(|e| format!("{host}: {e}"))?;
    let others: Vec<CertificateDer<'_>> = intermediates.iter().filter(|c| *c != ta).cloned().collect();
    verifier
        .verify_server_cert(ee, &others, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| format!("the certificate does not chain to it for {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(selector: u8, matching: u8, cert: &CertificateDer<'_>) -> Tlsa {
        let t = Tlsa { usage: 3, selector, matching, data: Vec::new() };
        let selected = match selector {
            0 => cert.as_ref().to_vec(),
            _ => webpki::EndEntityCert::try_from(cert).unwrap().subject_public_key_info().as_ref().to_vec(),
        };
        let data = match matching {
            0 => selected,
            1 => sha2::Sha256::digest(&selected).to_vec(),
            _ => sha2::Sha512::digest(&selected).to_vec(),
        };
        Tlsa { data, ..t }
    }

    fn pki() -> (CertificateDer<'static>, CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "DANE-TA test");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            p.signed_by(&key, &ca_cert, &ca_key).unwrap().der().clone()
        };
        (ca_cert.der().clone(), leaf("mx.them.example"), leaf("other.example"))
    }

    #[test]
    fn dane_ee_matches_the_certificate_or_its_key_whatever_its_name() {
        let (ca, ee, other) = pki();
        for (s, m) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
            let r = digest(s, m, &ee);
            assert!(r.usable());
            assert!(
                verify(std::slice::from_ref(&ee), std::slice::from_ref(&r), "mx.them.example").is_ok(),
                "3 {s} {m}"
            );
            assert!(
                verify(std::slice::from_ref(&ee), std::slice::from_ref(&r), "unrelated.example").is_ok(),
                "DANE-EE ignores names"
            );
            assert!(verify(&[other.clone(), ca.clone()], &[r], "mx.them.example").is_err(), "3 {s} {m} other key");
        }
    }

    #[test]
    fn dane_ta_needs_the_chain_and_the_name() {
        let (ca, ee, other) = pki();
        let ta = Tlsa { usage: 2, ..digest(0, 1, &ca) };
        assert!(verify(&[ee.clone(), ca.clone()], std::slice::from_ref(&ta), "mx.them.example").is_ok());
        let e = verify(&[other.clone(), ca.clone()], std::slice::from_ref(&ta), "mx.them.example").unwrap_err();
        assert!(e.contains("does not chain to it"), "{e}");
        assert!(
            verify(std::slice::from_ref(&ee), std::slice::from_ref(&ta), "mx.them.example").is_err(),
            "TA not sent"
        );
        let spki = Tlsa { usage: 2, ..digest(1, 1, &ca) };
        assert!(verify(&[ee, ca], &[spki], "mx.them.example").is_ok());
    }

    #[test]
    fn only_smtp_usages_selectors_and_matching_types_are_usable() {
        let ok = Tlsa { usage: 3, selector: 1, matching: 1, data: vec![0; 32] };
        assert!(ok.usable());
        for bad in [
            Tlsa { usage: 1, ..ok.clone() },
            Tlsa { usage: 0, ..ok.clone() },
            Tlsa { selector: 2, ..ok.clone() },
            Tlsa { matching: 3, ..ok.clone() },
            Tlsa { data: vec![0; 31], ..ok.clone() },
            Tlsa { matching: 2, ..ok.clone() },
        ] {
            assert!(!bad.usable(), "{bad:?}");
        }
        assert_eq!(ok.presentation(), format!("3 1 1 {}", "00".repeat(32)));
    }
}
