//! `egress notify` end to end: flows from softflowd/nfcapd, the subscribers
//! `egress plan` classifies, one notice each as Maildir, mbox and CSV, read
//! back with Python's email parser (the pt-BR subject RFC 2047-encoded and
//! decoded, the provider's submission host and autoconfig in the body), and
//! sent with --send through a real submission server: Python's aiosmtpd
//! with STARTTLS required and AUTH (a certificate made with openssl), which
//! records what it received. Without --send nothing is sent; an unknown
//! placeholder in an override template is refused with file:line.

use crate::flows::traffic;
use crate::{must, require, BIN};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PROVIDERS: &str = r#"[[provider]]
name = "example-mail"
hosts = ["100.64.200.1"]
submission = "smtp.example-mail.test"
domains = ["example-mail.test"]
autoconfig = "https://autoconfig.example-mail.test/mail/config-v1.1.xml"
"#;

const SERVER: &str = r#"
import asyncio, json, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
cert, key, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a") as f:
            f.write(json.dumps({"login": session.auth_data.login.decode() if session.auth_data else None,
                                "tls": session.ssl is not None, "from": envelope.mail_from,
                                "rcpt": envelope.rcpt_tos, "data": envelope.content.decode("utf-8")}) + "\n")
        return "250 OK"
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"noc" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=auth, auth_required=True, auth_require_tls=True, server_hostname="localhost")
c.start()
print("ready", flush=True)
import threading; threading.Event().wait()
"#;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Subject (decoded) and body of a message file, read by Python's email package.
fn parse_mail(path: &Path) -> (String, String, String) {
    let py = "import sys, email, email.policy\nm = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\nprint(m['Subject'])\nprint(m['To'] or '-')\nprint(m.get_content())";
    let out = must("python3", &["-c", py, path.to_str().unwrap()]);
    let mut lines = out.splitn(3, '\n');
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned(), lines.next().unwrap_or("").to_owned())
}

