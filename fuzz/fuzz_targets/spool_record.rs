//! Spool batch files: port25_spool::record::{decode_batch, encode_batch}.
//! The same bytes are decoded as a batch file (raw and with repaired
//! checksums) and read through `arbitrary` as messages to round-trip.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use port25_spool::SpooledMessage;

#[derive(Arbitrary, Debug)]
struct Message {
    id: String,
    received_at: u64,
    peer: String,
    helo: String,
    from: String,
    rcpts: Vec<String>,
    content: Vec<u8>,
    from_mx: bool,
}

impl From<Message> for SpooledMessage {
    fn from(m: Message) -> SpooledMessage {
        SpooledMessage {
            id: m.id,
            received_at: m.received_at,
            peer: m.peer,
            helo: m.helo,
            from: m.from,
            rcpts: m.rcpts,
            content: m.content,
            from_mx: m.from_mx,
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    port25_fuzz::queue::spool_record(data);
    let mut u = Unstructured::new(data);
    let (Ok(cut), Ok(msgs)) = (u.arbitrary::<u16>(), u.arbitrary::<Vec<Message>>()) else {
        return;
    };
    let msgs: Vec<SpooledMessage> = msgs.into_iter().map(Into::into).collect();
    port25_fuzz::queue::round_trip(&msgs, usize::from(cut));
});
