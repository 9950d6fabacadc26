//! Stable smoke fuzzing of the Dovecot protocol reader (the cargo-fuzz
//! target is fuzz/fuzz_targets/dovecot_reply.rs; the properties are
//! fuzz/src/directory.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/directory.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

/// The protocol's separators and escapes, and its commands.
const SPECIAL: &[u8] = b"\t\n\r\x01\x00\x7f=0123456789\xff";
const PIECES: &[&[u8]] = &[
    b"OK\t",
    b"FAIL\t",
    b"USER\t",
    b"NOTFOUND\t",
    b"CONT\t",
    b"VERSION\t1\t2\n",
    b"\x01t",
    b"\x01n",
    b"\x011",
    b"user=",
    b"temp",
];

#[test]
fn dovecot_replies_keep_their_properties() {
    let mutator = smoke::Mutator { special: SPECIAL, pieces: PIECES };
    smoke::smoke_with("dovecot_reply", 20_000, 0xd0fe, &mutator, checks::dovecot_reply);
}

#[test]
fn long_lines_are_refused_whole_or_in_pieces() {
    let mut long = b"OK\t1\tuser=".to_vec();
    long.extend(std::iter::repeat_n(b'a', 40_000));
    long.push(b'\n');
    checks::dovecot_reply(&long);
}
