//! Progress bars for long stages: position, rate and ETA on stderr (hidden when stderr is not a terminal
//! or when the caller asks for quiet).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub fn bar(total: u64, unit: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
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
