"""The HTTP job service (``placewright serve``): job latency, throughput and model loads per warm worker.

Run with ``make bench`` (or ``python benchmarks/bench_service.py [--quick] [--skip-models] ...``).
A Prefect server (``prefect server start``, its own PREFECT_HOME) and ``placewright serve`` run as
subprocesses on 127.0.0.1, as an operator runs them; the client is this process, over HTTP, with an
API key. Jobs are uploads of the example product, each with its own product bytes (one pixel
differs) and seed, so no stage is answered from the cache of an earlier job. Prints:

1. job latency: POST (``Prefer: wait=30``, which answers when the job ends) to succeeded, one
   classical variant at 1024x1024, sequential jobs on a warm service (the first jobs are warm-up,
   reported apart), and where the time goes (from the flow run's states);
2. throughput: jobs a minute with 8 client threads, with 2 warm workers and with 1;
3. a burst: 50 jobs posted at once (no ``Prefer: wait``), with 2 warm workers: how long each POST took to
   answer, and when every job had its flow run and when every job had ended (against Prefect's default
   SQLite database, which takes one writer at a time);
4. model loads per worker: 20 jobs with tiny AI models (diffusion scene and harmonize, u2netp
   cut-out, PP-OCRv4 label guard), read from each worker's status file;
5. a summary against the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # saving the tiny pipelines
os.environ.setdefault("TQDM_DISABLE", "1")

import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from service.records import Records  # noqa: E402
from tests.live_prefect import free_port, stop_process, tail  # noqa: E402

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
LATENCY_TARGET_S = 2.5
SERVER_START_TIMEOUT_S = 120.0
SERVICE_START_TIMEOUT_S = 180.0
JOB_TIMEOUT_S = 300.0
# Prefer: wait=N on the POST: the answer comes when the job ends (or after N s, then the client asks again).
PREFER_WAIT_S = 30
FINAL = ("succeeded", "failed", "canceled")
console = Console(width=150)


# --- the processes ------------------------------------------------------------------------------------------
def _clean_env() -> dict[str, str]:
    """This process's environment without Prefect or Placewright settings (a developer's shell)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PLACEWRIGHT_", "OPENAI_"))}


def _prefect_command() -> list[str]:
    script = Path(sys.executable).with_name("prefect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]


@dataclass
class PrefectServer:
    """``prefect server start`` on a free port of 127.0.0.1 with its own PREFECT_HOME (and SQLite database)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> PrefectServer:
        home = self.workdir / "prefect-home"
        home.mkdir(parents=True, exist_ok=True)
        env = _clean_env() | {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        }
        log = self.workdir / "prefect-server.log"
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                [*_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.process.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"prefect server not healthy after {SERVER_START_TIMEOUT_S:.0f} s:\n{tail(log)}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@dataclass
class Service:
    """``placewright serve`` with ``workers`` warm workers against ``prefect``; an API key made before it starts."""

    workdir: Path
    prefect: PrefectServer
    workers: int
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def log(self) -> Path:
        return self.workdir / "service.log"

    def start(self) -> Service:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with Records(self.state_dir / "service.db") as records:
            _, self.token = records.create_key("bench")
        env = (
            _clean_env()
            | {
                "PREFECT_API_URL": self.prefect.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_HOME": str(self.workdir / "prefect-client-home"),
                "PLACEWRIGHT_SERVICE__STATE_DIR": str(self.state_dir),
                "PLACEWRIGHT_SERVICE__OUT": str(self.workdir / "out"),
                "PLACEWRIGHT_SERVICE__DEPLOYMENT": f"bench-{uuid.uuid4().hex[:8]}",
                # The benchmark measures jobs, not the per-key limits.
                "PLACEWRIGHT_SERVICE__RATE_PER_MINUTE": "100000",
                "PLACEWRIGHT_CACHE_DIR": str(self.workdir / "cache"),
                "PLACEWRIGHT_OUT_DIR": str(self.workdir / "out-dir"),
                "PLACEWRIGHT_MODELS_DIR": str(self.workdir / "no-models"),
            }
            | self.env_extra
        )
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "placewright.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"placewright serve exited with {self.process.returncode}:\n{tail(self.log)}")
            # Ready, and every worker has imported the flow and said so in its status file.
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
                if ready and len(self.statuses()) >= self.workers:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"placewright serve not ready in {SERVICE_START_TIMEOUT_S:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=60)
            self.process = None

    def statuses(self) -> list[dict[str, Any]]:
        """What each worker last wrote about itself: jobs run, model loads (``<state_dir>/workers/<pid>.json``)."""
        found = []
        for path in sorted((self.state_dir / "workers").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_text()))
        return found

    def jobs_done(self, total: int, timeout_s: float = 10.0) -> dict[int, int]:
        """Jobs run per worker pid, once the workers' status files add up to ``total`` (a worker writes its
        file just after the job's final state, so the client may hear of the end first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = {s["pid"]: s["jobs"] for s in self.statuses()}
            if sum(done.values()) >= total or time.monotonic() > deadline:
                return done
            time.sleep(0.05)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=PREFER_WAIT_S + 30
        )

    def flow_run_of(self, job_id: str) -> str | None:
        with Records(self.state_dir / "service.db") as records:
            job = records.job(job_id)
        return job.flow_run_id if job is not None else None

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- jobs ---------------------------------------------------------------------------------------------------
def products(count: int) -> list[bytes]:
    """``count`` JPEGs of the example product, each with one pixel changed: no job reuses another's cache."""
    base = Image.open(PRODUCT).convert("RGB")
    found = []
    for i in range(count):
        image = base.copy()
        image.putpixel((i % image.width, 0), (i * 37 % 256, i * 91 % 256, i * 13 % 256))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        found.append(buffer.getvalue())
    return found


