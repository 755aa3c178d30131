//! The fuzzer's short pass for CI (the long runs: `cargo run --release --example fuzz`, counts in
//! docs/FUZZING.md): mutations of every format fixture through the image decoder and resize, and
//! not one may panic.

mod common;

#[test]
fn a_short_fuzz_pass_finds_no_crash_in_the_image_decoder() {
    let dir = common::repo_path("fixtures/formats");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "rgb" && e != "py"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 15, "the format fixtures are the seeds");
    let report = captioner::fuzz::run(captioner::fuzz::decode_image, &seeds, 50_000, 7, |_| {});
    assert_eq!(report.inputs, 50_000);
    assert!(report.accepted > 0, "some mutations still decode");
    let messages: Vec<&str> = report.crashes.iter().map(|(_, m)| m.as_str()).collect();
    assert!(report.crashes.is_empty(), "panics: {messages:?}");
}
