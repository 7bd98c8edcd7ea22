"""Pipeline timings on this machine: per stage, end to end, and the CLI's wall time.

Run with ``make bench`` (or ``python benchmarks/bench_pipeline.py [--repeats N] [--skip-cli]``).
Prints four tables:

1. per-stage times of the classical core for one variant at 1024x1024 (median of N runs);
2. end-to-end core pipeline time for 1 and 8 variants (product stages once, variant stages
   in a thread pool, as the flow runs them);
3. the Prefect flow for 1 and 8 variants against an already running server: computed, then cached;
4. the CLI's wall time from command to finished run folder, split into phases, with its own
   private Prefect server (first run with a new PREFECT_HOME, then a warm one) and against an
   already running server (PREFECT_API_URL set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from placewright.analyze import analyze  # noqa: E402
from placewright.composite import composite  # noqa: E402
from placewright.cutout import cut_out  # noqa: E402
from placewright.enhance import enhance  # noqa: E402
from placewright.harmonize import harmonize  # noqa: E402
from placewright.imageio import encode_image, load_image  # noqa: E402
from placewright.locate import locate  # noqa: E402
from placewright.manifest import Manifest  # noqa: E402
from placewright.scene import generate_scene  # noqa: E402
from placewright.settings import Settings  # noqa: E402
from placewright.stages import stages  # noqa: E402
from placewright.types import Size  # noqa: E402

PRODUCT = ROOT / "examples" / "olive-oil-bottle.jpg"
PROMPTS = [
    "sunlit marble kitchen counter",
    "rustic wooden table, warm light",
    "concrete shelf, cool daylight",
    "pastel pink studio",
    "dark night bar counter",
    "beach sand at sunset",
    "white minimal studio",
    "christmas table, green and red",
]
SIZE = Size(1024, 1024)
console = Console(width=150)


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def product_stages(settings: Settings) -> tuple[dict[str, float], object, object]:
    times: dict[str, float] = {}
    loaded, times["load"] = _timed(lambda: load_image(PRODUCT, limits=settings.limits))
    enhanced, times["enhance"] = _timed(lambda: enhance(loaded.pixels, options=settings.enhance))
    cut, times["cut out"] = _timed(lambda: cut_out(enhanced.image, options=settings.cutout))
    analysis, times["analyze"] = _timed(
        lambda: analyze(cut.rgba, filename=PRODUCT.name, prompts=PROMPTS, options=settings.analyze)
    )
    return times, cut, analysis


def make_variant(settings: Settings, index: int, cut: Any, analysis: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """Variant ``index``'s stages on the classical core: each stage's seconds, and what each made."""
    times: dict[str, float] = {}
    scene, times["scene"] = _timed(
        lambda: generate_scene(
            PROMPTS[index % len(PROMPTS)], size=SIZE, seed=index, surface=settings.surface, options=settings.scene
        )
    )
    located, times["locate"] = _timed(
        lambda: locate(scene.image, phrase=settings.surface, known=scene.surface, options=settings.locate)
    )
    placed, times["composite"] = _timed(
        lambda: composite(
            scene.image,
            cut.rgba,
            surface=located.surface,
            analysis=analysis.analysis,
            surface_phrase=settings.surface,
            options=settings.composite,
        )
    )
    final, times["harmonize"] = _timed(
        lambda: harmonize(placed.image, placed.product_alpha, seed=index, prompt=None, options=settings.harmonize)
    )
    return times, {"scene": scene, "locate": located, "composite": placed, "harmonize": final}


def variant_stages(settings: Settings, index: int, cut: Any, analysis: Any) -> dict[str, float]:
    times, made = make_variant(settings, index, cut, analysis)
    final = made["harmonize"]
    _, times["encode webp"] = _timed(lambda: encode_image(final.image, "webp", quality=settings.output.quality))
    return times


def core_pipeline(settings: Settings, variants: int) -> tuple[dict[str, float], float]:
    """Product stages once, then the variants in a 4-thread pool (as the flow does)."""
    started = time.perf_counter()
    times, cut, analysis = product_stages(settings)
    with ThreadPoolExecutor(max_workers=4) as pool:
        per_variant = list(pool.map(lambda i: variant_stages(settings, i, cut, analysis), range(variants)))
    total = time.perf_counter() - started
    for stage in per_variant[0]:
        times[stage] = statistics.mean(v[stage] for v in per_variant)
    return times, total


def table_stages(settings: Settings, repeats: int) -> float:
    runs = [core_pipeline(settings, 1) for _ in range(repeats)]
    table = Table(title=f"1. Classical core, one variant at {SIZE} (median of {repeats})")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for stage in runs[0][0]:
        table.add_row(stage, f"{statistics.median(r[0][stage] for r in runs) * 1000:.0f}")
    total = statistics.median(r[1] for r in runs)
    table.add_row("[bold]pipeline total", f"[bold]{total * 1000:.0f}")
    console.print(table)
    return total


def table_end_to_end(settings: Settings, repeats: int) -> None:
    table = Table(title=f"2. Classical core end to end at {SIZE} (median of {repeats})")
    for column in ("variants", "total s", "s per variant"):
        table.add_column(column, justify="right")
    for n in (1, 8):
        total = statistics.median(core_pipeline(settings, n)[1] for _ in range(repeats))
        table.add_row(str(n), f"{total:.2f}", f"{total / n:.2f}")
    console.print(table)


def table_flow(tmp: Path) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.local_api import LocalApi

    api = LocalApi().start()  # stopped at exit, after Prefect has flushed its logs to it
    api.wait_ready()
    from flows.place_product import place_product
    from placewright.request import RunRequest

    def run(n: int, refresh: bool = False) -> tuple[Manifest, float]:
        request = RunRequest(product=str(PRODUCT), prompts=PROMPTS[:n], size=SIZE, out=str(tmp / f"flow-{n}"))
        return _timed(lambda: place_product(request, refresh=refresh))  # type: ignore[return-value]

    table = Table(title=f"3. Prefect flow at {SIZE}, server already running")
    for column in ("variants", "computed s", "cached s", "sum of stage seconds"):
        table.add_column(column, justify="right")
    product_stages = {s.name for s in stages("product")}
    variant_stages = {s.name for s in stages("variant")}
    with temporary_settings({PREFECT_API_URL: api.url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        _, first = run(1, refresh=True)
        for n in (1, 8):
            manifest, computed = run(n, refresh=True)
            _, cached = run(n)
            per_variant = sum(r.seconds for v in manifest.variants for k, r in v.stages.items() if k in variant_stages)
            stage_sum = per_variant + sum(manifest.variants[0].stages[k].seconds for k in product_stages)
            table.add_row(str(n), f"{computed:.2f}", f"{cached:.2f}", f"{stage_sum:.2f}")
    table.caption = f"first flow run in a new process (1 variant, computed): {first:.2f} s"
    console.print(table)


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "placewright.cli", "run", *args], capture_output=True, text=True, env=env, cwd=cwd
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"CLI failed: {result.stderr}")
    return wall, json.loads(result.stderr.strip().splitlines()[-1])["cli_timings"]


def table_cli(tmp: Path) -> None:
    from flows.local_api import LocalApi

    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    base.update(PYTHONPATH=str(ROOT), PLACEWRIGHT_CLI_TIMINGS="1", PLACEWRIGHT_CACHE_DIR=str(tmp / "cache"))
    args = [str(PRODUCT), "-p", PROMPTS[0], "-p", PROMPTS[1], "--out", str(tmp / "cli-out")]
    rows = []
    fresh_home = {**base, "PREFECT_HOME": str(tmp / "home-fresh")}
    rows.append(("new PREFECT_HOME, computed", *_cli([*args, "--refresh"], fresh_home, tmp)))
    rows.append(("warm PREFECT_HOME, computed", *_cli([*args, "--refresh"], fresh_home, tmp)))
    rows.append(("warm PREFECT_HOME, cached", *_cli(args, fresh_home, tmp)))
    api = LocalApi().start()
    api.wait_ready()
    with_server = {**fresh_home, "PREFECT_API_URL": api.url}
    rows.append(("running server, computed", *_cli([*args, "--refresh"], with_server, tmp)))
    rows.append(("running server, cached", *_cli(args, with_server, tmp)))
    api.stop()

    table = Table(title="4. CLI wall time, 2 variants at 1024x1024 (seconds since the command started)")
    for column in ("case", "input checked", "Prefect imported", "server ready", "flow finished", "wall"):
        table.add_column(column, justify="right")
    for case, wall, phases in rows:
        table.add_row(
            case,
            f"{phases.get('input_checked', 0):.2f}",
            f"{phases.get('prefect_imported', 0):.2f}",
            f"{phases['server_ready']:.2f}" if "server_ready" in phases else "-",
            f"{phases.get('flow_finished', 0):.2f}",
            f"[bold]{wall:.2f}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process tables")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="placewright-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["PLACEWRIGHT_CACHE_DIR"] = str(tmp / "cache")
        os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect-home"))
        settings = Settings()
        console.print(f"[dim]{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, product {PRODUCT.name}")
        total = table_stages(settings, args.repeats)
        table_end_to_end(settings, args.repeats)
        if not args.skip_cli:
            table_flow(tmp)
            table_cli(tmp)
        verdict = "meets" if total < 2.0 else "MISSES"
        console.print(f"One variant, classical core: {total:.2f} s ({verdict} the 2 s target)")


if __name__ == "__main__":
    main()
