//! Helpers shared by the end-to-end tests: run the built binary, make scratch folders, find the real data.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn captioner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(args)
        .output()
        .expect("the captioner binary runs")
}

/// Runs the binary and fails the test, with its stderr, unless it succeeds.
pub fn run_ok(args: &[&str]) -> Output {
    let out = captioner(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// A scratch folder holding synthetic EfficientNet-Lite0 weights (`lite0.safetensors`), and the
/// fixture dataset's folder.
pub fn fixture_setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let weights = dir.join("lite0.safetensors");
    synthetic_efficientnet_weights(&weights);
    (dir, weights, repo_path("fixtures/tiny"))
}

/// Prepares the fixture (again, when called twice on `dir`) and writes `dim`-d pseudo-random
/// features for its images, except `skip`.
pub fn tiny_work(dir: &Path, dim: usize, skip: &[&str]) {
    let run = captioner(&[
        "prepare",
        "--data",
        repo_path("fixtures/tiny").to_str().unwrap(),
        "--out",
        dir.join("work").to_str().unwrap(),
        "--min-count",
        "1",
        "--force",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let ids: Vec<String> = [
        "1001_ball_grass",
        "1002_sun_sky",
        "1003_box_sand",
        "1004_snow_dog",
        "1005_ball_sand",
        "1006_box_grass",
        "1007_dog_grass",
        "1008_sun_snow",
    ]
    .iter()
    .filter(|id| !skip.contains(id))
    .map(|s| s.to_string())
    .collect();
    let data = (0..ids.len() * dim)
        .map(|i| (i * 37 % 101) as f32 / 101.0)
        .collect();
    let features = captioner::features_file::Features {
        ids,
        encoder: "efficientnet-lite0".into(),
        preprocessing: "test".into(),
        dim,
        data,
        grid: None,
        classes: None,
    };
    features.save(&dir.join("features.safetensors")).unwrap();
}

/// `captioner caption --json` of `photos` with encoder `weights`: one JSON line each.
pub fn caption_json_lines(weights: &Path, photos: &[PathBuf]) -> Vec<serde_json::Value> {
    let mut args = vec!["caption", "--json", "--weights", weights.to_str().unwrap()];
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    let out = captioner(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(json)
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A fresh, empty scratch folder unique to this test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("captioner-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The folder named by CAPTIONER_DATA (holding flickr8k/, *-golden/). Real-data tests are compiled as
/// ignored without it (build.rs), so they show as ignored, never as passed.
pub fn real_data() -> PathBuf {
    std::env::var_os("CAPTIONER_DATA")
        .map(PathBuf::from)
        .expect("CAPTIONER_DATA must name the folder holding flickr8k/ and the golden files")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// EfficientNet-Lite0 weights with the real names and shapes and deterministic pseudo-random values,
/// written as safetensors: exercises the whole features pipeline without the network download.
pub fn synthetic_efficientnet_weights(path: &Path) {
    use captioner::vision::efficientnet_lite::Config;
    let config = Config::lite0();
    let mut shapes: Vec<(String, Vec<usize>)> = Vec::new();
    let bn = |shapes: &mut Vec<(String, Vec<usize>)>, prefix: &str, c: usize| {
        for name in ["weight", "bias", "running_mean", "running_var"] {
            shapes.push((format!("{prefix}.{name}"), vec![c]));
        }
    };
    shapes.push((
        "_conv_stem.weight".into(),
        vec![config.stem_channels, 3, 3, 3],
    ));
    bn(&mut shapes, "_bn0", config.stem_channels);
    let (mut cin, mut block) = (config.stem_channels, 0);
    for &(repeats, k, _, expand, cout) in &config.stages {
        for _ in 0..repeats {
            let p = format!("_blocks.{block}");
            let hidden = cin * expand;
            if expand != 1 {
                shapes.push((format!("{p}._expand_conv.weight"), vec![hidden, cin, 1, 1]));
                bn(&mut shapes, &format!("{p}._bn0"), hidden);
            }
            shapes.push((format!("{p}._depthwise_conv.weight"), vec![hidden, 1, k, k]));
            bn(&mut shapes, &format!("{p}._bn1"), hidden);
            shapes.push((
                format!("{p}._project_conv.weight"),
                vec![cout, hidden, 1, 1],
            ));
            bn(&mut shapes, &format!("{p}._bn2"), cout);
            cin = cout;
            block += 1;
        }
    }
    shapes.push((
        "_conv_head.weight".into(),
        vec![config.head_channels, cin, 1, 1],
    ));
    bn(&mut shapes, "_bn1", config.head_channels);
    shapes.push((
        "_fc.weight".into(),
        vec![config.classes, config.head_channels],
    ));
    shapes.push(("_fc.bias".into(), vec![config.classes]));

    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .enumerate()
        .map(|(t, (name, shape))| {
            let n: usize = shape.iter().product();
            let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
            let bytes = (0..n)
                .flat_map(|i| {
                    let u = ((i * 7919 + t * 104_729) % 1000) as f32 / 1000.0;
                    let v = if name.ends_with("running_var") {
                        1.0
                    } else if name.ends_with("running_mean") || name.ends_with("bias") {
                        0.0
                    } else if name.contains("bn") {
                        1.0
                    } else {
                        (u - 0.5) * (6.0 / fan_in as f32).sqrt()
                    };
                    v.to_le_bytes()
                })
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// `captioner serve` on a free port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// Starts the server (with `weights`, or the fetched encoder weights) and waits until
    /// /healthz says it is ready.
    pub fn start(weights: Option<&Path>, extra: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_captioner"));
        command.args(["serve", "--addr", "127.0.0.1:0", "--threads", "2"]);
        if let Some(weights) = weights {
            command.arg("--weights").arg(weights);
        }
        let mut child = command
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the captioner binary runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        let server = Server { child, addr };
        let start = Instant::now();
        while server.get("/healthz").0 != 200 {
            assert!(start.elapsed() < Duration::from_secs(120), "never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        answer(ureq::get(&self.url(path)).call())
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        answer(
            ureq::post(&self.url(path))
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    /// The caption the server gives for a photo sent as the body.
    pub fn caption(&self, photo: &[u8]) -> String {
        let (status, body) = self.post("/v1/caption", "image/jpeg", photo);
        assert_eq!(status, 200, "{body}");
        json(&body)["caption"].as_str().unwrap().to_owned()
    }

    /// A connection that sent a request's headers and part of its body, and waits.
    pub fn open_upload(&self, length: usize) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "POST /v1/caption HTTP/1.1\r\nHost: {}\r\nContent-Type: image/jpeg\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n",
            self.addr
        )
        .unwrap();
        stream.write_all(&[0xff, 0xd8]).unwrap();
        stream.flush().unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(response) => (response.status(), response.into_string().unwrap()),
        Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap()),
        Err(err) => panic!("no HTTP answer: {err}"),
    }
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body}"))
}
