//! Grounded captions end to end (CAPTIONER_DATA): the shipped model and the real EfficientNet-Lite0
//! (its classifier included) on photos from outside Flickr8k's world, with grounding (the default)
//! and without.

mod common;

use common::{real_data, run_ok};

fn caption_json(photos: &[String], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["caption", "--json"];
    args.extend(extra);
    args.extend(photos.iter().map(String::as_str));
    let out = run_ok(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the imagenet-sample photos"
)]
#[test]
fn grounding_names_what_the_classifier_sees_and_off_turns_it_off() {
    let sample = real_data().join("imagenet-sample");
    // (photo, the name the caption must hold): a penguin and a hamster, which the decoder's
    // vocabulary lacks (named by filling the place of "bird" and "animal"), and an oboe (an article
    // before it must agree: "an").
    let cases = [
        ("n02056570_king_penguin.JPEG", "penguin"),
        ("n02342885_hamster.JPEG", "hamster"),
        ("n03838899_oboe.JPEG", "oboe"),
    ];
    let photos: Vec<String> = cases
        .iter()
        .map(|(file, _)| sample.join(file).display().to_string())
        .collect();
    // The decoder's grounded sentence (without evidence these photos are not composed).
    let grounded = caption_json(&photos, &["--evidence", "off"]);
    let plain = caption_json(&photos, &["--ground", "off"]);
    for (((_, name), with), without) in cases.iter().zip(&grounded).zip(&plain) {
        let caption = with["caption"].as_str().unwrap().to_lowercase();
        let words: Vec<&str> = caption
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        assert!(words.contains(name), "{with}");
        assert_eq!(with["named"]["name"], *name, "{with}");
        assert!(with["named"]["probability"].as_f64().unwrap() > 0.5);
        let word = with["named"]["word"].as_str().unwrap();
        assert!(
            !with["tokens"]
                .as_str()
                .unwrap()
                .split(' ')
                .any(|t| t == word),
            "the name took the place of \"{word}\": {with}"
        );
        // An article before the name agrees with it.
        let at = words.iter().position(|w| w == name).unwrap();
        if at > 0 && matches!(words[at - 1], "a" | "an") {
            let article = if name.starts_with('o') { "an" } else { "a" };
            assert_eq!(words[at - 1], article, "{with}");
        }
        assert!(without["named"].is_null(), "{without}");
        assert!(with["familiarity"].as_f64().unwrap() < 0.6, "{with}");
        assert!(
            !without["caption"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(name),
            "the decoder alone does not know the word: {without}"
        );
    }

    // A Flickr8k test photo is familiar to the model: its caption is left to the decoder, although
    // the classifier is sure of something in it (a basketball).
    let flickr = real_data()
        .join("flickr8k/Images/3072172967_630e9c69d0.jpg")
        .display()
        .to_string();
    let line = &caption_json(&[flickr], &[])[0];
    assert!(line["familiarity"].as_f64().unwrap() > 0.7, "{line}");
    assert!(
        line["classes"][0]["probability"].as_f64().unwrap() > 0.5,
        "{line}"
    );
    assert!(line["named"].is_null(), "{line}");
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the imagenet-sample photos"
)]
#[test]
fn by_default_every_claim_has_a_source_and_an_unfamiliar_photo_says_only_backed_words() {
    let sample = real_data().join("imagenet-sample");
    // A goldfish and a tiger shark: no person, no dog; the decoder alone puts people and dogs there.
    let photos: Vec<String> = ["n01443537_goldfish.JPEG", "n01491361_tiger_shark.JPEG"]
        .iter()
        .map(|file| sample.join(file).display().to_string())
        .collect();
    for line in caption_json(&photos, &[]) {
        let caption = line["caption"].as_str().unwrap();
        assert!(caption.starts_with("A photo of "), "{line}");
        let confidence = line["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{line}");
        let claims = line["claims"].as_array().unwrap();
        assert!(!claims.is_empty(), "{line}");
        for claim in claims {
            let source = claim["source"].as_str().unwrap();
            assert!(
                ["decoder", "detector", "classifier"].contains(&source),
                "{line}"
            );
            assert!(claim["support"].as_f64().unwrap() >= confidence, "{line}");
        }
        // Its name comes from the classifier; nothing in it is a person or a dog.
        assert_eq!(claims[0]["source"], "classifier", "{line}");
        assert!(line["evidence"]["person"]["backed"].is_null(), "{line}");
        assert!(line["evidence"]["dog"]["backed"].is_null(), "{line}");
    }
}

#[cfg_attr(
    not(captioner_data),
    ignore = "needs CAPTIONER_DATA: the Flickr8k test photos"
)]
#[test]
fn the_test_photos_searched_together_get_the_captions_they_get_alone() {
    // The 1,000 Flickr8k test photos, one at a time (--batch 1) and with their searches stepped
    // 64 photos together (32 a thread), grounded (the default) and not, greedy and beam 3.
    let flickr = real_data().join("flickr8k");
    let list_text = std::fs::read_to_string(flickr.join("Flickr_8k.testImages.txt")).unwrap();
    let dir = common::scratch("batched-search");
    let list = dir.join("photos.txt");
    let photos: Vec<String> = list_text
        .lines()
        .map(|name| flickr.join("Images").join(name).display().to_string())
        .collect();
    assert_eq!(photos.len(), 1000);
    std::fs::write(&list, photos.join("\n")).unwrap();
    for extra in [&[][..], &["--ground", "off"], &["--beam", "1"]] {
        let run = |batch: &str| {
            let mut args = vec!["caption", "--threads", "2", "--batch", batch];
            args.extend(["--list", list.to_str().unwrap()]);
            args.extend_from_slice(extra);
            String::from_utf8(run_ok(&args).stdout).unwrap()
        };
        let (alone, together) = (run("1"), run("64"));
        assert_eq!(alone.lines().count(), 1000);
        assert!(alone == together, "{extra:?}: a caption differs");
    }
}
