//! Progress bars of the commands that can run for more than a few seconds
//! (`report build`, `report generate`, `egress flows --pcap`, `users
//! import`): records or bytes done, rate and time left, on standard error
//! and only while it is a terminal, and never with `--quiet`.

/// A progress bar on standard error while it is a terminal and `--quiet`
/// is not given; nothing at all otherwise, so logs, pipes and CI output get
/// no control characters.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// `len` units of `what`; `bytes`: the units are bytes.
    pub fn new(quiet: bool, what: &str, len: u64, bytes: bool) -> Progress {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let template = if bytes {
            "{msg:18} [{bar:32}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)"
        } else {
            "{msg:18} [{bar:32}] {human_pos}/{human_len} ({per_sec}, {eta} left)"
        };
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    /// A spinner for a step whose length is not known.
    pub fn spinner(quiet: bool, what: &str) -> Progress {
        Progress::unbounded(quiet, what, "{msg:18} {spinner} {elapsed}")
    }

    /// A spinner that counts what was done (its total is not known).
    pub fn counter(quiet: bool, what: &str) -> Progress {
        Progress::unbounded(quiet, what, "{msg:18} {spinner} {human_pos} read ({elapsed})")
    }

    fn unbounded(quiet: bool, what: &str, template: &str) -> Progress {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let b = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        b.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
        b.set_message(what.to_owned());
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(Some(b))
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Clears the bar: what follows (the summary on standard output) starts
    /// on a clean line.
    pub fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}
