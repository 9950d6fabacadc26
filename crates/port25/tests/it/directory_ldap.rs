//! [submission.directory] type = "ldap" against a real OpenLDAP slapd
//! (slapd, ldap-utils) started by each test with a generated slapd.conf and
//! an LDIF loaded with slapadd: bind as the user by a DN template, and
//! search-then-bind with a service account over ldaps:// with a private CA;
//! the sender addresses from `mail` and `mailAlternateAddress`; RFC 4515
//! escaping of the login; the cache missing after a password change.

use crate::directory::{addr, free_port, own_group, port25_with, rcpt, submit, Stop};
use crate::harness::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCHEMA: &str = "attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'mailAlternateAddress' EQUALITY caseIgnoreIA5Match \
                      SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )\n\
                      objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'port25MailUser' SUP top AUXILIARY MAY ( mailAlternateAddress ) )\n";

const LDIF: &str = "dn: dc=example,dc=net\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
dn: ou=people,dc=example,dc=net\nobjectClass: organizationalUnit\nou: people\n\n\
dn: cn=port25,dc=example,dc=net\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: port25\nuserPassword: service pw\n\n\
dn: uid=alice,ou=people,dc=example,dc=net\nobjectClass: inetOrgPerson\nobjectClass: port25MailUser\nuid: alice\ncn: Alice\nsn: A\n\
mail: alice@example.net\nmailAlternateAddress: a.smith@example.net\nuserPassword: alice pw\n\n\
dn: uid=bob,ou=people,dc=example,dc=net\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\nmail: bob@example.net\nuserPassword: bob pw\n";

