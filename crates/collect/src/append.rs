//! The collector's rule for "nothing lost, nothing twice": a sensor sends
//! complete lines of a segment starting at a byte offset; the collector
//! holds `have` bytes of that segment. Pure.

#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Write `body[skip..]` at the end (skip > 0: a resend overlapping
    /// what is already held, e.g. after a lost acknowledgement).
    Append { skip: usize },
    /// Everything is already held.
    Duplicate,
    /// The sensor is ahead of what the collector holds (a gap): it must
    /// resend from `have`.
    Gap,
    /// The overlap does not end at a line boundary: the two copies differ.
    Misaligned,
}

pub fn plan(have: u64, offset: u64, body: &[u8]) -> Plan {
    if offset > have {
        return Plan::Gap;
    }
    let end = offset + body.len() as u64;
    if end <= have {
        return Plan::Duplicate;
    }
    let skip = (have - offset) as usize;
    if skip > 0 && body[skip - 1] != b'\n' {
        return Plan::Misaligned;
    }
    Plan::Append { skip }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(0, 0, b"a\nb\n"), Plan::Append { skip: 0 });
        assert_eq!(plan(2, 0, b"a\nb\n"), Plan::Append { skip: 2 });
        assert_eq!(plan(4, 0, b"a\nb\n"), Plan::Duplicate);
        assert_eq!(plan(4, 2, b"b\n"), Plan::Duplicate);
        assert_eq!(plan(1, 0, b"a\nb\n"), Plan::Misaligned);
        assert_eq!(plan(2, 4, b"c\n"), Plan::Gap);
    }
}