#[test]
fn notices_written_as_maildir_mbox_csv_and_sent_through_submission_with_starttls() {
    require("openssl");
    require("python3");
    let has_aiosmtpd = Command::new("python3").args(["-c", "import aiosmtpd"]).status().unwrap().success();
    assert!(has_aiosmtpd, "Python's aiosmtpd is required (pip install aiosmtpd; .ci/install-deps does it)");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let policy = crate::staged_policy(w, "2030-01-01T00:00:00Z");
    let providers = w.join("providers.toml");
    std::fs::write(&providers, PROVIDERS).unwrap();
    let pcap = w.join("traffic.pcap");
    std::fs::write(&pcap, traffic().pcap()).unwrap();
    let flows = w.join("flows");
    crate::nfcapd::store(&pcap, &flows);
    let contacts = w.join("contacts.csv");
    std::fs::write(
        &contacts,
        "subscriber,email,language\n198.51.100.8,joao@example.test,pt-BR\n198.51.100.77,owner77@example.test,en\n",
    )
    .unwrap();

    // A submission server: STARTTLS required, then AUTH; its certificate
    // issued by a throwaway CA that --ca names.
    let (ca, ca_key, cert, key, csr, ext) = (
        w.join("ca.pem"),
        w.join("ca.key"),
        w.join("cert.pem"),
        w.join("key.pem"),
        w.join("req.csr"),
        w.join("ext.cnf"),
    );
    let p = |x: &std::path::PathBuf| x.to_str().unwrap().to_owned();
    must(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=port25 test CA",
            "-keyout",
            &p(&ca_key),
            "-out",
            &p(&ca),
        ],
    );
    must(
        "openssl",
        &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", &p(&key), "-out", &p(&csr)],
    );
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    must(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&cert),
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let received = w.join("received.jsonl");
    let mut server = Kill(
        Command::new("python3")
            .args([
                "-c",
                SERVER,
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
                &port.to_string(),
                received.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let pw = w.join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();

    let maildir = w.join("Maildir");
    let (mbox, csv) = (w.join("notices.mbox"), w.join("notices.csv"));
    let out = Command::new(BIN)
        .args(["egress", "notify", "--policy"])
        .arg(&policy)
        .arg("--providers")
        .arg(&providers)
        .arg("--nfcapd")
        .arg(&flows)
        .args(["--at", "2029-06-01T00:00:00Z", "--from", "noc@isp.test", "--contacts", contacts.to_str().unwrap()])
        .args([
            "--out",
            &format!("maildir:{}", maildir.display()),
            "--out",
            &format!("mbox:{}", mbox.display()),
            "--out",
            &format!("csv:{}", csv.display()),
        ])
        .args([
            "--send",
            &format!("smtp://127.0.0.1:{port}"),
            "--login",
            "noc",
            "--password-file",
            pw.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // 198.51.100.77 and the IPv6 bot, the mail client, and the dynamic network's unclassified sender.
    assert!(err.contains("port25: notify: 4 notices (0 open-proxy, 1 mail-client, 2 bot, 1 unclassified); 2 without a contact; sent 2, failed 0"), "{err}");

    let files: Vec<_> = std::fs::read_dir(maildir.join("new")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 4);
    // The IPv6 bot's row is its /64: its notice's file name holds no '/'.
    let v6: Vec<_> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("X-Port25-Address: 2001:db8:100:1::/64\r\n"))
        .collect();
    assert_eq!(v6.len(), 1, "{files:?}");
    let mut client = None;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.contains("X-Port25-Address: 198.51.100.8\r\n") {
            client = Some(f.clone());
        }
    }
    let (subject, to, body) = parse_mail(&client.expect("the mail client's notice"));
    assert_eq!(
        subject,
        "Ação necessária: configure seu programa de e-mail para a porta 587 antes de 2030-01-01T00:00:00Z"
    );
    assert_eq!(to, "joao@example.test");
    assert!(
        body.contains("servidor:      smtp.example-mail.test")
            && body.contains("https://autoconfig.example-mail.test/mail/config-v1.1.xml"),
        "{body}"
    );
    assert!(body.contains("100.64.200.1 x3 (example-mail submission host)"), "{body}");
    let mbox_text = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(
        mbox_text.matches("\nFrom noc@isp.test ").count() + usize::from(mbox_text.starts_with("From noc@isp.test ")),
        4
    );
    let py = "import mailbox, sys\nprint(len(mailbox.mbox(sys.argv[1])))";
    assert_eq!(must("python3", &["-c", py, mbox.to_str().unwrap()]).trim(), "4");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv_text.starts_with("subscriber,address,network,kind,provider,email,language,subject,message\n"),
        "{csv_text}"
    );
    assert!(
        csv_text.contains(
            "198.51.100.8,198.51.100.8,residential-broadband,mail-client,example-mail,joao@example.test,pt-BR,"
        ),
        "{csv_text}"
    );

    // What the submission server received: two messages, over TLS, after the login.
    let got: Vec<serde_json::Value> =
        std::fs::read_to_string(&received).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(
            (g["tls"].as_bool(), g["login"].as_str(), g["from"].as_str()),
            (Some(true), Some("noc"), Some("noc@isp.test")),
            "{g}"
        );
    }
    let bot = got.iter().find(|g| g["rcpt"][0] == "owner77@example.test").unwrap();
    assert!(
        bot["data"].as_str().unwrap().contains("Subject: Security notice: a device on your connection is sending spam"),
        "{bot}"
    );

    // Without --send nothing leaves; an override with a typo is refused by file:line.
    let templates = w.join("templates");
    std::fs::create_dir_all(templates.join("en")).unwrap();
    std::fs::write(templates.join("en/bot.txt"), "Subject: hi\nyour {{adress}}\n").unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["egress", "notify", "--policy"])
            .arg(&policy)
            .arg("--providers")
            .arg(&providers)
            .arg("--nfcapd")
            .arg(&flows)
            .args([
                "--at",
                "2029-06-01T00:00:00Z",
                "--from",
                "noc@isp.test",
                "--out",
                &format!("csv:{}", w.join("again.csv").display()),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sent 0, failed 0 (nothing sent: no --send)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--templates", templates.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("en/bot.txt:2: unknown placeholder {{adress}}"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&received).unwrap().lines().count(), 2, "nothing more was sent");
}
