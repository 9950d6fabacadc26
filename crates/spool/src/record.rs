//! The on-disk form of a spooled message. Pure encode/decode, fuzzable.
//!
//! A batch file is the magic line, then records: `len:u32 crc32:u32
//! payload`, little endian. The payload is a sequence of length-prefixed
//! fields. The CRC makes a damaged file detectable; a batch file only ever
//! appears complete (it is renamed into place after fsync), so a damaged
//! record means media corruption and the file is quarantined, never guessed.

pub const MAGIC: &[u8; 12] = b"PORT25BATCH1";
/// A record larger than this is corrupt: messages are capped far below it.
const MAX_RECORD: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledMessage {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub received_at: u64,
    pub peer: String,
    pub helo: String,
    /// Envelope sender; empty for the null reverse-path.
    pub from: String,
    /// Final recipient addresses, as the policy resolved them.
    pub rcpts: Vec<String>,
    /// Trace header plus message, CRLF line ends.
    pub content: Vec<u8>,
    /// Arrived on port 25 without AUTH (the MX policy): the envelope sender
    /// is only what the client claimed, so a DSN to it after acceptance
    /// may be backscatter (`[mx] bounce_after_accept`). Stored as a flags
    /// byte after the content, written only when a flag is set: records
    /// written before it (no byte) read as false, and each batch keeps one
    /// encoding.
    pub from_mx: bool,
}

/// Flag bits of the byte after the content.
const FLAG_FROM_MX: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a port25 batch file (bad magic)")]
    BadMagic,
    #[error("record {index} at byte {offset} is truncated")]
    Truncated { index: usize, offset: usize },
    #[error("record {index} at byte {offset} fails its checksum")]
    Checksum { index: usize, offset: usize },
    #[error("record {index} at byte {offset} is malformed: {what}")]
    Malformed { index: usize, offset: usize, what: &'static str },
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A record up to its content: length, checksum, the envelope fields and
/// the content's length. The content itself follows it unchanged, so a
/// writer sends it from the message's own buffer instead of copying every
/// message of a batch (up to 25 MiB each) into one buffer first.
pub fn record_head(m: &SpooledMessage) -> Vec<u8> {
    let mut head = vec![0u8; 8];
    put_bytes(&mut head, m.id.as_bytes());
    head.extend_from_slice(&m.received_at.to_le_bytes());
    put_bytes(&mut head, m.peer.as_bytes());
    put_bytes(&mut head, m.helo.as_bytes());
    put_bytes(&mut head, m.from.as_bytes());
    head.extend_from_slice(&(m.rcpts.len() as u32).to_le_bytes());
    for r in &m.rcpts {
        put_bytes(&mut head, r.as_bytes());
    }
    head.extend_from_slice(&(m.content.len() as u32).to_le_bytes());
    let tail = trailer(m);
    let payload_len = (head.len() - 8 + m.content.len() + tail.len()) as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[8..]);
    crc.update(&m.content);
    crc.update(tail);
    head[..4].copy_from_slice(&payload_len.to_le_bytes());
    head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    head
}

/// What follows the content: the flags byte, only when a flag is set (so
/// records without flags keep their older, one encoding).
pub fn trailer(m: &SpooledMessage) -> &'static [u8] {
    if m.from_mx {
        &[FLAG_FROM_MX]
    } else {
        &[]
    }
}

/// Writes a batch file's bytes: the magic, then each record's head,
/// content and trailer.
pub fn write_batch<'a, W: std::io::Write>(
    out: &mut W,
    messages: impl IntoIterator<Item = &'a SpooledMessage>,
) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    for m in messages {
        out.write_all(&record_head(m))?;
        out.write_all(&m.content)?;
        out.write_all(trailer(m))?;
    }
    Ok(())
}

pub fn encode_message(m: &SpooledMessage, out: &mut Vec<u8>) {
    out.extend_from_slice(&record_head(m));
    out.extend_from_slice(&m.content);
    out.extend_from_slice(trailer(m));
}

pub fn encode_batch<'a>(messages: impl IntoIterator<Item = &'a SpooledMessage>) -> Vec<u8> {
    let mut out = Vec::new();
    write_batch(&mut out, messages).expect("writing to a Vec does not fail");
    out
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

fn decode_payload(p: &[u8]) -> Option<SpooledMessage> {
    let mut c = Cursor { buf: p, pos: 0 };
    let id = c.string()?;
    let received_at = c.u64()?;
    let peer = c.string()?;
    let helo = c.string()?;
    let from = c.string()?;
    let n = c.u32()? as usize;
    // Each recipient needs at least its 4-byte length: bound before allocating.
    if n > p.len() / 4 {
        return None;
    }
    let mut rcpts = Vec::with_capacity(n);
    for _ in 0..n {
        rcpts.push(c.string()?);
    }
    let content = c.bytes()?.to_vec();
    // The flags byte follows only when a flag is set: one encoding each.
    let from_mx = match p.len() - c.pos {
        0 => false,
        1 if c.take(1)?[0] == FLAG_FROM_MX => true,
        _ => return None,
    };
    Some(SpooledMessage { id, received_at, peer, helo, from, rcpts, content, from_mx })
}

/// What recovery needs of a record without reading the message: when it
/// arrived and how many recipients it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub received_at: u64,
    pub rcpts: usize,
}

