//! `captioner serve` over real HTTP: the server is the built binary on port 0, with the shipped model
//! and synthetic encoder weights (captions are nonsense but exactly reproducible).

mod common;

use common::{captioner, fixture_setup, json, repo_path, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The status line and body of a raw HTTP/1.1 exchange's answer.
fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

/// A sample's value in `/metrics`' text.
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
}

fn setup(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let (_, weights, _) = fixture_setup(name);
    let photos = ["baseline.jpg", "palette.bmp", "lossy.webp", "gray16.png"]
        .iter()
        .map(|name| repo_path("fixtures/formats").join(name))
        .collect();
    (weights, photos)
}

/// What `captioner caption` says of each photo.
fn cli_captions(weights: &Path, photos: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["caption", "--weights", weights.to_str().unwrap()];
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    let out = captioner(&args);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split_once('\t').unwrap().1.to_owned())
        .collect()
}

#[test]
fn answers_photos_as_caption_does_and_refuses_bad_requests() {
    let (weights, photos) = setup("serve-answers");
    let server = Server::start(Some(&weights), &["--max-body-mb", "1"]);
    let expected = cli_captions(&weights, &photos);
    for (photo, expected) in photos.iter().zip(&expected) {
        assert_eq!(&server.caption(&std::fs::read(photo).unwrap()), expected);
    }

    // The same photo as a multipart form, with the answer's other fields.
    let photo = std::fs::read(&photos[0]).unwrap();
    let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    form.extend_from_slice(&photo);
    form.extend_from_slice(b"\r\n--XyZ--\r\n");
    let (status, body) = server.post(
        "/v1/caption?beam=3&attention=true",
        "multipart/form-data; boundary=XyZ",
        &form,
    );
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["caption"], expected[0].as_str());
    assert_eq!(answer["model"], "default");
    // What each claimed word rests on, as `caption --json` reports it.
    let confidence = answer["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{answer}");
    for claim in answer["claims"].as_array().unwrap() {
        assert!(
            claim["word"].is_string() && claim["source"].is_string(),
            "{answer}"
        );
        assert!(claim["support"].as_f64().unwrap() >= confidence, "{answer}");
    }
    // The fields every JSON door shares (Captioned::json) are the same as `caption --json`'s.
    let cli = captioner(&[
        "caption",
        "--json",
        "--weights",
        weights.to_str().unwrap(),
        photos[0].to_str().unwrap(),
    ]);
    assert!(cli.status.success());
    let line = json(String::from_utf8_lossy(&cli.stdout).trim());
    for field in ["caption", "tokens", "claims", "confidence"] {
        assert_eq!(answer[field], line[field], "{field}");
    }
    let words = answer["words"].as_array().unwrap();
    assert_eq!(
        answer["tokens"],
        words
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for stage in ["queue", "decode", "encode", "generate"] {
        assert!(
            answer["timings_ms"][stage].as_f64().unwrap() >= 0.0,
            "{stage}"
        );
    }
    let attention = &answer["attention"];
    let regions =
        (attention["height"].as_u64().unwrap() * attention["width"].as_u64().unwrap()) as usize;
    assert_eq!(attention["words"].as_array().unwrap().len(), words.len());
    for weights in attention["words"].as_array().unwrap() {
        let weights = weights.as_array().unwrap();
        assert_eq!(weights.len(), regions);
        let sum: f64 = weights.iter().map(|w| w.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 0.01, "{sum}");
    }

    let error =
        |(status, body): (u16, String)| (status, json(&body)["error"].as_str().unwrap().to_owned());
    let (status, reason) = error(server.post("/v1/caption", "image/jpeg", b"not a photo at all"));
    assert_eq!(status, 400);
    assert!(reason.contains("not an image captioner reads"), "{reason}");
    let (status, reason) = error(server.post("/v1/caption", "image/jpeg", b""));
    assert_eq!((status, reason.contains("empty")), (400, true), "{reason}");
    let (status, reason) = error(server.post(
        "/v1/caption",
        "multipart/form-data; boundary=XyZ",
        b"--XyZ--\r\n",
    ));
    assert_eq!(
        (status, reason.contains("no field \"image\"")),
        (400, true),
        "{reason}"
    );
    let (status, _) = error(server.post("/v1/caption?beam=0", "image/jpeg", &photo));
    assert_eq!(status, 400);
    let (status, _) = error(server.get("/v1/caption"));
    assert_eq!(status, 405);
    let (status, _) = error(server.get("/nothing/here"));
    assert_eq!(status, 404);

    // Over the limit: refused from the headers, before the body is sent.
    let mut upload = server.open_upload(2 * 1024 * 1024);
    let (status, text) = read_answer(&mut upload);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("over the 1 MB limit"), "{text}");

    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>captioner</title>") && page.contains("/v1/caption"));
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    // Five captions, the page and at least one health check answered 200.
    assert!(
        metric(&metrics, "captioner_requests_total{status=\"200\"}") >= 7.0,
        "{metrics}"
    );
    for line in [
        "captioner_requests_total{status=\"400\"} 4",
        "captioner_requests_total{status=\"404\"} 1",
        "captioner_requests_total{status=\"405\"} 1",
        "captioner_requests_total{status=\"413\"} 1",
        "captioner_request_seconds_count 10",
        // Five captions and the bytes that were no photo: decoding is part of the batch.
        "captioner_batch_size_sum 6",
        "captioner_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[test]
fn thirty_two_concurrent_clients_get_the_captions_caption_gives() {
    let (weights, photos) = setup("serve-concurrent");
    let server = Server::start(Some(&weights), &["--max-batch", "8", "--max-wait-ms", "20"]);
    let expected = cli_captions(&weights, &photos);
    let bodies: Vec<Vec<u8>> = photos.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let answers: Vec<(usize, String)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..32)
            .map(|client| {
                let (server, bodies) = (&server, &bodies);
                scope.spawn(move || {
                    let photo = client % bodies.len();
                    (photo, server.caption(&bodies[photo]))
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (photo, caption) in answers {
        assert_eq!(caption, expected[photo], "photo {photo}");
    }
    let (_, metrics) = server.get("/metrics");
    assert_eq!(
        metric(&metrics, "captioner_batch_size_sum"),
        32.0,
        "{metrics}"
    );
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let (weights, photos) = setup("serve-busy");
    // One place, so that of requests sent together while one is captioned, the others are refused.
    let server = Server::start(Some(&weights), &["--queue", "0", "--max-batch", "1"]);
    let photo = std::fs::read(&photos[0]).unwrap();
    let start = Instant::now();
    let refused = std::thread::scope(|scope| loop {
        let senders: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let sent = ureq::post(&server.url("/v1/caption"))
                        .set("Content-Type", "image/jpeg")
                        .send_bytes(&photo);
                    match sent {
                        Err(ureq::Error::Status(503, response)) => Some(response),
                        _ => None,
                    }
                })
            })
            .collect();
        let refused = senders.into_iter().filter_map(|s| s.join().unwrap());
        if let Some(response) = refused.last() {
            return response;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never busy");
    });
    assert_eq!(refused.header("Retry-After"), Some("1"));
    assert!(refused.into_string().unwrap().contains("queue is full"));
}

#[test]
fn sigterm_finishes_the_requests_in_flight_and_exits() {
    let (weights, photos) = setup("serve-shutdown");
    let mut server = Server::start(Some(&weights), &[]);
    let photo = std::fs::read(&photos[0]).unwrap();
    let expected = cli_captions(&weights, &photos[..1]);
    let mut upload = server.open_upload(photo.len());
    // In flight: the server has read its headers and the first two bytes of its body.
    let start = Instant::now();
    while !server
        .get("/metrics")
        .1
        .contains("captioner_upload_bytes 2")
    {
        assert!(start.elapsed() < Duration::from_secs(30), "never in flight");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = server.child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // Shutting down: it takes no new connection...
    while TcpStream::connect(&server.addr).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(30), "still listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and still answers the request it had.
    upload.write_all(&photo[2..]).unwrap();
    let (status, text) = read_answer(&mut upload);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&expected[0]), "{text}");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
}

