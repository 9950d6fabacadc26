//! `port25 egress notify`: one notice per subscriber still on port 25 (as
//! `egress plan` classifies them), from the pt-BR or English templates or
//! the operator's own, written as a Maildir, an mbox or a CSV for the ISP's
//! CRM. Nothing is sent unless `--send` names a submission server; then
//! each notice with a contact address goes through it (STARTTLS on
//! smtp://, implicit TLS on smtps://, always authenticated; certificates
//! checked against --ca or the system's store).

use anyhow::Context;
use port25_egress::notify::{self, Template, Values, KINDS, LANGUAGES};
use port25_egress::plan::Kind;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(
    after_help = "Templates: built in for pt-BR and en, one per kind (open-proxy, mail-client, bot, unclassified); --templates DIR\n\
                        overrides any of them with DIR/LANG/KIND.txt (first line \"Subject: ...\", then the body; placeholders\n\
                        {{address}} {{subscriber}} {{network}} {{kind}} {{provider}} {{submission}} {{autoconfig}}\n\
                        {{enforce_from}} {{evidence}} {{first_seen}} {{last_seen}}; an unknown one is refused with file:line).\n\n\
                        Contacts (--contacts FILE, CSV with a header: subscriber,email[,language]) give each subscriber\n\
                        (the attributed name, or the address) an address and a language; without one the notice is still\n\
                        written (no To:) but never sent.\n\n\
                        Output (--out, repeatable): maildir:DIR, mbox:FILE, csv:FILE.\n\
                        --send smtp://HOST:587 (STARTTLS) or smtps://HOST:465 sends through a submission server with\n\
                        --login and --password-file; without --send nothing leaves the machine.\n\n\
                        Example:\n  port25 egress notify --policy egress.toml --providers providers.toml --nfcapd /var/cache/nfdump \\\n    \
                        --attribution radius:/var/log/freeradius/radacct --contacts crm.csv --from noc@isp.example --out maildir:notices"
)]
pub struct Args {
    #[command(flatten)]
    inputs: super::egress_plan::Inputs,
    /// The From: address of the notices
    #[arg(long)]
    from: String,
    /// Where to write: maildir:DIR, mbox:FILE or csv:FILE (repeatable)
    #[arg(long = "out", value_name = "KIND:PATH")]
    out: Vec<String>,
    /// Subscriber contacts: CSV subscriber,email[,language]
    #[arg(long)]
    contacts: Option<PathBuf>,
    /// The language of subscribers without one in --contacts: pt-BR | en
    #[arg(long, default_value = "pt-BR")]
    language: String,
    /// Directory of templates overriding the built-in ones (LANG/KIND.txt)
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Which subscribers: open-proxy, mail-client, bot, unclassified (comma-separated)
    #[arg(long, default_value = "open-proxy,mail-client,bot,unclassified", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Send through this submission server: smtp://HOST:PORT (STARTTLS) or smtps://HOST:PORT
    #[arg(long, value_name = "URL")]
    send: Option<String>,
    /// The login for --send
    #[arg(long)]
    login: Option<String>,
    /// A file holding the password for --send (first line)
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) to check the server's certificate with (default: the system's store)
    #[arg(long)]
    ca: Option<PathBuf>,
}

/// At most this many contacts are read (a CRM export, not a stream).
const MAX_CONTACTS: usize = 10_000_000;

fn load_contacts(path: &Path) -> anyhow::Result<HashMap<String, (String, Option<String>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|l| l.1).unwrap_or("");
    if !header.starts_with("subscriber,email") {
        anyhow::bail!("{}:1: the header must be subscriber,email[,language]", path.display());
    }
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let (Some(who), Some(email)) = (f.first(), f.get(1)) else {
            anyhow::bail!("{}:{}: expected subscriber,email[,language]", path.display(), i + 1);
        };
        notify::check_address(email).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        let lang = f.get(2).filter(|l| !l.is_empty()).map(|l| l.to_string());
        if let Some(l) = &lang {
            if !LANGUAGES.contains(&l.as_str()) {
                anyhow::bail!("{}:{}: language {l:?}: one of {}", path.display(), i + 1, LANGUAGES.join(", "));
            }
        }
        if out.len() >= MAX_CONTACTS {
            anyhow::bail!("{}: more than {MAX_CONTACTS} contacts", path.display());
        }
        out.insert(who.to_string(), (email.to_string(), lang));
    }
    Ok(out)
}

