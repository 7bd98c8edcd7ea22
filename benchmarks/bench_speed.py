"""Issue 13's targets, measured in one run: one table of ratios, each with its threshold and verdict.

Run with ``make bench`` (or ``python benchmarks/bench_speed.py [--quick]``). At 1024x1024, on the olive-oil
example, against one background Prefect server (``placewright server start`` with a Prefect home of its own,
stopped at the end; the CLI runs find it through ``PREFECT_HOME``, as an operator's do):

1. the place-product flow, 8 variants, computed, vs the classical core doing the same work without Prefect
   (:func:`core_run`: what the stage tasks call, with the same arguments, then :func:`~placewright.publish.
   publish_run` to a local folder): at most 1.3x; for information, the CPU seconds of both (the flow's
   include the server's);
2. the same flow rerun identically (every stage cached, the run published from the earlier run's files):
   at most 0.15x the computed flow; for information, the same rerun without the flow run's heartbeat thread
   (as against ``placewright server start --crash-after 0``), and the rerun with only the stages' caches
   (``PLACEWRIGHT_REUSE_IDENTICAL_RUNS=false``);
3. ``placewright run`` with 2 prompts: computed, at most 2.0 s above the core's time for the same 2 variants;
   an identical second run, at most 2.0 s wall; for information, the core alone in a fresh process (its own
   imports and model loads) and the CLI's phases (``PLACEWRIGHT_CLI_TIMINGS``) in the caption;
4. the example campaign (``examples/campaign.yaml``), its second identical run: at most 0.2x the first (the
   flow in this process; the ``placewright campaign`` CLI's walls for information);
5. peak memory (``/usr/bin/time -v``, "Maximum resident set size") of a 16-variant ``placewright run`` vs a
   1-variant one: at most 1.5x.

Every measurement group gets fresh folders (intermediate cache, output), so a group is warmed only by its own
earlier runs. Each section, and each computed CLI run, starts once the server has finished recording the runs
before it (its CPU under 4% of a core for 0.5 s): right after the flow rows, the first CLI runs took ~0.3 s
longer while the server still wrote the flows' events. Rows 1-2 take the median of 5 repeats (``--quick``: 1),
interleaving core and flow so that a change in the machine's load hits both; the CLI and campaign rows take 4
(``--quick``: 1), the CLI's runs interleaved with the core's. In-process runs start after one untimed warm-up of
each (models loaded, Prefect's blocks registered), and the per-process label caches of the quality gate are
emptied before each computed run, so each reads its product's label once, as a CLI run does.
PREFECT_* and PLACEWRIGHT_* variables of the calling shell are ignored. ``--crash-after N`` starts the server
with that option (0: runs send no heartbeats). A section that fails shows as a failed row; the rest still run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "examples" / "campaign.yaml"
# 16 distinct prompts for the memory row: bench_pipeline's 8, then 8 more.
MORE_PROMPTS = [
    "slate kitchen island, overcast light",
    "oak shelf in a library, lamp light",
    "terrazzo counter, bright noon",
    "linen tablecloth on a patio, golden hour",
    "black granite bar top, neon glow",
    "birch picnic table in a forest",
    "stainless steel counter, studio strobes",
    "mosaic tile table, mediterranean sun",
]
RATIO_FLOW_COMPUTED = 1.3
RATIO_FLOW_CACHED = 0.15
CLI_COMPUTED_ABOVE_CORE_S = 2.0
CLI_CACHED_WALL_S = 2.0
RATIO_CAMPAIGN = 0.2
RATIO_PEAK_RSS = 1.5
SERVER_START_TIMEOUT_S = 180


def _clean_environment() -> None:
    """This process's environment without the shell's Prefect or Placewright settings, then the bench's own."""
    for key in [k for k in os.environ if k.startswith(("PREFECT_", "PLACEWRIGHT_"))]:
        del os.environ[key]
    os.environ.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
    )


def _settings_now() -> Any:
    """The settings as the environment now says (``get_settings`` reads it once per process)."""
    from placewright.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@contextmanager
def _group(folder: Path, **variables: str) -> Iterator[Path]:
    """A measurement group: its own intermediate cache and default output folder, and ``variables`` set."""
    folder.mkdir(parents=True, exist_ok=True)
    updates = {
        "PLACEWRIGHT_CACHE_DIR": str(folder / "cache"),
        "PLACEWRIGHT_OUT_DIR": str(folder / "out"),
        **variables,
    }
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    _settings_now()
    try:
        yield folder
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _settings_now()


