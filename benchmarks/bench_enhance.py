"""The spandrel enhance backend on the real Real-ESRGAN weights: speed, and seams of tiling.

Run with ``python benchmarks/bench_enhance.py [--sizes 120x160,240x320] [--seam-size 180x240]``
(needs the ai extra; the weights are pulled once with ``placewright models pull``'s code into
``$PLACEWRIGHT_TEST_MODELS`` or ``.test-models/``). Inputs are the example bottle photo shrunk
to W x H. Prints two tables:

- **speed**: seconds per image for x4plus (RRDBNet) and the compact model (SRVGGNetCompact),
  untiled and with the default tiling, and the largest difference between the two (0-255);
- **seams**: the largest difference from the untiled output (0-255, at the model's x4 size)
  for hard centre-cropped tiles with 16 and 32 px of context (the old tiling, as Real-ESRGAN's
  ``--tile_pad``) and for this backend's feathered tiles, at 64 px tiles and at the defaults.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from placewright.enhance.spandrel import _load, upscale  # noqa: E402
from placewright.models.pull import pull  # noqa: E402
from placewright.settings import EnhanceSettings, ModelSpec  # noqa: E402

MODELS = {"x4plus": ("realesrgan-x4plus", "realesrgan-x4plus.safetensors"),
          "compact": ("realesr-animevideov3", "realesr-animevideov3-x4.safetensors")}  # fmt: skip
DEFAULTS = EnhanceSettings()


def centre_crop_upscale(model: object, rgb: np.ndarray, tile_size: int, overlap: int) -> np.ndarray:
    """The old tiling: each tile fed with ``overlap`` px of context, then hard-cropped to its core."""
    import torch

    s, (h, w) = model.scale, rgb.shape[:2]  # type: ignore[attr-defined]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    out = np.empty((h * s, w * s, 3), np.float32)
    ys = np.linspace(0, h, -(-h // tile_size) + 1).round().astype(int)
    xs = np.linspace(0, w, -(-w // tile_size) + 1).round().astype(int)
    with torch.inference_mode():
        for y0, y1 in itertools.pairwise(ys):
            for x0, x1 in itertools.pairwise(xs):
                py0, px0, py1, px1 = (
                    max(0, y0 - overlap),
                    max(0, x0 - overlap),
                    min(h, y1 + overlap),
                    min(w, x1 + overlap),
                )
                res = model(x[..., py0:py1, px0:px1])[0].permute(1, 2, 0).numpy()  # type: ignore[operator]
                out[y0 * s : y1 * s, x0 * s : x1 * s] = res[
                    (y0 - py0) * s : (y1 - py0) * s, (x0 - px0) * s : (x1 - px0) * s
                ]
    return out


def levels(a: np.ndarray, b: np.ndarray) -> int:
    """The largest difference between two 0-1 images once rounded to 0-255."""
    to8 = lambda v: np.clip(np.rint(v * 255.0), 0, 255)  # noqa: E731
    return int(np.abs(to8(a) - to8(b)).max())


def timed(fn, *args) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def photo(width: int, height: int) -> np.ndarray:
    """The example bottle at ``width`` x ``height``, RGB float32 0-1."""
    image = cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "olive-oil-bottle.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="120x160,240x320", help="input sizes (WxH) for the speed table")
    parser.add_argument("--seam-size", default="180x240", help="input size (WxH) for the seam table")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(os.environ.get("PLACEWRIGHT_TEST_MODELS", ROOT / ".test-models")).resolve()
    models = {}
    for label, (name, filename) in MODELS.items():
        pull(name, folder, log=lambda line: None)
        started = time.perf_counter()
        models[label] = _load(folder / filename, ModelSpec(model=filename, device="cpu"), "cpu")
        print(f"{label}: loaded {filename} in {time.perf_counter() - started:.2f} s")
    tile, overlap = DEFAULTS.tile_size, DEFAULTS.tile_overlap
    console = Console()

    speed = Table(title=f"Speed on the CPU ({torch.get_num_threads()} threads); default tiling {tile}/{overlap}")
    for column in ("model", "input", "untiled s", "tiled s", "tiled vs untiled (0-255)"):
        speed.add_column(column, justify="right")
    for size in args.sizes.split(","):
        rgb = photo(*map(int, size.split("x")))
        for label, model in models.items():
            whole, t_whole = timed(upscale, model, rgb, 0, 0)
            tiled, t_tiled = timed(upscale, model, rgb, tile, overlap)
            speed.add_row(label, size, f"{t_whole:.2f}", f"{t_tiled:.2f}", str(levels(tiled, whole)))
    console.print(speed)

    rgb = photo(*map(int, args.seam_size.split("x")))
    seams = Table(title=f"Seams: largest difference from untiled (0-255, x4 output), input {args.seam_size}")
    for column in ("model", "tile", "crop 16 px", "crop 32 px", f"feathered {overlap} px", "feathered s"):
        seams.add_column(column, justify="right")
    for label, model in models.items():
        whole = upscale(model, rgb, 0, 0)
        for tile_size in (64, tile):
            crops = [levels(centre_crop_upscale(model, rgb, tile_size, pad), whole) for pad in (16, 32)]
            feathered, seconds = timed(upscale, model, rgb, tile_size, overlap)
            seams.add_row(label, str(tile_size), *map(str, crops), str(levels(feathered, whole)), f"{seconds:.1f}")
    console.print(seams)


if __name__ == "__main__":
    main()
