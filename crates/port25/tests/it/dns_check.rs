//! `port25 dns check` (issue 15, section 5) against the test DNS server:
//! a correct zone passes with nothing to publish; the same zone broken in
//! each way gets a finding that says what is wrong and prints the record
//! that fixes it.

use crate::dns::{reverse_name, DnsServer, Failure, Rr};
use crate::harness::BIN;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

const SENDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);
const WEB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

/// The DKIM key of the configuration and the TXT value `dkim keygen` said to publish.
fn keygen(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", "example.net", "--selector", "s1", "--bits", "1024", "--out"])
        .arg(dir.join("s1.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // s1._domainkey.example.net. IN TXT ( "v=DKIM1; k=rsa; p=..." )
    let line = String::from_utf8(out.stdout).unwrap();
    line.split('"').skip(1).step_by(2).collect()
}

fn good_zone(dkim: &str) -> Vec<(String, Rr)> {
    let txt = |name: &str, v: &str| {
        (name.to_owned(), Rr::Txt(v.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect()))
    };
    vec![
        ("example.net".into(), Rr::Mx(10, "mx.example.net".into())),
        ("mx.example.net".into(), Rr::A(SENDER)),
        (reverse_name(SENDER.into()), Rr::Ptr("mx.example.net".into())),
        txt("example.net", "v=spf1 mx -all"),
        txt("mx.example.net", "v=spf1 a -all"),
        txt("s1._domainkey.example.net", dkim),
        txt("_dmarc.example.net", "v=DMARC1; p=reject; rua=mailto:dmarc@example.net"),
        txt("_mta-sts.example.net", "v=STSv1; id=20261202T1"),
        // The policy is fetched: crate::mta_sts::serve_policy serves it there.
        ("mta-sts.example.net".into(), Rr::A(Ipv4Addr::LOCALHOST)),
        txt("_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:tlsrpt@example.net"),
        ("_submissions._tcp.example.net".into(), Rr::Srv(0, 1, 465, "mx.example.net".into())),
        ("_submission._tcp.example.net".into(), Rr::Srv(10, 1, 587, "mx.example.net".into())),
        ("autoconfig.example.net".into(), Rr::A(WEB)),
        ("autodiscover.example.net".into(), Rr::A(WEB)),
    ]
}

fn serve(zone: &[(String, Rr)]) -> DnsServer {
    let dns = DnsServer::start();
    for (name, rr) in zone {
        dns.add(name, rr.clone());
    }
    dns
}

/// The good zone's MTA-STS policy (served by crate::mta_sts::serve_policy).
const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx.example.net\nmax_age: 604800\n";

fn config(dir: &Path, dns: &DnsServer) -> std::path::PathBuf {
    let path = dir.join(format!("port25-{}.toml", dns.addr.port()));
    // The policy server's test CA and port, when the test runs one.
    let sts = match std::fs::read_to_string(dir.join("mta-sts.port")) {
        Ok(port) => format!("mta_sts_ca = \"{}/ca.pem\"\nmta_sts_port = {port}\n", dir.display()),
        Err(_) => String::new(),
    };
    let text = format!(
        "hostname = \"mx.example.net\"\ndata_dir = \"{d}/data\"\n[mx]\ndomains = [\"example.net\"]\n\
         [outbound]\nnameservers = [\"{ns}\"]\ndns_timeout_secs = 2\nmta_sts_timeout_secs = 5\n{sts}[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"s1\"\nprivate_key = \"{d}/s1.pem\"\n\
         [http]\nsubmission_host = \"mx.example.net\"\n",
        d = dir.display(),
        ns = dns.addr
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn check(dir: &Path, dns: &DnsServer) -> (i32, String) {
    let out =
        Command::new(BIN).args(["dns", "check", "example.net", "--config"]).arg(config(dir, dns)).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The zone without the records `drop` matches, with `add`.
fn variant(zone: &[(String, Rr)], drop: impl Fn(&str, &Rr) -> bool, add: Vec<(&str, Rr)>) -> Vec<(String, Rr)> {
    let mut z: Vec<(String, Rr)> = zone.iter().filter(|(n, r)| !drop(n, r)).cloned().collect();
    z.extend(add.into_iter().map(|(n, r)| (n.to_owned(), r)));
    z
}

fn txt(v: &str) -> Rr {
    Rr::Txt(vec![v.to_owned()])
}

fn is_txt(r: &Rr) -> bool {
    matches!(r, Rr::Txt(_))
}

#[test]
fn a_correct_zone_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let _web = crate::mta_sts::serve_policy(dir.path(), "example.net", POLICY);
    let zone = good_zone(&keygen(dir.path()));
    let dns = serve(&zone);
    let (code, out) = check(dir.path(), &dns);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors, 0 warnings, 12 ok"), "{out}");
    for topic in ["MX", "PTR", "SPF", "DKIM", "DMARC", "MTA-STS", "TLS-RPT", "SRV", "autoconfig"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("ok    {topic} "))), "no ok line for {topic}: {out}");
    }
    assert!(!out.contains("publish:"), "{out}");
}

/// (what is broken, the zone, exit status, what the output must say, the record it must print)
type Case<'a> = (&'a str, Vec<(String, Rr)>, i32, String, String);

