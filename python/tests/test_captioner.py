"""The Python package against the command line it shares a library with: the same captions on the
fixture photos, whichever way a photo arrives, and errors that say what is wrong.

Needs the `captioner` binary (built by `cargo build --release`; CAPTIONER_BIN to point elsewhere)
and the encoder weights (fetched into the cache on first use, as the CLI does)."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

import captioner

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORMATS = ROOT / "fixtures" / "formats"
# Lossless formats, whose pixels the Rust decoder and Pillow agree on exactly.
PHOTOS = [FORMATS / name for name in ["palette.png", "rgba.png", "palette.bmp", "gray.pgm"]]
BIN = os.environ.get("CAPTIONER_BIN", str(ROOT / "target" / "release" / "captioner"))


def cli(*args):
    run = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def shipped():
    return captioner.Captioner()


def test_captions_equal_the_cli_json_lines(shipped):
    lines = [json.loads(line) for line in cli("caption", "--json", *PHOTOS).splitlines()]
    assert len(lines) == len(PHOTOS)
    for photo, line in zip(PHOTOS, lines):
        assert shipped.caption(str(photo)) == line
        assert shipped.caption(photo) == line  # a pathlib.Path
    assert shipped.caption_many(PHOTOS, batch=3) == lines


def test_bytes_pil_and_numpy_inputs_equal_the_path(shipped):
    for photo in PHOTOS:
        from_path = shipped.caption(photo)
        del from_path["image"]
        image = Image.open(photo)
        for other in [photo.read_bytes(), image, np.asarray(image.convert("RGB"))]:
            answer = shipped.caption(other)
            assert answer.pop("image") is None
            assert answer == from_path, type(other)


def test_the_settings_are_the_cli_flags(shipped):
    greedy = captioner.Captioner(beam=1, ground=False)
    assert repr(greedy) == 'Captioner(model="default", beam=1, ground=False)'
    assert shipped.name == "default"
    line = json.loads(cli("caption", "--json", "--beam", "1", "--ground", "off", PHOTOS[0]))
    assert greedy.caption(PHOTOS[0]) == line


def test_bad_input_raises_with_the_reason(shipped, tmp_path):
    missing = tmp_path / "no such photo.jpg"
    with pytest.raises(captioner.CaptionerError, match="no such photo.jpg: cannot read the file"):
        shipped.caption(missing)
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(captioner.CaptionerError, match="notes.jpg"):
        shipped.caption(text)
    with pytest.raises(captioner.CaptionerError, match=r"shape \[4, 4\]"):
        shipped.caption(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(captioner.CaptionerError, match="float64"):
        shipped.caption(np.zeros((4, 4, 3)))
    with pytest.raises(captioner.CaptionerError, match="int is not a photo"):
        shipped.caption(3)
    with pytest.raises(captioner.CaptionerError, match="beam 11: choose 1"):
        captioner.Captioner(beam=11)
    with pytest.raises(captioner.CaptionerError, match="no/such/model"):
        captioner.Captioner("no/such/model")
    # In a batch, a bad photo is its own answer and the others are captioned.
    answers = shipped.caption_many([PHOTOS[0], missing])
    assert answers[0]["caption"]
    assert answers[1]["image"] == str(missing) and "cannot read the file" in answers[1]["error"]


def test_evaluate_gives_the_cli_scores(tmp_path):
    work, features = tmp_path / "work", tmp_path / "features.safetensors"
    cli("prepare", "--data", ROOT / "fixtures" / "tiny", "--out", work, "--min-count", "1")
    cli("features", "--images", ROOT / "fixtures" / "tiny" / "images", "--out", features, "--grid",
        "--classes")
    scores = captioner.evaluate(work, features, split="test", beam=3)
    assert scores["images"] == 2 and set(scores) == {"images", "greedy", "beam3"}
    table = cli("evaluate", "--work", work, "--features", features, "--split", "test")
    cider = next(line for line in table.splitlines() if line.startswith("CIDEr-D")).split()[1:]
    assert [f"{scores[run]['cider'] * 100:.2f}" for run in ["greedy", "beam3"]] == cider
    with pytest.raises(captioner.CaptionerError, match='split "val": train, dev or test'):
        captioner.evaluate(work, features, split="val")
