//! Reading a capture store for the report: every segment of every sensor,
//! streamed in bounded chunks through `port25_capture::reader::parse_views` (the
//! format's own reader, borrowing rather than copying each field, so torn tails and bad lines are handled as the
//! contract says), counted on as many threads as there are cores.
//!
//! A capture directory is either one sensor's store (`<dir>/events/`), a
//! collector's (`<dir>/sensors/<name>/events/`), or a bare `events/`.

use crate::group::{GroupBy, Grouped};
use crate::stats::Filter;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Chunk size: a segment is read this much at a time (cut at a line end),
/// so memory does not grow with the segment size limit.
const CHUNK: usize = 4 << 20;

/// Damage found while reading, with where it is.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Damage {
    pub bad_lines: u64,
    pub torn_tails: u64,
    /// The first few, as `file:line: what`.
    pub examples: Vec<String>,
}

impl Damage {
    fn note(&mut self, msg: String) {
        if self.examples.len() < 20 {
            self.examples.push(msg);
        }
    }
    fn merge(&mut self, o: Damage) {
        self.bad_lines += o.bad_lines;
        self.torn_tails += o.torn_tails;
        for m in o.examples {
            self.note(m);
        }
    }
}

/// Every segment under a capture directory, in sequence order per sensor.
pub fn segments(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut event_dirs = Vec::new();
    if dir.join("events").is_dir() {
        event_dirs.push(dir.join("events"));
    }
    if dir.join("sensors").is_dir() {
        let mut names: Vec<_> =
            std::fs::read_dir(dir.join("sensors"))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        event_dirs.extend(names.into_iter().map(|p| p.join("events")).filter(|p| p.is_dir()));
    }
    if event_dirs.is_empty() {
        event_dirs.push(dir.to_owned());
    }
    let mut out = Vec::new();
    for d in event_dirs {
        out.extend(list(&d)?);
    }
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no capture segments (events-YYYYMMDD-NNNNNN.jsonl or .jsonl.zst) in events/, sensors/*/events/ or the directory itself", dir.display()),
        ));
    }
    Ok(out)
}

/// Compressed segments end in this (one or more zstd frames of a segment's
/// lines: `zstd FILE` of a closed segment, for archives).
pub const ZSTD_SUFFIX: &str = ".zst";

/// The segments of one `events/` directory in sequence order, plain or
/// zstd-compressed. A sequence number present both ways (a compression
/// that stopped half way) is refused: counting either could be wrong.
fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let plain = name.strip_suffix(ZSTD_SUFFIX).unwrap_or(name);
        if let Some((_, seq)) = port25_capture::log::parse_segment_name(plain) {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} and {}: the same segment twice (plain and compressed?); keep one",
                w[0].1.display(),
                w[1].1.display()
            ),
        ));
    }
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// A reader telling `progress` the bytes it reads (the file's bytes, so a
/// compressed segment's progress adds up to its size on disk).
struct Counted<'p, R> {
    inner: R,
    progress: &'p (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Feeds one segment to `f` event by event.
pub fn read_segment(
    path: &Path,
    damage: &mut Damage,
    f: &mut impl FnMut(&port25_capture::view::EventView<'_>),
) -> std::io::Result<()> {
    read_segment_with(path, damage, f, &|_| {})
}

/// [`read_segment`], telling `progress` the bytes of each chunk read.
fn read_segment_with(
    path: &Path,
    damage: &mut Damage,
    f: &mut impl FnMut(&port25_capture::view::EventView<'_>),
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<()> {
    let file = Counted { inner: std::fs::File::open(path)?, progress };
    let compressed = path.extension().is_some_and(|x| x == ZSTD_SUFFIX.trim_start_matches('.'));
    // zstd's decoder keeps its window (at most 128 MiB: the library's
    // default limit, a larger frame is refused) and a small input buffer.
    let mut file: Box<dyn Read> =
        if compressed { Box::new(zstd::stream::read::Decoder::new(file)?) } else { Box::new(file) };
    // `buf[..filled]` holds what is read and not yet parsed: the start of
    // a line cut by the previous read. The buffer is zeroed once and reused;
    // it grows (a chunk at a time, as far as the segment) only for a line
    // longer than half a chunk.
    let mut buf: Vec<u8> = vec![0; CHUNK];
    let mut filled = 0usize;
    let mut base = 0u64;
    let mut line_no = 1u64;
    loop {
        if buf.len() - filled < CHUNK / 2 {
            buf.resize(filled + CHUNK, 0);
        }
        let n = file.read(&mut buf[filled..])?;
        filled += n;
        let eof = n == 0;
        // Parse up to the last newline; keep the rest for the next read.
        let cut = if eof { filled } else { memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1) };
        if cut == 0 && !eof {
            continue;
        }
        let parsed = port25_capture::reader::parse_views(&buf[..cut], base, |_, e| f(&e));
        let line_of = |off: u64| line_no + memchr::memchr_iter(b'\n', &buf[..(off - base) as usize]).count() as u64;
        for off in &parsed.bad {
            damage.bad_lines += 1;
            let line = line_of(*off);
            damage
                .note(format!("{}:{line}: not a capture event (bad JSON or missing fields); skipped", path.display()));
        }
        if let Some(off) = parsed.torn {
            damage.torn_tails += 1;
            let line = line_of(off);
            damage.note(format!(
                "{}:{line}: torn last line (no newline: the sensor stopped while writing); skipped",
                path.display()
            ));
        }
        if eof {
            return Ok(());
        }
        line_no += parsed.lines;
        base += cut as u64;
        buf.copy_within(cut..filled, 0);
        filled -= cut;
    }
}

/// Counts a whole capture directory with `threads` workers.
pub fn scan(dir: &Path, filter: &Filter, threads: usize) -> std::io::Result<(crate::stats::Accumulator, Damage)> {
    scan_grouped(dir, filter, None, threads, &|_| {}).map(|(g, d)| (g.total, d))
}

/// [`scan`], and per group when `group` is given. `progress` is told the
/// bytes read, chunk by chunk (they add up to the segments' sizes).
pub fn scan_grouped(
    dir: &Path,
    filter: &Filter,
    group: Option<GroupBy>,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<(Grouped, Damage)> {
    let segs = segments(dir)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::io::Result<(Grouped, Damage)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut acc = Grouped::new(filter.clone(), group);
                    let mut damage = Damage::default();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = segs.get(i) else { break };
                        read_segment_with(p, &mut damage, &mut |e| acc.add(e), progress)
                            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                    }
                    Ok((acc, damage))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("scan worker panicked")).collect()
    });
    let mut total = Grouped::new(filter.clone(), group);
    let mut damage = Damage::default();
    for r in results {
        let (a, d) = r?;
        total.merge(a);
        damage.merge(d);
    }
    Ok((total, damage))
}
