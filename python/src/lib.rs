//! The Python front end: `captioner.Captioner` over the library's `Captioner`, and
//! `captioner.evaluate` over its `evaluate`. No pipeline code lives here: each method turns Python
//! values into the library's inputs, releases the GIL while the library works, and hands back the
//! JSON `caption --json` prints, as a dict.

use captioner::caption::{CaptionOptions, Captioned, Captioner as Library};
use captioner::dataset::Split;
use captioner::evaluate::{evaluate as run_evaluation, EvaluateOptions};
use captioner::generate::{check_beam, SearchOptions};
use captioner::ground::GroundOptions;
use captioner::image::RgbImage;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::path::PathBuf;

pyo3::create_exception!(
    _captioner,
    CaptionerError,
    PyException,
    "A photo, model or file the captioner cannot use; the message says which and why."
);

fn error(err: anyhow::Error) -> PyErr {
    CaptionerError::new_err(format!("{err:#}"))
}

/// A Python value as JSON, through the `json` module (the dicts `caption --json` prints).
fn to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

fn search(beam: usize, length_penalty: f64) -> PyResult<SearchOptions> {
    check_beam(beam).map_err(CaptionerError::new_err)?;
    Ok(SearchOptions {
        beam,
        length_penalty,
        ..SearchOptions::default()
    })
}

/// What a photo given to `caption` is.
enum Photo {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Pixels(RgbImage),
}

/// A path (str or os.PathLike), the bytes of a photo file, a PIL image, or an H x W x 3 uint8
/// array (numpy's or anything with `shape`, `dtype` and `tobytes`).
fn photo(value: &Bound<'_, PyAny>) -> PyResult<Photo> {
    if let Ok(bytes) = value.extract::<Vec<u8>>() {
        if !value.is_instance_of::<pyo3::types::PyString>() {
            return Ok(Photo::Bytes(bytes));
        }
    }
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(Photo::Path(path));
    }
    if value.hasattr("convert")? && value.hasattr("size")? {
        // A PIL image: its RGB pixels, as the CLI's decoder gives them (alpha dropped).
        let rgb = value.call_method1("convert", ("RGB",))?;
        let (width, height): (usize, usize) = rgb.getattr("size")?.extract()?;
        let pixels: Vec<u8> = rgb.call_method0("tobytes")?.extract()?;
        return Ok(Photo::Pixels(RgbImage {
            width,
            height,
            pixels,
        }));
    }
    if value.hasattr("shape")? && value.hasattr("tobytes")? {
        let shape: Vec<usize> = value.getattr("shape")?.extract()?;
        let dtype = value.getattr("dtype")?.str()?.to_string();
        let [height, width, 3] = shape[..] else {
            return Err(CaptionerError::new_err(format!(
                "an array of shape {shape:?}: give height x width x 3 (RGB)"
            )));
        };
        if dtype != "uint8" {
            return Err(CaptionerError::new_err(format!(
                "an array of {dtype}: give uint8 pixels (0-255)"
            )));
        }
        // `tobytes` is row-major (C order) whatever the array's own layout.
        let pixels: Vec<u8> = value.call_method0("tobytes")?.extract()?;
        return Ok(Photo::Pixels(RgbImage {
            width,
            height,
            pixels,
        }));
    }
    let kind = value.get_type().name()?.to_string();
    Err(CaptionerError::new_err(format!(
        "{kind} is not a photo: give a path, the file's bytes, a PIL image or an H x W x 3 uint8 array"
    )))
}

/// An image captioner: the shipped model (or the one in `model`), its encoder, and how it searches.
///
///     c = captioner.Captioner()
///     c.caption("photo.jpg")["caption"]  # 'A dog runs through the grass.'
#[pyclass(module = "captioner", frozen)]
struct Captioner {
    library: Library,
    options: CaptionOptions,
}

impl Captioner {
    /// `caption --json`'s dict for a caption of the photo named `image` (None for one in memory).
    fn answer<'py>(
        &self,
        py: Python<'py>,
        image: Option<&str>,
        captioned: &Captioned,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut line =
            captioned.detailed_json(image.unwrap_or(""), &self.library.model.vocab, false);
        if image.is_none() {
            line["image"] = serde_json::Value::Null;
        }
        to_python(py, &line)
    }
}

