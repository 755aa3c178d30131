//! Seed-fidelity checks on the real Flickr8k data; they run when CAPTIONER_DATA names the folder
//! holding flickr8k/ (CI sets it to ../shared/data).

mod common;

use captioner::prepare::{prepare, PrepareOptions, Summary};
use common::real_data;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn prepare_real(data: &Path, out: &Path) -> Summary {
    let options = PrepareOptions {
        data: data.to_owned(),
        out: out.to_owned(),
        format: None,
        tokenize: captioner::text::Tokenization::Seed,
        min_count: None,
        images: None,
        split_sizes: None,
        force: false,
    };
    prepare(&options).unwrap()
}

/// image id -> its cleaned captions, sorted.
fn cleaned_captions(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(out.join("descriptions.txt"))
        .unwrap()
        .lines()
    {
        let (id, caption) = line.split_once(' ').unwrap();
        map.entry(id.to_owned())
            .or_default()
            .push(caption.to_owned());
    }
    map.values_mut().for_each(|c| c.sort());
    map
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn flickr8k_matches_the_seed_in_all_three_forms() {
    let data = real_data();
    let flickr = data.join("flickr8k");
    let scratch = common::scratch("real-prepare");

    let token = prepare_real(&flickr, &scratch.join("token"));
    assert_eq!(token.images, 8092);
    assert_eq!(token.captions, 40460);
    assert_eq!(token.words_all, 8763);
    assert_eq!(token.vocab_words, 7578);
    assert_eq!(
        token.vocab_words + 1,
        7579,
        "the seed's size: padding + training tokens"
    );
    assert_eq!(token.vocab_size, 7580, "the seed's 7,579 + <unk>");
    assert_eq!(token.max_length, 34);
    let per_split: Vec<usize> = ["train", "dev", "test"]
        .iter()
        .map(|s| token.images_per_split[s])
        .collect();
    assert_eq!(per_split, [6000, 1000, 1000]);
    assert_eq!(token.ignored.count, 92);
    assert_eq!(token.ignored.captions, 460);
    assert!(token
        .ignored
        .ids
        .contains(&"2258277193_586949ec62.jpg.1".to_owned()));

    let kaggle = prepare_real(&flickr.join("captions.txt"), &scratch.join("kaggle"));
    assert_eq!(
        (kaggle.images, kaggle.captions, kaggle.words_all),
        (8091, 40455, 8763)
    );
    assert_eq!((kaggle.vocab_size, kaggle.max_length), (7580, 34));

    let karpathy = prepare_real(
        &flickr.join("dataset_flickr8k.json"),
        &scratch.join("karpathy"),
    );
    assert_eq!(
        (karpathy.images, karpathy.captions, karpathy.words_all),
        (8000, 40000, 8658)
    );
    assert_eq!((karpathy.vocab_size, karpathy.max_length), (7580, 34));

    let token_captions = cleaned_captions(&scratch.join("token"));
    for other in ["kaggle", "karpathy"] {
        let captions = cleaned_captions(&scratch.join(other));
        for (id, caps) in &captions {
            assert_eq!(Some(caps), token_captions.get(id), "{other}: {id}");
        }
    }
    let vocab = |name: &str| std::fs::read(scratch.join(name).join("vocab.json")).unwrap();
    assert_eq!(vocab("token"), vocab("kaggle"));
    assert_eq!(vocab("token"), vocab("karpathy"));
    let splits = |name: &str| common::read_json(&scratch.join(name).join("splits.json"));
    for split in ["train", "dev", "test"] {
        let ids = |name| {
            splits(name)[split]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(ids("token"), ids("karpathy"), "{split}");
    }
}

/// Our PTB tokenizer against pycocoevalcap 1.2's (Stanford PTBTokenizer 3.4.1, punctuation removed)
/// on every Flickr8k caption and 16 tricky strings: the same token string for all of them.
#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn ptb_tokenizer_matches_pycocoevalcap_on_every_caption() {
    let data = real_data();
    let path = data.join("metrics-golden/flickr8k_ptb_tokens.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let captions = golden["captions"].as_array().unwrap();
    assert_eq!(captions.len(), 40_476);
    let mismatches: Vec<String> = captions
        .iter()
        .filter_map(|c| {
            let raw = c["raw"].as_str().unwrap();
            let expected = c["tokens"].as_str().unwrap();
            let ours = captioner::text::ptb_tokenize(raw).join(" ");
            (ours != expected)
                .then(|| format!("{raw:?}\n  ours:     {ours}\n  expected: {expected}"))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} differ, e.g.\n{}",
        mismatches.len(),
        captions.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}

/// `captioner evaluate` with the shipped model on the test split scores exactly as pycocoevalcap 1.2
/// itself does on the results files it wrote (PTBTokenizer, Bleu, Meteor, Rouge, Cider), to 1e-6.
/// Needs CAPTIONER_COCO_PYTHON: a Python with `pycocoevalcap==1.2` (.ci/run makes one) and Java.
#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn evaluate_equals_pycocoevalcap_on_its_results_files() {
    let data = real_data();
    let python = std::env::var("CAPTIONER_COCO_PYTHON").expect(
        "CAPTIONER_COCO_PYTHON must name a Python with pycocoevalcap 1.2 for the real-data tests (.ci/run makes one)",
    );
    let flickr = data.join("flickr8k");
    let dir = common::scratch("coco-protocol");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let out = common::captioner(args);
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    };
    run(&[
        "prepare",
        "--data",
        flickr.to_str().unwrap(),
        "--out",
        &path("work"),
    ]);
    run(&[
        "features",
        "--images",
        flickr.join("Images").to_str().unwrap(),
        "--split-file",
        flickr.join("Flickr_8k.testImages.txt").to_str().unwrap(),
        "--out",
        &path("test.safetensors"),
        // Grids too: whichever decoder is shipped can read the file.
        "--grid",
        "--quiet",
    ]);
    run(&[
        "evaluate",
        "--work",
        &path("work"),
        "--features",
        &path("test.safetensors"),
        "--split",
        "test",
        "--beam",
        "3",
        "--out",
        &path("eval"),
        "--quiet",
    ]);
    let ours = common::read_json(&dir.join("eval/scores.json"));
    for run_name in ["greedy", "beam3"] {
        let output = std::process::Command::new(&python)
            .arg(common::repo_path("tools/coco_eval.py"))
            .arg("--captions")
            .arg(flickr.join("Flickr8k.token.txt"))
            .arg("--results")
            .arg(dir.join(format!("eval/results_{run_name}.json")))
            .output()
            .expect("the CAPTIONER_COCO_PYTHON interpreter runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let theirs: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        for key in [
            "bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider",
        ] {
            let (a, b) = (
                ours[run_name][key].as_f64().unwrap(),
                theirs[key].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() < 1e-6,
                "{run_name} {key}: ours {a}, pycocoevalcap {b}"
            );
        }
    }
}

/// A blank photo gets a caption (the model always writes one) but a grounding near 0: the caption is
/// what the language model says with no image. A Flickr8k test photo's caption is well grounded.
#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn blank_photos_get_a_low_grounding() {
    let data = real_data();
    let dir = common::scratch("grounding");
    let blank = dir.join("grey.png");
    image::RgbImage::from_pixel(300, 200, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let photo = data.join("flickr8k/Images/3385593926_d3e9c21170.jpg");
    let caption = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["caption", "--json"];
        args.extend(extra);
        args.extend([blank.to_str().unwrap(), photo.to_str().unwrap()]);
        let out = common::captioner(&args);
        assert!(out.status.success(), "{}", common::stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The decoder's own caption of the blank photo (with evidence it writes none).
    let lines = caption(&["--evidence", "off"]);
    let grounding = |i: usize| lines[i]["photo_gain"].as_f64().unwrap();
    assert!(grounding(0) < 0.3, "blank photo: {}", lines[0]);
    assert!(grounding(1) > 1.0, "Flickr8k photo: {}", lines[1]);
    // Held to evidence, the blank photo claims nothing: no person, animal or scene.
    let lines = caption(&[]);
    assert_eq!(lines[0]["caption"], "A photo.", "{}", lines[0]);
    assert_eq!(lines[0]["claims"].as_array().map(Vec::len), Some(0));
    assert!(
        lines[1]["photo_gain"].as_f64().unwrap() > 1.0,
        "{}",
        lines[1]
    );
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the real data and golden files"
)]
#[test]
fn large_jpegs_decoded_at_a_reduced_scale_keep_their_captions() {
    // The first 20 Flickr8k test photos enlarged eight times (about 4,000 x 3,000, as a phone's),
    // as JPEGs (decoded at 1/2 for the 224 px input), and those JPEGs decoded whole, as PNGs: the
    // same photo through both paths.
    let data = real_data().join("flickr8k");
    let dir = common::scratch("reduced-jpeg");
    let list = std::fs::read_to_string(data.join("Flickr_8k.testImages.txt")).unwrap();
    let mut pairs = Vec::new();
    for (i, name) in list.lines().take(20).enumerate() {
        let photo = image::open(data.join("Images").join(name)).unwrap();
        let large = photo.resize_exact(
            photo.width() * 8,
            photo.height() * 8,
            image::imageops::FilterType::Triangle,
        );
        let jpeg = dir.join(format!("{i}.jpg"));
        large.to_rgb8().save(&jpeg).unwrap();
        let full = captioner::image::decode(&std::fs::read(&jpeg).unwrap()).unwrap();
        let png = dir.join(format!("{i}.png"));
        image::RgbImage::from_raw(full.width as u32, full.height as u32, full.pixels)
            .unwrap()
            .save(&png)
            .unwrap();
        pairs.push((jpeg, png));
    }
    let captions = |paths: Vec<&Path>| -> Vec<String> {
        let mut args = vec!["caption".to_owned()];
        args.extend(paths.iter().map(|p| p.to_str().unwrap().to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::captioner(&args);
        assert!(out.status.success(), "{}", common::stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_once('\t').unwrap().1.to_owned())
            .collect()
    };
    let reduced = captions(pairs.iter().map(|(jpeg, _)| jpeg.as_path()).collect());
    let whole = captions(pairs.iter().map(|(_, png)| png.as_path()).collect());
    let same = reduced.iter().zip(&whole).filter(|(a, b)| a == b).count();
    let differ: Vec<_> = reduced.iter().zip(&whole).filter(|(a, b)| a != b).collect();
    eprintln!(
        "{same} of {} captions the same; differ: {differ:?}",
        reduced.len()
    );
    // A caption may turn on a near tie (re-encoding these photos as JPEG at quality 95 changes one
    // of the 20): at most two may change.
    assert!(same + 2 >= reduced.len(), "{differ:?}");
}
