//! Progress bars on stderr for long work, hidden when stderr is not a terminal or with --quiet.

use std::io::IsTerminal as _;
use std::time::Duration;

use farol_pipeline::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that the pipeline's threads update.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(8)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.enable_steady_tick(Duration::from_millis(250));
        Bar { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Counts rows of `name` (rather than bytes); `rows` so far.
    pub fn rows(&self, name: &str, rows: u64) {
        if rows == 0 {
            let style = ProgressStyle::with_template("{prefix:>14} {spinner} {human_pos} rows, {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            self.bar.set_style(style);
            self.bar.set_prefix(name.to_owned());
            self.bar.reset();
        }
        self.bar.set_position(rows);
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let template = match total {
            Some(_) => "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg} {bytes_per_sec}, ETA {eta}",
            None => "{prefix:>10} {spinner} {bytes} {msg} {bytes_per_sec}",
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_prefix(name.to_owned());
        self.bar.set_message("");
        self.bar.reset_eta();
    }

    fn update(&self, bytes: u64, records: u64) {
        self.bar.set_position(bytes);
        if records > 0 {
            self.bar.set_message(format!("{} records,", crate::output::count(records)));
        }
    }
}
