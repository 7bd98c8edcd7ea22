"""Publishing timings: a run of 1 and 8 variants at 1024x1024, to a local folder and to S3.

Run with ``python benchmarks/bench_publish.py [--repeats N]`` (needs the test extra for moto).
S3 is moto's server on 127.0.0.1: it measures the client side (encoding, hashing, requests),
not a real network. Prints one table: first publish, publishing the same run again (writes
nothing: compares ETags), and the bytes of a full image and of its preview.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from placewright.analyze import Analysis  # noqa: E402
from placewright.backends import StageRecord  # noqa: E402
from placewright.publish import FinishedVariant, publish_run  # noqa: E402
from placewright.request import Product, Variant  # noqa: E402
from placewright.settings import OutputSettings, StorageSettings  # noqa: E402
from placewright.storage import open_location  # noqa: E402
from placewright.types import Box, Surface  # noqa: E402

SIDE = 1024


def _photo_like(seed: int) -> np.ndarray:
    """A smooth gradient with texture: compresses like a photo, unlike flat colour or pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    base = np.stack([180 * y + 40, 120 + 60 * x, 200 - 100 * y * x], axis=2)
    texture = rng.normal(0, 6, (SIDE // 8, SIDE // 8, 3)).repeat(8, 0).repeat(8, 1)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def _run(n: int) -> tuple[dict, list[FinishedVariant]]:
    cutout = np.zeros((600, 300, 4), np.uint8)
    cutout[50:550, 50:250] = (30, 120, 60, 255)
    product = {
        "product": Product(source="bottle.png", sha256="0" * 64),
        "cutout": cutout,
        "analysis": Analysis(name="bottle", category="bottle", size_fraction=0.4, aspect=2.0),
    }
    variants = [
        FinishedVariant(
            variant=Variant(index=i, seed=i, prompt=f"scene {i}", background=None),
            image=_photo_like(i),
            product_box=Box(400, 300, 600, 800),
            surface=Surface(line_y=800, center_x=500, box=None, backend="band"),
            stages={"scene": StageRecord("p", 0.1)},
        )
        for i in range(n)
    ]
    return product, variants


def _publish(url: str, run: str, n: int, data) -> tuple[float, int]:
    product, variants = data
    started = time.perf_counter()
    published = publish_run(
        location=open_location(url, StorageSettings()),
        run_path=run,
        run_id=run,
        created_at="2026-11-22T00:00:00+00:00",
        **product,
        variants=variants,
        output=OutputSettings(),
    )
    return time.perf_counter() - started, len(published.written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tests.s3 import CREDENTIALS, MotoS3

    server = MotoS3().start()
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=server.endpoint)
    bucket = server.new_bucket("bench")
    table = Table(title=f"Publishing a run, {SIDE}x{SIDE} WebP q90 + 512 px preview (median of {args.repeats})")
    for column in (
        "store",
        "variants",
        "first publish s",
        "objects",
        "again s",
        "objects rewritten",
        "full KB",
        "preview KB",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="placewright-bench-publish-") as tmp:
        for store, url in (("local folder", tmp), ("S3 (moto, 127.0.0.1)", f"s3://{bucket}/bench")):
            for n in (1, 8):
                data = _run(n)
                firsts, agains, rewritten = [], [], 0
                for r in range(args.repeats):
                    seconds, objects = _publish(url, f"run-{n}-{r}", n, data)
                    firsts.append(seconds)
                    again, rewritten = _publish(url, f"run-{n}-{r}", n, data)
                    agains.append(again)
                loc = open_location(url, StorageSettings())
                full = loc.fs.size(loc.path(f"run-{n}-0/variant-00-scene-0.webp"))
                preview = loc.fs.size(loc.path(f"run-{n}-0/variant-00-scene-0.preview.webp"))
                table.add_row(
                    store,
                    str(n),
                    f"{statistics.median(firsts):.2f}",
                    str(objects),
                    f"{statistics.median(agains):.2f}",
                    str(rewritten),
                    f"{full / 1024:.0f}",
                    f"{preview / 1024:.0f}",
                )
    server.stop()
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