def _forget_process_caches() -> None:
    """Empty the quality gate's per-process label caches (a CLI run starts with them empty)."""
    from placewright import quality

    with quality._SOURCE_LABELS_LOCK:
        quality._SOURCE_LABELS.clear()
        quality._PLACED_LABELS.clear()


# --- the core: the flow's work without Prefect -------------------------------------------------------------


def core_run(settings: Any, prompts: list[str], out: Path) -> Any:
    """One run on the classical core, the same work the place-product flow does, without Prefect.

    Plan (the input checks), load the product, then the product stages once (enhance; the cut-out checked
    against a second opinion, :func:`~placewright.cutout.verify.verified_cut_out`; analyze), the variant
    stages in a 4-thread pool (scene, locate, composite, harmonize and the quality gate's
    :func:`~placewright.quality.check_variant`), each called as its task in ``tasks/`` calls it, and
    :func:`~placewright.publish.publish_run` to ``out`` (encoding, previews, contact sheet, gallery,
    manifest). Returns the published run.
    """
    from bench_pipeline import PRODUCT, SIZE

    from placewright.analyze import analyze
    from placewright.composite import composite
    from placewright.cutout.verify import verified_cut_out
    from placewright.enhance import enhance
    from placewright.harmonize import harmonize
    from placewright.imageio import load_image
    from placewright.locate import locate
    from placewright.plan import output_location, plan_run
    from placewright.publish import FinishedVariant, new_run_id, publish_run
    from placewright.quality import check_variant
    from placewright.request import RunRequest
    from placewright.scene import generate_scene
    from placewright.store import array_sha256

    request = RunRequest(product=str(PRODUCT), prompts=prompts, size=SIZE, out=str(out))
    with tempfile.TemporaryDirectory(prefix="placewright-core-") as downloads:
        plan = plan_run(request, settings, downloads=Path(downloads))
    loaded = load_image(plan.product_file, limits=settings.limits, what="product image")
    source = loaded.pixels
    enhanced = enhance(source, options=settings.enhance)
    verified = verified_cut_out(enhanced.image, options=settings.cutout, quality=settings.quality)
    cut = verified.result
    analysis = analyze(cut.rgba, filename=PRODUCT.name, prompts=prompts, options=settings.analyze)
    cutout_sha256 = array_sha256(cut.rgba)
    enhance_scale = enhanced.image.shape[1] / source.shape[1]

    def variant(v: Any) -> FinishedVariant:
        scene = generate_scene(str(v.prompt), size=plan.size, seed=v.seed, surface=plan.surface, options=settings.scene)
        located = locate(scene.image, phrase=plan.surface, known=scene.surface, options=settings.locate)
        placed = composite(
            scene.image,
            cut.rgba,
            surface=located.surface,
            analysis=analysis.analysis,
            surface_phrase=plan.surface,
            options=settings.composite,
            seed=v.seed,
        )
        final = harmonize(placed.image, placed.product_alpha, seed=v.seed, prompt=v.prompt, options=settings.harmonize)
        report = check_variant(
            source=source,
            source_sha256=loaded.sha256,
            enhance_scale=enhance_scale,
            cutout_box=cut.box,
            cutout_sha256=cutout_sha256,
            cutout_check=verified.check,
            size_fraction=analysis.analysis.size_fraction,
            scene=scene.image,
            surface=located.surface,
            composite=placed.image,
            product_alpha=placed.product_alpha,
            product_box=placed.product_box,
            final=final.image,
            options=settings.quality,
            ocr=settings.enhance.ocr,
        )
        records = {
            "enhance": enhanced.record,
            "cutout": cut.record,
            "analyze": analysis.record,
            "scene": scene.record,
            "locate": located.record,
            "composite": placed.record,
            "harmonize": final.record,
        }
        return FinishedVariant(
            variant=v,
            image=final.image,
            product_box=placed.product_box,
            surface=located.surface,
            stages=records,
            composite=placed.image,
            product_alpha=placed.product_alpha,
            quality=report,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        finished = list(pool.map(variant, plan.variants))
    now = datetime.now(UTC)
    run_id = new_run_id(now)
    return publish_run(
        location=output_location(plan.out, plan.request.urls, settings),
        run_path=run_id,
        run_id=run_id,
        created_at=now.isoformat(timespec="seconds"),
        product=plan.product,
        cutout=cut.rgba,
        analysis=analysis.analysis,
        variants=finished,
        output=settings.output.model_copy(update={"format": plan.format}),
        dropped=[],
    )


# --- what the flows log: which runs were republished, which task runs were cached ---------------------------


class _Tally(logging.Handler):
    """Counts the flows' and tasks' log lines that say how a run went."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "identical to run" in message:
            self.counts["republished"] += 1
        elif record.name.startswith("prefect.task_runs") and (match := re.search(r"Finished in state (\w+)", message)):
            self.counts[match.group(1)] += 1

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def _describe(counts: Counter[str]) -> str:
    """E.g. "republished, 1 task run: 1 Completed" or "45 task runs: 44 Cached, 1 Completed"."""
    states = {k: v for k, v in sorted(counts.items()) if k != "republished"}
    n = sum(states.values())
    text = f"{n} task run{'' if n == 1 else 's'}" + (
        ": " + ", ".join(f"{v} {k}" for k, v in states.items()) if n else ""
    )
    return f"republished, {text}" if counts["republished"] else text


def _each(descriptions: list[str]) -> str:
    """The repeats' descriptions, each different one once, with how many repeats it describes when not all."""
    seen = Counter(descriptions)
    if len(seen) == 1:
        return descriptions[0]
    return "; ".join(f"{n}x {text}" for text, n in seen.items())


# --- the background server and the CLI ----------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _placewright(*args: str) -> list[str]:
    return [sys.executable, "-m", "placewright.cli", *args]


def _flow_run_count(api_url: str) -> int:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{api_url}/flow_runs/count", data=b"{}", headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read()))


@dataclass
class Command:
    """A finished subprocess: its wall time, peak RSS (MB, when measured) and the CLI's phase timings."""

    wall: float
    rss_mb: float | None = None
    phases: dict[str, float] = field(default_factory=dict)


TIME_V = shutil.which("time", path="/usr/bin")


def _command(argv: list[str], env: dict[str, str], *, rss: bool = False) -> Command:
    """Run ``argv`` from the checkout; with ``rss``, under ``/usr/bin/time -v`` (else getrusage of a fresh child)."""
    import json

    env = {**env, "PLACEWRIGHT_CLI_TIMINGS": "1"}
    report = None
    if rss and TIME_V:
        report = Path(tempfile.mkstemp(prefix="bench-time-")[1])
        argv = [TIME_V, "-v", "-o", str(report), *argv]
    elif rss:  # no /usr/bin/time: a fresh Python process runs it and reports its children's peak RSS (KiB)
        probe = (
            "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
            "print('Maximum resident set size (kbytes):', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "file=sys.stderr); sys.exit(code)"
        )
        argv = [sys.executable, "-c", probe, *argv]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr[-2000:]}")
    text = result.stderr
    if report is not None:
        text += report.read_text()
        report.unlink()
    measured = None
    if rss:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if match is None:
            raise RuntimeError(f"no peak RSS in the output of {' '.join(argv)}")
        measured = int(match.group(1)) / 1024
    phases: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if line.startswith('{"cli_timings"'):
            phases = json.loads(line)["cli_timings"]
    return Command(wall, measured, phases)


