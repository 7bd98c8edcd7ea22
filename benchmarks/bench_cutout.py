"""Cut-out quality and speed on the hard set of studio shots (:mod:`tests.hardset`).

Run with ``python benchmarks/bench_cutout.py [--u2netp PATH] [--repeats N] [--verified-only]``. Prints one table
per backend: per case, IoU against the known mask, holes / halos (see
:func:`tests.hardset.holes`), and the median seconds of ``cut_out``. Backends: the classical
``grabcut``; the AI ``u2net`` (plain onnxruntime) and ``rembg`` backends with the u2netp
model when they are registered and the model file is found (``--u2netp``, else
``<models_dir>/rembg/u2netp.onnx``); a backend that is not available is skipped with a note.

A last table follows the pipeline's verified path (:func:`placewright.cutout.verify.verified_cut_out`
with u2netp as the ``auto`` choice and GrabCut as the second opinion): per case the backend whose
cut-out was kept, its IoU and holes / halos, and the quality check's status and detail. The gate is
sound on the hard set when every case shows either a clean cut-out or a failed check.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from placewright.cutout import CUTTERS, CutoutResult, cut_out  # noqa: E402
from placewright.cutout.verify import verified_cut_out  # noqa: E402
from placewright.settings import CutoutSettings, ModelSpec, QualitySettings  # noqa: E402
from tests.hardset import halos, hard_cases, holes, iou  # noqa: E402


def _found(result: CutoutResult, shape: tuple[int, int]) -> np.ndarray:
    full = np.zeros(shape, np.uint8)
    b = result.box
    full[b.y0 : b.y1, b.x0 : b.x1] = result.rgba[..., 3]
    return full >= 128


def _backends(u2netp: Path | None) -> list[tuple[str, CutoutSettings | None, str]]:
    """(label, settings or None when skipped, note) per backend to measure."""
    rows: list[tuple[str, CutoutSettings | None, str]] = [("grabcut", CutoutSettings(backend="grabcut"), "")]
    model = u2netp or Path(CutoutSettings().rembg.models_dir or ".").expanduser() / "rembg" / "u2netp.onnx"
    for name, field in (("u2net", "u2net"), ("rembg", "rembg")):
        label = f"{name} (u2netp)"
        if name not in CUTTERS.names():
            rows.append((label, None, f"no {name!r} backend registered"))
            continue
        if not model.is_file():
            rows.append((label, None, f"no u2netp model at {model} (placewright models pull u2netp, or --u2netp)"))
            continue
        settings = CutoutSettings(backend=name, **{field: ModelSpec(model=str(model.resolve()))})
        reason = CUTTERS.get(name).unavailable_reason(settings)
        rows.append((label, None if reason else settings, reason or ""))
    return rows


def _models_dir(model: Path) -> Path | None:
    """The models_dir holding ``model`` as ``<models_dir>/rembg/<name>.onnx``; None when it is laid out otherwise."""
    model = model.resolve()
    return model.parents[1] if model.parent.name == "rembg" and model.is_file() else None


def _verified_table(cases: list, u2netp: Path | None) -> None:
    """The verified path per case: backend kept, IoU, holes / halos, check status and detail."""
    print("\n## verified path (auto: u2net (u2netp), checked against grabcut)")
    model = u2netp or Path(CutoutSettings().u2net.models_dir or ".").expanduser() / "rembg" / "u2netp.onnx"
    models_dir = _models_dir(model)
    if "u2net" not in CUTTERS.names() or models_dir is None:
        print(f"skipped: no u2net backend, or no u2netp model laid out as <models_dir>/rembg/u2netp.onnx ({model})")
        return
    settings = CutoutSettings(u2net=ModelSpec(model="u2netp", models_dir=models_dir))
    quality = QualitySettings()
    print(f"{'case':24s} {'backend':8s} {'IoU':>7s} {'holes':>6s} {'halos':>6s} {'seconds':>8s}  check")
    unflagged = []
    for case in cases:
        started = time.perf_counter()
        verified = verified_cut_out(case.rgb, options=settings, quality=quality)
        took = time.perf_counter() - started
        found = _found(verified.result, case.mask.shape)
        hole_count, halo_count = len(holes(found, case.mask)), len(halos(found, case.mask))
        check = verified.check
        if (hole_count or halo_count) and not check.failed:
            unflagged.append(case.name)
        print(
            f"{case.name:24s} {verified.result.record.backend:8s} {iou(found, case.mask):7.4f} {hole_count:6d} "
            f"{halo_count:6d} {took:8.3f}  {check.status}: {check.detail}"
        )
    print(f"defects the gate does not flag: {', '.join(unflagged) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--u2netp", type=Path, default=None, help="the u2netp.onnx file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--verified-only", action="store_true", help="only the verified path's table")
    args = parser.parse_args()
    cases = hard_cases()
    for label, settings, note in [] if args.verified_only else _backends(args.u2netp):
        print(f"\n## {label}")
        if settings is None:
            print(f"skipped: {note}")
            continue
        cut_out(cases[0].rgb, options=settings)  # load models / warm up
        print(f"{'case':24s} {'IoU':>7s} {'holes':>6s} {'halos':>6s} {'seconds':>8s}")
        ious, times = [], []
        for case in cases:
            seconds = []
            for _ in range(max(1, args.repeats)):
                started = time.perf_counter()
                result = cut_out(case.rgb, options=settings)
                seconds.append(time.perf_counter() - started)
            if result.record.backend != settings.backend:
                print(f"{case.name:24s} fell back to {result.record.backend}")
                continue
            found = _found(result, case.mask.shape)
            score, took = iou(found, case.mask), statistics.median(seconds)
            ious.append(score)
            times.append(took)
            print(
                f"{case.name:24s} {score:7.4f} {len(holes(found, case.mask)):6d} "
                f"{len(halos(found, case.mask)):6d} {took:8.3f}"
            )
        if ious:
            print(f"{'mean':24s} {statistics.mean(ious):7.4f} {'':6s} {'':6s} {statistics.mean(times):8.3f}")
    _verified_table(cases, args.u2netp)


if __name__ == "__main__":
    main()
