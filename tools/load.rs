//! A load generator for caption servers (`captioner serve`, bench/pytorch_server.py): closed-loop
//! clients, each posting a photo and waiting for the answer before the next.
//!
//!   cargo run --release --example load -- --url http://127.0.0.1:8080/v1/caption
//!       [--concurrency 8] [--seconds 30 | --requests N] [--bad-every 0] [--watch-pid PID] PHOTO ...
//!
//! Clients take the photos in turn. With --bad-every K, every K-th request is malformed instead:
//! alternately bytes that are no photo, and an upload declaring 25 MB (the headers and 64 KB are sent;
//! a server should refuse it from its declared length). With --watch-pid, the server's resident
//! memory is sampled after every 1,000 requests and its peak read at the end (Linux /proc).
//! Prints one JSON line: requests, throughput, latency percentiles of the good requests, statuses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Options {
    url: String,
    concurrency: usize,
    seconds: f64,
    requests: Option<usize>,
    bad_every: usize,
    watch_pid: Option<u32>,
    photos: Vec<Vec<u8>>,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        url: "http://127.0.0.1:8080/v1/caption".into(),
        concurrency: 8,
        seconds: 30.0,
        requests: None,
        bad_every: 0,
        watch_pid: None,
        photos: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--url" => options.url = value()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--requests" => options.requests = Some(value()?.parse()?),
            "--bad-every" => options.bad_every = value()?.parse()?,
            "--watch-pid" => options.watch_pid = Some(value()?.parse()?),
            path => options.photos.push(std::fs::read(path)?),
        }
    }
    anyhow::ensure!(!options.photos.is_empty(), "give at least one photo");
    Ok(options)
}

/// (status or 0 for a transport error, whether it was a good request, seconds).
type Outcome = (u16, bool, f64);

/// An upload that declares 25 MB and sends 64 KB of it, then reads the answer.
fn oversize(url: &str) -> u16 {
    let Some(rest) = url.strip_prefix("http://") else {
        return 0;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut stream) = TcpStream::connect(host) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let head = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        25 * 1024 * 1024
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let _ = stream.write_all(&vec![0u8; 64 * 1024]);
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn one_request(options: &Options, agent: &ureq::Agent, index: usize) -> Outcome {
    let bad = options.bad_every > 0 && index % options.bad_every == options.bad_every - 1;
    let start = Instant::now();
    let status = if bad && (index / options.bad_every) % 2 == 1 {
        oversize(&options.url)
    } else {
        let body: &[u8] = if bad {
            b"these bytes are no photo"
        } else {
            &options.photos[index % options.photos.len()]
        };
        match agent.post(&options.url).send_bytes(body) {
            Ok(response) => {
                let status = response.status();
                let _ = response.into_string();
                status
            }
            Err(ureq::Error::Status(status, response)) => {
                let _ = response.into_string();
                status
            }
            Err(_) => 0,
        }
    };
    (status, !bad, start.elapsed().as_secs_f64())
}

fn memory_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::<Outcome>::new());
    let rss_samples = Mutex::new(Vec::<f64>::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(options.seconds);
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency {
            scope.spawn(|| {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(120))
                    .build();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let more = match options.requests {
                        Some(total) => index < total,
                        None => Instant::now() < deadline,
                    };
                    if !more {
                        break;
                    }
                    let outcome = one_request(&options, &agent, index);
                    let done = {
                        let mut outcomes = outcomes.lock().unwrap();
                        outcomes.push(outcome);
                        outcomes.len()
                    };
                    if let (Some(pid), 0) = (options.watch_pid, done % 1000) {
                        if let Some(mb) = memory_mb(pid, "VmRSS:") {
                            rss_samples.lock().unwrap().push(mb);
                        }
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let outcomes = outcomes.into_inner()?;
    let mut good: Vec<f64> = outcomes
        .iter()
        .filter(|(status, good, _)| *good && *status == 200)
        .map(|o| o.2)
        .collect();
    good.sort_by(f64::total_cmp);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (status, _, _) in &outcomes {
        *statuses.entry(status.to_string()).or_default() += 1;
    }
    let line = serde_json::json!({
        "concurrency": options.concurrency,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "requests": outcomes.len(),
        "good_per_s": ((good.len() as f64 / elapsed) * 100.0).round() / 100.0,
        "p50_ms": (percentile(&good, 0.5) * 1e4).round() / 10.0,
        "p99_ms": (percentile(&good, 0.99) * 1e4).round() / 10.0,
        "statuses": statuses,
        "rss_mb_every_1000": rss_samples.into_inner()?.iter().map(|mb| mb.round()).collect::<Vec<_>>(),
        "peak_rss_mb": options.watch_pid.and_then(|pid| memory_mb(pid, "VmHWM:")).map(f64::round),
    });
    println!("{line}");
    Ok(())
}
