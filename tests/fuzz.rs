//! The fuzzer's short pass for CI (the long runs: `cargo run --release --example fuzz`, counts in
//! docs/FUZZING.md): mutations of each target's fixtures through every parser of user input, and not
//! one may panic.

mod common;

/// A target's seed files: its fixture files, and the files of its fixture folders.
fn seeds(fixtures: &[&str]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for fixture in fixtures {
        let path = common::repo_path(fixture);
        let mut files = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e != "rgb" && e != "py"))
                .collect()
        } else {
            vec![path]
        };
        files.sort();
        seeds.extend(files.into_iter().map(|p| std::fs::read(p).unwrap()));
    }
    seeds
}

#[test]
fn a_short_fuzz_pass_finds_no_crash_in_any_parser() {
    for (name, parse, fixtures) in captioner::fuzz::TARGETS {
        let seeds = seeds(fixtures);
        assert!(!seeds.is_empty(), "{name}: no seeds");
        let inputs = if name == "image" { 30_000 } else { 5_000 };
        let report = captioner::fuzz::run(parse, &seeds, inputs, 7, |_| {});
        assert_eq!(report.inputs, inputs);
        assert!(
            report.accepted > 0,
            "{name}: its seeds parse, so some inputs must"
        );
        let messages: Vec<&str> = report.crashes.iter().map(|(_, m)| m.as_str()).collect();
        assert!(report.crashes.is_empty(), "{name}: panics {messages:?}");
    }
}
