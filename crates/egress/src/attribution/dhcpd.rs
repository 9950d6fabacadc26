//! ISC dhcpd's lease database (`dhcpd.leases`), DHCPv4 `lease` blocks.
//!
//! Like Kea's memfile it is a journal: dhcpd appends a block each time a
//! lease changes and rewrites the file now and then, so the last block for
//! an address wins (the same rules, `kea::Timeline`). A block runs from
//! `starts` to `ends` (UTC, `W YYYY/MM/DD HH:MM:SS`; `epoch N` under
//! `db-time-format local`; `never`). `binding state active` holds the
//! address; `free`, `released`, `expired` and `abandoned` say the holder
//! left at `ends`; a `free` or `backup` block without a hardware address
//! names nobody. The subscriber is option 82's remote-id, else its
//! circuit-id (`option agent.remote-id`, `option agent.circuit-id`, kept by
//! dhcpd when the relay sent them), else `hardware ethernet`, else `uid`.
//! DHCPv6 blocks (`ia-na`, `ia-pd`) are skipped.

use super::kea::{Row, Timeline};
use super::lines::{record_too_long, too_long, without_cr, Line, Lines, MAX_RECORD};
use super::{
    civil_ms, nonempty, prefix_of, printable, secs_ms, unhex, Origin, Session, Source, SubscriberKind, WarningKind,
    Warnings,
};
use std::io::{self, BufRead};

/// A block's statements with their line numbers.
type Statements = Vec<(u32, String)>;

/// Reads one lease file into rows, in file order.
pub fn parse(text: &str, file: u32, out: &mut Vec<Row>, w: &mut Warnings) {
    parse_each(text, file, &mut |r| out.push(r), w);
}

/// [`parse`], each lease handed to `each` as it is read.
pub fn parse_each(text: &str, file: u32, each: &mut dyn FnMut(Row), w: &mut Warnings) {
    read_each(text.as_bytes(), file, each, w).expect("reading from memory cannot fail");
}

