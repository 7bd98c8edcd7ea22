"""Campaign wall time with threads and on a local Dask cluster, and Prefect's overhead per flow run.

Run with ``python benchmarks/bench_campaign.py [--repeats N]`` (needs the test extra for
prefect-dask). Against a Prefect server started here (as with PREFECT_API_URL set), prints:

1. the bundled example campaign (2 products x 3 scenes, 1024x1024) with the thread runner and
   on a local Dask cluster of 2 worker processes (started once, outside the timing), computed
   (``refresh=True``) and cached;
2. the server-side overhead of a flow run: an empty flow, and an empty flow with 10 no-op tasks,
   so the cost of the API calls alone is visible.
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
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

CAMPAIGN = ROOT / "examples" / "campaign.yaml"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="placewright-bench-campaign-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(
            PLACEWRIGHT_CACHE_DIR=str(tmp / "cache"),
            PLACEWRIGHT_OUT_DIR=str(tmp / "out"),
            PREFECT_HOME=str(tmp / "prefect-home"),
            PREFECT_LOCAL_STORAGE_PATH=str(tmp / "results"),
        )
        from flows.local_api import LocalApi

        api = LocalApi().start()
        api.wait_ready()
        os.environ["PREFECT_API_URL"] = api.url  # Dask workers inherit it: no server of their own
        from distributed import LocalCluster
        from prefect import flow, task
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.campaign import run_campaign
        from flows.runners import task_runner_from_settings
        from placewright.settings import RunnerSettings

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        runners = {
            "threads (4)": task_runner_from_settings(RunnerSettings()),
            "Dask, 2 worker processes": task_runner_from_settings(
                RunnerSettings(kind="dask", address=cluster.scheduler_address)
            ),
        }
        table = Table(title=f"1. Example campaign, 2 products x 3 scenes at 1024x1024 (median of {args.repeats})")
        for column in ("task runner", "computed s", "cached s"):
            table.add_column(column, justify="right")
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            for name, runner in runners.items():
                campaign = run_campaign.with_options(task_runner=runner)
                campaign(campaign_file=str(CAMPAIGN), refresh=True)  # warm-up: imports, first model loads
                computed = [
                    _timed(lambda c=campaign: c(campaign_file=str(CAMPAIGN), refresh=True)) for _ in range(args.repeats)
                ]
                cached = [_timed(lambda c=campaign: c(campaign_file=str(CAMPAIGN))) for _ in range(args.repeats)]
                table.add_row(name, f"{statistics.median(computed):.2f}", f"{statistics.median(cached):.2f}")
            console.print(table)

            @task
            def noop(i: int) -> int:
                return i

            @flow
            def empty() -> None:
                return None

            @flow
            def ten_tasks() -> None:
                for future in [noop.submit(i) for i in range(10)]:
                    future.result()

            empty()
            ten_tasks()
            runs = 5 * args.repeats
            overhead = Table(title=f"2. Prefect overhead per flow run, server on 127.0.0.1 (median of {runs})")
            for column in ("flow run", "s"):
                overhead.add_column(column, justify="right")
            for name, fn in (("empty flow", empty), ("10 no-op tasks", ten_tasks)):
                overhead.add_row(name, f"{statistics.median(_timed(fn) for _ in range(runs)):.3f}")
            console.print(overhead)
        cluster.close()
        api.stop()


if __name__ == "__main__":
    main()
