//! Properties of the SpamPots shipping parsers: the collector/shipper HTTP
//! head parser, the append planner and the hpfeeds frame parser. Never
//! panic; a complete head or frame depends only on the bytes it used; the
//! append planner never writes past what it was given nor leaves a partial
//! line.

use port25_collect::{append, hpfeeds, http};

pub fn collect_http(data: &[u8]) {
    match http::parse(data) {
        Ok(Some((head, used))) => {
            assert!(used <= data.len() && used <= http::MAX_HEAD);
            assert_eq!(http::parse(&data[..used]), Ok(Some((head.clone(), used))));
            let _ = head.content_length();
            let _ = (head.request(), head.status());
        }
        Ok(None) => assert!(data.len() < http::MAX_HEAD),
        Err(_) => {}
    }
}

/// First 2 bytes: `have` and `offset` (small), the rest: the batch.
pub fn collect_append(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (have, offset, body) = (data[0] as u64, data[1] as u64, &data[2..]);
    match append::plan(have, offset, body) {
        append::Plan::Append { skip } => {
            assert!(offset <= have && offset + body.len() as u64 > have);
            assert_eq!(offset + skip as u64, have);
            assert!(skip == 0 || body[skip - 1] == b'\n');
        }
        append::Plan::Duplicate => assert!(offset + body.len() as u64 <= have),
        append::Plan::Gap => assert!(offset > have),
        append::Plan::Misaligned => assert!(offset < have),
    }
}

pub fn hpfeeds_frame(data: &[u8]) {
    if let Ok(Some((op, body, used))) = hpfeeds::parse(data) {
        assert!(used >= 5 && used <= data.len() && body.len() == used - 5);
        assert_eq!(hpfeeds::parse(&data[..used]), Ok(Some((op, body, used))));
        if op == hpfeeds::OP_PUBLISH {
            // Re-encoding a publish with fields taken from the frame parses back.
            let p = hpfeeds::publish("id", "chan", body);
            assert_eq!(hpfeeds::parse(&p).unwrap().unwrap().2, p.len());
        }
        let _ = hpfeeds::info_nonce(body);
    }
}
