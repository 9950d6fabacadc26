//! Properties of the SMTP engine's pure parsers: command lines, addresses,
//! the DATA reader, the CRLF line splitter and the PROXY protocol header.
//!
//! The `smtp_*`/`proxy_header` functions take one raw fuzz input and derive
//! any parameters (limits, split points) from its first bytes; the other
//! functions take explicit parameters.

use port25_engine::address::{self, ForwardPath, ReversePath};
use port25_engine::command::{self, Body, Command};
use port25_engine::data::{DataReader, Outcome};
use port25_engine::input::{Input, Line};
use port25_engine::proxy::{self, ProxyHeader};
use port25_engine::Reply;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Deterministic cut points for `len` bytes of input, from a seed.
pub fn split_points(seed: u64, len: usize) -> Vec<usize> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let n = (next() % 6) as usize;
    let mut cuts: Vec<usize> = (0..n).map(|_| (next() % (len as u64 + 1)) as usize).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts {
        let c = c.clamp(start, input.len());
        out.push(&input[start..c]);
        start = c;
    }
    out.push(&input[start..]);
    out
}

/// True when every LF is preceded by CR and every CR is followed by LF.
fn crlf_only(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\n' => i > 0 && b[i - 1] == b'\r',
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

// ---------------------------------------------------------------- commands

fn check_reply(r: &Reply, what: &[u8]) {
    assert!((500..600).contains(&r.code), "parse error must be permanent: {r:?} for {what:?}");
    let wire = r.to_wire();
    assert!(wire.starts_with(r.code.to_string().as_bytes()), "{wire:?}");
    assert!(wire.ends_with(b"\r\n") && crlf_only(&wire), "reply breaks framing: {wire:?}");
}

/// `command::parse` on one line (CRLF already removed).
pub fn smtp_command(line: &[u8]) {
    let cmd = match command::parse(line) {
        Ok(cmd) => cmd,
        Err(r) => return check_reply(&r, line),
    };
    if cmd == Command::Http {
        // Closes the session whatever else the line holds (bytes included).
        assert!(command::is_http(line), "{line:?}");
        return;
    }
    let text = std::str::from_utf8(line).expect("accepted a line that is not UTF-8");
    assert!(!text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f), "accepted a control character: {line:?}");
    let verb = text.split(' ').next().unwrap_or("");
    match &cmd {
        Command::Ehlo(h) | Command::Helo(h) => {
            assert!(!h.is_empty() && !h.contains(' ') && h.len() <= 255, "bad EHLO argument {h:?} from {line:?}");
            assert!(text.contains(h.as_str()));
        }
        Command::Mail { from, params } => {
            assert!(verb.eq_ignore_ascii_case("MAIL"));
            // What was understood, written back canonically, means the same.
            let mut again = format!("MAIL FROM:<{from}>");
            if let Some(n) = params.size {
                again += &format!(" SIZE={n}");
            }
            match params.body {
                Some(Body::SevenBit) => again += " BODY=7BIT",
                Some(Body::EightBitMime) => again += " BODY=8BITMIME",
                None => {}
            }
            if params.smtputf8 {
                again += " SMTPUTF8";
            }
            assert_eq!(command::parse(again.as_bytes()), Ok(cmd.clone()), "{line:?} re-rendered as {again:?}");
        }
        Command::Rcpt { to } => {
            assert!(verb.eq_ignore_ascii_case("RCPT"));
            let again = format!("RCPT TO:<{to}>");
            assert_eq!(command::parse(again.as_bytes()), Ok(cmd.clone()), "{line:?} re-rendered as {again:?}");
        }
        _ => {}
    }
}

// --------------------------------------------------------------- addresses

