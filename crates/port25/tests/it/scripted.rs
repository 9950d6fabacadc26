//! A hand-made remote MX for the outbound tests: just enough SMTP, with the
//! misbehaviour a test asks for (a small SIZE, a STARTTLS that breaks or is
//! refused, 550 to every RCPT, a drop in the middle of DATA, a slow
//! greeting or a slow reply to each message, 421 to connections beyond a
//! limit), and a record of what every connection said and when each
//! message was taken, so tests can count connections and sessions, check
//! whether a message body was sent at all, and order deliveries to
//! different servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What follows our "220" to STARTTLS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BrokenTls {
    /// Bytes that are no TLS record, then close.
    Garbage,
    /// Close at once.
    Close,
    /// No 220: "454 4.7.0 TLS not available", and the session goes on.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct Script {
    /// EHLO extension lines, e.g. "SIZE 200", "STARTTLS".
    pub ehlo: Vec<&'static str>,
    pub starttls: BrokenTls,
    /// The reply to every RCPT.
    pub rcpt: &'static str,
    /// Close after reading a few bytes of the message: no reply to the dot.
    pub drop_in_data: bool,
    /// Wait this long before the greeting (makes connections overlap).
    pub greeting_delay: Duration,
    /// Wait this long before the 250 to each message's final dot (a slow
    /// MX: a connection is busy at least this long per message).
    pub data_delay: Duration,
    /// More connections than this open at once (0: no limit) are greeted
    /// with 421, as an MX that limits connections per client does.
    pub max_sessions: usize,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            ehlo: vec!["8BITMIME"],
            starttls: BrokenTls::Garbage,
            rcpt: "250 2.1.5 ok",
            drop_in_data: false,
            greeting_delay: Duration::ZERO,
            data_delay: Duration::ZERO,
            max_sessions: 0,
        }
    }
}

/// What one connection said: its commands (without CRLF) and the
/// messages it sent after DATA, with when each was answered 250.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    pub commands: Vec<String>,
    pub messages: Vec<String>,
    pub taken: Vec<Instant>,
    pub quit: bool,
}

impl Conn {
    /// The commands' verbs, upper case: ["EHLO", "MAIL", ...].
    pub fn verbs(&self) -> Vec<String> {
        self.commands.iter().map(|c| c.split(' ').next().unwrap_or("").to_ascii_uppercase()).collect()
    }
}

pub struct Scripted {
    conns: Arc<Mutex<Vec<Conn>>>,
    /// The most connections open at the same time.
    max_open: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn start(addr: SocketAddr, script: Script) -> Scripted {
        let listener = TcpListener::bind(addr).unwrap();
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let max_open: Arc<AtomicUsize> = Arc::default();
        let open = Arc::new(AtomicUsize::new(0));
        let (c, m) = (conns.clone(), max_open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let index = {
                    let mut list = c.lock().unwrap();
                    list.push(Conn::default());
                    list.len() - 1
                };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let (c, open, script) = (c.clone(), open.clone(), script.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &script, &c, index, &open);
                    if !c.lock().unwrap()[index].quit {
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Scripted { conns, max_open }
    }

    pub fn conns(&self) -> Vec<Conn> {
        self.conns.lock().unwrap().clone()
    }

    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }

    /// Every command of every connection, in order.
    pub fn all_verbs(&self) -> Vec<String> {
        self.conns().iter().flat_map(Conn::verbs).collect()
    }

    /// When each message (of every connection) was answered 250, in order.
    pub fn taken(&self) -> Vec<Instant> {
        let mut taken: Vec<Instant> = self.conns().iter().flat_map(|c| c.taken.clone()).collect();
        taken.sort();
        taken
    }
}

fn serve(
    mut stream: TcpStream,
    script: &Script,
    conns: &Mutex<Vec<Conn>>,
    index: usize,
    open: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    std::thread::sleep(script.greeting_delay);
    if script.max_sessions > 0 && open.load(Ordering::SeqCst) > script.max_sessions {
        stream.write_all(b"421 4.7.0 too many connections from your address\r\n")?;
        return Ok(());
    }
    stream.write_all(b"220 scripted.example ESMTP\r\n")?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut accepted = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_owned();
        conns.lock().unwrap()[index].commands.push(line.clone());
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => {
                let lines: Vec<&str> = std::iter::once("scripted.example").chain(script.ehlo.iter().copied()).collect();
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect()
            }
            "STARTTLS" if script.starttls == BrokenTls::Refuse => "454 4.7.0 TLS not available\r\n".into(),
            "STARTTLS" => {
                stream.write_all(b"220 2.0.0 ready to start TLS\r\n")?;
                if script.starttls == BrokenTls::Garbage {
                    stream.write_all(b"this is not a TLS record at all\r\n")?;
                }
                return Ok(());
            }
            "RCPT" => {
                if script.rcpt.starts_with('2') {
                    accepted += 1;
                }
                format!("{}\r\n", script.rcpt)
            }
            "DATA" if accepted == 0 => "554 5.5.1 no valid recipients\r\n".into(),
            "DATA" => {
                stream.write_all(b"354 go ahead\r\n")?;
                if script.drop_in_data {
                    let _ = reader.read(&mut [0u8; 16]);
                    return Ok(());
                }
                let mut message = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    message.push_str(&l);
                }
                std::thread::sleep(script.data_delay);
                let mut list = conns.lock().unwrap();
                list[index].messages.push(message);
                list[index].taken.push(Instant::now());
                drop(list);
                accepted = 0;
                "250 2.0.0 queued\r\n".into()
            }
            "QUIT" => {
                // No longer open once the client may see 221 and connect again.
                conns.lock().unwrap()[index].quit = true;
                open.fetch_sub(1, Ordering::SeqCst);
                stream.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            "RSET" => {
                accepted = 0;
                "250 2.0.0 ok\r\n".into()
            }
            "HELO" | "MAIL" | "NOOP" => "250 2.0.0 ok\r\n".into(),
            // Any login: what matters to tests is whether AUTH was sent.
            "AUTH" => "235 2.7.0 authenticated\r\n".into(),
            _ => "502 5.5.2 not implemented\r\n".into(),
        };
        stream.write_all(reply.as_bytes())?;
    }
}
