//! A PostgreSQL connection string is checked when the configuration is
//! read, by the same parser that connects later (tokio-postgres), so a
//! typo is named at its line by `config check` and `serve --check` instead
//! of surfacing only when `serve` first opens the database.

use toml::Spanned;

/// What the key accepts, for the error's fix line.
pub const EXAMPLE: &str =
    "libpq key=value pairs or a postgresql:// URL, e.g. \"host=/run/postgresql user=port25 dbname=mail\"";

/// `Err((offset, message))` for a string tokio-postgres would refuse, one
/// that is empty or one holding a control character (a line break pasted
/// into the file).
pub fn check(c: &Spanned<String>) -> Result<(), (usize, String)> {
    let v = c.get_ref();
    if v.trim().is_empty() || v.chars().any(char::is_control) {
        return Err((c.span().start, "connection is empty or holds a control character".into()));
    }
    v.parse::<tokio_postgres::Config>()
        .map(|_| ())
        .map_err(|e| (c.span().start, format!("connection {v:?} is not a PostgreSQL connection string: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spanned(s: &str) -> Spanned<String> {
        #[derive(serde::Deserialize)]
        struct T {
            c: Spanned<String>,
        }
        toml::from_str::<T>(&format!("c = {s:?}")).unwrap().c
    }

    #[test]
    fn libpq_strings_and_urls_pass_typos_do_not() {
        for ok in
            ["host=/run/postgresql user=port25 dbname=mail", "postgresql://port25@db.example/mail", "host=db port=5433"]
        {
            assert_eq!(check(&spanned(ok)), Ok(()), "{ok}");
        }
        for bad in
            ["host=/tmp port=five", "hots=/tmp", "host='/tmp", "postgresql://x:notaport/db", "", "host=a\nuser=b"]
        {
            let (at, msg) = check(&spanned(bad)).unwrap_err();
            assert_eq!(at, 4, "{bad}");
            assert!(msg.starts_with("connection"), "{msg}");
        }
    }
}
