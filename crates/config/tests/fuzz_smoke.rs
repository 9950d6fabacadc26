//! Smoke fuzzing on stable, run by CI: the seed configurations in
//! fuzz/seeds/config mutated 30,000 times by the shared mutator
//! (fuzz/src/smoke.rs) aimed with TOML punctuation, control characters and
//! table and value pieces, and parsed. The properties are the
//! libFuzzer target's, from fuzz/src/config.rs, included here. The real
//! fuzzing is `cargo fuzz run config` (see fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/config.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use smoke::Mutator;
use std::path::Path;

const SPECIAL: &[u8] = b"\r\n.\0 \"#=[]{},:-+\t\x07\x7f\xff";
const PIECES: &[&[u8]] = &[
    b"\n[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:1\"\n",
    b"\n[mx]\n",
    b"\n[delivery]\n",
    b"\n[tls]\n",
    b"\n[tls.acme]\ndirectory = \"https://ca.example/d\"\n",
    b"domains = [\"mail.example.net\"]\n",
    b"challenge = \"tls-alpn-01\"\n",
    b"\n[log]\n",
    b" = ",
    b"\"\"\"",
    b"\x27\x27\x27",
    b"0",
    b"-1",
    b"99999999999999999999",
    b"true",
    b"[]",
    b"{}",
    b"\xc3\xa3",
    b"\r\n",
    b"#",
    b"domains = [\"a.example\"]\n",
    b"recipients = [\"u@a.example\"]\n",
    b"max_command_line = 0\n",
    b"1979-05-27T07:32:00Z",
];
const MUTATOR: Mutator = Mutator { special: SPECIAL, pieces: PIECES };

#[test]
fn mutated_configurations() {
    smoke::smoke_with("config", 30_000, 0x5eed_0201, &MUTATOR, checks::config);
}

#[test]
fn error_lines_on_known_bad_files() {
    for (text, line) in [
        ("[mx\n", 1),
        ("a = 1\n", 1),
        ("\n\n[log]\nformat = \"xml\"\n", 4),
        ("[mx]\ndomains = []\n", 2),
        ("x = \"\n", 1),
    ] {
        checks::parse(text);
        let e = port25_config::parse(text, Path::new("t.toml"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
    }
}

/// toml 0.8 gives an empty message for some syntax errors (found by
/// `cargo fuzz run config`: "#\x07", "a="); parse() supplies its own so
/// `port25 config check` never prints a bare "port25.toml:1:2: ".
#[test]
fn toml_syntax_errors_have_a_message() {
    for (text, column) in [("#\x07", 2), ("a=", 3), ("hostname = \"x.example\"\n# \x1b[31m\n", 3)] {
        let e = port25_config::parse(text, Path::new("t.toml"), Path::new("/")).unwrap_err();
        assert_eq!(e.column, column, "{text:?}");
        assert!(!e.message.is_empty(), "{text:?}: {e}");
    }
}

#[test]
fn error_positions_at_every_offset() {
    smoke::smoke_with(
        "config",
        3_000,
        0xC0F1_6E22,
        &Mutator { special: b"\n\xc3\xa9\xe2\x82\xac", pieces: &[] },
        checks::line_col_everywhere,
    );
}
