//! The class-word table: `tools/make_class_words.py` run again from WordNet 3.0 (Debian package
//! wordnet-base, which .ci/run installs) and timm's class order (its wheel fetched from PyPI with
//! pip) gives exactly the file that the binary embeds.

mod common;

#[cfg_attr(
    not(captioner_data),
    ignore = "set CAPTIONER_DATA (CI installs wordnet-base and fetches timm's wheel for this test)"
)]
#[test]
fn the_generator_rewrites_the_embedded_table_byte_for_byte() {
    let out = common::scratch("class_words").join("imagenet_class_words.tsv");
    let status = std::process::Command::new("python3")
        .arg(common::repo_path("tools/make_class_words.py"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "make_class_words.py failed");
    let written = std::fs::read_to_string(&out).unwrap();
    let embedded = include_str!("../data/imagenet_class_words.tsv");
    assert_eq!(written.len(), embedded.len());
    assert!(
        written == embedded,
        "the script's output differs from the embedded table"
    );
    assert_eq!(
        captioner::text::class_words::class_words().len(),
        written.lines().count()
    );
}
