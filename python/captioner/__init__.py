"""Image captions from Python: the `captioner` crate's library, compiled in.

    import captioner
    c = captioner.Captioner()                 # the shipped model; Captioner("model_dir") for yours
    c.caption("photo.jpg")["caption"]         # also bytes, a PIL image or an H x W x 3 uint8 array
    c.caption_many(["a.jpg", "b.jpg"])        # one dict each, as `captioner caption --json` prints
    captioner.evaluate("work/flickr8k", "work/features.safetensors", split="test")

Errors raise CaptionerError with the command line's message.
"""

from ._captioner import Captioner, CaptionerError, evaluate

__all__ = ["Captioner", "CaptionerError", "evaluate"]
