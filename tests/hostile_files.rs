//! Hand-made model files that ask for unbounded time or memory (fixtures/hostile/, written by
//! tools/make_hostile_fixtures.py): each reader refuses each one with an error that names the file
//! and the reason, instead of hanging, aborting on an allocation or panicking.

mod common;

use captioner::model::Model;
use captioner::vision::weights::Weights;

/// Each hostile checkpoint and what its refusal must say.
const CHECKPOINTS: [(&str, &str); 6] = [
    ("memo_doubling.pth", "more than 262144 values"),
    (
        "zero_stride.pth",
        "more than the file's 220 bytes could store",
    ),
    ("overflowing_size.pth", "overflows"),
    ("wrapping_offset.pth", "reaches past the end of its storage"),
    ("repeated_views.pth", "could store"),
    ("zip_bomb.pth", "archive/data.pkl is 20000003 bytes"),
];

#[test]
fn every_hostile_checkpoint_is_refused_with_its_reason() {
    for (name, reason) in CHECKPOINTS {
        let path = common::repo_path(&format!("fixtures/hostile/pth/{name}"));
        let Err(err) = Weights::load(&path) else {
            panic!("{name} was accepted");
        };
        let message = format!("{err:#}");
        assert!(message.contains(name), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
    }
}

#[test]
fn a_config_that_declares_impossible_sizes_is_refused_before_allocating() {
    for (name, reason) in [
        ("huge_config.json", "more than weights.safetensors"),
        (
            "long_config.json",
            "max_length 1099511627776 is outside 1..=1024",
        ),
    ] {
        let dir = common::scratch(&format!("hostile-{name}"));
        for file in std::fs::read_dir(common::repo_path("models/default")).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, dir.join(file.file_name().unwrap())).unwrap();
        }
        let hostile = common::repo_path(&format!("fixtures/hostile/config/{name}"));
        std::fs::copy(hostile, dir.join("config.json")).unwrap();
        let Err(err) = Model::load(&dir) else {
            panic!("{name} was accepted");
        };
        let message = format!("{err:#}");
        assert!(message.contains("config.json"), "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
    }
}