/// The [`Envelope`] from the first bytes of a record's payload (`prefix`,
/// of a payload `payload_len` long). None when the prefix ends before the
/// recipient count, or the fields cannot be those of a payload that long:
/// the caller reads the whole payload then, and a whole payload that gives
/// None is malformed. The checksum is not verified here (that needs every
/// byte); [`decode_batch`] verifies it when the batch is delivered.
pub fn envelope(prefix: &[u8], payload_len: usize) -> Option<Envelope> {
    let mut c = Cursor { buf: prefix, pos: 0 };
    c.bytes()?;
    let received_at = c.u64()?;
    for _ in 0..3 {
        c.bytes()?;
    }
    let rcpts = c.u32()? as usize;
    // Each recipient needs at least its 4-byte length, the content too.
    (rcpts <= payload_len.saturating_sub(c.pos + 4) / 4).then_some(Envelope { received_at, rcpts })
}

pub fn decode_batch(buf: &[u8]) -> Result<Vec<SpooledMessage>, DecodeError> {
    let rest = buf.strip_prefix(MAGIC.as_slice()).ok_or(DecodeError::BadMagic)?;
    let mut out = Vec::new();
    let mut offset = MAGIC.len();
    let mut rest = rest;
    while !rest.is_empty() {
        let index = out.len();
        if rest.len() < 8 {
            return Err(DecodeError::Truncated { index, offset });
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap());
        if len > MAX_RECORD || rest.len() < 8 + len {
            return Err(DecodeError::Truncated { index, offset });
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            return Err(DecodeError::Checksum { index, offset });
        }
        let m = decode_payload(payload).ok_or(DecodeError::Malformed {
            index,
            offset,
            what: "fields do not fit the record",
        })?;
        out.push(m);
        rest = &rest[8 + len..];
        offset += 8 + len;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(i: usize) -> SpooledMessage {
        SpooledMessage {
            id: format!("ID{i}"),
            received_at: 1_700_000_000 + i as u64,
            peer: "192.0.2.1:4000".into(),
            helo: "client.example".into(),
            from: if i.is_multiple_of(2) { String::new() } else { "a@b.example".into() },
            rcpts: vec!["u@example.net".into(); i % 3 + 1],
            content: format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes(),
            from_mx: i.is_multiple_of(3),
        }
    }

    #[test]
    fn envelope_reads_the_fields_before_the_recipients() {
        let mut out = Vec::new();
        let m = sample(5);
        encode_message(&m, &mut out);
        let payload = &out[8..];
        assert_eq!(envelope(payload, payload.len()), Some(Envelope { received_at: m.received_at, rcpts: 3 }));
        // Cut before the recipient count: read more.
        assert_eq!(envelope(&payload[..20], payload.len()), None);
        // A count the payload cannot hold is malformed.
        assert_eq!(envelope(payload, 40), None);
    }

    #[test]
    fn round_trip() {
        let msgs: Vec<_> = (0..5).map(sample).collect();
        assert_eq!(decode_batch(&encode_batch(&msgs)).unwrap(), msgs);
    }

    #[test]
    fn the_flags_byte_is_there_only_when_a_flag_is_set() {
        let mut m = sample(1);
        m.from_mx = false;
        let without = encode_batch(&[m.clone()]);
        m.from_mx = true;
        let with = encode_batch(&[m.clone()]);
        assert_eq!(with.len(), without.len() + 1, "records without flags keep the format from before the byte");
        assert_eq!(decode_batch(&with).unwrap(), vec![m]);
        // Any other byte there (a zero, an unknown flag) is not a record.
        for other in [0u8, 2, 3] {
            let mut bad = with.clone();
            *bad.last_mut().unwrap() = other;
            let payload = bad[MAGIC.len() + 8..].to_vec();
            bad[MAGIC.len() + 4..MAGIC.len() + 8].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            assert!(matches!(decode_batch(&bad), Err(DecodeError::Malformed { .. })), "flags byte {other}");
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let bytes = encode_batch(&[sample(1), sample(2)]);
        let boundary = encode_batch(&[sample(1)]).len();
        for cut in 0..bytes.len() {
            match decode_batch(&bytes[..cut]) {
                Err(_) => {}
                // Cuts at a record boundary decode to the records before it.
                Ok(m) if cut == MAGIC.len() => assert!(m.is_empty()),
                Ok(m) if cut == boundary => assert_eq!(m, vec![sample(1)]),
                Ok(_) => panic!("cut at {cut} decoded"),
            }
        }
        for i in MAGIC.len()..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode_batch(&b).is_err(), "flip at {i}");
        }
    }
}
