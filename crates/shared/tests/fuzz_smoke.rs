//! Stable smoke fuzzing of the Redis client's RESP2 parser (the cargo-fuzz
//! target is fuzz/fuzz_targets/redis_reply.rs; the properties are
//! fuzz/src/shared.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/shared.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

/// The protocol's type bytes, line ends, signs and digits.
const SPECIAL: &[u8] = b"+-:$*\r\n0123456789|";
const PIECES: &[&[u8]] =
    &[b"\r\n", b"*2\r\n", b"*-1\r\n", b"$-1\r\n", b"$0\r\n\r\n", b":1\r\n", b"-ERR x\r\n", b"$99999999\r\n"];

#[test]
fn redis_replies_keep_their_properties() {
    let mutator = smoke::Mutator { special: SPECIAL, pieces: PIECES };
    smoke::smoke_with("redis_reply", 20_000, 0x7ed15, &mutator, checks::redis_reply);
}
