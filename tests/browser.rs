//! The page of `captioner serve` in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which .ci/run installs), with the shipped model and the real
//! encoder weights. Set CAPTIONER_SCREENSHOT=<file.png> to keep the screenshot (docs/figures has one).

mod common;

use base64::Engine;
use common::{json, Server};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A WebDriver session: the W3C protocol is JSON over HTTP, a handful of calls here.
struct Browser {
    driver: Child,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        wait_for(|| ureq::get(&format!("{base}/status")).call().is_ok());
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("a chromium binary");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,1100"],
            },
        }}});
        let (status, created) = common::answer(
            ureq::post(&format!("{base}/session"))
                .set("Content-Type", "application/json")
                .send_string(&capabilities.to_string()),
        );
        assert_eq!(status, 200, "no browser session: {created}");
        let created = json(&created);
        let session = created["value"]["sessionId"].as_str().unwrap();
        Browser {
            driver,
            session: format!("{base}/session/{session}"),
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let response = match method {
            "GET" => ureq::get(&url).call(),
            _ => ureq::request(method, &url)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        };
        let (status, text) = common::answer(response);
        assert_eq!(status, 200, "{method} {path}: {text}");
        json(&text)["value"].clone()
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA (CI installs chromium and chromium-driver for it, and the encoder weights are fetched)"
)]
#[test]
fn the_page_captions_a_picked_photo_as_the_api_does() {
    let photo = common::real_data()
        .join("flickr8k/Images/1000268201_693b08cb0e.jpg")
        .canonicalize()
        .unwrap();
    let server = Server::start(None, &[]);
    let api = server.caption(&std::fs::read(&photo).unwrap());

    let browser = Browser::start();
    browser.call("POST", "/url", json!({ "url": server.url("/") }));
    let picker = browser.element("#file");
    browser.call(
        "POST",
        &format!("/element/{picker}/value"),
        json!({ "text": photo.to_str().unwrap() }),
    );
    let caption = browser.element("#caption");
    let mut shown = String::new();
    wait_for(|| {
        shown = browser
            .call("GET", &format!("/element/{caption}/text"), Value::Null)
            .as_str()
            .unwrap()
            .to_owned();
        !shown.is_empty()
    });
    assert_eq!(shown, api, "the page shows the API's caption");
    let alt = browser.script("return document.getElementById('photo').alt;");
    assert_eq!(alt, api.as_str(), "the caption is the photo's alt text");

    // Keyboard: focusing a word lights where the model looked (the overlay has opaque pixels).
    let word = browser.element("#words button:nth-child(2)");
    browser.call("POST", &format!("/element/{word}/click"), json!({}));
    let lit = browser.script(
        "const c = document.getElementById('heat'); \
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;",
    );
    assert!(lit.as_u64().unwrap() > 0, "no attention overlay");
    let screenshot = browser.call("GET", "/screenshot", Value::Null);
    let png = base64::engine::general_purpose::STANDARD
        .decode(screenshot.as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    if let Some(path) = std::env::var_os("CAPTIONER_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }

    // A phone-width window: nothing wider than the screen.
    browser.call("POST", "/window/rect", json!({"width": 390, "height": 844}));
    let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits, true, "the page scrolls sideways at phone width");
}

/// A static host for the browser's page (web/dist): files by path, one thread per connection,
/// every request's path kept. Stops answering when dropped.
struct StaticHost {
    addr: String,
    requested: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StaticHost {
    fn start(root: std::path::PathBuf) -> StaticHost {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requested = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (kept, stopped) = (requested.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (root, kept) = (root.clone(), kept.clone());
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    let _ = reader.read_line(&mut line);
                    while let Ok(n) = reader.read_line(&mut String::new()) {
                        if n <= 2 {
                            break; // the blank line after the headers
                        }
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    kept.lock().unwrap().push(path.clone());
                    let path = path.split('?').next().unwrap_or("/");
                    let file = match path {
                        "/" => "index.html",
                        p => p.trim_start_matches('/'),
                    };
                    let body = (!file.contains(".."))
                        .then(|| std::fs::read(root.join(file)).ok())
                        .flatten();
                    let kind = match file.rsplit('.').next() {
                        Some("html") => "text/html",
                        Some("js") => "text/javascript",
                        Some("wasm") => "application/wasm",
                        Some("json") => "application/json",
                        _ => "application/octet-stream",
                    };
                    let (status, body) = match body {
                        Some(body) => ("200 OK", body),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                });
            }
        });
        StaticHost {
            addr,
            requested,
            stop,
        }
    }
}

impl Drop for StaticHost {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wakes the accepting thread, which then stops.
        let _ = std::net::TcpStream::connect(&self.addr);
    }
}

