//! Properties of the spool's batch-file format (`port25_spool::record`).

use port25_spool::record::{decode_batch, encode_batch, MAGIC};
use port25_spool::SpooledMessage;

/// CRC-32 (IEEE), bit by bit: independent of the crate under test.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Rewrites the checksum of every record that fits, so that mutated bytes
/// get past the CRC and reach the field decoder.
pub fn fix_crcs(buf: &[u8]) -> Vec<u8> {
    let mut b = buf.to_vec();
    if !b.starts_with(MAGIC) {
        return b;
    }
    let mut pos = MAGIC.len();
    while b.len() - pos >= 8 {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        if b.len() - pos - 8 < len {
            break;
        }
        let crc = crc32(&b[pos + 8..pos + 8 + len]);
        b[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += 8 + len;
    }
    b
}

/// `decode_batch` never panics, and what it accepts it would write back
/// byte for byte (the format has one encoding per batch).
pub fn decode(buf: &[u8]) {
    if let Ok(msgs) = decode_batch(buf) {
        assert_eq!(encode_batch(&msgs), buf, "decoded {msgs:?} but it encodes differently");
    }
}

/// Raw fuzz input: decoded as it is and with its checksums repaired.
pub fn spool_record(buf: &[u8]) {
    decode(buf);
    let fixed = fix_crcs(buf);
    if fixed != buf {
        decode(&fixed);
    }
}

/// Encoding then decoding gives the messages back; every cut of the
/// encoding that is not at a record boundary is refused, and every cut at
/// one gives the messages before it. `cut` picks which cut to try.
pub fn round_trip(msgs: &[SpooledMessage], cut: usize) {
    let bytes = encode_batch(msgs);
    assert!(bytes.starts_with(MAGIC));
    assert_eq!(decode_batch(&bytes).as_ref(), Ok(&msgs.to_vec()), "round trip");
    let mut boundaries = vec![MAGIC.len()];
    for m in msgs {
        let end = encode_batch(std::slice::from_ref(m)).len() - MAGIC.len() + boundaries.last().unwrap();
        boundaries.push(end);
    }
    assert_eq!(*boundaries.last().unwrap(), bytes.len());
    let cut = cut % (bytes.len() + 1);
    match (decode_batch(&bytes[..cut]), boundaries.iter().position(|&b| b == cut)) {
        (Ok(got), Some(n)) => assert_eq!(got, msgs[..n].to_vec(), "cut at boundary {cut}"),
        (Err(_), None) => {}
        (got, at) => panic!("cut at {cut} (record boundary: {at:?}) decoded as {got:?}"),
    }
    if cut >= MAGIC.len() && cut < bytes.len() {
        // One flipped bit anywhere after the magic is detected.
        let mut flipped = bytes.clone();
        flipped[cut] ^= 1 << (cut % 8);
        assert!(decode_batch(&flipped).is_err(), "bit flip at {cut} went unnoticed");
    }
}

/// `smtputf8_needed` (port25_spool::smtputf8::needed, read by the outbound
/// and LMTP clients): the input is split at its first NUL into an envelope
/// sender and the message. Never panics; a non-ASCII sender always needs
/// SMTPUTF8; an all-ASCII header section never does.
pub fn smtputf8_needed(data: &[u8]) {
    let (from, content) = match data.iter().position(|&b| b == 0) {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::new(), data),
    };
    let needed = port25_spool::smtputf8::needed(&from, ["r@example.org"], content);
    if !from.is_ascii() {
        assert!(needed, "{from:?}");
    }
    if from.is_ascii() && content.is_ascii() {
        assert!(!needed, "{:?}", String::from_utf8_lossy(content));
    }
}
