//! Progress of long operator work (CSV import and export): a bar on a terminal, otherwise a
//! line on stderr at every tenth of the way (logs and tests see it too).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    what: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    /// Done so far and the last tenth reported (without a terminal).
    state: Mutex<(u64, u64)>,
}

impl Progress {
    /// `total` 0: unknown (counts only).
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            let template = if total > 0 {
                "{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)"
            } else {
                "{msg} {pos} ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what);
            bar
        });
        Self {
            what,
            total,
            bar,
            state: Mutex::new((0, 0)),
        }
    }

    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += n;
        if let Some(tenth) = (state.0 * 10).checked_div(self.total)
            && tenth > state.1
        {
            state.1 = tenth;
            eprintln!(
                "{}: {}/{} ({}%)",
                self.what,
                state.0,
                self.total,
                tenth * 10
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
            return;
        }
        let done = self.state.lock().unwrap_or_else(|p| p.into_inner()).0;
        if self.total == 0 {
            eprintln!("{}: {done} done", self.what);
        }
    }
}
