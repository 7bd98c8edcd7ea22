"""What the quality gate costs, against the classical pipeline it checks (the issue's target: at most 15%).

Run with ``python benchmarks/bench_quality.py [--repeats N] [--models-dir DIR]``. The example product,
1024x1024 output, 1 and 8 variants; the classical pipeline as the flow runs it (product stages once,
variant stages per variant), and the gate:

- per product: the cut-out's second opinion and comparison (:mod:`placewright.cutout.verify`) and the
  source label's OCR (read once per product);
- per variant: every check of :func:`placewright.quality.check_variant` (OCR of the product's crop
  for the label check).

With u2netp and PP-OCR (taken from ``--models-dir``, default ``.test-models``, else pulled) the
cut-out runs on u2netp (GrabCut is the second opinion) and OCR is on; the other rows show the gate
with no models (GrabCut, no second opinion, no label check).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pipeline import PRODUCT, PROMPTS, SIZE, make_variant  # noqa: E402  (the same product, scenes, stages)
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from placewright.analyze import analyze  # noqa: E402
from placewright.cutout import cut_out  # noqa: E402
from placewright.cutout.verify import verified_cut_out  # noqa: E402
from placewright.enhance import enhance  # noqa: E402
from placewright.imageio import load_image  # noqa: E402
from placewright.models.pull import get, pull  # noqa: E402
from placewright.quality import _PLACED_LABELS, _SOURCE_LABELS, check_variant, source_label  # noqa: E402
from placewright.settings import Settings  # noqa: E402

TARGET = 0.15
console = Console(width=150)


def _median(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def measure(settings: Settings, variants: int, repeats: int) -> dict[str, float]:
    """Seconds of the pipeline and of the gate for ``variants`` variants (medians of ``repeats``)."""
    loaded = load_image(PRODUCT, limits=settings.limits)
    enhanced, t_enhance = _median(lambda: enhance(loaded.pixels, options=settings.enhance), repeats)
    cut, t_cut = _median(lambda: cut_out(enhanced.image, options=settings.cutout), repeats)
    verified, t_verified = _median(
        lambda: verified_cut_out(enhanced.image, options=settings.cutout, quality=settings.quality), repeats
    )
    analysis, t_analyze = _median(
        lambda: analyze(cut.rgba, filename=PRODUCT.name, prompts=PROMPTS, options=settings.analyze), repeats
    )

    _PLACED_LABELS.clear()

    def read_source() -> object:
        _SOURCE_LABELS.clear()
        return source_label(loaded.pixels, "bench", settings.enhance.ocr)

    _, t_source_label = _median(read_source, repeats)
    pipeline_variant, gate_variant = 0.0, 0.0
    for index in range(variants):
        times, made = make_variant(settings, index, cut, analysis)  # the flow's variant stages, timed
        pipeline_variant += sum(times.values())
        scene, found, placed, final = made["scene"], made["locate"], made["composite"], made["harmonize"]

        arguments = dict(
            source=loaded.pixels,
            source_sha256="bench",
            enhance_scale=enhanced.image.shape[1] / loaded.pixels.shape[1],
            cutout_box=verified.result.box,
            cutout_sha256="bench-cutout",
            cutout_check=verified.check,
            size_fraction=analysis.analysis.size_fraction,
            scene=scene.image,
            surface=found.surface,
            composite=placed.image,
            product_alpha=placed.product_alpha,
            product_box=placed.product_box,
            final=final.image,
            options=settings.quality,
            ocr=settings.enhance.ocr,
        )
        # Once per variant, in order: a variant of an already read size reuses its label reading, as in a run.
        _, seconds = _median(lambda a=arguments: check_variant(**a), 1)
        gate_variant += seconds
    product = t_enhance + t_cut + t_analyze
    pipeline = product + pipeline_variant
    gate_product = (t_verified - t_cut) + t_source_label
    return {
        "cutout": str(verified.result.record.backend),
        "pipeline": pipeline,
        "gate_product": gate_product,
        "gate_variants": gate_variant,
        "gate": gate_product + gate_variant,
        "second_opinion": t_verified - t_cut,
        "source_label": t_source_label,
    }


def models_dir(given: str | None) -> Path:
    """A models_dir with just u2netp and PP-OCR (an upscaler there would make enhance a different pipeline)."""
    source = Path(given) if given else ROOT / ".test-models"
    folder = Path(tempfile.mkdtemp(prefix="placewright-bench-models-"))
    for name in ("u2netp", "pp-ocrv4"):
        model = get(name)
        if all((source / spec.dest).is_file() for spec in model.files):
            for spec in model.files:
                (folder / spec.dest).parent.mkdir(parents=True, exist_ok=True)
                (folder / spec.dest).symlink_to((source / spec.dest).resolve())
        else:
            pull(name, folder, log=lambda line: None)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models-dir", default=None)
    args = parser.parse_args()
    os.environ.pop("PLACEWRIGHT_MODELS_DIR", None)
    with_models = Settings(models_dir=models_dir(args.models_dir))
    without = Settings(models_dir=Path(tempfile.mkdtemp(prefix="placewright-no-models-")))
    table = Table(title=f"Quality gate cost, example product, {SIZE.width}x{SIZE.height}, median of {args.repeats}")
    for column in (
        "models",
        "variants",
        "cut-out",
        "pipeline s",
        "gate per product s (2nd opinion + source OCR)",
        "gate per variant s",
        "gate / pipeline",
        f"target <= {TARGET:.0%}",
    ):
        table.add_column(column, justify="right")
    for label, settings in (("u2netp + PP-OCR", with_models), ("none", without)):
        for variants in (1, 8):
            r = measure(settings, variants, args.repeats)
            r["second_opinion"] = max(r["second_opinion"], 0.0)  # none made: only timing noise
            r["gate_product"] = r["second_opinion"] + r["source_label"]
            r["gate"] = r["gate_product"] + r["gate_variants"]
            ratio = r["gate"] / r["pipeline"]
            table.add_row(
                label,
                str(variants),
                r["cutout"],
                f"{r['pipeline']:.2f}",
                f"{r['gate_product']:.2f} ({r['second_opinion']:.2f} + {r['source_label']:.2f})",
                f"{r['gate_variants'] / variants:.3f}",
                f"{ratio:.1%}",
                "yes" if ratio <= TARGET else "no",
            )
    console.print(table)


if __name__ == "__main__":
    main()
