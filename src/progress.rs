//! Progress bars for long stages: position, rate and ETA on stderr. On a terminal the bar redraws
//! in place; when stderr is a file or a pipe (a batch job's log) the same text comes as a plain
//! line every `LOG_INTERVAL`, so a long run is never silent. Hidden when the caller asks for quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a bar writes a line when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

pub fn bar(total: u64, unit: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else if !std::io::stderr().is_terminal() {
        let lines = LogLines::new(LOG_INTERVAL, Box::new(std::io::stderr()));
        bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(lines)));
    }
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit} {{rate}} ETA {{eta}} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        // Whole units per second ("95/s"); indicatif's own {per_sec} prints "95.366/s".
        let style = style.with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        );
        bar.set_style(style);
    }
    bar
}

/// A terminal for indicatif that has no cursor: what a draw writes is gathered, and written as one
/// line to `out` at most every `interval` (the first draw at once).
struct LogLines {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    pending: Mutex<String>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogLines {
    fn new(interval: Duration, out: Box<dyn Write + Send>) -> Self {
        LogLines {
            interval,
            last: Mutex::new(None),
            pending: Mutex::new(String::new()),
            out: Mutex::new(out),
        }
    }

    fn gather(&self, text: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push_str(text);
        }
    }
}

impl std::fmt::Debug for LogLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLines")
            .field("interval", &self.interval)
            .finish()
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.gather(s);
        self.gather(" ");
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.gather(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// The end of a draw: its text becomes a line if the last one is `interval` old.
    fn flush(&self) -> std::io::Result<()> {
        let text = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Ok(()),
        };
        let text = text.trim();
        let Ok(mut last) = self.last.lock() else {
            return Ok(());
        };
        if text.is_empty() || last.is_some_and(|at| at.elapsed() < self.interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        match self.out.lock() {
            Ok(mut out) => {
                writeln!(out, "{text}")?;
                out.flush()
            }
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A shared buffer to write into.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn draws(interval: Duration) -> String {
        let buffer = Buffer::default();
        let lines = LogLines::new(interval, Box::new(buffer.clone()));
        for step in ["1/3", "2/3", "3/3"] {
            lines.clear_line().unwrap();
            lines.write_str(&format!("[###] {step} images")).unwrap();
            lines.flush().unwrap();
        }
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn without_a_terminal_each_draw_is_a_line_at_most_every_interval() {
        assert_eq!(
            draws(Duration::ZERO),
            "[###] 1/3 images\n[###] 2/3 images\n[###] 3/3 images\n"
        );
        assert_eq!(draws(Duration::from_secs(3600)), "[###] 1/3 images\n");
    }
}
