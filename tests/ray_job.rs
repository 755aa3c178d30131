//! deploy/ray_job.py on a local Ray cluster started by the test: the 1,000 Flickr8k test photos in 8
//! shards, as Ray tasks running the binary, merged; the result must equal a single-process run's
//! merged file byte for byte. Needs CAPTIONER_DATA and CAPTIONER_RAY_PYTHON (a Python with `ray`;
//! .ci/run makes one).

mod common;

use common::{real_data, run_ok, scratch, stderr};
use std::path::PathBuf;
use std::process::Command;

/// `ray start --head` on a free port; `ray stop` when dropped.
struct RayCluster {
    ray: PathBuf,
    address: String,
}

impl Drop for RayCluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.ray).arg("stop").output();
    }
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA and CAPTIONER_RAY_PYTHON (a Python with ray; CI makes one)"
)]
#[test]
fn a_ray_job_of_eight_shards_equals_the_single_process_run() {
    let python = PathBuf::from(std::env::var_os("CAPTIONER_RAY_PYTHON").expect(
        "CAPTIONER_RAY_PYTHON: a Python with ray (python3 -m venv v && v/bin/pip install ray)",
    ));
    let dir = scratch("ray-job");
    let images = real_data().join("flickr8k/Images");
    let test_split =
        std::fs::read_to_string(real_data().join("flickr8k/Flickr_8k.testImages.txt")).unwrap();
    let list = dir.join("test-photos.txt");
    let photos: Vec<String> = test_split
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|name| images.join(name.trim()).display().to_string())
        .collect();
    assert_eq!(photos.len(), 1000);
    std::fs::write(&list, photos.join("\n")).unwrap();
    let bin = env!("CARGO_BIN_EXE_captioner");

    let single = dir.join("single.jsonl");
    let merged_single = dir.join("single-merged.jsonl");
    run_ok(&[
        "caption",
        "--list",
        list.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
    ]);
    run_ok(&[
        "merge",
        "--out",
        merged_single.to_str().unwrap(),
        single.to_str().unwrap(),
    ]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = RayCluster {
        ray: python.with_file_name("ray"),
        address: format!("127.0.0.1:{port}"),
    };
    let started = Command::new(&cluster.ray)
        .args([
            "start",
            "--head",
            "--num-cpus",
            "2",
            "--disable-usage-stats",
            "--node-ip-address",
            "127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", stderr(&started));
    let out = dir.join("ray-out");
    let job = Command::new(&python)
        .arg(common::repo_path("deploy/ray_job.py"))
        .args([
            "--shards",
            "8",
            "--address",
            &cluster.address,
            "--binary",
            bin,
            "--out",
        ])
        .arg(&out)
        .args(["--", "--list", list.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(job.status.success(), "{}", stderr(&job));
    let summary = common::json(std::str::from_utf8(&job.stdout).unwrap().trim());
    assert_eq!(summary["captions"], 1000, "{summary}");
    assert_eq!(
        std::fs::read(out.join("captions.jsonl")).unwrap(),
        std::fs::read(&merged_single).unwrap(),
        "the Ray job's merged captions are the single run's"
    );
    eprintln!("ray job: {summary}");
}
