//! Fuzzing `captioner serve` over the network: mutations of well-formed requests (each page, photo
//! uploads as a raw body, a multipart form and a chunked body, a truncated upload, other methods,
//! HTTP/1.0) sent to a running server, each on a connection of its own that the client closes for
//! writing once the request is sent. The server may refuse any input (4xx, 503 when busy) and may
//! close a connection without an answer; it may never answer another 5xx, and never stop answering.

use super::nth_input;
use crate::engine::rng::Rng;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long one request may take, from connecting to the server's close: past it the input counts
/// as unanswered.
const REQUEST_TIME: Duration = Duration::from_secs(10);

/// What a run found.
#[derive(Debug, Default)]
pub struct HttpReport {
    pub inputs: u64,
    /// How many answers had each status.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections closed (or timed out) without a status line.
    pub unanswered: u64,
    /// Inputs answered with a 5xx other than 503, with that status.
    pub server_errors: Vec<(Vec<u8>, u16)>,
    /// The slowest input's time.
    pub slowest: Duration,
}

/// The well-formed requests the mutations start from, for a server at `host` and a photo it can
/// caption.
pub fn seed_requests(host: &str, photo: &[u8]) -> Vec<Vec<u8>> {
    let head = |method: &str, path: &str, headers: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n")
            .into_bytes()
    };
    let with_body = |mut request: Vec<u8>, body: &[u8]| {
        request.extend_from_slice(body);
        request
    };
    let raw = format!(
        "Content-Type: image/png\r\nContent-Length: {}\r\n",
        photo.len()
    );
    let mut form = b"--B0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
        --B0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.png\"\r\n\
        Content-Type: image/png\r\n\r\n"
        .to_vec();
    form.extend_from_slice(photo);
    form.extend_from_slice(b"\r\n--B0undary--\r\n");
    let multipart = format!(
        "Content-Type: multipart/form-data; boundary=B0undary\r\nContent-Length: {}\r\n",
        form.len()
    );
    let mut chunked = Vec::new();
    for chunk in photo.chunks(97) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let truncated = format!(
        "Content-Type: image/png\r\nContent-Length: {}\r\n",
        photo.len() * 2
    );
    vec![
        head("GET", "/", ""),
        head("GET", "/healthz", ""),
        head("GET", "/metrics", ""),
        head("HEAD", "/", ""),
        head("PUT", "/v1/caption", "Content-Length: 0\r\n"),
        with_body(
            head("POST", "/v1/caption?beam=2&attention=true", &raw),
            photo,
        ),
        with_body(head("POST", "/v1/caption", &multipart), &form),
        with_body(
            head(
                "POST",
                "/v1/caption",
                "Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n",
            ),
            &chunked,
        ),
        with_body(head("POST", "/v1/caption", &truncated), photo),
        with_body(
            format!(
                "POST /v1/caption HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
                photo.len()
            )
            .into_bytes(),
            photo,
        ),
    ]
}

/// Sends `inputs` requests (the seeds first, then mutations of them) to the server at `addr`;
/// `progress` is called every 100 inputs.
pub fn run(
    addr: &str,
    seeds: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    mut progress: impl FnMut(&HttpReport),
) -> Result<HttpReport> {
    let addr = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} names no address"))?;
    let mut rng = Rng::new(seed);
    let mut report = HttpReport::default();
    for i in 0..inputs {
        let input = nth_input(&mut rng, seeds, i);
        let start = Instant::now();
        let answer = exchange(&addr, &input);
        report.slowest = report.slowest.max(start.elapsed());
        report.inputs += 1;
        let statuses = statuses(&answer);
        if statuses.is_empty() {
            report.unanswered += 1;
        }
        for status in statuses {
            *report.statuses.entry(status).or_default() += 1;
            if status >= 500 && status != 503 {
                report.server_errors.push((input.clone(), status));
            }
        }
        if (i + 1) % 100 == 0 {
            progress(&report);
        }
    }
    Ok(report)
}

/// Sends one request and reads what comes back until the server closes (or `REQUEST_TIME`). A
/// connection the server refuses or resets gives what was read before.
fn exchange(addr: &std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let start = Instant::now();
    let Ok(mut stream) = TcpStream::connect_timeout(addr, REQUEST_TIME) else {
        return Vec::new();
    };
    let _ = stream.set_write_timeout(Some(REQUEST_TIME));
    // The server may answer (413, 400) and close before the whole body is sent.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Some(left) = REQUEST_TIME.checked_sub(start.elapsed()) {
        if stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .is_err()
        {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    answer
}

/// The status of every response in `answer` (pipelined requests get several, one after another's
/// body): each "HTTP/1.x NNN " in it.
fn statuses(answer: &[u8]) -> Vec<u16> {
    answer
        .windows(13)
        .filter(|w| w.starts_with(b"HTTP/1.") && w[8] == b' ' && w[12] == b' ')
        .filter_map(|w| std::str::from_utf8(&w[9..12]).ok()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_line_of_an_answer_is_read() {
        let answer = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\nnoHTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert_eq!(statuses(answer), vec![400, 503]);
        assert!(statuses(b"garbage").is_empty());
    }

    #[test]
    fn the_seeds_are_requests_for_the_host() {
        let seeds = seed_requests("127.0.0.1:9", b"PNGDATA");
        assert_eq!(seeds.len(), 10);
        for seed in &seeds {
            assert!(seed
                .windows(9)
                .any(|w| w == b"HTTP/1.1\r" || w == b"HTTP/1.0\r"));
        }
        assert!(seeds[7].ends_with(b"7\r\nPNGDATA\r\n0\r\n\r\n"));
    }
}
