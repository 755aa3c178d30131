//! The server's counters in Prometheus' text format: responses by status, request latency and
//! batch sizes as histograms, and the requests holding a place in the queue.

use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the batch-size buckets.
const BATCH_BOUNDS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; summed when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

struct Counters {
    responses: BTreeMap<u16, u64>,
    latency: Histogram,
    batches: Histogram,
}

pub struct Metrics(Mutex<Counters>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics(Mutex::new(Counters {
            responses: BTreeMap::new(),
            latency: Histogram::new(&LATENCY_BOUNDS),
            batches: Histogram::new(&BATCH_BOUNDS),
        }))
    }
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic elsewhere while counting leaves numbers that are still worth reporting.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record_status(&self, status: StatusCode) {
        *self
            .counters()
            .responses
            .entry(status.as_u16())
            .or_default() += 1;
    }

    /// How long a caption request took to answer.
    pub fn record_latency(&self, took: Duration) {
        self.counters().latency.observe(took.as_secs_f64());
    }

    pub fn record_batch(&self, size: usize) {
        self.counters().batches.observe(size as f64);
    }

    /// The text `/metrics` serves; `queued` is the number of requests holding a place now.
    /// The Prometheus text, with the gauges `queued` (requests holding a place) and
    /// `upload_bytes` (bytes of the upload budget held).
    pub fn render(&self, queued: usize, upload_bytes: usize) -> String {
        let counters = self.counters();
        let mut out = String::new();
        let name = "captioner_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests answered, by HTTP status.\n# TYPE {name} counter"
        );
        for (status, count) in &counters.responses {
            let _ = writeln!(out, "{name}{{status=\"{status}\"}} {count}");
        }
        counters.latency.render(
            "captioner_request_seconds",
            "Time from a caption request's arrival to its answer.",
            &mut out,
        );
        counters.batches.render(
            "captioner_batch_size",
            "Photos captioned together in one batch.",
            &mut out,
        );
        let name = "captioner_queue_depth";
        let _ = writeln!(
            out,
            "# HELP {name} Caption requests holding a place (queued or being captioned).\n# TYPE {name} gauge\n{name} {queued}"
        );
        let name = "captioner_upload_bytes";
        let _ = writeln!(
            out,
            "# HELP {name} Bytes of request bodies held (arriving, queued or being captioned).\n# TYPE {name} gauge\n{name} {upload_bytes}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counts_by_status() {
        let metrics = Metrics::default();
        metrics.record_status(StatusCode::OK);
        metrics.record_status(StatusCode::OK);
        metrics.record_status(StatusCode::BAD_REQUEST);
        metrics.record_latency(Duration::from_millis(30));
        metrics.record_latency(Duration::from_millis(3));
        metrics.record_latency(Duration::from_secs(60));
        metrics.record_batch(3);
        let text = metrics.render(2, 0);
        for line in [
            "captioner_requests_total{status=\"200\"} 2",
            "captioner_requests_total{status=\"400\"} 1",
            "captioner_request_seconds_bucket{le=\"0.005\"} 1",
            "captioner_request_seconds_bucket{le=\"0.05\"} 2",
            "captioner_request_seconds_bucket{le=\"30\"} 2",
            "captioner_request_seconds_bucket{le=\"+Inf\"} 3",
            "captioner_request_seconds_count 3",
            "captioner_batch_size_bucket{le=\"2\"} 0",
            "captioner_batch_size_bucket{le=\"4\"} 1",
            "captioner_queue_depth 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