@dataclass
class Run:
    job_id: str
    state: str
    seconds: float  # from the POST to the answer that said the job ended
    posted_at: float  # time.time()
    error: str | None = None


def run_job(client: httpx.Client, product: bytes, index: int, *, size: str | None = None) -> Run:
    """One job, uploaded with ``Prefer: wait``, followed until it ends; its wall time as the client sees it."""
    options: dict[str, Any] = {"prompts": [PROMPTS[index % len(PROMPTS)]], "seed": 1000 + index}
    if size:
        options["size"] = size
    posted_at = time.time()
    began = time.perf_counter()
    response = client.post(
        "/v1/jobs/upload",
        files={"product": (f"product-{index}.jpg", product, "image/jpeg")},
        data={"options": json.dumps(options)},
        headers={"Prefer": f"wait={PREFER_WAIT_S}"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /v1/jobs/upload: {response.status_code} {response.text[:300]}")
    job = response.json()
    while job["state"] not in FINAL:
        if time.perf_counter() - began > JOB_TIMEOUT_S:
            raise RuntimeError(f"job {job['id']} still {job['state']} after {JOB_TIMEOUT_S:.0f} s")
        job = client.get(f"/v1/jobs/{job['id']}", headers={"Prefer": f"wait={PREFER_WAIT_S}"}).json()
    return Run(job["id"], job["state"], time.perf_counter() - began, posted_at, job.get("error"))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the nearest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def phases(service: Service, run: Run, prefect: PrefectServer) -> dict[str, float]:
    """Where one job's time went, from its flow run's state timestamps (seconds)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    flow_run_id = service.flow_run_of(run.job_id)
    if flow_run_id is None:
        return {}
    with temporary_settings({PREFECT_API_URL: prefect.api_url}), get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(uuid.UUID(flow_run_id))
        states = sorted(client.read_flow_run_states(uuid.UUID(flow_run_id)), key=lambda s: s.timestamp)
    at: dict[str, datetime] = {}
    for state in states:
        at.setdefault(state.type.value, state.timestamp)
    created = flow_run.created.timestamp() if flow_run.created else run.posted_at
    posted = run.posted_at
    found = {"POST to flow run created": created - posted}
    if "PENDING" in at:
        found["waiting for a worker (claimed)"] = at["PENDING"].timestamp() - created
    if "PENDING" in at and "RUNNING" in at:
        found["claimed to running"] = at["RUNNING"].timestamp() - at["PENDING"].timestamp()
    if "RUNNING" in at and "COMPLETED" in at:
        found["running (the flow)"] = at["COMPLETED"].timestamp() - at["RUNNING"].timestamp()
    if "COMPLETED" in at:
        found["completed to answer"] = posted + run.seconds - at["COMPLETED"].timestamp()
    return found


# --- the tables ---------------------------------------------------------------------------------------------
@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # measure, value, target, verdict

    def add(self, measure: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("[green]met" if met else "[red]MISSED")
        self.rows.append((measure, value, target, verdict))


def table_latency(
    prefect: PrefectServer, workdir: Path, jobs: int, warmup: int, size: str, results: Results, workers: int
) -> None:
    env = {"PLACEWRIGHT_OUTPUT__SIZE": json.dumps(size)}
    images = products(warmup + jobs)
    with Service(workdir / "latency", prefect, workers=workers, env_extra=env) as service, service.client() as client:
        runs = [run_job(client, images[i], i) for i in range(warmup + jobs)]
        failed = [r for r in runs if r.state != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} job(s) did not succeed: {failed[0].state}: {failed[0].error}")
        measured = runs[warmup:]
        split = [phases(service, run, prefect) for run in measured]
    seconds = [r.seconds for r in measured]
    p50, p95 = percentile(seconds, 50), percentile(seconds, 95)

    table = Table(title=f"1. Job latency, POST to succeeded ({size})")
    table.caption = (
        f"one classical variant, sequential jobs, Prefer: wait={PREFER_WAIT_S}, {workers} warm worker(s);\n"
        "each job its own product bytes and seed (no cache hits)"
    )
    for column in ("jobs", "n", "p50 s", "p95 s", "min s", "max s", "mean s"):
        table.add_column(column, justify="right")
    for name, chosen in ((f"warm-up (first {warmup})", runs[:warmup]), ("warm", measured)):
        values = [r.seconds for r in chosen]
        if not values:
            continue
        table.add_row(
            name,
            str(len(values)),
            f"{percentile(values, 50):.2f}",
            f"{percentile(values, 95):.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
            f"{statistics.mean(values):.2f}",
        )
    console.print(table)

    breakdown = Table(title="1b. Where a warm job's time goes, seconds")
    breakdown.caption = "from the timestamps of its flow run's states"
    for column in ("phase", "p50", "p95", "mean"):
        breakdown.add_column(column, justify="right" if column != "phase" else "left")
    for phase in split[0] if split else {}:
        values = [s[phase] for s in split if phase in s]
        breakdown.add_row(
            phase, f"{percentile(values, 50):.3f}", f"{percentile(values, 95):.3f}", f"{statistics.mean(values):.3f}"
        )
    console.print(breakdown)
    met = p50 <= LATENCY_TARGET_S
    console.print(
        f"Job latency p50 {p50:.2f} s, p95 {p95:.2f} s: {'meets' if met else 'MISSES'} the p50 <= "
        f"{LATENCY_TARGET_S} s target"
    )
    results.add(f"job latency p50 ({size}, warm)", f"{p50:.2f} s", f"<= {LATENCY_TARGET_S} s", met)
    results.add(f"job latency p95 ({size}, warm)", f"{p95:.2f} s")


def table_throughput(
    prefect: PrefectServer,
    workdir: Path,
    worker_counts: list[int],
    jobs: int,
    threads: int,
    size: str,
    results: Results,
) -> None:
    table = Table(title=f"2. Throughput: {jobs} jobs from {threads} client threads ({size}, one classical variant)")
    for column in ("workers", "jobs", "wall s", "jobs/minute", "latency p50 s", "latency p95 s", "jobs per worker"):
        table.add_column(column, justify="right")
    env = {"PLACEWRIGHT_OUTPUT__SIZE": json.dumps(size)}
    for workers in worker_counts:
        images = products(workers + jobs)
        with Service(workdir / f"throughput-{workers}", prefect, workers=workers, env_extra=env) as service:
            with ThreadPoolExecutor(workers) as pool:  # one warm-up job per worker, at once
                warm = [pool.submit(_one, service, images[i], i) for i in range(workers)]
                for future in warm:
                    future.result()
            before = service.jobs_done(workers)
            began = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                futures = [pool.submit(_one, service, images[i], i) for i in range(workers, workers + jobs)]
                runs = [future.result() for future in futures]
            wall = time.perf_counter() - began
            after = service.jobs_done(workers + jobs)
            per_worker = sorted(after[pid] - before.get(pid, 0) for pid in after)
        failed = [r for r in runs if r.state != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} job(s) did not succeed: {failed[0].state}: {failed[0].error}")
        seconds = [r.seconds for r in runs]
        rate = jobs / wall * 60
        table.add_row(
            str(workers),
            str(jobs),
            f"{wall:.1f}",
            f"[bold]{rate:.1f}",
            f"{percentile(seconds, 50):.2f}",
            f"{percentile(seconds, 95):.2f}",
            " / ".join(str(n) for n in per_worker),
        )
        results.add(f"throughput, {workers} worker(s), {threads} clients", f"{rate:.1f} jobs/min")
    table.caption = f"{os.cpu_count()} CPUs on this machine; the Prefect server and the service share them"
    console.print(table)


def table_burst(prefect: PrefectServer, workdir: Path, jobs: int, workers: int, size: str, results: Results) -> None:
    """``jobs`` uploads posted at once, each from its own client; the service answers without waiting."""
    table = Table(
        title=f"3. Burst: {jobs} jobs posted at once, {workers} warm worker(s) ({size}, one classical variant)"
    )
    for column in ("answer p50 s", "answer p95 s", "slowest answer s", "every job has its run s", "every job ended s"):
        table.add_column(column, justify="right")
    images = products(jobs)
    env = {"PLACEWRIGHT_OUTPUT__SIZE": json.dumps(size)}
    with Service(workdir / "burst", prefect, workers=workers, env_extra=env) as service:

        def post(index: int) -> tuple[float, str]:
            options = {"prompts": [PROMPTS[index % len(PROMPTS)]], "seed": 5000 + index}
            with service.client() as client:
                began = time.perf_counter()
                response = client.post(
                    "/v1/jobs/upload",
                    files={"product": (f"burst-{index}.jpg", images[index], "image/jpeg")},
                    data={"options": json.dumps(options)},
                    timeout=JOB_TIMEOUT_S,
                )
                if response.status_code != 201:
                    raise RuntimeError(f"POST /v1/jobs/upload: {response.status_code} {response.text[:300]}")
                return time.perf_counter() - began, response.json()["id"]

        began = time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:
            answers = list(pool.map(post, range(jobs)))
        ids = [job_id for _, job_id in answers]
        with_runs = ended = None
        while ended is None:
            if time.perf_counter() - began > JOB_TIMEOUT_S:
                raise RuntimeError(f"the burst's jobs did not end within {JOB_TIMEOUT_S:.0f} s")
            with Records(service.state_dir / "service.db") as records:
                found = [records.job(job_id) for job_id in ids]
            if with_runs is None and all(job is not None and job.flow_run_id for job in found):
                with_runs = time.perf_counter() - began
            if all(job is not None and job.state in FINAL for job in found):
                ended = time.perf_counter() - began
                failed = [job for job in found if job is not None and job.state != "succeeded"]
                if failed:
                    raise RuntimeError(f"{len(failed)} burst job(s) did not succeed: {failed[0].state}")
            time.sleep(0.1)
    seconds = [answer for answer, _ in answers]
    table.add_row(
        f"{percentile(seconds, 50):.2f}",
        f"{percentile(seconds, 95):.2f}",
        f"[bold]{max(seconds):.2f}",
        f"{with_runs:.1f}",
        f"{ended:.1f}",
    )
    table.caption = (
        "Flow runs are created one at a time by the service's creator thread; an answer waits at most "
        "service.create_wait_s (2 s) for its run"
    )
    console.print(table)
    results.add(f"burst of {jobs} posts, slowest answer", f"{max(seconds):.2f} s")
    results.add(f"burst of {jobs} jobs, all ended ({workers} workers)", f"{ended:.1f} s")


def _one(service: Service, product: bytes, index: int) -> Run:
    with service.client() as client:
        return run_job(client, product, index)


@contextlib.contextmanager
def tiny_models(workdir: Path) -> Iterator[dict[str, str]]:
    """Settings for tiny AI models built as the tests build them: scene and harmonize diffusion pipelines
    (random weights, saved as a user's would be), the u2netp cut-out and PP-OCRv4 label guard (pulled once
    into the test models folder, checksums verified)."""
    from tests.real_models import only
    from tests.tiny_diffusion import save_tiny_pipeline

    scene = save_tiny_pipeline("sd", workdir / "tiny-sd")
    inpaint = save_tiny_pipeline("sd-inpaint", workdir / "tiny-sd-inpaint")
    models_dir = only("u2netp", "pp-ocrv4", folder=workdir / "weights")
    yield {
        "PLACEWRIGHT_MODELS_DIR": str(models_dir),
        "PLACEWRIGHT_SCENE__DIFFUSION__MODEL": str(scene),
        "PLACEWRIGHT_SCENE__DIFFUSION__DEVICE": "cpu",
        "PLACEWRIGHT_SCENE__STEPS": "1",
        "PLACEWRIGHT_HARMONIZE__INPAINT__MODEL": str(inpaint),
        "PLACEWRIGHT_HARMONIZE__INPAINT__DEVICE": "cpu",
        "PLACEWRIGHT_HARMONIZE__STEPS": "1",
        "PLACEWRIGHT_HARMONIZE__WORK_SIDE": "64",
    }


def _model_name(key: str) -> str:
    """A model key (``repr`` of the cache key) shortened for a table: kind and file or folder name."""
    parts = [p.strip(" '\"()") for p in key.split(",")]
    kind = parts[0]
    where = next((p for p in parts[1:] if "/" in p), "")
    return f"{kind}: {Path(where).name}" if where else key[:60]


def table_model_loads(prefect: PrefectServer, workdir: Path, jobs: int, workers: int, results: Results) -> None:
    images = products(jobs)
    with tiny_models(workdir / "models") as env:
        env = env | {"PLACEWRIGHT_OUTPUT__SIZE": json.dumps("256x256")}
        with Service(workdir / "model-loads", prefect, workers=workers, env_extra=env) as service:
            began = time.perf_counter()
            with ThreadPoolExecutor(workers * 2) as pool:
                runs = list(pool.map(lambda i: _one(service, images[i], i), range(jobs)))
            wall = time.perf_counter() - began
            service.jobs_done(jobs)
            statuses = service.statuses()
    failed = [r for r in runs if r.state != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) did not succeed: {failed[0].state}: {failed[0].error}")
    keys = sorted({key for s in statuses for key in s["model_loads"]})
    table = Table(title=f"4. Model loads per warm worker, {jobs} jobs with tiny AI models (target: 1 each)")
    table.add_column("worker (pid)")
    table.add_column("jobs", justify="right")
    for key in keys:
        table.add_column(_model_name(key), justify="right")
    worst = 0
    for status in statuses:
        loads = [status["model_loads"].get(key, 0) for key in keys]
        worst = max([worst, *loads])
        table.add_row(str(status["pid"]), str(status["jobs"]), *(str(n) for n in loads))
    table.caption = f"256x256, {workers} workers, {workers * 2} client threads, {wall:.1f} s in all"
    console.print(table)
    met = bool(keys) and worst == 1 and all(s["jobs"] > 0 for s in statuses)
    results.add(
        f"model loads per model per worker ({jobs} jobs)",
        f"max {worst} ({len(keys)} models, {len(statuses)} workers)",
        "1",
        met,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs in every table (a smoke run, ~3 min)")
    parser.add_argument("--jobs", type=int, help="warm jobs in the latency table (default 20; quick: 6)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up jobs before the latency is measured")
    parser.add_argument("--size", default="1024x1024", help="output size of the latency and throughput jobs")
    parser.add_argument("--throughput-jobs", type=int, help="jobs in the throughput table (default 24; quick: 8)")
    parser.add_argument("--threads", type=int, default=8, help="client threads in the throughput table")
    parser.add_argument("--workers", type=int, default=2, help="warm workers of the service")
    parser.add_argument("--model-jobs", type=int, help="jobs in the model-loads table (default 20; quick: 6)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--burst", type=int, help="jobs posted at once in the burst table (default 50; quick: 20)")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--skip-one-worker", action="store_true", help="throughput with --workers only, not 1 too")
    parser.add_argument("--skip-models", action="store_true", help="no model-loads table (needs torch/diffusers)")
    args = parser.parse_args()
    jobs = args.jobs or (6 if args.quick else 20)
    throughput_jobs = args.throughput_jobs or (8 if args.quick else 24)
    model_jobs = args.model_jobs or (6 if args.quick else 20)
    burst = args.burst or (20 if args.quick else 50)
    worker_counts = [args.workers] if args.skip_one_worker or args.quick or args.workers == 1 else [args.workers, 1]

    results = Results()
    with tempfile.TemporaryDirectory(prefix="placewright-bench-service-") as tmp_name:
        tmp = Path(tmp_name)
        console.print(
            f"[dim]{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, product {PRODUCT.name}; "
            f"starting a Prefect server..."
        )
        prefect = PrefectServer(tmp).start()
        try:
            table_latency(prefect, tmp, jobs, args.warmup, args.size, results, args.workers)
            if not args.skip_throughput:
                table_throughput(prefect, tmp, worker_counts, throughput_jobs, args.threads, args.size, results)
            if not args.skip_burst:
                table_burst(prefect, tmp, burst, args.workers, args.size, results)
            if args.skip_models:
                pass
            elif find_spec("diffusers") is None or find_spec("torch") is None:
                console.print(
                    "[yellow]No model-loads table: torch and diffusers are not installed (pip install -e '.[ai]')"
                )
            else:
                table_model_loads(prefect, tmp, model_jobs, args.workers, results)
        finally:
            prefect.stop()
    summary = Table(title="5. Summary")
    for column in ("measure", "value", "target", "verdict"):
        summary.add_column(column)
    for row in results.rows:
        summary.add_row(*row)
    console.print(summary)


if __name__ == "__main__":
    main()
