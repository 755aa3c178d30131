//! Helpers shared by the end-to-end tests: run the built binary, make scratch folders, find the real data.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn captioner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_captioner"))
        .args(args)
        .output()
        .expect("the captioner binary runs")
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

/// The folder named by CAPTIONER_DATA (holding flickr8k/, *-golden/), or None: real-data tests then
/// print why they did nothing and pass.
pub fn real_data(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CAPTIONER_DATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("{test}: CAPTIONER_DATA is not set, real-data test skipped");
            None
        }
    }
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
