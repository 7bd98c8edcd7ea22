"""GroundingDINO surface finding: a text-prompted box around the tabletop.

The surface phrase becomes the query, lower-case and ending with ".". A bare "table" box
tends to cover the whole piece of furniture, legs included, so the words "table" and
"counter" are replaced by "tabletop" and "countertop" (:data:`QUERY_WORDS`): the part a
product stands on. (The seed design's "flat surface of the tabletop without legs" is not
used: GroundingDINO grounds words, it has no negation, and "legs" pulls boxes to the legs.)

Each detection above ``box_threshold`` with a query word above ``text_threshold`` is a
candidate; :func:`pick_surface` ranks them by score, area, flatness and position and turns
the best into the surface box. The base line follows the classical rule: ``line_offset`` of
the way from the surface's top (back) edge to its bottom (front) edge. No candidate: a
:class:`NoSurfaceDetected` error, so the classical locator runs and the reason is recorded.

Defaults: ``box_threshold`` 0.25 and ``text_threshold`` 0.2, below GroundingDINO's demo
values (0.35 / 0.25) because surfaces are large, featureless regions that score lower than
objects, and far above the seed's 0.05, which accepts noise. A miss only costs a fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from placewright.errors import PlacewrightError, TransientBackendError
from placewright.locate import Locator
from placewright.models import MODELS, find_pretrained, resolve_device, resolve_dtype
from placewright.settings import LocateSettings, ModelSpec
from placewright.types import Box, Surface

NAME = "grounding-dino"
# Words of the surface phrase replaced in the query: the flat top, not the whole furniture.
QUERY_WORDS = {"table": "tabletop", "tables": "tabletop", "counter": "countertop", "counters": "countertop"}
# A box covering this fraction of the frame gets the full area weight; a small one down to half.
AREA_FULL = 0.2
# Weight of a box whose centre lies in the upper half (a shelf, a far table) against the lower half.
UPPER_WEIGHT = 0.6
# Weight of a box less flat than ``min_flatness`` (likely the whole table, legs included).
TALL_WEIGHT = 0.5


class NoSurfaceDetected(PlacewrightError):
    """GroundingDINO found no box good enough (permanent: the next locator runs)."""


def surface_query(phrase: str) -> str:
    """The detector prompt for ``phrase``: lower-case words, table/counter -> tabletop/countertop, ending with "."."""
    words = phrase.lower().replace(".", " ").split() or ["table"]
    return " ".join(QUERY_WORDS.get(w, w) for w in words) + "."


def pick_surface(
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float],
    *,
    width: int,
    height: int,
    box_threshold: float,
    min_flatness: float,
) -> tuple[int, Box] | None:
    """The best surface among detections, or None.

    Boxes are clipped to the frame; those scoring ``<= box_threshold`` or under a pixel wide
    or high are dropped. Rank = score x area weight (0.5 + 0.5 min(1, area / AREA_FULL)) x
    UPPER_WEIGHT when the box centre is in the upper half x TALL_WEIGHT when width/height <
    ``min_flatness``. The winner's surface box is its top part at most ``width / min_flatness``
    high (a tall box is a table with its legs: its top is the tabletop).

    Args:
        boxes: N boxes (x0, y0, x1, y1) in float pixels.
        scores: N detection scores in 0..1.
        width, height: the frame size in pixels.
        box_threshold: scores must be above this.
        min_flatness: width/height below which a box counts as tall.

    Returns:
        (index of the chosen detection, surface Box in integer pixels inside the frame), or None.
    """
    best: tuple[float, int, Box] | None = None
    for index, (box, score) in enumerate(zip(boxes, scores, strict=True)):
        x0, y0 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
        x1, y1 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
        w, h = x1 - x0, y1 - y0
        if not score > box_threshold or w < 1 or h < 1:
            continue
        flat = w / h >= min_flatness
        rank = float(score) * (0.5 + 0.5 * min(1.0, w * h / (width * height) / AREA_FULL))
        rank *= 1.0 if (y0 + y1) / 2 >= height / 2 else UPPER_WEIGHT
        rank *= 1.0 if flat else TALL_WEIGHT
        if best is None or rank > best[0]:
            bottom = y1 if flat else y0 + w / min_flatness
            top = min(math.floor(y0), height - 1)
            surface = Box(math.floor(x0), top, max(math.ceil(x1), math.floor(x0) + 1), max(round(bottom), top + 1))
            best = (rank, index, surface)
    return None if best is None else (best[1], best[2])


def _load(path: str, device: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

    model = GroundingDinoForObjectDetection.from_pretrained(path, local_files_only=True, dtype=dtype)
    processor = GroundingDinoProcessor.from_pretrained(path, local_files_only=True)
    return model.to(device).eval(), processor


class GroundingDinoLocator(Locator):
    """Text-prompted surface detection with GroundingDINO (transformers)."""

    name = NAME
    version = "1"
    requires = ("torch", "transformers")

    @classmethod
    def weights(cls, options: LocateSettings) -> ModelSpec:
        return options.detector

    def __call__(self, scene: np.ndarray, *, phrase: str) -> Surface:
        """The surface of ``scene`` ((H, W, 3|4) uint8, not modified) that ``phrase`` names.

        Raises:
            NoSurfaceDetected: when no box passes the thresholds.
            TransientBackendError: on CUDA out-of-memory.
        """
        import torch
        from PIL import Image

        spec, opts = self.options.detector, self.options
        path = str(find_pretrained(spec))
        device = resolve_device(spec.device)
        dtype = torch.float32 if device == "cpu" else resolve_dtype(spec.dtype, device)  # half precision: GPU only
        model, processor = MODELS.get((NAME, path, device, str(dtype)), lambda: _load(path, device, dtype))

        height, width = scene.shape[:2]
        query = surface_query(phrase)
        image = Image.fromarray(np.ascontiguousarray(scene[..., :3]))
        inputs = processor(images=image, text=query, return_tensors="pt")
        inputs = {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}
        try:
            with torch.no_grad():
                outputs = model(**inputs)
        except torch.cuda.OutOfMemoryError as exc:
            raise TransientBackendError(f"{NAME}: CUDA out of memory ({exc})", stage="locate", backend=NAME) from exc
        outputs.logits, outputs.pred_boxes = outputs.logits.float(), outputs.pred_boxes.float()
        found = processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=opts.box_threshold,
            text_threshold=opts.text_threshold,
            target_sizes=[(height, width)],
        )[0]
        special = set(processor.tokenizer.all_special_tokens)
        worded = [i for i, label in enumerate(found["text_labels"]) if set(label.replace(".", " ").split()) - special]
        boxes, scores = found["boxes"][worded].tolist(), found["scores"][worded].tolist()
        picked = pick_surface(
            boxes, scores, width=width, height=height, box_threshold=opts.box_threshold, min_flatness=opts.min_flatness
        )
        if picked is None:
            best = float(torch.sigmoid(outputs.logits).max())
            raise NoSurfaceDetected(
                f"no surface above thresholds: no {query!r} box scored above box_threshold {opts.box_threshold} "
                f"with a query word above text_threshold {opts.text_threshold} (best score {best:.3f})",
                stage="locate",
                backend=NAME,
            )
        index, box = picked
        line_y = min(height - 1, round(box.y0 + opts.line_offset * (box.y1 - box.y0)))
        return Surface(
            line_y=int(line_y),
            center_x=min(width - 1, round(box.center_x)),
            box=box,
            backend=NAME,
            confidence=round(float(scores[index]), 3),
        )