/// `serve` flags: two places in the queue (one waiting, one being captioned), then `more`.
fn two_places<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--queue", "1", "--max-batch", "1"];
    args.extend_from_slice(more);
    args
}

#[test]
fn stalled_clients_are_cut_off_and_cannot_hold_the_service() {
    let (weights, photos) = setup("serve-slow");
    // Two places in the queue, one second to send headers and to send a body.
    let server = Server::start(
        Some(&weights),
        &two_places(&["--header-timeout-s", "1", "--body-timeout-s", "1"]),
    );
    // Two uploads stop after their headers; two clients stop in their request line.
    let mut uploads = [server.open_upload(100_000), server.open_upload(100_000)];
    let mut partial: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.addr).unwrap();
            stream.write_all(b"POST /v1/capt").unwrap();
            stream
        })
        .collect();
    // The stalled uploads get 408 after the body timeout, and the half-sent headers are closed.
    let start = Instant::now();
    for upload in &mut uploads {
        let (status, text) = read_answer(upload);
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("--body-timeout-s"), "{text}");
    }
    for stream in &mut partial {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut text = Vec::new();
        let _ = stream.read_to_end(&mut text);
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "not cut off in time"
    );
    let photo = std::fs::read(&photos[0]).unwrap();
    assert!(!server.caption(&photo).is_empty());
}