/// The address parsers on one string: whatever parses, printed and parsed
/// again, is the same value; and the command parser agrees with
/// `parse_forward_path` on `RCPT TO:<...>`.
pub fn smtp_address(bytes: &[u8]) {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(d) = address::parse_domain(s) {
        assert_eq!(address::parse_domain(&d.to_string()), Ok(d.clone()), "domain {s:?}");
    }
    if let Ok(m) = address::parse_mailbox(s) {
        assert!(m.local.len() <= 64, "{s:?}");
        assert_eq!(address::parse_mailbox(&m.to_string()), Ok(m.clone()), "mailbox {s:?} printed as {m}");
    }
    let fwd = address::parse_forward_path(s);
    if let Ok(p) = &fwd {
        assert_eq!(address::parse_forward_path(&p.to_string()).as_ref(), Ok(p), "forward path {s:?} printed as {p}");
        if let ForwardPath::Mailbox { source_route: Some(r), .. } = p {
            assert!(r.starts_with('@') && !r.contains(':'), "{s:?}");
        }
    }
    if let Ok(p) = address::parse_reverse_path(s) {
        let again = address::parse_reverse_path(&p.to_string());
        assert_eq!(again.as_ref(), Ok(&p), "reverse path {s:?} printed as {p}");
        assert_eq!(p == ReversePath::Null, s.is_empty());
    }
    // Inside angle brackets with nothing that could close them early.
    if !s.contains(['>', '"']) && !s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        let line = format!("RCPT TO:<{s}>");
        match (command::parse(line.as_bytes()), fwd) {
            (Ok(Command::Rcpt { to }), Ok(p)) => assert_eq!(to, p, "{line:?}"),
            (Err(r), Err(_)) => assert_eq!(r.code, 501, "{line:?}"),
            (c, p) => panic!("RCPT parse {c:?} disagrees with parse_forward_path {p:?} for {s:?}"),
        }
    }
}

// -------------------------------------------------------------------- DATA

/// What a DATA reader should report, computed line by line the slow way.
#[derive(Debug, PartialEq, Eq)]
struct DataModel {
    used: usize,
    outcome: Outcome,
    /// Unstuffed message (End and NeedMore only).
    out: Vec<u8>,
    longest_line: usize,
}

fn data_model(input: &[u8]) -> DataModel {
    let mut out = Vec::new();
    let mut longest_line = 0;
    let mut pos = 0;
    let bare_cr = |line: &[u8], start: usize| {
        line.iter().enumerate().find(|&(k, &c)| c == b'\r' && line.get(k + 1) != Some(&b'\n')).map(|(k, _)| start + k)
    };
    loop {
        let rest = &input[pos..];
        let Some(lf) = rest.iter().position(|&c| c == b'\n') else {
            // A partial line: a CR not at the very end is already an error.
            if let Some(k) = bare_cr(rest, pos).filter(|&k| k + 1 < input.len()) {
                return DataModel { used: k + 1, outcome: Outcome::BareCr, out: Vec::new(), longest_line };
            }
            let text = rest.strip_suffix(b"\r").unwrap_or(rest);
            let text = text.strip_prefix(b".").unwrap_or(text);
            longest_line = longest_line.max(text.len());
            out.extend_from_slice(text);
            return DataModel { used: input.len(), outcome: Outcome::NeedMore, out, longest_line };
        };
        let line = &rest[..lf];
        let body = line.strip_suffix(b"\r");
        if let Some(k) = bare_cr(body.unwrap_or(line), pos) {
            return DataModel { used: k + 1, outcome: Outcome::BareCr, out: Vec::new(), longest_line };
        }
        let Some(body) = body else {
            return DataModel { used: pos + lf + 1, outcome: Outcome::BareLf, out: Vec::new(), longest_line };
        };
        if body == b"." {
            return DataModel { used: pos + lf + 1, outcome: Outcome::End, out, longest_line };
        }
        let text = body.strip_prefix(b".").unwrap_or(body);
        longest_line = longest_line.max(text.len());
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
        pos += lf + 1;
    }
}

#[derive(Debug, PartialEq, Eq)]
struct DataRun {
    used: usize,
    outcome: Outcome,
    out: Vec<u8>,
    size: u64,
    oversize: bool,
    line_too_long: bool,
}

fn run_reader(input: &[u8], max_line: usize, max_size: usize, cuts: &[usize]) -> DataRun {
    let mut r = DataReader::new(max_line, max_size);
    let mut out = Vec::new();
    let mut before = 0;
    let mut last = (0, Outcome::NeedMore);
    for chunk in chunks(input, cuts) {
        let (used, outcome) = r.feed(chunk, &mut out);
        assert!(used <= chunk.len(), "consumed {used} of {} bytes", chunk.len());
        assert!(out.len() <= max_size, "stored {} bytes over the {max_size} limit", out.len());
        assert!(crlf_only(&out), "bare CR or LF in the output {out:?}");
        last = (before + used, outcome);
        if outcome != Outcome::NeedMore {
            break;
        }
        assert_eq!(used, chunk.len(), "NeedMore must consume everything");
        before += chunk.len();
    }
    DataRun { used: last.0, outcome: last.1, out, size: r.size, oversize: r.oversize, line_too_long: r.line_too_long }
}

/// Stuffs and terminates a message as port25's clients send it (outbound
/// and LMTP: port25_wire::stuff), so the reader is checked against the one
/// stuffer the other end uses.
fn stuff(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(body.len() + 8);
    port25_wire::stuff::dot_stuff(body, &mut wire);
    wire
}

