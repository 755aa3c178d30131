from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Union

Photo = Union[str, "PathLike[str]", bytes, bytearray, Any]
"""A path, the bytes of a photo file, a PIL image, or an H x W x 3 uint8 numpy array."""

class CaptionerError(Exception):
    """A photo, model or file the captioner cannot use; the message says which and why."""

class Captioner:
    """An image captioner: the shipped model (or the one in `model`), its encoder, and its search."""

    def __init__(
        self,
        model: Optional[Union[str, "PathLike[str]"]] = None,
        *,
        weights: Optional[Union[str, "PathLike[str]"]] = None,
        beam: int = 3,
        length_penalty: float = 1.5,
        ground: bool = True,
    ) -> None: ...
    @property
    def name(self) -> str:
        """The model's name: its folder's, or "default" for the shipped one."""
    def caption(self, photo: Photo) -> Dict[str, Any]:
        """The caption of one photo, as the dict `captioner caption --json` prints ("caption",
        "tokens", "confidence", "claims", "score", "photo_gain", "familiarity", "classes", "named",
        "evidence", "image"). Raises CaptionerError with the reason."""
    def caption_many(
        self, paths: Sequence[Union[str, "PathLike[str]"]], batch: int = 64
    ) -> List[Dict[str, Any]]:
        """The captions of many photo files, in order, `batch` at a time side by side: one dict
        each, or {"image", "error"} for a photo that could not be captioned."""

def evaluate(
    work: Union[str, "PathLike[str]"],
    features: Union[str, "PathLike[str]"],
    *,
    model: Optional[Union[str, "PathLike[str]"]] = None,
    split: str = "test",
    beam: int = 3,
    length_penalty: float = 1.5,
    ground: bool = False,
    limit: Optional[int] = None,
) -> Dict[str, Any]:
    """Scores a model on a split as `captioner evaluate` does: {"images": n, "greedy": {...},
    "beam<K>": {...}}, each run's scores as fractions (METEOR None without Java)."""