/// Each (language, kind): the override in DIR if there is one, else built in.
fn load_templates(dir: Option<&Path>) -> anyhow::Result<HashMap<(String, Kind), Template>> {
    let mut out = HashMap::new();
    for l in LANGUAGES {
        for k in KINDS {
            let t = match dir.map(|d| d.join(l).join(format!("{}.txt", k.as_str()))) {
                Some(p) if p.exists() => {
                    let mut text = String::new();
                    std::fs::File::open(&p)
                        .with_context(|| format!("opening {}", p.display()))?
                        .take(notify::MAX_TEMPLATE as u64 + 1)
                        .read_to_string(&mut text)
                        .with_context(|| format!("{}: not UTF-8 text", p.display()))?;
                    Template::parse(&text, &p.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))?
                }
                _ => Template::builtin(l, *k),
            };
            out.insert((l.to_string(), *k), t);
        }
    }
    Ok(out)
}

enum Out {
    Maildir(PathBuf),
    Mbox(PathBuf),
    Csv(PathBuf),
}

fn parse_out(s: &str) -> anyhow::Result<Out> {
    match s.split_once(':') {
        Some(("maildir", p)) if !p.is_empty() => Ok(Out::Maildir(p.into())),
        Some(("mbox", p)) if !p.is_empty() => Ok(Out::Mbox(p.into())),
        Some(("csv", p)) if !p.is_empty() => Ok(Out::Csv(p.into())),
        _ => anyhow::bail!("--out {s:?}: give maildir:DIR, mbox:FILE or csv:FILE"),
    }
}

