//! Progress bars for long stages: position, rate and ETA on stderr (hidden when stderr is not a terminal
//! or when the caller asks for quiet).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(total: u64, unit: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
