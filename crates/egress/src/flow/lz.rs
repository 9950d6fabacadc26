//! The two block decompressors nfdump 1.7 writes with: LZ4 (the block
//! format, what `LZ4_compress_default` produces) and LZO1X (what
//! `lzo1x_1_compress` produces). Both are small, pure and written here so
//! that every byte of a file from the ISP's flow store goes through code
//! that is fuzzed with the rest (fuzz target `egress_nfcapd`).
//!
//! Both refuse, never panic: a back reference before the start of the
//! output, a length that runs past the input, or output beyond `max` (the
//! caller's bound on a block, so a crafted block cannot make memory grow)
//! is an error.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LzError {
    /// The input ends inside an instruction.
    InputOverrun,
    /// The output would exceed the caller's bound.
    OutputOverrun,
    /// A match refers to bytes before the start of the output (or offset 0).
    LookBehind,
    /// LZO: the end-of-stream marker is missing, or bytes follow it.
    NoEnd,
}

impl LzError {
    pub fn as_str(self) -> &'static str {
        match self {
            LzError::InputOverrun => "compressed data ends early",
            LzError::OutputOverrun => "decompresses beyond the block size limit",
            LzError::LookBehind => "a match points before the start of the block",
            LzError::NoEnd => "no end-of-stream marker where the data ends",
        }
    }
}

/// Bytes past `max` the output buffer holds: short copies are done as
/// one fixed 16- or 32-byte move (no call to memmove for a few bytes),
/// which may write up to this far past the end of what they copy; later
/// copies overwrite it, and the caller reads only the decoded length.
pub const SLACK: usize = 32;

/// The output buffer, `max + SLACK` long: allocated once, then reused as
/// it is by every block. Allocated zeroed by the allocator (fresh pages
/// from the kernel for a large one) rather than filled: the pages a block
/// never reaches are never touched, so a 5 MiB bound costs memory only as
/// far as blocks really go.
fn prepare(out: &mut Vec<u8>, max: usize) {
    if out.len() < max + SLACK {
        *out = vec![0; max + SLACK];
    }
}

/// Copies a match of `len` bytes from `dist` bytes back to `*op` (the
/// regions may overlap: a distance shorter than the length repeats the
/// pattern).
#[inline(always)]
fn copy_match(out: &mut [u8], op: &mut usize, dist: usize, len: usize, max: usize) -> Result<(), LzError> {
    let o = *op;
    if dist == 0 || dist > o {
        return Err(LzError::LookBehind);
    }
    if len > max - o {
        return Err(LzError::OutputOverrun);
    }
    let start = o - dist;
    *op = o + len;
    if dist >= 32 && len <= 32 {
        // Most matches of flow records (a field or two of the record
        // before): one fixed 32-byte move, whose source ends at or before
        // `o`, so it is a plain copy. It writes at most 31 bytes past
        // o + len <= max, inside SLACK.
        let (before, after) = out.split_at_mut(o);
        after[..32].copy_from_slice(&before[start..start + 32]);
    } else if dist >= 16 {
        // 16 bytes at a time, each a fixed move the compiler inlines (no
        // call to memmove): with the source at least 16 bytes back, each
        // chunk's source is written before it is read, overlapping or
        // not. The last chunk may write up to 15 bytes past o + len <=
        // max, inside SLACK; later copies overwrite them.
        let mut i = 0;
        while i < len {
            out.copy_within(start + i..start + i + 16, o + i);
            i += 16;
        }
    } else {
        repeat(out, start, o, len);
    }
    Ok(())
}

/// A match closer than 16 bytes: it repeats the last `o - start` bytes.
/// Everything from `start` on has that period, and so does each copy of
/// it placed at a multiple of the distance: copy in chunks that double,
/// not byte by byte.
#[inline(never)]
fn repeat(out: &mut [u8], start: usize, o: usize, len: usize) {
    let mut at = o;
    while at < o + len {
        let n = (at - start).min(o + len - at);
        out.copy_within(start..start + n, at);
        at += n;
    }
}

#[inline]
fn copy_literals(
    out: &mut [u8],
    op: &mut usize,
    input: &[u8],
    ip: &mut usize,
    len: usize,
    max: usize,
) -> Result<(), LzError> {
    let (i, o) = (*ip, *op);
    if len > input.len() - i {
        return Err(LzError::InputOverrun);
    }
    if len > max - o {
        return Err(LzError::OutputOverrun);
    }
    if len <= 16 && input.len() - i >= 16 {
        out[o..o + 16].copy_from_slice(&input[i..i + 16]);
    } else {
        out[o..o + len].copy_from_slice(&input[i..i + len]);
    }
    *ip = i + len;
    *op = o + len;
    Ok(())
}

/// A byte at `ip`, advancing.
#[inline]
fn byte(input: &[u8], ip: &mut usize) -> Result<usize, LzError> {
    let b = *input.get(*ip).ok_or(LzError::InputOverrun)?;
    *ip += 1;
    Ok(b as usize)
}