/// The DATA reader on `input`, fed whole, byte by byte and in the chunks
/// given by `cuts`, against a line-by-line model.
pub fn data(input: &[u8], max_line: usize, max_size: usize, cuts: &[usize]) {
    let whole = run_reader(input, max_line, max_size, &[]);
    let model = data_model(input);
    assert_eq!((whole.used, whole.outcome), (model.used, model.outcome), "reader vs model on {input:?}");
    if matches!(whole.outcome, Outcome::End | Outcome::NeedMore) {
        let size = model.out.len() as u64;
        assert_eq!(whole.size, size, "size on {input:?}");
        assert_eq!(whole.oversize, size > max_size as u64, "oversize on {input:?}");
        assert_eq!(whole.line_too_long, model.longest_line > max_line, "line_too_long on {input:?}");
        if !whole.oversize {
            assert_eq!(whole.out, model.out, "unstuffed output on {input:?}");
        }
    }
    if whole.outcome == Outcome::End && !whole.oversize && !whole.line_too_long {
        // Re-stuffing gives back the bytes on the wire when they were stuffed
        // canonically (a lone "." before text is removed by RFC 5321
        // §4.5.2 and cannot be told apart from ".." afterwards).
        let consumed = &input[..whole.used];
        let canonical =
            consumed.split(|&c| c == b'\n').all(|l| !l.starts_with(b".") || l.starts_with(b"..") || l == b".\r");
        if canonical {
            let again = stuff(&whole.out);
            assert_eq!(again, consumed, "re-stuffed output differs from the input");
        }
    }
    assert_eq!(run_reader(input, max_line, max_size, cuts), whole, "split at {cuts:?}: {input:?}");
    if input.len() <= 4096 {
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run_reader(input, max_line, max_size, &every), whole, "byte by byte: {input:?}");
    }
}