/// [`parse_each`] from a stream, one line in memory at a time.
pub fn read_each(r: impl BufRead, file: u32, each: &mut dyn FnMut(Row), w: &mut Warnings) -> io::Result<()> {
    // (first line, address, statements, whether a line of it was too
    // long to read) of the lease block being read.
    let mut block: Option<(u32, String, Statements, bool)> = None;
    // The bytes of its statements, bounded by MAX_RECORD.
    let mut held = 0usize;
    // Depth of other blocks being skipped (failover, ia-na ...).
    let mut skip = 0usize;
    let mut skip_start = 0u32;
    let mut lines = Lines::new(r);
    while let Some(l) = lines.next_line()? {
        let (n, raw) = match l {
            Line::Text { n, ref text, terminated } => (n, without_cr(text, terminated)),
            Line::TooLong { n, .. } => {
                // Inside a lease block the block is not read: a statement
                // of it is missing.
                let what = match &mut block {
                    Some((_, _, _, cut)) => {
                        *cut = true;
                        "this lease block"
                    }
                    None => "this line",
                };
                w.add(WarningKind::BadRecord, Origin { file, line: n }, too_long(what));
                continue;
            }
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if skip > 0 {
            skip = (skip + line.matches('{').count()).saturating_sub(line.matches('}').count());
            continue;
        }
        if let Some((start, addr, stmts, cut)) = &mut block {
            if line == "}" {
                let (start, addr, stmts, cut) = (*start, std::mem::take(addr), std::mem::take(stmts), *cut);
                block = None;
                if cut {
                    continue;
                }
                match lease(&addr, &stmts, Origin { file, line: start }) {
                    Ok(Some(r)) => each(r),
                    Ok(None) => {}
                    Err((line, why)) => w.add(WarningKind::BadRecord, Origin { file, line }, why),
                }
            } else if !*cut {
                held += line.len();
                if held > MAX_RECORD {
                    // A block whose `}` never comes: not held further.
                    *cut = true;
                    *stmts = Vec::new();
                    w.add(WarningKind::BadRecord, Origin { file, line: *start }, record_too_long("this lease block"));
                } else {
                    stmts.push((n, line.to_owned()));
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("lease ") {
            match rest.strip_suffix('{') {
                Some(addr) => {
                    block = Some((n, addr.trim().to_owned(), Vec::new(), false));
                    held = 0;
                }
                None => w.add(WarningKind::BadRecord, Origin { file, line: n }, "a lease line without its `{`"),
            }
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if opens > closes {
            skip = opens - closes;
            skip_start = n;
        }
    }
    if let Some((start, _, _, _)) = block {
        w.add(
            WarningKind::Truncated,
            Origin { file, line: start },
            "the file ends inside this lease block (no `}`): not read",
        );
    } else if skip > 0 {
        w.add(WarningKind::Truncated, Origin { file, line: skip_start }, "the file ends inside this block (no `}`)");
    }
    Ok(())
}

/// The text before a `#` that is not inside a quoted string.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return line.get(..i).unwrap_or(line),
            _ => {}
        }
    }
    line
}

/// A quoted string (octal and character escapes) or colon-separated hex.
fn value_bytes(v: &str) -> Option<Vec<u8>> {
    let v = v.trim();
    let Some(inner) = v.strip_prefix('"') else { return unhex(v) };
    let inner = inner.strip_suffix('"')?;
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let o = b.get(i + 1..i + 4).filter(|o| o.iter().all(|d| (b'0'..=b'7').contains(d)));
            if let Some(o) = o {
                out.push(u8::try_from(o.iter().fold(0u32, |a, d| a * 8 + (d - b'0') as u32)).ok()?);
                i += 4;
            } else {
                out.push(*b.get(i + 1)?);
                i += 2;
            }
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Some(out)
}

/// `W YYYY/MM/DD HH:MM:SS`, `epoch N`, or `never` (None inside Some).
fn when(v: &str) -> Option<Option<u64>> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    match parts[..] {
        ["never"] => Some(None),
        ["epoch", n] => Some(Some(secs_ms(n.parse().ok()?)?)),
        [_weekday, date, time] => {
            let mut d = date.split('/').map(|x| x.parse::<i64>().ok());
            let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
            Some(Some(civil_ms(d.next()??, d.next()??, d.next()??, t.next()??, t.next()??, t.next()??)?))
        }
        _ => None,
    }
}

type Bad = (u32, String);

fn lease(addr: &str, stmts: &Statements, origin: Origin) -> Result<Option<Row>, Bad> {
    let prefix = prefix_of(addr).ok_or((origin.line, format!("lease {addr:?}: not an address")))?;
    let (mut starts, mut ends) = (None, None);
    let (mut state, mut hw, mut uid, mut remote, mut circuit, mut hostname) =
        (String::new(), None, None, None, None, String::new());
    for (n, s) in stmts {
        let s = s.strip_suffix(';').unwrap_or(s).trim();
        let bad = |what: &str| (*n, format!("{what}: {:?}", super::clean(s)));
        let (key, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let rest = rest.trim();
        match key {
            "starts" => starts = Some(when(rest).ok_or_else(|| bad("not a time"))?.unwrap_or(0)),
            "ends" => ends = Some(when(rest).ok_or_else(|| bad("not a time"))?),
            "binding" => state = rest.strip_prefix("state").unwrap_or(rest).trim().to_owned(),
            "hardware" => hw = rest.split_whitespace().nth(1).map(str::to_owned),
            "uid" => uid = value_bytes(rest).map(|b| printable(&b)),
            "client-hostname" => hostname = value_bytes(rest).map(|b| printable(&b)).unwrap_or_default(),
            "option" => {
                let (name, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                match name {
                    "agent.remote-id" => remote = value_bytes(v).map(|b| printable(&b)),
                    "agent.circuit-id" => circuit = value_bytes(v).map(|b| printable(&b)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let Some(start_ms) = starts else { return Err((origin.line, format!("lease {addr}: no starts"))) };
    let expire_ms = ends.flatten().unwrap_or(u64::MAX);
    if expire_ms < start_ms {
        return Err((origin.line, format!("lease {addr}: ends before it starts")));
    }
    let (remote, circuit, hw, uid) = (nonempty(remote), nonempty(circuit), nonempty(hw), nonempty(uid));
    let subscriber = remote
        .clone()
        .map(|r| (r, SubscriberKind::RemoteId))
        .or_else(|| circuit.clone().map(|c| (c, SubscriberKind::CircuitId)))
        .or_else(|| hw.map(|h| (h, SubscriberKind::HardwareAddress)))
        .or_else(|| uid.map(|u| (u, SubscriberKind::ClientId)));
    let released = matches!(state.as_str(), "free" | "released" | "expired" | "abandoned");
    let nobody = subscriber.is_none() || matches!(state.as_str(), "backup" | "reset");
    Ok(Some(Row {
        prefix,
        start_ms,
        expire_ms,
        released,
        // A block that names nobody (a free pool entry) ends the previous
        // holder's lease where it starts, like a declined one.
        declined: nobody,
        subscriber,
        remote_id: remote,
        circuit_id: circuit,
        hostname,
        origin,
    }))
}

/// Rows of every file, in order, into leases per address.
pub fn sessions(rows: Vec<Row>) -> Vec<Session> {
    let mut t = Timeline::new(Source::Dhcpd);
    for r in rows {
        t.row(r);
    }
    t.finish().iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASES: &str = r#"# The format of this file is documented in the dhcpd.leases(5) manual page.
authoring-byte-order little-endian;
server-duid "\000\001\000\001";
failover peer "x" state {
  my state normal at 1 2026/11/30 10:00:00;
}

lease 10.0.0.20 {
  starts 2 2025/11/25 10:00:00;
  ends 2 2025/11/25 11:00:00;
  cltt 2 2025/11/25 10:00:00;
  binding state active;
  next binding state free;
  hardware ethernet 02:00:00:00:00:20;
  uid "\001\002\000\000\000\000 ";
  option agent.circuit-id "ge-0/0/1:100";
  option agent.remote-id 41:42:43;
  client-hostname "pc#1";
}
lease 10.0.0.20 {
  starts 2 2025/11/25 10:00:00;
  ends 2 2025/11/25 10:20:00;
  binding state free;
  hardware ethernet 02:00:00:00:00:20;
}
lease 10.0.0.21 {
  starts epoch 1764064800; # Tue Nov 25 10:00:00 2025
  ends never;
  binding state active;
  hardware ethernet 02:00:00:00:00:21;
}
lease 10.0.0.22 {
  starts 2 2025/11/25 10:00:00;
"#;

    #[test]
    fn lease_blocks() {
        let mut w = Warnings::default();
        let mut rows = Vec::new();
        parse(LEASES, 3, &mut rows, &mut w);
        assert_eq!(rows.len(), 3, "{:?}", w.named);
        assert_eq!(w.count(WarningKind::Truncated), 1);
        assert_eq!(w.named[0].origin, Origin { file: 3, line: 32 });
        assert_eq!(rows[0].hostname, "pc#1");
        let s = sessions(rows);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].subscriber.as_str(), s[0].kind, s[0].circuit_id.as_deref()),
            ("ABC", SubscriberKind::RemoteId, Some("ge-0/0/1:100"))
        );
        // Released 20 minutes in.
        assert_eq!((s[0].start_ms, s[0].end_ms), (1_764_064_800_000, Some(1_764_066_000_000)));
        assert_eq!(
            (s[1].subscriber.as_str(), s[1].start_ms, s[1].end_ms),
            // `ends never`: open, as Session documents it.
            ("02:00:00:00:00:21", 1_764_064_800_000, None)
        );
    }

    #[test]
    fn a_lease_that_ends_before_it_starts_is_refused() {
        // Found by the attribution_dhcpd smoke test: it gave a session
        // ending before its start.
        let text = "lease 10.0.0.20 {\n  starts 2 2025/11/25 10:00:00;\n  ends 2 2025/01/25 11:00:00;\n  hardware ethernet 02:00:00:00:00:20;\n}\n";
        let mut w = Warnings::default();
        let mut rows = Vec::new();
        parse(text, 0, &mut rows, &mut w);
        assert!(rows.is_empty());
        assert_eq!(w.count(WarningKind::BadRecord), 1);
        assert!(w.named[0].message.contains("ends before it starts"), "{:?}", w.named);
    }

    #[test]
    fn an_empty_agent_option_names_nobody() {
        // Found by attribution_dhcpd: `option agent.remote-id ;` became an
        // empty subscriber name.
        let text = "lease 10.0.0.20 {\n  starts 2 2025/11/25 10:00:00;\n  ends 2 2025/11/25 11:00:00;\n  option agent.remote-id ;\n  hardware ethernet 02:00:00:00:00:20;\n}\n";
        let mut rows = Vec::new();
        parse(text, 0, &mut rows, &mut Warnings::default());
        let s = sessions(rows);
        assert_eq!((s[0].subscriber.as_str(), s[0].kind), ("02:00:00:00:00:20", SubscriberKind::HardwareAddress));
    }

    #[test]
    fn a_block_that_runs_on_is_not_held() {
        // A lease block over MAX_RECORD (its `}` lost, statements without
        // end): named at its first line, not read; the next one is.
        let filler = "  option x 0123456789012345678901234567890123456789012345678901234567890123456789;\n";
        let text = format!(
            "lease 10.0.0.20 {{\n  starts epoch 1764064800;\n  hardware ethernet 02:00:00:00:00:20;\n{}}}\nlease 10.0.0.21 {{\n  starts epoch 1764064800;\n  hardware ethernet 02:00:00:00:00:21;\n}}\n",
            filler.repeat(super::super::lines::MAX_RECORD / 40)
        );
        let (mut rows, mut w) = (Vec::new(), Warnings::default());
        parse(&text, 0, &mut rows, &mut w);
        assert_eq!(rows.iter().map(|r| r.prefix.to_string()).collect::<Vec<_>>(), ["10.0.0.21/32"]);
        assert_eq!((w.total(), w.named[0].origin.line), (1, 1), "{:?}", w.named);
        assert!(w.named[0].message.contains("more than 1 MiB"), "{:?}", w.named);
    }

    #[test]
    fn values() {
        assert_eq!(value_bytes("\"a\\042b\""), Some(b"a\"b".to_vec()));
        assert_eq!(value_bytes("1:2:ff"), Some(vec![1, 2, 255]));
        assert_eq!(value_bytes("1:2:fff"), None);
        assert_eq!(when("never"), Some(None));
        assert_eq!(when("3 2026/12/02 11:00:00"), Some(Some(1_796_209_200_000)));
        assert_eq!(strip_comment("a \"#x\" # c"), "a \"#x\" ");
    }
}