#[test]
fn each_broken_record_is_named_with_the_record_to_publish() {
    let dir = tempfile::tempdir().unwrap();
    let _web = crate::mta_sts::serve_policy(dir.path(), "example.net", POLICY);
    let dkim = keygen(dir.path());
    let zone = good_zone(&dkim);
    let other_key = {
        let d = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["dkim", "keygen", "--domain", "example.net", "--bits", "1024", "--out"])
            .arg(d.path().join("k.pem"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().split('"').skip(1).step_by(2).collect::<String>()
    };
    let dkim_publish =
        format!("publish:   s1._domainkey.example.net. 3600 IN TXT \"{}", dkim.chars().take(60).collect::<String>());
    let ptr = reverse_name(SENDER.into());
    let cases: Vec<Case> = vec![
        (
            "no MX",
            variant(&zone, |n, r| n == "example.net" && matches!(r, Rr::Mx(..)), vec![]),
            1,
            "ERROR MX         example.net has no MX record".into(),
            "publish:   example.net. 3600 IN MX 10 mx.example.net.".into(),
        ),
        (
            "null MX",
            variant(
                &zone,
                |n, r| n == "example.net" && matches!(r, Rr::Mx(..)),
                vec![("example.net", Rr::Mx(0, ".".into()))],
            ),
            1,
            "null MX".into(),
            "publish:   example.net. 3600 IN MX 10 mx.example.net.".into(),
        ),
        (
            "MX host without an address",
            variant(
                &zone,
                |n, r| n == "example.net" && matches!(r, Rr::Mx(..)),
                vec![("example.net", Rr::Mx(10, "mail.example.net".into()))],
            ),
            1,
            "ERROR MX         MX host mail.example.net has no A or AAAA record".into(),
            "publish:   mail.example.net. 3600 IN A <the address of mail.example.net>".into(),
        ),
        (
            "no PTR",
            variant(&zone, |n, _| n == ptr, vec![]),
            1,
            "ERROR PTR        192.0.2.25 has no PTR record".into(),
            format!("publish:   {ptr}. 3600 IN PTR mx.example.net."),
        ),
        (
            "PTR not forward-confirmed",
            variant(&zone, |n, _| n == ptr, vec![(&ptr, Rr::Ptr("host-25.isp.example".into()))]),
            1,
            "192.0.2.25 has PTR host-25.isp.example, but that name does not resolve back to 192.0.2.25".into(),
            "publish:   host-25.isp.example. 3600 IN A 192.0.2.25".into(),
        ),
        (
            "PTR to another name than the HELO name",
            variant(
                &zone,
                |n, _| n == ptr,
                vec![(&ptr, Rr::Ptr("out.example.net".into())), ("out.example.net", Rr::A(SENDER))],
            ),
            0,
            "WARN  PTR        192.0.2.25 has PTR out.example.net, confirmed, but the HELO name is mx.example.net"
                .into(),
            format!("publish:   {ptr}. 3600 IN PTR mx.example.net."),
        ),
        (
            "no SPF",
            variant(&zone, |n, r| n == "example.net" && is_txt(r), vec![]),
            1,
            "ERROR SPF        example.net has no SPF record".into(),
            "publish:   example.net. 3600 IN TXT \"v=spf1 mx ip4:192.0.2.25 -all\"".into(),
        ),
        (
            "SPF without the sending address",
            variant(
                &zone,
                |n, r| n == "example.net" && is_txt(r),
                vec![("example.net", txt("v=spf1 ip4:198.51.100.0/24 -all"))],
            ),
            1,
            "the SPF record of example.net does not cover 192.0.2.25 (result Fail)".into(),
            "publish:   example.net. 3600 IN TXT \"v=spf1 ip4:198.51.100.0/24 ip4:192.0.2.25 -all\"".into(),
        ),
        (
            "two SPF records",
            variant(&zone, |_, _| false, vec![("example.net", txt("v=spf1 a -all"))]),
            1,
            "example.net has 2 SPF records".into(),
            "publish:   example.net. 3600 IN TXT \"v=spf1 mx ip4:192.0.2.25 -all\"".into(),
        ),
        (
            "SPF +all",
            variant(&zone, |n, r| n == "example.net" && is_txt(r), vec![("example.net", txt("v=spf1 mx +all"))]),
            0,
            "WARN  SPF        the SPF record of example.net ends in \"+all\"".into(),
            "publish:   example.net. 3600 IN TXT \"v=spf1 mx -all\"".into(),
        ),
        (
            "no SPF for the HELO name",
            variant(&zone, |n, r| n == "mx.example.net" && is_txt(r), vec![]),
            0,
            "WARN  SPF        the HELO name mx.example.net has no SPF record".into(),
            "publish:   mx.example.net. 3600 IN TXT \"v=spf1 a -all\"".into(),
        ),
        (
            "HELO SPF without the sending address",
            variant(
                &zone,
                |n, r| n == "mx.example.net" && is_txt(r),
                vec![("mx.example.net", txt("v=spf1 ip4:198.51.100.7 -all"))],
            ),
            0,
            "WARN  SPF        the SPF record of the HELO name mx.example.net does not pass 192.0.2.25 (result Fail)"
                .into(),
            "publish:   mx.example.net. 3600 IN TXT \"v=spf1 a -all\"".into(),
        ),
        (
            "no DKIM record",
            variant(&zone, |n, _| n == "s1._domainkey.example.net", vec![]),
            1,
            "ERROR DKIM       no DKIM record at s1._domainkey.example.net".into(),
            dkim_publish.clone(),
        ),
        (
            "DKIM record of another key",
            variant(
                &zone,
                |n, _| n == "s1._domainkey.example.net",
                vec![(
                    "s1._domainkey.example.net",
                    Rr::Txt(
                        other_key.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect(),
                    ),
                )],
            ),
            1,
            "holds another key than the configured one".into(),
            dkim_publish.clone(),
        ),
        (
            "DKIM record revoked",
            variant(
                &zone,
                |n, _| n == "s1._domainkey.example.net",
                vec![("s1._domainkey.example.net", txt("v=DKIM1; k=rsa; p="))],
            ),
            1,
            "is revoked (empty p=)".into(),
            dkim_publish.clone(),
        ),
        (
            "no DMARC",
            variant(&zone, |n, _| n == "_dmarc.example.net", vec![]),
            1,
            "ERROR DMARC      example.net has no DMARC record".into(),
            "publish:   _dmarc.example.net. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.net\""
                .into(),
        ),
        (
            "DMARC p=none",
            variant(
                &zone,
                |n, _| n == "_dmarc.example.net",
                vec![("_dmarc.example.net", txt("v=DMARC1; p=none; rua=mailto:d@example.net"))],
            ),
            0,
            "WARN  DMARC      the DMARC policy of example.net is p=none".into(),
            "publish:   _dmarc.example.net. 3600 IN TXT \"v=DMARC1; p=quarantine".into(),
        ),
        (
            "DMARC unreadable",
            variant(&zone, |n, _| n == "_dmarc.example.net", vec![("_dmarc.example.net", txt("v=DMARC1; p"))]),
            1,
            "ERROR DMARC      the DMARC record of example.net cannot be read: \"v=DMARC1; p\"".into(),
            "publish:   _dmarc.example.net. 3600 IN TXT".into(),
        ),
        (
            "no MTA-STS",
            variant(&zone, |n, _| n == "_mta-sts.example.net", vec![]),
            0,
            "WARN  MTA-STS    example.net publishes no MTA-STS policy".into(),
            "publish:   _mta-sts.example.net. 3600 IN TXT \"v=STSv1; id=1\"".into(),
        ),
        (
            "MTA-STS without id",
            variant(&zone, |n, _| n == "_mta-sts.example.net", vec![("_mta-sts.example.net", txt("v=STSv1;"))]),
            1,
            "ERROR MTA-STS    the MTA-STS record of example.net is not \"v=STSv1; id=".into(),
            "publish:   _mta-sts.example.net. 3600 IN TXT \"v=STSv1; id=1\"".into(),
        ),
        (
            "MTA-STS policy host missing",
            variant(&zone, |n, _| n == "mta-sts.example.net", vec![]),
            1,
            "announces a policy but mta-sts.example.net has no address".into(),
            "publish:   mta-sts.example.net. 3600 IN CNAME mx.example.net.".into(),
        ),
        (
            "no TLS-RPT",
            variant(&zone, |n, _| n == "_smtp._tls.example.net", vec![]),
            0,
            "WARN  TLS-RPT    example.net publishes no TLS-RPT record".into(),
            "publish:   _smtp._tls.example.net. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.net\"".into(),
        ),
        (
            "TLS-RPT without rua",
            variant(
                &zone,
                |n, _| n == "_smtp._tls.example.net",
                vec![("_smtp._tls.example.net", txt("v=TLSRPTv1; ruf=x"))],
            ),
            1,
            "ERROR TLS-RPT    the TLS-RPT record of example.net needs rua=".into(),
            "publish:   _smtp._tls.example.net. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.net\"".into(),
        ),
        (
            "no submission SRV",
            variant(&zone, |n, _| n == "_submissions._tcp.example.net", vec![]),
            0,
            "WARN  SRV        no _submissions._tcp.example.net record (RFC 6186)".into(),
            "publish:   _submissions._tcp.example.net. 3600 IN SRV 0 1 465 mx.example.net.".into(),
        ),
        (
            "submission SRV on port 25",
            variant(
                &zone,
                |n, _| n == "_submission._tcp.example.net",
                vec![("_submission._tcp.example.net", Rr::Srv(10, 1, 25, "mx.example.net".into()))],
            ),
            1,
            "ERROR SRV        _submission._tcp.example.net points clients at port 25".into(),
            "publish:   _submission._tcp.example.net. 3600 IN SRV 10 1 587 mx.example.net.".into(),
        ),
        (
            "no autoconfig name",
            variant(&zone, |n, _| n == "autoconfig.example.net", vec![]),
            0,
            "WARN  autoconfig autoconfig.example.net does not resolve".into(),
            "publish:   autoconfig.example.net. 3600 IN CNAME mx.example.net.".into(),
        ),
    ];
    for (what, zone, want_code, says, publishes) in cases {
        let dns = serve(&zone);
        let (code, out) = check(dir.path(), &dns);
        assert_eq!(code, want_code, "{what}: exit status\n{out}");
        assert!(out.contains(&says), "{what}: no {says:?} in\n{out}");
        assert!(out.contains(&publishes), "{what}: no {publishes:?} in\n{out}");
    }
}

#[test]
fn a_lookup_that_fails_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let dns = serve(&good_zone(&keygen(dir.path())));
    dns.fail("_dmarc.example.net", 16, Failure::ServFail);
    let (code, out) = check(dir.path(), &dns);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ERROR DMARC      could not check: TXT lookup of _dmarc.example.net failed"), "{out}");
    // Outside [mx] domains: refused before any lookup.
    let out = Command::new(BIN)
        .args(["dns", "check", "other.example", "--config"])
        .arg(config(dir.path(), &dns))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not one of the [mx] domains"));
}