/// Any message, stuffed and terminated as a client sends it, comes back out
/// of the reader unchanged, whatever follows the terminator.
pub fn data_round_trip(raw: &[u8], trailer: &[u8], cuts: &[usize]) {
    // Make a valid message: CRLF line ends only, ending in CRLF.
    let mut body = Vec::with_capacity(raw.len() + 2);
    for &c in raw.iter().filter(|&&c| c != b'\r') {
        if c == b'\n' {
            body.push(b'\r');
        }
        body.push(c);
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    let mut wire = stuff(&body);
    let end = wire.len();
    wire.extend_from_slice(trailer);
    let got = run_reader(&wire, usize::MAX, usize::MAX, cuts);
    assert_eq!((got.outcome, got.used), (Outcome::End, end), "stuffed message {wire:?}");
    assert_eq!(got.out, body);
}

/// Fuzz input: 4 header bytes (line limit, size limit, split seed), then
/// the DATA stream.
pub fn smtp_data(bytes: &[u8]) {
    let (head, input) = if bytes.len() >= 4 { bytes.split_at(4) } else { (&[0u8; 4][..], bytes) };
    let max_line = match head[0] & 3 {
        0 => 998,
        1 => usize::from(head[0] >> 2),
        2 => usize::MAX,
        _ => usize::from(head[0]) * 4,
    };
    let max_size =
        if head[1] & 0x80 != 0 { usize::from(u16::from_be_bytes([head[1] & 0x7f, head[2]])) } else { 1 << 20 };
    let cuts = split_points(u64::from(head[3]) << 8 | u64::from(head[2]), input.len());
    data(input, max_line, max_size, &cuts);
    let half = input.len() / 2;
    data_round_trip(&input[..half], &input[half..], &cuts);
}

// ------------------------------------------------------------------- lines

/// The line splitter, given all input at once or in chunks.
fn run_lines(input: &[u8], max: usize, cuts: &[usize]) -> Vec<Line> {
    let mut i = Input::default();
    let mut lines = Vec::new();
    for chunk in chunks(input, cuts) {
        let held = i.buffered().to_vec();
        i.push(chunk);
        assert_eq!(i.buffered(), [&held[..], chunk].concat(), "push must append");
        loop {
            let before = i.buffered().to_vec();
            let line = i.take_line(max);
            let after = i.buffered();
            assert!(before.ends_with(after), "take_line must only remove bytes from the front");
            match line {
                None => break,
                Some(line) => {
                    assert!(after.len() < before.len(), "a line was returned but nothing consumed");
                    if let Line::Complete(l) = &line {
                        assert!(!l.contains(&b'\r') && !l.contains(&b'\n'), "CR or LF in a complete line {l:?}");
                        assert!(l.len() + 2 <= max, "complete line of {} bytes over the limit {max}", l.len());
                        assert!(before.starts_with(&[&l[..], b"\r\n"].concat()), "line {l:?} is not what was buffered");
                    }
                    lines.push(line);
                }
            }
        }
        assert!(!i.buffered().contains(&b'\n'), "a whole line was left buffered");
    }
    lines
}

/// The splitter against a model: one result per LF, decided by that line alone.
pub fn lines(input: &[u8], max: usize, cuts: &[usize]) {
    let model: Vec<Line> = {
        let mut segs: Vec<&[u8]> = input.split(|&c| c == b'\n').collect();
        segs.pop(); // the part after the last LF is not a line yet
        segs.into_iter()
            .map(|l| {
                if l.len() + 1 > max {
                    Line::TooLong
                } else if l.last() != Some(&b'\r') {
                    Line::BareLf
                } else if l[..l.len() - 1].contains(&b'\r') {
                    Line::BareCr
                } else {
                    Line::Complete(l[..l.len() - 1].to_vec())
                }
            })
            .collect()
    };
    assert_eq!(run_lines(input, max, &[]), model, "whole input {input:?} max {max}");
    assert_eq!(run_lines(input, max, cuts), model, "split at {cuts:?}: {input:?} max {max}");
}

/// Fuzz input: 2 header bytes (line limit, split seed), then the stream.
pub fn smtp_lines(bytes: &[u8]) {
    let (head, input) = if bytes.len() >= 2 { bytes.split_at(2) } else { (&[0u8; 2][..], bytes) };
    let max = match head[0] {
        0 => 512,
        255 => 1 << 20,
        n => usize::from(n),
    };
    lines(input, max, &split_points(u64::from(head[1]) + 1, input.len()));
}

// ------------------------------------------------------------------- PROXY

/// `proxy::parse` on a buffer and all its prefixes: once a prefix gives a
/// verdict (a header or an error), more bytes never change it.
pub fn proxy_header(buf: &[u8]) {
    let full = proxy::parse(buf);
    if let Ok(Some((h, used))) = &full {
        assert!(*used <= buf.len() && *used >= 15, "consumed {used} of {}", buf.len());
        assert!(*used <= proxy::V2_MAX, "header of {used} bytes");
        assert_eq!(proxy::parse(&buf[..*used]), full, "the header alone parses differently");
        if let ProxyHeader::Proxied { source, destination } = h {
            assert_eq!(source.is_ipv4(), destination.is_ipv4(), "mixed address families");
        }
    }
    for k in 0..buf.len().min(proxy::V2_MAX + 1) {
        let p = proxy::parse(&buf[..k]);
        if p != Ok(None) {
            assert_eq!(p, full, "prefix of {k} bytes decided differently from the whole {buf:?}");
        }
    }
    if buf.len() >= 38 {
        proxy_round_trip(buf);
    }
}

/// Headers built from fuzz bytes, in both versions, parse to what was sent.
fn proxy_round_trip(b: &[u8]) {
    let v6 = b[0] & 1 == 1;
    let ip = |o: usize| -> IpAddr {
        if v6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[o..o + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]))
        }
    };
    let source = SocketAddr::new(ip(2), u16::from_be_bytes([b[34], b[35]]));
    let destination = SocketAddr::new(ip(18), u16::from_be_bytes([b[36], b[37]]));
    let want = ProxyHeader::Proxied { source, destination };
    let rest = &b[38..];

    let proto = if v6 { "TCP6" } else { "TCP4" };
    let mut v1 =
        format!("PROXY {proto} {} {} {} {}\r\n", source.ip(), destination.ip(), source.port(), destination.port())
            .into_bytes();
    let n1 = v1.len();
    v1.extend_from_slice(rest);
    assert_eq!(proxy::parse(&v1), Ok(Some((want.clone(), n1))), "v1 {v1:?}");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    let tlvs = &rest[..rest.len().min(usize::from(b[1]))];
    let mut block = Vec::new();
    for a in [source.ip(), destination.ip()] {
        match a {
            IpAddr::V4(a) => block.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => block.extend_from_slice(&a.octets()),
        }
    }
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    block.extend_from_slice(tlvs);
    v2.push(0x21);
    v2.push(if v6 { 0x21 } else { 0x11 });
    v2.extend_from_slice(&(block.len() as u16).to_be_bytes());
    v2.extend_from_slice(&block);
    let n2 = v2.len();
    v2.extend_from_slice(rest);
    assert_eq!(proxy::parse(&v2), Ok(Some((want, n2))), "v2 {v2:?}");
}