/// A length continued in following bytes: each 0 adds 255, the first
/// non-zero byte ends it (LZO's encoding of long runs).
fn lzo_long(input: &[u8], ip: &mut usize, base: usize) -> Result<usize, LzError> {
    let mut n = 0usize;
    loop {
        match byte(input, ip)? {
            0 => n = n.checked_add(255).ok_or(LzError::InputOverrun)?,
            b => return Ok(n + base + b),
        }
    }
}

/// LZ4 block format: sequences of (token, literals, offset, match), the
/// last one literals only. Decodes into `out` (used as a buffer of
/// `max` + [`SLACK`] bytes, kept between calls) and returns the decoded
/// length, at most `max`: the block is `out[..n]`.
pub fn lz4_block(input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<usize, LzError> {
    prepare(out, max);
    let out = &mut out[..max + SLACK];
    let (mut ip, mut op) = (0usize, 0usize);
    loop {
        // The common sequence, while the input and the output have room
        // for the longest one decoded here (token, 14 literals, offset,
        // one length byte: 18 bytes read; 14 + 32 written): its parts
        // read and written as fixed moves without a check each. Bytes
        // follow its literals, so it is not the last sequence (which ends
        // the input with its literals) and its offset is there.
        // Flow records repeat a field or a record 84 bytes back: most
        // matches are from 32 or more back and 32 bytes or shorter.
        while input.len() - ip >= FAST_INPUT && max - op >= FAST_OUTPUT {
            let token = input[ip] as usize;
            if token >= 0xf0 {
                // 15 or more literals: their length continues in bytes.
                break;
            }
            let lit = token >> 4;
            let lits: &[u8; 16] = input[ip + 1..ip + 17].try_into().expect("16 bytes");
            out[op..op + 16].copy_from_slice(lits);
            op += lit;
            let at = ip + 1 + lit;
            let dist = input[at] as usize | (input[at + 1] as usize) << 8;
            ip = at + 2;
            // The match length; with 15 in the token, one length byte
            // adds to it, read without a branch (it is there: the token
            // had at least 39 bytes after it, and 14 + 2 were used).
            let ml = token & 15;
            let ext = usize::from(ml == 15);
            let len = ml + 4 + ext * input[ip] as usize;
            if len <= 32 && dist >= 32 && dist <= op {
                // One fixed 32-byte move whose source ends at or before
                // `op`: a plain copy. It writes up to op + 32 <= max.
                ip += ext;
                let start = op - dist;
                let (before, after) = out.split_at_mut(op);
                let src: &[u8; 32] = before[start..start + 32].try_into().expect("32 bytes");
                after[..32].copy_from_slice(src);
                op += len;
                continue;
            }
            // Longer, closer, or before the start: the general match.
            let len = lz4_length(input, &mut ip, ml)?;
            copy_match(out, &mut op, dist, len, max)?;
        }
        let token = byte(input, &mut ip)?;
        let mut lit = token >> 4;
        if lit == 15 {
            loop {
                let b = byte(input, &mut ip)?;
                lit = lit.checked_add(b).ok_or(LzError::InputOverrun)?;
                if b != 255 {
                    break;
                }
            }
        }
        copy_literals(out, &mut op, input, &mut ip, lit, max)?;
        if ip == input.len() {
            return Ok(op);
        }
        let lo = byte(input, &mut ip)?;
        let hi = byte(input, &mut ip)?;
        let len = lz4_length(input, &mut ip, token & 15)?;
        copy_match(out, &mut op, lo | hi << 8, len, max)?;
    }
}

/// Input bytes from a token on for [`lz4_block`]'s and [`lzo1x`]'s fast
/// loops: the longest instruction they decode without checks reads fewer.
const FAST_INPUT: usize = 40;
/// Output bytes left for the fast loops: the most one of their
/// instructions writes (LZ4: 14 literals then a 32-byte move; LZO: a
/// 32-byte move then 4 bytes of trailing literals) is below it.
const FAST_OUTPUT: usize = 64;

/// An LZ4 match length: the token's 4 bits `ml`, plus, when they are 15,
/// the bytes that follow (each 255 adds and goes on).
#[inline]
fn lz4_length(input: &[u8], ip: &mut usize, ml: usize) -> Result<usize, LzError> {
    let mut len = ml + 4;
    if ml == 15 {
        loop {
            let b = byte(input, ip)?;
            len = len.checked_add(b).ok_or(LzError::InputOverrun)?;
            if b != 255 {
                break;
            }
        }
    }
    Ok(len)
}

/// LZO1X (the format of `lzo1x_1_compress`, decoded as
/// `lzo1x_decompress_safe` does). `state` is what the previous instruction
/// left: 0 after a match with no trailing literals, 1..=3 after that many
/// trailing literals, 4 after a literal run; instructions below 16 mean
/// different things in each. Output as [`lz4_block`]'s.
pub fn lzo1x(input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<usize, LzError> {
    prepare(out, max);
    let out = &mut out[..max + SLACK];
    let (mut ip, mut op) = (0usize, 0usize);
    let mut state;
    // The first byte may start with a literal run of its own encoding.
    match input.first() {
        None => return Err(LzError::InputOverrun),
        Some(&b) if b > 17 => {
            ip = 1;
            let n = b as usize - 17;
            copy_literals(out, &mut op, input, &mut ip, n, max)?;
            state = if n < 4 { n } else { 4 };
        }
        Some(_) => state = 0,
    }
    loop {
        // The common instructions (M2; M3 and M4 whose length fits in the
        // instruction; a literal run of 4..=18 after a match), while the
        // input and the output have room for the longest of them: read
        // and written as fixed moves without a check each. The rest (long
        // lengths, M1, the end marker, the last bytes) go through the
        // general decoding below, one instruction at a time.
        while input.len() - ip >= FAST_INPUT && max - op >= FAST_OUTPUT {
            let t = input[ip] as usize;
            let (dist, len, trailing);
            if t >= 64 {
                // M2: 3..=8 bytes from up to 2 KiB back.
                let h = input[ip + 1] as usize;
                dist = 1 + ((t >> 2) & 7) + (h << 3);
                len = (t >> 5) + 1;
                trailing = t & 3;
                ip += 2;
            } else if t >= 32 {
                // M3 of 3..=33 bytes (0 in the instruction: a long one).
                if t & 31 == 0 {
                    break;
                }
                let (lo, hi) = (input[ip + 1] as usize, input[ip + 2] as usize);
                dist = 1 + ((lo | hi << 8) >> 2);
                len = (t & 31) + 2;
                trailing = lo & 3;
                ip += 3;
            } else if t >= 16 {
                // M4 of 3..=9 bytes (not a long one, nor the end marker).
                let (lo, hi) = (input[ip + 1] as usize, input[ip + 2] as usize);
                let d = ((t & 8) << 11) + ((lo | hi << 8) >> 2);
                if t & 7 == 0 || d == 0 {
                    break;
                }
                dist = d + 0x4000;
                len = (t & 7) + 2;
                trailing = lo & 3;
                ip += 3;
            } else if state == 0 && t != 0 {
                // A literal run of t + 3 (4..=18) bytes, moved as 32.
                let lits: &[u8; 32] = input[ip + 1..ip + 33].try_into().expect("32 bytes");
                out[op..op + 32].copy_from_slice(lits);
                ip += 1 + t + 3;
                op += t + 3;
                state = 4;
                continue;
            } else {
                break;
            }
            if len <= 32 && dist >= 32 && dist <= op {
                // One fixed 32-byte move whose source ends at or before
                // `op`: a plain copy, up to op + 32 <= max.
                let start = op - dist;
                let (before, after) = out.split_at_mut(op);
                let src: &[u8; 32] = before[start..start + 32].try_into().expect("32 bytes");
                after[..32].copy_from_slice(src);
                op += len;
            } else {
                copy_match(out, &mut op, dist, len, max)?;
            }
            // 0..=3 trailing literals, moved as 4 (input: at most 3 + 3 of
            // the 40 bytes were used; output: op + 33 + 4 <= max).
            let lits: &[u8; 4] = input[ip..ip + 4].try_into().expect("4 bytes");
            out[op..op + 4].copy_from_slice(lits);
            ip += trailing;
            op += trailing;
            state = trailing;
        }
        let t = byte(input, &mut ip)?;
        // The low two bits of an instruction's last offset byte (or of the
        // instruction itself) say how many literals follow the match.
        let trailing;
        if t >= 64 {
            // M2: 3..=8 bytes from up to 2 KiB back.
            let h = byte(input, &mut ip)?;
            let dist = 1 + ((t >> 2) & 7) + (h << 3);
            copy_match(out, &mut op, dist, (t >> 5) + 1, max)?;
            trailing = t & 3;
        } else if t >= 32 {
            // M3: any length, up to 16 KiB back.
            let len = if t & 31 == 0 { lzo_long(input, &mut ip, 31)? } else { t & 31 };
            let lo = byte(input, &mut ip)?;
            let hi = byte(input, &mut ip)?;
            let d = lo | hi << 8;
            copy_match(out, &mut op, 1 + (d >> 2), len + 2, max)?;
            trailing = lo & 3;
        } else if t >= 16 {
            // M4: 16..48 KiB back; distance 16384 exactly ends the stream.
            let len = if t & 7 == 0 { lzo_long(input, &mut ip, 7)? } else { t & 7 };
            let lo = byte(input, &mut ip)?;
            let hi = byte(input, &mut ip)?;
            let d = lo | hi << 8;
            let dist = ((t & 8) << 11) + (d >> 2);
            if dist == 0 {
                return if ip == input.len() { Ok(op) } else { Err(LzError::NoEnd) };
            }
            copy_match(out, &mut op, dist + 0x4000, len + 2, max)?;
            trailing = lo & 3;
        } else if state == 0 {
            // A literal run of 3 or more.
            let len = if t == 0 { lzo_long(input, &mut ip, 15)? } else { t };
            copy_literals(out, &mut op, input, &mut ip, len + 3, max)?;
            state = 4;
            continue;
        } else {
            // M1: a short match whose meaning depends on what came before.
            let h = byte(input, &mut ip)?;
            if state == 4 {
                copy_match(out, &mut op, 1 + 0x800 + (t >> 2) + (h << 2), 3, max)?;
            } else {
                copy_match(out, &mut op, 1 + (t >> 2) + (h << 2), 2, max)?;
            }
            trailing = t & 3;
        }
        copy_literals(out, &mut op, input, &mut ip, trailing, max)?;
        state = trailing;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_literals_and_overlapping_match() {
        // "abc" then a match of 9 from 3 back: "abcabcabcabc", then "xy".
        let block = [0x35, b'a', b'b', b'c', 3, 0, 0x20, b'x', b'y'];
        let mut out = Vec::new();
        let n = lz4_block(&block, &mut out, 100).unwrap();
        assert_eq!(&out[..n], b"abcabcabcabcxy");
        assert_eq!(lz4_block(&block, &mut out, 10), Err(LzError::OutputOverrun));
        assert_eq!(lz4_block(&[0x10, b'a', 5, 0], &mut out, 100), Err(LzError::LookBehind));
        assert_eq!(lz4_block(&[0x10, b'a', 0, 0], &mut out, 100), Err(LzError::LookBehind));
        assert_eq!(lz4_block(&[0x50, b'a'], &mut out, 100), Err(LzError::InputOverrun));
        assert_eq!(lz4_block(&[], &mut out, 100), Err(LzError::InputOverrun));
    }

    #[test]
    fn overlapping_matches_repeat_the_pattern_at_every_distance() {
        // A literal run of 20 distinct bytes, then a match of every length
        // from every distance up to it, checked against byte-by-byte copying.
        for dist in 1..=20usize {
            for len in 4..=100usize {
                // Token: 15+ literals, the match length's nibble; then
                // the literal count's extra byte, the literals, the
                // distance, the match length's extra byte; then an empty
                // last sequence.
                let extra = len - 4;
                let mut block = vec![0xf0 | extra.min(15) as u8, 20 - 15];
                block.extend(b'a'..b'a' + 20);
                block.extend([dist as u8, 0]);
                if extra >= 15 {
                    block.push((extra - 15) as u8);
                }
                block.push(0);
                let mut want: Vec<u8> = (b'a'..b'a' + 20).collect();
                for _ in 0..len {
                    want.push(want[want.len() - dist]);
                }
                let mut out = Vec::new();
                let n = lz4_block(&block, &mut out, 1000).unwrap();
                assert_eq!(out[..n], want, "distance {dist}, length {len}");
            }
        }
    }

    /// A xorshift generator from `seed`: `rnd(n)` is below `n`, the same
    /// sequence on every run.
    fn xorshift(seed: u64) -> impl FnMut(usize) -> usize {
        let mut x = seed;
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        }
    }

    #[test]
    fn lz4_short_sequences_decode_as_byte_by_byte() {
        // Many sequences of short literal runs and matches at every
        // distance from 1 to 300 (the fixed-move paths, and the repeat
        // of close ones), checked against a byte-by-byte copy.
        let mut rnd = xorshift(12345);
        for _ in 0..50 {
            let (mut block, mut want) = (Vec::new(), Vec::new());
            // 300 literals: 15 + 255 + 30.
            block.extend([0xf0, 255, 30]);
            want.extend((0..300).map(|i| (i * 7) as u8));
            block.extend_from_slice(&want);
            // Its match: 4 bytes from 300 back.
            block.extend([44, 1]);
            want.extend_from_within(..4);
            for _ in 0..200 {
                let lit = rnd(15);
                let len = 4 + rnd(40);
                let dist = 1 + rnd(300);
                let extra = len - 4;
                block.push((lit as u8) << 4 | extra.min(15) as u8);
                for _ in 0..lit {
                    let b = rnd(256) as u8;
                    block.push(b);
                    want.push(b);
                }
                block.extend([dist as u8, (dist >> 8) as u8]);
                if extra >= 15 {
                    block.push((extra - 15) as u8);
                }
                for _ in 0..len {
                    want.push(want[want.len() - dist]);
                }
            }
            block.extend([0x30, b'e', b'n', b'd']);
            want.extend_from_slice(b"end");
            let mut out = Vec::new();
            let n = lz4_block(&block, &mut out, 1 << 16).unwrap();
            assert_eq!(out[..n], want);
            // Bounded exactly: one byte less is refused.
            assert_eq!(lz4_block(&block, &mut out, n - 1), Err(LzError::OutputOverrun));
        }
    }

    #[test]
    fn lzo_first_run_matches_and_end_marker() {
        // First byte 17+5: five literals "hello"; then M2 of 3 from 5 back
        // ("hel"), no trailing literals; then the end marker 0x11 0 0.
        let m2 = 64 | ((5 - 1) & 7) << 2;
        let block = [22, b'h', b'e', b'l', b'l', b'o', m2, 0, 0x11, 0, 0];
        let mut out = Vec::new();
        let n = lzo1x(&block, &mut out, 100).unwrap();
        assert_eq!(&out[..n], b"hellohel");
        // Bytes after the end marker, and no end marker at all.
        let mut extra = block.to_vec();
        extra.push(0);
        assert_eq!(lzo1x(&extra, &mut out, 100), Err(LzError::NoEnd));
        assert_eq!(lzo1x(&block[..8], &mut out, 100), Err(LzError::InputOverrun));
        // A match before the start.
        assert_eq!(lzo1x(&[18, b'a', 64 | 7 << 2, 9, 0x11, 0, 0], &mut out, 100), Err(LzError::LookBehind));
    }

    #[test]
    fn lzo_instructions_of_every_kind_decode_as_byte_by_byte() {
        // Random streams of every instruction (M1 after a match and after
        // a literal run, M2, M3 and M4 with short and long lengths, short
        // and long literal runs, 0..=3 trailing literals, matches at every
        // distance each can reach), checked against a byte-by-byte copy of
        // what each means.
        let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
        // A length over `bits` bits of the instruction, 0 and zero bytes
        // when it does not fit (lzo_long).
        fn length(block: &mut Vec<u8>, t: u8, n: usize, bits: usize) {
            let top = (1 << bits) - 1;
            if n <= top {
                block.push(t | n as u8);
            } else {
                block.push(t);
                let mut rest = n - top;
                while rest > 255 {
                    block.push(0);
                    rest -= 255;
                }
                block.push(rest as u8);
            }
        }
        for round in 0..40 {
            let (mut block, mut want) = (Vec::new(), Vec::<u8>::new());
            // A first run of 20 000 literals (state 0, a long run).
            length(&mut block, 0, 20_000 - 3, 4);
            for i in 0..20_000usize {
                let b = (i * 31 + i / 7) as u8;
                block.push(b);
                want.push(b);
            }
            let mut state = 4;
            let push_match =
                |block: &mut Vec<u8>, want: &mut Vec<u8>, state: &mut usize, rnd: &mut dyn FnMut(usize) -> usize| {
                    let trailing = rnd(4);
                    let (dist, len) = match rnd(if *state == 0 { 3 } else { 4 }) {
                        0 => {
                            // M2: 3..=8 from 1..=2048 back.
                            let (dist, len) = (1 + rnd(2048), 3 + rnd(6));
                            block.push((((len - 1) << 5) | ((dist - 1) & 7) << 2 | trailing) as u8);
                            block.push(((dist - 1) >> 3) as u8);
                            (dist, len)
                        }
                        1 => {
                            // M3: from 1..=16384 back, short or long.
                            let (dist, len) = (1 + rnd(16384), 3 + if rnd(4) == 0 { rnd(600) } else { rnd(31) });
                            length(block, 32, len - 2, 5);
                            let d = (dist - 1) << 2 | trailing;
                            block.extend([d as u8, (d >> 8) as u8]);
                            (dist, len)
                        }
                        2 => {
                            // M4: from 16385..=20000 back (the first run's reach).
                            let (dist, len) = (16385 + rnd(3616), 3 + if rnd(4) == 0 { rnd(300) } else { rnd(7) });
                            let far = dist - 0x4000;
                            length(block, 16 | ((far >> 14) << 3) as u8, len - 2, 3);
                            let d = (far & 0x3fff) << 2 | trailing;
                            block.extend([d as u8, (d >> 8) as u8]);
                            (dist, len)
                        }
                        _ => {
                            // M1: 2 from 1..=1024 back after a match's
                            // literals, 3 from 2049..=3072 back after a run.
                            let (base, len) = if *state == 4 { (2049, 3) } else { (1, 2) };
                            let d = rnd(1024);
                            block.extend([((d & 3) << 2 | trailing) as u8, (d >> 2) as u8]);
                            (base + d, len)
                        }
                    };
                    for _ in 0..len {
                        want.push(want[want.len() - dist]);
                    }
                    for _ in 0..trailing {
                        let b = rnd(256) as u8;
                        block.push(b);
                        want.push(b);
                    }
                    *state = trailing;
                };
            for _ in 0..2000 {
                if state == 0 && rnd(3) == 0 {
                    // A literal run of 4..=18, or a long one.
                    let n = 4 + if rnd(8) == 0 { rnd(400) } else { rnd(15) };
                    length(&mut block, 0, n - 3, 4);
                    for _ in 0..n {
                        let b = rnd(256) as u8;
                        block.push(b);
                        want.push(b);
                    }
                    state = 4;
                } else {
                    push_match(&mut block, &mut want, &mut state, &mut rnd);
                }
            }
            block.extend([0x11, 0, 0]);
            let mut out = Vec::new();
            let n = lzo1x(&block, &mut out, 1 << 20).unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            assert!(out[..n] == want[..], "round {round}");
            // Bounded exactly: one byte less is refused; cut anywhere, refused.
            assert_eq!(lzo1x(&block, &mut out, n - 1), Err(LzError::OutputOverrun));
            let cut = 20_010 + rnd(block.len() - 20_010);
            assert!(lzo1x(&block[..cut], &mut out, 1 << 20).is_err());
        }
    }

    #[test]
    fn lzo_long_literal_run_after_a_match() {
        // state 0 at the start (first byte <= 17): a run of 0 -> 15 + 255 + 2 + 3 = 275 literals.
        let mut block = vec![0, 0, 2];
        block.extend(std::iter::repeat_n(b'z', 275));
        // M3 (t = 32 + 1: 3 bytes) from 1 back with 2 trailing literals.
        block.extend([33, 2, 0, b'!', b'?']);
        block.extend([0x11, 0, 0]);
        let mut out = Vec::new();
        let n = lzo1x(&block, &mut out, 1000).unwrap();
        assert_eq!(n, 275 + 3 + 2);
        assert!(out[..n].ends_with(b"zzz!?"));
    }

    /// LZ4 decoded byte by byte, with the same checks in the same order
    /// as [`lz4_block`]'s general path: what every path of it must give.
    fn lz4_reference(input: &[u8], max: usize) -> Result<Vec<u8>, LzError> {
        let mut out = Vec::new();
        let mut ip = 0;
        let length = |ip: &mut usize, mut n: usize| -> Result<usize, LzError> {
            if n == 15 {
                loop {
                    let b = byte(input, ip)?;
                    n += b;
                    if b != 255 {
                        return Ok(n);
                    }
                }
            }
            Ok(n)
        };
        loop {
            let token = byte(input, &mut ip)?;
            let lit = length(&mut ip, token >> 4)?;
            if lit > input.len() - ip {
                return Err(LzError::InputOverrun);
            }
            if lit > max - out.len() {
                return Err(LzError::OutputOverrun);
            }
            out.extend_from_slice(&input[ip..ip + lit]);
            ip += lit;
            if ip == input.len() {
                return Ok(out);
            }
            let dist = byte(input, &mut ip)? | byte(input, &mut ip)? << 8;
            let len = length(&mut ip, token & 15)? + 4;
            if dist == 0 || dist > out.len() {
                return Err(LzError::LookBehind);
            }
            if len > max - out.len() {
                return Err(LzError::OutputOverrun);
            }
            for _ in 0..len {
                out.push(out[out.len() - dist]);
            }
        }
    }

    /// LZO1X decoded byte by byte, with [`lzo1x`]'s general path's checks
    /// in its order.
    fn lzo_reference(input: &[u8], max: usize) -> Result<Vec<u8>, LzError> {
        let mut out: Vec<u8> = Vec::new();
        let mut ip = 0;
        let literals = |out: &mut Vec<u8>, ip: &mut usize, n: usize| -> Result<(), LzError> {
            if n > input.len() - *ip {
                return Err(LzError::InputOverrun);
            }
            if n > max - out.len() {
                return Err(LzError::OutputOverrun);
            }
            out.extend_from_slice(&input[*ip..*ip + n]);
            *ip += n;
            Ok(())
        };
        let copy = |out: &mut Vec<u8>, dist: usize, len: usize| -> Result<(), LzError> {
            if dist == 0 || dist > out.len() {
                return Err(LzError::LookBehind);
            }
            if len > max - out.len() {
                return Err(LzError::OutputOverrun);
            }
            for _ in 0..len {
                out.push(out[out.len() - dist]);
            }
            Ok(())
        };
        let mut state = 0;
        match input.first() {
            None => return Err(LzError::InputOverrun),
            Some(&b) if b > 17 => {
                ip = 1;
                literals(&mut out, &mut ip, b as usize - 17)?;
                state = (b as usize - 17).min(4);
            }
            Some(_) => {}
        }
        loop {
            let t = byte(input, &mut ip)?;
            let trailing;
            if t >= 64 {
                let h = byte(input, &mut ip)?;
                copy(&mut out, 1 + ((t >> 2) & 7) + (h << 3), (t >> 5) + 1)?;
                trailing = t & 3;
            } else if t >= 32 {
                let len = if t & 31 == 0 { lzo_long(input, &mut ip, 31)? } else { t & 31 };
                let (lo, hi) = (byte(input, &mut ip)?, byte(input, &mut ip)?);
                copy(&mut out, 1 + ((lo | hi << 8) >> 2), len + 2)?;
                trailing = lo & 3;
            } else if t >= 16 {
                let len = if t & 7 == 0 { lzo_long(input, &mut ip, 7)? } else { t & 7 };
                let (lo, hi) = (byte(input, &mut ip)?, byte(input, &mut ip)?);
                let dist = ((t & 8) << 11) + ((lo | hi << 8) >> 2);
                if dist == 0 {
                    return if ip == input.len() { Ok(out) } else { Err(LzError::NoEnd) };
                }
                copy(&mut out, dist + 0x4000, len + 2)?;
                trailing = lo & 3;
            } else if state == 0 {
                let len = if t == 0 { lzo_long(input, &mut ip, 15)? } else { t };
                literals(&mut out, &mut ip, len + 3)?;
                state = 4;
                continue;
            } else {
                let h = byte(input, &mut ip)?;
                if state == 4 {
                    copy(&mut out, 1 + 0x800 + (t >> 2) + (h << 2), 3)?;
                } else {
                    copy(&mut out, 1 + (t >> 2) + (h << 2), 2)?;
                }
                trailing = t & 3;
            }
            literals(&mut out, &mut ip, trailing)?;
            state = trailing;
        }
    }

    /// A decompressor as [`lz4_block`] and [`lzo1x`] are called.
    type Decoder = fn(&[u8], &mut Vec<u8>, usize) -> Result<usize, LzError>;
    /// A byte-by-byte decoder: the output, or the error, it must agree with.
    type Reference = fn(&[u8], usize) -> Result<Vec<u8>, LzError>;

    /// Runs a decoder on `block` with output bounds around its size and
    /// on damaged copies of it (a byte changed, cut short, a byte added),
    /// comparing each result, decoded bytes or error, with the reference.
    fn same_as_reference(block: &[u8], rnd: &mut impl FnMut(usize) -> usize, decode: Decoder, reference: Reference) {
        let mut out = Vec::new();
        let check = |b: &[u8], max: usize, out: &mut Vec<u8>| {
            let got = decode(b, out, max).map(|n| out[..n].to_vec());
            assert_eq!(got, reference(b, max), "max {max}, block of {}", b.len());
        };
        let n = reference(block, 1 << 20).expect("a valid block").len();
        for max in [n, n - 1, n.saturating_sub(20), n.saturating_sub(63), n / 2, 1 << 20] {
            check(block, max, &mut out);
        }
        for _ in 0..40 {
            let mut b = block.to_vec();
            match rnd(3) {
                0 => {
                    let i = rnd(b.len());
                    b[i] = rnd(256) as u8;
                }
                1 => b.truncate(rnd(b.len())),
                _ => b.insert(rnd(b.len() + 1), rnd(256) as u8),
            }
            check(&b, 1 << 20, &mut out);
            check(&b, n, &mut out);
        }
    }

    /// A match distance: close ones (1..=16, repeating a short pattern;
    /// 17..=40, around the 32 of the fixed move) as often as far ones.
    fn distance(rnd: &mut impl FnMut(usize) -> usize, made: usize) -> usize {
        let d = match rnd(3) {
            0 => 1 + rnd(16),
            1 => 17 + rnd(24),
            _ => 1 + rnd(made),
        };
        d.min(made)
    }

    #[test]
    fn lz4_every_path_decodes_as_byte_by_byte() {
        // Sequences of every kind the fast loop and the general path
        // meet: 0..=20 literals (15 and more continue in a byte), matches
        // of 4..=18, 19..=32 (one length byte), 33..=300 (a 255 byte
        // among them too) from every distance, the last literals ending
        // anywhere near the end of the input and of the output bound.
        let mut rnd = xorshift(0x5eed_1234_abcd_0001);
        for round in 0..300 {
            let mut block = Vec::new();
            let mut made = 0usize;
            let literals = |block: &mut Vec<u8>, made: &mut usize, lit: usize, rnd: &mut dyn FnMut(usize) -> usize| {
                if lit >= 15 {
                    block.push((lit - 15) as u8);
                }
                for _ in 0..lit {
                    block.push(rnd(256) as u8);
                }
                *made += lit;
            };
            let sequences = rnd(if round % 3 == 0 { 4 } else { 60 });
            for i in 0..sequences {
                let lit = if i == 0 { 1 + rnd(20) } else { rnd(21) };
                let len = match rnd(4) {
                    0 => 4 + rnd(15),
                    1 => 19 + rnd(14),
                    2 => 33 + rnd(268),
                    _ => 4 + 15 + 255 + rnd(40),
                };
                let t = block.len();
                block.push((lit.min(15) << 4 | (len - 4).min(15)) as u8);
                literals(&mut block, &mut made, lit, &mut rnd);
                let dist = distance(&mut rnd, made);
                block.extend([dist as u8, (dist >> 8) as u8]);
                let mut extra = (len - 4).saturating_sub(15);
                if len - 4 >= 15 {
                    while extra >= 255 {
                        block.push(255);
                        extra -= 255;
                    }
                    block.push(extra as u8);
                }
                made += len;
                debug_assert!(block[t] >> 4 == lit.min(15) as u8);
            }
            let lit = rnd(21);
            block.push((lit.min(15) << 4) as u8);
            literals(&mut block, &mut made, lit, &mut rnd);
            same_as_reference(&block, &mut rnd, lz4_block, lz4_reference);
        }
    }

    #[test]
    fn lzo_every_path_decodes_as_byte_by_byte() {
        // Instructions of every kind (M1 after a match and after a run;
        // M2; M3 and M4 with lengths in the instruction and continued in
        // bytes; literal runs short and long; 0..=3 trailing literals)
        // with close and far distances, ending near the end of the input
        // and of the output bound, then the end marker.
        let mut rnd = xorshift(0x5eed_4321_dcba_0002);
        for round in 0..300 {
            let mut block = Vec::new();
            let mut made = 0usize;
            let mut lits = |block: &mut Vec<u8>, made: &mut usize, n: usize| {
                for _ in 0..n {
                    block.push(rnd(256) as u8);
                }
                *made += n;
            };
            // A first run of 1..=40 in the first byte's own encoding.
            let first = 1 + (round % 40);
            block.push((17 + first) as u8);
            lits(&mut block, &mut made, first);
            let mut state = first.min(4);
            let mut rnd = xorshift(round as u64 * 7919 + 1);
            let instructions = rnd(if round % 3 == 0 { 4 } else { 80 });
            for _ in 0..instructions {
                if state == 0 && rnd(3) == 0 {
                    let n = 4 + if rnd(6) == 0 { rnd(300) } else { rnd(15) };
                    if n - 3 <= 15 {
                        block.push((n - 3) as u8);
                    } else {
                        block.push(0);
                        let mut rest = n - 3 - 15;
                        while rest > 255 {
                            block.push(0);
                            rest -= 255;
                        }
                        block.push(rest as u8);
                    }
                    for _ in 0..n {
                        block.push(rnd(256) as u8);
                    }
                    made += n;
                    state = 4;
                    continue;
                }
                let trailing = rnd(4);
                let kind = rnd(if state == 0 { 3 } else { 4 });
                let len;
                match kind {
                    0 => {
                        let dist = distance(&mut rnd, made).min(2048);
                        len = 3 + rnd(6);
                        block.push((((len - 1) << 5) | ((dist - 1) & 7) << 2 | trailing) as u8);
                        block.push(((dist - 1) >> 3) as u8);
                    }
                    1 => {
                        let dist = distance(&mut rnd, made).min(16384);
                        len = 3 + if rnd(4) == 0 { rnd(400) } else { rnd(31) };
                        if len - 2 <= 31 {
                            block.push((32 | (len - 2)) as u8);
                        } else {
                            block.push(32);
                            let mut rest = len - 2 - 31;
                            while rest > 255 {
                                block.push(0);
                                rest -= 255;
                            }
                            block.push(rest as u8);
                        }
                        let d = (dist - 1) << 2 | trailing;
                        block.extend([d as u8, (d >> 8) as u8]);
                    }
                    2 => {
                        // From 16385 back or more: before the start unless
                        // enough was made (a refused block, also compared).
                        let far = 1 + rnd(made.saturating_sub(0x4000).clamp(1, 0x4000));
                        len = 3 + if rnd(4) == 0 { rnd(100) } else { rnd(7) };
                        if len - 2 <= 7 {
                            block.push((16 | (len - 2)) as u8);
                        } else {
                            block.push(16);
                            let mut rest = len - 2 - 7;
                            while rest > 255 {
                                block.push(0);
                                rest -= 255;
                            }
                            block.push(rest as u8);
                        }
                        let d = (far & 0x3fff) << 2 | trailing;
                        block.extend([d as u8, (d >> 8) as u8]);
                    }
                    _ => {
                        let d = rnd(64);
                        len = if state == 4 { 3 } else { 2 };
                        block.extend([((d & 3) << 2 | trailing) as u8, (d >> 2) as u8]);
                    }
                }
                made += len;
                for _ in 0..trailing {
                    block.push(rnd(256) as u8);
                }
                made += trailing;
                state = trailing;
            }
            block.extend([0x11, 0, 0]);
            // Some of these refer before the start (M1 and M4 far back
            // from a short output): the reference says which.
            let mut out = Vec::new();
            let whole = lzo_reference(&block, 1 << 20);
            let got = lzo1x(&block, &mut out, 1 << 20).map(|n| out[..n].to_vec());
            assert_eq!(got, whole, "round {round}");
            if whole.is_ok() {
                same_as_reference(&block, &mut rnd, lzo1x, lzo_reference);
            }
        }
    }
}