/// Picks `photo` in the page and waits for its caption (the page clears it when a photo is picked).
fn caption_in_page(browser: &Browser, photo: &std::path::Path) -> String {
    // An emptied picker: picking the file it holds again would change nothing.
    browser.script(
        "document.getElementById('caption').textContent = ''; \
         document.getElementById('file').value = '';",
    );
    let picker = browser.element("#file");
    browser.call(
        "POST",
        &format!("/element/{picker}/value"),
        json!({ "text": photo.to_str().unwrap() }),
    );
    let mut shown = Value::Null;
    wait_for(|| {
        shown = browser.script(
            "const s = document.getElementById('status'); \
             if (s.className === 'error') return {error: s.textContent}; \
             const c = document.getElementById('caption').textContent; \
             return c ? {caption: c} : null;",
        );
        !shown.is_null()
    });
    match shown["caption"].as_str() {
        Some(caption) => caption.to_owned(),
        None => panic!("{}: the page says {}", photo.display(), shown["error"]),
    }
}

/// Waits until the page's captioner has loaded, and says how long it took (seconds).
fn page_ready(browser: &Browser) -> f64 {
    let mut seconds = Value::Null;
    wait_for(|| {
        seconds = browser.script(
            "const s = document.getElementById('status'); \
             if (!s) return null; \
             if (s.className === 'error') throw new Error(s.textContent); \
             return window.captionerLoadSeconds ?? null;",
        );
        !seconds.is_null()
    });
    seconds.as_f64().unwrap()
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA and the page built by web/build.sh (.ci/run does both)"
)]
#[test]
fn the_browser_page_captions_on_the_device_as_the_cli_does() {
    let dist = common::repo_path("web/dist");
    assert!(
        dist.join("pkg/captioner_web_bg.wasm").is_file(),
        "no page in {}: build it with `bash web/build.sh`",
        dist.display()
    );
    let data = common::real_data();
    let photos: Vec<std::path::PathBuf> = [
        "flickr8k/Images/1000268201_693b08cb0e.jpg",
        "imagenet-sample/n01443537_goldfish.JPEG",
        "imagenet-sample/n04037443_racer.JPEG",
    ]
    .iter()
    .map(|p| data.join(p))
    .chain(
        ["baseline.jpg", "palette.png", "lossy.webp"]
            .map(|f| common::repo_path("fixtures/formats").join(f)),
    )
    .map(|p| p.canonicalize().unwrap())
    .collect();
    // The CLI with the page's encoder weights (f16; docs/BENCHMARKS.md measures what f16 changes).
    let mut args = vec!["caption".to_owned(), "--weights".to_owned()];
    args.push(
        dist.join("encoder.safetensors")
            .to_str()
            .unwrap()
            .to_owned(),
    );
    args.extend(photos.iter().map(|p| p.to_str().unwrap().to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let native = String::from_utf8(common::run_ok(&args).stdout).unwrap();
    let native: Vec<&str> = native
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();

    let host = StaticHost::start(dist.clone());
    let page = format!("http://{}/", host.addr);
    let browser = Browser::start();
    browser.call("POST", "/url", json!({ "url": page }));
    page_ready(&browser);
    for (photo, expected) in photos.iter().zip(&native) {
        assert_eq!(
            &caption_in_page(&browser, photo),
            expected,
            "{}",
            photo.display()
        );
    }

    // A broken photo: the page says why, in the library's words, as the CLI does.
    let scratch = common::scratch("web-broken-photo");
    let broken = scratch.join("broken.jpg");
    let jpeg = std::fs::read(common::repo_path("fixtures/formats/baseline.jpg")).unwrap();
    std::fs::write(&broken, &jpeg[..600]).unwrap();
    browser.script("document.getElementById('file').value = '';");
    let picker = browser.element("#file");
    let path = json!({ "text": broken.to_str().unwrap() });
    browser.call("POST", &format!("/element/{picker}/value"), path);
    let mut said = Value::Null;
    wait_for(|| {
        said = browser.script(
            "const s = document.getElementById('status'); \
             return s.className === 'error' ? s.textContent : null;",
        );
        !said.is_null()
    });
    let said = said.as_str().unwrap();
    assert!(said.contains("truncated JPEG"), "the page says {said:?}");

    // Nothing but the page's own files was fetched: the browser's record and the host's agree.
    let fetched =
        browser.script("return performance.getEntriesByType('resource').map(e => e.name);");
    for url in fetched.as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(url.starts_with(&page), "the page fetched {url}");
    }
    for path in host.requested.lock().unwrap().iter() {
        let file = path.trim_start_matches('/');
        assert!(
            file.is_empty() || dist.join(file).is_file(),
            "asked for {path}"
        );
    }

    // Phone width: nothing wider than the screen.
    browser.call("POST", "/window/rect", json!({"width": 390, "height": 844}));
    let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits, true, "the page scrolls sideways at phone width");

    // Offline once loaded: with the host gone, the page opens again from the browser's cache and
    // captions.
    drop(host);
    browser.call("POST", "/url", json!({ "url": page }));
    page_ready(&browser);
    assert_eq!(caption_in_page(&browser, &photos[0]), native[0], "offline");
}
