//! Properties of the configuration parser (`port25_config::parse`).

use std::path::Path;

/// `parse` reads the file named by `recipients_file`, so text that could
/// set that key is skipped: a fuzzer must not read /dev/zero or a FIFO.
/// Lines with escapes are skipped too, since a quoted key can be spelled
/// with them; whole-line comments cannot set a key and are allowed.
pub fn touches_files(text: &str) -> bool {
    text.lines().any(|l| !l.trim_start().starts_with('#') && (l.contains("_file") || l.contains('\\')))
}

/// Never panics; an error names the file and a line of the text (or the
/// line just after its last newline) and a column; a configuration that is
/// accepted is consistent.
pub fn parse(text: &str) {
    if touches_files(text) {
        return;
    }
    let file = Path::new("/fuzz/port25.toml");
    let base = Path::new("/fuzz");
    match port25_config::parse(text, file, base) {
        Err(e) => {
            let lines = text.lines().count();
            assert!(e.line >= 1 && e.line <= lines + 1, "error on line {} of {lines}: {e} in {text:?}", e.line);
            assert!(e.column >= 1, "column {} in {e}", e.column);
            assert_eq!(e.file, file);
            assert!(!e.hint.is_empty(), "{e:?}");
            assert!(!e.message.is_empty(), "empty error message: {e:?} in {text:?}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("/fuzz/port25.toml:{}:{}: ", e.line, e.column)), "{shown}");
        }
        Ok(c) => {
            assert!(!c.listeners.is_empty() && !c.mx.domains.is_empty());
            assert!(c.mx.domains.iter().all(|d| *d == d.to_lowercase()), "{:?}", c.mx.domains);
            assert!(
                c.data_dir.is_absolute() && c.delivery.maildir.is_absolute(),
                "paths are resolved against the base"
            );
            let mut names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), c.listeners.len(), "duplicate listener names");
            for l in &c.listeners {
                assert!(
                    l.limits.max_command_line >= 512 && l.limits.max_data_line > 0 && l.limits.max_message_size > 0,
                    "{l:?}"
                );
            }
            if let Some(r) = &c.mx.recipients {
                for a in r {
                    let (_, d) = a.rsplit_once('@').expect("recipient without @");
                    assert!(c.mx.domains.iter().any(|x| x.eq_ignore_ascii_case(d)), "{a} outside {:?}", c.mx.domains);
                }
            }
        }
    }
}

/// Raw fuzz input: any bytes, read as UTF-8 with replacement.
pub fn config(bytes: &[u8]) {
    parse(&String::from_utf8_lossy(bytes));
}

/// `port25_config::line_col` (where an error is reported) at every byte
/// offset of any text, inside UTF-8 characters too (issue 13): never
/// panics, lines count from 1 and never pass the text's.
pub fn line_col_everywhere(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.matches('\n').count() + 1;
    for offset in 0..=text.len() + 1 {
        let (line, column) = port25_config::line_col(&text, offset);
        assert!((1..=lines).contains(&line) && column >= 1, "{offset}: {line}:{column}");
    }
}