#[test]
fn a_connection_over_the_cap_is_closed_at_once() {
    let (weights, _) = setup("serve-cap");
    let server = Server::start(Some(&weights), &["--max-connections", "2"]);
    // Two connections that send nothing hold both places (for the 30 s header timeout).
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    // A third is closed with no answer (once the server has accepted the first two).
    let start = Instant::now();
    for attempt in 0.. {
        if attempt > 0 {
            // The last one was answered, so a place was free: a held connection came while
            // Server::start's last health check still held its place, and was closed. Another
            // one takes the place.
            held.push(TcpStream::connect(&server.addr).unwrap());
        }
        let mut third = TcpStream::connect(&server.addr).unwrap();
        let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        third
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut text = Vec::new();
        let _ = third.read_to_end(&mut text);
        if text.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never refused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // When they leave, connections are served again.
    drop(held);
    let start = Instant::now();
    while server.get("/healthz").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never served again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stalled_uploads_hold_no_place_and_only_the_bytes_they_sent() {
    let (weights, photos) = setup("serve-budget");
    // Two places in the queue, a 1 MB upload budget, bodies that may take ten minutes.
    let server = Server::start(
        Some(&weights),
        &two_places(&["--body-timeout-s", "600", "--upload-budget-mb", "1"]),
    );
    let photo = std::fs::read(&photos[0]).unwrap();
    // Three stalled uploads, more than the places: complete requests are still captioned.
    let stalled: Vec<TcpStream> = (0..3).map(|_| server.open_upload(100_000)).collect();
    for _ in 0..3 {
        assert!(!server.caption(&photo).is_empty());
    }
    // One that sent most of the budget leaves too little for a photo: 503.
    let mut big = server.open_upload(2_000_000);
    big.write_all(&vec![0u8; 1024 * 1024 - 100]).unwrap();
    big.flush().unwrap();
    // Once all of it has arrived (with the stalled uploads' two bytes each)...
    let held = format!("captioner_upload_bytes {}", 1024 * 1024 - 100 + 2 + 3 * 2);
    let start = Instant::now();
    while !server.get("/metrics").1.contains(&held) {
        assert!(start.elapsed() < Duration::from_secs(60), "never received");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, refused) = server.post("/v1/caption", "image/jpeg", &photo);
    assert_eq!(status, 503, "{refused}");
    assert!(refused.contains("too many uploads"), "{refused}");
    // When it leaves, its bytes are free again.
    drop(big);
    drop(stalled);
    let start = Instant::now();
    while server.post("/v1/caption", "image/jpeg", &photo).0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the budget never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's resident memory in KiB, from /proc (None where there is no /proc).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn mutated_requests_get_no_server_error_and_leave_no_memory_behind() {
    use captioner::fuzz::http;
    let (weights, _) = setup("serve-fuzz");
    let server = Server::start(
        Some(&weights),
        &["--header-timeout-s", "2", "--body-timeout-s", "2"],
    );
    let photo = std::fs::read(repo_path("fixtures/formats/gray16.png")).unwrap();
    let seeds = http::seed_requests(&server.addr, &photo);
    // The first pass brings the allocator and the model's buffers to their working size; the
    // second, ten times as long, may not grow memory beyond a generous margin.
    let warm = http::run(&server.addr, &seeds, 2_000, 1, |_| {}).unwrap();
    let before = resident_kib(server.child.id());
    let report = http::run(&server.addr, &seeds, 20_000, 2, |_| {}).unwrap();
    let after = resident_kib(server.child.id());
    for run in [&warm, &report] {
        let errors: Vec<(String, u16)> = run
            .server_errors
            .iter()
            .map(|(input, status)| (String::from_utf8_lossy(input).into_owned(), *status))
            .collect();
        assert!(errors.is_empty(), "server errors: {errors:?}");
        assert!(run.statuses.get(&200).is_some_and(|&n| n > 0), "{run:?}");
        assert!(run.statuses.get(&400).is_some_and(|&n| n > 0), "{run:?}");
    }
    if let (Some(before), Some(after)) = (before, after) {
        assert!(
            after <= before + 64 * 1024,
            "resident memory grew from {before} KiB to {after} KiB"
        );
    }
    assert!(!server.caption(&photo).is_empty());
}

#[test]
fn a_host_name_is_resolved_for_the_address() {
    let (weights, _) = setup("serve-localhost");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(["serve", "--addr", "localhost:0", "--weights"])
        .arg(&weights)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on http://"), "{line:?}");
    let run = captioner(&["serve", "--addr", "no-such-host.invalid:80"]);
    assert!(!run.status.success());
    assert!(
        common::stderr(&run).contains("is not HOST:PORT that resolves here"),
        "{}",
        common::stderr(&run)
    );
}

#[test]
fn the_three_doors_give_one_caption_json() {
    // `caption --json`, a batch job's `--out` record and a `serve` answer share Captioned::json's
    // fields, with the same values.
    let (weights, photos) = setup("serve-doors");
    let dir = common::scratch("serve-doors-out");
    let records = dir.join("records.jsonl");
    let weights_arg = weights.to_str().unwrap();
    let lines = common::caption_json_lines(&weights, &photos);
    let mut args = vec!["caption", "--out", records.to_str().unwrap()];
    args.extend(["--weights", weights_arg]);
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    assert!(captioner(&args).status.success());
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    let server = Server::start(Some(&weights), &[]);
    for ((photo, line), record) in photos.iter().zip(&lines).zip(&records) {
        let (status, body) =
            server.post("/v1/caption", "image/jpeg", &std::fs::read(photo).unwrap());
        assert_eq!(status, 200, "{body}");
        let answer = json(&body);
        assert_eq!(record["key"], line["image"]);
        assert_eq!(record["model"], answer["model"]);
        for field in ["caption", "tokens", "confidence", "claims"] {
            assert!(!line[field].is_null(), "{field} in {line}");
            assert_eq!(line[field], record[field], "{field}: {line} / {record}");
            assert_eq!(line[field], answer[field], "{field}: {line} / {answer}");
        }
    }
}