#[pymethods]
impl Captioner {
    /// Loads the model (a folder written by `captioner train` or `scst`; None: the shipped one) and
    /// its encoder (weights fetched into the cache when needed, or read from `weights`).
    /// `beam`: 1 (greedy) to 10; `ground`: hold the caption to what the photo backs, as
    /// `captioner caption` does by default.
    #[new]
    #[pyo3(signature = (model=None, *, weights=None, beam=3, length_penalty=1.5, ground=true))]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        weights: Option<PathBuf>,
        beam: usize,
        length_penalty: f64,
        ground: bool,
    ) -> PyResult<Self> {
        let options = CaptionOptions {
            search: search(beam, length_penalty)?,
            ground: ground.then(GroundOptions::default),
            details: true,
        };
        let library = py
            .allow_threads(|| Library::load(model.as_deref(), weights.as_deref()))
            .map_err(error)?;
        Ok(Captioner { library, options })
    }

    /// The model's name: its folder's, or "default" for the shipped one.
    #[getter]
    fn name(&self) -> &str {
        &self.library.name
    }

    /// The caption of one photo, as the dict `captioner caption --json` prints: "caption",
    /// "tokens", "confidence", "claims", "score", "photo_gain", "familiarity", "classes", "named",
    /// "evidence" and "image" (the path, or None). The photo: a path, the file's bytes, a PIL
    /// image or an H x W x 3 uint8 array. Raises CaptionerError with the reason.
    fn caption<'py>(
        &self,
        py: Python<'py>,
        photo_value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let photo = photo(photo_value)?;
        let options = self.options;
        let library = &self.library;
        let captioned = py
            .allow_threads(|| match &photo {
                Photo::Path(path) => library.caption_file(path, &options),
                Photo::Bytes(bytes) => library.caption(bytes, &options),
                Photo::Pixels(image) => library.caption_image(image, &options),
            })
            .map_err(error)?;
        let name = match &photo {
            Photo::Path(path) => Some(path.to_string_lossy().into_owned()),
            _ => None,
        };
        self.answer(py, name.as_deref(), &captioned)
    }

    /// The captions of many photo files, in order, `batch` at a time side by side: one dict each,
    /// as `caption`'s, or {"image", "error"} for a photo that could not be captioned (the others
    /// are still captioned).
    #[pyo3(signature = (paths, batch=64))]
    fn caption_many<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<PathBuf>,
        batch: usize,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let options = self.options;
        let mut answers = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(batch.max(1)) {
            let results = py.allow_threads(|| self.library.caption_many(chunk, &options));
            for (path, result) in chunk.iter().zip(results) {
                let name = path.to_string_lossy();
                answers.push(match result {
                    Ok(captioned) => self.answer(py, Some(&name), &captioned)?,
                    Err(err) => to_python(
                        py,
                        &serde_json::json!({"image": name, "error": format!("{err:#}")}),
                    )?,
                });
            }
        }
        Ok(answers)
    }

    fn __repr__(&self) -> String {
        let ground = if self.options.ground.is_some() {
            "True"
        } else {
            "False"
        };
        format!(
            "Captioner(model={:?}, beam={}, ground={ground})",
            self.library.name, self.options.search.beam
        )
    }
}

/// Scores a model on a split of a work folder (`captioner prepare`) with its features file
/// (`captioner features`), as `captioner evaluate` does: {"images": n, "greedy": {...},
/// "beam<K>": {...}}, each run's BLEU, METEOR (None without Java), ROUGE-L and CIDEr-D as
/// fractions. `ground`: score grounded captions, as `caption` writes them.
#[pyfunction]
#[pyo3(signature = (work, features, *, model=None, split="test", beam=3, length_penalty=1.5, ground=false, limit=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate<'py>(
    py: Python<'py>,
    work: PathBuf,
    features: PathBuf,
    model: Option<PathBuf>,
    split: &str,
    beam: usize,
    length_penalty: f64,
    ground: bool,
    limit: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let split = Split::ALL
        .into_iter()
        .find(|s| s.name() == split)
        .ok_or_else(|| CaptionerError::new_err(format!("split {split:?}: train, dev or test")))?;
    let options = EvaluateOptions {
        work,
        features,
        split,
        search: search(beam, length_penalty)?,
        out: None,
        force: false,
        meteor_jar: None,
        ground: ground.then(GroundOptions::default),
        weights: None,
        progress: false,
        limit,
    };
    let evaluation = py
        .allow_threads(|| {
            let model = captioner::model::Model::load_or_shipped(model.as_deref())?;
            run_evaluation(&model, &options)
        })
        .map_err(error)?;
    let mut scores = serde_json::Map::new();
    scores.insert("images".into(), evaluation.images.into());
    for run in &evaluation.runs {
        let value = serde_json::to_value(&run.scores).map_err(|e| error(e.into()))?;
        scores.insert(run.name.clone(), value);
    }
    to_python(py, &serde_json::Value::Object(scores))
}

#[pymodule]
fn _captioner(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Captioner>()?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add("CaptionerError", m.py().get_type::<CaptionerError>())?;
    Ok(())
}
