//! The captioner inside a browser: the library compiled to WebAssembly (`web/build.sh`), so that a
//! photo is captioned on the device and never sent anywhere. The page (`app.js`) fetches the model's
//! files and the encoder's f16 weights beside it, makes one `PageCaptioner` and hands it photo bytes;
//! the answer is `serve`'s JSON, so the page is `serve`'s page.

use captioner::caption::{CaptionOptions, Captioner};
use captioner::model::{Model, ModelFiles};
use std::path::Path;
use wasm_bindgen::prelude::*;

/// What the page's answers call the model.
const MODEL_NAME: &str = "default, in this browser";

/// The shipped model and its encoder, loaded from the files the page fetched.
#[wasm_bindgen]
pub struct PageCaptioner {
    captioner: Captioner,
}

#[wasm_bindgen]
impl PageCaptioner {
    /// The model from its folder's files (config.json, vocab.json, weights.safetensors,
    /// familiar.safetensors, concepts.safetensors) and the encoder's weights (safetensors).
    #[wasm_bindgen(constructor)]
    pub fn new(
        config: &str,
        vocab: &str,
        weights: &[u8],
        familiar: &[u8],
        concepts: &[u8],
        encoder: &[u8],
    ) -> Result<PageCaptioner, JsError> {
        let files = ModelFiles {
            config,
            vocab,
            weights,
            familiar: Some(familiar),
            concepts: Some(concepts),
        };
        let model = Model::from_files(&files, Path::new("model")).map_err(js_error)?;
        let captioner = Captioner::from_encoder_bytes(model, encoder, "encoder.safetensors")
            .map_err(js_error)?;
        Ok(PageCaptioner { captioner })
    }

    /// The caption of a photo's bytes (any format the CLI reads), as `captioner caption` makes it:
    /// `serve`'s answer (`Captioned::answer_json`) with the attention, as JSON text.
    pub fn caption(&self, photo: &[u8]) -> Result<String, JsError> {
        let captioned = self
            .captioner
            .caption(photo, &CaptionOptions::default())
            .map_err(js_error)?;
        Ok(captioned.answer_json(MODEL_NAME, true).to_string())
    }
}

/// The library's error with its causes, the CLI's message.
fn js_error(err: anyhow::Error) -> JsError {
    JsError::new(&format!("{err:#}"))
}