pub(crate) struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
    pub server: Stop,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require("openssl")).current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Slapd {
    pub fn start() -> Slapd {
        let (slapd, slapadd) = (require("slapd"), require("slapadd"));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        std::fs::write(d.join("port25.schema"), SCHEMA).unwrap();
        std::fs::write(d.join("data.ldif"), LDIF).unwrap();
        // A private CA and a certificate for 127.0.0.1 signed by it.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=port25 test CA",
                "-days",
                "2",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             include {d}/port25.schema\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {d}/slapd.pid\n\
             TLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n\
             database mdb\nsuffix \"dc=example,dc=net\"\nrootdn \"cn=admin,dc=example,dc=net\"\nrootpw \"admin secret\"\ndirectory {d}/db\n\
             access to attrs=userPassword by self =xw by anonymous auth by * none\n\
             access to * by self read by dn.exact=\"cn=port25,dc=example,dc=net\" read by * none\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let out = Command::new(slapadd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .output()
            .unwrap();
        assert!(out.status.success(), "slapadd: {}", String::from_utf8_lossy(&out.stderr));
        let (port, tls_port) = (free_port(), free_port());
        let child = own_group(&mut Command::new(slapd))
            .args(["-d", "0", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("slapd.log")).unwrap())
            .spawn()
            .expect("start slapd");
        let server = Stop(Some(child));
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "slapd did not start: {}",
                std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd { dir, port, tls_port, server }
    }

    /// Changes a user's password as the administrator (ldappasswd).
    pub fn passwd(&self, uid: &str, new: &str) {
        let out = Command::new(require("ldappasswd"))
            .args([
                "-x",
                "-H",
                &format!("ldap://127.0.0.1:{}", self.port),
                "-D",
                "cn=admin,dc=example,dc=net",
                "-w",
                "admin secret",
                "-s",
                new,
            ])
            .arg(format!("uid={uid},ou=people,dc=example,dc=net"))
            .output()
            .unwrap();
        assert!(out.status.success(), "ldappasswd: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// AUTH PLAIN on the plaintext test listener with raw bytes.
fn auth_plain_raw(s: &crate::harness::Server, response: &[u8]) -> String {
    let mut c = Client::open(addr(s, "plain").parse().unwrap());
    c.cmd("EHLO client.example");
    c.cmd(&format!("AUTH PLAIN {}", base64(response)))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const PLAIN_LISTENER: &str = "[[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n";

/// Bind as the user by a DN template: plain names log in, the addresses
/// are their entry's `mail` and `mailAlternateAddress`; a wrong password,
/// an empty one (an anonymous bind, which slapd accepts) and a login that
/// tries to change the DN are refused; StartTLS with the private CA works
/// and without it is 454; slapd stopped is 454.
#[test]
fn ldap_bind_as_user_by_dn_template() {
    let mut slapd = Slapd::start();
    let d = slapd.dir.path();
    std::fs::write(d.join("service.pass"), "service pw\n").unwrap();
    // The service account only finds recipients for the MX here.
    let directory = format!(
        "type = \"ldap\"\nurl = \"ldap://127.0.0.1:{}\"\nbind_dn = \"uid={{user}},ou=people,dc=example,dc=net\"\n\
         search_base = \"ou=people,dc=example,dc=net\"\nservice_dn = \"cn=port25,dc=example,dc=net\"\nservice_password_file = \"{}\"\n\
         recipient_filter = \"(mail={{address}})\"\n{PLAIN_LISTENER}",
        slapd.port,
        d.join("service.pass").display()
    );
    let s = port25_with(&directory);
    let t = submit(&s, "PLAIN", "alice", "alice pw", "a.smith@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"), "mailAlternateAddress: {t}");
    let t = submit(&s, "LOGIN", "alice", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  250 2.0.0 Ok: queued"), "mail: {t}");
    let t = submit(&s, "PLAIN", "alice", "alice pw", "bob@example.net", "bob@example.net");
    assert!(t.contains("<~* 553 5.7.1"), "{t}");
    let t = submit(&s, "PLAIN", "alice", "bob pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "{t}");
    // RFC 4513 §5.1.2: an empty password is an anonymous bind, a success
    // (the engine refuses it as malformed before; the backend refuses it too).
    let r = auth_plain_raw(&s, b"\0alice\0");
    assert!([501, 535].contains(&code(&r)), "an empty password is no login: {r}");
    // The DN template escapes: "bob,ou=people" cannot become another DN.
    let t =
        submit(&s, "PLAIN", "bob,ou=people,dc=example,dc=net,uid=x", "bob pw", "bob@example.net", "alice@example.net");
    assert!(t.contains("<~* 535") || t.contains("<~* 454"), "{t}");
    assert!(!t.contains("235"), "{t}");

    // StartTLS on ldap://: trusted through ca_file; without it the private
    // CA is unknown and the login is 454, never sent in clear.
    let starttls = |ca: &str| {
        format!("type = \"ldap\"\nurl = \"ldap://127.0.0.1:{}\"\nstarttls = true\n{ca}bind_dn = \"uid={{user}},ou=people,dc=example,dc=net\"\n", slapd.port)
    };
    let tls = port25_with(&starttls(&format!("ca_file = \"{}\"\n", d.join("ca.pem").display())));
    let t = submit(&tls, "PLAIN", "alice", "alice pw", "alice@example.net", "alice@example.net");
    assert!(t.contains("<~  235 2.7.0"), "StartTLS with the CA: {t}");
    let untrusted = port25_with(&starttls(""));
    let t = submit(&untrusted, "PLAIN", "alice", "alice pw", "alice@example.net", "alice@example.net");
    assert!(t.contains("<~* 454 4.7.0") && !t.contains("235"), "an unknown CA: {t}");

    slapd.server.stop();
    let t = submit(&s, "PLAIN", "alice", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 454 4.7.0") && !t.contains("235"), "slapd down: {t}");
}

/// Search as the service account over ldaps:// (a private CA), then bind
/// as the entry found. The login is RFC 4515-escaped: "b*" is a literal,
/// not a wildcard that finds bob. The MX finds recipients with
/// recipient_filter. The cache keeps alice's login only until her entry
/// changes: after ldappasswd the old password is refused at once.
#[test]
fn ldap_search_then_bind_over_tls_with_escaping_recipients_and_cache() {
    let slapd = Slapd::start();
    let d = slapd.dir.path();
    std::fs::write(d.join("service.pass"), "service pw\n").unwrap();
    let directory = format!(
        "type = \"ldap\"\nurl = \"ldaps://127.0.0.1:{}\"\nca_file = \"{}\"\nsearch_base = \"ou=people,dc=example,dc=net\"\n\
         search_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\nservice_dn = \"cn=port25,dc=example,dc=net\"\n\
         service_password_file = \"{}\"\nrecipient_filter = \"(|(mail={{address}})(mailAlternateAddress={{address}}))\"\ncache_secs = 600\n{PLAIN_LISTENER}",
        slapd.tls_port,
        d.join("ca.pem").display(),
        d.join("service.pass").display()
    );
    let s = port25_with(&directory);
    let t = submit(&s, "PLAIN", "alice", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"), "{t}");
    let t = submit(&s, "PLAIN", "alice", "alice pw", "a.smith@example.net", "a.smith@example.net");
    assert!(t.contains("<~  250 2.0.0 Ok: queued"), "cached, addresses still read: {t}");
    // Unescaped, (uid=b*) would find bob, and bob's password would log in as "b*".
    let t = submit(&s, "PLAIN", "b*", "bob pw", "bob@example.net", "alice@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "filter injection: {t}");
    let t = submit(&s, "PLAIN", "*)(uid=bob", "bob pw", "bob@example.net", "alice@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "filter injection: {t}");

    assert_eq!(rcpt(&s, "bob@example.net"), 250);
    assert_eq!(rcpt(&s, "a.smith@example.net"), 250, "mailAlternateAddress receives");
    assert_eq!(rcpt(&s, "carol@example.net"), 550);
    assert_eq!(rcpt(&s, "*@example.net"), 550, "a wildcard is a literal");

    slapd.passwd("alice", "alice new");
    let t = submit(&s, "PLAIN", "alice", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "the old password, cached before the change: {t}");
    let t = submit(&s, "PLAIN", "alice", "alice new", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0"), "{t}");
    assert_eq!(s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10)).len(), 2);
}