struct Rendered {
    key: String,
    address: String,
    network: String,
    kind: &'static str,
    provider: String,
    to: Option<String>,
    language: String,
    subject: String,
    message: Vec<u8>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    notify::check_address(&a.from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    if !LANGUAGES.contains(&a.language.as_str()) {
        anyhow::bail!("--language {:?}: one of {}", a.language, LANGUAGES.join(", "));
    }
    let outs = a.out.iter().map(|o| parse_out(o)).collect::<anyhow::Result<Vec<_>>>()?;
    if outs.is_empty() && a.send.is_none() {
        anyhow::bail!(
            "nowhere to put the notices: give --out maildir:DIR, mbox:FILE or csv:FILE (and --send to send them)"
        );
    }
    let kinds: Vec<Kind> =
        a.kinds
            .iter()
            .map(|k| {
                KINDS.iter().copied().find(|x| x.as_str() == k).ok_or_else(|| {
                    anyhow::anyhow!("--kinds: {k:?} is not open-proxy, mail-client, bot or unclassified")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    let sender = match &a.send {
        None => None,
        Some(url) => Some(Submission::from_args(url, a.login.as_deref(), a.password_file.as_deref(), a.ca.as_deref())?),
    };
    let templates = load_templates(a.templates.as_deref())?;
    let contacts = match &a.contacts {
        Some(p) => load_contacts(p)?,
        None => HashMap::new(),
    };
    let r = super::egress_plan::analyse(&a.inputs, &Default::default(), 90.0)?;
    let now = std::time::SystemTime::now();
    let date = httpdate::fmt_http_date(now).replace(" GMT", " +0000");
    let stamp = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut rendered = Vec::new();
    for p in &r.plans {
        let enforce_from = p.enforce_from.clone().unwrap_or_else(|| "-".into());
        for s in p.subscribers.iter().filter(|s| kinds.contains(&s.kind)) {
            let key = s.subscriber.clone().unwrap_or_else(|| s.address.to_string());
            let (to, lang) = match contacts.get(&key) {
                Some((e, l)) => (Some(e.clone()), l.clone().unwrap_or_else(|| a.language.clone())),
                None => (None, a.language.clone()),
            };
            let provider = s.provider.as_deref().and_then(|n| r.providers.iter().find(|x| x.name == n));
            let t = &templates[&(lang.clone(), s.kind)];
            let n = notify::render(t, &Values::new(s, &p.network, provider, &enforce_from));
            let id = format!("notify.{stamp}.{}.{}", rendered.len(), s.address.to_string().replace([':', '/'], "-"));
            let message = notify::message(&n, &a.from, to.as_deref(), &date, &id, s, &lang);
            rendered.push(Rendered {
                key,
                address: s.address.to_string(),
                network: p.network.clone(),
                kind: s.kind.as_str(),
                provider: s.provider.clone().unwrap_or_default(),
                to,
                language: lang,
                subject: n.subject,
                message,
            });
        }
    }
    for o in &outs {
        match o {
            Out::Maildir(dir) => write_maildir(dir, &rendered, stamp)?,
            Out::Mbox(file) => {
                let asctime = asctime(now);
                let mut data = Vec::new();
                for m in &rendered {
                    data.extend_from_slice(&notify::mbox_entry(&m.message, &a.from, &asctime));
                }
                std::fs::write(file, data).with_context(|| format!("writing {}", file.display()))?;
            }
            Out::Csv(file) => {
                let mut s = String::from("subscriber,address,network,kind,provider,email,language,subject,message\n");
                for m in &rendered {
                    let fields = [
                        &m.key,
                        &m.address,
                        &m.network,
                        m.kind,
                        &m.provider,
                        m.to.as_deref().unwrap_or(""),
                        &m.language,
                        &m.subject,
                        &String::from_utf8_lossy(&m.message),
                    ];
                    s.push_str(&fields.iter().map(|f| notify::csv_field(f)).collect::<Vec<_>>().join(","));
                    s.push('\n');
                }
                std::fs::write(file, s).with_context(|| format!("writing {}", file.display()))?;
            }
        }
    }
    let mut failed = 0;
    let mut sent = 0;
    let without = rendered.iter().filter(|m| m.to.is_none()).count();
    if let Some(sender) = sender {
        let to_send: Vec<&Rendered> = rendered.iter().filter(|m| m.to.is_some()).collect();
        if !to_send.is_empty() {
            let mut c = sender.connect()?;
            for m in to_send {
                match c.send(&a.from, m.to.as_deref().expect("filtered"), &m.message) {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        failed += 1;
                        errln!("port25: notify: {} ({}): not sent: {e}", m.key, m.to.as_deref().unwrap_or(""));
                    }
                }
            }
            c.quit();
        }
    }
    errln!(
        "port25: notify: {} notices ({} open-proxy, {} mail-client, {} bot, {} unclassified); {} without a contact; sent {sent}, failed {failed}{}",
        rendered.len(),
        rendered.iter().filter(|m| m.kind == "open-proxy").count(),
        rendered.iter().filter(|m| m.kind == "mail-client").count(),
        rendered.iter().filter(|m| m.kind == "bot").count(),
        rendered.iter().filter(|m| m.kind == "unclassified").count(),
        without,
        if a.send.is_none() { " (nothing sent: no --send)" } else { "" }
    );
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `Wed Dec  2 13:00:00 2026`, the mbox separator's date.
fn asctime(t: std::time::SystemTime) -> String {
    // httpdate: "Wed, 02 Dec 2026 13:00:00 GMT"
    let h = httpdate::fmt_http_date(t);
    let p: Vec<&str> = h.split([' ', ',']).filter(|x| !x.is_empty()).collect();
    match p.as_slice() {
        [wd, d, mon, y, time, _] => format!("{wd} {mon} {:>2} {time} {y}", d.trim_start_matches('0')),
        _ => h,
    }
}

/// Maildir delivery: tmp/, fsync, rename into new/, fsync new/.
fn write_maildir(dir: &Path, msgs: &[Rendered], stamp: u64) -> anyhow::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let host = "port25";
    for (i, m) in msgs.iter().enumerate() {
        let name = format!("{stamp}.P{}Q{i}.{host}", std::process::id());
        let tmp = dir.join("tmp").join(&name);
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&m.message)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("new").join(&name))?;
    }
    std::fs::File::open(dir.join("new"))?.sync_all()?;
    Ok(())
}

/// A submission server to send through.
struct Submission {
    host: String,
    port: u16,
    implicit_tls: bool,
    login: String,
    password: String,
    tls: Arc<rustls::ClientConfig>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A reply longer than this is a broken server.
const MAX_REPLY: usize = 64 << 10;

struct Client {
    s: Option<Stream>,
    buf: Vec<u8>,
}

impl Submission {
    fn from_args(
        url: &str,
        login: Option<&str>,
        password_file: Option<&Path>,
        ca: Option<&Path>,
    ) -> anyhow::Result<Submission> {
        let (implicit_tls, rest) = if let Some(r) = url.strip_prefix("smtps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            (false, r)
        } else {
            anyhow::bail!("--send {url:?}: smtp://HOST:PORT (STARTTLS) or smtps://HOST:PORT (implicit TLS)");
        };
        let (host, port) =
            rest.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("--send {url:?}: give the port (587 or 465)"))?;
        let port: u16 = port.trim_end_matches('/').parse().map_err(|_| anyhow::anyhow!("--send {url:?}: bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let (Some(login), Some(pw)) = (login, password_file) else {
            anyhow::bail!("--send needs --login and --password-file: submission is always authenticated");
        };
        let password = std::fs::read_to_string(pw)
            .with_context(|| format!("reading {}", pw.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let ca_path = ca.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        let pem = std::fs::read(&ca_path)
            .with_context(|| format!("reading CA certificates {} (give --ca)", ca_path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            anyhow::bail!("{}: no PEM certificate in it", ca_path.display());
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Submission { host, port, implicit_tls, login: login.to_owned(), password, tls: Arc::new(tls) })
    }

    fn tls(&self, tcp: TcpStream) -> anyhow::Result<Stream> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.host))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).with_context(|| format!("TLS with {}:{}", self.host, self.port))?;
        }
        Ok(Stream::Tls(Box::new(s)))
    }

    fn connect(&self) -> anyhow::Result<Client> {
        use std::net::ToSocketAddrs;
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{}: no address", self.host))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(30))
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(120)))?;
        let s = if self.implicit_tls { self.tls(tcp)? } else { Stream::Plain(tcp) };
        let mut c = Client { s: Some(s), buf: Vec::new() };
        c.expect(None, 220)?;
        let ehlo = c.expect(Some("EHLO port25-notify"), 250)?;
        if !self.implicit_tls {
            if !ehlo.ehlo_keywords().any(|(k, _)| k == "STARTTLS") {
                anyhow::bail!("{}:{} offers no STARTTLS: refusing to send the login in clear", self.host, self.port);
            }
            c.expect(Some("STARTTLS"), 220)?;
            let Some(Stream::Plain(tcp)) = c.s.take() else { unreachable!("plain before STARTTLS") };
            c.s = Some(self.tls(tcp)?);
            c.buf.clear();
            c.expect(Some("EHLO port25-notify"), 250)?;
        }
        let plain = port25_wire::base64::encode(format!("\0{}\0{}", self.login, self.password).as_bytes());
        c.expect(Some(&format!("AUTH PLAIN {plain}")), 235)
            .map_err(|e| anyhow::anyhow!("login as {} refused: {e}", self.login))?;
        Ok(c)
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect()
}