# --- the table ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    measured: str
    value: str
    target: str
    met: bool | None  # None: for information

    def verdict(self) -> str:
        if self.met is None:
            return "[dim]info"
        return "[green]met" if self.met else "[bold red]MISSED"


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``fn(*args, **kwargs)`` and the seconds it took."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far; 0 when it cannot be read (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settle(pid: int | None, *, window: float = 0.5, busy: float = 0.04, limit: float = 20.0) -> float:
    """Wait until process ``pid`` (the server) uses under ``busy`` of a core over ``window`` seconds, at most ``limit``.

    The server records a flow run's events for a while after the run: a section measured on a server still
    busy with the last section's events would count that work as its own. Returns the seconds waited.
    """
    started = time.perf_counter()
    if pid is None:
        return 0.0
    while time.perf_counter() - started < limit:
        before = _cpu_of(pid)
        time.sleep(window)
        if _cpu_of(pid) - before < busy * window:
            break
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float]) -> str:
    return "" if len(values) < 2 else f" ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of everything; no informational CLI rows")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of rows 1-2 (default 5, --quick 1)")
    parser.add_argument(
        "--crash-after",
        type=int,
        default=None,
        help="`placewright server start --crash-after` (default: its own; 0: no heartbeats, as the private server)",
    )
    parser.add_argument("--core-once", nargs=2, metavar=("VARIANTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.core_once:  # the cold-core row's child process: one core run, its seconds on stdout
        sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
        from bench_pipeline import PROMPTS

        print(_call(core_run, _settings_now(), PROMPTS[: int(args.core_once[0])], Path(args.core_once[1]))[1])
        return
    bench_started = time.perf_counter()
    load_before = os.getloadavg()

    _clean_environment()
    tmp = Path(tempfile.mkdtemp(prefix="placewright-speed-"))
    home = tmp / "prefect-home"
    os.environ["PREFECT_HOME"] = str(home)  # before Prefect is imported: this process and the CLI runs share it
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))

    port = _free_port()
    cli_env = dict(os.environ)
    # The background server boots while this process warms up (it takes 10-50 s on a busy 2-core machine).
    start = ["server", "start", "--port", str(port), "--timeout", str(SERVER_START_TIMEOUT_S)]
    if args.crash_after is not None:
        start += ["--crash-after", str(args.crash_after)]
    starting = subprocess.Popen(
        _placewright(*start),
        env=cli_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # A SIGTERM (`timeout`, `kill`) ends the bench through the finally below, which stops the server.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    bench = Bench(args, tmp, cli_env)
    try:
        bench.section("warm-up and server start", "-", lambda: bench.warm_up(starting))
        if bench.server is not None:
            bench.section("1-2. Flow, 8 variants", "-", bench.flow_rows)
            bench.section("3. CLI, 2 variants", "-", bench.cli_rows)
            bench.section("4. Campaign", "-", bench.campaign_rows)
            bench.section("5. Peak RSS", "-", bench.memory_rows)
        bench.print_table(bench_started, load_before[0])
    finally:
        if starting.poll() is None:
            starting.kill()
            starting.wait()
        subprocess.run(_placewright("server", "stop"), env=cli_env, cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


class Bench:
    """The measurements, section by section; a section that fails shows as a failed row and the rest go on."""

    def __init__(self, args: argparse.Namespace, tmp: Path, cli_env: dict[str, str]) -> None:
        self.args = args
        self.tmp = tmp
        self.cli_env = cli_env
        self.repeats = args.repeats or (1 if args.quick else 5)
        self.cli_repeats = 1 if args.quick else 4
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.tally = _Tally()
        self.server: Any = None
        self.updates: dict[Any, Any] = {}
        self.core2: list[float] = []
        self.settled = 0.0

    def settle(self) -> None:
        """Wait for the server to finish recording earlier runs (see :func:`_settle`)."""
        self.settled += _settle(self.server.pid if self.server is not None else None)

    def section(self, label: str, target: str, measure: Callable[[], None]) -> None:
        try:
            self.settle()
            measure()
        except Exception as exc:  # one broken measurement must not lose the table
            message = " ".join(str(exc).split())
            self.rows.append(Row(label, f"failed: {message[:90]}", "-", target, False))
            self.notes.append(f"{label.strip()}: {type(exc).__name__}: {message[-400:]}")

    # --- set-up ---

    def warm_up(self, starting: subprocess.Popen) -> None:
        """Untimed: the core's models (the cut-out's, OCR); the server; the flow's first run in this process."""
        from bench_pipeline import PROMPTS

        with _group(self.tmp / "warm-core"):
            _, self.core_warm = _call(core_run, _settings_now(), PROMPTS, self.tmp / "warm-core" / "core")
        output, _ = starting.communicate(timeout=SERVER_START_TIMEOUT_S + 30)
        if starting.returncode != 0:
            raise RuntimeError(f"placewright server start failed: {output.strip()}")
        from flows.background_server import running

        self.server, why = running()
        if self.server is None:
            raise RuntimeError(f"the background server does not answer: {why}")
        from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY

        # The settings the CLI uses against the background server (heartbeats when it watches for crashes).
        self.updates = {PREFECT_API_URL: self.server.url}
        if not self.server.crash_after:
            self.updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        with self.prefect(), _group(self.tmp / "warm-flow"):
            self.flow_warm = self.flow(self.tmp / "warm-flow", PROMPTS[:1])[1]

    @contextmanager
    def prefect(self, more: dict[Any, Any] | None = None) -> Iterator[None]:
        """Prefect's settings for in-process runs against the background server (``more`` on top)."""
        from prefect.settings import temporary_settings

        with temporary_settings(updates={**self.updates, **(more or {})}):
            yield

    def listen(self) -> None:
        """Count the flows' log lines (again: Prefect's logging set-up replaces the handlers it configures)."""
        logger = logging.getLogger("prefect")
        if self.tally not in logger.handlers:
            logger.addHandler(self.tally)

    def flow(self, folder: Path, prompts: list[str]) -> tuple[Any, float, Counter[str]]:
        """One place-product flow run in this process: its manifest, seconds and how its task runs ended."""
        from bench_pipeline import PRODUCT, SIZE

        from flows.place_product import place_product
        from placewright.request import RunRequest

        request = RunRequest(product=str(PRODUCT), prompts=prompts, size=SIZE, out=str(folder / "out"))
        self.listen()
        manifest, seconds = _call(place_product, request)
        return manifest, seconds, self.tally.take()

    # --- rows 1-2 ---

    def flow_rows(self) -> None:
        """8 variants: core and flow interleaved, each repeat in folders of its own."""
        from bench_pipeline import PROMPTS, core_pipeline
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

        core, old_core, computed, cached, stage_cached, quiet = [], [], [], [], [], []
        core_cpu, flow_cpu, server_cpu = [], [], []
        how: dict[str, list[str]] = {"computed": [], "cached": [], "stage cached": []}
        manifest = None
        pid = self.server.pid
        for r in range(self.repeats):
            folder = self.tmp / f"flow8-{r}"
            with self.prefect(), _group(folder):
                settings = _settings_now()
                _forget_process_caches()
                cpu = time.process_time()
                core.append(_call(core_run, settings, PROMPTS, folder / "core")[1])
                core_cpu.append(time.process_time() - cpu)
                _forget_process_caches()
                old_core.append(core_pipeline(settings, len(PROMPTS))[1])
                _forget_process_caches()
                cpu, cpu_server = time.process_time(), _cpu_of(pid)
                manifest, seconds, counts = self.flow(folder, PROMPTS)
                how["computed"].append(_describe(counts))
                computed.append(seconds)
                flow_cpu.append(time.process_time() - cpu)
                server_cpu.append(_cpu_of(pid) - cpu_server)
                _, seconds, counts = self.flow(folder, PROMPTS)
                how["cached"].append(_describe(counts))
                cached.append(seconds)
            if self.server.crash_after:  # the identical rerun without the flow run's heartbeat thread
                with self.prefect({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), _group(folder):
                    quiet.append(self.flow(folder, PROMPTS)[1])
            with self.prefect(), _group(folder, PLACEWRIGHT_REUSE_IDENTICAL_RUNS="false"):
                _, seconds, counts = self.flow(folder, PROMPTS)
                how["stage cached"].append(_describe(counts))
                stage_cached.append(seconds)
        flow_s, core_s = _median(computed), _median(core)
        self.rows.append(
            Row(
                "1. Flow, 8 variants, computed vs the core (same work)",
                f"flow {flow_s:.2f} s{_spread(computed)} / core {core_s:.2f} s{_spread(core)}",
                f"{flow_s / core_s:.2f}x",
                f"<= {RATIO_FLOW_COMPUTED}x",
                flow_s / core_s <= RATIO_FLOW_COMPUTED,
            )
        )
        cpu_flow = _median(flow_cpu) + _median(server_cpu)
        self.rows.append(
            Row(
                "   CPU seconds, computed: flow (this process + server) vs core",
                f"{_median(flow_cpu):.2f} + {_median(server_cpu):.2f} s / {_median(core_cpu):.2f} s",
                f"{cpu_flow / _median(core_cpu):.2f}x",
                "-",
                None,
            )
        )
        self.rows.append(
            Row(
                f"2. Flow, 8 variants, identical rerun ({_each(how['cached'])}) vs computed",
                f"{_median(cached):.2f} s{_spread(cached)} / {flow_s:.2f} s",
                f"{_median(cached) / flow_s:.2f}x",
                f"<= {RATIO_FLOW_CACHED}x",
                _median(cached) / flow_s <= RATIO_FLOW_CACHED,
            )
        )
        if quiet:
            self.rows.append(
                Row(
                    "   identical rerun, no flow heartbeats (as `server start --crash-after 0`)",
                    f"{_median(quiet):.2f} s{_spread(quiet)} / {flow_s:.2f} s",
                    f"{_median(quiet) / flow_s:.2f}x",
                    "-",
                    None,
                )
            )
        self.rows.append(
            Row(
                f"   rerun, run reuse off ({_each(how['stage cached'])})",
                f"{_median(stage_cached):.2f} s{_spread(stage_cached)} / {flow_s:.2f} s",
                f"{_median(stage_cached) / flow_s:.2f}x",
                "-",
                None,
            )
        )
        if manifest is not None:
            backends = {name: record.backend for name, record in manifest.variants[0].stages.items()}
            self.notes.append("backends: " + ", ".join(f"{k} {v}" for k, v in backends.items()))
            remade = sum(v.attempts - 1 for v in manifest.variants)
            if remade:
                self.notes.append(f"the flow's quality gate made {remade} variant(s) again (the core does not)")
        self.notes.append(
            "old core definition (bench_pipeline.core_pipeline: no cut-out check, quality gate or publishing, "
            f"webp encode only): {_median(old_core):.2f} s; computed flow: {_each(how['computed'])}"
        )

    # --- row 3 ---

    def cli_rows(self) -> None:
        """``placewright run`` with 2 prompts against the background server; the core's time for the same 2."""
        from bench_pipeline import PRODUCT, PROMPTS, SIZE

        computed, cached = [], []
        phases: dict[str, dict[str, float]] = {}
        for r in range(self.cli_repeats):  # the core's run and the CLI's interleaved: a change of load hits both
            with _group(self.tmp / f"core2-{r}") as folder:
                settings = _settings_now()
                _forget_process_caches()
                self.core2.append(_call(core_run, settings, PROMPTS[:2], folder / "core")[1])
            folder = self.tmp / f"cli2-{r}"
            env = {**self.cli_env, "PLACEWRIGHT_CACHE_DIR": str(folder / "cache")}
            argv = _placewright("run", str(PRODUCT), "-p", PROMPTS[0], "-p", PROMPTS[1], "--size", str(SIZE))
            argv += ["--out", str(folder / "out")]
            self.settle()  # the last repeat's runs are recorded
            done = _command(argv, env)
            computed.append(done.wall)
            phases["computed"] = done.phases
            done = _command(argv, env)
            cached.append(done.wall)
            phases["cached"] = done.phases
        above = _median(computed) - _median(self.core2)
        self.rows.append(
            Row(
                "3. CLI, 2 variants, computed: wall minus the core's time",
                f"wall {_median(computed):.2f} s{_spread(computed)} - core {_median(self.core2):.2f} s",
                f"+{above:.2f} s",
                f"<= +{CLI_COMPUTED_ABOVE_CORE_S} s",
                above <= CLI_COMPUTED_ABOVE_CORE_S,
            )
        )
        self.rows.append(
            Row(
                "   CLI, 2 variants, identical second run: wall",
                f"{_median(cached):.2f} s{_spread(cached)}",
                f"{_median(cached):.2f} s",
                f"<= {CLI_CACHED_WALL_S} s",
                _median(cached) <= CLI_CACHED_WALL_S,
            )
        )
        for case, marks in phases.items():
            self.notes.append(
                f"CLI {case} run, seconds since start: " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items())
            )
        # The core alone in a fresh process: how much of the CLI's overhead is the core's own cold start.
        folder = self.tmp / "core2-cold"
        started = time.perf_counter()
        cold = subprocess.run(
            [sys.executable, __file__, "--core-once", "2", str(folder / "out")],
            env={**self.cli_env, "PLACEWRIGHT_CACHE_DIR": str(folder / "cache")},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
        self.rows.append(
            Row(
                "   core, 2 variants, in a fresh process (imports, model loads)",
                f"process {wall:.2f} s (core {float(cold.stdout.split()[-1]):.2f} s)",
                f"CLI +{_median(computed) - wall:.2f} s",
                "-",
                None,
            )
        )

    # --- row 4 ---

    def campaign_rows(self) -> None:
        """The example campaign twice, in this process (the flow); then through the CLI, for information."""
        from flows.campaign import run_campaign

        first, second = [], []
        how = Counter[str]()
        for r in range(self.cli_repeats):
            with self.prefect(), _group(self.tmp / f"campaign-{r}"):
                _forget_process_caches()
                self.listen()
                first.append(_call(run_campaign, campaign_file=str(CAMPAIGN))[1])
                self.tally.take()
                second.append(_call(run_campaign, campaign_file=str(CAMPAIGN))[1])
                how = self.tally.take()
        ratio = _median(second) / _median(first)
        self.rows.append(
            Row(
                f"4. Campaign (examples/campaign.yaml), second identical run ({_describe(how)}) vs first",
                f"{_median(second):.2f} s{_spread(second)} / {_median(first):.2f} s{_spread(first)}",
                f"{ratio:.2f}x",
                f"<= {RATIO_CAMPAIGN}x",
                ratio <= RATIO_CAMPAIGN,
            )
        )
        if self.args.quick:
            return
        folder = self.tmp / "campaign-cli"
        env = {
            **self.cli_env,
            "PLACEWRIGHT_CACHE_DIR": str(folder / "cache"),
            "PLACEWRIGHT_OUT_DIR": str(folder / "out"),
        }
        walls = [_command(_placewright("campaign", str(CAMPAIGN)), env).wall for _ in range(2)]
        self.rows.append(
            Row(
                "   placewright campaign (CLI): second run's wall vs the first's",
                f"{walls[1]:.2f} s / {walls[0]:.2f} s",
                f"{walls[1] / walls[0]:.2f}x",
                "-",
                None,
            )
        )

    # --- row 5 ---

    def memory_rows(self) -> None:
        """Peak RSS of a 16-variant and a 1-variant CLI run, each computing in a fresh cache."""
        from bench_pipeline import PRODUCT, PROMPTS, SIZE

        peaks: dict[int, Command] = {}
        for n in (1, 16):
            folder = self.tmp / f"rss-{n}"
            env = {**self.cli_env, "PLACEWRIGHT_CACHE_DIR": str(folder / "cache")}
            argv = _placewright("run", str(PRODUCT), "--size", str(SIZE), "--out", str(folder / "out"))
            for prompt in (PROMPTS + MORE_PROMPTS)[:n]:
                argv += ["-p", prompt]
            peaks[n] = _command(argv, env, rss=True)
        many, one = peaks[16], peaks[1]
        ratio = (many.rss_mb or 0) / (one.rss_mb or 1)
        self.rows.append(
            Row(
                "5. Peak RSS, CLI run of 16 variants vs 1 variant",
                f"{many.rss_mb:.0f} MB ({many.wall:.1f} s) / {one.rss_mb:.0f} MB ({one.wall:.1f} s)",
                f"{ratio:.2f}x",
                f"<= {RATIO_PEAK_RSS}x",
                ratio <= RATIO_PEAK_RSS,
            )
        )

    def print_table(self, started: float, load_before: float) -> None:
        import prefect
        from bench_pipeline import PRODUCT, SIZE, console
        from rich.table import Table

        table = Table(title=f"Issue 13: speed and memory at {SIZE}, product {PRODUCT.name}, measured in one run")
        for column, justify in (("measure", "left"), ("measured", "right"), ("value", "right"), ("target", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        table.add_column("result")
        for row in self.rows:
            table.add_row(row.label, row.measured, row.value, row.target, row.verdict())
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in line
            ),
            platform.processor(),
        )
        server = (
            "no background server"
            if self.server is None
            else (f"`placewright server start` at {self.server.url} (crash_after {self.server.crash_after} s)")
        )
        warm = ""
        if hasattr(self, "flow_warm"):
            warm = (
                f"warm-up (untimed): core 8 variants {self.core_warm:.2f} s, first flow run in this process "
                f"(1 variant) {self.flow_warm:.2f} s"
            )
        lines = [
            f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, Prefect {prefect.__version__}",
            f"load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
            f"bench took {time.perf_counter() - started:.0f} s, {self.settled:.1f} s of it waiting for the server to "
            "finish recording earlier runs",
            f"median of {self.repeats} (rows 1-2), {self.cli_repeats} (CLI, campaign); ranges in brackets; {server}",
            warm,
            *self.notes,
        ]
        table.caption = "\n".join(line for line in lines if line)
        console.print(table)


if __name__ == "__main__":
    main()
