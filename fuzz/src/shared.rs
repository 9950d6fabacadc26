//! Properties of the RESP2 reader and writer of port25's Redis client
//! (port25_shared::resp): the replies a Redis server, or whatever answers
//! on its port, sends to a node.

use port25_shared::resp::{self, Limits, ProtoError, Value, LIMITS};

/// Small bounds, so that inputs of a few hundred bytes reach every limit.
const SMALL: Limits = Limits { bulk: 16, depth: 3, elements: 12, line: 24, reply: 160 };

/// The parser on hostile bytes, with the client's bounds and small ones;
/// and commands built from the input written and read back.
pub fn redis_reply(data: &[u8]) {
    check(data, &LIMITS);
    check(data, &SMALL);
    let args: Vec<&[u8]> = data.split(|&b| b == b'|').collect();
    let mut wire = Vec::new();
    resp::command(&mut wire, &args);
    let wide = Limits { bulk: data.len(), depth: 1, elements: args.len() + 1, line: 32, reply: wire.len() };
    let want = Value::Array(Some(args.iter().map(|a| Value::Bulk(Some(a.to_vec()))).collect()));
    assert_eq!(resp::parse(&wire, &wide), Ok(Some((want, wire.len()))), "a command read back");
}

fn check(data: &[u8], limits: &Limits) {
    let whole = resp::parse(data, limits);
    // A reply's end is decided by its own bytes: every shorter prefix is
    // unfinished (or, where the whole is refused, refused or unfinished),
    // and exactly its bytes give the same reply.
    let end = match &whole {
        Ok(Some((_, n))) => *n,
        _ => data.len(),
    };
    for cut in cuts(end) {
        match (resp::parse(&data[..cut], limits), &whole) {
            (Ok(None), _) | (Err(_), Err(_)) => {}
            (prefix, _) => panic!("prefix of {cut} bytes gave {prefix:?}, the whole {whole:?}"),
        }
    }
    match whole {
        Ok(Some((v, n))) => {
            assert!(n <= data.len() && n <= limits.reply, "used {n} of {}", data.len());
            assert_eq!(resp::parse(&data[..n], limits), Ok(Some((v.clone(), n))));
            let mut values = 0;
            within(&v, limits, 0, &mut values);
            // Written back (numbers canonical), it reads the same.
            let mut again = Vec::new();
            resp::encode(&mut again, &v);
            assert!(again.len() <= n, "written back longer: {} > {n}", again.len());
            assert_eq!(resp::parse(&again, limits), Ok(Some((v, again.len()))), "written back");
        }
        Ok(None) => assert!(data.len() <= limits.reply, "unfinished past the limit: {}", data.len()),
        Err(ProtoError::BulkTooLong(n)) => assert!(n > limits.bulk as i64, "{n} refused"),
        Err(_) => {}
    }
}

/// Every cut for short inputs, about 200 spread ones for longer.
fn cuts(end: usize) -> impl Iterator<Item = usize> {
    (0..end).step_by((end / 200).max(1))
}

fn within(v: &Value, limits: &Limits, depth: usize, values: &mut usize) {
    *values += 1;
    assert!(*values <= limits.elements, "more values than {}", limits.elements);
    match v {
        Value::Simple(s) | Value::Error(s) => {
            assert!(s.len() <= limits.line && !s.contains(&b'\r') && !s.contains(&b'\n'), "{s:?}")
        }
        Value::Bulk(Some(b)) => assert!(b.len() <= limits.bulk, "a bulk of {}", b.len()),
        Value::Array(Some(items)) => {
            assert!(depth < limits.depth, "arrays nested {} deep", depth + 1);
            items.iter().for_each(|i| within(i, limits, depth + 1, values));
        }
        Value::Integer(_) | Value::Bulk(None) | Value::Array(None) => {}
    }
}