impl Client {
    fn stream(&mut self) -> &mut Stream {
        self.s.as_mut().expect("connected")
    }

    fn expect(&mut self, cmd: Option<&str>, code: u16) -> anyhow::Result<port25_wire::reply::Reply> {
        if let Some(cmd) = cmd {
            let line = format!("{cmd}\r\n");
            self.stream().write_all(line.as_bytes())?;
        }
        let r = self.reply()?;
        if r.code != code {
            let what = cmd.map_or("greeting".to_owned(), |c| c.split(' ').next().unwrap_or(c).to_owned());
            anyhow::bail!("{what}: {}", r.one_line());
        }
        Ok(r)
    }

    fn reply(&mut self) -> anyhow::Result<port25_wire::reply::Reply> {
        loop {
            if let Some((r, used)) = port25_wire::reply::parse(&self.buf).map_err(|e| anyhow::anyhow!("{e}"))? {
                self.buf.drain(..used);
                return Ok(r);
            }
            if self.buf.len() > MAX_REPLY {
                anyhow::bail!("reply longer than {MAX_REPLY} bytes");
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream().read(&mut chunk)?;
            if n == 0 {
                anyhow::bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, from: &str, to: &str, msg: &[u8]) -> anyhow::Result<()> {
        let r = (|| {
            self.expect(Some(&format!("MAIL FROM:<{from}>")), 250)?;
            self.expect(Some(&format!("RCPT TO:<{to}>")), 250)?;
            self.expect(Some("DATA"), 354)?;
            let mut data = Vec::with_capacity(msg.len() + 8);
            port25_wire::stuff::dot_stuff(msg, &mut data);
            self.stream().write_all(&data)?;
            self.expect(None, 250)?;
            Ok(())
        })();
        if r.is_err() {
            // Back to a clean state for the next notice.
            let _ = self.expect(Some("RSET"), 250);
        }
        r
    }

    fn quit(&mut self) {
        let _ = self.expect(Some("QUIT"), 221);
    }
}
