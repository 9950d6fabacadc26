//! Smoke fuzzing on stable, run by CI: random spool messages round-tripped
//! through the batch format, and the seed batch files in fuzz/seeds/ mutated
//! (the shared mutator, fuzz/src/smoke.rs, aimed with the format's magic and
//! lengths) fed to the decoder with and without repaired checksums. The properties
//! are the libFuzzer target's, from fuzz/src/queue.rs, included here. The
//! real fuzzing is `cargo fuzz run spool_record` (see fuzz/README.md). The
//! envelope reader recovery uses (record::envelope) is checked against the
//! decoder on random messages and their mutants.

#[allow(dead_code)]
#[path = "../../../fuzz/src/queue.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use port25_spool::SpooledMessage;
use smoke::{seeds, Mutator, Rng};

const SPECIAL: &[u8] = b"\r\n.\0 <>@\":\\[],\t\x7f\xff";
const PIECES: &[&[u8]] = &[b"PORT25BATCH1", b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x01\0\0\0", b"\r\n", b"\xc3\xa3"];
const MUTATOR: Mutator = Mutator { special: SPECIAL, pieces: PIECES };

fn string(rng: &mut Rng) -> String {
    const CHARS: &[&str] = &["a", "Z", "0", "@", ".", " ", "\r\n", "\0", "ã", "€", "\u{10ffff}"];
    (0..rng.below(24)).map(|_| CHARS[rng.below(CHARS.len())]).collect()
}

fn message(rng: &mut Rng) -> SpooledMessage {
    SpooledMessage {
        id: string(rng),
        received_at: rng.next() >> rng.below(64),
        peer: string(rng),
        helo: string(rng),
        from: string(rng),
        rcpts: (0..rng.below(5)).map(|_| string(rng)).collect(),
        content: {
            let len = rng.below(300);
            rng.bytes(len)
        },
        from_mx: rng.below(2) == 1,
    }
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng(0x5eed_0101);
    for _ in 0..2000 {
        let msgs: Vec<SpooledMessage> = (0..rng.below(4)).map(|_| message(&mut rng)).collect();
        let cut = rng.next() as usize;
        checks::round_trip(&msgs, cut);
    }
}

#[test]
fn mutated_batches() {
    smoke::smoke_with("spool_record", 30_000, 0x5eed_0102, &MUTATOR, checks::spool_record);
}

#[test]
fn mutated_encodings_of_random_messages() {
    let mut rng = Rng(0x5eed_0103);
    let corpus = seeds("spool_record");
    for _ in 0..1500 {
        let msgs: Vec<SpooledMessage> = (0..1 + rng.below(3)).map(|_| message(&mut rng)).collect();
        let bytes = port25_spool::record::encode_batch(&msgs);
        let m = MUTATOR.mutate(&mut rng, &bytes, &corpus);
        // spool_record also decodes the mutant with repaired checksums, so
        // the damage reaches the field decoder.
        checks::spool_record(&m);
    }
}

#[test]
fn test_crc_matches_the_format() {
    // The CRC in fuzz/src/queue.rs must agree with the format's, or the
    // repaired batches above would all stop at the checksum.
    let msgs = [SpooledMessage {
        id: "x".into(),
        received_at: 1,
        peer: "p".into(),
        helo: "h".into(),
        from: String::new(),
        rcpts: vec!["r".into()],
        content: b"c".to_vec(),
        from_mx: false,
    }];
    let bytes = port25_spool::record::encode_batch(&msgs);
    assert_eq!(checks::fix_crcs(&bytes), bytes);
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    assert!(port25_spool::record::decode_batch(&damaged).is_err());
    assert_eq!(port25_spool::record::decode_batch(&checks::fix_crcs(&damaged)).unwrap()[0].content, b"b");
}

#[test]
fn envelopes_agree_with_the_decoder_and_survive_mutation() {
    use port25_spool::record::{encode_message, envelope, Envelope};
    let mut rng = Rng(0x5eed_0104);
    let corpus = seeds("spool_record");
    for _ in 0..3000 {
        let msg = message(&mut rng);
        let mut out = Vec::new();
        encode_message(&msg, &mut out);
        let payload = &out[8..];
        let want = Envelope { received_at: msg.received_at, rcpts: msg.rcpts.len() };
        assert_eq!(envelope(payload, payload.len()), Some(want));
        // Any prefix gives the same answer or "read more", never another.
        let cut = rng.below(payload.len() + 1);
        if let Some(e) = envelope(&payload[..cut], payload.len()) {
            assert_eq!(e, want);
        }
        // Damaged: no panic, and a count it accepts fits the payload.
        let m = MUTATOR.mutate(&mut rng, payload, &corpus);
        if let Some(e) = envelope(&m, m.len()) {
            assert!(e.rcpts <= m.len() / 4, "{e:?} from {} bytes", m.len());
        }
        let _ = envelope(&m, rng.next() as usize);
    }
}

#[test]
fn smtputf8_needed() {
    const HEADERS: Mutator = Mutator {
        special: b"\r\n \t;\0\xc3\xa9",
        pieces: &[b"Received: x\r\n\tby y with UTF8SMTPSA id z;\r\n", b"with ", b"UTF8SMTP", b"\r\n\r\n"],
    };
    smoke::smoke_with("smtputf8_needed", 20_000, 0x5e7f_0008, &HEADERS, checks::smtputf8_needed);
}
