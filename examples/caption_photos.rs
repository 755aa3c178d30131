//! The library in a dozen lines: load the shipped model, caption photos, print each sentence with
//! what backs its words.
//!
//!   cargo run --release --example caption_photos -- photo.jpg [more photos...]

use captioner::caption::{CaptionOptions, Captioner};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let photos: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if photos.is_empty() {
        anyhow::bail!("usage: caption_photos PHOTO...");
    }
    // The shipped model and its encoder (the weights are fetched once, into the cache).
    let captioner = Captioner::load(None, None)?;
    let options = CaptionOptions::default();
    for (photo, result) in photos.iter().zip(captioner.caption_many(&photos, &options)) {
        match result {
            Ok(caption) => {
                println!("{}: {}", photo.display(), caption.sentence);
                for claim in caption.claims() {
                    println!(
                        "  {:<12} {} {:.2}",
                        claim.word,
                        claim.source.name(),
                        claim.support
                    );
                }
            }
            Err(err) => eprintln!("error: {err:#}"),
        }
    }
    Ok(())
}
