"""The cut-out stage: the product separated from its backdrop, cropped tight.

An RGBA input that already is a cut-out (a clear share of transparent pixels) is kept
as it is; anything else goes through the registered backends (classical: "grabcut").
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placewright.backends import Backend, Registry, StageRecord, run_chain
from placewright.errors import InvalidInput
from placewright.settings import CutoutSettings
from placewright.types import Box, check_image

# rembg first: it runs only when a model of its own choosing is there (its default, the full
# 176 MB u2net, is never pulled here), and is then the better model. u2net next: the pulled
# u2netp through plain onnxruntime (light install, no rembg import). SAM, prompted with a box,
# is no salient-object model: after them. GrabCut ends every chain.
CUTTERS: Registry[Cutter] = Registry("cutout", preference=("rembg", "u2net", "sam", "grabcut"))


class Cutter(Backend[CutoutSettings]):
    """Base of the cut-out backends."""

    registry: ClassVar[Registry[Cutter]] = CUTTERS

    @abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Cut the product out of ``image`` ((H, W, 3) uint8 RGB); returns (H, W, 4) uint8 RGBA, uncropped."""


# An alpha value at or below this counts as transparent (8-bit encoders leave crumbs).
TRANSPARENT_LEVEL = 8
# An alpha channel is a real cut-out when at least this share of pixels is transparent;
# fewer are stray pixels of an otherwise opaque photo, which is cut out as usual.
MEANINGFUL_TRANSPARENT_SHARE = 0.02
# Alpha at or above this counts as product when measuring how much product there is.
VISIBLE_LEVEL = 128
EXISTING_ALPHA = "existing-alpha"


@dataclass(frozen=True)
class CutoutResult:
    """The cut-out product.

    Attributes:
        rgba: (h, w, 4) uint8, the product cropped tight to its alpha (alpha > 0), with
            backdrop colour fringes removed from its edge.
        box: the crop box in the input image's pixel coordinates.
        record: which backend produced it.
    """

    rgba: np.ndarray
    box: Box
    record: StageRecord


def _validate(image: np.ndarray) -> None:
    check_image(image, stage="cutout", what="product image", min_side=2)


def has_meaningful_alpha(image: np.ndarray) -> bool:
    """Whether ``image`` (H, W, 3|4) uint8 carries a real cut-out alpha channel."""
    if image.ndim != 3 or image.shape[2] != 4:
        return False
    return float(np.mean(image[..., 3] <= TRANSPARENT_LEVEL)) >= MEANINGFUL_TRANSPARENT_SHARE


def _crop(rgba: np.ndarray, record: StageRecord) -> CutoutResult:
    box = Box.from_mask(rgba[..., 3])
    if box is None:  # callers check the visible share first; kept for safety
        raise InvalidInput("could not find a product in the image: the cut-out is empty", stage="cutout")
    crop = np.ascontiguousarray(rgba[box.y0 : box.y1, box.x0 : box.x1])
    return CutoutResult(rgba=crop, box=box, record=record)


def cut_out(image: np.ndarray, *, options: CutoutSettings, raise_transient: bool = False) -> CutoutResult:
    """Separate the product from its backdrop and crop it tight.

    Args:
        image: (H, W, 3) uint8 RGB or (H, W, 4) uint8 RGBA product photo; not modified.
        options: the cut-out settings.
        raise_transient: re-raise transient backend errors (for orchestrator retries).

    Returns:
        A :class:`CutoutResult`. An RGBA input with a meaningful alpha keeps its alpha
        (soft edges and colours untouched) and is only cropped (backend "existing-alpha").

    Raises:
        InvalidInput: not an RGB/RGBA uint8 image, a (nearly) fully transparent one, or
            no product of at least ``options.min_product_fraction`` of the image found.
        StageFailed: every backend failed.
    """
    _validate(image)
    min_share = options.min_product_fraction
    if image.shape[2] == 4:
        alpha = image[..., 3]
        if not alpha.any():
            raise InvalidInput("the product image is fully transparent: nothing to place", stage="cutout")
        visible = float(np.mean(alpha >= VISIBLE_LEVEL))
        if visible < min_share:
            raise InvalidInput(
                f"the product image is almost fully transparent: only {visible:.2%} of it is visible "
                f"(at least {min_share:.2%} is needed)",
                stage="cutout",
            )
        if has_meaningful_alpha(image):
            started = time.perf_counter()
            result = _crop(image, StageRecord(backend=EXISTING_ALPHA, seconds=0.0))
            record = StageRecord(backend=EXISTING_ALPHA, seconds=time.perf_counter() - started)
            return CutoutResult(rgba=result.rgba, box=result.box, record=record)

    rgb = np.ascontiguousarray(image[..., :3])
    rgba, record = run_chain(
        "cutout",
        CUTTERS.chain(options.backend),
        lambda backend: backend(options)(rgb),
        options=options,
        raise_transient=raise_transient,
    )
    found = float(np.mean(rgba[..., 3] >= VISIBLE_LEVEL))
    if found < min_share:
        raise InvalidInput(
            f"could not find a product in the image: the cut-out covers {found:.2%} of it "
            f"(at least {min_share:.2%} is needed); use a photo of the product on a plain backdrop "
            "or a PNG with transparency",
            stage="cutout",
        )
    return _crop(rgba, record)


# The backends register themselves when defined (their order here does not matter: see CUTTERS).
from placewright.cutout import classical, rembg, sam, u2net_onnx  # noqa: E402,F401

__all__ = ["CUTTERS", "CutoutResult", "Cutter", "cut_out", "has_meaningful_alpha"]
