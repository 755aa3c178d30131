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
